/* et_sparse.h - the pruned-model file: an fp32 GPT whose block matrices are stored in
 * compact sparse form (N:M as kept values + 2- or 4-bit positions; unstructured as a
 * keep-bitmap + kept values), everything else dense, with the tokenizer. Magic,
 * version, header CRC-32, whole-file CRC-32, atomic save (docs/COMPRESSION.md has the
 * layout). Loading unpacks to the dense parameter vector, so every fp32 path (eval,
 * sample, compress --quant on top) runs it. */
#ifndef ET_SPARSE_H
#define ET_SPARSE_H

#include <stddef.h>
#include "et_ckpt.h"
#include "et_compress.h"

/** First 8 bytes of a pruned-model file. */
#define ET_SPARSE_MAGIC "ETSPARSE"
#define ET_SPARSE_VERSION 1

/**
 * Bytes the compact form of @p params takes (the payload: sparse block matrices and
 * dense rest), without writing anything.
 * @param[in] mask keep-mask over all parameters (et_compress_prune)
 */
size_t et_sparse_payload_bytes(const et_gpt_config *cfg, const uint8_t *mask, const et_prune_spec *p);

/**
 * Saves a pruned model atomically.
 * @param[in] params dense fp32 parameters, zero where @p mask drops
 * @param[in] mask   keep-mask over all parameters; for N:M each group keeps at most N
 * @return ET_OK, ET_ERR_INVALID (config, spec, a mask that is not N:M), ET_ERR_IO
 */
et_status et_sparse_save(const char *path, const et_gpt_config *cfg, const float *params,
                         const uint8_t *mask, const et_prune_spec *p, const void *tokenizer,
                         size_t tokenizer_bytes, et_error *err);

/**
 * Loads a pruned model as a dense checkpoint (params and tokenizer filled; free with
 * et_ckpt_free()); @p p (may be NULL) receives how it was pruned.
 * @return ET_OK, ET_ERR_IO, ET_ERR_FORMAT, ET_ERR_UNSUPPORTED, ET_ERR_CRC,
 *         ET_ERR_TRUNCATED, ET_ERR_RANGE, ET_ERR_NOMEM
 */
et_status et_sparse_load(const char *path, et_ckpt *c, et_prune_spec *p, et_error *err);

/** 1 when @p path starts with ET_SPARSE_MAGIC. */
int et_sparse_probe(const char *path);

#endif /* ET_SPARSE_H */

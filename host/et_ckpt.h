/* et_ckpt.h - model checkpoints: edgetrain's own format and llm.c's GPT-2 fp32 format.
 *
 * edgetrain's format (docs/FORMATS.md has the byte layout) holds the config, a tensor
 * table a reader checks against et_gpt_tensors(), the parameters in llm.c order, and
 * optionally the AdamW moments with the step count, an opaque tokenizer blob (so a
 * checkpoint is self-contained) and an opaque trainer-state blob (RNG, data position,
 * schedule: whatever the trainer needs for an exact resume); a CRC-32 covers the
 * header and another the whole file. llm.c's format is its gpt2_124M.bin kind of
 * file: a 256-int32 header (magic 20240326, version 3) and the fp32 parameters.
 *
 * Every save is atomic: the bytes go to "<path>.tmp.<pid>", which is fsync'ed and then
 * renamed over @p path, so a crash or a failed save never leaves a half-written file
 * and never loses the checkpoint that was there. Every load checks sizes against the
 * file's length before it allocates, so a corrupt header cannot cause a huge
 * allocation or an out-of-bounds read. Errors come back as a status plus a message in
 * et_error that names the file, what was found and what was expected.
 *
 * Deliberately absent: bf16 llm.c files (version 5), memory-mapped loading, partial
 * loads. Files are little-endian on every host.
 */
#ifndef ET_CKPT_H
#define ET_CKPT_H

#include <stddef.h>
#include "et_gpt.h"
#include "et_host.h"

/** A checkpoint in memory. For a save the caller fills it and owns every pointer; a
 *  load fills it with memory the loader allocated, which et_ckpt_free() releases. */
typedef struct et_ckpt {
    et_gpt_config cfg;        /**< model shape; vocab_padded may be 0 on save (derived) */
    size_t nparams;           /**< parameter count; must equal et_gpt_tensors(&cfg) */
    float *params;            /**< (nparams) in llm.c order */
    float *adam_m, *adam_v;   /**< (nparams) each, AdamW moments; both NULL when absent */
    int step;                 /**< AdamW steps taken (>= 0) */
    void *tokenizer;          /**< opaque tokenizer blob, or NULL */
    size_t tokenizer_bytes;   /**< its size (0 when absent) */
    void *train_state;        /**< opaque trainer-state blob, or NULL */
    size_t train_state_bytes; /**< its size (0 when absent) */
} et_ckpt;

/** First 8 bytes of an edgetrain checkpoint. */
#define ET_CKPT_MAGIC "ETCKPT\0\0"
/** Format versions this build reads and writes: 1 for GPT-2 shapes (what every build
 *  since the first reads), 2 when head_dim or ffn differ from GPT-2's (structured
 *  pruning; header bytes 136..143 hold them). */
#define ET_CKPT_VERSION_GPT2 1
#define ET_CKPT_VERSION 2
/** llm.c's GPT-2 checkpoint magic and the only version read or written here (fp32). */
#define ET_LLMC_MAGIC 20240326
#define ET_LLMC_VERSION 3

/**
 * Saves a checkpoint in edgetrain's format, atomically.
 * Everything in @p c is checked before the temporary file is created, so an invalid
 * checkpoint leaves any existing file at @p path untouched.
 * @param[in]  path destination file
 * @param[in]  c    checkpoint: valid config, nparams matching it, params; adam_m and
 *                  adam_v both set or both NULL; blobs non-NULL when their size is > 0
 * @param[out] err  status and message (may be NULL)
 * @return ET_OK, ET_ERR_INVALID for a bad argument or config, ET_ERR_IO when the
 *         temporary file cannot be written, synced or renamed (it is removed)
 */
et_status et_ckpt_save(const char *path, const et_ckpt *c, et_error *err);

/**
 * Loads a checkpoint in edgetrain's format.
 * @param[in]  path file to read
 * @param[out] c    filled on success (free with et_ckpt_free()); zeroed on failure
 * @param[out] err  status and message (may be NULL)
 * @return ET_OK, ET_ERR_IO (missing or unreadable), ET_ERR_FORMAT (magic, layout,
 *         tensor table), ET_ERR_UNSUPPORTED (version), ET_ERR_TRUNCATED, ET_ERR_CRC,
 *         ET_ERR_RANGE (config fields), ET_ERR_NOMEM
 */
et_status et_ckpt_load(const char *path, et_ckpt *c, et_error *err);

/**
 * Releases what a load allocated and zeroes @p c. Safe on a zeroed struct and on NULL;
 * not for a struct whose pointers the caller owns.
 * @param[in,out] c checkpoint filled by et_ckpt_load(), et_llmc_load() or et_model_load()
 */
void et_ckpt_free(et_ckpt *c);

/**
 * Saves parameters as an llm.c GPT-2 fp32 checkpoint (version 3), atomically.
 * @param[in]  path   destination file
 * @param[in]  cfg    model shape (vocab_padded may be 0: derived)
 * @param[in]  params (nparams) in llm.c order, wte being (Vp, C)
 * @param[out] err    status and message (may be NULL)
 * @return ET_OK, ET_ERR_INVALID, ET_ERR_IO
 */
et_status et_llmc_save(const char *path, const et_gpt_config *cfg, const float *params,
                       et_error *err);

/**
 * Loads an llm.c GPT-2 fp32 checkpoint (version 3): fills cfg, nparams and params,
 * nothing else. A file whose Vp is V rounded up to 128 (llm.c's exporter) rather than
 * to 64 (edgetrain) is accepted; its extra padding rows are dropped.
 * @param[in]  path file to read
 * @param[out] c    filled on success (free with et_ckpt_free()); zeroed on failure
 * @param[out] err  status and message (may be NULL)
 * @return as et_ckpt_load(); ET_ERR_UNSUPPORTED for any version but 3
 */
et_status et_llmc_load(const char *path, et_ckpt *c, et_error *err);

/**
 * Loads a model from either format, told apart by the magic.
 * @param[in]  path file to read
 * @param[out] c    filled on success (free with et_ckpt_free()); zeroed on failure
 * @param[out] err  status and message (may be NULL)
 * @return as et_ckpt_load(); ET_ERR_FORMAT when the magic is neither format's
 */
et_status et_model_load(const char *path, et_ckpt *c, et_error *err);

#endif /* ET_CKPT_H */

/* et_sparse.h - the compact-model file: a compressed GPT (et_cgpt.h) whose block
 * matrices are stored as the inference path runs them (dense, N:M values + 2/4-bit
 * positions, or keep bitmap + values; low-rank linears as two factors), in fp32 or
 * W8A8, with the per-linear storage table, the tokenizer, a magic, a version, a header
 * CRC-32 and a whole-file CRC-32 (docs/FORMATS.md has the layout). Saves are atomic.
 * Loads check every size against the config, the table and the file's length before
 * allocating; the sparse storage itself is checked when a model is built from it
 * (et_cgpt_create). Little-endian hosts only.
 */
#ifndef ET_SPARSE_H
#define ET_SPARSE_H

#include <stddef.h>
#include <stdint.h>
#include "et_cgpt.h"
#include "et_host.h"

/** First 8 bytes of a compact-model file. */
#define ET_SPARSE_MAGIC "ETSPARSE"
/** Version 2: the compact inference format (version 1 stored fp32 models unpacked at
 *  load; this build refuses it with a message). */
#define ET_SPARSE_VERSION 2

/** A compact model in memory. On save the caller owns every pointer; a load fills it with
 *  memory et_sparse_free() releases (blob 64-byte aligned). */
typedef struct et_sparse_model {
    et_gpt_config cfg;
    et_cgpt_mode mode;
    et_clinear_spec *spec;    /**< (layers * ET_CGPT_LIN) */
    void *blob;               /**< et_cgpt_blob_bytes() bytes */
    size_t blob_bytes;
    void *tokenizer;          /**< opaque tokenizer blob, or NULL */
    size_t tokenizer_bytes;
    uint64_t src_nparams;     /**< parameters of the dense fp32 model it came from */
    uint32_t calib_method;    /**< W8A8: ET_QCALIB_MINMAX or ET_QCALIB_PERCENTILE, else 0 */
    float calib_pct;
    uint32_t calib_batches;
    uint32_t finetune_steps;  /**< AdamW steps after low-rank / pruning */
} et_sparse_model;

/** Bytes the file of @p f takes (header, table, blob, tokenizer, CRC); 0 if invalid. */
size_t et_sparse_file_bytes(const et_sparse_model *f);

/** Saves atomically; everything is checked first. @return ET_OK, ET_ERR_INVALID, ET_ERR_IO */
et_status et_sparse_save(const char *path, const et_sparse_model *f, et_error *err);

/**
 * Loads and validates a compact-model file.
 * @param[out] f filled on success (free with et_sparse_free()); zeroed on failure
 * @return ET_OK, ET_ERR_IO, ET_ERR_FORMAT, ET_ERR_UNSUPPORTED (version, shape, host),
 *         ET_ERR_CRC, ET_ERR_TRUNCATED, ET_ERR_RANGE (config), ET_ERR_NOMEM
 */
et_status et_sparse_load(const char *path, et_sparse_model *f, et_error *err);

/** Releases what a load allocated and zeroes @p f (safe on a zeroed struct). */
void et_sparse_free(et_sparse_model *f);

/** 1 when @p path starts with ET_SPARSE_MAGIC. */
int et_sparse_probe(const char *path);

// --- running one

struct et_pool;

/** A compact model ready to run on the host: thread pool, one exact arena, the model. */
typedef struct et_cruntime {
    struct et_pool *pool;
    et_threads threads;
    size_t plan;      /**< arena bytes (the blob is apart: the et_sparse_model's) */
    void *arena_mem;
    et_arena arena;
    et_cgpt model;
} et_cruntime;

/** Builds the model of @p f (which must outlive the runtime) for B x T with @p nthreads
 *  workers (<= 0: all cores); corrupt sparse storage is ET_ERR_FORMAT with a message. */
et_status et_cruntime_open(et_cruntime *rt, const et_sparse_model *f, int B, int T, int nthreads,
                           et_error *err);
void et_cruntime_close(et_cruntime *rt);

/** et_fwd_fn (et_qruntime.h) for an et_cgpt. */
et_status et_fwd_cgpt(void *model, const int *in, const int *tg, int B, int T, float *loss);

#endif /* ET_SPARSE_H */

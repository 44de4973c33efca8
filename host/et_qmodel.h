/* et_qmodel.h - the quantized-model file: a compressed model's blob (et_qgpt.h), its
 * config and mode, the calibration it came from and the tokenizer, in one file with a
 * magic, a version, a header CRC-32 and a whole-file CRC-32 (docs/COMPRESSION.md has
 * the byte layout). A separate file type rather than a section of the edgetrain
 * checkpoint: a quantized model has no fp32 parameters and no optimizer state, and
 * host/checkpoint.c is not this module's to change.
 *
 * Saves are atomic ("<path>.tmp.<pid>", fsync, rename, then a best-effort fsync of the
 * folder), so a failed save never leaves a half-written file or loses the old one.
 * Loads check every size against the file's length before allocating and compare the
 * tensor table with et_qgpt_tensors(), so a corrupt file is refused with a message that
 * names it, what was found and what was expected. Little-endian hosts only.
 */
#ifndef ET_QMODEL_H
#define ET_QMODEL_H

#include <stddef.h>
#include <stdint.h>
#include "et_host.h"
#include "et_qgpt.h"

/** First 8 bytes of a quantized-model file. */
#define ET_QMODEL_MAGIC "ETQMODEL"
/** Format versions this build reads and writes: 1 for GPT-2 shapes, 2 when head_dim or
 *  ffn differ (structured pruning; header bytes 88..95 hold them). */
#define ET_QMODEL_VERSION_GPT2 1
#define ET_QMODEL_VERSION 2

/** A quantized model in memory. On save the caller owns every pointer; a load fills it
 *  with memory et_qmodel_free() releases (blob 64-byte aligned). */
typedef struct et_qmodel {
    et_gpt_config cfg;        /**< model shape (vocab_padded derived) */
    et_qmode mode;            /**< W8A8 or W8A32 */
    void *blob;               /**< et_qgpt_tensors() bytes */
    size_t blob_bytes;
    void *tokenizer;          /**< opaque tokenizer blob, or NULL */
    size_t tokenizer_bytes;
    uint32_t calib_method;    /**< 0 (none, W8A32), ET_QCALIB_MINMAX or ET_QCALIB_PERCENTILE */
    float calib_pct;          /**< percentile kept at each end (percentile method) */
    uint32_t calib_batches;   /**< calibration batches */
    uint64_t src_nparams;     /**< parameters of the fp32 model it came from */
} et_qmodel;

/**
 * Saves atomically. Everything is checked before the temporary file is created.
 * @return ET_OK, ET_ERR_INVALID (bad config, mode or blob size), ET_ERR_IO
 */
et_status et_qmodel_save(const char *path, const et_qmodel *q, et_error *err);

/**
 * Loads and validates a quantized-model file.
 * @param[out] q filled on success (free with et_qmodel_free()); zeroed on failure
 * @return ET_OK, ET_ERR_IO, ET_ERR_FORMAT (magic, layout, table), ET_ERR_UNSUPPORTED
 *         (version, big-endian host), ET_ERR_CRC, ET_ERR_TRUNCATED, ET_ERR_RANGE (config),
 *         ET_ERR_NOMEM
 */
et_status et_qmodel_load(const char *path, et_qmodel *q, et_error *err);

/** Releases what a load allocated and zeroes @p q (safe on a zeroed struct or NULL). */
void et_qmodel_free(et_qmodel *q);

/** Writes @p n bytes to @p path atomically (temporary file, fsync, rename); also used
 *  for the compress report. @return ET_OK or ET_ERR_IO (old file unchanged) */
et_status et_qmodel_write_file(const char *path, const void *data, size_t n, et_error *err);

/** 1 when @p path is readable and starts with ET_QMODEL_MAGIC, else 0. */
int et_qmodel_probe(const char *path);

#endif /* ET_QMODEL_H */

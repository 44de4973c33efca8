/* et_compress.h - the compress job: an fp32 checkpoint in, a compressed model and a
 * report (Markdown + JSON) out. Passes run in a fixed order (pruning, then
 * quantization); each is measured on the same evaluation windows, single- or
 * multi-threaded as asked, so the report's figures compare like with like. */
#ifndef ET_COMPRESS_H
#define ET_COMPRESS_H

#include <stdio.h>
#include "et_host.h"
#include "et_qgpt.h"

typedef struct et_compress_opts {
    const char *model;      /**< fp32 checkpoint (edgetrain or llm.c) */
    const char *data;       /**< evaluation shard (validation tokens) */
    const char *calib_data; /**< calibration shard; NULL: train.bin beside data, else data */
    const char *out;        /**< compressed model file; the report goes beside it */
    int quant;              /**< 0 (none), ET_QMODE_W8A8 or ET_QMODE_W8A32 */
    int calib_batches;      /**< calibration batches (W8A8) */
    et_qcalib_method calib; /**< min/max or percentile */
    float pct;              /**< percentile kept at each end, in (0.5, 1] */
    int B, T;               /**< batch and sequence length of calibration and evaluation */
    int eval_batches;       /**< <= 0: the whole evaluation shard */
    int threads;            /**< workers (1 gives single-thread figures) */
    FILE *progress;         /**< progress lines, or NULL */
} et_compress_opts;

/** One model in the report. */
typedef struct et_compress_stage {
    char name[48];
    size_t params;       /**< parameters the model stands for */
    size_t weight_bytes; /**< bytes of its weights in memory */
    size_t file_bytes;   /**< size of its file on disk */
    size_t ram_bytes;    /**< weights + inference arena for B x T */
    float loss;          /**< mean validation loss */
    double tok_s;        /**< inference tokens/s over the evaluation */
} et_compress_stage;

typedef struct et_compress_report {
    et_compress_stage st[8];
    int n;
    int B, T, eval_batches, threads;
    size_t eval_tokens;
    int speed_rounds, speed_batches; /**< tokens/s: best of rounds of batches, alternating */
    char calib[1280];    /**< how activations were calibrated */
    char md_path[1024], json_path[1024];
} et_compress_report;

/** Defaults of `edgetrain compress`. */
void et_compress_opts_init(et_compress_opts *o);

/**
 * Runs the job: loads and evaluates the fp32 model, applies the passes, saves the
 * result atomically, reloads it from disk, evaluates it and writes the report. The
 * input file is only read. Refuses (ET_ERR_INVALID with a message) a model that is
 * already quantized, and (ET_ERR_TRUNCATED) a calibration or evaluation set with fewer
 * than T+1 tokens; nothing is written then.
 */
et_status et_compress(const et_compress_opts *o, et_compress_report *r, et_error *err);

/** Writes the report as Markdown and JSON (atomically) to r->md_path and r->json_path. */
et_status et_compress_report_write(const et_compress_report *r, et_error *err);

#endif /* ET_COMPRESS_H */

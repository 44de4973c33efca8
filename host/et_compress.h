/* et_compress.h - the compress job: an fp32 checkpoint in, a compressed model and a
 * report (Markdown + JSON) out. Passes run in a fixed order (low-rank, pruning,
 * fine-tune, quantization); each is measured on the same evaluation windows, single- or
 * multi-threaded as asked, so the report's figures compare like with like. */
#ifndef ET_COMPRESS_H
#define ET_COMPRESS_H

#include <stdint.h>
#include <stdio.h>
#include "et_host.h"
#include "et_ckpt.h"
#include "et_prune.h"
#include "et_qgpt.h"

/** A pruning request: "0.5" (unstructured, that share of each matrix) or "2:4" (N:M). */
typedef struct et_prune_spec {
    int kind;       /**< 0 none, 1 unstructured magnitude, 2 N:M */
    float sparsity; /**< unstructured: share dropped, in [0, 1] */
    int N, M;       /**< N:M: N kept of every M, 1 <= N < M <= 16 */
} et_prune_spec;

/** Parses "0.5" or "2:4". ET_ERR_INVALID with a message for anything else, a sparsity
 *  outside [0, 1] or N >= M. */
et_status et_prune_spec_parse(const char *s, et_prune_spec *p, et_error *err);

/** A structured-pruning request (host/compress_struct.c): "heads=N" keeps N heads per
 *  layer, "ffn=F" keeps F MLP neurons per layer, "neurons=S" removes the share S of them;
 *  comma-joined to do both ("heads=2,neurons=0.5"). */
typedef struct et_struct_spec {
    int kind;      /**< 0 none, 1 structured */
    int heads;     /**< heads kept per layer (0: all) */
    int ffn;       /**< MLP neurons kept per layer (0: all, or from @p neurons) */
    float neurons; /**< share of MLP neurons removed, in [0, 1) (0: none) */
    int weights;   /**< score by weight norms; 0: by calibration activations (default) */
    int calib_batches; /**< batches of calibration tokens for the activation scores */
} et_struct_spec;

/** 1 when @p s is a structured request (starts with heads=, ffn= or neurons=). */
int et_struct_spec_probe(const char *s);

/** Parses a structured request; ET_ERR_INVALID with a message for anything else, a
 *  count below 1 or a share outside [0, 1). */
et_status et_struct_spec_parse(const char *s, et_struct_spec *p, et_error *err);

/** A low-rank request for the MLP matrices (fc, fcproj of every block):
 *  "energy=0.9" (keep that share of sum s_i^2), "params=0.5" (the factored pair within
 *  that share of the matrix's parameters) or "rank=R". */
typedef struct et_lowrank_spec {
    int kind;    /**< 0 none, 1 energy, 2 params, 3 rank */
    float value; /**< energy or share in (0, 1], or the rank */
    int aware;   /**< activation-aware (ASVD): scale input channels by sqrt(mean |x|) */
} et_lowrank_spec;

/** Parses a low-rank request; ET_ERR_INVALID with a message otherwise. */
et_status et_lowrank_spec_parse(const char *s, et_lowrank_spec *p, et_error *err);

/**
 * Per-channel activation scales for the activation-aware variant: for every layer,
 * sqrt(mean |x_k|) of the fc input (C channels, LayerNorm 2's output) then of the
 * fcproj input (4C, GELU's output), over @p batches windows of the calibration tokens.
 * @param[out] scales (L * 5C)
 */
et_status et_lowrank_act_scales(const et_gpt_config *cfg, const float *params, const uint16_t *tok,
                                size_t n, int B, int T, int batches, int threads, float *scales,
                                et_error *err);

/** Fine-tuning after pruning. */
typedef struct et_finetune_opts {
    int steps;      /**< AdamW steps (0: one-shot pruning, no fine-tune) */
    int B, T;
    float lr;       /**< constant learning rate */
    int threads;
    uint64_t seed;  /**< batch sampling */
    int cubic;      /**< unstructured: raise sparsity on the cubic schedule
                         s_t = s (1 - (1 - t / (0.75 steps))^3), re-pruning every steps/20 */
    FILE *progress;
} et_finetune_opts;

/** Defaults: 0 steps, B 12, T 64 (the baby GPT's training batch), lr 3e-4, 1 thread, cubic on. */
void et_finetune_opts_init(et_finetune_opts *o);

/**
 * Prunes the GPT's four weight matrices of every block (et_prune_gpt_tensors; each
 * layer's matrix to the same sparsity, or N:M along its input dimension) and
 * fine-tunes with the masks held: after every AdamW step the dropped weights are set
 * back to zero, so they stay zero (tested).
 * @param[in,out] params fp32 parameters; unchanged when this fails
 * @param[in]     train  training tokens for the fine-tune (n >= T + 1 when steps > 0)
 * @param[out]    mask   et_prune_mask_bytes(nparams): the final keep-mask over all
 *                       parameters (everything outside the pruned matrices kept)
 */
et_status et_compress_prune(const et_gpt_config *cfg, float *params, const et_prune_spec *p,
                            const et_finetune_opts *fo, const uint16_t *train, size_t n,
                            uint8_t *mask, et_error *err);

/**
 * Structured pruning: scores every head and MLP neuron (calibration activations over
 * @p p->calib_batches windows of B x T tokens of @p cal, or weight norms), keeps the
 * largest per layer, shrinks the model (c->cfg gets head_dim / ffn; c->params is
 * replaced; AdamW and trainer state are dropped), then fine-tunes it for fo->steps
 * (et_compress_prune's loop with nothing masked: the model is simply smaller).
 * @param[in,out] c unchanged when this fails
 * @return ET_OK, ET_ERR_RANGE (more heads or neurons than the model has), ET_ERR_INVALID,
 *         ET_ERR_TRUNCATED (too few tokens), ET_ERR_NOMEM
 */
et_status et_compress_struct(et_ckpt *c, const et_struct_spec *p, const et_finetune_opts *fo,
                             const uint16_t *cal, size_t ncal, int B, int T, int threads,
                             et_error *err);

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
    et_prune_spec prune;    /**< pruning (kind 0: none), applied before quantization */
    et_finetune_opts ft;    /**< fine-tune after low-rank / pruning; reads the calibration shard */
    et_lowrank_spec lowrank;/**< low-rank MLP (kind 0: none), the first pass */
    et_struct_spec sprune;  /**< structured pruning (kind 0: none), first; not with --prune / --lowrank */
    FILE *progress;         /**< progress lines, or NULL */
} et_compress_opts;

/** One model in the report. */
typedef struct et_compress_stage {
    char name[160];
    size_t params;       /**< parameters the model stands for */
    size_t weight_bytes; /**< bytes of its weights in memory */
    size_t file_bytes;   /**< size of its file on disk */
    size_t ram_bytes;    /**< weights + inference arena for B x T */
    float loss;          /**< mean validation loss */
    double tok_s;        /**< inference tokens/s over the evaluation */
    int file_computed;   /**< not written: file_bytes is the size its file would have */
} et_compress_stage;

typedef struct et_compress_report {
    et_compress_stage st[8];
    int n;
    int final;           /**< the stage written to --out */
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

/**
 * The job when --prune or --lowrank is asked for, or the input is a compact model
 * (host/compress_compact.c; et_compress hands it over): low-rank -> prune -> fine-tune
 * -> int8 W8A8, every stage run and measured on the compact inference path, the last
 * written as a compact-model file (et_sparse.h). Refuses --quant w8a32 and structured
 * pruning with a message.
 */
et_status et_compress_compact(const et_compress_opts *o, et_compress_report *r, et_error *err);

/** Reads a token shard for the job, refusing fewer than T+1 tokens and tokens outside
 *  the vocabulary @p V with a message naming @p what ("evaluation", "calibration"). */
et_status et_compress_read_tokens(const char *path, int V, uint16_t **t, size_t *n, const char *what, int T,
                                  et_error *err);

/** The calibration / fine-tuning shard by default: train.bin beside @p data if it exists, else @p data. */
void et_compress_default_calib(const char *data, char *buf, size_t cap);

#endif /* ET_COMPRESS_H */

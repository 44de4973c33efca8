/* et_train.h - the host trainer: token shards in, a trained checkpoint, a log and a
 * loss-curve picture out, with progress, periodic evaluation, checkpoints and an exact
 * resume. */
#ifndef ET_TRAIN_H
#define ET_TRAIN_H

#include <stdint.h>
#include <stdio.h>
#include "et_gpt.h"
#include "et_host.h"

typedef enum et_schedule { ET_SCHED_COSINE = 0, ET_SCHED_CONSTANT = 1 } et_schedule;

typedef struct et_train_opts {
    const char *data;       /**< training shard (llm.c .bin) */
    const char *val_data;   /**< validation shard, or NULL */
    const char *tokenizer;  /**< tokenizer file; NULL: tokenizer.bin beside data */
    const char *init_model; /**< start from these weights (new run), or NULL */
    const char *resume;     /**< resume this checkpoint exactly, or NULL */
    const char *out_dir;    /**< where checkpoints, log.csv and loss.svg go */
    const char *backend;    /**< "cpu" */
    int layers, heads, channels, context; /**< model from scratch */
    int B, T, steps, warmup;
    float lr, lr_min, wd, clip, beta1, beta2, eps;
    et_schedule schedule;
    uint64_t seed;
    int threads;            /**< <= 0: all cores */
    int eval_every;         /**< 0: only at the end */
    int eval_batches;
    int ckpt_every;         /**< 0: only at the end */
    int log_every;          /**< progress line interval (1: every step) */
    int sequential;         /**< batches in order from the start, no shuffling */
    int qat;                /**< quantization-aware training: 0 off, else the int8 mode it
                                 simulates (ET_QMODE_W8A8 or ET_QMODE_W8A32, et_qgpt.h);
                                 the run also writes model.etq (et_qat_train.h) */
    float qat_decay;        /**< QAT: moving-average decay of the activation ranges */
    FILE *progress;         /**< where progress lines go (NULL: silent) */
} et_train_opts;

typedef struct et_train_result {
    int steps_done;
    float last_loss;   /**< last training batch loss */
    float val_loss;    /**< last validation loss (-1 without validation data) */
    double seconds;    /**< wall time of the training loop */
    double tok_per_s;  /**< training tokens per second over the run */
    float int8_val_loss; /**< --qat: the exported model.etq's loss on the validation
                              batches (-1 without QAT or validation data) */
} et_train_result;

/** Fills the defaults (those of `edgetrain train --help`). */
void et_train_opts_init(et_train_opts *o);

/** Learning rate at 0-based @p step: linear warmup, then constant or cosine to lr_min. */
float et_train_lr(const et_train_opts *o, int step);

/** Runs a training job. */
et_status et_train(const et_train_opts *o, et_train_result *res, et_error *err);

/** Mean loss over @p batches consecutive B x T windows from the start of @p tokens. */
et_status et_eval_tokens(et_gpt *m, const uint16_t *tokens, size_t n, int B, int T, int batches,
                         float *loss, et_error *err);

#endif /* ET_TRAIN_H */

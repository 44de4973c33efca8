/* et_distill_host.h - `edgetrain distill`: train a student GPT from scratch on token
 * shards with the loss of et_distill.h, the teacher's logits computed on the fly for
 * every batch. With alpha = 0 the same loop is plain training, so a distilled student
 * and one trained from scratch differ only in the loss (same batches, same schedule). */
#ifndef ET_DISTILL_HOST_H
#define ET_DISTILL_HOST_H

#include <stdint.h>
#include <stdio.h>
#include "et_host.h"

typedef struct et_distill_opts {
    const char *teacher;   /**< fp32 checkpoint (edgetrain or llm.c) */
    const char *data;      /**< training shard */
    const char *val_data;  /**< validation shard, or NULL */
    const char *out_dir;   /**< model.etck goes here */
    int layers, heads, channels; /**< student shape (vocab and context: the teacher's) */
    int B, T, steps, warmup;
    float lr, lr_min, wd, clip;
    float alpha, tau;      /**< soft-term weight in [0, 1] and temperature > 0 */
    uint64_t seed;
    int threads;
    int eval_batches;      /**< validation batches of B x T (0: the whole shard) */
    int log_every;
    FILE *progress;
} et_distill_opts;

typedef struct et_distill_result {
    float val_loss;          /**< student's validation loss (-1 without validation data) */
    float teacher_val_loss;  /**< teacher's, on the same windows */
    float last_ce;           /**< student's cross-entropy on the last batch */
    size_t student_params, teacher_params;
    double seconds;
} et_distill_result;

/** Defaults: the baby GPT's recipe (4 x 4 x 128, B 12, T 64, 2000 steps, lr 1e-3 cosine
 *  to 1e-4, warmup 100, wd 0.1, clip 1), alpha 0.5, tau 2, seed 1337, 1 thread. */
void et_distill_opts_init(et_distill_opts *o);

/**
 * Runs a distillation (or, with alpha = 0, plain training through the same loop).
 * @return ET_OK, ET_ERR_INVALID (options; a student whose vocabulary differs from the
 *         teacher's), errors of loading, planning and saving
 */
et_status et_distill(const et_distill_opts *o, et_distill_result *r, et_error *err);

#endif /* ET_DISTILL_HOST_H */

/* et_qruntime.h - a quantized model ready to run on the host (thread pool, one
 * exact-size arena, the et_qgpt in it), and the evaluation and timing loops the
 * compress command, eval and sample share for fp32 and quantized models alike. */
#ifndef ET_QRUNTIME_H
#define ET_QRUNTIME_H

#include <stdint.h>
#include "et_host.h"
#include "et_qgpt.h"
#include "et_qmodel.h"

struct et_pool;

typedef struct et_qruntime {
    struct et_pool *pool;
    et_threads threads;
    size_t plan;        /**< arena bytes (the blob is apart: et_qmodel's) */
    void *arena_mem;
    et_arena arena;
    et_qgpt model;
} et_qruntime;

/**
 * Builds the quantized model of @p q (which must outlive the runtime) for batch B and
 * sequence T with @p nthreads workers (<= 0: all cores).
 */
et_status et_qruntime_open(et_qruntime *rt, const et_qmodel *q, int B, int T, int nthreads,
                           et_error *err);
void et_qruntime_close(et_qruntime *rt);

/** A forward over (B,T) tokens with targets, giving the mean loss: an fp32 et_gpt or
 *  an et_qgpt behind one signature. */
typedef et_status (*et_fwd_fn)(void *model, const int *in, const int *tg, int B, int T,
                               float *loss);
et_status et_fwd_gpt(void *model, const int *in, const int *tg, int B, int T, float *loss);
et_status et_fwd_qgpt(void *model, const int *in, const int *tg, int B, int T, float *loss);

/** Fills @p in and @p tg (B*T each) with B consecutive windows of T+1 tokens from
 *  *pos on, wrapping to 0 when a window would run past @p n, and advances *pos: the
 *  windows et_eval_windows and the calibration runs take. n must be >= T + 1. */
void et_fill_windows(const uint16_t *tokens, size_t n, int B, int T, size_t *pos, int *in, int *tg);

/**
 * Mean loss over @p batches batches of B consecutive windows of T+1 tokens from the
 * start of @p tokens (wrapping; the windows of et_eval_tokens), and the wall time the
 * forwards took. @p batches <= 0 means as many as the tokens hold (at least one).
 */
et_status et_eval_windows(et_fwd_fn fwd, void *model, const uint16_t *tokens, size_t n, int B,
                          int T, int batches, float *loss, double *seconds, int *batches_done,
                          et_error *err);

/** Seconds on a monotonic clock. */
double et_qclock(void);

#endif /* ET_QRUNTIME_H */

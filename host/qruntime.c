/* qruntime.c - hosts a quantized model (pool + one exact arena) and runs the shared
 * evaluation loop over fixed token windows with timing. */
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "et_pool.h"
#include "et_qruntime.h"
#include "et_runtime.h"

double et_qclock(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

et_status et_qruntime_open(et_qruntime *rt, const et_qmodel *q, int B, int T, int nthreads,
                           et_error *err)
{
    et_status s;
    memset(rt, 0, sizeof *rt);
    if (B <= 0) return et_error_set(err, ET_ERR_INVALID, "batch size must be positive (got %d)", B);
    if (T <= 0 || T > q->cfg.context)
        return et_error_set(err, ET_ERR_RANGE, "sequence length %d must be in 1..%d (the model's context)",
                            T, q->cfg.context);
    if (nthreads <= 0) nthreads = et_cpu_count();
    if ((s = et_pool_create(nthreads, &rt->pool)) != ET_OK)
        return et_error_set(err, s, "could not start %d threads", nthreads);
    et_pool_threads(rt->pool, &rt->threads);
    if ((s = et_qgpt_plan(&q->cfg, q->mode, B, T, et_threads_workers(&rt->threads), &rt->plan)) != ET_OK) {
        et_qruntime_close(rt);
        return et_error_set(err, s, "cannot plan the quantized model: %s", et_status_str(s));
    }
    if (posix_memalign(&rt->arena_mem, ET_ALIGN, rt->plan) != 0) {
        rt->arena_mem = NULL;
        et_qruntime_close(rt);
        return et_error_set(err, ET_ERR_NOMEM, "cannot allocate the quantized model's arena of %zu bytes",
                            rt->plan);
    }
    et_arena_init(&rt->arena, rt->arena_mem, rt->plan);
    if ((s = et_qgpt_create(&rt->model, &q->cfg, q->mode, q->blob, q->blob_bytes, B, T, &rt->threads,
                            &rt->arena)) != ET_OK) {
        et_qruntime_close(rt);
        return et_error_set(err, s, "cannot build the quantized model: %s", et_status_str(s));
    }
    return ET_OK;
}

void et_qruntime_close(et_qruntime *rt)
{
    if (!rt) return;
    if (rt->pool) et_pool_destroy(rt->pool);
    free(rt->arena_mem);
    memset(rt, 0, sizeof *rt);
}

et_status et_fwd_gpt(void *model, const int *in, const int *tg, int B, int T, float *loss)
{
    et_gpt *m = (et_gpt *)model;
    et_status s = et_gpt_forward(m, in, tg, B, T);
    *loss = m->mean_loss;
    return s;
}

et_status et_fwd_qgpt(void *model, const int *in, const int *tg, int B, int T, float *loss)
{
    et_qgpt *m = (et_qgpt *)model;
    et_status s = et_qgpt_forward(m, in, tg, B, T);
    *loss = m->mean_loss;
    return s;
}

void et_fill_windows(const uint16_t *tokens, size_t n, int B, int T, size_t *pos, int *in, int *tg)
{
    int b, t;
    for (b = 0; b < B; b++) {
        if (*pos + (size_t)T + 1 > n) *pos = 0;
        for (t = 0; t < T; t++) {
            in[b * T + t] = tokens[*pos + t];
            tg[b * T + t] = tokens[*pos + t + 1];
        }
        *pos += (size_t)T;
    }
}

et_status et_eval_windows(et_fwd_fn fwd, void *model, const uint16_t *tokens, size_t n, int B,
                          int T, int batches, float *loss, double *seconds, int *batches_done,
                          et_error *err)
{
    int *in, *tg, i;
    size_t pos = 0;
    double sum = 0.0, el = 0.0;
    et_status s = ET_OK;
    if (n < (size_t)T + 1)
        return et_error_set(err, ET_ERR_TRUNCATED, "evaluation data has %zu tokens, fewer than one "
                            "sequence of %d + 1", n, T);
    if (batches <= 0) {
        batches = (int)((n - 1) / ((size_t)B * T));
        if (batches < 1) batches = 1;
    }
    in = malloc(sizeof(int) * (size_t)B * T);
    tg = malloc(sizeof(int) * (size_t)B * T);
    if (!in || !tg) { free(in); free(tg); return et_error_set(err, ET_ERR_NOMEM, "out of memory"); }
    for (i = 0; i < batches && s == ET_OK; i++) {
        float l = 0.0f;
        double t0;
        et_fill_windows(tokens, n, B, T, &pos, in, tg);
        t0 = et_qclock();
        s = fwd(model, in, tg, B, T, &l);
        el += et_qclock() - t0;
        sum += l;
    }
    free(in);
    free(tg);
    if (s != ET_OK) return et_error_set(err, s, "evaluation forward failed: %s", et_status_str(s));
    *loss = (float)(sum / batches);
    if (seconds) *seconds = el;
    if (batches_done) *batches_done = batches;
    return ET_OK;
}

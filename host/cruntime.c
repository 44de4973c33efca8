/* cruntime.c - hosts a compact model (et_sparse.h): thread pool, one arena of exactly the
 * plan's size, the et_cgpt in it, and the forward behind et_eval_windows' signature. */
#include <stdlib.h>
#include <string.h>
#include "et_pool.h"
#include "et_runtime.h"
#include "et_sparse.h"

et_status et_cruntime_open(et_cruntime *rt, const et_sparse_model *f, int B, int T, int nthreads,
                           et_error *err)
{
    et_status s;
    memset(rt, 0, sizeof *rt);
    if (B <= 0) return et_error_set(err, ET_ERR_INVALID, "batch size must be positive (got %d)", B);
    if (T <= 0 || T > f->cfg.context)
        return et_error_set(err, ET_ERR_RANGE, "sequence length %d must be in 1..%d (the model's context)", T,
                            f->cfg.context);
    if (nthreads <= 0) nthreads = et_cpu_count();
    if ((s = et_pool_create(nthreads, &rt->pool)) != ET_OK)
        return et_error_set(err, s, "could not start %d threads", nthreads);
    et_pool_threads(rt->pool, &rt->threads);
    if ((s = et_cgpt_plan(&f->cfg, f->mode, f->spec, B, T, et_threads_workers(&rt->threads), &rt->plan)) != ET_OK) {
        et_cruntime_close(rt);
        return et_error_set(err, s, "cannot plan the compact model: %s", et_status_str(s));
    }
    if (posix_memalign(&rt->arena_mem, ET_ALIGN, rt->plan) != 0) {
        rt->arena_mem = NULL;
        et_cruntime_close(rt);
        return et_error_set(err, ET_ERR_NOMEM, "cannot allocate the compact model's arena of %zu bytes", rt->plan);
    }
    et_arena_init(&rt->arena, rt->arena_mem, rt->plan);
    if ((s = et_cgpt_create(&rt->model, &f->cfg, f->mode, f->spec, f->blob, f->blob_bytes, B, T, &rt->threads,
                            &rt->arena)) != ET_OK) {
        et_cruntime_close(rt);
        return et_error_set(err, s, "cannot build the compact model: %s%s", et_status_str(s),
                            s == ET_ERR_FORMAT ? " (its sparse storage is corrupt: a position out of range or a "
                                                 "bitmap that does not hold its count)" : "");
    }
    return ET_OK;
}

void et_cruntime_close(et_cruntime *rt)
{
    if (!rt) return;
    if (rt->pool) et_pool_destroy(rt->pool);
    free(rt->arena_mem);
    memset(rt, 0, sizeof *rt);
}

et_status et_fwd_cgpt(void *model, const int *in, const int *tg, int B, int T, float *loss)
{
    et_cgpt *m = (et_cgpt *)model;
    et_status s = et_cgpt_forward(m, in, tg, B, T);
    *loss = m->mean_loss;
    return s;
}

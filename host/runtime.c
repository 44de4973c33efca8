/* runtime.c - binds a model to a backend, a thread pool and one exact-size arena. */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "et_runtime.h"
#include "et_pool.h"
#include "et_accel.h"

/* All online cores, unless EDGETRAIN_THREADS names a count (as OMP_NUM_THREADS does
 * for OpenMP programs): a default for every "--threads 0". */
int et_cpu_count(void)
{
    const char *env = getenv("EDGETRAIN_THREADS");
    long n;
    if (env && (n = strtol(env, NULL, 10)) > 0 && n <= 1024) return (int)n;
    n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (int)n : 1;
}

et_status et_runtime_open(et_runtime *rt, const char *backend, const et_gpt_config *cfg, int B,
                          int T, et_gpt_mode mode, int nthreads, et_error *err)
{
    et_status s;
    et_gpt_config c = *cfg;
    int device = backend && strcmp(backend, "cpu") != 0;
    memset(rt, 0, sizeof *rt);
    /* a backend that is unknown or not built in: say so before anything else */
    if (device && (s = et_accel_check(backend, err)) != ET_OK) {
        if (err) err->status = ET_ERR_DEVICE;
        return ET_ERR_DEVICE;
    }
    if ((s = et_gpt_config_check(&c)) != ET_OK)
        return et_error_set(err, s, "invalid model config: vocab %d, context %d, layers %d, heads %d, "
                            "channels %d (all must be positive and channels divisible by heads)",
                            c.vocab, c.context, c.layers, c.heads, c.channels);
    if (B <= 0) return et_error_set(err, ET_ERR_INVALID, "batch size must be positive (got %d)", B);
    if (T <= 0 || T > c.context)
        return et_error_set(err, ET_ERR_RANGE, "sequence length %d must be in 1..%d (the model's context)",
                            T, c.context);
    if (nthreads <= 0) nthreads = et_cpu_count();
    if ((s = et_pool_create(nthreads, &rt->pool)) != ET_OK)
        return et_error_set(err, s, "could not start %d threads", nthreads);
    et_pool_threads(rt->pool, &rt->threads);
    /* backend selection: the cpu backend directly, or a device driver behind the proxy
     * that runs the ops it lacks on the cpu (accel/common/et_accel.h) */
    if (!device) {
        et_cpu_backend_init(&rt->be, &rt->cpu, &rt->threads);
    } else if ((s = et_accel_open(&rt->accel, backend, &rt->threads, &rt->be, err)) != ET_OK) {
        et_runtime_close(rt);
        /* every reason a backend cannot be had (unknown, not built in, no device) */
        if (err && s != ET_ERR_NOMEM) err->status = ET_ERR_DEVICE;
        return s == ET_ERR_NOMEM ? s : ET_ERR_DEVICE;
    }
    if ((s = et_gpt_plan_compute(&c, B, T, mode, &rt->be, &rt->plan)) != ET_OK) {
        et_runtime_close(rt);
        return et_error_set(err, s, "cannot plan the model: %s", et_status_str(s));
    }
    if (rt->accel && (s = et_accel_reserve(rt->accel, rt->plan.device, err)) != ET_OK) {
        et_runtime_close(rt);
        return s;
    }
    /* plan.host is plan.total without a device arena, the token buffers with one */
    if (posix_memalign(&rt->arena_mem, ET_ALIGN, rt->plan.host) != 0) {
        rt->arena_mem = NULL;
        et_runtime_close(rt);
        return et_error_set(err, ET_ERR_NOMEM, "cannot allocate the model's arena of %zu bytes",
                            rt->plan.host);
    }
    et_arena_init(&rt->arena, rt->arena_mem, rt->plan.host);
    if ((s = et_gpt_create(&rt->model, &c, B, T, mode, &rt->be, &rt->arena)) != ET_OK) {
        s = et_error_set(err, s, "cannot build the model in its arena: %s%s%s", et_status_str(s),
                         rt->accel && *et_accel_last_error(rt->accel) ? ": " : "",
                         rt->accel ? et_accel_last_error(rt->accel) : "");
        et_runtime_close(rt);
        return s;
    }
    return ET_OK;
}

void et_runtime_close(et_runtime *rt)
{
    if (!rt) return;
    et_accel_close(rt->accel);
    if (rt->pool) et_pool_destroy(rt->pool);
    free(rt->arena_mem);
    memset(rt, 0, sizeof *rt);
}

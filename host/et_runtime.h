/* et_runtime.h - a model ready to run on the host: thread pool, backend, arena (one
 * aligned heap block of exactly the plan's size) and the model in it. The host's only
 * allocation for a model is that one block. */
#ifndef ET_RUNTIME_H
#define ET_RUNTIME_H

#include "et_cpu.h"
#include "et_gpt.h"
#include "et_host.h"

struct et_pool;
struct et_accel;

typedef struct et_runtime {
    struct et_pool *pool;
    et_threads threads;
    et_backend be;
    et_cpu_ctx cpu;
    struct et_accel *accel; /**< device backend (et_accel.h), NULL for cpu */
    et_gpt_plan plan;
    void *arena_mem;
    et_arena arena;
    et_gpt model;
} et_runtime;

/**
 * Sets up backend @p backend, @p nthreads workers (<= 0: all cores) and a model of @p cfg
 * for batch B and sequence T in an arena of exactly the plan's size. @p backend is "cpu"
 * (or NULL) or a device backend of this build, "opencl[:P.D]" or "cuda[:N]", with an
 * optional precision suffix, "cuda+bf16" (et_accel.h; the others refuse "+bf16"):
 * its tensors then live in a device arena of exactly plan.device bytes and the host
 * arena holds plan.host. A backend that is unknown, not built in or has no device is
 * ET_ERR_DEVICE with a message naming what this build has and why the device is missing.
 */
et_status et_runtime_open(et_runtime *rt, const char *backend, const et_gpt_config *cfg, int B,
                          int T, et_gpt_mode mode, int nthreads, et_error *err);
void et_runtime_close(et_runtime *rt);

/** Number of online CPUs (at least 1). */
int et_cpu_count(void);

#endif /* ET_RUNTIME_H */

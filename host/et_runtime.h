/* et_runtime.h - a model ready to run on the host: thread pool, backend, arena (one
 * aligned heap block of exactly the plan's size) and the model in it. The host's only
 * allocation for a model is that one block. */
#ifndef ET_RUNTIME_H
#define ET_RUNTIME_H

#include "et_cpu.h"
#include "et_gpt.h"
#include "et_host.h"

struct et_pool;

typedef struct et_runtime {
    struct et_pool *pool;
    et_threads threads;
    et_backend be;
    et_cpu_ctx cpu;
    et_gpt_plan plan;
    void *arena_mem;
    et_arena arena;
    et_gpt model;
} et_runtime;

/**
 * Sets up backend @p backend ("cpu"), @p nthreads workers (<= 0: all cores) and a model
 * of @p cfg for batch B and sequence T in an arena of exactly the plan's size.
 */
et_status et_runtime_open(et_runtime *rt, const char *backend, const et_gpt_config *cfg, int B,
                          int T, et_gpt_mode mode, int nthreads, et_error *err);
void et_runtime_close(et_runtime *rt);

/** Number of online CPUs (at least 1). */
int et_cpu_count(void);

#endif /* ET_RUNTIME_H */

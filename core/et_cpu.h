/* et_cpu.h - the reference cpu backend: every op of et_backend in C99, with AVX2/FMA
 * and NEON paths behind #if and a scalar path always present. Threads come from the
 * host through et_threads; results do not depend on the worker count. */
#ifndef ET_CPU_H
#define ET_CPU_H

#include "et_backend.h"

/** The cpu backend's state; the caller owns it (no allocation happens here). */
typedef struct et_cpu_ctx {
    const et_threads *th; /**< may be NULL: serial */
    float *scratch;       /**< per-worker GEMM packing buffers, from the model's arena */
    size_t scratch_bytes;
} et_cpu_ctx;

/**
 * Fills @p be with the cpu ops.
 * @param[out] be   backend table
 * @param[out] ctx  its context (must outlive @p be)
 * @param[in]  th   thread hook, or NULL for serial
 */
et_status et_cpu_backend_init(et_backend *be, et_cpu_ctx *ctx, const et_threads *th);

/** Scratch bytes the cpu GEMM needs for @p nworkers workers. */
size_t et_cpu_scratch_bytes(int nworkers);

#endif /* ET_CPU_H */

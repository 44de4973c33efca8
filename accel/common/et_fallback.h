/* et_fallback.h - the proxy every device backend is used through: ops the driver has
 * are forwarded to it, ops it lacks (NULL in its table) run on the cpu backend with the
 * transfers done for them, and every op can be timed.
 *
 * A fallback op downloads each device buffer the cpu op reads (and each output it only
 * adds into, or writes in part), runs the cpu op on host copies, uploads what it wrote
 * and frees the copies: correct for any driver that has upload and download, never
 * fast. A driver with no download hook works on host memory and gets the cpu op on its
 * own pointers. The proxy is the table the model sees; its ctx is the et_fallback, so
 * the et_fallback must outlive the table. Deliberately absent: caching host copies
 * between ops, overlapping transfers with compute.
 */
#ifndef ET_FALLBACK_H
#define ET_FALLBACK_H

#include "et_backend.h"
#include "et_cpu.h"

/** The ops of et_backend, in table order (for per-op counters). */
enum {
    ET_OP_MATMUL_FWD, ET_OP_MATMUL_BWD, ET_OP_LAYERNORM_FWD, ET_OP_LAYERNORM_BWD,
    ET_OP_ATTENTION_FWD, ET_OP_ATTENTION_BWD, ET_OP_GELU_FWD, ET_OP_GELU_BWD,
    ET_OP_RESIDUAL_FWD, ET_OP_ACCUMULATE, ET_OP_ENCODER_FWD, ET_OP_ENCODER_BWD,
    ET_OP_CROSSENTROPY_FWD, ET_OP_CROSSENTROPY_BWD, ET_OP_ADAMW, ET_OP_SUMSQ, ET_OP_SCALE,
    ET_OP_ZERO, ET_OP_COPY, ET_OP_COUNT
};

/** Proxy state: the driver's table, a cpu backend for the ops it lacks, counters. */
typedef struct et_fallback {
    et_backend dev;               /**< copy of the driver's table (NULL ops fall back) */
    et_backend cpu;               /**< the cpu backend that runs them */
    et_cpu_ctx cpu_ctx;
    void *cpu_scratch;            /**< the cpu GEMM's packing buffers (malloc) */
    et_status (*sync)(void *ctx); /**< waits for the driver's queued work (may be NULL) */
    int profile;                  /**< nonzero: time every op (syncs after each) */
    double seconds[ET_OP_COUNT];  /**< wall time per op while profiling */
    unsigned long calls[ET_OP_COUNT];     /**< calls per op */
    unsigned long fallbacks[ET_OP_COUNT]; /**< of those, calls run on the cpu */
} et_fallback;

/**
 * Builds the proxy table @p out over a driver's table @p dev.
 * @param[out] fb   proxy state (must outlive @p out)
 * @param[in]  dev  driver table, copied; its NULL ops run on the cpu
 * @param[in]  sync waits for the driver's queued work (for timing; may be NULL)
 * @param[in]  th   threads for the cpu ops (may be NULL: serial)
 * @param[out] out  the table to give the model
 * @return ET_OK, ET_ERR_INVALID, ET_ERR_NOMEM (the cpu GEMM scratch)
 */
et_status et_fallback_wrap(et_fallback *fb, const et_backend *dev, et_status (*sync)(void *ctx),
                           const et_threads *th, et_backend *out);

/** Frees what et_fallback_wrap() allocated. NULL is a no-op. */
void et_fallback_release(et_fallback *fb);

/** Clears the counters. */
void et_fallback_reset_counters(et_fallback *fb);

/** Name of op @p op ("matmul_fwd", ...), or "?" out of range. */
const char *et_fallback_op_name(int op);

#endif /* ET_FALLBACK_H */

/* et_gemm.h - single-precision GEMM for the three layouts training needs.
 *
 *   C(M,N) = [C +] op(A)(M,K) . op(B)(K,N) [+ bias(N)]
 *
 * op(A) is A stored (M,K) row-major, or with transA its transpose stored (K,M); op(B) is
 * B stored (K,N), or with transB its transpose stored (N,K). Blocked and packed, with an
 * AVX-512 6x32, AVX2/FMA or NEON 6x16 micro-kernel (a scalar one always present),
 * threaded through et_threads.
 * The K dimension is blocked in fixed steps, so the result is bitwise the same for any
 * worker count. No allocation: the caller passes et_gemm_scratch_bytes() of scratch.
 */
#ifndef ET_GEMM_H
#define ET_GEMM_H

#include "et_conf.h"
#include "et_status.h"
#include "et_threads.h"

typedef struct et_gemm_args {
    int transA, transB;
    int M, N, K;
    const float *A; int lda;
    const float *B; int ldb;
    const float *bias;  /**< (N) added once, or NULL */
    int accumulate;     /**< 1: C += product; 0: C = product */
    float *C; int ldc;
} et_gemm_args;

/** Scratch bytes et_gemm_f32 needs for @p nworkers workers. */
size_t et_gemm_scratch_bytes(int nworkers);

/**
 * Runs one GEMM.
 * @param[in] g       shapes, operands, flags
 * @param[in] th      thread hook (NULL: serial)
 * @param[in] scratch aligned scratch of at least et_gemm_scratch_bytes(workers) bytes
 * @param[in] scratch_bytes its size
 * @return ET_OK, ET_ERR_INVALID for bad shapes/strides, ET_ERR_NOMEM if scratch is short
 */
et_status et_gemm_f32(const et_gemm_args *g, const et_threads *th, float *scratch,
                      size_t scratch_bytes);

#endif /* ET_GEMM_H */

/* et_lowrank.h - truncated SVD factorization of weight matrices.
 *
 * et_svd is a freestanding one-sided Jacobi SVD (Hestenes): plane rotations
 * orthogonalize the columns of the matrix (of its transpose when it is wide) in double
 * precision until no pair has a cosine above 1e-12; the column norms are the singular
 * values. It is exact to rounding for the small matrices of an edge model (O(m n^2) per
 * sweep, typically 6-10 sweeps) and needs no allocation beyond its arena scratch.
 * et_lowrank_factor turns W (OC,K) into A (OC,r) . B (r,K) with A = U_r S_r^1/2 and
 * B = S_r^1/2 V_r^T, the best rank-r approximation in the Frobenius norm (Eckart-Young),
 * and the layer becomes two smaller matmuls (et_lowrank_matmul).
 * Deliberately avoids: randomized methods (not needed at these sizes) and libm.
 */
#ifndef ET_LOWRANK_H
#define ET_LOWRANK_H

#include "et_conf.h"
#include "et_status.h"
#include "et_arena.h"
#include "et_threads.h"

/** Exact arena scratch et_svd() takes for an (m, n) matrix. */
size_t et_svd_bytes(int m, int n);

/**
 * Thin SVD A(m,n) = U(m,k) diag(s) Vt(k,n), k = min(m,n), singular values descending.
 * @param[in]  A       (m,n) row-major
 * @param[out] s       (k)
 * @param[out] U       (m,k) or NULL
 * @param[out] Vt      (k,n) or NULL
 * @param[in]  scratch arena with et_svd_bytes(m, n) free; released on return
 * @return ET_OK, ET_ERR_INVALID (shape), ET_ERR_RANGE (a non-finite entry),
 *         ET_ERR_NOMEM (scratch short, nothing touched)
 */
et_status et_svd(const float *A, int m, int n, float *s, float *U, float *Vt, et_arena *scratch);

/** Smallest rank whose singular values keep at least @p energy (0..1] of sum s_i^2. */
int et_lowrank_rank_energy(const float *s, int k, float energy);

/** Largest rank r >= 1 with r (OC + K) <= share * OC * K (the factored layer's
 *  parameters within a share of the dense one's); 0 when even r = 1 does not fit. */
int et_lowrank_rank_params(int OC, int K, float share);

/**
 * W (OC,K) ~= A (OC,r) . B (r,K), the truncated SVD split evenly (A = U S^1/2,
 * B = S^1/2 Vt).
 * @return ET_OK, ET_ERR_RANGE (r < 1 or r > min(OC,K): a rank the matrix does not
 *         have), ET_ERR_INVALID, ET_ERR_NOMEM (scratch: et_svd_bytes(OC, K) plus the
 *         singular vectors, see et_lowrank_factor_bytes)
 */
et_status et_lowrank_factor(const float *W, int OC, int K, int r, float *A, float *B,
                            et_arena *scratch);

/**
 * Activation-aware variant (ASVD, Yuan et al. 2023): factors W diag(c) instead of W,
 * then folds 1/c back into B, so input channels with large activations (c_k, e.g.
 * sqrt(mean |x_k|) over calibration data) are approximated more closely. c NULL is
 * et_lowrank_factor. Needs et_lowrank_factor_bytes(OC, K) + OC*K floats of scratch
 * (et_lowrank_scaled_bytes).
 * @return as et_lowrank_factor; ET_ERR_RANGE also for a scale that is not finite and > 0
 */
et_status et_lowrank_factor_scaled(const float *W, int OC, int K, int r, const float *c, float *A,
                                   float *B, et_arena *scratch);

/** Exact arena scratch et_lowrank_factor_scaled() takes. */
size_t et_lowrank_scaled_bytes(int OC, int K);

/** Exact arena scratch et_lowrank_factor() takes. */
size_t et_lowrank_factor_bytes(int OC, int K);

/**
 * out(N,OC) = (inp(N,K) . B^T) . A^T + bias: the factored layer as two GEMMs through
 * core's et_gemm_f32, with @p tmp (N,r) between them.
 * @param[in] gemm_scratch et_gemm_scratch_bytes(workers) bytes
 */
et_status et_lowrank_matmul(float *out, const float *inp, const float *A, const float *B,
                            const float *bias, int N, int K, int OC, int r, float *tmp,
                            const et_threads *th, float *gemm_scratch, size_t gemm_scratch_bytes);

#endif /* ET_LOWRANK_H */

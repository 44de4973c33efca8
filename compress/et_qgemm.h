/* et_qgemm.h - int8 matrix products for quantized linear layers.
 *
 * Both kernels compute a linear layer's NT product, out(M,N) = A(M,K) . B(N,K)^T, with
 * the weights B stored as int8 rows (one row per output channel):
 *
 *  - et_qgemm_s8 (W8A8): A is int8 too; products accumulate exactly in int32, a bias
 *    of int32 is added, and the epilogue either requantizes to int8 with a per-channel
 *    fixed-point multiplier (no float at all), converts to float with a per-channel
 *    scale (the model's output boundary), or stores the raw int32. Integer arithmetic
 *    is exact, so every path (AVX2, AVX-512 VNNI, NEON, scalar) and every thread count
 *    gives the bits of et_qgemm_s8_ref(), the plain triple loop.
 *  - et_qgemm_w8a32 (weight-only): A is float; each int8 weight is dequantized
 *    (q * scale[n]) while its panel is packed, inside the kernel, so no float copy of the
 *    weights exists outside a cache-sized panel.
 *
 * No allocation: callers pass scratch of the size the _scratch_bytes() functions give.
 */
#ifndef ET_QGEMM_H
#define ET_QGEMM_H

#include "et_conf.h"
#include "et_status.h"
#include "et_threads.h"

/** What the int8 GEMM writes. */
typedef enum et_qgemm_out {
    ET_QGEMM_OUT_S8 = 0,  /**< int8: clamp(zp_out + requant(acc + bias, mult, shift)) */
    ET_QGEMM_OUT_F32 = 1, /**< float: (acc + bias) * scale[n] */
    ET_QGEMM_OUT_S32 = 2  /**< int32: acc + bias */
} et_qgemm_out;

/** Operands of et_qgemm_s8. */
typedef struct et_qgemm_args {
    int M, N, K;
    const int8_t *A; int lda;  /**< (M,K) activations */
    const int8_t *B; int ldb;  /**< (N,K) weights, one row per output channel */
    const int32_t *bias;       /**< (N) or NULL */
    et_qgemm_out out;
    const int32_t *mult;       /**< (N) Q31 multipliers in [2^30, 2^31) or 0 (OUT_S8) */
    const int32_t *shift;      /**< (N) shifts in [-31, 30] (OUT_S8) */
    int32_t zp_out;            /**< output zero point (OUT_S8) */
    const float *scale;        /**< (N) (OUT_F32) */
    void *C; int ldc;          /**< (M,N) int8, float or int32; ldc in elements */
} et_qgemm_args;

/** Largest K the int8 GEMM takes (its B panel holds all of K). */
#define ET_QGEMM_KMAX 16384

/** Scratch bytes et_qgemm_s8 needs for K up to @p kmax and @p nworkers workers. */
size_t et_qgemm_s8_scratch_bytes(int kmax, int nworkers);

/**
 * Runs one int8 GEMM.
 * @param[in] g       operands (see et_qgemm_args)
 * @param[in] th      thread hook (NULL: serial); results never depend on it
 * @param[in] scratch at least et_qgemm_s8_scratch_bytes(K, workers) bytes
 * @param[in] scratch_bytes its size
 * @return ET_OK, ET_ERR_INVALID (shapes, strides, missing epilogue operands, K > KMAX),
 *         ET_ERR_NOMEM (scratch too small)
 */
et_status et_qgemm_s8(const et_qgemm_args *g, const et_threads *th, void *scratch,
                      size_t scratch_bytes);

/** Number of int8 micro-kernels compiled into this build (the best first, scalar last). */
int et_qgemm_s8_nkernels(void);

/** Name of kernel @p i ("avx512vnni-u8s8", "avx512vnni-s16", "avx2", "neon", "scalar"), NULL
 *  out of range. */
const char *et_qgemm_s8_kernel_name(int i);

/** et_qgemm_s8 with kernel @p kernel (0 .. nkernels-1) rather than the best one; for
 *  tests and benchmarks. ET_ERR_INVALID for an unknown index. */
et_status et_qgemm_s8_with(const et_qgemm_args *g, const et_threads *th, void *scratch,
                           size_t scratch_bytes, int kernel);

/** The plain triple loop the kernels are tested against (same operands, no scratch). */
et_status et_qgemm_s8_ref(const et_qgemm_args *g);

/** Bytes et_qgemm_s8_pack() writes for an (N,K) weight matrix (0 for a bad shape). */
size_t et_qgemm_s8_pack_bytes(int N, int K);

/**
 * Packs int8 weights once, ahead of time, in the layout of this build's best kernel
 * (with its per-column correction terms), so that et_qgemm_s8_packed() does no packing.
 * A model packs its weights when it is created; the packed copy is about the size of
 * the int8 weights (pairs layouts: twice).
 * @param[in]  B,ldb  (N,K) weights, one row per output channel
 * @param[in]  th     thread hook (NULL: serial)
 * @param[out] dst    64-byte aligned, et_qgemm_s8_pack_bytes(N, K) bytes
 * @return ET_OK, ET_ERR_INVALID (shape, stride, alignment), ET_ERR_NOMEM (dst too small)
 */
et_status et_qgemm_s8_pack(const int8_t *B, int ldb, int N, int K, const et_threads *th, void *dst,
                           size_t dst_bytes);

/** Scratch bytes et_qgemm_s8_packed needs for K up to @p kmax and @p nworkers workers
 *  (rows of A only: less than et_qgemm_s8_scratch_bytes). */
size_t et_qgemm_s8_packed_scratch_bytes(int kmax, int nworkers);

/**
 * et_qgemm_s8 over weights packed by et_qgemm_s8_pack(): the same bits (those of
 * et_qgemm_s8_ref), without packing the weights. g->B and g->ldb are not read.
 * @return ET_OK, ET_ERR_INVALID (operands, or @p packed not a pack of g->N x g->K),
 *         ET_ERR_NOMEM (scratch too small)
 */
et_status et_qgemm_s8_packed(const et_qgemm_args *g, const void *packed, const et_threads *th, void *scratch,
                             size_t scratch_bytes);

/** Operands of et_qgemm_w8a32: out(M,N) = A . (B * scale)^T + bias. */
typedef struct et_wgemm_args {
    int M, N, K;
    const float *A; int lda;   /**< (M,K) */
    const int8_t *B; int ldb;  /**< (N,K) */
    const float *scale;        /**< (N) per-channel weight scales */
    const float *bias;         /**< (N) or NULL */
    float *C; int ldc;         /**< (M,N) */
} et_wgemm_args;

/** Scratch bytes et_qgemm_w8a32 needs for @p nworkers workers (any K). */
size_t et_qgemm_w8a32_scratch_bytes(int nworkers);

/**
 * Runs one weight-only int8 GEMM (float activations, float result). K is blocked in
 * fixed steps, so the bits do not depend on the worker count.
 * @return ET_OK, ET_ERR_INVALID, ET_ERR_NOMEM (scratch too small)
 */
et_status et_qgemm_w8a32(const et_wgemm_args *g, const et_threads *th, void *scratch,
                         size_t scratch_bytes);

#endif /* ET_QGEMM_H */

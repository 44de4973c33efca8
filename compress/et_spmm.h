/* et_spmm.h - sparse weights times dense activations: a linear layer
 * out(R,OC) = in(R,K) . W^T + bias whose W (OC,K) is kept in compact storage, read in
 * place and never expanded:
 *
 *  - N:M (ET_SPMAT_NM): N values of every group of M consecutive weights along a row,
 *    with their positions in 2 bits (M <= 4) or 4 bits (et_prune_nm_pack's layout);
 *  - bitmap (ET_SPMAT_BITMAP): one keep bit per weight (row-major, bit i of byte i/8)
 *    and the kept values in order, with a row pointer (rows+1 offsets into the values)
 *    that et_spmat_rowptr() derives from the bitmap.
 *
 * Values are float (et_spmm_f32) or int8 with int32 accumulation and the int8 GEMM's
 * epilogues (et_spmm_s8, the W8A8 path).
 *
 * How it runs: the activations are transposed once per call into panels of 32 rows
 * (K x 32 floats), so a kept weight (k, v) of output row o updates 32 rows with one
 * broadcast of v and four FMAs against a contiguous 128-byte slice; a task owns 16 output
 * rows x up to 256 activation rows, decodes its rows' positions once and walks them, K in
 * blocks of 128 inputs, for every block of 32 rows (three interleaved accumulator
 * chains). Only kept weights are read and multiplied. Integer mode: int8 products are
 * exact in float and a K block's sum of at most 128 of them stays below 2^24, so it is
 * accumulated in float FMAs, converted exactly to int32 and added in int32. N:4 int8
 * (2:4, 1:4, 3:4) on x86 has its own kernel: one broadcast of a group's four activations
 * (int16) and a byte shuffle give every output lane its pair of kept activations, and
 * pmaddwd / vpdpwssd adds both products in int32. Every int8 path is bit-identical to
 * the integer triple loop (et_spmm_s8_ref) for any K.
 * Tasks never depend on the worker count and each output has one writer, so results are
 * bitwise identical for any number of threads.
 * Deliberately avoids: gathers (slow on x86), expanding indices to wider types in the
 * weights (RAM stays at the compact size; decoding is per task, in worker scratch).
 */
#ifndef ET_SPMM_H
#define ET_SPMM_H

#include "et_conf.h"
#include "et_status.h"
#include "et_threads.h"
#include "et_qgemm.h"

/** Storage formats of a sparse matrix. */
typedef enum et_spmat_format {
    ET_SPMAT_NM = 1,    /**< N:M values + 2/4-bit positions */
    ET_SPMAT_BITMAP = 2 /**< keep bitmap + kept values + row pointer */
} et_spmat_format;

/** A compact (rows, cols) = (OC, K) weight matrix, read-only. */
typedef struct et_spmat {
    int format;             /**< et_spmat_format */
    int rows, cols;         /**< OC, K */
    int N, M;               /**< N:M: 1 <= N < M <= 16, cols % M == 0 */
    const float *vf;        /**< float values, or NULL */
    const int8_t *vq;       /**< int8 values, or NULL */
    const uint8_t *index;   /**< N:M positions, or the bitmap */
    const uint32_t *rowptr; /**< BITMAP: (rows+1), rowptr[0] = 0, rowptr[rows] = nnz */
} et_spmat;

/** Values an N:M matrix stores: rows * (cols / M) * N. */
size_t et_spmat_nm_values(int rows, int cols, int N, int M);

/** Bytes of the index part: N:M positions, or the bitmap (rows * cols bits). */
size_t et_spmat_index_bytes(int format, int rows, int cols, int N, int M);

/**
 * Fills a bitmap's row pointer and checks it holds @p nnz kept weights.
 * @param[out] rowptr (rows+1)
 * @return ET_OK, ET_ERR_INVALID (shape), ET_ERR_FORMAT (the bitmap keeps another count)
 */
et_status et_spmat_rowptr(const uint8_t *bitmap, int rows, int cols, size_t nnz, uint32_t *rowptr);

/**
 * Checks a matrix before use: shape, N:M, values present, every N:M position < M, a
 * bitmap's row pointer consistent with its bits. Run once on untrusted storage.
 * @return ET_OK, ET_ERR_INVALID, ET_ERR_FORMAT (a position or row pointer out of range)
 */
et_status et_spmat_check(const et_spmat *w);

/** Exact scratch et_spmm_f32 / et_spmm_s8 take for R activation rows, K inputs and
 *  @p nworkers workers (the transposed activations plus per-worker decode buffers). */
size_t et_spmm_scratch_bytes(int R, int K, int nworkers);

/**
 * out(R,OC) = in(R,K) . W^T + bias, float values.
 * @param[in]  w       checked matrix with vf set
 * @param[in]  in      (R,K) row-major, row stride K
 * @param[in]  bias    (OC) or NULL
 * @param[out] out     (R,OC)
 * @param[in]  scratch et_spmm_scratch_bytes(R, K, workers) bytes, 64-byte aligned
 * @return ET_OK, ET_ERR_INVALID, ET_ERR_NOMEM (scratch short)
 */
et_status et_spmm_f32(const et_spmat *w, float *out, const float *in, const float *bias, int R,
                      const et_threads *th, void *scratch, size_t scratch_bytes);

/** The plain loop et_spmm_f32 is tested against (sequential float sums, no scratch). */
et_status et_spmm_f32_ref(const et_spmat *w, float *out, const float *in, const float *bias, int R);

/** Operands of et_spmm_s8: the int8 GEMM's epilogues (et_qgemm_out) over a sparse W. */
typedef struct et_spmm_s8_args {
    int M;                 /**< activation rows */
    const int8_t *A;       /**< (M,K) int8, row stride K */
    const et_spmat *W;     /**< (N,K) with vq set */
    const int32_t *bias;   /**< (N) or NULL, added to the accumulator (wrapping, as et_qgemm_s8) */
    et_qgemm_out out;      /**< S8 (requantize), F32 (scale) or S32 (raw) */
    const int32_t *mult, *shift; /**< (N) OUT_S8 */
    int32_t zp_out;        /**< OUT_S8 */
    const float *scale;    /**< (N) OUT_F32 */
    void *C;               /**< (M,N), row stride N */
} et_spmm_s8_args;

/** Integer sparse GEMM; bit-identical to et_spmm_s8_ref and to et_qgemm_s8_ref on the
 *  dense-expanded weights. @return ET_OK, ET_ERR_INVALID, ET_ERR_NOMEM */
et_status et_spmm_s8(const et_spmm_s8_args *g, const et_threads *th, void *scratch,
                     size_t scratch_bytes);

/** The integer triple loop over the kept weights (no scratch). */
et_status et_spmm_s8_ref(const et_spmm_s8_args *g);

#endif /* ET_SPMM_H */

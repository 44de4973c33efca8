/* et_quant.h - int8 quantization primitives: fixed-point requantization (the gemmlowp /
 * TensorFlow Lite Micro scheme), per-channel symmetric weight quantization, per-tensor
 * asymmetric activation parameters, and a two-pass activation calibrator (min/max and
 * percentile).
 *
 * A real multiplier r in (0, 2^31) is stored as a Q31 integer m in [2^30, 2^31) and a
 * shift s with r ~= m * 2^(s - 31); an int32 accumulator is requantized with
 *   et_quant_requant(acc, m, s) = RoundingDivideByPOT(SRDHM(acc << max(s,0), m), max(-s,0))
 * which is TFLite's MultiplyByQuantizedMultiplier, except that the left shift saturates
 * (TFLite's wraps, which is undefined behaviour for large accumulators). No float is
 * used at inference time by anything here except the float<->int8 boundary helpers.
 *
 * Deliberately avoids: libm (rounding is done by hand), asymmetric weights (symmetric
 * weights keep the int8 GEMM free of a weight zero point), and per-channel activations.
 */
#ifndef ET_QUANT_H
#define ET_QUANT_H

#include "et_conf.h"
#include "et_status.h"
#include "et_arena.h"

/** Affine quantization of one tensor: real = scale * (q - zero_point). */
typedef struct et_qparams {
    float scale;        /**< > 0 */
    int32_t zero_point; /**< in [-128, 127] */
} et_qparams;

/**
 * Splits a real multiplier into a Q31 multiplier and a power-of-two shift (TFLite's
 * QuantizeMultiplier).
 * @param[in]  real  multiplier, finite and > 0, below 2^30
 * @param[out] mult  in [2^30, 2^31 - 1], or 0 when @p real is too small to represent
 * @param[out] shift in [-31, 30]: positive shifts left
 * @return ET_OK or ET_ERR_RANGE (real not finite, <= 0 or too large)
 */
et_status et_quant_multiplier(double real, int32_t *mult, int32_t *shift);

/** SaturatingRoundingDoublingHighMul: round(a * b / 2^31), saturating the one overflow
 *  (a == b == INT32_MIN). Ties round toward +infinity, exactly as gemmlowp does. */
int32_t et_quant_srdhm(int32_t a, int32_t b);

/** RoundingDivideByPOT: x / 2^e rounded to nearest, ties away from zero; 0 <= e <= 31. */
int32_t et_quant_rdbpot(int32_t x, int e);

/** Requantizes an accumulator by a (mult, shift) pair from et_quant_multiplier(); the
 *  left shift saturates. The scalar reference every SIMD epilogue is tested against. */
int32_t et_quant_requant(int32_t acc, int32_t mult, int32_t shift);

/**
 * Per-output-channel symmetric int8 weights: scale[r] = max|w[r,:]| / 127,
 * q = round(w / scale) in [-127, 127]; an all-zero row gets scale 1.
 * @param[in]  w     (rows, cols) row-major
 * @param[out] q     (rows, cols)
 * @param[out] scale (rows)
 * @return ET_OK, ET_ERR_INVALID (bad shape), ET_ERR_RANGE (a non-finite weight)
 */
et_status et_quant_weights_s8(const float *w, int rows, int cols, int8_t *q, float *scale);

/**
 * Asymmetric int8 parameters covering [lo, hi] widened to contain 0 (so that zero is
 * exact): scale = (hi - lo) / 255, zero_point = round(-128 - lo / scale).
 * @return ET_OK, or ET_ERR_RANGE for a non-finite or inverted range
 */
et_status et_quant_act_params(float lo, float hi, et_qparams *p);

/** q[i] = clamp(round(x[i] / scale) + zp, -128, 127), ties away from zero. */
void et_quant_f32_to_s8(int8_t *q, const float *x, size_t n, const et_qparams *p);

/** x[i] = scale * (q[i] - zp). */
void et_quant_s8_to_f32(float *x, const int8_t *q, size_t n, const et_qparams *p);

/** Rounds half away from zero and clamps to [lo, hi] (a finite float is assumed). */
int32_t et_quant_round_clamp(float v, int32_t lo, int32_t hi);

// --- calibration

/** How an activation range is chosen from what calibration saw. */
typedef enum et_qcalib_method {
    ET_QCALIB_MINMAX = 1,    /**< the smallest and largest value seen */
    ET_QCALIB_PERCENTILE = 2 /**< drop a share (1 - p) of the values at each end */
} et_qcalib_method;

/** Observer state for @c nsites activation tensors. Pass 0 records min and max; pass 1
 *  fills a histogram of @c nbins bins over each site's [min, max]. */
typedef struct et_qcalib {
    int nsites, nbins;
    int pass;         /**< 0: min/max, 1: histogram */
    float *min, *max; /**< (nsites) */
    uint64_t *count;  /**< (nsites) values seen in the histogram pass */
    uint32_t *hist;   /**< (nsites, nbins) */
} et_qcalib;

/** Exact arena bytes et_qcalib_init() takes. */
size_t et_qcalib_bytes(int nsites, int nbins);

/**
 * Sets up a calibrator in @p arena (persistent blocks).
 * @return ET_OK, ET_ERR_INVALID (nsites or nbins < 1), ET_ERR_NOMEM (arena untouched)
 */
et_status et_qcalib_init(et_qcalib *c, int nsites, int nbins, et_arena *arena);

/**
 * Observes @p n values of site @p site in the current pass.
 * @return ET_OK, ET_ERR_RANGE (site out of range, or a non-finite value: calibration
 *         of a diverged model is refused)
 */
et_status et_qcalib_observe(et_qcalib *c, int site, const float *x, size_t n);

/** Ends the min/max pass; the histogram pass follows. ET_ERR_STATE if a site saw no
 *  values or the pass already ended. */
et_status et_qcalib_next_pass(et_qcalib *c);

/**
 * The range a site should be quantized over.
 * @param[in]  method ET_QCALIB_MINMAX (needs pass 0 done) or ET_QCALIB_PERCENTILE
 *                    (needs the histogram pass)
 * @param[in]  pct    for percentile, the share kept at each end, in (0.5, 1]
 * @param[out] lo,hi  the range
 * @return ET_OK, ET_ERR_INVALID, ET_ERR_STATE (pass missing or site never seen)
 */
et_status et_qcalib_range(const et_qcalib *c, int site, et_qcalib_method method, float pct,
                          float *lo, float *hi);

#endif /* ET_QUANT_H */

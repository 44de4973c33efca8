/* et_qat.h - quantization-aware training: fake quantization of exactly the int8 scheme
 * of et_qgpt.h, a straight-through estimator, and a backend proxy that puts both into
 * an ordinary fp32 training step.
 *
 * What is simulated (W8A8; W8A32 fakes the weights only), op by op as et_qgpt_forward
 * runs it:
 *  - every weight matrix, the embeddings and the tied logits' matrix: per-row symmetric
 *    int8 (et_quant_weights_s8), dequantized: w~ = scale[r] * q;
 *  - the 8L + 1 activation sites (ET_QSITE_*): the input of each of the four linear
 *    layers of a block (LN1, ATTY, LN2, GELU) and of the logits (LNF), and the output of
 *    each linear layer of a block (QKV, ATTPROJ, FCH, FCPROJ), per tensor asymmetric
 *    int8 (et_quant_act_params, et_quant_f32_to_s8), dequantized: x~ = s (q - zp).
 *    GELU then runs on the fake-quantized fc output and its result is fake-quantized
 *    as the fcproj input, which is what the int8 GELU table computes.
 * The fp32 master weights stay in the model and get the updates.
 *
 * Ranges: each site's range is a moving average of the per-batch min and max
 * (r = d r + (1 - d) batch), the first batch's own min/max before any is recorded. A
 * forward quantizes with the recorded range and notes the batch's min/max; the backward
 * of that site commits it. So evaluation forwards (no backward) read the ranges but
 * never move them, and the ranges an export writes are exactly those the last
 * evaluation used.
 *
 * Straight-through estimator: an activation's gradient passes where the value was
 * inside the representable range (round(x / s) + zp in [-128, 127]) and is zero where
 * it was clipped; weights are never clipped (their scale is the row's max), so their
 * gradient passes whole. dweight and dinput are computed against the fake-quantized
 * operands.
 *
 * The proxy (et_qat_attach) replaces a model's backend table in place: matmul and
 * encoder forward/backward are wrapped, every other op goes to the wrapped backend. A
 * matmul is matched to its layer and sites by its weight pointer, so the proxy does
 * not depend on the order of calls. Deliberately avoids: device memory (host buffers
 * only), per-channel activations, learned ranges (LSQ), any allocation outside the
 * caller's arena.
 */
#ifndef ET_QAT_H
#define ET_QAT_H

#include "et_conf.h"
#include "et_status.h"
#include "et_arena.h"
#include "et_backend.h"
#include "et_gpt.h"
#include "et_quant.h"
#include "et_qgpt.h"

/** Calibration method a QAT export records in the quantized-model file (after
 *  ET_QCALIB_MINMAX = 1 and ET_QCALIB_PERCENTILE = 2): moving-average min/max. */
#define ET_QAT_CALIB_METHOD 3

/** One activation site's range. */
typedef struct et_qat_site {
    float lo, hi;         /**< recorded range (moving average) */
    float obs_lo, obs_hi; /**< the last forward's batch min/max, not yet committed */
    et_qparams q;         /**< parameters the last forward quantized with */
    int have;             /**< a range is recorded */
    int pending;          /**< obs_* waits for this site's backward */
} et_qat_site;

/** QAT state and proxy. Fields are readable; change them through the functions. */
typedef struct et_qat {
    et_gpt_config cfg;
    et_qmode mode;      /**< W8A8 (weights and activations) or W8A32 (weights only) */
    float decay;        /**< moving-average decay of the ranges, in [0, 1) */
    int BT;             /**< rows (B x T) the buffers are planned for */
    int A, F;           /**< attention and MLP widths (C and 4C for GPT-2's shape) */
    int nsites;         /**< et_qgpt_nsites(cfg) */
    et_qat_site *site;  /**< (nsites) */
    uint8_t *mask;      /**< (L, BT, 3A + C + F + C) W8A8: STE masks of the block outputs */
    float *xq;          /**< (BT, W) W8A8: fake-quantized matmul input; W = max(C, A, F) */
    float *wq;          /**< the largest weight matrix (or wte and wpe), fake-quantized */
    float *dy;          /**< (BT, max(3A, F)) W8A8: masked output gradient */
    float *dx;          /**< (BT, W) W8A8: input gradient before its mask */
    int8_t *row;        /**< (W): one row's int8 values */
    float *rlo, *rhi;   /**< (nsites): the ranges an export hands et_qgpt_quantize */
    /* bound by et_qat_attach */
    et_backend inner;   /**< the wrapped table */
    et_backend *table;  /**< the table the model runs through (now the proxy) */
    et_gpt_params P;    /**< the model's parameter pointers */
    unsigned long commits; /**< backward passes through the proxy (counted at the logits) */
} et_qat;

/** Exact arena bytes et_qat_init() takes for batch B, sequence T. 0 for a bad config. */
size_t et_qat_bytes(const et_gpt_config *cfg, et_qmode mode, int B, int T);

/**
 * Sets up QAT state in @p arena (persistent blocks); no range is recorded yet.
 * @param[in] decay moving-average decay in [0, 1) (0: each batch's own range)
 * @return ET_OK, ET_ERR_INVALID (config, mode, B, T or decay), ET_ERR_NOMEM (arena
 *         untouched)
 */
et_status et_qat_init(et_qat *q, const et_gpt_config *cfg, et_qmode mode, float decay, int B,
                      int T, et_arena *arena);

/**
 * Puts the proxy in front of model @p m: @p table must be the table @p m runs through
 * (m->be); it is copied as the wrapped backend and overwritten with the proxy, whose
 * ctx is @p q (which must outlive the use). @p m must match @p q's config, run on host
 * memory and plan at most q's B x T rows.
 * @return ET_OK, ET_ERR_INVALID, ET_ERR_UNSUPPORTED (device memory), ET_ERR_STATE
 *         (already attached)
 */
et_status et_qat_attach(et_qat *q, const et_gpt *m, et_backend *table);

/** Restores the wrapped table (the model then runs plain fp32). */
et_status et_qat_detach(et_qat *q);

/**
 * Sets site @p site's recorded range (initialisation from a calibration, a resumed
 * run, a test). ET_ERR_RANGE for a site out of range or a non-finite or inverted range.
 */
et_status et_qat_set_range(et_qat *q, int site, float lo, float hi);

/**
 * The recorded ranges.
 * @param[out] lo,hi (nsites)
 * @return ET_OK, or ET_ERR_STATE when a site has none yet (no training step ran)
 */
et_status et_qat_ranges(const et_qat *q, float *lo, float *hi);

/**
 * Exports the int8 model the training simulated: et_qgpt_quantize() of the fp32
 * master @p params with the recorded ranges (W8A8) or none (W8A32).
 * @return as et_qgpt_quantize(), or ET_ERR_STATE (no range recorded)
 */
et_status et_qat_export(const et_qat *q, const float *params, void *blob, size_t blob_bytes);

// --- the arithmetic (what the proxy runs; public for tests and other callers)

/** y = s (clamp(round(x / s) + zp) - zp) over n: et_quant_s8_to_f32 of
 *  et_quant_f32_to_s8, bit for bit. @p y may be @p x. */
void et_qat_fake_act_f32(float *y, const float *x, size_t n, const et_qparams *p);

/** mask[i] = 1 where x[i] is inside the representable range of @p p (round(x / s) + zp
 *  in [-128, 127]: the straight-through estimator passes the gradient), else 0. */
void et_qat_ste_mask(uint8_t *mask, const float *x, size_t n, const et_qparams *p);

/**
 * Per-row symmetric fake quantization: wq = scale[r] * q[r,:] with q, scale from
 * et_quant_weights_s8 (what et_qgpt_dequantize gives back), bit for bit.
 * @param[in] row scratch of @p cols int8
 * @return ET_OK, ET_ERR_INVALID, ET_ERR_RANGE (a non-finite weight)
 */
et_status et_qat_fake_weights_f32(float *wq, const float *w, int rows, int cols, int8_t *row);

/** Smallest and largest of x(n), n >= 1. ET_ERR_RANGE for a non-finite value. */
et_status et_qat_minmax(const float *x, size_t n, float *lo, float *hi);

#endif /* ET_QAT_H */

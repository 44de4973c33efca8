/* et_qgpt.h - a quantized GPT-2: int8 weights in one compact, saveable blob, and an
 * inference model (plan / create / forward) that runs from it.
 *
 * The blob holds every tensor the quantized forward needs, at offsets a pure function
 * of (config, mode) gives (et_qgpt_tensors), each 64-byte aligned; it is what the
 * host's quantized-model file stores, and a board can run it in place (read-only, from
 * flash). Two modes:
 *
 *  - W8A8: weights per-output-channel symmetric int8; activations per-tensor asymmetric
 *    int8 with ranges from calibration; int32 biases with the activation zero point
 *    folded in; every linear layer is an int8 GEMM with int32 accumulation whose
 *    epilogue requantizes to int8 by a fixed-point multiplier and shift; GELU is a
 *    256-entry int8 -> int8 table. What stays float, and why:
 *      * the residual stream and its adds (its range grows layer by layer and every
 *        layer reads it: an int8 residual costs the most accuracy for the least work);
 *      * LayerNorm (a mean and a reciprocal square root per row: O(C) per token against
 *        the O(C^2) of the matmuls, and its output is quantized straight away);
 *      * attention's softmax and its two small products (O(T) per token and head; the
 *        exponentials need float or a table per scale, and q, k, v come in as int8);
 *      * the logits, dequantized from the int32 accumulators (the model's output
 *        boundary, as TFLite's final Dequantize), and the loss.
 *  - W8A32: the same int8 weights, float activations; each GEMM dequantizes its weight
 *    panel inside the kernel. Everything else is the fp32 forward.
 *
 * Embeddings (wte, wpe) are int8 per row in both modes; wte also serves, tied, as the
 * logits' weight matrix. LayerNorm gains and biases stay float (2C numbers a layer).
 * Any et_gpt_config runs, GPT-2's or a structurally pruned one (head_dim, ffn): the
 * blob's linear layers take the config's widths (qkv 3A x C, attproj C x A, fc F x C,
 * fcproj C x F).
 * Deliberately avoids: a KV cache (the fp32 model has none either: a forward recomputes
 * the window) and any allocation (the model takes one arena; the blob is the caller's).
 */
#ifndef ET_QGPT_H
#define ET_QGPT_H

#include "et_conf.h"
#include "et_status.h"
#include "et_arena.h"
#include "et_threads.h"
#include "et_gpt.h"
#include "et_quant.h"

/** Quantization mode. */
typedef enum et_qmode {
    ET_QMODE_W8A8 = 1, /**< int8 weights and activations, int8 GEMMs */
    ET_QMODE_W8A32 = 2 /**< int8 weights, float activations */
} et_qmode;

/** Activation sites of one layer (W8A8): where a tensor crosses into or out of int8. */
enum {
    ET_QSITE_LN1 = 0,  /**< LayerNorm 1 output = qkv input */
    ET_QSITE_QKV,      /**< qkv output = attention input */
    ET_QSITE_ATTY,     /**< attention output = attproj input */
    ET_QSITE_ATTPROJ,  /**< attproj output (added to the residual) */
    ET_QSITE_LN2,      /**< LayerNorm 2 output = fc input */
    ET_QSITE_FCH,      /**< fc output = GELU input */
    ET_QSITE_GELU,     /**< GELU output = fcproj input */
    ET_QSITE_FCPROJ,   /**< fcproj output (added to the residual) */
    ET_QSITE_PER_LAYER /**< sites per layer; the final LayerNorm's is L * this */
};

/** Sites a config has: ET_QSITE_PER_LAYER * layers + 1. */
int et_qgpt_nsites(const et_gpt_config *cfg);

/** Element types in the blob. */
typedef enum et_qdtype { ET_QDT_S8 = 0, ET_QDT_F32 = 1, ET_QDT_I32 = 2 } et_qdtype;

#define ET_QGPT_NTENSORS 35

/** One tensor of the blob: a tensor a mode does not use has count 0. */
typedef struct et_qtensor_info {
    const char *name;
    et_qdtype dtype;
    size_t count;  /**< elements */
    size_t offset; /**< bytes from the blob's start, a multiple of 64 */
} et_qtensor_info;

/**
 * The blob's layout.
 * @param[in]  cfg  checked config
 * @param[in]  mode W8A8 or W8A32
 * @param[out] out  ET_QGPT_NTENSORS entries (may be NULL)
 * @param[out] blob_bytes total bytes of the blob
 * @return ET_OK or ET_ERR_INVALID
 */
et_status et_qgpt_tensors(const et_gpt_config *cfg, et_qmode mode,
                          et_qtensor_info out[ET_QGPT_NTENSORS], size_t *blob_bytes);

/** A linear layer's tensors, stacked over layers: w (L,OC,K) int8, ws (L,OC) weight
 *  scales; W8A8: b32 (L,OC) int32 biases, mult/shift (L,OC) requantization to the
 *  output site; W8A32: bf (L,OC) float biases. */
typedef struct et_qlinear {
    const int8_t *w;
    const float *ws;
    const int32_t *b32;
    const float *bf;
    const int32_t *mult, *shift;
} et_qlinear;

/** Typed pointers into a blob. */
typedef struct et_qgpt_weights {
    const int8_t *wte;  const float *wte_s;  /**< (Vp,C), (Vp) */
    const int8_t *wpe;  const float *wpe_s;  /**< (maxT,C), (maxT) */
    const float *ln1w, *ln1b, *ln2w, *ln2b;  /**< (L,C) */
    et_qlinear qkv, attproj, fc, fcproj;
    const int8_t *gelu_lut;                  /**< (L,256) W8A8 */
    const float *lnfw, *lnfb;                /**< (C) */
    const float *act_scale;                  /**< (nsites) W8A8 */
    const int32_t *act_zp;                   /**< (nsites) W8A8 */
    const float *logit_s;                    /**< (Vp) W8A8: act scale * wte_s */
    const int32_t *logit_b;                  /**< (Vp) W8A8: -zp * rowsum(wte) */
} et_qgpt_weights;

/** Points @p w into @p blob (64-byte aligned, et_qgpt_tensors() bytes). */
et_status et_qgpt_view(const et_gpt_config *cfg, et_qmode mode, const void *blob,
                       size_t blob_bytes, et_qgpt_weights *w);

/**
 * Post-training quantization: fills a blob from fp32 parameters.
 * @param[in]  cfg     config of @p params
 * @param[in]  params  fp32 parameters in et_gpt_tensors() order
 * @param[in]  mode    W8A8 or W8A32
 * @param[in]  lo,hi   (nsites) calibrated activation ranges (W8A8; NULL for W8A32)
 * @param[out] blob    64-byte aligned, at least et_qgpt_tensors() bytes; fully written
 * @param[in]  blob_bytes its size
 * @return ET_OK, ET_ERR_INVALID, ET_ERR_NOMEM (blob too small), ET_ERR_RANGE (a
 *         non-finite weight or range)
 */
et_status et_qgpt_quantize(const et_gpt_config *cfg, const float *params, et_qmode mode,
                           const float *lo, const float *hi, void *blob, size_t blob_bytes);

/** Inverse of the weight quantization: the fp32 parameters the blob's int8 weights
 *  stand for (LayerNorm parameters copied, biases from the float or int32 form). */
et_status et_qgpt_dequantize(const et_gpt_config *cfg, et_qmode mode, const void *blob,
                             size_t blob_bytes, float *params);

/**
 * Feeds a calibrator the activation sites of the last forward of @p m, which must keep
 * every layer's activations (a model created in ET_GPT_TRAIN mode, host memory).
 * @return ET_OK, ET_ERR_STATE (no forward yet, or activations of one layer only),
 *         ET_ERR_INVALID (calibrator of the wrong size), ET_ERR_RANGE (a non-finite value)
 */
et_status et_qcalib_observe_gpt(et_qcalib *c, const et_gpt *m);

/** A quantized model bound to its arena. Fields are readable. */
typedef struct et_qgpt {
    et_gpt_config cfg;
    et_qmode mode;
    int B, T;                 /**< planned batch and sequence length */
    const et_threads *th;
    et_qgpt_weights w;
    int *inputs, *targets;    /**< (B,T) */
    float *res_a, *res_b, *ln, *tmp; /**< (B,T,C) */
    float *ln_mean, *ln_rstd; /**< (B,T) */
    float *qkv;               /**< (B,T,3A): A, F are the config's attention and MLP widths */
    float *atty;              /**< (B,T,A) */
    float *att;               /**< (B,NH,T) attention log-sum-exp */
    float *fch, *fchg;        /**< (B,T,F) W8A32 */
    int8_t *qa, *qb;          /**< (B,T,max(C,3A,F)) W8A8: 4C for GPT-2 */
    float *logits, *probs;    /**< (B,T,Vp) */
    float *losses;            /**< (B,T) */
    void *wpack;              /**< W8A8: the weights packed for the GEMM kernel at create
                                   (et_qgemm_s8_pack): per layer qkv, attproj, fc, fcproj,
                                   then the logits' wte */
    void *scratch;            /**< int8 / W8A32 GEMM scratch */
    size_t scratch_bytes;
    float *att_scratch;       /**< attention's per-worker slices */
    size_t att_slice;
    int fwd_B, fwd_T;
    float mean_loss;          /**< of the last forward with targets, else -1 */
} et_qgpt;

/**
 * Exact arena bytes et_qgpt_create() takes (the blob is not included: it is the
 * caller's and may be read-only). For W8A8 this includes a copy of the weights packed
 * for the int8 GEMM kernel (about 1 byte per weight with AVX-512 VNNI, 2 otherwise),
 * made once by create so that no forward packs; building with -DET_QGPT_PREPACK=0
 * leaves it out and packs a panel per GEMM call instead.
 * @param[in] nworkers workers the GEMM scratch is sized for (et_threads_workers)
 */
et_status et_qgpt_plan(const et_gpt_config *cfg, et_qmode mode, int B, int T, int nworkers,
                       size_t *bytes);

/**
 * Builds a quantized model over @p blob in @p arena. Fails with ET_ERR_NOMEM, arena
 * untouched, when the arena has less than the plan free.
 */
et_status et_qgpt_create(et_qgpt *m, const et_gpt_config *cfg, et_qmode mode, const void *blob,
                         size_t blob_bytes, int B, int T, const et_threads *th, et_arena *arena);

/** Forward over inputs (B,T); with targets, m->mean_loss. ET_ERR_RANGE for a token
 *  outside the vocabulary or B, T beyond the plan. */
et_status et_qgpt_forward(et_qgpt *m, const int *inputs, const int *targets, int B, int T);

/** Logits of position t of row b of the last forward: the first V copied to @p out. */
et_status et_qgpt_logits(const et_qgpt *m, int b, int t, float *out);

#endif /* ET_QGPT_H */

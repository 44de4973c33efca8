/* et_lora.h - on-device fine-tuning: LoRA adapters over the frozen int8 (W8A32) weights
 * of a device image, with every mutable byte in one arena of an exact, planned size.
 *
 * What trains: for each adapted layer (the last `layers` blocks), a rank-r pair on the
 * qkv matrix and one on the MLP fc matrix: W x + (alpha/r) B (A x), A (r,C) random, B
 * (OC,r) zero at start; optionally (train_ln) also float copies of the LayerNorm gains
 * and biases of those blocks and of the final LayerNorm, initialised from the image. The image's int8 weights are read in place and dequantized
 * one row at a time inside the kernels (q * scale), so no fp32 copy of a frozen matrix
 * ever exists; gradients flow through them with the same row-wise products.
 *
 * Memory: the arena holds the adapters, their gradients, the optimizer state (none for
 * SGD, m and v for AdamW) and activations for ONE sequence (batch 1; a batch is
 * gradient accumulation over sequences). Activations are not stored per layer: every
 * backward of layer l recomputes the forward from the tokens up to l (recomputation,
 * O(L^2) layer forwards per step for O(1) layers of activations), the MLP and the
 * LayerNorms run token by token (no (T,4C) tensor), and attention runs head by head with
 * its softmax rebuilt row by row in backward (no (T,T) tensor). What stays is three
 * (T,C) buffers, one head's q/k/v/dk/dv and a few rows. keep_inputs trades the other
 * way: each adapted block's input is stored ((T,C) per block) and backward starts from it.
 * et_lora_merge() folds the adapters (and trained LayerNorms) into a new weight blob.
 *
 * A new task head (head_classes = K): the transfer-learning pattern. A float K-class
 * linear layer (W (K,C), b (K), zero at start) reads the final LayerNorm's output,
 * mean-pooled over the tokens or the last token's (head_pool), and trains with
 * cross-entropy on one label per sequence (et_lora_accumulate_class); the adapters and
 * LayerNorms above may train with it (rank > 0, train_ln) or not (rank 0: the base is
 * frozen, only the head trains, and nothing below the head is ever differentiated, so
 * the backward buffers are not even planned). A session with a head classifies; the
 * next-token functions refuse it (ET_ERR_UNSUPPORTED), and the language-model head's
 * (Vp) row is not planned.
 * Deliberately avoids: allocation, threads (a board has one core), and the W8A8 mode
 * (its int32 biases and requantized activations have no useful gradient).
 */
#ifndef ET_LORA_H
#define ET_LORA_H

#include "et_conf.h"
#include "et_status.h"
#include "et_arena.h"
#include "et_image.h"

/** Optimizer for the adapters. */
typedef enum et_lora_opt { ET_LORA_SGD = 0, ET_LORA_ADAMW = 1 } et_lora_opt;

/** What a task head reads: the final LayerNorm's output averaged over the sequence's
 *  tokens, or that of its last token. */
typedef enum et_lora_pool { ET_LORA_POOL_MEAN = 0, ET_LORA_POOL_LAST = 1 } et_lora_pool;

/** Most classes a task head may have. */
#define ET_LORA_MAX_CLASSES 4096

/** What to adapt and how to train it. */
typedef struct et_lora_config {
    int rank;          /**< r >= 1; 0: no adapters (allowed when train_ln or a head trains) */
    int layers;        /**< adapt the last N blocks (0: all); ignored when only a head trains */
    float alpha;       /**< scale alpha / r (0: alpha = r, i.e. scale 1) */
    et_lora_opt opt;   /**< SGD or AdamW */
    int train_ln;      /**< 1: also train the LayerNorm gains and biases of the adapted blocks and the
                            final LayerNorm (float copies in the arena, 4C per block + 2C) */
    int keep_inputs;   /**< 1: store each adapted block's input, (T,C) per block, instead of
                            recomputing it from the tokens in backward (memory for time) */
    int head_classes;  /**< 0: no task head (language modelling); K in 2..ET_LORA_MAX_CLASSES: train a
                            new K-class head (cross-entropy on one label per sequence) */
    et_lora_pool head_pool; /**< what the head reads (mean over tokens or the last token) */
} et_lora_config;

/** Exact arena bytes by part. */
typedef struct et_lora_plan {
    size_t nparams;  /**< trained parameters (floats): adapters, LayerNorms, head */
    size_t nhead;    /**< of which the task head's, K (C + 1) (0 without a head) */
    size_t params;   /**< parameter block */
    size_t grads;    /**< their gradients */
    size_t opt;      /**< optimizer state */
    size_t acts;     /**< activations and row scratch for one sequence of T tokens */
    size_t inputs;   /**< stored block inputs (keep_inputs; 0 when recomputing) */
    size_t total;    /**< sum: the arena that just fits */
} et_lora_plan;

/** A fine-tuning session over an opened image. Fields are readable. */
typedef struct et_lora {
    et_gpt_config cfg;
    et_lora_config lc;
    const et_qgpt_weights *w;
    int T, l0;              /**< planned tokens; first adapted layer */
    float scale;            /**< alpha / r */
    size_t nparams, nadapt, nln; /**< trained floats; of which adapters, LayerNorms (the rest: the head) */
    float *params, *grads, *m, *v; /**< adapters: per adapted layer qA (r,C), qB (3C,r), fA (r,C), fB (4C,r);
                                        then, with train_ln, per adapted layer ln1w, ln1b, ln2w, ln2b (C each)
                                        and lnfw, lnfb; then, with a head, its W (K,C) and b (K) */
    float *ln, *gln;        /**< the trained LayerNorms in params / grads, or NULL */
    float *hw, *ghw;        /**< the head's W (K,C) in params / grads, or NULL; b (K) follows W */
    float *XS;              /**< (adapted layers, T, C) stored block inputs, or NULL */
    int step;
    /* activations */
    float *X, *ATTY, *DY;   /**< (T,C) */
    float *q, *k, *v_, *dk, *dv; /**< (T,hs) one head */
    float *U, *DU;          /**< (T,r) qkv adapter inner values and their gradient */
    float *r_ln, *r_x2, *r_dln, *r_h, *r_g, *r_dg, *r_log, *r_p, *r_dp, *r_uf, *r_duf; /**< rows */
    float *r_pool, *r_cls;  /**< head rows: pooled feature (C), logits / their gradient (K) */
    int *tok, *tgt;         /**< (T); tgt NULL with a head */
    uint32_t image_crc;     /**< payload CRC of the image the session runs over (et_image.payload_crc) */
} et_lora;

/**
 * Exact memory plan of a session.
 * @param[in]  img  opened image (W8A32)
 * @param[in]  lc   adapter config
 * @param[in]  T    tokens per sequence (1..context)
 * @param[out] plan bytes by part
 * @return ET_OK, ET_ERR_INVALID (bad config), ET_ERR_UNSUPPORTED (W8A8 image), ET_ERR_RANGE (T)
 */
et_status et_lora_plan_compute(const et_image *img, const et_lora_config *lc, int T, et_lora_plan *plan);

/**
 * Creates a session in @p arena: adapters initialised (A uniform in +-1/sqrt(C) from
 * @p seed, B zero), trained LayerNorms copied from the image, a head zero.
 * ET_ERR_NOMEM, arena untouched, when it has less than the plan free.
 */
et_status et_lora_create(et_lora *s, const et_image *img, const et_lora_config *lc, int T,
                         uint64_t seed, et_arena *arena);

/**
 * Mean next-token loss of one sequence, forward only (not on a session with a head:
 * ET_ERR_UNSUPPORTED; the same for et_lora_accumulate and et_lora_logits).
 * @param[in] tok,tgt (n) token ids < vocab; n <= planned T
 */
et_status et_lora_loss(et_lora *s, const int *tok, const int *tgt, int n, float *loss);

/**
 * Forward and backward of one sequence, ADDING into the adapter gradients the
 * gradient of loss * @p loss_scale (1 / sequences accumulated per step).
 */
et_status et_lora_accumulate(et_lora *s, const int *tok, const int *tgt, int n, float loss_scale,
                             float *loss);

/**
 * Task head, forward only: the K logits of one sequence.
 * @param[in]  tok    (n) token ids < vocab; 1 <= n <= planned T
 * @param[out] logits (K) floats, or NULL
 * @param[out] cls    the most likely class (the lowest index on a tie), or NULL
 * @return ET_OK, ET_ERR_INVALID (no head, bad args), ET_ERR_RANGE (a token or n)
 */
et_status et_lora_classify(et_lora *s, const int *tok, int n, float *logits, int *cls);

/**
 * Task head, forward and backward of one labelled sequence: ADDS into the gradients of
 * everything that trains (head; adapters and LayerNorms when configured) the gradient of
 * cross-entropy(logits, @p label) * @p loss_scale.
 * @param[in]  label  the sequence's class, 0..K-1
 * @param[out] loss   its cross-entropy (unscaled), or NULL
 * @return ET_OK, ET_ERR_INVALID (no head, bad args), ET_ERR_RANGE (a token, n or the label)
 */
et_status et_lora_accumulate_class(et_lora *s, const int *tok, int n, int label, float loss_scale, float *loss);

/** One optimizer update of everything that trains, then zeroes the gradients. AdamW
 *  uses beta1 0.9, beta2 0.999, eps 1e-8 and @p wd on the adapters and the head's W (not
 *  on LayerNorms or biases); SGD ignores @p wd. */
et_status et_lora_step(et_lora *s, float lr, float wd);

/**
 * Forward only: the logits of the LAST of @p n tokens (text generation).
 * @param[in]  tok    (n) token ids < vocab; 1 <= n <= planned T
 * @param[out] logits (vocab) floats
 * @return ET_OK, ET_ERR_INVALID, ET_ERR_RANGE (a token or n out of range)
 */
et_status et_lora_logits(et_lora *s, const int *tok, int n, float *logits);

/**
 * Folds the adapters into the weights: for every adapted block, the qkv and fc rows
 * become W' = q * scale_row + (alpha/r) B A, re-quantized per output channel with
 * et_quant_weights_s8 (the project's one weight quantizer); every other tensor is copied
 * unchanged (a task head has no place in an image: it stays in the session). The result
 * is an et_qgpt blob for et_image_build(). No memory beyond
 * @p blob: the session's own row buffer holds one row of W' at a time.
 * @param[in,out] s    session over @p img (its adapters are read, its row scratch used)
 * @param[in]  img     the image the session was created over
 * @param[out] blob    64-byte aligned, writable, not the image's own bytes
 * @param[in]  blob_bytes its size: at least img->blob_bytes
 * @return ET_OK, ET_ERR_INVALID (args, or @p s not over @p img), ET_ERR_NOMEM (blob too
 *         small), ET_ERR_RANGE (a non-finite merged weight)
 */
et_status et_lora_merge(et_lora *s, const et_image *img, void *blob, size_t blob_bytes);

#endif /* ET_LORA_H */

/* et_cmodel.h - a GPT on its way through the compression passes, in host memory: dense
 * fp32 parameters, and for every block linear (qkv, attproj, fc, fcproj of each layer)
 * either its matrix (in the parameter vector) or two factors A (OC,r) and B (r,K), each
 * matrix with an optional keep-mask. The passes run in one documented order:
 *
 *   low-rank (MLP matrices -> factors)  ->  prune (every matrix that runs, factors
 *   included)  ->  fine-tune (AdamW, masks held, factors trained through their product)
 *   ->  pack (fp32, or W8A8 after calibrating through the compact fp32 forward)
 *
 * Packing gives an et_sparse_model: the storage the inference path (et_cgpt) runs and
 * the file (et_sparse.h) holds.
 * Deliberately avoids: the trainer (host/trainer.c has no hooks for masks or factors;
 * the fine-tune is the core API's forward / backward / step plus the chain rule
 * dA = dW B^T, dB = A^T dW for the factors).
 */
#ifndef ET_CMODEL_H
#define ET_CMODEL_H

#include "et_cgpt.h"
#include "et_compress.h"
#include "et_sparse.h"

/** One block linear of a working model. */
typedef struct et_cmodel_lin {
    int rank;          /**< 0: W lives in the parameter vector; > 0: A, B below */
    int OC, K;
    float *A, *B;      /**< (OC,rank), (rank,K) */
    uint8_t *mW, *mA, *mB; /**< keep-masks (NULL: nothing dropped) */
} et_cmodel_lin;

typedef struct et_cmodel {
    et_gpt_config cfg;
    size_t nparams;
    float *params;       /**< dense fp32; a factored linear's W slot holds A.B */
    et_cmodel_lin *lin;  /**< (layers * ET_CGPT_LIN) */
    et_prune_spec prune; /**< storage of pruned matrices: N:M or bitmap (kind 0: dense) */
    int finetune_steps;  /**< steps taken so far (the file records them) */
} et_cmodel;

/** A working model from dense fp32 parameters (copied). */
et_status et_cmodel_init(et_cmodel *m, const et_gpt_config *cfg, const float *params, et_error *err);

/** A working model from an fp32 compact model (factors and masks as stored). ET_ERR_INVALID
 *  with a message for a W8A8 one (already quantized). */
et_status et_cmodel_from_sparse(et_cmodel *m, const et_sparse_model *f, et_error *err);

/** Deep copy. */
et_status et_cmodel_copy(et_cmodel *dst, const et_cmodel *src, et_error *err);

void et_cmodel_free(et_cmodel *m);

/** Recomputes every factored linear's W slot as A.B (after the factors changed). */
void et_cmodel_sync(et_cmodel *m);

/**
 * Low-rank pass: fc and fcproj of every layer become their truncated-SVD factors (rank by
 * energy, parameter share or fixed; @p multiple > 1 rounds it down to a multiple of that,
 * as N:M pruning of A needs). @p scales: activation-aware channel scales
 * (et_lowrank_act_scales) or NULL. Unchanged on failure.
 * @return ET_OK, ET_ERR_RANGE (a rank the matrix does not have), ET_ERR_INVALID, ET_ERR_NOMEM
 */
et_status et_cmodel_lowrank(et_cmodel *m, const et_lowrank_spec *p, const float *scales, int multiple,
                            et_error *err);

/**
 * Pruning pass at @p sparsity (unstructured; N:M ignores it): every matrix that runs
 * (W, or A and B) gets a keep-mask, each layer's matrix pruned on its own; the dropped
 * weights are zeroed. Unchanged on failure.
 * @return ET_OK, ET_ERR_INVALID (with a message: N:M that does not divide a row)
 */
et_status et_cmodel_prune(et_cmodel *m, const et_prune_spec *p, float sparsity, et_error *err);

/** Zeroes every dropped weight and refreshes the factored W slots. */
void et_cmodel_apply_masks(et_cmodel *m);

/**
 * Fine-tune with AdamW on random windows of @p train, masks held after every step;
 * factors get dA = dW B^T and dB = A^T dW from the dense gradient of W = A.B.
 * Unstructured pruning with fo->cubic re-prunes on the cubic schedule (et_finetune_opts).
 */
et_status et_cmodel_finetune(et_cmodel *m, const et_finetune_opts *fo, const uint16_t *train, size_t n,
                             et_error *err);

/** The storage the masks call for (N:M, bitmap with its count, or dense), per linear. */
void et_cmodel_spec(const et_cmodel *m, et_clinear_spec *spec);

/** Parameters the compact model stores. */
size_t et_cmodel_params(const et_cmodel *m);

/**
 * Packs into a compact model: spec, blob and a copy of the tokenizer allocated in @p out
 * (free with et_sparse_free). W8A8 needs @p lo / @p hi (et_cgpt_nsites entries).
 */
et_status et_cmodel_pack(const et_cmodel *m, et_cgpt_mode mode, const float *lo, const float *hi,
                         const void *tokenizer, size_t tokenizer_bytes, et_sparse_model *out,
                         et_error *err);

/**
 * Activation ranges for W8A8 through the compact fp32 forward of @p f: min/max, then a
 * 2048-bin histogram pass over the same @p batches windows (et_qcalib), per used site.
 * @param[out] lo,hi (et_cgpt_nsites) ranges; unused sites get [0, 1]
 */
et_status et_cmodel_calibrate(const et_sparse_model *f, const uint16_t *tok, size_t n, int B, int T,
                              int batches, et_qcalib_method method, float pct, int threads, float *lo,
                              float *hi, et_error *err);

#endif /* ET_CMODEL_H */

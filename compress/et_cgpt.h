/* et_cgpt.h - a compressed GPT-2 whose every block weight matrix has its own storage,
 * run from that storage: the inference path of pruned, factored and quantized models.
 *
 * Each block has four linear layers (qkv, attproj, fc, fcproj). A linear is described by
 * an et_clinear_spec: one matrix W (OC,K), or (rank r > 0) two factors A (OC,r) and
 * B (r,K) run as two smaller matmuls, out = (in . B^T) . A^T + bias. Every matrix is
 * stored dense, N:M (kept values + 2/4-bit positions) or as a keep bitmap + kept values
 * (et_spmm.h), with float values (ET_CGPT_F32) or int8 values and per-row scales
 * (ET_CGPT_W8A8: int8 activations, int32 accumulation, the requantizing epilogues of
 * et_qgpt.h). Dense matrices run core's GEMM (et_gemm_f32) or the int8 GEMM
 * (et_qgemm_s8); sparse ones run et_spmm_f32 / et_spmm_s8, which read only the kept
 * weights. Embeddings, LayerNorms, attention, GELU and the loss are the fp32 model's
 * (et_cpu_ops.h) or, in W8A8, et_qgpt's (what stays float and why: et_qgpt.h). A
 * factored linear in W8A8 requantizes its middle (N,r) to int8 at a site of its own.
 *
 * The blob is one read-only block whose layout is a pure function of (config, mode, the
 * per-linear specs) (et_cgpt_blob_bytes); a host file stores the specs and the blob, and
 * a board can run the blob in place. The model takes one arena whose exact size
 * et_cgpt_plan() gives.
 * Only GPT-2 shaped configs (head_dim and ffn left at their defaults) are supported.
 * Deliberately avoids: any allocation, and expanding compact weights at load time.
 */
#ifndef ET_CGPT_H
#define ET_CGPT_H

#include "et_conf.h"
#include "et_status.h"
#include "et_arena.h"
#include "et_threads.h"
#include "et_gpt.h"
#include "et_quant.h"
#include "et_spmm.h"

/** Value types of a compressed model. */
typedef enum et_cgpt_mode {
    ET_CGPT_F32 = 0, /**< float weights and activations */
    ET_CGPT_W8A8 = 1 /**< int8 weights (per-row scales) and activations */
} et_cgpt_mode;

/** Storage of one matrix. */
typedef enum et_cmat_format {
    ET_CMAT_DENSE = 0,
    ET_CMAT_NM = ET_SPMAT_NM,        /**< N:M values + positions */
    ET_CMAT_BITMAP = ET_SPMAT_BITMAP /**< keep bitmap + kept values */
} et_cmat_format;

/** How one matrix is stored. */
typedef struct et_cmat_spec {
    int format;   /**< et_cmat_format */
    int N, M;     /**< ET_CMAT_NM */
    uint32_t nnz; /**< ET_CMAT_BITMAP: kept weights (the others derive it) */
} et_cmat_spec;

/** How one linear layer is stored: W alone (rank 0) or its factors B then A. */
typedef struct et_clinear_spec {
    int rank;          /**< 0, or 1 <= r <= min(OC, K) */
    et_cmat_spec w;    /**< rank 0 */
    et_cmat_spec a, b; /**< rank > 0: A (OC,r), B (r,K) */
} et_clinear_spec;

/** The linears of a block, in order; spec arrays are (layers * ET_CGPT_LIN) entries,
 *  layer-major. */
enum { ET_CLIN_QKV = 0, ET_CLIN_ATTPROJ, ET_CLIN_FC, ET_CLIN_FCPROJ, ET_CGPT_LIN };

/** W8A8 activation sites of a layer: et_qgpt's eight (ET_QSITE_*, same numbers), then
 *  the middle of each factored linear; the final LayerNorm's is layers * this. */
#define ET_CSITE_MID(j) (8 + (j))
#define ET_CSITE_PER_LAYER 12

/** Sites of a config: ET_CSITE_PER_LAYER * layers + 1. */
int et_cgpt_nsites(const et_gpt_config *cfg);

/** Whether W8A8 uses site @p s under @p spec (a middle site only for a factored linear). */
int et_cgpt_site_used(const et_gpt_config *cfg, const et_clinear_spec *spec, int s);

/** (OC, K) of linear @p j (ET_CLIN_*) of a checked config. */
void et_cgpt_linear_dims(const et_gpt_config *cfg, int j, int *OC, int *K);

/** Values a matrix of (rows, cols) stores under @p s (0 for an invalid spec). */
size_t et_cgpt_mat_values(const et_cmat_spec *s, int rows, int cols);

/**
 * Checks a config (GPT-2 shaped) and its specs: ranks within the matrices, N:M with
 * 1 <= N < M <= 16 dividing the columns, a bitmap's nnz within its matrix.
 * @return ET_OK, ET_ERR_INVALID, ET_ERR_UNSUPPORTED (head_dim / ffn set)
 */
et_status et_cgpt_spec_check(const et_gpt_config *cfg, const et_clinear_spec *spec);

/** Parameters the model stores: every kept value of every matrix plus embeddings,
 *  biases and LayerNorms (0 for an invalid spec). */
size_t et_cgpt_params(const et_gpt_config *cfg, const et_clinear_spec *spec);

/** Bytes of the blob (64-byte aligned tensors, a pure function of the arguments). */
et_status et_cgpt_blob_bytes(const et_gpt_config *cfg, et_cgpt_mode mode,
                             const et_clinear_spec *spec, size_t *bytes);

// --- building a blob

/** Where one linear's fp32 weights come from: W, or the factors A and B, each with an
 *  optional keep-mask (bit i of byte i/8 for element i of that matrix; NULL: all kept).
 *  Dropped weights must be zero. */
typedef struct et_clinear_src {
    const float *w;
    const uint8_t *wmask;
    const float *a, *b;
    const uint8_t *amask, *bmask;
} et_clinear_src;

/** Scratch et_cgpt_pack() takes from its arena (one row of int8 and float). */
size_t et_cgpt_pack_scratch_bytes(const et_gpt_config *cfg);

/**
 * Fills a blob.
 * @param[in]  params  fp32 parameters in et_gpt_tensors() order: embeddings, LayerNorms
 *                     and biases are read from here (the block matrices from @p src)
 * @param[in]  src     (layers * ET_CGPT_LIN) matrix sources
 * @param[in]  lo,hi   (nsites) activation ranges (W8A8; unused sites ignored), else NULL
 * @param[out] blob    64-byte aligned, et_cgpt_blob_bytes() bytes, fully written
 * @param[in]  scratch et_cgpt_pack_scratch_bytes() free; released on return
 * @return ET_OK, ET_ERR_INVALID (spec, a mask that is not N:M or holds another count than
 *         the bitmap's nnz), ET_ERR_NOMEM, ET_ERR_RANGE (a non-finite weight or range)
 */
et_status et_cgpt_pack(const et_gpt_config *cfg, et_cgpt_mode mode, const et_clinear_spec *spec,
                       const float *params, const et_clinear_src *src, const float *lo,
                       const float *hi, void *blob, size_t blob_bytes, et_arena *scratch);

/** Where et_cgpt_unpack writes one linear's matrices (any pointer may be NULL). */
typedef struct et_clinear_dst {
    uint8_t *wmask;         /**< rank 0: keep-mask of W */
    float *a, *b;           /**< rank > 0: the factors */
    uint8_t *amask, *bmask; /**< rank > 0: their keep-masks */
} et_clinear_dst;

/**
 * Inverse of et_cgpt_pack for an ET_CGPT_F32 blob: dense fp32 parameters (a factored
 * linear's W is the product A.B), and the factors and keep-masks.
 * @return ET_OK, ET_ERR_INVALID, ET_ERR_UNSUPPORTED (a W8A8 blob), ET_ERR_FORMAT (storage
 *         that et_spmat_check refuses)
 */
et_status et_cgpt_unpack(const et_gpt_config *cfg, et_cgpt_mode mode, const et_clinear_spec *spec,
                         const void *blob, size_t blob_bytes, float *params, et_clinear_dst *dst);

// --- running it

/** One stored matrix, resolved. */
typedef struct et_cmat {
    int format;          /**< et_cmat_format */
    int rows, cols;
    const float *wf;     /**< dense float values */
    const int8_t *wq;    /**< dense int8 values */
    const float *scale;  /**< W8A8: (rows) */
    et_spmat sp;         /**< sparse formats */
} et_cmat;

/** One linear, resolved. */
typedef struct et_clin {
    int rank, OC, K;
    et_cmat w, a, b;
    const float *bias;                    /**< F32: (OC) */
    const int32_t *b32, *mult, *shift;    /**< W8A8: (OC) to the output site */
    const int32_t *mb32, *mmult, *mshift; /**< W8A8, rank > 0: (rank) to the middle site */
} et_clin;

/** Observes a float activation site of an F32 forward (calibration for W8A8; a W8A8
 *  forward calls no observer). */
typedef et_status (*et_cgpt_observe_fn)(void *ctx, int site, const float *x, size_t n);

/** A compressed model bound to its arena. Fields are readable. */
typedef struct et_cgpt {
    et_gpt_config cfg;
    et_cgpt_mode mode;
    int B, T;
    const et_threads *th;
    /* weights, views into the blob */
    const float *wte, *wpe;               /**< F32 */
    const int8_t *wte_q, *wpe_q;          /**< W8A8 */
    const float *wte_s, *wpe_s;
    const float *ln1w, *ln1b, *ln2w, *ln2b, *lnfw, *lnfb;
    const int8_t *gelu_lut;
    const float *act_scale;
    const int32_t *act_zp;
    const float *logit_s;
    const int32_t *logit_b;
    et_clin *lin;                         /**< (layers * ET_CGPT_LIN), in the arena */
    int rmax;                             /**< largest rank */
    /* activations (one layer, reused) */
    int *inputs, *targets;
    float *res_a, *res_b, *ln, *tmp, *ln_mean, *ln_rstd, *qkv, *atty, *att;
    float *fch, *fchg, *mid;              /**< F32: (B,T,4C), (B,T,rmax) */
    int8_t *qa, *qb, *qm;                 /**< W8A8: (B,T,4C), (B,T,rmax) */
    float *logits, *probs, *losses;
    void *scratch;
    size_t scratch_bytes;
    float *att_scratch;
    size_t att_slice;
    int fwd_B, fwd_T;
    float mean_loss;
    int reference;                        /**< 1: the plain reference loops (tests) */
    et_cgpt_observe_fn observe;
    void *observe_ctx;
} et_cgpt;

/** Exact arena bytes et_cgpt_create() takes (the blob is apart). */
et_status et_cgpt_plan(const et_gpt_config *cfg, et_cgpt_mode mode, const et_clinear_spec *spec,
                       int B, int T, int nworkers, size_t *bytes);

/**
 * Builds a model over @p blob in @p arena, checking the sparse storage (positions in
 * range, bitmaps holding their nnz). ET_ERR_NOMEM with the arena untouched when it has
 * less than the plan free; ET_ERR_FORMAT for storage that does not check.
 */
et_status et_cgpt_create(et_cgpt *m, const et_gpt_config *cfg, et_cgpt_mode mode,
                         const et_clinear_spec *spec, const void *blob, size_t blob_bytes, int B,
                         int T, const et_threads *th, et_arena *arena);

/** Forward over inputs (B,T); with targets, m->mean_loss. ET_ERR_RANGE for a token outside
 *  the vocabulary or B, T beyond the plan; an observer's error stops it. */
et_status et_cgpt_forward(et_cgpt *m, const int *inputs, const int *targets, int B, int T);

/** Logits of position t of row b of the last forward: the first V copied to @p out. */
et_status et_cgpt_logits(const et_cgpt *m, int b, int t, float *out);

#endif /* ET_CGPT_H */

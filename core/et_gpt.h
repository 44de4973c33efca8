/* et_gpt.h - a GPT-2 style transformer: config, exact memory plan, forward, backward,
 * AdamW step.
 *
 * Architecture (GPT-2): token + learned position embeddings; L pre-LayerNorm blocks of
 * causal multi-head self-attention and a GELU(tanh) MLP of width 4C; a final LayerNorm;
 * logits through the token embedding (tied). The vocabulary is padded to a multiple of
 * 64 (Vp); the padded rows never touch the loss.
 *
 * Two optional fields generalise the block for structured pruning: head_dim (each head's
 * width, so the attention width A = heads * head_dim may differ from C) and ffn (the MLP's
 * hidden width F). Zero means GPT-2's value (A = C, F = 4C), and a config whose fields
 * equal those values is stored with zeros (et_gpt_config_check), so a GPT-2 shape has one
 * representation and runs exactly the code and arithmetic it always did.
 *
 * Parameters live in one block in llm.c's order (wte, wpe, ln1w, ln1b, qkvw, qkvb,
 * attprojw, attprojb, ln2w, ln2b, fcw, fcb, fcprojw, fcprojb, lnfw, lnfb), so the
 * optimizer, checkpoints and llm.c's files see one vector. Every block the model uses
 * comes from one arena whose exact size et_gpt_plan() gives before anything is allocated.
 */
#ifndef ET_GPT_H
#define ET_GPT_H

#include "et_conf.h"
#include "et_status.h"
#include "et_arena.h"
#include "et_backend.h"

/** Model shape. vocab_padded is derived (et_gpt_config_check fills it). head_dim and
 *  ffn are optional: leave them 0 (a zero-initialised config) for GPT-2's shape. */
typedef struct et_gpt_config {
    int vocab;        /**< V: real vocabulary size */
    int vocab_padded; /**< Vp: V rounded up to a multiple of 64 */
    int context;      /**< maxT: longest sequence (rows of wpe) */
    int layers;       /**< L */
    int heads;        /**< NH; channels % heads == 0 unless head_dim is set */
    int channels;     /**< C */
    int head_dim;     /**< HS: width of one head; 0 = C / NH (GPT-2). A = NH * HS */
    int ffn;          /**< F: MLP hidden width; 0 = 4C (GPT-2) */
} et_gpt_config;

/** Width of one attention head (head_dim, or C / NH when it is 0). */
static inline int et_gpt_head_dim(const et_gpt_config *c)
{
    return c->head_dim ? c->head_dim : c->channels / c->heads;
}
/** Attention width A = heads * head_dim: q, k, v and the attention output are (B,T,A). */
static inline int et_gpt_attn_width(const et_gpt_config *c) { return c->heads * et_gpt_head_dim(c); }
/** MLP hidden width F (ffn, or 4C when it is 0). */
static inline int et_gpt_ffn_width(const et_gpt_config *c) { return c->ffn ? c->ffn : 4 * c->channels; }
/** 1 when a checked config has GPT-2's shape (A = C, F = 4C): what llm.c files, device
 *  images and the other fixed-shape consumers need. */
static inline int et_gpt_config_is_gpt2(const et_gpt_config *c) { return !c->head_dim && !c->ffn; }

#define ET_GPT_NTENSORS 16

/** One parameter tensor: name, element count, offset (elements) in the block, whether
 *  AdamW decays it (matrices and embeddings yes; biases and LayerNorm gains no). */
typedef struct et_tensor_info {
    const char *name;
    size_t offset;
    size_t count;
    int decay;
    int ndim;
    int shape[3];
} et_tensor_info;

/** Pointers into the parameter (or gradient) block. */
typedef struct et_gpt_params {
    float *wte;      /* (Vp, C) */
    float *wpe;      /* (maxT, C) */
    float *ln1w;     /* (L, C) */
    float *ln1b;     /* (L, C) */
    float *qkvw;     /* (L, 3A, C)  A = C and F = 4C for GPT-2 */
    float *qkvb;     /* (L, 3A) */
    float *attprojw; /* (L, C, A) */
    float *attprojb; /* (L, C) */
    float *ln2w;     /* (L, C) */
    float *ln2b;     /* (L, C) */
    float *fcw;      /* (L, F, C) */
    float *fcb;      /* (L, F) */
    float *fcprojw;  /* (L, C, F) */
    float *fcprojb;  /* (L, C) */
    float *lnfw;     /* (C) */
    float *lnfb;     /* (C) */
} et_gpt_params;

#define ET_GPT_NACTS 23
/** Pointers into the activation (or activation-gradient) block. */
typedef struct et_gpt_acts {
    float *encoded;   /* (B, T, C) */
    float *ln1;       /* (L, B, T, C) */
    float *ln1_mean;  /* (L, B, T) */
    float *ln1_rstd;  /* (L, B, T) */
    float *qkv;       /* (L, B, T, 3A) */
    float *atty;      /* (L, B, T, A) */
    float *preatt;    /* (L, state): the backend's attention state, by default (B,NH,T,T) */
    float *att;       /* (L, state): the cpu backend keeps a log-sum-exp (B,NH,T) here */
    float *attproj;   /* (L, B, T, C) */
    float *residual2; /* (L, B, T, C) */
    float *ln2;       /* (L, B, T, C) */
    float *ln2_mean;  /* (L, B, T) */
    float *ln2_rstd;  /* (L, B, T) */
    float *fch;       /* (L, B, T, F) */
    float *fch_gelu;  /* (L, B, T, F) */
    float *fcproj;    /* (L, B, T, C) */
    float *residual3; /* (L, B, T, C) */
    float *lnf;       /* (B, T, C) */
    float *lnf_mean;  /* (B, T) */
    float *lnf_rstd;  /* (B, T) */
    float *logits;    /* (B, T, Vp) */
    float *probs;     /* (B, T, Vp) */
    float *losses;    /* (B, T) */
} et_gpt_acts;

/** Activation gradients. Backward runs one layer at a time, so these hold one layer
 *  (the residual-stream gradients ping-pong between dres_a and dres_b). */
typedef struct et_gpt_act_grads {
    float *dres_a;    /* (B, T, C) */
    float *dres_b;    /* (B, T, C) */
    float *dres2;     /* (B, T, C) */
    float *dln;       /* (B, T, C) shared by both LayerNorms of a layer */
    float *dqkv;      /* (B, T, 3A) */
    float *datty;     /* (B, T, A) */
    float *dpreatt;   /* attention workspace (backend-sized; none on cpu) */
    float *datt;      /* attention workspace (backend-sized; none on cpu) */
    float *dfch;      /* (B, T, F) */
    float *dfch_gelu; /* (B, T, F) */
    float *dlnf;      /* (B, T, C) */
    float *dlogits;   /* (B, T, Vp) */
} et_gpt_act_grads;

/** What a model is set up to do. */
typedef enum et_gpt_mode {
    ET_GPT_INFER = 0, /**< forward only: parameters and activations */
    ET_GPT_TRAIN = 1  /**< also gradients, activation gradients and AdamW moments */
} et_gpt_mode;

/** Exact bytes a model takes from its arena, by part. Each part is a sum of
 *  et_arena_block()-rounded blocks; total is their sum. */
typedef struct et_gpt_plan {
    size_t nparams;     /**< parameter count (elements) */
    size_t params;      /**< parameter block */
    size_t grads;       /**< parameter gradients */
    size_t adam;        /**< AdamW m and v */
    size_t acts;        /**< activations */
    size_t act_grads;   /**< activation gradients */
    size_t io;          /**< input and target token buffers, loss readback */
    size_t scratch;     /**< backend scratch */
    size_t total;       /**< all of the above: the arena size that just fits */
    size_t host;        /**< of total, bytes from the host arena (all of it without a
                             device arena; else io alone) */
    size_t device;      /**< of total, bytes from the backend's device arena (0 if none) */
} et_gpt_plan;

/** AdamW and schedule settings for one step. */
typedef struct et_adamw_config {
    float lr;
    float beta1, beta2, eps;
    float weight_decay;
    float grad_clip; /**< global-norm clip; 0 turns clipping off */
} et_adamw_config;

/** A model bound to its arena and backend. Fields are readable; change them only
 *  through the functions below. */
typedef struct et_gpt {
    et_gpt_config cfg;
    int B, T;            /**< batch and sequence length the arena was planned for */
    et_gpt_mode mode;
    const et_backend *be;
    size_t nparams;
    float *params_memory;
    et_gpt_params params;
    float *grads_memory;
    et_gpt_params grads;
    float *m_memory, *v_memory;
    float *acts_memory;
    et_gpt_acts acts;
    int layer_stride;   /**< 1 in training (every layer's activations kept), 0 in inference */
    float *grads_acts_memory;
    et_gpt_act_grads grads_acts;
    int *inputs;        /**< (B, T) host copy of the last forward's inputs */
    int *targets;       /**< (B, T) or unused when forward had no targets */
    float *loss_host;   /**< (B, T) host readback of per-position losses */
    int have_targets;   /**< last forward computed a loss */
    int fwd_B, fwd_T;   /**< shape of the last forward */
    float mean_loss;    /**< mean loss of the last forward with targets, else -1 */
    int step;           /**< AdamW steps taken (bias-correction t) */
    float last_grad_norm;
} et_gpt;

/** Checks a config, fills vocab_padded and stores head_dim / ffn as 0 when they equal
 *  GPT-2's values. ET_ERR_INVALID if a size is not positive (head_dim and ffn: negative),
 *  channels % heads != 0 without a head_dim, or a size is beyond the limits. */
et_status et_gpt_config_check(et_gpt_config *cfg);

/** The parameter tensors in block order; @p out holds ET_GPT_NTENSORS entries.
 *  @return total parameter count */
size_t et_gpt_tensors(const et_gpt_config *cfg, et_tensor_info out[ET_GPT_NTENSORS]);

/**
 * Exact memory plan.
 * @param[in] cfg  checked config
 * @param[in] B,T  batch and sequence length (1 <= T <= context)
 * @param[in] mode inference or training
 * @param[in] be   backend (its scratch_bytes are included); may be NULL for none
 * @param[out] plan bytes by part
 */
et_status et_gpt_plan_compute(const et_gpt_config *cfg, int B, int T, et_gpt_mode mode,
                              const et_backend *be, et_gpt_plan *plan);

/**
 * Builds a model in @p arena (and, for a backend with a device arena, the tensors in
 * that). Fails with ET_ERR_NOMEM, before touching anything but the arenas' bookkeeping,
 * when an arena is smaller than its part of the plan (plan.host, plan.device).
 * Parameters are zero; call et_gpt_init_weights() or load them.
 */
et_status et_gpt_create(et_gpt *m, const et_gpt_config *cfg, int B, int T, et_gpt_mode mode,
                        const et_backend *be, et_arena *arena);

/** GPT-2 initialisation: N(0, 0.02) weights, residual projections scaled by
 *  1/sqrt(2L), zero biases, unit LayerNorm gains; deterministic in @p seed. */
et_status et_gpt_init_weights(et_gpt *m, uint64_t seed);

/** Copies parameters in (host, nparams floats, block order) or out. */
et_status et_gpt_set_params(et_gpt *m, const float *host);
et_status et_gpt_get_params(const et_gpt *m, float *host);

/**
 * Forward pass over inputs (B,T). With targets (B,T) it also computes the mean loss
 * (m->mean_loss). B and T may be smaller than planned. ET_ERR_RANGE for a token
 * >= vocab or B/T beyond the plan.
 */
et_status et_gpt_forward(et_gpt *m, const int *inputs, const int *targets, int B, int T);

/** Sets all parameter gradients to zero. */
et_status et_gpt_zero_grad(et_gpt *m);

/** Backward of the last forward (which must have had targets), ADDING into the
 *  parameter gradients scaled by @p loss_scale (1/accumulation steps). */
et_status et_gpt_backward(et_gpt *m, float loss_scale);

/** Global gradient L2 norm (over all parameters). */
et_status et_gpt_grad_norm(et_gpt *m, float *norm);

/** One AdamW update: clips by global norm when cfg->grad_clip > 0, then updates the
 *  parameters; m->step increments. */
et_status et_gpt_step(et_gpt *m, const et_adamw_config *opt);

/** Optimizer state for checkpoints: copies m and v in or out (nparams floats each). */
et_status et_gpt_get_adam(const et_gpt *m, float *mom, float *vel);
et_status et_gpt_set_adam(et_gpt *m, const float *mom, const float *vel, int step);

/** Logits of position t of batch row b of the last forward, first V entries copied
 *  to @p out (host). */
et_status et_gpt_logits(const et_gpt *m, int b, int t, float *out);

#endif /* ET_GPT_H */

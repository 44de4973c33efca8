/* et_gpt.h - a GPT-2 style transformer: config, exact memory plan, forward, backward,
 * AdamW step.
 *
 * Architecture (GPT-2): token + learned position embeddings; L pre-LayerNorm blocks of
 * causal multi-head self-attention and a GELU(tanh) MLP of width 4C; a final LayerNorm;
 * logits through the token embedding (tied). The vocabulary is padded to a multiple of
 * 64 (Vp); the padded rows never touch the loss.
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

/** Model shape. vocab_padded is derived (et_gpt_config_check fills it). */
typedef struct et_gpt_config {
    int vocab;        /**< V: real vocabulary size */
    int vocab_padded; /**< Vp: V rounded up to a multiple of 64 */
    int context;      /**< maxT: longest sequence (rows of wpe) */
    int layers;       /**< L */
    int heads;        /**< NH; channels % heads == 0 */
    int channels;     /**< C */
} et_gpt_config;

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
    float *qkvw;     /* (L, 3C, C) */
    float *qkvb;     /* (L, 3C) */
    float *attprojw; /* (L, C, C) */
    float *attprojb; /* (L, C) */
    float *ln2w;     /* (L, C) */
    float *ln2b;     /* (L, C) */
    float *fcw;      /* (L, 4C, C) */
    float *fcb;      /* (L, 4C) */
    float *fcprojw;  /* (L, C, 4C) */
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
    float *qkv;       /* (L, B, T, 3C) */
    float *atty;      /* (L, B, T, C) */
    float *preatt;    /* (L, B, NH, T, T) */
    float *att;       /* (L, B, NH, T, T) */
    float *attproj;   /* (L, B, T, C) */
    float *residual2; /* (L, B, T, C) */
    float *ln2;       /* (L, B, T, C) */
    float *ln2_mean;  /* (L, B, T) */
    float *ln2_rstd;  /* (L, B, T) */
    float *fch;       /* (L, B, T, 4C) */
    float *fch_gelu;  /* (L, B, T, 4C) */
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
    float *dqkv;      /* (B, T, 3C) */
    float *datty;     /* (B, T, C) */
    float *dpreatt;   /* (B, NH, T, T) */
    float *datt;      /* (B, NH, T, T) */
    float *dfch;      /* (B, T, 4C) */
    float *dfch_gelu; /* (B, T, 4C) */
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

/** Checks a config and fills vocab_padded. ET_ERR_INVALID if a size is not positive
 *  or channels % heads != 0. */
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

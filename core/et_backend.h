/* et_backend.h - the interface through which a model runs its heavy ops.
 *
 * A backend is a table of function pointers plus a context, filled with designated
 * initializers. Pointers named float* below are buffers of that backend (host memory
 * for cpu, device memory for a GPU driver). Shapes are explicit; the comment after each
 * argument gives its layout. Backward functions ADD into gradients (+=), so gradients
 * accumulate across micro-batches; the model zeroes them when it should.
 * Every op returns ET_OK or an error status (a GPU driver's failure, say).
 * Optional members may be NULL: buffer hooks NULL mean host memory.
 */
#ifndef ET_BACKEND_H
#define ET_BACKEND_H

#include "et_conf.h"
#include "et_status.h"
#include "et_threads.h"

typedef struct et_backend {
    const char *name;
    void *ctx;
    /** Scratch bytes the backend needs from the model's arena (per-worker packing
     *  buffers and the like); the plan includes exactly this. */
    size_t scratch_bytes;
    /** Receives that scratch once the arena has it (optional). */
    et_status (*set_scratch)(void *ctx, void *buf, size_t bytes);

    /* --- device memory (optional: NULL means the backend works on host memory) */
    /** Arena of device memory the model's tensors come from (parameters, gradients,
     *  optimizer state, activations, scratch); NULL: they come from the host arena.
     *  Usually virtual (et_arena_init_virtual): the core never dereferences it and
     *  moves data only through upload/download and the ops. */
    struct et_arena *dev_arena;
    et_status (*upload)(void *ctx, void *dst_dev, const void *src_host, size_t bytes);
    et_status (*download)(void *ctx, void *dst_host, const void *src_dev, size_t bytes);

    /** Optional, and not an op (the ops follow): floats of each attention state buffer
     *  (preatt, att) per layer and of each backward workspace (dpreatt, datt). NULL:
     *  B*NH*T*T for all four. A flash-style backend keeps one log-sum-exp per row and
     *  needs no workspace. */
    void (*attention_sizes)(void *ctx, int B, int T, int NH, size_t *state, size_t *work);

    /* --- ops */
    /** out(N,OC) = inp(N,C) . w(OC,C)^T + bias(OC); bias may be NULL. */
    et_status (*matmul_fwd)(void *ctx, float *out, const float *inp, const float *w,
                            const float *bias, int N, int C, int OC);
    /** dinp(N,C) += dout.w ; dw(OC,C) += dout^T.inp ; dbias(OC) += colsum(dout)
     *  (dbias may be NULL). */
    et_status (*matmul_bwd)(void *ctx, float *dinp, float *dw, float *dbias,
                            const float *dout, const float *inp, const float *w,
                            int N, int C, int OC);
    /** out(N,C) = (inp - mean) * rstd * w + b ; mean(N), rstd(N) are saved for backward. */
    et_status (*layernorm_fwd)(void *ctx, float *out, float *mean, float *rstd,
                               const float *inp, const float *w, const float *b, int N, int C);
    et_status (*layernorm_bwd)(void *ctx, float *dinp, float *dw, float *db,
                               const float *dout, const float *inp, const float *w,
                               const float *mean, const float *rstd, int N, int C);
    /** Causal multi-head attention. qkv(B,T,3C) -> out(B,T,C). preatt and att are the
     *  state forward keeps for backward, in the backend's own layout: by default the
     *  scores and probabilities, (B,NH,T,T) each; see attention_sizes. */
    et_status (*attention_fwd)(void *ctx, float *out, float *preatt, float *att,
                               const float *qkv, int B, int T, int C, int NH);
    /** dqkv += the gradient through attention. dpreatt and datt are workspaces that the
     *  caller zeroes first; preatt and att are forward's state; out(B,T,C) is forward's
     *  output. */
    et_status (*attention_bwd)(void *ctx, float *dqkv, float *dpreatt, float *datt,
                               const float *dout, const float *qkv, const float *preatt,
                               const float *att, const float *out, int B, int T, int C, int NH);
    /** GELU, tanh approximation, elementwise over n. */
    et_status (*gelu_fwd)(void *ctx, float *out, const float *inp, size_t n);
    et_status (*gelu_bwd)(void *ctx, float *dinp, const float *inp, const float *dout, size_t n);
    /** out = a + b over n. */
    et_status (*residual_fwd)(void *ctx, float *out, const float *a, const float *b, size_t n);
    /** dst += src over n (the backward of a residual branch). */
    et_status (*accumulate)(void *ctx, float *dst, const float *src, size_t n);
    /** out(B,T,C) = wte[tokens] + wpe[t]; tokens(B,T) are host ints already checked < V. */
    et_status (*encoder_fwd)(void *ctx, float *out, const int *tokens, const float *wte,
                             const float *wpe, int B, int T, int C);
    et_status (*encoder_bwd)(void *ctx, float *dwte, float *dwpe, const float *dout,
                             const int *tokens, int B, int T, int C);
    /** Softmax over the first V of Vp logits per row, probs(N,Vp) (padded columns 0),
     *  losses(N) = -log probs[target]. */
    et_status (*crossentropy_fwd)(void *ctx, float *losses, float *probs, const float *logits,
                                  const int *targets, int N, int V, int Vp);
    /** dlogits(N,Vp) += (probs - onehot(target)) * dloss; padded columns untouched. */
    et_status (*crossentropy_bwd)(void *ctx, float *dlogits, const float *probs,
                                  const int *targets, float dloss, int N, int V, int Vp);
    /** AdamW with decoupled weight decay and bias correction over n parameters; t >= 1. */
    et_status (*adamw)(void *ctx, float *param, const float *grad, float *m, float *v,
                       size_t n, float lr, float beta1, float beta2, float eps,
                       float weight_decay, int t);
    /** *out = sum of squares of x(n), summed in a fixed order (double precision). */
    et_status (*sumsq)(void *ctx, double *out, const float *x, size_t n);
    /** x *= s over n. */
    et_status (*scale)(void *ctx, float *x, float s, size_t n);
    /** x = 0 over n. */
    et_status (*zero)(void *ctx, float *x, size_t n);
    /** dst = src over n (buffers of this backend, not overlapping). */
    et_status (*copy)(void *ctx, float *dst, const float *src, size_t n);
} et_backend;

#endif /* ET_BACKEND_H */

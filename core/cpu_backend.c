/* cpu_backend.c - the cpu backend table: each et_backend op over host memory, mapped
 * onto the kernels in cpu_ops.c, cpu_flash.c and gemm.c. Linear layers are GEMMs:
 *   forward   out(N,OC)  = inp(N,C) . w(OC,C)^T + bias   (NT)
 *   backward  dinp(N,C) += dout(N,OC) . w(OC,C)          (NN)
 *             dw(OC,C)  += dout(N,OC)^T . inp(N,C)       (TN)
 */
#include "et_cpu.h"
#include "et_cpu_ops.h"
#include "et_gemm.h"
#include "et_arena.h"

#define CTX ((et_cpu_ctx *)ctx)
#define BIAS_COLS_PER_TASK 64

/* the GEMM's shared panels, then one attention slice per worker */
size_t et_cpu_scratch_bytes(int nworkers)
{
    if (nworkers < 1) nworkers = 1;
    return et_arena_block(et_gemm_scratch_bytes(nworkers)) + (size_t)nworkers * et_arena_block(et_cpu_flash_slice());
}

static float *att_scratch(et_cpu_ctx *c)
{
    return (float *)((char *)c->scratch + et_arena_block(et_gemm_scratch_bytes(et_threads_workers(c->th))));
}

static et_status cpu_set_scratch(void *ctx, void *buf, size_t bytes)
{
    CTX->scratch = (float *)buf;
    CTX->scratch_bytes = bytes;
    return ET_OK;
}

static et_status cpu_matmul_fwd(void *ctx, float *out, const float *inp, const float *w,
                                const float *bias, int N, int C, int OC)
{
    et_gemm_args g;
    g.transA = 0; g.transB = 1; g.M = N; g.N = OC; g.K = C;
    g.A = inp; g.lda = C; g.B = w; g.ldb = C; g.bias = bias; g.accumulate = 0;
    g.C = out; g.ldc = OC;
    return et_gemm_f32(&g, CTX->th, CTX->scratch, CTX->scratch_bytes);
}

typedef struct {
    float *dbias;
    const float *dout;
    int N, OC;
} bias_job;

static void bias_task(void *arg, int t, int wk)
{
    bias_job *J = (bias_job *)arg;
    int o0 = t * BIAS_COLS_PER_TASK, o1 = o0 + BIAS_COLS_PER_TASK, r, o;
    float s[BIAS_COLS_PER_TASK];
    ET_UNUSED(wk);
    if (o1 > J->OC) o1 = J->OC;
    for (o = o0; o < o1; o++) s[o - o0] = 0.0f;
    for (r = 0; r < J->N; r++) {
        const float *d = J->dout + (size_t)r * J->OC;
        for (o = o0; o < o1; o++) s[o - o0] += d[o];
    }
    for (o = o0; o < o1; o++) J->dbias[o] += s[o - o0];
}

static et_status cpu_matmul_bwd(void *ctx, float *dinp, float *dw, float *dbias,
                                const float *dout, const float *inp, const float *w, int N,
                                int C, int OC)
{
    et_gemm_args g;
    et_status s;
    /* dinp(N,C) += dout(N,OC) . w(OC,C) */
    g.transA = 0; g.transB = 0; g.M = N; g.N = C; g.K = OC;
    g.A = dout; g.lda = OC; g.B = w; g.ldb = C; g.bias = 0; g.accumulate = 1;
    g.C = dinp; g.ldc = C;
    if (dinp && (s = et_gemm_f32(&g, CTX->th, CTX->scratch, CTX->scratch_bytes)) != ET_OK)
        return s;
    /* dw(OC,C) += dout^T(OC,N) . inp(N,C) */
    g.transA = 1; g.transB = 0; g.M = OC; g.N = C; g.K = N;
    g.A = dout; g.lda = OC; g.B = inp; g.ldb = C; g.bias = 0; g.accumulate = 1;
    g.C = dw; g.ldc = C;
    if (dw && (s = et_gemm_f32(&g, CTX->th, CTX->scratch, CTX->scratch_bytes)) != ET_OK)
        return s;
    if (dbias) {
        bias_job J;
        J.dbias = dbias; J.dout = dout; J.N = N; J.OC = OC;
        et_parallel_for(CTX->th, (OC + BIAS_COLS_PER_TASK - 1) / BIAS_COLS_PER_TASK, bias_task, &J);
    }
    return ET_OK;
}

static et_status cpu_layernorm_fwd(void *ctx, float *out, float *mean, float *rstd,
                                   const float *inp, const float *w, const float *b, int N, int C)
{
    et_cpu_layernorm_fwd(CTX->th, out, mean, rstd, inp, w, b, N, C);
    return ET_OK;
}

static et_status cpu_layernorm_bwd(void *ctx, float *dinp, float *dw, float *db,
                                   const float *dout, const float *inp, const float *w,
                                   const float *mean, const float *rstd, int N, int C)
{
    et_cpu_layernorm_bwd(CTX->th, dinp, dw, db, dout, inp, w, mean, rstd, N, C);
    return ET_OK;
}

/* flash-style: att holds one log-sum-exp per row (B,NH,T); preatt and the backward
 * workspaces are not used */
static et_status cpu_attention_fwd(void *ctx, float *out, float *preatt, float *att,
                                   const float *qkv, int B, int T, int C, int NH)
{
    ET_UNUSED(preatt);
    if (!CTX->scratch || CTX->scratch_bytes < et_cpu_scratch_bytes(et_threads_workers(CTX->th)))
        return ET_ERR_NOMEM;
    et_cpu_flash_fwd(CTX->th, att_scratch(CTX), et_arena_block(et_cpu_flash_slice()), out, att, qkv,
                     B, T, C, NH);
    return ET_OK;
}

static et_status cpu_attention_bwd(void *ctx, float *dqkv, float *dpreatt, float *datt,
                                   const float *dout, const float *qkv, const float *preatt,
                                   const float *att, const float *out, int B, int T, int C, int NH)
{
    ET_UNUSED(dpreatt); ET_UNUSED(datt); ET_UNUSED(preatt);
    if (!CTX->scratch || CTX->scratch_bytes < et_cpu_scratch_bytes(et_threads_workers(CTX->th)))
        return ET_ERR_NOMEM;
    et_cpu_flash_bwd(CTX->th, att_scratch(CTX), et_arena_block(et_cpu_flash_slice()), dqkv, dout, qkv,
                     out, att, B, T, C, NH);
    return ET_OK;
}

static void cpu_attention_sizes(void *ctx, int B, int T, int NH, size_t *state, size_t *work)
{
    ET_UNUSED(ctx);
    *state = (size_t)B * NH * T;
    *work = 0;
}

static et_status cpu_gelu_fwd(void *ctx, float *out, const float *inp, size_t n)
{
    et_cpu_gelu_fwd(CTX->th, out, inp, n);
    return ET_OK;
}

static et_status cpu_gelu_bwd(void *ctx, float *dinp, const float *inp, const float *dout,
                              size_t n)
{
    et_cpu_gelu_bwd(CTX->th, dinp, inp, dout, n);
    return ET_OK;
}

static et_status cpu_residual_fwd(void *ctx, float *out, const float *a, const float *b,
                                  size_t n)
{
    size_t i;
    ET_UNUSED(ctx);
    for (i = 0; i < n; i++) out[i] = a[i] + b[i];
    return ET_OK;
}

static et_status cpu_accumulate(void *ctx, float *dst, const float *src, size_t n)
{
    size_t i;
    ET_UNUSED(ctx);
    for (i = 0; i < n; i++) dst[i] += src[i];
    return ET_OK;
}

static et_status cpu_encoder_fwd(void *ctx, float *out, const int *tokens, const float *wte,
                                 const float *wpe, int B, int T, int C)
{
    et_cpu_encoder_fwd(CTX->th, out, tokens, wte, wpe, B, T, C);
    return ET_OK;
}

static et_status cpu_encoder_bwd(void *ctx, float *dwte, float *dwpe, const float *dout,
                                 const int *tokens, int B, int T, int C)
{
    et_cpu_encoder_bwd(CTX->th, dwte, dwpe, dout, tokens, B, T, C);
    return ET_OK;
}

static et_status cpu_ce_fwd(void *ctx, float *losses, float *probs, const float *logits,
                            const int *targets, int N, int V, int Vp)
{
    et_cpu_crossentropy_fwd(CTX->th, losses, probs, logits, targets, N, V, Vp);
    return ET_OK;
}

static et_status cpu_ce_bwd(void *ctx, float *dlogits, const float *probs, const int *targets,
                            float dloss, int N, int V, int Vp)
{
    et_cpu_crossentropy_bwd(CTX->th, dlogits, probs, targets, dloss, N, V, Vp);
    return ET_OK;
}

static et_status cpu_adamw(void *ctx, float *param, const float *grad, float *m, float *v,
                           size_t n, float lr, float beta1, float beta2, float eps,
                           float weight_decay, int t)
{
    if (t < 1) return ET_ERR_INVALID;
    et_cpu_adamw(CTX->th, param, grad, m, v, n, lr, beta1, beta2, eps, weight_decay, t);
    return ET_OK;
}

static et_status cpu_sumsq(void *ctx, double *out, const float *x, size_t n)
{
    *out = et_cpu_sumsq(CTX->th, x, n);
    return ET_OK;
}

static et_status cpu_scale(void *ctx, float *x, float s, size_t n)
{
    size_t i;
    ET_UNUSED(ctx);
    for (i = 0; i < n; i++) x[i] *= s;
    return ET_OK;
}

static et_status cpu_zero(void *ctx, float *x, size_t n)
{
    ET_UNUSED(ctx);
    ET_MEMSET(x, 0, n * sizeof(float));
    return ET_OK;
}

static et_status cpu_copy(void *ctx, float *dst, const float *src, size_t n)
{
    ET_UNUSED(ctx);
    ET_MEMCPY(dst, src, n * sizeof(float));
    return ET_OK;
}

et_status et_cpu_backend_init(et_backend *be, et_cpu_ctx *ctx, const et_threads *th)
{
    et_backend b = {
        .name = "cpu",
        .set_scratch = cpu_set_scratch,
        .matmul_fwd = cpu_matmul_fwd,
        .matmul_bwd = cpu_matmul_bwd,
        .layernorm_fwd = cpu_layernorm_fwd,
        .layernorm_bwd = cpu_layernorm_bwd,
        .attention_fwd = cpu_attention_fwd,
        .attention_bwd = cpu_attention_bwd,
        .attention_sizes = cpu_attention_sizes,
        .gelu_fwd = cpu_gelu_fwd,
        .gelu_bwd = cpu_gelu_bwd,
        .residual_fwd = cpu_residual_fwd,
        .accumulate = cpu_accumulate,
        .encoder_fwd = cpu_encoder_fwd,
        .encoder_bwd = cpu_encoder_bwd,
        .crossentropy_fwd = cpu_ce_fwd,
        .crossentropy_bwd = cpu_ce_bwd,
        .adamw = cpu_adamw,
        .sumsq = cpu_sumsq,
        .scale = cpu_scale,
        .zero = cpu_zero,
        .copy = cpu_copy,
    };
    if (!be || !ctx) return ET_ERR_INVALID;
    ctx->th = th;
    ctx->scratch = 0;
    ctx->scratch_bytes = 0;
    b.ctx = ctx;
    b.scratch_bytes = et_cpu_scratch_bytes(et_threads_workers(th));
    *be = b;
    return ET_OK;
}

/* sys_backend.c - the "systolic" backend (et_sys_backend.h): linear layers on the
 * simulated array, everything else on the host through the cpu backend's table.
 *
 * The three products of a linear layer map onto the array as
 *   forward  out(N,OC)  = inp(N,C) . w(OC,C)^T (+ bias)   A = inp,    B = w^T
 *   dinp     dinp(N,C) += dout(N,OC) . w(OC,C)            A = dout,   B = w
 *   dw       dw(OC,C)  += dout(N,OC)^T . inp(N,C)         A = dout^T, B = inp
 * through operand descriptors (no copies); the bias gradient is a column sum on the
 * host, in the cpu backend's order (so it has its bits). Host ops are timed with the
 * monotonic clock; GEMMs are logged with their counters and the wall time their
 * simulation took. Hosted (clock_gettime); no allocation (scratch from the model's
 * arena). Deliberately avoided: simulating the attention's inner products on the array
 * (they live inside the one attention op of et_backend; see docs/SYSTOLIC.md).
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "et_sys_backend.h"

#define X ((et_sys_ctx *)ctx)
#define RND(n) (((n) + 63) & ~(size_t)63)

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

size_t et_sys_backend_scratch_bytes(const et_sys_config *cfg, const et_threads *th, int max_n)
{
    et_backend cpu;
    et_cpu_ctx cx;
    if (max_n < 0) max_n = 0;
    /* the cpu backend says what it needs: its ops (attention too) may take scratch */
    if (et_cpu_backend_init(&cpu, &cx, th) != ET_OK) return 0;
    return RND(cpu.scratch_bytes) + RND(sizeof(float) * (size_t)max_n) +
           et_sys_gemm_scratch_bytes(cfg, et_threads_workers(th));
}

static et_status sys_set_scratch(void *ctx, void *buf, size_t bytes)
{
    size_t cpu = RND(X->cpu.scratch_bytes), cs = RND(sizeof(float) * (size_t)X->max_n);
    et_status s;
    if (!buf || bytes < cpu + cs + et_sys_gemm_scratch_bytes(&X->cfg, et_threads_workers(X->th)))
        return ET_ERR_NOMEM;
    if (X->cpu.set_scratch && (s = X->cpu.set_scratch(X->cpu.ctx, buf, X->cpu.scratch_bytes)) != ET_OK)
        return s;
    X->colscale = (float *)((char *)buf + cpu);
    X->gemm_scratch = (char *)buf + cpu + cs;
    X->gemm_scratch_bytes = bytes - cpu - cs;
    return ET_OK;
}

// --- GEMMs on the array

static et_sys_operand f32_op(const float *p, int ld, int trans)
{
    et_sys_operand o = {0, 0, 0, ET_SYS_OP_F32, 0, -1};
    o.data = p;
    o.ld = ld;
    o.trans = trans;
    return o;
}

/* Runs one GEMM, adds it to the totals and the log. */
static et_status run(et_sys_ctx *c, et_sys_gemm_kind kind, const float *w, int M, int N, int K,
                     const et_sys_operand *A, const et_sys_operand *B, const et_sys_result *R)
{
    et_sys_stats st;
    double t0 = now(), dt;
    et_status s;
    ET_MEMSET(&st, 0, sizeof st);
    s = et_sys_gemm(&c->cfg, M, N, K, A, B, R, c->th, c->gemm_scratch, c->gemm_scratch_bytes, &st);
    dt = now() - t0;
    if (s != ET_OK) return s;
    et_sys_stats_add(&c->total, &st);
    c->sim_seconds += dt;
    if (c->log && c->log_n < c->log_cap) {
        et_sys_record *r = &c->log[c->log_n++];
        r->kind = kind;
        r->w = w;
        r->M = M; r->N = N; r->K = K;
        r->int8 = c->cfg.dtype == ET_SYS_INT8;
        r->st = st;
        r->sim_seconds = dt;
    } else {
        c->log_dropped++;
    }
    return ET_OK;
}

static et_status sys_matmul_fwd(void *ctx, float *out, const float *inp, const float *w,
                                const float *bias, int N, int C, int OC)
{
    et_sys_operand A = f32_op(inp, C, 0), B = f32_op(w, C, 1);
    et_sys_result R = {0, 0, 0, 0, 0, 1.0f, 0};
    float sa = 1.0f;
    R.f32 = out;
    R.ld = OC;
    R.bias = bias;
    if (X->cfg.dtype == ET_SYS_INT8) {
        double t0 = now();
        if (OC > X->max_n || !X->colscale) return ET_ERR_INVALID;
        sa = et_sys_q8_scale(inp, (size_t)N * (size_t)C);
        et_sys_q8_scale_rows(w, OC, C, C, X->colscale);
        X->host_seconds[ET_SYS_HOST_QUANT] += now() - t0;
        X->host_calls[ET_SYS_HOST_QUANT]++;
        A.type = B.type = ET_SYS_OP_F32_Q8;
        A.scale = &sa;
        A.scale_axis = -1;
        B.scale = X->colscale;
        B.scale_axis = 1; /* one per output channel: B's columns */
        R.scale = sa;
        R.col_scale = X->colscale;
    }
    return run(X, ET_SYS_GEMM_FWD, w, N, OC, C, &A, &B, &R);
}

static et_status sys_matmul_bwd(void *ctx, float *dinp, float *dw, float *dbias,
                                const float *dout, const float *inp, const float *w, int N,
                                int C, int OC)
{
    et_status s;
    if (X->cfg.dtype != ET_SYS_FP32) return ET_ERR_UNSUPPORTED;
    if (dinp) {
        et_sys_operand A = f32_op(dout, OC, 0), B = f32_op(w, C, 0);
        et_sys_result R = {0, 0, 0, 0, 1, 1.0f, 0};
        R.f32 = dinp;
        R.ld = C;
        if ((s = run(X, ET_SYS_GEMM_DINP, w, N, C, OC, &A, &B, &R)) != ET_OK) return s;
    }
    if (dw) {
        et_sys_operand A = f32_op(dout, OC, 1), B = f32_op(inp, C, 0);
        et_sys_result R = {0, 0, 0, 0, 1, 1.0f, 0};
        R.f32 = dw;
        R.ld = C;
        if ((s = run(X, ET_SYS_GEMM_DW, w, OC, C, N, &A, &B, &R)) != ET_OK) return s;
    }
    if (dbias) {
        double t0 = now();
        int o, r;
        for (o = 0; o < OC; o++) {
            float acc = 0.0f;
            for (r = 0; r < N; r++) acc += dout[(size_t)r * OC + o];
            dbias[o] += acc;
        }
        X->host_seconds[ET_SYS_HOST_BIAS_GRAD] += now() - t0;
        X->host_calls[ET_SYS_HOST_BIAS_GRAD]++;
    }
    return ET_OK;
}

// --- host ops: the cpu backend's, timed

#define HOST(kind, call)                                  \
    do {                                                  \
        double t0_ = now();                               \
        et_status s_ = (call);                            \
        X->host_seconds[kind] += now() - t0_;             \
        X->host_calls[kind]++;                            \
        return s_;                                        \
    } while (0)
#define CPU X->cpu
#define CX X->cpu.ctx

static et_status sys_layernorm_fwd(void *ctx, float *out, float *mean, float *rstd,
                                   const float *inp, const float *w, const float *b, int N, int C)
{
    HOST(ET_SYS_HOST_LAYERNORM, CPU.layernorm_fwd(CX, out, mean, rstd, inp, w, b, N, C));
}

static et_status sys_layernorm_bwd(void *ctx, float *dinp, float *dw, float *db,
                                   const float *dout, const float *inp, const float *w,
                                   const float *mean, const float *rstd, int N, int C)
{
    HOST(ET_SYS_HOST_LAYERNORM, CPU.layernorm_bwd(CX, dinp, dw, db, dout, inp, w, mean, rstd, N, C));
}

static et_status sys_attention_fwd(void *ctx, float *out, float *preatt, float *att,
                                   const float *qkv, int B, int T, int C, int NH)
{
    HOST(ET_SYS_HOST_ATTENTION, CPU.attention_fwd(CX, out, preatt, att, qkv, B, T, C, NH));
}

static et_status sys_attention_bwd(void *ctx, float *dqkv, float *dpreatt, float *datt,
                                   const float *dout, const float *qkv, const float *preatt,
                                   const float *att, const float *out, int B, int T, int C, int NH)
{
    HOST(ET_SYS_HOST_ATTENTION,
         CPU.attention_bwd(CX, dqkv, dpreatt, datt, dout, qkv, preatt, att, out, B, T, C, NH));
}

/* attention runs on the host's cpu kernels: their state sizes */
static void sys_attention_sizes(void *ctx, int B, int T, int NH, size_t *state, size_t *work)
{
    CPU.attention_sizes(CX, B, T, NH, state, work);
}

static et_status sys_gelu_fwd(void *ctx, float *out, const float *inp, size_t n)
{
    HOST(ET_SYS_HOST_GELU, CPU.gelu_fwd(CX, out, inp, n));
}

static et_status sys_gelu_bwd(void *ctx, float *dinp, const float *inp, const float *dout, size_t n)
{
    HOST(ET_SYS_HOST_GELU, CPU.gelu_bwd(CX, dinp, inp, dout, n));
}

static et_status sys_residual_fwd(void *ctx, float *out, const float *a, const float *b, size_t n)
{
    HOST(ET_SYS_HOST_RESIDUAL, CPU.residual_fwd(CX, out, a, b, n));
}

static et_status sys_accumulate(void *ctx, float *dst, const float *src, size_t n)
{
    HOST(ET_SYS_HOST_RESIDUAL, CPU.accumulate(CX, dst, src, n));
}

static et_status sys_encoder_fwd(void *ctx, float *out, const int *tokens, const float *wte,
                                 const float *wpe, int B, int T, int C)
{
    HOST(ET_SYS_HOST_ENCODER, CPU.encoder_fwd(CX, out, tokens, wte, wpe, B, T, C));
}

static et_status sys_encoder_bwd(void *ctx, float *dwte, float *dwpe, const float *dout,
                                 const int *tokens, int B, int T, int C)
{
    HOST(ET_SYS_HOST_ENCODER, CPU.encoder_bwd(CX, dwte, dwpe, dout, tokens, B, T, C));
}

static et_status sys_ce_fwd(void *ctx, float *losses, float *probs, const float *logits,
                            const int *targets, int N, int V, int Vp)
{
    HOST(ET_SYS_HOST_CROSSENTROPY, CPU.crossentropy_fwd(CX, losses, probs, logits, targets, N, V, Vp));
}

static et_status sys_ce_bwd(void *ctx, float *dlogits, const float *probs, const int *targets,
                            float dloss, int N, int V, int Vp)
{
    HOST(ET_SYS_HOST_CROSSENTROPY, CPU.crossentropy_bwd(CX, dlogits, probs, targets, dloss, N, V, Vp));
}

static et_status sys_adamw(void *ctx, float *param, const float *grad, float *m, float *v,
                           size_t n, float lr, float beta1, float beta2, float eps,
                           float weight_decay, int t)
{
    HOST(ET_SYS_HOST_ADAMW, CPU.adamw(CX, param, grad, m, v, n, lr, beta1, beta2, eps, weight_decay, t));
}

static et_status sys_sumsq(void *ctx, double *out, const float *x, size_t n)
{
    HOST(ET_SYS_HOST_OTHER, CPU.sumsq(CX, out, x, n));
}

static et_status sys_scale(void *ctx, float *x, float s, size_t n)
{
    HOST(ET_SYS_HOST_OTHER, CPU.scale(CX, x, s, n));
}

static et_status sys_zero(void *ctx, float *x, size_t n)
{
    HOST(ET_SYS_HOST_OTHER, CPU.zero(CX, x, n));
}

static et_status sys_copy(void *ctx, float *dst, const float *src, size_t n)
{
    HOST(ET_SYS_HOST_OTHER, CPU.copy(CX, dst, src, n));
}

// --- the table

et_status et_sys_backend_init(et_backend *be, et_sys_ctx *ctx, const et_sys_config *cfg,
                              const et_threads *th, int max_n, et_sys_record *log, size_t log_cap)
{
    et_backend b = {
        .name = "systolic",
        .set_scratch = sys_set_scratch,
        .matmul_fwd = sys_matmul_fwd,
        .matmul_bwd = sys_matmul_bwd,
        .layernorm_fwd = sys_layernorm_fwd,
        .layernorm_bwd = sys_layernorm_bwd,
        .attention_fwd = sys_attention_fwd,
        .attention_bwd = sys_attention_bwd,
        .attention_sizes = sys_attention_sizes,
        .gelu_fwd = sys_gelu_fwd,
        .gelu_bwd = sys_gelu_bwd,
        .residual_fwd = sys_residual_fwd,
        .accumulate = sys_accumulate,
        .encoder_fwd = sys_encoder_fwd,
        .encoder_bwd = sys_encoder_bwd,
        .crossentropy_fwd = sys_ce_fwd,
        .crossentropy_bwd = sys_ce_bwd,
        .adamw = sys_adamw,
        .sumsq = sys_sumsq,
        .scale = sys_scale,
        .zero = sys_zero,
        .copy = sys_copy,
    };
    et_status s;
    if (!be || !ctx || et_sys_config_check(cfg) != ET_OK || max_n < 0 || (log_cap && !log))
        return ET_ERR_INVALID;
    ET_MEMSET(ctx, 0, sizeof *ctx);
    ctx->cfg = *cfg;
    ctx->th = th;
    ctx->max_n = max_n;
    ctx->log = log;
    ctx->log_cap = log_cap;
    if ((s = et_cpu_backend_init(&ctx->cpu, &ctx->cpu_ctx, th)) != ET_OK) return s;
    b.ctx = ctx;
    b.scratch_bytes = RND(ctx->cpu.scratch_bytes) + RND(sizeof(float) * (size_t)max_n) +
                      et_sys_gemm_scratch_bytes(cfg, et_threads_workers(th));
    *be = b;
    return ET_OK;
}

et_status et_sys_spec_parse(const char *arg, et_sys_config *c, et_error *err)
{
    const char *p = arg;
    char *end;
    long r, k;
    et_sys_config_default(c);
    if (!arg || !*arg) return ET_OK;
    r = strtol(p, &end, 10);
    if (end == p || (*end != 'x' && *end != 'X')) goto bad;
    p = end + 1;
    k = strtol(p, &end, 10);
    if (end == p || r < 1 || r > 4096 || k < 1 || k > 4096) goto bad;
    c->rows = (int)r;
    c->cols = (int)k;
    for (p = end; *p == ':';) {
        size_t n;
        p++;
        n = strcspn(p, ":");
        if (n == 2 && !strncmp(p, "os", 2)) c->dataflow = ET_SYS_OS;
        else if (n == 2 && !strncmp(p, "ws", 2)) c->dataflow = ET_SYS_WS;
        else if (n == 2 && !strncmp(p, "is", 2)) c->dataflow = ET_SYS_IS;
        else if (n == 4 && !strncmp(p, "fp32", 4)) c->dtype = ET_SYS_FP32;
        else if (n == 4 && !strncmp(p, "int8", 4)) c->dtype = ET_SYS_INT8;
        else goto bad;
        p += n;
    }
    if (*p) goto bad;
    c->energy = et_sys_energy_default(c->dtype);
    return ET_OK;
bad:
    return et_error_set(err, ET_ERR_INVALID, "systolic array '%s' must be RxC[:os|ws|is][:fp32|int8] with R and "
                        "C in 1..4096, e.g. 16x16:ws:fp32", arg);
}

void et_sys_backend_reset(et_sys_ctx *ctx)
{
    ET_MEMSET(&ctx->total, 0, sizeof ctx->total);
    ET_MEMSET(ctx->host_seconds, 0, sizeof ctx->host_seconds);
    ET_MEMSET(ctx->host_calls, 0, sizeof ctx->host_calls);
    ctx->sim_seconds = 0.0;
    ctx->log_n = 0;
    ctx->log_dropped = 0;
}

double et_sys_host_seconds(const et_sys_ctx *ctx)
{
    double s = 0.0;
    int k;
    for (k = 0; k < ET_SYS_HOST_NOPS; k++) s += ctx->host_seconds[k];
    return s;
}

const char *et_sys_host_op_name(int op)
{
    static const char *const names[ET_SYS_HOST_NOPS] = {
        "layernorm", "attention", "gelu", "residual", "encoder", "crossentropy",
        "adamw", "bias_grad", "quantize", "other"};
    return op >= 0 && op < ET_SYS_HOST_NOPS ? names[op] : "?";
}

const char *et_sys_gemm_kind_name(et_sys_gemm_kind k)
{
    return k == ET_SYS_GEMM_FWD ? "fwd" : k == ET_SYS_GEMM_DINP ? "dinp" : k == ET_SYS_GEMM_DW ? "dw" : "?";
}

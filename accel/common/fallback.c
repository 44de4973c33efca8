/* fallback.c - the proxy table in front of every device driver: forwards the ops the
 * driver has, runs the ones it lacks on the cpu backend through host copies, counts and
 * (when asked) times every op.
 *
 * A fallback downloads a buffer before the cpu op when the op reads it, adds into it
 * or writes only part of it (IN); buffers the cpu op writes in full (OUT) are only
 * uploaded after it. Host copies are malloc'd per call and freed before returning:
 * the fallback is a correctness path, not a fast one. Deliberately avoids: keeping
 * copies between ops (a later device op could change the device side).
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "et_fallback.h"

#define FBX ((et_fallback *)ctx)
#define FL(n) ((size_t)(n) * sizeof(float))

static const char *const op_names[ET_OP_COUNT] = {
    "matmul_fwd", "matmul_bwd", "layernorm_fwd", "layernorm_bwd", "attention_fwd",
    "attention_bwd", "gelu_fwd", "gelu_bwd", "residual_fwd", "accumulate", "encoder_fwd",
    "encoder_bwd", "crossentropy_fwd", "crossentropy_bwd", "adamw", "sumsq", "scale", "zero",
    "copy",
};

const char *et_fallback_op_name(int op)
{
    return op >= 0 && op < ET_OP_COUNT ? op_names[op] : "?";
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static double start(const et_fallback *fb) { return fb->profile ? now_s() : 0.0; }

/* counts the call; when profiling, waits for the driver so the time is the op's own */
static et_status done(et_fallback *fb, int op, double t0, et_status s, int fell)
{
    fb->calls[op]++;
    if (fell) fb->fallbacks[op]++;
    if (fb->profile) {
        if (s == ET_OK && fb->sync) s = fb->sync(fb->dev.ctx);
        fb->seconds[op] += now_s() - t0;
    }
    return s;
}

// --- host copies of device buffers

enum { IN = 1, OUT = 2, INOUT = 3 };

typedef struct {
    const void *d; /* device buffer (NULL: argument absent) */
    size_t bytes;
    int dir;
    void *h;       /* host copy */
} xfer;

static int on_host(const et_fallback *fb) { return fb->dev.download == NULL; }

/* Allocates and fills host copies; on failure the ones made are freed by unstage(). */
static et_status stage(et_fallback *fb, xfer *x, int n)
{
    int i;
    et_status s;
    for (i = 0; i < n; i++) x[i].h = NULL;
    for (i = 0; i < n; i++) {
        if (!x[i].d) continue;
        if (on_host(fb)) {
            x[i].h = (void *)x[i].d;
            continue;
        }
        if (!(x[i].h = malloc(x[i].bytes ? x[i].bytes : 1))) return ET_ERR_NOMEM;
        if ((x[i].dir & IN) && x[i].bytes &&
            (s = fb->dev.download(fb->dev.ctx, x[i].h, x[i].d, x[i].bytes)) != ET_OK)
            return s;
    }
    return ET_OK;
}

/* Uploads what the cpu op wrote (when @p s is ET_OK) and frees every host copy. */
static et_status unstage(et_fallback *fb, xfer *x, int n, et_status s)
{
    int i;
    if (on_host(fb)) return s;
    for (i = 0; i < n; i++) {
        if (!x[i].h) continue;
        if (s == ET_OK && (x[i].dir & OUT) && x[i].bytes)
            s = fb->dev.upload(fb->dev.ctx, (void *)x[i].d, x[i].h, x[i].bytes);
        free(x[i].h);
        x[i].h = NULL;
    }
    return s;
}

#define H(i) ((float *)x[i].h)

// --- the proxy ops: forward when the driver has the op, else stage + cpu + unstage

static et_status p_set_scratch(void *ctx, void *buf, size_t bytes)
{
    return FBX->dev.set_scratch ? FBX->dev.set_scratch(FBX->dev.ctx, buf, bytes) : ET_OK;
}

static et_status p_upload(void *ctx, void *dst, const void *src, size_t bytes)
{
    return FBX->dev.upload(FBX->dev.ctx, dst, src, bytes);
}

static et_status p_download(void *ctx, void *dst, const void *src, size_t bytes)
{
    return FBX->dev.download(FBX->dev.ctx, dst, src, bytes);
}

static et_status p_matmul_fwd(void *ctx, float *out, const float *inp, const float *w,
                              const float *bias, int N, int C, int OC)
{
    et_fallback *fb = FBX;
    double t0 = start(fb);
    et_status s;
    if (fb->dev.matmul_fwd)
        return done(fb, ET_OP_MATMUL_FWD, t0,
                    fb->dev.matmul_fwd(fb->dev.ctx, out, inp, w, bias, N, C, OC), 0);
    {
        xfer x[4] = {{out, FL((size_t)N * OC), OUT, 0}, {inp, FL((size_t)N * C), IN, 0},
                     {w, FL((size_t)OC * C), IN, 0}, {bias, FL(OC), IN, 0}};
        if ((s = stage(fb, x, 4)) == ET_OK)
            s = fb->cpu.matmul_fwd(fb->cpu.ctx, H(0), H(1), H(2), H(3), N, C, OC);
        return done(fb, ET_OP_MATMUL_FWD, t0, unstage(fb, x, 4, s), 1);
    }
}

static et_status p_matmul_bwd(void *ctx, float *dinp, float *dw, float *dbias,
                              const float *dout, const float *inp, const float *w, int N, int C,
                              int OC)
{
    et_fallback *fb = FBX;
    double t0 = start(fb);
    et_status s;
    if (fb->dev.matmul_bwd)
        return done(fb, ET_OP_MATMUL_BWD, t0,
                    fb->dev.matmul_bwd(fb->dev.ctx, dinp, dw, dbias, dout, inp, w, N, C, OC), 0);
    {
        xfer x[6] = {{dinp, FL((size_t)N * C), INOUT, 0}, {dw, FL((size_t)OC * C), INOUT, 0},
                     {dbias, FL(OC), INOUT, 0},           {dout, FL((size_t)N * OC), IN, 0},
                     {inp, FL((size_t)N * C), IN, 0},     {w, FL((size_t)OC * C), IN, 0}};
        if ((s = stage(fb, x, 6)) == ET_OK)
            s = fb->cpu.matmul_bwd(fb->cpu.ctx, H(0), H(1), H(2), H(3), H(4), H(5), N, C, OC);
        return done(fb, ET_OP_MATMUL_BWD, t0, unstage(fb, x, 6, s), 1);
    }
}

static et_status p_layernorm_fwd(void *ctx, float *out, float *mean, float *rstd,
                                 const float *inp, const float *w, const float *b, int N, int C)
{
    et_fallback *fb = FBX;
    double t0 = start(fb);
    et_status s;
    if (fb->dev.layernorm_fwd)
        return done(fb, ET_OP_LAYERNORM_FWD, t0,
                    fb->dev.layernorm_fwd(fb->dev.ctx, out, mean, rstd, inp, w, b, N, C), 0);
    {
        xfer x[6] = {{out, FL((size_t)N * C), OUT, 0}, {mean, FL(N), OUT, 0},
                     {rstd, FL(N), OUT, 0},            {inp, FL((size_t)N * C), IN, 0},
                     {w, FL(C), IN, 0},                {b, FL(C), IN, 0}};
        if ((s = stage(fb, x, 6)) == ET_OK)
            s = fb->cpu.layernorm_fwd(fb->cpu.ctx, H(0), H(1), H(2), H(3), H(4), H(5), N, C);
        return done(fb, ET_OP_LAYERNORM_FWD, t0, unstage(fb, x, 6, s), 1);
    }
}

static et_status p_layernorm_bwd(void *ctx, float *dinp, float *dw, float *db, const float *dout,
                                 const float *inp, const float *w, const float *mean,
                                 const float *rstd, int N, int C)
{
    et_fallback *fb = FBX;
    double t0 = start(fb);
    et_status s;
    if (fb->dev.layernorm_bwd)
        return done(fb, ET_OP_LAYERNORM_BWD, t0,
                    fb->dev.layernorm_bwd(fb->dev.ctx, dinp, dw, db, dout, inp, w, mean, rstd, N, C), 0);
    {
        xfer x[8] = {{dinp, FL((size_t)N * C), INOUT, 0}, {dw, FL(C), INOUT, 0},
                     {db, FL(C), INOUT, 0},               {dout, FL((size_t)N * C), IN, 0},
                     {inp, FL((size_t)N * C), IN, 0},     {w, FL(C), IN, 0},
                     {mean, FL(N), IN, 0},                {rstd, FL(N), IN, 0}};
        if ((s = stage(fb, x, 8)) == ET_OK)
            s = fb->cpu.layernorm_bwd(fb->cpu.ctx, H(0), H(1), H(2), H(3), H(4), H(5), H(6), H(7),
                                      N, C);
        return done(fb, ET_OP_LAYERNORM_BWD, t0, unstage(fb, x, 8, s), 1);
    }
}

/* Attention's forward state is private to the implementation that wrote it, so the
 * device runs attention only when it has both directions; otherwise the cpu runs both.
 * The state and workspace sizes are that implementation's (the proxy moves exactly
 * those). */
static int dev_attention(const et_fallback *fb)
{
    return fb->dev.attention_fwd && fb->dev.attention_bwd;
}

static void p_attention_sizes(void *ctx, int B, int T, int NH, size_t *state, size_t *work)
{
    et_fallback *fb = FBX;
    const et_backend *who = dev_attention(fb) ? &fb->dev : &fb->cpu;
    *state = *work = (size_t)B * NH * T * T;
    if (who->attention_sizes) who->attention_sizes(who->ctx, B, T, NH, state, work);
}

static et_status p_attention_fwd(void *ctx, float *out, float *preatt, float *att,
                                 const float *qkv, int B, int T, int C, int NH)
{
    et_fallback *fb = FBX;
    double t0 = start(fb);
    size_t BT = (size_t)B * T, A, W;
    et_status s;
    p_attention_sizes(ctx, B, T, NH, &A, &W);
    if (dev_attention(fb))
        return done(fb, ET_OP_ATTENTION_FWD, t0,
                    fb->dev.attention_fwd(fb->dev.ctx, out, preatt, att, qkv, B, T, C, NH), 0);
    {
        xfer x[4] = {{out, FL(BT * C), OUT, 0}, {preatt, FL(A), OUT, 0}, {att, FL(A), OUT, 0},
                     {qkv, FL(BT * 3 * C), IN, 0}};
        if ((s = stage(fb, x, 4)) == ET_OK)
            s = fb->cpu.attention_fwd(fb->cpu.ctx, H(0), H(1), H(2), H(3), B, T, C, NH);
        return done(fb, ET_OP_ATTENTION_FWD, t0, unstage(fb, x, 4, s), 1);
    }
}

static et_status p_attention_bwd(void *ctx, float *dqkv, float *dpreatt, float *datt,
                                 const float *dout, const float *qkv, const float *preatt,
                                 const float *att, const float *out, int B, int T, int C, int NH)
{
    et_fallback *fb = FBX;
    double t0 = start(fb);
    size_t BT = (size_t)B * T, A, W;
    et_status s;
    if (dev_attention(fb))
        return done(fb, ET_OP_ATTENTION_BWD, t0,
                    fb->dev.attention_bwd(fb->dev.ctx, dqkv, dpreatt, datt, dout, qkv, preatt, att,
                                          out, B, T, C, NH), 0);
    p_attention_sizes(ctx, B, T, NH, &A, &W);
    {
        xfer x[8] = {{dqkv, FL(BT * 3 * C), INOUT, 0}, {dpreatt, FL(W), INOUT, 0},
                     {datt, FL(W), INOUT, 0},          {dout, FL(BT * C), IN, 0},
                     {qkv, FL(BT * 3 * C), IN, 0},     {preatt, FL(A), IN, 0},
                     {att, FL(A), IN, 0},              {out, FL(BT * C), IN, 0}};
        if ((s = stage(fb, x, 8)) == ET_OK)
            s = fb->cpu.attention_bwd(fb->cpu.ctx, H(0), H(1), H(2), H(3), H(4), H(5), H(6), H(7),
                                      B, T, C, NH);
        return done(fb, ET_OP_ATTENTION_BWD, t0, unstage(fb, x, 8, s), 1);
    }
}

static et_status p_gelu_fwd(void *ctx, float *out, const float *inp, size_t n)
{
    et_fallback *fb = FBX;
    double t0 = start(fb);
    et_status s;
    if (fb->dev.gelu_fwd)
        return done(fb, ET_OP_GELU_FWD, t0, fb->dev.gelu_fwd(fb->dev.ctx, out, inp, n), 0);
    {
        xfer x[2] = {{out, FL(n), OUT, 0}, {inp, FL(n), IN, 0}};
        if ((s = stage(fb, x, 2)) == ET_OK) s = fb->cpu.gelu_fwd(fb->cpu.ctx, H(0), H(1), n);
        return done(fb, ET_OP_GELU_FWD, t0, unstage(fb, x, 2, s), 1);
    }
}

static et_status p_gelu_bwd(void *ctx, float *dinp, const float *inp, const float *dout, size_t n)
{
    et_fallback *fb = FBX;
    double t0 = start(fb);
    et_status s;
    if (fb->dev.gelu_bwd)
        return done(fb, ET_OP_GELU_BWD, t0, fb->dev.gelu_bwd(fb->dev.ctx, dinp, inp, dout, n), 0);
    {
        xfer x[3] = {{dinp, FL(n), INOUT, 0}, {inp, FL(n), IN, 0}, {dout, FL(n), IN, 0}};
        if ((s = stage(fb, x, 3)) == ET_OK) s = fb->cpu.gelu_bwd(fb->cpu.ctx, H(0), H(1), H(2), n);
        return done(fb, ET_OP_GELU_BWD, t0, unstage(fb, x, 3, s), 1);
    }
}

static et_status p_residual_fwd(void *ctx, float *out, const float *a, const float *b, size_t n)
{
    et_fallback *fb = FBX;
    double t0 = start(fb);
    et_status s;
    if (fb->dev.residual_fwd)
        return done(fb, ET_OP_RESIDUAL_FWD, t0, fb->dev.residual_fwd(fb->dev.ctx, out, a, b, n), 0);
    {
        xfer x[3] = {{out, FL(n), OUT, 0}, {a, FL(n), IN, 0}, {b, FL(n), IN, 0}};
        if ((s = stage(fb, x, 3)) == ET_OK)
            s = fb->cpu.residual_fwd(fb->cpu.ctx, H(0), H(1), H(2), n);
        return done(fb, ET_OP_RESIDUAL_FWD, t0, unstage(fb, x, 3, s), 1);
    }
}

static et_status p_accumulate(void *ctx, float *dst, const float *src, size_t n)
{
    et_fallback *fb = FBX;
    double t0 = start(fb);
    et_status s;
    if (fb->dev.accumulate)
        return done(fb, ET_OP_ACCUMULATE, t0, fb->dev.accumulate(fb->dev.ctx, dst, src, n), 0);
    {
        xfer x[2] = {{dst, FL(n), INOUT, 0}, {src, FL(n), IN, 0}};
        if ((s = stage(fb, x, 2)) == ET_OK) s = fb->cpu.accumulate(fb->cpu.ctx, H(0), H(1), n);
        return done(fb, ET_OP_ACCUMULATE, t0, unstage(fb, x, 2, s), 1);
    }
}

/* rows of wte the tokens reach (the op is not told the vocabulary size) */
static size_t rows_used(const int *tokens, size_t n)
{
    size_t i, r = 0;
    for (i = 0; i < n; i++)
        if (tokens[i] >= 0 && (size_t)tokens[i] + 1 > r) r = (size_t)tokens[i] + 1;
    return r;
}

static et_status p_encoder_fwd(void *ctx, float *out, const int *tokens, const float *wte,
                               const float *wpe, int B, int T, int C)
{
    et_fallback *fb = FBX;
    double t0 = start(fb);
    size_t BT = (size_t)B * T;
    et_status s;
    if (fb->dev.encoder_fwd)
        return done(fb, ET_OP_ENCODER_FWD, t0,
                    fb->dev.encoder_fwd(fb->dev.ctx, out, tokens, wte, wpe, B, T, C), 0);
    {
        xfer x[3] = {{out, FL(BT * C), OUT, 0}, {wte, FL(rows_used(tokens, BT) * C), IN, 0},
                     {wpe, FL((size_t)T * C), IN, 0}};
        if ((s = stage(fb, x, 3)) == ET_OK)
            s = fb->cpu.encoder_fwd(fb->cpu.ctx, H(0), tokens, H(1), H(2), B, T, C);
        return done(fb, ET_OP_ENCODER_FWD, t0, unstage(fb, x, 3, s), 1);
    }
}

static et_status p_encoder_bwd(void *ctx, float *dwte, float *dwpe, const float *dout,
                               const int *tokens, int B, int T, int C)
{
    et_fallback *fb = FBX;
    double t0 = start(fb);
    size_t BT = (size_t)B * T;
    et_status s;
    if (fb->dev.encoder_bwd)
        return done(fb, ET_OP_ENCODER_BWD, t0,
                    fb->dev.encoder_bwd(fb->dev.ctx, dwte, dwpe, dout, tokens, B, T, C), 0);
    {
        xfer x[3] = {{dwte, FL(rows_used(tokens, BT) * C), INOUT, 0},
                     {dwpe, FL((size_t)T * C), INOUT, 0}, {dout, FL(BT * C), IN, 0}};
        if ((s = stage(fb, x, 3)) == ET_OK)
            s = fb->cpu.encoder_bwd(fb->cpu.ctx, H(0), H(1), H(2), tokens, B, T, C);
        return done(fb, ET_OP_ENCODER_BWD, t0, unstage(fb, x, 3, s), 1);
    }
}

static et_status p_ce_fwd(void *ctx, float *losses, float *probs, const float *logits,
                          const int *targets, int N, int V, int Vp)
{
    et_fallback *fb = FBX;
    double t0 = start(fb);
    et_status s;
    if (fb->dev.crossentropy_fwd)
        return done(fb, ET_OP_CROSSENTROPY_FWD, t0,
                    fb->dev.crossentropy_fwd(fb->dev.ctx, losses, probs, logits, targets, N, V, Vp), 0);
    {
        /* losses are written only with targets: download them otherwise */
        xfer x[3] = {{losses, FL(N), targets ? OUT : INOUT, 0}, {probs, FL((size_t)N * Vp), OUT, 0},
                     {logits, FL((size_t)N * Vp), IN, 0}};
        if ((s = stage(fb, x, 3)) == ET_OK)
            s = fb->cpu.crossentropy_fwd(fb->cpu.ctx, H(0), H(1), H(2), targets, N, V, Vp);
        return done(fb, ET_OP_CROSSENTROPY_FWD, t0, unstage(fb, x, 3, s), 1);
    }
}

static et_status p_ce_bwd(void *ctx, float *dlogits, const float *probs, const int *targets,
                          float dloss, int N, int V, int Vp)
{
    et_fallback *fb = FBX;
    double t0 = start(fb);
    et_status s;
    if (fb->dev.crossentropy_bwd)
        return done(fb, ET_OP_CROSSENTROPY_BWD, t0,
                    fb->dev.crossentropy_bwd(fb->dev.ctx, dlogits, probs, targets, dloss, N, V, Vp), 0);
    {
        xfer x[2] = {{dlogits, FL((size_t)N * Vp), INOUT, 0}, {probs, FL((size_t)N * Vp), IN, 0}};
        if ((s = stage(fb, x, 2)) == ET_OK)
            s = fb->cpu.crossentropy_bwd(fb->cpu.ctx, H(0), H(1), targets, dloss, N, V, Vp);
        return done(fb, ET_OP_CROSSENTROPY_BWD, t0, unstage(fb, x, 2, s), 1);
    }
}

static et_status p_adamw(void *ctx, float *param, const float *grad, float *m, float *v, size_t n,
                         float lr, float beta1, float beta2, float eps, float wd, int t)
{
    et_fallback *fb = FBX;
    double t0 = start(fb);
    et_status s;
    if (fb->dev.adamw)
        return done(fb, ET_OP_ADAMW, t0,
                    fb->dev.adamw(fb->dev.ctx, param, grad, m, v, n, lr, beta1, beta2, eps, wd, t), 0);
    {
        xfer x[4] = {{param, FL(n), INOUT, 0}, {grad, FL(n), IN, 0}, {m, FL(n), INOUT, 0},
                     {v, FL(n), INOUT, 0}};
        if ((s = stage(fb, x, 4)) == ET_OK)
            s = fb->cpu.adamw(fb->cpu.ctx, H(0), H(1), H(2), H(3), n, lr, beta1, beta2, eps, wd, t);
        return done(fb, ET_OP_ADAMW, t0, unstage(fb, x, 4, s), 1);
    }
}

static et_status p_sumsq(void *ctx, double *out, const float *xs, size_t n)
{
    et_fallback *fb = FBX;
    double t0 = start(fb);
    et_status s;
    if (fb->dev.sumsq)
        return done(fb, ET_OP_SUMSQ, t0, fb->dev.sumsq(fb->dev.ctx, out, xs, n), 0);
    {
        xfer x[1] = {{xs, FL(n), IN, 0}};
        if ((s = stage(fb, x, 1)) == ET_OK) s = fb->cpu.sumsq(fb->cpu.ctx, out, H(0), n);
        return done(fb, ET_OP_SUMSQ, t0, unstage(fb, x, 1, s), 1);
    }
}

static et_status p_scale(void *ctx, float *xs, float sc, size_t n)
{
    et_fallback *fb = FBX;
    double t0 = start(fb);
    et_status s;
    if (fb->dev.scale) return done(fb, ET_OP_SCALE, t0, fb->dev.scale(fb->dev.ctx, xs, sc, n), 0);
    {
        xfer x[1] = {{xs, FL(n), INOUT, 0}};
        if ((s = stage(fb, x, 1)) == ET_OK) s = fb->cpu.scale(fb->cpu.ctx, H(0), sc, n);
        return done(fb, ET_OP_SCALE, t0, unstage(fb, x, 1, s), 1);
    }
}

static et_status p_zero(void *ctx, float *xs, size_t n)
{
    et_fallback *fb = FBX;
    double t0 = start(fb);
    et_status s;
    if (fb->dev.zero) return done(fb, ET_OP_ZERO, t0, fb->dev.zero(fb->dev.ctx, xs, n), 0);
    {
        xfer x[1] = {{xs, FL(n), OUT, 0}};
        if ((s = stage(fb, x, 1)) == ET_OK) s = fb->cpu.zero(fb->cpu.ctx, H(0), n);
        return done(fb, ET_OP_ZERO, t0, unstage(fb, x, 1, s), 1);
    }
}

static et_status p_copy(void *ctx, float *dst, const float *src, size_t n)
{
    et_fallback *fb = FBX;
    double t0 = start(fb);
    et_status s;
    if (fb->dev.copy) return done(fb, ET_OP_COPY, t0, fb->dev.copy(fb->dev.ctx, dst, src, n), 0);
    {
        xfer x[2] = {{dst, FL(n), OUT, 0}, {src, FL(n), IN, 0}};
        if ((s = stage(fb, x, 2)) == ET_OK) s = fb->cpu.copy(fb->cpu.ctx, H(0), H(1), n);
        return done(fb, ET_OP_COPY, t0, unstage(fb, x, 2, s), 1);
    }
}

// --- setup

et_status et_fallback_wrap(et_fallback *fb, const et_backend *dev, et_status (*sync)(void *ctx),
                           const et_threads *th, et_backend *out)
{
    et_backend b = {
        .set_scratch = p_set_scratch,
        .matmul_fwd = p_matmul_fwd,
        .matmul_bwd = p_matmul_bwd,
        .layernorm_fwd = p_layernorm_fwd,
        .layernorm_bwd = p_layernorm_bwd,
        .attention_fwd = p_attention_fwd,
        .attention_bwd = p_attention_bwd,
        .attention_sizes = p_attention_sizes,
        .gelu_fwd = p_gelu_fwd,
        .gelu_bwd = p_gelu_bwd,
        .residual_fwd = p_residual_fwd,
        .accumulate = p_accumulate,
        .encoder_fwd = p_encoder_fwd,
        .encoder_bwd = p_encoder_bwd,
        .crossentropy_fwd = p_ce_fwd,
        .crossentropy_bwd = p_ce_bwd,
        .adamw = p_adamw,
        .sumsq = p_sumsq,
        .scale = p_scale,
        .zero = p_zero,
        .copy = p_copy,
    };
    et_status s;
    if (!fb || !dev || !out) return ET_ERR_INVALID;
    if (!dev->upload != !dev->download) return ET_ERR_INVALID; /* both hooks or neither */
    memset(fb, 0, sizeof *fb);
    fb->dev = *dev;
    fb->sync = sync;
    if ((s = et_cpu_backend_init(&fb->cpu, &fb->cpu_ctx, th)) != ET_OK) return s;
    if (fb->cpu.scratch_bytes) {
        if (!(fb->cpu_scratch = malloc(fb->cpu.scratch_bytes + ET_ALIGN))) return ET_ERR_NOMEM;
        /* the cpu GEMM wants its packing buffers aligned like arena blocks */
        fb->cpu.set_scratch(fb->cpu.ctx,
                            (void *)(((uintptr_t)fb->cpu_scratch + ET_ALIGN - 1) &
                                     ~(uintptr_t)(ET_ALIGN - 1)),
                            fb->cpu.scratch_bytes);
    }
    b.name = dev->name;
    b.ctx = fb;
    b.scratch_bytes = dev->scratch_bytes;
    b.dev_arena = dev->dev_arena;
    b.upload = dev->upload ? p_upload : NULL;
    b.download = dev->download ? p_download : NULL;
    *out = b;
    return ET_OK;
}

void et_fallback_release(et_fallback *fb)
{
    if (!fb) return;
    free(fb->cpu_scratch);
    fb->cpu_scratch = NULL;
}

void et_fallback_reset_counters(et_fallback *fb)
{
    memset(fb->seconds, 0, sizeof fb->seconds);
    memset(fb->calls, 0, sizeof fb->calls);
    memset(fb->fallbacks, 0, sizeof fb->fallbacks);
}

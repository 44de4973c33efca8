/* qat.c - quantization-aware training (et_qat.h): fake quantization through quant.c's
 * own functions, the straight-through estimator, moving-average activation ranges and
 * the backend proxy that applies them to a GPT's matmuls and embeddings.
 *
 * The fake quantizers call et_quant_f32_to_s8 / et_quant_s8_to_f32 and
 * et_quant_weights_s8 themselves (through small int8 chunks), so the values training
 * sees are the int8 model's by construction, not by a second implementation.
 * Deliberately avoids: threads in the elementwise passes (they are O(N C) against the
 * matmul's O(N C OC) and stay serial, so results do not depend on the worker count),
 * libm, and any state outside the caller's et_qat.
 */
#include "et_qat.h"

#define TRY(x) do { et_status et__s = (x); if (et__s != ET_OK) return et__s; } while (0)
#define CHUNK 256
#define S_PER_LAYER ET_QSITE_PER_LAYER

// --- the arithmetic

void et_qat_fake_act_f32(float *y, const float *x, size_t n, const et_qparams *p)
{
    int8_t q[CHUNK];
    size_t i, k;
    for (i = 0; i < n; i += k) {
        k = n - i < CHUNK ? n - i : CHUNK;
        et_quant_f32_to_s8(q, x + i, k, p);
        et_quant_s8_to_f32(y + i, q, k, p);
    }
}

void et_qat_ste_mask(uint8_t *mask, const float *x, size_t n, const et_qparams *p)
{
    float inv = 1.0f / p->scale, zp = (float)p->zero_point;
    size_t i;
    for (i = 0; i < n; i++) {
        /* the value et_quant_f32_to_s8 rounds, before its clamp; rounding half away
         * from zero keeps it in [-128, 127] exactly when it is in (-128.5, 127.5) */
        float v = x[i] * inv + zp;
        mask[i] = (uint8_t)(v > -128.5f && v < 127.5f);
    }
}

et_status et_qat_fake_weights_f32(float *wq, const float *w, int rows, int cols, int8_t *row)
{
    int r, c;
    if (!wq || !w || !row || rows < 0 || cols < 0) return ET_ERR_INVALID;
    for (r = 0; r < rows; r++) {
        float s, *o = wq + (size_t)r * cols;
        TRY(et_quant_weights_s8(w + (size_t)r * cols, 1, cols, row, &s));
        for (c = 0; c < cols; c++) o[c] = s * (float)row[c];
    }
    return ET_OK;
}

et_status et_qat_minmax(const float *x, size_t n, float *lo, float *hi)
{
    float a, b;
    int bad = 0;
    size_t i;
    if (!x || !lo || !hi || n == 0) return ET_ERR_INVALID;
    a = b = x[0];
    /* branch-free so it vectorizes; a NaN or an infinity is caught after the loop */
    for (i = 0; i < n; i++) {
        float v = x[i];
        a = v < a ? v : a;
        b = v > b ? v : b;
        bad |= !(v - v == 0.0f);
    }
    if (bad) return ET_ERR_RANGE;
    *lo = a;
    *hi = b;
    return ET_OK;
}

// --- state

/* widths and buffer sizes, from the tensor table (so any shape the model has) */
typedef struct {
    size_t L, C, A, F, Vp, maxT, S;
    size_t W;     /* widest matmul input: max(C, A, F) */
    size_t Y;     /* widest masked matmul output: max(3A, C, F) */
    size_t M;     /* mask bytes per row of one layer: 3A + C + F + C */
    size_t wq;    /* floats of the largest fake-quantized weight set */
} dims;

static size_t zmax(size_t a, size_t b) { return a > b ? a : b; }

static void get_dims(const et_gpt_config *c, dims *d)
{
    et_tensor_info t[ET_GPT_NTENSORS];
    et_gpt_tensors(c, t);
    d->L = (size_t)c->layers; d->C = (size_t)c->channels; d->Vp = (size_t)c->vocab_padded;
    d->maxT = (size_t)c->context; d->S = (size_t)et_qgpt_nsites(c);
    d->A = (size_t)t[6].shape[2];  /* attprojw (L, C, A) */
    d->F = (size_t)t[10].shape[1]; /* fcw (L, F, C) */
    d->W = zmax(d->C, zmax(d->A, d->F));
    d->Y = zmax(3 * d->A, zmax(d->C, d->F));
    d->M = 3 * d->A + d->C + d->F + d->C;
    d->wq = zmax((d->Vp + d->maxT) * d->C, zmax(3 * d->A, d->F) * d->W);
}

size_t et_qat_bytes(const et_gpt_config *cfg, et_qmode mode, int B, int T)
{
    et_gpt_config c;
    dims d;
    size_t BT, n;
    if (!cfg || B <= 0 || T <= 0 || (mode != ET_QMODE_W8A8 && mode != ET_QMODE_W8A32)) return 0;
    c = *cfg;
    if (et_gpt_config_check(&c) != ET_OK || T > c.context) return 0;
    get_dims(&c, &d);
    BT = (size_t)B * T;
    n = et_arena_block(d.S * sizeof(et_qat_site)) + 2 * et_arena_block(d.S * sizeof(float)) +
        et_arena_block(d.wq * sizeof(float)) + et_arena_block(d.W);
    if (mode == ET_QMODE_W8A8)
        n += et_arena_block(d.L * d.M * BT) + 2 * et_arena_block(BT * d.W * sizeof(float)) +
             et_arena_block(BT * d.Y * sizeof(float));
    return n;
}

et_status et_qat_init(et_qat *q, const et_gpt_config *cfg, et_qmode mode, float decay, int B,
                      int T, et_arena *arena)
{
    size_t need, BT;
    dims d;
    void *p;
    int i, a8 = mode == ET_QMODE_W8A8;
    if (!q || !cfg || !arena || !(decay >= 0.0f && decay < 1.0f)) return ET_ERR_INVALID;
    if ((need = et_qat_bytes(cfg, mode, B, T)) == 0) return ET_ERR_INVALID;
    if (need > et_arena_free_bytes(arena)) return ET_ERR_NOMEM;
    ET_MEMSET(q, 0, sizeof *q);
    q->cfg = *cfg;
    et_gpt_config_check(&q->cfg);
    get_dims(&q->cfg, &d);
    q->mode = mode;
    q->decay = decay;
    q->BT = B * T;
    q->A = (int)d.A;
    q->F = (int)d.F;
    q->nsites = (int)d.S;
    BT = (size_t)q->BT;
#define TAKE(ptr, type, bytes) TRY(et_arena_alloc(arena, (bytes), &p)); ptr = (type)p
    TAKE(q->site, et_qat_site *, d.S * sizeof(et_qat_site));
    TAKE(q->rlo, float *, d.S * sizeof(float));
    TAKE(q->rhi, float *, d.S * sizeof(float));
    TAKE(q->wq, float *, d.wq * sizeof(float));
    TAKE(q->row, int8_t *, d.W);
    if (a8) {
        TAKE(q->mask, uint8_t *, d.L * d.M * BT);
        TAKE(q->xq, float *, BT * d.W * sizeof(float));
        TAKE(q->dy, float *, BT * d.Y * sizeof(float));
        TAKE(q->dx, float *, BT * d.W * sizeof(float));
    }
#undef TAKE
    for (i = 0; i < q->nsites; i++) ET_MEMSET(&q->site[i], 0, sizeof q->site[i]);
    return ET_OK;
}

et_status et_qat_set_range(et_qat *q, int site, float lo, float hi)
{
    et_qparams p;
    if (!q) return ET_ERR_INVALID;
    if (site < 0 || site >= q->nsites) return ET_ERR_RANGE;
    TRY(et_quant_act_params(lo, hi, &p));
    q->site[site].lo = lo;
    q->site[site].hi = hi;
    q->site[site].have = 1;
    q->site[site].pending = 0;
    return ET_OK;
}

et_status et_qat_ranges(const et_qat *q, float *lo, float *hi)
{
    int i;
    if (!q || !lo || !hi) return ET_ERR_INVALID;
    for (i = 0; i < q->nsites; i++) {
        if (!q->site[i].have) return ET_ERR_STATE;
        lo[i] = q->site[i].lo;
        hi[i] = q->site[i].hi;
    }
    return ET_OK;
}

et_status et_qat_export(const et_qat *q, const float *params, void *blob, size_t blob_bytes)
{
    if (!q || !params) return ET_ERR_INVALID;
    if (q->mode == ET_QMODE_W8A32) return et_qgpt_quantize(&q->cfg, params, q->mode, 0, 0, blob, blob_bytes);
    TRY(et_qat_ranges(q, q->rlo, q->rhi));
    return et_qgpt_quantize(&q->cfg, params, q->mode, q->rlo, q->rhi, blob, blob_bytes);
}

/* Notes a batch's range for @p s and picks the parameters this forward uses: the
 * recorded range, or the batch's own before any is recorded. */
static et_status observe(et_qat *q, int s, const float *x, size_t n)
{
    et_qat_site *t = &q->site[s];
    TRY(et_qat_minmax(x, n, &t->obs_lo, &t->obs_hi));
    t->pending = 1;
    return t->have ? et_quant_act_params(t->lo, t->hi, &t->q) : et_quant_act_params(t->obs_lo, t->obs_hi, &t->q);
}

/* the backward of a site: its forward's batch enters the moving average */
static void commit(et_qat *q, int s)
{
    et_qat_site *t = &q->site[s];
    if (!t->pending) return;
    if (t->have) {
        t->lo = q->decay * t->lo + (1.0f - q->decay) * t->obs_lo;
        t->hi = q->decay * t->hi + (1.0f - q->decay) * t->obs_hi;
    } else {
        t->lo = t->obs_lo;
        t->hi = t->obs_hi;
        t->have = 1;
    }
    t->pending = 0;
}

// --- which matmul is which

typedef struct {
    int l, head;   /* layer; 1 for the logits */
    int xs, ys;    /* absolute sites; ys -1 for the logits (dequantized, no output site) */
    size_t moff;   /* output mask offset within a layer's row, in bytes per row */
} lin_site;

static et_status find_linear(const et_qat *q, const float *w, int N, int K, int OC, lin_site *ls)
{
    const et_gpt_params *P = &q->P;
    int L = q->cfg.layers, C = q->cfg.channels, A = q->A, F = q->F, i;
    struct { const float *base; int oc, k, xs, ys; size_t moff; } t[4];
    /* per row, a layer's masks lie as qkv (3A), attproj (C), fc (F), fcproj (C) */
    t[0].base = P->qkvw;     t[0].oc = 3 * A; t[0].k = C; t[0].xs = ET_QSITE_LN1;  t[0].ys = ET_QSITE_QKV;     t[0].moff = 0;
    t[1].base = P->attprojw; t[1].oc = C;     t[1].k = A; t[1].xs = ET_QSITE_ATTY; t[1].ys = ET_QSITE_ATTPROJ; t[1].moff = 3 * (size_t)A;
    t[2].base = P->fcw;      t[2].oc = F;     t[2].k = C; t[2].xs = ET_QSITE_LN2;  t[2].ys = ET_QSITE_FCH;     t[2].moff = 3 * (size_t)A + C;
    t[3].base = P->fcprojw;  t[3].oc = C;     t[3].k = F; t[3].xs = ET_QSITE_GELU; t[3].ys = ET_QSITE_FCPROJ;  t[3].moff = 3 * (size_t)A + C + F;
    if (N < 0 || N > q->BT) return ET_ERR_RANGE;
    if (w == P->wte) {
        if (K != C || OC != q->cfg.vocab_padded) return ET_ERR_INVALID;
        ls->l = L; ls->head = 1;
        ls->xs = L * S_PER_LAYER; ls->ys = -1; ls->moff = 0;
        return ET_OK;
    }
    for (i = 0; i < 4; i++) {
        uintptr_t b = (uintptr_t)t[i].base, x = (uintptr_t)w;
        size_t mat = (size_t)t[i].oc * t[i].k * sizeof(float);
        if (x < b || x >= b + (size_t)L * mat || (x - b) % mat) continue;
        if (OC != t[i].oc || K != t[i].k) return ET_ERR_INVALID;
        ls->l = (int)((x - b) / mat); ls->head = 0;
        ls->xs = ls->l * S_PER_LAYER + t[i].xs;
        ls->ys = ls->l * S_PER_LAYER + t[i].ys;
        ls->moff = t[i].moff;
        return ET_OK;
    }
    return ET_ERR_INVALID; /* a weight the quantized model does not have */
}

/* (N, OC) mask of a block output: layer l's slab is (BT, M) bytes, this output's
 * columns (N, OC) dense inside it at moff * BT */
static uint8_t *out_mask(const et_qat *q, const lin_site *ls)
{
    size_t BT = (size_t)q->BT, M = 3 * (size_t)q->A + 2 * (size_t)q->cfg.channels + (size_t)q->F;
    return q->mask + (size_t)ls->l * M * BT + ls->moff * BT;
}

// --- the proxy: matmul and encoder

#define Q ((et_qat *)ctx)

static et_status qat_matmul_fwd(void *ctx, float *out, const float *inp, const float *w,
                                const float *bias, int N, int C, int OC)
{
    et_qat *q = Q;
    const float *x = inp;
    size_t nx = (size_t)N * C, ny = (size_t)N * OC;
    lin_site ls;
    TRY(find_linear(q, w, N, C, OC, &ls));
    TRY(et_qat_fake_weights_f32(q->wq, w, OC, C, q->row));
    if (q->mode == ET_QMODE_W8A8) {
        TRY(observe(q, ls.xs, inp, nx));
        et_qat_fake_act_f32(q->xq, inp, nx, &q->site[ls.xs].q);
        x = q->xq;
    }
    TRY(q->inner.matmul_fwd(q->inner.ctx, out, x, q->wq, bias, N, C, OC));
    if (q->mode == ET_QMODE_W8A8 && ls.ys >= 0) {
        /* the layer's output leaves int8 here: keep which values were clipped, then
         * replace them by what the int8 model's requantized output stands for */
        TRY(observe(q, ls.ys, out, ny));
        et_qat_ste_mask(out_mask(q, &ls), out, ny, &q->site[ls.ys].q);
        et_qat_fake_act_f32(out, out, ny, &q->site[ls.ys].q);
    }
    return ET_OK;
}

static et_status qat_matmul_bwd(void *ctx, float *dinp, float *dw, float *dbias,
                                const float *dout, const float *inp, const float *w, int N,
                                int C, int OC)
{
    et_qat *q = Q;
    size_t nx = (size_t)N * C, ny = (size_t)N * OC, i;
    const float *dy = dout;
    const et_qparams *px;
    lin_site ls;
    TRY(find_linear(q, w, N, C, OC, &ls));
    TRY(et_qat_fake_weights_f32(q->wq, w, OC, C, q->row));
    if (q->mode != ET_QMODE_W8A8) {
        if (ls.head) q->commits++;
        return q->inner.matmul_bwd(q->inner.ctx, dinp, dw, dbias, dout, inp, q->wq, N, C, OC);
    }
    if (!q->site[ls.xs].pending && !q->site[ls.xs].have) return ET_ERR_STATE; /* no forward */
    if (ls.ys >= 0) {
        const uint8_t *m = out_mask(q, &ls);
        for (i = 0; i < ny; i++) q->dy[i] = m[i] ? dout[i] : 0.0f;
        dy = q->dy;
    }
    px = &q->site[ls.xs].q;
    et_qat_fake_act_f32(q->xq, inp, nx, px);
    if (dinp) ET_MEMSET(q->dx, 0, nx * sizeof(float));
    TRY(q->inner.matmul_bwd(q->inner.ctx, dinp ? q->dx : 0, dw, dbias, dy, q->xq, q->wq, N, C, OC));
    if (dinp) {
        /* the input's straight-through estimator, from the values the forward saw */
        float inv = 1.0f / px->scale, zp = (float)px->zero_point;
        for (i = 0; i < nx; i++) {
            float v = inp[i] * inv + zp;
            if (v > -128.5f && v < 127.5f) dinp[i] += q->dx[i];
        }
    }
    commit(q, ls.xs);
    if (ls.ys >= 0) commit(q, ls.ys);
    if (ls.head) q->commits++;
    return ET_OK;
}

static et_status qat_encoder_fwd(void *ctx, float *out, const int *tokens, const float *wte,
                                 const float *wpe, int B, int T, int C)
{
    et_qat *q = Q;
    int Vp = q->cfg.vocab_padded;
    float *eq = q->wq, *pq = q->wq + (size_t)Vp * C;
    if (wte != q->P.wte || wpe != q->P.wpe || C != q->cfg.channels || T > q->cfg.context)
        return ET_ERR_INVALID;
    TRY(et_qat_fake_weights_f32(eq, wte, Vp, C, q->row));
    TRY(et_qat_fake_weights_f32(pq, wpe, T, C, q->row));
    return q->inner.encoder_fwd(q->inner.ctx, out, tokens, eq, pq, B, T, C);
}

// --- the proxy: every other op goes to the wrapped backend

#define IN (Q->inner)
static et_status f_set_scratch(void *ctx, void *buf, size_t bytes)
{ return IN.set_scratch(IN.ctx, buf, bytes); }
static et_status f_layernorm_fwd(void *ctx, float *out, float *mean, float *rstd, const float *inp,
                                 const float *w, const float *b, int N, int C)
{ return IN.layernorm_fwd(IN.ctx, out, mean, rstd, inp, w, b, N, C); }
static et_status f_layernorm_bwd(void *ctx, float *dinp, float *dw, float *db, const float *dout,
                                 const float *inp, const float *w, const float *mean,
                                 const float *rstd, int N, int C)
{ return IN.layernorm_bwd(IN.ctx, dinp, dw, db, dout, inp, w, mean, rstd, N, C); }
static et_status f_attention_fwd(void *ctx, float *out, float *preatt, float *att, const float *qkv,
                                 int B, int T, int C, int NH)
{ return IN.attention_fwd(IN.ctx, out, preatt, att, qkv, B, T, C, NH); }
static et_status f_attention_bwd(void *ctx, float *dqkv, float *dpreatt, float *datt,
                                 const float *dout, const float *qkv, const float *preatt,
                                 const float *att, const float *out, int B, int T, int C, int NH)
{ return IN.attention_bwd(IN.ctx, dqkv, dpreatt, datt, dout, qkv, preatt, att, out, B, T, C, NH); }
static void f_attention_sizes(void *ctx, int B, int T, int NH, size_t *state, size_t *work)
{ IN.attention_sizes(IN.ctx, B, T, NH, state, work); }
static et_status f_gelu_fwd(void *ctx, float *out, const float *inp, size_t n)
{ return IN.gelu_fwd(IN.ctx, out, inp, n); }
static et_status f_gelu_bwd(void *ctx, float *dinp, const float *inp, const float *dout, size_t n)
{ return IN.gelu_bwd(IN.ctx, dinp, inp, dout, n); }
static et_status f_residual_fwd(void *ctx, float *out, const float *a, const float *b, size_t n)
{ return IN.residual_fwd(IN.ctx, out, a, b, n); }
static et_status f_accumulate(void *ctx, float *dst, const float *src, size_t n)
{ return IN.accumulate(IN.ctx, dst, src, n); }
/* the embeddings' straight-through estimator is the identity (weights never clip) */
static et_status f_encoder_bwd(void *ctx, float *dwte, float *dwpe, const float *dout,
                               const int *tokens, int B, int T, int C)
{ return IN.encoder_bwd(IN.ctx, dwte, dwpe, dout, tokens, B, T, C); }
static et_status f_ce_fwd(void *ctx, float *losses, float *probs, const float *logits,
                          const int *targets, int N, int V, int Vp)
{ return IN.crossentropy_fwd(IN.ctx, losses, probs, logits, targets, N, V, Vp); }
static et_status f_ce_bwd(void *ctx, float *dlogits, const float *probs, const int *targets,
                          float dloss, int N, int V, int Vp)
{ return IN.crossentropy_bwd(IN.ctx, dlogits, probs, targets, dloss, N, V, Vp); }
static et_status f_adamw(void *ctx, float *param, const float *grad, float *m, float *v, size_t n,
                         float lr, float beta1, float beta2, float eps, float wd, int t)
{ return IN.adamw(IN.ctx, param, grad, m, v, n, lr, beta1, beta2, eps, wd, t); }
static et_status f_sumsq(void *ctx, double *out, const float *x, size_t n)
{ return IN.sumsq(IN.ctx, out, x, n); }
static et_status f_scale(void *ctx, float *x, float s, size_t n)
{ return IN.scale(IN.ctx, x, s, n); }
static et_status f_zero(void *ctx, float *x, size_t n)
{ return IN.zero(IN.ctx, x, n); }
static et_status f_copy(void *ctx, float *dst, const float *src, size_t n)
{ return IN.copy(IN.ctx, dst, src, n); }
#undef IN

et_status et_qat_attach(et_qat *q, const et_gpt *m, et_backend *table)
{
    et_backend in, p;
    if (!q || !m || !table || m->be != table) return ET_ERR_INVALID;
    if (q->table) return ET_ERR_STATE;
    if (m->cfg.vocab != q->cfg.vocab || m->cfg.context != q->cfg.context ||
        m->cfg.layers != q->cfg.layers || m->cfg.heads != q->cfg.heads ||
        m->cfg.channels != q->cfg.channels || (size_t)m->B * m->T > (size_t)q->BT)
        return ET_ERR_INVALID;
    if (table->dev_arena || table->download) return ET_ERR_UNSUPPORTED;
    if (!table->matmul_fwd || !table->encoder_fwd) return ET_ERR_INVALID;
    in = *table;
    p = in;
    p.name = "qat";
    p.ctx = q;
#define W(op, fn) p.op = in.op ? fn : 0
    W(set_scratch, f_set_scratch);
    W(matmul_fwd, qat_matmul_fwd);
    W(matmul_bwd, qat_matmul_bwd);
    W(layernorm_fwd, f_layernorm_fwd);
    W(layernorm_bwd, f_layernorm_bwd);
    W(attention_fwd, f_attention_fwd);
    W(attention_bwd, f_attention_bwd);
    W(attention_sizes, f_attention_sizes);
    W(gelu_fwd, f_gelu_fwd);
    W(gelu_bwd, f_gelu_bwd);
    W(residual_fwd, f_residual_fwd);
    W(accumulate, f_accumulate);
    W(encoder_fwd, qat_encoder_fwd);
    W(encoder_bwd, f_encoder_bwd);
    W(crossentropy_fwd, f_ce_fwd);
    W(crossentropy_bwd, f_ce_bwd);
    W(adamw, f_adamw);
    W(sumsq, f_sumsq);
    W(scale, f_scale);
    W(zero, f_zero);
    W(copy, f_copy);
#undef W
    q->inner = in;
    q->P = m->params;
    q->table = table;
    *table = p;
    return ET_OK;
}

et_status et_qat_detach(et_qat *q)
{
    if (!q) return ET_ERR_INVALID;
    if (!q->table) return ET_ERR_STATE;
    *q->table = q->inner;
    q->table = 0;
    return ET_OK;
}

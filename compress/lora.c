/* lora.c - LoRA fine-tuning over a device image's frozen int8 weights (et_lora.h).
 *
 * One layout walk sizes the plan and carves the arena. The forward is the W8A32 model of
 * compress/qgpt.c (int8 weights times per-row scales, float biases and LayerNorms),
 * written row by row so that no (T,4C), (T,T) or per-layer tensor exists; backward
 * recomputes what it needs (see et_lora.h). LayerNorm's backward is linear in its
 * output gradient for a fixed input, so each contribution to a LayerNorm input gradient
 * (one head's q, then its k and v, then the adapter) is pushed through it separately and
 * added into the residual gradient: no (T,C) buffer for dln1. Trained LayerNorms (train_ln)
 * get their gradients inside the same row-wise backward; keep_inputs replaces the
 * recomputation of x_l by a copy stored in the forward. et_lora_logits serves generation,
 * et_lora_merge folds the adapters into a new weight blob one row at a time. A task head
 * (et_lora_classify, et_lora_accumulate_class) replaces the language-model head by a
 * K-class linear layer over the pooled final LayerNorm output; the backward below it is
 * the same layer loop. Buffers only a backward uses are not planned when nothing below
 * the head trains, and the (Vp) logits row is not planned when there is a head.
 * Deliberately avoids: threads, SIMD (the compiler vectorises the row loops), allocation.
 */
#include "et_lora.h"
#include "et_math.h"
#include "et_cpu_ops.h"
#include "et_quant.h"

#define TRY(x) do { et_status et__s = (x); if (et__s != ET_OK) return et__s; } while (0)

typedef struct { et_arena *a; size_t bytes; et_status err; } lay;

static void *take(lay *L, size_t bytes)
{
    void *p = 0;
    if (!bytes) return 0; /* a buffer this config never uses (rank 0, no backward) */
    L->bytes += et_arena_block(bytes);
    if (L->a && L->err == ET_OK) L->err = et_arena_alloc(L->a, bytes, &p);
    return p;
}

static size_t per_layer(const et_gpt_config *c, int r)
{
    size_t C = (size_t)c->channels;
    return (size_t)r * C + 3 * C * r + (size_t)r * C + 4 * C * r;
}

/* LayerNorm floats trained with train_ln: ln1w, ln1b, ln2w, ln2b of each adapted block, then lnfw, lnfb */
static size_t ln_count(const et_gpt_config *c, const et_lora_config *lc, int la)
{
    return lc->train_ln ? (size_t)c->channels * (4 * (size_t)la + 2) : 0;
}

/* blocks whose adapters or LayerNorms train (the last ones): 0 when only a head trains */
static int adapted(const et_gpt_config *c, const et_lora_config *lc)
{
    if (lc->rank == 0 && !lc->train_ln) return 0;
    return lc->layers ? lc->layers : c->layers;
}

static void walk(lay *L, et_lora *s, const et_gpt_config *c, const et_lora_config *lc, int T, et_lora_plan *p)
{
    size_t C = (size_t)c->channels, hs = C / (size_t)c->heads, r = (size_t)lc->rank, f = sizeof(float);
    int la = adapted(c, lc), hd = lc->head_classes > 0;
    size_t K = (size_t)lc->head_classes, bw = la > 0; /* bw: a backward below the head exists */
    size_t na = per_layer(c, lc->rank) * (size_t)la, nl = ln_count(c, lc, la), nh = hd ? K * C + K : 0;
    size_t n = na + nl + nh, b0;
    s->nparams = n;
    s->nadapt = na;
    s->nln = nl;
    b0 = L->bytes;
    s->params = (float *)take(L, n * f);
    p->params = L->bytes - b0; b0 = L->bytes;
    s->grads = (float *)take(L, n * f);
    p->grads = L->bytes - b0; b0 = L->bytes;
    s->m = s->v = 0;
    if (lc->opt == ET_LORA_ADAMW) { s->m = (float *)take(L, n * f); s->v = (float *)take(L, n * f); }
    p->opt = L->bytes - b0; b0 = L->bytes;
    s->X = (float *)take(L, (size_t)T * C * f);
    s->ATTY = (float *)take(L, (size_t)T * C * f);
    s->DY = (float *)take(L, bw * T * C * f);
    s->q = (float *)take(L, (size_t)T * hs * f);
    s->k = (float *)take(L, (size_t)T * hs * f);
    s->v_ = (float *)take(L, (size_t)T * hs * f);
    s->dk = (float *)take(L, bw * T * hs * f);
    s->dv = (float *)take(L, bw * T * hs * f);
    s->U = (float *)take(L, bw * T * r * f);
    s->DU = (float *)take(L, bw * T * r * f);
    s->r_ln = (float *)take(L, C * f);
    s->r_x2 = (float *)take(L, C * f);
    s->r_dln = (float *)take(L, bw * C * f);
    s->r_h = (float *)take(L, 4 * C * f);
    s->r_g = (float *)take(L, 4 * C * f);
    s->r_dg = (float *)take(L, bw * 4 * C * f);
    s->r_log = (float *)take(L, hd ? 0 : (size_t)c->vocab_padded * f);
    s->r_p = (float *)take(L, (size_t)T * f);
    s->r_dp = (float *)take(L, bw * T * f);
    s->r_uf = (float *)take(L, bw * r * f);
    s->r_duf = (float *)take(L, bw * r * f);
    s->tok = (int *)take(L, (size_t)T * sizeof(int));
    s->tgt = (int *)take(L, hd ? 0 : (size_t)T * sizeof(int));
    s->r_pool = (float *)take(L, hd ? C * f : 0);
    s->r_cls = (float *)take(L, K * f);
    p->acts = L->bytes - b0; b0 = L->bytes;
    s->XS = lc->keep_inputs ? (float *)take(L, (size_t)la * T * C * f) : 0;
    p->inputs = L->bytes - b0;
    p->nparams = n;
    p->nhead = nh;
    p->total = L->bytes;
}

static et_status check(const et_image *img, const et_lora_config *lc, int T)
{
    if (!img || !lc || !img->blob || lc->rank < 0 || lc->rank > 1024 || lc->layers < 0 ||
        lc->layers > img->cfg.layers || !(lc->alpha >= 0) || (lc->opt != ET_LORA_SGD && lc->opt != ET_LORA_ADAMW) ||
        (lc->train_ln != 0 && lc->train_ln != 1) || (lc->keep_inputs != 0 && lc->keep_inputs != 1) ||
        lc->head_classes < 0 || lc->head_classes == 1 || lc->head_classes > ET_LORA_MAX_CLASSES ||
        (lc->head_pool != ET_LORA_POOL_MEAN && lc->head_pool != ET_LORA_POOL_LAST) ||
        (lc->rank == 0 && !lc->train_ln && !lc->head_classes)) /* something must train */
        return ET_ERR_INVALID;
    if (img->mode != ET_QMODE_W8A32) return ET_ERR_UNSUPPORTED;
    if (T < 1 || T > img->cfg.context) return ET_ERR_RANGE;
    return ET_OK;
}

et_status et_lora_plan_compute(const et_image *img, const et_lora_config *lc, int T, et_lora_plan *plan)
{
    et_lora tmp;
    lay L = {0, 0, ET_OK};
    if (!plan) return ET_ERR_INVALID;
    TRY(check(img, lc, T));
    walk(&L, &tmp, &img->cfg, lc, T, plan);
    return ET_OK;
}

et_status et_lora_create(et_lora *s, const et_image *img, const et_lora_config *lc, int T,
                         uint64_t seed, et_arena *arena)
{
    et_lora_plan p;
    lay L;
    size_t i, C, per, l;
    if (!s || !arena) return ET_ERR_INVALID;
    TRY(et_lora_plan_compute(img, lc, T, &p));
    if (p.total > et_arena_free_bytes(arena)) return ET_ERR_NOMEM;
    ET_MEMSET(s, 0, sizeof *s);
    s->cfg = img->cfg;
    s->lc = *lc;
    s->w = &img->w;
    s->image_crc = img->payload_crc;
    s->lc.layers = adapted(&img->cfg, lc);
    s->T = T;
    s->l0 = img->cfg.layers - s->lc.layers;
    s->scale = lc->rank ? (lc->alpha > 0 ? lc->alpha : (float)lc->rank) / (float)lc->rank : 0.0f;
    L.a = arena; L.bytes = 0; L.err = ET_OK;
    walk(&L, s, &img->cfg, &s->lc, T, &p);
    TRY(L.err);
    /* A uniform in +-1/sqrt(C) (a splitmix64 stream), B zero: the adapted model starts
     * exactly at the base model */
    C = (size_t)s->cfg.channels;
    per = per_layer(&s->cfg, lc->rank);
    for (l = 0; l < (size_t)s->lc.layers; l++) {
        float *qa = s->params + l * per, *fa = qa + (size_t)lc->rank * C + 3 * C * lc->rank;
        float bound = 1.0f / et_sqrtf((float)C);
        for (i = 0; i < (size_t)lc->rank * C; i++) {
            uint64_t z;
            seed += 0x9E3779B97F4A7C15ull;
            z = seed;
            z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
            z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
            z ^= z >> 31;
            qa[i] = ((float)(z >> 40) / 16777216.0f * 2.0f - 1.0f) * bound;
            fa[i] = ((float)((z >> 8) & 0xFFFFFF) / 16777216.0f * 2.0f - 1.0f) * bound;
        }
    }
    /* trained LayerNorms start as the image's */
    if (s->lc.train_ln) {
        s->ln = s->params + s->nadapt;
        s->gln = s->grads + s->nadapt;
        for (l = 0; l < (size_t)s->lc.layers; l++) {
            size_t b = (size_t)s->l0 + l, o = l * 4 * C;
            ET_MEMCPY(s->ln + o, img->w.ln1w + b * C, C * sizeof(float));
            ET_MEMCPY(s->ln + o + C, img->w.ln1b + b * C, C * sizeof(float));
            ET_MEMCPY(s->ln + o + 2 * C, img->w.ln2w + b * C, C * sizeof(float));
            ET_MEMCPY(s->ln + o + 3 * C, img->w.ln2b + b * C, C * sizeof(float));
        }
        ET_MEMCPY(s->ln + (size_t)s->lc.layers * 4 * C, img->w.lnfw, C * sizeof(float));
        ET_MEMCPY(s->ln + (size_t)s->lc.layers * 4 * C + C, img->w.lnfb, C * sizeof(float));
    }
    /* a new head starts at zero: every class equally likely, and its first gradient,
     * (p - y) x, needs no random weights */
    if (lc->head_classes) {
        s->hw = s->params + s->nadapt + s->nln;
        s->ghw = s->grads + s->nadapt + s->nln;
        ET_MEMSET(s->hw, 0, (s->nparams - s->nadapt - s->nln) * sizeof(float));
    }
    return ET_OK;
}

// --- row kernels over frozen int8 weights

static void zero(float *p, size_t n)
{
    size_t i;
    for (i = 0; i < n; i++) p[i] = 0.0f;
}

/* out[o - o0] = s[o] * (W[o,:] . x) + b[o], o in [o0, o1); W (OC,K) */
static void qrows(float *out, const float *x, const int8_t *W, const float *s, const float *b, int K,
                  int o0, int o1)
{
    int o, k;
    for (o = o0; o < o1; o++) {
        const int8_t *w = W + (size_t)o * K;
        float acc = 0.0f;
        for (k = 0; k < K; k++) acc += (float)w[k] * x[k];
        out[o - o0] = acc * s[o] + (b ? b[o] : 0.0f);
    }
}

/* dx[k] += sum_o dy[o - o0] * s[o] * W[o,k] */
static void qrows_bwd(float *dx, const float *dy, const int8_t *W, const float *s, int K, int o0, int o1)
{
    int o, k;
    for (o = o0; o < o1; o++) {
        const int8_t *w = W + (size_t)o * K;
        float g = dy[o - o0] * s[o];
        if (g == 0.0f) continue;
        for (k = 0; k < K; k++) dx[k] += g * (float)w[k];
    }
}

static void ln_fwd(float *out, float *mean, float *rstd, const float *x, const float *w, const float *b, int C)
{
    float m = 0.0f, v = 0.0f, rs;
    int i;
    for (i = 0; i < C; i++) m += x[i];
    m /= (float)C;
    for (i = 0; i < C; i++) v += (x[i] - m) * (x[i] - m);
    rs = 1.0f / et_sqrtf(v / (float)C + 1e-5f);
    for (i = 0; i < C; i++) out[i] = (x[i] - m) * rs * w[i] + b[i];
    *mean = m;
    *rstd = rs;
}

/* dx += LayerNorm backward of dout at input x (gains w); stats recomputed; with dw, db
 * (trained LayerNorm) also dw += dout * xhat, db += dout */
static void ln_bwd(float *dx, const float *dout, const float *x, const float *w, float *dw, float *db, int C)
{
    float m = 0.0f, v = 0.0f, rs, a = 0.0f, bb = 0.0f;
    int i;
    for (i = 0; i < C; i++) m += x[i];
    m /= (float)C;
    for (i = 0; i < C; i++) v += (x[i] - m) * (x[i] - m);
    rs = 1.0f / et_sqrtf(v / (float)C + 1e-5f);
    for (i = 0; i < C; i++) {
        float d = dout[i] * w[i];
        a += d;
        bb += d * (x[i] - m) * rs;
    }
    a /= (float)C;
    bb /= (float)C;
    for (i = 0; i < C; i++) dx[i] += rs * (dout[i] * w[i] - a - (x[i] - m) * rs * bb);
    if (dw)
        for (i = 0; i < C; i++) {
            dw[i] += dout[i] * (x[i] - m) * rs;
            db[i] += dout[i];
        }
}

/* LayerNorm parameter k of block l (0 ln1w, 1 ln1b, 2 ln2w, 3 ln2b; 4 lnfw, 5 lnfb with
 * any l): the trained copy when there is one, else the image's; *g its gradient or NULL */
static const float *lnp(const et_lora *s, int l, int k, float **g)
{
    size_t C = (size_t)s->cfg.channels, o;
    const float *img[6];
    if (s->ln && (k >= 4 || l >= s->l0)) {
        o = k >= 4 ? ((size_t)s->lc.layers * 4 + (size_t)(k - 4)) * C : ((size_t)(l - s->l0) * 4 + (size_t)k) * C;
        if (g) *g = s->gln + o;
        return s->ln + o;
    }
    if (g) *g = 0;
    img[0] = s->w->ln1w; img[1] = s->w->ln1b; img[2] = s->w->ln2w; img[3] = s->w->ln2b;
    img[4] = s->w->lnfw; img[5] = s->w->lnfb;
    return k >= 4 ? img[k] : img[k] + (size_t)l * C;
}

// --- adapters of layer l (NULL when l is not adapted)

typedef struct { float *qa, *qb, *fa, *fb; float *gqa, *gqb, *gfa, *gfb; } adapt;

static int adapters(const et_lora *s, int l, adapt *a)
{
    size_t C = (size_t)s->cfg.channels, r = (size_t)s->lc.rank, per = per_layer(&s->cfg, s->lc.rank), o;
    ET_MEMSET(a, 0, sizeof *a);
    if (l < s->l0 || !s->lc.rank) return 0;
    o = (size_t)(l - s->l0) * per;
    a->qa = s->params + o; a->gqa = s->grads + o;
    a->qb = a->qa + r * C; a->gqb = a->gqa + r * C;
    a->fa = a->qb + 3 * C * r; a->gfa = a->gqb + 3 * C * r;
    a->fb = a->fa + r * C; a->gfb = a->gfa + r * C;
    return 1;
}

/* u (r) = A (r,C) . x */
static void amul(float *u, const float *A, const float *x, int r, int C)
{
    int j, k;
    for (j = 0; j < r; j++) {
        float acc = 0.0f;
        for (k = 0; k < C; k++) acc += A[(size_t)j * C + k] * x[k];
        u[j] = acc;
    }
}

// --- forward pieces

static void encode(et_lora *s, int n)
{
    int t, i, C = s->cfg.channels;
    const et_qgpt_weights *w = s->w;
    for (t = 0; t < n; t++) {
        const int8_t *e = w->wte + (size_t)s->tok[t] * C, *p = w->wpe + (size_t)t * C;
        float se = w->wte_s[s->tok[t]], sp = w->wpe_s[t], *o = s->X + (size_t)t * C;
        for (i = 0; i < C; i++) o[i] = se * (float)e[i] + sp * (float)p[i];
    }
}

/* q, k, v of head h of layer l for rows [0,n) from X (U must hold the qkv adapter's
 * inner values when the layer is adapted) */
static void head_qkv(et_lora *s, int l, int h, int n, const adapt *a, int ad)
{
    int C = s->cfg.channels, hs = C / s->cfg.heads, r = s->lc.rank, t, part, o, j;
    const et_qlinear *q = &s->w->qkv;
    const int8_t *W = q->w + (size_t)l * 3 * C * C;
    const float *ws = q->ws + (size_t)l * 3 * C, *wb = q->bf + (size_t)l * 3 * C;
    float *dst[3];
    dst[0] = s->q; dst[1] = s->k; dst[2] = s->v_;
    for (t = 0; t < n; t++) {
        float mu, rs;
        ln_fwd(s->r_ln, &mu, &rs, s->X + (size_t)t * C, lnp(s, l, 0, 0), lnp(s, l, 1, 0), C);
        for (part = 0; part < 3; part++) {
            int o0 = part * C + h * hs;
            float *out = dst[part] + (size_t)t * hs;
            qrows(out, s->r_ln, W, ws, wb, C, o0, o0 + hs);
            if (ad)
                for (o = 0; o < hs; o++) {
                    float acc = 0.0f;
                    for (j = 0; j < r; j++) acc += a->qb[(size_t)(o0 + o) * r + j] * s->U[(size_t)t * r + j];
                    out[o] += s->scale * acc;
                }
        }
    }
}

/* U = A_q . ln1(X) for rows [0,n) */
static void fill_u(et_lora *s, int l, int n, const adapt *a)
{
    int C = s->cfg.channels, t;
    float mu, rs;
    for (t = 0; t < n; t++) {
        ln_fwd(s->r_ln, &mu, &rs, s->X + (size_t)t * C, lnp(s, l, 0, 0), lnp(s, l, 1, 0), C);
        amul(s->U + (size_t)t * s->lc.rank, a->qa, s->r_ln, s->lc.rank, C);
    }
}

/* softmax row t of the head in s->q/k: p[0..t] */
static void att_row(et_lora *s, int t, float *p)
{
    int hs = s->cfg.channels / s->cfg.heads, j, i;
    float sc = 1.0f / et_sqrtf((float)hs), mx = -3.0e38f, sum = 0.0f, inv;
    const float *qt = s->q + (size_t)t * hs;
    for (j = 0; j <= t; j++) {
        const float *kj = s->k + (size_t)j * hs;
        float acc = 0.0f;
        for (i = 0; i < hs; i++) acc += qt[i] * kj[i];
        p[j] = acc * sc;
        if (p[j] > mx) mx = p[j];
    }
    for (j = 0; j <= t; j++) { p[j] = et_expf(p[j] - mx); sum += p[j]; }
    inv = 1.0f / sum;
    for (j = 0; j <= t; j++) p[j] *= inv;
}

/* ATTY = attention of layer l over X (rows [0,n)) */
static void attention_fwd(et_lora *s, int l, int n)
{
    int C = s->cfg.channels, NH = s->cfg.heads, hs = C / NH, h, t, j, i;
    adapt a;
    int ad = adapters(s, l, &a);
    if (ad) fill_u(s, l, n, &a);
    for (h = 0; h < NH; h++) {
        head_qkv(s, l, h, n, &a, ad);
        for (t = 0; t < n; t++) {
            float *y = s->ATTY + (size_t)t * C + h * hs;
            att_row(s, t, s->r_p);
            for (i = 0; i < hs; i++) y[i] = 0.0f;
            for (j = 0; j <= t; j++)
                for (i = 0; i < hs; i++) y[i] += s->r_p[j] * s->v_[(size_t)j * hs + i];
        }
    }
}

/* x2 row = x + attproj(atty row) */
static void resid2(et_lora *s, int l, const float *x, const float *atty, float *x2)
{
    int C = s->cfg.channels, i;
    const et_qlinear *q = &s->w->attproj;
    qrows(x2, atty, q->w + (size_t)l * C * C, q->ws + (size_t)l * C, q->bf + (size_t)l * C, C, 0, C);
    for (i = 0; i < C; i++) x2[i] += x[i];
}

/* MLP of one row: r_ln = ln2(x2), r_h = fc pre-activation (+ adapter, r_uf its inner
 * values), r_g = gelu(r_h) */
static void mlp_pre(et_lora *s, int l, const float *x2, const adapt *a, int ad)
{
    int C = s->cfg.channels, r = s->lc.rank, o, j;
    const et_qlinear *q = &s->w->fc;
    float mu, rs;
    ln_fwd(s->r_ln, &mu, &rs, x2, lnp(s, l, 2, 0), lnp(s, l, 3, 0), C);
    qrows(s->r_h, s->r_ln, q->w + (size_t)l * 4 * C * C, q->ws + (size_t)l * 4 * C, q->bf + (size_t)l * 4 * C, C, 0, 4 * C);
    if (ad) {
        amul(s->r_uf, a->fa, s->r_ln, r, C);
        for (o = 0; o < 4 * C; o++) {
            float acc = 0.0f;
            for (j = 0; j < r; j++) acc += a->fb[(size_t)o * r + j] * s->r_uf[j];
            s->r_h[o] += s->scale * acc;
        }
    }
    et_cpu_gelu_fwd(0, s->r_g, s->r_h, (size_t)4 * C);
}

/* X = layer l (X), rows [0,n) */
static void layer_fwd(et_lora *s, int l, int n)
{
    int C = s->cfg.channels, t, i;
    const et_qlinear *fp = &s->w->fcproj;
    adapt a;
    int ad = adapters(s, l, &a);
    attention_fwd(s, l, n);
    for (t = 0; t < n; t++) {
        float *x = s->X + (size_t)t * C;
        resid2(s, l, x, s->ATTY + (size_t)t * C, s->r_x2);
        mlp_pre(s, l, s->r_x2, &a, ad);
        qrows(x, s->r_g, fp->w + (size_t)l * C * 4 * C, fp->ws + (size_t)l * C, fp->bf + (size_t)l * C, 4 * C, 0, C);
        for (i = 0; i < C; i++) x[i] += s->r_x2[i];
    }
}

/* next-token loss over rows [0,n) from the final X; with dy, DY = d(loss * scale)/dX */
static float lm_head(et_lora *s, int n, float scale, int dy)
{
    int C = s->cfg.channels, V = s->cfg.vocab, t, v;
    double sum = 0.0;
    float mu, rs, *gw;
    const float *lw;
    for (t = 0; t < n; t++) {
        const float *x = s->X + (size_t)t * C;
        float mx = -3.0e38f, z = 0.0f;
        ln_fwd(s->r_ln, &mu, &rs, x, lnp(s, 0, 4, 0), lnp(s, 0, 5, 0), C);
        qrows(s->r_log, s->r_ln, s->w->wte, s->w->wte_s, 0, C, 0, V);
        for (v = 0; v < V; v++) if (s->r_log[v] > mx) mx = s->r_log[v];
        for (v = 0; v < V; v++) { s->r_log[v] = et_expf(s->r_log[v] - mx); z += s->r_log[v]; }
        for (v = 0; v < V; v++) s->r_log[v] /= z;
        sum -= (double)et_logf(s->r_log[s->tgt[t]] > 1e-30f ? s->r_log[s->tgt[t]] : 1e-30f);
        if (!dy) continue;
        s->r_log[s->tgt[t]] -= 1.0f;
        for (v = 0; v < V; v++) s->r_log[v] *= scale / (float)n;
        for (v = 0; v < C; v++) s->r_dln[v] = 0.0f;
        qrows_bwd(s->r_dln, s->r_log, s->w->wte, s->w->wte_s, C, 0, V);
        for (v = 0; v < C; v++) s->DY[(size_t)t * C + v] = 0.0f;
        lw = lnp(s, 0, 4, &gw); /* gw: d(lnfw), then d(lnfb) right after it */
        ln_bwd(s->DY + (size_t)t * C, s->r_dln, x, lw, gw, gw ? gw + C : 0, C);
    }
    return (float)(sum / n);
}

/* task head forward: r_pool = the final LayerNorm output pooled over rows [0,n) of X,
 * r_cls = W r_pool + b (K logits) */
static void cls_fwd(et_lora *s, int n)
{
    int C = s->cfg.channels, K = s->lc.head_classes, t, i;
    const float *lw = lnp(s, 0, 4, 0), *lb = lnp(s, 0, 5, 0), *hb = s->hw + (size_t)K * C;
    float mu, rs, inv = 1.0f / (float)n;
    if (s->lc.head_pool == ET_LORA_POOL_LAST) {
        ln_fwd(s->r_pool, &mu, &rs, s->X + (size_t)(n - 1) * C, lw, lb, C);
    } else {
        zero(s->r_pool, (size_t)C);
        for (t = 0; t < n; t++) {
            ln_fwd(s->r_ln, &mu, &rs, s->X + (size_t)t * C, lw, lb, C);
            for (i = 0; i < C; i++) s->r_pool[i] += s->r_ln[i];
        }
        for (i = 0; i < C; i++) s->r_pool[i] *= inv;
    }
    for (t = 0; t < K; t++) {
        const float *w = s->hw + (size_t)t * C;
        float acc = 0.0f;
        for (i = 0; i < C; i++) acc += w[i] * s->r_pool[i];
        s->r_cls[t] = acc + hb[t];
    }
}

/* cross-entropy of r_cls against label; then the gradient of loss * scale: into the
 * head's W and b, and (when blocks below train) DY = d/d(final X) through the pooling
 * and the final LayerNorm, whose trained gains and biases get theirs on the way */
static float cls_bwd(et_lora *s, int n, int label, float scale)
{
    int C = s->cfg.channels, K = s->lc.head_classes, t, i;
    float mx = -3.0e38f, z = 0.0f, loss, *gw, *gb = s->ghw + (size_t)K * C;
    const float *lw;
    for (t = 0; t < K; t++) if (s->r_cls[t] > mx) mx = s->r_cls[t];
    for (t = 0; t < K; t++) { s->r_cls[t] = et_expf(s->r_cls[t] - mx); z += s->r_cls[t]; }
    for (t = 0; t < K; t++) s->r_cls[t] /= z;
    loss = -et_logf(s->r_cls[label] > 1e-30f ? s->r_cls[label] : 1e-30f);
    s->r_cls[label] -= 1.0f;
    for (t = 0; t < K; t++) { /* r_cls = dlogits */
        float d = s->r_cls[t] * scale, *g = s->ghw + (size_t)t * C;
        s->r_cls[t] = d;
        gb[t] += d;
        for (i = 0; i < C; i++) g[i] += d * s->r_pool[i];
    }
    if (!s->DY) return loss; /* only the head trains */
    /* d(pooled) = W^T dlogits; each pooled row gets it (divided by n for the mean) */
    zero(s->r_dln, (size_t)C);
    for (t = 0; t < K; t++) {
        const float *w = s->hw + (size_t)t * C;
        for (i = 0; i < C; i++) s->r_dln[i] += s->r_cls[t] * w[i];
    }
    if (s->lc.head_pool == ET_LORA_POOL_MEAN)
        for (i = 0; i < C; i++) s->r_dln[i] /= (float)n;
    zero(s->DY, (size_t)n * C);
    lw = lnp(s, 0, 4, &gw);
    for (t = s->lc.head_pool == ET_LORA_POOL_LAST ? n - 1 : 0; t < n; t++)
        ln_bwd(s->DY + (size_t)t * C, s->r_dln, s->X + (size_t)t * C, lw, gw, gw ? gw + C : 0, C);
    return loss;
}

// --- backward

/* one q/k/v gradient row of head h (part 0/1/2) into r_dln and the adapter */
static void push_qkv(et_lora *s, int l, int t, int part, int h, const float *d, const adapt *a)
{
    int C = s->cfg.channels, hs = C / s->cfg.heads, r = s->lc.rank, o0 = part * C + h * hs, o, j;
    const et_qlinear *q = &s->w->qkv;
    qrows_bwd(s->r_dln, d, q->w + (size_t)l * 3 * C * C, q->ws + (size_t)l * 3 * C, C, o0, o0 + hs);
    if (!a->qa) return; /* rank 0: LayerNorms train, no adapters */
    for (o = 0; o < hs; o++) {
        float g = s->scale * d[o];
        float *gb = a->gqb + (size_t)(o0 + o) * r;
        const float *b = a->qb + (size_t)(o0 + o) * r, *u = s->U + (size_t)t * r;
        for (j = 0; j < r; j++) {
            gb[j] += g * u[j];
            s->DU[(size_t)t * r + j] += g * b[j];
        }
    }
}

/* X = x_l, DY = dL/d(output of l)  ->  DY = dL/dx_l, adapter gradients of l added */
static void layer_bwd(et_lora *s, int l, int n)
{
    int C = s->cfg.channels, NH = s->cfg.heads, hs = C / NH, r = s->lc.rank, t, h, j, i, o, k;
    const et_qlinear *fp = &s->w->fcproj, *fc = &s->w->fc, *ap = &s->w->attproj;
    float *g1w, *g1b, *g2w, *g2b;
    const float *ln1w = lnp(s, l, 0, &g1w), *ln1b = lnp(s, l, 1, &g1b), *ln2w = lnp(s, l, 2, &g2w);
    float sc = 1.0f / et_sqrtf((float)hs), *dq = s->r_x2;
    adapt a;
    int ad;
    (void)lnp(s, l, 3, &g2b);
    ad = adapters(s, l, &a);
    attention_fwd(s, l, n);
    /* MLP half, token by token; ATTY row t becomes d(atty) once x2 row t is used */
    for (t = 0; t < n; t++) {
        float *dy = s->DY + (size_t)t * C, *at = s->ATTY + (size_t)t * C;
        resid2(s, l, s->X + (size_t)t * C, at, s->r_x2);
        mlp_pre(s, l, s->r_x2, &a, ad);
        zero(s->r_dg, (size_t)4 * C);
        qrows_bwd(s->r_dg, dy, fp->w + (size_t)l * C * 4 * C, fp->ws + (size_t)l * C, 4 * C, 0, C);
        zero(s->r_g, (size_t)4 * C);
        et_cpu_gelu_bwd(0, s->r_g, s->r_h, s->r_dg, (size_t)4 * C); /* r_g = dh */
        if (ad) {
            for (j = 0; j < r; j++) s->r_duf[j] = 0.0f;
            for (o = 0; o < 4 * C; o++) {
                float g = s->scale * s->r_g[o];
                for (j = 0; j < r; j++) {
                    a.gfb[(size_t)o * r + j] += g * s->r_uf[j];
                    s->r_duf[j] += g * a.fb[(size_t)o * r + j];
                }
            }
        }
        zero(s->r_dln, (size_t)C);
        qrows_bwd(s->r_dln, s->r_g, fc->w + (size_t)l * 4 * C * C, fc->ws + (size_t)l * 4 * C, C, 0, 4 * C);
        if (ad)
            for (j = 0; j < r; j++)
                for (k = 0; k < C; k++) {
                    a.gfa[(size_t)j * C + k] += s->r_duf[j] * s->r_ln[k];
                    s->r_dln[k] += s->r_duf[j] * a.fa[(size_t)j * C + k];
                }
        ln_bwd(dy, s->r_dln, s->r_x2, ln2w, g2w, g2b, C); /* dy is now d(x2) */
        zero(at, (size_t)C);
        qrows_bwd(at, dy, ap->w + (size_t)l * C * C, ap->ws + (size_t)l * C, C, 0, C);
    }
    /* attention half, head by head, softmax rows rebuilt */
    if (ad) zero(s->DU, (size_t)n * r);
    for (h = 0; h < NH; h++) {
        head_qkv(s, l, h, n, &a, ad);
        zero(s->dk, (size_t)n * hs);
        zero(s->dv, (size_t)n * hs);
        for (t = 0; t < n; t++) {
            const float *dyt = s->ATTY + (size_t)t * C + h * hs, *qt = s->q + (size_t)t * hs;
            float dot = 0.0f;
            att_row(s, t, s->r_p);
            for (j = 0; j <= t; j++) {
                const float *vj = s->v_ + (size_t)j * hs;
                float *dvj = s->dv + (size_t)j * hs, dp = 0.0f;
                for (i = 0; i < hs; i++) { dp += dyt[i] * vj[i]; dvj[i] += s->r_p[j] * dyt[i]; }
                s->r_dp[j] = dp;
                dot += s->r_p[j] * dp;
            }
            zero(dq, (size_t)hs);
            for (j = 0; j <= t; j++) {
                float ds = s->r_p[j] * (s->r_dp[j] - dot) * sc;
                const float *kj = s->k + (size_t)j * hs;
                float *dkj = s->dk + (size_t)j * hs;
                for (i = 0; i < hs; i++) { dq[i] += ds * kj[i]; dkj[i] += ds * qt[i]; }
            }
            zero(s->r_dln, (size_t)C);
            push_qkv(s, l, t, 0, h, dq, &a);
            ln_bwd(s->DY + (size_t)t * C, s->r_dln, s->X + (size_t)t * C, ln1w, g1w, g1b, C);
        }
        for (t = 0; t < n; t++) {
            zero(s->r_dln, (size_t)C);
            push_qkv(s, l, t, 1, h, s->dk + (size_t)t * hs, &a);
            push_qkv(s, l, t, 2, h, s->dv + (size_t)t * hs, &a);
            ln_bwd(s->DY + (size_t)t * C, s->r_dln, s->X + (size_t)t * C, ln1w, g1w, g1b, C);
        }
    }
    /* the qkv adapter's A, through the shared inner values */
    for (t = 0; ad && t < n; t++) {
        float mu, rs;
        const float *du = s->DU + (size_t)t * r;
        ln_fwd(s->r_ln, &mu, &rs, s->X + (size_t)t * C, ln1w, ln1b, C);
        zero(s->r_dln, (size_t)C);
        for (j = 0; j < r; j++)
            for (k = 0; k < C; k++) {
                a.gqa[(size_t)j * C + k] += du[j] * s->r_ln[k];
                s->r_dln[k] += du[j] * a.qa[(size_t)j * C + k];
            }
        ln_bwd(s->DY + (size_t)t * C, s->r_dln, s->X + (size_t)t * C, ln1w, g1w, g1b, C);
    }
}

// --- public

/* copies the tokens (and targets, when given) into the session */
static et_status load(et_lora *s, const int *tok, const int *tgt, int n)
{
    int i;
    if (!s || !tok || n < 1) return ET_ERR_INVALID;
    if (n > s->T) return ET_ERR_RANGE;
    for (i = 0; i < n; i++) {
        if (tok[i] < 0 || tok[i] >= s->cfg.vocab || (tgt && (tgt[i] < 0 || tgt[i] >= s->cfg.vocab))) return ET_ERR_RANGE;
        s->tok[i] = tok[i];
        if (tgt) s->tgt[i] = tgt[i];
    }
    return ET_OK;
}

/* the language-model functions need the (Vp) row and the targets a head session lacks */
static et_status lm_ok(const et_lora *s, const void *tgt)
{
    if (!s || !tgt) return ET_ERR_INVALID;
    return s->lc.head_classes ? ET_ERR_UNSUPPORTED : ET_OK;
}

et_status et_lora_loss(et_lora *s, const int *tok, const int *tgt, int n, float *loss)
{
    int l;
    TRY(lm_ok(s, tgt));
    TRY(load(s, tok, tgt, n));
    encode(s, n);
    for (l = 0; l < s->cfg.layers; l++) layer_fwd(s, l, n);
    if (loss) *loss = lm_head(s, n, 0.0f, 0);
    return ET_OK;
}

/* forward, the objective's gradient into DY (label < 0: next-token loss; else the task
 * head's cross-entropy), then backward through the trained blocks, last to first */
static float train_seq(et_lora *s, int n, int label, float loss_scale)
{
    int l, i;
    float lv;
    size_t TC = (size_t)s->T * (size_t)s->cfg.channels, nC = (size_t)n * (size_t)s->cfg.channels;
    encode(s, n);
    for (l = 0; l < s->cfg.layers; l++) {
        if (s->XS && l >= s->l0) ET_MEMCPY(s->XS + (size_t)(l - s->l0) * TC, s->X, nC * sizeof(float));
        layer_fwd(s, l, n);
    }
    if (label < 0) lv = lm_head(s, n, loss_scale, 1);
    else {
        cls_fwd(s, n);
        lv = cls_bwd(s, n, label, loss_scale);
    }
    for (l = s->cfg.layers - 1; l >= s->l0; l--) {
        if (s->XS) {
            ET_MEMCPY(s->X, s->XS + (size_t)(l - s->l0) * TC, nC * sizeof(float)); /* stored x_l */
        } else {
            encode(s, n); /* recomputation: x_l from the tokens */
            for (i = 0; i < l; i++) layer_fwd(s, i, n);
        }
        layer_bwd(s, l, n);
    }
    return lv;
}

et_status et_lora_accumulate(et_lora *s, const int *tok, const int *tgt, int n, float loss_scale,
                             float *loss)
{
    float lv;
    TRY(lm_ok(s, tgt));
    TRY(load(s, tok, tgt, n));
    lv = train_seq(s, n, -1, loss_scale);
    if (loss) *loss = lv;
    return ET_OK;
}

et_status et_lora_classify(et_lora *s, const int *tok, int n, float *logits, int *cls)
{
    int l, k, best = 0;
    if (!s || !s->lc.head_classes) return ET_ERR_INVALID;
    TRY(load(s, tok, 0, n));
    encode(s, n);
    for (l = 0; l < s->cfg.layers; l++) layer_fwd(s, l, n);
    cls_fwd(s, n);
    for (k = 1; k < s->lc.head_classes; k++) if (s->r_cls[k] > s->r_cls[best]) best = k;
    if (logits) ET_MEMCPY(logits, s->r_cls, (size_t)s->lc.head_classes * sizeof(float));
    if (cls) *cls = best;
    return ET_OK;
}

et_status et_lora_accumulate_class(et_lora *s, const int *tok, int n, int label, float loss_scale, float *loss)
{
    float lv;
    if (!s || !s->lc.head_classes || !(loss_scale == loss_scale)) return ET_ERR_INVALID;
    if (label < 0 || label >= s->lc.head_classes) return ET_ERR_RANGE;
    TRY(load(s, tok, 0, n));
    lv = train_seq(s, n, label, loss_scale);
    if (loss) *loss = lv;
    return ET_OK;
}

et_status et_lora_step(et_lora *s, float lr, float wd)
{
    size_t i, K, C, seg[4][2];
    int k;
    if (!s || !(lr >= 0) || !(wd >= 0)) return ET_ERR_INVALID;
    s->step++;
    if (s->lc.opt == ET_LORA_ADAMW) {
        /* decay on the adapters and the head's W; none on LayerNorm gains/biases, the head's b */
        K = (size_t)s->lc.head_classes;
        C = (size_t)s->cfg.channels;
        seg[0][0] = 0; seg[0][1] = s->nadapt;
        seg[1][0] = s->nadapt; seg[1][1] = s->nln;
        seg[2][0] = s->nadapt + s->nln; seg[2][1] = K * C;
        seg[3][0] = s->nadapt + s->nln + K * C; seg[3][1] = K;
        for (k = 0; k < 4; k++)
            if (seg[k][1])
                et_cpu_adamw(0, s->params + seg[k][0], s->grads + seg[k][0], s->m + seg[k][0], s->v + seg[k][0],
                             seg[k][1], lr, 0.9f, 0.999f, 1e-8f, (k & 1) ? 0.0f : wd, s->step);
    }
    else
        for (i = 0; i < s->nparams; i++) s->params[i] -= lr * s->grads[i];
    zero(s->grads, s->nparams);
    return ET_OK;
}

et_status et_lora_logits(et_lora *s, const int *tok, int n, float *logits)
{
    int l, C;
    TRY(lm_ok(s, logits));
    TRY(load(s, tok, 0, n));
    C = s->cfg.channels;
    encode(s, n);
    for (l = 0; l < s->cfg.layers; l++) layer_fwd(s, l, n);
    {
        float mu, rs;
        ln_fwd(s->r_ln, &mu, &rs, s->X + (size_t)(n - 1) * C, lnp(s, 0, 4, 0), lnp(s, 0, 5, 0), C);
    }
    qrows(logits, s->r_ln, s->w->wte, s->w->wte_s, 0, C, 0, s->cfg.vocab);
    return ET_OK;
}

// --- merge

/* rows of one stacked linear (OC,C) of layer l: W' = q * ws + scale * B A, re-quantized */
static et_status fold(et_lora *s, const et_qlinear *q, int l, int OC, const float *A, const float *B)
{
    int C = s->cfg.channels, r = s->lc.rank, o, k, j;
    int8_t *W = (int8_t *)(uintptr_t)q->w + (size_t)l * OC * C;
    float *ws = (float *)(uintptr_t)q->ws + (size_t)l * OC, *row = s->r_h;
    for (o = 0; o < OC; o++) {
        int8_t *w = W + (size_t)o * C;
        for (k = 0; k < C; k++) {
            float acc = 0.0f;
            for (j = 0; j < r; j++) acc += B[(size_t)o * r + j] * A[(size_t)j * C + k];
            row[k] = (float)w[k] * ws[o] + s->scale * acc;
        }
        TRY(et_quant_weights_s8(row, 1, C, w, ws + o));
    }
    return ET_OK;
}

et_status et_lora_merge(et_lora *s, const et_image *img, void *blob, size_t blob_bytes)
{
    et_qgpt_weights w;
    adapt a;
    int l, C;
    if (!s || !img || !blob || ((uintptr_t)blob & 63u) || blob == img->blob || !img->blob ||
        img->w.wte != s->w->wte || img->mode != ET_QMODE_W8A32)
        return ET_ERR_INVALID;
    if (blob_bytes < img->blob_bytes) return ET_ERR_NOMEM;
    C = s->cfg.channels;
    ET_MEMMOVE(blob, img->blob, img->blob_bytes);
    TRY(et_qgpt_view(&img->cfg, img->mode, blob, img->blob_bytes, &w));
    for (l = s->l0; l < s->cfg.layers; l++) {
        if (adapters(s, l, &a)) { /* rank 0: only LayerNorms to copy */
            TRY(fold(s, &w.qkv, l, 3 * C, a.qa, a.qb));
            TRY(fold(s, &w.fc, l, 4 * C, a.fa, a.fb));
        }
        if (s->ln) { /* trained LayerNorms replace the image's (floats: no re-quantization) */
            ET_MEMCPY((float *)(uintptr_t)w.ln1w + (size_t)l * C, lnp(s, l, 0, 0), (size_t)C * sizeof(float));
            ET_MEMCPY((float *)(uintptr_t)w.ln1b + (size_t)l * C, lnp(s, l, 1, 0), (size_t)C * sizeof(float));
            ET_MEMCPY((float *)(uintptr_t)w.ln2w + (size_t)l * C, lnp(s, l, 2, 0), (size_t)C * sizeof(float));
            ET_MEMCPY((float *)(uintptr_t)w.ln2b + (size_t)l * C, lnp(s, l, 3, 0), (size_t)C * sizeof(float));
        }
    }
    if (s->ln) {
        ET_MEMCPY((float *)(uintptr_t)w.lnfw, lnp(s, 0, 4, 0), (size_t)C * sizeof(float));
        ET_MEMCPY((float *)(uintptr_t)w.lnfb, lnp(s, 0, 5, 0), (size_t)C * sizeof(float));
    }
    return ET_OK;
}

/* qgpt.c - the quantized GPT's inference model: exact plan, creation in an arena, and
 * the W8A8 and W8A32 forward passes (et_qgpt.h says what runs in int8 and what in float).
 *
 * One layout function sizes every block for the plan and carves them in create, as
 * core/gpt.c does, so the plan cannot drift. Activations hold one layer and are reused
 * by every layer; the residual stream ping-pongs between two buffers.
 * Deliberately avoids: the backend table (this is a cpu path: it calls the cpu kernels
 * of et_cpu_ops.h directly) and any allocation outside the arena.
 */
#include "et_qgpt.h"
#include "et_qgemm.h"
#include "et_cpu_ops.h"

#define TRY(x) do { et_status et__s = (x); if (et__s != ET_OK) return et__s; } while (0)

typedef struct {
    et_arena *arena; /* NULL: count only */
    size_t bytes;
    et_status err;
} qlayout;

static void *take(qlayout *L, size_t bytes)
{
    void *p = 0;
    L->bytes += et_arena_block(bytes);
    if (L->arena && L->err == ET_OK) L->err = et_arena_alloc(L->arena, bytes, &p);
    return p;
}

static int imax(int a, int b) { return a > b ? a : b; }

/* the largest K of the model's GEMMs: C (qkv, fc, logits), A (attproj), F (fcproj) */
static int kmax_of(const et_gpt_config *c)
{
    return imax(c->channels, imax(et_gpt_attn_width(c), et_gpt_ffn_width(c)));
}

/* the widest int8 activation: C, 3A (qkv) or F (fc, GELU); 4C for GPT-2 */
static size_t wmax_of(const et_gpt_config *c)
{
    return (size_t)imax(c->channels, imax(3 * et_gpt_attn_width(c), et_gpt_ffn_width(c)));
}

static size_t scratch_for(const et_gpt_config *c, et_qmode mode, int nworkers)
{
    return mode == ET_QMODE_W8A8 ? et_qgemm_s8_scratch_bytes(kmax_of(c), nworkers)
                                 : et_qgemm_w8a32_scratch_bytes(nworkers);
}

static void walk(qlayout *L, et_qgpt *m, const et_gpt_config *c, et_qmode mode, int B, int T,
                 int nworkers)
{
    size_t BT = (size_t)B * T, C = (size_t)c->channels, Vp = (size_t)c->vocab_padded,
           A = (size_t)et_gpt_attn_width(c), F = (size_t)et_gpt_ffn_width(c),
           att = (size_t)B * c->heads * T * T, f = sizeof(float);
    m->inputs = (int *)take(L, BT * sizeof(int));
    m->targets = (int *)take(L, BT * sizeof(int));
    m->res_a = (float *)take(L, BT * C * f);
    m->res_b = (float *)take(L, BT * C * f);
    m->ln = (float *)take(L, BT * C * f);
    m->tmp = (float *)take(L, BT * C * f);
    m->ln_mean = (float *)take(L, BT * f);
    m->ln_rstd = (float *)take(L, BT * f);
    m->qkv = (float *)take(L, BT * 3 * A * f);
    m->atty = (float *)take(L, BT * A * f);
    m->preatt = (float *)take(L, att * f);
    m->att = (float *)take(L, att * f);
    if (mode == ET_QMODE_W8A8) {
        m->qa = (int8_t *)take(L, BT * wmax_of(c));
        m->qb = (int8_t *)take(L, BT * wmax_of(c));
    } else {
        m->fch = (float *)take(L, BT * F * f);
        m->fchg = (float *)take(L, BT * F * f);
    }
    m->logits = (float *)take(L, BT * Vp * f);
    m->probs = (float *)take(L, BT * Vp * f);
    m->losses = (float *)take(L, BT * f);
    m->scratch_bytes = scratch_for(c, mode, nworkers);
    m->scratch = take(L, m->scratch_bytes);
    m->att_slice = et_cpu_attention_slice();
    m->att_scratch = (float *)take(L, m->att_slice * (size_t)(nworkers < 1 ? 1 : nworkers));
}

et_status et_qgpt_plan(const et_gpt_config *cfg, et_qmode mode, int B, int T, int nworkers,
                       size_t *bytes)
{
    et_gpt_config c;
    et_qgpt tmp;
    qlayout L;
    if (!cfg || !bytes || (mode != ET_QMODE_W8A8 && mode != ET_QMODE_W8A32)) return ET_ERR_INVALID;
    c = *cfg;
    TRY(et_gpt_config_check(&c));
    if (B <= 0 || T <= 0) return ET_ERR_INVALID;
    if (T > c.context) return ET_ERR_RANGE;
    L.arena = 0;
    L.bytes = 0;
    L.err = ET_OK;
    walk(&L, &tmp, &c, mode, B, T, nworkers);
    *bytes = L.bytes;
    return ET_OK;
}

et_status et_qgpt_create(et_qgpt *m, const et_gpt_config *cfg, et_qmode mode, const void *blob,
                         size_t blob_bytes, int B, int T, const et_threads *th, et_arena *arena)
{
    size_t need;
    qlayout L;
    et_qgpt_weights w;
    if (!m || !cfg || !arena) return ET_ERR_INVALID;
    TRY(et_qgpt_plan(cfg, mode, B, T, et_threads_workers(th), &need));
    TRY(et_qgpt_view(cfg, mode, blob, blob_bytes, &w));
    if (need > et_arena_free_bytes(arena)) return ET_ERR_NOMEM;
    ET_MEMSET(m, 0, sizeof *m);
    m->cfg = *cfg;
    et_gpt_config_check(&m->cfg);
    m->mode = mode;
    m->B = B;
    m->T = T;
    m->th = th;
    m->w = w;
    m->mean_loss = -1.0f;
    L.arena = arena;
    L.bytes = 0;
    L.err = ET_OK;
    walk(&L, m, &m->cfg, mode, B, T, et_threads_workers(th));
    return L.err;
}

// --- pieces of the forward

/* x(B,T,C) = wte_s[tok] * wte[tok] + wpe_s[t] * wpe[t] */
static void encode(const et_qgpt *m, float *x, int B, int T)
{
    int b, t, i, C = m->cfg.channels;
    for (b = 0; b < B; b++)
        for (t = 0; t < T; t++) {
            int tok = m->inputs[b * T + t];
            const int8_t *e = m->w.wte + (size_t)tok * C, *p = m->w.wpe + (size_t)t * C;
            float se = m->w.wte_s[tok], sp = m->w.wpe_s[t], *o = x + ((size_t)b * T + t) * C;
            for (i = 0; i < C; i++) o[i] = se * (float)e[i] + sp * (float)p[i];
        }
}

static et_qparams site(const et_qgpt *m, int s)
{
    et_qparams p;
    p.scale = m->w.act_scale[s];
    p.zero_point = m->w.act_zp[s];
    return p;
}

/* out(N,OC) int8 at site ys = requant(in(N,K) int8 . W^T + b32) for layer l */
static et_status qlinear(const et_qgpt *m, int8_t *out, const int8_t *in, const et_qlinear *q, int l,
                         int N, int K, int OC, int ys)
{
    et_qgemm_args g;
    size_t lo = (size_t)l * OC;
    g.M = N; g.N = OC; g.K = K;
    g.A = in; g.lda = K;
    g.B = q->w + lo * K; g.ldb = K;
    g.bias = q->b32 + lo;
    g.out = ET_QGEMM_OUT_S8;
    g.mult = q->mult + lo;
    g.shift = q->shift + lo;
    g.zp_out = m->w.act_zp[ys];
    g.scale = 0;
    g.C = out; g.ldc = OC;
    return et_qgemm_s8(&g, m->th, m->scratch, m->scratch_bytes);
}

/* out(N,OC) float = in(N,K) float . (W * ws)^T + bf, layer l */
static et_status wlinear(const et_qgpt *m, float *out, const float *in, const et_qlinear *q, int l,
                         int N, int K, int OC)
{
    et_wgemm_args g;
    size_t lo = (size_t)l * OC;
    g.M = N; g.N = OC; g.K = K;
    g.A = in; g.lda = K;
    g.B = q->w + lo * K; g.ldb = K;
    g.scale = q->ws + lo;
    g.bias = q->bf ? q->bf + lo : 0;
    g.C = out; g.ldc = OC;
    return et_qgemm_w8a32(&g, m->th, m->scratch, m->scratch_bytes);
}

/* y = x + dequant(q) over n */
static void add_deq(float *y, const float *x, const int8_t *q, size_t n, et_qparams p)
{
    size_t i;
    for (i = 0; i < n; i++) y[i] = x[i] + p.scale * (float)((int32_t)q[i] - p.zero_point);
}

static void add_f(float *y, const float *x, const float *d, size_t n)
{
    size_t i;
    for (i = 0; i < n; i++) y[i] = x[i] + d[i];
}

static et_status layer_w8a8(et_qgpt *m, int l, float *x, float *out, int B, int T)
{
    const et_qgpt_weights *w = &m->w;
    int C = m->cfg.channels, NH = m->cfg.heads, N = B * T, s0 = l * ET_QSITE_PER_LAYER, i;
    int A = et_gpt_attn_width(&m->cfg), F = et_gpt_ffn_width(&m->cfg);
    size_t BT = (size_t)N, lc = (size_t)l * C;
    const int8_t *lut = w->gelu_lut + (size_t)l * 256;
    et_qparams p;
    /* attention half: ln1 -> int8 -> qkv (int8) -> float attention -> int8 -> attproj */
    et_cpu_layernorm_fwd(m->th, m->ln, m->ln_mean, m->ln_rstd, x, w->ln1w + lc, w->ln1b + lc, N, C);
    p = site(m, s0 + ET_QSITE_LN1);
    et_quant_f32_to_s8(m->qa, m->ln, BT * C, &p);
    TRY(qlinear(m, m->qb, m->qa, &w->qkv, l, N, C, 3 * A, s0 + ET_QSITE_QKV));
    p = site(m, s0 + ET_QSITE_QKV);
    et_quant_s8_to_f32(m->qkv, m->qb, BT * 3 * A, &p);
    et_cpu_attention_fwd(m->th, m->att_scratch, m->att_slice, m->atty, m->preatt, m->att, m->qkv, B, T, A, NH);
    p = site(m, s0 + ET_QSITE_ATTY);
    et_quant_f32_to_s8(m->qa, m->atty, BT * A, &p);
    TRY(qlinear(m, m->qb, m->qa, &w->attproj, l, N, A, C, s0 + ET_QSITE_ATTPROJ));
    add_deq(m->tmp, x, m->qb, BT * C, site(m, s0 + ET_QSITE_ATTPROJ));
    /* MLP half: ln2 -> int8 -> fc (int8) -> GELU table -> fcproj (int8) */
    et_cpu_layernorm_fwd(m->th, m->ln, m->ln_mean, m->ln_rstd, m->tmp, w->ln2w + lc, w->ln2b + lc, N, C);
    p = site(m, s0 + ET_QSITE_LN2);
    et_quant_f32_to_s8(m->qa, m->ln, BT * C, &p);
    TRY(qlinear(m, m->qb, m->qa, &w->fc, l, N, C, F, s0 + ET_QSITE_FCH));
    for (i = 0; i < N * F; i++) m->qa[i] = lut[(int)m->qb[i] + 128];
    TRY(qlinear(m, m->qb, m->qa, &w->fcproj, l, N, F, C, s0 + ET_QSITE_FCPROJ));
    add_deq(out, m->tmp, m->qb, BT * C, site(m, s0 + ET_QSITE_FCPROJ));
    return ET_OK;
}

static et_status layer_w8a32(et_qgpt *m, int l, float *x, float *out, int B, int T)
{
    const et_qgpt_weights *w = &m->w;
    int C = m->cfg.channels, NH = m->cfg.heads, N = B * T;
    int A = et_gpt_attn_width(&m->cfg), F = et_gpt_ffn_width(&m->cfg);
    size_t BT = (size_t)N, lc = (size_t)l * C;
    et_cpu_layernorm_fwd(m->th, m->ln, m->ln_mean, m->ln_rstd, x, w->ln1w + lc, w->ln1b + lc, N, C);
    TRY(wlinear(m, m->qkv, m->ln, &w->qkv, l, N, C, 3 * A));
    et_cpu_attention_fwd(m->th, m->att_scratch, m->att_slice, m->atty, m->preatt, m->att, m->qkv, B, T, A, NH);
    TRY(wlinear(m, m->ln, m->atty, &w->attproj, l, N, A, C));
    add_f(m->tmp, x, m->ln, BT * C);
    et_cpu_layernorm_fwd(m->th, m->ln, m->ln_mean, m->ln_rstd, m->tmp, w->ln2w + lc, w->ln2b + lc, N, C);
    TRY(wlinear(m, m->fch, m->ln, &w->fc, l, N, C, F));
    et_cpu_gelu_fwd(m->th, m->fchg, m->fch, BT * F);
    TRY(wlinear(m, m->ln, m->fchg, &w->fcproj, l, N, F, C));
    add_f(out, m->tmp, m->ln, BT * C);
    return ET_OK;
}

et_status et_qgpt_forward(et_qgpt *m, const int *inputs, const int *targets, int B, int T)
{
    size_t BT, i;
    int l, C, V, Vp;
    float *x, *y, *t;
    double sum = 0.0;
    if (!m || !inputs || B <= 0 || T <= 0) return ET_ERR_INVALID;
    if (B > m->B || T > m->T) return ET_ERR_RANGE;
    BT = (size_t)B * T; C = m->cfg.channels; V = m->cfg.vocab; Vp = m->cfg.vocab_padded;
    for (i = 0; i < BT; i++) {
        if (inputs[i] < 0 || inputs[i] >= V) return ET_ERR_RANGE;
        if (targets && (targets[i] < 0 || targets[i] >= V)) return ET_ERR_RANGE;
    }
    ET_MEMCPY(m->inputs, inputs, BT * sizeof(int));
    if (targets) ET_MEMCPY(m->targets, targets, BT * sizeof(int));
    m->fwd_B = B;
    m->fwd_T = T;
    m->mean_loss = -1.0f;
    x = m->res_a;
    y = m->res_b;
    encode(m, x, B, T);
    for (l = 0; l < m->cfg.layers; l++) {
        TRY(m->mode == ET_QMODE_W8A8 ? layer_w8a8(m, l, x, y, B, T) : layer_w8a32(m, l, x, y, B, T));
        t = x; x = y; y = t;
    }
    et_cpu_layernorm_fwd(m->th, m->ln, m->ln_mean, m->ln_rstd, x, m->w.lnfw, m->w.lnfb, (int)BT, C);
    if (m->mode == ET_QMODE_W8A8) {
        et_qgemm_args g;
        et_qparams p = site(m, m->cfg.layers * ET_QSITE_PER_LAYER);
        et_quant_f32_to_s8(m->qa, m->ln, BT * C, &p);
        g.M = (int)BT; g.N = Vp; g.K = C;
        g.A = m->qa; g.lda = C; g.B = m->w.wte; g.ldb = C;
        g.bias = m->w.logit_b; g.out = ET_QGEMM_OUT_F32;
        g.mult = g.shift = 0; g.zp_out = 0; g.scale = m->w.logit_s;
        g.C = m->logits; g.ldc = Vp;
        TRY(et_qgemm_s8(&g, m->th, m->scratch, m->scratch_bytes));
    } else {
        et_wgemm_args g;
        g.M = (int)BT; g.N = Vp; g.K = C;
        g.A = m->ln; g.lda = C; g.B = m->w.wte; g.ldb = C;
        g.scale = m->w.wte_s; g.bias = 0;
        g.C = m->logits; g.ldc = Vp;
        TRY(et_qgemm_w8a32(&g, m->th, m->scratch, m->scratch_bytes));
    }
    et_cpu_crossentropy_fwd(m->th, targets ? m->losses : 0, m->probs, m->logits,
                            targets ? m->targets : 0, (int)BT, V, Vp);
    if (!targets) return ET_OK;
    for (i = 0; i < BT; i++) sum += m->losses[i];
    m->mean_loss = (float)(sum / (double)BT);
    return ET_OK;
}

et_status et_qgpt_logits(const et_qgpt *m, int b, int t, float *out)
{
    if (!m || !out) return ET_ERR_INVALID;
    if (b < 0 || t < 0 || b >= m->fwd_B || t >= m->fwd_T) return ET_ERR_RANGE;
    ET_MEMCPY(out, m->logits + ((size_t)b * m->fwd_T + t) * m->cfg.vocab_padded,
              sizeof(float) * (size_t)m->cfg.vocab);
    return ET_OK;
}

/* gpt.c - the GPT-2 model: exact memory plan, creation in an arena, forward, backward
 * and the AdamW step, all through the backend table. The block's attention width A and
 * MLP width F come from the config (C and 4C for GPT-2; smaller after structured
 * pruning), so every (B,T,3C) / (B,T,4C) of llm.c reads (B,T,3A) / (B,T,F) here.
 *
 * One layout function walks every block the model owns; et_gpt_plan_compute() runs it
 * to add sizes, et_gpt_create() runs it again to carve the arena, so the plan cannot
 * drift from the allocation. Deliberately avoids: any allocation outside the arena, any
 * knowledge of files, tokenizers or threads (those are the host's).
 */
#include "et_gpt.h"
#include "et_math.h"
#include "et_rng.h"

#define TRY(x) do { et_status et__s = (x); if (et__s != ET_OK) return et__s; } while (0)

et_status et_gpt_config_check(et_gpt_config *cfg)
{
    if (!cfg || cfg->vocab <= 0 || cfg->context <= 0 || cfg->layers <= 0 || cfg->heads <= 0 ||
        cfg->channels <= 0 || cfg->head_dim < 0 || cfg->ffn < 0 ||
        (!cfg->head_dim && cfg->channels % cfg->heads != 0))
        return ET_ERR_INVALID;
    if (cfg->vocab > (1 << 24) || cfg->context > (1 << 20) || cfg->channels > (1 << 16) ||
        cfg->layers > 4096 || cfg->heads > (1 << 16) || cfg->head_dim > (1 << 16) ||
        cfg->ffn > (1 << 20) || cfg->head_dim > (1 << 20) / cfg->heads)
        return ET_ERR_INVALID;
    /* GPT-2's widths are stored as 0: one representation per shape */
    if (cfg->head_dim && cfg->channels % cfg->heads == 0 && cfg->head_dim == cfg->channels / cfg->heads)
        cfg->head_dim = 0;
    if (cfg->ffn == 4 * cfg->channels) cfg->ffn = 0;
    cfg->vocab_padded = (cfg->vocab + 63) / 64 * 64;
    return ET_OK;
}

size_t et_gpt_tensors(const et_gpt_config *cfg, et_tensor_info out[ET_GPT_NTENSORS])
{
    size_t Vp = (size_t)cfg->vocab_padded, T = (size_t)cfg->context, L = (size_t)cfg->layers,
           C = (size_t)cfg->channels, A = (size_t)et_gpt_attn_width(cfg),
           F = (size_t)et_gpt_ffn_width(cfg), off = 0;
    struct { const char *n; size_t a, b, c; int nd, decay; } d[ET_GPT_NTENSORS] = {
        {"wte", Vp, C, 1, 2, 1},        {"wpe", T, C, 1, 2, 1},
        {"ln1w", L, C, 1, 2, 0},        {"ln1b", L, C, 1, 2, 0},
        {"qkvw", L, 3 * A, C, 3, 1},    {"qkvb", L, 3 * A, 1, 2, 0},
        {"attprojw", L, C, A, 3, 1},    {"attprojb", L, C, 1, 2, 0},
        {"ln2w", L, C, 1, 2, 0},        {"ln2b", L, C, 1, 2, 0},
        {"fcw", L, F, C, 3, 1},         {"fcb", L, F, 1, 2, 0},
        {"fcprojw", L, C, F, 3, 1},     {"fcprojb", L, C, 1, 2, 0},
        {"lnfw", C, 1, 1, 1, 0},        {"lnfb", C, 1, 1, 1, 0},
    };
    int i;
    for (i = 0; i < ET_GPT_NTENSORS; i++) {
        out[i].name = d[i].n;
        out[i].offset = off;
        out[i].count = d[i].a * d[i].b * d[i].c;
        out[i].decay = d[i].decay;
        out[i].ndim = d[i].nd;
        out[i].shape[0] = (int)d[i].a;
        out[i].shape[1] = (int)d[i].b;
        out[i].shape[2] = (int)d[i].c;
        off += out[i].count;
    }
    return off;
}

static void point_params(et_gpt_params *p, float *base, const et_tensor_info *t)
{
    float **slot[ET_GPT_NTENSORS];
    int i;
    slot[0] = &p->wte; slot[1] = &p->wpe; slot[2] = &p->ln1w; slot[3] = &p->ln1b;
    slot[4] = &p->qkvw; slot[5] = &p->qkvb; slot[6] = &p->attprojw; slot[7] = &p->attprojb;
    slot[8] = &p->ln2w; slot[9] = &p->ln2b; slot[10] = &p->fcw; slot[11] = &p->fcb;
    slot[12] = &p->fcprojw; slot[13] = &p->fcprojb; slot[14] = &p->lnfw; slot[15] = &p->lnfb;
    for (i = 0; i < ET_GPT_NTENSORS; i++) *slot[i] = base + t[i].offset;
}

/* --- layout: sizes every block, and carves them when given an arena */

typedef struct {
    et_arena *arena; /* NULL: only add sizes */
    et_arena *dev;   /* where tensors go: the backend's device arena, or arena */
    size_t host, device;
    et_status err;
} layout;

/* a host-side block (token buffers, loss readback) */
static void *take_host(layout *L, size_t bytes, size_t *part)
{
    void *p = 0;
    *part += et_arena_block(bytes);
    L->host += et_arena_block(bytes);
    if (L->arena && L->err == ET_OK) L->err = et_arena_alloc(L->arena, bytes, &p);
    return p;
}

/* a tensor: in device memory when the backend has its own arena */
static void *take(layout *L, size_t bytes, size_t *part)
{
    void *p = 0;
    *part += et_arena_block(bytes);
    L->device += et_arena_block(bytes);
    if (L->arena && L->err == ET_OK) L->err = et_arena_alloc(L->dev, bytes, &p);
    return p;
}

/* Floats of each attention state buffer per layer and of each backward workspace, as
 * the backend asks (default: scores and probabilities, B*NH*T*T each). */
static void att_sizes(const et_backend *be, int B, int T, int NH, size_t *state, size_t *work)
{
    *state = *work = (size_t)B * NH * T * T;
    if (be && be->attention_sizes) be->attention_sizes(be->ctx, B, T, NH, state, work);
}

/* Points @p a into @p base (or only counts when base is NULL); returns float count. */
static size_t point_acts(et_gpt_acts *a, float *base, const et_gpt_config *c, int B, int T,
                         int Ls, size_t S)
{
    size_t C = (size_t)c->channels, BT = (size_t)B * T, L = (size_t)Ls,
           Vp = (size_t)c->vocab_padded, A = (size_t)et_gpt_attn_width(c),
           F = (size_t)et_gpt_ffn_width(c), off = 0;
    size_t n[ET_GPT_NACTS];
    float **slot[ET_GPT_NACTS];
    int i;
    n[0] = BT * C;          slot[0] = &a->encoded;
    n[1] = L * BT * C;      slot[1] = &a->ln1;
    n[2] = L * BT;          slot[2] = &a->ln1_mean;
    n[3] = L * BT;          slot[3] = &a->ln1_rstd;
    n[4] = L * BT * 3 * A;  slot[4] = &a->qkv;
    n[5] = L * BT * A;      slot[5] = &a->atty;
    n[6] = L * S;           slot[6] = &a->preatt;
    n[7] = L * S;           slot[7] = &a->att;
    n[8] = L * BT * C;      slot[8] = &a->attproj;
    n[9] = L * BT * C;      slot[9] = &a->residual2;
    n[10] = L * BT * C;     slot[10] = &a->ln2;
    n[11] = L * BT;         slot[11] = &a->ln2_mean;
    n[12] = L * BT;         slot[12] = &a->ln2_rstd;
    n[13] = L * BT * F;     slot[13] = &a->fch;
    n[14] = L * BT * F;     slot[14] = &a->fch_gelu;
    n[15] = L * BT * C;     slot[15] = &a->fcproj;
    n[16] = (L ? L : 1) * BT * C; slot[16] = &a->residual3;
    n[17] = BT * C;         slot[17] = &a->lnf;
    n[18] = BT;             slot[18] = &a->lnf_mean;
    n[19] = BT;             slot[19] = &a->lnf_rstd;
    n[20] = BT * Vp;        slot[20] = &a->logits;
    n[21] = BT * Vp;        slot[21] = &a->probs;
    n[22] = BT;             slot[22] = &a->losses;
    for (i = 0; i < ET_GPT_NACTS; i++) {
        if (base) *slot[i] = base + off;
        off += n[i];
    }
    return off;
}

static size_t point_act_grads(et_gpt_act_grads *g, float *base, const et_gpt_config *c, int B,
                              int T, size_t W)
{
    size_t C = (size_t)c->channels, BT = (size_t)B * T,
           Vp = (size_t)c->vocab_padded, A = (size_t)et_gpt_attn_width(c),
           F = (size_t)et_gpt_ffn_width(c), off = 0;
    size_t n[12];
    float **slot[12];
    int i;
    n[0] = BT * C;      slot[0] = &g->dres_a;
    n[1] = BT * C;      slot[1] = &g->dres_b;
    n[2] = BT * C;      slot[2] = &g->dres2;
    n[3] = BT * C;      slot[3] = &g->dln;
    n[4] = BT * 3 * A;  slot[4] = &g->dqkv;
    n[5] = BT * A;      slot[5] = &g->datty;
    n[6] = W;           slot[6] = &g->dpreatt;
    n[7] = W;           slot[7] = &g->datt;
    n[8] = BT * F;      slot[8] = &g->dfch;
    n[9] = BT * F;      slot[9] = &g->dfch_gelu;
    n[10] = BT * C;     slot[10] = &g->dlnf;
    n[11] = BT * Vp;    slot[11] = &g->dlogits;
    for (i = 0; i < 12; i++) {
        if (base) *slot[i] = base + off;
        off += n[i];
    }
    return off;
}

/* Walks every block of a model; fills @p m when L->arena is set. */
static void walk(layout *L, et_gpt *m, const et_gpt_config *cfg, int B, int T, et_gpt_mode mode,
                 const et_backend *be, et_gpt_plan *p)
{
    et_tensor_info t[ET_GPT_NTENSORS];
    size_t np = et_gpt_tensors(cfg, t), BT = (size_t)B * T, nacts, nag, S, W;
    int Ls = mode == ET_GPT_TRAIN ? cfg->layers : 0;
    float *f;
    ET_MEMSET(p, 0, sizeof *p);
    att_sizes(be, B, T, cfg->heads, &S, &W);
    p->nparams = np;
    /* host side: token buffers and the loss readback */
    f = (float *)take_host(L, BT * sizeof(int), &p->io);
    if (m) m->inputs = (int *)(void *)f;
    f = (float *)take_host(L, BT * sizeof(int), &p->io);
    if (m) m->targets = (int *)(void *)f;
    f = (float *)take_host(L, BT * sizeof(float), &p->io);
    if (m) m->loss_host = f;
    /* parameters and training state */
    f = (float *)take(L, np * sizeof(float), &p->params);
    if (m) { m->params_memory = f; if (f) point_params(&m->params, f, t); }
    if (mode == ET_GPT_TRAIN) {
        f = (float *)take(L, np * sizeof(float), &p->grads);
        if (m) { m->grads_memory = f; if (f) point_params(&m->grads, f, t); }
        f = (float *)take(L, np * sizeof(float), &p->adam);
        if (m) m->m_memory = f;
        f = (float *)take(L, np * sizeof(float), &p->adam);
        if (m) m->v_memory = f;
    }
    /* activations: every layer's in training, one layer's (reused) in inference */
    nacts = point_acts(&m->acts, 0, cfg, B, T, Ls ? Ls : 1, S);
    f = (float *)take(L, nacts * sizeof(float), &p->acts);
    if (m) { m->acts_memory = f; if (f) point_acts(&m->acts, f, cfg, B, T, Ls ? Ls : 1, S); }
    if (mode == ET_GPT_TRAIN) {
        nag = point_act_grads(&m->grads_acts, 0, cfg, B, T, W);
        f = (float *)take(L, nag * sizeof(float), &p->act_grads);
        if (m) { m->grads_acts_memory = f; if (f) point_act_grads(&m->grads_acts, f, cfg, B, T, W); }
    }
    if (be && be->scratch_bytes) {
        void *s = take(L, be->scratch_bytes, &p->scratch);
        if (L->arena && L->err == ET_OK && be->set_scratch)
            L->err = be->set_scratch(be->ctx, s, be->scratch_bytes);
    }
    p->total = p->io + p->params + p->grads + p->adam + p->acts + p->act_grads + p->scratch;
    if (be && be->dev_arena) {
        p->host = L->host;
        p->device = L->device;
    } else {
        p->host = p->total;
        p->device = 0;
    }
}

static et_status check_shape(const et_gpt_config *cfg, int B, int T)
{
    if (B <= 0 || T <= 0) return ET_ERR_INVALID;
    if (T > cfg->context) return ET_ERR_RANGE;
    return ET_OK;
}

et_status et_gpt_plan_compute(const et_gpt_config *cfg, int B, int T, et_gpt_mode mode,
                              const et_backend *be, et_gpt_plan *plan)
{
    et_gpt scratch_model;
    layout L;
    et_gpt_config c;
    if (!cfg || !plan) return ET_ERR_INVALID;
    c = *cfg;
    TRY(et_gpt_config_check(&c));
    TRY(check_shape(&c, B, T));
    L.arena = 0;
    L.dev = 0;
    L.host = L.device = 0;
    L.err = ET_OK;
    walk(&L, &scratch_model, &c, B, T, mode, be, plan);
    return ET_OK;
}

static et_status check_backend(const et_backend *be)
{
    if (!be || !be->matmul_fwd || !be->layernorm_fwd || !be->attention_fwd || !be->gelu_fwd ||
        !be->residual_fwd || !be->encoder_fwd || !be->crossentropy_fwd || !be->zero ||
        !be->copy)
        return ET_ERR_INVALID;
    return ET_OK;
}

et_status et_gpt_create(et_gpt *m, const et_gpt_config *cfg, int B, int T, et_gpt_mode mode,
                        const et_backend *be, et_arena *arena)
{
    et_gpt_plan plan;
    layout L;
    if (!m || !cfg || !arena) return ET_ERR_INVALID;
    TRY(check_backend(be));
    if (mode == ET_GPT_TRAIN && (!be->matmul_bwd || !be->layernorm_bwd || !be->attention_bwd ||
                                 !be->gelu_bwd || !be->accumulate || !be->encoder_bwd ||
                                 !be->crossentropy_bwd || !be->adamw || !be->sumsq || !be->scale))
        return ET_ERR_INVALID;
    TRY(et_gpt_plan_compute(cfg, B, T, mode, be, &plan));
    if (plan.host > et_arena_free_bytes(arena)) return ET_ERR_NOMEM;
    if (be->dev_arena && plan.device > et_arena_free_bytes(be->dev_arena)) return ET_ERR_NOMEM;
    ET_MEMSET(m, 0, sizeof *m);
    m->cfg = *cfg;
    et_gpt_config_check(&m->cfg);
    m->B = B;
    m->T = T;
    m->mode = mode;
    m->be = be;
    m->nparams = plan.nparams;
    m->layer_stride = mode == ET_GPT_TRAIN ? 1 : 0;
    m->mean_loss = -1.0f;
    L.arena = arena;
    L.dev = be->dev_arena ? be->dev_arena : arena;
    L.host = L.device = 0;
    L.err = ET_OK;
    walk(&L, m, &m->cfg, B, T, mode, be, &plan);
    if (L.err != ET_OK) return L.err;
    /* a device arena is not zero-filled: the AdamW moments must start at zero */
    if (mode == ET_GPT_TRAIN && be->dev_arena) {
        TRY(be->zero(be->ctx, m->m_memory, m->nparams));
        TRY(be->zero(be->ctx, m->v_memory, m->nparams));
        TRY(be->zero(be->ctx, m->grads_memory, m->nparams));
    }
    return ET_OK;
}

/* --- host <-> backend transfers */

static et_status put(const et_gpt *m, float *dst, const float *src, size_t n)
{
    if (m->be->upload) return m->be->upload(m->be->ctx, dst, src, n * sizeof(float));
    ET_MEMCPY(dst, src, n * sizeof(float));
    return ET_OK;
}

static et_status get(const et_gpt *m, float *dst, const float *src, size_t n)
{
    if (m->be->download) return m->be->download(m->be->ctx, dst, src, n * sizeof(float));
    ET_MEMCPY(dst, src, n * sizeof(float));
    return ET_OK;
}

et_status et_gpt_init_weights(et_gpt *m, uint64_t seed)
{
    et_tensor_info t[ET_GPT_NTENSORS];
    float buf[1024];
    et_rng rng;
    int i;
    float resid = 0.02f / et_sqrtf(2.0f * (float)m->cfg.layers);
    if (!m) return ET_ERR_INVALID;
    et_gpt_tensors(&m->cfg, t);
    et_rng_seed(&rng, seed);
    for (i = 0; i < ET_GPT_NTENSORS; i++) {
        const char *n = t[i].name;
        int is_ln_gain = n[0] == 'l' && n[3] == 'w';   /* ln1w ln2w lnfw */
        int is_bias = !t[i].decay && !is_ln_gain;
        float std = (i == 6 || i == 12) ? resid : 0.02f; /* attprojw, fcprojw */
        size_t done = 0, real = t[i].count;
        if (i == 0) real = (size_t)m->cfg.vocab * m->cfg.channels; /* padded rows stay 0 */
        while (done < t[i].count) {
            size_t k, chunk = t[i].count - done;
            if (chunk > 1024) chunk = 1024;
            for (k = 0; k < chunk; k++) {
                size_t idx = done + k;
                if (is_ln_gain) buf[k] = 1.0f;
                else if (is_bias || idx >= real) buf[k] = 0.0f;
                else buf[k] = std * et_rng_normal(&rng);
            }
            TRY(put(m, m->params_memory + t[i].offset + done, buf, chunk));
            done += chunk;
        }
    }
    m->step = 0;
    return ET_OK;
}

et_status et_gpt_set_params(et_gpt *m, const float *host)
{
    if (!m || !host) return ET_ERR_INVALID;
    return put(m, m->params_memory, host, m->nparams);
}

et_status et_gpt_get_params(const et_gpt *m, float *host)
{
    if (!m || !host) return ET_ERR_INVALID;
    return get(m, host, m->params_memory, m->nparams);
}

et_status et_gpt_get_adam(const et_gpt *m, float *mom, float *vel)
{
    if (!m || !mom || !vel) return ET_ERR_INVALID;
    if (m->mode != ET_GPT_TRAIN) return ET_ERR_STATE;
    TRY(get(m, mom, m->m_memory, m->nparams));
    return get(m, vel, m->v_memory, m->nparams);
}

et_status et_gpt_set_adam(et_gpt *m, const float *mom, const float *vel, int step)
{
    if (!m || !mom || !vel || step < 0) return ET_ERR_INVALID;
    if (m->mode != ET_GPT_TRAIN) return ET_ERR_STATE;
    TRY(put(m, m->m_memory, mom, m->nparams));
    TRY(put(m, m->v_memory, vel, m->nparams));
    m->step = step;
    return ET_OK;
}

/* --- forward */

et_status et_gpt_forward(et_gpt *m, const int *inputs, const int *targets, int B, int T)
{
    const et_backend *be;
    void *cx;
    et_gpt_params *p;
    et_gpt_acts *a;
    size_t BT, C, NH, Vp, V, A, F, i, S, W;
    int l, Ls;
    float *x;
    double sum = 0.0;
    if (!m || !inputs) return ET_ERR_INVALID;
    if (B <= 0 || T <= 0) return ET_ERR_INVALID;
    if (B > m->B || T > m->T) return ET_ERR_RANGE;
    be = m->be; cx = be->ctx; p = &m->params; a = &m->acts;
    BT = (size_t)B * T; C = (size_t)m->cfg.channels; NH = (size_t)m->cfg.heads;
    Vp = (size_t)m->cfg.vocab_padded; V = (size_t)m->cfg.vocab;
    A = (size_t)et_gpt_attn_width(&m->cfg); F = (size_t)et_gpt_ffn_width(&m->cfg);
    for (i = 0; i < BT; i++) {
        if (inputs[i] < 0 || (size_t)inputs[i] >= V) return ET_ERR_RANGE;
        if (targets && (targets[i] < 0 || (size_t)targets[i] >= V)) return ET_ERR_RANGE;
    }
    ET_MEMCPY(m->inputs, inputs, BT * sizeof(int));
    if (targets) ET_MEMCPY(m->targets, targets, BT * sizeof(int));
    m->have_targets = 0;
    m->fwd_B = B;
    m->fwd_T = T;
    Ls = m->layer_stride;
    att_sizes(be, B, T, (int)NH, &S, &W);

    TRY(be->encoder_fwd(cx, a->encoded, m->inputs, p->wte, p->wpe, B, T, (int)C));
    x = a->encoded;
    for (l = 0; l < m->cfg.layers; l++) {
        size_t o = (size_t)(l * Ls);
        float *ln1 = a->ln1 + o * BT * C, *ln1m = a->ln1_mean + o * BT, *ln1r = a->ln1_rstd + o * BT;
        float *qkv = a->qkv + o * BT * 3 * A, *atty = a->atty + o * BT * A;
        float *pre = a->preatt + o * S, *att = a->att + o * S;
        float *attproj = a->attproj + o * BT * C, *res2 = a->residual2 + o * BT * C;
        float *ln2 = a->ln2 + o * BT * C, *ln2m = a->ln2_mean + o * BT, *ln2r = a->ln2_rstd + o * BT;
        float *fch = a->fch + o * BT * F, *fchg = a->fch_gelu + o * BT * F;
        float *fcproj = a->fcproj + o * BT * C, *res3 = a->residual3 + o * BT * C;
        size_t lc = (size_t)l * C, la = (size_t)l * A, lf = (size_t)l * F;
        TRY(be->layernorm_fwd(cx, ln1, ln1m, ln1r, x, p->ln1w + lc, p->ln1b + lc, (int)BT, (int)C));
        TRY(be->matmul_fwd(cx, qkv, ln1, p->qkvw + la * 3 * C, p->qkvb + la * 3, (int)BT, (int)C, (int)(3 * A)));
        /* the attention op's width is A (q, k, v and its output), heads of A / NH */
        TRY(be->attention_fwd(cx, atty, pre, att, qkv, B, T, (int)A, (int)NH));
        TRY(be->matmul_fwd(cx, attproj, atty, p->attprojw + lc * A, p->attprojb + lc, (int)BT, (int)A, (int)C));
        TRY(be->residual_fwd(cx, res2, x, attproj, BT * C));
        TRY(be->layernorm_fwd(cx, ln2, ln2m, ln2r, res2, p->ln2w + lc, p->ln2b + lc, (int)BT, (int)C));
        TRY(be->matmul_fwd(cx, fch, ln2, p->fcw + lf * C, p->fcb + lf, (int)BT, (int)C, (int)F));
        TRY(be->gelu_fwd(cx, fchg, fch, BT * F));
        TRY(be->matmul_fwd(cx, fcproj, fchg, p->fcprojw + lc * F, p->fcprojb + lc, (int)BT, (int)F, (int)C));
        TRY(be->residual_fwd(cx, res3, res2, fcproj, BT * C));
        x = res3;
    }
    TRY(be->layernorm_fwd(cx, a->lnf, a->lnf_mean, a->lnf_rstd, x, p->lnfw, p->lnfb, (int)BT, (int)C));
    TRY(be->matmul_fwd(cx, a->logits, a->lnf, p->wte, 0, (int)BT, (int)C, (int)Vp));
    TRY(be->crossentropy_fwd(cx, targets ? a->losses : 0, a->probs, a->logits,
                             targets ? m->targets : 0, (int)BT, (int)V, (int)Vp));
    if (!targets) {
        m->mean_loss = -1.0f;
        return ET_OK;
    }
    TRY(get(m, m->loss_host, a->losses, BT));
    for (i = 0; i < BT; i++) sum += m->loss_host[i];
    m->mean_loss = (float)(sum / (double)BT);
    m->have_targets = 1;
    return ET_OK;
}

et_status et_gpt_logits(const et_gpt *m, int b, int t, float *out)
{
    if (!m || !out) return ET_ERR_INVALID;
    if (b < 0 || t < 0 || b >= m->fwd_B || t >= m->fwd_T) return ET_ERR_RANGE;
    return get(m, out, m->acts.logits + ((size_t)b * m->fwd_T + t) * m->cfg.vocab_padded,
               (size_t)m->cfg.vocab);
}

/* --- backward */

et_status et_gpt_zero_grad(et_gpt *m)
{
    if (!m) return ET_ERR_INVALID;
    if (m->mode != ET_GPT_TRAIN) return ET_ERR_STATE;
    return m->be->zero(m->be->ctx, m->grads_memory, m->nparams);
}

et_status et_gpt_backward(et_gpt *m, float loss_scale)
{
    const et_backend *be;
    void *cx;
    et_gpt_params *p, *g;
    et_gpt_acts *a;
    et_gpt_act_grads *d;
    size_t BT, C, NH, Vp, V, A, F, S, W;
    int B, T, l;
    float *dout, *din;
    if (!m) return ET_ERR_INVALID;
    if (m->mode != ET_GPT_TRAIN || !m->have_targets) return ET_ERR_STATE;
    be = m->be; cx = be->ctx; p = &m->params; g = &m->grads; a = &m->acts; d = &m->grads_acts;
    B = m->fwd_B; T = m->fwd_T;
    BT = (size_t)B * T; C = (size_t)m->cfg.channels; NH = (size_t)m->cfg.heads;
    Vp = (size_t)m->cfg.vocab_padded; V = (size_t)m->cfg.vocab;
    A = (size_t)et_gpt_attn_width(&m->cfg); F = (size_t)et_gpt_ffn_width(&m->cfg);
    att_sizes(be, B, T, (int)NH, &S, &W);

    /* loss = mean over B*T positions, scaled for gradient accumulation */
    TRY(be->zero(cx, d->dlogits, BT * Vp));
    TRY(be->crossentropy_bwd(cx, d->dlogits, a->probs, m->targets, loss_scale / (float)BT,
                             (int)BT, (int)V, (int)Vp));
    TRY(be->zero(cx, d->dlnf, BT * C));
    TRY(be->matmul_bwd(cx, d->dlnf, g->wte, 0, d->dlogits, a->lnf, p->wte, (int)BT, (int)C, (int)Vp));
    dout = d->dres_a;
    din = d->dres_b;
    TRY(be->zero(cx, dout, BT * C));
    TRY(be->layernorm_bwd(cx, dout, g->lnfw, g->lnfb, d->dlnf,
                          a->residual3 + (size_t)(m->cfg.layers - 1) * BT * C, p->lnfw,
                          a->lnf_mean, a->lnf_rstd, (int)BT, (int)C));
    for (l = m->cfg.layers - 1; l >= 0; l--) {
        size_t o = (size_t)l, lc = (size_t)l * C, la = (size_t)l * A, lf = (size_t)l * F;
        const float *x = l == 0 ? a->encoded : a->residual3 + (o - 1) * BT * C;
        float *ln1 = a->ln1 + o * BT * C, *ln1m = a->ln1_mean + o * BT, *ln1r = a->ln1_rstd + o * BT;
        float *qkv = a->qkv + o * BT * 3 * A, *atty = a->atty + o * BT * A;
        const float *pre = a->preatt + o * S, *att = a->att + o * S;
        float *res2 = a->residual2 + o * BT * C;
        float *ln2 = a->ln2 + o * BT * C, *ln2m = a->ln2_mean + o * BT, *ln2r = a->ln2_rstd + o * BT;
        float *fch = a->fch + o * BT * F, *fchg = a->fch_gelu + o * BT * F;
        float *tmp;
        /* residual3 = residual2 + fcproj(gelu(fc(ln2(residual2)))) */
        TRY(be->copy(cx, d->dres2, dout, BT * C));
        TRY(be->zero(cx, d->dfch_gelu, BT * F));
        TRY(be->matmul_bwd(cx, d->dfch_gelu, g->fcprojw + lc * F, g->fcprojb + lc, dout, fchg,
                           p->fcprojw + lc * F, (int)BT, (int)F, (int)C));
        TRY(be->zero(cx, d->dfch, BT * F));
        TRY(be->gelu_bwd(cx, d->dfch, fch, d->dfch_gelu, BT * F));
        TRY(be->zero(cx, d->dln, BT * C));
        TRY(be->matmul_bwd(cx, d->dln, g->fcw + lf * C, g->fcb + lf, d->dfch, ln2,
                           p->fcw + lf * C, (int)BT, (int)C, (int)F));
        TRY(be->layernorm_bwd(cx, d->dres2, g->ln2w + lc, g->ln2b + lc, d->dln, res2,
                              p->ln2w + lc, ln2m, ln2r, (int)BT, (int)C));
        /* residual2 = x + attproj(attention(qkv(ln1(x)))) */
        TRY(be->copy(cx, din, d->dres2, BT * C));
        TRY(be->zero(cx, d->datty, BT * A));
        TRY(be->matmul_bwd(cx, d->datty, g->attprojw + lc * A, g->attprojb + lc, d->dres2, atty,
                           p->attprojw + lc * A, (int)BT, (int)A, (int)C));
        TRY(be->zero(cx, d->dqkv, BT * 3 * A));
        if (W) {
            TRY(be->zero(cx, d->dpreatt, W));
            TRY(be->zero(cx, d->datt, W));
        }
        TRY(be->attention_bwd(cx, d->dqkv, d->dpreatt, d->datt, d->datty, qkv, pre, att, atty, B,
                              T, (int)A, (int)NH));
        TRY(be->zero(cx, d->dln, BT * C));
        TRY(be->matmul_bwd(cx, d->dln, g->qkvw + la * 3 * C, g->qkvb + la * 3, d->dqkv, ln1,
                           p->qkvw + la * 3 * C, (int)BT, (int)C, (int)(3 * A)));
        TRY(be->layernorm_bwd(cx, din, g->ln1w + lc, g->ln1b + lc, d->dln, x, p->ln1w + lc,
                              ln1m, ln1r, (int)BT, (int)C));
        tmp = dout; dout = din; din = tmp;
    }
    TRY(be->encoder_bwd(cx, g->wte, g->wpe, dout, m->inputs, B, T, (int)C));
    return ET_OK;
}

et_status et_gpt_grad_norm(et_gpt *m, float *norm)
{
    double s = 0.0;
    if (!m || !norm) return ET_ERR_INVALID;
    if (m->mode != ET_GPT_TRAIN) return ET_ERR_STATE;
    TRY(m->be->sumsq(m->be->ctx, &s, m->grads_memory, m->nparams));
    *norm = (float)et_sqrtf((float)s);
    return ET_OK;
}

et_status et_gpt_step(et_gpt *m, const et_adamw_config *opt)
{
    et_tensor_info t[ET_GPT_NTENSORS];
    float norm;
    int i;
    if (!m || !opt) return ET_ERR_INVALID;
    if (m->mode != ET_GPT_TRAIN) return ET_ERR_STATE;
    if (!(opt->lr >= 0.0f) || !(opt->beta1 >= 0.0f && opt->beta1 < 1.0f) ||
        !(opt->beta2 >= 0.0f && opt->beta2 < 1.0f) || !(opt->eps > 0.0f) ||
        !(opt->weight_decay >= 0.0f) || !(opt->grad_clip >= 0.0f))
        return ET_ERR_INVALID;
    TRY(et_gpt_grad_norm(m, &norm));
    m->last_grad_norm = norm;
    if (opt->grad_clip > 0.0f) {
        float coef = opt->grad_clip / (norm + 1e-6f);
        if (coef < 1.0f) TRY(m->be->scale(m->be->ctx, m->grads_memory, coef, m->nparams));
    }
    m->step++;
    et_gpt_tensors(&m->cfg, t);
    for (i = 0; i < ET_GPT_NTENSORS; i++)
        TRY(m->be->adamw(m->be->ctx, m->params_memory + t[i].offset, m->grads_memory + t[i].offset,
                         m->m_memory + t[i].offset, m->v_memory + t[i].offset, t[i].count, opt->lr,
                         opt->beta1, opt->beta2, opt->eps, t[i].decay ? opt->weight_decay : 0.0f,
                         m->step));
    return ET_OK;
}

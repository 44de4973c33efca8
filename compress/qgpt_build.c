/* qgpt_build.c - the quantized GPT's blob: its layout, typed views of it, the
 * post-training quantizer that fills it from fp32 parameters (and the inverse), and
 * the calibration hook that reads a float model's activation sites.
 *
 * Everything a W8A8 forward needs at run time is precomputed here, in float and
 * double, once: int32 biases with the input zero point folded in
 * (b32 = round(b / (s_x s_w)) - zp_x * rowsum(Wq)), Q31 multipliers and shifts for
 * s_x s_w / s_y, the GELU table, and the logits' scales. The forward then needs no
 * float in any matmul.
 * Deliberately avoids: knowledge of files (the host saves the blob) and any allocation.
 */
#include "et_qgpt.h"
#include "et_math.h"

#define NT ET_QGPT_NTENSORS
#define BIAS_LIM 1073741824.0 /* int32 biases are clamped to +-2^30: no overflow in acc + b */

/* tensor ids, in blob order */
enum {
    T_WTE, T_WTES, T_WPE, T_WPES, T_LN1W, T_LN1B,
    T_QKVW, T_QKVS, T_QKVB, T_QKVM, T_QKVSH,
    T_APW, T_APS, T_APB, T_APM, T_APSH,
    T_LN2W, T_LN2B,
    T_FCW, T_FCS, T_FCB, T_FCM, T_FCSH,
    T_FPW, T_FPS, T_FPB, T_FPM, T_FPSH,
    T_GELU, T_LNFW, T_LNFB, T_ACTS, T_ACTZ, T_LOGS, T_LOGB
};

int et_qgpt_nsites(const et_gpt_config *cfg)
{
    return ET_QSITE_PER_LAYER * cfg->layers + 1;
}

static size_t dt_size(et_qdtype d) { return d == ET_QDT_S8 ? 1 : 4; }

et_status et_qgpt_tensors(const et_gpt_config *cfg, et_qmode mode,
                          et_qtensor_info out[ET_QGPT_NTENSORS], size_t *blob_bytes)
{
    size_t Vp, T, L, C, A, F, S, off = 0;
    int a8, i;
    et_gpt_config c;
    struct { const char *n; et_qdtype d; size_t count; } d[NT];
    if (!cfg || !blob_bytes || (mode != ET_QMODE_W8A8 && mode != ET_QMODE_W8A32)) return ET_ERR_INVALID;
    c = *cfg;
    if (et_gpt_config_check(&c) != ET_OK) return ET_ERR_INVALID;
    Vp = (size_t)c.vocab_padded; T = (size_t)c.context; L = (size_t)c.layers; C = (size_t)c.channels;
    A = (size_t)et_gpt_attn_width(&c); F = (size_t)et_gpt_ffn_width(&c);
    S = (size_t)et_qgpt_nsites(&c);
    a8 = mode == ET_QMODE_W8A8;
#define D(id, name, dt, cnt) d[id].n = name; d[id].d = dt; d[id].count = cnt
    D(T_WTE, "wte", ET_QDT_S8, Vp * C);     D(T_WTES, "wte.s", ET_QDT_F32, Vp);
    D(T_WPE, "wpe", ET_QDT_S8, T * C);      D(T_WPES, "wpe.s", ET_QDT_F32, T);
    D(T_LN1W, "ln1w", ET_QDT_F32, L * C);   D(T_LN1B, "ln1b", ET_QDT_F32, L * C);
    D(T_LN2W, "ln2w", ET_QDT_F32, L * C);   D(T_LN2B, "ln2b", ET_QDT_F32, L * C);
    D(T_LNFW, "lnfw", ET_QDT_F32, C);       D(T_LNFB, "lnfb", ET_QDT_F32, C);
    D(T_GELU, "gelu.lut", ET_QDT_S8, a8 ? L * 256 : 0);
    D(T_ACTS, "act.s", ET_QDT_F32, a8 ? S : 0);
    D(T_ACTZ, "act.zp", ET_QDT_I32, a8 ? S : 0);
    D(T_LOGS, "logit.s", ET_QDT_F32, a8 ? Vp : 0);
    D(T_LOGB, "logit.b", ET_QDT_I32, a8 ? Vp : 0);
#define LIN(base, name, oc, k)                                                     \
    D(base, name "w", ET_QDT_S8, L * (oc) * (k));                                  \
    D(base + 1, name "w.s", ET_QDT_F32, L * (oc));                                 \
    D(base + 2, name "b", a8 ? ET_QDT_I32 : ET_QDT_F32, L * (oc));                 \
    D(base + 3, name "w.mult", ET_QDT_I32, a8 ? L * (oc) : 0);                     \
    D(base + 4, name "w.shift", ET_QDT_I32, a8 ? L * (oc) : 0)
    LIN(T_QKVW, "qkv", 3 * A, C);
    LIN(T_APW, "attproj", C, A);
    LIN(T_FCW, "fc", F, C);
    LIN(T_FPW, "fcproj", C, F);
#undef LIN
#undef D
    for (i = 0; i < NT; i++) {
        if (out) {
            out[i].name = d[i].n;
            out[i].dtype = d[i].d;
            out[i].count = d[i].count;
            out[i].offset = d[i].count ? off : 0;
        }
        off += et_arena_block(d[i].count * dt_size(d[i].d));
    }
    *blob_bytes = off;
    return ET_OK;
}

/* mutable pointers to every tensor (NULL when absent) */
static et_status blob_ptrs(const et_gpt_config *cfg, et_qmode mode, const void *blob,
                           size_t blob_bytes, void *p[NT])
{
    et_qtensor_info t[NT];
    size_t need;
    int i;
    et_status s = et_qgpt_tensors(cfg, mode, t, &need);
    if (s != ET_OK) return s;
    if (!blob || ((uintptr_t)blob & (ET_ALIGN - 1))) return ET_ERR_INVALID;
    if (blob_bytes < need) return ET_ERR_NOMEM;
    for (i = 0; i < NT; i++) p[i] = t[i].count ? (void *)((uint8_t *)(uintptr_t)blob + t[i].offset) : 0;
    return ET_OK;
}

static void lin_view(et_qlinear *l, void *p[NT], int base, int a8)
{
    l->w = (const int8_t *)p[base];
    l->ws = (const float *)p[base + 1];
    l->b32 = a8 ? (const int32_t *)p[base + 2] : 0;
    l->bf = a8 ? 0 : (const float *)p[base + 2];
    l->mult = (const int32_t *)p[base + 3];
    l->shift = (const int32_t *)p[base + 4];
}

et_status et_qgpt_view(const et_gpt_config *cfg, et_qmode mode, const void *blob,
                       size_t blob_bytes, et_qgpt_weights *w)
{
    void *p[NT];
    int a8 = mode == ET_QMODE_W8A8;
    et_status s;
    if (!w) return ET_ERR_INVALID;
    if ((s = blob_ptrs(cfg, mode, blob, blob_bytes, p)) != ET_OK) return s;
    w->wte = (const int8_t *)p[T_WTE]; w->wte_s = (const float *)p[T_WTES];
    w->wpe = (const int8_t *)p[T_WPE]; w->wpe_s = (const float *)p[T_WPES];
    w->ln1w = (const float *)p[T_LN1W]; w->ln1b = (const float *)p[T_LN1B];
    w->ln2w = (const float *)p[T_LN2W]; w->ln2b = (const float *)p[T_LN2B];
    w->lnfw = (const float *)p[T_LNFW]; w->lnfb = (const float *)p[T_LNFB];
    lin_view(&w->qkv, p, T_QKVW, a8);
    lin_view(&w->attproj, p, T_APW, a8);
    lin_view(&w->fc, p, T_FCW, a8);
    lin_view(&w->fcproj, p, T_FPW, a8);
    w->gelu_lut = (const int8_t *)p[T_GELU];
    w->act_scale = (const float *)p[T_ACTS];
    w->act_zp = (const int32_t *)p[T_ACTZ];
    w->logit_s = (const float *)p[T_LOGS];
    w->logit_b = (const int32_t *)p[T_LOGB];
    return ET_OK;
}

// --- quantizer

static int32_t rowsum_s8(const int8_t *q, int n)
{
    int32_t s = 0;
    int i;
    for (i = 0; i < n; i++) s += q[i];
    return s;
}

/* One stacked linear (L layers of OC x K): int8 weights and scales; W8A8 also the int32
 * bias and the requantization from site xs to site ys of each layer. */
static et_status quant_linear(void *p[NT], int base, int a8, const float *w, const float *b,
                              int L, int OC, int K, const float *alo, const float *ahi, int xs,
                              int ys)
{
    int8_t *q = (int8_t *)p[base];
    float *ws = (float *)p[base + 1];
    int l, o;
    et_status s;
    for (l = 0; l < L; l++) {
        size_t lo = (size_t)l * OC;
        if ((s = et_quant_weights_s8(w + lo * K, OC, K, q + lo * K, ws + lo)) != ET_OK) return s;
        if (!a8) {
            float *bf = (float *)p[base + 2];
            for (o = 0; o < OC; o++) bf[lo + o] = b[lo + o];
            continue;
        }
        {
            int32_t *b32 = (int32_t *)p[base + 2], *mult = (int32_t *)p[base + 3];
            int32_t *sh = (int32_t *)p[base + 4];
            et_qparams x, y;
            int xi = l * ET_QSITE_PER_LAYER + xs, yi = l * ET_QSITE_PER_LAYER + ys;
            if ((s = et_quant_act_params(alo[xi], ahi[xi], &x)) != ET_OK ||
                (s = et_quant_act_params(alo[yi], ahi[yi], &y)) != ET_OK)
                return s;
            for (o = 0; o < OC; o++) {
                double sxw = (double)x.scale * (double)ws[lo + o], bq = (double)b[lo + o] / sxw;
                bq -= (double)x.zero_point * (double)rowsum_s8(q + (lo + o) * K, K);
                bq = bq > BIAS_LIM ? BIAS_LIM : bq < -BIAS_LIM ? -BIAS_LIM : bq;
                b32[lo + o] = (int32_t)(bq >= 0 ? bq + 0.5 : bq - 0.5);
                if ((s = et_quant_multiplier(sxw / (double)y.scale, &mult[lo + o], &sh[lo + o])) != ET_OK)
                    return s;
            }
        }
    }
    return ET_OK;
}

static float gelu(float x)
{
    return 0.5f * x * (1.0f + et_tanhf(0.7978845608028654f * (x + 0.044715f * x * x * x)));
}

et_status et_qgpt_quantize(const et_gpt_config *cfg, const float *params, et_qmode mode,
                           const float *lo, const float *hi, void *blob, size_t blob_bytes)
{
    et_gpt_config c;
    et_tensor_info t[ET_GPT_NTENSORS];
    et_gpt_params P;
    et_qparams x, y;
    void *p[NT];
    int a8 = mode == ET_QMODE_W8A8, L, C, A, F, Vp, S, nsites, i, l;
    const float *alo = lo, *ahi = hi;
    et_status s;
    size_t need;
    if (!cfg || !params) return ET_ERR_INVALID;
    c = *cfg;
    if (et_gpt_config_check(&c) != ET_OK) return ET_ERR_INVALID;
    if (a8 && (!lo || !hi)) return ET_ERR_INVALID;
    if ((s = blob_ptrs(&c, mode, blob, blob_bytes, p)) != ET_OK) return s;
    et_qgpt_tensors(&c, mode, 0, &need);
    ET_MEMSET(blob, 0, need);
    L = c.layers; C = c.channels; Vp = c.vocab_padded; S = ET_QSITE_PER_LAYER;
    A = et_gpt_attn_width(&c); F = et_gpt_ffn_width(&c);
    nsites = et_qgpt_nsites(&c);
    et_gpt_tensors(&c, t);
    {
        const float *b = params;
        P.wte = (float *)(uintptr_t)(b + t[0].offset);  P.wpe = (float *)(uintptr_t)(b + t[1].offset);
        P.ln1w = (float *)(uintptr_t)(b + t[2].offset); P.ln1b = (float *)(uintptr_t)(b + t[3].offset);
        P.qkvw = (float *)(uintptr_t)(b + t[4].offset); P.qkvb = (float *)(uintptr_t)(b + t[5].offset);
        P.attprojw = (float *)(uintptr_t)(b + t[6].offset); P.attprojb = (float *)(uintptr_t)(b + t[7].offset);
        P.ln2w = (float *)(uintptr_t)(b + t[8].offset); P.ln2b = (float *)(uintptr_t)(b + t[9].offset);
        P.fcw = (float *)(uintptr_t)(b + t[10].offset); P.fcb = (float *)(uintptr_t)(b + t[11].offset);
        P.fcprojw = (float *)(uintptr_t)(b + t[12].offset); P.fcprojb = (float *)(uintptr_t)(b + t[13].offset);
        P.lnfw = (float *)(uintptr_t)(b + t[14].offset); P.lnfb = (float *)(uintptr_t)(b + t[15].offset);
    }
    if (a8)
        for (i = 0; i < nsites; i++)
            if ((s = et_quant_act_params(lo[i], hi[i], &x)) != ET_OK) return s;
    /* embeddings, LayerNorms */
    if ((s = et_quant_weights_s8(P.wte, Vp, C, (int8_t *)p[T_WTE], (float *)p[T_WTES])) != ET_OK) return s;
    if ((s = et_quant_weights_s8(P.wpe, c.context, C, (int8_t *)p[T_WPE], (float *)p[T_WPES])) != ET_OK)
        return s;
    ET_MEMCPY(p[T_LN1W], P.ln1w, sizeof(float) * L * C);
    ET_MEMCPY(p[T_LN1B], P.ln1b, sizeof(float) * L * C);
    ET_MEMCPY(p[T_LN2W], P.ln2w, sizeof(float) * L * C);
    ET_MEMCPY(p[T_LN2B], P.ln2b, sizeof(float) * L * C);
    ET_MEMCPY(p[T_LNFW], P.lnfw, sizeof(float) * C);
    ET_MEMCPY(p[T_LNFB], P.lnfb, sizeof(float) * C);
    /* the four linear layers of every block */
    if ((s = quant_linear(p, T_QKVW, a8, P.qkvw, P.qkvb, L, 3 * A, C, alo, ahi, ET_QSITE_LN1, ET_QSITE_QKV)) ||
        (s = quant_linear(p, T_APW, a8, P.attprojw, P.attprojb, L, C, A, alo, ahi, ET_QSITE_ATTY, ET_QSITE_ATTPROJ)) ||
        (s = quant_linear(p, T_FCW, a8, P.fcw, P.fcb, L, F, C, alo, ahi, ET_QSITE_LN2, ET_QSITE_FCH)) ||
        (s = quant_linear(p, T_FPW, a8, P.fcprojw, P.fcprojb, L, C, F, alo, ahi, ET_QSITE_GELU, ET_QSITE_FCPROJ)))
        return s;
    if (!a8) return ET_OK;
    /* activation parameters, GELU tables, logits */
    for (i = 0; i < nsites; i++) {
        et_quant_act_params(lo[i], hi[i], &x);
        ((float *)p[T_ACTS])[i] = x.scale;
        ((int32_t *)p[T_ACTZ])[i] = x.zero_point;
    }
    for (l = 0; l < L; l++) {
        int8_t *lut = (int8_t *)p[T_GELU] + (size_t)l * 256;
        et_quant_act_params(lo[l * S + ET_QSITE_FCH], hi[l * S + ET_QSITE_FCH], &x);
        et_quant_act_params(lo[l * S + ET_QSITE_GELU], hi[l * S + ET_QSITE_GELU], &y);
        for (i = -128; i < 128; i++) {
            float g = gelu(x.scale * (float)(i - x.zero_point));
            lut[i + 128] = (int8_t)et_quant_round_clamp(g / y.scale + (float)y.zero_point, -128, 127);
        }
    }
    et_quant_act_params(lo[L * S], hi[L * S], &x);
    for (i = 0; i < Vp; i++) {
        const int8_t *q = (const int8_t *)p[T_WTE] + (size_t)i * C;
        ((float *)p[T_LOGS])[i] = x.scale * ((const float *)p[T_WTES])[i];
        ((int32_t *)p[T_LOGB])[i] = -x.zero_point * rowsum_s8(q, C);
    }
    return ET_OK;
}

static void deq_rows(float *dst, const int8_t *q, const float *s, size_t rows, size_t cols)
{
    size_t r, k;
    for (r = 0; r < rows; r++)
        for (k = 0; k < cols; k++) dst[r * cols + k] = s[r] * (float)q[r * cols + k];
}

static void deq_linear(float *w, float *b, const et_qlinear *q, const float *act_s,
                       const int32_t *act_zp, int L, int OC, int K, int xs)
{
    int l, o;
    deq_rows(w, q->w, q->ws, (size_t)L * OC, (size_t)K);
    for (l = 0; l < L; l++)
        for (o = 0; o < OC; o++) {
            size_t i = (size_t)l * OC + o;
            if (q->bf) {
                b[i] = q->bf[i];
            } else {
                /* undo the folded zero-point term, then scale back */
                int x = l * ET_QSITE_PER_LAYER + xs;
                double v = (double)q->b32[i] + (double)act_zp[x] * (double)rowsum_s8(q->w + i * K, K);
                b[i] = (float)(v * (double)act_s[x] * (double)q->ws[i]);
            }
        }
}

et_status et_qgpt_dequantize(const et_gpt_config *cfg, et_qmode mode, const void *blob,
                             size_t blob_bytes, float *params)
{
    et_gpt_config c;
    et_tensor_info t[ET_GPT_NTENSORS];
    et_qgpt_weights w;
    size_t L, C, A, F;
    et_status s;
    if (!cfg || !params) return ET_ERR_INVALID;
    c = *cfg;
    if (et_gpt_config_check(&c) != ET_OK) return ET_ERR_INVALID;
    if ((s = et_qgpt_view(&c, mode, blob, blob_bytes, &w)) != ET_OK) return s;
    et_gpt_tensors(&c, t);
    L = (size_t)c.layers; C = (size_t)c.channels;
    A = (size_t)et_gpt_attn_width(&c); F = (size_t)et_gpt_ffn_width(&c);
    deq_rows(params + t[0].offset, w.wte, w.wte_s, (size_t)c.vocab_padded, C);
    deq_rows(params + t[1].offset, w.wpe, w.wpe_s, (size_t)c.context, C);
    ET_MEMCPY(params + t[2].offset, w.ln1w, sizeof(float) * L * C);
    ET_MEMCPY(params + t[3].offset, w.ln1b, sizeof(float) * L * C);
    deq_linear(params + t[4].offset, params + t[5].offset, &w.qkv, w.act_scale, w.act_zp, (int)L,
               (int)(3 * A), (int)C, ET_QSITE_LN1);
    deq_linear(params + t[6].offset, params + t[7].offset, &w.attproj, w.act_scale, w.act_zp, (int)L,
               (int)C, (int)A, ET_QSITE_ATTY);
    ET_MEMCPY(params + t[8].offset, w.ln2w, sizeof(float) * L * C);
    ET_MEMCPY(params + t[9].offset, w.ln2b, sizeof(float) * L * C);
    deq_linear(params + t[10].offset, params + t[11].offset, &w.fc, w.act_scale, w.act_zp, (int)L,
               (int)F, (int)C, ET_QSITE_LN2);
    deq_linear(params + t[12].offset, params + t[13].offset, &w.fcproj, w.act_scale, w.act_zp, (int)L,
               (int)C, (int)F, ET_QSITE_GELU);
    ET_MEMCPY(params + t[14].offset, w.lnfw, sizeof(float) * C);
    ET_MEMCPY(params + t[15].offset, w.lnfb, sizeof(float) * C);
    return ET_OK;
}

// --- calibration from a float model's activations

et_status et_qcalib_observe_gpt(et_qcalib *c, const et_gpt *m)
{
    const et_gpt_acts *a;
    size_t BT, C, A, F;
    int l, S = ET_QSITE_PER_LAYER;
    et_status s;
    if (!c || !m) return ET_ERR_INVALID;
    if (c->nsites != et_qgpt_nsites(&m->cfg)) return ET_ERR_INVALID;
    if (m->layer_stride != 1 || m->fwd_B <= 0 || m->be->dev_arena) return ET_ERR_STATE;
    a = &m->acts;
    BT = (size_t)m->fwd_B * m->fwd_T;
    C = (size_t)m->cfg.channels;
    A = (size_t)et_gpt_attn_width(&m->cfg); F = (size_t)et_gpt_ffn_width(&m->cfg);
    for (l = 0; l < m->cfg.layers; l++) {
        size_t o = (size_t)l * BT; /* the forward lays layers out by its own B*T */
#define OBS(site, ptr, w) if ((s = et_qcalib_observe(c, l * S + (site), (ptr) + o * (w), BT * (w))) != ET_OK) return s
        OBS(ET_QSITE_LN1, a->ln1, C);
        OBS(ET_QSITE_QKV, a->qkv, 3 * A);
        OBS(ET_QSITE_ATTY, a->atty, A);
        OBS(ET_QSITE_ATTPROJ, a->attproj, C);
        OBS(ET_QSITE_LN2, a->ln2, C);
        OBS(ET_QSITE_FCH, a->fch, F);
        OBS(ET_QSITE_GELU, a->fch_gelu, F);
        OBS(ET_QSITE_FCPROJ, a->fcproj, C);
#undef OBS
    }
    return et_qcalib_observe(c, m->cfg.layers * S, a->lnf, BT * C);
}

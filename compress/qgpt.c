/* qgpt.c - the quantized GPT's inference model: exact plan, creation in an arena, and
 * the W8A8 and W8A32 forward passes (et_qgpt.h says what runs in int8 and what in float).
 *
 * One layout function sizes every block for the plan and carves them in create, as
 * core/gpt.c does, so the plan cannot drift. Activations hold one layer and are reused
 * by every layer; the residual stream ping-pongs between two buffers. W8A8 packs its
 * weights for the int8 GEMM once, at create; the float passes between the GEMMs
 * (embedding, LayerNorms, residual adds, (de)quantization, the GELU table) run as
 * threaded, vectorized tasks over row blocks, bit for bit the scalar loops.
 * Deliberately avoids: the backend table (this is a cpu path: it calls the cpu kernels
 * of et_cpu_ops.h directly) and any allocation outside the arena.
 */
#include "et_qgpt.h"
#include "et_qgemm.h"
#include "et_cpu_ops.h"
#if ET_HAVE_AVX2
#include <immintrin.h>
#endif

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

/* Port knob: W8A8 packs its weights once, at create, into the arena (the speed of a
 * forward that never packs, for about 1 byte of RAM per weight with the AVX-512 VNNI
 * kernel and 2 with the others); 0 packs a panel per GEMM call instead (RAM-tight
 * boards). Plan and create read the same value, so the plan stays exact. */
#ifndef ET_QGPT_PREPACK
#define ET_QGPT_PREPACK 1
#endif

static size_t scratch_for(const et_gpt_config *c, et_qmode mode, int nworkers)
{
    if (mode != ET_QMODE_W8A8) return et_qgemm_w8a32_scratch_bytes(nworkers);
    return ET_QGPT_PREPACK ? et_qgemm_s8_packed_scratch_bytes(kmax_of(c), nworkers)
                           : et_qgemm_s8_scratch_bytes(kmax_of(c), nworkers);
}

/* the packed weights of linear j (0 qkv, 1 attproj, 2 fc, 3 fcproj) of layer l, or with
 * l = layers the logits' wte: (OC, K) and byte offset into m->wpack */
static size_t wpack_at(const et_gpt_config *c, int l, int j, int *OC, int *K)
{
    int C = c->channels, A = et_gpt_attn_width(c), F = et_gpt_ffn_width(c);
    int oc[4], kk[4], i;
    size_t per = 0, off = 0;
    oc[0] = 3 * A; kk[0] = C;
    oc[1] = C;     kk[1] = A;
    oc[2] = F;     kk[2] = C;
    oc[3] = C;     kk[3] = F;
    for (i = 0; i < 4; i++) per += et_qgemm_s8_pack_bytes(oc[i], kk[i]);
    if (l >= c->layers) {
        *OC = c->vocab_padded;
        *K = C;
        return per * (size_t)c->layers;
    }
    for (i = 0; i < j; i++) off += et_qgemm_s8_pack_bytes(oc[i], kk[i]);
    *OC = oc[j];
    *K = kk[j];
    return per * (size_t)l + off;
}

static size_t wpack_bytes(const et_gpt_config *c)
{
    int OC, K;
    size_t off = wpack_at(c, c->layers, 0, &OC, &K);
    return off + et_qgemm_s8_pack_bytes(OC, K);
}

static void walk(qlayout *L, et_qgpt *m, const et_gpt_config *c, et_qmode mode, int B, int T,
                 int nworkers)
{
    size_t BT = (size_t)B * T, C = (size_t)c->channels, Vp = (size_t)c->vocab_padded,
           A = (size_t)et_gpt_attn_width(c), F = (size_t)et_gpt_ffn_width(c),
           att = (size_t)B * c->heads * T, /* a log-sum-exp per row */ f = sizeof(float);
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
    m->att = (float *)take(L, att * f);
    if (mode == ET_QMODE_W8A8) {
        m->qa = (int8_t *)take(L, BT * wmax_of(c));
        m->qb = (int8_t *)take(L, BT * wmax_of(c));
        if (ET_QGPT_PREPACK) m->wpack = take(L, wpack_bytes(c));
    } else {
        m->fch = (float *)take(L, BT * F * f);
        m->fchg = (float *)take(L, BT * F * f);
    }
    m->logits = (float *)take(L, BT * Vp * f);
    m->probs = (float *)take(L, BT * Vp * f);
    m->losses = (float *)take(L, BT * f);
    m->scratch_bytes = scratch_for(c, mode, nworkers);
    m->scratch = take(L, m->scratch_bytes);
    m->att_slice = et_cpu_flash_slice();
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
    if (L.err != ET_OK || !m->wpack) return L.err;
    {   /* pack every weight matrix once, so that no forward packs */
        const et_qlinear *lin[4];
        int l, j, OC, K;
        lin[0] = &m->w.qkv; lin[1] = &m->w.attproj; lin[2] = &m->w.fc; lin[3] = &m->w.fcproj;
        for (l = 0; l <= m->cfg.layers; l++)
            for (j = 0; j < (l < m->cfg.layers ? 4 : 1); j++) {
                size_t off = wpack_at(&m->cfg, l, j, &OC, &K);
                const int8_t *wq = l < m->cfg.layers ? lin[j]->w + (size_t)l * OC * K : m->w.wte;
                TRY(et_qgemm_s8_pack(wq, K, OC, K, th, (uint8_t *)m->wpack + off, et_qgemm_s8_pack_bytes(OC, K)));
            }
    }
    return ET_OK;
}

// --- elementwise passes, vectorized with the scalar forms' exact bits

/* Every pass below computes each element with the same float operations, in the same
 * order, as the scalar loops of quant.c and compress/cgpt.c (which the tests compare this
 * model with bit for bit): separate multiplies and adds (the build never contracts them
 * into FMAs), the same rounding. Only the loop structure differs. */

/* q = clamp(round(x * inv + zp)), ties away from zero: et_quant_f32_to_s8 */
static void quant_row(int8_t *q, const float *x, int n, float inv, float zp)
{
    int i = 0;
#if ET_HAVE_AVX512
    {
        const __m512 vi = _mm512_set1_ps(inv), vz = _mm512_set1_ps(zp), lo = _mm512_set1_ps(-128.0f),
                     hi = _mm512_set1_ps(127.0f), half = _mm512_set1_ps(0.5f);
        const __m512i sign = _mm512_set1_epi32((int)0x80000000u);
        for (; i + 16 <= n; i += 16) {
            __m512 v = _mm512_add_ps(_mm512_mul_ps(_mm512_loadu_ps(x + i), vi), vz);
            __m512 h;
            v = _mm512_min_ps(_mm512_max_ps(v, lo), hi);
            /* +-0.5 with v's sign: v + 0.5 for v >= 0, v - 0.5 below (-0 gives 0 either way) */
            h = _mm512_castsi512_ps(_mm512_or_si512(_mm512_and_si512(_mm512_castps_si512(v), sign),
                                                    _mm512_castps_si512(half)));
            _mm_storeu_si128((__m128i *)(void *)(q + i), _mm512_cvtepi32_epi8(_mm512_cvttps_epi32(_mm512_add_ps(v, h))));
        }
    }
#endif
    for (; i < n; i++) {
        float v = x[i] * inv + zp;
        v = v < -128.0f ? -128.0f : v > 127.0f ? 127.0f : v;
        q[i] = (int8_t)(int32_t)(v >= 0.0f ? v + 0.5f : v - 0.5f);
    }
}

/* y = (x ? x + : ) scale * (q - zp): et_quant_s8_to_f32 and the residual add */
static void deq_row(float *y, const float *x, const int8_t *q, int n, float scale, int32_t zp)
{
    int i = 0;
#if ET_HAVE_AVX512
    {
        const __m512 vs = _mm512_set1_ps(scale);
        const __m512i vz = _mm512_set1_epi32(zp);
        for (; i + 16 <= n; i += 16) {
            __m512i qi = _mm512_cvtepi8_epi32(_mm_loadu_si128((const __m128i *)(const void *)(q + i)));
            __m512 d = _mm512_mul_ps(vs, _mm512_cvtepi32_ps(_mm512_sub_epi32(qi, vz)));
            _mm512_storeu_ps(y + i, x ? _mm512_add_ps(_mm512_loadu_ps(x + i), d) : d);
        }
    }
#endif
    if (x)
        for (; i < n; i++) y[i] = x[i] + scale * (float)((int32_t)q[i] - zp);
    else
        for (; i < n; i++) y[i] = scale * (float)((int32_t)q[i] - zp);
}

/* o = se * e + sp * p (token and position embeddings) */
static void embed_row(float *o, const int8_t *e, float se, const int8_t *p, float sp, int n)
{
    int i = 0;
#if ET_HAVE_AVX512
    {
        const __m512 a = _mm512_set1_ps(se), b = _mm512_set1_ps(sp);
        for (; i + 16 <= n; i += 16) {
            __m512 fe = _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_loadu_si128((const __m128i *)(const void *)(e + i))));
            __m512 fp = _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_loadu_si128((const __m128i *)(const void *)(p + i))));
            _mm512_storeu_ps(o + i, _mm512_add_ps(_mm512_mul_ps(a, fe), _mm512_mul_ps(b, fp)));
        }
    }
#endif
    for (; i < n; i++) o[i] = se * (float)e[i] + sp * (float)p[i];
}

/* out = lut[in + 128] */
static void lut_row(int8_t *out, const int8_t *in, int n, const int8_t *lut)
{
    int i = 0;
#if ET_HAVE_AVX512 && defined(__AVX512VBMI__) && defined(__AVX512BW__)
    {
        /* vpermi2b looks up 128 bytes by an index's low 7 bits; bit 7 of in ^ 0x80
         * (= in + 128) picks the upper or the lower half of the table */
        const __m512i t0 = _mm512_loadu_si512((const void *)lut), t1 = _mm512_loadu_si512((const void *)(lut + 64));
        const __m512i t2 = _mm512_loadu_si512((const void *)(lut + 128)), t3 = _mm512_loadu_si512((const void *)(lut + 192));
        const __m512i flip = _mm512_set1_epi8((char)0x80);
        for (; i + 64 <= n; i += 64) {
            __m512i idx = _mm512_xor_si512(_mm512_loadu_si512((const void *)(in + i)), flip);
            __m512i lo = _mm512_permutex2var_epi8(t0, idx, t1), hi = _mm512_permutex2var_epi8(t2, idx, t3);
            _mm512_storeu_si512((void *)(out + i), _mm512_mask_blend_epi8(_mm512_movepi8_mask(idx), lo, hi));
        }
    }
#endif
    for (; i < n; i++) out[i] = lut[(int)in[i] + 128];
}

// --- the passes between the GEMMs, as tasks over row blocks

#define ROWS_PER_TASK 16

typedef enum {
    EW_EMBED,     /* x = embeddings; then the LN/quantize below */
    EW_RESID,     /* y = x + deq(q); then the LN/quantize below */
    EW_QUANT,     /* qa = quant(f) */
    EW_DEQUANT,   /* f = deq(q) */
    EW_LUT,       /* qa = lut[q] */
    EW_EMBED_F32, /* x = embeddings (W8A32) */
    EW_ADD_F32    /* y = x + f (W8A32) */
} ew_op;

typedef struct {
    et_qgpt *m;
    ew_op op;
    int N, T, width;          /* rows, sequence length, row width of the pass */
    float *y;                 /* EMBED*, RESID, ADD_F32: the residual stream written */
    const float *x;           /* RESID, ADD_F32: the residual stream read */
    float *f;                 /* QUANT: read; DEQUANT: written; ADD_F32: read */
    const int8_t *q;          /* RESID, DEQUANT, LUT: read */
    int8_t *qa;               /* QUANT, LUT, and after the LN: written */
    float qs;                 /* scale and zero point of q */
    int32_t qzp;
    const float *lnw, *lnb;   /* EMBED / RESID: LayerNorm of y, quantized into qa (NULL: none) */
    float inv, zp;            /* quantization of the LN output or of f */
    const int8_t *lut;
} ew_job;

static void ew_task(void *arg, int t, int w)
{
    ew_job *J = (ew_job *)arg;
    et_qgpt *m = J->m;
    int r0 = t * ROWS_PER_TASK, r1 = r0 + ROWS_PER_TASK, r, C = m->cfg.channels, n = J->width;
    ET_UNUSED(w);
    if (r1 > J->N) r1 = J->N;
    for (r = r0; r < r1; r++) {
        size_t o = (size_t)r * n;
        switch (J->op) {
        case EW_EMBED:
        case EW_EMBED_F32: {
            int tok = m->inputs[r], pos = r % J->T;
            embed_row(J->y + o, m->w.wte + (size_t)tok * C, m->w.wte_s[tok], m->w.wpe + (size_t)pos * C,
                      m->w.wpe_s[pos], C);
            break;
        }
        case EW_RESID: deq_row(J->y + o, J->x + o, J->q + o, n, J->qs, J->qzp); break;
        case EW_QUANT: quant_row(J->qa + o, J->f + o, n, J->inv, J->zp); break;
        case EW_DEQUANT: deq_row(J->f + o, 0, J->q + o, n, J->qs, J->qzp); break;
        case EW_LUT: lut_row(J->qa + o, J->q + o, n, J->lut); break;
        case EW_ADD_F32: {
            int i;
            for (i = 0; i < n; i++) J->y[o + i] = J->x[o + i] + J->f[o + i];
            break;
        }
        }
    }
    if ((J->op == EW_EMBED || J->op == EW_RESID) && J->lnw) {
        /* the rows' LayerNorm through the core's own kernel (serially, inside this task:
         * each row is normalized on its own, so the bits are the whole call's), then the
         * quantization while the rows are still in cache */
        size_t o = (size_t)r0 * C;
        et_cpu_layernorm_fwd(0, m->ln + o, m->ln_mean + r0, m->ln_rstd + r0, J->y + o, J->lnw, J->lnb, r1 - r0, C);
        for (r = r0; r < r1; r++) quant_row(J->qa + (size_t)r * C, m->ln + (size_t)r * C, C, J->inv, J->zp);
    }
}

/* below this many elements a pass runs on the caller alone: handing a few microseconds of
 * work to the pool costs more than it saves (sampling's single sequence) */
#define EW_SERIAL_BELOW 32768

static void ew_run(ew_job *J)
{
    int ntasks = (J->N + ROWS_PER_TASK - 1) / ROWS_PER_TASK;
    if ((size_t)J->N * J->width < EW_SERIAL_BELOW) et_parallel_for(0, ntasks, ew_task, J);
    else et_parallel_for(J->m->th, ntasks, ew_task, J);
}

static void ew_init(ew_job *J, et_qgpt *m, ew_op op, int N, int T, int width)
{
    ET_MEMSET(J, 0, sizeof *J);
    J->m = m;
    J->op = op;
    J->N = N;
    J->T = T;
    J->width = width;
}

static et_qparams site(const et_qgpt *m, int s)
{
    et_qparams p;
    p.scale = m->w.act_scale[s];
    p.zero_point = m->w.act_zp[s];
    return p;
}

/* the LayerNorm (w, b) and quantization at site s that an EMBED / RESID pass ends with */
static void ew_ln(ew_job *J, const float *w, const float *b, int s)
{
    et_qparams p = site(J->m, s);
    J->lnw = w;
    J->lnb = b;
    J->inv = 1.0f / p.scale;
    J->zp = (float)p.zero_point;
}

/* out(N,OC) int8 at site ys = requant(in(N,K) int8 . W^T + b32) for layer l */
static et_status qlinear(const et_qgpt *m, int8_t *out, const int8_t *in, const et_qlinear *q, int which,
                         int l, int N, int K, int OC, int ys)
{
    et_qgemm_args g;
    size_t lo = (size_t)l * OC;
    int oc, kk;
    size_t off = wpack_at(&m->cfg, l, which, &oc, &kk);
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
    return m->wpack ? et_qgemm_s8_packed(&g, (const uint8_t *)m->wpack + off, m->th, m->scratch, m->scratch_bytes)
                    : et_qgemm_s8(&g, m->th, m->scratch, m->scratch_bytes);
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

/* One block, W8A8. On entry m->qa holds LN1(x) quantized at the layer's LN1 site; on
 * return @p out holds the residual stream and m->qa the next LayerNorm's quantized output
 * (the next layer's LN1, or after the last layer the final LN's), so the LayerNorm and
 * quantization passes ride on the residual adds. */
static et_status layer_w8a8(et_qgpt *m, int l, const float *x, float *out, int B, int T)
{
    const et_qgpt_weights *w = &m->w;
    int C = m->cfg.channels, NH = m->cfg.heads, N = B * T, s0 = l * ET_QSITE_PER_LAYER, last = l + 1 == m->cfg.layers;
    int A = et_gpt_attn_width(&m->cfg), F = et_gpt_ffn_width(&m->cfg);
    size_t lc = (size_t)l * C;
    et_qparams p;
    ew_job J;
    /* attention half: qkv (int8) -> float attention -> int8 -> attproj */
    TRY(qlinear(m, m->qb, m->qa, &w->qkv, 0, l, N, C, 3 * A, s0 + ET_QSITE_QKV));
    p = site(m, s0 + ET_QSITE_QKV);
    ew_init(&J, m, EW_DEQUANT, N, T, 3 * A);
    J.q = m->qb; J.f = m->qkv; J.qs = p.scale; J.qzp = p.zero_point;
    ew_run(&J);
    et_cpu_flash_fwd(m->th, m->att_scratch, m->att_slice, m->atty, m->att, m->qkv, B, T, A, NH);
    p = site(m, s0 + ET_QSITE_ATTY);
    ew_init(&J, m, EW_QUANT, N, T, A);
    J.f = m->atty; J.qa = m->qa; J.inv = 1.0f / p.scale; J.zp = (float)p.zero_point;
    ew_run(&J);
    TRY(qlinear(m, m->qb, m->qa, &w->attproj, 1, l, N, A, C, s0 + ET_QSITE_ATTPROJ));
    /* tmp = x + attproj; LN2 -> int8 */
    p = site(m, s0 + ET_QSITE_ATTPROJ);
    ew_init(&J, m, EW_RESID, N, T, C);
    J.y = m->tmp; J.x = x; J.q = m->qb; J.qs = p.scale; J.qzp = p.zero_point; J.qa = m->qa;
    ew_ln(&J, w->ln2w + lc, w->ln2b + lc, s0 + ET_QSITE_LN2);
    ew_run(&J);
    /* MLP half: fc (int8) -> GELU table -> fcproj (int8) */
    TRY(qlinear(m, m->qb, m->qa, &w->fc, 2, l, N, C, F, s0 + ET_QSITE_FCH));
    ew_init(&J, m, EW_LUT, N, T, F);
    J.q = m->qb; J.qa = m->qa; J.lut = w->gelu_lut + (size_t)l * 256;
    ew_run(&J);
    TRY(qlinear(m, m->qb, m->qa, &w->fcproj, 3, l, N, F, C, s0 + ET_QSITE_FCPROJ));
    /* out = tmp + fcproj; the next LayerNorm -> int8 */
    p = site(m, s0 + ET_QSITE_FCPROJ);
    ew_init(&J, m, EW_RESID, N, T, C);
    J.y = out; J.x = m->tmp; J.q = m->qb; J.qs = p.scale; J.qzp = p.zero_point; J.qa = m->qa;
    if (last) ew_ln(&J, w->lnfw, w->lnfb, m->cfg.layers * ET_QSITE_PER_LAYER);
    else ew_ln(&J, w->ln1w + lc + C, w->ln1b + lc + C, s0 + ET_QSITE_PER_LAYER + ET_QSITE_LN1);
    ew_run(&J);
    return ET_OK;
}

static et_status layer_w8a32(et_qgpt *m, int l, float *x, float *out, int B, int T)
{
    const et_qgpt_weights *w = &m->w;
    int C = m->cfg.channels, NH = m->cfg.heads, N = B * T;
    int A = et_gpt_attn_width(&m->cfg), F = et_gpt_ffn_width(&m->cfg);
    size_t BT = (size_t)N, lc = (size_t)l * C;
    ew_job J;
    et_cpu_layernorm_fwd(m->th, m->ln, m->ln_mean, m->ln_rstd, x, w->ln1w + lc, w->ln1b + lc, N, C);
    TRY(wlinear(m, m->qkv, m->ln, &w->qkv, l, N, C, 3 * A));
    et_cpu_flash_fwd(m->th, m->att_scratch, m->att_slice, m->atty, m->att, m->qkv, B, T, A, NH);
    TRY(wlinear(m, m->ln, m->atty, &w->attproj, l, N, A, C));
    ew_init(&J, m, EW_ADD_F32, N, T, C);
    J.y = m->tmp; J.x = x; J.f = m->ln;
    ew_run(&J);
    et_cpu_layernorm_fwd(m->th, m->ln, m->ln_mean, m->ln_rstd, m->tmp, w->ln2w + lc, w->ln2b + lc, N, C);
    TRY(wlinear(m, m->fch, m->ln, &w->fc, l, N, C, F));
    et_cpu_gelu_fwd(m->th, m->fchg, m->fch, BT * F);
    TRY(wlinear(m, m->ln, m->fchg, &w->fcproj, l, N, F, C));
    ew_init(&J, m, EW_ADD_F32, N, T, C);
    J.y = out; J.x = m->tmp; J.f = m->ln;
    ew_run(&J);
    return ET_OK;
}

et_status et_qgpt_forward(et_qgpt *m, const int *inputs, const int *targets, int B, int T)
{
    size_t BT, i;
    int l, C, V, Vp, a8;
    float *x, *y, *t;
    double sum = 0.0;
    ew_job J;
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
    a8 = m->mode == ET_QMODE_W8A8;
    x = m->res_a;
    y = m->res_b;
    /* embeddings (W8A8: and the first LN1, quantized) */
    ew_init(&J, m, a8 ? EW_EMBED : EW_EMBED_F32, (int)BT, T, C);
    J.y = x;
    J.qa = m->qa;
    if (a8) ew_ln(&J, m->w.ln1w, m->w.ln1b, ET_QSITE_LN1);
    ew_run(&J);
    for (l = 0; l < m->cfg.layers; l++) {
        TRY(a8 ? layer_w8a8(m, l, x, y, B, T) : layer_w8a32(m, l, x, y, B, T));
        t = x; x = y; y = t;
    }
    if (a8) { /* m->qa holds the final LayerNorm's output, quantized */
        et_qgemm_args g;
        int OC, K;
        size_t off = wpack_at(&m->cfg, m->cfg.layers, 0, &OC, &K);
        g.M = (int)BT; g.N = Vp; g.K = C;
        g.A = m->qa; g.lda = C; g.B = m->w.wte; g.ldb = C;
        g.bias = m->w.logit_b; g.out = ET_QGEMM_OUT_F32;
        g.mult = g.shift = 0; g.zp_out = 0; g.scale = m->w.logit_s;
        g.C = m->logits; g.ldc = Vp;
        TRY(m->wpack ? et_qgemm_s8_packed(&g, (const uint8_t *)m->wpack + off, m->th, m->scratch, m->scratch_bytes)
                     : et_qgemm_s8(&g, m->th, m->scratch, m->scratch_bytes));
    } else {
        et_wgemm_args g;
        et_cpu_layernorm_fwd(m->th, m->ln, m->ln_mean, m->ln_rstd, x, m->w.lnfw, m->w.lnfb, (int)BT, C);
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

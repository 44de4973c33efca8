/* cgpt_build.c - fills a compressed GPT's blob from fp32 weights and keep-masks (and,
 * for W8A8, calibrated activation ranges), and the inverse for float blobs.
 *
 * W8A8 follows et_qgpt_quantize exactly where the two overlap (per-row symmetric int8
 * weights from et_quant_weights_s8 on the masked row, int32 biases with the input zero
 * point folded in, Q31 multipliers, the GELU table, the logits' scales), so a pruned
 * model without factors gives et_qgpt's integers bit for bit. A factored linear adds a
 * middle stage: in . Bq^T requantized to int8 at its own site (no bias; the input zero
 * point folded in), then mid . Aq^T + b as any linear.
 * Deliberately avoids: knowledge of files and any allocation (one row of scratch from
 * the caller's arena).
 */
#include "et_cgpt_impl.h"
#include "et_math.h"
#include "et_qgpt.h"

#define BIAS_LIM 1073741824.0 /* int32 biases are clamped to +-2^30, as et_qgpt's */

static const int w_tensor[ET_CGPT_LIN] = {4, 6, 10, 12}; /* qkvw attprojw fcw fcprojw */
static const int b_tensor[ET_CGPT_LIN] = {5, 7, 11, 13};
static const int x_site[ET_CGPT_LIN] = {ET_QSITE_LN1, ET_QSITE_ATTY, ET_QSITE_LN2, ET_QSITE_GELU};
static const int y_site[ET_CGPT_LIN] = {ET_QSITE_QKV, ET_QSITE_ATTPROJ, ET_QSITE_FCH, ET_QSITE_FCPROJ};

static int kept(const uint8_t *mask, size_t i) { return !mask || ((mask[i >> 3] >> (i & 7)) & 1); }

static void put_idx(uint8_t *idx, size_t e, int bits, int v)
{
    size_t bit = e * (size_t)bits;
    idx[bit >> 3] = (uint8_t)(idx[bit >> 3] | ((unsigned)v << (bit & 7)));
}

static int get_idx(const uint8_t *idx, size_t e, int bits)
{
    size_t bit = e * (size_t)bits;
    return (idx[bit >> 3] >> (bit & 7)) & ((1 << bits) - 1);
}

size_t et_cgpt_pack_scratch_bytes(const et_gpt_config *cfg)
{
    size_t K = (size_t)(cfg ? 4 * cfg->channels : 0);
    return et_arena_block(K * sizeof(float)) + et_arena_block(K) + et_arena_block(K * sizeof(int32_t));
}

/* one matrix into its storage: values (float, or int8 with per-row scales) and positions
 * or bitmap; rowsum[o] = sum of row o's stored int8 values (W8A8) */
static et_status pack_mat(const et_cmat *d, const et_cmat_spec *s, const float *w, const uint8_t *mask,
                          int a8, float *frow, int8_t *qrow, int32_t *rowsum)
{
    int o, k, rows = d->rows, cols = d->cols;
    size_t e = 0;
    uint8_t *idx = (uint8_t *)(uintptr_t)d->sp.index;
    float *vf = (float *)(uintptr_t)(s->format == ET_CMAT_DENSE ? d->wf : d->sp.vf);
    int8_t *vq = (int8_t *)(uintptr_t)(s->format == ET_CMAT_DENSE ? d->wq : d->sp.vq);
    for (o = 0; o < rows; o++) {
        size_t r0 = (size_t)o * cols;
        int32_t sum = 0;
        for (k = 0; k < cols; k++) frow[k] = kept(mask, r0 + k) ? w[r0 + k] : 0.0f;
        if (a8) {
            et_status st = et_quant_weights_s8(frow, 1, cols, qrow, (float *)(uintptr_t)d->scale + o);
            if (st != ET_OK) return st;
        } else {
            for (k = 0; k < cols; k++)
                if (!(frow[k] == frow[k] && frow[k] - frow[k] == 0.0f)) return ET_ERR_RANGE;
        }
#define PUT(v_at, k_at) do { if (a8) { vq[v_at] = qrow[k_at]; sum += qrow[k_at]; } else vf[v_at] = frow[k_at]; } while (0)
        if (s->format == ET_CMAT_DENSE) {
            for (k = 0; k < cols; k++) PUT(r0 + k, k);
        } else if (s->format == ET_CMAT_NM) {
            int bits = s->M <= 4 ? 2 : 4, g, j;
            for (g = 0; g < cols / s->M; g++) {
                int got = 0, used = 0;
                for (j = 0; j < s->M; j++)
                    if (kept(mask, r0 + (size_t)g * s->M + j)) {
                        if (got == s->N) return ET_ERR_INVALID; /* more than N kept in a group */
                        PUT(e, g * s->M + j);
                        put_idx(idx, e++, bits, j);
                        used |= 1 << j;
                        got++;
                    }
                for (j = 0; got < s->N; j++) /* padding: zeros at unused positions */
                    if (!(used & (1 << j))) {
                        if (a8) vq[e] = 0;
                        else vf[e] = 0.0f;
                        put_idx(idx, e++, bits, j);
                        used |= 1 << j;
                        got++;
                    }
            }
        } else {
            for (k = 0; k < cols; k++)
                if (kept(mask, r0 + k)) {
                    if (e == s->nnz) return ET_ERR_INVALID;
                    PUT(e, k);
                    idx[(r0 + k) >> 3] = (uint8_t)(idx[(r0 + k) >> 3] | (1u << ((r0 + k) & 7)));
                    e++;
                }
        }
#undef PUT
        if (rowsum) rowsum[o] = sum;
    }
    if (s->format == ET_CMAT_BITMAP && e != s->nnz) return ET_ERR_INVALID;
    return ET_OK;
}

static int32_t round_bias(double v)
{
    v = v > BIAS_LIM ? BIAS_LIM : v < -BIAS_LIM ? -BIAS_LIM : v;
    return (int32_t)(v >= 0 ? v + 0.5 : v - 0.5);
}

/* W8A8 epilogue of one stage: b32 = round(b / (sx sw)) - zp_x rowsum, M = sx sw / sy */
static et_status stage(const et_cmat *d, const float *b, const int32_t *rowsum, et_qparams x, et_qparams y,
                       const int32_t *b32, const int32_t *mult, const int32_t *shift)
{
    int o;
    for (o = 0; o < d->rows; o++) {
        double sxw = (double)x.scale * (double)d->scale[o], bq = b ? (double)b[o] / sxw : 0.0;
        bq -= (double)x.zero_point * (double)rowsum[o];
        ((int32_t *)(uintptr_t)b32)[o] = round_bias(bq);
        if (et_quant_multiplier(sxw / (double)y.scale, (int32_t *)(uintptr_t)mult + o,
                                (int32_t *)(uintptr_t)shift + o) != ET_OK)
            return ET_ERR_RANGE;
    }
    return ET_OK;
}

static float gelu(float x)
{
    return 0.5f * x * (1.0f + et_tanhf(0.7978845608028654f * (x + 0.044715f * x * x * x)));
}

static et_status act(const float *lo, const float *hi, int s, et_qparams *p)
{
    return et_quant_act_params(lo[s], hi[s], p) == ET_OK ? ET_OK : ET_ERR_RANGE;
}

et_status et_cgpt_pack(const et_gpt_config *cfg, et_cgpt_mode mode, const et_clinear_spec *spec,
                       const float *params, const et_clinear_src *src, const float *lo,
                       const float *hi, void *blob, size_t blob_bytes, et_arena *scratch)
{
    et_gpt_config c;
    et_tensor_info t[ET_GPT_NTENSORS];
    et_cgpt v;
    et_clin d;
    et_arena_mark mark;
    void *p[3];
    float *frow;
    int8_t *qrow;
    int32_t *rowsum;
    size_t bytes, L, C, Vp;
    int a8 = mode == ET_CGPT_W8A8, i, l, S = ET_CSITE_PER_LAYER;
    et_status st = ET_OK;
    if (!params || !src || !scratch || !blob || ((uintptr_t)blob & (ET_ALIGN - 1))) return ET_ERR_INVALID;
    if (a8 && (!lo || !hi)) return ET_ERR_INVALID;
    if ((st = et_cgpt_blob_bytes(cfg, mode, spec, &bytes)) != ET_OK) return st;
    if (blob_bytes < bytes) return ET_ERR_NOMEM;
    c = *cfg;
    et_gpt_config_check(&c);
    if (et_cgpt_pack_scratch_bytes(&c) > et_arena_free_bytes(scratch)) return ET_ERR_NOMEM;
    L = (size_t)c.layers; C = (size_t)c.channels; Vp = (size_t)c.vocab_padded;
    if (a8)
        for (i = 0; i < et_cgpt_nsites(&c); i++) {
            et_qparams q;
            if (et_cgpt_site_used(&c, spec, i) && act(lo, hi, i, &q) != ET_OK) return ET_ERR_RANGE;
        }
    et_gpt_tensors(&c, t);
    ET_MEMSET(blob, 0, bytes);
    et__cgpt_walk(&c, mode, spec, blob, &v, 0, -1, &bytes);
    mark = et_arena_mark_get(scratch);
    et_arena_scratch(scratch, 4 * C * sizeof(float), &p[0]);
    et_arena_scratch(scratch, 4 * C, &p[1]);
    et_arena_scratch(scratch, 4 * C * sizeof(int32_t), &p[2]);
    frow = (float *)p[0]; qrow = (int8_t *)p[1]; rowsum = (int32_t *)p[2];
#define CP(dst, ti, n) ET_MEMCPY((void *)(uintptr_t)(dst), params + t[ti].offset, sizeof(float) * (n))
    if (a8) {
        if ((st = et_quant_weights_s8(params + t[0].offset, (int)Vp, (int)C, (int8_t *)(uintptr_t)v.wte_q,
                                      (float *)(uintptr_t)v.wte_s)) != ET_OK ||
            (st = et_quant_weights_s8(params + t[1].offset, c.context, (int)C, (int8_t *)(uintptr_t)v.wpe_q,
                                      (float *)(uintptr_t)v.wpe_s)) != ET_OK)
            goto out;
    } else {
        CP(v.wte, 0, Vp * C);
        CP(v.wpe, 1, (size_t)c.context * C);
    }
    CP(v.ln1w, 2, L * C); CP(v.ln1b, 3, L * C); CP(v.ln2w, 8, L * C); CP(v.ln2b, 9, L * C);
    CP(v.lnfw, 14, C); CP(v.lnfb, 15, C);
#undef CP
    for (i = 0; i < c.layers * ET_CGPT_LIN && st == ET_OK; i++) {
        const et_clinear_src *s = &src[i];
        int j = i % ET_CGPT_LIN, r = spec[i].rank;
        const float *b;
        size_t bytes_i;
        l = i / ET_CGPT_LIN;
        /* this linear's descriptor: the walk again (cheap, and the layout stays in one place) */
        et__cgpt_walk(&c, mode, spec, blob, 0, &d, i, &bytes_i);
        b = params + t[b_tensor[j]].offset + (size_t)l * d.OC;
        if (!a8) ET_MEMCPY((void *)(uintptr_t)d.bias, b, sizeof(float) * (size_t)d.OC);
        if (!r) {
            if (!s->w) { st = ET_ERR_INVALID; break; }
            if ((st = pack_mat(&d.w, &spec[i].w, s->w, s->wmask, a8, frow, qrow, rowsum)) != ET_OK) break;
            if (a8) {
                et_qparams x, y;
                act(lo, hi, l * S + x_site[j], &x);
                act(lo, hi, l * S + y_site[j], &y);
                st = stage(&d.w, b, rowsum, x, y, d.b32, d.mult, d.shift);
            }
        } else {
            if (!s->a || !s->b) { st = ET_ERR_INVALID; break; }
            if ((st = pack_mat(&d.b, &spec[i].b, s->b, s->bmask, a8, frow, qrow, rowsum)) != ET_OK) break;
            if (a8) {
                et_qparams x, mid;
                act(lo, hi, l * S + x_site[j], &x);
                act(lo, hi, l * S + ET_CSITE_MID(j), &mid);
                if ((st = stage(&d.b, 0, rowsum, x, mid, d.mb32, d.mmult, d.mshift)) != ET_OK) break;
            }
            if ((st = pack_mat(&d.a, &spec[i].a, s->a, s->amask, a8, frow, qrow, rowsum)) != ET_OK) break;
            if (a8) {
                et_qparams mid, y;
                act(lo, hi, l * S + ET_CSITE_MID(j), &mid);
                act(lo, hi, l * S + y_site[j], &y);
                st = stage(&d.a, b, rowsum, mid, y, d.b32, d.mult, d.shift);
            }
        }
    }
    if (st != ET_OK || !a8) goto out;
    /* activation parameters, GELU tables, logits (et_qgpt_quantize's) */
    for (i = 0; i < et_cgpt_nsites(&c); i++) {
        et_qparams x;
        x.scale = 1.0f;
        x.zero_point = 0;
        if (et_cgpt_site_used(&c, spec, i)) act(lo, hi, i, &x);
        ((float *)(uintptr_t)v.act_scale)[i] = x.scale;
        ((int32_t *)(uintptr_t)v.act_zp)[i] = x.zero_point;
    }
    for (l = 0; l < c.layers; l++) {
        int8_t *lut = (int8_t *)(uintptr_t)v.gelu_lut + (size_t)l * 256;
        et_qparams x, y;
        act(lo, hi, l * S + ET_QSITE_FCH, &x);
        act(lo, hi, l * S + ET_QSITE_GELU, &y);
        for (i = -128; i < 128; i++) {
            float g = gelu(x.scale * (float)(i - x.zero_point));
            lut[i + 128] = (int8_t)et_quant_round_clamp(g / y.scale + (float)y.zero_point, -128, 127);
        }
    }
    {
        et_qparams x;
        act(lo, hi, c.layers * S, &x);
        for (i = 0; i < (int)Vp; i++) {
            const int8_t *q = v.wte_q + (size_t)i * C;
            int32_t sum = 0;
            size_t k;
            for (k = 0; k < C; k++) sum += q[k];
            ((float *)(uintptr_t)v.logit_s)[i] = x.scale * v.wte_s[i];
            ((int32_t *)(uintptr_t)v.logit_b)[i] = -x.zero_point * sum;
        }
    }
out:
    et_arena_release(scratch, mark);
    return st;
}

// --- the inverse (float blobs)

/* one stored float matrix back to dense (zeros where nothing is stored) and its mask */
static et_status unpack_mat(const et_cmat *d, const et_cmat_spec *s, float *w, uint8_t *mask)
{
    size_t n = (size_t)d->rows * (size_t)d->cols, e = 0, i;
    int o, g, j;
    if (w) ET_MEMSET(w, 0, n * sizeof(float));
    if (mask) ET_MEMSET(mask, 0, (n + 7) / 8);
#define SET(at, val) do { if (w) w[at] = (val); if (mask) mask[(at) >> 3] = (uint8_t)(mask[(at) >> 3] | (1u << ((at) & 7))); } while (0)
    if (s->format == ET_CMAT_DENSE) {
        for (i = 0; i < n; i++) SET(i, d->wf[i]);
    } else if (s->format == ET_CMAT_NM) {
        int bits = s->M <= 4 ? 2 : 4;
        for (o = 0; o < d->rows; o++)
            for (g = 0; g < d->cols / s->M; g++)
                for (j = 0; j < s->N; j++, e++) {
                    int pos = get_idx(d->sp.index, e, bits);
                    if (pos >= s->M) return ET_ERR_FORMAT;
                    SET((size_t)o * d->cols + (size_t)g * s->M + (size_t)pos, d->sp.vf[e]);
                }
    } else {
        for (i = 0; i < n; i++)
            if ((d->sp.index[i >> 3] >> (i & 7)) & 1) {
                if (e == s->nnz) return ET_ERR_FORMAT;
                SET(i, d->sp.vf[e]);
                e++;
            }
        if (e != s->nnz) return ET_ERR_FORMAT;
    }
#undef SET
    return ET_OK;
}

et_status et_cgpt_unpack(const et_gpt_config *cfg, et_cgpt_mode mode, const et_clinear_spec *spec,
                         const void *blob, size_t blob_bytes, float *params, et_clinear_dst *dst)
{
    et_gpt_config c;
    et_tensor_info t[ET_GPT_NTENSORS];
    et_cgpt v;
    size_t bytes, L, C;
    int i;
    et_status st;
    if (mode == ET_CGPT_W8A8) return ET_ERR_UNSUPPORTED;
    if (!params || !dst || !blob || ((uintptr_t)blob & (ET_ALIGN - 1))) return ET_ERR_INVALID;
    if ((st = et_cgpt_blob_bytes(cfg, mode, spec, &bytes)) != ET_OK) return st;
    if (blob_bytes < bytes) return ET_ERR_INVALID;
    c = *cfg;
    et_gpt_config_check(&c);
    L = (size_t)c.layers; C = (size_t)c.channels;
    et_gpt_tensors(&c, t);
    et__cgpt_walk(&c, mode, spec, blob, &v, 0, -1, &bytes);
#define CP(ti, src, n) ET_MEMCPY(params + t[ti].offset, (src), sizeof(float) * (n))
    CP(0, v.wte, (size_t)c.vocab_padded * C);
    CP(1, v.wpe, (size_t)c.context * C);
    CP(2, v.ln1w, L * C); CP(3, v.ln1b, L * C); CP(8, v.ln2w, L * C); CP(9, v.ln2b, L * C);
    CP(14, v.lnfw, C); CP(15, v.lnfb, C);
#undef CP
    for (i = 0; i < c.layers * ET_CGPT_LIN; i++) {
        int j = i % ET_CGPT_LIN, l = i / ET_CGPT_LIN, o, k, q;
        et_clin d;
        float *W;
        et__cgpt_walk(&c, mode, spec, blob, 0, &d, i, &bytes);
        W = params + t[w_tensor[j]].offset + (size_t)l * d.OC * d.K;
        ET_MEMCPY(params + t[b_tensor[j]].offset + (size_t)l * d.OC, d.bias, sizeof(float) * (size_t)d.OC);
        if (!d.rank) {
            if ((st = unpack_mat(&d.w, &spec[i].w, W, dst[i].wmask)) != ET_OK) return st;
            continue;
        }
        if (!dst[i].a || !dst[i].b) return ET_ERR_INVALID;
        if ((st = unpack_mat(&d.b, &spec[i].b, dst[i].b, dst[i].bmask)) != ET_OK ||
            (st = unpack_mat(&d.a, &spec[i].a, dst[i].a, dst[i].amask)) != ET_OK)
            return st;
        for (o = 0; o < d.OC; o++)
            for (k = 0; k < d.K; k++) {
                float acc = 0.0f;
                for (q = 0; q < d.rank; q++) acc += dst[i].a[(size_t)o * d.rank + q] * dst[i].b[(size_t)q * d.K + k];
                W[(size_t)o * d.K + k] = acc;
            }
    }
    return ET_OK;
}

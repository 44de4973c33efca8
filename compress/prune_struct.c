/* prune_struct.c - structured pruning of the GPT (et_prune_struct.h): importance scores
 * of heads and MLP neurons, the per-layer choice of the units kept, and the copy of the
 * kept rows and columns into the smaller model's parameter block.
 *
 * Scores are plain loops in double over caller memory; the observer reads the
 * activations a training-mode forward keeps (the same ones backward uses), so it needs no
 * second forward of its own. Selection ranks every unit against every other in its layer
 * (O(n^2) per layer, no sort and no scratch; n is at most the MLP width).
 * Deliberately avoids: allocation, and any change to the input parameters.
 */
#include "et_prune_struct.h"

et_status et_prune_struct_config(const et_gpt_config *cfg, int heads, int ffn, et_gpt_config *out)
{
    et_gpt_config c;
    if (!cfg || !out) return ET_ERR_INVALID;
    c = *cfg;
    if (et_gpt_config_check(&c) != ET_OK) return ET_ERR_INVALID;
    if (heads < 1 || heads > c.heads || ffn < 1 || ffn > et_gpt_ffn_width(&c)) return ET_ERR_RANGE;
    c.head_dim = et_gpt_head_dim(&c);
    c.heads = heads;
    c.ffn = ffn;
    if (et_gpt_config_check(&c) != ET_OK) return ET_ERR_INVALID;
    *out = c;
    return ET_OK;
}

static double sumsq(const float *x, size_t n, size_t stride)
{
    double s = 0.0;
    size_t i;
    for (i = 0; i < n; i++) s += (double)x[i * stride] * x[i * stride];
    return s;
}

et_status et_prune_struct_weight_scores(const et_gpt_config *cfg, const float *params,
                                        float *head_scores, float *neuron_scores)
{
    et_gpt_config c;
    et_tensor_info t[ET_GPT_NTENSORS];
    size_t C, A, F, HS, NH, l, h, j, p, d;
    if (!cfg || !params) return ET_ERR_INVALID;
    c = *cfg;
    if (et_gpt_config_check(&c) != ET_OK) return ET_ERR_INVALID;
    et_gpt_tensors(&c, t);
    C = (size_t)c.channels; A = (size_t)et_gpt_attn_width(&c); F = (size_t)et_gpt_ffn_width(&c);
    HS = (size_t)et_gpt_head_dim(&c); NH = (size_t)c.heads;
    for (l = 0; l < (size_t)c.layers; l++) {
        const float *qkv = params + t[4].offset + l * 3 * A * C, *ap = params + t[6].offset + l * C * A;
        const float *fc = params + t[10].offset + l * F * C, *fp = params + t[12].offset + l * C * F;
        if (head_scores)
            for (h = 0; h < NH; h++) {
                double s = 0.0;
                for (p = 0; p < 3; p++) s += sumsq(qkv + (p * A + h * HS) * C, HS * C, 1);
                for (d = 0; d < HS; d++) s += sumsq(ap + h * HS + d, C, A);
                head_scores[l * NH + h] = (float)s;
            }
        if (neuron_scores)
            for (j = 0; j < F; j++)
                neuron_scores[l * F + j] = (float)(sumsq(fc + j * C, C, 1) + sumsq(fp + j, C, F));
    }
    return ET_OK;
}

et_status et_prune_struct_observe(const et_gpt *m, double *head_acc, double *neuron_acc)
{
    const et_gpt_acts *a;
    size_t BT, C, A, F, HS, NH, l, r, h, c, d, j;
    if (!m) return ET_ERR_INVALID;
    if (m->layer_stride != 1 || m->fwd_B <= 0 || m->be->dev_arena) return ET_ERR_STATE;
    a = &m->acts;
    BT = (size_t)m->fwd_B * m->fwd_T; /* the forward lays layers out by its own B*T */
    C = (size_t)m->cfg.channels; A = (size_t)et_gpt_attn_width(&m->cfg);
    F = (size_t)et_gpt_ffn_width(&m->cfg); HS = (size_t)et_gpt_head_dim(&m->cfg);
    NH = (size_t)m->cfg.heads;
    for (l = 0; l < (size_t)m->cfg.layers; l++) {
        const float *W = m->params.attprojw + l * C * A, *Wf = m->params.fcprojw + l * C * F;
        const float *y = a->atty + l * BT * A, *g = a->fch_gelu + l * BT * F;
        if (head_acc)
            for (r = 0; r < BT; r++)
                for (h = 0; h < NH; h++) {
                    const float *yh = y + r * A + h * HS;
                    double e = 0.0;
                    for (c = 0; c < C; c++) {
                        const float *w = W + c * A + h * HS;
                        float s = 0.0f;
                        for (d = 0; d < HS; d++) s += w[d] * yh[d];
                        e += (double)s * s;
                    }
                    head_acc[l * NH + h] += e;
                }
        if (neuron_acc)
            for (j = 0; j < F; j++) /* rank one: ||g_j w_j||^2 = g_j^2 ||w_j||^2 */
                neuron_acc[l * F + j] += sumsq(g + j, BT, F) * sumsq(Wf + j, C, F);
    }
    return ET_OK;
}

et_status et_prune_struct_select(const float *scores, int layers, int n, int keep, int *idx)
{
    int l, i, k, o;
    if (!scores || !idx || layers < 1 || n < 1) return ET_ERR_INVALID;
    if (keep < 1 || keep > n) return ET_ERR_RANGE;
    for (i = 0; i < layers * n; i++)
        if (!(scores[i] >= 0.0f && scores[i] <= 3.4e38f)) return ET_ERR_RANGE;
    for (l = 0; l < layers; l++) {
        const float *s = scores + (size_t)l * n;
        o = 0;
        for (i = 0; i < n; i++) {
            int rank = 0; /* units ahead of i: a larger score, or an equal one at a lower index */
            for (k = 0; k < n; k++) rank += s[k] > s[i] || (s[k] == s[i] && k < i);
            if (rank < keep) idx[(size_t)l * keep + o++] = i;
        }
    }
    return ET_OK;
}

/* idx (L, keep) strictly ascending within 0..n-1 per layer */
static int idx_ok(const int *idx, int L, int keep, int n)
{
    int l, i;
    for (l = 0; l < L; l++)
        for (i = 0; i < keep; i++) {
            int v = idx[(size_t)l * keep + i];
            if (v < 0 || v >= n || (i > 0 && v <= idx[(size_t)l * keep + i - 1])) return 0;
        }
    return 1;
}

et_status et_prune_struct_shrink(const et_gpt_config *cfg, const float *params,
                                 const int *head_idx, const int *neuron_idx,
                                 const et_gpt_config *out_cfg, float *out)
{
    /* tensors whose shape does not depend on A or F */
    static const int same[10] = {0, 1, 2, 3, 7, 8, 9, 13, 14, 15};
    et_gpt_config c, o;
    et_tensor_info ti[ET_GPT_NTENSORS], to[ET_GPT_NTENSORS];
    size_t C, A, Ao, F, Fo, HS, NHo, l, i, p, r, k;
    if (!cfg || !params || !out_cfg || !out) return ET_ERR_INVALID;
    c = *cfg;
    o = *out_cfg;
    if (et_gpt_config_check(&c) != ET_OK || et_gpt_config_check(&o) != ET_OK) return ET_ERR_INVALID;
    if (o.vocab != c.vocab || o.context != c.context || o.layers != c.layers || o.channels != c.channels ||
        o.heads > c.heads || et_gpt_head_dim(&o) != et_gpt_head_dim(&c) ||
        et_gpt_ffn_width(&o) > et_gpt_ffn_width(&c))
        return ET_ERR_INVALID;
    if ((!head_idx && o.heads != c.heads) || (!neuron_idx && et_gpt_ffn_width(&o) != et_gpt_ffn_width(&c)))
        return ET_ERR_INVALID;
    if ((head_idx && !idx_ok(head_idx, c.layers, o.heads, c.heads)) ||
        (neuron_idx && !idx_ok(neuron_idx, c.layers, et_gpt_ffn_width(&o), et_gpt_ffn_width(&c))))
        return ET_ERR_INVALID;
    et_gpt_tensors(&c, ti);
    et_gpt_tensors(&o, to);
    C = (size_t)c.channels; HS = (size_t)et_gpt_head_dim(&c); NHo = (size_t)o.heads;
    A = (size_t)et_gpt_attn_width(&c); Ao = (size_t)et_gpt_attn_width(&o);
    F = (size_t)et_gpt_ffn_width(&c); Fo = (size_t)et_gpt_ffn_width(&o);
    for (k = 0; k < 10; k++)
        ET_MEMCPY(out + to[same[k]].offset, params + ti[same[k]].offset, ti[same[k]].count * sizeof(float));
    for (l = 0; l < (size_t)c.layers; l++) {
        const float *qw = params + ti[4].offset + l * 3 * A * C, *qb = params + ti[5].offset + l * 3 * A;
        const float *aw = params + ti[6].offset + l * C * A;
        const float *fw = params + ti[10].offset + l * F * C, *fb = params + ti[11].offset + l * F;
        const float *pw = params + ti[12].offset + l * C * F;
        float *qwo = out + to[4].offset + l * 3 * Ao * C, *qbo = out + to[5].offset + l * 3 * Ao;
        float *awo = out + to[6].offset + l * C * Ao;
        float *fwo = out + to[10].offset + l * Fo * C, *fbo = out + to[11].offset + l * Fo;
        float *pwo = out + to[12].offset + l * C * Fo;
        for (i = 0; i < NHo; i++) {
            size_t h = head_idx ? (size_t)head_idx[l * NHo + i] : i;
            for (p = 0; p < 3; p++) { /* q, k and v rows of the head, and their biases */
                ET_MEMCPY(qwo + (p * Ao + i * HS) * C, qw + (p * A + h * HS) * C, HS * C * sizeof(float));
                ET_MEMCPY(qbo + p * Ao + i * HS, qb + p * A + h * HS, HS * sizeof(float));
            }
            for (r = 0; r < C; r++) /* attproj's input columns of the head */
                ET_MEMCPY(awo + r * Ao + i * HS, aw + r * A + h * HS, HS * sizeof(float));
        }
        for (i = 0; i < Fo; i++) {
            size_t j = neuron_idx ? (size_t)neuron_idx[l * Fo + i] : i;
            ET_MEMCPY(fwo + i * C, fw + j * C, C * sizeof(float));
            fbo[i] = fb[j];
            for (r = 0; r < C; r++) pwo[r * Fo + i] = pw[r * F + j];
        }
    }
    return ET_OK;
}

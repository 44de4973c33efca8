/* norm.cl - row-wise kernels, one work-group of LS items per row: LayerNorm forward
 * and the row half of its backward, softmax cross-entropy; plus the column half of the
 * LayerNorm backward (one item per column, rows in order like the cpu backend). */

__kernel void layernorm_fwd(__global float *M, ulong o_out, ulong o_mean, ulong o_rstd,
                            ulong o_inp, ulong o_w, ulong o_b, int C)
{
    __local float buf[LS];
    size_t r = get_group_id(0);
    int l = (int)get_local_id(0), i;
    __global const float *x = M + o_inp + r * C;
    __global float *o = M + o_out + r * C;
    float s = 0.0f, m, v, rs;
    for (i = l; i < C; i += LS) s += x[i];
    m = wg_sum(buf, s) / (float)C;
    s = 0.0f;
    for (i = l; i < C; i += LS) {
        float d = x[i] - m;
        s += d * d;
    }
    v = wg_sum(buf, s) / (float)C;
    rs = 1.0f / sqrt(v + 1e-5f);
    for (i = l; i < C; i += LS) o[i] = (x[i] - m) * rs * M[o_w + i] + M[o_b + i];
    if (l == 0) {
        M[o_mean + r] = m;
        M[o_rstd + r] = rs;
    }
}

/* dinp += rstd * (g - mean(g) - norm * mean(g * norm)), g = dout * w */
__kernel void layernorm_bwd_rows(__global float *M, ulong o_dinp, ulong o_dout, ulong o_inp,
                                 ulong o_w, ulong o_mean, ulong o_rstd, int C)
{
    __local float buf[LS];
    size_t r = get_group_id(0);
    int l = (int)get_local_id(0), i;
    __global const float *x = M + o_inp + r * C, *dy = M + o_dout + r * C, *w = M + o_w;
    __global float *dx = M + o_dinp + r * C;
    float m = M[o_mean + r], s = M[o_rstd + r], a = 0.0f, b = 0.0f, gm, gnm;
    for (i = l; i < C; i += LS) {
        float g = dy[i] * w[i];
        a += g;
        b += g * (x[i] - m) * s;
    }
    gm = wg_sum(buf, a) / (float)C;
    gnm = wg_sum(buf, b) / (float)C;
    for (i = l; i < C; i += LS) {
        float g = dy[i] * w[i], n = (x[i] - m) * s;
        dx[i] += (g - gm - n * gnm) * s;
    }
}

/* dw += sum_r dout * norm, db += sum_r dout; one item per column */
__kernel void layernorm_bwd_cols(__global float *M, ulong o_dw, ulong o_db, ulong o_dout,
                                 ulong o_inp, ulong o_mean, ulong o_rstd, int N, int C)
{
    size_t c = get_global_id(0), r;
    float sw = 0.0f, sb = 0.0f;
    if (c >= (size_t)C) return;
    for (r = 0; r < (size_t)N; r++) {
        float dy = M[o_dout + r * C + c];
        sw += dy * (M[o_inp + r * C + c] - M[o_mean + r]) * M[o_rstd + r];
        sb += dy;
    }
    M[o_dw + c] += sw;
    M[o_db + c] += sb;
}

/* probs = softmax over the first V of Vp logits (padded columns 0);
 * losses[r] = -log probs[target] when has_tg */
__kernel void crossentropy_fwd(__global float *M, __global const int *tg, ulong o_loss,
                               ulong o_probs, ulong o_logits, int has_tg, int V, int Vp)
{
    __local float buf[LS];
    size_t r = get_group_id(0);
    int l = (int)get_local_id(0), i;
    __global const float *x = M + o_logits + r * Vp;
    __global float *p = M + o_probs + r * Vp;
    float mx = -INFINITY, s = 0.0f, inv;
    for (i = l; i < V; i += LS) mx = fmax(mx, x[i]);
    mx = wg_max(buf, mx);
    for (i = l; i < V; i += LS) {
        float e = exp(x[i] - mx);
        p[i] = e;
        s += e;
    }
    inv = 1.0f / wg_sum(buf, s);
    for (i = l; i < V; i += LS) p[i] *= inv;
    for (i = V + l; i < Vp; i += LS) p[i] = 0.0f;
    if (has_tg && l == 0) M[o_loss + r] = -log(exp(x[tg[r]] - mx) * inv);
}

/* dlogits += (probs - onehot(target)) * dloss over the first V columns */
__kernel void crossentropy_bwd(__global float *M, __global const int *tg, ulong o_dlogits,
                               ulong o_probs, float dloss, int N, int V, int Vp)
{
    size_t i = get_global_id(0), r, c, k;
    if (i >= (size_t)N * V) return;
    r = i / V;
    c = i % V;
    k = r * Vp + c;
    M[o_dlogits + k] += (M[o_probs + k] - ((int)c == tg[r] ? 1.0f : 0.0f)) * dloss;
}

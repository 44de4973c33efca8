/* attention.cl - causal multi-head attention over qkv(B,T,3C), scores kept as
 * preatt/att (B,NH,T,T) for backward (zero above the diagonal), hs = C / NH.
 * Forward: one group per query row for scores and softmax, then one item per output
 * element. Backward: no atomics; every output element is owned by one item that loops
 * over what feeds it, so results repeat run to run. */

/* one group of LS items per (b, h, t) row */
__kernel void attention_scores(__global float *M, ulong o_pre, ulong o_att, ulong o_qkv,
                               int T, int C, int NH)
{
    __local float buf[LS];
    size_t row = get_group_id(0); /* (b * NH + h) * T + t */
    int l = (int)get_local_id(0), t = (int)(row % T), bh = (int)(row / T);
    int b = bh / NH, h = bh % NH, hs = C / NH, C3 = 3 * C, t2, i;
    float scale = 1.0f / sqrt((float)hs), mx = -INFINITY, s = 0.0f, inv;
    __global const float *q = M + o_qkv + ((size_t)b * T + t) * C3 + h * hs;
    __global float *pre = M + o_pre + row * T, *a = M + o_att + row * T;
    for (t2 = l; t2 <= t; t2 += LS) {
        __global const float *k = M + o_qkv + ((size_t)b * T + t2) * C3 + C + h * hs;
        float d = 0.0f;
        for (i = 0; i < hs; i++) d += q[i] * k[i];
        d *= scale;
        pre[t2] = d;
        mx = fmax(mx, d);
    }
    mx = wg_max(buf, mx);
    for (t2 = l; t2 <= t; t2 += LS) {
        float e = exp(pre[t2] - mx);
        a[t2] = e;
        s += e;
    }
    inv = 1.0f / wg_sum(buf, s);
    for (t2 = l; t2 <= t; t2 += LS) a[t2] *= inv;
    for (t2 = t + 1 + l; t2 < T; t2 += LS) a[t2] = pre[t2] = 0.0f;
}

/* out[b,t,h,i] = sum_{t2<=t} att[b,h,t,t2] * v[b,t2,h,i]; one item per output element */
__kernel void attention_out(__global float *M, ulong o_out, ulong o_att, ulong o_qkv, int BT,
                            int T, int C, int NH)
{
    size_t e = get_global_id(0);
    int r, c, b, t, h, hs = C / NH, i, t2;
    __global const float *a;
    float s = 0.0f;
    if (e >= (size_t)BT * C) return;
    r = (int)(e / C); c = (int)(e % C);
    b = r / T; t = r % T; h = c / hs; i = c % hs;
    a = M + o_att + (((size_t)b * NH + h) * T + t) * T;
    for (t2 = 0; t2 <= t; t2++) s += a[t2] * M[o_qkv + ((size_t)b * T + t2) * 3 * C + 2 * C + h * hs + i];
    M[o_out + e] = s;
}

/* datt[b,h,t,t2] += v[t2] . dout[t] for t2 <= t; one item per (b,h,t,t2) */
__kernel void attention_bwd_datt(__global float *M, ulong o_datt, ulong o_dout, ulong o_qkv,
                                 int B, int T, int C, int NH)
{
    size_t e = get_global_id(0), row;
    int t2, t, bh, b, h, hs = C / NH, i;
    __global const float *v, *dy;
    float s = 0.0f;
    if (e >= (size_t)B * NH * T * T) return;
    t2 = (int)(e % T); row = e / T; t = (int)(row % T); bh = (int)(row / T);
    if (t2 > t) return;
    b = bh / NH; h = bh % NH;
    v = M + o_qkv + ((size_t)b * T + t2) * 3 * C + 2 * C + h * hs;
    dy = M + o_dout + ((size_t)b * T + t) * C + h * hs;
    for (i = 0; i < hs; i++) s += v[i] * dy[i];
    M[o_datt + e] += s;
}

/* dpre += att * (datt - sum(att * datt)) * scale over t2 <= t; one group per row. The
 * scale of pre = scale * q.k is folded in here (as the cpu backend does), so dq and dk
 * take none. */
__kernel void attention_bwd_dpre(__global float *M, ulong o_dpre, ulong o_datt, ulong o_att, int T,
                                 float scale)
{
    __local float buf[LS];
    size_t row = get_group_id(0);
    int l = (int)get_local_id(0), t = (int)(row % T), t2;
    __global const float *a = M + o_att + row * T, *da = M + o_datt + row * T;
    __global float *dp = M + o_dpre + row * T;
    float s = 0.0f, dot;
    for (t2 = l; t2 <= t; t2 += LS) s += a[t2] * da[t2];
    dot = wg_sum(buf, s);
    for (t2 = l; t2 <= t; t2 += LS) dp[t2] += a[t2] * (da[t2] - dot) * scale;
}

/* dq[b,t,h,i] += sum_{t2<=t} dpre[b,h,t,t2] * k[b,t2,h,i]; one item per element */
__kernel void attention_bwd_dq(__global float *M, ulong o_dqkv, ulong o_dpre, ulong o_qkv,
                               int BT, int T, int C, int NH)
{
    size_t e = get_global_id(0);
    int r, c, b, t, h, hs = C / NH, i, t2;
    __global const float *dp;
    float s = 0.0f;
    if (e >= (size_t)BT * C) return;
    r = (int)(e / C); c = (int)(e % C);
    b = r / T; t = r % T; h = c / hs; i = c % hs;
    dp = M + o_dpre + (((size_t)b * NH + h) * T + t) * T;
    for (t2 = 0; t2 <= t; t2++) s += dp[t2] * M[o_qkv + ((size_t)b * T + t2) * 3 * C + C + h * hs + i];
    M[o_dqkv + (size_t)r * 3 * C + c] += s;
}

/* dk[b,t2,h,i] += sum_{t>=t2} dpre[b,h,t,t2] * q[b,t,h,i] and
 * dv[b,t2,h,i] += sum_{t>=t2} att[b,h,t,t2] * dout[b,t,h,i]; one item per element */
__kernel void attention_bwd_dkv(__global float *M, ulong o_dqkv, ulong o_dpre, ulong o_att,
                                ulong o_dout, ulong o_qkv, int BT, int T, int C, int NH)
{
    size_t e = get_global_id(0), base;
    int r, c, b, t2, h, hs = C / NH, i, t;
    float sk = 0.0f, sv = 0.0f;
    if (e >= (size_t)BT * C) return;
    r = (int)(e / C); c = (int)(e % C);
    b = r / T; t2 = r % T; h = c / hs; i = c % hs;
    base = ((size_t)b * NH + h) * T * T;
    for (t = t2; t < T; t++) {
        size_t at = base + (size_t)t * T + t2;
        sk += M[o_dpre + at] * M[o_qkv + ((size_t)b * T + t) * 3 * C + h * hs + i];
        sv += M[o_att + at] * M[o_dout + ((size_t)b * T + t) * C + h * hs + i];
    }
    M[o_dqkv + (size_t)r * 3 * C + C + c] += sk;
    M[o_dqkv + (size_t)r * 3 * C + 2 * C + c] += sv;
}

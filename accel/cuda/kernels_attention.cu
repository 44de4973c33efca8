/* kernels_attention.cu - causal multi-head attention over qkv(B,T,3C), scores kept as
 * preatt/att (B,NH,T,T) for backward (zero above the diagonal), hs = C / NH.
 * Forward: a block per (b, h, t) query row computes the scores and their softmax with
 * shared-memory reductions, then a thread per output element sums att . v. Backward:
 * no atomics; every output element belongs to one thread that loops over what feeds
 * it. O(T^2) memory like the cpu backend; not flash attention. */
#include "et_cuda_reduce.cuh"

#define LAUNCH_CHECK() return (int)cudaGetLastError()
#define RT ET_CU_ROW_THREADS

static __global__ void k_scores(float *preatt, float *att, const float *qkv, int T, int C, int NH)
{
    __shared__ float sh[RT];
    size_t row = blockIdx.x; /* (b * NH + h) * T + t */
    int l = threadIdx.x, t = (int)(row % T), bh = (int)(row / T);
    int b = bh / NH, h = bh % NH, hs = C / NH, C3 = 3 * C, t2, i;
    float scale = 1.0f / sqrtf((float)hs), mx = -INFINITY, s = 0.0f, inv;
    const float *q = qkv + ((size_t)b * T + t) * C3 + h * hs;
    float *pre = preatt + row * T, *a = att + row * T;
    for (t2 = l; t2 <= t; t2 += RT) {
        const float *k = qkv + ((size_t)b * T + t2) * C3 + C + h * hs;
        float d = 0.0f;
        for (i = 0; i < hs; i++) d += q[i] * k[i];
        d *= scale;
        pre[t2] = d;
        mx = fmaxf(mx, d);
    }
    mx = et_block_max(mx, sh);
    for (t2 = l; t2 <= t; t2 += RT) {
        float e = expf(pre[t2] - mx);
        a[t2] = e;
        s += e;
    }
    inv = 1.0f / et_block_sum(s, sh);
    for (t2 = l; t2 <= t; t2 += RT) a[t2] *= inv;
    for (t2 = t + 1 + l; t2 < T; t2 += RT) a[t2] = pre[t2] = 0.0f;
}

/* out[b,t,h,i] = sum_{t2<=t} att[b,h,t,t2] * v[b,t2,h,i] */
static __global__ void k_att_out(float *out, const float *att, const float *qkv, int BT, int T,
                                 int C, int NH)
{
    size_t e = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    int r, c, b, t, h, hs = C / NH, i, t2;
    const float *a;
    float s = 0.0f;
    if (e >= (size_t)BT * C) return;
    r = (int)(e / C); c = (int)(e % C);
    b = r / T; t = r % T; h = c / hs; i = c % hs;
    a = att + (((size_t)b * NH + h) * T + t) * T;
    for (t2 = 0; t2 <= t; t2++) s += a[t2] * qkv[((size_t)b * T + t2) * 3 * C + 2 * C + h * hs + i];
    out[e] = s;
}

/* datt[b,h,t,t2] += v[t2] . dout[t] for t2 <= t */
static __global__ void k_bwd_datt(float *datt, const float *dout, const float *qkv, int B, int T,
                                  int C, int NH)
{
    size_t e = (size_t)blockIdx.x * blockDim.x + threadIdx.x, row;
    int t2, t, bh, b, h, hs = C / NH, i;
    const float *v, *dy;
    float s = 0.0f;
    if (e >= (size_t)B * NH * T * T) return;
    t2 = (int)(e % T); row = e / T; t = (int)(row % T); bh = (int)(row / T);
    if (t2 > t) return;
    b = bh / NH; h = bh % NH;
    v = qkv + ((size_t)b * T + t2) * 3 * C + 2 * C + h * hs;
    dy = dout + ((size_t)b * T + t) * C + h * hs;
    for (i = 0; i < hs; i++) s += v[i] * dy[i];
    datt[e] += s;
}

/* dpre += att * (datt - sum(att * datt)) * scale: the scale of the scores is folded in
 * here (as in the cpu backend), so dq and dk take none */
static __global__ void k_bwd_dpre(float *dpre, const float *datt, const float *att, int T, float scale)
{
    __shared__ float sh[RT];
    size_t row = blockIdx.x;
    int l = threadIdx.x, t = (int)(row % T), t2;
    const float *a = att + row * T, *da = datt + row * T;
    float *dp = dpre + row * T, s = 0.0f, dot;
    for (t2 = l; t2 <= t; t2 += RT) s += a[t2] * da[t2];
    dot = et_block_sum(s, sh);
    for (t2 = l; t2 <= t; t2 += RT) dp[t2] += a[t2] * (da[t2] - dot) * scale;
}

/* dq[b,t,h,i] += sum_{t2<=t} dpre[b,h,t,t2] * k[b,t2,h,i] */
static __global__ void k_bwd_dq(float *dqkv, const float *dpre, const float *qkv, int BT, int T,
                                int C, int NH)
{
    size_t e = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    int r, c, b, t, h, hs = C / NH, i, t2;
    const float *dp;
    float s = 0.0f;
    if (e >= (size_t)BT * C) return;
    r = (int)(e / C); c = (int)(e % C);
    b = r / T; t = r % T; h = c / hs; i = c % hs;
    dp = dpre + (((size_t)b * NH + h) * T + t) * T;
    for (t2 = 0; t2 <= t; t2++) s += dp[t2] * qkv[((size_t)b * T + t2) * 3 * C + C + h * hs + i];
    dqkv[(size_t)r * 3 * C + c] += s;
}

/* dk[b,t2,h,i] += sum_{t>=t2} dpre[b,h,t,t2] q[b,t,h,i]; dv += sum_{t>=t2} att dout */
static __global__ void k_bwd_dkv(float *dqkv, const float *dpre, const float *att,
                                 const float *dout, const float *qkv, int BT, int T, int C, int NH)
{
    size_t e = (size_t)blockIdx.x * blockDim.x + threadIdx.x, base;
    int r, c, b, t2, h, hs = C / NH, i, t;
    float sk = 0.0f, sv = 0.0f;
    if (e >= (size_t)BT * C) return;
    r = (int)(e / C); c = (int)(e % C);
    b = r / T; t2 = r % T; h = c / hs; i = c % hs;
    base = ((size_t)b * NH + h) * T * T;
    for (t = t2; t < T; t++) {
        size_t at = base + (size_t)t * T + t2;
        sk += dpre[at] * qkv[((size_t)b * T + t) * 3 * C + h * hs + i];
        sv += att[at] * dout[((size_t)b * T + t) * C + h * hs + i];
    }
    dqkv[(size_t)r * 3 * C + C + c] += sk;
    dqkv[(size_t)r * 3 * C + 2 * C + c] += sv;
}

extern "C" {

int et__cu_attention_fwd(cudaStream_t s, float *out, float *preatt, float *att, const float *qkv,
                         int B, int T, int C, int NH)
{
    size_t BT = (size_t)B * T;
    if (BT == 0) return 0;
    k_scores<<<(unsigned)((size_t)B * NH * T), RT, 0, s>>>(preatt, att, qkv, T, C, NH);
    k_att_out<<<et_blocks(BT * C), 256, 0, s>>>(out, att, qkv, (int)BT, T, C, NH);
    LAUNCH_CHECK();
}

int et__cu_attention_bwd(cudaStream_t s, float *dqkv, float *dpreatt, float *datt,
                         const float *dout, const float *qkv, const float *att, int B, int T,
                         int C, int NH)
{
    size_t BT = (size_t)B * T, A = (size_t)B * NH * T * T;
    if (BT == 0) return 0;
    k_bwd_datt<<<et_blocks(A), 256, 0, s>>>(datt, dout, qkv, B, T, C, NH);
    k_bwd_dpre<<<(unsigned)((size_t)B * NH * T), RT, 0, s>>>(dpreatt, datt, att, T,
                                                             1.0f / sqrtf((float)(C / NH)));
    k_bwd_dq<<<et_blocks(BT * C), 256, 0, s>>>(dqkv, dpreatt, qkv, (int)BT, T, C, NH);
    k_bwd_dkv<<<et_blocks(BT * C), 256, 0, s>>>(dqkv, dpreatt, att, dout, qkv, (int)BT, T, C, NH);
    LAUNCH_CHECK();
}

} /* extern "C" */

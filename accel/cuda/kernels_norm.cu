/* kernels_norm.cu - a block of ET_CU_ROW_THREADS per row with a shared-memory
 * reduction: LayerNorm forward and the row half of its backward, softmax
 * cross-entropy; the column half of the LayerNorm backward is one thread per column
 * walking the rows in order, like the cpu backend. */
#include "et_cuda_reduce.cuh"

#define LAUNCH_CHECK() return (int)cudaGetLastError()
#define RT ET_CU_ROW_THREADS

static __global__ void k_layernorm_fwd(float *out, float *mean, float *rstd, const float *inp,
                                       const float *w, const float *b, int C)
{
    __shared__ float sh[RT];
    size_t r = blockIdx.x;
    int l = threadIdx.x, i;
    const float *x = inp + r * C;
    float *o = out + r * C, s = 0.0f, m, v, rs;
    for (i = l; i < C; i += RT) s += x[i];
    m = et_block_sum(s, sh) / (float)C;
    s = 0.0f;
    for (i = l; i < C; i += RT) {
        float d = x[i] - m;
        s += d * d;
    }
    v = et_block_sum(s, sh) / (float)C;
    rs = 1.0f / sqrtf(v + 1e-5f);
    for (i = l; i < C; i += RT) o[i] = (x[i] - m) * rs * w[i] + b[i];
    if (l == 0) {
        mean[r] = m;
        rstd[r] = rs;
    }
}

/* dinp += rstd * (g - mean(g) - norm * mean(g * norm)), g = dout * w */
static __global__ void k_layernorm_bwd_rows(float *dinp, const float *dout, const float *inp,
                                            const float *w, const float *mean, const float *rstd,
                                            int C)
{
    __shared__ float sh[RT];
    size_t r = blockIdx.x;
    int l = threadIdx.x, i;
    const float *x = inp + r * C, *dy = dout + r * C;
    float *dx = dinp + r * C, m = mean[r], s = rstd[r], a = 0.0f, b = 0.0f, gm, gnm;
    for (i = l; i < C; i += RT) {
        float g = dy[i] * w[i];
        a += g;
        b += g * (x[i] - m) * s;
    }
    gm = et_block_sum(a, sh) / (float)C;
    gnm = et_block_sum(b, sh) / (float)C;
    for (i = l; i < C; i += RT) {
        float g = dy[i] * w[i], n = (x[i] - m) * s;
        dx[i] += (g - gm - n * gnm) * s;
    }
}

static __global__ void k_layernorm_bwd_cols(float *dw, float *db, const float *dout,
                                            const float *inp, const float *mean,
                                            const float *rstd, int N, int C)
{
    int c = blockIdx.x * blockDim.x + threadIdx.x, r;
    float sw = 0.0f, sb = 0.0f;
    if (c >= C) return;
    for (r = 0; r < N; r++) {
        float dy = dout[(size_t)r * C + c];
        sw += dy * (inp[(size_t)r * C + c] - mean[r]) * rstd[r];
        sb += dy;
    }
    dw[c] += sw;
    db[c] += sb;
}

/* softmax over the first V of Vp logits (padded columns 0); loss when tg != NULL */
static __global__ void k_crossentropy_fwd(float *losses, float *probs, const float *logits,
                                          const int *tg, int V, int Vp)
{
    __shared__ float sh[RT];
    size_t r = blockIdx.x;
    int l = threadIdx.x, i;
    const float *x = logits + r * Vp;
    float *p = probs + r * Vp, mx = -INFINITY, s = 0.0f, inv;
    for (i = l; i < V; i += RT) mx = fmaxf(mx, x[i]);
    mx = et_block_max(mx, sh);
    for (i = l; i < V; i += RT) {
        float e = expf(x[i] - mx);
        p[i] = e;
        s += e;
    }
    inv = 1.0f / et_block_sum(s, sh);
    for (i = l; i < V; i += RT) p[i] *= inv;
    for (i = V + l; i < Vp; i += RT) p[i] = 0.0f;
    if (tg && l == 0) losses[r] = -logf(expf(x[tg[r]] - mx) * inv);
}

static __global__ void k_crossentropy_bwd(float *dlogits, const float *probs, const int *tg,
                                          float dloss, int N, int V, int Vp)
{
    size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x, r, c, k;
    if (i >= (size_t)N * V) return;
    r = i / V;
    c = i % V;
    k = r * Vp + c;
    dlogits[k] += (probs[k] - ((int)c == tg[r] ? 1.0f : 0.0f)) * dloss;
}

extern "C" {

int et__cu_layernorm_fwd(cudaStream_t s, float *out, float *mean, float *rstd, const float *inp,
                         const float *w, const float *b, int N, int C)
{
    if (N <= 0) return 0;
    k_layernorm_fwd<<<N, RT, 0, s>>>(out, mean, rstd, inp, w, b, C);
    LAUNCH_CHECK();
}

int et__cu_layernorm_bwd(cudaStream_t s, float *dinp, float *dw, float *db, const float *dout,
                         const float *inp, const float *w, const float *mean, const float *rstd,
                         int N, int C)
{
    if (N <= 0) return 0;
    k_layernorm_bwd_rows<<<N, RT, 0, s>>>(dinp, dout, inp, w, mean, rstd, C);
    k_layernorm_bwd_cols<<<et_blocks((size_t)C), 256, 0, s>>>(dw, db, dout, inp, mean, rstd, N, C);
    LAUNCH_CHECK();
}

int et__cu_crossentropy_fwd(cudaStream_t s, float *losses, float *probs, const float *logits,
                            const int *tg, int N, int V, int Vp)
{
    if (N <= 0) return 0;
    k_crossentropy_fwd<<<N, RT, 0, s>>>(losses, probs, logits, tg, V, Vp);
    LAUNCH_CHECK();
}

int et__cu_crossentropy_bwd(cudaStream_t s, float *dlogits, const float *probs, const int *tg,
                            float dloss, int N, int V, int Vp)
{
    k_crossentropy_bwd<<<et_blocks((size_t)N * V), 256, 0, s>>>(dlogits, probs, tg, dloss, N, V, Vp);
    LAUNCH_CHECK();
}

} /* extern "C" */

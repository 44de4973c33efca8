/* kernels_elementwise.cu - one thread per element (or per column, where a column sum
 * must stay in row order): bias, GELU, residual, accumulate, scale, embeddings, AdamW,
 * sum of squares. Plain and honest: no vector loads, no fusion. */
#include "et_cuda_reduce.cuh"

#define GELU_K 0.7978845608028654f /* sqrt(2/pi) */
#define LAUNCH_CHECK() return (int)cudaGetLastError()

static __global__ void k_bias_add(float *out, const float *bias, int N, int OC)
{
    size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i < (size_t)N * OC) out[i] += bias[i % OC];
}

/* one thread per column, rows in order (as the cpu backend) */
static __global__ void k_bias_bwd(float *dbias, const float *dout, int N, int OC)
{
    int o = blockIdx.x * blockDim.x + threadIdx.x, r;
    float s = 0.0f;
    if (o >= OC) return;
    for (r = 0; r < N; r++) s += dout[(size_t)r * OC + o];
    dbias[o] += s;
}

static __global__ void k_gelu_fwd(float *out, const float *inp, size_t n)
{
    size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) {
        float x = inp[i];
        out[i] = 0.5f * x * (1.0f + tanhf(GELU_K * (x + 0.044715f * x * x * x)));
    }
}

static __global__ void k_gelu_bwd(float *dinp, const float *inp, const float *dout, size_t n)
{
    size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) {
        float x = inp[i], th = tanhf(GELU_K * (x + 0.044715f * x * x * x));
        float g = 0.5f * (1.0f + th) + 0.5f * x * (1.0f - th * th) * GELU_K * (1.0f + 3.0f * 0.044715f * x * x);
        dinp[i] += g * dout[i];
    }
}

static __global__ void k_residual(float *out, const float *a, const float *b, size_t n)
{
    size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) out[i] = a[i] + b[i];
}

static __global__ void k_accumulate(float *dst, const float *src, size_t n)
{
    size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) dst[i] += src[i];
}

static __global__ void k_scale(float *x, float k, size_t n)
{
    size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) x[i] *= k;
}

static __global__ void k_encoder_fwd(float *out, const int *tok, const float *wte, const float *wpe,
                                     int BT, int T, int C)
{
    size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x, r, c;
    if (i >= (size_t)BT * C) return;
    r = i / C;
    c = i % C;
    out[i] = wte[(size_t)tok[r] * C + c] + wpe[(r % T) * C + c];
}

/* dwte[tok[r]] += dout[r]: a thread per column walks every row in order, so rows with
 * one token add in the cpu's order and no two threads share an output */
static __global__ void k_encoder_bwd_wte(float *dwte, const float *dout, const int *tok, int BT, int C)
{
    int c = blockIdx.x * blockDim.x + threadIdx.x, r;
    if (c >= C) return;
    for (r = 0; r < BT; r++) dwte[(size_t)tok[r] * C + c] += dout[(size_t)r * C + c];
}

static __global__ void k_encoder_bwd_wpe(float *dwpe, const float *dout, int B, int T, int C)
{
    size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    int b;
    float s;
    if (i >= (size_t)T * C) return;
    s = dwpe[i];
    for (b = 0; b < B; b++) s += dout[(size_t)b * T * C + i];
    dwpe[i] = s;
}

static __global__ void k_adamw(float *p, const float *g, float *m, float *v, size_t n, float lr,
                               float b1, float b2, float eps, float wd, float bc1, float bc2)
{
    size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    float gi, mi, vi;
    if (i >= n) return;
    gi = g[i];
    mi = b1 * m[i] + (1.0f - b1) * gi;
    vi = b2 * v[i] + (1.0f - b2) * gi * gi;
    m[i] = mi;
    v[i] = vi;
    p[i] -= lr * ((mi / bc1) / (sqrtf(vi / bc2) + eps) + wd * p[i]);
}

/* one block of ET_CU_ROW_THREADS per chunk; doubles throughout */
static __global__ void k_sumsq(double *part, const float *x, size_t n)
{
    __shared__ double sh[ET_CU_ROW_THREADS];
    size_t i0 = (size_t)blockIdx.x * ET_CU_SUMSQ_CHUNK, i1 = i0 + ET_CU_SUMSQ_CHUNK, i;
    double s = 0.0;
    int l = threadIdx.x, st;
    if (i1 > n) i1 = n;
    for (i = i0 + l; i < i1; i += ET_CU_ROW_THREADS) s += (double)x[i] * x[i];
    sh[l] = s;
    __syncthreads();
    for (st = ET_CU_ROW_THREADS / 2; st > 0; st >>= 1) {
        if (l < st) sh[l] += sh[l + st];
        __syncthreads();
    }
    if (l == 0) part[blockIdx.x] = sh[0];
}

extern "C" {

int et__cu_bias_add(cudaStream_t s, float *out, const float *bias, int N, int OC)
{
    k_bias_add<<<et_blocks((size_t)N * OC), 256, 0, s>>>(out, bias, N, OC);
    LAUNCH_CHECK();
}

int et__cu_bias_bwd(cudaStream_t s, float *dbias, const float *dout, int N, int OC)
{
    k_bias_bwd<<<et_blocks((size_t)OC), 256, 0, s>>>(dbias, dout, N, OC);
    LAUNCH_CHECK();
}

int et__cu_gelu_fwd(cudaStream_t s, float *out, const float *inp, size_t n)
{
    k_gelu_fwd<<<et_blocks(n), 256, 0, s>>>(out, inp, n);
    LAUNCH_CHECK();
}

int et__cu_gelu_bwd(cudaStream_t s, float *dinp, const float *inp, const float *dout, size_t n)
{
    k_gelu_bwd<<<et_blocks(n), 256, 0, s>>>(dinp, inp, dout, n);
    LAUNCH_CHECK();
}

int et__cu_residual(cudaStream_t s, float *out, const float *a, const float *b, size_t n)
{
    k_residual<<<et_blocks(n), 256, 0, s>>>(out, a, b, n);
    LAUNCH_CHECK();
}

int et__cu_accumulate(cudaStream_t s, float *dst, const float *src, size_t n)
{
    k_accumulate<<<et_blocks(n), 256, 0, s>>>(dst, src, n);
    LAUNCH_CHECK();
}

int et__cu_scale(cudaStream_t s, float *x, float k, size_t n)
{
    k_scale<<<et_blocks(n), 256, 0, s>>>(x, k, n);
    LAUNCH_CHECK();
}

int et__cu_encoder_fwd(cudaStream_t s, float *out, const int *tok, const float *wte,
                       const float *wpe, int B, int T, int C)
{
    k_encoder_fwd<<<et_blocks((size_t)B * T * C), 256, 0, s>>>(out, tok, wte, wpe, B * T, T, C);
    LAUNCH_CHECK();
}

int et__cu_encoder_bwd(cudaStream_t s, float *dwte, float *dwpe, const float *dout,
                       const int *tok, int B, int T, int C)
{
    k_encoder_bwd_wte<<<et_blocks((size_t)C), 256, 0, s>>>(dwte, dout, tok, B * T, C);
    k_encoder_bwd_wpe<<<et_blocks((size_t)T * C), 256, 0, s>>>(dwpe, dout, B, T, C);
    LAUNCH_CHECK();
}

int et__cu_adamw(cudaStream_t s, float *p, const float *g, float *m, float *v, size_t n, float lr,
                 float b1, float b2, float eps, float wd, float bc1, float bc2)
{
    k_adamw<<<et_blocks(n), 256, 0, s>>>(p, g, m, v, n, lr, b1, b2, eps, wd, bc1, bc2);
    LAUNCH_CHECK();
}

int et__cu_sumsq(cudaStream_t s, double *part, const float *x, size_t n)
{
    unsigned nb = (unsigned)((n + ET_CU_SUMSQ_CHUNK - 1) / ET_CU_SUMSQ_CHUNK);
    k_sumsq<<<nb, ET_CU_ROW_THREADS, 0, s>>>(part, x, n);
    LAUNCH_CHECK();
}

} /* extern "C" */

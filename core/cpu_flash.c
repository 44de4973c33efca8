/* cpu_flash.c - causal multi-head self-attention, tiled (flash-style), forward and
 * backward.
 *
 * One task per (batch row, head); a task touches only its head's slices, so tasks never
 * share outputs and the result does not depend on the worker count. Queries are taken
 * in blocks of RB rows and keys in blocks of CB columns, causal blocks only. Forward
 * keeps a running row maximum and sum (online softmax), rescales the partial output
 * and stores one log-sum-exp per row: nothing T x T is kept. Backward recomputes each
 * block's probabilities from the log-sum-exp, as FlashAttention does, with
 * D = rowsum(dout * out) standing in for rowsum(P * dP). Every product is a serial
 * packed GEMM on the worker's scratch slice, whose size does not depend on T.
 * Deliberately avoids: storing scores or probabilities, and any scratch sized by T.
 */
#include "et_cpu_ops.h"
#include "et_math.h"
#include "et_gemm.h"

#define RB 64  /* query rows per block */
#define CB 128 /* key columns per block */

typedef struct {
    float *out, *lse, *dqkv;
    const float *qkv, *dout, *cout, *clse;
    float *scratch; /* per-worker slices */
    size_t slice;   /* bytes per worker */
    int B, T, C, NH;
} flash_job;

/* A worker's slice: the GEMM's packing buffers, then S (RB x CB), P or dS (RB x CB)
 * and two rows of RB floats. */
static size_t gemm_part(void) { return (et_gemm_scratch_bytes(1) + 63) / 64 * 64; }

size_t et_cpu_flash_slice(void)
{
    return gemm_part() + sizeof(float) * (2 * (size_t)RB * CB + 2 * RB);
}

static float *slice_of(flash_job *J, int wk)
{
    return (float *)((char *)J->scratch + (size_t)wk * J->slice);
}

static void gemm1(flash_job *J, int wk, int tA, int tB, int M, int N, int K, const float *A, int lda,
                  const float *B, int ldb, int acc, float *C, int ldc)
{
    et_gemm_args g;
    g.transA = tA; g.transB = tB; g.M = M; g.N = N; g.K = K;
    g.A = A; g.lda = lda; g.B = B; g.ldb = ldb; g.bias = 0; g.accumulate = acc;
    g.C = C; g.ldc = ldc;
    (void)et_gemm_f32(&g, 0, slice_of(J, wk), gemm_part()); /* shapes are valid by construction */
}

static void flash_fwd_task(void *arg, int task, int wk)
{
    flash_job *J = (flash_job *)arg;
    int T = J->T, C = J->C, NH = J->NH, C3 = 3 * C, hs = C / NH;
    int b = task / NH, h = task % NH, r0, c0, t, j;
    float scale = 1.0f / et_sqrtf((float)hs);
    const float *q = J->qkv + (size_t)b * T * C3 + h * hs, *k = q + C, *v = q + 2 * C;
    float *out = J->out + (size_t)b * T * C + h * hs;
    float *lse = J->lse + ((size_t)b * NH + h) * T;
    float *S = (float *)((char *)slice_of(J, wk) + gemm_part()), *P = S + RB * CB;
    float *m = P + RB * CB, *l = m + RB;
    for (r0 = 0; r0 < T; r0 += RB) {
        int r1 = r0 + RB < T ? r0 + RB : T, R = r1 - r0;
        for (c0 = 0; c0 < r1; c0 += CB) {
            int c1 = c0 + CB < r1 ? c0 + CB : r1, n = c1 - c0;
            /* S = q[r0:r1] . k[c0:c1]^T */
            gemm1(J, wk, 0, 1, R, n, hs, q + (size_t)r0 * C3, C3, k + (size_t)c0 * C3, C3, 0, S, CB);
            for (t = 0; t < R; t++) {
                float *s = S + t * CB, *p = P + t * CB, mx = -3.0e38f, alpha, sum;
                int valid = r0 + t + 1 - c0; /* keys c0 .. r0+t */
                if (valid > n) valid = n;
                if (valid < 0) valid = 0; /* cannot happen while CB % RB == 0: c0 <= r0 */
                for (j = 0; j < valid; j++) {
                    s[j] *= scale;
                    if (s[j] > mx) mx = s[j];
                }
                if (c0 == 0) { /* the first block always holds key 0 */
                    sum = et_exp_sub_row(p, s, mx, valid);
                    m[t] = mx;
                    l[t] = sum;
                } else {
                    float mn = mx > m[t] ? mx : m[t];
                    float *o = out + (size_t)(r0 + t) * C;
                    sum = valid > 0 ? et_exp_sub_row(p, s, mn, valid) : 0.0f;
                    alpha = et_expf(m[t] - mn);
                    if (alpha != 1.0f)
                        for (j = 0; j < hs; j++) o[j] *= alpha;
                    l[t] = l[t] * alpha + sum;
                    m[t] = mn;
                }
                for (j = valid; j < n; j++) p[j] = 0.0f;
            }
            /* out[r0:r1] (+)= P . v[c0:c1] */
            gemm1(J, wk, 0, 0, R, hs, n, P, CB, v + (size_t)c0 * C3, C3, c0 > 0, out + (size_t)r0 * C, C);
        }
        for (t = 0; t < R; t++) {
            float *o = out + (size_t)(r0 + t) * C, inv = 1.0f / l[t];
            for (j = 0; j < hs; j++) o[j] *= inv;
            lse[r0 + t] = m[t] + et_logf(l[t]);
        }
    }
}

void et_cpu_flash_fwd(const et_threads *th, float *scratch, size_t slice, float *out, float *lse,
                      const float *qkv, int B, int T, int C, int NH)
{
    flash_job J;
    J.out = out; J.lse = lse; J.qkv = qkv; J.scratch = scratch; J.slice = slice;
    J.B = B; J.T = T; J.C = C; J.NH = NH;
    et_parallel_for(th, B * NH, flash_fwd_task, &J);
}

/* Backward, per (b, h), query block i and causal key block j:
 *   S = q_i k_j^T   P = exp(scale S - lse)   dP = dout_i v_j^T
 *   dS = P * (dP - D_i) * scale,  D = rowsum(dout * out)
 *   dv_j += P^T dout_i    dk_j += dS^T q_i    dq_i += dS k_j */
static void flash_bwd_task(void *arg, int task, int wk)
{
    flash_job *J = (flash_job *)arg;
    int T = J->T, C = J->C, NH = J->NH, C3 = 3 * C, hs = C / NH;
    int b = task / NH, h = task % NH, r0, c0, t, j;
    float scale = 1.0f / et_sqrtf((float)hs);
    const float *q = J->qkv + (size_t)b * T * C3 + h * hs, *k = q + C, *v = q + 2 * C;
    const float *dy = J->dout + (size_t)b * T * C + h * hs, *o = J->cout + (size_t)b * T * C + h * hs;
    const float *lse = J->clse + ((size_t)b * NH + h) * T;
    float *dq = J->dqkv + (size_t)b * T * C3 + h * hs, *dk = dq + C, *dv = dq + 2 * C;
    float *S = (float *)((char *)slice_of(J, wk) + gemm_part()), *dS = S + RB * CB, *D = dS + RB * CB;
    for (r0 = 0; r0 < T; r0 += RB) {
        int r1 = r0 + RB < T ? r0 + RB : T, R = r1 - r0;
        for (t = 0; t < R; t++) {
            const float *a = dy + (size_t)(r0 + t) * C, *c = o + (size_t)(r0 + t) * C;
            float s = 0.0f;
            for (j = 0; j < hs; j++) s += a[j] * c[j];
            D[t] = s;
        }
        for (c0 = 0; c0 < r1; c0 += CB) {
            int c1 = c0 + CB < r1 ? c0 + CB : r1, n = c1 - c0;
            gemm1(J, wk, 0, 1, R, n, hs, q + (size_t)r0 * C3, C3, k + (size_t)c0 * C3, C3, 0, S, CB);
            gemm1(J, wk, 0, 1, R, n, hs, dy + (size_t)r0 * C, C, v + (size_t)c0 * C3, C3, 0, dS, CB);
            for (t = 0; t < R; t++) {
                float *p = S + t * CB, *ds = dS + t * CB, l = lse[r0 + t], d = D[t];
                int valid = r0 + t + 1 - c0;
                if (valid > n) valid = n;
                if (valid < 0) valid = 0;
                for (j = 0; j < valid; j++) p[j] = p[j] * scale - l;
                et_exp_sub_row(p, p, 0.0f, valid);
                for (j = 0; j < valid; j++) ds[j] = p[j] * (ds[j] - d) * scale;
                for (j = valid; j < n; j++) p[j] = ds[j] = 0.0f;
            }
            gemm1(J, wk, 1, 0, n, hs, R, S, CB, dy + (size_t)r0 * C, C, 1, dv + (size_t)c0 * C3, C3);
            gemm1(J, wk, 1, 0, n, hs, R, dS, CB, q + (size_t)r0 * C3, C3, 1, dk + (size_t)c0 * C3, C3);
            gemm1(J, wk, 0, 0, R, hs, n, dS, CB, k + (size_t)c0 * C3, C3, 1, dq + (size_t)r0 * C3, C3);
        }
    }
}

void et_cpu_flash_bwd(const et_threads *th, float *scratch, size_t slice, float *dqkv,
                      const float *dout, const float *qkv, const float *out, const float *lse,
                      int B, int T, int C, int NH)
{
    flash_job J;
    J.dqkv = dqkv; J.dout = dout; J.qkv = qkv; J.cout = out; J.clse = lse;
    J.scratch = scratch; J.slice = slice;
    J.B = B; J.T = T; J.C = C; J.NH = NH;
    et_parallel_for(th, B * NH, flash_bwd_task, &J);
}

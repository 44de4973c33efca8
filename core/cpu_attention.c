/* cpu_attention.c - causal multi-head self-attention, forward and backward.
 *
 * One task per (batch row, head): a task reads and writes only its own head's slices,
 * so tasks never share outputs. Inside a task every product is a serial packed GEMM on
 * that worker's scratch slice (the score and probability matrices, and their
 * gradients, are GEMM operands with the head's stride), taken in causal row blocks.
 * Scores and probabilities are kept as (B,NH,T,T) for backward; entries above the
 * diagonal are zero. Deliberately not flash-style yet: T x T per head is stored.
 */
#include "et_cpu_ops.h"
#include "et_math.h"
#include "et_gemm.h"

typedef struct {
    float *out, *preatt, *att, *dqkv, *dpreatt, *datt;
    const float *qkv, *dout, *catt;
    float *scratch;   /* per-worker GEMM scratch slices */
    size_t slice;     /* bytes per worker */
    int B, T, C, NH;
} att_job;

/* Rows are taken in blocks of RB: a block of queries [r0, r1) needs keys [0, r1) only,
 * so the causal half is mostly skipped while each product is still a packed GEMM. */
#define RB 64

static et_status gemm1(att_job *J, int wk, int tA, int tB, int M, int N, int K, const float *A,
                       int lda, const float *B, int ldb, int acc, float *C, int ldc)
{
    et_gemm_args g;
    g.transA = tA; g.transB = tB; g.M = M; g.N = N; g.K = K;
    g.A = A; g.lda = lda; g.B = B; g.ldb = ldb; g.bias = 0; g.accumulate = acc;
    g.C = C; g.ldc = ldc;
    return et_gemm_f32(&g, 0, (float *)((char *)J->scratch + (size_t)wk * J->slice), J->slice);
}

static void att_fwd_task(void *arg, int task, int wk)
{
    att_job *J = (att_job *)arg;
    int T = J->T, C = J->C, NH = J->NH, C3 = 3 * C, hs = C / NH;
    int b = task / NH, h = task % NH, t, t2, r0;
    float scale = 1.0f / et_sqrtf((float)hs);
    const float *q = J->qkv + (size_t)b * T * C3 + h * hs, *k = q + C, *v = q + 2 * C;
    float *pre = J->preatt + ((size_t)b * NH + h) * T * T;
    float *att = J->att + ((size_t)b * NH + h) * T * T;
    float *out = J->out + (size_t)b * T * C + h * hs;
    for (r0 = 0; r0 < T; r0 += RB) {
        int r1 = r0 + RB < T ? r0 + RB : T;
        /* pre[r0:r1, 0:r1] = q[r0:r1] . k[0:r1]^T */
        gemm1(J, wk, 0, 1, r1 - r0, r1, hs, q + (size_t)r0 * C3, C3, k, C3, 0, pre + (size_t)r0 * T, T);
        for (t = r0; t < r1; t++) {
            float *p = pre + (size_t)t * T, *a = att + (size_t)t * T, mx = -3.0e38f, sum = 0.0f, inv;
            for (t2 = 0; t2 <= t; t2++) {
                p[t2] *= scale;
                if (p[t2] > mx) mx = p[t2];
            }
            sum = et_exp_sub_row(a, p, mx, t + 1);
            inv = 1.0f / sum;
            for (t2 = 0; t2 <= t; t2++) a[t2] *= inv;
            for (t2 = t + 1; t2 < T; t2++) a[t2] = p[t2] = 0.0f;
        }
        /* out[r0:r1] = att[r0:r1, 0:r1] . v[0:r1] */
        gemm1(J, wk, 0, 0, r1 - r0, hs, r1, att + (size_t)r0 * T, T, v, C3, 0, out + (size_t)r0 * C, C);
    }
}

void et_cpu_attention_fwd(const et_threads *th, float *scratch, size_t slice, float *out,
                          float *preatt, float *att, const float *qkv, int B, int T, int C, int NH)
{
    att_job J;
    J.out = out; J.preatt = preatt; J.att = att; J.qkv = qkv; J.scratch = scratch; J.slice = slice;
    J.B = B; J.T = T; J.C = C; J.NH = NH;
    et_parallel_for(th, B * NH, att_fwd_task, &J);
}

/* Backward, per (b, h), all as blocked GEMMs:
 *   datt  = dout . v^T            dpre = att * (datt - rowsum(att * datt))
 *   dq   += scale dpre . k        dk  += scale dpre^T . q        dv += att^T . dout */
static void att_bwd_task(void *arg, int task, int wk)
{
    att_job *J = (att_job *)arg;
    int T = J->T, C = J->C, NH = J->NH, C3 = 3 * C, hs = C / NH;
    int b = task / NH, h = task % NH, t, t2, r0;
    float scale = 1.0f / et_sqrtf((float)hs);
    const float *q = J->qkv + (size_t)b * T * C3 + h * hs, *k = q + C, *v = q + 2 * C;
    const float *dy = J->dout + (size_t)b * T * C + h * hs;
    float *dq = J->dqkv + (size_t)b * T * C3 + h * hs, *dk = dq + C, *dv = dq + 2 * C;
    const float *att = J->catt + ((size_t)b * NH + h) * T * T;
    float *datt = J->datt + ((size_t)b * NH + h) * T * T;
    float *dpre = J->dpreatt + ((size_t)b * NH + h) * T * T;
    for (r0 = 0; r0 < T; r0 += RB) {
        int r1 = r0 + RB < T ? r0 + RB : T;
        gemm1(J, wk, 0, 1, r1 - r0, r1, hs, dy + (size_t)r0 * C, C, v, C3, 1, datt + (size_t)r0 * T, T);
        for (t = r0; t < r1; t++) {
            const float *a = att + (size_t)t * T;
            float *da = datt + (size_t)t * T, *dp = dpre + (size_t)t * T, dot = 0.0f;
            for (t2 = 0; t2 <= t; t2++) dot += a[t2] * da[t2];
            /* the scale of pre = scale * q.k is folded in here, so dq and dk need none */
            for (t2 = 0; t2 <= t; t2++) dp[t2] += a[t2] * (da[t2] - dot) * scale;
        }
        gemm1(J, wk, 0, 0, r1 - r0, hs, r1, dpre + (size_t)r0 * T, T, k, C3, 1, dq + (size_t)r0 * C3, C3);
    }
    /* keys [c0, c1) receive from queries [c0, T) */
    for (r0 = 0; r0 < T; r0 += RB) {
        int c1 = r0 + RB < T ? r0 + RB : T;
        gemm1(J, wk, 1, 0, c1 - r0, hs, T - r0, dpre + (size_t)r0 * T + r0, T, q + (size_t)r0 * C3, C3,
              1, dk + (size_t)r0 * C3, C3);
        gemm1(J, wk, 1, 0, c1 - r0, hs, T - r0, att + (size_t)r0 * T + r0, T, dy + (size_t)r0 * C, C,
              1, dv + (size_t)r0 * C3, C3);
    }
}

void et_cpu_attention_bwd(const et_threads *th, float *scratch, size_t slice, float *dqkv,
                          float *dpreatt, float *datt, const float *dout, const float *qkv,
                          const float *att, int B, int T, int C, int NH)
{
    att_job J;
    J.dqkv = dqkv; J.dpreatt = dpreatt; J.datt = datt; J.dout = dout; J.qkv = qkv; J.catt = att;
    J.scratch = scratch; J.slice = slice;
    J.B = B; J.T = T; J.C = C; J.NH = NH;
    et_parallel_for(th, B * NH, att_bwd_task, &J);
}

/** Scratch bytes the attention kernels need per worker. */
size_t et_cpu_attention_slice(void) { return et_gemm_scratch_bytes(1); }

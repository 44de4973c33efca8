/* cpu_attention.c - causal multi-head self-attention, forward and backward.
 *
 * One task per (batch row, head): a task reads and writes only its own head's slices,
 * so tasks never share outputs. Scores and probabilities are kept as (B,NH,T,T) for
 * backward; entries above the diagonal are zero. This is the plain O(T^2)-memory
 * form; it is the reference every faster attention is checked against.
 */
#include "et_cpu_ops.h"
#include "et_math.h"
#include "et_simd.h"

typedef struct {
    float *out, *preatt, *att, *dqkv, *dpreatt, *datt;
    const float *qkv, *dout, *catt;
    int B, T, C, NH;
} att_job;

static void att_fwd_task(void *arg, int task, int wk)
{
    att_job *J = (att_job *)arg;
    int T = J->T, C = J->C, NH = J->NH, C3 = 3 * C, hs = C / NH;
    int b = task / NH, h = task % NH, t, t2, i;
    float scale = 1.0f / et_sqrtf((float)hs);
    ET_UNUSED(wk);
    for (t = 0; t < T; t++) {
        const float *q = J->qkv + ((size_t)b * T + t) * C3 + h * hs;
        float *pre = J->preatt + (((size_t)b * NH + h) * T + t) * T;
        float *a = J->att + (((size_t)b * NH + h) * T + t) * T;
        float *o = J->out + ((size_t)b * T + t) * C + h * hs;
        float mx = -3.0e38f, sum = 0.0f, inv;
        for (t2 = 0; t2 <= t; t2++) {
            const float *k = J->qkv + ((size_t)b * T + t2) * C3 + C + h * hs;
            float s = et_dot(q, k, hs) * scale;
            pre[t2] = s;
            if (s > mx) mx = s;
        }
        for (t2 = 0; t2 <= t; t2++) {
            float e = et_expf(pre[t2] - mx);
            a[t2] = e;
            sum += e;
        }
        inv = 1.0f / sum;
        for (t2 = 0; t2 <= t; t2++) a[t2] *= inv;
        for (t2 = t + 1; t2 < T; t2++) a[t2] = pre[t2] = 0.0f;
        for (i = 0; i < hs; i++) o[i] = 0.0f;
        for (t2 = 0; t2 <= t; t2++)
            et_axpy(o, a[t2], J->qkv + ((size_t)b * T + t2) * C3 + 2 * C + h * hs, hs);
    }
}

void et_cpu_attention_fwd(const et_threads *th, float *out, float *preatt, float *att,
                          const float *qkv, int B, int T, int C, int NH)
{
    att_job J;
    J.out = out; J.preatt = preatt; J.att = att; J.qkv = qkv;
    J.B = B; J.T = T; J.C = C; J.NH = NH;
    et_parallel_for(th, B * NH, att_fwd_task, &J);
}

static void att_bwd_task(void *arg, int task, int wk)
{
    att_job *J = (att_job *)arg;
    int T = J->T, C = J->C, NH = J->NH, C3 = 3 * C, hs = C / NH;
    int b = task / NH, h = task % NH, t, t2;
    float scale = 1.0f / et_sqrtf((float)hs);
    ET_UNUSED(wk);
    for (t = T - 1; t >= 0; t--) {
        const float *a = J->catt + (((size_t)b * NH + h) * T + t) * T;
        float *da = J->datt + (((size_t)b * NH + h) * T + t) * T;
        float *dpre = J->dpreatt + (((size_t)b * NH + h) * T + t) * T;
        const float *q = J->qkv + ((size_t)b * T + t) * C3 + h * hs;
        float *dq = J->dqkv + ((size_t)b * T + t) * C3 + h * hs;
        const float *dy = J->dout + ((size_t)b * T + t) * C + h * hs;
        float dot = 0.0f;
        /* out = att . v */
        for (t2 = 0; t2 <= t; t2++) {
            const float *v = J->qkv + ((size_t)b * T + t2) * C3 + 2 * C + h * hs;
            float *dv = J->dqkv + ((size_t)b * T + t2) * C3 + 2 * C + h * hs;
            da[t2] += et_dot(v, dy, hs);
            et_axpy(dv, a[t2], dy, hs);
        }
        /* softmax: dpre = a * (da - sum(a * da)) */
        for (t2 = 0; t2 <= t; t2++) dot += a[t2] * da[t2];
        for (t2 = 0; t2 <= t; t2++) dpre[t2] += a[t2] * (da[t2] - dot);
        /* pre = scale * q . k */
        for (t2 = 0; t2 <= t; t2++) {
            const float *k = J->qkv + ((size_t)b * T + t2) * C3 + C + h * hs;
            float *dk = J->dqkv + ((size_t)b * T + t2) * C3 + C + h * hs;
            float g = dpre[t2] * scale;
            et_axpy(dq, g, k, hs);
            et_axpy(dk, g, q, hs);
        }
    }
}

void et_cpu_attention_bwd(const et_threads *th, float *dqkv, float *dpreatt, float *datt,
                          const float *dout, const float *qkv, const float *att, int B, int T,
                          int C, int NH)
{
    att_job J;
    J.dqkv = dqkv; J.dpreatt = dpreatt; J.datt = datt; J.dout = dout; J.qkv = qkv; J.catt = att;
    J.B = B; J.T = T; J.C = C; J.NH = NH;
    et_parallel_for(th, B * NH, att_bwd_task, &J);
}

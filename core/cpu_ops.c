/* cpu_ops.c - the reference cpu kernels for everything but GEMM and attention:
 * LayerNorm, GELU, residual, embedding, softmax cross-entropy, AdamW, reductions.
 *
 * Each kernel splits its work into tasks of a fixed size (never a function of the
 * worker count) and each task owns its outputs, so results are bitwise identical for
 * any number of threads. Reductions across rows (LayerNorm and bias gradients,
 * embedding gradients, sums of squares) are split by column or by fixed chunk and
 * summed in a fixed order for the same reason.
 */
#include "et_cpu_ops.h"
#include "et_math.h"
#if ET_HAVE_AVX2
#include <immintrin.h>
#endif

#define ROWS_PER_TASK 32
#define ELEMS_PER_TASK 16384
#define COLS_PER_TASK 64

static int ntasks_for(size_t n, size_t per) { return (int)((n + per - 1) / per); }

/* --- LayerNorm */

/* Row reductions in 16 fixed lanes (two vectors of 8), then the lanes in a fixed
 * order: a row's sums no longer wait on one serial chain of adds. The scalar path
 * keeps one chain. */
#if ET_HAVE_AVX2
static float hsum16(__m256 a, __m256 b)
{
    __m256 s = _mm256_add_ps(a, b);
    __m128 l = _mm_add_ps(_mm256_castps256_ps128(s), _mm256_extractf128_ps(s, 1));
    l = _mm_add_ps(l, _mm_movehl_ps(l, l));
    l = _mm_add_ss(l, _mm_shuffle_ps(l, l, 1));
    return _mm_cvtss_f32(l);
}
#endif

/* sum of x */
static float row_sum(const float *x, int n)
{
    int i = 0;
    float s = 0.0f;
#if ET_HAVE_AVX2
    __m256 a = _mm256_setzero_ps(), b = _mm256_setzero_ps();
    for (; i + 16 <= n; i += 16) {
        a = _mm256_add_ps(a, _mm256_loadu_ps(x + i));
        b = _mm256_add_ps(b, _mm256_loadu_ps(x + i + 8));
    }
    s = hsum16(a, b);
#endif
    for (; i < n; i++) s += x[i];
    return s;
}

/* sum of (x - m)^2 */
static float row_sqdev(const float *x, float m, int n)
{
    int i = 0;
    float s = 0.0f;
#if ET_HAVE_AVX2
    __m256 a = _mm256_setzero_ps(), b = _mm256_setzero_ps(), vm = _mm256_set1_ps(m);
    for (; i + 16 <= n; i += 16) {
        __m256 d0 = _mm256_sub_ps(_mm256_loadu_ps(x + i), vm);
        __m256 d1 = _mm256_sub_ps(_mm256_loadu_ps(x + i + 8), vm);
        a = _mm256_fmadd_ps(d0, d0, a);
        b = _mm256_fmadd_ps(d1, d1, b);
    }
    s = hsum16(a, b);
#endif
    for (; i < n; i++) {
        float d = x[i] - m;
        s += d * d;
    }
    return s;
}

/* sums of g = dy * w and of g * (x - m) * rs, for LayerNorm's backward */
static void row_g_sums(const float *dy, const float *w, const float *x, float m, float rs, int n,
                       float *gsum, float *gnsum)
{
    int i = 0;
    float a1 = 0.0f, a2 = 0.0f;
#if ET_HAVE_AVX2
    __m256 s0 = _mm256_setzero_ps(), s1 = _mm256_setzero_ps(), t0 = _mm256_setzero_ps(),
           t1 = _mm256_setzero_ps(), vm = _mm256_set1_ps(m), vs = _mm256_set1_ps(rs);
    for (; i + 16 <= n; i += 16) {
        __m256 g0 = _mm256_mul_ps(_mm256_loadu_ps(dy + i), _mm256_loadu_ps(w + i));
        __m256 g1 = _mm256_mul_ps(_mm256_loadu_ps(dy + i + 8), _mm256_loadu_ps(w + i + 8));
        __m256 n0 = _mm256_mul_ps(_mm256_sub_ps(_mm256_loadu_ps(x + i), vm), vs);
        __m256 n1 = _mm256_mul_ps(_mm256_sub_ps(_mm256_loadu_ps(x + i + 8), vm), vs);
        s0 = _mm256_add_ps(s0, g0);
        s1 = _mm256_add_ps(s1, g1);
        t0 = _mm256_fmadd_ps(g0, n0, t0);
        t1 = _mm256_fmadd_ps(g1, n1, t1);
    }
    a1 = hsum16(s0, s1);
    a2 = hsum16(t0, t1);
#endif
    for (; i < n; i++) {
        float g = dy[i] * w[i], nn = (x[i] - m) * rs;
        a1 += g;
        a2 += g * nn;
    }
    *gsum = a1;
    *gnsum = a2;
}

typedef struct {
    float *out, *mean, *rstd, *dinp, *dw, *db;
    const float *inp, *w, *b, *dout, *cmean, *crstd;
    int N, C;
} ln_job;

static void ln_fwd_task(void *arg, int t, int wk)
{
    ln_job *J = (ln_job *)arg;
    int r0 = t * ROWS_PER_TASK, r1 = r0 + ROWS_PER_TASK, r, i, C = J->C;
    ET_UNUSED(wk);
    if (r1 > J->N) r1 = J->N;
    for (r = r0; r < r1; r++) {
        const float *x = J->inp + (size_t)r * C;
        float *o = J->out + (size_t)r * C;
        float m = row_sum(x, C) / (float)C, v = row_sqdev(x, m, C) / (float)C, s;
        s = 1.0f / et_sqrtf(v + 1e-5f);
        for (i = 0; i < C; i++) o[i] = (x[i] - m) * s * J->w[i] + J->b[i];
        J->mean[r] = m;
        J->rstd[r] = s;
    }
}

void et_cpu_layernorm_fwd(const et_threads *th, float *out, float *mean, float *rstd,
                          const float *inp, const float *w, const float *b, int N, int C)
{
    ln_job J;
    J.out = out; J.mean = mean; J.rstd = rstd; J.inp = inp; J.w = w; J.b = b;
    J.N = N; J.C = C;
    et_parallel_for(th, ntasks_for((size_t)N, ROWS_PER_TASK), ln_fwd_task, &J);
}

/* pass 1, by rows: dinp += rstd * (g - mean(g) - norm * mean(g * norm)), g = dout * w */
static void ln_bwd_rows_task(void *arg, int t, int wk)
{
    ln_job *J = (ln_job *)arg;
    int r0 = t * ROWS_PER_TASK, r1 = r0 + ROWS_PER_TASK, r, i, C = J->C;
    ET_UNUSED(wk);
    if (r1 > J->N) r1 = J->N;
    for (r = r0; r < r1; r++) {
        const float *x = J->inp + (size_t)r * C, *dy = J->dout + (size_t)r * C;
        float *dx = J->dinp + (size_t)r * C;
        float m = J->cmean[r], s = J->crstd[r], gm, gnm;
        row_g_sums(dy, J->w, x, m, s, C, &gm, &gnm);
        gm /= (float)C;
        gnm /= (float)C;
        for (i = 0; i < C; i++) {
            float g = dy[i] * J->w[i], n = (x[i] - m) * s;
            dx[i] += (g - gm - n * gnm) * s;
        }
    }
}

/* pass 2, by columns: dw += sum_r dout * norm, db += sum_r dout */
static void ln_bwd_cols_task(void *arg, int t, int wk)
{
    ln_job *J = (ln_job *)arg;
    int c0 = t * COLS_PER_TASK, c1 = c0 + COLS_PER_TASK, r, i, C = J->C;
    float sw[COLS_PER_TASK], sb[COLS_PER_TASK];
    ET_UNUSED(wk);
    if (c1 > C) c1 = C;
    for (i = c0; i < c1; i++) sw[i - c0] = sb[i - c0] = 0.0f;
    for (r = 0; r < J->N; r++) {
        const float *x = J->inp + (size_t)r * C, *dy = J->dout + (size_t)r * C;
        float m = J->cmean[r], s = J->crstd[r];
        for (i = c0; i < c1; i++) {
            sw[i - c0] += dy[i] * (x[i] - m) * s;
            sb[i - c0] += dy[i];
        }
    }
    for (i = c0; i < c1; i++) {
        J->dw[i] += sw[i - c0];
        J->db[i] += sb[i - c0];
    }
}

void et_cpu_layernorm_bwd(const et_threads *th, float *dinp, float *dw, float *db,
                          const float *dout, const float *inp, const float *w,
                          const float *mean, const float *rstd, int N, int C)
{
    ln_job J;
    J.dinp = dinp; J.dw = dw; J.db = db; J.dout = dout; J.inp = inp; J.w = w;
    J.cmean = mean; J.crstd = rstd; J.N = N; J.C = C;
    et_parallel_for(th, ntasks_for((size_t)N, ROWS_PER_TASK), ln_bwd_rows_task, &J);
    et_parallel_for(th, ntasks_for((size_t)C, COLS_PER_TASK), ln_bwd_cols_task, &J);
}

/* --- GELU (tanh approximation) */

#define GELU_K 0.7978845608028654f /* sqrt(2/pi) */

typedef struct {
    float *out;
    const float *inp, *dout;
    size_t n;
} ew_job;

static void gelu_fwd_task(void *arg, int t, int wk)
{
    ew_job *J = (ew_job *)arg;
    size_t i0 = (size_t)t * ELEMS_PER_TASK, i1 = i0 + ELEMS_PER_TASK, i;
    ET_UNUSED(wk);
    if (i1 > J->n) i1 = J->n;
    i = i0;
#if ET_HAVE_AVX2
    {
        const __m256 k0 = _mm256_set1_ps(GELU_K), k1 = _mm256_set1_ps(0.044715f),
                     half = _mm256_set1_ps(0.5f), one = _mm256_set1_ps(1.0f);
        for (; i + 8 <= i1; i += 8) {
            __m256 x = _mm256_loadu_ps(J->inp + i);
            __m256 u = _mm256_mul_ps(k0, _mm256_fmadd_ps(_mm256_mul_ps(k1, x), _mm256_mul_ps(x, x), x));
            __m256 th = et_tanhf_avx2(u);
            _mm256_storeu_ps(J->out + i, _mm256_mul_ps(_mm256_mul_ps(half, x), _mm256_add_ps(one, th)));
        }
    }
#endif
    for (; i < i1; i++) {
        float x = J->inp[i];
        J->out[i] = 0.5f * x * (1.0f + et_tanhf(GELU_K * (x + 0.044715f * x * x * x)));
    }
}

static void gelu_bwd_task(void *arg, int t, int wk)
{
    ew_job *J = (ew_job *)arg;
    size_t i0 = (size_t)t * ELEMS_PER_TASK, i1 = i0 + ELEMS_PER_TASK, i;
    ET_UNUSED(wk);
    if (i1 > J->n) i1 = J->n;
    i = i0;
#if ET_HAVE_AVX2
    {
        const __m256 k0 = _mm256_set1_ps(GELU_K), k1 = _mm256_set1_ps(0.044715f),
                     k3 = _mm256_set1_ps(3.0f * 0.044715f), half = _mm256_set1_ps(0.5f),
                     one = _mm256_set1_ps(1.0f);
        for (; i + 8 <= i1; i += 8) {
            __m256 x = _mm256_loadu_ps(J->inp + i), x2 = _mm256_mul_ps(x, x);
            __m256 u = _mm256_mul_ps(k0, _mm256_fmadd_ps(_mm256_mul_ps(k1, x), x2, x));
            __m256 th = et_tanhf_avx2(u);
            __m256 sech2 = _mm256_fnmadd_ps(th, th, one);
            __m256 du = _mm256_mul_ps(k0, _mm256_fmadd_ps(k3, x2, one));
            __m256 g = _mm256_fmadd_ps(_mm256_mul_ps(_mm256_mul_ps(half, x), sech2), du,
                                       _mm256_mul_ps(half, _mm256_add_ps(one, th)));
            _mm256_storeu_ps(J->out + i, _mm256_fmadd_ps(g, _mm256_loadu_ps(J->dout + i),
                                                         _mm256_loadu_ps(J->out + i)));
        }
    }
#endif
    for (; i < i1; i++) {
        float x = J->inp[i];
        float u = GELU_K * (x + 0.044715f * x * x * x);
        float th = et_tanhf(u);
        float sech2 = 1.0f - th * th;
        float g = 0.5f * (1.0f + th) + 0.5f * x * sech2 * GELU_K * (1.0f + 3.0f * 0.044715f * x * x);
        J->out[i] += g * J->dout[i];
    }
}

void et_cpu_gelu_fwd(const et_threads *th, float *out, const float *inp, size_t n)
{
    ew_job J;
    J.out = out; J.inp = inp; J.dout = 0; J.n = n;
    et_parallel_for(th, ntasks_for(n, ELEMS_PER_TASK), gelu_fwd_task, &J);
}

void et_cpu_gelu_bwd(const et_threads *th, float *dinp, const float *inp, const float *dout,
                     size_t n)
{
    ew_job J;
    J.out = dinp; J.inp = inp; J.dout = dout; J.n = n;
    et_parallel_for(th, ntasks_for(n, ELEMS_PER_TASK), gelu_bwd_task, &J);
}

/* --- embedding */

typedef struct {
    float *out, *dwte, *dwpe;
    const float *wte, *wpe, *dout;
    const int *tokens;
    int B, T, C;
} enc_job;

static void enc_fwd_task(void *arg, int t, int wk)
{
    enc_job *J = (enc_job *)arg;
    int b = t / J->T, p = t % J->T, i, C = J->C;
    const float *we = J->wte + (size_t)J->tokens[t] * C, *pe = J->wpe + (size_t)p * C;
    float *o = J->out + (size_t)t * C;
    ET_UNUSED(wk);
    ET_UNUSED(b);
    for (i = 0; i < C; i++) o[i] = we[i] + pe[i];
}

static void enc_bwd_task(void *arg, int t, int wk)
{
    enc_job *J = (enc_job *)arg;
    int c0 = t * COLS_PER_TASK, c1 = c0 + COLS_PER_TASK, r, i, C = J->C;
    ET_UNUSED(wk);
    if (c1 > C) c1 = C;
    for (r = 0; r < J->B * J->T; r++) {
        const float *d = J->dout + (size_t)r * C;
        float *dw = J->dwte + (size_t)J->tokens[r] * C, *dp = J->dwpe + (size_t)(r % J->T) * C;
        for (i = c0; i < c1; i++) {
            dw[i] += d[i];
            dp[i] += d[i];
        }
    }
}

void et_cpu_encoder_fwd(const et_threads *th, float *out, const int *tokens, const float *wte,
                        const float *wpe, int B, int T, int C)
{
    enc_job J;
    J.out = out; J.tokens = tokens; J.wte = wte; J.wpe = wpe; J.B = B; J.T = T; J.C = C;
    et_parallel_for(th, B * T, enc_fwd_task, &J);
}

void et_cpu_encoder_bwd(const et_threads *th, float *dwte, float *dwpe, const float *dout,
                        const int *tokens, int B, int T, int C)
{
    enc_job J;
    J.dwte = dwte; J.dwpe = dwpe; J.dout = dout; J.tokens = tokens; J.B = B; J.T = T; J.C = C;
    et_parallel_for(th, ntasks_for((size_t)C, COLS_PER_TASK), enc_bwd_task, &J);
}

/* --- softmax cross-entropy over the first V of Vp columns */

typedef struct {
    float *losses, *probs, *dlogits;
    const float *logits, *cprobs;
    const int *targets;
    float dloss;
    int N, V, Vp;
} ce_job;

static void ce_fwd_task(void *arg, int t, int wk)
{
    ce_job *J = (ce_job *)arg;
    int r0 = t * ROWS_PER_TASK, r1 = r0 + ROWS_PER_TASK, r, i;
    ET_UNUSED(wk);
    if (r1 > J->N) r1 = J->N;
    for (r = r0; r < r1; r++) {
        const float *x = J->logits + (size_t)r * J->Vp;
        float *p = J->probs + (size_t)r * J->Vp;
        float mx = x[0], sum = 0.0f, inv;
        for (i = 1; i < J->V; i++) mx = x[i] > mx ? x[i] : mx;
        sum = et_exp_sub_row(p, x, mx, J->V);
        inv = 1.0f / sum;
        for (i = 0; i < J->V; i++) p[i] *= inv;
        for (i = J->V; i < J->Vp; i++) p[i] = 0.0f;
        if (J->targets && J->losses) J->losses[r] = -et_logf(p[J->targets[r]]);
    }
}

static void ce_bwd_task(void *arg, int t, int wk)
{
    ce_job *J = (ce_job *)arg;
    int r0 = t * ROWS_PER_TASK, r1 = r0 + ROWS_PER_TASK, r, i;
    ET_UNUSED(wk);
    if (r1 > J->N) r1 = J->N;
    for (r = r0; r < r1; r++) {
        const float *p = J->cprobs + (size_t)r * J->Vp;
        float *d = J->dlogits + (size_t)r * J->Vp;
        int tg = J->targets[r];
        for (i = 0; i < J->V; i++) d[i] += (p[i] - (i == tg ? 1.0f : 0.0f)) * J->dloss;
    }
}

void et_cpu_crossentropy_fwd(const et_threads *th, float *losses, float *probs,
                             const float *logits, const int *targets, int N, int V, int Vp)
{
    ce_job J;
    J.losses = losses; J.probs = probs; J.logits = logits; J.targets = targets;
    J.N = N; J.V = V; J.Vp = Vp;
    et_parallel_for(th, ntasks_for((size_t)N, ROWS_PER_TASK), ce_fwd_task, &J);
}

void et_cpu_crossentropy_bwd(const et_threads *th, float *dlogits, const float *probs,
                             const int *targets, float dloss, int N, int V, int Vp)
{
    ce_job J;
    J.dlogits = dlogits; J.cprobs = probs; J.targets = targets; J.dloss = dloss;
    J.N = N; J.V = V; J.Vp = Vp;
    et_parallel_for(th, ntasks_for((size_t)N, ROWS_PER_TASK), ce_bwd_task, &J);
}

/* --- AdamW (decoupled decay: p -= lr * (mhat / (sqrt(vhat) + eps) + wd * p)) */

typedef struct {
    float *p, *m, *v;
    const float *g;
    size_t n;
    float lr, b1, b2, eps, wd, bc1, bc2;
} adam_job;

static void adam_task(void *arg, int t, int wk)
{
    adam_job *J = (adam_job *)arg;
    size_t i0 = (size_t)t * ELEMS_PER_TASK, i1 = i0 + ELEMS_PER_TASK, i;
    ET_UNUSED(wk);
    if (i1 > J->n) i1 = J->n;
    for (i = i0; i < i1; i++) {
        float g = J->g[i];
        float m = J->b1 * J->m[i] + (1.0f - J->b1) * g;
        float v = J->b2 * J->v[i] + (1.0f - J->b2) * g * g;
        float mh = m / J->bc1, vh = v / J->bc2;
        J->m[i] = m;
        J->v[i] = v;
        J->p[i] -= J->lr * (mh / (et_sqrtf_inl(vh) + J->eps) + J->wd * J->p[i]);
    }
}

void et_cpu_adamw(const et_threads *th, float *param, const float *grad, float *m, float *v,
                  size_t n, float lr, float beta1, float beta2, float eps, float wd, int t)
{
    adam_job J;
    J.p = param; J.g = grad; J.m = m; J.v = v; J.n = n; J.lr = lr; J.b1 = beta1; J.b2 = beta2;
    J.eps = eps; J.wd = wd;
    J.bc1 = 1.0f - et_powf(beta1, (float)t);
    J.bc2 = 1.0f - et_powf(beta2, (float)t);
    et_parallel_for(th, ntasks_for(n, ELEMS_PER_TASK), adam_task, &J);
}

/* --- reductions and elementwise helpers */

#define SUMSQ_MAX_CHUNKS 4096

typedef struct {
    const float *x;
    size_t n, chunk;
    double *part;
} sumsq_job;

static void sumsq_task(void *arg, int t, int wk)
{
    sumsq_job *J = (sumsq_job *)arg;
    size_t i0 = (size_t)t * J->chunk, i1 = i0 + J->chunk, i;
    double s = 0.0;
    ET_UNUSED(wk);
    if (i1 > J->n) i1 = J->n;
    for (i = i0; i < i1; i++) s += (double)J->x[i] * J->x[i];
    J->part[t] = s;
}

double et_cpu_sumsq(const et_threads *th, const float *x, size_t n)
{
    double part[SUMSQ_MAX_CHUNKS], s = 0.0;
    sumsq_job J;
    int nt, i;
    J.x = x; J.n = n; J.part = part;
    J.chunk = ELEMS_PER_TASK;
    if ((n + J.chunk - 1) / J.chunk > SUMSQ_MAX_CHUNKS) J.chunk = (n + SUMSQ_MAX_CHUNKS - 1) / SUMSQ_MAX_CHUNKS;
    nt = ntasks_for(n, J.chunk);
    et_parallel_for(th, nt, sumsq_task, &J);
    for (i = 0; i < nt; i++) s += part[i];
    return s;
}

/* wgemm.c - weight-only int8 GEMM (W8A32): float activations times int8 weights.
 *
 *   C(M,N) = A(M,K) . (Bq(N,K) * scale(N))^T + bias(N)
 *
 * The structure of core/gemm.c: K in fixed blocks of KC, N in blocks of NC whose weight
 * panel is dequantized (q * scale[n], exact in float up to the scale's rounding) into
 * 16-wide float slivers while it is packed, then tasks over (MC x NG slivers) tiles with
 * a 6x16 FMA micro-kernel. The float weights exist only in that cache-sized panel, so a
 * model keeps 1 byte per weight in memory. Fixed K blocks keep the bits independent of
 * the worker count.
 * Deliberately avoids: a second copy of the micro-kernel's tuning (same MR/NR/KC as
 * core/gemm.c) and any allocation.
 */
#include "et_qgemm.h"
#if ET_HAVE_AVX2
#include <immintrin.h>
#endif

#define MR 6
#define NR 16
#define KC 256
#define MC 72
#define NC 1024
#define NG 8

size_t et_qgemm_w8a32_scratch_bytes(int nworkers)
{
    if (nworkers < 1) nworkers = 1;
    return sizeof(float) * ((size_t)KC * NC + (size_t)nworkers * MC * KC) + 64;
}

typedef struct {
    const et_wgemm_args *g;
    float *packB, *packA_all;
    int pc, kc, jc, nc, nslivers, ngroups, first;
} w_job;

/* dequantizes a sliver of nr weight rows, k in [pc, pc+kc), into dst[k][j] */
static void pack_b(const et_wgemm_args *g, float *dst, int pc, int kc, int j0, int nr)
{
    int k, j;
    for (j = 0; j < nr; j++) {
        const int8_t *src = g->B + (size_t)(j0 + j) * g->ldb + pc;
        float s = g->scale[j0 + j];
        for (k = 0; k < kc; k++) dst[k * NR + j] = (float)src[k] * s;
    }
    for (; j < NR; j++)
        for (k = 0; k < kc; k++) dst[k * NR + j] = 0.0f;
}

static void pack_a(const et_wgemm_args *g, float *dst, int pc, int kc, int i0, int mr)
{
    int k, i;
    for (i = 0; i < mr; i++) {
        const float *src = g->A + (size_t)(i0 + i) * g->lda + pc;
        for (k = 0; k < kc; k++) dst[k * MR + i] = src[k];
    }
    for (; i < MR; i++)
        for (k = 0; k < kc; k++) dst[k * MR + i] = 0.0f;
}

#if ET_HAVE_AVX2
static void kernel_6x16(int kc, const float *a, const float *b, float *acc)
{
    __m256 c[MR][2];
    int k, i;
    for (i = 0; i < MR; i++) c[i][0] = c[i][1] = _mm256_setzero_ps();
    for (k = 0; k < kc; k++) {
        __m256 b0 = _mm256_load_ps(b), b1 = _mm256_load_ps(b + 8);
        for (i = 0; i < MR; i++) {
            __m256 av = _mm256_broadcast_ss(a + i);
            c[i][0] = _mm256_fmadd_ps(av, b0, c[i][0]);
            c[i][1] = _mm256_fmadd_ps(av, b1, c[i][1]);
        }
        a += MR;
        b += NR;
    }
    for (i = 0; i < MR; i++) {
        _mm256_storeu_ps(acc + i * NR, c[i][0]);
        _mm256_storeu_ps(acc + i * NR + 8, c[i][1]);
    }
}
#else
static void kernel_6x16(int kc, const float *a, const float *b, float *acc)
{
    int k, i, j;
    for (i = 0; i < MR * NR; i++) acc[i] = 0.0f;
    for (k = 0; k < kc; k++) {
        for (i = 0; i < MR; i++)
            for (j = 0; j < NR; j++) acc[i * NR + j] += a[i] * b[j];
        a += MR;
        b += NR;
    }
}
#endif

static void store_tile(const w_job *J, const float *acc, int i0, int j0, int mr, int nr)
{
    const et_wgemm_args *g = J->g;
    int i, j;
    for (i = 0; i < mr; i++) {
        float *c = g->C + (size_t)(i0 + i) * g->ldc + j0;
        const float *s = acc + i * NR;
        if (!J->first)
            for (j = 0; j < nr; j++) c[j] += s[j];
        else if (g->bias)
            for (j = 0; j < nr; j++) c[j] = s[j] + g->bias[j0 + j];
        else
            for (j = 0; j < nr; j++) c[j] = s[j];
    }
}

static void task_pack_b(void *arg, int t, int w)
{
    w_job *J = (w_job *)arg;
    int s, s1 = (t + 1) * NG;
    ET_UNUSED(w);
    if (s1 > J->nslivers) s1 = J->nslivers;
    for (s = t * NG; s < s1; s++) {
        int j0 = J->jc + s * NR, nr = J->jc + J->nc - j0;
        pack_b(J->g, J->packB + (size_t)s * J->kc * NR, J->pc, J->kc, j0, nr > NR ? NR : nr);
    }
}

static void task_compute(void *arg, int t, int w)
{
    w_job *J = (w_job *)arg;
    const et_wgemm_args *g = J->g;
    float *packA = J->packA_all + (size_t)w * MC * KC;
    int ib = t / J->ngroups, gb = t % J->ngroups, i0 = ib * MC, mc = g->M - i0, s, r;
    int s0 = gb * NG, s1 = s0 + NG;
#if ET_HAVE_AVX2
    float acc[MR * NR] __attribute__((aligned(32)));
#else
    float acc[MR * NR];
#endif
    if (mc > MC) mc = MC;
    if (s1 > J->nslivers) s1 = J->nslivers;
    for (r = 0; r < mc; r += MR)
        pack_a(g, packA + (size_t)r * J->kc, J->pc, J->kc, i0 + r, mc - r < MR ? mc - r : MR);
    for (s = s0; s < s1; s++) {
        const float *bs = J->packB + (size_t)s * J->kc * NR;
        int j0 = J->jc + s * NR, nr = J->jc + J->nc - j0;
        if (nr > NR) nr = NR;
        for (r = 0; r < mc; r += MR) {
            kernel_6x16(J->kc, packA + (size_t)r * J->kc, bs, acc);
            store_tile(J, acc, i0 + r, j0, mc - r < MR ? mc - r : MR, nr);
        }
    }
}

et_status et_qgemm_w8a32(const et_wgemm_args *g, const et_threads *th, void *scratch,
                         size_t scratch_bytes)
{
    w_job J;
    int nw = et_threads_workers(th);
    float *base;
    if (!g || g->M < 0 || g->N < 0 || g->K < 0 || !g->C) return ET_ERR_INVALID;
    if (g->M == 0 || g->N == 0) return ET_OK;
    if (g->ldc < g->N || (g->K > 0 && (!g->A || !g->B || !g->scale || g->lda < g->K || g->ldb < g->K)))
        return ET_ERR_INVALID;
    if (!scratch || scratch_bytes < et_qgemm_w8a32_scratch_bytes(nw)) return ET_ERR_NOMEM;
    if (g->K == 0) {
        int i, j;
        for (i = 0; i < g->M; i++)
            for (j = 0; j < g->N; j++) g->C[(size_t)i * g->ldc + j] = g->bias ? g->bias[j] : 0.0f;
        return ET_OK;
    }
    base = (float *)(((uintptr_t)scratch + 63) & ~(uintptr_t)63);
    J.g = g;
    J.packB = base;
    J.packA_all = base + (size_t)KC * NC;
    for (J.pc = 0; J.pc < g->K; J.pc += KC) {
        J.kc = g->K - J.pc < KC ? g->K - J.pc : KC;
        J.first = J.pc == 0;
        for (J.jc = 0; J.jc < g->N; J.jc += NC) {
            J.nc = g->N - J.jc < NC ? g->N - J.jc : NC;
            J.nslivers = (J.nc + NR - 1) / NR;
            J.ngroups = (J.nslivers + NG - 1) / NG;
            et_parallel_for(th, J.ngroups, task_pack_b, &J);
            et_parallel_for(th, ((g->M + MC - 1) / MC) * J.ngroups, task_compute, &J);
        }
    }
    return ET_OK;
}

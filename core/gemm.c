/* gemm.c - packed, blocked SGEMM (the GotoBLAS/BLIS loop structure).
 *
 * One parallel_for over tiles of C (up to MC rows x NG 16-wide slivers). Each task walks
 * K in blocks of KC (sequential, fixed: this is what fixes the rounding), packs its A
 * rows into 6-tall slivers and its B columns into 16-wide slivers in private scratch,
 * and runs the MR x NR micro-kernel. Every C element is reduced over k in the same
 * order whatever the tiling of M and N, so threads never change the bits.
 * Micro-kernels: AVX2/FMA (x86-64), NEON (aarch64), and a scalar one always present.
 * Deliberately avoids: run-time CPU dispatch (SIMD is chosen at compile time) and any
 * allocation (scratch comes from the caller's arena).
 */
#include "et_gemm.h"
#if ET_HAVE_AVX2
#include <immintrin.h>
#elif ET_HAVE_NEON
#include <arm_neon.h>
#endif

#define MR 6
#define NR 16
#define KC 256
#define MC 72
#define NG 8 /* slivers per task */

size_t et_gemm_scratch_bytes(int nworkers)
{
    if (nworkers < 1) nworkers = 1;
    return sizeof(float) * (size_t)nworkers * ((size_t)MC * KC + (size_t)KC * NG * NR) + 64;
}

typedef struct {
    const et_gemm_args *g;
    float *packs;       /* per worker: A block (MC x KC), then B block (KC x NG*NR) */
    int mc, ng;         /* rows and 16-column slivers per task */
    int mblocks, ngroups, nslivers;
} gemm_job;

/* --- packing */

static void pack_b_sliver(const et_gemm_args *g, float *dst, int pc, int kc, int j0, int nr)
{
    int k, j;
    if (!g->transB) {
        for (k = 0; k < kc; k++) {
            const float *src = g->B + (size_t)(pc + k) * g->ldb + j0;
            for (j = 0; j < nr; j++) dst[k * NR + j] = src[j];
            for (; j < NR; j++) dst[k * NR + j] = 0.0f;
        }
    } else {
        for (j = 0; j < nr; j++) {
            const float *src = g->B + (size_t)(j0 + j) * g->ldb + pc;
            for (k = 0; k < kc; k++) dst[k * NR + j] = src[k];
        }
        for (; j < NR; j++)
            for (k = 0; k < kc; k++) dst[k * NR + j] = 0.0f;
    }
}

static void pack_a_sliver(const et_gemm_args *g, float *dst, int pc, int kc, int i0, int mr)
{
    int k, i;
    if (!g->transA) {
        for (i = 0; i < mr; i++) {
            const float *src = g->A + (size_t)(i0 + i) * g->lda + pc;
            for (k = 0; k < kc; k++) dst[k * MR + i] = src[k];
        }
        for (; i < MR; i++)
            for (k = 0; k < kc; k++) dst[k * MR + i] = 0.0f;
    } else {
        for (k = 0; k < kc; k++) {
            const float *src = g->A + (size_t)(pc + k) * g->lda + i0;
            for (i = 0; i < mr; i++) dst[k * MR + i] = src[i];
            for (; i < MR; i++) dst[k * MR + i] = 0.0f;
        }
    }
}

/* --- micro-kernels: acc(MR,NR) = sum_k a(:,k) b(k,:) */

#if ET_HAVE_AVX2
static void kernel_6x16(int kc, const float *a, const float *b, float *acc)
{
    __m256 c00 = _mm256_setzero_ps(), c01 = _mm256_setzero_ps();
    __m256 c10 = _mm256_setzero_ps(), c11 = _mm256_setzero_ps();
    __m256 c20 = _mm256_setzero_ps(), c21 = _mm256_setzero_ps();
    __m256 c30 = _mm256_setzero_ps(), c31 = _mm256_setzero_ps();
    __m256 c40 = _mm256_setzero_ps(), c41 = _mm256_setzero_ps();
    __m256 c50 = _mm256_setzero_ps(), c51 = _mm256_setzero_ps();
    int k;
    for (k = 0; k < kc; k++) {
        __m256 b0 = _mm256_load_ps(b), b1 = _mm256_load_ps(b + 8), av;
        av = _mm256_broadcast_ss(a + 0); c00 = _mm256_fmadd_ps(av, b0, c00); c01 = _mm256_fmadd_ps(av, b1, c01);
        av = _mm256_broadcast_ss(a + 1); c10 = _mm256_fmadd_ps(av, b0, c10); c11 = _mm256_fmadd_ps(av, b1, c11);
        av = _mm256_broadcast_ss(a + 2); c20 = _mm256_fmadd_ps(av, b0, c20); c21 = _mm256_fmadd_ps(av, b1, c21);
        av = _mm256_broadcast_ss(a + 3); c30 = _mm256_fmadd_ps(av, b0, c30); c31 = _mm256_fmadd_ps(av, b1, c31);
        av = _mm256_broadcast_ss(a + 4); c40 = _mm256_fmadd_ps(av, b0, c40); c41 = _mm256_fmadd_ps(av, b1, c41);
        av = _mm256_broadcast_ss(a + 5); c50 = _mm256_fmadd_ps(av, b0, c50); c51 = _mm256_fmadd_ps(av, b1, c51);
        a += MR;
        b += NR;
    }
    _mm256_store_ps(acc + 0, c00);  _mm256_store_ps(acc + 8, c01);
    _mm256_store_ps(acc + 16, c10); _mm256_store_ps(acc + 24, c11);
    _mm256_store_ps(acc + 32, c20); _mm256_store_ps(acc + 40, c21);
    _mm256_store_ps(acc + 48, c30); _mm256_store_ps(acc + 56, c31);
    _mm256_store_ps(acc + 64, c40); _mm256_store_ps(acc + 72, c41);
    _mm256_store_ps(acc + 80, c50); _mm256_store_ps(acc + 88, c51);
}
#elif ET_HAVE_NEON
/* 6 rows x 4 quad-vectors = 24 accumulators of aarch64's 32 vector registers */
static void kernel_6x16(int kc, const float *a, const float *b, float *acc)
{
    float32x4_t c[6][4];
    int k, i, j;
    for (i = 0; i < 6; i++)
        for (j = 0; j < 4; j++) c[i][j] = vdupq_n_f32(0.0f);
    for (k = 0; k < kc; k++) {
        float32x4_t b0 = vld1q_f32(b), b1 = vld1q_f32(b + 4), b2 = vld1q_f32(b + 8), b3 = vld1q_f32(b + 12);
        for (i = 0; i < 6; i++) {
            float32x4_t av = vdupq_n_f32(a[i]);
            c[i][0] = vfmaq_f32(c[i][0], av, b0);
            c[i][1] = vfmaq_f32(c[i][1], av, b1);
            c[i][2] = vfmaq_f32(c[i][2], av, b2);
            c[i][3] = vfmaq_f32(c[i][3], av, b3);
        }
        a += MR;
        b += NR;
    }
    for (i = 0; i < 6; i++)
        for (j = 0; j < 4; j++) vst1q_f32(acc + i * NR + 4 * j, c[i][j]);
}
#else
static void kernel_6x16(int kc, const float *a, const float *b, float *acc)
{
    int k, i, j;
    for (i = 0; i < MR * NR; i++) acc[i] = 0.0f;
    for (k = 0; k < kc; k++) {
        for (i = 0; i < MR; i++) {
            float av = a[i];
            for (j = 0; j < NR; j++) acc[i * NR + j] += av * b[j];
        }
        a += MR;
        b += NR;
    }
}
#endif

/* Writes a tile of acc into C: overwrite or add, plus bias on the first K block. */
static void store_tile(const et_gemm_args *g, int first, const float *acc, int i0, int j0, int mr,
                       int nr)
{
    int i, j;
    int add = !first || g->accumulate;
    const float *bias = first ? g->bias : NULL;
    for (i = 0; i < mr; i++) {
        float *c = g->C + (size_t)(i0 + i) * g->ldc + j0;
        const float *s = acc + i * NR;
        if (add && bias)
            for (j = 0; j < nr; j++) c[j] += s[j] + bias[j0 + j];
        else if (add)
            for (j = 0; j < nr; j++) c[j] += s[j];
        else if (bias)
            for (j = 0; j < nr; j++) c[j] = s[j] + bias[j0 + j];
        else
            for (j = 0; j < nr; j++) c[j] = s[j];
    }
}

/* One task owns a tile of C (mc rows x ng slivers) and walks all of K, packing its own
 * A rows and B columns per K block: packing costs about 1/(2 mc) + 1/(32 ng) of the
 * arithmetic, and one parallel_for covers the whole product. */
static void task_tile(void *arg, int t, int w)
{
    gemm_job *J = (gemm_job *)arg;
    const et_gemm_args *g = J->g;
    float *packA = J->packs + (size_t)w * ((size_t)MC * KC + (size_t)KC * NG * NR);
    float *packB = packA + (size_t)MC * KC;
    int ib = t / J->ngroups, gb = t % J->ngroups;
    int i0 = ib * J->mc, mc = g->M - i0;
    int s0 = gb * J->ng, s1 = s0 + J->ng, s, r, pc;
#if ET_HAVE_AVX2
    float acc[MR * NR] __attribute__((aligned(32)));
#else
    float acc[MR * NR];
#endif
    if (mc > J->mc) mc = J->mc;
    if (s1 > J->nslivers) s1 = J->nslivers;
    for (pc = 0; pc < g->K; pc += KC) {
        int kc = g->K - pc < KC ? g->K - pc : KC;
        for (r = 0; r < mc; r += MR) {
            int mr = mc - r < MR ? mc - r : MR;
            pack_a_sliver(g, packA + (size_t)r * kc, pc, kc, i0 + r, mr);
        }
        for (s = s0; s < s1; s++) {
            int j0 = s * NR, nr = g->N - j0 < NR ? g->N - j0 : NR;
            pack_b_sliver(g, packB + (size_t)(s - s0) * kc * NR, pc, kc, j0, nr);
        }
        for (s = s0; s < s1; s++) {
            const float *bs = packB + (size_t)(s - s0) * kc * NR;
            int j0 = s * NR, nr = g->N - j0 < NR ? g->N - j0 : NR;
            for (r = 0; r < mc; r += MR) {
                int mr = mc - r < MR ? mc - r : MR;
                kernel_6x16(kc, packA + (size_t)r * kc, bs, acc);
                store_tile(g, pc == 0, acc, i0 + r, j0, mr, nr);
            }
        }
    }
}

static int tasks_for(int M, int mc, int nslivers, int ng)
{
    return ((M + mc - 1) / mc) * ((nslivers + ng - 1) / ng);
}

et_status et_gemm_f32(const et_gemm_args *g, const et_threads *th, float *scratch,
                      size_t scratch_bytes)
{
    gemm_job J;
    int nw = et_threads_workers(th);
    if (!g || g->M < 0 || g->N < 0 || g->K < 0 || !g->C) return ET_ERR_INVALID;
    if (g->M == 0 || g->N == 0) return ET_OK;
    if (g->ldc < g->N) return ET_ERR_INVALID;
    if (g->K > 0 && (!g->A || !g->B || g->lda < (g->transA ? g->M : g->K) ||
                     g->ldb < (g->transB ? g->K : g->N)))
        return ET_ERR_INVALID;
    if (!scratch || scratch_bytes < et_gemm_scratch_bytes(nw)) return ET_ERR_NOMEM;
    if (g->K == 0) {
        /* an empty product: C = bias (or unchanged when accumulating) */
        int i, j;
        for (i = 0; i < g->M; i++) {
            float *c = g->C + (size_t)i * g->ldc;
            for (j = 0; j < g->N; j++) {
                float b = g->bias ? g->bias[j] : 0.0f;
                c[j] = g->accumulate ? c[j] + b : b;
            }
        }
        return ET_OK;
    }
    J.g = g;
    J.packs = (float *)(((uintptr_t)scratch + 63) & ~(uintptr_t)63);
    J.nslivers = (g->N + NR - 1) / NR;
    /* Enough, and even, tasks for the workers. The tiling of M and N never changes a
     * result: each element is reduced over K in the same order whatever its tile. */
    J.mc = MC;
    J.ng = NG;
    while (nw > 1 && tasks_for(g->M, J.mc, J.nslivers, J.ng) < 4 * nw && J.ng > 2) J.ng /= 2;
    while (nw > 1 && tasks_for(g->M, J.mc, J.nslivers, J.ng) < 4 * nw && J.mc > 4 * MR)
        J.mc = (J.mc / 2 + MR - 1) / MR * MR;
    J.mblocks = (g->M + J.mc - 1) / J.mc;
    J.mc = ((g->M + J.mblocks - 1) / J.mblocks + MR - 1) / MR * MR; /* balance the blocks */
    J.mblocks = (g->M + J.mc - 1) / J.mc;
    J.ngroups = (J.nslivers + J.ng - 1) / J.ng;
    et_parallel_for(th, J.mblocks * J.ngroups, task_tile, &J);
    return ET_OK;
}

/* gemm.c - packed, blocked SGEMM (the GotoBLAS/BLIS loop structure).
 *
 * One parallel_for over tasks that each own rows of C and a group of up to 256 columns
 * (NGMAX slivers of NR). Each task walks K in blocks of KC (sequential, fixed: this is
 * what fixes the rounding), packs its B group once per block into NR-wide slivers, then
 * packs its rows block by block into 6-tall slivers and runs the MR x NR micro-kernel.
 * Every C element is reduced over k in the same order whatever the task layout (which
 * does depend on the worker count), so threads never change the bits.
 * Micro-kernels: 6x32 AVX-512F or 6x16 AVX2/FMA (x86-64), 6x16 NEON (aarch64), and a
 * 6x16 scalar one always present.
 * Deliberately avoids: run-time CPU dispatch (SIMD is chosen at compile time) and any
 * allocation (scratch comes from the caller's arena).
 */
#include "et_gemm.h"
#include "et_simd.h"
#if ET_HAVE_AVX2
#include <immintrin.h>
#elif ET_HAVE_NEON
#include <arm_neon.h>
#endif

#define MR 6
#if ET_HAVE_AVX512
#define NR 32    /* two 16-lane vectors per row: 12 accumulators of 32 registers */
#else
#define NR 16
#endif
#define KC 256
#define MC 72
#define NGMAX (256 / NR) /* slivers per task: a packed B group of KC x 256 (256 KiB) */

/* Per worker: an A block (MC x KC) and a B group (KC x NGMAX*NR), plus 16 floats of
 * slack that the A packing's overlapping vector stores may touch past a block's end. */
#define PACK_FLOATS ((size_t)MC * KC + (size_t)KC * NGMAX * NR + 16)

size_t et_gemm_scratch_bytes(int nworkers)
{
    if (nworkers < 1) nworkers = 1;
    return sizeof(float) * (size_t)nworkers * PACK_FLOATS + 64;
}

typedef struct {
    const et_gemm_args *g;
    float *packs;        /* per worker: PACK_FLOATS */
    int rows;            /* rows of C per task (a multiple of MR, except the last task) */
    int mc;              /* rows per A block within a task */
    int ng;              /* slivers per task */
    int mchunks, ngroups, nslivers;
} gemm_job;

/* --- packing: B into 16-wide slivers dst[k*NR + j], A into 6-tall ones dst[k*MR + i] */

#if ET_HAVE_AVX2
static __m256i lane_mask(int n)
{
    return _mm256_cmpgt_epi32(_mm256_set1_epi32(n), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}
#endif

static void pack_b_sliver(const et_gemm_args *g, float *dst, int pc, int kc, int j0, int nr)
{
    int k = 0, j;
    if (!g->transB) {
#if ET_HAVE_AVX2
        if (nr == NR) {
            for (; k < kc; k++) {
                const float *src = g->B + (size_t)(pc + k) * g->ldb + j0;
                for (j = 0; j < NR; j += 8) _mm256_store_ps(dst + k * NR + j, _mm256_loadu_ps(src + j));
            }
            return;
        }
#endif
        for (; k < kc; k++) {
            const float *src = g->B + (size_t)(pc + k) * g->ldb + j0;
            for (j = 0; j < nr; j++) dst[k * NR + j] = src[j];
            for (; j < NR; j++) dst[k * NR + j] = 0.0f;
        }
    } else {
#if ET_HAVE_AVX2
        /* 8 rows of B^T at a time, 8 k at a time, through an 8x8 transpose */
        int jb;
        for (jb = 0; jb < NR; jb += 8) {
            int rows = nr - jb < 8 ? (nr - jb < 0 ? 0 : nr - jb) : 8, r;
            const float *src[8];
            for (r = 0; r < 8; r++) src[r] = r < rows ? g->B + (size_t)(j0 + jb + r) * g->ldb + pc : NULL;
            for (k = 0; k + 8 <= kc; k += 8) {
                __m256 v[8];
                for (r = 0; r < 8; r++) v[r] = src[r] ? _mm256_loadu_ps(src[r] + k) : _mm256_setzero_ps();
                et_transpose8_avx2(v);
                for (r = 0; r < 8; r++) _mm256_store_ps(dst + (k + r) * NR + jb, v[r]);
            }
            for (; k < kc; k++)
                for (r = 0; r < 8; r++) dst[k * NR + jb + r] = src[r] ? src[r][k] : 0.0f;
        }
        return;
#else
        for (j = 0; j < nr; j++) {
            const float *src = g->B + (size_t)(j0 + j) * g->ldb + pc;
            for (k = 0; k < kc; k++) dst[k * NR + j] = src[k];
        }
        for (; j < NR; j++)
            for (k = 0; k < kc; k++) dst[k * NR + j] = 0.0f;
#endif
    }
}

/* May write up to 2 floats past dst + kc*MR (the next sliver's start, or the slack). */
static void pack_a_sliver(const et_gemm_args *g, float *dst, int pc, int kc, int i0, int mr)
{
    int k = 0, i;
    if (!g->transA) {
#if ET_HAVE_AVX2
        const float *src[8];
        for (i = 0; i < 8; i++) src[i] = i < mr ? g->A + (size_t)(i0 + i) * g->lda + pc : NULL;
        for (; k + 8 <= kc; k += 8) {
            __m256 v[8];
            for (i = 0; i < 8; i++) v[i] = src[i] ? _mm256_loadu_ps(src[i] + k) : _mm256_setzero_ps();
            et_transpose8_avx2(v);
            /* each column holds MR useful rows; later stores overwrite the 2 spare lanes */
            for (i = 0; i < 8; i++) _mm256_storeu_ps(dst + (k + i) * MR, v[i]);
        }
        for (; k < kc; k++)
            for (i = 0; i < MR; i++) dst[k * MR + i] = src[i] ? src[i][k] : 0.0f;
#else
        for (i = 0; i < mr; i++) {
            const float *src = g->A + (size_t)(i0 + i) * g->lda + pc;
            for (k = 0; k < kc; k++) dst[k * MR + i] = src[k];
        }
        for (; i < MR; i++)
            for (k = 0; k < kc; k++) dst[k * MR + i] = 0.0f;
#endif
    } else {
#if ET_HAVE_AVX2
        __m256i m = lane_mask(mr);
        for (; k < kc; k++)
            _mm256_storeu_ps(dst + k * MR, _mm256_maskload_ps(g->A + (size_t)(pc + k) * g->lda + i0, m));
#else
        for (; k < kc; k++) {
            const float *src = g->A + (size_t)(pc + k) * g->lda + i0;
            for (i = 0; i < mr; i++) dst[k * MR + i] = src[i];
            for (; i < MR; i++) dst[k * MR + i] = 0.0f;
        }
#endif
    }
}

/* --- micro-kernels: acc(MR,NR) = sum_k a(:,k) b(k,:) */

#if ET_HAVE_AVX2
/* One x86 kernel for both vector widths: two vectors of W lanes per row (NR = 2W). */
#if ET_HAVE_AVX512
typedef __m512 vec;
#define V_ZERO() _mm512_setzero_ps()
#define V_LOAD(p) _mm512_load_ps(p)
#define V_LOADU(p) _mm512_loadu_ps(p)
#define V_STOREU(p, x) _mm512_storeu_ps(p, x)
#define V_SET1(x) _mm512_set1_ps(x)
#define V_FMA(a, b, c) _mm512_fmadd_ps(a, b, c)
#define V_ADD(a, b) _mm512_add_ps(a, b)
#else
typedef __m256 vec;
#define V_ZERO() _mm256_setzero_ps()
#define V_LOAD(p) _mm256_load_ps(p)
#define V_LOADU(p) _mm256_loadu_ps(p)
#define V_STOREU(p, x) _mm256_storeu_ps(p, x)
#define V_SET1(x) _mm256_broadcast_ss(&(x))
#define V_FMA(a, b, c) _mm256_fmadd_ps(a, b, c)
#define V_ADD(a, b) _mm256_add_ps(a, b)
#endif
#define W (NR / 2)

/* c(6,NR) (row stride ldc) = [c +] a.b [+ bias(NR)]. Kept out of line: inlined into
 * task_tile, gcc (with -ffreestanding) spilled an accumulator to the stack in the k loop
 * and lost a quarter of the speed. */
__attribute__((noinline)) static void kernel_6x16_c(int kc, const float *a, const float *b, float *c, int ldc, int add,
                          const float *bias)
{
    vec c00 = V_ZERO(), c01 = V_ZERO(), c10 = V_ZERO(), c11 = V_ZERO();
    vec c20 = V_ZERO(), c21 = V_ZERO(), c30 = V_ZERO(), c31 = V_ZERO();
    vec c40 = V_ZERO(), c41 = V_ZERO(), c50 = V_ZERO(), c51 = V_ZERO();
    int k;
    for (k = 0; k < kc; k++) {
        vec b0 = V_LOAD(b), b1 = V_LOAD(b + W), av;
        av = V_SET1(a[0]); c00 = V_FMA(av, b0, c00); c01 = V_FMA(av, b1, c01);
        av = V_SET1(a[1]); c10 = V_FMA(av, b0, c10); c11 = V_FMA(av, b1, c11);
        av = V_SET1(a[2]); c20 = V_FMA(av, b0, c20); c21 = V_FMA(av, b1, c21);
        av = V_SET1(a[3]); c30 = V_FMA(av, b0, c30); c31 = V_FMA(av, b1, c31);
        av = V_SET1(a[4]); c40 = V_FMA(av, b0, c40); c41 = V_FMA(av, b1, c41);
        av = V_SET1(a[5]); c50 = V_FMA(av, b0, c50); c51 = V_FMA(av, b1, c51);
        a += MR;
        b += NR;
    }
    /* c + (acc + bias): the order store_tile uses */
#define ET__ROW(i, x0, x1)                                                                  \
    do {                                                                                 \
        float *ci = c + (size_t)(i) * ldc;                                               \
        vec y0 = x0, y1 = x1;                                                            \
        if (bias) {                                                                      \
            y0 = V_ADD(y0, V_LOADU(bias));                                               \
            y1 = V_ADD(y1, V_LOADU(bias + W));                                           \
        }                                                                                \
        if (add) {                                                                       \
            y0 = V_ADD(V_LOADU(ci), y0);                                                 \
            y1 = V_ADD(V_LOADU(ci + W), y1);                                             \
        }                                                                                \
        V_STOREU(ci, y0);                                                                \
        V_STOREU(ci + W, y1);                                                            \
    } while (0)
    ET__ROW(0, c00, c01); ET__ROW(1, c10, c11); ET__ROW(2, c20, c21);
    ET__ROW(3, c30, c31); ET__ROW(4, c40, c41); ET__ROW(5, c50, c51);
#undef ET__ROW
}
#undef W

static void kernel_6x16(int kc, const float *a, const float *b, float *acc)
{
    kernel_6x16_c(kc, a, b, acc, NR, 0, (const float *)0);
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

#if !ET_HAVE_AVX2
static void kernel_6x16_c(int kc, const float *a, const float *b, float *c, int ldc, int add,
                          const float *bias)
{
    float acc[MR * NR];
    int i, j;
    kernel_6x16(kc, a, b, acc);
    for (i = 0; i < MR; i++) {
        float *ci = c + (size_t)i * ldc;
        const float *s = acc + i * NR;
        for (j = 0; j < NR; j++) {
            float v = bias ? s[j] + bias[j] : s[j];
            ci[j] = add ? ci[j] + v : v;
        }
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

/* One task owns rows [m0, m1) of C and a group of up to NGMAX 16-wide slivers. For each
 * K block it packs its B group once, then walks its rows in A blocks of mc, packing each
 * and running the micro-kernel over every (6-row, 16-column) tile. Every C element is
 * reduced over k in the same order whatever the task layout. */
static void task_tile(void *arg, int t, int w)
{
    gemm_job *J = (gemm_job *)arg;
    const et_gemm_args *g = J->g;
    float *packB = J->packs + (size_t)w * PACK_FLOATS;
    float *packA = packB + (size_t)KC * NGMAX * NR; /* then the slack */
    int ib = t / J->ngroups, gb = t % J->ngroups;
    int m0 = ib * J->rows, m1 = m0 + J->rows;
    int s0 = gb * J->ng, s1 = s0 + J->ng, s, r, pc, i0;
#if ET_HAVE_AVX2
    float acc[MR * NR] __attribute__((aligned(64)));
#else
    float acc[MR * NR];
#endif
    if (m1 > g->M) m1 = g->M;
    if (s1 > J->nslivers) s1 = J->nslivers;
    for (pc = 0; pc < g->K; pc += KC) {
        int kc = g->K - pc < KC ? g->K - pc : KC;
        int first = pc == 0;
        for (s = s0; s < s1; s++) {
            int j0 = s * NR, nr = g->N - j0 < NR ? g->N - j0 : NR;
            pack_b_sliver(g, packB + (size_t)(s - s0) * kc * NR, pc, kc, j0, nr);
        }
        for (i0 = m0; i0 < m1; i0 += J->mc) {
            int mc = m1 - i0 < J->mc ? m1 - i0 : J->mc;
            for (r = 0; r < mc; r += MR) {
                int mr = mc - r < MR ? mc - r : MR;
                pack_a_sliver(g, packA + (size_t)r * kc, pc, kc, i0 + r, mr);
            }
            for (s = s0; s < s1; s++) {
                const float *bs = packB + (size_t)(s - s0) * kc * NR;
                int j0 = s * NR, nr = g->N - j0 < NR ? g->N - j0 : NR;
                for (r = 0; r < mc; r += MR) {
                    int mr = mc - r < MR ? mc - r : MR;
                    if (mr == MR && nr == NR) {
                        kernel_6x16_c(kc, packA + (size_t)r * kc, bs, g->C + (size_t)(i0 + r) * g->ldc + j0,
                                      g->ldc, !first || g->accumulate, (first && g->bias) ? g->bias + j0 : NULL);
                    } else {
                        kernel_6x16(kc, packA + (size_t)r * kc, bs, acc);
                        store_tile(g, first, acc, i0 + r, j0, mr, nr);
                    }
                }
            }
        }
    }
}

static int ceil_div(int a, int b)
{
    return (a + b - 1) / b;
}

/* the number of groups that splitting n slivers into about g even groups really gives */
static int groups_of(int n, int g)
{
    return ceil_div(n, ceil_div(n, g));
}

et_status et_gemm_f32(const et_gemm_args *g, const et_threads *th, float *scratch,
                      size_t scratch_bytes)
{
    gemm_job J;
    int nw = et_threads_workers(th), want, mblocks;
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
    J.nslivers = ceil_div(g->N, NR);
    /* Column groups as wide as a packed B group allows, evenly sized. With several
     * workers the task count is made a multiple of theirs where the shape allows, by
     * more (narrower) column groups or by row chunks, whichever repacks less: each extra
     * group repacks all of A (M x K), each extra row chunk all of B (K x N). */
    J.ngroups = groups_of(J.nslivers, ceil_div(J.nslivers, NGMAX));
    J.mchunks = 1;
    if (nw > 1 && J.ngroups % nw) {
        int more = ceil_div(J.ngroups, nw) * nw, a = J.ngroups, b = nw, t;
        while (b) { t = a % b; a = b; b = t; } /* a = gcd(ngroups, nw) */
        more = more <= J.nslivers ? groups_of(J.nslivers, more) : 0;
        mblocks = ceil_div(g->M, MR);
        want = nw / a; /* row chunks that make ngroups * chunks a multiple of nw */
        if (want > mblocks) want = mblocks;
        if (more && more % nw == 0 &&
            (double)(more - J.ngroups) * g->M <= (double)(want - 1) * g->N)
            J.ngroups = more;
        else
            J.mchunks = want;
    }
    J.ng = ceil_div(J.nslivers, J.ngroups);
    J.rows = ceil_div(ceil_div(g->M, J.mchunks), MR) * MR;
    J.mchunks = ceil_div(g->M, J.rows);
    /* A blocks of at most MC rows, evenly sized within a chunk */
    J.mc = ceil_div(ceil_div(J.rows, ceil_div(J.rows, MC)), MR) * MR;
    et_parallel_for(th, J.mchunks * J.ngroups, task_tile, &J);
    return ET_OK;
}

/* qgemm.c - int8 GEMMs: W8A8 (int8 x int8 -> int32, exact) and W8A32 (float x int8).
 *
 * Same loop structure as core/gemm.c (GotoBLAS/BLIS): the weights' panel is packed once
 * per N block and shared, then tasks over (MC rows x NG slivers) tiles pack their rows
 * of A and run an MR x NR micro-kernel.
 *
 * W8A8 packing: int8 values are sign-extended to int16 and interleaved in k-pairs, so
 * one 32-bit lane of A holds (a[k], a[k+1]) and one 16-lane row of a B sliver holds
 * (b[k][j], b[k+1][j]) for 8 columns j. _mm256_madd_epi16 then forms
 * a[k] b[k][j] + a[k+1] b[k+1][j] exactly (no saturation: |each product| <= 2^14),
 * which is why this path is preferred over _mm256_maddubs_epi16 (u8 x s8 pairs saturate
 * at 16 bits). With AVX-512 VNNI there are two more kernels: the default, vpdpwssd on
 * the same pairs (multiply and add fused), and vpdpbusd on k-quads: activations offset
 * to u8 (a + 128), four u8 x s8 products summed into each int32 lane without
 * saturation, and 128 * sum_k B per column subtracted again. The latter does twice the
 * multiply-adds per instruction but measured no faster over a layer's four GEMMs on
 * Zen 4 (the requantizing epilogue and packing dominate at K = 128), so it is not the
 * default. All give the same bits.
 * K is not blocked (the panel holds all of it): integer sums are exact in any order,
 * so any tiling or thread count gives the reference's bits.
 *
 * W8A32 packing: each int8 weight becomes q * scale[n] in a float panel (dequantized
 * inside the kernel), then a 6x16 FMA kernel as in core/gemm.c; K is blocked in fixed
 * steps so the rounding never depends on threads.
 *
 * Deliberately avoids: run-time CPU dispatch (kernels are chosen at compile time; every
 * compiled-in kernel can be run by index so tests check each against the reference),
 * and any allocation.
 */
#include "et_qgemm.h"
#include "et_quant.h"
#if ET_HAVE_AVX2
#include <immintrin.h>
#endif
#if ET_HAVE_NEON
#include <arm_neon.h>
#endif
#if ET_HAVE_AVX2 && defined(__AVX512VNNI__) && defined(__AVX512VL__)
#define ET__HAVE_VNNI 1
#endif

#define MR 6
#define NR 16
#define MC 72
#define NC 256
#define NG 8

// --- W8A8

typedef void (*s8_kernel)(int kh, const int32_t *a, const int16_t *b, int32_t *acc);

typedef struct {
    const et_qgemm_args *g;
    s8_kernel kern;
    int vec_epilogue;
    int16_t *packB;   /* (NC/NR slivers) x kh steps x 64 bytes */
    int32_t *packA;   /* per worker MC x kh steps */
    int32_t *corr;    /* quad kernels: 128 * sum_k B[n][k] per column of the panel */
    int quad;         /* steps are k-quads of u8 x s8 (else k-pairs of int16) */
    int kh, jc, nc, nslivers, ngroups;
} s8_job;

size_t et_qgemm_s8_scratch_bytes(int kmax, int nworkers)
{
    size_t kh = (size_t)((kmax > 0 ? kmax : 1) + 1) / 2;
    if (nworkers < 1) nworkers = 1;
    return (size_t)NC * kh * 2 * sizeof(int16_t) + (size_t)nworkers * MC * kh * sizeof(int32_t) +
           (size_t)NC * sizeof(int32_t) + 64;
}

static void pack_b_s8(const et_qgemm_args *g, int16_t *dst, int kh, int j0, int nr)
{
    int kp, j;
    for (j = 0; j < NR; j++) {
        const int8_t *src = j < nr ? g->B + (size_t)(j0 + j) * g->ldb : 0;
        for (kp = 0; kp < kh; kp++) {
            int k = 2 * kp;
            dst[kp * 32 + 2 * j] = src ? src[k] : 0;
            dst[kp * 32 + 2 * j + 1] = src && k + 1 < g->K ? src[k + 1] : 0;
        }
    }
}

static void pack_a_s8(const et_qgemm_args *g, int32_t *dst, int kh, int i0, int mr)
{
    int kp, i;
    for (i = 0; i < MR; i++) {
        const int8_t *src = i < mr ? g->A + (size_t)(i0 + i) * g->lda : 0;
        for (kp = 0; kp < kh; kp++) {
            int k = 2 * kp;
            uint32_t lo = src ? (uint16_t)(int16_t)src[k] : 0;
            uint32_t hi = src && k + 1 < g->K ? (uint16_t)(int16_t)src[k + 1] : 0;
            dst[kp * MR + i] = (int32_t)(lo | (hi << 16));
        }
    }
}

/* k-quads for u8 x s8 dot products: one int32 of A holds (a[k..k+3] + 128) as bytes, a B
 * sliver step holds 4 bytes of k for each of 16 columns; corr[j] = 128 * sum_k B[j][k]
 * takes the +128 back out. */
static void pack_b_quad(const et_qgemm_args *g, int16_t *dst16, int32_t *corr, int kq, int j0, int nr)
{
    int8_t *dst = (int8_t *)(void *)dst16;
    int k, j;
    for (j = 0; j < NR; j++) {
        const int8_t *src = j < nr ? g->B + (size_t)(j0 + j) * g->ldb : 0;
        int32_t sum = 0;
        for (k = 0; k < 4 * kq; k++) {
            int8_t v = src && k < g->K ? src[k] : 0;
            dst[(k / 4) * 64 + 4 * j + (k & 3)] = v;
            sum += v;
        }
        corr[j] = 128 * sum;
    }
}

static void pack_a_quad(const et_qgemm_args *g, int32_t *dst, int kq, int i0, int mr)
{
    int k, i;
    for (i = 0; i < MR; i++) {
        const int8_t *src = i < mr ? g->A + (size_t)(i0 + i) * g->lda : 0;
        for (k = 0; k < kq; k++) {
            uint32_t u = 0;
            int q;
            for (q = 0; q < 4; q++) {
                int kk = 4 * k + q;
                uint32_t byte = src && kk < g->K ? (uint8_t)(src[kk] ^ 0x80) : 0x80u;
                u |= byte << (8 * q);
            }
            dst[k * MR + i] = (int32_t)u;
        }
    }
}

static void kernel_s8_scalar(int kh, const int32_t *a, const int16_t *b, int32_t *acc)
{
    int kp, i, j;
    for (i = 0; i < MR * NR; i++) acc[i] = 0;
    for (kp = 0; kp < kh; kp++) {
        for (i = 0; i < MR; i++) {
            uint32_t u = (uint32_t)a[i];
            int32_t a0 = (int16_t)(uint16_t)(u & 0xFFFFu), a1 = (int16_t)(uint16_t)(u >> 16);
            for (j = 0; j < NR; j++) acc[i * NR + j] += a0 * b[2 * j] + a1 * b[2 * j + 1];
        }
        a += MR;
        b += 32;
    }
}

#if ET_HAVE_AVX2
/* One k-pair for one row: c0 += madd(a, b0), c1 += madd(a, b1). */
#define ROW_MADD(r, c0, c1)                                                  \
    av = _mm256_set1_epi32(a[r]);                                            \
    c0 = _mm256_add_epi32(c0, _mm256_madd_epi16(av, b0));                    \
    c1 = _mm256_add_epi32(c1, _mm256_madd_epi16(av, b1))
#define KERNEL_BODY(ROW)                                                     \
    __m256i c00 = _mm256_setzero_si256(), c01 = _mm256_setzero_si256();      \
    __m256i c10 = _mm256_setzero_si256(), c11 = _mm256_setzero_si256();      \
    __m256i c20 = _mm256_setzero_si256(), c21 = _mm256_setzero_si256();      \
    __m256i c30 = _mm256_setzero_si256(), c31 = _mm256_setzero_si256();      \
    __m256i c40 = _mm256_setzero_si256(), c41 = _mm256_setzero_si256();      \
    __m256i c50 = _mm256_setzero_si256(), c51 = _mm256_setzero_si256();      \
    int kp;                                                                  \
    for (kp = 0; kp < kh; kp++) {                                            \
        __m256i b0 = _mm256_loadu_si256((const __m256i *)b);                 \
        __m256i b1 = _mm256_loadu_si256((const __m256i *)(b + 16)), av;      \
        ROW(0, c00, c01); ROW(1, c10, c11); ROW(2, c20, c21);                \
        ROW(3, c30, c31); ROW(4, c40, c41); ROW(5, c50, c51);                \
        a += MR;                                                             \
        b += 32;                                                             \
    }                                                                        \
    _mm256_storeu_si256((__m256i *)(acc + 0), c00);  _mm256_storeu_si256((__m256i *)(acc + 8), c01);  \
    _mm256_storeu_si256((__m256i *)(acc + 16), c10); _mm256_storeu_si256((__m256i *)(acc + 24), c11); \
    _mm256_storeu_si256((__m256i *)(acc + 32), c20); _mm256_storeu_si256((__m256i *)(acc + 40), c21); \
    _mm256_storeu_si256((__m256i *)(acc + 48), c30); _mm256_storeu_si256((__m256i *)(acc + 56), c31); \
    _mm256_storeu_si256((__m256i *)(acc + 64), c40); _mm256_storeu_si256((__m256i *)(acc + 72), c41); \
    _mm256_storeu_si256((__m256i *)(acc + 80), c50); _mm256_storeu_si256((__m256i *)(acc + 88), c51)

static void kernel_s8_avx2(int kh, const int32_t *a, const int16_t *b, int32_t *acc)
{
    KERNEL_BODY(ROW_MADD);
}

#if ET__HAVE_VNNI
#define ROW_DPWSSD(r, c0, c1)                                                \
    av = _mm256_set1_epi32(a[r]);                                            \
    c0 = _mm256_dpwssd_epi32(c0, av, b0);                                    \
    c1 = _mm256_dpwssd_epi32(c1, av, b1)
static void kernel_s8_vnni(int kh, const int32_t *a, const int16_t *b, int32_t *acc)
{
    KERNEL_BODY(ROW_DPWSSD);
}

/* vpdpbusd: 4 u8 x s8 products per lane, each at most 255 * 128 < 2^15, summed into the
 * int32 lane without saturation (the non-"s" form): exact. */
#define ROW_DPBUSD(r, c0, c1)                                                \
    av = _mm256_set1_epi32(a[r]);                                            \
    c0 = _mm256_dpbusd_epi32(c0, av, b0);                                    \
    c1 = _mm256_dpbusd_epi32(c1, av, b1)
static void kernel_u8_vnni(int kq, const int32_t *a, const int16_t *b, int32_t *acc)
{
    int kh = kq;
    KERNEL_BODY(ROW_DPBUSD);
}
#endif

/* requant of 8 lanes: the vector form of et_quant_requant + zero point + clamp */
static __m256i requant8(__m256i x, __m256i m, __m256i sh, __m256i zp)
{
    const __m256i zero = _mm256_setzero_si256(), one = _mm256_set1_epi32(1);
    const __m256i nudge = _mm256_set1_epi64x((long long)1 << 30);
    __m256i left = _mm256_max_epi32(sh, zero);
    __m256i right = _mm256_max_epi32(_mm256_sub_epi32(zero, sh), zero);
    __m256i lim = _mm256_srlv_epi32(_mm256_set1_epi32(0x7FFFFFFF), left);
    __m256i ev, od, mask, rem, thr;
    x = _mm256_min_epi32(x, lim);
    x = _mm256_max_epi32(x, _mm256_xor_si256(lim, _mm256_set1_epi32(-1)));
    x = _mm256_sllv_epi32(x, left);
    /* SRDHM = floor((x*m + 2^30) / 2^31), the same as gemmlowp's nudge-and-truncate;
     * bits 31..62 of the 64-bit sum are the int32 result */
    ev = _mm256_add_epi64(_mm256_mul_epi32(x, m), nudge);
    od = _mm256_add_epi64(_mm256_mul_epi32(_mm256_srli_epi64(x, 32), _mm256_srli_epi64(m, 32)), nudge);
    x = _mm256_blend_epi32(_mm256_srli_epi64(ev, 31), _mm256_slli_epi64(od, 1), 0xAA);
    mask = _mm256_sub_epi32(_mm256_sllv_epi32(one, right), one);
    rem = _mm256_and_si256(x, mask);
    thr = _mm256_sub_epi32(_mm256_srli_epi32(mask, 1), _mm256_cmpgt_epi32(zero, x));
    x = _mm256_add_epi32(_mm256_srav_epi32(x, right), _mm256_and_si256(_mm256_cmpgt_epi32(rem, thr), one));
    x = _mm256_add_epi32(x, zp);
    x = _mm256_min_epi32(x, _mm256_set1_epi32(127));
    return _mm256_max_epi32(x, _mm256_set1_epi32(-128));
}
#endif

#if ET_HAVE_NEON
/* (a[k], a[k+1]) times 4 columns' (b[k][j], b[k+1][j]) pairs, summed pairwise */
static void kernel_s8_neon(int kh, const int32_t *a, const int16_t *b, int32_t *acc)
{
    int32x4_t c[MR][4];
    int kp, i, q;
    for (i = 0; i < MR; i++)
        for (q = 0; q < 4; q++) c[i][q] = vdupq_n_s32(0);
    for (kp = 0; kp < kh; kp++) {
        int16x8_t bq[4];
        for (q = 0; q < 4; q++) bq[q] = vld1q_s16(b + 8 * q);
        for (i = 0; i < MR; i++) {
            int16x8_t av = vreinterpretq_s16_s32(vdupq_n_s32(a[i]));
            for (q = 0; q < 4; q++) {
                int32x4_t lo = vmull_s16(vget_low_s16(av), vget_low_s16(bq[q]));
                int32x4_t hi = vmull_high_s16(av, bq[q]);
                c[i][q] = vaddq_s32(c[i][q], vpaddq_s32(lo, hi));
            }
        }
        a += MR;
        b += 32;
    }
    for (i = 0; i < MR; i++)
        for (q = 0; q < 4; q++) vst1q_s32(acc + i * NR + 4 * q, c[i][q]);
}
#endif

static int32_t add_wrap(int32_t a, int32_t b) { return (int32_t)((uint32_t)a + (uint32_t)b); }

/* The epilogue of one output element: shared by the reference and the scalar tails. */
static void store_one(const et_qgemm_args *g, size_t i, int j, int32_t acc)
{
    int32_t v = g->bias ? add_wrap(acc, g->bias[j]) : acc;
    if (g->out == ET_QGEMM_OUT_S32) {
        ((int32_t *)g->C)[i * g->ldc + j] = v;
    } else if (g->out == ET_QGEMM_OUT_F32) {
        ((float *)g->C)[i * g->ldc + j] = (float)v * g->scale[j];
    } else {
        int32_t r = add_wrap(et_quant_requant(v, g->mult[j], g->shift[j]), g->zp_out);
        ((int8_t *)g->C)[i * g->ldc + j] = (int8_t)(r < -128 ? -128 : r > 127 ? 127 : r);
    }
}

static void store_tile_s8(const s8_job *J, const int32_t *acc, int i0, int j0, int mr, int nr)
{
    const et_qgemm_args *g = J->g;
    int i, j;
#if ET_HAVE_AVX2
    if (J->vec_epilogue && nr == NR && g->out == ET_QGEMM_OUT_S8) { /* 2 x 8 lanes a row */
        __m256i m0 = _mm256_loadu_si256((const __m256i *)(g->mult + j0));
        __m256i m1 = _mm256_loadu_si256((const __m256i *)(g->mult + j0 + 8));
        __m256i s0 = _mm256_loadu_si256((const __m256i *)(g->shift + j0));
        __m256i s1 = _mm256_loadu_si256((const __m256i *)(g->shift + j0 + 8));
        __m256i zp = _mm256_set1_epi32(g->zp_out), b0 = _mm256_setzero_si256(), b1 = b0;
        if (g->bias) {
            b0 = _mm256_loadu_si256((const __m256i *)(g->bias + j0));
            b1 = _mm256_loadu_si256((const __m256i *)(g->bias + j0 + 8));
        }
        for (i = 0; i < mr; i++) {
            __m256i v0 = _mm256_add_epi32(_mm256_loadu_si256((const __m256i *)(acc + i * NR)), b0);
            __m256i v1 = _mm256_add_epi32(_mm256_loadu_si256((const __m256i *)(acc + i * NR + 8)), b1);
            __m256i p;
            v0 = requant8(v0, m0, s0, zp);
            v1 = requant8(v1, m1, s1, zp);
            p = _mm256_permute4x64_epi64(_mm256_packs_epi32(v0, v1), 0xD8);
            _mm_storeu_si128((__m128i *)((int8_t *)g->C + (size_t)(i0 + i) * g->ldc + j0),
                             _mm_packs_epi16(_mm256_castsi256_si128(p), _mm256_extracti128_si256(p, 1)));
        }
        return;
    }
#endif
    for (i = 0; i < mr; i++)
        for (j = 0; j < nr; j++) store_one(g, (size_t)(i0 + i), j0 + j, acc[i * NR + j]);
}

static void task_pack_b_s8(void *arg, int t, int w)
{
    s8_job *J = (s8_job *)arg;
    int s, s1 = (t + 1) * NG;
    ET_UNUSED(w);
    if (s1 > J->nslivers) s1 = J->nslivers;
    for (s = t * NG; s < s1; s++) {
        int j0 = J->jc + s * NR, nr = J->jc + J->nc - j0;
        if (J->quad)
            pack_b_quad(J->g, J->packB + (size_t)s * J->kh * 32, J->corr + s * NR, J->kh, j0, nr > NR ? NR : nr);
        else
            pack_b_s8(J->g, J->packB + (size_t)s * J->kh * 32, J->kh, j0, nr > NR ? NR : nr);
    }
}

static void task_compute_s8(void *arg, int t, int w)
{
    s8_job *J = (s8_job *)arg;
    const et_qgemm_args *g = J->g;
    int32_t *packA = J->packA + (size_t)w * MC * J->kh;
    int ib = t / J->ngroups, gb = t % J->ngroups, i0 = ib * MC, mc = g->M - i0, s, r;
    int s0 = gb * NG, s1 = s0 + NG;
    int32_t acc[MR * NR];
    if (mc > MC) mc = MC;
    if (s1 > J->nslivers) s1 = J->nslivers;
    for (r = 0; r < mc; r += MR)
        if (J->quad) pack_a_quad(g, packA + (size_t)r * J->kh, J->kh, i0 + r, mc - r < MR ? mc - r : MR);
        else pack_a_s8(g, packA + (size_t)r * J->kh, J->kh, i0 + r, mc - r < MR ? mc - r : MR);
    for (s = s0; s < s1; s++) {
        const int16_t *bs = J->packB + (size_t)s * J->kh * 32;
        int j0 = J->jc + s * NR, nr = J->jc + J->nc - j0;
        if (nr > NR) nr = NR;
        for (r = 0; r < mc; r += MR) {
            J->kern(J->kh, packA + (size_t)r * J->kh, bs, acc);
            if (J->quad) {
                const int32_t *c = J->corr + s * NR;
                int i, j;
                for (i = 0; i < MR; i++)
                    for (j = 0; j < NR; j++) acc[i * NR + j] -= c[j];
            }
            store_tile_s8(J, acc, i0 + r, j0, mc - r < MR ? mc - r : MR, nr);
        }
    }
}

static et_status check_s8(const et_qgemm_args *g)
{
    if (!g || g->M < 0 || g->N < 0 || g->K < 0 || g->K > ET_QGEMM_KMAX || !g->C) return ET_ERR_INVALID;
    if (g->M == 0 || g->N == 0) return ET_OK;
    if (g->ldc < g->N || (g->K > 0 && (!g->A || !g->B || g->lda < g->K || g->ldb < g->K)))
        return ET_ERR_INVALID;
    if (g->out == ET_QGEMM_OUT_S8 && (!g->mult || !g->shift || g->zp_out < -128 || g->zp_out > 127))
        return ET_ERR_INVALID;
    if (g->out == ET_QGEMM_OUT_F32 && !g->scale) return ET_ERR_INVALID;
    if (g->out != ET_QGEMM_OUT_S8 && g->out != ET_QGEMM_OUT_F32 && g->out != ET_QGEMM_OUT_S32)
        return ET_ERR_INVALID;
    return ET_OK;
}

et_status et_qgemm_s8_ref(const et_qgemm_args *g)
{
    int i, j, k;
    et_status s = check_s8(g);
    if (s != ET_OK || g->M == 0 || g->N == 0) return s;
    for (i = 0; i < g->M; i++)
        for (j = 0; j < g->N; j++) {
            int32_t acc = 0;
            for (k = 0; k < g->K; k++)
                acc += (int32_t)g->A[(size_t)i * g->lda + k] * (int32_t)g->B[(size_t)j * g->ldb + k];
            store_one(g, (size_t)i, j, acc);
        }
    return ET_OK;
}

int et_qgemm_s8_nkernels(void)
{
    int n = 1;
#if ET_HAVE_AVX2
    n++;
#endif
#if ET__HAVE_VNNI
    n += 2;
#endif
#if ET_HAVE_NEON
    n++;
#endif
    return n;
}

const char *et_qgemm_s8_kernel_name(int i)
{
    static const char *names[] = {
#if ET__HAVE_VNNI
        "avx512vnni-s16", "avx512vnni-u8s8",
#endif
#if ET_HAVE_AVX2
        "avx2",
#endif
#if ET_HAVE_NEON
        "neon",
#endif
        "scalar"};
    return i >= 0 && i < et_qgemm_s8_nkernels() ? names[i] : 0;
}

et_status et_qgemm_s8_with(const et_qgemm_args *g, const et_threads *th, void *scratch,
                           size_t scratch_bytes, int kernel)
{
    static const s8_kernel kerns[] = {
#if ET__HAVE_VNNI
        kernel_s8_vnni, kernel_u8_vnni,
#endif
#if ET_HAVE_AVX2
        kernel_s8_avx2,
#endif
#if ET_HAVE_NEON
        kernel_s8_neon,
#endif
        kernel_s8_scalar};
    s8_job J;
    int nw = et_threads_workers(th), nkern = et_qgemm_s8_nkernels();
    uint8_t *base;
    et_status s = check_s8(g);
    if (s != ET_OK || g->M == 0 || g->N == 0) return s;
    if (kernel < 0 || kernel >= nkern) return ET_ERR_INVALID;
    if (!scratch || scratch_bytes < et_qgemm_s8_scratch_bytes(g->K, nw)) return ET_ERR_NOMEM;
    if (g->K == 0) { /* an empty product: the epilogue of zero accumulators */
        int i, j;
        for (i = 0; i < g->M; i++)
            for (j = 0; j < g->N; j++) store_one(g, (size_t)i, j, 0);
        return ET_OK;
    }
    base = (uint8_t *)(((uintptr_t)scratch + 63) & ~(uintptr_t)63);
    J.g = g;
    J.kern = kerns[kernel];
    J.vec_epilogue = kernel < nkern - 1; /* the scalar kernel keeps the scalar epilogue */
#if ET__HAVE_VNNI
    J.quad = kernel == 1;
#else
    J.quad = 0;
#endif
    J.kh = J.quad ? (g->K + 3) / 4 : (g->K + 1) / 2;
    J.packB = (int16_t *)(void *)base;
    J.packA = (int32_t *)(void *)(base + (size_t)NC * ((g->K + 1) / 2) * 2 * sizeof(int16_t));
    J.corr = (int32_t *)(void *)((uint8_t *)J.packA + (size_t)nw * MC * ((g->K + 1) / 2) * sizeof(int32_t));
    for (J.jc = 0; J.jc < g->N; J.jc += NC) {
        J.nc = g->N - J.jc < NC ? g->N - J.jc : NC;
        J.nslivers = (J.nc + NR - 1) / NR;
        J.ngroups = (J.nslivers + NG - 1) / NG;
        et_parallel_for(th, J.ngroups, task_pack_b_s8, &J);
        et_parallel_for(th, ((g->M + MC - 1) / MC) * J.ngroups, task_compute_s8, &J);
    }
    return ET_OK;
}

et_status et_qgemm_s8(const et_qgemm_args *g, const et_threads *th, void *scratch,
                      size_t scratch_bytes)
{
    return et_qgemm_s8_with(g, th, scratch, scratch_bytes, 0);
}

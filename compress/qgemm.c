/* qgemm.c - the W8A8 GEMM: int8 x int8 -> int32, exact, with a requantizing, float or
 * int32 epilogue (et_qgemm.h). The W8A32 GEMM is wgemm.c.
 *
 * Loop structure of core/gemm.c (GotoBLAS/BLIS): the weights are packed into 16-column
 * slivers, then tasks over (MC rows x NG slivers) tiles convert their rows of A and run
 * an MR x NR micro-kernel whose accumulators go through the epilogue. Weights are packed
 * either per call, one NC-column panel at a time (et_qgemm_s8), or once, ahead of time,
 * for the whole matrix (et_qgemm_s8_pack + et_qgemm_s8_packed: a model packs its weights
 * when it is created, so a forward pays no packing at all).
 *
 * Two layouts of a sliver's k-steps, each 64 bytes (16 columns):
 *  - pairs: int8 sign-extended to int16 and interleaved in k-pairs, so one 32-bit lane of
 *    A holds (a[k], a[k+1]) and _mm256_madd_epi16 (AVX2) or vpdpwssd (AVX-512 VNNI) forms
 *    a[k] b[k][j] + a[k+1] b[k+1][j] exactly (|each product| <= 2^14). NEON and the scalar
 *    kernel use the same layout. _mm256_maddubs_epi16 (u8 x s8) is not used: its 16-bit
 *    pair sums saturate at 255 * 127 * 2 = 64770 > 32767.
 *  - quads (AVX-512 VNNI, the default there): vpdpbusd sums four u8 x s8 products into
 *    each int32 lane without saturation. A is offset to u8 (a + 128, an XOR of the sign
 *    bit) and 128 * sum_k B[j][k] per column is taken out again in the epilogue: exact,
 *    and twice the multiply-adds per instruction of vpdpwssd.
 * A is converted row by row into worker scratch (sign-extended pairs, or offset bytes),
 * rows of 32-bit words the kernel broadcasts; K is padded to whole steps with zeros in
 * the weights, so padding never changes a sum. K is not blocked: integer sums are exact
 * in any order, so every kernel, tiling and thread count gives et_qgemm_s8_ref's bits.
 *
 * The requantizing epilogue is vectorized (AVX-512: 16 lanes, the int8 clamp done by the
 * saturating narrow vpmovsdb; AVX2: 8 lanes): _mm*_mul_epi32 on even and odd lanes gives
 * the 64-bit products, and bits 31..62 of x*m + 2^30 are SRDHM's result, which equals
 * gemmlowp's nudge-and-truncate form; the saturating left shift is skipped when no column
 * of the call shifts left (a model's multipliers are all below 1).
 *
 * Deliberately avoids: run-time CPU dispatch (kernels are chosen at compile time; every
 * compiled-in kernel can be run by index so tests check each against the reference),
 * and any allocation.
 */
#include "et_qgemm.h"
#include "et_quant.h"
#include "et_quant_simd.h"
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
#define STEP 64 /* bytes of one k-step of a sliver */
#define PACK_MAGIC 0x384B5051 /* "QPK8" */

enum { LAY_PAIRS = 0, LAY_QUADS = 1 };

/* a: MR rows of ks 32-bit words, row stride lda words; b: ks steps of STEP bytes */
typedef void (*s8_kernel)(int ks, const int32_t *a, int lda, const int8_t *b, int32_t *acc);

typedef struct {
    const et_qgemm_args *g;
    s8_kernel kern;
    int layout, epi, no_left;
    const int8_t *packB;  /* slivers of the current panel (or of the whole matrix) */
    const int32_t *corr;  /* quads: 128 * sum_k B per column of packB */
    int32_t *packA;       /* per worker MC rows x ks words */
    int ks, jc, nc, nslivers, ng, ngroups;
} s8_job;

static int ksteps(int layout, int K) { return layout == LAY_QUADS ? (K + 3) / 4 : (K + 1) / 2; }

size_t et_qgemm_s8_scratch_bytes(int kmax, int nworkers)
{
    size_t kh = (size_t)((kmax > 0 ? kmax : 1) + 1) / 2;
    if (nworkers < 1) nworkers = 1;
    return (size_t)NC * kh * 2 * sizeof(int16_t) + (size_t)nworkers * MC * kh * sizeof(int32_t) +
           (size_t)NC * sizeof(int32_t) + 64;
}

size_t et_qgemm_s8_packed_scratch_bytes(int kmax, int nworkers)
{
    size_t kh = (size_t)((kmax > 0 ? kmax : 1) + 1) / 2;
    if (nworkers < 1) nworkers = 1;
    return (size_t)nworkers * MC * kh * sizeof(int32_t) + 64;
}

// --- packing

/* one sliver of nr weight rows from j0, pairs: dst[kp][j][2] int16 */
static void pack_b_pairs(const int8_t *B, int ldb, int K, int8_t *dst8, int ks, int j0, int nr)
{
    int16_t *dst = (int16_t *)(void *)dst8;
    int kp, j;
    for (j = 0; j < NR; j++) {
        const int8_t *src = j < nr ? B + (size_t)(j0 + j) * ldb : 0;
        for (kp = 0; kp < ks; kp++) {
            int k = 2 * kp;
            dst[kp * 32 + 2 * j] = src ? src[k] : 0;
            dst[kp * 32 + 2 * j + 1] = src && k + 1 < K ? src[k + 1] : 0;
        }
    }
}

/* quads: dst[kq][j][4] bytes, corr[j] = 128 * sum_k B[j][k] */
static void pack_b_quads(const int8_t *B, int ldb, int K, int8_t *dst, int32_t *corr, int ks, int j0, int nr)
{
    int j, q, k, kfull = K / 4;
    for (j = 0; j < NR; j++) {
        const int8_t *src = j < nr ? B + (size_t)(j0 + j) * ldb : 0;
        int32_t sum = 0;
        if (!src) {
            for (q = 0; q < ks; q++) ET_MEMSET(dst + q * STEP + 4 * j, 0, 4);
            corr[j] = 0;
            continue;
        }
        for (q = 0; q < kfull; q++) ET_MEMCPY(dst + q * STEP + 4 * j, src + 4 * q, 4);
        if (kfull < ks) {
            int8_t t[4] = {0, 0, 0, 0};
            for (k = 4 * kfull; k < K; k++) t[k - 4 * kfull] = src[k];
            ET_MEMCPY(dst + kfull * STEP + 4 * j, t, 4);
        }
        for (k = 0; k < K; k++) sum += src[k];
        corr[j] = 128 * sum;
    }
}

#if ET__HAVE_VNNI && ET_HAVE_AVX512
/* a full sliver of quads whose K is a multiple of 4: one gather of 16 rows' 4-byte words
 * per step, their byte sums by vpdpbusd against ones */
static void pack_b_quads_gather(const int8_t *B, int ldb, int K, int8_t *dst, int32_t *corr, int j0)
{
    const __m512i rows = _mm512_mullo_epi32(_mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15),
                                            _mm512_set1_epi32(ldb));
    const __m512i ones = _mm512_set1_epi8(1);
    const int8_t *base = B + (size_t)j0 * ldb;
    __m512i sum = _mm512_setzero_si512();
    int q;
    for (q = 0; q < K / 4; q++) {
        __m512i v = _mm512_i32gather_epi32(rows, (const void *)(base + 4 * q), 1);
        _mm512_storeu_si512((void *)(dst + (size_t)q * STEP), v);
        sum = _mm512_dpbusd_epi32(sum, ones, v);
    }
    _mm512_storeu_si512((void *)corr, _mm512_slli_epi32(sum, 7));
}
#endif

static void pack_sliver(int layout, const int8_t *B, int ldb, int K, int8_t *dst, int32_t *corr, int ks, int j0,
                        int nr)
{
#if ET__HAVE_VNNI && ET_HAVE_AVX512
    /* row offsets up to 15 ldb must fit the gather's int32 indices */
    if (layout == LAY_QUADS && nr == NR && K % 4 == 0 && ldb <= ET_QGEMM_KMAX * 4) {
        pack_b_quads_gather(B, ldb, K, dst, corr, j0);
        return;
    }
#endif
    if (layout == LAY_QUADS) pack_b_quads(B, ldb, K, dst, corr, ks, j0, nr);
    else pack_b_pairs(B, ldb, K, dst, ks, j0, nr);
}

/* rows [i0, i0+mr) of A into dst, row-major, ks words a row; rows mr..MR-1 of the last
 * micro-panel zeroed (their results are never stored) */
static void pack_a_rows(const et_qgemm_args *g, int layout, int32_t *dst, int ks, int i0, int mr, int mpad)
{
    int i, k, K = g->K;
    for (i = 0; i < mr; i++) {
        const int8_t *src = g->A + (size_t)(i0 + i) * g->lda;
        int32_t *d = dst + (size_t)i * ks;
        k = 0;
        if (layout == LAY_QUADS) {
#if ET_HAVE_AVX2
            const __m256i flip = _mm256_set1_epi8((char)0x80);
            for (; k + 32 <= K; k += 32)
                _mm256_storeu_si256((__m256i *)(void *)(d + k / 4),
                                    _mm256_xor_si256(_mm256_loadu_si256((const __m256i *)(const void *)(src + k)), flip));
#endif
            for (; k < 4 * ks; k += 4) {
                uint32_t u = 0;
                int q;
                for (q = 0; q < 4; q++)
                    u |= (uint32_t)(k + q < K ? (uint8_t)(src[k + q] ^ 0x80) : 0x80u) << (8 * q);
                d[k / 4] = (int32_t)u;
            }
        } else {
#if ET_HAVE_AVX2
            for (; k + 16 <= K; k += 16)
                _mm256_storeu_si256((__m256i *)(void *)(d + k / 2),
                                    _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)(const void *)(src + k))));
#endif
            for (; k < 2 * ks; k += 2) {
                uint32_t lo = k < K ? (uint16_t)(int16_t)src[k] : 0;
                uint32_t hi = k + 1 < K ? (uint16_t)(int16_t)src[k + 1] : 0;
                d[k / 2] = (int32_t)(lo | (hi << 16));
            }
        }
    }
    for (; i < mpad; i++) ET_MEMSET(dst + (size_t)i * ks, 0, sizeof(int32_t) * (size_t)ks);
}

// --- micro-kernels: acc(MR,NR) = A(MR, steps) . sliver

static void kernel_s8_scalar(int ks, const int32_t *a, int lda, const int8_t *b8, int32_t *acc)
{
    const int16_t *b = (const int16_t *)(const void *)b8;
    int kp, i, j;
    for (i = 0; i < MR * NR; i++) acc[i] = 0;
    for (kp = 0; kp < ks; kp++) {
        for (i = 0; i < MR; i++) {
            uint32_t u = (uint32_t)a[(size_t)i * lda + kp];
            int32_t a0 = (int16_t)(uint16_t)(u & 0xFFFFu), a1 = (int16_t)(uint16_t)(u >> 16);
            for (j = 0; j < NR; j++) acc[i * NR + j] += a0 * b[2 * j] + a1 * b[2 * j + 1];
        }
        b += 32;
    }
}

#if ET_HAVE_AVX2
/* One step for one row: c0 += op(a, b0), c1 += op(a, b1). */
#define ROW_MADD(v, c0, c1)                                                  \
    av = _mm256_set1_epi32(v);                                               \
    c0 = _mm256_add_epi32(c0, _mm256_madd_epi16(av, b0));                    \
    c1 = _mm256_add_epi32(c1, _mm256_madd_epi16(av, b1))
#define KERNEL_BODY(ROW)                                                     \
    const int32_t *a0 = a, *a1 = a0 + lda, *a2 = a1 + lda, *a3 = a2 + lda;   \
    const int32_t *a4 = a3 + lda, *a5 = a4 + lda;                            \
    __m256i c00 = _mm256_setzero_si256(), c01 = _mm256_setzero_si256();      \
    __m256i c10 = _mm256_setzero_si256(), c11 = _mm256_setzero_si256();      \
    __m256i c20 = _mm256_setzero_si256(), c21 = _mm256_setzero_si256();      \
    __m256i c30 = _mm256_setzero_si256(), c31 = _mm256_setzero_si256();      \
    __m256i c40 = _mm256_setzero_si256(), c41 = _mm256_setzero_si256();      \
    __m256i c50 = _mm256_setzero_si256(), c51 = _mm256_setzero_si256();      \
    int k;                                                                   \
    for (k = 0; k < ks; k++) {                                               \
        __m256i b0 = _mm256_loadu_si256((const __m256i *)(const void *)b);   \
        __m256i b1 = _mm256_loadu_si256((const __m256i *)(const void *)(b + 32)), av; \
        ROW(a0[k], c00, c01); ROW(a1[k], c10, c11); ROW(a2[k], c20, c21);    \
        ROW(a3[k], c30, c31); ROW(a4[k], c40, c41); ROW(a5[k], c50, c51);    \
        b += STEP;                                                           \
    }                                                                        \
    _mm256_storeu_si256((__m256i *)(acc + 0), c00);  _mm256_storeu_si256((__m256i *)(acc + 8), c01);  \
    _mm256_storeu_si256((__m256i *)(acc + 16), c10); _mm256_storeu_si256((__m256i *)(acc + 24), c11); \
    _mm256_storeu_si256((__m256i *)(acc + 32), c20); _mm256_storeu_si256((__m256i *)(acc + 40), c21); \
    _mm256_storeu_si256((__m256i *)(acc + 48), c30); _mm256_storeu_si256((__m256i *)(acc + 56), c31); \
    _mm256_storeu_si256((__m256i *)(acc + 64), c40); _mm256_storeu_si256((__m256i *)(acc + 72), c41); \
    _mm256_storeu_si256((__m256i *)(acc + 80), c50); _mm256_storeu_si256((__m256i *)(acc + 88), c51)

static void kernel_s8_avx2(int ks, const int32_t *a, int lda, const int8_t *b, int32_t *acc)
{
    KERNEL_BODY(ROW_MADD);
}

#if ET__HAVE_VNNI
#define ROW_DPWSSD(v, c0, c1)                                                \
    av = _mm256_set1_epi32(v);                                               \
    c0 = _mm256_dpwssd_epi32(c0, av, b0);                                    \
    c1 = _mm256_dpwssd_epi32(c1, av, b1)
static void kernel_s8_vnni(int ks, const int32_t *a, int lda, const int8_t *b, int32_t *acc)
{
    KERNEL_BODY(ROW_DPWSSD);
}

/* vpdpbusd: 4 u8 x s8 products per lane, each at most 255 * 128 < 2^15, summed into the
 * int32 lane without saturation (the non-"s" form): exact. */
#define ROW_DPBUSD(v, c0, c1)                                                \
    av = _mm256_set1_epi32(v);                                               \
    c0 = _mm256_dpbusd_epi32(c0, av, b0);                                    \
    c1 = _mm256_dpbusd_epi32(c1, av, b1)
static void kernel_u8_vnni(int ks, const int32_t *a, int lda, const int8_t *b, int32_t *acc)
{
    KERNEL_BODY(ROW_DPBUSD);
}
#endif

#endif

#if ET_HAVE_NEON
/* (a[k], a[k+1]) times 4 columns' (b[k][j], b[k+1][j]) pairs, summed pairwise */
static void kernel_s8_neon(int ks, const int32_t *a, int lda, const int8_t *b8, int32_t *acc)
{
    const int16_t *b = (const int16_t *)(const void *)b8;
    int32x4_t c[MR][4];
    int kp, i, q;
    for (i = 0; i < MR; i++)
        for (q = 0; q < 4; q++) c[i][q] = vdupq_n_s32(0);
    for (kp = 0; kp < ks; kp++) {
        int16x8_t bq[4];
        for (q = 0; q < 4; q++) bq[q] = vld1q_s16(b + 8 * q);
        for (i = 0; i < MR; i++) {
            int16x8_t av = vreinterpretq_s16_s32(vdupq_n_s32(a[(size_t)i * lda + kp]));
            for (q = 0; q < 4; q++) {
                int32x4_t lo = vmull_s16(vget_low_s16(av), vget_low_s16(bq[q]));
                int32x4_t hi = vmull_high_s16(av, bq[q]);
                c[i][q] = vaddq_s32(c[i][q], vpaddq_s32(lo, hi));
            }
        }
        b += 32;
    }
    for (i = 0; i < MR; i++)
        for (q = 0; q < 4; q++) vst1q_s32(acc + i * NR + 4 * q, c[i][q]);
}
#endif

/* epilogues: scalar (store_one), AVX2 (8 lanes), AVX-512 (16 lanes) */
enum { EPI_SCALAR = 0, EPI_AVX2 = 1, EPI_AVX512 = 2 };
#if ET_HAVE_AVX512
#define EPI_BEST EPI_AVX512
#else
#define EPI_BEST EPI_AVX2
#endif

typedef struct {
    const char *name;
    s8_kernel fn;
    int layout, epi;
} s8_kdesc;

/* the best first, scalar last; each epilogue is run by at least one kernel, so the tests
 * that run every kernel check every epilogue */
static const s8_kdesc kdescs[] = {
#if ET__HAVE_VNNI
    {"avx512vnni-u8s8", kernel_u8_vnni, LAY_QUADS, EPI_BEST},
    {"avx512vnni-s16", kernel_s8_vnni, LAY_PAIRS, EPI_BEST},
#endif
#if ET_HAVE_AVX2
    {"avx2", kernel_s8_avx2, LAY_PAIRS, EPI_AVX2},
#endif
#if ET_HAVE_NEON
    {"neon", kernel_s8_neon, LAY_PAIRS, EPI_SCALAR},
#endif
    {"scalar", kernel_s8_scalar, LAY_PAIRS, EPI_SCALAR}};
#define NKERNELS ((int)(sizeof kdescs / sizeof kdescs[0]))

// --- epilogue

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

#if ET_HAVE_AVX512
/* 16 lanes of the int8 epilogue; the clamp to [-128, 127] is vpmovsdb's saturation */
static void requant16_rows(const int32_t *acc, int mr, __m512i bias, __m512i m, __m512i sh, __m512i zp, int no_left,
                           int8_t *out, int ldc)
{
    const __m512i zero = _mm512_setzero_si512(), one = _mm512_set1_epi32(1);
    const __m512i nudge = _mm512_set1_epi64((long long)1 << 30);
    __m512i left = _mm512_max_epi32(sh, zero), right = _mm512_max_epi32(_mm512_sub_epi32(zero, sh), zero);
    __m512i lim = _mm512_srlv_epi32(_mm512_set1_epi32(0x7FFFFFFF), left), nlim = _mm512_xor_si512(lim, _mm512_set1_epi32(-1));
    __m512i modd = _mm512_srli_epi64(m, 32);
    __m512i mask = _mm512_sub_epi32(_mm512_sllv_epi32(one, right), one), thr0 = _mm512_srli_epi32(mask, 1);
    int i;
    for (i = 0; i < mr; i++) {
        __m512i x = _mm512_add_epi32(_mm512_loadu_si512((const void *)(acc + i * NR)), bias), ev, od, rem, thr;
        if (!no_left) {
            x = _mm512_max_epi32(_mm512_min_epi32(x, lim), nlim);
            x = _mm512_sllv_epi32(x, left);
        }
        ev = _mm512_add_epi64(_mm512_mul_epi32(x, m), nudge);
        od = _mm512_add_epi64(_mm512_mul_epi32(_mm512_srli_epi64(x, 32), modd), nudge);
        x = _mm512_mask_blend_epi32((__mmask16)0xAAAA, _mm512_srli_epi64(ev, 31), _mm512_slli_epi64(od, 1));
        rem = _mm512_and_si512(x, mask);
        thr = _mm512_add_epi32(thr0, _mm512_srli_epi32(x, 31));
        x = _mm512_srav_epi32(x, right);
        x = _mm512_mask_add_epi32(x, _mm512_cmpgt_epi32_mask(rem, thr), x, one);
        x = _mm512_add_epi32(x, zp);
        _mm_storeu_si128((__m128i *)(void *)(out + (size_t)i * ldc), _mm512_cvtsepi32_epi8(x));
    }
}
#endif

/* the MR x NR tile at (i0, j0); corr: quads' per-column offset correction or NULL */
static void store_tile_s8(const s8_job *J, int32_t *acc, const int32_t *corr, int i0, int j0, int mr, int nr)
{
    const et_qgemm_args *g = J->g;
    int i, j;
#if ET_HAVE_AVX2
    if (J->epi != EPI_SCALAR && nr == NR) {
        __m256i b0 = _mm256_setzero_si256(), b1 = b0;
        if (g->bias) {
            b0 = _mm256_loadu_si256((const __m256i *)(g->bias + j0));
            b1 = _mm256_loadu_si256((const __m256i *)(g->bias + j0 + 8));
        }
        if (corr) { /* acc - corr + bias wraps exactly like acc + bias */
            b0 = _mm256_sub_epi32(b0, _mm256_loadu_si256((const __m256i *)corr));
            b1 = _mm256_sub_epi32(b1, _mm256_loadu_si256((const __m256i *)(corr + 8)));
        }
#if ET_HAVE_AVX512
        if (g->out == ET_QGEMM_OUT_S8 && J->epi == EPI_AVX512) {
            requant16_rows(acc, mr, _mm512_inserti64x4(_mm512_castsi256_si512(b0), b1, 1),
                           _mm512_loadu_si512((const void *)(g->mult + j0)),
                           _mm512_loadu_si512((const void *)(g->shift + j0)), _mm512_set1_epi32(g->zp_out),
                           J->no_left, (int8_t *)g->C + (size_t)i0 * g->ldc + j0, g->ldc);
            return;
        }
#endif
        if (g->out == ET_QGEMM_OUT_S8) {
            __m256i m0 = _mm256_loadu_si256((const __m256i *)(g->mult + j0));
            __m256i m1 = _mm256_loadu_si256((const __m256i *)(g->mult + j0 + 8));
            __m256i s0 = _mm256_loadu_si256((const __m256i *)(g->shift + j0));
            __m256i s1 = _mm256_loadu_si256((const __m256i *)(g->shift + j0 + 8));
            __m256i zp = _mm256_set1_epi32(g->zp_out);
            for (i = 0; i < mr; i++) {
                __m256i v0 = _mm256_add_epi32(_mm256_loadu_si256((const __m256i *)(acc + i * NR)), b0);
                __m256i v1 = _mm256_add_epi32(_mm256_loadu_si256((const __m256i *)(acc + i * NR + 8)), b1);
                __m256i p;
                v0 = et_requant8_avx2(v0, m0, s0, zp);
                v1 = et_requant8_avx2(v1, m1, s1, zp);
                p = _mm256_permute4x64_epi64(_mm256_packs_epi32(v0, v1), 0xD8);
                _mm_storeu_si128((__m128i *)((int8_t *)g->C + (size_t)(i0 + i) * g->ldc + j0),
                                 _mm_packs_epi16(_mm256_castsi256_si128(p), _mm256_extracti128_si256(p, 1)));
            }
            return;
        }
        for (i = 0; i < mr; i++) {
            __m256i v0 = _mm256_add_epi32(_mm256_loadu_si256((const __m256i *)(acc + i * NR)), b0);
            __m256i v1 = _mm256_add_epi32(_mm256_loadu_si256((const __m256i *)(acc + i * NR + 8)), b1);
            size_t o = (size_t)(i0 + i) * g->ldc + j0;
            if (g->out == ET_QGEMM_OUT_F32) { /* (float)v * scale: the scalar form's bits */
                float *c = (float *)g->C + o;
                _mm256_storeu_ps(c, _mm256_mul_ps(_mm256_cvtepi32_ps(v0), _mm256_loadu_ps(g->scale + j0)));
                _mm256_storeu_ps(c + 8, _mm256_mul_ps(_mm256_cvtepi32_ps(v1), _mm256_loadu_ps(g->scale + j0 + 8)));
            } else {
                int32_t *c = (int32_t *)g->C + o;
                _mm256_storeu_si256((__m256i *)c, v0);
                _mm256_storeu_si256((__m256i *)(c + 8), v1);
            }
        }
        return;
    }
#endif
    if (corr)
        for (i = 0; i < mr; i++)
            for (j = 0; j < nr; j++) acc[i * NR + j] -= corr[j];
    for (i = 0; i < mr; i++)
        for (j = 0; j < nr; j++) store_one(g, (size_t)(i0 + i), j0 + j, acc[i * NR + j]);
}

// --- tasks

typedef struct {
    const s8_job *J;
    const int8_t *B;
    int ldb;
    int8_t *dst;
    int32_t *corr;
} pack_job;

static void task_pack_b(void *arg, int t, int w)
{
    pack_job *P = (pack_job *)arg;
    const s8_job *J = P->J;
    int s, s1 = (t + 1) * NG;
    ET_UNUSED(w);
    if (s1 > J->nslivers) s1 = J->nslivers;
    for (s = t * NG; s < s1; s++) {
        int j0 = J->jc + s * NR, nr = J->jc + J->nc - j0;
        pack_sliver(J->layout, P->B, P->ldb, J->g->K, P->dst + (size_t)s * J->ks * STEP, P->corr + s * NR, J->ks,
                    j0, nr > NR ? NR : nr);
    }
}

static void task_compute_s8(void *arg, int t, int w)
{
    s8_job *J = (s8_job *)arg;
    const et_qgemm_args *g = J->g;
    int32_t *packA = J->packA + (size_t)w * MC * J->ks;
    int ib = t / J->ngroups, gb = t % J->ngroups, i0 = ib * MC, mc = g->M - i0, s, r;
    int s0 = gb * J->ng, s1 = s0 + J->ng;
    int32_t acc[MR * NR];
    if (mc > MC) mc = MC;
    if (s1 > J->nslivers) s1 = J->nslivers;
    pack_a_rows(g, J->layout, packA, J->ks, i0, mc, (mc + MR - 1) / MR * MR);
    for (s = s0; s < s1; s++) {
        const int8_t *bs = J->packB + (size_t)s * J->ks * STEP;
        int j0 = J->jc + s * NR, nr = J->jc + J->nc - j0;
        if (nr > NR) nr = NR;
        for (r = 0; r < mc; r += MR) {
            J->kern(J->ks, packA + (size_t)r * J->ks, J->ks, bs, acc);
            store_tile_s8(J, acc, J->layout == LAY_QUADS ? J->corr + s * NR : 0, i0 + r, j0,
                          mc - r < MR ? mc - r : MR, nr);
        }
    }
}

/* tiles of the panel in J (jc, nc, nslivers, packB set): groups of slivers narrow enough
 * that every worker gets a few tasks when M is small (sampling) */
static void run_tiles(s8_job *J, const et_threads *th)
{
    int rb = (J->g->M + MC - 1) / MC, want = 4 * et_threads_workers(th);
    J->ng = NG;
    while (J->ng > 1 && rb * ((J->nslivers + J->ng - 1) / J->ng) < want) J->ng /= 2;
    J->ngroups = (J->nslivers + J->ng - 1) / J->ng;
    et_parallel_for(th, rb * J->ngroups, task_compute_s8, J);
}

static et_status check_s8(const et_qgemm_args *g, int need_b)
{
    if (!g || g->M < 0 || g->N < 0 || g->K < 0 || g->K > ET_QGEMM_KMAX || !g->C) return ET_ERR_INVALID;
    if (g->M == 0 || g->N == 0) return ET_OK;
    if (g->ldc < g->N || (g->K > 0 && (!g->A || g->lda < g->K || (need_b && (!g->B || g->ldb < g->K)))))
        return ET_ERR_INVALID;
    if (g->out == ET_QGEMM_OUT_S8 && (!g->mult || !g->shift || g->zp_out < -128 || g->zp_out > 127))
        return ET_ERR_INVALID;
    if (g->out == ET_QGEMM_OUT_F32 && !g->scale) return ET_ERR_INVALID;
    if (g->out != ET_QGEMM_OUT_S8 && g->out != ET_QGEMM_OUT_F32 && g->out != ET_QGEMM_OUT_S32)
        return ET_ERR_INVALID;
    return ET_OK;
}

/* an empty product: the epilogue of zero accumulators */
static void store_zero(const et_qgemm_args *g)
{
    int i, j;
    for (i = 0; i < g->M; i++)
        for (j = 0; j < g->N; j++) store_one(g, (size_t)i, j, 0);
}

static void job_init(s8_job *J, const et_qgemm_args *g, int kernel)
{
    int j;
    J->g = g;
    J->kern = kdescs[kernel].fn;
    J->layout = kdescs[kernel].layout;
    J->epi = kdescs[kernel].epi;
    J->ks = ksteps(J->layout, g->K);
    J->no_left = 1;
    if (g->out == ET_QGEMM_OUT_S8)
        for (j = 0; j < g->N; j++)
            if (g->shift[j] > 0) J->no_left = 0;
}

et_status et_qgemm_s8_ref(const et_qgemm_args *g)
{
    int i, j, k;
    et_status s = check_s8(g, 1);
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

int et_qgemm_s8_nkernels(void) { return NKERNELS; }

const char *et_qgemm_s8_kernel_name(int i) { return i >= 0 && i < NKERNELS ? kdescs[i].name : 0; }

et_status et_qgemm_s8_with(const et_qgemm_args *g, const et_threads *th, void *scratch,
                           size_t scratch_bytes, int kernel)
{
    s8_job J;
    pack_job P;
    int nw = et_threads_workers(th);
    uint8_t *base;
    int32_t *corr;
    et_status s = check_s8(g, 1);
    if (s != ET_OK || g->M == 0 || g->N == 0) return s;
    if (kernel < 0 || kernel >= NKERNELS) return ET_ERR_INVALID;
    if (!scratch || scratch_bytes < et_qgemm_s8_scratch_bytes(g->K, nw)) return ET_ERR_NOMEM;
    if (g->K == 0) {
        store_zero(g);
        return ET_OK;
    }
    job_init(&J, g, kernel);
    /* panel (NC columns x ks steps), its corrections, then per-worker rows of A; a step
     * of either layout is 64 bytes and pairs take the most steps, which the size covers */
    base = (uint8_t *)(((uintptr_t)scratch + 63) & ~(uintptr_t)63);
    corr = (int32_t *)(void *)(base + (size_t)NC * ((g->K + 1) / 2) * 2 * sizeof(int16_t));
    J.packA = corr + NC;
    J.packB = (const int8_t *)base;
    J.corr = corr;
    P.J = &J; P.B = g->B; P.ldb = g->ldb; P.dst = (int8_t *)base; P.corr = corr;
    for (J.jc = 0; J.jc < g->N; J.jc += NC) {
        J.nc = g->N - J.jc < NC ? g->N - J.jc : NC;
        J.nslivers = (J.nc + NR - 1) / NR;
        et_parallel_for(th, (J.nslivers + NG - 1) / NG, task_pack_b, &P);
        run_tiles(&J, th);
    }
    return ET_OK;
}

et_status et_qgemm_s8(const et_qgemm_args *g, const et_threads *th, void *scratch,
                      size_t scratch_bytes)
{
    return et_qgemm_s8_with(g, th, scratch, scratch_bytes, 0);
}

// --- weights packed ahead of time

typedef struct {
    int32_t magic, layout, N, K, ks, nslivers;
    int32_t pad[10];
} pack_head; /* 64 bytes, so the slivers stay 64-byte aligned */

size_t et_qgemm_s8_pack_bytes(int N, int K)
{
    size_t ns, ks;
    if (N <= 0 || K < 0 || K > ET_QGEMM_KMAX) return 0;
    ns = (size_t)(N + NR - 1) / NR;
    ks = (size_t)ksteps(kdescs[0].layout, K);
    return sizeof(pack_head) + ns * ks * STEP + ns * NR * sizeof(int32_t);
}

typedef struct {
    const int8_t *B;
    int ldb;
    pack_head *h;
} wpack_job;

static void task_pack_whole(void *arg, int s, int w)
{
    wpack_job *P = (wpack_job *)arg;
    pack_head *h = P->h;
    int8_t *slivers = (int8_t *)(h + 1);
    int32_t *corr = (int32_t *)(void *)(slivers + (size_t)h->nslivers * h->ks * STEP);
    int nr = h->N - s * NR;
    ET_UNUSED(w);
    pack_sliver(h->layout, P->B, P->ldb, h->K, slivers + (size_t)s * h->ks * STEP, corr + s * NR, h->ks, s * NR,
                nr > NR ? NR : nr);
}

et_status et_qgemm_s8_pack(const int8_t *B, int ldb, int N, int K, const et_threads *th, void *dst,
                           size_t dst_bytes)
{
    wpack_job P;
    size_t need = et_qgemm_s8_pack_bytes(N, K);
    if (!need || !dst || ((uintptr_t)dst & 63) || (K > 0 && (!B || ldb < K))) return ET_ERR_INVALID;
    if (dst_bytes < need) return ET_ERR_NOMEM;
    ET_MEMSET(dst, 0, sizeof(pack_head));
    P.h = (pack_head *)dst;
    P.h->magic = PACK_MAGIC;
    P.h->layout = kdescs[0].layout;
    P.h->N = N;
    P.h->K = K;
    P.h->ks = ksteps(P.h->layout, K);
    P.h->nslivers = (N + NR - 1) / NR;
    P.B = B;
    P.ldb = ldb;
    et_parallel_for(th, P.h->nslivers, task_pack_whole, &P);
    return ET_OK;
}

et_status et_qgemm_s8_packed(const et_qgemm_args *g, const void *packed, const et_threads *th, void *scratch,
                             size_t scratch_bytes)
{
    const pack_head *h = (const pack_head *)packed;
    s8_job J;
    et_status s = check_s8(g, 0);
    if (s != ET_OK) return s;
    if (!h || ((uintptr_t)h & 63) || h->magic != PACK_MAGIC || h->layout != kdescs[0].layout || h->N != g->N ||
        h->K != g->K)
        return ET_ERR_INVALID;
    if (g->M == 0 || g->N == 0) return ET_OK;
    if (!scratch || scratch_bytes < et_qgemm_s8_packed_scratch_bytes(g->K, et_threads_workers(th)))
        return ET_ERR_NOMEM;
    if (g->K == 0) {
        store_zero(g);
        return ET_OK;
    }
    job_init(&J, g, 0);
    J.packB = (const int8_t *)(h + 1);
    J.corr = (const int32_t *)(const void *)(J.packB + (size_t)h->nslivers * h->ks * STEP);
    J.packA = (int32_t *)(((uintptr_t)scratch + 63) & ~(uintptr_t)63);
    J.jc = 0;
    J.nc = g->N;
    J.nslivers = h->nslivers;
    run_tiles(&J, th);
    return ET_OK;
}

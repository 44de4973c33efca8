/* et_math.h - the float math the core needs, without libm.
 *
 * The core may call nothing outside itself but memcpy/memset/memmove, so it carries
 * its own exp, log, tanh, sqrt and pow. Each scalar function exists twice with the
 * same bits: `et_expf` & co. (out of line, in math.c, for callers that take their
 * address or want small code) and `et_expf_inl` & co. (static inline, for hot loops).
 * Where the target has AVX2+FMA (ET_HAVE_AVX2) there are 8-wide versions
 * `et_expf_avx2`, `et_logf_avx2`, `et_tanhf_avx2` that run the same operations as the
 * scalar code, lane by lane, so they return the same bits as et_expf_inl & co. when
 * the scalar code is built with FMA (as -march=native on an AVX2 machine does).
 *
 * Accuracy, from exhaustive sweeps of all 2^32 inputs against glibc's double
 * functions (the exact value for this purpose), with and without FMA: expf 0.82 ulp
 * (0.85 without FMA), logf 0.84, tanhf 1.05, sqrtf correctly rounded (0.75 ulp on the
 * Newton path), powf 0.5 on 5e7 random pairs. Against glibc's float functions that is
 * at most 1 ulp for expf/logf and 2 for tanhf (glibc's tanhf is itself up to 2 ulp off).
 * tests/check_math.c re-measures on 1.5M+ points per function. Special values follow
 * C99 Annex F where it is cheap (NaN in gives NaN out, exp(-inf) = 0, exp(big) = +inf,
 * log(0) = -inf, log(<0) = NaN), but errno and the exception flags are not maintained.
 * Speed on one AVX2 core, per element: exp 0.5 ns (the inline scalar version
 * auto-vectorizes), tanh 0.9 ns in 8 lanes (5 ns scalar), log 0.7 ns in 8 lanes.
 *
 * Deliberately avoids: <math.h>, tables (everything is a short polynomial, so the
 * vector versions need no gathers), double precision in the float paths (powf alone
 * works in double; on a soft-float target that pulls in libgcc's helpers), and
 * -ffast-math, which must not be used on files that include this header: it would
 * fold the (x + 1.5*2^23) - 1.5*2^23 rounding and the Fast2Sum below. The code is
 * written for -ffp-contract=off (which -std=c99 implies) and uses FMA explicitly,
 * through ET__FMAF, where the target has it.
 * Assumes FLT_EVAL_METHOD == 0 (float arithmetic in float: SSE, NEON, not x87).
 */
#ifndef ET_MATH_H
#define ET_MATH_H

#include "et_conf.h"

/** e^x. Within 2 ulp of glibc on [-88, 88]; 0 below about -103.97, +inf above about
 *  88.72, exp(-inf) = 0, NaN in gives NaN out.
 *  @param[in] x  any float
 *  @return e^x */
float et_expf(float x);

/** Natural logarithm. Within 2 ulp of glibc on (0, FLT_MAX] including subnormals;
 *  log(+-0) = -inf, log(x < 0) = NaN, log(+inf) = +inf, NaN in gives NaN out.
 *  @param[in] x  any float
 *  @return ln x */
float et_logf(float x);

/** Hyperbolic tangent. Within 2 ulp of glibc everywhere (relative accuracy kept for
 *  tiny |x|, and tanh(x) = x for subnormal x); exactly +-1 for |x| > 9.02; NaN gives NaN.
 *  @param[in] x  any float
 *  @return tanh x */
float et_tanhf(float x);

/** Square root, correctly rounded where the target has a sqrt instruction and
 *  within 1 ulp otherwise; sqrt(-0) = -0, sqrt(x < 0) = NaN, sqrt(+inf) = +inf.
 *  @param[in] x  any float
 *  @return sqrt x */
float et_sqrtf(float x);

/** x^y for x > 0, computed as exp(y log x) in double, so the result is within 1 ulp
 *  (nearly always correctly rounded) over the whole float range, overflowing to +inf
 *  and underflowing through the subnormals to 0. Edge cases: x^0 = 1 and 1^y = 1
 *  (even for NaN), +0^y = 0 (y > 0) or +inf (y < 0), +inf^y = +inf (y > 0) or 0
 *  (y < 0); a NaN, or a negative x (not supported: the core never needs it), gives NaN.
 *  @param[in] x  base, > 0
 *  @param[in] y  exponent, any float
 *  @return x^y */
float et_powf(float x, float y);

// --- private helpers shared by the inline and vector versions

/* Fused multiply-add where the target does it in hardware, a*b+c otherwise. A plain
 * __builtin_fmaf on a target without FMA would become a call to libm's fmaf. */
#if defined(__FMA__) || defined(__aarch64__) || defined(__ARM_FEATURE_FMA)
#define ET__FMAF(a, b, c) __builtin_fmaf((a), (b), (c))
#define ET__HAVE_FMA 1
#else
#define ET__FMAF(a, b, c) ((a) * (b) + (c))
#endif

/* With -fno-math-errno, __builtin_sqrtf on these targets is one instruction; without
 * it gcc would keep a call to sqrtf for negative inputs, so the Newton path is used. */
#if defined(__NO_MATH_ERRNO__) && !defined(ET_MATH_SOFT_SQRT) &&                        \
    (defined(__SSE__) || defined(__aarch64__) || defined(__ARM_FP) || defined(__riscv_fsqrt) || \
     defined(__riscv_flen) || defined(_ARCH_PPC))
#define ET__HW_SQRT 1
#endif

/* Type punning through a union: defined behaviour in C99 TC3 and in gcc, and unlike
 * memcpy it needs no library call under -ffreestanding (which implies -fno-builtin). */
typedef union et__fbits {
    float f;
    uint32_t u;
} et__fbits;

static inline uint32_t et__f2u(float f)
{
    et__fbits b;
    b.f = f;
    return b.u;
}

static inline float et__u2f(uint32_t u)
{
    et__fbits b;
    b.u = u;
    return b.f;
}

/* 2^k for k in [-126, 127], from the exponent bits alone. */
static inline float et__pow2i(int32_t k)
{
    return et__u2f((uint32_t)(k + 127) << 23);
}

#define ET__INF_BITS 0x7f800000u
#define ET__NAN_BITS 0x7fc00000u

// --- exp
/* x = k ln2 + r with |r| <= ln2/2 (plus a rounding), ln2 split Cody-Waite style
 * into three parts: the first two short enough (9 bits) that k*part is exact with or
 * without FMA, so x - k*(A+B) is exact; the third's product is rounded, and the
 * rounding of r itself is kept in a tail (Fast2Sum). That tail matters: without it a
 * half-ulp of r lands in e^r - 1, which tanh then magnifies into several ulp.
 * e^r = 1 + q, q = r + r^2 P(r) + tail (1 + r), with the degree-5 minimax P of
 * Cephes' expf (approximation error 9e-10 on the interval); 2^k applied in two exact
 * halves so that results in the subnormal range are rounded once. Inputs are clamped
 * to [-104, 89], beyond which the answer has long since saturated to 0 or +inf. */
#define ET__EXP_LO (-104.0f)
#define ET__EXP_HI 89.0f
#define ET__LOG2E 1.44269504088896341f
#define ET__LN2_A 0x1.63p-1f       /* 0.693359375 */
#define ET__LN2_B (-0x1.bdp-13f)    /* ln2 - A, to 9 bits */
#define ET__LN2_C (-0x1.05c61p-29f) /* ln2 - A - B */
#define ET__ROUND_MAGIC 12582912.0f /* 1.5 * 2^23: adding it rounds to an integer */
#define ET__EXP_P0 1.9875691500e-4f
#define ET__EXP_P1 1.3981999507e-3f
#define ET__EXP_P2 8.3334519073e-3f
#define ET__EXP_P3 4.1665795894e-2f
#define ET__EXP_P4 1.6666665459e-1f
#define ET__EXP_P5 5.0000001201e-1f

/* Splits x (already clamped, not NaN) into e^x = 2^k * (1 + q); returns q, accurate
 * to well under an ulp of q. */
static inline float et__exp_reduce(float x, int32_t *k)
{
    float kf = (x * ET__LOG2E + ET__ROUND_MAGIC) - ET__ROUND_MAGIC;
    float rh = ET__FMAF(kf, -ET__LN2_B, ET__FMAF(kf, -ET__LN2_A, x)); /* exact */
    float c = kf * ET__LN2_C;
    float r = rh - c;
    float rlo = (rh - r) - c;
    float p = ET__EXP_P0;
    p = ET__FMAF(p, r, ET__EXP_P1);
    p = ET__FMAF(p, r, ET__EXP_P2);
    p = ET__FMAF(p, r, ET__EXP_P3);
    p = ET__FMAF(p, r, ET__EXP_P4);
    p = ET__FMAF(p, r, ET__EXP_P5);
    *k = (int32_t)kf;
    return r + ET__FMAF(p, r * r, ET__FMAF(rlo, r, rlo));
}

/** e^x, inline; the same bits as et_expf(). */
static inline float et_expf_inl(float x)
{
    int32_t k, k1;
    float y;
    if (x != x) return x + x;
    if (x < ET__EXP_LO) x = ET__EXP_LO;
    if (x > ET__EXP_HI) x = ET__EXP_HI;
    y = et__exp_reduce(x, &k) + 1.0f;
    k1 = k / 2; /* k in [-150, 128]: both halves are normal powers of two */
    return y * et__pow2i(k1) * et__pow2i(k - k1);
}

// --- log
/* musl/FreeBSD logf: x = 2^k m with m in [sqrt(2)/2, sqrt(2)), f = m - 1,
 * s = f/(2+f), log(1+f) = f - f^2/2 + s (f^2/2 + R(s^2)) with a degree-4 minimax R,
 * ln2 split into head and tail. Subnormals are scaled by 2^25 first. */
#define ET__LOG_LN2_HI 6.9313812256e-01f /* 0x3f317180 */
#define ET__LOG_LN2_LO 9.0580006145e-06f /* 0x3717f7d1 */
#define ET__LOG_LG1 0.66666662693f       /* 0xaaaaaa.0p-24 */
#define ET__LOG_LG2 0.40000972152f       /* 0xccce13.0p-25 */
#define ET__LOG_LG3 0.28498786688f       /* 0x91e9ee.0p-25 */
#define ET__LOG_LG4 0.24279078841f       /* 0xf89e26.0p-26 */
#define ET__LOG_SQRTH 0x3f3504f3u        /* sqrt(2)/2 */

/* log of a positive, finite, normal x. */
static inline float et__log_core(float x, int32_t kadj)
{
    uint32_t ix = et__f2u(x) + (0x3f800000u - ET__LOG_SQRTH);
    int32_t k = (int32_t)(ix >> 23) - 0x7f + kadj;
    float f = et__u2f((ix & 0x007fffffu) + ET__LOG_SQRTH) - 1.0f;
    float s = f / (2.0f + f);
    float z = s * s, w = z * z;
    float t1 = w * ET__FMAF(w, ET__LOG_LG4, ET__LOG_LG2);
    float t2 = z * ET__FMAF(w, ET__LOG_LG3, ET__LOG_LG1);
    float hfsq = 0.5f * f * f;
    float dk = (float)k;
    float lo = ET__FMAF(s, hfsq + (t2 + t1), dk * ET__LOG_LN2_LO);
    return ET__FMAF(dk, ET__LOG_LN2_HI, (lo - hfsq) + f);
}

/** ln x, inline; the same bits as et_logf(). */
static inline float et_logf_inl(float x)
{
    if (!(x > 0.0f)) {
        if (x == 0.0f) return -et__u2f(ET__INF_BITS);
        return x != x ? x + x : et__u2f(ET__NAN_BITS);
    }
    if (et__f2u(x) >= ET__INF_BITS) return x;
    if (x < 1.17549435e-38f) return et__log_core(x * 33554432.0f, -25); /* 2^25 */
    return et__log_core(x, 0);
}

// --- tanh
/* |x| < 0.75: x + x^3 P(x^2) with a degree-6 near-minimax P (fitted with mpmath's
 * chebyfit), which keeps relative accuracy down to the subnormals. 0.75 <= |x| < 9.02:
 * with e^{2|x|} = 2^k (1 + q) from the exp reduction, tanh = 1 - 2/(e + 1), the
 * denominator formed with one rounding (an FMA). An exhaustive sweep showed this
 * form within 1.05 ulp of the exact value on the whole range, where (e-1)/(e+1)
 * reached 2.8 ulp (e+1 and e-1 each rounded, and 2^k + 1 inexact for k >= 24).
 * Beyond 9.02, tanh rounds to +-1. */
#define ET__TANH_SMALL 0.75f
#define ET__TANH_BIG 9.02f
#define ET__TANH_P0 (-6.965330103e-04f)
#define ET__TANH_P1 3.089926438e-03f
#define ET__TANH_P2 (-8.684717119e-03f)
#define ET__TANH_P3 2.183578163e-02f
#define ET__TANH_P4 (-5.396516621e-02f)
#define ET__TANH_P5 1.333332211e-01f
#define ET__TANH_P6 (-3.333333433e-01f)

static inline float et__tanh_small(float x)
{
    float z = x * x;
    float p = ET__TANH_P0;
    p = ET__FMAF(p, z, ET__TANH_P1);
    p = ET__FMAF(p, z, ET__TANH_P2);
    p = ET__FMAF(p, z, ET__TANH_P3);
    p = ET__FMAF(p, z, ET__TANH_P4);
    p = ET__FMAF(p, z, ET__TANH_P5);
    p = ET__FMAF(p, z, ET__TANH_P6);
    return ET__FMAF(x * z, p, x);
}

/* tanh of a in [0.75, 9.02]: e^{2a} = 2^k (1+q) with k in [2, 26]. */
static inline float et__tanh_mid(float a)
{
    int32_t k;
    float q = et__exp_reduce(a + a, &k);
    float s = (float)(1 << k); /* 2^k, exact */
    return 1.0f - 2.0f / ET__FMAF(s, q, s + 1.0f);
}

/** tanh x, inline; the same bits as et_tanhf(). */
static inline float et_tanhf_inl(float x)
{
    /* on |x|, sign put back last: that also keeps tanh(-0) = -0 */
    uint32_t sign = et__f2u(x) & 0x80000000u;
    float a = et__u2f(et__f2u(x) ^ sign), t;
    if (a < ET__TANH_SMALL)
        t = et__tanh_small(a);
    else if (a < ET__TANH_BIG)
        t = et__tanh_mid(a);
    else if (a == a)
        t = 1.0f;
    else
        return x + x;
    return et__u2f(et__f2u(t) | sign);
}

// --- sqrt
/* Without a hardware sqrt: a bit-trick guess of 1/sqrt(x), three Newton steps (each
 * roughly doubles the correct bits: 4, 8, 16, 23+), then s = x/sqrt(x) refined by one
 * Heron step. Within 1 ulp; kept visible on every target so the tests can check it. */
static inline float et__sqrtf_soft(float x)
{
    float y, s, scale = 1.0f;
    uint32_t ix = et__f2u(x);
    if (!(x > 0.0f) || ix >= ET__INF_BITS) {
        if (x == 0.0f || x != x || ix == ET__INF_BITS) return x; /* +-0, NaN, +inf */
        return et__u2f(ET__NAN_BITS);
    }
    if (x < 1.17549435e-38f) { /* subnormal: sqrt(x 2^24) = sqrt(x) 2^12 */
        x *= 16777216.0f;
        scale = 1.0f / 4096.0f;
        ix = et__f2u(x);
    }
    y = et__u2f(0x5f375a86u - (ix >> 1));
    y = y * (1.5f - 0.5f * x * y * y);
    y = y * (1.5f - 0.5f * x * y * y);
    y = y * (1.5f - 0.5f * x * y * y);
    s = x * y;
    s = 0.5f * (s + x / s);
    return s * scale;
}

/** sqrt x, inline; the same bits as et_sqrtf(). */
static inline float et_sqrtf_inl(float x)
{
#ifdef ET__HW_SQRT
    return __builtin_sqrtf(x);
#else
    return et__sqrtf_soft(x);
#endif
}

// --- AVX2 + FMA, 8 lanes
#if ET_HAVE_AVX2
#include <immintrin.h>

static inline __m256 et__exp_reduce_avx2(__m256 x, __m256i *k)
{
    __m256 kf = _mm256_sub_ps(
        _mm256_add_ps(_mm256_mul_ps(x, _mm256_set1_ps(ET__LOG2E)), _mm256_set1_ps(ET__ROUND_MAGIC)),
        _mm256_set1_ps(ET__ROUND_MAGIC));
    __m256 rh = _mm256_fmadd_ps(kf, _mm256_set1_ps(-ET__LN2_B), _mm256_fmadd_ps(kf, _mm256_set1_ps(-ET__LN2_A), x));
    __m256 c = _mm256_mul_ps(kf, _mm256_set1_ps(ET__LN2_C));
    __m256 r = _mm256_sub_ps(rh, c);
    __m256 rlo = _mm256_sub_ps(_mm256_sub_ps(rh, r), c);
    __m256 p = _mm256_set1_ps(ET__EXP_P0);
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(ET__EXP_P1));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(ET__EXP_P2));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(ET__EXP_P3));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(ET__EXP_P4));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(ET__EXP_P5));
    *k = _mm256_cvtps_epi32(kf); /* kf is integral: exact */
    return _mm256_add_ps(r, _mm256_fmadd_ps(p, _mm256_mul_ps(r, r), _mm256_fmadd_ps(rlo, r, rlo)));
}

static inline __m256 et__pow2i_avx2(__m256i k)
{
    return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(k, _mm256_set1_epi32(127)), 23));
}

/** e^x in 8 lanes; each lane the same bits as et_expf_inl() built with FMA. */
static inline __m256 et_expf_avx2(__m256 x)
{
    __m256i k, k1;
    __m256 y;
    /* max/min return their second operand when one is NaN: keep x second so NaN
     * lanes stay NaN through the arithmetic. */
    x = _mm256_max_ps(_mm256_set1_ps(ET__EXP_LO), x);
    x = _mm256_min_ps(_mm256_set1_ps(ET__EXP_HI), x);
    y = _mm256_add_ps(et__exp_reduce_avx2(x, &k), _mm256_set1_ps(1.0f));
    k1 = _mm256_srai_epi32(k, 1); /* floor, where the scalar code truncates: the product is exact either way */
    y = _mm256_mul_ps(y, et__pow2i_avx2(k1));
    return _mm256_mul_ps(y, et__pow2i_avx2(_mm256_sub_epi32(k, k1)));
}

/** ln x in 8 lanes; each lane the same bits as et_logf_inl() built with FMA. */
static inline __m256 et_logf_avx2(__m256 x)
{
    const __m256 zero = _mm256_setzero_ps();
    __m256 tiny = _mm256_cmp_ps(x, _mm256_set1_ps(1.17549435e-38f), _CMP_LT_OQ);
    __m256 xs = _mm256_blendv_ps(x, _mm256_mul_ps(x, _mm256_set1_ps(33554432.0f)), tiny);
    __m256i kadj = _mm256_and_si256(_mm256_castps_si256(tiny), _mm256_set1_epi32(-25));
    __m256i ix = _mm256_add_epi32(_mm256_castps_si256(xs), _mm256_set1_epi32((int32_t)(0x3f800000u - ET__LOG_SQRTH)));
    __m256i k = _mm256_add_epi32(_mm256_sub_epi32(_mm256_srli_epi32(ix, 23), _mm256_set1_epi32(0x7f)), kadj);
    __m256 f = _mm256_sub_ps(
        _mm256_castsi256_ps(_mm256_add_epi32(_mm256_and_si256(ix, _mm256_set1_epi32(0x007fffff)),
                                             _mm256_set1_epi32((int32_t)ET__LOG_SQRTH))),
        _mm256_set1_ps(1.0f));
    __m256 s = _mm256_div_ps(f, _mm256_add_ps(_mm256_set1_ps(2.0f), f));
    __m256 z = _mm256_mul_ps(s, s), w = _mm256_mul_ps(z, z);
    __m256 t1 = _mm256_mul_ps(w, _mm256_fmadd_ps(w, _mm256_set1_ps(ET__LOG_LG4), _mm256_set1_ps(ET__LOG_LG2)));
    __m256 t2 = _mm256_mul_ps(z, _mm256_fmadd_ps(w, _mm256_set1_ps(ET__LOG_LG3), _mm256_set1_ps(ET__LOG_LG1)));
    __m256 hfsq = _mm256_mul_ps(_mm256_mul_ps(_mm256_set1_ps(0.5f), f), f);
    __m256 dk = _mm256_cvtepi32_ps(k);
    __m256 lo = _mm256_fmadd_ps(s, _mm256_add_ps(hfsq, _mm256_add_ps(t2, t1)),
                                _mm256_mul_ps(dk, _mm256_set1_ps(ET__LOG_LN2_LO)));
    __m256 y = _mm256_fmadd_ps(dk, _mm256_set1_ps(ET__LOG_LN2_HI),
                               _mm256_add_ps(_mm256_sub_ps(lo, hfsq), f));
    /* x == +inf or NaN: x itself (NaN + NaN quiets a signalling NaN) */
    y = _mm256_blendv_ps(y, _mm256_add_ps(x, x), _mm256_cmp_ps(x, _mm256_set1_ps(et__u2f(ET__INF_BITS)), _CMP_NLT_UQ));
    y = _mm256_blendv_ps(y, _mm256_set1_ps(et__u2f(ET__NAN_BITS)), _mm256_cmp_ps(x, zero, _CMP_LT_OQ));
    return _mm256_blendv_ps(y, _mm256_set1_ps(-et__u2f(ET__INF_BITS)), _mm256_cmp_ps(x, zero, _CMP_EQ_OQ));
}

/** tanh x in 8 lanes; each lane the same bits as et_tanhf_inl() built with FMA. */
static inline __m256 et_tanhf_avx2(__m256 x)
{
    const __m256 signbit = _mm256_set1_ps(-0.0f);
    __m256 a = _mm256_andnot_ps(signbit, x);
    __m256 sign = _mm256_and_ps(signbit, x);
    const __m256 one = _mm256_set1_ps(1.0f);
    __m256 small, t, s, z, p, q, am;
    __m256i k;
    /* small branch */
    z = _mm256_mul_ps(a, a);
    p = _mm256_set1_ps(ET__TANH_P0);
    p = _mm256_fmadd_ps(p, z, _mm256_set1_ps(ET__TANH_P1));
    p = _mm256_fmadd_ps(p, z, _mm256_set1_ps(ET__TANH_P2));
    p = _mm256_fmadd_ps(p, z, _mm256_set1_ps(ET__TANH_P3));
    p = _mm256_fmadd_ps(p, z, _mm256_set1_ps(ET__TANH_P4));
    p = _mm256_fmadd_ps(p, z, _mm256_set1_ps(ET__TANH_P5));
    p = _mm256_fmadd_ps(p, z, _mm256_set1_ps(ET__TANH_P6));
    small = _mm256_fmadd_ps(_mm256_mul_ps(a, z), p, a);
    /* middle branch on |x| clamped into [0.75, 9.02] */
    am = _mm256_min_ps(_mm256_max_ps(a, _mm256_set1_ps(ET__TANH_SMALL)), _mm256_set1_ps(ET__TANH_BIG));
    q = et__exp_reduce_avx2(_mm256_add_ps(am, am), &k);
    s = et__pow2i_avx2(k);
    t = _mm256_sub_ps(one, _mm256_div_ps(_mm256_set1_ps(2.0f), _mm256_fmadd_ps(s, q, _mm256_add_ps(s, one))));
    /* pick, saturate, put the sign back; NaN lanes fail the ordered compares */
    t = _mm256_blendv_ps(t, one, _mm256_cmp_ps(a, _mm256_set1_ps(ET__TANH_BIG), _CMP_GE_OQ));
    t = _mm256_blendv_ps(t, small, _mm256_cmp_ps(a, _mm256_set1_ps(ET__TANH_SMALL), _CMP_LT_OQ));
    t = _mm256_or_ps(t, sign);
    return _mm256_blendv_ps(t, _mm256_add_ps(x, x), _mm256_cmp_ps(x, x, _CMP_UNORD_Q));
}
#endif /* ET_HAVE_AVX2 */

/** y[i] = exp(x[i] - m) for i < n; returns the sum of y (summed in a fixed order).
 *  The AVX2 body gives the same bits as et_expf per element (see above). */
static inline float et_exp_sub_row(float *y, const float *x, float m, int n)
{
    int i = 0;
    float sum = 0.0f;
#if ET_HAVE_AVX2
    __m256 vm = _mm256_set1_ps(m), acc = _mm256_setzero_ps();
    __m128 lo;
    for (; i + 8 <= n; i += 8) {
        __m256 e = et_expf_avx2(_mm256_sub_ps(_mm256_loadu_ps(x + i), vm));
        _mm256_storeu_ps(y + i, e);
        acc = _mm256_add_ps(acc, e);
    }
    lo = _mm_add_ps(_mm256_castps256_ps128(acc), _mm256_extractf128_ps(acc, 1));
    lo = _mm_add_ps(lo, _mm_movehl_ps(lo, lo));
    lo = _mm_add_ss(lo, _mm_shuffle_ps(lo, lo, 1));
    sum = _mm_cvtss_f32(lo);
#endif
    for (; i < n; i++) {
        y[i] = et_expf_inl(x[i] - m);
        sum += y[i];
    }
    return sum;
}

#endif /* ET_MATH_H */

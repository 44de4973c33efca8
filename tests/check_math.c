/* check_math.c - the core's float math (core/et_math.h) against the host's libm.
 *
 * Each function is swept densely (1.5M+ points: a stride through the float bit
 * patterns of its range, which samples every binade evenly, plus a linear sweep) and
 * its error is measured in ulp against libm's double function (exp, log, tanh, sqrt,
 * pow), which for these purposes is the exact value; the error against libm's float
 * function (expf & co.) is printed beside it. glibc's own tanhf is up to 2 ulp off
 * the exact value, so that column is bounded at 2 for exp/log/sqrt and at 3 for tanh.
 * The AVX2 versions, where built, must give the scalar versions' bits exactly.
 * Deliberately no exhaustive 2^32 sweeps here (they take minutes; they were run once
 * while writing core/et_math.h, see the numbers in its header comment).
 */
#include <float.h>
#include <stdint.h>
#include <string.h>

#include "et_check.h"
#include "et_math.h"

// --- measuring

typedef struct ulp_stat {
    double max_exact; /* worst error against the double reference, in ulp */
    float at_exact;
    double max_libmf; /* worst error against the float libm function, in ulp */
    float at_libmf;
    long n;
} ulp_stat;

static float bits2f(uint32_t u)
{
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

static uint32_t f2bits(float f)
{
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    return u;
}

/* Distance from got to ref in units of the float ulp at ref (2^-149 in the subnormals);
 * a ref beyond the float range must round to what got is (+-inf or FLT_MAX). */
static double ulp_err(float got, double ref)
{
    int e;
    double ulp;
    if (isnan(ref)) return isnan(got) ? 0.0 : 1e30;
    if (isnan(got)) return 1e30;
    if (isinf(ref) || fabs(ref) > FLT_MAX) return got == (float)ref ? 0.0 : 1e30;
    if (isinf(got)) return 1e30;
    if (ref == 0.0) return got == 0.0f ? 0.0 : fabs((double)got) / ldexp(1.0, -149);
    frexp(ref, &e); /* ref = m 2^e, m in [0.5, 1) */
    ulp = ldexp(1.0, (e - 24 < -149) ? -149 : e - 24);
    return fabs((double)got - ref) / ulp;
}

static void stat_add(ulp_stat *s, float x, float got, double exact, float libmf)
{
    double e1 = ulp_err(got, exact), e2 = ulp_err(got, (double)libmf);
    if (e1 > s->max_exact) s->max_exact = e1, s->at_exact = x;
    if (e2 > s->max_libmf) s->max_libmf = e2, s->at_libmf = x;
    s->n++;
}

static void stat_print(const char *name, const ulp_stat *s)
{
    printf("check_math: %-6s max %.3f ulp vs double libm (x = %.9g), %.3f ulp vs float libm "
           "(x = %.9g), %ld points\n",
           name, s->max_exact, (double)s->at_exact, s->max_libmf, (double)s->at_libmf, s->n);
}

typedef float (*f_of_f)(float);
typedef double (*d_of_d)(double);

/* Bit-pattern stride over [lo, hi] (both >= 0) of about n points, both signs if asked,
 * plus n points spaced linearly over [lin_lo, lin_hi]. */
static void sweep(ulp_stat *s, f_of_f mine, d_of_d exact, f_of_f libmf, float lo, float hi,
                  int both_signs, long n, float lin_lo, float lin_hi)
{
    uint32_t blo = f2bits(lo), bhi = f2bits(hi);
    uint32_t step = (uint32_t)((bhi - blo) / (uint32_t)n) + 1;
    uint64_t b;
    long i;
    for (b = blo; b <= bhi; b += step) {
        float x = bits2f((uint32_t)b);
        stat_add(s, x, mine(x), exact((double)x), libmf(x));
        if (both_signs) stat_add(s, -x, mine(-x), exact(-(double)x), libmf(-x));
    }
    for (i = 0; i <= n; i++) {
        float x = (float)(lin_lo + (lin_hi - lin_lo) * ((double)i / (double)n));
        stat_add(s, x, mine(x), exact((double)x), libmf(x));
    }
}

#define BITS_EQ(a, b) ((isnan(a) && isnan(b)) || f2bits(a) == f2bits(b))

// --- exp

START_TEST(test_expf)
{
    ulp_stat s = {0};
    sweep(&s, et_expf, exp, expf, 0.0f, 88.0f, 1, 1000000, -88.0f, 88.0f);
    /* the subnormal results and the overflow edge */
    sweep(&s, et_expf, exp, expf, 88.0f, 88.72f, 0, 20000, -103.9f, -87.0f);
    stat_print("expf", &s);
    ck_assert_msg(s.max_exact <= 1.0, "expf: %.3f ulp at %.9g", s.max_exact, (double)s.at_exact);
    ck_assert_msg(s.max_libmf <= 2.0, "expf vs expf(): %.3f ulp at %.9g", s.max_libmf, (double)s.at_libmf);

    ck_assert(et_expf(0.0f) == 1.0f && et_expf(-0.0f) == 1.0f);
    ck_assert(et_expf(1.0f) == expf(1.0f));
    ck_assert(et_expf(-INFINITY) == 0.0f);
    ck_assert(isinf(et_expf(INFINITY)) && et_expf(INFINITY) > 0);
    ck_assert(isinf(et_expf(88.7229f)) && et_expf(88.7228f) == expf(88.7228f));
    ck_assert(et_expf(89.0f) == INFINITY && et_expf(1e30f) == INFINITY);
    ck_assert(et_expf(-104.0f) == 0.0f && et_expf(-1e30f) == 0.0f);
    ck_assert(et_expf(-103.0f) > 0.0f); /* a subnormal, not flushed */
    ck_assert(isnan(et_expf(NAN)) && isnan(et_expf(-NAN)));
    ck_assert(et_expf_inl(0.5f) == et_expf(0.5f));
}
END_TEST

// --- log

START_TEST(test_logf)
{
    ulp_stat s = {0};
    /* every binade from the smallest subnormal to FLT_MAX, and densely around 1 */
    sweep(&s, et_logf, log, logf, bits2f(1), FLT_MAX, 0, 1500000, 0.5f, 2.0f);
    sweep(&s, et_logf, log, logf, 0.999f, 1.001f, 0, 100000, 1e-6f, 100.0f);
    stat_print("logf", &s);
    ck_assert_msg(s.max_exact <= 1.0, "logf: %.3f ulp at %.9g", s.max_exact, (double)s.at_exact);
    ck_assert_msg(s.max_libmf <= 2.0, "logf vs logf(): %.3f ulp at %.9g", s.max_libmf, (double)s.at_libmf);

    ck_assert(et_logf(1.0f) == 0.0f);
    ck_assert(et_logf(0.0f) == -INFINITY && et_logf(-0.0f) == -INFINITY);
    ck_assert(isnan(et_logf(-1.0f)) && isnan(et_logf(-INFINITY)) && isnan(et_logf(-1e-40f)));
    ck_assert(et_logf(INFINITY) == INFINITY);
    ck_assert(isnan(et_logf(NAN)));
    ck_assert(et_logf(bits2f(1)) == logf(bits2f(1))); /* smallest subnormal */
    ck_assert(et_logf(FLT_MAX) == logf(FLT_MAX));
    ck_assert(et_logf_inl(3.0f) == et_logf(3.0f));
}
END_TEST

// --- tanh

START_TEST(test_tanhf)
{
    ulp_stat s = {0};
    /* every binade from the subnormals to 20, both signs: relative accuracy near 0 */
    sweep(&s, et_tanhf, tanh, tanhf, bits2f(1), 20.0f, 1, 1000000, -20.0f, 20.0f);
    sweep(&s, et_tanhf, tanh, tanhf, 0.7f, 0.8f, 1, 100000, -1.0f, 1.0f); /* branch seam */
    stat_print("tanhf", &s);
    ck_assert_msg(s.max_exact <= 1.5, "tanhf: %.3f ulp at %.9g", s.max_exact, (double)s.at_exact);
    ck_assert_msg(s.max_libmf <= 3.0, "tanhf vs tanhf(): %.3f ulp at %.9g", s.max_libmf, (double)s.at_libmf);

    ck_assert(et_tanhf(0.0f) == 0.0f && !signbit(et_tanhf(0.0f)) && signbit(et_tanhf(-0.0f)));
    ck_assert(et_tanhf(1e-40f) == 1e-40f && et_tanhf(-1e-40f) == -1e-40f);
    ck_assert(et_tanhf(9.1f) == 1.0f && et_tanhf(-9.1f) == -1.0f);
    ck_assert(et_tanhf(INFINITY) == 1.0f && et_tanhf(-INFINITY) == -1.0f);
    ck_assert(et_tanhf(1e30f) == 1.0f && et_tanhf(-1e30f) == -1.0f);
    ck_assert(isnan(et_tanhf(NAN)));
    ck_assert(et_tanhf_inl(0.3f) == et_tanhf(0.3f) && et_tanhf_inl(-2.0f) == et_tanhf(-2.0f));
}
END_TEST

// --- sqrt

static float soft_sqrt(float x) { return et__sqrtf_soft(x); }

START_TEST(test_sqrtf)
{
    ulp_stat s = {0}, soft = {0};
    sweep(&s, et_sqrtf, sqrt, sqrtf, 0.0f, FLT_MAX, 0, 1500000, 0.0f, 1e6f);
    sweep(&soft, soft_sqrt, sqrt, sqrtf, 0.0f, FLT_MAX, 0, 1500000, 0.0f, 1e6f);
    stat_print("sqrtf", &s);
    stat_print("sqrt~", &soft); /* the Newton path of targets without a sqrt instruction */
#ifdef ET__HW_SQRT
    ck_assert_msg(s.max_libmf == 0.0, "sqrtf should be exact: %.3f ulp at %.9g", s.max_libmf, (double)s.at_libmf);
#endif
    ck_assert_msg(s.max_exact <= 1.0, "sqrtf: %.3f ulp at %.9g", s.max_exact, (double)s.at_exact);
    ck_assert_msg(soft.max_exact <= 1.0, "soft sqrtf: %.3f ulp at %.9g", soft.max_exact, (double)soft.at_exact);

    ck_assert(et_sqrtf(0.0f) == 0.0f && signbit(et_sqrtf(-0.0f)));
    ck_assert(et_sqrtf(4.0f) == 2.0f && et_sqrtf(INFINITY) == INFINITY);
    ck_assert(isnan(et_sqrtf(-1.0f)) && isnan(et_sqrtf(NAN)));
    ck_assert(et__sqrtf_soft(0.0f) == 0.0f && signbit(et__sqrtf_soft(-0.0f)));
    ck_assert(et__sqrtf_soft(4.0f) == 2.0f && et__sqrtf_soft(INFINITY) == INFINITY);
    ck_assert(isnan(et__sqrtf_soft(-1.0f)) && isnan(et__sqrtf_soft(NAN)));
    ck_assert(et__sqrtf_soft(bits2f(1)) == sqrtf(bits2f(1)));
}
END_TEST

// --- pow

START_TEST(test_powf)
{
    uint64_t st = 0x9e3779b97f4a7c15ull;
    double mx = 0.0;
    float ax = 0, ay = 0;
    long i, n = 0;
    for (i = 0; i < 1000000; i++) {
        uint32_t ub;
        float x, y, got;
        double e, u;
        st ^= st << 13, st ^= st >> 7, st ^= st << 17;
        ub = (uint32_t)(st >> 33) % 0x7f800000u; /* any positive finite float */
        x = bits2f(ub);
        if (x == 0.0f) continue;
        u = (double)(st & 0xffffff) / 16777216.0; /* [0, 1) */
        /* half the y keep x^y inside the float range (|y ln x| <= 100), half are in [-4, 4] */
        y = (i & 1) ? (float)((2.0 * u - 1.0) * 100.0 / (fabs(log((double)x)) + 1e-3))
                    : (float)(8.0 * u - 4.0);
        got = et_powf(x, y);
        e = ulp_err(got, pow((double)x, (double)y));
        if (e > mx) mx = e, ax = x, ay = y;
        n++;
    }
    printf("check_math: powf   max %.3f ulp vs double libm (%.9g ^ %.9g), %ld points\n", mx,
           (double)ax, (double)ay, n);
    ck_assert_msg(mx <= 1.0, "powf: %.3f ulp at %.9g ^ %.9g", mx, (double)ax, (double)ay);

    ck_assert(et_powf(2.0f, 10.0f) == 1024.0f && et_powf(9.0f, 0.5f) == 3.0f);
    ck_assert(et_powf(0.9f, 0.0f) == 1.0f && et_powf(1.0f, NAN) == 1.0f && et_powf(NAN, 0.0f) == 1.0f);
    ck_assert(isnan(et_powf(NAN, 1.0f)) && isnan(et_powf(2.0f, NAN)) && isnan(et_powf(-2.0f, 2.0f)));
    ck_assert(et_powf(0.0f, 2.0f) == 0.0f && et_powf(0.0f, -1.0f) == INFINITY);
    ck_assert(et_powf(INFINITY, 2.0f) == INFINITY && et_powf(INFINITY, -2.0f) == 0.0f);
    ck_assert(et_powf(2.0f, INFINITY) == INFINITY && et_powf(0.5f, INFINITY) == 0.0f);
    ck_assert(et_powf(2.0f, 200.0f) == INFINITY && et_powf(2.0f, -200.0f) == 0.0f);
    ck_assert(et_powf(2.0f, -140.0f) == ldexpf(1.0f, -140)); /* a subnormal */
    /* what AdamW does: bias corrections beta^t */
    ck_assert(et_powf(0.999f, 1000.0f) == (float)pow(0.999f, 1000.0));
}
END_TEST

// --- AVX2 against scalar

#if ET_HAVE_AVX2
static const float specials[] = {0.0f, -0.0f, INFINITY, -INFINITY, NAN, -NAN, 1.0f, -1.0f,
                                 1e-45f, -1e-45f, 1e-40f, FLT_MIN, FLT_MAX, -FLT_MAX, 88.72f,
                                 88.7229f, -103.9f, -104.5f, 0.75f, -0.75f, 9.02f, -9.02f,
                                 0.7499999f, 9.0199995f};

static long avx2_compare(const float *x, long n, long *nexp, long *nlog, long *ntanh)
{
    long i, j;
    float o[8];
    for (i = 0; i + 8 <= n; i += 8) {
        __m256 v = _mm256_loadu_ps(x + i);
        _mm256_storeu_ps(o, et_expf_avx2(v));
        for (j = 0; j < 8; j++) *nexp += !BITS_EQ(o[j], et_expf(x[i + j]));
        _mm256_storeu_ps(o, et_logf_avx2(v));
        for (j = 0; j < 8; j++) *nlog += !BITS_EQ(o[j], et_logf(x[i + j]));
        _mm256_storeu_ps(o, et_tanhf_avx2(v));
        for (j = 0; j < 8; j++) *ntanh += !BITS_EQ(o[j], et_tanhf(x[i + j]));
    }
    return i;
}
#endif

START_TEST(test_avx2_matches_scalar)
{
#if ET_HAVE_AVX2
    enum { N = 1 << 21 };
    float *x = malloc(N * sizeof *x);
    long i, n = 0, nexp = 0, nlog = 0, ntanh = 0;
    ck_assert_ptr_nonnull(x);
    /* every 2^11th bit pattern: all binades, both signs, NaNs and infinities included */
    for (i = 0; i < N; i++) x[i] = bits2f((uint32_t)i << 11 | (uint32_t)(i & 0x7ff));
    n += avx2_compare(x, N, &nexp, &nlog, &ntanh);
    for (i = 0; i < N; i++) x[i] = (float)(-110.0 + 220.0 * i / N); /* linear over the exp range */
    n += avx2_compare(x, N, &nexp, &nlog, &ntanh);
    memcpy(x, specials, sizeof specials);
    for (i = (long)(sizeof specials / sizeof specials[0]); i < 32; i++) x[i] = 0.5f;
    n += avx2_compare(x, 32, &nexp, &nlog, &ntanh);
    free(x);
    printf("check_math: avx2   %ld points; lanes differing from scalar: exp %ld, log %ld, tanh %ld\n",
           n, nexp, nlog, ntanh);
#ifdef ET__HAVE_FMA
    ck_assert(nexp == 0 && nlog == 0 && ntanh == 0);
#endif
#else
    printf("check_math: avx2   not built (no AVX2+FMA on this target)\n");
#endif
}
END_TEST

static Suite *math_suite(void)
{
    Suite *s = suite_create("math");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_expf);
    tcase_add_test(tc, test_logf);
    tcase_add_test(tc, test_tanhf);
    tcase_add_test(tc, test_sqrtf);
    tcase_add_test(tc, test_powf);
    tcase_add_test(tc, test_avx2_matches_scalar);
    suite_add_tcase(s, tc);
    return s;
}

ET_CHECK_MAIN(math_suite)

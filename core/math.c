/* math.c - the out-of-line float math of the core: et_expf, et_logf, et_tanhf, et_sqrtf
 * (thin wrappers over the inline versions in et_math.h, so both give the same bits)
 * and et_powf, which works in double.
 *
 * Deliberately avoids libm and every other library call (the freestanding check
 * holds core/ to memcpy/memset/memmove), and any table.
 */
#include "et_math.h"

float et_expf(float x) { return et_expf_inl(x); }
float et_logf(float x) { return et_logf_inl(x); }
float et_tanhf(float x) { return et_tanhf_inl(x); }
float et_sqrtf(float x) { return et_sqrtf_inl(x); }

// --- powf in double

typedef union et__dbits {
    double d;
    uint64_t u;
} et__dbits;

/* ln x for a positive, finite, normal double (every float > 0 is one). x = 2^e m with
 * m in [sqrt(2)/2, sqrt(2)), s = (m-1)/(m+1), ln m = 2 atanh s = 2s (1 + s^2/3 + ...);
 * |s| <= 0.1716, so ten terms leave a relative error near 1e-17. */
static double et__log_d(double x)
{
    et__dbits b;
    uint64_t hx;
    int e;
    double m, s, z, p;
    b.d = x;
    hx = b.u + (0x3ff0000000000000ull - 0x3fe6a09e667f3bcdull); /* shift by sqrt(2)/2 */
    e = (int)(hx >> 52) - 0x3ff;
    b.u = (hx & 0x000fffffffffffffull) + 0x3fe6a09e667f3bcdull;
    m = b.d;
    s = (m - 1.0) / (m + 1.0);
    z = s * s;
    p = 1.0 / 19;
    p = p * z + 1.0 / 17;
    p = p * z + 1.0 / 15;
    p = p * z + 1.0 / 13;
    p = p * z + 1.0 / 11;
    p = p * z + 1.0 / 9;
    p = p * z + 1.0 / 7;
    p = p * z + 1.0 / 5;
    p = p * z + 1.0 / 3;
    p = p * z;
    return e * 6.93147180559945286227e-01 + (2.0 * s + 2.0 * s * p);
}

/* e^t rounded to float, for any t (NaN excepted). t = k ln2 + r, |r| <= ln2/2, with
 * fdlibm's two-part ln2; Taylor to r^11 (relative error ~1e-14), then 2^k applied
 * exactly in double, so the only rounding that matters is the final one to float. */
static float et__exp_d(double t)
{
    et__dbits b;
    double kd, r, p;
    int k;
    if (t > 89.0) return et__u2f(ET__INF_BITS);
    if (t < -104.0) return 0.0f;
    kd = t * 1.44269504088896338700 + 6755399441055744.0; /* 1.5 * 2^52 */
    kd -= 6755399441055744.0;
    k = (int)kd;
    r = (t - kd * 6.93147180369123816490e-01) - kd * 1.90821492927058770002e-10;
    p = 1.0 / 39916800;
    p = p * r + 1.0 / 3628800;
    p = p * r + 1.0 / 362880;
    p = p * r + 1.0 / 40320;
    p = p * r + 1.0 / 5040;
    p = p * r + 1.0 / 720;
    p = p * r + 1.0 / 120;
    p = p * r + 1.0 / 24;
    p = p * r + 1.0 / 6;
    p = p * r + 0.5;
    p = 1.0 + (r + r * r * p);
    b.u = (uint64_t)(k + 1023) << 52;
    return (float)(p * b.d);
}

float et_powf(float x, float y)
{
    if (y == 0.0f || x == 1.0f) return 1.0f;
    if (x != x || y != y) return x + y;
    if (x < 0.0f) return et__u2f(ET__NAN_BITS);
    if (x == 0.0f) return y > 0.0f ? 0.0f : et__u2f(ET__INF_BITS);
    if (et__f2u(x) == ET__INF_BITS) return y > 0.0f ? x : 0.0f;
    return et__exp_d((double)y * et__log_d((double)x));
}

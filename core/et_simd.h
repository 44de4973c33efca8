/* et_simd.h - small vector helpers shared by the cpu kernels (internal). Each has an
 * AVX2/FMA body and a scalar body; the order of operations is fixed for a given build,
 * so results never depend on threads. */
#ifndef ET_SIMD_H
#define ET_SIMD_H

#include "et_conf.h"
#if ET_HAVE_AVX2
#include <immintrin.h>
#endif

/** sum_i a[i] * b[i] */
static inline float et_dot(const float *a, const float *b, int n)
{
    int i = 0;
    float s = 0.0f;
#if ET_HAVE_AVX2
    __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
    __m128 lo;
    for (; i + 16 <= n; i += 16) {
        acc0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), acc0);
        acc1 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 8), _mm256_loadu_ps(b + i + 8), acc1);
    }
    for (; i + 8 <= n; i += 8) acc0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), acc0);
    acc0 = _mm256_add_ps(acc0, acc1);
    lo = _mm_add_ps(_mm256_castps256_ps128(acc0), _mm256_extractf128_ps(acc0, 1));
    lo = _mm_add_ps(lo, _mm_movehl_ps(lo, lo));
    lo = _mm_add_ss(lo, _mm_shuffle_ps(lo, lo, 1));
    s = _mm_cvtss_f32(lo);
#endif
    for (; i < n; i++) s += a[i] * b[i];
    return s;
}

/** y[i] += alpha * x[i] */
static inline void et_axpy(float *y, float alpha, const float *x, int n)
{
    int i = 0;
#if ET_HAVE_AVX2
    __m256 va = _mm256_set1_ps(alpha);
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(y + i, _mm256_fmadd_ps(va, _mm256_loadu_ps(x + i), _mm256_loadu_ps(y + i)));
#endif
    for (; i < n; i++) y[i] += alpha * x[i];
}

#endif /* ET_SIMD_H */

/* et_quant_simd.h - vector forms of the int8 requantization, shared by the int8 GEMM
 * (qgemm.c) and the sparse int8 kernels (spmm.c). Header-only, static inline.
 */
#ifndef ET_QUANT_SIMD_H
#define ET_QUANT_SIMD_H

#include "et_conf.h"
#if ET_HAVE_AVX2
#include <immintrin.h>

/** 8 lanes of et_quant_requant + zero point + clamp to int8 (as int32 lanes): the same
 *  bits as the scalar path, which the kernels' tests check. */
static inline __m256i et_requant8_avx2(__m256i x, __m256i m, __m256i sh, __m256i zp)
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

#endif /* ET_QUANT_SIMD_H */

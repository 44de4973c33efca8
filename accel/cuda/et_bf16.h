/* et_bf16.h - bfloat16 on the host, exactly as the CUDA driver's device conversion
 * (__float2bfloat16_rn, i.e. PTX cvt.rn.bf16.f32 on sm_80+) produces it: round to
 * nearest, ties to even, on the upper 16 bits of the fp32 pattern. Subnormals are kept
 * (no flush to zero), overflow past the largest bf16 rounds to infinity, and every NaN
 * becomes the canonical bf16 NaN 0x7fff (CUDA's own host fallback does the same).
 *
 * Pure C99, header-only, no CUDA: the conformance suite uses it to build the cpu
 * reference of the bf16 GEMMs and to emulate a bf16 training run on the cpu, in every
 * build (with or without nvcc). Deliberately absent: other rounding modes, bf16
 * arithmetic (the driver only converts; cuBLAS multiplies).
 */
#ifndef ET_BF16_H
#define ET_BF16_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

/** The bf16 bit pattern nearest to @p f (ties to even; NaN: 0x7fff). */
static inline uint16_t et_bf16_from_f32(float f)
{
    uint32_t x;
    memcpy(&x, &f, sizeof x);
    if ((x & 0x7fffffffu) > 0x7f800000u) return 0x7fffu;
    /* adding 0x7fff plus the lowest kept bit carries into bit 16 exactly when the
     * dropped half is above one half, or equal to it with an odd kept part; a carry
     * out of the exponent gives infinity, as rounding must */
    return (uint16_t)((x + 0x7fffu + ((x >> 16) & 1u)) >> 16);
}

/** The fp32 value of bf16 pattern @p h (exact: bf16 is the upper half of an fp32). */
static inline float et_bf16_to_f32(uint16_t h)
{
    uint32_t x = (uint32_t)h << 16;
    float f;
    memcpy(&f, &x, sizeof f);
    return f;
}

/** @p f rounded to bf16 and back: the value the device's bf16 GEMM operands hold. */
static inline float et_bf16_round(float f) { return et_bf16_to_f32(et_bf16_from_f32(f)); }

/** dst[i] = et_bf16_round(src[i]) over @p n (dst may be src). */
static inline void et_bf16_round_n(float *dst, const float *src, size_t n)
{
    size_t i;
    for (i = 0; i < n; i++) dst[i] = et_bf16_round(src[i]);
}

#endif /* ET_BF16_H */

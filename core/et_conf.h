/* et_conf.h - the port knobs of the freestanding core, in one place.
 *
 * The core (core/, compress/) calls nothing outside itself but memcpy, memset and
 * memmove, and it reaches even those through the macros below, so a port can point
 * them elsewhere by defining ET_MEMCPY & co. before this header is read (or with -D).
 * No hosted header is included here: <stddef.h>, <stdint.h>, <float.h> and
 * <limits.h> are part of every freestanding C99 implementation.
 */
#ifndef ET_CONF_H
#define ET_CONF_H

#include <stddef.h>
#include <stdint.h>

#if !defined(ET_MEMCPY) || !defined(ET_MEMSET) || !defined(ET_MEMMOVE)
/* Declared here rather than through <string.h>, which a freestanding target may lack. */
void *memcpy(void *dst, const void *src, size_t n);
void *memset(void *dst, int c, size_t n);
void *memmove(void *dst, const void *src, size_t n);
#endif
#ifndef ET_MEMCPY
#define ET_MEMCPY(d, s, n) memcpy((d), (s), (n))
#endif
#ifndef ET_MEMSET
#define ET_MEMSET(d, c, n) memset((d), (c), (n))
#endif
#ifndef ET_MEMMOVE
#define ET_MEMMOVE(d, s, n) memmove((d), (s), (n))
#endif

/** Alignment, in bytes, of every block an arena hands out (a cache line, and enough
 *  for any SIMD load the kernels use). */
#ifndef ET_ALIGN
#define ET_ALIGN 64
#endif

/* ET_ASSERT checks internal invariants in debug builds (-DET_DEBUG) and compiles away
 * otherwise. It never calls abort(): a failed check traps, which a debugger or the
 * sanitizers report with a stack. */
#ifdef ET_DEBUG
#define ET_ASSERT(c) do { if (!(c)) __builtin_trap(); } while (0)
#else
#define ET_ASSERT(c) ((void)0)
#endif

/* SIMD paths are chosen at compile time; a scalar path is always present. */
#if defined(__AVX2__) && defined(__FMA__) && !defined(ET_NO_SIMD)
#define ET_HAVE_AVX2 1
#endif
/* AVX-512F widens the fp32 GEMM micro-kernel (ET_NO_AVX512 keeps it at AVX2) */
#if defined(ET_HAVE_AVX2) && defined(__AVX512F__) && !defined(ET_NO_AVX512)
#define ET_HAVE_AVX512 1
#endif
#if (defined(__ARM_NEON) || defined(__ARM_NEON__)) && defined(__aarch64__) && !defined(ET_NO_SIMD)
#define ET_HAVE_NEON 1
#endif

#define ET_UNUSED(x) ((void)(x))

#endif /* ET_CONF_H */

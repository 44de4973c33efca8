/* bench_peak.c - the machine's fp32 FMA peak: independent FMA chains in registers on
 * every worker (AVX2: 12 chains of 8 lanes). Prints "peak THREADS GFLOPS". */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include "et_pool.h"
#if defined(__AVX2__) && defined(__FMA__)
#include <immintrin.h>
#endif

#define ITERS 50000000L

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static float sink[64];

static void fma_loop(void *arg, int task, int w)
{
    long i;
    (void)arg; (void)w;
#if defined(__AVX2__) && defined(__FMA__)
    {
        __m256 a = _mm256_set1_ps(0.999f), b = _mm256_set1_ps(1e-4f);
        __m256 c0 = b, c1 = b, c2 = b, c3 = b, c4 = b, c5 = b, c6 = b, c7 = b, c8 = b, c9 = b, c10 = b, c11 = b;
        for (i = 0; i < ITERS; i++) {
            c0 = _mm256_fmadd_ps(a, c0, b); c1 = _mm256_fmadd_ps(a, c1, b); c2 = _mm256_fmadd_ps(a, c2, b);
            c3 = _mm256_fmadd_ps(a, c3, b); c4 = _mm256_fmadd_ps(a, c4, b); c5 = _mm256_fmadd_ps(a, c5, b);
            c6 = _mm256_fmadd_ps(a, c6, b); c7 = _mm256_fmadd_ps(a, c7, b); c8 = _mm256_fmadd_ps(a, c8, b);
            c9 = _mm256_fmadd_ps(a, c9, b); c10 = _mm256_fmadd_ps(a, c10, b); c11 = _mm256_fmadd_ps(a, c11, b);
            /* keep the compiler from folding the chains */
            __asm__ volatile("" : "+x"(c0), "+x"(c1), "+x"(c2), "+x"(c3), "+x"(c4), "+x"(c5));
            __asm__ volatile("" : "+x"(c6), "+x"(c7), "+x"(c8), "+x"(c9), "+x"(c10), "+x"(c11));
        }
        c0 = _mm256_add_ps(_mm256_add_ps(_mm256_add_ps(c0, c1), _mm256_add_ps(c2, c3)),
                           _mm256_add_ps(_mm256_add_ps(c4, c5), _mm256_add_ps(c6, c7)));
        c0 = _mm256_add_ps(c0, _mm256_add_ps(_mm256_add_ps(c8, c9), _mm256_add_ps(c10, c11)));
        sink[task] = _mm256_cvtss_f32(c0);
    }
#else
    sink[task] = (float)i;
#endif
}

int main(int argc, char **argv)
{
    int th = argc > 1 ? atoi(argv[1]) : 1, rep;
    et_pool *pool;
    et_threads t;
    double best = 1e30;
    if (et_pool_create(th, &pool) != ET_OK) return 1;
    et_pool_threads(pool, &t);
    for (rep = 0; rep < 3; rep++) {
        double t0 = now();
        if (th > 1) t.parallel_for(t.pool, th, fma_loop, NULL);
        else fma_loop(NULL, 0, 0);
        t0 = now() - t0;
        if (t0 < best) best = t0;
    }
    printf("peak %d %.1f\n", th, (double)th * ITERS * 12 * 8 * 2 / best * 1e-9);
    et_pool_destroy(pool);
    return 0;
}

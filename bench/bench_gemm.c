/* bench_gemm.c - edgetrain's GEMM against OpenBLAS on the training shapes of the three
 * benchmark configs, each direction (NT forward, NN and TN backward), 1 and 2 threads.
 * OpenBLAS is linked into this benchmark only, never into the library.
 * Output: one line per measurement, "gemm <config> <layer> <dir> M N K threads et_gflops blas_gflops". */
#define _POSIX_C_SOURCE 200809L
#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "et_gemm.h"
#include "et_pool.h"
#include "et_rng.h"

void openblas_set_num_threads(int);

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

typedef struct { const char *name; int BT, C, Vp; } config;
typedef struct { const char *name; int in, out; } layer; /* in/out as multiples of C, 0 = Vp */

/* best-of-reps time of f over at least min_s seconds */
#define MEASURE(out, stmt)                                                   \
    do {                                                                     \
        double best = 1e30, t0, tot = 0;                                     \
        int rep = 0;                                                         \
        stmt; /* warm */                                                     \
        while (tot < 0.15 || rep < 3) {                                      \
            t0 = now();                                                      \
            stmt;                                                            \
            t0 = now() - t0;                                                 \
            tot += t0;                                                       \
            if (t0 < best) best = t0;                                        \
            rep++;                                                           \
        }                                                                    \
        out = best;                                                          \
    } while (0)

int main(int argc, char **argv)
{
    static const config cfgs[] = {{"baby", 12 * 64, 128, 128}, {"small", 8 * 256, 128, 128},
                                  {"medium", 4 * 256, 384, 128}};
    static const layer layers[] = {{"qkv", 1, 3}, {"attproj", 1, 1}, {"fc", 1, 4}, {"fcproj", 4, 1},
                                   {"lmhead", 1, 0}};
    static const char *dirs[] = {"NT", "NN", "TN"};
    int ci, li, d, th, maxth = argc > 1 ? atoi(argv[1]) : 2;
    et_rng r;
    et_rng_seed(&r, 1);
    for (th = 1; th <= maxth; th++) {
        et_pool *pool;
        et_threads t;
        size_t sb = et_gemm_scratch_bytes(th);
        float *scratch;
        if (et_pool_create(th, &pool) != ET_OK || posix_memalign((void **)&scratch, 64, sb)) return 1;
        et_pool_threads(pool, &t);
        openblas_set_num_threads(th);
        for (ci = 0; ci < 3; ci++)
            for (li = 0; li < 5; li++) {
                const config *c = &cfgs[ci];
                int IN = layers[li].in * c->C, OUT = layers[li].out ? layers[li].out * c->C : c->Vp;
                for (d = 0; d < 3; d++) {
                    et_gemm_args g;
                    int M, N, K, tA = 0, tB = 0;
                    float *A, *B, *C;
                    size_t i;
                    double te, tb, fl;
                    if (d == 0) { M = c->BT; N = OUT; K = IN; tB = 1; }      /* out = x . W^T */
                    else if (d == 1) { M = c->BT; N = IN; K = OUT; }          /* dx += dy . W */
                    else { M = OUT; N = IN; K = c->BT; tA = 1; }              /* dW += dy^T . x */
                    A = malloc(sizeof(float) * (size_t)M * K);
                    B = malloc(sizeof(float) * (size_t)K * N);
                    C = malloc(sizeof(float) * (size_t)M * N);
                    for (i = 0; i < (size_t)M * K; i++) A[i] = et_rng_uniform(&r) - 0.5f;
                    for (i = 0; i < (size_t)K * N; i++) B[i] = et_rng_uniform(&r) - 0.5f;
                    memset(C, 0, sizeof(float) * (size_t)M * N);
                    memset(&g, 0, sizeof g);
                    g.transA = tA; g.transB = tB; g.M = M; g.N = N; g.K = K;
                    g.A = A; g.lda = tA ? M : K; g.B = B; g.ldb = tB ? K : N;
                    g.accumulate = d != 0; g.C = C; g.ldc = N;
                    MEASURE(te, et_gemm_f32(&g, &t, scratch, sb));
                    MEASURE(tb, cblas_sgemm(CblasRowMajor, tA ? CblasTrans : CblasNoTrans,
                                            tB ? CblasTrans : CblasNoTrans, M, N, K, 1.0f, A, g.lda, B,
                                            g.ldb, d != 0 ? 1.0f : 0.0f, C, N));
                    fl = 2.0 * M * N * K;
                    printf("gemm %s %s %s %d %d %d %d %.1f %.1f\n", c->name, layers[li].name, dirs[d], M, N,
                           K, th, fl / te * 1e-9, fl / tb * 1e-9);
                    fflush(stdout);
                    free(A); free(B); free(C);
                }
            }
        et_pool_destroy(pool);
        free(scratch);
    }
    return 0;
}

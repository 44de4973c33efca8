/* check_core.c - the arena, the RNG and the GEMM against a naive triple loop. */
#include <stdint.h>
#include <string.h>
#include "et_check.h"
#include "et_arena.h"
#include "et_gemm.h"
#include "et_rng.h"

START_TEST(arena_basics)
{
    static uint8_t buf[1024] __attribute__((aligned(64)));
    et_arena a;
    void *p, *q, *s;
    et_arena_mark mk;
    ck_assert_int_eq(et_arena_init(&a, buf + 1, 100), ET_ERR_INVALID);
    ck_assert_int_eq(et_arena_init(&a, buf, sizeof buf), ET_OK);
    ck_assert_int_eq(et_arena_alloc(&a, 10, &p), ET_OK);
    ck_assert_int_eq((uintptr_t)p % ET_ALIGN, 0);
    ck_assert_ptr_eq(p, buf + 1024 - 64);
    mk = et_arena_mark_get(&a);
    ck_assert_int_eq(et_arena_scratch(&a, 65, &s), ET_OK);
    ck_assert_ptr_eq(s, buf);
    ck_assert_uint_eq(a.high_water, 64 + 128);
    et_arena_release(&a, mk);
    ck_assert_uint_eq(a.head, 0);
    ck_assert_uint_eq(et_arena_free_bytes(&a), 1024 - 64);
    /* exhaustion is a status and changes nothing */
    ck_assert_int_eq(et_arena_alloc(&a, 1024 - 63, &q), ET_ERR_NOMEM);
    ck_assert_uint_eq(a.tail, 64);
    ck_assert_int_eq(et_arena_alloc(&a, 1024 - 64, &q), ET_OK);
    ck_assert_uint_eq(et_arena_free_bytes(&a), 0);
    ck_assert_int_eq(et_arena_scratch(&a, 1, &s), ET_ERR_NOMEM);
    ck_assert_uint_eq(a.high_water, 1024);
}
END_TEST

START_TEST(arena_size_rounds_down)
{
    static uint8_t buf[256] __attribute__((aligned(64)));
    et_arena a;
    void *p;
    ck_assert_int_eq(et_arena_init(&a, buf, 191), ET_OK);
    ck_assert_uint_eq(a.size, 128);
    ck_assert_int_eq(et_arena_alloc(&a, 64, &p), ET_OK);
    ck_assert_int_eq((uintptr_t)p % ET_ALIGN, 0);
}
END_TEST

START_TEST(rng_reproducible)
{
    et_rng a, b;
    int i, hist[10] = {0};
    double s = 0, s2 = 0;
    et_rng_seed(&a, 42);
    et_rng_seed(&b, 42);
    for (i = 0; i < 1000; i++) ck_assert(et_rng_u64(&a) == et_rng_u64(&b));
    for (i = 0; i < 100000; i++) hist[et_rng_below(&a, 10)]++;
    for (i = 0; i < 10; i++) ck_assert_msg(hist[i] > 9500 && hist[i] < 10500, "bucket %d: %d", i, hist[i]);
    for (i = 0; i < 100000; i++) {
        double x = et_rng_normal(&a);
        s += x;
        s2 += x * x;
    }
    ET_CK_CLOSE(s / 100000, 0.0, 0, 0.02);
    ET_CK_CLOSE(s2 / 100000, 1.0, 0, 0.02);
}
END_TEST

static void fill(float *x, size_t n, et_rng *r)
{
    size_t i;
    for (i = 0; i < n; i++) x[i] = et_rng_uniform(r) * 2.0f - 1.0f;
}

/* naive reference in double */
static void ref_gemm(const et_gemm_args *g, double *out)
{
    int i, j, k;
    for (i = 0; i < g->M; i++)
        for (j = 0; j < g->N; j++) {
            double s = g->accumulate ? g->C[(size_t)i * g->ldc + j] : 0.0;
            if (g->bias) s += g->bias[j];
            for (k = 0; k < g->K; k++) {
                double a = g->transA ? g->A[(size_t)k * g->lda + i] : g->A[(size_t)i * g->lda + k];
                double b = g->transB ? g->B[(size_t)j * g->ldb + k] : g->B[(size_t)k * g->ldb + j];
                s += a * b;
            }
            out[(size_t)i * g->N + j] = s;
        }
}

static void run_gemm_case(int tA, int tB, int M, int N, int K, int acc, int bias,
                          const et_threads *th)
{
    et_rng r;
    size_t sb = et_gemm_scratch_bytes(et_threads_workers(th));
    float *A = malloc(sizeof(float) * (size_t)M * K + 4), *B = malloc(sizeof(float) * (size_t)K * N + 4);
    float *C = malloc(sizeof(float) * (size_t)M * N + 4), *bv = malloc(sizeof(float) * (size_t)N + 4);
    double *ref = malloc(sizeof(double) * (size_t)M * N + 8);
    float *scratch = et_test_aligned((sb + 63) / 64 * 64);
    et_gemm_args g;
    int i;
    et_rng_seed(&r, (uint64_t)(M * 131 + N * 17 + K));
    fill(A, (size_t)M * K, &r);
    fill(B, (size_t)K * N, &r);
    fill(C, (size_t)M * N, &r);
    fill(bv, (size_t)N, &r);
    g.transA = tA; g.transB = tB; g.M = M; g.N = N; g.K = K;
    g.A = A; g.lda = tA ? M : K; g.B = B; g.ldb = tB ? K : N;
    g.bias = bias ? bv : NULL; g.accumulate = acc; g.C = C; g.ldc = N;
    ref_gemm(&g, ref);
    ck_assert_int_eq(et_gemm_f32(&g, th, scratch, sb), ET_OK);
    for (i = 0; i < M * N; i++)
        ck_assert_msg(fabs(C[i] - ref[i]) <= 1e-5 * (K + 1) + 1e-5 * fabs(ref[i]),
                      "tA=%d tB=%d M=%d N=%d K=%d: C[%d]=%.8g ref %.8g", tA, tB, M, N, K, i,
                      C[i], ref[i]);
    free(A); free(B); free(C); free(bv); free(ref); free(scratch);
}

START_TEST(gemm_against_naive)
{
    static const int shapes[][3] = {{1, 1, 1}, {6, 16, 1}, {7, 17, 3}, {13, 33, 257},
                                    {72, 16, 256}, {73, 1025, 5}, {100, 50, 300}, {5, 2000, 9},
                                    {50, 600, 40}, {151, 300, 520}, {50, 3500, 5}};
    int s, tA, tB;
    for (s = 0; s < (int)(sizeof shapes / sizeof shapes[0]); s++)
        for (tA = 0; tA < 2; tA++)
            for (tB = 0; tB < 2; tB++) {
                run_gemm_case(tA, tB, shapes[s][0], shapes[s][1], shapes[s][2], s & 1, s % 3 == 0, NULL);
                run_gemm_case(tA, tB, shapes[s][0], shapes[s][1], shapes[s][2], !(s & 1), s % 3 == 1, &et_test_scrambled);
            }
}
END_TEST

START_TEST(gemm_threads_bitwise)
{
    /* the same product through serial and scrambled task order: identical bits */
    const int M = 97, N = 130, K = 600;
    et_rng r;
    size_t sb = et_gemm_scratch_bytes(3);
    float *A = malloc(sizeof(float) * M * K), *B = malloc(sizeof(float) * K * N);
    float *C1 = malloc(sizeof(float) * M * N), *C2 = malloc(sizeof(float) * M * N);
    float *scratch = et_test_aligned((sb + 63) / 64 * 64);
    et_gemm_args g;
    et_rng_seed(&r, 5);
    fill(A, (size_t)M * K, &r);
    fill(B, (size_t)K * N, &r);
    int layout;
    for (layout = 0; layout < 4; layout++) {
        /* every layout, with bias: serial and scrambled-parallel tilings differ */
        memset(&g, 0, sizeof g);
        g.transA = layout & 1; g.transB = layout >> 1;
        g.M = M; g.N = N; g.K = K; g.A = A; g.lda = g.transA ? M : K;
        g.B = B; g.ldb = g.transB ? K : N; g.bias = B; g.C = C1; g.ldc = N;
        ck_assert_int_eq(et_gemm_f32(&g, NULL, scratch, sb), ET_OK);
        g.C = C2;
        ck_assert_int_eq(et_gemm_f32(&g, &et_test_scrambled, scratch, sb), ET_OK);
        ck_assert_msg(memcmp(C1, C2, sizeof(float) * M * N) == 0, "layout %d differs", layout);
    }
    free(A); free(B); free(C1); free(C2); free(scratch);
}
END_TEST

START_TEST(gemm_bad_args)
{
    float a[4], b[4], c[4], s[16];
    et_gemm_args g;
    memset(&g, 0, sizeof g);
    g.M = 2; g.N = 2; g.K = 2; g.A = a; g.lda = 2; g.B = b; g.ldb = 2; g.C = c; g.ldc = 1;
    ck_assert_int_eq(et_gemm_f32(&g, NULL, s, sizeof s), ET_ERR_INVALID);
    g.ldc = 2;
    ck_assert_int_eq(et_gemm_f32(&g, NULL, s, sizeof s), ET_ERR_NOMEM);
    ck_assert_int_eq(et_gemm_f32(NULL, NULL, s, sizeof s), ET_ERR_INVALID);
}
END_TEST

static Suite *core_suite(void)
{
    Suite *s = suite_create("core");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, arena_basics);
    tcase_add_test(tc, arena_size_rounds_down);
    tcase_add_test(tc, rng_reproducible);
    tcase_add_test(tc, gemm_against_naive);
    tcase_add_test(tc, gemm_threads_bitwise);
    tcase_add_test(tc, gemm_bad_args);
    suite_add_tcase(s, tc);
    return s;
}

ET_CHECK_MAIN(core_suite)

/* check_lowrank.c - the freestanding SVD against matrices with known singular values
 * (tall, wide, square, rank-deficient), Eckart-Young truncation error, rank selection,
 * the factored matmul against the dense product, and bad input (rank 0 or larger than
 * the matrix, non-finite entries, scratch one byte short), and `compress --lowrank`
 * end to end with its bad requests (the CLI from $ET_CLI). */
#include <math.h>
#include <stdarg.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include "et_check.h"
#include "et_compress.h"
#include "et_gemm.h"
#include "et_lowrank.h"
#include "et_rng.h"

/* (rows, k) with orthonormal columns, by modified Gram-Schmidt on a random matrix */
static double *orthonormal(int rows, int k, et_rng *r)
{
    double *q = malloc(sizeof(double) * rows * k);
    int i, j, p;
    for (i = 0; i < rows * k; i++) q[i] = et_rng_normal(r);
    for (j = 0; j < k; j++) {
        double n = 0;
        for (p = 0; p < j; p++) {
            double d = 0;
            for (i = 0; i < rows; i++) d += q[i * k + j] * q[i * k + p];
            for (i = 0; i < rows; i++) q[i * k + j] -= d * q[i * k + p];
        }
        for (i = 0; i < rows; i++) n += q[i * k + j] * q[i * k + j];
        n = sqrt(n);
        for (i = 0; i < rows; i++) q[i * k + j] /= n;
    }
    return q;
}

/* A(m,n) = Q1 diag(s) Q2^T */
static float *with_singular_values(int m, int n, const double *s, uint64_t seed)
{
    et_rng r;
    int k = m < n ? m : n, i, j, p;
    double *q1, *q2;
    float *a = malloc(sizeof(float) * m * n);
    et_rng_seed(&r, seed);
    q1 = orthonormal(m, k, &r);
    q2 = orthonormal(n, k, &r);
    for (i = 0; i < m; i++)
        for (j = 0; j < n; j++) {
            double v = 0;
            for (p = 0; p < k; p++) v += q1[i * k + p] * s[p] * q2[j * k + p];
            a[i * n + j] = (float)v;
        }
    free(q1);
    free(q2);
    return a;
}

START_TEST(svd_known_values)
{
    static const int shapes[][2] = {{40, 24}, {24, 40}, {17, 17}, {64, 16}, {1, 9}};
    int t;
    for (t = 0; t < 5; t++) {
        int m = shapes[t][0], n = shapes[t][1], k = m < n ? m : n, i, j, p;
        double s_true[64];
        float *A, *s = malloc(sizeof(float) * k), *U = malloc(sizeof(float) * m * k), *Vt = malloc(sizeof(float) * k * n);
        size_t bytes = et_svd_bytes(m, n);
        void *buf = et_test_aligned(bytes);
        et_arena a;
        for (i = 0; i < k; i++) s_true[i] = i < k - 3 || k < 4 ? 10.0 * pow(0.8, i) : 0.0; /* rank-deficient tail */
        A = with_singular_values(m, n, s_true, 100 + t);
        et_arena_init(&a, buf, bytes - 1);
        ck_assert_int_eq(et_svd(A, m, n, s, U, Vt, &a), ET_ERR_NOMEM);
        et_arena_init(&a, buf, bytes);
        ck_assert_int_eq(et_svd(A, m, n, s, U, Vt, &a), ET_OK);
        ck_assert_uint_eq(a.head, 0); /* scratch released */
        for (i = 0; i < k; i++) ck_assert_msg(fabs(s[i] - s_true[i]) < 1e-5 * s_true[0], "%dx%d s[%d] = %g, want %g", m, n, i, s[i], s_true[i]);
        /* U S Vt gives A back */
        for (i = 0; i < m; i++)
            for (j = 0; j < n; j++) {
                double v = 0;
                for (p = 0; p < k; p++) v += (double)U[i * k + p] * s[p] * Vt[p * n + j];
                ck_assert(fabs(v - A[i * n + j]) < 1e-5 * s_true[0]);
            }
        /* the singular vectors of nonzero values are orthonormal */
        for (p = 0; p < k; p++)
            for (j = 0; j < k; j++) {
                double d = 0, e = 0;
                if (s_true[p] == 0 || s_true[j] == 0) continue;
                for (i = 0; i < m; i++) d += (double)U[i * k + p] * U[i * k + j];
                for (i = 0; i < n; i++) e += (double)Vt[p * n + i] * Vt[j * n + i];
                ck_assert(fabs(d - (p == j)) < 1e-4 && fabs(e - (p == j)) < 1e-4);
            }
        A[3 % (m * n)] = NAN;
        ck_assert_int_eq(et_svd(A, m, n, s, U, Vt, &a), ET_ERR_RANGE);
        free(A); free(s); free(U); free(Vt); free(buf);
    }
}
END_TEST

START_TEST(truncation_is_eckart_young)
{
    int OC = 48, K = 32, r, i, j, p;
    double s_true[32], tail;
    float *W, *A = malloc(sizeof(float) * OC * 32), *B = malloc(sizeof(float) * 32 * K);
    size_t bytes = et_lowrank_factor_bytes(OC, K);
    void *buf = et_test_aligned(bytes);
    et_arena a;
    for (i = 0; i < 32; i++) s_true[i] = 5.0 / (1 + i);
    W = with_singular_values(OC, K, s_true, 7);
    et_arena_init(&a, buf, bytes);
    for (r = 1; r <= 32; r += 5) {
        double err = 0;
        ck_assert_int_eq(et_lowrank_factor(W, OC, K, r, A, B, &a), ET_OK);
        for (i = 0; i < OC; i++)
            for (j = 0; j < K; j++) {
                double v = 0;
                for (p = 0; p < r; p++) v += (double)A[i * r + p] * B[p * K + j];
                err += (v - W[i * K + j]) * (v - W[i * K + j]);
            }
        for (tail = 0, i = r; i < 32; i++) tail += s_true[i] * s_true[i];
        ck_assert_msg(fabs(err - tail) <= 1e-3 * tail + 1e-8, "rank %d: error %g, want %g", r, err, tail);
    }
    /* a rank the matrix does not have */
    ck_assert_int_eq(et_lowrank_factor(W, OC, K, 0, A, B, &a), ET_ERR_RANGE);
    ck_assert_int_eq(et_lowrank_factor(W, OC, K, 33, A, B, &a), ET_ERR_RANGE);
    et_arena_init(&a, buf, bytes - 1);
    ck_assert_int_eq(et_lowrank_factor(W, OC, K, 4, A, B, &a), ET_ERR_NOMEM);
    free(W); free(A); free(B); free(buf);
}
END_TEST

START_TEST(scaled_factor)
{
    int OC = 20, K = 12, r = 5, i, j, p;
    float *W, *A = malloc(sizeof(float) * OC * K), *B = malloc(sizeof(float) * K * K), c[12];
    double sv[12];
    size_t bytes = et_lowrank_scaled_bytes(OC, K);
    void *buf = et_test_aligned(bytes);
    et_arena a;
    double e_plain = 0, e_aware = 0;
    for (i = 0; i < 12; i++) sv[i] = 1.0 / (1 + i);
    W = with_singular_values(OC, K, sv, 3);
    /* channel 0 matters 100x more: the aware factorization must fit it better */
    for (j = 0; j < K; j++) c[j] = j == 0 ? 100.0f : 1.0f;
    et_arena_init(&a, buf, bytes);
    for (p = 0; p < 2; p++) {
        ck_assert_int_eq(et_lowrank_factor_scaled(W, OC, K, r, p ? c : NULL, A, B, &a), ET_OK);
        for (i = 0; i < OC; i++) {
            double v = 0;
            int q;
            for (q = 0; q < r; q++) v += (double)A[i * r + q] * B[q * K];
            if (p) e_aware += (v - W[i * K]) * (v - W[i * K]);
            else e_plain += (v - W[i * K]) * (v - W[i * K]);
        }
    }
    ck_assert_msg(e_aware < 0.1 * e_plain + 1e-12, "column 0 error: aware %g, plain %g", e_aware, e_plain);
    c[3] = 0.0f;
    ck_assert_int_eq(et_lowrank_factor_scaled(W, OC, K, r, c, A, B, &a), ET_ERR_RANGE);
    et_arena_init(&a, buf, bytes - 1);
    c[3] = 1.0f;
    ck_assert_int_eq(et_lowrank_factor_scaled(W, OC, K, r, c, A, B, &a), ET_ERR_NOMEM);
    free(W); free(A); free(B); free(buf);
}
END_TEST

START_TEST(rank_selection)
{
    float s[4] = {3, 2, 1, 0};
    ck_assert_int_eq(et_lowrank_rank_energy(s, 4, 0.5f), 1);   /* 9 of 14 */
    ck_assert_int_eq(et_lowrank_rank_energy(s, 4, 0.9f), 2);   /* 13 of 14 */
    ck_assert_int_eq(et_lowrank_rank_energy(s, 4, 1.0f), 3);
    ck_assert_int_eq(et_lowrank_rank_params(512, 128, 0.5f), 51); /* 51 * 640 <= 32768 */
    ck_assert_int_eq(et_lowrank_rank_params(128, 128, 1.0f), 64);
    ck_assert_int_eq(et_lowrank_rank_params(4, 4, 0.1f), 0);
}
END_TEST

START_TEST(factored_matmul)
{
    int N = 13, K = 40, OC = 24, r = 7, i, j, p;
    et_rng g;
    float *x = malloc(sizeof(float) * N * K), *A = malloc(sizeof(float) * OC * r), *B = malloc(sizeof(float) * r * K);
    float *bias = malloc(sizeof(float) * OC), *y = malloc(sizeof(float) * N * OC), *tmp = malloc(sizeof(float) * N * r);
    size_t sb = et_gemm_scratch_bytes(1);
    float *scr = et_test_aligned(sb);
    et_rng_seed(&g, 9);
    for (i = 0; i < N * K; i++) x[i] = et_rng_normal(&g);
    for (i = 0; i < OC * r; i++) A[i] = et_rng_normal(&g);
    for (i = 0; i < r * K; i++) B[i] = et_rng_normal(&g);
    for (i = 0; i < OC; i++) bias[i] = et_rng_normal(&g);
    ck_assert_int_eq(et_lowrank_matmul(y, x, A, B, bias, N, K, OC, r, tmp, NULL, scr, sb), ET_OK);
    for (i = 0; i < N; i++)
        for (j = 0; j < OC; j++) {
            double v = bias[j];
            int k;
            for (k = 0; k < K; k++) {
                double w = 0;
                for (p = 0; p < r; p++) w += (double)A[j * r + p] * B[p * K + k];
                v += w * x[i * K + k];
            }
            ck_assert(fabs(v - y[i * OC + j]) < 1e-3);
        }
    ck_assert_int_eq(et_lowrank_matmul(y, x, A, B, bias, N, K, OC, 0, tmp, NULL, scr, sb), ET_ERR_INVALID);
    free(x); free(A); free(B); free(bias); free(y); free(tmp); free(scr);
}
END_TEST


START_TEST(cli_lowrank)
{
    const char *cli = et_test_cli();
    char dir[64], out[8192], path[300];
    struct stat st;
    et_lowrank_spec p;
    et_error e = {0};
    float l;
    FILE *f;
    int i;
    snprintf(dir, sizeof dir, "/tmp/et_lowrank_XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(dir));
    snprintf(path, sizeof path, "%s/text.txt", dir);
    f = fopen(path, "w");
    for (i = 0; i < 300; i++) fputs((i % 3) ? "Whether 'tis nobler in the mind to suffer\n" : "To be, or not to be\n", f);
    fclose(f);
    ck_assert_int_eq(et_test_run(out, sizeof out, "%s prepare --input %s --tokenizer char --dedup-min-len 0 --out %s/data",
                         cli, path, dir), 0);
    ck_assert_msg(et_test_run(out, sizeof out, "%s train --data %s/data/train.bin --layers 2 --heads 2 --channels 32 "
                      "--context 16 -b 4 -t 16 --steps 20 --warmup 5 --lr 3e-3 --eval-every 0 --threads 1 -q "
                      "--out %s/run", cli, dir, dir) == 0, "train: %s", out);
    ck_assert_msg(et_test_run(out, sizeof out, "%s compress --model %s/run/model.etck --data %s/data/val.bin --lowrank "
                      "params=0.5 -b 4 -t 16 --out %s/lr.etck", cli, dir, dir, dir) == 0, "%s", out);
    ck_assert(strstr(out, "low-rank MLP params=0.5") != NULL);
    ck_assert_int_eq(et_test_run(out, sizeof out, "%s eval --model %s/lr.etck --data %s/data/val.bin -b 4 -t 16 --batches 2",
                         cli, dir, dir), 0);
    ck_assert_int_eq(sscanf(out, "loss %f", &l), 1);
    ck_assert_msg(et_test_run(out, sizeof out, "%s compress --model %s/run/model.etck --data %s/data/val.bin --lowrank "
                      "params=0.5 --lowrank-aware --calib-batches 2 -b 4 -t 16 --out %s/lra.etck", cli, dir, dir,
                      dir) == 0, "%s", out);
    ck_assert(strstr(out, "activation-aware") != NULL);
    ck_assert_msg(et_test_run(out, sizeof out, "%s compress --model %s/run/model.etck --data %s/data/val.bin --lowrank "
                      "energy=0.95 --quant w8a8 --calib-batches 2 -b 4 -t 16 --out %s/lrq.etq -q", cli, dir, dir,
                      dir) == 0, "%s", out);
    /* bad requests: a rank larger than the matrix, shares outside (0, 1], with --prune */
    ck_assert_int_eq(et_test_run(out, sizeof out, "%s compress --model %s/run/model.etck --data %s/data/val.bin --lowrank "
                         "rank=33 -t 16 --out %s/x.etck", cli, dir, dir, dir), 1);
    ck_assert_msg(strstr(out, "rank 33 is larger than") != NULL, "%s", out);
    ck_assert_int_eq(et_test_run(out, sizeof out, "%s compress --model %s/run/model.etck --data %s/data/val.bin --lowrank "
                         "energy=1.5 --out %s/x.etck", cli, dir, dir, dir), 2);
    /* low-rank then 2:4: the rank rounds down to a multiple of 4 (A's rows are pruned in groups of 4) */
    ck_assert_msg(et_test_run(out, sizeof out, "%s compress --model %s/run/model.etck --data %s/data/val.bin --lowrank "
                      "params=0.3 --prune 2:4 -b 4 -t 16 --out %s/lrp.etsp", cli, dir, dir, dir) == 0, "%s", out);
    ck_assert(strstr(out, "low-rank MLP params=0.3 + pruned 2:4: val loss") != NULL);
    ck_assert_int_eq(et_test_run(out, sizeof out, "%s compress --model %s/run/model.etck --data %s/data/val.bin --lowrank "
                         "rank=6 --prune 2:4 -t 16 --out %s/x.etck", cli, dir, dir, dir), 1);
    ck_assert_msg(strstr(out, "must be a multiple of 4") != NULL, "%s", out);
    /* low-rank with a fine-tune after it */
    ck_assert_msg(et_test_run(out, sizeof out, "%s compress --model %s/run/model.etck --data %s/data/val.bin --lowrank "
                      "params=0.5 --finetune-steps 3 --finetune-batch 2 -b 4 -t 16 --out %s/lrft.etsp", cli, dir, dir,
                      dir) == 0, "%s", out);
    ck_assert(strstr(out, "low-rank MLP params=0.5 + 3 ft: val loss") != NULL);
    snprintf(path, sizeof path, "%s/x.etck", dir);
    ck_assert_int_ne(stat(path, &st), 0);
    ck_assert_int_eq(et_lowrank_spec_parse("rank=2.5", &p, &e), ET_ERR_INVALID);
    ck_assert_int_eq(et_lowrank_spec_parse("svd", &p, &e), ET_ERR_INVALID);
    ck_assert_int_eq(et_lowrank_spec_parse("params=0", &p, &e), ET_ERR_INVALID);
    ck_assert_int_eq(et_lowrank_spec_parse("energy=0.9", &p, &e), ET_OK);
    snprintf(path, sizeof path, "rm -rf %s", dir);
    ck_assert_int_eq(system(path), 0);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("lowrank");
    TCase *t = tcase_create("core");
    tcase_set_timeout(t, 120);
    tcase_add_test(t, svd_known_values);
    tcase_add_test(t, truncation_is_eckart_young);
    tcase_add_test(t, rank_selection);
    tcase_add_test(t, scaled_factor);
    tcase_add_test(t, factored_matmul);
    suite_add_tcase(s, t);
    t = tcase_create("cli");
    tcase_set_timeout(t, 300);
    tcase_add_test(t, cli_lowrank);
    suite_add_tcase(s, t);
    return s;
}

ET_CHECK_MAIN(suite)

/* check_quant.c - int8 quantization: fixed-point requantization against exact
 * arithmetic and gemmlowp's golden values, weight and activation quantization, the
 * calibrator (min/max, percentile, bad input, arena just fits / one byte short), every
 * compiled int8 GEMM kernel bit-exact against the plain integer loop on random and odd
 * shapes (and under a scrambled thread order), the W8A32 GEMM against float, and the
 * quantized GPT against the fp32 one. */
#include <math.h>
#include <string.h>
#include "et_check_model.h"
#include "et_cpu.h"
#include "et_gpt.h"
#include "et_qgemm.h"
#include "et_qgpt.h"
#include "et_quant.h"
#include "et_rng.h"

static void scrambled_for(void *pool, int n, et_task_fn fn, void *arg)
{
    int i;
    (void)pool;
    for (i = n - 1; i >= 0; i--) fn(arg, i, (i * 5) % 3);
}
static const et_threads scrambled = {0, 3, scrambled_for};

// --- fixed point

START_TEST(multiplier_roundtrip)
{
    et_rng r;
    int i;
    int32_t m, s;
    et_rng_seed(&r, 1);
    for (i = 0; i < 2000; i++) {
        double real = exp((et_rng_uniform(&r) - 0.7) * 30.0), back;
        ck_assert_int_eq(et_quant_multiplier(real, &m, &s), ET_OK);
        if (m == 0) { ck_assert(real < 1e-9); continue; }
        ck_assert(m >= (1 << 30));
        ck_assert(s >= -31 && s <= 30);
        back = (double)m * pow(2.0, s - 31);
        ck_assert(fabs(back - real) <= real * pow(2.0, -30));
    }
    ck_assert_int_eq(et_quant_multiplier(0.0, &m, &s), ET_ERR_RANGE);
    ck_assert_int_eq(et_quant_multiplier(-1.0, &m, &s), ET_ERR_RANGE);
    ck_assert_int_eq(et_quant_multiplier(NAN, &m, &s), ET_ERR_RANGE);
    ck_assert_int_eq(et_quant_multiplier(INFINITY, &m, &s), ET_ERR_RANGE);
    ck_assert_int_eq(et_quant_multiplier(1e-12, &m, &s), ET_OK);
    ck_assert_int_eq(m, 0);
    ck_assert_int_eq(et_quant_multiplier(0.5, &m, &s), ET_OK);
    ck_assert_int_eq(m, 1 << 30);
    ck_assert_int_eq(s, 0);
}
END_TEST

START_TEST(fixed_point_golden)
{
    et_rng r;
    int i;
    /* gemmlowp's definitions, by hand */
    ck_assert_int_eq(et_quant_srdhm(INT32_MIN, INT32_MIN), INT32_MAX);
    ck_assert_int_eq(et_quant_srdhm(1 << 30, 1 << 30), 1 << 29);
    ck_assert_int_eq(et_quant_srdhm(-(1 << 30), 1 << 30), -(1 << 29));
    ck_assert_int_eq(et_quant_srdhm(1, 1 << 30), 1);  /* 0.5 rounds up */
    ck_assert_int_eq(et_quant_srdhm(-1, 1 << 30), 0); /* -0.5 rounds up too */
    ck_assert_int_eq(et_quant_rdbpot(5, 1), 3);
    ck_assert_int_eq(et_quant_rdbpot(-5, 1), -3);
    ck_assert_int_eq(et_quant_rdbpot(3, 1), 2);
    ck_assert_int_eq(et_quant_rdbpot(-3, 1), -2);
    ck_assert_int_eq(et_quant_rdbpot(-4, 1), -2);
    ck_assert_int_eq(et_quant_rdbpot(7, 0), 7);
    ck_assert_int_eq(et_quant_rdbpot(INT32_MIN, 31), -1);
    ck_assert_int_eq(et_quant_rdbpot(INT32_MAX, 31), 1);
    et_rng_seed(&r, 2);
    for (i = 0; i < 100000; i++) {
        int32_t a = (int32_t)et_rng_u64(&r), b = (int32_t)et_rng_u64(&r);
        int e = (int)et_rng_below(&r, 32);
        double p = (double)a * (double)b / 2147483648.0, q = (double)a / ldexp(1.0, e);
        /* srdhm rounds half up; rdbpot rounds half away from zero */
        if (!(a == INT32_MIN && b == INT32_MIN)) ck_assert_int_eq(et_quant_srdhm(a, b), (int32_t)floor(p + 0.5));
        ck_assert_int_eq(et_quant_rdbpot(a, e), (int32_t)(q >= 0 ? floor(q + 0.5) : -floor(-q + 0.5)));
    }
}
END_TEST

START_TEST(requant_matches_real_multiply)
{
    et_rng r;
    int i;
    et_rng_seed(&r, 3);
    for (i = 0; i < 50000; i++) {
        double real = exp((et_rng_uniform(&r) - 0.8) * 16.0);
        int32_t acc = (int32_t)(et_rng_u64(&r) % 2000001) - 1000000, m, s, got;
        double want = (double)acc * real;
        ck_assert_int_eq(et_quant_multiplier(real, &m, &s), ET_OK);
        got = et_quant_requant(acc, m, s);
        if (fabs(want) < 1e9) ck_assert_msg(fabs((double)got - want) <= 1.0 + fabs(want) * 1e-8,
                                            "acc %d x %.9g = %.3f, got %d", acc, real, want, got);
    }
    /* the left shift saturates instead of wrapping */
    {
        int32_t m, s;
        ck_assert_int_eq(et_quant_multiplier(4.0, &m, &s), ET_OK);
        ck_assert_int_eq(s, 3);
        ck_assert(et_quant_requant(1 << 29, m, s) > 0);
        ck_assert(et_quant_requant(-(1 << 29), m, s) < 0);
    }
}
END_TEST

// --- weights, activations, calibration

START_TEST(weights_per_channel)
{
    float w[3 * 5] = {0.5f, -1.0f, 0.25f, 0.0f, 0.1f,  0, 0, 0, 0, 0,  100.f, -3.f, 2.f, 1.f, -100.f};
    int8_t q[15];
    float s[3];
    int i;
    ck_assert_int_eq(et_quant_weights_s8(w, 3, 5, q, s), ET_OK);
    ck_assert_int_eq(q[1], -127);
    ck_assert_int_eq(q[0], 64);
    ck_assert_int_eq(q[10], 127);
    ck_assert_int_eq(q[14], -127);
    ck_assert(s[1] == 1.0f);
    for (i = 5; i < 10; i++) ck_assert_int_eq(q[i], 0);
    for (i = 0; i < 15; i++) ck_assert(fabsf(s[i / 5] * q[i] - w[i]) <= 0.5f * s[i / 5] * 1.0001f);
    w[7] = NAN;
    ck_assert_int_eq(et_quant_weights_s8(w, 3, 5, q, s), ET_ERR_RANGE);
}
END_TEST

START_TEST(activation_params)
{
    et_qparams p;
    float x[5] = {-1.0f, 0.0f, 0.5f, 3.0f, 9.0f}, back[5];
    int8_t q[5];
    int i;
    ck_assert_int_eq(et_quant_act_params(-1.0f, 3.0f, &p), ET_OK);
    ck_assert(fabsf(p.scale - 4.0f / 255.0f) < 1e-7f);
    et_quant_f32_to_s8(q, x, 5, &p);
    et_quant_s8_to_f32(back, q, 5, &p);
    ck_assert(back[1] == 0.0f); /* zero is exact */
    ck_assert_int_eq(q[0], -128);
    ck_assert_int_eq(q[4], 127); /* clamped */
    for (i = 0; i < 4; i++) ck_assert(fabsf(back[i] - x[i]) <= 0.5f * p.scale + 1e-6f);
    ck_assert_int_eq(et_quant_act_params(0.5f, 2.0f, &p), ET_OK); /* widened to contain 0 */
    ck_assert_int_eq(p.zero_point, -128);
    ck_assert_int_eq(et_quant_act_params(-2.0f, -0.5f, &p), ET_OK);
    ck_assert_int_eq(p.zero_point, 127);
    ck_assert_int_eq(et_quant_act_params(0.0f, 0.0f, &p), ET_OK);
    ck_assert(p.scale == 1.0f);
    ck_assert_int_eq(et_quant_act_params(2.0f, 1.0f, &p), ET_ERR_RANGE);
    ck_assert_int_eq(et_quant_act_params(NAN, 1.0f, &p), ET_ERR_RANGE);
}
END_TEST

START_TEST(calibrator)
{
    size_t bytes = et_qcalib_bytes(2, 1000);
    void *buf = et_test_aligned(bytes);
    float x[10001], lo, hi;
    et_arena a;
    et_qcalib c;
    int i;
    /* one byte short is refused, arena untouched; exactly the size fits */
    ck_assert_int_eq(et_arena_init(&a, buf, bytes - 1), ET_OK);
    ck_assert_int_eq(et_qcalib_init(&c, 2, 1000, &a), ET_ERR_NOMEM);
    ck_assert_uint_eq(a.tail, 0);
    ck_assert_int_eq(et_arena_init(&a, buf, bytes), ET_OK);
    ck_assert_int_eq(et_qcalib_init(&c, 2, 1000, &a), ET_OK);
    ck_assert_uint_eq(et_arena_free_bytes(&a), 0);
    ck_assert_int_eq(et_qcalib_range(&c, 0, ET_QCALIB_MINMAX, 1.0f, &lo, &hi), ET_ERR_STATE);
    for (i = 0; i < 10000; i++) x[i] = (float)i / 10000.0f - 0.25f; /* [-0.25, 0.75) */
    x[10000] = 1000.0f;                                           /* one outlier */
    ck_assert_int_eq(et_qcalib_observe(&c, 0, x, 10001), ET_OK);
    ck_assert_int_eq(et_qcalib_next_pass(&c), ET_ERR_STATE); /* site 1 saw nothing */
    ck_assert_int_eq(et_qcalib_observe(&c, 1, x, 10), ET_OK);
    ck_assert_int_eq(et_qcalib_observe(&c, 2, x, 10), ET_ERR_RANGE);
    ck_assert_int_eq(et_qcalib_range(&c, 0, ET_QCALIB_PERCENTILE, 0.999f, &lo, &hi), ET_ERR_STATE);
    ck_assert_int_eq(et_qcalib_next_pass(&c), ET_OK);
    ck_assert_int_eq(et_qcalib_observe(&c, 0, x, 10001), ET_OK);
    ck_assert_int_eq(et_qcalib_range(&c, 0, ET_QCALIB_MINMAX, 1.0f, &lo, &hi), ET_OK);
    ck_assert(lo == -0.25f && hi == 1000.0f);
    /* with 1000 bins over [-0.25, 1000] the bulk sits in bin 0; the outlier's bin is dropped */
    ck_assert_int_eq(et_qcalib_range(&c, 0, ET_QCALIB_PERCENTILE, 0.9995f, &lo, &hi), ET_OK);
    ck_assert(lo == -0.25f);
    ck_assert(hi < 2.0f);
    ck_assert_int_eq(et_qcalib_range(&c, 0, ET_QCALIB_PERCENTILE, 0.4f, &lo, &hi), ET_ERR_INVALID);
    x[3] = NAN;
    ck_assert_int_eq(et_qcalib_observe(&c, 0, x, 10), ET_ERR_RANGE);
    free(buf);
}
END_TEST

// --- int8 GEMM

static void fill_s8(int8_t *x, size_t n, et_rng *r, int extreme)
{
    size_t i;
    for (i = 0; i < n; i++)
        x[i] = extreme ? (int8_t)((et_rng_u64(r) & 1) ? 127 : -128) : (int8_t)(et_rng_u64(r) & 0xFF);
}

static void check_shape(int M, int N, int K, int out, int extreme, uint64_t seed)
{
    et_rng r;
    size_t cn = (size_t)M * N, es = out == ET_QGEMM_OUT_S8 ? 1 : 4;
    int8_t *A = malloc((size_t)M * K + 1), *B = malloc((size_t)N * K + 1);
    int32_t *bias = malloc(sizeof(int32_t) * N), *mult = malloc(sizeof(int32_t) * N), *sh = malloc(sizeof(int32_t) * N);
    float *scale = malloc(sizeof(float) * N);
    uint8_t *ref = malloc(cn * es + 1), *got = malloc(cn * es + 1);
    size_t sb = et_qgemm_s8_scratch_bytes(K, 3);
    void *scr = et_test_aligned(sb);
    et_qgemm_args g;
    int j, k, pass;
    et_rng_seed(&r, seed);
    fill_s8(A, (size_t)M * K, &r, extreme);
    fill_s8(B, (size_t)N * K, &r, extreme);
    for (j = 0; j < N; j++) {
        /* multipliers as a model has them, plus a few above 1 (left shifts) */
        double real = exp((et_rng_uniform(&r) - 0.9) * 12.0);
        bias[j] = (int32_t)(et_rng_u64(&r) % 200001) - 100000;
        ck_assert_int_eq(et_quant_multiplier(real, &mult[j], &sh[j]), ET_OK);
        scale[j] = et_rng_uniform(&r) * 1e-3f;
    }
    memset(&g, 0, sizeof g);
    g.M = M; g.N = N; g.K = K; g.A = A; g.lda = K; g.B = B; g.ldb = K;
    g.bias = (seed & 1) ? bias : NULL;
    g.out = (et_qgemm_out)out; g.mult = mult; g.shift = sh; g.zp_out = (int32_t)(seed % 256) - 128;
    g.scale = scale; g.ldc = N;
    g.C = ref;
    ck_assert_int_eq(et_qgemm_s8_ref(&g), ET_OK);
    for (k = 0; k < et_qgemm_s8_nkernels(); k++)
        for (pass = 0; pass < 2; pass++) {
            memset(got, 0x5A, cn * es);
            g.C = got;
            ck_assert_int_eq(et_qgemm_s8_with(&g, pass ? &scrambled : NULL, scr, sb, k), ET_OK);
            ck_assert_msg(memcmp(ref, got, cn * es) == 0, "kernel %s differs from the reference: M %d N %d K %d out %d",
                          et_qgemm_s8_kernel_name(k), M, N, K, out);
        }
    /* scratch one byte short */
    g.C = got;
    ck_assert_int_eq(et_qgemm_s8(&g, NULL, scr, et_qgemm_s8_scratch_bytes(K, 1) - 1), ET_ERR_NOMEM);
    free(A); free(B); free(bias); free(mult); free(sh); free(scale); free(ref); free(got); free(scr);
}

START_TEST(qgemm_bit_exact)
{
    static const int dims[] = {1, 2, 5, 6, 7, 13, 16, 17, 33, 80};
    static const int ks[] = {0, 1, 2, 3, 8, 15, 16, 31, 64, 129, 300};
    int i, j, k, o;
    uint64_t seed = 10;
    for (o = 0; o < 3; o++)
        for (i = 0; i < 10; i += 2)
            for (j = 0; j < 10; j += 3)
                for (k = 0; k < 11; k += 2) check_shape(dims[i], dims[j], ks[k], o, 0, seed++);
    check_shape(75, 300, 517, ET_QGEMM_OUT_S8, 0, 99);   /* several M blocks and N panels */
    check_shape(19, 37, 4096, ET_QGEMM_OUT_S32, 1, 100); /* all +-127/-128: largest sums */
    check_shape(7, 33, 63, ET_QGEMM_OUT_S8, 1, 101);
    ck_assert_ptr_nonnull(et_qgemm_s8_kernel_name(0));
    ck_assert_str_eq(et_qgemm_s8_kernel_name(et_qgemm_s8_nkernels() - 1), "scalar");
}
END_TEST

START_TEST(qgemm_bad_args)
{
    int8_t a[4] = {0}, b[4] = {0};
    int32_t c[4];
    char scr[4096];
    et_qgemm_args g;
    memset(&g, 0, sizeof g);
    g.M = 2; g.N = 2; g.K = 2; g.A = a; g.lda = 2; g.B = b; g.ldb = 2; g.C = c; g.ldc = 2;
    g.out = ET_QGEMM_OUT_S8; /* no multipliers */
    ck_assert_int_eq(et_qgemm_s8(&g, NULL, scr, sizeof scr), ET_ERR_INVALID);
    g.out = ET_QGEMM_OUT_F32; /* no scale */
    ck_assert_int_eq(et_qgemm_s8(&g, NULL, scr, sizeof scr), ET_ERR_INVALID);
    g.out = ET_QGEMM_OUT_S32;
    g.lda = 1;
    ck_assert_int_eq(et_qgemm_s8(&g, NULL, scr, sizeof scr), ET_ERR_INVALID);
    g.lda = 2;
    g.K = ET_QGEMM_KMAX + 1;
    ck_assert_int_eq(et_qgemm_s8_ref(&g), ET_ERR_INVALID);
    g.K = 2;
    ck_assert_int_eq(et_qgemm_s8_with(&g, NULL, scr, sizeof scr, 99), ET_ERR_INVALID);
    ck_assert_int_eq(et_qgemm_s8(&g, NULL, scr, sizeof scr), ET_OK);
}
END_TEST

START_TEST(wgemm_matches_float)
{
    static const int shapes[][3] = {{1, 1, 1}, {7, 17, 5}, {13, 33, 300}, {80, 20, 64}, {5, 1030, 9}, {3, 4, 0}};
    int si;
    for (si = 0; si < 6; si++) {
        int M = shapes[si][0], N = shapes[si][1], K = shapes[si][2], i, j, k;
        et_rng r;
        float *A = malloc(sizeof(float) * (size_t)M * K + 4), *s = malloc(sizeof(float) * N);
        float *bias = malloc(sizeof(float) * N), *C = malloc(sizeof(float) * M * N), *C2 = malloc(sizeof(float) * M * N);
        int8_t *B = malloc((size_t)N * K + 1);
        size_t sb = et_qgemm_w8a32_scratch_bytes(3);
        void *scr = et_test_aligned(sb);
        et_wgemm_args g;
        et_rng_seed(&r, 50 + si);
        for (i = 0; i < M * K; i++) A[i] = et_rng_normal(&r);
        for (i = 0; i < N * K; i++) B[i] = (int8_t)(et_rng_u64(&r) & 0xFF);
        for (j = 0; j < N; j++) { s[j] = 0.01f * et_rng_uniform(&r); bias[j] = et_rng_normal(&r); }
        g.M = M; g.N = N; g.K = K; g.A = A; g.lda = K; g.B = B; g.ldb = K; g.scale = s; g.bias = bias;
        g.C = C; g.ldc = N;
        ck_assert_int_eq(et_qgemm_w8a32(&g, NULL, scr, sb), ET_OK);
        for (i = 0; i < M; i++)
            for (j = 0; j < N; j++) {
                double want = bias[j], mag = fabs(bias[j]);
                for (k = 0; k < K; k++) {
                    want += (double)A[i * K + k] * (double)((float)B[j * K + k] * s[j]);
                    mag += fabs((double)A[i * K + k] * B[j * K + k] * s[j]);
                }
                ck_assert_msg(fabs(C[i * N + j] - want) <= 1e-5 * mag + 1e-6, "W8A32 (%d,%d): %g vs %g", i, j,
                              C[i * N + j], want);
            }
        g.C = C2;
        ck_assert_int_eq(et_qgemm_w8a32(&g, &scrambled, scr, sb), ET_OK);
        ck_assert(memcmp(C, C2, sizeof(float) * M * N) == 0); /* threads never change the bits */
        ck_assert_int_eq(et_qgemm_w8a32(&g, NULL, scr, et_qgemm_w8a32_scratch_bytes(1) - 1), ET_ERR_NOMEM);
        free(A); free(s); free(bias); free(C); free(C2); free(B); free(scr);
    }
}
END_TEST

// --- the quantized GPT

static et_gpt_config tiny(void)
{
    et_gpt_config c = {0};
    c.vocab = 29; c.context = 16; c.layers = 2; c.heads = 2; c.channels = 32;
    et_gpt_config_check(&c);
    return c;
}

/* the fp32 model the quantizer starts from: a planned cpu model with weights of seed 7 */
static void frig_make(et_test_model *f, et_gpt_config c, int B, int T, et_gpt_mode mode)
{
    et_test_model_make(f, c, B, T, mode);
    ck_assert_int_eq(et_gpt_init_weights(&f->m, 7), ET_OK);
}

static void tokens(int *x, int n, int V, et_rng *r)
{
    int i;
    for (i = 0; i < n; i++) x[i] = (int)et_rng_below(r, (uint32_t)V);
}

/* quantizes the fp32 model of @p f (calibrated on its own batch when W8A8) and returns
 * the quantized loss on (in, tg) */
static float run_quant(et_test_model *f, et_qmode mode, const int *in, const int *tg, int B, int T, float *params,
                       void **blob_out, size_t *blob_bytes)
{
    et_gpt_config c = f->m.cfg;
    int ns = et_qgpt_nsites(&c), i, pass;
    float *lo = malloc(sizeof(float) * ns), *hi = malloc(sizeof(float) * ns);
    size_t bb, cb = et_qcalib_bytes(ns, 256), plan;
    void *blob, *cmem = et_test_aligned(cb), *qmem;
    et_arena a, qa;
    et_qcalib cal;
    et_qgpt q;
    float loss;
    ck_assert_int_eq(et_gpt_get_params(&f->m, params), ET_OK);
    ck_assert_int_eq(et_qgpt_tensors(&c, mode, NULL, &bb), ET_OK);
    blob = et_test_aligned(bb);
    if (mode == ET_QMODE_W8A8) {
        et_arena_init(&a, cmem, cb);
        ck_assert_int_eq(et_qcalib_init(&cal, ns, 256, &a), ET_OK);
        for (pass = 0; pass < 2; pass++) {
            ck_assert_int_eq(et_gpt_forward(&f->m, in, tg, B, T), ET_OK);
            ck_assert_int_eq(et_qcalib_observe_gpt(&cal, &f->m), ET_OK);
            if (pass == 0) ck_assert_int_eq(et_qcalib_next_pass(&cal), ET_OK);
        }
        for (i = 0; i < ns; i++) ck_assert_int_eq(et_qcalib_range(&cal, i, ET_QCALIB_PERCENTILE, 0.9999f, &lo[i], &hi[i]), ET_OK);
        ck_assert_int_eq(et_qgpt_quantize(&c, params, mode, NULL, NULL, blob, bb), ET_ERR_INVALID);
    }
    ck_assert_int_eq(et_qgpt_quantize(&c, params, mode, lo, hi, blob, bb - 1), ET_ERR_NOMEM);
    ck_assert_int_eq(et_qgpt_quantize(&c, params, mode, lo, hi, blob, bb), ET_OK);
    ck_assert_int_eq(et_qgpt_plan(&c, mode, B, T, 1, &plan), ET_OK);
    qmem = et_test_aligned(plan);
    et_arena_init(&qa, qmem, plan - 1);
    ck_assert_int_eq(et_qgpt_create(&q, &c, mode, blob, bb, B, T, NULL, &qa), ET_ERR_NOMEM);
    ck_assert_uint_eq(qa.tail, 0);
    et_arena_init(&qa, qmem, plan);
    ck_assert_int_eq(et_qgpt_create(&q, &c, mode, blob, bb, B, T, NULL, &qa), ET_OK);
    ck_assert_uint_eq(et_arena_free_bytes(&qa), 0);
    ck_assert_int_eq(et_qgpt_forward(&q, in, tg, B, T), ET_OK);
    loss = q.mean_loss;
    {
        /* inputs outside the vocabulary, and shapes beyond the plan */
        int bad[64];
        memcpy(bad, in, sizeof(int) * B * T);
        bad[3] = c.vocab;
        ck_assert_int_eq(et_qgpt_forward(&q, bad, NULL, B, T), ET_ERR_RANGE);
        ck_assert_int_eq(et_qgpt_forward(&q, in, NULL, B + 1, T), ET_ERR_RANGE);
    }
    free(lo); free(hi); free(cmem); free(qmem);
    *blob_out = blob;
    *blob_bytes = bb;
    return loss;
}

START_TEST(qgpt_close_to_fp32)
{
    et_gpt_config c = tiny();
    et_test_model f;
    et_rng r;
    int in[2 * 16], tg[2 * 16], B = 2, T = 16, mode;
    float *params, *back, fp;
    et_rng_seed(&r, 11);
    tokens(in, B * T, c.vocab, &r);
    tokens(tg, B * T, c.vocab, &r);
    frig_make(&f, c, B, T, ET_GPT_TRAIN);
    params = malloc(sizeof(float) * f.m.nparams);
    back = malloc(sizeof(float) * f.m.nparams);
    ck_assert_int_eq(et_gpt_forward(&f.m, in, tg, B, T), ET_OK);
    fp = f.m.mean_loss;
    for (mode = ET_QMODE_W8A8; mode <= ET_QMODE_W8A32; mode++) {
        void *blob;
        size_t bb, i;
        float ql = run_quant(&f, (et_qmode)mode, in, tg, B, T, params, &blob, &bb);
        /* random-init weights are small and the logits nearly flat: both losses are
         * near log(V) and the int8 model must stay within a fraction of a percent */
        ck_assert_msg(fabsf(ql - fp) < 0.01f * fp, "mode %d: quantized loss %f vs fp32 %f", mode, ql, fp);
        ck_assert_int_eq(et_qgpt_dequantize(&c, (et_qmode)mode, blob, bb, back), ET_OK);
        for (i = 0; i < f.m.nparams; i++) ck_assert(fabsf(back[i] - params[i]) <= 0.02f * 0.5f * 4.0f / 127.0f + 1e-4f);
        free(blob);
    }
    free(params); free(back); free(f.mem);
}
END_TEST

START_TEST(qgpt_layout_and_views)
{
    et_gpt_config c = tiny(), bad = c;
    et_qtensor_info t[ET_QGPT_NTENSORS];
    et_qgpt_weights w;
    size_t b8, b32;
    int i;
    ck_assert_int_eq(et_qgpt_tensors(&c, ET_QMODE_W8A8, t, &b8), ET_OK);
    for (i = 0; i < ET_QGPT_NTENSORS; i++) ck_assert_uint_eq(t[i].offset % 64, 0);
    ck_assert_int_eq(et_qgpt_tensors(&c, ET_QMODE_W8A32, t, &b32), ET_OK);
    ck_assert(b32 < b8);
    ck_assert_int_eq(et_qgpt_tensors(&c, (et_qmode)3, t, &b8), ET_ERR_INVALID);
    bad.heads = 5;
    ck_assert_int_eq(et_qgpt_tensors(&bad, ET_QMODE_W8A8, t, &b8), ET_ERR_INVALID);
    {
        void *blob = et_test_aligned(b32 + 64);
        ck_assert_int_eq(et_qgpt_view(&c, ET_QMODE_W8A32, (char *)blob + 4, b32, &w), ET_ERR_INVALID);
        ck_assert_int_eq(et_qgpt_view(&c, ET_QMODE_W8A32, blob, b32 - 1, &w), ET_ERR_NOMEM);
        ck_assert_int_eq(et_qgpt_view(&c, ET_QMODE_W8A32, blob, b32, &w), ET_OK);
        ck_assert_ptr_null(w.gelu_lut);
        ck_assert_ptr_nonnull(w.qkv.bf);
        free(blob);
    }
}
END_TEST

START_TEST(calib_needs_all_layers)
{
    et_gpt_config c = tiny();
    et_test_model f;
    et_rng r;
    int in[16], ns = et_qgpt_nsites(&c);
    size_t cb = et_qcalib_bytes(ns, 16);
    void *mem = et_test_aligned(cb);
    et_arena a;
    et_qcalib cal;
    et_rng_seed(&r, 4);
    tokens(in, 16, c.vocab, &r);
    frig_make(&f, c, 1, 16, ET_GPT_INFER);
    et_arena_init(&a, mem, cb);
    ck_assert_int_eq(et_qcalib_init(&cal, ns, 16, &a), ET_OK);
    ck_assert_int_eq(et_gpt_forward(&f.m, in, NULL, 1, 16), ET_OK);
    ck_assert_int_eq(et_qcalib_observe_gpt(&cal, &f.m), ET_ERR_STATE); /* one layer kept */
    free(mem); free(f.mem);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("quant");
    TCase *t = tcase_create("core");
    tcase_set_timeout(t, 120);
    tcase_add_test(t, multiplier_roundtrip);
    tcase_add_test(t, fixed_point_golden);
    tcase_add_test(t, requant_matches_real_multiply);
    tcase_add_test(t, weights_per_channel);
    tcase_add_test(t, activation_params);
    tcase_add_test(t, calibrator);
    tcase_add_test(t, qgemm_bit_exact);
    tcase_add_test(t, qgemm_bad_args);
    tcase_add_test(t, wgemm_matches_float);
    tcase_add_test(t, qgpt_layout_and_views);
    tcase_add_test(t, qgpt_close_to_fp32);
    tcase_add_test(t, calib_needs_all_layers);
    suite_add_tcase(s, t);
    return s;
}

ET_CHECK_MAIN(suite)

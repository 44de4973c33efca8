/* check_systolic.c - the systolic array model: compute cycles against SCALE-Sim's model
 * (its own golden reports, and its demand-matrix construction counted row by row),
 * the register-level fold simulation against the closed form and against the fast
 * wavefront model bit for bit, int8 GEMMs bit-exact against a plain integer triple
 * loop, fp32 GEMMs against the documented accumulation order (bits) and a double
 * reference (tolerance), thread independence, the memory and energy model, the int8
 * stand-in quantizer and bad inputs. Model-level runs are in check_systolic_model.c. */
#include <string.h>
#include "et_check.h"
#include "et_rng.h"
#include "et_systolic.h"

static et_sys_config cfg_of(int R, int C, et_sys_dataflow df, et_sys_dtype dt)
{
    et_sys_config c;
    et_sys_config_default(&c);
    c.rows = R;
    c.cols = C;
    c.dataflow = df;
    c.dtype = dt;
    return c;
}

static void *xmalloc(size_t n)
{
    void *p = et_test_aligned(n);
    ck_assert_ptr_nonnull(p);
    return p;
}

static void fill_f(float *x, size_t n, uint64_t seed)
{
    et_rng r;
    size_t i;
    et_rng_seed(&r, seed);
    for (i = 0; i < n; i++) x[i] = et_rng_normal(&r);
}

static void fill_s8(int8_t *x, size_t n, uint64_t seed)
{
    et_rng r;
    size_t i;
    et_rng_seed(&r, seed);
    for (i = 0; i < n; i++) x[i] = (int8_t)((int)et_rng_below(&r, 256) - 128);
}

static uint64_t cdiv(uint64_t a, uint64_t b) { return (a + b - 1) / b; }

/* SCALE-Sim v2's compute cycles, rebuilt from how its systolic_compute_{os,ws,is}.py
 * assemble the per-fold demand matrices: prefix rows + operand rows + suffix rows, then
 * skew_matrix() adds (columns - 1) rows; the fold's matrix height is its cycles. */
static uint64_t scalesim_rows(int R, int C, et_sys_dataflow df, int M, int N, int K)
{
    uint64_t Sr, Sc, T, per_fold;
    if (df == ET_SYS_OS) { /* ifmap demand: T rows + (C-1) drain, skewed over R columns */
        Sr = M; Sc = N; T = K;
        per_fold = (T + (uint64_t)C - 1) + ((uint64_t)R - 1);
    } else { /* ifmap demand: R weight-load rows + T + (C-1), skewed over R columns */
        Sr = K; Sc = df == ET_SYS_WS ? N : M; T = df == ET_SYS_WS ? M : N;
        per_fold = ((uint64_t)R + T + (uint64_t)C - 1) + ((uint64_t)R - 1);
        if (df == ET_SYS_IS) /* ifmap demand: R rows + (R + C + T - 2) suffix, no skew */
            ck_assert_uint_eq(per_fold, (uint64_t)R + ((uint64_t)R + C + T - 2));
    }
    return cdiv(Sr, (uint64_t)R) * cdiv(Sc, (uint64_t)C) * per_fold;
}

START_TEST(scalesim_golden_reports)
{
    /* scale-sim-v2 test/general/golden_trace_user_{ws,os,is}/COMPUTE_REPORT.csv: layer
     * M=256 N=128 K=256 (topologies/GEMM_mnk/test_mnk_input.csv) on 32x32; Total Cycles
     * minus Stall Cycles = 52447-41248, 52447-42272, 19984-5777 */
    et_sys_config c = cfg_of(32, 32, ET_SYS_WS, ET_SYS_INT8);
    ck_assert_uint_eq(et_sys_compute_cycles(&c, 256, 128, 256) - 1, 11199);
    c.dataflow = ET_SYS_OS;
    ck_assert_uint_eq(et_sys_compute_cycles(&c, 256, 128, 256) - 1, 10175);
    c.dataflow = ET_SYS_IS;
    ck_assert_uint_eq(et_sys_compute_cycles(&c, 256, 128, 256) - 1, 14207);
}
END_TEST

START_TEST(closed_form_matches_scalesim_construction)
{
    static const int shapes[][3] = {/* M, N, K */
        {1, 1, 1}, {3025, 96, 363}, {256, 128, 256}, {64, 192, 64}, {64, 64, 64},
        {64, 256, 64}, {64, 64, 256}, {64, 65, 33}, {17, 5, 300}, {1000, 1, 7},
        {7, 1000, 1}, {129, 257, 513}, {4, 4, 4096}, {12544, 64, 147}};
    static const int arrays[][2] = {{16, 16}, {32, 32}, {128, 128}, {256, 256}, {8, 32}, {1, 1}, {5, 3}};
    size_t s, a;
    int df;
    for (s = 0; s < sizeof shapes / sizeof shapes[0]; s++)
        for (a = 0; a < sizeof arrays / sizeof arrays[0]; a++)
            for (df = 0; df < 3; df++) {
                et_sys_config c = cfg_of(arrays[a][0], arrays[a][1], (et_sys_dataflow)df, ET_SYS_FP32);
                int M = shapes[s][0], N = shapes[s][1], K = shapes[s][2];
                ck_assert_uint_eq(et_sys_compute_cycles(&c, M, N, K),
                                  scalesim_rows(arrays[a][0], arrays[a][1], (et_sys_dataflow)df, M, N, K));
            }
}
END_TEST

/* --- the register-level model over a whole GEMM, folds in the hardware's order */

typedef struct {
    uint64_t cycles, macs;
} rtl_out;

/* Runs every fold of C = A.B (row-major, lda K, ldb N) through et_sys_cycle_fold and
 * accumulates K folds as the accumulator SRAM does. C is float (fp32) or int32 (int8). */
static rtl_out rtl_gemm(const et_sys_config *c, int M, int N, int K, const void *A, const void *B, void *C)
{
    int R = c->rows, Cc = c->cols, i8 = c->dtype == ET_SYS_INT8, es = i8 ? 1 : 4;
    size_t sb = et_sys_cycle_scratch_bytes(R, Cc);
    void *scr = xmalloc(sb);
    char *x = xmalloc((size_t)(M + N + K) * (size_t)(M + N + K) * 4);
    char *y = xmalloc((size_t)(M + N + K) * (size_t)(M + N + K) * 4);
    char *o = xmalloc((size_t)(M + N + K) * (size_t)(M + N + K) * 4);
    et_sys_map m;
    rtl_out res = {0, 0};
    int i, j, r, q, t;
    ck_assert_int_eq(et_sys_map_gemm(c, M, N, K, &m), ET_OK);
    for (j = 0; j < m.col_folds; j++)
        for (i = 0; i < m.row_folds; i++) {
            int ru = m.Sr - i * R < R ? m.Sr - i * R : R, cu = m.Sc - j * Cc < Cc ? m.Sc - j * Cc : Cc;
            int r0 = i * R, c0 = j * Cc, T = m.T;
            uint64_t cyc, macs;
            /* gather the fold's operands in the array's layout */
            for (r = 0; r < ru; r++)
                for (q = 0; q < (c->dataflow == ET_SYS_OS ? T : cu); q++) {
                    size_t src;
                    if (c->dataflow == ET_SYS_OS) src = (size_t)(r0 + r) * K + q;        /* A rows */
                    else if (c->dataflow == ET_SYS_WS) src = (size_t)(r0 + r) * N + c0 + q; /* B tile */
                    else src = (size_t)(c0 + q) * K + r0 + r;                          /* A^T tile */
                    memcpy(x + ((size_t)r * (c->dataflow == ET_SYS_OS ? T : cu) + q) * es,
                           (const char *)(c->dataflow == ET_SYS_WS ? B : A) + src * es, (size_t)es);
                }
            for (t = 0; t < T; t++)
                for (q = 0; q < (c->dataflow == ET_SYS_OS ? cu : ru); q++) {
                    size_t src, dst;
                    if (c->dataflow == ET_SYS_OS) src = (size_t)t * N + c0 + q, dst = (size_t)t * cu + q;
                    else if (c->dataflow == ET_SYS_WS) src = (size_t)t * K + r0 + q, dst = (size_t)t * ru + q;
                    else src = (size_t)(r0 + q) * N + t, dst = (size_t)t * ru + q;
                    memcpy(y + dst * es, (const char *)(c->dataflow == ET_SYS_WS ? A : B) + src * es, (size_t)es);
                }
            ck_assert_int_eq(et_sys_cycle_fold(c, ru, cu, T, x, y, o, scr, sb, &cyc, &macs), ET_OK);
            ck_assert_uint_eq(cyc, m.fold_cycles);
            ck_assert_uint_eq(macs, (uint64_t)ru * cu * T);
            res.cycles += cyc;
            res.macs += macs;
            /* scatter: OS tiles are final; WS/IS column sums accumulate over K folds */
            for (t = 0; t < (c->dataflow == ET_SYS_OS ? ru : T); t++)
                for (q = 0; q < cu; q++) {
                    size_t d = c->dataflow == ET_SYS_OS ? (size_t)(r0 + t) * N + c0 + q
                             : c->dataflow == ET_SYS_WS ? (size_t)t * N + c0 + q
                                                        : (size_t)(c0 + q) * N + t;
                    size_t sidx = (size_t)t * cu + q;
                    if (i8) {
                        uint32_t v = (uint32_t)((int32_t *)o)[sidx];
                        int32_t *dst = (int32_t *)C + d;
                        *dst = i == 0 || c->dataflow == ET_SYS_OS ? (int32_t)v : (int32_t)((uint32_t)*dst + v);
                    } else {
                        float v = ((float *)o)[sidx], *dst = (float *)C + d;
                        *dst = i == 0 || c->dataflow == ET_SYS_OS ? v : *dst + v;
                    }
                }
        }
    free(scr); free(x); free(y); free(o);
    return res;
}

static et_sys_operand op(const void *p, int ld, int trans, et_sys_optype t)
{
    et_sys_operand o = {0, 0, 0, ET_SYS_OP_F32, 0, -1};
    o.data = p; o.ld = ld; o.trans = trans; o.type = t;
    return o;
}

static void run_gemm(const et_sys_config *c, int M, int N, int K, const et_sys_operand *A,
                     const et_sys_operand *B, const et_sys_result *R, const et_threads *th,
                     et_sys_stats *st)
{
    size_t sb = et_sys_gemm_scratch_bytes(c, et_threads_workers(th));
    void *scr = xmalloc(sb);
    ck_assert_int_eq(et_sys_gemm(c, M, N, K, A, B, R, th, scr, sb, st), ET_OK);
    free(scr);
}

START_TEST(cycle_model_equals_wavefront_model)
{
    static const int shapes[][3] = {{1, 1, 1}, {5, 7, 3}, {9, 4, 11}, {16, 9, 20}, {3, 13, 8}};
    static const int arrays[][2] = {{1, 1}, {4, 4}, {3, 5}, {8, 2}};
    size_t s, a;
    int df, dt;
    for (s = 0; s < sizeof shapes / sizeof shapes[0]; s++)
        for (a = 0; a < sizeof arrays / sizeof arrays[0]; a++)
            for (df = 0; df < 3; df++)
                for (dt = 0; dt < 2; dt++) {
                    int M = shapes[s][0], N = shapes[s][1], K = shapes[s][2];
                    et_sys_config c = cfg_of(arrays[a][0], arrays[a][1], (et_sys_dataflow)df, (et_sys_dtype)dt);
                    size_t es = dt ? 1 : 4;
                    void *A = xmalloc((size_t)M * K * es), *B = xmalloc((size_t)K * N * es);
                    void *C1 = xmalloc((size_t)M * N * 4), *C2 = xmalloc((size_t)M * N * 4);
                    et_sys_operand oa = op(A, K, 0, dt ? ET_SYS_OP_S8 : ET_SYS_OP_F32);
                    et_sys_operand ob = op(B, N, 0, dt ? ET_SYS_OP_S8 : ET_SYS_OP_F32);
                    et_sys_result R = {0, 0, 0, 0, 0, 1.0f, 0};
                    rtl_out ro;
                    if (dt) { fill_s8(A, (size_t)M * K, s + 1); fill_s8(B, (size_t)K * N, s + 2); }
                    else { fill_f(A, (size_t)M * K, s + 1); fill_f(B, (size_t)K * N, s + 2); }
                    if (dt) R.s32 = C2; else R.f32 = C2;
                    R.ld = N;
                    ro = rtl_gemm(&c, M, N, K, A, B, C1);
                    ck_assert_uint_eq(ro.cycles, et_sys_compute_cycles(&c, M, N, K));
                    ck_assert_uint_eq(ro.macs, (uint64_t)M * N * K);
                    run_gemm(&c, M, N, K, &oa, &ob, &R, NULL, NULL);
                    ck_assert_msg(memcmp(C1, C2, (size_t)M * N * 4) == 0,
                                  "%s %s %dx%d M=%d N=%d K=%d: cycle model and wavefront model differ",
                                  et_sys_dataflow_name(c.dataflow), et_sys_dtype_name(c.dtype),
                                  c.rows, c.cols, M, N, K);
                    free(A); free(B); free(C1); free(C2);
                }
}
END_TEST

/* --- int8: bit-exact against the plain integer triple loop */

START_TEST(int8_bit_exact)
{
    static const int shapes[][3] = {{1, 1, 1}, {33, 17, 65}, {100, 3, 7}, {5, 64, 129}, {70, 70, 70}, {2, 300, 31}};
    static const int arrays[][2] = {{16, 16}, {8, 8}, {3, 5}, {32, 32}, {1, 1}};
    size_t s, a;
    int df, tr;
    for (s = 0; s < sizeof shapes / sizeof shapes[0]; s++)
        for (a = 0; a < sizeof arrays / sizeof arrays[0]; a++)
            for (df = 0; df < 3; df++)
                for (tr = 0; tr < 4; tr++) {
                    int M = shapes[s][0], N = shapes[s][1], K = shapes[s][2], i, j, k;
                    et_sys_config c = cfg_of(arrays[a][0], arrays[a][1], (et_sys_dataflow)df, ET_SYS_INT8);
                    int8_t *A = xmalloc((size_t)M * K), *B = xmalloc((size_t)K * N);
                    int32_t *C = xmalloc((size_t)M * N * 4);
                    int ta = tr & 1, tb = tr >> 1;
                    et_sys_operand oa = op(A, ta ? M : K, ta, ET_SYS_OP_S8), ob = op(B, tb ? K : N, tb, ET_SYS_OP_S8);
                    et_sys_result R = {0, 0, 0, 0, 0, 1.0f, 0};
                    fill_s8(A, (size_t)M * K, 10 + s);
                    fill_s8(B, (size_t)K * N, 20 + s);
                    R.s32 = C;
                    R.ld = N;
                    run_gemm(&c, M, N, K, &oa, &ob, &R, NULL, NULL);
                    for (i = 0; i < M; i++)
                        for (j = 0; j < N; j++) {
                            int32_t ref = 0;
                            for (k = 0; k < K; k++)
                                ref += (int32_t)A[ta ? (size_t)k * M + i : (size_t)i * K + k] *
                                       (int32_t)B[tb ? (size_t)j * K + k : (size_t)k * N + j];
                            ck_assert_msg(C[(size_t)i * N + j] == ref, "%s %dx%d M=%d N=%d K=%d tr=%d (%d,%d): %d != %d",
                                          et_sys_dataflow_name(c.dataflow), c.rows, c.cols, M, N, K, tr, i, j,
                                          C[(size_t)i * N + j], ref);
                        }
                    free(A); free(B); free(C);
                }
}
END_TEST

/* int8 products wrap in int32 like the hardware adder (no UB, no saturation) */
START_TEST(int8_accumulator_wraps)
{
    int K = 140000, i;
    et_sys_config c = cfg_of(16, 16, ET_SYS_WS, ET_SYS_INT8);
    int8_t *A = xmalloc((size_t)K), *B = xmalloc((size_t)K);
    int32_t out = 0;
    et_sys_operand oa = op(A, K, 0, ET_SYS_OP_S8), ob = op(B, 1, 0, ET_SYS_OP_S8);
    et_sys_result R = {0, 0, 0, 0, 0, 1.0f, 0};
    for (i = 0; i < K; i++) A[i] = B[i] = -128; /* 16384 each: 2.29e9 > INT32_MAX */
    R.s32 = &out;
    R.ld = 1;
    run_gemm(&c, 1, 1, K, &oa, &ob, &R, NULL, NULL);
    ck_assert_int_eq(out, (int32_t)(uint32_t)((uint64_t)16384 * (uint64_t)K));
    free(A); free(B);
}
END_TEST

/* --- fp32: the documented order, bit for bit; a double reference within tolerance */

static float sys_order(const et_sys_config *c, const float *A, const float *B, int N, int K, int i, int j)
{
    float S = 0.0f, p;
    int k, k0;
    if (c->dataflow == ET_SYS_OS) {
        for (k = 0; k < K; k++) S = S + A[(size_t)i * K + k] * B[(size_t)k * N + j];
        return S;
    }
    for (k0 = 0; k0 < K; k0 += c->rows) {
        p = 0.0f;
        for (k = k0; k < K && k < k0 + c->rows; k++) p = p + A[(size_t)i * K + k] * B[(size_t)k * N + j];
        S = k0 == 0 ? p : S + p;
    }
    return S;
}

START_TEST(fp32_order_and_tolerance)
{
    static const int shapes[][3] = {{1, 1, 1}, {37, 19, 300}, {64, 96, 33}, {3, 129, 17}};
    static const int arrays[][2] = {{16, 16}, {32, 32}, {7, 3}, {128, 128}};
    size_t s, a;
    int df;
    for (s = 0; s < sizeof shapes / sizeof shapes[0]; s++)
        for (a = 0; a < sizeof arrays / sizeof arrays[0]; a++)
            for (df = 0; df < 3; df++) {
                int M = shapes[s][0], N = shapes[s][1], K = shapes[s][2], i, j, k;
                et_sys_config c = cfg_of(arrays[a][0], arrays[a][1], (et_sys_dataflow)df, ET_SYS_FP32);
                float *A = xmalloc((size_t)M * K * 4), *B = xmalloc((size_t)K * N * 4);
                float *C = xmalloc((size_t)M * N * 4), *bias = xmalloc((size_t)N * 4);
                et_sys_operand oa = op(A, K, 0, ET_SYS_OP_F32), ob = op(B, N, 0, ET_SYS_OP_F32);
                et_sys_result R = {0, 0, 0, 0, 0, 1.0f, 0};
                fill_f(A, (size_t)M * K, 30 + s);
                fill_f(B, (size_t)K * N, 40 + s);
                fill_f(bias, (size_t)N, 50 + s);
                R.f32 = C; R.ld = N; R.bias = bias;
                run_gemm(&c, M, N, K, &oa, &ob, &R, NULL, NULL);
                for (i = 0; i < M; i++)
                    for (j = 0; j < N; j++) {
                        double ref = 0.0, mag = 0.0;
                        float want = sys_order(&c, A, B, N, K, i, j) + bias[j];
                        for (k = 0; k < K; k++) {
                            double p = (double)A[(size_t)i * K + k] * B[(size_t)k * N + j];
                            ref += p;
                            mag += fabs(p);
                        }
                        ck_assert_msg(memcmp(&want, &C[(size_t)i * N + j], 4) == 0, "%s: order differs at (%d,%d)",
                                      et_sys_dataflow_name(c.dataflow), i, j);
                        ck_assert(fabs(C[(size_t)i * N + j] - (ref + bias[j])) <= 2e-6 * (mag + fabs(bias[j])) + 1e-30);
                    }
                free(A); free(B); free(C); free(bias);
            }
}
END_TEST

/* p + a*w is two roundings, never a fused multiply-add: with these values the fused
 * result is 2^-24 and the separate one 0 */
START_TEST(fp32_never_fused)
{
    float A[2] = {-1.0f - 0x1p-11f, 1.0f + 0x1p-12f}, B[2] = {1.0f, 1.0f + 0x1p-12f}, C = 1.0f;
    volatile float prod = A[1] * B[1];
    float sep = (0.0f + A[0] * B[0]) + prod, out[1];
    uint64_t cyc;
    char scr[4096];
    int df;
    ck_assert(sep != fmaf(A[1], B[1], A[0] * B[0])); /* the case tells them apart */
    for (df = 0; df < 3; df++) {
        et_sys_config c = cfg_of(2, 2, (et_sys_dataflow)df, ET_SYS_FP32);
        et_sys_operand oa = op(A, 2, 0, ET_SYS_OP_F32), ob = op(B, 1, 0, ET_SYS_OP_F32);
        et_sys_result R = {0, 0, 0, 0, 0, 1.0f, 0};
        R.f32 = &C;
        R.ld = 1;
        run_gemm(&c, 1, 1, 2, &oa, &ob, &R, NULL, NULL);
        ck_assert_msg(memcmp(&C, &sep, 4) == 0, "%s: %a, expected %a", et_sys_dataflow_name(c.dataflow), C, sep);
        /* the register-level model: x and y laid out for the fold (WS: x = B tile, y = A) */
        ck_assert_int_eq(et_sys_cycle_fold(&c, df == 0 ? 1 : 2, 1, df == 0 ? 2 : 1, df == 1 ? (void *)B : (void *)A,
                                           df == 1 ? (void *)A : (void *)B, out, scr, sizeof scr, &cyc, NULL), ET_OK);
        ck_assert(memcmp(out, &sep, 4) == 0);
    }
}
END_TEST

/* accumulate, transposed operands, int8 dequantized output and quantize-on-load */
START_TEST(layouts_accumulate_dequant)
{
    int M = 23, N = 41, K = 37, i, j, df;
    float *A = xmalloc((size_t)M * K * 4), *Bt = xmalloc((size_t)N * K * 4), *B = xmalloc((size_t)K * N * 4);
    float *C1 = xmalloc((size_t)M * N * 4), *C2 = xmalloc((size_t)M * N * 4), *cs = xmalloc((size_t)N * 4);
    int8_t *qa = xmalloc((size_t)M * K), *qb = xmalloc((size_t)K * N);
    fill_f(A, (size_t)M * K, 61);
    fill_f(Bt, (size_t)N * K, 62);
    for (i = 0; i < K; i++)
        for (j = 0; j < N; j++) B[(size_t)i * N + j] = Bt[(size_t)j * K + i];
    for (df = 0; df < 3; df++) {
        et_sys_config c = cfg_of(8, 8, (et_sys_dataflow)df, ET_SYS_FP32);
        et_sys_operand oa = op(A, K, 0, ET_SYS_OP_F32), ob = op(B, N, 0, ET_SYS_OP_F32), obt = op(Bt, K, 1, ET_SYS_OP_F32);
        et_sys_result R = {0, 0, 0, 0, 0, 1.0f, 0};
        float sa;
        R.f32 = C1; R.ld = N;
        run_gemm(&c, M, N, K, &oa, &ob, &R, NULL, NULL);
        R.f32 = C2;
        run_gemm(&c, M, N, K, &oa, &obt, &R, NULL, NULL); /* transposed B: same bits */
        ck_assert(memcmp(C1, C2, (size_t)M * N * 4) == 0);
        R.accumulate = 1;
        run_gemm(&c, M, N, K, &oa, &obt, &R, NULL, NULL); /* C2 = C + C */
        for (i = 0; i < M * N; i++) ck_assert(C2[i] == C1[i] + C1[i]);
        /* int8: quantize on load == quantize first, then run S8; dequantized output */
        c.dtype = ET_SYS_INT8;
        sa = et_sys_q8_scale(A, (size_t)M * K);
        et_sys_q8_quantize(A, (size_t)M * K, sa, qa);
        et_sys_q8_scale_rows(Bt, N, K, K, cs);
        for (j = 0; j < N; j++)
            for (i = 0; i < K; i++) qb[(size_t)i * N + j] = et_sys_q8(Bt[(size_t)j * K + i], cs[j]);
        oa.type = ET_SYS_OP_F32_Q8; oa.scale = &sa; oa.scale_axis = -1;
        obt.type = ET_SYS_OP_F32_Q8; obt.scale = cs; obt.scale_axis = 1;
        R.accumulate = 0; R.f32 = C1; R.scale = sa; R.col_scale = cs;
        run_gemm(&c, M, N, K, &oa, &obt, &R, NULL, NULL);
        {
            et_sys_operand q1 = op(qa, K, 0, ET_SYS_OP_S8), q2 = op(qb, N, 0, ET_SYS_OP_S8);
            R.f32 = C2;
            run_gemm(&c, M, N, K, &q1, &q2, &R, NULL, NULL);
        }
        ck_assert(memcmp(C1, C2, (size_t)M * N * 4) == 0);
        for (i = 0; i < M; i++)
            for (j = 0; j < N; j++) {
                double ref = 0.0;
                int k;
                for (k = 0; k < K; k++) ref += (double)A[(size_t)i * K + k] * B[(size_t)k * N + j];
                ck_assert_msg(fabs(C1[(size_t)i * N + j] - ref) < 0.25 + 0.02 * fabs(ref), "%g vs %g", C1[(size_t)i * N + j], ref);
            }
    }
    free(A); free(B); free(Bt); free(C1); free(C2); free(cs); free(qa); free(qb);
}
END_TEST

static void scrambled_for(void *pool, int n, et_task_fn fn, void *arg)
{
    int i;
    (void)pool;
    for (i = n - 1; i >= 0; i--) fn(arg, i, (i * 5) % 3);
}

START_TEST(threads_do_not_change_bits)
{
    static const et_threads scrambled = {0, 3, scrambled_for};
    int M = 300, N = 70, K = 90, df;
    float *A = xmalloc((size_t)M * K * 4), *B = xmalloc((size_t)K * N * 4);
    float *C1 = xmalloc((size_t)M * N * 4), *C2 = xmalloc((size_t)M * N * 4);
    fill_f(A, (size_t)M * K, 71);
    fill_f(B, (size_t)K * N, 72);
    for (df = 0; df < 3; df++) {
        et_sys_config c = cfg_of(16, 16, (et_sys_dataflow)df, ET_SYS_FP32);
        et_sys_operand oa = op(A, K, 0, ET_SYS_OP_F32), ob = op(B, N, 0, ET_SYS_OP_F32);
        et_sys_result R = {0, 0, 0, 0, 0, 1.0f, 0};
        R.f32 = C1; R.ld = N;
        run_gemm(&c, M, N, K, &oa, &ob, &R, NULL, NULL);
        R.f32 = C2;
        run_gemm(&c, M, N, K, &oa, &ob, &R, &scrambled, NULL);
        ck_assert(memcmp(C1, C2, (size_t)M * N * 4) == 0);
    }
    free(A); free(B); free(C1); free(C2);
}
END_TEST

/* --- the memory model, double buffering, words and energy */

START_TEST(memory_and_energy_model)
{
    et_sys_config c = cfg_of(32, 32, ET_SYS_WS, ET_SYS_FP32);
    et_sys_stats s;
    double e[4];
    int df, k;
    for (df = 0; df < 3; df++) {
        int M = 3025, N = 96, K = 363;
        c.dataflow = (et_sys_dataflow)df;
        /* ideal memory: no stalls; SRAMs big enough: every operand crosses DRAM once */
        c.dram_bytes_per_cycle = 0.0;
        for (k = 0; k < 3; k++) c.sram_bytes[k] = (size_t)64 << 20;
        memset(&s, 0, sizeof s);
        ck_assert_int_eq(et_sys_gemm_timing(&c, M, N, K, &s), ET_OK);
        ck_assert_uint_eq(s.stall_cycles, 0);
        ck_assert_uint_eq(s.db_stall_cycles, 0);
        ck_assert_uint_eq(s.compute_cycles, et_sys_compute_cycles(&c, M, N, K));
        ck_assert_uint_eq(s.db_compute_cycles, et_sys_compute_cycles_db(&c, M, N, K));
        ck_assert_uint_le(s.db_compute_cycles, s.compute_cycles);
        ck_assert_uint_eq(s.macs, (uint64_t)M * N * K);
        ck_assert_uint_eq(s.dram_read[0], (uint64_t)M * K * 4);
        ck_assert_uint_eq(s.dram_read[1], (uint64_t)K * N * 4);
        ck_assert_uint_eq(s.dram_read[2], 0);
        ck_assert_uint_eq(s.dram_write[2], (uint64_t)M * N * 4);
        ck_assert_uint_eq(s.stream_cycles, s.folds * (uint64_t)(df == 0 ? K : df == 1 ? M : N));
        /* int8 words are one byte; accumulators stay four */
        c.dtype = ET_SYS_INT8;
        memset(&s, 0, sizeof s);
        et_sys_gemm_timing(&c, M, N, K, &s);
        ck_assert_uint_eq(s.dram_read[0], (uint64_t)M * K);
        ck_assert_uint_eq(s.dram_write[2], (uint64_t)M * N * 4);
        c.dtype = ET_SYS_FP32;
        /* finite bandwidth: stalls appear, at least the first fetch and the last write */
        c.dram_bytes_per_cycle = 16.0;
        memset(&s, 0, sizeof s);
        et_sys_gemm_timing(&c, M, N, K, &s);
        ck_assert_uint_gt(s.stall_cycles, 0);
        ck_assert_uint_ge(et_sys_total_cycles(&s), (s.dram_read[0] + s.dram_read[1] + s.dram_write[2]) / 16);
        /* small SRAMs: operands are fetched again, traffic grows */
        for (k = 0; k < 3; k++) c.sram_bytes[k] = 8192;
        {
            et_sys_stats t;
            memset(&t, 0, sizeof t);
            et_sys_gemm_timing(&c, M, N, K, &t);
            ck_assert_uint_gt(t.dram_read[0] + t.dram_read[1] + t.dram_read[2] + t.dram_write[2],
                              s.dram_read[0] + s.dram_read[1] + s.dram_write[2]);
            ck_assert_uint_ge(t.stall_cycles, s.stall_cycles);
        }
    }
    et_sys_energy_pj(&c, &s, e);
    ck_assert(fabs(e[0] - (double)s.macs * 4.6) < 1e-6 * e[0]);
    ck_assert(fabs(e[3] - e[0] - e[1] - e[2]) < 1e-9 * e[3]);
    ck_assert(e[2] == 160.0 * (double)(s.dram_read[0] + s.dram_read[1] + s.dram_read[2] + s.dram_write[2]));
    /* the stall timeline by hand: WS 16x16 fp32, M=N=16, K=32 (two K folds of P=62
     * cycles), 4 bytes/cycle. Fold 0 waits for its 2048 bytes (512 cycles); fold 1's
     * 2048 bytes are fetched from 512 to 1024 while fold 0 runs 512..574; fold 1 runs
     * 1024..1086; the 1024-byte result is written 1086..1342: stall 1342 - 124 = 1218.
     * Double-buffered (fold 0 lasts R + max(T,R) = 32, fold 1 max(T,R) + 30 = 46):
     * 512..544, then 1024..1070, write to 1326: stall 1326 - 78 = 1248 */
    c = cfg_of(16, 16, ET_SYS_WS, ET_SYS_FP32);
    c.dram_bytes_per_cycle = 4.0;
    memset(&s, 0, sizeof s);
    et_sys_gemm_timing(&c, 16, 16, 32, &s);
    ck_assert_uint_eq(s.compute_cycles, 124);
    ck_assert_uint_eq(s.stall_cycles, 1218);
    ck_assert_uint_eq(s.db_compute_cycles, 78);
    ck_assert_uint_eq(s.db_stall_cycles, 1248);
    ck_assert_uint_eq(s.dram_read[0] + s.dram_read[1], 4096);
    ck_assert_uint_eq(s.dram_write[2], 1024);
    ck_assert_uint_eq(s.sram_read[2], 1024 + 1024); /* accumulate in fold 1, read out */
    /* double-buffered schedule: P + (folds - 1) max(T, R) */
    c = cfg_of(16, 16, ET_SYS_WS, ET_SYS_FP32);
    ck_assert_uint_eq(et_sys_compute_cycles_db(&c, 64, 64, 64), (2 * 16 + 16 + 64 - 2) + 15 * 64);
    ck_assert_uint_eq(et_sys_compute_cycles_db(&c, 4, 16, 64), (2 * 16 + 16 + 4 - 2) + 3 * 16);
    c.dataflow = ET_SYS_OS;
    ck_assert_uint_eq(et_sys_compute_cycles_db(&c, 32, 32, 100), (16 + 16 + 100 - 2) + 3 * 100);
}
END_TEST

START_TEST(quantizer)
{
    float x[5] = {0.0f, 1.0f, -2.54f, 0.5f, 127.0f};
    int8_t q[5];
    ck_assert(et_sys_q8_scale(x, 5) == 127.0f / 127.0f);
    ck_assert_int_eq(et_sys_q8(0.5f, 1.0f), 1);   /* half away from zero */
    ck_assert_int_eq(et_sys_q8(-0.5f, 1.0f), -1);
    ck_assert_int_eq(et_sys_q8(0.49999997f, 1.0f), 0);
    ck_assert_int_eq(et_sys_q8(1000.0f, 1.0f), 127);
    ck_assert_int_eq(et_sys_q8(-1000.0f, 1.0f), -127);
    ck_assert_int_eq(et_sys_q8(NAN, 1.0f), 0);
    et_sys_q8_quantize(x, 5, 1.0f, q);
    ck_assert_int_eq(q[2], -3);
    x[0] = INFINITY;
    ck_assert(et_sys_q8_scale(x, 5) == 1.0f);
    ck_assert(et_sys_q8_scale(x, 0) == 1.0f);
}
END_TEST

START_TEST(bad_inputs)
{
    et_sys_config c = cfg_of(16, 16, ET_SYS_WS, ET_SYS_FP32);
    float A[16], B[16], C[16];
    char scr[64];
    et_sys_operand oa = op(A, 4, 0, ET_SYS_OP_F32), ob = op(B, 4, 0, ET_SYS_OP_F32);
    et_sys_result R = {0, 0, 0, 0, 0, 1.0f, 0};
    et_sys_stats st;
    uint64_t cyc;
    memset(&st, 0, sizeof st);
    R.f32 = C; R.ld = 4;
    ck_assert_int_eq(et_sys_gemm(&c, 4, 4, 4, &oa, &ob, &R, NULL, scr, sizeof scr, &st), ET_ERR_NOMEM);
    ck_assert_uint_eq(st.gemms, 1); /* the timing was counted before the scratch check */
    ck_assert_int_eq(et_sys_gemm(&c, 0, 4, 4, &oa, &ob, &R, NULL, scr, sizeof scr, NULL), ET_ERR_INVALID);
    oa.ld = 3;
    ck_assert_int_eq(et_sys_gemm(&c, 4, 4, 4, &oa, &ob, &R, NULL, scr, sizeof scr, NULL), ET_ERR_INVALID);
    oa.ld = 4;
    oa.type = ET_SYS_OP_S8; /* int8 operand in fp32 mode */
    ck_assert_int_eq(et_sys_gemm(&c, 4, 4, 4, &oa, &ob, &R, NULL, scr, sizeof scr, NULL), ET_ERR_INVALID);
    c.dtype = ET_SYS_INT8;
    oa.type = ET_SYS_OP_F32_Q8; /* no scale */
    ob.type = ET_SYS_OP_S8;
    ck_assert_int_eq(et_sys_gemm(&c, 4, 4, 4, &oa, &ob, &R, NULL, scr, sizeof scr, NULL), ET_ERR_INVALID);
    c.rows = 0;
    ck_assert_int_eq(et_sys_config_check(&c), ET_ERR_INVALID);
    ck_assert_uint_eq(et_sys_compute_cycles(&c, 4, 4, 4), 0);
    c.rows = 16;
    c.sram_bytes[1] = 0;
    ck_assert_int_eq(et_sys_config_check(&c), ET_ERR_INVALID);
    c.sram_bytes[1] = 1024;
    c.dram_bytes_per_cycle = -1.0;
    ck_assert_int_eq(et_sys_config_check(&c), ET_ERR_INVALID);
    c.dram_bytes_per_cycle = 1.0;
    c.dataflow = (et_sys_dataflow)7;
    ck_assert_int_eq(et_sys_config_check(&c), ET_ERR_INVALID);
    c.dataflow = ET_SYS_WS;
    ck_assert_int_eq(et_sys_cycle_fold(&c, 17, 1, 1, A, B, C, scr, sizeof scr, &cyc, NULL), ET_ERR_INVALID);
    ck_assert_int_eq(et_sys_cycle_fold(&c, 1, 1, 1, A, B, C, scr, sizeof scr, &cyc, NULL), ET_ERR_NOMEM);
    /* timing only (NULL data) needs no scratch */
    oa.data = NULL;
    oa.scale = A;
    ck_assert_int_eq(et_sys_gemm(&c, 4, 4, 4, &oa, &ob, &R, NULL, NULL, 0, &st), ET_OK);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("systolic");
    TCase *tc = tcase_create("array");
    tcase_set_timeout(tc, 600);
    tcase_add_test(tc, scalesim_golden_reports);
    tcase_add_test(tc, closed_form_matches_scalesim_construction);
    tcase_add_test(tc, cycle_model_equals_wavefront_model);
    tcase_add_test(tc, int8_bit_exact);
    tcase_add_test(tc, int8_accumulator_wraps);
    tcase_add_test(tc, fp32_order_and_tolerance);
    tcase_add_test(tc, fp32_never_fused);
    tcase_add_test(tc, layouts_accumulate_dequant);
    tcase_add_test(tc, threads_do_not_change_bits);
    tcase_add_test(tc, memory_and_energy_model);
    tcase_add_test(tc, quantizer);
    tcase_add_test(tc, bad_inputs);
    suite_add_tcase(s, tc);
    return s;
}

ET_CHECK_MAIN(suite)

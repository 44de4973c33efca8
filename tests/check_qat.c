/* check_qat.c - quantization-aware training: the fake quantizers against quant.c's
 * quantize -> dequantize, the straight-through estimator (masks, and a proxied matmul's
 * gradients against a double reference and against central finite differences of the
 * STE surrogate), the moving-average ranges, the arena (just fits / one byte short) and
 * bad calls; a short QAT run lowering the loss, whose export's int8 forward gives the
 * fake-quantized model's loss and holds exactly the QAT master weights; and
 * `edgetrain train --qat` end to end (model.etq, eval of it, exact resume, bad input).
 * The CLI comes from $ET_CLI. */
#include <math.h>
#include <string.h>
#include <sys/stat.h>
#include "et_check.h"
#include "et_cpu.h"
#include "et_qat.h"
#include "et_qgpt.h"
#include "et_rng.h"

static float *randn(size_t n, uint64_t seed, float sd)
{
    float *w = malloc(sizeof(float) * n + 4);
    et_rng r;
    size_t i;
    et_rng_seed(&r, seed);
    for (i = 0; i < n; i++) w[i] = sd * et_rng_normal(&r);
    return w;
}

/* quantize -> dequantize with quant.c's functions alone (the reference) */
static void ref_fake_act(float *y, const float *x, size_t n, const et_qparams *p)
{
    int8_t *q = malloc(n + 1);
    et_quant_f32_to_s8(q, x, n, p);
    et_quant_s8_to_f32(y, q, n, p);
    free(q);
}

static void ref_fake_weights(float *wq, const float *w, int rows, int cols)
{
    int8_t *q = malloc((size_t)rows * cols + 1);
    float *s = malloc(sizeof(float) * (size_t)rows + 4);
    int r, c;
    ck_assert_int_eq(et_quant_weights_s8(w, rows, cols, q, s), ET_OK);
    for (r = 0; r < rows; r++)
        for (c = 0; c < cols; c++) wq[(size_t)r * cols + c] = s[r] * (float)q[(size_t)r * cols + c];
    free(q);
    free(s);
}

/* inside the representable range: round(x / s) + zp in [-128, 127] (independent form) */
static int ref_inside(float x, const et_qparams *p)
{
    double v = (double)x / (double)p->scale + p->zero_point;
    double r = v >= 0 ? floor(v + 0.5) : -floor(-v + 0.5);
    return r >= -128.0 && r <= 127.0;
}

static void tiny_cfg(et_gpt_config *c)
{
    memset(c, 0, sizeof *c);
    c->vocab = 23; c->context = 8; c->layers = 2; c->heads = 2; c->channels = 16;
    ck_assert_int_eq(et_gpt_config_check(c), ET_OK);
}

/* a training model on the cpu backend with the QAT proxy in front */
typedef struct {
    et_gpt m;
    et_backend be;
    et_cpu_ctx cpu;
    void *mem, *qmem;
    et_arena arena, qarena;
    et_qat q;
} rig;

static void rig_open(rig *r, const et_gpt_config *cfg, int B, int T, et_qmode mode, float decay)
{
    et_gpt_plan plan;
    size_t qb;
    memset(r, 0, sizeof *r);
    ck_assert_int_eq(et_cpu_backend_init(&r->be, &r->cpu, NULL), ET_OK);
    ck_assert_int_eq(et_gpt_plan_compute(cfg, B, T, ET_GPT_TRAIN, &r->be, &plan), ET_OK);
    r->mem = et_test_aligned(plan.total);
    et_arena_init(&r->arena, r->mem, plan.total);
    ck_assert_int_eq(et_gpt_create(&r->m, cfg, B, T, ET_GPT_TRAIN, &r->be, &r->arena), ET_OK);
    ck_assert_int_eq(et_gpt_init_weights(&r->m, 7), ET_OK);
    qb = et_qat_bytes(cfg, mode, B, T);
    ck_assert_uint_gt(qb, 0);
    r->qmem = et_test_aligned(qb);
    et_arena_init(&r->qarena, r->qmem, qb);
    ck_assert_int_eq(et_qat_init(&r->q, cfg, mode, decay, B, T, &r->qarena), ET_OK);
    ck_assert_int_eq(et_qat_attach(&r->q, &r->m, &r->be), ET_OK);
}

static void rig_close(rig *r)
{
    free(r->mem);
    free(r->qmem);
}

// --- the fake quantizers

START_TEST(fake_act_is_quant_dequant)
{
    static const float lo[] = {-1.0f, -3.7f, 0.2f, -0.001f, -5.0f};
    static const float hi[] = {2.0f, 0.5f, 4.1f, 0.001f, -1.0f};
    size_t n = 5003, i, k;
    float *x = randn(n, 3, 2.0f), *y = malloc(sizeof(float) * n), *r = malloc(sizeof(float) * n);
    /* exact half-steps too, where rounding direction matters */
    for (k = 0; k < 5; k++) {
        et_qparams p;
        ck_assert_int_eq(et_quant_act_params(lo[k], hi[k], &p), ET_OK);
        for (i = 0; i < 64; i++) x[i] = p.scale * ((float)i - 32.0f + 0.5f - (float)p.zero_point);
        et_qat_fake_act_f32(y, x, n, &p);
        ref_fake_act(r, x, n, &p);
        ck_assert_int_eq(memcmp(y, r, sizeof(float) * n), 0);
        /* in place gives the same bits */
        memcpy(r, x, sizeof(float) * n);
        et_qat_fake_act_f32(r, r, n, &p);
        ck_assert_int_eq(memcmp(y, r, sizeof(float) * n), 0);
        /* on the grid; within half a step inside the range; clamped outside */
        for (i = 0; i < n; i++) {
            double g = (double)y[i] / p.scale + p.zero_point, lo_r = p.scale * (-128.0 - p.zero_point),
                   hi_r = p.scale * (127.0 - p.zero_point);
            ck_assert(fabs(g - floor(g + 0.5)) < 1e-3);
            if (x[i] >= lo_r && x[i] <= hi_r) ck_assert(fabs((double)y[i] - x[i]) <= 0.5001 * p.scale);
            else ck_assert(fabs((double)y[i] - (x[i] < lo_r ? lo_r : hi_r)) <= 1e-5 * (1 + fabs(lo_r) + fabs(hi_r)));
        }
        /* fake quantization is idempotent */
        et_qat_fake_act_f32(r, y, n, &p);
        ck_assert_int_eq(memcmp(y, r, sizeof(float) * n), 0);
    }
    free(x); free(y); free(r);
}
END_TEST

START_TEST(fake_weights_are_quant_dequant)
{
    int rows = 37, cols = 53, c;
    float *w = randn((size_t)rows * cols, 4, 0.3f), *a = malloc(sizeof(float) * rows * cols),
          *b = malloc(sizeof(float) * rows * cols);
    int8_t row[64];
    for (c = 0; c < cols; c++) w[5 * cols + c] = 0.0f;  /* an all-zero row: scale 1, zeros */
    w[7 * cols + 3] = 100.0f;                           /* one large weight sets its row's scale */
    ck_assert_int_eq(et_qat_fake_weights_f32(a, w, rows, cols, row), ET_OK);
    ref_fake_weights(b, w, rows, cols);
    ck_assert_int_eq(memcmp(a, b, sizeof(float) * rows * cols), 0);
    for (c = 0; c < cols; c++) ck_assert(a[5 * cols + c] == 0.0f);
    ck_assert(a[7 * cols + 3] == 100.0f); /* the row's max is exact: 127 * (max / 127) */
    w[2] = NAN;
    ck_assert_int_eq(et_qat_fake_weights_f32(a, w, rows, cols, row), ET_ERR_RANGE);
    ck_assert_int_eq(et_qat_fake_weights_f32(a, w, -1, cols, row), ET_ERR_INVALID);
    free(w); free(a); free(b);
}
END_TEST

START_TEST(ste_mask_edges)
{
    et_qparams p;
    /* scale 0.1, zero point 3: v = 10 x + 3; inside iff v in (-128.5, 127.5) */
    static const float v[] = {-200.0f, -128.7f, -128.3f, 0.0f, 127.3f, 127.7f, 300.0f};
    static const uint8_t want[] = {0, 0, 1, 1, 1, 0, 0};
    float x[7];
    uint8_t m[7];
    int i;
    p.scale = 0.1f;
    p.zero_point = 3;
    for (i = 0; i < 7; i++) x[i] = (v[i] - 3.0f) * 0.1f;
    et_qat_ste_mask(m, x, 7, &p);
    for (i = 0; i < 7; i++) {
        ck_assert_msg(m[i] == want[i], "v %g: mask %d", (double)v[i], m[i]);
        ck_assert_int_eq(m[i], ref_inside(x[i], &p));
    }
}
END_TEST

// --- the proxied matmul: forward exact, gradients by STE

/* h = sum g . clip_y(clip_x(x) W^T + b), clipping at half a step beyond the range:
 * the function whose gradient the straight-through estimator is */
static double surrogate(const double *x, const double *W, const float *b, const float *g, int N, int K,
                        int OC, double xa, double xb, double ya, double yb, int clip_x)
{
    double h = 0.0;
    int n, o, k;
    for (n = 0; n < N; n++)
        for (o = 0; o < OC; o++) {
            double acc = b[o];
            for (k = 0; k < K; k++) {
                double v = x[(size_t)n * K + k];
                if (clip_x) v = v < xa ? xa : v > xb ? xb : v;
                acc += v * W[(size_t)o * K + k];
            }
            acc = acc < ya ? ya : acc > yb ? yb : acc;
            h += g[(size_t)n * OC + o] * acc;
        }
    return h;
}

START_TEST(ste_matmul_gradients)
{
    et_gpt_config cfg;
    rig r;
    int B = 2, T = 4, N = 8, C = 16, OC = 48, S = ET_QSITE_PER_LAYER, xs = S + ET_QSITE_LN1,
        ys = S + ET_QSITE_QKV, i, n, o, k, clipped_x = 0, clipped_y = 0;
    float *w, *b, *x = randn((size_t)N * C, 11, 1.0f), *g = randn((size_t)N * OC, 12, 1.0f);
    float *out = malloc(sizeof(float) * N * OC), *ref = malloc(sizeof(float) * N * OC);
    float *xq = malloc(sizeof(float) * N * C), *wq = malloc(sizeof(float) * OC * C);
    float *dx = calloc((size_t)N * C, sizeof(float)), *dw = calloc((size_t)OC * C, sizeof(float)),
          *db = calloc((size_t)OC, sizeof(float));
    double *X = malloc(sizeof(double) * N * C), *W = malloc(sizeof(double) * OC * C), xa, xb, ya, yb;
    uint8_t *mx = malloc((size_t)N * C), *my = malloc((size_t)N * OC);
    et_qparams px, py;
    const et_backend *be, *in;
    tiny_cfg(&cfg);
    rig_open(&r, &cfg, B, T, ET_QMODE_W8A8, 0.9f);
    be = &r.be;
    in = &r.q.inner;
    /* layer 1's qkv, with weights large enough that some outputs clip */
    w = r.m.params.qkvw + (size_t)OC * C;
    b = r.m.params.qkvb + OC;
    { float *t = randn((size_t)OC * C, 13, 0.3f); memcpy(w, t, sizeof(float) * OC * C); free(t); }
    { float *t = randn((size_t)OC, 14, 0.1f); memcpy(b, t, sizeof(float) * OC); free(t); }
    ck_assert_int_eq(et_qat_set_range(&r.q, xs, -1.5f, 1.2f), ET_OK);
    ck_assert_int_eq(et_qat_set_range(&r.q, ys, -2.0f, 1.5f), ET_OK);
    ck_assert_int_eq(et_quant_act_params(-1.5f, 1.2f, &px), ET_OK);
    ck_assert_int_eq(et_quant_act_params(-2.0f, 1.5f, &py), ET_OK);

    /* forward: the fake-quantized output of fake-quantized operands, bit for bit */
    ck_assert_int_eq(be->matmul_fwd(be->ctx, out, x, w, b, N, C, OC), ET_OK);
    ref_fake_act(xq, x, (size_t)N * C, &px);
    ref_fake_weights(wq, w, OC, C);
    ck_assert_int_eq(in->matmul_fwd(in->ctx, ref, xq, wq, b, N, C, OC), ET_OK);
    for (i = 0; i < N * OC; i++) my[i] = (uint8_t)ref_inside(ref[i], &py), clipped_y += !my[i];
    for (i = 0; i < N * C; i++) mx[i] = (uint8_t)ref_inside(x[i], &px), clipped_x += !mx[i];
    ck_assert_msg(clipped_x > 0 && clipped_x < N * C, "inputs clipped: %d", clipped_x);
    ck_assert_msg(clipped_y > 0 && clipped_y < N * OC, "outputs clipped: %d", clipped_y);
    ref_fake_act(ref, ref, (size_t)N * OC, &py);
    ck_assert_int_eq(memcmp(out, ref, sizeof(float) * N * OC), 0);

    /* backward against the STE formulas in double */
    ck_assert_int_eq(be->matmul_bwd(be->ctx, dx, dw, db, g, x, w, N, C, OC), ET_OK);
    for (n = 0; n < N; n++)
        for (k = 0; k < C; k++) {
            double s = 0.0;
            for (o = 0; o < OC; o++) s += my[n * OC + o] ? (double)g[n * OC + o] * wq[o * C + k] : 0.0;
            s = mx[n * C + k] ? s : 0.0;
            ET_CK_CLOSE(dx[n * C + k], s, 1e-5, 1e-6);
            if (!mx[n * C + k]) ck_assert(dx[n * C + k] == 0.0f); /* clipped: no gradient at all */
        }
    for (o = 0; o < OC; o++) {
        double sb = 0.0;
        for (k = 0; k < C; k++) {
            double s = 0.0;
            for (n = 0; n < N; n++) s += my[n * OC + o] ? (double)g[n * OC + o] * xq[n * C + k] : 0.0;
            ET_CK_CLOSE(dw[o * C + k], s, 1e-5, 1e-6);
        }
        for (n = 0; n < N; n++) sb += my[n * OC + o] ? g[n * OC + o] : 0.0;
        ET_CK_CLOSE(db[o], sb, 1e-5, 1e-6);
    }

    /* central differences of the surrogate: piecewise linear, so exact away from the
     * clip points; checked that no output sits within 1e-3 of one */
    xa = px.scale * (-128.5 - px.zero_point); xb = px.scale * (127.5 - px.zero_point);
    ya = py.scale * (-128.5 - py.zero_point); yb = py.scale * (127.5 - py.zero_point);
    for (i = 0; i < OC * C; i++) W[i] = wq[i];
    for (i = 0; i < N * C; i++) X[i] = xq[i];
    for (n = 0; n < N; n++)
        for (o = 0; o < OC; o++) {
            double a = b[o], c2 = b[o];
            for (k = 0; k < C; k++) {
                double v = x[n * C + k];
                v = v < xa ? xa : v > xb ? xb : v;
                a += (double)xq[n * C + k] * wq[o * C + k];
                c2 += v * wq[o * C + k];
            }
            ck_assert(fabs(a - ya) > 1e-3 && fabs(a - yb) > 1e-3 && fabs(c2 - ya) > 1e-3 && fabs(c2 - yb) > 1e-3);
            ck_assert_int_eq(a > ya && a < yb, my[n * OC + o]); /* same mask at x and at xq */
            ck_assert_int_eq(c2 > ya && c2 < yb, my[n * OC + o]);
        }
    for (i = 0; i < OC * C; i++) {
        double e = 1e-4, hp, hm, save = W[i];
        W[i] = save + e; hp = surrogate(X, W, b, g, N, C, OC, xa, xb, ya, yb, 0);
        W[i] = save - e; hm = surrogate(X, W, b, g, N, C, OC, xa, xb, ya, yb, 0);
        W[i] = save;
        ET_CK_CLOSE(dw[i], (hp - hm) / (2 * e), 1e-3, 1e-4);
    }
    for (i = 0; i < N * C; i++) X[i] = x[i];
    for (i = 0; i < N * C; i++) {
        double e = 1e-4, hp, hm, save = X[i];
        if (fabs(save - xa) < 2e-3 || fabs(save - xb) < 2e-3) continue;
        X[i] = save + e; hp = surrogate(X, W, b, g, N, C, OC, xa, xb, ya, yb, 1);
        X[i] = save - e; hm = surrogate(X, W, b, g, N, C, OC, xa, xb, ya, yb, 1);
        X[i] = save;
        ET_CK_CLOSE(dx[i], (hp - hm) / (2 * e), 1e-3, 1e-4);
    }
    /* without dinp (a first layer's input) the weight gradients are the same */
    {
        float *dw2 = calloc((size_t)OC * C, sizeof(float));
        /* the backward above moved the ranges (moving average): put them back */
        ck_assert_int_eq(et_qat_set_range(&r.q, xs, -1.5f, 1.2f), ET_OK);
        ck_assert_int_eq(et_qat_set_range(&r.q, ys, -2.0f, 1.5f), ET_OK);
        ck_assert_int_eq(be->matmul_fwd(be->ctx, out, x, w, b, N, C, OC), ET_OK);
        ck_assert_int_eq(be->matmul_bwd(be->ctx, NULL, dw2, NULL, g, x, w, N, C, OC), ET_OK);
        ck_assert_int_eq(memcmp(dw, dw2, sizeof(float) * OC * C), 0);
        free(dw2);
    }
    rig_close(&r);
    free(x); free(g); free(out); free(ref); free(xq); free(wq); free(dx); free(dw); free(db);
    free(X); free(W); free(mx); free(my);
}
END_TEST

START_TEST(ranges_move_on_backward_only)
{
    et_gpt_config cfg;
    rig r;
    int N = 8, C = 16, OC = 48, xs = ET_QSITE_LN1, ys = ET_QSITE_QKV, i;
    float x[128], out[8 * 48], g[8 * 48], dx[128];
    float *dw = calloc(48 * 16, sizeof(float));
    const et_backend *be;
    et_qparams p;
    tiny_cfg(&cfg);
    rig_open(&r, &cfg, 2, 4, ET_QMODE_W8A8, 0.75f);
    be = &r.be;
    for (i = 0; i < N * OC; i++) g[i] = 0.01f;
    /* batch 1: before any range is recorded, the batch's own [-1, 2] */
    for (i = 0; i < N * C; i++) x[i] = -1.0f + 3.0f * (float)i / (float)(N * C - 1);
    ck_assert_int_eq(et_qat_ranges(&r.q, r.q.rlo, r.q.rhi), ET_ERR_STATE);
    ck_assert_int_eq(be->matmul_fwd(be->ctx, out, x, r.m.params.qkvw, r.m.params.qkvb, N, C, OC), ET_OK);
    et_quant_act_params(-1.0f, 2.0f, &p);
    ck_assert(r.q.site[xs].q.scale == p.scale && r.q.site[xs].q.zero_point == p.zero_point);
    ck_assert_int_eq(r.q.site[xs].have, 0);
    ck_assert_int_eq(be->matmul_bwd(be->ctx, dx, dw, NULL, g, x, r.m.params.qkvw, N, C, OC), ET_OK);
    ck_assert(r.q.site[xs].have && r.q.site[xs].lo == -1.0f && r.q.site[xs].hi == 2.0f);
    ck_assert(r.q.site[ys].have && r.q.site[ys].lo < r.q.site[ys].hi);
    /* batch 2, forward only (an evaluation): quantized with [-1, 2], range unchanged */
    for (i = 0; i < N * C; i++) x[i] = -3.0f + 4.0f * (float)i / (float)(N * C - 1);
    ck_assert_int_eq(be->matmul_fwd(be->ctx, out, x, r.m.params.qkvw, r.m.params.qkvb, N, C, OC), ET_OK);
    ck_assert(r.q.site[xs].q.scale == p.scale && r.q.site[xs].q.zero_point == p.zero_point);
    ck_assert(r.q.site[xs].lo == -1.0f && r.q.site[xs].hi == 2.0f);
    /* batch 3 [-2, 4] with its backward: 0.75 [-1, 2] + 0.25 [-2, 4] */
    for (i = 0; i < N * C; i++) x[i] = -2.0f + 6.0f * (float)i / (float)(N * C - 1);
    ck_assert_int_eq(be->matmul_fwd(be->ctx, out, x, r.m.params.qkvw, r.m.params.qkvb, N, C, OC), ET_OK);
    ck_assert_int_eq(be->matmul_bwd(be->ctx, dx, dw, NULL, g, x, r.m.params.qkvw, N, C, OC), ET_OK);
    ET_CK_CLOSE(r.q.site[xs].lo, -1.25, 0, 1e-6);
    ET_CK_CLOSE(r.q.site[xs].hi, 2.5, 0, 1e-6);
    rig_close(&r);
    free(dw);
}
END_TEST

// --- arena and bad calls

START_TEST(arena_and_bad_calls)
{
    et_gpt_config cfg, other;
    rig r;
    et_qat q;
    et_arena a;
    size_t bytes, free_before;
    void *mem;
    float x[8 * 64], out[8 * 64], big[1];
    et_backend saved;
    tiny_cfg(&cfg);
    /* exactly the size fits and is used up; one byte short is refused, arena untouched */
    bytes = et_qat_bytes(&cfg, ET_QMODE_W8A8, 2, 4);
    ck_assert_uint_gt(bytes, et_qat_bytes(&cfg, ET_QMODE_W8A32, 2, 4));
    mem = et_test_aligned(bytes);
    et_arena_init(&a, mem, bytes);
    ck_assert_int_eq(et_qat_init(&q, &cfg, ET_QMODE_W8A8, 0.9f, 2, 4, &a), ET_OK);
    ck_assert_uint_eq(et_arena_free_bytes(&a), 0);
    et_arena_init(&a, mem, bytes - 1);
    free_before = et_arena_free_bytes(&a);
    ck_assert_uint_lt(free_before, bytes);
    ck_assert_int_eq(et_qat_init(&q, &cfg, ET_QMODE_W8A8, 0.9f, 2, 4, &a), ET_ERR_NOMEM);
    ck_assert_uint_eq(et_arena_free_bytes(&a), free_before);
    ck_assert_uint_eq(a.high_water, 0);
    et_arena_init(&a, mem, bytes);
    ck_assert_int_eq(et_qat_init(&q, &cfg, ET_QMODE_W8A8, 1.0f, 2, 4, &a), ET_ERR_INVALID);
    ck_assert_int_eq(et_qat_init(&q, &cfg, ET_QMODE_W8A8, -0.1f, 2, 4, &a), ET_ERR_INVALID);
    ck_assert_int_eq(et_qat_init(&q, &cfg, (et_qmode)7, 0.9f, 2, 4, &a), ET_ERR_INVALID);
    ck_assert_int_eq(et_qat_init(&q, &cfg, ET_QMODE_W8A8, 0.9f, 2, 9, &a), ET_ERR_INVALID); /* T > context */
    ck_assert_uint_eq(et_qat_bytes(&cfg, ET_QMODE_W8A8, 0, 4), 0);
    free(mem);

    rig_open(&r, &cfg, 2, 4, ET_QMODE_W8A8, 0.9f);
    /* attaching twice, or to a model of another shape or larger batch */
    ck_assert_int_eq(et_qat_attach(&r.q, &r.m, &r.be), ET_ERR_STATE);
    other = cfg;
    other.layers = 3;
    bytes = et_qat_bytes(&other, ET_QMODE_W8A8, 2, 4);
    mem = et_test_aligned(bytes);
    et_arena_init(&a, mem, bytes);
    ck_assert_int_eq(et_qat_init(&q, &other, ET_QMODE_W8A8, 0.9f, 2, 4, &a), ET_OK);
    saved = r.be;
    ck_assert_int_eq(et_qat_attach(&q, &r.m, &r.be), ET_ERR_INVALID);
    ck_assert(memcmp(&saved, &r.be, sizeof saved) == 0);
    free(mem);
    /* a weight the model does not have, more rows than planned, a non-finite input,
     * a backward with no forward, an export before any range */
    memset(x, 0, sizeof x);
    ck_assert_int_eq(r.be.matmul_fwd(r.be.ctx, out, x, big, NULL, 1, 1, 1), ET_ERR_INVALID);
    ck_assert_int_eq(r.be.matmul_fwd(r.be.ctx, out, x, r.m.params.qkvw, NULL, 9, 16, 48), ET_ERR_RANGE);
    ck_assert_int_eq(r.be.matmul_fwd(r.be.ctx, out, x, r.m.params.qkvw, NULL, 1, 16, 16), ET_ERR_INVALID);
    ck_assert_int_eq(r.be.matmul_bwd(r.be.ctx, x, out, NULL, x, x, r.m.params.fcw, 1, 16, 64), ET_ERR_STATE);
    x[3] = INFINITY;
    ck_assert_int_eq(r.be.matmul_fwd(r.be.ctx, out, x, r.m.params.qkvw, NULL, 1, 16, 48), ET_ERR_RANGE);
    ck_assert_int_eq(et_qat_set_range(&r.q, r.q.nsites, 0.0f, 1.0f), ET_ERR_RANGE);
    ck_assert_int_eq(et_qat_set_range(&r.q, 0, 1.0f, 0.0f), ET_ERR_RANGE);
    {
        size_t bb;
        void *blob;
        float *p = malloc(sizeof(float) * r.m.nparams);
        et_qgpt_tensors(&cfg, ET_QMODE_W8A8, NULL, &bb);
        blob = et_test_aligned(bb);
        et_gpt_get_params(&r.m, p);
        ck_assert_int_eq(et_qat_export(&r.q, p, blob, bb), ET_ERR_STATE);
        free(blob);
        free(p);
    }
    /* detach gives back the cpu table; a second detach is refused */
    ck_assert_int_eq(et_qat_detach(&r.q), ET_OK);
    ck_assert(r.be.matmul_fwd == r.q.inner.matmul_fwd && r.be.ctx == r.q.inner.ctx);
    ck_assert_int_eq(et_qat_detach(&r.q), ET_ERR_STATE);
    rig_close(&r);
}
END_TEST

// --- training and export

/* B windows of T+1 tokens of a learnable stream (a cycle of 11 with a twist) */
static void batch(int B, int T, et_rng *rng, int *in, int *tg)
{
    int b, t;
    for (b = 0; b < B; b++) {
        int off = (int)(et_rng_u64(rng) % 1000);
        for (t = 0; t <= T; t++) {
            int i = off + t, tok = (i % 11) + ((i / 11) % 2) * 11;
            if (t < T) in[b * T + t] = tok;
            if (t > 0) tg[b * T + t - 1] = tok;
        }
    }
}

/* the int8 model's loss on one batch */
static float int8_loss(const et_gpt_config *cfg, et_qmode mode, const void *blob, size_t bb, const int *in,
                       const int *tg, int B, int T)
{
    et_qgpt qm;
    et_arena a;
    size_t need;
    void *mem;
    float l;
    ck_assert_int_eq(et_qgpt_plan(cfg, mode, B, T, 1, &need), ET_OK);
    mem = et_test_aligned(need);
    et_arena_init(&a, mem, need);
    ck_assert_int_eq(et_qgpt_create(&qm, cfg, mode, blob, bb, B, T, NULL, &a), ET_OK);
    ck_assert_int_eq(et_qgpt_forward(&qm, in, tg, B, T), ET_OK);
    l = qm.mean_loss;
    free(mem);
    return l;
}

static void qat_train_and_export(et_qmode mode)
{
    et_gpt_config cfg;
    rig r;
    et_rng rng;
    et_adamw_config opt = {3e-3f, 0.9f, 0.99f, 1e-8f, 0.0f, 1.0f};
    int B = 4, T = 8, in[32], tg[32], ein[32], etg[32], step, i;
    float first, last, fq, q8, *p0, *p1, *deq, *a, *b;
    et_tensor_info t[ET_GPT_NTENSORS];
    static const int mats[] = {0, 1, 4, 6, 10, 12}; /* wte wpe qkvw attprojw fcw fcprojw */
    size_t bb, np;
    void *blob;
    tiny_cfg(&cfg);
    rig_open(&r, &cfg, B, T, mode, 0.9f);
    np = r.m.nparams;
    p0 = malloc(sizeof(float) * np);
    p1 = malloc(sizeof(float) * np);
    deq = malloc(sizeof(float) * np);
    a = malloc(sizeof(float) * np);
    b = malloc(sizeof(float) * np);
    et_gpt_get_params(&r.m, p0);
    et_rng_seed(&rng, 99);
    batch(B, T, &rng, ein, etg); /* a fixed evaluation batch */
    ck_assert_int_eq(et_gpt_forward(&r.m, ein, etg, B, T), ET_OK);
    first = r.m.mean_loss;
    for (step = 0; step < 150; step++) {
        batch(B, T, &rng, in, tg);
        ck_assert_int_eq(et_gpt_forward(&r.m, in, tg, B, T), ET_OK);
        ck_assert_int_eq(et_gpt_zero_grad(&r.m), ET_OK);
        ck_assert_int_eq(et_gpt_backward(&r.m, 1.0f), ET_OK);
        ck_assert_int_eq(et_gpt_step(&r.m, &opt), ET_OK);
    }
    ck_assert_uint_eq(r.q.commits, 150);
    ck_assert_int_eq(et_gpt_forward(&r.m, ein, etg, B, T), ET_OK);
    last = fq = r.m.mean_loss;
    ck_assert_msg(last < 0.5f * first, "QAT loss %f -> %f", first, last);

    /* export: the int8 forward gives the fake-quantized model's loss ... */
    et_gpt_get_params(&r.m, p1);
    et_qgpt_tensors(&cfg, mode, NULL, &bb);
    blob = et_test_aligned(bb);
    ck_assert_int_eq(et_qat_export(&r.q, p1, blob, bb), ET_OK);
    q8 = int8_loss(&cfg, mode, blob, bb, ein, etg, B, T);
    /* W8A8 differs only by the int8 path's integer rounding (requantization, int32
     * biases) and its GELU table; W8A32 by float summation order */
    ck_assert_msg(fabsf(q8 - fq) <= (mode == ET_QMODE_W8A8 ? 2e-3f : 1e-4f) * fq, "int8 %f vs fake-quantized %f",
                  q8, fq);
    /* ... and holds exactly the QAT master weights, fake-quantized */
    ck_assert_int_eq(et_qgpt_dequantize(&cfg, mode, blob, bb, deq), ET_OK);
    et_gpt_tensors(&cfg, t);
    for (i = 0; i < 6; i++) {
        const et_tensor_info *ti = &t[mats[i]];
        int rows = ti->ndim == 3 ? ti->shape[0] * ti->shape[1] : ti->shape[0];
        int cols = (int)(ti->count / (size_t)rows);
        ref_fake_weights(a, p1 + ti->offset, rows, cols);
        ref_fake_weights(b, p0 + ti->offset, rows, cols);
        ck_assert_msg(memcmp(deq + ti->offset, a, sizeof(float) * ti->count) == 0, "%s differs", ti->name);
        ck_assert_msg(memcmp(a, b, sizeof(float) * ti->count) != 0, "%s did not train", ti->name);
    }
    /* the fp32 model without the proxy is a different model */
    ck_assert_int_eq(et_qat_detach(&r.q), ET_OK);
    ck_assert_int_eq(et_gpt_forward(&r.m, ein, etg, B, T), ET_OK);
    ck_assert(r.m.mean_loss != fq);
    if (mode == ET_QMODE_W8A8) {
        /* an export of the untrained weights would not give that loss */
        float *lo = malloc(sizeof(float) * r.q.nsites), *hi = malloc(sizeof(float) * r.q.nsites);
        ck_assert_int_eq(et_qat_ranges(&r.q, lo, hi), ET_OK);
        ck_assert_int_eq(et_qgpt_quantize(&cfg, p0, mode, lo, hi, blob, bb), ET_OK);
        ck_assert(fabsf(int8_loss(&cfg, mode, blob, bb, ein, etg, B, T) - fq) > 0.1f);
        free(lo);
        free(hi);
    }
    free(blob); free(p0); free(p1); free(deq); free(a); free(b);
    rig_close(&r);
}

START_TEST(qat_w8a8_trains_and_exports)
{
    qat_train_and_export(ET_QMODE_W8A8);
}
END_TEST

START_TEST(qat_w8a32_trains_and_exports)
{
    qat_train_and_export(ET_QMODE_W8A32);
}
END_TEST

// --- the command

static char dir[256];

static void rm_tmp(void)
{
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    ck_assert_int_eq(system(cmd), 0);
}

static void prepare_and_train(void)
{
    static const char *lines[] = {"To be, or not to be, that is the question:\n",
                                  "Whether 'tis nobler in the mind to suffer\n",
                                  "The slings and arrows of outrageous fortune,\n"};
    char path[300], out[4096];
    FILE *f;
    int i;
    snprintf(dir, sizeof dir, "/tmp/et_qat_XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(dir));
    snprintf(path, sizeof path, "%s/text.txt", dir);
    f = fopen(path, "w");
    for (i = 0; i < 300; i++) fputs(lines[(i * 7 + i / 3) % 3], f);
    fclose(f);
    ck_assert_int_eq(et_test_run(out, sizeof out, "%s prepare --input %s --tokenizer char --dedup-min-len 0 --out %s/data",
                                 et_test_cli(), path, dir), 0);
    ck_assert_msg(et_test_run(out, sizeof out, "%s train --data %s/data/train.bin --layers 2 --heads 2 --channels 32 "
                              "--context 16 -b 4 -t 16 --steps 30 --warmup 5 --lr 3e-3 --eval-every 0 --threads 1 -q "
                              "--ckpt-every 10 --out %s/run", et_test_cli(), dir, dir) == 0, "train: %s", out);
}

static char *file_tail_lines(const char *path, int from_step)
{
    size_t n;
    char *s = (char *)et_test_slurp(path, &n), *p = s, *start = NULL;
    s[n] = 0;
    while (p && *p) {
        if (atoi(p) == from_step && !start) start = p;
        p = strchr(p, '\n');
        if (p) p++;
    }
    ck_assert_ptr_nonnull(start);
    memmove(s, start, strlen(start) + 1);
    return s;
}

#define QAT_FLAGS "--data %s/data/train.bin --val-data %s/data/val.bin -b 4 -t 16 --steps 20 --lr 1e-3 " \
                  "--warmup 0 --schedule constant --eval-every 0 --eval-batches 4 --threads 1 -q --qat"

START_TEST(cli_train_qat)
{
    char out[8192], path[300], *a, *b, *p;
    float fq, q8, ev;
    struct stat st;
    prepare_and_train();
    ck_assert_msg(et_test_run(out, sizeof out, "%s train --model %s/run/model.etck " QAT_FLAGS " --ckpt-every 10 "
                              "--out %s/qat", et_test_cli(), dir, dir, dir, dir) == 0, "train --qat: %s", out);
    ck_assert_msg((p = strstr(out, "val loss ")) && sscanf(p, "val loss %f (fake-quantized)", &fq) == 1, "%s", out);
    ck_assert_msg((p = strstr(out, "model.etq val loss ")) && sscanf(p, "model.etq val loss %f", &q8) == 1, "%s", out);
    ck_assert_msg(fabsf(q8 - fq) < 0.005f * fq, "int8 %f vs fake-quantized %f", q8, fq);
    snprintf(path, sizeof path, "%s/qat/model.etq", dir);
    ck_assert_int_eq(stat(path, &st), 0);
    snprintf(path, sizeof path, "%s/qat/ckpt_000010.etck.qat", dir);
    ck_assert_int_eq(stat(path, &st), 0);
    /* the file runs through eval's int8 path on the same windows: the same figure */
    ck_assert_int_eq(et_test_run(out, sizeof out, "%s eval --model %s/qat/model.etq --data %s/data/val.bin -b 4 -t 16 "
                                 "--batches 4 --threads 1", et_test_cli(), dir, dir), 0);
    ck_assert_int_eq(sscanf(out, "loss %f", &ev), 1);
    ck_assert_msg(fabsf(ev - q8) <= 5.1e-5f, "eval %f vs train's %.4f", ev, q8); /* train prints 4 decimals */
    /* resumed at step 10, steps 11..20 are the uninterrupted run's, digit for digit */
    ck_assert_msg(et_test_run(out, sizeof out, "%s train --resume %s/qat/ckpt_000010.etck " QAT_FLAGS " --out %s/qat2",
                              et_test_cli(), dir, dir, dir, dir) == 0, "resume: %s", out);
    snprintf(path, sizeof path, "%s/qat/log.csv", dir);
    a = file_tail_lines(path, 11);
    snprintf(path, sizeof path, "%s/qat2/log.csv", dir);
    b = file_tail_lines(path, 11);
    ck_assert_msg(strcmp(a, b) == 0, "uninterrupted:\n%s\nresumed:\n%s", a, b);
    free(a);
    free(b);
    /* W8A32 runs too */
    ck_assert_msg(et_test_run(out, sizeof out, "%s train --model %s/run/model.etck " QAT_FLAGS " --qat-mode w8a32 "
                              "--out %s/qat32", et_test_cli(), dir, dir, dir, dir) == 0, "w8a32: %s", out);
    ck_assert_msg((p = strstr(out, "model.etq val loss ")) && sscanf(p, "model.etq val loss %f", &q8) == 1, "%s", out);
    rm_tmp();
}
END_TEST

START_TEST(cli_train_qat_bad_inputs)
{
    char out[8192], path[300];
    FILE *f;
    prepare_and_train();
    /* bad flags: exit 2 */
    ck_assert_int_eq(et_test_run(out, sizeof out, "%s train --model %s/run/model.etck " QAT_FLAGS " --qat-mode w4 "
                                 "--out %s/x", et_test_cli(), dir, dir, dir, dir), 2);
    ck_assert_msg(strstr(out, "w8a8 or w8a32") != NULL, "%s", out);
    ck_assert_int_eq(et_test_run(out, sizeof out, "%s train --data %s/data/train.bin --qat-mode w8a8 --out %s/x",
                                 et_test_cli(), dir, dir), 2);
    ck_assert_msg(strstr(out, "go with --qat") != NULL, "%s", out);
    /* a decay outside [0, 1): one line, exit 1 */
    ck_assert_int_eq(et_test_run(out, sizeof out, "%s train --model %s/run/model.etck " QAT_FLAGS " --qat-decay 1 "
                                 "--out %s/x", et_test_cli(), dir, dir, dir, dir), 1);
    ck_assert_msg(strstr(out, "decay") != NULL, "%s", out);
    /* resuming a checkpoint no QAT run wrote: its state file is missing */
    ck_assert_int_eq(et_test_run(out, sizeof out, "%s train --resume %s/run/ckpt_000010.etck " QAT_FLAGS " --out %s/x",
                                 et_test_cli(), dir, dir, dir, dir), 1);
    ck_assert_msg(strstr(out, "ckpt_000010.etck.qat") != NULL, "%s", out);
    /* a damaged state file */
    ck_assert_int_eq(et_test_run(out, sizeof out, "%s train --model %s/run/model.etck " QAT_FLAGS " --ckpt-every 10 "
                                 "--out %s/q", et_test_cli(), dir, dir, dir, dir), 0);
    snprintf(path, sizeof path, "%s/q/ckpt_000010.etck.qat", dir);
    f = fopen(path, "r+b");
    ck_assert_ptr_nonnull(f);
    fseek(f, 70, SEEK_SET);
    fputc(0x5A, f);
    fclose(f);
    ck_assert_int_eq(et_test_run(out, sizeof out, "%s train --resume %s/q/ckpt_000010.etck " QAT_FLAGS " --out %s/x",
                                 et_test_cli(), dir, dir, dir, dir), 1);
    ck_assert_msg(strstr(out, "CRC") != NULL, "%s", out);
    /* another mode than the run's */
    ck_assert_int_eq(et_test_run(out, sizeof out, "%s train --model %s/run/model.etck " QAT_FLAGS " --ckpt-every 10 "
                                 "--out %s/q", et_test_cli(), dir, dir, dir, dir), 0);
    ck_assert_int_eq(et_test_run(out, sizeof out, "%s train --resume %s/q/ckpt_000010.etck " QAT_FLAGS " --qat-mode w8a32 "
                                 "--out %s/x", et_test_cli(), dir, dir, dir, dir), 1);
    ck_assert_msg(strstr(out, "resume with the same") != NULL, "%s", out);
    rm_tmp();
}
END_TEST

static Suite *qat_suite(void)
{
    Suite *s = suite_create("qat");
    TCase *t = tcase_create("arithmetic");
    TCase *m = tcase_create("model");
    TCase *c = tcase_create("cli");
    tcase_add_test(t, fake_act_is_quant_dequant);
    tcase_add_test(t, fake_weights_are_quant_dequant);
    tcase_add_test(t, ste_mask_edges);
    tcase_add_test(t, ste_matmul_gradients);
    tcase_add_test(t, ranges_move_on_backward_only);
    tcase_add_test(t, arena_and_bad_calls);
    tcase_add_test(m, qat_w8a8_trains_and_exports);
    tcase_add_test(m, qat_w8a32_trains_and_exports);
    tcase_set_timeout(m, 300);
    tcase_add_test(c, cli_train_qat);
    tcase_add_test(c, cli_train_qat_bad_inputs);
    tcase_set_timeout(c, 300);
    suite_add_tcase(s, t);
    suite_add_tcase(s, m);
    suite_add_tcase(s, c);
    return s;
}

ET_CHECK_MAIN(qat_suite)

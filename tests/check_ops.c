/* check_ops.c - every cpu op, forward against a plain double-precision reference and
 * backward against central finite differences of that reference.
 *
 * For an op y = f(x, params) the test draws a random cotangent R, defines the scalar
 * loss L = sum(R * f(...)) in double, and compares the op's float backward (fed dout = R)
 * with (L(x + h e_i) - L(x - h e_i)) / 2h for every input element. Backward functions add
 * into their outputs, so they are first pre-filled with a known value that the test
 * subtracts again. */
#include <string.h>
#include "et_check.h"
#include "et_cpu_ops.h"
#include "et_rng.h"

#define H 1e-6
#define TOL_REL 2e-3
#define TOL_ABS 2e-4

static void scrambled_for(void *pool, int n, et_task_fn fn, void *arg)
{
    int i;
    (void)pool;
    for (i = n - 1; i >= 0; i--) fn(arg, i, i % 2);
}
static const et_threads scrambled = {0, 2, scrambled_for};

static et_rng rng;
static void fillf(float *x, size_t n, float lo, float hi)
{
    size_t i;
    for (i = 0; i < n; i++) x[i] = lo + (hi - lo) * et_rng_uniform(&rng);
}
static void f2d(double *d, const float *f, size_t n)
{
    size_t i;
    for (i = 0; i < n; i++) d[i] = f[i];
}

/* compares a float gradient (minus its pre-fill) against finite differences of loss() */
typedef double (*loss_fn)(void *ctx);
static void check_grad(const char *what, double *x, size_t n, const float *g, float prefill,
                       loss_fn loss, void *ctx)
{
    size_t i;
    for (i = 0; i < n; i++) {
        double keep = x[i], lp, lm, fd, an = (double)g[i] - prefill;
        x[i] = keep + H; lp = loss(ctx);
        x[i] = keep - H; lm = loss(ctx);
        x[i] = keep;
        fd = (lp - lm) / (2 * H);
        ck_assert_msg(fabs(an - fd) <= TOL_ABS + TOL_REL * fabs(fd),
                      "%s[%zu]: backward %.8g, finite difference %.8g", what, i, an, fd);
    }
}
static void check_fwd(const char *what, const float *y, const double *ref, size_t n)
{
    size_t i;
    for (i = 0; i < n; i++)
        ck_assert_msg(fabs(y[i] - ref[i]) <= 1e-5 + 1e-5 * fabs(ref[i]),
                      "%s[%zu]: %.8g, reference %.8g", what, i, y[i], ref[i]);
}

/* --- LayerNorm */
enum { LN_N = 5, LN_C = 7 };
typedef struct { double x[LN_N * LN_C], w[LN_C], b[LN_C], R[LN_N * LN_C], y[LN_N * LN_C]; } ln_ref;
static void ln_ref_fwd(ln_ref *r)
{
    int n, c;
    for (n = 0; n < LN_N; n++) {
        double m = 0, v = 0;
        for (c = 0; c < LN_C; c++) m += r->x[n * LN_C + c];
        m /= LN_C;
        for (c = 0; c < LN_C; c++) v += (r->x[n * LN_C + c] - m) * (r->x[n * LN_C + c] - m);
        v /= LN_C;
        for (c = 0; c < LN_C; c++)
            r->y[n * LN_C + c] = (r->x[n * LN_C + c] - m) / sqrt(v + 1e-5) * r->w[c] + r->b[c];
    }
}
static double ln_loss(void *ctx)
{
    ln_ref *r = ctx;
    double s = 0;
    int i;
    ln_ref_fwd(r);
    for (i = 0; i < LN_N * LN_C; i++) s += r->R[i] * r->y[i];
    return s;
}

START_TEST(layernorm)
{
    float x[LN_N * LN_C], w[LN_C], b[LN_C], R[LN_N * LN_C], y[LN_N * LN_C], mean[LN_N], rstd[LN_N];
    float dx[LN_N * LN_C], dw[LN_C], db[LN_C];
    ln_ref r;
    int i;
    et_rng_seed(&rng, 1);
    fillf(x, LN_N * LN_C, -2, 2); fillf(w, LN_C, 0.5f, 1.5f); fillf(b, LN_C, -1, 1);
    fillf(R, LN_N * LN_C, -1, 1);
    f2d(r.x, x, LN_N * LN_C); f2d(r.w, w, LN_C); f2d(r.b, b, LN_C); f2d(r.R, R, LN_N * LN_C);
    et_cpu_layernorm_fwd(_i ? &scrambled : NULL, y, mean, rstd, x, w, b, LN_N, LN_C);
    ln_ref_fwd(&r);
    check_fwd("layernorm out", y, r.y, LN_N * LN_C);
    for (i = 0; i < LN_N * LN_C; i++) dx[i] = 0.5f;
    for (i = 0; i < LN_C; i++) dw[i] = db[i] = 0.5f;
    et_cpu_layernorm_bwd(_i ? &scrambled : NULL, dx, dw, db, R, x, w, mean, rstd, LN_N, LN_C);
    check_grad("layernorm dinp", r.x, LN_N * LN_C, dx, 0.5f, ln_loss, &r);
    check_grad("layernorm dw", r.w, LN_C, dw, 0.5f, ln_loss, &r);
    check_grad("layernorm db", r.b, LN_C, db, 0.5f, ln_loss, &r);
}
END_TEST

/* --- GELU */
enum { GE_N = 40 };
typedef struct { double x[GE_N], R[GE_N]; } ge_ref;
static double gelu_d(double x) { return 0.5 * x * (1 + tanh(sqrt(2 / 3.14159265358979323846) * (x + 0.044715 * x * x * x))); }
static double ge_loss(void *ctx)
{
    ge_ref *r = ctx;
    double s = 0;
    int i;
    for (i = 0; i < GE_N; i++) s += r->R[i] * gelu_d(r->x[i]);
    return s;
}
START_TEST(gelu)
{
    float x[GE_N], R[GE_N], y[GE_N], dx[GE_N];
    double ref[GE_N];
    ge_ref r;
    int i;
    et_rng_seed(&rng, 2);
    fillf(x, GE_N, -5, 5); fillf(R, GE_N, -1, 1);
    f2d(r.x, x, GE_N); f2d(r.R, R, GE_N);
    et_cpu_gelu_fwd(NULL, y, x, GE_N);
    for (i = 0; i < GE_N; i++) ref[i] = gelu_d(r.x[i]);
    check_fwd("gelu out", y, ref, GE_N);
    for (i = 0; i < GE_N; i++) dx[i] = 0.25f;
    et_cpu_gelu_bwd(NULL, dx, x, R, GE_N);
    check_grad("gelu dinp", r.x, GE_N, dx, 0.25f, ge_loss, &r);
}
END_TEST

/* --- attention (flash-style): a reference of any size, checked at T = 67 in full and at
 * T = 300 (three key blocks, so the online softmax rescales) on sampled elements */
typedef struct { int B, T, C, NH; double *qkv, *R, *y; } fl_ref;
static void fl_fwd(fl_ref *r)
{
    int b, t, t2, h, i, hs = r->C / r->NH, C3 = 3 * r->C;
    double *s = malloc(sizeof(double) * r->T);
    for (b = 0; b < r->B; b++)
        for (h = 0; h < r->NH; h++)
            for (t = 0; t < r->T; t++) {
                double mx = -1e300, sum = 0;
                const double *q = r->qkv + ((size_t)b * r->T + t) * C3 + h * hs;
                for (t2 = 0; t2 <= t; t2++) {
                    const double *k = r->qkv + ((size_t)b * r->T + t2) * C3 + r->C + h * hs;
                    s[t2] = 0;
                    for (i = 0; i < hs; i++) s[t2] += q[i] * k[i];
                    s[t2] /= sqrt(hs);
                    if (s[t2] > mx) mx = s[t2];
                }
                for (t2 = 0; t2 <= t; t2++) { s[t2] = exp(s[t2] - mx); sum += s[t2]; }
                for (i = 0; i < hs; i++) {
                    double o = 0;
                    for (t2 = 0; t2 <= t; t2++)
                        o += s[t2] / sum * r->qkv[((size_t)b * r->T + t2) * C3 + 2 * r->C + h * hs + i];
                    r->y[((size_t)b * r->T + t) * r->C + h * hs + i] = o;
                }
            }
    free(s);
}
static double fl_loss(void *ctx)
{
    fl_ref *r = ctx;
    size_t i, n = (size_t)r->B * r->T * r->C;
    double L = 0;
    fl_fwd(r);
    for (i = 0; i < n; i++) L += r->R[i] * r->y[i];
    return L;
}
static void flash_case(int B, int T, int C, int NH, int stride)
{
    size_t nq = (size_t)B * T * 3 * C, ny = (size_t)B * T * C, i;
    float *qkv = malloc(4 * nq), *R = malloc(4 * ny), *y = malloc(4 * ny), *dqkv = malloc(4 * nq);
    float *lse = malloc(4 * (size_t)B * NH * T);
    fl_ref r;
    size_t slice = et_cpu_flash_slice();
    float *scr = et_test_aligned(2 * slice);
    r.B = B; r.T = T; r.C = C; r.NH = NH;
    r.qkv = malloc(8 * nq); r.R = malloc(8 * ny); r.y = malloc(8 * ny);
    fillf(qkv, nq, -1.5f, 1.5f); fillf(R, ny, -1, 1);
    f2d(r.qkv, qkv, nq); f2d(r.R, R, ny);
    et_cpu_flash_fwd(&scrambled, scr, slice, y, lse, qkv, B, T, C, NH);
    fl_fwd(&r);
    check_fwd("flash out", y, r.y, ny);
    for (i = 0; i < nq; i++) dqkv[i] = 1.0f;
    et_cpu_flash_bwd(&scrambled, scr, slice, dqkv, R, qkv, y, lse, B, T, C, NH);
    for (i = 0; i < nq; i += (size_t)stride) {
        double keep = r.qkv[i], lp, lm, fd, an = (double)dqkv[i] - 1.0;
        r.qkv[i] = keep + H; lp = fl_loss(&r);
        r.qkv[i] = keep - H; lm = fl_loss(&r);
        r.qkv[i] = keep;
        fd = (lp - lm) / (2 * H);
        ck_assert_msg(fabs(an - fd) <= TOL_ABS + TOL_REL * fabs(fd),
                      "flash dqkv[%zu] T=%d: backward %.8g, finite difference %.8g", i, T, an, fd);
    }
    free(qkv); free(R); free(y); free(dqkv); free(lse); free(r.qkv); free(r.R); free(r.y); free(scr);
}
START_TEST(flash_attention)
{
    et_rng_seed(&rng, 11);
    flash_case(1, 67, 16, 2, 1);     /* two query blocks, every element */
    flash_case(2, 300, 16, 2, 97);   /* three key blocks, sampled elements */
}
END_TEST

/* --- softmax cross-entropy over V of Vp columns */
enum { CN = 4, CV = 10, CVP = 16 };
typedef struct { double x[CN * CVP]; int tg[CN]; double dl; } ce_ref;
static double ce_loss(void *ctx)
{
    ce_ref *r = ctx;
    double s = 0;
    int n, v;
    for (n = 0; n < CN; n++) {
        double mx = -1e300, z = 0;
        for (v = 0; v < CV; v++) if (r->x[n * CVP + v] > mx) mx = r->x[n * CVP + v];
        for (v = 0; v < CV; v++) z += exp(r->x[n * CVP + v] - mx);
        s += r->dl * -(r->x[n * CVP + r->tg[n]] - mx - log(z));
    }
    return s;
}
START_TEST(crossentropy)
{
    float x[CN * CVP], probs[CN * CVP], losses[CN], dx[CN * CVP];
    int tg[CN] = {0, 9, 3, 5}, n, v;
    ce_ref r;
    et_rng_seed(&rng, 4);
    fillf(x, CN * CVP, -3, 3);
    for (n = 0; n < CN; n++) x[n * CVP + CV] = 100.0f; /* a padded column must not matter */
    f2d(r.x, x, CN * CVP);
    memcpy(r.tg, tg, sizeof tg);
    r.dl = 0.3;
    et_cpu_crossentropy_fwd(NULL, losses, probs, x, tg, CN, CV, CVP);
    for (n = 0; n < CN; n++) {
        double mx = -1e300, z = 0;
        for (v = 0; v < CV; v++) if (r.x[n * CVP + v] > mx) mx = r.x[n * CVP + v];
        for (v = 0; v < CV; v++) z += exp(r.x[n * CVP + v] - mx);
        ET_CK_CLOSE(losses[n], -(r.x[n * CVP + tg[n]] - mx - log(z)), 1e-5, 1e-6);
        for (v = CV; v < CVP; v++) ck_assert(probs[n * CVP + v] == 0.0f);
    }
    for (n = 0; n < CN * CVP; n++) dx[n] = 0.0f;
    et_cpu_crossentropy_bwd(NULL, dx, probs, tg, 0.3f, CN, CV, CVP);
    check_grad("crossentropy dlogits", r.x, CN * CVP, dx, 0.0f, ce_loss, &r);
}
END_TEST

/* --- embedding */
enum { EB = 2, ET_ = 3, EC = 70, EV = 5 };
START_TEST(encoder)
{
    float wte[EV * EC], wpe[ET_ * EC], out[EB * ET_ * EC], dout[EB * ET_ * EC];
    float dwte[EV * EC], dwpe[ET_ * EC];
    int tok[EB * ET_] = {1, 4, 1, 0, 1, 2}, b, t, c;
    double ewte[EV * EC] = {0}, ewpe[ET_ * EC] = {0};
    et_rng_seed(&rng, 5);
    fillf(wte, EV * EC, -1, 1); fillf(wpe, ET_ * EC, -1, 1); fillf(dout, EB * ET_ * EC, -1, 1);
    et_cpu_encoder_fwd(&scrambled, out, tok, wte, wpe, EB, ET_, EC);
    memset(dwte, 0, sizeof dwte);
    memset(dwpe, 0, sizeof dwpe);
    et_cpu_encoder_bwd(&scrambled, dwte, dwpe, dout, tok, EB, ET_, EC);
    for (b = 0; b < EB; b++)
        for (t = 0; t < ET_; t++)
            for (c = 0; c < EC; c++) {
                int i = (b * ET_ + t) * EC + c;
                ET_CK_CLOSE(out[i], (double)wte[tok[b * ET_ + t] * EC + c] + wpe[t * EC + c], 1e-6, 1e-7);
                ewte[tok[b * ET_ + t] * EC + c] += dout[i];
                ewpe[t * EC + c] += dout[i];
            }
    for (c = 0; c < EV * EC; c++) ET_CK_CLOSE(dwte[c], ewte[c], 1e-5, 1e-6);
    for (c = 0; c < ET_ * EC; c++) ET_CK_CLOSE(dwpe[c], ewpe[c], 1e-5, 1e-6);
}
END_TEST

/* --- AdamW against the update written out in double */
START_TEST(adamw)
{
    enum { N = 40000 };
    static float p[N], g[N], m[N], v[N];
    static double pd[N], md[N], vd[N];
    int i, t;
    et_rng_seed(&rng, 6);
    fillf(p, N, -1, 1);
    memset(m, 0, sizeof m);
    memset(v, 0, sizeof v);
    f2d(pd, p, N);
    memset(md, 0, sizeof md);
    memset(vd, 0, sizeof vd);
    for (t = 1; t <= 3; t++) {
        fillf(g, N, -1, 1);
        et_cpu_adamw(&scrambled, p, g, m, v, N, 1e-2f, 0.9f, 0.95f, 1e-8f, 0.1f, t);
        for (i = 0; i < N; i++) {
            md[i] = 0.9 * md[i] + 0.1 * g[i];
            vd[i] = 0.95 * vd[i] + 0.05 * (double)g[i] * g[i];
            pd[i] -= 1e-2 * ((md[i] / (1 - pow(0.9, t))) / (sqrt(vd[i] / (1 - pow(0.95, t))) + 1e-8) + 0.1 * pd[i]);
        }
    }
    for (i = 0; i < N; i++) ET_CK_CLOSE(p[i], pd[i], 1e-5, 1e-6);
}
END_TEST

START_TEST(sumsq)
{
    enum { N = 100003 };
    static float x[N];
    double ref = 0;
    int i;
    et_rng_seed(&rng, 7);
    fillf(x, N, -1, 1);
    for (i = 0; i < N; i++) ref += (double)x[i] * x[i];
    ET_CK_CLOSE(et_cpu_sumsq(NULL, x, N), ref, 1e-12, 0);
    ck_assert(et_cpu_sumsq(NULL, x, N) == et_cpu_sumsq(&scrambled, x, N));
}
END_TEST

static Suite *ops_suite(void)
{
    Suite *s = suite_create("ops");
    TCase *tc = tcase_create("ops");
    tcase_add_loop_test(tc, layernorm, 0, 2);
    tcase_add_test(tc, gelu);
    tcase_add_test(tc, flash_attention);
    tcase_add_test(tc, crossentropy);
    tcase_add_test(tc, encoder);
    tcase_add_test(tc, adamw);
    tcase_add_test(tc, sumsq);
    suite_add_tcase(s, tc);
    return s;
}

ET_CHECK_MAIN(ops_suite)

/* check_backend.c - the backend conformance suite: every op of every backend this build
 * has, against the cpu backend, on random data and shapes that are not multiples of any
 * tile or work-group size (1, 3, 17, 70, 129, ...), forward and backward; then 20
 * training steps whose losses must match the cpu run's within 1e-4 relative.
 *
 * Backends under test: each device backend of et_accel_built() that opens (one that
 * does not, e.g. cuda without a GPU, is skipped with the reason printed), plus
 * "<first>+fallback": the same driver with every op NULL, so each op runs on the cpu
 * through the fallback proxy's transfers. Backward outputs are pre-filled with random
 * values (ops add into them) and pure outputs with a sentinel, so an element an op
 * forgets to write shows up as a mismatch.
 *
 * Tolerances (|got - cpu| <= atol + rtol |cpu|), float32 everywhere:
 *   elementwise, embeddings, AdamW, cross-entropy   rtol 1e-5, atol 1e-6
 *   GEMMs (sums of K products in another order)      rtol 1e-4, atol 1e-4
 *   LayerNorm, attention (tree reductions)           rtol 1e-4, atol 1e-5
 *   sum of squares (double)                          rtol 1e-9
 * The suite runs in one process (CK_NOFORK) so each device is opened, and its kernels
 * built, once: PoCL's first build on a machine (LLVM, ~10-20 s) happens in main().
 */
#include <string.h>
#include "et_check.h"
#include "et_accel.h"
#include "et_cpu.h"
#include "et_gpt.h"
#include "et_rng.h"
#include "et_runtime.h"

#define SENTINEL 777.0f
#define ARENA_BYTES ((size_t)48 << 20)
#define MAXTB 6

/* ASan: the OpenCL ICD loader, PoCL (LLVM) and the CUDA runtime keep allocations until
 * exit that are not ours; leaks in edgetrain's own code are still reported. */
const char *__lsan_default_suppressions(void);
const char *__lsan_default_suppressions(void)
{
    return "leak:libpocl\nleak:libOpenCL\nleak:libclblast\nleak:libLLVM\nleak:libcuda\n"
           "leak:libcudart\nleak:libcublas\nleak:libclang\n";
}

/* ASan: the CUDA driver maps memory where ASan's shadow gap would be protected */
const char *__asan_default_options(void);
const char *__asan_default_options(void) { return "protect_shadow_gap=0"; }

typedef struct {
    char name[64];
    et_accel *a;   /* the opened backend (shared by its +fallback entry) */
    et_backend be; /* the table under test */
    et_fallback fb;
    int is_fb;
} tb;

static tb tbs[MAXTB];
static int ntb;
static et_backend ref;
static et_cpu_ctx ref_ctx;
static et_rng rng;

// --- host and device buffers of one test

#define MAXH 64
static void *hbufs[MAXH];
static int nh;

static float *hal(size_t n)
{
    float *p = malloc((n ? n : 1) * sizeof(float));
    ck_assert_ptr_nonnull(p);
    ck_assert_int_lt(nh, MAXH);
    hbufs[nh++] = p;
    return p;
}

static void begin(tb *t)
{
    while (nh > 0) free(hbufs[--nh]);
    et_arena_release(t->be.dev_arena, 0);
}

static void fill(float *x, size_t n, float lo, float hi)
{
    size_t i;
    for (i = 0; i < n; i++) x[i] = lo + (hi - lo) * et_rng_uniform(&rng);
}

/* a buffer in both worlds: h for the cpu reference, d on the device with the same bytes */
typedef struct {
    float *h, *d;
    size_t n;
} pair;

static pair mk(tb *t, size_t n, float lo, float hi)
{
    pair p;
    void *d;
    size_t i;
    p.n = n;
    p.h = hal(n);
    if (lo == hi) for (i = 0; i < n; i++) p.h[i] = lo;
    else fill(p.h, n, lo, hi);
    ck_assert_int_eq(et_arena_scratch(t->be.dev_arena, (n ? n : 1) * sizeof(float), &d), ET_OK);
    p.d = d;
    ck_assert_int_eq(t->be.upload(t->be.ctx, p.d, p.h, n * sizeof(float)), ET_OK);
    return p;
}
static pair rnd(tb *t, size_t n) { return mk(t, n, -1.0f, 1.0f); }
static pair out(tb *t, size_t n) { return mk(t, n, SENTINEL, SENTINEL); }

/* downloads p.d and compares it with p.h */
static void same(tb *t, const char *what, const pair *p, double rtol, double atol)
{
    float *got = hal(p->n);
    size_t i;
    ck_assert_int_eq(t->be.download(t->be.ctx, got, p->d, p->n * sizeof(float)), ET_OK);
    for (i = 0; i < p->n; i++)
        if (!(fabs((double)got[i] - p->h[i]) <= atol + rtol * fabs(p->h[i])))
            ck_abort_msg("%s %s: element %zu of %zu is %.9g, cpu %.9g (rtol %g, atol %g)", t->name,
                         what, i, p->n, got[i], p->h[i], rtol, atol);
}

/* gives the device the cpu's values again, so the next op starts from equal inputs */
static void resync(tb *t, const pair *p)
{
    ck_assert_int_eq(t->be.upload(t->be.ctx, p->d, p->h, p->n * sizeof(float)), ET_OK);
}

#define OK(x) ck_assert_int_eq((x), ET_OK)
#define RUN(op, ...) OK(t->be.op(t->be.ctx, __VA_ARGS__))
#define REF(op, ...) OK(ref.op(ref.ctx, __VA_ARGS__))

// --- GEMMs

START_TEST(matmul)
{
    static const int sh[][3] = {{1, 1, 1},    {3, 5, 7},      {17, 33, 65},
                                {64, 64, 64}, {70, 129, 200}, {130, 48, 257}};
    int k, i, bias;
    for (k = 0; k < ntb; k++)
        for (i = 0; i < (int)(sizeof sh / sizeof sh[0]); i++)
            for (bias = 0; bias < 2; bias++) {
                tb *t = &tbs[k];
                int N = sh[i][0], C = sh[i][1], OC = sh[i][2];
                pair inp, w, b, o, dinp, dw, db, dout;
                begin(t);
                inp = rnd(t, (size_t)N * C); w = rnd(t, (size_t)OC * C); b = rnd(t, OC);
                o = out(t, (size_t)N * OC);
                REF(matmul_fwd, o.h, inp.h, w.h, bias ? b.h : NULL, N, C, OC);
                RUN(matmul_fwd, o.d, inp.d, w.d, bias ? b.d : NULL, N, C, OC);
                same(t, "matmul_fwd", &o, 1e-4, 1e-4);
                dinp = rnd(t, (size_t)N * C); dw = rnd(t, (size_t)OC * C); db = rnd(t, OC);
                dout = rnd(t, (size_t)N * OC);
                /* without bias: the model's logits layer, which also has no dinp here */
                REF(matmul_bwd, dinp.h, dw.h, bias ? db.h : NULL, dout.h, inp.h, w.h, N, C, OC);
                RUN(matmul_bwd, dinp.d, dw.d, bias ? db.d : NULL, dout.d, inp.d, w.d, N, C, OC);
                same(t, "matmul_bwd dinp", &dinp, 1e-4, 1e-4);
                same(t, "matmul_bwd dw", &dw, 1e-4, 1e-4);
                same(t, "matmul_bwd dbias", &db, 1e-4, 1e-4);
                if (!bias) {
                    REF(matmul_bwd, NULL, dw.h, NULL, dout.h, inp.h, w.h, N, C, OC);
                    RUN(matmul_bwd, NULL, dw.d, NULL, dout.d, inp.d, w.d, N, C, OC);
                    same(t, "matmul_bwd dw only", &dw, 1e-4, 1e-4);
                }
            }
}
END_TEST

// --- LayerNorm

START_TEST(layernorm)
{
    static const int sh[][2] = {{1, 1}, {3, 5}, {7, 48}, {64, 100}, {5, 257}, {33, 768}};
    int k, i;
    for (k = 0; k < ntb; k++)
        for (i = 0; i < (int)(sizeof sh / sizeof sh[0]); i++) {
            tb *t = &tbs[k];
            int N = sh[i][0], C = sh[i][1];
            pair x, w, b, o, m, r, dx, dw, db, dy;
            begin(t);
            x = mk(t, (size_t)N * C, -2.0f, 3.0f); w = rnd(t, C); b = rnd(t, C);
            o = out(t, (size_t)N * C); m = out(t, N); r = out(t, N);
            REF(layernorm_fwd, o.h, m.h, r.h, x.h, w.h, b.h, N, C);
            RUN(layernorm_fwd, o.d, m.d, r.d, x.d, w.d, b.d, N, C);
            same(t, "layernorm_fwd out", &o, 1e-4, 1e-5);
            same(t, "layernorm_fwd mean", &m, 1e-4, 1e-5);
            same(t, "layernorm_fwd rstd", &r, 1e-4, 1e-5);
            dx = rnd(t, (size_t)N * C); dw = rnd(t, C); db = rnd(t, C); dy = rnd(t, (size_t)N * C);
            /* backward from the cpu's mean and rstd on both sides */
            resync(t, &m);
            resync(t, &r);
            REF(layernorm_bwd, dx.h, dw.h, db.h, dy.h, x.h, w.h, m.h, r.h, N, C);
            RUN(layernorm_bwd, dx.d, dw.d, db.d, dy.d, x.d, w.d, m.d, r.d, N, C);
            same(t, "layernorm_bwd dinp", &dx, 1e-4, 1e-5);
            same(t, "layernorm_bwd dw", &dw, 1e-4, 1e-5);
            same(t, "layernorm_bwd db", &db, 1e-4, 1e-5);
        }
}
END_TEST

// --- attention

START_TEST(attention)
{
    /* (B, T, C, NH): head sizes 4..32, T past one work-group (64) */
    static const int sh[][4] = {{1, 1, 4, 1}, {2, 5, 12, 3}, {3, 17, 32, 4}, {2, 33, 48, 6},
                                {1, 70, 64, 2}, {2, 130, 24, 3}};
    int k, i;
    for (k = 0; k < ntb; k++)
        for (i = 0; i < (int)(sizeof sh / sizeof sh[0]); i++) {
            tb *t = &tbs[k];
            int B = sh[i][0], T = sh[i][1], C = sh[i][2], NH = sh[i][3];
            size_t BT = (size_t)B * T, A = (size_t)B * NH * T * T;
            pair qkv, o, pre, att, dqkv, dpre, datt, dout;
            begin(t);
            qkv = mk(t, BT * 3 * C, -2.0f, 2.0f);
            o = out(t, BT * C); pre = out(t, A); att = out(t, A);
            REF(attention_fwd, o.h, pre.h, att.h, qkv.h, B, T, C, NH);
            RUN(attention_fwd, o.d, pre.d, att.d, qkv.d, B, T, C, NH);
            same(t, "attention_fwd out", &o, 1e-4, 1e-5);
            same(t, "attention_fwd preatt", &pre, 1e-4, 1e-5);
            same(t, "attention_fwd att", &att, 1e-4, 1e-5);
            dqkv = rnd(t, BT * 3 * C); dpre = mk(t, A, 0.0f, 0.0f); datt = mk(t, A, 0.0f, 0.0f);
            dout = rnd(t, BT * C);
            resync(t, &att);
            REF(attention_bwd, dqkv.h, dpre.h, datt.h, dout.h, qkv.h, att.h, B, T, C, NH);
            RUN(attention_bwd, dqkv.d, dpre.d, datt.d, dout.d, qkv.d, att.d, B, T, C, NH);
            /* datt and dpreatt are the op's workspace (the model zeroes them before and
             * never reads them after): only the gradient is compared */
            same(t, "attention_bwd dqkv", &dqkv, 1e-4, 1e-5);
        }
}
END_TEST

// --- elementwise ops

START_TEST(elementwise)
{
    static const size_t ns[] = {1, 63, 1000, 70001};
    int k, i;
    for (k = 0; k < ntb; k++)
        for (i = 0; i < (int)(sizeof ns / sizeof ns[0]); i++) {
            tb *t = &tbs[k];
            size_t n = ns[i];
            pair x, y, o, d;
            begin(t);
            x = mk(t, n, -4.0f, 4.0f); y = rnd(t, n); o = out(t, n); d = rnd(t, n);
            REF(gelu_fwd, o.h, x.h, n);
            RUN(gelu_fwd, o.d, x.d, n);
            same(t, "gelu_fwd", &o, 1e-5, 1e-6);
            REF(gelu_bwd, d.h, x.h, y.h, n);
            RUN(gelu_bwd, d.d, x.d, y.d, n);
            same(t, "gelu_bwd", &d, 1e-5, 1e-6);
            resync(t, &d);
            REF(residual_fwd, o.h, x.h, y.h, n);
            RUN(residual_fwd, o.d, x.d, y.d, n);
            same(t, "residual_fwd", &o, 1e-6, 0.0);
            REF(accumulate, d.h, x.h, n);
            RUN(accumulate, d.d, x.d, n);
            same(t, "accumulate", &d, 1e-6, 0.0);
            resync(t, &d);
            REF(scale, d.h, 0.37f, n);
            RUN(scale, d.d, 0.37f, n);
            same(t, "scale", &d, 1e-6, 0.0);
            REF(copy, o.h, y.h, n);
            RUN(copy, o.d, y.d, n);
            same(t, "copy", &o, 0.0, 0.0);
            REF(zero, d.h, n);
            RUN(zero, d.d, n);
            same(t, "zero", &d, 0.0, 0.0);
        }
}
END_TEST

// --- embeddings

START_TEST(encoder)
{
    static const int sh[][4] = {{1, 1, 1, 5}, {2, 7, 13, 11}, {4, 33, 48, 67}, {3, 70, 100, 3}};
    int k, i;
    for (k = 0; k < ntb; k++)
        for (i = 0; i < (int)(sizeof sh / sizeof sh[0]); i++) {
            tb *t = &tbs[k];
            int B = sh[i][0], T = sh[i][1], C = sh[i][2], V = sh[i][3], r;
            size_t BT = (size_t)B * T;
            int *tok = malloc(BT * sizeof(int));
            pair wte, wpe, o, dwte, dwpe, dout;
            begin(t);
            ck_assert_ptr_nonnull(tok);
            /* few distinct tokens: many rows add into the same dwte row */
            for (r = 0; r < (int)BT; r++) tok[r] = (int)(et_rng_uniform(&rng) * V) % V;
            wte = rnd(t, (size_t)V * C); wpe = rnd(t, (size_t)T * C); o = out(t, BT * C);
            REF(encoder_fwd, o.h, tok, wte.h, wpe.h, B, T, C);
            RUN(encoder_fwd, o.d, tok, wte.d, wpe.d, B, T, C);
            same(t, "encoder_fwd", &o, 1e-6, 0.0);
            dwte = rnd(t, (size_t)V * C); dwpe = rnd(t, (size_t)T * C); dout = rnd(t, BT * C);
            REF(encoder_bwd, dwte.h, dwpe.h, dout.h, tok, B, T, C);
            RUN(encoder_bwd, dwte.d, dwpe.d, dout.d, tok, B, T, C);
            same(t, "encoder_bwd dwte", &dwte, 1e-5, 1e-6);
            same(t, "encoder_bwd dwpe", &dwpe, 1e-5, 1e-6);
            /* new tokens in the same host buffer: a driver caching ids must notice */
            for (r = 0; r < (int)BT; r++) tok[r] = (tok[r] + 1) % V;
            REF(encoder_fwd, o.h, tok, wte.h, wpe.h, B, T, C);
            RUN(encoder_fwd, o.d, tok, wte.d, wpe.d, B, T, C);
            same(t, "encoder_fwd (changed tokens)", &o, 1e-6, 0.0);
            free(tok);
        }
}
END_TEST

// --- softmax cross-entropy

START_TEST(crossentropy)
{
    static const int sh[][2] = {{1, 1}, {7, 5}, {40, 65}, {9, 130}, {3, 1000}};
    int k, i;
    for (k = 0; k < ntb; k++)
        for (i = 0; i < (int)(sizeof sh / sizeof sh[0]); i++) {
            tb *t = &tbs[k];
            int N = sh[i][0], V = sh[i][1], Vp = (V + 63) / 64 * 64, r;
            int *tg = malloc((size_t)N * sizeof(int));
            pair lg, pr, ls, dl;
            begin(t);
            ck_assert_ptr_nonnull(tg);
            for (r = 0; r < N; r++) tg[r] = (r * 7 + 3) % V;
            lg = mk(t, (size_t)N * Vp, -8.0f, 8.0f); pr = out(t, (size_t)N * Vp); ls = out(t, N);
            REF(crossentropy_fwd, ls.h, pr.h, lg.h, tg, N, V, Vp);
            RUN(crossentropy_fwd, ls.d, pr.d, lg.d, tg, N, V, Vp);
            same(t, "crossentropy_fwd probs", &pr, 1e-5, 1e-6);
            same(t, "crossentropy_fwd losses", &ls, 1e-5, 1e-6);
            resync(t, &pr);
            dl = rnd(t, (size_t)N * Vp);
            REF(crossentropy_bwd, dl.h, pr.h, tg, 0.25f, N, V, Vp);
            RUN(crossentropy_bwd, dl.d, pr.d, tg, 0.25f, N, V, Vp);
            same(t, "crossentropy_bwd", &dl, 1e-5, 1e-6);
            /* inference: no targets, no losses */
            REF(crossentropy_fwd, NULL, pr.h, lg.h, NULL, N, V, Vp);
            RUN(crossentropy_fwd, NULL, pr.d, lg.d, NULL, N, V, Vp);
            same(t, "crossentropy_fwd (no targets)", &pr, 1e-5, 1e-6);
            free(tg);
        }
}
END_TEST

// --- optimizer and reductions

START_TEST(adamw_sumsq)
{
    static const size_t ns[] = {1, 1000, 3 * 16384 + 5};
    int k, i, st;
    for (k = 0; k < ntb; k++)
        for (i = 0; i < (int)(sizeof ns / sizeof ns[0]); i++) {
            tb *t = &tbs[k];
            size_t n = ns[i];
            pair p, g, m, v;
            double sh = 0, sd = 0;
            begin(t);
            p = rnd(t, n); g = mk(t, n, -3.0f, 3.0f); m = mk(t, n, 0.0f, 0.0f); v = mk(t, n, 0.0f, 0.0f);
            for (st = 1; st <= 3; st++) {
                REF(adamw, p.h, g.h, m.h, v.h, n, 1e-2f, 0.9f, 0.95f, 1e-8f, st == 2 ? 0.0f : 0.1f, st);
                RUN(adamw, p.d, g.d, m.d, v.d, n, 1e-2f, 0.9f, 0.95f, 1e-8f, st == 2 ? 0.0f : 0.1f, st);
            }
            same(t, "adamw param", &p, 1e-5, 1e-6);
            same(t, "adamw m", &m, 1e-5, 1e-6);
            same(t, "adamw v", &v, 1e-5, 1e-6);
            REF(sumsq, &sh, g.h, n);
            RUN(sumsq, &sd, g.d, n);
            ck_assert_msg(fabs(sd - sh) <= 1e-9 * sh, "%s sumsq(%zu): %.17g, cpu %.17g", t->name, n, sd, sh);
        }
}
END_TEST

// --- training: 20 steps against the cpu run

#define TR_STEPS 20
static const et_gpt_config tr_cfg = {67, 0, 72, 2, 3, 36}; /* odd V, hs 12, T past 64 */
enum { TR_B = 3, TR_T = 70 };

static void tr_batch(int step, int *in, int *tg)
{
    int i, n = TR_B * TR_T;
    for (i = 0; i < n; i++) {
        in[i] = (i * 5 + step * 11 + (i / 7) * 3) % tr_cfg.vocab;
        tg[i] = (in[i] * 3 + 1 + (i % 2)) % tr_cfg.vocab;
    }
}

/* trains TR_STEPS on model @p m, losses into @p loss */
static void tr_run(et_gpt *m, float *loss, const char *who)
{
    et_adamw_config o = {3e-3f, 0.9f, 0.95f, 1e-8f, 0.1f, 1.0f};
    int in[TR_B * TR_T], tg[TR_B * TR_T], st;
    OK(et_gpt_init_weights(m, 1337));
    for (st = 0; st < TR_STEPS; st++) {
        tr_batch(st, in, tg);
        ck_assert_msg(et_gpt_forward(m, in, tg, TR_B, TR_T) == ET_OK, "%s: forward %d", who, st);
        OK(et_gpt_zero_grad(m));
        OK(et_gpt_backward(m, 1.0f));
        OK(et_gpt_step(m, &o));
        loss[st] = m->mean_loss;
    }
}

static void cpu_losses(float *loss)
{
    et_runtime rt;
    et_error e = {0};
    ck_assert_msg(et_runtime_open(&rt, "cpu", &tr_cfg, TR_B, TR_T, ET_GPT_TRAIN, 1, &e) == ET_OK, "%s", e.msg);
    tr_run(&rt.model, loss, "cpu");
    et_runtime_close(&rt);
}

static void same_losses(const char *who, const float *got, const float *cpu, double rtol)
{
    int st;
    for (st = 0; st < TR_STEPS; st++)
        ck_assert_msg(fabs((double)got[st] - cpu[st]) <= rtol * fabs(cpu[st]),
                      "%s: step %d loss %.7f, cpu %.7f (rtol %g)", who, st + 1, got[st], cpu[st], rtol);
    ck_assert_msg(got[TR_STEPS - 1] < 0.8f * got[0], "%s: loss did not fall (%.4f -> %.4f)", who,
                  got[0], got[TR_STEPS - 1]);
}

/* trains on table @p be, whose device arena belongs to @p a, in arenas of exactly the plan */
static void tr_on(et_accel *a, const et_backend *be, float *loss, const char *who)
{
    et_gpt_plan p;
    et_arena host;
    et_gpt m;
    void *hb;
    et_error e = {0};
    OK(et_gpt_plan_compute(&tr_cfg, TR_B, TR_T, ET_GPT_TRAIN, be, &p));
    ck_assert_msg(et_accel_reserve(a, p.device, &e) == ET_OK, "%s", e.msg);
    hb = et_test_aligned(p.host);
    et_arena_init(&host, hb, p.host);
    OK(et_gpt_create(&m, &tr_cfg, TR_B, TR_T, ET_GPT_TRAIN, be, &host));
    ck_assert_uint_eq(et_arena_free_bytes(be->dev_arena), 0);
    tr_run(&m, loss, who);
    free(hb);
    ck_assert_msg(et_accel_reserve(a, ARENA_BYTES, &e) == ET_OK, "%s", e.msg);
}

/* every backend under test, through et_gpt directly on its table */
START_TEST(train_20_steps)
{
    float cpu[TR_STEPS], got[TR_STEPS];
    int k;
    cpu_losses(cpu);
    for (k = 0; k < ntb; k++) {
        begin(&tbs[k]);
        tr_on(tbs[k].a, &tbs[k].be, got, tbs[k].name);
        same_losses(tbs[k].name, got, cpu, 1e-4);
    }
}
END_TEST

/* the same through et_runtime_open(--backend NAME), as the CLI does */
START_TEST(train_through_runtime)
{
    float cpu[TR_STEPS], got[TR_STEPS];
    int k;
    cpu_losses(cpu);
    for (k = 0; k < ntb; k++) {
        et_runtime rt;
        et_error e = {0};
        if (tbs[k].is_fb) continue;
        ck_assert_msg(et_runtime_open(&rt, tbs[k].name, &tr_cfg, TR_B, TR_T, ET_GPT_TRAIN, 1, &e) == ET_OK,
                      "%s: %s", tbs[k].name, e.msg);
        ck_assert_ptr_nonnull(rt.accel);
        tr_run(&rt.model, got, tbs[k].name);
        same_losses(tbs[k].name, got, cpu, 1e-4);
        et_runtime_close(&rt);
    }
}
END_TEST

/* half the driver's ops removed: the rest runs on the cpu with transfers, same losses */
START_TEST(partial_driver_falls_back)
{
    float cpu[TR_STEPS], got[TR_STEPS];
    int k, i;
    cpu_losses(cpu);
    for (k = 0; k < ntb; k++) {
        et_backend drv, be;
        et_fallback fb;
        void **op;
        unsigned long fell = 0, fwd = 0;
        if (tbs[k].is_fb) continue;
        begin(&tbs[k]);
        drv = *et_accel_driver(tbs[k].a);
        op = (void **)(void *)&drv.matmul_fwd; /* NULL every other op slot */
        for (i = 0; i < ET_OP_COUNT; i += 2) memset(&op[i], 0, sizeof op[i]);
        OK(et_fallback_wrap(&fb, &drv, NULL, NULL, &be));
        tr_on(tbs[k].a, &be, got, "partial driver");
        same_losses("partial driver", got, cpu, 1e-4);
        for (i = 0; i < ET_OP_COUNT; i++) {
            fell += fb.fallbacks[i];
            fwd += fb.calls[i] - fb.fallbacks[i];
        }
        ck_assert(fell > 0 && fwd > 0);
        ck_assert_uint_eq(fb.fallbacks[ET_OP_LAYERNORM_BWD], 0); /* odd slots stay on device */
        et_fallback_release(&fb);
    }
}
END_TEST

// --- errors

START_TEST(errors_are_clear)
{
    et_runtime rt;
    et_error e = {0};
    static const char *const names[] = {"opencl", "cuda"};
    int i, k;
    ck_assert_int_eq(et_runtime_open(&rt, "tpu9000", &tr_cfg, 1, 8, ET_GPT_INFER, 1, &e), ET_ERR_DEVICE);
    ck_assert_msg(strstr(e.msg, "this build has: cpu") != NULL, "%s", e.msg);
    for (i = 0; i < 2; i++) {
        if (et_accel_has(names[i])) continue;
        memset(&e, 0, sizeof e);
        ck_assert_int_eq(et_runtime_open(&rt, names[i], &tr_cfg, 1, 8, ET_GPT_INFER, 1, &e), ET_ERR_DEVICE);
        ck_assert_msg(strstr(e.msg, "not in this build") != NULL, "%s", e.msg);
        printf("check_backend: %s -> %s\n", names[i], e.msg);
    }
    /* a pointer outside the device arena is refused with a message, not dereferenced */
    for (k = 0; k < ntb; k++) {
        tb *t = &tbs[k];
        float *bad = (float *)(void *)&rt;
        if (t->is_fb) continue;
        ck_assert_int_eq(t->be.zero(t->be.ctx, bad, 4), ET_ERR_INVALID);
        ck_assert_msg(strstr(et_accel_last_error(t->a), "device arena") != NULL, "%s",
                      et_accel_last_error(t->a));
    }
}
END_TEST

// --- setup: open every backend once

static void open_backends(void)
{
    char built[128], *tok, *save = NULL;
    int have_first = 0;
    et_cpu_backend_init(&ref, &ref_ctx, NULL);
    ref_ctx.scratch = malloc(ref.scratch_bytes);
    ref_ctx.scratch_bytes = ref.scratch_bytes;
    snprintf(built, sizeof built, "%s", et_accel_built());
    printf("check_backend: this build has: %s\n", built);
    for (tok = strtok_r(built, " ", &save); tok && ntb < MAXTB - 1; tok = strtok_r(NULL, " ", &save)) {
        tb *t = &tbs[ntb];
        et_error e = {0};
        if (!strcmp(tok, "cpu")) continue;
        if (et_accel_open(&t->a, tok, NULL, &t->be, &e) != ET_OK ||
            et_accel_reserve(t->a, ARENA_BYTES, &e) != ET_OK) {
            printf("check_backend: skipping %s: %s\n", tok, e.msg);
            et_accel_close(t->a);
            memset(t, 0, sizeof *t);
            continue;
        }
        if (!t->be.dev_arena) {
            /* a host-memory backend (the systolic simulator): its own suites hold it
             * to the cpu backend; this suite compares device-arena drivers */
            printf("check_backend: skipping %s: works on host memory (see its own suite)\n", tok);
            et_accel_close(t->a);
            memset(t, 0, sizeof *t);
            continue;
        }
        snprintf(t->name, sizeof t->name, "%s", tok);
        printf("check_backend: testing %s (%s)\n", tok, et_accel_name(t->a));
        ntb++;
        if (!have_first) {
            /* every op through the fallback: the driver's transfers only */
            tb *f = &tbs[ntb];
            et_backend none = *et_accel_driver(t->a);
            void **op = (void **)(void *)&none.matmul_fwd;
            int i;
            for (i = 0; i < ET_OP_COUNT; i++) memset(&op[i], 0, sizeof op[i]);
            f->a = t->a;
            f->is_fb = 1;
            if (et_fallback_wrap(&f->fb, &none, NULL, NULL, &f->be) != ET_OK) continue;
            snprintf(f->name, sizeof f->name, "%s+fallback", tok);
            printf("check_backend: testing %s (every op on the cpu through %s's transfers)\n",
                   f->name, tok);
            ntb++;
            have_first = 1;
        }
    }
    if (ntb == 0) printf("check_backend: no device backend could be opened; nothing to compare\n");
}

static void close_backends(void)
{
    int k;
    for (k = 0; k < ntb; k++) {
        if (tbs[k].is_fb) et_fallback_release(&tbs[k].fb);
        else et_accel_close(tbs[k].a);
    }
    while (nh > 0) free(hbufs[--nh]);
    free(ref_ctx.scratch);
}

static Suite *backend_suite(void)
{
    Suite *s = suite_create("backend");
    TCase *tc = tcase_create("backend");
    tcase_add_test(tc, matmul);
    tcase_add_test(tc, layernorm);
    tcase_add_test(tc, attention);
    tcase_add_test(tc, elementwise);
    tcase_add_test(tc, encoder);
    tcase_add_test(tc, crossentropy);
    tcase_add_test(tc, adamw_sumsq);
    tcase_add_test(tc, train_20_steps);
    tcase_add_test(tc, train_through_runtime);
    tcase_add_test(tc, partial_driver_falls_back);
    tcase_add_test(tc, errors_are_clear);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr;
    int nf;
    setvbuf(stdout, NULL, _IONBF, 0);
    et_rng_seed(&rng, 5);
    open_backends(); /* builds each device's kernels once, outside any test */
    sr = srunner_create(backend_suite());
    srunner_set_fork_status(sr, CK_NOFORK); /* one process: devices stay open */
    srunner_run_all(sr, CK_NORMAL);
    nf = srunner_ntests_failed(sr);
    srunner_free(sr);
    close_backends();
    return nf == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}

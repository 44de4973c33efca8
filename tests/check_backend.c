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
#include "et_bf16.h"
#include "et_cpu.h"
#include "et_gpt.h"
#include "et_rng.h"
#include "et_runtime.h"
#ifdef ET_HAVE_CUDA
#include "et_cuda.h"
#endif

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
            /* preatt and att are each backend's own state (cpu: a log-sum-exp per row;
             * A floats cover every layout): only the output is compared */
            same(t, "attention_fwd out", &o, 1e-4, 1e-5);
            dqkv = rnd(t, BT * 3 * C); dpre = mk(t, A, 0.0f, 0.0f); datt = mk(t, A, 0.0f, 0.0f);
            dout = rnd(t, BT * C);
            REF(attention_bwd, dqkv.h, dpre.h, datt.h, dout.h, qkv.h, pre.h, att.h, o.h, B, T, C, NH);
            RUN(attention_bwd, dqkv.d, dpre.d, datt.d, dout.d, qkv.d, pre.d, att.d, o.d, B, T, C, NH);
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
static const et_gpt_config tr_cfg = {67, 0, 72, 2, 3, 36, 0, 0}; /* odd V, hs 12, T past 64 */
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

// --- bf16 mixed precision (accel/cuda/cuda_bf16.c, et_bf16.h)

/* the registry refuses "+bf16" on every backend but cuda, in every build, before opening */
START_TEST(bf16_refused_where_absent)
{
    static const char *const no[] = {"cpu+bf16", "opencl+bf16", "opencl:0.0+bf16", "systolic+bf16",
                                     "systolic:8x8:os:fp32+bf16"};
    et_error e;
    et_runtime rt;
    et_backend be;
    et_accel *a = NULL;
    int i;
    for (i = 0; i < (int)(sizeof no / sizeof no[0]); i++) {
        memset(&e, 0, sizeof e);
        ck_assert_int_eq(et_accel_check(no[i], &e), ET_ERR_UNSUPPORTED);
        ck_assert_msg(strstr(e.msg, "has no bf16") != NULL, "%s: %s", no[i], e.msg);
        memset(&e, 0, sizeof e);
        ck_assert_int_eq(et_accel_open(&a, no[i], NULL, &be, &e), ET_ERR_UNSUPPORTED);
        ck_assert_ptr_null(a);
    }
    memset(&e, 0, sizeof e);
    ck_assert_int_eq(et_runtime_open(&rt, "cpu+bf16", &tr_cfg, 1, 8, ET_GPT_INFER, 1, &e), ET_ERR_DEVICE);
    ck_assert_msg(strstr(e.msg, "has no bf16") != NULL, "%s", e.msg);
    printf("check_backend: cpu+bf16 -> %s\n", e.msg);
    memset(&e, 0, sizeof e);
    ck_assert_int_eq(et_accel_check("cuda+fp16", &e), ET_ERR_INVALID);
    ck_assert_msg(strstr(e.msg, "unknown precision 'fp16'") != NULL, "%s", e.msg);
    ck_assert_int_eq(et_accel_check("cpu+fp32", NULL), ET_OK);
    memset(&e, 0, sizeof e);
    if (et_accel_has("cuda")) {
        ck_assert_int_eq(et_accel_check("cuda:0+bf16", &e), ET_OK);
    } else {
        ck_assert_int_eq(et_accel_check("cuda+bf16", &e), ET_ERR_UNSUPPORTED);
        ck_assert_msg(strstr(e.msg, "not in this build") != NULL, "%s", e.msg);
    }
}
END_TEST

static uint16_t bits16(float f) { return et_bf16_from_f32(f); }
static float f32_of(uint32_t x)
{
    float f;
    memcpy(&f, &x, sizeof f);
    return f;
}

/* an independent reference: the nearer of the two bf16 neighbours, compared in double
 * (0x7f80 counts as 2^128 there, as IEEE rounding of an overflow does), ties to even */
static uint16_t ref_bf16(uint32_t x)
{
    uint32_t mag = x & 0x7fffffffu, sign = x & 0x80000000u;
    uint32_t lo = mag & 0xffff0000u, hi = lo + 0x10000u;
    double v, vl, vh;
    if (mag > 0x7f800000u) return 0x7fffu;
    if (mag == lo) return (uint16_t)((sign | lo) >> 16);
    v = (double)f32_of(mag);
    vl = (double)f32_of(lo);
    vh = hi == 0x7f800000u ? ldexp(1.0, 128) : (double)f32_of(hi);
    if (v - vl < vh - v || (v - vl == vh - v && !((lo >> 16) & 1u))) return (uint16_t)((sign | lo) >> 16);
    return (uint16_t)((sign | hi) >> 16);
}

/* fp32 patterns whose bf16 is known by hand: ties both ways, carries into the exponent,
 * overflow, subnormals, signed zero, infinities and NaNs (a signalling NaN must not
 * become infinity) */
static const uint32_t known_in[] = {
    0x3f800000u, 0x3f808000u, 0x3f818000u, 0x3f808001u, 0x3f807fffu, 0xbf818000u, 0x40490fdbu,
    0x3fffffffu, 0x7f7f7fffu, 0x7f7f8000u, 0x7f7fffffu, 0x7f800000u, 0xff800000u, 0x7fc00000u,
    0xffffffffu, 0x7f800001u, 0x00000001u, 0x00008000u, 0x00018000u, 0x00008001u, 0x80000000u,
    0x00000000u, 0x807fffffu};
static const uint16_t known_out[] = {
    0x3f80u, 0x3f80u, 0x3f82u, 0x3f81u, 0x3f80u, 0xbf82u, 0x4049u,
    0x4000u, 0x7f7fu, 0x7f80u, 0x7f80u, 0x7f80u, 0xff80u, 0x7fffu,
    0x7fffu, 0x7fffu, 0x0000u, 0x0000u, 0x0002u, 0x0001u, 0x8000u,
    0x0000u, 0x8080u};
#define NKNOWN ((int)(sizeof known_in / sizeof known_in[0]))
/* low halves that sit on, just off and far from the rounding boundary */
static const uint32_t lows[] = {0x0000u, 0x0001u, 0x7fffu, 0x8000u, 0x8001u, 0xffffu, 0x1234u, 0xc3a5u};
#define NLOWS ((int)(sizeof lows / sizeof lows[0]))

START_TEST(bf16_rounding_bits)
{
    uint32_t h, k;
    int i;
    ck_assert_int_eq(NKNOWN, (int)(sizeof known_out / sizeof known_out[0]));
    for (i = 0; i < NKNOWN; i++)
        ck_assert_msg(bits16(f32_of(known_in[i])) == known_out[i], "bf16(0x%08x) = 0x%04x, want 0x%04x",
                      known_in[i], bits16(f32_of(known_in[i])), known_out[i]);
    /* every upper half with each boundary low half, against the double-precision reference */
    for (h = 0; h < 0x10000u; h++)
        for (k = 0; k < (uint32_t)NLOWS; k++) {
            uint32_t x = h << 16 | lows[k];
            ck_assert_msg(bits16(f32_of(x)) == ref_bf16(x), "bf16(0x%08x) = 0x%04x, reference 0x%04x", x,
                          bits16(f32_of(x)), ref_bf16(x));
        }
    /* bf16 -> fp32 is exact: every non-NaN pattern comes back unchanged */
    for (h = 0; h < 0x10000u; h++)
        if ((h & 0x7fffu) <= 0x7f80u) ck_assert_uint_eq(bits16(et_bf16_to_f32((uint16_t)h)), h);
    ck_assert(et_bf16_round(1.0f + 1.0f / 512) == 1.0f); /* 2^-9 is half an ulp: ties to even */
}
END_TEST

/* The cpu emulation of the driver's bf16 mode: the cpu backend with each GEMM's operands
 * rounded by et_bf16.h first (dbias still summed from the fp32 dout, as the device
 * does). With noise > 0 every GEMM result is also scaled by (1 + noise * U(-1,1)): a
 * model of a device that sums the same products in another order. */
static struct {
    et_status (*fwd)(void *, float *, const float *, const float *, const float *, int, int, int);
    et_status (*bwd)(void *, float *, float *, float *, const float *, const float *, const float *,
                     int, int, int);
    float *buf[3];
    size_t cap[3];
    double noise;
    et_rng rng;
} emu;

static const float *emu_round(int k, const float *x, size_t n)
{
    if (n > emu.cap[k]) {
        free(emu.buf[k]);
        emu.buf[k] = malloc(n * sizeof(float));
        ck_assert_ptr_nonnull(emu.buf[k]);
        emu.cap[k] = n;
    }
    et_bf16_round_n(emu.buf[k], x, n);
    return emu.buf[k];
}

static void emu_jitter(float *x, size_t n)
{
    size_t i;
    if (!x || emu.noise <= 0) return;
    for (i = 0; i < n; i++) x[i] *= (float)(1.0 + emu.noise * (2.0 * et_rng_uniform(&emu.rng) - 1.0));
}

static et_status emu_fwd(void *ctx, float *out, const float *inp, const float *w, const float *bias,
                         int N, int C, int OC)
{
    et_status s = emu.fwd(ctx, out, emu_round(0, inp, (size_t)N * C), emu_round(1, w, (size_t)OC * C),
                          bias, N, C, OC);
    emu_jitter(out, (size_t)N * OC);
    return s;
}

static et_status emu_bwd(void *ctx, float *dinp, float *dw, float *dbias, const float *dout,
                         const float *inp, const float *w, int N, int C, int OC)
{
    et_status s = emu.bwd(ctx, dinp, dw, NULL, emu_round(0, dout, (size_t)N * OC),
                          emu_round(1, inp, (size_t)N * C), emu_round(2, w, (size_t)OC * C), N, C, OC);
    emu_jitter(dinp, (size_t)N * C);
    emu_jitter(dw, (size_t)OC * C);
    if (s == ET_OK && dbias) s = emu.bwd(ctx, NULL, NULL, dbias, dout, inp, w, N, C, OC);
    return s;
}

/* the 20 training steps of tr_run on the emulation */
static void emu_losses(float *loss, double noise)
{
    et_backend be;
    et_cpu_ctx cx;
    et_gpt_plan p;
    et_arena ar;
    et_gpt m;
    void *mem;
    int k;
    et_cpu_backend_init(&be, &cx, NULL);
    emu.fwd = be.matmul_fwd;
    emu.bwd = be.matmul_bwd;
    emu.noise = noise;
    et_rng_seed(&emu.rng, 99);
    be.matmul_fwd = emu_fwd;
    be.matmul_bwd = emu_bwd;
    OK(et_gpt_plan_compute(&tr_cfg, TR_B, TR_T, ET_GPT_TRAIN, &be, &p));
    mem = et_test_aligned(p.total);
    ck_assert_ptr_nonnull(mem);
    et_arena_init(&ar, mem, p.total);
    OK(et_gpt_create(&m, &tr_cfg, TR_B, TR_T, ET_GPT_TRAIN, &be, &ar));
    tr_run(&m, loss, "bf16 emulation");
    free(mem);
    for (k = 0; k < 3; k++) {
        free(emu.buf[k]);
        emu.buf[k] = NULL;
        emu.cap[k] = 0;
    }
}

static double max_rel(const float *a, const float *b)
{
    double m = 0;
    int st;
    for (st = 0; st < TR_STEPS; st++) {
        double r = fabs((double)a[st] - b[st]) / fabs((double)b[st]);
        if (r > m) m = r;
    }
    return m;
}

/* How far bf16 GEMMs move the 20-step losses from fp32 (1.0e-4 relative when measured),
 * and how sensitive the bf16 run is to a device summing in another order (4.0e-5): the
 * second figure sets BF16_TRAIN_RTOL below. */
START_TEST(bf16_emulation_trains)
{
    float cpu[TR_STEPS], bf[TR_STEPS], jit[TR_STEPS];
    double d32, djit;
    cpu_losses(cpu);
    emu_losses(bf, 0.0);
    emu_losses(jit, 1.0 / (1 << 20));
    d32 = max_rel(bf, cpu);
    djit = max_rel(jit, bf);
    printf("check_backend: bf16 emulation on the cpu, 20 steps: loss %.5f -> %.5f (fp32 %.5f -> %.5f); "
           "largest relative difference from fp32 %.2e; from itself with GEMM results jittered by "
           "2^-20 %.2e\n", bf[0], bf[TR_STEPS - 1], cpu[0], cpu[TR_STEPS - 1], d32, djit);
    ck_assert_msg(bf[TR_STEPS - 1] < 0.8f * bf[0], "bf16 emulation: loss did not fall");
    ck_assert_msg(d32 > 0, "bf16 emulation equals fp32 bit for bit: the operands were not rounded");
    ck_assert_msg(d32 < 1e-3, "bf16 emulation is %.2e from fp32 (expected < 1e-3)", d32);
}
END_TEST

/* bf16 mode of the CUDA driver, opened once in main() (NULL when it cannot be) */
static tb bft;
static char bf_skip[sizeof ((et_error *)0)->msg];

static int bf16_skipped(const char *what)
{
    if (bft.a) return 0;
    printf("check_backend: skipping %s: %s\n", what, bf_skip);
    return 1;
}

#ifdef ET_HAVE_CUDA
/* Tolerance of a bf16 GEMM against the cpu GEMM on the same bf16-rounded operands. Both
 * sum the same products exactly (bf16 x bf16 has at most 16 significant bits, exact in
 * fp32) and differ only in the fp32 additions: in any order, recursive summation of K
 * terms plus the value added into is within K u S of the exact sum, S = sum |terms|
 * (Higham, Accuracy and Stability, 4.2), u = 2^-24 on the cpu (round to nearest), and at
 * most about 1.25 K 2^-23 S on tensor cores, which align and truncate inside each block
 * of >= 4 products (Fasi et al., PeerJ CS 2021). So |got - cpu| <= 2 (K + 2) 2^-23 S,
 * with S from the same cpu GEMM on |operands|. */
static void same_bf16(const char *what, const pair *p, const float *bound, int K, const float *fp32,
                      int *distinct)
{
    float *got = hal(p->n);
    size_t i;
    ck_assert_int_eq(bft.be.download(bft.be.ctx, got, p->d, p->n * sizeof(float)), ET_OK);
    for (i = 0; i < p->n; i++) {
        double tol = 2.0 * (K + 2) * ldexp(1.0, -23) * bound[i];
        if (!(fabs((double)got[i] - p->h[i]) <= tol))
            ck_abort_msg("cuda+bf16 %s: element %zu of %zu is %.9g, cpu on bf16 operands %.9g (tolerance "
                         "%.3g from K %d, sum of |terms| %.6g)", what, i, p->n, got[i], p->h[i], tol, K,
                         bound[i]);
        if (fp32 && fabs((double)got[i] - fp32[i]) > tol) *distinct = 1;
    }
}

static float *habs(const float *x, size_t n)
{
    float *a = hal(n);
    size_t i;
    for (i = 0; i < n; i++) a[i] = fabsf(x[i]);
    return a;
}

static float *hround(const float *x, size_t n)
{
    float *a = hal(n);
    et_bf16_round_n(a, x, n);
    return a;
}

static float *hcopy(const float *x, size_t n)
{
    float *a = hal(n);
    memcpy(a, x, n * sizeof(float));
    return a;
}
#endif

/* the device's conversion kernel against et_bf16.h, bit for bit */
START_TEST(cuda_bf16_rounding_matches_host)
{
#ifdef ET_HAVE_CUDA
    size_t n = (size_t)NKNOWN + 0x10000u * NLOWS, i;
    float *x;
    uint16_t *got;
    et_error e = {0};
    if (bf16_skipped("cuda bf16 rounding")) return;
    x = malloc(n * sizeof *x);
    got = malloc(n * sizeof *got);
    ck_assert(x && got);
    for (i = 0; i < (size_t)NKNOWN; i++) x[i] = f32_of(known_in[i]);
    for (i = 0; i < 0x10000u * NLOWS; i++) x[NKNOWN + i] = f32_of((uint32_t)(i / NLOWS) << 16 | lows[i % NLOWS]);
    ck_assert_msg(et_cuda_bf16_convert((et_cuda *)et_accel_driver(bft.a)->ctx, got, x, n, &e) == ET_OK,
                  "%s", e.msg);
    for (i = 0; i < n; i++) {
        uint32_t xb;
        memcpy(&xb, &x[i], 4);
        ck_assert_msg(got[i] == bits16(x[i]), "device bf16(0x%08x) = 0x%04x, et_bf16.h 0x%04x", xb, got[i],
                      bits16(x[i]));
    }
    free(x);
    free(got);
#else
    bf16_skipped("cuda bf16 rounding");
#endif
}
END_TEST

/* matmul fwd/bwd in bf16 mode against the cpu on bf16-rounded operands, with the default
 * scratch and with one so small that every product runs in chunks of rows */
START_TEST(cuda_bf16_matmul)
{
#ifdef ET_HAVE_CUDA
    static const int sh[][3] = {{1, 1, 1},    {3, 5, 7},      {17, 33, 65},
                                {64, 64, 64}, {70, 129, 200}, {130, 48, 257}};
    static const size_t scratch[] = {0, 1000};
    et_cuda *cu;
    et_error e = {0};
    int i, sc, bias, distinct = 0;
    if (bf16_skipped("cuda bf16 matmul")) return;
    cu = (et_cuda *)et_accel_driver(bft.a)->ctx;
    for (sc = 0; sc < 2; sc++) {
        ck_assert_msg(et_cuda_set_bf16(cu, 1, scratch[sc], &e) == ET_OK, "%s", e.msg);
        for (i = 0; i < (int)(sizeof sh / sizeof sh[0]); i++)
            for (bias = 0; bias < 2; bias++) {
                tb *t = &bft;
                int N = sh[i][0], C = sh[i][1], OC = sh[i][2];
                size_t nI = (size_t)N * C, nW = (size_t)OC * C, nO = (size_t)N * OC;
                pair inp, w, b, o, dinp, dw, db, dout;
                float *ri, *rw, *rd, *bnd, *f32, *d0, *w0;
                begin(t);
                inp = rnd(t, nI); w = rnd(t, nW); b = rnd(t, OC); o = out(t, nO);
                ri = hround(inp.h, nI); rw = hround(w.h, nW);
                REF(matmul_fwd, o.h, ri, rw, bias ? b.h : NULL, N, C, OC);
                bnd = hal(nO);
                REF(matmul_fwd, bnd, habs(ri, nI), habs(rw, nW), bias ? habs(b.h, OC) : NULL, N, C, OC);
                f32 = hal(nO);
                REF(matmul_fwd, f32, inp.h, w.h, bias ? b.h : NULL, N, C, OC);
                RUN(matmul_fwd, o.d, inp.d, w.d, bias ? b.d : NULL, N, C, OC);
                same_bf16("matmul_fwd", &o, bnd, C, f32, &distinct);

                dinp = rnd(t, nI); dw = rnd(t, nW); db = rnd(t, OC); dout = rnd(t, nO);
                rd = hround(dout.h, nO);
                d0 = hcopy(dinp.h, nI); w0 = hcopy(dw.h, nW);
                REF(matmul_bwd, dinp.h, dw.h, NULL, rd, ri, rw, N, C, OC);
                REF(matmul_bwd, NULL, NULL, bias ? db.h : NULL, dout.h, inp.h, w.h, N, C, OC);
                RUN(matmul_bwd, dinp.d, dw.d, bias ? db.d : NULL, dout.d, inp.d, w.d, N, C, OC);
                bnd = habs(d0, nI);
                REF(matmul_bwd, bnd, NULL, NULL, habs(rd, nO), habs(ri, nI), habs(rw, nW), N, C, OC);
                same_bf16("matmul_bwd dinp", &dinp, bnd, OC, NULL, &distinct);
                bnd = habs(w0, nW);
                REF(matmul_bwd, NULL, bnd, NULL, habs(rd, nO), habs(ri, nI), habs(rw, nW), N, C, OC);
                same_bf16("matmul_bwd dw", &dw, bnd, N, NULL, &distinct);
                /* the bias gradient is an fp32 column sum of the fp32 dout in both modes */
                same(t, "matmul_bwd dbias (fp32)", &db, 1e-4, 1e-4);
                /* a weight rewritten in place: its bf16 copy must follow */
                fill(w.h, nW, -2.0f, 2.0f);
                resync(t, &w);
                REF(matmul_fwd, o.h, ri, hround(w.h, nW), NULL, N, C, OC);
                bnd = hal(nO);
                REF(matmul_fwd, bnd, habs(ri, nI), habs(hround(w.h, nW), nW), NULL, N, C, OC);
                RUN(matmul_fwd, o.d, inp.d, w.d, NULL, N, C, OC);
                same_bf16("matmul_fwd after the weight changed", &o, bnd, C, NULL, &distinct);
                /* and one an op rewrites (scale): the copy follows that too */
                {
                    size_t j;
                    for (j = 0; j < nW; j++) w.h[j] *= -0.75f;
                }
                RUN(scale, w.d, -0.75f, nW);
                REF(matmul_fwd, o.h, ri, hround(w.h, nW), NULL, N, C, OC);
                bnd = hal(nO);
                REF(matmul_fwd, bnd, habs(ri, nI), habs(hround(w.h, nW), nW), NULL, N, C, OC);
                RUN(matmul_fwd, o.d, inp.d, w.d, NULL, N, C, OC);
                same_bf16("matmul_fwd after scale rewrote the weight", &o, bnd, C, NULL, &distinct);
            }
    }
    /* an fp32 GEMM would have passed the bounds too if they could not tell it apart */
    ck_assert_msg(distinct, "cuda+bf16 matmul is indistinguishable from fp32: no bf16 rounding seen");
    ck_assert_int_eq(et_cuda_set_bf16(cu, 1, 0, &e), ET_OK);
#else
    bf16_skipped("cuda bf16 matmul");
#endif
}
END_TEST

/* Measured with the emulation (bf16_emulation_trains): jittering every GEMM result by a
 * relative 2^-24, 2^-22, ..., 2^-12 moved the 20 losses by 2.8e-5 to 6.6e-5 relative,
 * about the same at every size: a perturbation flips some bf16 roundings, and that, not
 * its size, sets the change. The device differs from the emulation by summation order
 * (GEMMs) and by its fp32 kernels (LayerNorm, attention: within 1e-4 of the cpu op by
 * op), i.e. by such perturbations. 1e-3 is 15 times the largest seen. It cannot tell
 * bf16 from fp32 (they differ by 1.0e-4 here): cuda_bf16_matmul proves the rounding. */
#define BF16_TRAIN_RTOL 1e-3

/* 20 training steps through et_runtime_open("cuda+bf16") against the emulation; and the
 * weight copies are exactly the GEMM weights in bf16 */
START_TEST(cuda_bf16_trains)
{
#ifdef ET_HAVE_CUDA
    float emu_l[TR_STEPS], got[TR_STEPS];
    et_runtime rt;
    et_error e = {0};
    et_tensor_info ti[ET_GPT_NTENSORS];
    size_t copies = 0, scr = 0, want = 0;
    int i;
    if (bf16_skipped("cuda bf16 training")) return;
    emu_losses(emu_l, 0.0);
    ck_assert_msg(et_runtime_open(&rt, "cuda+bf16", &tr_cfg, TR_B, TR_T, ET_GPT_TRAIN, 1, &e) == ET_OK,
                  "%s", e.msg);
    ck_assert_msg(strstr(et_accel_name(rt.accel), "bf16") != NULL, "%s", et_accel_name(rt.accel));
    tr_run(&rt.model, got, "cuda+bf16");
    same_losses("cuda+bf16 vs the cpu bf16 emulation", got, emu_l, BF16_TRAIN_RTOL);
    et_gpt_tensors(&rt.model.cfg, ti);
    for (i = 0; i < ET_GPT_NTENSORS; i++)
        if (!strcmp(ti[i].name, "wte") || !strcmp(ti[i].name, "qkvw") || !strcmp(ti[i].name, "attprojw") ||
            !strcmp(ti[i].name, "fcw") || !strcmp(ti[i].name, "fcprojw"))
            want += 2 * ti[i].count;
    et_cuda_bf16_bytes((et_cuda *)et_accel_driver(rt.accel)->ctx, &copies, &scr);
    printf("check_backend: cuda+bf16: weight copies %zu bytes (GEMM weights in bf16: %zu), operand "
           "scratch %zu bytes\n", copies, want, scr);
    ck_assert_uint_eq(copies, want);
    et_runtime_close(&rt);
#else
    bf16_skipped("cuda bf16 training");
#endif
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
    /* cuda's bf16 mode: a handle of its own, outside tbs (its GEMMs have their own bounds) */
    if (!et_accel_has("cuda")) {
        snprintf(bf_skip, sizeof bf_skip, "cuda is not in this build");
    } else {
        et_error e = {0};
        if (et_accel_open(&bft.a, "cuda+bf16", NULL, &bft.be, &e) != ET_OK ||
            et_accel_reserve(bft.a, ARENA_BYTES, &e) != ET_OK) {
            snprintf(bf_skip, sizeof bf_skip, "%s", e.msg);
            et_accel_close(bft.a);
            memset(&bft, 0, sizeof bft);
        } else {
            snprintf(bft.name, sizeof bft.name, "cuda+bf16");
            printf("check_backend: testing cuda+bf16 (%s)\n", et_accel_name(bft.a));
        }
    }
}

static void close_backends(void)
{
    int k;
    for (k = 0; k < ntb; k++) {
        if (tbs[k].is_fb) et_fallback_release(&tbs[k].fb);
        else et_accel_close(tbs[k].a);
    }
    et_accel_close(bft.a);
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
    tcase_add_test(tc, bf16_refused_where_absent);
    tcase_add_test(tc, bf16_rounding_bits);
    tcase_add_test(tc, bf16_emulation_trains);
    tcase_add_test(tc, cuda_bf16_rounding_matches_host);
    tcase_add_test(tc, cuda_bf16_matmul);
    tcase_add_test(tc, cuda_bf16_trains);
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

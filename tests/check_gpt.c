/* check_gpt.c - the model as a whole: the exact memory plan (just fits / one byte short),
 * the full gradient against finite differences (GPT-2's shape and a structurally pruned
 * one: head_dim and ffn set), bitwise determinism across task orders, input validation,
 * and that training lowers the loss. */
#include <string.h>
#include "et_check.h"
#include "et_cpu.h"
#include "et_gpt.h"
#include "et_rng.h"

static void scrambled_for(void *pool, int n, et_task_fn fn, void *arg)
{
    int i;
    (void)pool;
    for (i = n - 1; i >= 0; i--) fn(arg, i, (i * 5) % 3);
}
static const et_threads scrambled = {0, 3, scrambled_for};

static et_gpt_config tiny(void)
{
    et_gpt_config c = {0};
    c.vocab = 11; c.context = 8; c.layers = 2; c.heads = 2; c.channels = 8;
    et_gpt_config_check(&c);
    return c;
}

/* a shape GPT-2 cannot have: 3 heads of width 5 (attention width 15 != C = 8, and
 * 8 % 3 != 0) and an MLP of 12 (not 4C = 32) */
static et_gpt_config pruned(void)
{
    et_gpt_config c = tiny();
    c.heads = 3; c.head_dim = 5; c.ffn = 12;
    ck_assert_int_eq(et_gpt_config_check(&c), ET_OK);
    return c;
}

typedef struct {
    et_backend be;
    et_cpu_ctx cx;
    et_arena arena;
    void *buf;
    et_gpt m;
} rig;

static et_status rig_make(rig *r, et_gpt_config c, int B, int T, et_gpt_mode mode,
                          const et_threads *th, long slack)
{
    et_gpt_plan p;
    et_status s;
    et_cpu_backend_init(&r->be, &r->cx, th);
    ck_assert_int_eq(et_gpt_plan_compute(&c, B, T, mode, &r->be, &p), ET_OK);
    r->buf = et_test_aligned((size_t)((long)p.total + slack) + 64);
    ck_assert_int_eq(et_arena_init(&r->arena, r->buf, (size_t)((long)p.total + slack)), ET_OK);
    s = et_gpt_create(&r->m, &c, B, T, mode, &r->be, &r->arena);
    return s;
}

static void tokens(int *x, int n, int V, uint64_t seed)
{
    et_rng r;
    int i;
    et_rng_seed(&r, seed);
    for (i = 0; i < n; i++) x[i] = (int)et_rng_below(&r, (uint32_t)V);
}

START_TEST(plan_just_fits)
{
    et_gpt_config c = _i ? pruned() : tiny();
    rig r;
    et_gpt_plan p;
    int in[2 * 8], tg[2 * 8];
    et_adamw_config o = {1e-3f, 0.9f, 0.95f, 1e-8f, 0.1f, 1.0f};
    ck_assert_int_eq(rig_make(&r, c, 2, 8, ET_GPT_TRAIN, NULL, 0), ET_OK);
    et_gpt_plan_compute(&c, 2, 8, ET_GPT_TRAIN, &r.be, &p);
    ck_assert_uint_eq(p.total, p.io + p.params + p.grads + p.adam + p.acts + p.act_grads + p.scratch);
    ck_assert_uint_eq(p.nparams, r.m.nparams);
    ck_assert_int_eq(et_gpt_init_weights(&r.m, 1), ET_OK);
    tokens(in, 16, c.vocab, 1);
    tokens(tg, 16, c.vocab, 2);
    ck_assert_int_eq(et_gpt_forward(&r.m, in, tg, 2, 8), ET_OK);
    ck_assert_int_eq(et_gpt_zero_grad(&r.m), ET_OK);
    ck_assert_int_eq(et_gpt_backward(&r.m, 1.0f), ET_OK);
    ck_assert_int_eq(et_gpt_step(&r.m, &o), ET_OK);
    ck_assert_uint_eq(r.arena.high_water, p.total);
    ck_assert_uint_eq(et_arena_free_bytes(&r.arena), 0);
    free(r.buf);
}
END_TEST

START_TEST(plan_one_byte_short)
{
    et_gpt_config c = _i ? pruned() : tiny();
    rig r;
    int mode;
    for (mode = 0; mode < 2; mode++) {
        ck_assert_int_eq(rig_make(&r, c, 2, 8, (et_gpt_mode)mode, NULL, -1), ET_ERR_NOMEM);
        /* refused before any block was taken */
        ck_assert_uint_eq(r.arena.tail, 0);
        ck_assert_uint_eq(r.arena.high_water, 0);
        free(r.buf);
    }
}
END_TEST

START_TEST(inference_plan_smaller)
{
    et_gpt_config c = tiny();
    et_backend be;
    et_cpu_ctx cx;
    et_gpt_plan pi, pt;
    et_cpu_backend_init(&be, &cx, NULL);
    ck_assert_int_eq(et_gpt_plan_compute(&c, 4, 8, ET_GPT_INFER, &be, &pi), ET_OK);
    ck_assert_int_eq(et_gpt_plan_compute(&c, 4, 8, ET_GPT_TRAIN, &be, &pt), ET_OK);
    ck_assert_uint_eq(pi.grads + pi.adam + pi.act_grads, 0);
    ck_assert_uint_lt(pi.acts, pt.acts);
    ck_assert_int_eq(et_gpt_plan_compute(&c, 4, 9, ET_GPT_TRAIN, &be, &pt), ET_ERR_RANGE);
    c.heads = 3;
    ck_assert_int_eq(et_gpt_plan_compute(&c, 4, 8, ET_GPT_TRAIN, &be, &pt), ET_ERR_INVALID);
}
END_TEST

/* head_dim and ffn: GPT-2's values are stored as 0, others change the tensor shapes */
START_TEST(config_widths)
{
    et_gpt_config c = tiny(), p;
    et_tensor_info t[ET_GPT_NTENSORS], t0[ET_GPT_NTENSORS];
    size_t n0 = et_gpt_tensors(&c, t0), n;
    int i;
    c.head_dim = 4; c.ffn = 32; /* = C / NH and 4C */
    ck_assert_int_eq(et_gpt_config_check(&c), ET_OK);
    ck_assert_int_eq(c.head_dim, 0);
    ck_assert_int_eq(c.ffn, 0);
    ck_assert(et_gpt_config_is_gpt2(&c));
    ck_assert_uint_eq(et_gpt_tensors(&c, t), n0);
    for (i = 0; i < ET_GPT_NTENSORS; i++) {
        ck_assert_uint_eq(t[i].offset, t0[i].offset);
        ck_assert_int_eq(memcmp(t[i].shape, t0[i].shape, sizeof t[i].shape), 0);
    }
    c.head_dim = -1;
    ck_assert_int_eq(et_gpt_config_check(&c), ET_ERR_INVALID);
    c.head_dim = 0; c.ffn = -3;
    ck_assert_int_eq(et_gpt_config_check(&c), ET_ERR_INVALID);
    c.ffn = (1 << 20) + 1;
    ck_assert_int_eq(et_gpt_config_check(&c), ET_ERR_INVALID);
    c.ffn = 0; c.heads = 1 << 10; c.head_dim = 1 << 11; /* attention width 2^21 */
    ck_assert_int_eq(et_gpt_config_check(&c), ET_ERR_INVALID);
    p = pruned();
    ck_assert(!et_gpt_config_is_gpt2(&p));
    ck_assert_int_eq(et_gpt_attn_width(&p), 15);
    ck_assert_int_eq(et_gpt_ffn_width(&p), 12);
    n = et_gpt_tensors(&p, t);
    /* qkvw (L,3A,C), attprojw (L,C,A), fcw (L,F,C), fcprojw (L,C,F) */
    ck_assert_int_eq(t[4].shape[1], 45); ck_assert_int_eq(t[4].shape[2], 8);
    ck_assert_int_eq(t[5].shape[1], 45);
    ck_assert_int_eq(t[6].shape[1], 8); ck_assert_int_eq(t[6].shape[2], 15);
    ck_assert_int_eq(t[10].shape[1], 12); ck_assert_int_eq(t[11].shape[1], 12);
    ck_assert_int_eq(t[12].shape[1], 8); ck_assert_int_eq(t[12].shape[2], 12);
    ck_assert_uint_eq(n, n0 - 2 * (3 * 8 * 8 + 3 * 8 + 8 * 8 + 2 * 32 * 8 + 32)
                          + 2 * (3 * 15 * 8 + 3 * 15 + 8 * 15 + 2 * 12 * 8 + 12));
}
END_TEST

START_TEST(inference_matches_training_forward)
{
    et_gpt_config c = tiny();
    rig a, b;
    int in[3 * 7], tg[3 * 7];
    float la[11], lb[11];
    ck_assert_int_eq(rig_make(&a, c, 3, 7, ET_GPT_TRAIN, NULL, 0), ET_OK);
    ck_assert_int_eq(rig_make(&b, c, 3, 7, ET_GPT_INFER, NULL, 0), ET_OK);
    et_gpt_init_weights(&a.m, 9);
    et_gpt_init_weights(&b.m, 9);
    tokens(in, 21, c.vocab, 3);
    tokens(tg, 21, c.vocab, 4);
    ck_assert_int_eq(et_gpt_forward(&a.m, in, tg, 3, 7), ET_OK);
    ck_assert_int_eq(et_gpt_forward(&b.m, in, tg, 3, 7), ET_OK);
    ck_assert(a.m.mean_loss == b.m.mean_loss);
    et_gpt_logits(&a.m, 2, 6, la);
    et_gpt_logits(&b.m, 2, 6, lb);
    ck_assert_int_eq(memcmp(la, lb, sizeof la), 0);
    ck_assert_int_eq(et_gpt_backward(&b.m, 1.0f), ET_ERR_STATE);
    free(a.buf);
    free(b.buf);
}
END_TEST

/* Directional finite differences of the float model along one tensor at a time:
 * (L(p + h u) - L(p - h u)) / 2h against g . u, with u random on that tensor. */
START_TEST(model_gradient_fd)
{
    et_gpt_config c = _i ? pruned() : tiny();
    et_tensor_info t[ET_GPT_NTENSORS];
    rig r;
    int in[2 * 6], tg[2 * 6], i, k;
    float *p0, *p, *g;
    et_rng rng;
    ck_assert_int_eq(rig_make(&r, c, 2, 6, ET_GPT_TRAIN, NULL, 0), ET_OK);
    et_gpt_tensors(&c, t);
    p0 = malloc(sizeof(float) * r.m.nparams);
    p = malloc(sizeof(float) * r.m.nparams);
    g = malloc(sizeof(float) * r.m.nparams);
    et_rng_seed(&rng, 11);
    /* non-trivial weights: larger than GPT-2's init, random biases and gains */
    for (i = 0; i < (int)r.m.nparams; i++) p0[i] = 0.3f * et_rng_normal(&rng);
    for (i = t[0].offset + c.vocab * c.channels; i < (int)t[0].count; i++) p0[i] = 0.0f;
    tokens(in, 12, c.vocab, 5);
    tokens(tg, 12, c.vocab, 6);
    et_gpt_set_params(&r.m, p0);
    ck_assert_int_eq(et_gpt_forward(&r.m, in, tg, 2, 6), ET_OK);
    et_gpt_zero_grad(&r.m);
    ck_assert_int_eq(et_gpt_backward(&r.m, 1.0f), ET_OK);
    memcpy(g, r.m.grads_memory, sizeof(float) * r.m.nparams);
    for (k = 0; k < ET_GPT_NTENSORS; k++) {
        double gu = 0, fd, lp, lm, h = 1e-2, unorm = 0;
        float *u = malloc(sizeof(float) * t[k].count);
        size_t j;
        for (j = 0; j < t[k].count; j++) {
            u[j] = et_rng_normal(&rng);
            if (k == 0 && j >= (size_t)c.vocab * c.channels) u[j] = 0.0f;
            unorm += (double)u[j] * u[j];
        }
        for (j = 0; j < t[k].count; j++) u[j] /= (float)sqrt(unorm);
        for (j = 0; j < t[k].count; j++) gu += (double)g[t[k].offset + j] * u[j];
        memcpy(p, p0, sizeof(float) * r.m.nparams);
        for (j = 0; j < t[k].count; j++) p[t[k].offset + j] = p0[t[k].offset + j] + (float)h * u[j];
        et_gpt_set_params(&r.m, p);
        et_gpt_forward(&r.m, in, tg, 2, 6);
        lp = r.m.mean_loss;
        for (j = 0; j < t[k].count; j++) p[t[k].offset + j] = p0[t[k].offset + j] - (float)h * u[j];
        et_gpt_set_params(&r.m, p);
        et_gpt_forward(&r.m, in, tg, 2, 6);
        lm = r.m.mean_loss;
        fd = (lp - lm) / (2 * h);
        ck_assert_msg(fabs(fd - gu) <= 2e-3 + 2e-2 * fabs(gu),
                      "tensor %s: directional derivative %.6g, finite difference %.6g",
                      t[k].name, gu, fd);
        free(u);
    }
    free(p0); free(p); free(g); free(r.buf);
}
END_TEST

static void train_steps(const et_threads *th, int steps, float *losses, float *final_params,
                        size_t *np)
{
    et_gpt_config c = tiny();
    et_adamw_config o = {3e-3f, 0.9f, 0.95f, 1e-8f, 0.1f, 1.0f};
    rig r;
    int in[4 * 8], tg[4 * 8], s, i;
    ck_assert_int_eq(rig_make(&r, c, 4, 8, ET_GPT_TRAIN, th, 0), ET_OK);
    et_gpt_init_weights(&r.m, 123);
    /* a learnable sequence: next token = (token + 1) mod V */
    for (i = 0; i < 32; i++) { in[i] = (i * 3 + i / 8) % c.vocab; tg[i] = (in[i] + 1) % c.vocab; }
    for (s = 0; s < steps; s++) {
        ck_assert_int_eq(et_gpt_forward(&r.m, in, tg, 4, 8), ET_OK);
        losses[s] = r.m.mean_loss;
        ck_assert_int_eq(et_gpt_zero_grad(&r.m), ET_OK);
        ck_assert_int_eq(et_gpt_backward(&r.m, 1.0f), ET_OK);
        ck_assert_int_eq(et_gpt_step(&r.m, &o), ET_OK);
    }
    *np = r.m.nparams;
    if (final_params) et_gpt_get_params(&r.m, final_params);
    free(r.buf);
}

START_TEST(training_learns_and_is_deterministic)
{
    float l1[200], l2[200], p1[20000], p2[20000];
    size_t np;
    train_steps(NULL, 200, l1, p1, &np);
    ck_assert_uint_lt(np, 20000);
    ck_assert_msg(l1[199] < 0.2f * l1[0], "loss %.4f -> %.4f did not fall", l1[0], l1[199]);
    ET_CK_CLOSE(l1[0], log(11.0), 0.05, 0);
    train_steps(&scrambled, 200, l2, p2, &np);
    ck_assert_int_eq(memcmp(l1, l2, sizeof l1), 0);
    ck_assert_int_eq(memcmp(p1, p2, np * sizeof(float)), 0);
}
END_TEST

START_TEST(bad_inputs)
{
    et_gpt_config c = tiny();
    rig r;
    int in[2 * 4] = {0, 1, 2, 3, 4, 5, 6, 7}, tg[2 * 4] = {1, 2, 3, 4, 5, 6, 7, 8};
    ck_assert_int_eq(rig_make(&r, c, 2, 4, ET_GPT_TRAIN, NULL, 0), ET_OK);
    et_gpt_init_weights(&r.m, 1);
    ck_assert_int_eq(et_gpt_backward(&r.m, 1.0f), ET_ERR_STATE);
    in[3] = 11;
    ck_assert_int_eq(et_gpt_forward(&r.m, in, tg, 2, 4), ET_ERR_RANGE);
    in[3] = 3;
    tg[0] = -1;
    ck_assert_int_eq(et_gpt_forward(&r.m, in, tg, 2, 4), ET_ERR_RANGE);
    tg[0] = 1;
    ck_assert_int_eq(et_gpt_forward(&r.m, in, tg, 3, 4), ET_ERR_RANGE);
    ck_assert_int_eq(et_gpt_forward(&r.m, in, tg, 2, 5), ET_ERR_RANGE);
    ck_assert_int_eq(et_gpt_forward(&r.m, in, tg, 2, 4), ET_OK);
    ck_assert_int_eq(et_gpt_forward(&r.m, in, tg, 1, 3), ET_OK); /* smaller than planned */
    free(r.buf);
}
END_TEST

/* A backend with its own device arena: tensors go there, token buffers stay on the host,
 * each arena must hold exactly its part, and results equal the one-arena model's. */
START_TEST(device_arena_split)
{
    et_gpt_config c = tiny();
    et_backend be;
    et_cpu_ctx cx;
    et_gpt_plan p;
    et_arena host, dev;
    et_gpt m;
    void *hb, *db;
    int in[4 * 8], tg[4 * 8];
    float ref[200];
    size_t np;
    train_steps(NULL, 3, ref, NULL, &np);
    et_cpu_backend_init(&be, &cx, NULL);
    be.dev_arena = &dev;
    ck_assert_int_eq(et_gpt_plan_compute(&c, 4, 8, ET_GPT_TRAIN, &be, &p), ET_OK);
    ck_assert_uint_eq(p.host, p.io);
    ck_assert_uint_eq(p.host + p.device, p.total);
    hb = et_test_aligned(p.host);
    db = et_test_aligned(p.device);
    et_arena_init(&host, hb, p.host);
    et_arena_init(&dev, db, p.device - 64);
    ck_assert_int_eq(et_gpt_create(&m, &c, 4, 8, ET_GPT_TRAIN, &be, &host), ET_ERR_NOMEM);
    et_arena_init(&dev, db, p.device);
    ck_assert_int_eq(et_gpt_create(&m, &c, 4, 8, ET_GPT_TRAIN, &be, &host), ET_OK);
    ck_assert_uint_eq(et_arena_free_bytes(&host), 0);
    ck_assert_uint_eq(et_arena_free_bytes(&dev), 0);
    {
        et_adamw_config o = {3e-3f, 0.9f, 0.95f, 1e-8f, 0.1f, 1.0f};
        int i, st;
        et_gpt_init_weights(&m, 123);
        for (i = 0; i < 32; i++) { in[i] = (i * 3 + i / 8) % c.vocab; tg[i] = (in[i] + 1) % c.vocab; }
        for (st = 0; st < 3; st++) {
            ck_assert_int_eq(et_gpt_forward(&m, in, tg, 4, 8), ET_OK);
            ck_assert(m.mean_loss == ref[st]);
            et_gpt_zero_grad(&m);
            et_gpt_backward(&m, 1.0f);
            et_gpt_step(&m, &o);
        }
    }
    free(hb);
    free(db);
}
END_TEST

START_TEST(virtual_arena_never_touched)
{
    et_arena a;
    void *p;
    /* an address range with nothing behind it: allocation must not write to it */
    ck_assert_int_eq(et_arena_init_virtual(&a, (void *)(uintptr_t)0x100000, 4096), ET_OK);
    ck_assert_int_eq(et_arena_alloc(&a, 100, &p), ET_OK);
    ck_assert_ptr_eq(p, (void *)(uintptr_t)(0x100000 + 4096 - 128));
    ck_assert_int_eq(et_arena_init_virtual(&a, NULL, 4096), ET_ERR_INVALID);
}
END_TEST

static Suite *gpt_suite(void)
{
    Suite *s = suite_create("gpt");
    TCase *tc = tcase_create("gpt");
    tcase_add_loop_test(tc, plan_just_fits, 0, 2);       /* 1: head_dim and ffn set */
    tcase_add_loop_test(tc, plan_one_byte_short, 0, 2);
    tcase_add_test(tc, inference_plan_smaller);
    tcase_add_test(tc, config_widths);
    tcase_add_test(tc, inference_matches_training_forward);
    tcase_add_loop_test(tc, model_gradient_fd, 0, 2);
    tcase_add_test(tc, training_learns_and_is_deterministic);
    tcase_add_test(tc, bad_inputs);
    tcase_add_test(tc, device_arena_split);
    tcase_add_test(tc, virtual_arena_never_touched);
    suite_add_tcase(s, tc);
    return s;
}

ET_CHECK_MAIN(gpt_suite)

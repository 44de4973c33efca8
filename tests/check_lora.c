/* check_lora.c - on-device LoRA fine-tuning (compress/et_lora.h): the plan is exact (an
 * arena of exactly the plan fits and its high-water mark after a full step equals the
 * plan; one byte less is refused before any work), the untrained adapters reproduce the
 * W8A32 forward of compress/qgpt.c, every adapter gradient matches finite differences,
 * and a few steps lower the loss with SGD and AdamW. */
#include <string.h>
#include "et_check.h"
#include "et_lora.h"
#include "et_image.h"
#include "et_lora_file.h"
#include <unistd.h>

static et_tensor_info tinfo[ET_GPT_NTENSORS];

typedef struct { void *img; et_image im; et_gpt_config cfg; float *params; } fixture;

static void make(fixture *f, int L)
{
    et_gpt_config c = {65, 0, 16, L, 2, 16};
    size_t np, bn, n, i;
    void *blob;
    uint64_t z = 12345;
    et_gpt_config_check(&c);
    np = et_gpt_tensors(&c, tinfo);
    f->params = malloc(np * sizeof(float));
    for (i = 0; i < np; i++) {
        z = z * 6364136223846793005ull + 1442695040888963407ull;
        f->params[i] = ((float)(z >> 40) / 16777216.0f - 0.5f) * 0.4f;
    }
    for (i = 0; i < (size_t)L * 16; i++) { /* LayerNorm gains near 1 */
        f->params[tinfo[2].offset + i] = 1.0f + f->params[tinfo[2].offset + i] * 0.1f;
        f->params[tinfo[8].offset + i] = 1.0f + f->params[tinfo[8].offset + i] * 0.1f;
    }
    for (i = 0; i < 16; i++) f->params[tinfo[14].offset + i] = 1.0f;
    et_qgpt_tensors(&c, ET_QMODE_W8A32, NULL, &bn);
    blob = et_test_aligned(bn);
    ck_assert_int_eq(et_qgpt_quantize(&c, f->params, ET_QMODE_W8A32, NULL, NULL, blob, bn), ET_OK);
    et_image_size(&c, ET_QMODE_W8A32, 0, &n);
    f->img = et_test_aligned(n);
    ck_assert_int_eq(et_image_build(f->img, n, &c, ET_QMODE_W8A32, blob, bn, NULL, 0, NULL), ET_OK);
    ck_assert_int_eq(et_image_open(&f->im, f->img, n), ET_OK);
    f->cfg = c;
    free(blob);
}

static void drop(fixture *f) { free(f->img); free(f->params); }

static void seq(int *tok, int *tgt, int n, int seed)
{
    int i;
    for (i = 0; i < n; i++) tok[i] = (i * 7 + seed * 13 + i * i) % 65;
    for (i = 0; i < n; i++) tgt[i] = i + 1 < n ? tok[i + 1] : (tok[i] * 3) % 65;
}

START_TEST(plan_exact)
{
    fixture f;
    et_lora_config lc = {2, 0, 0, ET_LORA_ADAMW};
    et_lora_plan p;
    et_lora s;
    et_arena a;
    void *buf;
    int tok[12], tgt[12];
    float loss;
    make(&f, 2);
    ck_assert_int_eq(et_lora_plan_compute(&f.im, &lc, 12, &p), ET_OK);
    ck_assert_uint_eq(p.total, p.params + p.grads + p.opt + p.acts);
    ck_assert_uint_eq(p.nparams, 2u * 2 * (16 + 48 + 16 + 64));
    buf = et_test_aligned(p.total);
    /* one byte short: refused, arena untouched */
    et_arena_init(&a, buf, p.total - 1);
    ck_assert_int_eq(et_lora_create(&s, &f.im, &lc, 12, 1, &a), ET_ERR_NOMEM);
    ck_assert_uint_eq(a.head + a.tail, 0);
    ck_assert_uint_eq(a.high_water, 0);
    /* exactly the plan: fits, and a full step's high-water mark is the plan */
    et_arena_init(&a, buf, p.total);
    ck_assert_int_eq(et_lora_create(&s, &f.im, &lc, 12, 1, &a), ET_OK);
    seq(tok, tgt, 12, 1);
    ck_assert_int_eq(et_lora_accumulate(&s, tok, tgt, 12, 1.0f, &loss), ET_OK);
    ck_assert_int_eq(et_lora_step(&s, 1e-2f, 0.0f), ET_OK);
    ck_assert_uint_eq(a.high_water, p.total);
    ck_assert_uint_eq(et_arena_free_bytes(&a), 0);
    /* bad inputs */
    tok[3] = 65;
    ck_assert_int_eq(et_lora_loss(&s, tok, tgt, 12, &loss), ET_ERR_RANGE);
    ck_assert_int_eq(et_lora_loss(&s, tok, tgt, 13, &loss), ET_ERR_RANGE);
    lc.rank = 0;
    ck_assert_int_eq(et_lora_plan_compute(&f.im, &lc, 12, &p), ET_ERR_INVALID);
    free(buf);
    drop(&f);
}
END_TEST

/* B = 0 at start: the loss is the W8A32 model's */
START_TEST(matches_qgpt)
{
    fixture f;
    et_lora_config lc = {4, 1, 0, ET_LORA_SGD};
    et_lora_plan p;
    et_lora s;
    et_qgpt q;
    et_arena a, aq;
    size_t qn;
    void *buf, *qbuf;
    int tok[16], tgt[16];
    float loss;
    make(&f, 2);
    seq(tok, tgt, 16, 3);
    et_lora_plan_compute(&f.im, &lc, 16, &p);
    buf = et_test_aligned(p.total);
    et_arena_init(&a, buf, p.total);
    ck_assert_int_eq(et_lora_create(&s, &f.im, &lc, 16, 1, &a), ET_OK);
    ck_assert_int_eq(et_lora_loss(&s, tok, tgt, 16, &loss), ET_OK);
    ck_assert_int_eq(et_qgpt_plan(&f.cfg, ET_QMODE_W8A32, 1, 16, 1, &qn), ET_OK);
    qbuf = et_test_aligned(qn);
    et_arena_init(&aq, qbuf, qn);
    ck_assert_int_eq(et_qgpt_create(&q, &f.cfg, ET_QMODE_W8A32, f.im.blob, f.im.blob_bytes, 1, 16, NULL, &aq), ET_OK);
    ck_assert_int_eq(et_qgpt_forward(&q, tok, tgt, 1, 16), ET_OK);
    ET_CK_CLOSE(loss, q.mean_loss, 1e-4, 1e-5);
    free(qbuf); free(buf);
    drop(&f);
}
END_TEST

/* every adapter tensor of every layer against central differences (B made non-zero) */
START_TEST(gradients)
{
    fixture f;
    et_lora_config lc = {2, 0, 0, ET_LORA_SGD};
    et_lora_plan p;
    et_lora s;
    et_arena a;
    void *buf;
    int tok[10], tgt[10], checked = 0;
    size_t i, per = 2 * 16 + 2 * 48 + 2 * 16 + 2 * 64;
    float *g, loss;
    make(&f, 2);
    seq(tok, tgt, 10, 5);
    et_lora_plan_compute(&f.im, &lc, 10, &p);
    buf = et_test_aligned(p.total);
    et_arena_init(&a, buf, p.total);
    ck_assert_int_eq(et_lora_create(&s, &f.im, &lc, 10, 7, &a), ET_OK);
    for (i = 0; i < s.nparams; i++) s.params[i] += 0.3f * (float)((int)(i * 37 % 17) - 8) / 8.0f;
    ck_assert_int_eq(et_lora_accumulate(&s, tok, tgt, 10, 1.0f, &loss), ET_OK);
    g = malloc(s.nparams * sizeof *g);
    memcpy(g, s.grads, s.nparams * sizeof *g);
    for (i = 0; i < s.nparams; i += (i % per < 2 * 16 ? 5 : 23)) {
        float keep = s.params[i], lp, lm, eps = 1e-2f;
        double fd;
        s.params[i] = keep + eps;
        et_lora_loss(&s, tok, tgt, 10, &lp);
        s.params[i] = keep - eps;
        et_lora_loss(&s, tok, tgt, 10, &lm);
        s.params[i] = keep;
        fd = ((double)lp - lm) / (2.0 * eps);
        ck_assert_msg(fabs(fd - g[i]) <= 2e-3 + 5e-2 * fabs(fd), "param %zu: analytic %.6g, numeric %.6g", i,
                      (double)g[i], fd);
        checked++;
    }
    ck_assert_int_gt(checked, 20);
    free(g); free(buf);
    drop(&f);
}
END_TEST

START_TEST(training_lowers_loss)
{
    fixture f;
    int o;
    make(&f, 2);
    for (o = 0; o < 2; o++) {
        et_lora_config lc = {4, 0, 0, o ? ET_LORA_ADAMW : ET_LORA_SGD};
        et_lora_plan p;
        et_lora s;
        et_arena a;
        void *buf;
        int tok[16], tgt[16], it;
        float l0, l1;
        et_lora_plan_compute(&f.im, &lc, 16, &p);
        buf = et_test_aligned(p.total);
        et_arena_init(&a, buf, p.total);
        ck_assert_int_eq(et_lora_create(&s, &f.im, &lc, 16, 1, &a), ET_OK);
        seq(tok, tgt, 16, 9);
        et_lora_loss(&s, tok, tgt, 16, &l0);
        for (it = 0; it < 30; it++) {
            ck_assert_int_eq(et_lora_accumulate(&s, tok, tgt, 16, 0.5f, NULL), ET_OK);
            ck_assert_int_eq(et_lora_accumulate(&s, tok, tgt, 16, 0.5f, NULL), ET_OK);
            ck_assert_int_eq(et_lora_step(&s, o ? 1e-2f : 0.5f, 0.0f), ET_OK);
        }
        et_lora_loss(&s, tok, tgt, 16, &l1);
        ck_assert_msg(l1 < l0 - 0.1f, "%s: loss %.4f -> %.4f", o ? "adamw" : "sgd", l0, l1);
        free(buf);
    }
    drop(&f);
}
END_TEST

/* the adapter file round-trips; a flipped byte and a different session are refused */
START_TEST(adapter_file)
{
    fixture f;
    et_lora_config lc = {2, 1, 0, ET_LORA_SGD}, lc2 = {2, 2, 0, ET_LORA_SGD};
    et_lora_plan p;
    et_lora s, t, u;
    et_arena a, b, c;
    void *b1, *b2, *b3;
    char path[64];
    et_error e = {0};
    FILE *fp;
    size_t i;
    make(&f, 2);
    snprintf(path, sizeof path, "/tmp/check_lora_%ld.etlora", (long)getpid());
    et_lora_plan_compute(&f.im, &lc2, 8, &p);
    b1 = et_test_aligned(p.total); b2 = et_test_aligned(p.total); b3 = et_test_aligned(p.total);
    et_arena_init(&a, b1, p.total); et_arena_init(&b, b2, p.total); et_arena_init(&c, b3, p.total);
    ck_assert_int_eq(et_lora_create(&s, &f.im, &lc, 8, 1, &a), ET_OK);
    ck_assert_int_eq(et_lora_create(&t, &f.im, &lc, 8, 2, &b), ET_OK);
    ck_assert_int_eq(et_lora_create(&u, &f.im, &lc2, 8, 2, &c), ET_OK);
    for (i = 0; i < s.nparams; i++) s.params[i] = (float)i * 0.01f;
    ck_assert_int_eq(et_lora_save(path, &s, &e), ET_OK);
    ck_assert_int_eq(et_lora_load(path, &t, &e), ET_OK);
    ck_assert_int_eq(memcmp(s.params, t.params, s.nparams * sizeof(float)), 0);
    ck_assert_int_eq(et_lora_load(path, &u, &e), ET_ERR_INVALID);
    fp = fopen(path, "r+b");
    fseek(fp, 100, SEEK_SET);
    fputc(0x5a, fp);
    fclose(fp);
    ck_assert_int_eq(et_lora_load(path, &t, &e), ET_ERR_CRC);
    ck_assert_int_eq(truncate(path, 60), 0);
    ck_assert_int_eq(et_lora_load(path, &t, &e), ET_ERR_TRUNCATED);
    unlink(path);
    free(b1); free(b2); free(b3);
    drop(&f);
}
END_TEST

static Suite *lora_suite(void)
{
    Suite *s = suite_create("lora");
    TCase *t = tcase_create("lora");
    tcase_set_timeout(t, 60);
    tcase_add_test(t, plan_exact);
    tcase_add_test(t, matches_qgpt);
    tcase_add_test(t, gradients);
    tcase_add_test(t, training_lowers_loss);
    tcase_add_test(t, adapter_file);
    suite_add_tcase(s, t);
    return s;
}

ET_CHECK_MAIN(lora_suite)

/* check_lora.c - on-device LoRA fine-tuning (compress/et_lora.h): the plan is exact (an
 * arena of exactly the plan fits and its high-water mark after a full step equals the
 * plan; one byte less is refused before any work), with and without trained LayerNorms
 * and stored block inputs; the untrained adapters reproduce the W8A32 forward of
 * compress/qgpt.c (loss and logits); every adapter and LayerNorm gradient matches finite
 * differences; stored block inputs give bit-identical gradients; a few steps lower the
 * loss with SGD and AdamW; merging (et_lora_merge) gives an image whose loss is within
 * 5e-3 of image + adapters (measured 1.6e-5) while image alone is > 0.2 away, and changes
 * no byte outside the adapted rows; adapter files round-trip, are bound to their image and
 * still read version 1; and the CLI end to end: finetune --merge, eval/sample --image
 * [--adapters] (matching finetune's numbers), merge, refusals, plan budgets.
 * The task head (transfer learning): plan == high-water alone and with adapters,
 * LayerNorms, stored inputs (a head alone plans no backward buffers); its forward equals
 * the language-model head's when given the tied embedding (both poolings); W, b and
 * everything below it against finite differences; AdamW decays W, not b; training a head
 * alone and with adapters takes held-out accuracy from the zero head's to >= 90 %;
 * refusals; version 3 files (and version 2 still read); the CLI end to end (finetune
 * --head, eval's accuracy = finetune's, plan = high-water, bad labels refused). */
#include <string.h>
#include "et_check.h"
#include "et_lora.h"
#include "et_image.h"
#include "et_lora_file.h"
#include "et_image_file.h"
#include "et_tokenizer.h"
#include "et_crc32.h"
#include <unistd.h>

static et_tensor_info tinfo[ET_GPT_NTENSORS];

typedef struct { void *img; et_image im; et_gpt_config cfg; float *params; } fixture;

static void make(fixture *f, int L)
{
    et_gpt_config c;
    size_t np, bn, n, i;
    void *blob;
    uint64_t z = 12345;
    memset(&c, 0, sizeof c); /* GPT-2 shape: any optional field zero */
    c.vocab = 65; c.context = 16; c.layers = L; c.heads = 2; c.channels = 16;
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
    et_lora_config lc = {2, 0, 0, ET_LORA_ADAMW, 0, 0, 0, ET_LORA_POOL_MEAN};
    et_lora_plan p;
    et_lora s;
    et_arena a;
    void *buf;
    int tok[12], tgt[12];
    float loss;
    make(&f, 2);
    /* the loop variable: plain, LayerNorms trained, block inputs stored, both */
    lc.train_ln = _i & 1;
    lc.keep_inputs = _i >> 1;
    ck_assert_int_eq(et_lora_plan_compute(&f.im, &lc, 12, &p), ET_OK);
    ck_assert_uint_eq(p.total, p.params + p.grads + p.opt + p.acts + p.inputs);
    ck_assert_uint_eq(p.nparams, 2u * 2 * (16 + 48 + 16 + 64) + (lc.train_ln ? 16u * (4 * 2 + 2) : 0));
    ck_assert_uint_eq(p.inputs, lc.keep_inputs ? 2u * 12 * 16 * 4 : 0);
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
    lc.rank = 0; /* no adapters: valid only when something else trains */
    ck_assert_int_eq(et_lora_plan_compute(&f.im, &lc, 12, &p), lc.train_ln ? ET_OK : ET_ERR_INVALID);
    lc.rank = -1;
    ck_assert_int_eq(et_lora_plan_compute(&f.im, &lc, 12, &p), ET_ERR_INVALID);
    free(buf);
    drop(&f);
}
END_TEST

/* B = 0 at start: the loss is the W8A32 model's */
START_TEST(matches_qgpt)
{
    fixture f;
    et_lora_config lc = {4, 1, 0, ET_LORA_SGD, 0, 0, 0, ET_LORA_POOL_MEAN};
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
    et_lora_config lc = {2, 0, 0, ET_LORA_SGD, 0, 0, 0, ET_LORA_POOL_MEAN};
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
        et_lora_config lc = {4, 0, 0, o ? ET_LORA_ADAMW : ET_LORA_SGD, 0, 0, 0, ET_LORA_POOL_MEAN};
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
    et_lora_config lc = {2, 1, 0, ET_LORA_SGD, 0, 0, 0, ET_LORA_POOL_MEAN},
                   lc2 = {2, 2, 0, ET_LORA_SGD, 0, 0, 0, ET_LORA_POOL_MEAN};
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

/* the last position's logits: with adapters, -log softmax(logits)[target] is the last
 * token's loss (n L(n) - (n-1) L(n-1): the model is causal); with B = 0 they are the
 * W8A32 model's logits */
START_TEST(logits_last_row)
{
    fixture f;
    et_lora_config lc = {2, 0, 0, ET_LORA_SGD, 0, 0, 0, ET_LORA_POOL_MEAN};
    et_lora_plan p;
    et_lora s;
    et_qgpt q;
    et_arena a, aq;
    size_t qn, i;
    void *buf, *qbuf;
    int tok[12], tgt[12], v;
    float lg[65], ql[65], ln, ln1, mx = -1e30f;
    double z = 0.0;
    make(&f, 2);
    seq(tok, tgt, 12, 4);
    et_lora_plan_compute(&f.im, &lc, 12, &p);
    buf = et_test_aligned(p.total);
    et_arena_init(&a, buf, p.total);
    ck_assert_int_eq(et_lora_create(&s, &f.im, &lc, 12, 3, &a), ET_OK);
    /* B = 0: the W8A32 model's logits */
    ck_assert_int_eq(et_lora_logits(&s, tok, 12, lg), ET_OK);
    ck_assert_int_eq(et_qgpt_plan(&f.cfg, ET_QMODE_W8A32, 1, 12, 1, &qn), ET_OK);
    qbuf = et_test_aligned(qn);
    et_arena_init(&aq, qbuf, qn);
    ck_assert_int_eq(et_qgpt_create(&q, &f.cfg, ET_QMODE_W8A32, f.im.blob, f.im.blob_bytes, 1, 12, NULL, &aq), ET_OK);
    ck_assert_int_eq(et_qgpt_forward(&q, tok, NULL, 1, 12), ET_OK);
    ck_assert_int_eq(et_qgpt_logits(&q, 0, 11, ql), ET_OK);
    for (v = 0; v < 65; v++) ET_CK_CLOSE(lg[v], ql[v], 1e-4, 1e-4);
    /* adapters on: the cross-entropy of the returned row is the last token's loss */
    for (i = 0; i < s.nparams; i++) s.params[i] += 0.3f * (float)((int)(i * 37 % 17) - 8) / 8.0f;
    ck_assert_int_eq(et_lora_logits(&s, tok, 12, lg), ET_OK);
    for (v = 0; v < 65; v++) if (lg[v] > mx) mx = lg[v];
    for (v = 0; v < 65; v++) z += exp((double)lg[v] - mx);
    et_lora_loss(&s, tok, tgt, 12, &ln);
    et_lora_loss(&s, tok, tgt, 11, &ln1);
    ET_CK_CLOSE(-((double)lg[tgt[11]] - mx - log(z)), 12.0 * ln - 11.0 * ln1, 1e-3, 2e-4);
    ck_assert_int_eq(et_lora_logits(&s, tok, 13, lg), ET_ERR_RANGE);
    tok[0] = 65;
    ck_assert_int_eq(et_lora_logits(&s, tok, 12, lg), ET_ERR_RANGE);
    free(qbuf); free(buf);
    drop(&f);
}
END_TEST

/* mean loss of the session over a few fixed sequences */
static float mean_loss(et_lora *s, int n)
{
    int tok[16], tgt[16], k;
    float l, sum = 0.0f;
    for (k = 0; k < 4; k++) {
        seq(tok, tgt, n, 20 + k);
        ck_assert_int_eq(et_lora_loss(s, tok, tgt, n, &l), ET_OK);
        sum += l;
    }
    return sum / 4;
}

/* merge: the merged image without adapters is close to the image with them, far from
 * the image alone (so skipping the merge fails), and only the adapted rows change */
START_TEST(merge_close)
{
    fixture f;
    et_lora_config lc = {4, 1, 0, ET_LORA_SGD, 0, 0, 0, ET_LORA_POOL_MEAN},
                   l1 = {1, 1, 0, ET_LORA_SGD, 0, 0, 0, ET_LORA_POOL_MEAN};
    et_lora_plan p;
    et_lora s, m;
    et_arena a, b;
    et_image mi;
    void *buf, *buf2, *blob, *img;
    int tok[16], tgt[16], it, C = 16, L = 2;
    size_t n, bn, w_off, w_len, ws_off, i, changed = 0, outside = 0;
    float base, adapted, merged;
    const uint8_t *b0, *b1;
    make(&f, L);
    et_lora_plan_compute(&f.im, &lc, 16, &p);
    buf = et_test_aligned(p.total);
    et_arena_init(&a, buf, p.total);
    ck_assert_int_eq(et_lora_create(&s, &f.im, &lc, 16, 1, &a), ET_OK);
    base = mean_loss(&s, 16);
    for (it = 0; it < 40; it++) {
        seq(tok, tgt, 16, 20 + it % 4);
        ck_assert_int_eq(et_lora_accumulate(&s, tok, tgt, 16, 1.0f, NULL), ET_OK);
        ck_assert_int_eq(et_lora_step(&s, 0.5f, 0.0f), ET_OK);
    }
    adapted = mean_loss(&s, 16);
    bn = f.im.blob_bytes;
    blob = et_test_aligned(bn);
    ck_assert_int_eq(et_lora_merge(&s, &f.im, blob, bn - 1), ET_ERR_NOMEM);
    ck_assert_int_eq(et_lora_merge(&s, &f.im, (uint8_t *)blob + 4, bn), ET_ERR_INVALID);
    ck_assert_int_eq(et_lora_merge(&s, &f.im, (void *)(uintptr_t)f.im.blob, bn), ET_ERR_INVALID);
    ck_assert_int_eq(et_lora_merge(&s, &f.im, blob, bn), ET_OK);
    et_image_size(&f.cfg, ET_QMODE_W8A32, 0, &n);
    img = et_test_aligned(n);
    ck_assert_int_eq(et_image_build(img, n, &f.cfg, ET_QMODE_W8A32, blob, bn, NULL, 0, NULL), ET_OK);
    ck_assert_int_eq(et_image_open(&mi, img, n), ET_OK);
    ck_assert_uint_ne(mi.payload_crc, f.im.payload_crc);
    et_lora_plan_compute(&mi, &l1, 16, &p);
    buf2 = et_test_aligned(p.total);
    et_arena_init(&b, buf2, p.total);
    ck_assert_int_eq(et_lora_create(&m, &mi, &l1, 16, 1, &b), ET_OK); /* B = 0: the merged image alone */
    merged = mean_loss(&m, 16);
    fprintf(stderr, "merge: loss base %.6f, with adapters %.6f, merged image %.6f (|merged - adapters| %.2e)\n", base,
            adapted, merged, fabs((double)merged - adapted));
    ck_assert_msg(base - adapted > 0.2f, "training moved the loss by %g only", (double)(base - adapted));
    ck_assert_msg(fabs((double)merged - adapted) < 5e-3, "merged %.6f vs adapters %.6f", (double)merged, (double)adapted);
    ck_assert_msg(fabs((double)base - adapted) > 40 * 5e-3, "the tolerance would not catch a skipped merge");
    /* only layer 1's qkv and fc rows (weights and scales) differ */
    b0 = (const uint8_t *)f.im.blob;
    b1 = (const uint8_t *)blob;
    for (i = 0; i < bn; i++) {
        int in = 0, t;
        const void *wp[2], *sp[2];
        int oc[2];
        wp[0] = f.im.w.qkv.w; sp[0] = f.im.w.qkv.ws; oc[0] = 3 * C;
        wp[1] = f.im.w.fc.w; sp[1] = f.im.w.fc.ws; oc[1] = 4 * C;
        for (t = 0; t < 2; t++) {
            w_off = (size_t)((const uint8_t *)wp[t] - b0) + (size_t)(L - 1) * oc[t] * C;
            w_len = (size_t)oc[t] * C;
            ws_off = (size_t)((const uint8_t *)sp[t] - b0) + (size_t)(L - 1) * oc[t] * 4;
            if ((i >= w_off && i < w_off + w_len) || (i >= ws_off && i < ws_off + (size_t)oc[t] * 4)) in = 1;
        }
        if (b0[i] != b1[i]) { if (in) changed++; else outside++; }
    }
    ck_assert_uint_eq(outside, 0);
    ck_assert_uint_gt(changed, 1000);
    free(buf2); free(img); free(blob); free(buf);
    drop(&f);
}
END_TEST

/* adapters are bound to the image they were trained on; version 1 files (no binding)
 * still load; et_lora_open refuses another shape with both shapes in the message */
START_TEST(adapter_binding)
{
    fixture f, g, h;
    et_lora_config lc = {2, 1, 0, ET_LORA_SGD, 0, 0, 0, ET_LORA_POOL_MEAN};
    et_lora_plan p;
    et_lora s, t;
    et_arena a, b;
    void *b1, *b2, *ar = NULL;
    char path[64], v1[64];
    et_error e = {0};
    et_lora_file_info in;
    uint8_t hdr[40];
    uint32_t u, crc;
    uint64_t np;
    float one = 1.0f;
    FILE *fp;
    size_t i;
    make(&f, 2);
    make(&g, 2);
    for (i = 0; i < 5; i++) g.params[i] += 0.5f; /* same shape, other weights */
    {
        size_t bn, n;
        void *blob;
        et_qgpt_tensors(&g.cfg, ET_QMODE_W8A32, NULL, &bn);
        blob = et_test_aligned(bn);
        ck_assert_int_eq(et_qgpt_quantize(&g.cfg, g.params, ET_QMODE_W8A32, NULL, NULL, blob, bn), ET_OK);
        et_image_size(&g.cfg, ET_QMODE_W8A32, 0, &n);
        ck_assert_int_eq(et_image_build(g.img, n, &g.cfg, ET_QMODE_W8A32, blob, bn, NULL, 0, NULL), ET_OK);
        ck_assert_int_eq(et_image_open(&g.im, g.img, n), ET_OK);
        free(blob);
    }
    ck_assert_uint_ne(f.im.payload_crc, g.im.payload_crc);
    snprintf(path, sizeof path, "/tmp/check_lora_b%ld.etlora", (long)getpid());
    snprintf(v1, sizeof v1, "/tmp/check_lora_v%ld.etlora", (long)getpid());
    et_lora_plan_compute(&f.im, &lc, 8, &p);
    b1 = et_test_aligned(p.total); b2 = et_test_aligned(p.total);
    et_arena_init(&a, b1, p.total); et_arena_init(&b, b2, p.total);
    ck_assert_int_eq(et_lora_create(&s, &f.im, &lc, 8, 1, &a), ET_OK);
    ck_assert_int_eq(et_lora_create(&t, &g.im, &lc, 8, 2, &b), ET_OK);
    for (i = 0; i < s.nparams; i++) s.params[i] = (float)i * 0.01f;
    ck_assert_int_eq(et_lora_save(path, &s, &e), ET_OK);
    ck_assert_int_eq(et_lora_file_info_read(path, &in, &e), ET_OK);
    ck_assert_uint_eq(in.version, 3);
    ck_assert_uint_eq(in.image_crc, f.im.payload_crc);
    ck_assert_int_eq(in.rank, 2);
    ck_assert_int_eq(in.layers, 1);
    ck_assert_int_eq(et_lora_load(path, &t, &e), ET_ERR_INVALID);
    ck_assert_msg(strstr(e.msg, "payload CRC") != NULL, "%s", e.msg);
    /* a version 1 file of the same adapters: no binding, loads anywhere it fits */
    fp = fopen(v1, "wb");
    memcpy(hdr, ET_LORA_FILE_MAGIC, 8);
    u = 1; memcpy(hdr + 8, &u, 4);
    u = 2; memcpy(hdr + 12, &u, 4);
    u = 1; memcpy(hdr + 16, &u, 4);
    u = 2; memcpy(hdr + 20, &u, 4);
    u = 16; memcpy(hdr + 24, &u, 4);
    memcpy(hdr + 28, &one, 4);
    np = s.nparams; memcpy(hdr + 32, &np, 8);
    crc = et_crc32_update(et_crc32(hdr, 40), s.params, s.nparams * 4);
    fwrite(hdr, 1, 40, fp);
    fwrite(s.params, 4, s.nparams, fp);
    fwrite(&crc, 4, 1, fp);
    fclose(fp);
    ck_assert_int_eq(et_lora_load(v1, &t, &e), ET_OK);
    ck_assert_int_eq(memcmp(s.params, t.params, s.nparams * 4), 0);
    /* another shape */
    make(&h, 3);
    ck_assert_int_eq(et_lora_open(path, &h.im, "three.etimg", 8, &t, &ar, &e), ET_ERR_INVALID);
    ck_assert_msg(strstr(e.msg, "L=2") && strstr(e.msg, "three.etimg is L=3"), "%s", e.msg);
    free(ar);
    /* et_lora_open over the right image reproduces the saved adapters */
    ck_assert_int_eq(et_lora_open(path, &f.im, "f.etimg", 8, &t, &ar, &e), ET_OK);
    ck_assert_int_eq(memcmp(s.params, t.params, s.nparams * 4), 0);
    free(ar);
    unlink(path); unlink(v1);
    free(b1); free(b2);
    drop(&f); drop(&g); drop(&h);
}
END_TEST

/* trained LayerNorm gains and biases (blocks and final) against central differences */
START_TEST(gradients_ln)
{
    fixture f;
    et_lora_config lc = {2, 1, 0, ET_LORA_SGD, 1, 0, 0, ET_LORA_POOL_MEAN};
    et_lora_plan p;
    et_lora s;
    et_arena a;
    void *buf;
    int tok[10], tgt[10], checked = 0;
    size_t i;
    float *g, loss;
    make(&f, 2);
    seq(tok, tgt, 10, 6);
    et_lora_plan_compute(&f.im, &lc, 10, &p);
    buf = et_test_aligned(p.total);
    et_arena_init(&a, buf, p.total);
    ck_assert_int_eq(et_lora_create(&s, &f.im, &lc, 10, 7, &a), ET_OK);
    ck_assert_ptr_nonnull(s.ln);
    ck_assert_uint_eq(s.nparams - s.nadapt, 16u * 6);
    /* the copies start as the image's: the loss is the image's own */
    ck_assert_int_eq(memcmp(s.ln, f.im.w.ln1w + 16, 16 * sizeof(float)), 0);
    ck_assert_int_eq(memcmp(s.ln + 5 * 16, f.im.w.lnfb, 16 * sizeof(float)), 0);
    for (i = 0; i < s.nadapt; i++) s.params[i] += 0.3f * (float)((int)(i * 37 % 17) - 8) / 8.0f;
    for (i = s.nadapt; i < s.nparams; i++) s.params[i] += 0.1f * (float)((int)(i * 13 % 7) - 3) / 3.0f;
    ck_assert_int_eq(et_lora_accumulate(&s, tok, tgt, 10, 1.0f, &loss), ET_OK);
    g = malloc(s.nparams * sizeof *g);
    memcpy(g, s.grads, s.nparams * sizeof *g);
    for (i = s.nadapt; i < s.nparams; i += 3) {
        float keep = s.params[i], lp, lm, eps = 1e-2f;
        double fd;
        s.params[i] = keep + eps;
        et_lora_loss(&s, tok, tgt, 10, &lp);
        s.params[i] = keep - eps;
        et_lora_loss(&s, tok, tgt, 10, &lm);
        s.params[i] = keep;
        fd = ((double)lp - lm) / (2.0 * eps);
        ck_assert_msg(fabs(fd - g[i]) <= 2e-3 + 5e-2 * fabs(fd), "LayerNorm param %zu: analytic %.6g, numeric %.6g",
                      i - s.nadapt, (double)g[i], fd);
        checked++;
    }
    ck_assert_int_eq(checked, 32);
    free(g); free(buf);
    drop(&f);
}
END_TEST

/* stored block inputs change the memory and the work, not one bit of the loss or gradients */
START_TEST(keep_inputs_same)
{
    fixture f;
    et_lora_plan p0, p1;
    et_lora s0, s1;
    et_arena a0, a1;
    void *b0, *b1;
    int tok[16], tgt[16], k;
    float l0, l1;
    make(&f, 3);
    for (k = 0; k < 2; k++) {
        et_lora_config c0 = {2, 2, 0, ET_LORA_ADAMW, k, 0, 0, ET_LORA_POOL_MEAN},
                       c1 = {2, 2, 0, ET_LORA_ADAMW, k, 1, 0, ET_LORA_POOL_MEAN};
        et_lora_plan_compute(&f.im, &c0, 16, &p0);
        et_lora_plan_compute(&f.im, &c1, 16, &p1);
        ck_assert_uint_eq(p1.total - p0.total, 2u * 16 * 16 * 4);
        b0 = et_test_aligned(p0.total); b1 = et_test_aligned(p1.total);
        et_arena_init(&a0, b0, p0.total); et_arena_init(&a1, b1, p1.total);
        ck_assert_int_eq(et_lora_create(&s0, &f.im, &c0, 16, 5, &a0), ET_OK);
        ck_assert_int_eq(et_lora_create(&s1, &f.im, &c1, 16, 5, &a1), ET_OK);
        seq(tok, tgt, 16, 2);
        ck_assert_int_eq(et_lora_accumulate(&s0, tok, tgt, 16, 1.0f, &l0), ET_OK);
        ck_assert_int_eq(et_lora_accumulate(&s1, tok, tgt, 16, 1.0f, &l1), ET_OK);
        et_lora_step(&s0, 1e-2f, 0.0f);
        et_lora_step(&s1, 1e-2f, 0.0f);
        seq(tok, tgt, 13, 3);
        ck_assert_int_eq(et_lora_accumulate(&s0, tok, tgt, 13, 1.0f, &l0), ET_OK);
        ck_assert_int_eq(et_lora_accumulate(&s1, tok, tgt, 13, 1.0f, &l1), ET_OK);
        ck_assert(l0 == l1);
        ck_assert_int_eq(memcmp(s0.grads, s1.grads, s0.nparams * sizeof(float)), 0);
        ck_assert_uint_eq(a1.high_water, p1.total);
        free(b0); free(b1);
    }
    drop(&f);
}
END_TEST

/* merging trained LayerNorms: the merged image alone matches image + adapters + LayerNorms,
 * and the adapter file carries them (et_lora_open sizes the session from it) */
START_TEST(merge_ln)
{
    fixture f;
    et_lora_config lc = {2, 1, 0, ET_LORA_ADAMW, 1, 0, 0, ET_LORA_POOL_MEAN},
                   l1 = {1, 1, 0, ET_LORA_SGD, 0, 0, 0, ET_LORA_POOL_MEAN};
    et_lora_plan p;
    et_lora s, m, o;
    et_arena a, b;
    et_image mi;
    et_error e = {0};
    void *buf, *buf2, *blob, *img, *ar = NULL;
    int tok[16], tgt[16], it;
    size_t n, bn;
    float base, adapted, merged;
    char path[64];
    make(&f, 2);
    et_lora_plan_compute(&f.im, &lc, 16, &p);
    buf = et_test_aligned(p.total);
    et_arena_init(&a, buf, p.total);
    ck_assert_int_eq(et_lora_create(&s, &f.im, &lc, 16, 1, &a), ET_OK);
    base = mean_loss(&s, 16);
    for (it = 0; it < 40; it++) {
        seq(tok, tgt, 16, 20 + it % 4);
        ck_assert_int_eq(et_lora_accumulate(&s, tok, tgt, 16, 1.0f, NULL), ET_OK);
        ck_assert_int_eq(et_lora_step(&s, 2e-2f, 0.1f), ET_OK);
    }
    adapted = mean_loss(&s, 16);
    ck_assert_msg(memcmp(s.ln, f.im.w.ln1w + 16, 16 * sizeof(float)) != 0, "the LayerNorm gains did not train");
    bn = f.im.blob_bytes;
    blob = et_test_aligned(bn);
    ck_assert_int_eq(et_lora_merge(&s, &f.im, blob, bn), ET_OK);
    et_image_size(&f.cfg, ET_QMODE_W8A32, 0, &n);
    img = et_test_aligned(n);
    ck_assert_int_eq(et_image_build(img, n, &f.cfg, ET_QMODE_W8A32, blob, bn, NULL, 0, NULL), ET_OK);
    ck_assert_int_eq(et_image_open(&mi, img, n), ET_OK);
    ck_assert_int_eq(memcmp(mi.w.lnfw, s.ln + 4 * 16, 16 * sizeof(float)), 0);
    et_lora_plan_compute(&mi, &l1, 16, &p);
    buf2 = et_test_aligned(p.total);
    et_arena_init(&b, buf2, p.total);
    ck_assert_int_eq(et_lora_create(&m, &mi, &l1, 16, 1, &b), ET_OK);
    merged = mean_loss(&m, 16);
    fprintf(stderr, "merge with LayerNorms: loss base %.6f, trained %.6f, merged image %.6f (|diff| %.2e)\n", base, adapted,
            merged, fabs((double)merged - adapted));
    ck_assert_msg(base - adapted > 0.2f && fabs((double)merged - adapted) < 5e-3, "base %g trained %g merged %g",
                  (double)base, (double)adapted, (double)merged);
    /* file round trip */
    snprintf(path, sizeof path, "/tmp/check_lora_ln%ld.etlora", (long)getpid());
    ck_assert_int_eq(et_lora_save(path, &s, &e), ET_OK);
    ck_assert_int_eq(et_lora_open(path, &f.im, "f.etimg", 16, &o, &ar, &e), ET_OK);
    ck_assert_ptr_nonnull(o.ln);
    ck_assert_int_eq(memcmp(o.params, s.params, s.nparams * sizeof(float)), 0);
    ET_CK_CLOSE(mean_loss(&o, 16), adapted, 0, 0);
    free(ar);
    unlink(path);
    free(buf2); free(img); free(blob); free(buf);
    drop(&f);
}
END_TEST

// --- the task head (transfer learning): plan, forward, gradients, training, refusals, file

/* a session over f of config lc at T, in an exactly planned arena (*buf: free it) */
static void open_exact(et_lora *s, fixture *f, const et_lora_config *lc, int T, et_arena *a, void **buf, et_lora_plan *p)
{
    ck_assert_int_eq(et_lora_plan_compute(&f->im, lc, T, p), ET_OK);
    *buf = et_test_aligned(p->total);
    et_arena_init(a, *buf, p->total);
    ck_assert_int_eq(et_lora_create(s, &f->im, lc, T, 7, a), ET_OK);
}

/* plan == high-water for heads alone and with adapters, LayerNorms, stored inputs; one
 * byte short refused; a head alone plans no backward buffers */
START_TEST(head_plan_exact)
{
    /* rank, layers, opt, train_ln, keep_inputs, classes, pool */
    static const int cf[6][7] = {{0, 0, 0, 0, 0, 2, 0}, {0, 0, 1, 0, 1, 3, 1}, {2, 1, 0, 0, 0, 2, 0},
                                 {2, 0, 1, 1, 1, 4, 1}, {0, 1, 1, 1, 0, 2, 0}, {4, 2, 1, 0, 0, 5, 1}};
    const int *c = cf[_i];
    fixture f;
    et_lora_config lc = {c[0], c[1], 0, c[2] ? ET_LORA_ADAMW : ET_LORA_SGD, c[3], c[4], c[5],
                         c[6] ? ET_LORA_POOL_LAST : ET_LORA_POOL_MEAN};
    et_lora_config lm = {2, 0, 0, ET_LORA_SGD, 0, 0, 0, ET_LORA_POOL_MEAN};
    et_lora_plan p, plm;
    et_lora s;
    et_arena a;
    void *buf;
    int tok[12], tgt[12], la;
    float loss;
    size_t na;
    make(&f, 2);
    la = c[0] == 0 && !c[3] ? 0 : (c[1] ? c[1] : 2);
    na = (size_t)la * (9u * 16 * (size_t)c[0]) + (c[3] ? 16u * (4 * (size_t)la + 2) : 0);
    ck_assert_int_eq(et_lora_plan_compute(&f.im, &lc, 12, &p), ET_OK);
    ck_assert_uint_eq(p.total, p.params + p.grads + p.opt + p.acts + p.inputs);
    ck_assert_uint_eq(p.nhead, (size_t)c[5] * 17);
    ck_assert_uint_eq(p.nparams, na + p.nhead);
    ck_assert_uint_eq(p.inputs, c[4] ? (size_t)la * 12 * 16 * 4 : 0);
    ck_assert_int_eq(et_lora_plan_compute(&f.im, &lm, 12, &plm), ET_OK);
    if (la == 0) /* no (T,C) gradient, no dk/dv, no rows of a backward, no (Vp) row */
        /* DY, dk + dv, U + DU, r_dln, r_dg, r_log (Vp = 128), r_dp, r_uf + r_duf, tgt; less r_pool, r_cls */
        ck_assert_uint_eq(plm.acts - p.acts, 768 + 2 * 384 + 2 * 128 + 64 + 256 + 512 + 64 + 2 * 64 + 64 - 64 - 64);
    buf = et_test_aligned(p.total);
    et_arena_init(&a, buf, p.total - 1);
    ck_assert_int_eq(et_lora_create(&s, &f.im, &lc, 12, 1, &a), ET_ERR_NOMEM);
    ck_assert_uint_eq(a.head + a.tail, 0);
    et_arena_init(&a, buf, p.total);
    ck_assert_int_eq(et_lora_create(&s, &f.im, &lc, 12, 1, &a), ET_OK);
    ck_assert_int_eq(s.lc.layers, la);
    seq(tok, tgt, 12, 1);
    ck_assert_int_eq(et_lora_accumulate_class(&s, tok, 12, c[5] - 1, 1.0f, &loss), ET_OK);
    ET_CK_CLOSE(loss, log((double)c[5]), 1e-5, 1e-6); /* a zero head: every class equally likely */
    ck_assert_int_eq(et_lora_step(&s, 1e-2f, 0.1f), ET_OK);
    ck_assert_int_eq(et_lora_accumulate_class(&s, tok, 7, 0, 1.0f, &loss), ET_OK);
    ck_assert_uint_eq(a.high_water, p.total);
    ck_assert_uint_eq(et_arena_free_bytes(&a), 0);
    free(buf);
    drop(&f);
}
END_TEST

/* the head's forward against the language-model head: with W = the dequantized tied
 * embedding (K = V) and b = 0, last-token pooling gives the LM logits of the last
 * position and mean pooling the mean of the LM logits over positions (the head is linear
 * in the pooled feature); a zero head predicts class 0 */
START_TEST(head_matches_lm)
{
    fixture f;
    et_lora_config lm = {1, 1, 0, ET_LORA_SGD, 0, 0, 0, ET_LORA_POOL_MEAN};
    et_lora_config hc = {0, 0, 0, ET_LORA_SGD, 0, 0, 65, ET_LORA_POOL_LAST};
    et_lora_plan p;
    et_lora s, h;
    et_arena a, b;
    void *b1, *b2;
    int tok[10], tgt[10], v, t, k, cls = -1;
    float lg[65], hl[65];
    double mean[65];
    make(&f, 2);
    seq(tok, tgt, 10, 8);
    open_exact(&s, &f, &lm, 10, &a, &b1, &p);
    for (k = 0; k < 2; k++) {
        hc.head_pool = k ? ET_LORA_POOL_MEAN : ET_LORA_POOL_LAST;
        open_exact(&h, &f, &hc, 10, &b, &b2, &p);
        ck_assert_int_eq(et_lora_classify(&h, tok, 10, hl, &cls), ET_OK);
        ck_assert_int_eq(cls, 0);
        for (v = 0; v < 65; v++) ck_assert(hl[v] == 0.0f);
        for (v = 0; v < 65; v++)
            for (t = 0; t < 16; t++) h.hw[v * 16 + t] = f.im.w.wte_s[v] * (float)f.im.w.wte[v * 16 + t];
        ck_assert_int_eq(et_lora_classify(&h, tok, 10, hl, &cls), ET_OK);
        for (v = 0; v < 65; v++) mean[v] = 0.0;
        for (t = 1; t <= 10; t++) {
            ck_assert_int_eq(et_lora_logits(&s, tok, t, lg), ET_OK);
            for (v = 0; v < 65; v++) mean[v] += lg[v] / 10.0;
        }
        for (v = 0; v < 65; v++) ET_CK_CLOSE(hl[v], k ? mean[v] : (double)lg[v], 1e-4, 1e-4);
        for (v = 0; v < 65; v++) ck_assert(hl[cls] >= hl[v]);
        free(b2);
    }
    free(b1);
    drop(&f);
}
END_TEST

/* the head's W and b, the adapters below it and the trained LayerNorms (final included)
 * against central differences, for both poolings; and a head alone */
START_TEST(head_gradients)
{
    fixture f;
    et_lora_config lc = {2, 1, 0, ET_LORA_SGD, 1, 0, 3, _i & 1 ? ET_LORA_POOL_LAST : ET_LORA_POOL_MEAN};
    et_lora_plan p;
    et_lora s;
    et_arena a;
    void *buf;
    int tok[10], tgt[10], checked[3] = {0, 0, 0};
    size_t i, nh;
    float *g, loss;
    if (_i >= 2) { lc.rank = 0; lc.train_ln = 0; } /* a head alone */
    make(&f, 2);
    seq(tok, tgt, 10, 11);
    open_exact(&s, &f, &lc, 10, &a, &buf, &p);
    nh = s.nparams - s.nadapt - s.nln;
    ck_assert_uint_eq(nh, 3u * 17);
    for (i = 0; i < s.nadapt; i++) s.params[i] += 0.3f * (float)((int)(i * 37 % 17) - 8) / 8.0f;
    for (i = s.nadapt; i < s.nadapt + s.nln; i++) s.params[i] += 0.1f * (float)((int)(i * 13 % 7) - 3) / 3.0f;
    for (i = s.nadapt + s.nln; i < s.nparams; i++) s.params[i] = 0.5f * (float)((int)(i * 29 % 19) - 9) / 9.0f;
    ck_assert_int_eq(et_lora_accumulate_class(&s, tok, 10, 1, 1.0f, &loss), ET_OK);
    g = malloc(s.nparams * sizeof *g);
    memcpy(g, s.grads, s.nparams * sizeof *g);
    for (i = 0; i < s.nparams; i += (i < s.nadapt ? 7 : i < s.nadapt + s.nln ? 3 : 1)) {
        float keep = s.params[i], lp = 0, lm = 0, eps = 1e-2f, lg[3];
        double fd, z;
        int part = i < s.nadapt ? 0 : i < s.nadapt + s.nln ? 1 : 2, k;
        for (k = 0; k < 2; k++) {
            s.params[i] = keep + (k ? -eps : eps);
            ck_assert_int_eq(et_lora_classify(&s, tok, 10, lg, NULL), ET_OK);
            z = log(exp((double)lg[0]) + exp((double)lg[1]) + exp((double)lg[2]));
            if (k) lm = (float)(z - lg[1]); else lp = (float)(z - lg[1]);
        }
        s.params[i] = keep;
        fd = ((double)lp - lm) / (2.0 * eps);
        ck_assert_msg(fabs(fd - g[i]) <= 2e-3 + 5e-2 * fabs(fd), "%s param %zu: analytic %.6g, numeric %.6g",
                      part == 0 ? "adapter" : part == 1 ? "LayerNorm" : "head", i, (double)g[i], fd);
        checked[part]++;
    }
    ck_assert_int_eq(checked[2], 51);
    if (_i < 2) ck_assert(checked[0] > 30 && checked[1] > 20);
    else ck_assert(checked[0] == 0 && checked[1] == 0);
    /* the gradient is not trivially zero where it should not be */
    for (i = s.nadapt + s.nln, loss = 0; i < s.nparams; i++) loss += fabsf(g[i]);
    ck_assert_msg(loss > 0.1f, "head gradient norm %g", (double)loss);
    free(g); free(buf);
    drop(&f);
}
END_TEST

/* labels from the tokens: class 1 when the sequence holds more tokens >= 33 than below */
static int label_of(const int *tok, int n)
{
    int i, hi = 0;
    for (i = 0; i < n; i++) hi += tok[i] >= 33;
    return 2 * hi > n;
}

/* n random tokens of 1..6 (hi 0) or 41..46 (hi 1): separable through the random
 * fixture's features (with 32 tokens a side its mean-pooled features cap a linear head
 * near 80 %: a random base's features are weak) */
static void rand_seq(int *tok, int n, uint64_t *z, int hi)
{
    int i;
    for (i = 0; i < n; i++) {
        *z = *z * 6364136223846793005ull + 1442695040888963407ull;
        tok[i] = (int)((*z >> 33) % 6) + hi * 40 + 1;
    }
}

/* training a head alone (frozen base) and a head with adapters on a separable task:
 * held-out accuracy from chance to (nearly) all; the image is untouched */
START_TEST(head_training)
{
    fixture f;
    int k;
    make(&f, 2);
    for (k = 0; k < 2; k++) {
        et_lora_config lc = {k ? 2 : 0, 1, 0, ET_LORA_ADAMW, 0, 0, 2, ET_LORA_POOL_MEAN};
        et_lora_plan p;
        et_lora s;
        et_arena a;
        void *buf;
        int tok[12], it, i, right0 = 0, right1 = 0, cls;
        uint64_t z = 99;
        float l0 = 0, l1 = 0, lg[2];
        uint32_t crc = et_crc32(f.img, f.im.bytes);
        open_exact(&s, &f, &lc, 12, &a, &buf, &p);
        for (it = 0; it < 300; it++) {
            int n = 6 + (it / 2) % 7;
            rand_seq(tok, n, &z, it & 1);
            ck_assert_int_eq(et_lora_accumulate_class(&s, tok, n, label_of(tok, n), 1.0f, it < 20 ? &lg[0] : NULL), ET_OK);
            if (it < 20) l0 += lg[0] / 20;
            ck_assert_int_eq(et_lora_step(&s, 2e-2f, 0.0f), ET_OK);
            if (it == 0) { /* the first step moved only the head: B = 0 and W = 0 leave the adapters no gradient */
                for (i = 0; i < (int)s.nadapt; i++) ck_assert(s.m[i] == 0.0f);
                for (i = 0; i < 2 * 16; i++) if (s.m[s.nadapt + (size_t)i] != 0.0f) break;
                ck_assert_int_lt(i, 32);
            }
        }
        z = 12345;
        for (it = 0; it < 100; it++) {
            int n = 6 + it % 7, y;
            rand_seq(tok, n, &z, it % 3 == 0);
            y = label_of(tok, n);
            ck_assert_int_eq(et_lora_classify(&s, tok, n, lg, &cls), ET_OK);
            right1 += cls == y;
            right0 += y == 0; /* a zero head says 0 */
            l1 += (float)(log(exp((double)lg[0]) + exp((double)lg[1])) - lg[y]) / 100;
        }
        fprintf(stderr, "head %s: train loss %.4f -> held-out %.4f; accuracy %d%% (class 0 everywhere: %d%%)\n",
                k ? "+ adapters" : "alone", (double)l0, (double)l1, right1, right0);
        ck_assert_msg(right1 >= 90 && right1 > right0 + 20, "accuracy %d%%, zero head %d%%", right1, right0);
        ck_assert_uint_eq(et_crc32(f.img, f.im.bytes), crc);
        free(buf);
    }
    drop(&f);
}
END_TEST

/* AdamW's decoupled weight decay: on the adapters and the head's W, not on the LayerNorms
 * or the head's b (zero gradients: only the decay moves anything) */
START_TEST(head_decay)
{
    fixture f;
    et_lora_config lc = {2, 1, 0, ET_LORA_ADAMW, 1, 0, 3, ET_LORA_POOL_MEAN};
    et_lora_plan p;
    et_lora s;
    et_arena a;
    void *buf;
    size_t i, hb;
    make(&f, 2);
    open_exact(&s, &f, &lc, 8, &a, &buf, &p);
    for (i = 0; i < s.nparams; i++) s.params[i] = 1.0f;
    ck_assert_int_eq(et_lora_step(&s, 0.1f, 0.5f), ET_OK);
    hb = s.nparams - 3;
    for (i = 0; i < s.nparams; i++) {
        int decays = i < s.nadapt || (i >= s.nadapt + s.nln && i < hb);
        ck_assert_msg(fabsf(s.params[i] - (decays ? 0.95f : 1.0f)) < 1e-6f, "param %zu (%s): %.7g", i,
                      i < s.nadapt ? "adapter" : i < s.nadapt + s.nln ? "LayerNorm" : i < hb ? "head W" : "head b",
                      (double)s.params[i]);
    }
    free(buf);
    drop(&f);
}
END_TEST

/* what a head session refuses, and what a config may not be */
START_TEST(head_refusals)
{
    fixture f;
    et_lora_config lc = {0, 0, 0, ET_LORA_SGD, 0, 0, 2, ET_LORA_POOL_MEAN}, bad;
    et_lora_config lm = {1, 1, 0, ET_LORA_SGD, 0, 0, 0, ET_LORA_POOL_MEAN};
    et_lora_plan p;
    et_lora s, t;
    et_arena a, b;
    void *b1, *b2;
    int tok[8], tgt[8];
    float loss, lg[65];
    make(&f, 2);
    seq(tok, tgt, 8, 2);
    open_exact(&s, &f, &lc, 8, &a, &b1, &p);
    ck_assert_int_eq(et_lora_accumulate_class(&s, tok, 8, 2, 1.0f, &loss), ET_ERR_RANGE);
    ck_assert_int_eq(et_lora_accumulate_class(&s, tok, 8, -1, 1.0f, &loss), ET_ERR_RANGE);
    ck_assert_int_eq(et_lora_accumulate_class(&s, tok, 9, 0, 1.0f, &loss), ET_ERR_RANGE);
    ck_assert_int_eq(et_lora_accumulate_class(&s, tok, 0, 0, 1.0f, &loss), ET_ERR_INVALID);
    ck_assert_int_eq(et_lora_loss(&s, tok, tgt, 8, &loss), ET_ERR_UNSUPPORTED);
    ck_assert_int_eq(et_lora_accumulate(&s, tok, tgt, 8, 1.0f, &loss), ET_ERR_UNSUPPORTED);
    ck_assert_int_eq(et_lora_logits(&s, tok, 8, lg), ET_ERR_UNSUPPORTED);
    tok[2] = 65;
    ck_assert_int_eq(et_lora_classify(&s, tok, 8, lg, NULL), ET_ERR_RANGE);
    open_exact(&t, &f, &lm, 8, &b, &b2, &p);
    ck_assert_int_eq(et_lora_classify(&t, tok, 8, lg, NULL), ET_ERR_INVALID);
    ck_assert_int_eq(et_lora_accumulate_class(&t, tok, 8, 0, 1.0f, &loss), ET_ERR_INVALID);
    bad = lc; bad.head_classes = 1;
    ck_assert_int_eq(et_lora_plan_compute(&f.im, &bad, 8, &p), ET_ERR_INVALID);
    bad.head_classes = ET_LORA_MAX_CLASSES + 1;
    ck_assert_int_eq(et_lora_plan_compute(&f.im, &bad, 8, &p), ET_ERR_INVALID);
    bad = lc; bad.head_pool = (et_lora_pool)2;
    ck_assert_int_eq(et_lora_plan_compute(&f.im, &bad, 8, &p), ET_ERR_INVALID);
    bad = lc; bad.head_classes = 0; /* rank 0 and nothing else: nothing would train */
    ck_assert_int_eq(et_lora_plan_compute(&f.im, &bad, 8, &p), ET_ERR_INVALID);
    bad.train_ln = 1; /* LayerNorms alone train */
    ck_assert_int_eq(et_lora_plan_compute(&f.im, &bad, 8, &p), ET_OK);
    bad = lc; bad.head_classes = ET_LORA_MAX_CLASSES;
    ck_assert_int_eq(et_lora_plan_compute(&f.im, &bad, 8, &p), ET_OK);
    free(b1); free(b2);
    drop(&f);
}
END_TEST

/* head files: version 3 round trip (et_lora_open sizes the session from the header),
 * a session without the head refused naming the flags, version 2 still read, a version 2
 * file with a head field and a malformed head refused */
START_TEST(head_file)
{
    fixture f;
    et_lora_config lc = {2, 1, 0, ET_LORA_SGD, 1, 0, 3, ET_LORA_POOL_LAST};
    et_lora_config no = {2, 1, 0, ET_LORA_SGD, 1, 0, 0, ET_LORA_POOL_MEAN};
    et_lora_config alone = {0, 0, 0, ET_LORA_SGD, 0, 0, 2, ET_LORA_POOL_MEAN};
    et_lora_plan p;
    et_lora s, t, o;
    et_arena a, b;
    et_lora_file_info in;
    et_error e = {0};
    void *b1, *b2, *ar = NULL;
    char path[64], v2[64];
    uint8_t *raw;
    size_t n, i;
    uint32_t u, crc;
    int tok[8], tgt[8];
    float l1[3], l2[3];
    FILE *fp;
    make(&f, 2);
    seq(tok, tgt, 8, 3);
    snprintf(path, sizeof path, "/tmp/check_lora_h%ld.etlora", (long)getpid());
    snprintf(v2, sizeof v2, "/tmp/check_lora_h2%ld.etlora", (long)getpid());
    open_exact(&s, &f, &lc, 8, &a, &b1, &p);
    for (i = 0; i < s.nparams; i++) s.params[i] += (float)(i % 11) * 0.01f;
    ck_assert_int_eq(et_lora_save(path, &s, &e), ET_OK);
    ck_assert_int_eq(et_lora_file_info_read(path, &in, &e), ET_OK);
    ck_assert_uint_eq(in.version, 3);
    ck_assert_int_eq(in.head_classes, 3);
    ck_assert_int_eq(in.head_pool, 1);
    ck_assert_uint_eq(in.targets, ET_LORA_FILE_T_QKV | ET_LORA_FILE_T_FC | ET_LORA_FILE_T_LN | ET_LORA_FILE_T_HEAD);
    ck_assert_int_eq(et_lora_open(path, &f.im, "f.etimg", 8, &o, &ar, &e), ET_OK);
    ck_assert_int_eq(o.lc.head_classes, 3);
    ck_assert_int_eq(memcmp(o.params, s.params, s.nparams * 4), 0);
    ck_assert_int_eq(et_lora_classify(&s, tok, 8, l1, NULL), ET_OK);
    ck_assert_int_eq(et_lora_classify(&o, tok, 8, l2, NULL), ET_OK);
    ck_assert_int_eq(memcmp(l1, l2, sizeof l1), 0);
    free(ar);
    /* into a session without the head: refused, the message says which flags fit */
    open_exact(&t, &f, &no, 8, &b, &b2, &p);
    ck_assert_int_eq(et_lora_load(path, &t, &e), ET_ERR_INVALID);
    ck_assert_msg(strstr(e.msg, "3-class head") && strstr(e.msg, "--head classes=3,pool=last"), "%s", e.msg);
    free(b2);
    /* a head alone: rank 0, no blocks */
    open_exact(&t, &f, &alone, 8, &b, &b2, &p);
    ck_assert_int_eq(t.lc.layers, 0);
    ck_assert_uint_eq(t.nparams, 2u * 17);
    t.params[3] = 0.5f;
    ck_assert_int_eq(et_lora_save(v2, &t, &e), ET_OK);
    ck_assert_int_eq(et_lora_open(v2, &f.im, "f.etimg", 8, &o, &ar, &e), ET_OK);
    ck_assert(o.params[3] == 0.5f && o.lc.rank == 0 && o.lc.layers == 0);
    free(ar);
    free(b2);
    /* a version 2 file (adapters + LayerNorms, no head) still loads */
    open_exact(&t, &f, &no, 8, &b, &b2, &p);
    for (i = 0; i < t.nparams; i++) t.params[i] = (float)i * 1e-3f;
    ck_assert_int_eq(et_lora_save(v2, &t, &e), ET_OK);
    raw = et_test_slurp(v2, &n);
    u = 2; memcpy(raw + 8, &u, 4);
    crc = et_crc32(raw, n - 4); memcpy(raw + n - 4, &crc, 4);
    fp = fopen(v2, "wb"); fwrite(raw, 1, n, fp); fclose(fp);
    ck_assert_int_eq(et_lora_file_info_read(v2, &in, &e), ET_OK);
    ck_assert_uint_eq(in.version, 2);
    ck_assert_int_eq(et_lora_open(v2, &f.im, "f.etimg", 8, &o, &ar, &e), ET_OK);
    ck_assert_int_eq(memcmp(o.params, t.params, t.nparams * 4), 0);
    free(ar);
    /* ... but not with a head field set (reserved before version 3) */
    u = 2; memcpy(raw + 56, &u, 4);
    crc = et_crc32(raw, n - 4); memcpy(raw + n - 4, &crc, 4);
    fp = fopen(v2, "wb"); fwrite(raw, 1, n, fp); fclose(fp);
    ck_assert_int_eq(et_lora_file_info_read(v2, &in, &e), ET_ERR_FORMAT);
    free(raw);
    /* version 3 with a 1-class head, or a head bit without classes */
    raw = et_test_slurp(path, &n);
    u = 1; memcpy(raw + 56, &u, 4);
    fp = fopen(v2, "wb"); fwrite(raw, 1, n, fp); fclose(fp);
    ck_assert_int_eq(et_lora_file_info_read(v2, &in, &e), ET_ERR_FORMAT);
    ck_assert_msg(strstr(e.msg, "malformed head"), "%s", e.msg);
    u = 0; memcpy(raw + 56, &u, 4);
    fp = fopen(v2, "wb"); fwrite(raw, 1, n, fp); fclose(fp);
    ck_assert_int_eq(et_lora_file_info_read(v2, &in, &e), ET_ERR_FORMAT);
    free(raw);
    unlink(path); unlink(v2);
    free(b1); free(b2);
    drop(&f);
}
END_TEST

// --- the CLI end to end: finetune --merge, eval and sample of images with adapters, merge, plan budgets

static double after(const char *out, const char *key)
{
    const char *p = strstr(out, key);
    double v = -1;
    ck_assert_msg(p != NULL, "no '%s' in:\n%s", key, out);
    ck_assert_int_eq(sscanf(p + strlen(key), "%lf", &v), 1);
    return v;
}

START_TEST(cli_image)
{
    fixture f;
    const char *cli = et_test_cli();
    char dir[96], img[128], merged[128], merged2[128], text[128], small[128], out[8192];
    char *words[] = {"the food was good ", "service was slow ", "great place ", "never again ", "tasty and cheap "};
    et_tokenizer *tok;
    et_error e = {0};
    void *tb;
    size_t tn, la, lb, i;
    uint8_t *ma, *mb;
    double before, aft, e_base, e_ad, e_merged;
    FILE *fp;
    int rc;
    uint64_t z = 7;
    make(&f, 2);
    snprintf(dir, sizeof dir, "/tmp/check_lora_cli_%ld", (long)getpid());
    snprintf(img, sizeof img, "%s.etimg", dir);
    snprintf(merged, sizeof merged, "%s_m.etimg", dir);
    snprintf(merged2, sizeof merged2, "%s_m2.etimg", dir);
    snprintf(small, sizeof small, "%s_s.etimg", dir);
    snprintf(text, sizeof text, "%s.txt", dir);
    fp = fopen(text, "w");
    for (i = 0; i < 300; i++) {
        z = z * 6364136223846793005ull + 1442695040888963407ull;
        fputs(words[(z >> 33) % 5], fp);
        if (i % 7 == 6) fputc('\n', fp);
    }
    fclose(fp);
    {
        size_t n;
        uint8_t *t = et_test_slurp(text, &n);
        ck_assert_int_eq(et_tok_train_char((const char *)t, n, &tok), ET_OK);
        free(t);
    }
    ck_assert_int_eq(et_tok_serialize(tok, &tb, &tn), ET_OK);
    ck_assert_int_eq(et_image_export(img, ET_IMAGE_FMT_BIN, &f.cfg, f.params, tb, tn, NULL, &e), ET_OK);
    /* finetune with --merge */
    rc = et_test_run(out, sizeof out, "%s finetune --image %s --data %s --lora 4 -t 16 --steps 60 --lr 0.3 --log-every 60 "
                     "--val-windows 20 --out %s --merge %s", cli, img, text, dir, merged);
    ck_assert_msg(rc == 0, "%s", out);
    before = after(out, "val loss before ");
    aft = after(out, "val loss after ");
    ck_assert_msg(before - aft > 0.3, "%s", out);
    /* eval: the image alone and with the adapters reproduce finetune's held-out numbers */
    rc = et_test_run(out, sizeof out, "%s eval --image %s --data %s -t 16 --val-frac 0.1 --windows 20", cli, img, text);
    ck_assert_msg(rc == 0, "%s", out);
    e_base = after(out, "\nloss ");
    rc = et_test_run(out, sizeof out, "%s eval --image %s --adapters %s/adapters.etlora --data %s -t 16 --val-frac 0.1 "
                     "--windows 20", cli, img, dir, text);
    ck_assert_msg(rc == 0, "%s", out);
    e_ad = after(out, "\nloss ");
    ET_CK_CLOSE(e_base, before, 0, 6e-5);
    ET_CK_CLOSE(e_ad, aft, 0, 6e-5);
    /* the merged image alone is close to image + adapters, and far from the image alone */
    rc = et_test_run(out, sizeof out, "%s eval --image %s --data %s -t 16 --val-frac 0.1 --windows 20", cli, merged, text);
    ck_assert_msg(rc == 0, "%s", out);
    e_merged = after(out, "\nloss ");
    fprintf(stderr, "cli merge: held-out loss image %.6f, + adapters %.6f, merged image %.6f (|diff| %.2e)\n", e_base, e_ad,
            e_merged, fabs(e_merged - e_ad));
    ck_assert_msg(fabs(e_merged - e_ad) < 5e-3 && fabs(e_base - e_ad) > 40 * 5e-3, "base %g adapters %g merged %g", e_base,
                  e_ad, e_merged);
    /* merge as its own command writes the same bytes */
    rc = et_test_run(out, sizeof out, "%s merge --image %s --adapters %s/adapters.etlora --out %s", cli, img, dir, merged2);
    ck_assert_msg(rc == 0, "%s", out);
    ma = et_test_slurp(merged, &la);
    mb = et_test_slurp(merged2, &lb);
    ck_assert_uint_eq(la, lb);
    ck_assert_int_eq(memcmp(ma, mb, la), 0);
    free(ma); free(mb);
    /* adapters on the image they were merged into: refused */
    rc = et_test_run(out, sizeof out, "%s eval --image %s --adapters %s/adapters.etlora --data %s", cli, merged, dir, text);
    ck_assert_msg(rc == 1 && strstr(out, "payload CRC") && strstr(out, "merged into"), "%s", out);
    /* ... and on a model of another shape */
    {
        fixture g;
        make(&g, 3);
        ck_assert_int_eq(et_image_export(small, ET_IMAGE_FMT_BIN, &g.cfg, g.params, tb, tn, NULL, &e), ET_OK);
        drop(&g);
    }
    rc = et_test_run(out, sizeof out, "%s sample --image %s --adapters %s/adapters.etlora -n 5", cli, small, dir);
    ck_assert_msg(rc == 1 && strstr(out, "adapters for a model of L=2"), "%s", out);
    /* sample: greedy from image + adapters equals greedy from the merged image here */
    rc = et_test_run(out, sizeof out, "%s sample --image %s --adapters %s/adapters.etlora --prompt 'the ' -n 30 "
                     "--temperature 0", cli, img, dir);
    ck_assert_msg(rc == 0 && !strncmp(out, "the ", 4) && strlen(out) >= 30, "%s", out);
    rc = et_test_run(out, sizeof out, "%s sample --image /nonexistent.etimg", cli);
    ck_assert_msg(rc == 1 && strstr(out, "cannot open"), "%s", out);
    /* plan against budgets */
    rc = et_test_run(out, sizeof out, "%s plan --image %s --lora 4 -t 16 --ram 1M --flash 1M --board b", cli, img);
    ck_assert_msg(rc == 0 && strstr(out, "b: everything fits"), "%s", out);
    rc = et_test_run(out, sizeof out, "%s plan --image %s --lora 4 -t 16 --ram 14K --flash 1K --board b", cli, img);
    ck_assert_msg(rc == 1 && strstr(out, "b flash 1024 bytes") && strstr(out, "DOES NOT FIT") &&
                  strstr(out, "needs") && strstr(out, "longest sequence that fits"), "%s", out);
    rc = et_test_run(out, sizeof out, "%s plan --image %s --lora 4 -t 16 --arena 2K --ram 1M", cli, img);
    ck_assert_msg(rc == 1 && strstr(out, "the firmware reserves"), "%s", out);
    et_tok_free(tok);
    free(tb);
    unlink(img); unlink(merged); unlink(merged2); unlink(small); unlink(text);
    snprintf(out, sizeof out, "%s/adapters.etlora", dir);
    unlink(out);
    rmdir(dir);
    drop(&f);
}
END_TEST

/* the task head through the CLI: finetune --head on a tiny labelled file (accuracy from
 * the zero head's to nearly all), eval of the saved head reproducing finetune's held-out
 * accuracy, plan's bytes = finetune's plan = its high-water mark, and every refusal */
START_TEST(cli_head)
{
    fixture f;
    const char *cli = et_test_cli();
    char dir[96], img[128], lab[128], bad[128], out[8192], cmd[600];
    static const char *pos[] = {"babe", "dace", "cab", "bead", "faced"}, *neg[] = {"rust", "wry", "tuxs", "yurt", "vows"};
    et_tokenizer *tok;
    et_error e = {0};
    void *tb;
    size_t tn, n;
    double acc0, acc1, acc_eval, plan, hw;
    FILE *fp;
    int rc, i, k;
    uint64_t z = 5;
    uint8_t *t;
    make(&f, 2);
    snprintf(dir, sizeof dir, "/tmp/check_lora_head_%ld", (long)getpid());
    snprintf(img, sizeof img, "%s.etimg", dir);
    snprintf(lab, sizeof lab, "%s.tsv", dir);
    snprintf(bad, sizeof bad, "%s_bad.tsv", dir);
    fp = fopen(lab, "w");
    for (i = 0; i < 150; i++) {
        int y = (int)((z >> 40) & 1), w = 2 + (int)((z >> 20) % 2);
        for (k = 0; k < w; k++) {
            z = z * 6364136223846793005ull + 1442695040888963407ull;
            fprintf(fp, "%s%s", k ? " " : "", (y ? pos : neg)[(z >> 33) % 5]);
        }
        fprintf(fp, i % 7 == 3 ? "\t%d \r\n" : "\t%d\n", y); /* a space and a CR after the class are allowed */
        if (i % 40 == 5) fputs("\n", fp);                     /* so are blank lines */
    }
    fclose(fp);
    t = et_test_slurp(lab, &n);
    ck_assert_int_eq(et_tok_train_char((const char *)t, n, &tok), ET_OK);
    free(t);
    ck_assert_int_eq(et_tok_serialize(tok, &tb, &tn), ET_OK);
    ck_assert_int_eq(et_image_export(img, ET_IMAGE_FMT_BIN, &f.cfg, f.params, tb, tn, NULL, &e), ET_OK);
    /* the head alone over the frozen base */
    rc = et_test_run(out, sizeof out, "%s finetune --image %s --data %s --head classes=2 --opt adamw --lr 2e-2 -t 16 "
                     "--steps 300 --log-every 100 --val-frac 0.2 --out %s", cli, img, lab, dir);
    ck_assert_msg(rc == 0, "%s", out);
    ck_assert_msg(strstr(out, "120 train + 30 held-out examples (every 5th line)"), "%s", out);
    acc0 = after(out, "held-out before: accuracy ");
    acc1 = after(out, "held-out after: accuracy ");
    plan = after(out, " plan ");
    hw = after(out, "arena high-water ");
    fprintf(stderr, "cli head: held-out accuracy %.4f -> %.4f; plan %.0f, high-water %.0f\n", acc0, acc1, plan, hw);
    ck_assert_msg(acc1 >= 0.9 && acc1 > acc0 + 0.25, "%s", out);
    ck_assert_msg(hw == plan && strstr(out, "= plan"), "%s", out);
    rc = et_test_run(out, sizeof out, "%s plan --image %s --head classes=2 --opt adamw -t 16", cli, img);
    ck_assert_msg(rc == 0 && after(out, "total ") == plan && strstr(out, "2-class head") && strstr(out, "base frozen"), "%s", out);
    /* eval of the saved head prints finetune's held-out accuracy */
    rc = et_test_run(out, sizeof out, "%s eval --image %s --adapters %s/adapters.etlora --data %s -t 16 --val-frac 0.2", cli,
                     img, dir, lab);
    ck_assert_msg(rc == 0, "%s", out);
    acc_eval = after(out, "\naccuracy ");
    ck_assert_msg(acc_eval == acc1 && strstr(out, "30 examples"), "%s", out);
    /* all 150 lines: eval without --val-frac = finetune --steps 0 --val-data of the saved head */
    rc = et_test_run(out, sizeof out, "%s eval --image %s --adapters %s/adapters.etlora --data %s -t 16", cli, img, dir, lab);
    ck_assert_msg(rc == 0 && strstr(out, "150 examples"), "%s", out);
    acc_eval = after(out, "\naccuracy ");
    rc = et_test_run(out, sizeof out, "%s finetune --image %s --data %s --val-data %s --head classes=2 --adapters "
                     "%s/adapters.etlora --steps 0 -t 16", cli, img, lab, lab, dir);
    ck_assert_msg(rc == 0 && after(out, "held-out with these adapters: accuracy ") == acc_eval && strstr(out, "/150)"), "%s",
                  out);
    /* a head with adapters and LayerNorms, reading the last token */
    rc = et_test_run(out, sizeof out, "%s finetune --image %s --data %s --head classes=2,pool=last --lora 2 --lora-layers 1 "
                     "--train-ln --opt adamw --lr 2e-2 -t 16 --steps 200 --log-every 100 --val-frac 0.2 --out %s_2", cli, img,
                     lab, dir);
    ck_assert_msg(rc == 0 && strstr(out, "lora rank 2 on 1 layers + LayerNorms") && strstr(out, "= plan"), "%s", out);
    acc1 = after(out, "held-out after: accuracy ");
    rc = et_test_run(out, sizeof out, "%s eval --image %s --adapters %s_2/adapters.etlora --data %s -t 16 --val-frac 0.2", cli,
                     img, dir, lab);
    ck_assert_msg(rc == 0 && after(out, "\naccuracy ") == acc1 && strstr(out, "last token"), "%s", out);
    /* rank 0 without a head: LayerNorms alone, on the text; merged, they are copied exactly */
    rc = et_test_run(out, sizeof out, "%s finetune --image %s --data %s --lora 0 --train-ln --lora-layers 1 --opt adamw "
                     "-t 16 --steps 20 --log-every 20 --val-windows 5 --out %s_3 --merge %s_m.etimg", cli, img, lab, dir, dir);
    ck_assert_msg(rc == 0 && strstr(out, "lora rank 0 on 1 layers + LayerNorms") && strstr(out, "= plan"), "%s", out);
    acc1 = after(out, "val loss after ");
    rc = et_test_run(out, sizeof out, "%s eval --image %s_m.etimg --data %s -t 16 --val-frac 0.1 --windows 5", cli, dir, lab);
    ck_assert_msg(rc == 0, "%s", out);
    ET_CK_CLOSE(after(out, "\nloss "), acc1, 0, 6e-5);
    rc = et_test_run(out, sizeof out, "%s finetune --image %s --data %s --lora 0 --out %s_3", cli, img, lab, dir);
    ck_assert_msg(rc == 2 && strstr(out, "nothing to train"), "%s", out);
    /* refusals: labels outside the head, not numbers, no TAB; K < 2; --merge; sample and merge of a head */
    snprintf(cmd, sizeof cmd, "%s finetune --image %s --data %s --head classes=2 -t 16 --steps 1 --out %s", cli, img, bad, dir);
    fp = fopen(bad, "w"); fputs("babe cab\t1\nrust wry\t2\n", fp); fclose(fp);
    rc = et_test_run(out, sizeof out, "%s", cmd);
    ck_assert_msg(rc == 1 && strstr(out, "_bad.tsv:2: class 2 is out of range for a 2-class head (0..1"), "%s", out);
    fp = fopen(bad, "w"); fputs("babe cab\t1\n\nrust wry\tno\n", fp); fclose(fp);
    rc = et_test_run(out, sizeof out, "%s", cmd);
    ck_assert_msg(rc == 1 && strstr(out, "_bad.tsv:3: class 'no' is not a number"), "%s", out);
    fp = fopen(bad, "w"); fputs("babe cab\t-1\n", fp); fclose(fp);
    rc = et_test_run(out, sizeof out, "%s", cmd);
    ck_assert_msg(rc == 1 && strstr(out, "_bad.tsv:1: class '-1' is not a number"), "%s", out);
    fp = fopen(bad, "w"); fputs("babe cab 1\n", fp); fclose(fp);
    rc = et_test_run(out, sizeof out, "%s", cmd);
    ck_assert_msg(rc == 1 && strstr(out, "_bad.tsv:1: no TAB before a class"), "%s", out);
    fp = fopen(bad, "w"); fputs("babe cab\t99999999999\n", fp); fclose(fp);
    rc = et_test_run(out, sizeof out, "%s", cmd);
    ck_assert_msg(rc == 1 && strstr(out, "out of range"), "%s", out);
    rc = et_test_run(out, sizeof out, "%s eval --image %s --adapters %s/adapters.etlora --data %s -t 16", cli, img, dir, bad);
    ck_assert_msg(rc == 1 && strstr(out, "out of range for a 2-class head"), "%s", out);
    rc = et_test_run(out, sizeof out, "%s finetune --image %s --data %s --head classes=1 --out %s", cli, img, lab, dir);
    ck_assert_msg(rc == 2 && strstr(out, "--head expects classes=K"), "%s", out);
    rc = et_test_run(out, sizeof out, "%s finetune --image %s --data %s --head classes=two --out %s", cli, img, lab, dir);
    ck_assert_msg(rc == 2 && strstr(out, "--head expects classes=K"), "%s", out);
    rc = et_test_run(out, sizeof out, "%s finetune --image %s --data %s --head 2 --merge %s_m.etimg --out %s", cli, img, lab,
                     dir, dir);
    ck_assert_msg(rc == 2 && strstr(out, "no place for a task head"), "%s", out);
    rc = et_test_run(out, sizeof out, "%s sample --image %s --adapters %s/adapters.etlora -n 3", cli, img, dir);
    ck_assert_msg(rc == 1 && strstr(out, "2-class task head"), "%s", out);
    rc = et_test_run(out, sizeof out, "%s merge --image %s --adapters %s/adapters.etlora --out %s_m.etimg", cli, img, dir, dir);
    ck_assert_msg(rc == 1 && strstr(out, "no place for"), "%s", out);
    /* language-model fine-tuning from a head's file: refused, naming the flags that fit it */
    rc = et_test_run(out, sizeof out, "%s finetune --image %s --data %s --adapters %s/adapters.etlora --steps 0 -t 16", cli, img,
                     lab, dir);
    ck_assert_msg(rc == 1 && strstr(out, "--head classes=2,pool=mean"), "%s", out);
    et_tok_free(tok);
    free(tb);
    unlink(img); unlink(lab); unlink(bad);
    snprintf(out, sizeof out, "%s/adapters.etlora", dir);
    unlink(out);
    rmdir(dir);
    snprintf(out, sizeof out, "%s_2/adapters.etlora", dir);
    unlink(out);
    snprintf(out, sizeof out, "%s_2", dir);
    rmdir(out);
    snprintf(out, sizeof out, "%s_3/adapters.etlora", dir);
    unlink(out);
    snprintf(out, sizeof out, "%s_3", dir);
    rmdir(out);
    snprintf(out, sizeof out, "%s_m.etimg", dir);
    unlink(out);
    drop(&f);
}
END_TEST

static Suite *lora_suite(void)
{
    Suite *s = suite_create("lora");
    TCase *t = tcase_create("lora");
    tcase_set_timeout(t, 60);
    tcase_add_loop_test(t, plan_exact, 0, 4);
    tcase_add_test(t, matches_qgpt);
    tcase_add_test(t, gradients);
    tcase_add_test(t, training_lowers_loss);
    tcase_add_test(t, adapter_file);
    tcase_add_test(t, logits_last_row);
    tcase_add_test(t, merge_close);
    tcase_add_test(t, gradients_ln);
    tcase_add_test(t, keep_inputs_same);
    tcase_add_test(t, merge_ln);
    tcase_add_test(t, adapter_binding);
    tcase_add_loop_test(t, head_plan_exact, 0, 6);
    tcase_add_test(t, head_matches_lm);
    tcase_add_loop_test(t, head_gradients, 0, 4);
    tcase_add_test(t, head_training);
    tcase_add_test(t, head_refusals);
    tcase_add_test(t, head_decay);
    tcase_add_test(t, head_file);
    tcase_add_test(t, cli_image);
    tcase_add_test(t, cli_head);
    suite_add_tcase(s, t);
    return s;
}

ET_CHECK_MAIN(lora_suite)

/* check_prune_struct.c - structured pruning (compress/prune_struct.c, host/compress_struct.c)
 * and the generalised GPT shape it produces (head_dim, ffn): the shrunk model computes
 * what the full model computes with the dropped heads' / neurons' attproj / fcproj input
 * columns zeroed (an independent reference built here); scores find dead units and equal
 * a direct computation; selection ranks and ties; the int8 model of a pruned shape;
 * checkpoint and quantized-file round trips of the new fields (and the old files still
 * read); every refusal; and `edgetrain compress --prune heads=N` end to end. */
#include <string.h>
#include <sys/stat.h>
#include "et_check_model.h"
#include "et_ckpt.h"
#include "et_cpu.h"
#include "et_crc32.h"
#include "et_gpt.h"
#include "et_image.h"
#include "et_prune_struct.h"
#include "et_qmodel.h"
#include "et_rng.h"
#include "et_runtime.h"

static et_gpt_config cfg_of(int V, int T, int L, int NH, int C, int hd, int F)
{
    et_gpt_config c = {0};
    c.vocab = V; c.context = T; c.layers = L; c.heads = NH; c.channels = C; c.head_dim = hd; c.ffn = F;
    ck_assert_int_eq(et_gpt_config_check(&c), ET_OK);
    return c;
}

static float *random_params(const et_gpt_config *c, uint64_t seed, size_t *n)
{
    et_tensor_info t[ET_GPT_NTENSORS];
    et_rng r;
    size_t i, np = et_gpt_tensors(c, t);
    float *p = malloc(sizeof(float) * np);
    et_rng_seed(&r, seed);
    /* larger than GPT-2's init, so attention is far from uniform and every unit matters */
    for (i = 0; i < np; i++) p[i] = 0.3f * et_rng_normal(&r);
    for (i = (size_t)c->vocab * c->channels; i < t[0].count; i++) p[i] = 0.0f;
    *n = np;
    return p;
}

static void tokens(int *x, int n, int V, uint64_t seed)
{
    et_rng r;
    int i;
    et_rng_seed(&r, seed);
    for (i = 0; i < n; i++) x[i] = (int)et_rng_below(&r, (uint32_t)V);
}

/* logits (B,T,V) of one forward of a model with these parameters */
static float *logits_of(const et_gpt_config *c, const float *params, const int *in, int B, int T)
{
    et_test_model r;
    float *out = malloc(sizeof(float) * (size_t)B * T * c->vocab);
    int b, t;
    et_test_model_make(&r, *c, B, T, ET_GPT_INFER);
    ck_assert_int_eq(et_gpt_set_params(&r.m, params), ET_OK);
    ck_assert_int_eq(et_gpt_forward(&r.m, in, NULL, B, T), ET_OK);
    for (b = 0; b < B; b++)
        for (t = 0; t < T; t++)
            ck_assert_int_eq(et_gpt_logits(&r.m, b, t, out + ((size_t)b * T + t) * c->vocab), ET_OK);
    free(r.mem);
    return out;
}

static int in_list(const int *idx, int n, int v)
{
    int i;
    for (i = 0; i < n; i++)
        if (idx[i] == v) return 1;
    return 0;
}

// --- the shrunk model against the full one with the dropped units' columns zeroed

START_TEST(shrink_equals_zeroed_columns)
{
    /* 0: heads only, 1: neurons only, 2: both, 3: both, from a shape that is already pruned */
    static const int hk[4][2][4] = {{{0, 2, 3}, {1, 2, 3}}, {{0}}, {{1, 3}, {0, 2}}, {{2, 4}, {0, 1}}};
    static const int nk[4] = {0, 37, 20, 9};
    et_gpt_config c = _i == 3 ? cfg_of(13, 8, 2, 5, 16, 3, 14) : cfg_of(13, 8, 2, 4, 16, 0, 0), o;
    int keep_h = _i == 0 ? 3 : _i == 1 ? c.heads : 2, F = et_gpt_ffn_width(&c), keep_f = nk[_i] ? nk[_i] : F;
    int HS = et_gpt_head_dim(&c), A = et_gpt_attn_width(&c), C = c.channels, B = 2, T = 8, l, h, j, r;
    int hidx[2 * 5], nidx[2 * 64], in[16];
    et_tensor_info t[ET_GPT_NTENSORS];
    size_t np, npo, i;
    float *p = random_params(&c, 21 + (uint64_t)_i, &np), *ref = malloc(sizeof(float) * np), *po, *la, *lb;
    et_rng rng;
    et_rng_seed(&rng, 5);
    for (l = 0; l < 2; l++) {
        for (h = 0; h < keep_h; h++) hidx[l * keep_h + h] = _i == 1 ? h : hk[_i][l][h];
        /* neurons: a random subset per layer, ascending (selection sampling, Knuth's S) */
        for (j = 0, r = 0; j < F; j++)
            if ((int)et_rng_below(&rng, (uint32_t)(F - j)) < keep_f - r) nidx[l * keep_f + r++] = j;
        ck_assert_int_eq(r, keep_f);
    }
    ck_assert_int_eq(et_prune_struct_config(&c, keep_h, keep_f, &o), ET_OK);
    ck_assert_int_eq(o.heads, keep_h);
    ck_assert_int_eq(et_gpt_head_dim(&o), HS);
    ck_assert_int_eq(et_gpt_ffn_width(&o), keep_f);
    npo = et_gpt_tensors(&o, t);
    ck_assert_uint_lt(npo, np);
    po = malloc(sizeof(float) * npo);
    ck_assert_int_eq(et_prune_struct_shrink(&c, p, keep_h == c.heads ? NULL : hidx, keep_f == F ? NULL : nidx, &o, po),
                     ET_OK);
    /* the reference: the full model, each dropped unit's input column of attproj / fcproj zeroed */
    memcpy(ref, p, sizeof(float) * np);
    et_gpt_tensors(&c, t);
    for (l = 0; l < 2; l++) {
        float *ap = ref + t[6].offset + (size_t)l * C * A, *fp = ref + t[12].offset + (size_t)l * C * F;
        for (h = 0; h < c.heads; h++)
            if (!in_list(hidx + l * keep_h, keep_h, h))
                for (r = 0; r < C; r++) memset(ap + (size_t)r * A + h * HS, 0, sizeof(float) * HS);
        for (j = 0; j < F; j++)
            if (!in_list(nidx + l * keep_f, keep_f, j))
                for (r = 0; r < C; r++) fp[(size_t)r * F + j] = 0.0f;
    }
    tokens(in, B * T, c.vocab, 77);
    /* Bitwise equal on this build (a zero product leaves a k-ordered sum unchanged); the
     * bound only allows a GEMM that reassociates. A wrong row or column is O(1) off. */
    la = logits_of(&c, ref, in, B, T);
    lb = logits_of(&o, po, in, B, T);
    for (i = 0; i < (size_t)B * T * c.vocab; i++) {
        double d = fabs((double)la[i] - lb[i]);
        ck_assert_msg(d <= 1e-5 * (1.0 + fabs(la[i])), "case %d logit %zu: pruned %.9g, zeroed reference %.9g", _i, i,
                      lb[i], la[i]);
    }
    /* and not trivially: the full model without zeroed columns computes something else */
    {
        float *lf = logits_of(&c, p, in, B, T);
        double far = 0.0;
        for (i = 0; i < (size_t)B * T * c.vocab; i++) far = fmax(far, fabs((double)lf[i] - la[i]));
        ck_assert_msg(far > 1e-2, "case %d: dropping units changed no logit (%g)", _i, far);
        free(lf);
    }
    free(p); free(ref); free(po); free(la); free(lb);
}
END_TEST

// --- scores and selection

START_TEST(select_ranks_and_ties)
{
    const float s[2 * 5] = {3, 1, 3, 0, 2, /* ties: the lower index wins */ 5, 5, 5, 5, 5};
    const float bad[3] = {1.0f, NAN, 2.0f}, neg[3] = {1.0f, -1.0f, 2.0f};
    int idx[2 * 3];
    ck_assert_int_eq(et_prune_struct_select(s, 2, 5, 3, idx), ET_OK);
    ck_assert_int_eq(idx[0], 0); ck_assert_int_eq(idx[1], 2); ck_assert_int_eq(idx[2], 4);
    ck_assert_int_eq(idx[3], 0); ck_assert_int_eq(idx[4], 1); ck_assert_int_eq(idx[5], 2);
    ck_assert_int_eq(et_prune_struct_select(s, 1, 5, 1, idx), ET_OK);
    ck_assert_int_eq(idx[0], 0);
    ck_assert_int_eq(et_prune_struct_select(s, 2, 5, 0, idx), ET_ERR_RANGE);
    ck_assert_int_eq(et_prune_struct_select(s, 2, 5, 6, idx), ET_ERR_RANGE);
    ck_assert_int_eq(et_prune_struct_select(bad, 1, 3, 2, idx), ET_ERR_RANGE);
    ck_assert_int_eq(et_prune_struct_select(neg, 1, 3, 2, idx), ET_ERR_RANGE);
    ck_assert_int_eq(et_prune_struct_select(NULL, 1, 3, 2, idx), ET_ERR_INVALID);
    ck_assert_int_eq(et_prune_struct_select(s, 0, 5, 2, idx), ET_ERR_INVALID);
}
END_TEST

/* A head / neuron whose output column is zero contributes nothing: its activation score
 * is exactly 0 and it is the one dropped. Weight scores equal a direct sum of squares. */
START_TEST(scores_find_dead_units)
{
    et_gpt_config c = cfg_of(13, 8, 2, 4, 16, 0, 0);
    et_tensor_info t[ET_GPT_NTENSORS];
    size_t np;
    float *p = random_params(&c, 8, &np), hs[2 * 4], ns[2 * 64], ws[2 * 4], wn[2 * 64];
    double ha[2 * 4] = {0}, na[2 * 64] = {0}, direct = 0.0;
    int in[2 * 8], tg[2 * 8], idx[2 * 63], r, d, k;
    et_test_model m;
    et_gpt_tensors(&c, t);
    /* layer 1: head 2's attproj columns and neuron 17's fcproj column set to zero */
    for (r = 0; r < 16; r++) {
        memset(p + t[6].offset + 16 * 16 + (size_t)r * 16 + 2 * 4, 0, 4 * sizeof(float));
        p[t[12].offset + (size_t)16 * 64 + (size_t)r * 64 + 17] = 0.0f;
    }
    et_test_model_make(&m, c, 2, 8, ET_GPT_TRAIN);
    et_gpt_set_params(&m.m, p);
    ck_assert_int_eq(et_prune_struct_observe(&m.m, ha, na), ET_ERR_STATE); /* no forward yet */
    tokens(in, 16, 13, 1);
    tokens(tg, 16, 13, 2);
    ck_assert_int_eq(et_gpt_forward(&m.m, in, tg, 2, 8), ET_OK);
    ck_assert_int_eq(et_prune_struct_observe(&m.m, ha, na), ET_OK);
    for (k = 0; k < 8; k++) hs[k] = (float)ha[k];
    for (k = 0; k < 128; k++) ns[k] = (float)na[k];
    ck_assert(ha[4 + 2] == 0.0);
    ck_assert(na[64 + 17] == 0.0);
    for (k = 0; k < 8; k++) ck_assert(k == 6 || ha[k] > 0.0);
    ck_assert_int_eq(et_prune_struct_select(hs, 2, 4, 3, idx), ET_OK);
    ck_assert_int_eq(idx[3], 0); ck_assert_int_eq(idx[4], 1); ck_assert_int_eq(idx[5], 3);
    ck_assert_int_eq(et_prune_struct_select(ns, 2, 64, 63, idx), ET_OK);
    ck_assert(!in_list(idx + 63, 63, 17));
    /* weight scores: head 1 of layer 0 against q, k, v rows and attproj columns summed here */
    ck_assert_int_eq(et_prune_struct_weight_scores(&c, p, ws, wn), ET_OK);
    for (k = 0; k < 3; k++)
        for (r = 4; r < 8; r++)
            for (d = 0; d < 16; d++) {
                double v = p[t[4].offset + (size_t)(k * 16 + r) * 16 + d];
                direct += v * v;
            }
    for (r = 0; r < 16; r++)
        for (d = 4; d < 8; d++) direct += (double)p[t[6].offset + r * 16 + d] * p[t[6].offset + r * 16 + d];
    ET_CK_CLOSE(ws[1], direct, 1e-5, 0);
    ck_assert(wn[64 + 17] > 0.0f); /* its fc row is still there */
    /* a model with one layer's activations cannot be observed */
    {
        et_test_model one;
        et_test_model_make(&one, c, 2, 8, ET_GPT_INFER);
        et_gpt_set_params(&one.m, p);
        ck_assert_int_eq(et_gpt_forward(&one.m, in, tg, 2, 8), ET_OK);
        ck_assert_int_eq(et_prune_struct_observe(&one.m, ha, na), ET_ERR_STATE);
        free(one.mem);
    }
    free(m.mem);
    free(p);
}
END_TEST

START_TEST(bad_requests)
{
    et_gpt_config c = cfg_of(13, 8, 2, 4, 16, 0, 0), o, x;
    size_t np;
    float *p = random_params(&c, 3, &np), *po;
    int hidx[2 * 2] = {0, 1, 2, 3}, nidx[2 * 2] = {0, 5, 9, 63};
    ck_assert_int_eq(et_prune_struct_config(&c, 0, 64, &o), ET_ERR_RANGE);
    ck_assert_int_eq(et_prune_struct_config(&c, 5, 64, &o), ET_ERR_RANGE);
    ck_assert_int_eq(et_prune_struct_config(&c, 4, 65, &o), ET_ERR_RANGE);
    ck_assert_int_eq(et_prune_struct_config(&c, 4, 0, &o), ET_ERR_RANGE);
    ck_assert_int_eq(et_prune_struct_config(NULL, 4, 64, &o), ET_ERR_INVALID);
    /* keeping everything is GPT-2's shape again (head_dim and ffn stored as 0) */
    ck_assert_int_eq(et_prune_struct_config(&c, 4, 64, &o), ET_OK);
    ck_assert(et_gpt_config_is_gpt2(&o));
    ck_assert_int_eq(et_prune_struct_config(&c, 2, 2, &o), ET_OK);
    po = malloc(sizeof(float) * et_gpt_tensors(&o, (et_tensor_info[ET_GPT_NTENSORS]){{0}}));
    ck_assert_int_eq(et_prune_struct_shrink(&c, p, hidx, nidx, &o, po), ET_OK);
    hidx[1] = 0; /* not ascending */
    ck_assert_int_eq(et_prune_struct_shrink(&c, p, hidx, nidx, &o, po), ET_ERR_INVALID);
    hidx[1] = 4; /* out of range */
    ck_assert_int_eq(et_prune_struct_shrink(&c, p, hidx, nidx, &o, po), ET_ERR_INVALID);
    hidx[1] = 1;
    nidx[3] = 64;
    ck_assert_int_eq(et_prune_struct_shrink(&c, p, hidx, nidx, &o, po), ET_ERR_INVALID);
    nidx[3] = 63;
    ck_assert_int_eq(et_prune_struct_shrink(&c, p, NULL, nidx, &o, po), ET_ERR_INVALID); /* heads dropped */
    x = o;
    x.channels = 8;
    x.head_dim = 4;
    ck_assert_int_eq(et_gpt_config_check(&x), ET_OK);
    ck_assert_int_eq(et_prune_struct_shrink(&c, p, hidx, nidx, &x, po), ET_ERR_INVALID); /* another C */
    x = o;
    x.head_dim = 3;
    ck_assert_int_eq(et_prune_struct_shrink(&c, p, hidx, nidx, &x, po), ET_ERR_INVALID); /* another head width */
    free(p);
    free(po);
}
END_TEST

// --- every other backend trains a pruned shape as the cpu one does

/* 10 AdamW steps of a pruned shape (3 heads of 10 = 30 != C = 36, MLP 50) on @p backend;
 * 0 when the backend is not available here */
static int train_pruned(const char *backend, float *loss)
{
    et_gpt_config c = cfg_of(67, 24, 2, 3, 36, 10, 50);
    et_adamw_config o = {3e-3f, 0.9f, 0.95f, 1e-8f, 0.1f, 1.0f};
    et_runtime rt;
    et_error e = {0};
    int in[2 * 20], tg[2 * 20], st, i;
    if (et_runtime_open(&rt, backend, &c, 2, 20, ET_GPT_TRAIN, 1, &e) != ET_OK) {
        fprintf(stderr, "check_prune_struct: skipping %s: %s\n", backend, e.msg);
        return 0;
    }
    ck_assert_int_eq(et_gpt_init_weights(&rt.model, 1337), ET_OK);
    for (st = 0; st < 10; st++) {
        for (i = 0; i < 40; i++) { in[i] = (i * 5 + st * 11 + (i / 7) * 3) % 67; tg[i] = (in[i] * 3 + 1 + (i % 2)) % 67; }
        ck_assert_int_eq(et_gpt_forward(&rt.model, in, tg, 2, 20), ET_OK);
        ck_assert_int_eq(et_gpt_zero_grad(&rt.model), ET_OK);
        ck_assert_int_eq(et_gpt_backward(&rt.model, 1.0f), ET_OK);
        ck_assert_int_eq(et_gpt_step(&rt.model, &o), ET_OK);
        loss[st] = rt.model.mean_loss;
    }
    et_runtime_close(&rt);
    return 1;
}

START_TEST(backends_train_pruned_shape)
{
    static const char *const names[3] = {"opencl", "cuda", "systolic"};
    float cpu[10], got[10];
    int k, st;
    ck_assert(train_pruned("cpu", cpu));
    ck_assert_msg(cpu[9] < 0.95f * cpu[0], "cpu: loss %.4f -> %.4f did not fall", cpu[0], cpu[9]);
    for (k = 0; k < 3; k++) {
        if (!train_pruned(names[k], got)) continue;
        for (st = 0; st < 10; st++)
            ck_assert_msg(fabs((double)got[st] - cpu[st]) <= 1e-4 * fabs(cpu[st]), "%s: step %d loss %.7f, cpu %.7f",
                          names[k], st + 1, got[st], cpu[st]);
    }
}
END_TEST

// --- int8 model of a pruned shape

START_TEST(qgpt_of_pruned_shape)
{
    et_gpt_config c = cfg_of(29, 16, 2, 3, 32, 8, 40);
    et_qmode mode;
    et_test_model f;
    size_t np, bb, cb, plan;
    float *p, fp;
    int in[2 * 16], tg[2 * 16], ns = et_qgpt_nsites(&c), i;
    et_test_model_make(&f, c, 2, 16, ET_GPT_TRAIN);
    ck_assert_int_eq(et_gpt_init_weights(&f.m, 7), ET_OK);
    np = f.m.nparams;
    p = malloc(sizeof(float) * np);
    et_gpt_get_params(&f.m, p);
    tokens(in, 32, 29, 3);
    tokens(tg, 32, 29, 4);
    ck_assert_int_eq(et_gpt_forward(&f.m, in, tg, 2, 16), ET_OK);
    fp = f.m.mean_loss;
    for (mode = ET_QMODE_W8A8; mode <= ET_QMODE_W8A32; mode = (et_qmode)(mode + 1)) {
        float *lo = malloc(sizeof(float) * ns), *hi = malloc(sizeof(float) * ns), *back = malloc(sizeof(float) * np);
        void *blob, *cmem, *qmem;
        et_arena a;
        et_qcalib cal;
        et_qgpt q;
        ck_assert_int_eq(et_qgpt_tensors(&c, mode, NULL, &bb), ET_OK);
        blob = et_test_aligned(bb);
        cb = et_qcalib_bytes(ns, 256);
        cmem = et_test_aligned(cb);
        if (mode == ET_QMODE_W8A8) {
            int pass;
            et_arena_init(&a, cmem, cb);
            ck_assert_int_eq(et_qcalib_init(&cal, ns, 256, &a), ET_OK);
            for (pass = 0; pass < 2; pass++) {
                ck_assert_int_eq(et_gpt_forward(&f.m, in, tg, 2, 16), ET_OK);
                ck_assert_int_eq(et_qcalib_observe_gpt(&cal, &f.m), ET_OK);
                if (pass == 0) ck_assert_int_eq(et_qcalib_next_pass(&cal), ET_OK);
            }
            for (i = 0; i < ns; i++)
                ck_assert_int_eq(et_qcalib_range(&cal, i, ET_QCALIB_PERCENTILE, 0.9999f, &lo[i], &hi[i]), ET_OK);
        }
        ck_assert_int_eq(et_qgpt_quantize(&c, p, mode, lo, hi, blob, bb), ET_OK);
        ck_assert_int_eq(et_qgpt_plan(&c, mode, 2, 16, 1, &plan), ET_OK);
        qmem = et_test_aligned(plan);
        et_arena_init(&a, qmem, plan - 1);
        ck_assert_int_eq(et_qgpt_create(&q, &c, mode, blob, bb, 2, 16, NULL, &a), ET_ERR_NOMEM);
        et_arena_init(&a, qmem, plan);
        ck_assert_int_eq(et_qgpt_create(&q, &c, mode, blob, bb, 2, 16, NULL, &a), ET_OK);
        ck_assert_uint_eq(et_arena_free_bytes(&a), 0);
        ck_assert_int_eq(et_qgpt_forward(&q, in, tg, 2, 16), ET_OK);
        ck_assert_msg(fabsf(q.mean_loss - fp) < 0.01f * fp, "mode %d: int8 loss %f, fp32 %f", mode, q.mean_loss, fp);
        ck_assert_int_eq(et_qgpt_dequantize(&c, mode, blob, bb, back), ET_OK);
        for (i = 0; i < (int)np; i++) ck_assert(fabsf(back[i] - p[i]) <= 0.02f * 0.5f * 4.0f / 127.0f + 1e-4f);
        free(lo); free(hi); free(back); free(blob); free(cmem); free(qmem);
    }
    free(p);
    free(f.mem);
}
END_TEST

// --- files

static char g_dir[64];

static uint32_t rd32(const uint8_t *b) { uint32_t v; memcpy(&v, b, 4); return v; }
static void wr32(uint8_t *b, uint32_t v) { memcpy(b, &v, 4); }

static void spit(const char *path, const uint8_t *b, size_t n)
{
    FILE *f = fopen(path, "wb");
    ck_assert_ptr_nonnull(f);
    ck_assert_uint_eq(fwrite(b, 1, n, f), n);
    fclose(f);
}

/* rewrites the header CRC (bytes 188..191) and the trailing one of a checkpoint */
static void fix_ckpt_crcs(uint8_t *b, size_t n)
{
    wr32(b + 188, et_crc32(b, 188));
    wr32(b + n - 4, et_crc32(b, n - 4));
}

START_TEST(checkpoint_widths_roundtrip)
{
    et_gpt_config c = cfg_of(13, 8, 2, 3, 16, 5, 24), g = cfg_of(13, 8, 2, 4, 16, 0, 0);
    et_ckpt k, back;
    et_error e;
    char path[128], p2[128];
    size_t np, n, i;
    uint8_t *b, *b2;
    float *p = random_params(&c, 4, &np);
    struct stat st;
    snprintf(g_dir, sizeof g_dir, "/tmp/et_pstruct_XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(g_dir));
    snprintf(path, sizeof path, "%s/p.etck", g_dir);
    memset(&k, 0, sizeof k);
    k.cfg = c;
    k.nparams = np;
    k.params = p;
    ck_assert_int_eq(et_ckpt_save(path, &k, &e), ET_OK);
    b = et_test_slurp(path, &n);
    ck_assert_uint_eq(rd32(b + 8), 2);   /* version 2: the widths are in the header */
    ck_assert_uint_eq(rd32(b + 136), 5);
    ck_assert_uint_eq(rd32(b + 140), 24);
    ck_assert_int_eq(et_model_load(path, &back, &e), ET_OK);
    ck_assert_int_eq(back.cfg.heads, 3);
    ck_assert_int_eq(back.cfg.head_dim, 5);
    ck_assert_int_eq(back.cfg.ffn, 24);
    ck_assert_uint_eq(back.nparams, np);
    ck_assert_int_eq(memcmp(back.params, p, np * sizeof(float)), 0);
    et_ckpt_free(&back);
    /* corrupt widths (with valid checksums) are refused with the field's name */
    b2 = malloc(n);
    memcpy(b2, b, n); wr32(b2 + 136, 0); fix_ckpt_crcs(b2, n);
    snprintf(p2, sizeof p2, "%s/bad.etck", g_dir);
    spit(p2, b2, n);
    ck_assert_int_eq(et_ckpt_load(p2, &back, &e), ET_ERR_RANGE);
    ck_assert_msg(strstr(e.msg, "head_dim") != NULL, "%s", e.msg);
    memcpy(b2, b, n); wr32(b2 + 140, 25); fix_ckpt_crcs(b2, n); spit(p2, b2, n);
    ck_assert_int_eq(et_ckpt_load(p2, &back, &e), ET_ERR_FORMAT); /* 25 neurons: another parameter count */
    memcpy(b2, b, n); wr32(b2 + 8, 1); fix_ckpt_crcs(b2, n); spit(p2, b2, n);
    ck_assert_int_eq(et_ckpt_load(p2, &back, &e), ET_ERR_FORMAT); /* version 1 has those bytes reserved */
    ck_assert_msg(strstr(e.msg, "reserved header byte 136") != NULL, "%s", e.msg);
    /* llm.c files and device images have no field for the widths */
    snprintf(p2, sizeof p2, "%s/x.bin", g_dir);
    ck_assert_int_eq(et_llmc_save(p2, &c, p, &e), ET_ERR_UNSUPPORTED);
    ck_assert_msg(strstr(e.msg, "head_dim 5 and ffn 24") != NULL, "%s", e.msg);
    {
        size_t img;
        ck_assert_int_eq(et_image_size(&c, ET_QMODE_W8A32, 0, &img), ET_ERR_INVALID);
        ck_assert_int_eq(et_image_size(&g, ET_QMODE_W8A32, 0, &img), ET_OK);
    }
    ck_assert_int_ne(stat(p2, &st), 0);
    free(b);
    free(b2);
    free(p);
    /* a GPT-2 shape is written as version 1, its width bytes zero, as before */
    p = random_params(&g, 5, &np);
    k.cfg = g;
    k.cfg.head_dim = 4; /* = C / NH: GPT-2's own value */
    k.nparams = np;
    k.params = p;
    ck_assert_int_eq(et_ckpt_save(path, &k, &e), ET_OK);
    b = et_test_slurp(path, &n);
    ck_assert_uint_eq(rd32(b + 8), 1);
    for (i = 136; i < 188; i++) ck_assert_uint_eq(b[i], 0);
    ck_assert_int_eq(et_ckpt_load(path, &back, &e), ET_OK);
    ck_assert_int_eq(back.cfg.head_dim, 0);
    ck_assert_int_eq(back.cfg.ffn, 0);
    et_ckpt_free(&back);
    ck_assert_int_eq(et_llmc_save(p2, &g, p, &e), ET_OK);
    free(b);
    free(p);
}
END_TEST

START_TEST(qmodel_widths_roundtrip)
{
    et_gpt_config c = cfg_of(29, 16, 2, 3, 32, 8, 40), g = cfg_of(29, 16, 2, 2, 32, 0, 0);
    et_qmodel q, back;
    et_error e;
    char path[128];
    size_t np, n;
    uint8_t *b;
    float *p = random_params(&c, 6, &np);
    snprintf(g_dir, sizeof g_dir, "/tmp/et_pstruct_XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(g_dir));
    snprintf(path, sizeof path, "%s/p.etq", g_dir);
    memset(&q, 0, sizeof q);
    q.cfg = c;
    q.mode = ET_QMODE_W8A32;
    ck_assert_int_eq(et_qgpt_tensors(&c, q.mode, NULL, &q.blob_bytes), ET_OK);
    q.blob = et_test_aligned(q.blob_bytes);
    ck_assert_int_eq(et_qgpt_quantize(&c, p, q.mode, NULL, NULL, q.blob, q.blob_bytes), ET_OK);
    ck_assert_int_eq(et_qmodel_save(path, &q, &e), ET_OK);
    b = et_test_slurp(path, &n);
    ck_assert_uint_eq(rd32(b + 8), 2);
    ck_assert_uint_eq(rd32(b + 88), 8);
    ck_assert_uint_eq(rd32(b + 92), 40);
    ck_assert_int_eq(et_qmodel_load(path, &back, &e), ET_OK);
    ck_assert_int_eq(back.cfg.head_dim, 8);
    ck_assert_int_eq(back.cfg.ffn, 40);
    ck_assert_int_eq(memcmp(back.blob, q.blob, q.blob_bytes), 0);
    et_qmodel_free(&back);
    wr32(b + 88, 0);
    wr32(b + 124, et_crc32(b, 124));
    spit(path, b, n);
    ck_assert_int_eq(et_qmodel_load(path, &back, &e), ET_ERR_RANGE);
    ck_assert_msg(strstr(e.msg, "head_dim") != NULL, "%s", e.msg);
    free(b);
    free(q.blob);
    free(p);
    /* GPT-2's shape: version 1, bytes 88..95 zero */
    p = random_params(&g, 7, &np);
    q.cfg = g;
    ck_assert_int_eq(et_qgpt_tensors(&g, q.mode, NULL, &q.blob_bytes), ET_OK);
    q.blob = et_test_aligned(q.blob_bytes);
    ck_assert_int_eq(et_qgpt_quantize(&g, p, q.mode, NULL, NULL, q.blob, q.blob_bytes), ET_OK);
    ck_assert_int_eq(et_qmodel_save(path, &q, &e), ET_OK);
    b = et_test_slurp(path, &n);
    ck_assert_uint_eq(rd32(b + 8), 1);
    ck_assert_uint_eq(rd32(b + 88), 0);
    ck_assert_uint_eq(rd32(b + 92), 0);
    free(b);
    free(q.blob);
    free(p);
}
END_TEST

static void rm_dir(void)
{
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", g_dir);
    ck_assert_int_eq(system(cmd), 0);
}

// --- the command

START_TEST(cli_struct)
{
    char dir[] = "/tmp/et_pstruct_cli_XXXXXX", txt[256], path[256], out[8192];
    FILE *f;
    int i;
    size_t n0, n1;
    uint8_t *b0, *b1;
    float fp, pr, pq;
    struct stat st;
    ck_assert_ptr_nonnull(mkdtemp(dir));
    snprintf(txt, sizeof txt, "%s/t.txt", dir);
    f = fopen(txt, "w");
    for (i = 0; i < 400; i++) fprintf(f, "To be, or not to be, that is the question %d.\n", i % 7);
    fclose(f);
    ck_assert_int_eq(et_test_run(out, sizeof out, "%s prepare --input %s --tokenizer char --dedup-min-len 0 --out %s/data",
                         et_test_cli(), txt, dir), 0);
    ck_assert_msg(et_test_run(out, sizeof out, "%s train --data %s/data/train.bin --layers 2 --heads 2 --channels 32 "
                      "--context 16 -b 4 -t 16 --steps 30 --warmup 5 --lr 3e-3 --eval-every 0 --threads 1 -q "
                      "--out %s/run", et_test_cli(), dir, dir) == 0, "train: %s", out);
    snprintf(path, sizeof path, "%s/run/model.etck", dir);
    b0 = et_test_slurp(path, &n0);
    ck_assert_msg(et_test_run(out, sizeof out, "%s compress --model %s --data %s/data/val.bin --prune heads=1,neurons=0.5 "
                      "--finetune-steps 5 --finetune-batch 2 --calib-batches 2 -b 4 -t 16 --threads 1 --out %s/p.etck",
                      et_test_cli(), path, dir, dir) == 0, "compress --prune heads=1: %s", out);
    ck_assert_msg(strstr(out, "heads 2->1, MLP 128->64 +5 ft") != NULL, "%s", out);
    ck_assert_msg(strstr(out, "layer 1 keeps 1 of 2 heads:") != NULL, "%s", out);
    ck_assert_int_eq(et_test_run(out, sizeof out, "%s info --model %s/p.etck", et_test_cli(), dir), 0);
    ck_assert_msg(strstr(out, "heads 1") != NULL, "%s", out);
    ck_assert_int_eq(et_test_run(out, sizeof out, "%s eval --model %s --data %s/data/val.bin -b 4 -t 16 --batches 4",
                         et_test_cli(), path, dir), 0);
    ck_assert_int_eq(sscanf(out, "loss %f", &fp), 1);
    ck_assert_int_eq(et_test_run(out, sizeof out, "%s eval --model %s/p.etck --data %s/data/val.bin -b 4 -t 16 --batches 4",
                         et_test_cli(), dir, dir), 0);
    ck_assert_int_eq(sscanf(out, "loss %f", &pr), 1);
    ck_assert(pr > 0 && pr < 2.0f * fp);
    ck_assert_int_eq(et_test_run(out, sizeof out, "%s sample --model %s/p.etck --length 10 --prompt To", et_test_cli(), dir), 0);
    ck_assert(strncmp(out, "To", 2) == 0);
    /* the pruned model trains on (its checkpoint stays version 2) and quantizes */
    ck_assert_msg(et_test_run(out, sizeof out, "%s train --model %s/p.etck --data %s/data/train.bin -b 4 -t 16 --steps 2 "
                      "--eval-every 0 --threads 1 -q --out %s/run2", et_test_cli(), dir, dir, dir) == 0, "%s", out);
    snprintf(txt, sizeof txt, "%s/run2/model.etck", dir);
    b1 = et_test_slurp(txt, &n1);
    ck_assert_uint_eq(rd32(b1 + 8), 2);
    ck_assert_uint_eq(rd32(b1 + 136), 16); /* head_dim: 32 channels / 2 heads, one kept */
    ck_assert_uint_eq(rd32(b1 + 140), 64);
    free(b1);
    ck_assert_msg(et_test_run(out, sizeof out, "%s compress --model %s/p.etck --data %s/data/val.bin --quant w8a8 "
                      "--calib-batches 2 -b 4 -t 16 --out %s/pq.etq -q", et_test_cli(), dir, dir, dir) == 0, "%s", out);
    ck_assert_int_eq(et_test_run(out, sizeof out, "%s eval --model %s/pq.etq --data %s/data/val.bin -b 4 -t 16 --batches 4",
                         et_test_cli(), dir, dir), 0);
    ck_assert_int_eq(sscanf(out, "loss %f", &pq), 1);
    ck_assert_msg(fabsf(pq - pr) < 0.05f * pr, "int8 of the pruned model: %f, fp32 %f", pq, pr);
    /* prune + quantize in one run */
    ck_assert_msg(et_test_run(out, sizeof out, "%s compress --model %s --data %s/data/val.bin --prune heads=1 "
                      "--prune-score weight --quant w8a32 -b 4 -t 16 --out %s/pq2.etq", et_test_cli(), path, dir, dir) == 0,
                  "%s", out);
    ck_assert_msg(strstr(out, "heads 2->1, MLP 128->128 + int8 w8a32") != NULL, "%s", out);
    /* what cannot take a pruned shape says so */
    ck_assert_int_eq(et_test_run(out, sizeof out, "%s export --model %s/p.etck --format llmc --out %s/x.bin", et_test_cli(),
                         dir, dir), 1);
    ck_assert_msg(strstr(out, "llm.c") != NULL && strstr(out, "head_dim") != NULL, "%s", out);
    ck_assert_int_eq(et_test_run(out, sizeof out, "%s export --model %s/p.etck --format image --out %s/x.img", et_test_cli(),
                         dir, dir), 1);
    ck_assert_msg(strstr(out, "device image") != NULL, "%s", out);
    ck_assert_int_eq(et_test_run(out, sizeof out, "%s compress --model %s/p.etck --data %s/data/val.bin --lowrank params=0.5 "
                         "-t 16 --out %s/x", et_test_cli(), dir, dir, dir), 1);
    ck_assert_msg(strstr(out, "GPT-2") != NULL && strstr(out, "head_dim 16") != NULL, "%s", out);
    ck_assert_int_eq(et_test_run(out, sizeof out, "%s compress --model %s/p.etck --data %s/data/val.bin --prune 0.5 "
                         "-t 16 --out %s/x", et_test_cli(), dir, dir, dir), 1);
    ck_assert_msg(strstr(out, "GPT-2") != NULL && strstr(out, "head_dim 16") != NULL, "%s", out);
    /* bad requests: nothing written, the input unchanged */
    ck_assert_int_eq(et_test_run(out, sizeof out, "%s compress --model %s --data %s/data/val.bin --prune heads=3 -t 16 "
                         "--out %s/x", et_test_cli(), path, dir, dir), 1);
    ck_assert_msg(strstr(out, "has 2 heads per layer") != NULL, "%s", out);
    ck_assert_int_eq(et_test_run(out, sizeof out, "%s compress --model %s --data %s/data/val.bin --prune ffn=129 -t 16 "
                         "--out %s/x", et_test_cli(), path, dir, dir), 1);
    ck_assert_msg(strstr(out, "128 neurons per layer") != NULL, "%s", out);
    ck_assert_int_eq(et_test_run(out, sizeof out, "%s compress --model %s --data %s/data/val.bin --prune heads=0 --out %s/x",
                         et_test_cli(), path, dir, dir), 2);
    ck_assert_msg(strstr(out, "at least 1") != NULL, "%s", out);
    ck_assert_int_eq(et_test_run(out, sizeof out, "%s compress --model %s --data %s/data/val.bin --prune neurons=1 --out %s/x",
                         et_test_cli(), path, dir, dir), 2);
    ck_assert_msg(strstr(out, "[0, 1)") != NULL, "%s", out);
    ck_assert_int_eq(et_test_run(out, sizeof out, "%s compress --model %s --data %s/data/val.bin --prune ffn=8,neurons=0.5 "
                         "--out %s/x", et_test_cli(), path, dir, dir), 2);
    ck_assert_int_eq(et_test_run(out, sizeof out, "%s compress --model %s --data %s/data/val.bin --prune heads=1,lanes=2 "
                         "--out %s/x", et_test_cli(), path, dir, dir), 2);
    ck_assert_msg(strstr(out, "unknown part") != NULL, "%s", out);
    ck_assert_int_eq(et_test_run(out, sizeof out, "%s compress --model %s --data %s/data/val.bin --prune heads=1 "
                         "--prune-score grad --out %s/x", et_test_cli(), path, dir, dir), 2);
    ck_assert_int_eq(et_test_run(out, sizeof out, "%s compress --model %s --data %s/data/val.bin --prune 0.5 "
                         "--prune-score weight --out %s/x", et_test_cli(), path, dir, dir), 2);
    snprintf(txt, sizeof txt, "%s/x", dir);
    ck_assert_int_ne(stat(txt, &st), 0);
    snprintf(txt, sizeof txt, "%s/x.bin", dir);
    ck_assert_int_ne(stat(txt, &st), 0);
    b1 = et_test_slurp(path, &n1);
    ck_assert(n0 == n1 && memcmp(b0, b1, n0) == 0);
    free(b0);
    free(b1);
    snprintf(txt, sizeof txt, "rm -rf %s", dir);
    ck_assert_int_eq(system(txt), 0);
}
END_TEST

static void files_teardown(void) { rm_dir(); }

static Suite *suite(void)
{
    Suite *s = suite_create("prune_struct");
    TCase *t = tcase_create("core");
    tcase_set_timeout(t, 120);
    tcase_add_loop_test(t, shrink_equals_zeroed_columns, 0, 4);
    tcase_add_test(t, select_ranks_and_ties);
    tcase_add_test(t, scores_find_dead_units);
    tcase_add_test(t, bad_requests);
    tcase_add_test(t, qgpt_of_pruned_shape);
    tcase_add_test(t, backends_train_pruned_shape);
    suite_add_tcase(s, t);
    t = tcase_create("files");
    tcase_add_checked_fixture(t, NULL, files_teardown);
    tcase_add_test(t, checkpoint_widths_roundtrip);
    tcase_add_test(t, qmodel_widths_roundtrip);
    suite_add_tcase(s, t);
    t = tcase_create("cli");
    tcase_set_timeout(t, 300);
    tcase_add_test(t, cli_struct);
    suite_add_tcase(s, t);
    return s;
}

ET_CHECK_MAIN(suite)

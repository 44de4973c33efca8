/* check_cgpt.c - the compact inference path: the sparse kernels (N:M and bitmap, float
 * and int8, every epilogue) against naive loops over the dense-expanded weights on odd
 * shapes, bitwise under any task order; the compressed GPT (dense, N:M, bitmap and
 * factored linears, F32 and W8A8) against the fp32 model and the int8 model on the same
 * dense-expanded weights (F32 within float tolerance; W8A8 bit-exact against et_qgpt and
 * against its own integer reference loops); exact plan, bad specs, corrupt storage. */
#include <math.h>
#include <string.h>
#include "et_check.h"
#include "et_cgpt.h"
#include "et_prune.h"
#include "et_qgpt.h"
#include "et_rng.h"
#include "et_runtime.h"
#include "et_spmm.h"


static float *randn(size_t n, uint64_t seed, float scale)
{
    float *w = malloc(sizeof(float) * (n ? n : 1));
    et_rng r;
    size_t i;
    et_rng_seed(&r, seed);
    for (i = 0; i < n; i++) w[i] = scale * et_rng_normal(&r);
    return w;
}

/* a compact matrix built from a dense one: N:M (N, M) or bitmap at sparsity sp */
typedef struct {
    et_spmat s;
    float *dense;   /* (rows, cols): the values kept, zeros elsewhere */
    int8_t *qdense; /* the same, int8 */
    float *vf;
    int8_t *vq;
    uint8_t *idx, *mask;
    uint32_t *rowptr;
} cmat;

static void cmat_make(cmat *c, int rows, int cols, int N, int M, float sp, uint64_t seed, int extreme)
{
    size_t n = (size_t)rows * cols, i, k = 0;
    et_rng r;
    memset(c, 0, sizeof *c);
    c->dense = randn(n, seed, 1.0f);
    c->qdense = malloc(n);
    c->mask = malloc(et_prune_mask_bytes(n));
    c->vf = malloc(sizeof(float) * n + 4);
    c->vq = malloc(n + 1);
    c->idx = calloc(n + 1, 1);
    et_rng_seed(&r, seed + 99);
    if (N) ck_assert_int_eq(et_prune_nm(c->dense, rows, cols, N, M, c->mask), ET_OK);
    else ck_assert_int_eq(et_prune_magnitude(c->dense, n, sp, c->mask, NULL), ET_OK);
    et_prune_apply(c->dense, c->mask, n);
    for (i = 0; i < n; i++) {
        /* extreme: mostly -128, so long sums of equal-sign products pass 2^24 */
        int q = extreme ? ((et_rng_u64(&r) & 7) ? -128 : 127) : (int)(et_rng_u64(&r) % 255) - 127;
        c->qdense[i] = et_prune_kept(c->mask, i) ? (int8_t)q : 0;
    }
    c->s.rows = rows; c->s.cols = cols; c->s.N = N; c->s.M = M; c->s.index = c->idx;
    if (N) {
        c->s.format = ET_SPMAT_NM;
        ck_assert_int_eq(et_prune_nm_pack(c->dense, c->mask, rows, cols, N, M, c->vf, c->idx), ET_OK);
        /* the int8 values in the same order: unpack positions from the float packing */
        for (i = 0; i < et_spmat_nm_values(rows, cols, N, M); i++) {
            int bits = M <= 4 ? 2 : 4, g = (int)(i / N), row = g / (cols / M), gi = g % (cols / M);
            size_t bit = i * bits;
            int pos = (c->idx[bit >> 3] >> (bit & 7)) & ((1 << bits) - 1);
            c->vq[i] = c->qdense[(size_t)row * cols + (size_t)gi * M + pos];
        }
    } else {
        c->s.format = ET_SPMAT_BITMAP;
        memcpy(c->idx, c->mask, et_prune_mask_bytes(n));
        et_prune_bitmap_pack(c->dense, c->mask, n, c->vf);
        for (i = 0; i < n; i++)
            if (et_prune_kept(c->mask, i)) c->vq[k++] = c->qdense[i];
        c->rowptr = malloc(sizeof(uint32_t) * (rows + 1));
        ck_assert_int_eq(et_spmat_rowptr(c->idx, rows, cols, et_prune_count(c->mask, n), c->rowptr), ET_OK);
        c->s.rowptr = c->rowptr;
    }
    c->s.vf = c->vf;
    c->s.vq = c->vq;
    ck_assert_int_eq(et_spmat_check(&c->s), ET_OK);
}

static void cmat_free(cmat *c)
{
    free(c->dense); free(c->qdense); free(c->vf); free(c->vq); free(c->idx); free(c->mask); free(c->rowptr);
}

static const struct { int rows, cols, N, M; float sp; } mats[] = {
    {1, 4, 2, 4, 0}, {5, 36, 2, 4, 0}, {17, 20, 2, 4, 0}, {33, 128, 2, 4, 0}, {7, 36, 1, 4, 0},
    {13, 40, 4, 8, 0}, {9, 44, 3, 4, 0}, {9, 48, 3, 16, 0}, {6, 15, 2, 3, 0}, {19, 35, 3, 7, 0}, {3, 37, 0, 0, 0.5f},
    {21, 53, 0, 0, 0.0f}, {16, 64, 0, 0, 1.0f}, {31, 130, 0, 0, 0.9f}, {2, 3000, 0, 0, 0.1f},
};
static const int rows_R[] = {1, 7, 31, 32, 33, 100, 257};

START_TEST(spmm_f32_vs_dense)
{
    size_t t, ri;
    for (t = 0; t < sizeof mats / sizeof mats[0]; t++)
        for (ri = 0; ri < sizeof rows_R / sizeof rows_R[0]; ri++) {
            int OC = mats[t].rows, K = mats[t].cols, R = rows_R[ri], r, o, k, pass;
            cmat c;
            float *x = randn((size_t)R * K, 7 + t, 1.0f), *bias = randn((size_t)OC, 8, 1.0f);
            float *y = malloc(sizeof(float) * R * OC), *y2 = malloc(sizeof(float) * R * OC);
            size_t sb = et_spmm_scratch_bytes(R, K, 3);
            void *scr = et_test_aligned(sb);
            cmat_make(&c, OC, K, mats[t].N, mats[t].M, mats[t].sp, 100 + t, 0);
            for (pass = 0; pass < 3; pass++) {
                if (pass == 0) ck_assert_int_eq(et_spmm_f32(&c.s, y, x, bias, R, NULL, scr, sb), ET_OK);
                else if (pass == 1) ck_assert_int_eq(et_spmm_f32(&c.s, y2, x, bias, R, &et_test_scrambled, scr, sb), ET_OK);
                else ck_assert_int_eq(et_spmm_f32_ref(&c.s, y2, x, bias, R), ET_OK);
                if (pass == 1) ck_assert_msg(memcmp(y, y2, sizeof(float) * R * OC) == 0, "task order changed bits");
                for (r = 0; r < R; r++)
                    for (o = 0; o < OC; o++) {
                        double want = bias[o], mag = fabs(bias[o]);
                        for (k = 0; k < K; k++) {
                            want += (double)x[(size_t)r * K + k] * c.dense[(size_t)o * K + k];
                            mag += fabs((double)x[(size_t)r * K + k] * c.dense[(size_t)o * K + k]);
                        }
                        ET_CK_CLOSE((pass == 2 ? y2 : y)[(size_t)r * OC + o], want, 0, 1e-6 * mag + 1e-6);
                    }
            }
            /* scratch one byte short */
            ck_assert_int_eq(et_spmm_f32(&c.s, y, x, bias, R, &et_test_scrambled, scr, sb - 1), ET_ERR_NOMEM);
            cmat_free(&c);
            free(x); free(bias); free(y); free(y2); free(scr);
        }
}
END_TEST

START_TEST(spmm_s8_bit_exact)
{
    static const et_qgemm_out outs[] = {ET_QGEMM_OUT_S8, ET_QGEMM_OUT_F32, ET_QGEMM_OUT_S32};
    size_t t, ri;
    int ext;
    for (ext = 0; ext < 2; ext++)
        for (t = 0; t < sizeof mats / sizeof mats[0]; t++)
            for (ri = 0; ri < sizeof rows_R / sizeof rows_R[0]; ri += 2) {
                int OC = mats[t].rows, K = mats[t].cols, R = rows_R[ri], e, i;
                cmat c;
                et_rng g;
                int8_t *A = malloc((size_t)R * K);
                int32_t *bias = malloc(sizeof(int32_t) * OC), *mult = malloc(sizeof(int32_t) * OC),
                        *shift = malloc(sizeof(int32_t) * OC);
                float *scale = randn((size_t)OC, 3, 0.01f);
                size_t sb = et_spmm_scratch_bytes(R, K, 3), osz = sizeof(int32_t) * R * OC;
                void *scr = et_test_aligned(sb), *c1 = malloc(osz), *c2 = malloc(osz), *c3 = malloc(osz);
                et_spmm_s8_args a;
                et_qgemm_args d;
                cmat_make(&c, OC, K, mats[t].N, mats[t].M, mats[t].sp, 300 + t, ext);
                et_rng_seed(&g, 11 + t);
                for (i = 0; i < R * K; i++) A[i] = ext ? ((i % 5) ? -128 : 127) : (int8_t)((int)(et_rng_u64(&g) % 256) - 128);
                for (i = 0; i < OC; i++) {
                    bias[i] = (int32_t)(et_rng_u64(&g) % 200001) - 100000;
                    et_quant_multiplier(0.0001 + 0.01 * (i % 7), &mult[i], &shift[i]);
                }
                for (e = 0; e < 3; e++) {
                    memset(&a, 0, sizeof a);
                    a.M = R; a.A = A; a.W = &c.s; a.bias = (e == 2 && t % 2) ? NULL : bias; a.out = outs[e];
                    a.mult = mult; a.shift = shift; a.zp_out = -5; a.scale = scale;
                    memset(&d, 0, sizeof d);
                    d.M = R; d.N = OC; d.K = K; d.A = A; d.lda = K; d.B = c.qdense; d.ldb = K; d.bias = a.bias;
                    d.out = a.out; d.mult = mult; d.shift = shift; d.zp_out = -5; d.scale = scale; d.ldc = OC;
                    memset(c1, 0x55, osz); memset(c2, 0x66, osz); memset(c3, 0x77, osz);
                    a.C = c1;
                    ck_assert_int_eq(et_spmm_s8(&a, &et_test_scrambled, scr, sb), ET_OK);
                    a.C = c2;
                    ck_assert_int_eq(et_spmm_s8_ref(&a), ET_OK);
                    d.C = c3;
                    ck_assert_int_eq(et_qgemm_s8_ref(&d), ET_OK);
                    {
                        size_t bytes = (size_t)R * OC * (e == 0 ? 1 : 4);
                        ck_assert_msg(memcmp(c1, c3, bytes) == 0, "spmm_s8 %zu (%dx%d R %d, out %d) differs from the dense int8 loop",
                                      t, OC, K, R, e);
                        ck_assert_msg(memcmp(c2, c3, bytes) == 0, "spmm_s8_ref differs from the dense int8 loop");
                    }
                }
                cmat_free(&c);
                free(A); free(bias); free(mult); free(shift); free(scale); free(scr); free(c1); free(c2); free(c3);
            }
}
END_TEST

START_TEST(spmat_checks)
{
    cmat c;
    uint32_t rp[8];
    size_t nnz;
    /* 2:3 keeps positions 0..2; a 3 in a 2-bit field is out of range */
    cmat_make(&c, 6, 15, 2, 3, 0, 5, 0);
    c.idx[0] = (uint8_t)(c.idx[0] | 3);
    ck_assert_int_eq(et_spmat_check(&c.s), ET_ERR_FORMAT);
    cmat_free(&c);
    /* a bitmap whose count is not the one claimed, and a row pointer out of step */
    cmat_make(&c, 7, 37, 0, 0, 0.5f, 6, 0);
    nnz = c.rowptr[7];
    ck_assert_int_eq(et_spmat_rowptr(c.idx, 7, 37, nnz + 1, rp), ET_ERR_FORMAT);
    ck_assert_int_eq(et_spmat_rowptr(c.idx, 7, 37, nnz, rp), ET_OK);
    c.rowptr[3]++;
    ck_assert_int_eq(et_spmat_check(&c.s), ET_ERR_FORMAT);
    c.rowptr[3]--;
    c.s.vf = NULL; c.s.vq = NULL;
    ck_assert_int_eq(et_spmat_check(&c.s), ET_ERR_INVALID);
    cmat_free(&c);
    /* N:M shapes */
    cmat_make(&c, 5, 36, 2, 4, 0, 7, 0);
    c.s.N = 4;
    ck_assert_int_eq(et_spmat_check(&c.s), ET_ERR_INVALID);
    c.s.N = 2; c.s.cols = 34;
    ck_assert_int_eq(et_spmat_check(&c.s), ET_ERR_INVALID);
    cmat_free(&c);
}
END_TEST

// --- the model

#define LYR 2
static et_gpt_config tiny(void)
{
    et_gpt_config c;
    memset(&c, 0, sizeof c);
    c.vocab = 37; c.context = 16; c.layers = LYR; c.heads = 2; c.channels = 32;
    et_gpt_config_check(&c);
    return c;
}

/* everything a compressed model needs from the host: fp32 params (dropped weights zero),
 * the factors and masks per linear */
typedef struct {
    et_gpt_config cfg;
    size_t np;
    float *params;
    et_clinear_spec spec[LYR * ET_CGPT_LIN];
    et_clinear_src src[LYR * ET_CGPT_LIN];
    float *fa[LYR * ET_CGPT_LIN], *fb[LYR * ET_CGPT_LIN];
    uint8_t *mw[LYR * ET_CGPT_LIN], *ma[LYR * ET_CGPT_LIN], *mb[LYR * ET_CGPT_LIN];
} work;

/* prunes w (rows, cols) as the spec says and returns its mask (NULL for dense) */
static uint8_t *prune_as(et_cmat_spec *s, float *w, int rows, int cols, float sp)
{
    size_t n = (size_t)rows * cols;
    uint8_t *m;
    if (s->format == ET_CMAT_DENSE) return NULL;
    m = malloc(et_prune_mask_bytes(n));
    if (s->format == ET_CMAT_NM) ck_assert_int_eq(et_prune_nm(w, rows, cols, s->N, s->M, m), ET_OK);
    else ck_assert_int_eq(et_prune_magnitude(w, n, sp, m, NULL), ET_OK);
    et_prune_apply(w, m, n);
    if (s->format == ET_CMAT_BITMAP) s->nnz = (uint32_t)et_prune_count(m, n);
    return m;
}

/* kinds: 0 all dense; 1 sparse only (N:M and bitmap); 2 sparse + factored */
static void work_make(work *w, int kinds, uint64_t seed)
{
    et_tensor_info t[ET_GPT_NTENSORS];
    static const int wt[4] = {4, 6, 10, 12};
    size_t i;
    int l, j;
    memset(w, 0, sizeof *w);
    w->cfg = tiny();
    w->np = et_gpt_tensors(&w->cfg, t);
    w->params = randn(w->np, seed, 0.15f);
    for (i = 0; i < t[2].count; i++) w->params[t[2].offset + i] += 1.0f; /* LayerNorm gains near 1 */
    for (i = 0; i < t[8].count; i++) w->params[t[8].offset + i] += 1.0f;
    for (i = 0; i < t[14].count; i++) w->params[t[14].offset + i] += 1.0f;
    for (l = 0; l < LYR; l++)
        for (j = 0; j < ET_CGPT_LIN; j++) {
            int i4 = l * ET_CGPT_LIN + j, OC, K;
            et_clinear_spec *s = &w->spec[i4];
            float *W;
            et_cgpt_linear_dims(&w->cfg, j, &OC, &K);
            W = w->params + t[wt[j]].offset + (size_t)l * OC * K;
            memset(s, 0, sizeof *s);
            if (kinds == 2 && (j == ET_CLIN_FC || (j == ET_CLIN_ATTPROJ && l == 1))) {
                int r = j == ET_CLIN_FC ? 8 + 4 * l : 12;
                s->rank = r;
                w->fa[i4] = randn((size_t)OC * r, seed + 10 + i4, 0.3f);
                w->fb[i4] = randn((size_t)r * K, seed + 50 + i4, 0.3f);
                s->a.format = l ? ET_CMAT_BITMAP : ET_CMAT_NM; s->a.N = 2; s->a.M = 4;
                s->b.format = l ? ET_CMAT_DENSE : ET_CMAT_BITMAP;
                w->ma[i4] = prune_as(&s->a, w->fa[i4], OC, r, 0.4f);
                w->mb[i4] = prune_as(&s->b, w->fb[i4], r, K, 0.5f);
                w->src[i4].a = w->fa[i4]; w->src[i4].b = w->fb[i4];
                w->src[i4].amask = w->ma[i4]; w->src[i4].bmask = w->mb[i4];
                continue;
            }
            if (kinds) {
                static const int fm[2][4] = {{ET_CMAT_NM, ET_CMAT_BITMAP, ET_CMAT_NM, ET_CMAT_NM},
                                             {ET_CMAT_DENSE, ET_CMAT_NM, ET_CMAT_BITMAP, ET_CMAT_BITMAP}};
                static const int nm[4][2] = {{2, 4}, {1, 4}, {4, 8}, {3, 16}};
                s->w.format = fm[l][j];
                s->w.N = nm[j][0]; s->w.M = nm[j][1];
            }
            w->mw[i4] = prune_as(&s->w, W, OC, K, l ? 0.7f : 0.3f);
            w->src[i4].w = W; w->src[i4].wmask = w->mw[i4];
        }
}

static void work_free(work *w)
{
    int i;
    free(w->params);
    for (i = 0; i < LYR * ET_CGPT_LIN; i++) {
        free(w->fa[i]); free(w->fb[i]); free(w->mw[i]); free(w->ma[i]); free(w->mb[i]);
    }
}

/* blob + arena + model */
typedef struct {
    void *blob, *mem;
    size_t blob_bytes, plan;
    et_arena arena;
    et_cgpt m;
} built;

static void build(built *b, const work *w, et_cgpt_mode mode, const float *lo, const float *hi, int B, int T,
                  const et_threads *th)
{
    et_arena sa;
    size_t sb = et_cgpt_pack_scratch_bytes(&w->cfg);
    void *smem = et_test_aligned(sb);
    memset(b, 0, sizeof *b);
    ck_assert_int_eq(et_cgpt_blob_bytes(&w->cfg, mode, w->spec, &b->blob_bytes), ET_OK);
    b->blob = et_test_aligned(b->blob_bytes);
    et_arena_init(&sa, smem, sb);
    ck_assert_int_eq(et_cgpt_pack(&w->cfg, mode, w->spec, w->params, w->src, lo, hi, b->blob, b->blob_bytes, &sa), ET_OK);
    ck_assert_uint_eq(sa.head, 0);
    free(smem);
    ck_assert_int_eq(et_cgpt_plan(&w->cfg, mode, w->spec, B, T, et_threads_workers(th), &b->plan), ET_OK);
    b->mem = et_test_aligned(b->plan);
    et_arena_init(&b->arena, b->mem, b->plan);
    ck_assert_int_eq(et_cgpt_create(&b->m, &w->cfg, mode, w->spec, b->blob, b->blob_bytes, B, T, th, &b->arena), ET_OK);
    ck_assert_uint_eq(b->arena.high_water, b->plan); /* the plan is exact */
}

static void built_free(built *b) { free(b->blob); free(b->mem); }

static void tokens(int *in, int *tg, int n, uint64_t seed)
{
    et_rng r;
    int i;
    et_rng_seed(&r, seed);
    for (i = 0; i < n; i++) {
        in[i] = (int)(et_rng_u64(&r) % 37);
        tg[i] = (int)(et_rng_u64(&r) % 37);
    }
}

/* dense fp32 reference: et_gpt (cpu backend) on the dense-expanded parameters */
static void gpt_logits(const et_gpt_config *cfg, const float *params, const int *in, const int *tg, int B, int T,
                       float *logits, float *loss)
{
    et_runtime rt;
    et_error e = {0};
    int b, t;
    ck_assert_int_eq(et_runtime_open(&rt, "cpu", cfg, B, T, ET_GPT_INFER, 1, &e), ET_OK);
    et_gpt_set_params(&rt.model, params);
    ck_assert_int_eq(et_gpt_forward(&rt.model, in, tg, B, T), ET_OK);
    for (b = 0; b < B; b++)
        for (t = 0; t < T; t++) et_gpt_logits(&rt.model, b, t, logits + ((size_t)b * T + t) * cfg->vocab);
    *loss = rt.model.mean_loss;
    et_runtime_close(&rt);
}

static void cgpt_all_logits(const et_cgpt *m, int B, int T, float *logits)
{
    int b, t;
    for (b = 0; b < B; b++)
        for (t = 0; t < T; t++) ck_assert_int_eq(et_cgpt_logits(m, b, t, logits + ((size_t)b * T + t) * m->cfg.vocab), ET_OK);
}

/* dense parameters (and factor products) the way et_cgpt_unpack gives them back */
static float *unpacked(const work *w, const built *b)
{
    float *p = malloc(sizeof(float) * w->np);
    et_clinear_dst d[LYR * ET_CGPT_LIN];
    int i;
    memset(d, 0, sizeof d);
    for (i = 0; i < LYR * ET_CGPT_LIN; i++)
        if (w->spec[i].rank) {
            d[i].a = malloc(sizeof(float) * 4 * 32 * 32);
            d[i].b = malloc(sizeof(float) * 4 * 32 * 32);
        }
    ck_assert_int_eq(et_cgpt_unpack(&w->cfg, ET_CGPT_F32, w->spec, b->blob, b->blob_bytes, p, d), ET_OK);
    for (i = 0; i < LYR * ET_CGPT_LIN; i++) { free(d[i].a); free(d[i].b); }
    return p;
}

START_TEST(model_f32_dense_is_gpt)
{
    work w;
    built b;
    int B = 2, T = 16, in[32], tg[32];
    float *l1 = malloc(sizeof(float) * 32 * 37), *l2 = malloc(sizeof(float) * 32 * 37), loss;
    work_make(&w, 0, 1);
    build(&b, &w, ET_CGPT_F32, NULL, NULL, B, T, NULL);
    tokens(in, tg, B * T, 2);
    ck_assert_int_eq(et_cgpt_forward(&b.m, in, tg, B, T), ET_OK);
    cgpt_all_logits(&b.m, B, T, l1);
    gpt_logits(&w.cfg, w.params, in, tg, B, T, l2, &loss);
    /* the same ops on the same kernels: the same bits */
    ck_assert(memcmp(l1, l2, sizeof(float) * B * T * 37) == 0);
    ck_assert(b.m.mean_loss == loss);
    built_free(&b);
    work_free(&w);
    free(l1); free(l2);
}
END_TEST

START_TEST(model_f32_compact_vs_dense)
{
    work w;
    built b, r;
    int B = 2, T = 16, in[32], tg[32], kinds, i;
    float *l1 = malloc(sizeof(float) * 32 * 37), *l2 = malloc(sizeof(float) * 32 * 37), *l3 = malloc(sizeof(float) * 32 * 37);
    float loss;
    for (kinds = 1; kinds <= 2; kinds++) {
        float *dense;
        work_make(&w, kinds, 10 + kinds);
        build(&b, &w, ET_CGPT_F32, NULL, NULL, B, T, &et_test_scrambled);
        build(&r, &w, ET_CGPT_F32, NULL, NULL, B, T, NULL);
        r.m.reference = 1;
        tokens(in, tg, B * T, 3);
        ck_assert_int_eq(et_cgpt_forward(&b.m, in, tg, B, T), ET_OK);
        cgpt_all_logits(&b.m, B, T, l1);
        ck_assert_int_eq(et_cgpt_forward(&r.m, in, tg, B, T), ET_OK);
        cgpt_all_logits(&r.m, B, T, l3);
        dense = unpacked(&w, &b);
        gpt_logits(&w.cfg, dense, in, tg, B, T, l2, &loss);
        for (i = 0; i < B * T * 37; i++) {
            ET_CK_CLOSE(l1[i], l2[i], 1e-4, 1e-4);
            ET_CK_CLOSE(l3[i], l2[i], 1e-4, 1e-4);
        }
        ET_CK_CLOSE(b.m.mean_loss, loss, 1e-5, 1e-5);
        /* fewer rows than planned */
        ck_assert_int_eq(et_cgpt_forward(&b.m, in, NULL, 1, 11), ET_OK);
        ck_assert_int_eq(et_cgpt_logits(&b.m, 0, 10, l1), ET_OK);
        ck_assert_int_eq(et_cgpt_logits(&b.m, 0, 11, l1), ET_ERR_RANGE);
        free(dense);
        built_free(&b);
        built_free(&r);
        work_free(&w);
    }
    free(l1); free(l2); free(l3);
}
END_TEST

/* min/max of every site through the F32 model's observer */
typedef struct { float *lo, *hi; int n; } ranges;
static et_status record(void *ctx, int s, const float *x, size_t n)
{
    ranges *r = (ranges *)ctx;
    size_t i;
    ck_assert(s >= 0 && s < r->n);
    for (i = 0; i < n; i++) {
        if (x[i] < r->lo[s]) r->lo[s] = x[i];
        if (x[i] > r->hi[s]) r->hi[s] = x[i];
    }
    return ET_OK;
}

static void calibrate(const work *w, float *lo, float *hi, const int *in, int B, int T)
{
    built b;
    ranges r;
    int i, ns = et_cgpt_nsites(&w->cfg);
    for (i = 0; i < ns; i++) { lo[i] = 1e30f; hi[i] = -1e30f; }
    r.lo = lo; r.hi = hi; r.n = ns;
    build(&b, w, ET_CGPT_F32, NULL, NULL, B, T, NULL);
    b.m.observe = record;
    b.m.observe_ctx = &r;
    ck_assert_int_eq(et_cgpt_forward(&b.m, in, NULL, B, T), ET_OK);
    for (i = 0; i < ns; i++) ck_assert_int_eq(lo[i] <= hi[i], et_cgpt_site_used(&w->cfg, w->spec, i));
    for (i = 0; i < ns; i++) if (lo[i] > hi[i]) { lo[i] = 0; hi[i] = 1; }
    built_free(&b);
}

START_TEST(model_w8a8_is_qgpt)
{
    work w;
    built b;
    int B = 2, T = 16, in[32], tg[32], kinds, l, s, i;
    float lo[LYR * 12 + 1], hi[LYR * 12 + 1], qlo[LYR * 8 + 1], qhi[LYR * 8 + 1];
    float *l1 = malloc(sizeof(float) * 32 * 37), *l2 = malloc(sizeof(float) * 32 * 37);
    for (kinds = 0; kinds <= 1; kinds++) {
        et_qgpt q;
        et_arena qa;
        size_t qb, qp;
        void *qblob, *qmem;
        int b_, t_;
        work_make(&w, kinds, 20 + kinds);
        tokens(in, tg, B * T, 4);
        calibrate(&w, lo, hi, in, B, T);
        for (l = 0; l < LYR; l++)
            for (s = 0; s < 8; s++) { qlo[l * 8 + s] = lo[l * 12 + s]; qhi[l * 8 + s] = hi[l * 12 + s]; }
        qlo[LYR * 8] = lo[LYR * 12]; qhi[LYR * 8] = hi[LYR * 12];
        build(&b, &w, ET_CGPT_W8A8, lo, hi, B, T, &et_test_scrambled);
        ck_assert_int_eq(et_cgpt_forward(&b.m, in, tg, B, T), ET_OK);
        cgpt_all_logits(&b.m, B, T, l1);
        /* et_qgpt over the dense-expanded (masked) weights */
        ck_assert_int_eq(et_qgpt_tensors(&w.cfg, ET_QMODE_W8A8, NULL, &qb), ET_OK);
        qblob = et_test_aligned(qb);
        ck_assert_int_eq(et_qgpt_quantize(&w.cfg, w.params, ET_QMODE_W8A8, qlo, qhi, qblob, qb), ET_OK);
        ck_assert_int_eq(et_qgpt_plan(&w.cfg, ET_QMODE_W8A8, B, T, 1, &qp), ET_OK);
        qmem = et_test_aligned(qp);
        et_arena_init(&qa, qmem, qp);
        ck_assert_int_eq(et_qgpt_create(&q, &w.cfg, ET_QMODE_W8A8, qblob, qb, B, T, NULL, &qa), ET_OK);
        ck_assert_int_eq(et_qgpt_forward(&q, in, tg, B, T), ET_OK);
        for (b_ = 0; b_ < B; b_++)
            for (t_ = 0; t_ < T; t_++) et_qgpt_logits(&q, b_, t_, l2 + ((size_t)b_ * T + t_) * 37);
        for (i = 0; i < B * T * 37; i++) ck_assert_msg(l1[i] == l2[i], "kinds %d logit %d: %.9g vs %.9g", kinds, i, l1[i], l2[i]);
        ck_assert(b.m.mean_loss == q.mean_loss);
        if (kinds) ck_assert(b.blob_bytes < qb); /* the compact storage is smaller */
        free(qblob); free(qmem);
        built_free(&b);
        work_free(&w);
    }
    free(l1); free(l2);
}
END_TEST

START_TEST(model_w8a8_factored)
{
    work w;
    built b, r, f;
    int B = 2, T = 16, in[32], tg[32];
    float lo[LYR * 12 + 1], hi[LYR * 12 + 1], *l1 = malloc(sizeof(float) * 32 * 37), *l2 = malloc(sizeof(float) * 32 * 37);
    work_make(&w, 2, 30);
    tokens(in, tg, B * T, 5);
    calibrate(&w, lo, hi, in, B, T);
    build(&b, &w, ET_CGPT_W8A8, lo, hi, B, T, &et_test_scrambled);
    build(&r, &w, ET_CGPT_W8A8, lo, hi, B, T, NULL);
    build(&f, &w, ET_CGPT_F32, NULL, NULL, B, T, NULL);
    r.m.reference = 1;
    ck_assert_int_eq(et_cgpt_forward(&b.m, in, tg, B, T), ET_OK);
    cgpt_all_logits(&b.m, B, T, l1);
    ck_assert_int_eq(et_cgpt_forward(&r.m, in, tg, B, T), ET_OK);
    cgpt_all_logits(&r.m, B, T, l2);
    /* the integer paths agree with their plain loops to the bit */
    ck_assert(memcmp(l1, l2, sizeof(float) * B * T * 37) == 0);
    /* and the quantized model stays near its float self */
    ck_assert_int_eq(et_cgpt_forward(&f.m, in, tg, B, T), ET_OK);
    ck_assert_msg(fabsf(b.m.mean_loss - f.m.mean_loss) < 0.02f * f.m.mean_loss, "w8a8 %g vs f32 %g",
                  b.m.mean_loss, f.m.mean_loss);
    built_free(&b); built_free(&r); built_free(&f);
    work_free(&w);
    free(l1); free(l2);
}
END_TEST

START_TEST(model_plan_specs_and_corruption)
{
    work w;
    built b;
    et_cgpt m;
    et_arena a;
    size_t plan, bb;
    void *mem;
    et_gpt_config c;
    et_clinear_spec keep;
    uint8_t *bitmap;
    int i;
    work_make(&w, 2, 40);
    build(&b, &w, ET_CGPT_F32, NULL, NULL, 2, 16, NULL);
    ck_assert_uint_eq(et_cgpt_params(&w.cfg, w.spec) < w.np, 1);
    /* one byte short: refused, the arena untouched */
    ck_assert_int_eq(et_cgpt_plan(&w.cfg, ET_CGPT_F32, w.spec, 2, 16, 1, &plan), ET_OK);
    mem = et_test_aligned(plan);
    et_arena_init(&a, mem, plan - 1);
    ck_assert_int_eq(et_cgpt_create(&m, &w.cfg, ET_CGPT_F32, w.spec, b.blob, b.blob_bytes, 2, 16, NULL, &a), ET_ERR_NOMEM);
    ck_assert_uint_eq(a.tail + a.head, 0);
    et_arena_init(&a, mem, plan);
    ck_assert_int_eq(et_cgpt_create(&m, &w.cfg, ET_CGPT_F32, w.spec, b.blob, b.blob_bytes, 2, 16, NULL, &a), ET_OK);
    ck_assert_int_eq(et_cgpt_create(&m, &w.cfg, ET_CGPT_F32, w.spec, b.blob, b.blob_bytes - 1, 2, 16, NULL, &a),
                     ET_ERR_INVALID);
    /* bad specs */
    keep = w.spec[2];
    w.spec[2].rank = 33;
    ck_assert_int_eq(et_cgpt_blob_bytes(&w.cfg, ET_CGPT_F32, w.spec, &bb), ET_ERR_INVALID);
    w.spec[2].rank = 0; w.spec[2].w.format = ET_CMAT_NM; w.spec[2].w.N = 2; w.spec[2].w.M = 3;
    ck_assert_int_eq(et_cgpt_spec_check(&w.cfg, w.spec), ET_ERR_INVALID);   /* 3 does not divide 32 */
    w.spec[2].w.format = ET_CMAT_BITMAP; w.spec[2].w.nnz = 128 * 32 + 1;
    ck_assert_int_eq(et_cgpt_spec_check(&w.cfg, w.spec), ET_ERR_INVALID);
    w.spec[2] = keep;
    c = w.cfg;
    c.ffn = 3 * c.channels;
    ck_assert_int_eq(et_cgpt_spec_check(&c, w.spec), ET_ERR_UNSUPPORTED);
    ck_assert_int_eq(et_cgpt_plan(&w.cfg, 3, w.spec, 2, 16, 1, &plan), ET_ERR_INVALID);
    ck_assert_int_eq(et_cgpt_plan(&w.cfg, ET_CGPT_F32, w.spec, 2, 17, 1, &plan), ET_ERR_RANGE);
    /* a bitmap that no longer holds its count: refused at create */
    for (i = 0; i < LYR * ET_CGPT_LIN; i++)
        if (!w.spec[i].rank && w.spec[i].w.format == ET_CMAT_BITMAP) break;
    ck_assert_int_lt(i, LYR * ET_CGPT_LIN);
    {
        et_clin d;
        et_cgpt v;
        memset(&v, 0, sizeof v);
        et_arena_init(&a, mem, plan);
        ck_assert_int_eq(et_cgpt_create(&v, &w.cfg, ET_CGPT_F32, w.spec, b.blob, b.blob_bytes, 2, 16, NULL, &a), ET_OK);
        d = v.lin[i];
        bitmap = (uint8_t *)(uintptr_t)d.w.sp.index;
        bitmap[0] ^= 1;
        et_arena_init(&a, mem, plan);
        ck_assert_int_eq(et_cgpt_create(&v, &w.cfg, ET_CGPT_F32, w.spec, b.blob, b.blob_bytes, 2, 16, NULL, &a),
                         ET_ERR_FORMAT);
        bitmap[0] ^= 1;
    }
    /* a mask that is not N:M cannot be packed as N:M */
    for (i = 0; i < LYR * ET_CGPT_LIN; i++)
        if (!w.spec[i].rank && w.spec[i].w.format == ET_CMAT_NM) break;
    {
        et_arena sa;
        size_t sb = et_cgpt_pack_scratch_bytes(&w.cfg);
        void *smem = et_test_aligned(sb);
        uint8_t *keepm = w.mw[i];
        uint8_t ones[4096];
        memset(ones, 0xFF, sizeof ones);
        et_arena_init(&sa, smem, sb);
        w.src[i].wmask = ones;
        ck_assert_int_eq(et_cgpt_pack(&w.cfg, ET_CGPT_F32, w.spec, w.params, w.src, NULL, NULL, b.blob, b.blob_bytes, &sa),
                         ET_ERR_INVALID);
        w.src[i].wmask = keepm;
        ck_assert_int_eq(et_cgpt_pack(&w.cfg, ET_CGPT_W8A8, w.spec, w.params, w.src, NULL, NULL, b.blob, b.blob_bytes, &sa),
                         ET_ERR_INVALID); /* W8A8 without ranges */
        free(smem);
    }
    free(mem);
    built_free(&b);
    work_free(&w);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("cgpt");
    TCase *t = tcase_create("kernels");
    tcase_set_timeout(t, 300);
    tcase_add_test(t, spmm_f32_vs_dense);
    tcase_add_test(t, spmm_s8_bit_exact);
    tcase_add_test(t, spmat_checks);
    suite_add_tcase(s, t);
    t = tcase_create("model");
    tcase_set_timeout(t, 300);
    tcase_add_test(t, model_f32_dense_is_gpt);
    tcase_add_test(t, model_f32_compact_vs_dense);
    tcase_add_test(t, model_w8a8_is_qgpt);
    tcase_add_test(t, model_w8a8_factored);
    tcase_add_test(t, model_plan_specs_and_corruption);
    suite_add_tcase(s, t);
    return s;
}

ET_CHECK_MAIN(suite)

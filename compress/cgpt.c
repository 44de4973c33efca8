/* cgpt.c - the compressed GPT's model: specs, the blob's layout, exact plan, creation in
 * an arena, and the F32 and W8A8 forward passes (et_cgpt.h has the scheme).
 *
 * One walk lays out the blob (et__cgpt_walk, shared with the packer) and one sizes and
 * carves the arena, each run in "count" and "take" mode, so neither can drift. The F32
 * forward is core's forward op for op (et_gpt_forward with the cpu backend) except that
 * each matmul goes to the matrix's own kernel; the W8A8 forward is et_qgpt's, likewise.
 * Deliberately avoids: the backend table (this is a cpu path), and any allocation.
 */
#include "et_cgpt_impl.h"
#include "et_cpu_ops.h"
#include "et_gemm.h"
#include "et_qgemm.h"
#include "et_qgpt.h"

#define TRY(x) do { et_status et__s = (x); if (et__s != ET_OK) return et__s; } while (0)

// --- specs

int et_cgpt_nsites(const et_gpt_config *cfg) { return ET_CSITE_PER_LAYER * cfg->layers + 1; }

void et_cgpt_linear_dims(const et_gpt_config *cfg, int j, int *OC, int *K)
{
    int C = cfg->channels;
    *OC = j == ET_CLIN_QKV ? 3 * C : j == ET_CLIN_FC ? 4 * C : C;
    *K = j == ET_CLIN_FCPROJ ? 4 * C : C;
}

static int mat_ok(const et_cmat_spec *s, int rows, int cols)
{
    if (s->format == ET_CMAT_DENSE) return 1;
    if (s->format == ET_CMAT_NM) return s->N >= 1 && s->N < s->M && s->M <= 16 && cols % s->M == 0;
    return s->format == ET_CMAT_BITMAP && (size_t)s->nnz <= (size_t)rows * (size_t)cols;
}

size_t et_cgpt_mat_values(const et_cmat_spec *s, int rows, int cols)
{
    if (!s || rows < 1 || cols < 1 || !mat_ok(s, rows, cols)) return 0;
    if (s->format == ET_CMAT_DENSE) return (size_t)rows * (size_t)cols;
    if (s->format == ET_CMAT_NM) return et_spmat_nm_values(rows, cols, s->N, s->M);
    return s->nnz;
}

et_status et_cgpt_spec_check(const et_gpt_config *cfg, const et_clinear_spec *spec)
{
    et_gpt_config c;
    int i, OC, K;
    if (!cfg || !spec) return ET_ERR_INVALID;
    c = *cfg;
    if (et_gpt_config_check(&c) != ET_OK) return ET_ERR_INVALID;
    if (!et_gpt_config_is_gpt2(&c)) return ET_ERR_UNSUPPORTED;
    for (i = 0; i < c.layers * ET_CGPT_LIN; i++) {
        const et_clinear_spec *s = &spec[i];
        int r = s->rank;
        et_cgpt_linear_dims(&c, i % ET_CGPT_LIN, &OC, &K);
        if (r == 0 ? !mat_ok(&s->w, OC, K)
                   : (r < 0 || r > (OC < K ? OC : K) || !mat_ok(&s->a, OC, r) || !mat_ok(&s->b, r, K)))
            return ET_ERR_INVALID;
    }
    return ET_OK;
}

int et_cgpt_site_used(const et_gpt_config *cfg, const et_clinear_spec *spec, int s)
{
    int k = s % ET_CSITE_PER_LAYER, l = s / ET_CSITE_PER_LAYER;
    if (s < 0 || s >= et_cgpt_nsites(cfg)) return 0;
    if (l == cfg->layers || k < ET_CSITE_MID(0)) return 1;
    return spec[l * ET_CGPT_LIN + (k - ET_CSITE_MID(0))].rank > 0;
}

size_t et_cgpt_params(const et_gpt_config *cfg, const et_clinear_spec *spec)
{
    et_tensor_info t[ET_GPT_NTENSORS];
    et_gpt_config c;
    size_t n;
    int i, OC, K;
    if (et_cgpt_spec_check(cfg, spec) != ET_OK) return 0;
    c = *cfg;
    et_gpt_config_check(&c);
    n = et_gpt_tensors(&c, t) - t[4].count - t[6].count - t[10].count - t[12].count;
    for (i = 0; i < c.layers * ET_CGPT_LIN; i++) {
        const et_clinear_spec *s = &spec[i];
        et_cgpt_linear_dims(&c, i % ET_CGPT_LIN, &OC, &K);
        n += s->rank ? et_cgpt_mat_values(&s->a, OC, s->rank) + et_cgpt_mat_values(&s->b, s->rank, K)
                     : et_cgpt_mat_values(&s->w, OC, K);
    }
    return n;
}

// --- the blob's layout

typedef struct {
    const uint8_t *base; /* NULL: count only */
    size_t off;
} cursor;

static void *take(cursor *c, size_t bytes)
{
    void *p = c->base ? (void *)(uintptr_t)(c->base + c->off) : 0;
    c->off += et_arena_block(bytes);
    return p;
}

static void walk_mat(cursor *c, et_cmat *d, const et_cmat_spec *s, int rows, int cols, int a8)
{
    size_t n = et_cgpt_mat_values(s, rows, cols);
    void *v = take(c, n * (a8 ? 1 : sizeof(float)));
    ET_MEMSET(d, 0, sizeof *d);
    d->format = s->format;
    d->rows = rows;
    d->cols = cols;
    if (s->format != ET_CMAT_DENSE) {
        d->sp.format = s->format;
        d->sp.rows = rows;
        d->sp.cols = cols;
        d->sp.N = s->N;
        d->sp.M = s->M;
        d->sp.index = (const uint8_t *)take(c, et_spmat_index_bytes(s->format, rows, cols, s->N, s->M));
        if (a8) d->sp.vq = (const int8_t *)v;
        else d->sp.vf = (const float *)v;
    } else if (a8) {
        d->wq = (const int8_t *)v;
    } else {
        d->wf = (const float *)v;
    }
    if (a8) d->scale = (const float *)take(c, (size_t)rows * sizeof(float));
}

void et__cgpt_walk(const et_gpt_config *cfg, et_cgpt_mode mode, const et_clinear_spec *spec,
                   const void *blob, et_cgpt *m, et_clin *lin, int only, size_t *bytes)
{
    size_t Vp = (size_t)cfg->vocab_padded, T = (size_t)cfg->context, L = (size_t)cfg->layers,
           C = (size_t)cfg->channels, f = sizeof(float), S = (size_t)et_cgpt_nsites(cfg);
    int a8 = mode == ET_CGPT_W8A8, i;
    cursor c;
    et_cgpt dummy;
    c.base = (const uint8_t *)blob;
    c.off = 0;
    if (!m) m = &dummy;
    if (a8) {
        m->wte_q = (const int8_t *)take(&c, Vp * C);
        m->wte_s = (const float *)take(&c, Vp * f);
        m->wpe_q = (const int8_t *)take(&c, T * C);
        m->wpe_s = (const float *)take(&c, T * f);
    } else {
        m->wte = (const float *)take(&c, Vp * C * f);
        m->wpe = (const float *)take(&c, T * C * f);
    }
    m->ln1w = (const float *)take(&c, L * C * f);
    m->ln1b = (const float *)take(&c, L * C * f);
    m->ln2w = (const float *)take(&c, L * C * f);
    m->ln2b = (const float *)take(&c, L * C * f);
    m->lnfw = (const float *)take(&c, C * f);
    m->lnfb = (const float *)take(&c, C * f);
    if (a8) {
        m->gelu_lut = (const int8_t *)take(&c, L * 256);
        m->act_scale = (const float *)take(&c, S * f);
        m->act_zp = (const int32_t *)take(&c, S * sizeof(int32_t));
        m->logit_s = (const float *)take(&c, Vp * f);
        m->logit_b = (const int32_t *)take(&c, Vp * sizeof(int32_t));
    }
    for (i = 0; i < (int)L * ET_CGPT_LIN; i++) {
        et_clin tmp, *d = !lin || (only >= 0 && i != only) ? &tmp : only >= 0 ? lin : &lin[i];
        int r = spec[i].rank, OC, K;
        et_cgpt_linear_dims(cfg, i % ET_CGPT_LIN, &OC, &K);
        ET_MEMSET(d, 0, sizeof *d);
        d->rank = r;
        d->OC = OC;
        d->K = K;
        if (a8) {
            d->b32 = (const int32_t *)take(&c, (size_t)OC * 4);
            d->mult = (const int32_t *)take(&c, (size_t)OC * 4);
            d->shift = (const int32_t *)take(&c, (size_t)OC * 4);
            if (r) {
                d->mb32 = (const int32_t *)take(&c, (size_t)r * 4);
                d->mmult = (const int32_t *)take(&c, (size_t)r * 4);
                d->mshift = (const int32_t *)take(&c, (size_t)r * 4);
            }
        } else {
            d->bias = (const float *)take(&c, (size_t)OC * f);
        }
        if (!r) {
            walk_mat(&c, &d->w, &spec[i].w, OC, K, a8);
        } else {
            walk_mat(&c, &d->b, &spec[i].b, r, K, a8);
            walk_mat(&c, &d->a, &spec[i].a, OC, r, a8);
        }
    }
    *bytes = c.off;
}

et_status et_cgpt_blob_bytes(const et_gpt_config *cfg, et_cgpt_mode mode,
                             const et_clinear_spec *spec, size_t *bytes)
{
    et_gpt_config c;
    if (!bytes || (mode != ET_CGPT_F32 && mode != ET_CGPT_W8A8)) return ET_ERR_INVALID;
    TRY(et_cgpt_spec_check(cfg, spec));
    c = *cfg;
    et_gpt_config_check(&c);
    et__cgpt_walk(&c, mode, spec, 0, 0, 0, -1, bytes);
    return ET_OK;
}

// --- the arena

typedef struct {
    et_arena *arena; /* NULL: count only */
    size_t bytes;
    et_status err;
} alayout;

static void *atake(alayout *A, size_t bytes)
{
    void *p = 0;
    A->bytes += et_arena_block(bytes);
    if (A->arena && A->err == ET_OK) A->err = et_arena_alloc(A->arena, bytes, &p);
    return p;
}

/* the rowptr pool's size, the largest rank and the largest K of a sparse matrix */
static size_t rowptr_words(const et_gpt_config *c, const et_clinear_spec *spec, int *rmax, int *kmax)
{
    size_t n = 0;
    int i, OC, K;
    *rmax = 0;
    *kmax = 0;
    for (i = 0; i < c->layers * ET_CGPT_LIN; i++) {
        const et_clinear_spec *s = &spec[i];
        et_cgpt_linear_dims(c, i % ET_CGPT_LIN, &OC, &K);
        if (s->rank > *rmax) *rmax = s->rank;
#define MAT(ms, rows, cols)                                              \
        if ((ms).format == ET_CMAT_BITMAP) n += (size_t)(rows) + 1;      \
        if ((ms).format != ET_CMAT_DENSE && (cols) > *kmax) *kmax = (cols)
        if (!s->rank) { MAT(s->w, OC, K); }
        else { MAT(s->b, s->rank, K); MAT(s->a, OC, s->rank); }
#undef MAT
    }
    return n;
}

static void walk_arena(alayout *A, et_cgpt *m, const et_gpt_config *c, et_cgpt_mode mode,
                       const et_clinear_spec *spec, int B, int T, int nworkers, uint32_t **pool)
{
    size_t BT = (size_t)B * T, C = (size_t)c->channels, Vp = (size_t)c->vocab_padded,
           att = (size_t)B * c->heads * T, /* a log-sum-exp per row */ f = sizeof(float), sc, s2;
    int rmax, kmax, nw = nworkers < 1 ? 1 : nworkers;
    size_t words = rowptr_words(c, spec, &rmax, &kmax);
    m->lin = (et_clin *)atake(A, sizeof(et_clin) * (size_t)c->layers * ET_CGPT_LIN);
    *pool = (uint32_t *)atake(A, words * sizeof(uint32_t));
    m->rmax = rmax;
    m->inputs = (int *)atake(A, BT * sizeof(int));
    m->targets = (int *)atake(A, BT * sizeof(int));
    m->res_a = (float *)atake(A, BT * C * f);
    m->res_b = (float *)atake(A, BT * C * f);
    m->ln = (float *)atake(A, BT * C * f);
    m->tmp = (float *)atake(A, BT * C * f);
    m->ln_mean = (float *)atake(A, BT * f);
    m->ln_rstd = (float *)atake(A, BT * f);
    m->qkv = (float *)atake(A, BT * 3 * C * f);
    m->atty = (float *)atake(A, BT * C * f);
    m->att = (float *)atake(A, att * f);
    if (mode == ET_CGPT_W8A8) {
        m->qa = (int8_t *)atake(A, BT * 4 * C);
        m->qb = (int8_t *)atake(A, BT * 4 * C);
        m->qm = (int8_t *)atake(A, BT * (size_t)rmax);
        sc = et_qgemm_s8_scratch_bytes(4 * c->channels, nw);
    } else {
        m->fch = (float *)atake(A, BT * 4 * C * f);
        m->fchg = (float *)atake(A, BT * 4 * C * f);
        m->mid = (float *)atake(A, BT * (size_t)rmax * f);
        sc = et_gemm_scratch_bytes(nw);
    }
    m->logits = (float *)atake(A, BT * Vp * f);
    m->probs = (float *)atake(A, BT * Vp * f);
    m->losses = (float *)atake(A, BT * f);
    s2 = kmax ? et_spmm_scratch_bytes((int)BT, kmax, nw) : 0;
    m->scratch_bytes = sc > s2 ? sc : s2;
    m->scratch = atake(A, m->scratch_bytes);
    m->att_slice = et_cpu_flash_slice();
    m->att_scratch = (float *)atake(A, m->att_slice * (size_t)nw);
}

et_status et_cgpt_plan(const et_gpt_config *cfg, et_cgpt_mode mode, const et_clinear_spec *spec,
                       int B, int T, int nworkers, size_t *bytes)
{
    et_gpt_config c;
    et_cgpt tmp;
    alayout A;
    uint32_t *pool;
    if (!bytes || (mode != ET_CGPT_F32 && mode != ET_CGPT_W8A8)) return ET_ERR_INVALID;
    TRY(et_cgpt_spec_check(cfg, spec));
    c = *cfg;
    et_gpt_config_check(&c);
    if (B <= 0 || T <= 0) return ET_ERR_INVALID;
    if (T > c.context) return ET_ERR_RANGE;
    A.arena = 0;
    A.bytes = 0;
    A.err = ET_OK;
    walk_arena(&A, &tmp, &c, mode, spec, B, T, nworkers, &pool);
    *bytes = A.bytes;
    return ET_OK;
}

static et_status ready_mat(et_cmat *w, uint32_t **pool, uint32_t nnz)
{
    if (w->format == ET_CMAT_DENSE) return ET_OK;
    if (w->format == ET_CMAT_BITMAP) {
        w->sp.rowptr = *pool;
        *pool += (size_t)w->rows + 1;
        if (et_spmat_rowptr(w->sp.index, w->rows, w->cols, nnz, (uint32_t *)(uintptr_t)w->sp.rowptr) != ET_OK)
            return ET_ERR_FORMAT;
    }
    return et_spmat_check(&w->sp) == ET_OK ? ET_OK : ET_ERR_FORMAT;
}

et_status et_cgpt_create(et_cgpt *m, const et_gpt_config *cfg, et_cgpt_mode mode,
                         const et_clinear_spec *spec, const void *blob, size_t blob_bytes, int B,
                         int T, const et_threads *th, et_arena *arena)
{
    size_t need, bb;
    alayout A;
    uint32_t *pool;
    int i;
    if (!m || !cfg || !arena || !blob || ((uintptr_t)blob & (ET_ALIGN - 1))) return ET_ERR_INVALID;
    TRY(et_cgpt_plan(cfg, mode, spec, B, T, et_threads_workers(th), &need));
    TRY(et_cgpt_blob_bytes(cfg, mode, spec, &bb));
    if (blob_bytes < bb) return ET_ERR_INVALID;
    if (need > et_arena_free_bytes(arena)) return ET_ERR_NOMEM;
    ET_MEMSET(m, 0, sizeof *m);
    m->cfg = *cfg;
    et_gpt_config_check(&m->cfg);
    m->mode = mode;
    m->B = B;
    m->T = T;
    m->th = th;
    m->mean_loss = -1.0f;
    A.arena = arena;
    A.bytes = 0;
    A.err = ET_OK;
    walk_arena(&A, m, &m->cfg, mode, spec, B, T, et_threads_workers(th), &pool);
    TRY(A.err);
    et__cgpt_walk(&m->cfg, mode, spec, blob, m, m->lin, -1, &bb);
    /* the sparse storage is checked once, here: positions in range, bitmaps' counts */
    for (i = 0; i < m->cfg.layers * ET_CGPT_LIN; i++) {
        et_clin *d = &m->lin[i];
        if (!d->rank) {
            TRY(ready_mat(&d->w, &pool, spec[i].w.nnz));
        } else {
            TRY(ready_mat(&d->b, &pool, spec[i].b.nnz));
            TRY(ready_mat(&d->a, &pool, spec[i].a.nnz));
        }
    }
    return ET_OK;
}

// --- matmuls

/* out(R,rows) = in(R,cols) . W^T + bias, float */
static et_status mat_f32(const et_cgpt *m, const et_cmat *w, float *out, const float *in,
                         const float *bias, int R)
{
    if (w->format != ET_CMAT_DENSE)
        return m->reference ? et_spmm_f32_ref(&w->sp, out, in, bias, R)
                            : et_spmm_f32(&w->sp, out, in, bias, R, m->th, m->scratch, m->scratch_bytes);
    if (m->reference) {
        int r, o, k;
        for (r = 0; r < R; r++)
            for (o = 0; o < w->rows; o++) {
                float acc = bias ? bias[o] : 0.0f;
                for (k = 0; k < w->cols; k++) acc += in[(size_t)r * w->cols + k] * w->wf[(size_t)o * w->cols + k];
                out[(size_t)r * w->rows + o] = acc;
            }
        return ET_OK;
    }
    {
        et_gemm_args g;
        g.transA = 0; g.transB = 1; g.M = R; g.N = w->rows; g.K = w->cols;
        g.A = in; g.lda = w->cols; g.B = w->wf; g.ldb = w->cols; g.bias = bias; g.accumulate = 0;
        g.C = out; g.ldc = w->rows;
        return et_gemm_f32(&g, m->th, (float *)m->scratch, m->scratch_bytes);
    }
}

static et_status observe(const et_cgpt *m, int site, const float *x, size_t n)
{
    return m->observe ? m->observe(m->observe_ctx, site, x, n) : ET_OK;
}

static et_status lin_f32(const et_cgpt *m, const et_clin *d, float *out, const float *in, int R, int mid_site)
{
    if (!d->rank) return mat_f32(m, &d->w, out, in, d->bias, R);
    TRY(mat_f32(m, &d->b, m->mid, in, 0, R));
    TRY(observe(m, mid_site, m->mid, (size_t)R * d->rank));
    return mat_f32(m, &d->a, out, m->mid, d->bias, R);
}

/* out(R,rows) int8 = requant(in(R,cols) int8 . Wq^T + b32) at zero point zp */
static et_status mat_s8(const et_cgpt *m, const et_cmat *w, int8_t *out, const int8_t *in,
                        const int32_t *b32, const int32_t *mult, const int32_t *shift, int32_t zp, int R)
{
    if (w->format == ET_CMAT_DENSE) {
        et_qgemm_args g;
        g.M = R; g.N = w->rows; g.K = w->cols;
        g.A = in; g.lda = w->cols; g.B = w->wq; g.ldb = w->cols;
        g.bias = b32; g.out = ET_QGEMM_OUT_S8; g.mult = mult; g.shift = shift; g.zp_out = zp; g.scale = 0;
        g.C = out; g.ldc = w->rows;
        return m->reference ? et_qgemm_s8_ref(&g) : et_qgemm_s8(&g, m->th, m->scratch, m->scratch_bytes);
    }
    {
        et_spmm_s8_args g;
        g.M = R; g.A = in; g.W = &w->sp;
        g.bias = b32; g.out = ET_QGEMM_OUT_S8; g.mult = mult; g.shift = shift; g.zp_out = zp; g.scale = 0;
        g.C = out;
        return m->reference ? et_spmm_s8_ref(&g) : et_spmm_s8(&g, m->th, m->scratch, m->scratch_bytes);
    }
}

static et_status lin_s8(const et_cgpt *m, const et_clin *d, int8_t *out, const int8_t *in, int R, int l,
                        int j, int ys)
{
    const int32_t *zp = m->act_zp + (size_t)l * ET_CSITE_PER_LAYER;
    if (!d->rank) return mat_s8(m, &d->w, out, in, d->b32, d->mult, d->shift, zp[ys], R);
    TRY(mat_s8(m, &d->b, m->qm, in, d->mb32, d->mmult, d->mshift, zp[ET_CSITE_MID(j)], R));
    return mat_s8(m, &d->a, out, m->qm, d->b32, d->mult, d->shift, zp[ys], R);
}

// --- the forward

static et_qparams site(const et_cgpt *m, int s)
{
    et_qparams p;
    p.scale = m->act_scale[s];
    p.zero_point = m->act_zp[s];
    return p;
}

static void add_f(float *y, const float *x, const float *d, size_t n)
{
    size_t i;
    for (i = 0; i < n; i++) y[i] = x[i] + d[i];
}

static void add_deq(float *y, const float *x, const int8_t *q, size_t n, et_qparams p)
{
    size_t i;
    for (i = 0; i < n; i++) y[i] = x[i] + p.scale * (float)((int32_t)q[i] - p.zero_point);
}

#define OBS(s, p, n) TRY(observe(m, s0 + (s), (p), (n)))

/* x (B,T,C) -> out: the residual stream through one block, as core's forward */
static et_status layer_f32(et_cgpt *m, int l, const float *x, float *out, int B, int T)
{
    const et_clin *d = m->lin + (size_t)l * ET_CGPT_LIN;
    int C = m->cfg.channels, N = B * T, s0 = l * ET_CSITE_PER_LAYER;
    size_t BT = (size_t)N, lc = (size_t)l * C;
    et_cpu_layernorm_fwd(m->th, m->ln, m->ln_mean, m->ln_rstd, x, m->ln1w + lc, m->ln1b + lc, N, C);
    OBS(ET_QSITE_LN1, m->ln, BT * C);
    TRY(lin_f32(m, &d[ET_CLIN_QKV], m->qkv, m->ln, N, s0 + ET_CSITE_MID(ET_CLIN_QKV)));
    OBS(ET_QSITE_QKV, m->qkv, BT * 3 * C);
    et_cpu_flash_fwd(m->th, m->att_scratch, m->att_slice, m->atty, m->att, m->qkv, B, T, C,
                     m->cfg.heads);
    OBS(ET_QSITE_ATTY, m->atty, BT * C);
    TRY(lin_f32(m, &d[ET_CLIN_ATTPROJ], m->ln, m->atty, N, s0 + ET_CSITE_MID(ET_CLIN_ATTPROJ)));
    OBS(ET_QSITE_ATTPROJ, m->ln, BT * C);
    add_f(m->tmp, x, m->ln, BT * C);
    et_cpu_layernorm_fwd(m->th, m->ln, m->ln_mean, m->ln_rstd, m->tmp, m->ln2w + lc, m->ln2b + lc, N, C);
    OBS(ET_QSITE_LN2, m->ln, BT * C);
    TRY(lin_f32(m, &d[ET_CLIN_FC], m->fch, m->ln, N, s0 + ET_CSITE_MID(ET_CLIN_FC)));
    OBS(ET_QSITE_FCH, m->fch, BT * 4 * C);
    et_cpu_gelu_fwd(m->th, m->fchg, m->fch, BT * 4 * C);
    OBS(ET_QSITE_GELU, m->fchg, BT * 4 * C);
    TRY(lin_f32(m, &d[ET_CLIN_FCPROJ], m->ln, m->fchg, N, s0 + ET_CSITE_MID(ET_CLIN_FCPROJ)));
    OBS(ET_QSITE_FCPROJ, m->ln, BT * C);
    add_f(out, m->tmp, m->ln, BT * C);
    return ET_OK;
}

#undef OBS

/* the same block in W8A8, as et_qgpt's */
static et_status layer_w8a8(et_cgpt *m, int l, const float *x, float *out, int B, int T)
{
    const et_clin *d = m->lin + (size_t)l * ET_CGPT_LIN;
    int C = m->cfg.channels, N = B * T, s0 = l * ET_CSITE_PER_LAYER, i;
    size_t BT = (size_t)N, lc = (size_t)l * C;
    const int8_t *lut = m->gelu_lut + (size_t)l * 256;
    et_qparams p;
    et_cpu_layernorm_fwd(m->th, m->ln, m->ln_mean, m->ln_rstd, x, m->ln1w + lc, m->ln1b + lc, N, C);
    p = site(m, s0 + ET_QSITE_LN1);
    et_quant_f32_to_s8(m->qa, m->ln, BT * C, &p);
    TRY(lin_s8(m, &d[ET_CLIN_QKV], m->qb, m->qa, N, l, ET_CLIN_QKV, ET_QSITE_QKV));
    p = site(m, s0 + ET_QSITE_QKV);
    et_quant_s8_to_f32(m->qkv, m->qb, BT * 3 * C, &p);
    et_cpu_flash_fwd(m->th, m->att_scratch, m->att_slice, m->atty, m->att, m->qkv, B, T, C,
                     m->cfg.heads);
    p = site(m, s0 + ET_QSITE_ATTY);
    et_quant_f32_to_s8(m->qa, m->atty, BT * C, &p);
    TRY(lin_s8(m, &d[ET_CLIN_ATTPROJ], m->qb, m->qa, N, l, ET_CLIN_ATTPROJ, ET_QSITE_ATTPROJ));
    add_deq(m->tmp, x, m->qb, BT * C, site(m, s0 + ET_QSITE_ATTPROJ));
    et_cpu_layernorm_fwd(m->th, m->ln, m->ln_mean, m->ln_rstd, m->tmp, m->ln2w + lc, m->ln2b + lc, N, C);
    p = site(m, s0 + ET_QSITE_LN2);
    et_quant_f32_to_s8(m->qa, m->ln, BT * C, &p);
    TRY(lin_s8(m, &d[ET_CLIN_FC], m->qb, m->qa, N, l, ET_CLIN_FC, ET_QSITE_FCH));
    for (i = 0; i < N * 4 * C; i++) m->qa[i] = lut[(int)m->qb[i] + 128];
    TRY(lin_s8(m, &d[ET_CLIN_FCPROJ], m->qb, m->qa, N, l, ET_CLIN_FCPROJ, ET_QSITE_FCPROJ));
    add_deq(out, m->tmp, m->qb, BT * C, site(m, s0 + ET_QSITE_FCPROJ));
    return ET_OK;
}

static void encode_s8(const et_cgpt *m, float *x, int B, int T)
{
    int b, t, i, C = m->cfg.channels;
    for (b = 0; b < B; b++)
        for (t = 0; t < T; t++) {
            int tok = m->inputs[b * T + t];
            const int8_t *e = m->wte_q + (size_t)tok * C, *p = m->wpe_q + (size_t)t * C;
            float se = m->wte_s[tok], sp = m->wpe_s[t], *o = x + ((size_t)b * T + t) * C;
            for (i = 0; i < C; i++) o[i] = se * (float)e[i] + sp * (float)p[i];
        }
}

et_status et_cgpt_forward(et_cgpt *m, const int *inputs, const int *targets, int B, int T)
{
    size_t BT, i;
    int l, C, V, Vp, a8;
    float *x, *y, *t;
    double sum = 0.0;
    if (!m || !inputs || B <= 0 || T <= 0) return ET_ERR_INVALID;
    if (B > m->B || T > m->T) return ET_ERR_RANGE;
    BT = (size_t)B * T; C = m->cfg.channels; V = m->cfg.vocab; Vp = m->cfg.vocab_padded;
    a8 = m->mode == ET_CGPT_W8A8;
    for (i = 0; i < BT; i++) {
        if (inputs[i] < 0 || inputs[i] >= V) return ET_ERR_RANGE;
        if (targets && (targets[i] < 0 || targets[i] >= V)) return ET_ERR_RANGE;
    }
    ET_MEMCPY(m->inputs, inputs, BT * sizeof(int));
    if (targets) ET_MEMCPY(m->targets, targets, BT * sizeof(int));
    m->fwd_B = B;
    m->fwd_T = T;
    m->mean_loss = -1.0f;
    x = m->res_a;
    y = m->res_b;
    if (a8) encode_s8(m, x, B, T);
    else et_cpu_encoder_fwd(m->th, x, m->inputs, m->wte, m->wpe, B, T, C);
    for (l = 0; l < m->cfg.layers; l++) {
        TRY(a8 ? layer_w8a8(m, l, x, y, B, T) : layer_f32(m, l, x, y, B, T));
        t = x; x = y; y = t;
    }
    et_cpu_layernorm_fwd(m->th, m->ln, m->ln_mean, m->ln_rstd, x, m->lnfw, m->lnfb, (int)BT, C);
    if (a8) {
        et_qgemm_args g;
        et_qparams p = site(m, m->cfg.layers * ET_CSITE_PER_LAYER);
        et_quant_f32_to_s8(m->qa, m->ln, BT * C, &p);
        g.M = (int)BT; g.N = Vp; g.K = C;
        g.A = m->qa; g.lda = C; g.B = m->wte_q; g.ldb = C;
        g.bias = m->logit_b; g.out = ET_QGEMM_OUT_F32;
        g.mult = g.shift = 0; g.zp_out = 0; g.scale = m->logit_s;
        g.C = m->logits; g.ldc = Vp;
        TRY(m->reference ? et_qgemm_s8_ref(&g) : et_qgemm_s8(&g, m->th, m->scratch, m->scratch_bytes));
    } else {
        et_cmat w;
        TRY(observe(m, m->cfg.layers * ET_CSITE_PER_LAYER, m->ln, BT * C));
        ET_MEMSET(&w, 0, sizeof w);
        w.format = ET_CMAT_DENSE; w.rows = Vp; w.cols = C; w.wf = m->wte;
        TRY(mat_f32(m, &w, m->logits, m->ln, 0, (int)BT));
    }
    et_cpu_crossentropy_fwd(m->th, targets ? m->losses : 0, m->probs, m->logits,
                            targets ? m->targets : 0, (int)BT, V, Vp);
    if (!targets) return ET_OK;
    for (i = 0; i < BT; i++) sum += m->losses[i];
    m->mean_loss = (float)(sum / (double)BT);
    return ET_OK;
}

et_status et_cgpt_logits(const et_cgpt *m, int b, int t, float *out)
{
    if (!m || !out) return ET_ERR_INVALID;
    if (b < 0 || t < 0 || b >= m->fwd_B || t >= m->fwd_T) return ET_ERR_RANGE;
    ET_MEMCPY(out, m->logits + ((size_t)b * m->fwd_T + t) * m->cfg.vocab_padded,
              sizeof(float) * (size_t)m->cfg.vocab);
    return ET_OK;
}

/* spmm.c - sparse (N:M or bitmap) weights times dense activations, float and int8
 * (et_spmm.h has the scheme).
 *
 * Parts: shapes and checks; row decoding; the reference loops; the general kernel (a
 * task owns OB output rows x up to RC activation rows, decodes its rows' positions once
 * into worker scratch as offsets into the transposed activations, int8 values widened to
 * float, then for every block of 32 activation rows and every K block runs each row's
 * kept weights as broadcast-FMAs over 4 x 8 lanes with three interleaved accumulator
 * chains, and writes the 32 x OB tile out once); the int8 N:4 kernel (byte shuffles and
 * int16 multiply-adds, below). A scalar loop of the same order is always present.
 * Deliberately avoids: gathers, index expansion in the stored weights, and any
 * dependence of the arithmetic on the worker count.
 */
#include "et_spmm.h"
#include "et_quant.h"
#include "et_quant_simd.h"
#include "et_simd.h"
#if ET_HAVE_AVX2
#include <immintrin.h>
#endif

#define OB 16    /* output rows per task */
#define RC 256   /* activation rows per task */
#define RB 32    /* activation rows per register block (4 x 8 lanes) */
#define KB 128    /* inputs per K block (int8 mode: at most KB products per exact float sum, KB <= 1024) */
#define TB 64    /* inputs per transposition task */

// --- shapes and checks

size_t et_spmat_nm_values(int rows, int cols, int N, int M)
{
    if (rows < 0 || cols < 0 || M < 1 || N < 0) return 0;
    return (size_t)rows * (size_t)(cols / M) * (size_t)N;
}

size_t et_spmat_index_bytes(int format, int rows, int cols, int N, int M)
{
    if (format == ET_SPMAT_NM)
        return (et_spmat_nm_values(rows, cols, N, M) * (size_t)(M <= 4 ? 2 : 4) + 7) / 8;
    if (format == ET_SPMAT_BITMAP && rows >= 0 && cols >= 0) return ((size_t)rows * (size_t)cols + 7) / 8;
    return 0;
}

static int shape_ok(const et_spmat *w)
{
    if (!w || w->rows < 1 || w->cols < 1 || !w->index) return 0;
    if (w->format == ET_SPMAT_NM)
        return w->N >= 1 && w->N < w->M && w->M <= 16 && w->cols % w->M == 0;
    return w->format == ET_SPMAT_BITMAP && w->rowptr;
}

static int popcount8(unsigned b)
{
    int n = 0;
    for (; b; b &= b - 1) n++;
    return n;
}

/* kept weights of the row whose bits start at bit b0 */
static size_t row_count(const uint8_t *bm, size_t b0, int cols)
{
    size_t n = 0;
    int i = 0;
    while (i < cols) {
        size_t bit = b0 + (size_t)i;
        int sh = (int)(bit & 7), take = 8 - sh;
        if (take > cols - i) take = cols - i;
        n += (size_t)popcount8(((unsigned)bm[bit >> 3] >> sh) & ((1u << take) - 1u));
        i += take;
    }
    return n;
}

et_status et_spmat_rowptr(const uint8_t *bitmap, int rows, int cols, size_t nnz, uint32_t *rowptr)
{
    size_t acc = 0;
    int o;
    if (!bitmap || !rowptr || rows < 1 || cols < 1 || nnz > 0xFFFFFFFFu) return ET_ERR_INVALID;
    rowptr[0] = 0;
    for (o = 0; o < rows; o++) {
        acc += row_count(bitmap, (size_t)o * (size_t)cols, cols);
        if (acc > nnz) return ET_ERR_FORMAT;
        rowptr[o + 1] = (uint32_t)acc;
    }
    return acc == nnz ? ET_OK : ET_ERR_FORMAT;
}

et_status et_spmat_check(const et_spmat *w)
{
    if (!shape_ok(w) || (!w->vf && !w->vq)) return ET_ERR_INVALID;
    if (w->format == ET_SPMAT_NM) {
        size_t n = et_spmat_nm_values(w->rows, w->cols, w->N, w->M), e;
        int bits = w->M <= 4 ? 2 : 4;
        if ((w->M & (w->M - 1)) == 0) return ET_OK; /* M = 2, 4, 8, 16: every position fits */
        for (e = 0; e < n; e++) {
            size_t bit = e * (size_t)bits;
            if (((w->index[bit >> 3] >> (bit & 7)) & ((1 << bits) - 1)) >= w->M) return ET_ERR_FORMAT;
        }
        return ET_OK;
    }
    {
        int o;
        if (w->rowptr[0] != 0) return ET_ERR_FORMAT;
        for (o = 0; o < w->rows; o++)
            if (w->rowptr[o + 1] < w->rowptr[o] ||
                w->rowptr[o + 1] - w->rowptr[o] != row_count(w->index, (size_t)o * (size_t)w->cols, w->cols))
                return ET_ERR_FORMAT;
    }
    return ET_OK;
}

// --- decoding a row

/* trailing zeros of a nonzero 32-bit word (de Bruijn: no builtin, no libgcc call) */
static int ctz32(uint32_t x)
{
    static const uint8_t db[32] = {0,  1,  28, 2,  29, 14, 24, 3,  30, 22, 20, 15, 25, 17, 4,  8,
                                   31, 27, 13, 23, 21, 19, 16, 7,  26, 12, 18, 6,  11, 5,  10, 9};
    return db[(uint32_t)((x & (0u - x)) * 0x077CB531u) >> 27];
}

/* column of every kept weight of row o, times stride; returns the count and where the
 * row's values start */
static int decode_row(const et_spmat *w, int o, int32_t stride, int32_t *k, size_t *v0)
{
    int n = 0;
    if (w->format == ET_SPMAT_NM) {
        int G = w->cols / w->M, N = w->N, M = w->M, bits = M <= 4 ? 2 : 4, g, j;
        unsigned mask = (1u << bits) - 1u;
        size_t e = (size_t)o * (size_t)G * (size_t)N;
        *v0 = e;
        if (M == 4 && N == 2 && (e & 3) == 0) { /* 2:4, byte-aligned: one byte is two groups */
            const uint8_t *p = w->index + e / 4;
            for (g = 0; g + 1 < G; g += 2) {
                unsigned b = *p++;
                k[n++] = (int32_t)(g * 4 + (b & 3)) * stride;
                k[n++] = (int32_t)(g * 4 + ((b >> 2) & 3)) * stride;
                k[n++] = (int32_t)(g * 4 + 4 + ((b >> 4) & 3)) * stride;
                k[n++] = (int32_t)(g * 4 + 4 + (b >> 6)) * stride;
            }
            e += (size_t)n;
            for (; g < G; g++)
                for (j = 0; j < 2; j++, e++)
                    k[n++] = (int32_t)(g * 4 + ((w->index[e >> 2] >> ((e & 3) * 2)) & 3)) * stride;
            return n;
        }
        for (g = 0; g < G; g++)
            for (j = 0; j < N; j++, e++) {
                size_t bit = e * (size_t)bits;
                k[n++] = (int32_t)(g * M + (int)((w->index[bit >> 3] >> (bit & 7)) & mask)) * stride;
            }
        return n;
    }
    {
        size_t b0 = (size_t)o * (size_t)w->cols;
        int i = 0;
        *v0 = w->rowptr[o];
        while (i < w->cols) {
            size_t bit = b0 + (size_t)i;
            int sh = (int)(bit & 7), take = 8 - sh;
            uint32_t b;
            if (take > w->cols - i) take = w->cols - i;
            b = ((uint32_t)w->index[bit >> 3] >> sh) & ((1u << take) - 1u);
            while (b) {
                k[n++] = (int32_t)(i + ctz32(b)) * stride;
                b &= b - 1u;
            }
            i += take;
        }
        return n;
    }
}

// --- references: straight from the storage, without decode_row (so they check it)

/* the value index and column of the e-th stored weight of row o, for e < row_nnz() */
static size_t row_nnz(const et_spmat *w, int o)
{
    return w->format == ET_SPMAT_NM ? (size_t)(w->cols / w->M) * (size_t)w->N
                                    : (size_t)(w->rowptr[o + 1] - w->rowptr[o]);
}

/* walks row o in storage order: *e is the stored index, returns the column or -1 at the end */
static int next_kept(const et_spmat *w, int o, size_t *e, int *col)
{
    if (w->format == ET_SPMAT_NM) {
        size_t per = row_nnz(w, o), i = *e - (size_t)o * per, bit;
        int bits = w->M <= 4 ? 2 : 4;
        if (i >= per) return -1;
        bit = *e * (size_t)bits;
        return (int)(i / (size_t)w->N) * w->M + ((w->index[bit >> 3] >> (bit & 7)) & ((1 << bits) - 1));
    }
    for (; *col < w->cols; (*col)++) {
        size_t b = (size_t)o * (size_t)w->cols + (size_t)*col;
        if ((w->index[b >> 3] >> (b & 7)) & 1) return (*col)++;
    }
    return -1;
}

static size_t row_start(const et_spmat *w, int o)
{
    return w->format == ET_SPMAT_NM ? (size_t)o * row_nnz(w, o) : (size_t)w->rowptr[o];
}

et_status et_spmm_f32_ref(const et_spmat *w, float *out, const float *in, const float *bias, int R)
{
    int o, r, k, col;
    size_t e;
    if (!shape_ok(w) || !w->vf || !out || R < 0 || (R > 0 && !in)) return ET_ERR_INVALID;
    for (o = 0; o < w->rows; o++)
        for (r = 0; r < R; r++) {
            float acc = bias ? bias[o] : 0.0f;
            for (e = row_start(w, o), col = 0; (k = next_kept(w, o, &e, &col)) >= 0; e++)
                acc += w->vf[e] * in[(size_t)r * w->cols + k];
            out[(size_t)r * w->rows + o] = acc;
        }
    return ET_OK;
}

static int32_t add_wrap(int32_t a, int32_t b) { return (int32_t)((uint32_t)a + (uint32_t)b); }

/* the int8 GEMM's store (qgemm.c store_one), bit for bit */
static void store_s8(const et_spmm_s8_args *g, size_t r, int o, int32_t acc)
{
    int32_t v = g->bias ? add_wrap(acc, g->bias[o]) : acc;
    size_t at = r * (size_t)g->W->rows + (size_t)o;
    if (g->out == ET_QGEMM_OUT_S32) {
        ((int32_t *)g->C)[at] = v;
    } else if (g->out == ET_QGEMM_OUT_F32) {
        ((float *)g->C)[at] = (float)v * g->scale[o];
    } else {
        int32_t q = add_wrap(et_quant_requant(v, g->mult[o], g->shift[o]), g->zp_out);
        ((int8_t *)g->C)[at] = (int8_t)(q < -128 ? -128 : q > 127 ? 127 : q);
    }
}

#if ET_HAVE_AVX2
/* 8 consecutive outputs o0.. of row r, all OUT_S8: bias, requant, one 8-byte store */
static void store8_s8(const et_spmm_s8_args *g, size_t r, int o0, __m256i acc)
{
    __m256i v = g->bias ? _mm256_add_epi32(acc, _mm256_loadu_si256((const __m256i *)(const void *)(g->bias + o0))) : acc;
    __m128i p;
    v = et_requant8_avx2(v, _mm256_loadu_si256((const __m256i *)(const void *)(g->mult + o0)),
                 _mm256_loadu_si256((const __m256i *)(const void *)(g->shift + o0)), _mm256_set1_epi32(g->zp_out));
    p = _mm_packs_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
    _mm_storel_epi64((__m128i *)(void *)((int8_t *)g->C + r * (size_t)g->W->rows + (size_t)o0), _mm_packs_epi16(p, p));
}
#endif

static et_status check_s8(const et_spmm_s8_args *g)
{
    if (!g || !shape_ok(g->W) || !g->W->vq || g->M < 0 || !g->C || (g->M > 0 && !g->A)) return ET_ERR_INVALID;
    if (g->out == ET_QGEMM_OUT_S8 && (!g->mult || !g->shift)) return ET_ERR_INVALID;
    if (g->out == ET_QGEMM_OUT_F32 && !g->scale) return ET_ERR_INVALID;
    if (g->out != ET_QGEMM_OUT_S8 && g->out != ET_QGEMM_OUT_F32 && g->out != ET_QGEMM_OUT_S32) return ET_ERR_INVALID;
    return ET_OK;
}

et_status et_spmm_s8_ref(const et_spmm_s8_args *g)
{
    int o, r, k, col;
    size_t e;
    et_status s = check_s8(g);
    if (s != ET_OK) return s;
    for (o = 0; o < g->W->rows; o++)
        for (r = 0; r < g->M; r++) {
            int32_t acc = 0;
            for (e = row_start(g->W, o), col = 0; (k = next_kept(g->W, o, &e, &col)) >= 0; e++)
                acc += (int32_t)g->W->vq[e] * (int32_t)g->A[(size_t)r * g->W->cols + k];
            store_s8(g, (size_t)r, o, acc);
        }
    return ET_OK;
}

// --- the fast path

/* acc[0 .. nv*8) += sum_e v[e] * x[off[e] + 0 .. nv*8). Three chains (e mod 3) per
 * vector, added at the end: 12 independent FMAs in flight hide the FMA latency. */
static void fma_rows(const float *x, const int32_t *off, const float *v, int n, int nv, float *acc)
{
    int e, j;
#if ET_HAVE_AVX2
    if (nv == 4) {
        __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0, b0 = a0, b1 = a0, b2 = a0, b3 = a0;
        __m256 c0 = a0, c1 = a0, c2 = a0, c3 = a0;
        for (e = 0; e + 2 < n; e += 3) {
            const float *p = x + off[e], *q = x + off[e + 1], *u = x + off[e + 2];
            __m256 s = _mm256_broadcast_ss(v + e), t = _mm256_broadcast_ss(v + e + 1);
            __m256 w = _mm256_broadcast_ss(v + e + 2);
            a0 = _mm256_fmadd_ps(s, _mm256_loadu_ps(p), a0);
            a1 = _mm256_fmadd_ps(s, _mm256_loadu_ps(p + 8), a1);
            a2 = _mm256_fmadd_ps(s, _mm256_loadu_ps(p + 16), a2);
            a3 = _mm256_fmadd_ps(s, _mm256_loadu_ps(p + 24), a3);
            b0 = _mm256_fmadd_ps(t, _mm256_loadu_ps(q), b0);
            b1 = _mm256_fmadd_ps(t, _mm256_loadu_ps(q + 8), b1);
            b2 = _mm256_fmadd_ps(t, _mm256_loadu_ps(q + 16), b2);
            b3 = _mm256_fmadd_ps(t, _mm256_loadu_ps(q + 24), b3);
            c0 = _mm256_fmadd_ps(w, _mm256_loadu_ps(u), c0);
            c1 = _mm256_fmadd_ps(w, _mm256_loadu_ps(u + 8), c1);
            c2 = _mm256_fmadd_ps(w, _mm256_loadu_ps(u + 16), c2);
            c3 = _mm256_fmadd_ps(w, _mm256_loadu_ps(u + 24), c3);
        }
        for (; e < n; e++) {
            const float *p = x + off[e];
            __m256 s = _mm256_broadcast_ss(v + e);
            a0 = _mm256_fmadd_ps(s, _mm256_loadu_ps(p), a0);
            a1 = _mm256_fmadd_ps(s, _mm256_loadu_ps(p + 8), a1);
            a2 = _mm256_fmadd_ps(s, _mm256_loadu_ps(p + 16), a2);
            a3 = _mm256_fmadd_ps(s, _mm256_loadu_ps(p + 24), a3);
        }
        _mm256_storeu_ps(acc, _mm256_add_ps(_mm256_loadu_ps(acc), _mm256_add_ps(_mm256_add_ps(a0, b0), c0)));
        _mm256_storeu_ps(acc + 8, _mm256_add_ps(_mm256_loadu_ps(acc + 8), _mm256_add_ps(_mm256_add_ps(a1, b1), c1)));
        _mm256_storeu_ps(acc + 16, _mm256_add_ps(_mm256_loadu_ps(acc + 16), _mm256_add_ps(_mm256_add_ps(a2, b2), c2)));
        _mm256_storeu_ps(acc + 24, _mm256_add_ps(_mm256_loadu_ps(acc + 24), _mm256_add_ps(_mm256_add_ps(a3, b3), c3)));
        return;
    }
    for (j = 0; j < nv; j++) {
        __m256 a = _mm256_setzero_ps(), b = a, c = a;
        for (e = 0; e + 2 < n; e += 3) {
            a = _mm256_fmadd_ps(_mm256_broadcast_ss(v + e), _mm256_loadu_ps(x + off[e] + 8 * j), a);
            b = _mm256_fmadd_ps(_mm256_broadcast_ss(v + e + 1), _mm256_loadu_ps(x + off[e + 1] + 8 * j), b);
            c = _mm256_fmadd_ps(_mm256_broadcast_ss(v + e + 2), _mm256_loadu_ps(x + off[e + 2] + 8 * j), c);
        }
        for (; e < n; e++) a = _mm256_fmadd_ps(_mm256_broadcast_ss(v + e), _mm256_loadu_ps(x + off[e] + 8 * j), a);
        _mm256_storeu_ps(acc + 8 * j, _mm256_add_ps(_mm256_loadu_ps(acc + 8 * j), _mm256_add_ps(_mm256_add_ps(a, b), c)));
    }
#else
    for (j = 0; j < nv * 8; j++) {
        float a = 0.0f, b = 0.0f, c = 0.0f;
        for (e = 0; e + 2 < n; e += 3) {
            a += v[e] * x[off[e] + j];
            b += v[e + 1] * x[off[e + 1] + j];
            c += v[e + 2] * x[off[e + 2] + j];
        }
        for (; e < n; e++) a += v[e] * x[off[e] + j];
        acc[j] += (a + b) + c;
    }
#endif
}

typedef struct {
    const et_spmat *w;
    int R, K, Rp, nob;
    /* float mode */
    const float *in, *bias;
    float *out;
    /* int8 mode */
    const et_spmm_s8_args *g;
    float *xT;
    int32_t *koff; /* (workers, OB, K) */
    float *vbuf;   /* (workers, OB, K) */
    int32_t *split; /* (workers, OB, nkb + 1): where each K block starts in a row's kept list */
    int nkb;        /* K blocks */
} sp_job;

/* activations into panels of RB rows: xP[p][k][i] = in[p*RB + i][k] (zero past R), so a
 * block's kept weights read 128 contiguous bytes at a stride of 128 bytes: no cache-set
 * aliasing whatever R is. One task per TB inputs; 8 x 8 blocks in registers. */
static void task_transpose(void *arg, int t, int wk)
{
    sp_job *J = (sp_job *)arg;
    int k0 = t * TB, k1 = k0 + TB, r = 0, k;
    ET_UNUSED(wk);
    if (k1 > J->K) k1 = J->K;
#if ET_HAVE_AVX2
    if (!J->g)
        for (; r + 8 <= J->R; r += 8) {
            float *dst = J->xT + (size_t)(r / RB) * J->K * RB + (size_t)(r % RB);
            const float *a = J->in + (size_t)r * J->K;
            for (k = k0; k + 8 <= k1; k += 8) {
                __m256 v[8];
                int i;
                for (i = 0; i < 8; i++) v[i] = _mm256_loadu_ps(a + (size_t)i * J->K + k);
                et_transpose8_avx2(v);
                for (i = 0; i < 8; i++) _mm256_storeu_ps(dst + (size_t)(k + i) * RB, v[i]);
            }
            for (; k < k1; k++) {
                int i;
                for (i = 0; i < 8; i++) dst[(size_t)k * RB + i] = a[(size_t)i * J->K + k];
            }
        }
#endif
    for (; r < J->Rp; r++) {
        float *dst = J->xT + (size_t)(r / RB) * J->K * RB + (size_t)(r % RB);
        if (r >= J->R) {
            for (k = k0; k < k1; k++) dst[(size_t)k * RB] = 0.0f;
        } else if (J->g) {
            const int8_t *a = J->g->A + (size_t)r * J->K;
            for (k = k0; k < k1; k++) dst[(size_t)k * RB] = (float)a[k];
        } else {
            const float *a = J->in + (size_t)r * J->K;
            for (k = k0; k < k1; k++) dst[(size_t)k * RB] = a[k];
        }
    }
}

/* out[r0 + r][o0 + i] = tile[i][r] + bias[o0 + i] for r < nr, i < no */
static void store_tile(float *out, int ldo, const float tile[OB][RB], const float *bias, int o0, int no, int r0,
                       int nr)
{
    int r = 0, i;
#if ET_HAVE_AVX2
    if (no == OB)
        for (; r + 8 <= nr; r += 8) {
            int h;
            for (h = 0; h < OB; h += 8) {
                __m256 v[8], b = bias ? _mm256_loadu_ps(bias + o0 + h) : _mm256_setzero_ps();
                for (i = 0; i < 8; i++) v[i] = _mm256_loadu_ps(&tile[h + i][r]);
                et_transpose8_avx2(v);
                for (i = 0; i < 8; i++) _mm256_storeu_ps(out + (size_t)(r0 + r + i) * ldo + o0 + h, _mm256_add_ps(v[i], b));
            }
        }
#endif
    for (; r < nr; r++)
        for (i = 0; i < no; i++) out[(size_t)(r0 + r) * ldo + o0 + i] = tile[i][r] + (bias ? bias[o0 + i] : 0.0f);
}

static void task_rows(void *arg, int t, int wk)
{
    sp_job *J = (sp_job *)arg;
    const et_spmat *w = J->w;
    int ob = t % J->nob, rc = t / J->nob, o0 = ob * OB, o1 = o0 + OB, r0 = rc * RC, r1 = r0 + RC;
    int o, rb, r, kb, e;
    const float *vals[OB];
    int32_t *koff = J->koff + (size_t)wk * OB * J->K;
    float *vbuf = J->vbuf + (size_t)wk * OB * J->K;
    int32_t *split = J->split + (size_t)wk * OB * (J->nkb + 1);
    float tile[OB][RB];
    int32_t itile[OB][RB];
    if (o1 > w->rows) o1 = w->rows;
    if (r1 > J->R) r1 = J->R;
    for (o = o0; o < o1; o++) {
        size_t v0;
        int32_t *ko = koff + (size_t)(o - o0) * J->K, *sp = split + (size_t)(o - o0) * (J->nkb + 1);
        int n = decode_row(w, o, RB, ko, &v0);
        /* kept positions rise with k group by group, so each K block is a run of the list */
        for (kb = 0, e = 0; kb < J->nkb; kb++) {
            int32_t lim = (int32_t)(kb * KB) * RB;
            while (e < n && ko[e] < lim) e++;
            sp[kb] = e;
        }
        sp[J->nkb] = n;
        if (J->g) {
            float *vo = vbuf + (size_t)(o - o0) * J->K;
            for (e = 0; e < n; e++) vo[e] = (float)w->vq[v0 + (size_t)e];
            vals[o - o0] = vo;
        } else {
            vals[o - o0] = w->vf + v0;
        }
    }
    for (rb = r0; rb < r1; rb += RB) {
        int nr = r1 - rb < RB ? r1 - rb : RB, nv = (nr + 7) / 8;
        const float *xp = J->xT + (size_t)(rb / RB) * J->K * RB;
        ET_MEMSET(tile, 0, sizeof tile);
        if (J->g) ET_MEMSET(itile, 0, sizeof itile);
        /* K in blocks of KB inputs, so the panel slice a block reads (KB x 128 bytes) stays
         * in L1 across the task's output rows */
        for (kb = 0; kb < J->nkb; kb++)
            for (o = o0; o < o1; o++) {
                const int32_t *sp = split + (size_t)(o - o0) * (J->nkb + 1);
                const int32_t *ko = koff + (size_t)(o - o0) * J->K;
                int lo = sp[kb], n = sp[kb + 1] - lo;
                if (n <= 0) continue;
                if (!J->g) {
                    fma_rows(xp, ko + lo, vals[o - o0] + lo, n, nv, tile[o - o0]);
                } else { /* at most KB <= 1024 products: exact in float, then int32 */
                    float *acc = tile[o - o0];
                    fma_rows(xp, ko + lo, vals[o - o0] + lo, n, nv, acc);
                    for (r = 0; r < nr; r++) itile[o - o0][r] += (int32_t)acc[r];
                    for (r = 0; r < RB; r++) acc[r] = 0.0f;
                }
            }
        if (!J->g) {
            store_tile(J->out, w->rows, (const float(*)[RB])tile, J->bias, o0, o1 - o0, rb, nr);
        } else {
            r = 0;
#if ET_HAVE_AVX2
            if (o1 - o0 == OB && J->g->out == ET_QGEMM_OUT_S8) /* 8 x 8 blocks turned, requantized 8 at a time */
                for (; r + 8 <= nr; r += 8) {
                    int h, q;
                    for (h = 0; h < OB; h += 8) {
                        __m256 v[8];
                        for (q = 0; q < 8; q++) v[q] = _mm256_loadu_ps((const float *)(const void *)&itile[h + q][r]);
                        et_transpose8_avx2(v);
                        for (q = 0; q < 8; q++) store8_s8(J->g, (size_t)(rb + r + q), o0 + h, _mm256_castps_si256(v[q]));
                    }
                }
#endif
            for (o = o0; o < o1; o++)
                for (e = r; e < nr; e++) store_s8(J->g, (size_t)(rb + e), o, itile[o - o0][e]);
        }
    }
}

// --- int8 N:4 on x86: pairs of kept weights as int16 multiply-adds

#if ET_HAVE_AVX2
/* For M = 4 the kept positions of 8 output rows in one group index into the same four
 * activations, so one 8-byte broadcast of x[r][4g..4g+3] (int16) and one in-lane byte
 * shuffle put, in every 32-bit lane, the int16 pair that lane's output multiplies by its
 * pair of kept values: madd (vpdpwssd with VNNI) adds a[p0] v0 + a[p1] v1 exactly into
 * int32. The activations are widened to int16 once per call; each task pre-builds the
 * shuffle and value vectors of its 8 outputs for every group and reuses them on every
 * row. Exact, so bit-identical to the reference. */
#if defined(__AVX512F__) && defined(__AVX512BW__) && defined(__AVX512VNNI__)
#define ET__ZMM 1
#define NB4 16  /* outputs per task (one zmm of int32) */
#else
#define NB4 8   /* outputs per task (one ymm of int32) */
#endif
#define RR4 6   /* activation rows per register block */
#define RC4 1024 /* activation rows per task: the per-task shuffle tables are built once for them */

static void task_widen(void *arg, int t, int wk)
{
    sp_job *J = (sp_job *)arg;
    size_t i0 = (size_t)t * 4096, i1 = i0 + 4096, n = (size_t)J->R * J->K, i;
    int16_t *x16 = (int16_t *)(void *)J->xT;
    ET_UNUSED(wk);
    if (i1 > n) i1 = n;
    for (i = i0; i < i1; i++) x16[i] = J->g->A[i];
}

static void task_nm4(void *arg, int t, int wk)
{
    sp_job *J = (sp_job *)arg;
    const et_spmat *w = J->w;
    int nob = (w->rows + NB4 - 1) / NB4, ob = t % nob, rc = t / nob, o0 = ob * NB4, r0 = rc * RC4, r1 = r0 + RC4;
    int G = w->cols / 4, N = w->N, np = (N + 1) / 2, no = w->rows - o0 < NB4 ? w->rows - o0 : NB4, g, j, i, r;
    uint8_t *idx = (uint8_t *)(void *)(J->koff + (size_t)wk * OB * J->K); /* (G, np, 32) */
    int32_t *vp = (int32_t *)(void *)(J->vbuf + (size_t)wk * OB * J->K);  /* (G, np, 8) */
    const int16_t *x16 = (const int16_t *)(const void *)J->xT;
    int32_t acc[NB4];
    if (r1 > J->R) r1 = J->R;
    if (N == 2) { /* 2:4: a group's two positions are one nibble; a table gives its 4 shuffle bytes */
        static const uint32_t tab[16] = {
            0x01000100u, 0x01000302u, 0x01000504u, 0x01000706u, 0x03020100u, 0x03020302u, 0x03020504u, 0x03020706u,
            0x05040100u, 0x05040302u, 0x05040504u, 0x05040706u, 0x07060100u, 0x07060302u, 0x07060504u, 0x07060706u};
        for (g = 0; g < G; g++) {
            uint32_t *ix = (uint32_t *)(void *)(idx + (size_t)g * 4 * NB4);
            int32_t *vv = vp + (size_t)g * NB4;
            for (i = 0; i < NB4; i++) {
                size_t e = ((size_t)(o0 + (i < no ? i : 0)) * G + g) * 2;
                unsigned nib = (w->index[e >> 2] >> ((e & 3) * 2)) & 15u;
                ix[i] = i < no ? tab[nib] : 0x80808080u;
                vv[i] = i < no ? (int32_t)((uint32_t)(uint16_t)(int16_t)w->vq[e] |
                                           ((uint32_t)(uint16_t)(int16_t)w->vq[e + 1] << 16)) : 0;
            }
        }
    } else {
        for (g = 0; g < G; g++)
            for (j = 0; j < np; j++) {
                uint8_t *ix = idx + ((size_t)g * np + j) * 4 * NB4;
                int32_t *vv = vp + ((size_t)g * np + j) * NB4;
                for (i = 0; i < NB4; i++) {
                    int pa = 0, pb = 0, va = 0, vb = 0;
                    if (i < no) {
                        size_t e = ((size_t)(o0 + i) * G + g) * N + 2 * j;
                        pa = (w->index[e >> 2] >> ((e & 3) * 2)) & 3;
                        va = w->vq[e];
                        if (2 * j + 1 < N) {
                            pb = (w->index[(e + 1) >> 2] >> (((e + 1) & 3) * 2)) & 3;
                            vb = w->vq[e + 1];
                        } else {
                            pb = pa;
                        }
                    }
                    /* lane i is bytes 4i..4i+3; every 128-bit lane holds the same 8 bytes */
                    ix[4 * i] = (uint8_t)(2 * pa);
                    ix[4 * i + 1] = (uint8_t)(2 * pa + 1);
                    ix[4 * i + 2] = (uint8_t)(2 * pb);
                    ix[4 * i + 3] = (uint8_t)(2 * pb + 1);
                    vv[i] = (int32_t)((uint32_t)(uint16_t)(int16_t)va | ((uint32_t)(uint16_t)(int16_t)vb << 16));
                }
            }
    }
    for (r = r0; r < r1;) {
        int nr = r1 - r >= RR4 ? RR4 : 1, k, K = J->K;
        const int16_t *xr = x16 + (size_t)r * K;
#ifdef ET__ZMM
        __m512i a0 = _mm512_setzero_si512(), a1 = a0, a2 = a0, a3 = a0, a4 = a0, a5 = a0, av[RR4];
#define VT __m512i
#define LD(p) _mm512_loadu_si512((const void *)(p))
#define SEL(k) _mm512_shuffle_epi8(_mm512_broadcastq_epi64(_mm_loadl_epi64((const __m128i *)(const void *)(xr + (size_t)(k) * K))), ix)
#define MAC(a, k) a = _mm512_dpwssd_epi32(a, SEL(k), vv)
#else
        __m256i a0 = _mm256_setzero_si256(), a1 = a0, a2 = a0, a3 = a0, a4 = a0, a5 = a0, av[RR4];
#define VT __m256i
#define LD(p) _mm256_loadu_si256((const __m256i *)(const void *)(p))
#define SEL(k) _mm256_shuffle_epi8(_mm256_broadcastq_epi64(_mm_loadl_epi64((const __m128i *)(const void *)(xr + (size_t)(k) * K))), ix)
#if defined(__AVX512VNNI__) && defined(__AVX512VL__)
#define MAC(a, k) a = _mm256_dpwssd_epi32(a, SEL(k), vv)
#else
#define MAC(a, k) a = _mm256_add_epi32(a, _mm256_madd_epi16(SEL(k), vv))
#endif
#endif
        for (g = 0; g < G; g++, xr += 4)
            for (j = 0; j < np; j++) {
                VT ix = LD(idx + ((size_t)g * np + j) * 4 * NB4);
                VT vv = LD(vp + ((size_t)g * np + j) * NB4);
                if (nr == RR4) {
                    MAC(a0, 0); MAC(a1, 1); MAC(a2, 2); MAC(a3, 3); MAC(a4, 4); MAC(a5, 5);
                } else {
                    MAC(a0, 0);
                }
            }
#undef MAC
#undef SEL
#undef LD
#undef VT
        av[0] = a0; av[1] = a1; av[2] = a2; av[3] = a3; av[4] = a4; av[5] = a5;
        for (k = 0; k < nr; k++) {
            if (no == NB4 && J->g->out == ET_QGEMM_OUT_S8) {
#ifdef ET__ZMM
                store8_s8(J->g, (size_t)(r + k), o0, _mm512_castsi512_si256(av[k]));
                store8_s8(J->g, (size_t)(r + k), o0 + 8, _mm512_extracti64x4_epi64(av[k], 1));
#else
                store8_s8(J->g, (size_t)(r + k), o0, av[k]);
#endif
                continue;
            }
#ifdef ET__ZMM
            _mm512_storeu_si512((void *)acc, av[k]);
#else
            _mm256_storeu_si256((__m256i *)(void *)acc, av[k]);
#endif
            for (i = 0; i < no; i++) store_s8(J->g, (size_t)(r + k), o0 + i, acc[i]);
        }
        r += nr;
    }
}
#endif

size_t et_spmm_scratch_bytes(int R, int K, int nworkers)
{
    size_t Rp = ((size_t)(R < 1 ? 1 : R) + RB - 1) / RB * RB, nw = (size_t)(nworkers < 1 ? 1 : nworkers);
    if (K < 1) return 0;
    return et_arena_block(Rp * (size_t)K * sizeof(float)) + 2 * nw * et_arena_block((size_t)OB * K * 4) +
           nw * et_arena_block((size_t)OB * ((size_t)(K + KB - 1) / KB + 1) * 4);
}

static et_status run(sp_job *J, const et_threads *th, void *scratch, size_t bytes)
{
    int nw = et_threads_workers(th), nrc;
    uint8_t *p = (uint8_t *)scratch;
    size_t xb, wb;
    if (J->R == 0) return ET_OK;
    if (!scratch || ((uintptr_t)scratch & (ET_ALIGN - 1))) return ET_ERR_INVALID;
    if (et_spmm_scratch_bytes(J->R, J->K, nw) > bytes) return ET_ERR_NOMEM;
    J->Rp = (J->R + RB - 1) / RB * RB;
    xb = et_arena_block((size_t)J->Rp * J->K * sizeof(float));
    wb = et_arena_block((size_t)OB * J->K * 4);
    J->xT = (float *)(void *)p;
    J->koff = (int32_t *)(void *)(p + xb);
    J->vbuf = (float *)(void *)(p + xb + (size_t)nw * wb);
    J->nkb = (J->K + KB - 1) / KB;
    J->split = (int32_t *)(void *)(p + xb + 2 * (size_t)nw * wb);
    J->nob = (J->w->rows + OB - 1) / OB;
    nrc = (J->R + RC - 1) / RC;
#if ET_HAVE_AVX2
    if (J->g && J->w->format == ET_SPMAT_NM && J->w->M == 4) {
        et_parallel_for(th, (int)(((size_t)J->R * J->K + 4095) / 4096), task_widen, J);
        et_parallel_for(th, (J->w->rows + NB4 - 1) / NB4 * ((J->R + RC4 - 1) / RC4), task_nm4, J);
        return ET_OK;
    }
#endif
    et_parallel_for(th, (J->K + TB - 1) / TB, task_transpose, J);
    et_parallel_for(th, J->nob * nrc, task_rows, J);
    return ET_OK;
}

et_status et_spmm_f32(const et_spmat *w, float *out, const float *in, const float *bias, int R,
                      const et_threads *th, void *scratch, size_t scratch_bytes)
{
    sp_job J;
    if (!shape_ok(w) || !w->vf || !out || R < 0 || (R > 0 && !in)) return ET_ERR_INVALID;
    ET_MEMSET(&J, 0, sizeof J);
    J.w = w; J.R = R; J.K = w->cols; J.in = in; J.bias = bias; J.out = out;
    return run(&J, th, scratch, scratch_bytes);
}

et_status et_spmm_s8(const et_spmm_s8_args *g, const et_threads *th, void *scratch,
                     size_t scratch_bytes)
{
    sp_job J;
    et_status s = check_s8(g);
    if (s != ET_OK) return s;
    ET_MEMSET(&J, 0, sizeof J);
    J.w = g->W; J.R = g->M; J.K = g->W->cols; J.g = g;
    return run(&J, th, scratch, scratch_bytes);
}

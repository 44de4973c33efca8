/* sys_array.c - the array's arithmetic: a wavefront model that computes each fold's
 * outputs with exactly the additions, in exactly the order, of the PEs that produce
 * them (et_systolic.h states the order; sys_cycle.c is the register-level model the
 * tests hold this to, bit for bit).
 *
 * Why it is exact and fast: skewing a fold's operands across the array changes *when*
 * a PE adds, never *what* it adds or in which order. So a WS fold's column c computes,
 * for each streamed row m, p = ((0 + a[m][k0]*w[k0][c]) + a[m][k0+1]*w[k0+1][c]) + ...,
 * which a loop over m, then r, then c (vectorized over c) reproduces; the accumulator
 * SRAM adds the K folds in order. Cycles come from the closed form (sys_timing.c).
 * The streamed dimension is processed in chunks, which changes no output's order, so
 * scratch is bounded by the array's size. IS is WS on the transposed product:
 * C^T = B^T . A^T, with A^T's tile stationary and B streamed, exactly as the IS array
 * runs it. Work is split by output tiles, so threads never change the bits.
 * The int8 stand-in quantizer lives here too: the packer applies it as operands load.
 * Deliberately avoided: allocation (scratch from the caller), libm.
 */
#include "et_systolic.h"

#define MB 128 /* streamed rows per WS/IS chunk */
#define KB 128 /* streamed k per OS chunk */
#define QMAX 4096 /* widest packed tile: array sides and chunks are at most this */

typedef struct {
    const et_sys_config *c;
    int M, N, K;           /* of the product the kernels run (C^T's for IS) */
    et_sys_operand A, B;
    const et_sys_result *out;
    int out_trans;         /* results are C^T: write (i,j) to C(j,i) */
    int int8;
    char *scratch;
    size_t slot;
    int mchunks, nblocks;  /* WS: tasks over (column block, row chunk) */
    int rblocks;           /* OS: tasks over (row block, column block) */
} job;

static size_t slot_elems(int R, int C)
{
    size_t ws = (size_t)MB * R + (size_t)R * C + (size_t)C + (size_t)MB * C;
    size_t os = (size_t)R * KB + (size_t)KB * C + (size_t)R * C;
    return ws > os ? ws : os;
}

size_t et_sys_gemm_scratch_bytes(const et_sys_config *c, int nworkers)
{
    size_t slot;
    if (!c || c->rows < 1 || c->cols < 1) return 0;
    if (nworkers < 1) nworkers = 1;
    slot = (slot_elems(c->rows, c->cols) * 4 + 63) & ~(size_t)63;
    return slot * (size_t)nworkers + 64;
}

// --- the int8 stand-in quantizer (et_systolic.h): symmetric, zero point 0, scale
// max|x|/127; there until compress/ (issue 4) provides calibrated parameters, when the
// backend should take those instead. No libm: rounding by hand.

static float absf(float x) { return x < 0.0f ? -x : x; }

static float scale_of(float maxabs)
{
    /* all zero, or nothing finite: any positive scale quantizes to zeros */
    if (!(maxabs > 0.0f) || maxabs > 3.0e38f) return 1.0f;
    return maxabs / 127.0f;
}

float et_sys_q8_scale(const float *x, size_t n)
{
    float m = 0.0f;
    size_t i;
    for (i = 0; i < n; i++) {
        float a = absf(x[i]);
        if (a > m && a <= 3.0e38f) m = a; /* skips inf and NaN */
    }
    return scale_of(m);
}

void et_sys_q8_scale_rows(const float *x, int rows, int cols, int ld, float *scales)
{
    int r;
    for (r = 0; r < rows; r++) scales[r] = et_sys_q8_scale(x + (size_t)r * (size_t)ld, (size_t)cols);
}

int8_t et_sys_q8_inv(float x, float inv_scale)
{
    float v = x * inv_scale;
    if (!(v == v)) return 0;
    if (v >= 127.0f) return 127;
    if (v <= -127.0f) return -127;
    /* round half away from zero; the add is exact in double (a float add of 0.5 could
     * round 0.49999997f up) */
    return (int8_t)(v >= 0.0f ? (int)((double)v + 0.5) : -(int)(0.5 - (double)v));
}

int8_t et_sys_q8(float x, float scale) { return et_sys_q8_inv(x, 1.0f / scale); }

void et_sys_q8_quantize(const float *x, size_t n, float scale, int8_t *q)
{
    size_t i;
    float inv = 1.0f / scale;
    for (i = 0; i < n; i++) q[i] = et_sys_q8_inv(x[i], inv);
}

// --- operands

static size_t at(const et_sys_operand *o, int i, int j)
{
    return o->trans ? (size_t)j * (size_t)o->ld + (size_t)i : (size_t)i * (size_t)o->ld + (size_t)j;
}

/* dst(ni, nj) = op(i0.., j0..) as floats */
static void pack_f(const et_sys_operand *o, int i0, int ni, int j0, int nj, float *dst)
{
    const float *x = (const float *)o->data;
    int a, b;
    for (a = 0; a < ni; a++)
        for (b = 0; b < nj; b++) dst[(size_t)a * nj + b] = x[at(o, i0 + a, j0 + b)];
}

/* dst(ni, nj) = op(i0.., j0..) as int8 values widened to int32 (quantized on load,
 * with the reciprocal of each row's or column's scale taken once per tile) */
static void pack_i(const et_sys_operand *o, int i0, int ni, int j0, int nj, int32_t *dst)
{
    float inv[QMAX];
    int a, b;
    if (o->type == ET_SYS_OP_S8) {
        const int8_t *x = (const int8_t *)o->data;
        for (a = 0; a < ni; a++)
            for (b = 0; b < nj; b++) dst[(size_t)a * nj + b] = x[at(o, i0 + a, j0 + b)];
        return;
    }
    if (o->scale_axis == 1)
        for (b = 0; b < nj; b++) inv[b] = 1.0f / o->scale[j0 + b];
    for (a = 0; a < ni; a++) {
        const float *x = (const float *)o->data;
        float ia = 1.0f / o->scale[o->scale_axis == 0 ? i0 + a : 0];
        for (b = 0; b < nj; b++)
            dst[(size_t)a * nj + b] = et_sys_q8_inv(x[at(o, i0 + a, j0 + b)], o->scale_axis == 1 ? inv[b] : ia);
    }
}

// --- the PE column arithmetic

/* q(n) = q + a * w: one row of PEs adding its products into the passing sums */
static void row_f32(int n, float a, const float *restrict w, float *restrict q)
{
    int c;
    for (c = 0; c < n; c++) q[c] = q[c] + a * w[c];
}

static void row_i32(int n, int32_t a, const int32_t *restrict w, uint32_t *restrict q)
{
    int c;
    for (c = 0; c < n; c++) q[c] = q[c] + (uint32_t)(a * w[c]);
}

static void add_f32(int n, const float *restrict p, float *restrict o)
{
    int c;
    for (c = 0; c < n; c++) o[c] = o[c] + p[c];
}

static void add_u32(int n, const uint32_t *restrict p, uint32_t *restrict o)
{
    int c;
    for (c = 0; c < n; c++) o[c] = o[c] + p[c];
}

/* One WS fold over mu streamed rows: column sums start at +0, add rows r = 0..ru-1;
 * the accumulators take the first K fold's sums and add each later one. */
static void ws_fold(const job *J, int mu, int ru, int cu, const void *Ap, const void *W, void *acc,
                    void *p, int first)
{
    int m, r;
    for (m = 0; m < mu; m++) {
        if (J->int8) {
            const int32_t *a = (const int32_t *)Ap + (size_t)m * ru;
            uint32_t *o = (uint32_t *)acc + (size_t)m * cu, *q = first ? o : (uint32_t *)p;
            ET_MEMSET(q, 0, sizeof(uint32_t) * (size_t)cu);
            for (r = 0; r < ru; r++) row_i32(cu, a[r], (const int32_t *)W + (size_t)r * cu, q);
            if (!first) add_u32(cu, q, o);
        } else {
            const float *a = (const float *)Ap + (size_t)m * ru;
            float *o = (float *)acc + (size_t)m * cu, *q = first ? o : (float *)p;
            int c;
            for (c = 0; c < cu; c++) q[c] = 0.0f;
            for (r = 0; r < ru; r++) row_f32(cu, a[r], (const float *)W + (size_t)r * cu, q);
            if (!first) add_f32(cu, q, o);
        }
    }
}

/* OS: the ru x cu accumulators add k = 0..kb-1 of this chunk, in order. */
static void os_chunk(const job *J, int ru, int cu, int kb, const void *Ap, const void *Bp, void *acc)
{
    int k, r;
    for (k = 0; k < kb; k++)
        for (r = 0; r < ru; r++) {
            if (J->int8)
                row_i32(cu, ((const int32_t *)Ap)[(size_t)r * kb + k], (const int32_t *)Bp + (size_t)k * cu,
                        (uint32_t *)acc + (size_t)r * cu);
            else
                row_f32(cu, ((const float *)Ap)[(size_t)r * kb + k], (const float *)Bp + (size_t)k * cu,
                        (float *)acc + (size_t)r * cu);
        }
}

// --- the output stage

static int32_t as_i32(uint32_t u)
{
    return u <= 0x7fffffffu ? (int32_t)u : -(int32_t)(~u) - 1;
}

/* Writes an (ni, nj) tile of accumulators at (i0, j0) of the kernels' product. */
static void store(const job *J, const void *acc, int i0, int ni, int j0, int nj)
{
    const et_sys_result *o = J->out;
    int a, b;
    for (a = 0; a < ni; a++)
        for (b = 0; b < nj; b++) {
            int i = i0 + a, j = j0 + b, n = J->out_trans ? i : j;
            size_t idx = J->out_trans ? (size_t)j * o->ld + i : (size_t)i * o->ld + j;
            float v;
            if (J->int8) {
                int32_t s = as_i32(((const uint32_t *)acc)[(size_t)a * nj + b]);
                if (o->s32) o->s32[idx] = s;
                if (!o->f32) continue;
                v = (float)s * o->scale;
                if (o->col_scale) v = v * o->col_scale[n];
            } else {
                v = ((const float *)acc)[(size_t)a * nj + b];
            }
            if (o->bias) v = v + o->bias[n];
            o->f32[idx] = o->accumulate ? o->f32[idx] + v : v;
        }
}

// --- tasks

static void task_ws(void *arg, int t, int w)
{
    const job *J = (const job *)arg;
    int R = J->c->rows, Cc = J->c->cols;
    int jb = t / J->mchunks, mc = t % J->mchunks, kf;
    int n0 = jb * Cc, cu = J->N - n0 < Cc ? J->N - n0 : Cc;
    int m0 = mc * MB, mu = J->M - m0 < MB ? J->M - m0 : MB;
    char *base = J->scratch + (size_t)w * J->slot;
    void *Ap = base, *W = base + (size_t)MB * R * 4, *p = (char *)W + (size_t)R * Cc * 4;
    void *acc = (char *)p + (size_t)Cc * 4;
    for (kf = 0; kf * R < J->K; kf++) {
        int k0 = kf * R, ru = J->K - k0 < R ? J->K - k0 : R;
        if (J->int8) {
            pack_i(&J->A, m0, mu, k0, ru, (int32_t *)Ap);
            pack_i(&J->B, k0, ru, n0, cu, (int32_t *)W);
        } else {
            pack_f(&J->A, m0, mu, k0, ru, (float *)Ap);
            pack_f(&J->B, k0, ru, n0, cu, (float *)W);
        }
        ws_fold(J, mu, ru, cu, Ap, W, acc, p, kf == 0);
    }
    store(J, acc, m0, mu, n0, cu);
}

static void task_os(void *arg, int t, int w)
{
    const job *J = (const job *)arg;
    int R = J->c->rows, Cc = J->c->cols;
    int jb = t / J->rblocks, ib = t % J->rblocks, k0;
    int i0 = ib * R, ru = J->M - i0 < R ? J->M - i0 : R;
    int j0 = jb * Cc, cu = J->N - j0 < Cc ? J->N - j0 : Cc;
    char *base = J->scratch + (size_t)w * J->slot;
    void *Ap = base, *Bp = base + (size_t)R * KB * 4, *acc = (char *)Bp + (size_t)KB * Cc * 4;
    ET_MEMSET(acc, 0, (size_t)ru * cu * 4); /* +0.0f and 0 share the all-zero bits */
    for (k0 = 0; k0 < J->K; k0 += KB) {
        int kb = J->K - k0 < KB ? J->K - k0 : KB;
        if (J->int8) {
            pack_i(&J->A, i0, ru, k0, kb, (int32_t *)Ap);
            pack_i(&J->B, k0, kb, j0, cu, (int32_t *)Bp);
        } else {
            pack_f(&J->A, i0, ru, k0, kb, (float *)Ap);
            pack_f(&J->B, k0, kb, j0, cu, (float *)Bp);
        }
        os_chunk(J, ru, cu, kb, Ap, Bp, acc);
    }
    store(J, acc, i0, ru, j0, cu);
}

// --- entry

static int operand_ok(const et_sys_operand *o, int rows, int cols, int int8)
{
    if (!o || o->ld < (o->trans ? rows : cols)) return 0;
    if (!int8) return o->type == ET_SYS_OP_F32;
    if (o->type == ET_SYS_OP_S8) return 1;
    return o->type == ET_SYS_OP_F32_Q8 && o->scale && o->scale_axis >= -1 && o->scale_axis <= 1;
}

static et_sys_operand transposed(const et_sys_operand *o)
{
    et_sys_operand t = *o;
    t.trans = !o->trans;
    if (t.scale_axis >= 0) t.scale_axis = 1 - t.scale_axis;
    return t;
}

et_status et_sys_gemm(const et_sys_config *c, int M, int N, int K, const et_sys_operand *A,
                      const et_sys_operand *B, const et_sys_result *C, const et_threads *th,
                      void *scratch, size_t scratch_bytes, et_sys_stats *st)
{
    job J;
    int nw = et_threads_workers(th), int8;
    et_status s;
    if (et_sys_config_check(c) != ET_OK || M < 1 || N < 1 || K < 1 || !A || !B || !C)
        return ET_ERR_INVALID;
    int8 = c->dtype == ET_SYS_INT8;
    if (!operand_ok(A, M, K, int8) || !operand_ok(B, K, N, int8)) return ET_ERR_INVALID;
    if (C->ld < N || (!C->f32 && !C->s32) || (!int8 && !C->f32)) return ET_ERR_INVALID;
    if (st && (s = et_sys_gemm_timing(c, M, N, K, st)) != ET_OK) return s;
    if (!A->data || !B->data) return ET_OK; /* timing only */
    if (!scratch || scratch_bytes < et_sys_gemm_scratch_bytes(c, nw)) return ET_ERR_NOMEM;
    J.c = c;
    J.out = C;
    J.int8 = int8;
    J.slot = (et_sys_gemm_scratch_bytes(c, 1) - 64);
    J.scratch = (char *)(((uintptr_t)scratch + 63) & ~(uintptr_t)63);
    J.K = K;
    if (c->dataflow == ET_SYS_IS) {
        J.M = N; J.N = M;
        J.A = transposed(B);
        J.B = transposed(A);
        J.out_trans = 1;
    } else {
        J.M = M; J.N = N;
        J.A = *A;
        J.B = *B;
        J.out_trans = 0;
    }
    if (c->dataflow == ET_SYS_OS) {
        J.rblocks = (J.M + c->rows - 1) / c->rows;
        J.nblocks = (J.N + c->cols - 1) / c->cols;
        et_parallel_for(th, J.rblocks * J.nblocks, task_os, &J);
    } else {
        J.mchunks = (J.M + MB - 1) / MB;
        J.nblocks = (J.N + c->cols - 1) / c->cols;
        et_parallel_for(th, J.mchunks * J.nblocks, task_ws, &J);
    }
    return ET_OK;
}

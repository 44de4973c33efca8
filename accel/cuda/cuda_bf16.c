/* cuda_bf16.c - bf16 mixed precision for the CUDA driver's GEMMs ("cuda+bf16",
 * `--precision bf16`; et_cuda_set_bf16).
 *
 * What is bf16: the two operands of every cuBLAS product of matmul_fwd and matmul_bwd,
 * and nothing else. The GEMMs run as cublasGemmEx with A and B in CUDA_R_16BF,
 * accumulation in fp32 (CUBLAS_COMPUTE_32F, tensor cores on sm_80+) and C in fp32.
 * Parameters (the fp32 masters), gradients, AdamW moments, activations and their
 * gradients all stay fp32 in the device arena, as do the bias, LayerNorm, attention,
 * GELU, softmax and loss kernels: this is torch.autocast's split (matmuls in bf16,
 * reductions in fp32), not llm.c's (which also stores the activations in bf16).
 *
 * Weights: each weight matrix a GEMM reads gets a bf16 copy of its own (cudaMalloc,
 * outside the arena), found by its fp32 pointer. Every op and every upload reports the
 * buffers it writes (et__cu_wrote); a write that touches a master marks its copy stale,
 * and a stale copy is converted again at its next use. So after each AdamW step a
 * weight is converted once, when the next forward first reads it; the backward's
 * dinp product then reuses that copy.
 * Activations and gradients: converted into one bf16 scratch right before each product.
 * The scratch is bounded (ET_CUDA_BF16_SCRATCH elements unless set otherwise): a
 * product whose operands do not fit runs in chunks of rows, the dw product adding its
 * chunks into dw in fp32 (beta 1), so memory stays bounded for any B*T and vocabulary.
 *
 * Deliberately absent: bf16 activations in the arena (they are carved by the freestanding
 * core's plan as fp32; changing that is a core change), loss scaling (bf16 has fp32's
 * exponent range), cuBLASLt epilogues, stochastic rounding.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "et_cuda_impl.h"

#define TRY(x) do { et_status et__s = (x); if (et__s != ET_OK) return et__s; } while (0)
/* copies kept at most; more (only a caller cycling through many weight buffers gets
 * there) flushes them all and starts again */
#define MAX_COPIES 4096
/* where the second operand starts in the scratch: 128-byte aligned for the tensor cores */
#define ALIGN_EL(n) (((n) + 63) & ~(size_t)63)

static et_status conv(et_cuda *cu, void *dst, const float *src, size_t n)
{
    int e = et__cu_f32_to_bf16(cu->stream, dst, src, n);
    return e ? et__cu_fail(cu, "f32_to_bf16", e) : ET_OK;
}

static et_status dev_alloc(et_cuda *cu, void **p, size_t bytes, const char *what)
{
    cudaError_t e = cudaMalloc(p, bytes);
    if (e == cudaSuccess) return ET_OK;
    *p = NULL;
    cudaGetLastError();
    snprintf(cu->err, sizeof cu->err, "cuda: cannot allocate %zu bytes for %s (bf16 mode, outside "
             "the device arena): %s", bytes, what, cudaGetErrorString(e));
    return e == cudaErrorMemoryAllocation ? ET_ERR_NOMEM : ET_ERR_DEVICE;
}

void et__cu_wrote(et_cuda *cu, const void *p, size_t n)
{
    et__cu_bf16 *b = &cu->bf16;
    uintptr_t a = (uintptr_t)p, e = a + n * sizeof(float);
    int i;
    if (!b->nw || !n || e <= b->lo || a >= b->hi) return;
    for (i = 0; i < b->nw; i++) {
        uintptr_t wa = (uintptr_t)b->w[i].w, we = wa + b->w[i].n * sizeof(float);
        if (a < we && wa < e) b->w[i].stale = 1;
    }
}

void et__cu_bf16_release(et_cuda *cu)
{
    et__cu_bf16 *b = &cu->bf16;
    int i;
    if (b->nw || b->scratch) cudaStreamSynchronize(cu->stream); /* queued GEMMs may read them */
    for (i = 0; i < b->nw; i++)
        if (b->w[i].bf) cudaFree(b->w[i].bf);
    free(b->w);
    if (b->scratch) cudaFree(b->scratch);
    b->w = NULL;
    b->nw = b->capw = 0;
    b->lo = b->hi = 0;
    b->copy_elems = 0;
    b->scratch = NULL;
    b->scratch_n = 0;
}

/* the bf16 copy of weight w(n), converted again if stale */
static et_status weight(et_cuda *cu, const float *w, size_t n, const void **out)
{
    et__cu_bf16 *b = &cu->bf16;
    et__cu_wcopy *c = NULL;
    uintptr_t a = (uintptr_t)w, e = a + n * sizeof(float);
    int i;
    for (i = 0; i < b->nw && !c; i++)
        if (b->w[i].w == w) c = &b->w[i];
    if (!c) {
        if (b->nw == MAX_COPIES) et__cu_bf16_release(cu);
        if (b->nw == b->capw) {
            int cap = b->capw ? 2 * b->capw : 64;
            et__cu_wcopy *nw = (et__cu_wcopy *)realloc(b->w, (size_t)cap * sizeof *nw);
            if (!nw) {
                snprintf(cu->err, sizeof cu->err, "cuda: out of host memory for bf16 weight copies");
                return ET_ERR_NOMEM;
            }
            b->w = nw;
            b->capw = cap;
        }
        c = &b->w[b->nw++];
        memset(c, 0, sizeof *c);
        c->w = w;
    }
    if (n > c->cap) {
        if (c->bf) {
            cudaStreamSynchronize(cu->stream);
            cudaFree(c->bf);
            c->bf = NULL;
        }
        b->copy_elems -= c->cap;
        c->cap = 0;
        TRY(dev_alloc(cu, &c->bf, n * 2, "a bf16 weight copy"));
        c->cap = n;
        b->copy_elems += n;
        c->stale = 1;
    }
    if (n != c->n) {
        c->n = n;
        c->stale = 1;
    }
    if (!b->lo || a < b->lo) b->lo = a;
    if (e > b->hi) b->hi = e;
    if (c->stale) {
        TRY(conv(cu, c->bf, w, n));
        c->stale = 0;
    }
    *out = c->bf;
    return ET_OK;
}

static et_status scratch(et_cuda *cu, size_t n, void **out)
{
    et__cu_bf16 *b = &cu->bf16;
    if (n > b->scratch_n) {
        if (b->scratch) {
            cudaStreamSynchronize(cu->stream);
            cudaFree(b->scratch);
            b->scratch = NULL;
        }
        b->scratch_n = 0;
        TRY(dev_alloc(cu, &b->scratch, n * 2, "the bf16 GEMM operand scratch"));
        b->scratch_n = n;
    }
    *out = b->scratch;
    return ET_OK;
}

/* rows per chunk: as many as fit the scratch at per_row elements each (at least 1) */
static int chunk_rows(const et__cu_bf16 *b, int N, size_t per_row)
{
    size_t r = b->scratch_max / per_row;
    if (r < 1) r = 1;
    return r < (size_t)N ? (int)r : N;
}

static et_status gemm_bf16(et_cuda *cu, cublasOperation_t ta, cublasOperation_t tb, int m, int n,
                           int k, const void *A, int lda, const void *B, int ldb, float beta,
                           float *C, int ldc, const char *what)
{
    const float one = 1.0f;
    cublasStatus_t st;
    if (!m || !n || !k) return ET_OK;
    st = cu->bl.gemm_ex(cu->blas, ta, tb, m, n, k, &one, A, CUDA_R_16BF, lda, B, CUDA_R_16BF, ldb,
                        &beta, C, CUDA_R_32F, ldc, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT);
    return st == CUBLAS_STATUS_SUCCESS ? ET_OK : et__cu_blas_fail(cu, what, st);
}

/* the transposed issue of each row-major product is the one cuda_ops.c explains */
et_status et__cu_bf16_matmul_fwd(et_cuda *cu, float *out, const float *inp, const float *w, int N,
                                 int C, int OC)
{
    const void *wb;
    void *s;
    int rows, r0, r;
    if (!N || !C || !OC) return ET_OK;
    TRY(weight(cu, w, (size_t)OC * C, &wb));
    rows = chunk_rows(&cu->bf16, N, (size_t)C);
    TRY(scratch(cu, (size_t)rows * C, &s));
    for (r0 = 0; r0 < N; r0 += rows) {
        r = N - r0 < rows ? N - r0 : rows;
        TRY(conv(cu, s, inp + (size_t)r0 * C, (size_t)r * C));
        TRY(gemm_bf16(cu, CUBLAS_OP_T, CUBLAS_OP_N, OC, r, C, wb, C, s, C, 0.0f,
                      out + (size_t)r0 * OC, OC, "cublasGemmEx bf16 (matmul_fwd)"));
    }
    return ET_OK;
}

et_status et__cu_bf16_matmul_bwd(et_cuda *cu, float *dinp, float *dw, const float *dout,
                                 const float *inp, const float *w, int N, int C, int OC)
{
    const void *wb = NULL;
    void *s;
    char *sd, *si;
    size_t per_row, off;
    int rows, r0, r;
    if (!N || !C || !OC || (!dinp && !dw)) return ET_OK;
    if (dinp) TRY(weight(cu, w, (size_t)OC * C, &wb));
    per_row = (size_t)OC + (dw ? (size_t)C : 0);
    rows = chunk_rows(&cu->bf16, N, per_row);
    off = ALIGN_EL((size_t)rows * OC);
    TRY(scratch(cu, off + (dw ? (size_t)rows * C : 0), &s));
    sd = (char *)s;
    si = sd + 2 * off;
    for (r0 = 0; r0 < N; r0 += rows) {
        r = N - r0 < rows ? N - r0 : rows;
        TRY(conv(cu, sd, dout + (size_t)r0 * OC, (size_t)r * OC));
        if (dinp)
            TRY(gemm_bf16(cu, CUBLAS_OP_N, CUBLAS_OP_N, C, r, OC, wb, C, sd, OC, 1.0f,
                          dinp + (size_t)r0 * C, C, "cublasGemmEx bf16 (matmul_bwd dinp)"));
        if (dw) {
            TRY(conv(cu, si, inp + (size_t)r0 * C, (size_t)r * C));
            TRY(gemm_bf16(cu, CUBLAS_OP_N, CUBLAS_OP_T, C, OC, r, si, C, sd, OC, 1.0f, dw, C,
                          "cublasGemmEx bf16 (matmul_bwd dw)"));
        }
    }
    return ET_OK;
}

// --- the public side (et_cuda.h)

et_status et_cuda_set_bf16(et_cuda *cu, int on, size_t scratch_elems, et_error *err)
{
    static const char tag[] = " bf16";
    size_t len;
    if (!cu) return et_error_set(err, ET_ERR_INVALID, "et_cuda_set_bf16: no handle");
    if (on && cu->cc_major < 8)
        return et_error_set(err, ET_ERR_UNSUPPORTED, "cuda: bf16 mixed precision needs compute "
                            "capability 8.0 or newer (sm_80+); %s is sm_%d%d", cu->name,
                            cu->cc_major, cu->cc_minor);
    if (on && !cu->bl.gemm_ex)
        return et_error_set(err, ET_ERR_UNSUPPORTED, "cuda: this cuBLAS has no cublasGemmEx");
    et__cu_bf16_release(cu);
    cu->bf16.on = on != 0;
    cu->bf16.scratch_max = scratch_elems ? scratch_elems : ET_CUDA_BF16_SCRATCH;
    len = strlen(cu->name);
    if (len >= sizeof tag - 1 && !strcmp(cu->name + len - (sizeof tag - 1), tag))
        cu->name[len - (sizeof tag - 1)] = '\0';
    if (on) strncat(cu->name, tag, sizeof cu->name - strlen(cu->name) - 1);
    return ET_OK;
}

int et_cuda_bf16_on(const et_cuda *cu) { return cu ? cu->bf16.on : 0; }

void et_cuda_bf16_bytes(const et_cuda *cu, size_t *copies, size_t *scratch_bytes)
{
    if (copies) *copies = cu ? 2 * cu->bf16.copy_elems : 0;
    if (scratch_bytes) *scratch_bytes = cu ? 2 * cu->bf16.scratch_n : 0;
}

et_status et_cuda_bf16_convert(et_cuda *cu, uint16_t *dst, const float *src, size_t n, et_error *err)
{
    void *d32 = NULL, *d16 = NULL;
    cudaError_t e = cudaSuccess;
    int ke;
    if (!cu || (n && (!dst || !src)))
        return et_error_set(err, ET_ERR_INVALID, "et_cuda_bf16_convert: bad argument");
    if (!n) return ET_OK;
    if ((e = cudaMalloc(&d32, n * 4)) != cudaSuccess || (e = cudaMalloc(&d16, n * 2)) != cudaSuccess ||
        (e = cudaMemcpyAsync(d32, src, n * 4, cudaMemcpyHostToDevice, cu->stream)) != cudaSuccess)
        goto out;
    if ((ke = et__cu_f32_to_bf16(cu->stream, d16, (const float *)d32, n)) != 0) {
        e = (cudaError_t)ke;
        goto out;
    }
    if ((e = cudaMemcpyAsync(dst, d16, n * 2, cudaMemcpyDeviceToHost, cu->stream)) != cudaSuccess) goto out;
    e = cudaStreamSynchronize(cu->stream);
out:
    if (e != cudaSuccess) cudaStreamSynchronize(cu->stream);
    if (d32) cudaFree(d32);
    if (d16) cudaFree(d16);
    if (e != cudaSuccess) {
        et__cu_fail(cu, "et_cuda_bf16_convert", e);
        return et_error_set(err, ET_ERR_DEVICE, "%s", cu->err);
    }
    return ET_OK;
}

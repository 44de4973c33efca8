/* et_cuda_impl.h - what the CUDA driver's C files share: the handle, pointer checks,
 * error helpers, staging of host ids. Not installed. */
#ifndef ET_CUDA_IMPL_H
#define ET_CUDA_IMPL_H

#include <cuda_runtime_api.h>
#include <cublas_v2.h>
#include "et_arena.h"
#include "et_cuda.h"
#include "et_cuda_kernels.h"

/** A device buffer for host data (token ids), with the host copy last written. */
typedef struct {
    void *d;
    size_t cap;      /* bytes */
    void *shadow;
    size_t shadow_n; /* valid bytes of shadow (0: nothing cached) */
} et__cu_stage;

/** The cuBLAS entry points the driver uses, loaded with dlopen when a device opens:
 *  linking libcublas would cost every process that links edgetrain ~75 ms of start-up
 *  (measured), the CLI's cpu runs included. */
typedef struct {
    void *lib;
    cublasStatus_t (*create)(cublasHandle_t *h);
    cublasStatus_t (*destroy)(cublasHandle_t h);
    cublasStatus_t (*set_stream)(cublasHandle_t h, cudaStream_t s);
    cublasStatus_t (*set_math_mode)(cublasHandle_t h, cublasMath_t mode);
    cublasStatus_t (*sgemm)(cublasHandle_t h, cublasOperation_t ta, cublasOperation_t tb, int m,
                            int n, int k, const float *alpha, const float *A, int lda,
                            const float *B, int ldb, const float *beta, float *C, int ldc);
    cublasStatus_t (*gemm_ex)(cublasHandle_t h, cublasOperation_t ta, cublasOperation_t tb, int m,
                              int n, int k, const void *alpha, const void *A, cudaDataType at,
                              int lda, const void *B, cudaDataType bt, int ldb, const void *beta,
                              void *C, cudaDataType ct, int ldc, cublasComputeType_t compute,
                              cublasGemmAlgo_t algo);
} et__cu_blas_fns;

/** The bf16 copy of one fp32 weight matrix the GEMMs have read (cuda_bf16.c). */
typedef struct {
    const float *w; /* the fp32 master in the device arena */
    size_t n;       /* its elements */
    size_t cap;     /* elements bf fits */
    void *bf;       /* cudaMalloc'd bf16 copy */
    int stale;      /* w written since bf was converted */
} et__cu_wcopy;

/** Mixed-precision state: off unless et_cuda_set_bf16() turned it on. */
typedef struct {
    int on;
    size_t scratch_max;  /* bf16 elements the operand scratch may grow to */
    void *scratch;       /* cudaMalloc'd bf16 GEMM operands (activations, their gradients) */
    size_t scratch_n;    /* elements allocated */
    et__cu_wcopy *w;     /* weight copies, malloc'd array */
    int nw, capw;
    uintptr_t lo, hi;    /* byte span of every copy's fp32 source: a quick miss for writes */
    size_t copy_elems;   /* sum of the copies' cap */
} et__cu_bf16;

struct et_cuda {
    int device;
    cudaStream_t stream;
    et__cu_blas_fns bl;
    cublasHandle_t blas;
    char *arena_mem;  /* cudaMalloc'd device arena */
    size_t arena_bytes;
    et_arena arena;   /* virtual over arena_mem */
    et__cu_stage tok, tgt, part;
    et__cu_bf16 bf16;
    int cc_major, cc_minor; /* compute capability */
    char name[300];
    char err[600];
};

/** Records "what: <CUDA error name>: <string>" and returns ET_ERR_DEVICE. */
et_status et__cu_fail(et_cuda *cu, const char *what, int cuda_err);

/** Records a cuBLAS failure and returns ET_ERR_DEVICE. */
et_status et__cu_blas_fail(et_cuda *cu, const char *what, cublasStatus_t st);

/** ET_OK when [p, p + n floats) lies in the device arena; else ET_ERR_INVALID with a
 *  message (a host pointer handed to a device op, say). */
et_status et__cu_check(et_cuda *cu, const void *p, size_t n);

/** Copies host ids into @p st unless it holds the same bytes already. */
et_status et__cu_stage_put(et_cuda *cu, et__cu_stage *st, const void *src, size_t bytes);

/** Makes @p st hold at least @p bytes (device and host copy). */
et_status et__cu_stage_grow(et_cuda *cu, et__cu_stage *st, size_t bytes);

/** Fills the op members of @p be (cuda_ops.c). */
void et__cu_fill_ops(et_cuda *cu, et_backend *be);

// --- bf16 mixed precision (cuda_bf16.c)

/** Marks the bf16 weight copies that [p, p + n floats) overlaps as stale: every op and
 *  every upload calls it for each buffer it writes. */
void et__cu_wrote(et_cuda *cu, const void *p, size_t n);

/** out(N,OC) = inp . w^T with bf16 operands, fp32 accumulation and output (no bias). */
et_status et__cu_bf16_matmul_fwd(et_cuda *cu, float *out, const float *inp, const float *w, int N,
                                 int C, int OC);

/** dinp += dout . w and dw += dout^T . inp with bf16 operands (either may be NULL). */
et_status et__cu_bf16_matmul_bwd(et_cuda *cu, float *dinp, float *dw, const float *dout,
                                 const float *inp, const float *w, int N, int C, int OC);

/** Frees the weight copies and the scratch (the arena they mirror is going away). */
void et__cu_bf16_release(et_cuda *cu);

#endif /* ET_CUDA_IMPL_H */

/* cuda_ops.c - the CUDA driver's op table: GEMMs through cuBLAS, everything else through
 * the launchers of the .cu files, all on the driver's stream.
 *
 * cuBLAS is column-major; a row-major X(r,c) is a column-major X^T(c,r) with the same
 * leading dimension, so each row-major product is issued transposed (as llm.c does):
 *   out(N,OC)  = inp . w^T      ->  out^T(OC,N)  = w . inp^T    : gemm(T, N, OC, N, C)
 *   dinp(N,C) += dout . w       ->  dinp^T(C,N) += w^T . dout^T : gemm(N, N, C, N, OC), beta 1
 *   dw(OC,C)  += dout^T . inp   ->  dw^T(C,OC)  += inp^T . dout : gemm(N, T, C, OC, N), beta 1
 * The forward runs with beta 0 (cuBLAS then never reads C) and adds the bias after.
 * In bf16 mode (et_cuda_set_bf16) the same products run through cuda_bf16.c instead;
 * the bias stays an fp32 kernel either way.
 * Every pointer is checked against the device arena first, so a host pointer is an
 * error with a message rather than a fault; every buffer an op writes is declared with
 * OUT, which also tells bf16 mode that a weight it copied may have changed.
 * Deliberately absent: cuBLASLt epilogues (bias fused into the GEMM).
 */
#include "et_math.h"
#include "et_cuda_impl.h"

#define CU_OF(ctx) ((et_cuda *)(ctx))
#define TRY(x) do { et_status et__s = (x); if (et__s != ET_OK) return et__s; } while (0)
#define CHK(p, n) TRY(et__cu_check(cu, (p), (size_t)(n)))
/* a buffer the op writes: checked, and reported to bf16 mode's weight copies */
#define OUT(p, n) do { CHK(p, n); et__cu_wrote(cu, (p), (size_t)(n)); } while (0)
#define LAUNCH(what, call) do { int et__e = (call); if (et__e) return et__cu_fail(cu, what, et__e); } while (0)

static et_status gemm(et_cuda *cu, cublasOperation_t ta, cublasOperation_t tb, int m, int n, int k,
                      const float *A, int lda, const float *B, int ldb, float beta, float *C,
                      int ldc, const char *what)
{
    const float one = 1.0f;
    cublasStatus_t st;
    if (!m || !n) return ET_OK;
    if (!k) return ET_OK; /* C += 0 (forward outputs are then set by the bias step) */
    st = cu->bl.sgemm(cu->blas, ta, tb, m, n, k, &one, A, lda, B, ldb, &beta, C, ldc);
    return st == CUBLAS_STATUS_SUCCESS ? ET_OK : et__cu_blas_fail(cu, what, st);
}

static et_status c_matmul_fwd(void *ctx, float *out, const float *inp, const float *w,
                              const float *bias, int N, int C, int OC)
{
    et_cuda *cu = CU_OF(ctx);
    CHK(inp, (size_t)N * C); CHK(w, (size_t)OC * C);
    if (bias) CHK(bias, OC);
    OUT(out, (size_t)N * OC);
    if (C == 0 && N && OC) {
        cudaError_t e = cudaMemsetAsync(out, 0, (size_t)N * OC * sizeof(float), cu->stream);
        if (e != cudaSuccess) return et__cu_fail(cu, "cudaMemsetAsync", e);
    }
    if (cu->bf16.on) TRY(et__cu_bf16_matmul_fwd(cu, out, inp, w, N, C, OC));
    else TRY(gemm(cu, CUBLAS_OP_T, CUBLAS_OP_N, OC, N, C, w, C, inp, C, 0.0f, out, OC, "cublasSgemm (matmul_fwd)"));
    if (bias) LAUNCH("bias_add", et__cu_bias_add(cu->stream, out, bias, N, OC));
    return ET_OK;
}

static et_status c_matmul_bwd(void *ctx, float *dinp, float *dw, float *dbias, const float *dout,
                              const float *inp, const float *w, int N, int C, int OC)
{
    et_cuda *cu = CU_OF(ctx);
    CHK(dout, (size_t)N * OC); CHK(inp, (size_t)N * C); CHK(w, (size_t)OC * C);
    if (dinp) OUT(dinp, (size_t)N * C);
    if (dw) OUT(dw, (size_t)OC * C);
    if (dbias) OUT(dbias, OC);
    if (cu->bf16.on) {
        TRY(et__cu_bf16_matmul_bwd(cu, dinp, dw, dout, inp, w, N, C, OC));
        dinp = dw = NULL; /* done: only the bias sum is left */
    }
    if (dinp) {
        TRY(gemm(cu, CUBLAS_OP_N, CUBLAS_OP_N, C, N, OC, w, C, dout, OC, 1.0f, dinp, C,
                 "cublasSgemm (matmul_bwd dinp)"));
    }
    if (dw) {
        TRY(gemm(cu, CUBLAS_OP_N, CUBLAS_OP_T, C, OC, N, inp, C, dout, OC, 1.0f, dw, C,
                 "cublasSgemm (matmul_bwd dw)"));
    }
    if (dbias) {
        LAUNCH("bias_bwd", et__cu_bias_bwd(cu->stream, dbias, dout, N, OC));
    }
    return ET_OK;
}

static et_status c_layernorm_fwd(void *ctx, float *out, float *mean, float *rstd, const float *inp,
                                 const float *w, const float *b, int N, int C)
{
    et_cuda *cu = CU_OF(ctx);
    OUT(out, (size_t)N * C); OUT(mean, N); OUT(rstd, N); CHK(inp, (size_t)N * C); CHK(w, C); CHK(b, C);
    LAUNCH("layernorm_fwd", et__cu_layernorm_fwd(cu->stream, out, mean, rstd, inp, w, b, N, C));
    return ET_OK;
}

static et_status c_layernorm_bwd(void *ctx, float *dinp, float *dw, float *db, const float *dout,
                                 const float *inp, const float *w, const float *mean,
                                 const float *rstd, int N, int C)
{
    et_cuda *cu = CU_OF(ctx);
    OUT(dinp, (size_t)N * C); OUT(dw, C); OUT(db, C); CHK(dout, (size_t)N * C);
    CHK(inp, (size_t)N * C); CHK(w, C); CHK(mean, N); CHK(rstd, N);
    LAUNCH("layernorm_bwd", et__cu_layernorm_bwd(cu->stream, dinp, dw, db, dout, inp, w, mean, rstd, N, C));
    return ET_OK;
}

static et_status c_attention_fwd(void *ctx, float *out, float *preatt, float *att, const float *qkv,
                                 int B, int T, int C, int NH)
{
    et_cuda *cu = CU_OF(ctx);
    size_t BT = (size_t)B * T, A = (size_t)B * NH * T * T;
    OUT(out, BT * C); OUT(preatt, A); OUT(att, A); CHK(qkv, BT * 3 * C);
    LAUNCH("attention_fwd", et__cu_attention_fwd(cu->stream, out, preatt, att, qkv, B, T, C, NH));
    return ET_OK;
}

static et_status c_attention_bwd(void *ctx, float *dqkv, float *dpreatt, float *datt,
                                 const float *dout, const float *qkv, const float *preatt,
                                 const float *att, const float *out, int B, int T, int C, int NH)
{
    et_cuda *cu = CU_OF(ctx);
    size_t BT = (size_t)B * T, A = (size_t)B * NH * T * T;
    (void)preatt; /* the gradient needs only the probabilities in att */
    (void)out;
    OUT(dqkv, BT * 3 * C); OUT(dpreatt, A); OUT(datt, A); CHK(dout, BT * C); CHK(qkv, BT * 3 * C);
    CHK(att, A);
    LAUNCH("attention_bwd",
           et__cu_attention_bwd(cu->stream, dqkv, dpreatt, datt, dout, qkv, att, B, T, C, NH));
    return ET_OK;
}

static et_status c_gelu_fwd(void *ctx, float *out, const float *inp, size_t n)
{
    et_cuda *cu = CU_OF(ctx);
    OUT(out, n); CHK(inp, n);
    if (n) LAUNCH("gelu_fwd", et__cu_gelu_fwd(cu->stream, out, inp, n));
    return ET_OK;
}

static et_status c_gelu_bwd(void *ctx, float *dinp, const float *inp, const float *dout, size_t n)
{
    et_cuda *cu = CU_OF(ctx);
    OUT(dinp, n); CHK(inp, n); CHK(dout, n);
    if (n) LAUNCH("gelu_bwd", et__cu_gelu_bwd(cu->stream, dinp, inp, dout, n));
    return ET_OK;
}

static et_status c_residual_fwd(void *ctx, float *out, const float *a, const float *b, size_t n)
{
    et_cuda *cu = CU_OF(ctx);
    OUT(out, n); CHK(a, n); CHK(b, n);
    if (n) LAUNCH("residual_fwd", et__cu_residual(cu->stream, out, a, b, n));
    return ET_OK;
}

static et_status c_accumulate(void *ctx, float *dst, const float *src, size_t n)
{
    et_cuda *cu = CU_OF(ctx);
    OUT(dst, n); CHK(src, n);
    if (n) LAUNCH("accumulate", et__cu_accumulate(cu->stream, dst, src, n));
    return ET_OK;
}

static et_status c_scale(void *ctx, float *x, float s, size_t n)
{
    et_cuda *cu = CU_OF(ctx);
    OUT(x, n);
    if (n) LAUNCH("scale", et__cu_scale(cu->stream, x, s, n));
    return ET_OK;
}

static et_status c_zero(void *ctx, float *x, size_t n)
{
    et_cuda *cu = CU_OF(ctx);
    cudaError_t e;
    OUT(x, n);
    if (n && (e = cudaMemsetAsync(x, 0, n * sizeof(float), cu->stream)) != cudaSuccess)
        return et__cu_fail(cu, "cudaMemsetAsync (zero)", e);
    return ET_OK;
}

static et_status c_copy(void *ctx, float *dst, const float *src, size_t n)
{
    et_cuda *cu = CU_OF(ctx);
    cudaError_t e;
    OUT(dst, n); CHK(src, n);
    if (n && (e = cudaMemcpyAsync(dst, src, n * sizeof(float), cudaMemcpyDeviceToDevice,
                                  cu->stream)) != cudaSuccess)
        return et__cu_fail(cu, "cudaMemcpyAsync (copy)", e);
    return ET_OK;
}

static et_status c_encoder_fwd(void *ctx, float *out, const int *tokens, const float *wte,
                               const float *wpe, int B, int T, int C)
{
    et_cuda *cu = CU_OF(ctx);
    size_t BT = (size_t)B * T;
    OUT(out, BT * C); CHK(wte, C); CHK(wpe, (size_t)T * C);
    if (!BT) return ET_OK;
    TRY(et__cu_stage_put(cu, &cu->tok, tokens, BT * sizeof(int)));
    LAUNCH("encoder_fwd", et__cu_encoder_fwd(cu->stream, out, (const int *)cu->tok.d, wte, wpe, B, T, C));
    return ET_OK;
}

static et_status c_encoder_bwd(void *ctx, float *dwte, float *dwpe, const float *dout,
                               const int *tokens, int B, int T, int C)
{
    et_cuda *cu = CU_OF(ctx);
    size_t BT = (size_t)B * T;
    size_t i, rows = 0;
    CHK(dwte, C); OUT(dwpe, (size_t)T * C); CHK(dout, BT * C);
    if (!BT) return ET_OK;
    for (i = 0; i < BT; i++)
        if ((size_t)tokens[i] + 1 > rows) rows = (size_t)tokens[i] + 1;
    et__cu_wrote(cu, dwte, rows * C); /* the rows up to the largest token id */
    TRY(et__cu_stage_put(cu, &cu->tok, tokens, BT * sizeof(int)));
    LAUNCH("encoder_bwd", et__cu_encoder_bwd(cu->stream, dwte, dwpe, dout, (const int *)cu->tok.d, B, T, C));
    return ET_OK;
}

static et_status c_ce_fwd(void *ctx, float *losses, float *probs, const float *logits,
                          const int *targets, int N, int V, int Vp)
{
    et_cuda *cu = CU_OF(ctx);
    const int *tg = NULL;
    OUT(probs, (size_t)N * Vp); CHK(logits, (size_t)N * Vp);
    if (targets && losses) {
        OUT(losses, N);
        TRY(et__cu_stage_put(cu, &cu->tgt, targets, (size_t)N * sizeof(int)));
        tg = (const int *)cu->tgt.d;
    }
    LAUNCH("crossentropy_fwd", et__cu_crossentropy_fwd(cu->stream, losses, probs, logits, tg, N, V, Vp));
    return ET_OK;
}

static et_status c_ce_bwd(void *ctx, float *dlogits, const float *probs, const int *targets,
                          float dloss, int N, int V, int Vp)
{
    et_cuda *cu = CU_OF(ctx);
    OUT(dlogits, (size_t)N * Vp); CHK(probs, (size_t)N * Vp);
    if (!N) return ET_OK;
    TRY(et__cu_stage_put(cu, &cu->tgt, targets, (size_t)N * sizeof(int)));
    LAUNCH("crossentropy_bwd",
           et__cu_crossentropy_bwd(cu->stream, dlogits, probs, (const int *)cu->tgt.d, dloss, N, V, Vp));
    return ET_OK;
}

static et_status c_adamw(void *ctx, float *param, const float *grad, float *m, float *v, size_t n,
                         float lr, float beta1, float beta2, float eps, float wd, int t)
{
    et_cuda *cu = CU_OF(ctx);
    if (t < 1) return ET_ERR_INVALID;
    OUT(param, n); CHK(grad, n); OUT(m, n); OUT(v, n);
    /* the same bias corrections, bit for bit, as the cpu backend */
    if (n) LAUNCH("adamw", et__cu_adamw(cu->stream, param, grad, m, v, n, lr, beta1, beta2, eps, wd,
                                        1.0f - et_powf(beta1, (float)t), 1.0f - et_powf(beta2, (float)t)));
    return ET_OK;
}

static et_status c_sumsq(void *ctx, double *out, const float *x, size_t n)
{
    et_cuda *cu = CU_OF(ctx);
    size_t nch = (n + ET_CU_SUMSQ_CHUNK - 1) / ET_CU_SUMSQ_CHUNK, i;
    cudaError_t e;
    double s = 0.0;
    CHK(x, n);
    *out = 0.0;
    if (!n) return ET_OK;
    TRY(et__cu_stage_grow(cu, &cu->part, nch * sizeof(double)));
    cu->part.shadow_n = 0; /* not a cache of host data */
    LAUNCH("sumsq", et__cu_sumsq(cu->stream, (double *)cu->part.d, x, n));
    if ((e = cudaMemcpyAsync(cu->part.shadow, cu->part.d, nch * sizeof(double),
                             cudaMemcpyDeviceToHost, cu->stream)) != cudaSuccess ||
        (e = cudaStreamSynchronize(cu->stream)) != cudaSuccess)
        return et__cu_fail(cu, "sumsq readback", e);
    for (i = 0; i < nch; i++) s += ((const double *)cu->part.shadow)[i];
    *out = s;
    return ET_OK;
}

void et__cu_fill_ops(et_cuda *cu, et_backend *be)
{
    ET_UNUSED(cu);
    be->matmul_fwd = c_matmul_fwd;
    be->matmul_bwd = c_matmul_bwd;
    be->layernorm_fwd = c_layernorm_fwd;
    be->layernorm_bwd = c_layernorm_bwd;
    be->attention_fwd = c_attention_fwd;
    be->attention_bwd = c_attention_bwd;
    be->gelu_fwd = c_gelu_fwd;
    be->gelu_bwd = c_gelu_bwd;
    be->residual_fwd = c_residual_fwd;
    be->accumulate = c_accumulate;
    be->encoder_fwd = c_encoder_fwd;
    be->encoder_bwd = c_encoder_bwd;
    be->crossentropy_fwd = c_ce_fwd;
    be->crossentropy_bwd = c_ce_bwd;
    be->adamw = c_adamw;
    be->sumsq = c_sumsq;
    be->scale = c_scale;
    be->zero = c_zero;
    be->copy = c_copy;
}

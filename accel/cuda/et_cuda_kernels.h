/* et_cuda_kernels.h - the launchers of the .cu kernels, callable from C. Each queues its
 * kernel(s) on @p s and returns the launch's cudaError_t as an int (0: success). Shapes
 * and semantics are those of et_backend.h; backward kernels add into their outputs.
 * Not installed. */
#ifndef ET_CUDA_KERNELS_H
#define ET_CUDA_KERNELS_H

#include <stddef.h>
#include <cuda_runtime_api.h>

#ifdef __cplusplus
extern "C" {
#endif

/** Threads of the row kernels (LayerNorm, softmax, attention rows): a power of two. */
#define ET_CU_ROW_THREADS 128
/** Elements one sumsq block reduces (fixed: results do not depend on the device). */
#define ET_CU_SUMSQ_CHUNK 16384

/* kernels_elementwise.cu */
int et__cu_bias_add(cudaStream_t s, float *out, const float *bias, int N, int OC);
int et__cu_bias_bwd(cudaStream_t s, float *dbias, const float *dout, int N, int OC);
int et__cu_gelu_fwd(cudaStream_t s, float *out, const float *inp, size_t n);
int et__cu_gelu_bwd(cudaStream_t s, float *dinp, const float *inp, const float *dout, size_t n);
int et__cu_residual(cudaStream_t s, float *out, const float *a, const float *b, size_t n);
int et__cu_accumulate(cudaStream_t s, float *dst, const float *src, size_t n);
int et__cu_scale(cudaStream_t s, float *x, float k, size_t n);
int et__cu_encoder_fwd(cudaStream_t s, float *out, const int *tok, const float *wte,
                       const float *wpe, int B, int T, int C);
int et__cu_encoder_bwd(cudaStream_t s, float *dwte, float *dwpe, const float *dout,
                       const int *tok, int B, int T, int C);
int et__cu_adamw(cudaStream_t s, float *p, const float *g, float *m, float *v, size_t n, float lr,
                 float b1, float b2, float eps, float wd, float bc1, float bc2);
/** One double partial per chunk of ET_CU_SUMSQ_CHUNK elements into part. */
int et__cu_sumsq(cudaStream_t s, double *part, const float *x, size_t n);

/* kernels_norm.cu */
int et__cu_layernorm_fwd(cudaStream_t s, float *out, float *mean, float *rstd, const float *inp,
                         const float *w, const float *b, int N, int C);
int et__cu_layernorm_bwd(cudaStream_t s, float *dinp, float *dw, float *db, const float *dout,
                         const float *inp, const float *w, const float *mean, const float *rstd,
                         int N, int C);
/** tg may be NULL (no losses). */
int et__cu_crossentropy_fwd(cudaStream_t s, float *losses, float *probs, const float *logits,
                            const int *tg, int N, int V, int Vp);
int et__cu_crossentropy_bwd(cudaStream_t s, float *dlogits, const float *probs, const int *tg,
                            float dloss, int N, int V, int Vp);

/* kernels_attention.cu */
int et__cu_attention_fwd(cudaStream_t s, float *out, float *preatt, float *att, const float *qkv,
                         int B, int T, int C, int NH);
int et__cu_attention_bwd(cudaStream_t s, float *dqkv, float *dpreatt, float *datt,
                         const float *dout, const float *qkv, const float *att, int B, int T,
                         int C, int NH);

/* kernels_bf16.cu */
/** dst(n) = bf16 of src(n), round to nearest even (dst: uint16 patterns). */
int et__cu_f32_to_bf16(cudaStream_t s, void *dst, const float *src, size_t n);

#ifdef __cplusplus
}
#endif

#endif /* ET_CUDA_KERNELS_H */

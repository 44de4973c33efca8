/* et_cpu_ops.h - the cpu kernels as plain functions over host memory (the cpu backend
 * wraps them; other backends' tests call them as the reference). Shapes as in
 * et_backend.h; backward kernels add into their gradient outputs. */
#ifndef ET_CPU_OPS_H
#define ET_CPU_OPS_H

#include "et_conf.h"
#include "et_threads.h"

void et_cpu_layernorm_fwd(const et_threads *th, float *out, float *mean, float *rstd,
                          const float *inp, const float *w, const float *b, int N, int C);
void et_cpu_layernorm_bwd(const et_threads *th, float *dinp, float *dw, float *db,
                          const float *dout, const float *inp, const float *w,
                          const float *mean, const float *rstd, int N, int C);
void et_cpu_gelu_fwd(const et_threads *th, float *out, const float *inp, size_t n);
void et_cpu_gelu_bwd(const et_threads *th, float *dinp, const float *inp, const float *dout,
                     size_t n);
void et_cpu_encoder_fwd(const et_threads *th, float *out, const int *tokens, const float *wte,
                        const float *wpe, int B, int T, int C);
void et_cpu_encoder_bwd(const et_threads *th, float *dwte, float *dwpe, const float *dout,
                        const int *tokens, int B, int T, int C);
void et_cpu_crossentropy_fwd(const et_threads *th, float *losses, float *probs,
                             const float *logits, const int *targets, int N, int V, int Vp);
void et_cpu_crossentropy_bwd(const et_threads *th, float *dlogits, const float *probs,
                             const int *targets, float dloss, int N, int V, int Vp);
/* causal attention, flash-style: lse(B,NH,T) is all forward keeps for backward. It takes
 * per-worker scratch: @p scratch holds one slice of @p slice bytes (>= et_cpu_flash_slice(),
 * whatever T) for each worker of @p th. */
size_t et_cpu_flash_slice(void);
void et_cpu_flash_fwd(const et_threads *th, float *scratch, size_t slice, float *out, float *lse,
                      const float *qkv, int B, int T, int C, int NH);
void et_cpu_flash_bwd(const et_threads *th, float *scratch, size_t slice, float *dqkv,
                      const float *dout, const float *qkv, const float *out, const float *lse,
                      int B, int T, int C, int NH);
void et_cpu_adamw(const et_threads *th, float *param, const float *grad, float *m, float *v,
                  size_t n, float lr, float beta1, float beta2, float eps, float wd, int t);
double et_cpu_sumsq(const et_threads *th, const float *x, size_t n);

#endif /* ET_CPU_OPS_H */

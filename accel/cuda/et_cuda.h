/* et_cuda.h - the CUDA driver: et_backend over one NVIDIA GPU, GEMMs in cuBLAS
 * (cublasSgemm, fp32) and every other op a CUDA kernel of this folder's .cu files,
 * all queued on one stream.
 *
 * Device memory is one cudaMalloc'd block, the device arena (et_arena_init_virtual over
 * it: real device pointers, so pointer arithmetic in the model works, but the core never
 * touches them). Token and target ids arrive as host ints and go to small staging
 * buffers of their own, as do the partial sums of sumsq.
 *
 * Set ET_CUDA_TF32=1 in the environment to let cuBLAS use TF32 tensor cores for the
 * GEMMs (faster on Ampere and later, no longer bit-comparable with fp32: the
 * conformance suite runs without it).
 *
 * bf16 mixed precision (et_cuda_set_bf16; the registry's "cuda+bf16", the CLI's
 * `--precision bf16`): the GEMM operands are bf16, accumulation and everything else
 * fp32, weights kept as fp32 masters with bf16 copies (cuda_bf16.c says exactly what is
 * bf16). Deliberately absent: several GPUs, CUDA graphs, fused or flash attention.
 */
#ifndef ET_CUDA_H
#define ET_CUDA_H

#include <stdint.h>
#include "et_accel.h"

typedef struct et_cuda et_cuda;

/** bf16 elements the GEMM operand scratch of bf16 mode may grow to by default
 *  (64 MiB); larger products run in chunks of rows. */
#define ET_CUDA_BF16_SCRATCH ((size_t)32 << 20)

/**
 * Lists the CUDA devices.
 * @return ET_OK; ET_ERR_DEVICE when the runtime finds none (no driver, no GPU): the
 *         message says "no CUDA device" and gives the runtime's reason
 */
et_status et_cuda_devices(et_accel_device *out, int max, int *n, et_error *err);

/**
 * Opens device @p device (-1: device 0): stream and cuBLAS handle.
 * @return ET_OK, ET_ERR_DEVICE (no device, or the runtime failed), ET_ERR_NOMEM
 */
et_status et_cuda_open(et_cuda **out, int device, et_error *err);

/** Fills @p be with the driver's ops; be->ctx is @p cu and be->dev_arena its arena. */
void et_cuda_backend(et_cuda *cu, et_backend *be);

/** cudaMalloc's the device arena of @p bytes (freeing any earlier one). */
et_status et_cuda_reserve(et_cuda *cu, size_t bytes, et_error *err);

/** Waits for the stream. */
et_status et_cuda_finish(et_cuda *cu);

/** Message of the last failure, naming the call and the CUDA error ("" if none). */
const char *et_cuda_last_error(const et_cuda *cu);

/** "cuda:N <device> (sm_XY)". */
const char *et_cuda_name(const et_cuda *cu);

/**
 * Turns bf16 mixed precision on or off. On: matmul_fwd/bwd multiply bf16 copies of the
 * weights and of their activation / gradient operands with fp32 accumulation and fp32
 * results (cublasGemmEx, CUBLAS_COMPUTE_32F); every buffer of the model stays fp32.
 * Drops any bf16 copies made so far.
 * @param[in] scratch_elems bf16 elements the operand scratch may grow to before products
 *            run in chunks of rows (0: ET_CUDA_BF16_SCRATCH)
 * @return ET_OK; ET_ERR_UNSUPPORTED on a device older than sm_80 or a cuBLAS without
 *         cublasGemmEx
 */
et_status et_cuda_set_bf16(et_cuda *cu, int on, size_t scratch_elems, et_error *err);

/** Nonzero when bf16 mixed precision is on. */
int et_cuda_bf16_on(const et_cuda *cu);

/** Device bytes bf16 mode holds outside the device arena now: the weight copies and the
 *  operand scratch (either pointer may be NULL). */
void et_cuda_bf16_bytes(const et_cuda *cu, size_t *copies, size_t *scratch);

/**
 * Converts @p n host floats to bf16 patterns with the device kernel the bf16 GEMM
 * operands go through (for tests: et_bf16.h must agree with it bit for bit).
 * @return ET_OK, ET_ERR_INVALID, ET_ERR_DEVICE
 */
et_status et_cuda_bf16_convert(et_cuda *cu, uint16_t *dst, const float *src, size_t n,
                               et_error *err);

/** Releases everything. NULL is a no-op. */
void et_cuda_close(et_cuda *cu);

#endif /* ET_CUDA_H */

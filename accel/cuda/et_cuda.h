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
 * conformance suite runs without it). Deliberately absent: bf16 mixed precision,
 * several GPUs, CUDA graphs, fused or flash attention.
 */
#ifndef ET_CUDA_H
#define ET_CUDA_H

#include "et_accel.h"

typedef struct et_cuda et_cuda;

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

/** Releases everything. NULL is a no-op. */
void et_cuda_close(et_cuda *cu);

#endif /* ET_CUDA_H */

/* kernels_bf16.cu - fp32 -> bf16 conversion for the mixed-precision GEMMs: the weight
 * copies and the GEMM operands (cuda_bf16.c). __float2bfloat16_rn is one PTX
 * cvt.rn.bf16.f32 on sm_80+ (round to nearest even, NaN to 0x7fff); et_bf16.h is its
 * host twin, held to it bit for bit by check_backend on a GPU. One thread per pair of
 * elements, written as one 32-bit store; a plain grid, no fusion. */
#include <cuda_bf16.h>
#include "et_cuda_reduce.cuh"

static __global__ void k_f32_to_bf16(__nv_bfloat16 *dst, const float *src, size_t n)
{
    size_t i = 2 * ((size_t)blockIdx.x * blockDim.x + threadIdx.x);
    if (i + 1 < n && !(((size_t)dst | (size_t)src) & 7)) {
        float2 v = *(const float2 *)(src + i);
        *(__nv_bfloat162 *)(dst + i) = __floats2bfloat162_rn(v.x, v.y);
    } else {
        if (i < n) dst[i] = __float2bfloat16_rn(src[i]);
        if (i + 1 < n) dst[i + 1] = __float2bfloat16_rn(src[i + 1]);
    }
}

extern "C" int et__cu_f32_to_bf16(cudaStream_t s, void *dst, const float *src, size_t n)
{
    if (n) k_f32_to_bf16<<<et_blocks((n + 1) / 2), 256, 0, s>>>((__nv_bfloat16 *)dst, src, n);
    return (int)cudaGetLastError();
}

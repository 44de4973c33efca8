/* et_cuda_reduce.cuh - block-wide sum and max over ET_CU_ROW_THREADS threads through
 * shared memory, shared by the row kernels. Each thread first reduces a strided slice
 * in order, then the block reduces as a tree: a fixed order for a fixed block size. */
#ifndef ET_CUDA_REDUCE_CUH
#define ET_CUDA_REDUCE_CUH

#include "et_cuda_kernels.h"

/* every thread of the block gets the sum; sh holds ET_CU_ROW_THREADS floats */
static __device__ float et_block_sum(float v, float *sh)
{
    int l = threadIdx.x, s;
    float r;
    sh[l] = v;
    __syncthreads();
    for (s = ET_CU_ROW_THREADS / 2; s > 0; s >>= 1) {
        if (l < s) sh[l] += sh[l + s];
        __syncthreads();
    }
    r = sh[0];
    __syncthreads(); /* sh may be reused right after */
    return r;
}

static __device__ float et_block_max(float v, float *sh)
{
    int l = threadIdx.x, s;
    float r;
    sh[l] = v;
    __syncthreads();
    for (s = ET_CU_ROW_THREADS / 2; s > 0; s >>= 1) {
        if (l < s) sh[l] = fmaxf(sh[l], sh[l + s]);
        __syncthreads();
    }
    r = sh[0];
    __syncthreads();
    return r;
}

/* blocks of 256 threads over n elements */
static inline unsigned et_blocks(size_t n) { return (unsigned)((n + 255) / 256); }

#endif /* ET_CUDA_REDUCE_CUH */

/* cuda_driver.c - the CUDA driver's device side: listing devices, opening one (stream,
 * cuBLAS handle), the device arena, staging buffers, transfers, error messages.
 *
 * Without a GPU (no driver, or none present) cudaGetDeviceCount fails or reports 0,
 * and every entry point answers ET_ERR_DEVICE with "no CUDA device" and the runtime's
 * reason: this is what CI without a GPU sees. Deliberately absent: pinned host memory,
 * peer access, several devices.
 */
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "et_cuda_impl.h"

#define STR2(x) #x
#define STR(x) STR2(x)
#ifndef ET_CUDA_LIBDIR
#define ET_CUDA_LIBDIR "/usr/local/cuda/lib64"
#endif

et_status et__cu_fail(et_cuda *cu, const char *what, int e)
{
    snprintf(cu->err, sizeof cu->err, "cuda: %s failed: %s: %s", what,
             cudaGetErrorName((cudaError_t)e), cudaGetErrorString((cudaError_t)e));
    return ET_ERR_DEVICE;
}

et_status et__cu_blas_fail(et_cuda *cu, const char *what, cublasStatus_t st)
{
    snprintf(cu->err, sizeof cu->err, "cuda: %s failed: cuBLAS status %d", what, (int)st);
    return ET_ERR_DEVICE;
}

et_status et__cu_check(et_cuda *cu, const void *p, size_t n)
{
    uintptr_t a = (uintptr_t)p, b = (uintptr_t)cu->arena_mem, end = b + cu->arena_bytes;
    if (!cu->arena_mem || a < b || a > end || (a & 3) || n > (end - a) / 4) {
        snprintf(cu->err, sizeof cu->err, "cuda: pointer %p (%zu elements) is not in the device "
                 "arena [%p, %p)", p, n, (void *)b, (void *)end);
        return ET_ERR_INVALID;
    }
    return ET_OK;
}

/* device count, or ET_ERR_DEVICE saying why there is none */
static et_status count(int *n, et_error *err)
{
    cudaError_t e = cudaGetDeviceCount(n);
    if (e != cudaSuccess) {
        *n = 0;
        cudaGetLastError(); /* clear the sticky-free error state */
        return et_error_set(err, ET_ERR_DEVICE, "cuda: no CUDA device (cudaGetDeviceCount: %s: %s)",
                            cudaGetErrorName(e), cudaGetErrorString(e));
    }
    if (*n == 0)
        return et_error_set(err, ET_ERR_DEVICE, "cuda: no CUDA device (the driver reports none)");
    return ET_OK;
}

static void describe(int i, et_accel_device *o)
{
    struct cudaDeviceProp p;
    int rt = 0;
    memset(o, 0, sizeof *o);
    snprintf(o->backend, sizeof o->backend, "cuda");
    snprintf(o->spec, sizeof o->spec, "cuda:%d", i);
    cudaRuntimeGetVersion(&rt);
    snprintf(o->platform, sizeof o->platform, "CUDA runtime %d.%d", rt / 1000, (rt % 1000) / 10);
    if (cudaGetDeviceProperties(&p, i) != cudaSuccess) {
        snprintf(o->name, sizeof o->name, "(cudaGetDeviceProperties failed)");
        return;
    }
    snprintf(o->name, sizeof o->name, "%.127s", p.name);
    snprintf(o->version, sizeof o->version, "sm_%d%d", p.major, p.minor);
    o->mem_bytes = p.totalGlobalMem;
    o->max_alloc = p.totalGlobalMem;
    o->units = p.multiProcessorCount;
    o->is_gpu = 1;
}

/* dlopens cuBLAS (the major version this was built against) and finds its entry points */
static et_status load_blas(et_cuda *cu)
{
    static const char *const paths[] = {
        "libcublas.so." STR(CUBLAS_VER_MAJOR), ET_CUDA_LIBDIR "/libcublas.so." STR(CUBLAS_VER_MAJOR),
        "libcublas.so", NULL};
    static const char *const names[] = {"cublasCreate_v2", "cublasDestroy_v2", "cublasSetStream_v2",
                                        "cublasSetMathMode", "cublasSgemm_v2", "cublasGemmEx"};
    void **slot[6];
    int i;
    slot[0] = (void **)(void *)&cu->bl.create;
    slot[1] = (void **)(void *)&cu->bl.destroy;
    slot[2] = (void **)(void *)&cu->bl.set_stream;
    slot[3] = (void **)(void *)&cu->bl.set_math_mode;
    slot[4] = (void **)(void *)&cu->bl.sgemm;
    slot[5] = (void **)(void *)&cu->bl.gemm_ex;
    for (i = 0; paths[i] && !cu->bl.lib; i++) cu->bl.lib = dlopen(paths[i], RTLD_NOW | RTLD_LOCAL);
    if (!cu->bl.lib) {
        snprintf(cu->err, sizeof cu->err, "cuda: cannot load cuBLAS (libcublas.so.%d): %s",
                 CUBLAS_VER_MAJOR, dlerror());
        return ET_ERR_DEVICE;
    }
    for (i = 0; i < 6; i++)
        if (!(*slot[i] = dlsym(cu->bl.lib, names[i]))) {
            snprintf(cu->err, sizeof cu->err, "cuda: cuBLAS lacks %s", names[i]);
            return ET_ERR_DEVICE;
        }
    return ET_OK;
}

et_status et_cuda_devices(et_accel_device *out, int max, int *n, et_error *err)
{
    int i;
    et_status s;
    if ((s = count(n, err)) != ET_OK) return s;
    for (i = 0; i < *n && i < max; i++) describe(i, &out[i]);
    return ET_OK;
}

et_status et_cuda_open(et_cuda **out, int device, et_error *err)
{
    et_cuda *cu;
    et_accel_device info;
    int n = 0;
    cudaError_t e;
    cublasStatus_t bs;
    const char *tf32 = getenv("ET_CUDA_TF32");
    et_status s;
    if (!out) return et_error_set(err, ET_ERR_INVALID, "et_cuda_open: no handle");
    *out = NULL;
    if ((s = count(&n, err)) != ET_OK) return s;
    if (device < 0) device = 0;
    if (device >= n)
        return et_error_set(err, ET_ERR_DEVICE, "cuda: no device %d (%d found; see edgetrain devices)",
                            device, n);
    if (!(cu = calloc(1, sizeof *cu))) return et_error_set(err, ET_ERR_NOMEM, "out of memory");
    cu->device = device;
    describe(device, &info);
    if (cudaDeviceGetAttribute(&cu->cc_major, cudaDevAttrComputeCapabilityMajor, device) != cudaSuccess ||
        cudaDeviceGetAttribute(&cu->cc_minor, cudaDevAttrComputeCapabilityMinor, device) != cudaSuccess) {
        cudaGetLastError();
        cu->cc_major = cu->cc_minor = 0; /* unknown: bf16 mode will refuse */
    }
    snprintf(cu->name, sizeof cu->name, "%s %s (%s)", info.spec, info.name, info.version);
    if ((e = cudaSetDevice(device)) != cudaSuccess ||
        (e = cudaStreamCreateWithFlags(&cu->stream, cudaStreamNonBlocking)) != cudaSuccess) {
        s = et__cu_fail(cu, "cudaSetDevice/cudaStreamCreate", e);
        goto fail;
    }
    if ((s = load_blas(cu)) != ET_OK) goto fail;
    if ((bs = cu->bl.create(&cu->blas)) != CUBLAS_STATUS_SUCCESS ||
        (bs = cu->bl.set_stream(cu->blas, cu->stream)) != CUBLAS_STATUS_SUCCESS ||
        (bs = cu->bl.set_math_mode(cu->blas, tf32 && *tf32 == '1' ? CUBLAS_TF32_TENSOR_OP_MATH
                                                                  : CUBLAS_DEFAULT_MATH)) != CUBLAS_STATUS_SUCCESS) {
        s = et__cu_blas_fail(cu, "cublasCreate", bs);
        goto fail;
    }
    if (tf32 && *tf32 == '1')
        strncat(cu->name, " tf32", sizeof cu->name - strlen(cu->name) - 1);
    /* a range of zero bytes until et_cuda_reserve(); the base only has to be aligned */
    et_arena_init_virtual(&cu->arena, (void *)(uintptr_t)ET_ALIGN, 0);
    *out = cu;
    return ET_OK;
fail:
    et_error_set(err, s, "%s", cu->err);
    et_cuda_close(cu);
    return s;
}

et_status et_cuda_reserve(et_cuda *cu, size_t bytes, et_error *err)
{
    cudaError_t e;
    void *p = NULL;
    if (!cu) return et_error_set(err, ET_ERR_INVALID, "et_cuda_reserve: no handle");
    bytes = et_arena_block(bytes ? bytes : 1);
    et__cu_bf16_release(cu); /* its copies mirror the arena that goes away */
    if (cu->arena_mem) {
        cudaStreamSynchronize(cu->stream);
        cudaFree(cu->arena_mem);
        cu->arena_mem = NULL;
    }
    cu->arena_bytes = 0;
    et_arena_init_virtual(&cu->arena, (void *)(uintptr_t)ET_ALIGN, 0);
    if ((e = cudaMalloc(&p, bytes)) != cudaSuccess) {
        cudaGetLastError();
        return et_error_set(err, e == cudaErrorMemoryAllocation ? ET_ERR_NOMEM : ET_ERR_DEVICE,
                            "cuda: cannot allocate a device arena of %zu bytes: %s", bytes,
                            cudaGetErrorString(e));
    }
    cu->arena_mem = (char *)p; /* cudaMalloc aligns to at least 256 bytes */
    cu->arena_bytes = bytes;
    return et_arena_init_virtual(&cu->arena, p, bytes);
}

et_status et__cu_stage_grow(et_cuda *cu, et__cu_stage *st, size_t bytes)
{
    cudaError_t e;
    size_t cap;
    if (st->d && st->cap >= bytes) return ET_OK;
    if (st->d) {
        cudaStreamSynchronize(cu->stream); /* queued kernels may still read it */
        cudaFree(st->d);
    }
    st->d = NULL;
    st->cap = 0;
    st->shadow_n = 0;
    cap = bytes < 4096 ? 4096 : bytes + bytes / 2;
    if ((e = cudaMalloc(&st->d, cap)) != cudaSuccess) {
        st->d = NULL;
        return et__cu_fail(cu, "cudaMalloc (staging)", e);
    }
    free(st->shadow);
    if (!(st->shadow = malloc(cap))) return ET_ERR_NOMEM;
    st->cap = cap;
    return ET_OK;
}

et_status et__cu_stage_put(et_cuda *cu, et__cu_stage *st, const void *src, size_t bytes)
{
    cudaError_t e;
    et_status s;
    if (st->d && st->shadow_n == bytes && !memcmp(st->shadow, src, bytes)) return ET_OK;
    if ((s = et__cu_stage_grow(cu, st, bytes)) != ET_OK) return s;
    memcpy(st->shadow, src, bytes);
    st->shadow_n = bytes;
    /* from pageable memory: returns once the bytes are staged, so src may change after */
    e = cudaMemcpyAsync(st->d, st->shadow, bytes, cudaMemcpyHostToDevice, cu->stream);
    if (e != cudaSuccess) {
        st->shadow_n = 0;
        return et__cu_fail(cu, "cudaMemcpyAsync (token ids)", e);
    }
    return ET_OK;
}

static et_status cu_upload(void *ctx, void *dst, const void *src, size_t bytes)
{
    et_cuda *cu = (et_cuda *)ctx;
    cudaError_t e;
    et_status s;
    if (!bytes) return ET_OK;
    if ((s = et__cu_check(cu, dst, (bytes + 3) / 4)) != ET_OK) return s;
    et__cu_wrote(cu, dst, (bytes + 3) / 4);
    if ((e = cudaMemcpyAsync(dst, src, bytes, cudaMemcpyHostToDevice, cu->stream)) != cudaSuccess ||
        (e = cudaStreamSynchronize(cu->stream)) != cudaSuccess)
        return et__cu_fail(cu, "cudaMemcpyAsync (upload)", e);
    return ET_OK;
}

static et_status cu_download(void *ctx, void *dst, const void *src, size_t bytes)
{
    et_cuda *cu = (et_cuda *)ctx;
    cudaError_t e;
    et_status s;
    if (!bytes) return ET_OK;
    if ((s = et__cu_check(cu, src, (bytes + 3) / 4)) != ET_OK) return s;
    if ((e = cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToHost, cu->stream)) != cudaSuccess ||
        (e = cudaStreamSynchronize(cu->stream)) != cudaSuccess)
        return et__cu_fail(cu, "cudaMemcpyAsync (download)", e);
    return ET_OK;
}

void et_cuda_backend(et_cuda *cu, et_backend *be)
{
    memset(be, 0, sizeof *be);
    et__cu_fill_ops(cu, be);
    be->name = "cuda";
    be->ctx = cu;
    be->dev_arena = &cu->arena;
    be->upload = cu_upload;
    be->download = cu_download;
}

et_status et_cuda_finish(et_cuda *cu)
{
    cudaError_t e = cudaStreamSynchronize(cu->stream);
    return e == cudaSuccess ? ET_OK : et__cu_fail(cu, "cudaStreamSynchronize", e);
}

const char *et_cuda_last_error(const et_cuda *cu) { return cu ? cu->err : ""; }

const char *et_cuda_name(const et_cuda *cu) { return cu ? cu->name : ""; }

static void stage_free(et__cu_stage *st)
{
    if (st->d) cudaFree(st->d);
    free(st->shadow);
    memset(st, 0, sizeof *st);
}

void et_cuda_close(et_cuda *cu)
{
    if (!cu) return;
    if (cu->stream) cudaStreamSynchronize(cu->stream);
    stage_free(&cu->tok);
    stage_free(&cu->tgt);
    stage_free(&cu->part);
    et__cu_bf16_release(cu);
    if (cu->arena_mem) cudaFree(cu->arena_mem);
    if (cu->blas) cu->bl.destroy(cu->blas);
    if (cu->bl.lib) dlclose(cu->bl.lib);
    if (cu->stream) cudaStreamDestroy(cu->stream);
    free(cu);
}

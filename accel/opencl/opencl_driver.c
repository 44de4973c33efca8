/* opencl_driver.c - the OpenCL driver's device side: finding platforms and devices,
 * opening a context and queue, building the embedded kernels once, the device arena
 * buffer, pointer translation, transfers and error messages.
 *
 * The kernel source is the .cl files of this folder joined into one string at build
 * time (build.mk generates et_opencl_src.h); it is built once per context with the
 * work-group size chosen for the device, and the kernel objects are kept in the handle.
 * PoCL also caches the compiled program on disk, so only the first run on a machine
 * pays for LLVM. Deliberately absent: our own binary cache, several queues.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "et_opencl_impl.h"
#include "et_opencl_src.h" /* generated: static const char et__opencl_src[] */

#define MAX_PLATFORMS 16
#define MAX_DEVICES 32

const char *et__ocl_errstr(cl_int code)
{
    switch (code) {
    case CL_SUCCESS: return "CL_SUCCESS";
    case CL_DEVICE_NOT_FOUND: return "CL_DEVICE_NOT_FOUND";
    case CL_DEVICE_NOT_AVAILABLE: return "CL_DEVICE_NOT_AVAILABLE";
    case CL_COMPILER_NOT_AVAILABLE: return "CL_COMPILER_NOT_AVAILABLE";
    case CL_MEM_OBJECT_ALLOCATION_FAILURE: return "CL_MEM_OBJECT_ALLOCATION_FAILURE";
    case CL_OUT_OF_RESOURCES: return "CL_OUT_OF_RESOURCES";
    case CL_OUT_OF_HOST_MEMORY: return "CL_OUT_OF_HOST_MEMORY";
    case CL_MEM_COPY_OVERLAP: return "CL_MEM_COPY_OVERLAP";
    case CL_BUILD_PROGRAM_FAILURE: return "CL_BUILD_PROGRAM_FAILURE";
    case CL_INVALID_VALUE: return "CL_INVALID_VALUE";
    case CL_INVALID_DEVICE: return "CL_INVALID_DEVICE";
    case CL_INVALID_CONTEXT: return "CL_INVALID_CONTEXT";
    case CL_INVALID_COMMAND_QUEUE: return "CL_INVALID_COMMAND_QUEUE";
    case CL_INVALID_MEM_OBJECT: return "CL_INVALID_MEM_OBJECT";
    case CL_INVALID_BUILD_OPTIONS: return "CL_INVALID_BUILD_OPTIONS";
    case CL_INVALID_PROGRAM_EXECUTABLE: return "CL_INVALID_PROGRAM_EXECUTABLE";
    case CL_INVALID_KERNEL_NAME: return "CL_INVALID_KERNEL_NAME";
    case CL_INVALID_KERNEL_ARGS: return "CL_INVALID_KERNEL_ARGS";
    case CL_INVALID_ARG_INDEX: return "CL_INVALID_ARG_INDEX";
    case CL_INVALID_ARG_SIZE: return "CL_INVALID_ARG_SIZE";
    case CL_INVALID_WORK_GROUP_SIZE: return "CL_INVALID_WORK_GROUP_SIZE";
    case CL_INVALID_WORK_ITEM_SIZE: return "CL_INVALID_WORK_ITEM_SIZE";
    case CL_INVALID_GLOBAL_WORK_SIZE: return "CL_INVALID_GLOBAL_WORK_SIZE";
    case CL_INVALID_BUFFER_SIZE: return "CL_INVALID_BUFFER_SIZE";
    case CL_INVALID_OPERATION: return "CL_INVALID_OPERATION";
    case -1001: return "CL_PLATFORM_NOT_FOUND_KHR";
    default: return "unknown OpenCL error";
    }
}

et_status et__ocl_fail(et_opencl *cl, const char *what, cl_int code)
{
    snprintf(cl->err, sizeof cl->err, "opencl: %s failed: %s (%d)", what, et__ocl_errstr(code),
             (int)code);
    return ET_ERR_DEVICE;
}

et_status et__ocl_off(et_opencl *cl, const void *p, size_t n, cl_ulong *off)
{
    uintptr_t a = (uintptr_t)p, end = ET_OPENCL_VBASE + cl->arena_bytes;
    if (a < ET_OPENCL_VBASE || a > end || (a & 3) || n > (end - a) / 4) {
        snprintf(cl->err, sizeof cl->err, "opencl: pointer %p (%zu elements) is not in the device "
                 "arena [%p, %p)", p, n, (void *)ET_OPENCL_VBASE, (void *)end);
        return ET_ERR_INVALID;
    }
    *off = (cl_ulong)((a - ET_OPENCL_VBASE) / 4);
    return ET_OK;
}

// --- platforms and devices

/* the platforms, or ET_ERR_DEVICE with the reason */
static et_status platforms(cl_platform_id *p, cl_uint *np, et_error *err)
{
    cl_int e = clGetPlatformIDs(MAX_PLATFORMS, p, np);
    if (e == -1001 || (e == CL_SUCCESS && *np == 0))
        return et_error_set(err, ET_ERR_DEVICE, "opencl: no OpenCL platform found (the ICD loader "
                            "found no driver in /etc/OpenCL/vendors; install one, e.g. Debian's "
                            "pocl-opencl-icd)");
    if (e != CL_SUCCESS)
        return et_error_set(err, ET_ERR_DEVICE, "opencl: clGetPlatformIDs failed: %s (%d)",
                            et__ocl_errstr(e), (int)e);
    if (*np > MAX_PLATFORMS) *np = MAX_PLATFORMS;
    return ET_OK;
}

static cl_uint devices_of(cl_platform_id p, cl_device_id *d)
{
    cl_uint n = 0;
    if (clGetDeviceIDs(p, CL_DEVICE_TYPE_ALL, MAX_DEVICES, d, &n) != CL_SUCCESS) return 0;
    return n > MAX_DEVICES ? MAX_DEVICES : n;
}

static void describe(cl_platform_id p, cl_device_id d, int pi, int di, et_accel_device *o)
{
    cl_ulong mem = 0, maxa = 0;
    cl_uint cu = 0;
    cl_device_type ty = 0;
    memset(o, 0, sizeof *o);
    snprintf(o->backend, sizeof o->backend, "opencl");
    snprintf(o->spec, sizeof o->spec, "opencl:%d.%d", pi, di);
    clGetPlatformInfo(p, CL_PLATFORM_NAME, sizeof o->platform - 1, o->platform, NULL);
    clGetDeviceInfo(d, CL_DEVICE_NAME, sizeof o->name - 1, o->name, NULL);
    clGetDeviceInfo(d, CL_DEVICE_VERSION, sizeof o->version - 1, o->version, NULL);
    clGetDeviceInfo(d, CL_DEVICE_GLOBAL_MEM_SIZE, sizeof mem, &mem, NULL);
    clGetDeviceInfo(d, CL_DEVICE_MAX_MEM_ALLOC_SIZE, sizeof maxa, &maxa, NULL);
    clGetDeviceInfo(d, CL_DEVICE_MAX_COMPUTE_UNITS, sizeof cu, &cu, NULL);
    clGetDeviceInfo(d, CL_DEVICE_TYPE, sizeof ty, &ty, NULL);
    o->mem_bytes = mem;
    o->max_alloc = maxa;
    o->units = (int)cu;
    o->is_gpu = (ty & CL_DEVICE_TYPE_GPU) != 0;
}

et_status et_opencl_devices(et_accel_device *out, int max, int *n, et_error *err)
{
    cl_platform_id p[MAX_PLATFORMS];
    cl_device_id d[MAX_DEVICES];
    cl_uint np = 0, nd, i, j;
    et_status s;
    *n = 0;
    if ((s = platforms(p, &np, err)) != ET_OK) return s;
    for (i = 0; i < np; i++) {
        nd = devices_of(p[i], d);
        for (j = 0; j < nd; j++) {
            if (*n < max) describe(p[i], d[j], (int)i, (int)j, &out[*n]);
            (*n)++;
        }
    }
    if (*n == 0)
        return et_error_set(err, ET_ERR_DEVICE, "opencl: %u platform(s) but no device", (unsigned)np);
    return ET_OK;
}

/* Picks (platform, device): the given indices, else the first GPU, else the first device. */
static et_status pick(et_opencl *cl, int pi, int di, et_error *err)
{
    cl_platform_id p[MAX_PLATFORMS];
    cl_device_id d[MAX_DEVICES];
    cl_uint np = 0, nd, i, j;
    int fp = -1, fd = -1;
    et_status s;
    et_accel_device info;
    if ((s = platforms(p, &np, err)) != ET_OK) return s;
    if (pi >= 0) {
        if ((cl_uint)pi >= np || (nd = devices_of(p[pi], d)) == 0 || di < 0 || (cl_uint)di >= nd)
            return et_error_set(err, ET_ERR_DEVICE, "opencl: no device %d.%d (see edgetrain devices)",
                                pi, di);
        fp = pi;
        fd = di;
    } else {
        for (i = 0; i < np && fp < 0; i++) {
            nd = devices_of(p[i], d);
            for (j = 0; j < nd; j++) {
                cl_device_type ty = 0;
                clGetDeviceInfo(d[j], CL_DEVICE_TYPE, sizeof ty, &ty, NULL);
                if (ty & CL_DEVICE_TYPE_GPU) { fp = (int)i; fd = (int)j; break; }
            }
        }
        for (i = 0; i < np && fp < 0; i++)
            if (devices_of(p[i], d) > 0) { fp = (int)i; fd = 0; }
        if (fp < 0)
            return et_error_set(err, ET_ERR_DEVICE, "opencl: %u platform(s) but no device",
                                (unsigned)np);
    }
    devices_of(p[fp], d);
    cl->platform = p[fp];
    cl->device = d[fd];
    describe(cl->platform, cl->device, fp, fd, &info);
    cl->max_alloc = info.max_alloc;
    snprintf(cl->name, sizeof cl->name, "%s %s (%s)", info.spec, info.name, info.platform);
    return ET_OK;
}

// --- program

/* builds with work-group size ls; on failure puts the log's start in err */
static et_status build_with(et_opencl *cl, size_t ls, et_error *err)
{
    const char *src = et__opencl_src;
    char opts[128], log[2048];
    cl_int e;
    int i;
    static const char *const names[K_COUNT] = {
#define ET__OCL_NAME(e, n) n,
        ET_OCL_KERNELS(ET__OCL_NAME)
#undef ET__OCL_NAME
    };
    snprintf(opts, sizeof opts, "-cl-std=CL1.2 -DLS=%zu -DCHUNK=%d", ls, ET_OCL_SUMSQ_CHUNK);
    cl->prog = clCreateProgramWithSource(cl->ctx, 1, &src, NULL, &e);
    if (e != CL_SUCCESS) return et_error_set(err, et__ocl_fail(cl, "clCreateProgramWithSource", e), "%s", cl->err);
    e = clBuildProgram(cl->prog, 1, &cl->device, opts, NULL, NULL);
    if (e != CL_SUCCESS) {
        log[0] = 0;
        clGetProgramBuildInfo(cl->prog, cl->device, CL_PROGRAM_BUILD_LOG, sizeof log - 1, log, NULL);
        log[sizeof log - 1] = 0;
        return et_error_set(err, ET_ERR_DEVICE, "opencl: building the kernels failed: %s (%d): %.400s",
                            et__ocl_errstr(e), (int)e, log);
    }
    for (i = 0; i < K_COUNT; i++) {
        cl->k[i] = clCreateKernel(cl->prog, names[i], &e);
        if (e != CL_SUCCESS)
            return et_error_set(err, ET_ERR_DEVICE, "opencl: kernel %s: %s (%d)", names[i],
                                et__ocl_errstr(e), (int)e);
    }
    cl->ls = ls;
    return ET_OK;
}

static void release_program(et_opencl *cl)
{
    int i;
    for (i = 0; i < K_COUNT; i++)
        if (cl->k[i]) { clReleaseKernel(cl->k[i]); cl->k[i] = NULL; }
    if (cl->prog) { clReleaseProgram(cl->prog); cl->prog = NULL; }
}

et_status et__ocl_build(et_opencl *cl, et_error *err)
{
    size_t maxwg = 1, ls = 64, kwg;
    int i;
    et_status s;
    clGetDeviceInfo(cl->device, CL_DEVICE_MAX_WORK_GROUP_SIZE, sizeof maxwg, &maxwg, NULL);
    while (ls > maxwg) ls /= 2;
    if ((s = build_with(cl, ls, err)) != ET_OK) return s;
    /* a kernel may allow fewer items per group than the device (registers): rebuild once */
    for (i = 0; i < K_COUNT; i++) {
        kwg = ls;
        clGetKernelWorkGroupInfo(cl->k[i], cl->device, CL_KERNEL_WORK_GROUP_SIZE, sizeof kwg, &kwg, NULL);
        while (ls > kwg) ls /= 2;
    }
    if (ls == cl->ls) return ET_OK;
    release_program(cl);
    return build_with(cl, ls, err);
}

// --- open, arena, transfers, close

et_status et_opencl_open(et_opencl **out, int platform, int device, et_error *err)
{
    et_opencl *cl;
    cl_int e;
    cl_device_fp_config fp = 0;
    et_status s;
    if (!out) return et_error_set(err, ET_ERR_INVALID, "et_opencl_open: no handle");
    *out = NULL;
    if (!(cl = calloc(1, sizeof *cl))) return et_error_set(err, ET_ERR_NOMEM, "out of memory");
    if ((s = pick(cl, platform, device, err)) != ET_OK) goto fail;
    cl->ctx = clCreateContext(NULL, 1, &cl->device, NULL, NULL, &e);
    if (e != CL_SUCCESS) { s = et_error_set(err, et__ocl_fail(cl, "clCreateContext", e), "%s", cl->err); goto fail; }
    cl->q = clCreateCommandQueue(cl->ctx, cl->device, 0, &e);
    if (e != CL_SUCCESS) { s = et_error_set(err, et__ocl_fail(cl, "clCreateCommandQueue", e), "%s", cl->err); goto fail; }
    clGetDeviceInfo(cl->device, CL_DEVICE_DOUBLE_FP_CONFIG, sizeof fp, &fp, NULL);
    cl->fp64 = fp != 0;
    if ((s = et__ocl_build(cl, err)) != ET_OK) goto fail;
    et_arena_init_virtual(&cl->arena, (void *)ET_OPENCL_VBASE, 0);
    *out = cl;
    return ET_OK;
fail:
    et_opencl_close(cl);
    return s;
}

et_status et_opencl_reserve(et_opencl *cl, size_t bytes, et_error *err)
{
    cl_int e;
    if (!cl) return et_error_set(err, ET_ERR_INVALID, "et_opencl_reserve: no handle");
    bytes = et_arena_block(bytes ? bytes : 1);
    if (cl->arena_buf) {
        clFinish(cl->q);
        clReleaseMemObject(cl->arena_buf);
        cl->arena_buf = NULL;
    }
    cl->arena_bytes = 0;
    et_arena_init_virtual(&cl->arena, (void *)ET_OPENCL_VBASE, 0);
    if (cl->max_alloc && bytes > cl->max_alloc)
        return et_error_set(err, ET_ERR_NOMEM, "opencl: a device arena of %zu bytes is larger than "
                            "the device's largest buffer (%llu bytes, CL_DEVICE_MAX_MEM_ALLOC_SIZE)",
                            bytes, (unsigned long long)cl->max_alloc);
    cl->arena_buf = clCreateBuffer(cl->ctx, CL_MEM_READ_WRITE, bytes, NULL, &e);
    if (e != CL_SUCCESS)
        return et_error_set(err, e == CL_MEM_OBJECT_ALLOCATION_FAILURE || e == CL_OUT_OF_RESOURCES ||
                                         e == CL_INVALID_BUFFER_SIZE ? ET_ERR_NOMEM : ET_ERR_DEVICE,
                            "opencl: cannot allocate a device arena of %zu bytes: %s (%d)", bytes,
                            et__ocl_errstr(e), (int)e);
    cl->arena_bytes = bytes;
    return et_arena_init_virtual(&cl->arena, (void *)ET_OPENCL_VBASE, bytes);
}

et_status et__ocl_stage_grow(et_opencl *cl, et__ocl_stage *st, size_t bytes)
{
    cl_int e;
    size_t cap;
    if (st->cap >= bytes && st->buf) return ET_OK;
    if (st->ev) { clWaitForEvents(1, &st->ev); clReleaseEvent(st->ev); st->ev = NULL; }
    if (st->buf) clReleaseMemObject(st->buf); /* freed once queued work using it is done */
    st->buf = NULL;
    st->cap = 0;
    st->shadow_n = 0;
    cap = bytes < 4096 ? 4096 : bytes + bytes / 2;
    st->buf = clCreateBuffer(cl->ctx, CL_MEM_READ_WRITE, cap, NULL, &e);
    if (e != CL_SUCCESS) return et__ocl_fail(cl, "clCreateBuffer (staging)", e);
    free(st->shadow);
    if (!(st->shadow = malloc(cap))) return ET_ERR_NOMEM;
    st->cap = cap;
    return ET_OK;
}

et_status et__ocl_stage_put(et_opencl *cl, et__ocl_stage *st, const void *src, size_t bytes)
{
    cl_int e;
    et_status s;
    if (st->buf && st->shadow_n == bytes && !memcmp(st->shadow, src, bytes)) return ET_OK;
    if ((s = et__ocl_stage_grow(cl, st, bytes)) != ET_OK) return s;
    /* the last write from the shadow copy must be done before the copy changes */
    if (st->ev) { clWaitForEvents(1, &st->ev); clReleaseEvent(st->ev); st->ev = NULL; }
    memcpy(st->shadow, src, bytes);
    st->shadow_n = bytes;
    e = clEnqueueWriteBuffer(cl->q, st->buf, CL_FALSE, 0, bytes, st->shadow, 0, NULL, &st->ev);
    if (e != CL_SUCCESS) {
        st->shadow_n = 0;
        return et__ocl_fail(cl, "clEnqueueWriteBuffer (token ids)", e);
    }
    return ET_OK;
}

/* byte offset of a host-visible transfer into the arena */
static et_status byte_off(et_opencl *cl, const void *p, size_t bytes, size_t *off)
{
    uintptr_t a = (uintptr_t)p, end = ET_OPENCL_VBASE + cl->arena_bytes;
    if (a < ET_OPENCL_VBASE || a > end || bytes > end - a) {
        snprintf(cl->err, sizeof cl->err, "opencl: transfer of %zu bytes at %p is outside the "
                 "device arena", bytes, p);
        return ET_ERR_INVALID;
    }
    *off = (size_t)(a - ET_OPENCL_VBASE);
    return ET_OK;
}

static et_status ocl_upload(void *ctx, void *dst, const void *src, size_t bytes)
{
    et_opencl *cl = (et_opencl *)ctx;
    size_t off;
    cl_int e;
    et_status s;
    if (!bytes) return ET_OK;
    if ((s = byte_off(cl, dst, bytes, &off)) != ET_OK) return s;
    e = clEnqueueWriteBuffer(cl->q, cl->arena_buf, CL_TRUE, off, bytes, src, 0, NULL, NULL);
    return e == CL_SUCCESS ? ET_OK : et__ocl_fail(cl, "clEnqueueWriteBuffer (upload)", e);
}

static et_status ocl_download(void *ctx, void *dst, const void *src, size_t bytes)
{
    et_opencl *cl = (et_opencl *)ctx;
    size_t off;
    cl_int e;
    et_status s;
    if (!bytes) return ET_OK;
    if ((s = byte_off(cl, src, bytes, &off)) != ET_OK) return s;
    e = clEnqueueReadBuffer(cl->q, cl->arena_buf, CL_TRUE, off, bytes, dst, 0, NULL, NULL);
    return e == CL_SUCCESS ? ET_OK : et__ocl_fail(cl, "clEnqueueReadBuffer (download)", e);
}

void et_opencl_backend(et_opencl *cl, et_backend *be)
{
    memset(be, 0, sizeof *be);
    et__ocl_fill_ops(cl, be);
    be->name = "opencl";
    be->ctx = cl;
    be->dev_arena = &cl->arena;
    be->upload = ocl_upload;
    be->download = ocl_download;
}

et_status et_opencl_finish(et_opencl *cl)
{
    cl_int e = clFinish(cl->q);
    return e == CL_SUCCESS ? ET_OK : et__ocl_fail(cl, "clFinish", e);
}

const char *et_opencl_last_error(const et_opencl *cl) { return cl ? cl->err : ""; }

const char *et_opencl_name(const et_opencl *cl) { return cl ? cl->name : ""; }

static void stage_free(et__ocl_stage *st)
{
    if (st->ev) clReleaseEvent(st->ev);
    if (st->buf) clReleaseMemObject(st->buf);
    free(st->shadow);
    memset(st, 0, sizeof *st);
}

void et_opencl_close(et_opencl *cl)
{
    if (!cl) return;
    if (cl->q) clFinish(cl->q);
    stage_free(&cl->tok);
    stage_free(&cl->tgt);
    stage_free(&cl->part);
    if (cl->arena_buf) clReleaseMemObject(cl->arena_buf);
    release_program(cl);
    if (cl->ctx) et__ocl_blas_release();
    if (cl->q) clReleaseCommandQueue(cl->q);
    if (cl->ctx) clReleaseContext(cl->ctx);
    free(cl);
}

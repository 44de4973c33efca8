/* et_opencl_impl.h - what the OpenCL driver's files share: the handle, the kernel list,
 * pointer translation and error helpers. Not installed. */
#ifndef ET_OPENCL_IMPL_H
#define ET_OPENCL_IMPL_H

#ifndef CL_TARGET_OPENCL_VERSION
#define CL_TARGET_OPENCL_VERSION 120
#endif
#include <CL/cl.h>
#include "et_arena.h"
#include "et_opencl.h"

/* The kernels of the .cl files, by name; X(enum, name). */
#define ET_OCL_KERNELS(X)                                                                    \
    X(K_BIAS_FILL, "bias_fill") X(K_BIAS_BWD, "bias_bwd")                                     \
    X(K_LN_FWD, "layernorm_fwd") X(K_LN_BWD_ROWS, "layernorm_bwd_rows")                       \
    X(K_LN_BWD_COLS, "layernorm_bwd_cols") X(K_GELU_FWD, "gelu_fwd") X(K_GELU_BWD, "gelu_bwd") \
    X(K_RESIDUAL, "residual_fwd") X(K_ACCUMULATE, "accumulate") X(K_SCALE, "scale")           \
    X(K_ENC_FWD, "encoder_fwd") X(K_ENC_BWD_WTE, "encoder_bwd_wte")                           \
    X(K_ENC_BWD_WPE, "encoder_bwd_wpe") X(K_CE_FWD, "crossentropy_fwd")                       \
    X(K_CE_BWD, "crossentropy_bwd") X(K_ADAMW, "adamw") X(K_SUMSQ, "sumsq")                   \
    X(K_ATT_SCORES, "attention_scores") X(K_ATT_OUT, "attention_out")                         \
    X(K_ATT_BWD_DATT, "attention_bwd_datt") X(K_ATT_BWD_DPRE, "attention_bwd_dpre")           \
    X(K_ATT_BWD_DQ, "attention_bwd_dq") X(K_ATT_BWD_DKV, "attention_bwd_dkv")

#define ET__OCL_ENUM(e, n) e,
enum { ET_OCL_KERNELS(ET__OCL_ENUM) K_COUNT };
#undef ET__OCL_ENUM

/** Elements one sumsq work-group reduces (fixed, so results do not depend on the device). */
#define ET_OCL_SUMSQ_CHUNK 16384

/** A device staging buffer for host data (token ids, partial sums), grown on demand. */
typedef struct {
    cl_mem buf;
    size_t cap;      /* bytes */
    void *shadow;    /* host copy of what was last written (token ids) */
    size_t shadow_n; /* bytes of it that are valid */
    cl_event ev;     /* the pending write from shadow, if any */
} et__ocl_stage;

struct et_opencl {
    cl_platform_id platform;
    cl_device_id device;
    cl_context ctx;
    cl_command_queue q;
    cl_program prog;
    cl_kernel k[K_COUNT];
    size_t ls;          /* work-group size of the reduction kernels (a power of two) */
    int fp64;           /* the device has doubles (sumsq partials in double) */
    cl_mem arena_buf;   /* the device arena */
    size_t arena_bytes;
    et_arena arena;     /* virtual, over [ET_OPENCL_VBASE, + arena_bytes) */
    et__ocl_stage tok, tgt, part;
    cl_ulong max_alloc;
    char name[400];
    char err[600];
};

/** Records "what: OpenCL error NAME (code)" and returns ET_ERR_DEVICE. */
et_status et__ocl_fail(et_opencl *cl, const char *what, cl_int code);

/** Name of an OpenCL error code ("CL_OUT_OF_RESOURCES", ...). */
const char *et__ocl_errstr(cl_int code);

/** Element offset of device pointer @p p holding @p n floats (or ints); ET_ERR_INVALID
 *  with a message when it is not inside the arena. */
et_status et__ocl_off(et_opencl *cl, const void *p, size_t n, cl_ulong *off);

/** Builds the kernels into cl->prog and cl->k (once per context). */
et_status et__ocl_build(et_opencl *cl, et_error *err);

/** Copies @p bytes of host data into staging buffer @p st, skipping the copy when it
 *  holds the same bytes already (token ids reach forward and backward alike). */
et_status et__ocl_stage_put(et_opencl *cl, et__ocl_stage *st, const void *src, size_t bytes);

/** Makes @p st hold at least @p bytes (device only). */
et_status et__ocl_stage_grow(et_opencl *cl, et__ocl_stage *st, size_t bytes);

/** Fills the op members of @p be (opencl_ops.c). */
void et__ocl_fill_ops(et_opencl *cl, et_backend *be);

/** Drops what CLBlast cached for the contexts it saw (called when a context closes). */
void et__ocl_blas_release(void);

#endif /* ET_OPENCL_IMPL_H */

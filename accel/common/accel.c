/* accel.c - backend registry: maps a name to the driver compiled into this build
 * (ET_HAVE_OPENCL, ET_HAVE_CUDA come from the drivers' build.mk), opens it behind the
 * fallback proxy, and lists devices. Deliberately the only file that knows which
 * drivers exist; a new driver adds one entry to the table below.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "et_accel.h"
#include "et_cpu.h"
#ifdef ET_HAVE_OPENCL
#include "et_opencl.h"
#endif
#ifdef ET_HAVE_CUDA
#include "et_cuda.h"
#endif
#include "et_sys_backend.h"

/* One driver, as the registry sees it: every function takes the driver's handle. */
typedef struct {
    const char *name;
    et_status (*open)(void **h, const char *arg, et_error *err);
    void (*backend)(void *h, et_backend *be);
    et_status (*reserve)(void *h, size_t bytes, et_error *err);
    et_status (*sync)(void *ctx);              /* takes the driver table's ctx */
    const char *(*last_error)(const void *h);
    const char *(*name_of)(const void *h);
    void (*close)(void *h);
    et_status (*devices)(et_accel_device *out, int max, int *n, et_error *err);
    et_status (*set_bf16)(void *h, et_error *err); /* NULL: fp32 only */
} driver;

struct et_accel {
    const driver *drv;
    void *h;            /* the driver's handle */
    et_backend drv_be;  /* the driver's table */
    et_fallback fb;     /* the proxy the model sees */
    et_cpu_ctx cpu;     /* "cpu" only */
};

// --- adapters from each driver's typed API to the registry's

#ifdef ET_HAVE_OPENCL
static et_status ocl_open(void **h, const char *arg, et_error *err)
{
    int p = -1, d = -1;
    if (arg && *arg && sscanf(arg, "%d.%d", &p, &d) != 2)
        return et_error_set(err, ET_ERR_INVALID, "opencl device '%s' must be P.D (platform.device, "
                            "see edgetrain devices)", arg);
    return et_opencl_open((et_opencl **)h, p, d, err);
}
static void ocl_backend(void *h, et_backend *be) { et_opencl_backend((et_opencl *)h, be); }
static et_status ocl_reserve(void *h, size_t b, et_error *e) { return et_opencl_reserve((et_opencl *)h, b, e); }
static et_status ocl_sync(void *ctx) { return et_opencl_finish((et_opencl *)ctx); }
static const char *ocl_err(const void *h) { return et_opencl_last_error((const et_opencl *)h); }
static const char *ocl_name(const void *h) { return et_opencl_name((const et_opencl *)h); }
static void ocl_close(void *h) { et_opencl_close((et_opencl *)h); }
#endif

#ifdef ET_HAVE_CUDA
static et_status cu_open(void **h, const char *arg, et_error *err)
{
    int d = -1;
    if (arg && *arg && sscanf(arg, "%d", &d) != 1)
        return et_error_set(err, ET_ERR_INVALID, "cuda device '%s' must be a number", arg);
    return et_cuda_open((et_cuda **)h, d, err);
}
static void cu_backend(void *h, et_backend *be) { et_cuda_backend((et_cuda *)h, be); }
static et_status cu_reserve(void *h, size_t b, et_error *e) { return et_cuda_reserve((et_cuda *)h, b, e); }
static et_status cu_sync(void *ctx) { return et_cuda_finish((et_cuda *)ctx); }
static const char *cu_err(const void *h) { return et_cuda_last_error((const et_cuda *)h); }
static const char *cu_name(const void *h) { return et_cuda_name((const et_cuda *)h); }
static void cu_close(void *h) { et_cuda_close((et_cuda *)h); }
static et_status cu_bf16(void *h, et_error *e) { return et_cuda_set_bf16((et_cuda *)h, 1, 0, e); }
#endif

/* the systolic simulator: host memory, so nothing to reserve or sync; spec
 * "systolic[:RxC[:df[:dtype]]]" as et_sys_spec_parse reads it */
typedef struct {
    et_sys_ctx ctx;
    et_backend be;
    char name[96];
} sys_handle;
static et_status sys_open(void **h, const char *arg, et_error *err)
{
    et_sys_config c;
    sys_handle *s;
    et_status st;
    if ((st = et_sys_spec_parse(arg, &c, err)) != ET_OK) return st;
    if (!(s = calloc(1, sizeof *s))) return et_error_set(err, ET_ERR_NOMEM, "out of memory");
    /* 65536: the widest output a quantized GEMM may have (int8 scales) */
    if ((st = et_sys_backend_init(&s->be, &s->ctx, &c, NULL, 65536, NULL, 0)) != ET_OK) {
        free(s);
        return et_error_set(err, st, "cannot set up the systolic simulator");
    }
    snprintf(s->name, sizeof s->name, "systolic %s", arg && *arg ? arg : "(default array)");
    *h = s;
    return ET_OK;
}
static void sys_backend(void *h, et_backend *be) { *be = ((sys_handle *)h)->be; }
static et_status sys_reserve(void *h, size_t b, et_error *e) { (void)h; (void)b; (void)e; return ET_OK; }
static et_status sys_sync(void *ctx) { (void)ctx; return ET_OK; }
static const char *sys_err(const void *h) { (void)h; return ""; }
static const char *sys_name(const void *h) { return ((const sys_handle *)h)->name; }
static void sys_close(void *h) { free(h); }
static et_status sys_devices(et_accel_device *out, int max, int *n, et_error *err)
{
    (void)err;
    *n = 0;
    if (max < 1 || !out) return ET_OK;
    memset(out, 0, sizeof *out);
    snprintf(out->backend, sizeof out->backend, "systolic");
    snprintf(out->spec, sizeof out->spec, "systolic:16x16:ws:fp32");
    snprintf(out->platform, sizeof out->platform, "edgetrain simulator");
    snprintf(out->name, sizeof out->name, "TPU-like systolic array (simulated)");
    *n = 1;
    return ET_OK;
}

static const driver drivers[] = {
#ifdef ET_HAVE_OPENCL
    {"opencl", ocl_open, ocl_backend, ocl_reserve, ocl_sync, ocl_err, ocl_name, ocl_close,
     et_opencl_devices, NULL},
#endif
#ifdef ET_HAVE_CUDA
    {"cuda", cu_open, cu_backend, cu_reserve, cu_sync, cu_err, cu_name, cu_close, et_cuda_devices,
     cu_bf16},
#endif
    {"systolic", sys_open, sys_backend, sys_reserve, sys_sync, sys_err, sys_name, sys_close, sys_devices,
     NULL},
    {NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL}
};

/* every backend this registry may know of, built or not (for messages) */
static const char *const known[] = {"cpu", "opencl", "cuda", "systolic", NULL};
/* the ones with bf16 mixed precision, built or not: the others refuse "+bf16" in
 * every build with the same message */
static const char *const has_bf16 = "cuda";

const char *et_accel_built(void)
{
    return "cpu"
#ifdef ET_HAVE_OPENCL
           " opencl"
#endif
#ifdef ET_HAVE_CUDA
           " cuda"
#endif
           " systolic";
}

static const driver *find(const char *name, size_t len)
{
    const driver *d;
    for (d = drivers; d->name; d++)
        if (strlen(d->name) == len && !strncmp(d->name, name, len)) return d;
    return NULL;
}

static int is_known(const char *name, size_t len)
{
    int i;
    for (i = 0; known[i]; i++)
        if (strlen(known[i]) == len && !strncmp(known[i], name, len)) return 1;
    return 0;
}

int et_accel_has(const char *name)
{
    if (!name) return 0;
    return !strcmp(name, "cpu") || find(name, strlen(name)) != NULL;
}

static et_status not_built(const char *name, size_t len, et_error *err)
{
    if (!is_known(name, len))
        return et_error_set(err, ET_ERR_INVALID, "unknown backend '%.*s' (this build has: %s)",
                            (int)len, name, et_accel_built());
    return et_error_set(err, ET_ERR_UNSUPPORTED,
                        "backend '%.*s' is not in this build (it has: %s); rebuild with make %s=1",
                        (int)len, name, et_accel_built(), len == 4 ? "CUDA" : "OPENCL");
}

/* "name[:arg][+precision]": the name's length, the arg (copied, NUL-terminated; NULL when
 * absent) and whether the precision is bf16; ET_ERR_INVALID for an unknown precision,
 * ET_ERR_UNSUPPORTED for bf16 on a backend without it */
static et_status split(const char *spec, size_t *len, char *arg, size_t cap, const char **argp,
                       int *bf16, et_error *err)
{
    const char *plus = strrchr(spec, '+'), *end = plus ? plus : spec + strlen(spec);
    const char *colon = memchr(spec, ':', (size_t)(end - spec));
    *len = (size_t)((colon ? colon : end) - spec);
    *bf16 = 0;
    if (plus && !strcmp(plus + 1, "bf16")) *bf16 = 1;
    else if (plus && strcmp(plus + 1, "fp32"))
        return et_error_set(err, ET_ERR_INVALID, "unknown precision '%s' in backend '%s' (fp32 or bf16)",
                            plus + 1, spec);
    if (*bf16 && is_known(spec, *len) && (*len != strlen(has_bf16) || strncmp(spec, has_bf16, *len)))
        return et_error_set(err, ET_ERR_UNSUPPORTED, "backend '%.*s' has no bf16 mixed precision: only "
                            "%s has it (fp32 master weights, bf16 GEMMs; docs/GPU.md); use fp32 on "
                            "'%.*s'", (int)*len, spec, has_bf16, (int)*len, spec);
    *argp = NULL;
    if (colon) {
        if ((size_t)(end - colon - 1) >= cap)
            return et_error_set(err, ET_ERR_INVALID, "backend '%s': device argument too long", spec);
        memcpy(arg, colon + 1, (size_t)(end - colon - 1));
        arg[end - colon - 1] = '\0';
        *argp = arg;
    }
    return ET_OK;
}

et_status et_accel_check(const char *spec, et_error *err)
{
    char arg[128];
    const char *argp;
    size_t len;
    int bf16;
    et_status s;
    if (!spec) return et_error_set(err, ET_ERR_INVALID, "no backend name");
    if ((s = split(spec, &len, arg, sizeof arg, &argp, &bf16, err)) != ET_OK) return s;
    if ((len == 3 && !strncmp(spec, "cpu", 3)) || find(spec, len)) return ET_OK;
    return not_built(spec, len, err);
}

et_status et_accel_devices(const char *backend, et_accel_device *out, int max, int *n,
                           et_error *err)
{
    const driver *d;
    if (!backend || !n || max < 0 || (max > 0 && !out))
        return et_error_set(err, ET_ERR_INVALID, "et_accel_devices: bad argument");
    *n = 0;
    if (!(d = find(backend, strlen(backend)))) return not_built(backend, strlen(backend), err);
    return d->devices(out, max, n, err);
}

static et_status cpu_sync(void *ctx)
{
    ET_UNUSED(ctx);
    return ET_OK;
}

et_status et_accel_open(et_accel **out, const char *spec, const et_threads *th, et_backend *be,
                        et_error *err)
{
    char arg[128];
    const char *argp;
    size_t len;
    int bf16;
    et_accel *a;
    et_status s;
    if (!out || !spec || !be) return et_error_set(err, ET_ERR_INVALID, "et_accel_open: bad argument");
    *out = NULL;
    if ((s = split(spec, &len, arg, sizeof arg, &argp, &bf16, err)) != ET_OK) return s;
    if (!(a = calloc(1, sizeof *a))) return et_error_set(err, ET_ERR_NOMEM, "out of memory");
    if (len == 3 && !strncmp(spec, "cpu", 3)) {
        et_cpu_backend_init(&a->drv_be, &a->cpu, th);
        s = et_fallback_wrap(&a->fb, &a->drv_be, cpu_sync, th, be);
    } else {
        if (!(a->drv = find(spec, len))) {
            free(a);
            return not_built(spec, len, err);
        }
        if ((s = a->drv->open(&a->h, argp, err)) != ET_OK) {
            free(a);
            return s;
        }
        if (bf16 && (s = a->drv->set_bf16 ? a->drv->set_bf16(a->h, err)
                                          : et_error_set(err, ET_ERR_UNSUPPORTED, "backend '%.*s' has no "
                                                         "bf16 mixed precision", (int)len, spec)) != ET_OK) {
            a->drv->close(a->h);
            free(a);
            return s;
        }
        a->drv->backend(a->h, &a->drv_be);
        s = et_fallback_wrap(&a->fb, &a->drv_be, a->drv->sync, th, be);
    }
    if (s != ET_OK) {
        et_accel_close(a);
        return et_error_set(err, s, "cannot set up the backend proxy: %s", et_status_str(s));
    }
    *out = a;
    return ET_OK;
}

et_status et_accel_reserve(et_accel *a, size_t bytes, et_error *err)
{
    if (!a) return et_error_set(err, ET_ERR_INVALID, "et_accel_reserve: no handle");
    if (!a->drv) return ET_OK; /* cpu: host memory */
    return a->drv->reserve(a->h, bytes, err);
}

et_status et_accel_sync(et_accel *a)
{
    if (!a || !a->drv) return ET_OK;
    return a->drv->sync(a->drv_be.ctx);
}

const char *et_accel_last_error(const et_accel *a)
{
    if (!a || !a->drv) return "";
    return a->drv->last_error(a->h);
}

const char *et_accel_name(const et_accel *a)
{
    if (!a) return "";
    return a->drv ? a->drv->name_of(a->h) : "cpu";
}

const et_backend *et_accel_driver(const et_accel *a) { return a ? &a->drv_be : NULL; }

et_fallback *et_accel_proxy(et_accel *a) { return a ? &a->fb : NULL; }

void et_accel_close(et_accel *a)
{
    if (!a) return;
    et_fallback_release(&a->fb);
    if (a->drv && a->h) a->drv->close(a->h);
    free(a);
}

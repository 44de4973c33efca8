/* et_accel.h - device backends by name: which ones this build has, opening one (with
 * the cpu fallback for the ops its driver lacks, et_fallback.h), its device arena, and
 * listing the devices each driver finds.
 *
 * Names: "opencl" (the first GPU, else the first device of any kind), "opencl:P.D"
 * (platform P, device D, as `edgetrain devices` numbers them), "cuda", "cuda:N", and
 * "cpu" (the cpu backend behind the same proxy: for timing and tests; et_runtime uses
 * the cpu backend directly). A suffix picks the precision: "+fp32" (the default) or
 * "+bf16", bf16 mixed precision (fp32 master weights, bf16 GEMM operands, fp32
 * accumulation; docs/GPU.md), which only cuda has: "cuda+bf16", "cuda:1+bf16"; any
 * other backend refuses it with ET_ERR_UNSUPPORTED, in every build. Every failure is a status plus a message in et_error that
 * says what is missing and why (no OpenCL platform, no CUDA device, not in this build).
 */
#ifndef ET_ACCEL_H
#define ET_ACCEL_H

#include <stddef.h>
#include <stdint.h>
#include "et_backend.h"
#include "et_host.h"
#include "et_fallback.h"

/** One device a driver found. */
typedef struct et_accel_device {
    char backend[16];   /**< "opencl" or "cuda" */
    char spec[32];      /**< the name that opens it: "opencl:0.1", "cuda:0" */
    char platform[128]; /**< OpenCL platform name; CUDA: "CUDA <runtime version>" */
    char name[128];     /**< device name */
    char version[128];  /**< OpenCL device version; CUDA: "sm_XY" */
    uint64_t mem_bytes; /**< global memory */
    uint64_t max_alloc; /**< largest single allocation (the device arena's limit) */
    int units;          /**< compute units / multiprocessors */
    int is_gpu;         /**< a GPU (OpenCL device type), always 1 for CUDA */
} et_accel_device;

typedef struct et_accel et_accel;

/** Backends compiled into this build, space-separated: "cpu", "cpu opencl",
 *  "cpu opencl cuda", ... */
const char *et_accel_built(void);

/** Nonzero when backend @p name ("opencl", "cuda", "cpu", no device suffix) is in
 *  this build. */
int et_accel_has(const char *name);

/**
 * Checks a backend name without opening anything: known and built into this build.
 * @return ET_OK; ET_ERR_INVALID (unknown name or precision: the message lists what this
 *         build has) or ET_ERR_UNSUPPORTED (known, not built in; or "+bf16" on a backend
 *         without bf16)
 */
et_status et_accel_check(const char *spec, et_error *err);

/**
 * Lists the devices of one backend.
 * @param[in]  backend "opencl" or "cuda"
 * @param[out] out     up to @p max devices (may be NULL when max is 0)
 * @param[in]  max     capacity of @p out
 * @param[out] n       devices found (may exceed @p max; only max are written)
 * @param[out] err     why there are none (may be NULL)
 * @return ET_OK; ET_ERR_UNSUPPORTED when the backend is not in this build;
 *         ET_ERR_DEVICE when the runtime finds no platform or device
 */
et_status et_accel_devices(const char *backend, et_accel_device *out, int max, int *n,
                           et_error *err);

/**
 * Opens a backend and fills @p be with the table to give the model: the driver's ops,
 * the cpu backend's for the ones it lacks. Its device arena has no memory until
 * et_accel_reserve(); et_gpt_plan_compute() may be called on @p be before that.
 * @param[out] out  the handle (NULL on failure)
 * @param[in]  spec backend name, see the file comment
 * @param[in]  th   threads for cpu work (may be NULL)
 * @param[out] be   backend table; valid while the handle is open
 * @param[out] err  message (may be NULL)
 * @return ET_OK; ET_ERR_INVALID (unknown name), ET_ERR_UNSUPPORTED (not built in: the
 *         message lists what is; "+bf16" on a backend without it, or on a GPU older than
 *         sm_80), ET_ERR_DEVICE (no platform/device, or its runtime
 *         failed), ET_ERR_NOMEM
 */
et_status et_accel_open(et_accel **out, const char *spec, const et_threads *th, et_backend *be,
                        et_error *err);

/**
 * Gives the device arena @p bytes of device memory (replacing any earlier reservation,
 * which invalidates every pointer taken from it).
 * @return ET_OK, ET_ERR_NOMEM (the device has not that much), ET_ERR_DEVICE
 */
et_status et_accel_reserve(et_accel *a, size_t bytes, et_error *err);

/** Waits for all queued device work. */
et_status et_accel_sync(et_accel *a);

/** The driver's message for its last failure ("" if none). */
const char *et_accel_last_error(const et_accel *a);

/** The opened device, e.g. "opencl:0.0 pthread-skylake (Portable Computing Language)". */
const char *et_accel_name(const et_accel *a);

/** The driver's own table (before the fallback proxy), for tests. */
const et_backend *et_accel_driver(const et_accel *a);

/** The proxy state: per-op calls, fallbacks and (with profile set) seconds. */
et_fallback *et_accel_proxy(et_accel *a);

/** Closes the device and frees the handle. NULL is a no-op. */
void et_accel_close(et_accel *a);

#endif /* ET_ACCEL_H */

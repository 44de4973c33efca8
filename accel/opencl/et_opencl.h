/* et_opencl.h - the OpenCL driver: et_backend over one OpenCL device, through the
 * Khronos ICD loader, with GEMMs in CLBlast and every other op an OpenCL C kernel
 * (the .cl files of accel/opencl, embedded at build time, compiled once per context).
 *
 * Device memory is one cl_mem buffer, the device arena. The model's tensor pointers are
 * virtual addresses in [ET_OPENCL_VBASE, ET_OPENCL_VBASE + size): the arena is
 * et_arena_init_virtual() over that range and the driver turns a pointer into (buffer,
 * element offset) for every kernel and CLBlast call. Token and target ids arrive as host
 * ints and are copied into a small staging buffer of their own.
 *
 * Deliberately absent: half precision, several devices at once, sub-buffers (offsets
 * are kernel arguments instead, so no alignment rule of sub-buffers applies).
 */
#ifndef ET_OPENCL_H
#define ET_OPENCL_H

#include "et_accel.h"

/** Start of the virtual address range of the device arena (1 TiB: never a real
 *  allocation's address on the hosts we build for, and aligned to anything). */
#define ET_OPENCL_VBASE ((uintptr_t)0x10000000000ull)

typedef struct et_opencl et_opencl;

/**
 * Lists every device of every OpenCL platform.
 * @return ET_OK; ET_ERR_DEVICE when the ICD loader finds no platform or no device
 *         (the message says which, with the OpenCL error)
 */
et_status et_opencl_devices(et_accel_device *out, int max, int *n, et_error *err);

/**
 * Opens a device: context, in-order queue, and the driver's kernels (built here once).
 * @param[out] out       the handle
 * @param[in]  platform  platform index, or -1 to choose
 * @param[in]  device    device index within it, or -1 to choose (the first GPU of any
 *                       platform, else the first device)
 * @param[out] err       message (may be NULL)
 * @return ET_OK; ET_ERR_DEVICE (no platform/device, or the build failed: the message
 *         holds the build log's first lines); ET_ERR_NOMEM
 */
et_status et_opencl_open(et_opencl **out, int platform, int device, et_error *err);

/** Fills @p be with the driver's ops; be->ctx is @p cl and be->dev_arena its arena. */
void et_opencl_backend(et_opencl *cl, et_backend *be);

/** Creates the device arena buffer of @p bytes (releasing any earlier one). */
et_status et_opencl_reserve(et_opencl *cl, size_t bytes, et_error *err);

/** Waits for all queued work (clFinish). */
et_status et_opencl_finish(et_opencl *cl);

/** Message of the last failure, naming the call and the OpenCL error ("" if none). */
const char *et_opencl_last_error(const et_opencl *cl);

/** "opencl:P.D <device> (<platform>)". */
const char *et_opencl_name(const et_opencl *cl);

/** Releases everything. NULL is a no-op. */
void et_opencl_close(et_opencl *cl);

#endif /* ET_OPENCL_H */

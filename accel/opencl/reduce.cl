/* reduce.cl - work-group reductions the other kernels share, and the conventions.
 *
 * Every kernel takes the device arena M (one buffer) and ulong element offsets into it,
 * so that a tensor is (M, offset): the driver never makes sub-buffers. LS, the
 * work-group size of the reduction kernels, is a power of two set at build time
 * (-DLS=...); every reduction kernel is launched with exactly LS items per group.
 * Sums are trees over the group after each item has summed a strided slice in order:
 * a fixed order for a given LS, so results repeat run to run.
 */
#ifndef LS
#define LS 64
#endif

float wg_sum(__local float *buf, float v)
{
    int l = (int)get_local_id(0), s;
    float r;
    buf[l] = v;
    barrier(CLK_LOCAL_MEM_FENCE);
    for (s = LS / 2; s > 0; s >>= 1) {
        if (l < s) buf[l] += buf[l + s];
        barrier(CLK_LOCAL_MEM_FENCE);
    }
    r = buf[0];
    barrier(CLK_LOCAL_MEM_FENCE); /* buf may be reused right after */
    return r;
}

float wg_max(__local float *buf, float v)
{
    int l = (int)get_local_id(0), s;
    float r;
    buf[l] = v;
    barrier(CLK_LOCAL_MEM_FENCE);
    for (s = LS / 2; s > 0; s >>= 1) {
        if (l < s) buf[l] = fmax(buf[l], buf[l + s]);
        barrier(CLK_LOCAL_MEM_FENCE);
    }
    r = buf[0];
    barrier(CLK_LOCAL_MEM_FENCE);
    return r;
}

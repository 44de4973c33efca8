/* cpu_attention.c - the attention entry points of inference code that keeps the
 * original (out, preatt, att) buffers: forwards to the flash-style kernel in
 * cpu_flash.c, with att's first B*NH*T floats receiving the per-row log-sum-exp
 * (preatt is not touched). Training goes through et_cpu_flash_fwd/bwd directly.
 */
#include "et_cpu_ops.h"

size_t et_cpu_attention_slice(void) { return et_cpu_flash_slice(); }

void et_cpu_attention_fwd(const et_threads *th, float *scratch, size_t slice, float *out,
                          float *preatt, float *att, const float *qkv, int B, int T, int C, int NH)
{
    ET_UNUSED(preatt);
    et_cpu_flash_fwd(th, scratch, slice, out, att, qkv, B, T, C, NH);
}

/* et_cgpt_impl.h - what cgpt.c (the model) and cgpt_build.c (packing) share: the one
 * function that lays out a blob. Not a public interface. */
#ifndef ET_CGPT_IMPL_H
#define ET_CGPT_IMPL_H

#include "et_cgpt.h"

/**
 * Walks the blob's tensors in order, each at a 64-byte aligned offset: with @p blob NULL
 * it only counts (*bytes); otherwise it points @p m's weights (m may be NULL) and @p lin
 * into @p blob: all (layers * ET_CGPT_LIN) linears, or with @p only >= 0 that one linear
 * into lin[0]. Sparse matrices get their format, shape, values and index; rowptr is left
 * NULL. The spec must have passed et_cgpt_spec_check.
 */
void et__cgpt_walk(const et_gpt_config *cfg, et_cgpt_mode mode, const et_clinear_spec *spec,
                   const void *blob, et_cgpt *m, et_clin *lin, int only, size_t *bytes);

#endif /* ET_CGPT_IMPL_H */

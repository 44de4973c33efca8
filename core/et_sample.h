/* et_sample.h - picking the next token from logits: temperature, top-k, seeded. */
#ifndef ET_SAMPLE_H
#define ET_SAMPLE_H

#include "et_conf.h"
#include "et_status.h"
#include "et_rng.h"

/**
 * Samples one token id from @p logits.
 * @param[in]  logits      (V) raw scores
 * @param[in]  V           vocabulary size (> 0)
 * @param[in]  temperature 0 picks the most likely token; > 0 divides the logits
 * @param[in]  top_k       keep the k most likely tokens (0 or >= V keeps all)
 * @param[in]  scratch     (V) floats of caller memory
 * @param[in,out] rng      generator
 * @param[out] out         the token id
 */
et_status et_sample_token(const float *logits, int V, float temperature, int top_k,
                          float *scratch, et_rng *rng, int *out);

#endif /* ET_SAMPLE_H */

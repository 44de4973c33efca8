/* et_rng.h - a small seeded generator (splitmix64 stream) for initialisation, batch
 * sampling and token sampling. State is a plain value the caller owns, so a run is
 * reproducible and a checkpoint can store it. */
#ifndef ET_RNG_H
#define ET_RNG_H

#include "et_conf.h"

typedef struct et_rng {
    uint64_t state;
} et_rng;

/** Seeds the generator; any seed is valid. */
void et_rng_seed(et_rng *r, uint64_t seed);
/** Next 64 random bits. */
uint64_t et_rng_u64(et_rng *r);
/** Uniform integer in [0, n) (n > 0), without modulo bias. */
uint32_t et_rng_below(et_rng *r, uint32_t n);
/** Uniform float in [0, 1). */
float et_rng_uniform(et_rng *r);
/** Standard normal (Marsaglia's polar method). */
float et_rng_normal(et_rng *r);

#endif /* ET_RNG_H */

/* rng.c - splitmix64: tiny state, good statistical quality, and trivially
 * checkpointed. Normals use the polar method, which needs only log and sqrt. */
#include "et_rng.h"
#include "et_math.h"

void et_rng_seed(et_rng *r, uint64_t seed) { r->state = seed ^ 0x9E3779B97F4A7C15ull; }

uint64_t et_rng_u64(et_rng *r)
{
    uint64_t z = (r->state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

uint32_t et_rng_below(et_rng *r, uint32_t n)
{
    /* Lemire's multiply-shift with rejection of the biased low range. */
    uint64_t m = (uint64_t)(uint32_t)(et_rng_u64(r) >> 32) * n;
    uint32_t lo = (uint32_t)m;
    if (lo < n) {
        uint32_t t = (uint32_t)(-n) % n;
        while (lo < t) {
            m = (uint64_t)(uint32_t)(et_rng_u64(r) >> 32) * n;
            lo = (uint32_t)m;
        }
    }
    return (uint32_t)(m >> 32);
}

float et_rng_uniform(et_rng *r) { return (float)(et_rng_u64(r) >> 40) * (1.0f / 16777216.0f); }

float et_rng_normal(et_rng *r)
{
    float u, v, s;
    do {
        u = 2.0f * et_rng_uniform(r) - 1.0f;
        v = 2.0f * et_rng_uniform(r) - 1.0f;
        s = u * u + v * v;
    } while (s >= 1.0f || s == 0.0f);
    return u * et_sqrtf(-2.0f * et_logf(s) / s);
}

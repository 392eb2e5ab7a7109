/*
 * xorshift64*: one cheap per-process generator for jitter, tie-breaking and test loads. Not
 * for secrets. Header-only so that the shared table's tests and benchmark, which do not link
 * common/, use the same one.
 */
#ifndef SCATTER_COMMON_RNG_H
#define SCATTER_COMMON_RNG_H

#include <stdint.h>

/* A zero state would stay zero forever: any seed, zero included, gives a usable state. */
static inline uint64_t rng_seed(uint64_t seed)
{
    return seed ? seed : 0x9E3779B97F4A7C15ULL;
}

static inline uint64_t rng_next(uint64_t *state)
{
    uint64_t x = *state ? *state : rng_seed(0);
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *state = x;
    return x * 0x2545F4914F6CDD1DULL;
}

#endif

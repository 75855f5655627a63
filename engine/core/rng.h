/* Counter-based random numbers (Philox4x32-10): the value at index i of a
 * stream depends only on (seed, stream, i), so any split of the work, on any
 * number of threads, yields the same numbers. */
#ifndef VD_CORE_RNG_H
#define VD_CORE_RNG_H

#include <stdint.h>

/* Four 32-bit random words for counter (index, stream) under `seed`. */
void vd_philox4x32(uint64_t seed, uint64_t stream, uint64_t index, uint32_t out[4]);

/* n values uniform in [lo, hi), element i from counter (first + i). */
void vd_rng_uniform(uint64_t seed, uint64_t stream, uint64_t first, float *out, int64_t n, float lo, float hi);

/* n standard normal values (Box-Muller), element i from counter (first + i). */
void vd_rng_normal(uint64_t seed, uint64_t stream, uint64_t first, float *out, int64_t n);

#endif

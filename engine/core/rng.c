#include "core/rng.h"

#include <math.h>

void vd_philox4x32(uint64_t seed, uint64_t stream, uint64_t index, uint32_t out[4])
{
    uint32_t c0 = (uint32_t)index, c1 = (uint32_t)(index >> 32);
    uint32_t c2 = (uint32_t)stream, c3 = (uint32_t)(stream >> 32);
    uint32_t k0 = (uint32_t)seed, k1 = (uint32_t)(seed >> 32);
    for (int r = 0; r < 10; r++) {
        uint64_t p0 = (uint64_t)0xD2511F53u * c0;
        uint64_t p1 = (uint64_t)0xCD9E8D57u * c2;
        uint32_t n0 = (uint32_t)(p1 >> 32) ^ c1 ^ k0;
        uint32_t n1 = (uint32_t)p1;
        uint32_t n2 = (uint32_t)(p0 >> 32) ^ c3 ^ k1;
        uint32_t n3 = (uint32_t)p0;
        c0 = n0, c1 = n1, c2 = n2, c3 = n3;
        k0 += 0x9E3779B9u;
        k1 += 0xBB67AE85u;
    }
    out[0] = c0, out[1] = c1, out[2] = c2, out[3] = c3;
}

/* 24 random bits → [0, 1); (x + 0.5) * 2^-24 → (0, 1) for the logarithm. */
static float unit_open(uint32_t x) { return ((float)(x >> 8) + 0.5f) * (1.0f / 16777216.0f); }

void vd_rng_uniform(uint64_t seed, uint64_t stream, uint64_t first, float *out, int64_t n, float lo, float hi)
{
    for (int64_t i = 0; i < n; i++) {
        uint32_t w[4];
        vd_philox4x32(seed, stream, first + (uint64_t)i, w);
        out[i] = lo + (hi - lo) * ((float)(w[0] >> 8) * (1.0f / 16777216.0f));
    }
}

void vd_rng_normal(uint64_t seed, uint64_t stream, uint64_t first, float *out, int64_t n)
{
    for (int64_t i = 0; i < n; i++) {
        uint32_t w[4];
        vd_philox4x32(seed, stream, first + (uint64_t)i, w);
        double u1 = unit_open(w[0]), u2 = unit_open(w[1]);
        out[i] = (float)(sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2));
    }
}

/* Counter-based random numbers (engine/core/rng.c): Philox4x32-10 against
 * Random123's published known answers, determinism, independence from how
 * the work is split, and the moments of the distributions. */
#include <math.h>
#include <string.h>

#include "core/rng.h"
#include "test_util.h"

/* Random123 kat_vectors for philox4x32_10: counter {c0, c1, c2, c3} and
 * key {k0, k1}.  Here counter = (index lo, index hi, stream lo, stream hi)
 * and key = (seed lo, seed hi). */
static void test_known_answers(void)
{
    static const struct {
        uint32_t ctr[4], key[2], out[4];
    } kat[] = {
        {{0, 0, 0, 0}, {0, 0}, {0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8}},
        {{0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff},
         {0xffffffff, 0xffffffff},
         {0x408f276d, 0x41c83b0e, 0xa20bc7c6, 0x6d5451fd}},
        {{0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344},
         {0xa4093822, 0x299f31d0},
         {0xd16cfe09, 0x94fdcceb, 0x5001e420, 0x24126ea1}},
    };
    for (size_t i = 0; i < sizeof kat / sizeof kat[0]; i++) {
        uint64_t index = kat[i].ctr[0] | ((uint64_t)kat[i].ctr[1] << 32);
        uint64_t stream = kat[i].ctr[2] | ((uint64_t)kat[i].ctr[3] << 32);
        uint64_t seed = kat[i].key[0] | ((uint64_t)kat[i].key[1] << 32);
        uint32_t out[4];
        vd_philox4x32(seed, stream, index, out);
        CHECKF(memcmp(out, kat[i].out, sizeof out) == 0, "vector %zu: %08x %08x %08x %08x", i, out[0], out[1], out[2],
               out[3]);
    }
}

static void test_determinism_and_splits(void)
{
    enum { N = 10000 };
    float *a = malloc(sizeof(float) * N), *b = malloc(sizeof(float) * N), *c = malloc(sizeof(float) * N);
    CHECK(a && b && c);

    for (int kind = 0; kind < 2; kind++) {
        /* The same call twice. */
        if (kind == 0) {
            vd_rng_normal(1234, 5, 100, a, N);
            vd_rng_normal(1234, 5, 100, b, N);
        } else {
            vd_rng_uniform(1234, 5, 100, a, N, -2.0f, 3.0f);
            vd_rng_uniform(1234, 5, 100, b, N, -2.0f, 3.0f);
        }
        CHECK(memcmp(a, b, sizeof(float) * N) == 0);

        /* Any split into pieces, in any order, gives the same numbers. */
        const int cuts[] = {0, 1, 2, 17, 1000, 1001, 4096, 9999, N};
        for (int k = (int)(sizeof cuts / sizeof cuts[0]) - 2; k >= 0; k--) {
            int64_t lo = cuts[k], n = cuts[k + 1] - cuts[k];
            if (kind == 0)
                vd_rng_normal(1234, 5, 100 + (uint64_t)lo, c + lo, n);
            else
                vd_rng_uniform(1234, 5, 100 + (uint64_t)lo, c + lo, n, -2.0f, 3.0f);
        }
        CHECK(memcmp(a, c, sizeof(float) * N) == 0);

        /* Element i depends on first + i only. */
        if (kind == 0)
            vd_rng_normal(1234, 5, 0, c, N);
        else
            vd_rng_uniform(1234, 5, 0, c, N, -2.0f, 3.0f);
        CHECK(memcmp(a, c + 100, sizeof(float) * (N - 100)) == 0);

        /* Another seed or stream gives other numbers. */
        int same_seed = 0, same_stream = 0;
        if (kind == 0) {
            vd_rng_normal(1235, 5, 100, b, N);
            vd_rng_normal(1234, 6, 100, c, N);
        } else {
            vd_rng_uniform(1235, 5, 100, b, N, -2.0f, 3.0f);
            vd_rng_uniform(1234, 6, 100, c, N, -2.0f, 3.0f);
        }
        for (int i = 0; i < N; i++) {
            same_seed += a[i] == b[i];
            same_stream += a[i] == c[i];
        }
        CHECK(same_seed < 10 && same_stream < 10);
    }
    /* Seeds that differ only in their high word differ too. */
    uint32_t w1[4], w2[4];
    vd_philox4x32(1, 0, 0, w1);
    vd_philox4x32(1 | (1ull << 32), 0, 0, w2);
    CHECK(memcmp(w1, w2, sizeof w1) != 0);
    vd_philox4x32(1, 1ull << 40, 0, w2);
    CHECK(memcmp(w1, w2, sizeof w1) != 0);
    free(a);
    free(b);
    free(c);
}

static void test_normal_moments(void)
{
    enum { N = 1 << 20 };
    float *x = malloc(sizeof(float) * N);
    CHECK(x != NULL);
    vd_rng_normal(42, 0, 0, x, N);
    double s1 = 0, s2 = 0, s3 = 0, s4 = 0;
    int64_t beyond2 = 0, nonfinite = 0;
    for (int i = 0; i < N; i++) {
        double v = x[i];
        if (!isfinite(v)) {
            nonfinite++;
            continue;
        }
        s1 += v;
        s2 += v * v;
        s3 += v * v * v;
        s4 += v * v * v * v;
        beyond2 += fabs(v) > 2.0;
    }
    double mean = s1 / N, var = s2 / N - mean * mean;
    /* Five standard errors: mean 1/sqrt(N), variance sqrt(2/N), third
     * moment sqrt(15/N), fourth moment sqrt(96/N). */
    CHECK(nonfinite == 0);
    CHECKF(fabs(mean) < 5.0 / sqrt(N), "mean %g", mean);
    CHECKF(fabs(var - 1.0) < 5.0 * sqrt(2.0 / N), "variance %g", var);
    CHECKF(fabs(s3 / N) < 5.0 * sqrt(15.0 / N), "third moment %g", s3 / N);
    CHECKF(fabs(s4 / N - 3.0) < 5.0 * sqrt(96.0 / N), "fourth moment %g", s4 / N);
    /* P(|x| > 2) = 0.0455; binomial standard error sqrt(p(1-p)/N). */
    double p2 = (double)beyond2 / N;
    CHECKF(fabs(p2 - 0.0455003) < 5.0 * sqrt(0.0455 * 0.9545 / N), "P(|x| > 2) = %g", p2);

    /* Streams are uncorrelated with each other. */
    float *y = malloc(sizeof(float) * N);
    CHECK(y != NULL);
    vd_rng_normal(42, 1, 0, y, N);
    double sxy = 0;
    for (int i = 0; i < N; i++)
        sxy += (double)x[i] * y[i];
    CHECKF(fabs(sxy / N) < 5.0 / sqrt(N), "correlation between streams %g", sxy / N);
    /* Neighbouring elements too. */
    double lag = 0;
    for (int i = 0; i + 1 < N; i++)
        lag += (double)x[i] * x[i + 1];
    CHECKF(fabs(lag / N) < 5.0 / sqrt(N), "lag-1 correlation %g", lag / N);
    free(x);
    free(y);
}

static void test_uniform(void)
{
    enum { N = 1 << 20, BINS = 64 };
    float *x = malloc(sizeof(float) * N);
    CHECK(x != NULL);
    vd_rng_uniform(7, 3, 0, x, N, -3.0f, 5.0f);
    int64_t count[BINS] = {0};
    int out_of_range = 0;
    double s1 = 0;
    for (int i = 0; i < N; i++) {
        if (!(x[i] >= -3.0f && x[i] < 5.0f))
            out_of_range++;
        s1 += x[i];
        int b = (int)((x[i] + 3.0f) / 8.0f * BINS);
        count[b < 0 ? 0 : (b >= BINS ? BINS - 1 : b)]++;
    }
    CHECK(out_of_range == 0);
    /* Mean 1, standard deviation 8/sqrt(12). */
    CHECKF(fabs(s1 / N - 1.0) < 5.0 * (8.0 / sqrt(12.0)) / sqrt(N), "uniform mean %g", s1 / N);
    /* Chi-square with 63 degrees of freedom: mean 63, sd 11.2; 130 is p ~ 1e-6. */
    double chi2 = 0, expect = (double)N / BINS;
    for (int b = 0; b < BINS; b++)
        chi2 += (count[b] - expect) * (count[b] - expect) / expect;
    CHECKF(chi2 < 130.0, "chi-square %g over %d bins", chi2, BINS);

    /* [0, 1) never reaches 1; a degenerate range gives its one value. */
    vd_rng_uniform(8, 0, 0, x, N, 0.0f, 1.0f);
    float mx = 0, mn = 1;
    for (int i = 0; i < N; i++) {
        mx = fmaxf(mx, x[i]);
        mn = fminf(mn, x[i]);
    }
    CHECK(mx < 1.0f && mn >= 0.0f && mx > 0.999f && mn < 0.001f);
    vd_rng_uniform(9, 0, 0, x, 100, 2.5f, 2.5f);
    for (int i = 0; i < 100; i++)
        CHECK(x[i] == 2.5f);
    vd_rng_uniform(9, 0, 0, x, 0, 0.0f, 1.0f); /* n = 0: nothing */
    free(x);
}

int main(void)
{
    test_known_answers();
    test_determinism_and_splits();
    test_normal_moments();
    test_uniform();
    return test_finish("test_rng");
}

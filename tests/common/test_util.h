/* Small helpers shared by the C tests: checks that report file and line,
 * relative L2 error, random data.  A test's main returns test_finish(). */
#ifndef VD_TEST_UTIL_H
#define VD_TEST_UTIL_H

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "core/rng.h"

static int test_failures;

#define CHECK(cond)                                                                 \
    do {                                                                            \
        if (!(cond)) {                                                              \
            fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond); \
            test_failures++;                                                        \
        }                                                                           \
    } while (0)

#define CHECKF(cond, ...)                                                       \
    do {                                                                        \
        if (!(cond)) {                                                          \
            fprintf(stderr, "%s:%d: CHECK failed: %s: ", __FILE__, __LINE__, #cond); \
            fprintf(stderr, __VA_ARGS__);                                       \
            fprintf(stderr, "\n");                                              \
            test_failures++;                                                    \
        }                                                                       \
    } while (0)

/* The call must succeed; on failure print the engine's message. */
#define CHECK_OK(expr)                                                                     \
    do {                                                                                   \
        vd_status s_ = (expr);                                                             \
        if (s_ != VD_OK) {                                                                 \
            fprintf(stderr, "%s:%d: %s failed: %s: %s\n", __FILE__, __LINE__, #expr,       \
                    vd_status_name(s_), vd_last_error());                                  \
            test_failures++;                                                               \
        }                                                                                  \
    } while (0)

/* The call must fail with `status` and leave a non-empty message. */
#define CHECK_FAILS(expr, status)                                                          \
    do {                                                                                   \
        vd_clear_error();                                                                  \
        vd_status s_ = (expr);                                                             \
        if (s_ != (status) || vd_last_error()[0] == '\0') {                                \
            fprintf(stderr, "%s:%d: %s: expected %s, got %s (\"%s\")\n", __FILE__, __LINE__, #expr, \
                    vd_status_name(status), vd_status_name(s_), vd_last_error());          \
            test_failures++;                                                               \
        }                                                                                  \
    } while (0)

static inline int test_finish(const char *name)
{
    if (test_failures)
        fprintf(stderr, "%s: %d check(s) failed\n", name, test_failures);
    else
        printf("%s: all checks passed\n", name);
    return test_failures ? 1 : 0;
}

/* ‖a − b‖₂ / ‖b‖₂ (b is the reference); 0 when both are zero. */
static inline double rel_l2(const float *a, const float *b, int64_t n)
{
    double num = 0, den = 0;
    for (int64_t i = 0; i < n; i++) {
        double d = (double)a[i] - (double)b[i];
        num += d * d;
        den += (double)b[i] * (double)b[i];
    }
    if (den == 0)
        return num == 0 ? 0 : INFINITY;
    return sqrt(num / den);
}

/* Uniform random values in [lo, hi), deterministic for a seed. */
static inline float *random_floats(uint64_t seed, int64_t n, float lo, float hi)
{
    float *p = malloc((size_t)(n > 0 ? n : 1) * sizeof *p);
    if (!p) {
        fprintf(stderr, "out of memory\n");
        exit(1);
    }
    vd_rng_uniform(seed, 0, 0, p, n, lo, hi);
    return p;
}

/* Directory of test data (tests/data), from the build. */
#ifndef VD_TEST_DATA_DIR
#define VD_TEST_DATA_DIR "tests/data"
#endif

#endif

/* Helpers for the backend tests: device tensors from host arrays and back. */
#ifndef VD_TEST_BACKEND_TEST_H
#define VD_TEST_BACKEND_TEST_H

#include "backend/backend.h"
#include "test_util.h"

static inline vd_backend *open_cpu(int threads)
{
    vd_backend_options opt = {.threads = threads};
    vd_backend *be = NULL;
    vd_status s = vd_backend_open("cpu", &opt, &be);
    if (s != VD_OK) {
        fprintf(stderr, "cannot open the CPU backend: %s\n", vd_last_error());
        exit(1);
    }
    return be;
}

/* A device tensor holding `data` (host bytes of the dtype). */
static inline vd_tensor dev_tensor(vd_backend *be, vd_dtype dtype, int ndim, const int64_t *shape, const void *data)
{
    vd_tensor t;
    vd_status s = vd_tensor_alloc(be, dtype, ndim, shape, &t);
    if (s == VD_OK && data)
        s = vd_tensor_upload(be, &t, data, vd_tensor_nbytes(&t));
    if (s != VD_OK) {
        fprintf(stderr, "dev_tensor: %s\n", vd_last_error());
        exit(1);
    }
    return t;
}

/* A device f32 tensor from host floats. */
static inline vd_tensor dev_f32(vd_backend *be, int ndim, const int64_t *shape, const float *data)
{
    return dev_tensor(be, VD_F32, ndim, shape, data);
}

/* A device tensor of `dtype` holding `values` converted with
 * vd_dtype_from_f32; *dequant (if not NULL) receives the stored values
 * decoded back to f32 (scale not applied). */
static inline vd_tensor dev_converted(vd_backend *be, vd_dtype dtype, int ndim, const int64_t *shape,
                                      const float *values, float **dequant)
{
    vd_tensor probe;
    if (vd_tensor_init(&probe, dtype, ndim, shape, NULL) != VD_OK) {
        fprintf(stderr, "dev_converted: %s\n", vd_last_error());
        exit(1);
    }
    int64_t n = vd_tensor_nelem(&probe);
    size_t bytes = vd_tensor_nbytes(&probe);
    void *raw = malloc(bytes ? bytes : 1);
    if (!raw || vd_dtype_from_f32(dtype, values, raw, n) != VD_OK) {
        fprintf(stderr, "dev_converted: %s\n", vd_last_error());
        exit(1);
    }
    if (dequant) {
        *dequant = malloc((size_t)(n ? n : 1) * sizeof(float));
        if (!*dequant || vd_dtype_to_f32(dtype, raw, *dequant, n) != VD_OK) {
            fprintf(stderr, "dev_converted: %s\n", vd_last_error());
            exit(1);
        }
    }
    vd_tensor t = dev_tensor(be, dtype, ndim, shape, raw);
    free(raw);
    return t;
}

/* The f32 contents of a contiguous device tensor (malloc'd). */
static inline float *host_f32(vd_backend *be, const vd_tensor *t)
{
    int64_t n = vd_tensor_nelem(t);
    float *p = malloc((size_t)(n ? n : 1) * sizeof *p);
    if (!p || vd_tensor_download(be, t, p, (size_t)n * sizeof *p) != VD_OK) {
        fprintf(stderr, "host_f32: %s\n", vd_last_error());
        exit(1);
    }
    return p;
}

/* ‖got − ref‖₂ / ‖ref‖₂ against a double reference. */
static inline double rel_l2_ref(const float *got, const double *ref, int64_t n)
{
    double num = 0, den = 0;
    for (int64_t i = 0; i < n; i++) {
        double d = (double)got[i] - ref[i];
        num += d * d;
        den += ref[i] * ref[i];
    }
    if (den == 0)
        return num == 0 ? 0 : INFINITY;
    return sqrt(num / den);
}

/* The bound every op is held to against its double-precision reference. */
#define REL_L2_BOUND 1e-5

/* Compare a device result to a double-precision reference. */
#define CHECK_CLOSE(be, t, ref, what)                                                          \
    do {                                                                                       \
        float *got_ = host_f32((be), (t));                                                     \
        double e_ = rel_l2_ref(got_, (ref), vd_tensor_nelem(t));                               \
        CHECKF(e_ <= REL_L2_BOUND, "%s: relative L2 error %.3g > %.0e", (what), e_, REL_L2_BOUND); \
        free(got_);                                                                            \
    } while (0)

#endif

/* Getting a checkpoint's tensors onto a backend for a model.
 *
 * GEMM and convolution weights keep their storage dtype (the backend
 * dequantises them where it computes); on the CPU they are read in place
 * from the mapped file, elsewhere they are copied to the device.  Small
 * parameters (biases, norms, modulation) become f32 tensors of the shape
 * the model wants (checkpoints differ in how they shape them: [D], [1, D],
 * [1, 6, D]).  Release every loaded tensor with vd_tensor_release. */
#ifndef VD_MODELS_MODEL_WEIGHTS_H
#define VD_MODELS_MODEL_WEIGHTS_H

#include "backend/backend.h"
#include "io/weights.h"

/* A weight in its storage dtype, on `be`. */
vd_status vd_load_weight(vd_backend *be, const vd_weights *w, const char *name, vd_tensor *out);

/* A parameter as f32 with the given shape (its element count must match). */
vd_status vd_load_param_f32(vd_backend *be, const vd_weights *w, const char *name, int ndim, const int64_t *shape,
                            vd_tensor *out);

/* The same for a name built with printf-style arguments. */
vd_status vd_load_weightf(vd_backend *be, const vd_weights *w, vd_tensor *out, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
vd_status vd_load_vecf(vd_backend *be, const vd_weights *w, int64_t n, vd_tensor *out, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

/* A new f32 device tensor from host values. */
vd_status vd_upload_f32(vd_backend *be, const float *host, int ndim, const int64_t *shape, vd_tensor *out);

#endif

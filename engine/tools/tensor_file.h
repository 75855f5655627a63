/* Reading and writing the small tensor files of the command-line contract
 * (`vdiff dit --input IN --output OUT`, ...): safetensors with named f32
 * (or i64/f64/i32) tensors. */
#ifndef VD_TOOLS_TENSOR_FILE_H
#define VD_TOOLS_TENSOR_FILE_H

#include <stdint.h>

#include "io/weights.h"

/* Read tensor `name` of `w` as f32 (any float dtype is converted).
 * ndim must match unless it is 0; the shape is returned in shape[5]. */
vd_status vd_read_f32(const vd_weights *w, const char *name, int ndim, int64_t shape[5], float **out);

typedef struct vd_named_tensor {
    const char *name;
    vd_dtype dtype;
    int ndim;
    int64_t shape[5];
    const void *data;
} vd_named_tensor;

/* Write the tensors to a safetensors file (atomically, via PATH.part). */
vd_status vd_write_tensors(const char *path, const vd_named_tensor *t, int count);

#endif

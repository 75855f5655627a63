/* Tensor descriptors: a dtype, a shape of up to 5 dimensions (outermost
 * first, as PyTorch and safetensors write it), strides, and a pointer into
 * memory owned by someone else (a backend buffer or a mapped file).
 *
 * Descriptors are plain values: copying one makes a view of the same data.
 * Block-quantized tensors must be contiguous and their innermost dimension a
 * multiple of the block size. */
#ifndef VD_CORE_TENSOR_H
#define VD_CORE_TENSOR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/dtype.h"

#define VD_MAX_DIMS 5

typedef struct vd_buffer vd_buffer;   /* backend memory, see backend/backend.h */

typedef struct vd_tensor {
    vd_dtype dtype;
    int ndim;
    int64_t shape[VD_MAX_DIMS];  /* shape[0] outermost */
    int64_t stride[VD_MAX_DIMS]; /* in elements */
    void *data;                  /* first element, in its device's address space */
    vd_buffer *owner;            /* released by vd_tensor_release(); NULL for views */
    float scale;                 /* dequantisation multiplier (fp8 "scaled"); 1 otherwise */
    const char *name;            /* for messages; may be NULL */
} vd_tensor;

/* Describe a contiguous tensor over `data` (no allocation).  Fails if ndim
 * is outside 0..5, a dimension is negative, or the byte size overflows. */
vd_status vd_tensor_init(vd_tensor *t, vd_dtype dtype, int ndim, const int64_t *shape, void *data);

int64_t vd_tensor_nelem(const vd_tensor *t);

/* Bytes of a contiguous tensor of this dtype and shape. */
size_t vd_tensor_nbytes(const vd_tensor *t);

bool vd_tensor_is_contiguous(const vd_tensor *t);

bool vd_tensor_same_shape(const vd_tensor *a, const vd_tensor *b);

/* "[16, 21, 60, 104]" into buf; returns buf. */
const char *vd_shape_str(const vd_tensor *t, char *buf, size_t size);

/* Views (same data, no copy).  Each returns a failure with a message
 * rather than building an invalid descriptor. */
vd_status vd_tensor_reshape(const vd_tensor *t, int ndim, const int64_t *shape, vd_tensor *out);
vd_status vd_tensor_permute(const vd_tensor *t, const int *axes, vd_tensor *out);
/* Elements [begin, end) of dimension `dim`. */
vd_status vd_tensor_slice(const vd_tensor *t, int dim, int64_t begin, int64_t end, vd_tensor *out);

/* Host-side helpers for f32 tensors in host memory (tests, tools). */
float *vd_tensor_f32(const vd_tensor *t); /* data as float*, NULL unless f32 */

#endif

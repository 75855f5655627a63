/* Strided copies (with conversion of any plain dtype to f32) and strided
 * fills.  C ABI, called only from engine/backend/cuda; each enqueues on
 * `stream` and returns the cudaError_t of the launch as an int. */
#ifndef VD_KERNELS_COPY_H
#define VD_KERNELS_COPY_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* A walk over `ndim` (1..5) dimensions, outermost first; strides are in
 * elements, [0] for the source (or the filled tensor), [1] for the
 * destination. */
typedef struct vd_cuda_walk {
    int ndim;
    int64_t shape[5];
    int64_t stride[2][5];
} vd_cuda_walk;

/* dst = src over the walk.  convert = 0: elements of `elem_bytes` (1, 2, 4
 * or 8) are copied as they are.  convert = 1: src elements of plain dtype
 * `src_dtype` become f32 · scale in dst. */
int vd_cuda_copy_strided(const vd_cuda_walk *walk, int convert, int src_dtype, int elem_bytes, float scale,
                         const void *src, void *dst, void *stream);

/* Every element of the walk (stride[0]) of the f32 tensor t = value. */
int vd_cuda_fill_strided(const vd_cuda_walk *walk, float *t, float value, void *stream);

#ifdef __cplusplus
}
#endif
#endif

/* Wan 3-D RoPE (backend.h vd_op_rope3d).  C ABI, called only from
 * engine/backend/cuda; enqueues on `stream` and returns the cudaError_t of
 * the launch as an int. */
#ifndef VD_KERNELS_ROPE_H
#define VD_KERNELS_ROPE_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Doubles of scratch the angle tables need. */
int64_t vd_cuda_rope3d_table_size(int64_t d, int64_t frames, int64_t height, int64_t width);

/* x, out [M, H, d] f32 (out may equal x); `table` is device scratch of
 * vd_cuda_rope3d_table_size doubles.  Builds cos/sin tables of p·ω in double
 * (as the CPU backend does), then rotates each pair in double and rounds to
 * f32 once. */
int vd_cuda_rope3d(const float *x, float *out, int64_t M, int64_t H, int64_t d, int64_t frames, int64_t height,
                   int64_t width, double theta, double *table, void *stream);

#ifdef __cplusplus
}
#endif
#endif

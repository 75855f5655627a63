/* Nearest 2x upsampling of the last two dimensions (the VAE's Resample).
 * C ABI, called only from engine/backend/cuda; returns the cudaError_t of
 * the launch as an int. */
#ifndef VD_KERNELS_UPSAMPLE_H
#define VD_KERNELS_UPSAMPLE_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* x [planes, H, W] → out [planes, 2H, 2W], out[p, y, x] = x[p, y/2, x/2]. */
int vd_cuda_upsample2x_f32(const float *x, float *out, int64_t planes, int64_t H, int64_t W, void *stream);

#ifdef __cplusplus
}
#endif
#endif

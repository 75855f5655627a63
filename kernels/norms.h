/* Normalisations: LayerNorm with modulation and RMSNorm over rows (one
 * block per row, fp32 statistics), and the VAE's RMS norm over the channel
 * axis (outermost).  C ABI, called only from engine/backend/cuda; each
 * enqueues on `stream` and returns the cudaError_t of the launch as an int.
 * All pointers are f32 device arrays; out may equal x. */
#ifndef VD_KERNELS_NORMS_H
#define VD_KERNELS_NORMS_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* out[r, c] = (((x[r, c] − mean_r) · rstd_r · weight[c] + bias[c]) · (1 + scale[r / scale_group, c]))
 *             + shift[r / shift_group, c]
 * for r < M rows of D; weight, bias, shift, scale may be NULL. */
int vd_cuda_layernorm_modulate(const float *x, float *out, int64_t M, int64_t D, float eps, const float *weight,
                               const float *bias, const float *shift, int64_t shift_group, const float *scale,
                               int64_t scale_group, void *stream);

/* out[r, c] = x[r, c] · rsqrt(mean_c(x[r, :]²) + eps) · weight[c] (weight may be NULL). */
int vd_cuda_rmsnorm(const float *x, float *out, int64_t M, int64_t D, float eps, const float *weight, void *stream);

/* x [C, P]: out[c, p] = x[c, p] · √C / max(‖x[:, p]‖₂, 1e-12) · gamma[c]. */
int vd_cuda_channel_rmsnorm(const float *x, float *out, int64_t C, int64_t P, const float *gamma, void *stream);

#ifdef __cplusplus
}
#endif
#endif

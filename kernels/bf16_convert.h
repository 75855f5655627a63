/* bf16 → f32 conversion on the GPU (the way back from bf16 scratch; the way
 * there is vd_cuda_f32_to_bf16 in dequant.h).  C ABI, called only from
 * engine/backend/cuda; enqueues on `stream` and returns the cudaError_t of
 * the launch as an int (0 = success). */
#ifndef VD_KERNELS_BF16_CONVERT_H
#define VD_KERNELS_BF16_CONVERT_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* dst[i] = f32(src[i]) (exact), i < n; src holds n bf16 values. */
int vd_cuda_bf16_to_f32(const void *src, float *dst, int64_t n, void *stream);

#ifdef __cplusplus
}
#endif
#endif

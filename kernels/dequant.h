/* Launchers that decode stored tensors (any dtype of kernels/dtypes.h, plain
 * or GGUF blocks) on the GPU, with the formulas of engine/core/quant.c.
 * C ABI, called only from engine/backend/cuda; each enqueues on `stream`
 * and returns the cudaError_t of the launch as an int (0 = success). */
#ifndef VD_KERNELS_DEQUANT_H
#define VD_KERNELS_DEQUANT_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Output element types of vd_cuda_dequant_rows. */
enum { VD_CUDA_OUT_F32 = 0, VD_CUDA_OUT_BF16 = 1 };

/* dst[r, c] = decode(src row R, element c) · scale for r < rows, c < cols,
 * where R = ids[r] when ids (device i32) is given, else row0 + r.  Source
 * rows are `row_bytes` apart; cols is a multiple of the dtype's block size.
 * dst is f32 or bf16 (out_type), rows `cols` apart. */
int vd_cuda_dequant_rows(int dtype, const void *src, int64_t row_bytes, const int32_t *ids, int64_t row0,
                         int64_t rows, int64_t cols, float scale, int out_type, void *dst, void *stream);

/* dst[i] = bf16(src[i]) (round to nearest even), i < n. */
int vd_cuda_f32_to_bf16(const float *src, void *dst, int64_t n, void *stream);

/* dst[i] = f32(src[i]) (exact), i < n; src holds n bf16 values. */
int vd_cuda_bf16_to_f32(const void *src, float *dst, int64_t n, void *stream);

#ifdef __cplusplus
}
#endif
#endif

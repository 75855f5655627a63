/* Launchers for the elementwise CUDA kernels (C ABI, called only from
 * engine/backend/cuda).  Every launcher enqueues on `stream` and returns the
 * cudaError_t of the launch as an int (0 = success). */
#ifndef VD_KERNELS_ELEMENTWISE_H
#define VD_KERNELS_ELEMENTWISE_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* op: 0 SiLU, 1 GELU (tanh), 2 GELU (erf) — the vd_unary_op values. */
int vd_cuda_unary_f32(int op, const float *x, float *y, int64_t n, void *stream);

/* out[i] = a[i] (+|·) b[(i / D) / (M/R) * D + i % D]: the row broadcast of
 * backend.h with M = n / D rows in a and R = nb / D rows in b.
 * op: 0 add, 1 mul. */
int vd_cuda_binary_f32(int op, const float *a, const float *b, float *out, int64_t n, int64_t nb, int64_t d,
                       void *stream);

/* out = x + y · gate (gate row-broadcast as above). */
int vd_cuda_add_gated_f32(const float *x, const float *y, const float *gate, float *out, int64_t n, int64_t ngate,
                          int64_t d, void *stream);

int vd_cuda_fill_f32(float *x, float value, int64_t n, void *stream);

/* y[r·ld + c] += bias[c] for r < rows, c < cols (a GEMM tile's bias). */
int vd_cuda_add_bias_rows_f32(float *y, const float *bias, int64_t rows, int64_t cols, int64_t ld, void *stream);

#ifdef __cplusplus
}
#endif
#endif

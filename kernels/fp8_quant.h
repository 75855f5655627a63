/* Launchers that quantise f32 activations to fp8 e4m3 for the fp8 GEMMs of
 * engine/backend/cuda/cuda_matmul_fp8.c.  The scales are computed on the
 * GPU (no host synchronisation): x ≈ q · scale with scale = amax / 448, so
 * the largest magnitude maps onto e4m3's largest finite value; values are
 * rounded to nearest even and saturate at ±448 (NaN stays NaN).  An
 * all-zero (or denormal-only) row or tensor gets scale 1.
 * C ABI, called only from engine/backend/cuda; each enqueues on `stream`
 * and returns the cudaError_t of the launch as an int (0 = success). */
#ifndef VD_KERNELS_FP8_QUANT_H
#define VD_KERNELS_FP8_QUANT_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Per row: for r < rows, scales[r] = amax(|x[r, :]|) / 448 and
 * q[r, c] = e4m3(x[r, c] / scales[r]).  x and q rows are K elements
 * apart (q holds bytes). */
int vd_cuda_quant_e4m3_rows(const float *x, int64_t rows, int64_t K, uint8_t *q, float *scales, void *stream);

/* Per tensor: *scale = amax(|x|) / 448 over all n values and
 * q[i] = e4m3(x[i] / *scale).  amax is one device float of scratch. */
int vd_cuda_quant_e4m3_tensor(const float *x, int64_t n, uint8_t *q, float *scale, float *amax, void *stream);

#ifdef __cplusplus
}
#endif
#endif

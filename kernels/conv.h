/* The column gather of the 3-D convolution (im2col); the GEMM is cuBLAS.
 * C ABI, called only from engine/backend/cuda; returns the cudaError_t of
 * the launch as an int. */
#ifndef VD_KERNELS_CONV_H
#define VD_KERNELS_CONV_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct vd_cuda_conv3d_geom {
    int64_t Cin, T, H, W;    /* input [Cin, T, H, W] */
    int64_t kt, kh, kw;      /* kernel */
    int64_t st, sh, sw;      /* stride */
    int64_t pt, ph, pw;      /* leading padding (front, top, left) */
    int64_t To, Ho, Wo;      /* output grid */
} vd_cuda_conv3d_geom;

/* col[r, j] for r < Cin·kt·kh·kw (r = ((ci·kt + dt)·kh + dy)·kw + dx) and
 * j < nq output positions starting at flat position q0 (q = (t·Ho + y)·Wo + x):
 * x[ci, t·st + dt − pt, y·sh + dy − ph, x·sw + dx − pw], zero outside the
 * input.  col is row-major [patch, nq]. */
int vd_cuda_im2col3d(const vd_cuda_conv3d_geom *g, const float *x, float *col, int64_t q0, int64_t nq, void *stream);

#ifdef __cplusplus
}
#endif
#endif

/* 3-D convolution through cuDNN's legacy convolution API in strict fp32
 * (cuda_conv3d_cudnn.c).  Built only when meson finds cuDNN
 * (VD_HAVE_CUDNN); cuda_conv3d.c decides when to call it. */
#ifndef VD_BACKEND_CUDA_CONV3D_CUDNN_H
#define VD_BACKEND_CUDA_CONV3D_CUDNN_H

#include <stdbool.h>
#include <stddef.h>

#include "backend/cuda/cuda_internal.h"

/* out = alpha · conv(x, wf) with vd_op_conv3d's stride and padding
 * {t_front, t_back, top, bottom, left, right}; the bias is not added.
 * wf is w's weight [Cout, Cin, kt, kh, kw] as f32 on the device (w gives
 * the shape and the name); x, out and wf should be 16-byte aligned.
 * `shapes` describes the call for messages.
 *   VD_OK, *ran true:   enqueued on the backend's stream.
 *   VD_OK, *ran false:  cuDNN cannot run it (unsupported shape, no
 *                       algorithm within the workspace bound, no cuDNN
 *                       handle...); nothing was written to out and `why`
 *                       says why.  Shapes are remembered as unsupported.
 *   otherwise:          cuDNN failed while running it (the error names
 *                       cuDNN, conv3d and the shapes). */
vd_status cuda_conv3d_cudnn(vd_backend *be, const vd_tensor *x, const vd_tensor *w, const float *wf, float alpha,
                            const int stride[3], const int pad[6], vd_tensor *out, const char *shapes, bool *ran,
                            char *why, size_t why_size);

#endif

/* Attention through cuDNN's fused flash-attention (SDPA) graph: the CUDA
 * backend's preferred attention path where cuDNN is built in (VD_HAVE_CUDNN)
 * and can run the shapes; cuda_attention.c falls back to its own kernels
 * otherwise.  Built only with cuDNN (cuda_attention_cudnn.c). */
#ifndef VD_BACKEND_CUDA_ATTENTION_CUDNN_H
#define VD_BACKEND_CUDA_ATTENTION_CUDNN_H

#include <stdbool.h>

#include "backend/backend.h"

/* Whether cuDNN can run on be's GPU at all: a cuDNN 9 library that loads,
 * a handle for the device, compute capability 8.0 or newer.  If not, *why
 * (when why is not NULL) says why.  Sets no error message. */
bool cuda_attention_cudnn_available(vd_backend *be, const char **why);

/* out = softmax(q·kᵀ·scale)·v for f32 device tensors q [B, Lq, H, d],
 * k [B, Lk, H, d], v [B, Lk, H, d], out [B, Lq, H, d], d ∈ {64, 128} (no
 * bias, no kv_len: cuda_attention.c sends only such calls):
 * q, k and v are converted to bf16 scratch, cuDNN runs the graph, the bf16
 * result is converted into out.  VD_ERR_UNSUPPORTED with *why set (the
 * thread's message is not meant for the user) when cuDNN cannot run the
 * call and another kernel should: the
 * GPU or library (see above), no engine for the shapes (remembered, not
 * retried), or scratch that does not fit.  Any other failure is an error
 * with a message naming cuDNN, the call and the shapes. */
vd_status cuda_attention_cudnn(vd_backend *be, const vd_tensor *q, const vd_tensor *k, const vd_tensor *v,
                               float scale, vd_tensor *out, const char **why);

/* Entries (plans and remembered failures) in the plan cache of be's device;
 * at most CUDA_CUDNN_PLAN_CACHE.  For tests. */
enum { CUDA_CUDNN_PLAN_CACHE = 32 };
int cuda_attention_cudnn_cached(vd_backend *be);

#endif

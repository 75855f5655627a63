/* The backend interface: a device, memory on it, and the ops the Wan DiT,
 * the Wan VAE and umT5 need.  Models are written once against vd_op_*; a
 * backend supplies a table of functions (vd_backend_ops) and a context.
 *
 * Conventions shared by every op:
 * - Activations are f32 and contiguous unless an op says otherwise.
 *   Weights ("w", "table") may be in any storage dtype (f32, f16, bf16,
 *   fp8 with tensor->scale, GGUF blocks); the backend dequantises them on the
 *   device that computes.  A backend may compute internally in lower
 *   precision (CUDA: bf16 GEMM inputs) but reads and writes f32.
 * - Small parameters (biases, norm weights, modulation, gamma) may be any
 *   plain float dtype.
 * - "Row broadcast": a parameter b whose innermost size is D is viewed as
 *   R = nelem(b)/D rows; the activation a is viewed as M = nelem(a)/D rows;
 *   R must divide M and row i of a uses row i / (M/R) of b.  So b of shape
 *   [D] applies to every row, [B, D] to each of B equal groups of rows
 *   (cond/uncond), [M, D] per row (per-token modulation), and [C, 1] to
 *   each channel of a [C, ...] tensor.  A D > 1 must also be a's innermost
 *   size (rows of b line up with rows of a).
 * - Outputs may alias their first input where an op says "in place ok".
 * - The vd_op_* wrappers validate shapes and dtypes and return
 *   VD_ERR_SHAPE with a message naming the tensors (a NULL tensor or a bad
 *   scalar argument is VD_ERR_INVALID_ARGUMENT; an op missing from the
 *   backend's table is VD_ERR_UNSUPPORTED); backends may assume validated
 *   arguments.  Outputs that are not "in place ok" must not overlap their
 *   inputs.
 * - Weights must be float or block-quantized (not integer) and
 *   contiguous. */
#ifndef VD_BACKEND_H
#define VD_BACKEND_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/tensor.h"

typedef struct vd_backend vd_backend;

typedef enum vd_device_kind { VD_DEVICE_CPU = 0, VD_DEVICE_CUDA = 1 } vd_device_kind;

struct vd_buffer {
    vd_backend *backend;
    void *data;   /* device address */
    size_t size;
    void *impl;   /* backend-private */
};

typedef struct vd_backend_ops {
    /* memory */
    vd_status (*buffer_alloc)(vd_backend *be, size_t size, vd_buffer **out);
    void (*buffer_free)(vd_buffer *buf);
    vd_status (*upload)(vd_backend *be, void *dst, const void *src_host, size_t size);
    vd_status (*download)(vd_backend *be, void *dst_host, const void *src, size_t size);
    vd_status (*synchronize)(vd_backend *be);
    void (*destroy)(vd_backend *be);

    /* ops (arguments already validated; see the vd_op_* documentation) */
    vd_status (*matmul)(vd_backend *be, const vd_tensor *x, const vd_tensor *w, const vd_tensor *bias, vd_tensor *y);
    vd_status (*get_rows)(vd_backend *be, const vd_tensor *table, const vd_tensor *ids, vd_tensor *out);
    vd_status (*layernorm_modulate)(vd_backend *be, const vd_tensor *x, float eps, const vd_tensor *weight,
                                    const vd_tensor *bias, const vd_tensor *shift, const vd_tensor *scale,
                                    vd_tensor *out);
    vd_status (*rmsnorm)(vd_backend *be, const vd_tensor *x, const vd_tensor *weight, float eps, vd_tensor *out);
    vd_status (*channel_rmsnorm)(vd_backend *be, const vd_tensor *x, const vd_tensor *gamma, vd_tensor *out);
    vd_status (*rope3d)(vd_backend *be, const vd_tensor *x, int64_t frames, int64_t height, int64_t width,
                        double theta, vd_tensor *out);
    vd_status (*attention)(vd_backend *be, const vd_tensor *q, const vd_tensor *k, const vd_tensor *v,
                           float scale, const vd_tensor *bias, const int32_t *kv_len, vd_tensor *out);
    vd_status (*unary)(vd_backend *be, int op, const vd_tensor *x, vd_tensor *out);
    vd_status (*binary)(vd_backend *be, int op, const vd_tensor *a, const vd_tensor *b, vd_tensor *out);
    vd_status (*add_gated)(vd_backend *be, const vd_tensor *x, const vd_tensor *y, const vd_tensor *gate,
                           vd_tensor *out);
    vd_status (*conv3d)(vd_backend *be, const vd_tensor *x, const vd_tensor *w, const vd_tensor *bias,
                        const int stride[3], const int pad[6], vd_tensor *out);
    vd_status (*upsample2x)(vd_backend *be, const vd_tensor *x, vd_tensor *out);
    vd_status (*copy)(vd_backend *be, const vd_tensor *src, vd_tensor *dst);
    vd_status (*fill)(vd_backend *be, vd_tensor *t, float value);
} vd_backend_ops;

struct vd_backend {
    const vd_backend_ops *ops;
    vd_device_kind kind;
    int device_index;   /* CUDA ordinal; 0 for the CPU */
    char name[32];      /* "cpu", "cuda:0" */
    int threads;        /* CPU worker threads */
    void *impl;         /* backend-private context */
};

typedef enum vd_unary_op { VD_UNARY_SILU = 0, VD_UNARY_GELU_TANH, VD_UNARY_GELU_ERF } vd_unary_op;
typedef enum vd_binary_op { VD_BINARY_ADD = 0, VD_BINARY_MUL } vd_binary_op;

/* ---- devices ----------------------------------------------------------- */

typedef struct vd_backend_options {
    int threads;   /* CPU worker threads; 0 = number of online cores */
    int fp8_gemm;  /* CUDA: 1 = run GEMMs with fp8 e4m3 weights as fp8 GEMMs (activations rounded to
                      e4m3 too) where the GPU (sm_89+) and the shapes allow; 0 = bf16 GEMMs (default).
                      The environment variable VD_FP8_GEMM=1/0 overrides it.  The CPU ignores it. */
} vd_backend_options;

/* Open a device by name: "cpu", "cuda" (= "cuda:0") or "cuda:N".  A CUDA
 * name in a build without CUDA, or on a machine without a GPU or driver,
 * fails with VD_ERR_DEVICE and says so; the CPU is never affected. */
vd_status vd_backend_open(const char *device, const vd_backend_options *opt, vd_backend **out);
void vd_backend_close(vd_backend *be);

vd_status vd_backend_cpu_new(const vd_backend_options *opt, vd_backend **out);
vd_status vd_backend_cuda_new(int device, const vd_backend_options *opt, vd_backend **out);

/* ---- memory -------------------------------------------------------------- */

vd_status vd_buffer_alloc(vd_backend *be, size_t size, vd_buffer **out);
void vd_buffer_free(vd_buffer *buf);

/* A new contiguous tensor in its own buffer on `be` (contents undefined). */
vd_status vd_tensor_alloc(vd_backend *be, vd_dtype dtype, int ndim, const int64_t *shape, vd_tensor *out);
/* Free the tensor's buffer if it owns one; the descriptor is zeroed. */
void vd_tensor_release(vd_tensor *t);

/* Copy between host memory and a contiguous device tensor. */
vd_status vd_tensor_upload(vd_backend *be, vd_tensor *dst, const void *host, size_t size);
vd_status vd_tensor_download(vd_backend *be, const vd_tensor *src, void *host, size_t size);

/* A device copy of a host tensor (any dtype, scale kept). */
vd_status vd_tensor_to_device(vd_backend *be, const vd_tensor *host, vd_tensor *out);

vd_status vd_backend_synchronize(vd_backend *be);

/* ---- ops ----------------------------------------------------------------- */

/* y[M,N] = x[M,K] · (w[N,K] · w.scale)ᵀ + bias[N].  bias may be NULL.
 * x may carry leading dimensions ([..., K] → y [..., N], M = their product). */
vd_status vd_op_matmul(vd_backend *be, const vd_tensor *x, const vd_tensor *w, const vd_tensor *bias, vd_tensor *y);

/* out[n,D] = table[ids[i], :] · table.scale (f32).  ids: i32 [n] (any
 * shape of n elements; out [..., D] with n rows); an id outside the table
 * is VD_ERR_INVALID_ARGUMENT. */
vd_status vd_op_get_rows(vd_backend *be, const vd_tensor *table, const vd_tensor *ids, vd_tensor *out);

/* out[M,D] = LN(x) over D (no mean/var affine unless weight/bias given),
 * then ·(1 + scale) + shift with row broadcast.  Every parameter but x and
 * out may be NULL.  In place ok. */
vd_status vd_op_layernorm_modulate(vd_backend *be, const vd_tensor *x, float eps, const vd_tensor *weight,
                                   const vd_tensor *bias, const vd_tensor *shift, const vd_tensor *scale,
                                   vd_tensor *out);

/* out[M,D] = x · rsqrt(mean(x²) + eps) · weight[D] (weight may be NULL).
 * In place ok. */
vd_status vd_op_rmsnorm(vd_backend *be, const vd_tensor *x, const vd_tensor *weight, float eps, vd_tensor *out);

/* The Wan VAE's RMS_norm: x is [C, ...] (channel outermost); for every
 * position p, out[:,p] = x[:,p] / max(‖x[:,p]‖₂, 1e-12) · √C · gamma[C].
 * In place ok. */
vd_status vd_op_channel_rmsnorm(vd_backend *be, const vd_tensor *x, const vd_tensor *gamma, vd_tensor *out);

/* Wan 3-D RoPE on x [M, H, d] (M = B·frames·height·width tokens in raster
 * order f, h, w; d even; leading dimensions such as [B, L, H, d] are
 * flattened into M).  Adjacent pairs (x[2k], x[2k+1]) rotate; the
 * first d−4⌊d/6⌋ channels with the frame index (frequencies
 * theta^(−2j/(d−4⌊d/6⌋))), the next 2⌊d/6⌋ with the row, the last 2⌊d/6⌋
 * with the column (frequencies theta^(−2j/(2⌊d/6⌋))).  In place ok. */
vd_status vd_op_rope3d(vd_backend *be, const vd_tensor *x, int64_t frames, int64_t height, int64_t width,
                       double theta, vd_tensor *out);

/* out[B,Lq,H,dv] = softmax(q·kᵀ·scale + bias) · v, per batch and head.
 * q [B,Lq,H,d], k [B,Lk,H,d], v [B,Lk,H,dv].  bias: NULL or f32 [H,Lq,Lk]
 * (shared by the batch).  kv_len: NULL or a host array of B key counts
 * (keys at or past kv_len[b] are masked; each must be 1..Lk, otherwise
 * VD_ERR_SHAPE).  Never materialises more than a tile of the Lq×Lk scores
 * at a time. */
vd_status vd_op_attention(vd_backend *be, const vd_tensor *q, const vd_tensor *k, const vd_tensor *v, float scale,
                          const vd_tensor *bias, const int32_t *kv_len, vd_tensor *out);

/* Elementwise, same shape.  In place ok. */
vd_status vd_op_silu(vd_backend *be, const vd_tensor *x, vd_tensor *out);
vd_status vd_op_gelu_tanh(vd_backend *be, const vd_tensor *x, vd_tensor *out);
vd_status vd_op_gelu_erf(vd_backend *be, const vd_tensor *x, vd_tensor *out);

/* out = a + b, a · b, with b row-broadcast over a.  In place ok (out = a). */
vd_status vd_op_add(vd_backend *be, const vd_tensor *a, const vd_tensor *b, vd_tensor *out);
vd_status vd_op_mul(vd_backend *be, const vd_tensor *a, const vd_tensor *b, vd_tensor *out);

/* out = x + y · gate, gate row-broadcast; x, y, out the same shape.  In
 * place ok (out = x). */
vd_status vd_op_add_gated(vd_backend *be, const vd_tensor *x, const vd_tensor *y, const vd_tensor *gate,
                          vd_tensor *out);

/* 3-D convolution, batch 1, zero padding.  x [Cin,T,H,W], w [Cout,Cin,kt,kh,kw]
 * (any storage), bias [Cout] or NULL, stride {st,sh,sw}, pad {t_front,
 * t_back, top, bottom, left, right}; out [Cout, T', H', W'] with
 * T' = (T + t_front + t_back − kt)/st + 1 (and likewise H', W'). */
vd_status vd_op_conv3d(vd_backend *be, const vd_tensor *x, const vd_tensor *w, const vd_tensor *bias,
                       const int stride[3], const int pad[6], vd_tensor *out);

/* Nearest 2× upsampling of the last two dimensions: x [..., H, W] →
 * out [..., 2H, 2W]. */
vd_status vd_op_upsample2x(vd_backend *be, const vd_tensor *x, vd_tensor *out);

/* dst = src elementwise, same shape, any strides (views: permutes, slices,
 * concatenation targets).  src any plain dtype; dst f32 or src's dtype.
 * Converting to f32 applies src.scale (so does an f32 src whose scale is
 * not 1); a copy within one dtype copies the stored values unchanged.
 * src and dst must not overlap unless they are the same view. */
vd_status vd_op_copy(vd_backend *be, const vd_tensor *src, vd_tensor *dst);

/* Every element of t (f32, any strides) = value. */
vd_status vd_op_fill(vd_backend *be, vd_tensor *t, float value);

#endif

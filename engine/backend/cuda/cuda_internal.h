/* Shared pieces of the CUDA backend's host side: its context, the caching
 * allocator, error reporting that names the op and its tensors, and
 * parameters in other dtypes.
 *
 * Everything runs on one stream per backend.  Kernels, cuBLAS calls and
 * copies are enqueued in order, so a scratch block may go back to the
 * allocator as soon as the kernels that use it are enqueued: whoever gets it
 * next enqueues after them.  (Work on other streams must synchronise with
 * this one before it touches memory from this allocator.) */
#ifndef VD_BACKEND_CUDA_INTERNAL_H
#define VD_BACKEND_CUDA_INTERNAL_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cublasLt.h>
#include <cublas_v2.h>
#include <cuda_runtime.h>

#include "backend/backend.h"

/* ---- caching allocator ------------------------------------------------------ */

/* Free lists by size class: sizes round up to 16 steps per power of two
 * (at most 1/16 wasted), so a sampling loop that frees and re-allocates the
 * same shapes never calls cudaMalloc after its first step. */
enum { CUDA_POOL_CLASSES = 64 * 16 };

typedef struct cuda_block {
    void *ptr;
    size_t size;  /* bytes really allocated (the class size, or the exact size when uncached) */
    int cls;      /* size class, or -1 for a block that is freed rather than cached */
    struct cuda_block *next;
} cuda_block;

typedef struct cuda_pool {
    pthread_mutex_t lock;
    cuda_block *free_list[CUDA_POOL_CLASSES];
    size_t cached_bytes; /* in the free lists */
    size_t live_bytes;   /* handed out */
    size_t peak_bytes;
} cuda_pool;

/* ---- the context --------------------------------------------------------------- */

typedef struct cuda_ctx {
    int device;
    cudaStream_t stream;
    cublasHandle_t blas;
    cublasLtHandle_t lt;
    void *lt_workspace;
    size_t lt_workspace_size;
    int cc_major, cc_minor;
    size_t smem_optin;            /* largest dynamic shared memory a block may opt into */
    bool sync_each_op;            /* VD_CUDA_SYNC=1: synchronise after every op, so an asynchronous fault
                                     names the op that caused it */
    bool force_f32_attention;     /* VD_CUDA_ATTENTION=f32 */
    int64_t scratch_limit;        /* VD_CUDA_SCRATCH_LIMIT=bytes: caps the GEMM and im2col scratch tiles
                                     (tests use it to exercise the tiling on small shapes); 0 = none */
    bool fp8_gemm;                /* vd_backend_options.fp8_gemm, or VD_FP8_GEMM: fp8 GEMMs for e4m3
                                     weights (cuda_matmul_fp8.c) */
    bool fp8_fast_accum;          /* VD_FP8_GEMM=fast: cuBLASLt's fp8 fast accumulation (faster, less
                                     exact: partial sums are not promoted to fp32 periodically) */
    bool fp8_rowwise_off;         /* per-tensor fp8 activation scales even on sm_90: VD_FP8_GEMM=tensor,
                                     or cuBLASLt refused per-row (outer-vector) scaling once */
    cuda_pool pool;
} cuda_ctx;

static inline cuda_ctx *cuda_ctx_of(vd_backend *be) { return (cuda_ctx *)be->impl; }
static inline cudaStream_t cuda_stream(vd_backend *be) { return cuda_ctx_of(be)->stream; }

/* Make the backend's device current (a no-op when it already is): with
 * several GPUs in one process, another backend may have switched it, and a
 * launch into a stream of another device fails.  Every op starts with it. */
static inline void cuda_use_device(vd_backend *be) { cudaSetDevice(cuda_ctx_of(be)->device); }

/* Allocate `size` bytes (a cached block when one of its class is free).  On
 * failure the cache is released and the allocation retried; then
 * VD_ERR_OUT_OF_MEMORY with the size, the free and total memory, and what
 * to do.  `what` names the purpose for the message. */
vd_status cuda_pool_alloc(vd_backend *be, size_t size, const char *what, cuda_block **out);
/* Return a block to its free list (or cudaFree it if it is uncached).
 * NULL is ignored. */
void cuda_pool_free(vd_backend *be, cuda_block *b);
/* cudaFree every cached block (after synchronising the stream). */
void cuda_pool_release_cached(vd_backend *be);
/* Exactly `size` bytes, never cached (cls -1; cuda_pool_free gives it back
 * to the driver), counted in live/peak. */
vd_status cuda_pool_alloc_exact(vd_backend *be, size_t size, const char *what, cuda_block **out);
/* peak_bytes = live_bytes. */
void cuda_pool_reset_peak(vd_backend *be);
void cuda_pool_init(cuda_pool *p);
void cuda_pool_destroy(cuda_pool *p);

/* ---- errors ------------------------------------------------------------------ */

/* A tensor for messages: "x 'blocks.0.q' [4, 8] f32". */
const char *cuda_describe(const char *role, const vd_tensor *t, char *buf, size_t size);

/* The end of an op: `err` is the cudaError_t of its launches (0 = success).
 * In VD_CUDA_SYNC mode the stream is synchronised too.  A failure becomes
 * VD_ERR_DEVICE (VD_ERR_OUT_OF_MEMORY for an allocation failure) with a
 * message naming the device, the op and up to three tensors (NULL roles
 * are skipped). */
vd_status cuda_op_result(vd_backend *be, int err, const char *op, const char *r1, const vd_tensor *t1,
                         const char *r2, const vd_tensor *t2, const char *r3, const vd_tensor *t3);

/* A cuBLAS failure in `op` (what: "cublasLtMatmul", ...), with the shapes. */
vd_status cuda_blas_fail(vd_backend *be, int status, const char *call, const char *op, const char *shapes);

/* ---- parameters ---------------------------------------------------------------- */

/* A small parameter as f32 on the device (dtype converted, tensor->scale
 * applied).  If t is f32 with scale 1, *values is its data and *owned NULL;
 * otherwise *owned is a scratch block to cuda_pool_free() once the kernels
 * that read it are enqueued.  A NULL t gives NULL values. */
vd_status cuda_param_f32(vd_backend *be, const vd_tensor *t, const char *op, const char *role, const float **values,
                         cuda_block **owned);

/* `bytes`, or the VD_CUDA_SCRATCH_LIMIT cap if that is smaller. */
int64_t cuda_scratch_bound(vd_backend *be, int64_t bytes);

/* Bytes of one row of `cols` elements of a (possibly block) dtype. */
int64_t cuda_row_bytes(vd_dtype dtype, int64_t cols);

/* ---- ops ----------------------------------------------------------------------- */

vd_status cuda_matmul(vd_backend *be, const vd_tensor *x, const vd_tensor *w, const vd_tensor *bias, vd_tensor *y);
/* The fp8 path of cuda_matmul (cuda_matmul_fp8.c): y = x·(w·w.scale)ᵀ + bias for an e4m3 w as cuBLASLt
 * fp8 GEMMs, when c->fp8_gemm is set and the GPU and the shapes allow.  bias: the f32 device bias or
 * NULL.  Rows [0, *rows_done) of y are then computed (0, with nothing enqueued, when it declines);
 * the caller runs the bf16 path for the rest. */
vd_status cuda_matmul_fp8(vd_backend *be, const vd_tensor *x, const vd_tensor *w, const float *bias, vd_tensor *y,
                          const char *shapes, int64_t *rows_done);
vd_status cuda_get_rows(vd_backend *be, const vd_tensor *table, const vd_tensor *ids, vd_tensor *out);
vd_status cuda_layernorm_modulate(vd_backend *be, const vd_tensor *x, float eps, const vd_tensor *weight,
                                  const vd_tensor *bias, const vd_tensor *shift, const vd_tensor *scale,
                                  vd_tensor *out);
vd_status cuda_rmsnorm(vd_backend *be, const vd_tensor *x, const vd_tensor *weight, float eps, vd_tensor *out);
vd_status cuda_channel_rmsnorm(vd_backend *be, const vd_tensor *x, const vd_tensor *gamma, vd_tensor *out);
vd_status cuda_rope3d(vd_backend *be, const vd_tensor *x, int64_t frames, int64_t height, int64_t width,
                      double theta, vd_tensor *out);
vd_status cuda_attention(vd_backend *be, const vd_tensor *q, const vd_tensor *k, const vd_tensor *v, float scale,
                         const vd_tensor *bias, const int32_t *kv_len, vd_tensor *out);
vd_status cuda_unary(vd_backend *be, int op, const vd_tensor *x, vd_tensor *out);
vd_status cuda_binary(vd_backend *be, int op, const vd_tensor *a, const vd_tensor *b, vd_tensor *out);
vd_status cuda_add_gated(vd_backend *be, const vd_tensor *x, const vd_tensor *y, const vd_tensor *gate,
                         vd_tensor *out);
vd_status cuda_conv3d(vd_backend *be, const vd_tensor *x, const vd_tensor *w, const vd_tensor *bias,
                      const int stride[3], const int pad[6], vd_tensor *out);
vd_status cuda_upsample2x(vd_backend *be, const vd_tensor *x, vd_tensor *out);
vd_status cuda_copy(vd_backend *be, const vd_tensor *src, vd_tensor *dst);
vd_status cuda_fill(vd_backend *be, vd_tensor *t, float value);

#endif

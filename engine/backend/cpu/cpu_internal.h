/* Shared pieces of the CPU backend: its context, the GEMM it is built on,
 * and helpers for parameters stored in other dtypes.
 *
 * Every op splits its work into tiles whose boundaries depend only on the
 * shapes, never on the number of threads, and computes each output element
 * inside one tile in a fixed order; so results are bitwise identical for
 * any thread count. */
#ifndef VD_BACKEND_CPU_INTERNAL_H
#define VD_BACKEND_CPU_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "backend/backend.h"
#include "core/threadpool.h"

typedef struct vd_cpu_context {
    vd_threadpool *pool;
} vd_cpu_context;

static inline vd_threadpool *cpu_pool(vd_backend *be) { return ((vd_cpu_context *)be->impl)->pool; }
static inline int cpu_workers(vd_backend *be) { return vd_threadpool_size(cpu_pool(be)); }

/* C[M,N] = alpha · A[M,K] · op(B) + beta · C, row-major, single-threaded.
 * trans_b: B is [N,K] (op(B) = Bᵀ); otherwise B is [K,N].  BLAS when the
 * build has it, a cache-blocked loop otherwise.  Deterministic for fixed
 * arguments. */
void cpu_sgemm(bool trans_b, int M, int N, int K, float alpha, const float *A, int lda, const float *B, int ldb,
               float beta, float *C, int ldc);

/* Called once when a CPU backend is created (makes BLAS single-threaded). */
void cpu_gemm_init(void);

/* 64-byte aligned host memory (NULL on failure or size overflow). */
void *cpu_alloc(size_t size);
void cpu_free(void *p);
/* n floats, aligned; NULL on overflow or failure. */
float *cpu_alloc_floats(int64_t n);

/* A parameter as f32 values (dtype converted, tensor->scale applied).  If t
 * is already an aligned f32 tensor with scale 1, *values points at its data
 * and *owned is NULL; otherwise *owned is a new array to cpu_free().  A NULL
 * t gives NULL values. */
vd_status cpu_param_f32(const vd_tensor *t, const char *op, const char *role, const float **values, float **owned);

/* Dequantise `rows` rows of a contiguous 2-D (or flattened) weight, starting
 * at row `row0`, each `cols` elements, into dst (f32, scale NOT applied). */
vd_status cpu_weight_rows_f32(const vd_tensor *w, int64_t cols, int64_t row0, int64_t rows, float *dst);

/* Whether a weight's values can be read in place as floats. */
bool cpu_weight_is_direct_f32(const vd_tensor *w);

/* ---- ops ----------------------------------------------------------------- */

vd_status cpu_matmul(vd_backend *be, const vd_tensor *x, const vd_tensor *w, const vd_tensor *bias, vd_tensor *y);
vd_status cpu_get_rows(vd_backend *be, const vd_tensor *table, const vd_tensor *ids, vd_tensor *out);
vd_status cpu_layernorm_modulate(vd_backend *be, const vd_tensor *x, float eps, const vd_tensor *weight,
                                 const vd_tensor *bias, const vd_tensor *shift, const vd_tensor *scale,
                                 vd_tensor *out);
vd_status cpu_rmsnorm(vd_backend *be, const vd_tensor *x, const vd_tensor *weight, float eps, vd_tensor *out);
vd_status cpu_channel_rmsnorm(vd_backend *be, const vd_tensor *x, const vd_tensor *gamma, vd_tensor *out);
vd_status cpu_rope3d(vd_backend *be, const vd_tensor *x, int64_t frames, int64_t height, int64_t width, double theta,
                     vd_tensor *out);
vd_status cpu_attention(vd_backend *be, const vd_tensor *q, const vd_tensor *k, const vd_tensor *v, float scale,
                        const vd_tensor *bias, const int32_t *kv_len, vd_tensor *out);
vd_status cpu_unary(vd_backend *be, int op, const vd_tensor *x, vd_tensor *out);
vd_status cpu_binary(vd_backend *be, int op, const vd_tensor *a, const vd_tensor *b, vd_tensor *out);
vd_status cpu_add_gated(vd_backend *be, const vd_tensor *x, const vd_tensor *y, const vd_tensor *gate,
                        vd_tensor *out);
vd_status cpu_conv3d(vd_backend *be, const vd_tensor *x, const vd_tensor *w, const vd_tensor *bias,
                     const int stride[3], const int pad[6], vd_tensor *out);
vd_status cpu_upsample2x(vd_backend *be, const vd_tensor *x, vd_tensor *out);
vd_status cpu_copy(vd_backend *be, const vd_tensor *src, vd_tensor *dst);
vd_status cpu_fill(vd_backend *be, vd_tensor *t, float value);

#endif

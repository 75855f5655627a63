/* The CPU backend: host memory, a thread pool, and the ops table. */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "backend/cpu/cpu_internal.h"
#include "core/error.h"

/* ---- memory -------------------------------------------------------------- */

void *cpu_alloc(size_t size)
{
    if (size > SIZE_MAX - 64)
        return NULL;
    void *p = NULL;
    /* Round up so the whole last cache line belongs to the allocation. */
    size_t rounded = (size + 63) & ~(size_t)63;
    if (posix_memalign(&p, 64, rounded ? rounded : 64) != 0)
        return NULL;
    return p;
}

void cpu_free(void *p) { free(p); }

float *cpu_alloc_floats(int64_t n)
{
    if (n < 0 || (uint64_t)n > SIZE_MAX / sizeof(float))
        return NULL;
    return cpu_alloc((size_t)n * sizeof(float));
}

static vd_status cpu_buffer_alloc(vd_backend *be, size_t size, vd_buffer **out)
{
    vd_buffer *buf = calloc(1, sizeof *buf);
    void *data = cpu_alloc(size);
    if (!buf || !data) {
        free(buf);
        cpu_free(data);
        return vd_error(VD_ERR_OUT_OF_MEMORY, "cpu: cannot allocate %zu bytes of host memory", size);
    }
    buf->backend = be;
    buf->data = data;
    buf->size = size;
    *out = buf;
    return VD_OK;
}

static void cpu_buffer_free(vd_buffer *buf)
{
    cpu_free(buf->data);
    free(buf);
}

static vd_status cpu_upload(vd_backend *be, void *dst, const void *src_host, size_t size)
{
    if (dst != src_host)
        memmove(dst, src_host, size);
    return VD_OK;
}

static vd_status cpu_download(vd_backend *be, void *dst_host, const void *src, size_t size)
{
    if (dst_host != src)
        memmove(dst_host, src, size);
    return VD_OK;
}

static vd_status cpu_synchronize(vd_backend *be) { return VD_OK; }

static void cpu_destroy(vd_backend *be)
{
    vd_cpu_context *ctx = be->impl;
    if (ctx)
        vd_threadpool_free(ctx->pool);
    free(ctx);
    free(be);
}

/* ---- parameters in other dtypes ------------------------------------------ */

static float e4m3_table[256], e5m2_table[256];
static pthread_once_t fp8_once = PTHREAD_ONCE_INIT;

static void build_fp8_tables(void)
{
    for (int i = 0; i < 256; i++) {
        e4m3_table[i] = vd_e4m3_to_f32((uint8_t)i);
        e5m2_table[i] = vd_e5m2_to_f32((uint8_t)i);
    }
}

/* n elements of a plain or block dtype to f32; fast loops for the weight
 * formats that are decoded on every GEMM. */
static vd_status to_f32(vd_dtype dtype, const void *src, float *dst, int64_t n)
{
    const uint8_t *s = src;
    switch (dtype) {
    case VD_F32:
        memcpy(dst, src, (size_t)n * 4);
        return VD_OK;
    case VD_BF16:
        for (int64_t i = 0; i < n; i++) {
            uint32_t u = (uint32_t)s[2 * i] | (uint32_t)s[2 * i + 1] << 8;
            u <<= 16;
            memcpy(&dst[i], &u, 4);
        }
        return VD_OK;
    case VD_F16:
        for (int64_t i = 0; i < n; i++)
            dst[i] = vd_f16_to_f32((uint16_t)(s[2 * i] | s[2 * i + 1] << 8));
        return VD_OK;
    case VD_F8_E4M3:
    case VD_F8_E5M2: {
        pthread_once(&fp8_once, build_fp8_tables);
        const float *table = dtype == VD_F8_E4M3 ? e4m3_table : e5m2_table;
        for (int64_t i = 0; i < n; i++)
            dst[i] = table[s[i]];
        return VD_OK;
    }
    default:
        return vd_dtype_to_f32(dtype, src, dst, n);
    }
}

vd_status cpu_param_f32(const vd_tensor *t, const char *op, const char *role, const float **values, float **owned)
{
    *values = NULL;
    *owned = NULL;
    if (!t)
        return VD_OK;
    if (t->dtype == VD_F32 && t->scale == 1.0f && ((uintptr_t)t->data & 3) == 0) {
        *values = t->data;
        return VD_OK;
    }
    int64_t n = vd_tensor_nelem(t);
    float *p = cpu_alloc_floats(n);
    if (!p)
        return vd_error(VD_ERR_OUT_OF_MEMORY, "%s: no memory to convert %s (%lld values)", op, role, (long long)n);
    vd_status s = to_f32(t->dtype, t->data, p, n);
    if (s != VD_OK) {
        cpu_free(p);
        return vd_error_context(s, "%s: converting %s: ", op, role);
    }
    if (t->scale != 1.0f)
        for (int64_t i = 0; i < n; i++)
            p[i] *= t->scale;
    *values = p;
    *owned = p;
    return VD_OK;
}

bool cpu_weight_is_direct_f32(const vd_tensor *w)
{
    return w->dtype == VD_F32 && ((uintptr_t)w->data & 3) == 0;
}

vd_status cpu_weight_rows_f32(const vd_tensor *w, int64_t cols, int64_t row0, int64_t rows, float *dst)
{
    const vd_dtype_traits *tr = vd_dtype_info(w->dtype);
    size_t row_bytes = (size_t)(cols / tr->block_elems) * (size_t)tr->block_bytes;
    const uint8_t *src = (const uint8_t *)w->data + (size_t)row0 * row_bytes;
    return to_f32(w->dtype, src, dst, rows * cols);
}

/* ---- the backend ----------------------------------------------------------- */

static const vd_backend_ops cpu_ops = {
    .buffer_alloc = cpu_buffer_alloc,
    .buffer_free = cpu_buffer_free,
    .upload = cpu_upload,
    .download = cpu_download,
    .synchronize = cpu_synchronize,
    .destroy = cpu_destroy,
    .matmul = cpu_matmul,
    .get_rows = cpu_get_rows,
    .layernorm_modulate = cpu_layernorm_modulate,
    .rmsnorm = cpu_rmsnorm,
    .channel_rmsnorm = cpu_channel_rmsnorm,
    .rope3d = cpu_rope3d,
    .attention = cpu_attention,
    .unary = cpu_unary,
    .binary = cpu_binary,
    .add_gated = cpu_add_gated,
    .conv3d = cpu_conv3d,
    .upsample2x = cpu_upsample2x,
    .copy = cpu_copy,
    .fill = cpu_fill,
};

vd_status vd_backend_cpu_new(const vd_backend_options *opt, vd_backend **out)
{
    if (!out)
        return vd_error(VD_ERR_INVALID_ARGUMENT, "vd_backend_cpu_new: out is NULL");
    *out = NULL;
    int threads = opt ? opt->threads : 0;
    if (threads < 0)
        return vd_error(VD_ERR_INVALID_ARGUMENT, "threads=%d: use 0 (all cores) or a positive count", threads);
    cpu_gemm_init();
    vd_backend *be = calloc(1, sizeof *be);
    vd_cpu_context *ctx = calloc(1, sizeof *ctx);
    if (!be || !ctx) {
        free(be);
        free(ctx);
        return vd_error(VD_ERR_OUT_OF_MEMORY, "cpu backend: out of memory");
    }
    vd_status s = vd_threadpool_new(threads, &ctx->pool);
    if (s != VD_OK) {
        free(be);
        free(ctx);
        return vd_error_context(s, "cpu backend: ");
    }
    be->ops = &cpu_ops;
    be->kind = VD_DEVICE_CPU;
    be->device_index = 0;
    strcpy(be->name, "cpu");
    be->threads = vd_threadpool_size(ctx->pool);
    be->impl = ctx;
    *out = be;
    return VD_OK;
}

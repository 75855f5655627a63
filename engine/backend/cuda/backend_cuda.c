/* The host side of the CUDA backend: device selection, the context (stream,
 * cuBLAS and cuBLASLt handles, caching allocator), transfers, and the ops
 * table.  The ops themselves are in the cuda_*.c files beside this one and
 * launch the kernels of kernels/ (which only this directory calls).  Built
 * only with -Dcuda; backend.c reports a clear error for cuda:N otherwise.
 *
 * Environment (read when a backend is created):
 *   VD_CUDA_SYNC=1          synchronise after every op, so that an
 *                           asynchronous fault is reported by the op that
 *                           caused it (slow; for debugging and tests)
 *   VD_CUDA_ATTENTION=f32   use the fp32 attention kernel for every head size
 *                           (a reference for the tensor-core kernel)
 *   VD_CUDA_SCRATCH_LIMIT=N cap the GEMM and im2col scratch tiles at N bytes
 *                           (tests: exercises the tiling on small shapes)
 *   VD_FP8_GEMM=1|0|fast|tensor
 *                           fp8 GEMMs for e4m3 weights on or off, whatever
 *                           vd_backend_options.fp8_gemm says; "fast" turns
 *                           them on with cuBLASLt's fast fp8 accumulation,
 *                           "tensor" with one activation scale per chunk
 *                           instead of per row on sm_90 (tests the path
 *                           other GPUs take)
 * Read at each call: VD_CUDA_ATTENTION=cudnn|fa2|mma (cuda_attention.c) and
 * VD_CUDA_CONV=cudnn|im2col (cuda_conv3d.c) pick those paths. */
#include "backend/backend.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "vd_config.h"

#if VD_HAVE_CUDA

#include "backend/cuda/backend_cuda.h"
#include "backend/cuda/cuda_internal.h"
#include "dtypes.h"

/* The kernels name dtypes by the same numbers as vd_dtype. */
_Static_assert(VDK_F32 == (int)VD_F32 && VDK_F16 == (int)VD_F16 && VDK_BF16 == (int)VD_BF16 &&
                   VDK_F8_E4M3 == (int)VD_F8_E4M3 && VDK_F8_E5M2 == (int)VD_F8_E5M2 && VDK_F64 == (int)VD_F64 &&
                   VDK_I8 == (int)VD_I8 && VDK_U8 == (int)VD_U8 && VDK_I16 == (int)VD_I16 && VDK_I32 == (int)VD_I32 &&
                   VDK_I64 == (int)VD_I64 && VDK_BOOL == (int)VD_BOOL && VDK_Q4_0 == (int)VD_Q4_0 &&
                   VDK_Q4_1 == (int)VD_Q4_1 && VDK_Q5_0 == (int)VD_Q5_0 && VDK_Q5_1 == (int)VD_Q5_1 &&
                   VDK_Q8_0 == (int)VD_Q8_0 && VDK_Q2_K == (int)VD_Q2_K && VDK_Q3_K == (int)VD_Q3_K &&
                   VDK_Q4_K == (int)VD_Q4_K && VDK_Q5_K == (int)VD_Q5_K && VDK_Q6_K == (int)VD_Q6_K &&
                   VDK_DTYPE_COUNT == (int)VD_DTYPE_COUNT,
               "kernels/dtypes.h and core/dtype.h disagree");

/* cuBLASLt's workspace; 32 MiB is what NVIDIA recommends for Hopper. */
enum { LT_WORKSPACE = 32 << 20 };

/* Turn a CUDA error into a status naming the device and the operation. */
static vd_status cuda_fail(vd_backend *be, cudaError_t err, const char *what)
{
    cudaGetLastError();
    vd_status s = err == cudaErrorMemoryAllocation ? VD_ERR_OUT_OF_MEMORY : VD_ERR_DEVICE;
    return vd_error(s, "%s: %s failed: %s (%s)", be->name, what, cudaGetErrorString(err), cudaGetErrorName(err));
}

/* ---- memory ---------------------------------------------------------------- */

static vd_status cuda_buffer_alloc(vd_backend *be, size_t size, vd_buffer **out)
{
    vd_buffer *b = calloc(1, sizeof *b);
    if (!b)
        return vd_error(VD_ERR_OUT_OF_MEMORY, "out of host memory");
    cuda_block *blk;
    vd_status s = cuda_pool_alloc(be, size, "a tensor", &blk);
    if (s != VD_OK) {
        free(b);
        return s;
    }
    b->backend = be;
    b->data = blk->ptr;
    b->size = size;
    b->impl = blk;
    *out = b;
    return VD_OK;
}

static void cuda_buffer_free(vd_buffer *b)
{
    if (!b)
        return;
    cuda_pool_free(b->backend, b->impl);
    free(b);
}

static vd_status cuda_upload(vd_backend *be, void *dst, const void *src, size_t size)
{
    cuda_use_device(be);
    cudaError_t e = cudaMemcpyAsync(dst, src, size, cudaMemcpyHostToDevice, cuda_stream(be));
    if (e == cudaSuccess)
        e = cudaStreamSynchronize(cuda_stream(be));
    return e == cudaSuccess ? VD_OK : cuda_fail(be, e, "upload");
}

static vd_status cuda_download(vd_backend *be, void *dst, const void *src, size_t size)
{
    cuda_use_device(be);
    cudaError_t e = cudaMemcpyAsync(dst, src, size, cudaMemcpyDeviceToHost, cuda_stream(be));
    if (e == cudaSuccess)
        e = cudaStreamSynchronize(cuda_stream(be));
    return e == cudaSuccess ? VD_OK : cuda_fail(be, e, "download");
}

static vd_status cuda_synchronize(vd_backend *be)
{
    cuda_use_device(be);
    cudaError_t e = cudaStreamSynchronize(cuda_stream(be));
    return e == cudaSuccess ? VD_OK : cuda_fail(be, e, "synchronize");
}

/* Tear down what exists of a context (also on a half-finished creation). */
static void free_ctx(cuda_ctx *c)
{
    if (!c)
        return;
    cudaSetDevice(c->device);
    if (c->stream)
        cudaStreamSynchronize(c->stream);
    if (c->lt)
        cublasLtDestroy(c->lt);
    if (c->blas)
        cublasDestroy(c->blas);
    if (c->lt_workspace)
        cudaFree(c->lt_workspace);
    cuda_pool_destroy(&c->pool);
    if (c->stream)
        cudaStreamDestroy(c->stream);
    free(c);
}

/* Buffers must be freed before their backend is closed. */
static void cuda_destroy(vd_backend *be)
{
    free_ctx(be->impl);
    free(be);
}

vd_status vd_backend_cuda_release_cached(vd_backend *be)
{
    if (!be || be->kind != VD_DEVICE_CUDA)
        return vd_error(VD_ERR_INVALID_ARGUMENT, "vd_backend_cuda_release_cached: not a CUDA backend");
    cuda_pool_release_cached(be);
    return VD_OK;
}

void *vd_backend_cuda_stream(vd_backend *be)
{
    return be && be->kind == VD_DEVICE_CUDA ? (void *)cuda_stream(be) : NULL;
}

vd_status vd_backend_cuda_buffer_alloc_exact(vd_backend *be, size_t size, const char *what, vd_buffer **out)
{
    if (!out)
        return vd_error(VD_ERR_INVALID_ARGUMENT, "vd_backend_cuda_buffer_alloc_exact: out is NULL");
    *out = NULL;
    if (!be || be->kind != VD_DEVICE_CUDA)
        return vd_error(VD_ERR_INVALID_ARGUMENT, "vd_backend_cuda_buffer_alloc_exact: not a CUDA backend");
    vd_buffer *b = calloc(1, sizeof *b);
    if (!b)
        return vd_error(VD_ERR_OUT_OF_MEMORY, "out of host memory");
    cuda_block *blk;
    vd_status s = cuda_pool_alloc_exact(be, size, what, &blk);
    if (s != VD_OK) {
        free(b);
        return s;
    }
    b->backend = be;
    b->data = blk->ptr;
    b->size = size;
    b->impl = blk;
    *out = b;
    return VD_OK;
}

void vd_backend_cuda_reset_peak(vd_backend *be)
{
    if (be && be->kind == VD_DEVICE_CUDA)
        cuda_pool_reset_peak(be);
}

vd_status vd_backend_cuda_memory(vd_backend *be, vd_cuda_memory_stats *out)
{
    if (!be || be->kind != VD_DEVICE_CUDA || !out)
        return vd_error(VD_ERR_INVALID_ARGUMENT, "vd_backend_cuda_memory: not a CUDA backend, or out is NULL");
    cuda_ctx *c = cuda_ctx_of(be);
    pthread_mutex_lock(&c->pool.lock);
    out->live_bytes = c->pool.live_bytes;
    out->cached_bytes = c->pool.cached_bytes;
    out->peak_bytes = c->pool.peak_bytes;
    pthread_mutex_unlock(&c->pool.lock);
    cudaSetDevice(c->device);
    cudaError_t e = cudaMemGetInfo(&out->device_free_bytes, &out->device_total_bytes);
    return e == cudaSuccess ? VD_OK : cuda_fail(be, e, "cudaMemGetInfo");
}

/* ---- the backend -------------------------------------------------------------- */

static const vd_backend_ops cuda_ops = {
    .buffer_alloc = cuda_buffer_alloc,
    .buffer_free = cuda_buffer_free,
    .upload = cuda_upload,
    .download = cuda_download,
    .synchronize = cuda_synchronize,
    .destroy = cuda_destroy,
    .matmul = cuda_matmul,
    .get_rows = cuda_get_rows,
    .layernorm_modulate = cuda_layernorm_modulate,
    .rmsnorm = cuda_rmsnorm,
    .channel_rmsnorm = cuda_channel_rmsnorm,
    .rope3d = cuda_rope3d,
    .attention = cuda_attention,
    .unary = cuda_unary,
    .binary = cuda_binary,
    .add_gated = cuda_add_gated,
    .conv3d = cuda_conv3d,
    .upsample2x = cuda_upsample2x,
    .copy = cuda_copy,
    .fill = cuda_fill,
};

static bool env_on(const char *name)
{
    const char *v = getenv(name);
    return v && v[0] && strcmp(v, "0") != 0;
}

vd_status vd_backend_cuda_new(int device, const vd_backend_options *opt, vd_backend **out)
{
    *out = NULL;
    int count = 0;
    cudaError_t e = cudaGetDeviceCount(&count);
    if (e != cudaSuccess) {
        cudaGetLastError();
        return vd_error(VD_ERR_DEVICE,
                        "cuda:%d: no usable CUDA device (%s: %s); check the NVIDIA driver (nvidia-smi) or use device=cpu",
                        device, cudaGetErrorName(e), cudaGetErrorString(e));
    }
    if (count == 0)
        return vd_error(VD_ERR_DEVICE, "cuda:%d requested, but no CUDA device is present; use device=cpu", device);
    if (device < 0 || device >= count)
        return vd_error(VD_ERR_DEVICE, "cuda:%d requested, but this machine has %d CUDA device(s) (valid: cuda:0 to cuda:%d)",
                        device, count, count - 1);
    cuda_ctx *c = calloc(1, sizeof *c);
    vd_backend *be = calloc(1, sizeof *be);
    if (!c || !be) {
        free(c);
        free(be);
        return vd_error(VD_ERR_OUT_OF_MEMORY, "out of host memory");
    }
    c->device = device;
    cuda_pool_init(&c->pool);
    be->kind = VD_DEVICE_CUDA;
    be->device_index = device;
    snprintf(be->name, sizeof be->name, "cuda:%d", device);
    be->ops = &cuda_ops;
    be->impl = c;

    vd_status s = VD_OK;
    int major = 0, minor = 0, smem = 0;
    e = cudaSetDevice(device);
    if (e == cudaSuccess)
        e = cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, device);
    if (e == cudaSuccess)
        e = cudaDeviceGetAttribute(&minor, cudaDevAttrComputeCapabilityMinor, device);
    if (e == cudaSuccess)
        e = cudaDeviceGetAttribute(&smem, cudaDevAttrMaxSharedMemoryPerBlockOptin, device);
    if (e == cudaSuccess)
        e = cudaStreamCreateWithFlags(&c->stream, cudaStreamNonBlocking);
    if (e == cudaSuccess)
        e = cudaMalloc(&c->lt_workspace, LT_WORKSPACE);
    if (e != cudaSuccess)
        s = cuda_fail(be, e, "device initialisation");
    c->cc_major = major;
    c->cc_minor = minor;
    c->smem_optin = smem > 0 ? (size_t)smem : 48 * 1024;
    c->lt_workspace_size = LT_WORKSPACE;
    if (s == VD_OK && major < 7)
        s = vd_error(VD_ERR_DEVICE, "%s has compute capability %d.%d; vdiff's kernels need 7.5 or newer", be->name,
                     major, minor);
    cublasStatus_t bs = CUBLAS_STATUS_SUCCESS;
    if (s == VD_OK && (bs = cublasCreate(&c->blas)) != CUBLAS_STATUS_SUCCESS)
        c->blas = NULL;
    if (s == VD_OK && bs == CUBLAS_STATUS_SUCCESS)
        bs = cublasSetStream(c->blas, c->stream);
    /* fp32 GEMMs (the VAE's convolutions) stay IEEE fp32: no TF32. */
    if (s == VD_OK && bs == CUBLAS_STATUS_SUCCESS)
        bs = cublasSetMathMode(c->blas, CUBLAS_DEFAULT_MATH);
    if (s == VD_OK && bs == CUBLAS_STATUS_SUCCESS && (bs = cublasLtCreate(&c->lt)) != CUBLAS_STATUS_SUCCESS)
        c->lt = NULL;
    if (s == VD_OK && bs != CUBLAS_STATUS_SUCCESS)
        s = vd_error(VD_ERR_DEVICE, "%s: cuBLAS initialisation failed: %s (%s)", be->name, cublasGetStatusName(bs),
                     cublasGetStatusString(bs));
    if (s != VD_OK) {
        free_ctx(c);
        free(be);
        return s;
    }
    c->sync_each_op = env_on("VD_CUDA_SYNC");
    const char *attn = getenv("VD_CUDA_ATTENTION");
    c->force_f32_attention = attn && strcmp(attn, "f32") == 0;
    const char *limit = getenv("VD_CUDA_SCRATCH_LIMIT");
    c->scratch_limit = limit ? strtoll(limit, NULL, 10) : 0;
    const char *fp8 = getenv("VD_FP8_GEMM");
    c->fp8_gemm = fp8 && fp8[0] ? strcmp(fp8, "0") != 0 : (opt && opt->fp8_gemm != 0);
    c->fp8_fast_accum = fp8 && strcmp(fp8, "fast") == 0;
    c->fp8_rowwise_off = fp8 && strcmp(fp8, "tensor") == 0;
    *out = be;
    return VD_OK;
}

#endif

/* The host side of the CUDA backend: device selection, memory, streams and
 * the launches of kernels/ (which only this file calls).  Built only with
 * -Dcuda; backend.c reports a clear error for cuda:N otherwise. */
#include "backend/backend.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "vd_config.h"

#if VD_HAVE_CUDA

#include <cuda_runtime.h>

#include "elementwise.h"

typedef struct cuda_ctx {
    cudaStream_t stream;
} cuda_ctx;

static cudaStream_t stream_of(vd_backend *be) { return ((cuda_ctx *)be->impl)->stream; }

/* Turn a CUDA error into a status naming the device and the operation. */
static vd_status cuda_fail(vd_backend *be, cudaError_t err, const char *what)
{
    vd_status s = err == cudaErrorMemoryAllocation ? VD_ERR_OUT_OF_MEMORY : VD_ERR_DEVICE;
    return vd_error(s, "%s: %s failed: %s (%s)", be->name, what, cudaGetErrorString(err), cudaGetErrorName(err));
}

static vd_status cuda_buffer_alloc(vd_backend *be, size_t size, vd_buffer **out)
{
    vd_buffer *b = calloc(1, sizeof *b);
    if (!b)
        return vd_error(VD_ERR_OUT_OF_MEMORY, "out of host memory");
    cudaSetDevice(be->device_index);
    cudaError_t e = cudaMalloc(&b->data, size ? size : 1);
    if (e != cudaSuccess) {
        free(b);
        cudaGetLastError(); /* clear the sticky-free error state */
        size_t free_b = 0, total_b = 0;
        cudaMemGetInfo(&free_b, &total_b);
        return vd_error(e == cudaErrorMemoryAllocation ? VD_ERR_OUT_OF_MEMORY : VD_ERR_DEVICE,
                        "%s: cannot allocate %.2f GB (%.2f GB free of %.2f GB): %s; lower the resolution or frame "
                        "count, or offload weights with an allocation",
                        be->name, (double)size / 1e9, (double)free_b / 1e9, (double)total_b / 1e9, cudaGetErrorString(e));
    }
    b->backend = be;
    b->size = size;
    *out = b;
    return VD_OK;
}

static void cuda_buffer_free(vd_buffer *b)
{
    if (!b)
        return;
    cudaFree(b->data);
    free(b);
}

static vd_status cuda_upload(vd_backend *be, void *dst, const void *src, size_t size)
{
    cudaError_t e = cudaMemcpyAsync(dst, src, size, cudaMemcpyHostToDevice, stream_of(be));
    if (e == cudaSuccess)
        e = cudaStreamSynchronize(stream_of(be));
    return e == cudaSuccess ? VD_OK : cuda_fail(be, e, "upload");
}

static vd_status cuda_download(vd_backend *be, void *dst, const void *src, size_t size)
{
    cudaError_t e = cudaMemcpyAsync(dst, src, size, cudaMemcpyDeviceToHost, stream_of(be));
    if (e == cudaSuccess)
        e = cudaStreamSynchronize(stream_of(be));
    return e == cudaSuccess ? VD_OK : cuda_fail(be, e, "download");
}

static vd_status cuda_synchronize(vd_backend *be)
{
    cudaError_t e = cudaStreamSynchronize(stream_of(be));
    return e == cudaSuccess ? VD_OK : cuda_fail(be, e, "synchronize");
}

static void cuda_destroy(vd_backend *be)
{
    cuda_ctx *c = be->impl;
    if (c) {
        cudaStreamDestroy(c->stream);
        free(c);
    }
}

static vd_status launched(vd_backend *be, int err, const char *op)
{
    return err == 0 ? VD_OK : cuda_fail(be, (cudaError_t)err, op);
}

static vd_status cuda_unary(vd_backend *be, int op, const vd_tensor *x, vd_tensor *out)
{
    return launched(be, vd_cuda_unary_f32(op, x->data, out->data, vd_tensor_nelem(x), stream_of(be)), "unary op");
}

static vd_status cuda_binary(vd_backend *be, int op, const vd_tensor *a, const vd_tensor *b, vd_tensor *out)
{
    int64_t d = b->ndim ? b->shape[b->ndim - 1] : 1;
    return launched(be, vd_cuda_binary_f32(op, a->data, b->data, out->data, vd_tensor_nelem(a), vd_tensor_nelem(b), d,
                                           stream_of(be)),
                    op == VD_BINARY_ADD ? "add" : "mul");
}

static vd_status cuda_add_gated(vd_backend *be, const vd_tensor *x, const vd_tensor *y, const vd_tensor *gate,
                                vd_tensor *out)
{
    int64_t d = gate->ndim ? gate->shape[gate->ndim - 1] : 1;
    return launched(be, vd_cuda_add_gated_f32(x->data, y->data, gate->data, out->data, vd_tensor_nelem(x),
                                              vd_tensor_nelem(gate), d, stream_of(be)),
                    "add_gated");
}

static vd_status cuda_fill(vd_backend *be, vd_tensor *t, float value)
{
    if (!vd_tensor_is_contiguous(t))
        return vd_error(VD_ERR_UNSUPPORTED, "%s: fill of a strided view is not implemented yet", be->name);
    return launched(be, vd_cuda_fill_f32(t->data, value, vd_tensor_nelem(t), stream_of(be)), "fill");
}

/* Ops not listed here are not implemented on CUDA yet; the vd_op_*
 * wrappers report that by name. */
static const vd_backend_ops cuda_ops = {
    .buffer_alloc = cuda_buffer_alloc,
    .buffer_free = cuda_buffer_free,
    .upload = cuda_upload,
    .download = cuda_download,
    .synchronize = cuda_synchronize,
    .destroy = cuda_destroy,
    .unary = cuda_unary,
    .binary = cuda_binary,
    .add_gated = cuda_add_gated,
    .fill = cuda_fill,
};

vd_status vd_backend_cuda_new(int device, const vd_backend_options *opt, vd_backend **out)
{
    (void)opt;
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
    e = cudaSetDevice(device);
    cuda_ctx *c = calloc(1, sizeof *c);
    vd_backend *be = calloc(1, sizeof *be);
    if (!c || !be) {
        free(c);
        free(be);
        return vd_error(VD_ERR_OUT_OF_MEMORY, "out of host memory");
    }
    be->kind = VD_DEVICE_CUDA;
    be->device_index = device;
    snprintf(be->name, sizeof be->name, "cuda:%d", device);
    be->ops = &cuda_ops;
    be->impl = c;
    if (e == cudaSuccess)
        e = cudaStreamCreateWithFlags(&c->stream, cudaStreamNonBlocking);
    if (e != cudaSuccess) {
        vd_status s = cuda_fail(be, e, "device initialisation");
        free(c);
        free(be);
        return s;
    }
    *out = be;
    return VD_OK;
}

#endif

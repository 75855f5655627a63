/* Pinned (page-locked) host memory for offloading, and in builds without
 * CUDA the stubs of the rest of backend_cuda.h.  Compiled in every build,
 * so callers need no #if; without CUDA every call fails with a message. */
#include "backend/cuda/backend_cuda.h"

#include "core/error.h"
#include "vd_config.h"

#if VD_HAVE_CUDA
#include <cuda_runtime.h>
#endif

vd_status vd_backend_cuda_host_alloc(size_t size, void **out)
{
    if (!out)
        return vd_error(VD_ERR_INVALID_ARGUMENT, "vd_backend_cuda_host_alloc: out is NULL");
    *out = NULL;
    if (size == 0)
        return VD_OK;
#if VD_HAVE_CUDA
    void *p = NULL;
    cudaError_t e = cudaHostAlloc(&p, size, cudaHostAllocPortable);
    if (e != cudaSuccess) {
        cudaGetLastError();
        vd_status s = e == cudaErrorMemoryAllocation ? VD_ERR_OUT_OF_MEMORY : VD_ERR_DEVICE;
        return vd_error(s,
                        "cannot pin %.2f GiB of host memory: %s (%s); free host memory, raise the locked-memory "
                        "limit (ulimit -l) or keep fewer weights in host memory",
                        (double)size / (double)(1u << 30), cudaGetErrorString(e), cudaGetErrorName(e));
    }
    *out = p;
    return VD_OK;
#else
    return vd_error(VD_ERR_DEVICE, "pinned host memory needs a build with CUDA (-Dcuda=enabled)");
#endif
}

void vd_backend_cuda_host_free(void *p)
{
#if VD_HAVE_CUDA
    if (p)
        cudaFreeHost(p);
#else
    (void)p;
#endif
}

#if !VD_HAVE_CUDA
static vd_status no_cuda(const char *what)
{
    return vd_error(VD_ERR_DEVICE, "%s needs a build with CUDA (-Dcuda=enabled)", what);
}

vd_status vd_backend_cuda_memory(vd_backend *be, vd_cuda_memory_stats *out)
{
    (void)be;
    (void)out;
    return no_cuda("vd_backend_cuda_memory");
}

vd_status vd_backend_cuda_release_cached(vd_backend *be)
{
    (void)be;
    return no_cuda("vd_backend_cuda_release_cached");
}

void *vd_backend_cuda_stream(vd_backend *be)
{
    (void)be;
    return NULL;
}

vd_status vd_backend_cuda_buffer_alloc_exact(vd_backend *be, size_t size, const char *what, vd_buffer **out)
{
    (void)be;
    (void)size;
    (void)what;
    if (out)
        *out = NULL;
    return no_cuda("vd_backend_cuda_buffer_alloc_exact");
}

void vd_backend_cuda_reset_peak(vd_backend *be) { (void)be; }
#endif

/* The CUDA backend's caching allocator: free lists by size class, so that a
 * sampling loop which frees and re-allocates the same shapes every step
 * stops calling cudaMalloc (and its implicit synchronisation) after the
 * first step.  A failed cudaMalloc releases the cache and retries once, then
 * reports VD_ERR_OUT_OF_MEMORY; nothing is left half-done, so the backend
 * stays usable. */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>

#include "backend/cuda/cuda_internal.h"
#include "core/error.h"

enum { STEPS_LOG2 = 4, STEPS = 1 << STEPS_LOG2, MIN_BLOCK = 512 };

/* Nothing larger exists on a GPU; keeps the class arithmetic far from overflow. */
#define MAX_REQUEST ((size_t)1 << 60)

/* The class of `size` and its rounded size: 16 steps per power of two. */
static int class_of(size_t size, size_t *rounded)
{
    if (size < MIN_BLOCK)
        size = MIN_BLOCK;
    int e = 63;
    while (!((size >> e) & 1))
        e--;
    const size_t p = (size_t)1 << e, step = p >> STEPS_LOG2;
    size_t k = (size - p + step - 1) / step;
    if (k == STEPS) {
        e++;
        k = 0;
    }
    *rounded = ((size_t)1 << e) + k * (((size_t)1 << e) >> STEPS_LOG2);
    return e * STEPS + (int)k;
}

void cuda_pool_init(cuda_pool *p)
{
    pthread_mutex_init(&p->lock, NULL);
    for (int i = 0; i < CUDA_POOL_CLASSES; i++)
        p->free_list[i] = NULL;
    p->cached_bytes = p->live_bytes = p->peak_bytes = 0;
}

static void free_all_cached(cuda_pool *p)
{
    pthread_mutex_lock(&p->lock);
    for (int i = 0; i < CUDA_POOL_CLASSES; i++) {
        cuda_block *b = p->free_list[i];
        p->free_list[i] = NULL;
        while (b) {
            cuda_block *next = b->next;
            cudaFree(b->ptr);
            free(b);
            b = next;
        }
    }
    p->cached_bytes = 0;
    pthread_mutex_unlock(&p->lock);
}

void cuda_pool_destroy(cuda_pool *p)
{
    free_all_cached(p);
    pthread_mutex_destroy(&p->lock);
}

void cuda_pool_release_cached(vd_backend *be)
{
    cuda_ctx *c = cuda_ctx_of(be);
    cudaSetDevice(c->device);
    /* A cached block may still be read by enqueued work; cudaFree does not
     * wait for our non-blocking stream. */
    cudaStreamSynchronize(c->stream);
    free_all_cached(&c->pool);
}

static const char *gib(size_t bytes, char *buf, size_t size)
{
    if (bytes >= ((size_t)1 << 30))
        snprintf(buf, size, "%.2f GiB", (double)bytes / (double)((size_t)1 << 30));
    else
        snprintf(buf, size, "%.1f MiB", (double)bytes / (double)((size_t)1 << 20));
    return buf;
}

static vd_status out_of_memory(vd_backend *be, size_t size, const char *what, cudaError_t err)
{
    cuda_ctx *c = cuda_ctx_of(be);
    size_t free_b = 0, total_b = 0;
    if (cudaMemGetInfo(&free_b, &total_b) != cudaSuccess) {
        cudaGetLastError();
        free_b = total_b = 0;
    }
    pthread_mutex_lock(&c->pool.lock);
    const size_t live = c->pool.live_bytes;
    pthread_mutex_unlock(&c->pool.lock);
    char s_req[32], s_free[32], s_total[32], s_live[32];
    return vd_error(VD_ERR_OUT_OF_MEMORY,
                    "%s: out of GPU memory allocating %s for %s (%s free of %s; vdiff's tensors hold %s; %s): "
                    "lower the resolution or the number of frames, use a smaller or quantized model, or keep "
                    "part of the weights off this GPU (offloading)",
                    be->name, gib(size, s_req, sizeof s_req), what ? what : "a tensor",
                    gib(free_b, s_free, sizeof s_free), gib(total_b, s_total, sizeof s_total),
                    gib(live, s_live, sizeof s_live), cudaGetErrorString(err));
}

vd_status cuda_pool_alloc(vd_backend *be, size_t size, const char *what, cuda_block **out)
{
    cuda_ctx *c = cuda_ctx_of(be);
    cuda_pool *p = &c->pool;
    *out = NULL;
    if (size > MAX_REQUEST)
        return out_of_memory(be, size, what, cudaErrorMemoryAllocation);
    size_t rounded;
    const int cls = class_of(size, &rounded);

    pthread_mutex_lock(&p->lock);
    cuda_block *b = p->free_list[cls];
    if (b) {
        p->free_list[cls] = b->next;
        p->cached_bytes -= b->size;
        p->live_bytes += b->size;
        if (p->live_bytes > p->peak_bytes)
            p->peak_bytes = p->live_bytes;
    }
    pthread_mutex_unlock(&p->lock);
    if (b) {
        b->next = NULL;
        *out = b;
        return VD_OK;
    }

    b = calloc(1, sizeof *b);
    if (!b)
        return vd_error(VD_ERR_OUT_OF_MEMORY, "%s: out of host memory", be->name);
    cudaSetDevice(c->device);
    void *ptr = NULL;
    size_t got = rounded;
    int got_cls = cls;
    cudaError_t e = cudaMalloc(&ptr, rounded);
    if (e == cudaErrorMemoryAllocation) {
        cudaGetLastError(); /* not sticky, but clear it */
        cuda_pool_release_cached(be);
        e = cudaMalloc(&ptr, rounded);
        if (e == cudaErrorMemoryAllocation && rounded > size) {
            /* The exact size may still fit; such a block is not cached. */
            cudaGetLastError();
            got = size ? size : 1;
            got_cls = -1;
            e = cudaMalloc(&ptr, got);
        }
    }
    if (e != cudaSuccess) {
        cudaGetLastError();
        free(b);
        size_t free_b = 0, total_b = 0;
        bool beyond = cudaMemGetInfo(&free_b, &total_b) == cudaSuccess && size > total_b;
        cudaGetLastError();
        if (e == cudaErrorMemoryAllocation || beyond) /* an absurd size may come back as another error */
            return out_of_memory(be, size, what, e);
        return vd_error(VD_ERR_DEVICE, "%s: cudaMalloc of %zu bytes for %s failed: %s (%s)", be->name, size,
                        what ? what : "a tensor", cudaGetErrorString(e), cudaGetErrorName(e));
    }
    b->ptr = ptr;
    b->size = got;
    b->cls = got_cls;
    pthread_mutex_lock(&p->lock);
    p->live_bytes += got;
    if (p->live_bytes > p->peak_bytes)
        p->peak_bytes = p->live_bytes;
    pthread_mutex_unlock(&p->lock);
    *out = b;
    return VD_OK;
}

void cuda_pool_free(vd_backend *be, cuda_block *b)
{
    if (!b)
        return;
    cuda_pool *p = &cuda_ctx_of(be)->pool;
    pthread_mutex_lock(&p->lock);
    p->live_bytes -= b->size;
    if (b->cls >= 0) {
        b->next = p->free_list[b->cls];
        p->free_list[b->cls] = b;
        p->cached_bytes += b->size;
        b = NULL;
    }
    pthread_mutex_unlock(&p->lock);
    if (b) {
        /* Uncached: wait for enqueued users, then give it back. */
        cudaStreamSynchronize(cuda_ctx_of(be)->stream);
        cudaFree(b->ptr);
        free(b);
    }
}

/* ---- exact, uncached allocations (offloading's long-lived buffers) -------------- */

vd_status cuda_pool_alloc_exact(vd_backend *be, size_t size, const char *what, cuda_block **out)
{
    cuda_ctx *c = cuda_ctx_of(be);
    cuda_pool *p = &c->pool;
    *out = NULL;
    if (size > MAX_REQUEST)
        return out_of_memory(be, size, what, cudaErrorMemoryAllocation);
    cuda_block *b = calloc(1, sizeof *b);
    if (!b)
        return vd_error(VD_ERR_OUT_OF_MEMORY, "%s: out of host memory", be->name);
    cudaSetDevice(c->device);
    const size_t got = size ? size : 1;
    void *ptr = NULL;
    cudaError_t e = cudaMalloc(&ptr, got);
    if (e == cudaErrorMemoryAllocation) {
        cudaGetLastError();
        cuda_pool_release_cached(be);
        e = cudaMalloc(&ptr, got);
    }
    if (e != cudaSuccess) {
        cudaGetLastError();
        free(b);
        if (e == cudaErrorMemoryAllocation)
            return out_of_memory(be, size, what, e);
        return vd_error(VD_ERR_DEVICE, "%s: cudaMalloc of %zu bytes for %s failed: %s (%s)", be->name, size,
                        what ? what : "a buffer", cudaGetErrorString(e), cudaGetErrorName(e));
    }
    b->ptr = ptr;
    b->size = got;
    b->cls = -1;
    pthread_mutex_lock(&p->lock);
    p->live_bytes += got;
    if (p->live_bytes > p->peak_bytes)
        p->peak_bytes = p->live_bytes;
    pthread_mutex_unlock(&p->lock);
    *out = b;
    return VD_OK;
}

void cuda_pool_reset_peak(vd_backend *be)
{
    cuda_pool *p = &cuda_ctx_of(be)->pool;
    pthread_mutex_lock(&p->lock);
    p->peak_bytes = p->live_bytes;
    pthread_mutex_unlock(&p->lock);
}

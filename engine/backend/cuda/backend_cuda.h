/* CUDA-specific entry points beyond the backend interface: pinned host
 * memory (for weight offloading: copies from it run at full PCIe speed and
 * can overlap compute) and the caching allocator's bookkeeping.
 *
 * Every function exists in every build; without CUDA they fail with
 * VD_ERR_DEVICE (vd_backend_cuda_stream gives NULL). */
#ifndef VD_BACKEND_CUDA_H
#define VD_BACKEND_CUDA_H

#include <stddef.h>

#include "backend/backend.h"

/* `size` bytes of page-locked host memory, usable by every device
 * (cudaHostAllocPortable).  Failure: VD_ERR_OUT_OF_MEMORY (with the size
 * and what to do) or VD_ERR_DEVICE (no CUDA).  size 0 gives NULL. */
vd_status vd_backend_cuda_host_alloc(size_t size, void **out);
/* Free memory from vd_backend_cuda_host_alloc (NULL is ignored). */
void vd_backend_cuda_host_free(void *p);

typedef struct vd_cuda_memory_stats {
    size_t live_bytes;         /* handed out by the backend's allocator */
    size_t cached_bytes;       /* freed, kept for reuse */
    size_t peak_bytes;         /* the most live_bytes ever */
    size_t device_free_bytes;  /* cudaMemGetInfo */
    size_t device_total_bytes;
} vd_cuda_memory_stats;

/* The allocator's counters and the device's free/total memory. */
vd_status vd_backend_cuda_memory(vd_backend *be, vd_cuda_memory_stats *out);

/* The backend's stream (a cudaStream_t) on which every op is enqueued, for
 * callers that time ops with CUDA events or order their own work after
 * them. */
void *vd_backend_cuda_stream(vd_backend *be);

/* Give every cached (free) block back to the driver, e.g. before another
 * library or process needs the memory. */
vd_status vd_backend_cuda_release_cached(vd_backend *be);

/* `size` bytes of VRAM in one allocation of exactly that size (no size
 * class rounding, never cached: vd_buffer_free hands it straight back to
 * the driver), counted in the allocator's live and peak bytes.  For
 * long-lived buffers such as packed weights and staging slots.  `what`
 * names it in an out-of-memory message. */
vd_status vd_backend_cuda_buffer_alloc_exact(vd_backend *be, size_t size, const char *what, vd_buffer **out);

/* Set the allocator's peak to its live bytes now (to measure one phase). */
void vd_backend_cuda_reset_peak(vd_backend *be);

#endif

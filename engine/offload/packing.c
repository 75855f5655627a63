#include "offload/packing.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cuda_runtime.h>

#include "backend/cuda/backend_cuda.h"
#include "core/error.h"
#include "offload/devices.h"

enum { DEFAULT_STAGING = 64 << 20 };

static void warn(vd_packed_model *pm, const char *fmt, ...) VD_PRINTF(2, 3);
static void warn(vd_packed_model *pm, const char *fmt, ...)
{
    size_t n = strlen(pm->warnings);
    if (n + 3 >= sizeof pm->warnings)
        return;
    if (n) {
        memcpy(pm->warnings + n, "; ", 3);
        n += 2;
    }
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(pm->warnings + n, sizeof pm->warnings - n, fmt, ap);
    va_end(ap);
}

static vd_status cuda_fail(cudaError_t e, const char *what, const char *unit, int dev)
{
    cudaGetLastError();
    vd_status s = e == cudaErrorMemoryAllocation ? VD_ERR_OUT_OF_MEMORY : VD_ERR_DEVICE;
    return vd_error(s, "cuda:%d: %s for %s failed: %s (%s)", dev, what, unit, cudaGetErrorString(e),
                    cudaGetErrorName(e));
}

/* Loading: two pinned staging halves, one copy stream per GPU used. */
typedef struct loader {
    void *half[2];
    bool half_pinned;
    size_t half_bytes;
    cudaStream_t busy[2];              /* the stream that last read each half (NULL: free) */
    int next;                          /* the half to fill next */
    cudaStream_t stream[VD_PLAN_MAX_GPUS];
} loader;

static vd_status loader_stream(loader *ld, int dev, cudaStream_t *out)
{
    if (!ld->stream[dev]) {
        cudaError_t e = cudaSetDevice(dev);
        if (e == cudaSuccess)
            e = cudaStreamCreateWithFlags(&ld->stream[dev], cudaStreamNonBlocking);
        if (e != cudaSuccess)
            return cuda_fail(e, "creating a copy stream", "loading weights", dev);
    }
    *out = ld->stream[dev];
    return VD_OK;
}

static vd_status loader_wait(loader *ld, int h)
{
    if (!ld->busy[h])
        return VD_OK;
    cudaError_t e = cudaStreamSynchronize(ld->busy[h]);
    ld->busy[h] = NULL;
    if (e != cudaSuccess) {
        cudaGetLastError();
        return vd_error(VD_ERR_DEVICE, "copying weights to the GPU failed: %s (%s)", cudaGetErrorString(e),
                        cudaGetErrorName(e));
    }
    return VD_OK;
}

/* The unit's image into device memory of `dev`, through the staging halves. */
static vd_status upload_unit(loader *ld, const vd_pack_unit *pu, int dev, void *dst)
{
    cudaStream_t s = NULL;
    VD_TRY(loader_stream(ld, dev, &s));
    for (uint64_t off = 0; off < pu->bytes; off += ld->half_bytes) {
        const int h = ld->next;
        ld->next ^= 1;
        const size_t n = pu->bytes - off < ld->half_bytes ? (size_t)(pu->bytes - off) : ld->half_bytes;
        VD_TRY(loader_wait(ld, h));
        VD_TRY(vd_pack_fill(pu, off, n, ld->half[h]));
        cudaError_t e = cudaSetDevice(dev);
        if (e == cudaSuccess)
            e = cudaMemcpyAsync((uint8_t *)dst + off, ld->half[h], n, cudaMemcpyHostToDevice, s);
        if (e != cudaSuccess)
            return cuda_fail(e, "copying packed weights", pu->name, dev);
        ld->busy[h] = s;
    }
    return VD_OK;
}

static vd_status loader_finish(loader *ld)
{
    vd_status st = loader_wait(ld, 0);
    vd_status s2 = loader_wait(ld, 1);
    return st != VD_OK ? st : s2;
}

static void loader_free(loader *ld)
{
    for (int g = 0; g < VD_PLAN_MAX_GPUS; g++)
        if (ld->stream[g]) {
            cudaSetDevice(g);
            cudaStreamSynchronize(ld->stream[g]);
            cudaStreamDestroy(ld->stream[g]);
        }
    for (int h = 0; h < 2; h++) {
        if (ld->half_pinned)
            vd_backend_cuda_host_free(ld->half[h]);
        else
            free(ld->half[h]);
    }
    cudaGetLastError();
}

static const char *mb(uint64_t b, char *buf, size_t size)
{
    snprintf(buf, size, "%.1f MB", (double)b / 1e6);
    return buf;
}

vd_status vd_pack_model(vd_backend *be, const vd_pack_layout *l, const vd_plan *plan, const vd_offload_options *o,
                        vd_packed_model **out)
{
    *out = NULL;
    if (!be || be->kind != VD_DEVICE_CUDA)
        return vd_error(VD_ERR_INVALID_ARGUMENT, "packing for offloading needs a CUDA backend");
    if (plan->n_units != l->n)
        return vd_error(VD_ERR_INVALID_ARGUMENT, "the plan has %d units, the layout %d", plan->n_units, l->n);
    vd_offload_options defaults = vd_offload_options_default();
    if (!o)
        o = &defaults;
    const int compute = be->device_index;
    int prev = 0;
    cudaGetDevice(&prev);
    vd_packed_model *pm = calloc(1, sizeof *pm);
    if (pm)
        pm->units = calloc((size_t)l->n, sizeof *pm->units);
    if (!pm || !pm->units) {
        free(pm);
        return vd_error(VD_ERR_OUT_OF_MEMORY, "out of memory");
    }
    pm->be = be;
    pm->n = l->n;
    for (int u = 0; u < l->n; u++)
        pm->units[u].device = -1;

    loader ld;
    memset(&ld, 0, sizeof ld);
    const size_t staging = o->staging_bytes ? (size_t)o->staging_bytes : DEFAULT_STAGING;
    ld.half_bytes = staging / 2 / VD_PACK_ALIGN * VD_PACK_ALIGN;
    if (ld.half_bytes < VD_PACK_ALIGN)
        ld.half_bytes = VD_PACK_ALIGN;
    vd_status st = VD_OK;
    bool needs_staging = false;
    for (int u = 0; u < l->n; u++)
        needs_staging = needs_staging || plan->units[u].tier != VD_TIER_HOST;
    if (needs_staging) {
        ld.half_pinned = true;
        for (int h = 0; h < 2 && ld.half_pinned; h++)
            if (vd_backend_cuda_host_alloc(ld.half_bytes, &ld.half[h]) != VD_OK)
                ld.half_pinned = false;
        if (!ld.half_pinned) {
            for (int h = 0; h < 2; h++) {
                vd_backend_cuda_host_free(ld.half[h]);
                ld.half[h] = aligned_alloc(VD_PACK_ALIGN, ld.half_bytes);
                if (!ld.half[h])
                    st = vd_error(VD_ERR_OUT_OF_MEMORY, "out of host memory for the load staging buffers");
            }
            warn(pm, "the load staging buffers are not pinned (loading is slower)");
        }
    }

    /* peer access to the donors */
    bool seen[VD_PLAN_MAX_GPUS] = {false};
    for (int u = 0; st == VD_OK && u < l->n; u++) {
        const vd_plan_place *p = &plan->units[u];
        if (p->tier != VD_TIER_DONOR)
            continue;
        if (p->device < 0 || p->device >= VD_PLAN_MAX_GPUS || p->device == compute) {
            st = vd_error(VD_ERR_INVALID_ARGUMENT, "%s is placed on donor cuda:%d, which is %s", l->units[u].name,
                          p->device, p->device == compute ? "the compute device" : "out of range");
            break;
        }
        if (!seen[p->device]) {
            seen[p->device] = true;
            pm->donor_peer[p->device] = !o->no_peer && vd_offload_enable_peer(compute, p->device);
        }
    }

    uint64_t pin_refused = 0, pin_failed = 0;
    for (int u = 0; st == VD_OK && u < l->n; u++) {
        const vd_pack_unit *pu = &l->units[u];
        vd_packed_unit *q = &pm->units[u];
        q->tier = plan->units[u].tier;
        q->bytes = pu->bytes;
        char what[64];
        snprintf(what, sizeof what, "the packed weights of %s", pu->name);
        if (q->tier == VD_TIER_RESIDENT) {
            q->device = compute;
            st = vd_backend_cuda_buffer_alloc_exact(be, pu->bytes, what, &q->buf);
            if (st == VD_OK) {
                q->data = q->buf->data;
                st = upload_unit(&ld, pu, compute, q->data);
            }
            if (st == VD_OK)
                pm->resident_bytes += pu->bytes;
        } else if (q->tier == VD_TIER_DONOR) {
            const int g = plan->units[u].device;
            q->device = g;
            cudaError_t e = cudaSetDevice(g);
            if (e == cudaSuccess)
                e = cudaMalloc(&q->data, pu->bytes);
            if (e != cudaSuccess) {
                q->data = NULL;
                size_t fb = 0, tb = 0;
                cudaGetLastError();
                cudaMemGetInfo(&fb, &tb);
                cudaGetLastError();
                char s1[32], s2[32];
                st = vd_error(e == cudaErrorMemoryAllocation ? VD_ERR_OUT_OF_MEMORY : VD_ERR_DEVICE,
                              "donor cuda:%d: cannot allocate %s for %s (%s free): %s; give it a smaller share", g,
                              mb(pu->bytes, s1, sizeof s1), pu->name, mb(fb, s2, sizeof s2), cudaGetErrorString(e));
                break;
            }
            st = upload_unit(&ld, pu, g, q->data);
            if (st == VD_OK)
                pm->donor_bytes[g] += pu->bytes;
        } else {
            q->device = -1;
            bool allowed = o->pin_limit < 0 || pm->pinned_bytes + pu->bytes <= (uint64_t)o->pin_limit;
            if (allowed && vd_backend_cuda_host_alloc(pu->bytes, &q->data) == VD_OK) {
                q->pinned = true;
            } else {
                if (allowed)
                    pin_failed += pu->bytes;
                else
                    pin_refused += pu->bytes;
                q->data = aligned_alloc(VD_PACK_ALIGN, (size_t)pu->bytes);
                if (!q->data) {
                    char s1[32];
                    st = vd_error(VD_ERR_OUT_OF_MEMORY, "out of host memory for %s (%s); keep more weights on GPUs",
                                  pu->name, mb(pu->bytes, s1, sizeof s1));
                    break;
                }
            }
            st = vd_pack_fill(pu, 0, pu->bytes, q->data);
            if (st == VD_OK) {
                if (q->pinned)
                    pm->pinned_bytes += pu->bytes;
                else
                    pm->pageable_bytes += pu->bytes;
            }
        }
        if (st != VD_OK)
            st = vd_error_context(st, "packing %s: ", pu->name);
    }
    if (st == VD_OK)
        st = loader_finish(&ld);
    loader_free(&ld);
    char s1[32];
    if (pin_failed)
        warn(pm, "pinning host memory failed for %s of weights, which stay in pageable memory: their copies are "
                 "slower and block the host (free host memory or raise ulimit -l)",
             mb(pin_failed, s1, sizeof s1));
    if (pin_refused)
        warn(pm, "VD_OFFLOAD_PIN_LIMIT keeps %s of weights in pageable memory: their copies are slower and block "
                 "the host",
             mb(pin_refused, s1, sizeof s1));
    cudaSetDevice(prev);
    if (st != VD_OK) {
        vd_packed_model_free(pm);
        return st;
    }
    *out = pm;
    return VD_OK;
}

void vd_packed_model_free(vd_packed_model *pm)
{
    if (!pm)
        return;
    int prev = 0;
    cudaGetDevice(&prev);
    for (int u = 0; pm->units && u < pm->n; u++) {
        vd_packed_unit *q = &pm->units[u];
        if (!q->data)
            continue;
        if (q->tier == VD_TIER_RESIDENT) {
            cudaSetDevice(pm->be->device_index);
            vd_buffer_free(q->buf);
        } else if (q->tier == VD_TIER_DONOR) {
            cudaSetDevice(q->device);
            cudaFree(q->data);
        } else if (q->pinned) {
            vd_backend_cuda_host_free(q->data);
        } else {
            free(q->data);
        }
    }
    cudaGetLastError();
    cudaSetDevice(prev);
    free(pm->units);
    free(pm);
}

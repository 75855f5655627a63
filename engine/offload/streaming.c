#include "offload/streaming.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cuda_runtime.h>

#include "backend/cuda/backend_cuda.h"
#include "core/error.h"
#include "offload/devices.h"
#include "offload/ring.h"

enum {
    BOUNCE_BYTES = 32 << 20, /* each of the two staging buffers of a donor without peer access */
    SIM_CHUNK = 8 << 20      /* pacing granularity of a simulated link */
};

static vd_status cuda_fail(cudaError_t e, const char *what, int dev)
{
    cudaGetLastError();
    vd_status s = e == cudaErrorMemoryAllocation ? VD_ERR_OUT_OF_MEMORY : VD_ERR_DEVICE;
    return vd_error(s, "cuda:%d: %s failed: %s (%s)", dev, what, cudaGetErrorString(e), cudaGetErrorName(e));
}

#define CU(call, what, dev)                              \
    do {                                                 \
        cudaError_t cu_e_ = (call);                      \
        if (cu_e_ != cudaSuccess)                        \
            return cuda_fail(cu_e_, what, dev);          \
    } while (0)

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static void sleep_until(double t)
{
    for (;;) {
        double d = t - now_s();
        if (d <= 0)
            return;
        struct timespec ts = {(time_t)d, (long)((d - (double)(time_t)d) * 1e9)};
        if (nanosleep(&ts, NULL) == 0 || errno != EINTR)
            return;
    }
}

/* ---- links ---------------------------------------------------------------------------- */

typedef struct cuda_link {
    bool used;
    int link;                   /* VD_LINK_* */
    int compute, donor;         /* donor: -1 for the host link */
    bool staged;                /* donor without peer access */
    cudaStream_t stream;        /* compute device: copies into the slots */
    cudaStream_t donor_stream;  /* staged: donor → bounce */
    void *bounce[2];
    cudaEvent_t d2h_done[2];    /* donor device */
    cudaEvent_t h2d_done[2];    /* compute device */
    int next_bounce;
    double cap_bps;             /* simulation cap; 0 = none */
    pthread_mutex_t pace_lock;
    bool pace_lock_init;
    double pace_next;           /* when the simulated link is free */
    uint64_t bytes;
} cuda_link;

typedef struct pace_rec {
    cuda_link *link;
    uint64_t bytes;  /* 0: wait for the end of the previous chunk */
} pace_rec;

static void CUDART_CB pace(void *p)
{
    pace_rec r = *(pace_rec *)p;
    free(p);
    cuda_link *L = r.link;
    pthread_mutex_lock(&L->pace_lock);
    double until;
    if (r.bytes == 0) {
        until = L->pace_next;
    } else {
        double t = now_s();
        until = t > L->pace_next ? t : L->pace_next;
        L->pace_next = until + (double)r.bytes / L->cap_bps;
    }
    pthread_mutex_unlock(&L->pace_lock);
    sleep_until(until);
}

static vd_status enqueue_pace(cuda_link *L, uint64_t bytes)
{
    pace_rec *r = malloc(sizeof *r);
    if (!r)
        return vd_error(VD_ERR_OUT_OF_MEMORY, "out of memory");
    r->link = L;
    r->bytes = bytes;
    cudaError_t e = cudaLaunchHostFunc(L->stream, pace, r);
    if (e != cudaSuccess) {
        free(r);
        return cuda_fail(e, "cudaLaunchHostFunc (link simulation)", L->compute);
    }
    return VD_OK;
}

static vd_status link_init(cuda_link *L, int link, int compute, bool peer, double cap_bps)
{
    memset(L, 0, sizeof *L);
    L->used = true;
    L->link = link;
    L->compute = compute;
    L->donor = link == VD_LINK_HOST ? -1 : link - 1;
    L->staged = L->donor >= 0 && !peer;
    L->cap_bps = cap_bps;
    if (pthread_mutex_init(&L->pace_lock, NULL) != 0)
        return vd_error(VD_ERR_INTERNAL, "pthread_mutex_init failed");
    L->pace_lock_init = true;
    CU(cudaSetDevice(compute), "cudaSetDevice", compute);
    CU(cudaStreamCreateWithFlags(&L->stream, cudaStreamNonBlocking), "creating a copy stream", compute);
    if (!L->staged)
        return VD_OK;
    for (int h = 0; h < 2; h++)
        CU(cudaEventCreateWithFlags(&L->h2d_done[h], cudaEventDisableTiming), "creating an event", compute);
    CU(cudaSetDevice(L->donor), "cudaSetDevice", L->donor);
    CU(cudaStreamCreateWithFlags(&L->donor_stream, cudaStreamNonBlocking), "creating a copy stream", L->donor);
    for (int h = 0; h < 2; h++)
        CU(cudaEventCreateWithFlags(&L->d2h_done[h], cudaEventDisableTiming), "creating an event", L->donor);
    for (int h = 0; h < 2; h++) {
        vd_status st = vd_backend_cuda_host_alloc(BOUNCE_BYTES, &L->bounce[h]);
        if (st != VD_OK)
            return vd_error_context(st, "the staging buffers of donor cuda:%d: ", L->donor);
    }
    CU(cudaSetDevice(compute), "cudaSetDevice", compute);
    return VD_OK;
}

static void link_destroy(cuda_link *L)
{
    if (!L->used)
        return;
    if (L->donor_stream) {
        cudaSetDevice(L->donor);
        cudaStreamSynchronize(L->donor_stream);
    }
    if (L->stream) {
        cudaSetDevice(L->compute);
        cudaStreamSynchronize(L->stream); /* also runs the pending host functions */
        cudaStreamDestroy(L->stream);
    }
    for (int h = 0; h < 2; h++) {
        if (L->h2d_done[h])
            cudaEventDestroy(L->h2d_done[h]);
        vd_backend_cuda_host_free(L->bounce[h]);
    }
    if (L->donor_stream) {
        cudaSetDevice(L->donor);
        for (int h = 0; h < 2; h++)
            if (L->d2h_done[h])
                cudaEventDestroy(L->d2h_done[h]);
        cudaStreamDestroy(L->donor_stream);
    }
    if (L->pace_lock_init)
        pthread_mutex_destroy(&L->pace_lock);
    cudaGetLastError();
    cudaSetDevice(L->compute);
    L->used = false;
}

/* One piece of a copy: src (host or donor memory) → dst on the compute GPU. */
static vd_status link_piece(cuda_link *L, uint8_t *dst, const uint8_t *src, size_t n)
{
    if (L->donor < 0) {
        CU(cudaMemcpyAsync(dst, src, n, cudaMemcpyHostToDevice, L->stream), "copying weights from the host",
           L->compute);
        return VD_OK;
    }
    if (!L->staged) {
        CU(cudaMemcpyPeerAsync(dst, L->compute, src, L->donor, n, L->stream), "copying weights from a donor",
           L->compute);
        return VD_OK;
    }
    const int h = L->next_bounce;
    L->next_bounce ^= 1;
    CU(cudaSetDevice(L->donor), "cudaSetDevice", L->donor);
    CU(cudaStreamWaitEvent(L->donor_stream, L->h2d_done[h], 0), "ordering a staged copy", L->donor);
    CU(cudaMemcpyAsync(L->bounce[h], src, n, cudaMemcpyDeviceToHost, L->donor_stream),
       "copying weights from the donor to host memory", L->donor);
    CU(cudaEventRecord(L->d2h_done[h], L->donor_stream), "cudaEventRecord", L->donor);
    CU(cudaSetDevice(L->compute), "cudaSetDevice", L->compute);
    CU(cudaStreamWaitEvent(L->stream, L->d2h_done[h], 0), "ordering a staged copy", L->compute);
    CU(cudaMemcpyAsync(dst, L->bounce[h], n, cudaMemcpyHostToDevice, L->stream),
       "copying staged weights to the GPU", L->compute);
    CU(cudaEventRecord(L->h2d_done[h], L->stream), "cudaEventRecord", L->compute);
    return VD_OK;
}

/* Enqueue a whole copy on the link's stream (after whatever waits the
 * caller enqueued there). */
static vd_status link_copy(cuda_link *L, void *dst, const void *src, uint64_t bytes)
{
    uint64_t piece = bytes;
    if (L->staged && piece > BOUNCE_BYTES)
        piece = BOUNCE_BYTES;
    if (L->cap_bps > 0 && piece > SIM_CHUNK)
        piece = SIM_CHUNK;
    if (piece == 0)
        piece = 1;
    for (uint64_t off = 0; off < bytes; off += piece) {
        const size_t n = (size_t)(bytes - off < piece ? bytes - off : piece);
        if (L->cap_bps > 0)
            VD_TRY(enqueue_pace(L, n));
        VD_TRY(link_piece(L, (uint8_t *)dst + off, (const uint8_t *)src + off, n));
    }
    if (L->cap_bps > 0)
        VD_TRY(enqueue_pace(L, 0));
    L->bytes += bytes;
    return VD_OK;
}

/* ---- the streamer ----------------------------------------------------------------------- */

typedef struct cuda_streamer {
    vd_streamer base;
    vd_backend *be;
    int compute;
    cudaStream_t compute_stream;
    const vd_packed_model *pm;
    vd_ring ring;
    bool ring_init;
    int depth;
    uint64_t slot_bytes;
    vd_buffer **slots;
    cudaEvent_t *copy_done, *compute_done;
    int *link_of;
    cuda_link links[VD_PLAN_MAX_LINKS];
    bool simulated;
} cuda_streamer;

static vd_status stream_copy(void *ctx, int unit, int slot)
{
    cuda_streamer *cs = ctx;
    cuda_link *L = &cs->links[cs->link_of[unit]];
    CU(cudaSetDevice(cs->compute), "cudaSetDevice", cs->compute);
    /* the slot's previous reader and writer first */
    CU(cudaStreamWaitEvent(L->stream, cs->compute_done[slot], 0), "ordering a weight copy", cs->compute);
    CU(cudaStreamWaitEvent(L->stream, cs->copy_done[slot], 0), "ordering a weight copy", cs->compute);
    const vd_packed_unit *q = &cs->pm->units[unit];
    VD_TRY(link_copy(L, cs->slots[slot]->data, q->data, q->bytes));
    CU(cudaEventRecord(cs->copy_done[slot], L->stream), "cudaEventRecord", cs->compute);
    return VD_OK;
}

static vd_status cs_acquire(vd_streamer *s, int unit, void **base)
{
    cuda_streamer *cs = (cuda_streamer *)s;
    int slot;
    VD_TRY(vd_ring_acquire(&cs->ring, unit, &slot));
    CU(cudaSetDevice(cs->compute), "cudaSetDevice", cs->compute);
    cudaError_t e = cudaStreamWaitEvent(cs->compute_stream, cs->copy_done[slot], 0);
    if (e != cudaSuccess) {
        vd_ring_reset(&cs->ring);
        return cuda_fail(e, "waiting for a weight copy", cs->compute);
    }
    *base = cs->slots[slot]->data;
    return VD_OK;
}

static vd_status cs_release(vd_streamer *s, int unit)
{
    cuda_streamer *cs = (cuda_streamer *)s;
    if (unit < 0 || unit >= cs->ring.n_units || cs->ring.unit_slot[unit] < 0)
        return vd_error(VD_ERR_INTERNAL, "streamer: release of unit %d, which holds no slot", unit);
    const int slot = cs->ring.unit_slot[unit];
    CU(cudaSetDevice(cs->compute), "cudaSetDevice", cs->compute);
    cudaError_t e = cudaEventRecord(cs->compute_done[slot], cs->compute_stream);
    if (e != cudaSuccess) {
        vd_ring_reset(&cs->ring);
        return cuda_fail(e, "cudaEventRecord", cs->compute);
    }
    return vd_ring_release(&cs->ring, unit);
}

static void cs_stats(const vd_streamer *s, vd_streamer_stats *out)
{
    const cuda_streamer *cs = (const cuda_streamer *)s;
    out->copies = cs->ring.copies;
    out->skipped = cs->ring.skipped;
    out->restarts = cs->ring.restarts;
    for (int l = 0; l < VD_PLAN_MAX_LINKS; l++)
        out->link_bytes[l] = cs->links[l].bytes;
    out->depth = cs->depth;
    out->slot_bytes = cs->slot_bytes;
    out->simulated = cs->simulated;
}

static void cs_destroy(vd_streamer *s)
{
    cuda_streamer *cs = (cuda_streamer *)s;
    int prev = 0;
    cudaGetDevice(&prev);
    for (int l = 0; l < VD_PLAN_MAX_LINKS; l++)
        link_destroy(&cs->links[l]);
    cudaSetDevice(cs->compute);
    if (cs->compute_stream)
        cudaStreamSynchronize(cs->compute_stream);
    for (int i = 0; i < cs->depth; i++) {
        if (cs->copy_done && cs->copy_done[i])
            cudaEventDestroy(cs->copy_done[i]);
        if (cs->compute_done && cs->compute_done[i])
            cudaEventDestroy(cs->compute_done[i]);
        if (cs->slots && cs->slots[i])
            vd_buffer_free(cs->slots[i]);
    }
    cudaGetLastError();
    cudaSetDevice(prev);
    free(cs->slots);
    free(cs->copy_done);
    free(cs->compute_done);
    free(cs->link_of);
    if (cs->ring_init)
        vd_ring_free(&cs->ring);
    free(cs);
}

static const vd_streamer_ops cuda_ops = {cs_acquire, cs_release, cs_stats, cs_destroy};

static vd_status cs_setup(cuda_streamer *cs, const vd_plan *plan, const vd_offload_options *o)
{
    const vd_packed_model *pm = cs->pm;
    int order[VD_PLAN_MAX_UNITS], K = 0;
    for (int u = 0; u < pm->n; u++) {
        const vd_packed_unit *q = &pm->units[u];
        cs->link_of[u] = q->tier == VD_TIER_DONOR ? VD_LINK_DONOR(q->device) : VD_LINK_HOST;
        if (q->tier == VD_TIER_RESIDENT)
            continue;
        order[K++] = u;
        if (q->bytes > cs->slot_bytes)
            cs->slot_bytes = q->bytes;
        cuda_link *L = &cs->links[cs->link_of[u]];
        if (!L->used) {
            double cap = vd_link_sim_cap(&o->sim, cs->link_of[u]);
            cs->simulated = cs->simulated || cap > 0;
            VD_TRY(link_init(L, cs->link_of[u], cs->compute, q->tier == VD_TIER_DONOR && pm->donor_peer[q->device],
                             cap));
        }
    }
    if (K == 0)
        return vd_error(VD_ERR_INVALID_ARGUMENT, "streamer: the plan streams no unit");
    cs->depth = plan->depth;
    if (cs->depth < 1 || cs->depth > K)
        return vd_error(VD_ERR_INVALID_ARGUMENT, "streamer: a ring of %d slots for %d streamed units", cs->depth, K);
    cs->slots = calloc((size_t)cs->depth, sizeof *cs->slots);
    cs->copy_done = calloc((size_t)cs->depth, sizeof *cs->copy_done);
    cs->compute_done = calloc((size_t)cs->depth, sizeof *cs->compute_done);
    if (!cs->slots || !cs->copy_done || !cs->compute_done)
        return vd_error(VD_ERR_OUT_OF_MEMORY, "out of memory");
    CU(cudaSetDevice(cs->compute), "cudaSetDevice", cs->compute);
    for (int i = 0; i < cs->depth; i++) {
        char what[48];
        snprintf(what, sizeof what, "ring slot %d of %d", i, cs->depth);
        VD_TRY(vd_backend_cuda_buffer_alloc_exact(cs->be, cs->slot_bytes, what, &cs->slots[i]));
        CU(cudaEventCreateWithFlags(&cs->copy_done[i], cudaEventDisableTiming), "creating an event", cs->compute);
        CU(cudaEventCreateWithFlags(&cs->compute_done[i], cudaEventDisableTiming), "creating an event", cs->compute);
    }
    VD_TRY(vd_ring_init(&cs->ring, pm->n, order, K, cs->depth, stream_copy, cs));
    cs->ring_init = true;
    return VD_OK;
}

vd_status vd_streamer_cuda_new(vd_backend *be, const vd_packed_model *pm, const vd_plan *plan,
                               const vd_offload_options *o, vd_streamer **out)
{
    *out = NULL;
    if (!be || be->kind != VD_DEVICE_CUDA || !pm || !plan)
        return vd_error(VD_ERR_INVALID_ARGUMENT, "vd_streamer_cuda_new: needs a CUDA backend, packed units and a plan");
    vd_offload_options defaults = vd_offload_options_default();
    if (!o)
        o = &defaults;
    cuda_streamer *cs = calloc(1, sizeof *cs);
    if (!cs)
        return vd_error(VD_ERR_OUT_OF_MEMORY, "out of memory");
    cs->base.ops = &cuda_ops;
    cs->be = be;
    cs->pm = pm;
    cs->compute = be->device_index;
    cs->compute_stream = (cudaStream_t)vd_backend_cuda_stream(be);
    cs->link_of = calloc((size_t)pm->n, sizeof *cs->link_of);
    int prev = 0;
    cudaGetDevice(&prev);
    vd_status st = cs->link_of ? cs_setup(cs, plan, o) : vd_error(VD_ERR_OUT_OF_MEMORY, "out of memory");
    cudaSetDevice(prev);
    if (st != VD_OK) {
        cs_destroy(&cs->base);
        return vd_error_context(st, "setting up the weight streamer on %s: ", be->name);
    }
    *out = &cs->base;
    return VD_OK;
}

/* ---- measuring a link --------------------------------------------------------------------- */

vd_status vd_offload_measure_link(vd_backend *be, int link, uint64_t bytes, const vd_offload_options *o, bool peer,
                                  double *bps)
{
    *bps = 0;
    if (!be || be->kind != VD_DEVICE_CUDA)
        return vd_error(VD_ERR_INVALID_ARGUMENT, "measuring a link needs a CUDA backend");
    vd_offload_options defaults = vd_offload_options_default();
    if (!o)
        o = &defaults;
    const int compute = be->device_index, donor = link == VD_LINK_HOST ? -1 : link - 1;
    int prev = 0;
    cudaGetDevice(&prev);
    cuda_link L;
    memset(&L, 0, sizeof L);
    void *src = NULL, *dst = NULL;
    cudaEvent_t t0 = NULL, t1 = NULL;
    char name[16];
    vd_link_name(link, name, sizeof name);
    if (donor >= 0 && peer)
        peer = vd_offload_enable_peer(compute, donor);
    vd_status st = link_init(&L, link, compute, peer, vd_link_sim_cap(&o->sim, link));
    cudaError_t e = cudaSuccess;
    if (st == VD_OK) {
        if (donor < 0) {
            st = vd_backend_cuda_host_alloc(bytes, &src);
        } else {
            e = cudaSetDevice(donor);
            if (e == cudaSuccess)
                e = cudaMalloc(&src, bytes);
            if (e != cudaSuccess) {
                src = NULL;
                st = cuda_fail(e, "allocating the link test buffer", donor);
            }
        }
    }
    if (st == VD_OK) {
        e = cudaSetDevice(compute);
        if (e == cudaSuccess)
            e = cudaMalloc(&dst, bytes);
        if (e == cudaSuccess)
            e = cudaEventCreate(&t0);
        if (e == cudaSuccess)
            e = cudaEventCreate(&t1);
        if (e != cudaSuccess)
            st = cuda_fail(e, "preparing the link test", compute);
    }
    /* the warm-up moves the whole buffer: first touches and lazy mappings stay out of the timing */
    if (st == VD_OK)
        st = link_copy(&L, dst, src, bytes);
    if (st == VD_OK && (e = cudaStreamSynchronize(L.stream)) != cudaSuccess)
        st = cuda_fail(e, "the warm-up copy", compute);
    if (st == VD_OK) {
        L.pace_next = 0;
        if ((e = cudaEventRecord(t0, L.stream)) != cudaSuccess)
            st = cuda_fail(e, "cudaEventRecord", compute);
    }
    if (st == VD_OK)
        st = link_copy(&L, dst, src, bytes);
    float ms = 0;
    if (st == VD_OK) {
        e = cudaEventRecord(t1, L.stream);
        if (e == cudaSuccess)
            e = cudaEventSynchronize(t1);
        if (e == cudaSuccess)
            e = cudaEventElapsedTime(&ms, t0, t1);
        if (e != cudaSuccess)
            st = cuda_fail(e, "timing the link test copy", compute);
    }
    if (st == VD_OK)
        *bps = ms > 0 ? (double)bytes / (ms * 1e-3) : 0;
    link_destroy(&L);
    cudaSetDevice(compute);
    if (t0)
        cudaEventDestroy(t0);
    if (t1)
        cudaEventDestroy(t1);
    if (dst)
        cudaFree(dst);
    if (src) {
        if (donor < 0) {
            vd_backend_cuda_host_free(src);
        } else {
            cudaSetDevice(donor);
            cudaFree(src);
        }
    }
    cudaGetLastError();
    cudaSetDevice(prev);
    if (st != VD_OK)
        return vd_error_context(st, "measuring the %s link to %s: ", name, be->name);
    return VD_OK;
}

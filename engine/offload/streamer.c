#include "offload/streamer.h"

#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "offload/allocation.h"
#include "offload/layout.h"
#include "offload/ring.h"

vd_offload_options vd_offload_options_default(void)
{
    vd_offload_options o;
    memset(&o, 0, sizeof o);
    o.pin_limit = -1;
    return o;
}

vd_status vd_offload_options_from_env(vd_offload_options *o)
{
    *o = vd_offload_options_default();
    VD_TRY(vd_link_sim_from_env(&o->sim));
    const char *v = getenv("VD_OFFLOAD_PIN_LIMIT");
    if (v && v[0]) {
        double b;
        if (!vd_parse_bytes(v, &b) || b > 9e18)
            return vd_error(VD_ERR_INVALID_ARGUMENT, "VD_OFFLOAD_PIN_LIMIT='%s' is not a size (e.g. 0, 512mb, 8gb)", v);
        o->pin_limit = (int64_t)b;
    }
    v = getenv("VD_OFFLOAD_NO_PEER");
    o->no_peer = v && v[0] && strcmp(v, "0") != 0;
    return VD_OK;
}

vd_status vd_streamer_acquire(vd_streamer *s, int unit, void **base)
{
    if (!s || !base)
        return vd_error(VD_ERR_INVALID_ARGUMENT, "vd_streamer_acquire: streamer or base is NULL");
    return s->ops->acquire(s, unit, base);
}

vd_status vd_streamer_release(vd_streamer *s, int unit)
{
    if (!s)
        return vd_error(VD_ERR_INVALID_ARGUMENT, "vd_streamer_release: streamer is NULL");
    return s->ops->release(s, unit);
}

void vd_streamer_get_stats(const vd_streamer *s, vd_streamer_stats *out)
{
    memset(out, 0, sizeof *out);
    if (s)
        s->ops->stats(s, out);
}

void vd_streamer_free(vd_streamer *s)
{
    if (s)
        s->ops->destroy(s);
}

/* ---- the host streamer ------------------------------------------------------------- */

typedef struct host_streamer {
    vd_streamer base;
    vd_ring ring;
    void *const *units;
    const uint64_t *bytes;
    int *link_of;
    void **slots;
    uint64_t slot_bytes;
    uint64_t link_bytes[VD_PLAN_MAX_LINKS];
} host_streamer;

static vd_status host_copy(void *ctx, int unit, int slot)
{
    host_streamer *h = ctx;
    memcpy(h->slots[slot], h->units[unit], h->bytes[unit]);
    h->link_bytes[h->link_of ? h->link_of[unit] : VD_LINK_HOST] += h->bytes[unit];
    return VD_OK;
}

static vd_status host_acquire(vd_streamer *s, int unit, void **base)
{
    host_streamer *h = (host_streamer *)s;
    int slot;
    VD_TRY(vd_ring_acquire(&h->ring, unit, &slot));
    *base = h->slots[slot];
    return VD_OK;
}

static vd_status host_release(vd_streamer *s, int unit) { return vd_ring_release(&((host_streamer *)s)->ring, unit); }

static void host_stats(const vd_streamer *s, vd_streamer_stats *out)
{
    const host_streamer *h = (const host_streamer *)s;
    out->copies = h->ring.copies;
    out->skipped = h->ring.skipped;
    out->restarts = h->ring.restarts;
    memcpy(out->link_bytes, h->link_bytes, sizeof out->link_bytes);
    out->depth = h->ring.depth;
    out->slot_bytes = h->slot_bytes;
}

static void host_destroy(vd_streamer *s)
{
    host_streamer *h = (host_streamer *)s;
    if (h->slots)
        for (int i = 0; i < h->ring.depth; i++)
            free(h->slots[i]);
    free(h->slots);
    free(h->link_of);
    vd_ring_free(&h->ring);
    free(h);
}

static const vd_streamer_ops host_ops = {host_acquire, host_release, host_stats, host_destroy};

vd_status vd_streamer_host_new(void *const *units, const uint64_t *bytes, const int *link_of, int n_units,
                               const int *order, int n_order, int depth, vd_streamer **out)
{
    *out = NULL;
    host_streamer *h = calloc(1, sizeof *h);
    if (!h)
        return vd_error(VD_ERR_OUT_OF_MEMORY, "out of memory for the host streamer");
    h->base.ops = &host_ops;
    h->units = units;
    h->bytes = bytes;
    vd_status st = vd_ring_init(&h->ring, n_units, order, n_order, depth, host_copy, h);
    if (st != VD_OK) {
        free(h);
        return st;
    }
    for (int i = 0; i < n_order; i++)
        if (bytes[order[i]] > h->slot_bytes)
            h->slot_bytes = bytes[order[i]];
    h->slots = calloc((size_t)depth, sizeof *h->slots);
    if (link_of) {
        h->link_of = malloc((size_t)n_units * sizeof *h->link_of);
        if (h->link_of)
            memcpy(h->link_of, link_of, (size_t)n_units * sizeof *link_of);
    }
    st = h->slots && (!link_of || h->link_of) ? VD_OK : vd_error(VD_ERR_OUT_OF_MEMORY, "out of memory for the ring");
    for (int i = 0; st == VD_OK && i < depth; i++) {
        h->slots[i] = aligned_alloc(VD_PACK_ALIGN, (size_t)h->slot_bytes);
        if (!h->slots[i])
            st = vd_error(VD_ERR_OUT_OF_MEMORY, "out of host memory for a ring slot of %llu bytes",
                          (unsigned long long)h->slot_bytes);
    }
    if (st != VD_OK) {
        host_destroy(&h->base);
        return st;
    }
    *out = &h->base;
    return VD_OK;
}

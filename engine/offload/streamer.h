/* The weight streamer as the models see it: acquire a unit (its bytes are,
 * or will be by the time the compute stream reaches them, at the returned
 * address on the compute device), run the ops that read it, release it.
 *
 *   void *base;
 *   vd_streamer_acquire(s, unit, &base);   // compute waits for the copy
 *   ... enqueue the unit's ops with tensors bound at base ...
 *   vd_streamer_release(s, unit);          // slot reuse waits for those ops
 *
 * Implementations: the CUDA streamer (offload/streaming.h: a ring of slots
 * in VRAM, one copy stream per link, events between copies and compute)
 * and the host streamer below (units and slots in host memory, plain
 * memcpy), which runs the same ring schedule on the CPU backend so the
 * schedule and the models' binding are tested on machines without a GPU.
 *
 * The options of offloading are here too, with their environment variables
 * (read by vd_offload_options_from_env):
 *   VD_SIMULATE_LINK_GBPS=6.8 | host=6.8,cuda:1=50.8
 *                         cap link speeds by pacing copies (SIMULATED)
 *   VD_OFFLOAD_PIN_LIMIT=bytes   pin at most this much of the host tier
 *                         ("0": none); the rest is pageable, with a warning
 *                         (tests the path taken when pinning fails)
 *   VD_OFFLOAD_NO_PEER=1  stage donor copies through pinned host memory
 *                         even where peer access works */
#ifndef VD_OFFLOAD_STREAMER_H
#define VD_OFFLOAD_STREAMER_H

#include <stdbool.h>
#include <stdint.h>

#include "offload/plan.h"
#include "vdiff/status.h"

typedef struct vd_offload_options {
    vd_link_sim sim;          /* link speed caps (SIMULATED); inactive = real speed */
    int64_t pin_limit;        /* bytes of the host tier that may be pinned; -1 = all */
    bool no_peer;             /* stage donor copies through host memory */
    uint64_t staging_bytes;   /* bounded pinned buffers for loading and staging; 0 = 64 MiB */
} vd_offload_options;

/* Defaults (no caps, pin everything, peer copies, 64 MiB staging). */
vd_offload_options vd_offload_options_default(void);
/* Defaults overridden by the environment; errors name the variable. */
vd_status vd_offload_options_from_env(vd_offload_options *o);

typedef struct vd_streamer_stats {
    uint64_t copies;                      /* unit copies issued */
    uint64_t skipped;                     /* not needed: the slot held the unit */
    uint64_t restarts;                    /* schedule restarts (out-of-order acquires) */
    uint64_t link_bytes[VD_PLAN_MAX_LINKS];
    int depth;
    uint64_t slot_bytes;
    bool simulated;
} vd_streamer_stats;

typedef struct vd_streamer vd_streamer;

typedef struct vd_streamer_ops {
    vd_status (*acquire)(vd_streamer *s, int unit, void **base);
    vd_status (*release)(vd_streamer *s, int unit);
    void (*stats)(const vd_streamer *s, vd_streamer_stats *out);
    void (*destroy)(vd_streamer *s);
} vd_streamer_ops;

/* Implementations embed this as their first member. */
struct vd_streamer {
    const vd_streamer_ops *ops;
};

vd_status vd_streamer_acquire(vd_streamer *s, int unit, void **base);
vd_status vd_streamer_release(vd_streamer *s, int unit);
void vd_streamer_get_stats(const vd_streamer *s, vd_streamer_stats *out);
/* Waits for outstanding copies; NULL is ignored. */
void vd_streamer_free(vd_streamer *s);

/* The host streamer: unit u's image at units[u] (units[u] may be NULL for
 * units never streamed), bytes[u] its size; `order` the streamed units in
 * execution order; `depth` slots of the largest streamed size, in host
 * memory.  `link_of[u]` (may be NULL) is counted in the stats. */
vd_status vd_streamer_host_new(void *const *units, const uint64_t *bytes, const int *link_of, int n_units,
                               const int *order, int n_order, int depth, vd_streamer **out);

#endif

/* The staging ring's schedule, apart from how bytes move (pure C, shared by
 * the CUDA streamer and the host one).
 *
 * The streamed units, in execution order, cycle through `depth` slots: the
 * n-th copy goes into slot n mod depth.  acquire(u) hands out u's slot;
 * release(u) says u's readers are ordered (on the GPU: an event after its
 * kernels), and issues the copy of the unit `depth` positions later (past
 * the end of the pass: the next pass's first units) into that slot.  A
 * copy into a slot that already holds that unit is skipped (with as many
 * streamed units as slots, nothing moves after the first pass).
 *
 * An acquire out of the expected order (a pass cancelled midway, an error)
 * restarts the schedule at that unit: its copy and the next depth − 1 are
 * issued again.  The copy callback must order each copy after the previous
 * readers and writers of its slot. */
#ifndef VD_OFFLOAD_RING_H
#define VD_OFFLOAD_RING_H

#include <stdint.h>

#include "vdiff/status.h"

/* Copy `unit`'s bytes into `slot`. */
typedef vd_status (*vd_ring_copy_fn)(void *ctx, int unit, int slot);

typedef struct vd_ring {
    int n_units;
    int depth;        /* slots */
    int n_order;      /* streamed units */
    int *order;       /* [n_order] unit ids in execution order */
    int *pos_of;      /* [n_units] position in order, -1 if not streamed */
    int *slot_unit;   /* [depth] unit whose copy is in (or on its way to) the slot, -1 */
    int *unit_slot;   /* [n_units] slot, -1 */
    int expect;       /* position of the next acquire; -1: not started */
    int next_pos;     /* position of the next unit to copy */
    int next_slot;    /* the slot it goes into (after a restart) */
    vd_ring_copy_fn copy;
    void *ctx;
    uint64_t copies, skipped, restarts;
} vd_ring;

/* order: the streamed units (n_order ≥ 1, each < n_units, increasing);
 * 1 ≤ depth ≤ n_order. */
vd_status vd_ring_init(vd_ring *r, int n_units, const int *order, int n_order, int depth, vd_ring_copy_fn copy,
                       void *ctx);
void vd_ring_free(vd_ring *r);

/* The slot holding (or about to hold) `unit`; copies issued as needed. */
vd_status vd_ring_acquire(vd_ring *r, int unit, int *slot);
/* `unit` is done with its slot: the next copy goes there. */
vd_status vd_ring_release(vd_ring *r, int unit);
/* Forget what the slots hold (after a failed copy). */
void vd_ring_reset(vd_ring *r);

#endif

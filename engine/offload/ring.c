#include "offload/ring.h"

#include <stdlib.h>
#include <string.h>

#include "core/error.h"

vd_status vd_ring_init(vd_ring *r, int n_units, const int *order, int n_order, int depth, vd_ring_copy_fn copy,
                       void *ctx)
{
    memset(r, 0, sizeof *r);
    if (n_order < 1 || depth < 1 || depth > n_order || n_units < 1 || !order || !copy)
        return vd_error(VD_ERR_INVALID_ARGUMENT, "ring: %d streamed units and %d slots (need 1 ≤ slots ≤ units)",
                        n_order, depth);
    for (int i = 0; i < n_order; i++)
        if (order[i] < 0 || order[i] >= n_units || (i && order[i] <= order[i - 1]))
            return vd_error(VD_ERR_INVALID_ARGUMENT, "ring: streamed unit %d at position %d is out of order", order[i],
                            i);
    r->order = malloc((size_t)n_order * sizeof *r->order);
    r->pos_of = malloc((size_t)n_units * sizeof *r->pos_of);
    r->slot_unit = malloc((size_t)depth * sizeof *r->slot_unit);
    r->unit_slot = malloc((size_t)n_units * sizeof *r->unit_slot);
    if (!r->order || !r->pos_of || !r->slot_unit || !r->unit_slot) {
        vd_ring_free(r);
        return vd_error(VD_ERR_OUT_OF_MEMORY, "out of memory for the ring's schedule");
    }
    r->n_units = n_units;
    r->depth = depth;
    r->n_order = n_order;
    memcpy(r->order, order, (size_t)n_order * sizeof *order);
    for (int u = 0; u < n_units; u++)
        r->pos_of[u] = -1;
    for (int i = 0; i < n_order; i++)
        r->pos_of[order[i]] = i;
    r->copy = copy;
    r->ctx = ctx;
    vd_ring_reset(r);
    return VD_OK;
}

void vd_ring_free(vd_ring *r)
{
    free(r->order);
    free(r->pos_of);
    free(r->slot_unit);
    free(r->unit_slot);
    memset(r, 0, sizeof *r);
}

void vd_ring_reset(vd_ring *r)
{
    for (int s = 0; s < r->depth; s++)
        r->slot_unit[s] = -1;
    for (int u = 0; u < r->n_units; u++)
        r->unit_slot[u] = -1;
    r->expect = -1;
    r->next_pos = 0;
    r->next_slot = 0;
}

/* Put `unit` into `slot` (no copy if it is there already). */
static vd_status issue(vd_ring *r, int unit, int slot)
{
    if (r->slot_unit[slot] == unit) {
        r->skipped++;
        return VD_OK;
    }
    if (r->slot_unit[slot] >= 0)
        r->unit_slot[r->slot_unit[slot]] = -1;
    if (r->unit_slot[unit] >= 0)
        r->slot_unit[r->unit_slot[unit]] = -1;
    r->slot_unit[slot] = -1;
    r->unit_slot[unit] = -1;
    vd_status st = r->copy(r->ctx, unit, slot);
    if (st != VD_OK) {
        vd_ring_reset(r);
        return st;
    }
    r->slot_unit[slot] = unit;
    r->unit_slot[unit] = slot;
    r->copies++;
    return VD_OK;
}

vd_status vd_ring_acquire(vd_ring *r, int unit, int *slot)
{
    if (unit < 0 || unit >= r->n_units || r->pos_of[unit] < 0)
        return vd_error(VD_ERR_INTERNAL, "ring: unit %d is not streamed", unit);
    const int p = r->pos_of[unit];
    if (r->expect != p || r->unit_slot[unit] < 0) {
        /* (re)start the schedule here: this unit and the next depth − 1 */
        if (r->expect >= 0)
            r->restarts++;
        int s = r->unit_slot[unit] >= 0 ? r->unit_slot[unit] : r->next_slot;
        for (int k = 0; k < r->depth; k++) {
            int u = r->order[(p + k) % r->n_order];
            vd_status st = issue(r, u, (s + k) % r->depth);
            if (st != VD_OK)
                return st;
        }
        r->next_pos = (p + r->depth) % r->n_order;
        r->next_slot = s;
        r->expect = p;
    }
    *slot = r->unit_slot[unit];
    return VD_OK;
}

vd_status vd_ring_release(vd_ring *r, int unit)
{
    if (unit < 0 || unit >= r->n_units || r->pos_of[unit] < 0 || r->unit_slot[unit] < 0)
        return vd_error(VD_ERR_INTERNAL, "ring: release of unit %d, which holds no slot", unit);
    const int s = r->unit_slot[unit];
    r->expect = (r->pos_of[unit] + 1) % r->n_order;
    const int u = r->order[r->next_pos];
    r->next_pos = (r->next_pos + 1) % r->n_order;
    r->next_slot = (s + 1) % r->depth;
    return issue(r, u, s);
}

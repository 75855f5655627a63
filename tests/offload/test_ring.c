/* The ring schedule with a fake copier that models the slots: a copy must
 * never land in a slot a unit is reading (between acquire and release),
 * every acquire must find its unit's bytes, and the copies issued must be
 * the cyclic prefetch the planner's predictor assumes. */
#include <stdbool.h>
#include <string.h>

#include "offload/ring.h"
#include "test_util.h"

enum { MAX_SLOTS = 8, MAX_UNITS = 64 };

typedef struct fake {
    int content[MAX_SLOTS];   /* unit whose bytes the slot holds */
    bool reading[MAX_SLOTS];  /* between acquire and release */
    int log_unit[4096], log_slot[4096];
    int n_log;
    bool fail_next;
} fake;

static vd_status copy(void *ctx, int unit, int slot)
{
    fake *f = ctx;
    if (f->fail_next) {
        f->fail_next = false;
        return vd_error(VD_ERR_DEVICE, "injected copy failure");
    }
    CHECKF(!f->reading[slot], "copy of unit %d into slot %d while it is being read", unit, slot);
    f->content[slot] = unit;
    if (f->n_log < 4096) {
        f->log_unit[f->n_log] = unit;
        f->log_slot[f->n_log++] = slot;
    }
    return VD_OK;
}

/* Run one pass over units 0..n_units-1 (streamed ones through the ring);
 * stop before unit `stop` (a cancelled pass) if stop >= 0. */
static void pass(vd_ring *r, fake *f, int n_units, const bool *streamed, int stop)
{
    for (int u = 0; u < n_units; u++) {
        if (u == stop)
            return;
        if (!streamed[u])
            continue;
        int slot = -1;
        CHECK_OK(vd_ring_acquire(r, u, &slot));
        CHECKF(slot >= 0 && slot < r->depth && f->content[slot] == u, "acquire(%d) gave slot %d holding %d", u, slot,
               slot >= 0 ? f->content[slot] : -9);
        f->reading[slot] = true; /* the unit's ops run here */
        f->reading[slot] = false;
        CHECK_OK(vd_ring_release(r, u)); /* the next copy may now use the slot */
    }
}

static void run(int n_units, const int *order, int K, int depth)
{
    bool streamed[MAX_UNITS] = {false};
    for (int i = 0; i < K; i++)
        streamed[order[i]] = true;
    fake f;
    memset(&f, 0, sizeof f);
    for (int s = 0; s < MAX_SLOTS; s++)
        f.content[s] = -1;
    vd_ring r;
    CHECK_OK(vd_ring_init(&r, n_units, order, K, depth, copy, &f));
    for (int p = 0; p < 3; p++)
        pass(&r, &f, n_units, streamed, -1);
    if (K > depth) {
        /* cyclic: copy n is order[n mod K] into slot n mod depth */
        CHECKF(r.copies == (uint64_t)(3 * K + depth), "K %d depth %d: %llu copies, want %d", K, depth,
               (unsigned long long)r.copies, 3 * K + depth);
        for (int n = 0; n < f.n_log; n++)
            CHECKF(f.log_unit[n] == order[n % K] && f.log_slot[n] == n % depth, "copy %d: unit %d slot %d", n,
                   f.log_unit[n], f.log_slot[n]);
    } else {
        /* as many units as slots: copied once, then they stay */
        CHECKF(r.copies == (uint64_t)K && r.skipped == (uint64_t)(3 * K), "K %d depth %d: %llu copies, %llu skipped", K,
               depth, (unsigned long long)r.copies, (unsigned long long)r.skipped);
    }
    CHECK(r.restarts == 0);
    /* a pass cancelled halfway, then full passes: one restart, still correct */
    int stop = order[K / 2];
    pass(&r, &f, n_units, streamed, stop);
    pass(&r, &f, n_units, streamed, -1);
    pass(&r, &f, n_units, streamed, -1);
    CHECK(r.restarts == (K > 1 ? 1u : 0u));
    /* a failed copy resets the schedule; the next pass recovers */
    f.fail_next = true;
    int slot;
    vd_status st = VD_OK;
    for (int u = 0; u < n_units && st == VD_OK; u++) {
        if (!streamed[u])
            continue;
        st = vd_ring_acquire(&r, u, &slot);
        if (st == VD_OK)
            st = vd_ring_release(&r, u);
    }
    if (K > depth) {
        CHECK(st == VD_ERR_DEVICE);
    } else { /* nothing is copied any more: nothing can fail */
        CHECK(st == VD_OK);
        f.fail_next = false;
    }
    pass(&r, &f, n_units, streamed, -1);
    pass(&r, &f, n_units, streamed, -1);
    vd_ring_free(&r);
}

int main(void)
{
    const int all[10] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10};
    for (int d = 1; d <= 4; d++)
        run(11, all, 10, d);
    const int some[4] = {2, 5, 6, 9};
    for (int d = 1; d <= 4; d++)
        run(11, some, 4, d);
    const int one[1] = {7};
    run(11, one, 1, 1);
    /* bad arguments */
    vd_ring r;
    fake f;
    CHECK_FAILS(vd_ring_init(&r, 11, some, 4, 5, copy, &f), VD_ERR_INVALID_ARGUMENT);
    const int unordered[3] = {5, 2, 9};
    CHECK_FAILS(vd_ring_init(&r, 11, unordered, 3, 2, copy, &f), VD_ERR_INVALID_ARGUMENT);
    CHECK_OK(vd_ring_init(&r, 11, some, 4, 2, copy, &f));
    int slot;
    CHECK_FAILS(vd_ring_acquire(&r, 3, &slot), VD_ERR_INTERNAL); /* not streamed */
    CHECK_FAILS(vd_ring_release(&r, 2), VD_ERR_INTERNAL);        /* holds no slot */
    vd_ring_free(&r);
    return test_finish("test_ring");
}

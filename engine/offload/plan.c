#include "offload/plan.h"

#include <ctype.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"

/* Passes replayed by the predictor; the last one is reported. */
enum { PREDICT_PASSES = 4 };

const char *vd_tier_name(vd_tier t)
{
    switch (t) {
    case VD_TIER_RESIDENT: return "resident";
    case VD_TIER_DONOR: return "donor";
    case VD_TIER_HOST: return "host";
    }
    return "?";
}

const char *vd_link_name(int link, char *buf, int size)
{
    if (link == VD_LINK_HOST)
        snprintf(buf, (size_t)size, "host");
    else
        snprintf(buf, (size_t)size, "cuda:%d", link - 1);
    return buf;
}

/* Decimal units, as the allocation strings use them. */
static const char *sz(uint64_t bytes, char *buf, size_t size)
{
    if (bytes >= 1000000000ull)
        snprintf(buf, size, "%.2f GB", (double)bytes / 1e9);
    else
        snprintf(buf, size, "%.1f MB", (double)bytes / 1e6);
    return buf;
}

static void note(vd_plan *p, const char *fmt, ...) VD_PRINTF(2, 3);
static void note(vd_plan *p, const char *fmt, ...)
{
    size_t n = strlen(p->notes);
    if (n + 3 >= sizeof p->notes)
        return;
    if (n) {
        memcpy(p->notes + n, "; ", 3);
        n += 2;
    }
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(p->notes + n, sizeof p->notes - n, fmt, ap);
    va_end(ap);
}

static const char *quote(const vd_plan_input *in) { return in->alloc_text ? in->alloc_text : ""; }

/* "allocation 'X'" or, without one, what the default does. */
static const char *what(const vd_plan_input *in, char *buf, size_t size)
{
    if (in->alloc_text && in->alloc_text[0])
        snprintf(buf, size, "allocation '%s'", in->alloc_text);
    else
        snprintf(buf, size, "keeping every weight on the compute GPU");
    return buf;
}

static const vd_plan_gpu *find_gpu(const vd_plan_input *in, int ordinal)
{
    for (int i = 0; i < in->n_gpus; i++)
        if (in->gpus[i].index == ordinal)
            return &in->gpus[i];
    return NULL;
}

static void gpu_list(const vd_plan_input *in, char *buf, size_t size)
{
    size_t n = 0;
    buf[0] = '\0';
    for (int i = 0; i < in->n_gpus && n + 12 < size; i++)
        n += (size_t)snprintf(buf + n, size - n, "%scuda:%d", i ? ", " : "", in->gpus[i].index);
}

static vd_status no_such_gpu(const vd_plan_input *in, int ordinal)
{
    char list[256];
    gpu_list(in, list, sizeof list);
    return vd_error(VD_ERR_INVALID_ARGUMENT,
                    "allocation '%s': cuda:%d does not exist; this machine has %d GPU%s (%s): name one of those, "
                    "or cpu",
                    quote(in), ordinal, in->n_gpus, in->n_gpus == 1 ? "" : "s", in->n_gpus ? list : "none");
}

static vd_status check_input(const vd_plan_input *in)
{
    if (!in || !in->units || in->n_units < 1)
        return vd_error(VD_ERR_INVALID_ARGUMENT, "planner: no units (the stem and the blocks) given");
    if (in->n_units > VD_PLAN_MAX_UNITS)
        return vd_error(VD_ERR_UNSUPPORTED, "planner: %d units, at most %d are supported", in->n_units,
                        VD_PLAN_MAX_UNITS);
    if (in->n_gpus < 0 || in->n_gpus > VD_PLAN_MAX_GPUS)
        return vd_error(VD_ERR_INVALID_ARGUMENT, "planner: %d GPUs (at most %d)", in->n_gpus, VD_PLAN_MAX_GPUS);
    for (int i = 0; i < in->n_gpus; i++)
        if (in->gpus[i].index < 0 || in->gpus[i].index >= VD_PLAN_MAX_GPUS)
            return vd_error(VD_ERR_INVALID_ARGUMENT, "planner: GPU ordinal %d out of range", in->gpus[i].index);
    if (!find_gpu(in, in->compute))
        return vd_error(VD_ERR_DEVICE, "the compute device cuda:%d is not among this machine's %d GPU%s", in->compute,
                        in->n_gpus, in->n_gpus == 1 ? "" : "s");
    if (in->depth < 0 || in->depth > VD_PLAN_MAX_DEPTH)
        return vd_error(VD_ERR_INVALID_ARGUMENT, "ring depth %d: use 1 to %d (default %d)", in->depth,
                        VD_PLAN_MAX_DEPTH, VD_PLAN_DEFAULT_DEPTH);
    if (in->activation_bytes > (uint64_t)1 << 60)
        return vd_error(VD_ERR_INVALID_ARGUMENT, "planner: activation estimate out of range");
    return VD_OK;
}

static void init_plan(const vd_plan_input *in, vd_plan *p)
{
    memset(p, 0, sizeof *p);
    p->mode = in->alloc ? in->alloc->mode : VD_ALLOC_RESIDENT;
    p->n_units = in->n_units;
    p->compute = in->compute;
    p->depth_requested = in->depth ? in->depth : VD_PLAN_DEFAULT_DEPTH;
    p->activation_bytes = in->activation_bytes;
    p->simulated = in->simulated;
    for (int i = 0; i < in->n_units; i++) {
        p->units[i].tier = VD_TIER_RESIDENT;
        p->units[i].device = -1;
    }
}

/* ---- shares --------------------------------------------------------------------- */

/* A device that takes a share of the model, in the order the allocation
 * lists it. */
typedef struct target {
    vd_alloc_device dev;
    double quota;   /* bytes */
} target;

typedef struct targets {
    target t[VD_ALLOC_MAX_ENTRIES + 2];
    int n;
    int overflow;   /* index of the target that takes blocks beyond every share */
} targets;

static int target_of(targets *ts, vd_alloc_device d)
{
    for (int i = 0; i < ts->n; i++)
        if (ts->t[i].dev.is_cuda == d.is_cuda && (!d.is_cuda || ts->t[i].dev.index == d.index))
            return i;
    ts->t[ts->n].dev = d;
    ts->t[ts->n].quota = 0;
    return ts->n++;
}

static double device_total(const vd_plan_input *in, vd_alloc_device d)
{
    if (!d.is_cuda)
        return (double)in->host_total_bytes;
    const vd_plan_gpu *g = find_gpu(in, d.index);
    return g ? (double)g->total_bytes : 0;
}

static vd_status check_devices(const vd_plan_input *in)
{
    const vd_allocation *a = in->alloc;
    for (int i = 0; i < a->n_entries; i++)
        if (a->entries[i].device.is_cuda && !find_gpu(in, a->entries[i].device.index))
            return no_such_gpu(in, a->entries[i].device.index);
    for (int i = 0; i < a->n_donors; i++) {
        if (!a->donors[i].is_cuda)
            continue;
        if (!find_gpu(in, a->donors[i].index))
            return no_such_gpu(in, a->donors[i].index);
        if (a->donors[i].index == in->compute)
            return vd_error(VD_ERR_INVALID_ARGUMENT,
                            "allocation '%s': donor cuda:%d is the compute device; a donor must be another GPU or "
                            "cpu",
                            quote(in), in->compute);
    }
    if (a->has_compute && (!a->compute.is_cuda || a->compute.index != in->compute)) {
        char d[16];
        return vd_error(VD_ERR_INVALID_ARGUMENT,
                        "allocation '%s' names %s as the compute device, but the model computes on cuda:%d; make "
                        "them agree (set the device, or drop the '#%s' part)",
                        quote(in), vd_alloc_device_str(a->compute, d, sizeof d), in->compute,
                        vd_alloc_device_str(a->compute, d, sizeof d));
    }
    return VD_OK;
}

static void entry_text(const vd_alloc_entry *e, vd_alloc_mode mode, char *buf, size_t size)
{
    char d[16];
    vd_alloc_device_str(e->device, d, sizeof d);
    if (e->rest)
        snprintf(buf, size, "%s,*", d);
    else if (mode == VD_ALLOC_BYTES)
        snprintf(buf, size, "%s,%.4g GB", d, e->value / 1e9);
    else if (mode == VD_ALLOC_RATIO)
        snprintf(buf, size, "%s,%g%%", d, e->value);
    else
        snprintf(buf, size, "%s,%g", d, e->value);
}

/* The byte share of every listed device (docs at the top of plan.h). */
static vd_status shares(const vd_plan_input *in, double model, targets *ts, vd_plan *p)
{
    const vd_allocation *a = in->alloc;
    const vd_alloc_device compute = {.is_cuda = true, .index = in->compute};
    const vd_alloc_device cpu = {.is_cuda = false, .index = 0};
    memset(ts, 0, sizeof *ts);
    char et[96];
    if (a->mode == VD_ALLOC_VIRTUAL_VRAM) {
        double v = a->virtual_vram_bytes < model ? a->virtual_vram_bytes : model;
        int c = target_of(ts, compute);
        ts->t[c].quota = model - v;
        for (int i = 0; i < a->n_donors; i++) {
            int k = target_of(ts, a->donors[i]);
            double cap = device_total(in, a->donors[i]);
            if (!a->donors[i].is_cuda && cap <= 0)
                cap = v; /* host size unknown: no cap */
            double q = v < cap ? v : cap;
            ts->t[k].quota += q;
            v -= q;
        }
        if (v > 0) {
            char s[32];
            note(p, "the donors hold only part of the virtual VRAM; %s stays on cuda:%d", sz((uint64_t)v, s, sizeof s),
                 in->compute);
            ts->t[c].quota += v;
        }
        ts->overflow = c;
        return VD_OK;
    }
    int rest = -1;
    double remaining = model;
    double pct_all = 0;
    for (int i = 0; i < a->n_entries; i++) {
        pct_all += a->entries[i].rest ? 0 : a->entries[i].value;
        if (a->entries[i].rest)
            rest = i;
    }
    if (a->mode == VD_ALLOC_RATIO && rest >= 0 && pct_all > 100.0 + 1e-9)
        return vd_error(VD_ERR_INVALID_ARGUMENT,
                        "allocation '%s': with '*' the percentages are shares of the model and add up to %g%%, over "
                        "100%%; lower them or drop the '*' entry (then they are ratios)",
                        quote(in), pct_all);
    int idx[VD_ALLOC_MAX_ENTRIES] = {0};
    for (int i = 0; i < a->n_entries; i++)
        idx[i] = target_of(ts, a->entries[i].device);
    for (int i = 0; i < a->n_entries; i++) {
        const vd_alloc_entry *e = &a->entries[i];
        if (e->rest)
            continue;
        double q = 0;
        switch (a->mode) {
        case VD_ALLOC_BYTES: {
            double total = device_total(in, e->device);
            if (total > 0 && e->value > total) {
                char s1[32];
                entry_text(e, a->mode, et, sizeof et);
                return vd_error(VD_ERR_INVALID_ARGUMENT,
                                "allocation '%s': '%s' asks for more than the device has (%s in all); lower it",
                                quote(in), et, sz((uint64_t)total, s1, sizeof s1));
            }
            q = e->value;
            break;
        }
        case VD_ALLOC_RATIO:
            q = rest >= 0 ? e->value / 100.0 * model : e->value / pct_all * model;
            break;
        case VD_ALLOC_FRACTION: {
            double total = device_total(in, e->device);
            if (total <= 0) {
                entry_text(e, a->mode, et, sizeof et);
                return vd_error(VD_ERR_INVALID_ARGUMENT,
                                "allocation '%s': '%s' is a fraction of the host's memory, whose size is unknown "
                                "here; give a size instead (e.g. cpu,*)",
                                quote(in), et);
            }
            q = e->value * total;
            break;
        }
        default: break;
        }
        if (a->mode != VD_ALLOC_RATIO || rest >= 0) {
            q = q < remaining ? q : remaining;
            remaining -= q;
        }
        ts->t[idx[i]].quota += q;
    }
    if (rest >= 0) {
        ts->t[idx[rest]].quota += remaining > 0 ? remaining : 0;
        ts->overflow = idx[rest];
    } else if (a->mode == VD_ALLOC_BYTES) {
        ts->overflow = target_of(ts, cpu); /* DisTorch: the rest goes to cpu */
        if (remaining > 0.5)
            ts->t[ts->overflow].quota += remaining;
    } else if (a->mode == VD_ALLOC_FRACTION) {
        ts->overflow = target_of(ts, compute); /* DisTorch's orphans */
        if (remaining > 0.5) {
            char s[32];
            note(p, "the listed fractions hold only part of the model; the rest (%s) stays on cuda:%d",
                 sz((uint64_t)remaining, s, sizeof s), in->compute);
            ts->t[ts->overflow].quota += remaining;
        }
    } else {
        ts->overflow = a->n_entries > 0 ? idx[a->n_entries - 1] : target_of(ts, compute);
    }
    return VD_OK;
}

/* ---- positions ------------------------------------------------------------------- */

/* Links in the order they should appear (the allocation's order), with
 * their block counts. */
typedef struct link_count {
    int link;
    int count;
} link_count;

static void place_blocks(const vd_plan_input *in, const link_count *lc, int n_lc, vd_plan_place *places)
{
    const int N = in->n_units - 1;
    int K = 0;
    for (int i = 0; i < n_lc; i++)
        K += lc[i].count;
    for (int i = 0; i <= N; i++) {
        places[i].tier = VD_TIER_RESIDENT;
        places[i].device = -1;
    }
    if (K == 0)
        return;
    int link_at[VD_PLAN_MAX_UNITS];
    if (in->positions == VD_PLACE_CONTIGUOUS) {
        int pos = 0;
        for (int i = 0; i < n_lc; i++)
            for (int k = 0; k < lc[i].count; k++)
                link_at[pos++] = lc[i].link;
        for (int j = 0; j < K; j++) {
            int u = 1 + j;
            places[u].tier = link_at[j] == VD_LINK_HOST ? VD_TIER_HOST : VD_TIER_DONOR;
            places[u].device = link_at[j] == VD_LINK_HOST ? -1 : link_at[j] - 1;
        }
        return;
    }
    /* spread: streamed block j at the middle of its N/K stretch; sources
     * interleaved by largest deficit */
    int given[VD_ALLOC_MAX_ENTRIES + 2] = {0};
    for (int j = 0; j < K; j++) {
        int best = -1;
        double best_deficit = -1e300;
        for (int i = 0; i < n_lc; i++) {
            if (given[i] >= lc[i].count)
                continue;
            double deficit = (double)lc[i].count * (double)(j + 1) / (double)K - (double)given[i];
            if (deficit > best_deficit + 1e-12) {
                best_deficit = deficit;
                best = i;
            }
        }
        given[best]++;
        int64_t pos = ((int64_t)(2 * j + 1) * N) / (2 * (int64_t)K);
        int u = 1 + (int)pos;
        places[u].tier = lc[best].link == VD_LINK_HOST ? VD_TIER_HOST : VD_TIER_DONOR;
        places[u].device = lc[best].link == VD_LINK_HOST ? -1 : lc[best].link - 1;
    }
}

/* ---- bookkeeping, checks, prediction ---------------------------------------------- */

static int link_of(const vd_plan_place *p) { return p->tier == VD_TIER_HOST ? VD_LINK_HOST : VD_LINK_DONOR(p->device); }

static double unit_compute(const vd_plan_input *in, int u)
{
    if (u == 0)
        return in->units[0].compute_s > 0 ? in->units[0].compute_s : 0;
    return in->units[u].compute_s > 0 ? in->units[u].compute_s : in->block_compute_s;
}

bool vd_plan_predict(const vd_plan_input *in, vd_plan *plan)
{
    plan->has_prediction = false;
    plan->predicted_s = 0;
    plan->compute_s = 0;
    for (int l = 0; l < VD_PLAN_MAX_LINKS; l++)
        plan->link_busy_s[l] = 0;
    const int N = plan->n_units - 1;
    int order[VD_PLAN_MAX_UNITS];
    int K = 0;
    bool known = true;
    for (int u = 1; u <= N; u++) {
        double c = unit_compute(in, u);
        if (!(c > 0))
            known = false;
        plan->compute_s += c;
        if (plan->units[u].tier != VD_TIER_RESIDENT) {
            order[K++] = u;
            if (!(in->link_bps[link_of(&plan->units[u])] > 0))
                known = false;
        }
    }
    if (!known)
        return false;
    const int d = plan->depth;
    for (int j = 0; j < K; j++) {
        int l = link_of(&plan->units[order[j]]);
        if (K > d)
            plan->link_busy_s[l] += (double)in->units[order[j]].bytes / in->link_bps[l];
    }
    if (K == 0) {
        plan->predicted_s = plan->compute_s;
        plan->has_prediction = true;
        return true;
    }
    const int total = PREDICT_PASSES * K;
    double *copy_end = malloc((size_t)total * sizeof *copy_end);
    if (!copy_end)
        return false;
    double link_free[VD_PLAN_MAX_LINKS] = {0};
    /* the first d copies are issued when the first pass starts */
    for (int n = 0; n < d && n < total; n++) {
        int u = order[n % K], l = link_of(&plan->units[u]);
        double e = link_free[l] + (double)in->units[u].bytes / in->link_bps[l];
        link_free[l] = e;
        copy_end[n] = e;
    }
    double t = 0, pass_end[PREDICT_PASSES];
    for (int pass = 0; pass < PREDICT_PASSES; pass++) {
        int j = 0;
        for (int u = 1; u <= N; u++) {
            double start = t;
            int n = -1;
            if (plan->units[u].tier != VD_TIER_RESIDENT) {
                n = pass * K + j++;
                if (copy_end[n] > start)
                    start = copy_end[n];
            }
            t = start + unit_compute(in, u);
            if (n >= 0 && n + d < total) {
                /* released: the next copy goes into this slot */
                int m = n + d, um = order[m % K], l = link_of(&plan->units[um]);
                if (K == d) {
                    copy_end[m] = copy_end[n]; /* the slot still holds that block: no copy */
                } else {
                    double s = link_free[l] > t ? link_free[l] : t;
                    double e = s + (double)in->units[um].bytes / in->link_bps[l];
                    link_free[l] = e;
                    copy_end[m] = e;
                }
            }
        }
        pass_end[pass] = t;
    }
    free(copy_end);
    plan->predicted_s = pass_end[PREDICT_PASSES - 1] - pass_end[PREDICT_PASSES - 2];
    plan->has_prediction = true;
    return true;
}

static vd_status finalize(const vd_plan_input *in, const vd_plan_place *places, uint64_t budget, vd_plan *p)
{
    const vd_plan_gpu *cg = find_gpu(in, in->compute);
    char s1[32], s2[32], s3[32], s4[32], s5[32];
    if (places[0].tier != VD_TIER_RESIDENT)
        return vd_error(VD_ERR_INVALID_ARGUMENT, "planner: the stem (unit 0) must stay resident on the compute GPU");
    p->stem_bytes = in->units[0].bytes;
    p->resident_bytes = p->host_bytes = p->slot_bytes = 0;
    memset(p->donor_bytes, 0, sizeof p->donor_bytes);
    p->n_streamed = 0;
    for (int u = 0; u < in->n_units; u++) {
        const vd_plan_place *pl = &places[u];
        p->units[u] = *pl;
        const uint64_t b = in->units[u].bytes;
        if (pl->tier == VD_TIER_RESIDENT) {
            p->units[u].device = -1;
            p->resident_bytes += b;
            continue;
        }
        if (pl->tier == VD_TIER_DONOR) {
            const vd_plan_gpu *g = find_gpu(in, pl->device);
            if (!g)
                return no_such_gpu(in, pl->device);
            if (pl->device == in->compute)
                return vd_error(VD_ERR_INVALID_ARGUMENT,
                                "planner: %s is placed on donor cuda:%d, which is the compute device",
                                in->units[u].name ? in->units[u].name : "a unit", pl->device);
            p->donor_bytes[pl->device] += b;
        } else if (pl->tier == VD_TIER_HOST) {
            p->units[u].device = -1;
            p->host_bytes += b;
        } else {
            return vd_error(VD_ERR_INVALID_ARGUMENT, "planner: unit %d has an unknown tier", u);
        }
        p->n_streamed++;
        if (b > p->slot_bytes)
            p->slot_bytes = b;
    }
    p->depth = p->n_streamed < p->depth_requested ? p->n_streamed : p->depth_requested;
    p->ring_bytes = (uint64_t)p->depth * p->slot_bytes;
    p->vram_bytes = p->resident_bytes + p->ring_bytes + p->activation_bytes;
    p->budget_bytes = budget;

    for (int g = 0; g < VD_PLAN_MAX_GPUS; g++) {
        if (!p->donor_bytes[g])
            continue;
        const vd_plan_gpu *gpu = find_gpu(in, g);
        if (p->donor_bytes[g] > gpu->free_bytes)
            return vd_error(VD_ERR_INVALID_ARGUMENT,
                            "allocation '%s': donor cuda:%d would hold %s of weights but has only %s free (of %s); "
                            "give it a smaller share",
                            quote(in), g, sz(p->donor_bytes[g], s1, sizeof s1), sz(gpu->free_bytes, s2, sizeof s2),
                            sz(gpu->total_bytes, s3, sizeof s3));
        if (!gpu->peer)
            note(p, "cuda:%d has no peer access to cuda:%d: its blocks are staged through pinned host memory", g,
                 in->compute);
    }
    if (in->host_free_bytes && p->host_bytes > in->host_free_bytes)
        return vd_error(VD_ERR_INVALID_ARGUMENT,
                        "allocation '%s': the host would hold %s of weights but has only %s of memory available; "
                        "keep more on the GPUs",
                        quote(in), sz(p->host_bytes, s1, sizeof s1), sz(in->host_free_bytes, s2, sizeof s2));
    char w[600];
    if (p->resident_bytes + p->ring_bytes > cg->free_bytes)
        return vd_error(VD_ERR_INVALID_ARGUMENT,
                        "%s: cuda:%d would hold %s of weights (%s resident + a ring of %d × %s) but has only %s free; "
                        "move more to donors or the host (e.g. \"auto\" or \"cuda:%d,8gb;cpu,*\")",
                        what(in, w, sizeof w), in->compute, sz(p->resident_bytes + p->ring_bytes, s1, sizeof s1),
                        sz(p->resident_bytes, s2, sizeof s2), p->depth, sz(p->slot_bytes, s3, sizeof s3),
                        sz(cg->free_bytes, s4, sizeof s4), in->compute);
    if (budget && p->vram_bytes > budget)
        return vd_error(VD_ERR_INVALID_ARGUMENT,
                        "%s needs %s on cuda:%d (%s resident + ring %s + activations %s), over the budget of %s; "
                        "move more weights off the GPU or raise the budget",
                        what(in, w, sizeof w), sz(p->vram_bytes, s1, sizeof s1), in->compute,
                        sz(p->resident_bytes, s2, sizeof s2), sz(p->ring_bytes, s3, sizeof s3),
                        sz(p->activation_bytes, s4, sizeof s4), sz(budget, s5, sizeof s5));
    if (p->vram_bytes > cg->free_bytes)
        note(p, "with the activations (%s) the plan needs %s on cuda:%d, more than its %s free: lower the resolution "
                "or move more weights off the GPU",
             sz(p->activation_bytes, s1, sizeof s1), sz(p->vram_bytes, s2, sizeof s2), in->compute,
             sz(cg->free_bytes, s3, sizeof s3));
    if (p->n_streamed > 0 && p->n_streamed <= p->depth_requested)
        note(p, "the ring holds all %d streamed block%s, so after the first pass nothing moves and they take as much "
                "VRAM as resident blocks would",
             p->n_streamed, p->n_streamed == 1 ? "" : "s");
    if (in->simulated)
        note(p, "link speeds are SIMULATED caps");
    vd_plan_predict(in, p);
    return VD_OK;
}

static uint64_t budget_of(const vd_plan_input *in)
{
    if (in->budget_bytes)
        return in->budget_bytes;
    if (in->alloc && in->alloc->mode == VD_ALLOC_AUTO && in->alloc->budget_bytes > 0)
        return (uint64_t)in->alloc->budget_bytes;
    return 0;
}

/* ---- auto ------------------------------------------------------------------------- */

/* Blocks that stream when `K` of them must: positions of the spread (or
 * contiguous) layout; fills `places` with HOST as a placeholder tier. */
static void streamed_set(const vd_plan_input *in, int K, vd_plan_place *places)
{
    link_count lc = {VD_LINK_HOST, K};
    place_blocks(in, &lc, 1, places);
}

static vd_status plan_auto(const vd_plan_input *in, vd_plan *p)
{
    const vd_plan_gpu *cg = find_gpu(in, in->compute);
    const int N = in->n_units - 1;
    char s1[32], s2[32], s3[32], s4[32], s5[32];
    uint64_t budget = budget_of(in);
    bool default_budget = budget == 0;
    if (default_budget)
        budget = cg->free_bytes;
    vd_plan_place places[VD_PLAN_MAX_UNITS];
    /* the fewest streamed blocks that fit */
    int K = -1;
    uint64_t need_all = 0, min_need = 0;
    for (int k = 0; k <= N; k++) {
        streamed_set(in, k, places);
        uint64_t res = 0, slot = 0;
        for (int u = 0; u <= N; u++) {
            if (places[u].tier == VD_TIER_RESIDENT)
                res += in->units[u].bytes;
            else if (in->units[u].bytes > slot)
                slot = in->units[u].bytes;
        }
        int d = k < p->depth_requested ? k : p->depth_requested;
        uint64_t need = res + (uint64_t)d * slot + in->activation_bytes;
        if (k == 0)
            need_all = need;
        if (k == N)
            min_need = need;
        if (need <= budget && K < 0)
            K = k;
    }
    if (K < 0) {
        uint64_t slot = 0;
        for (int u = 1; u <= N; u++)
            slot = in->units[u].bytes > slot ? in->units[u].bytes : slot;
        int d = N < p->depth_requested ? N : p->depth_requested;
        return vd_error(VD_ERR_INVALID_ARGUMENT,
                        "allocation '%s': the VRAM budget of %s%s is too small: even with every block streamed, "
                        "cuda:%d needs %s (the stem %s + a ring of %d × %s + activations %s); raise the budget to at "
                        "least that, or lower the resolution or frame count%s",
                        quote(in), sz(budget, s1, sizeof s1), default_budget ? " (the free memory)" : "", in->compute,
                        sz(min_need, s2, sizeof s2), sz(in->units[0].bytes, s3, sizeof s3), d,
                        sz(slot, s4, sizeof s4), sz(in->activation_bytes, s5, sizeof s5),
                        d > 1 ? ", or use a ring of 1 (slower)" : "");
    }
    if (K == 0) {
        note(p, "everything fits on cuda:%d (%s of %s)", in->compute, sz(need_all, s1, sizeof s1),
             sz(budget, s2, sizeof s2));
        streamed_set(in, 0, places);
        return finalize(in, places, default_budget ? 0 : budget, p);
    }
    streamed_set(in, K, places);
    uint64_t streamed_bytes = 0, biggest = 0;
    for (int u = 1; u <= N; u++)
        if (places[u].tier != VD_TIER_RESIDENT) {
            streamed_bytes += in->units[u].bytes;
            biggest = in->units[u].bytes > biggest ? in->units[u].bytes : biggest;
        }
    const double avg = (double)streamed_bytes / K;
    /* sources: the other GPUs (peer first), then the host */
    link_count lc[VD_PLAN_MAX_LINKS];
    double cap[VD_PLAN_MAX_LINKS], bw[VD_PLAN_MAX_LINKS];
    int n_src = 0;
    bool bw_known = true;
    for (int pass = 0; pass < 2; pass++)
        for (int i = 0; i < in->n_gpus; i++) {
            const vd_plan_gpu *g = &in->gpus[i];
            if (g->index == in->compute || g->peer != (pass == 0))
                continue;
            /* keep 5% of the donor free for its own context */
            double c = (double)g->free_bytes - 0.05 * (double)g->total_bytes;
            if (c < (double)biggest)
                continue;
            lc[n_src] = (link_count){VD_LINK_DONOR(g->index), 0};
            cap[n_src] = c;
            bw[n_src] = in->link_bps[VD_LINK_DONOR(g->index)];
            bw_known = bw_known && bw[n_src] > 0;
            n_src++;
        }
    lc[n_src] = (link_count){VD_LINK_HOST, 0};
    cap[n_src] = in->host_free_bytes ? (double)in->host_free_bytes * 0.9 : 1e300;
    bw[n_src] = in->link_bps[VD_LINK_HOST];
    bw_known = bw_known && bw[n_src] > 0;
    n_src++;
    int left = K;
    bool open[VD_PLAN_MAX_LINKS];
    for (int i = 0; i < n_src; i++)
        open[i] = true;
    while (left > 0) {
        /* share what is left among the open sources: by bandwidth when every
         * link is measured, else the first open source takes all it can */
        double wsum = 0;
        int n_open = 0;
        for (int i = 0; i < n_src; i++)
            if (open[i]) {
                wsum += bw_known ? bw[i] : 0;
                n_open++;
            }
        if (n_open == 0)
            break;
        int want[VD_PLAN_MAX_LINKS] = {0}, given = 0;
        if (bw_known) {
            double rem[VD_PLAN_MAX_LINKS];
            for (int i = 0; i < n_src; i++)
                if (open[i]) {
                    double x = left * bw[i] / wsum;
                    want[i] = (int)floor(x);
                    rem[i] = x - want[i];
                    given += want[i];
                }
            while (given < left) {
                int best = -1;
                for (int i = 0; i < n_src; i++)
                    if (open[i] && (best < 0 || rem[i] > rem[best]))
                        best = i;
                want[best]++;
                rem[best] = -1;
                given++;
            }
        } else {
            for (int i = 0; i < n_src; i++)
                if (open[i]) {
                    want[i] = left;
                    break;
                }
        }
        bool capped = false;
        for (int i = 0; i < n_src; i++) {
            if (!open[i] || !want[i])
                continue;
            double room = floor((cap[i] - lc[i].count * avg) / avg);
            int fits = room > (double)K ? K : (room < 0 ? 0 : (int)room);
            if (fits < want[i]) {
                want[i] = fits > 0 ? fits : 0;
                open[i] = false;
                capped = true;
            }
            lc[i].count += want[i];
            left -= want[i];
        }
        if (!capped && left > 0)
            break;
    }
    if (left > 0)
        return vd_error(VD_ERR_INVALID_ARGUMENT,
                        "allocation '%s': %d blocks must leave cuda:%d to fit the budget of %s, but the other GPUs "
                        "and the host can hold only %d of them; raise the budget or free host memory",
                        quote(in), K, in->compute, sz(budget, s1, sizeof s1), K - left);
    /* drop empty sources, keep their order */
    int m = 0;
    for (int i = 0; i < n_src; i++)
        if (lc[i].count)
            lc[m++] = lc[i];
    place_blocks(in, lc, m, places);
    note(p, "%d of %d blocks stream to fit the budget of %s%s", K, N, sz(budget, s1, sizeof s1),
         default_budget ? " (the free memory)" : "");
    if (!bw_known)
        note(p, "link speeds unknown: sources filled in order (other GPUs, then the host)");
    return finalize(in, places, default_budget ? 0 : budget, p);
}

/* ---- entry points ---------------------------------------------------------------- */

vd_status vd_plan_make(const vd_plan_input *in, vd_plan *out)
{
    VD_TRY(check_input(in));
    init_plan(in, out);
    const int N = in->n_units - 1;
    vd_plan_place places[VD_PLAN_MAX_UNITS];
    if (!in->alloc || in->alloc->mode == VD_ALLOC_RESIDENT) {
        link_count none = {VD_LINK_HOST, 0};
        place_blocks(in, &none, 0, places);
        return finalize(in, places, budget_of(in), out);
    }
    VD_TRY(check_devices(in));
    if (in->alloc->mode == VD_ALLOC_AUTO)
        return plan_auto(in, out);

    double model = 0;
    for (int u = 0; u < in->n_units; u++)
        model += (double)in->units[u].bytes;
    targets ts;
    VD_TRY(shares(in, model, &ts, out));
    /* lay the shares end to end after the stem (charged to the compute GPU) */
    double stem = (double)in->units[0].bytes, edge[VD_ALLOC_MAX_ENTRIES + 2], cum = 0;
    for (int i = 0; i < ts.n; i++) {
        double q = ts.t[i].quota;
        if (ts.t[i].dev.is_cuda && ts.t[i].dev.index == in->compute) {
            if (q < stem && stem > 0) {
                char s1[32], s2[32];
                note(out, "the stem (%s) stays on cuda:%d although its share is only %s",
                     sz((uint64_t)stem, s1, sizeof s1), in->compute, sz((uint64_t)q, s2, sizeof s2));
            }
            q = q > stem ? q - stem : 0;
        }
        cum += q;
        edge[i] = cum;
    }
    int count[VD_ALLOC_MAX_ENTRIES + 2] = {0};
    double pos = 0;
    for (int u = 1; u <= N; u++) {
        double mid = pos + (double)in->units[u].bytes / 2;
        pos += (double)in->units[u].bytes;
        int t = ts.overflow;
        for (int i = 0; i < ts.n; i++)
            if (mid < edge[i]) {
                t = i;
                break;
            }
        count[t]++;
    }
    link_count lc[VD_ALLOC_MAX_ENTRIES + 2];
    int n_lc = 0;
    for (int i = 0; i < ts.n; i++) {
        if (!count[i])
            continue;
        if (ts.t[i].dev.is_cuda && ts.t[i].dev.index == in->compute)
            continue; /* resident */
        lc[n_lc++] = (link_count){ts.t[i].dev.is_cuda ? VD_LINK_DONOR(ts.t[i].dev.index) : VD_LINK_HOST, count[i]};
    }
    place_blocks(in, lc, n_lc, places);
    return finalize(in, places, budget_of(in), out);
}

vd_status vd_plan_from_places(const vd_plan_input *in, const vd_plan_place *places, vd_plan *out)
{
    VD_TRY(check_input(in));
    init_plan(in, out);
    return finalize(in, places, budget_of(in), out);
}

/* ---- link simulation -------------------------------------------------------------- */

static bool parse_gbps(const char *s, double *bps)
{
    char *end;
    double v = strtod(s, &end);
    while (*end && isspace((unsigned char)*end))
        end++;
    if (end == s || *end || !isfinite(v) || v <= 0 || v > 1e5)
        return false;
    *bps = v * 1e9;
    return true;
}

vd_status vd_link_sim_parse(const char *text, vd_link_sim *out)
{
    memset(out, 0, sizeof *out);
    if (!text)
        return VD_OK;
    char buf[256];
    snprintf(buf, sizeof buf, "%s", text);
    char *p = buf;
    while (isspace((unsigned char)*p))
        p++;
    if (*p == '\0')
        return VD_OK;
    double all;
    if (!strchr(p, '=')) {
        if (!parse_gbps(p, &all))
            return vd_error(VD_ERR_INVALID_ARGUMENT,
                            "link simulation '%s': not a speed in GB/s (e.g. 6.8, or host=6.8,cuda:1=50.8)", text);
        for (int l = 0; l < VD_PLAN_MAX_LINKS; l++)
            out->bps[l] = all;
        out->active = true;
        return VD_OK;
    }
    char *save = NULL;
    for (char *item = strtok_r(p, ",", &save); item; item = strtok_r(NULL, ",", &save)) {
        char *eq = strchr(item, '=');
        while (isspace((unsigned char)*item))
            item++;
        if (!eq)
            return vd_error(VD_ERR_INVALID_ARGUMENT, "link simulation '%s': '%s' is not link=GB/s", text, item);
        *eq = '\0';
        char *name = item, *e = eq;
        while (e > name && isspace((unsigned char)e[-1]))
            *--e = '\0';
        int link;
        if (strcmp(name, "host") == 0 || strcmp(name, "cpu") == 0) {
            link = VD_LINK_HOST;
        } else if (strncmp(name, "cuda:", 5) == 0 && isdigit((unsigned char)name[5])) {
            char *end;
            long g = strtol(name + 5, &end, 10);
            if (*end || g < 0 || g >= VD_PLAN_MAX_GPUS)
                return vd_error(VD_ERR_INVALID_ARGUMENT, "link simulation '%s': '%s' is not host or cuda:N", text,
                                name);
            link = VD_LINK_DONOR((int)g);
        } else {
            return vd_error(VD_ERR_INVALID_ARGUMENT, "link simulation '%s': '%s' is not host or cuda:N", text, name);
        }
        if (!parse_gbps(eq + 1, &out->bps[link]))
            return vd_error(VD_ERR_INVALID_ARGUMENT, "link simulation '%s': '%s' is not a speed in GB/s", text, eq + 1);
        out->active = true;
    }
    return VD_OK;
}

vd_status vd_link_sim_from_env(vd_link_sim *out)
{
    const char *v = getenv("VD_SIMULATE_LINK_GBPS");
    vd_status st = vd_link_sim_parse(v, out);
    if (st != VD_OK)
        return vd_error_context(st, "VD_SIMULATE_LINK_GBPS: ");
    return VD_OK;
}

double vd_link_sim_cap(const vd_link_sim *s, int link)
{
    if (!s || !s->active || link < 0 || link >= VD_PLAN_MAX_LINKS)
        return 0;
    return s->bps[link];
}

void vd_plan_host_memory(uint64_t *total_bytes, uint64_t *available_bytes)
{
    *total_bytes = *available_bytes = 0;
    FILE *f = fopen("/proc/meminfo", "r");
    if (!f)
        return;
    char line[256];
    while (fgets(line, sizeof line, f)) {
        unsigned long long kb;
        if (sscanf(line, "MemTotal: %llu kB", &kb) == 1)
            *total_bytes = (uint64_t)kb * 1024;
        else if (sscanf(line, "MemAvailable: %llu kB", &kb) == 1)
            *available_bytes = (uint64_t)kb * 1024;
    }
    fclose(f);
}

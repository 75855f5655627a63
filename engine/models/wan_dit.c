#include "models/wan_dit.h"

#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/error.h"
#include "models/model_weights.h"
#include "vd_config.h"

#if VD_HAVE_CUDA
#include "backend/cuda/backend_cuda.h"
#include "offload/devices.h"
#include "offload/packing.h"
#include "offload/streaming.h"
#endif

typedef struct linear {
    vd_tensor w, b;
} linear;

typedef struct dit_block {
    vd_tensor modulation; /* f32 [6, D] */
    linear sa_q, sa_k, sa_v, sa_o;
    vd_tensor sa_norm_q, sa_norm_k;
    vd_tensor norm3_w, norm3_b;
    linear ca_q, ca_k, ca_v, ca_o;
    vd_tensor ca_norm_q, ca_norm_k;
    linear ffn0, ffn2;
} dit_block;

/* Offloading state (vd_dit_load_planned). */
typedef struct dit_offload {
    vd_pack_layout *layout;
    vd_plan plan;
    unsigned char *streamed;  /* per block: bound at each pass through the streamer */
    vd_streamer *streamer;
    void **host_units;        /* CPU backend: each unit's packed image */
    uint64_t *unit_bytes;
    int *link_of;
    void *packed;             /* CUDA: the vd_packed_model */
    vd_dit_offload_report report;
} dit_offload;

struct vd_dit {
    vd_backend *be;
    vd_dit_config cfg;
    vd_tensor patch_w; /* [D, C_in·pt·ph·pw] view of the conv weight */
    vd_tensor patch_b;
    linear text0, text2, time0, time2, time_proj, head;
    vd_tensor head_modulation; /* f32 [2, D] */
    dit_block *blocks;
    dit_offload *off;  /* NULL unless loaded with a plan */
};

/* ---- the parameters, unit by unit ---------------------------------------- */

/* Every tensor the DiT reads, grouped into units (0: the stem, i + 1:
 * block i), each in execution order.  The same tables drive the ordinary
 * loader (one buffer per tensor), the packed layout of offloading, and
 * binding a unit's tensors to its packed bytes. */
enum {
    K_WEIGHT,    /* storage dtype, as stored */
    K_PATCH,     /* storage dtype, viewed [D, C_in·pt·ph·pw] */
    K_VEC_D,     /* f32 [D] */
    K_VEC_F,     /* f32 [ffn_dim] */
    K_VEC_6D,    /* f32 [6·D] */
    K_VEC_OUT,   /* f32 [out_dim·ph·pw] */
    K_MOD6,      /* f32 [6, D] */
    K_MOD2       /* f32 [2, D] */
};

typedef struct param_entry {
    const char *suffix;
    size_t offset;  /* of the tensor in dit_block (blocks) or vd_dit (the stem) */
    int kind;
} param_entry;

#define BP(s, f, k) {s, offsetof(dit_block, f), k}
static const param_entry block_table[] = {
    BP("modulation", modulation, K_MOD6),
    BP("self_attn.q.weight", sa_q.w, K_WEIGHT),    BP("self_attn.q.bias", sa_q.b, K_VEC_D),
    BP("self_attn.k.weight", sa_k.w, K_WEIGHT),    BP("self_attn.k.bias", sa_k.b, K_VEC_D),
    BP("self_attn.v.weight", sa_v.w, K_WEIGHT),    BP("self_attn.v.bias", sa_v.b, K_VEC_D),
    BP("self_attn.norm_q.weight", sa_norm_q, K_VEC_D),
    BP("self_attn.norm_k.weight", sa_norm_k, K_VEC_D),
    BP("self_attn.o.weight", sa_o.w, K_WEIGHT),    BP("self_attn.o.bias", sa_o.b, K_VEC_D),
    BP("norm3.weight", norm3_w, K_VEC_D),          BP("norm3.bias", norm3_b, K_VEC_D),
    BP("cross_attn.q.weight", ca_q.w, K_WEIGHT),   BP("cross_attn.q.bias", ca_q.b, K_VEC_D),
    BP("cross_attn.norm_q.weight", ca_norm_q, K_VEC_D),
    BP("cross_attn.k.weight", ca_k.w, K_WEIGHT),   BP("cross_attn.k.bias", ca_k.b, K_VEC_D),
    BP("cross_attn.norm_k.weight", ca_norm_k, K_VEC_D),
    BP("cross_attn.v.weight", ca_v.w, K_WEIGHT),   BP("cross_attn.v.bias", ca_v.b, K_VEC_D),
    BP("cross_attn.o.weight", ca_o.w, K_WEIGHT),   BP("cross_attn.o.bias", ca_o.b, K_VEC_D),
    BP("ffn.0.weight", ffn0.w, K_WEIGHT),          BP("ffn.0.bias", ffn0.b, K_VEC_F),
    BP("ffn.2.weight", ffn2.w, K_WEIGHT),          BP("ffn.2.bias", ffn2.b, K_VEC_D),
};
#undef BP

#define SP(s, f, k) {s, offsetof(struct vd_dit, f), k}
static const param_entry stem_table[] = {
    SP("patch_embedding.weight", patch_w, K_PATCH),     SP("patch_embedding.bias", patch_b, K_VEC_D),
    SP("text_embedding.0.weight", text0.w, K_WEIGHT),   SP("text_embedding.0.bias", text0.b, K_VEC_D),
    SP("text_embedding.2.weight", text2.w, K_WEIGHT),   SP("text_embedding.2.bias", text2.b, K_VEC_D),
    SP("time_embedding.0.weight", time0.w, K_WEIGHT),   SP("time_embedding.0.bias", time0.b, K_VEC_D),
    SP("time_embedding.2.weight", time2.w, K_WEIGHT),   SP("time_embedding.2.bias", time2.b, K_VEC_D),
    SP("time_projection.1.weight", time_proj.w, K_WEIGHT), SP("time_projection.1.bias", time_proj.b, K_VEC_6D),
    SP("head.head.weight", head.w, K_WEIGHT),           SP("head.head.bias", head.b, K_VEC_OUT),
    SP("head.modulation", head_modulation, K_MOD2),
};
#undef SP

enum { N_BLOCK_PARAMS = sizeof block_table / sizeof block_table[0],
       N_STEM_PARAMS = sizeof stem_table / sizeof stem_table[0],
       MAX_UNIT_PARAMS = N_BLOCK_PARAMS > N_STEM_PARAMS ? N_BLOCK_PARAMS : N_STEM_PARAMS };

typedef struct dit_param {
    char name[96];
    vd_tensor *dst;
    bool small;          /* an f32 parameter of `shape` */
    int ndim;            /* small: its shape; weights: a view shape (0: as stored) */
    int64_t shape[2];
} dit_param;

static const param_entry *unit_table(int unit, int *n)
{
    *n = unit == 0 ? N_STEM_PARAMS : N_BLOCK_PARAMS;
    return unit == 0 ? stem_table : block_table;
}

/* The parameters of `unit` with their tensors in `target` (the vd_dit for
 * the stem, a dit_block for a block). */
static int unit_params(const vd_dit_config *c, int unit, void *target, dit_param *out)
{
    int n;
    const param_entry *t = unit_table(unit, &n);
    const int64_t D = c->dim;
    for (int k = 0; k < n; k++) {
        dit_param *p = &out[k];
        if (unit == 0)
            snprintf(p->name, sizeof p->name, "%s", t[k].suffix);
        else
            snprintf(p->name, sizeof p->name, "blocks.%d.%s", unit - 1, t[k].suffix);
        p->dst = (vd_tensor *)((char *)target + t[k].offset);
        p->small = t[k].kind != K_WEIGHT && t[k].kind != K_PATCH;
        p->ndim = 1;
        switch (t[k].kind) {
        case K_WEIGHT: p->ndim = 0; break;
        case K_PATCH:
            p->ndim = 2;
            p->shape[0] = D;
            p->shape[1] = c->in_dim * c->patch[0] * c->patch[1] * c->patch[2];
            break;
        case K_VEC_D: p->shape[0] = D; break;
        case K_VEC_F: p->shape[0] = c->ffn_dim; break;
        case K_VEC_6D: p->shape[0] = 6 * D; break;
        case K_VEC_OUT: p->shape[0] = c->out_dim * c->patch[1] * c->patch[2]; break;
        case K_MOD6: p->ndim = 2, p->shape[0] = 6, p->shape[1] = D; break;
        case K_MOD2: p->ndim = 2, p->shape[0] = 2, p->shape[1] = D; break;
        }
    }
    return n;
}

/* One tensor in its own buffer on the model's device (the ordinary load). */
static vd_status load_param(vd_backend *be, const vd_weights *w, const dit_param *p)
{
    if (p->small)
        return vd_load_param_f32(be, w, p->name, p->ndim, p->shape, p->dst);
    VD_TRY(vd_load_weight(be, w, p->name, p->dst));
    if (p->ndim > 0) {
        vd_tensor view;
        vd_status st = vd_tensor_reshape(p->dst, p->ndim, p->shape, &view);
        if (st != VD_OK) {
            vd_tensor_release(p->dst);
            return vd_error_context(st, "'%s': ", p->name);
        }
        view.owner = p->dst->owner;
        *p->dst = view;
    }
    return VD_OK;
}

static vd_status load_unit(vd_dit *m, const vd_weights *w, int unit)
{
    dit_param ps[MAX_UNIT_PARAMS];
    void *target = unit == 0 ? (void *)m : (void *)&m->blocks[unit - 1];
    int n = unit_params(&m->cfg, unit, target, ps);
    for (int k = 0; k < n; k++)
        VD_TRY(load_param(m->be, w, &ps[k]));
    return VD_OK;
}

/* The tensors of `unit` as views of its packed image at `base`. */
static void bind_unit(const vd_dit *m, int unit, void *base, void *target)
{
    int n;
    const param_entry *t = unit_table(unit, &n);
    const vd_pack_unit *pu = &m->off->layout->units[unit];
    for (int k = 0; k < n; k++)
        *(vd_tensor *)((char *)target + t[k].offset) = vd_pack_view(pu, k, base);
}

static void release_unit(vd_dit *m, int unit)
{
    int n;
    const param_entry *t = unit_table(unit, &n);
    void *target = unit == 0 ? (void *)m : (void *)&m->blocks[unit - 1];
    for (int k = 0; k < n; k++)
        vd_tensor_release((vd_tensor *)((char *)target + t[k].offset)); /* views: only zeroed */
}

static void free_offload(dit_offload *o)
{
    if (!o)
        return;
    vd_streamer_free(o->streamer); /* first: waits for copies in flight */
#if VD_HAVE_CUDA
    vd_packed_model_free(o->packed);
#endif
    if (o->host_units && o->layout)
        for (int u = 0; u < o->layout->n; u++)
            free(o->host_units[u]);
    free(o->host_units);
    free(o->unit_bytes);
    free(o->link_of);
    free(o->streamed);
    vd_pack_layout_free(o->layout);
    free(o);
}

void vd_dit_free(vd_dit *m)
{
    if (!m)
        return;
    if (m->blocks)
        for (int64_t i = 0; i < m->cfg.layers; i++)
            release_unit(m, (int)i + 1);
    free(m->blocks);
    release_unit(m, 0);
    free_offload(m->off);
    free(m);
}

const vd_dit_config *vd_dit_get_config(const vd_dit *m) { return &m->cfg; }

/* The weights' DiT configuration, or why they are not a DiT we run. */
static vd_status detect_dit(const vd_weights *w, vd_arch_info *info)
{
    vd_status st = vd_arch_detect(w, info);
    if (st != VD_OK)
        return vd_error_context(st, "'%s': ", vd_weights_path(w));
    if (info->arch != VD_ARCH_WAN_DIT)
        return vd_error(VD_ERR_UNSUPPORTED, "'%s' is a %s, not a Wan DiT", vd_weights_path(w), info->name);
    return VD_OK;
}

/* A new model for the weights' configuration (no tensors yet). */
static vd_status new_model(vd_backend *be, const vd_weights *w, vd_dit **out)
{
    *out = NULL;
    vd_arch_info info;
    VD_TRY(detect_dit(w, &info));
    if (info.dit.patch[0] != 1)
        return vd_error(VD_ERR_UNSUPPORTED, "'%s': temporal patch size %lld (only 1 is supported, as in every Wan release)",
                        vd_weights_path(w), (long long)info.dit.patch[0]);
    if (info.dit.layers + 1 > VD_PLAN_MAX_UNITS)
        return vd_error(VD_ERR_UNSUPPORTED, "'%s' has %lld blocks; at most %d are supported", vd_weights_path(w),
                        (long long)info.dit.layers, VD_PLAN_MAX_UNITS - 1);
    vd_dit *m = calloc(1, sizeof *m);
    if (m)
        m->blocks = calloc((size_t)info.dit.layers, sizeof *m->blocks);
    if (!m || !m->blocks) {
        free(m);
        return vd_error(VD_ERR_OUT_OF_MEMORY, "out of memory");
    }
    m->be = be;
    m->cfg = info.dit;
    *out = m;
    return VD_OK;
}

vd_status vd_dit_load(vd_backend *be, const vd_weights *w, vd_dit **out)
{
    vd_dit *m;
    VD_TRY(new_model(be, w, &m));
    vd_status st = VD_OK;
    for (int u = 0; st == VD_OK && u <= m->cfg.layers; u++)
        st = load_unit(m, w, u);
    if (st != VD_OK) {
        vd_dit_free(m);
        return vd_error_context(st, "loading the DiT from '%s': ", vd_weights_path(w));
    }
    *out = m;
    return VD_OK;
}

/* ---- offloading ------------------------------------------------------------- */

static vd_status build_layout(const vd_dit_config *c, const vd_weights *w, vd_pack_layout **out)
{
    vd_pack_layout *l;
    VD_TRY(vd_pack_layout_new((int)c->layers + 1, &l));
    dit_block scratch_block;
    struct vd_dit scratch_model;
    vd_status st = VD_OK;
    for (int u = 0; st == VD_OK && u < l->n; u++) {
        vd_pack_unit *pu = &l->units[u];
        if (u == 0)
            snprintf(pu->name, sizeof pu->name, "stem");
        else
            snprintf(pu->name, sizeof pu->name, "block %d", u - 1);
        dit_param ps[MAX_UNIT_PARAMS];
        int n = unit_params(c, u, u == 0 ? (void *)&scratch_model : (void *)&scratch_block, ps);
        for (int k = 0; st == VD_OK && k < n; k++)
            st = ps[k].small ? vd_pack_add_f32(pu, w, ps[k].name, ps[k].ndim, ps[k].shape)
                             : vd_pack_add_weight(pu, w, ps[k].name, ps[k].ndim, ps[k].shape);
    }
    if (st != VD_OK) {
        vd_pack_layout_free(l);
        return st;
    }
    *out = l;
    return VD_OK;
}

vd_status vd_dit_layout(const vd_weights *w, vd_pack_layout **out)
{
    *out = NULL;
    vd_arch_info info;
    VD_TRY(detect_dit(w, &info));
    vd_status st = build_layout(&info.dit, w, out);
    if (st != VD_OK)
        return vd_error_context(st, "laying out '%s': ", vd_weights_path(w));
    return VD_OK;
}

static int link_of_place(const vd_plan_place *p)
{
    return p->tier == VD_TIER_DONOR ? VD_LINK_DONOR(p->device) : VD_LINK_HOST;
}

/* The CPU backend: every unit packed in host memory; resident units bound
 * once, streamed ones copied through a host ring (the same schedule as on
 * a GPU; it exists so that machines without one test the packing, the
 * binding and the schedule). */
static vd_status place_on_host(vd_dit *m)
{
    dit_offload *o = m->off;
    const int n = o->layout->n;
    o->host_units = calloc((size_t)n, sizeof *o->host_units);
    if (!o->host_units)
        return vd_error(VD_ERR_OUT_OF_MEMORY, "out of memory");
    for (int u = 0; u < n; u++) {
        const vd_pack_unit *pu = &o->layout->units[u];
        o->host_units[u] = aligned_alloc(VD_PACK_ALIGN, (size_t)pu->bytes);
        if (!o->host_units[u])
            return vd_error(VD_ERR_OUT_OF_MEMORY, "out of host memory packing %s (%llu bytes)", pu->name,
                            (unsigned long long)pu->bytes);
        VD_TRY(vd_pack_fill(pu, 0, pu->bytes, o->host_units[u]));
        if (o->plan.units[u].tier == VD_TIER_RESIDENT)
            o->report.resident_bytes += pu->bytes;
        else
            o->report.host_pageable_bytes += pu->bytes;
    }
    return VD_OK;
}

static vd_status setup_offload(vd_dit *m, const vd_weights *w, const vd_plan *plan, const vd_offload_options *opt)
{
    (void)opt;
    dit_offload *o = calloc(1, sizeof *o);
    if (!o)
        return vd_error(VD_ERR_OUT_OF_MEMORY, "out of memory");
    m->off = o;
    VD_TRY(build_layout(&m->cfg, w, &o->layout));
    const int n = o->layout->n;
    if (plan->n_units != n)
        return vd_error(VD_ERR_INVALID_ARGUMENT,
                        "the placement plan has %d units but the model has %d (the stem and %d "
                        "blocks); plan with vd_dit_layout's units",
                        plan->n_units, n, n - 1);
    if (plan->units[0].tier != VD_TIER_RESIDENT)
        return vd_error(VD_ERR_INVALID_ARGUMENT, "the placement plan moves the stem off the compute device");
    o->plan = *plan;
    o->streamed = calloc((size_t)n, 1);
    o->unit_bytes = calloc((size_t)n, sizeof *o->unit_bytes);
    o->link_of = calloc((size_t)n, sizeof *o->link_of);
    if (!o->streamed || !o->unit_bytes || !o->link_of)
        return vd_error(VD_ERR_OUT_OF_MEMORY, "out of memory");
    int order[VD_PLAN_MAX_UNITS], K = 0;
    uint64_t slot = 0;
    for (int u = 0; u < n; u++) {
        o->unit_bytes[u] = o->layout->units[u].bytes;
        o->link_of[u] = link_of_place(&plan->units[u]);
        if (plan->units[u].tier != VD_TIER_RESIDENT) {
            o->streamed[u] = 1;
            order[K++] = u;
            slot = o->unit_bytes[u] > slot ? o->unit_bytes[u] : slot;
        }
    }
    const int depth = K < plan->depth_requested ? K : plan->depth_requested;
    if (K > 0 && (depth < 1 || depth != plan->depth))
        return vd_error(VD_ERR_INVALID_ARGUMENT, "the placement plan's ring (%d slots) does not match its %d streamed "
                                                 "blocks",
                        plan->depth, K);
    o->report.units = n;
    o->report.streamed = K;
    o->report.depth = depth;
    o->report.ring_bytes = (uint64_t)depth * slot;
    void *base_of[VD_PLAN_MAX_UNITS] = {0};
    if (m->be->kind == VD_DEVICE_CPU) {
        VD_TRY(place_on_host(m));
        for (int u = 0; u < n; u++)
            base_of[u] = o->host_units[u];
        if (K > 0)
            VD_TRY(vd_streamer_host_new(o->host_units, o->unit_bytes, o->link_of, n, order, K, depth, &o->streamer));
    } else {
#if VD_HAVE_CUDA
        vd_packed_model *pm;
        VD_TRY(vd_pack_model(m->be, o->layout, plan, opt, &pm));
        o->packed = pm;
        for (int u = 0; u < n; u++)
            base_of[u] = pm->units[u].data;
        o->report.resident_bytes = pm->resident_bytes;
        o->report.host_pinned_bytes = pm->pinned_bytes;
        o->report.host_pageable_bytes = pm->pageable_bytes;
        for (int g = 0; g < VD_PLAN_MAX_GPUS; g++) {
            o->report.donor_bytes[g] = pm->donor_bytes[g];
            o->report.donor_staged[g] = pm->donor_bytes[g] && !pm->donor_peer[g];
        }
        snprintf(o->report.warnings, sizeof o->report.warnings, "%s", pm->warnings);
        if (K > 0)
            VD_TRY(vd_streamer_cuda_new(m->be, pm, plan, opt, &o->streamer));
#else
        return vd_error(VD_ERR_UNSUPPORTED, "offloading needs a CUDA build (-Dcuda=enabled)");
#endif
    }
    o->report.simulated = opt && opt->sim.active && K > 0;
    for (int u = 0; u < n; u++)
        if (!o->streamed[u])
            bind_unit(m, u, base_of[u], u == 0 ? (void *)m : (void *)&m->blocks[u - 1]);
    return VD_OK;
}

vd_status vd_dit_load_planned(vd_backend *be, const vd_weights *w, const vd_plan *plan, const vd_offload_options *opt,
                              vd_dit **out)
{
    *out = NULL;
    if (!be || !w || !plan)
        return vd_error(VD_ERR_INVALID_ARGUMENT, "vd_dit_load_planned: backend, weights or plan is NULL");
    if (be->kind == VD_DEVICE_CUDA && plan->compute != be->device_index)
        return vd_error(VD_ERR_INVALID_ARGUMENT, "the placement plan is for cuda:%d but the model loads on %s",
                        plan->compute, be->name);
    vd_offload_options defaults = vd_offload_options_default();
    vd_dit *m;
    VD_TRY(new_model(be, w, &m));
    vd_status st = setup_offload(m, w, plan, opt ? opt : &defaults);
    if (st != VD_OK) {
        vd_dit_free(m);
        return vd_error_context(st, "loading the DiT from '%s' with a placement plan: ", vd_weights_path(w));
    }
    *out = m;
    return VD_OK;
}

vd_status vd_dit_offload_report_get(const vd_dit *m, vd_dit_offload_report *out)
{
    memset(out, 0, sizeof *out);
    if (!m || !m->off)
        return vd_error(VD_ERR_INVALID_ARGUMENT, "the DiT was loaded without a placement plan");
    *out = m->off->report;
    out->plan = &m->off->plan;
    vd_streamer_get_stats(m->off->streamer, &out->stream);
    return VD_OK;
}

/* Bind block i for this pass: resident blocks are bound already; a
 * streamed one is acquired from the ring (the compute stream waits for its
 * copy) and bound into `tmp`. */
static vd_status acquire_block(vd_dit *m, int64_t i, dit_block *tmp, const dit_block **use)
{
    *use = &m->blocks[i];
    if (!m->off || !m->off->streamed[i + 1])
        return VD_OK;
    void *base;
    VD_TRY(vd_streamer_acquire(m->off->streamer, (int)i + 1, &base));
    bind_unit(m, (int)i + 1, base, tmp);
    *use = tmp;
    return VD_OK;
}

static vd_status release_block(vd_dit *m, int64_t i)
{
    if (!m->off || !m->off->streamed[i + 1])
        return VD_OK;
    return vd_streamer_release(m->off->streamer, (int)i + 1);
}
/* ---- text embedding ----------------------------------------------------- */

vd_status vd_dit_embed_text(vd_dit *m, const float *ctx, int64_t n, vd_tensor *out)
{
    const int64_t D = m->cfg.dim, C = m->cfg.text_dim, L = VD_DIT_TEXT_LEN;
    memset(out, 0, sizeof *out);
    if (n < 1 || n > L)
        return vd_error(VD_ERR_SHAPE, "text context has %lld rows; the DiT takes 1 to %lld", (long long)n, (long long)L);
    float *padded = calloc((size_t)(L * C), sizeof *padded);
    if (!padded)
        return vd_error(VD_ERR_OUT_OF_MEMORY, "out of memory");
    memcpy(padded, ctx, (size_t)(n * C) * sizeof *padded);
    for (int64_t i = 0; i < n * C; i++)
        if (!isfinite(padded[i])) {
            free(padded);
            return vd_error(VD_ERR_INVALID_ARGUMENT, "text context holds a non-finite value (row %lld)", (long long)(i / C));
        }
    vd_tensor in = {0}, hidden = {0};
    int64_t s_in[2] = {L, C}, s_h[2] = {L, D};
    vd_status st = vd_upload_f32(m->be, padded, 2, s_in, &in);
    free(padded);
    if (st == VD_OK)
        st = vd_tensor_alloc(m->be, VD_F32, 2, s_h, &hidden);
    if (st == VD_OK)
        st = vd_tensor_alloc(m->be, VD_F32, 2, s_h, out);
    if (st == VD_OK)
        st = vd_op_matmul(m->be, &in, &m->text0.w, &m->text0.b, &hidden);
    if (st == VD_OK)
        st = vd_op_gelu_tanh(m->be, &hidden, &hidden);
    if (st == VD_OK)
        st = vd_op_matmul(m->be, &hidden, &m->text2.w, &m->text2.b, out);
    vd_tensor_release(&in);
    vd_tensor_release(&hidden);
    if (st != VD_OK)
        vd_tensor_release(out);
    return st;
}

/* ---- forward ---------------------------------------------------------------- */

/* Activations of one forward pass. */
typedef struct workspace {
    /* x (the residual stream) and a [B·L, D] own their memory.  q, k, v
     * [B·L, D] and the FFN's h [B·L, F] are views of one region of
     * B·L·max(3D, F) floats: q, k and v are dead by the time h is written.
     * The attention output and every projection output reuse a dead
     * buffer (see run_block), so a block needs (2D + max(3D, F)) floats per
     * token instead of 7D + F: for the 14B at 480p×81 with CFG 6.7 GB
     * instead of 13 GB. */
    vd_tensor x, a, region, q, k, v, h;
    vd_tensor ctx, ck, cv;              /* [B·512, D] */
    vd_tensor latent, tokens, out;      /* input, patch tokens, head output */
    vd_tensor t_freq, e1, e, e_silu, e0, mod, head_mod;
} workspace;

static void release_workspace(workspace *ws)
{
    vd_tensor *all[] = {&ws->x, &ws->a, &ws->region, &ws->ctx, &ws->ck, &ws->cv,
                        &ws->latent, &ws->tokens, &ws->out, &ws->t_freq, &ws->e1, &ws->e, &ws->e_silu, &ws->e0,
                        &ws->mod, &ws->head_mod};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        vd_tensor_release(all[i]);
}

static vd_status alloc2(vd_backend *be, vd_tensor *t, int64_t r, int64_t c)
{
    int64_t s[2] = {r, c};
    return vd_tensor_alloc(be, VD_F32, 2, s, t);
}

/* Row `i` of a [R, D] tensor as a [1, D] view. */
static vd_tensor row_of(const vd_tensor *t, int64_t i)
{
    vd_tensor r;
    vd_tensor_slice(t, 0, i, i + 1, &r);
    return r;
}

/* View a [B·L, H·d] activation as [B, L, H, d] for attention. */
static vd_tensor heads_view(const vd_tensor *t, int64_t B, int64_t L, int64_t H, int64_t d)
{
    vd_tensor r;
    int64_t s[4] = {B, L, H, d};
    vd_tensor_reshape(t, 4, s, &r);
    return r;
}

/* The sinusoidal time embedding of the reference: [cos(t·ω), sin(t·ω)],
 * ω_j = 10000^(−j/half), in float64, then f32. */
static void sinusoid(double t, int64_t dim, float *out)
{
    int64_t half = dim / 2;
    for (int64_t j = 0; j < half; j++) {
        double w = pow(10000.0, -(double)j / (double)half);
        out[j] = (float)cos(t * w);
        out[half + j] = (float)sin(t * w);
    }
}

/* The buffers run_block uses besides x and ctx, for B samples of L tokens. */
static vd_status alloc_block_buffers(vd_backend *be, const vd_dit_config *g, workspace *ws, int64_t B, int64_t L)
{
    const int64_t D = g->dim, rows = B * L;
    VD_TRY(alloc2(be, &ws->a, rows, D));
    VD_TRY(alloc2(be, &ws->region, rows, g->ffn_dim > 3 * D ? g->ffn_dim : 3 * D));
    float *r = ws->region.data;
    int64_t sd[2] = {rows, D}, sh[2] = {rows, g->ffn_dim};
    VD_TRY(vd_tensor_init(&ws->q, VD_F32, 2, sd, r));
    VD_TRY(vd_tensor_init(&ws->k, VD_F32, 2, sd, r + rows * D));
    VD_TRY(vd_tensor_init(&ws->v, VD_F32, 2, sd, r + 2 * rows * D));
    VD_TRY(vd_tensor_init(&ws->h, VD_F32, 2, sh, r));
    VD_TRY(alloc2(be, &ws->ck, B * VD_DIT_TEXT_LEN, D));
    return alloc2(be, &ws->cv, B * VD_DIT_TEXT_LEN, D);
}

static vd_status run_block(vd_dit *m, const dit_block *b, workspace *ws, int64_t B, int64_t F, int64_t Hp, int64_t Wp)
{
    vd_backend *be = m->be;
    const int64_t H = m->cfg.heads, d = m->cfg.head_dim, L = F * Hp * Wp;
    const float eps = m->cfg.eps, scale = 1.0f / sqrtf((float)d);
    /* m0..m5 = modulation + e0 (shared by the batch: same timestep) */
    VD_TRY(vd_op_add(be, &b->modulation, &ws->e0, &ws->mod));
    vd_tensor m0 = row_of(&ws->mod, 0), m1 = row_of(&ws->mod, 1), m2 = row_of(&ws->mod, 2);
    vd_tensor m3 = row_of(&ws->mod, 3), m4 = row_of(&ws->mod, 4), m5 = row_of(&ws->mod, 5);

    /* self-attention */
    VD_TRY(vd_op_layernorm_modulate(be, &ws->x, eps, NULL, NULL, &m0, &m1, &ws->a));
    VD_TRY(vd_op_matmul(be, &ws->a, &b->sa_q.w, &b->sa_q.b, &ws->q));
    VD_TRY(vd_op_matmul(be, &ws->a, &b->sa_k.w, &b->sa_k.b, &ws->k));
    VD_TRY(vd_op_matmul(be, &ws->a, &b->sa_v.w, &b->sa_v.b, &ws->v));
    VD_TRY(vd_op_rmsnorm(be, &ws->q, &b->sa_norm_q, eps, &ws->q));
    VD_TRY(vd_op_rmsnorm(be, &ws->k, &b->sa_norm_k, eps, &ws->k));
    {
        int64_t s3[3] = {B * L, H, d};
        vd_tensor q3, k3;
        VD_TRY(vd_tensor_reshape(&ws->q, 3, s3, &q3));
        VD_TRY(vd_tensor_reshape(&ws->k, 3, s3, &k3));
        VD_TRY(vd_op_rope3d(be, &q3, F, Hp, Wp, 10000.0, &q3));
        VD_TRY(vd_op_rope3d(be, &k3, F, Hp, Wp, 10000.0, &k3));
    }
    {
        vd_tensor q4 = heads_view(&ws->q, B, L, H, d), k4 = heads_view(&ws->k, B, L, H, d);
        /* the output goes to a: its LN values are dead once q, k, v exist */
        vd_tensor v4 = heads_view(&ws->v, B, L, H, d), o4 = heads_view(&ws->a, B, L, H, d);
        VD_TRY(vd_op_attention(be, &q4, &k4, &v4, scale, NULL, NULL, &o4));
    }
    /* the projection goes to q, dead after the attention */
    VD_TRY(vd_op_matmul(be, &ws->a, &b->sa_o.w, &b->sa_o.b, &ws->q));
    VD_TRY(vd_op_add_gated(be, &ws->x, &ws->q, &m2, &ws->x));

    /* cross-attention over the 512 text rows (no RoPE, no mask, no gate) */
    const int64_t Lc = VD_DIT_TEXT_LEN;
    VD_TRY(vd_op_layernorm_modulate(be, &ws->x, eps, &b->norm3_w, &b->norm3_b, NULL, NULL, &ws->a));
    VD_TRY(vd_op_matmul(be, &ws->a, &b->ca_q.w, &b->ca_q.b, &ws->q));
    VD_TRY(vd_op_rmsnorm(be, &ws->q, &b->ca_norm_q, eps, &ws->q));
    VD_TRY(vd_op_matmul(be, &ws->ctx, &b->ca_k.w, &b->ca_k.b, &ws->ck));
    VD_TRY(vd_op_rmsnorm(be, &ws->ck, &b->ca_norm_k, eps, &ws->ck));
    VD_TRY(vd_op_matmul(be, &ws->ctx, &b->ca_v.w, &b->ca_v.b, &ws->cv));
    {
        vd_tensor q4 = heads_view(&ws->q, B, L, H, d), o4 = heads_view(&ws->a, B, L, H, d);
        vd_tensor k4 = heads_view(&ws->ck, B, Lc, H, d), v4 = heads_view(&ws->cv, B, Lc, H, d);
        VD_TRY(vd_op_attention(be, &q4, &k4, &v4, scale, NULL, NULL, &o4));
    }
    VD_TRY(vd_op_matmul(be, &ws->a, &b->ca_o.w, &b->ca_o.b, &ws->q));
    VD_TRY(vd_op_add(be, &ws->x, &ws->q, &ws->x));

    /* feed-forward */
    VD_TRY(vd_op_layernorm_modulate(be, &ws->x, eps, NULL, NULL, &m3, &m4, &ws->a));
    VD_TRY(vd_op_matmul(be, &ws->a, &b->ffn0.w, &b->ffn0.b, &ws->h));
    VD_TRY(vd_op_gelu_tanh(be, &ws->h, &ws->h));
    /* h overlays q, k, v; the output goes to a, dead once h exists */
    VD_TRY(vd_op_matmul(be, &ws->h, &b->ffn2.w, &b->ffn2.b, &ws->a));
    return vd_op_add_gated(be, &ws->x, &ws->a, &m5, &ws->x);
}

/* latent [B, C, T, H, W] → tokens [B·T·Hp·Wp, C·ph·pw] (index c·ph·pw + i·pw + j) */
static vd_status patchify(vd_dit *m, workspace *ws, int64_t B, int64_t C, int64_t T, int64_t Hp, int64_t Wp)
{
    const int64_t ph = m->cfg.patch[1], pw = m->cfg.patch[2];
    for (int64_t b = 0; b < B; b++)
        for (int64_t f = 0; f < T; f++) {
            vd_tensor src, dst;
            /* one frame of one sample: [C, Hp, ph, Wp, pw] (strides of the 5-D latent) */
            src = ws->latent;
            src.ndim = 5;
            src.data = (float *)ws->latent.data + (b * C * T + f) * ws->latent.stride[2];
            int64_t HW = ws->latent.stride[2]; /* H·W */
            int64_t Wfull = Wp * pw;
            src.shape[0] = C, src.stride[0] = T * HW;
            src.shape[1] = Hp, src.stride[1] = ph * Wfull;
            src.shape[2] = ph, src.stride[2] = Wfull;
            src.shape[3] = Wp, src.stride[3] = pw;
            src.shape[4] = pw, src.stride[4] = 1;
            src.owner = NULL;
            /* destination rows of this frame, viewed [Hp, Wp, C, ph, pw] → permuted to [C, Hp, ph, Wp, pw] */
            int64_t row0 = (b * T + f) * Hp * Wp;
            dst = ws->tokens;
            dst.owner = NULL;
            dst.ndim = 5;
            dst.data = (float *)ws->tokens.data + row0 * C * ph * pw;
            dst.shape[0] = C, dst.stride[0] = ph * pw;
            dst.shape[1] = Hp, dst.stride[1] = Wp * C * ph * pw;
            dst.shape[2] = ph, dst.stride[2] = pw;
            dst.shape[3] = Wp, dst.stride[3] = C * ph * pw;
            dst.shape[4] = pw, dst.stride[4] = 1;
            VD_TRY(vd_op_copy(m->be, &src, &dst));
        }
    return VD_OK;
}

/* head output [B·T·Hp·Wp, ph·pw·C_out] (index (i·pw + j)·C_out + c) → [B, C_out, T, H, W] */
static vd_status unpatchify(vd_dit *m, workspace *ws, vd_tensor *vel, int64_t B, int64_t T, int64_t Hp, int64_t Wp)
{
    const int64_t ph = m->cfg.patch[1], pw = m->cfg.patch[2], C = m->cfg.out_dim;
    const int64_t H = Hp * ph, W = Wp * pw;
    for (int64_t b = 0; b < B; b++)
        for (int64_t f = 0; f < T; f++) {
            vd_tensor src = ws->out, dst = *vel;
            src.owner = dst.owner = NULL;
            int64_t row0 = (b * T + f) * Hp * Wp;
            src.ndim = 5;
            src.data = (float *)ws->out.data + row0 * ph * pw * C;
            /* [C, Hp, ph, Wp, pw] read from [Hp, Wp, ph, pw, C] */
            src.shape[0] = C, src.stride[0] = 1;
            src.shape[1] = Hp, src.stride[1] = Wp * ph * pw * C;
            src.shape[2] = ph, src.stride[2] = pw * C;
            src.shape[3] = Wp, src.stride[3] = ph * pw * C;
            src.shape[4] = pw, src.stride[4] = C;
            dst.ndim = 5;
            dst.data = (float *)vel->data + (b * C * T + f) * H * W;
            dst.shape[0] = C, dst.stride[0] = T * H * W;
            dst.shape[1] = Hp, dst.stride[1] = ph * W;
            dst.shape[2] = ph, dst.stride[2] = W;
            dst.shape[3] = Wp, dst.stride[3] = pw;
            dst.shape[4] = pw, dst.stride[4] = 1;
            VD_TRY(vd_op_copy(m->be, &src, &dst));
        }
    return VD_OK;
}

static vd_status check_call(const vd_dit *m, const vd_dit_call *c)
{
    const vd_dit_config *g = &m->cfg;
    if (c->batch < 1 || c->batch > 2)
        return vd_error(VD_ERR_INVALID_ARGUMENT, "DiT batch of %d (1 or 2: cond and uncond)", c->batch);
    if (c->frames < 1 || c->height < 1 || c->width < 1)
        return vd_error(VD_ERR_SHAPE, "latent of %lld×%lld×%lld frames×rows×columns is empty", (long long)c->frames,
                        (long long)c->height, (long long)c->width);
    if (c->height % g->patch[1] || c->width % g->patch[2])
        return vd_error(VD_ERR_SHAPE,
                        "latent height %lld and width %lld must be multiples of the patch size %lld×%lld (images: "
                        "multiples of %lld pixels)",
                        (long long)c->height, (long long)c->width, (long long)g->patch[1], (long long)g->patch[2],
                        (long long)(g->patch[1] * 8));
    if (c->height / g->patch[1] > 4096 || c->width / g->patch[2] > 4096 || c->frames > 4096)
        return vd_error(VD_ERR_SHAPE, "latent of %lld×%lld×%lld is beyond the model's position tables",
                        (long long)c->frames, (long long)c->height, (long long)c->width);
    if (!isfinite(c->timestep))
        return vd_error(VD_ERR_INVALID_ARGUMENT, "timestep is not finite");
    for (int b = 0; b < c->batch; b++) {
        const vd_tensor *t = c->text[b];
        if (!t || t->ndim != 2 || t->shape[0] != VD_DIT_TEXT_LEN || t->shape[1] != g->dim)
            return vd_error(VD_ERR_SHAPE, "text context %d is not an embedded [512, %lld] tensor from vd_dit_embed_text", b,
                            (long long)g->dim);
    }
    int64_t n = (int64_t)c->batch * g->in_dim * c->frames * c->height * c->width;
    for (int64_t i = 0; i < n; i++)
        if (!isfinite(c->latent[i]))
            return vd_error(VD_ERR_INVALID_ARGUMENT, "latent holds a non-finite value (NaN or inf) at element %lld",
                            (long long)i);
    return VD_OK;
}

static vd_status forward(vd_dit *m, const vd_dit_call *c, workspace *ws)
{
    vd_backend *be = m->be;
    const vd_dit_config *g = &m->cfg;
    const int64_t B = c->batch, C = g->in_dim, T = c->frames, Hl = c->height, Wl = c->width;
    const int64_t Hp = Hl / g->patch[1], Wp = Wl / g->patch[2], L = T * Hp * Wp, D = g->dim;
    const int64_t pdim = C * g->patch[1] * g->patch[2];

    /* time embedding e [1, D] and its projection e0 [6, D] */
    float *freq = malloc((size_t)g->freq_dim * sizeof *freq);
    if (!freq)
        return vd_error(VD_ERR_OUT_OF_MEMORY, "out of memory");
    sinusoid(c->timestep, g->freq_dim, freq);
    int64_t sf[2] = {1, g->freq_dim};
    vd_status st = vd_upload_f32(be, freq, 2, sf, &ws->t_freq);
    free(freq);
    VD_TRY(st);
    VD_TRY(alloc2(be, &ws->e1, 1, D));
    VD_TRY(alloc2(be, &ws->e, 1, D));
    VD_TRY(alloc2(be, &ws->e_silu, 1, D));
    VD_TRY(alloc2(be, &ws->e0, 1, 6 * D));
    VD_TRY(vd_op_matmul(be, &ws->t_freq, &m->time0.w, &m->time0.b, &ws->e1));
    VD_TRY(vd_op_silu(be, &ws->e1, &ws->e1));
    VD_TRY(vd_op_matmul(be, &ws->e1, &m->time2.w, &m->time2.b, &ws->e));
    VD_TRY(vd_op_silu(be, &ws->e, &ws->e_silu));
    VD_TRY(vd_op_matmul(be, &ws->e_silu, &m->time_proj.w, &m->time_proj.b, &ws->e0));
    {
        int64_t s6[2] = {6, D};
        vd_tensor e06;
        VD_TRY(vd_tensor_reshape(&ws->e0, 2, s6, &e06));
        e06.owner = ws->e0.owner;
        ws->e0 = e06;
    }
    VD_TRY(alloc2(be, &ws->mod, 6, D));

    /* patch embedding */
    int64_t s5[5] = {B, C, T, Hl, Wl};
    VD_TRY(vd_upload_f32(be, c->latent, 5, s5, &ws->latent));
    VD_TRY(alloc2(be, &ws->tokens, B * L, pdim));
    VD_TRY(patchify(m, ws, B, C, T, Hp, Wp));
    VD_TRY(alloc2(be, &ws->x, B * L, D));
    VD_TRY(vd_op_matmul(be, &ws->tokens, &m->patch_w, &m->patch_b, &ws->x));
    vd_tensor_release(&ws->tokens);
    vd_tensor_release(&ws->latent);

    /* text contexts side by side: [B·512, D] */
    VD_TRY(alloc2(be, &ws->ctx, B * VD_DIT_TEXT_LEN, D));
    for (int64_t b = 0; b < B; b++) {
        vd_tensor dst;
        VD_TRY(vd_tensor_slice(&ws->ctx, 0, b * VD_DIT_TEXT_LEN, (b + 1) * VD_DIT_TEXT_LEN, &dst));
        VD_TRY(vd_op_copy(be, c->text[b], &dst));
    }
    VD_TRY(alloc_block_buffers(be, g, ws, B, L));

    for (int64_t i = 0; i < g->layers; i++) {
        if (c->cancel && atomic_load(c->cancel))
            return vd_error(VD_ERR_CANCELLED, "cancelled before block %lld of %lld", (long long)i, (long long)g->layers);
        dit_block streamed;
        const dit_block *blk;
        st = acquire_block(m, i, &streamed, &blk);
        if (st != VD_OK)
            return vd_error_context(st, "DiT block %lld (streaming its weights): ", (long long)i);
        st = run_block(m, blk, ws, B, T, Hp, Wp);
        vd_status rs = release_block(m, i);
        if (st == VD_OK)
            st = rs;
        if (st != VD_OK)
            return vd_error_context(st, "DiT block %lld: ", (long long)i);
    }

    /* head: (h0, h1) = head.modulation + e; out = head(LN(x)·(1 + h1) + h0) */
    VD_TRY(alloc2(be, &ws->head_mod, 2, D));
    VD_TRY(vd_op_add(be, &m->head_modulation, &ws->e, &ws->head_mod));
    vd_tensor h0 = row_of(&ws->head_mod, 0), h1 = row_of(&ws->head_mod, 1);
    VD_TRY(vd_op_layernorm_modulate(be, &ws->x, g->eps, NULL, NULL, &h0, &h1, &ws->a));
    const int64_t pout = g->out_dim * g->patch[1] * g->patch[2];
    VD_TRY(alloc2(be, &ws->out, B * L, pout));
    VD_TRY(vd_op_matmul(be, &ws->a, &m->head.w, &m->head.b, &ws->out));

    vd_tensor vel;
    int64_t so[5] = {B, g->out_dim, T, Hl, Wl};
    VD_TRY(vd_tensor_alloc(be, VD_F32, 5, so, &vel));
    st = unpatchify(m, ws, &vel, B, T, Hp, Wp);
    if (st == VD_OK)
        st = vd_tensor_download(be, &vel, c->velocity, vd_tensor_nbytes(&vel));
    vd_tensor_release(&vel);
    return st;
}

vd_status vd_dit_forward(vd_dit *m, const vd_dit_call *c)
{
    VD_TRY(check_call(m, c));
    workspace ws;
    memset(&ws, 0, sizeof ws);
    vd_status st = forward(m, c, &ws);
    release_workspace(&ws);
    return st;
}

/* ---- sizing and timing for the planner -------------------------------------- */

/* `bytes` rounded as the CUDA allocator's size classes round it (16 steps
 * per power of two), so that the estimate of a big workspace is not off by
 * a blanket percentage. */
static double alloc_rounded(double bytes)
{
    if (bytes <= 0)
        return 0;
    const double p = exp2(floor(log2(bytes))), step = p / 16.0;
    return p + ceil((bytes - p) / step) * step;
}

uint64_t vd_dit_activation_bytes(const vd_dit_config *c, int batch, int64_t frames, int64_t height, int64_t width)
{
    const double B = batch, D = (double)c->dim, F = (double)c->ffn_dim, Lc = VD_DIT_TEXT_LEN;
    const double ph = (double)c->patch[1], pw = (double)c->patch[2];
    const double L = (double)frames * floor((double)height / ph) * floor((double)width / pw);
    const double pixels = (double)frames * (double)height * (double)width;
    /* forward()'s workspace: x a [B·L, D], the q k v | h region [B·L, max(3D, F)], ctx ck cv [B·512, D] */
    double bytes = 2 * alloc_rounded(4.0 * B * L * D) + alloc_rounded(4.0 * B * L * fmax(3 * D, F)) +
                   3 * alloc_rounded(4.0 * B * Lc * D);
    /* the head's output and the velocity, or at the start the latent and its patches (the larger) */
    const double head = alloc_rounded(4.0 * B * L * (double)c->out_dim * ph * pw) +
                        alloc_rounded(4.0 * B * (double)c->out_dim * pixels);
    const double start = alloc_rounded(4.0 * B * (double)c->in_dim * pixels) +
                         alloc_rounded(4.0 * B * L * (double)c->in_dim * ph * pw);
    bytes += head > start ? head : start;
    /* the two embedded prompts the caller holds, the time embedding */
    bytes += 2 * alloc_rounded(4.0 * Lc * D) + 4.0 * (16 * D + (double)c->freq_dim);
    /* the largest op scratch: matmul's bf16 x chunk and weight tile, or
     * attention's bf16 q, k, v with rows padded to 128, for self- and
     * cross-attention (backend/cuda: 512 MiB, 64 MiB, 1 GiB caps) */
    const double mib = 1024.0 * 1024.0;
    const double Lp = ceil(L / 128.0) * 128.0, Lcp = ceil(Lc / 128.0) * 128.0;
    double mm = alloc_rounded(fmin(512 * mib, 2 * B * L * F)) + alloc_rounded(fmin(64 * mib, 2 * F * D)) + 4 * F;
    double attn = alloc_rounded(fmin(1024 * mib, 2 * B * D * (Lp + 2 * fmax(Lp, Lcp))));
    /* cuDNN's fused attention (the preferred path where built): bf16 q, k,
     * v and o in one uncapped block, plus its workspace */
    attn = fmax(attn, alloc_rounded(4 * B * D * (L + L)) + 16 * mib);
    bytes += fmax(mm, attn);
    /* cuBLASLt's workspace, small blocks, slack (measured on the H200 for
     * the 14B at 480p×81: 9.47 GB used against 9.53 GB estimated before
     * this slack) */
    bytes += 32 * mib + 16 * mib;
    return (uint64_t)bytes;
}

static double now_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

vd_status vd_dit_time_block(vd_backend *be, const vd_weights *w, int64_t frames, int64_t height, int64_t width,
                            int repeats, double *seconds)
{
    *seconds = 0;
    vd_dit *m;
    VD_TRY(new_model(be, w, &m));
    const vd_dit_config *g = &m->cfg;
    if (frames < 1 || height < g->patch[1] || width < g->patch[2] || height % g->patch[1] || width % g->patch[2]) {
        vd_dit_free(m);
        return vd_error(VD_ERR_SHAPE, "latent %lld×%lld×%lld: height and width must be multiples of %lld",
                        (long long)frames, (long long)height, (long long)width, (long long)g->patch[1]);
    }
    if (repeats < 1)
        repeats = 1;
    const int64_t B = 2, Hp = height / g->patch[1], Wp = width / g->patch[2], L = frames * Hp * Wp, D = g->dim;
    workspace ws;
    memset(&ws, 0, sizeof ws);
    vd_status st = load_unit(m, w, 1);
    if (st == VD_OK)
        st = alloc2(be, &ws.x, B * L, D);
    if (st == VD_OK)
        st = alloc_block_buffers(be, g, &ws, B, L);
    if (st == VD_OK)
        st = alloc2(be, &ws.ctx, B * VD_DIT_TEXT_LEN, D);
    if (st == VD_OK)
        st = alloc2(be, &ws.e0, 6, D);
    if (st == VD_OK)
        st = alloc2(be, &ws.mod, 6, D);
    if (st == VD_OK)
        st = vd_op_fill(be, &ws.x, 0.5f);
    if (st == VD_OK)
        st = vd_op_fill(be, &ws.ctx, 0.25f);
    if (st == VD_OK)
        st = vd_op_fill(be, &ws.e0, 0.0f);
    double t0 = 0;
    for (int r = -1; st == VD_OK && r < repeats; r++) {
        if (r == 0) {
            st = vd_backend_synchronize(be);
            t0 = now_seconds();
        }
        if (st == VD_OK)
            st = run_block(m, &m->blocks[0], &ws, B, frames, Hp, Wp);
    }
    if (st == VD_OK)
        st = vd_backend_synchronize(be);
    if (st == VD_OK)
        *seconds = (now_seconds() - t0) / repeats;
    release_workspace(&ws);
    vd_dit_free(m);
    if (st != VD_OK)
        return vd_error_context(st, "timing one DiT block at latent %lld×%lld×%lld on %s: ", (long long)frames,
                                (long long)height, (long long)width, be->name);
    return VD_OK;
}

vd_status vd_dit_load_with_allocation(vd_backend *be, const vd_weights *w, const vd_dit_allocation *a, vd_dit **out)
{
    *out = NULL;
    if (!a || !a->alloc || a->alloc->mode == VD_ALLOC_RESIDENT)
        return vd_dit_load(be, w, out);
    const char *text = a->text ? a->text : "";
#if !VD_HAVE_CUDA
    (void)be;
    (void)w;
    return vd_error(VD_ERR_UNSUPPORTED,
                    "allocation '%s' places weights off the compute device; offloading needs a CUDA build of vdiff "
                    "(-Dcuda=enabled) and device=cuda:N",
                    text);
#else
    if (be->kind != VD_DEVICE_CUDA)
        return vd_error(VD_ERR_UNSUPPORTED,
                        "allocation '%s' streams weights to a GPU, but the model computes on %s; use device=cuda:N "
                        "(or drop the allocation)",
                        text, be->name);
    vd_arch_info info;
    vd_status st = vd_arch_detect(w, &info);
    if (st != VD_OK)
        return vd_error_context(st, "'%s': ", vd_weights_path(w));
    if (info.arch != VD_ARCH_WAN_DIT)
        return vd_error(VD_ERR_UNSUPPORTED, "'%s' is a %s, not a Wan DiT", vd_weights_path(w), info.name);
    vd_offload_options opt;
    VD_TRY(vd_offload_options_from_env(&opt));
    vd_pack_layout *layout;
    VD_TRY(vd_dit_layout(w, &layout));
    vd_plan_gpu gpus[VD_PLAN_MAX_GPUS];
    int n_gpus = 0;
    /* free memory of the GPUs the allocation names (auto: all; querying starts a context there) */
    uint32_t mask = a->alloc->mode == VD_ALLOC_AUTO ? ~0u : 0u;
    for (int i = 0; i < a->alloc->n_entries; i++)
        if (a->alloc->entries[i].device.is_cuda && a->alloc->entries[i].device.index < 32)
            mask |= 1u << a->alloc->entries[i].device.index;
    for (int i = 0; i < a->alloc->n_donors; i++)
        if (a->alloc->donors[i].is_cuda && a->alloc->donors[i].index < 32)
            mask |= 1u << a->alloc->donors[i].index;
    st = vd_offload_gpus(be->device_index, &opt, mask, gpus, VD_PLAN_MAX_GPUS, &n_gpus);
    vd_plan_unit_in units[VD_PLAN_MAX_UNITS];
    for (int u = 0; u < layout->n; u++)
        units[u] = (vd_plan_unit_in){.name = layout->units[u].name, .bytes = layout->units[u].bytes};
    vd_plan_input in = {
        .units = units, .n_units = layout->n, .compute = be->device_index, .gpus = gpus, .n_gpus = n_gpus,
        .alloc = a->alloc, .alloc_text = text, .depth = a->depth,
        .activation_bytes = vd_dit_activation_bytes(&info.dit, 2, a->frames, a->height, a->width),
        .budget_bytes = a->budget_bytes, .simulated = opt.sim.active,
    };
    vd_plan_host_memory(&in.host_total_bytes, &in.host_free_bytes);
    if (st == VD_OK && a->alloc->mode == VD_ALLOC_AUTO) {
        if (!in.budget_bytes && !(a->alloc->budget_bytes > 0)) {
            uint64_t free_b = 0;
            for (int i = 0; i < n_gpus; i++)
                if (gpus[i].index == be->device_index)
                    free_b = gpus[i].free_bytes;
            in.budget_bytes = free_b > a->reserve_bytes ? free_b - a->reserve_bytes : 1;
        }
        /* the automatic mode decides from measured compute and link speeds */
        st = vd_dit_time_block(be, w, a->frames, a->height, a->width, 2, &in.block_compute_s);
        vd_backend_cuda_release_cached(be);
        for (int i = 0; st == VD_OK && i < n_gpus; i++)
            if (gpus[i].index != be->device_index)
                st = vd_offload_measure_link(be, VD_LINK_DONOR(gpus[i].index), 256u << 20, &opt, gpus[i].peer,
                                             &in.link_bps[VD_LINK_DONOR(gpus[i].index)]);
        if (st == VD_OK)
            st = vd_offload_measure_link(be, VD_LINK_HOST, 256u << 20, &opt, false, &in.link_bps[VD_LINK_HOST]);
        if (st == VD_OK) { /* the memory they used is back: look again */
                    st = vd_offload_gpus(be->device_index, &opt, mask, gpus, VD_PLAN_MAX_GPUS, &n_gpus);
        }
        if (st != VD_OK)
            st = vd_error_context(st, "measuring for allocation '%s': ", text);
    }
    vd_plan *plan = NULL;
    if (st == VD_OK) {
        plan = malloc(sizeof *plan);
        st = plan ? vd_plan_make(&in, plan) : vd_error(VD_ERR_OUT_OF_MEMORY, "out of memory");
    }
    vd_pack_layout_free(layout);
    if (st == VD_OK)
        st = vd_dit_load_planned(be, w, plan, &opt, out);
    free(plan);
    return st;
#endif
}

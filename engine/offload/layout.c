#include "offload/layout.h"

#include <stdlib.h>
#include <string.h>

#include "core/error.h"

vd_status vd_pack_layout_new(int n_units, vd_pack_layout **out)
{
    *out = NULL;
    if (n_units < 1)
        return vd_error(VD_ERR_INVALID_ARGUMENT, "a packed layout needs at least one unit");
    vd_pack_layout *l = calloc(1, sizeof *l);
    if (l)
        l->units = calloc((size_t)n_units, sizeof *l->units);
    if (!l || !l->units) {
        free(l);
        return vd_error(VD_ERR_OUT_OF_MEMORY, "out of memory for a layout of %d units", n_units);
    }
    l->n = n_units;
    *out = l;
    return VD_OK;
}

void vd_pack_layout_free(vd_pack_layout *l)
{
    if (!l)
        return;
    for (int i = 0; i < l->n; i++)
        free(l->units[i].entries);
    free(l->units);
    free(l);
}

uint64_t vd_pack_layout_bytes(const vd_pack_layout *l)
{
    uint64_t b = 0;
    for (int i = 0; i < l->n; i++)
        b += l->units[i].bytes;
    return b;
}

static uint64_t align_up(uint64_t x) { return (x + VD_PACK_ALIGN - 1) / VD_PACK_ALIGN * VD_PACK_ALIGN; }

static vd_status append(vd_pack_unit *u, const vd_weight *src, const vd_tensor *view, uint64_t nbytes, bool to_f32)
{
    if (u->n == u->cap) {
        int cap = u->cap ? 2 * u->cap : 32;
        vd_pack_entry *e = realloc(u->entries, (size_t)cap * sizeof *e);
        if (!e)
            return vd_error(VD_ERR_OUT_OF_MEMORY, "out of memory for the layout of %s", u->name);
        u->entries = e;
        u->cap = cap;
    }
    vd_pack_entry *e = &u->entries[u->n++];
    e->src = src;
    e->view = *view;
    e->view.data = NULL;
    e->view.owner = NULL;
    e->view.name = src->name;
    e->offset = align_up(u->bytes);
    e->nbytes = nbytes;
    e->to_f32 = to_f32;
    u->bytes = align_up(e->offset + nbytes);
    return VD_OK;
}

static const vd_weight *lookup(const vd_weights *w, const char *name, vd_status *st)
{
    const vd_weight *x = vd_weights_find(w, name);
    if (!x) {
        *st = vd_error(VD_ERR_FORMAT, "tensor '%s' is missing from '%s'", name, vd_weights_path(w));
        return NULL;
    }
    if (!x->tensor.data) {
        *st = vd_error(VD_ERR_INVALID_ARGUMENT, "tensor '%s' has no data (a shape-only weight set)", name);
        return NULL;
    }
    *st = VD_OK;
    return x;
}

vd_status vd_pack_add_weight(vd_pack_unit *u, const vd_weights *w, const char *name, int ndim, const int64_t *shape)
{
    vd_status st;
    const vd_weight *x = lookup(w, name, &st);
    if (!x)
        return st;
    if (!vd_tensor_is_contiguous(&x->tensor))
        return vd_error(VD_ERR_FORMAT, "tensor '%s' in '%s' is not contiguous", name, vd_weights_path(w));
    vd_tensor view = x->tensor;
    if (ndim > 0) {
        st = vd_tensor_reshape(&x->tensor, ndim, shape, &view);
        if (st != VD_OK)
            return vd_error_context(st, "packing '%s': ", name);
    }
    return append(u, x, &view, vd_tensor_nbytes(&x->tensor), false);
}

vd_status vd_pack_add_f32(vd_pack_unit *u, const vd_weights *w, const char *name, int ndim, const int64_t *shape)
{
    vd_status st;
    const vd_weight *x = lookup(w, name, &st);
    if (!x)
        return st;
    vd_tensor want;
    VD_TRY(vd_tensor_init(&want, VD_F32, ndim, shape, NULL));
    if (vd_tensor_nelem(&x->tensor) != vd_tensor_nelem(&want)) {
        char a[96], b[96];
        return vd_error(VD_ERR_SHAPE, "tensor '%s' has shape %s, expected %s", name,
                        vd_shape_str(&x->tensor, a, sizeof a), vd_shape_str(&want, b, sizeof b));
    }
    return append(u, x, &want, vd_tensor_nbytes(&want), true);
}

vd_tensor vd_pack_view(const vd_pack_unit *u, int k, void *base)
{
    vd_tensor t = u->entries[k].view;
    t.data = (uint8_t *)base + u->entries[k].offset;
    t.owner = NULL;
    return t;
}

/* An f32 parameter's values, as vd_load_param_f32 computes them. */
static vd_status convert(const vd_pack_entry *e, float **out)
{
    const int64_t n = vd_tensor_nelem(&e->view);
    float *v = malloc((size_t)(n > 0 ? n : 1) * sizeof *v);
    if (!v)
        return vd_error(VD_ERR_OUT_OF_MEMORY, "out of memory converting '%s'", e->src->name);
    vd_status st = vd_dtype_to_f32(e->src->tensor.dtype, e->src->tensor.data, v, n);
    if (st != VD_OK) {
        free(v);
        return vd_error_context(st, "packing '%s': ", e->src->name);
    }
    if (e->src->tensor.scale != 1.0f)
        for (int64_t i = 0; i < n; i++)
            v[i] *= e->src->tensor.scale;
    *out = v;
    return VD_OK;
}

vd_status vd_pack_fill(const vd_pack_unit *u, uint64_t offset, uint64_t size, void *dst)
{
    if (offset > u->bytes || size > u->bytes - offset)
        return vd_error(VD_ERR_INVALID_ARGUMENT, "packing %s: bytes %llu..%llu are outside its %llu bytes", u->name,
                        (unsigned long long)offset, (unsigned long long)(offset + size),
                        (unsigned long long)u->bytes);
    uint8_t *d = dst;
    const uint64_t end = offset + size;
    uint64_t at = offset;
    for (int k = 0; k < u->n && at < end; k++) {
        const vd_pack_entry *e = &u->entries[k];
        const uint64_t e_end = e->offset + e->nbytes;
        if (e_end <= at)
            continue;
        if (e->offset >= end)
            break;
        if (e->offset > at) { /* padding before this entry */
            memset(d + (at - offset), 0, e->offset - at);
            at = e->offset;
        }
        const uint64_t stop = e_end < end ? e_end : end;
        if (e->to_f32) {
            float *v = NULL;
            VD_TRY(convert(e, &v));
            memcpy(d + (at - offset), (const uint8_t *)v + (at - e->offset), stop - at);
            free(v);
        } else {
            memcpy(d + (at - offset), (const uint8_t *)e->src->tensor.data + (at - e->offset), stop - at);
        }
        at = stop;
    }
    if (at < end)
        memset(d + (at - offset), 0, end - at);
    return VD_OK;
}

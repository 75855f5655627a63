/* Weight sets: a validated model file (safetensors or GGUF, chosen by
 * content) with fp8 scales folded and names mapped onto the canonical
 * names, or an in-memory set built by code. */
#include "io/weights.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "core/mapped_file.h"
#include "io/fp8_scaled.h"
#include "io/gguf.h"
#include "io/name_index.h"
#include "io/name_map.h"
#include "io/safetensors.h"

#define ORIG_SHAPE_PREFIX "comfy.gguf.orig_shape."

struct vd_weights {
    vd_file_format format;
    vd_mapped_file file; /* empty for in-memory sets */
    vd_weight *items;
    size_t count, capacity;
    vd_name_index index; /* canonical names */
    vd_meta_entry *meta;
    bool *meta_is_string;
    size_t n_meta;
    vd_gguf gguf; /* GGUF files only */
    const char *layout;
    const char *scheme;
};

static void free_items(vd_weights *w)
{
    for (size_t i = 0; i < w->count; i++) {
        free(w->items[i].name);
        free(w->items[i].file_name);
    }
    free(w->items);
    w->items = NULL;
    w->count = w->capacity = 0;
}

void vd_weights_close(vd_weights *w)
{
    if (!w)
        return;
    free_items(w);
    vd_name_index_free(&w->index);
    for (size_t i = 0; i < w->n_meta; i++) {
        free((char *)w->meta[i].key);
        free((char *)w->meta[i].value);
    }
    free(w->meta);
    free(w->meta_is_string);
    vd_gguf_free(&w->gguf);
    vd_mapped_file_close(&w->file);
    free(w);
}

/* ---- building the set ---------------------------------------------------------- */

static vd_status alloc_items(vd_weights *w, size_t n)
{
    if (n == 0)
        return VD_OK;
    w->items = calloc(n, sizeof *w->items);
    if (!w->items)
        return vd_error(VD_ERR_OUT_OF_MEMORY, "'%s': out of memory for %zu tensors", w->file.path, n);
    w->capacity = n;
    return VD_OK;
}

/* Append a tensor stored at absolute `offset` in the file. */
static vd_status add_file_tensor(vd_weights *w, const char *name, vd_dtype dtype, int ndim, const int64_t *shape,
                                 uint64_t offset, uint64_t nbytes)
{
    vd_weight *it = &w->items[w->count];
    it->file_name = strdup(name);
    if (!it->file_name)
        return vd_error(VD_ERR_OUT_OF_MEMORY, "'%s': out of memory", w->file.path);
    w->count++;
    /* offset + nbytes <= size was checked by the parser. */
    void *data = (void *)(w->file.data + offset);
    vd_status s = vd_tensor_init(&it->tensor, dtype, ndim, shape, data);
    if (s != VD_OK)
        return vd_error_context(VD_ERR_FORMAT, "'%s': tensor '%s': ", w->file.path, name);
    if (vd_tensor_nbytes(&it->tensor) != nbytes)
        return vd_error(VD_ERR_INTERNAL, "'%s': tensor '%s': size mismatch after validation", w->file.path, name);
    it->nbytes = (size_t)nbytes;
    it->offset = offset;
    return VD_OK;
}

static vd_status add_meta(vd_weights *w, const char *key, const char *value, size_t value_len, bool is_string)
{
    vd_meta_entry *m = &w->meta[w->n_meta];
    char *k = strdup(key);
    char *v = malloc(value_len + 1);
    if (!k || !v) {
        free(k);
        free(v);
        return vd_error(VD_ERR_OUT_OF_MEMORY, "'%s': out of memory", w->file.path);
    }
    memcpy(v, value, value_len);
    v[value_len] = '\0';
    m->key = k;
    m->value = v;
    w->meta_is_string[w->n_meta] = is_string;
    w->n_meta++;
    return VD_OK;
}

static vd_status alloc_meta(vd_weights *w, size_t n)
{
    if (n == 0)
        return VD_OK;
    w->meta = calloc(n, sizeof *w->meta);
    w->meta_is_string = calloc(n, sizeof *w->meta_is_string);
    if (!w->meta || !w->meta_is_string)
        return vd_error(VD_ERR_OUT_OF_MEMORY, "'%s': out of memory", w->file.path);
    return VD_OK;
}

/* Fold fp8 scales, drop the tensors that are not weights, map the names
 * and index them. */
static vd_status finish_file(vd_weights *w, const char *quant_metadata, bool block_quantized)
{
    const char *path = w->file.path;
    size_t n = w->count;
    bool *hidden = calloc(n ? n : 1, sizeof *hidden);
    if (!hidden)
        return vd_error(VD_ERR_OUT_OF_MEMORY, "'%s': out of memory", path);
    vd_quant_layout layout;
    vd_status s = vd_fp8_fold_scales(w->items, n, quant_metadata, path, hidden, &layout);
    if (s != VD_OK) {
        free(hidden);
        return s;
    }
    size_t kept = 0;
    for (size_t i = 0; i < n; i++) {
        if (hidden[i]) {
            free(w->items[i].file_name);
            continue;
        }
        w->items[kept++] = w->items[i];
    }
    free(hidden);
    w->count = kept;
    w->layout = block_quantized && layout == VD_LAYOUT_PLAIN ? "gguf block-quantized" : vd_quant_layout_name(layout);

    if (kept == 0) {
        w->scheme = vd_name_scheme_name(VD_NAMES_CANONICAL);
        return VD_OK;
    }
    const char **file_names = malloc(kept * sizeof *file_names);
    char **canon = calloc(kept, sizeof *canon);
    if (!file_names || !canon) {
        free(file_names);
        free(canon);
        return vd_error(VD_ERR_OUT_OF_MEMORY, "'%s': out of memory", path);
    }
    for (size_t i = 0; i < kept; i++)
        file_names[i] = w->items[i].file_name;
    vd_name_scheme scheme;
    s = vd_name_map_all(file_names, kept, path, canon, &scheme);
    free(file_names);
    if (s == VD_OK) {
        w->scheme = vd_name_scheme_name(scheme);
        for (size_t i = 0; i < kept; i++) {
            w->items[i].name = canon[i];
            w->items[i].tensor.name = canon[i];
        }
        bool dup; /* none: vd_name_map_all rejected collisions */
        size_t a, b;
        s = vd_name_index_build(&w->index, (const char *const *)canon, kept, &dup, &a, &b);
    }
    free(canon);
    return s;
}

static vd_status load_safetensors(vd_weights *w)
{
    vd_safetensors st;
    VD_TRY(vd_safetensors_parse(w->file.data, w->file.size, w->file.path, &st));
    w->format = VD_FORMAT_SAFETENSORS;
    vd_status s = alloc_items(w, st.n_tensors);
    for (size_t i = 0; i < st.n_tensors && s == VD_OK; i++) {
        const vd_safetensors_tensor *t = &st.tensors[i];
        s = add_file_tensor(w, t->name, t->dtype, t->ndim, t->shape, st.data_start + t->begin, t->end - t->begin);
    }
    if (s == VD_OK)
        s = alloc_meta(w, st.n_meta);
    const char *quant_metadata = NULL;
    for (size_t i = 0; i < st.n_meta && s == VD_OK; i++) {
        s = add_meta(w, st.meta[i].key, st.meta[i].value, strlen(st.meta[i].value), true);
        if (strcmp(st.meta[i].key, "_quantization_metadata") == 0)
            quant_metadata = w->meta[w->n_meta - 1].value;
    }
    vd_safetensors_free(&st);
    if (s == VD_OK)
        s = finish_file(w, quant_metadata, false);
    return s;
}

/* city96's converter may store a tensor flattened and record its real
 * shape in "comfy.gguf.orig_shape.<name>" (an array of integers). */
static vd_status apply_orig_shapes(vd_weights *w)
{
    const vd_gguf *g = &w->gguf;
    const size_t plen = strlen(ORIG_SHAPE_PREFIX);
    vd_name_index ix = {0};
    bool indexed = false;
    vd_status s = VD_OK;
    for (size_t k = 0; k < g->n_kv && s == VD_OK; k++) {
        const vd_gguf_kv *kv = &g->kv[k];
        if (strncmp(kv->key, ORIG_SHAPE_PREFIX, plen) != 0)
            continue;
        if (!indexed) {
            const char **names = malloc((w->count ? w->count : 1) * sizeof *names);
            if (!names)
                return vd_error(VD_ERR_OUT_OF_MEMORY, "'%s': out of memory", w->file.path);
            for (size_t i = 0; i < w->count; i++)
                names[i] = w->items[i].file_name;
            bool dup;
            size_t a, b;
            s = vd_name_index_build(&ix, names, w->count, &dup, &a, &b);
            free(names);
            if (s != VD_OK)
                break;
            indexed = true;
        }
        const char *tname = kv->key + plen;
        size_t ti;
        if (!vd_name_index_find(&ix, tname, &ti))
            continue; /* a shape for a tensor this file does not hold */
        vd_weight *it = &w->items[ti];
        const vd_gguf_value *v = &kv->value;
        int64_t shape[VD_MAX_DIMS];
        bool ok = v->type == VD_GGUF_ARRAY && v->v.arr.count >= 1 && v->v.arr.count <= VD_MAX_DIMS;
        for (uint64_t d = 0; ok && d < v->v.arr.count; d++) {
            vd_gguf_value e;
            ok = vd_gguf_array_at(v, d, &e);
            if (ok && (e.type == VD_GGUF_I32 || e.type == VD_GGUF_I64 || e.type == VD_GGUF_I16 || e.type == VD_GGUF_I8))
                shape[d] = e.v.i, ok = e.v.i >= 0;
            else if (ok && (e.type == VD_GGUF_U32 || e.type == VD_GGUF_U64 || e.type == VD_GGUF_U16 || e.type == VD_GGUF_U8))
                shape[d] = (int64_t)e.v.u, ok = e.v.u <= (uint64_t)INT64_MAX;
            else
                ok = false;
        }
        if (!ok) {
            s = vd_error(VD_ERR_FORMAT, "'%s': metadata '%s' is not an array of 1 to %d dimensions", w->file.path,
                         kv->key, VD_MAX_DIMS);
            break;
        }
        int nd = (int)v->v.arr.count;
        int64_t nelem = 1;
        for (int d = 0; d < nd && ok; d++) {
            if (shape[d] != 0 && nelem > INT64_MAX / shape[d])
                ok = false;
            else
                nelem *= shape[d];
        }
        if (!ok || nelem != vd_tensor_nelem(&it->tensor)) {
            s = vd_error(VD_ERR_FORMAT, "'%s': metadata '%s' gives a shape of a different element count than the tensor's",
                         w->file.path, kv->key);
            break;
        }
        int block = vd_dtype_info(it->tensor.dtype)->block_elems;
        if (shape[nd - 1] % block != 0) {
            s = vd_error(VD_ERR_UNSUPPORTED,
                         "'%s': tensor '%s' is %s with rows re-blocked to 256 elements; vdiff reads %s tensors only when "
                         "their real rows are whole blocks",
                         w->file.path, tname, vd_dtype_name(it->tensor.dtype), vd_dtype_name(it->tensor.dtype));
            break;
        }
        vd_tensor t;
        s = vd_tensor_reshape(&it->tensor, nd, shape, &t);
        if (s != VD_OK)
            break;
        it->tensor = t;
    }
    vd_name_index_free(&ix);
    return s;
}

static vd_status load_gguf(vd_weights *w)
{
    VD_TRY(vd_gguf_parse(w->file.data, w->file.size, w->file.path, &w->gguf));
    w->format = VD_FORMAT_GGUF;
    const vd_gguf *g = &w->gguf;
    VD_TRY(alloc_items(w, g->n_tensors));
    bool block_quantized = false;
    for (size_t i = 0; i < g->n_tensors; i++) {
        const vd_gguf_tensor *t = &g->tensors[i];
        VD_TRY(add_file_tensor(w, t->name, t->dtype, t->ndim, t->shape, g->data_start + t->offset, t->nbytes));
        block_quantized |= vd_dtype_info(t->dtype)->is_quantized;
    }
    VD_TRY(apply_orig_shapes(w));
    VD_TRY(alloc_meta(w, g->n_kv));
    for (size_t i = 0; i < g->n_kv; i++) {
        const vd_gguf_value *v = &g->kv[i].value;
        if (v->type == VD_GGUF_STRING) {
            VD_TRY(add_meta(w, g->kv[i].key, v->v.str.data, (size_t)v->v.str.len, true));
        } else {
            char buf[96];
            vd_gguf_value_format(v, buf, sizeof buf);
            VD_TRY(add_meta(w, g->kv[i].key, buf, strlen(buf), false));
        }
    }
    return finish_file(w, NULL, block_quantized);
}

/* A safetensors file starts with its header length and then '{'. */
static bool looks_like_safetensors(const vd_mapped_file *f)
{
    for (size_t i = 8; i < f->size && i < 72; i++) {
        uint8_t c = f->data[i];
        if (c == '{')
            return true;
        if (c != ' ' && c != '\t' && c != '\n' && c != '\r')
            return false;
    }
    return false;
}

vd_status vd_weights_open(const char *path, vd_weights **out)
{
    *out = NULL;
    if (!path || !path[0])
        return vd_error(VD_ERR_INVALID_ARGUMENT, "no model file given");
    vd_weights *w = calloc(1, sizeof *w);
    if (!w)
        return vd_error(VD_ERR_OUT_OF_MEMORY, "out of memory opening '%s'", path);
    vd_status s = vd_mapped_file_open(path, &w->file);
    if (s != VD_OK) {
        free(w);
        return s;
    }
    const vd_mapped_file *f = &w->file;
    if (f->size == 0)
        s = vd_error(VD_ERR_FORMAT, "'%s' is empty; expected a safetensors or GGUF model file", path);
    else if (f->size >= 4 && memcmp(f->data, "GGUF", 4) == 0)
        s = load_gguf(w);
    else if (looks_like_safetensors(f))
        s = load_safetensors(w);
    else
        s = vd_error(VD_ERR_FORMAT, "'%s' is neither a safetensors nor a GGUF file (%zu bytes)", path, f->size);
    if (s != VD_OK) {
        vd_weights_close(w);
        return s;
    }
    *out = w;
    return VD_OK;
}

vd_status vd_weights_new(vd_weights **out)
{
    *out = calloc(1, sizeof **out);
    if (!*out)
        return vd_error(VD_ERR_OUT_OF_MEMORY, "out of memory");
    (*out)->format = VD_FORMAT_NONE;
    (*out)->layout = vd_quant_layout_name(VD_LAYOUT_PLAIN);
    (*out)->scheme = vd_name_scheme_name(VD_NAMES_CANONICAL);
    return VD_OK;
}

vd_status vd_weights_add(vd_weights *w, const char *name, vd_dtype dtype, int ndim, const int64_t *shape,
                         const void *data)
{
    if (!w || !name || !name[0] || (ndim > 0 && !shape))
        return vd_error(VD_ERR_INVALID_ARGUMENT, "vd_weights_add: a set, a name and a shape are required");
    if (w->format != VD_FORMAT_NONE)
        return vd_error(VD_ERR_INVALID_ARGUMENT, "cannot add '%s' to '%s': tensors are added to in-memory sets only",
                        name, w->file.path);
    size_t at;
    if (vd_name_index_find(&w->index, name, &at))
        return vd_error(VD_ERR_INVALID_ARGUMENT, "tensor '%s' is already in the set", name);
    vd_weight it = {0};
    vd_status s = vd_tensor_init(&it.tensor, dtype, ndim, shape, (void *)data);
    if (s != VD_OK)
        return vd_error_context(s, "tensor '%s': ", name);
    if (w->count == w->capacity) {
        size_t cap = w->capacity ? w->capacity * 2 : 64;
        vd_weight *items = cap > SIZE_MAX / sizeof *items ? NULL : realloc(w->items, cap * sizeof *items);
        if (!items)
            return vd_error(VD_ERR_OUT_OF_MEMORY, "out of memory adding '%s'", name);
        w->items = items;
        w->capacity = cap;
    }
    it.name = strdup(name);
    it.file_name = strdup(name);
    bool oom = !it.name || !it.file_name;
    if (!oom && !vd_name_index_insert(&w->index, it.name, w->count, &oom) && !oom)
        oom = true; /* cannot happen: checked above */
    if (oom) {
        free(it.name);
        free(it.file_name);
        return vd_error(VD_ERR_OUT_OF_MEMORY, "out of memory adding '%s'", name);
    }
    it.tensor.name = it.name;
    it.nbytes = vd_tensor_nbytes(&it.tensor);
    it.offset = 0;
    w->items[w->count++] = it;
    return VD_OK;
}

/* ---- queries ---------------------------------------------------------------- */

vd_file_format vd_weights_format(const vd_weights *w) { return w->format; }

const char *vd_weights_path(const vd_weights *w) { return w->file.path ? w->file.path : ""; }

uint64_t vd_weights_file_size(const vd_weights *w) { return w->file.size; }

size_t vd_weights_count(const vd_weights *w) { return w->count; }

const vd_weight *vd_weights_at(const vd_weights *w, size_t i) { return i < w->count ? &w->items[i] : NULL; }

const vd_weight *vd_weights_find(const vd_weights *w, const char *name)
{
    size_t i;
    if (!name || !vd_name_index_find(&w->index, name, &i))
        return NULL;
    return &w->items[i];
}

size_t vd_weights_meta_count(const vd_weights *w) { return w->n_meta; }

const vd_meta_entry *vd_weights_meta_at(const vd_weights *w, size_t i) { return i < w->n_meta ? &w->meta[i] : NULL; }

const char *vd_weights_meta_string(const vd_weights *w, const char *key)
{
    for (size_t i = 0; i < w->n_meta; i++)
        if (w->meta_is_string[i] && strcmp(w->meta[i].key, key) == 0)
            return w->meta[i].value;
    return NULL;
}

const char *vd_weights_quant_layout(const vd_weights *w) { return w->layout; }

const char *vd_weights_name_scheme(const vd_weights *w) { return w->scheme; }

const vd_gguf *vd_weights_gguf(const vd_weights *w) { return w->format == VD_FORMAT_GGUF ? &w->gguf : NULL; }

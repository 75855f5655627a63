#include "io/gguf.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "io/name_index.h"

/* ---- type tables ------------------------------------------------------------ */

static const char *const ggml_type_names[] = {
    "F32",     "F16",      "Q4_0",     "Q4_1",     NULL,         NULL,         "Q5_0",       "Q5_1",
    "Q8_0",    "Q8_1",     "Q2_K",     "Q3_K",     "Q4_K",       "Q5_K",       "Q6_K",       "Q8_K",
    "IQ2_XXS", "IQ2_XS",   "IQ3_XXS",  "IQ1_S",    "IQ4_NL",     "IQ3_S",      "IQ2_S",      "IQ4_XS",
    "I8",      "I16",      "I32",      "I64",      "F64",        "IQ1_M",      "BF16",       "Q4_0_4_4",
    "Q4_0_4_8", "Q4_0_8_8", "TQ1_0",   "TQ2_0",    "IQ4_NL_4_4", "IQ4_NL_4_8", "IQ4_NL_8_8", "MXFP4",
};

static const struct {
    uint32_t ggml;
    vd_dtype dtype;
} ggml_dtypes[] = {
    {0, VD_F32},   {1, VD_F16},   {2, VD_Q4_0},  {3, VD_Q4_1},  {6, VD_Q5_0},  {7, VD_Q5_1},
    {8, VD_Q8_0},  {10, VD_Q2_K}, {11, VD_Q3_K}, {12, VD_Q4_K}, {13, VD_Q5_K}, {14, VD_Q6_K},
    {24, VD_I8},   {25, VD_I16},  {26, VD_I32},  {27, VD_I64},  {28, VD_F64},  {30, VD_BF16},
};

const char *vd_gguf_ggml_type_name(uint32_t ggml_type)
{
    if (ggml_type >= sizeof ggml_type_names / sizeof ggml_type_names[0])
        return NULL;
    return ggml_type_names[ggml_type];
}

bool vd_gguf_dtype_from_ggml(uint32_t ggml_type, vd_dtype *out)
{
    for (size_t i = 0; i < sizeof ggml_dtypes / sizeof ggml_dtypes[0]; i++)
        if (ggml_dtypes[i].ggml == ggml_type) {
            *out = ggml_dtypes[i].dtype;
            return true;
        }
    return false;
}

bool vd_gguf_ggml_from_dtype(vd_dtype dtype, uint32_t *out)
{
    for (size_t i = 0; i < sizeof ggml_dtypes / sizeof ggml_dtypes[0]; i++)
        if (ggml_dtypes[i].dtype == dtype) {
            *out = ggml_dtypes[i].ggml;
            return true;
        }
    return false;
}

static const char *const value_type_names[VD_GGUF_TYPE_COUNT] = {
    "u8", "i8", "u16", "i16", "u32", "i32", "f32", "bool", "string", "array", "u64", "i64", "f64",
};

const char *vd_gguf_type_name(vd_gguf_type type)
{
    if ((int)type < 0 || type >= VD_GGUF_TYPE_COUNT)
        return "invalid";
    return value_type_names[type];
}

/* Bytes of a scalar type; 0 for string and array. */
static size_t scalar_size(vd_gguf_type t)
{
    switch (t) {
    case VD_GGUF_U8: case VD_GGUF_I8: case VD_GGUF_BOOL: return 1;
    case VD_GGUF_U16: case VD_GGUF_I16: return 2;
    case VD_GGUF_U32: case VD_GGUF_I32: case VD_GGUF_F32: return 4;
    case VD_GGUF_U64: case VD_GGUF_I64: case VD_GGUF_F64: return 8;
    default: return 0;
    }
}

/* The fewest bytes one value of type t can take in the file. */
static size_t min_value_size(vd_gguf_type t)
{
    if (t == VD_GGUF_STRING)
        return 8;
    if (t == VD_GGUF_ARRAY)
        return 12;
    return scalar_size(t);
}

/* ---- reading ------------------------------------------------------------------ */

typedef struct reader {
    const uint8_t *data;
    size_t size;
    size_t pos;
    const char *path;
    uint64_t items_left; /* decoded array elements still allowed */
} reader;

/* Decoded (string / nested array) elements allowed in one file: far above
 * any tokenizer vocabulary, far below what would exhaust memory. */
#define MAX_DECODED_ITEMS (1u << 26)

VD_PRINTF(3, 4)
static vd_status fail(vd_status status, const reader *r, const char *fmt, ...)
{
    char msg[1200];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    const char *hint = status == VD_ERR_FORMAT ? " (the file is damaged or not a GGUF file)" : "";
    return vd_error(status, "'%s': %s%s", r->path, msg, hint);
}

static size_t remaining(const reader *r) { return r->size - r->pos; }

static uint64_t load_le(const uint8_t *p, size_t n)
{
    uint64_t v = 0;
    for (size_t i = n; i-- > 0;)
        v = (v << 8) | p[i];
    return v;
}

static bool read_uint(reader *r, size_t n, uint64_t *out)
{
    if (remaining(r) < n)
        return false;
    *out = load_le(r->data + r->pos, n);
    r->pos += n;
    return true;
}

static vd_status read_u32(reader *r, uint32_t *out, const char *what)
{
    uint64_t v;
    if (!read_uint(r, 4, &v))
        return fail(VD_ERR_FORMAT, r, "the file ends inside %s (offset %zu); truncated?", what, r->pos);
    *out = (uint32_t)v;
    return VD_OK;
}

static vd_status read_u64(reader *r, uint64_t *out, const char *what)
{
    if (!read_uint(r, 8, out))
        return fail(VD_ERR_FORMAT, r, "the file ends inside %s (offset %zu); truncated?", what, r->pos);
    return VD_OK;
}

/* A key or tensor name: non-empty, no NUL, at most 64 KiB; returned as a
 * terminated copy. */
static vd_status read_name(reader *r, char **out, const char *what)
{
    uint64_t len;
    VD_TRY(read_u64(r, &len, what));
    if (len == 0)
        return fail(VD_ERR_FORMAT, r, "%s is empty (offset %zu)", what, r->pos);
    if (len > 65535)
        return fail(VD_ERR_FORMAT, r, "%s is %" PRIu64 " bytes long (offset %zu)", what, len, r->pos);
    if (len > remaining(r))
        return fail(VD_ERR_FORMAT, r, "%s (%" PRIu64 " bytes) runs past the end of the file; truncated?", what, len);
    const char *s = (const char *)r->data + r->pos;
    if (memchr(s, '\0', (size_t)len))
        return fail(VD_ERR_FORMAT, r, "%s holds a NUL byte (offset %zu)", what, r->pos);
    char *copy = malloc((size_t)len + 1);
    if (!copy)
        return vd_error(VD_ERR_OUT_OF_MEMORY, "'%s': out of memory", r->path);
    memcpy(copy, s, (size_t)len);
    copy[len] = '\0';
    r->pos += (size_t)len;
    *out = copy;
    return VD_OK;
}

static void value_free(vd_gguf_value *v)
{
    if (v->type != VD_GGUF_ARRAY || !v->v.arr.items)
        return;
    for (uint64_t i = 0; i < v->v.arr.count; i++)
        value_free(&v->v.arr.items[i]);
    free(v->v.arr.items);
    v->v.arr.items = NULL;
}

static void decode_scalar(vd_gguf_type t, const uint8_t *p, vd_gguf_value *out)
{
    out->type = t;
    uint64_t raw = load_le(p, scalar_size(t));
    switch (t) {
    case VD_GGUF_U8: case VD_GGUF_U16: case VD_GGUF_U32: case VD_GGUF_U64: case VD_GGUF_BOOL: out->v.u = raw; break;
    case VD_GGUF_I8: out->v.i = (int8_t)raw; break;
    case VD_GGUF_I16: out->v.i = (int16_t)raw; break;
    case VD_GGUF_I32: out->v.i = (int32_t)raw; break;
    case VD_GGUF_I64: out->v.i = (int64_t)raw; break;
    case VD_GGUF_F32: {
        uint32_t b = (uint32_t)raw;
        float f;
        memcpy(&f, &b, 4);
        out->v.f = f;
    } break;
    case VD_GGUF_F64: {
        double d;
        memcpy(&d, &raw, 8);
        out->v.f = d;
    } break;
    default: break;
    }
}

static vd_status read_value(reader *r, vd_gguf_type type, int depth, const char *key, vd_gguf_value *out);

/* An array at nesting level `depth` (1 for a top-level array). */
static vd_status read_array(reader *r, int depth, const char *key, vd_gguf_value *out)
{
    uint32_t et;
    VD_TRY(read_u32(r, &et, "an array's element type"));
    if (et >= VD_GGUF_TYPE_COUNT)
        return fail(VD_ERR_FORMAT, r, "metadata '%s': array element type %" PRIu32 " is not a GGUF value type", key, et);
    if (et == VD_GGUF_ARRAY && depth + 1 > VD_GGUF_MAX_ARRAY_DEPTH)
        return fail(VD_ERR_FORMAT, r, "metadata '%s': arrays are nested more than %d deep", key,
                    VD_GGUF_MAX_ARRAY_DEPTH);
    uint64_t count;
    VD_TRY(read_u64(r, &count, "an array's length"));
    size_t min = min_value_size((vd_gguf_type)et);
    if (count > remaining(r) / min)
        return fail(VD_ERR_FORMAT, r, "metadata '%s': an array of %" PRIu64 " %s cannot fit in the %zu bytes left", key,
                    count, vd_gguf_type_name((vd_gguf_type)et), remaining(r));
    out->v.arr.elem_type = (vd_gguf_type)et;
    out->v.arr.count = count;
    size_t ssize = scalar_size((vd_gguf_type)et);
    if (ssize) {
        out->v.arr.raw = r->data + r->pos;
        if (et == VD_GGUF_BOOL)
            for (uint64_t i = 0; i < count; i++)
                if (r->data[r->pos + i] > 1)
                    return fail(VD_ERR_FORMAT, r, "metadata '%s': element %" PRIu64 " is a bool of value %u", key, i,
                                r->data[r->pos + i]);
        r->pos += (size_t)count * ssize; /* fits: checked against remaining() */
        return VD_OK;
    }
    if (count == 0)
        return VD_OK;
    if (count > r->items_left)
        return fail(VD_ERR_FORMAT, r, "metadata '%s': more than %u array elements in the file", key, MAX_DECODED_ITEMS);
    r->items_left -= count;
    out->v.arr.items = calloc((size_t)count, sizeof *out->v.arr.items);
    if (!out->v.arr.items)
        return vd_error(VD_ERR_OUT_OF_MEMORY, "'%s': out of memory reading metadata '%s'", r->path, key);
    for (uint64_t i = 0; i < count; i++)
        VD_TRY(read_value(r, (vd_gguf_type)et, depth, key, &out->v.arr.items[i]));
    return VD_OK;
}

/* A value inside `depth` enclosing arrays. */
static vd_status read_value(reader *r, vd_gguf_type type, int depth, const char *key, vd_gguf_value *out)
{
    out->type = type;
    if (type == VD_GGUF_STRING) {
        uint64_t len;
        VD_TRY(read_u64(r, &len, "a string's length"));
        if (len > remaining(r))
            return fail(VD_ERR_FORMAT, r, "metadata '%s': a string of %" PRIu64 " bytes runs past the end of the file",
                        key, len);
        out->v.str.data = (const char *)r->data + r->pos;
        out->v.str.len = len;
        r->pos += (size_t)len;
        return VD_OK;
    }
    if (type == VD_GGUF_ARRAY)
        return read_array(r, depth + 1, key, out);
    size_t n = scalar_size(type);
    if (remaining(r) < n)
        return fail(VD_ERR_FORMAT, r, "metadata '%s': the file ends inside its value; truncated?", key);
    decode_scalar(type, r->data + r->pos, out);
    if (type == VD_GGUF_BOOL && out->v.u > 1)
        return fail(VD_ERR_FORMAT, r, "metadata '%s': a bool of value %" PRIu64, key, out->v.u);
    r->pos += n;
    return VD_OK;
}

void vd_gguf_free(vd_gguf *g)
{
    for (size_t i = 0; i < g->n_kv; i++) {
        free(g->kv[i].key);
        value_free(&g->kv[i].value);
    }
    for (size_t i = 0; i < g->n_tensors; i++)
        free(g->tensors[i].name);
    free(g->kv);
    free(g->tensors);
    memset(g, 0, sizeof *g);
}

static vd_status read_kvs(reader *r, uint64_t n_kv, vd_gguf *g)
{
    if (n_kv == 0)
        return VD_OK;
    g->kv = calloc((size_t)n_kv, sizeof *g->kv);
    if (!g->kv)
        return vd_error(VD_ERR_OUT_OF_MEMORY, "'%s': out of memory", r->path);
    for (uint64_t i = 0; i < n_kv; i++) {
        vd_gguf_kv *kv = &g->kv[i];
        char what[64];
        snprintf(what, sizeof what, "metadata key #%" PRIu64, i);
        VD_TRY(read_name(r, &kv->key, what));
        g->n_kv++;
        uint32_t type;
        VD_TRY(read_u32(r, &type, "a metadata value type"));
        if (type >= VD_GGUF_TYPE_COUNT)
            return fail(VD_ERR_FORMAT, r, "metadata '%s' has value type %" PRIu32 ", which GGUF does not define",
                        kv->key, type);
        VD_TRY(read_value(r, (vd_gguf_type)type, 0, kv->key, &kv->value));
    }
    const char **keys = malloc(g->n_kv * sizeof *keys);
    if (!keys)
        return vd_error(VD_ERR_OUT_OF_MEMORY, "'%s': out of memory", r->path);
    for (size_t i = 0; i < g->n_kv; i++)
        keys[i] = g->kv[i].key;
    vd_name_index ix;
    bool dup;
    size_t a, b;
    vd_status s = vd_name_index_build(&ix, keys, g->n_kv, &dup, &a, &b);
    vd_name_index_free(&ix);
    free(keys);
    if (s == VD_OK && dup)
        s = fail(VD_ERR_FORMAT, r, "metadata key '%s' appears twice", g->kv[a].key);
    return s;
}

/* Read one tensor info; shapes are checked later, once the data section
 * and alignment are known. */
static vd_status read_tensor_info(reader *r, uint64_t i, vd_gguf_tensor *t, uint64_t ne[VD_MAX_DIMS])
{
    char what[64];
    snprintf(what, sizeof what, "the name of tensor #%" PRIu64, i);
    VD_TRY(read_name(r, &t->name, what));
    uint32_t n_dims;
    VD_TRY(read_u32(r, &n_dims, "a tensor's dimension count"));
    if (n_dims == 0 || n_dims > VD_MAX_DIMS)
        return fail(VD_ERR_FORMAT, r, "tensor '%s' has %" PRIu32 " dimensions (1 to %d are valid)", t->name, n_dims,
                    VD_MAX_DIMS);
    t->ndim = (int)n_dims;
    for (uint32_t d = 0; d < n_dims; d++) {
        VD_TRY(read_u64(r, &ne[d], "a tensor's dimensions"));
        if (ne[d] > (uint64_t)INT64_MAX)
            return fail(VD_ERR_FORMAT, r, "tensor '%s': dimension %" PRIu32 " is %" PRIu64, t->name, d, ne[d]);
    }
    VD_TRY(read_u32(r, &t->ggml_type, "a tensor's type"));
    if (!vd_gguf_dtype_from_ggml(t->ggml_type, &t->dtype)) {
        const char *tn = vd_gguf_ggml_type_name(t->ggml_type);
        if (tn)
            return vd_error(VD_ERR_UNSUPPORTED, "'%s': tensor '%s' has GGML type %s (%" PRIu32 "), which vdiff does not read",
                            r->path, t->name, tn, t->ggml_type);
        return vd_error(VD_ERR_UNSUPPORTED,
                        "'%s': tensor '%s' has GGML type %" PRIu32 ", which vdiff does not know (a newer ggml type, or a damaged file)",
                        r->path, t->name, t->ggml_type);
    }
    VD_TRY(read_u64(r, &t->offset, "a tensor's offset"));
    return VD_OK;
}

/* Shape (reversed), whole blocks, byte size, alignment, range in the file. */
static vd_status check_tensor(const reader *r, const vd_gguf *g, vd_gguf_tensor *t, const uint64_t ne[VD_MAX_DIMS])
{
    const vd_dtype_traits *tr = vd_dtype_info(t->dtype);
    uint64_t nelem = 1;
    bool zero = false, overflow = false;
    for (int d = 0; d < t->ndim; d++) {
        t->shape[t->ndim - 1 - d] = (int64_t)ne[d];
        if (ne[d] == 0)
            zero = true;
        else if (nelem > (uint64_t)INT64_MAX / ne[d])
            overflow = true;
        else
            nelem *= ne[d];
    }
    if (zero)
        nelem = 0;
    else if (overflow)
        return fail(VD_ERR_FORMAT, r, "tensor '%s': the element count overflows", t->name);
    if (ne[0] % (uint64_t)tr->block_elems != 0)
        return fail(VD_ERR_FORMAT, r, "tensor '%s': its innermost dimension %" PRIu64 " is not a multiple of the %s block size %d",
                    t->name, ne[0], tr->name, tr->block_elems);
    uint64_t blocks = nelem / (uint64_t)tr->block_elems;
    if (blocks > UINT64_MAX / (uint64_t)tr->block_bytes)
        return fail(VD_ERR_FORMAT, r, "tensor '%s': its byte size overflows", t->name);
    t->nbytes = blocks * (uint64_t)tr->block_bytes;
    if (t->offset % g->alignment != 0)
        return fail(VD_ERR_FORMAT, r, "tensor '%s': offset %" PRIu64 " is not a multiple of the alignment %" PRIu32,
                    t->name, t->offset, g->alignment);
    uint64_t avail = g->data_start <= r->size ? (uint64_t)r->size - g->data_start : 0;
    if (g->data_start > r->size || t->offset > avail || t->nbytes > avail - t->offset)
        return fail(VD_ERR_FORMAT, r,
                    "tensor '%s': its %" PRIu64 " bytes at data offset %" PRIu64 " run past the end of the file; truncated?",
                    t->name, t->nbytes, t->offset);
    return VD_OK;
}

static int offset_cmp(const void *a, const void *b)
{
    const vd_gguf_tensor *x = *(const vd_gguf_tensor *const *)a;
    const vd_gguf_tensor *y = *(const vd_gguf_tensor *const *)b;
    if (x->offset != y->offset)
        return x->offset < y->offset ? -1 : 1;
    return x->nbytes < y->nbytes ? -1 : x->nbytes > y->nbytes;
}

static vd_status check_tensor_set(const reader *r, vd_gguf *g)
{
    size_t n = g->n_tensors;
    if (n < 2)
        return VD_OK;
    vd_gguf_tensor **order = malloc(n * sizeof *order);
    const char **names = malloc(n * sizeof *names);
    if (!order || !names) {
        free(order);
        free(names);
        return vd_error(VD_ERR_OUT_OF_MEMORY, "'%s': out of memory", r->path);
    }
    for (size_t i = 0; i < n; i++) {
        order[i] = &g->tensors[i];
        names[i] = g->tensors[i].name;
    }
    vd_name_index ix;
    bool dup;
    size_t a = 0, b = 0;
    vd_status s = vd_name_index_build(&ix, names, n, &dup, &a, &b);
    vd_name_index_free(&ix);
    free(names);
    if (s == VD_OK && dup)
        s = fail(VD_ERR_FORMAT, r, "tensor name '%s' appears twice", g->tensors[a].name);
    if (s == VD_OK) {
        qsort(order, n, sizeof *order, offset_cmp);
        const vd_gguf_tensor *prev = NULL;
        for (size_t i = 0; i < n && s == VD_OK; i++) {
            const vd_gguf_tensor *t = order[i];
            if (t->nbytes == 0)
                continue;
            if (prev && t->offset < prev->offset + prev->nbytes)
                s = fail(VD_ERR_FORMAT, r, "tensor '%s' (data offset %" PRIu64 ") overlaps tensor '%s' (data offset %" PRIu64
                         ", %" PRIu64 " bytes)",
                         t->name, t->offset, prev->name, prev->offset, prev->nbytes);
            prev = t;
        }
    }
    free(order);
    return s;
}

static vd_status parse(reader *r, vd_gguf *g)
{
    if (r->size < 4 || memcmp(r->data, "GGUF", 4) != 0)
        return fail(VD_ERR_FORMAT, r, "no GGUF magic");
    r->pos = 4;
    VD_TRY(read_u32(r, &g->version, "the header"));
    uint32_t v = g->version;
    uint32_t swapped = (v >> 24) | ((v >> 8) & 0xff00u) | ((v << 8) & 0xff0000u) | (v << 24);
    if (v > 0xffff && swapped >= 1 && swapped <= 3)
        return fail(VD_ERR_UNSUPPORTED, r, "a big-endian GGUF file; vdiff reads little-endian GGUF only");
    if (v == 0)
        return fail(VD_ERR_FORMAT, r, "GGUF version 0");
    if (v == 1)
        return fail(VD_ERR_UNSUPPORTED, r, "GGUF version 1 is obsolete; convert the model again with a current tool");
    if (v > 3)
        return fail(VD_ERR_UNSUPPORTED, r, "GGUF version %" PRIu32 " is newer than vdiff reads (2 and 3)", v);
    uint64_t n_tensors, n_kv;
    VD_TRY(read_u64(r, &n_tensors, "the header"));
    VD_TRY(read_u64(r, &n_kv, "the header"));
    /* Each tensor info takes at least 32 bytes, each key/value at least 14. */
    if (n_tensors > VD_GGUF_MAX_TENSORS || n_tensors > remaining(r) / 32)
        return fail(VD_ERR_FORMAT, r, "the header claims %" PRIu64 " tensors", n_tensors);
    if (n_kv > VD_GGUF_MAX_KV || n_kv > remaining(r) / 14)
        return fail(VD_ERR_FORMAT, r, "the header claims %" PRIu64 " metadata entries", n_kv);

    VD_TRY(read_kvs(r, n_kv, g));

    g->alignment = VD_GGUF_DEFAULT_ALIGNMENT;
    const vd_gguf_kv *al = vd_gguf_find(g, "general.alignment");
    if (al) {
        if (al->value.type != VD_GGUF_U32)
            return fail(VD_ERR_FORMAT, r, "general.alignment is a %s, not a u32", vd_gguf_type_name(al->value.type));
        uint64_t a = al->value.v.u;
        if (a == 0 || (a & (a - 1)) != 0)
            return fail(VD_ERR_FORMAT, r, "general.alignment %" PRIu64 " is not a power of two", a);
        g->alignment = (uint32_t)a;
    }

    uint64_t(*ne)[VD_MAX_DIMS] = NULL;
    if (n_tensors > 0) {
        g->tensors = calloc((size_t)n_tensors, sizeof *g->tensors);
        ne = calloc((size_t)n_tensors, sizeof *ne);
        if (!g->tensors || !ne) {
            free(ne);
            return vd_error(VD_ERR_OUT_OF_MEMORY, "'%s': out of memory", r->path);
        }
    }
    vd_status s = VD_OK;
    for (uint64_t i = 0; i < n_tensors && s == VD_OK; i++) {
        s = read_tensor_info(r, i, &g->tensors[i], ne[i]);
        if (g->tensors[i].name)
            g->n_tensors++;
    }
    if (s == VD_OK) {
        uint64_t pad = (g->alignment - r->pos % g->alignment) % g->alignment;
        g->data_start = (uint64_t)r->pos + pad; /* pos < 2^63: no overflow */
        for (size_t i = 0; i < g->n_tensors && s == VD_OK; i++)
            s = check_tensor(r, g, &g->tensors[i], ne[i]);
    }
    free(ne);
    if (s == VD_OK)
        s = check_tensor_set(r, g);
    return s;
}

vd_status vd_gguf_parse(const uint8_t *data, size_t size, const char *path, vd_gguf *out)
{
    memset(out, 0, sizeof *out);
    reader r = {data, size, 0, path, MAX_DECODED_ITEMS};
    vd_status s = parse(&r, out);
    if (s != VD_OK)
        vd_gguf_free(out);
    return s;
}

const vd_gguf_kv *vd_gguf_find(const vd_gguf *g, const char *key)
{
    for (size_t i = 0; i < g->n_kv; i++)
        if (strcmp(g->kv[i].key, key) == 0)
            return &g->kv[i];
    return NULL;
}

bool vd_gguf_array_at(const vd_gguf_value *arr, uint64_t i, vd_gguf_value *out)
{
    if (arr->type != VD_GGUF_ARRAY || i >= arr->v.arr.count)
        return false;
    if (arr->v.arr.items) {
        *out = arr->v.arr.items[i];
        return true;
    }
    size_t n = scalar_size(arr->v.arr.elem_type);
    if (n == 0)
        return false;
    decode_scalar(arr->v.arr.elem_type, arr->v.arr.raw + i * n, out);
    return true;
}

const char *vd_gguf_value_format(const vd_gguf_value *v, char *buf, size_t size)
{
    if (size == 0)
        return buf;
    switch (v->type) {
    case VD_GGUF_U8: case VD_GGUF_U16: case VD_GGUF_U32: case VD_GGUF_U64:
        snprintf(buf, size, "%" PRIu64, v->v.u);
        break;
    case VD_GGUF_I8: case VD_GGUF_I16: case VD_GGUF_I32: case VD_GGUF_I64:
        snprintf(buf, size, "%" PRId64, v->v.i);
        break;
    case VD_GGUF_F32: snprintf(buf, size, "%.9g", v->v.f); break;
    case VD_GGUF_F64: snprintf(buf, size, "%.17g", v->v.f); break;
    case VD_GGUF_BOOL: snprintf(buf, size, "%s", v->v.u ? "true" : "false"); break;
    case VD_GGUF_STRING: {
        size_t n = v->v.str.len < size - 1 ? (size_t)v->v.str.len : size - 1;
        if (n)
            memcpy(buf, v->v.str.data, n);
        buf[n] = '\0';
    } break;
    case VD_GGUF_ARRAY:
        snprintf(buf, size, "[array of %" PRIu64 " %s]", v->v.arr.count, vd_gguf_type_name(v->v.arr.elem_type));
        break;
    default: snprintf(buf, size, "(invalid)"); break;
    }
    return buf;
}

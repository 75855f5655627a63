/* Streaming safetensors / GGUF writer (see model_writer.h).
 *
 * Tensor bytes go to their final offsets with pwrite, so the data can be
 * placed where alignment wants it while the caller still streams tensors
 * in declaration order; the file is sized with ftruncate at the end (GGUF
 * padding reads as zeros), synced, and renamed into place. */
#include "io/model_writer.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <libgen.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/error.h"
#include "core/tensor.h"
#include "io/gguf.h"
#include "io/name_index.h"
#include "io/safetensors.h"

typedef struct meta_item {
    char *key;
    vd_gguf_type type;      /* STRING, U32, F32 or ARRAY */
    vd_gguf_type elem_type; /* arrays: STRING, F32 or I32 */
    uint32_t u32;
    float f32;
    char *str;
    char **strs;            /* string arrays */
    void *values;           /* f32 / i32 arrays */
    size_t count;
} meta_item;

typedef struct tensor_decl {
    char *name;
    vd_dtype dtype;
    int ndim;
    int64_t shape[VD_MAX_DIMS];
    uint64_t nbytes;
    uint64_t offset;  /* relative to the data section */
    uint64_t written;
} tensor_decl;

struct vd_model_writer {
    vd_file_format format;
    char *path, *part_path;
    int fd;
    meta_item *meta;
    size_t n_meta, cap_meta;
    tensor_decl *tensors;
    size_t n_tensors, cap_tensors;
    vd_name_index tensor_names, meta_keys;
    uint32_t alignment; /* GGUF */
    bool begun;
    uint64_t data_start;
    uint64_t total_size;
    size_t current; /* tensor being written */
    vd_status failure;
    char failure_msg[512];
};

/* Remember the first failure: later calls and finish() report it. */
static vd_status fail_writer(vd_model_writer *w, vd_status s)
{
    if (w->failure == VD_OK) {
        w->failure = s;
        snprintf(w->failure_msg, sizeof w->failure_msg, "%s", vd_last_error());
    }
    return s;
}

static vd_status check_usable(vd_model_writer *w, const char *what, bool before_begin)
{
    if (!w)
        return vd_error(VD_ERR_INVALID_ARGUMENT, "%s: no writer", what);
    if (w->failure != VD_OK)
        return vd_error(w->failure, "%s: '%s' has already failed: %s", what, w->path, w->failure_msg);
    if (before_begin && w->begun)
        return vd_error(VD_ERR_INVALID_ARGUMENT, "%s: '%s': the header is already written", what, w->path);
    return VD_OK;
}

static bool has_suffix(const char *s, const char *suffix)
{
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && strcmp(s + n - m, suffix) == 0;
}

vd_status vd_model_writer_open(const char *path, vd_file_format format, vd_model_writer **out)
{
    *out = NULL;
    if (!path || !path[0])
        return vd_error(VD_ERR_INVALID_ARGUMENT, "no output file given");
    if (format == VD_FORMAT_NONE)
        format = has_suffix(path, ".gguf") || has_suffix(path, ".GGUF") ? VD_FORMAT_GGUF : VD_FORMAT_SAFETENSORS;
    if (format != VD_FORMAT_GGUF && format != VD_FORMAT_SAFETENSORS)
        return vd_error(VD_ERR_INVALID_ARGUMENT, "'%s': unknown output format %d", path, (int)format);
    vd_model_writer *w = calloc(1, sizeof *w);
    if (!w)
        return vd_error(VD_ERR_OUT_OF_MEMORY, "out of memory");
    w->format = format;
    w->fd = -1;
    w->alignment = VD_GGUF_DEFAULT_ALIGNMENT;
    w->path = strdup(path);
    size_t n = strlen(path);
    w->part_path = malloc(n + sizeof ".part");
    if (!w->path || !w->part_path) {
        free(w->path);
        free(w->part_path);
        free(w);
        return vd_error(VD_ERR_OUT_OF_MEMORY, "out of memory");
    }
    memcpy(w->part_path, path, n);
    memcpy(w->part_path + n, ".part", sizeof ".part");
    w->fd = open(w->part_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (w->fd < 0) {
        int e = errno;
        vd_status s = vd_error(e == ENOENT ? VD_ERR_NOT_FOUND : VD_ERR_IO, "cannot create '%s': %s", w->part_path,
                               strerror(e));
        free(w->path);
        free(w->part_path);
        free(w);
        return s;
    }
    *out = w;
    return VD_OK;
}

/* ---- metadata ----------------------------------------------------------------- */

static vd_status add_meta(vd_model_writer *w, const char *key, vd_gguf_type type, meta_item **out)
{
    VD_TRY(check_usable(w, "adding metadata", true));
    if (!key || !key[0] || strlen(key) > 65535)
        return vd_error(VD_ERR_INVALID_ARGUMENT, "'%s': a metadata key must be 1 to 65535 bytes", w->path);
    if (w->format == VD_FORMAT_GGUF && type != VD_GGUF_U32 && strcmp(key, "general.alignment") == 0)
        return vd_error(VD_ERR_INVALID_ARGUMENT, "'%s': general.alignment must be a u32", w->path);
    size_t at;
    if (vd_name_index_find(&w->meta_keys, key, &at))
        return vd_error(VD_ERR_INVALID_ARGUMENT, "'%s': metadata key '%s' is set twice", w->path, key);
    if (w->n_meta == w->cap_meta) {
        size_t cap = w->cap_meta ? w->cap_meta * 2 : 16;
        meta_item *m = realloc(w->meta, cap * sizeof *m);
        if (!m)
            return vd_error(VD_ERR_OUT_OF_MEMORY, "out of memory");
        w->meta = m;
        w->cap_meta = cap;
    }
    meta_item *m = &w->meta[w->n_meta];
    memset(m, 0, sizeof *m);
    m->key = strdup(key);
    bool oom = !m->key;
    if (!oom && !vd_name_index_insert(&w->meta_keys, m->key, w->n_meta, &oom))
        oom = true;
    if (oom) {
        free(m->key);
        return vd_error(VD_ERR_OUT_OF_MEMORY, "out of memory");
    }
    w->n_meta++;
    *out = m;
    return VD_OK;
}

vd_status vd_model_writer_meta_string(vd_model_writer *w, const char *key, const char *value)
{
    if (!value)
        return vd_error(VD_ERR_INVALID_ARGUMENT, "metadata '%s': no value", key ? key : "");
    meta_item *m;
    VD_TRY(add_meta(w, key, VD_GGUF_STRING, &m));
    m->type = VD_GGUF_STRING;
    m->str = strdup(value);
    if (!m->str)
        return vd_error(VD_ERR_OUT_OF_MEMORY, "out of memory");
    return VD_OK;
}

vd_status vd_model_writer_meta_u32(vd_model_writer *w, const char *key, uint32_t value)
{
    if (w && w->format == VD_FORMAT_GGUF && key && strcmp(key, "general.alignment") == 0) {
        if (value == 0 || (value & (value - 1)) != 0)
            return vd_error(VD_ERR_INVALID_ARGUMENT, "'%s': general.alignment %" PRIu32 " is not a power of two",
                            w->path, value);
    }
    meta_item *m;
    VD_TRY(add_meta(w, key, VD_GGUF_U32, &m));
    m->type = VD_GGUF_U32;
    m->u32 = value;
    if (w->format == VD_FORMAT_GGUF && strcmp(key, "general.alignment") == 0)
        w->alignment = value;
    return VD_OK;
}

vd_status vd_model_writer_meta_f32(vd_model_writer *w, const char *key, float value)
{
    meta_item *m;
    VD_TRY(add_meta(w, key, VD_GGUF_F32, &m));
    m->type = VD_GGUF_F32;
    m->f32 = value;
    return VD_OK;
}

static vd_status check_array(vd_model_writer *w, const char *key, const void *values, size_t count)
{
    VD_TRY(check_usable(w, "adding metadata", true));
    if (w->format != VD_FORMAT_GGUF)
        return vd_error(VD_ERR_UNSUPPORTED, "'%s': metadata '%s': safetensors metadata holds strings only, not arrays",
                        w->path, key ? key : "");
    if (count > 0 && !values)
        return vd_error(VD_ERR_INVALID_ARGUMENT, "metadata '%s': no values", key ? key : "");
    return VD_OK;
}

vd_status vd_model_writer_meta_string_array(vd_model_writer *w, const char *key, const char *const *values,
                                            size_t count)
{
    VD_TRY(check_array(w, key, values, count));
    for (size_t i = 0; i < count; i++)
        if (!values[i])
            return vd_error(VD_ERR_INVALID_ARGUMENT, "metadata '%s': string %zu is NULL", key, i);
    meta_item *m;
    VD_TRY(add_meta(w, key, VD_GGUF_ARRAY, &m));
    m->type = VD_GGUF_ARRAY;
    m->elem_type = VD_GGUF_STRING;
    if (count == 0)
        return VD_OK;
    m->strs = calloc(count, sizeof *m->strs);
    if (!m->strs)
        return vd_error(VD_ERR_OUT_OF_MEMORY, "out of memory");
    m->count = count; /* set first so a partial copy is freed */
    for (size_t i = 0; i < count; i++)
        if (!(m->strs[i] = strdup(values[i])))
            return vd_error(VD_ERR_OUT_OF_MEMORY, "out of memory");
    return VD_OK;
}

static vd_status add_scalar_array(vd_model_writer *w, const char *key, const void *values, size_t count,
                                  vd_gguf_type elem_type)
{
    VD_TRY(check_array(w, key, values, count));
    if (count > SIZE_MAX / 4)
        return vd_error(VD_ERR_INVALID_ARGUMENT, "metadata '%s': %zu values", key, count);
    meta_item *m;
    VD_TRY(add_meta(w, key, VD_GGUF_ARRAY, &m));
    m->type = VD_GGUF_ARRAY;
    m->elem_type = elem_type;
    if (count == 0)
        return VD_OK;
    m->values = malloc(count * 4);
    if (!m->values)
        return vd_error(VD_ERR_OUT_OF_MEMORY, "out of memory");
    memcpy(m->values, values, count * 4);
    m->count = count;
    return VD_OK;
}

vd_status vd_model_writer_meta_f32_array(vd_model_writer *w, const char *key, const float *values, size_t count)
{
    return add_scalar_array(w, key, values, count, VD_GGUF_F32);
}

vd_status vd_model_writer_meta_i32_array(vd_model_writer *w, const char *key, const int32_t *values, size_t count)
{
    return add_scalar_array(w, key, values, count, VD_GGUF_I32);
}

/* ---- tensors ------------------------------------------------------------------ */

vd_status vd_model_writer_declare(vd_model_writer *w, const char *name, vd_dtype dtype, int ndim,
                                  const int64_t *shape)
{
    VD_TRY(check_usable(w, "declaring a tensor", true));
    if (!name || !name[0] || strlen(name) > 65535)
        return vd_error(VD_ERR_INVALID_ARGUMENT, "'%s': a tensor name must be 1 to 65535 bytes", w->path);
    if (ndim > 0 && !shape)
        return vd_error(VD_ERR_INVALID_ARGUMENT, "'%s': tensor '%s': no shape", w->path, name);
    if (w->format == VD_FORMAT_SAFETENSORS && !vd_safetensors_dtype_name(dtype))
        return vd_error(VD_ERR_UNSUPPORTED, "'%s': tensor '%s': safetensors cannot store %s; write a GGUF file", w->path,
                        name, vd_dtype_name(dtype));
    if (w->format == VD_FORMAT_SAFETENSORS && strcmp(name, "__metadata__") == 0)
        return vd_error(VD_ERR_INVALID_ARGUMENT, "'%s': a safetensors tensor cannot be named __metadata__", w->path);
    uint32_t ggml;
    if (w->format == VD_FORMAT_GGUF && !vd_gguf_ggml_from_dtype(dtype, &ggml))
        return vd_error(VD_ERR_UNSUPPORTED, "'%s': tensor '%s': GGUF has no type for %s; write a safetensors file",
                        w->path, name, vd_dtype_name(dtype));
    if (w->format == VD_FORMAT_GGUF && w->n_tensors >= VD_GGUF_MAX_TENSORS)
        return vd_error(VD_ERR_UNSUPPORTED, "'%s': more than %u tensors", w->path, VD_GGUF_MAX_TENSORS);
    vd_tensor t;
    vd_status s = vd_tensor_init(&t, dtype, ndim, shape, NULL);
    if (s != VD_OK)
        return vd_error_context(s, "'%s': tensor '%s': ", w->path, name);
    size_t at;
    if (vd_name_index_find(&w->tensor_names, name, &at))
        return vd_error(VD_ERR_INVALID_ARGUMENT, "'%s': tensor '%s' is declared twice", w->path, name);
    if (w->n_tensors == w->cap_tensors) {
        size_t cap = w->cap_tensors ? w->cap_tensors * 2 : 64;
        tensor_decl *d = realloc(w->tensors, cap * sizeof *d);
        if (!d)
            return vd_error(VD_ERR_OUT_OF_MEMORY, "out of memory");
        w->tensors = d;
        w->cap_tensors = cap;
    }
    tensor_decl *d = &w->tensors[w->n_tensors];
    memset(d, 0, sizeof *d);
    d->name = strdup(name);
    bool oom = !d->name;
    if (!oom && !vd_name_index_insert(&w->tensor_names, d->name, w->n_tensors, &oom))
        oom = true;
    if (oom) {
        free(d->name);
        return vd_error(VD_ERR_OUT_OF_MEMORY, "out of memory");
    }
    d->dtype = dtype;
    d->ndim = ndim;
    for (int i = 0; i < ndim; i++)
        d->shape[i] = shape[i];
    d->nbytes = vd_tensor_nbytes(&t);
    w->n_tensors++;
    return VD_OK;
}

/* ---- low-level output ----------------------------------------------------------- */

static vd_status write_at(vd_model_writer *w, const void *data, size_t size, uint64_t offset)
{
    const uint8_t *p = data;
    while (size > 0) {
        size_t chunk = size > (1u << 30) ? (1u << 30) : size;
        ssize_t n = pwrite(w->fd, p, chunk, (off_t)offset);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            int e = n < 0 ? errno : ENOSPC;
            return fail_writer(w, vd_error(VD_ERR_IO, "writing '%s': %s", w->path, strerror(e)));
        }
        p += n;
        size -= (size_t)n;
        offset += (uint64_t)n;
    }
    return VD_OK;
}

/* A growable byte buffer for the GGUF header. */
typedef struct bytes {
    uint8_t *data;
    size_t size, cap;
    bool oom;
} bytes;

static void put(bytes *b, const void *p, size_t n)
{
    if (b->oom)
        return;
    if (n > SIZE_MAX - b->size) {
        b->oom = true;
        return;
    }
    if (b->size + n > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        while (cap < b->size + n) {
            if (cap > SIZE_MAX / 2) {
                b->oom = true;
                return;
            }
            cap *= 2;
        }
        uint8_t *d = realloc(b->data, cap);
        if (!d) {
            b->oom = true;
            return;
        }
        b->data = d;
        b->cap = cap;
    }
    memcpy(b->data + b->size, p, n);
    b->size += n;
}

static void put_le(bytes *b, uint64_t v, size_t n)
{
    uint8_t buf[8];
    for (size_t i = 0; i < n; i++)
        buf[i] = (uint8_t)(v >> (8 * i));
    put(b, buf, n);
}

static void put_string(bytes *b, const char *s)
{
    size_t n = strlen(s);
    put_le(b, n, 8);
    put(b, s, n);
}

static uint32_t f32_bits(float f)
{
    uint32_t u;
    memcpy(&u, &f, 4);
    return u;
}

static uint64_t align_up(uint64_t v, uint64_t a) { return (v + a - 1) / a * a; }

/* ---- headers -------------------------------------------------------------------- */

static void put_meta_value(bytes *b, const meta_item *m)
{
    put_le(b, m->type, 4);
    switch (m->type) {
    case VD_GGUF_STRING: put_string(b, m->str); break;
    case VD_GGUF_U32: put_le(b, m->u32, 4); break;
    case VD_GGUF_F32: put_le(b, f32_bits(m->f32), 4); break;
    case VD_GGUF_ARRAY:
        put_le(b, m->elem_type, 4);
        put_le(b, m->count, 8);
        for (size_t i = 0; i < m->count; i++) {
            if (m->elem_type == VD_GGUF_STRING) {
                put_string(b, m->strs[i]);
            } else {
                uint32_t v;
                memcpy(&v, (const uint8_t *)m->values + 4 * i, 4);
                put_le(b, v, 4);
            }
        }
        break;
    default: break;
    }
}

static vd_status begin_gguf(vd_model_writer *w)
{
    bytes b = {0};
    bool have_alignment = false;
    for (size_t i = 0; i < w->n_meta; i++)
        have_alignment |= strcmp(w->meta[i].key, "general.alignment") == 0;
    put(&b, "GGUF", 4);
    put_le(&b, 3, 4);
    put_le(&b, w->n_tensors, 8);
    put_le(&b, w->n_meta + (have_alignment ? 0 : 1), 8);
    if (!have_alignment) {
        put_string(&b, "general.alignment");
        put_le(&b, VD_GGUF_U32, 4);
        put_le(&b, w->alignment, 4);
    }
    for (size_t i = 0; i < w->n_meta; i++) {
        put_string(&b, w->meta[i].key);
        put_meta_value(&b, &w->meta[i]);
    }
    uint64_t offset = 0;
    for (size_t i = 0; i < w->n_tensors; i++) {
        tensor_decl *d = &w->tensors[i];
        d->offset = offset;
        uint32_t ggml = 0;
        vd_gguf_ggml_from_dtype(d->dtype, &ggml);
        put_string(&b, d->name);
        if (d->ndim == 0) { /* GGUF has no 0-D tensors: a scalar is [1] */
            put_le(&b, 1, 4);
            put_le(&b, 1, 8);
        } else {
            put_le(&b, (uint64_t)d->ndim, 4);
            for (int k = d->ndim - 1; k >= 0; k--)
                put_le(&b, (uint64_t)d->shape[k], 8);
        }
        put_le(&b, ggml, 4);
        put_le(&b, d->offset, 8);
        offset = align_up(offset + d->nbytes, w->alignment);
    }
    static const uint8_t zeros[64] = {0};
    while (b.size % w->alignment != 0)
        put(&b, zeros, (w->alignment - b.size % w->alignment) < sizeof zeros ? (w->alignment - b.size % w->alignment)
                                                                            : sizeof zeros);
    if (b.oom) {
        free(b.data);
        return fail_writer(w, vd_error(VD_ERR_OUT_OF_MEMORY, "'%s': out of memory for the header", w->path));
    }
    w->data_start = b.size;
    w->total_size = w->data_start + offset;
    vd_status s = write_at(w, b.data, b.size, 0);
    free(b.data);
    return s;
}

static cJSON *raw_uint(uint64_t v)
{
    char buf[32];
    snprintf(buf, sizeof buf, "%" PRIu64, v);
    return cJSON_CreateRaw(buf);
}

/* Tensors keep declaration order when every one lands at a multiple of its
 * element size; otherwise larger element types go first (stable), which the
 * reference writer does too.  Either way there are no gaps: the reference
 * reader rejects a data section with holes. */
static void layout_safetensors(vd_model_writer *w, size_t *order)
{
    bool aligned = true;
    uint64_t off = 0;
    for (size_t i = 0; i < w->n_tensors; i++) {
        order[i] = i;
        uint64_t es = (uint64_t)vd_dtype_info(w->tensors[i].dtype)->block_bytes;
        aligned &= off % es == 0;
        off += w->tensors[i].nbytes;
    }
    if (!aligned) {
        size_t k = 0;
        for (int es = 8; es >= 1; es /= 2)
            for (size_t i = 0; i < w->n_tensors; i++)
                if (vd_dtype_info(w->tensors[i].dtype)->block_bytes == es)
                    order[k++] = i;
    }
    off = 0;
    for (size_t k = 0; k < w->n_tensors; k++) {
        w->tensors[order[k]].offset = off;
        off += w->tensors[order[k]].nbytes;
    }
}

static vd_status begin_safetensors(vd_model_writer *w)
{
    size_t *order = malloc((w->n_tensors ? w->n_tensors : 1) * sizeof *order);
    cJSON *root = cJSON_CreateObject();
    vd_status s = VD_OK;
    if (!order || !root) {
        s = vd_error(VD_ERR_OUT_OF_MEMORY, "'%s': out of memory for the header", w->path);
        goto done;
    }
    layout_safetensors(w, order);
    bool ok = true;
    if (w->n_meta > 0) {
        cJSON *meta = cJSON_AddObjectToObject(root, "__metadata__");
        ok &= meta != NULL;
        for (size_t i = 0; ok && i < w->n_meta; i++) {
            const meta_item *m = &w->meta[i];
            char num[64];
            const char *value = m->str;
            if (m->type == VD_GGUF_U32) {
                snprintf(num, sizeof num, "%" PRIu32, m->u32);
                value = num;
            } else if (m->type == VD_GGUF_F32) {
                snprintf(num, sizeof num, "%.9g", (double)m->f32);
                value = num;
            }
            ok &= cJSON_AddStringToObject(meta, m->key, value) != NULL;
        }
    }
    uint64_t data_size = 0;
    for (size_t k = 0; ok && k < w->n_tensors; k++) {
        const tensor_decl *d = &w->tensors[order[k]];
        cJSON *t = cJSON_CreateObject();
        cJSON *shape = cJSON_CreateArray();
        cJSON *offsets = cJSON_CreateArray();
        ok &= t && shape && offsets && cJSON_AddStringToObject(t, "dtype", vd_safetensors_dtype_name(d->dtype));
        for (int i = 0; ok && i < d->ndim; i++)
            ok &= cJSON_AddItemToArray(shape, raw_uint((uint64_t)d->shape[i]));
        ok = ok && cJSON_AddItemToArray(offsets, raw_uint(d->offset)) &&
             cJSON_AddItemToArray(offsets, raw_uint(d->offset + d->nbytes));
        ok = ok && cJSON_AddItemToObject(t, "shape", shape);
        if (ok)
            shape = NULL;
        ok = ok && cJSON_AddItemToObject(t, "data_offsets", offsets);
        if (ok)
            offsets = NULL;
        ok = ok && cJSON_AddItemToObject(root, d->name, t);
        if (ok)
            t = NULL;
        cJSON_Delete(shape);
        cJSON_Delete(offsets);
        cJSON_Delete(t);
        data_size += d->nbytes;
    }
    char *json = ok ? cJSON_PrintUnformatted(root) : NULL;
    if (!json) {
        s = vd_error(VD_ERR_OUT_OF_MEMORY, "'%s': out of memory for the header", w->path);
        goto done;
    }
    size_t len = strlen(json);
    uint64_t n = align_up(len, 8); /* 8 + n: the data section starts at a multiple of 8 */
    if (n > VD_SAFETENSORS_MAX_HEADER) {
        free(json);
        s = vd_error(VD_ERR_UNSUPPORTED, "'%s': the header would be %" PRIu64 " bytes, over the safetensors limit",
                     w->path, n);
        goto done;
    }
    uint8_t *buf = malloc(8 + n);
    if (!buf) {
        free(json);
        s = vd_error(VD_ERR_OUT_OF_MEMORY, "'%s': out of memory for the header", w->path);
        goto done;
    }
    for (int i = 0; i < 8; i++)
        buf[i] = (uint8_t)(n >> (8 * i));
    memcpy(buf + 8, json, len);
    memset(buf + 8 + len, ' ', n - len);
    free(json);
    w->data_start = 8 + n;
    w->total_size = w->data_start + data_size;
    s = write_at(w, buf, 8 + n, 0);
    free(buf);
done:
    cJSON_Delete(root);
    free(order);
    return s == VD_OK ? VD_OK : fail_writer(w, s);
}

vd_status vd_model_writer_begin(vd_model_writer *w)
{
    VD_TRY(check_usable(w, "writing the header", true));
    VD_TRY(w->format == VD_FORMAT_GGUF ? begin_gguf(w) : begin_safetensors(w));
    w->begun = true;
    w->current = 0;
    return VD_OK;
}

/* ---- data ------------------------------------------------------------------------ */

static void skip_complete(vd_model_writer *w)
{
    while (w->current < w->n_tensors && w->tensors[w->current].written == w->tensors[w->current].nbytes)
        w->current++;
}

vd_status vd_model_writer_write(vd_model_writer *w, const void *data, size_t size)
{
    VD_TRY(check_usable(w, "writing tensor data", false));
    if (!w->begun)
        return vd_error(VD_ERR_INVALID_ARGUMENT, "'%s': tensor data written before vd_model_writer_begin", w->path);
    if (size == 0)
        return VD_OK;
    if (!data)
        return vd_error(VD_ERR_INVALID_ARGUMENT, "'%s': no data", w->path);
    skip_complete(w);
    if (w->current == w->n_tensors)
        return fail_writer(w, vd_error(VD_ERR_INVALID_ARGUMENT,
                                       "'%s': %zu bytes written after the last tensor was complete", w->path, size));
    tensor_decl *d = &w->tensors[w->current];
    if (size > d->nbytes - d->written)
        return fail_writer(w, vd_error(VD_ERR_INVALID_ARGUMENT,
                                       "'%s': tensor '%s' takes %" PRIu64 " bytes but %" PRIu64 " were written to it",
                                       w->path, d->name, d->nbytes, d->written + (uint64_t)size));
    VD_TRY(write_at(w, data, size, w->data_start + d->offset + d->written));
    d->written += size;
    return VD_OK;
}

/* ---- end ------------------------------------------------------------------------- */

static void free_writer(vd_model_writer *w)
{
    if (w->fd >= 0)
        close(w->fd);
    for (size_t i = 0; i < w->n_meta; i++) {
        meta_item *m = &w->meta[i];
        free(m->key);
        free(m->str);
        if (m->strs)
            for (size_t k = 0; k < m->count; k++)
                free(m->strs[k]);
        free(m->strs);
        free(m->values);
    }
    for (size_t i = 0; i < w->n_tensors; i++)
        free(w->tensors[i].name);
    free(w->meta);
    free(w->tensors);
    vd_name_index_free(&w->tensor_names);
    vd_name_index_free(&w->meta_keys);
    free(w->path);
    free(w->part_path);
    free(w);
}

void vd_model_writer_abort(vd_model_writer *w)
{
    if (!w)
        return;
    if (w->fd >= 0) {
        close(w->fd);
        w->fd = -1;
        unlink(w->part_path);
    }
    free_writer(w);
}

/* Best effort: make the rename itself durable. */
static void sync_parent_dir(const char *path)
{
    char *copy = strdup(path);
    if (!copy)
        return;
    int fd = open(dirname(copy), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd >= 0) {
        fsync(fd);
        close(fd);
    }
    free(copy);
}

static vd_status finish(vd_model_writer *w)
{
    if (w->failure != VD_OK)
        return vd_error(w->failure, "'%s' was not written: %s", w->path, w->failure_msg);
    if (!w->begun)
        VD_TRY(vd_model_writer_begin(w));
    skip_complete(w);
    if (w->current < w->n_tensors) {
        const tensor_decl *d = &w->tensors[w->current];
        return vd_error(VD_ERR_INVALID_ARGUMENT,
                        "'%s' was not written: tensor '%s' got %" PRIu64 " of its %" PRIu64 " bytes (%zu of %zu tensors complete)",
                        w->path, d->name, d->written, d->nbytes, w->current, w->n_tensors);
    }
    if (ftruncate(w->fd, (off_t)w->total_size) != 0 || fsync(w->fd) != 0) {
        int e = errno;
        return vd_error(VD_ERR_IO, "writing '%s': %s", w->path, strerror(e));
    }
    int fd = w->fd;
    w->fd = -1;
    if (close(fd) != 0) {
        int e = errno;
        return vd_error(VD_ERR_IO, "writing '%s': %s", w->path, strerror(e));
    }
    if (rename(w->part_path, w->path) != 0) {
        int e = errno;
        return vd_error(VD_ERR_IO, "cannot rename '%s' to '%s': %s", w->part_path, w->path, strerror(e));
    }
    sync_parent_dir(w->path);
    return VD_OK;
}

vd_status vd_model_writer_finish(vd_model_writer *w)
{
    if (!w)
        return vd_error(VD_ERR_INVALID_ARGUMENT, "finishing: no writer");
    vd_status s = finish(w);
    if (s != VD_OK) {
        if (w->fd >= 0) {
            close(w->fd);
            w->fd = -1;
        }
        unlink(w->part_path);
    }
    free_writer(w);
    return s;
}

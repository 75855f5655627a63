#include "io/safetensors.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "io/name_index.h"

static const struct {
    const char *name;
    vd_dtype dtype;
} st_dtypes[] = {
    {"F64", VD_F64}, {"F32", VD_F32}, {"F16", VD_F16},  {"BF16", VD_BF16},       {"I64", VD_I64},
    {"I32", VD_I32}, {"I16", VD_I16}, {"I8", VD_I8},    {"U8", VD_U8},           {"BOOL", VD_BOOL},
    {"F8_E4M3", VD_F8_E4M3},          {"F8_E5M2", VD_F8_E5M2},
};

const char *vd_safetensors_dtype_name(vd_dtype dtype)
{
    for (size_t i = 0; i < sizeof st_dtypes / sizeof st_dtypes[0]; i++)
        if (st_dtypes[i].dtype == dtype)
            return st_dtypes[i].name;
    return NULL;
}

/* A failure about the file as a whole, or about one tensor when `tensor`
 * is given.  Corrupt files get a hint; unsupported ones do not need it. */
VD_PRINTF(4, 5)
static vd_status fail(vd_status status, const char *path, const char *tensor, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    const char *hint = status == VD_ERR_FORMAT ? " (the file is damaged or not a safetensors file)" : "";
    if (tensor)
        return vd_error(status, "'%s': tensor '%s': %s%s", path, tensor, msg, hint);
    return vd_error(status, "'%s': %s%s", path, msg, hint);
}

static uint64_t load_le64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = (v << 8) | p[i];
    return v;
}

/* Length of the UTF-8 sequence at s[0..n) (1..4), or 0 if it is not a
 * valid, shortest-form encoding of a scalar value. */
static size_t utf8_sequence(const uint8_t *s, size_t n)
{
    uint8_t c = s[0];
    if (c < 0x80)
        return 1;
    size_t len;
    uint32_t cp;
    if (c >= 0xc2 && c <= 0xdf) {
        len = 2;
        cp = c & 0x1f;
    } else if (c >= 0xe0 && c <= 0xef) {
        len = 3;
        cp = c & 0x0f;
    } else if (c >= 0xf0 && c <= 0xf4) {
        len = 4;
        cp = c & 0x07;
    } else {
        return 0;
    }
    if (len > n)
        return 0;
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xc0) != 0x80)
            return 0;
        cp = (cp << 6) | (s[i] & 0x3f);
    }
    if ((len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
        return 0;
    return len;
}

static bool is_hex(uint8_t c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F'); }

/* Lexical checks cJSON does not make: the header must be UTF-8, hold no
 * control bytes, and no "\u0000" escape (cJSON would cut the string there,
 * so two different names could read as one). */
static vd_status check_header_text(const uint8_t *h, size_t n, const char *path)
{
    bool in_string = false;
    for (size_t i = 0; i < n;) {
        uint8_t c = h[i];
        if (c >= 0x80) {
            size_t len = utf8_sequence(h + i, n - i);
            if (len == 0)
                return fail(VD_ERR_FORMAT, path, NULL, "the header is not valid UTF-8 (byte %zu of the header)", i);
            i += len;
            continue;
        }
        if (c < 0x20 && c != '\t' && c != '\n' && c != '\r')
            return fail(VD_ERR_FORMAT, path, NULL, "the header holds control byte 0x%02x at byte %zu", c, i);
        if (in_string && c == '\\') {
            if (i + 1 < n && h[i + 1] == 'u') {
                if (i + 6 > n || !is_hex(h[i + 2]) || !is_hex(h[i + 3]) || !is_hex(h[i + 4]) || !is_hex(h[i + 5]))
                    return fail(VD_ERR_FORMAT, path, NULL, "the header is not valid JSON (bad \\u escape at byte %zu)",
                                i);
                if (memcmp(h + i + 2, "0000", 4) == 0)
                    return fail(VD_ERR_FORMAT, path, NULL, "the header holds a \\u0000 escape at byte %zu", i);
                i += 6;
                continue;
            }
            i += 2; /* an escaped character; it is ASCII in valid JSON */
            continue;
        }
        if (c == '"')
            in_string = !in_string;
        i++;
    }
    return VD_OK;
}

/* A JSON number that is a non-negative integer below 2^53 (exact in a
 * double, hence exactly what the file says). */
static bool json_uint(const cJSON *item, uint64_t *out)
{
    if (!cJSON_IsNumber(item))
        return false;
    double d = item->valuedouble;
    if (!(d >= 0.0) || d >= 9007199254740992.0 || d != floor(d))
        return false;
    *out = (uint64_t)d;
    return true;
}

void vd_safetensors_free(vd_safetensors *st)
{
    for (size_t i = 0; i < st->n_tensors; i++)
        free(st->tensors[i].name);
    for (size_t i = 0; i < st->n_meta; i++) {
        free(st->meta[i].key);
        free(st->meta[i].value);
    }
    free(st->tensors);
    free(st->meta);
    memset(st, 0, sizeof *st);
}

static vd_status parse_metadata(const cJSON *obj, const char *path, vd_safetensors *st)
{
    if (!cJSON_IsObject(obj))
        return fail(VD_ERR_FORMAT, path, NULL, "\"__metadata__\" is not an object of strings");
    size_t n = (size_t)cJSON_GetArraySize(obj);
    if (n == 0)
        return VD_OK;
    st->meta = calloc(n, sizeof *st->meta);
    if (!st->meta)
        return vd_error(VD_ERR_OUT_OF_MEMORY, "'%s': out of memory reading the metadata", path);
    const cJSON *item;
    cJSON_ArrayForEach(item, obj) {
        if (!cJSON_IsString(item) || !item->valuestring)
            return fail(VD_ERR_FORMAT, path, NULL, "metadata entry '%s' is not a string", item->string);
        vd_safetensors_meta *m = &st->meta[st->n_meta];
        m->key = strdup(item->string);
        m->value = strdup(item->valuestring);
        st->n_meta++;
        if (!m->key || !m->value)
            return vd_error(VD_ERR_OUT_OF_MEMORY, "'%s': out of memory reading the metadata", path);
    }
    const char **keys = malloc(st->n_meta * sizeof *keys);
    if (!keys)
        return vd_error(VD_ERR_OUT_OF_MEMORY, "'%s': out of memory reading the metadata", path);
    for (size_t i = 0; i < st->n_meta; i++)
        keys[i] = st->meta[i].key;
    vd_name_index ix;
    bool dup;
    size_t a, b;
    vd_status s = vd_name_index_build(&ix, keys, st->n_meta, &dup, &a, &b);
    free(keys);
    vd_name_index_free(&ix);
    if (s != VD_OK)
        return s;
    if (dup)
        return fail(VD_ERR_FORMAT, path, NULL, "metadata key '%s' appears twice", st->meta[a].key);
    return VD_OK;
}

/* One "name": {"dtype", "shape", "data_offsets"} entry. */
static vd_status parse_tensor(const cJSON *obj, const char *path, uint64_t data_size, vd_safetensors_tensor *t)
{
    const char *name = t->name;
    if (!cJSON_IsObject(obj))
        return fail(VD_ERR_FORMAT, path, name, "its entry is not an object");
    const cJSON *dtype = NULL, *shape = NULL, *offsets = NULL, *field;
    cJSON_ArrayForEach(field, obj) {
        const cJSON **slot = NULL;
        if (strcmp(field->string, "dtype") == 0)
            slot = &dtype;
        else if (strcmp(field->string, "shape") == 0)
            slot = &shape;
        else if (strcmp(field->string, "data_offsets") == 0)
            slot = &offsets;
        if (!slot)
            continue; /* unknown fields are ignored, as by the reference reader */
        if (*slot)
            return fail(VD_ERR_FORMAT, path, name, "\"%s\" appears twice", field->string);
        *slot = field;
    }
    if (!dtype || !shape || !offsets)
        return fail(VD_ERR_FORMAT, path, name, "\"%s\" is missing", !dtype ? "dtype" : !shape ? "shape" : "data_offsets");

    if (!cJSON_IsString(dtype) || !dtype->valuestring)
        return fail(VD_ERR_FORMAT, path, name, "\"dtype\" is not a string");
    bool known = false;
    for (size_t i = 0; i < sizeof st_dtypes / sizeof st_dtypes[0]; i++)
        if (strcmp(dtype->valuestring, st_dtypes[i].name) == 0) {
            t->dtype = st_dtypes[i].dtype;
            known = true;
        }
    if (!known)
        return vd_error(VD_ERR_UNSUPPORTED, "'%s': tensor '%s' has dtype %.64s, which vdiff does not read", path, name,
                        dtype->valuestring);

    if (!cJSON_IsArray(shape))
        return fail(VD_ERR_FORMAT, path, name, "\"shape\" is not an array");
    int ndim = cJSON_GetArraySize(shape);
    if (ndim > VD_MAX_DIMS)
        return fail(VD_ERR_UNSUPPORTED, path, name, "the shape has %d dimensions; vdiff reads at most %d", ndim,
                    VD_MAX_DIMS);
    t->ndim = ndim;
    uint64_t nelem = 1;
    bool overflow = false;
    int d = 0;
    const cJSON *dim;
    cJSON_ArrayForEach(dim, shape) {
        uint64_t v;
        if (!json_uint(dim, &v))
            return fail(VD_ERR_FORMAT, path, name, "dimension %d of the shape is not an integer from 0 to 2^53", d);
        t->shape[d++] = (int64_t)v;
        if (v != 0 && nelem > (uint64_t)INT64_MAX / v)
            overflow = true; /* decided after all dims: a zero makes it fine */
        else
            nelem *= v;
    }
    bool has_zero = false;
    for (int i = 0; i < ndim; i++)
        has_zero |= t->shape[i] == 0;
    if (has_zero)
        nelem = 0;
    else if (overflow)
        return fail(VD_ERR_FORMAT, path, name, "the element count of the shape overflows");
    size_t esize = (size_t)vd_dtype_info(t->dtype)->block_bytes;
    if (nelem > UINT64_MAX / esize)
        return fail(VD_ERR_FORMAT, path, name, "the byte size of the shape overflows");
    uint64_t nbytes = nelem * esize;

    if (!cJSON_IsArray(offsets) || cJSON_GetArraySize(offsets) != 2)
        return fail(VD_ERR_FORMAT, path, name, "\"data_offsets\" is not a [begin, end] pair");
    if (!json_uint(cJSON_GetArrayItem(offsets, 0), &t->begin) || !json_uint(cJSON_GetArrayItem(offsets, 1), &t->end))
        return fail(VD_ERR_FORMAT, path, name, "\"data_offsets\" are not integers from 0 to 2^53");
    if (t->begin > t->end)
        return fail(VD_ERR_FORMAT, path, name, "data_offsets [%llu, %llu] are reversed", (unsigned long long)t->begin,
                    (unsigned long long)t->end);
    if (t->end > data_size)
        return fail(VD_ERR_FORMAT, path, name,
                    "data_offsets [%llu, %llu] run past the end of the data section (%llu bytes); truncated?",
                    (unsigned long long)t->begin, (unsigned long long)t->end, (unsigned long long)data_size);
    if (t->end - t->begin != nbytes)
        return fail(VD_ERR_FORMAT, path, name, "data_offsets span %llu bytes but the %s shape needs %llu",
                    (unsigned long long)(t->end - t->begin), vd_dtype_name(t->dtype), (unsigned long long)nbytes);
    return VD_OK;
}

static int range_cmp(const void *a, const void *b)
{
    const vd_safetensors_tensor *x = *(const vd_safetensors_tensor *const *)a;
    const vd_safetensors_tensor *y = *(const vd_safetensors_tensor *const *)b;
    if (x->begin != y->begin)
        return x->begin < y->begin ? -1 : 1;
    return x->end < y->end ? -1 : x->end > y->end;
}

/* No two non-empty byte ranges may share a byte, and no two tensors a name. */
static vd_status check_unique(vd_safetensors *st, const char *path)
{
    size_t n = st->n_tensors;
    if (n < 2)
        return VD_OK;
    vd_safetensors_tensor **order = malloc(n * sizeof *order);
    const char **names = malloc(n * sizeof *names);
    if (!order || !names) {
        free(order);
        free(names);
        return vd_error(VD_ERR_OUT_OF_MEMORY, "'%s': out of memory checking the header", path);
    }
    for (size_t i = 0; i < n; i++) {
        order[i] = &st->tensors[i];
        names[i] = st->tensors[i].name;
    }
    vd_name_index ix;
    bool dup;
    size_t a = 0, b = 0;
    vd_status s = vd_name_index_build(&ix, names, n, &dup, &a, &b);
    vd_name_index_free(&ix);
    free(names);
    if (s == VD_OK && dup)
        s = fail(VD_ERR_FORMAT, path, st->tensors[a].name, "the name appears twice in the header");
    if (s == VD_OK) {
        qsort(order, n, sizeof *order, range_cmp);
        const vd_safetensors_tensor *prev = NULL;
        for (size_t i = 0; i < n && s == VD_OK; i++) {
            const vd_safetensors_tensor *t = order[i];
            if (t->begin == t->end)
                continue;
            if (prev && t->begin < prev->end)
                s = fail(VD_ERR_FORMAT, path, t->name, "its bytes [%llu, %llu) overlap those of '%s' [%llu, %llu)",
                         (unsigned long long)t->begin, (unsigned long long)t->end, prev->name,
                         (unsigned long long)prev->begin, (unsigned long long)prev->end);
            prev = t;
        }
    }
    free(order);
    return s;
}

static vd_status parse_header(const cJSON *root, const char *path, uint64_t data_size, vd_safetensors *st)
{
    if (!cJSON_IsObject(root))
        return fail(VD_ERR_FORMAT, path, NULL, "the header is not a JSON object");
    size_t n = (size_t)cJSON_GetArraySize(root);
    if (n > 0) {
        st->tensors = calloc(n, sizeof *st->tensors);
        if (!st->tensors)
            return vd_error(VD_ERR_OUT_OF_MEMORY, "'%s': out of memory reading the header", path);
    }
    bool seen_meta = false;
    const cJSON *item;
    cJSON_ArrayForEach(item, root) {
        if (strcmp(item->string, "__metadata__") == 0) {
            if (seen_meta)
                return fail(VD_ERR_FORMAT, path, NULL, "\"__metadata__\" appears twice");
            seen_meta = true;
            VD_TRY(parse_metadata(item, path, st));
            continue;
        }
        if (item->string[0] == '\0')
            return fail(VD_ERR_FORMAT, path, NULL, "a tensor has an empty name");
        vd_safetensors_tensor *t = &st->tensors[st->n_tensors];
        t->name = strdup(item->string);
        if (!t->name)
            return vd_error(VD_ERR_OUT_OF_MEMORY, "'%s': out of memory reading the header", path);
        st->n_tensors++;
        VD_TRY(parse_tensor(item, path, data_size, t));
    }
    return check_unique(st, path);
}

vd_status vd_safetensors_parse(const uint8_t *data, size_t size, const char *path, vd_safetensors *out)
{
    memset(out, 0, sizeof *out);
    if (size < 8)
        return fail(VD_ERR_FORMAT, path, NULL, "the file is %zu bytes, too short for a safetensors header", size);
    uint64_t n = load_le64(data);
    if (n == 0)
        return fail(VD_ERR_FORMAT, path, NULL, "the header length is 0");
    if (n > VD_SAFETENSORS_MAX_HEADER)
        return fail(VD_ERR_FORMAT, path, NULL, "the header length %llu is over the %u-byte limit", (unsigned long long)n,
                    VD_SAFETENSORS_MAX_HEADER);
    if (n > size - 8)
        return fail(VD_ERR_FORMAT, path, NULL, "the header length %llu runs past the end of the file (%zu bytes); truncated?",
                    (unsigned long long)n, size);
    VD_TRY(check_header_text(data + 8, (size_t)n, path));

    /* A terminated private copy: cJSON then never reads outside it. */
    char *text = malloc((size_t)n + 1);
    if (!text)
        return vd_error(VD_ERR_OUT_OF_MEMORY, "'%s': out of memory for a %llu-byte header", path, (unsigned long long)n);
    memcpy(text, data + 8, (size_t)n);
    text[n] = '\0';
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithLengthOpts(text, (size_t)n, &end, 0);
    vd_status s = VD_OK;
    if (!root) {
        size_t at = end && end >= text && end <= text + n ? (size_t)(end - text) : 0;
        s = fail(VD_ERR_FORMAT, path, NULL, "the header is not valid JSON (near byte %zu)", at);
    } else {
        /* Only padding may follow the JSON value. */
        for (const char *p = end; p && p < text + n; p++)
            if (*p != ' ' && *p != '\t' && *p != '\n' && *p != '\r') {
                s = fail(VD_ERR_FORMAT, path, NULL, "the header has trailing bytes after the JSON (byte %zu)",
                         (size_t)(p - text));
                break;
            }
    }
    if (s == VD_OK) {
        out->data_start = 8 + n;
        s = parse_header(root, path, (uint64_t)size - out->data_start, out);
    }
    cJSON_Delete(root);
    free(text);
    if (s != VD_OK)
        vd_safetensors_free(out);
    return s;
}

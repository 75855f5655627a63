/* The GGUF container (versions 2 and 3, little-endian): magic "GGUF", u32
 * version, u64 tensor count, u64 key/value count, typed key/values, tensor
 * infos (name, dims innermost first, ggml type, offset), then the data
 * section at the next multiple of general.alignment (default 32).
 *
 * The parser bounds every count and length by the bytes that remain before
 * allocating or reading, limits array nesting, and validates every tensor
 * (known type, whole blocks, aligned offset, range inside the file, no
 * overlap, unique name) before anything is used. */
#ifndef VD_IO_GGUF_H
#define VD_IO_GGUF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/tensor.h"

#define VD_GGUF_DEFAULT_ALIGNMENT 32u
#define VD_GGUF_MAX_TENSORS 1000000u
#define VD_GGUF_MAX_KV 1000000u
#define VD_GGUF_MAX_ARRAY_DEPTH 4 /* an array of arrays of ... at most this deep */

typedef enum vd_gguf_type {
    VD_GGUF_U8 = 0,
    VD_GGUF_I8 = 1,
    VD_GGUF_U16 = 2,
    VD_GGUF_I16 = 3,
    VD_GGUF_U32 = 4,
    VD_GGUF_I32 = 5,
    VD_GGUF_F32 = 6,
    VD_GGUF_BOOL = 7,
    VD_GGUF_STRING = 8,
    VD_GGUF_ARRAY = 9,
    VD_GGUF_U64 = 10,
    VD_GGUF_I64 = 11,
    VD_GGUF_F64 = 12,
    VD_GGUF_TYPE_COUNT
} vd_gguf_type;

typedef struct vd_gguf_value vd_gguf_value;

/* A metadata value.  Strings and scalar arrays point into the file (the
 * mapping must outlive the parsed header); strings are not terminated and
 * may hold any bytes. */
struct vd_gguf_value {
    vd_gguf_type type;
    union {
        uint64_t u;  /* U8, U16, U32, U64, BOOL (0 or 1) */
        int64_t i;   /* I8, I16, I32, I64 */
        double f;    /* F32, F64 */
        struct {
            const char *data;
            uint64_t len;
        } str;
        struct {
            vd_gguf_type elem_type;
            uint64_t count;
            const uint8_t *raw;   /* scalar elements, little-endian, unaligned */
            vd_gguf_value *items; /* string and array elements, decoded */
        } arr;
    } v;
};

typedef struct vd_gguf_kv {
    char *key;
    vd_gguf_value value;
} vd_gguf_kv;

typedef struct vd_gguf_tensor {
    char *name;
    uint32_t ggml_type;
    vd_dtype dtype;
    int ndim;
    int64_t shape[VD_MAX_DIMS]; /* outermost first (ne reversed) */
    uint64_t offset;            /* relative to the data section */
    uint64_t nbytes;
} vd_gguf_tensor;

typedef struct vd_gguf {
    uint32_t version;
    uint32_t alignment;
    uint64_t data_start; /* absolute offset of the data section */
    vd_gguf_kv *kv;      /* in file order */
    size_t n_kv;
    vd_gguf_tensor *tensors; /* in file order */
    size_t n_tensors;
} vd_gguf;

/* Parse and validate the file held in data[0..size); `path` is for
 * messages.  On failure *out is left empty. */
vd_status vd_gguf_parse(const uint8_t *data, size_t size, const char *path, vd_gguf *out);
void vd_gguf_free(vd_gguf *g);

const vd_gguf_kv *vd_gguf_find(const vd_gguf *g, const char *key);

/* Element i of an array value (decoding scalars from the file); false if
 * `arr` is not an array or i is out of range. */
bool vd_gguf_array_at(const vd_gguf_value *arr, uint64_t i, vd_gguf_value *out);

/* "u8", "string", "array", ...; "invalid" otherwise. */
const char *vd_gguf_type_name(vd_gguf_type type);

/* Printable form: strings as is (up to `size`), numbers in decimal, bools
 * "true"/"false", arrays summarised ("[array of 1000 string]").  Returns buf. */
const char *vd_gguf_value_format(const vd_gguf_value *v, char *buf, size_t size);

/* ggml type ids <-> engine dtypes (only the types vdiff reads). */
bool vd_gguf_dtype_from_ggml(uint32_t ggml_type, vd_dtype *out);
bool vd_gguf_ggml_from_dtype(vd_dtype dtype, uint32_t *out);
/* "Q4_K", "IQ2_XXS", ...; NULL for ids ggml does not define. */
const char *vd_gguf_ggml_type_name(uint32_t ggml_type);

#endif

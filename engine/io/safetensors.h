/* The safetensors container: an 8-byte little-endian header length N, N
 * bytes of UTF-8 JSON ({"name": {"dtype", "shape", "data_offsets"}, ...,
 * "__metadata__": {string: string}}), then the data section.
 *
 * The parser validates everything a reader relies on before anything is
 * used: lengths against the file size, the JSON, every dtype and shape, the
 * element count against the byte range, ranges inside the data section and
 * not overlapping, names unique.  Each failure names the file and tensor. */
#ifndef VD_IO_SAFETENSORS_H
#define VD_IO_SAFETENSORS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/tensor.h"

/* Largest header accepted (the reference implementation's limit). */
#define VD_SAFETENSORS_MAX_HEADER 100000000u

typedef struct vd_safetensors_tensor {
    char *name;
    vd_dtype dtype;
    int ndim;
    int64_t shape[VD_MAX_DIMS];
    uint64_t begin, end; /* byte range relative to the data section */
} vd_safetensors_tensor;

typedef struct vd_safetensors_meta {
    char *key;
    char *value;
} vd_safetensors_meta;

typedef struct vd_safetensors {
    uint64_t data_start; /* absolute offset of the data section: 8 + N */
    vd_safetensors_tensor *tensors; /* in header order */
    size_t n_tensors;
    vd_safetensors_meta *meta; /* "__metadata__", in header order */
    size_t n_meta;
} vd_safetensors;

/* Parse and validate the file held in data[0..size).  `path` is used in
 * messages only.  On failure *out is left empty. */
vd_status vd_safetensors_parse(const uint8_t *data, size_t size, const char *path, vd_safetensors *out);
void vd_safetensors_free(vd_safetensors *st);

/* The header's dtype string for a dtype ("F32", "F8_E4M3", ...); NULL when
 * safetensors cannot store it (GGUF block types). */
const char *vd_safetensors_dtype_name(vd_dtype dtype);

#endif

/* Packed units: a model's tensors grouped into units (the stem, one per
 * transformer block), each unit laid out contiguously in execution order so
 * that moving a unit is one copy.  Offsets are VD_PACK_ALIGN-aligned (the
 * alignment cudaMalloc gives, so kernels and cuBLASLt see the same pointer
 * alignment as for tensors in their own buffers).  Weights keep their
 * storage dtype and scale; small parameters (biases, norms, modulation) are
 * converted to f32 exactly as vd_load_param_f32 does.
 *
 * The layout only describes; vd_pack_fill writes any byte range of a unit's
 * image straight from the memory-mapped file (no second copy of the model
 * in RAM), and vd_pack_view gives the tensors over a unit's bytes wherever
 * they are (host buffer, resident buffer, ring slot).  Pure C. */
#ifndef VD_OFFLOAD_LAYOUT_H
#define VD_OFFLOAD_LAYOUT_H

#include <stdbool.h>
#include <stdint.h>

#include "core/tensor.h"
#include "io/weights.h"

#define VD_PACK_ALIGN 256

typedef struct vd_pack_entry {
    const vd_weight *src;  /* the tensor in the file */
    vd_tensor view;        /* dtype, shape, scale and name of the packed tensor; data NULL */
    uint64_t offset;       /* in the unit, VD_PACK_ALIGN-aligned */
    uint64_t nbytes;
    bool to_f32;           /* converted to f32 (scale applied) */
} vd_pack_entry;

typedef struct vd_pack_unit {
    char name[32];         /* "stem", "block 0" */
    vd_pack_entry *entries;
    int n, cap;
    uint64_t bytes;        /* the unit's size (a multiple of VD_PACK_ALIGN) */
} vd_pack_unit;

typedef struct vd_pack_layout {
    vd_pack_unit *units;
    int n;
} vd_pack_layout;

/* A layout of n_units empty units. */
vd_status vd_pack_layout_new(int n_units, vd_pack_layout **out);
void vd_pack_layout_free(vd_pack_layout *l);

/* Append the weight `name` in its storage dtype.  ndim > 0 views it with
 * that shape (same element count).  Errors name the tensor and the file. */
vd_status vd_pack_add_weight(vd_pack_unit *u, const vd_weights *w, const char *name, int ndim, const int64_t *shape);

/* Append the parameter `name` as f32 of the given shape (same element
 * count; checkpoints shape them [D], [1, D], [1, 6, D]...). */
vd_status vd_pack_add_f32(vd_pack_unit *u, const vd_weights *w, const char *name, int ndim, const int64_t *shape);

/* The tensor of entry k over a unit image at `base`. */
vd_tensor vd_pack_view(const vd_pack_unit *u, int k, void *base);

/* Bytes [offset, offset + size) of the unit's image into dst (host
 * memory), read from the mapped file; padding is zero. */
vd_status vd_pack_fill(const vd_pack_unit *u, uint64_t offset, uint64_t size, void *dst);

/* Σ unit bytes. */
uint64_t vd_pack_layout_bytes(const vd_pack_layout *l);

#endif

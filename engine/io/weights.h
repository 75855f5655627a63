/* A model file opened for reading: safetensors or GGUF, memory-mapped,
 * validated, with tensor names mapped onto the canonical Wan / umT5 names
 * and fp8 "scaled" checkpoints folded (each weight carries its scale).
 *
 * Canonical names: the Wan-AI / ComfyUI DiT and VAE names (a
 * "model.diffusion_model." prefix is stripped, diffusers names are mapped
 * back), and the Hugging Face / ComfyUI umT5 names ("shared.weight",
 * "encoder.block.{i}.layer.0.SelfAttention.q.weight", ...; llama.cpp GGUF
 * names and the Wan original names are mapped onto them). */
#ifndef VD_IO_WEIGHTS_H
#define VD_IO_WEIGHTS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/tensor.h"

typedef enum vd_file_format {
    VD_FORMAT_NONE = 0,   /* an in-memory set (shape-only or built by code) */
    VD_FORMAT_SAFETENSORS,
    VD_FORMAT_GGUF
} vd_file_format;

typedef struct vd_weight {
    char *name;          /* canonical name */
    char *file_name;     /* the name as stored in the file */
    vd_tensor tensor;    /* dtype, shape (outermost first), data in the mapping
                            (NULL in shape-only sets), scale folded in */
    size_t nbytes;       /* bytes of the stored data */
    uint64_t offset;     /* absolute byte offset in the file */
} vd_weight;

typedef struct vd_meta_entry {
    const char *key;
    const char *value;   /* printable: strings as is, numbers in decimal,
                            arrays summarised ("[array of 1000 string]") */
} vd_meta_entry;

typedef struct vd_weights vd_weights;

/* Open and validate a model file (format chosen by content, not by name).
 * Every failure names the file and what is wrong with it. */
vd_status vd_weights_open(const char *path, vd_weights **out);

/* An empty in-memory set; vd_weights_add() fills it (data may be NULL for
 * shape-only sets, e.g. detecting a full-size config without its bytes).
 * Names are taken as canonical; data is not copied (the caller keeps it
 * alive); adding a name twice, or adding to a set opened from a file, is
 * VD_ERR_INVALID_ARGUMENT. */
vd_status vd_weights_new(vd_weights **out);
vd_status vd_weights_add(vd_weights *w, const char *name, vd_dtype dtype, int ndim, const int64_t *shape,
                         const void *data);

void vd_weights_close(vd_weights *w);

vd_file_format vd_weights_format(const vd_weights *w);
const char *vd_weights_path(const vd_weights *w);   /* "" for in-memory sets */
uint64_t vd_weights_file_size(const vd_weights *w);

size_t vd_weights_count(const vd_weights *w);
const vd_weight *vd_weights_at(const vd_weights *w, size_t i);
/* Find by canonical name; NULL if absent. */
const vd_weight *vd_weights_find(const vd_weights *w, const char *name);

/* File metadata: safetensors "__metadata__" strings, GGUF key/values. */
size_t vd_weights_meta_count(const vd_weights *w);
const vd_meta_entry *vd_weights_meta_at(const vd_weights *w, size_t i);
/* The string value of a key (GGUF: string-typed keys only); NULL if absent. */
const char *vd_weights_meta_string(const vd_weights *w, const char *key);

/* How the file was stored: "fp8 scaled (legacy scaled_fp8)", "fp8 scaled
 * (comfy_quant)", "fp8 (unscaled casts)", "gguf block-quantized", "plain";
 * for `vdiff inspect`. */
const char *vd_weights_quant_layout(const vd_weights *w);

/* The tensor-name scheme the file used before mapping: "canonical",
 * "diffusers", "t5-gguf" or "t5-wan" (see io/name_map.h). */
const char *vd_weights_name_scheme(const vd_weights *w);

/* The typed GGUF metadata (io/gguf.h) of a GGUF file; NULL otherwise. */
typedef struct vd_gguf vd_gguf;
const vd_gguf *vd_weights_gguf(const vd_weights *w);

#endif

/* Tensor-name maps onto the canonical names.
 *
 * Canonical: the Wan-AI / ComfyUI DiT and VAE names and the Hugging Face /
 * ComfyUI umT5 names.  A "model.diffusion_model." or "diffusion_model."
 * prefix is stripped from every name; then one scheme, decided from the
 * whole name set, maps the rest:
 *   diffusers   WanTransformer3DModel names (condition_embedder.*, attn1/
 *               attn2, scale_shift_table, proj_out, norm2/norm3 swapped)
 *   t5-gguf     llama.cpp umT5 names (token_embd, enc.blk.N.attn_q, ...)
 *   t5-wan      Wan's original umT5 names (token_embedding, blocks.N.attn.q)
 *   canonical   nothing to map.
 * Names a scheme does not know pass through unchanged (the tokenizer tensor
 * "spiece_model", for one). */
#ifndef VD_IO_NAME_MAP_H
#define VD_IO_NAME_MAP_H

#include <stddef.h>

#include "vdiff/status.h"

typedef enum vd_name_scheme {
    VD_NAMES_CANONICAL = 0,
    VD_NAMES_DIFFUSERS_WAN,
    VD_NAMES_T5_GGUF,
    VD_NAMES_T5_WAN
} vd_name_scheme;

/* "canonical", "diffusers", "t5-gguf", "t5-wan". */
const char *vd_name_scheme_name(vd_name_scheme scheme);

/* The name after a "model.diffusion_model." / "diffusion_model." prefix (a
 * pointer into `file_name`). */
const char *vd_name_strip_prefix(const char *file_name);

/* The scheme of a set of (stripped) names. */
vd_name_scheme vd_name_scheme_detect(const char *const *names, size_t n);

/* The canonical name of one stripped name under `scheme` (malloc'd; NULL
 * when out of memory). */
char *vd_name_map_one(vd_name_scheme scheme, const char *name);

/* Map every file name (prefix stripped, scheme detected from the set) into
 * out[i] (malloc'd; the caller frees each).  Two file names that map to the
 * same canonical name are VD_ERR_FORMAT naming both and `path`.  On failure
 * nothing is left allocated in out. */
vd_status vd_name_map_all(const char *const *file_names, size_t n, const char *path, char **out,
                          vd_name_scheme *scheme);

#endif

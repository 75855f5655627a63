/* Storage policies: which dtype each tensor of a model gets when a model is
 * written with `vdiff mkmodel` / `vdiff convert --dtype X`.
 *
 * They follow what users' files contain (wan-spec.md §5.1 and §6):
 * - plain f32 / f16 / bf16: every tensor in that type (GGUF keeps 1-D and
 *   small tensors in F32, as city96's converter does);
 * - fp8 / fp8-scaled (safetensors): the transformer blocks' Linear weights
 *   in e4m3 (with a per-tensor scale for "scaled"), modulation in f32, the
 *   rest bf16;
 * - GGUF block types: block Linear weights (and the umT5 token embedding)
 *   quantised; 1-D tensors, tensors of ≤ 1024 elements, modulation and the
 *   5-D patch embedding F32; everything else F16.  K-quants need rows that
 *   are a multiple of 256; other rows fall back as llama.cpp does (Q2_K/Q3_K
 *   → Q4_0, Q4_K → Q5_0, Q5_K → Q5_1, Q6_K → Q8_0, and F16 below 32).
 *   "_m" variants (q4_k_m, q5_k_m) upgrade attention v and ffn.2 to Q6_K. */
#ifndef VD_MODELS_STORAGE_POLICY_H
#define VD_MODELS_STORAGE_POLICY_H

#include <stdbool.h>

#include "io/weights.h"
#include "models/arch.h"

typedef enum vd_fp8_layout {
    VD_FP8_LEGACY = 0,    /* `scaled_fp8` marker + X.scale_weight */
    VD_FP8_COMFY_QUANT    /* X.weight_scale + X.comfy_quant */
} vd_fp8_layout;

typedef struct vd_storage_policy {
    char name[16];        /* as given: "q4_k_m", "fp8-scaled", ... */
    vd_dtype dtype;       /* the main type */
    bool fp8_scaled;      /* per-tensor scales for fp8 weights */
    vd_fp8_layout fp8_layout;
    bool upgrade_m;       /* the _m variants */
    vd_file_format format;
} vd_storage_policy;

/* Parse a --dtype value for a file format; refuses combinations the
 * format cannot hold (fp8 in GGUF, block types in safetensors). */
vd_status vd_storage_policy_parse(const char *name, vd_file_format format, vd_storage_policy *out);

/* The dtype of one tensor of `arch` under the policy.  Fails for
 * combinations that make no sense (a quantised VAE). */
vd_status vd_storage_policy_dtype(const vd_storage_policy *p, const vd_arch_info *arch, const vd_param_desc *param,
                                  vd_dtype *out);

/* The --dtype names, for --help. */
const char *vd_storage_policy_names(void);

#endif

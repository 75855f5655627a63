/* Architecture detection and configuration inference.
 *
 * From a file's tensor names and shapes alone (as ComfyUI does), tell which
 * model it is and infer its whole configuration, so every size of an
 * architecture loads: the 14B, the 1.3B, the 5B and tiny test models.  The
 * same tables enumerate a configuration's tensors (vd_arch_inventory), which
 * `vdiff mkmodel` writes and detection checks: a file that lacks a tensor, or
 * holds one of the wrong shape, is rejected with the tensor named. */
#ifndef VD_MODELS_ARCH_H
#define VD_MODELS_ARCH_H

#include <stdbool.h>
#include <stdint.h>

#include "io/weights.h"

typedef enum vd_arch {
    VD_ARCH_UNKNOWN = 0,
    VD_ARCH_WAN_DIT,
    VD_ARCH_WAN_VAE,
    VD_ARCH_UMT5
} vd_arch;

typedef enum vd_dit_variant {
    VD_DIT_T2V = 0,   /* Wan2.1 T2V 1.3B/14B, Wan2.2 T2V-A14B expert: 16 → 16 */
    VD_DIT_I2V21,     /* Wan2.1 I2V-14B: 36 → 16, CLIP image branch */
    VD_DIT_FLF2V21,   /* Wan2.1 FLF2V-14B: as I2V plus img_emb.emb_pos */
    VD_DIT_I2V22,     /* Wan2.2 I2V-A14B expert: 36 → 16, no CLIP branch */
    VD_DIT_TI2V22     /* Wan2.2 TI2V-5B: 48 → 48 */
} vd_dit_variant;

typedef struct vd_dit_config {
    vd_dit_variant variant;
    int64_t dim, ffn_dim, heads, head_dim, layers;
    int64_t in_dim, out_dim, freq_dim, text_dim;
    int64_t patch[3];   /* (t, h, w), (1, 2, 2) in every release */
    int64_t img_dim;    /* CLIP width (1280) when the image branch exists */
    int64_t img_pos;    /* rows of img_emb.emb_pos (514, FLF2V) or 0 */
    float eps;
} vd_dit_config;

typedef struct vd_vae_config {
    int version;        /* 21 (Wan2.1, z 16, stride 4×8×8) or 22 (Wan2.2, z 48, 4×16×16) */
    int64_t z_dim;
    int64_t enc_dim;    /* encoder base width: 96 (2.1) / 160 (2.2) */
    int64_t dec_dim;    /* decoder base width: 96 (2.1) / 256 (2.2) */
    int64_t dim_mult[4];
    int num_res_blocks;
    bool has_encoder, has_decoder;
} vd_vae_config;

typedef struct vd_t5_config {
    int64_t vocab, d_model, heads, d_kv, d_ff, layers, buckets;
    bool has_tokenizer; /* a `spiece_model` tensor is present */
} vd_t5_config;

typedef struct vd_arch_info {
    vd_arch arch;
    char id[32];        /* "wan21-t2v", "wan-vae", "umt5", ... (mkmodel's --arch) */
    char name[64];      /* "Wan2.1 T2V DiT", ... */
    vd_dit_config dit;
    vd_vae_config vae;
    vd_t5_config t5;
    int64_t params;     /* parameters of the inferred configuration */
    int64_t tensors;    /* tensors of the inferred configuration */
    int64_t extra;      /* tensors in the file the architecture does not use */
} vd_arch_info;

/* What a tensor is, for initialisation and storage policies. */
typedef enum vd_param_role {
    VD_ROLE_BLOCK_LINEAR = 0, /* a transformer block's Linear weight (quantised by GGUF/fp8 policies) */
    VD_ROLE_LINEAR,           /* any other Linear weight */
    VD_ROLE_BIAS,
    VD_ROLE_NORM,             /* norm weight or gamma (≈ 1) */
    VD_ROLE_MODULATION,       /* learned modulation offsets */
    VD_ROLE_CONV,             /* convolution weight */
    VD_ROLE_EMBEDDING,        /* token embedding table */
    VD_ROLE_REL_BIAS,         /* T5 relative position bias */
    VD_ROLE_POSITION          /* learned position embedding */
} vd_param_role;

typedef struct vd_param_desc {
    const char *name;
    int ndim;
    int64_t shape[5];
    vd_param_role role;
    int64_t fan_in;           /* inputs per output (for initialisation) */
} vd_param_desc;

typedef vd_status (*vd_param_fn)(void *ctx, const vd_param_desc *param);

/* Detect the architecture of a weight set and infer its configuration;
 * checks every tensor the configuration needs (presence and shape).
 * Unknown files fail with VD_ERR_UNSUPPORTED describing what was found. */
vd_status vd_arch_detect(const vd_weights *w, vd_arch_info *out);

/* Call fn for every tensor of a configuration, in execution order. */
vd_status vd_arch_inventory(const vd_arch_info *info, vd_param_fn fn, void *ctx);

/* Fill `info` for a named architecture (mkmodel's --arch) and preset
 * ("tiny", "1.3b", "14b", "5b", or NULL for the architecture's default);
 * then callers may override fields and call vd_arch_finalize. */
vd_status vd_arch_from_preset(const char *arch_id, const char *preset, vd_arch_info *out);

/* Check a configuration filled by hand and compute params/tensors/name. */
vd_status vd_arch_finalize(vd_arch_info *info);

/* The architecture ids mkmodel accepts, for --help ("wan21-t2v|..."). */
const char *vd_arch_ids(void);

#endif

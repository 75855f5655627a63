#include "models/arch.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "core/error.h"

/* ---- inventory ------------------------------------------------------------ */

typedef struct emitter {
    vd_param_fn fn;
    void *ctx;
    char prefix[96];
} emitter;

/* Emit one tensor named prefix + suffix with the given shape. */
static vd_status emit(emitter *e, vd_param_role role, const char *suffix, int ndim, ...)
{
    char name[160];
    snprintf(name, sizeof name, "%s%s", e->prefix, suffix);
    vd_param_desc d = {.name = name, .ndim = ndim, .role = role};
    va_list ap;
    va_start(ap, ndim);
    for (int i = 0; i < ndim; i++)
        d.shape[i] = va_arg(ap, int64_t);
    va_end(ap);
    d.fan_in = 1;
    for (int i = 1; i < ndim; i++)
        d.fan_in *= d.shape[i];
    if (ndim == 1)
        d.fan_in = d.shape[0];
    return e->fn(e->ctx, &d);
}

#define I64(x) ((int64_t)(x))

static vd_status emit_linear(emitter *e, vd_param_role role, const char *name, int64_t out, int64_t in, bool bias)
{
    char n[96];
    snprintf(n, sizeof n, "%s.weight", name);
    VD_TRY(emit(e, role, n, 2, out, in));
    if (bias) {
        snprintf(n, sizeof n, "%s.bias", name);
        VD_TRY(emit(e, VD_ROLE_BIAS, n, 1, out));
    }
    return VD_OK;
}

static vd_status dit_inventory(const vd_dit_config *c, emitter *e)
{
    const int64_t D = c->dim, F = c->ffn_dim;
    e->prefix[0] = '\0';
    VD_TRY(emit(e, VD_ROLE_CONV, "patch_embedding.weight", 5, D, c->in_dim, c->patch[0], c->patch[1], c->patch[2]));
    VD_TRY(emit(e, VD_ROLE_BIAS, "patch_embedding.bias", 1, D));
    VD_TRY(emit_linear(e, VD_ROLE_LINEAR, "text_embedding.0", D, c->text_dim, true));
    VD_TRY(emit_linear(e, VD_ROLE_LINEAR, "text_embedding.2", D, D, true));
    VD_TRY(emit_linear(e, VD_ROLE_LINEAR, "time_embedding.0", D, c->freq_dim, true));
    VD_TRY(emit_linear(e, VD_ROLE_LINEAR, "time_embedding.2", D, D, true));
    VD_TRY(emit_linear(e, VD_ROLE_LINEAR, "time_projection.1", 6 * D, D, true));
    if (c->img_dim > 0) {
        const int64_t C = c->img_dim;
        VD_TRY(emit(e, VD_ROLE_NORM, "img_emb.proj.0.weight", 1, C));
        VD_TRY(emit(e, VD_ROLE_BIAS, "img_emb.proj.0.bias", 1, C));
        VD_TRY(emit_linear(e, VD_ROLE_LINEAR, "img_emb.proj.1", C, C, true));
        VD_TRY(emit_linear(e, VD_ROLE_LINEAR, "img_emb.proj.3", D, C, true));
        VD_TRY(emit(e, VD_ROLE_NORM, "img_emb.proj.4.weight", 1, D));
        VD_TRY(emit(e, VD_ROLE_BIAS, "img_emb.proj.4.bias", 1, D));
        if (c->img_pos > 0)
            VD_TRY(emit(e, VD_ROLE_POSITION, "img_emb.emb_pos", 3, I64(1), c->img_pos, C));
    }
    static const char *const qkvo[] = {"q", "k", "v", "o"};
    for (int64_t i = 0; i < c->layers; i++) {
        snprintf(e->prefix, sizeof e->prefix, "blocks.%lld.", (long long)i);
        VD_TRY(emit(e, VD_ROLE_MODULATION, "modulation", 3, I64(1), I64(6), D));
        for (int j = 0; j < 4; j++) {
            char n[48];
            snprintf(n, sizeof n, "self_attn.%s", qkvo[j]);
            VD_TRY(emit_linear(e, VD_ROLE_BLOCK_LINEAR, n, D, D, true));
        }
        VD_TRY(emit(e, VD_ROLE_NORM, "self_attn.norm_q.weight", 1, D));
        VD_TRY(emit(e, VD_ROLE_NORM, "self_attn.norm_k.weight", 1, D));
        VD_TRY(emit(e, VD_ROLE_NORM, "norm3.weight", 1, D));
        VD_TRY(emit(e, VD_ROLE_BIAS, "norm3.bias", 1, D));
        for (int j = 0; j < 4; j++) {
            char n[48];
            snprintf(n, sizeof n, "cross_attn.%s", qkvo[j]);
            VD_TRY(emit_linear(e, VD_ROLE_BLOCK_LINEAR, n, D, D, true));
        }
        VD_TRY(emit(e, VD_ROLE_NORM, "cross_attn.norm_q.weight", 1, D));
        VD_TRY(emit(e, VD_ROLE_NORM, "cross_attn.norm_k.weight", 1, D));
        if (c->img_dim > 0) {
            VD_TRY(emit_linear(e, VD_ROLE_BLOCK_LINEAR, "cross_attn.k_img", D, D, true));
            VD_TRY(emit_linear(e, VD_ROLE_BLOCK_LINEAR, "cross_attn.v_img", D, D, true));
            VD_TRY(emit(e, VD_ROLE_NORM, "cross_attn.norm_k_img.weight", 1, D));
        }
        VD_TRY(emit_linear(e, VD_ROLE_BLOCK_LINEAR, "ffn.0", F, D, true));
        VD_TRY(emit_linear(e, VD_ROLE_BLOCK_LINEAR, "ffn.2", D, F, true));
    }
    e->prefix[0] = '\0';
    VD_TRY(emit(e, VD_ROLE_MODULATION, "head.modulation", 3, I64(1), I64(2), D));
    VD_TRY(emit_linear(e, VD_ROLE_LINEAR, "head.head", c->out_dim * c->patch[0] * c->patch[1] * c->patch[2], D, true));
    return VD_OK;
}

/* VAE building blocks; `base` is the module path ("decoder.middle.0"). */
static vd_status vae_conv3d(emitter *e, const char *base, int64_t out, int64_t in, int64_t kt, int64_t kh, int64_t kw)
{
    char n[160];
    snprintf(n, sizeof n, "%s.weight", base);
    VD_TRY(emit(e, VD_ROLE_CONV, n, 5, out, in, kt, kh, kw));
    snprintf(n, sizeof n, "%s.bias", base);
    return emit(e, VD_ROLE_BIAS, n, 1, out);
}

static vd_status vae_conv2d(emitter *e, const char *base, int64_t out, int64_t in, int64_t k)
{
    char n[160];
    snprintf(n, sizeof n, "%s.weight", base);
    VD_TRY(emit(e, VD_ROLE_CONV, n, 4, out, in, k, k));
    snprintf(n, sizeof n, "%s.bias", base);
    return emit(e, VD_ROLE_BIAS, n, 1, out);
}

static vd_status vae_gamma(emitter *e, const char *base, int64_t c, int ndim)
{
    char n[160];
    snprintf(n, sizeof n, "%s.gamma", base);
    return ndim == 4 ? emit(e, VD_ROLE_NORM, n, 4, c, I64(1), I64(1), I64(1)) : emit(e, VD_ROLE_NORM, n, 3, c, I64(1), I64(1));
}

static vd_status vae_resblock(emitter *e, const char *base, int64_t in, int64_t out)
{
    char n[160];
    snprintf(n, sizeof n, "%s.residual.0", base);
    VD_TRY(vae_gamma(e, n, in, 4));
    snprintf(n, sizeof n, "%s.residual.2", base);
    VD_TRY(vae_conv3d(e, n, out, in, 3, 3, 3));
    snprintf(n, sizeof n, "%s.residual.3", base);
    VD_TRY(vae_gamma(e, n, out, 4));
    snprintf(n, sizeof n, "%s.residual.6", base);
    VD_TRY(vae_conv3d(e, n, out, out, 3, 3, 3));
    if (in != out) {
        snprintf(n, sizeof n, "%s.shortcut", base);
        VD_TRY(vae_conv3d(e, n, out, in, 1, 1, 1));
    }
    return VD_OK;
}

static vd_status vae_attnblock(emitter *e, const char *base, int64_t c)
{
    char n[160];
    snprintf(n, sizeof n, "%s.norm", base);
    VD_TRY(vae_gamma(e, n, c, 3));
    snprintf(n, sizeof n, "%s.to_qkv", base);
    VD_TRY(vae_conv2d(e, n, 3 * c, c, 1));
    snprintf(n, sizeof n, "%s.proj", base);
    return vae_conv2d(e, n, c, c, 1);
}

typedef enum { RS_UP2D, RS_UP3D, RS_DOWN2D, RS_DOWN3D } resample_mode;

/* Resample: 2.1 upsampling halves the channels, 2.2 keeps them. */
static vd_status vae_resample(emitter *e, const char *base, int64_t c, resample_mode mode, bool halve)
{
    char n[160];
    bool up = mode == RS_UP2D || mode == RS_UP3D;
    snprintf(n, sizeof n, "%s.resample.1", base);
    VD_TRY(vae_conv2d(e, n, up && halve ? c / 2 : c, c, 3));
    if (mode == RS_UP3D || mode == RS_DOWN3D) {
        snprintf(n, sizeof n, "%s.time_conv", base);
        VD_TRY(vae_conv3d(e, n, mode == RS_UP3D ? 2 * c : c, c, 3, 1, 1));
    }
    return VD_OK;
}

static vd_status vae_middle(emitter *e, const char *part, int64_t mid)
{
    char n[160];
    snprintf(n, sizeof n, "%s.middle.0", part);
    VD_TRY(vae_resblock(e, n, mid, mid));
    snprintf(n, sizeof n, "%s.middle.1", part);
    VD_TRY(vae_attnblock(e, n, mid));
    snprintf(n, sizeof n, "%s.middle.2", part);
    return vae_resblock(e, n, mid, mid);
}

static vd_status vae_head(emitter *e, const char *part, int64_t in, int64_t out)
{
    char n[160];
    snprintf(n, sizeof n, "%s.head.0", part);
    VD_TRY(vae_gamma(e, n, in, 4));
    snprintf(n, sizeof n, "%s.head.2", part);
    return vae_conv3d(e, n, out, in, 3, 3, 3);
}

/* The Wan VAEs.  Wan2.1 (wan/modules/vae.py) names its stages' modules
 * flatly (`downsamples.N`), halves the channels in its upsampling convs and
 * works on RGB; Wan2.2 (wan/modules/vae2_2.py) groups them
 * (`downsamples.I.downsamples.J`), keeps the channels and works on 2×2
 * patchified RGB (12 channels). */
static vd_status vae_inventory(const vd_vae_config *c, emitter *e)
{
    const bool v22 = c->version == 22;
    const int64_t rgb = v22 ? 12 : 3;
    const int64_t *mult = c->dim_mult;
    const bool tdown[3] = {false, true, true};
    char n[160];
    e->prefix[0] = '\0';
    if (c->has_encoder) {
        int64_t dims[5] = {c->enc_dim, c->enc_dim * mult[0], c->enc_dim * mult[1], c->enc_dim * mult[2],
                           c->enc_dim * mult[3]};
        VD_TRY(vae_conv3d(e, "encoder.conv1", dims[0], rgb, 3, 3, 3));
        int flat = 0;
        for (int i = 0; i < 4; i++) {
            int64_t in = dims[i];
            for (int j = 0; j < c->num_res_blocks + (i != 3); j++, flat++) {
                if (v22)
                    snprintf(n, sizeof n, "encoder.downsamples.%d.downsamples.%d", i, j);
                else
                    snprintf(n, sizeof n, "encoder.downsamples.%d", flat);
                if (j < c->num_res_blocks) {
                    VD_TRY(vae_resblock(e, n, in, dims[i + 1]));
                    in = dims[i + 1];
                } else {
                    VD_TRY(vae_resample(e, n, dims[i + 1], tdown[i] ? RS_DOWN3D : RS_DOWN2D, !v22));
                }
            }
        }
        VD_TRY(vae_middle(e, "encoder", dims[4]));
        VD_TRY(vae_head(e, "encoder", dims[4], 2 * c->z_dim));
        VD_TRY(vae_conv3d(e, "conv1", 2 * c->z_dim, 2 * c->z_dim, 1, 1, 1));
    }
    if (c->has_decoder) {
        int64_t d = c->dec_dim;
        int64_t dims[5] = {d * mult[3], d * mult[3], d * mult[2], d * mult[1], d * mult[0]};
        VD_TRY(vae_conv3d(e, "conv2", c->z_dim, c->z_dim, 1, 1, 1));
        VD_TRY(vae_conv3d(e, "decoder.conv1", dims[0], c->z_dim, 3, 3, 3));
        VD_TRY(vae_middle(e, "decoder", dims[0]));
        int flat = 0;
        for (int i = 0; i < 4; i++) {
            /* after a 2.1 upsampling the channels are halved */
            int64_t in = (!v22 && i >= 1) ? dims[i] / 2 : dims[i];
            for (int j = 0; j < c->num_res_blocks + 1 + (i != 3); j++, flat++) {
                if (v22)
                    snprintf(n, sizeof n, "decoder.upsamples.%d.upsamples.%d", i, j);
                else
                    snprintf(n, sizeof n, "decoder.upsamples.%d", flat);
                if (j < c->num_res_blocks + 1) {
                    VD_TRY(vae_resblock(e, n, in, dims[i + 1]));
                    in = dims[i + 1];
                } else {
                    /* temporal upsampling flags are the encoder's, reversed */
                    VD_TRY(vae_resample(e, n, dims[i + 1], tdown[2 - i] ? RS_UP3D : RS_UP2D, !v22));
                }
            }
        }
        VD_TRY(vae_head(e, "decoder", dims[4], rgb));
    }
    return VD_OK;
}

static vd_status t5_inventory(const vd_t5_config *c, emitter *e)
{
    const int64_t d = c->d_model, inner = c->heads * c->d_kv;
    e->prefix[0] = '\0';
    VD_TRY(emit(e, VD_ROLE_EMBEDDING, "shared.weight", 2, c->vocab, d));
    for (int64_t i = 0; i < c->layers; i++) {
        snprintf(e->prefix, sizeof e->prefix, "encoder.block.%lld.layer.", (long long)i);
        VD_TRY(emit(e, VD_ROLE_NORM, "0.layer_norm.weight", 1, d));
        VD_TRY(emit_linear(e, VD_ROLE_BLOCK_LINEAR, "0.SelfAttention.q", inner, d, false));
        VD_TRY(emit_linear(e, VD_ROLE_BLOCK_LINEAR, "0.SelfAttention.k", inner, d, false));
        VD_TRY(emit_linear(e, VD_ROLE_BLOCK_LINEAR, "0.SelfAttention.v", inner, d, false));
        VD_TRY(emit_linear(e, VD_ROLE_BLOCK_LINEAR, "0.SelfAttention.o", d, inner, false));
        VD_TRY(emit(e, VD_ROLE_REL_BIAS, "0.SelfAttention.relative_attention_bias.weight", 2, c->buckets, c->heads));
        VD_TRY(emit(e, VD_ROLE_NORM, "1.layer_norm.weight", 1, d));
        VD_TRY(emit_linear(e, VD_ROLE_BLOCK_LINEAR, "1.DenseReluDense.wi_0", c->d_ff, d, false));
        VD_TRY(emit_linear(e, VD_ROLE_BLOCK_LINEAR, "1.DenseReluDense.wi_1", c->d_ff, d, false));
        VD_TRY(emit_linear(e, VD_ROLE_BLOCK_LINEAR, "1.DenseReluDense.wo", d, c->d_ff, false));
    }
    e->prefix[0] = '\0';
    return emit(e, VD_ROLE_NORM, "encoder.final_layer_norm.weight", 1, d);
}

vd_status vd_arch_inventory(const vd_arch_info *info, vd_param_fn fn, void *ctx)
{
    emitter e = {.fn = fn, .ctx = ctx};
    switch (info->arch) {
    case VD_ARCH_WAN_DIT: return dit_inventory(&info->dit, &e);
    case VD_ARCH_WAN_VAE: return vae_inventory(&info->vae, &e);
    case VD_ARCH_UMT5: return t5_inventory(&info->t5, &e);
    default: return vd_error(VD_ERR_INVALID_ARGUMENT, "no tensor inventory for an unknown architecture");
    }
}

/* ---- naming and counting ------------------------------------------------ */

static const char *dit_variant_id(vd_dit_variant v)
{
    switch (v) {
    case VD_DIT_T2V: return "wan21-t2v";
    case VD_DIT_I2V21: return "wan21-i2v";
    case VD_DIT_FLF2V21: return "wan21-flf2v";
    case VD_DIT_I2V22: return "wan22-i2v";
    case VD_DIT_TI2V22: return "wan22-ti2v";
    }
    return "wan-dit";
}

static const char *dit_variant_name(vd_dit_variant v)
{
    switch (v) {
    case VD_DIT_T2V: return "Wan2.1/2.2 T2V DiT";
    case VD_DIT_I2V21: return "Wan2.1 I2V DiT";
    case VD_DIT_FLF2V21: return "Wan2.1 FLF2V DiT";
    case VD_DIT_I2V22: return "Wan2.2 I2V DiT";
    case VD_DIT_TI2V22: return "Wan2.2 TI2V DiT";
    }
    return "Wan DiT";
}

typedef struct counter {
    int64_t params, tensors;
} counter;

static vd_status count_param(void *ctx, const vd_param_desc *p)
{
    counter *c = ctx;
    int64_t n = 1;
    for (int i = 0; i < p->ndim; i++)
        n *= p->shape[i];
    c->params += n;
    c->tensors++;
    return VD_OK;
}

static bool positive(int64_t v) { return v > 0 && v < (INT64_C(1) << 31); }

vd_status vd_arch_finalize(vd_arch_info *info)
{
    switch (info->arch) {
    case VD_ARCH_WAN_DIT: {
        vd_dit_config *c = &info->dit;
        if (!positive(c->dim) || !positive(c->ffn_dim) || !positive(c->layers) || !positive(c->in_dim) ||
            !positive(c->out_dim) || !positive(c->freq_dim) || !positive(c->text_dim))
            return vd_error(VD_ERR_INVALID_ARGUMENT,
                            "DiT configuration has a non-positive or absurd size (dim %lld, ffn %lld, layers %lld, "
                            "in %lld, out %lld, freq %lld, text %lld)",
                            (long long)c->dim, (long long)c->ffn_dim, (long long)c->layers, (long long)c->in_dim,
                            (long long)c->out_dim, (long long)c->freq_dim, (long long)c->text_dim);
        if (c->head_dim == 0)
            c->head_dim = 128;
        if (c->dim % c->head_dim != 0)
            return vd_error(VD_ERR_INVALID_ARGUMENT,
                            "DiT dim %lld is not a multiple of the head dimension %lld (Wan uses heads of 128)",
                            (long long)c->dim, (long long)c->head_dim);
        if (c->freq_dim % 2 != 0)
            return vd_error(VD_ERR_INVALID_ARGUMENT, "DiT frequency dim %lld is odd", (long long)c->freq_dim);
        c->heads = c->dim / c->head_dim;
        for (int i = 0; i < 3; i++)
            if (!positive(c->patch[i]) || c->patch[i] > 16)
                return vd_error(VD_ERR_INVALID_ARGUMENT, "DiT patch size %lld is out of range", (long long)c->patch[i]);
        if (c->eps == 0)
            c->eps = 1e-6f;
        snprintf(info->id, sizeof info->id, "%s", dit_variant_id(c->variant));
        snprintf(info->name, sizeof info->name, "%s", dit_variant_name(c->variant));
        break;
    }
    case VD_ARCH_WAN_VAE: {
        vd_vae_config *c = &info->vae;
        if ((c->version != 21 && c->version != 22) || !positive(c->z_dim) || c->num_res_blocks < 1 ||
            c->num_res_blocks > 8 || (!c->has_encoder && !c->has_decoder) ||
            (c->has_encoder && !positive(c->enc_dim)) || (c->has_decoder && !positive(c->dec_dim)))
            return vd_error(VD_ERR_INVALID_ARGUMENT, "VAE configuration is invalid (version %d, z %lld, widths %lld/%lld)",
                            c->version, (long long)c->z_dim, (long long)c->enc_dim, (long long)c->dec_dim);
        for (int i = 0; i < 4; i++)
            if (!positive(c->dim_mult[i]))
                return vd_error(VD_ERR_INVALID_ARGUMENT, "VAE width multiplier %d is not positive", i);
        if (c->version == 21 && c->has_decoder && (c->dec_dim * c->dim_mult[0]) % 2 != 0)
            return vd_error(VD_ERR_INVALID_ARGUMENT, "Wan2.1 VAE decoder width %lld must be even", (long long)c->dec_dim);
        snprintf(info->id, sizeof info->id, "%s", c->version == 22 ? "wan22-vae" : "wan-vae");
        snprintf(info->name, sizeof info->name, "%s", c->version == 22 ? "Wan2.2 VAE" : "Wan2.1 VAE");
        break;
    }
    case VD_ARCH_UMT5: {
        vd_t5_config *c = &info->t5;
        if (!positive(c->vocab) || !positive(c->d_model) || !positive(c->heads) || !positive(c->d_kv) ||
            !positive(c->d_ff) || !positive(c->layers) || !positive(c->buckets) || c->buckets < 2)
            return vd_error(VD_ERR_INVALID_ARGUMENT,
                            "umT5 configuration has a non-positive size (vocab %lld, d_model %lld, heads %lld, "
                            "d_kv %lld, d_ff %lld, layers %lld, buckets %lld)",
                            (long long)c->vocab, (long long)c->d_model, (long long)c->heads, (long long)c->d_kv,
                            (long long)c->d_ff, (long long)c->layers, (long long)c->buckets);
        snprintf(info->id, sizeof info->id, "umt5");
        snprintf(info->name, sizeof info->name, "umT5 encoder");
        break;
    }
    default: return vd_error(VD_ERR_INVALID_ARGUMENT, "unknown architecture");
    }
    counter cnt = {0, 0};
    VD_TRY(vd_arch_inventory(info, count_param, &cnt));
    info->params = cnt.params;
    info->tensors = cnt.tensors;
    return VD_OK;
}

/* ---- presets --------------------------------------------------------------- */

static void dit_preset(vd_dit_config *c, vd_dit_variant v, int64_t dim, int64_t ffn, int64_t layers, int64_t text_dim)
{
    memset(c, 0, sizeof *c);
    c->variant = v;
    c->dim = dim;
    c->ffn_dim = ffn;
    c->layers = layers;
    c->head_dim = 128;
    c->freq_dim = 256;
    c->text_dim = text_dim;
    c->patch[0] = 1, c->patch[1] = 2, c->patch[2] = 2;
    c->eps = 1e-6f;
    c->in_dim = v == VD_DIT_TI2V22 ? 48 : (v == VD_DIT_T2V ? 16 : 36);
    c->out_dim = v == VD_DIT_TI2V22 ? 48 : 16;
    if (v == VD_DIT_I2V21 || v == VD_DIT_FLF2V21)
        c->img_dim = 1280;
    if (v == VD_DIT_FLF2V21)
        c->img_pos = 514;
}

const char *vd_arch_ids(void) { return "wan21-t2v|wan21-i2v|wan21-flf2v|wan22-i2v|wan22-ti2v|wan-vae|wan22-vae|umt5"; }

vd_status vd_arch_from_preset(const char *arch_id, const char *preset, vd_arch_info *out)
{
    memset(out, 0, sizeof *out);
    bool tiny = preset && strcmp(preset, "tiny") == 0;
    static const struct {
        const char *id;
        vd_dit_variant variant;
    } dits[] = {{"wan21-t2v", VD_DIT_T2V},      {"wan22-t2v", VD_DIT_T2V},  {"wan21-i2v", VD_DIT_I2V21},
                {"wan21-flf2v", VD_DIT_FLF2V21}, {"wan22-i2v", VD_DIT_I2V22}, {"wan22-ti2v", VD_DIT_TI2V22}};
    for (size_t i = 0; i < sizeof dits / sizeof dits[0]; i++) {
        if (strcmp(arch_id, dits[i].id) != 0)
            continue;
        vd_dit_variant v = dits[i].variant;
        out->arch = VD_ARCH_WAN_DIT;
        const char *p = preset ? preset : (v == VD_DIT_TI2V22 ? "5b" : (v == VD_DIT_T2V ? "1.3b" : "14b"));
        if (tiny) {
            /* Two heads of 128, a text width matching the tiny umT5. */
            dit_preset(&out->dit, v, 256, 512, 2, 64);
            if (out->dit.img_dim)
                out->dit.img_dim = 64;
            if (out->dit.img_pos)
                out->dit.img_pos = 6;
        } else if (strcmp(p, "1.3b") == 0 && v == VD_DIT_T2V) {
            dit_preset(&out->dit, v, 1536, 8960, 30, 4096);
        } else if (strcmp(p, "14b") == 0 && v != VD_DIT_TI2V22) {
            dit_preset(&out->dit, v, 5120, 13824, 40, 4096);
        } else if (strcmp(p, "5b") == 0 && v == VD_DIT_TI2V22) {
            dit_preset(&out->dit, v, 3072, 14336, 30, 4096);
        } else {
            return vd_error(VD_ERR_INVALID_ARGUMENT, "architecture %s has no preset '%s' (it has: tiny, %s)", arch_id, p,
                            v == VD_DIT_TI2V22 ? "5b" : (v == VD_DIT_T2V ? "1.3b, 14b" : "14b"));
        }
        return vd_arch_finalize(out);
    }
    if (strcmp(arch_id, "wan-vae") == 0 || strcmp(arch_id, "wan21-vae") == 0 || strcmp(arch_id, "wan22-vae") == 0) {
        bool v22 = strcmp(arch_id, "wan22-vae") == 0;
        out->arch = VD_ARCH_WAN_VAE;
        vd_vae_config *c = &out->vae;
        c->version = v22 ? 22 : 21;
        c->z_dim = v22 ? 48 : 16;
        c->enc_dim = tiny ? (v22 ? 16 : 8) : (v22 ? 160 : 96);
        c->dec_dim = tiny ? (v22 ? 16 : 8) : (v22 ? 256 : 96);
        c->dim_mult[0] = 1, c->dim_mult[1] = 2, c->dim_mult[2] = 4, c->dim_mult[3] = 4;
        c->num_res_blocks = 2;
        c->has_encoder = c->has_decoder = true;
        if (preset && !tiny && strcmp(preset, "default") != 0)
            return vd_error(VD_ERR_INVALID_ARGUMENT, "architecture %s has no preset '%s' (it has: tiny, default)",
                            arch_id, preset);
        return vd_arch_finalize(out);
    }
    if (strcmp(arch_id, "umt5") == 0) {
        out->arch = VD_ARCH_UMT5;
        vd_t5_config *c = &out->t5;
        if (tiny) {
            c->vocab = 4096, c->d_model = 64, c->heads = 4, c->d_kv = 16, c->d_ff = 128, c->layers = 2;
        } else if (!preset || strcmp(preset, "xxl") == 0) {
            c->vocab = 256384, c->d_model = 4096, c->heads = 64, c->d_kv = 64, c->d_ff = 10240, c->layers = 24;
        } else {
            return vd_error(VD_ERR_INVALID_ARGUMENT, "architecture umt5 has no preset '%s' (it has: tiny, xxl)", preset);
        }
        c->buckets = 32;
        return vd_arch_finalize(out);
    }
    return vd_error(VD_ERR_INVALID_ARGUMENT, "unknown architecture '%s' (known: %s)", arch_id, vd_arch_ids());
}

/* ---- detection -------------------------------------------------------------- */

static const vd_tensor *find(const vd_weights *w, const char *name)
{
    const vd_weight *x = vd_weights_find(w, name);
    return x ? &x->tensor : NULL;
}

/* The shape of a tensor the detector relies on, checked for rank. */
static vd_status need(const vd_weights *w, const char *what, const char *name, int ndim, const vd_tensor **out)
{
    const vd_tensor *t = find(w, name);
    if (!t)
        return vd_error(VD_ERR_FORMAT, "%s: tensor '%s' is missing", what, name);
    if (t->ndim != ndim) {
        char s[96];
        return vd_error(VD_ERR_FORMAT, "%s: tensor '%s' has shape %s, expected %d dimensions", what, name,
                        vd_shape_str(t, s, sizeof s), ndim);
    }
    *out = t;
    return VD_OK;
}

/* Count `fmt` % i names present from i = 0 upward. */
static int64_t count_indexed(const vd_weights *w, const char *fmt)
{
    int64_t n = 0;
    char name[160];
    for (;; n++) {
        snprintf(name, sizeof name, fmt, (long long)n);
        if (!find(w, name))
            return n;
    }
}

typedef struct verifier {
    const vd_weights *w;
    const char *what;
    int64_t matched;
} verifier;

static vd_status verify_param(void *ctx, const vd_param_desc *p)
{
    verifier *v = ctx;
    const vd_tensor *t = find(v->w, p->name);
    vd_tensor want;
    memset(&want, 0, sizeof want);
    want.ndim = p->ndim;
    memcpy(want.shape, p->shape, sizeof want.shape);
    char a[96], b[96];
    if (!t)
        return vd_error(VD_ERR_FORMAT, "%s: tensor '%s' %s is missing; the file is incomplete or not this model",
                        v->what, p->name, vd_shape_str(&want, a, sizeof a));
    if (!vd_tensor_same_shape(t, &want)) {
        /* Some exporters store [D] parameters as [1, D] or vice versa: accept
         * any shape with the same element count only for 1-element-padded
         * variants of 1-D/3-D tensors. */
        int64_t n_t = vd_tensor_nelem(t), n_w = vd_tensor_nelem(&want);
        bool squeezable = n_t == n_w && (p->role == VD_ROLE_NORM || p->role == VD_ROLE_BIAS ||
                                         p->role == VD_ROLE_MODULATION);
        if (!squeezable)
            return vd_error(VD_ERR_FORMAT, "%s: tensor '%s' has shape %s, expected %s", v->what, p->name,
                            vd_shape_str(t, a, sizeof a), vd_shape_str(&want, b, sizeof b));
    }
    v->matched++;
    return VD_OK;
}

static vd_status verify_all(const vd_weights *w, vd_arch_info *info, const char *what)
{
    VD_TRY(vd_arch_finalize(info));
    verifier v = {w, what, 0};
    VD_TRY(vd_arch_inventory(info, verify_param, &v));
    info->extra = (int64_t)vd_weights_count(w) - v.matched;
    if (info->arch == VD_ARCH_UMT5 && info->t5.has_tokenizer)
        info->extra--;
    if (info->extra < 0)
        info->extra = 0;
    return VD_OK;
}

static vd_status detect_dit(const vd_weights *w, vd_arch_info *info)
{
    const char *what = "Wan DiT";
    const vd_tensor *pe, *ffn, *te, *tm, *hh;
    VD_TRY(need(w, what, "patch_embedding.weight", 5, &pe));
    VD_TRY(need(w, what, "blocks.0.ffn.0.weight", 2, &ffn));
    VD_TRY(need(w, what, "text_embedding.0.weight", 2, &te));
    VD_TRY(need(w, what, "time_embedding.0.weight", 2, &tm));
    VD_TRY(need(w, what, "head.head.weight", 2, &hh));
    info->arch = VD_ARCH_WAN_DIT;
    vd_dit_config *c = &info->dit;
    memset(c, 0, sizeof *c);
    c->dim = pe->shape[0];
    c->in_dim = pe->shape[1];
    c->patch[0] = pe->shape[2], c->patch[1] = pe->shape[3], c->patch[2] = pe->shape[4];
    c->ffn_dim = ffn->shape[0];
    c->text_dim = te->shape[1];
    c->freq_dim = tm->shape[1];
    c->head_dim = 128;
    c->layers = count_indexed(w, "blocks.%lld.ffn.0.weight");
    int64_t pvol = c->patch[0] * c->patch[1] * c->patch[2];
    if (pvol <= 0 || hh->shape[0] % pvol != 0)
        return vd_error(VD_ERR_FORMAT, "%s: head.head.weight has %lld rows, not a multiple of the patch volume %lld",
                        what, (long long)hh->shape[0], (long long)pvol);
    c->out_dim = hh->shape[0] / pvol;
    const vd_tensor *img = find(w, "img_emb.proj.1.weight");
    if (img && img->ndim == 2)
        c->img_dim = img->shape[1];
    const vd_tensor *pos = find(w, "img_emb.emb_pos");
    if (pos && pos->ndim == 3)
        c->img_pos = pos->shape[1];
    if (c->in_dim == 48 && c->out_dim == 48)
        c->variant = VD_DIT_TI2V22;
    else if (c->in_dim == 36 && c->out_dim == 16)
        c->variant = c->img_dim ? (c->img_pos ? VD_DIT_FLF2V21 : VD_DIT_I2V21) : VD_DIT_I2V22;
    else if (c->in_dim == 16 && c->out_dim == 16)
        c->variant = VD_DIT_T2V;
    else
        return vd_error(VD_ERR_UNSUPPORTED,
                        "%s with %lld input and %lld output channels: not a known Wan variant (t2v 16→16, i2v 36→16, "
                        "ti2v 48→48)",
                        what, (long long)c->in_dim, (long long)c->out_dim);
    return verify_all(w, info, what);
}

static vd_status detect_vae(const vd_weights *w, vd_arch_info *info)
{
    info->arch = VD_ARCH_WAN_VAE;
    vd_vae_config *c = &info->vae;
    memset(c, 0, sizeof *c);
    bool v22 = find(w, "decoder.upsamples.0.upsamples.0.residual.2.weight") ||
               find(w, "encoder.downsamples.0.downsamples.0.residual.2.weight");
    const char *what = v22 ? "Wan2.2 VAE" : "Wan2.1 VAE";
    c->version = v22 ? 22 : 21;
    c->dim_mult[0] = 1, c->dim_mult[1] = 2, c->dim_mult[2] = 4, c->dim_mult[3] = 4;
    c->num_res_blocks = 2;
    c->has_encoder = find(w, "encoder.conv1.weight") != NULL;
    c->has_decoder = find(w, "decoder.conv1.weight") != NULL;
    const vd_tensor *t;
    if (c->has_decoder) {
        VD_TRY(need(w, what, "conv2.weight", 5, &t));
        c->z_dim = t->shape[0];
        VD_TRY(need(w, what, "decoder.head.0.gamma", 4, &t));
        c->dec_dim = t->shape[0];
    }
    if (c->has_encoder) {
        VD_TRY(need(w, what, "encoder.conv1.weight", 5, &t));
        c->enc_dim = t->shape[0];
        VD_TRY(need(w, what, "conv1.weight", 5, &t));
        if (t->shape[0] % 2 != 0)
            return vd_error(VD_ERR_FORMAT, "%s: conv1.weight has an odd channel count", what);
        if (!c->has_decoder)
            c->z_dim = t->shape[0] / 2;
    }
    if (!c->has_encoder && !c->has_decoder)
        return vd_error(VD_ERR_FORMAT, "%s: neither encoder.conv1.weight nor decoder.conv1.weight is present", what);
    return verify_all(w, info, what);
}

static vd_status detect_t5(const vd_weights *w, vd_arch_info *info)
{
    const char *what = "umT5 encoder";
    const vd_tensor *emb, *q, *rel, *wi;
    VD_TRY(need(w, what, "shared.weight", 2, &emb));
    VD_TRY(need(w, what, "encoder.block.0.layer.0.SelfAttention.q.weight", 2, &q));
    VD_TRY(need(w, what, "encoder.block.0.layer.0.SelfAttention.relative_attention_bias.weight", 2, &rel));
    VD_TRY(need(w, what, "encoder.block.0.layer.1.DenseReluDense.wi_0.weight", 2, &wi));
    info->arch = VD_ARCH_UMT5;
    vd_t5_config *c = &info->t5;
    memset(c, 0, sizeof *c);
    c->vocab = emb->shape[0];
    c->d_model = emb->shape[1];
    c->buckets = rel->shape[0];
    c->heads = rel->shape[1];
    if (c->heads <= 0 || q->shape[0] % c->heads != 0)
        return vd_error(VD_ERR_FORMAT, "%s: attention width %lld is not a multiple of the %lld heads of the position bias",
                        what, (long long)q->shape[0], (long long)c->heads);
    c->d_kv = q->shape[0] / c->heads;
    c->d_ff = wi->shape[0];
    c->layers = count_indexed(w, "encoder.block.%lld.layer.0.SelfAttention.q.weight");
    c->has_tokenizer = find(w, "spiece_model") != NULL;
    return verify_all(w, info, what);
}

/* A short description of a file's first tensor names for "unknown" errors. */
static void describe_names(const vd_weights *w, char *buf, size_t size)
{
    size_t used = 0, n = vd_weights_count(w);
    buf[0] = '\0';
    for (size_t i = 0; i < n && i < 4 && used < size; i++)
        used += (size_t)snprintf(buf + used, size - used, "%s'%s'", i ? ", " : "", vd_weights_at(w, i)->name);
    if (n > 4 && used < size)
        snprintf(buf + used, size - used, ", ...");
}

vd_status vd_arch_detect(const vd_weights *w, vd_arch_info *out)
{
    memset(out, 0, sizeof *out);
    vd_status s;
    if (find(w, "patch_embedding.weight") && find(w, "blocks.0.self_attn.q.weight"))
        s = detect_dit(w, out);
    else if (find(w, "decoder.middle.0.residual.0.gamma") || find(w, "encoder.middle.0.residual.0.gamma"))
        s = detect_vae(w, out);
    else if (find(w, "shared.weight") && find(w, "encoder.block.0.layer.0.SelfAttention.q.weight"))
        s = detect_t5(w, out);
    else {
        char names[400];
        describe_names(w, names, sizeof names);
        return vd_error(VD_ERR_UNSUPPORTED,
                        "not a model vdiff knows: %zu tensors (%s); expected a Wan DiT (patch_embedding.weight), a Wan "
                        "VAE (decoder.middle.0.residual.0.gamma) or a umT5 encoder (shared.weight)",
                        vd_weights_count(w), names[0] ? names : "no tensors");
    }
    if (s != VD_OK)
        out->arch = VD_ARCH_UNKNOWN;
    return s;
}

#include "models/storage_policy.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "core/error.h"

const char *vd_storage_policy_names(void)
{
    return "f32|f16|bf16|fp8|fp8-scaled|q8_0|q5_0|q5_1|q4_0|q4_1|q2_k|q3_k|q4_k|q4_k_m|q5_k|q5_k_m|q6_k";
}

vd_status vd_storage_policy_parse(const char *name, vd_file_format format, vd_storage_policy *out)
{
    memset(out, 0, sizeof *out);
    snprintf(out->name, sizeof out->name, "%s", name);
    out->format = format;
    char base[16];
    snprintf(base, sizeof base, "%s", name);
    size_t n = strlen(base);
    if (n > 2 && strcasecmp(base + n - 2, "_m") == 0) {
        base[n - 2] = '\0';
        out->upgrade_m = true;
    }
    if (strcasecmp(base, "fp8-scaled") == 0 || strcasecmp(base, "fp8_scaled") == 0) {
        out->dtype = VD_F8_E4M3;
        out->fp8_scaled = true;
    } else if (!vd_dtype_parse(base, &out->dtype)) {
        return vd_error(VD_ERR_INVALID_ARGUMENT, "unknown storage type '%s' (known: %s)", name, vd_storage_policy_names());
    }
    const vd_dtype_traits *t = vd_dtype_info(out->dtype);
    if (out->upgrade_m && out->dtype != VD_Q4_K && out->dtype != VD_Q5_K && out->dtype != VD_Q3_K)
        return vd_error(VD_ERR_INVALID_ARGUMENT, "'%s': the _m variants exist for q3_k, q4_k and q5_k only", name);
    if (!t->is_float && !t->is_quantized)
        return vd_error(VD_ERR_INVALID_ARGUMENT, "'%s' is an integer type, not a weight storage type", name);
    if (out->dtype == VD_F64)
        return vd_error(VD_ERR_INVALID_ARGUMENT, "f64 is not a weight storage type; use f32");
    if (format == VD_FORMAT_GGUF && (out->dtype == VD_F8_E4M3 || out->dtype == VD_F8_E5M2))
        return vd_error(VD_ERR_INVALID_ARGUMENT,
                        "GGUF has no fp8 type; write fp8 to a .safetensors file, or pick a GGUF type such as q8_0");
    if (format == VD_FORMAT_SAFETENSORS && t->is_quantized)
        return vd_error(VD_ERR_INVALID_ARGUMENT,
                        "%s is a GGUF block type; write it to a .gguf file (safetensors holds f32/f16/bf16/fp8)", name);
    return VD_OK;
}

static bool ends_with(const char *s, const char *suffix)
{
    size_t a = strlen(s), b = strlen(suffix);
    return a >= b && strcmp(s + a - b, suffix) == 0;
}

/* llama.cpp's fallback for rows that do not fit a k-quant super-block. */
static vd_dtype fit_rows(vd_dtype d, int64_t row)
{
    const vd_dtype_traits *t = vd_dtype_info(d);
    if (row % t->block_elems == 0)
        return d;
    vd_dtype f;
    switch (d) {
    case VD_Q2_K:
    case VD_Q3_K: f = VD_Q4_0; break;
    case VD_Q4_K: f = VD_Q5_0; break;
    case VD_Q5_K: f = VD_Q5_1; break;
    case VD_Q6_K: f = VD_Q8_0; break;
    default: f = VD_F16; break;
    }
    return fit_rows(f, row);
}

vd_status vd_storage_policy_dtype(const vd_storage_policy *p, const vd_arch_info *arch, const vd_param_desc *param,
                                  vd_dtype *out)
{
    const vd_dtype_traits *t = vd_dtype_info(p->dtype);
    int64_t nelem = 1;
    for (int i = 0; i < param->ndim; i++)
        nelem *= param->shape[i];
    bool small = param->ndim <= 1 || nelem <= 1024;
    bool narrow = p->dtype == VD_F8_E4M3 || p->dtype == VD_F8_E5M2 || t->is_quantized;
    if (narrow && arch->arch == VD_ARCH_WAN_VAE)
        return vd_error(VD_ERR_UNSUPPORTED, "VAE checkpoints are not quantised (%s); write the VAE as f32, f16 or bf16",
                        p->name);

    if (p->format == VD_FORMAT_GGUF && (small || param->role == VD_ROLE_MODULATION || param->ndim == 5)) {
        *out = VD_F32;
        return VD_OK;
    }
    if (!narrow) {
        *out = p->dtype;
        return VD_OK;
    }
    bool quantise = param->role == VD_ROLE_BLOCK_LINEAR ||
                    (t->is_quantized && param->role == VD_ROLE_EMBEDDING);
    if (p->dtype == VD_F8_E4M3 || p->dtype == VD_F8_E5M2) {
        *out = quantise ? p->dtype : (param->role == VD_ROLE_MODULATION ? VD_F32 : VD_BF16);
        return VD_OK;
    }
    if (!quantise) {
        *out = VD_F16;
        return VD_OK;
    }
    vd_dtype d = p->dtype;
    if (p->upgrade_m && (ends_with(param->name, ".v.weight") || ends_with(param->name, "ffn.2.weight") ||
                         ends_with(param->name, "DenseReluDense.wo.weight")))
        d = VD_Q6_K;
    *out = fit_rows(d, param->shape[param->ndim - 1]);
    return VD_OK;
}

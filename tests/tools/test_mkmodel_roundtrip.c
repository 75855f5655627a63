/* mkmodel → read back → dequantised values, for every storage type.
 * For each tensor the test regenerates the random values mkmodel drew and
 * checks that what the reader returns is bit for bit what the storage
 * policy's encoder made of them: exact for f32/f16/bf16/fp8 (fp8 "scaled":
 * value/scale encoded, scale read back), and for GGUF block types equal to
 * the reference quantizer (engine/core/quant.c) with the relative L2 error
 * against the original values within the bound of that format. */
#include <unistd.h>

#include "io/weights.h"
#include "models/storage_policy.h"
#include "test_util.h"
#include "tools/model_export.h"
#include "tools/random_weights.h"

typedef struct check_ctx {
    const vd_weights *w;
    const vd_arch_info *arch;
    const vd_storage_policy *policy;
    vd_random_weights rnd;
    int64_t index;
    double worst;   /* largest relative L2 against the original values */
} check_ctx;

/* Bounds on relative L2 of decode(encode(x)) against x, for uniform data
 * (tests/core/test_quant.c measures them on normal data). */
static double bound_for(vd_dtype d)
{
    switch (d) {
    case VD_F32: return 0;
    case VD_F16: return 1e-3;
    case VD_BF16: return 8e-3;
    case VD_F8_E4M3: return 0.08;
    case VD_F8_E5M2: return 0.15;
    case VD_Q8_0: return 0.01;
    case VD_Q6_K: return 0.03;
    case VD_Q5_0: case VD_Q5_1: case VD_Q5_K: return 0.06;
    case VD_Q4_0: case VD_Q4_1: case VD_Q4_K: return 0.12;
    case VD_Q3_K: return 0.25;
    case VD_Q2_K: return 0.45;
    default: return 1;
    }
}

static vd_status check_param(void *vctx, const vd_param_desc *p)
{
    check_ctx *c = vctx;
    int64_t index = c->index++;
    const vd_weight *x = vd_weights_find(c->w, p->name);
    CHECKF(x != NULL, "%s missing after the round trip", p->name);
    if (!x)
        return VD_OK;
    vd_dtype want;
    CHECK_OK(vd_storage_policy_dtype(c->policy, c->arch, p, &want));
    CHECKF(x->tensor.dtype == want, "%s stored as %s, policy says %s", p->name, vd_dtype_name(x->tensor.dtype),
           vd_dtype_name(want));
    int64_t n = vd_tensor_nelem(&x->tensor);
    float *orig = malloc((size_t)n * sizeof *orig), *expect = malloc((size_t)n * sizeof *expect);
    float *got = malloc((size_t)n * sizeof *got);
    size_t nbytes;
    CHECK_OK(vd_dtype_nbytes(want, n, &nbytes));
    void *enc = malloc(nbytes ? nbytes : 1);
    CHECK_OK(vd_random_weight_values(&c->rnd, p, index, orig, NULL));
    /* what the policy's encoder makes of the values */
    float scale = 1.0f;
    bool scaled = c->policy->fp8_scaled && (want == VD_F8_E4M3 || want == VD_F8_E5M2);
    float *src = orig;
    float *tmp = NULL;
    if (scaled) {
        float amax = 0;
        for (int64_t i = 0; i < n; i++)
            amax = fmaxf(amax, fabsf(orig[i]));
        scale = amax > 0 ? amax / (want == VD_F8_E5M2 ? 57344.0f : 448.0f) : 1.0f;
        tmp = malloc((size_t)n * sizeof *tmp);
        for (int64_t i = 0; i < n; i++)
            tmp[i] = orig[i] / scale;
        src = tmp;
    }
    CHECK_OK(vd_dtype_from_f32(want, src, enc, n));
    CHECK_OK(vd_dtype_to_f32(want, enc, expect, n));
    CHECK_OK(vd_dtype_to_f32(x->tensor.dtype, x->tensor.data, got, n));
    CHECKF(x->tensor.scale == scale, "%s: scale %g read back as %g", p->name, (double)scale, (double)x->tensor.scale);
    CHECKF(memcmp(expect, got, (size_t)n * sizeof *got) == 0, "%s (%s): stored values differ from the encoder's",
           p->name, vd_dtype_name(want));
    for (int64_t i = 0; i < n; i++)
        got[i] *= x->tensor.scale;
    double err = rel_l2(got, orig, n);
    if (err > c->worst)
        c->worst = err;
    CHECKF(err <= bound_for(want), "%s (%s): relative L2 %.3e against the original values, bound %.1e", p->name,
           vd_dtype_name(want), err, bound_for(want));
    free(orig), free(expect), free(got), free(enc), free(tmp);
    return VD_OK;
}

static void roundtrip(const char *arch_id, const char *dtype, const char *ext, vd_fp8_layout layout)
{
    char path[256];
    snprintf(path, sizeof path, "/tmp/vd_roundtrip_%d.%s", (int)getpid(), ext);
    vd_arch_info arch;
    CHECK_OK(vd_arch_from_preset(arch_id, "tiny", &arch));
    vd_storage_policy policy;
    CHECK_OK(vd_storage_policy_parse(dtype, strcmp(ext, "gguf") == 0 ? VD_FORMAT_GGUF : VD_FORMAT_SAFETENSORS,
                                     &policy));
    policy.fp8_layout = layout;
    vd_random_weights rnd = {1234};
    vd_export_request req = {.path = path, .arch = &arch, .policy = &policy, .values = vd_random_weight_values,
                             .ctx = &rnd};
    CHECK_OK(vd_export_model(&req));
    vd_weights *w = NULL;
    CHECK_OK(vd_weights_open(path, &w));
    if (w) {
        vd_arch_info got;
        CHECK_OK(vd_arch_detect(w, &got));
        CHECK(got.params == arch.params && got.extra == 0);
        check_ctx c = {w, &arch, &policy, rnd, 0, 0};
        CHECK_OK(vd_arch_inventory(&arch, check_param, &c));
        printf("%-10s %-14s %-11s worst relative L2 %.3e (%s)\n", arch_id, dtype, ext, c.worst,
               vd_weights_quant_layout(w));
        vd_weights_close(w);
    }
    remove(path);
}

int main(void)
{
    const char *st[] = {"f32", "f16", "bf16", "fp8", "fp8-scaled"};
    const char *gg[] = {"f32", "f16", "q8_0", "q5_0", "q5_1", "q4_0", "q4_1", "q2_k", "q3_k", "q4_k", "q4_k_m", "q5_k",
                        "q5_k_m", "q6_k"};
    const char *archs[] = {"wan21-t2v", "umt5"};
    for (int a = 0; a < 2; a++) {
        for (size_t i = 0; i < sizeof st / sizeof st[0]; i++)
            roundtrip(archs[a], st[i], "safetensors", VD_FP8_LEGACY);
        roundtrip(archs[a], "fp8-scaled", "safetensors", VD_FP8_COMFY_QUANT);
        for (size_t i = 0; i < sizeof gg / sizeof gg[0]; i++)
            roundtrip(archs[a], gg[i], "gguf", VD_FP8_LEGACY);
    }
    roundtrip("wan-vae", "bf16", "safetensors", VD_FP8_LEGACY);
    roundtrip("wan-vae", "f16", "gguf", VD_FP8_LEGACY);
    /* combinations the formats cannot hold */
    vd_storage_policy p;
    CHECK_FAILS(vd_storage_policy_parse("fp8", VD_FORMAT_GGUF, &p), VD_ERR_INVALID_ARGUMENT);
    CHECK_FAILS(vd_storage_policy_parse("q4_k", VD_FORMAT_SAFETENSORS, &p), VD_ERR_INVALID_ARGUMENT);
    CHECK_FAILS(vd_storage_policy_parse("q9_9", VD_FORMAT_GGUF, &p), VD_ERR_INVALID_ARGUMENT);
    CHECK_FAILS(vd_storage_policy_parse("q8_0_m", VD_FORMAT_GGUF, &p), VD_ERR_INVALID_ARGUMENT);
    vd_arch_info vae;
    CHECK_OK(vd_arch_from_preset("wan-vae", "tiny", &vae));
    CHECK_OK(vd_storage_policy_parse("q8_0", VD_FORMAT_GGUF, &p));
    vd_param_desc conv = {"decoder.conv1.weight", 5, {32, 16, 3, 3, 3}, VD_ROLE_CONV, 432};
    vd_dtype d;
    CHECK_FAILS(vd_storage_policy_dtype(&p, &vae, &conv, &d), VD_ERR_UNSUPPORTED);
    return test_finish("mkmodel_roundtrip");
}

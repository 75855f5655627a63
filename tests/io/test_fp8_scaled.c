/* fp8 "scaled" checkpoints: the legacy (scaled_fp8 + scale_weight) and
 * current (weight_scale, comfy_quant, _quantization_metadata) layouts fold
 * their scales; malformed ones are refused. */
#include <math.h>

#include "io/model_writer.h"
#include "io_test_util.h"

/* One tensor of a test file: values are converted to `dtype`. */
typedef struct entry {
    const char *name;
    vd_dtype dtype;
    int ndim;
    int64_t shape[2];
    const float *values; /* NULL: raw bytes below */
    const char *raw;     /* u8 tensors: these bytes */
} entry;

static void write_entries(const char *path, const entry *e, size_t n, const char *quant_metadata)
{
    vd_model_writer *w;
    CHECK_OK(vd_model_writer_open(path, VD_FORMAT_SAFETENSORS, &w));
    if (quant_metadata)
        CHECK_OK(vd_model_writer_meta_string(w, "_quantization_metadata", quant_metadata));
    for (size_t i = 0; i < n; i++)
        CHECK_OK(vd_model_writer_declare(w, e[i].name, e[i].dtype, e[i].ndim, e[i].shape));
    CHECK_OK(vd_model_writer_begin(w));
    for (size_t i = 0; i < n; i++) {
        vd_tensor t;
        vd_tensor_init(&t, e[i].dtype, e[i].ndim, e[i].shape, NULL);
        size_t nb = vd_tensor_nbytes(&t);
        if (e[i].raw) {
            CHECK_OK(vd_model_writer_write(w, e[i].raw, nb));
            continue;
        }
        uint8_t *b = malloc(nb + 1);
        CHECK_OK(vd_dtype_from_f32(e[i].dtype == VD_U8 ? VD_F8_E4M3 : e[i].dtype, e[i].values, b,
                                   vd_tensor_nelem(&t)));
        CHECK_OK(vd_model_writer_write(w, b, nb));
        free(b);
    }
    CHECK_OK(vd_model_writer_finish(w));
}

enum { ROWS = 4, COLS = 16, N = ROWS * COLS };
static float weight[N];  /* the "true" weights */
static float stored[N];  /* weight / scale: what the fp8 tensor holds */

/* Per-tensor absmax scaling, as ComfyUI's quantizer does. */
static float make_weights(uint64_t seed, float fp8_max)
{
    float *r = random_floats(seed, N, -0.05f, 0.05f);
    memcpy(weight, r, sizeof weight);
    free(r);
    float amax = 0;
    for (int i = 0; i < N; i++)
        amax = fmaxf(amax, fabsf(weight[i]));
    float scale = amax / fp8_max;
    for (int i = 0; i < N; i++)
        stored[i] = weight[i] / scale;
    return scale;
}

/* The weight under `name`, dequantized with its folded scale, is close to
 * the true weights (an independent check of the fold: fp8 rounding only). */
static void check_dequant(vd_weights *w, const char *name, vd_dtype dtype, float scale, double tol)
{
    const vd_weight *x = vd_weights_find(w, name);
    CHECKF(x != NULL, "%s not found", name);
    if (!x)
        return;
    CHECK(x->tensor.dtype == dtype);
    CHECKF(x->tensor.scale == scale, "%s: scale %g, expected %g", name, x->tensor.scale, scale);
    float deq[N];
    CHECK_OK(vd_dtype_to_f32(x->tensor.dtype, x->tensor.data, deq, N));
    for (int i = 0; i < N; i++)
        deq[i] *= x->tensor.scale;
    double err = rel_l2(deq, weight, N);
    CHECKF(err < tol, "%s: relative error %g", name, err);
}

static const float bias[4] = {0.5f, -0.25f, 1.0f, 2.0f};
static const float one[1] = {1.0f};

static void test_legacy(void)
{
    float s = make_weights(1, 448.0f);
    float sv[1] = {s};
    const entry e[] = {
        {"model.diffusion_model.scaled_fp8", VD_F8_E4M3, 1, {0}, NULL, ""},
        {"model.diffusion_model.blocks.0.ffn.0.weight", VD_F8_E4M3, 2, {ROWS, COLS}, stored, NULL},
        {"model.diffusion_model.blocks.0.ffn.0.scale_weight", VD_F32, 0, {0}, sv, NULL},
        {"model.diffusion_model.blocks.0.ffn.0.scale_input", VD_F32, 0, {0}, one, NULL},
        {"model.diffusion_model.blocks.0.ffn.0.bias", VD_BF16, 1, {4}, bias, NULL},
        {"model.diffusion_model.blocks.0.ffn.2.weight", VD_F8_E4M3, 2, {ROWS, COLS}, weight, NULL},
    };
    const char *p = scratch_path("legacy.safetensors");
    write_entries(p, e, sizeof e / sizeof e[0], NULL);
    vd_weights *w = NULL;
    CHECK_OK(vd_weights_open(p, &w));
    if (!w)
        return;
    CHECK(strcmp(vd_weights_quant_layout(w), "fp8 scaled (legacy scaled_fp8)") == 0);
    CHECK(vd_weights_count(w) == 3);
    CHECK(vd_weights_find(w, "scaled_fp8") == NULL);
    CHECK(vd_weights_find(w, "blocks.0.ffn.0.scale_weight") == NULL);
    CHECK(vd_weights_find(w, "blocks.0.ffn.0.scale_input") == NULL);
    check_dequant(w, "blocks.0.ffn.0.weight", VD_F8_E4M3, s, 0.04);
    /* A plain cast beside it keeps scale 1. */
    check_dequant(w, "blocks.0.ffn.2.weight", VD_F8_E4M3, 1.0f, 0.08);
    CHECK(vd_weights_find(w, "blocks.0.ffn.0.bias")->tensor.scale == 1.0f);
    vd_weights_close(w);

    /* Scales stored as f16 and bf16 fold to their exact value. */
    vd_dtype sdt[2] = {VD_F16, VD_BF16};
    for (int k = 0; k < 2; k++) {
        float sr = 0;
        uint8_t tmp[2];
        vd_dtype_from_f32(sdt[k], sv, tmp, 1);
        vd_dtype_to_f32(sdt[k], tmp, &sr, 1);
        const entry e2[] = {
            {"scaled_fp8", VD_F32, 1, {2}, bias, NULL},
            {"x.weight", VD_F8_E4M3, 2, {ROWS, COLS}, stored, NULL},
            {"x.scale_weight", sdt[k], 1, {1}, sv, NULL},
        };
        p = scratch_path("legacy16.safetensors");
        write_entries(p, e2, 3, NULL);
        CHECK_OK(vd_weights_open(p, &w));
        if (w) {
            check_dequant(w, "x.weight", VD_F8_E4M3, sr, 0.05);
            vd_weights_close(w);
        }
    }
}

static void test_current(void)
{
    float s = make_weights(2, 448.0f);
    float sv[1] = {s};
    static float stored5[N];
    float s5 = 0;
    {
        float amax = 0;
        for (int i = 0; i < N; i++)
            amax = fmaxf(amax, fabsf(weight[i]));
        s5 = amax / 57344.0f;
        for (int i = 0; i < N; i++)
            stored5[i] = weight[i] / s5;
    }
    float sv5[1] = {s5};
    const char *e4 = "{\"format\": \"float8_e4m3fn\"}";
    const char *e5 = "{\"format\":\"float8_e5m2\"}";
    const entry e[] = {
        {"blocks.1.self_attn.q.weight", VD_F8_E4M3, 2, {ROWS, COLS}, stored, NULL},
        {"blocks.1.self_attn.q.weight_scale", VD_F32, 1, {1}, sv, NULL},
        {"blocks.1.self_attn.q.input_scale", VD_F32, 0, {0}, one, NULL},
        {"blocks.1.self_attn.q.comfy_quant", VD_U8, 1, {(int64_t)strlen(e4)}, NULL, e4},
        {"blocks.1.self_attn.q.bias", VD_F32, 1, {4}, bias, NULL},
        {"blocks.1.self_attn.k.weight", VD_F8_E5M2, 2, {ROWS, COLS}, stored5, NULL},
        {"blocks.1.self_attn.k.weight_scale", VD_F32, 0, {0}, sv5, NULL},
        {"blocks.1.self_attn.k.comfy_quant", VD_U8, 1, {(int64_t)strlen(e5)}, NULL, e5},
    };
    const char *p = scratch_path("current.safetensors");
    write_entries(p, e, sizeof e / sizeof e[0], NULL);
    vd_weights *w = NULL;
    CHECK_OK(vd_weights_open(p, &w));
    if (!w)
        return;
    CHECK(strcmp(vd_weights_quant_layout(w), "fp8 scaled (comfy_quant)") == 0);
    CHECK(vd_weights_count(w) == 3);
    CHECK(vd_weights_find(w, "blocks.1.self_attn.q.comfy_quant") == NULL);
    CHECK(vd_weights_find(w, "blocks.1.self_attn.q.input_scale") == NULL);
    check_dequant(w, "blocks.1.self_attn.q.weight", VD_F8_E4M3, s, 0.04);
    check_dequant(w, "blocks.1.self_attn.k.weight", VD_F8_E5M2, s5, 0.1);
    vd_weights_close(w);
}

/* fp8 stored in a u8 container, its format given by comfy_quant or by
 * the _quantization_metadata (with the prefix on the layer names). */
static void test_u8_container(void)
{
    float s = make_weights(3, 448.0f);
    float sv[1] = {s};
    const char *e4 = "{\"format\":\"float8_e4m3fn\"}";
    const entry e[] = {
        {"model.diffusion_model.a.weight", VD_U8, 2, {ROWS, COLS}, stored, NULL},
        {"model.diffusion_model.a.weight_scale", VD_F32, 0, {0}, sv, NULL},
        {"model.diffusion_model.b.weight", VD_U8, 2, {ROWS, COLS}, stored, NULL},
        {"model.diffusion_model.b.weight_scale", VD_BF16, 0, {0}, sv, NULL},
        {"model.diffusion_model.b.comfy_quant", VD_U8, 1, {(int64_t)strlen(e4)}, NULL, e4},
        {"model.diffusion_model.c.weight", VD_U8, 2, {ROWS, COLS}, stored, NULL},
    };
    const char *meta = "{\"format_version\": \"1.0\", \"layers\": {\"model.diffusion_model.a\": {\"format\": "
                       "\"float8_e4m3fn\"}, \"other_model.z\": {\"format\": \"int8_blockwise\"}}}";
    const char *p = scratch_path("u8.safetensors");
    write_entries(p, e, sizeof e / sizeof e[0], meta);
    vd_weights *w = NULL;
    CHECK_OK(vd_weights_open(p, &w));
    if (!w)
        return;
    CHECK(strcmp(vd_weights_quant_layout(w), "fp8 scaled (comfy_quant)") == 0);
    CHECK(vd_weights_count(w) == 3);
    check_dequant(w, "a.weight", VD_F8_E4M3, s, 0.04);
    float sb = 0;
    uint8_t tmp[2];
    vd_dtype_from_f32(VD_BF16, sv, tmp, 1);
    vd_dtype_to_f32(VD_BF16, tmp, &sb, 1);
    check_dequant(w, "b.weight", VD_F8_E4M3, sb, 0.05);
    /* No format declared: a u8 tensor stays u8. */
    CHECK(vd_weights_find(w, "c.weight")->tensor.dtype == VD_U8);
    CHECK(vd_weights_meta_string(w, "_quantization_metadata") != NULL);
    vd_weights_close(w);
}

static void test_corrupt(void)
{
    make_weights(4, 448.0f);
    const float two[2] = {0.5f, 0.25f};
    const float nan1[1] = {NAN};
    const float inf1[1] = {INFINITY};
    const float sv[1] = {0.01f};
    const char *e4 = "{\"format\":\"float8_e4m3fn\"}";
    const char *e5 = "{\"format\":\"float8_e5m2\"}";
    const char *i8 = "{\"format\":\"int8_blockwise\",\"group_size\":128}";
    const char *notjson = "{\"format\":";
    const char *noformat = "{\"fmt\":\"float8_e4m3fn\"}";
    const entry w8 = {"x.weight", VD_F8_E4M3, 2, {ROWS, COLS}, stored, NULL};
    const entry wbf = {"x.weight", VD_BF16, 2, {ROWS, COLS}, weight, NULL};
    const entry wi8 = {"x.weight", VD_I8, 2, {ROWS, COLS}, weight, NULL};
    const entry scale = {"x.scale_weight", VD_F32, 0, {0}, sv, NULL};
    const entry wscale = {"x.weight_scale", VD_F32, 0, {0}, sv, NULL};
    struct {
        const char *label;
        entry e[3];
        size_t n;
        const char *meta;
        vd_status status;
    } cases[] = {
        {"fp8 scale without its weight", {w8, {"y.scale_weight", VD_F32, 0, {0}, sv, NULL}}, 2, NULL, VD_ERR_FORMAT},
        {"fp8 weight_scale without its weight", {w8, {"y.weight_scale", VD_F32, 0, {0}, sv, NULL}}, 2, NULL,
         VD_ERR_FORMAT},
        {"fp8 input_scale without its weight", {w8, {"y.input_scale", VD_F32, 0, {0}, sv, NULL}}, 2, NULL,
         VD_ERR_FORMAT},
        {"fp8 non-scalar scale", {w8, {"x.scale_weight", VD_F32, 1, {2}, two, NULL}}, 2, NULL, VD_ERR_FORMAT},
        {"fp8 NaN scale", {w8, {"x.weight_scale", VD_F32, 0, {0}, nan1, NULL}}, 2, NULL, VD_ERR_FORMAT},
        {"fp8 infinite scale", {w8, {"x.scale_weight", VD_F32, 1, {1}, inf1, NULL}}, 2, NULL, VD_ERR_FORMAT},
        {"fp8 scale of dtype i32", {w8, {"x.weight_scale", VD_I32, 0, {0}, one, NULL}}, 2, NULL, VD_ERR_FORMAT},
        {"fp8 two scales for one weight", {w8, scale, wscale}, 3, NULL, VD_ERR_FORMAT},
        {"scale on a bf16 weight", {wbf, wscale}, 2, NULL, VD_ERR_FORMAT},
        {"unknown comfy_quant format (int8_blockwise)",
         {wi8, wscale, {"x.comfy_quant", VD_U8, 1, {(int64_t)strlen(i8)}, NULL, i8}}, 3, NULL, VD_ERR_UNSUPPORTED},
        {"comfy_quant is not JSON", {w8, wscale, {"x.comfy_quant", VD_U8, 1, {(int64_t)strlen(notjson)}, NULL, notjson}},
         3, NULL, VD_ERR_FORMAT},
        {"comfy_quant without \"format\"",
         {w8, wscale, {"x.comfy_quant", VD_U8, 1, {(int64_t)strlen(noformat)}, NULL, noformat}}, 3, NULL,
         VD_ERR_FORMAT},
        {"comfy_quant of dtype f32", {w8, wscale, {"x.comfy_quant", VD_F32, 1, {2}, two, NULL}}, 3, NULL, VD_ERR_FORMAT},
        {"comfy_quant without its weight", {w8, {"y.comfy_quant", VD_U8, 1, {(int64_t)strlen(e4)}, NULL, e4}}, 2, NULL,
         VD_ERR_FORMAT},
        {"comfy_quant e5m2 on an e4m3 weight", {w8, wscale, {"x.comfy_quant", VD_U8, 1, {(int64_t)strlen(e5)}, NULL, e5}},
         3, NULL, VD_ERR_FORMAT},
        {"_quantization_metadata format nvfp4", {w8, wscale}, 2, "{\"layers\":{\"x\":{\"format\":\"nvfp4\"}}}",
         VD_ERR_UNSUPPORTED},
        {"_quantization_metadata not JSON", {w8, wscale}, 2, "{\"layers\":", VD_ERR_FORMAT},
        {"_quantization_metadata without layers", {w8, wscale}, 2, "{\"format_version\":\"1.0\"}", VD_ERR_FORMAT},
        {"_quantization_metadata layer without format", {w8, wscale}, 2, "{\"layers\":{\"x\":{}}}", VD_ERR_FORMAT},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char name[64];
        snprintf(name, sizeof name, "fp8-corrupt%zu.safetensors", i);
        const char *p = scratch_path(name);
        write_entries(p, cases[i].e, cases[i].n, cases[i].meta);
        EXPECT_REFUSED(p, cases[i].status, cases[i].label);
    }
}

int main(void)
{
    scratch_init("fp8");
    test_legacy();
    test_current();
    test_u8_container();
    test_corrupt();
    printf("%d refused cases\n", refused_cases);
    scratch_cleanup();
    return test_finish("fp8_scaled");
}

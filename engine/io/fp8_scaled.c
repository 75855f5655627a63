#include "io/fp8_scaled.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "io/name_index.h"
#include "io/name_map.h"

/* Largest comfy_quant tensor read (its JSON is a few dozen bytes). */
#define MAX_COMFY_QUANT_BYTES 65536

const char *vd_quant_layout_name(vd_quant_layout layout)
{
    switch (layout) {
    case VD_LAYOUT_PLAIN: return "plain";
    case VD_LAYOUT_FP8_UNSCALED: return "fp8 (unscaled casts)";
    case VD_LAYOUT_FP8_LEGACY: return "fp8 scaled (legacy scaled_fp8)";
    case VD_LAYOUT_FP8_COMFY_QUANT: return "fp8 scaled (comfy_quant)";
    }
    return "invalid";
}

static bool is_fp8(vd_dtype d) { return d == VD_F8_E4M3 || d == VD_F8_E5M2; }

typedef struct fold_state {
    vd_weight *w;
    size_t n;
    const char *path;
    const char **names; /* prefix stripped */
    vd_name_index ix;
    const char **format; /* per weight: declared quantization format, or NULL */
    float *scale;
    bool *has_scale;
    bool *hidden;
    char **owned; /* the format strings, copied out of their JSON */
    size_t n_owned;
} fold_state;

static bool ends_with(const char *s, const char *suffix, size_t *stem)
{
    size_t n = strlen(s), m = strlen(suffix);
    if (n <= m || strcmp(s + n - m, suffix) != 0)
        return false;
    *stem = n - m;
    return true;
}

/* Index of "<stem>.weight" where stem = names[i][0..stem_len), or false. */
static bool find_weight(fold_state *st, const char *name, size_t stem_len, size_t *out)
{
    char *wname = malloc(stem_len + sizeof ".weight");
    if (!wname)
        return false;
    memcpy(wname, name, stem_len);
    memcpy(wname + stem_len, ".weight", sizeof ".weight");
    bool found = vd_name_index_find(&st->ix, wname, out);
    free(wname);
    return found;
}

static vd_status read_scale(const fold_state *st, size_t i, float *out)
{
    const vd_tensor *t = &st->w[i].tensor;
    const char *name = st->w[i].file_name;
    if (t->dtype != VD_F32 && t->dtype != VD_F16 && t->dtype != VD_BF16)
        return vd_error(VD_ERR_FORMAT, "'%s': scale tensor '%s' is %s; a scale must be f32, f16 or bf16", st->path, name,
                        vd_dtype_name(t->dtype));
    if (vd_tensor_nelem(t) != 1) {
        char shape[96];
        return vd_error(VD_ERR_FORMAT, "'%s': scale tensor '%s' has shape %s; vdiff reads one scale per tensor",
                        st->path, name, vd_shape_str(t, shape, sizeof shape));
    }
    if (!t->data)
        return vd_error(VD_ERR_FORMAT, "'%s': scale tensor '%s' has no data", st->path, name);
    float v = 0;
    VD_TRY(vd_dtype_to_f32(t->dtype, t->data, &v, 1));
    if (!isfinite(v))
        return vd_error(VD_ERR_FORMAT, "'%s': scale tensor '%s' is %g; the file is damaged", st->path, name, v);
    *out = v;
    return VD_OK;
}

/* A scale or input scale named `<stem><suffix>`: hide it and (for weight
 * scales) attach its value to the weight. */
static vd_status take_scale(fold_state *st, size_t i, size_t stem, bool weight_scale)
{
    st->hidden[i] = true;
    size_t w;
    if (!find_weight(st, st->names[i], stem, &w))
        return vd_error(VD_ERR_FORMAT, "'%s': scale tensor '%s' has no weight '%.*s.weight' beside it", st->path,
                        st->w[i].file_name, (int)stem, st->names[i]);
    if (!weight_scale)
        return VD_OK;
    if (st->has_scale[w])
        return vd_error(VD_ERR_FORMAT, "'%s': weight '%s' has two scales", st->path, st->w[w].file_name);
    VD_TRY(read_scale(st, i, &st->scale[w]));
    st->has_scale[w] = true;
    return VD_OK;
}

static vd_status take_comfy_quant(fold_state *st, size_t i, size_t stem)
{
    st->hidden[i] = true;
    const vd_weight *q = &st->w[i];
    size_t w;
    if (!find_weight(st, st->names[i], stem, &w))
        return vd_error(VD_ERR_FORMAT, "'%s': '%s' has no weight '%.*s.weight' beside it", st->path, q->file_name,
                        (int)stem, st->names[i]);
    if ((q->tensor.dtype != VD_U8 && q->tensor.dtype != VD_I8) || q->tensor.ndim > 1 || !q->tensor.data ||
        q->nbytes > MAX_COMFY_QUANT_BYTES)
        return vd_error(VD_ERR_FORMAT, "'%s': '%s' is not a u8 vector of JSON (%s, %zu bytes)", st->path, q->file_name,
                        vd_dtype_name(q->tensor.dtype), q->nbytes);
    char *text = malloc(q->nbytes + 1);
    if (!text)
        return vd_error(VD_ERR_OUT_OF_MEMORY, "'%s': out of memory", st->path);
    memcpy(text, q->tensor.data, q->nbytes);
    text[q->nbytes] = '\0';
    cJSON *root = cJSON_ParseWithLength(text, q->nbytes);
    free(text);
    const cJSON *fmt = cJSON_GetObjectItemCaseSensitive(root, "format");
    vd_status s = VD_OK;
    if (!cJSON_IsObject(root) || !cJSON_IsString(fmt) || !fmt->valuestring) {
        s = vd_error(VD_ERR_FORMAT, "'%s': '%s' is not JSON of the form {\"format\": \"...\"}", st->path, q->file_name);
    } else {
        char *copy = strdup(fmt->valuestring);
        if (!copy) {
            s = vd_error(VD_ERR_OUT_OF_MEMORY, "'%s': out of memory", st->path);
        } else {
            st->owned[st->n_owned++] = copy;
            st->format[w] = copy;
        }
    }
    cJSON_Delete(root);
    return s;
}

/* "_quantization_metadata": {"layers": {"X": {"format": F} | F, ...}}. */
static vd_status take_metadata(fold_state *st, const char *json)
{
    cJSON *root = cJSON_Parse(json);
    const cJSON *layers = cJSON_GetObjectItemCaseSensitive(root, "layers");
    vd_status s = VD_OK;
    if (!cJSON_IsObject(root) || !cJSON_IsObject(layers)) {
        s = vd_error(VD_ERR_FORMAT, "'%s': metadata _quantization_metadata is not JSON with a \"layers\" object",
                     st->path);
        goto done;
    }
    const cJSON *layer;
    cJSON_ArrayForEach(layer, layers) {
        const cJSON *fmt = cJSON_IsString(layer) ? layer : cJSON_GetObjectItemCaseSensitive(layer, "format");
        if (!cJSON_IsString(fmt) || !fmt->valuestring) {
            s = vd_error(VD_ERR_FORMAT, "'%s': _quantization_metadata: layer '%s' has no \"format\" string", st->path,
                         layer->string);
            goto done;
        }
        const char *stripped = vd_name_strip_prefix(layer->string);
        size_t w;
        /* Layers of another component (not in this file) are ignored. */
        if (!find_weight(st, stripped, strlen(stripped), &w) || st->format[w])
            continue;
        char *copy = strdup(fmt->valuestring);
        if (!copy) {
            s = vd_error(VD_ERR_OUT_OF_MEMORY, "'%s': out of memory", st->path);
            goto done;
        }
        st->owned[st->n_owned++] = copy;
        st->format[w] = copy;
    }
done:
    cJSON_Delete(root);
    return s;
}

/* Apply the declared format of weight w: retype a u8 container, check an
 * fp8 dtype agrees, refuse formats vdiff does not read. */
static vd_status apply_format(fold_state *st, size_t w)
{
    const char *f = st->format[w];
    vd_tensor *t = &st->w[w].tensor;
    vd_dtype want;
    if (strcmp(f, "float8_e4m3fn") == 0)
        want = VD_F8_E4M3;
    else if (strcmp(f, "float8_e5m2") == 0)
        want = VD_F8_E5M2;
    else
        return vd_error(VD_ERR_UNSUPPORTED,
                        "'%s': tensor '%s' is quantized as '%.64s', which vdiff does not read (float8_e4m3fn and "
                        "float8_e5m2 are read)",
                        st->path, st->w[w].file_name, f);
    if (t->dtype == VD_U8 || t->dtype == VD_I8)
        t->dtype = want; /* same bytes, read as what they hold */
    if (t->dtype != want)
        return vd_error(VD_ERR_FORMAT, "'%s': tensor '%s' is declared %s but stored as %s", st->path,
                        st->w[w].file_name, f, vd_dtype_name(t->dtype));
    return VD_OK;
}

static vd_status fold(fold_state *st, const char *quant_metadata, vd_quant_layout *layout)
{
    bool has_dup;
    size_t a = 0, b = 0;
    VD_TRY(vd_name_index_build(&st->ix, st->names, st->n, &has_dup, &a, &b));
    if (has_dup)
        return vd_error(VD_ERR_FORMAT, "'%s': tensors '%s' and '%s' have the same name once the prefix is removed",
                        st->path, st->w[a].file_name, st->w[b].file_name);

    bool legacy = false, current = quant_metadata != NULL;
    for (size_t i = 0; i < st->n; i++) {
        const char *name = st->names[i];
        size_t stem;
        if (strcmp(name, "scaled_fp8") == 0) {
            st->hidden[i] = true;
            legacy = true;
        } else if (ends_with(name, ".scale_weight", &stem)) {
            legacy = true;
            VD_TRY(take_scale(st, i, stem, true));
        } else if (ends_with(name, ".weight_scale", &stem)) {
            current = true;
            VD_TRY(take_scale(st, i, stem, true));
        } else if (ends_with(name, ".scale_input", &stem) || ends_with(name, ".input_scale", &stem)) {
            VD_TRY(take_scale(st, i, stem, false));
        } else if (ends_with(name, ".comfy_quant", &stem)) {
            current = true;
            VD_TRY(take_comfy_quant(st, i, stem));
        }
    }
    if (quant_metadata)
        VD_TRY(take_metadata(st, quant_metadata));

    bool any_fp8 = false;
    for (size_t w = 0; w < st->n; w++) {
        if (st->hidden[w])
            continue;
        if (st->format[w])
            VD_TRY(apply_format(st, w));
        vd_tensor *t = &st->w[w].tensor;
        if (st->has_scale[w]) {
            if (!is_fp8(t->dtype))
                return vd_error(VD_ERR_FORMAT, "'%s': weight '%s' has a scale but is stored as %s, not fp8", st->path,
                                st->w[w].file_name, vd_dtype_name(t->dtype));
            t->scale = st->scale[w];
        }
        any_fp8 |= is_fp8(t->dtype);
    }
    *layout = legacy ? VD_LAYOUT_FP8_LEGACY
              : current ? VD_LAYOUT_FP8_COMFY_QUANT
              : any_fp8 ? VD_LAYOUT_FP8_UNSCALED
                        : VD_LAYOUT_PLAIN;
    return VD_OK;
}

vd_status vd_fp8_fold_scales(vd_weight *weights, size_t n, const char *quant_metadata, const char *path, bool *hidden,
                             vd_quant_layout *layout)
{
    *layout = VD_LAYOUT_PLAIN;
    for (size_t i = 0; i < n; i++)
        hidden[i] = false;
    if (n == 0)
        return VD_OK;
    fold_state st = {.w = weights, .n = n, .path = path, .hidden = hidden};
    st.names = malloc(n * sizeof *st.names);
    st.format = calloc(n, sizeof *st.format);
    st.scale = calloc(n, sizeof *st.scale);
    st.has_scale = calloc(n, sizeof *st.has_scale);
    st.owned = calloc(n, sizeof *st.owned); /* at most one format per weight */
    vd_status s;
    if (!st.names || !st.format || !st.scale || !st.has_scale || !st.owned) {
        s = vd_error(VD_ERR_OUT_OF_MEMORY, "'%s': out of memory", path);
    } else {
        for (size_t i = 0; i < n; i++)
            st.names[i] = vd_name_strip_prefix(weights[i].file_name);
        s = fold(&st, quant_metadata, layout);
    }
    vd_name_index_free(&st.ix);
    for (size_t i = 0; i < st.n_owned; i++)
        free(st.owned[i]);
    free(st.owned);
    free(st.names);
    free(st.format);
    free(st.scale);
    free(st.has_scale);
    return s;
}

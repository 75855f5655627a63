/* vdiff convert: re-store a model in another dtype or format. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "tools/args.h"
#include "tools/commands.h"
#include "tools/model_export.h"
#include "vd_config.h"

static const char *const convert_help =
    "usage: vdiff convert IN OUT --dtype TYPE [--fp8-layout legacy|comfy-quant] [--threads N]\n\n"
    "Read a model (any supported layout, dtype or format), and write it to OUT in\n"
    "the storage TYPE under the same policies as 'vdiff mkmodel' (see its --help).\n"
    "OUT's extension picks the format (.gguf or .safetensors); names are written in\n"
    "the canonical Wan / umT5 form.  Tensors the architecture does not use (such as\n"
    "a tokenizer) are copied unchanged.\n";

typedef struct convert_source {
    const vd_weights *w;
} convert_source;

typedef struct dequant_job {
    const vd_tensor *t;
    float *out;
    int64_t block_elems;
    size_t block_bytes;
    vd_status status;
} dequant_job;

static void dequant_range(void *arg, int64_t b, int64_t e, int worker)
{
    dequant_job *j = arg;
    (void)worker;
    const uint8_t *src = (const uint8_t *)j->t->data + (size_t)b * j->block_bytes;
    vd_status s = vd_dtype_to_f32(j->t->dtype, src, j->out + b * j->block_elems, (e - b) * j->block_elems);
    if (s != VD_OK)
        j->status = s;
    if (j->t->scale != 1.0f)
        for (int64_t i = b * j->block_elems; i < e * j->block_elems; i++)
            j->out[i] *= j->t->scale;
}

static vd_status source_values(void *ctx, const vd_param_desc *p, int64_t index, float *values, vd_threadpool *pool)
{
    convert_source *src = ctx;
    (void)index;
    const vd_weight *x = vd_weights_find(src->w, p->name);
    if (!x)
        return vd_error(VD_ERR_NOT_FOUND, "tensor '%s' is missing", p->name);
    const vd_dtype_traits *t = vd_dtype_info(x->tensor.dtype);
    dequant_job j = {&x->tensor, values, t->block_elems, (size_t)t->block_bytes, VD_OK};
    vd_parallel_for(pool, vd_tensor_nelem(&x->tensor) / t->block_elems, 4096, dequant_range, &j);
    return j.status;
}

typedef struct name_set {
    char **names;
    size_t n, cap;
} name_set;

static vd_status collect_name(void *ctx, const vd_param_desc *p)
{
    name_set *s = ctx;
    if (s->n == s->cap) {
        size_t cap = s->cap ? 2 * s->cap : 256;
        char **n = realloc(s->names, cap * sizeof *n);
        if (!n)
            return vd_error(VD_ERR_OUT_OF_MEMORY, "out of memory");
        s->names = n;
        s->cap = cap;
    }
    if (!(s->names[s->n] = strdup(p->name)))
        return vd_error(VD_ERR_OUT_OF_MEMORY, "out of memory");
    s->n++;
    return VD_OK;
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

static void free_names(name_set *s)
{
    for (size_t i = 0; i < s->n; i++)
        free(s->names[i]);
    free(s->names);
}

int vd_cmd_convert(int argc, char **argv)
{
    vd_args a;
    vd_args_init(&a, "vdiff convert", argc, argv);
    const char *in = NULL, *out = NULL, *dtype = NULL, *layout = "legacy";
    int64_t threads = 0;
    bool opt;
    const char *s;
    while ((s = vd_args_next(&a, &opt))) {
        bool ok = true;
        if (!opt) {
            if (!in)
                in = s;
            else if (!out)
                out = s;
            else
                return vd_args_error(&a, "unexpected argument '%s'", s);
        } else if (vd_args_is(&a, "--help") || vd_args_is(&a, "-h")) {
            fputs(convert_help, stdout);
            return 0;
        } else if (vd_args_is(&a, "--dtype"))
            ok = (dtype = vd_args_value(&a)) != NULL;
        else if (vd_args_is(&a, "--fp8-layout"))
            ok = (layout = vd_args_value(&a)) != NULL;
        else if (vd_args_is(&a, "--threads"))
            ok = vd_args_int(&a, 0, 1024, &threads);
        else
            return vd_args_error(&a, "unknown option %s", s);
        if (!ok)
            return 2;
    }
    if (!in || !out)
        return vd_args_error(&a, "IN and OUT are required");
    if (!dtype)
        return vd_args_error(&a, "--dtype is required");
    if (strcmp(in, out) == 0)
        return vd_args_error(&a, "OUT must differ from IN");

    size_t n = strlen(out);
    vd_file_format fmt = (n >= 5 && strcmp(out + n - 5, ".gguf") == 0) ? VD_FORMAT_GGUF : VD_FORMAT_SAFETENSORS;
    vd_storage_policy policy;
    if (vd_storage_policy_parse(dtype, fmt, &policy) != VD_OK)
        return vd_tool_fail(a.cmd, "--dtype");
    if (strcmp(layout, "comfy-quant") == 0)
        policy.fp8_layout = VD_FP8_COMFY_QUANT;
    else if (strcmp(layout, "legacy") != 0)
        return vd_args_error(&a, "--fp8-layout: '%s' is not legacy or comfy-quant", layout);

    vd_weights *w;
    if (vd_weights_open(in, &w) != VD_OK)
        return vd_tool_fail(a.cmd, NULL);
    vd_arch_info info;
    if (vd_arch_detect(w, &info) != VD_OK) {
        vd_weights_close(w);
        return vd_tool_fail(a.cmd, in);
    }

    /* Pass through what the architecture does not use (e.g. spiece_model). */
    name_set names = {0};
    vd_export_extra *extras = NULL;
    size_t n_extras = 0;
    vd_status st = vd_arch_inventory(&info, collect_name, &names);
    if (st == VD_OK) {
        qsort(names.names, names.n, sizeof *names.names, cmp_str);
        extras = calloc(vd_weights_count(w) + 1, sizeof *extras);
        if (!extras)
            st = vd_error(VD_ERR_OUT_OF_MEMORY, "out of memory");
    }
    for (size_t i = 0; st == VD_OK && i < vd_weights_count(w); i++) {
        const vd_weight *x = vd_weights_at(w, i);
        const char *key = x->name;
        if (bsearch(&key, names.names, names.n, sizeof *names.names, cmp_str))
            continue;
        vd_export_extra *e = &extras[n_extras++];
        e->name = x->name;
        e->dtype = x->tensor.dtype;
        e->ndim = x->tensor.ndim;
        memcpy(e->shape, x->tensor.shape, sizeof e->shape);
        e->data = x->tensor.data;
    }

    vd_threadpool *pool = NULL;
    if (st == VD_OK)
        st = vd_threadpool_new((int)threads, &pool);
    if (st == VD_OK) {
        const char *meta[] = {
            "general.architecture", info.arch == VD_ARCH_WAN_DIT ? "wan" : (info.arch == VD_ARCH_UMT5 ? "t5encoder" : "wan_vae"),
            "vdiff.generator", "vdiff convert " VD_VERSION,
            "vdiff.arch", info.id,
            "vdiff.storage", policy.name,
        };
        convert_source src = {w};
        vd_export_request req = {
            .path = out, .arch = &info, .policy = &policy, .values = source_values, .ctx = &src,
            .extras = extras, .n_extras = n_extras,
            .meta = fmt == VD_FORMAT_GGUF ? meta : meta + 2, .n_meta = fmt == VD_FORMAT_GGUF ? 4 : 3,
            .pool = pool,
        };
        st = vd_export_model(&req);
    }
    vd_threadpool_free(pool);
    free(extras);
    free_names(&names);
    vd_weights_close(w);
    if (st != VD_OK)
        return vd_tool_fail(a.cmd, NULL);
    printf("wrote %s: %s, %" PRId64 " parameters, %s\n", out, info.name, info.params, policy.name);
    return 0;
}

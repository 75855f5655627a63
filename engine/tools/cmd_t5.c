/* vdiff t5: the umT5 encoder on given token ids (the stage hook by which
 * the encoder is checked against other implementations). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend/backend.h"
#include "core/error.h"
#include "io/model_writer.h"
#include "io/weights.h"
#include "models/umt5.h"
#include "tools/args.h"
#include "tools/commands.h"

static const char *const t5_help =
    "usage: vdiff t5 --model M --input IN --output OUT [--pad-to N]\n"
    "                [--device cpu|cuda:N] [--threads N]\n\n"
    "Run the umT5 encoder on token ids.  M is a umT5 encoder checkpoint\n"
    "(safetensors or GGUF, any storage type).  IN (safetensors) holds\n"
    "  ids     int32 or int64 [L]   the token ids\n"
    "  mask    int [L], optional    1 for real tokens, then 0 for padding (as the\n"
    "                               Hugging Face attention mask): the encoder runs on\n"
    "                               all L positions with the padding masked\n"
    "  pad_to  int [1], optional    without a mask: run padded to this length\n"
    "OUT (safetensors) receives embeddings f32 [n, d_model], one row per real token.\n\n"
    "  --pad-to N   run padded to N positions with the padding masked, as Wan's\n"
    "               reference does with 512 (overrides IN's pad_to; the rows are\n"
    "               the same as unpadded, only slower)\n";

/* Integer tensor `name` of `w` as int64 values (NULL and VD_OK if absent). */
static vd_status read_ints(const vd_weights *w, const char *name, int64_t **out, int64_t *count)
{
    *out = NULL;
    *count = 0;
    const vd_weight *x = vd_weights_find(w, name);
    if (!x)
        return VD_OK;
    const vd_tensor *t = &x->tensor;
    vd_dtype dt = t->dtype;
    if (t->ndim != 1 || (dt != VD_I32 && dt != VD_I64 && dt != VD_U8 && dt != VD_BOOL && dt != VD_I8))
        return vd_error(VD_ERR_SHAPE, "'%s' in '%s' must be a 1-D integer tensor (int32 or int64)", name,
                        vd_weights_path(w));
    int64_t n = t->shape[0];
    int64_t *v = malloc((size_t)(n > 0 ? n : 1) * sizeof *v);
    if (!v)
        return vd_error(VD_ERR_OUT_OF_MEMORY, "out of memory");
    for (int64_t i = 0; i < n; i++)
        v[i] = dt == VD_I32   ? ((const int32_t *)t->data)[i]
               : dt == VD_I64 ? ((const int64_t *)t->data)[i]
               : dt == VD_I8  ? ((const int8_t *)t->data)[i]
                              : ((const uint8_t *)t->data)[i];
    *out = v;
    *count = n;
    return VD_OK;
}

/* ids, real count n and the length to run on, from the input file. */
static vd_status read_input(const vd_weights *in, int32_t **ids_out, int64_t *n_out, int64_t *pad_out)
{
    const char *path = vd_weights_path(in);
    int64_t *ids = NULL, *mask = NULL, *pad = NULL, L = 0, nm = 0, np = 0;
    vd_status st = read_ints(in, "ids", &ids, &L);
    if (st == VD_OK && !ids)
        st = vd_error(VD_ERR_NOT_FOUND, "'%s' has no 'ids' tensor (int32 [L])", path);
    if (st == VD_OK && L < 1)
        st = vd_error(VD_ERR_SHAPE, "'ids' in '%s' is empty", path);
    if (st == VD_OK)
        st = read_ints(in, "mask", &mask, &nm);
    if (st == VD_OK)
        st = read_ints(in, "pad_to", &pad, &np);
    int64_t n = L, pad_to = 0;
    if (st == VD_OK && mask) {
        if (nm != L)
            st = vd_error(VD_ERR_SHAPE, "'mask' in '%s' has %lld entries for %lld ids", path, (long long)nm,
                          (long long)L);
        for (n = 0; st == VD_OK && n < L && mask[n] != 0;)
            n++;
        for (int64_t i = n; st == VD_OK && i < L; i++)
            if (mask[i] != 0)
                st = vd_error(VD_ERR_INVALID_ARGUMENT,
                              "'mask' in '%s' is not 1s followed by 0s (position %lld is real after padding at %lld); "
                              "the encoder takes right-padded prompts",
                              path, (long long)i, (long long)n);
        if (st == VD_OK && n == 0)
            st = vd_error(VD_ERR_INVALID_ARGUMENT, "'mask' in '%s' marks no real token", path);
        pad_to = L;
    }
    if (st == VD_OK && pad && !mask) {
        if (np != 1 || pad[0] < 0)
            st = vd_error(VD_ERR_SHAPE, "'pad_to' in '%s' must be one non-negative integer", path);
        else
            pad_to = pad[0];
    }
    int32_t *out = NULL;
    if (st == VD_OK && !(out = malloc((size_t)n * sizeof *out)))
        st = vd_error(VD_ERR_OUT_OF_MEMORY, "out of memory");
    for (int64_t i = 0; st == VD_OK && i < n; i++) {
        if (ids[i] < INT32_MIN || ids[i] > INT32_MAX)
            st = vd_error(VD_ERR_INVALID_ARGUMENT, "'ids' in '%s': id %lld at position %lld is not an int32", path,
                          (long long)ids[i], (long long)i);
        else
            out[i] = (int32_t)ids[i];
    }
    free(ids), free(mask), free(pad);
    if (st != VD_OK) {
        free(out);
        return st;
    }
    *ids_out = out;
    *n_out = n;
    *pad_out = pad_to;
    return VD_OK;
}

static vd_status write_output(const char *path, const float *emb, int64_t n, int64_t d, const char *model)
{
    vd_model_writer *w = NULL;
    int64_t shape[2] = {n, d};
    VD_TRY(vd_model_writer_open(path, VD_FORMAT_SAFETENSORS, &w));
    vd_status st = vd_model_writer_meta_string(w, "model_file", model);
    if (st == VD_OK)
        st = vd_model_writer_declare(w, "embeddings", VD_F32, 2, shape);
    if (st == VD_OK)
        st = vd_model_writer_begin(w);
    if (st == VD_OK)
        st = vd_model_writer_write(w, emb, (size_t)(n * d) * sizeof *emb);
    if (st != VD_OK) {
        vd_model_writer_abort(w);
        return st;
    }
    return vd_model_writer_finish(w);
}

int vd_cmd_t5(int argc, char **argv)
{
    vd_args a;
    vd_args_init(&a, "vdiff t5", argc, argv);
    const char *model = NULL, *input = NULL, *output = NULL, *device = "cpu", *s;
    int64_t threads = 0, pad_opt = -1;
    bool opt;
    while ((s = vd_args_next(&a, &opt))) {
        bool ok = true;
        if (!opt)
            return vd_args_error(&a, "unexpected argument '%s'", s);
        if (vd_args_is(&a, "--help") || vd_args_is(&a, "-h")) {
            fputs(t5_help, stdout);
            return 0;
        } else if (vd_args_is(&a, "--model") || vd_args_is(&a, "-m"))
            ok = (model = vd_args_value(&a)) != NULL;
        else if (vd_args_is(&a, "--input") || vd_args_is(&a, "-i"))
            ok = (input = vd_args_value(&a)) != NULL;
        else if (vd_args_is(&a, "--output") || vd_args_is(&a, "-o"))
            ok = (output = vd_args_value(&a)) != NULL;
        else if (vd_args_is(&a, "--device"))
            ok = (device = vd_args_value(&a)) != NULL;
        else if (vd_args_is(&a, "--threads"))
            ok = vd_args_int(&a, 0, 1024, &threads);
        else if (vd_args_is(&a, "--pad-to"))
            ok = vd_args_int(&a, 0, VD_UMT5_MAX_POSITIONS, &pad_opt);
        else
            return vd_args_error(&a, "unknown option %s", s);
        if (!ok)
            return 2;
    }
    if (!model || !input || !output)
        return vd_args_error(&a, "--model, --input and --output are required");

    vd_weights *in = NULL, *mw = NULL;
    vd_backend *be = NULL;
    vd_umt5 *enc = NULL;
    int32_t *ids = NULL;
    float *emb = NULL;
    int64_t n = 0, pad_to = 0;
    vd_backend_options bo = {.threads = (int)threads};
    vd_status st = vd_weights_open(input, &in);
    if (st == VD_OK)
        st = read_input(in, &ids, &n, &pad_to);
    if (st == VD_OK && pad_opt >= 0) {
        if (pad_opt != 0 && pad_opt < n)
            st = vd_error(VD_ERR_INVALID_ARGUMENT, "--pad-to %lld is shorter than the %lld real ids in '%s'",
                          (long long)pad_opt, (long long)n, input);
        pad_to = pad_opt;
    }
    if (st == VD_OK)
        st = vd_weights_open(model, &mw);
    if (st == VD_OK)
        st = vd_backend_open(device, &bo, &be);
    if (st == VD_OK)
        st = vd_umt5_load(be, mw, &enc);
    const int64_t d = enc ? vd_umt5_get_config(enc)->d_model : 0;
    if (st == VD_OK && !(emb = malloc((size_t)(n * d) * sizeof *emb)))
        st = vd_error(VD_ERR_OUT_OF_MEMORY, "out of memory for %lld×%lld embeddings", (long long)n, (long long)d);
    if (st == VD_OK)
        st = vd_umt5_encode(enc, ids, n, pad_to, emb);
    if (st == VD_OK)
        st = write_output(output, emb, n, d, model);
    free(emb);
    free(ids);
    vd_umt5_free(enc);
    vd_backend_close(be);
    vd_weights_close(mw);
    vd_weights_close(in);
    return st == VD_OK ? 0 : vd_tool_fail(a.cmd, NULL);
}

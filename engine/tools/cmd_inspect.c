/* vdiff inspect: what a model file is. */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "io/weights.h"
#include "models/arch.h"
#include "tools/args.h"
#include "tools/commands.h"

static const char *const inspect_help =
    "usage: vdiff inspect FILE [--tensors] [--metadata]\n\n"
    "Show a model file's format, detected architecture, inferred configuration,\n"
    "parameter count and bytes by storage type.  FILE is a .safetensors or .gguf\n"
    "file (Wan DiT, Wan VAE or umT5 encoder; ComfyUI, Wan-AI, diffusers and\n"
    "city96 GGUF layouts).\n\n"
    "  --tensors    list every tensor: name, dtype, shape, bytes (and fp8 scale)\n"
    "  --metadata   print the file's metadata key/values\n";

static void print_count(const char *label, double v)
{
    const char *unit[] = {"", "K", "M", "G", "T"};
    int u = 0;
    while (v >= 1000 && u < 4)
        v /= 1000, u++;
    printf("%s%.2f %s", label, v, unit[u]);
}

static void print_config(const vd_arch_info *a)
{
    switch (a->arch) {
    case VD_ARCH_WAN_DIT: {
        const vd_dit_config *c = &a->dit;
        printf("config:       dim %" PRId64 ", ffn %" PRId64 ", heads %" PRId64 " x %" PRId64 ", layers %" PRId64
               ", in %" PRId64 ", out %" PRId64 ", patch %" PRId64 "x%" PRId64 "x%" PRId64 ", freq %" PRId64
               ", text %" PRId64,
               c->dim, c->ffn_dim, c->heads, c->head_dim, c->layers, c->in_dim, c->out_dim, c->patch[0], c->patch[1],
               c->patch[2], c->freq_dim, c->text_dim);
        if (c->img_dim)
            printf(", image %" PRId64, c->img_dim);
        if (c->img_pos)
            printf(" (+%" PRId64 " position rows)", c->img_pos);
        printf("\n");
        break;
    }
    case VD_ARCH_WAN_VAE: {
        const vd_vae_config *c = &a->vae;
        printf("config:       z %" PRId64 ", encoder width %" PRId64 ", decoder width %" PRId64
               ", multipliers %" PRId64 ",%" PRId64 ",%" PRId64 ",%" PRId64 ", %d res blocks, stride 4x%dx%d%s%s\n",
               c->z_dim, c->enc_dim, c->dec_dim, c->dim_mult[0], c->dim_mult[1], c->dim_mult[2], c->dim_mult[3],
               c->num_res_blocks, c->version == 22 ? 16 : 8, c->version == 22 ? 16 : 8,
               c->has_encoder ? "" : ", no encoder", c->has_decoder ? "" : ", no decoder");
        break;
    }
    case VD_ARCH_UMT5: {
        const vd_t5_config *c = &a->t5;
        printf("config:       vocab %" PRId64 ", d_model %" PRId64 ", heads %" PRId64 " x %" PRId64 ", d_ff %" PRId64
               ", layers %" PRId64 ", %" PRId64 " position buckets, tokenizer %s\n",
               c->vocab, c->d_model, c->heads, c->d_kv, c->d_ff, c->layers, c->buckets,
               c->has_tokenizer ? "included (spiece_model)" : "not included");
        break;
    }
    default: break;
    }
}

static void print_tensor(const vd_weight *w)
{
    char shape[96];
    printf("  %-64s %-8s %-22s %12zu", w->name, vd_dtype_name(w->tensor.dtype),
           vd_shape_str(&w->tensor, shape, sizeof shape), w->nbytes);
    if (w->tensor.scale != 1.0f)
        printf("  scale %.6g", (double)w->tensor.scale);
    if (strcmp(w->name, w->file_name) != 0)
        printf("  (stored as %s)", w->file_name);
    printf("\n");
}

int vd_cmd_inspect(int argc, char **argv)
{
    vd_args a;
    vd_args_init(&a, "vdiff inspect", argc, argv);
    const char *path = NULL;
    bool list = false, meta = false, opt;
    const char *s;
    while ((s = vd_args_next(&a, &opt))) {
        if (!opt) {
            if (path)
                return vd_args_error(&a, "more than one FILE given ('%s' and '%s')", path, s);
            path = s;
        } else if (vd_args_is(&a, "--help") || vd_args_is(&a, "-h")) {
            fputs(inspect_help, stdout);
            return 0;
        } else if (vd_args_is(&a, "--tensors")) {
            list = true;
        } else if (vd_args_is(&a, "--metadata")) {
            meta = true;
        } else {
            return vd_args_error(&a, "unknown option %s", s);
        }
    }
    if (!path)
        return vd_args_error(&a, "no FILE given");

    vd_weights *w;
    if (vd_weights_open(path, &w) != VD_OK)
        return vd_tool_fail(a.cmd, NULL);
    size_t n = vd_weights_count(w);
    printf("file:         %s (%s, %.1f MB)\n", path, vd_weights_format(w) == VD_FORMAT_GGUF ? "GGUF" : "safetensors",
           (double)vd_weights_file_size(w) / 1e6);
    printf("storage:      %s\n", vd_weights_quant_layout(w));

    /* bytes by dtype */
    size_t bytes[VD_DTYPE_COUNT] = {0}, count[VD_DTYPE_COUNT] = {0};
    for (size_t i = 0; i < n; i++) {
        const vd_weight *x = vd_weights_at(w, i);
        bytes[x->tensor.dtype] += x->nbytes;
        count[x->tensor.dtype]++;
    }
    printf("dtypes:      ");
    for (int d = 0; d < VD_DTYPE_COUNT; d++)
        if (count[d])
            printf(" %s %zu tensors %.2f MB;", vd_dtype_name((vd_dtype)d), count[d], (double)bytes[d] / 1e6);
    printf("\n");

    vd_arch_info info;
    vd_status st = vd_arch_detect(w, &info);
    int rc = 0;
    if (st == VD_OK) {
        printf("architecture: %s (%s)\n", info.name, info.id);
        print_config(&info);
        print_count("parameters:   ", (double)info.params);
        printf(" (%" PRId64 ") in %" PRId64 " tensors", info.params, info.tensors);
        if (info.extra)
            printf("; %" PRId64 " more tensors not used by the architecture", info.extra);
        printf("\n");
    } else {
        rc = vd_tool_fail(a.cmd, path);
        printf("architecture: unknown (%zu tensors)\n", n);
    }
    if (meta) {
        printf("metadata (%zu):\n", vd_weights_meta_count(w));
        for (size_t i = 0; i < vd_weights_meta_count(w); i++) {
            const vd_meta_entry *m = vd_weights_meta_at(w, i);
            printf("  %s = %.200s%s\n", m->key, m->value, strlen(m->value) > 200 ? "..." : "");
        }
    }
    if (list) {
        printf("tensors (%zu):\n", n);
        for (size_t i = 0; i < n; i++)
            print_tensor(vd_weights_at(w, i));
    }
    vd_weights_close(w);
    return rc;
}

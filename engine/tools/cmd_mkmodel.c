/* vdiff mkmodel: random-weight checkpoints with the real names and shapes,
 * for tests (tiny) and benchmarks (full size). */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "core/mapped_file.h"
#include "tools/args.h"
#include "tools/commands.h"
#include "tools/model_export.h"
#include "tools/random_weights.h"
#include "vd_config.h"

static const char *const mkmodel_help =
    "usage: vdiff mkmodel --arch ARCH [--preset P] [size options] --dtype TYPE [--seed N] -o FILE\n\n"
    "Write a model with random weights and the real tensor names and shapes.  The\n"
    "format follows FILE's extension: .safetensors or .gguf.\n\n"
    "  --arch ARCH        wan21-t2v | wan22-t2v | wan21-i2v | wan21-flf2v | wan22-i2v |\n"
    "                     wan22-ti2v | wan-vae | wan22-vae | umt5\n"
    "  --preset P         tiny | 1.3b | 14b | 5b (DiTs), tiny | default (VAEs),\n"
    "                     tiny | xxl (umt5); default: the architecture's release size\n"
    "  --dtype TYPE       f32 | f16 | bf16 | fp8 | fp8-scaled (safetensors)\n"
    "                     q8_0 | q5_0 | q5_1 | q4_0 | q4_1 | q2_k | q3_k | q4_k | q4_k_m |\n"
    "                     q5_k | q5_k_m | q6_k | f32 | f16 | bf16 (gguf); default f32\n"
    "  --fp8-layout L     legacy (scaled_fp8 + .scale_weight, default) | comfy-quant\n"
    "                     (.weight_scale + .comfy_quant)\n"
    "  --seed N           random seed (default 0); the same seed gives the same file\n"
    "  -o, --output FILE  where to write (written to FILE.part, renamed when complete)\n"
    "  --threads N        worker threads (default: all cores)\n"
    "  --verbose          one line per tensor\n\n"
    "DiT sizes:  --dim N --ffn N --layers N --in-dim N --out-dim N --text-dim N --freq-dim N\n"
    "            --img-dim N (the head dimension is 128, so --dim must be a multiple of 128)\n"
    "VAE sizes:  --base-dim N (both) --enc-dim N --dec-dim N --z-dim N --no-encoder --no-decoder\n"
    "umT5 sizes: --vocab N --d-model N --heads N --d-kv N --d-ff N --layers N --buckets N\n"
    "            --tokenizer FILE (embed a SentencePiece .model as the spiece_model tensor)\n\n"
    "examples:\n"
    "  vdiff mkmodel --arch wan21-t2v --preset tiny --dtype q8_0 -o t.gguf\n"
    "  vdiff mkmodel --arch wan21-t2v --preset 14b --dtype fp8-scaled -o wan14b_fp8.safetensors\n";

static vd_file_format format_of(const char *path)
{
    size_t n = strlen(path);
    return (n >= 5 && strcmp(path + n - 5, ".gguf") == 0) ? VD_FORMAT_GGUF : VD_FORMAT_SAFETENSORS;
}

static const char *gguf_arch_name(vd_arch a)
{
    return a == VD_ARCH_WAN_DIT ? "wan" : (a == VD_ARCH_UMT5 ? "t5encoder" : "wan_vae");
}

int vd_cmd_mkmodel(int argc, char **argv)
{
    vd_args a;
    vd_args_init(&a, "vdiff mkmodel", argc, argv);
    const char *arch_id = NULL, *preset = NULL, *dtype = "f32", *out = NULL, *tokenizer = NULL, *layout = "legacy";
    uint64_t seed = 0;
    int64_t threads = 0;
    bool verbose = false;
    /* size overrides, -1 = unset */
    int64_t dim = -1, ffn = -1, layers = -1, in_dim = -1, out_dim = -1, text_dim = -1, freq_dim = -1, img_dim = -1;
    int64_t base = -1, enc = -1, dec = -1, zdim = -1, vocab = -1, dmodel = -1, heads = -1, dkv = -1, dff = -1,
            buckets = -1;
    bool no_encoder = false, no_decoder = false, opt;
    const char *s;
    const int64_t big = INT64_C(1) << 20;
    while ((s = vd_args_next(&a, &opt))) {
        if (!opt)
            return vd_args_error(&a, "unexpected argument '%s'", s);
        bool ok = true;
        if (vd_args_is(&a, "--help") || vd_args_is(&a, "-h")) {
            fputs(mkmodel_help, stdout);
            return 0;
        } else if (vd_args_is(&a, "--arch"))
            ok = (arch_id = vd_args_value(&a)) != NULL;
        else if (vd_args_is(&a, "--preset"))
            ok = (preset = vd_args_value(&a)) != NULL;
        else if (vd_args_is(&a, "--dtype"))
            ok = (dtype = vd_args_value(&a)) != NULL;
        else if (vd_args_is(&a, "--fp8-layout"))
            ok = (layout = vd_args_value(&a)) != NULL;
        else if (vd_args_is(&a, "-o") || vd_args_is(&a, "--output"))
            ok = (out = vd_args_value(&a)) != NULL;
        else if (vd_args_is(&a, "--tokenizer"))
            ok = (tokenizer = vd_args_value(&a)) != NULL;
        else if (vd_args_is(&a, "--seed"))
            ok = vd_args_uint64(&a, &seed);
        else if (vd_args_is(&a, "--threads"))
            ok = vd_args_int(&a, 0, 1024, &threads);
        else if (vd_args_is(&a, "--verbose"))
            verbose = true;
        else if (vd_args_is(&a, "--dim"))
            ok = vd_args_int(&a, 1, big, &dim);
        else if (vd_args_is(&a, "--ffn"))
            ok = vd_args_int(&a, 1, big, &ffn);
        else if (vd_args_is(&a, "--layers"))
            ok = vd_args_int(&a, 1, 1000, &layers);
        else if (vd_args_is(&a, "--in-dim"))
            ok = vd_args_int(&a, 1, big, &in_dim);
        else if (vd_args_is(&a, "--out-dim"))
            ok = vd_args_int(&a, 1, big, &out_dim);
        else if (vd_args_is(&a, "--text-dim"))
            ok = vd_args_int(&a, 1, big, &text_dim);
        else if (vd_args_is(&a, "--freq-dim"))
            ok = vd_args_int(&a, 2, big, &freq_dim);
        else if (vd_args_is(&a, "--img-dim"))
            ok = vd_args_int(&a, 1, big, &img_dim);
        else if (vd_args_is(&a, "--base-dim"))
            ok = vd_args_int(&a, 1, big, &base);
        else if (vd_args_is(&a, "--enc-dim"))
            ok = vd_args_int(&a, 1, big, &enc);
        else if (vd_args_is(&a, "--dec-dim"))
            ok = vd_args_int(&a, 1, big, &dec);
        else if (vd_args_is(&a, "--z-dim"))
            ok = vd_args_int(&a, 1, big, &zdim);
        else if (vd_args_is(&a, "--no-encoder"))
            no_encoder = true;
        else if (vd_args_is(&a, "--no-decoder"))
            no_decoder = true;
        else if (vd_args_is(&a, "--vocab"))
            ok = vd_args_int(&a, 1, INT64_C(1) << 24, &vocab);
        else if (vd_args_is(&a, "--d-model"))
            ok = vd_args_int(&a, 1, big, &dmodel);
        else if (vd_args_is(&a, "--heads"))
            ok = vd_args_int(&a, 1, 4096, &heads);
        else if (vd_args_is(&a, "--d-kv"))
            ok = vd_args_int(&a, 1, big, &dkv);
        else if (vd_args_is(&a, "--d-ff"))
            ok = vd_args_int(&a, 1, big, &dff);
        else if (vd_args_is(&a, "--buckets"))
            ok = vd_args_int(&a, 2, 4096, &buckets);
        else
            return vd_args_error(&a, "unknown option %s", s);
        if (!ok)
            return 2;
    }
    if (!arch_id)
        return vd_args_error(&a, "--arch is required (one of %s)", vd_arch_ids());
    if (!out)
        return vd_args_error(&a, "-o FILE is required");

    vd_arch_info info;
    if (vd_arch_from_preset(arch_id, preset, &info) != VD_OK)
        return vd_tool_fail(a.cmd, NULL);
#define SET(field, v) \
    if ((v) >= 0)     \
    field = (v)
    switch (info.arch) {
    case VD_ARCH_WAN_DIT:
        if (heads >= 0)
            return vd_args_error(&a, "--heads: a Wan DiT has dim/128 heads; set --dim instead");
        SET(info.dit.dim, dim);
        SET(info.dit.ffn_dim, ffn);
        SET(info.dit.layers, layers);
        SET(info.dit.in_dim, in_dim);
        SET(info.dit.out_dim, out_dim);
        SET(info.dit.text_dim, text_dim);
        SET(info.dit.freq_dim, freq_dim);
        if (img_dim >= 0) {
            if (!info.dit.img_dim)
                return vd_args_error(&a, "--img-dim: %s has no image branch", arch_id);
            info.dit.img_dim = img_dim;
        }
        break;
    case VD_ARCH_WAN_VAE:
        SET(info.vae.enc_dim, base);
        SET(info.vae.dec_dim, base);
        SET(info.vae.enc_dim, enc);
        SET(info.vae.dec_dim, dec);
        SET(info.vae.z_dim, zdim);
        if (no_encoder)
            info.vae.has_encoder = false;
        if (no_decoder)
            info.vae.has_decoder = false;
        break;
    case VD_ARCH_UMT5:
        SET(info.t5.vocab, vocab);
        SET(info.t5.d_model, dmodel);
        SET(info.t5.heads, heads);
        SET(info.t5.d_kv, dkv);
        SET(info.t5.d_ff, dff);
        SET(info.t5.layers, layers);
        SET(info.t5.buckets, buckets);
        break;
    default: break;
    }
#undef SET
    if (tokenizer && info.arch != VD_ARCH_UMT5)
        return vd_args_error(&a, "--tokenizer is for --arch umt5");
    if (vd_arch_finalize(&info) != VD_OK)
        return vd_tool_fail(a.cmd, NULL);

    vd_storage_policy policy;
    if (vd_storage_policy_parse(dtype, format_of(out), &policy) != VD_OK)
        return vd_tool_fail(a.cmd, "--dtype");
    if (strcmp(layout, "legacy") == 0)
        policy.fp8_layout = VD_FP8_LEGACY;
    else if (strcmp(layout, "comfy-quant") == 0)
        policy.fp8_layout = VD_FP8_COMFY_QUANT;
    else
        return vd_args_error(&a, "--fp8-layout: '%s' is not legacy or comfy-quant", layout);

    vd_mapped_file tok = {0};
    vd_export_extra extra;
    size_t n_extras = 0;
    if (tokenizer) {
        if (vd_mapped_file_open(tokenizer, &tok) != VD_OK)
            return vd_tool_fail(a.cmd, "--tokenizer");
        if (tok.size == 0) {
            vd_mapped_file_close(&tok);
            fprintf(stderr, "%s: --tokenizer: '%s' is empty\n", a.cmd, tokenizer);
            return 1;
        }
        extra = (vd_export_extra){.name = "spiece_model", .dtype = VD_U8, .ndim = 1,
                                  .shape = {(int64_t)tok.size}, .data = tok.data};
        n_extras = 1;
        info.t5.has_tokenizer = true;
    }

    vd_threadpool *pool = NULL;
    if (vd_threadpool_new((int)threads, &pool) != VD_OK) {
        vd_mapped_file_close(&tok);
        return vd_tool_fail(a.cmd, NULL);
    }
    char seed_str[32];
    snprintf(seed_str, sizeof seed_str, "%" PRIu64, seed);
    const char *meta[] = {
        "general.architecture", gguf_arch_name(info.arch),
        "vdiff.generator", "vdiff mkmodel " VD_VERSION,
        "vdiff.arch", info.id,
        "vdiff.random_weights", "true",
        "vdiff.seed", seed_str,
        "vdiff.storage", policy.name,
    };
    /* Tiny DiTs say which small clip to make by default, so pipelines and
     * vdiffsrc fixate to something a CPU renders in seconds. */
    bool tiny_dit = info.arch == VD_ARCH_WAN_DIT && preset && strcmp(preset, "tiny") == 0;
    const char *tiny_meta[] = {
        "vdiff.default_width", "256", "vdiff.default_height", "160",
        "vdiff.default_frames", "17", "vdiff.default_steps", "8",
    };
    const char *all_meta[sizeof meta / sizeof meta[0] + sizeof tiny_meta / sizeof tiny_meta[0]];
    size_t n_meta = sizeof meta / sizeof meta[0] / 2;
    memcpy(all_meta, meta, sizeof meta);
    if (tiny_dit) {
        memcpy(all_meta + 2 * n_meta, tiny_meta, sizeof tiny_meta);
        n_meta += sizeof tiny_meta / sizeof tiny_meta[0] / 2;
    }
    vd_random_weights src = {seed};
    vd_export_request req = {
        .path = out, .arch = &info, .policy = &policy, .values = vd_random_weight_values, .ctx = &src,
        .extras = n_extras ? &extra : NULL, .n_extras = n_extras,
        .meta = policy.format == VD_FORMAT_GGUF ? all_meta : all_meta + 2,
        .n_meta = policy.format == VD_FORMAT_GGUF ? n_meta : n_meta - 1,
        .pool = pool, .verbose = verbose,
    };
    vd_status st = vd_export_model(&req);
    vd_threadpool_free(pool);
    vd_mapped_file_close(&tok);
    if (st != VD_OK)
        return vd_tool_fail(a.cmd, NULL);
    printf("wrote %s: %s, %" PRId64 " parameters in %" PRId64 " tensors, %s, seed %" PRIu64 "\n", out, info.name,
           info.params, info.tensors, policy.name, seed);
    return 0;
}

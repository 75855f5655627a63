/* Architecture detection and configuration inference.
 * - Shape-only weight sets (no bytes) of the real 1.3B, 14B, I2V, FLF2V, 5B,
 *   both VAEs and umT5-XXL are detected with the configuration and the
 *   parameter and tensor counts of wan-spec.md §1.2, §2.7 and §3.
 * - Tiny sizes likewise, with overridden dimensions.
 * - Missing tensors, wrong shapes and unknown files are clear errors. */
#include "io/weights.h"
#include "models/arch.h"
#include "test_util.h"

typedef struct builder {
    vd_weights *w;
    const char *skip;     /* leave this tensor out */
    const char *reshape;  /* give this tensor a wrong shape */
} builder;

static vd_status add_param(void *ctx, const vd_param_desc *p)
{
    builder *b = ctx;
    if (b->skip && strcmp(p->name, b->skip) == 0)
        return VD_OK;
    int64_t shape[5];
    memcpy(shape, p->shape, sizeof shape);
    if (b->reshape && strcmp(p->name, b->reshape) == 0)
        shape[0] += 1;
    return vd_weights_add(b->w, p->name, VD_BF16, p->ndim, shape, NULL);
}

/* A shape-only set for a preset (with the named tensor dropped or reshaped). */
static vd_weights *shape_only(const vd_arch_info *info, const char *skip, const char *reshape)
{
    builder b = {NULL, skip, reshape};
    CHECK_OK(vd_weights_new(&b.w));
    CHECK_OK(vd_arch_inventory(info, add_param, &b));
    return b.w;
}

static void expect(const char *arch, const char *preset, const char *id, int64_t params, int64_t tensors)
{
    vd_arch_info want, got;
    CHECK_OK(vd_arch_from_preset(arch, preset, &want));
    CHECKF(want.params == params && want.tensors == tensors, "%s %s: inventory %lld params %lld tensors", arch,
           preset ? preset : "", (long long)want.params, (long long)want.tensors);
    vd_weights *w = shape_only(&want, NULL, NULL);
    CHECK_OK(vd_arch_detect(w, &got));
    CHECKF(strcmp(got.id, id) == 0, "%s detected as %s", arch, got.id);
    CHECK(got.params == params && got.tensors == tensors && got.extra == 0);
    CHECK(memcmp(&got.dit, &want.dit, sizeof got.dit) == 0);
    CHECK(memcmp(&got.vae, &want.vae, sizeof got.vae) == 0);
    CHECK(memcmp(&got.t5, &want.t5, sizeof got.t5) == 0);
    vd_weights_close(w);
}

int main(void)
{
    /* real sizes: parameter and tensor counts from wan-spec.md */
    expect("wan21-t2v", "1.3b", "wan21-t2v", 1418996800, 825);
    expect("wan21-t2v", "14b", "wan21-t2v", 14288491584, 1095);
    expect("wan22-i2v", "14b", "wan22-i2v", 14288901184, 1095);
    expect("wan21-i2v", "14b", "wan21-i2v", 16394878784, 1303);
    expect("wan21-flf2v", "14b", "wan21-flf2v", 16395536704, 1304);
    expect("wan22-ti2v", "5b", "wan22-ti2v", 4999787712, 825);
    expect("wan-vae", NULL, "wan-vae", 126892531, 194);
    expect("wan22-vae", NULL, "wan22-vae", 704688668, 196);
    expect("umt5", "xxl", "umt5", 5680910336, 242);

    /* configurations in detail */
    vd_arch_info a;
    CHECK_OK(vd_arch_from_preset("wan21-t2v", "14b", &a));
    CHECK(a.dit.dim == 5120 && a.dit.ffn_dim == 13824 && a.dit.heads == 40 && a.dit.layers == 40 &&
          a.dit.in_dim == 16 && a.dit.out_dim == 16 && a.dit.text_dim == 4096 && a.dit.freq_dim == 256);
    CHECK_OK(vd_arch_from_preset("wan22-ti2v", "5b", &a));
    CHECK(a.dit.dim == 3072 && a.dit.heads == 24 && a.dit.in_dim == 48 && a.dit.out_dim == 48);
    CHECK_OK(vd_arch_from_preset("umt5", "xxl", &a));
    CHECK(a.t5.vocab == 256384 && a.t5.d_model == 4096 && a.t5.heads == 64 && a.t5.d_kv == 64 &&
          a.t5.d_ff == 10240 && a.t5.layers == 24 && a.t5.buckets == 32);

    /* tiny sizes of every architecture, and a hand-sized DiT */
    const char *tiny[][2] = {{"wan21-t2v", "wan21-t2v"}, {"wan21-i2v", "wan21-i2v"}, {"wan21-flf2v", "wan21-flf2v"},
                             {"wan22-i2v", "wan22-i2v"}, {"wan22-ti2v", "wan22-ti2v"}, {"wan-vae", "wan-vae"},
                             {"wan22-vae", "wan22-vae"}, {"umt5", "umt5"}};
    for (size_t i = 0; i < sizeof tiny / sizeof tiny[0]; i++) {
        vd_arch_info want, got;
        CHECK_OK(vd_arch_from_preset(tiny[i][0], "tiny", &want));
        vd_weights *w = shape_only(&want, NULL, NULL);
        CHECK_OK(vd_arch_detect(w, &got));
        CHECKF(strcmp(got.id, tiny[i][1]) == 0 && got.params == want.params, "tiny %s", tiny[i][0]);
        vd_weights_close(w);
    }
    vd_arch_info custom, got;
    CHECK_OK(vd_arch_from_preset("wan21-t2v", "tiny", &custom));
    custom.dit.dim = 384, custom.dit.ffn_dim = 1000, custom.dit.layers = 3, custom.dit.text_dim = 48;
    CHECK_OK(vd_arch_finalize(&custom));
    vd_weights *w = shape_only(&custom, NULL, NULL);
    CHECK_OK(vd_arch_detect(w, &got));
    CHECK(got.dit.dim == 384 && got.dit.heads == 3 && got.dit.ffn_dim == 1000 && got.dit.layers == 3 &&
          got.dit.text_dim == 48);
    vd_weights_close(w);

    /* an encoder-only and a decoder-only VAE */
    vd_arch_info vae;
    CHECK_OK(vd_arch_from_preset("wan-vae", NULL, &vae));
    vae.vae.has_encoder = false;
    CHECK_OK(vd_arch_finalize(&vae));
    w = shape_only(&vae, NULL, NULL);
    CHECK_OK(vd_arch_detect(w, &got));
    CHECK(got.vae.has_decoder && !got.vae.has_encoder && got.params == 73295603);
    vd_weights_close(w);

    /* missing and misshapen tensors */
    CHECK_OK(vd_arch_from_preset("wan21-t2v", "1.3b", &a));
    w = shape_only(&a, "blocks.17.cross_attn.v.bias", NULL);
    CHECK_FAILS(vd_arch_detect(w, &got), VD_ERR_FORMAT);
    CHECK(strstr(vd_last_error(), "blocks.17.cross_attn.v.bias") != NULL);
    vd_weights_close(w);
    w = shape_only(&a, NULL, "blocks.3.ffn.2.weight");
    CHECK_FAILS(vd_arch_detect(w, &got), VD_ERR_FORMAT);
    CHECK(strstr(vd_last_error(), "blocks.3.ffn.2.weight") != NULL);
    vd_weights_close(w);
    w = shape_only(&a, "head.head.weight", NULL);
    CHECK_FAILS(vd_arch_detect(w, &got), VD_ERR_FORMAT);
    vd_weights_close(w);
    CHECK_OK(vd_arch_from_preset("umt5", "xxl", &a));
    w = shape_only(&a, "encoder.final_layer_norm.weight", NULL);
    CHECK_FAILS(vd_arch_detect(w, &got), VD_ERR_FORMAT);
    vd_weights_close(w);
    CHECK_OK(vd_arch_from_preset("wan-vae", NULL, &a));
    w = shape_only(&a, NULL, "decoder.upsamples.7.time_conv.weight");
    CHECK_FAILS(vd_arch_detect(w, &got), VD_ERR_FORMAT);
    vd_weights_close(w);

    /* unknown files: a set with unrelated tensors, an empty set */
    CHECK_OK(vd_weights_new(&w));
    int64_t s2[2] = {4, 4};
    CHECK_OK(vd_weights_add(w, "model.embed_tokens.weight", VD_F16, 2, s2, NULL));
    CHECK_FAILS(vd_arch_detect(w, &got), VD_ERR_UNSUPPORTED);
    CHECK(strstr(vd_last_error(), "model.embed_tokens.weight") != NULL);
    vd_weights_close(w);
    CHECK_OK(vd_weights_new(&w));
    CHECK_FAILS(vd_arch_detect(w, &got), VD_ERR_UNSUPPORTED);
    vd_weights_close(w);
    /* a DiT whose channels match no variant */
    CHECK_OK(vd_arch_from_preset("wan21-t2v", "tiny", &custom));
    custom.dit.in_dim = 20;
    CHECK_OK(vd_arch_finalize(&custom));
    w = shape_only(&custom, NULL, NULL);
    CHECK_FAILS(vd_arch_detect(w, &got), VD_ERR_UNSUPPORTED);
    vd_weights_close(w);

    /* impossible configurations */
    CHECK_OK(vd_arch_from_preset("wan21-t2v", "tiny", &custom));
    custom.dit.dim = 200; /* not a multiple of the head dim */
    CHECK_FAILS(vd_arch_finalize(&custom), VD_ERR_INVALID_ARGUMENT);
    CHECK_FAILS(vd_arch_from_preset("wan21-t2v", "5b", &custom), VD_ERR_INVALID_ARGUMENT);
    CHECK_FAILS(vd_arch_from_preset("sdxl", NULL, &custom), VD_ERR_INVALID_ARGUMENT);
    return test_finish("arch");
}

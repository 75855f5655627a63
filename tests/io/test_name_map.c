/* Tensor-name maps: each scheme's rules, scheme detection, the diffusers
 * map checked against diffusers' own forward renaming, and files opened
 * through the maps. */
#include "io/model_writer.h"
#include "io/name_map.h"
#include "io_test_util.h"

typedef struct pair {
    const char *from, *to;
} pair;

static void check_pairs(vd_name_scheme scheme, const pair *p, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        char *got = vd_name_map_one(scheme, p[i].from);
        CHECKF(got && strcmp(got, p[i].to) == 0, "%s: %s -> %s, expected %s", vd_name_scheme_name(scheme), p[i].from,
               got ? got : "(null)", p[i].to);
        free(got);
    }
}

static void test_diffusers_rules(void)
{
    const pair p[] = {
        {"condition_embedder.time_embedder.linear_1.weight", "time_embedding.0.weight"},
        {"condition_embedder.time_embedder.linear_2.bias", "time_embedding.2.bias"},
        {"condition_embedder.text_embedder.linear_1.weight", "text_embedding.0.weight"},
        {"condition_embedder.text_embedder.linear_2.bias", "text_embedding.2.bias"},
        {"condition_embedder.time_proj.weight", "time_projection.1.weight"},
        {"condition_embedder.image_embedder.norm1.weight", "img_emb.proj.0.weight"},
        {"condition_embedder.image_embedder.ff.net.0.proj.weight", "img_emb.proj.1.weight"},
        {"condition_embedder.image_embedder.ff.net.2.bias", "img_emb.proj.3.bias"},
        {"condition_embedder.image_embedder.norm2.bias", "img_emb.proj.4.bias"},
        {"condition_embedder.image_embedder.pos_embed", "img_emb.emb_pos"},
        {"scale_shift_table", "head.modulation"},
        {"proj_out.weight", "head.head.weight"},
        {"proj_out.bias", "head.head.bias"},
        {"patch_embedding.weight", "patch_embedding.weight"},
        {"blocks.12.scale_shift_table", "blocks.12.modulation"},
        {"blocks.0.attn1.to_q.weight", "blocks.0.self_attn.q.weight"},
        {"blocks.0.attn1.to_k.bias", "blocks.0.self_attn.k.bias"},
        {"blocks.0.attn1.to_v.weight", "blocks.0.self_attn.v.weight"},
        {"blocks.0.attn1.to_out.0.weight", "blocks.0.self_attn.o.weight"},
        {"blocks.0.attn1.norm_q.weight", "blocks.0.self_attn.norm_q.weight"},
        {"blocks.0.attn1.norm_k.weight", "blocks.0.self_attn.norm_k.weight"},
        {"blocks.39.attn2.to_q.weight", "blocks.39.cross_attn.q.weight"},
        {"blocks.39.attn2.to_k.weight", "blocks.39.cross_attn.k.weight"},
        {"blocks.39.attn2.to_v.bias", "blocks.39.cross_attn.v.bias"},
        {"blocks.39.attn2.to_out.0.bias", "blocks.39.cross_attn.o.bias"},
        {"blocks.39.attn2.norm_q.weight", "blocks.39.cross_attn.norm_q.weight"},
        {"blocks.39.attn2.norm_k.weight", "blocks.39.cross_attn.norm_k.weight"},
        {"blocks.7.attn2.add_k_proj.weight", "blocks.7.cross_attn.k_img.weight"},
        {"blocks.7.attn2.add_v_proj.bias", "blocks.7.cross_attn.v_img.bias"},
        {"blocks.7.attn2.norm_added_k.weight", "blocks.7.cross_attn.norm_k_img.weight"},
        {"blocks.3.norm2.weight", "blocks.3.norm3.weight"},
        {"blocks.3.norm2.bias", "blocks.3.norm3.bias"},
        {"blocks.3.norm3.weight", "blocks.3.norm2.weight"},
        {"blocks.3.ffn.net.0.proj.weight", "blocks.3.ffn.0.weight"},
        {"blocks.3.ffn.net.2.bias", "blocks.3.ffn.2.bias"},
        /* unknown names pass through */
        {"blocks.3.something.weight", "blocks.3.something.weight"},
        {"proj_outer.weight", "proj_outer.weight"},
        {"blocks.x.attn1.to_q.weight", "blocks.x.attn1.to_q.weight"},
    };
    check_pairs(VD_NAMES_DIFFUSERS_WAN, p, sizeof p / sizeof p[0]);
}

static void test_t5_rules(void)
{
    const pair gguf[] = {
        {"token_embd.weight", "shared.weight"},
        {"enc.output_norm.weight", "encoder.final_layer_norm.weight"},
        {"enc.blk.0.attn_q.weight", "encoder.block.0.layer.0.SelfAttention.q.weight"},
        {"enc.blk.5.attn_k.weight", "encoder.block.5.layer.0.SelfAttention.k.weight"},
        {"enc.blk.5.attn_v.weight", "encoder.block.5.layer.0.SelfAttention.v.weight"},
        {"enc.blk.23.attn_o.weight", "encoder.block.23.layer.0.SelfAttention.o.weight"},
        {"enc.blk.23.attn_rel_b.weight", "encoder.block.23.layer.0.SelfAttention.relative_attention_bias.weight"},
        {"enc.blk.1.attn_norm.weight", "encoder.block.1.layer.0.layer_norm.weight"},
        {"enc.blk.1.ffn_norm.weight", "encoder.block.1.layer.1.layer_norm.weight"},
        {"enc.blk.1.ffn_gate.weight", "encoder.block.1.layer.1.DenseReluDense.wi_0.weight"},
        {"enc.blk.1.ffn_up.weight", "encoder.block.1.layer.1.DenseReluDense.wi_1.weight"},
        {"enc.blk.1.ffn_down.weight", "encoder.block.1.layer.1.DenseReluDense.wo.weight"},
        {"spiece_model", "spiece_model"},
        {"dec.blk.0.attn_q.weight", "dec.blk.0.attn_q.weight"},
    };
    check_pairs(VD_NAMES_T5_GGUF, gguf, sizeof gguf / sizeof gguf[0]);
    const pair wan[] = {
        {"token_embedding.weight", "shared.weight"},
        {"norm.weight", "encoder.final_layer_norm.weight"},
        {"blocks.0.attn.q.weight", "encoder.block.0.layer.0.SelfAttention.q.weight"},
        {"blocks.0.attn.k.weight", "encoder.block.0.layer.0.SelfAttention.k.weight"},
        {"blocks.10.attn.v.weight", "encoder.block.10.layer.0.SelfAttention.v.weight"},
        {"blocks.10.attn.o.weight", "encoder.block.10.layer.0.SelfAttention.o.weight"},
        {"blocks.2.pos_embedding.embedding.weight",
         "encoder.block.2.layer.0.SelfAttention.relative_attention_bias.weight"},
        {"blocks.2.norm1.weight", "encoder.block.2.layer.0.layer_norm.weight"},
        {"blocks.2.norm2.weight", "encoder.block.2.layer.1.layer_norm.weight"},
        {"blocks.2.ffn.gate.0.weight", "encoder.block.2.layer.1.DenseReluDense.wi_0.weight"},
        {"blocks.2.ffn.fc1.weight", "encoder.block.2.layer.1.DenseReluDense.wi_1.weight"},
        {"blocks.2.ffn.fc2.weight", "encoder.block.2.layer.1.DenseReluDense.wo.weight"},
        {"spiece_model", "spiece_model"},
        {"normal.weight", "normal.weight"},
    };
    check_pairs(VD_NAMES_T5_WAN, wan, sizeof wan / sizeof wan[0]);
}

static void test_prefix(void)
{
    CHECK(strcmp(vd_name_strip_prefix("model.diffusion_model.blocks.0.ffn.0.weight"), "blocks.0.ffn.0.weight") == 0);
    CHECK(strcmp(vd_name_strip_prefix("diffusion_model.head.modulation"), "head.modulation") == 0);
    CHECK(strcmp(vd_name_strip_prefix("blocks.0.ffn.0.weight"), "blocks.0.ffn.0.weight") == 0);
    CHECK(strcmp(vd_name_strip_prefix("model.diffusion_model."), "model.diffusion_model.") == 0);
    CHECK(strcmp(vd_name_strip_prefix("first_stage_model.x"), "first_stage_model.x") == 0);
}

/* The canonical Wan DiT names of one block of an I2V/FLF2V model. */
static size_t wan_dit_names(char names[][96])
{
    static const char *top[] = {
        "patch_embedding.weight", "patch_embedding.bias", "text_embedding.0.weight", "text_embedding.0.bias",
        "text_embedding.2.weight", "text_embedding.2.bias", "time_embedding.0.weight", "time_embedding.0.bias",
        "time_embedding.2.weight", "time_embedding.2.bias", "time_projection.1.weight", "time_projection.1.bias",
        "head.modulation", "head.head.weight", "head.head.bias", "img_emb.proj.0.weight", "img_emb.proj.0.bias",
        "img_emb.proj.1.weight", "img_emb.proj.1.bias", "img_emb.proj.3.weight", "img_emb.proj.3.bias",
        "img_emb.proj.4.weight", "img_emb.proj.4.bias", "img_emb.emb_pos",
    };
    static const char *block[] = {
        "modulation", "self_attn.q.weight", "self_attn.q.bias", "self_attn.k.weight", "self_attn.k.bias",
        "self_attn.v.weight", "self_attn.v.bias", "self_attn.o.weight", "self_attn.o.bias", "self_attn.norm_q.weight",
        "self_attn.norm_k.weight", "norm3.weight", "norm3.bias", "cross_attn.q.weight", "cross_attn.q.bias",
        "cross_attn.k.weight", "cross_attn.k.bias", "cross_attn.v.weight", "cross_attn.v.bias", "cross_attn.o.weight",
        "cross_attn.o.bias", "cross_attn.norm_q.weight", "cross_attn.norm_k.weight", "cross_attn.k_img.weight",
        "cross_attn.k_img.bias", "cross_attn.v_img.weight", "cross_attn.v_img.bias", "cross_attn.norm_k_img.weight",
        "ffn.0.weight", "ffn.0.bias", "ffn.2.weight", "ffn.2.bias",
    };
    size_t n = 0;
    for (size_t i = 0; i < sizeof top / sizeof top[0]; i++)
        snprintf(names[n++], 96, "%s", top[i]);
    for (int b = 0; b < 2; b++)
        for (size_t i = 0; i < sizeof block / sizeof block[0]; i++)
            snprintf(names[n++], 96, "blocks.%d.%s", b * 11, block[i]);
    return n;
}

/* Python's str.replace, as diffusers' converter applies its dict. */
static void replace_all(char *s, size_t cap, const char *from, const char *to)
{
    char out[256];
    size_t o = 0, nf = strlen(from), nt = strlen(to);
    for (const char *p = s; *p;) {
        if (strncmp(p, from, nf) == 0) {
            memcpy(out + o, to, nt);
            o += nt;
            p += nf;
        } else {
            out[o++] = *p++;
        }
    }
    out[o] = '\0';
    snprintf(s, cap, "%s", out);
}

/* diffusers' scripts/convert_wan_to_diffusers.py TRANSFORMER_KEYS_RENAME_DICT,
 * applied in its order (Wan → diffusers); our map must invert it. */
static void to_diffusers(char *s, size_t cap)
{
    static const pair forward[] = {
        {"time_embedding.0", "condition_embedder.time_embedder.linear_1"},
        {"time_embedding.2", "condition_embedder.time_embedder.linear_2"},
        {"text_embedding.0", "condition_embedder.text_embedder.linear_1"},
        {"text_embedding.2", "condition_embedder.text_embedder.linear_2"},
        {"time_projection.1", "condition_embedder.time_proj"},
        {"head.modulation", "scale_shift_table"},
        {"head.head", "proj_out"},
        {"modulation", "scale_shift_table"},
        {"ffn.0", "ffn.net.0.proj"},
        {"ffn.2", "ffn.net.2"},
        {"norm2", "norm__placeholder"},
        {"norm3", "norm2"},
        {"norm__placeholder", "norm3"},
        {"img_emb.proj.0", "condition_embedder.image_embedder.norm1"},
        {"img_emb.proj.1", "condition_embedder.image_embedder.ff.net.0.proj"},
        {"img_emb.proj.3", "condition_embedder.image_embedder.ff.net.2"},
        {"img_emb.proj.4", "condition_embedder.image_embedder.norm2"},
        {"img_emb.emb_pos", "condition_embedder.image_embedder.pos_embed"},
        {"self_attn.q", "attn1.to_q"},
        {"self_attn.k", "attn1.to_k"},
        {"self_attn.v", "attn1.to_v"},
        {"self_attn.o", "attn1.to_out.0"},
        {"self_attn.norm_q", "attn1.norm_q"},
        {"self_attn.norm_k", "attn1.norm_k"},
        {"cross_attn.q", "attn2.to_q"},
        {"cross_attn.k", "attn2.to_k"},
        {"cross_attn.v", "attn2.to_v"},
        {"cross_attn.o", "attn2.to_out.0"},
        {"cross_attn.norm_q", "attn2.norm_q"},
        {"cross_attn.norm_k", "attn2.norm_k"},
        {"attn2.to_k_img", "attn2.add_k_proj"},
        {"attn2.to_v_img", "attn2.add_v_proj"},
        {"attn2.norm_k_img", "attn2.norm_added_k"},
    };
    for (size_t i = 0; i < sizeof forward / sizeof forward[0]; i++)
        replace_all(s, cap, forward[i].from, forward[i].to);
}

static void test_diffusers_inverts_reference(void)
{
    char names[128][96], diff[128][96];
    size_t n = wan_dit_names(names);
    const char *ptrs[128];
    for (size_t i = 0; i < n; i++) {
        snprintf(diff[i], 96, "%s", names[i]);
        to_diffusers(diff[i], 96);
        ptrs[i] = diff[i];
    }
    CHECK(vd_name_scheme_detect(ptrs, n) == VD_NAMES_DIFFUSERS_WAN);
    char *out[128];
    vd_name_scheme scheme;
    CHECK_OK(vd_name_map_all(ptrs, n, "mem", out, &scheme));
    CHECK(scheme == VD_NAMES_DIFFUSERS_WAN);
    for (size_t i = 0; i < n; i++) {
        CHECKF(strcmp(out[i], names[i]) == 0, "%s -> %s, expected %s", diff[i], out[i], names[i]);
        free(out[i]);
    }
    /* The canonical set itself is recognised as canonical and kept. */
    for (size_t i = 0; i < n; i++)
        ptrs[i] = names[i];
    CHECK(vd_name_scheme_detect(ptrs, n) == VD_NAMES_CANONICAL);
    CHECK_OK(vd_name_map_all(ptrs, n, "mem", out, &scheme));
    for (size_t i = 0; i < n; i++) {
        CHECK(strcmp(out[i], names[i]) == 0);
        free(out[i]);
    }
}

static void test_detection(void)
{
    const char *hf_t5[] = {"shared.weight", "encoder.block.0.layer.0.SelfAttention.q.weight", "spiece_model"};
    CHECK(vd_name_scheme_detect(hf_t5, 3) == VD_NAMES_CANONICAL);
    const char *gguf_t5[] = {"token_embd.weight", "enc.blk.0.attn_q.weight"};
    CHECK(vd_name_scheme_detect(gguf_t5, 2) == VD_NAMES_T5_GGUF);
    /* Wan T5 blocks look like DiT blocks; token_embedding decides. */
    const char *wan_t5[] = {"blocks.0.attn.q.weight", "token_embedding.weight", "norm.weight"};
    CHECK(vd_name_scheme_detect(wan_t5, 3) == VD_NAMES_T5_WAN);
    const char *wan_dit[] = {"blocks.0.self_attn.q.weight", "blocks.0.norm3.weight", "head.modulation"};
    CHECK(vd_name_scheme_detect(wan_dit, 3) == VD_NAMES_CANONICAL);
    const char *vae[] = {"decoder.conv1.weight", "decoder.upsamples.0.residual.0.gamma", "conv2.weight"};
    CHECK(vd_name_scheme_detect(vae, 3) == VD_NAMES_CANONICAL);
}

/* ---- through files ----------------------------------------------------------------- */

static void write_named(const char *path, const char *const *names, size_t n, vd_dtype dtype)
{
    vd_model_writer *w;
    CHECK_OK(vd_model_writer_open(path, VD_FORMAT_NONE, &w));
    const int64_t shape[1] = {4};
    for (size_t i = 0; i < n; i++)
        CHECK_OK(vd_model_writer_declare(w, names[i], dtype, 1, shape));
    CHECK_OK(vd_model_writer_begin(w));
    for (size_t i = 0; i < n; i++) {
        float v[4] = {(float)i, (float)i + 0.25f, -(float)i, 1.0f};
        uint8_t b[32];
        CHECK_OK(vd_dtype_from_f32(dtype, v, b, 4));
        CHECK_OK(vd_model_writer_write(w, b, 4 * (size_t)vd_dtype_info(dtype)->block_bytes));
    }
    CHECK_OK(vd_model_writer_finish(w));
}

/* The weight under `canon` holds the values written for file tensor i. */
static void check_mapped(vd_weights *w, const char *canon, const char *file_name, size_t i)
{
    const vd_weight *x = vd_weights_find(w, canon);
    CHECKF(x != NULL, "%s not found", canon);
    if (!x)
        return;
    CHECK(strcmp(x->file_name, file_name) == 0);
    float v[4];
    CHECK_OK(vd_dtype_to_f32(x->tensor.dtype, x->tensor.data, v, 4));
    CHECKF(v[0] == (float)i && v[1] == (float)i + 0.25f, "%s holds the data of another tensor", canon);
}

static void test_files(void)
{
    const char *diffusers[] = {"model.diffusion_model.blocks.0.norm2.weight", "model.diffusion_model.blocks.0.attn1.to_q.weight",
                               "model.diffusion_model.scale_shift_table", "model.diffusion_model.proj_out.weight"};
    const char *p = scratch_path("diffusers.safetensors");
    write_named(p, diffusers, 4, VD_BF16);
    vd_weights *w = NULL;
    CHECK_OK(vd_weights_open(p, &w));
    if (w) {
        CHECK(strcmp(vd_weights_name_scheme(w), "diffusers") == 0);
        check_mapped(w, "blocks.0.norm3.weight", diffusers[0], 0);
        check_mapped(w, "blocks.0.self_attn.q.weight", diffusers[1], 1);
        check_mapped(w, "head.modulation", diffusers[2], 2);
        check_mapped(w, "head.head.weight", diffusers[3], 3);
        vd_weights_close(w);
    }

    const char *t5[] = {"token_embd.weight", "enc.blk.0.attn_rel_b.weight", "enc.blk.0.ffn_gate.weight",
                        "enc.output_norm.weight"};
    p = scratch_path("t5.gguf");
    write_named(p, t5, 4, VD_F32);
    CHECK_OK(vd_weights_open(p, &w));
    if (w) {
        CHECK(strcmp(vd_weights_name_scheme(w), "t5-gguf") == 0);
        check_mapped(w, "shared.weight", t5[0], 0);
        check_mapped(w, "encoder.block.0.layer.0.SelfAttention.relative_attention_bias.weight", t5[1], 1);
        check_mapped(w, "encoder.block.0.layer.1.DenseReluDense.wi_0.weight", t5[2], 2);
        check_mapped(w, "encoder.final_layer_norm.weight", t5[3], 3);
        vd_weights_close(w);
    }

    const char *wan_t5[] = {"token_embedding.weight", "blocks.3.ffn.fc1.weight", "norm.weight", "spiece_model"};
    p = scratch_path("wan_t5.safetensors");
    write_named(p, wan_t5, 4, VD_F32);
    CHECK_OK(vd_weights_open(p, &w));
    if (w) {
        CHECK(strcmp(vd_weights_name_scheme(w), "t5-wan") == 0);
        check_mapped(w, "shared.weight", wan_t5[0], 0);
        check_mapped(w, "encoder.block.3.layer.1.DenseReluDense.wi_1.weight", wan_t5[1], 1);
        check_mapped(w, "encoder.final_layer_norm.weight", wan_t5[2], 2);
        check_mapped(w, "spiece_model", wan_t5[3], 3);
        vd_weights_close(w);
    }

    /* Two spellings of one weight. */
    const char *twice[] = {"blocks.0.attn1.to_q.weight", "blocks.0.self_attn.q.weight"};
    p = scratch_path("twice.safetensors");
    write_named(p, twice, 2, VD_F16);
    EXPECT_REFUSED(p, VD_ERR_FORMAT, "diffusers and Wan names for the same weight");
    const char *prefixed[] = {"model.diffusion_model.head.head.weight", "head.head.weight"};
    p = scratch_path("prefixed.safetensors");
    write_named(p, prefixed, 2, VD_F16);
    EXPECT_REFUSED(p, VD_ERR_FORMAT, "the same name with and without the prefix");
}

int main(void)
{
    scratch_init("names");
    test_diffusers_rules();
    test_t5_rules();
    test_prefix();
    test_detection();
    test_diffusers_inverts_reference();
    test_files();
    printf("%d refused cases\n", refused_cases);
    scratch_cleanup();
    return test_finish("name_map");
}

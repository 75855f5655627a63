#include "io/name_map.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "io/name_index.h"

typedef struct rename_rule {
    const char *from, *to;
} rename_rule;

/* diffusers WanTransformer3DModel → Wan (the inverse of diffusers'
 * scripts/convert_wan_to_diffusers.py TRANSFORMER_KEYS_RENAME_DICT). */
static const rename_rule diffusers_top[] = {
    {"condition_embedder.time_embedder.linear_1", "time_embedding.0"},
    {"condition_embedder.time_embedder.linear_2", "time_embedding.2"},
    {"condition_embedder.text_embedder.linear_1", "text_embedding.0"},
    {"condition_embedder.text_embedder.linear_2", "text_embedding.2"},
    {"condition_embedder.time_proj", "time_projection.1"},
    {"condition_embedder.image_embedder.norm1", "img_emb.proj.0"},
    {"condition_embedder.image_embedder.ff.net.0.proj", "img_emb.proj.1"},
    {"condition_embedder.image_embedder.ff.net.2", "img_emb.proj.3"},
    {"condition_embedder.image_embedder.norm2", "img_emb.proj.4"},
    {"condition_embedder.image_embedder.pos_embed", "img_emb.emb_pos"},
    {"scale_shift_table", "head.modulation"},
    {"proj_out", "head.head"},
};

static const rename_rule diffusers_block[] = {
    {"scale_shift_table", "modulation"},
    {"attn1.to_q", "self_attn.q"},
    {"attn1.to_k", "self_attn.k"},
    {"attn1.to_v", "self_attn.v"},
    {"attn1.to_out.0", "self_attn.o"},
    {"attn1.norm_q", "self_attn.norm_q"},
    {"attn1.norm_k", "self_attn.norm_k"},
    {"attn2.to_q", "cross_attn.q"},
    {"attn2.to_k", "cross_attn.k"},
    {"attn2.to_v", "cross_attn.v"},
    {"attn2.to_out.0", "cross_attn.o"},
    {"attn2.norm_q", "cross_attn.norm_q"},
    {"attn2.norm_k", "cross_attn.norm_k"},
    {"attn2.add_k_proj", "cross_attn.k_img"},
    {"attn2.add_v_proj", "cross_attn.v_img"},
    {"attn2.norm_added_k", "cross_attn.norm_k_img"},
    /* diffusers numbers the norms in call order: its norm2 is Wan's norm3
     * (the affine cross-attention norm) and its norm3 is Wan's norm2. */
    {"norm2", "norm3"},
    {"norm3", "norm2"},
    {"ffn.net.0.proj", "ffn.0"},
    {"ffn.net.2", "ffn.2"},
};

/* llama.cpp umT5 (city96 GGUF) → Hugging Face. */
static const rename_rule t5_gguf_top[] = {
    {"token_embd", "shared"},
    {"enc.output_norm", "encoder.final_layer_norm"},
};

static const rename_rule t5_gguf_block[] = {
    {"attn_q", "layer.0.SelfAttention.q"},
    {"attn_k", "layer.0.SelfAttention.k"},
    {"attn_v", "layer.0.SelfAttention.v"},
    {"attn_o", "layer.0.SelfAttention.o"},
    {"attn_rel_b", "layer.0.SelfAttention.relative_attention_bias"},
    {"attn_norm", "layer.0.layer_norm"},
    {"ffn_norm", "layer.1.layer_norm"},
    {"ffn_gate", "layer.1.DenseReluDense.wi_0"},
    {"ffn_up", "layer.1.DenseReluDense.wi_1"},
    {"ffn_down", "layer.1.DenseReluDense.wo"},
};

/* Wan's original umT5 (wan/modules/t5.py) → Hugging Face. */
static const rename_rule t5_wan_top[] = {
    {"token_embedding", "shared"},
    {"norm", "encoder.final_layer_norm"},
};

static const rename_rule t5_wan_block[] = {
    {"attn.q", "layer.0.SelfAttention.q"},
    {"attn.k", "layer.0.SelfAttention.k"},
    {"attn.v", "layer.0.SelfAttention.v"},
    {"attn.o", "layer.0.SelfAttention.o"},
    {"pos_embedding.embedding", "layer.0.SelfAttention.relative_attention_bias"},
    {"norm1", "layer.0.layer_norm"},
    {"norm2", "layer.1.layer_norm"},
    {"ffn.gate.0", "layer.1.DenseReluDense.wi_0"},
    {"ffn.fc1", "layer.1.DenseReluDense.wi_1"},
    {"ffn.fc2", "layer.1.DenseReluDense.wo"},
};

#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

const char *vd_name_scheme_name(vd_name_scheme scheme)
{
    switch (scheme) {
    case VD_NAMES_CANONICAL: return "canonical";
    case VD_NAMES_DIFFUSERS_WAN: return "diffusers";
    case VD_NAMES_T5_GGUF: return "t5-gguf";
    case VD_NAMES_T5_WAN: return "t5-wan";
    }
    return "invalid";
}

/* If `name` begins with the whole dotted components of `prefix`, the rest
 * (empty or starting with '.'); otherwise NULL. */
static const char *after_components(const char *name, const char *prefix)
{
    size_t n = strlen(prefix);
    if (strncmp(name, prefix, n) != 0 || (name[n] != '\0' && name[n] != '.'))
        return NULL;
    return name + n;
}

const char *vd_name_strip_prefix(const char *file_name)
{
    static const char *const prefixes[] = {"model.diffusion_model.", "diffusion_model."};
    for (size_t i = 0; i < COUNT(prefixes); i++) {
        size_t n = strlen(prefixes[i]);
        if (strncmp(file_name, prefixes[i], n) == 0 && file_name[n] != '\0')
            return file_name + n;
    }
    return file_name;
}

/* For "<head>.<digits>.<rest>", the digits and the rest (after the dot). */
static bool split_block(const char *name, const char *head, const char **digits, size_t *ndigits, const char **rest)
{
    size_t h = strlen(head);
    if (strncmp(name, head, h) != 0)
        return false;
    const char *d = name + h;
    size_t n = 0;
    while (d[n] >= '0' && d[n] <= '9')
        n++;
    if (n == 0 || n > 9 || d[n] != '.' || d[n + 1] == '\0')
        return false;
    *digits = d;
    *ndigits = n;
    *rest = d + n + 1;
    return true;
}

static char *concat3(const char *a, const char *b, size_t blen, const char *c)
{
    size_t la = strlen(a), lc = strlen(c);
    char *s = malloc(la + blen + lc + 1);
    if (!s)
        return NULL;
    memcpy(s, a, la);
    memcpy(s + la, b, blen);
    memcpy(s + la + blen, c, lc + 1);
    return s;
}

/* Apply the first rule whose `from` covers whole leading components. */
static const rename_rule *find_rule(const rename_rule *rules, size_t n, const char *name, const char **rest)
{
    for (size_t i = 0; i < n; i++) {
        const char *r = after_components(name, rules[i].from);
        if (r) {
            *rest = r;
            return &rules[i];
        }
    }
    return NULL;
}

/* Map under one scheme: top-level rules, or a block prefix whose rest is
 * mapped by the block rules and re-prefixed with `block_out`. */
static char *map_with(const char *name, const char *block_in, const char *block_out, const rename_rule *top, size_t ntop,
                      const rename_rule *block, size_t nblock)
{
    const char *rest, *digits, *brest;
    size_t nd;
    if (split_block(name, block_in, &digits, &nd, &brest)) {
        const rename_rule *r = find_rule(block, nblock, brest, &rest);
        if (r) {
            char *head = concat3(block_out, digits, nd, ".");
            if (!head)
                return NULL;
            char *s = concat3(head, r->to, strlen(r->to), rest);
            free(head);
            return s;
        }
        return strdup(name);
    }
    const rename_rule *r = find_rule(top, ntop, name, &rest);
    if (r)
        return concat3("", r->to, strlen(r->to), rest);
    return strdup(name);
}

char *vd_name_map_one(vd_name_scheme scheme, const char *name)
{
    switch (scheme) {
    case VD_NAMES_DIFFUSERS_WAN:
        return map_with(name, "blocks.", "blocks.", diffusers_top, COUNT(diffusers_top), diffusers_block,
                        COUNT(diffusers_block));
    case VD_NAMES_T5_GGUF:
        return map_with(name, "enc.blk.", "encoder.block.", t5_gguf_top, COUNT(t5_gguf_top), t5_gguf_block,
                        COUNT(t5_gguf_block));
    case VD_NAMES_T5_WAN:
        return map_with(name, "blocks.", "encoder.block.", t5_wan_top, COUNT(t5_wan_top), t5_wan_block,
                        COUNT(t5_wan_block));
    case VD_NAMES_CANONICAL: break;
    }
    return strdup(name);
}

static bool is_diffusers_name(const char *name)
{
    if (after_components(name, "condition_embedder") || after_components(name, "scale_shift_table") ||
        after_components(name, "proj_out"))
        return true;
    const char *digits, *rest;
    size_t nd;
    if (split_block(name, "blocks.", &digits, &nd, &rest))
        return after_components(rest, "attn1") || after_components(rest, "attn2") ||
               after_components(rest, "ffn.net") || after_components(rest, "scale_shift_table");
    return false;
}

vd_name_scheme vd_name_scheme_detect(const char *const *names, size_t n)
{
    bool t5_gguf = false, t5_wan = false, diffusers = false;
    for (size_t i = 0; i < n; i++) {
        const char *s = names[i];
        if (after_components(s, "token_embd") || strncmp(s, "enc.blk.", 8) == 0 || after_components(s, "enc.output_norm"))
            t5_gguf = true;
        else if (strcmp(s, "token_embedding.weight") == 0)
            t5_wan = true;
        else if (is_diffusers_name(s))
            diffusers = true;
    }
    if (t5_gguf)
        return VD_NAMES_T5_GGUF;
    if (t5_wan)
        return VD_NAMES_T5_WAN;
    if (diffusers)
        return VD_NAMES_DIFFUSERS_WAN;
    return VD_NAMES_CANONICAL;
}

vd_status vd_name_map_all(const char *const *file_names, size_t n, const char *path, char **out,
                          vd_name_scheme *scheme)
{
    *scheme = VD_NAMES_CANONICAL;
    if (n == 0)
        return VD_OK;
    const char **stripped = malloc(n * sizeof *stripped);
    if (!stripped)
        return vd_error(VD_ERR_OUT_OF_MEMORY, "'%s': out of memory mapping tensor names", path);
    for (size_t i = 0; i < n; i++)
        stripped[i] = vd_name_strip_prefix(file_names[i]);
    *scheme = vd_name_scheme_detect(stripped, n);
    vd_status s = VD_OK;
    size_t done = 0;
    for (; done < n; done++) {
        out[done] = vd_name_map_one(*scheme, stripped[done]);
        if (!out[done]) {
            s = vd_error(VD_ERR_OUT_OF_MEMORY, "'%s': out of memory mapping tensor names", path);
            break;
        }
    }
    free(stripped);
    if (s == VD_OK) {
        vd_name_index ix;
        bool dup;
        size_t a = 0, b = 0;
        s = vd_name_index_build(&ix, (const char *const *)out, n, &dup, &a, &b);
        vd_name_index_free(&ix);
        if (s == VD_OK && dup)
            s = vd_error(VD_ERR_FORMAT,
                         "'%s': tensors '%s' and '%s' both stand for '%s' (%s names); the file holds the same weight twice",
                         path, file_names[a], file_names[b], out[a], vd_name_scheme_name(*scheme));
    }
    if (s != VD_OK) {
        for (size_t i = 0; i < done; i++) {
            free(out[i]);
            out[i] = NULL;
        }
    }
    return s;
}

#include "models/tokenizer_checkpoint.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "io/gguf.h"
#include "io/weights.h"

static vd_status from_tensor(const vd_weight *t, const char *path, vd_sp_model *out)
{
    if (t->tensor.dtype != VD_U8 && t->tensor.dtype != VD_I8)
        return vd_error(VD_ERR_FORMAT, "'%s': tensor spiece_model has dtype %s; expected uint8 bytes of a "
                        "SentencePiece model", path, vd_dtype_name(t->tensor.dtype));
    if (!t->tensor.data || t->nbytes == 0)
        return vd_error(VD_ERR_FORMAT, "'%s': tensor spiece_model is empty", path);
    char source[1024];
    snprintf(source, sizeof source, "%s (tensor spiece_model)", path);
    return vd_sp_model_parse(t->tensor.data, t->nbytes, source, out);
}

static const vd_gguf_value *gguf_get(const vd_gguf *g, const char *key)
{
    const vd_gguf_kv *kv = vd_gguf_find(g, key);
    return kv ? &kv->value : NULL;
}

static bool gguf_bool(const vd_gguf *g, const char *key, bool fallback)
{
    const vd_gguf_value *v = gguf_get(g, key);
    return v && v->type == VD_GGUF_BOOL ? v->v.u != 0 : fallback;
}

static vd_status gguf_bad(const char *path, const char *what)
{
    return vd_error(VD_ERR_FORMAT, "'%s': GGUF tokenizer metadata is malformed: %s", path, what);
}

static vd_status gguf_charsmap(const vd_gguf *g, const char *path, vd_sp_model *m)
{
    const vd_gguf_value *v = gguf_get(g, "tokenizer.ggml.precompiled_charsmap");
    if (!v)
        return VD_OK;
    if (v->type != VD_GGUF_ARRAY || (v->v.arr.elem_type != VD_GGUF_U8 && v->v.arr.elem_type != VD_GGUF_I8) ||
        !v->v.arr.raw)
        return gguf_bad(path, "precompiled_charsmap is not an array of bytes");
    if (v->v.arr.count == 0)
        return VD_OK;
    if (v->v.arr.count > SIZE_MAX)
        return gguf_bad(path, "precompiled_charsmap too large");
    m->charsmap = malloc((size_t)v->v.arr.count);
    if (!m->charsmap)
        return vd_error(VD_ERR_OUT_OF_MEMORY, "out of memory reading '%s'", path);
    memcpy(m->charsmap, v->v.arr.raw, (size_t)v->v.arr.count);
    m->charsmap_size = (size_t)v->v.arr.count;
    return VD_OK;
}

static vd_status gguf_vocab(const vd_gguf *g, const char *path, vd_sp_model *m)
{
    const vd_gguf_value *tokens = gguf_get(g, "tokenizer.ggml.tokens");
    const vd_gguf_value *scores = gguf_get(g, "tokenizer.ggml.scores");
    const vd_gguf_value *types = gguf_get(g, "tokenizer.ggml.token_type");
    if (!tokens || tokens->type != VD_GGUF_ARRAY || tokens->v.arr.elem_type != VD_GGUF_STRING)
        return gguf_bad(path, "tokenizer.ggml.tokens is missing or not an array of strings");
    uint64_t n = tokens->v.arr.count;
    if (scores && (scores->type != VD_GGUF_ARRAY || scores->v.arr.count != n))
        return gguf_bad(path, "tokenizer.ggml.scores does not match the tokens");
    if (types && (types->type != VD_GGUF_ARRAY || types->v.arr.count != n))
        return gguf_bad(path, "tokenizer.ggml.token_type does not match the tokens");
    for (uint64_t i = 0; i < n; i++) {
        vd_gguf_value tok, sc, ty;
        if (!vd_gguf_array_at(tokens, i, &tok) || tok.type != VD_GGUF_STRING)
            return gguf_bad(path, "a token is not a string");
        float score = 0.0f;
        if (scores) {
            if (!vd_gguf_array_at(scores, i, &sc) || (sc.type != VD_GGUF_F32 && sc.type != VD_GGUF_F64))
                return gguf_bad(path, "a score is not a float");
            score = (float)sc.v.f;
        }
        int64_t type = VD_SP_NORMAL;
        if (types) {
            if (!vd_gguf_array_at(types, i, &ty))
                return gguf_bad(path, "a token type is unreadable");
            type = ty.type == VD_GGUF_I8 || ty.type == VD_GGUF_I16 || ty.type == VD_GGUF_I32 || ty.type == VD_GGUF_I64
                       ? ty.v.i
                       : (int64_t)ty.v.u;
        }
        if (type < VD_SP_NORMAL || type > VD_SP_BYTE)
            return vd_error(VD_ERR_FORMAT, "'%s': GGUF token %llu has unknown type %lld", path,
                            (unsigned long long)i, (long long)type);
        if (type == VD_SP_BYTE)
            m->byte_fallback = true;
        VD_TRY(vd_sp_model_add_piece(m, tok.v.str.data, (size_t)tok.v.str.len, score, (vd_sp_piece_type)type));
    }
    return VD_OK;
}

static vd_status from_gguf_metadata(const vd_gguf *g, const char *path, vd_sp_model *out)
{
    const vd_gguf_value *model = gguf_get(g, "tokenizer.ggml.model");
    if (!model || model->type != VD_GGUF_STRING)
        return vd_error(VD_ERR_NOT_FOUND,
                        "'%s' holds no tokenizer (no spiece_model tensor, no tokenizer.ggml metadata); "
                        "pass the tokenizer file (spiece.model or tokenizer.json) separately",
                        path);
    if (model->v.str.len != 2 || memcmp(model->v.str.data, "t5", 2) != 0)
        return vd_error(VD_ERR_UNSUPPORTED,
                        "'%s': GGUF tokenizer model \"%.*s\" is not supported; only the SentencePiece Unigram "
                        "tokenizer (\"t5\") is",
                        path, (int)(model->v.str.len > 32 ? 32 : model->v.str.len), model->v.str.data);
    vd_sp_model_init(out);
    vd_status s = gguf_vocab(g, path, out);
    if (s == VD_OK)
        s = gguf_charsmap(g, path, out);
    out->add_dummy_prefix = gguf_bool(g, "tokenizer.ggml.add_space_prefix", true);
    out->remove_extra_whitespaces = gguf_bool(g, "tokenizer.ggml.remove_extra_whitespaces", true);
    if (s != VD_OK)
        vd_sp_model_free(out);
    return s;
}

vd_status vd_tokenizer_checkpoint_model(const char *path, vd_sp_model *out)
{
    vd_sp_model_init(out);
    vd_weights *w;
    VD_TRY(vd_weights_open(path, &w));
    vd_status s;
    const vd_weight *t = vd_weights_find(w, "spiece_model");
    if (t)
        s = from_tensor(t, path, out);
    else if (vd_weights_gguf(w))
        s = from_gguf_metadata(vd_weights_gguf(w), path, out);
    else
        s = vd_error(VD_ERR_NOT_FOUND,
                     "'%s' holds no spiece_model tensor; pass the tokenizer file (spiece.model or tokenizer.json) "
                     "separately",
                     path);
    vd_weights_close(w);
    return s;
}

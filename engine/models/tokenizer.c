/* The tokenizer API: loading from the three kinds of source, and encoding
 * with umT5's EOS and truncation rule on top of SentencePiece. */
#include "models/tokenizer.h"

#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "core/mapped_file.h"
#include "models/sentencepiece_model.h"
#include "models/sentencepiece_normalizer.h"
#include "models/sentencepiece_unigram.h"
#include "models/sentencepiece_vocab.h"
#include "models/tokenizer_checkpoint.h"
#include "models/tokenizer_json.h"

struct vd_tokenizer {
    vd_sp_model model;
    vd_sp_vocab vocab;
    vd_sp_normalizer normalizer;
    char *source;
};

void vd_tokenizer_free(vd_tokenizer *tok)
{
    if (!tok)
        return;
    vd_sp_vocab_free(&tok->vocab);
    vd_sp_model_free(&tok->model);
    free(tok->source);
    free(tok);
}

/* Take ownership of *model (cleared) and build the lookups. */
static vd_status tokenizer_from_model(vd_sp_model *model, const char *source, vd_tokenizer **out)
{
    vd_tokenizer *tok = calloc(1, sizeof *tok);
    if (!tok) {
        vd_sp_model_free(model);
        return vd_error(VD_ERR_OUT_OF_MEMORY, "out of memory loading tokenizer '%s'", source);
    }
    tok->model = *model;
    memset(model, 0, sizeof *model);
    tok->source = strdup(source);
    if (!tok->source) {
        vd_tokenizer_free(tok);
        return vd_error(VD_ERR_OUT_OF_MEMORY, "out of memory loading tokenizer '%s'", source);
    }
    vd_status s = vd_sp_vocab_build(&tok->vocab, &tok->model, tok->source);
    if (s == VD_OK)
        s = vd_sp_normalizer_init(&tok->normalizer, &tok->model,
                                  tok->vocab.has_user_defined ? &tok->vocab.user_defined : NULL, tok->source);
    if (s != VD_OK) {
        vd_tokenizer_free(tok);
        return s;
    }
    *out = tok;
    return VD_OK;
}

vd_status vd_tokenizer_from_memory(const void *bytes, size_t size, vd_tokenizer **out)
{
    if (!out || (!bytes && size))
        return vd_error(VD_ERR_INVALID_ARGUMENT, "vd_tokenizer_from_memory: NULL argument");
    *out = NULL;
    const char *source = "in-memory SentencePiece model";
    vd_sp_model model;
    VD_TRY(vd_sp_model_parse(bytes, size, source, &model));
    return tokenizer_from_model(&model, source, out);
}

typedef enum source_kind { KIND_MODEL_PROTO, KIND_CHECKPOINT, KIND_JSON } source_kind;

static bool is_json_space(uint8_t c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

/* By content: GGUF magic, a safetensors header (little-endian length, then
 * a JSON object), a JSON document; anything else is tried as a ModelProto
 * (which usually starts with byte 0x0A, field 1 "pieces"). */
static source_kind detect_kind(const uint8_t *p, size_t n)
{
    if (n >= 4 && memcmp(p, "GGUF", 4) == 0)
        return KIND_CHECKPOINT;
    if (n >= 9) {
        uint64_t hdr = 0;
        for (int i = 0; i < 8; i++)
            hdr |= (uint64_t)p[i] << (8 * i);
        if (hdr >= 2 && hdr <= n - 8 && p[8] == '{')
            return KIND_CHECKPOINT;
    }
    /* '{' then '"' or '}' (whitespace allowed): bytes 0x0A, 0x09 and so on
     * also open ModelProtos, but not followed by that. */
    size_t i = 0;
    if (n >= 3 && p[0] == 0xEF && p[1] == 0xBB && p[2] == 0xBF)
        i = 3;
    while (i < n && is_json_space(p[i]))
        i++;
    if (i < n && p[i] == '{') {
        i++;
        while (i < n && is_json_space(p[i]))
            i++;
        if (i < n && (p[i] == '"' || p[i] == '}'))
            return KIND_JSON;
    }
    return KIND_MODEL_PROTO;
}

vd_status vd_tokenizer_open(const char *path, vd_tokenizer **out)
{
    if (!path || !out)
        return vd_error(VD_ERR_INVALID_ARGUMENT, "vd_tokenizer_open: NULL argument");
    *out = NULL;
    vd_mapped_file mf;
    VD_TRY(vd_mapped_file_open(path, &mf));
    vd_sp_model model;
    vd_status s;
    switch (detect_kind(mf.data, mf.size)) {
    case KIND_CHECKPOINT:
        vd_mapped_file_close(&mf);
        s = vd_tokenizer_checkpoint_model(path, &model);
        break;
    case KIND_JSON:
        s = vd_tokenizer_json_parse((const char *)mf.data, mf.size, path, &model);
        vd_mapped_file_close(&mf);
        break;
    default:
        s = vd_sp_model_parse(mf.data, mf.size, path, &model);
        vd_mapped_file_close(&mf);
        break;
    }
    if (s != VD_OK)
        return s;
    return tokenizer_from_model(&model, path, out);
}

vd_status vd_tokenizer_normalize(const vd_tokenizer *tok, const char *text, size_t len, char **out, size_t *out_len)
{
    if (!tok || !out || !out_len || (!text && len))
        return vd_error(VD_ERR_INVALID_ARGUMENT, "vd_tokenizer_normalize: NULL argument");
    return vd_sp_normalize(&tok->normalizer, (const uint8_t *)text, len, out, out_len);
}

vd_status vd_tokenizer_encode_bytes(const vd_tokenizer *tok, const char *text, size_t len, size_t max_tokens,
                                    bool add_eos, int32_t **ids, size_t *n)
{
    if (!tok || !ids || !n || (!text && len))
        return vd_error(VD_ERR_INVALID_ARGUMENT, "vd_tokenizer_encode: NULL argument");
    *ids = NULL;
    *n = 0;
    if (add_eos && tok->vocab.eos_id < 0)
        return vd_error(VD_ERR_INVALID_ARGUMENT,
                        "tokenizer '%s' has no EOS control piece (\"%s\"); encode without add_eos", tok->source,
                        tok->model.eos_piece ? tok->model.eos_piece : "</s>");
    char *norm;
    size_t norm_len;
    VD_TRY(vd_sp_normalize(&tok->normalizer, (const uint8_t *)text, len, &norm, &norm_len));
    int32_t *out = NULL;
    size_t count = 0, cap = 0;
    vd_status s = vd_sp_unigram_encode(&tok->vocab, (const uint8_t *)norm, norm_len, &out, &count, &cap);
    free(norm);
    if (s == VD_OK && max_tokens > 0) {
        size_t keep = add_eos ? max_tokens - 1 : max_tokens;
        if (count > keep)
            count = keep;
    }
    if (s == VD_OK && add_eos) {
        if (count == cap) {
            int32_t *p = realloc(out, (count + 1) * sizeof *p);
            if (!p)
                s = vd_error(VD_ERR_OUT_OF_MEMORY, "out of memory encoding text");
            else
                out = p;
        }
        if (s == VD_OK)
            out[count++] = tok->vocab.eos_id;
    }
    if (s != VD_OK || count == 0) {
        free(out);
        return s;
    }
    *ids = out;
    *n = count;
    return VD_OK;
}

vd_status vd_tokenizer_encode(const vd_tokenizer *tok, const char *text, size_t max_tokens, bool add_eos,
                              int32_t **ids, size_t *n)
{
    if (!text) {
        if (ids)
            *ids = NULL;
        if (n)
            *n = 0;
        return vd_error(VD_ERR_INVALID_ARGUMENT, "vd_tokenizer_encode: text is NULL");
    }
    return vd_tokenizer_encode_bytes(tok, text, strlen(text), max_tokens, add_eos, ids, n);
}

size_t vd_tokenizer_vocab_size(const vd_tokenizer *tok)
{
    return tok ? tok->model.n_pieces : 0;
}

const char *vd_tokenizer_piece(const vd_tokenizer *tok, int32_t id)
{
    if (!tok || id < 0 || (size_t)id >= tok->model.n_pieces)
        return NULL;
    return vd_sp_piece_str(&tok->model, (size_t)id);
}

int32_t vd_tokenizer_piece_to_id(const vd_tokenizer *tok, const char *piece)
{
    if (!tok || !piece)
        return -1;
    return vd_sp_vocab_piece_to_id(&tok->vocab, (const uint8_t *)piece, strlen(piece));
}

int32_t vd_tokenizer_eos_id(const vd_tokenizer *tok)
{
    return tok ? tok->vocab.eos_id : -1;
}

int32_t vd_tokenizer_pad_id(const vd_tokenizer *tok)
{
    return tok ? tok->vocab.pad_id : -1;
}

int32_t vd_tokenizer_bos_id(const vd_tokenizer *tok)
{
    return tok ? tok->vocab.bos_id : -1;
}

int32_t vd_tokenizer_unk_id(const vd_tokenizer *tok)
{
    return tok ? tok->vocab.unk_id : -1;
}

#include "models/tokenizer_json.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"

static const char kSpaceSymbol[] = "\xE2\x96\x81"; /* U+2581 */

/* Whitespace handling found in the normalizer and pre-tokenizer. */
typedef struct ws_flags {
    bool collapse; /* Strip, WhitespaceSplit, Replace " {2,}" */
    bool escape;   /* Metaspace, Replace " " -> "▁" */
    bool prefix;   /* Metaspace prefix, Prepend "▁" */
} ws_flags;

static vd_status bad(const char *source, const char *what)
{
    return vd_error(VD_ERR_FORMAT, "'%s' is not a valid tokenizer.json: %s", source, what);
}

static const char *type_of(const cJSON *node)
{
    const cJSON *t = cJSON_GetObjectItemCaseSensitive(node, "type");
    return cJSON_IsString(t) ? t->valuestring : NULL;
}

static int base64_value(unsigned char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '+')
        return 62;
    if (c == '/')
        return 63;
    return -1;
}

/* Standard base64, '=' padding optional. */
static vd_status base64_decode(const char *s, const char *source, uint8_t **out, size_t *out_len)
{
    size_t n = strlen(s);
    while (n > 0 && s[n - 1] == '=')
        n--;
    if (n % 4 == 1)
        return bad(source, "precompiled_charsmap is not valid base64 (bad length)");
    uint8_t *buf = malloc(n / 4 * 3 + 3);
    if (!buf)
        return vd_error(VD_ERR_OUT_OF_MEMORY, "out of memory reading '%s'", source);
    size_t k = 0;
    uint32_t acc = 0;
    int bits = 0;
    for (size_t i = 0; i < n; i++) {
        int v = base64_value((unsigned char)s[i]);
        if (v < 0) {
            free(buf);
            return bad(source, "precompiled_charsmap is not valid base64 (bad character)");
        }
        acc = (acc << 6) | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            buf[k++] = (uint8_t)(acc >> bits);
        }
    }
    *out = buf;
    *out_len = k;
    return VD_OK;
}

static vd_status parse_precompiled(const cJSON *node, const char *source, vd_sp_model *m)
{
    const cJSON *map = cJSON_GetObjectItemCaseSensitive(node, "precompiled_charsmap");
    if (!map || cJSON_IsNull(map))
        return VD_OK;
    if (!cJSON_IsString(map))
        return bad(source, "normalizer Precompiled: precompiled_charsmap is not a string");
    uint8_t *blob = NULL;
    size_t len = 0;
    VD_TRY(base64_decode(map->valuestring, source, &blob, &len));
    free(m->charsmap);
    m->charsmap = len ? blob : NULL;
    m->charsmap_size = len;
    if (!len)
        free(blob);
    return VD_OK;
}

static vd_status unsupported(const char *source, const char *kind, const char *type)
{
    return vd_error(VD_ERR_UNSUPPORTED,
                    "'%s': tokenizer.json %s \"%s\" is not supported; only SentencePiece-style Unigram tokenizers "
                    "(Precompiled, Replace, Strip, Prepend, Metaspace, WhitespaceSplit) are",
                    source, kind, type ? type : "(no type)");
}

static vd_status parse_replace(const cJSON *node, const char *source, ws_flags *ws)
{
    const cJSON *pattern = cJSON_GetObjectItemCaseSensitive(node, "pattern");
    const cJSON *content = cJSON_GetObjectItemCaseSensitive(node, "content");
    const cJSON *regex = cJSON_GetObjectItemCaseSensitive(pattern, "Regex");
    const cJSON *string = cJSON_GetObjectItemCaseSensitive(pattern, "String");
    const char *c = cJSON_IsString(content) ? content->valuestring : NULL;
    if (c && cJSON_IsString(regex) && strcmp(regex->valuestring, " {2,}") == 0 &&
        (strcmp(c, " ") == 0 || strcmp(c, kSpaceSymbol) == 0)) {
        ws->collapse = true;
        return VD_OK;
    }
    if (c && cJSON_IsString(string) && strcmp(string->valuestring, " ") == 0 && strcmp(c, kSpaceSymbol) == 0) {
        ws->escape = true;
        return VD_OK;
    }
    return unsupported(source, "normalizer Replace with pattern", cJSON_IsString(regex)    ? regex->valuestring
                                                                   : cJSON_IsString(string) ? string->valuestring
                                                                                            : NULL);
}

static vd_status parse_normalizer(const cJSON *node, const char *source, vd_sp_model *m, ws_flags *ws, int depth)
{
    if (!node || cJSON_IsNull(node))
        return VD_OK;
    if (depth > 8)
        return bad(source, "normalizers nested too deeply");
    const char *type = type_of(node);
    if (!type)
        return bad(source, "a normalizer has no type");
    if (strcmp(type, "Precompiled") == 0)
        return parse_precompiled(node, source, m);
    if (strcmp(type, "Sequence") == 0) {
        const cJSON *list = cJSON_GetObjectItemCaseSensitive(node, "normalizers");
        if (!cJSON_IsArray(list))
            return bad(source, "normalizer Sequence has no normalizers array");
        const cJSON *item;
        cJSON_ArrayForEach(item, list) VD_TRY(parse_normalizer(item, source, m, ws, depth + 1));
        return VD_OK;
    }
    if (strcmp(type, "Replace") == 0)
        return parse_replace(node, source, ws);
    if (strcmp(type, "Strip") == 0) {
        ws->collapse = true;
        return VD_OK;
    }
    if (strcmp(type, "Prepend") == 0) {
        const cJSON *p = cJSON_GetObjectItemCaseSensitive(node, "prepend");
        if (cJSON_IsString(p) && strcmp(p->valuestring, kSpaceSymbol) == 0) {
            ws->prefix = true;
            ws->escape = true;
            return VD_OK;
        }
    }
    return unsupported(source, "normalizer", type);
}

static vd_status parse_pre_tokenizer(const cJSON *node, const char *source, ws_flags *ws, int depth)
{
    if (!node || cJSON_IsNull(node))
        return VD_OK;
    if (depth > 8)
        return bad(source, "pre-tokenizers nested too deeply");
    const char *type = type_of(node);
    if (!type)
        return bad(source, "a pre-tokenizer has no type");
    if (strcmp(type, "Sequence") == 0) {
        const cJSON *list = cJSON_GetObjectItemCaseSensitive(node, "pretokenizers");
        if (!cJSON_IsArray(list))
            return bad(source, "pre-tokenizer Sequence has no pretokenizers array");
        const cJSON *item;
        cJSON_ArrayForEach(item, list) VD_TRY(parse_pre_tokenizer(item, source, ws, depth + 1));
        return VD_OK;
    }
    if (strcmp(type, "WhitespaceSplit") == 0) {
        ws->collapse = true;
        return VD_OK;
    }
    if (strcmp(type, "Metaspace") == 0) {
        const cJSON *rep = cJSON_GetObjectItemCaseSensitive(node, "replacement");
        if (cJSON_IsString(rep) && strcmp(rep->valuestring, kSpaceSymbol) != 0)
            return unsupported(source, "Metaspace replacement", rep->valuestring);
        ws->escape = true;
        const cJSON *add = cJSON_GetObjectItemCaseSensitive(node, "add_prefix_space");
        const cJSON *scheme = cJSON_GetObjectItemCaseSensitive(node, "prepend_scheme");
        if (cJSON_IsString(scheme))
            ws->prefix = strcmp(scheme->valuestring, "never") != 0;
        else
            ws->prefix = !cJSON_IsBool(add) || cJSON_IsTrue(add);
        return VD_OK;
    }
    return unsupported(source, "pre-tokenizer", type);
}

static bool is_byte_piece(const char *s)
{
    if (strlen(s) != 6 || strncmp(s, "<0x", 3) != 0 || s[5] != '>')
        return false;
    for (int i = 3; i < 5; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'A' && s[i] <= 'F')))
            return false;
    return true;
}

typedef struct added_token {
    long long id;
    const char *content;
    bool special;
} added_token;

static int compare_added(const void *a, const void *b)
{
    const added_token *x = a, *y = b;
    return (x->id > y->id) - (x->id < y->id);
}

static vd_status read_added_tokens(const cJSON *root, const char *source, added_token **out, size_t *n_out)
{
    *out = NULL;
    *n_out = 0;
    const cJSON *list = cJSON_GetObjectItemCaseSensitive(root, "added_tokens");
    if (!list || cJSON_IsNull(list))
        return VD_OK;
    if (!cJSON_IsArray(list))
        return bad(source, "added_tokens is not an array");
    int count = cJSON_GetArraySize(list);
    if (count <= 0)
        return VD_OK;
    added_token *tokens = calloc((size_t)count, sizeof *tokens);
    if (!tokens)
        return vd_error(VD_ERR_OUT_OF_MEMORY, "out of memory reading '%s'", source);
    size_t n = 0;
    const cJSON *item;
    cJSON_ArrayForEach(item, list)
    {
        const cJSON *id = cJSON_GetObjectItemCaseSensitive(item, "id");
        const cJSON *content = cJSON_GetObjectItemCaseSensitive(item, "content");
        const cJSON *special = cJSON_GetObjectItemCaseSensitive(item, "special");
        if (!cJSON_IsNumber(id) || !cJSON_IsString(content) || id->valuedouble < 0 ||
            id->valuedouble >= (double)INT32_MAX || id->valuedouble != floor(id->valuedouble) || n >= (size_t)count) {
            free(tokens);
            return bad(source, "an added token lacks a valid id or content");
        }
        tokens[n++] = (added_token){(long long)id->valuedouble, content->valuestring, cJSON_IsTrue(special)};
    }
    qsort(tokens, n, sizeof *tokens, compare_added);
    *out = tokens;
    *n_out = n;
    return VD_OK;
}

static vd_status read_vocab(const cJSON *model, const char *source, vd_sp_model *m)
{
    const cJSON *vocab = cJSON_GetObjectItemCaseSensitive(model, "vocab");
    if (!cJSON_IsArray(vocab))
        return bad(source, "model.vocab is not an array of [piece, score] pairs");
    const cJSON *entry;
    cJSON_ArrayForEach(entry, vocab)
    {
        const cJSON *piece = cJSON_IsArray(entry) ? entry->child : NULL;
        const cJSON *score = piece ? piece->next : NULL;
        if (!cJSON_IsString(piece) || !cJSON_IsNumber(score)) {
            return vd_error(VD_ERR_FORMAT, "'%s' is not a valid tokenizer.json: vocab entry %zu is not [piece, score]",
                            source, m->n_pieces);
        }
        const char *s = piece->valuestring;
        VD_TRY(vd_sp_model_add_piece(m, s, strlen(s), (float)score->valuedouble, VD_SP_NORMAL));
    }
    return VD_OK;
}

static vd_status parse_model_section(const cJSON *root, const char *source, vd_sp_model *m)
{
    const cJSON *model = cJSON_GetObjectItemCaseSensitive(root, "model");
    if (!cJSON_IsObject(model))
        return bad(source, "it has no \"model\" object");
    const char *type = type_of(model);
    if (type ? strcmp(type, "Unigram") != 0 : cJSON_GetObjectItemCaseSensitive(model, "merges") != NULL)
        return vd_error(VD_ERR_UNSUPPORTED,
                        "'%s': tokenizer.json has a %s model; only Unigram (SentencePiece, as umT5 uses) is supported",
                        source, type ? type : "BPE");
    const cJSON *bf = cJSON_GetObjectItemCaseSensitive(model, "byte_fallback");
    m->byte_fallback = cJSON_IsTrue(bf);
    VD_TRY(read_vocab(model, source, m));

    const cJSON *unk = cJSON_GetObjectItemCaseSensitive(model, "unk_id");
    if (cJSON_IsNumber(unk)) {
        double u = unk->valuedouble;
        if (u < 0 || u >= (double)m->n_pieces || u != floor(u))
            return bad(source, "model.unk_id is not an index into the vocab");
        m->pieces[(size_t)u].type = VD_SP_UNKNOWN;
        /* SentencePiece finds <unk> by type; remember its name too. */
        VD_TRY(vd_sp_model_set_string(&m->unk_piece, vd_sp_piece_str(m, (size_t)u), m->pieces[(size_t)u].len));
    }
    if (m->byte_fallback) {
        for (size_t i = 0; i < m->n_pieces; i++)
            if (m->pieces[i].type == VD_SP_NORMAL && is_byte_piece(vd_sp_piece_str(m, i)))
                m->pieces[i].type = VD_SP_BYTE;
    }

    added_token *added;
    size_t n_added;
    VD_TRY(read_added_tokens(root, source, &added, &n_added));
    vd_status s = VD_OK;
    for (size_t i = 0; i < n_added && s == VD_OK; i++) {
        const added_token *a = &added[i];
        vd_sp_piece_type t = a->special ? VD_SP_CONTROL : VD_SP_USER_DEFINED;
        if ((size_t)a->id < m->n_pieces) {
            vd_sp_piece *p = &m->pieces[a->id];
            if (strcmp(vd_sp_piece_str(m, (size_t)a->id), a->content) != 0)
                s = vd_error(VD_ERR_FORMAT, "'%s': added token %lld \"%s\" differs from vocab entry \"%s\"", source,
                             a->id, a->content, vd_sp_piece_str(m, (size_t)a->id));
            else if (p->type != VD_SP_UNKNOWN)
                p->type = t;
        } else if ((size_t)a->id == m->n_pieces) {
            s = vd_sp_model_add_piece(m, a->content, strlen(a->content), 0.0f, t);
        } else {
            s = vd_error(VD_ERR_FORMAT, "'%s': added token id %lld leaves a gap after the %zu-entry vocab", source,
                         a->id, m->n_pieces);
        }
    }
    free(added);
    return s;
}

static vd_status parse_root(const cJSON *root, const char *source, vd_sp_model *m)
{
    if (!cJSON_IsObject(root))
        return bad(source, "the document is not a JSON object");
    VD_TRY(parse_model_section(root, source, m));
    ws_flags ws = {false, false, false};
    VD_TRY(parse_normalizer(cJSON_GetObjectItemCaseSensitive(root, "normalizer"), source, m, &ws, 0));
    VD_TRY(parse_pre_tokenizer(cJSON_GetObjectItemCaseSensitive(root, "pre_tokenizer"), source, &ws, 0));
    m->remove_extra_whitespaces = ws.collapse;
    m->escape_whitespaces = ws.escape;
    m->add_dummy_prefix = ws.prefix;
    return VD_OK;
}

vd_status vd_tokenizer_json_parse(const char *json, size_t len, const char *source, vd_sp_model *out)
{
    vd_sp_model_init(out);
    cJSON *root = cJSON_ParseWithLength(json, len);
    if (!root) {
        /* cJSON's error pointer is global: trust it only inside our buffer. */
        const char *at = cJSON_GetErrorPtr();
        if (at && at >= json && at <= json + len)
            return vd_error(VD_ERR_FORMAT, "'%s' is not valid JSON (error near byte %td); expected a tokenizer.json",
                            source, at - json);
        return vd_error(VD_ERR_FORMAT, "'%s' is not valid JSON; expected a tokenizer.json", source);
    }
    vd_status s = parse_root(root, source, out);
    cJSON_Delete(root);
    if (s != VD_OK)
        vd_sp_model_free(out);
    return s;
}

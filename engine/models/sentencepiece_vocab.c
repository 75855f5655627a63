#include "models/sentencepiece_vocab.h"

#include <float.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"

static bool is_normal_class(vd_sp_piece_type t)
{
    return t == VD_SP_NORMAL || t == VD_SP_USER_DEFINED || t == VD_SP_UNUSED;
}

/* "<0x41>" -> 0x41; -1 unless exactly that form with upper-case hex. */
static int piece_to_byte(const char *s, size_t len)
{
    if (len != 6 || memcmp(s, "<0x", 3) != 0 || s[5] != '>')
        return -1;
    int v = 0;
    for (int i = 3; i < 5; i++) {
        char c = s[i];
        int d;
        if (c >= '0' && c <= '9')
            d = c - '0';
        else if (c >= 'A' && c <= 'F')
            d = c - 'A' + 10;
        else
            return -1;
        v = v * 16 + d;
    }
    return v;
}

static vd_status build_tries(vd_sp_vocab *v, const vd_sp_model *m, const char *source)
{
    vd_sp_trie_key *keys = malloc((m->n_pieces ? m->n_pieces : 1) * sizeof *keys);
    if (!keys)
        return vd_error(VD_ERR_OUT_OF_MEMORY, "out of memory loading '%s'", source);
    size_t n_normal = 0, n_reserved = 0, n_user = 0;
    /* Normal-class keys fill the array from the front, reserved from the back. */
    for (size_t i = 0; i < m->n_pieces; i++) {
        const vd_sp_piece *p = &m->pieces[i];
        vd_sp_trie_key k = {(const uint8_t *)vd_sp_piece_str(m, i), p->len, (int32_t)i};
        if (is_normal_class(p->type))
            keys[n_normal++] = k;
        else
            keys[m->n_pieces - 1 - n_reserved++] = k;
        if (p->type == VD_SP_USER_DEFINED)
            n_user++;
    }
    vd_status s = vd_sp_trie_build(&v->pieces, keys, n_normal, source);
    if (s == VD_OK)
        s = vd_sp_trie_build(&v->reserved, keys + n_normal, n_reserved, source);
    if (s == VD_OK && n_user) {
        size_t k = 0;
        for (size_t i = 0; i < m->n_pieces; i++)
            if (m->pieces[i].type == VD_SP_USER_DEFINED)
                keys[k++] = (vd_sp_trie_key){(const uint8_t *)vd_sp_piece_str(m, i), m->pieces[i].len, (int32_t)i};
        s = vd_sp_trie_build(&v->user_defined, keys, k, source);
        v->has_user_defined = true;
    }
    free(keys);
    return s;
}

static vd_status check_pieces(vd_sp_vocab *v, const vd_sp_model *m, const char *source)
{
    bool byte_found[256] = {false};
    size_t n_normal = 0;
    v->unk_id = -1;
    for (int i = 0; i < 256; i++)
        v->byte_ids[i] = -1;
    for (size_t i = 0; i < m->n_pieces; i++) {
        const vd_sp_piece *p = &m->pieces[i];
        const char *str = vd_sp_piece_str(m, i);
        if (p->len == 0)
            return vd_error(VD_ERR_FORMAT, "'%s': piece %zu is empty; the model is corrupt", source, i);
        /* Refused since SentencePiece 0.2.2 ("piece must not include null
         * character"); 0.1.x loaded such a piece. */
        if (memchr(str, '\0', p->len))
            return vd_error(VD_ERR_FORMAT, "'%s': piece %zu contains a NUL byte, which SentencePiece refuses", source,
                            i);
        if (is_normal_class(p->type))
            n_normal++;
        if (p->type == VD_SP_UNKNOWN) {
            if (v->unk_id >= 0)
                return vd_error(VD_ERR_FORMAT, "'%s': more than one unknown piece (ids %d and %zu)", source,
                                v->unk_id, i);
            v->unk_id = (int32_t)i;
        }
        if (p->type == VD_SP_BYTE) {
            if (!m->byte_fallback)
                return vd_error(VD_ERR_FORMAT, "'%s': byte piece %zu found although byte_fallback is false", source,
                                i);
            int b = piece_to_byte(str, p->len);
            if (b < 0)
                return vd_error(VD_ERR_FORMAT, "'%s': byte piece %zu is \"%.*s\", not of the form <0xNN>", source, i,
                                (int)(p->len > 32 ? 32 : p->len), str);
            byte_found[b] = true;
            v->byte_ids[b] = (int32_t)i;
        }
    }
    if (m->n_pieces == 0)
        return vd_error(VD_ERR_FORMAT, "'%s' has no pieces; it is not a usable SentencePiece model", source);
    if (n_normal == 0)
        return vd_error(VD_ERR_FORMAT, "'%s' has only control, unknown or byte pieces, nothing to encode text with",
                        source);
    if (v->unk_id < 0)
        return vd_error(VD_ERR_FORMAT, "'%s' has no unknown piece (<unk>); the model is corrupt", source);
    if (m->byte_fallback) {
        for (int b = 0; b < 256; b++)
            if (!byte_found[b])
                return vd_error(VD_ERR_FORMAT, "'%s': byte_fallback is set but the byte piece <0x%02X> is missing",
                                source, b);
    }
    return VD_OK;
}

static int32_t control_id(const vd_sp_vocab *v, const char *name, const char *fallback)
{
    if (!name || !name[0])
        name = fallback;
    int32_t id = vd_sp_vocab_piece_to_id(v, (const uint8_t *)name, strlen(name));
    return v->model->pieces[id].type == VD_SP_CONTROL ? id : -1;
}

vd_status vd_sp_vocab_build(vd_sp_vocab *v, const vd_sp_model *m, const char *source)
{
    memset(v, 0, sizeof *v);
    v->model = m;
    if (m->model_type != VD_SP_MODEL_UNIGRAM) {
        static const char *names[] = {"", "UNIGRAM", "BPE", "WORD", "CHAR"};
        const char *name = m->model_type >= 1 && m->model_type <= 4 ? names[m->model_type] : "unknown";
        return vd_error(VD_ERR_UNSUPPORTED,
                        "'%s' is a SentencePiece %s model; only Unigram models (as umT5 uses) are supported", source,
                        name);
    }
    vd_status s = check_pieces(v, m, source);
    if (s == VD_OK)
        s = build_tries(v, m, source);
    if (s != VD_OK) {
        vd_sp_vocab_free(v);
        return s;
    }
    /* As unigram_model.cc computes it (FLT_MAX if there is no NORMAL
     * piece). */
    v->min_score = FLT_MAX;
    for (size_t i = 0; i < m->n_pieces; i++) {
        if (m->pieces[i].type == VD_SP_NORMAL && m->pieces[i].score < v->min_score)
            v->min_score = m->pieces[i].score;
    }
    v->eos_id = control_id(v, m->eos_piece, "</s>");
    v->bos_id = control_id(v, m->bos_piece, "<s>");
    v->pad_id = control_id(v, m->pad_piece, "<pad>");
    return VD_OK;
}

void vd_sp_vocab_free(vd_sp_vocab *v)
{
    vd_sp_trie_free(&v->pieces);
    vd_sp_trie_free(&v->reserved);
    vd_sp_trie_free(&v->user_defined);
    memset(v, 0, sizeof *v);
}

int32_t vd_sp_vocab_piece_to_id(const vd_sp_vocab *v, const uint8_t *piece, size_t len)
{
    int32_t id = vd_sp_trie_find(&v->reserved, piece, len);
    if (id >= 0)
        return id;
    id = vd_sp_trie_find(&v->pieces, piece, len);
    return id >= 0 ? id : v->unk_id;
}

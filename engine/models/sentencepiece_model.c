/* Parsing a serialized SentencePiece ModelProto.  Field numbers are those of
 * sentencepiece_model.proto; fields that do not affect encoding are skipped
 * whatever their wire type, as unknown fields are. */
#include "models/sentencepiece_model.h"

#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "models/sentencepiece_protobuf.h"

void vd_sp_model_init(vd_sp_model *m)
{
    memset(m, 0, sizeof *m);
    m->model_type = VD_SP_MODEL_UNIGRAM;
    m->add_dummy_prefix = true;
    m->remove_extra_whitespaces = true;
    m->escape_whitespaces = true;
}

void vd_sp_model_free(vd_sp_model *m)
{
    free(m->pieces);
    free(m->text);
    free(m->unk_piece);
    free(m->bos_piece);
    free(m->eos_piece);
    free(m->pad_piece);
    free(m->normalizer_name);
    free(m->charsmap);
    memset(m, 0, sizeof *m);
}

static vd_status oom(void)
{
    return vd_error(VD_ERR_OUT_OF_MEMORY, "out of memory while loading a SentencePiece model");
}

vd_status vd_sp_model_set_string(char **dst, const void *bytes, size_t len)
{
    if (len == SIZE_MAX)
        return oom();
    char *s = malloc(len + 1);
    if (!s)
        return oom();
    if (len)
        memcpy(s, bytes, len);
    s[len] = '\0';
    free(*dst);
    *dst = s;
    return VD_OK;
}

vd_status vd_sp_model_add_piece(vd_sp_model *m, const void *bytes, size_t len, float score, vd_sp_piece_type type)
{
    /* Ids are int32 and offsets uint32. */
    if (m->n_pieces >= (size_t)INT32_MAX || len >= UINT32_MAX || m->text_len > UINT32_MAX - 1 - len)
        return vd_error(VD_ERR_UNSUPPORTED, "SentencePiece model too large (more than 2^31 pieces or 4 GiB of text)");
    if (m->n_pieces == m->cap_pieces) {
        size_t cap = m->cap_pieces ? m->cap_pieces * 2 : 256;
        if (cap > SIZE_MAX / sizeof *m->pieces)
            return oom();
        vd_sp_piece *p = realloc(m->pieces, cap * sizeof *p);
        if (!p)
            return oom();
        m->pieces = p;
        m->cap_pieces = cap;
    }
    size_t need = m->text_len + len + 1;
    if (need > m->text_cap) {
        size_t cap = m->text_cap ? m->text_cap : 4096;
        while (cap < need) {
            if (cap > SIZE_MAX / 2)
                return oom();
            cap *= 2;
        }
        char *t = realloc(m->text, cap);
        if (!t)
            return oom();
        m->text = t;
        m->text_cap = cap;
    }
    vd_sp_piece *p = &m->pieces[m->n_pieces++];
    p->offset = (uint32_t)m->text_len;
    p->len = (uint32_t)len;
    p->score = score;
    p->type = type;
    if (len)
        memcpy(m->text + m->text_len, bytes, len);
    m->text[m->text_len + len] = '\0';
    m->text_len += len + 1;
    return VD_OK;
}

static vd_status parse_piece(const vd_pb_reader *parent, const vd_pb_field *outer, vd_sp_model *m)
{
    vd_pb_reader r;
    vd_pb_sub(parent, outer, &r);
    const uint8_t *bytes = NULL;
    size_t len = 0;
    float score = 0.0f;
    uint64_t type = VD_SP_NORMAL;
    while (!vd_pb_done(&r)) {
        vd_pb_field f;
        VD_TRY(vd_pb_next(&r, &f));
        switch (f.number) {
        case 1:
            VD_TRY(vd_pb_expect(&r, &f, VD_PB_LEN, "pieces.piece"));
            bytes = f.data;
            len = f.len;
            break;
        case 2:
            VD_TRY(vd_pb_expect(&r, &f, VD_PB_FIXED32, "pieces.score"));
            score = vd_pb_float(&f);
            break;
        case 3:
            VD_TRY(vd_pb_expect(&r, &f, VD_PB_VARINT, "pieces.type"));
            type = f.varint;
            break;
        default:
            break;
        }
    }
    if (type < VD_SP_NORMAL || type > VD_SP_BYTE)
        return vd_error(VD_ERR_FORMAT,
                        "'%s' is not a valid SentencePiece model: piece %zu (at byte %zu) has unknown type %llu",
                        r.source, m->n_pieces, outer->offset, (unsigned long long)type);
    return vd_sp_model_add_piece(m, bytes, len, score, (vd_sp_piece_type)type);
}

static vd_status parse_string(const vd_pb_reader *r, const vd_pb_field *f, const char *name, char **dst)
{
    VD_TRY(vd_pb_expect(r, f, VD_PB_LEN, name));
    return vd_sp_model_set_string(dst, f->data, f->len);
}

static vd_status parse_bool(const vd_pb_reader *r, const vd_pb_field *f, const char *name, bool *dst)
{
    VD_TRY(vd_pb_expect(r, f, VD_PB_VARINT, name));
    *dst = f->varint != 0;
    return VD_OK;
}

static vd_status parse_trainer_spec(const vd_pb_reader *parent, const vd_pb_field *outer, vd_sp_model *m)
{
    vd_pb_reader r;
    vd_pb_sub(parent, outer, &r);
    while (!vd_pb_done(&r)) {
        vd_pb_field f;
        VD_TRY(vd_pb_next(&r, &f));
        switch (f.number) {
        case 3:
            VD_TRY(vd_pb_expect(&r, &f, VD_PB_VARINT, "trainer_spec.model_type"));
            if (f.varint < VD_SP_MODEL_UNIGRAM || f.varint > VD_SP_MODEL_CHAR)
                return vd_error(VD_ERR_FORMAT, "'%s' is not a valid SentencePiece model: unknown model_type %llu",
                                r.source, (unsigned long long)f.varint);
            m->model_type = (int32_t)f.varint;
            break;
        case 24: VD_TRY(parse_bool(&r, &f, "trainer_spec.treat_whitespace_as_suffix", &m->treat_whitespace_as_suffix)); break;
        case 35: VD_TRY(parse_bool(&r, &f, "trainer_spec.byte_fallback", &m->byte_fallback)); break;
        case 45: VD_TRY(parse_string(&r, &f, "trainer_spec.unk_piece", &m->unk_piece)); break;
        case 46: VD_TRY(parse_string(&r, &f, "trainer_spec.bos_piece", &m->bos_piece)); break;
        case 47: VD_TRY(parse_string(&r, &f, "trainer_spec.eos_piece", &m->eos_piece)); break;
        case 48: VD_TRY(parse_string(&r, &f, "trainer_spec.pad_piece", &m->pad_piece)); break;
        default: break;
        }
    }
    return VD_OK;
}

static vd_status parse_normalizer_spec(const vd_pb_reader *parent, const vd_pb_field *outer, vd_sp_model *m)
{
    vd_pb_reader r;
    vd_pb_sub(parent, outer, &r);
    while (!vd_pb_done(&r)) {
        vd_pb_field f;
        VD_TRY(vd_pb_next(&r, &f));
        switch (f.number) {
        case 1: VD_TRY(parse_string(&r, &f, "normalizer_spec.name", &m->normalizer_name)); break;
        case 2:
            VD_TRY(vd_pb_expect(&r, &f, VD_PB_LEN, "normalizer_spec.precompiled_charsmap"));
            free(m->charsmap);
            m->charsmap = NULL;
            m->charsmap_size = 0;
            if (f.len) {
                m->charsmap = malloc(f.len);
                if (!m->charsmap)
                    return oom();
                memcpy(m->charsmap, f.data, f.len);
                m->charsmap_size = f.len;
            }
            break;
        case 3: VD_TRY(parse_bool(&r, &f, "normalizer_spec.add_dummy_prefix", &m->add_dummy_prefix)); break;
        case 4: VD_TRY(parse_bool(&r, &f, "normalizer_spec.remove_extra_whitespaces", &m->remove_extra_whitespaces)); break;
        case 5: VD_TRY(parse_bool(&r, &f, "normalizer_spec.escape_whitespaces", &m->escape_whitespaces)); break;
        default: break;
        }
    }
    return VD_OK;
}

static vd_status parse_model(const uint8_t *data, size_t size, const char *source, vd_sp_model *m)
{
    vd_pb_reader r;
    vd_pb_reader_init(&r, data, size, 0, source);
    while (!vd_pb_done(&r)) {
        vd_pb_field f;
        VD_TRY(vd_pb_next(&r, &f));
        switch (f.number) {
        case 1:
            VD_TRY(vd_pb_expect(&r, &f, VD_PB_LEN, "pieces"));
            VD_TRY(parse_piece(&r, &f, m));
            break;
        case 2:
            VD_TRY(vd_pb_expect(&r, &f, VD_PB_LEN, "trainer_spec"));
            VD_TRY(parse_trainer_spec(&r, &f, m));
            break;
        case 3:
            VD_TRY(vd_pb_expect(&r, &f, VD_PB_LEN, "normalizer_spec"));
            VD_TRY(parse_normalizer_spec(&r, &f, m));
            break;
        default: /* self_test_data, denormalizer_spec, extensions */
            break;
        }
    }
    return VD_OK;
}

vd_status vd_sp_model_parse(const uint8_t *data, size_t size, const char *source, vd_sp_model *out)
{
    vd_sp_model_init(out);
    if (size == 0)
        return vd_error(VD_ERR_FORMAT, "'%s' is empty, not a SentencePiece model", source);
    vd_status s = parse_model(data, size, source, out);
    if (s != VD_OK)
        vd_sp_model_free(out);
    return s;
}

#include "models/sentencepiece_protobuf.h"

#include "core/error.h"

/* Nested groups deeper than this are refused rather than recursed into. */
#define VD_PB_MAX_GROUP_DEPTH 16

static const char *wire_type_name(int wt)
{
    switch (wt) {
    case VD_PB_VARINT: return "varint";
    case VD_PB_FIXED64: return "64-bit";
    case VD_PB_LEN: return "length-delimited";
    case VD_PB_START_GROUP: return "start-group";
    case VD_PB_END_GROUP: return "end-group";
    case VD_PB_FIXED32: return "32-bit";
    default: return "invalid";
    }
}

static vd_status truncated(const vd_pb_reader *r, const char *what)
{
    return vd_error(VD_ERR_FORMAT,
                    "'%s' is not a valid SentencePiece model: truncated %s at byte %zu; "
                    "the file is cut short or is not a .model file",
                    r->source, what, r->base + r->pos);
}

static vd_status read_varint(vd_pb_reader *r, uint64_t *out)
{
    uint64_t v = 0;
    size_t start = r->pos;
    for (int i = 0; i < 10; i++) {
        if (r->pos >= r->size) {
            r->pos = start;
            return truncated(r, "varint");
        }
        uint8_t b = r->data[r->pos++];
        if (i == 9 && b > 1)
            return vd_error(VD_ERR_FORMAT, "'%s' is not a valid SentencePiece model: varint at byte %zu overflows 64 bits",
                            r->source, r->base + start);
        v |= (uint64_t)(b & 0x7F) << (7 * i);
        if (b < 0x80) {
            *out = v;
            return VD_OK;
        }
    }
    return vd_error(VD_ERR_FORMAT, "'%s' is not a valid SentencePiece model: varint at byte %zu is longer than 10 bytes",
                    r->source, r->base + start);
}

static vd_status read_fixed(vd_pb_reader *r, int bytes, uint64_t *out)
{
    if (r->size - r->pos < (size_t)bytes)
        return truncated(r, bytes == 4 ? "32-bit value" : "64-bit value");
    uint64_t v = 0;
    for (int i = 0; i < bytes; i++)
        v |= (uint64_t)r->data[r->pos + (size_t)i] << (8 * i);
    r->pos += (size_t)bytes;
    *out = v;
    return VD_OK;
}

static vd_status read_field(vd_pb_reader *r, vd_pb_field *f, int depth);

/* Skip the body of a group up to its matching end-group key. */
static vd_status skip_group(vd_pb_reader *r, uint32_t number, int depth)
{
    if (depth >= VD_PB_MAX_GROUP_DEPTH)
        return vd_error(VD_ERR_FORMAT, "'%s' is not a valid SentencePiece model: groups nested deeper than %d at byte %zu",
                        r->source, VD_PB_MAX_GROUP_DEPTH, r->base + r->pos);
    for (;;) {
        if (r->pos >= r->size)
            return truncated(r, "group");
        vd_pb_field inner;
        VD_TRY(read_field(r, &inner, depth + 1));
        if (inner.wire_type == VD_PB_END_GROUP) {
            if (inner.number != number)
                return vd_error(VD_ERR_FORMAT,
                                "'%s' is not a valid SentencePiece model: group %u closed by end-group %u at byte %zu",
                                r->source, number, inner.number, inner.offset);
            return VD_OK;
        }
    }
}

static vd_status read_field(vd_pb_reader *r, vd_pb_field *f, int depth)
{
    f->offset = r->base + r->pos;
    f->data = NULL;
    f->len = 0;
    f->data_offset = 0;
    f->varint = 0;
    uint64_t key;
    VD_TRY(read_varint(r, &key));
    if (key > UINT32_MAX || (key >> 3) == 0)
        return vd_error(VD_ERR_FORMAT, "'%s' is not a valid SentencePiece model: invalid field key %llu at byte %zu",
                        r->source, (unsigned long long)key, f->offset);
    f->number = (uint32_t)(key >> 3);
    f->wire_type = (int)(key & 7);
    switch (f->wire_type) {
    case VD_PB_VARINT:
        return read_varint(r, &f->varint);
    case VD_PB_FIXED64:
        return read_fixed(r, 8, &f->varint);
    case VD_PB_FIXED32:
        return read_fixed(r, 4, &f->varint);
    case VD_PB_LEN: {
        uint64_t len;
        VD_TRY(read_varint(r, &len));
        if (len > r->size - r->pos)
            return vd_error(VD_ERR_FORMAT,
                            "'%s' is not a valid SentencePiece model: field %u at byte %zu claims %llu bytes but only "
                            "%zu remain; the file is truncated or corrupt",
                            r->source, f->number, f->offset, (unsigned long long)len, r->size - r->pos);
        f->data = r->data + r->pos;
        f->len = (size_t)len;
        f->data_offset = r->base + r->pos;
        r->pos += (size_t)len;
        return VD_OK;
    }
    case VD_PB_START_GROUP:
        return skip_group(r, f->number, depth);
    case VD_PB_END_GROUP:
        if (depth == 0)
            return vd_error(VD_ERR_FORMAT, "'%s' is not a valid SentencePiece model: unexpected end-group at byte %zu",
                            r->source, f->offset);
        return VD_OK;
    default:
        return vd_error(VD_ERR_FORMAT, "'%s' is not a valid SentencePiece model: invalid wire type %d at byte %zu",
                        r->source, f->wire_type, f->offset);
    }
}

vd_status vd_pb_next(vd_pb_reader *r, vd_pb_field *f)
{
    return read_field(r, f, 0);
}

vd_status vd_pb_expect(const vd_pb_reader *r, const vd_pb_field *f, int wire_type, const char *field_name)
{
    if (f->wire_type == wire_type)
        return VD_OK;
    return vd_error(VD_ERR_FORMAT,
                    "'%s' is not a valid SentencePiece model: field %s (number %u) at byte %zu has wire type %s, "
                    "expected %s",
                    r->source, field_name, f->number, f->offset, wire_type_name(f->wire_type),
                    wire_type_name(wire_type));
}

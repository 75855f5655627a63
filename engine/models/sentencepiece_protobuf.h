/* Reading the protobuf wire format from a bounded buffer: every read checks
 * the remaining length, so hostile input fails cleanly.  Only what a
 * SentencePiece ModelProto needs: varints, 32/64-bit fixed values,
 * length-delimited fields, and skipping unknown fields (groups included). */
#ifndef VD_MODELS_SENTENCEPIECE_PROTOBUF_H
#define VD_MODELS_SENTENCEPIECE_PROTOBUF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "vdiff/status.h"

enum {
    VD_PB_VARINT = 0,
    VD_PB_FIXED64 = 1,
    VD_PB_LEN = 2,
    VD_PB_START_GROUP = 3,
    VD_PB_END_GROUP = 4,
    VD_PB_FIXED32 = 5
};

typedef struct vd_pb_reader {
    const uint8_t *data;
    size_t size;
    size_t pos;
    size_t base;         /* offset of data[0] in the file, for messages */
    const char *source;  /* the file, for messages */
} vd_pb_reader;

typedef struct vd_pb_field {
    uint32_t number;
    int wire_type;
    size_t offset;       /* of the field's key in the file, for messages */
    uint64_t varint;     /* VARINT, FIXED64, FIXED32 (zero-extended) */
    const uint8_t *data; /* LEN payload */
    size_t len;          /* LEN payload bytes */
    size_t data_offset;  /* of the LEN payload in the file */
} vd_pb_field;

static inline void vd_pb_reader_init(vd_pb_reader *r, const uint8_t *data, size_t size, size_t base,
                                     const char *source)
{
    r->data = data;
    r->size = size;
    r->pos = 0;
    r->base = base;
    r->source = source;
}

static inline bool vd_pb_done(const vd_pb_reader *r)
{
    return r->pos >= r->size;
}

/* Read the next field with its value.  Fields of group wire type are
 * skipped whole (up to a nesting depth) and returned with their number so
 * the caller can treat them as unknown. */
vd_status vd_pb_next(vd_pb_reader *r, vd_pb_field *f);

/* A reader over a LEN field's payload. */
static inline void vd_pb_sub(const vd_pb_reader *parent, const vd_pb_field *f, vd_pb_reader *sub)
{
    vd_pb_reader_init(sub, f->data, f->len, f->data_offset, parent->source);
}

/* Check a known field's wire type; the message names the field. */
vd_status vd_pb_expect(const vd_pb_reader *r, const vd_pb_field *f, int wire_type, const char *field_name);

static inline float vd_pb_float(const vd_pb_field *f)
{
    union {
        uint32_t u;
        float f;
    } v;
    v.u = (uint32_t)f->varint;
    return v.f;
}

#endif

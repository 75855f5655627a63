/* A SentencePiece model as loaded from a serialized ModelProto
 * (sentencepiece_model.proto) or built from a tokenizer.json: the pieces
 * and the settings that affect encoding.  Training-only settings are
 * skipped; the denormalizer is ignored. */
#ifndef VD_MODELS_SENTENCEPIECE_MODEL_H
#define VD_MODELS_SENTENCEPIECE_MODEL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "vdiff/status.h"

/* ModelProto.SentencePiece.Type */
typedef enum vd_sp_piece_type {
    VD_SP_NORMAL = 1,
    VD_SP_UNKNOWN = 2,
    VD_SP_CONTROL = 3,
    VD_SP_USER_DEFINED = 4,
    VD_SP_UNUSED = 5,
    VD_SP_BYTE = 6
} vd_sp_piece_type;

/* TrainerSpec.ModelType */
enum { VD_SP_MODEL_UNIGRAM = 1, VD_SP_MODEL_BPE = 2, VD_SP_MODEL_WORD = 3, VD_SP_MODEL_CHAR = 4 };

typedef struct vd_sp_piece {
    uint32_t offset; /* of the piece's bytes in vd_sp_model.text (NUL-terminated there) */
    uint32_t len;    /* bytes, without the terminator */
    float score;
    vd_sp_piece_type type;
} vd_sp_piece;

typedef struct vd_sp_model {
    vd_sp_piece *pieces;
    size_t n_pieces, cap_pieces;
    char *text; /* all piece strings, each followed by a NUL */
    size_t text_len, text_cap;

    /* trainer_spec */
    int32_t model_type;
    bool byte_fallback;
    bool treat_whitespace_as_suffix;
    /* The names SentencePiece looks special pieces up by (NULL: default
     * "<unk>", "<s>", "</s>", "<pad>"). */
    char *unk_piece, *bos_piece, *eos_piece, *pad_piece;

    /* normalizer_spec */
    char *normalizer_name;        /* may be NULL */
    uint8_t *charsmap;            /* precompiled_charsmap; NULL if empty */
    size_t charsmap_size;
    bool add_dummy_prefix;        /* default true */
    bool remove_extra_whitespaces; /* default true */
    bool escape_whitespaces;      /* default true */
} vd_sp_model;

/* Defaults as the proto declares them, no pieces. */
void vd_sp_model_init(vd_sp_model *m);
void vd_sp_model_free(vd_sp_model *m);

/* Append a piece (bytes copied).  Fails only when out of memory or past
 * 2^31 pieces / 4 GiB of piece text. */
vd_status vd_sp_model_add_piece(vd_sp_model *m, const void *bytes, size_t len, float score,
                                vd_sp_piece_type type);

/* Replace *dst with a copy of `len` bytes (NUL-terminated). */
vd_status vd_sp_model_set_string(char **dst, const void *bytes, size_t len);

/* Parse a serialized ModelProto.  `source` names it in messages (a path or
 * "in-memory model").  Structural errors (truncation, bad lengths or wire
 * types, unknown piece types) are VD_ERR_FORMAT; semantic checks are left
 * to vd_sp_vocab_build. */
vd_status vd_sp_model_parse(const uint8_t *data, size_t size, const char *source, vd_sp_model *out);

static inline const char *vd_sp_piece_str(const vd_sp_model *m, size_t i)
{
    return m->text + m->pieces[i].offset;
}

#endif

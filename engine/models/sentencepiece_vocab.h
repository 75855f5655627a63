/* The checked vocabulary of a Unigram model: the lookups encoding needs,
 * built with the checks SentencePiece makes when it loads a model
 * (model_interface.cc InitializePieces, unigram_model.cc Model). */
#ifndef VD_MODELS_SENTENCEPIECE_VOCAB_H
#define VD_MODELS_SENTENCEPIECE_VOCAB_H

#include <stdbool.h>
#include <stdint.h>

#include "models/sentencepiece_model.h"
#include "models/sentencepiece_trie.h"

typedef struct vd_sp_vocab {
    const vd_sp_model *model;
    vd_sp_trie pieces;       /* NORMAL, USER_DEFINED and UNUSED pieces -> id */
    vd_sp_trie reserved;     /* CONTROL, UNKNOWN and BYTE pieces -> id */
    vd_sp_trie user_defined; /* USER_DEFINED pieces only (the normalizer's matcher) */
    bool has_user_defined;
    int32_t unk_id;
    int32_t byte_ids[256];   /* with byte_fallback: id of <0xNN> */
    float min_score;         /* over NORMAL pieces: <unk> scores min_score - 10 */
    int32_t eos_id, bos_id, pad_id; /* -1 if absent or not a control piece */
} vd_sp_vocab;

/* Check `m` (which must outlive the vocab) and build the lookups.  Refuses
 * non-Unigram models (VD_ERR_UNSUPPORTED) and models SentencePiece refuses
 * to load (VD_ERR_FORMAT: empty or duplicate pieces, pieces holding a NUL
 * byte (refused since 0.2.2), no or several <unk>, byte pieces without
 * byte_fallback or missing with it, no pieces). */
vd_status vd_sp_vocab_build(vd_sp_vocab *v, const vd_sp_model *m, const char *source);
void vd_sp_vocab_free(vd_sp_vocab *v);

/* SentencePiece's PieceToId: reserved pieces first, then normal ones, else
 * the unknown id. */
int32_t vd_sp_vocab_piece_to_id(const vd_sp_vocab *v, const uint8_t *piece, size_t len);

#endif

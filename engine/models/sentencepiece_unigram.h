/* Unigram encoding of normalized text: SentencePiece 0.2.2's Viterbi
 * (unigram_model.cc, Model::EncodeOptimized, the default encoder: float
 * path scores, user-defined pieces scoring 0.1 * (bytes - 1); see the .c
 * file for how 0.1.x differs) and the unknown-piece handling of
 * SentencePieceProcessor (byte fallback, or one <unk> per run of unknown
 * characters). */
#ifndef VD_MODELS_SENTENCEPIECE_UNIGRAM_H
#define VD_MODELS_SENTENCEPIECE_UNIGRAM_H

#include <stddef.h>
#include <stdint.h>

#include "models/sentencepiece_vocab.h"

/* Append the ids of text[0..n) to *ids (a malloc'ed array of *n_ids
 * entries and *cap capacity, grown with realloc). */
vd_status vd_sp_unigram_encode(const vd_sp_vocab *v, const uint8_t *text, size_t n, int32_t **ids, size_t *n_ids,
                               size_t *cap);

#endif

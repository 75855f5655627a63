/* A Hugging Face tokenizer.json with a Unigram model, read into the same
 * vd_sp_model a SentencePiece ModelProto gives.
 *
 * Understood: model {type "Unigram", vocab [[piece, score], ...], unk_id,
 * byte_fallback}; added_tokens (special -> control piece, others ->
 * user-defined piece; ids past the vocab extend it); normalizer null,
 * Precompiled (base64 charsmap), Sequence, Replace (" {2,}" -> " " and
 * " " -> "▁"), Strip, Prepend("▁"); pre_tokenizer null, Metaspace
 * (add_prefix_space or prepend_scheme), WhitespaceSplit, Sequence.
 * Whitespace handling maps onto SentencePiece's flags: any of Strip,
 * WhitespaceSplit or Replace " {2,}" -> remove_extra_whitespaces,
 * Metaspace or Replace " " -> "▁" -> escape_whitespaces, a Metaspace
 * prefix or Prepend("▁") -> add_dummy_prefix.  Other normalizers and
 * pre-tokenizers (NFKC, Lowercase, ByteLevel, ...) and non-Unigram models
 * fail with VD_ERR_UNSUPPORTED naming what was found. */
#ifndef VD_MODELS_TOKENIZER_JSON_H
#define VD_MODELS_TOKENIZER_JSON_H

#include <stddef.h>

#include "models/sentencepiece_model.h"

vd_status vd_tokenizer_json_parse(const char *json, size_t len, const char *source, vd_sp_model *out);

#endif

/* The SentencePiece tokenizer umT5 uses: a Unigram model, normalized and
 * encoded exactly as the SentencePiece library 0.2.2 does (ids match
 * `SentencePieceProcessor.encode` id for id; see tests/tokenizer, whose
 * golden data 0.2.2 wrote).  Earlier versions differ in rare ties, with
 * user-defined pieces and on corrupt models, as described below.
 *
 * Sources (vd_tokenizer_open detects the kind by content, not by name):
 *  - a serialized SentencePiece ModelProto (`spiece.model`, `*.model`);
 *  - a safetensors or GGUF checkpoint holding that ModelProto in a uint8
 *    (or int8) tensor named `spiece_model`, as ComfyUI text-encoder files do;
 *  - a Hugging Face `tokenizer.json` with a Unigram model.  It is mapped
 *    onto SentencePiece semantics: Precompiled charsmap, whitespace
 *    collapsing (WhitespaceSplit, Strip or Replace " {2,}"), Metaspace
 *    (dummy prefix, "▁" escaping); special added tokens become control
 *    pieces (never matched in text) and non-special added tokens
 *    user-defined pieces.  The Hugging Face fast tokenizer's own edge cases
 *    (added tokens split out of the raw text, grapheme-wise charsmap lookup)
 *    are not reproduced.
 *
 * Only Unigram models are supported (umT5, T5, mT5 use Unigram); BPE, WORD
 * and CHAR models are refused with VD_ERR_UNSUPPORTED.
 *
 * Normalization follows sentencepiece/normalizer.cc: user-defined pieces
 * pass through unchanged; otherwise the longest match in the precompiled
 * character map (a Darts double-array trie) is replaced by its normalized
 * string; a character with no match is copied; each byte of invalid UTF-8
 * becomes U+FFFD (one byte consumed).  Then, as configured by the model:
 * leading, trailing and repeated ' ' are removed, a ' ' is prepended (or
 * appended with treat_whitespace_as_suffix), and ' ' is written as U+2581.
 *
 * Encoding is SentencePiece's Viterbi over all matching pieces (NORMAL and
 * USER_DEFINED; UNUSED, CONTROL, BYTE and UNKNOWN pieces are never matched
 * in text) with the same float arithmetic and tie-breaking; a character no
 * piece covers scores min_score - 10 as <unk>.  With byte_fallback each
 * UTF-8 byte of such a character becomes its <0xNN> piece; without it a
 * run of consecutive unknowns becomes one <unk> id.
 *
 * Where SentencePiece versions differ, 0.2.2 is followed:
 *  - path scores are summed and compared in float; of two paths whose
 *    float totals tie, the one whose last piece starts earlier (is longer)
 *    wins.  0.1.x to 0.2.1 summed in double and compared that with the
 *    stored float, so near-ties could go the other way ("ffd" as f ff d in
 *    0.2.2, ff f d before);
 *  - a user-defined piece of n bytes scores 0.1 * (n - 1); before 0.2.2
 *    every user-defined piece scored about -0.1 whatever its length;
 *  - loading refuses a piece holding a NUL byte and a character map whose
 *    trie offsets point out of bounds (new in 0.2.2), or whose trie is not
 *    whole 1024-byte blocks or whose strings lack a final NUL (new in
 *    0.2.1); a map match whose string index lies outside the strings
 *    counts as no match (0.2.1; 0.1.x read out of bounds).
 * See sentencepiece_unigram.c and sentencepiece_charsmap.c.
 *
 * A tokenizer is immutable after loading: encoding from several threads at
 * once is safe. */
#ifndef VD_MODELS_TOKENIZER_H
#define VD_MODELS_TOKENIZER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "vdiff/status.h"

typedef struct vd_tokenizer vd_tokenizer;

/* Load from a file: a .model, a checkpoint with a `spiece_model` tensor, or a
 * tokenizer.json.  Failures name the file and say what is wrong
 * (VD_ERR_NOT_FOUND, VD_ERR_IO, VD_ERR_FORMAT for corrupt data,
 * VD_ERR_UNSUPPORTED for a non-Unigram model). */
vd_status vd_tokenizer_open(const char *path, vd_tokenizer **out);

/* Load from the bytes of a serialized ModelProto (copied; `bytes` may be
 * freed afterwards). */
vd_status vd_tokenizer_from_memory(const void *bytes, size_t size, vd_tokenizer **out);

void vd_tokenizer_free(vd_tokenizer *tok);

/* Encode a NUL-terminated UTF-8 string.
 *
 * add_eos appends the model's EOS id (1 for umT5); it fails with
 * VD_ERR_INVALID_ARGUMENT if the model has no EOS piece.  max_tokens > 0
 * truncates the result to at most max_tokens ids, counting the EOS: as the
 * Hugging Face tokenizer truncates, the first max_tokens - 1 text ids are
 * kept and the EOS follows.  max_tokens == 0 means no limit.
 *
 * Invalid UTF-8 is not an error: as in SentencePiece each offending byte
 * becomes U+FFFD after the character map was consulted (so, unlike a
 * literal U+FFFD, which nmt_nfkc maps to a space, it usually encodes as the
 * byte pieces <0xEF><0xBF><0xBD>, or <unk> without byte fallback).
 *
 * On success *ids is a malloc'ed array of *n ids (free() it; NULL when
 * *n == 0). */
vd_status vd_tokenizer_encode(const vd_tokenizer *tok, const char *text, size_t max_tokens, bool add_eos,
                              int32_t **ids, size_t *n);

/* The same for `len` bytes that may contain NUL bytes. */
vd_status vd_tokenizer_encode_bytes(const vd_tokenizer *tok, const char *text, size_t len, size_t max_tokens,
                                    bool add_eos, int32_t **ids, size_t *n);

/* The normalized form SentencePiece encodes ("▁Hello▁world" for
 * "  Hello   world"), malloc'ed and NUL-terminated, length in *out_len. */
vd_status vd_tokenizer_normalize(const vd_tokenizer *tok, const char *text, size_t len, char **out,
                                 size_t *out_len);

/* Number of pieces (ids run from 0 to vocab_size - 1).  umT5's embedding
 * table has more rows (256384) than its tokenizer has pieces. */
size_t vd_tokenizer_vocab_size(const vd_tokenizer *tok);

/* The piece of an id ("▁the", "</s>", "<0x0A>"), or NULL if out of range.
 * Valid while the tokenizer lives. */
const char *vd_tokenizer_piece(const vd_tokenizer *tok, int32_t id);

/* The id of a piece as SentencePiece's PieceToId finds it (control and
 * byte pieces first, then normal ones); the unknown id if absent. */
int32_t vd_tokenizer_piece_to_id(const vd_tokenizer *tok, const char *piece);

/* Special ids as SentencePiece reports them: the id of the model's eos /
 * pad / bos piece ("</s>", "<pad>", "<s>" unless the model renames them) if
 * that piece is a control piece, else -1.  unk is always >= 0. */
int32_t vd_tokenizer_eos_id(const vd_tokenizer *tok);
int32_t vd_tokenizer_pad_id(const vd_tokenizer *tok);
int32_t vd_tokenizer_bos_id(const vd_tokenizer *tok);
int32_t vd_tokenizer_unk_id(const vd_tokenizer *tok);

#endif

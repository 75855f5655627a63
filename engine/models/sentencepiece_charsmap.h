/* SentencePiece's precompiled character map (normalizer_spec.
 * precompiled_charsmap, also the base64 "precompiled_charsmap" of a
 * tokenizer.json): a little-endian uint32 byte size of a Darts-clone
 * double-array trie, the trie's 32-bit units, then NUL-terminated
 * replacement strings that the trie's values index.
 *
 * Loading checks the map as SentencePiece 0.2.2 does (whole 1024-byte trie
 * blocks, in-bounds child offsets, NUL-terminated strings); every unit and
 * string access is bounds-checked as well, so a corrupt map yields "no
 * match", never a read outside the blob. */
#ifndef VD_MODELS_SENTENCEPIECE_CHARSMAP_H
#define VD_MODELS_SENTENCEPIECE_CHARSMAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "vdiff/status.h"

typedef struct vd_sp_charsmap {
    const uint8_t *units; /* n_units little-endian uint32 */
    size_t n_units;
    const char *strings;  /* replacement strings */
    size_t strings_size;
    const char *source;   /* for messages */
} vd_sp_charsmap;

/* Split a blob (which must outlive the map) and check it as SentencePiece
 * 0.2.2 does; fails with VD_ERR_FORMAT if it is too short, its trie size is
 * past its end or not a whole number of 1024-byte blocks, a trie offset
 * points outside the trie, or its strings are empty or do not end with a
 * NUL. */
vd_status vd_sp_charsmap_init(vd_sp_charsmap *cm, const uint8_t *blob, size_t size, const char *source);

/* Longest key of the trie that is a prefix of s[0..n): returns its length
 * (0: none) and its value in *value. */
size_t vd_sp_charsmap_longest(const vd_sp_charsmap *cm, const uint8_t *s, size_t n, uint32_t *value);

/* The replacement string a value points at (up to its NUL); false if the
 * value is outside the strings, which SentencePiece 0.2.2 treats as no
 * match (normalizer.cc NormalizePrefix). */
bool vd_sp_charsmap_string(const vd_sp_charsmap *cm, uint32_t value, const char **str, size_t *len);

#endif

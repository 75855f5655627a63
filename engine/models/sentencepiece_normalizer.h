/* SentencePiece text normalization (normalizer.cc), byte for byte:
 *
 *  1. The input is cut into units, each the longest of: a user-defined
 *     piece (copied unchanged), a key of the precompiled character map
 *     (replaced by its string, possibly empty; as in SentencePiece 0.2.2 a
 *     longest key whose string index lies outside the map counts as no
 *     match), else one UTF-8 character (copied), or one invalid byte
 *     (replaced by U+FFFD).
 *  2. With remove_extra_whitespaces: leading units that normalize to
 *     exactly " " are dropped; a unit's leading ' ' are dropped while the
 *     text so far ends with ' ' (collapsing runs); trailing ' ' (or "▁")
 *     are cut at the end.  Only U+0020 counts: the character map is what
 *     turns tabs, newlines, NBSP, U+3000, ... into ' ' (nmt_nfkc does).
 *  3. With add_dummy_prefix a space is put first (last with
 *     treat_whitespace_as_suffix, after the trailing cut) unless the text
 *     is empty after step 2's leading cut.
 *  4. With escape_whitespaces every ' ' written is U+2581 "▁". */
#ifndef VD_MODELS_SENTENCEPIECE_NORMALIZER_H
#define VD_MODELS_SENTENCEPIECE_NORMALIZER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "models/sentencepiece_charsmap.h"
#include "models/sentencepiece_model.h"
#include "models/sentencepiece_trie.h"

typedef struct vd_sp_normalizer {
    vd_sp_charsmap charsmap;
    bool has_charsmap;
    const vd_sp_trie *user_defined; /* NULL: no user-defined pieces */
    bool add_dummy_prefix;
    bool remove_extra_whitespaces;
    bool escape_whitespaces;
    bool treat_whitespace_as_suffix;
} vd_sp_normalizer;

/* Settings from `m`, whose charsmap must outlive the normalizer.  Fails if
 * the charsmap is malformed (SentencePiece 0.2.2 refuses such a model too). */
vd_status vd_sp_normalizer_init(vd_sp_normalizer *nz, const vd_sp_model *m, const vd_sp_trie *user_defined,
                                const char *source);

/* Normalize in[0..n) into a malloc'ed, NUL-terminated string. */
vd_status vd_sp_normalize(const vd_sp_normalizer *nz, const uint8_t *in, size_t n, char **out, size_t *out_len);

#endif

/* UTF-8 as SentencePiece reads it (util.h/util.cc), so that edge cases
 * (invalid bytes, surrogates, overlong forms) behave identically. */
#ifndef VD_MODELS_SENTENCEPIECE_UTF8_H
#define VD_MODELS_SENTENCEPIECE_UTF8_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Length a character claims from its first byte alone (1 for stray
 * continuation bytes, 4 for 0xF0..0xFF); callers clip it to what is left. */
static inline size_t vd_sp_one_char_len(uint8_t first)
{
    static const uint8_t len[16] = {1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 3, 4};
    return len[first >> 4];
}

/* Decode one character of s[0..n) (n >= 1).  Returns true and its length
 * for a well-formed, non-surrogate, shortest-form character (a literal
 * U+FFFD included); false with *len = 1 otherwise. */
bool vd_sp_utf8_valid_char(const uint8_t *s, size_t n, size_t *len);

/* Write code point cp (< 0x110000) as UTF-8 into out[0..4); returns bytes. */
size_t vd_sp_utf8_encode(uint32_t cp, char *out);

#endif

#include "models/sentencepiece_utf8.h"

static bool is_trail(uint8_t b)
{
    return (b & 0xC0) == 0x80;
}

static bool is_valid_codepoint(uint32_t c)
{
    return c < 0xD800 || (c >= 0xE000 && c <= 0x10FFFF);
}

bool vd_sp_utf8_valid_char(const uint8_t *s, size_t n, size_t *len)
{
    uint8_t b0 = s[0];
    if (b0 < 0x80) {
        *len = 1;
        return true;
    }
    if (n >= 2 && (b0 & 0xE0) == 0xC0) {
        uint32_t cp = ((uint32_t)(b0 & 0x1F) << 6) | (s[1] & 0x3F);
        if (is_trail(s[1]) && cp >= 0x80 && is_valid_codepoint(cp)) {
            *len = 2;
            return true;
        }
    } else if (n >= 3 && (b0 & 0xF0) == 0xE0) {
        uint32_t cp = ((uint32_t)(b0 & 0x0F) << 12) | ((uint32_t)(s[1] & 0x3F) << 6) | (s[2] & 0x3F);
        if (is_trail(s[1]) && is_trail(s[2]) && cp >= 0x800 && is_valid_codepoint(cp)) {
            *len = 3;
            return true;
        }
    } else if (n >= 4 && (b0 & 0xF8) == 0xF0) {
        uint32_t cp = ((uint32_t)(b0 & 0x07) << 18) | ((uint32_t)(s[1] & 0x3F) << 12) |
                      ((uint32_t)(s[2] & 0x3F) << 6) | (s[3] & 0x3F);
        if (is_trail(s[1]) && is_trail(s[2]) && is_trail(s[3]) && cp >= 0x10000 && is_valid_codepoint(cp)) {
            *len = 4;
            return true;
        }
    }
    *len = 1;
    return false;
}

size_t vd_sp_utf8_encode(uint32_t cp, char *out)
{
    if (cp < 0x80) {
        out[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        out[0] = (char)(0xC0 | (cp >> 6));
        out[1] = (char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        out[0] = (char)(0xE0 | (cp >> 12));
        out[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        out[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    out[0] = (char)(0xF0 | (cp >> 18));
    out[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    out[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
    out[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

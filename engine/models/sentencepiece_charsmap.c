#include "models/sentencepiece_charsmap.h"

#include <stdbool.h>
#include <string.h>

#include "core/error.h"

/* A Darts-clone unit: bits 0-7 label, bit 8 "has a leaf child", bit 9
 * offset scale, bits 10-31 offset; a leaf unit holds a 31-bit value and
 * has bit 31 set in its label so that no byte matches it. */
static uint32_t unit_at(const vd_sp_charsmap *cm, size_t i)
{
    const uint8_t *p = cm->units + i * 4;
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint32_t unit_label(uint32_t u)
{
    return u & ((1u << 31) | 0xFFu);
}

static int unit_has_leaf(uint32_t u)
{
    return (u >> 8) & 1;
}

static uint32_t unit_value(uint32_t u)
{
    return u & ((1u << 31) - 1);
}

static size_t unit_offset(uint32_t u)
{
    return (size_t)(u >> 10) << ((u & (1u << 9)) >> 6);
}

/* Darts-clone's DoubleArray::validate(), which SentencePiece 0.2.2 runs on
 * the map at load: every non-leaf unit with a child offset must point at a
 * 256-unit block inside the array. */
static bool units_valid(const vd_sp_charsmap *cm)
{
    for (size_t i = 0; i < cm->n_units; i++) {
        uint32_t u = unit_at(cm, i);
        if (unit_label(u) > 0xFF)
            continue; /* a leaf: its offset bits hold a value */
        size_t off = unit_offset(u);
        if (off != 0 && ((i ^ off) | 0xFF) >= cm->n_units)
            return false;
    }
    return true;
}

vd_status vd_sp_charsmap_init(vd_sp_charsmap *cm, const uint8_t *blob, size_t size, const char *source)
{
    memset(cm, 0, sizeof *cm);
    cm->source = source;
    if (size <= 4)
        return vd_error(VD_ERR_FORMAT,
                        "'%s': precompiled_charsmap of %zu bytes is too short to hold a trie; the model is corrupt",
                        source, size);
    uint32_t trie_size = (uint32_t)blob[0] | (uint32_t)blob[1] << 8 | (uint32_t)blob[2] << 16 | (uint32_t)blob[3] << 24;
    /* As SentencePiece checks it (the size is compared with the whole blob). */
    if (trie_size >= size || trie_size > size - 4)
        return vd_error(VD_ERR_FORMAT,
                        "'%s': precompiled_charsmap claims a %u-byte trie in a %zu-byte blob; the model is corrupt",
                        source, trie_size, size);
    /* SentencePiece 0.2.1 and later (normalizer.cc
     * DecodePrecompiledCharsMap) also require whole 256-unit blocks and
     * NUL-terminated strings, and 0.2.2 in-bounds child offsets; 0.1.x read
     * past the map instead. */
    if (trie_size < 1024 || trie_size % 1024 != 0)
        return vd_error(VD_ERR_FORMAT,
                        "'%s': precompiled_charsmap trie of %u bytes is not a whole number of 1024-byte blocks; the "
                        "model is corrupt",
                        source, trie_size);
    cm->units = blob + 4;
    cm->n_units = trie_size / 4;
    cm->strings = (const char *)blob + 4 + trie_size;
    cm->strings_size = size - 4 - trie_size;
    if (cm->strings_size == 0 || cm->strings[cm->strings_size - 1] != '\0')
        return vd_error(VD_ERR_FORMAT,
                        "'%s': precompiled_charsmap strings are not NUL-terminated; the model is corrupt", source);
    if (!units_valid(cm))
        return vd_error(VD_ERR_FORMAT,
                        "'%s': precompiled_charsmap trie has offsets outside its %zu units; the model is corrupt",
                        source, cm->n_units);
    return VD_OK;
}

size_t vd_sp_charsmap_longest(const vd_sp_charsmap *cm, const uint8_t *s, size_t n, uint32_t *value)
{
    size_t best = 0;
    if (cm->n_units == 0)
        return 0;
    size_t pos = unit_offset(unit_at(cm, 0));
    for (size_t i = 0; i < n; i++) {
        pos ^= s[i];
        if (pos >= cm->n_units)
            break;
        uint32_t u = unit_at(cm, pos);
        if (unit_label(u) != s[i])
            break;
        pos ^= unit_offset(u);
        if (unit_has_leaf(u)) {
            if (pos >= cm->n_units)
                break;
            best = i + 1;
            *value = unit_value(unit_at(cm, pos));
        }
    }
    return best;
}

bool vd_sp_charsmap_string(const vd_sp_charsmap *cm, uint32_t value, const char **str, size_t *len)
{
    if (value >= cm->strings_size)
        return false;
    /* init checked that the strings end with a NUL. */
    const char *end = memchr(cm->strings + value, '\0', cm->strings_size - value);
    *str = cm->strings + value;
    *len = (size_t)(end - (cm->strings + value));
    return true;
}

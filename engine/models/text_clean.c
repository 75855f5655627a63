#include "models/text_clean.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "models/sentencepiece_utf8.h"

typedef struct entity {
    const char *name;
    uint32_t cp;
    bool legacy; /* also recognised without the ';' (HTML5 legacy names) */
} entity;

/* HTML 4 named character references (plus apos and the upper-case legacy
 * names), with their HTML5 code points, sorted bytewise for bsearch. */
static const entity kEntities[] = {
    {"AElig", 0x00C6, 1}, {"AMP", 0x0026, 1}, {"Aacute", 0x00C1, 1}, {"Acirc", 0x00C2, 1}, {"Agrave", 0x00C0, 1},
    {"Alpha", 0x0391, 0}, {"Aring", 0x00C5, 1}, {"Atilde", 0x00C3, 1}, {"Auml", 0x00C4, 1}, {"Beta", 0x0392, 0},
    {"COPY", 0x00A9, 1}, {"Ccedil", 0x00C7, 1}, {"Chi", 0x03A7, 0}, {"Dagger", 0x2021, 0}, {"Delta", 0x0394, 0},
    {"ETH", 0x00D0, 1}, {"Eacute", 0x00C9, 1}, {"Ecirc", 0x00CA, 1}, {"Egrave", 0x00C8, 1},
    {"Epsilon", 0x0395, 0}, {"Eta", 0x0397, 0}, {"Euml", 0x00CB, 1}, {"GT", 0x003E, 1}, {"Gamma", 0x0393, 0},
    {"Iacute", 0x00CD, 1}, {"Icirc", 0x00CE, 1}, {"Igrave", 0x00CC, 1}, {"Iota", 0x0399, 0}, {"Iuml", 0x00CF, 1},
    {"Kappa", 0x039A, 0}, {"LT", 0x003C, 1}, {"Lambda", 0x039B, 0}, {"Mu", 0x039C, 0}, {"Ntilde", 0x00D1, 1},
    {"Nu", 0x039D, 0}, {"OElig", 0x0152, 0}, {"Oacute", 0x00D3, 1}, {"Ocirc", 0x00D4, 1}, {"Ograve", 0x00D2, 1},
    {"Omega", 0x03A9, 0}, {"Omicron", 0x039F, 0}, {"Oslash", 0x00D8, 1}, {"Otilde", 0x00D5, 1},
    {"Ouml", 0x00D6, 1}, {"Phi", 0x03A6, 0}, {"Pi", 0x03A0, 0}, {"Prime", 0x2033, 0}, {"Psi", 0x03A8, 0},
    {"QUOT", 0x0022, 1}, {"REG", 0x00AE, 1}, {"Rho", 0x03A1, 0}, {"Scaron", 0x0160, 0}, {"Sigma", 0x03A3, 0},
    {"THORN", 0x00DE, 1}, {"Tau", 0x03A4, 0}, {"Theta", 0x0398, 0}, {"Uacute", 0x00DA, 1}, {"Ucirc", 0x00DB, 1},
    {"Ugrave", 0x00D9, 1}, {"Upsilon", 0x03A5, 0}, {"Uuml", 0x00DC, 1}, {"Xi", 0x039E, 0}, {"Yacute", 0x00DD, 1},
    {"Yuml", 0x0178, 0}, {"Zeta", 0x0396, 0}, {"aacute", 0x00E1, 1}, {"acirc", 0x00E2, 1}, {"acute", 0x00B4, 1},
    {"aelig", 0x00E6, 1}, {"agrave", 0x00E0, 1}, {"alefsym", 0x2135, 0}, {"alpha", 0x03B1, 0},
    {"amp", 0x0026, 1}, {"and", 0x2227, 0}, {"ang", 0x2220, 0}, {"apos", 0x0027, 0}, {"aring", 0x00E5, 1},
    {"asymp", 0x2248, 0}, {"atilde", 0x00E3, 1}, {"auml", 0x00E4, 1}, {"bdquo", 0x201E, 0}, {"beta", 0x03B2, 0},
    {"brvbar", 0x00A6, 1}, {"bull", 0x2022, 0}, {"cap", 0x2229, 0}, {"ccedil", 0x00E7, 1}, {"cedil", 0x00B8, 1},
    {"cent", 0x00A2, 1}, {"chi", 0x03C7, 0}, {"circ", 0x02C6, 0}, {"clubs", 0x2663, 0}, {"cong", 0x2245, 0},
    {"copy", 0x00A9, 1}, {"crarr", 0x21B5, 0}, {"cup", 0x222A, 0}, {"curren", 0x00A4, 1}, {"dArr", 0x21D3, 0},
    {"dagger", 0x2020, 0}, {"darr", 0x2193, 0}, {"deg", 0x00B0, 1}, {"delta", 0x03B4, 0}, {"diams", 0x2666, 0},
    {"divide", 0x00F7, 1}, {"eacute", 0x00E9, 1}, {"ecirc", 0x00EA, 1}, {"egrave", 0x00E8, 1},
    {"empty", 0x2205, 0}, {"emsp", 0x2003, 0}, {"ensp", 0x2002, 0}, {"epsilon", 0x03B5, 0}, {"equiv", 0x2261, 0},
    {"eta", 0x03B7, 0}, {"eth", 0x00F0, 1}, {"euml", 0x00EB, 1}, {"euro", 0x20AC, 0}, {"exist", 0x2203, 0},
    {"fnof", 0x0192, 0}, {"forall", 0x2200, 0}, {"frac12", 0x00BD, 1}, {"frac14", 0x00BC, 1},
    {"frac34", 0x00BE, 1}, {"frasl", 0x2044, 0}, {"gamma", 0x03B3, 0}, {"ge", 0x2265, 0}, {"gt", 0x003E, 1},
    {"hArr", 0x21D4, 0}, {"harr", 0x2194, 0}, {"hearts", 0x2665, 0}, {"hellip", 0x2026, 0},
    {"iacute", 0x00ED, 1}, {"icirc", 0x00EE, 1}, {"iexcl", 0x00A1, 1}, {"igrave", 0x00EC, 1},
    {"image", 0x2111, 0}, {"infin", 0x221E, 0}, {"int", 0x222B, 0}, {"iota", 0x03B9, 0}, {"iquest", 0x00BF, 1},
    {"isin", 0x2208, 0}, {"iuml", 0x00EF, 1}, {"kappa", 0x03BA, 0}, {"lArr", 0x21D0, 0}, {"lambda", 0x03BB, 0},
    {"lang", 0x27E8, 0}, {"laquo", 0x00AB, 1}, {"larr", 0x2190, 0}, {"lceil", 0x2308, 0}, {"ldquo", 0x201C, 0},
    {"le", 0x2264, 0}, {"lfloor", 0x230A, 0}, {"lowast", 0x2217, 0}, {"loz", 0x25CA, 0}, {"lrm", 0x200E, 0},
    {"lsaquo", 0x2039, 0}, {"lsquo", 0x2018, 0}, {"lt", 0x003C, 1}, {"macr", 0x00AF, 1}, {"mdash", 0x2014, 0},
    {"micro", 0x00B5, 1}, {"middot", 0x00B7, 1}, {"minus", 0x2212, 0}, {"mu", 0x03BC, 0}, {"nabla", 0x2207, 0},
    {"nbsp", 0x00A0, 1}, {"ndash", 0x2013, 0}, {"ne", 0x2260, 0}, {"ni", 0x220B, 0}, {"not", 0x00AC, 1},
    {"notin", 0x2209, 0}, {"nsub", 0x2284, 0}, {"ntilde", 0x00F1, 1}, {"nu", 0x03BD, 0}, {"oacute", 0x00F3, 1},
    {"ocirc", 0x00F4, 1}, {"oelig", 0x0153, 0}, {"ograve", 0x00F2, 1}, {"oline", 0x203E, 0},
    {"omega", 0x03C9, 0}, {"omicron", 0x03BF, 0}, {"oplus", 0x2295, 0}, {"or", 0x2228, 0}, {"ordf", 0x00AA, 1},
    {"ordm", 0x00BA, 1}, {"oslash", 0x00F8, 1}, {"otilde", 0x00F5, 1}, {"otimes", 0x2297, 0},
    {"ouml", 0x00F6, 1}, {"para", 0x00B6, 1}, {"part", 0x2202, 0}, {"permil", 0x2030, 0}, {"perp", 0x22A5, 0},
    {"phi", 0x03C6, 0}, {"pi", 0x03C0, 0}, {"piv", 0x03D6, 0}, {"plusmn", 0x00B1, 1}, {"pound", 0x00A3, 1},
    {"prime", 0x2032, 0}, {"prod", 0x220F, 0}, {"prop", 0x221D, 0}, {"psi", 0x03C8, 0}, {"quot", 0x0022, 1},
    {"rArr", 0x21D2, 0}, {"radic", 0x221A, 0}, {"rang", 0x27E9, 0}, {"raquo", 0x00BB, 1}, {"rarr", 0x2192, 0},
    {"rceil", 0x2309, 0}, {"rdquo", 0x201D, 0}, {"real", 0x211C, 0}, {"reg", 0x00AE, 1}, {"rfloor", 0x230B, 0},
    {"rho", 0x03C1, 0}, {"rlm", 0x200F, 0}, {"rsaquo", 0x203A, 0}, {"rsquo", 0x2019, 0}, {"sbquo", 0x201A, 0},
    {"scaron", 0x0161, 0}, {"sdot", 0x22C5, 0}, {"sect", 0x00A7, 1}, {"shy", 0x00AD, 1}, {"sigma", 0x03C3, 0},
    {"sigmaf", 0x03C2, 0}, {"sim", 0x223C, 0}, {"spades", 0x2660, 0}, {"sub", 0x2282, 0}, {"sube", 0x2286, 0},
    {"sum", 0x2211, 0}, {"sup", 0x2283, 0}, {"sup1", 0x00B9, 1}, {"sup2", 0x00B2, 1}, {"sup3", 0x00B3, 1},
    {"supe", 0x2287, 0}, {"szlig", 0x00DF, 1}, {"tau", 0x03C4, 0}, {"there4", 0x2234, 0}, {"theta", 0x03B8, 0},
    {"thetasym", 0x03D1, 0}, {"thinsp", 0x2009, 0}, {"thorn", 0x00FE, 1}, {"tilde", 0x02DC, 0},
    {"times", 0x00D7, 1}, {"trade", 0x2122, 0}, {"uArr", 0x21D1, 0}, {"uacute", 0x00FA, 1}, {"uarr", 0x2191, 0},
    {"ucirc", 0x00FB, 1}, {"ugrave", 0x00F9, 1}, {"uml", 0x00A8, 1}, {"upsih", 0x03D2, 0},
    {"upsilon", 0x03C5, 0}, {"uuml", 0x00FC, 1}, {"weierp", 0x2118, 0}, {"xi", 0x03BE, 0}, {"yacute", 0x00FD, 1},
    {"yen", 0x00A5, 1}, {"yuml", 0x00FF, 1}, {"zeta", 0x03B6, 0}, {"zwj", 0x200D, 0}, {"zwnj", 0x200C, 0},
};

static int compare_entity(const void *key, const void *elem)
{
    return strcmp(key, ((const entity *)elem)->name);
}

static const entity *find_entity(const char *name, size_t len)
{
    char buf[40];
    if (len == 0 || len >= sizeof buf)
        return NULL;
    memcpy(buf, name, len);
    buf[len] = '\0';
    return bsearch(buf, kEntities, sizeof kEntities / sizeof kEntities[0], sizeof kEntities[0], compare_entity);
}

/* Windows-1252 meanings of the numeric references 0x80-0x9F (HTML5 table;
 * 0 keeps the C1 control itself). */
static const uint16_t kCp1252[32] = {
    0x20AC, 0,      0x201A, 0x0192, 0x201E, 0x2026, 0x2020, 0x2021, 0x02C6, 0x2030, 0x0160,
    0x2039, 0x0152, 0,      0x017D, 0,      0,      0x2018, 0x2019, 0x201C, 0x201D, 0x2022,
    0x2013, 0x2014, 0x02DC, 0x2122, 0x0161, 0x203A, 0x0153, 0,      0x017E, 0x0178,
};

typedef struct buf {
    char *p;
    size_t len, cap;
} buf;

static vd_status put(buf *b, const char *s, size_t n)
{
    if (n > SIZE_MAX - 1 - b->len)
        return vd_error(VD_ERR_OUT_OF_MEMORY, "text too long to clean");
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 64;
        while (cap < b->len + n + 1)
            cap = cap > SIZE_MAX / 2 ? b->len + n + 1 : cap * 2;
        char *p = realloc(b->p, cap);
        if (!p)
            return vd_error(VD_ERR_OUT_OF_MEMORY, "out of memory cleaning text");
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
    return VD_OK;
}

static vd_status put_cp(buf *b, uint32_t cp)
{
    char tmp[4];
    return put(b, tmp, vd_sp_utf8_encode(cp, tmp));
}

/* Python's html._replace_charref for a numeric reference. */
static vd_status put_numeric(buf *b, uint32_t num, bool too_big)
{
    if (!too_big && num >= 0x80 && num <= 0x9F)
        return put_cp(b, kCp1252[num - 0x80] ? kCp1252[num - 0x80] : num);
    if (!too_big && num == 0x0D)
        return put(b, "\r", 1);
    if (too_big || num == 0 || num > 0x10FFFF || (num >= 0xD800 && num <= 0xDFFF))
        return put_cp(b, 0xFFFD);
    bool invalid = (num >= 0x1 && num <= 0x8) || num == 0xB || (num >= 0xE && num <= 0x1F) || num == 0x7F ||
                   (num >= 0xFDD0 && num <= 0xFDEF) || (num & 0xFFFE) == 0xFFFE;
    return invalid ? VD_OK : put_cp(b, num);
}

static bool is_digit(char c)
{
    return c >= '0' && c <= '9';
}

static int hex_value(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Bytes of the UTF-8 character at s (1 for an invalid byte). */
static size_t char_len(const char *s, size_t n)
{
    size_t len;
    vd_sp_utf8_valid_char((const uint8_t *)s, n, &len);
    return len;
}

/* "&#..." at s[0..n): returns bytes consumed, 0 if no reference. */
static size_t numeric_ref(const char *s, size_t n, buf *b, vd_status *st)
{
    size_t i = 2;
    bool hex = n > 2 && (s[2] == 'x' || s[2] == 'X');
    if (hex)
        i = 3;
    size_t first = i;
    uint32_t num = 0;
    bool too_big = false;
    while (i < n && (hex ? hex_value(s[i]) >= 0 : is_digit(s[i]))) {
        uint32_t d = (uint32_t)(hex ? hex_value(s[i]) : s[i] - '0');
        /* Python's int is unbounded; anything past U+10FFFF reads the same. */
        if (!too_big) {
            num = num * (hex ? 16u : 10u) + d;
            too_big = num > 0x10FFFF;
        }
        i++;
    }
    if (i == first)
        return 0;
    if (i < n && s[i] == ';')
        i++;
    *st = put_numeric(b, num, too_big);
    return i;
}

static bool is_name_stop(char c)
{
    return c == '\t' || c == '\n' || c == '\f' || c == ' ' || c == '<' || c == '&' || c == '#' || c == ';';
}

/* "&name" at s[0..n): returns bytes consumed (always > 0). */
static size_t named_ref(const char *s, size_t n, buf *b, vd_status *st)
{
    /* Up to 32 characters that cannot end a name, then an optional ';'. */
    size_t ends[33];
    size_t chars = 0, i = 1;
    ends[0] = 1;
    while (i < n && chars < 32 && !is_name_stop(s[i])) {
        i += char_len(s + i, n - i);
        ends[++chars] = i;
    }
    if (chars == 0) {
        *st = put(b, "&", 1);
        return 1;
    }
    size_t name_end = i;
    bool semicolon = i < n && s[i] == ';';
    size_t end = semicolon ? i + 1 : i;
    const entity *e = find_entity(s + 1, name_end - 1);
    if (e && (semicolon || e->legacy)) {
        *st = put_cp(b, e->cp);
        return end;
    }
    /* The longest legacy name that is a proper prefix (at least 2 chars). */
    size_t total = chars + (semicolon ? 1 : 0);
    for (size_t x = total - 1; x >= 2; x--) {
        const entity *p = find_entity(s + 1, ends[x] - 1);
        if (p && p->legacy) {
            *st = put_cp(b, p->cp);
            if (*st == VD_OK)
                *st = put(b, s + ends[x], end - ends[x]);
            return end;
        }
    }
    *st = put(b, s, end);
    return end;
}

static vd_status unescape(const char *text, buf *b)
{
    size_t n = strlen(text);
    VD_TRY(put(b, "", 0));
    size_t i = 0;
    while (i < n) {
        const char *amp = memchr(text + i, '&', n - i);
        size_t stop = amp ? (size_t)(amp - text) : n;
        VD_TRY(put(b, text + i, stop - i));
        i = stop;
        if (i >= n)
            break;
        vd_status st = VD_OK;
        size_t used = 0;
        if (i + 1 < n && text[i + 1] == '#')
            used = numeric_ref(text + i, n - i, b, &st);
        if (used == 0 && !(i + 1 < n && text[i + 1] == '#'))
            used = named_ref(text + i, n - i, b, &st);
        if (used == 0) {
            st = put(b, "&", 1);
            used = 1;
        }
        VD_TRY(st);
        i += used;
    }
    return VD_OK;
}

vd_status vd_html_unescape(const char *text, char **out)
{
    if (!text || !out)
        return vd_error(VD_ERR_INVALID_ARGUMENT, "vd_html_unescape: NULL argument");
    buf b = {0};
    vd_status s = unescape(text, &b);
    if (s != VD_OK) {
        free(b.p);
        *out = NULL;
        return s;
    }
    *out = b.p;
    return VD_OK;
}

/* Code point of the character at s (or UINT32_MAX for an invalid byte). */
static uint32_t decode(const char *s, size_t n, size_t *len)
{
    const uint8_t *u = (const uint8_t *)s;
    if (!vd_sp_utf8_valid_char(u, n, len))
        return UINT32_MAX;
    switch (*len) {
    case 1: return u[0];
    case 2: return (uint32_t)(u[0] & 0x1F) << 6 | (u[1] & 0x3F);
    case 3: return (uint32_t)(u[0] & 0x0F) << 12 | (uint32_t)(u[1] & 0x3F) << 6 | (u[2] & 0x3F);
    default:
        return (uint32_t)(u[0] & 0x07) << 18 | (uint32_t)(u[1] & 0x3F) << 12 | (uint32_t)(u[2] & 0x3F) << 6 |
               (u[3] & 0x3F);
    }
}

/* Unicode White_Space. */
static bool is_white_space(uint32_t c)
{
    return (c >= 0x09 && c <= 0x0D) || c == 0x20 || c == 0x85 || c == 0xA0 || c == 0x1680 ||
           (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 || c == 0x202F || c == 0x205F || c == 0x3000;
}

/* Python's str.isspace(): White_Space plus the information separators. */
static bool is_py_space(uint32_t c)
{
    return is_white_space(c) || (c >= 0x1C && c <= 0x1F);
}

/* Strip Python whitespace from both ends of s[0..*n), in place. */
static const char *py_strip(const char *s, size_t *n)
{
    size_t begin = 0, end = *n;
    while (begin < end) {
        size_t len;
        if (!is_py_space(decode(s + begin, end - begin, &len)))
            break;
        begin += len;
    }
    /* Walk forward to find where the trailing run of spaces starts. */
    size_t last_non_space = begin;
    for (size_t i = begin; i < end;) {
        size_t len;
        uint32_t c = decode(s + i, end - i, &len);
        i += len;
        if (!is_py_space(c))
            last_non_space = i;
    }
    *n = last_non_space - begin;
    return s + begin;
}

vd_status vd_text_clean(const char *text, char **out)
{
    if (!text || !out)
        return vd_error(VD_ERR_INVALID_ARGUMENT, "vd_text_clean: NULL argument");
    *out = NULL;
    char *once, *twice;
    VD_TRY(vd_html_unescape(text, &once));
    vd_status s = vd_html_unescape(once, &twice);
    free(once);
    if (s != VD_OK)
        return s;

    size_t n = strlen(twice);
    const char *p = py_strip(twice, &n);
    buf b = {0};
    s = put(&b, "", 0);
    bool in_space = false;
    for (size_t i = 0; i < n && s == VD_OK;) {
        size_t len;
        uint32_t c = decode(p + i, n - i, &len);
        if (is_white_space(c)) {
            if (!in_space)
                s = put(&b, " ", 1);
            in_space = true;
        } else {
            s = put(&b, p + i, len);
            in_space = false;
        }
        i += len;
    }
    free(twice);
    if (s != VD_OK) {
        free(b.p);
        return s;
    }
    /* The reference strips again; after the first strip it changes nothing. */
    size_t m = b.len;
    const char *q = py_strip(b.p, &m);
    memmove(b.p, q, m);
    b.p[m] = '\0';
    *out = b.p;
    return VD_OK;
}

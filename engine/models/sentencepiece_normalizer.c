#include "models/sentencepiece_normalizer.h"

#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "models/sentencepiece_utf8.h"

static const char kSpaceSymbol[] = "\xE2\x96\x81"; /* U+2581 */
static const char kReplacementChar[] = "\xEF\xBF\xBD"; /* U+FFFD */

vd_status vd_sp_normalizer_init(vd_sp_normalizer *nz, const vd_sp_model *m, const vd_sp_trie *user_defined,
                                const char *source)
{
    memset(nz, 0, sizeof *nz);
    nz->user_defined = user_defined;
    nz->add_dummy_prefix = m->add_dummy_prefix;
    nz->remove_extra_whitespaces = m->remove_extra_whitespaces;
    nz->escape_whitespaces = m->escape_whitespaces;
    nz->treat_whitespace_as_suffix = m->treat_whitespace_as_suffix;
    if (m->charsmap_size) {
        VD_TRY(vd_sp_charsmap_init(&nz->charsmap, m->charsmap, m->charsmap_size, source));
        nz->has_charsmap = true;
    }
    return VD_OK;
}

/* One unit of input and what it normalizes to. */
typedef struct unit {
    const char *str;
    size_t len;      /* bytes of str */
    size_t consumed; /* input bytes */
} unit;

static size_t longest_user_defined(const vd_sp_trie *t, const uint8_t *s, size_t n)
{
    uint32_t node = 0;
    size_t best = 0;
    for (size_t i = 0; i < n; i++) {
        node = vd_sp_trie_step(t, node, s[i]);
        if (node == 0)
            break;
        if (t->nodes[node].value >= 0)
            best = i + 1;
    }
    return best;
}

static void next_unit(const vd_sp_normalizer *nz, const uint8_t *s, size_t n, unit *u)
{
    if (nz->user_defined) {
        size_t len = longest_user_defined(nz->user_defined, s, n);
        if (len) {
            *u = (unit){(const char *)s, len, len};
            return;
        }
    }
    if (nz->has_charsmap) {
        uint32_t value = 0;
        size_t len = vd_sp_charsmap_longest(&nz->charsmap, s, n, &value);
        /* The longest match only; one whose value is outside the strings
         * counts as no match (SentencePiece 0.2.2), not as the next
         * shorter one. */
        if (len && vd_sp_charsmap_string(&nz->charsmap, value, &u->str, &u->len)) {
            u->consumed = len;
            return;
        }
    }
    size_t len;
    if (vd_sp_utf8_valid_char(s, n, &len))
        *u = (unit){(const char *)s, len, len};
    else
        *u = (unit){kReplacementChar, 3, 1};
}

typedef struct out_buf {
    char *p;
    size_t len, cap;
} out_buf;

static vd_status reserve(out_buf *b, size_t extra)
{
    if (extra > SIZE_MAX - 1 - b->len)
        return vd_error(VD_ERR_OUT_OF_MEMORY, "text too long to normalize");
    size_t need = b->len + extra + 1;
    if (need <= b->cap)
        return VD_OK;
    size_t cap = b->cap ? b->cap : 64;
    while (cap < need)
        cap = cap > SIZE_MAX / 2 ? need : cap * 2;
    char *p = realloc(b->p, cap);
    if (!p)
        return vd_error(VD_ERR_OUT_OF_MEMORY, "out of memory normalizing %zu bytes of text", b->len + extra);
    b->p = p;
    b->cap = cap;
    return VD_OK;
}

static vd_status append(out_buf *b, const char *s, size_t n)
{
    VD_TRY(reserve(b, n));
    memcpy(b->p + b->len, s, n);
    b->len += n;
    return VD_OK;
}

static vd_status add_ws(const vd_sp_normalizer *nz, out_buf *b)
{
    return nz->escape_whitespaces ? append(b, kSpaceSymbol, 3) : append(b, " ", 1);
}

static vd_status normalize(const vd_sp_normalizer *nz, const uint8_t *in, size_t n, out_buf *b)
{
    unit u;
    if (nz->remove_extra_whitespaces) {
        /* Drop leading units that normalize to exactly one space. */
        while (n > 0) {
            next_unit(nz, in, n, &u);
            if (!(u.len == 1 && u.str[0] == ' '))
                break;
            in += u.consumed;
            n -= u.consumed;
        }
    }
    if (n == 0)
        return VD_OK;
    /* Escaping can triple the size: reserve once for the common case. */
    VD_TRY(reserve(b, n <= SIZE_MAX / 3 - 8 ? n * 3 + 3 : n));

    if (!nz->treat_whitespace_as_suffix && nz->add_dummy_prefix)
        VD_TRY(add_ws(nz, b));

    bool prev_space = nz->remove_extra_whitespaces;
    while (n > 0) {
        next_unit(nz, in, n, &u);
        const char *s = u.str;
        size_t len = u.len;
        while (prev_space && len > 0 && s[0] == ' ') {
            s++;
            len--;
        }
        if (len > 0) {
            for (size_t i = 0; i < len; i++) {
                if (nz->escape_whitespaces && s[i] == ' ')
                    VD_TRY(append(b, kSpaceSymbol, 3));
                else
                    VD_TRY(append(b, &s[i], 1));
            }
            prev_space = s[len - 1] == ' ';
        }
        in += u.consumed;
        n -= u.consumed;
        if (!nz->remove_extra_whitespaces)
            prev_space = false;
    }

    if (nz->remove_extra_whitespaces) {
        const char *space = nz->escape_whitespaces ? kSpaceSymbol : " ";
        size_t slen = nz->escape_whitespaces ? 3 : 1;
        while (b->len >= slen && memcmp(b->p + b->len - slen, space, slen) == 0)
            b->len -= slen;
    }

    if (nz->treat_whitespace_as_suffix && nz->add_dummy_prefix)
        VD_TRY(add_ws(nz, b));
    return VD_OK;
}

vd_status vd_sp_normalize(const vd_sp_normalizer *nz, const uint8_t *in, size_t n, char **out, size_t *out_len)
{
    out_buf b = {0};
    vd_status s = normalize(nz, in, n, &b);
    if (s == VD_OK)
        s = reserve(&b, 0);
    if (s != VD_OK) {
        free(b.p);
        *out = NULL;
        *out_len = 0;
        return s;
    }
    b.p[b.len] = '\0';
    *out = b.p;
    *out_len = b.len;
    return VD_OK;
}

/* Prompt cleaning as the Wan reference does it before tokenizing
 * (wan/modules/tokenizers.py, clean='whitespace'):
 *
 *     text = ftfy.fix_text(text)                  -- NOT ported
 *     text = html.unescape(html.unescape(text))
 *     text = text.strip()
 *     text = regex.sub(r'\s+', ' ', text).strip()
 *
 * ftfy (mojibake repair, e.g. "CafÃ©" -> "Café", curly-quote and
 * ligature fixes) is not ported: well-formed UTF-8 prompts are unaffected
 * by it in practice, but text that ftfy would repair tokenizes differently.
 *
 * html.unescape follows Python's rules: "&name;" and, for the legacy names
 * HTML5 allows without ';' (amp, lt, gt, quot, nbsp, copy, eacute, ...),
 * "&name"; the longest legacy prefix of an unknown name ("&ampx" -> "&x");
 * "&#NNN;" / "&#xHH;" with optional ';', where 0 and surrogates or values
 * past U+10FFFF become U+FFFD, 0x80-0x9F map through Windows-1252, and
 * noncharacters and most C0/C1 controls are dropped.  Named references are
 * limited to the 253 of HTML 4 (plus &apos; and the upper-case legacy
 * AMP, LT, GT, QUOT, COPY, REG); rarer HTML5 names (&NotEqualTilde;, ...)
 * are left as written.
 *
 * Whitespace: runs of Unicode White_Space characters (what the `regex`
 * module's \s matches: TAB..CR, space, U+0085, NBSP, U+1680,
 * U+2000..U+200A, U+2028/9, U+202F, U+205F, U+3000) become one ' '; the
 * ends are stripped of those and of U+001C..U+001F as Python's str.strip()
 * does.  Invalid UTF-8 bytes are kept as they are. */
#ifndef VD_MODELS_TEXT_CLEAN_H
#define VD_MODELS_TEXT_CLEAN_H

#include "vdiff/status.h"

/* One pass of Python's html.unescape over a NUL-terminated UTF-8 string;
 * *out is malloc'ed. */
vd_status vd_html_unescape(const char *text, char **out);

/* The whole cleaning above (without ftfy); *out is malloc'ed. */
vd_status vd_text_clean(const char *text, char **out);

#endif

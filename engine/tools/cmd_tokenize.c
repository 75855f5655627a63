/* vdiff tokenize: the ids the umT5 tokenizer gives a text. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "models/text_clean.h"
#include "models/tokenizer.h"
#include "tools/args.h"
#include "tools/commands.h"

static const char *const tokenize_help =
    "usage: vdiff tokenize --tokenizer FILE [--clean] [--no-eos] [--max-tokens N] TEXT\n"
    "       vdiff tokenize --tokenizer FILE [...] --file PATH\n\n"
    "Print the token ids of TEXT on one line, separated by spaces, EOS included.\n"
    "FILE is a SentencePiece .model, a Hugging Face tokenizer.json, or a checkpoint\n"
    "holding the tokenizer (a ComfyUI umt5 file with a spiece_model tensor).\n\n"
    "  --file PATH       read the text's bytes from PATH ('-' = standard input)\n"
    "                    instead of TEXT (any bytes, NUL and invalid UTF-8 included)\n"
    "  --clean           clean the text first as Wan does (HTML unescape twice,\n"
    "                    collapse whitespace; vdiff encode-prompt always does)\n"
    "  --no-eos          do not append the EOS id\n"
    "  --max-tokens N    keep at most N ids, EOS included (default 512, Wan's\n"
    "                    text length; 0 = no limit)\n";

/* The whole of a file (or stdin) as bytes; *len set; NUL-terminated. */
static char *read_all(const char *path, size_t *len)
{
    FILE *f = strcmp(path, "-") == 0 ? stdin : fopen(path, "rb");
    if (!f) {
        vd_error(VD_ERR_NOT_FOUND, "cannot open '%s'", path);
        return NULL;
    }
    size_t cap = 4096, n = 0;
    char *buf = malloc(cap);
    while (buf) {
        if (n + 1 >= cap) {
            char *b = realloc(buf, cap * 2);
            if (!b) {
                free(buf);
                buf = NULL;
                break;
            }
            buf = b, cap *= 2;
        }
        size_t got = fread(buf + n, 1, cap - n - 1, f);
        n += got;
        if (got == 0)
            break;
    }
    bool failed = ferror(f) != 0;
    if (f != stdin)
        fclose(f);
    if (!buf) {
        vd_error(VD_ERR_OUT_OF_MEMORY, "out of memory reading '%s'", path);
        return NULL;
    }
    if (failed) {
        free(buf);
        vd_error(VD_ERR_IO, "reading '%s' failed", path);
        return NULL;
    }
    buf[n] = '\0';
    *len = n;
    return buf;
}

int vd_cmd_tokenize(int argc, char **argv)
{
    vd_args a;
    vd_args_init(&a, "vdiff tokenize", argc, argv);
    const char *tok_path = NULL, *text = NULL, *file = NULL;
    bool clean = false, eos = true, opt;
    int64_t max_tokens = 512;
    const char *s;
    while ((s = vd_args_next(&a, &opt))) {
        bool ok = true;
        if (!opt) {
            if (text)
                return vd_args_error(&a, "more than one TEXT given (quote the text)");
            text = s;
        } else if (vd_args_is(&a, "--help") || vd_args_is(&a, "-h")) {
            fputs(tokenize_help, stdout);
            return 0;
        } else if (vd_args_is(&a, "--tokenizer") || vd_args_is(&a, "-t"))
            ok = (tok_path = vd_args_value(&a)) != NULL;
        else if (vd_args_is(&a, "--file"))
            ok = (file = vd_args_value(&a)) != NULL;
        else if (vd_args_is(&a, "--clean"))
            clean = true;
        else if (vd_args_is(&a, "--no-eos"))
            eos = false;
        else if (vd_args_is(&a, "--max-tokens"))
            ok = vd_args_int(&a, 0, INT32_MAX, &max_tokens);
        else
            return vd_args_error(&a, "unknown option %s", s);
        if (!ok)
            return 2;
    }
    if (!tok_path)
        return vd_args_error(&a, "--tokenizer FILE is required");
    if (!text && !file)
        return vd_args_error(&a, "no TEXT given (use --file PATH to read it from a file)");
    if (text && file)
        return vd_args_error(&a, "give TEXT or --file, not both");

    size_t len = 0;
    char *owned = NULL;
    if (file) {
        if (!(owned = read_all(file, &len)))
            return vd_tool_fail(a.cmd, NULL);
        text = owned;
    } else {
        len = strlen(text);
    }
    if (clean) {
        char *c = NULL;
        if (vd_text_clean(text, &c) != VD_OK) {
            free(owned);
            return vd_tool_fail(a.cmd, "cleaning the text");
        }
        free(owned);
        text = owned = c;
        len = strlen(c);
    }
    vd_tokenizer *tok = NULL;
    int32_t *ids = NULL;
    size_t n = 0;
    vd_status st = vd_tokenizer_open(tok_path, &tok);
    if (st == VD_OK)
        st = vd_tokenizer_encode_bytes(tok, text, len, (size_t)max_tokens, eos, &ids, &n);
    free(owned);
    vd_tokenizer_free(tok);
    if (st != VD_OK)
        return vd_tool_fail(a.cmd, NULL);
    for (size_t i = 0; i < n; i++)
        printf("%s%" PRId32, i ? " " : "", ids[i]);
    printf("\n");
    free(ids);
    return fflush(stdout) == 0 ? 0 : 1;
}

/* The tokenizer API on the project's default small model (umT5 id layout:
 * <pad> 0, </s> 1, <unk> 2, no <s>): special ids, pieces, normalization,
 * EOS and truncation rules, invalid input, concurrent use. */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "models/tokenizer.h"
#include "test_util.h"

#define SMALL_MODEL VD_TEST_DATA_DIR "/tokenizer/vdiff-small.model"

static void check_normalize_n(const vd_tokenizer *tok, const char *in, size_t len, const char *want,
                              size_t want_len)
{
    char *out = NULL;
    size_t n = 0;
    vd_status s = vd_tokenizer_normalize(tok, in, len, &out, &n);
    CHECKF(s == VD_OK, "normalize: %s", vd_last_error());
    if (s == VD_OK)
        CHECKF(n == want_len && memcmp(out, want, n) == 0 && out[n] == '\0',
               "normalize(\"%.*s\") = \"%s\", expected \"%s\"", (int)len, in, out, want);
    free(out);
}

static void check_normalize(const vd_tokenizer *tok, const char *in, size_t len, const char *want)
{
    check_normalize_n(tok, in, len, want, strlen(want));
}

static size_t encode_count(const vd_tokenizer *tok, const char *text, size_t max, bool eos, int32_t **ids)
{
    size_t n = 0;
    CHECK_OK(vd_tokenizer_encode(tok, text, max, eos, ids, &n));
    return n;
}

typedef struct worker {
    const vd_tokenizer *tok;
    const char *text;
    int32_t *ids;
    size_t n;
    vd_status status;
} worker;

static void *run_worker(void *arg)
{
    worker *w = arg;
    for (int i = 0; i < 10; i++) {
        free(w->ids);
        w->status = vd_tokenizer_encode(w->tok, w->text, 512, true, &w->ids, &w->n);
        if (w->status != VD_OK)
            break;
    }
    return NULL;
}

int main(void)
{
    vd_tokenizer *tok = NULL;
    CHECK_OK(vd_tokenizer_open(SMALL_MODEL, &tok));
    if (!tok)
        return test_finish("test_tokenizer_api");

    CHECK(vd_tokenizer_vocab_size(tok) == 2000);
    CHECK(vd_tokenizer_pad_id(tok) == 0);
    CHECK(vd_tokenizer_eos_id(tok) == 1);
    CHECK(vd_tokenizer_unk_id(tok) == 2);
    CHECK(vd_tokenizer_bos_id(tok) == -1);
    CHECK(strcmp(vd_tokenizer_piece(tok, 0), "<pad>") == 0);
    CHECK(strcmp(vd_tokenizer_piece(tok, 1), "</s>") == 0);
    CHECK(strcmp(vd_tokenizer_piece(tok, 2), "<unk>") == 0);
    CHECK(vd_tokenizer_piece(tok, 2000) == NULL);
    CHECK(vd_tokenizer_piece(tok, -1) == NULL);
    CHECK(vd_tokenizer_piece_to_id(tok, "</s>") == 1);
    CHECK(vd_tokenizer_piece_to_id(tok, "no such piece, surely") == 2);
    int32_t byte_a = vd_tokenizer_piece_to_id(tok, "<0x41>");
    CHECK(byte_a > 2 && strcmp(vd_tokenizer_piece(tok, byte_a), "<0x41>") == 0);
    int32_t word = vd_tokenizer_piece_to_id(tok, "\xE2\x96\x81the");
    CHECK(word > 2 && strcmp(vd_tokenizer_piece(tok, word), "\xE2\x96\x81the") == 0);

    /* nmt_nfkc normalization with SentencePiece's whitespace rules. */
    const char *sp = "\xE2\x96\x81";
    char want[64];
    check_normalize(tok, "  Hello   world  ", 17, "\xE2\x96\x81Hello\xE2\x96\x81world");
    check_normalize(tok, "", 0, "");
    check_normalize(tok, " \t\n ", 4, "");
    check_normalize(tok, "\xEF\xBC\xA1\xEF\xBC\xA2", 6, "\xE2\x96\x81" "AB"); /* full-width */
    check_normalize(tok, "\xEF\xAC\x81", 3, "\xE2\x96\x81" "fi");              /* ligature */
    check_normalize(tok, "a\tb\nc", 5, "\xE2\x96\x81" "a\xE2\x96\x81" "b\xE2\x96\x81" "c");
    snprintf(want, sizeof want, "%s\xEF\xBF\xBD" "x", sp);
    check_normalize(tok, "\xFFx", 2, want); /* invalid byte -> U+FFFD */
    check_normalize_n(tok, "a\0b", 3, "\xE2\x96\x81" "a\0b", 6);

    /* An invalid byte becomes U+FFFD after the character map is consulted,
     * so it falls back to the bytes EF BF BD (a literal U+FFFD is mapped to
     * a space by nmt_nfkc instead). */
    int32_t *a = NULL;
    size_t na = 0;
    CHECK_OK(vd_tokenizer_encode(tok, "x\xFFy", 0, false, &a, &na));
    int32_t ef = vd_tokenizer_piece_to_id(tok, "<0xEF>"), bf = vd_tokenizer_piece_to_id(tok, "<0xBF>"),
            bd = vd_tokenizer_piece_to_id(tok, "<0xBD>");
    bool found = false;
    for (size_t i = 0; i + 2 < na; i++)
        found |= a[i] == ef && a[i + 1] == bf && a[i + 2] == bd;
    CHECK(found);
    free(a);

    /* EOS and truncation: HF keeps max - 1 text ids, then the EOS. */
    const char *text = "A cat sits on a windowsill watching snowflakes fall past the glass.";
    int32_t *full = NULL, *ids = NULL;
    size_t n_full = encode_count(tok, text, 0, false, &full);
    CHECK(n_full > 8);
    size_t n = encode_count(tok, text, 0, true, &ids);
    CHECK(n == n_full + 1 && ids[n - 1] == 1 && memcmp(ids, full, n_full * sizeof *ids) == 0);
    free(ids);
    n = encode_count(tok, text, 5, true, &ids);
    CHECK(n == 5 && ids[4] == 1 && memcmp(ids, full, 4 * sizeof *ids) == 0);
    free(ids);
    n = encode_count(tok, text, 1, true, &ids);
    CHECK(n == 1 && ids[0] == 1);
    free(ids);
    n = encode_count(tok, text, 3, false, &ids);
    CHECK(n == 3 && memcmp(ids, full, 3 * sizeof *ids) == 0);
    free(ids);
    n = encode_count(tok, text, n_full + 1, true, &ids);
    CHECK(n == n_full + 1 && ids[n_full] == 1);
    free(ids);
    free(full);
    n = encode_count(tok, "", 512, true, &ids);
    CHECK(n == 1 && ids[0] == 1);
    free(ids);
    ids = (int32_t *)&n; /* must be reset */
    n = encode_count(tok, "   ", 512, false, &ids);
    CHECK(n == 0 && ids == NULL);

    /* A long prompt is cut to 512 ids including the EOS. */
    size_t big_len = 1 << 20;
    char *big = malloc(big_len + 1);
    CHECK(big != NULL);
    if (big) {
        for (size_t i = 0; i < big_len; i++)
            big[i] = "the quick brown fox \xE4\xB8\x80 "[i % 24];
        big[big_len] = '\0';
        n = encode_count(tok, big, 512, true, &ids);
        CHECK(n == 512 && ids[511] == 1);
        free(ids);
    }

    /* Concurrent encoding gives the same ids. */
    worker w[4];
    pthread_t th[4];
    for (int i = 0; i < 4; i++) {
        w[i] = (worker){tok, i % 2 ? text : big + big_len - 20000, NULL, 0, VD_OK};
        CHECK(pthread_create(&th[i], NULL, run_worker, &w[i]) == 0);
    }
    for (int i = 0; i < 4; i++) {
        pthread_join(th[i], NULL);
        CHECK(w[i].status == VD_OK);
    }
    CHECK(w[1].n == w[3].n && memcmp(w[1].ids, w[3].ids, w[1].n * sizeof(int32_t)) == 0);
    CHECK(w[0].n == 512 && w[0].n == w[2].n && memcmp(w[0].ids, w[2].ids, 512 * sizeof(int32_t)) == 0);
    for (int i = 0; i < 4; i++)
        free(w[i].ids);
    free(big);

    /* Bad arguments. */
    CHECK_FAILS(vd_tokenizer_encode(tok, NULL, 0, true, &ids, &n), VD_ERR_INVALID_ARGUMENT);
    CHECK_FAILS(vd_tokenizer_encode(NULL, "x", 0, true, &ids, &n), VD_ERR_INVALID_ARGUMENT);
    CHECK_FAILS(vd_tokenizer_encode_bytes(tok, NULL, 3, 0, true, &ids, &n), VD_ERR_INVALID_ARGUMENT);
    CHECK_FAILS(vd_tokenizer_open(NULL, &tok), VD_ERR_INVALID_ARGUMENT);
    CHECK(vd_tokenizer_vocab_size(NULL) == 0 && vd_tokenizer_piece(NULL, 0) == NULL);
    vd_tokenizer_free(NULL);

    vd_tokenizer_free(tok);
    return test_finish("test_tokenizer_api");
}

/* The unigram Viterbi's tie-breaking and user-defined piece scores, on
 * hand-built models, as SentencePiece 0.2.2 decides them (the golden data's
 * version; see engine/models/sentencepiece_unigram.c).  Each case here
 * encodes differently under SentencePiece 0.1.x to 0.2.1, so a regression to the
 * 0.1.x arithmetic fails this test even where the golden texts do not
 * happen to hit a tie. */
#include <stdlib.h>
#include <string.h>

#include "models/tokenizer.h"
#include "test_util.h"
#include "tokenizer_test_util.h"

/* A Unigram ModelProto: <unk> 0, <s> 1, </s> 2, then `pieces`; identity
 * normalization with a dummy prefix, whitespace collapsing and escaping. */
typedef struct piece_def {
    const char *piece;
    float score;
    int type; /* 1 NORMAL, 4 USER_DEFINED */
} piece_def;

static vd_tokenizer *build(const piece_def *pieces, size_t n)
{
    bytes m = {0};
    pb_piece(&m, "<unk>", 0, 2);
    pb_piece(&m, "<s>", 0, 3);
    pb_piece(&m, "</s>", 0, 3);
    for (size_t i = 0; i < n; i++)
        pb_piece(&m, pieces[i].piece, pieces[i].score, pieces[i].type);
    bytes t = {0};
    pb_uint(&t, 3, 1); /* model_type UNIGRAM */
    pb_len(&m, 2, t.p, t.len);
    bytes_free(&t);
    bytes ns = {0};
    pb_str(&ns, 1, "identity");
    pb_uint(&ns, 3, 1);
    pb_uint(&ns, 4, 1);
    pb_uint(&ns, 5, 1);
    pb_len(&m, 3, ns.p, ns.len);
    bytes_free(&ns);
    vd_tokenizer *tok = NULL;
    CHECK_OK(vd_tokenizer_from_memory(m.p, m.len, &tok));
    bytes_free(&m);
    return tok;
}

static void expect_pieces(const vd_tokenizer *tok, const char *text, const char *const *want, size_t n_want)
{
    int32_t *ids = NULL;
    size_t n = 0;
    CHECK_OK(vd_tokenizer_encode(tok, text, 0, false, &ids, &n));
    bool same = n == n_want;
    for (size_t i = 0; same && i < n; i++)
        same = strcmp(vd_tokenizer_piece(tok, ids[i]), want[i]) == 0;
    if (!same) {
        fprintf(stderr, "\"%s\" encodes as", text);
        for (size_t i = 0; i < n; i++)
            fprintf(stderr, " [%s]", vd_tokenizer_piece(tok, ids[i]));
        fprintf(stderr, "; expected");
        for (size_t i = 0; i < n_want; i++)
            fprintf(stderr, " [%s]", want[i]);
        fprintf(stderr, "\n");
    }
    CHECK(same);
    free(ids);
}

#define PIECES(...) (const char *const[]){__VA_ARGS__}, sizeof((const char *const[]){__VA_ARGS__}) / sizeof(char *)

/* "▁aaa" with pieces ▁ (-0.5), a (-1.9) and aa (-3.1) has two best
 * segmentations of equal exact total -5.5: ▁ a aa and ▁ aa a (▁ a a a is
 * -6.2).  Which one is returned depends on the arithmetic, since the
 * Viterbi keeps, at each byte position, only the best path ending there:
 *
 *  - a path ending at the last byte is either "aa" after the best path to
 *    "▁a" (tried first: its last piece starts earlier) or "a" after the
 *    best path to "▁aa" (tried second);
 *  - SentencePiece 0.2.2 adds the float piece score to the float path
 *    score in float, and a later candidate replaces the stored one only
 *    when strictly greater.  Here the two float sums are equal, so the
 *    first candidate stays: ▁ a aa;
 *  - SentencePiece 0.1.x (to 0.2.1) added them in double and compared the
 *    unrounded double with the stored float; the second sum is then
 *    greater by a fraction of a float ulp and wins: ▁ aa a.
 *
 * The same rule decides "U+FFFD" in tests/data/tokenizer's
 * vdiff-tiny-unk.model (f ff d in 0.2.2, ff f d in 0.1.97). */
static void test_float_tie(void)
{
    const piece_def pieces[] = {
        {"\xE2\x96\x81", -0.5f, 1},
        {"a", -1.9f, 1},
        {"aa", -3.1f, 1},
    };
    vd_tokenizer *tok = build(pieces, sizeof pieces / sizeof pieces[0]);
    if (!tok)
        return;
    expect_pieces(tok, "aaa", PIECES("\xE2\x96\x81", "a", "aa"));
    /* No tie: ▁ aa aa (-6.7) beats every other cover. */
    expect_pieces(tok, "aaaa", PIECES("\xE2\x96\x81", "aa", "aa"));
    /* After "▁aa▁" the same two covers start from another score; their
     * float sums now differ and the greater one, tried second, wins. */
    expect_pieces(tok, "aa aaa", PIECES("\xE2\x96\x81", "aa", "\xE2\x96\x81", "aa", "a"));
    vd_tokenizer_free(tok);
}

/* A user-defined piece of n bytes scores 0.1 * (n - 1) in SentencePiece
 * 0.2.2 (unigram_model.cc GetUserDefinedScore): >= 0, so it always beats
 * NORMAL pieces (log probabilities), and longer ones score more.  0.1.x to
 * 0.2.1 scored every user-defined piece n * max_score - 0.1, about -0.1
 * whatever its length.  For "▁abcde" with user-defined abcd and bc:
 *   ▁ abcd e    0.2.2: -0.5 + 0.3 - 1.0 = -1.2   0.1.x: -0.5 - 0.1 - 1.0 = -1.6
 *   ▁ a bc de   0.2.2: -0.5 - 0.4 + 0.1 - 0.5 = -1.3   0.1.x: -1.5
 * so 0.2.2 picks ▁ abcd e where 0.1.x picked ▁ a bc de. */
static void test_user_defined_score(void)
{
    const piece_def pieces[] = {
        {"\xE2\x96\x81", -0.5f, 1}, {"a", -0.4f, 1},  {"b", -3.0f, 1}, {"c", -3.0f, 1},  {"d", -3.0f, 1},
        {"de", -0.5f, 1},           {"e", -1.0f, 1},  {"abcd", 0, 4},  {"bc", 0, 4},
    };
    vd_tokenizer *tok = build(pieces, sizeof pieces / sizeof pieces[0]);
    if (!tok)
        return;
    expect_pieces(tok, "abcde", PIECES("\xE2\x96\x81", "abcd", "e"));
    /* A user-defined piece is kept whole by the normalizer and wins over
     * the normal pieces covering it. */
    expect_pieces(tok, "bc", PIECES("\xE2\x96\x81", "bc"));
    vd_tokenizer_free(tok);
}

int main(void)
{
    test_float_tie();
    test_user_defined_score();
    return test_finish("test_tokenizer_viterbi");
}

/* Broken inputs fail with a clear status and message, never a crash:
 * truncated and bit-flipped .model files, hand-built ModelProtos with wrong
 * wire types, bad lengths, missing or duplicate pieces, unsupported model
 * types, malformed character maps, broken tokenizer.json files.  Run under
 * AddressSanitizer to also catch out-of-bounds reads. */
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "models/tokenizer.h"
#include "test_util.h"
#include "tokenizer_test_util.h"

static const char *const kProbeTexts[] = {
    "Hello world", "  a  b  ", "\xFF\xFE", "ab ab c", "\xE4\xB8\x80\xF0\x9F\x8D\x95", "", "aaaaaaaaaaaaaaaa",
};

/* Load `data`; a failure must carry a message; a success must encode. */
static vd_status load_and_probe(const uint8_t *data, size_t size)
{
    vd_tokenizer *tok = NULL;
    vd_clear_error();
    vd_status s = vd_tokenizer_from_memory(data, size, &tok);
    if (s != VD_OK) {
        CHECKF(vd_last_error()[0] != '\0', "failure (%s) without a message", vd_status_name(s));
        CHECK(tok == NULL);
        return s;
    }
    for (size_t i = 0; i < sizeof kProbeTexts / sizeof kProbeTexts[0]; i++) {
        int32_t *ids = NULL;
        size_t n = 0;
        vd_clear_error();
        vd_status e = vd_tokenizer_encode(tok, kProbeTexts[i], 64, vd_tokenizer_eos_id(tok) >= 0, &ids, &n);
        if (e != VD_OK)
            CHECKF(vd_last_error()[0] != '\0', "encode failure without a message");
        for (size_t k = 0; k < n; k++)
            CHECK(ids[k] >= 0 && (size_t)ids[k] < vd_tokenizer_vocab_size(tok));
        free(ids);
    }
    vd_tokenizer_free(tok);
    return s;
}

/* ---- hand-built models ---- */

static void basic_pieces(bytes *m)
{
    pb_piece(m, "<unk>", 0, 2);
    pb_piece(m, "<s>", 0, 3);
    pb_piece(m, "</s>", 0, 3);
    pb_piece(m, "\xE2\x96\x81", -1.0f, 1);
    pb_piece(m, "a", -2.0f, 1);
    pb_piece(m, "b", -2.5f, 1);
    pb_piece(m, "\xE2\x96\x81" "ab", -1.0f, 1);
    pb_piece(m, "ab", -1.5f, 1);
}

static void trainer_spec(bytes *m, int model_type, int byte_fallback)
{
    bytes t = {0};
    pb_str(&t, 1, "corpus.txt"); /* a training-only field, skipped */
    pb_uint(&t, 3, (uint64_t)model_type);
    pb_uint(&t, 4, 8000);
    if (byte_fallback)
        pb_uint(&t, 35, 1);
    pb_uint(&t, 43, (uint64_t)-1); /* pad_id -1: a 10-byte varint */
    pb_len(m, 2, t.p, t.len);
    bytes_free(&t);
}

static void normalizer_spec(bytes *m, const void *charsmap, size_t charsmap_len)
{
    bytes n = {0};
    pb_str(&n, 1, charsmap ? "custom" : "identity");
    if (charsmap)
        pb_len(&n, 2, charsmap, charsmap_len);
    pb_uint(&n, 3, 1);
    pb_uint(&n, 4, 1);
    pb_uint(&n, 5, 1);
    pb_len(m, 3, n.p, n.len);
    bytes_free(&n);
}

static void put_u32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
    p[2] = (uint8_t)(v >> 16);
    p[3] = (uint8_t)(v >> 24);
}

/* A Darts double-array mapping the single key "a" to `value`, followed by
 * `strings`: root offset `root`, node 1^'a' = 96 with a leaf child at
 * 96^2.  `units` units: SentencePiece 0.2.2 only loads whole blocks of
 * 256.  `blob` must hold 4 + units * 4 + strings_len bytes. */
static size_t charsmap_a(uint8_t *blob, uint32_t value, const char *strings, size_t strings_len, uint32_t root,
                         size_t units)
{
    memset(blob, 0, 4 + units * 4);
    put_u32(blob, (uint32_t)(units * 4));
    put_u32(blob + 4, root << 10);
    put_u32(blob + 4 + 96 * 4, 'a' | 1u << 8 | 2u << 10);
    put_u32(blob + 4 + 98 * 4, 1u << 31 | value);
    memcpy(blob + 4 + units * 4, strings, strings_len);
    return 4 + units * 4 + strings_len;
}

static vd_tokenizer *load_ok(const bytes *m)
{
    vd_tokenizer *tok = NULL;
    CHECK_OK(vd_tokenizer_from_memory(m->p, m->len, &tok));
    return tok;
}

static void expect_ids(const vd_tokenizer *tok, const char *text, const int32_t *want, size_t n_want)
{
    int32_t *ids = NULL;
    size_t n = 0;
    CHECK_OK(vd_tokenizer_encode(tok, text, 0, false, &ids, &n));
    CHECKF(n == n_want && (n == 0 || memcmp(ids, want, n * sizeof *ids) == 0), "\"%s\": got %zu ids", text, n);
    free(ids);
}

static void expect_normalized(const vd_tokenizer *tok, const char *text, const char *want)
{
    char *out = NULL;
    size_t n = 0;
    CHECK_OK(vd_tokenizer_normalize(tok, text, strlen(text), &out, &n));
    CHECKF(out && strcmp(out, want) == 0, "normalize(\"%s\") = \"%s\", expected \"%s\"", text, out ? out : "",
           want);
    free(out);
}

static void test_valid_synthetic(void)
{
    bytes m = {0};
    basic_pieces(&m);
    trainer_spec(&m, 1, 0);
    normalizer_spec(&m, NULL, 0);
    /* Unknown fields of every wire type are skipped, groups included. */
    pb_uint(&m, 99, 7);
    pb_key(&m, 98, 1);
    bytes_put(&m, "12345678", 8);
    pb_str(&m, 97, "extension");
    pb_float(&m, 96, 1.5f);
    pb_key(&m, 95, 3);
    pb_uint(&m, 1, 5);
    pb_key(&m, 94, 3);
    pb_str(&m, 2, "nested");
    pb_key(&m, 94, 4);
    pb_key(&m, 95, 4);
    vd_tokenizer *tok = load_ok(&m);
    if (tok) {
        CHECK(vd_tokenizer_vocab_size(tok) == 8);
        CHECK(vd_tokenizer_unk_id(tok) == 0 && vd_tokenizer_bos_id(tok) == 1 && vd_tokenizer_eos_id(tok) == 2);
        CHECK(vd_tokenizer_pad_id(tok) == -1);
        expect_ids(tok, "ab ab", (const int32_t[]){6, 6}, 2);
        /* c is unknown: min score -2.5 minus 10 keeps it one <unk>; a run of
         * unknowns merges into one <unk> without byte fallback. */
        expect_ids(tok, "c", (const int32_t[]){3, 0}, 2);
        expect_ids(tok, "ccc ab", (const int32_t[]){3, 0, 6}, 3);
        expect_ids(tok, "b", (const int32_t[]){3, 5}, 2);
        /* Control pieces are never matched in text. */
        expect_ids(tok, "</s>", (const int32_t[]){3, 0}, 2);
        vd_tokenizer_free(tok);
    }
    bytes_free(&m);
}

static void charsmap_model(bytes *m, const uint8_t *blob, size_t len)
{
    basic_pieces(m);
    trainer_spec(m, 1, 0);
    normalizer_spec(m, blob, len);
}

static void expect_charsmap_refused(const uint8_t *blob, size_t len, const char *what)
{
    bytes m = {0};
    charsmap_model(&m, blob, len);
    vd_tokenizer *t = NULL;
    vd_clear_error();
    vd_status s = vd_tokenizer_from_memory(m.p, m.len, &t);
    CHECKF(s == VD_ERR_FORMAT && vd_last_error()[0] != '\0' && t == NULL, "%s: expected a format error, got %s",
           what, vd_status_name(s));
    vd_tokenizer_free(t);
    bytes_free(&m);
}

static void test_charsmap(void)
{
    static uint8_t blob[4 + 512 * 4 + 16];
    bytes m = {0};
    vd_tokenizer *tok;

    /* "a" -> "x", with one block of 256 units and with two. */
    for (size_t units = 256; units <= 512; units += 256) {
        size_t len = charsmap_a(blob, 0, "x\0", 2, 1, units);
        charsmap_model(&m, blob, len);
        tok = load_ok(&m);
        if (tok) {
            expect_normalized(tok, "banana", "\xE2\x96\x81" "bxnxnx");
            vd_tokenizer_free(tok);
        }
        bytes_free(&m);
    }

    /* "a" -> "" (the map may delete characters). */
    size_t len = charsmap_a(blob, 1, "x\0", 2, 1, 256);
    charsmap_model(&m, blob, len);
    tok = load_ok(&m);
    if (tok) {
        expect_normalized(tok, "banana", "\xE2\x96\x81" "bnn");
        vd_tokenizer_free(tok);
    }
    bytes_free(&m);

    /* A value outside the strings: as in SentencePiece 0.2.2
     * (normalizer.cc NormalizePrefix) the match counts as none and the
     * character is copied. */
    const uint32_t bad_values[] = {5, 0x7FFFFFFF};
    for (size_t i = 0; i < sizeof bad_values / sizeof bad_values[0]; i++) {
        len = charsmap_a(blob, bad_values[i], "x\0", 2, 1, 256);
        charsmap_model(&m, blob, len);
        tok = load_ok(&m);
        if (tok) {
            expect_normalized(tok, "banana", "\xE2\x96\x81" "banana");
            expect_ids(tok, "ab", (const int32_t[]){6}, 1);
            vd_tokenizer_free(tok);
        }
        bytes_free(&m);
    }

    /* A root unit whose offset points far outside the trie: its top bit
     * makes it look like a leaf, so SentencePiece 0.2.2's load check skips
     * it (and its traversal then reads outside the array); here it only
     * means "no match". */
    len = charsmap_a(blob, 0, "x\0", 2, 0x3FFFFF, 256);
    charsmap_model(&m, blob, len);
    tok = load_ok(&m);
    if (tok) {
        expect_normalized(tok, "banana", "\xE2\x96\x81" "banana");
        vd_tokenizer_free(tok);
    }
    bytes_free(&m);

    /* Refused at load, as SentencePiece 0.2.2 refuses them: too short, a
     * trie size past the blob, a trie that is not whole 1024-byte blocks,
     * strings that are empty or not NUL-terminated, a child offset outside
     * the trie. */
    const uint8_t short_blob[] = {1, 0, 0};
    expect_charsmap_refused(short_blob, sizeof short_blob, "3-byte charsmap");
    uint8_t big_trie[8];
    put_u32(big_trie, 1000);
    memcpy(big_trie + 4, "abcd", 4);
    expect_charsmap_refused(big_trie, sizeof big_trie, "trie size past the blob");
    len = charsmap_a(blob, 0, "x\0", 2, 1, 99);
    expect_charsmap_refused(blob, len, "99-unit trie");
    len = charsmap_a(blob, 0, "xy", 2, 1, 256);
    expect_charsmap_refused(blob, len, "strings without their NUL");
    len = charsmap_a(blob, 0, "", 0, 1, 256);
    expect_charsmap_refused(blob, len, "no strings");
    len = charsmap_a(blob, 0, "x\0", 2, 1, 256);
    put_u32(blob + 4 + 96 * 4, 'a' | 1u << 8 | 0x100u << 10); /* child block at 96^256 */
    expect_charsmap_refused(blob, len, "child offset outside the trie");
}

typedef void (*model_builder)(bytes *m);

static void expect_load_fails(model_builder build, vd_status want, const char *what)
{
    bytes m = {0};
    build(&m);
    vd_tokenizer *tok = NULL;
    vd_clear_error();
    vd_status s = vd_tokenizer_from_memory(m.p, m.len, &tok);
    CHECKF(s == want && vd_last_error()[0] != '\0' && tok == NULL, "%s: expected %s, got %s (\"%s\")", what,
           vd_status_name(want), vd_status_name(s), vd_last_error());
    vd_tokenizer_free(tok);
    bytes_free(&m);
}

static void b_pieces_as_varint(bytes *m)
{
    pb_uint(m, 1, 5);
    basic_pieces(m);
}
static void b_score_as_varint(bytes *m)
{
    basic_pieces(m);
    bytes p = {0};
    pb_str(&p, 1, "zz");
    pb_uint(&p, 2, 3);
    pb_len(m, 1, p.p, p.len);
    bytes_free(&p);
}
static void b_trainer_as_fixed32(bytes *m)
{
    basic_pieces(m);
    pb_float(m, 2, 1.0f);
}
static void b_bool_as_len(bytes *m)
{
    basic_pieces(m);
    bytes n = {0};
    pb_str(&n, 3, "yes");
    pb_len(m, 3, n.p, n.len);
    bytes_free(&n);
}
static void b_length_past_end(bytes *m)
{
    basic_pieces(m);
    pb_key(m, 1, 2);
    pb_varint(m, 1000);
    bytes_put(m, "abc", 3);
}
static void b_huge_length(bytes *m)
{
    basic_pieces(m);
    pb_key(m, 3, 2);
    pb_varint(m, UINT64_MAX);
}
static void b_long_varint(bytes *m)
{
    basic_pieces(m);
    static const uint8_t v[] = {0x08, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x01};
    bytes_put(m, v, sizeof v);
}
static void b_bad_wire_type(bytes *m)
{
    basic_pieces(m);
    pb_key(m, 9, 7);
}
static void b_field_zero(bytes *m)
{
    basic_pieces(m);
    pb_key(m, 0, 0);
    pb_varint(m, 1);
}
static void b_stray_end_group(bytes *m)
{
    basic_pieces(m);
    pb_key(m, 9, 4);
}
static void b_unterminated_group(bytes *m)
{
    basic_pieces(m);
    pb_key(m, 9, 3);
    pb_uint(m, 1, 1);
}
static void b_mismatched_group(bytes *m)
{
    basic_pieces(m);
    pb_key(m, 9, 3);
    pb_key(m, 8, 4);
}
static void b_deep_groups(bytes *m)
{
    basic_pieces(m);
    for (int i = 0; i < 40; i++)
        pb_key(m, 9, 3);
    for (int i = 0; i < 40; i++)
        pb_key(m, 9, 4);
}
static void b_no_pieces(bytes *m)
{
    trainer_spec(m, 1, 0);
    normalizer_spec(m, NULL, 0);
}
static void b_only_reserved(bytes *m)
{
    pb_piece(m, "<unk>", 0, 2);
    pb_piece(m, "</s>", 0, 3);
}
static void b_bpe(bytes *m)
{
    basic_pieces(m);
    trainer_spec(m, 2, 0);
}
static void b_word(bytes *m)
{
    basic_pieces(m);
    trainer_spec(m, 3, 0);
}
static void b_model_type_9(bytes *m)
{
    basic_pieces(m);
    trainer_spec(m, 9, 0);
}
static void b_piece_type_9(bytes *m)
{
    basic_pieces(m);
    pb_piece(m, "q", -3, 9);
}
static void b_piece_type_0(bytes *m)
{
    basic_pieces(m);
    pb_piece(m, "q", -3, 0);
}
static void b_empty_piece(bytes *m)
{
    basic_pieces(m);
    pb_piece(m, "", -3, 1);
}
static void b_nul_in_piece(bytes *m)
{
    basic_pieces(m);
    bytes p = {0};
    pb_len(&p, 1, "q\0r", 3);
    pb_float(&p, 2, -3.0f);
    pb_len(m, 1, p.p, p.len);
    bytes_free(&p);
}
static void b_duplicate_piece(bytes *m)
{
    basic_pieces(m);
    pb_piece(m, "ab", -3, 4);
}
static void b_duplicate_control(bytes *m)
{
    basic_pieces(m);
    pb_piece(m, "</s>", 0, 3);
}
static void b_no_unk(bytes *m)
{
    pb_piece(m, "a", -1, 1);
    pb_piece(m, "b", -1, 1);
}
static void b_two_unk(bytes *m)
{
    basic_pieces(m);
    pb_piece(m, "<unk2>", 0, 2);
}
static void b_byte_without_fallback(bytes *m)
{
    basic_pieces(m);
    pb_piece(m, "<0x41>", 0, 6);
}
static void byte_pieces(bytes *m, int skip)
{
    for (int b = 0; b < 256; b++) {
        char name[8];
        snprintf(name, sizeof name, "<0x%02X>", b);
        if (b != skip)
            pb_piece(m, name, 0, 6);
    }
}
static void b_missing_byte(bytes *m)
{
    basic_pieces(m);
    byte_pieces(m, 0x41);
    trainer_spec(m, 1, 1);
}
static void b_bad_byte_name(bytes *m)
{
    basic_pieces(m);
    byte_pieces(m, -1);
    pb_piece(m, "<0x4g>", 0, 6);
    trainer_spec(m, 1, 1);
}
static void b_garbage(bytes *m)
{
    bytes_put(m, "This is plainly not a protobuf file at all.\n", 44);
}

static void test_synthetic_failures(void)
{
    expect_load_fails(b_pieces_as_varint, VD_ERR_FORMAT, "pieces as varint");
    expect_load_fails(b_score_as_varint, VD_ERR_FORMAT, "score as varint");
    expect_load_fails(b_trainer_as_fixed32, VD_ERR_FORMAT, "trainer_spec as fixed32");
    expect_load_fails(b_bool_as_len, VD_ERR_FORMAT, "bool as length-delimited");
    expect_load_fails(b_length_past_end, VD_ERR_FORMAT, "length past end");
    expect_load_fails(b_huge_length, VD_ERR_FORMAT, "2^64-1 length");
    expect_load_fails(b_long_varint, VD_ERR_FORMAT, "11-byte varint");
    expect_load_fails(b_bad_wire_type, VD_ERR_FORMAT, "wire type 7");
    expect_load_fails(b_field_zero, VD_ERR_FORMAT, "field number 0");
    expect_load_fails(b_stray_end_group, VD_ERR_FORMAT, "stray end-group");
    expect_load_fails(b_unterminated_group, VD_ERR_FORMAT, "unterminated group");
    expect_load_fails(b_mismatched_group, VD_ERR_FORMAT, "mismatched group");
    expect_load_fails(b_deep_groups, VD_ERR_FORMAT, "groups 40 deep");
    expect_load_fails(b_no_pieces, VD_ERR_FORMAT, "no pieces");
    expect_load_fails(b_only_reserved, VD_ERR_FORMAT, "only reserved pieces");
    expect_load_fails(b_bpe, VD_ERR_UNSUPPORTED, "BPE model");
    expect_load_fails(b_word, VD_ERR_UNSUPPORTED, "WORD model");
    expect_load_fails(b_model_type_9, VD_ERR_FORMAT, "model_type 9");
    expect_load_fails(b_piece_type_9, VD_ERR_FORMAT, "piece type 9");
    expect_load_fails(b_piece_type_0, VD_ERR_FORMAT, "piece type 0");
    expect_load_fails(b_empty_piece, VD_ERR_FORMAT, "empty piece");
    /* SentencePiece 0.2.2 refuses such a model ("piece must not include null
     * character"); 0.1.x loaded it. */
    expect_load_fails(b_nul_in_piece, VD_ERR_FORMAT, "piece with a NUL byte");
    expect_load_fails(b_duplicate_piece, VD_ERR_FORMAT, "duplicate piece");
    expect_load_fails(b_duplicate_control, VD_ERR_FORMAT, "duplicate control piece");
    expect_load_fails(b_no_unk, VD_ERR_FORMAT, "no <unk>");
    expect_load_fails(b_two_unk, VD_ERR_FORMAT, "two <unk>");
    expect_load_fails(b_byte_without_fallback, VD_ERR_FORMAT, "byte piece without byte_fallback");
    expect_load_fails(b_missing_byte, VD_ERR_FORMAT, "byte_fallback with a byte piece missing");
    expect_load_fails(b_bad_byte_name, VD_ERR_FORMAT, "malformed byte piece");
    expect_load_fails(b_garbage, VD_ERR_FORMAT, "text file");

    vd_tokenizer *tok = NULL;
    CHECK_FAILS(vd_tokenizer_from_memory("", 0, &tok), VD_ERR_FORMAT);
    CHECK_FAILS(vd_tokenizer_from_memory(NULL, 4, &tok), VD_ERR_INVALID_ARGUMENT);

    /* A model without </s> loads, but cannot append an EOS. */
    bytes m = {0};
    pb_piece(&m, "<unk>", 0, 2);
    pb_piece(&m, "a", -1, 1);
    tok = load_ok(&m);
    if (tok) {
        int32_t *ids = NULL;
        size_t n = 0;
        CHECK(vd_tokenizer_eos_id(tok) == -1);
        CHECK_FAILS(vd_tokenizer_encode(tok, "a", 0, true, &ids, &n), VD_ERR_INVALID_ARGUMENT);
        CHECK_OK(vd_tokenizer_encode(tok, "a", 0, false, &ids, &n));
        free(ids);
        vd_tokenizer_free(tok);
    }
    bytes_free(&m);
}

/* ---- damaged real models ---- */

static uint64_t lcg(uint64_t *state)
{
    *state = *state * 6364136223846793005ull + 1442695040888963407ull;
    return *state >> 33;
}

static void test_damaged_file(const char *name, size_t full_step, size_t flips)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/tokenizer/%s", VD_TEST_DATA_DIR, name);
    size_t size;
    uint8_t *data = read_file(path, &size);
    CHECKF(data != NULL, "cannot read %s", path);
    if (!data)
        return;
    CHECK(load_and_probe(data, size) == VD_OK);

    /* Truncations: every offset near both ends, a stride in between. */
    size_t tried = 0, failed = 0;
    for (size_t cut = 0; cut < size; cut++) {
        if (cut > 300 && cut + 300 < size && cut % full_step != 0)
            continue;
        uint8_t *copy = malloc(cut ? cut : 1); /* exact size, so ASan sees overreads */
        memcpy(copy, data, cut);
        tried++;
        if (load_and_probe(copy, cut) != VD_OK)
            failed++;
        free(copy);
    }
    /* Nearly every cut lands inside a field and must be refused. */
    CHECKF(failed * 10 >= tried * 9, "%s: only %zu of %zu truncations refused", name, failed, tried);

    /* Random byte changes: any status, but never a crash. */
    uint64_t rng = 12345;
    uint8_t *copy = malloc(size);
    for (size_t i = 0; i < flips; i++) {
        memcpy(copy, data, size);
        int k = 1 + (int)(lcg(&rng) % 3);
        for (int j = 0; j < k; j++)
            copy[lcg(&rng) % size] = (uint8_t)lcg(&rng);
        load_and_probe(copy, size);
    }
    free(copy);
    free(data);
}

/* ---- files and tokenizer.json ---- */

static void expect_json_fails(const char *json, vd_status want, const char *what)
{
    char path[512];
    scratch_path(path, sizeof path, "tok_bad.json");
    CHECK(write_file(path, json, strlen(json)) == 0);
    vd_tokenizer *tok = NULL;
    vd_clear_error();
    vd_status s = vd_tokenizer_open(path, &tok);
    CHECKF(s == want && vd_last_error()[0] != '\0' && strstr(vd_last_error(), path) != NULL,
           "%s: expected %s naming the file, got %s (\"%s\")", what, vd_status_name(want), vd_status_name(s),
           vd_last_error());
    vd_tokenizer_free(tok);
    remove(path);
}

#define JSON_VOCAB "\"vocab\": [[\"<unk>\", 0], [\"</s>\", 0], [\"\\u2581\", -1], [\"a\", -2], [\"b\", -2]]"

static void test_json(void)
{
    expect_json_fails("{\"model\": {", VD_ERR_FORMAT, "truncated JSON");
    expect_json_fails("[1, 2]", VD_ERR_FORMAT, "array document");
    expect_json_fails("{\"model\": {\"type\": \"BPE\", \"vocab\": {}, \"merges\": []}}", VD_ERR_UNSUPPORTED, "BPE");
    expect_json_fails("{\"model\": {\"type\": \"Unigram\"}}", VD_ERR_FORMAT, "no vocab");
    expect_json_fails("{\"model\": {\"type\": \"Unigram\", \"vocab\": [[\"a\"]]}}", VD_ERR_FORMAT, "bad entry");
    expect_json_fails("{\"model\": {\"type\": \"Unigram\", \"unk_id\": 9, " JSON_VOCAB "}}", VD_ERR_FORMAT,
                      "unk_id out of range");
    expect_json_fails("{\"model\": {\"type\": \"Unigram\", " JSON_VOCAB "}}", VD_ERR_FORMAT, "no unk");
    expect_json_fails("{\"normalizer\": {\"type\": \"Precompiled\", \"precompiled_charsmap\": \"@@@@\"}, "
                      "\"model\": {\"type\": \"Unigram\", \"unk_id\": 0, " JSON_VOCAB "}}",
                      VD_ERR_FORMAT, "bad base64");
    expect_json_fails("{\"normalizer\": {\"type\": \"NFKC\"}, "
                      "\"model\": {\"type\": \"Unigram\", \"unk_id\": 0, " JSON_VOCAB "}}",
                      VD_ERR_UNSUPPORTED, "NFKC normalizer");
    expect_json_fails("{\"pre_tokenizer\": {\"type\": \"ByteLevel\"}, "
                      "\"model\": {\"type\": \"Unigram\", \"unk_id\": 0, " JSON_VOCAB "}}",
                      VD_ERR_UNSUPPORTED, "ByteLevel pre-tokenizer");
    expect_json_fails("{\"added_tokens\": [{\"id\": 9, \"content\": \"<x>\", \"special\": true}], "
                      "\"model\": {\"type\": \"Unigram\", \"unk_id\": 0, " JSON_VOCAB "}}",
                      VD_ERR_FORMAT, "added token gap");
    expect_json_fails("{\"added_tokens\": [{\"id\": 1, \"content\": \"<x>\", \"special\": true}], "
                      "\"model\": {\"type\": \"Unigram\", \"unk_id\": 0, " JSON_VOCAB "}}",
                      VD_ERR_FORMAT, "added token differs from vocab");

    /* A newer-style document: Sequence normalizer, prepend_scheme, added
     * tokens past the vocab. */
    const char *json = "{\"added_tokens\": [{\"id\": 1, \"content\": \"</s>\", \"special\": true},"
                       " {\"id\": 5, \"content\": \"<extra_id_0>\", \"special\": true}],"
                       " \"normalizer\": {\"type\": \"Sequence\", \"normalizers\": [{\"type\": \"Strip\"},"
                       " {\"type\": \"Replace\", \"pattern\": {\"Regex\": \" {2,}\"}, \"content\": \" \"}]},"
                       " \"pre_tokenizer\": {\"type\": \"Metaspace\", \"replacement\": \"\\u2581\","
                       " \"prepend_scheme\": \"always\", \"split\": true},"
                       " \"model\": {\"type\": \"Unigram\", \"unk_id\": 0, " JSON_VOCAB "}}";
    char path[512];
    scratch_path(path, sizeof path, "tok_ok.json");
    CHECK(write_file(path, json, strlen(json)) == 0);
    vd_tokenizer *tok = NULL;
    CHECK_OK(vd_tokenizer_open(path, &tok));
    if (tok) {
        CHECK(vd_tokenizer_vocab_size(tok) == 6);
        CHECK(vd_tokenizer_eos_id(tok) == 1 && vd_tokenizer_unk_id(tok) == 0);
        CHECK(vd_tokenizer_piece_to_id(tok, "<extra_id_0>") == 5);
        expect_normalized(tok, "  a   b  ", "\xE2\x96\x81" "a\xE2\x96\x81" "b");
        expect_ids(tok, "ab c", (const int32_t[]){2, 3, 4, 2, 0}, 5);
        vd_tokenizer_free(tok);
    }
    remove(path);
}

static void test_files(void)
{
    vd_tokenizer *tok = NULL;
    CHECK_FAILS(vd_tokenizer_open("/nonexistent/dir/spiece.model", &tok), VD_ERR_NOT_FOUND);
    CHECK_FAILS(vd_tokenizer_open(VD_TEST_DATA_DIR, &tok), VD_ERR_IO);
    char path[512];
    scratch_path(path, sizeof path, "tok_empty.model");
    CHECK(write_file(path, "", 0) == 0);
    CHECK_FAILS(vd_tokenizer_open(path, &tok), VD_ERR_FORMAT);
    CHECK(strstr(vd_last_error(), path) != NULL);
    remove(path);
}

int main(void)
{
    test_valid_synthetic();
    test_charsmap();
    test_synthetic_failures();
    test_json();
    test_files();
    test_damaged_file("vdiff-tiny-suffix.model", 7, 2000);
    test_damaged_file("vdiff-small.model", 1009, 150);
    test_damaged_file("vdiff-tiny-unk.model", 2003, 100);
    return test_finish("test_tokenizer_corrupt");
}

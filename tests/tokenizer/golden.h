/* The golden token ids of tests/data/tokenizer/golden.jsonl, written by
 * tests/reference/tokenizer_golden.py with the SentencePiece library. */
#ifndef VD_TOKENIZER_GOLDEN_H
#define VD_TOKENIZER_GOLDEN_H

#include <cjson/cJSON.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "models/tokenizer.h"
#include "test_util.h"
#include "tokenizer_test_util.h"

typedef struct golden_case {
    char *model;   /* file name under tests/data/tokenizer */
    char *text;    /* input bytes (may hold NUL or invalid UTF-8) */
    size_t len;
    size_t max_len;
    int32_t *ids;
    size_t n_ids;
} golden_case;

typedef struct golden_set {
    golden_case *cases;
    size_t n;
} golden_set;

static inline void golden_free(golden_set *g)
{
    for (size_t i = 0; i < g->n; i++) {
        free(g->cases[i].model);
        free(g->cases[i].text);
        free(g->cases[i].ids);
    }
    free(g->cases);
    memset(g, 0, sizeof *g);
}

static inline char *golden_strdup(const char *s)
{
    char *d = malloc(strlen(s) + 1);
    if (!d) {
        fprintf(stderr, "out of memory\n");
        exit(1);
    }
    strcpy(d, s);
    return d;
}

/* Load every case; returns 0 on success.  A missing or malformed file is
 * a test failure, not a skip. */
static inline int golden_load(golden_set *g)
{
    memset(g, 0, sizeof *g);
    size_t size;
    char *doc = (char *)read_file(VD_TEST_DATA_DIR "/tokenizer/golden.jsonl", &size);
    if (!doc) {
        fprintf(stderr, "cannot read " VD_TEST_DATA_DIR "/tokenizer/golden.jsonl\n");
        return -1;
    }
    size_t cap = 0;
    int rc = 0;
    for (char *line = doc; line && *line && rc == 0;) {
        char *nl = strchr(line, '\n');
        if (nl)
            *nl = '\0';
        if (*line) {
            cJSON *rec = cJSON_Parse(line);
            const cJSON *model = cJSON_GetObjectItemCaseSensitive(rec, "model");
            const cJSON *hex = cJSON_GetObjectItemCaseSensitive(rec, "hex");
            const cJSON *max_len = cJSON_GetObjectItemCaseSensitive(rec, "max_len");
            const cJSON *ids = cJSON_GetObjectItemCaseSensitive(rec, "ids");
            if (!rec) {
                fprintf(stderr, "golden.jsonl: unparsable line\n");
                rc = -1;
            } else if (cJSON_GetObjectItemCaseSensitive(rec, "generator")) {
                /* header line */
            } else if (!cJSON_IsString(model) || !cJSON_IsString(hex) || !cJSON_IsNumber(max_len) ||
                       !cJSON_IsArray(ids)) {
                fprintf(stderr, "golden.jsonl: malformed record\n");
                rc = -1;
            } else {
                if (g->n == cap) {
                    cap = cap ? cap * 2 : 256;
                    g->cases = realloc(g->cases, cap * sizeof *g->cases);
                    if (!g->cases) {
                        fprintf(stderr, "out of memory\n");
                        exit(1);
                    }
                }
                golden_case *c = &g->cases[g->n++];
                c->model = golden_strdup(model->valuestring);
                c->text = hex_decode(hex->valuestring, &c->len);
                c->max_len = (size_t)max_len->valuedouble;
                c->n_ids = (size_t)cJSON_GetArraySize(ids);
                c->ids = malloc((c->n_ids ? c->n_ids : 1) * sizeof *c->ids);
                size_t k = 0;
                const cJSON *id;
                cJSON_ArrayForEach(id, ids) c->ids[k++] = (int32_t)id->valuedouble;
            }
            cJSON_Delete(rec);
        }
        line = nl ? nl + 1 : NULL;
    }
    free(doc);
    return rc;
}

/* Compare ids; on a mismatch print the case with pieces and count a failure. */
static inline void golden_check(const golden_case *c, const char *via, const vd_tokenizer *tok, const int32_t *ids,
                                size_t n)
{
    if (n == c->n_ids && (n == 0 || memcmp(ids, c->ids, n * sizeof *ids) == 0))
        return;
    test_failures++;
    size_t first = 0;
    while (first < n && first < c->n_ids && ids[first] == c->ids[first])
        first++;
    fprintf(stderr, "%s via %s, max_len %zu, text \"%.*s\": %zu ids, expected %zu; first difference at %zu:\n",
            c->model, via, c->max_len, (int)(c->len > 80 ? 80 : c->len), c->text, n, c->n_ids, first);
    for (size_t i = first; i < first + 6; i++) {
        const char *got = i < n ? vd_tokenizer_piece(tok, ids[i]) : NULL;
        const char *want = i < c->n_ids ? vd_tokenizer_piece(tok, c->ids[i]) : NULL;
        if (!got && !want)
            break;
        fprintf(stderr, "  [%zu] got %d %s, expected %d %s\n", i, i < n ? ids[i] : -1, got ? got : "-",
                i < c->n_ids ? c->ids[i] : -1, want ? want : "-");
    }
}

#endif

/* The C tokenizer reproduces every golden id list of the SentencePiece
 * library (tests/reference/tokenizer_golden.py), loading each model from
 * its .model file, from memory, and (vdiff-small) from tokenizer.json. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "golden.h"
#include "models/tokenizer.h"
#include "test_util.h"

#define MAX_MODELS 16

typedef struct loaded {
    const char *name;
    vd_tokenizer *from_file;
    vd_tokenizer *from_memory;
    vd_tokenizer *from_json; /* NULL unless a .tokenizer.json exists */
    size_t cases;
} loaded;

static loaded models[MAX_MODELS];
static size_t n_models;

static loaded *get_model(const char *name)
{
    for (size_t i = 0; i < n_models; i++)
        if (strcmp(models[i].name, name) == 0)
            return &models[i];
    if (n_models == MAX_MODELS)
        return NULL;
    loaded *m = &models[n_models++];
    memset(m, 0, sizeof *m);
    m->name = name;
    char path[1024];
    snprintf(path, sizeof path, "%s/tokenizer/%s", VD_TEST_DATA_DIR, name);
    CHECK_OK(vd_tokenizer_open(path, &m->from_file));
    size_t size;
    uint8_t *blob = read_file(path, &size);
    CHECK(blob != NULL);
    if (blob) {
        CHECK_OK(vd_tokenizer_from_memory(blob, size, &m->from_memory));
        free(blob);
    }
    /* "x.model" -> "x.tokenizer.json" when the script wrote one. */
    char json[1024];
    snprintf(json, sizeof json, "%s", path);
    char *dot = strrchr(json, '.');
    if (dot) {
        snprintf(dot, sizeof json - (size_t)(dot - json), ".tokenizer.json");
        FILE *f = fopen(json, "rb");
        if (f) {
            fclose(f);
            CHECK_OK(vd_tokenizer_open(json, &m->from_json));
        }
    }
    return m;
}

static void check_with(const golden_case *c, const char *via, const vd_tokenizer *tok)
{
    int32_t *ids = NULL;
    size_t n = 0;
    vd_status s = vd_tokenizer_encode_bytes(tok, c->text, c->len, c->max_len, true, &ids, &n);
    CHECKF(s == VD_OK, "%s via %s: %s", c->model, via, vd_last_error());
    if (s == VD_OK)
        golden_check(c, via, tok, ids, n);
    free(ids);

    /* Without EOS and limit: the same ids minus the EOS, unless truncated. */
    if (c->n_ids < c->max_len) {
        s = vd_tokenizer_encode_bytes(tok, c->text, c->len, 0, false, &ids, &n);
        CHECK(s == VD_OK);
        CHECKF(s == VD_OK && n + 1 == c->n_ids && (n == 0 || memcmp(ids, c->ids, n * sizeof *ids) == 0),
               "%s via %s without EOS differs", c->model, via);
        free(ids);
    }
}

int main(void)
{
    golden_set g;
    if (golden_load(&g) != 0)
        return 1;
    size_t json_cases = 0, truncated = 0;
    for (size_t i = 0; i < g.n; i++) {
        const golden_case *c = &g.cases[i];
        loaded *m = get_model(c->model);
        if (!m || !m->from_file || !m->from_memory) {
            test_failures++;
            continue;
        }
        m->cases++;
        check_with(c, "file", m->from_file);
        check_with(c, "memory", m->from_memory);
        if (m->from_json) {
            check_with(c, "tokenizer.json", m->from_json);
            json_cases++;
        }
        if (c->n_ids == c->max_len && c->max_len == 512)
            truncated++;
    }
    /* The golden set must be substantial, or this test proves nothing. */
    CHECKF(n_models >= 2, "only %zu models in golden.jsonl", n_models);
    for (size_t i = 0; i < n_models; i++)
        CHECKF(models[i].cases >= 50, "%s: only %zu golden cases", models[i].name, models[i].cases);
    CHECKF(json_cases >= 50, "only %zu tokenizer.json cases", json_cases);
    CHECKF(truncated >= 2, "only %zu cases reach the 512 limit", truncated);
    printf("checked %zu golden cases over %zu models (%zu via tokenizer.json, %zu truncated at 512)\n", g.n,
           n_models, json_cases, truncated);

    for (size_t i = 0; i < n_models; i++) {
        vd_tokenizer_free(models[i].from_file);
        vd_tokenizer_free(models[i].from_memory);
        vd_tokenizer_free(models[i].from_json);
    }
    golden_free(&g);
    return test_finish("test_tokenizer_golden");
}

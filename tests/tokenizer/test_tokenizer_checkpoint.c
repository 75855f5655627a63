/* The tokenizer carried by a checkpoint: a `spiece_model` tensor in a
 * safetensors or GGUF file, or llama.cpp's tokenizer.ggml metadata in a
 * GGUF file, each checked against the golden ids of vdiff-small.model.
 * The files are written here byte by byte. */
#include <stdlib.h>
#include <string.h>

#include "golden.h"
#include "models/sentencepiece_model.h"
#include "models/tokenizer.h"
#include "test_util.h"
#include "tokenizer_test_util.h"

#define SMALL_MODEL "vdiff-small.model"

static void put_le(bytes *b, uint64_t v, int n)
{
    for (int i = 0; i < n; i++) {
        uint8_t c = (uint8_t)(v >> (8 * i));
        bytes_put(b, &c, 1);
    }
}

/* A safetensors file with one 1-D tensor of n bytes. */
static void write_safetensors(const char *path, const char *name, const char *dtype, const void *data, size_t n)
{
    size_t elems = strcmp(dtype, "F32") == 0 ? n / 4 : n;
    char header[512];
    int len = snprintf(header, sizeof header,
                       "{\"__metadata__\":{\"format\":\"pt\"},\"%s\":{\"dtype\":\"%s\",\"shape\":[%zu],"
                       "\"data_offsets\":[0,%zu]}}",
                       name, dtype, elems, n);
    while (len % 8)
        header[len++] = ' ';
    bytes f = {0};
    put_le(&f, (uint64_t)len, 8);
    bytes_put(&f, header, (size_t)len);
    bytes_put(&f, data, n);
    CHECK(write_file(path, f.p, f.len) == 0);
    bytes_free(&f);
}

/* ---- a minimal GGUF v3 writer ---- */

enum { GGUF_U8 = 0, GGUF_I32 = 5, GGUF_F32 = 6, GGUF_BOOL = 7, GGUF_STRING = 8, GGUF_ARRAY = 9 };

static void gguf_str(bytes *b, const char *s, size_t n)
{
    put_le(b, n, 8);
    bytes_put(b, s, n);
}

static void gguf_key(bytes *b, const char *key, uint32_t type)
{
    gguf_str(b, key, strlen(key));
    put_le(b, type, 4);
}

typedef struct gguf_tensor {
    const char *name;
    uint32_t ggml_type; /* 0 f32, 24 i8 */
    const void *data;
    size_t n; /* elements = bytes for i8, 4 * n bytes for f32 */
} gguf_tensor;

static void write_gguf(const char *path, const bytes *kv, uint64_t n_kv, const gguf_tensor *t, size_t n_t)
{
    bytes f = {0};
    bytes_put(&f, "GGUF", 4);
    put_le(&f, 3, 4);
    put_le(&f, n_t, 8);
    put_le(&f, n_kv, 8);
    bytes_put(&f, kv->p, kv->len);
    uint64_t offset = 0;
    for (size_t i = 0; i < n_t; i++) {
        gguf_str(&f, t[i].name, strlen(t[i].name));
        put_le(&f, 1, 4);
        put_le(&f, t[i].n, 8);
        put_le(&f, t[i].ggml_type, 4);
        put_le(&f, offset, 8);
        size_t bytes_n = t[i].ggml_type == 0 ? 4 * t[i].n : t[i].n;
        offset += (bytes_n + 31) / 32 * 32;
    }
    static const uint8_t zeros[32] = {0};
    bytes_put(&f, zeros, (32 - f.len % 32) % 32);
    for (size_t i = 0; i < n_t; i++) {
        size_t bytes_n = t[i].ggml_type == 0 ? 4 * t[i].n : t[i].n;
        bytes_put(&f, t[i].data, bytes_n);
        bytes_put(&f, zeros, (32 - bytes_n % 32) % 32);
    }
    CHECK(write_file(path, f.p, f.len) == 0);
    bytes_free(&f);
}

/* llama.cpp's "t5" tokenizer metadata for a parsed SentencePiece model. */
static uint64_t t5_metadata(bytes *kv, const vd_sp_model *m, const char *model_name)
{
    gguf_key(kv, "general.architecture", GGUF_STRING);
    gguf_str(kv, "t5encoder", 9);
    gguf_key(kv, "tokenizer.ggml.model", GGUF_STRING);
    gguf_str(kv, model_name, strlen(model_name));
    gguf_key(kv, "tokenizer.ggml.tokens", GGUF_ARRAY);
    put_le(kv, GGUF_STRING, 4);
    put_le(kv, m->n_pieces, 8);
    for (size_t i = 0; i < m->n_pieces; i++)
        gguf_str(kv, vd_sp_piece_str(m, i), m->pieces[i].len);
    gguf_key(kv, "tokenizer.ggml.scores", GGUF_ARRAY);
    put_le(kv, GGUF_F32, 4);
    put_le(kv, m->n_pieces, 8);
    for (size_t i = 0; i < m->n_pieces; i++) {
        uint32_t u;
        memcpy(&u, &m->pieces[i].score, 4);
        put_le(kv, u, 4);
    }
    gguf_key(kv, "tokenizer.ggml.token_type", GGUF_ARRAY);
    put_le(kv, GGUF_I32, 4);
    put_le(kv, m->n_pieces, 8);
    for (size_t i = 0; i < m->n_pieces; i++)
        put_le(kv, (uint32_t)m->pieces[i].type, 4);
    gguf_key(kv, "tokenizer.ggml.precompiled_charsmap", GGUF_ARRAY);
    put_le(kv, GGUF_U8, 4);
    put_le(kv, m->charsmap_size, 8);
    bytes_put(kv, m->charsmap, m->charsmap_size);
    gguf_key(kv, "tokenizer.ggml.add_space_prefix", GGUF_BOOL);
    put_le(kv, m->add_dummy_prefix, 1);
    gguf_key(kv, "tokenizer.ggml.remove_extra_whitespaces", GGUF_BOOL);
    put_le(kv, m->remove_extra_whitespaces, 1);
    return 8;
}

static size_t check_against_golden(const golden_set *g, const char *via, const vd_tokenizer *tok)
{
    size_t checked = 0;
    for (size_t i = 0; i < g->n; i++) {
        const golden_case *c = &g->cases[i];
        if (strcmp(c->model, SMALL_MODEL) != 0)
            continue;
        int32_t *ids = NULL;
        size_t n = 0;
        vd_status s = vd_tokenizer_encode_bytes(tok, c->text, c->len, c->max_len, true, &ids, &n);
        CHECKF(s == VD_OK, "%s: %s", via, vd_last_error());
        if (s == VD_OK)
            golden_check(c, via, tok, ids, n);
        free(ids);
        checked++;
    }
    return checked;
}

static void open_and_check(const golden_set *g, const char *path, const char *via)
{
    vd_tokenizer *tok = NULL;
    CHECK_OK(vd_tokenizer_open(path, &tok));
    if (tok) {
        CHECKF(check_against_golden(g, via, tok) >= 50, "%s: too few golden cases", via);
        vd_tokenizer_free(tok);
    }
}

int main(void)
{
    golden_set g;
    if (golden_load(&g) != 0)
        return 1;
    size_t size;
    uint8_t *proto = read_file(VD_TEST_DATA_DIR "/tokenizer/" SMALL_MODEL, &size);
    CHECK(proto != NULL);
    if (!proto) {
        golden_free(&g);
        return test_finish("test_tokenizer_checkpoint");
    }
    char path[512];
    static const float dummy[8] = {0};

    /* safetensors, uint8 spiece_model (ComfyUI's layout). */
    scratch_path(path, sizeof path, "tok_spiece.safetensors");
    write_safetensors(path, "spiece_model", "U8", proto, size);
    open_and_check(&g, path, "safetensors spiece_model");
    remove(path);

    /* GGUF, int8 spiece_model next to a weight. */
    scratch_path(path, sizeof path, "tok_spiece.gguf");
    bytes kv = {0};
    gguf_key(&kv, "general.architecture", GGUF_STRING);
    gguf_str(&kv, "t5encoder", 9);
    gguf_tensor tensors[2] = {{"enc.output_norm.weight", 0, dummy, 8}, {"spiece_model", 24, proto, size}};
    write_gguf(path, &kv, 1, tensors, 2);
    open_and_check(&g, path, "GGUF spiece_model");
    remove(path);
    bytes_free(&kv);

    /* GGUF with llama.cpp tokenizer metadata only. */
    vd_sp_model m;
    CHECK_OK(vd_sp_model_parse(proto, size, "vdiff-small", &m));
    scratch_path(path, sizeof path, "tok_meta.gguf");
    uint64_t n_kv = t5_metadata(&kv, &m, "t5");
    write_gguf(path, &kv, n_kv, tensors, 1);
    open_and_check(&g, path, "GGUF tokenizer.ggml metadata");
    bytes_free(&kv);

    /* Another tokenizer kind is refused by name. */
    n_kv = t5_metadata(&kv, &m, "llama");
    write_gguf(path, &kv, n_kv, tensors, 1);
    vd_tokenizer *tok = NULL;
    CHECK_FAILS(vd_tokenizer_open(path, &tok), VD_ERR_UNSUPPORTED);
    bytes_free(&kv);
    vd_sp_model_free(&m);

    /* A GGUF without any tokenizer. */
    gguf_key(&kv, "general.architecture", GGUF_STRING);
    gguf_str(&kv, "t5encoder", 9);
    write_gguf(path, &kv, 1, tensors, 1);
    CHECK_FAILS(vd_tokenizer_open(path, &tok), VD_ERR_NOT_FOUND);
    CHECK(strstr(vd_last_error(), path) != NULL);
    bytes_free(&kv);
    remove(path);

    /* safetensors without spiece_model, or with the wrong dtype. */
    scratch_path(path, sizeof path, "tok_none.safetensors");
    write_safetensors(path, "shared.weight", "F32", dummy, sizeof dummy);
    CHECK_FAILS(vd_tokenizer_open(path, &tok), VD_ERR_NOT_FOUND);
    write_safetensors(path, "spiece_model", "F32", dummy, sizeof dummy);
    CHECK_FAILS(vd_tokenizer_open(path, &tok), VD_ERR_FORMAT);
    /* A corrupt spiece_model names the file and the tensor. */
    write_safetensors(path, "spiece_model", "U8", proto, size / 2);
    CHECK_FAILS(vd_tokenizer_open(path, &tok), VD_ERR_FORMAT);
    CHECK(strstr(vd_last_error(), "spiece_model") != NULL);
    remove(path);

    free(proto);
    golden_free(&g);
    return test_finish("test_tokenizer_checkpoint");
}

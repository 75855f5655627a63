/* GGUF: writer → reader round trips of every storage type (block types
 * and 5-D included), metadata of every value type from a hand-built file,
 * and corrupt files refused. */
#include <math.h>

#include "io/gguf.h"
#include "io/model_writer.h"
#include "io_test_util.h"

/* ---- a hand-made GGUF builder ------------------------------------------------- */

typedef struct tinfo {
    const char *name;
    uint32_t ndims;
    uint64_t ne[8]; /* innermost first, as stored */
    uint32_t type;
    uint64_t offset;
} tinfo;

typedef struct gspec {
    const char *magic;
    uint32_t version;
    bool n_tensors_set, n_kv_set;
    uint64_t n_tensors, n_kv; /* overrides when *_set */
    tbuf kv;                  /* raw key/values */
    uint64_t kv_count;
    tinfo tensors[8];
    size_t count;
    uint32_t alignment;       /* used to pad the header */
    size_t data_size;
} gspec;

static void kv_key(gspec *g, const char *key, uint32_t type)
{
    tb_str(&g->kv, key);
    tb_u32(&g->kv, type);
    g->kv_count++;
}

static void kv_u32(gspec *g, const char *key, uint32_t v)
{
    kv_key(g, key, VD_GGUF_U32);
    tb_u32(&g->kv, v);
}

static void kv_string(gspec *g, const char *key, const char *v)
{
    kv_key(g, key, VD_GGUF_STRING);
    tb_str(&g->kv, v);
}

/* The base file: a Q8_0 [2, 64] weight and an F32 [2] bias. */
static gspec base_spec(void)
{
    gspec g = {.magic = "GGUF", .version = 3, .alignment = 32};
    kv_string(&g, "general.architecture", "wan");
    g.tensors[0] = (tinfo){"w", 2, {64, 2}, 8, 0};   /* 2 rows x 2 blocks x 34 = 136 bytes */
    g.tensors[1] = (tinfo){"b", 1, {2}, 0, 160};     /* after padding to 32 */
    g.count = 2;
    g.data_size = 168;
    return g;
}

static size_t build(const gspec *g, tbuf *out)
{
    memset(out, 0, sizeof *out);
    tb_put(out, g->magic, 4);
    tb_u32(out, g->version);
    tb_u64(out, g->n_tensors_set ? g->n_tensors : g->count);
    tb_u64(out, g->n_kv_set ? g->n_kv : g->kv_count);
    tb_put(out, g->kv.data, g->kv.size);
    for (size_t i = 0; i < g->count; i++) {
        const tinfo *t = &g->tensors[i];
        tb_str(out, t->name);
        tb_u32(out, t->ndims);
        for (uint32_t d = 0; d < t->ndims && d < 8; d++)
            tb_u64(out, t->ne[d]);
        tb_u32(out, t->type);
        tb_u64(out, t->offset);
    }
    tb_pad(out, g->alignment ? g->alignment : 32);
    size_t data_start = out->size;
    for (size_t i = 0; i < g->data_size; i++)
        tb_u8(out, (uint8_t)(i * 37 + 11));
    return data_start;
}

static const char *write_spec(const char *name, gspec *g)
{
    tbuf b;
    build(g, &b);
    const char *path = scratch_path(name);
    write_file(path, b.data, b.size);
    tb_free(&b);
    tb_free(&g->kv);
    return path;
}

/* ---- round trips ------------------------------------------------------------------ */

typedef struct spec {
    const char *name;
    vd_dtype dtype;
    int ndim;
    int64_t shape[VD_MAX_DIMS];
} spec;

static size_t spec_bytes(const spec *s)
{
    vd_tensor t;
    if (vd_tensor_init(&t, s->dtype, s->ndim, s->shape, NULL) != VD_OK)
        return 0;
    return vd_tensor_nbytes(&t);
}

/* Real blocks for block types (the reference quantizer on random
 * values), random bytes otherwise. */
static uint8_t *tensor_bytes(const spec *s, uint64_t seed)
{
    size_t nb = spec_bytes(s);
    uint8_t *b = malloc(nb ? nb : 1);
    vd_tensor t;
    vd_tensor_init(&t, s->dtype, s->ndim, s->shape, NULL);
    int64_t n = vd_tensor_nelem(&t);
    int64_t nf = (int64_t)(nb / 4 + 1);
    float *f = random_floats(seed, n > nf ? n : nf, -3.0f, 3.0f);
    if (vd_dtype_info(s->dtype)->is_quantized)
        CHECK_OK(vd_dtype_from_f32(s->dtype, f, b, n));
    else
        memcpy(b, f, nb);
    free(f);
    return b;
}

static void test_roundtrip_all_types(void)
{
    const spec specs[] = {
        {"f32", VD_F32, 2, {3, 5}},          {"f16", VD_F16, 2, {2, 7}},
        {"bf16", VD_BF16, 1, {9}},           {"f64", VD_F64, 1, {3}},
        {"i8", VD_I8, 1, {5}},               {"i16", VD_I16, 2, {2, 3}},
        {"i32", VD_I32, 1, {4}},             {"i64", VD_I64, 1, {2}},
        {"q4_0", VD_Q4_0, 2, {3, 64}},       {"q4_1", VD_Q4_1, 2, {2, 32}},
        {"q5_0", VD_Q5_0, 2, {2, 96}},       {"q5_1", VD_Q5_1, 1, {64}},
        {"q8_0", VD_Q8_0, 3, {2, 2, 32}},    {"q2_k", VD_Q2_K, 2, {2, 256}},
        {"q3_k", VD_Q3_K, 2, {1, 512}},      {"q4_k", VD_Q4_K, 2, {3, 256}},
        {"q5_k", VD_Q5_K, 2, {2, 256}},      {"q6_k", VD_Q6_K, 2, {2, 256}},
        {"patch_embedding.weight", VD_F32, 5, {6, 4, 1, 2, 2}},
        {"empty", VD_F16, 2, {0, 8}},
        {"q8_five_d", VD_Q8_0, 5, {2, 1, 1, 2, 32}},
    };
    size_t n = sizeof specs / sizeof specs[0];
    uint8_t *datas[sizeof specs / sizeof specs[0]];
    const char *path = scratch_path("all.gguf");
    vd_model_writer *w;
    CHECK_OK(vd_model_writer_open(path, VD_FORMAT_NONE, &w));
    CHECK_OK(vd_model_writer_meta_string(w, "general.architecture", "wan"));
    CHECK_OK(vd_model_writer_meta_u32(w, "wan.block_count", 30));
    CHECK_OK(vd_model_writer_meta_f32(w, "wan.eps", 1e-6f));
    const char *tokens[] = {"<pad>", "</s>", "\xe2\x96\x81hello"};
    CHECK_OK(vd_model_writer_meta_string_array(w, "tokenizer.ggml.tokens", tokens, 3));
    const float scores[] = {0.0f, -1.5f, 2.25f, 1e30f};
    CHECK_OK(vd_model_writer_meta_f32_array(w, "tokenizer.ggml.scores", scores, 4));
    const int32_t types[] = {3, -1, 2147483647, -2147483647 - 1};
    CHECK_OK(vd_model_writer_meta_i32_array(w, "tokenizer.ggml.token_type", types, 4));
    CHECK_OK(vd_model_writer_meta_i32_array(w, "empty.array", NULL, 0));
    for (size_t i = 0; i < n; i++) {
        datas[i] = tensor_bytes(&specs[i], 300 + i);
        CHECK_OK(vd_model_writer_declare(w, specs[i].name, specs[i].dtype, specs[i].ndim, specs[i].shape));
    }
    CHECK_OK(vd_model_writer_begin(w));
    for (size_t i = 0; i < n; i++)
        CHECK_OK(vd_model_writer_write(w, datas[i], spec_bytes(&specs[i])));
    CHECK_OK(vd_model_writer_finish(w));

    vd_weights *r = NULL;
    CHECK_OK(vd_weights_open(path, &r));
    if (!r)
        return;
    CHECK(vd_weights_format(r) == VD_FORMAT_GGUF);
    CHECK(vd_weights_count(r) == n);
    CHECK(strcmp(vd_weights_quant_layout(r), "gguf block-quantized") == 0);
    for (size_t i = 0; i < n; i++) {
        const vd_weight *x = vd_weights_at(r, i);
        CHECK(strcmp(x->name, specs[i].name) == 0); /* file order = declaration order */
        CHECK(x->tensor.dtype == specs[i].dtype);
        CHECKF(x->tensor.ndim == specs[i].ndim, "%s: ndim %d", specs[i].name, x->tensor.ndim);
        for (int d = 0; d < specs[i].ndim; d++)
            CHECK(x->tensor.shape[d] == specs[i].shape[d]);
        CHECK(x->nbytes == spec_bytes(&specs[i]));
        CHECK(x->offset % 32 == 0);
        CHECK((uintptr_t)x->tensor.data % 32 == 0);
        CHECKF(x->nbytes == 0 || memcmp(x->tensor.data, datas[i], x->nbytes) == 0, "%s: data differs", specs[i].name);
        /* Decoding the stored blocks gives what decoding the originals gives. */
        vd_tensor t;
        vd_tensor_init(&t, specs[i].dtype, specs[i].ndim, specs[i].shape, NULL);
        int64_t ne = vd_tensor_nelem(&t);
        if (ne > 0 && vd_dtype_info(specs[i].dtype)->is_quantized) {
            float *a = malloc((size_t)ne * 4), *b = malloc((size_t)ne * 4);
            CHECK_OK(vd_dtype_to_f32(specs[i].dtype, x->tensor.data, a, ne));
            CHECK_OK(vd_dtype_to_f32(specs[i].dtype, datas[i], b, ne));
            CHECK(memcmp(a, b, (size_t)ne * 4) == 0);
            free(a);
            free(b);
        }
    }
    /* Typed metadata. */
    const vd_gguf *g = vd_weights_gguf(r);
    CHECK(g && g->version == 3 && g->alignment == 32);
    CHECK(strcmp(vd_weights_meta_string(r, "general.architecture"), "wan") == 0);
    CHECK(vd_weights_meta_string(r, "wan.block_count") == NULL); /* not a string */
    const vd_gguf_kv *kv = vd_gguf_find(g, "wan.block_count");
    CHECK(kv && kv->value.type == VD_GGUF_U32 && kv->value.v.u == 30);
    kv = vd_gguf_find(g, "wan.eps");
    CHECK(kv && kv->value.type == VD_GGUF_F32 && kv->value.v.f == (double)1e-6f);
    kv = vd_gguf_find(g, "tokenizer.ggml.tokens");
    CHECK(kv && kv->value.type == VD_GGUF_ARRAY && kv->value.v.arr.elem_type == VD_GGUF_STRING &&
          kv->value.v.arr.count == 3);
    for (uint64_t i = 0; kv && i < 3; i++) {
        vd_gguf_value e;
        CHECK(vd_gguf_array_at(&kv->value, i, &e) && e.type == VD_GGUF_STRING);
        CHECK(e.v.str.len == strlen(tokens[i]) && memcmp(e.v.str.data, tokens[i], e.v.str.len) == 0);
    }
    kv = vd_gguf_find(g, "tokenizer.ggml.scores");
    for (uint64_t i = 0; kv && i < 4; i++) {
        vd_gguf_value e;
        CHECK(vd_gguf_array_at(&kv->value, i, &e) && e.type == VD_GGUF_F32 && e.v.f == (double)scores[i]);
    }
    kv = vd_gguf_find(g, "tokenizer.ggml.token_type");
    for (uint64_t i = 0; kv && i < 4; i++) {
        vd_gguf_value e;
        CHECK(vd_gguf_array_at(&kv->value, i, &e) && e.type == VD_GGUF_I32 && e.v.i == types[i]);
    }
    vd_gguf_value e;
    CHECK(kv && !vd_gguf_array_at(&kv->value, 4, &e));
    kv = vd_gguf_find(g, "empty.array");
    CHECK(kv && kv->value.v.arr.count == 0);
    bool printed = false;
    for (size_t i = 0; i < vd_weights_meta_count(r); i++) {
        const vd_meta_entry *m = vd_weights_meta_at(r, i);
        if (strcmp(m->key, "tokenizer.ggml.tokens") == 0)
            printed = strcmp(m->value, "[array of 3 string]") == 0;
    }
    CHECK(printed);
    vd_weights_close(r);
    for (size_t i = 0; i < n; i++)
        free(datas[i]);
}

/* The writer's bytes, checked without the engine's reader: header fields,
 * dims innermost first, alignment, padding after the last tensor. */
static void test_writer_layout(void)
{
    const char *path = scratch_path("layout.gguf");
    const int64_t shape[5] = {2, 3, 1, 2, 5};
    float data[60];
    for (int i = 0; i < 60; i++)
        data[i] = (float)i + 0.5f;
    vd_model_writer *w;
    CHECK_OK(vd_model_writer_open(path, VD_FORMAT_GGUF, &w));
    CHECK_OK(vd_model_writer_declare(w, "x", VD_F32, 5, shape));
    CHECK_OK(vd_model_writer_declare(w, "s", VD_F32, 0, NULL));
    CHECK_OK(vd_model_writer_begin(w));
    CHECK_OK(vd_model_writer_write(w, data, sizeof data));
    CHECK_OK(vd_model_writer_write(w, data, 4));
    CHECK_OK(vd_model_writer_finish(w));
    size_t size = 0;
    uint8_t *f = read_file(path, &size);
    CHECK(f && memcmp(f, "GGUF", 4) == 0);
    if (!f)
        return;
    uint32_t u32;
    uint64_t u64;
    memcpy(&u32, f + 4, 4);
    CHECK(u32 == 3);
    memcpy(&u64, f + 8, 8);
    CHECK(u64 == 2);
    memcpy(&u64, f + 16, 8);
    CHECK(u64 == 1);
    size_t p = 24;
    memcpy(&u64, f + p, 8);
    CHECK(u64 == 17 && memcmp(f + p + 8, "general.alignment", 17) == 0);
    p += 8 + 17;
    memcpy(&u32, f + p, 4);
    CHECK(u32 == VD_GGUF_U32);
    memcpy(&u32, f + p + 4, 4);
    CHECK(u32 == 32);
    p += 8;
    memcpy(&u64, f + p, 8);
    CHECK(u64 == 1 && f[p + 8] == 'x');
    p += 9;
    memcpy(&u32, f + p, 4);
    CHECK(u32 == 5);
    p += 4;
    for (int d = 0; d < 5; d++) {
        memcpy(&u64, f + p + 8 * (size_t)d, 8);
        CHECKF(u64 == (uint64_t)shape[4 - d], "ne[%d] = %llu", d, (unsigned long long)u64);
    }
    p += 40;
    memcpy(&u32, f + p, 4);
    CHECK(u32 == 0); /* F32 */
    memcpy(&u64, f + p + 4, 8);
    CHECK(u64 == 0);
    p += 12;
    memcpy(&u64, f + p + 9 + 4, 8); /* "s": one dim */
    CHECK(u64 == 1);
    size_t data_start = (p + 9 + 4 + 8 + 4 + 8 + 31) / 32 * 32;
    CHECK(memcmp(f + data_start, data, sizeof data) == 0);
    CHECK(memcmp(f + data_start + 256, data, 4) == 0); /* 240 bytes, aligned up to 256 */
    CHECK(size == data_start + 256 + 32);                 /* the last tensor is padded too */
    free(f);
}

/* Every metadata value type, nested arrays included, from a hand-built
 * file. */
static void test_metadata_all_types(void)
{
    gspec g = base_spec();
    kv_key(&g, "k.u8", VD_GGUF_U8), tb_u8(&g.kv, 200);
    kv_key(&g, "k.i8", VD_GGUF_I8), tb_u8(&g.kv, (uint8_t)-5);
    kv_key(&g, "k.u16", VD_GGUF_U16), tb_le(&g.kv, 60000, 2);
    kv_key(&g, "k.i16", VD_GGUF_I16), tb_le(&g.kv, (uint16_t)-30000, 2);
    kv_key(&g, "k.u32", VD_GGUF_U32), tb_u32(&g.kv, 4000000000u);
    kv_key(&g, "k.i32", VD_GGUF_I32), tb_u32(&g.kv, (uint32_t)-2000000000);
    kv_key(&g, "k.f32", VD_GGUF_F32), tb_f32(&g.kv, -1.25f);
    kv_key(&g, "k.bool", VD_GGUF_BOOL), tb_u8(&g.kv, 1);
    kv_key(&g, "k.string", VD_GGUF_STRING), tb_str(&g.kv, "h\xc3\xa9llo");
    kv_key(&g, "k.u64", VD_GGUF_U64), tb_u64(&g.kv, 18000000000000000000ull);
    kv_key(&g, "k.i64", VD_GGUF_I64), tb_u64(&g.kv, (uint64_t)-4000000000000000000ll);
    kv_key(&g, "k.f64", VD_GGUF_F64), tb_f64(&g.kv, 3.141592653589793);
    kv_key(&g, "k.bools", VD_GGUF_ARRAY), tb_u32(&g.kv, VD_GGUF_BOOL), tb_u64(&g.kv, 3);
    tb_u8(&g.kv, 1), tb_u8(&g.kv, 0), tb_u8(&g.kv, 1);
    kv_key(&g, "k.i16s", VD_GGUF_ARRAY), tb_u32(&g.kv, VD_GGUF_I16), tb_u64(&g.kv, 2);
    tb_le(&g.kv, (uint16_t)-7, 2), tb_le(&g.kv, 9, 2);
    kv_key(&g, "k.f64s", VD_GGUF_ARRAY), tb_u32(&g.kv, VD_GGUF_F64), tb_u64(&g.kv, 2);
    tb_f64(&g.kv, 0.5), tb_f64(&g.kv, -2.0);
    /* [[1, 2], [3]] of i32, and a 4-deep nest [[[["deep"]]]] */
    kv_key(&g, "k.nested", VD_GGUF_ARRAY), tb_u32(&g.kv, VD_GGUF_ARRAY), tb_u64(&g.kv, 2);
    tb_u32(&g.kv, VD_GGUF_I32), tb_u64(&g.kv, 2), tb_u32(&g.kv, 1), tb_u32(&g.kv, 2);
    tb_u32(&g.kv, VD_GGUF_I32), tb_u64(&g.kv, 1), tb_u32(&g.kv, 3);
    kv_key(&g, "k.deep", VD_GGUF_ARRAY);
    for (int d = 0; d < 3; d++)
        tb_u32(&g.kv, VD_GGUF_ARRAY), tb_u64(&g.kv, 1);
    tb_u32(&g.kv, VD_GGUF_STRING), tb_u64(&g.kv, 1), tb_str(&g.kv, "deep");
    kv_key(&g, "k.empty_string", VD_GGUF_STRING), tb_str(&g.kv, "");
    const char *path = write_spec("types.gguf", &g);

    vd_weights *w = NULL;
    CHECK_OK(vd_weights_open(path, &w));
    if (!w)
        return;
    const vd_gguf *gg = vd_weights_gguf(w);
    struct {
        const char *key;
        vd_gguf_type type;
        const char *printed;
    } want[] = {
        {"k.u8", VD_GGUF_U8, "200"},
        {"k.i8", VD_GGUF_I8, "-5"},
        {"k.u16", VD_GGUF_U16, "60000"},
        {"k.i16", VD_GGUF_I16, "-30000"},
        {"k.u32", VD_GGUF_U32, "4000000000"},
        {"k.i32", VD_GGUF_I32, "-2000000000"},
        {"k.f32", VD_GGUF_F32, "-1.25"},
        {"k.bool", VD_GGUF_BOOL, "true"},
        {"k.string", VD_GGUF_STRING, "h\xc3\xa9llo"},
        {"k.u64", VD_GGUF_U64, "18000000000000000000"},
        {"k.i64", VD_GGUF_I64, "-4000000000000000000"},
        {"k.f64", VD_GGUF_F64, "3.1415926535897931"},
        {"k.bools", VD_GGUF_ARRAY, "[array of 3 bool]"},
        {"k.i16s", VD_GGUF_ARRAY, "[array of 2 i16]"},
        {"k.f64s", VD_GGUF_ARRAY, "[array of 2 f64]"},
        {"k.nested", VD_GGUF_ARRAY, "[array of 2 array]"},
        {"k.deep", VD_GGUF_ARRAY, "[array of 1 array]"},
        {"k.empty_string", VD_GGUF_STRING, ""},
    };
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        const vd_gguf_kv *kv = vd_gguf_find(gg, want[i].key);
        CHECKF(kv && kv->value.type == want[i].type, "%s", want[i].key);
        const char *printed = NULL;
        for (size_t k = 0; k < vd_weights_meta_count(w); k++)
            if (strcmp(vd_weights_meta_at(w, k)->key, want[i].key) == 0)
                printed = vd_weights_meta_at(w, k)->value;
        CHECKF(printed && strcmp(printed, want[i].printed) == 0, "%s printed as '%s'", want[i].key,
               printed ? printed : "(absent)");
        const char *s = vd_weights_meta_string(w, want[i].key);
        CHECK((want[i].type == VD_GGUF_STRING) == (s != NULL));
    }
    CHECK(vd_gguf_find(gg, "k.u64")->value.v.u == 18000000000000000000ull);
    CHECK(vd_gguf_find(gg, "k.i64")->value.v.i == -4000000000000000000ll);
    CHECK(vd_gguf_find(gg, "k.f64")->value.v.f == 3.141592653589793);
    vd_gguf_value e, e2;
    const vd_gguf_kv *kv = vd_gguf_find(gg, "k.bools");
    CHECK(vd_gguf_array_at(&kv->value, 1, &e) && e.type == VD_GGUF_BOOL && e.v.u == 0);
    kv = vd_gguf_find(gg, "k.i16s");
    CHECK(vd_gguf_array_at(&kv->value, 0, &e) && e.v.i == -7);
    kv = vd_gguf_find(gg, "k.f64s");
    CHECK(vd_gguf_array_at(&kv->value, 1, &e) && e.v.f == -2.0);
    kv = vd_gguf_find(gg, "k.nested");
    CHECK(vd_gguf_array_at(&kv->value, 0, &e) && e.type == VD_GGUF_ARRAY && e.v.arr.count == 2);
    CHECK(vd_gguf_array_at(&e, 1, &e2) && e2.type == VD_GGUF_I32 && e2.v.i == 2);
    CHECK(vd_gguf_array_at(&kv->value, 1, &e) && vd_gguf_array_at(&e, 0, &e2) && e2.v.i == 3);
    kv = vd_gguf_find(gg, "k.deep");
    e = kv->value;
    for (int d = 0; d < 3; d++)
        CHECK(vd_gguf_array_at(&e, 0, &e) && e.type == VD_GGUF_ARRAY);
    CHECK(vd_gguf_array_at(&e, 0, &e) && e.type == VD_GGUF_STRING && e.v.str.len == 4 &&
          memcmp(e.v.str.data, "deep", 4) == 0);
    /* Tensors of the base spec. */
    const vd_weight *x = vd_weights_find(w, "w");
    CHECK(x && x->tensor.dtype == VD_Q8_0 && x->tensor.ndim == 2 && x->tensor.shape[0] == 2 &&
          x->tensor.shape[1] == 64 && x->nbytes == 136);
    x = vd_weights_find(w, "b");
    CHECK(x && x->tensor.dtype == VD_F32 && x->offset % 32 == 0);
    vd_weights_close(w);
}

/* city96's flattened tensors carry their real shape in metadata. */
static void test_orig_shape(void)
{
    gspec g = {.magic = "GGUF", .version = 3, .alignment = 32};
    kv_key(&g, "comfy.gguf.orig_shape.x", VD_GGUF_ARRAY), tb_u32(&g.kv, VD_GGUF_I32), tb_u64(&g.kv, 3);
    tb_u32(&g.kv, 4), tb_u32(&g.kv, 8), tb_u32(&g.kv, 32);
    g.tensors[0] = (tinfo){"x", 2, {256, 4}, 8, 0}; /* Q8_0, 1024 elements */
    g.count = 1;
    g.data_size = 4 * 8 * 34;
    const char *path = write_spec("orig.gguf", &g);
    vd_weights *w = NULL;
    CHECK_OK(vd_weights_open(path, &w));
    const vd_weight *x = w ? vd_weights_find(w, "x") : NULL;
    CHECK(x && x->tensor.ndim == 3 && x->tensor.shape[0] == 4 && x->tensor.shape[1] == 8 && x->tensor.shape[2] == 32);
    vd_weights_close(w);

    gspec bad = {.magic = "GGUF", .version = 3, .alignment = 32};
    kv_key(&bad, "comfy.gguf.orig_shape.x", VD_GGUF_ARRAY), tb_u32(&bad.kv, VD_GGUF_I32), tb_u64(&bad.kv, 2);
    tb_u32(&bad.kv, 4), tb_u32(&bad.kv, 100);
    bad.tensors[0] = (tinfo){"x", 2, {256, 4}, 8, 0};
    bad.count = 1;
    bad.data_size = 4 * 8 * 34;
    EXPECT_REFUSED(write_spec("orig-bad.gguf", &bad), VD_ERR_FORMAT, "orig_shape of another element count");
}

/* ---- corrupt files ------------------------------------------------------------------- */

typedef void (*mutate_fn)(gspec *g);

static void m_magic(gspec *g) { g->magic = "GGUX"; }
static void m_version0(gspec *g) { g->version = 0; }
static void m_version1(gspec *g) { g->version = 1; }
static void m_version4(gspec *g) { g->version = 4; }
static void m_big_endian(gspec *g) { g->version = 0x03000000u; }
static void m_n_tensors(gspec *g) { g->n_tensors_set = true, g->n_tensors = 1ull << 40; }
static void m_n_tensors_over_file(gspec *g) { g->n_tensors_set = true, g->n_tensors = 5000; }
static void m_n_kv(gspec *g) { g->n_kv_set = true, g->n_kv = UINT64_MAX; }
static void m_n_kv_over_file(gspec *g) { g->n_kv_set = true, g->n_kv = 200; }
static void m_string_past_end(gspec *g)
{
    kv_key(g, "k", VD_GGUF_STRING);
    tb_u64(&g->kv, 1ull << 40);
}
static void m_key_past_end(gspec *g)
{
    tb_u64(&g->kv, 1ull << 33);
    g->kv_count++;
}
static void m_key_empty(gspec *g) { kv_key(g, "", VD_GGUF_U8), tb_u8(&g->kv, 1); }
static void m_key_nul(gspec *g)
{
    tb_u64(&g->kv, 3), tb_put(&g->kv, "a\0b", 3), tb_u32(&g->kv, VD_GGUF_U8), tb_u8(&g->kv, 1);
    g->kv_count++;
}
static void m_value_type(gspec *g) { kv_key(g, "k", 13), tb_u32(&g->kv, 0); }
static void m_elem_type(gspec *g) { kv_key(g, "k", VD_GGUF_ARRAY), tb_u32(&g->kv, 99), tb_u64(&g->kv, 0); }
static void m_too_deep(gspec *g)
{
    kv_key(g, "k", VD_GGUF_ARRAY);
    for (int d = 0; d < 4; d++)
        tb_u32(&g->kv, VD_GGUF_ARRAY), tb_u64(&g->kv, 1);
    tb_u32(&g->kv, VD_GGUF_U8), tb_u64(&g->kv, 0);
}
static void m_array_count(gspec *g) { kv_key(g, "k", VD_GGUF_ARRAY), tb_u32(&g->kv, VD_GGUF_U32), tb_u64(&g->kv, 1ull << 61); }
static void m_string_array_count(gspec *g)
{
    kv_key(g, "k", VD_GGUF_ARRAY), tb_u32(&g->kv, VD_GGUF_STRING), tb_u64(&g->kv, 100000);
}
static void m_bool(gspec *g) { kv_key(g, "k", VD_GGUF_BOOL), tb_u8(&g->kv, 2); }
static void m_dup_key(gspec *g) { kv_string(g, "general.architecture", "again"); }
static void m_tensor_type(gspec *g) { g->tensors[1].type = 1000; }
static void m_tensor_type_iq(gspec *g) { g->tensors[1].type = 16; }
static void m_ndims0(gspec *g) { g->tensors[1].ndims = 0; }
static void m_ndims6(gspec *g)
{
    g->tensors[1].ndims = 6;
    for (int d = 1; d < 6; d++)
        g->tensors[1].ne[d] = 1;
}
static void m_offset_unaligned(gspec *g) { g->tensors[1].offset = 144; }
static void m_offset_range(gspec *g) { g->tensors[1].offset = 1ull << 62; }
static void m_offset_wrap(gspec *g) { g->tensors[1].offset = UINT64_MAX - 31; }
static void m_overlap(gspec *g) { g->tensors[1].offset = 128; }
static void m_alignment_npot(gspec *g) { kv_u32(g, "general.alignment", 48), g->alignment = 48; }
static void m_alignment_zero(gspec *g) { kv_u32(g, "general.alignment", 0); }
static void m_alignment_type(gspec *g) { kv_key(g, "general.alignment", VD_GGUF_U64), tb_u64(&g->kv, 32); }
static void m_block(gspec *g) { g->tensors[0].ne[0] = 48, g->tensors[0].ne[1] = 1; }
static void m_dup_tensor(gspec *g) { g->tensors[1].name = "w"; }
static void m_dim_huge(gspec *g) { g->tensors[1].ne[0] = 1ull << 63; }
static void m_elem_overflow(gspec *g)
{
    g->tensors[1].ndims = 3;
    g->tensors[1].ne[0] = g->tensors[1].ne[1] = g->tensors[1].ne[2] = 1ull << 22;
}
static void m_name_empty(gspec *g) { g->tensors[1].name = ""; }
static void m_data_past_end(gspec *g) { g->data_size = 100; }

static void test_corrupt_gguf(void)
{
    gspec ok = base_spec();
    const char *okp = write_spec("ok.gguf", &ok);
    vd_weights *w = NULL;
    CHECK_OK(vd_weights_open(okp, &w));
    CHECK(w && vd_weights_count(w) == 2);
    vd_weights_close(w);

    struct {
        const char *label;
        mutate_fn fn;
        vd_status status;
    } cases[] = {
        {"bad GGUF magic", m_magic, VD_ERR_FORMAT},
        {"GGUF version 0", m_version0, VD_ERR_FORMAT},
        {"GGUF version 1", m_version1, VD_ERR_UNSUPPORTED},
        {"GGUF version 4", m_version4, VD_ERR_UNSUPPORTED},
        {"big-endian GGUF", m_big_endian, VD_ERR_UNSUPPORTED},
        {"n_tensors absurd (2^40)", m_n_tensors, VD_ERR_FORMAT},
        {"n_tensors more than the file can hold", m_n_tensors_over_file, VD_ERR_FORMAT},
        {"n_kv absurd (2^64-1)", m_n_kv, VD_ERR_FORMAT},
        {"n_kv more than present", m_n_kv_over_file, VD_ERR_FORMAT},
        {"string length past the end", m_string_past_end, VD_ERR_FORMAT},
        {"key length past the end", m_key_past_end, VD_ERR_FORMAT},
        {"empty key", m_key_empty, VD_ERR_FORMAT},
        {"NUL inside a key", m_key_nul, VD_ERR_FORMAT},
        {"unknown value type 13", m_value_type, VD_ERR_FORMAT},
        {"unknown array element type", m_elem_type, VD_ERR_FORMAT},
        {"arrays nested 5 deep", m_too_deep, VD_ERR_FORMAT},
        {"huge array count", m_array_count, VD_ERR_FORMAT},
        {"string array count past the end", m_string_array_count, VD_ERR_FORMAT},
        {"bool of value 2", m_bool, VD_ERR_FORMAT},
        {"duplicate metadata key", m_dup_key, VD_ERR_FORMAT},
        {"tensor type unknown (1000)", m_tensor_type, VD_ERR_UNSUPPORTED},
        {"tensor type IQ2_XXS (unsupported)", m_tensor_type_iq, VD_ERR_UNSUPPORTED},
        {"n_dims 0", m_ndims0, VD_ERR_FORMAT},
        {"n_dims 6", m_ndims6, VD_ERR_FORMAT},
        {"offset not aligned", m_offset_unaligned, VD_ERR_FORMAT},
        {"offset out of range", m_offset_range, VD_ERR_FORMAT},
        {"offset + size wraps around", m_offset_wrap, VD_ERR_FORMAT},
        {"tensors overlapping", m_overlap, VD_ERR_FORMAT},
        {"alignment not a power of two (48)", m_alignment_npot, VD_ERR_FORMAT},
        {"alignment zero", m_alignment_zero, VD_ERR_FORMAT},
        {"alignment not a u32", m_alignment_type, VD_ERR_FORMAT},
        {"innermost dim not a multiple of the block size", m_block, VD_ERR_FORMAT},
        {"duplicate tensor names", m_dup_tensor, VD_ERR_FORMAT},
        {"dimension over INT64_MAX", m_dim_huge, VD_ERR_FORMAT},
        {"element count overflows", m_elem_overflow, VD_ERR_FORMAT},
        {"empty tensor name", m_name_empty, VD_ERR_FORMAT},
        {"data section shorter than the tensors", m_data_past_end, VD_ERR_FORMAT},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        gspec g = base_spec();
        cases[i].fn(&g);
        char name[64];
        snprintf(name, sizeof name, "corrupt%zu.gguf", i);
        EXPECT_REFUSED(write_spec(name, &g), cases[i].status, cases[i].label);
    }

    /* 4-deep nesting is still fine. */
    gspec g = base_spec();
    kv_key(&g, "k", VD_GGUF_ARRAY);
    for (int d = 0; d < 3; d++)
        tb_u32(&g.kv, VD_GGUF_ARRAY), tb_u64(&g.kv, 1);
    tb_u32(&g.kv, VD_GGUF_U8), tb_u64(&g.kv, 0);
    CHECK_OK(vd_weights_open(write_spec("deep4.gguf", &g), &w));
    vd_weights_close(w);
}

/* Every prefix that cuts into the header or a tensor is refused; cutting
 * only the padding after the last tensor is harmless. */
static void test_truncated_everywhere(void)
{
    gspec g = base_spec();
    kv_key(&g, "k.arr", VD_GGUF_ARRAY), tb_u32(&g.kv, VD_GGUF_STRING), tb_u64(&g.kv, 2);
    tb_str(&g.kv, "ab"), tb_str(&g.kv, "cde");
    kv_u32(&g, "general.alignment", 64);
    g.alignment = 64;
    g.tensors[1].offset = 192;
    g.data_size = 200 + 24; /* padding after the last tensor */
    tbuf b;
    size_t data_start = build(&g, &b);
    tb_free(&g.kv);
    size_t needed = data_start + 200;
    const char *p = scratch_path("trunc.gguf");
    write_file(p, b.data, b.size);
    /* Shrink one byte at a time (no rewriting). */
    for (size_t cut = b.size; cut >= needed; cut--) {
        CHECK(truncate(p, (off_t)cut) == 0);
        vd_weights *w = NULL;
        CHECK_OK(vd_weights_open(p, &w));
        vd_weights_close(w);
    }
    int before = test_failures;
    for (size_t cut = needed; cut-- > 0;) {
        CHECK(truncate(p, (off_t)cut) == 0);
        EXPECT_REFUSED(p, VD_ERR_FORMAT, NULL);
    }
    if (test_failures == before) {
        printf("refused [format error] GGUF truncated at every one of %zu byte offsets\n", needed);
        refused_cases++;
    }
    int tried = mutate_every_byte(b.data, b.size, data_start, scratch_path("mutated.gguf"));
    printf("%d single-byte mutations of the header read or refused cleanly\n", tried);
    tb_free(&b);
}

int main(void)
{
    scratch_init("gguf");
    test_roundtrip_all_types();
    test_writer_layout();
    test_metadata_all_types();
    test_orig_shape();
    test_corrupt_gguf();
    test_truncated_everywhere();
    printf("%d refused cases\n", refused_cases);
    scratch_cleanup();
    return test_finish("gguf");
}

/* safetensors: writer → reader round trips of every dtype, the written
 * header checked independently (cJSON), and corrupt files refused. */
#include <cjson/cJSON.h>
#include <sys/stat.h>

#include "io/model_writer.h"
#include "io/safetensors.h"
#include "io_test_util.h"

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

/* Deterministic random bytes (never all zero). */
static uint8_t *random_bytes(uint64_t seed, size_t n)
{
    float *f = random_floats(seed, (int64_t)(n / 4 + 1), -1000.0f, 1000.0f);
    uint8_t *b = malloc(n ? n : 1);
    memcpy(b, f, n);
    free(f);
    return b;
}

/* Check the header of a written file without the engine's reader: the
 * data section starts at a multiple of 8, tensors are contiguous (no
 * holes, as the reference reader requires) and each at a multiple of its
 * element size. */
static void check_written_header(const char *path, const spec *specs, size_t n)
{
    size_t size;
    uint8_t *file = read_file(path, &size);
    CHECK(file && size >= 8);
    if (!file)
        return;
    uint64_t hn = 0;
    for (int i = 7; i >= 0; i--)
        hn = (hn << 8) | file[i];
    CHECK((8 + hn) % 8 == 0);
    CHECK(8 + hn <= size);
    char *text = malloc(hn + 1);
    memcpy(text, file + 8, hn);
    text[hn] = '\0';
    cJSON *root = cJSON_Parse(text);
    CHECK(cJSON_IsObject(root));
    uint64_t data_size = size - 8 - hn;
    uint64_t *begins = calloc(n, sizeof *begins), *ends = calloc(n, sizeof *ends);
    for (size_t i = 0; i < n; i++) {
        const cJSON *e = cJSON_GetObjectItemCaseSensitive(root, specs[i].name);
        CHECKF(cJSON_IsObject(e), "%s missing from the header", specs[i].name);
        if (!e)
            continue;
        const cJSON *dt = cJSON_GetObjectItemCaseSensitive(e, "dtype");
        CHECK(cJSON_IsString(dt) && strcmp(dt->valuestring, vd_safetensors_dtype_name(specs[i].dtype)) == 0);
        const cJSON *sh = cJSON_GetObjectItemCaseSensitive(e, "shape");
        CHECK(cJSON_GetArraySize(sh) == specs[i].ndim);
        for (int d = 0; d < specs[i].ndim; d++)
            CHECK((int64_t)cJSON_GetArrayItem(sh, d)->valuedouble == specs[i].shape[d]);
        const cJSON *off = cJSON_GetObjectItemCaseSensitive(e, "data_offsets");
        begins[i] = (uint64_t)cJSON_GetArrayItem(off, 0)->valuedouble;
        ends[i] = (uint64_t)cJSON_GetArrayItem(off, 1)->valuedouble;
        CHECK(ends[i] - begins[i] == spec_bytes(&specs[i]));
        int es = vd_dtype_info(specs[i].dtype)->block_bytes;
        CHECKF(begins[i] % (uint64_t)es == 0, "%s at %llu is not %d-aligned", specs[i].name,
               (unsigned long long)begins[i], es);
    }
    /* Contiguous: the ranges tile [0, data_size) exactly. */
    uint64_t covered = 0;
    for (uint64_t pos = 0; pos < data_size;) {
        bool found = false;
        for (size_t i = 0; i < n; i++)
            if (begins[i] == pos && ends[i] > pos) {
                covered += ends[i] - begins[i];
                pos = ends[i];
                found = true;
                break;
            }
        CHECKF(found, "a hole in the data section at %llu", (unsigned long long)pos);
        if (!found)
            break;
    }
    CHECK(covered == data_size);
    free(begins);
    free(ends);
    cJSON_Delete(root);
    free(text);
    free(file);
}

static void write_specs(const char *path, const spec *specs, size_t n, uint8_t **datas)
{
    vd_model_writer *w;
    CHECK_OK(vd_model_writer_open(path, VD_FORMAT_NONE, &w));
    CHECK_OK(vd_model_writer_meta_string(w, "format", "pt"));
    CHECK_OK(vd_model_writer_meta_u32(w, "steps", 42));
    CHECK_OK(vd_model_writer_meta_f32(w, "shift", 5.0f));
    for (size_t i = 0; i < n; i++)
        CHECK_OK(vd_model_writer_declare(w, specs[i].name, specs[i].dtype, specs[i].ndim, specs[i].shape));
    CHECK_OK(vd_model_writer_begin(w));
    for (size_t i = 0; i < n; i++) {
        size_t nb = spec_bytes(&specs[i]);
        /* Several calls per tensor: the writer must stitch them. */
        size_t half = nb / 2;
        CHECK_OK(vd_model_writer_write(w, datas[i], half));
        CHECK_OK(vd_model_writer_write(w, datas[i] + half, nb - half));
    }
    CHECK_OK(vd_model_writer_finish(w));
}

static void check_read(const char *path, const spec *specs, size_t n, uint8_t **datas, const char *layout)
{
    vd_weights *w = NULL;
    CHECK_OK(vd_weights_open(path, &w));
    if (!w)
        return;
    CHECK(vd_weights_format(w) == VD_FORMAT_SAFETENSORS);
    CHECK(strcmp(vd_weights_path(w), path) == 0);
    CHECK(vd_weights_count(w) == n);
    CHECK(strcmp(vd_weights_quant_layout(w), layout) == 0);
    CHECK(vd_weights_gguf(w) == NULL);
    struct stat st;
    CHECK(stat(path, &st) == 0 && vd_weights_file_size(w) == (uint64_t)st.st_size);
    for (size_t i = 0; i < n; i++) {
        const vd_weight *x = vd_weights_find(w, specs[i].name);
        CHECKF(x != NULL, "%s not found", specs[i].name);
        if (!x)
            continue;
        CHECK(strcmp(x->name, specs[i].name) == 0);
        CHECK(x->tensor.dtype == specs[i].dtype);
        CHECK(x->tensor.ndim == specs[i].ndim);
        for (int d = 0; d < specs[i].ndim; d++)
            CHECK(x->tensor.shape[d] == specs[i].shape[d]);
        CHECK(x->nbytes == spec_bytes(&specs[i]));
        CHECK(x->tensor.scale == 1.0f);
        CHECK(x->tensor.name && strcmp(x->tensor.name, specs[i].name) == 0);
        CHECKF(x->nbytes == 0 || memcmp(x->tensor.data, datas[i], x->nbytes) == 0, "%s: data differs", specs[i].name);
        int es = vd_dtype_info(specs[i].dtype)->block_bytes;
        CHECKF((uintptr_t)x->tensor.data % (uintptr_t)es == 0, "%s: data not aligned", specs[i].name);
        CHECK(x->offset + x->nbytes <= vd_weights_file_size(w));
    }
    CHECK(vd_weights_find(w, "no.such.tensor") == NULL);
    CHECK(vd_weights_at(w, n) == NULL);
    CHECK(vd_weights_meta_string(w, "format") && strcmp(vd_weights_meta_string(w, "format"), "pt") == 0);
    CHECK(vd_weights_meta_string(w, "steps") && strcmp(vd_weights_meta_string(w, "steps"), "42") == 0);
    CHECK(vd_weights_meta_string(w, "shift") && strcmp(vd_weights_meta_string(w, "shift"), "5") == 0);
    CHECK(vd_weights_meta_string(w, "absent") == NULL);
    CHECK(vd_weights_meta_count(w) == 3);
    vd_weights_close(w);
}

static void test_roundtrip_all_dtypes(void)
{
    /* Declared smallest element first, so the writer has to reorder to keep
     * every tensor aligned. */
    const spec specs[] = {
        {"u8", VD_U8, 1, {7}},
        {"f32", VD_F32, 2, {3, 5}},
        {"bool", VD_BOOL, 2, {2, 3}},
        {"f16", VD_F16, 3, {2, 3, 5}},
        {"i8", VD_I8, 1, {9}},
        {"f64", VD_F64, 2, {3, 3}},
        {"bf16", VD_BF16, 1, {11}},
        {"i64", VD_I64, 1, {5}},
        {"f8e4m3", VD_F8_E4M3, 2, {4, 3}},
        {"i32", VD_I32, 2, {2, 2}},
        {"f8e5m2", VD_F8_E5M2, 1, {13}},
        {"i16", VD_I16, 1, {3}},
        {"scalar", VD_F32, 0, {0}},
        {"five_d", VD_BF16, 5, {2, 1, 3, 2, 2}},
        {"empty", VD_F16, 2, {0, 4}},
        {"model.diffusion_model.prefixed", VD_F32, 1, {2}},
    };
    size_t n = sizeof specs / sizeof specs[0];
    uint8_t *datas[sizeof specs / sizeof specs[0]];
    for (size_t i = 0; i < n; i++)
        datas[i] = random_bytes(100 + i, spec_bytes(&specs[i]));
    const char *path = scratch_path("all.safetensors");
    write_specs(path, specs, n, datas);
    check_written_header(path, specs, n);
    /* The prefix is stripped from the canonical name only. */
    spec canon[sizeof specs / sizeof specs[0]];
    memcpy(canon, specs, sizeof specs);
    canon[n - 1].name = "prefixed";
    check_read(path, canon, n, datas, "fp8 (unscaled casts)");
    vd_weights *w = NULL;
    CHECK_OK(vd_weights_open(path, &w));
    if (w) {
        const vd_weight *p = vd_weights_find(w, "prefixed");
        CHECK(p && strcmp(p->file_name, "model.diffusion_model.prefixed") == 0);
        CHECK(vd_weights_find(w, "model.diffusion_model.prefixed") == NULL);
        vd_weights_close(w);
    }
    for (size_t i = 0; i < n; i++)
        free(datas[i]);
}

static void test_declaration_order_kept(void)
{
    const spec specs[] = {
        {"blocks.0.a", VD_BF16, 2, {4, 6}},
        {"blocks.0.b", VD_BF16, 1, {6}},
        {"blocks.1.a", VD_F32, 1, {3}},
    };
    uint8_t *datas[3];
    for (size_t i = 0; i < 3; i++)
        datas[i] = random_bytes(7 + i, spec_bytes(&specs[i]));
    const char *path = scratch_path("order.safetensors");
    write_specs(path, specs, 3, datas);
    check_written_header(path, specs, 3);
    check_read(path, specs, 3, datas, "plain");
    vd_weights *w = NULL;
    CHECK_OK(vd_weights_open(path, &w));
    if (w) {
        /* bf16, bf16, f32: already aligned, so file order = declaration order. */
        for (size_t i = 0; i < 3; i++)
            CHECK(strcmp(vd_weights_at(w, i)->name, specs[i].name) == 0);
        CHECK(vd_weights_at(w, 0)->offset < vd_weights_at(w, 1)->offset);
        CHECK(vd_weights_at(w, 1)->offset < vd_weights_at(w, 2)->offset);
        vd_weights_close(w);
    }
    for (size_t i = 0; i < 3; i++)
        free(datas[i]);
}

/* A file written by hand in another writer's style (no padding, extra
 * fields, whitespace) reads too. */
static void test_foreign_file(void)
{
    float a[6];
    for (int i = 0; i < 6; i++)
        a[i] = (float)i * 1.5f - 2.0f;
    uint16_t b[2] = {0x3c00, 0xc000};
    uint8_t data[28];
    memcpy(data, a, 24);
    memcpy(data + 24, b, 4);
    const char *path = scratch_path("foreign.safetensors");
    write_safetensors_raw(path,
                          " {\"b\": {\"dtype\": \"F16\", \"shape\": [2], \"data_offsets\": [24, 28], \"extra\": 1},\n"
                          "  \"a\":{\"shape\":[2,3],\"dtype\":\"F32\",\"data_offsets\":[0,24]},"
                          "\"__metadata__\":{\"k\":\"v\u00e9\"}}  ",
                          data, sizeof data);
    vd_weights *w = NULL;
    CHECK_OK(vd_weights_open(path, &w));
    if (!w)
        return;
    CHECK(vd_weights_count(w) == 2);
    CHECK(strcmp(vd_weights_at(w, 0)->name, "b") == 0); /* header order */
    const vd_weight *x = vd_weights_find(w, "a");
    CHECK(x && x->tensor.ndim == 2 && x->tensor.shape[0] == 2 && x->tensor.shape[1] == 3);
    float got[6];
    CHECK_OK(vd_dtype_to_f32(x->tensor.dtype, x->tensor.data, got, 6));
    CHECK(memcmp(got, a, sizeof a) == 0);
    const vd_weight *y = vd_weights_find(w, "b");
    CHECK_OK(vd_dtype_to_f32(y->tensor.dtype, y->tensor.data, got, 2));
    CHECK(got[0] == 1.0f && got[1] == -2.0f);
    CHECK(vd_weights_meta_count(w) == 1);
    CHECK(strcmp(vd_weights_meta_at(w, 0)->key, "k") == 0);
    CHECK(strcmp(vd_weights_meta_at(w, 0)->value, "v\xc3\xa9") == 0);
    vd_weights_close(w);
}

/* ---- corrupt files --------------------------------------------------------------- */

static uint8_t corrupt_data[4096];

/* A file whose header is `header` and data section `size` bytes. */
static const char *st_file(const char *name, const char *header, size_t size)
{
    const char *path = scratch_path(name);
    write_safetensors_raw(path, header, corrupt_data, size);
    return path;
}

#define T(x) "{\"t\":" x "}"

static void test_corrupt_headers(void)
{
    uint8_t *r = random_bytes(5, sizeof corrupt_data);
    memcpy(corrupt_data, r, sizeof corrupt_data);
    free(r);
    const char *ok = st_file("ok.safetensors", T("{\"dtype\":\"F32\",\"shape\":[2,3],\"data_offsets\":[0,24]}"), 24);
    vd_weights *w = NULL;
    CHECK_OK(vd_weights_open(ok, &w));
    vd_weights_close(w);

    struct {
        const char *label, *header;
        size_t data;
        vd_status status;
    } cases[] = {
        {"header is not valid JSON", "{\"t\":{\"dtype\":\"F32\",", 24, VD_ERR_FORMAT},
        {"header is a JSON array", "[1, 2, 3]", 0, VD_ERR_FORMAT},
        {"trailing bytes after the JSON", T("{\"dtype\":\"F32\",\"shape\":[2,3],\"data_offsets\":[0,24]}") " x", 24,
         VD_ERR_FORMAT},
        {"name is not UTF-8", "{\"t\xff\":{\"dtype\":\"F32\",\"shape\":[2,3],\"data_offsets\":[0,24]}}", 24,
         VD_ERR_FORMAT},
        {"overlong UTF-8", "{\"t\xc0\xaf\":{\"dtype\":\"F32\",\"shape\":[2,3],\"data_offsets\":[0,24]}}", 24,
         VD_ERR_FORMAT},
        {"\\u0000 in a name", "{\"t\\u0000x\":{\"dtype\":\"F32\",\"shape\":[2,3],\"data_offsets\":[0,24]}}", 24,
         VD_ERR_FORMAT},
        {"control byte in the header", "{\"t\":{\"dtype\":\"F32\",\x01\"shape\":[2,3],\"data_offsets\":[0,24]}}", 24,
         VD_ERR_FORMAT},
        {"dtype unknown (XYZ)", T("{\"dtype\":\"XYZ\",\"shape\":[2,3],\"data_offsets\":[0,24]}"), 24,
         VD_ERR_UNSUPPORTED},
        {"dtype U16 (unsupported)", T("{\"dtype\":\"U16\",\"shape\":[2,3],\"data_offsets\":[0,12]}"), 12,
         VD_ERR_UNSUPPORTED},
        {"dtype F8_E8M0 (unsupported)", T("{\"dtype\":\"F8_E8M0\",\"shape\":[2,3],\"data_offsets\":[0,6]}"), 6,
         VD_ERR_UNSUPPORTED},
        {"dtype F4 (unsupported)", T("{\"dtype\":\"F4\",\"shape\":[2,4],\"data_offsets\":[0,4]}"), 4,
         VD_ERR_UNSUPPORTED},
        {"dtype not a string", T("{\"dtype\":4,\"shape\":[2,3],\"data_offsets\":[0,24]}"), 24, VD_ERR_FORMAT},
        {"dtype missing", T("{\"shape\":[2,3],\"data_offsets\":[0,24]}"), 24, VD_ERR_FORMAT},
        {"shape missing", T("{\"dtype\":\"F32\",\"data_offsets\":[0,24]}"), 24, VD_ERR_FORMAT},
        {"data_offsets missing", T("{\"dtype\":\"F32\",\"shape\":[2,3]}"), 24, VD_ERR_FORMAT},
        {"tensor entry not an object", T("[0, 24]"), 24, VD_ERR_FORMAT},
        {"field given twice", T("{\"dtype\":\"F32\",\"dtype\":\"F16\",\"shape\":[2,3],\"data_offsets\":[0,24]}"), 24,
         VD_ERR_FORMAT},
        {"shape negative", T("{\"dtype\":\"F32\",\"shape\":[-2,3],\"data_offsets\":[0,24]}"), 24, VD_ERR_FORMAT},
        {"shape non-integer", T("{\"dtype\":\"F32\",\"shape\":[1.5,4],\"data_offsets\":[0,24]}"), 24, VD_ERR_FORMAT},
        {"shape element a string", T("{\"dtype\":\"F32\",\"shape\":[\"2\",3],\"data_offsets\":[0,24]}"), 24,
         VD_ERR_FORMAT},
        {"shape not an array", T("{\"dtype\":\"F32\",\"shape\":6,\"data_offsets\":[0,24]}"), 24, VD_ERR_FORMAT},
        {"shape of 6 dims", T("{\"dtype\":\"F32\",\"shape\":[1,1,2,1,3,1],\"data_offsets\":[0,24]}"), 24,
         VD_ERR_UNSUPPORTED},
        {"shape product overflows", T("{\"dtype\":\"F32\",\"shape\":[4294967296,4294967296],\"data_offsets\":[0,24]}"),
         24, VD_ERR_FORMAT},
        {"shape dim beyond 2^53", T("{\"dtype\":\"U8\",\"shape\":[18014398509481984],\"data_offsets\":[0,24]}"), 24,
         VD_ERR_FORMAT},
        {"byte size overflows", T("{\"dtype\":\"F64\",\"shape\":[2147483648,2147483648],\"data_offsets\":[0,24]}"), 24,
         VD_ERR_FORMAT},
        {"data_offsets past the data section", T("{\"dtype\":\"F32\",\"shape\":[2,3],\"data_offsets\":[8,32]}"), 24,
         VD_ERR_FORMAT},
        {"data_offsets reversed", T("{\"dtype\":\"F32\",\"shape\":[2,3],\"data_offsets\":[24,0]}"), 24, VD_ERR_FORMAT},
        {"data_offsets size mismatch", T("{\"dtype\":\"F32\",\"shape\":[2,3],\"data_offsets\":[0,20]}"), 24,
         VD_ERR_FORMAT},
        {"data_offsets not a pair", T("{\"dtype\":\"F32\",\"shape\":[2,3],\"data_offsets\":[0]}"), 24, VD_ERR_FORMAT},
        {"data_offsets negative", T("{\"dtype\":\"F32\",\"shape\":[2,3],\"data_offsets\":[-24,0]}"), 24, VD_ERR_FORMAT},
        {"data_offsets overlapping",
         "{\"a\":{\"dtype\":\"F32\",\"shape\":[2,3],\"data_offsets\":[0,24]},"
         "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[16,24]}}",
         24, VD_ERR_FORMAT},
        {"duplicate tensor names",
         "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
         "\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8,16]}}",
         16, VD_ERR_FORMAT},
        {"empty tensor name", "{\"\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", 8, VD_ERR_FORMAT},
        {"metadata value not a string",
         "{\"__metadata__\":{\"k\":5},\"t\":{\"dtype\":\"F32\",\"shape\":[2,3],\"data_offsets\":[0,24]}}", 24,
         VD_ERR_FORMAT},
        {"metadata not an object",
         "{\"__metadata__\":\"x\",\"t\":{\"dtype\":\"F32\",\"shape\":[2,3],\"data_offsets\":[0,24]}}", 24,
         VD_ERR_FORMAT},
        {"metadata given twice", "{\"__metadata__\":{},\"__metadata__\":{}}", 0, VD_ERR_FORMAT},
        {"duplicate metadata keys", "{\"__metadata__\":{\"k\":\"a\",\"k\":\"b\"}}", 0, VD_ERR_FORMAT},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char name[64];
        snprintf(name, sizeof name, "corrupt%zu.safetensors", i);
        const char *path = st_file(name, cases[i].header, cases[i].data);
        EXPECT_REFUSED(path, cases[i].status, cases[i].label);
    }
}

/* Header-length field damage, on an otherwise valid file. */
static void test_corrupt_lengths(void)
{
    const char *header = T("{\"dtype\":\"F32\",\"shape\":[2,3],\"data_offsets\":[0,24]}");
    const char *path = st_file("len.safetensors", header, 24);
    size_t size;
    uint8_t *file = read_file(path, &size);
    struct {
        const char *label;
        uint64_t n;
    } cases[] = {
        {"header length zero", 0},
        {"header length past the end of the file", (uint64_t)size - 7},
        {"header length over 100 MB", 100000001ull},
        {"header length 2^63", 1ull << 63},
        {"header length 2^64-1", UINT64_MAX},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        for (int k = 0; k < 8; k++)
            file[k] = (uint8_t)(cases[i].n >> (8 * k));
        const char *p = scratch_path("len-bad.safetensors");
        write_file(p, file, size);
        EXPECT_REFUSED(p, VD_ERR_FORMAT, cases[i].label);
    }
    free(file);
}

/* Every prefix of a valid written file is refused as a format error. */
static void test_truncated_everywhere(void)
{
    const spec specs[] = {{"a", VD_F32, 2, {2, 3}}, {"b", VD_U8, 1, {5}}};
    uint8_t *datas[2] = {random_bytes(1, 24), random_bytes(2, 5)};
    const char *path = scratch_path("trunc.safetensors");
    write_specs(path, specs, 2, datas);
    size_t size;
    uint8_t *file = read_file(path, &size);
    const char *p = scratch_path("trunc-cut.safetensors");
    write_file(p, file, size);
    vd_weights *w = NULL;
    CHECK_OK(vd_weights_open(p, &w));
    vd_weights_close(w);
    /* Shrink one byte at a time (no rewriting). */
    int before = test_failures;
    for (size_t cut = size; cut-- > 0;) {
        CHECK(truncate(p, (off_t)cut) == 0);
        EXPECT_REFUSED(p, VD_ERR_FORMAT, NULL);
    }
    if (test_failures == before) {
        printf("refused [format error] truncated at every one of %zu byte offsets\n", size);
        refused_cases++;
    }
    /* Damage each header byte in turn. */
    uint64_t hn = 0;
    for (int i = 7; i >= 0; i--)
        hn = (hn << 8) | file[i];
    int tried = mutate_every_byte(file, size, 8 + (size_t)hn, scratch_path("mutated.safetensors"));
    printf("%d single-byte mutations of the header read or refused cleanly\n", tried);
    free(file);
    free(datas[0]);
    free(datas[1]);
}

/* Files that are not models at all. */
static void test_not_model_files(void)
{
    const char *text = scratch_path("notes.txt");
    const char *msg = "These are not the weights you are looking for.\n";
    write_file(text, msg, strlen(msg));
    EXPECT_REFUSED(text, VD_ERR_FORMAT, "a text file");
    const char *empty = scratch_path("empty.safetensors");
    write_file(empty, "", 0);
    EXPECT_REFUSED(empty, VD_ERR_FORMAT, "an empty file");
    const char *tiny = scratch_path("tiny.bin");
    write_file(tiny, "abc", 3);
    EXPECT_REFUSED(tiny, VD_ERR_FORMAT, "a 3-byte file");
    const char *zeros = scratch_path("zeros.bin");
    uint8_t z[64] = {0};
    write_file(zeros, z, sizeof z);
    EXPECT_REFUSED(zeros, VD_ERR_FORMAT, "a file of zeros");
    EXPECT_REFUSED(scratch_dir, VD_ERR_IO, "a directory");
    EXPECT_REFUSED(scratch_path("missing.safetensors"), VD_ERR_NOT_FOUND, "a missing path");
    vd_weights *w = NULL;
    CHECK_FAILS(vd_weights_open("", &w), VD_ERR_INVALID_ARGUMENT);
    CHECK(w == NULL);
}

/* An empty header object is a valid file with no tensors. */
static void test_empty_model(void)
{
    const char *path = st_file("none.safetensors", "{}", 0);
    vd_weights *w = NULL;
    CHECK_OK(vd_weights_open(path, &w));
    if (w) {
        CHECK(vd_weights_count(w) == 0);
        CHECK(vd_weights_meta_count(w) == 0);
        vd_weights_close(w);
    }
}

int main(void)
{
    scratch_init("st");
    test_roundtrip_all_dtypes();
    test_declaration_order_kept();
    test_foreign_file();
    test_empty_model();
    test_corrupt_headers();
    test_corrupt_lengths();
    test_truncated_everywhere();
    test_not_model_files();
    printf("%d refused cases\n", refused_cases);
    scratch_cleanup();
    return test_finish("safetensors");
}

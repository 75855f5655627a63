/* The model writer's contract: PATH.part until finish, nothing left behind
 * on failure or abort, misuse and I/O errors reported with the path; and
 * in-memory weight sets. */
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>

#include "io/gguf.h"
#include "io/model_writer.h"
#include "io_test_util.h"

static bool exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0;
}

static const char *part_of(const char *path)
{
    static char buf[4300];
    snprintf(buf, sizeof buf, "%s.part", path);
    return buf;
}

/* A writer with one f32 [4] tensor declared and the header written. */
static vd_model_writer *begun(const char *path, vd_file_format format)
{
    vd_model_writer *w = NULL;
    const int64_t shape[1] = {4};
    CHECK_OK(vd_model_writer_open(path, format, &w));
    CHECK_OK(vd_model_writer_declare(w, "t", VD_F32, 1, shape));
    CHECK_OK(vd_model_writer_begin(w));
    return w;
}

static void test_part_file_and_rename(void)
{
    const float v[4] = {1, 2, 3, 4};
    for (int f = 0; f < 2; f++) {
        const char *path = scratch_path(f ? "ok.gguf" : "ok.safetensors");
        vd_model_writer *w = begun(path, VD_FORMAT_NONE);
        CHECK(exists(part_of(path)) && !exists(path));
        CHECK_OK(vd_model_writer_write(w, v, sizeof v));
        CHECK_OK(vd_model_writer_finish(w));
        CHECK(exists(path) && !exists(part_of(path)));
        vd_weights *r = NULL;
        CHECK_OK(vd_weights_open(path, &r));
        CHECK(r && vd_weights_format(r) == (f ? VD_FORMAT_GGUF : VD_FORMAT_SAFETENSORS));
        vd_weights_close(r);
    }
}

static void test_abort(void)
{
    const char *path = scratch_path("aborted.safetensors");
    vd_model_writer *w = begun(path, VD_FORMAT_SAFETENSORS);
    const float v[2] = {1, 2};
    CHECK_OK(vd_model_writer_write(w, v, sizeof v));
    vd_model_writer_abort(w);
    CHECK(!exists(path) && !exists(part_of(path)));
    vd_model_writer_abort(NULL);
}

static void test_wrong_byte_counts(void)
{
    const float v[8] = {0};
    /* Too many bytes for the tensor. */
    const char *path = scratch_path("long.safetensors");
    vd_model_writer *w = begun(path, VD_FORMAT_SAFETENSORS);
    CHECK_FAILS(vd_model_writer_write(w, v, 20), VD_ERR_INVALID_ARGUMENT);
    CHECK(strstr(vd_last_error(), path) && strstr(vd_last_error(), "'t'"));
    CHECK_FAILS(vd_model_writer_write(w, v, 4), VD_ERR_INVALID_ARGUMENT); /* the writer stays failed */
    CHECK_FAILS(vd_model_writer_finish(w), VD_ERR_INVALID_ARGUMENT);
    CHECK(!exists(path) && !exists(part_of(path)));

    /* Too few. */
    path = scratch_path("short.gguf");
    w = begun(path, VD_FORMAT_GGUF);
    CHECK_OK(vd_model_writer_write(w, v, 12));
    CHECK_FAILS(vd_model_writer_finish(w), VD_ERR_INVALID_ARGUMENT);
    CHECK(strstr(vd_last_error(), path) && strstr(vd_last_error(), "12 of its 16"));
    CHECK(!exists(path) && !exists(part_of(path)));

    /* Bytes after the last tensor. */
    path = scratch_path("extra.safetensors");
    w = begun(path, VD_FORMAT_SAFETENSORS);
    CHECK_OK(vd_model_writer_write(w, v, 16));
    CHECK_FAILS(vd_model_writer_write(w, v, 1), VD_ERR_INVALID_ARGUMENT);
    vd_model_writer_abort(w);
    CHECK(!exists(part_of(path)));

    /* Data before begin, declarations and metadata after it. */
    path = scratch_path("order.safetensors");
    const int64_t shape[1] = {4};
    CHECK_OK(vd_model_writer_open(path, VD_FORMAT_SAFETENSORS, &w));
    CHECK_OK(vd_model_writer_declare(w, "t", VD_F32, 1, shape));
    CHECK_FAILS(vd_model_writer_write(w, v, 16), VD_ERR_INVALID_ARGUMENT);
    CHECK_FAILS(vd_model_writer_declare(w, "t", VD_F32, 1, shape), VD_ERR_INVALID_ARGUMENT);
    CHECK_FAILS(vd_model_writer_declare(w, "__metadata__", VD_F32, 1, shape), VD_ERR_INVALID_ARGUMENT);
    CHECK_OK(vd_model_writer_meta_string(w, "k", "v"));
    CHECK_FAILS(vd_model_writer_meta_string(w, "k", "again"), VD_ERR_INVALID_ARGUMENT);
    CHECK_OK(vd_model_writer_begin(w));
    CHECK_FAILS(vd_model_writer_declare(w, "u", VD_F32, 1, shape), VD_ERR_INVALID_ARGUMENT);
    CHECK_FAILS(vd_model_writer_meta_u32(w, "n", 1), VD_ERR_INVALID_ARGUMENT);
    CHECK_FAILS(vd_model_writer_begin(w), VD_ERR_INVALID_ARGUMENT);
    vd_model_writer_abort(w);
}

static void test_format_limits(void)
{
    vd_model_writer *w;
    const int64_t q[2] = {2, 256}, bad_q[2] = {2, 48}, neg[1] = {-1}, six[6] = {1, 1, 1, 1, 1, 1};
    CHECK_OK(vd_model_writer_open(scratch_path("limits.safetensors"), VD_FORMAT_NONE, &w));
    CHECK_FAILS(vd_model_writer_declare(w, "q", VD_Q4_K, 2, q), VD_ERR_UNSUPPORTED);
    const float f[1] = {1};
    CHECK_FAILS(vd_model_writer_meta_f32_array(w, "a", f, 1), VD_ERR_UNSUPPORTED);
    CHECK_FAILS(vd_model_writer_declare(w, "n", VD_F32, 1, neg), VD_ERR_SHAPE);
    CHECK_FAILS(vd_model_writer_declare(w, "six", VD_F32, 6, six), VD_ERR_SHAPE);
    vd_model_writer_abort(w);

    CHECK_OK(vd_model_writer_open(scratch_path("limits.gguf"), VD_FORMAT_NONE, &w));
    CHECK_FAILS(vd_model_writer_declare(w, "u8", VD_U8, 1, q), VD_ERR_UNSUPPORTED);
    CHECK_FAILS(vd_model_writer_declare(w, "fp8", VD_F8_E4M3, 1, q), VD_ERR_UNSUPPORTED);
    CHECK_FAILS(vd_model_writer_declare(w, "q8", VD_Q8_0, 2, bad_q), VD_ERR_SHAPE);
    CHECK_FAILS(vd_model_writer_meta_u32(w, "general.alignment", 48), VD_ERR_INVALID_ARGUMENT);
    CHECK_FAILS(vd_model_writer_meta_string(w, "general.alignment", "32"), VD_ERR_INVALID_ARGUMENT);
    CHECK_FAILS(vd_model_writer_meta_string(w, "", "x"), VD_ERR_INVALID_ARGUMENT);
    vd_model_writer_abort(w);

    CHECK_FAILS(vd_model_writer_open(scratch_path("no/such/dir/x.gguf"), VD_FORMAT_NONE, &w), VD_ERR_NOT_FOUND);
    CHECK(strstr(vd_last_error(), "no/such/dir/x.gguf.part") != NULL);
    CHECK_FAILS(vd_model_writer_open("", VD_FORMAT_NONE, &w), VD_ERR_INVALID_ARGUMENT);
}

/* A custom GGUF alignment is honoured by writer and reader. */
static void test_gguf_alignment(void)
{
    const char *path = scratch_path("align.gguf");
    vd_model_writer *w;
    const int64_t a[1] = {3}, b[1] = {5};
    CHECK_OK(vd_model_writer_open(path, VD_FORMAT_NONE, &w));
    CHECK_OK(vd_model_writer_meta_u32(w, "general.alignment", 128));
    CHECK_OK(vd_model_writer_declare(w, "a", VD_F32, 1, a));
    CHECK_OK(vd_model_writer_declare(w, "e", VD_F32, 1, (const int64_t[]){0}));
    CHECK_OK(vd_model_writer_declare(w, "b", VD_F16, 1, b));
    CHECK_OK(vd_model_writer_begin(w));
    const float av[3] = {1, 2, 3};
    const uint16_t bv[5] = {1, 2, 3, 4, 5};
    CHECK_OK(vd_model_writer_write(w, av, sizeof av));
    CHECK_OK(vd_model_writer_write(w, bv, sizeof bv)); /* the empty tensor is skipped */
    CHECK_OK(vd_model_writer_finish(w));
    vd_weights *r = NULL;
    CHECK_OK(vd_weights_open(path, &r));
    if (!r)
        return;
    CHECK(vd_weights_gguf(r)->alignment == 128);
    const vd_weight *x = vd_weights_find(r, "b");
    CHECK(x && x->offset % 128 == 0 && memcmp(x->tensor.data, bv, sizeof bv) == 0);
    CHECK(vd_weights_find(r, "e") && vd_weights_find(r, "e")->nbytes == 0);
    vd_weights_close(r);
}

/* A full disk (here: the file-size limit) fails with the path, leaves no
 * part file, and does not touch an existing file of the same name. */
static void test_disk_full(void)
{
    const char *path = scratch_path("full.safetensors");
    const float small[4] = {9, 8, 7, 6};
    vd_model_writer *w = begun(path, VD_FORMAT_SAFETENSORS);
    CHECK_OK(vd_model_writer_write(w, small, sizeof small));
    CHECK_OK(vd_model_writer_finish(w));
    size_t before_size;
    uint8_t *before = read_file(path, &before_size);

    struct rlimit old, lim;
    getrlimit(RLIMIT_FSIZE, &old);
    lim = old;
    lim.rlim_cur = 64 * 1024;
    void (*prev)(int) = signal(SIGXFSZ, SIG_IGN);
    if (setrlimit(RLIMIT_FSIZE, &lim) != 0) {
        printf("setrlimit failed; disk-full case skipped\n");
        signal(SIGXFSZ, prev);
        free(before);
        return;
    }
    const int64_t shape[1] = {1 << 18}; /* 1 MiB */
    float *big = random_floats(9, 1 << 18, -1, 1);
    CHECK_OK(vd_model_writer_open(path, VD_FORMAT_SAFETENSORS, &w));
    CHECK_OK(vd_model_writer_declare(w, "big", VD_F32, 1, shape));
    CHECK_OK(vd_model_writer_begin(w));
    CHECK_FAILS(vd_model_writer_write(w, big, (size_t)4 << 18), VD_ERR_IO);
    CHECK(strstr(vd_last_error(), path) != NULL);
    printf("disk full: %s\n", vd_last_error());
    CHECK_FAILS(vd_model_writer_finish(w), VD_ERR_IO);
    setrlimit(RLIMIT_FSIZE, &old);
    signal(SIGXFSZ, prev);
    CHECK(!exists(part_of(path)));
    size_t after_size;
    uint8_t *after = read_file(path, &after_size);
    CHECK(after && after_size == before_size && memcmp(after, before, before_size) == 0);
    free(before);
    free(after);
    free(big);
}

/* ---- in-memory sets ------------------------------------------------------------------ */

static void test_memory_sets(void)
{
    vd_weights *w = NULL;
    CHECK_OK(vd_weights_new(&w));
    if (!w)
        return;
    CHECK(vd_weights_format(w) == VD_FORMAT_NONE);
    CHECK(strcmp(vd_weights_path(w), "") == 0);
    CHECK(vd_weights_file_size(w) == 0);
    CHECK(strcmp(vd_weights_quant_layout(w), "plain") == 0);
    CHECK(vd_weights_gguf(w) == NULL);
    /* A full-size shape with no data: detection only. */
    const int64_t big[2] = {13824, 5120};
    CHECK_OK(vd_weights_add(w, "blocks.0.ffn.0.weight", VD_BF16, 2, big, NULL));
    float data[6] = {1, 2, 3, 4, 5, 6};
    const int64_t small[2] = {2, 3};
    CHECK_OK(vd_weights_add(w, "head.head.bias", VD_F32, 2, small, data));
    /* Many more, so the index grows and stays sorted. */
    for (int i = 0; i < 200; i++) {
        char name[64];
        snprintf(name, sizeof name, "blocks.%d.modulation", 199 - i);
        const int64_t m[3] = {1, 6, 8};
        CHECK_OK(vd_weights_add(w, name, VD_F32, 3, m, NULL));
    }
    CHECK(vd_weights_count(w) == 202);
    const vd_weight *x = vd_weights_find(w, "blocks.0.ffn.0.weight");
    CHECK(x && x->tensor.data == NULL && x->nbytes == (size_t)13824 * 5120 * 2 && x->tensor.shape[0] == 13824);
    x = vd_weights_find(w, "head.head.bias");
    CHECK(x && x->tensor.data == data && x->tensor.scale == 1.0f && strcmp(x->tensor.name, "head.head.bias") == 0);
    for (int i = 0; i < 200; i++) {
        char name[64];
        snprintf(name, sizeof name, "blocks.%d.modulation", i);
        x = vd_weights_find(w, name);
        CHECKF(x && strcmp(x->name, name) == 0 && x->tensor.ndim == 3, "%s", name);
    }
    CHECK(strcmp(vd_weights_at(w, 0)->name, "blocks.0.ffn.0.weight") == 0); /* insertion order */
    CHECK_FAILS(vd_weights_add(w, "head.head.bias", VD_F32, 2, small, data), VD_ERR_INVALID_ARGUMENT);
    const int64_t neg[1] = {-3};
    CHECK_FAILS(vd_weights_add(w, "neg", VD_F32, 1, neg, NULL), VD_ERR_SHAPE);
    const int64_t q[1] = {100};
    CHECK_FAILS(vd_weights_add(w, "q", VD_Q4_K, 1, q, NULL), VD_ERR_SHAPE);
    CHECK_FAILS(vd_weights_add(w, "", VD_F32, 1, q, NULL), VD_ERR_INVALID_ARGUMENT);
    CHECK(vd_weights_count(w) == 202);
    vd_weights_close(w);

    /* File-backed sets take no additions. */
    const char *path = scratch_path("fixed.safetensors");
    vd_model_writer *mw = begun(path, VD_FORMAT_SAFETENSORS);
    CHECK_OK(vd_model_writer_write(mw, data, 16));
    CHECK_OK(vd_model_writer_finish(mw));
    CHECK_OK(vd_weights_open(path, &w));
    if (w) {
        CHECK_FAILS(vd_weights_add(w, "x", VD_F32, 2, small, data), VD_ERR_INVALID_ARGUMENT);
        vd_weights_close(w);
    }
    vd_weights_close(NULL);
}

int main(void)
{
    scratch_init("writer");
    test_part_file_and_rename();
    test_abort();
    test_wrong_byte_counts();
    test_format_limits();
    test_gguf_alignment();
    test_disk_full();
    test_memory_sets();
    scratch_cleanup();
    return test_finish("model_writer");
}

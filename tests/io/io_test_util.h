/* Helpers shared by the io tests: a scratch directory, byte buffers to
 * build files by hand (so the readers are checked against files the
 * writer did not make), and the "this file must be refused" check. */
#ifndef VD_IO_TEST_UTIL_H
#define VD_IO_TEST_UTIL_H

#include <dirent.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "io/weights.h"
#include "test_util.h"

/* ---- scratch directory ---------------------------------------------------------- */

static char scratch_dir[4096];

static inline void scratch_init(const char *test)
{
    const char *base = getenv("TMPDIR");
    if (!base || !base[0])
        base = "/tmp";
    snprintf(scratch_dir, sizeof scratch_dir, "%s/vdiff-%s-XXXXXX", base, test);
    if (!mkdtemp(scratch_dir)) {
        perror("mkdtemp");
        exit(1);
    }
}

/* A path in the scratch directory (one of 8 rotating buffers). */
static inline const char *scratch_path(const char *name)
{
    static char bufs[8][4200];
    static int next;
    char *b = bufs[next++ % 8];
    snprintf(b, sizeof bufs[0], "%s/%s", scratch_dir, name);
    return b;
}

/* The scratch directory holds plain files only. */
static inline void scratch_cleanup(void)
{
    DIR *d = opendir(scratch_dir);
    if (d) {
        struct dirent *e;
        while ((e = readdir(d)) != NULL)
            if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0)
                remove(scratch_path(e->d_name));
        closedir(d);
    }
    rmdir(scratch_dir);
}

static inline void write_file(const char *path, const void *data, size_t size)
{
    FILE *f = fopen(path, "wb");
    if (!f || (size && fwrite(data, 1, size, f) != size) || fclose(f) != 0) {
        fprintf(stderr, "cannot write %s\n", path);
        exit(1);
    }
}

static inline uint8_t *read_file(const char *path, size_t *size)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *p = malloc((size_t)n + 1);
    if (!p || fread(p, 1, (size_t)n, f) != (size_t)n) {
        fclose(f);
        free(p);
        return NULL;
    }
    fclose(f);
    *size = (size_t)n;
    return p;
}

/* ---- byte buffers ---------------------------------------------------------------- */

typedef struct tbuf {
    uint8_t *data;
    size_t size, cap;
} tbuf;

static inline void tb_put(tbuf *b, const void *p, size_t n)
{
    if (b->size + n > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->size + n)
            cap *= 2;
        b->data = realloc(b->data, cap);
        if (!b->data) {
            fprintf(stderr, "out of memory\n");
            exit(1);
        }
        b->cap = cap;
    }
    if (n)
        memcpy(b->data + b->size, p, n);
    b->size += n;
}

static inline void tb_le(tbuf *b, uint64_t v, int n)
{
    uint8_t x[8];
    for (int i = 0; i < n; i++)
        x[i] = (uint8_t)(v >> (8 * i));
    tb_put(b, x, (size_t)n);
}

static inline void tb_u8(tbuf *b, uint8_t v) { tb_le(b, v, 1); }
static inline void tb_u32(tbuf *b, uint32_t v) { tb_le(b, v, 4); }
static inline void tb_u64(tbuf *b, uint64_t v) { tb_le(b, v, 8); }

static inline void tb_f32(tbuf *b, float f)
{
    uint32_t u;
    memcpy(&u, &f, 4);
    tb_u32(b, u);
}

static inline void tb_f64(tbuf *b, double d)
{
    uint64_t u;
    memcpy(&u, &d, 8);
    tb_u64(b, u);
}

/* A GGUF string: u64 length, bytes. */
static inline void tb_str(tbuf *b, const char *s)
{
    tb_u64(b, strlen(s));
    tb_put(b, s, strlen(s));
}

static inline void tb_pad(tbuf *b, size_t align)
{
    while (b->size % align)
        tb_u8(b, 0);
}

static inline void tb_free(tbuf *b)
{
    free(b->data);
    memset(b, 0, sizeof *b);
}

/* A safetensors file from a header text and a data section. */
static inline void write_safetensors_raw(const char *path, const char *header, const void *data, size_t data_size)
{
    tbuf b = {0};
    tb_u64(&b, strlen(header));
    tb_put(&b, header, strlen(header));
    tb_put(&b, data, data_size);
    write_file(path, b.data, b.size);
    tb_free(&b);
}

/* ---- refusals --------------------------------------------------------------------- */

static int refused_cases;

/* Opening `path` must fail with `status` and a message that names the
 * file.  `label` names the corruption (printed for the report). */
#define EXPECT_REFUSED(path, status, label) expect_refused_at(__FILE__, __LINE__, path, status, label)

static inline void expect_refused_at(const char *file, int line, const char *path, vd_status status, const char *label)
{
    vd_weights *w = NULL;
    vd_clear_error();
    vd_status s = vd_weights_open(path, &w);
    const char *msg = vd_last_error();
    if (s != status || !msg[0] || !strstr(msg, path)) {
        fprintf(stderr, "%s:%d: corrupt case '%s': expected %s naming the file, got %s: \"%s\"\n", file, line,
                label ? label : path,
                vd_status_name(status), vd_status_name(s), msg);
        test_failures++;
    } else if (label) {
        printf("refused [%s] %s: %s\n", vd_status_name(s), label, msg);
        refused_cases++;
    }
    if (w)
        vd_weights_close(w);
}

/* Overwrite each byte of `file` in [0, limit) with several values and open
 * the result: whatever it now says, the reader must either accept it or
 * refuse it with a message naming the file (and, under the sanitizers,
 * never read out of bounds).  Returns the number of files tried. */
static inline int mutate_every_byte(const uint8_t *file, size_t size, size_t limit, const char *path)
{
    /* One file, patched in place: rewriting it whole each time is slow on
     * some file systems. */
    write_file(path, file, size);
    FILE *f = fopen(path, "r+b");
    if (!f) {
        fprintf(stderr, "cannot open %s\n", path);
        exit(1);
    }
    int tried = 0;
    for (size_t i = 0; i < limit && i < size; i++) {
        const uint8_t values[] = {0x00, 0xff, (uint8_t)(file[i] + 1), (uint8_t)(file[i] - 1), '"', '9', '-', 0x80};
        for (size_t k = 0; k <= sizeof values; k++) {
            /* k == sizeof values puts the original byte back */
            uint8_t v = k < sizeof values ? values[k] : file[i];
            if (fseek(f, (long)i, SEEK_SET) != 0 || fwrite(&v, 1, 1, f) != 1 || fflush(f) != 0) {
                fprintf(stderr, "cannot patch %s\n", path);
                exit(1);
            }
            if (k == sizeof values)
                break;
            vd_weights *w = NULL;
            vd_clear_error();
            vd_status s = vd_weights_open(path, &w);
            if (s != VD_OK && (!vd_last_error()[0] || !strstr(vd_last_error(), path))) {
                fprintf(stderr, "byte %zu = 0x%02x: %s without a proper message: \"%s\"\n", i, v, vd_status_name(s),
                        vd_last_error());
                test_failures++;
            }
            if (w) {
                /* Touch every tensor's bytes: they must lie inside the mapping. */
                volatile uint8_t sink = 0;
                for (size_t t = 0; t < vd_weights_count(w); t++) {
                    const vd_weight *x = vd_weights_at(w, t);
                    for (size_t b = 0; b < x->nbytes; b++)
                        sink ^= ((const uint8_t *)x->tensor.data)[b];
                }
                (void)sink;
                vd_weights_close(w);
            }
            tried++;
        }
    }
    fclose(f);
    return tried;
}

#endif

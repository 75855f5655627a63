/* Helpers for the tokenizer tests: a growable byte buffer with a protobuf
 * wire writer (to build synthetic and broken ModelProtos), file reading
 * and writing, and hex decoding. */
#ifndef VD_TOKENIZER_TEST_UTIL_H
#define VD_TOKENIZER_TEST_UTIL_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef struct bytes {
    uint8_t *p;
    size_t len, cap;
} bytes;

static inline void bytes_put(bytes *b, const void *data, size_t n)
{
    if (b->len + n > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->len + n)
            cap *= 2;
        uint8_t *p = realloc(b->p, cap);
        if (!p) {
            fprintf(stderr, "out of memory\n");
            exit(1);
        }
        b->p = p;
        b->cap = cap;
    }
    if (n)
        memcpy(b->p + b->len, data, n);
    b->len += n;
}

static inline void bytes_free(bytes *b)
{
    free(b->p);
    memset(b, 0, sizeof *b);
}

static inline void pb_varint(bytes *b, uint64_t v)
{
    do {
        uint8_t c = (uint8_t)(v & 0x7F);
        v >>= 7;
        if (v)
            c |= 0x80;
        bytes_put(b, &c, 1);
    } while (v);
}

static inline void pb_key(bytes *b, uint32_t field, int wire_type)
{
    pb_varint(b, (uint64_t)field << 3 | (uint64_t)wire_type);
}

static inline void pb_uint(bytes *b, uint32_t field, uint64_t v)
{
    pb_key(b, field, 0);
    pb_varint(b, v);
}

static inline void pb_len(bytes *b, uint32_t field, const void *data, size_t n)
{
    pb_key(b, field, 2);
    pb_varint(b, n);
    bytes_put(b, data, n);
}

static inline void pb_str(bytes *b, uint32_t field, const char *s)
{
    pb_len(b, field, s, strlen(s));
}

static inline void pb_float(bytes *b, uint32_t field, float f)
{
    uint32_t u;
    memcpy(&u, &f, 4);
    uint8_t le[4] = {(uint8_t)u, (uint8_t)(u >> 8), (uint8_t)(u >> 16), (uint8_t)(u >> 24)};
    pb_key(b, field, 5);
    bytes_put(b, le, 4);
}

/* A ModelProto.SentencePiece message appended as field 1 of `model`. */
static inline void pb_piece(bytes *model, const char *piece, float score, int type)
{
    bytes p = {0};
    pb_str(&p, 1, piece);
    pb_float(&p, 2, score);
    if (type != 1)
        pb_uint(&p, 3, (uint64_t)type);
    pb_len(model, 1, p.p, p.len);
    bytes_free(&p);
}

static inline uint8_t *read_file(const char *path, size_t *size)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    bytes b = {0};
    uint8_t chunk[65536];
    size_t n;
    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0)
        bytes_put(&b, chunk, n);
    fclose(f);
    bytes_put(&b, "", 1); /* NUL for text files; not counted */
    *size = b.len - 1;
    return b.p;
}

static inline int write_file(const char *path, const void *data, size_t size)
{
    FILE *f = fopen(path, "wb");
    if (!f)
        return -1;
    size_t w = size ? fwrite(data, 1, size, f) : 0;
    return fclose(f) == 0 && w == size ? 0 : -1;
}

/* Decode a hex string into a malloc'ed buffer (NUL-terminated). */
static inline char *hex_decode(const char *hex, size_t *len)
{
    size_t n = strlen(hex) / 2;
    char *out = malloc(n + 1);
    if (!out) {
        fprintf(stderr, "out of memory\n");
        exit(1);
    }
    for (size_t i = 0; i < n; i++) {
        unsigned v;
        if (sscanf(hex + 2 * i, "%2x", &v) != 1)
            v = 0;
        out[i] = (char)v;
    }
    out[n] = '\0';
    *len = n;
    return out;
}

/* A scratch path under the build directory (or /tmp). */
static inline void scratch_path(char *buf, size_t size, const char *name)
{
    const char *dir = getenv("VD_BUILD_ROOT");
    snprintf(buf, size, "%s/%s.%ld", dir && dir[0] ? dir : "/tmp", name, (long)getpid());
}

#endif

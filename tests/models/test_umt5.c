/* The umT5 encoder and the prompt path against the independent PyTorch
 * goldens (tests/data/golden/README.md, "umT5 cases"):
 *  - relative-position buckets: exact over −300..300;
 *  - the tiny encoder (f32) on cases 1–4, padded and unpadded: relative L2
 *    error ≤ 1e-4 (fp32 math; the observed error is about 1e-7);
 *  - padding invariance: every case run the other way (padded ↔ unpadded)
 *    matches the golden within the same bound;
 *  - storage dtypes bf16, f16, Q8_0 (in memory) and legacy fp8 scaled (a
 *    written file) give the encoder of their dequantized weights (≤ 1e-5);
 *  - the text encoder: tokenizer from the checkpoint or a path, cleaning,
 *    EOS, truncation to 512, the same rows as the padded-to-512 reference;
 *  - errors: ids outside the vocabulary, bad lengths, a VAE checkpoint, a
 *    checkpoint without tokenizer, a tokenizer larger than the vocabulary. */
#include <stdbool.h>
#include <stdint.h>
#include <unistd.h>

#include "backend/backend.h"
#include "io/model_writer.h"
#include "io/weights.h"
#include "models/text_encoder.h"
#include "models/tokenizer.h"
#include "models/umt5.h"
#include "test_util.h"

#define GOLDEN VD_TEST_DATA_DIR "/golden/"
#define TOKENIZER VD_TEST_DATA_DIR "/tokenizer/vdiff-small.model"

static const double BOUND = 1e-4;  /* vs the PyTorch goldens */
static const double DTYPE_BOUND = 1e-5; /* quantized storage vs its dequantized f32 */

static vd_backend *be;
static char scratch[256];

static const vd_tensor *tensor(const vd_weights *w, const char *name)
{
    const vd_weight *x = vd_weights_find(w, name);
    if (!x) {
        fprintf(stderr, "golden tensor '%s' is missing from %s\n", name, vd_weights_path(w));
        exit(1);
    }
    return &x->tensor;
}

static vd_weights *open_golden(const char *name)
{
    char path[512];
    snprintf(path, sizeof path, GOLDEN "%s", name);
    vd_weights *w = NULL;
    if (vd_weights_open(path, &w) != VD_OK) {
        fprintf(stderr, "cannot open %s: %s\n", path, vd_last_error());
        exit(1);
    }
    return w;
}

/* ---- buckets ---------------------------------------------------------------- */

static void test_buckets(void)
{
    vd_weights *g = open_golden("umt5_buckets.safetensors");
    const vd_tensor *rel = tensor(g, "relative_position"), *bucket = tensor(g, "bucket");
    CHECK(rel->dtype == VD_I32 && bucket->dtype == VD_I32 && rel->shape[0] == bucket->shape[0]);
    const int32_t *r = rel->data, *b = bucket->data;
    int wrong = 0;
    for (int64_t i = 0; i < rel->shape[0]; i++) {
        int32_t got = vd_umt5_bucket(r[i], 32, VD_UMT5_MAX_DISTANCE);
        if (got != b[i] && wrong++ < 5)
            fprintf(stderr, "bucket(%d) = %d, golden %d\n", r[i], got, b[i]);
    }
    CHECKF(wrong == 0, "%d of %lld buckets differ", wrong, (long long)rel->shape[0]);
    /* far beyond the golden range everything is in the last bucket of each side */
    CHECK(vd_umt5_bucket(100000, 32, 128) == 31 && vd_umt5_bucket(-100000, 32, 128) == 15);
    CHECK(vd_umt5_bucket(0, 32, 128) == 0 && vd_umt5_bucket(1, 32, 128) == 17 && vd_umt5_bucket(-1, 32, 128) == 1);
    vd_weights_close(g);
}

/* ---- golden cases --------------------------------------------------------------- */

/* Run case N with the given padding (-1: as the golden input; 0: unpadded;
 * P: padded to P) and return the relative L2 error. */
static double run_case(vd_umt5 *enc, int c, int64_t pad)
{
    char name[64];
    snprintf(name, sizeof name, "umt5_case%d_in.safetensors", c);
    vd_weights *in = open_golden(name);
    snprintf(name, sizeof name, "umt5_case%d_out.safetensors", c);
    vd_weights *gold = open_golden(name);
    const vd_tensor *ids = tensor(in, "ids"), *ref = tensor(gold, "embeddings");
    const vd_weight *mask = vd_weights_find(in, "mask");
    int64_t L = ids->shape[0], n = L;
    if (mask) {
        n = 0;
        for (int64_t i = 0; i < L; i++)
            n += ((const int32_t *)mask->tensor.data)[i] != 0;
    }
    const int64_t D = vd_umt5_get_config(enc)->d_model;
    CHECK(ref->shape[0] == n && ref->shape[1] == D);
    int64_t pad_to = pad < 0 ? (mask ? L : 0) : pad;
    float *out = calloc((size_t)(n * D), sizeof *out);
    double err = INFINITY;
    vd_status st = vd_umt5_encode(enc, ids->data, n, pad_to, out);
    CHECK_OK(st);
    if (st == VD_OK)
        err = rel_l2(out, ref->data, n * D);
    free(out);
    vd_weights_close(in);
    vd_weights_close(gold);
    return err;
}

static void test_cases(const vd_weights *model)
{
    vd_umt5 *enc = NULL;
    CHECK_OK(vd_umt5_load(be, model, &enc));
    if (!enc)
        return;
    const vd_t5_config *c = vd_umt5_get_config(enc);
    CHECK(c->vocab == 512 && c->d_model == 64 && c->heads == 4 && c->d_kv == 16 && c->d_ff == 128 &&
          c->layers == 2 && c->buckets == 32);
    /* as the goldens were made, then the other way round */
    static const int64_t other[5] = {0, 0, 512, 256, 0};
    for (int k = 1; k <= 4; k++) {
        double e = run_case(enc, k, -1);
        printf("case %d as given:        rel L2 %.3g\n", k, e);
        CHECKF(e <= BOUND, "case %d: rel L2 %.3g > %.0e", k, e, BOUND);
        e = run_case(enc, k, other[k]);
        printf("case %d pad_to %-4lld:     rel L2 %.3g\n", k, (long long)other[k], e);
        CHECKF(e <= BOUND, "case %d pad_to %lld: rel L2 %.3g > %.0e", k, (long long)other[k], e, BOUND);
    }
    vd_umt5_free(enc);
}

/* ---- storage dtypes ------------------------------------------------------------- */

static bool quantized_role(const char *name)
{
    return strcmp(name, "shared.weight") == 0 || strstr(name, "SelfAttention.q.") || strstr(name, "SelfAttention.k.") ||
           strstr(name, "SelfAttention.v.") || strstr(name, "SelfAttention.o.") || strstr(name, "DenseReluDense");
}

/* Encode case 3 (200 ids, unpadded) and case 4 (padded) with `w`. */
static float *encode_cases(const vd_weights *w, int64_t *total)
{
    vd_umt5 *enc = NULL;
    CHECK_OK(vd_umt5_load(be, w, &enc));
    if (!enc)
        return NULL;
    vd_weights *in3 = open_golden("umt5_case3_in.safetensors"), *in4 = open_golden("umt5_case4_in.safetensors");
    const vd_tensor *i3 = tensor(in3, "ids"), *i4 = tensor(in4, "ids");
    int64_t n3 = i3->shape[0], n4 = 150, D = 64;
    float *out = malloc((size_t)((n3 + n4) * D) * sizeof *out);
    CHECK_OK(vd_umt5_encode(enc, i3->data, n3, 0, out));
    CHECK_OK(vd_umt5_encode(enc, i4->data, n4, i4->shape[0], out + n3 * D));
    *total = (n3 + n4) * D;
    vd_weights_close(in3);
    vd_weights_close(in4);
    vd_umt5_free(enc);
    return out;
}

/* Stored values of `model` in `dtype` (in memory) vs their f32 decoding. */
static void test_dtype(const vd_weights *model, vd_dtype dtype)
{
    vd_weights *stored = NULL, *decoded = NULL;
    CHECK_OK(vd_weights_new(&stored));
    CHECK_OK(vd_weights_new(&decoded));
    size_t n = vd_weights_count(model);
    void **keep = calloc(2 * n, sizeof *keep);
    for (size_t i = 0; i < n; i++) {
        const vd_weight *x = vd_weights_at(model, i);
        const vd_tensor *t = &x->tensor;
        int64_t ne = vd_tensor_nelem(t);
        vd_dtype dt = quantized_role(x->name) ? dtype : VD_F32;
        size_t bytes = 0;
        CHECK_OK(vd_dtype_nbytes(dt, ne, &bytes));
        void *q = malloc(bytes);
        float *f = malloc((size_t)ne * sizeof *f);
        CHECK_OK(vd_dtype_from_f32(dt, t->data, q, ne));
        CHECK_OK(vd_dtype_to_f32(dt, q, f, ne));
        CHECK_OK(vd_weights_add(stored, x->name, dt, t->ndim, t->shape, q));
        CHECK_OK(vd_weights_add(decoded, x->name, VD_F32, t->ndim, t->shape, f));
        keep[2 * i] = q, keep[2 * i + 1] = f;
    }
    int64_t na = 0, nb = 0;
    float *a = encode_cases(stored, &na), *b = encode_cases(decoded, &nb);
    if (a && b) {
        double e = rel_l2(a, b, na);
        printf("%-6s storage vs its dequantized f32: rel L2 %.3g\n", vd_dtype_name(dtype), e);
        CHECKF(e <= DTYPE_BOUND, "%s: rel L2 %.3g", vd_dtype_name(dtype), e);
    }
    free(a), free(b);
    vd_weights_close(stored);
    vd_weights_close(decoded);
    for (size_t i = 0; i < 2 * n; i++)
        free(keep[i]);
    free(keep);
}

/* One tensor for write_checkpoint. */
typedef struct entry {
    const char *name;
    vd_dtype dtype;
    int ndim;
    int64_t shape[2];
    const void *data;
    size_t bytes;
} entry;

static void write_checkpoint(const char *path, const entry *e, size_t n)
{
    vd_model_writer *w = NULL;
    CHECK_OK(vd_model_writer_open(path, VD_FORMAT_SAFETENSORS, &w));
    if (!w)
        exit(1);
    for (size_t i = 0; i < n; i++)
        CHECK_OK(vd_model_writer_declare(w, e[i].name, e[i].dtype, e[i].ndim, e[i].shape));
    CHECK_OK(vd_model_writer_begin(w));
    for (size_t i = 0; i < n; i++)
        CHECK_OK(vd_model_writer_write(w, e[i].data, e[i].bytes));
    CHECK_OK(vd_model_writer_finish(w));
}

/* The legacy ComfyUI fp8 layout, read from a file: weights e4m3(W/s) with
 * X.scale_weight = s = absmax/448 and the scaled_fp8 marker. */
static void test_fp8_scaled(const vd_weights *model)
{
    size_t n = vd_weights_count(model), ne_all = 0;
    entry *e = calloc(2 * n + 1, sizeof *e);
    char **names = calloc(n, sizeof *names);
    void **keep = calloc(2 * n, sizeof *keep);
    vd_weights *decoded = NULL;
    CHECK_OK(vd_weights_new(&decoded));
    size_t k = 0;
    static const uint8_t marker = 0;
    e[k++] = (entry){"scaled_fp8", VD_F8_E4M3, 1, {0}, &marker, 0};
    static float scales[64];
    for (size_t i = 0; i < n; i++) {
        const vd_weight *x = vd_weights_at(model, i);
        const vd_tensor *t = &x->tensor;
        int64_t ne = vd_tensor_nelem(t);
        const float *src = t->data;
        float *f = malloc((size_t)ne * sizeof *f);
        keep[2 * i + 1] = f;
        e[k] = (entry){x->name, VD_F32, t->ndim, {t->shape[0], t->ndim > 1 ? t->shape[1] : 0}, src,
                       (size_t)ne * sizeof(float)};
        if (!quantized_role(x->name)) {
            memcpy(f, src, (size_t)ne * sizeof *f);
            k++;
        } else {
            float amax = 0;
            for (int64_t j = 0; j < ne; j++)
                amax = fabsf(src[j]) > amax ? fabsf(src[j]) : amax;
            float s = amax / 448.0f;
            uint8_t *q = malloc((size_t)ne);
            keep[2 * i] = q;
            for (int64_t j = 0; j < ne; j++) {
                q[j] = vd_f32_to_e4m3(src[j] / s);
                f[j] = vd_e4m3_to_f32(q[j]) * s;
            }
            e[k].dtype = VD_F8_E4M3, e[k].data = q, e[k].bytes = (size_t)ne;
            k++;
            size_t len = strlen(x->name);
            names[i] = malloc(len + 16);
            snprintf(names[i], len + 16, "%.*s.scale_weight", (int)(len - strlen(".weight")), x->name);
            scales[ne_all % 64] = s;
            e[k++] = (entry){names[i], VD_F32, 1, {1}, &scales[ne_all % 64], sizeof(float)};
            ne_all++;
        }
        CHECK_OK(vd_weights_add(decoded, x->name, VD_F32, t->ndim, t->shape, f));
    }
    CHECK(ne_all <= 64);
    char path[320];
    snprintf(path, sizeof path, "%s/umt5_fp8_scaled.safetensors", scratch);
    write_checkpoint(path, e, k);
    vd_weights *fp8 = NULL;
    CHECK_OK(vd_weights_open(path, &fp8));
    if (fp8) {
        const vd_weight *q = vd_weights_find(fp8, "encoder.block.1.layer.1.DenseReluDense.wo.weight");
        CHECK(q && q->tensor.dtype == VD_F8_E4M3 && q->tensor.scale != 1.0f);
        int64_t na = 0, nb = 0;
        float *a = encode_cases(fp8, &na), *b = encode_cases(decoded, &nb);
        if (a && b) {
            double err = rel_l2(a, b, na);
            printf("fp8 scaled (legacy) file vs its dequantized f32: rel L2 %.3g\n", err);
            CHECKF(err <= DTYPE_BOUND, "fp8 scaled: rel L2 %.3g", err);
        }
        free(a), free(b);
        vd_weights_close(fp8);
    }
    remove(path);
    vd_weights_close(decoded);
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    for (size_t i = 0; i < 2 * n; i++)
        free(keep[i]);
    free(names), free(keep), free(e);
}

/* ---- errors ----------------------------------------------------------------------- */

static void test_errors(const vd_weights *model)
{
    vd_umt5 *enc = NULL;
    CHECK_OK(vd_umt5_load(be, model, &enc));
    if (!enc)
        return;
    float out[64 * 3];
    int32_t bad[3] = {5, 512, 1};
    CHECK_FAILS(vd_umt5_encode(enc, bad, 3, 0, out), VD_ERR_INVALID_ARGUMENT);
    CHECK(strstr(vd_last_error(), "512") && strstr(vd_last_error(), "position 1"));
    bad[1] = -3;
    CHECK_FAILS(vd_umt5_encode(enc, bad, 3, 8, out), VD_ERR_INVALID_ARGUMENT);
    CHECK(strstr(vd_last_error(), "-3"));
    int32_t ok[3] = {5, 6, 1};
    CHECK_FAILS(vd_umt5_encode(enc, ok, 0, 0, out), VD_ERR_INVALID_ARGUMENT);
    CHECK_FAILS(vd_umt5_encode(enc, ok, 3, 2, out), VD_ERR_INVALID_ARGUMENT);
    CHECK_FAILS(vd_umt5_encode(enc, ok, 3, VD_UMT5_MAX_POSITIONS + 1, out), VD_ERR_INVALID_ARGUMENT);
    CHECK_OK(vd_umt5_encode(enc, ok, 3, 3, out));
    vd_umt5_free(enc);

    /* not a T5 */
    static const char *others[] = {"vae_tiny_f32.safetensors", "dit_tiny_t2v_f32.safetensors"};
    for (int i = 0; i < 2; i++) {
        vd_weights *w = open_golden(others[i]);
        enc = (vd_umt5 *)1;
        CHECK_FAILS(vd_umt5_load(be, w, &enc), VD_ERR_UNSUPPORTED);
        CHECK(enc == NULL && strstr(vd_last_error(), "not a umT5"));
        vd_weights_close(w);
    }
    vd_text_encoder *te = (vd_text_encoder *)1;
    CHECK_FAILS(vd_text_encoder_open(be, GOLDEN "vae_tiny_f32.safetensors", TOKENIZER, &te), VD_ERR_UNSUPPORTED);
    CHECK(te == NULL);
    CHECK_FAILS(vd_text_encoder_open(be, GOLDEN "no_such_file.safetensors", TOKENIZER, &te), VD_ERR_NOT_FOUND);

    /* a checkpoint without a tokenizer and none given */
    CHECK_FAILS(vd_text_encoder_open(be, GOLDEN "umt5_tiny_f32.safetensors", NULL, &te), VD_ERR_INVALID_ARGUMENT);
    CHECK(strstr(vd_last_error(), "tokenizer") && strstr(vd_last_error(), "umt5_tiny_f32"));
    /* a tokenizer with more pieces than the 512 embedding rows */
    CHECK_FAILS(vd_text_encoder_open(be, GOLDEN "umt5_tiny_f32.safetensors", TOKENIZER, &te), VD_ERR_INVALID_ARGUMENT);
    CHECK(strstr(vd_last_error(), "pieces"));
}

/* ---- the prompt path ---------------------------------------------------------------- */

/* The tiny encoder with its embedding grown to `vocab` rows (the tokenizer's
 * ids must fit), optionally carrying the tokenizer as `spiece_model`. */
static void write_prompt_model(const vd_weights *model, int64_t vocab, const char *path, bool with_tokenizer,
                               float **table_out)
{
    size_t n = vd_weights_count(model);
    entry *e = calloc(n + 1, sizeof *e);
    const vd_tensor *shared = tensor(model, "shared.weight");
    const int64_t D = shared->shape[1];
    float *table = random_floats(7, vocab * D, -1.7f, 1.7f);
    memcpy(table, shared->data, (size_t)(shared->shape[0] * D) * sizeof *table);
    for (size_t i = 0; i < n; i++) {
        const vd_weight *x = vd_weights_at(model, i);
        const vd_tensor *t = &x->tensor;
        e[i] = (entry){x->name, VD_F32, t->ndim, {t->shape[0], t->ndim > 1 ? t->shape[1] : 0}, t->data,
                       vd_tensor_nbytes(t)};
        if (strcmp(x->name, "shared.weight") == 0)
            e[i].shape[0] = vocab, e[i].data = table, e[i].bytes = (size_t)(vocab * D) * sizeof(float);
    }
    size_t k = n, tok_size = 0;
    uint8_t *tok = NULL;
    if (with_tokenizer) {
        FILE *f = fopen(TOKENIZER, "rb");
        CHECK(f != NULL);
        if (f) {
            fseek(f, 0, SEEK_END);
            tok_size = (size_t)ftell(f);
            fseek(f, 0, SEEK_SET);
            tok = malloc(tok_size);
            CHECK(fread(tok, 1, tok_size, f) == tok_size);
            fclose(f);
            e[k++] = (entry){"spiece_model", VD_U8, 1, {(int64_t)tok_size}, tok, tok_size};
        }
    }
    write_checkpoint(path, e, k);
    free(tok);
    free(e);
    *table_out = table;
}

static void test_prompt_path(const vd_weights *model)
{
    vd_tokenizer *tok = NULL;
    CHECK_OK(vd_tokenizer_open(TOKENIZER, &tok));
    if (!tok)
        return;
    const int64_t vocab = ((int64_t)vd_tokenizer_vocab_size(tok) + 63) / 64 * 64, D = 64;
    char with[320], without[320];
    snprintf(with, sizeof with, "%s/umt5_with_tokenizer.safetensors", scratch);
    snprintf(without, sizeof without, "%s/umt5_no_tokenizer.safetensors", scratch);
    float *t1 = NULL, *t2 = NULL;
    write_prompt_model(model, vocab, with, true, &t1);
    write_prompt_model(model, vocab, without, false, &t2);

    vd_text_encoder *a = NULL, *b = NULL;
    CHECK_OK(vd_text_encoder_open(be, with, NULL, &a));        /* the embedded tokenizer */
    CHECK_OK(vd_text_encoder_open(be, without, TOKENIZER, &b)); /* the given one */
    vd_weights *w = NULL;
    vd_umt5 *ref = NULL;
    CHECK_OK(vd_weights_open(without, &w));
    if (w)
        CHECK_OK(vd_umt5_load(be, w, &ref));
    if (!a || !b || !ref)
        goto done;
    CHECK(vd_text_encoder_dim(a) == D);

    /* the tokenizer's own ids (tests/tokenizer checks them against the
     * SentencePiece goldens); the cleaning collapses whitespace and unescapes
     * HTML first */
    int32_t *hello = NULL;
    size_t n_hello = 0;
    CHECK_OK(vd_tokenizer_encode(tok, "Hello world", VD_TEXT_MAX_TOKENS, true, &hello, &n_hello));
    CHECK(n_hello >= 2 && hello[n_hello - 1] == 1);
    const char *prompts[] = {"Hello world", "  Hello \t\n  world  ", "Hello&nbsp;world", "Hello &amp;amp; world", ""};
    for (size_t p = 0; p < sizeof prompts / sizeof prompts[0]; p++) {
        int32_t *ids = NULL;
        int64_t n = 0;
        CHECK_OK(vd_text_encoder_tokenize(a, prompts[p], &ids, &n));
        if (p < 3)
            CHECKF(n == (int64_t)n_hello && memcmp(ids, hello, n_hello * sizeof *ids) == 0, "prompt %zu: %lld ids", p,
                   (long long)n);
        if (p == 3) { /* unescaped twice: "Hello & world" */
            int32_t *direct = NULL;
            size_t nd = 0;
            CHECK_OK(vd_tokenizer_encode(tok, "Hello & world", 0, true, &direct, &nd));
            CHECK(direct && (int64_t)nd == n && memcmp(ids, direct, nd * sizeof *ids) == 0);
            free(direct);
        }
        if (p == 4)
            CHECK(n == 1 && ids[0] == 1); /* an empty prompt is just EOS */

        float *emb_a = NULL, *emb_b = NULL;
        int64_t na = 0, nb = 0;
        CHECK_OK(vd_text_encoder_encode(a, prompts[p], &emb_a, &na));
        CHECK_OK(vd_text_encoder_encode(b, prompts[p], &emb_b, &nb));
        /* the reference way: padded to 512 with the mask */
        float *emb_r = malloc((size_t)(n * D) * sizeof *emb_r);
        CHECK_OK(vd_umt5_encode(ref, ids, n, VD_TEXT_MAX_TOKENS, emb_r));
        if (emb_a && emb_b && na == n && nb == n) {
            double ea = rel_l2(emb_a, emb_r, n * D), eb = rel_l2(emb_b, emb_r, n * D);
            CHECKF(ea <= 1e-5 && eb <= 1e-5, "prompt %zu: rel L2 %.3g / %.3g vs padded", p, ea, eb);
        } else {
            CHECKF(false, "prompt %zu: %lld / %lld rows, expected %lld", p, (long long)na, (long long)nb, (long long)n);
        }
        free(emb_a), free(emb_b), free(emb_r), free(ids);
    }

    /* a long prompt: 511 text ids and the EOS, every row finite */
    size_t len = 6000;
    char *longp = malloc(len + 1);
    for (size_t i = 0; i < len; i++)
        longp[i] = "the cat sat "[i % 12];
    longp[len] = '\0';
    float *emb = NULL;
    int64_t n = 0;
    CHECK_OK(vd_text_encoder_encode(a, longp, &emb, &n));
    CHECK(n == VD_TEXT_MAX_TOKENS);
    int32_t *ids = NULL;
    int64_t ni = 0;
    CHECK_OK(vd_text_encoder_tokenize(a, longp, &ids, &ni));
    CHECK(ni == VD_TEXT_MAX_TOKENS && ids && ids[ni - 1] == 1);
    bool finite = emb != NULL;
    for (int64_t i = 0; emb && i < n * D; i++)
        finite = finite && isfinite(emb[i]);
    CHECK(finite);
    free(emb), free(ids), free(longp);

    CHECK_FAILS(vd_text_encoder_tokenize(a, NULL, &ids, &ni), VD_ERR_INVALID_ARGUMENT);
    free(hello);
    int32_t none[1] = {1};
    CHECK_FAILS(vd_text_encoder_encode_ids(a, none, 0, &emb), VD_ERR_INVALID_ARGUMENT);
done:
    vd_text_encoder_free(a);
    vd_text_encoder_free(b);
    vd_umt5_free(ref);
    vd_weights_close(w);
    vd_tokenizer_free(tok);
    free(t1), free(t2);
    remove(with);
    remove(without);
}

int main(void)
{
    const char *base = getenv("VD_BUILD_ROOT");
    snprintf(scratch, sizeof scratch, "%s/test_umt5_XXXXXX", base ? base : "/tmp");
    if (!mkdtemp(scratch)) {
        fprintf(stderr, "cannot create a scratch directory %s\n", scratch);
        return 1;
    }
    vd_backend_options opt = {.threads = 2};
    CHECK_OK(vd_backend_cpu_new(&opt, &be));
    if (!be)
        return test_finish("test_umt5");
    vd_weights *model = open_golden("umt5_tiny_f32.safetensors");

    test_buckets();
    test_cases(model);
    test_dtype(model, VD_BF16);
    test_dtype(model, VD_F16);
    test_dtype(model, VD_Q8_0);
    test_fp8_scaled(model);
    test_errors(model);
    test_prompt_path(model);

    vd_weights_close(model);
    vd_backend_close(be);
    rmdir(scratch);
    return test_finish("test_umt5");
}

/* vdiff encode-prompt: a prompt through Wan's text path (clean, tokenize,
 * umT5), summarised. */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "backend/backend.h"
#include "core/error.h"
#include "io/model_writer.h"
#include "models/text_encoder.h"
#include "tools/args.h"
#include "tools/commands.h"

static const char *const encode_help =
    "usage: vdiff encode-prompt --model M [--tokenizer T] [--output OUT]\n"
    "                           [--device cpu|cuda:N] [--threads N] TEXT\n\n"
    "Encode a prompt as Wan does: clean it (HTML unescape, whitespace), tokenize\n"
    "it with EOS (at most 512 tokens), run the umT5 encoder.  Prints the token ids,\n"
    "the embedding shape [tokens, d_model] and its mean, std, min and max.  An empty\n"
    "TEXT (\"\") encodes just the EOS token.\n\n"
    "  --model M        a umT5 encoder checkpoint (safetensors or GGUF)\n"
    "  --tokenizer T    the SentencePiece tokenizer (.model, tokenizer.json or a\n"
    "                   checkpoint); default: the one M carries (ComfyUI umt5\n"
    "                   files carry it as spiece_model); needed when M has none\n"
    "  --output OUT     also write embeddings f32 [n, d_model] and ids int32 [n] to\n"
    "                   a safetensors file (the context input of vdiff dit / sample)\n";

static vd_status write_output(const char *path, const float *emb, const int32_t *ids, int64_t n, int64_t d)
{
    vd_model_writer *w = NULL;
    int64_t se[2] = {n, d};
    VD_TRY(vd_model_writer_open(path, VD_FORMAT_SAFETENSORS, &w));
    vd_status st = vd_model_writer_declare(w, "embeddings", VD_F32, 2, se);
    if (st == VD_OK)
        st = vd_model_writer_declare(w, "ids", VD_I32, 1, &n);
    if (st == VD_OK)
        st = vd_model_writer_begin(w);
    if (st == VD_OK)
        st = vd_model_writer_write(w, emb, (size_t)(n * d) * sizeof *emb);
    if (st == VD_OK)
        st = vd_model_writer_write(w, ids, (size_t)n * sizeof *ids);
    if (st != VD_OK) {
        vd_model_writer_abort(w);
        return st;
    }
    return vd_model_writer_finish(w);
}

static void print_summary(const int32_t *ids, const float *emb, int64_t n, int64_t d, double seconds)
{
    double sum = 0, sq = 0, lo = INFINITY, hi = -INFINITY;
    int64_t count = n * d;
    for (int64_t i = 0; i < count; i++) {
        double v = emb[i];
        sum += v;
        sq += v * v;
        lo = v < lo ? v : lo;
        hi = v > hi ? v : hi;
    }
    double mean = sum / (double)count, var = sq / (double)count - mean * mean;
    printf("tokens:     %" PRId64 "\nids:       ", n);
    for (int64_t i = 0; i < n; i++)
        printf(" %" PRId32, ids[i]);
    printf("\nembeddings: [%" PRId64 ", %" PRId64 "]\n", n, d);
    printf("mean:       %.6g\nstd:        %.6g\nmin:        %.6g\nmax:        %.6g\n", mean, sqrt(var > 0 ? var : 0),
           lo, hi);
    printf("time:       %.3f s\n", seconds);
}

int vd_cmd_encode_prompt(int argc, char **argv)
{
    vd_args a;
    vd_args_init(&a, "vdiff encode-prompt", argc, argv);
    const char *model = NULL, *tokenizer = NULL, *output = NULL, *device = "cpu", *text = NULL, *s;
    int64_t threads = 0;
    bool opt;
    while ((s = vd_args_next(&a, &opt))) {
        bool ok = true;
        if (!opt) {
            if (text)
                return vd_args_error(&a, "more than one TEXT given (quote the prompt)");
            text = s;
        } else if (vd_args_is(&a, "--help") || vd_args_is(&a, "-h")) {
            fputs(encode_help, stdout);
            return 0;
        } else if (vd_args_is(&a, "--model") || vd_args_is(&a, "-m"))
            ok = (model = vd_args_value(&a)) != NULL;
        else if (vd_args_is(&a, "--tokenizer") || vd_args_is(&a, "-t"))
            ok = (tokenizer = vd_args_value(&a)) != NULL;
        else if (vd_args_is(&a, "--output") || vd_args_is(&a, "-o"))
            ok = (output = vd_args_value(&a)) != NULL;
        else if (vd_args_is(&a, "--device"))
            ok = (device = vd_args_value(&a)) != NULL;
        else if (vd_args_is(&a, "--threads"))
            ok = vd_args_int(&a, 0, 1024, &threads);
        else
            return vd_args_error(&a, "unknown option %s", s);
        if (!ok)
            return 2;
    }
    if (!model)
        return vd_args_error(&a, "--model is required");
    if (!text)
        return vd_args_error(&a, "no TEXT given (\"\" encodes an empty prompt)");

    vd_backend *be = NULL;
    vd_text_encoder *te = NULL;
    int32_t *ids = NULL;
    float *emb = NULL;
    int64_t n = 0, rows = 0;
    vd_backend_options bo = {.threads = (int)threads};
    struct timespec t0, t1;
    vd_status st = vd_backend_open(device, &bo, &be);
    if (st == VD_OK)
        st = vd_text_encoder_open(be, model, tokenizer, &te);
    if (st == VD_OK)
        st = vd_text_encoder_tokenize(te, text, &ids, &n);
    clock_gettime(CLOCK_MONOTONIC, &t0);
    if (st == VD_OK)
        st = vd_text_encoder_encode_ids(te, ids, n, &emb);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    if (st == VD_OK) {
        rows = n;
        print_summary(ids, emb, rows, vd_text_encoder_dim(te),
                      (double)(t1.tv_sec - t0.tv_sec) + 1e-9 * (double)(t1.tv_nsec - t0.tv_nsec));
        if (output)
            st = write_output(output, emb, ids, rows, vd_text_encoder_dim(te));
    }
    free(emb);
    free(ids);
    vd_text_encoder_free(te);
    vd_backend_close(be);
    if (st != VD_OK)
        return vd_tool_fail(a.cmd, NULL);
    return fflush(stdout) == 0 ? 0 : 1;
}

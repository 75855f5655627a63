#include "models/text_encoder.h"

#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "io/weights.h"
#include "models/text_clean.h"
#include "models/tokenizer.h"
#include "models/umt5.h"

struct vd_text_encoder {
    vd_weights *weights;
    vd_umt5 *umt5;
    vd_tokenizer *tok;
};

void vd_text_encoder_free(vd_text_encoder *te)
{
    if (!te)
        return;
    vd_umt5_free(te->umt5); /* before the mapping its CPU views point into */
    vd_weights_close(te->weights);
    vd_tokenizer_free(te->tok);
    free(te);
}

int64_t vd_text_encoder_dim(const vd_text_encoder *te) { return vd_umt5_get_config(te->umt5)->d_model; }

/* A tokenizer the caller names wins (they asked for it); otherwise the
 * checkpoint's own. */
static vd_status open_tokenizer(vd_text_encoder *te, const char *model_path, const char *tokenizer_path)
{
    vd_status st;
    if (tokenizer_path) {
        st = vd_tokenizer_open(tokenizer_path, &te->tok);
        return st == VD_OK ? VD_OK : vd_error_context(st, "opening the tokenizer: ");
    }
    st = vd_tokenizer_open(model_path, &te->tok);
    if (st == VD_OK)
        return VD_OK;
    if (st != VD_ERR_NOT_FOUND)
        return vd_error_context(st, "reading the tokenizer inside '%s': ", model_path);
    return vd_error(VD_ERR_INVALID_ARGUMENT,
                    "'%s' holds no tokenizer (no spiece_model tensor); pass the umT5 SentencePiece tokenizer "
                    "(spiece.model / tokenizer.json of google/umt5-xxl, or a ComfyUI umt5 file) as the tokenizer "
                    "path (vdiff: --tokenizer FILE)",
                    model_path);
}

vd_status vd_text_encoder_open(vd_backend *be, const char *model_path, const char *tokenizer_path,
                               vd_text_encoder **out)
{
    *out = NULL;
    if (!be || !model_path)
        return vd_error(VD_ERR_INVALID_ARGUMENT, "vd_text_encoder_open: NULL backend or model path");
    vd_text_encoder *te = calloc(1, sizeof *te);
    if (!te)
        return vd_error(VD_ERR_OUT_OF_MEMORY, "out of memory");
    vd_status st = vd_weights_open(model_path, &te->weights);
    if (st == VD_OK)
        st = vd_umt5_load(be, te->weights, &te->umt5);
    if (st == VD_OK)
        st = open_tokenizer(te, model_path, tokenizer_path);
    if (st == VD_OK) {
        size_t pieces = vd_tokenizer_vocab_size(te->tok);
        int64_t rows = vd_umt5_get_config(te->umt5)->vocab;
        if ((int64_t)pieces > rows)
            st = vd_error(VD_ERR_INVALID_ARGUMENT,
                          "the tokenizer has %zu pieces but the encoder in '%s' embeds only %lld ids: they do not "
                          "belong together (umT5-XXL embeds 256384 ids)",
                          pieces, model_path, (long long)rows);
        else if (vd_tokenizer_eos_id(te->tok) < 0)
            st = vd_error(VD_ERR_INVALID_ARGUMENT, "the tokenizer for '%s' has no EOS piece (umT5's is '</s>', id 1)",
                          model_path);
    }
    if (st != VD_OK) {
        vd_text_encoder_free(te);
        return st;
    }
    *out = te;
    return VD_OK;
}

vd_status vd_text_encoder_tokenize(const vd_text_encoder *te, const char *prompt, int32_t **ids, int64_t *n)
{
    *ids = NULL;
    *n = 0;
    if (!prompt)
        return vd_error(VD_ERR_INVALID_ARGUMENT, "prompt is NULL (use \"\" for an empty prompt)");
    char *clean;
    VD_TRY(vd_text_clean(prompt, &clean));
    size_t count = 0;
    vd_status st = vd_tokenizer_encode(te->tok, clean, VD_TEXT_MAX_TOKENS, true, ids, &count);
    free(clean);
    if (st != VD_OK)
        return vd_error_context(st, "tokenizing the prompt: ");
    *n = (int64_t)count;
    return VD_OK;
}

vd_status vd_text_encoder_encode_ids(vd_text_encoder *te, const int32_t *ids, int64_t n, float **embeddings)
{
    *embeddings = NULL;
    if (n < 1 || n > VD_TEXT_MAX_TOKENS)
        return vd_error(VD_ERR_INVALID_ARGUMENT, "%lld token ids; the text encoder takes 1 to %d", (long long)n,
                        VD_TEXT_MAX_TOKENS);
    const int64_t D = vd_text_encoder_dim(te);
    float *rows = malloc((size_t)(n * D) * sizeof *rows);
    if (!rows)
        return vd_error(VD_ERR_OUT_OF_MEMORY, "out of memory for %lld×%lld embeddings", (long long)n, (long long)D);
    /* unpadded: the same rows as the reference's 512 with the mask */
    vd_status st = vd_umt5_encode(te->umt5, ids, n, 0, rows);
    if (st != VD_OK) {
        free(rows);
        return st;
    }
    *embeddings = rows;
    return VD_OK;
}

vd_status vd_text_encoder_encode(vd_text_encoder *te, const char *prompt, float **embeddings, int64_t *n_rows)
{
    *embeddings = NULL;
    *n_rows = 0;
    int32_t *ids;
    int64_t n;
    VD_TRY(vd_text_encoder_tokenize(te, prompt, &ids, &n));
    vd_status st = vd_text_encoder_encode_ids(te, ids, n, embeddings);
    free(ids);
    if (st == VD_OK)
        *n_rows = n;
    return st;
}

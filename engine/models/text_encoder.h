/* Wan's prompt path (wan-spec.md §3): clean the text as the reference does,
 * tokenize with the umT5 SentencePiece model (EOS appended, at most 512
 * tokens), run the umT5 encoder, and return one row per token.
 *
 * The reference pads every prompt to 512 ids and masks the padding; the rows
 * of the real tokens do not depend on the padding (see vd_umt5_encode), so
 * the encoder runs on the real tokens only, which is the same result for
 * up to 512/n times less work.  The DiT zero-pads the rows back to 512
 * (vd_dit_embed_text). */
#ifndef VD_MODELS_TEXT_ENCODER_H
#define VD_MODELS_TEXT_ENCODER_H

#include <stddef.h>
#include <stdint.h>

#include "backend/backend.h"

/* Tokens per prompt in Wan (text_len), EOS included. */
#define VD_TEXT_MAX_TOKENS 512

typedef struct vd_text_encoder vd_text_encoder;

/* Open a umT5 checkpoint (safetensors or GGUF, any storage dtype) on `be`.
 * The tokenizer is `tokenizer_path` when given (a SentencePiece .model, a
 * tokenizer.json, or another checkpoint holding one), otherwise the
 * checkpoint's own (a `spiece_model` tensor, as in ComfyUI files, or GGUF
 * tokenizer metadata).  A checkpoint without a tokenizer and no
 * tokenizer_path fails with VD_ERR_INVALID_ARGUMENT saying to pass one.  A
 * tokenizer with more pieces than the encoder has embedding rows is refused
 * (they do not belong together). */
vd_status vd_text_encoder_open(vd_backend *be, const char *model_path, const char *tokenizer_path,
                               vd_text_encoder **out);

/* Release the encoder, its tokenizer and the checkpoint's mapping (NULL ok),
 * so the DiT can have the memory once the prompts are encoded. */
void vd_text_encoder_free(vd_text_encoder *te);

/* Width of the embeddings (d_model: 4096 for umT5-XXL). */
int64_t vd_text_encoder_dim(const vd_text_encoder *te);

/* The ids the encoder sees for a prompt: cleaned (text_clean.h), encoded with
 * EOS, truncated to 512 (511 text ids + EOS).  An empty prompt gives just
 * the EOS id.  *ids is malloc'ed (free() it). */
vd_status vd_text_encoder_tokenize(const vd_text_encoder *te, const char *prompt, int32_t **ids, int64_t *n);

/* Embed a prompt: *embeddings is a malloc'ed host array [*n_rows, dim]
 * (free() it), one row per token of vd_text_encoder_tokenize, EOS
 * included. */
vd_status vd_text_encoder_encode(vd_text_encoder *te, const char *prompt, float **embeddings, int64_t *n_rows);

/* The same for ids already tokenized (1 ≤ n ≤ 512). */
vd_status vd_text_encoder_encode_ids(vd_text_encoder *te, const int32_t *ids, int64_t n, float **embeddings);

#endif

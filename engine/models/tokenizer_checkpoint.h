/* The tokenizer carried inside a text-encoder checkpoint:
 *  - a `spiece_model` tensor (uint8 or int8, any shape) holding a
 *    serialized SentencePiece ModelProto, as ComfyUI's umT5 / T5 files do
 *    (safetensors or GGUF);
 *  - else, in a GGUF file, llama.cpp's "t5" tokenizer metadata
 *    (tokenizer.ggml.tokens / scores / token_type, precompiled_charsmap,
 *    add_space_prefix, remove_extra_whitespaces); byte_fallback is taken
 *    as on when the vocabulary has byte pieces, escape_whitespaces on. */
#ifndef VD_MODELS_TOKENIZER_CHECKPOINT_H
#define VD_MODELS_TOKENIZER_CHECKPOINT_H

#include "models/sentencepiece_model.h"

/* Fails with VD_ERR_NOT_FOUND (naming the file) when it holds neither. */
vd_status vd_tokenizer_checkpoint_model(const char *path, vd_sp_model *out);

#endif

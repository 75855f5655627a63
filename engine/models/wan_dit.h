/* The Wan DiT (wan-spec.md §1): patch embedding, time and text embeddings,
 * N blocks of modulated self-attention with 3-D RoPE, cross-attention and
 * a GELU FFN with gated fp32 residuals, the modulated head, unpatchify.
 * Written once against the backend interface; any size inferred from the
 * checkpoint.  Cond and uncond run as one batch of two. */
#ifndef VD_MODELS_WAN_DIT_H
#define VD_MODELS_WAN_DIT_H

#include <stdatomic.h>

#include "backend/backend.h"
#include "io/weights.h"
#include "models/arch.h"

/* Text rows the reference pads every context to before text_embedding. */
#define VD_DIT_TEXT_LEN 512

typedef struct vd_dit vd_dit;

/* Load a DiT from an opened weight set onto `be`.  The weight set must stay
 * open while the model is used (CPU weights are read in place). */
vd_status vd_dit_load(vd_backend *be, const vd_weights *w, vd_dit **out);
void vd_dit_free(vd_dit *m);
const vd_dit_config *vd_dit_get_config(const vd_dit *m);

/* Embed one prompt's text-encoder output ctx [n, text_dim] (host f32,
 * 1 ≤ n ≤ 512): zero-pad to 512 rows, then text_embedding → out [512, D]
 * on the model's device.  Release `out` with vd_tensor_release. */
vd_status vd_dit_embed_text(vd_dit *m, const float *ctx, int64_t n, vd_tensor *out);

typedef struct vd_dit_call {
    int batch;                     /* 1 or 2 (cond, uncond) */
    int64_t frames, height, width; /* latent T, H, W */
    const float *latent;           /* host, batch × [C_in, T, H, W] */
    const vd_tensor *text[2];      /* per sample, from vd_dit_embed_text */
    double timestep;               /* used as given (the pipeline passes integers) */
    float *velocity;               /* host out, batch × [C_out, T, H, W] */
    atomic_int *cancel;            /* optional: checked before every block */
} vd_dit_call;

/* One forward pass.  Returns VD_ERR_CANCELLED (with nothing written) if
 * *cancel became non-zero. */
vd_status vd_dit_forward(vd_dit *m, const vd_dit_call *call);

#endif

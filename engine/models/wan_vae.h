/* The Wan 2.1 VAE (wan-spec.md §2).
 *
 * Decoder: de-normalisation, conv2, the causal 3-D decoder run one latent
 * frame at a time with a 2-frame cache per causal convolution (exactly the
 * reference's chunked decode), clamping to [−1, 1].  Latent frame 0 yields
 * 1 frame, every later one 4, and each chunk is handed to the caller as soon
 * as it is decoded.
 *
 * Encoder (§2.5): the causal 3-D encoder run on pixel frame 0 alone, then on
 * chunks of 4 frames, with the same per-convolution caches; each chunk
 * gives one latent frame.  Then conv1, μ = its first z_dim channels, and
 * the normalisation (μ − mean)·(1/std). */
#ifndef VD_MODELS_WAN_VAE_H
#define VD_MODELS_WAN_VAE_H

#include <stdatomic.h>

#include "backend/backend.h"
#include "io/weights.h"
#include "models/arch.h"

typedef struct vd_vae vd_vae;

/* Load a Wan2.1 VAE.  The decoder is required; the encoder is loaded when
 * the file has it (vd_vae_get_config(v)->has_encoder), so decoder-only
 * files still decode (and refuse to encode). */
vd_status vd_vae_load(vd_backend *be, const vd_weights *w, vd_vae **out);
void vd_vae_free(vd_vae *v);
const vd_vae_config *vd_vae_get_config(const vd_vae *v);

/* Receives `n` decoded frames starting at pixel frame `first`:
 * rgb [3, n, H, W] f32 in [−1, 1] (host memory, valid during the call).
 * Return non-zero to stop decoding (the decode then reports cancelled). */
typedef int (*vd_vae_frames_fn)(void *user, const float *rgb, int64_t first, int64_t n, int64_t height, int64_t width);

/* Decode a normalised latent [z, T, h, w] (host f32).  Output frames:
 * 4(T−1)+1 of 8h × 8w pixels. */
vd_status vd_vae_decode(vd_vae *v, const float *latent, int64_t frames, int64_t height, int64_t width,
                        vd_vae_frames_fn on_frames, void *user, atomic_int *cancel);

/* Encode a video [3, F, H, W] (host f32, values in [−1, 1]) into the
 * normalised latent μ: latent_out [z, (F−1)/4 + 1, H/8, W/8] (host f32,
 * the caller's buffer).  F must be 4k+1 and H, W multiples of 8;
 * a non-finite value, a VAE without an encoder or a set `cancel` is an
 * error (latent_out is then partly written). */
vd_status vd_vae_encode(vd_vae *v, const float *video, int64_t frames, int64_t height, int64_t width,
                        float *latent_out, atomic_int *cancel);

/* The published latent statistics (z_dim values each). */
const float *vd_vae_latent_mean(int version);
const float *vd_vae_latent_std(int version);

#endif

/* Text-to-video generation: open a model set once, generate many clips.
 *
 * How an application makes a clip:
 *
 *   vd_pipeline_options opt = vd_pipeline_options_default();
 *   opt.dit = "wan2.1_t2v_1.3B_fp16.safetensors";
 *   opt.vae = "wan_2.1_vae.safetensors";
 *   opt.text_encoder = "umt5_xxl_fp8_e4m3fn_scaled.safetensors";
 *   opt.device = "cuda:0";                       // or "cpu"
 *   opt.text_encoder_device = "cpu";             // optional: NULL = opt.device
 *   vd_pipeline *p;
 *   if (vd_pipeline_open(&opt, &p) != VD_OK) { fprintf(stderr, "%s\n", vd_last_error()); ... }
 *
 *   vd_request_params rq = vd_request_params_default();
 *   rq.prompt = "a red fox runs through snow";
 *   rq.width = 832; rq.height = 480; rq.frames = 81;   // 0 keeps the model's defaults
 *   rq.on_frames = my_frames; rq.on_progress = my_progress; rq.user = me;
 *   vd_status s = vd_pipeline_generate(p, &rq, NULL);
 *   vd_pipeline_close(p);
 *
 * Frames arrive through on_frames as soon as the VAE decodes them (the first
 * frame, then 4 at a time), as packed 8-bit RGB.  Progress arrives through
 * on_progress once per stage change and once per sampling step.  Both are
 * called on the thread that called vd_pipeline_generate.
 *
 * To cancel from another thread, create a vd_request, pass it to
 * vd_pipeline_generate and call vd_request_cancel(): generation stops
 * within one transformer block and returns VD_ERR_CANCELLED.
 *
 * Output is deterministic for a given seed, settings and backend. */
#ifndef VDIFF_PIPELINE_H
#define VDIFF_PIPELINE_H

#include <stddef.h>
#include <stdint.h>

#include "vdiff/status.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct vd_pipeline vd_pipeline;
typedef struct vd_request vd_request;

typedef struct vd_pipeline_options {
    const char *dit;          /* DiT checkpoint (.safetensors or .gguf); required */
    const char *vae;          /* VAE checkpoint; required */
    const char *text_encoder; /* umT5 checkpoint; needed for prompt strings */
    const char *tokenizer;    /* optional SentencePiece .model / tokenizer.json when the
                                 text encoder file carries none */
    const char *device;       /* "cpu" (default), "cuda", "cuda:N": where the DiT computes,
                                 and the other models unless they name their own */
    const char *text_encoder_device; /* where the text encoder runs; NULL or "" = device */
    const char *vae_device;   /* where the VAE decodes; NULL or "" = device */
    const char *allocation;   /* DisTorch2-style weight placement ("cuda:0,8gb;cpu,*",
                                 "auto,12gb"); validated; NULL = everything on the compute
                                 device.  Planned for the model's default clip; a request
                                 needing more activation memory re-plans (and reloads) the
                                 DiT for its size, kept for later requests */
    int threads;              /* CPU worker threads; 0 = all cores */
    int release_text_encoder; /* non-zero: free the text encoder after each request's
                                 prompts are encoded (and load it again for the next),
                                 so the DiT gets its memory */
    int release_dit_for_decode; /* non-zero: free the DiT (weights, cached activations and
                                 the compute GPU's cached free memory) once a request's
                                 sampling is done, before the VAE decodes, so the decode
                                 gets that memory.  Cost: the DiT is read from its file
                                 again for every request after the first (with an "auto"
                                 allocation, measured again too); the frames do not
                                 change.  Memory is freed only when no other pipeline of
                                 the process shares the same DiT.  After a failed or
                                 cancelled sampling the DiT stays loaded. */
} vd_pipeline_options;

vd_pipeline_options vd_pipeline_options_default(void);

/* Load the models (shared with other pipelines of this process that name
 * the same files and device).  Errors name the file and what is wrong; a
 * device that is unknown or absent names its option ("vae_device cuda:7:
 * ...").
 *
 * Each model lives on its own device (device, text_encoder_device,
 * vae_device).  Data crosses between them through host memory: the text
 * encoder's embeddings and the sampled latent come back to the host, and
 * the VAE returns frames to the host, so any combination works (e.g. the
 * text encoder on "cpu" and the DiT on "cuda:0", or the VAE on "cuda:1"). */
vd_status vd_pipeline_open(const vd_pipeline_options *opt, vd_pipeline **out);
void vd_pipeline_close(vd_pipeline *p);

/* What the opened models are and what they expect by default. */
typedef struct vd_pipeline_info {
    char dit_name[64];        /* "Wan2.1/2.2 T2V DiT" */
    int64_t dit_params;
    int width, height;        /* default size (832×480 for Wan2.1) */
    int frames;               /* default frame count (81) */
    int fps;                  /* 16 (Wan2.1, A14B) or 24 (TI2V-5B) */
    int steps;                /* 50 */
    double shift, guidance;   /* 5.0, 5.0 */
    int size_multiple;        /* width and height must be multiples of this (16) */
    int frame_multiple;       /* frames = k·frame_multiple + 1 (4) */
    int has_text_encoder;
} vd_pipeline_info;

vd_status vd_pipeline_get_info(const vd_pipeline *p, vd_pipeline_info *out);

typedef enum vd_sampler_type { VD_SAMPLE_UNIPC = 0, VD_SAMPLE_EULER = 1 } vd_sampler_type;

typedef enum vd_stage {
    VD_STAGE_ENCODE_TEXT = 0, /* prompt → embeddings */
    VD_STAGE_SAMPLE = 1,      /* denoising steps */
    VD_STAGE_DECODE = 2,      /* latent → frames */
    VD_STAGE_DONE = 3
} vd_stage;

const char *vd_stage_name(vd_stage stage); /* "encode", "sample", "decode", "done" */

/* Memory of a CUDA device, as vdiff's allocator counts it. */
typedef struct vd_device_memory {
    char device[32];            /* "cuda:0" */
    uint64_t in_use_bytes;      /* held by tensors now */
    uint64_t cached_bytes;      /* freed, kept by the allocator for reuse */
    uint64_t peak_bytes;        /* the most ever in use at once */
    uint64_t free_bytes, total_bytes; /* the device's, as the driver reports them */
} vd_device_memory;

/* The memory of the device a stage runs on: VD_STAGE_ENCODE_TEXT the text
 * encoder's, VD_STAGE_SAMPLE the DiT's, VD_STAGE_DECODE the VAE's.  The
 * counters belong to the device, which every pipeline of the process that
 * uses it shares; peak_bytes counts from when the process first opened it.
 * A CPU device fails with VD_ERR_UNSUPPORTED (out->device is still set). */
vd_status vd_pipeline_device_memory(const vd_pipeline *p, vd_stage stage, vd_device_memory *out);

typedef struct vd_progress {
    vd_stage stage;
    int step;        /* steps (or decoded latent frames) completed in this stage */
    int total;       /* of this many */
    double elapsed;  /* seconds since vd_pipeline_generate began */
    double eta;      /* estimated seconds until this stage completes; < 0 if unknown */
} vd_progress;

typedef void (*vd_progress_fn)(void *user, const vd_progress *progress);

/* n frames of width × height packed RGB (3 bytes a pixel, rows of 3·width
 * bytes), frame indices first .. first + n − 1.  Return non-zero to stop. */
typedef int (*vd_frames_fn)(void *user, const uint8_t *rgb, int first, int n, int width, int height);

typedef struct vd_request_params {
    const char *prompt;           /* needs a text encoder */
    const char *negative_prompt;  /* NULL or "": the model's default negative prompt */
    /* Alternatively, precomputed text-encoder outputs (rows × text_dim f32): */
    const float *context;
    int context_rows;
    const float *negative_context;
    int negative_rows;

    int width, height, frames;    /* 0 = the model's default */
    int steps;                    /* 0 = default */
    double shift;                 /* 0 = default */
    double guidance;              /* < 0 = default; 1 disables the uncond pass */
    vd_sampler_type sampler;
    uint64_t seed;
    const float *noise;           /* optional explicit noise [C, T, h, w]; overrides seed */

    vd_progress_fn on_progress;
    vd_frames_fn on_frames;
    void *user;

    float *latent_out;            /* optional: receives the final latent [C, T, h, w] */
    float *video_out;             /* optional: receives [3, F, H, W] in [−1, 1] */
} vd_request_params;

vd_request_params vd_request_params_default(void);

/* Generate one clip (blocking).  `request` may be NULL (not cancellable). */
vd_status vd_pipeline_generate(vd_pipeline *p, const vd_request_params *params, vd_request *request);

/* Latent geometry of a request on this pipeline (after defaults): the
 * sizes of latent_out / noise.  Fails for invalid sizes with the reason. */
vd_status vd_pipeline_latent_shape(const vd_pipeline *p, const vd_request_params *params, int64_t shape[4]);

/* A cancellation handle, reusable across generations. */
vd_status vd_request_new(vd_request **out);
void vd_request_cancel(vd_request *r);     /* any thread, any time */
void vd_request_reset(vd_request *r);      /* clear a cancellation */
void vd_request_free(vd_request *r);

/* The reference's default negative prompt (Chinese, from Wan's shared_config). */
const char *vd_default_negative_prompt(void);

/* Validate a DisTorch2-style allocation string ("cuda:0,2.5gb;cpu,*",
 * "cuda:0,8%;cpu,4%", "virtual_vram_gb=4;donors=cuda:1,cpu").  On error the
 * message quotes the bad part. */
vd_status vd_allocation_validate(const char *allocation);

#ifdef __cplusplus
}
#endif
#endif

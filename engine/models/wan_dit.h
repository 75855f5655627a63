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
#include "offload/allocation.h"
#include "offload/layout.h"
#include "offload/plan.h"
#include "offload/streamer.h"

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

/* ---- offloading (DESIGN.md "Donor offloading", offload/plan.h) ------------
 *
 * A DiT is cut into units: unit 0, the stem (patch, text and time
 * embeddings, time projection, head and its modulation), and unit i + 1 =
 * block i.  Each unit's tensors are packed contiguously in execution order
 * (offload/layout.h).  A model loaded with a plan keeps each unit on its
 * tier; the forward pass binds a streamed block's tensors to the ring slot
 * its bytes were copied into (acquire → bind → run → release), so cond and
 * uncond (one batch) read each streamed byte once per pass.  Without a plan
 * (vd_dit_load) nothing changes: one buffer per tensor, all resident. */

/* The units of the DiT in `w`, with their packed sizes (no device needed). */
vd_status vd_dit_layout(const vd_weights *w, vd_pack_layout **out);

/* Load with a plan made over vd_dit_layout's units (plan->compute must be
 * the backend's GPU).  CUDA: resident units in VRAM, donor units in their
 * GPU's memory, host units in pinned memory (pageable if pinning fails; see
 * the report's warnings), a ring of plan->depth slots on the compute GPU.
 * CPU backend: every unit packed in host memory and the streamed ones
 * copied through a host ring by the same schedule (for tests: the output
 * equals vd_dit_load's bit for bit).  A build without CUDA refuses a CUDA
 * backend here ("offloading needs a CUDA build").  opt NULL = defaults. */
vd_status vd_dit_load_planned(vd_backend *be, const vd_weights *w, const vd_plan *plan, const vd_offload_options *opt,
                              vd_dit **out);

typedef struct vd_dit_offload_report {
    const vd_plan *plan;           /* the plan the model was loaded with */
    int units, streamed, depth;
    uint64_t resident_bytes;       /* packed units on the compute device */
    uint64_t ring_bytes;
    uint64_t host_pinned_bytes;
    uint64_t host_pageable_bytes;  /* pinning failed or was limited (slower, blocks the host) */
    uint64_t donor_bytes[VD_PLAN_MAX_GPUS];
    bool donor_staged[VD_PLAN_MAX_GPUS]; /* copies go through pinned host memory (no peer access) */
    bool simulated;                /* link speeds capped: every number is SIMULATED */
    vd_streamer_stats stream;      /* copies so far */
    char warnings[512];            /* for the user; empty when all went as planned */
} vd_dit_offload_report;

/* What a model loaded with a plan holds where, and what it has copied. */
vd_status vd_dit_offload_report_get(const vd_dit *m, vd_dit_offload_report *out);

/* Activations and scratch of one forward pass of `batch` samples at latent
 * frames × height × width on a GPU: an upper estimate (the workspace, the
 * largest op scratch, the embedded prompts, allocator rounding, cuBLASLt's
 * workspace). */
uint64_t vd_dit_activation_bytes(const vd_dit_config *c, int batch, int64_t frames, int64_t height, int64_t width);

/* Seconds one block takes per pass (batch 2: cond and uncond) at latent
 * frames × height × width on `be`: block 0 is loaded, run once to warm up,
 * then `repeats` times.  Frees everything it allocated (the allocator
 * keeps its cache; see vd_backend_cuda_release_cached). */
vd_status vd_dit_time_block(vd_backend *be, const vd_weights *w, int64_t frames, int64_t height, int64_t width,
                            int repeats, double *seconds);

typedef struct vd_dit_allocation {
    const vd_allocation *alloc;    /* parsed; NULL or resident: vd_dit_load */
    const char *text;              /* as written, for messages */
    int64_t frames, height, width; /* latent size the activations are planned for */
    uint64_t budget_bytes;         /* cap on the compute GPU; 0 = the allocation's, else (auto) free − reserve */
    uint64_t reserve_bytes;        /* VRAM left for other models on the GPU (auto's default budget) */
    int depth;                     /* ring slots; 0 = 2 */
} vd_dit_allocation;

/* Plan by an allocation string on this machine (auto mode measures one
 * block's time at the latent size and each link's speed) and load: what
 * the pipeline does.  A resident allocation is vd_dit_load. */
vd_status vd_dit_load_with_allocation(vd_backend *be, const vd_weights *w, const vd_dit_allocation *a, vd_dit **out);

#endif

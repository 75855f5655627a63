/* The placement planner: where each unit of a model's weights lives while
 * it runs, how big the staging ring on the compute GPU is, how much VRAM
 * that takes, and what a pass should cost.  Pure C: the caller measures
 * (or invents, in tests) the devices, the compute time and the links.
 *
 * Units.  units[0] is the "stem" (embeddings, head, small parameters); it
 * is needed at both ends of every pass and by the text embedding, so it
 * always stays resident on the compute GPU and its bytes count against the
 * compute GPU's share first.  units[1..] are the transformer blocks in
 * execution order.  A unit is packed contiguously and moves as one copy.
 *
 * Tiers.  RESIDENT: in VRAM of the compute GPU for the model's lifetime.
 * DONOR: in VRAM of another GPU, copied peer-to-peer (or staged through
 * pinned host memory where peer access is off).  HOST: in pinned host RAM.
 * Blocks on DONOR/HOST tiers are "streamed": before block i computes, its
 * bytes are copied into one of `depth` ring slots on the compute GPU; the
 * copy of the block that follows d streamed blocks later starts as soon as
 * block i has finished with its slot.  One copy stream per link (host, each
 * donor), so different links run concurrently.
 *
 * Modes (the DisTorch2 strings, docs/distorch.md §1.2; offload/allocation.h):
 *   bytes     devices take min(request, what is left) in the listed order;
 *             '*' takes the rest; without '*' the rest goes to cpu.
 *   ratio     without '*': shares in proportion to the percentages
 *             (8%,8%,4% = 40/40/20); with '*': percentages of the model,
 *             '*' takes the rest (they may add up to at most 100%).
 *   fraction  value × the device's total memory, in the listed order; '*'
 *             takes the rest; without '*' the rest stays on the compute GPU
 *             (DisTorch's "orphans").
 *   virtual   the compute GPU keeps (model − virtual VRAM); donors, in the
 *             listed order, take min(what is left, their total memory);
 *             what no donor can take stays on the compute GPU.
 *   auto      everything resident if it fits the budget; otherwise the
 *             fewest blocks that make the plan fit are streamed, over every
 *             other GPU and the host, in proportion to the links' measured
 *             bandwidth (capped by what each source can hold).
 *   resident  (empty string) everything on the compute GPU.
 * Shares become whole blocks by the midpoint rule: a block goes to the
 * device whose share (laid end to end in the listed order, after the stem)
 * contains the middle of the block, so every share is honoured to within
 * half a block.
 *
 * Positions (which blocks stream), unlike DisTorch2's first-fit from the
 * tail, which scatters leaf modules over leftover quota:
 *   SPREAD (default)  the streamed blocks are spread evenly over the pass,
 *                     and the sources interleave in proportion to their
 *                     counts.  Every resident block between two streamed
 *                     ones is compute time their links can copy under, so
 *                     this hides the most transfer per VRAM byte (a link
 *                     slower than compute still keeps up while it carries
 *                     at most compute/transfer of the blocks).
 *   CONTIGUOUS        each source's blocks form one contiguous run, at the
 *                     start of the pass, in the listed order of the sources
 *                     (the runs DisTorch2 users picture; only the first
 *                     `depth` copies of a run hide under resident compute).
 *
 * Prediction.  With a per-block compute time and a bandwidth for every link
 * in use, the planner replays the streamer's schedule for several passes
 * (copies FIFO per link; a copy waits for its slot's previous block; a
 * block waits for its copy and the block before it) and reports the last
 * pass: with a ring of ≥ 2 slots over one link this is
 * Σ_blocks max(compute_i, transfer_i); resident blocks between streamed
 * ones let the links run ahead (less than that sum); a ring of 1 slot
 * serialises copy and compute (Σ compute + transfer).  The stem's compute,
 * the sampler between passes and host-side stalls (pageable memory) are
 * not modelled. */
#ifndef VD_OFFLOAD_PLAN_H
#define VD_OFFLOAD_PLAN_H

#include <stdbool.h>
#include <stdint.h>

#include "offload/allocation.h"
#include "vdiff/status.h"

#define VD_PLAN_MAX_GPUS 16
#define VD_PLAN_MAX_UNITS 512
#define VD_PLAN_DEFAULT_DEPTH 2
#define VD_PLAN_MAX_DEPTH 16
/* Links: VD_LINK_HOST, then VD_LINK_DONOR(ordinal). */
#define VD_PLAN_MAX_LINKS (1 + VD_PLAN_MAX_GPUS)
#define VD_LINK_HOST 0
#define VD_LINK_DONOR(ordinal) (1 + (ordinal))

typedef enum vd_tier { VD_TIER_RESIDENT = 0, VD_TIER_DONOR, VD_TIER_HOST } vd_tier;

typedef enum vd_plan_positions { VD_PLACE_SPREAD = 0, VD_PLACE_CONTIGUOUS } vd_plan_positions;

typedef struct vd_plan_unit_in {
    const char *name;   /* "stem", "block 0", ... (messages) */
    uint64_t bytes;     /* packed size at storage dtype */
    double compute_s;   /* this unit's compute per pass; 0 = the input's block_compute_s (the stem: 0) */
} vd_plan_unit_in;

typedef struct vd_plan_gpu {
    int index;             /* CUDA ordinal */
    uint64_t total_bytes;
    uint64_t free_bytes;
    bool peer;             /* peer copies to the compute GPU work (else staged through host) */
    char name[64];         /* "NVIDIA H200"; may be empty */
} vd_plan_gpu;

typedef struct vd_plan_input {
    const vd_plan_unit_in *units;  /* units[0] = stem, then the blocks in execution order */
    int n_units;
    int compute;                   /* CUDA ordinal of the compute GPU */
    const vd_plan_gpu *gpus;       /* every GPU present (the compute GPU included) */
    int n_gpus;
    uint64_t host_total_bytes;     /* 0 = unknown (fraction mode of cpu then fails) */
    uint64_t host_free_bytes;      /* 0 = unknown (no check of the host tier) */
    const vd_allocation *alloc;    /* parsed allocation (NULL = resident) */
    const char *alloc_text;        /* as the user wrote it, quoted in messages */
    uint64_t activation_bytes;     /* activations and scratch of one pass on the compute GPU */
    uint64_t budget_bytes;         /* cap on the compute GPU (resident + ring + activations); 0 = the
                                      allocation's ("auto,12gb"), else none (auto: the free memory) */
    int depth;                     /* ring slots; 0 = VD_PLAN_DEFAULT_DEPTH */
    vd_plan_positions positions;
    double block_compute_s;        /* seconds per block per pass (both CFG halves); 0 = unknown */
    double link_bps[VD_PLAN_MAX_LINKS]; /* bytes/s per link (VD_LINK_*); 0 = unknown */
    bool simulated;                /* the link speeds are simulated caps (said in the notes) */
} vd_plan_input;

typedef struct vd_plan_place {
    vd_tier tier;
    int device;    /* DONOR: the donor's CUDA ordinal; else -1 */
} vd_plan_place;

typedef struct vd_plan {
    vd_alloc_mode mode;
    int n_units;
    vd_plan_place units[VD_PLAN_MAX_UNITS];
    int compute;
    int depth_requested;
    int depth;                  /* ring slots: min(depth_requested, streamed blocks) */
    int n_streamed;             /* blocks on DONOR or HOST tiers */
    uint64_t slot_bytes;        /* the largest streamed unit */
    uint64_t ring_bytes;        /* depth × slot_bytes */
    uint64_t stem_bytes;
    uint64_t resident_bytes;    /* stem + resident blocks */
    uint64_t host_bytes;
    uint64_t donor_bytes[VD_PLAN_MAX_GPUS]; /* by ordinal */
    uint64_t activation_bytes;
    uint64_t vram_bytes;        /* on the compute GPU: resident + ring + activations */
    uint64_t budget_bytes;      /* the cap that was applied; 0 = none */
    bool has_prediction;
    bool simulated;
    double compute_s;           /* Σ block compute per pass (the all-resident time) */
    double predicted_s;         /* one pass in steady state */
    double link_busy_s[VD_PLAN_MAX_LINKS]; /* copy time per pass on each link */
    char notes[1536];           /* "; "-separated remarks for the user (may be empty) */
} vd_plan;

/* Plan by the allocation's mode.  Errors (VD_ERR_INVALID_ARGUMENT, quoting
 * the part of the allocation at fault): an unknown device (cuda:7 on a
 * 1-GPU machine), a donor that is the compute GPU, a compute device other
 * than `compute`, a request above a device's memory, placed bytes above a
 * device's free memory, a plan above the budget, a budget below what the
 * stem, the ring and the activations need (with that amount). */
vd_status vd_plan_make(const vd_plan_input *in, vd_plan *out);

/* The same bookkeeping, checks and prediction for tiers given per unit
 * (units[0] must be RESIDENT); for benchmarks and tests. */
vd_status vd_plan_from_places(const vd_plan_input *in, const vd_plan_place *places, vd_plan *out);

/* Replay the schedule of `plan` with the input's compute time and links
 * (sets has_prediction, predicted_s, link_busy_s; false if something is
 * unknown). */
bool vd_plan_predict(const vd_plan_input *in, vd_plan *plan);

const char *vd_tier_name(vd_tier t);   /* "resident", "donor", "host" */

/* Link speed caps for simulating slower links: "6.8" (GB/s, every link) or
 * "host=6.8,cuda:1=50.8".  Decimal GB/s.  Empty or NULL: no caps. */
typedef struct vd_link_sim {
    bool active;
    double bps[VD_PLAN_MAX_LINKS];  /* bytes/s cap per link; 0 = not capped */
} vd_link_sim;

vd_status vd_link_sim_parse(const char *text, vd_link_sim *out);
/* From the environment variable VD_SIMULATE_LINK_GBPS (errors name it). */
vd_status vd_link_sim_from_env(vd_link_sim *out);
/* The cap for a link (0 = none). */
double vd_link_sim_cap(const vd_link_sim *s, int link);
/* "host" / "cuda:1" */
const char *vd_link_name(int link, char *buf, int size);

/* Host memory from /proc/meminfo (0, 0 where unavailable). */
void vd_plan_host_memory(uint64_t *total_bytes, uint64_t *available_bytes);

#endif

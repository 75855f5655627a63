/* Packing a model's units onto their tiers at load (CUDA builds only).
 *
 * Each unit of the layout becomes one buffer on the tier the plan gives it:
 *   RESIDENT  VRAM of the compute GPU, from its backend's allocator (an
 *             exact, uncached allocation, counted in its statistics)
 *   DONOR     VRAM of the donor GPU (cudaMalloc there); peer access from
 *             the compute GPU is enabled where the GPUs allow it (and
 *             VD_OFFLOAD_NO_PEER is not set), else copies stage through
 *             pinned host memory
 *   HOST      pinned host memory (cudaHostAlloc, portable); if pinning
 *             fails or the options' pin limit is reached: pageable memory
 *             and a warning (copies from it are slower and block the host)
 * Host units are written straight from the memory-mapped file; device
 * units through two bounded pinned staging buffers (so the model is never
 * copied whole into RAM a second time).  Storage dtypes are kept. */
#ifndef VD_OFFLOAD_PACKING_H
#define VD_OFFLOAD_PACKING_H

#include <stdbool.h>
#include <stdint.h>

#include "backend/backend.h"
#include "offload/layout.h"
#include "offload/plan.h"
#include "offload/streamer.h"

typedef struct vd_packed_unit {
    vd_tier tier;
    int device;          /* the GPU that holds it (compute or donor); -1: host */
    void *data;          /* device address (RESIDENT, DONOR) or host address (HOST) */
    uint64_t bytes;
    bool pinned;         /* HOST: page-locked */
    vd_buffer *buf;      /* RESIDENT: the compute backend's allocation */
} vd_packed_unit;

typedef struct vd_packed_model {
    vd_backend *be;      /* the compute GPU's backend */
    int n;
    vd_packed_unit *units;
    uint64_t resident_bytes, pinned_bytes, pageable_bytes;
    uint64_t donor_bytes[VD_PLAN_MAX_GPUS];
    bool donor_peer[VD_PLAN_MAX_GPUS];  /* peer access on: copies go GPU to GPU */
    char warnings[512];
} vd_packed_model;

vd_status vd_pack_model(vd_backend *be, const vd_pack_layout *l, const vd_plan *plan, const vd_offload_options *o,
                        vd_packed_model **out);
/* Frees every buffer (waits for the compute stream first); NULL ignored. */
void vd_packed_model_free(vd_packed_model *pm);

#endif

/* The CUDA weight streamer (CUDA builds only).
 *
 * A ring of plan->depth slots on the compute GPU, each the size of the
 * largest streamed unit (exact allocations from the compute backend's
 * allocator, so its statistics show them).  One copy stream per source
 * link: the host (pinned or pageable units), and each donor GPU (peer
 * copies; without peer access, chunks go donor → pinned bounce buffer on a
 * stream of the donor, then bounce → slot, double-buffered with events).
 * Per slot two events: copy_done (recorded on the link stream after the
 * copy) and compute_done (recorded on the compute stream after the ops of
 * the block that read the slot).  A copy into a slot waits for both, the
 * compute stream waits for copy_done before the block's first op: the
 * host never blocks (pageable host memory aside), and the copy of block
 * i + depth runs while block i computes.  The schedule is offload/ring.h.
 *
 * Link simulation: with a cap for a link (vd_offload_options.sim), every
 * copy on it is cut into 8 MiB chunks and a host function on its stream
 * holds each chunk back until the link, at the cap, would be free: a
 * "SIMULATED" slower link.  CUDA may run the host functions of different
 * streams one at a time, so simulate one link at a time for exact figures. */
#ifndef VD_OFFLOAD_STREAMING_H
#define VD_OFFLOAD_STREAMING_H

#include <stdbool.h>
#include <stdint.h>

#include "backend/backend.h"
#include "offload/packing.h"
#include "offload/plan.h"
#include "offload/streamer.h"

vd_status vd_streamer_cuda_new(vd_backend *be, const vd_packed_model *pm, const vd_plan *plan,
                               const vd_offload_options *o, vd_streamer **out);

/* Bytes/s of a `bytes` copy over `link` (VD_LINK_HOST from pinned host
 * memory, or VD_LINK_DONOR(g) from cuda:g: peer if `peer`, else staged) to
 * be's GPU, through the streamer's copy path (simulation caps included).
 * One warm-up copy, then one timed copy. */
vd_status vd_offload_measure_link(vd_backend *be, int link, uint64_t bytes, const vd_offload_options *o, bool peer,
                                  double *bps);

#endif

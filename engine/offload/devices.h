/* The GPUs of this machine as the planner sees them (CUDA builds only;
 * callers check VD_HAVE_CUDA and otherwise report that offloading needs a
 * CUDA build). */
#ifndef VD_OFFLOAD_DEVICES_H
#define VD_OFFLOAD_DEVICES_H

#include <stdbool.h>
#include <stdint.h>

#include "offload/plan.h"
#include "offload/streamer.h"

/* Every GPU: ordinal, name, total memory, and peer access to `compute`
 * (cudaDeviceCanAccessPeer, off when o->no_peer).  Free memory is queried
 * (which starts a CUDA context there) for `compute` and the GPUs whose bit
 * is set in free_mask (bit g = cuda:g; ~0u = all); for the others free is
 * reported as their total.  *n = how many (at most max). */
vd_status vd_offload_gpus(int compute, const vd_offload_options *o, uint32_t free_mask, vd_plan_gpu *out, int max,
                          int *n);

/* Let `compute` read `donor`'s memory directly (cudaDeviceEnablePeerAccess;
 * already enabled is fine).  False where the GPUs cannot (the caller then
 * stages through host memory). */
bool vd_offload_enable_peer(int compute, int donor);

#endif

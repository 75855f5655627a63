#include "offload/devices.h"

#include <stdio.h>
#include <string.h>

#include <cuda_runtime.h>

#include "core/error.h"

static vd_status fail(cudaError_t e, const char *what, int dev)
{
    cudaGetLastError();
    return vd_error(VD_ERR_DEVICE, "cuda:%d: %s failed: %s (%s)", dev, what, cudaGetErrorString(e),
                    cudaGetErrorName(e));
}

vd_status vd_offload_gpus(int compute, const vd_offload_options *o, uint32_t free_mask, vd_plan_gpu *out, int max,
                          int *n)
{
    *n = 0;
    int count = 0, prev = 0;
    cudaError_t e = cudaGetDeviceCount(&count);
    if (e != cudaSuccess) {
        cudaGetLastError();
        return vd_error(VD_ERR_DEVICE, "no usable CUDA device (%s: %s); check the NVIDIA driver (nvidia-smi)",
                        cudaGetErrorName(e), cudaGetErrorString(e));
    }
    if (compute < 0 || compute >= count)
        return vd_error(VD_ERR_DEVICE, "cuda:%d requested, but this machine has %d CUDA device(s)", compute, count);
    if ((e = cudaGetDevice(&prev)) != cudaSuccess)
        return fail(e, "cudaGetDevice", compute);
    vd_status st = VD_OK;
    for (int g = 0; g < count && g < max && g < VD_PLAN_MAX_GPUS && st == VD_OK; g++) {
        vd_plan_gpu *d = &out[*n];
        memset(d, 0, sizeof *d);
        d->index = g;
        struct cudaDeviceProp prop;
        if ((e = cudaGetDeviceProperties(&prop, g)) != cudaSuccess) {
            st = fail(e, "cudaGetDeviceProperties", g);
            break;
        }
        snprintf(d->name, sizeof d->name, "%s", prop.name);
        d->total_bytes = prop.totalGlobalMem;
        d->free_bytes = prop.totalGlobalMem;
        if (g == compute || (g < 32 && ((free_mask >> g) & 1u))) {
            size_t fb = 0, tb = 0;
            if ((e = cudaSetDevice(g)) != cudaSuccess || (e = cudaMemGetInfo(&fb, &tb)) != cudaSuccess) {
                st = fail(e, "querying its memory", g);
                break;
            }
            d->free_bytes = fb;
            d->total_bytes = tb;
        }
        if (g != compute) {
            int can = 0;
            if ((e = cudaDeviceCanAccessPeer(&can, compute, g)) != cudaSuccess) {
                st = fail(e, "cudaDeviceCanAccessPeer", g);
                break;
            }
            d->peer = can && !(o && o->no_peer);
        }
        (*n)++;
    }
    cudaSetDevice(prev);
    return st;
}

bool vd_offload_enable_peer(int compute, int donor)
{
    int can = 0, prev = 0;
    if (cudaDeviceCanAccessPeer(&can, compute, donor) != cudaSuccess || !can) {
        cudaGetLastError();
        return false;
    }
    cudaGetDevice(&prev);
    cudaError_t e = cudaSetDevice(compute);
    if (e == cudaSuccess)
        e = cudaDeviceEnablePeerAccess(donor, 0);
    if (e == cudaErrorPeerAccessAlreadyEnabled)
        e = cudaSuccess;
    cudaGetLastError();
    cudaSetDevice(prev);
    return e == cudaSuccess;
}

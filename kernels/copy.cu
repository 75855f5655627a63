/* Strided copy and fill: one thread per element; the element's offsets
 * come from its linear index by division over the (merged) dimensions. */
#include "copy.h"

#include <cuda_runtime.h>

#include "decode.cuh"

namespace {

constexpr int kThreads = 256;

struct walk {
    int ndim;
    int64_t shape[5];
    int64_t stride[2][5];
};

__device__ __forceinline__ void offsets(const walk &w, int64_t i, int64_t &o0, int64_t &o1)
{
    o0 = o1 = 0;
#pragma unroll
    for (int d = 4; d >= 0; d--) { /* fixed trip count: the walk stays in registers */
        if (d >= w.ndim)
            continue;
        const int64_t n = w.shape[d];
        const int64_t q = i / n, idx = i - q * n;
        o0 += idx * w.stride[0][d];
        o1 += idx * w.stride[1][d];
        i = q;
    }
}

template <typename T>
__global__ void copy_same_kernel(walk w, int64_t n, const T *src, T *dst)
{
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x) {
        int64_t os, od;
        offsets(w, i, os, od);
        dst[od] = src[os];
    }
}

__global__ void copy_convert_kernel(walk w, int64_t n, int dtype, float scale, const uint8_t *src,
                                    float *dst)
{
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x) {
        int64_t os, od;
        offsets(w, i, os, od);
        dst[od] = vdk::plain_at(dtype, src, os) * scale;
    }
}

__global__ void fill_kernel(walk w, int64_t n, float *__restrict__ t, float value)
{
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x) {
        int64_t o, unused;
        offsets(w, i, o, unused);
        t[o] = value;
    }
}

unsigned grid_for(int64_t n)
{
    const int64_t blocks = (n + kThreads - 1) / kThreads;
    return (unsigned)(blocks < 65535 * 16 ? (blocks > 0 ? blocks : 1) : 65535 * 16);
}

bool to_walk(const vd_cuda_walk *in, walk &w, int64_t &n)
{
    if (in->ndim < 1 || in->ndim > 5)
        return false;
    w.ndim = in->ndim;
    n = 1;
    for (int d = 0; d < 5; d++) {
        w.shape[d] = d < in->ndim ? in->shape[d] : 1;
        w.stride[0][d] = d < in->ndim ? in->stride[0][d] : 0;
        w.stride[1][d] = d < in->ndim ? in->stride[1][d] : 0;
        if (d < in->ndim) {
            if (w.shape[d] < 1)
                return false;
            n *= w.shape[d];
        }
    }
    return true;
}

} // namespace

extern "C" int vd_cuda_copy_strided(const vd_cuda_walk *in, int convert, int src_dtype, int elem_bytes, float scale,
                                    const void *src, void *dst, void *stream)
{
    walk w;
    int64_t n;
    if (!to_walk(in, w, n))
        return (int)cudaErrorInvalidValue;
    cudaStream_t s = (cudaStream_t)stream;
    const unsigned g = grid_for(n);
    if (convert) {
        if (vdk::block_of(src_dtype).elems != 1)
            return (int)cudaErrorInvalidValue;
        copy_convert_kernel<<<g, kThreads, 0, s>>>(w, n, src_dtype, scale, (const uint8_t *)src, (float *)dst);
    } else {
        switch (elem_bytes) {
        case 1: copy_same_kernel<<<g, kThreads, 0, s>>>(w, n, (const uint8_t *)src, (uint8_t *)dst); break;
        case 2: copy_same_kernel<<<g, kThreads, 0, s>>>(w, n, (const uint16_t *)src, (uint16_t *)dst); break;
        case 4: copy_same_kernel<<<g, kThreads, 0, s>>>(w, n, (const uint32_t *)src, (uint32_t *)dst); break;
        case 8: copy_same_kernel<<<g, kThreads, 0, s>>>(w, n, (const unsigned long long *)src, (unsigned long long *)dst); break;
        default: return (int)cudaErrorInvalidValue;
        }
    }
    return (int)cudaGetLastError();
}

extern "C" int vd_cuda_fill_strided(const vd_cuda_walk *in, float *t, float value, void *stream)
{
    walk w;
    int64_t n;
    if (!to_walk(in, w, n))
        return (int)cudaErrorInvalidValue;
    fill_kernel<<<grid_for(n), kThreads, 0, (cudaStream_t)stream>>>(w, n, t, value);
    return (int)cudaGetLastError();
}

/* bf16 → f32: a bf16 is the top half of an f32, so the conversion is a
 * shift and exact.  Four elements per thread (8-byte loads, 16-byte
 * stores) when both pointers and n allow it, one otherwise. */
#include "bf16_convert.h"

#include <cuda_runtime.h>

namespace {

constexpr int kThreads = 256;

__device__ __forceinline__ float bf16_bits_to_f32(uint32_t h) { return __uint_as_float(h << 16); }

__global__ void bf16_to_f32_kernel(const uint16_t *__restrict__ src, float *__restrict__ dst, int64_t n)
{
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x)
        dst[i] = bf16_bits_to_f32(src[i]);
}

__global__ void bf16_to_f32_vec4_kernel(const uint2 *__restrict__ src, float4 *__restrict__ dst, int64_t n4)
{
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n4; i += (int64_t)gridDim.x * blockDim.x) {
        const uint2 p = src[i]; /* bf16 0 and 1 in p.x (0 in the low half), 2 and 3 in p.y */
        float4 o;
        o.x = bf16_bits_to_f32(p.x & 0xffffu);
        o.y = bf16_bits_to_f32(p.x >> 16);
        o.z = bf16_bits_to_f32(p.y & 0xffffu);
        o.w = bf16_bits_to_f32(p.y >> 16);
        dst[i] = o;
    }
}

unsigned grid_for(int64_t n)
{
    const int64_t blocks = (n + kThreads - 1) / kThreads;
    return (unsigned)(blocks < 65535 * 16 ? (blocks > 0 ? blocks : 1) : 65535 * 16);
}

} // namespace

extern "C" int vd_cuda_bf16_to_f32(const void *src, float *dst, int64_t n, void *stream)
{
    if (n <= 0)
        return 0;
    cudaStream_t s = (cudaStream_t)stream;
    if (((uintptr_t)src & 7) == 0 && ((uintptr_t)dst & 15) == 0 && n % 4 == 0)
        bf16_to_f32_vec4_kernel<<<grid_for(n / 4), kThreads, 0, s>>>((const uint2 *)src, (float4 *)dst, n / 4);
    else
        bf16_to_f32_kernel<<<grid_for(n), kThreads, 0, s>>>((const uint16_t *)src, dst, n);
    return (int)cudaGetLastError();
}

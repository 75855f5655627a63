/* Decoding stored weights and tables on the GPU: one thread per output
 * element, each decoding its own element with the formulas of decode.cuh.
 * Simple and exact; the redundant scale reads of a block hit the cache.
 * (Performance idea: one warp per block, the scales read once, 16-byte
 * stores.) */
#include "dequant.h"

#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include "decode.cuh"

namespace {

constexpr int kThreads = 256;

__device__ __forceinline__ void store(float *dst, int64_t i, float v) { dst[i] = v; }
__device__ __forceinline__ void store(__nv_bfloat16 *dst, int64_t i, float v) { dst[i] = __float2bfloat16_rn(v); }

template <typename Out>
__global__ void dequant_rows_kernel(int dtype, const uint8_t *__restrict__ src, int64_t row_bytes,
                                    const int32_t *__restrict__ ids, int64_t row0, int64_t rows, int64_t cols,
                                    float scale, Out *__restrict__ dst)
{
    const int64_t n = rows * cols;
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x) {
        const int64_t r = i / cols, c = i - r * cols;
        const int64_t R = ids ? (int64_t)ids[r] : row0 + r;
        float v = vdk::row_at(dtype, src + R * row_bytes, c);
        if (scale != 1.0f)
            v *= scale;
        store(dst, i, v);
    }
}

__global__ void f32_to_bf16_kernel(const float *__restrict__ src, __nv_bfloat16 *__restrict__ dst, int64_t n)
{
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x)
        dst[i] = __float2bfloat16_rn(src[i]);
}

/* float4 → 4 bf16 (8 bytes) when both pointers allow it. */
__global__ void f32_to_bf16_vec4_kernel(const float4 *__restrict__ src, uint2 *__restrict__ dst, int64_t n4)
{
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n4; i += (int64_t)gridDim.x * blockDim.x) {
        const float4 v = src[i];
        const __nv_bfloat162 lo = __floats2bfloat162_rn(v.x, v.y), hi = __floats2bfloat162_rn(v.z, v.w);
        uint2 o;
        o.x = *reinterpret_cast<const uint32_t *>(&lo);
        o.y = *reinterpret_cast<const uint32_t *>(&hi);
        dst[i] = o;
    }
}

/* bf16 → f32: a bf16 is the top half of an f32, so the way back is a shift
 * and exact; four per thread where the pointers allow (the attention
 * output's way back from cuDNN's bf16). */
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

extern "C" int vd_cuda_dequant_rows(int dtype, const void *src, int64_t row_bytes, const int32_t *ids, int64_t row0,
                                    int64_t rows, int64_t cols, float scale, int out_type, void *dst, void *stream)
{
    if (dtype < 0 || dtype >= VDK_DTYPE_COUNT || vdk::block_of(dtype).elems == 0 || cols % vdk::block_of(dtype).elems)
        return (int)cudaErrorInvalidValue;
    const int64_t n = rows * cols;
    if (n <= 0)
        return 0;
    cudaStream_t s = (cudaStream_t)stream;
    if (out_type == VD_CUDA_OUT_BF16)
        dequant_rows_kernel<<<grid_for(n), kThreads, 0, s>>>(dtype, (const uint8_t *)src, row_bytes, ids, row0, rows,
                                                             cols, scale, (__nv_bfloat16 *)dst);
    else
        dequant_rows_kernel<<<grid_for(n), kThreads, 0, s>>>(dtype, (const uint8_t *)src, row_bytes, ids, row0, rows,
                                                             cols, scale, (float *)dst);
    return (int)cudaGetLastError();
}

extern "C" int vd_cuda_f32_to_bf16(const float *src, void *dst, int64_t n, void *stream)
{
    if (n <= 0)
        return 0;
    cudaStream_t s = (cudaStream_t)stream;
    if (((uintptr_t)src & 15) == 0 && ((uintptr_t)dst & 7) == 0 && n % 4 == 0)
        f32_to_bf16_vec4_kernel<<<grid_for(n / 4), kThreads, 0, s>>>((const float4 *)src, (uint2 *)dst, n / 4);
    else
        f32_to_bf16_kernel<<<grid_for(n), kThreads, 0, s>>>(src, (__nv_bfloat16 *)dst, n);
    return (int)cudaGetLastError();
}

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

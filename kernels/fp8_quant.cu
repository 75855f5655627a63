/* Quantising f32 activations to fp8 e4m3 (see fp8_quant.h).
 *
 * Per row: one block per row.  Where the row is float4-aligned and at most
 * 16 float4 per thread long (K <= 16384), it is read once into registers,
 * reduced to its amax and quantised from the registers; otherwise it is
 * read twice (the second read mostly from L2).
 * Per tensor: one pass for the amax (an atomicMax on the float's bits,
 * which orders like the value for non-negative floats), one to quantise. */
#include "fp8_quant.h"

#include <cuda_fp8.h>
#include <cuda_runtime.h>

namespace {

constexpr int kThreads = 256;
constexpr float kE4M3Max = 448.0f;

/* scale = amax / 448 and its inverse; 1 for a row that is zero (or so
 * small that 448 / amax would overflow).  fmaxf skips NaN, so a NaN
 * element leaves the scale alone and stays NaN in q. */
__device__ __forceinline__ void scales_for(float amax, float *scale, float *inv)
{
    const bool tiny = !(amax > 1e-30f);
    *scale = tiny ? 1.0f : amax / kE4M3Max;
    *inv = tiny ? 1.0f : kE4M3Max / amax;
}

__device__ __forceinline__ uint8_t to_e4m3(float v)
{
    return (uint8_t)__nv_cvt_float_to_fp8(v, __NV_SATFINITE, __NV_E4M3);
}

/* Four values, the first in the lowest byte (memory order). */
__device__ __forceinline__ uint32_t to_e4m3x4(float4 v, float inv)
{
    const __nv_fp8x2_storage_t lo =
        __nv_cvt_float2_to_fp8x2(make_float2(v.x * inv, v.y * inv), __NV_SATFINITE, __NV_E4M3);
    const __nv_fp8x2_storage_t hi =
        __nv_cvt_float2_to_fp8x2(make_float2(v.z * inv, v.w * inv), __NV_SATFINITE, __NV_E4M3);
    return (uint32_t)lo | ((uint32_t)hi << 16);
}

__device__ __forceinline__ float abs_max4(float m, float4 v)
{
    return fmaxf(m, fmaxf(fmaxf(fabsf(v.x), fabsf(v.y)), fmaxf(fabsf(v.z), fabsf(v.w))));
}

/* The maximum of v over the block, returned to every thread (all threads
 * must call it).  sh: 33 floats of shared memory. */
__device__ float block_max(float v, float *sh)
{
    for (int o = 16; o > 0; o >>= 1)
        v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    __syncthreads(); /* sh may still be read from the previous call */
    if (lane == 0)
        sh[warp] = v;
    __syncthreads();
    if (warp == 0) {
        v = lane < (int)(blockDim.x >> 5) ? sh[lane] : 0.0f;
        for (int o = 16; o > 0; o >>= 1)
            v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
        if (lane == 0)
            sh[32] = v;
    }
    __syncthreads();
    return sh[32];
}

/* Thread t holds float4s t, t + kThreads, ... of the row (at most V). */
template <int V>
__global__ void __launch_bounds__(kThreads)
    quant_rows_vec_kernel(const float4 *__restrict__ x, int64_t rows, int64_t k4, uint32_t *__restrict__ q,
                          float *__restrict__ scales)
{
    __shared__ float sh[33];
    for (int64_t r = blockIdx.x; r < rows; r += gridDim.x) {
        const float4 *xr = x + r * k4;
        float4 v[V];
        float m = 0.0f;
#pragma unroll
        for (int i = 0; i < V; i++) {
            const int64_t j = threadIdx.x + (int64_t)i * kThreads;
            v[i] = j < k4 ? xr[j] : make_float4(0.0f, 0.0f, 0.0f, 0.0f);
            m = abs_max4(m, v[i]);
        }
        float scale, inv;
        scales_for(block_max(m, sh), &scale, &inv);
        if (threadIdx.x == 0)
            scales[r] = scale;
        uint32_t *qr = q + r * k4;
#pragma unroll
        for (int i = 0; i < V; i++) {
            const int64_t j = threadIdx.x + (int64_t)i * kThreads;
            if (j < k4)
                qr[j] = to_e4m3x4(v[i], inv);
        }
    }
}

/* Any K and alignment: two reads of the row. */
__global__ void __launch_bounds__(kThreads)
    quant_rows_kernel(const float *__restrict__ x, int64_t rows, int64_t K, uint8_t *__restrict__ q,
                      float *__restrict__ scales)
{
    __shared__ float sh[33];
    for (int64_t r = blockIdx.x; r < rows; r += gridDim.x) {
        const float *xr = x + r * K;
        float m = 0.0f;
        for (int64_t j = threadIdx.x; j < K; j += kThreads)
            m = fmaxf(m, fabsf(xr[j]));
        float scale, inv;
        scales_for(block_max(m, sh), &scale, &inv);
        if (threadIdx.x == 0)
            scales[r] = scale;
        uint8_t *qr = q + r * K;
        for (int64_t j = threadIdx.x; j < K; j += kThreads)
            qr[j] = to_e4m3(xr[j] * inv);
    }
}

__global__ void __launch_bounds__(kThreads) amax_kernel(const float *__restrict__ x, int64_t n, float *amax)
{
    __shared__ float sh[33];
    float m = 0.0f;
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x)
        m = fmaxf(m, fabsf(x[i]));
    m = block_max(m, sh);
    if (threadIdx.x == 0)
        atomicMax(reinterpret_cast<unsigned int *>(amax), __float_as_uint(m));
}

__global__ void quant_tensor_kernel(const float *__restrict__ x, int64_t n, const float *amax,
                                    uint8_t *__restrict__ q, float *scale)
{
    float s, inv;
    scales_for(*amax, &s, &inv);
    if (blockIdx.x == 0 && threadIdx.x == 0)
        *scale = s;
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x)
        q[i] = to_e4m3(x[i] * inv);
}

unsigned grid_for(int64_t n)
{
    const int64_t blocks = (n + kThreads - 1) / kThreads;
    return (unsigned)(blocks < 65535 * 16 ? (blocks > 0 ? blocks : 1) : 65535 * 16);
}

unsigned grid_rows(int64_t rows) { return (unsigned)(rows < 65535 * 16 ? rows : 65535 * 16); }

template <int V>
void launch_rows_vec(const float *x, int64_t rows, int64_t k4, uint8_t *q, float *scales, cudaStream_t s)
{
    quant_rows_vec_kernel<V><<<grid_rows(rows), kThreads, 0, s>>>(reinterpret_cast<const float4 *>(x), rows, k4,
                                                                  reinterpret_cast<uint32_t *>(q), scales);
}

} // namespace

extern "C" int vd_cuda_quant_e4m3_rows(const float *x, int64_t rows, int64_t K, uint8_t *q, float *scales,
                                       void *stream)
{
    if (rows <= 0 || K <= 0)
        return 0;
    cudaStream_t s = (cudaStream_t)stream;
    const int64_t k4 = K / 4, per_thread = (k4 + kThreads - 1) / kThreads;
    const bool vec = K % 4 == 0 && (uintptr_t)x % 16 == 0 && (uintptr_t)q % 4 == 0;
    if (vec && per_thread <= 1)
        launch_rows_vec<1>(x, rows, k4, q, scales, s);
    else if (vec && per_thread <= 2)
        launch_rows_vec<2>(x, rows, k4, q, scales, s);
    else if (vec && per_thread <= 4)
        launch_rows_vec<4>(x, rows, k4, q, scales, s);
    else if (vec && per_thread <= 8)
        launch_rows_vec<8>(x, rows, k4, q, scales, s);
    else if (vec && per_thread <= 16)
        launch_rows_vec<16>(x, rows, k4, q, scales, s);
    else
        quant_rows_kernel<<<grid_rows(rows), kThreads, 0, s>>>(x, rows, K, q, scales);
    return (int)cudaGetLastError();
}

extern "C" int vd_cuda_quant_e4m3_tensor(const float *x, int64_t n, uint8_t *q, float *scale, float *amax,
                                         void *stream)
{
    if (n <= 0)
        return 0;
    cudaStream_t s = (cudaStream_t)stream;
    cudaError_t e = cudaMemsetAsync(amax, 0, sizeof(float), s);
    if (e != cudaSuccess)
        return (int)e;
    /* few blocks: each ends in an atomic on the same word */
    const unsigned amax_blocks = grid_for(n) < 1024 ? grid_for(n) : 1024;
    amax_kernel<<<amax_blocks, kThreads, 0, s>>>(x, n, amax);
    e = cudaGetLastError();
    if (e != cudaSuccess)
        return (int)e;
    quant_tensor_kernel<<<grid_for(n), kThreads, 0, s>>>(x, n, amax, q, scale);
    return (int)cudaGetLastError();
}

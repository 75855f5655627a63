/* Row norms: one block per row; each thread strides over the row, warp
 * shuffles then one shared-memory step reduce the block.  Statistics are
 * fp32, of the shifted data x − x[0], and the variance is a second pass
 * over the deviations, so a large mean neither swamps nor cancels.  The row is read from global memory on each pass
 * (a 5120-float row stays in L1/L2).  Every element is read by the thread
 * that writes it, after the statistics, so out may equal x.
 *
 * Channel norm: one thread per position p reduces over C values at stride P
 * (consecutive threads read consecutive positions: coalesced). */
#include "norms.h"

#include <cuda_runtime.h>

namespace {

constexpr int kRowThreads = 256;

__device__ __forceinline__ float warp_sum(float v)
{
    for (int o = 16; o > 0; o >>= 1)
        v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
}

/* The sum of v over the block (every thread gets it).  `scratch` holds 32
 * floats; the leading barrier lets consecutive calls reuse it. */
__device__ float block_sum(float v, float *scratch)
{
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = (blockDim.x + 31) >> 5;
    v = warp_sum(v);
    __syncthreads();
    if (lane == 0)
        scratch[warp] = v;
    __syncthreads();
    if (warp == 0) {
        float t = lane < warps ? scratch[lane] : 0.0f;
        t = warp_sum(t);
        if (lane == 0)
            scratch[0] = t;
    }
    __syncthreads();
    return scratch[0];
}

__global__ void __launch_bounds__(kRowThreads) layernorm_kernel(const float *x, float *out, int64_t D, float eps,
                                                                const float *weight, const float *bias,
                                                                const float *shift, int64_t shift_group,
                                                                const float *scale, int64_t scale_group)
{
    __shared__ float scratch[32];
    const int64_t row = blockIdx.x;
    const float *xr = x + row * D;
    /* Statistics of the shifted data x − x[0], and the mean kept as
     * x[0] + mdev: a mean far larger than the spread neither swamps the
     * fp32 sums nor loses the deviations to rounding (x − x[0] is exact for
     * values near x[0]). */
    const float x0 = xr[0];
    float s = 0.0f;
    for (int64_t c = threadIdx.x; c < D; c += blockDim.x)
        s += xr[c] - x0;
    const float mdev = block_sum(s, scratch) / (float)D;
    float v = 0.0f;
    for (int64_t c = threadIdx.x; c < D; c += blockDim.x) {
        const float t = (xr[c] - x0) - mdev;
        v += t * t;
    }
    const float var = block_sum(v, scratch) / (float)D;
    const float rstd = 1.0f / sqrtf(var + eps);
    const float *sh = shift ? shift + row / shift_group * D : nullptr;
    const float *sc = scale ? scale + row / scale_group * D : nullptr;
    float *yr = out + row * D;
    for (int64_t c = threadIdx.x; c < D; c += blockDim.x) {
        float y = ((xr[c] - x0) - mdev) * rstd;
        if (weight)
            y *= weight[c];
        if (bias)
            y += bias[c];
        if (sc)
            y *= 1.0f + sc[c];
        if (sh)
            y += sh[c];
        yr[c] = y;
    }
}

__global__ void __launch_bounds__(kRowThreads) rmsnorm_kernel(const float *x, float *out, int64_t D, float eps,
                                                              const float *weight)
{
    __shared__ float scratch[32];
    const int64_t row = blockIdx.x;
    const float *xr = x + row * D;
    float s = 0.0f;
    for (int64_t c = threadIdx.x; c < D; c += blockDim.x)
        s += xr[c] * xr[c];
    const float ms = block_sum(s, scratch) / (float)D;
    const float inv = 1.0f / sqrtf(ms + eps);
    float *yr = out + row * D;
    for (int64_t c = threadIdx.x; c < D; c += blockDim.x) {
        const float y = xr[c] * inv;
        yr[c] = weight ? y * weight[c] : y;
    }
}

__global__ void channel_rmsnorm_kernel(const float *x, float *out, int64_t C, int64_t P, const float *gamma)
{
    const double root_c = sqrt((double)C);
    for (int64_t p = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; p < P; p += (int64_t)gridDim.x * blockDim.x) {
        /* A sequential sum over C: in double (one multiply-add per element
         * read, still bound by memory), as the CPU backend does. */
        double ss = 0.0;
        for (int64_t c = 0; c < C; c++) {
            const double v = x[c * P + p];
            ss += v * v;
        }
        const float inv = (float)(root_c / fmax(sqrt(ss), 1e-12));
        for (int64_t c = 0; c < C; c++)
            out[c * P + p] = x[c * P + p] * inv * gamma[c];
    }
}

} // namespace

extern "C" int vd_cuda_layernorm_modulate(const float *x, float *out, int64_t M, int64_t D, float eps,
                                          const float *weight, const float *bias, const float *shift,
                                          int64_t shift_group, const float *scale, int64_t scale_group, void *stream)
{
    if (M <= 0 || D <= 0)
        return 0;
    if (M > 0x7fffffff || shift_group < 1 || scale_group < 1)
        return (int)cudaErrorInvalidValue;
    layernorm_kernel<<<(unsigned)M, kRowThreads, 0, (cudaStream_t)stream>>>(x, out, D, eps, weight, bias, shift,
                                                                           shift_group, scale, scale_group);
    return (int)cudaGetLastError();
}

extern "C" int vd_cuda_rmsnorm(const float *x, float *out, int64_t M, int64_t D, float eps, const float *weight,
                               void *stream)
{
    if (M <= 0 || D <= 0)
        return 0;
    if (M > 0x7fffffff)
        return (int)cudaErrorInvalidValue;
    rmsnorm_kernel<<<(unsigned)M, kRowThreads, 0, (cudaStream_t)stream>>>(x, out, D, eps, weight);
    return (int)cudaGetLastError();
}

extern "C" int vd_cuda_channel_rmsnorm(const float *x, float *out, int64_t C, int64_t P, const float *gamma,
                                       void *stream)
{
    if (C <= 0 || P <= 0)
        return 0;
    const int threads = 128;
    int64_t blocks = (P + threads - 1) / threads;
    if (blocks > 65535 * 16)
        blocks = 65535 * 16;
    channel_rmsnorm_kernel<<<(unsigned)blocks, threads, 0, (cudaStream_t)stream>>>(x, out, C, P, gamma);
    return (int)cudaGetLastError();
}

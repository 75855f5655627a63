#include "elementwise.h"

#include <cuda_runtime.h>

namespace {

constexpr int kThreads = 256;

__device__ __forceinline__ float silu(float x) { return x / (1.0f + __expf(-x)); }

__device__ __forceinline__ float gelu_tanh(float x)
{
    const float k = 0.7978845608028654f; /* sqrt(2/pi) */
    return 0.5f * x * (1.0f + tanhf(k * (x + 0.044715f * x * x * x)));
}

__device__ __forceinline__ float gelu_erf(float x) { return 0.5f * x * (1.0f + erff(x * 0.7071067811865476f)); }

__global__ void unary_kernel(int op, const float *__restrict__ x, float *__restrict__ y, int64_t n)
{
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x) {
        float v = x[i];
        y[i] = op == 0 ? silu(v) : (op == 1 ? gelu_tanh(v) : gelu_erf(v));
    }
}

/* Row index of b for element i of a (see the header). */
__device__ __forceinline__ int64_t broadcast_index(int64_t i, int64_t n, int64_t nb, int64_t d)
{
    int64_t rows_a = n / d, rows_b = nb / d;
    int64_t row = i / d;
    return (row / (rows_a / rows_b)) * d + i % d;
}

__global__ void binary_kernel(int op, const float *a, const float *b, float *out, int64_t n, int64_t nb, int64_t d)
{
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x) {
        float bv = b[broadcast_index(i, n, nb, d)];
        out[i] = op == 0 ? a[i] + bv : a[i] * bv;
    }
}

__global__ void add_gated_kernel(const float *x, const float *y, const float *gate, float *out, int64_t n,
                                 int64_t ngate, int64_t d)
{
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x)
        out[i] = x[i] + y[i] * gate[broadcast_index(i, n, ngate, d)];
}

__global__ void fill_kernel(float *x, float v, int64_t n)
{
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x)
        x[i] = v;
}

__global__ void add_bias_rows_kernel(float *y, const float *bias, int64_t rows, int64_t cols, int64_t ld)
{
    const int64_t n = rows * cols;
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x) {
        const int64_t r = i / cols, c = i - r * cols;
        y[r * ld + c] += bias[c];
    }
}

unsigned grid_for(int64_t n)
{
    int64_t blocks = (n + kThreads - 1) / kThreads;
    return (unsigned)(blocks < 65535 * 8 ? (blocks > 0 ? blocks : 1) : 65535 * 8);
}

} // namespace

extern "C" int vd_cuda_unary_f32(int op, const float *x, float *y, int64_t n, void *stream)
{
    unary_kernel<<<grid_for(n), kThreads, 0, (cudaStream_t)stream>>>(op, x, y, n);
    return (int)cudaGetLastError();
}

extern "C" int vd_cuda_binary_f32(int op, const float *a, const float *b, float *out, int64_t n, int64_t nb, int64_t d,
                                  void *stream)
{
    binary_kernel<<<grid_for(n), kThreads, 0, (cudaStream_t)stream>>>(op, a, b, out, n, nb, d);
    return (int)cudaGetLastError();
}

extern "C" int vd_cuda_add_gated_f32(const float *x, const float *y, const float *gate, float *out, int64_t n,
                                     int64_t ngate, int64_t d, void *stream)
{
    add_gated_kernel<<<grid_for(n), kThreads, 0, (cudaStream_t)stream>>>(x, y, gate, out, n, ngate, d);
    return (int)cudaGetLastError();
}

extern "C" int vd_cuda_fill_f32(float *x, float value, int64_t n, void *stream)
{
    fill_kernel<<<grid_for(n), kThreads, 0, (cudaStream_t)stream>>>(x, value, n);
    return (int)cudaGetLastError();
}

extern "C" int vd_cuda_add_bias_rows_f32(float *y, const float *bias, int64_t rows, int64_t cols, int64_t ld,
                                         void *stream)
{
    if (rows <= 0 || cols <= 0)
        return 0;
    add_bias_rows_kernel<<<grid_for(rows * cols), kThreads, 0, (cudaStream_t)stream>>>(y, bias, rows, cols, ld);
    return (int)cudaGetLastError();
}

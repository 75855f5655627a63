/* Wan 3-D RoPE: a small kernel fills cos/sin tables (double) for every
 * position of each axis, then one thread per (token, head, pair) rotates.
 * The angle p·ω, ω = 1 / theta^(2k/n), and the rotation are evaluated in
 * double exactly as engine/backend/cpu/rope.c writes them (the products are
 * rounded separately, no fused multiply-add), so the f32 results agree with
 * the CPU to the last bit except where CUDA's and libm's pow/cos/sin differ
 * in the last bit of a double. */
#include "rope.h"

#include <cuda_runtime.h>

namespace {

constexpr int kThreads = 256;

struct rope_dims {
    int64_t frames, height, width, pt, ps; /* pairs rotated by the frame index; by the row (and by the column) */
};

/* Table layout: cos_t [frames·pt], sin_t, cos_h [height·ps], sin_h, cos_w [width·ps], sin_w. */
__global__ void rope_table_kernel(rope_dims r, double theta, double *table)
{
    const int64_t nt = r.frames * r.pt, nh = r.height * r.ps, nw = r.width * r.ps, n = nt + nh + nw;
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x) {
        int64_t j = i, pairs, base, count;
        if (j < nt) {
            pairs = r.pt;
            base = 0;
            count = nt;
        } else if (j - nt < nh) {
            j -= nt;
            pairs = r.ps;
            base = 2 * nt;
            count = nh;
        } else {
            j -= nt + nh;
            pairs = r.ps;
            base = 2 * nt + 2 * nh;
            count = nw;
        }
        const int64_t p = j / pairs, k = j % pairs;
        const double omega = 1.0 / pow(theta, (double)(2 * k) / (double)(2 * pairs));
        const double a = __dmul_rn((double)p, omega);
        table[base + j] = cos(a);
        table[base + count + j] = sin(a);
    }
}

__global__ void rope_apply_kernel(const float *x, float *out, int64_t pairs_total, int64_t H, int64_t d, rope_dims r,
                                  const double *table)
{
    const int64_t half = d / 2, grid = r.frames * r.height * r.width;
    const int64_t nt = r.frames * r.pt, nh = r.height * r.ps, nw = r.width * r.ps;
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < pairs_total;
         i += (int64_t)gridDim.x * blockDim.x) {
        const int64_t k = i % half, mh = i / half, m = mh / H;
        const int64_t pos = m % grid;
        const int64_t f = pos / (r.height * r.width), hh = pos / r.width % r.height, ww = pos % r.width;
        double c, s;
        if (k < r.pt) {
            c = table[f * r.pt + k];
            s = table[nt + f * r.pt + k];
        } else if (k < r.pt + r.ps) {
            const int64_t kk = k - r.pt;
            c = table[2 * nt + hh * r.ps + kk];
            s = table[2 * nt + nh + hh * r.ps + kk];
        } else {
            const int64_t kk = k - r.pt - r.ps;
            c = table[2 * nt + 2 * nh + ww * r.ps + kk];
            s = table[2 * nt + 2 * nh + nw + ww * r.ps + kk];
        }
        const int64_t o = mh * d + 2 * k;
        const double x0 = x[o], x1 = x[o + 1];
        out[o] = (float)__dsub_rn(__dmul_rn(x0, c), __dmul_rn(x1, s));
        out[o + 1] = (float)__dadd_rn(__dmul_rn(x0, s), __dmul_rn(x1, c));
    }
}

unsigned grid_for(int64_t n)
{
    const int64_t blocks = (n + kThreads - 1) / kThreads;
    return (unsigned)(blocks < 65535 * 16 ? (blocks > 0 ? blocks : 1) : 65535 * 16);
}

} // namespace

extern "C" int64_t vd_cuda_rope3d_table_size(int64_t d, int64_t frames, int64_t height, int64_t width)
{
    const int64_t ps = d / 6, pt = d / 2 - 2 * ps;
    return 2 * (frames * pt + height * ps + width * ps);
}

extern "C" int vd_cuda_rope3d(const float *x, float *out, int64_t M, int64_t H, int64_t d, int64_t frames,
                              int64_t height, int64_t width, double theta, double *table, void *stream)
{
    if (d % 2 || frames < 1 || height < 1 || width < 1)
        return (int)cudaErrorInvalidValue;
    const int64_t pairs_total = M * H * (d / 2);
    if (pairs_total <= 0)
        return 0;
    rope_dims r = {frames, height, width, 0, d / 6};
    r.pt = d / 2 - 2 * r.ps;
    cudaStream_t s = (cudaStream_t)stream;
    const int64_t entries = vd_cuda_rope3d_table_size(d, frames, height, width) / 2;
    if (entries > 0)
        rope_table_kernel<<<grid_for(entries), kThreads, 0, s>>>(r, theta, table);
    cudaError_t e = cudaGetLastError();
    if (e != cudaSuccess)
        return (int)e;
    rope_apply_kernel<<<grid_for(pairs_total), kThreads, 0, s>>>(x, out, pairs_total, H, d, r, table);
    return (int)cudaGetLastError();
}

/* im2col for the 3-D convolution: one thread per column element;
 * consecutive threads take consecutive output positions of one patch row,
 * so the writes are coalesced and the reads nearly so (stride sw).
 * (Performance idea: an implicit-GEMM kernel that gathers tiles straight
 * into shared memory, with no column buffer at all.) */
#include "conv.h"

#include <cuda_runtime.h>

namespace {

constexpr int kThreads = 256;

__global__ void im2col3d_kernel(vd_cuda_conv3d_geom g, const float *__restrict__ x, float *__restrict__ col,
                                int64_t q0, int64_t nq, int64_t n)
{
    const int64_t plane = g.Ho * g.Wo;
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x) {
        const int64_t r = i / nq, j = i - r * nq;
        const int64_t q = q0 + j;
        const int64_t t = q / plane, rem = q - t * plane, oy = rem / g.Wo, ox = rem - oy * g.Wo;
        int64_t rr = r;
        const int64_t dx = rr % g.kw;
        rr /= g.kw;
        const int64_t dy = rr % g.kh;
        rr /= g.kh;
        const int64_t dt = rr % g.kt;
        const int64_t ci = rr / g.kt;
        const int64_t it = t * g.st + dt - g.pt, iy = oy * g.sh + dy - g.ph, ix = ox * g.sw + dx - g.pw;
        float v = 0.0f;
        if (it >= 0 && it < g.T && iy >= 0 && iy < g.H && ix >= 0 && ix < g.W)
            v = x[((ci * g.T + it) * g.H + iy) * g.W + ix];
        col[i] = v;
    }
}

} // namespace

extern "C" int vd_cuda_im2col3d(const vd_cuda_conv3d_geom *g, const float *x, float *col, int64_t q0, int64_t nq,
                                void *stream)
{
    const int64_t patch = g->Cin * g->kt * g->kh * g->kw, n = patch * nq;
    if (n <= 0)
        return 0;
    int64_t blocks = (n + kThreads - 1) / kThreads;
    if (blocks > 65535 * 16)
        blocks = 65535 * 16;
    im2col3d_kernel<<<(unsigned)blocks, kThreads, 0, (cudaStream_t)stream>>>(*g, x, col, q0, nq, n);
    return (int)cudaGetLastError();
}

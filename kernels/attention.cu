/* Fused attention with an online softmax (the FlashAttention-2 recurrence).
 *
 * Tensor-core kernel (d == dv ∈ {64, 128}, sm_80+): a block of 8 warps owns
 * 128 queries of one (batch, head); each warp owns 16 of them.  The block
 * walks the keys in tiles of 64: it loads the K and V tiles (f32 in global
 * memory) into shared memory as bf16, each warp computes its 16×64 scores
 * with mma.sync m16n8k16 (bf16 in, fp32 accumulate), applies scale, bias
 * and the key mask, updates its running row maximum and sum in fp32,
 * rescales its fp32 output accumulator (registers), and adds P·V with P
 * rounded to bf16 straight from the score registers (the accumulator layout
 * of m16n8 is the A-operand layout of m16k16) and V fragments read with
 * ldmatrix.trans.  The softmax runs in the log2 domain (exp2f).
 *
 * Shared-memory rows are padded by 8 bf16 (16 bytes), which makes the
 * 32-bit fragment loads and the ldmatrix phases conflict-free.
 *
 * f32 kernel (any d, dv; the VAE's single head of C channels, umT5's small
 * heads, devices older than sm_80): a block of 8 warps owns 16 queries; key
 * tiles of 32; scores, softmax and P·V all in fp32 from shared memory.
 * Simple and accurate (its results match the CPU's to ~1e-6), not fast.
 *
 * Performance ideas, not done yet: double-buffer the K/V tiles (prefetch the
 * next tile's f32 loads into registers while the tensor cores work), reuse
 * the Q region after its fragments are read, 64-query blocks of 4 warps for
 * short sequences, bf16 q/k/v from the producers (halving the load
 * traffic), wgmma/TMA on sm_90 (FlashAttention-3), and a tensor-core path
 * for d = 384 (the VAE). */
#include "attention.h"

#include <cuda_bf16.h>
#include <cuda_runtime.h>
#include <math_constants.h>

namespace {

/* ---- tensor-core kernel ------------------------------------------------------ */

constexpr int TC_BR = 128; /* queries per block */
constexpr int TC_BC = 64;  /* keys per tile */
constexpr int TC_THREADS = 256;

template <int D>
struct tc_layout {
    static constexpr int S = D + 8; /* row stride (bf16) of sQ, sK, sV */
    static constexpr int q_elems = TC_BR * S, k_elems = TC_BC * S, v_elems = TC_BC * S;
    static constexpr size_t bytes = (size_t)(q_elems + k_elems + v_elems) * sizeof(__nv_bfloat16);
};

#if !defined(__CUDA_ARCH__) || __CUDA_ARCH__ >= 800
constexpr float kLog2e = 1.4426950408889634f;

__device__ __forceinline__ uint32_t bf16x2_bits(__nv_bfloat162 v) { return *reinterpret_cast<uint32_t *>(&v); }

/* Two bf16: `lo` (the lower column / row index) in the low half. */
__device__ __forceinline__ uint32_t pack_bf16(float lo, float hi) { return bf16x2_bits(__floats2bfloat162_rn(lo, hi)); }

__device__ __forceinline__ uint32_t ld32(const __nv_bfloat16 *p) { return *reinterpret_cast<const uint32_t *>(p); }

/* Rows [0, rows) of a tile whose row r is at src + r·row_stride (D floats),
 * as bf16 into dst (row stride tc_layout<D>::S); rows [valid, rows) are zero. */
template <int D>
__device__ __forceinline__ void load_tile_bf16(const float *src, int64_t row_stride, int valid, int rows,
                                               __nv_bfloat16 *dst, bool vec4)
{
    constexpr int C4 = D / 4;
    for (int idx = threadIdx.x; idx < rows * C4; idx += TC_THREADS) {
        const int r = idx / C4, c = (idx - r * C4) * 4;
        float4 v = make_float4(0.0f, 0.0f, 0.0f, 0.0f);
        if (r < valid) {
            const float *p = src + (int64_t)r * row_stride + c;
            if (vec4)
                v = *reinterpret_cast<const float4 *>(p);
            else
                v = make_float4(p[0], p[1], p[2], p[3]);
        }
        uint2 packed;
        packed.x = pack_bf16(v.x, v.y);
        packed.y = pack_bf16(v.z, v.w);
        *reinterpret_cast<uint2 *>(dst + r * tc_layout<D>::S + c) = packed;
    }
}

#endif

#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
/* d[4] += A(16×16, row) · B(16×8, col), bf16 in, fp32 accumulate. */
__device__ __forceinline__ void mma_bf16(float (&d)[4], uint32_t a0, uint32_t a1, uint32_t a2, uint32_t a3, uint32_t b0,
                                         uint32_t b1)
{
    asm volatile("mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 "
                 "{%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, {%0, %1, %2, %3};\n"
                 : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
                 : "r"(a0), "r"(a1), "r"(a2), "r"(a3), "r"(b0), "r"(b1));
}

/* Four 8×8 bf16 matrices, transposed; lanes 8i..8i+7 give the row addresses
 * of matrix i, whose fragment lands in r[i]. */
__device__ __forceinline__ void ldmatrix_x4_trans(uint32_t &r0, uint32_t &r1, uint32_t &r2, uint32_t &r3,
                                                  const __nv_bfloat16 *p)
{
    const unsigned addr = (unsigned)__cvta_generic_to_shared(p);
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0, %1, %2, %3}, [%4];\n"
                 : "=r"(r0), "=r"(r1), "=r"(r2), "=r"(r3)
                 : "r"(addr));
}
#endif

/* One block: queries [q0, q0 + 128) of head h, for one batch (the host
 * offsets the pointers).  Row stride of q, k, v, out: H·D floats. */
template <int D>
__global__ void __launch_bounds__(TC_THREADS)
    attention_tc_kernel(const float *__restrict__ q, const float *__restrict__ k, const float *__restrict__ v,
                        const float *__restrict__ bias, float *__restrict__ out, int Lq, int Lk, int keys, int H,
                        int q_tiles, float scale, int vec4)
{
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
    using L = tc_layout<D>;
    constexpr int S = L::S;
    extern __shared__ __align__(16) unsigned char smem_raw[];
    __nv_bfloat16 *sQ = reinterpret_cast<__nv_bfloat16 *>(smem_raw);
    __nv_bfloat16 *sK = sQ + L::q_elems;
    __nv_bfloat16 *sV = sK + L::k_elems;

    const int tile = blockIdx.x % q_tiles, h = blockIdx.x / q_tiles;
    const int q0 = tile * TC_BR;
    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, g = lane >> 2, t4 = lane & 3;
    const int64_t rs = (int64_t)H * D;
    const float *qh = q + (int64_t)h * D, *kh = k + (int64_t)h * D, *vh = v + (int64_t)h * D;

    load_tile_bf16<D>(qh + (int64_t)q0 * rs, rs, min(TC_BR, Lq - q0), TC_BR, sQ, vec4 != 0);

    /* This thread's rows: a = warp·16 + g and b = a + 8 of the block. */
    const int row_a = q0 + warp * 16 + g, row_b = row_a + 8;
    const float *bias_a = (bias && row_a < Lq) ? bias + ((int64_t)h * Lq + row_a) * Lk : nullptr;
    const float *bias_b = (bias && row_b < Lq) ? bias + ((int64_t)h * Lq + row_b) * Lk : nullptr;
    const __nv_bfloat16 *qw = sQ + warp * 16 * S;
    const float sl2 = scale * kLog2e;

    float o[D / 8][4];
#pragma unroll
    for (int nb = 0; nb < D / 8; nb++)
        o[nb][0] = o[nb][1] = o[nb][2] = o[nb][3] = 0.0f;
    float m_a = -CUDART_INF_F, m_b = -CUDART_INF_F, l_a = 0.0f, l_b = 0.0f; /* log2-domain max; partial sums */

    for (int k0 = 0; k0 < keys; k0 += TC_BC) {
        __syncthreads(); /* the previous tile is consumed (first time: sQ is written) */
        const int nk = min(TC_BC, keys - k0);
        load_tile_bf16<D>(kh + (int64_t)k0 * rs, rs, nk, TC_BC, sK, vec4 != 0);
        load_tile_bf16<D>(vh + (int64_t)k0 * rs, rs, nk, TC_BC, sV, vec4 != 0);
        __syncthreads();

        /* S = Q·Kᵀ for this warp's 16 rows and the tile's 64 keys. */
        float s[TC_BC / 8][4];
#pragma unroll
        for (int nb = 0; nb < TC_BC / 8; nb++)
            s[nb][0] = s[nb][1] = s[nb][2] = s[nb][3] = 0.0f;
#pragma unroll
        for (int kb = 0; kb < D / 16; kb++) {
            const __nv_bfloat16 *qa = qw + g * S + kb * 16 + t4 * 2;
            const uint32_t a0 = ld32(qa), a1 = ld32(qa + 8 * S), a2 = ld32(qa + 8), a3 = ld32(qa + 8 * S + 8);
#pragma unroll
            for (int nb = 0; nb < TC_BC / 8; nb++) {
                const __nv_bfloat16 *kr = sK + (nb * 8 + g) * S + kb * 16 + t4 * 2;
                mma_bf16(s[nb], a0, a1, a2, a3, ld32(kr), ld32(kr + 8));
            }
        }

        /* Logits in the log2 domain, masked past `keys`; row maxima over the
         * quad of threads that share a row. */
        float mx_a = m_a, mx_b = m_b;
#pragma unroll
        for (int nb = 0; nb < TC_BC / 8; nb++) {
#pragma unroll
            for (int e = 0; e < 2; e++) {
                const int key = k0 + nb * 8 + t4 * 2 + e;
                float va = s[nb][e] * sl2, vb = s[nb][2 + e] * sl2;
                if (key < keys) {
                    if (bias_a)
                        va += bias_a[key] * kLog2e;
                    if (bias_b)
                        vb += bias_b[key] * kLog2e;
                } else {
                    va = vb = -CUDART_INF_F;
                }
                s[nb][e] = va;
                s[nb][2 + e] = vb;
                mx_a = fmaxf(mx_a, va);
                mx_b = fmaxf(mx_b, vb);
            }
        }
        mx_a = fmaxf(mx_a, __shfl_xor_sync(0xffffffffu, mx_a, 1));
        mx_a = fmaxf(mx_a, __shfl_xor_sync(0xffffffffu, mx_a, 2));
        mx_b = fmaxf(mx_b, __shfl_xor_sync(0xffffffffu, mx_b, 1));
        mx_b = fmaxf(mx_b, __shfl_xor_sync(0xffffffffu, mx_b, 2));
        /* A row with every key so far masked (max −inf) keeps p = 0 and its
         * (zero) accumulators; exp2f(−inf) = 0 rescales the first real tile. */
        const bool dead_a = mx_a == -CUDART_INF_F, dead_b = mx_b == -CUDART_INF_F;
        const float corr_a = dead_a ? 1.0f : exp2f(m_a - mx_a), corr_b = dead_b ? 1.0f : exp2f(m_b - mx_b);
        float sum_a = 0.0f, sum_b = 0.0f;
#pragma unroll
        for (int nb = 0; nb < TC_BC / 8; nb++) {
#pragma unroll
            for (int e = 0; e < 2; e++) {
                const float pa = dead_a ? 0.0f : exp2f(s[nb][e] - mx_a);
                const float pb = dead_b ? 0.0f : exp2f(s[nb][2 + e] - mx_b);
                s[nb][e] = pa;
                s[nb][2 + e] = pb;
                sum_a += pa;
                sum_b += pb;
            }
        }
        l_a = l_a * corr_a + sum_a;
        l_b = l_b * corr_b + sum_b;
        m_a = mx_a;
        m_b = mx_b;
#pragma unroll
        for (int nb = 0; nb < D / 8; nb++) {
            o[nb][0] *= corr_a;
            o[nb][1] *= corr_a;
            o[nb][2] *= corr_b;
            o[nb][3] *= corr_b;
        }

        /* O += P·V: P's k-block kb is score blocks 2kb and 2kb+1. */
#pragma unroll
        for (int kb = 0; kb < TC_BC / 16; kb++) {
            const uint32_t a0 = pack_bf16(s[2 * kb][0], s[2 * kb][1]);
            const uint32_t a1 = pack_bf16(s[2 * kb][2], s[2 * kb][3]);
            const uint32_t a2 = pack_bf16(s[2 * kb + 1][0], s[2 * kb + 1][1]);
            const uint32_t a3 = pack_bf16(s[2 * kb + 1][2], s[2 * kb + 1][3]);
#pragma unroll
            for (int nb = 0; nb < D / 8; nb += 2) {
                /* Matrices: keys kb·16 + 0..7 / 8..15, at dims nb·8 and nb·8 + 8. */
                const __nv_bfloat16 *p = sV + (kb * 16 + (lane & 15)) * S + nb * 8 + (lane >> 4) * 8;
                uint32_t b0, b1, b2, b3;
                ldmatrix_x4_trans(b0, b1, b2, b3, p);
                mma_bf16(o[nb], a0, a1, a2, a3, b0, b1);
                mma_bf16(o[nb + 1], a0, a1, a2, a3, b2, b3);
            }
        }
    }

    l_a += __shfl_xor_sync(0xffffffffu, l_a, 1);
    l_a += __shfl_xor_sync(0xffffffffu, l_a, 2);
    l_b += __shfl_xor_sync(0xffffffffu, l_b, 1);
    l_b += __shfl_xor_sync(0xffffffffu, l_b, 2);
    const float inv_a = 1.0f / l_a, inv_b = 1.0f / l_b;
    float *oa = out + (int64_t)row_a * rs + (int64_t)h * D, *ob = out + (int64_t)row_b * rs + (int64_t)h * D;
#pragma unroll
    for (int nb = 0; nb < D / 8; nb++) {
        const int c = nb * 8 + t4 * 2;
        if (row_a < Lq) {
            oa[c] = o[nb][0] * inv_a;
            oa[c + 1] = o[nb][1] * inv_a;
        }
        if (row_b < Lq) {
            ob[c] = o[nb][2] * inv_b;
            ob[c + 1] = o[nb][3] * inv_b;
        }
    }
#else
    __trap(); /* the host never launches this kernel below sm_80 */
#endif
}

/* ---- f32 kernel ------------------------------------------------------------------ */

constexpr int G_Q = 16;  /* queries per block: two per warp */
constexpr int G_K = 32;  /* keys per tile: one per lane */
constexpr int G_THREADS = 256;

__host__ __device__ inline int g_kstride(int64_t d) { return (int)(d % 2 == 0 ? d + 1 : d); } /* odd: no bank conflicts */

__host__ __device__ inline int64_t g_smem_floats(int64_t d, int64_t dv)
{
    const int64_t ks = g_kstride(d);
    return G_Q * d + G_K * (ks > dv ? ks : dv) + G_Q * dv + G_Q * G_K + 3 * G_Q;
}

__device__ __forceinline__ float warp_max(float v)
{
    for (int o = 16; o > 0; o >>= 1)
        v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
    return v;
}

__device__ __forceinline__ float warp_sum(float v)
{
    for (int o = 16; o > 0; o >>= 1)
        v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
}

__global__ void __launch_bounds__(G_THREADS)
    attention_f32_kernel(const float *__restrict__ q, const float *__restrict__ k, const float *__restrict__ v,
                         const float *__restrict__ bias, float *__restrict__ out, int Lq, int Lk, int keys, int H,
                         int d, int dv, int q_tiles, float scale)
{
    extern __shared__ float sm[];
    const int ks = g_kstride(d), kvs = ks > dv ? ks : dv;
    float *sQ = sm;                /* [G_Q][d] */
    float *sKV = sQ + G_Q * d;     /* K tile [G_K][ks], then V tile [G_K][dv] */
    float *sO = sKV + G_K * kvs;   /* [G_Q][dv] */
    float *sS = sO + G_Q * dv;     /* [G_Q][G_K] scores, then probabilities */
    float *sM = sS + G_Q * G_K, *sL = sM + G_Q, *sC = sL + G_Q;

    const int tile = blockIdx.x % q_tiles, h = blockIdx.x / q_tiles;
    const int q0 = tile * G_Q, nq = min(G_Q, Lq - q0);
    const int tid = threadIdx.x, warp = tid >> 5, lane = tid & 31;
    const int64_t rq = (int64_t)H * d, rv = (int64_t)H * dv;

    for (int idx = tid; idx < G_Q * d; idx += G_THREADS) {
        const int r = idx / d, c = idx - r * d;
        sQ[idx] = r < nq ? q[(int64_t)(q0 + r) * rq + (int64_t)h * d + c] : 0.0f;
    }
    for (int idx = tid; idx < G_Q * dv; idx += G_THREADS)
        sO[idx] = 0.0f;
    if (tid < G_Q) {
        sM[tid] = -CUDART_INF_F;
        sL[tid] = 0.0f;
    }

    for (int k0 = 0; k0 < keys; k0 += G_K) {
        const int nk = min(G_K, keys - k0);
        __syncthreads(); /* the previous V tile and probabilities are consumed */
        for (int idx = tid; idx < G_K * d; idx += G_THREADS) {
            const int r = idx / d, c = idx - r * d;
            sKV[r * ks + c] = r < nk ? k[(int64_t)(k0 + r) * rq + (int64_t)h * d + c] : 0.0f;
        }
        __syncthreads();
        for (int idx = tid; idx < G_Q * G_K; idx += G_THREADS) {
            const int i = idx / G_K, j = idx - i * G_K;
            const float *qi = sQ + i * d, *kj = sKV + j * ks;
            float acc = 0.0f;
            for (int c = 0; c < d; c++)
                acc = fmaf(qi[c], kj[c], acc);
            float sv = acc * scale;
            if (j >= nk)
                sv = -CUDART_INF_F;
            else if (bias && i < nq)
                sv += bias[((int64_t)h * Lq + q0 + i) * Lk + k0 + j];
            sS[idx] = sv;
        }
        __syncthreads();
        for (int row = warp; row < G_Q; row += G_THREADS / 32) {
            const float sv = sS[row * G_K + lane];
            const float m_old = sM[row];
            const float m_new = fmaxf(m_old, warp_max(sv));
            const bool dead = m_new == -CUDART_INF_F;
            const float p = dead ? 0.0f : expf(sv - m_new);
            const float sum = warp_sum(p);
            sS[row * G_K + lane] = p;
            __syncwarp(); /* every lane has read sM[row] and sL[row] */
            if (lane == 0) {
                const float corr = dead ? 1.0f : expf(m_old - m_new);
                sM[row] = m_new;
                sL[row] = sL[row] * corr + sum;
                sC[row] = corr;
            }
        }
        __syncthreads(); /* K reads done: the buffer takes V */
        for (int idx = tid; idx < G_K * dv; idx += G_THREADS) {
            const int r = idx / dv, c = idx - r * dv;
            sKV[idx] = r < nk ? v[(int64_t)(k0 + r) * rv + (int64_t)h * dv + c] : 0.0f;
        }
        __syncthreads();
        for (int idx = tid; idx < G_Q * dv; idx += G_THREADS) {
            const int i = idx / dv, c = idx - i * dv;
            const float *pi = sS + i * G_K;
            float acc = sO[idx] * sC[i];
            for (int j = 0; j < nk; j++)
                acc = fmaf(pi[j], sKV[j * dv + c], acc);
            sO[idx] = acc;
        }
    }
    __syncthreads();
    for (int idx = tid; idx < nq * dv; idx += G_THREADS) {
        const int i = idx / dv, c = idx - i * dv;
        out[(int64_t)(q0 + i) * rv + (int64_t)h * dv + c] = sO[idx] * (1.0f / sL[i]);
    }
}

} // namespace

extern "C" int vd_cuda_attention_tc_supported(int64_t d, int64_t dv) { return d == dv && (d == 64 || d == 128); }

extern "C" size_t vd_cuda_attention_smem_bytes(int kind, int64_t d, int64_t dv)
{
    if (kind == VD_CUDA_ATTN_TENSOR_CORES)
        return d == 64 ? tc_layout<64>::bytes : tc_layout<128>::bytes;
    return (size_t)g_smem_floats(d, dv) * sizeof(float);
}

template <int D>
static cudaError_t launch_tc(const float *q, const float *k, const float *v, const float *bias, float *out, int Lq,
                             int Lk, int keys, int H, int q_tiles, float scale, int vec4, cudaStream_t s)
{
    const size_t bytes = tc_layout<D>::bytes;
    cudaError_t e = cudaFuncSetAttribute(attention_tc_kernel<D>, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)bytes);
    if (e != cudaSuccess)
        return e;
    attention_tc_kernel<D><<<(unsigned)q_tiles * (unsigned)H, TC_THREADS, bytes, s>>>(q, k, v, bias, out, Lq, Lk, keys,
                                                                                     H, q_tiles, scale, vec4);
    return cudaGetLastError();
}

extern "C" int vd_cuda_attention(int kind, const float *q, const float *k, const float *v, const float *bias,
                                 float *out, int64_t B, int64_t Lq, int64_t Lk, int64_t H, int64_t d, int64_t dv,
                                 float scale, const int32_t *kv_len, void *stream)
{
    if (B <= 0 || Lq <= 0 || H <= 0 || dv <= 0)
        return 0;
    if (Lk <= 0 || d <= 0 || Lq > 0x7fffffff || Lk > 0x7fffffff || H * d > 0x7fffffff || H * dv > 0x7fffffff)
        return (int)cudaErrorInvalidValue;
    const bool tc = kind == VD_CUDA_ATTN_TENSOR_CORES;
    if (tc && !vd_cuda_attention_tc_supported(d, dv))
        return (int)cudaErrorInvalidValue;
    const int64_t q_tiles = (Lq + (tc ? TC_BR : G_Q) - 1) / (tc ? TC_BR : G_Q);
    if (q_tiles * H > 0x7fffffff)
        return (int)cudaErrorInvalidValue;
    cudaStream_t s = (cudaStream_t)stream;
    const size_t g_bytes = (size_t)g_smem_floats(d, dv) * sizeof(float);
    if (!tc && g_bytes > 48 * 1024) {
        cudaError_t e = cudaFuncSetAttribute(attention_f32_kernel, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                             (int)g_bytes);
        if (e != cudaSuccess)
            return (int)e;
    }
    for (int64_t b = 0; b < B; b++) {
        const int keys = kv_len ? kv_len[b] : (int)Lk;
        if (keys < 1 || keys > Lk)
            return (int)cudaErrorInvalidValue;
        const float *qb = q + b * Lq * H * d, *kb = k + b * Lk * H * d, *vb = v + b * Lk * H * dv;
        float *ob = out + b * Lq * H * dv;
        cudaError_t e;
        if (tc) {
            /* float4 loads need 16-byte aligned rows: H·d is a multiple of 4 here. */
            const int vec4 = (((uintptr_t)qb | (uintptr_t)kb | (uintptr_t)vb) & 15) == 0;
            if (d == 64)
                e = launch_tc<64>(qb, kb, vb, bias, ob, (int)Lq, (int)Lk, keys, (int)H, (int)q_tiles, scale, vec4, s);
            else
                e = launch_tc<128>(qb, kb, vb, bias, ob, (int)Lq, (int)Lk, keys, (int)H, (int)q_tiles, scale, vec4, s);
        } else {
            attention_f32_kernel<<<(unsigned)(q_tiles * H), G_THREADS, g_bytes, s>>>(
                qb, kb, vb, bias, ob, (int)Lq, (int)Lk, keys, (int)H, (int)d, (int)dv, (int)q_tiles, scale);
            e = cudaGetLastError();
        }
        if (e != cudaSuccess)
            return (int)e;
    }
    return 0;
}

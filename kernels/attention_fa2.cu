/* Attention forward in the FlashAttention-2 structure (bf16 tensor cores,
 * fp32 online softmax), for head sizes d == dv ∈ {64, 128} on sm_80+.
 *
 * One call:
 * 1. fa2_convert, once per tensor: q, k, v (f32 [B, L, H, d]) become bf16
 *    copies laid out head by head, [B, heads, Lp, d] with Lp = L rounded up
 *    to 128 and the padding rows zero; q is multiplied by scale·log2 e
 *    first, so the scores come out in the log2 domain and the softmax uses
 *    exp2.  A key/value tile is then one contiguous run of memory, and no
 *    block converts anything.
 * 2. fa2_forward: a block owns BR queries of one (batch, head); each warp
 *    owns 16·MT of them (MT m-tiles of 16 rows).  The block walks the keys
 *    in tiles of BC: K and V tiles arrive by cp.async (16 bytes a thread)
 *    into two shared-memory stages, so tile j+1 loads while tile j is
 *    computed.  Every shared row is d bf16 (8 or 16 chunks of 16 bytes)
 *    with chunk c of row r stored at chunk c ^ (r mod 8): the 8 row addresses
 *    of every ldmatrix phase and the 8 chunks of every cp.async phase fall
 *    in 8 different bank groups.  S = Q·Kᵀ uses ldmatrix (Q: A operand, K:
 *    B operand) and mma.sync m16n8k16 (bf16 in, fp32 accumulators); the
 *    row maxima and sums stay in registers (fp32, quad shuffles); P is
 *    rounded to bf16 straight from the S accumulators (the m16n8 C layout
 *    is the A layout of the next mma) and O += P·V reads V with
 *    ldmatrix.trans.  Only the last key tile is masked (key >= kv_len);
 *    with a bias every tile adds bias·log2 e read from global memory.  The
 *    output is normalised by the row sums and written as f32.
 *
 * Variants (attention_fa2.h): BR = 128 with 4 warps of 32 rows, Q fragments
 * re-read from shared memory each tile (FlashAttention-2's own sm80 shape:
 * each K/V fragment feeds two mma), with key tiles of 64/128 or of 32/64;
 * BR = 128 with 8 warps of 16 rows and BR = 64 with 4 warps of 16 rows, Q
 * fragments held in registers.  ptxas (sm_90, CUDA 13.0), d = 128 without
 * bias: v0 255 registers with 60 bytes of spill stores (a few local
 * loads/stores per key tile), v1 and v2 191, v3 235, none spilling; shared
 * memory 96 KiB (v0, v1), 80 KiB (v2), 64 KiB (v3): two blocks of 4 warps
 * per SM, one of 8 for v1.  The scratch is 2·B·H·(Lq + 2·Lk)·d bytes (0.94 GiB for Wan 14B at
 * 81 frames of 720p), in passes over groups of heads beyond a cap.
 *
 * Not done yet: a third cp.async stage, wgmma/TMA on sm_90 (FlashAttention-3:
 * warp-specialised producer, two consumer warpgroups, softmax overlapped
 * with the next tile's GEMM) — the way past ~400 TFLOP/s on Hopper.
 *
 * Every shared-memory and tensor-core access goes through the primitives
 * below.  tests/gpu/emu_attention_fa2.cpp defines VD_FA2_EMULATE, supplies
 * host versions of them (lanes run as fibers; ldmatrix, mma.sync and
 * shuffles are computed from the PTX ISA fragment layouts; cp.async is
 * checked for races against the barriers) and includes this file, so the
 * kernels and the launch sequence below run on the host unchanged. */
#include "attention_fa2.h"

#ifndef VD_FA2_EMULATE
#include <cuda_bf16.h>
#include <cuda_runtime.h>
#endif

#include <math.h>
#include <stdint.h>

#if defined(VD_FA2_EMULATE) || (defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800)
#define FA2_BODY 1
#else
#define FA2_BODY 0
#endif

namespace fa2 {

constexpr float kLog2e = 1.4426950408889634f;
constexpr int kMaxBatch = 16; /* key counts one launch carries in its parameters */
constexpr int kPad = 128;     /* rows of the bf16 copies round up to this (every BR and BC divides it) */
constexpr int kConvThreads = 256;

/* ---- device primitives -------------------------------------------------------------- */

#ifndef VD_FA2_EMULATE
typedef __nv_bfloat16 bf16;

/* Two bf16 (round to nearest even), `lo` in the low half. */
__device__ __forceinline__ uint32_t pack_bf16(float lo, float hi)
{
    __nv_bfloat162 v = __floats2bfloat162_rn(lo, hi);
    return *reinterpret_cast<uint32_t *>(&v);
}

#if FA2_BODY
extern __shared__ __align__(128) unsigned char fa2_smem[];

/* The shared-space address of the dynamic shared memory. */
__device__ __forceinline__ uint32_t smem_base() { return (uint32_t)__cvta_generic_to_shared(fa2_smem); }

__device__ __forceinline__ void cp_async_16(uint32_t dst, const void *src)
{
    asm volatile("cp.async.cg.shared.global [%0], [%1], 16;\n" ::"r"(dst), "l"(src) : "memory");
}

__device__ __forceinline__ void cp_async_commit() { asm volatile("cp.async.commit_group;\n" ::: "memory"); }

__device__ __forceinline__ void cp_async_wait_all() { asm volatile("cp.async.wait_group 0;\n" ::: "memory"); }

/* Four 8×8 b16 matrices; lanes 8i..8i+7 address the rows of matrix i. */
__device__ __forceinline__ void ldsm_x4(uint32_t (&r)[4], uint32_t addr)
{
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0, %1, %2, %3}, [%4];\n"
                 : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
                 : "r"(addr));
}

__device__ __forceinline__ void ldsm_x4_t(uint32_t (&r)[4], uint32_t addr)
{
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0, %1, %2, %3}, [%4];\n"
                 : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
                 : "r"(addr));
}

/* d += A(16×16, row-major) · B(16×8, column-major); bf16 in, fp32 accumulate. */
__device__ __forceinline__ void mma_16816(float (&d)[4], const uint32_t (&a)[4], uint32_t b0, uint32_t b1)
{
    asm volatile("mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 "
                 "{%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, {%0, %1, %2, %3};\n"
                 : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
                 : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}

__device__ __forceinline__ float fast_exp2(float x)
{
    float y;
    asm("ex2.approx.ftz.f32 %0, %1;\n" : "=f"(y) : "f"(x));
    return y;
}

__device__ __forceinline__ float fast_rcp(float x)
{
    float y;
    asm("rcp.approx.ftz.f32 %0, %1;\n" : "=f"(y) : "f"(x));
    return y;
}
#endif /* FA2_BODY */

__device__ __forceinline__ float ld_bias(const float *p) { return __ldg(p); }

__device__ __forceinline__ void st_out2(float *p, float a, float b)
{
    *reinterpret_cast<float2 *>(p) = make_float2(a, b);
}

__device__ __forceinline__ float ld_f32(const float *p) { return __ldg(p); }

__device__ __forceinline__ void ld_f32x4(const float *p, float *x)
{
    const float4 v = __ldg(reinterpret_cast<const float4 *>(p));
    x[0] = v.x, x[1] = v.y, x[2] = v.z, x[3] = v.w;
}

__device__ __forceinline__ void st_u32x4(void *p, const uint32_t *w)
{
    *reinterpret_cast<uint4 *>(p) = make_uint4(w[0], w[1], w[2], w[3]);
}
#endif /* !VD_FA2_EMULATE */

/* ---- shapes ------------------------------------------------------------------------- */

template <int D_, int WARPS_, int MT_, int BC_, int MIN_BLOCKS_>
struct Cfg {
    static constexpr int D = D_, WARPS = WARPS_, MT = MT_, BC = BC_, MIN_BLOCKS = MIN_BLOCKS_;
    static constexpr int THREADS = 32 * WARPS;
    static constexpr int BR = 16 * MT * WARPS;     /* queries per block */
    static constexpr bool Q_IN_REGS = MT == 1;     /* else re-read from shared memory every tile */
    static constexpr int ROW_BYTES = D * 2;
    static constexpr int Q_BYTES = BR * ROW_BYTES; /* sQ [BR][D] */
    static constexpr int KV_BYTES = BC * ROW_BYTES; /* one stage of sK or sV [BC][D] */
    static constexpr int SMEM = Q_BYTES + 4 * KV_BYTES + 128; /* sQ, sK[2], sV[2]; 128 for alignment */
    static_assert(D == 64 || D == 128, "head size");
    static_assert(BC % 16 == 0 && kPad % BC == 0 && kPad % BR == 0, "tiles must divide the padding");
    static_assert((BR * D / 8) % THREADS == 0 && (BC * D / 8) % THREADS == 0, "tile copies must split evenly");
};

template <int D, int V>
struct Variant;
template <>
struct Variant<128, 0> {
    using C = Cfg<128, 4, 2, 64, 2>;
};
template <>
struct Variant<128, 1> {
    using C = Cfg<128, 8, 1, 64, 1>;
};
template <>
struct Variant<128, 2> {
    using C = Cfg<128, 4, 1, 64, 2>;
};
template <>
struct Variant<128, 3> {
    using C = Cfg<128, 4, 2, 32, 2>;
};
template <>
struct Variant<64, 0> {
    using C = Cfg<64, 4, 2, 128, 2>;
};
template <>
struct Variant<64, 1> {
    using C = Cfg<64, 8, 1, 128, 1>;
};
template <>
struct Variant<64, 2> {
    using C = Cfg<64, 4, 1, 128, 3>;
};
template <>
struct Variant<64, 3> {
    using C = Cfg<64, 4, 2, 64, 2>;
};

/* One launch: heads [h0, h0 + nh) of batches [b0, b0 + gridDim.z). */
struct Params {
    const bf16 *q, *k, *v; /* [B, nh, Lqp | Lkp, D]; q scaled by scale·log2 e */
    const float *bias;     /* [H, Lq, Lk] or NULL (then unused) */
    float *out;            /* [B, Lq, H, D] */
    int Lq, Lk, Lqp, Lkp, H, nh, h0, b0;
    int keys[kMaxBatch]; /* key count of batch b0 + i */
};

/* ---- kernels ------------------------------------------------------------------------ */

#if FA2_BODY
/* cp.async a tile of ROWS rows (contiguous in global memory) into shared
 * memory at `s` (128-byte aligned), swizzled: 16-byte chunk ch of row r goes
 * to chunk ch ^ (r & 7).  Pass i moves rows r0 + i·STEP, all ≡ r0 (mod 8),
 * so one swizzled offset serves every pass. */
template <class C, int ROWS>
__device__ __forceinline__ void load_tile(uint32_t s, const bf16 *g, int tid)
{
    constexpr int CH = C::D / 8, STEP = C::THREADS / CH;
    static_assert(STEP % 8 == 0 && ROWS % STEP == 0, "tile copy passes");
    const int r0 = tid / CH, ch = tid % CH;
    const uint32_t dst = s + (uint32_t)(r0 * C::ROW_BYTES + ((ch ^ (r0 & 7)) << 4));
    const bf16 *src = g + tid * 8;
#pragma unroll
    for (int i = 0; i < ROWS / STEP; i++)
        cp_async_16(dst + (uint32_t)(i * STEP * C::ROW_BYTES), src + i * C::THREADS * 8);
}
#endif

template <class C, bool BIAS>
__global__ void __launch_bounds__(C::THREADS, C::MIN_BLOCKS) fa2_forward(const Params p)
{
#if FA2_BODY
    constexpr int D = C::D, BC = C::BC, BR = C::BR, MT = C::MT, RB = C::ROW_BYTES;
    constexpr int NKB = D / 16;  /* k-steps of Q·Kᵀ (over d) */
    constexpr int NNB = BC / 8;  /* 8-key score blocks per m-tile */
    constexpr int NVB = BC / 16; /* k-steps of P·V (over keys) */
    constexpr int NOB = D / 8;   /* 8-column output blocks */
    const float NEG_INF = -INFINITY;

    /* 128-byte aligned stages (the swizzle XORs address bits 4..6). */
    const uint32_t sQ = (smem_base() + 127u) & ~127u, sK = sQ + C::Q_BYTES, sV = sK + 2 * C::KV_BYTES;
    const int tid = threadIdx.x, warp = tid >> 5, lane = tid & 31;
    const int g = lane >> 2, t4 = lane & 3;  /* mma fragments: row group, thread in group */
    const int li = lane >> 3, lj = lane & 7; /* ldmatrix: the matrix and row this lane addresses */
    const int bl = blockIdx.z, hl = blockIdx.y;
    const int b = p.b0 + bl, h = p.h0 + hl, q0 = blockIdx.x * BR;
    int keys = p.keys[0];
#pragma unroll
    for (int i = 1; i < kMaxBatch; i++) /* constant indices: the array stays in the parameter bank */
        if (bl == i)
            keys = p.keys[i];
    const int64_t bh = (int64_t)b * p.nh + hl;
    const bf16 *gq = p.q + (bh * p.Lqp + q0) * D;
    const bf16 *gk = p.k + bh * p.Lkp * D;
    const int64_t v_minus_k = p.v - p.k; /* the V copy lies at a fixed distance from the K copy */
    const int n_tiles = (keys + BC - 1) / BC;

    load_tile<C, BR>(sQ, gq, tid);
    load_tile<C, BC>(sK, gk, tid);
    load_tile<C, BC>(sV, gk + v_minus_k, tid);
    cp_async_commit();

    /* ldmatrix row addresses.  Lane (li, lj) addresses row ≡ lj (mod 8) of
     * matrix li, so logical chunk 2·step + bit sits at chunk
     * 8·(step >> 2) + ((2·(step & 3)) ^ bit ^ lj): the lane's base below
     * holds (bit ^ lj) in address bits 4..6, the step XORs 2·(step & 3)
     * into them and adds 128·(step >> 2). */
    const uint32_t q_lane = (uint32_t)((warp * 16 * MT + (li & 1) * 8 + lj) * RB + ((((li >> 1) ^ lj)) << 4));
    const uint32_t k_lane = (uint32_t)(((li >> 1) * 8 + lj) * RB + (((li & 1) ^ lj) << 4));
    const uint32_t v_lane = (uint32_t)(((li & 1) * 8 + lj) * RB + (((li >> 1) ^ lj) << 4));
    /* A (Q rows × d): matrices 1, 3 are rows +8, matrices 2, 3 are d +8.
     * B from K (keys × d): matrices 2, 3 are keys +8, matrices 1, 3 are d +8.
     * B from V (keys × d, transposed): matrices 1, 3 are keys +8, 2, 3 are d +8. */
#define FA2_STEP(base, step) ((((base) ^ (uint32_t)((2 * ((step) & 3)) << 4))) + (uint32_t)(((step) >> 2) * 128))

    float o[MT][NOB][4];
#pragma unroll
    for (int mt = 0; mt < MT; mt++)
#pragma unroll
        for (int nb = 0; nb < NOB; nb++)
            o[mt][nb][0] = o[mt][nb][1] = o[mt][nb][2] = o[mt][nb][3] = 0.0f;
    /* Rows r = 2·mt + half: this thread's rows g and g + 8 of each m-tile.
     * m: running maximum (log2 domain); l: this thread's partial row sum. */
    float m[2 * MT], l[2 * MT];
#pragma unroll
    for (int r = 0; r < 2 * MT; r++)
        m[r] = NEG_INF, l[r] = 0.0f;

    cp_async_wait_all();
    __syncthreads(); /* Q and the first K/V tile are in */

    uint32_t qf[C::Q_IN_REGS ? NKB : 1][4];
    if constexpr (C::Q_IN_REGS) {
#pragma unroll
        for (int kb = 0; kb < NKB; kb++)
            ldsm_x4(qf[kb], FA2_STEP(sQ + q_lane, kb));
    }

#pragma unroll 1
    for (int j = 0; j < n_tiles; j++) {
        const uint32_t stage = (uint32_t)((j & 1) * C::KV_BYTES);
        if (j > 0) {
            cp_async_wait_all();
            __syncthreads(); /* tile j is in; every warp is done with tile j-1, whose stage is refilled next */
        }
        if (j + 1 < n_tiles) {
            const bf16 *gn = gk + (int64_t)(j + 1) * BC * D;
            const uint32_t other = (uint32_t)C::KV_BYTES - stage;
            load_tile<C, BC>(sK + other, gn, tid);
            load_tile<C, BC>(sV + other, gn + v_minus_k, tid);
            cp_async_commit();
        }

        /* S = Q·Kᵀ: s[mt][nb] is rows mt·16.., keys nb·8.. of the tile. */
        float s[MT][NNB][4];
#pragma unroll
        for (int mt = 0; mt < MT; mt++)
#pragma unroll
            for (int nb = 0; nb < NNB; nb++)
                s[mt][nb][0] = s[mt][nb][1] = s[mt][nb][2] = s[mt][nb][3] = 0.0f;
        const uint32_t k_base = sK + stage + k_lane;
#pragma unroll
        for (int kb = 0; kb < NKB; kb++) {
            uint32_t a[MT][4];
#pragma unroll
            for (int mt = 0; mt < MT; mt++) {
                if constexpr (C::Q_IN_REGS) {
                    a[mt][0] = qf[kb][0], a[mt][1] = qf[kb][1], a[mt][2] = qf[kb][2], a[mt][3] = qf[kb][3];
                } else {
                    ldsm_x4(a[mt], FA2_STEP(sQ + q_lane, kb) + (uint32_t)(mt * 16 * RB));
                }
            }
#pragma unroll
            for (int nb2 = 0; nb2 < NNB / 2; nb2++) {
                uint32_t bk[4]; /* keys nb2·16 + 0..7: bk[0], bk[1]; + 8..15: bk[2], bk[3] */
                ldsm_x4(bk, FA2_STEP(k_base, kb) + (uint32_t)(nb2 * 16 * RB));
#pragma unroll
                for (int mt = 0; mt < MT; mt++) {
                    mma_16816(s[mt][2 * nb2], a[mt], bk[0], bk[1]);
                    mma_16816(s[mt][2 * nb2 + 1], a[mt], bk[2], bk[3]);
                }
            }
        }

        /* Bias and mask.  Element e of s[mt][nb]: row 2·mt + (e >> 1), key nb·8 + 2·t4 + (e & 1). */
        const int k0 = j * BC;
        if constexpr (BIAS) {
#pragma unroll
            for (int r = 0; r < 2 * MT; r++) {
                int row = q0 + warp * 16 * MT + (r >> 1) * 16 + (r & 1) * 8 + g;
                row = row < p.Lq ? row : p.Lq - 1; /* padding rows: any valid row (never stored) */
                const float *br = p.bias + ((int64_t)h * p.Lq + row) * p.Lk + k0 + 2 * t4;
#pragma unroll
                for (int nb = 0; nb < NNB; nb++)
#pragma unroll
                    for (int e = 0; e < 2; e++) {
                        float &x = s[r >> 1][nb][2 * (r & 1) + e];
                        x = k0 + nb * 8 + 2 * t4 + e < keys ? x + ld_bias(br + nb * 8 + e) * kLog2e : NEG_INF;
                    }
            }
        } else if (k0 + BC > keys) {
#pragma unroll
            for (int mt = 0; mt < MT; mt++)
#pragma unroll
                for (int nb = 0; nb < NNB; nb++)
#pragma unroll
                    for (int e = 0; e < 4; e++)
                        if (k0 + nb * 8 + 2 * t4 + (e & 1) >= keys)
                            s[mt][nb][e] = NEG_INF;
        }

        /* Online softmax, per row (the quad of lanes 4g..4g+3 holds it);
         * then P in bf16, as A fragments: k-step kb of P·V is score blocks
         * 2kb (keys +0..7) and 2kb+1 (+8..15). */
        uint32_t pa[MT][NVB][4];
#pragma unroll
        for (int mt = 0; mt < MT; mt++) {
#pragma unroll
            for (int hf = 0; hf < 2; hf++) {
                const int r = 2 * mt + hf;
                float mx = m[r];
#pragma unroll
                for (int nb = 0; nb < NNB; nb++)
                    mx = fmaxf(mx, fmaxf(s[mt][nb][2 * hf], s[mt][nb][2 * hf + 1]));
                mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 1));
                mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 2));
                /* Every key so far masked: p = 0 (and no −inf − −inf). */
                const float base = mx == NEG_INF ? 0.0f : mx;
                const float corr = fast_exp2(m[r] - base);
                m[r] = mx;
                float sum = 0.0f;
#pragma unroll
                for (int nb = 0; nb < NNB; nb++)
#pragma unroll
                    for (int e = 0; e < 2; e++) {
                        const float pv = fast_exp2(s[mt][nb][2 * hf + e] - base);
                        s[mt][nb][2 * hf + e] = pv;
                        sum += pv;
                    }
                l[r] = l[r] * corr + sum;
#pragma unroll
                for (int nb = 0; nb < NOB; nb++) {
                    o[mt][nb][2 * hf] *= corr;
                    o[mt][nb][2 * hf + 1] *= corr;
                }
            }
#pragma unroll
            for (int kb = 0; kb < NVB; kb++) {
                pa[mt][kb][0] = pack_bf16(s[mt][2 * kb][0], s[mt][2 * kb][1]);
                pa[mt][kb][1] = pack_bf16(s[mt][2 * kb][2], s[mt][2 * kb][3]);
                pa[mt][kb][2] = pack_bf16(s[mt][2 * kb + 1][0], s[mt][2 * kb + 1][1]);
                pa[mt][kb][3] = pack_bf16(s[mt][2 * kb + 1][2], s[mt][2 * kb + 1][3]);
            }
        }

        /* O += P·V. */
        const uint32_t v_base = sV + stage + v_lane;
#pragma unroll
        for (int kb = 0; kb < NVB; kb++) {
#pragma unroll
            for (int nb2 = 0; nb2 < NOB / 2; nb2++) {
                uint32_t bv[4]; /* d nb2·16 + 0..7: bv[0], bv[1]; + 8..15: bv[2], bv[3] */
                ldsm_x4_t(bv, FA2_STEP(v_base, nb2) + (uint32_t)(kb * 16 * RB));
#pragma unroll
                for (int mt = 0; mt < MT; mt++) {
                    mma_16816(o[mt][2 * nb2], pa[mt][kb], bv[0], bv[1]);
                    mma_16816(o[mt][2 * nb2 + 1], pa[mt][kb], bv[2], bv[3]);
                }
            }
        }
    }
#undef FA2_STEP

    /* Normalise and store: row r of this thread, columns nb·8 + 2·t4, +1. */
#pragma unroll
    for (int mt = 0; mt < MT; mt++)
#pragma unroll
        for (int hf = 0; hf < 2; hf++) {
            const int r = 2 * mt + hf;
            float lr = l[r];
            lr += __shfl_xor_sync(0xffffffffu, lr, 1);
            lr += __shfl_xor_sync(0xffffffffu, lr, 2);
            const float inv = fast_rcp(lr); /* no division subroutine (its call would spill o) */
            const int row = q0 + warp * 16 * MT + mt * 16 + hf * 8 + g;
            if (row < p.Lq) {
                float *dst = p.out + (((int64_t)b * p.Lq + row) * p.H + h) * D + 2 * t4;
#pragma unroll
                for (int nb = 0; nb < NOB; nb++)
                    st_out2(dst + nb * 8, o[mt][nb][2 * hf] * inv, o[mt][nb][2 * hf + 1] * inv);
            }
        }
#else
    __trap(); /* the host launches this kernel only on sm_80+ */
#endif
}

/* src f32 [B, L, H, D] → dst bf16 [B, nh, Lp, D] for heads [h0, h0 + nh) and
 * batches [b0, b0 + gridDim.z), multiplied by `mul`; rows [L, Lp) are zero.
 * One thread per 8 values (one 16-byte store). */
template <int D, bool VEC>
__global__ void __launch_bounds__(kConvThreads)
    fa2_convert(const float *__restrict__ src, bf16 *__restrict__ dst, int L, int Lp, int H, int h0, int nh, int b0,
                float mul)
{
    constexpr int CH = D / 8;
    const int idx = blockIdx.x * kConvThreads + threadIdx.x;
    if (idx >= Lp * CH)
        return;
    const int row = idx / CH, c = idx % CH, hl = blockIdx.y, b = b0 + blockIdx.z;
    uint32_t w[4] = {0u, 0u, 0u, 0u};
    if (row < L) {
        const float *s = src + (((int64_t)b * L + row) * H + h0 + hl) * D + c * 8;
        float x[8];
        if (VEC) {
            ld_f32x4(s, x);
            ld_f32x4(s + 4, x + 4);
        } else {
#pragma unroll
            for (int i = 0; i < 8; i++)
                x[i] = ld_f32(s + i);
        }
#pragma unroll
        for (int i = 0; i < 4; i++)
            w[i] = pack_bf16(x[2 * i] * mul, x[2 * i + 1] * mul);
    }
    st_u32x4(dst + (((int64_t)b * nh + hl) * Lp + row) * D + c * 8, w);
}

/* ---- the launch sequence (shared with the host emulation) ------------------------------ */

static inline int64_t round_up(int64_t x, int64_t m) { return (x + m - 1) / m * m; }

static inline int64_t per_head_bytes(int64_t B, int64_t Lq, int64_t Lk, int64_t d)
{
    return B * (round_up(Lq, kPad) + 2 * round_up(Lk, kPad)) * d * 2;
}

enum { ERR_INVALID = 1 }; /* cudaErrorInvalidValue */

template <class Launch, bool VEC>
static int convert_one(Launch &launch, int64_t d, const float *src, bf16 *dst, int64_t B, int64_t L, int64_t Lp,
                       int64_t H, int64_t h0, int64_t nh, float mul)
{
    const unsigned gx = (unsigned)((Lp * (d / 8) + kConvThreads - 1) / kConvThreads);
    for (int64_t b0 = 0; b0 < B; b0 += 65535) {
        const int64_t nb = B - b0 < 65535 ? B - b0 : 65535;
        const dim3 grid(gx, (unsigned)nh, (unsigned)nb);
        int e = d == 64 ? launch.template convert<64, VEC>(grid, src, dst, (int)L, (int)Lp, (int)H, (int)h0, (int)nh,
                                                           (int)b0, mul)
                        : launch.template convert<128, VEC>(grid, src, dst, (int)L, (int)Lp, (int)H, (int)h0,
                                                            (int)nh, (int)b0, mul);
        if (e)
            return e;
    }
    return 0;
}

template <class Launch>
static int convert(Launch &launch, int64_t d, const float *src, bf16 *dst, int64_t B, int64_t L, int64_t Lp,
                   int64_t H, int64_t h0, int64_t nh, float mul)
{
    if (((uintptr_t)src & 15) == 0)
        return convert_one<Launch, true>(launch, d, src, dst, B, L, Lp, H, h0, nh, mul);
    return convert_one<Launch, false>(launch, d, src, dst, B, L, Lp, H, h0, nh, mul);
}

template <class Launch, class C>
static int forward(Launch &launch, bool bias, const Params &p, int64_t Lq, int64_t nb)
{
    const dim3 grid((unsigned)((Lq + C::BR - 1) / C::BR), (unsigned)p.nh, (unsigned)nb);
    return bias ? launch.template forward<C, true>(grid, p) : launch.template forward<C, false>(grid, p);
}

template <class Launch, int D>
static int forward_variant(Launch &launch, int variant, bool bias, const Params &p, int64_t Lq, int64_t nb)
{
    switch (variant) {
    case 1:
        return forward<Launch, typename Variant<D, 1>::C>(launch, bias, p, Lq, nb);
    case 2:
        return forward<Launch, typename Variant<D, 2>::C>(launch, bias, p, Lq, nb);
    case 3:
        return forward<Launch, typename Variant<D, 3>::C>(launch, bias, p, Lq, nb);
    default:
        return forward<Launch, typename Variant<D, 0>::C>(launch, bias, p, Lq, nb);
    }
}

template <class Launch>
static int enqueue(Launch &launch, int variant, const float *q, const float *k, const float *v, const float *bias,
                   float *out, int64_t B, int64_t Lq, int64_t Lk, int64_t H, int64_t d, float scale,
                   const int32_t *kv_len, void *scratch, int64_t heads_per_pass)
{
    if (B <= 0 || Lq <= 0 || H <= 0)
        return 0;
    if ((d != 64 && d != 128) || variant < 0 || variant >= VD_CUDA_FA2_VARIANTS || Lk <= 0 || heads_per_pass <= 0 ||
        !scratch || ((uintptr_t)scratch & 15) || ((uintptr_t)out & 7))
        return ERR_INVALID;
    const int64_t Lqp = round_up(Lq, kPad), Lkp = round_up(Lk, kPad);
    /* 32-bit grid and index arithmetic: rows·chunks and H·d stay below 2³¹ */
    if (Lqp * (d / 8) > 0x7fffffff || Lkp * (d / 8) > 0x7fffffff || H * d > 0x7fffffff || Lq * Lk > INT64_MAX / H)
        return ERR_INVALID;
    for (int64_t b = 0; kv_len && b < B; b++)
        if (kv_len[b] < 1 || kv_len[b] > Lk)
            return ERR_INVALID;
    const int64_t hpp = heads_per_pass < H ? heads_per_pass : H;
    if (hpp > 65535)
        return ERR_INVALID;
    bf16 *sq = (bf16 *)scratch;
    for (int64_t h0 = 0; h0 < H; h0 += hpp) {
        const int64_t nh = H - h0 < hpp ? H - h0 : hpp;
        bf16 *sk = sq + B * nh * Lqp * d, *sv = sk + B * nh * Lkp * d;
        int e = convert(launch, d, q, sq, B, Lq, Lqp, H, h0, nh, scale * kLog2e);
        if (!e)
            e = convert(launch, d, k, sk, B, Lk, Lkp, H, h0, nh, 1.0f);
        if (!e)
            e = convert(launch, d, v, sv, B, Lk, Lkp, H, h0, nh, 1.0f);
        if (e)
            return e;
        Params p;
        p.q = sq, p.k = sk, p.v = sv, p.bias = bias, p.out = out;
        p.Lq = (int)Lq, p.Lk = (int)Lk, p.Lqp = (int)Lqp, p.Lkp = (int)Lkp, p.H = (int)H, p.nh = (int)nh;
        p.h0 = (int)h0;
        for (int64_t b0 = 0; b0 < B; b0 += kMaxBatch) {
            const int64_t nb = B - b0 < kMaxBatch ? B - b0 : kMaxBatch;
            p.b0 = (int)b0;
            for (int i = 0; i < kMaxBatch; i++)
                p.keys[i] = i < nb ? (kv_len ? kv_len[b0 + i] : (int)Lk) : 1;
            e = d == 64 ? forward_variant<Launch, 64>(launch, variant, bias != nullptr, p, Lq, nb)
                        : forward_variant<Launch, 128>(launch, variant, bias != nullptr, p, Lq, nb);
            if (e)
                return e;
        }
    }
    return 0;
}

static size_t smem_bytes(int64_t d, int variant)
{
    switch (variant * 1000 + (int)d) {
    case 1128:
        return Variant<128, 1>::C::SMEM;
    case 2128:
        return Variant<128, 2>::C::SMEM;
    case 1064:
        return Variant<64, 1>::C::SMEM;
    case 2064:
        return Variant<64, 2>::C::SMEM;
    case 3128:
        return Variant<128, 3>::C::SMEM;
    case 3064:
        return Variant<64, 3>::C::SMEM;
    case 64:
        return Variant<64, 0>::C::SMEM;
    default:
        return Variant<128, 0>::C::SMEM;
    }
}

#ifndef VD_FA2_EMULATE
struct CudaLaunch {
    cudaStream_t stream;

    template <class C, bool BIAS>
    int forward(dim3 grid, const Params &p)
    {
        auto kernel = fa2_forward<C, BIAS>;
        cudaError_t e = cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, C::SMEM);
        if (e == cudaSuccess) /* room for MIN_BLOCKS blocks per multiprocessor (a hint) */
            e = cudaFuncSetAttribute(kernel, cudaFuncAttributePreferredSharedMemoryCarveout,
                                     (int)cudaSharedmemCarveoutMaxShared);
        if (e != cudaSuccess)
            return (int)e;
        kernel<<<grid, C::THREADS, C::SMEM, stream>>>(p);
        return (int)cudaGetLastError();
    }

    template <int D, bool VEC>
    int convert(dim3 grid, const float *src, bf16 *dst, int L, int Lp, int H, int h0, int nh, int b0, float mul)
    {
        fa2_convert<D, VEC><<<grid, kConvThreads, 0, stream>>>(src, dst, L, Lp, H, h0, nh, b0, mul);
        return (int)cudaGetLastError();
    }
};
#endif

} // namespace fa2

extern "C" int vd_cuda_attention_fa2_supported(int64_t d, int64_t dv) { return d == dv && (d == 64 || d == 128); }

extern "C" size_t vd_cuda_attention_fa2_smem_bytes(int64_t d, int variant) { return fa2::smem_bytes(d, variant); }

extern "C" size_t vd_cuda_attention_fa2_scratch_bytes(int64_t B, int64_t Lq, int64_t Lk, int64_t heads, int64_t d)
{
    return (size_t)(fa2::per_head_bytes(B, Lq, Lk, d) * heads);
}

extern "C" int64_t vd_cuda_attention_fa2_heads_per_pass(int64_t B, int64_t Lq, int64_t Lk, int64_t H, int64_t d,
                                                        size_t max_bytes)
{
    const int64_t per = fa2::per_head_bytes(B, Lq, Lk, d);
    int64_t n = per > 0 ? (int64_t)(max_bytes / (size_t)per) : H;
    if (n > H)
        n = H;
    if (n > 65535)
        n = 65535;
    return n < 1 ? 1 : n;
}

extern "C" int vd_cuda_attention_fa2_aligned(const float *out) { return ((uintptr_t)out & 7) == 0; }

#ifndef VD_FA2_EMULATE
extern "C" int vd_cuda_attention_fa2(int variant, const float *q, const float *k, const float *v, const float *bias,
                                     float *out, int64_t B, int64_t Lq, int64_t Lk, int64_t H, int64_t d, float scale,
                                     const int32_t *kv_len, void *scratch, int64_t heads_per_pass, void *stream)
{
    fa2::CudaLaunch launch{(cudaStream_t)stream};
    return fa2::enqueue(launch, variant, q, k, v, bias, out, B, Lq, Lk, H, d, scale, kv_len, scratch,
                        heads_per_pass);
}
#endif

/* FlashAttention-2-style attention forward (kernels/attention_fa2.cu): q, k
 * and v are first converted once per call into bf16 copies laid out head by
 * head ([B, heads, L padded, d], q pre-multiplied by scale·log2 e), then one
 * kernel streams K/V tiles through shared memory with cp.async double
 * buffering, ldmatrix and mma.sync m16n8k16 (bf16 in, fp32 accumulation and
 * softmax).  Head sizes d == dv ∈ {64, 128}, sm_80+.  Same semantics as
 * vd_cuda_attention (bias [H,Lq,Lk] shared by the batch, per-batch kv_len
 * from a HOST array, out f32 [B,Lq,H,d]).  C ABI, called only from
 * engine/backend/cuda; launches are enqueued on `stream` and the return
 * value is a cudaError_t as an int. */
#ifndef VD_KERNELS_ATTENTION_FA2_H
#define VD_KERNELS_ATTENTION_FA2_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Kernel shapes, selectable for comparison (VD_CUDA_FA2_VARIANT):
 *   0  128 queries per block, 4 warps of 32 query rows, Q re-read from shared
 *      memory each tile (FlashAttention-2's own sm80 shape); the default
 *   1  128 queries per block, 8 warps of 16 rows, Q fragments in registers
 *   2   64 queries per block, 4 warps of 16 rows, Q fragments in registers
 *   3  as 0 with key tiles of half the size (fewer registers)
 * Key tiles: 64 keys for d = 128, 128 keys for d = 64 (variant 3: 32, 64). */
enum { VD_CUDA_FA2_VARIANTS = 4 };

/* Whether the kernel handles these head sizes. */
int vd_cuda_attention_fa2_supported(int64_t d, int64_t dv);

/* Dynamic shared memory of one block. */
size_t vd_cuda_attention_fa2_smem_bytes(int64_t d, int variant);

/* Bytes of bf16 scratch for `heads` heads of every batch (q, k and v). */
size_t vd_cuda_attention_fa2_scratch_bytes(int64_t B, int64_t Lq, int64_t Lk, int64_t heads, int64_t d);

/* How many heads to convert and process at a time so that the scratch
 * stays within max_bytes (at least 1, at most H). */
int64_t vd_cuda_attention_fa2_heads_per_pass(int64_t B, int64_t Lq, int64_t Lk, int64_t H, int64_t d,
                                             size_t max_bytes);

/* Whether these pointers suit the kernel (out 8-byte aligned, ...); the
 * caller uses another kernel otherwise. */
int vd_cuda_attention_fa2_aligned(const float *out);

/* q [B,Lq,H,d], k [B,Lk,H,d], v [B,Lk,H,d], out [B,Lq,H,d], bias NULL or
 * [H,Lq,Lk], all f32 device arrays; kv_len NULL or a HOST array of B key
 * counts (1..Lk).  scratch: a device block of at least
 * vd_cuda_attention_fa2_scratch_bytes(B, Lq, Lk, heads_per_pass, d) bytes,
 * 16-byte aligned, free for the duration of the enqueued work. */
int vd_cuda_attention_fa2(int variant, const float *q, const float *k, const float *v, const float *bias,
                          float *out, int64_t B, int64_t Lq, int64_t Lk, int64_t H, int64_t d, float scale,
                          const int32_t *kv_len, void *scratch, int64_t heads_per_pass, void *stream);

#ifdef __cplusplus
}
#endif
#endif

/* Fused attention (backend.h vd_op_attention): softmax(q·kᵀ·scale + bias)·v
 * with an online softmax over key tiles; the Lq×Lk scores never exist in
 * memory.  C ABI, called only from engine/backend/cuda; enqueues on
 * `stream` and returns the cudaError_t of the launches as an int. */
#ifndef VD_KERNELS_ATTENTION_H
#define VD_KERNELS_ATTENTION_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The two kernels of attention.cu (the FlashAttention-2-style kernel that
 * the backend prefers for head sizes 64 and 128 is in attention_fa2.h). */
enum {
    VD_CUDA_ATTN_TENSOR_CORES = 0, /* bf16 mma.sync, fp32 softmax/accumulation; d == dv ∈ {64, 128}; sm_80+ */
    VD_CUDA_ATTN_F32 = 1           /* fp32 throughout; any d, dv (shared memory permitting) */
};

/* Whether the tensor-core kernel handles these head sizes. */
int vd_cuda_attention_tc_supported(int64_t d, int64_t dv);

/* Dynamic shared memory one block of `kind` needs. */
size_t vd_cuda_attention_smem_bytes(int kind, int64_t d, int64_t dv);

/* q [B,Lq,H,d], k [B,Lk,H,d], v [B,Lk,H,dv], out [B,Lq,H,dv], bias NULL or
 * [H,Lq,Lk] (shared by the batch), all f32 device arrays; kv_len NULL or a
 * HOST array of B key counts (1..Lk).  The caller has checked that the
 * kind suits the device and the shared memory fits. */
int vd_cuda_attention(int kind, const float *q, const float *k, const float *v, const float *bias, float *out,
                      int64_t B, int64_t Lq, int64_t Lk, int64_t H, int64_t d, int64_t dv, float scale,
                      const int32_t *kv_len, void *stream);

#ifdef __cplusplus
}
#endif
#endif

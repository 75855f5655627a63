/* Attention on CUDA (kernels/attention.cu): the bf16 tensor-core kernel for
 * head sizes 64 and 128 on sm_80+, the fp32 kernel for every other size
 * (and as a reference with VD_CUDA_ATTENTION=f32). */
#include "attention.h"
#include "backend/cuda/cuda_internal.h"
#include "core/error.h"

vd_status cuda_attention(vd_backend *be, const vd_tensor *q, const vd_tensor *k, const vd_tensor *v, float scale,
                         const vd_tensor *bias, const int32_t *kv_len, vd_tensor *out)
{
    cuda_use_device(be);
    cuda_ctx *c = cuda_ctx_of(be);
    int64_t B = q->shape[0], Lq = q->shape[1], H = q->shape[2], d = q->shape[3];
    int64_t Lk = k->shape[1], dv = v->shape[3];
    if (B == 0 || Lq == 0 || H == 0 || dv == 0)
        return VD_OK;
    int kind = VD_CUDA_ATTN_F32;
    if (!c->force_f32_attention && c->cc_major >= 8 && vd_cuda_attention_tc_supported(d, dv))
        kind = VD_CUDA_ATTN_TENSOR_CORES;
    size_t smem = vd_cuda_attention_smem_bytes(kind, d, dv);
    if (smem > c->smem_optin) {
        char dq[200];
        return vd_error(VD_ERR_UNSUPPORTED,
                        "%s: attention of %s with value size %lld needs %zu bytes of shared memory per block, this "
                        "GPU allows %zu (head sizes up to about 512 fit on Hopper and Ampere)",
                        be->name, cuda_describe("q", q, dq, sizeof dq), (long long)dv, smem, c->smem_optin);
    }
    int err = vd_cuda_attention(kind, q->data, k->data, v->data, bias ? bias->data : NULL, out->data, B, Lq, Lk, H, d,
                                dv, scale, kv_len, cuda_stream(be));
    return cuda_op_result(be, err, kind == VD_CUDA_ATTN_TENSOR_CORES ? "attention (bf16 tensor cores)"
                                                                     : "attention (fp32)",
                          "q", q, "k", k, "v", v);
}

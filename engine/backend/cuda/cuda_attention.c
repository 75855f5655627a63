/* Attention on CUDA.  Kernels, in order of preference:
 *   cudnn cuDNN's fused flash attention (cuda_attention_cudnn.c), in builds
 *         with cuDNN (VD_HAVE_CUDNN): q, k, v converted into bf16 scratch
 *         copies, cuDNN's SDPA graph, the bf16 result converted back; for
 *         calls without bias or kv_len, head sizes d == dv ∈ {64, 128}, on
 *         sm_80+.  Its scratch, 4·B·H·d·(Lq + Lk) bytes, is one block (not
 *         split into head passes, not capped by VD_CUDA_SCRATCH_LIMIT).
 *         Where cuDNN cannot run a call (no engine for the shapes:
 *         remembered, not retried; its scratch does not fit in GPU memory;
 *         an old GPU or library), fa2 runs it, silently (VD_DEBUG=1 says
 *         why).  The default where it applies.
 *   fa2   kernels/attention_fa2.cu: q, k, v converted once per call into bf16
 *         head-major scratch copies, then a FlashAttention-2-style kernel
 *         (cp.async double buffering, ldmatrix, mma.sync); head sizes
 *         d == dv ∈ {64, 128} on sm_80+.  The default without cuDNN, and
 *         for bias and kv_len.
 *   mma   kernels/attention.cu's older bf16 tensor-core kernel (converts f32
 *         tiles itself; no scratch): same head sizes; used where fa2 cannot
 *         run (its scratch does not fit, an odd output address).
 *   f32   kernels/attention.cu's fp32 kernel: every other head size, and a
 *         reference.
 * Environment (read at each call, except f32):
 *   VD_CUDA_ATTENTION=cudnn     cuDNN for every call it is meant for (no
 *                               bias, no kv_len, d == dv ∈ {64, 128}) with
 *                               no fallback: where it cannot run (or the
 *                               build has no cuDNN), the op fails and says
 *                               why; other calls run as by default
 *   VD_CUDA_ATTENTION=mma|f32   that kernel wherever it supports the shapes
 *                               (f32: read when the backend opens)
 *   VD_CUDA_ATTENTION=fa2       fa2 for d == dv ∈ {64, 128} with no fallback:
 *                               where it cannot run, the op fails and says
 *                               why (tests use it to know fa2 ran; cuDNN is
 *                               skipped, so fa2 can be timed against it)
 *   VD_CUDA_FA2_VARIANT=0..3    the fa2 kernel's block shape (attention_fa2.h)
 *   VD_CUDNN_SDPA=unified       try cuDNN's single SDPA_FWD operation
 *                               (cuDNN 9.13.1+) before the composite graph */
#include <stdlib.h>
#include <string.h>

#include "attention.h"
#include "attention_fa2.h"
#include "backend/cuda/cuda_internal.h"
#include "core/error.h"
#include "vd_config.h"
#if VD_HAVE_CUDNN
#include "backend/cuda/cuda_attention_cudnn.h"
#endif

/* The fa2 scratch (bf16 q, k, v) is split into passes over groups of heads
 * beyond this (VD_CUDA_SCRATCH_LIMIT lowers it): Wan 14B at 81 frames of
 * 720p, 32760 tokens × 40 heads, needs 0.94 GiB in one pass. */
#define FA2_SCRATCH_BYTES ((int64_t)1 << 30)

static int fa2_variant(void)
{
    const char *s = getenv("VD_CUDA_FA2_VARIANT");
    int v = s ? atoi(s) : 0;
    return v >= 0 && v < VD_CUDA_FA2_VARIANTS ? v : 0;
}

/* The fa2 kernel, or VD_ERR_UNSUPPORTED (with *why set, no message) when
 * it cannot run here and another kernel should. */
static vd_status attention_fa2(vd_backend *be, const vd_tensor *q, const vd_tensor *k, const vd_tensor *v,
                               float scale, const vd_tensor *bias, const int32_t *kv_len, vd_tensor *out,
                               const char **why)
{
    cuda_ctx *c = cuda_ctx_of(be);
    const int64_t B = q->shape[0], Lq = q->shape[1], H = q->shape[2], d = q->shape[3], Lk = k->shape[1];
    const int variant = fa2_variant();
    *why = c->cc_major < 8                                           ? "it needs compute capability 8.0"
           : !vd_cuda_attention_fa2_supported(d, v->shape[3])        ? "it handles head sizes d == dv in {64, 128}"
           : !vd_cuda_attention_fa2_aligned(out->data)               ? "the output is not 8-byte aligned"
           : vd_cuda_attention_fa2_smem_bytes(d, variant) > c->smem_optin ? "its shared memory does not fit"
                                                                           : NULL;
    if (*why)
        return VD_ERR_UNSUPPORTED;
    const int64_t hpp =
        vd_cuda_attention_fa2_heads_per_pass(B, Lq, Lk, H, d, (size_t)cuda_scratch_bound(be, FA2_SCRATCH_BYTES));
    cuda_block *scratch = NULL;
    vd_status s = cuda_pool_alloc(be, vd_cuda_attention_fa2_scratch_bytes(B, Lq, Lk, hpp, d),
                                  "attention's bf16 copies of q, k and v", &scratch);
    if (s == VD_ERR_OUT_OF_MEMORY) {
        *why = "its scratch does not fit in GPU memory";
        return VD_ERR_UNSUPPORTED; /* the mma kernel needs no scratch */
    }
    if (s != VD_OK)
        return s;
    int err = vd_cuda_attention_fa2(variant, q->data, k->data, v->data, bias ? bias->data : NULL, out->data, B, Lq,
                                    Lk, H, d, scale, kv_len, scratch->ptr, hpp, cuda_stream(be));
    cuda_pool_free(be, scratch); /* stream order: whoever gets it next runs after these kernels */
    return cuda_op_result(be, err, "attention (bf16 FlashAttention-2 kernel)", "q", q, "k", k, "v", v);
}

/* The calls the cuDNN path is meant for (the others never try it). */
static bool cudnn_meant_for(int64_t d, int64_t dv, const vd_tensor *bias, const int32_t *kv_len)
{
    return !bias && !kv_len && d == dv && (d == 64 || d == 128);
}

/* cuDNN's fused flash attention (a call it is meant for), or
 * VD_ERR_UNSUPPORTED (no message) when fa2 should run the call; under
 * VD_CUDA_ATTENTION=cudnn (forced) an error saying why instead. */
static vd_status attention_cudnn(vd_backend *be, const vd_tensor *q, const vd_tensor *k, const vd_tensor *v,
                                 float scale, vd_tensor *out, bool forced)
{
    const char *why = NULL;
#if VD_HAVE_CUDNN
    vd_status s = cuda_attention_cudnn(be, q, k, v, scale, out, &why);
    if (s != VD_ERR_UNSUPPORTED || !forced)
        return s;
#else
    (void)k, (void)scale, (void)out;
    if (!forced)
        return VD_ERR_UNSUPPORTED;
    why = "this build has no cuDNN (configure with -Dcudnn=enabled, and -Dcudnn_root=DIR where cuDNN comes from "
          "a pip wheel)";
#endif
    char dq[200];
    return vd_error(VD_ERR_UNSUPPORTED, "%s: attention of %s: VD_CUDA_ATTENTION=cudnn, but cuDNN cannot run it: %s",
                    be->name, cuda_describe("q", q, dq, sizeof dq), why ? why : "unknown reason");
}

vd_status cuda_attention(vd_backend *be, const vd_tensor *q, const vd_tensor *k, const vd_tensor *v, float scale,
                         const vd_tensor *bias, const int32_t *kv_len, vd_tensor *out)
{
    cuda_use_device(be);
    cuda_ctx *c = cuda_ctx_of(be);
    int64_t B = q->shape[0], Lq = q->shape[1], H = q->shape[2], d = q->shape[3];
    int64_t Lk = k->shape[1], dv = v->shape[3];
    if (B == 0 || Lq == 0 || H == 0 || dv == 0)
        return VD_OK;
    const char *sel = getenv("VD_CUDA_ATTENTION");
    const bool want_mma = sel && strcmp(sel, "mma") == 0, want_fa2 = sel && strcmp(sel, "fa2") == 0;
    const bool want_cudnn = sel && strcmp(sel, "cudnn") == 0;
    if (!c->force_f32_attention && !want_mma && !want_fa2 && Lk > 0 && cudnn_meant_for(d, dv, bias, kv_len)) {
        vd_status s = attention_cudnn(be, q, k, v, scale, out, want_cudnn);
        if (s != VD_ERR_UNSUPPORTED || want_cudnn)
            return s;
    }
    if (!c->force_f32_attention && !want_mma && Lk > 0 && d > 0) {
        const char *why = NULL;
        vd_status s = attention_fa2(be, q, k, v, scale, bias, kv_len, out, &why);
        if (s != VD_ERR_UNSUPPORTED)
            return s;
        if (want_fa2 && vd_cuda_attention_fa2_supported(d, dv)) {
            char dq[200];
            return vd_error(VD_ERR_UNSUPPORTED, "%s: attention of %s: VD_CUDA_ATTENTION=fa2, but %s", be->name,
                            cuda_describe("q", q, dq, sizeof dq), why ? why : "the fa2 kernel cannot run");
        }
    }
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

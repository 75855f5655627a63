/* LayerNorm with modulation, RMSNorm and the VAE's channel RMS norm on
 * CUDA (kernels/norms.cu).  Parameters in other dtypes are converted to f32
 * first. */
#include "backend/cuda/cuda_internal.h"
#include "core/error.h"
#include "norms.h"

vd_status cuda_layernorm_modulate(vd_backend *be, const vd_tensor *x, float eps, const vd_tensor *weight,
                                  const vd_tensor *bias, const vd_tensor *shift, const vd_tensor *scale,
                                  vd_tensor *out)
{
    cuda_use_device(be);
    const char *op = "layernorm_modulate";
    int64_t D = x->ndim ? x->shape[x->ndim - 1] : 1;
    int64_t M = D ? vd_tensor_nelem(x) / D : 0;
    if (M == 0)
        return VD_OK;
    const float *pw, *pb, *psh, *psc;
    cuda_block *owned[4] = {NULL, NULL, NULL, NULL};
    vd_status s;
    if ((s = cuda_param_f32(be, weight, op, "weight", &pw, &owned[0])) == VD_OK &&
        (s = cuda_param_f32(be, bias, op, "bias", &pb, &owned[1])) == VD_OK &&
        (s = cuda_param_f32(be, shift, op, "shift", &psh, &owned[2])) == VD_OK &&
        (s = cuda_param_f32(be, scale, op, "scale", &psc, &owned[3])) == VD_OK) {
        int64_t shift_group = shift ? M / (vd_tensor_nelem(shift) / D) : 1;
        int64_t scale_group = scale ? M / (vd_tensor_nelem(scale) / D) : 1;
        int err = vd_cuda_layernorm_modulate(x->data, out->data, M, D, eps, pw, pb, psh, shift_group, psc,
                                             scale_group, cuda_stream(be));
        s = cuda_op_result(be, err, op, "x", x, "shift", shift, "scale", scale);
    }
    for (int i = 0; i < 4; i++)
        cuda_pool_free(be, owned[i]);
    return s;
}

vd_status cuda_rmsnorm(vd_backend *be, const vd_tensor *x, const vd_tensor *weight, float eps, vd_tensor *out)
{
    cuda_use_device(be);
    int64_t D = x->ndim ? x->shape[x->ndim - 1] : 1;
    int64_t M = D ? vd_tensor_nelem(x) / D : 0;
    if (M == 0)
        return VD_OK;
    const float *pw;
    cuda_block *owned;
    VD_TRY(cuda_param_f32(be, weight, "rmsnorm", "weight", &pw, &owned));
    int err = vd_cuda_rmsnorm(x->data, out->data, M, D, eps, pw, cuda_stream(be));
    cuda_pool_free(be, owned);
    return cuda_op_result(be, err, "rmsnorm", "x", x, "weight", weight, "out", out);
}

vd_status cuda_channel_rmsnorm(vd_backend *be, const vd_tensor *x, const vd_tensor *gamma, vd_tensor *out)
{
    cuda_use_device(be);
    int64_t C = x->shape[0];
    int64_t P = C ? vd_tensor_nelem(x) / C : 0;
    if (P == 0)
        return VD_OK;
    const float *pg;
    cuda_block *owned;
    VD_TRY(cuda_param_f32(be, gamma, "channel_rmsnorm", "gamma", &pg, &owned));
    int err = vd_cuda_channel_rmsnorm(x->data, out->data, C, P, pg, cuda_stream(be));
    cuda_pool_free(be, owned);
    return cuda_op_result(be, err, "channel_rmsnorm", "x", x, "gamma", gamma, "out", out);
}

/* Elementwise ops on CUDA: activations, add/mul with row broadcast, the
 * gated residual update (kernels/elementwise.cu) and nearest 2x upsampling
 * (kernels/upsample.cu).  Broadcast parameters in other dtypes are
 * converted to f32 first. */
#include "backend/cuda/cuda_internal.h"
#include "core/error.h"
#include "elementwise.h"
#include "upsample.h"

static const char *const unary_names[] = {"silu", "gelu_tanh", "gelu_erf"};

vd_status cuda_unary(vd_backend *be, int op, const vd_tensor *x, vd_tensor *out)
{
    cuda_use_device(be);
    if (op < VD_UNARY_SILU || op > VD_UNARY_GELU_ERF)
        return vd_error(VD_ERR_INVALID_ARGUMENT, "unary: unknown op %d", op);
    int64_t n = vd_tensor_nelem(x);
    if (n == 0)
        return VD_OK;
    int err = vd_cuda_unary_f32(op, x->data, out->data, n, cuda_stream(be));
    return cuda_op_result(be, err, unary_names[op], "x", x, "out", out, NULL, NULL);
}

/* out = a (+|·) b, or a + y·b (gated), b row-broadcast. */
static vd_status broadcast(vd_backend *be, const char *op, int kind, const vd_tensor *a, const vd_tensor *y,
                           const vd_tensor *b, vd_tensor *out)
{
    cuda_use_device(be);
    int64_t n = vd_tensor_nelem(a);
    if (n == 0)
        return VD_OK;
    int64_t d = b->ndim ? b->shape[b->ndim - 1] : 1;
    const float *bv;
    cuda_block *owned;
    VD_TRY(cuda_param_f32(be, b, op, y ? "gate" : "b", &bv, &owned));
    int err = y ? vd_cuda_add_gated_f32(a->data, y->data, bv, out->data, n, vd_tensor_nelem(b), d, cuda_stream(be))
                : vd_cuda_binary_f32(kind, a->data, bv, out->data, n, vd_tensor_nelem(b), d, cuda_stream(be));
    cuda_pool_free(be, owned);
    return cuda_op_result(be, err, op, y ? "x" : "a", a, y ? "gate" : "b", b, "out", out);
}

vd_status cuda_binary(vd_backend *be, int op, const vd_tensor *a, const vd_tensor *b, vd_tensor *out)
{
    if (op == VD_BINARY_ADD)
        return broadcast(be, "add", 0, a, NULL, b, out);
    if (op == VD_BINARY_MUL)
        return broadcast(be, "mul", 1, a, NULL, b, out);
    return vd_error(VD_ERR_INVALID_ARGUMENT, "binary: unknown op %d", op);
}

vd_status cuda_add_gated(vd_backend *be, const vd_tensor *x, const vd_tensor *y, const vd_tensor *gate,
                         vd_tensor *out)
{
    return broadcast(be, "add_gated", 0, x, y, gate, out);
}

vd_status cuda_upsample2x(vd_backend *be, const vd_tensor *x, vd_tensor *out)
{
    cuda_use_device(be);
    int64_t H = x->shape[x->ndim - 2], W = x->shape[x->ndim - 1];
    if (H == 0 || W == 0 || vd_tensor_nelem(x) == 0)
        return VD_OK;
    int64_t planes = vd_tensor_nelem(x) / (H * W);
    int err = vd_cuda_upsample2x_f32(x->data, out->data, planes, H, W, cuda_stream(be));
    return cuda_op_result(be, err, "upsample2x", "x", x, "out", out, NULL, NULL);
}

/* The Wan 3-D RoPE on CUDA (kernels/rope.cu): cos/sin tables of the
 * positions in a scratch block, then the rotation. */
#include "backend/cuda/cuda_internal.h"
#include "core/error.h"
#include "rope.h"

vd_status cuda_rope3d(vd_backend *be, const vd_tensor *x, int64_t frames, int64_t height, int64_t width, double theta,
                      vd_tensor *out)
{
    cuda_use_device(be);
    int64_t d = x->shape[x->ndim - 1], H = x->shape[x->ndim - 2];
    int64_t M = H * d > 0 ? vd_tensor_nelem(x) / (H * d) : 0;
    if (M == 0)
        return VD_OK;
    int64_t entries = vd_cuda_rope3d_table_size(d, frames, height, width);
    cuda_block *table;
    VD_TRY(cuda_pool_alloc(be, (size_t)(entries > 0 ? entries : 1) * sizeof(double), "rope3d's angle tables", &table));
    int err = vd_cuda_rope3d(x->data, out->data, M, H, d, frames, height, width, theta, table->ptr, cuda_stream(be));
    cuda_pool_free(be, table);
    return cuda_op_result(be, err, "rope3d", "x", x, "out", out, NULL, NULL);
}

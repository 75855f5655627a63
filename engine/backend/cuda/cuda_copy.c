/* Strided copies (with dtype conversion to f32), fills of strided views,
 * and row gathers from tables in any storage dtype. */
#include <stdlib.h>

#include "backend/cuda/cuda_internal.h"
#include "copy.h"
#include "core/error.h"
#include "dequant.h"
#include "elementwise.h"

/* A walk over one or two tensors of the same shape, as the CPU backend
 * builds it: size-1 dimensions dropped, dimensions contiguous in both
 * merged.  b NULL: a single tensor (stride[1] = 0). */
static void walk_init(vd_cuda_walk *w, const vd_tensor *a, const vd_tensor *b)
{
    int n = 0;
    for (int i = 0; i < a->ndim; i++) {
        if (a->shape[i] == 1)
            continue;
        if (n > 0 && w->stride[0][n - 1] == a->stride[i] * a->shape[i] &&
            (!b || w->stride[1][n - 1] == b->stride[i] * a->shape[i])) {
            w->shape[n - 1] *= a->shape[i];
            w->stride[0][n - 1] = a->stride[i];
            w->stride[1][n - 1] = b ? b->stride[i] : 0;
            continue;
        }
        w->shape[n] = a->shape[i];
        w->stride[0][n] = a->stride[i];
        w->stride[1][n] = b ? b->stride[i] : 0;
        n++;
    }
    if (n == 0) {
        w->shape[0] = 1;
        w->stride[0][0] = w->stride[1][0] = 1;
        n = 1;
    }
    w->ndim = n;
}

vd_status cuda_copy(vd_backend *be, const vd_tensor *src, vd_tensor *dst)
{
    cuda_use_device(be);
    if (vd_tensor_nelem(src) == 0)
        return VD_OK;
    const bool convert = src->dtype != dst->dtype || (src->dtype == VD_F32 && src->scale != 1.0f);
    vd_cuda_walk w;
    walk_init(&w, src, dst);
    if (!convert && src->data == dst->data) {
        bool same = true;
        for (int i = 0; i < w.ndim; i++)
            same = same && w.stride[0][i] == w.stride[1][i];
        if (same)
            return VD_OK;
    }
    int err = vd_cuda_copy_strided(&w, convert, (int)src->dtype, vd_dtype_info(src->dtype)->block_bytes, src->scale,
                                   src->data, dst->data, cuda_stream(be));
    return cuda_op_result(be, err, "copy", "src", src, "dst", dst, NULL, NULL);
}

vd_status cuda_fill(vd_backend *be, vd_tensor *t, float value)
{
    cuda_use_device(be);
    int64_t n = vd_tensor_nelem(t);
    if (n == 0)
        return VD_OK;
    int err;
    if (vd_tensor_is_contiguous(t)) {
        err = vd_cuda_fill_f32(t->data, value, n, cuda_stream(be));
    } else {
        vd_cuda_walk w;
        walk_init(&w, t, NULL);
        err = vd_cuda_fill_strided(&w, t->data, value, cuda_stream(be));
    }
    return cuda_op_result(be, err, "fill", "t", t, NULL, NULL, NULL, NULL);
}

/* The ids live on the device; they are read back (a synchronisation) and
 * checked here, so the kernel never reads outside the table. */
vd_status cuda_get_rows(vd_backend *be, const vd_tensor *table, const vd_tensor *ids, vd_tensor *out)
{
    cuda_use_device(be);
    int64_t n = vd_tensor_nelem(ids), rows = table->shape[0], D = table->shape[1];
    if (n == 0)
        return VD_OK;
    int32_t *host = malloc((size_t)n * sizeof *host);
    if (!host)
        return vd_error(VD_ERR_OUT_OF_MEMORY, "get_rows: out of host memory for %lld ids", (long long)n);
    cudaError_t e = cudaMemcpyAsync(host, ids->data, (size_t)n * sizeof *host, cudaMemcpyDeviceToHost, cuda_stream(be));
    if (e == cudaSuccess)
        e = cudaStreamSynchronize(cuda_stream(be));
    if (e != cudaSuccess) {
        free(host);
        return cuda_op_result(be, (int)e, "get_rows (reading the ids)", "ids", ids, "table", table, NULL, NULL);
    }
    for (int64_t i = 0; i < n; i++)
        if (host[i] < 0 || host[i] >= rows) {
            int32_t bad = host[i];
            free(host);
            return vd_error(VD_ERR_INVALID_ARGUMENT, "get_rows: ids[%lld] = %d is outside table%s%s%s (%lld rows)",
                            (long long)i, (int)bad, table->name ? " '" : "", table->name ? table->name : "",
                            table->name ? "'" : "", (long long)rows);
        }
    free(host);
    if (D == 0)
        return VD_OK;
    int err = vd_cuda_dequant_rows((int)table->dtype, table->data, cuda_row_bytes(table->dtype, D), ids->data, 0, n, D,
                                   table->scale, VD_CUDA_OUT_F32, out->data, cuda_stream(be));
    return cuda_op_result(be, err, "get_rows", "table", table, "ids", ids, "out", out);
}

/* Error reporting and parameter conversion shared by the CUDA ops. */
#include <stdio.h>
#include <string.h>

#include "backend/cuda/cuda_internal.h"
#include "core/error.h"
#include "dequant.h"

const char *cuda_describe(const char *role, const vd_tensor *t, char *buf, size_t size)
{
    char sh[96];
    vd_shape_str(t, sh, sizeof sh);
    if (t->name)
        snprintf(buf, size, "%s '%s' %s %s", role, t->name, sh, vd_dtype_name(t->dtype));
    else
        snprintf(buf, size, "%s %s %s", role, sh, vd_dtype_name(t->dtype));
    return buf;
}

vd_status cuda_op_result(vd_backend *be, int err, const char *op, const char *r1, const vd_tensor *t1,
                         const char *r2, const vd_tensor *t2, const char *r3, const vd_tensor *t3)
{
    cudaError_t e = (cudaError_t)err;
    const char *when = "launch";
    if (e == cudaSuccess && cuda_ctx_of(be)->sync_each_op) {
        e = cudaStreamSynchronize(cuda_stream(be));
        when = "execution";
    }
    if (e == cudaSuccess)
        return VD_OK;
    cudaGetLastError(); /* clear a non-sticky error; a sticky one stays with the context */
    char d1[200] = "", d2[200] = "", d3[200] = "";
    if (r1 && t1)
        cuda_describe(r1, t1, d1, sizeof d1);
    if (r2 && t2)
        cuda_describe(r2, t2, d2, sizeof d2);
    if (r3 && t3)
        cuda_describe(r3, t3, d3, sizeof d3);
    vd_status s = e == cudaErrorMemoryAllocation ? VD_ERR_OUT_OF_MEMORY : VD_ERR_DEVICE;
    return vd_error(s, "%s: %s of %s (%s%s%s%s%s) failed: %s (%s)%s", be->name, when, op, d1, d2[0] ? ", " : "", d2,
                    d3[0] ? ", " : "", d3, cudaGetErrorString(e), cudaGetErrorName(e),
                    cuda_ctx_of(be)->sync_each_op ? ""
                                                  : "; an asynchronous fault may belong to an earlier op: rerun "
                                                    "with VD_CUDA_SYNC=1 to find it");
}

vd_status cuda_blas_fail(vd_backend *be, int status, const char *call, const char *op, const char *shapes)
{
    cublasStatus_t st = (cublasStatus_t)status;
    vd_status s = st == CUBLAS_STATUS_ALLOC_FAILED ? VD_ERR_OUT_OF_MEMORY : VD_ERR_DEVICE;
    return vd_error(s, "%s: %s: %s failed for %s: %s (%s)", be->name, op, call, shapes, cublasGetStatusName(st),
                    cublasGetStatusString(st));
}

int64_t cuda_scratch_bound(vd_backend *be, int64_t bytes)
{
    int64_t limit = cuda_ctx_of(be)->scratch_limit;
    return limit > 0 && limit < bytes ? limit : bytes;
}

int64_t cuda_row_bytes(vd_dtype dtype, int64_t cols)
{
    const vd_dtype_traits *tr = vd_dtype_info(dtype);
    return cols / tr->block_elems * tr->block_bytes;
}

vd_status cuda_param_f32(vd_backend *be, const vd_tensor *t, const char *op, const char *role, const float **values,
                         cuda_block **owned)
{
    *values = NULL;
    *owned = NULL;
    if (!t)
        return VD_OK;
    if (t->dtype == VD_F32 && t->scale == 1.0f && ((uintptr_t)t->data & 3) == 0) {
        *values = t->data;
        return VD_OK;
    }
    int64_t n = vd_tensor_nelem(t);
    cuda_block *b;
    char what[160];
    snprintf(what, sizeof what, "%s's %s in f32", op, role);
    VD_TRY(cuda_pool_alloc(be, (size_t)(n > 0 ? n : 1) * sizeof(float), what, &b));
    int err = vd_cuda_dequant_rows((int)t->dtype, t->data, cuda_row_bytes(t->dtype, n), NULL, 0, 1, n, t->scale,
                                   VD_CUDA_OUT_F32, b->ptr, cuda_stream(be));
    if (err) {
        cuda_pool_free(be, b);
        char d[200];
        return vd_error(VD_ERR_DEVICE, "%s: %s: converting %s to f32 failed: %s", be->name, op,
                        cuda_describe(role, t, d, sizeof d), cudaGetErrorString((cudaError_t)err));
    }
    *values = b->ptr;
    *owned = b;
    return VD_OK;
}

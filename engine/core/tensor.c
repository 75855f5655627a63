#include "core/tensor.h"

#include <stdio.h>
#include <string.h>

#include "core/error.h"

static void contiguous_strides(vd_tensor *t)
{
    int64_t s = 1;
    for (int i = t->ndim - 1; i >= 0; i--) {
        t->stride[i] = s;
        s *= t->shape[i] > 0 ? t->shape[i] : 1;
    }
}

vd_status vd_tensor_init(vd_tensor *t, vd_dtype dtype, int ndim, const int64_t *shape, void *data)
{
    memset(t, 0, sizeof *t);
    if (!vd_dtype_info(dtype))
        return vd_error(VD_ERR_INVALID_ARGUMENT, "tensor: invalid dtype %d", (int)dtype);
    if (ndim < 0 || ndim > VD_MAX_DIMS)
        return vd_error(VD_ERR_SHAPE, "tensor: %d dimensions (at most %d are supported)", ndim, VD_MAX_DIMS);
    int64_t n = 1;
    for (int i = 0; i < ndim; i++) {
        if (shape[i] < 0)
            return vd_error(VD_ERR_SHAPE, "tensor: negative dimension %lld", (long long)shape[i]);
        if (shape[i] > 0 && n > INT64_MAX / shape[i])
            return vd_error(VD_ERR_SHAPE, "tensor: element count overflows");
        n *= shape[i];
        t->shape[i] = shape[i];
    }
    t->dtype = dtype;
    t->ndim = ndim;
    t->data = data;
    t->scale = 1.0f;
    contiguous_strides(t);
    size_t bytes;
    vd_status s = vd_dtype_nbytes(dtype, n, &bytes);
    if (s != VD_OK)
        return s;
    if (ndim > 0 && vd_dtype_info(dtype)->block_elems > 1 &&
        shape[ndim - 1] % vd_dtype_info(dtype)->block_elems != 0)
        return vd_error(VD_ERR_SHAPE, "tensor: innermost dimension %lld is not a multiple of the %s block size %d",
                        (long long)shape[ndim - 1], vd_dtype_name(dtype), vd_dtype_info(dtype)->block_elems);
    return VD_OK;
}

int64_t vd_tensor_nelem(const vd_tensor *t)
{
    int64_t n = 1;
    for (int i = 0; i < t->ndim; i++)
        n *= t->shape[i];
    return n;
}

size_t vd_tensor_nbytes(const vd_tensor *t)
{
    size_t bytes = 0;
    if (vd_dtype_nbytes(t->dtype, vd_tensor_nelem(t), &bytes) != VD_OK)
        return 0;
    return bytes;
}

bool vd_tensor_is_contiguous(const vd_tensor *t)
{
    /* No elements: any strides describe the same (empty) memory.  Without
     * this, [3, 0] as vd_tensor_init lays it out would not count. */
    for (int i = 0; i < t->ndim; i++)
        if (t->shape[i] == 0)
            return true;
    int64_t s = 1;
    for (int i = t->ndim - 1; i >= 0; i--) {
        if (t->shape[i] != 1 && t->stride[i] != s)
            return false;
        s *= t->shape[i];
    }
    return true;
}

bool vd_tensor_same_shape(const vd_tensor *a, const vd_tensor *b)
{
    if (a->ndim != b->ndim)
        return false;
    for (int i = 0; i < a->ndim; i++)
        if (a->shape[i] != b->shape[i])
            return false;
    return true;
}

const char *vd_shape_str(const vd_tensor *t, char *buf, size_t size)
{
    size_t used = 0;
    if (size == 0)
        return buf;
    buf[0] = '\0';
    used += (size_t)snprintf(buf + used, size - used, "[");
    for (int i = 0; i < t->ndim && used < size; i++)
        used += (size_t)snprintf(buf + used, size - used, "%s%lld", i ? ", " : "", (long long)t->shape[i]);
    if (used < size)
        snprintf(buf + used, size - used, "]");
    return buf;
}

vd_status vd_tensor_reshape(const vd_tensor *t, int ndim, const int64_t *shape, vd_tensor *out)
{
    if (!vd_tensor_is_contiguous(t))
        return vd_error(VD_ERR_SHAPE, "reshape of a non-contiguous tensor%s%s", t->name ? " " : "",
                        t->name ? t->name : "");
    vd_tensor r;
    VD_TRY(vd_tensor_init(&r, t->dtype, ndim, shape, t->data));
    if (vd_tensor_nelem(&r) != vd_tensor_nelem(t)) {
        char a[96], b[96];
        return vd_error(VD_ERR_SHAPE, "reshape %s to %s changes the element count", vd_shape_str(t, a, sizeof a),
                        vd_shape_str(&r, b, sizeof b));
    }
    r.scale = t->scale;
    r.name = t->name;
    *out = r;
    return VD_OK;
}

vd_status vd_tensor_permute(const vd_tensor *t, const int *axes, vd_tensor *out)
{
    if (vd_dtype_info(t->dtype)->block_elems > 1)
        return vd_error(VD_ERR_UNSUPPORTED, "permute of a block-quantized (%s) tensor", vd_dtype_name(t->dtype));
    bool seen[VD_MAX_DIMS] = {false};
    vd_tensor r = *t;
    r.owner = NULL;
    for (int i = 0; i < t->ndim; i++) {
        if (axes[i] < 0 || axes[i] >= t->ndim || seen[axes[i]])
            return vd_error(VD_ERR_INVALID_ARGUMENT, "permute: axes are not a permutation of 0..%d", t->ndim - 1);
        seen[axes[i]] = true;
        r.shape[i] = t->shape[axes[i]];
        r.stride[i] = t->stride[axes[i]];
    }
    *out = r;
    return VD_OK;
}

vd_status vd_tensor_slice(const vd_tensor *t, int dim, int64_t begin, int64_t end, vd_tensor *out)
{
    if (dim < 0 || dim >= t->ndim)
        return vd_error(VD_ERR_INVALID_ARGUMENT, "slice: dimension %d of a %d-D tensor", dim, t->ndim);
    if (begin < 0 || end < begin || end > t->shape[dim])
        return vd_error(VD_ERR_INVALID_ARGUMENT, "slice [%lld, %lld) outside dimension %d of size %lld",
                        (long long)begin, (long long)end, dim, (long long)t->shape[dim]);
    const vd_dtype_traits *tr = vd_dtype_info(t->dtype);
    if (tr->block_elems > 1 && (dim == t->ndim - 1 || !vd_tensor_is_contiguous(t)))
        return vd_error(VD_ERR_UNSUPPORTED, "slice of a block-quantized tensor along its rows");
    vd_tensor r = *t;
    r.owner = NULL;
    r.shape[dim] = end - begin;
    /* Block-quantized tensors must stay contiguous (tensor.h): slicing a
     * middle dimension of [2, 4, 64] would not be. */
    if (tr->block_elems > 1 && !vd_tensor_is_contiguous(&r))
        return vd_error(VD_ERR_UNSUPPORTED, "slice [%lld, %lld) of dimension %d of a block-quantized (%s) tensor "
                        "would not be contiguous; slice the outermost dimension instead",
                        (long long)begin, (long long)end, dim, vd_dtype_name(t->dtype));
    if (t->data) {
        int64_t elem_off = begin * t->stride[dim];
        size_t byte_off = (size_t)(elem_off / tr->block_elems) * (size_t)tr->block_bytes;
        r.data = (char *)t->data + byte_off;
    }
    *out = r;
    return VD_OK;
}

float *vd_tensor_f32(const vd_tensor *t) { return t->dtype == VD_F32 ? (float *)t->data : NULL; }

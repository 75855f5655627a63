#include "models/model_weights.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"

static const vd_weight *lookup(const vd_weights *w, const char *name, vd_status *st)
{
    const vd_weight *x = vd_weights_find(w, name);
    *st = x ? VD_OK
            : vd_error(VD_ERR_FORMAT, "tensor '%s' is missing from '%s'", name, vd_weights_path(w));
    return x;
}

vd_status vd_load_weight(vd_backend *be, const vd_weights *w, const char *name, vd_tensor *out)
{
    vd_status st;
    const vd_weight *x = lookup(w, name, &st);
    if (!x)
        return st;
    if (!x->tensor.data)
        return vd_error(VD_ERR_INVALID_ARGUMENT, "tensor '%s' has no data (a shape-only weight set)", name);
    if (be->kind == VD_DEVICE_CPU) {
        *out = x->tensor;      /* a view into the mapping */
        out->owner = NULL;
        out->name = x->name;
        return VD_OK;
    }
    st = vd_tensor_to_device(be, &x->tensor, out);
    if (st != VD_OK)
        return vd_error_context(st, "loading '%s': ", name);
    out->name = x->name;
    return VD_OK;
}

vd_status vd_upload_f32(vd_backend *be, const float *host, int ndim, const int64_t *shape, vd_tensor *out)
{
    VD_TRY(vd_tensor_alloc(be, VD_F32, ndim, shape, out));
    vd_status st = vd_tensor_upload(be, out, host, vd_tensor_nbytes(out));
    if (st != VD_OK)
        vd_tensor_release(out);
    return st;
}

vd_status vd_load_param_f32(vd_backend *be, const vd_weights *w, const char *name, int ndim, const int64_t *shape,
                            vd_tensor *out)
{
    vd_status st;
    const vd_weight *x = lookup(w, name, &st);
    if (!x)
        return st;
    vd_tensor want;
    VD_TRY(vd_tensor_init(&want, VD_F32, ndim, shape, NULL));
    int64_t n = vd_tensor_nelem(&want);
    if (vd_tensor_nelem(&x->tensor) != n) {
        char a[96], b[96];
        return vd_error(VD_ERR_SHAPE, "tensor '%s' has shape %s, expected %s", name, vd_shape_str(&x->tensor, a, sizeof a),
                        vd_shape_str(&want, b, sizeof b));
    }
    if (!x->tensor.data)
        return vd_error(VD_ERR_INVALID_ARGUMENT, "tensor '%s' has no data (a shape-only weight set)", name);
    float *host = malloc((size_t)(n > 0 ? n : 1) * sizeof *host);
    if (!host)
        return vd_error(VD_ERR_OUT_OF_MEMORY, "out of memory reading '%s'", name);
    st = vd_dtype_to_f32(x->tensor.dtype, x->tensor.data, host, n);
    if (st == VD_OK && x->tensor.scale != 1.0f)
        for (int64_t i = 0; i < n; i++)
            host[i] *= x->tensor.scale;
    if (st == VD_OK)
        st = vd_upload_f32(be, host, ndim, shape, out);
    free(host);
    if (st != VD_OK)
        return vd_error_context(st, "loading '%s': ", name);
    out->name = x->name;
    return VD_OK;
}

vd_status vd_load_weightf(vd_backend *be, const vd_weights *w, vd_tensor *out, const char *fmt, ...)
{
    char name[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(name, sizeof name, fmt, ap);
    va_end(ap);
    return vd_load_weight(be, w, name, out);
}

vd_status vd_load_vecf(vd_backend *be, const vd_weights *w, int64_t n, vd_tensor *out, const char *fmt, ...)
{
    char name[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(name, sizeof name, fmt, ap);
    va_end(ap);
    return vd_load_param_f32(be, w, name, 1, &n, out);
}

#include "tools/tensor_file.h"

#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "io/model_writer.h"

vd_status vd_read_f32(const vd_weights *w, const char *name, int ndim, int64_t shape[5], float **out)
{
    *out = NULL;
    const vd_weight *x = vd_weights_find(w, name);
    if (!x)
        return vd_error(VD_ERR_NOT_FOUND, "'%s' has no tensor '%s'", vd_weights_path(w), name);
    if (ndim && x->tensor.ndim != ndim)
        return vd_error(VD_ERR_SHAPE, "'%s': tensor '%s' has %d dimensions, expected %d", vd_weights_path(w), name,
                        x->tensor.ndim, ndim);
    int64_t n = vd_tensor_nelem(&x->tensor);
    float *p = malloc((size_t)(n > 0 ? n : 1) * sizeof *p);
    if (!p)
        return vd_error(VD_ERR_OUT_OF_MEMORY, "out of memory reading '%s'", name);
    vd_status st = vd_dtype_to_f32(x->tensor.dtype, x->tensor.data, p, n);
    if (st != VD_OK) {
        free(p);
        return st;
    }
    for (int i = 0; i < 5; i++)
        shape[i] = i < x->tensor.ndim ? x->tensor.shape[i] : 1;
    *out = p;
    return VD_OK;
}

vd_status vd_write_tensors(const char *path, const vd_named_tensor *t, int count)
{
    vd_model_writer *w;
    VD_TRY(vd_model_writer_open(path, VD_FORMAT_SAFETENSORS, &w));
    vd_status st = vd_model_writer_meta_string(w, "vdiff.generator", "vdiff");
    for (int i = 0; i < count && st == VD_OK; i++)
        st = vd_model_writer_declare(w, t[i].name, t[i].dtype, t[i].ndim, t[i].shape);
    if (st == VD_OK)
        st = vd_model_writer_begin(w);
    for (int i = 0; i < count && st == VD_OK; i++) {
        int64_t n = 1;
        for (int k = 0; k < t[i].ndim; k++)
            n *= t[i].shape[k];
        size_t bytes;
        st = vd_dtype_nbytes(t[i].dtype, n, &bytes);
        if (st == VD_OK)
            st = vd_model_writer_write(w, t[i].data, bytes);
    }
    if (st != VD_OK) {
        vd_model_writer_abort(w);
        return vd_error_context(st, "writing '%s': ", path);
    }
    return vd_model_writer_finish(w);
}

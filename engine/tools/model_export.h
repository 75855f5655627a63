/* Writing a whole model file from per-tensor f32 values under a storage
 * policy: the common half of `vdiff mkmodel` (random values) and
 * `vdiff convert` (values read from another file). */
#ifndef VD_TOOLS_MODEL_EXPORT_H
#define VD_TOOLS_MODEL_EXPORT_H

#include "core/threadpool.h"
#include "io/weights.h"
#include "models/arch.h"
#include "models/storage_policy.h"

/* Fill `values` (nelem floats) for one tensor of the inventory. */
typedef vd_status (*vd_export_values_fn)(void *ctx, const vd_param_desc *param, int64_t index, float *values,
                                         vd_threadpool *pool);

typedef struct vd_export_extra {
    const char *name;   /* copied as is (e.g. spiece_model) */
    vd_dtype dtype;
    int ndim;
    int64_t shape[5];
    const void *data;
} vd_export_extra;

typedef struct vd_export_request {
    const char *path;
    const vd_arch_info *arch;
    const vd_storage_policy *policy;
    vd_export_values_fn values;
    void *ctx;
    const vd_export_extra *extras;
    size_t n_extras;
    const char *const *meta;   /* key, value, key, value, ... */
    size_t n_meta;             /* number of pairs */
    vd_threadpool *pool;
    int verbose;               /* print one line per tensor to stderr */
} vd_export_request;

/* Write the file; on failure no file is left at `path`. */
vd_status vd_export_model(const vd_export_request *req);

#endif

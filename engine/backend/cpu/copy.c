/* Strided copies (with dtype conversion to f32), fill, and row gathers. */
#include <string.h>

#include "backend/cpu/cpu_internal.h"
#include "core/error.h"

enum { ELEM_GRAIN = 4096 };

/* A strided walk over one or two tensors of the same shape: dimensions
 * that are contiguous in both are merged, the innermost one is the row. */
typedef struct walk {
    int ndim;
    int64_t shape[VD_MAX_DIMS];
    int64_t stride[2][VD_MAX_DIMS];
} walk;

static void walk_init(walk *w, const vd_tensor *a, const vd_tensor *b)
{
    int n = 0;
    for (int i = 0; i < a->ndim; i++) {
        if (a->shape[i] == 1)
            continue; /* size-1 dimensions have no effect on addresses */
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
    if (n == 0) { /* a scalar, or all dimensions of size 1 */
        w->shape[0] = 1;
        w->stride[0][0] = w->stride[1][0] = 1;
        n = 1;
    }
    w->ndim = n;
}

static int64_t walk_rows(const walk *w)
{
    int64_t rows = 1;
    for (int i = 0; i + 1 < w->ndim; i++)
        rows *= w->shape[i];
    return rows;
}

/* Element offsets of the first element of `row` in each tensor. */
static void walk_row(const walk *w, int64_t row, int64_t off[2])
{
    off[0] = off[1] = 0;
    for (int i = w->ndim - 2; i >= 0; i--) {
        int64_t idx = row % w->shape[i];
        row /= w->shape[i];
        off[0] += idx * w->stride[0][i];
        off[1] += idx * w->stride[1][i];
    }
}

/* ---- copy ---------------------------------------------------------------------- */

typedef struct copy_job {
    walk w;
    const vd_tensor *src, *dst;
    size_t elem; /* bytes per element of src (and of dst when the dtypes match) */
    bool convert;
} copy_job;

static void convert_row(vd_dtype dtype, const uint8_t *s, int64_t ss, float *d, int64_t ds, int64_t n, float scale)
{
    switch (dtype) {
    case VD_F32:
        for (int64_t i = 0; i < n; i++) {
            float v;
            memcpy(&v, s + i * ss * 4, 4);
            d[i * ds] = v * scale;
        }
        break;
    case VD_F16:
        for (int64_t i = 0; i < n; i++) {
            uint16_t h;
            memcpy(&h, s + i * ss * 2, 2);
            d[i * ds] = vd_f16_to_f32(h) * scale;
        }
        break;
    case VD_BF16:
        for (int64_t i = 0; i < n; i++) {
            uint16_t h;
            memcpy(&h, s + i * ss * 2, 2);
            d[i * ds] = vd_bf16_to_f32(h) * scale;
        }
        break;
    default: {
        size_t es = (size_t)vd_dtype_info(dtype)->block_bytes;
        for (int64_t i = 0; i < n; i++) {
            float v = 0.0f;
            vd_dtype_to_f32(dtype, s + (size_t)(i * ss) * es, &v, 1);
            d[i * ds] = v * scale;
        }
        break;
    }
    }
}

static void copy_rows(void *arg, int64_t begin, int64_t end, int worker)
{
    const copy_job *j = arg;
    int64_t n = j->w.shape[j->w.ndim - 1];
    int64_t ss = j->w.stride[0][j->w.ndim - 1], ds = j->w.stride[1][j->w.ndim - 1];
    const uint8_t *src = j->src->data;
    uint8_t *dst = j->dst->data;
    for (int64_t r = begin; r < end; r++) {
        int64_t off[2];
        walk_row(&j->w, r, off);
        const uint8_t *s = src + off[0] * (int64_t)j->elem;
        if (j->convert) {
            convert_row(j->src->dtype, s, ss, (float *)dst + off[1], ds, n, j->src->scale);
        } else if (ss == 1 && ds == 1) {
            memmove(dst + off[1] * (int64_t)j->elem, s, (size_t)n * j->elem);
        } else {
            uint8_t *d = dst + off[1] * (int64_t)j->elem;
            for (int64_t i = 0; i < n; i++)
                memcpy(d + i * ds * (int64_t)j->elem, s + i * ss * (int64_t)j->elem, j->elem);
        }
    }
}

vd_status cpu_copy(vd_backend *be, const vd_tensor *src, vd_tensor *dst)
{
    if (vd_tensor_nelem(src) == 0)
        return VD_OK;
    copy_job j = {.src = src, .dst = dst, .elem = (size_t)vd_dtype_info(src->dtype)->block_bytes};
    j.convert = src->dtype != dst->dtype || (src->dtype == VD_F32 && src->scale != 1.0f);
    walk_init(&j.w, src, dst);
    int64_t n = j.w.shape[j.w.ndim - 1];
    if (!j.convert && src->data == dst->data && j.w.stride[0][j.w.ndim - 1] == j.w.stride[1][j.w.ndim - 1]) {
        bool same = true;
        for (int i = 0; i < j.w.ndim; i++)
            same = same && j.w.stride[0][i] == j.w.stride[1][i];
        if (same)
            return VD_OK;
    }
    int64_t grain = ELEM_GRAIN / n > 0 ? ELEM_GRAIN / n : 1;
    vd_parallel_for(cpu_pool(be), walk_rows(&j.w), grain, copy_rows, &j);
    return VD_OK;
}

/* ---- fill ------------------------------------------------------------------------ */

typedef struct fill_job {
    walk w;
    float *data, value;
} fill_job;

static void fill_rows(void *arg, int64_t begin, int64_t end, int worker)
{
    const fill_job *j = arg;
    int64_t n = j->w.shape[j->w.ndim - 1], s = j->w.stride[0][j->w.ndim - 1];
    for (int64_t r = begin; r < end; r++) {
        int64_t off[2];
        walk_row(&j->w, r, off);
        float *d = j->data + off[0];
        for (int64_t i = 0; i < n; i++)
            d[i * s] = j->value;
    }
}

vd_status cpu_fill(vd_backend *be, vd_tensor *t, float value)
{
    if (vd_tensor_nelem(t) == 0)
        return VD_OK;
    fill_job j = {.data = t->data, .value = value};
    walk_init(&j.w, t, NULL);
    int64_t n = j.w.shape[j.w.ndim - 1];
    int64_t grain = ELEM_GRAIN / n > 0 ? ELEM_GRAIN / n : 1;
    vd_parallel_for(cpu_pool(be), walk_rows(&j.w), grain, fill_rows, &j);
    return VD_OK;
}

/* ---- get_rows ---------------------------------------------------------------------- */

typedef struct rows_job {
    const vd_tensor *table;
    const int32_t *ids;
    float *out;
    int64_t D;
    int failed;
} rows_job;

static void gather_rows(void *arg, int64_t begin, int64_t end, int worker)
{
    rows_job *j = arg;
    for (int64_t i = begin; i < end; i++) {
        float *o = j->out + i * j->D;
        if (cpu_weight_rows_f32(j->table, j->D, j->ids[i], 1, o) != VD_OK) {
            __atomic_store_n(&j->failed, 1, __ATOMIC_RELAXED);
            continue;
        }
        if (j->table->scale != 1.0f)
            for (int64_t c = 0; c < j->D; c++)
                o[c] *= j->table->scale;
    }
}

vd_status cpu_get_rows(vd_backend *be, const vd_tensor *table, const vd_tensor *ids, vd_tensor *out)
{
    rows_job j = {.table = table, .ids = ids->data, .out = out->data, .D = table->shape[1]};
    int64_t n = vd_tensor_nelem(ids), rows = table->shape[0];
    for (int64_t i = 0; i < n; i++)
        if (j.ids[i] < 0 || j.ids[i] >= rows)
            return vd_error(VD_ERR_INVALID_ARGUMENT, "get_rows: ids[%lld] = %d is outside table%s%s%s (%lld rows)",
                            (long long)i, (int)j.ids[i], table->name ? " '" : "", table->name ? table->name : "",
                            table->name ? "'" : "", (long long)rows);
    if (j.D == 0)
        return VD_OK;
    vd_parallel_for(cpu_pool(be), n, 16, gather_rows, &j);
    if (j.failed)
        return vd_error(VD_ERR_INTERNAL, "get_rows: could not decode a row of %s table%s%s",
                        vd_dtype_name(table->dtype), table->name ? " " : "", table->name ? table->name : "");
    return VD_OK;
}

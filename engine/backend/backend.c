/* Device selection, memory, and the vd_op_* wrappers: every argument is
 * checked here once, so backends can assume well-formed inputs. */
#include "backend/backend.h"

#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "core/error.h"
#include "vd_config.h"

/* ---- devices ------------------------------------------------------------- */

static const char accepted_devices[] = "accepted: \"cpu\", \"cuda\" (the first GPU) or \"cuda:N\" (N = 0, 1, ...)";

/* "cuda" → 0, "cuda:N" → N; false for anything else. */
static bool parse_cuda_index(const char *name, int *index)
{
    if (strncmp(name, "cuda", 4) != 0)
        return false;
    const char *p = name + 4;
    if (*p == '\0') {
        *index = 0;
        return true;
    }
    if (*p++ != ':' || *p == '\0')
        return false;
    long long n = 0;
    for (; *p; p++) {
        if (*p < '0' || *p > '9')
            return false;
        n = n * 10 + (*p - '0');
        if (n > INT_MAX)
            return false;
    }
    *index = (int)n;
    return true;
}

vd_status vd_backend_open(const char *device, const vd_backend_options *opt, vd_backend **out)
{
    if (!out)
        return vd_error(VD_ERR_INVALID_ARGUMENT, "vd_backend_open: out is NULL");
    *out = NULL;
    if (!device)
        return vd_error(VD_ERR_INVALID_ARGUMENT, "no device name given; %s", accepted_devices);
    vd_backend_options defaults = {0};
    if (!opt)
        opt = &defaults;
    if (opt->threads < 0)
        return vd_error(VD_ERR_INVALID_ARGUMENT, "threads=%d: use 0 (all cores) or a positive count", opt->threads);
    if (strcmp(device, "cpu") == 0)
        return vd_backend_cpu_new(opt, out);
    int index;
    if (!parse_cuda_index(device, &index))
        return vd_error(VD_ERR_INVALID_ARGUMENT, "unknown device '%s'; %s", device, accepted_devices);
#if VD_HAVE_CUDA
    return vd_backend_cuda_new(index, opt, out);
#else
    (void)index;
    return vd_error(VD_ERR_DEVICE,
                    "device '%s' requested, but this build of vdiff has no CUDA support; rebuild with "
                    "-Dcuda=enabled (needs the CUDA toolkit) or use device=cpu",
                    device);
#endif
}

void vd_backend_close(vd_backend *be)
{
    if (be && be->ops && be->ops->destroy)
        be->ops->destroy(be);
}

vd_status vd_backend_synchronize(vd_backend *be)
{
    if (!be)
        return vd_error(VD_ERR_INVALID_ARGUMENT, "vd_backend_synchronize: backend is NULL");
    return be->ops->synchronize ? be->ops->synchronize(be) : VD_OK;
}

/* ---- memory -------------------------------------------------------------- */

vd_status vd_buffer_alloc(vd_backend *be, size_t size, vd_buffer **out)
{
    if (!be || !out)
        return vd_error(VD_ERR_INVALID_ARGUMENT, "vd_buffer_alloc: backend or out is NULL");
    *out = NULL;
    if (!be->ops->buffer_alloc)
        return vd_error(VD_ERR_UNSUPPORTED, "backend %s cannot allocate buffers", be->name);
    return be->ops->buffer_alloc(be, size, out);
}

void vd_buffer_free(vd_buffer *buf)
{
    if (buf && buf->backend && buf->backend->ops->buffer_free)
        buf->backend->ops->buffer_free(buf);
}

vd_status vd_tensor_alloc(vd_backend *be, vd_dtype dtype, int ndim, const int64_t *shape, vd_tensor *out)
{
    if (!be || !out || (ndim > 0 && !shape))
        return vd_error(VD_ERR_INVALID_ARGUMENT, "vd_tensor_alloc: backend, shape or out is NULL");
    vd_tensor t;
    vd_status s = vd_tensor_init(&t, dtype, ndim, shape, NULL);
    if (s != VD_OK) {
        memset(out, 0, sizeof *out);
        return s;
    }
    size_t bytes = vd_tensor_nbytes(&t);
    vd_buffer *buf;
    s = vd_buffer_alloc(be, bytes, &buf);
    if (s != VD_OK) {
        char sh[96];
        memset(out, 0, sizeof *out);
        return vd_error_context(s, "allocating a %s %s tensor (%zu bytes) on %s: ", vd_dtype_name(dtype),
                                vd_shape_str(&t, sh, sizeof sh), bytes, be->name);
    }
    t.data = buf->data;
    t.owner = buf;
    *out = t;
    return VD_OK;
}

void vd_tensor_release(vd_tensor *t)
{
    if (!t)
        return;
    if (t->owner)
        vd_buffer_free(t->owner);
    memset(t, 0, sizeof *t);
}

/* A tensor named for messages: "x 'blocks.0.q' [4, 8] f32". */
static const char *describe(const char *role, const vd_tensor *t, char *buf, size_t size)
{
    char sh[96];
    vd_shape_str(t, sh, sizeof sh);
    if (t->name)
        snprintf(buf, size, "%s '%s' %s %s", role, t->name, sh, vd_dtype_name(t->dtype));
    else
        snprintf(buf, size, "%s %s %s", role, sh, vd_dtype_name(t->dtype));
    return buf;
}

static vd_status check_transfer(const char *what, vd_backend *be, const vd_tensor *t, const void *host, size_t size)
{
    char d[160];
    if (!be || !t || (!host && size))
        return vd_error(VD_ERR_INVALID_ARGUMENT, "%s: backend, tensor or host pointer is NULL", what);
    if (!vd_tensor_is_contiguous(t))
        return vd_error(VD_ERR_SHAPE, "%s: %s is not contiguous", what, describe("tensor", t, d, sizeof d));
    size_t bytes = vd_tensor_nbytes(t);
    if (size != bytes)
        return vd_error(VD_ERR_SHAPE, "%s: %s holds %zu bytes, but %zu were given", what,
                        describe("tensor", t, d, sizeof d), bytes, size);
    if (bytes && !t->data)
        return vd_error(VD_ERR_INVALID_ARGUMENT, "%s: %s has no memory", what, describe("tensor", t, d, sizeof d));
    return VD_OK;
}

vd_status vd_tensor_upload(vd_backend *be, vd_tensor *dst, const void *host, size_t size)
{
    VD_TRY(check_transfer("vd_tensor_upload", be, dst, host, size));
    return size ? be->ops->upload(be, dst->data, host, size) : VD_OK;
}

vd_status vd_tensor_download(vd_backend *be, const vd_tensor *src, void *host, size_t size)
{
    VD_TRY(check_transfer("vd_tensor_download", be, src, host, size));
    return size ? be->ops->download(be, host, src->data, size) : VD_OK;
}

vd_status vd_tensor_to_device(vd_backend *be, const vd_tensor *host, vd_tensor *out)
{
    char d[160];
    if (!be || !host || !out)
        return vd_error(VD_ERR_INVALID_ARGUMENT, "vd_tensor_to_device: backend, tensor or out is NULL");
    memset(out, 0, sizeof *out);
    if (!vd_tensor_is_contiguous(host))
        return vd_error(VD_ERR_SHAPE, "copying %s to %s: the host tensor is not contiguous (copy it first)",
                        describe("tensor", host, d, sizeof d), be->name);
    vd_tensor t;
    VD_TRY(vd_tensor_alloc(be, host->dtype, host->ndim, host->shape, &t));
    vd_status s = vd_tensor_upload(be, &t, host->data, vd_tensor_nbytes(&t));
    if (s != VD_OK) {
        vd_tensor_release(&t);
        return vd_error_context(s, "copying %s to %s: ", describe("tensor", host, d, sizeof d), be->name);
    }
    t.scale = host->scale;
    t.name = host->name;
    *out = t;
    return VD_OK;
}

/* ---- argument checks ----------------------------------------------------- */

/* Each check names the op and the tensor and returns VD_ERR_SHAPE (or
 * VD_ERR_INVALID_ARGUMENT for a missing tensor). */

static vd_status check_present(const char *op, const char *role, const vd_tensor *t)
{
    if (!t)
        return vd_error(VD_ERR_INVALID_ARGUMENT, "%s: %s is NULL", op, role);
    char d[160];
    if (!vd_dtype_info(t->dtype) || t->ndim < 0 || t->ndim > VD_MAX_DIMS)
        return vd_error(VD_ERR_INVALID_ARGUMENT, "%s: %s is not a valid tensor descriptor", op, role);
    int64_t n = 1;
    for (int i = 0; i < t->ndim; i++) {
        if (t->shape[i] < 0)
            return vd_error(VD_ERR_SHAPE, "%s: %s has a negative dimension", op, describe(role, t, d, sizeof d));
        n *= t->shape[i];
    }
    if (n > 0 && !t->data)
        return vd_error(VD_ERR_INVALID_ARGUMENT, "%s: %s has no memory", op, describe(role, t, d, sizeof d));
    int block = vd_dtype_info(t->dtype)->block_elems;
    if (block > 1 && t->ndim > 0 && t->shape[t->ndim - 1] % block != 0)
        return vd_error(VD_ERR_SHAPE, "%s: %s: the innermost size is not a multiple of the %s block (%d)", op,
                        describe(role, t, d, sizeof d), vd_dtype_name(t->dtype), block);
    return VD_OK;
}

/* An f32 contiguous activation. */
static vd_status check_f32(const char *op, const char *role, const vd_tensor *t)
{
    VD_TRY(check_present(op, role, t));
    char d[160];
    if (t->dtype != VD_F32)
        return vd_error(VD_ERR_SHAPE, "%s: %s must be f32", op, describe(role, t, d, sizeof d));
    if (!vd_tensor_is_contiguous(t))
        return vd_error(VD_ERR_SHAPE, "%s: %s must be contiguous (copy the view into a new tensor first)", op,
                        describe(role, t, d, sizeof d));
    return VD_OK;
}

/* A small parameter: NULL is fine, otherwise a contiguous plain float. */
static vd_status check_param(const char *op, const char *role, const vd_tensor *t)
{
    if (!t)
        return VD_OK;
    VD_TRY(check_present(op, role, t));
    char d[160];
    const vd_dtype_traits *tr = vd_dtype_info(t->dtype);
    if (!tr->is_float)
        return vd_error(VD_ERR_SHAPE, "%s: %s must be a plain float type (f32, f16, bf16, fp8, f64)", op,
                        describe(role, t, d, sizeof d));
    if (!vd_tensor_is_contiguous(t))
        return vd_error(VD_ERR_SHAPE, "%s: %s must be contiguous", op, describe(role, t, d, sizeof d));
    return VD_OK;
}

static vd_status check_param_len(const char *op, const char *role, const vd_tensor *t, int64_t n,
                                 const char *what)
{
    if (!t)
        return VD_OK;
    VD_TRY(check_param(op, role, t));
    if (vd_tensor_nelem(t) != n) {
        char d[160];
        return vd_error(VD_ERR_SHAPE, "%s: %s must have %lld elements (%s)", op, describe(role, t, d, sizeof d),
                        (long long)n, what);
    }
    return VD_OK;
}

static vd_status check_same_shape(const char *op, const char *ra, const vd_tensor *a, const char *rb,
                                  const vd_tensor *b)
{
    if (!vd_tensor_same_shape(a, b)) {
        char da[160], db[160];
        return vd_error(VD_ERR_SHAPE, "%s: %s and %s must have the same shape", op, describe(ra, a, da, sizeof da),
                        describe(rb, b, db, sizeof db));
    }
    return VD_OK;
}

static int64_t innermost(const vd_tensor *t) { return t->ndim ? t->shape[t->ndim - 1] : 1; }

/* The row-broadcast rule of backend.h: b's innermost size D, a viewed as
 * M = nelem(a)/D rows, b as R rows, R divides M.  A D > 1 must also be a's
 * innermost size, so a row of b lines up with a row of a. */
static vd_status check_row_broadcast(const char *op, const char *ra, const vd_tensor *a, const char *rb,
                                     const vd_tensor *b)
{
    VD_TRY(check_param(op, rb, b));
    char da[160], db[160];
    int64_t D = innermost(b);
    int64_t nb = vd_tensor_nelem(b), na = vd_tensor_nelem(a);
    if (nb == 0 || D == 0)
        return vd_error(VD_ERR_SHAPE, "%s: %s is empty", op, describe(rb, b, db, sizeof db));
    if (D != 1 && innermost(a) != D)
        return vd_error(VD_ERR_SHAPE,
                        "%s: cannot broadcast %s over %s: its innermost size %lld must be 1 or %s's innermost "
                        "size %lld",
                        op, describe(rb, b, db, sizeof db), describe(ra, a, da, sizeof da), (long long)D, ra,
                        (long long)innermost(a));
    int64_t M = na / D, R = nb / D;
    if (M % R != 0)
        return vd_error(VD_ERR_SHAPE,
                        "%s: cannot broadcast %s over %s: its %lld rows of %lld do not divide the %lld rows of %s",
                        op, describe(rb, b, db, sizeof db), describe(ra, a, da, sizeof da), (long long)R,
                        (long long)D, (long long)M, ra);
    return VD_OK;
}

static vd_status need_op(vd_backend *be, const char *op, bool implemented)
{
    if (!be)
        return vd_error(VD_ERR_INVALID_ARGUMENT, "%s: backend is NULL", op);
    if (!implemented)
        return vd_error(VD_ERR_UNSUPPORTED, "op %s is not implemented on backend %s", op, be->name);
    return VD_OK;
}

static bool fits_int(int64_t v) { return v >= 0 && v <= INT_MAX; }

/* ---- ops ----------------------------------------------------------------- */

vd_status vd_op_matmul(vd_backend *be, const vd_tensor *x, const vd_tensor *w, const vd_tensor *bias, vd_tensor *y)
{
    const char *op = "matmul";
    VD_TRY(need_op(be, op, be && be->ops->matmul));
    VD_TRY(check_f32(op, "x", x));
    VD_TRY(check_f32(op, "y", y));
    VD_TRY(check_present(op, "w", w));
    char dx[160], dw[160], dy[160];
    if (x->ndim < 1 || w->ndim != 2 || y->ndim != x->ndim)
        return vd_error(VD_ERR_SHAPE, "%s: expected x [..., K], w [N, K], y [..., N]; got %s, %s, %s", op,
                        describe("x", x, dx, sizeof dx), describe("w", w, dw, sizeof dw),
                        describe("y", y, dy, sizeof dy));
    if (!vd_tensor_is_contiguous(w))
        return vd_error(VD_ERR_SHAPE, "%s: %s must be contiguous", op, describe("w", w, dw, sizeof dw));
    if (vd_dtype_info(w->dtype)->block_elems == 1 && !vd_dtype_info(w->dtype)->is_float)
        return vd_error(VD_ERR_SHAPE, "%s: %s: integer weights are not supported", op,
                        describe("w", w, dw, sizeof dw));
    int64_t K = w->shape[1], N = w->shape[0];
    if (innermost(x) != K)
        return vd_error(VD_ERR_SHAPE, "%s: %s and %s disagree on K (%lld vs %lld)", op,
                        describe("x", x, dx, sizeof dx), describe("w", w, dw, sizeof dw), (long long)innermost(x),
                        (long long)K);
    bool lead_ok = innermost(y) == N;
    for (int i = 0; i + 1 < x->ndim; i++)
        lead_ok = lead_ok && x->shape[i] == y->shape[i];
    if (!lead_ok)
        return vd_error(VD_ERR_SHAPE, "%s: %s times %s gives [..., %lld], but %s was given", op,
                        describe("x", x, dx, sizeof dx), describe("w", w, dw, sizeof dw), (long long)N,
                        describe("y", y, dy, sizeof dy));
    VD_TRY(check_param_len(op, "bias", bias, N, "one per output feature"));
    int64_t M = K ? vd_tensor_nelem(x) / K : vd_tensor_nelem(y) / (N ? N : 1);
    if (!fits_int(M) || !fits_int(N) || !fits_int(K))
        return vd_error(VD_ERR_UNSUPPORTED, "%s: %s times %s is too large (a dimension exceeds %d)", op,
                        describe("x", x, dx, sizeof dx), describe("w", w, dw, sizeof dw), INT_MAX);
    if (y->data == x->data && vd_tensor_nelem(y) > 0)
        return vd_error(VD_ERR_INVALID_ARGUMENT, "%s: y must not be x (not in place)", op);
    return be->ops->matmul(be, x, w, bias, y);
}

vd_status vd_op_get_rows(vd_backend *be, const vd_tensor *table, const vd_tensor *ids, vd_tensor *out)
{
    const char *op = "get_rows";
    VD_TRY(need_op(be, op, be && be->ops->get_rows));
    VD_TRY(check_present(op, "table", table));
    VD_TRY(check_present(op, "ids", ids));
    VD_TRY(check_f32(op, "out", out));
    char dt[160], di[160], dout[160];
    if (table->ndim != 2 || !vd_tensor_is_contiguous(table))
        return vd_error(VD_ERR_SHAPE, "%s: %s must be a contiguous [rows, D] tensor", op,
                        describe("table", table, dt, sizeof dt));
    if (vd_dtype_info(table->dtype)->block_elems == 1 && !vd_dtype_info(table->dtype)->is_float)
        return vd_error(VD_ERR_SHAPE, "%s: %s: integer tables are not supported", op,
                        describe("table", table, dt, sizeof dt));
    if (ids->dtype != VD_I32 || !vd_tensor_is_contiguous(ids))
        return vd_error(VD_ERR_SHAPE, "%s: %s must be contiguous i32", op, describe("ids", ids, di, sizeof di));
    int64_t D = table->shape[1];
    if (out->ndim < 1 || innermost(out) != D || vd_tensor_nelem(out) != vd_tensor_nelem(ids) * D)
        return vd_error(VD_ERR_SHAPE, "%s: %s with %s needs out [%lld, %lld], got %s", op,
                        describe("table", table, dt, sizeof dt), describe("ids", ids, di, sizeof di),
                        (long long)vd_tensor_nelem(ids), (long long)D, describe("out", out, dout, sizeof dout));
    return be->ops->get_rows(be, table, ids, out);
}

vd_status vd_op_layernorm_modulate(vd_backend *be, const vd_tensor *x, float eps, const vd_tensor *weight,
                                   const vd_tensor *bias, const vd_tensor *shift, const vd_tensor *scale,
                                   vd_tensor *out)
{
    const char *op = "layernorm_modulate";
    VD_TRY(need_op(be, op, be && be->ops->layernorm_modulate));
    VD_TRY(check_f32(op, "x", x));
    VD_TRY(check_f32(op, "out", out));
    VD_TRY(check_same_shape(op, "x", x, "out", out));
    if (!(eps >= 0.0f) || !isfinite(eps))
        return vd_error(VD_ERR_INVALID_ARGUMENT, "%s: eps %g must be finite and not negative", op, (double)eps);
    int64_t D = innermost(x);
    VD_TRY(check_param_len(op, "weight", weight, D, "the normalised size"));
    VD_TRY(check_param_len(op, "bias", bias, D, "the normalised size"));
    const vd_tensor *mods[2] = {shift, scale};
    const char *roles[2] = {"shift", "scale"};
    for (int i = 0; i < 2; i++) {
        if (!mods[i])
            continue;
        VD_TRY(check_row_broadcast(op, "x", x, roles[i], mods[i]));
        if (innermost(mods[i]) != D) {
            char dx[160], dm[160];
            return vd_error(VD_ERR_SHAPE, "%s: %s must have rows of the normalised size %lld of %s", op,
                            describe(roles[i], mods[i], dm, sizeof dm), (long long)D, describe("x", x, dx, sizeof dx));
        }
    }
    return be->ops->layernorm_modulate(be, x, eps, weight, bias, shift, scale, out);
}

vd_status vd_op_rmsnorm(vd_backend *be, const vd_tensor *x, const vd_tensor *weight, float eps, vd_tensor *out)
{
    const char *op = "rmsnorm";
    VD_TRY(need_op(be, op, be && be->ops->rmsnorm));
    VD_TRY(check_f32(op, "x", x));
    VD_TRY(check_f32(op, "out", out));
    VD_TRY(check_same_shape(op, "x", x, "out", out));
    if (!(eps >= 0.0f) || !isfinite(eps))
        return vd_error(VD_ERR_INVALID_ARGUMENT, "%s: eps %g must be finite and not negative", op, (double)eps);
    VD_TRY(check_param_len(op, "weight", weight, innermost(x), "the normalised size"));
    return be->ops->rmsnorm(be, x, weight, eps, out);
}

vd_status vd_op_channel_rmsnorm(vd_backend *be, const vd_tensor *x, const vd_tensor *gamma, vd_tensor *out)
{
    const char *op = "channel_rmsnorm";
    VD_TRY(need_op(be, op, be && be->ops->channel_rmsnorm));
    VD_TRY(check_f32(op, "x", x));
    VD_TRY(check_f32(op, "out", out));
    VD_TRY(check_same_shape(op, "x", x, "out", out));
    char dx[160];
    if (x->ndim < 1)
        return vd_error(VD_ERR_SHAPE, "%s: %s must be [C, ...]", op, describe("x", x, dx, sizeof dx));
    if (!gamma)
        return vd_error(VD_ERR_INVALID_ARGUMENT, "%s: gamma is NULL", op);
    VD_TRY(check_param_len(op, "gamma", gamma, x->shape[0], "one per channel"));
    return be->ops->channel_rmsnorm(be, x, gamma, out);
}

vd_status vd_op_rope3d(vd_backend *be, const vd_tensor *x, int64_t frames, int64_t height, int64_t width,
                       double theta, vd_tensor *out)
{
    const char *op = "rope3d";
    VD_TRY(need_op(be, op, be && be->ops->rope3d));
    VD_TRY(check_f32(op, "x", x));
    VD_TRY(check_f32(op, "out", out));
    VD_TRY(check_same_shape(op, "x", x, "out", out));
    char dx[160];
    if (x->ndim < 3)
        return vd_error(VD_ERR_SHAPE, "%s: %s must be [M, H, d] (tokens, heads, head size)", op,
                        describe("x", x, dx, sizeof dx));
    int64_t d = x->shape[x->ndim - 1];
    if (d % 2 != 0)
        return vd_error(VD_ERR_SHAPE, "%s: %s: the head size %lld must be even", op, describe("x", x, dx, sizeof dx),
                        (long long)d);
    if (frames < 1 || height < 1 || width < 1 || frames > INT32_MAX / height / width)
        return vd_error(VD_ERR_SHAPE, "%s: grid %lld x %lld x %lld must be positive (and not absurdly large)", op,
                        (long long)frames, (long long)height, (long long)width);
    int64_t row = x->shape[x->ndim - 2] * d;
    int64_t M = row > 0 ? vd_tensor_nelem(x) / row : 0;
    if (M % (frames * height * width) != 0)
        return vd_error(VD_ERR_SHAPE, "%s: %s has %lld tokens, not a multiple of the grid %lld x %lld x %lld", op,
                        describe("x", x, dx, sizeof dx), (long long)M, (long long)frames, (long long)height,
                        (long long)width);
    if (!(theta > 0.0) || !isfinite(theta))
        return vd_error(VD_ERR_INVALID_ARGUMENT, "%s: theta %g must be positive", op, theta);
    return be->ops->rope3d(be, x, frames, height, width, theta, out);
}

vd_status vd_op_attention(vd_backend *be, const vd_tensor *q, const vd_tensor *k, const vd_tensor *v, float scale,
                          const vd_tensor *bias, const int32_t *kv_len, vd_tensor *out)
{
    const char *op = "attention";
    VD_TRY(need_op(be, op, be && be->ops->attention));
    VD_TRY(check_f32(op, "q", q));
    VD_TRY(check_f32(op, "k", k));
    VD_TRY(check_f32(op, "v", v));
    VD_TRY(check_f32(op, "out", out));
    char dq[160], dk[160], dv[160], dout[160];
    if (q->ndim != 4 || k->ndim != 4 || v->ndim != 4 || out->ndim != 4)
        return vd_error(VD_ERR_SHAPE, "%s: expected q [B, Lq, H, d], k [B, Lk, H, d], v [B, Lk, H, dv], "
                        "out [B, Lq, H, dv]; got %s, %s, %s, %s",
                        op, describe("q", q, dq, sizeof dq), describe("k", k, dk, sizeof dk),
                        describe("v", v, dv, sizeof dv), describe("out", out, dout, sizeof dout));
    int64_t B = q->shape[0], Lq = q->shape[1], H = q->shape[2], d = q->shape[3];
    int64_t Lk = k->shape[1], dvs = v->shape[3];
    if (k->shape[0] != B || k->shape[2] != H || k->shape[3] != d)
        return vd_error(VD_ERR_SHAPE, "%s: %s does not match %s in batch, heads or head size", op,
                        describe("k", k, dk, sizeof dk), describe("q", q, dq, sizeof dq));
    if (v->shape[0] != B || v->shape[1] != Lk || v->shape[2] != H)
        return vd_error(VD_ERR_SHAPE, "%s: %s does not match %s in batch, length or heads", op,
                        describe("v", v, dv, sizeof dv), describe("k", k, dk, sizeof dk));
    if (out->shape[0] != B || out->shape[1] != Lq || out->shape[2] != H || out->shape[3] != dvs)
        return vd_error(VD_ERR_SHAPE, "%s: %s with %s needs out [%lld, %lld, %lld, %lld], got %s", op,
                        describe("q", q, dq, sizeof dq), describe("v", v, dv, sizeof dv), (long long)B,
                        (long long)Lq, (long long)H, (long long)dvs, describe("out", out, dout, sizeof dout));
    if (Lk < 1 && Lq > 0)
        return vd_error(VD_ERR_SHAPE, "%s: %s has no keys", op, describe("k", k, dk, sizeof dk));
    if (!fits_int(H * d) || !fits_int(H * dvs) || !fits_int(Lk) || !fits_int(Lq))
        return vd_error(VD_ERR_UNSUPPORTED, "%s: %s is too large", op, describe("q", q, dq, sizeof dq));
    if (!isfinite(scale))
        return vd_error(VD_ERR_INVALID_ARGUMENT, "%s: scale %g is not finite", op, (double)scale);
    if (bias) {
        VD_TRY(check_f32(op, "bias", bias));
        char db[160];
        if (bias->ndim != 3 || bias->shape[0] != H || bias->shape[1] != Lq || bias->shape[2] != Lk)
            return vd_error(VD_ERR_SHAPE, "%s: %s must be [H, Lq, Lk] = [%lld, %lld, %lld]", op,
                            describe("bias", bias, db, sizeof db), (long long)H, (long long)Lq, (long long)Lk);
    }
    if (kv_len)
        for (int64_t b = 0; b < B; b++)
            if (kv_len[b] < 1 || kv_len[b] > Lk)
                return vd_error(VD_ERR_SHAPE, "%s: kv_len[%lld] = %d is outside 1..%lld (the keys of %s)", op,
                                (long long)b, (int)kv_len[b], (long long)Lk, describe("k", k, dk, sizeof dk));
    if (out->data == q->data && vd_tensor_nelem(out) > 0)
        return vd_error(VD_ERR_INVALID_ARGUMENT, "%s: out must not be q (not in place)", op);
    return be->ops->attention(be, q, k, v, scale, bias, kv_len, out);
}

static vd_status unary(vd_backend *be, const char *op, int kind, const vd_tensor *x, vd_tensor *out)
{
    VD_TRY(need_op(be, op, be && be->ops->unary));
    VD_TRY(check_f32(op, "x", x));
    VD_TRY(check_f32(op, "out", out));
    VD_TRY(check_same_shape(op, "x", x, "out", out));
    return be->ops->unary(be, kind, x, out);
}

vd_status vd_op_silu(vd_backend *be, const vd_tensor *x, vd_tensor *out)
{
    return unary(be, "silu", VD_UNARY_SILU, x, out);
}

vd_status vd_op_gelu_tanh(vd_backend *be, const vd_tensor *x, vd_tensor *out)
{
    return unary(be, "gelu_tanh", VD_UNARY_GELU_TANH, x, out);
}

vd_status vd_op_gelu_erf(vd_backend *be, const vd_tensor *x, vd_tensor *out)
{
    return unary(be, "gelu_erf", VD_UNARY_GELU_ERF, x, out);
}

static vd_status binary(vd_backend *be, const char *op, int kind, const vd_tensor *a, const vd_tensor *b,
                        vd_tensor *out)
{
    VD_TRY(need_op(be, op, be && be->ops->binary));
    VD_TRY(check_f32(op, "a", a));
    VD_TRY(check_f32(op, "out", out));
    VD_TRY(check_same_shape(op, "a", a, "out", out));
    if (!b)
        return vd_error(VD_ERR_INVALID_ARGUMENT, "%s: b is NULL", op);
    VD_TRY(check_row_broadcast(op, "a", a, "b", b));
    return be->ops->binary(be, kind, a, b, out);
}

vd_status vd_op_add(vd_backend *be, const vd_tensor *a, const vd_tensor *b, vd_tensor *out)
{
    return binary(be, "add", VD_BINARY_ADD, a, b, out);
}

vd_status vd_op_mul(vd_backend *be, const vd_tensor *a, const vd_tensor *b, vd_tensor *out)
{
    return binary(be, "mul", VD_BINARY_MUL, a, b, out);
}

vd_status vd_op_add_gated(vd_backend *be, const vd_tensor *x, const vd_tensor *y, const vd_tensor *gate,
                          vd_tensor *out)
{
    const char *op = "add_gated";
    VD_TRY(need_op(be, op, be && be->ops->add_gated));
    VD_TRY(check_f32(op, "x", x));
    VD_TRY(check_f32(op, "y", y));
    VD_TRY(check_f32(op, "out", out));
    VD_TRY(check_same_shape(op, "x", x, "y", y));
    VD_TRY(check_same_shape(op, "x", x, "out", out));
    if (!gate)
        return vd_error(VD_ERR_INVALID_ARGUMENT, "%s: gate is NULL", op);
    VD_TRY(check_row_broadcast(op, "x", x, "gate", gate));
    return be->ops->add_gated(be, x, y, gate, out);
}

vd_status vd_op_conv3d(vd_backend *be, const vd_tensor *x, const vd_tensor *w, const vd_tensor *bias,
                       const int stride[3], const int pad[6], vd_tensor *out)
{
    const char *op = "conv3d";
    VD_TRY(need_op(be, op, be && be->ops->conv3d));
    VD_TRY(check_f32(op, "x", x));
    VD_TRY(check_f32(op, "out", out));
    VD_TRY(check_present(op, "w", w));
    if (!stride || !pad)
        return vd_error(VD_ERR_INVALID_ARGUMENT, "%s: stride or pad is NULL", op);
    char dx[160], dw[160], dout[160];
    if (x->ndim != 4 || w->ndim != 5 || out->ndim != 4)
        return vd_error(VD_ERR_SHAPE, "%s: expected x [Cin, T, H, W], w [Cout, Cin, kt, kh, kw], "
                        "out [Cout, T', H', W']; got %s, %s, %s",
                        op, describe("x", x, dx, sizeof dx), describe("w", w, dw, sizeof dw),
                        describe("out", out, dout, sizeof dout));
    if (!vd_tensor_is_contiguous(w))
        return vd_error(VD_ERR_SHAPE, "%s: %s must be contiguous", op, describe("w", w, dw, sizeof dw));
    if (vd_dtype_info(w->dtype)->block_elems == 1 && !vd_dtype_info(w->dtype)->is_float)
        return vd_error(VD_ERR_SHAPE, "%s: %s: integer weights are not supported", op,
                        describe("w", w, dw, sizeof dw));
    if (w->shape[1] != x->shape[0])
        return vd_error(VD_ERR_SHAPE, "%s: %s expects %lld input channels, %s has %lld", op,
                        describe("w", w, dw, sizeof dw), (long long)w->shape[1], describe("x", x, dx, sizeof dx),
                        (long long)x->shape[0]);
    for (int i = 0; i < 3; i++)
        if (stride[i] < 1)
            return vd_error(VD_ERR_INVALID_ARGUMENT, "%s: stride {%d, %d, %d} must be positive", op, stride[0],
                            stride[1], stride[2]);
    for (int i = 0; i < 6; i++)
        if (pad[i] < 0)
            return vd_error(VD_ERR_INVALID_ARGUMENT, "%s: padding {%d, %d, %d, %d, %d, %d} must not be negative",
                            op, pad[0], pad[1], pad[2], pad[3], pad[4], pad[5]);
    static const char *axis[3] = {"T", "H", "W"};
    int64_t expect[4] = {w->shape[0], 0, 0, 0};
    for (int i = 0; i < 3; i++) {
        int64_t span = x->shape[1 + i] + pad[2 * i] + pad[2 * i + 1];
        int64_t kernel = w->shape[2 + i];
        if (kernel < 1 || span < kernel)
            return vd_error(VD_ERR_SHAPE, "%s: %s is larger than %s padded along %s (%lld + %d + %d)", op,
                            describe("w", w, dw, sizeof dw), describe("x", x, dx, sizeof dx), axis[i],
                            (long long)x->shape[1 + i], pad[2 * i], pad[2 * i + 1]);
        expect[1 + i] = (span - kernel) / stride[i] + 1;
    }
    if (expect[0] != out->shape[0] || expect[1] != out->shape[1] || expect[2] != out->shape[2] ||
        expect[3] != out->shape[3])
        return vd_error(VD_ERR_SHAPE,
                        "%s: %s with %s, stride {%d, %d, %d} and padding {%d, %d, %d, %d, %d, %d} gives "
                        "[%lld, %lld, %lld, %lld], but %s was given",
                        op, describe("x", x, dx, sizeof dx), describe("w", w, dw, sizeof dw), stride[0], stride[1],
                        stride[2], pad[0], pad[1], pad[2], pad[3], pad[4], pad[5], (long long)expect[0],
                        (long long)expect[1], (long long)expect[2], (long long)expect[3],
                        describe("out", out, dout, sizeof dout));
    VD_TRY(check_param_len(op, "bias", bias, w->shape[0], "one per output channel"));
    int64_t patch = w->shape[1] * w->shape[2] * w->shape[3] * w->shape[4];
    if (!fits_int(patch) || !fits_int(w->shape[0]) || !fits_int(expect[1] * expect[2] * expect[3]))
        return vd_error(VD_ERR_UNSUPPORTED, "%s: %s with %s is too large", op, describe("x", x, dx, sizeof dx),
                        describe("w", w, dw, sizeof dw));
    if (out->data == x->data && vd_tensor_nelem(out) > 0)
        return vd_error(VD_ERR_INVALID_ARGUMENT, "%s: out must not be x (not in place)", op);
    return be->ops->conv3d(be, x, w, bias, stride, pad, out);
}

vd_status vd_op_upsample2x(vd_backend *be, const vd_tensor *x, vd_tensor *out)
{
    const char *op = "upsample2x";
    VD_TRY(need_op(be, op, be && be->ops->upsample2x));
    VD_TRY(check_f32(op, "x", x));
    VD_TRY(check_f32(op, "out", out));
    char dx[160], dout[160];
    bool ok = x->ndim >= 2 && out->ndim == x->ndim;
    for (int i = 0; ok && i < x->ndim; i++)
        ok = out->shape[i] == (i >= x->ndim - 2 ? 2 : 1) * x->shape[i];
    if (!ok)
        return vd_error(VD_ERR_SHAPE, "%s: %s needs out [..., 2H, 2W], got %s", op, describe("x", x, dx, sizeof dx),
                        describe("out", out, dout, sizeof dout));
    if (out->data == x->data && vd_tensor_nelem(out) > 0)
        return vd_error(VD_ERR_INVALID_ARGUMENT, "%s: out must not be x (not in place)", op);
    return be->ops->upsample2x(be, x, out);
}

vd_status vd_op_copy(vd_backend *be, const vd_tensor *src, vd_tensor *dst)
{
    const char *op = "copy";
    VD_TRY(need_op(be, op, be && be->ops->copy));
    VD_TRY(check_present(op, "src", src));
    VD_TRY(check_present(op, "dst", dst));
    VD_TRY(check_same_shape(op, "src", src, "dst", dst));
    char ds[160], dd[160];
    if (vd_dtype_info(src->dtype)->block_elems != 1)
        return vd_error(VD_ERR_SHAPE, "%s: %s: block-quantized tensors cannot be copied elementwise", op,
                        describe("src", src, ds, sizeof ds));
    if (dst->dtype != VD_F32 && dst->dtype != src->dtype)
        return vd_error(VD_ERR_SHAPE, "%s: %s must be f32 or the dtype of %s", op, describe("dst", dst, dd, sizeof dd),
                        describe("src", src, ds, sizeof ds));
    return be->ops->copy(be, src, dst);
}

vd_status vd_op_fill(vd_backend *be, vd_tensor *t, float value)
{
    const char *op = "fill";
    VD_TRY(need_op(be, op, be && be->ops->fill));
    VD_TRY(check_present(op, "t", t));
    if (t->dtype != VD_F32) {
        char d[160];
        return vd_error(VD_ERR_SHAPE, "%s: %s must be f32", op, describe("t", t, d, sizeof d));
    }
    return be->ops->fill(be, t, value);
}

/* Elementwise ops: activations, add/mul with row broadcast, the gated
 * residual update, and nearest 2× upsampling. */
#include <math.h>
#include <string.h>

#include "backend/cpu/cpu_internal.h"
#include "core/error.h"

enum { ELEM_GRAIN = 4096 };

/* ---- unary ------------------------------------------------------------------- */

typedef struct unary_job {
    int op;
    const float *x;
    float *out;
} unary_job;

static void unary_range(void *arg, int64_t begin, int64_t end, int worker)
{
    const unary_job *j = arg;
    const float *x = j->x;
    float *y = j->out;
    switch (j->op) {
    case VD_UNARY_SILU:
        for (int64_t i = begin; i < end; i++)
            y[i] = x[i] / (1.0f + expf(-x[i]));
        break;
    case VD_UNARY_GELU_TANH:
        for (int64_t i = begin; i < end; i++) {
            float v = x[i];
            float inner = 0.7978845608028654f * (v + 0.044715f * v * v * v); /* √(2/π)(x + 0.044715x³) */
            y[i] = 0.5f * v * (1.0f + tanhf(inner));
        }
        break;
    default: /* VD_UNARY_GELU_ERF */
        for (int64_t i = begin; i < end; i++)
            y[i] = 0.5f * x[i] * (1.0f + erff(x[i] * 0.7071067811865476f));
        break;
    }
}

vd_status cpu_unary(vd_backend *be, int op, const vd_tensor *x, vd_tensor *out)
{
    if (op < VD_UNARY_SILU || op > VD_UNARY_GELU_ERF)
        return vd_error(VD_ERR_INVALID_ARGUMENT, "unary: unknown op %d", op);
    unary_job j = {op, x->data, out->data};
    vd_parallel_for(cpu_pool(be), vd_tensor_nelem(x), ELEM_GRAIN, unary_range, &j);
    return VD_OK;
}

/* ---- row broadcast: add, mul, add_gated ------------------------------------- */

enum { BC_ADD, BC_MUL, BC_GATED };

typedef struct broadcast_job {
    int op;
    const float *a, *y, *b; /* y only for BC_GATED: out = a + y·b */
    float *out;
    int64_t D, group; /* b's row size; rows of a per row of b */
} broadcast_job;

static void apply_row(int op, const float *a, const float *y, const float *b, float *o, int64_t n)
{
    switch (op) {
    case BC_ADD:
        for (int64_t i = 0; i < n; i++)
            o[i] = a[i] + b[i];
        break;
    case BC_MUL:
        for (int64_t i = 0; i < n; i++)
            o[i] = a[i] * b[i];
        break;
    default:
        for (int64_t i = 0; i < n; i++)
            o[i] = a[i] + y[i] * b[i];
        break;
    }
}

static void apply_scalar(int op, const float *a, const float *y, float b, float *o, int64_t n)
{
    switch (op) {
    case BC_ADD:
        for (int64_t i = 0; i < n; i++)
            o[i] = a[i] + b;
        break;
    case BC_MUL:
        for (int64_t i = 0; i < n; i++)
            o[i] = a[i] * b;
        break;
    default:
        for (int64_t i = 0; i < n; i++)
            o[i] = a[i] + y[i] * b;
        break;
    }
}

/* Rows [begin, end) of a, in runs that share one row of b. */
static void broadcast_rows(void *arg, int64_t begin, int64_t end, int worker)
{
    const broadcast_job *j = arg;
    int64_t D = j->D;
    for (int64_t r = begin; r < end;) {
        int64_t g = r / j->group;
        int64_t run_end = (g + 1) * j->group < end ? (g + 1) * j->group : end;
        const float *b = j->b + g * D;
        const float *y = j->y ? j->y + r * D : NULL;
        if (D == 1) {
            apply_scalar(j->op, j->a + r, y, b[0], j->out + r, run_end - r);
        } else {
            for (int64_t rr = r; rr < run_end; rr++)
                apply_row(j->op, j->a + rr * D, j->y ? j->y + rr * D : NULL, b, j->out + rr * D, D);
        }
        r = run_end;
    }
}

static vd_status broadcast(vd_backend *be, const char *opname, int op, const vd_tensor *a, const vd_tensor *y,
                           const vd_tensor *b, vd_tensor *out)
{
    broadcast_job j = {.op = op, .a = a->data, .y = y ? y->data : NULL, .out = out->data};
    j.D = b->ndim ? b->shape[b->ndim - 1] : 1;
    int64_t M = vd_tensor_nelem(a) / j.D, R = vd_tensor_nelem(b) / j.D;
    if (M == 0)
        return VD_OK;
    j.group = M / R;
    float *owned;
    VD_TRY(cpu_param_f32(b, opname, op == BC_GATED ? "gate" : "b", &j.b, &owned));
    int64_t grain = ELEM_GRAIN / j.D > 0 ? ELEM_GRAIN / j.D : 1;
    vd_parallel_for(cpu_pool(be), M, grain, broadcast_rows, &j);
    cpu_free(owned);
    return VD_OK;
}

vd_status cpu_binary(vd_backend *be, int op, const vd_tensor *a, const vd_tensor *b, vd_tensor *out)
{
    if (op == VD_BINARY_ADD)
        return broadcast(be, "add", BC_ADD, a, NULL, b, out);
    if (op == VD_BINARY_MUL)
        return broadcast(be, "mul", BC_MUL, a, NULL, b, out);
    return vd_error(VD_ERR_INVALID_ARGUMENT, "binary: unknown op %d", op);
}

vd_status cpu_add_gated(vd_backend *be, const vd_tensor *x, const vd_tensor *y, const vd_tensor *gate,
                        vd_tensor *out)
{
    return broadcast(be, "add_gated", BC_GATED, x, y, gate, out);
}

/* ---- upsample2x ---------------------------------------------------------------- */

typedef struct upsample_job {
    const float *x;
    float *out;
    int64_t H, W;
} upsample_job;

/* Input rows [begin, end) over all planes; each makes two output rows. */
static void upsample_rows(void *arg, int64_t begin, int64_t end, int worker)
{
    const upsample_job *j = arg;
    for (int64_t r = begin; r < end; r++) {
        const float *x = j->x + r * j->W;
        float *o = j->out + r * 4 * j->W; /* output rows 2r and 2r+1 of the same plane */
        for (int64_t c = 0; c < j->W; c++)
            o[2 * c] = o[2 * c + 1] = x[c];
        memcpy(o + 2 * j->W, o, (size_t)(2 * j->W) * sizeof *o);
    }
}

vd_status cpu_upsample2x(vd_backend *be, const vd_tensor *x, vd_tensor *out)
{
    upsample_job j = {x->data, out->data, x->shape[x->ndim - 2], x->shape[x->ndim - 1]};
    if (j.W == 0)
        return VD_OK;
    int64_t rows = vd_tensor_nelem(x) / j.W;
    int64_t grain = ELEM_GRAIN / j.W > 0 ? ELEM_GRAIN / j.W : 1;
    vd_parallel_for(cpu_pool(be), rows, grain, upsample_rows, &j);
    return VD_OK;
}

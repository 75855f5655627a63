/* LayerNorm with modulation, RMSNorm over rows, and the VAE's per-position
 * RMS norm over channels.  Statistics accumulate in double; each row (or
 * block of positions) is read whole before it is written, so in place works. */
#include <math.h>
#include <string.h>

#include "backend/cpu/cpu_internal.h"
#include "core/error.h"

enum { ROW_GRAIN = 16 };

/* ---- layernorm_modulate ---------------------------------------------------- */

typedef struct layernorm_job {
    const float *x, *weight, *bias, *shift, *scale;
    float *out;
    int64_t D, M, shift_group, scale_group; /* rows of x per parameter row */
    double eps;
} layernorm_job;

static void layernorm_rows(void *arg, int64_t begin, int64_t end, int worker)
{
    const layernorm_job *j = arg;
    int64_t D = j->D;
    for (int64_t r = begin; r < end; r++) {
        const float *x = j->x + r * D;
        float *y = j->out + r * D;
        double mean = 0.0, var = 0.0;
        for (int64_t c = 0; c < D; c++)
            mean += x[c];
        mean /= (double)D;
        for (int64_t c = 0; c < D; c++) {
            double t = x[c] - mean;
            var += t * t;
        }
        double rstd = 1.0 / sqrt(var / (double)D + j->eps);
        const float *shift = j->shift ? j->shift + r / j->shift_group * D : NULL;
        const float *scale = j->scale ? j->scale + r / j->scale_group * D : NULL;
        for (int64_t c = 0; c < D; c++) {
            float v = (float)((x[c] - mean) * rstd);
            if (j->weight)
                v *= j->weight[c];
            if (j->bias)
                v += j->bias[c];
            if (scale)
                v *= 1.0f + scale[c];
            if (shift)
                v += shift[c];
            y[c] = v;
        }
    }
}

vd_status cpu_layernorm_modulate(vd_backend *be, const vd_tensor *x, float eps, const vd_tensor *weight,
                                 const vd_tensor *bias, const vd_tensor *shift, const vd_tensor *scale,
                                 vd_tensor *out)
{
    const char *op = "layernorm_modulate";
    layernorm_job j = {.x = x->data, .out = out->data, .eps = eps};
    j.D = x->ndim ? x->shape[x->ndim - 1] : 1;
    j.M = j.D ? vd_tensor_nelem(x) / j.D : 0;
    if (j.M == 0)
        return VD_OK;
    float *owned[4] = {NULL, NULL, NULL, NULL};
    vd_status s;
    if ((s = cpu_param_f32(weight, op, "weight", &j.weight, &owned[0])) == VD_OK &&
        (s = cpu_param_f32(bias, op, "bias", &j.bias, &owned[1])) == VD_OK &&
        (s = cpu_param_f32(shift, op, "shift", &j.shift, &owned[2])) == VD_OK &&
        (s = cpu_param_f32(scale, op, "scale", &j.scale, &owned[3])) == VD_OK) {
        j.shift_group = shift ? j.M / (vd_tensor_nelem(shift) / j.D) : 1;
        j.scale_group = scale ? j.M / (vd_tensor_nelem(scale) / j.D) : 1;
        vd_parallel_for(cpu_pool(be), j.M, ROW_GRAIN, layernorm_rows, &j);
    }
    for (int i = 0; i < 4; i++)
        cpu_free(owned[i]);
    return s;
}

/* ---- rmsnorm ----------------------------------------------------------------- */

typedef struct rmsnorm_job {
    const float *x, *weight;
    float *out;
    int64_t D;
    double eps;
} rmsnorm_job;

static void rmsnorm_rows(void *arg, int64_t begin, int64_t end, int worker)
{
    const rmsnorm_job *j = arg;
    for (int64_t r = begin; r < end; r++) {
        const float *x = j->x + r * j->D;
        float *y = j->out + r * j->D;
        double ss = 0.0;
        for (int64_t c = 0; c < j->D; c++)
            ss += (double)x[c] * x[c];
        double inv = 1.0 / sqrt(ss / (double)j->D + j->eps);
        for (int64_t c = 0; c < j->D; c++) {
            float v = (float)(x[c] * inv);
            y[c] = j->weight ? v * j->weight[c] : v;
        }
    }
}

vd_status cpu_rmsnorm(vd_backend *be, const vd_tensor *x, const vd_tensor *weight, float eps, vd_tensor *out)
{
    rmsnorm_job j = {.x = x->data, .out = out->data, .eps = eps};
    j.D = x->ndim ? x->shape[x->ndim - 1] : 1;
    int64_t M = j.D ? vd_tensor_nelem(x) / j.D : 0;
    if (M == 0)
        return VD_OK;
    float *owned;
    VD_TRY(cpu_param_f32(weight, "rmsnorm", "weight", &j.weight, &owned));
    vd_parallel_for(cpu_pool(be), M, ROW_GRAIN, rmsnorm_rows, &j);
    cpu_free(owned);
    return VD_OK;
}

/* ---- channel_rmsnorm ---------------------------------------------------------- */

enum { POS_BLOCK = 256 };

typedef struct channel_job {
    const float *x, *gamma;
    float *out;
    int64_t C, P;
} channel_job;

static void channel_blocks(void *arg, int64_t begin, int64_t end, int worker)
{
    const channel_job *j = arg;
    double root_c = sqrt((double)j->C);
    for (int64_t blk = begin; blk < end; blk++) {
        int64_t p0 = blk * POS_BLOCK, np = j->P - p0 < POS_BLOCK ? j->P - p0 : POS_BLOCK;
        double ss[POS_BLOCK];
        float inv[POS_BLOCK];
        for (int64_t p = 0; p < np; p++)
            ss[p] = 0.0;
        for (int64_t c = 0; c < j->C; c++) {
            const float *x = j->x + c * j->P + p0;
            for (int64_t p = 0; p < np; p++)
                ss[p] += (double)x[p] * x[p];
        }
        for (int64_t p = 0; p < np; p++) {
            double norm = sqrt(ss[p]);
            inv[p] = (float)(root_c / (norm > 1e-12 ? norm : 1e-12));
        }
        for (int64_t c = 0; c < j->C; c++) {
            const float *x = j->x + c * j->P + p0;
            float *y = j->out + c * j->P + p0;
            float g = j->gamma[c];
            for (int64_t p = 0; p < np; p++)
                y[p] = x[p] * inv[p] * g;
        }
    }
}

vd_status cpu_channel_rmsnorm(vd_backend *be, const vd_tensor *x, const vd_tensor *gamma, vd_tensor *out)
{
    channel_job j = {.x = x->data, .out = out->data, .C = x->shape[0]};
    j.P = j.C ? vd_tensor_nelem(x) / j.C : 0;
    if (j.P == 0)
        return VD_OK;
    float *owned;
    VD_TRY(cpu_param_f32(gamma, "channel_rmsnorm", "gamma", &j.gamma, &owned));
    vd_parallel_for(cpu_pool(be), (j.P + POS_BLOCK - 1) / POS_BLOCK, 1, channel_blocks, &j);
    cpu_free(owned);
    return VD_OK;
}

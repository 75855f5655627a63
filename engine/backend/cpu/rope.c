/* Wan 3-D RoPE.  Angles p·ω with ω = theta^(−2j/n) (n = the channels of the
 * axis) and the rotation itself are computed in double, as the reference
 * does, and rounded to f32 once. */
#include <math.h>
#include <stdlib.h>

#include "backend/cpu/cpu_internal.h"
#include "core/error.h"

typedef struct rope_job {
    const float *x;
    float *out;
    int64_t H, d, frames, height, width;
    int64_t pairs_t, pairs_s; /* complex pairs rotated by the frame index; by the row (and by the column) */
    const double *cos_t, *sin_t, *cos_h, *sin_h, *cos_w, *sin_w; /* [position][pair] */
} rope_job;

static void rotate(const float *x, float *y, int64_t pairs, const double *c, const double *s)
{
    for (int64_t k = 0; k < pairs; k++) {
        double x0 = x[2 * k], x1 = x[2 * k + 1];
        y[2 * k] = (float)(x0 * c[k] - x1 * s[k]);
        y[2 * k + 1] = (float)(x0 * s[k] + x1 * c[k]);
    }
}

static void rope_tokens(void *arg, int64_t begin, int64_t end, int worker)
{
    const rope_job *j = arg;
    int64_t grid = j->frames * j->height * j->width;
    for (int64_t m = begin; m < end; m++) {
        int64_t pos = m % grid;
        int64_t f = pos / (j->height * j->width), hh = pos / j->width % j->height, ww = pos % j->width;
        for (int64_t h = 0; h < j->H; h++) {
            const float *x = j->x + (m * j->H + h) * j->d;
            float *y = j->out + (m * j->H + h) * j->d;
            rotate(x, y, j->pairs_t, j->cos_t + f * j->pairs_t, j->sin_t + f * j->pairs_t);
            x += 2 * j->pairs_t;
            y += 2 * j->pairs_t;
            rotate(x, y, j->pairs_s, j->cos_h + hh * j->pairs_s, j->sin_h + hh * j->pairs_s);
            x += 2 * j->pairs_s;
            y += 2 * j->pairs_s;
            rotate(x, y, j->pairs_s, j->cos_w + ww * j->pairs_s, j->sin_w + ww * j->pairs_s);
        }
    }
}

/* cos and sin of p·ω_k for p < positions, k < pairs, ω_k = theta^(−2k/(2·pairs)). */
static void angle_table(double theta, int64_t positions, int64_t pairs, double *c, double *s)
{
    for (int64_t k = 0; k < pairs; k++) {
        double omega = 1.0 / pow(theta, (double)(2 * k) / (double)(2 * pairs));
        for (int64_t p = 0; p < positions; p++) {
            double a = (double)p * omega;
            c[p * pairs + k] = cos(a);
            s[p * pairs + k] = sin(a);
        }
    }
}

vd_status cpu_rope3d(vd_backend *be, const vd_tensor *x, int64_t frames, int64_t height, int64_t width, double theta,
                     vd_tensor *out)
{
    rope_job j = {.x = x->data, .out = out->data, .frames = frames, .height = height, .width = width};
    j.d = x->shape[x->ndim - 1];
    j.H = x->shape[x->ndim - 2];
    j.pairs_s = j.d / 6;
    j.pairs_t = j.d / 2 - 2 * j.pairs_s;
    int64_t M = j.H * j.d > 0 ? vd_tensor_nelem(x) / (j.H * j.d) : 0;
    if (M == 0)
        return VD_OK;
    int64_t n_t = frames * j.pairs_t, n_h = height * j.pairs_s, n_w = width * j.pairs_s;
    double *table = malloc((size_t)(2 * (n_t + n_h + n_w) + 1) * sizeof *table);
    if (!table)
        return vd_error(VD_ERR_OUT_OF_MEMORY, "rope3d: no memory for the angle tables");
    double *c_t = table, *s_t = c_t + n_t, *c_h = s_t + n_t, *s_h = c_h + n_h, *c_w = s_h + n_h, *s_w = c_w + n_w;
    angle_table(theta, frames, j.pairs_t, c_t, s_t);
    angle_table(theta, height, j.pairs_s, c_h, s_h);
    angle_table(theta, width, j.pairs_s, c_w, s_w);
    j.cos_t = c_t;
    j.sin_t = s_t;
    j.cos_h = c_h;
    j.sin_h = s_h;
    j.cos_w = c_w;
    j.sin_w = s_w;
    vd_parallel_for(cpu_pool(be), M, 16, rope_tokens, &j);
    free(table);
    return VD_OK;
}

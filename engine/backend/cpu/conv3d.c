/* 3-D convolution as im2col + SGEMM: for each output frame, a tile of output
 * positions gathers its receptive fields into columns (Cin·kt·kh·kw rows,
 * zero where the window leaves the padded input), and the weight matrix
 * [Cout, Cin·kt·kh·kw] times those columns writes the tile of every output
 * channel. */
#include <stdlib.h>
#include <string.h>

#include "backend/cpu/cpu_internal.h"
#include "core/error.h"

typedef struct conv_job {
    const float *x, *w, *bias;
    float *out;
    float alpha;
    int64_t Cin, T, H, W, Cout, kt, kh, kw, To, Ho, Wo;
    int64_t st, sh, sw, pad_t, pad_h, pad_w;
    int64_t patch, P, tile, tiles_per_frame;
    float **scratch; /* per worker: patch × tile floats */
} conv_job;

/* Row (ci, dt, dy, dx) of the columns for output positions [p0, p0+np) of
 * output frame t. */
static void gather_row(const conv_job *j, const float *frame, int64_t dy, int64_t dx, int64_t p0, int64_t np,
                       float *dst)
{
    int64_t oy = p0 / j->Wo, ox = p0 % j->Wo;
    /* Output columns whose input column ix = ox·sw + dx − pad_w lies in
     * [0, W): ox in [lo, hi). */
    int64_t lo = j->pad_w - dx > 0 ? (j->pad_w - dx + j->sw - 1) / j->sw : 0;
    int64_t hi = j->W - 1 + j->pad_w - dx >= 0 ? (j->W - 1 + j->pad_w - dx) / j->sw + 1 : 0;
    if (hi > j->Wo)
        hi = j->Wo;
    int64_t p = 0;
    while (p < np) {
        int64_t run = j->Wo - ox < np - p ? j->Wo - ox : np - p; /* rest of this output row */
        int64_t iy = oy * j->sh + dy - j->pad_h;
        if (iy < 0 || iy >= j->H) {
            memset(dst + p, 0, (size_t)run * sizeof *dst);
        } else {
            const float *src = frame + iy * j->W;
            /* columns [a, b) of this run read the input; the rest is padding */
            int64_t a = lo > ox ? lo : ox, b = hi < ox + run ? hi : ox + run;
            if (b < a)
                b = a;
            if (a > ox)
                memset(dst + p, 0, (size_t)(a - ox) * sizeof *dst);
            if (j->sw == 1) {
                memcpy(dst + p + (a - ox), src + a + dx - j->pad_w, (size_t)(b - a) * sizeof *dst);
            } else {
                for (int64_t o = a; o < b; o++)
                    dst[p + (o - ox)] = src[o * j->sw + dx - j->pad_w];
            }
            if (ox + run > b)
                memset(dst + p + (b - ox), 0, (size_t)(ox + run - b) * sizeof *dst);
        }
        p += run;
        ox = 0;
        oy++;
    }
}

static void conv_tiles(void *arg, int64_t begin, int64_t end, int worker)
{
    const conv_job *j = arg;
    float *col = j->scratch[worker];
    for (int64_t item = begin; item < end; item++) {
        int64_t t = item / j->tiles_per_frame;
        int64_t p0 = (item % j->tiles_per_frame) * j->tile;
        int64_t np = j->P - p0 < j->tile ? j->P - p0 : j->tile;
        int64_t row = 0;
        for (int64_t ci = 0; ci < j->Cin; ci++)
            for (int64_t dt = 0; dt < j->kt; dt++) {
                int64_t it = t * j->st + dt - j->pad_t;
                bool inside = it >= 0 && it < j->T;
                const float *frame = inside ? j->x + (ci * j->T + it) * j->H * j->W : NULL;
                for (int64_t dy = 0; dy < j->kh; dy++)
                    for (int64_t dx = 0; dx < j->kw; dx++, row++) {
                        float *dst = col + row * np;
                        if (!inside)
                            memset(dst, 0, (size_t)np * sizeof *dst);
                        else
                            gather_row(j, frame, dy, dx, p0, np, dst);
                    }
            }
        int64_t ldc = j->To * j->P;
        float *y = j->out + t * j->P + p0;
        cpu_sgemm(false, (int)j->Cout, (int)np, (int)j->patch, j->alpha, j->w, (int)j->patch, col, (int)np, 0.0f, y,
                  (int)ldc);
        if (j->bias)
            for (int64_t co = 0; co < j->Cout; co++)
                for (int64_t p = 0; p < np; p++)
                    y[co * ldc + p] += j->bias[co];
    }
}

vd_status cpu_conv3d(vd_backend *be, const vd_tensor *x, const vd_tensor *w, const vd_tensor *bias,
                     const int stride[3], const int pad[6], vd_tensor *out)
{
    conv_job j = {
        .x = x->data, .out = out->data, .alpha = w->scale,
        .Cin = x->shape[0], .T = x->shape[1], .H = x->shape[2], .W = x->shape[3],
        .Cout = w->shape[0], .kt = w->shape[2], .kh = w->shape[3], .kw = w->shape[4],
        .To = out->shape[1], .Ho = out->shape[2], .Wo = out->shape[3],
        .st = stride[0], .sh = stride[1], .sw = stride[2], .pad_t = pad[0], .pad_h = pad[2], .pad_w = pad[4],
    };
    j.patch = j.Cin * j.kt * j.kh * j.kw;
    j.P = j.Ho * j.Wo;
    if (j.Cout == 0 || j.To * j.P == 0)
        return VD_OK;
    /* About 2 Mi floats of columns per tile, a multiple of 16 positions. */
    j.tile = ((int64_t)1 << 21) / (j.patch > 0 ? j.patch : 1) / 16 * 16;
    if (j.tile < 64)
        j.tile = 64;
    if (j.tile > j.P)
        j.tile = j.P;
    j.tiles_per_frame = (j.P + j.tile - 1) / j.tile;

    float *bias_owned = NULL, *w_owned = NULL;
    VD_TRY(cpu_param_f32(bias, "conv3d", "bias", &j.bias, &bias_owned));
    vd_status s = VD_OK;
    if (cpu_weight_is_direct_f32(w)) {
        j.w = w->data;
    } else {
        w_owned = cpu_alloc_floats(j.Cout * j.patch);
        if (!w_owned)
            s = vd_error(VD_ERR_OUT_OF_MEMORY, "conv3d: no memory to dequantise the weight (%lld values)",
                         (long long)(j.Cout * j.patch));
        else if ((s = cpu_weight_rows_f32(w, j.patch, 0, j.Cout, w_owned)) != VD_OK)
            vd_error_context(s, "conv3d: weight%s%s: ", w->name ? " " : "", w->name ? w->name : "");
        j.w = w_owned;
    }
    int workers = cpu_workers(be);
    if (s == VD_OK) {
        j.scratch = calloc((size_t)workers, sizeof *j.scratch);
        if (!j.scratch)
            s = VD_ERR_OUT_OF_MEMORY;
        for (int i = 0; s == VD_OK && i < workers; i++)
            if (!(j.scratch[i] = cpu_alloc_floats(j.patch * j.tile)))
                s = VD_ERR_OUT_OF_MEMORY;
        if (s != VD_OK)
            vd_error(s, "conv3d: no memory for %d column tiles of %lld x %lld", workers, (long long)j.patch,
                     (long long)j.tile);
    }
    if (s == VD_OK)
        vd_parallel_for(cpu_pool(be), j.To * j.tiles_per_frame, 1, conv_tiles, &j);
    for (int i = 0; j.scratch && i < workers; i++)
        cpu_free(j.scratch[i]);
    free(j.scratch);
    cpu_free(w_owned);
    cpu_free(bias_owned);
    return s;
}

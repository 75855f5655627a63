/* The CUDA backend's cuDNN 3-D convolutions (engine/backend/cuda/
 * cuda_conv3d_cudnn.c) against the CPU backend, on the Wan VAE's
 * convolution shapes in miniature (wan_vae.c: causal 3×3×3, 1×1×1
 * shortcuts and heads, 3×1×1 time convs, the 1×3×3 resample convs, the
 * encoder's stride-2 downsampling with bottom/right padding), f32, bf16 and
 * f16 weights, scales ≠ 1, with and without bias.
 *
 *   accuracy   VD_CUDA_CONV=cudnn and =im2col within relative L2 1e-5 of the
 *              CPU (fp32); the default path (unset) bit for bit the forced
 *              cuDNN one (so the default really runs cuDNN)
 *   errors     an unknown VD_CUDA_CONV value is refused with a message
 *   memory     200 calls after a warm-up: device free memory (cudaMemGetInfo)
 *              drops by at most 1 MiB, the allocator's live bytes unchanged
 *   eviction   more shapes than the plan cache holds, then the first ones
 *              again: still right, and bit for bit their first results
 *
 * Skipped (exit 77) without a CUDA build, without cuDNN in the build, or
 * without a GPU.  VD_CUDA_SYNC=1 is set unless the caller sets it, so an
 * asynchronous fault is reported by the op that caused it. */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "test_util.h"
#include "vd_config.h"

#if VD_HAVE_CUDA && VD_HAVE_CUDNN

#include "backend/backend.h"
#include "backend/cuda/backend_cuda.h"

static const double F32_BOUND = 1e-5;

static vd_backend *cpu, *gpu;

typedef struct conv_case {
    const char *what;
    int64_t Cin, T, H, W, Cout, kt, kh, kw;
    int stride[3], pad[6]; /* pad: t front, t back, top, bottom, left, right */
    vd_dtype wdt;
    float wscale;
    bool bias;
} conv_case;

static const conv_case cases[] = {
    {"decoder.conv1 16->384, after the causal cache", 16, 3, 12, 10, 384, 3, 3, 3,
     {1, 1, 1}, {0, 0, 1, 1, 1, 1}, VD_F32, 1.0f, true},
    {"middle resblock conv 384->384", 384, 4, 6, 5, 384, 3, 3, 3,
     {1, 1, 1}, {0, 0, 1, 1, 1, 1}, VD_F32, 1.0f, true},
    {"causal 3x3x3, time padding (2,0)", 96, 6, 20, 24, 96, 3, 3, 3,
     {1, 1, 1}, {2, 0, 1, 1, 1, 1}, VD_F32, 1.0f, true},
    {"shortcut 1x1x1 192->96", 192, 3, 10, 12, 96, 1, 1, 1,
     {1, 1, 1}, {0, 0, 0, 0, 0, 0}, VD_F32, 1.0f, true},
    {"upsample3d time_conv 3x1x1 384->768", 384, 3, 8, 6, 768, 3, 1, 1,
     {1, 1, 1}, {0, 0, 0, 0, 0, 0}, VD_F32, 1.0f, true},
    {"time-only 3x1x1, time padding (2,0)", 384, 2, 8, 6, 768, 3, 1, 1,
     {1, 1, 1}, {2, 0, 0, 0, 0, 0}, VD_F32, 1.0f, true},
    {"resample.1 1x3x3 after the 2x upsampling", 96, 3, 32, 40, 96, 1, 3, 3,
     {1, 1, 1}, {0, 0, 1, 1, 1, 1}, VD_F32, 1.0f, true},
    {"decoder head 3x3x3 96->3", 96, 4, 40, 40, 3, 3, 3, 3,
     {1, 1, 1}, {0, 0, 1, 1, 1, 1}, VD_F32, 1.0f, true},
    {"encoder.conv1 3->96", 3, 5, 40, 36, 96, 3, 3, 3,
     {1, 1, 1}, {0, 0, 1, 1, 1, 1}, VD_F32, 1.0f, true},
    {"encoder downsample 1x3x3 stride 2, pad bottom/right", 96, 1, 40, 36, 96, 1, 3, 3,
     {1, 2, 2}, {0, 0, 0, 1, 0, 1}, VD_F32, 1.0f, true},
    {"encoder downsample, odd sizes, no bias", 96, 5, 11, 13, 96, 1, 3, 3,
     {1, 2, 2}, {0, 0, 0, 1, 0, 1}, VD_F32, 1.0f, false},
    {"encoder time downsample 3x1x1 stride 2", 192, 5, 10, 10, 192, 3, 1, 1,
     {2, 1, 1}, {0, 0, 0, 0, 0, 0}, VD_F32, 1.0f, true},
    {"pointwise bf16, scale 0.5", 32, 4, 8, 8, 32, 1, 1, 1,
     {1, 1, 1}, {0, 0, 0, 0, 0, 0}, VD_BF16, 0.5f, true},
    {"causal bf16, scale 1.5, no bias", 64, 3, 9, 7, 48, 3, 3, 3,
     {1, 1, 1}, {2, 0, 1, 1, 1, 1}, VD_BF16, 1.5f, false},
    {"T=1, 5x5, causal, scale 0.25, no bias", 16, 1, 5, 5, 8, 3, 3, 3,
     {1, 1, 1}, {2, 0, 1, 1, 1, 1}, VD_F32, 0.25f, false},
    {"pointwise 384 bf16, scale 2", 384, 2, 5, 6, 384, 1, 1, 1,
     {1, 1, 1}, {0, 0, 0, 0, 0, 0}, VD_BF16, 2.0f, true},
    {"symmetric time padding (1,1), T=6", 8, 6, 7, 9, 16, 3, 3, 3,
     {1, 1, 1}, {1, 1, 1, 1, 1, 1}, VD_F32, 1.0f, true},
    {"asymmetric everything, even kernel sizes", 3, 2, 9, 8, 4, 2, 3, 2,
     {1, 1, 1}, {1, 0, 2, 0, 0, 1}, VD_F32, 1.0f, true},
    {"f16 weights 1x3x3", 16, 2, 8, 8, 8, 1, 3, 3,
     {1, 1, 1}, {0, 0, 1, 1, 1, 1}, VD_F16, 1.0f, true},
    {"stride 2 everywhere, padding (0,1) (0,1) (1,0), bf16", 24, 4, 9, 10, 32, 3, 3, 3,
     {2, 2, 2}, {0, 1, 0, 1, 1, 0}, VD_BF16, 0.75f, true},
};
enum { N_CASES = sizeof cases / sizeof cases[0] };

/* One case's tensors on the CPU (c) and the GPU (g). */
typedef struct conv_data {
    vd_tensor xc, xg, wc, wg, bc, bg, oc, og;
    int64_t n_out;
} conv_data;

static void die(const char *what)
{
    fprintf(stderr, "%s: %s\n", what, vd_last_error());
    fflush(NULL);
    exit(1);
}

static void set_mode(const char *mode)
{
    if (mode)
        setenv("VD_CUDA_CONV", mode, 1);
    else
        unsetenv("VD_CUDA_CONV");
}

/* `raw` (bytes of dtype) into a new tensor on each backend. */
static void upload_both(vd_dtype dtype, int ndim, const int64_t *shape, const void *raw, vd_tensor *c, vd_tensor *g)
{
    if (vd_tensor_alloc(cpu, dtype, ndim, shape, c) != VD_OK || vd_tensor_alloc(gpu, dtype, ndim, shape, g) != VD_OK)
        die("allocating a test tensor");
    if (raw && (vd_tensor_upload(cpu, c, raw, vd_tensor_nbytes(c)) != VD_OK ||
                vd_tensor_upload(gpu, g, raw, vd_tensor_nbytes(g)) != VD_OK))
        die("uploading a test tensor");
}

static void data_make(const conv_case *k, uint64_t seed, conv_data *d)
{
    memset(d, 0, sizeof *d);
    const int64_t sx[4] = {k->Cin, k->T, k->H, k->W}, sw[5] = {k->Cout, k->Cin, k->kt, k->kh, k->kw};
    const int64_t sb[1] = {k->Cout};
    const int64_t so[4] = {k->Cout, (k->T + k->pad[0] + k->pad[1] - k->kt) / k->stride[0] + 1,
                           (k->H + k->pad[2] + k->pad[3] - k->kh) / k->stride[1] + 1,
                           (k->W + k->pad[4] + k->pad[5] - k->kw) / k->stride[2] + 1};
    const int64_t nx = sx[0] * sx[1] * sx[2] * sx[3], nw = sw[0] * sw[1] * sw[2] * sw[3] * sw[4];
    d->n_out = so[0] * so[1] * so[2] * so[3];

    float *hx = random_floats(seed, nx, -1.0f, 1.0f);
    upload_both(VD_F32, 4, sx, hx, &d->xc, &d->xg);
    free(hx);

    float *hw = random_floats(seed + 1, nw, -0.2f, 0.2f);
    vd_tensor probe;
    if (vd_tensor_init(&probe, k->wdt, 5, sw, NULL) != VD_OK)
        die("sizing the weight");
    size_t wbytes = vd_tensor_nbytes(&probe);
    void *raw = malloc(wbytes ? wbytes : 1);
    if (!raw || vd_dtype_from_f32(k->wdt, hw, raw, nw) != VD_OK)
        die("converting the weight");
    upload_both(k->wdt, 5, sw, raw, &d->wc, &d->wg);
    free(raw);
    free(hw);
    d->wc.scale = d->wg.scale = k->wscale;
    d->wc.name = d->wg.name = "decoder.upsamples.0.residual.2.weight";

    if (k->bias) {
        float *hb = random_floats(seed + 2, k->Cout, -0.5f, 0.5f);
        upload_both(VD_F32, 1, sb, hb, &d->bc, &d->bg);
        free(hb);
    }
    upload_both(VD_F32, 4, so, NULL, &d->oc, &d->og);
}

static void data_free(conv_data *d)
{
    vd_tensor *all[] = {&d->xc, &d->xg, &d->wc, &d->wg, &d->bc, &d->bg, &d->oc, &d->og};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        if (all[i]->data)
            vd_tensor_release(all[i]);
}

static float *download(vd_backend *be, const vd_tensor *t, int64_t n)
{
    float *h = malloc((size_t)(n ? n : 1) * sizeof *h);
    if (!h || vd_tensor_download(be, t, h, (size_t)n * sizeof *h) != VD_OK)
        die("downloading a result");
    return h;
}

static vd_status conv_on(vd_backend *be, const conv_case *k, conv_data *d)
{
    bool g = be == gpu;
    return vd_op_conv3d(be, g ? &d->xg : &d->xc, g ? &d->wg : &d->wc, k->bias ? (g ? &d->bg : &d->bc) : NULL,
                        k->stride, k->pad, g ? &d->og : &d->oc);
}

/* The GPU convolution with VD_CUDA_CONV = mode (NULL: unset), downloaded;
 * NULL (a failure counted) if the op fails. */
static float *gpu_result(const conv_case *k, conv_data *d, const char *mode)
{
    set_mode(mode);
    vd_status s = conv_on(gpu, k, d);
    set_mode(NULL);
    if (s != VD_OK) {
        fprintf(stderr, "  %s (VD_CUDA_CONV=%s): conv3d failed: %s: %s\n", k->what, mode ? mode : "unset",
                vd_status_name(s), vd_last_error());
        test_failures++;
        return NULL;
    }
    return download(gpu, &d->og, d->n_out);
}

static double max_abs_diff(const float *a, const float *b, int64_t n)
{
    double m = 0;
    for (int64_t i = 0; i < n; i++) {
        double e = fabs((double)a[i] - (double)b[i]);
        if (!(e <= m))
            m = e; /* NaN propagates */
    }
    return m;
}

static void report(const char *what, const char *path, const float *got, const float *ref, int64_t n)
{
    double e = rel_l2(got, ref, n);
    if (isnan(e))
        e = INFINITY;
    bool ok = e <= F32_BOUND;
    printf("  %-56s %-7s rel L2 %.2e  max|d| %.2e%s\n", what, path, e, max_abs_diff(got, ref, n), ok ? "" : "  FAIL");
    if (!ok)
        test_failures++;
}

/* ---- accuracy ---------------------------------------------------------------- */

static void group_accuracy(void)
{
    printf("== accuracy (bound %.0e vs the CPU backend)\n", F32_BOUND);
    for (int i = 0; i < N_CASES; i++) {
        const conv_case *k = &cases[i];
        conv_data d;
        data_make(k, 9000 + 10 * (uint64_t)i, &d);
        CHECK_OK(conv_on(cpu, k, &d));
        float *ref = download(cpu, &d.oc, d.n_out);
        float *dn = gpu_result(k, &d, "cudnn");
        float *df = gpu_result(k, &d, NULL);
        float *im = gpu_result(k, &d, "im2col");
        if (dn)
            report(k->what, "cudnn", dn, ref, d.n_out);
        if (im)
            report(k->what, "im2col", im, ref, d.n_out);
        if (dn && df && memcmp(dn, df, (size_t)d.n_out * sizeof *dn) != 0) {
            printf("  %-56s default path differs from VD_CUDA_CONV=cudnn (max|d| %.2e)  FAIL\n", k->what,
                   max_abs_diff(df, dn, d.n_out));
            test_failures++;
        }
        free(ref), free(dn), free(df), free(im);
        data_free(&d);
    }
}

/* ---- errors -------------------------------------------------------------------- */

static void group_errors(void)
{
    printf("== errors\n");
    conv_data d;
    data_make(&cases[0], 9500, &d);
    set_mode("cuDNN-please");
    CHECK_FAILS(conv_on(gpu, &cases[0], &d), VD_ERR_INVALID_ARGUMENT);
    CHECKF(strstr(vd_last_error(), "VD_CUDA_CONV") != NULL, "the message does not name VD_CUDA_CONV: %s",
           vd_last_error());
    printf("  VD_CUDA_CONV=cuDNN-please -> %s\n", vd_last_error());
    set_mode(NULL);
    CHECK_OK(conv_on(gpu, &cases[0], &d)); /* the backend is still usable */
    data_free(&d);
}

/* ---- memory --------------------------------------------------------------------- */

static void group_memory(void)
{
    printf("== memory (200 calls after a warm-up)\n");
    /* the padded-input path, a pointwise bf16 one, a plain one and a downsampling */
    const int pick[4] = {2, 12, 0, 9};
    conv_data d[4];
    for (int i = 0; i < 4; i++)
        data_make(&cases[pick[i]], 9600 + (uint64_t)i, &d[i]);
    set_mode(NULL);
    for (int rep = 0; rep < 3; rep++)
        for (int i = 0; i < 4; i++)
            CHECK_OK(conv_on(gpu, &cases[pick[i]], &d[i]));
    CHECK_OK(vd_backend_synchronize(gpu));
    vd_cuda_memory_stats before, after;
    CHECK_OK(vd_backend_cuda_memory(gpu, &before));
    for (int call = 0; call < 200; call++)
        CHECK_OK(conv_on(gpu, &cases[pick[call % 4]], &d[call % 4]));
    CHECK_OK(vd_backend_synchronize(gpu));
    CHECK_OK(vd_backend_cuda_memory(gpu, &after));
    const double drop = (double)before.device_free_bytes - (double)after.device_free_bytes;
    printf("  device free %.1f -> %.1f MiB (drop %.3f MiB); allocator live %zu -> %zu, cached %zu -> %zu bytes\n",
           before.device_free_bytes / 1048576.0, after.device_free_bytes / 1048576.0, drop / 1048576.0,
           before.live_bytes, after.live_bytes, before.cached_bytes, after.cached_bytes);
    CHECKF(drop <= 1048576.0, "device free memory dropped by %.0f bytes over 200 calls", drop);
    CHECKF(after.live_bytes == before.live_bytes, "live bytes %zu after the calls, %zu before", after.live_bytes,
           before.live_bytes);
    for (int i = 0; i < 4; i++)
        data_free(&d[i]);
}

/* ---- eviction ----------------------------------------------------------------- */

enum { N_EVICT = 136, N_AGAIN = 3 }; /* more shapes than cuda_conv3d_cudnn.c's 128 cache slots */

static void group_eviction(void)
{
    printf("== eviction (%d shapes, then the first %d again)\n", N_EVICT, N_AGAIN);
    float *first[N_AGAIN] = {NULL};
    double worst = 0;
    for (int pass = 0; pass < 2; pass++) {
        for (int i = 0; i < (pass ? N_AGAIN : N_EVICT); i++) {
            conv_case k = {"eviction", 4, 3, 6, 5 + i, 4, 3, 3, 3, {1, 1, 1}, {i % 3, 0, 1, 1, 1, 1},
                           VD_F32, 1.0f, true};
            conv_data d;
            data_make(&k, 9700 + (uint64_t)i, &d);
            float *got = gpu_result(&k, &d, "cudnn");
            if (got && pass == 0) {
                CHECK_OK(conv_on(cpu, &k, &d));
                float *ref = download(cpu, &d.oc, d.n_out);
                double e = rel_l2(got, ref, d.n_out);
                if (!(e <= worst))
                    worst = e;
                free(ref);
            }
            if (got && pass == 1 && first[i]) {
                bool same = memcmp(got, first[i], (size_t)d.n_out * sizeof *got) == 0;
                CHECKF(same, "shape %d: not bit for bit its first result after eviction", i);
            }
            if (pass == 0 && i < N_AGAIN)
                first[i] = got;
            else
                free(got);
            data_free(&d);
        }
    }
    printf("  worst rel L2 over %d shapes %.2e%s\n", N_EVICT, worst, worst <= F32_BOUND ? "" : "  FAIL");
    if (!(worst <= F32_BOUND))
        test_failures++;
    for (int i = 0; i < N_AGAIN; i++)
        free(first[i]);
}

int main(void)
{
    setenv("VD_CUDA_SYNC", "1", 0);
    set_mode(NULL);
    vd_backend_options o = {.threads = 0};
    if (vd_backend_open("cuda:0", &o, &gpu) != VD_OK) {
        printf("SKIP: no usable GPU: %s\n", vd_last_error());
        return 77;
    }
    if (vd_backend_open("cpu", &o, &cpu) != VD_OK)
        die("opening the CPU backend");
    group_accuracy();
    group_errors();
    group_memory();
    group_eviction();
    vd_backend_close(gpu);
    vd_backend_close(cpu);
    return test_finish("test_conv3d_cudnn");
}

#else

int main(void)
{
    printf("SKIP: %s\n", VD_HAVE_CUDA ? "this build has no cuDNN (meson -Dcudnn=enabled, -Dcudnn_root=DIR)"
                                      : "this build has no CUDA backend");
    return 77;
}

#endif

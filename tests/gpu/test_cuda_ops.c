/* Every CUDA op against the CPU backend on random data, the golden models
 * run on the GPU, and the CUDA backend's memory behaviour.  Skipped (exit
 * 77) where no GPU is present.
 *
 * Bounds (relative L2 against the CPU backend or the PyTorch goldens):
 *   fp32 paths (norms, RoPE, copies, convolutions, fp32 attention)  1e-5
 *   bf16 paths (matmul, tensor-core attention)                      1e-2
 *   the tiny DiT and umT5 (bf16 GEMMs) vs the goldens               2e-2
 *   the tiny VAE (fp32 convolutions) vs the goldens                  1e-3
 *   fp8 GEMMs (e4m3 weights and activations) vs the exact product    6e-2
 *     (see FP8_BOUND); where the fp8 path declines, bit-identical to the
 *     bf16 path
 *
 * Each group runs in its own child process (fork before any CUDA call), so
 * a fault that kills one CUDA context cannot hide the results of the other
 * groups, and the groups can run with different environments (tiling caps,
 * the fp32 attention kernel).  VD_CUDA_SYNC=1 is set unless the caller sets
 * it, so an asynchronous fault is reported by the op that caused it.  Every
 * comparison prints its error; the last line counts the groups. */
#include <stdbool.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include "attention_fa2.h"
#include "backend/backend.h"
#include "backend/cuda/backend_cuda.h"
#include "io/weights.h"
#include "models/umt5.h"
#include "models/wan_dit.h"
#include "models/wan_vae.h"
#include "test_util.h"
#include "vd_config.h"

#if VD_HAVE_CUDA
#include <cuda_runtime.h>
#endif

#define GOLDEN VD_TEST_DATA_DIR "/golden/"

static vd_backend *cpu, *gpu;

static const double F32_BOUND = 1e-5, BF16_BOUND = 1e-2;

/* ---- helpers ------------------------------------------------------------------ */

/* The same tensor on the CPU (c) and on the GPU (g). */
typedef struct pair {
    vd_tensor c, g;
} pair;

static void die(const char *what)
{
    fprintf(stderr, "%s: %s\n", what, vd_last_error());
    fflush(NULL);
    _exit(1);
}

/* Raw bytes of `dtype` uploaded to both (NULL: contents undefined). */
static pair pair_raw(vd_dtype dtype, int ndim, const int64_t *shape, const void *raw)
{
    pair p;
    if (vd_tensor_alloc(cpu, dtype, ndim, shape, &p.c) != VD_OK || vd_tensor_alloc(gpu, dtype, ndim, shape, &p.g) != VD_OK)
        die("allocating a test tensor");
    if (raw && (vd_tensor_upload(cpu, &p.c, raw, vd_tensor_nbytes(&p.c)) != VD_OK ||
                vd_tensor_upload(gpu, &p.g, raw, vd_tensor_nbytes(&p.g)) != VD_OK))
        die("uploading a test tensor");
    return p;
}

static pair pair_f32(int ndim, const int64_t *shape, const float *host) { return pair_raw(VD_F32, ndim, shape, host); }

/* f32 values converted to `dtype` with vd_dtype_from_f32. */
static pair pair_conv(vd_dtype dtype, int ndim, const int64_t *shape, const float *values)
{
    vd_tensor probe;
    if (vd_tensor_init(&probe, dtype, ndim, shape, NULL) != VD_OK)
        die("pair_conv");
    size_t bytes = vd_tensor_nbytes(&probe);
    void *raw = malloc(bytes ? bytes : 1);
    if (!raw || vd_dtype_from_f32(dtype, values, raw, vd_tensor_nelem(&probe)) != VD_OK)
        die("pair_conv: converting");
    pair p = pair_raw(dtype, ndim, shape, raw);
    free(raw);
    return p;
}

/* Random f32 values in [lo, hi) on both. */
static pair pair_rand(uint64_t seed, int ndim, const int64_t *shape, float lo, float hi)
{
    int64_t n = 1;
    for (int i = 0; i < ndim; i++)
        n *= shape[i];
    float *h = random_floats(seed, n, lo, hi);
    pair p = pair_f32(ndim, shape, h);
    free(h);
    return p;
}

static void pair_free(pair *p)
{
    vd_tensor_release(&p->c);
    vd_tensor_release(&p->g);
}

static void set_name(pair *p, const char *name) { p->c.name = p->g.name = name; }

static float *download(vd_backend *be, const vd_tensor *t)
{
    int64_t n = vd_tensor_nelem(t);
    float *h = malloc((size_t)(n ? n : 1) * sizeof *h);
    if (!h || vd_tensor_download(be, t, h, (size_t)n * sizeof *h) != VD_OK)
        die("downloading a result");
    return h;
}

static void report(const char *what, double err, double bound, double max_abs)
{
    bool ok = err <= bound;
    printf("  %-66s rel L2 %.2e  max|d| %.2e  (bound %.0e)%s\n", what, err, max_abs, bound, ok ? "" : "  FAIL");
    fflush(stdout);
    if (!ok)
        test_failures++;
}

static double max_abs_diff(const float *a, const float *b, int64_t n)
{
    double m = 0;
    for (int64_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - (double)b[i]);
        if (!(d <= m))
            m = d; /* NaN propagates */
    }
    return m;
}

/* GPU result against the CPU result of the same op. */
static void compare(const char *what, const pair *p, double bound)
{
    int64_t n = vd_tensor_nelem(&p->c);
    float *a = download(cpu, &p->c), *b = download(gpu, &p->g);
    double e = rel_l2(b, a, n);
    if (isnan(e))
        e = INFINITY;
    report(what, e, bound, max_abs_diff(b, a, n));
    free(a);
    free(b);
}

/* Run a call on both backends (the expression uses `be` and `T(p)`). */
#define BOTH(call)                                    \
    do {                                              \
        for (int side_ = 0; side_ < 2; side_++) {     \
            vd_backend *be = side_ ? gpu : cpu;       \
            CHECK_OK(call);                           \
        }                                             \
    } while (0)
#define T(p) (side_ ? &(p).g : &(p).c)

/* A view built the same way on both sides. */
typedef vd_status (*view_fn)(const vd_tensor *t, const void *arg, vd_tensor *out);

static vd_status permute_view(const vd_tensor *t, const void *axes, vd_tensor *out)
{
    return vd_tensor_permute(t, axes, out);
}

static pair view_of(const pair *p, view_fn fn, const void *arg)
{
    pair v;
    if (fn(&p->c, arg, &v.c) != VD_OK || fn(&p->g, arg, &v.g) != VD_OK)
        die("building a view");
    return v;
}

static pair slice_of(const pair *p, int dim, int64_t b, int64_t e)
{
    pair v;
    if (vd_tensor_slice(&p->c, dim, b, e, &v.c) != VD_OK || vd_tensor_slice(&p->g, dim, b, e, &v.g) != VD_OK)
        die("slicing");
    return v;
}

static int64_t nelem_of(int ndim, const int64_t *s)
{
    int64_t n = 1;
    for (int i = 0; i < ndim; i++)
        n *= s[i];
    return n;
}

/* ---- elementwise ------------------------------------------------------------------- */

static void group_elementwise(void)
{
    static const char *names[3] = {"silu", "gelu_tanh", "gelu_erf"};
    vd_status (*fn[3])(vd_backend *, const vd_tensor *, vd_tensor *) = {vd_op_silu, vd_op_gelu_tanh, vd_op_gelu_erf};
    int64_t s1[1] = {1000003};
    pair x = pair_rand(100, 1, s1, -4, 4), y = pair_raw(VD_F32, 1, s1, NULL);
    for (int op = 0; op < 3; op++) {
        BOTH(fn[op](be, T(x), T(y)));
        char what[96];
        snprintf(what, sizeof what, "%s, 1000003 values", names[op]);
        compare(what, &y, F32_BOUND);
    }
    BOTH(vd_op_silu(be, T(x), T(x))); /* in place */
    compare("silu in place", &x, F32_BOUND);
    pair_free(&x), pair_free(&y);

    struct {
        int64_t M, R, D;
        vd_dtype bdt;
    } bc[] = {{4096, 1, 384, VD_F32}, {4096, 2, 384, VD_F32}, {4096, 4096, 384, VD_F32}, {96 * 37, 96, 1, VD_F32},
              {1000, 2, 250, VD_BF16}, {1000, 1, 250, VD_F16}};
    for (size_t i = 0; i < sizeof bc / sizeof bc[0]; i++) {
        int64_t sa[2] = {bc[i].M, bc[i].D}, sb[2] = {bc[i].R, bc[i].D};
        pair a = pair_rand(1 + i, 2, sa, -1, 1), yy = pair_rand(3 + i, 2, sa, -1, 1), o = pair_raw(VD_F32, 2, sa, NULL);
        float *hb = random_floats(2 + i, bc[i].R * bc[i].D, -1, 1);
        pair b = pair_conv(bc[i].bdt, 2, sb, hb);
        free(hb);
        char what[128];
        BOTH(vd_op_add(be, T(a), T(b), T(o)));
        snprintf(what, sizeof what, "add [%lld,%lld] + %s [%lld,%lld]", (long long)bc[i].M, (long long)bc[i].D,
                 vd_dtype_name(bc[i].bdt), (long long)bc[i].R, (long long)bc[i].D);
        compare(what, &o, F32_BOUND);
        BOTH(vd_op_mul(be, T(a), T(b), T(o)));
        snprintf(what, sizeof what, "mul [%lld,%lld] * %s [%lld,%lld]", (long long)bc[i].M, (long long)bc[i].D,
                 vd_dtype_name(bc[i].bdt), (long long)bc[i].R, (long long)bc[i].D);
        compare(what, &o, F32_BOUND);
        BOTH(vd_op_add_gated(be, T(a), T(yy), T(b), T(a))); /* in place */
        snprintf(what, sizeof what, "add_gated in place, gate %s [%lld,%lld]", vd_dtype_name(bc[i].bdt),
                 (long long)bc[i].R, (long long)bc[i].D);
        compare(what, &a, F32_BOUND);
        pair_free(&a), pair_free(&b), pair_free(&yy), pair_free(&o);
    }

    int64_t su[4] = {3, 4, 5, 7}, so[4] = {3, 4, 10, 14};
    pair u = pair_rand(40, 4, su, -2, 2), uo = pair_raw(VD_F32, 4, so, NULL);
    BOTH(vd_op_upsample2x(be, T(u), T(uo)));
    compare("upsample2x [3,4,5,7] -> [3,4,10,14]", &uo, 0.0);
    pair_free(&u), pair_free(&uo);
}

/* ---- copy and fill ---------------------------------------------------------------- */

static void group_copy_fill(void)
{
    char what[160];
    /* permuted 4-D source into a contiguous destination */
    int64_t s4[4] = {4, 5, 6, 7};
    int axes4[4] = {2, 0, 3, 1};
    int64_t d4[4] = {6, 4, 7, 5};
    pair src = pair_rand(10, 4, s4, -3, 3), dst = pair_raw(VD_F32, 4, d4, NULL);
    pair perm = view_of(&src, permute_view, axes4);
    BOTH(vd_op_copy(be, T(perm), T(dst)));
    compare("copy of a permuted [4,5,6,7] view (2,0,3,1)", &dst, 0.0);
    pair_free(&dst);

    /* contiguous source into a permuted destination */
    pair dst2 = pair_rand(11, 4, s4, -3, 3);
    pair src2 = pair_rand(12, 4, d4, -3, 3);
    pair dperm = view_of(&dst2, permute_view, axes4);
    BOTH(vd_op_copy(be, T(src2), T(dperm)));
    compare("copy into a permuted destination view", &dst2, 0.0);
    pair_free(&src2), pair_free(&dst2);

    /* into a slice (a concatenation target) */
    int64_t sc[3] = {8, 9, 10}, part[3] = {8, 4, 10};
    pair big = pair_rand(13, 3, sc, -1, 1), piece = pair_rand(14, 3, part, -1, 1);
    pair sl = slice_of(&big, 1, 3, 7);
    BOTH(vd_op_copy(be, T(piece), T(sl)));
    compare("copy into a slice [:, 3:7, :] of [8,9,10]", &big, 0.0);
    pair_free(&piece);

    /* 5-D permute of a slice */
    int64_t s5[5] = {2, 3, 4, 5, 6};
    int axes5[5] = {4, 2, 0, 3, 1};
    pair five = pair_rand(15, 5, s5, -1, 1);
    pair five_sl = slice_of(&five, 3, 1, 4); /* [2,3,4,3,6] */
    pair five_p = view_of(&five_sl, permute_view, axes5);
    int64_t d5[5] = {6, 4, 2, 3, 3};
    pair dst5 = pair_raw(VD_F32, 5, d5, NULL);
    BOTH(vd_op_copy(be, T(five_p), T(dst5)));
    compare("copy of a permuted slice of a 5-D tensor", &dst5, 0.0);
    pair_free(&five), pair_free(&dst5);

    /* dtype conversions to f32 (through a permute) and same-dtype copies */
    const vd_dtype dts[] = {VD_BF16, VD_F16, VD_F8_E4M3, VD_F8_E5M2, VD_F64, VD_I32, VD_I8, VD_U8, VD_I16, VD_I64,
                            VD_BOOL, VD_F32};
    int64_t s3[3] = {7, 11, 13}, d3[3] = {13, 7, 11};
    int axes3[3] = {2, 0, 1};
    for (size_t i = 0; i < sizeof dts / sizeof dts[0]; i++) {
        float *h = random_floats(20 + i, 7 * 11 * 13, dts[i] == VD_U8 ? 0 : -100, 100);
        if (dts[i] == VD_BF16 || dts[i] == VD_F16 || dts[i] == VD_F8_E4M3 || dts[i] == VD_F8_E5M2 || dts[i] == VD_F32)
            for (int k = 0; k < 7 * 11 * 13; k++)
                h[k] *= 0.05f;
        pair s = pair_conv(dts[i], 3, s3, h);
        float scale = (dts[i] == VD_F8_E4M3 || dts[i] == VD_F32) ? 0.37f : 1.0f;
        s.c.scale = s.g.scale = scale;
        pair sp = view_of(&s, permute_view, axes3);
        pair out = pair_raw(VD_F32, 3, d3, NULL);
        BOTH(vd_op_copy(be, T(sp), T(out)));
        snprintf(what, sizeof what, "copy %s (scale %g) -> f32 through a permute", vd_dtype_name(dts[i]),
                 (double)scale);
        compare(what, &out, 0.0);
        pair_free(&out);
        if (dts[i] != VD_F32) {
            /* same dtype, raw elements; compared after converting both to f32 */
            pair same = pair_raw(dts[i], 3, d3, NULL);
            BOTH(vd_op_copy(be, T(sp), T(same)));
            pair back = pair_raw(VD_F32, 3, d3, NULL);
            same.c.scale = same.g.scale = 1.0f;
            BOTH(vd_op_copy(be, T(same), T(back)));
            snprintf(what, sizeof what, "copy %s -> %s through a permute", vd_dtype_name(dts[i]), vd_dtype_name(dts[i]));
            compare(what, &back, 0.0);
            pair_free(&same), pair_free(&back);
        }
        pair_free(&s);
        free(h);
    }

    /* fill: contiguous, a slice, a permuted slice */
    pair f = pair_rand(30, 3, sc, -1, 1);
    BOTH(vd_op_fill(be, T(f), 0.5f));
    compare("fill of a contiguous [8,9,10]", &f, 0.0);
    pair fs = slice_of(&f, 2, 2, 7);
    BOTH(vd_op_fill(be, T(fs), -2.25f));
    compare("fill of a slice [:, :, 2:7]", &f, 0.0);
    int axes_f[3] = {1, 2, 0};
    pair fsl = slice_of(&f, 0, 1, 5);
    pair fp = view_of(&fsl, permute_view, axes_f);
    BOTH(vd_op_fill(be, T(fp), 3.0f));
    compare("fill of a permuted slice", &f, 0.0);
    pair_free(&f), pair_free(&big), pair_free(&src);
}

/* ---- norms and RoPE -------------------------------------------------------------------- */

static void group_norms(void)
{
    char what[200];
    /* layernorm_modulate: shift/scale [2, D] (cond/uncond), [M, D] per row; bf16 weight/bias; in place */
    const int64_t M = 300, D = 1000;
    int64_t sx[2] = {M, D}, s2[2] = {2, D}, sm[2] = {M, D}, s1[1] = {D};
    pair x = pair_rand(50, 2, sx, -3, 5), out = pair_raw(VD_F32, 2, sx, NULL);
    pair sh2 = pair_rand(51, 2, s2, -0.5f, 0.5f), scl2 = pair_rand(52, 2, s2, -0.5f, 0.5f);
    pair shm = pair_rand(53, 2, sm, -0.5f, 0.5f), sclm = pair_rand(54, 2, sm, -0.5f, 0.5f);
    float *hw = random_floats(55, D, 0.8f, 1.2f), *hb = random_floats(56, D, -0.1f, 0.1f);
    pair w = pair_conv(VD_BF16, 1, s1, hw), b = pair_conv(VD_BF16, 1, s1, hb), w32 = pair_f32(1, s1, hw);
    free(hw), free(hb);
    BOTH(vd_op_layernorm_modulate(be, T(x), 1e-6f, NULL, NULL, T(sh2), T(scl2), T(out)));
    compare("layernorm_modulate [300,1000], shift/scale [2,1000]", &out, F32_BOUND);
    BOTH(vd_op_layernorm_modulate(be, T(x), 1e-6f, NULL, NULL, T(shm), T(sclm), T(out)));
    compare("layernorm_modulate, per-row shift/scale [300,1000]", &out, F32_BOUND);
    BOTH(vd_op_layernorm_modulate(be, T(x), 1e-6f, T(w), T(b), NULL, NULL, T(out)));
    compare("layernorm with bf16 weight and bias", &out, F32_BOUND);
    BOTH(vd_op_layernorm_modulate(be, T(x), 1e-5f, T(w32), NULL, NULL, T(scl2), T(out)));
    compare("layernorm with weight, scale only", &out, F32_BOUND);
    pair xi = pair_rand(50, 2, sx, -3, 5);
    BOTH(vd_op_layernorm_modulate(be, T(xi), 1e-6f, NULL, NULL, T(sh2), T(scl2), T(xi)));
    compare("layernorm_modulate in place", &xi, F32_BOUND);
    /* a large mean: the variance must not cancel */
    float *hx = random_floats(57, M * D, 999.0f, 1001.0f);
    pair xm = pair_f32(2, sx, hx);
    free(hx);
    BOTH(vd_op_layernorm_modulate(be, T(xm), 1e-6f, NULL, NULL, NULL, NULL, T(out)));
    compare("layernorm of values 1000 +- 1", &out, 1e-4);
    pair_free(&xm);

    /* rmsnorm */
    BOTH(vd_op_rmsnorm(be, T(x), T(w), 1e-6f, T(out)));
    compare("rmsnorm [300,1000], bf16 weight", &out, F32_BOUND);
    BOTH(vd_op_rmsnorm(be, T(x), NULL, 1e-6f, T(out)));
    compare("rmsnorm without weight", &out, F32_BOUND);
    int64_t sq[2] = {77, 5120}, sqw[1] = {5120};
    pair q = pair_rand(58, 2, sq, -2, 2), qw = pair_rand(59, 1, sqw, 0.5f, 1.5f);
    BOTH(vd_op_rmsnorm(be, T(q), T(qw), 1e-6f, T(q)));
    compare("rmsnorm [77,5120] in place", &q, F32_BOUND);
    pair_free(&q), pair_free(&qw);

    /* channel_rmsnorm: x [C, T, H, W], reduction over the outermost axis */
    struct {
        int64_t C, T, H, W;
    } cs[] = {{96, 5, 7, 9}, {384, 1, 10, 10}, {3, 2, 1, 1}, {16, 1, 33, 65}};
    for (size_t i = 0; i < sizeof cs / sizeof cs[0]; i++) {
        int64_t s4[4] = {cs[i].C, cs[i].T, cs[i].H, cs[i].W}, sg[1] = {cs[i].C};
        pair cx = pair_rand(60 + i, 4, s4, -2, 2), co = pair_raw(VD_F32, 4, s4, NULL);
        float *hg = random_floats(70 + i, cs[i].C, 0.5f, 1.5f);
        pair g = pair_conv(i % 2 ? VD_BF16 : VD_F32, 1, sg, hg);
        free(hg);
        BOTH(vd_op_channel_rmsnorm(be, T(cx), T(g), T(co)));
        snprintf(what, sizeof what, "channel_rmsnorm [%lld,%lld,%lld,%lld] (gamma %s)", (long long)cs[i].C,
                 (long long)cs[i].T, (long long)cs[i].H, (long long)cs[i].W, vd_dtype_name(g.c.dtype));
        compare(what, &co, F32_BOUND);
        BOTH(vd_op_channel_rmsnorm(be, T(cx), T(g), T(cx)));
        snprintf(what, sizeof what, "channel_rmsnorm [%lld,...] in place", (long long)cs[i].C);
        compare(what, &cx, F32_BOUND);
        pair_free(&cx), pair_free(&co), pair_free(&g);
    }
    pair_free(&x), pair_free(&out), pair_free(&sh2), pair_free(&scl2), pair_free(&shm), pair_free(&sclm);
    pair_free(&w), pair_free(&b), pair_free(&w32), pair_free(&xi);
}

static void group_rope(void)
{
    struct {
        int64_t B, F, H, W, heads, d;
        double theta;
    } rc[] = {{2, 3, 5, 7, 3, 128, 10000.0}, {1, 1, 1, 1, 2, 128, 10000.0}, {1, 21, 30, 52, 1, 128, 10000.0},
              {2, 4, 3, 5, 2, 64, 10000.0},  {1, 3, 5, 7, 4, 10, 500.0},       {1, 2, 9, 11, 12, 16, 10000.0}};
    for (size_t i = 0; i < sizeof rc / sizeof rc[0]; i++) {
        int64_t M = rc[i].B * rc[i].F * rc[i].H * rc[i].W;
        int64_t s[3] = {M, rc[i].heads, rc[i].d};
        pair x = pair_rand(80 + i, 3, s, -2, 2), o = pair_raw(VD_F32, 3, s, NULL);
        BOTH(vd_op_rope3d(be, T(x), rc[i].F, rc[i].H, rc[i].W, rc[i].theta, T(o)));
        char what[160];
        snprintf(what, sizeof what, "rope3d B=%lld grid %lldx%lldx%lld, %lld heads x %lld (theta %g)",
                 (long long)rc[i].B, (long long)rc[i].F, (long long)rc[i].H, (long long)rc[i].W,
                 (long long)rc[i].heads, (long long)rc[i].d, rc[i].theta);
        compare(what, &o, F32_BOUND);
        BOTH(vd_op_rope3d(be, T(x), rc[i].F, rc[i].H, rc[i].W, rc[i].theta, T(x)));
        compare("  the same in place", &x, F32_BOUND);
        pair_free(&x), pair_free(&o);
    }
}

/* ---- get_rows --------------------------------------------------------------------------- */

static void group_get_rows(void)
{
    const vd_dtype dts[] = {VD_Q8_0, VD_F32, VD_BF16, VD_F16, VD_F8_E4M3, VD_Q4_K, VD_Q6_K};
    const int64_t rows = 100, D = 512;
    int32_t ids[37];
    for (int i = 0; i < 37; i++)
        ids[i] = (int32_t)((i * 53 + 7) % rows);
    ids[0] = 0;
    ids[36] = (int32_t)rows - 1;
    int64_t sid[1] = {37}, so[2] = {37, D}, st[2] = {rows, D};
    pair pid = pair_raw(VD_I32, 1, sid, ids);
    for (size_t i = 0; i < sizeof dts / sizeof dts[0]; i++) {
        float *h = random_floats(90 + i, rows * D, -1, 1);
        pair table = pair_conv(dts[i], 2, st, h);
        free(h);
        float scale = dts[i] == VD_F8_E4M3 ? 0.25f : 1.0f;
        table.c.scale = table.g.scale = scale;
        set_name(&table, "shared.weight");
        pair o = pair_raw(VD_F32, 2, so, NULL);
        BOTH(vd_op_get_rows(be, T(table), T(pid), T(o)));
        char what[128];
        snprintf(what, sizeof what, "get_rows: 37 of [100,512] %s (scale %g)", vd_dtype_name(dts[i]), (double)scale);
        compare(what, &o, 0.0);
        pair_free(&table), pair_free(&o);
    }
    pair_free(&pid);
}

/* ---- matmul --------------------------------------------------------------------------- */

/* y = x·wᵀ·scale + bias on both backends; w stored as `dtype`. */
static void check_matmul(vd_dtype dtype, float scale, int xdims, int64_t M, int64_t N, int64_t K, vd_dtype bias_dt,
                         uint64_t seed)
{
    int64_t sx[3] = {M, K, 0}, sy[3] = {M, N, 0}, sw[2] = {N, K}, sb[1] = {N};
    if (xdims == 3) { /* [3, M/3, K] */
        sx[0] = sy[0] = 3;
        sx[1] = M / 3, sx[2] = K;
        sy[1] = M / 3, sy[2] = N;
    }
    pair x = pair_rand(seed, xdims, sx, -1, 1), y = pair_raw(VD_F32, xdims, sy, NULL);
    float *hw = random_floats(seed + 1, N * K, -1, 1), *hb = random_floats(seed + 2, N, -1, 1);
    for (int64_t i = 0; i < N * K; i++)
        hw[i] /= sqrtf((float)K) / 1.7f;
    pair w = pair_conv(dtype, 2, sw, hw);
    w.c.scale = w.g.scale = scale;
    set_name(&w, "blocks.0.ffn.0.weight");
    pair b = bias_dt == VD_DTYPE_COUNT ? (pair){0} : pair_conv(bias_dt, 1, sb, hb);
    free(hw), free(hb);
    BOTH(vd_op_matmul(be, T(x), T(w), bias_dt == VD_DTYPE_COUNT ? NULL : T(b), T(y)));
    char what[200];
    snprintf(what, sizeof what, "matmul %s w (scale %g) [%lld,%lld,%lld]%s%s", vd_dtype_name(dtype), (double)scale,
             (long long)M, (long long)N, (long long)K, bias_dt == VD_DTYPE_COUNT ? ", no bias" : ", bias ",
             bias_dt == VD_DTYPE_COUNT ? "" : vd_dtype_name(bias_dt));
    compare(what, &y, BF16_BOUND);
    pair_free(&x), pair_free(&y), pair_free(&w);
    if (bias_dt != VD_DTYPE_COUNT)
        pair_free(&b);
}

static void group_matmul_dtypes(void)
{
    struct {
        vd_dtype dtype;
        float scale;
    } cases[] = {
        {VD_F32, 1.0f},     {VD_F16, 1.0f},  {VD_BF16, 1.0f}, {VD_F8_E4M3, 0.0173f}, {VD_F8_E4M3, 1.0f},
        {VD_F8_E5M2, 2.5f}, {VD_Q8_0, 1.0f}, {VD_Q4_0, 1.0f}, {VD_Q4_1, 1.0f},       {VD_Q5_0, 1.0f},
        {VD_Q5_1, 1.0f},    {VD_Q2_K, 1.0f}, {VD_Q3_K, 1.0f}, {VD_Q4_K, 1.0f},       {VD_Q5_K, 1.0f},
        {VD_Q6_K, 1.0f},    {VD_BF16, 0.5f},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        check_matmul(cases[i].dtype, cases[i].scale, 2, 37, 41, 512, VD_BF16, 1000 + 10 * i);
    const vd_dtype big[] = {VD_F32, VD_BF16, VD_F8_E4M3, VD_Q8_0, VD_Q4_K};
    for (size_t i = 0; i < sizeof big / sizeof big[0]; i++)
        check_matmul(big[i], big[i] == VD_F8_E4M3 ? 0.5f : 1.0f, 2, 515, 260, 2048, VD_F32, 2000 + 10 * i);
}

static void group_matmul_shapes(void)
{
    check_matmul(VD_BF16, 1.0f, 3, 3 * 7, 17, 33, VD_F32, 3000);  /* odd K: unaligned bf16 rows */
    check_matmul(VD_F32, 1.0f, 3, 3 * 7, 17, 33, VD_F32, 3010);
    check_matmul(VD_BF16, 1.0f, 2, 1, 5120, 5120, VD_F32, 3020);  /* one row */
    check_matmul(VD_F32, 1.0f, 2, 1, 256, 256, VD_DTYPE_COUNT, 3030);
    check_matmul(VD_BF16, 1.0f, 2, 1560, 1536, 1536, VD_F32, 3040); /* the 1.3B's width */
    check_matmul(VD_Q8_0, 1.0f, 2, 64, 4200, 8192, VD_F32, 3050);   /* weight > one default tile */
    check_matmul(VD_F16, 1.0f, 2, 512, 13, 64, VD_DTYPE_COUNT, 3060);
    check_matmul(VD_F32, 1.0f, 2, 20, 7, 3, VD_F32, 3070);           /* K = 3 */
}

/* Run under VD_CUDA_SCRATCH_LIMIT=262144: several x chunks and weight tiles. */
static void group_matmul_tiled(void)
{
    check_matmul(VD_BF16, 1.0f, 2, 700, 600, 512, VD_F32, 4000);
    check_matmul(VD_Q4_K, 1.0f, 2, 700, 600, 512, VD_BF16, 4010);
    check_matmul(VD_F32, 0.5f, 2, 700, 600, 512, VD_DTYPE_COUNT, 4020);
    check_matmul(VD_F8_E4M3, 0.02f, 3, 3 * 300, 333, 256, VD_F32, 4030);
}

/* ---- fp8 GEMMs ------------------------------------------------------------------------- */

/* fp8 e4m3 weights times activations rounded to e4m3 (one scale per row on
 * sm_90, one per chunk elsewhere or under VD_FP8_GEMM=tensor), against the
 * CPU's exact product of the dequantised weights.  e4m3 keeps 3 mantissa
 * bits, so each activation's rounding error is uniform within half a step
 * (1/16 of its binade); over K independent terms this gives the product a
 * relative L2 error of 2.4-2.6e-2 (simulated in double precision for K =
 * 1536..13824 and uniform, Gaussian, row-scaled and outlier-channel
 * activations, per row and per tensor alike: e4m3's 2^15 normal range
 * covers them all), about 1.8e-2 with these tests' bias.  The bound leaves
 * a factor ~2.3 for the tensor cores' accumulation and the bias rounded to
 * bf16 by the epilogue. */
static const double FP8_BOUND = 6e-2;
/* The bf16 path's error here is ~1.5e-3 (e4m3 weights are exact in bf16),
 * the fp8 path's ~2e-2: an fp8 result this far from the bf16 one proves
 * that the fp8 path ran. */
static const double FP8_MIN_DIFF = 5e-3;

/* Compute capability as major·10 + minor (0 without CUDA). */
static int gpu_cc(void)
{
    int major = 0, minor = 0;
#if VD_HAVE_CUDA
    if (cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, 0) != cudaSuccess ||
        cudaDeviceGetAttribute(&minor, cudaDevAttrComputeCapabilityMinor, 0) != cudaSuccess)
        major = minor = 0;
#endif
    return major * 10 + minor;
}

/* cuda:0 with the fp8_gemm option, and VD_FP8_GEMM set to env (NULL:
 * unset) while it opens. */
static vd_backend *open_gpu_fp8(int fp8_gemm, const char *env)
{
    vd_backend_options o = {.threads = 2, .fp8_gemm = fp8_gemm};
    if (env)
        setenv("VD_FP8_GEMM", env, 1);
    else
        unsetenv("VD_FP8_GEMM");
    vd_backend *be = NULL;
    vd_status st = vd_backend_open("cuda:0", &o, &be);
    unsetenv("VD_FP8_GEMM");
    if (st != VD_OK)
        die("opening cuda:0 for the fp8 GEMMs");
    return be;
}

/* What the fp8 backend must do with a case. */
typedef enum fp8_expect {
    FP8_RUNS,     /* the fp8 path: within FP8_BOUND of the CPU, visibly not the bf16 result */
    FP8_DECLINES, /* exactly the bf16 path's result */
    FP8_EITHER,   /* one of the two (cuBLASLt may have no fp8 algorithm for the shape) */
} fp8_expect;

typedef struct fp8_case {
    int64_t M, N, K;
    vd_dtype bias_dt;  /* VD_DTYPE_COUNT: no bias */
    fp8_expect expect; /* on a GPU with fp8 GEMMs (declines everywhere else) */
    bool big;          /* only in the main group (the CPU reference takes seconds) */
} fp8_case;

static const fp8_case fp8_cases[] = {
    {300, 1536, 1536, VD_F32, FP8_RUNS, false},
    {1560, 8960, 1536, VD_DTYPE_COUNT, FP8_RUNS, false}, /* the 1.3B's ffn.0 */
    {1024, 1536, 8960, VD_BF16, FP8_RUNS, false},        /* its ffn.2 */
    {1, 1536, 1536, VD_F32, FP8_EITHER, false},          /* one row */
    {4096, 5120, 5120, VD_F32, FP8_RUNS, true},          /* the 14B's attention projections */
    {777, 13824, 5120, VD_DTYPE_COUNT, FP8_RUNS, true},  /* its ffn.0; rows not a multiple of 16 */
    {513, 5120, 13824, VD_F32, FP8_RUNS, true},          /* its ffn.2 */
    {300, 1000, 1536, VD_F32, FP8_DECLINES, false},      /* N % 16 != 0 */
    {77, 256, 1000, VD_DTYPE_COUNT, FP8_DECLINES, false}, /* K % 16 != 0 */
};

/* y on the CPU, on the default GPU backend (the bf16 path, which must stay
 * within BF16_BOUND) and on be8, checked as `expect` says. */
static void check_matmul_fp8(vd_backend *be8, const char *label, const fp8_case *fc, fp8_expect expect,
                             uint64_t seed)
{
    const int64_t M = fc->M, N = fc->N, K = fc->K, n = M * N;
    int64_t sx[2] = {M, K}, sy[2] = {M, N}, sw[2] = {N, K}, sb[1] = {N};
    pair x = pair_rand(seed, 2, sx, -1, 1), y = pair_raw(VD_F32, 2, sy, NULL);
    /* an fp8-scaled checkpoint's weight: e4m3 values over the format's
     * range and a per-tensor scale */
    float *hw = random_floats(seed + 1, N * K, -448, 448);
    pair w = pair_conv(VD_F8_E4M3, 2, sw, hw);
    free(hw);
    w.c.scale = w.g.scale = 1.7f / (448.0f * sqrtf((float)K));
    set_name(&w, "blocks.0.ffn.0.weight");
    const bool has_bias = fc->bias_dt != VD_DTYPE_COUNT;
    pair b = {0};
    if (has_bias) {
        float *hb = random_floats(seed + 2, N, -1, 1);
        b = pair_conv(fc->bias_dt, 1, sb, hb);
        free(hb);
    }
    BOTH(vd_op_matmul(be, T(x), T(w), has_bias ? T(b) : NULL, T(y)));
    /* be8 reads the default backend's device tensors (same GPU; every op
     * synchronises under VD_CUDA_SYNC, and be8 is synchronised below) */
    vd_tensor y8;
    if (vd_tensor_alloc(be8, VD_F32, 2, sy, &y8) != VD_OK)
        die("allocating the fp8 result");
    CHECK_OK(vd_op_matmul(be8, &x.g, &w.g, has_bias ? &b.g : NULL, &y8));
    CHECK_OK(vd_backend_synchronize(be8));
    float *ref = download(cpu, &y.c), *r16 = download(gpu, &y.g), *r8 = download(be8, &y8);

    char what[200];
    snprintf(what, sizeof what, "%s [%lld,%lld,%lld]%s%s", label, (long long)M, (long long)N, (long long)K,
             has_bias ? ", bias " : ", no bias", has_bias ? vd_dtype_name(fc->bias_dt) : "");
    const bool same = memcmp(r8, r16, (size_t)n * sizeof *r8) == 0;
    if (expect == FP8_EITHER)
        expect = same ? FP8_DECLINES : FP8_RUNS;
    if (expect == FP8_RUNS) {
        double e8 = rel_l2(r8, ref, n), d = rel_l2(r8, r16, n);
        report(what, isnan(e8) ? INFINITY : e8, FP8_BOUND, max_abs_diff(r8, ref, n));
        const bool ran = d >= FP8_MIN_DIFF;
        printf("    %.2e from the bf16 result%s\n", d, ran ? " (the fp8 path ran)" : ": the fp8 path did not run  FAIL");
        if (!ran)
            test_failures++;
    } else {
        char w2[260];
        snprintf(w2, sizeof w2, "%s declined: == bf16 path", what);
        report(w2, same ? 0.0 : fmax(rel_l2(r8, r16, n), 1e-30), 0.0, max_abs_diff(r8, r16, n));
    }
    const double e16 = rel_l2(r16, ref, n);
    report("    the bf16 path (fp8_gemm off) vs the CPU", isnan(e16) ? INFINITY : e16, BF16_BOUND,
           max_abs_diff(r16, ref, n));
    free(ref), free(r16), free(r8);
    vd_tensor_release(&y8);
    pair_free(&x), pair_free(&y), pair_free(&w);
    if (has_bias)
        pair_free(&b);
}

/* The cases on a backend opened with fp8_gemm = 1 and VD_FP8_GEMM = env. */
static void fp8_cases_on(const char *env, bool include_big)
{
    const int cc = gpu_cc();
    const bool has_fp8 = cc >= 89;
    if (!has_fp8)
        printf("  sm_%d has no fp8 GEMMs (8.9+): the fp8 numerics are skipped; every case must decline\n", cc);
    vd_backend *be8 = open_gpu_fp8(1, env);
    for (size_t i = 0; i < sizeof fp8_cases / sizeof fp8_cases[0]; i++)
        if (include_big || !fp8_cases[i].big)
            check_matmul_fp8(be8, "matmul fp8", &fp8_cases[i], has_fp8 ? fp8_cases[i].expect : FP8_DECLINES,
                             9000 + 10 * i);
    vd_backend_close(be8);
}

/* fp8_gemm = 1 (the option), with the scaling the GPU picks; then the
 * environment's override both ways. */
static void group_matmul_fp8(void)
{
    fp8_cases_on(NULL, true);
    const bool has_fp8 = gpu_cc() >= 89;
    vd_backend *on = open_gpu_fp8(0, "1"), *off = open_gpu_fp8(1, "0");
    check_matmul_fp8(on, "option 0, VD_FP8_GEMM=1:", &fp8_cases[0], has_fp8 ? FP8_RUNS : FP8_DECLINES, 9500);
    check_matmul_fp8(off, "option 1, VD_FP8_GEMM=0:", &fp8_cases[0], FP8_DECLINES, 9510);
    vd_backend_close(on);
    vd_backend_close(off);
}

/* One activation scale per chunk (the sm_89 / sm_100 path), on any GPU. */
static void group_matmul_fp8_tensor(void) { fp8_cases_on("tensor", false); }

/* Run under VD_CUDA_SCRATCH_LIMIT=262144: several x chunks (a smaller last
 * one), per row and per tensor. */
static void group_matmul_fp8_tiled(void)
{
    fp8_cases_on(NULL, false);
    fp8_cases_on("tensor", false);
}

/* ---- attention ------------------------------------------------------------------------ */

typedef struct attn_case {
    int64_t B, Lq, Lk, H, d, dv;
    bool bias, kv_len;
} attn_case;

static void check_attention(const attn_case *a, double bound, uint64_t seed)
{
    int64_t sq[4] = {a->B, a->Lq, a->H, a->d}, sk[4] = {a->B, a->Lk, a->H, a->d}, sv[4] = {a->B, a->Lk, a->H, a->dv};
    int64_t so[4] = {a->B, a->Lq, a->H, a->dv}, sb[3] = {a->H, a->Lq, a->Lk};
    /* unit-variance q and k: scores of standard deviation about 1, as after
     * the DiT's RMSNorm */
    pair q = pair_rand(seed, 4, sq, -1.7320508f, 1.7320508f), k = pair_rand(seed + 1, 4, sk, -1.7320508f, 1.7320508f);
    pair v = pair_rand(seed + 2, 4, sv, -1, 1), o = pair_raw(VD_F32, 4, so, NULL);
    set_name(&q, "blocks.0.self_attn.q");
    pair bias = a->bias ? pair_rand(seed + 3, 3, sb, -2, 2) : (pair){0};
    int32_t *kv = NULL;
    if (a->kv_len) {
        kv = malloc((size_t)a->B * sizeof *kv);
        for (int64_t b = 0; b < a->B; b++)
            kv[b] = (int32_t)(b == 0 ? a->Lk : (a->Lk * 2) / 5 + 1);
    }
    float scale = 1.0f / sqrtf((float)a->d);
    BOTH(vd_op_attention(be, T(q), T(k), T(v), scale, a->bias ? T(bias) : NULL, kv, T(o)));
    char what[200];
    snprintf(what, sizeof what, "attention B=%lld Lq=%lld Lk=%lld H=%lld d=%lld dv=%lld%s%s", (long long)a->B,
             (long long)a->Lq, (long long)a->Lk, (long long)a->H, (long long)a->d, (long long)a->dv,
             a->bias ? " +bias" : "", a->kv_len ? " +kv_len" : "");
    compare(what, &o, bound);
    pair_free(&q), pair_free(&k), pair_free(&v), pair_free(&o);
    if (a->bias)
        pair_free(&bias);
    free(kv);
}

/* Head sizes 64 and 128: the fa2 kernel by default (the old tensor-core
 * kernel under VD_CUDA_ATTENTION=mma). */
static const attn_case tc_cases[] = {
    {2, 300, 257, 3, 64, 64, true, true},      /* d=64 with bias and kv_len */
    {2, 1000, 1000, 2, 128, 128, false, false}, /* d=128 self-attention */
    {1, 77, 512, 4, 128, 128, false, false},    /* cross-attention, Lq != Lk */
    {2, 130, 65, 2, 128, 128, true, true},      /* partial query and key tiles */
    {1, 1, 1, 1, 64, 64, false, false},
    {1, 5, 700, 2, 64, 64, false, true},
};

/* More tile edges for the fa2 kernel: its query blocks are 64 or 128, its
 * key tiles 32..128, key counts past a tile by one or short of one. */
static const attn_case fa2_cases[] = {
    {2, 300, 257, 3, 128, 128, false, false},
    {2, 300, 257, 3, 128, 128, true, true},
    {2, 300, 257, 3, 64, 64, false, false},
    {2, 77, 512, 3, 128, 128, false, true},  /* 512 keys: whole tiles only */
    {3, 130, 65, 2, 64, 64, true, true},
    {2, 70, 383, 1, 128, 128, false, true},  /* 383: one key short of a tile */
    {2, 64, 383, 2, 64, 64, true, false},
    {17, 20, 10, 2, 64, 64, false, true},    /* more batches than one launch carries (16) */
    {2, 1000, 1000, 4, 64, 64, false, false}, /* L=1000, d=64 */
    {1, 256, 128, 2, 128, 128, false, false}, /* whole query and key tiles */
};

/* Wan-like sizes (the 1.3B's 12 heads). */
static const attn_case large_cases[] = {
    {1, 4096, 4096, 12, 128, 128, false, false},
    {2, 2000, 2000, 4, 64, 64, false, false},
};

static const attn_case f32_cases[] = {
    {1, 500, 500, 1, 384, 384, false, false}, /* the VAE's single head */
    {1, 60, 60, 1, 32, 32, false, false},     /* the tiny VAE */
    {1, 40, 37, 4, 16, 16, true, true},       /* umT5-like: bias and kv_len */
    {2, 33, 70, 3, 64, 32, true, true},       /* dv != d */
    {1, 17, 45, 2, 512, 512, false, false},   /* the largest head */
    {1, 10, 20, 3, 24, 40, false, false},
};

#define N_OF(a) (sizeof(a) / sizeof((a)[0]))

static void attention_cases(const attn_case *cases, size_t n, double bound, uint64_t seed)
{
    for (size_t i = 0; i < n; i++)
        check_attention(&cases[i], bound, seed + 10 * i);
}

/* Run under VD_CUDA_ATTENTION=fa2 (no fallback): every d ∈ {64, 128} case
 * through the fa2 kernel, the rest through the fp32 kernel. */
static void group_attention(void)
{
    attention_cases(tc_cases, N_OF(tc_cases), BF16_BOUND, 5000);
    attention_cases(fa2_cases, N_OF(fa2_cases), BF16_BOUND, 7000);
    attention_cases(large_cases, N_OF(large_cases), BF16_BOUND, 8000);
    attention_cases(f32_cases, N_OF(f32_cases), F32_BOUND, 6000);
}

/* The fa2 variants, head passes and the old kernel: the d ∈ {64, 128} cases. */
static void group_attention_tc(void)
{
    attention_cases(tc_cases, N_OF(tc_cases), BF16_BOUND, 5000);
    attention_cases(fa2_cases, N_OF(fa2_cases), BF16_BOUND, 7000);
}

/* Every fa2 variant on a few small shapes (VD_CUDA_ATTENTION=fa2): quick
 * enough for compute-sanitizer's memcheck, racecheck and synccheck. */
static void group_attention_fa2_small(void)
{
    static const attn_case small[] = {
        {2, 130, 65, 2, 128, 128, true, true},
        {2, 70, 129, 1, 128, 128, false, true},
        {2, 65, 130, 2, 64, 64, true, true},
        {1, 1, 1, 1, 64, 64, false, false},
    };
    char v[8];
    for (int variant = 0; variant < VD_CUDA_FA2_VARIANTS; variant++) {
        snprintf(v, sizeof v, "%d", variant);
        setenv("VD_CUDA_FA2_VARIANT", v, 1); /* read at each call */
        printf("  variant %d\n", variant);
        attention_cases(small, N_OF(small), BF16_BOUND, 9000 + 100 * variant);
    }
    unsetenv("VD_CUDA_FA2_VARIANT");
}

/* Run under VD_CUDA_ATTENTION=f32: every case through the fp32 kernel. */
static void group_attention_f32(void)
{
    attention_cases(tc_cases, N_OF(tc_cases), F32_BOUND, 5000);
}

/* ---- conv3d -------------------------------------------------------------------------------- */

typedef struct conv_case {
    int64_t Cin, T, H, W, Cout, kt, kh, kw;
    int stride[3], pad[6];
    vd_dtype wdt;
    float wscale;
    bool bias;
} conv_case;

static void check_conv(const conv_case *c, uint64_t seed)
{
    int64_t sx[4] = {c->Cin, c->T, c->H, c->W}, sw[5] = {c->Cout, c->Cin, c->kt, c->kh, c->kw}, sb[1] = {c->Cout};
    int64_t so[4] = {c->Cout, (c->T + c->pad[0] + c->pad[1] - c->kt) / c->stride[0] + 1,
                     (c->H + c->pad[2] + c->pad[3] - c->kh) / c->stride[1] + 1,
                     (c->W + c->pad[4] + c->pad[5] - c->kw) / c->stride[2] + 1};
    pair x = pair_rand(seed, 4, sx, -1, 1), o = pair_raw(VD_F32, 4, so, NULL);
    float *hw = random_floats(seed + 1, nelem_of(5, sw), -0.2f, 0.2f);
    pair w = pair_conv(c->wdt, 5, sw, hw);
    free(hw);
    w.c.scale = w.g.scale = c->wscale;
    set_name(&w, "decoder.middle.0.residual.2.weight");
    pair b = c->bias ? pair_rand(seed + 2, 1, sb, -0.5f, 0.5f) : (pair){0};
    BOTH(vd_op_conv3d(be, T(x), T(w), c->bias ? T(b) : NULL, c->stride, c->pad, T(o)));
    char what[220];
    snprintf(what, sizeof what, "conv3d x[%lld,%lld,%lld,%lld] w %s[%lld,%lld,%lld,%lld,%lld] s{%d,%d,%d} p{%d,%d,%d,%d,%d,%d}",
             (long long)c->Cin, (long long)c->T, (long long)c->H, (long long)c->W, vd_dtype_name(c->wdt),
             (long long)c->Cout, (long long)c->Cin, (long long)c->kt, (long long)c->kh, (long long)c->kw,
             c->stride[0], c->stride[1], c->stride[2], c->pad[0], c->pad[1], c->pad[2], c->pad[3], c->pad[4],
             c->pad[5]);
    compare(what, &o, F32_BOUND);
    pair_free(&x), pair_free(&o), pair_free(&w);
    if (c->bias)
        pair_free(&b);
}

static const conv_case conv_cases[] = {
    {8, 3, 10, 12, 16, 3, 3, 3, {1, 1, 1}, {2, 0, 1, 1, 1, 1}, VD_F32, 1.0f, true},   /* causal k=3 */
    {32, 2, 6, 5, 24, 1, 1, 1, {1, 1, 1}, {0, 0, 0, 0, 0, 0}, VD_F32, 1.0f, true},    /* k=1 (no im2col) */
    {4, 1, 11, 13, 6, 1, 3, 3, {1, 2, 2}, {0, 0, 0, 1, 0, 1}, VD_F32, 1.0f, true},    /* stride 2, pad right/bottom */
    {5, 5, 4, 4, 7, 3, 1, 1, {2, 1, 1}, {2, 0, 0, 0, 0, 0}, VD_F32, 1.0f, false},     /* time stride 2 */
    {3, 2, 9, 8, 4, 2, 3, 2, {1, 1, 1}, {1, 0, 2, 0, 0, 1}, VD_F32, 1.0f, true},      /* asymmetric everything */
    {16, 3, 8, 8, 8, 3, 3, 3, {1, 1, 1}, {2, 0, 1, 1, 1, 1}, VD_BF16, 0.5f, true},    /* bf16 weights, scale */
    {16, 1, 8, 8, 8, 1, 3, 3, {1, 1, 1}, {0, 0, 1, 1, 1, 1}, VD_F16, 1.0f, true},     /* f16 weights */
    {16, 2, 4, 4, 16, 1, 1, 1, {1, 1, 1}, {0, 0, 0, 0, 0, 0}, VD_BF16, 2.0f, false},  /* k=1, bf16, scale */
    {96, 3, 20, 24, 96, 3, 3, 3, {1, 1, 1}, {2, 0, 1, 1, 1, 1}, VD_F32, 1.0f, true},  /* VAE-like width */
};

static void group_conv3d(void)
{
    for (size_t i = 0; i < sizeof conv_cases / sizeof conv_cases[0]; i++)
        check_conv(&conv_cases[i], 7000 + 10 * i);
}

/* ---- memory, pinned host, errors --------------------------------------------------------------- */

static void group_memory(void)
{
    vd_buffer *buf = NULL;
    CHECK_FAILS(vd_buffer_alloc(gpu, (size_t)1e15, &buf), VD_ERR_OUT_OF_MEMORY);
    printf("  1e15 bytes -> %s\n", vd_last_error());
    vd_tensor huge;
    int64_t hs[2] = {1000000, 1000000};
    CHECK_FAILS(vd_tensor_alloc(gpu, VD_F32, 2, hs, &huge), VD_ERR_OUT_OF_MEMORY);
    printf("  a [1e6, 1e6] tensor -> %s\n", vd_last_error());
    /* the backend is still usable */
    int64_t s1[1] = {100000};
    pair x = pair_rand(8000, 1, s1, -3, 3), y = pair_raw(VD_F32, 1, s1, NULL);
    BOTH(vd_op_gelu_erf(be, T(x), T(y)));
    compare("gelu_erf after the failed allocations", &y, F32_BOUND);
    pair_free(&x), pair_free(&y);

    /* the cache: a freed block comes back for the same size */
    vd_tensor a, b;
    int64_t s2[2] = {512, 1024};
    CHECK_OK(vd_tensor_alloc(gpu, VD_F32, 2, s2, &a));
    void *first = a.data;
    vd_tensor_release(&a);
    vd_cuda_memory_stats ms;
    CHECK_OK(vd_backend_cuda_memory(gpu, &ms));
    CHECKF(ms.cached_bytes >= 512 * 1024 * 4, "cached %zu bytes after a free", ms.cached_bytes);
    CHECK_OK(vd_tensor_alloc(gpu, VD_F32, 2, s2, &b));
    CHECKF(b.data == first, "the same size did not reuse the cached block");
    vd_tensor_release(&b);
    CHECK_OK(vd_backend_cuda_release_cached(gpu));
    CHECK_OK(vd_backend_cuda_memory(gpu, &ms));
    CHECKF(ms.cached_bytes == 0, "%zu bytes still cached after release", ms.cached_bytes);
    printf("  allocator: live %zu, peak %zu bytes; device %zu of %zu bytes free\n", ms.live_bytes, ms.peak_bytes,
           ms.device_free_bytes, ms.device_total_bytes);

    /* a sampling-loop pattern: same shapes every step */
    for (int step = 0; step < 5; step++) {
        vd_tensor t[8];
        for (int i = 0; i < 8; i++) {
            int64_t s[1] = {1000 * (i + 1) + 3};
            CHECK_OK(vd_tensor_alloc(gpu, VD_F32, 1, s, &t[i]));
        }
        for (int i = 0; i < 8; i++)
            vd_tensor_release(&t[i]);
    }
    vd_cuda_memory_stats ms2;
    CHECK_OK(vd_backend_cuda_memory(gpu, &ms2));
    CHECKF(ms2.live_bytes == ms.live_bytes, "live bytes %zu after the loop, %zu before", ms2.live_bytes,
           ms.live_bytes);

    /* pinned host memory */
    const size_t n = 4 << 20;
    float *pin_in = NULL, *pin_out = NULL;
    CHECK_OK(vd_backend_cuda_host_alloc(n * sizeof(float), (void **)&pin_in));
    CHECK_OK(vd_backend_cuda_host_alloc(n * sizeof(float), (void **)&pin_out));
    if (pin_in && pin_out) {
        for (size_t i = 0; i < n; i++)
            pin_in[i] = (float)i * 0.5f;
        vd_tensor t;
        int64_t s[1] = {(int64_t)n};
        CHECK_OK(vd_tensor_alloc(gpu, VD_F32, 1, s, &t));
        CHECK_OK(vd_tensor_upload(gpu, &t, pin_in, n * sizeof(float)));
        CHECK_OK(vd_tensor_download(gpu, &t, pin_out, n * sizeof(float)));
        CHECK(memcmp(pin_in, pin_out, n * sizeof(float)) == 0);
        printf("  pinned host round trip of %zu MiB: %s\n", n * sizeof(float) >> 20,
               memcmp(pin_in, pin_out, n * sizeof(float)) == 0 ? "ok" : "FAIL");
        vd_tensor_release(&t);
    }
    vd_backend_cuda_host_free(pin_in);
    vd_backend_cuda_host_free(pin_out);
    void *none = (void *)1;
    CHECK_OK(vd_backend_cuda_host_alloc(0, &none));
    CHECK(none == NULL);
}

static void group_errors(void)
{
    /* a head size past the shared memory names the tensor */
    int64_t sq[4] = {1, 4, 1, 1024};
    pair q = pair_rand(9000, 4, sq, -1, 1), o = pair_raw(VD_F32, 4, sq, NULL);
    set_name(&q, "decoder.middle.1.q");
    vd_status s = vd_op_attention(gpu, &q.g, &q.g, &q.g, 0.03f, NULL, NULL, &o.g);
    CHECKF(s == VD_ERR_UNSUPPORTED && strstr(vd_last_error(), "decoder.middle.1.q"),
           "attention d=1024: %s: %s", vd_status_name(s), vd_last_error());
    printf("  attention d=1024 -> %s: %s\n", vd_status_name(s), vd_last_error());
    pair_free(&q), pair_free(&o);

    /* an id outside the table */
    int64_t st[2] = {10, 64}, sid[1] = {3}, so[2] = {3, 64};
    int32_t ids[3] = {1, 10, 2};
    pair table = pair_rand(9010, 2, st, -1, 1), pid = pair_raw(VD_I32, 1, sid, ids), out = pair_raw(VD_F32, 2, so, NULL);
    set_name(&table, "shared.weight");
    CHECK_FAILS(vd_op_get_rows(gpu, &table.g, &pid.g, &out.g), VD_ERR_INVALID_ARGUMENT);
    CHECKF(strstr(vd_last_error(), "shared.weight") != NULL, "message: %s", vd_last_error());
    printf("  get_rows id 10 of 10 rows -> %s\n", vd_last_error());
    pair_free(&table), pair_free(&pid), pair_free(&out);

    /* and the backend still works */
    int64_t s1[1] = {4096};
    pair x = pair_rand(9020, 1, s1, -1, 1), y = pair_raw(VD_F32, 1, s1, NULL);
    BOTH(vd_op_silu(be, T(x), T(y)));
    compare("silu after the errors", &y, F32_BOUND);
    pair_free(&x), pair_free(&y);

    /* an ordinal past the machine's GPUs is a clear error, not a crash */
    vd_backend *bad = NULL;
    vd_backend_options o2 = {.threads = 2};
    CHECK_FAILS(vd_backend_open("cuda:63", &o2, &bad), VD_ERR_DEVICE);
    printf("  cuda:63 -> %s\n", vd_last_error());
}

/* ---- golden models ------------------------------------------------------------------------------ */

static vd_weights *open_golden(const char *name)
{
    char path[512];
    snprintf(path, sizeof path, GOLDEN "%s.safetensors", name);
    vd_weights *w = NULL;
    if (vd_weights_open(path, &w) != VD_OK)
        die(path);
    return w;
}

/* A golden tensor as host f32 (malloc'd); its shape in shape[0..ndim). */
static float *golden_f32(const vd_weights *w, const char *name, int64_t *shape, int *ndim)
{
    const vd_weight *x = vd_weights_find(w, name);
    if (!x) {
        fprintf(stderr, "golden tensor '%s' is missing from %s\n", name, vd_weights_path(w));
        fflush(NULL);
        _exit(1);
    }
    int64_t n = vd_tensor_nelem(&x->tensor);
    float *h = malloc((size_t)(n ? n : 1) * sizeof *h);
    if (!h || vd_dtype_to_f32(x->tensor.dtype, x->tensor.data, h, n) != VD_OK)
        die(name);
    if (shape)
        for (int i = 0; i < x->tensor.ndim; i++)
            shape[i] = x->tensor.shape[i];
    if (ndim)
        *ndim = x->tensor.ndim;
    return h;
}

static void compare_golden(const char *what, const float *got, const float *ref, int64_t n, double bound)
{
    double e = rel_l2(got, ref, n);
    if (isnan(e))
        e = INFINITY;
    report(what, e, bound, max_abs_diff(got, ref, n));
}

static void dit_case(const char *model, int case_no)
{
    char in_name[64], out_name[64], what[160];
    snprintf(in_name, sizeof in_name, "dit_case%d_in", case_no);
    snprintf(out_name, sizeof out_name, "dit_case%d_out", case_no);
    vd_weights *mw = open_golden(model), *in = open_golden(in_name), *gold = open_golden(out_name);
    int64_t ls[5], cs[5], vs[5];
    float *latent = golden_f32(in, "latent", ls, NULL), *ts = golden_f32(in, "timestep", NULL, NULL);
    float *ctx = golden_f32(in, "context", cs, NULL), *ref = golden_f32(gold, "velocity", vs, NULL);
    int64_t nout = vs[0] * vs[1] * vs[2] * vs[3];
    float *vel = calloc((size_t)nout, sizeof *vel);
    vd_dit *dit = NULL;
    vd_tensor text = {0};
    vd_status st = vd_dit_load(gpu, mw, &dit);
    if (st == VD_OK)
        st = vd_dit_embed_text(dit, ctx, cs[0], &text);
    if (st == VD_OK) {
        vd_dit_call call = {.batch = 1, .frames = ls[1], .height = ls[2], .width = ls[3], .latent = latent,
                            .text = {&text, NULL}, .timestep = ts[0], .velocity = vel};
        st = vd_dit_forward(dit, &call);
    }
    snprintf(what, sizeof what, "DiT %s case %d on the GPU vs the golden velocity", model, case_no);
    if (st != VD_OK) {
        fprintf(stderr, "%s: %s: %s\n", what, vd_status_name(st), vd_last_error());
        test_failures++;
    } else {
        compare_golden(what, vel, ref, nout, 2e-2);
    }
    /* batch of two (cond, uncond as one batch), the same text twice */
    if (st == VD_OK) {
        float *lat2 = malloc((size_t)(2 * ls[0] * ls[1] * ls[2] * ls[3]) * sizeof *lat2);
        float *vel2 = calloc((size_t)(2 * nout), sizeof *vel2);
        int64_t nl = ls[0] * ls[1] * ls[2] * ls[3];
        memcpy(lat2, latent, (size_t)nl * sizeof *lat2);
        memcpy(lat2 + nl, latent, (size_t)nl * sizeof *lat2);
        vd_dit_call call = {.batch = 2, .frames = ls[1], .height = ls[2], .width = ls[3], .latent = lat2,
                            .text = {&text, &text}, .timestep = ts[0], .velocity = vel2};
        st = vd_dit_forward(dit, &call);
        snprintf(what, sizeof what, "  the same as a batch of 2 (both halves)");
        if (st != VD_OK) {
            fprintf(stderr, "%s: %s\n", what, vd_last_error());
            test_failures++;
        } else {
            double e1 = rel_l2(vel2, ref, nout), e2 = rel_l2(vel2 + nout, ref, nout);
            report(what, e1 > e2 ? e1 : e2, 2e-2, max_abs_diff(vel2 + nout, ref, nout));
        }
        free(lat2), free(vel2);
    }
    vd_tensor_release(&text);
    vd_dit_free(dit);
    vd_weights_close(mw), vd_weights_close(in), vd_weights_close(gold);
    free(latent), free(ts), free(ctx), free(ref), free(vel);
}

static void group_dit(void)
{
    dit_case("dit_tiny_t2v_f32", 2);
    dit_case("dit_tiny_t2v_f32", 4);
    dit_case("dit_tiny_t2v_bf16", 5);
    dit_case("dit_tiny_t2v_fp8_scaled", 7);
    dit_case("dit_tiny_i2v_f32", 9);
}

typedef struct video_sink {
    float *video;
    int64_t frames;
} video_sink;

static int collect_frames(void *user, const float *rgb, int64_t first, int64_t n, int64_t H, int64_t W)
{
    video_sink *s = user;
    for (int c = 0; c < 3; c++)
        memcpy(s->video + (c * s->frames + first) * H * W, rgb + c * n * H * W, (size_t)(n * H * W) * sizeof(float));
    return 0;
}

static void group_vae(void)
{
    vd_weights *vw = open_golden("vae_tiny_f32");
    for (int i = 1; i <= 3; i++) {
        char in_name[64], out_name[64], what[128];
        snprintf(in_name, sizeof in_name, "vae_decode_case%d_in", i);
        snprintf(out_name, sizeof out_name, "vae_decode_case%d_out", i);
        vd_weights *in = open_golden(in_name), *gold = open_golden(out_name);
        int64_t ls[5], vs[5];
        float *latent = golden_f32(in, "latent", ls, NULL), *ref = golden_f32(gold, "video", vs, NULL);
        int64_t n = vs[0] * vs[1] * vs[2] * vs[3];
        video_sink sink = {calloc((size_t)n, sizeof(float)), vs[1]};
        vd_vae *vae = NULL;
        vd_status st = vd_vae_load(gpu, vw, &vae);
        if (st == VD_OK)
            st = vd_vae_decode(vae, latent, ls[1], ls[2], ls[3], collect_frames, &sink, NULL);
        snprintf(what, sizeof what, "VAE decode case %d on the GPU vs the golden video", i);
        if (st != VD_OK) {
            fprintf(stderr, "%s: %s: %s\n", what, vd_status_name(st), vd_last_error());
            test_failures++;
        } else {
            compare_golden(what, sink.video, ref, n, 1e-3);
        }
        vd_vae_free(vae);
        vd_weights_close(in), vd_weights_close(gold);
        free(latent), free(ref), free(sink.video);
    }
    vd_weights_close(vw);
}

static void group_umt5(void)
{
    vd_weights *w = open_golden("umt5_tiny_f32");
    vd_umt5 *enc = NULL;
    vd_status st = vd_umt5_load(gpu, w, &enc);
    if (st != VD_OK) {
        fprintf(stderr, "umT5 load on the GPU: %s\n", vd_last_error());
        test_failures++;
        vd_weights_close(w);
        return;
    }
    const int64_t D = vd_umt5_get_config(enc)->d_model;
    for (int i = 1; i <= 4; i++) {
        char in_name[64], out_name[64], what[128];
        snprintf(in_name, sizeof in_name, "umt5_case%d_in", i);
        snprintf(out_name, sizeof out_name, "umt5_case%d_out", i);
        vd_weights *in = open_golden(in_name), *gold = open_golden(out_name);
        const vd_weight *ids = vd_weights_find(in, "ids"), *mask = vd_weights_find(in, "mask");
        int64_t L = ids->tensor.shape[0], n = L;
        if (mask) {
            n = 0;
            for (int64_t k = 0; k < L; k++)
                n += ((const int32_t *)mask->tensor.data)[k] != 0;
        }
        float *ref = golden_f32(gold, "embeddings", NULL, NULL);
        float *out = calloc((size_t)(n * D), sizeof *out);
        st = vd_umt5_encode(enc, ids->tensor.data, n, mask ? L : 0, out);
        snprintf(what, sizeof what, "umT5 case %d (%lld tokens%s) on the GPU vs the golden", i, (long long)n,
                 mask ? ", padded + kv_len" : "");
        if (st != VD_OK) {
            fprintf(stderr, "%s: %s\n", what, vd_last_error());
            test_failures++;
        } else {
            compare_golden(what, out, ref, n * D, 2e-2);
        }
        free(ref), free(out);
        vd_weights_close(in), vd_weights_close(gold);
    }
    vd_umt5_free(enc);
    vd_weights_close(w);
}

/* ---- the runner -------------------------------------------------------------------------------- */

typedef struct group {
    const char *name;
    void (*fn)(void);
    const char *env_name, *env_value;   /* set in the child before the backend opens */
    const char *env2_name, *env2_value; /* a second one (or NULL) */
} group;

static const group groups[] = {
    {"elementwise", group_elementwise, NULL, NULL, NULL, NULL},
    {"copy_fill", group_copy_fill, NULL, NULL, NULL, NULL},
    {"norms", group_norms, NULL, NULL, NULL, NULL},
    {"rope", group_rope, NULL, NULL, NULL, NULL},
    {"get_rows", group_get_rows, NULL, NULL, NULL, NULL},
    {"matmul_dtypes", group_matmul_dtypes, NULL, NULL, NULL, NULL},
    {"matmul_shapes", group_matmul_shapes, NULL, NULL, NULL, NULL},
    {"matmul_tiled", group_matmul_tiled, "VD_CUDA_SCRATCH_LIMIT", "262144", NULL, NULL},
    {"matmul_fp8", group_matmul_fp8, NULL, NULL, NULL, NULL},
    {"matmul_fp8_tensor", group_matmul_fp8_tensor, NULL, NULL, NULL, NULL},
    {"matmul_fp8_tiled", group_matmul_fp8_tiled, "VD_CUDA_SCRATCH_LIMIT", "262144", NULL, NULL},
    {"attention", group_attention, "VD_CUDA_ATTENTION", "fa2", NULL, NULL},
    {"attention_fa2_v1", group_attention_tc, "VD_CUDA_ATTENTION", "fa2", "VD_CUDA_FA2_VARIANT", "1"},
    {"attention_fa2_v2", group_attention_tc, "VD_CUDA_ATTENTION", "fa2", "VD_CUDA_FA2_VARIANT", "2"},
    {"attention_fa2_v3", group_attention_tc, "VD_CUDA_ATTENTION", "fa2", "VD_CUDA_FA2_VARIANT", "3"},
    {"attention_fa2_small", group_attention_fa2_small, "VD_CUDA_ATTENTION", "fa2", NULL, NULL},
    {"attention_fa2_passes", group_attention_tc, "VD_CUDA_ATTENTION", "fa2", "VD_CUDA_SCRATCH_LIMIT", "262144"},
    {"attention_mma_kernel", group_attention_tc, "VD_CUDA_ATTENTION", "mma", NULL, NULL},
    {"attention_f32_kernel", group_attention_f32, "VD_CUDA_ATTENTION", "f32", NULL, NULL},
    {"conv3d", group_conv3d, NULL, NULL, NULL, NULL},
    {"conv3d_tiled", group_conv3d, "VD_CUDA_SCRATCH_LIMIT", "65536", NULL, NULL},
    {"memory", group_memory, NULL, NULL, NULL, NULL},
    {"errors", group_errors, NULL, NULL, NULL, NULL},
    {"dit_golden", group_dit, NULL, NULL, NULL, NULL},
    {"dit_golden_f32_attention", group_dit, "VD_CUDA_ATTENTION", "f32", NULL, NULL},
    {"vae_golden", group_vae, NULL, NULL, NULL, NULL},
    {"umt5_golden", group_umt5, NULL, NULL, NULL, NULL},
};

static int open_backends(void)
{
    vd_backend_options o = {.threads = 2};
    if (vd_backend_open("cuda:0", &o, &gpu) != VD_OK) {
        printf("skipped: %s\n", vd_last_error());
        return 77;
    }
    if (vd_backend_open("cpu", &o, &cpu) != VD_OK)
        die("opening the CPU backend");
    return 0;
}

/* Fork, run `g` in the child, return the child's exit status (or 128 +
 * signal). */
static int run_child(const group *g)
{
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0) {
        perror("fork");
        return 1;
    }
    if (pid == 0) {
        if (g && g->env_name)
            setenv(g->env_name, g->env_value, 1);
        if (g && g->env2_name)
            setenv(g->env2_name, g->env2_value, 1);
        int rc = open_backends();
        if (rc == 0 && g) {
            g->fn();
            vd_backend_close(gpu);
            vd_backend_close(cpu);
            rc = test_failures ? 1 : 0;
        }
        fflush(NULL);
        _exit(rc);
    }
    int status = 0;
    if (waitpid(pid, &status, 0) < 0) {
        perror("waitpid");
        return 1;
    }
    if (WIFSIGNALED(status))
        return 128 + WTERMSIG(status);
    return WIFEXITED(status) ? WEXITSTATUS(status) : 1;
}

int main(int argc, char **argv)
{
    setenv("VD_CUDA_SYNC", "1", 0);
    /* The bounds assume bf16 GEMMs; the fp8 groups open their own fp8 backends. */
    unsetenv("VD_FP8_GEMM");
    /* Probe in a child: the parent never touches CUDA, so forking stays safe. */
    int probe = run_child(NULL);
    if (probe == 77)
        return 77;
    if (probe != 0) {
        fprintf(stderr, "opening cuda:0 failed (exit %d)\n", probe);
        return 1;
    }
    int passed = 0, failed = 0;
    for (size_t i = 0; i < sizeof groups / sizeof groups[0]; i++) {
        if (argc > 1) { /* run only the named groups */
            bool wanted = false;
            for (int a = 1; a < argc; a++)
                wanted = wanted || strcmp(argv[a], groups[i].name) == 0;
            if (!wanted)
                continue;
        }
        printf("== %s%s%s%s%s%s\n", groups[i].name, groups[i].env_name ? " (" : "",
               groups[i].env_name ? groups[i].env_name : "", groups[i].env2_name ? ", " : "",
               groups[i].env2_name ? groups[i].env2_name : "", groups[i].env_name ? ")" : "");
        int rc = run_child(&groups[i]);
        if (rc == 0) {
            passed++;
            printf("== %s: passed\n", groups[i].name);
        } else {
            failed++;
            if (rc > 128)
                printf("== %s: FAILED (killed by signal %d)\n", groups[i].name, rc - 128);
            else
                printf("== %s: FAILED (exit %d)\n", groups[i].name, rc);
        }
    }
    printf("cuda_ops: %d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}

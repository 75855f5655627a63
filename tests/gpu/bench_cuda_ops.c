/* Timings of the heavy CUDA ops at Wan 14B sizes (not a test; exits 77
 * without a GPU).  Each op is timed with CUDA events on the backend's
 * stream after warm-up runs, and reported as milliseconds per call and
 * TFLOP/s:
 *   matmul     y[M,N] = x[M,K]·wᵀ, 2·M·N·K FLOPs (x f32 → bf16 included),
 *              M = 32760 tokens (81 frames at 720×1280), weights bf16, q8_0, f32
 *   attention  L = 32760, H = 40, d = 128: 4·L²·d·H FLOPs, the conversion of
 *              q, k, v to bf16 included; every tensor-core kernel (fa2
 *              variants 0..3, the old mma kernel) unless VD_CUDA_ATTENTION
 *              (fa2|mma|f32, with VD_CUDA_FA2_VARIANT) picks one, each
 *              output compared with the first kernel's (relative L2);
 *              and the fp32 kernel on the VAE's single 384-channel head
 *   conv3d     the VAE decoder's 3×3×3 convolution at 384 channels
 *   fp8        the fp8 GEMM path (fp8 e4m3 weights, activations quantised
 *              to e4m3 on the GPU, quantisation included) against the bf16
 *              path at the 14B's sizes for a CFG batch (M = 2 × 32760
 *              tokens): bf16 weights as a bf16 GEMM (the baseline), e4m3
 *              weights through the bf16 path (decoded per call), and e4m3
 *              weights as fp8 GEMMs with cuBLASLt's exact and fast
 *              accumulation (VD_FP8_GEMM=1 / fast; a VD_FP8_GEMM set by the
 *              caller picks one), each fp8 output compared with the bf16
 *              path's on the same weights (relative L2 over 256 rows)
 *
 * usage: bench_cuda_ops [matmul] [attention] [conv] [fp8]   (default: all) */
#include <cuda_runtime.h>
#include <stdbool.h>

#include "backend/backend.h"
#include "backend/cuda/backend_cuda.h"
#include "test_util.h"

static vd_backend *gpu;

static void fail(const char *what)
{
    fprintf(stderr, "%s: %s\n", what, vd_last_error());
    exit(1);
}

/* A device f32 tensor of pseudo-random values in [-1, 1) (cheap xorshift;
 * the timings do not depend on the values). */
static vd_tensor rand_tensor(int ndim, const int64_t *shape, uint64_t seed, float gain)
{
    vd_tensor t;
    if (vd_tensor_alloc(gpu, VD_F32, ndim, shape, &t) != VD_OK)
        fail("allocating");
    int64_t n = vd_tensor_nelem(&t);
    float *h = malloc((size_t)n * sizeof *h);
    if (!h)
        fail("host memory");
    uint64_t s = seed * 0x9E3779B97F4A7C15ull + 1;
    for (int64_t i = 0; i < n; i++) {
        s ^= s << 13, s ^= s >> 7, s ^= s << 17;
        h[i] = gain * ((float)(s >> 40) / (float)(1 << 24) * 2.0f - 1.0f);
    }
    if (vd_tensor_upload(gpu, &t, h, (size_t)n * sizeof *h) != VD_OK)
        fail("uploading");
    free(h);
    return t;
}

/* A weight [N, K] stored as `dtype`: values in [-gain, gain). */
static vd_tensor weight_gain(vd_dtype dtype, int64_t N, int64_t K, uint64_t seed, float g)
{
    int64_t s[2] = {N, K};
    vd_tensor probe;
    vd_tensor_init(&probe, dtype, 2, s, NULL);
    float *h = malloc((size_t)(N * K) * sizeof *h);
    void *raw = malloc(vd_tensor_nbytes(&probe));
    if (!h || !raw)
        fail("host memory");
    uint64_t x = seed * 0x9E3779B97F4A7C15ull + 1;
    for (int64_t i = 0; i < N * K; i++) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        h[i] = g * ((float)(x >> 40) / (float)(1 << 24) * 2.0f - 1.0f);
    }
    vd_dtype_from_f32(dtype, h, raw, N * K);
    vd_tensor t;
    if (vd_tensor_alloc(gpu, dtype, 2, s, &t) != VD_OK || vd_tensor_upload(gpu, &t, raw, vd_tensor_nbytes(&t)) != VD_OK)
        fail("weight");
    free(h);
    free(raw);
    return t;
}

/* A weight [N, K] stored as `dtype`, values in ±1/√K. */
static vd_tensor weight(vd_dtype dtype, int64_t N, int64_t K, uint64_t seed)
{
    return weight_gain(dtype, N, K, seed, 1.0f / sqrtf((float)K));
}

typedef vd_status (*op_fn)(void *arg);

/* Milliseconds per call of fn on be's stream. */
static double time_op_on(vd_backend *be, op_fn fn, void *arg, int warmup, int iters)
{
    for (int i = 0; i < warmup; i++)
        if (fn(arg) != VD_OK)
            fail("warm-up");
    if (vd_backend_synchronize(be) != VD_OK)
        fail("synchronize");
    cudaStream_t s = (cudaStream_t)vd_backend_cuda_stream(be);
    cudaEvent_t a, b;
    cudaEventCreate(&a);
    cudaEventCreate(&b);
    cudaEventRecord(a, s);
    for (int i = 0; i < iters; i++)
        if (fn(arg) != VD_OK)
            fail("timed run");
    cudaEventRecord(b, s);
    if (cudaEventSynchronize(b) != cudaSuccess) {
        fprintf(stderr, "cudaEventSynchronize failed\n");
        exit(1);
    }
    float ms = 0;
    cudaEventElapsedTime(&ms, a, b);
    cudaEventDestroy(a);
    cudaEventDestroy(b);
    return ms / iters;
}

static double time_op(op_fn fn, void *arg, int warmup, int iters) { return time_op_on(gpu, fn, arg, warmup, iters); }

typedef struct mm_args {
    vd_tensor x, w, y;
} mm_args;

static vd_status run_matmul(void *p)
{
    mm_args *a = p;
    return vd_op_matmul(gpu, &a->x, &a->w, NULL, &a->y);
}

static void bench_matmul(int64_t M, int64_t N, int64_t K, vd_dtype dtype)
{
    mm_args a;
    int64_t sx[2] = {M, K}, sy[2] = {M, N};
    a.x = rand_tensor(2, sx, 1, 1.0f);
    a.w = weight(dtype, N, K, 2);
    if (vd_tensor_alloc(gpu, VD_F32, 2, sy, &a.y) != VD_OK)
        fail("y");
    double ms = time_op(run_matmul, &a, 2, 10);
    double tflops = 2.0 * (double)M * (double)N * (double)K / (ms * 1e-3) / 1e12;
    printf("matmul %lld x %lld x %lld, %s weights: %8.3f ms  %7.1f TFLOP/s\n", (long long)M, (long long)N,
           (long long)K, vd_dtype_name(dtype), ms, tflops);
    fflush(stdout);
    vd_tensor_release(&a.x), vd_tensor_release(&a.w), vd_tensor_release(&a.y);
}

/* ---- fp8 GEMMs ---- */

typedef struct mm_on_args {
    vd_backend *be;
    const vd_tensor *x, *w;
    vd_tensor *y;
} mm_on_args;

static vd_status run_matmul_on(void *p)
{
    mm_on_args *a = p;
    return vd_op_matmul(a->be, a->x, a->w, NULL, a->y);
}

static const char *user_fp8; /* the caller's VD_FP8_GEMM */

/* cuda:0 with VD_FP8_GEMM = env while it opens (NULL: unset). */
static vd_backend *open_with_fp8(const char *env)
{
    if (env)
        setenv("VD_FP8_GEMM", env, 1);
    else
        unsetenv("VD_FP8_GEMM");
    vd_backend_options o = {.fp8_gemm = env != NULL};
    vd_backend *be;
    if (vd_backend_open("cuda:0", &o, &be) != VD_OK)
        fail("opening cuda:0 for the fp8 GEMMs");
    unsetenv("VD_FP8_GEMM");
    return be;
}

/* The first `rows` rows of y (written by be). */
static float *head_rows(vd_backend *be, const vd_tensor *y, int64_t rows)
{
    vd_tensor v;
    if (vd_tensor_slice(y, 0, 0, rows, &v) != VD_OK)
        fail("slicing y");
    float *h = malloc((size_t)vd_tensor_nelem(&v) * sizeof *h);
    if (!h || vd_tensor_download(be, &v, h, (size_t)vd_tensor_nelem(&v) * sizeof *h) != VD_OK)
        fail("downloading y");
    return h;
}

static void report_mm(const char *label, double ms, int64_t M, int64_t N, int64_t K, double base_ms)
{
    const double tflops = 2.0 * (double)M * (double)N * (double)K / (ms * 1e-3) / 1e12;
    printf("  %-44s %8.3f ms  %7.1f TFLOP/s", label, ms, tflops);
    if (base_ms > 0)
        printf("  %.2fx the bf16 GEMM", base_ms / ms);
}

static void bench_fp8(int64_t M, int64_t N, int64_t K)
{
    printf("matmul %lld x %lld x %lld:\n", (long long)M, (long long)N, (long long)K);
    fflush(stdout);
    int64_t sx[2] = {M, K}, sy[2] = {M, N};
    vd_tensor x = rand_tensor(2, sx, 1, 1.0f), y;
    if (vd_tensor_alloc(gpu, VD_F32, 2, sy, &y) != VD_OK)
        fail("y");
    /* an fp8-scaled checkpoint's weight: e4m3 values over the format's range and a per-tensor scale */
    vd_tensor w8 = weight_gain(VD_F8_E4M3, N, K, 2, 448.0f);
    w8.scale = 1.0f / (448.0f * sqrtf((float)K));
    vd_tensor wb = weight(VD_BF16, N, K, 2);
    const int64_t head = M < 256 ? M : 256;

    mm_on_args a = {gpu, &x, &wb, &y};
    const double base = time_op_on(gpu, run_matmul_on, &a, 2, 10);
    report_mm("bf16 weights, bf16 GEMM (baseline)", base, M, N, K, 0);
    printf("\n");
    a.w = &w8;
    double ms = time_op_on(gpu, run_matmul_on, &a, 2, 10);
    report_mm("e4m3 weights, bf16 path (decoded per call)", ms, M, N, K, base);
    printf("\n");
    fflush(stdout);
    float *ref = head_rows(gpu, &y, head);

    /* VD_FP8_GEMM values to time: the caller's, or exact and fast accumulation */
    const char *envs[2] = {user_fp8 ? user_fp8 : "1", "fast"};
    for (int v = 0; v < (user_fp8 ? 1 : 2); v++) {
        vd_backend *be8 = open_with_fp8(envs[v]);
        mm_on_args a8 = {be8, &x, &w8, &y};
        ms = time_op_on(be8, run_matmul_on, &a8, 2, 10);
        char label[96];
        snprintf(label, sizeof label, "e4m3 weights, fp8 GEMM (VD_FP8_GEMM=%s)", envs[v]);
        report_mm(label, ms, M, N, K, base);
        float *got = head_rows(be8, &y, head);
        printf("  rel L2 vs the bf16 path: %.2e\n", rel_l2(got, ref, head * N));
        fflush(stdout);
        free(got);
        vd_backend_close(be8);
    }
    free(ref);
    vd_tensor_release(&x), vd_tensor_release(&y), vd_tensor_release(&w8), vd_tensor_release(&wb);
}

typedef struct attn_args {
    vd_tensor q, k, v, o;
    float scale;
} attn_args;

static vd_status run_attention(void *p)
{
    attn_args *a = p;
    return vd_op_attention(gpu, &a->q, &a->k, &a->v, a->scale, NULL, NULL, &a->o);
}

/* The kernels to compare: {VD_CUDA_ATTENTION, VD_CUDA_FA2_VARIANT, label}. */
typedef struct attn_kernel {
    const char *kernel, *variant, *label;
} attn_kernel;

static const attn_kernel attn_kernels[] = {
    {"fa2", "0", "fa2 v0: 128 q/block, 4 warps x 32 rows"},
    {"fa2", "1", "fa2 v1: 128 q/block, 8 warps x 16 rows"},
    {"fa2", "2", "fa2 v2: 64 q/block, 4 warps x 16 rows"},
    {"fa2", "3", "fa2 v3: as v0, half key tiles"},
    {"mma", NULL, "mma: the older tensor-core kernel"},
};

static const char *user_kernel, *user_variant; /* the caller's VD_CUDA_ATTENTION / VD_CUDA_FA2_VARIANT */

static void bench_attention(int64_t L, int64_t H, int64_t d, int iters)
{
    attn_args a;
    int64_t s[4] = {1, L, H, d};
    a.q = rand_tensor(4, s, 3, 1.7f);
    a.k = rand_tensor(4, s, 4, 1.7f);
    a.v = rand_tensor(4, s, 5, 1.0f);
    if (vd_tensor_alloc(gpu, VD_F32, 4, s, &a.o) != VD_OK)
        fail("o");
    a.scale = 1.0f / sqrtf((float)d);
    const int64_t n = L * H * d;
    float *first = NULL, *cur = malloc((size_t)n * sizeof *cur);
    const bool tc = d == 64 || d == 128;
    const size_t nk = tc && !user_kernel ? sizeof attn_kernels / sizeof attn_kernels[0] : 1;
    for (size_t i = 0; i < nk; i++) {
        const char *label = user_kernel ? user_kernel : tc ? attn_kernels[i].label : "fp32 kernel";
        if (!user_kernel && tc) {
            setenv("VD_CUDA_ATTENTION", attn_kernels[i].kernel, 1);
            if (attn_kernels[i].variant)
                setenv("VD_CUDA_FA2_VARIANT", attn_kernels[i].variant, 1);
            else
                unsetenv("VD_CUDA_FA2_VARIANT");
        }
        double ms = time_op(run_attention, &a, 1, iters);
        double tflops = 4.0 * (double)L * (double)L * (double)d * (double)H / (ms * 1e-3) / 1e12;
        printf("attention L=%lld H=%lld d=%lld: %10.3f ms  %7.1f TFLOP/s  [%s%s%s]", (long long)L, (long long)H,
               (long long)d, ms, tflops, label, user_kernel && user_variant ? " variant " : "",
               user_kernel && user_variant ? user_variant : "");
        if (cur && vd_tensor_download(gpu, &a.o, cur, (size_t)n * sizeof *cur) == VD_OK) {
            if (!first) {
                first = cur;
                cur = malloc((size_t)n * sizeof *cur);
            } else {
                printf("  rel L2 vs the first: %.2e", rel_l2(cur, first, n));
            }
        }
        printf("\n");
        fflush(stdout);
    }
    if (!user_kernel) {
        unsetenv("VD_CUDA_ATTENTION");
        unsetenv("VD_CUDA_FA2_VARIANT");
    }
    free(first);
    free(cur);
    vd_tensor_release(&a.q), vd_tensor_release(&a.k), vd_tensor_release(&a.v), vd_tensor_release(&a.o);
}

typedef struct conv_args {
    vd_tensor x, w, b, o;
    int stride[3], pad[6];
} conv_args;

static vd_status run_conv(void *p)
{
    conv_args *a = p;
    return vd_op_conv3d(gpu, &a->x, &a->w, &a->b, a->stride, a->pad, &a->o);
}

static void bench_conv(int64_t C, int64_t T, int64_t H, int64_t W)
{
    conv_args a = {.stride = {1, 1, 1}, .pad = {2, 0, 1, 1, 1, 1}};
    int64_t sx[4] = {C, T, H, W}, sw[5] = {C, C, 3, 3, 3}, sb[1] = {C};
    a.x = rand_tensor(4, sx, 6, 1.0f);
    a.w = rand_tensor(5, sw, 7, 0.02f);
    a.b = rand_tensor(1, sb, 8, 0.1f);
    if (vd_tensor_alloc(gpu, VD_F32, 4, sx, &a.o) != VD_OK)
        fail("o");
    double ms = time_op(run_conv, &a, 1, 5);
    double flops = 2.0 * (double)C * (double)(T * H * W) * (double)(C * 27);
    printf("conv3d %lld -> %lld channels, 3x3x3, %lld x %lld x %lld (fp32): %8.3f ms  %7.1f TFLOP/s\n", (long long)C,
           (long long)C, (long long)T, (long long)H, (long long)W, ms, flops / (ms * 1e-3) / 1e12);
    fflush(stdout);
    vd_tensor_release(&a.x), vd_tensor_release(&a.w), vd_tensor_release(&a.b), vd_tensor_release(&a.o);
}

static bool wanted(int argc, char **argv, const char *what)
{
    if (argc < 2)
        return true;
    for (int i = 1; i < argc; i++)
        if (strcmp(argv[i], what) == 0)
            return true;
    return false;
}

int main(int argc, char **argv)
{
    user_kernel = getenv("VD_CUDA_ATTENTION");
    user_variant = getenv("VD_CUDA_FA2_VARIANT");
    /* the main backend stays on the bf16 path; the fp8 section opens its own */
    static char fp8_env[32];
    if (getenv("VD_FP8_GEMM") && getenv("VD_FP8_GEMM")[0]) {
        snprintf(fp8_env, sizeof fp8_env, "%s", getenv("VD_FP8_GEMM"));
        user_fp8 = fp8_env;
    }
    unsetenv("VD_FP8_GEMM");
    vd_backend_options o = {0};
    if (vd_backend_open("cuda:0", &o, &gpu) != VD_OK) {
        printf("skipped: %s\n", vd_last_error());
        return 77;
    }
    struct cudaDeviceProp prop;
    if (cudaGetDeviceProperties(&prop, 0) == cudaSuccess)
        printf("device: %s (sm_%d%d, %d SMs)\n", prop.name, prop.major, prop.minor, prop.multiProcessorCount);
    if (wanted(argc, argv, "matmul")) {
        bench_matmul(32760, 5120, 5120, VD_BF16);
        bench_matmul(32760, 13824, 5120, VD_BF16);
        bench_matmul(32760, 5120, 13824, VD_BF16);
        bench_matmul(32760, 5120, 5120, VD_Q8_0);
        bench_matmul(32760, 5120, 5120, VD_F8_E4M3);
        bench_matmul(32760, 5120, 5120, VD_F32);
    }
    if (wanted(argc, argv, "attention")) {
        bench_attention(32760, 40, 128, 3);
        bench_attention(32760, 12, 128, 3); /* the 1.3B's heads */
        bench_attention(8192, 16, 64, 5);   /* head size 64 */
        bench_attention(6240, 1, 384, 3);   /* the VAE (fp32 kernel) */
    }
    if (wanted(argc, argv, "conv"))
        bench_conv(384, 3, 60, 104);
    if (wanted(argc, argv, "fp8")) {
        /* the 14B's linear layers for a CFG batch of 2 × 32760 tokens */
        bench_fp8(65520, 5120, 5120);  /* q, k, v, o */
        bench_fp8(65520, 13824, 5120); /* ffn.0 */
        bench_fp8(65520, 5120, 13824); /* ffn.2 */
    }
    vd_cuda_memory_stats ms;
    if (vd_backend_cuda_memory(gpu, &ms) == VD_OK)
        printf("allocator peak: %.2f GiB\n", (double)ms.peak_bytes / (double)(1 << 30));
    vd_backend_close(gpu);
    return 0;
}

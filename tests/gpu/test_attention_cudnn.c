/* cuDNN's fused flash attention (engine/backend/cuda/cuda_attention_cudnn.c)
 * against the CPU backend's attention, relative L2 ≤ 1e-2 (bf16 inputs),
 * under VD_CUDA_ATTENTION=cudnn so that the cuDNN path must run (it fails
 * rather than fall back):
 *   self-attention, Lq = Lk ∈ {1, 17, 128, 300, 1000, 4096}, B 1..2,
 *   H 2..12, d 64 and 128, scale 1/√d and another; cross-attention over 512
 *   keys (Lq 3000); a few of them with VD_CUDNN_SDPA=unified;
 *   calls the path is not meant for (bias, d = 32) still run (fa2, fp32);
 *   the default (VD_CUDA_ATTENTION unset) gives the forced result bit for bit;
 *   200 calls of one shape leave the device's free memory within 1 MiB;
 *   40 distinct shapes, twice (more than the plan cache holds, so the second
 *   round rebuilds and evicts): the cache stays at its bound and the second
 *   round leaves the free memory within 1 MiB.
 * Skipped (exit 77) without a CUDA build with cuDNN, without a GPU, or where
 * the cuDNN path reports that it cannot run on this GPU at all.
 * VD_DEBUG=1 shows the engines cuDNN picks. */
#include <stdbool.h>
#include <stdio.h>
#include <time.h>

#include "backend/backend.h"
#include "test_util.h"
#include "vd_config.h"

#if VD_HAVE_CUDA && VD_HAVE_CUDNN
#include <cuda_runtime.h>

#include "backend/cuda/cuda_attention_cudnn.h"

#define MIB (1024.0 * 1024.0)

static vd_backend *cpu, *gpu;
static const double BOUND = 1e-2;

static void die(const char *what)
{
    fprintf(stderr, "%s: %s\n", what, vd_last_error());
    fflush(NULL);
    exit(1);
}

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* The device's free memory after everything queued has run. */
static double free_mib(void)
{
    size_t f = 0, t = 0;
    if (cudaDeviceSynchronize() != cudaSuccess || cudaMemGetInfo(&f, &t) != cudaSuccess)
        die("cudaMemGetInfo");
    return (double)f / MIB;
}

static vd_tensor tensor_of(vd_backend *be, int ndim, const int64_t *shape, const float *host)
{
    vd_tensor t;
    if (vd_tensor_alloc(be, VD_F32, ndim, shape, &t) != VD_OK)
        die("allocating a tensor");
    if (host && vd_tensor_upload(be, &t, host, vd_tensor_nbytes(&t)) != VD_OK)
        die("uploading a tensor");
    return t;
}

static float *download(vd_backend *be, const vd_tensor *t)
{
    int64_t n = vd_tensor_nelem(t);
    float *h = malloc((size_t)(n ? n : 1) * sizeof *h);
    if (!h || vd_tensor_download(be, t, h, (size_t)n * sizeof *h) != VD_OK)
        die("downloading a result");
    return h;
}

typedef struct attn_case {
    int64_t B, Lq, Lk, H, d;
    float scale; /* 0: 1/√d */
    bool bias;   /* an [H, Lq, Lk] bias: not a cuDNN call */
} attn_case;

/* q, k, v (and out) of one case on one backend. */
typedef struct operands {
    vd_tensor q, k, v, o, bias;
    bool has_bias;
} operands;

static operands operands_of(vd_backend *be, const attn_case *a, uint64_t seed)
{
    const int64_t sq[4] = {a->B, a->Lq, a->H, a->d}, sk[4] = {a->B, a->Lk, a->H, a->d};
    const int64_t sb[3] = {a->H, a->Lq, a->Lk};
    /* unit-variance q and k (scores of standard deviation 1 at 1/√d), as
     * after the DiT's RMSNorm */
    float *hq = random_floats(seed, a->B * a->Lq * a->H * a->d, -1.7320508f, 1.7320508f);
    float *hk = random_floats(seed + 1, a->B * a->Lk * a->H * a->d, -1.7320508f, 1.7320508f);
    float *hv = random_floats(seed + 2, a->B * a->Lk * a->H * a->d, -1, 1);
    operands o = {.has_bias = a->bias};
    o.q = tensor_of(be, 4, sq, hq);
    o.k = tensor_of(be, 4, sk, hk);
    o.v = tensor_of(be, 4, sk, hv);
    o.o = tensor_of(be, 4, sq, NULL);
    if (a->bias) {
        float *hb = random_floats(seed + 3, a->H * a->Lq * a->Lk, -2, 2);
        o.bias = tensor_of(be, 3, sb, hb);
        free(hb);
    }
    free(hq), free(hk), free(hv);
    return o;
}

static void operands_free(operands *o)
{
    vd_tensor_release(&o->q), vd_tensor_release(&o->k), vd_tensor_release(&o->v), vd_tensor_release(&o->o);
    if (o->has_bias)
        vd_tensor_release(&o->bias);
}

static float scale_of(const attn_case *a) { return a->scale != 0 ? a->scale : 1.0f / sqrtf((float)a->d); }

static vd_status run(vd_backend *be, operands *o, float scale)
{
    return vd_op_attention(be, &o->q, &o->k, &o->v, scale, o->has_bias ? &o->bias : NULL, NULL, &o->o);
}

static void describe(const attn_case *a, const char *note, char *buf, size_t size)
{
    snprintf(buf, size, "B=%lld Lq=%lld Lk=%lld H=%lld d=%lld scale=%.4g%s%s", (long long)a->B, (long long)a->Lq,
             (long long)a->Lk, (long long)a->H, (long long)a->d, (double)scale_of(a), a->bias ? " +bias" : "", note);
}

/* The GPU against the CPU on one case. */
static void check_case(const attn_case *a, double bound, uint64_t seed, const char *note)
{
    char what[200];
    describe(a, note, what, sizeof what);
    operands c = operands_of(cpu, a, seed), g = operands_of(gpu, a, seed);
    vd_status s = run(gpu, &g, scale_of(a));
    if (s != VD_OK) {
        printf("  %-70s FAIL: %s: %s\n", what, vd_status_name(s), vd_last_error());
        test_failures++;
    } else {
        CHECK_OK(run(cpu, &c, scale_of(a)));
        const int64_t n = vd_tensor_nelem(&c.o);
        float *ref = download(cpu, &c.o), *got = download(gpu, &g.o);
        double e = rel_l2(got, ref, n);
        if (isnan(e))
            e = INFINITY;
        printf("  %-70s rel L2 %.2e (bound %.0e)%s\n", what, e, bound, e <= bound ? "" : "  FAIL");
        if (!(e <= bound))
            test_failures++;
        free(ref), free(got);
    }
    fflush(stdout);
    operands_free(&c), operands_free(&g);
}

static const attn_case cases[] = {
    /* self-attention */
    {1, 1, 1, 2, 64, 0, false},
    {2, 1, 1, 3, 128, 0.09f, false},
    {1, 17, 17, 2, 64, 0, false},
    {2, 17, 17, 5, 128, 0, false},
    {2, 17, 17, 4, 64, 0.09f, false},
    {1, 128, 128, 4, 64, 0, false},
    {2, 128, 128, 2, 128, 0, false},
    {2, 128, 128, 3, 128, 0.09f, false},
    {2, 300, 300, 3, 64, 0, false},
    {1, 300, 300, 12, 128, 0, false},
    {1, 300, 300, 6, 64, 0.09f, false},
    {2, 1000, 1000, 2, 128, 0, false},
    {1, 1000, 1000, 6, 64, 0, false},
    {2, 1000, 1000, 2, 64, 0.09f, false},
    {1, 4096, 4096, 12, 128, 0, false}, /* the 1.3B's heads */
    {2, 4096, 4096, 2, 64, 0, false},
    {1, 4096, 4096, 2, 128, 0.09f, false},
    /* cross-attention over the 512 text rows */
    {1, 3000, 512, 12, 128, 0, false},
    {2, 3000, 512, 4, 64, 0, false},
    {2, 3000, 512, 2, 128, 0.09f, false},
    {2, 77, 512, 3, 128, 0, false},
};

static const attn_case unified_cases[] = {
    {1, 17, 17, 2, 64, 0, false},
    {2, 300, 300, 3, 128, 0, false},
    {1, 3000, 512, 4, 128, 0, false},
};

/* Not cuDNN calls: they run as by default even under VD_CUDA_ATTENTION=cudnn. */
static const attn_case other_cases[] = {
    {1, 33, 40, 2, 64, 0, true}, /* bias: fa2 */
    {2, 50, 70, 2, 32, 0, false}, /* d = 32: the fp32 kernel */
};

#define N_OF(a) (sizeof(a) / sizeof((a)[0]))

static void group_accuracy(void)
{
    printf("== accuracy against the CPU (VD_CUDA_ATTENTION=cudnn)\n");
    for (size_t i = 0; i < N_OF(cases); i++)
        check_case(&cases[i], BOUND, 1000 + 10 * i, "");
    printf("== VD_CUDNN_SDPA=unified (the composite graph where the library has no SDPA_FWD)\n");
    setenv("VD_CUDNN_SDPA", "unified", 1);
    for (size_t i = 0; i < N_OF(unified_cases); i++)
        check_case(&unified_cases[i], BOUND, 3000 + 10 * i, " [unified first]");
    unsetenv("VD_CUDNN_SDPA");
    printf("== calls the cuDNN path is not meant for\n");
    for (size_t i = 0; i < N_OF(other_cases); i++)
        check_case(&other_cases[i], BOUND, 4000 + 10 * i, "");
}

/* The default path picks cuDNN: the same bits as the forced path. */
static void group_default(void)
{
    printf("== default (VD_CUDA_ATTENTION unset) against forced\n");
    const attn_case a = {2, 300, 300, 3, 128, 0, false};
    operands g = operands_of(gpu, &a, 5000);
    const int64_t n = vd_tensor_nelem(&g.o);
    CHECK_OK(run(gpu, &g, scale_of(&a)));
    float *forced = download(gpu, &g.o);
    unsetenv("VD_CUDA_ATTENTION");
    CHECK_OK(vd_backend_synchronize(gpu));
    float *zero = calloc((size_t)n, sizeof *zero);
    if (!zero || vd_tensor_upload(gpu, &g.o, zero, (size_t)n * sizeof *zero) != VD_OK)
        die("clearing the output");
    CHECK_OK(run(gpu, &g, scale_of(&a)));
    float *dflt = download(gpu, &g.o);
    setenv("VD_CUDA_ATTENTION", "cudnn", 1);
    const bool same = memcmp(forced, dflt, (size_t)n * sizeof *forced) == 0;
    printf("  B=2 Lq=Lk=300 H=3 d=128: default %s forced\n", same ? "==" : "!=");
    CHECKF(same, "the default attention path differs from VD_CUDA_ATTENTION=cudnn (relative L2 %.2e)",
           rel_l2(dflt, forced, n));
    free(forced), free(dflt), free(zero);
    operands_free(&g);
}

/* 200 calls of one shape: no growth of the device memory. */
static void group_repeat(void)
{
    printf("== 200 calls of one shape\n");
    const attn_case a = {2, 1024, 1024, 4, 128, 0, false};
    operands g = operands_of(gpu, &a, 6000);
    for (int i = 0; i < 3; i++) /* the plan, the scratch block */
        CHECK_OK(run(gpu, &g, scale_of(&a)));
    const double before = free_mib();
    double t0 = now();
    for (int i = 0; i < 200; i++) {
        vd_status s = run(gpu, &g, scale_of(&a));
        if (s != VD_OK) {
            fprintf(stderr, "  call %d: %s: %s\n", i, vd_status_name(s), vd_last_error());
            test_failures++;
            break;
        }
    }
    const double after = free_mib(), growth = before - after;
    printf("  free %.1f MiB -> %.1f MiB (growth %.2f MiB) in %.2f s\n", before, after, growth, now() - t0);
    CHECKF(growth <= 1.0, "GPU memory grew by %.2f MiB over 200 identical attention calls", growth);
    operands_free(&g);
}

/* More shapes than the plan cache holds, twice: the second round misses on
 * every call (least recently used goes first), so it evicts and rebuilds
 * 40 plans; that must not leave memory behind. */
static void group_plan_cache(void)
{
    enum { SHAPES = 40 };
    printf("== %d distinct shapes, twice (plan cache bound %d)\n", SHAPES, CUDA_CUDNN_PLAN_CACHE);
    operands g[SHAPES];
    attn_case a[SHAPES];
    for (int i = 0; i < SHAPES; i++) {
        a[i] = (attn_case){1, 16 + i, 64, 2, 64, 0, false};
        g[i] = operands_of(gpu, &a[i], 7000 + 10 * (uint64_t)i);
    }
    double before = 0;
    for (int round = 0; round < 2; round++) {
        double t0 = now();
        for (int i = 0; i < SHAPES; i++) {
            vd_status s = run(gpu, &g[i], scale_of(&a[i]));
            if (s != VD_OK) {
                fprintf(stderr, "  round %d shape %d: %s: %s\n", round, i, vd_status_name(s), vd_last_error());
                test_failures++;
            }
        }
        const int cached = cuda_attention_cudnn_cached(gpu);
        const double f = free_mib();
        printf("  round %d: %.2f s, %d cached, %.1f MiB free\n", round + 1, now() - t0, cached, f);
        CHECKF(cached == CUDA_CUDNN_PLAN_CACHE, "%d plans cached, expected the bound %d", cached,
               CUDA_CUDNN_PLAN_CACHE);
        if (round == 0)
            before = f;
        else
            CHECKF(before - f <= 1.0, "GPU memory grew by %.2f MiB over 40 plan rebuilds", before - f);
    }
    for (int i = 0; i < SHAPES; i++)
        operands_free(&g[i]);
}

int main(void)
{
    /* an asynchronous fault is reported by the call that caused it */
    setenv("VD_CUDA_SYNC", "1", 0);
    unsetenv("VD_CUDNN_SDPA");
    vd_backend_options o = {.threads = 0};
    if (vd_backend_open("cuda:0", &o, &gpu) != VD_OK) {
        printf("SKIP: no CUDA device: %s\n", vd_last_error());
        return 77;
    }
    const char *why = NULL;
    if (!cuda_attention_cudnn_available(gpu, &why)) {
        printf("SKIP: the cuDNN attention path cannot run on this GPU: %s\n", why ? why : "unknown reason");
        vd_backend_close(gpu);
        return 77;
    }
    if (vd_backend_open("cpu", &o, &cpu) != VD_OK)
        die("opening the CPU backend");
    setenv("VD_CUDA_ATTENTION", "cudnn", 1); /* read at each call: the cuDNN path or an error */
    group_accuracy();
    group_default();
    group_repeat();
    group_plan_cache();
    vd_backend_close(gpu);
    vd_backend_close(cpu);
    return test_finish("attention_cudnn");
}

#else

int main(void)
{
    printf("SKIP: %s\n", VD_HAVE_CUDA ? "built without cuDNN" : "built without CUDA");
    return 77;
}

#endif

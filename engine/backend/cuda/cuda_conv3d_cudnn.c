/* 3-D convolutions through cuDNN's legacy convolution API in strict fp32:
 * what PyTorch runs for the reference VAE with allow_tf32 = False and
 * benchmark = False — cudnnConvolutionForward on NCDHW tensors (N = 1),
 * cross-correlation, FMA math (so never TF32), the algorithm from the
 * cudnnGetConvolutionForwardAlgorithm_v7 heuristics.
 *
 * One cuDNN handle per device, created on first use and kept for the life
 * of the process (a cudnnDestroy at exit could run after the CUDA runtime
 * is torn down); cudnnSetStream points it at the calling backend's stream
 * before each convolution.  The descriptors, the algorithm and the
 * workspace size are cached per shape in CACHE_SLOTS entries, the least
 * recently used evicted (its descriptors destroyed), so memory stays
 * bounded however many frame sizes a process decodes.  Shapes cuDNN cannot
 * run are cached as unsupported, so the im2col fallback costs no second
 * query.  One mutex guards the handles and the cache; it is held from the
 * lookup to the (asynchronous) enqueue, so no entry is evicted while in use
 * and no other thread re-points a handle's stream in between.
 *
 * Padding: cuDNN pads both sides of an axis alike.  The common part,
 * min(before, after), goes to cuDNN; the excess of an asymmetric padding
 * is made explicit by copying x into a zeroed scratch buffer larger by it.
 * (A symmetric max(before, after) plus a slice of the output would serve a
 * causal time padding, where the wanted output is a prefix, but not the
 * encoder's stride-2 downsampling that pads only bottom and right: its
 * output grid would shift by one input row, not a multiple of the stride.)
 * The VAE's decoder pads symmetrically (its causal frames come from a
 * cache), so only the encoder's downsampling pays for the copy.
 *
 * Algorithm: the first of the heuristics' list that is deterministic, uses
 * FMA (or default) math — the descriptor stays CUDNN_FMA_MATH, so TF32 is
 * never allowed — is GEMM-type or direct (FFT and Winograd round
 * differently from a direct fp32 sum, the accuracy the fp32 reference is
 * held to), and needs at most WS_BYTES (or VD_CUDA_SCRATCH_LIMIT) of
 * workspace, which comes from the backend's caching allocator. */
#include "backend/cuda/cuda_conv3d_cudnn.h"

#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cudnn.h>

#include "copy.h"
#include "core/error.h"
#include "elementwise.h"

/* CACHE_SLOTS: room for a decode's shapes (its first chunk's differ from
 * the later ones') and an encode's in one process; a miss costs one
 * heuristics query. */
enum { MAX_DEVICES = 64, CACHE_SLOTS = 128, KEY_LEN = 16 };

#ifndef CUDNN_STATUS_CATEGORY /* cuDNN 9.0's headers have it; kept for safety */
#define CUDNN_STATUS_CATEGORY(full_error_code) ((full_error_code) / 1000 * 1000)
#endif

/* The workspace bound: the size of the im2col path's column tile, so
 * cuDNN never needs more scratch than the path it replaces. */
#define WS_BYTES ((int64_t)256 << 20)
/* The largest explicitly padded copy of x; beyond it im2col runs. */
#define PAD_BYTES ((int64_t)256 << 20)

/* The convolution as cuDNN sees it. */
typedef struct geom {
    int64_t cin, in[3];  /* x after the explicit padding: [cin, in[0], in[1], in[2]] */
    int64_t cout, k[3], stride[3], pad[3]; /* pad: the symmetric part, given to cuDNN */
    int64_t out[3];
} geom;

typedef struct plan {
    bool used;  /* the slot holds an entry */
    bool ok;    /* cuDNN runs it; otherwise why says why not */
    int64_t key[KEY_LEN];
    uint64_t last_use;
    cudnnTensorDescriptor_t xd, yd;
    cudnnFilterDescriptor_t wd;
    cudnnConvolutionDescriptor_t cd;
    cudnnConvolutionFwdAlgo_t algo;
    size_t ws_bytes;
    char why[320];
} plan;

static pthread_mutex_t g_lock = PTHREAD_MUTEX_INITIALIZER;
static cudnnHandle_t g_handle[MAX_DEVICES];
static char g_handle_error[MAX_DEVICES][240]; /* cudnnCreate failed there: not retried */
static plan g_plans[CACHE_SLOTS];
static uint64_t g_clock;

/* "CUDNN_STATUS_... (cuDNN's message for this thread)". */
static void status_text(cudnnStatus_t st, char *buf, size_t size)
{
    char detail[200] = "";
    cudnnGetLastErrorString(detail, sizeof detail);
    snprintf(buf, size, "%s%s%s%s", cudnnGetErrorString(st), detail[0] ? " (" : "", detail, detail[0] ? ")" : "");
}

/* True on success; otherwise why = "call: status". */
static bool cudnn_ok(cudnnStatus_t st, const char *call, char *why, size_t size)
{
    if (st == CUDNN_STATUS_SUCCESS)
        return true;
    char t[260];
    status_text(st, t, sizeof t);
    snprintf(why, size, "%s failed: %s", call, t);
    return false;
}

/* The device's handle, created on first use (the device is current). */
static cudnnHandle_t handle_for(int dev, char *why, size_t size)
{
    if (g_handle[dev])
        return g_handle[dev];
    if (!g_handle_error[dev][0]) {
        cudnnHandle_t h = NULL;
        char t[200];
        if (cudnn_ok(cudnnCreate(&h), "cudnnCreate", t, sizeof t)) {
            g_handle[dev] = h;
            return h;
        }
        snprintf(g_handle_error[dev], sizeof g_handle_error[dev], "%s on device %d (cuDNN library %zu)", t, dev,
                 cudnnGetVersion());
    }
    snprintf(why, size, "%s", g_handle_error[dev]);
    return NULL;
}

/* Destroy p's descriptors (host objects: a failure leaves nothing to undo). */
static void plan_drop_descriptors(plan *p)
{
    if (p->xd)
        (void)cudnnDestroyTensorDescriptor(p->xd);
    if (p->yd)
        (void)cudnnDestroyTensorDescriptor(p->yd);
    if (p->wd)
        (void)cudnnDestroyFilterDescriptor(p->wd);
    if (p->cd)
        (void)cudnnDestroyConvolutionDescriptor(p->cd);
    p->xd = p->yd = NULL;
    p->wd = NULL;
    p->cd = NULL;
}

static bool is_direct_sum(cudnnConvolutionFwdAlgo_t a)
{
    return a == CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_GEMM || a == CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_PRECOMP_GEMM ||
           a == CUDNN_CONVOLUTION_FWD_ALGO_GEMM || a == CUDNN_CONVOLUTION_FWD_ALGO_DIRECT;
}

static void packed_strides(const int dim[5], int stride[5])
{
    stride[4] = 1;
    for (int i = 3; i >= 0; i--)
        stride[i] = stride[i + 1] * dim[i + 1];
}

static bool fits_int(int64_t v) { return v >= 0 && v <= INT_MAX; }

/* Descriptors and algorithm for g on handle h into p (whose key is set);
 * false with p->why when cuDNN cannot run it (descriptors destroyed). */
static bool plan_build(cudnnHandle_t h, const geom *g, int64_t ws_cap, plan *p)
{
    const size_t wn = sizeof p->why;
    /* cuDNN's legacy API takes int dimensions and at most 2^31 elements a tensor. */
    const int64_t nx = g->cin * g->in[0] * g->in[1] * g->in[2], ny = g->cout * g->out[0] * g->out[1] * g->out[2],
                  nw = g->cout * g->cin * g->k[0] * g->k[1] * g->k[2];
    if (!fits_int(nx) || !fits_int(ny) || !fits_int(nw)) {
        snprintf(p->why, wn, "a tensor has more than 2^31 elements (x %lld, out %lld, w %lld)", (long long)nx,
                 (long long)ny, (long long)nw);
        return false;
    }
    int xdim[5] = {1, (int)g->cin, (int)g->in[0], (int)g->in[1], (int)g->in[2]};
    int want[5] = {1, (int)g->cout, (int)g->out[0], (int)g->out[1], (int)g->out[2]};
    int wdim[5] = {(int)g->cout, (int)g->cin, (int)g->k[0], (int)g->k[1], (int)g->k[2]};
    int padA[3], strideA[3], dilA[3] = {1, 1, 1};
    for (int i = 0; i < 3; i++) {
        padA[i] = (int)g->pad[i];
        strideA[i] = (int)g->stride[i];
    }
    int xstr[5], ydim[5] = {0}, ystr[5];
    packed_strides(xdim, xstr);

    cudnnConvolutionFwdAlgoPerf_t *perf = NULL;
    bool ok = cudnn_ok(cudnnCreateTensorDescriptor(&p->xd), "cudnnCreateTensorDescriptor", p->why, wn) &&
              cudnn_ok(cudnnCreateTensorDescriptor(&p->yd), "cudnnCreateTensorDescriptor", p->why, wn) &&
              cudnn_ok(cudnnCreateFilterDescriptor(&p->wd), "cudnnCreateFilterDescriptor", p->why, wn) &&
              cudnn_ok(cudnnCreateConvolutionDescriptor(&p->cd), "cudnnCreateConvolutionDescriptor", p->why, wn) &&
              cudnn_ok(cudnnSetTensorNdDescriptor(p->xd, CUDNN_DATA_FLOAT, 5, xdim, xstr),
                       "cudnnSetTensorNdDescriptor (x)", p->why, wn) &&
              cudnn_ok(cudnnSetFilterNdDescriptor(p->wd, CUDNN_DATA_FLOAT, CUDNN_TENSOR_NCHW, 5, wdim),
                       "cudnnSetFilterNdDescriptor", p->why, wn) &&
              cudnn_ok(cudnnSetConvolutionNdDescriptor(p->cd, 3, padA, strideA, dilA, CUDNN_CROSS_CORRELATION,
                                                       CUDNN_DATA_FLOAT),
                       "cudnnSetConvolutionNdDescriptor", p->why, wn) &&
              /* FMA only: exact fp32 like PyTorch with allow_tf32 = False (the default math may use TF32) */
              cudnn_ok(cudnnSetConvolutionMathType(p->cd, CUDNN_FMA_MATH), "cudnnSetConvolutionMathType", p->why,
                       wn) &&
              cudnn_ok(cudnnGetConvolutionNdForwardOutputDim(p->cd, p->xd, p->wd, 5, ydim),
                       "cudnnGetConvolutionNdForwardOutputDim", p->why, wn);
    if (ok && memcmp(ydim, want, sizeof want) != 0) {
        snprintf(p->why, wn, "cuDNN computes an output [%d, %d, %d, %d, %d], the op expects [%d, %d, %d, %d, %d]",
                 ydim[0], ydim[1], ydim[2], ydim[3], ydim[4], want[0], want[1], want[2], want[3], want[4]);
        ok = false;
    }
    if (ok) {
        packed_strides(ydim, ystr);
        ok = cudnn_ok(cudnnSetTensorNdDescriptor(p->yd, CUDNN_DATA_FLOAT, 5, ydim, ystr),
                      "cudnnSetTensorNdDescriptor (out)", p->why, wn);
    }
    int max = 0, got = 0;
    if (ok)
        ok = cudnn_ok(cudnnGetConvolutionForwardAlgorithmMaxCount(h, &max),
                      "cudnnGetConvolutionForwardAlgorithmMaxCount", p->why, wn);
    if (ok && max < 1) {
        snprintf(p->why, wn, "cudnnGetConvolutionForwardAlgorithmMaxCount gave %d algorithms", max);
        ok = false;
    }
    if (ok && !(perf = calloc((size_t)max, sizeof *perf))) {
        snprintf(p->why, wn, "out of host memory for %d algorithm results", max);
        ok = false;
    }
    if (ok)
        ok = cudnn_ok(cudnnGetConvolutionForwardAlgorithm_v7(h, p->xd, p->wd, p->cd, p->yd, max, &got, perf),
                      "cudnnGetConvolutionForwardAlgorithm_v7", p->why, wn);
    if (ok) {
        /* The heuristics' order, as PyTorch's benchmark=False takes it; the
         * workspace size is asked again for the FMA descriptor, which also
         * confirms cuDNN supports the algorithm with it. */
        int failed = 0, transform = 0, tensor_op = 0, nondet = 0, too_big = 0, ws_fail = 0;
        size_t smallest_big = 0;
        bool chosen = false;
        for (int i = 0; i < got && !chosen; i++) {
            const cudnnConvolutionFwdAlgoPerf_t *r = &perf[i];
            size_t ws = 0;
            if (r->status != CUDNN_STATUS_SUCCESS) {
                failed++;
            } else if (!is_direct_sum(r->algo)) {
                transform++;
            } else if (r->mathType != CUDNN_FMA_MATH && r->mathType != CUDNN_DEFAULT_MATH) {
                tensor_op++;
            } else if (r->determinism != CUDNN_DETERMINISTIC) {
                nondet++;
            } else if (cudnnGetConvolutionForwardWorkspaceSize(h, p->xd, p->wd, p->cd, p->yd, r->algo, &ws) !=
                       CUDNN_STATUS_SUCCESS) {
                ws_fail++;
            } else if ((uint64_t)ws > (uint64_t)ws_cap) {
                too_big++;
                if (!smallest_big || ws < smallest_big)
                    smallest_big = ws;
            } else {
                p->algo = r->algo;
                p->ws_bytes = ws;
                chosen = true;
            }
        }
        if (!chosen) {
            char smallest[64] = "";
            if (too_big)
                snprintf(smallest, sizeof smallest, ", the smallest %.1f MiB", (double)smallest_big / (1 << 20));
            snprintf(p->why, wn,
                     "no usable algorithm among the %d of cudnnGetConvolutionForwardAlgorithm_v7 (%d failed, %d FFT "
                     "or Winograd, %d tensor-op math, %d non-deterministic, %d refused by "
                     "cudnnGetConvolutionForwardWorkspaceSize, %d needing more than %.1f MiB of workspace%s)",
                     got, failed, transform, tensor_op, nondet, ws_fail, too_big, (double)ws_cap / (1 << 20),
                     smallest);
            ok = false;
        }
    }
    free(perf);
    if (!ok)
        plan_drop_descriptors(p);
    return ok;
}

/* The entry for key (lock held): found, or built into a free or the
 * least recently used slot.  NULL only when there is no handle. */
static plan *plan_get(int dev, const int64_t key[KEY_LEN], const geom *g, int64_t ws_cap, char *why, size_t size)
{
    plan *victim = &g_plans[0];
    for (int i = 0; i < CACHE_SLOTS; i++) {
        plan *p = &g_plans[i];
        if (p->used && memcmp(p->key, key, sizeof p->key) == 0) {
            p->last_use = ++g_clock;
            return p;
        }
        if (victim->used && (!p->used || p->last_use < victim->last_use))
            victim = p;
    }
    cudnnHandle_t h = handle_for(dev, why, size);
    if (!h)
        return NULL;
    plan_drop_descriptors(victim);
    memset(victim, 0, sizeof *victim);
    memcpy(victim->key, key, sizeof victim->key);
    victim->used = true;
    victim->last_use = ++g_clock;
    victim->ok = plan_build(h, g, ws_cap, victim);
    return victim;
}

/* x [cin, in] into the zeroed dst [cin, padded] at offset `before`. */
static int pad_input(const float *x, int64_t cin, const int64_t in[3], const int64_t before[3],
                     const int64_t padded[3], float *dst, cudaStream_t stream)
{
    int err = vd_cuda_fill_f32(dst, 0.0f, cin * padded[0] * padded[1] * padded[2], stream);
    if (err)
        return err;
    vd_cuda_walk wk = {
        .ndim = 4,
        .shape = {cin, in[0], in[1], in[2]},
        .stride = {{in[0] * in[1] * in[2], in[1] * in[2], in[2], 1},
                   {padded[0] * padded[1] * padded[2], padded[1] * padded[2], padded[2], 1}},
    };
    float *origin = dst + (before[0] * padded[1] + before[1]) * padded[2] + before[2];
    return vd_cuda_copy_strided(&wk, 0, (int)VD_F32, (int)sizeof(float), 1.0f, x, origin, stream);
}

vd_status cuda_conv3d_cudnn(vd_backend *be, const vd_tensor *x, const vd_tensor *w, const float *wf, float alpha,
                            const int stride[3], const int pad[6], vd_tensor *out, const char *shapes, bool *ran,
                            char *why, size_t why_size)
{
    *ran = false;
    why[0] = '\0';
    cuda_ctx *c = cuda_ctx_of(be);
    const int dev = c->device;
    geom g = {.cin = x->shape[0], .cout = w->shape[0]};
    int64_t in[3], before[3];
    bool asym = false;
    for (int i = 0; i < 3; i++) {
        const int64_t b = pad[2 * i], a = pad[2 * i + 1], sym = b < a ? b : a;
        in[i] = x->shape[1 + i];
        before[i] = b - sym;
        g.in[i] = in[i] + (b - sym) + (a - sym);
        g.k[i] = w->shape[2 + i];
        g.stride[i] = stride[i];
        g.pad[i] = sym;
        g.out[i] = out->shape[1 + i];
        asym = asym || a != b;
    }
    if (dev < 0 || dev >= MAX_DEVICES) {
        snprintf(why, why_size, "device %d is beyond the %d cuDNN handles kept", dev, MAX_DEVICES);
        return VD_OK;
    }
    if (vd_tensor_nelem(x) == 0) {
        snprintf(why, why_size, "x is empty");
        return VD_OK;
    }
    /* cuDNN's vectorised kernels assume aligned tensors; the allocator's are. */
    if (((uintptr_t)x->data | (uintptr_t)out->data | (uintptr_t)wf) & 15) {
        snprintf(why, why_size, "x, out or the f32 weight is not 16-byte aligned");
        return VD_OK;
    }
    const int64_t pad_bytes = asym ? g.cin * g.in[0] * g.in[1] * g.in[2] * (int64_t)sizeof(float) : 0;
    const int64_t pad_cap = cuda_scratch_bound(be, PAD_BYTES);
    if (pad_bytes > pad_cap) {
        snprintf(why, why_size,
                 "the asymmetric padding needs an explicitly padded copy of x (%.1f MiB), more than %.1f MiB",
                 (double)pad_bytes / (1 << 20), (double)pad_cap / (1 << 20));
        return VD_OK;
    }
    const int64_t ws_cap = cuda_scratch_bound(be, WS_BYTES);
    const int64_t key[KEY_LEN] = {
        dev,         g.cin,       g.in[0],     g.in[1],  g.in[2],  g.cout,   g.k[0], g.k[1], g.k[2],
        g.stride[0], g.stride[1], g.stride[2], g.pad[0], g.pad[1], g.pad[2], ws_cap,
    };

    pthread_mutex_lock(&g_lock);
    plan *p = plan_get(dev, key, &g, ws_cap, why, why_size);
    if (!p || !p->ok) {
        if (p)
            snprintf(why, why_size, "%s", p->why);
        pthread_mutex_unlock(&g_lock);
        return VD_OK;
    }
    const char *op = "conv3d (cuDNN)";
    vd_status s = VD_OK;
    cuda_block *ws = NULL, *xp = NULL;
    const void *xin = x->data;
    if (p->ws_bytes > 0)
        s = cuda_pool_alloc(be, p->ws_bytes, "conv3d's cuDNN workspace", &ws);
    if (s == VD_OK && asym) {
        s = cuda_pool_alloc(be, (size_t)pad_bytes, "conv3d's padded input (cuDNN)", &xp);
        if (s == VD_OK) {
            int err = pad_input(x->data, g.cin, in, before, g.in, xp->ptr, c->stream);
            s = cuda_op_result(be, err, "conv3d (padding x for cuDNN)", "x", x, NULL, NULL, NULL, NULL);
            xin = xp->ptr;
        }
    }
    if (s == VD_OK) {
        const float beta = 0.0f;
        cudnnHandle_t h = g_handle[dev];
        cudnnStatus_t st = cudnnSetStream(h, c->stream);
        const char *call = "cudnnSetStream";
        if (st == CUDNN_STATUS_SUCCESS) {
            call = "cudnnConvolutionForward";
            st = cudnnConvolutionForward(h, &alpha, p->xd, xin, p->wd, wf, p->cd, p->algo, ws ? ws->ptr : NULL,
                                         p->ws_bytes, &beta, p->yd, out->data);
        }
        char t[260];
        if (st == CUDNN_STATUS_SUCCESS) {
            *ran = true;
            s = cuda_op_result(be, 0, op, "x", x, "w", w, "out", out);
        } else if (CUDNN_STATUS_CATEGORY(st) == CUDNN_STATUS_NOT_SUPPORTED) {
            /* Refused before launching anything: as if the setup had failed. */
            status_text(st, t, sizeof t);
            snprintf(p->why, sizeof p->why, "%s with algorithm %d refused it: %s", call, (int)p->algo, t);
            plan_drop_descriptors(p);
            p->ok = false;
            snprintf(why, why_size, "%s", p->why);
        } else {
            status_text(st, t, sizeof t);
            s = vd_error(VD_ERR_DEVICE,
                         "%s: conv3d through cuDNN: %s failed for %s, padding {%d, %d, %d, %d, %d, %d} (algorithm %d, "
                         "workspace %zu bytes): %s; VD_CUDA_CONV=im2col avoids cuDNN",
                         be->name, call, shapes, pad[0], pad[1], pad[2], pad[3], pad[4], pad[5], (int)p->algo,
                         p->ws_bytes, t);
        }
    }
    pthread_mutex_unlock(&g_lock);
    /* Stream-ordered: whoever gets these blocks next enqueues after the convolution. */
    cuda_pool_free(be, xp);
    cuda_pool_free(be, ws);
    return s;
}

/* Attention through cuDNN's fused flash attention (see cuda_attention_cudnn.h).
 *
 * The graph is the one cuDNN's frontend builds for SDPA inference (its
 * composite SDPA node and composite softmax, cuDNN < 9.21), written here
 * against the backend API: cuDNN's fusion engine recognises that pattern of
 * ops, so the ops, their order and their attributes follow the frontend:
 *
 *   S   = matmul(Q, Kᵀ)            fp32
 *   S2  = S · scale                pointwise MUL, scale a by-value f32 scalar
 *   M   = max over keys of S2      reduction MAX, [B, H, Lq, 1]
 *   E   = exp(S2 − M)              pointwise SUB, EXP
 *   Z   = sum over keys of E       reduction ADD, [B, H, Lq, 1]
 *   LSE = M + log Z                pointwise LOG, ADD: the softmax statistics,
 *                                  virtual (inference keeps no stats, but the
 *                                  frontend always builds them)
 *   P   = E / Z                    pointwise DIV, bf16 (the second matmul
 *                                  takes its A operand in the io type)
 *   O   = matmul(P, V)             bf16
 *
 * Q, K, V and O are bf16 in vdiff's [B, L, H, d] layout, given to cuDNN as
 * dims [b, h, s, d] with strides [L·H·d, d, H·d, 1] (K as Kᵀ: dims
 * [b, h, d, s], strides [L·H·d, d, 1, H·d]); the other tensors are virtual
 * fp32 (P bf16), compute fp32.  Where that graph gets no plan, the single
 * SDPA_FWD operation of cuDNN 9.13.1+ is tried (VD_CUDNN_SDPA=unified tries
 * it first: the frontend's choice on new libraries, kept for comparison).
 *
 * Plans: heuristics mode A, then the fallback list; the first engine config
 * whose plan finalizes wins.  Finalized plans are cached per device, keyed
 * by the shapes (the scale is a by-value input of the plan, not part of it),
 * at most CUDA_CUDNN_PLAN_CACHE per device, least recently used evicted;
 * shapes cuDNN cannot do are cached too, so they are not retried.
 *
 * One cuDNN handle per device, created on first use and kept for the
 * process.  One mutex guards the handles and the caches and is held from
 * the lookup through cudnnBackendExecute (which only enqueues), so a plan
 * is never evicted or used by two threads at once (cuDNN does not promise
 * that plans are thread-safe).  VD_DEBUG=1 prints why cuDNN declined and
 * which engine each plan uses. */
#include <cudnn.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend/cuda/cuda_attention_cudnn.h"
#include "backend/cuda/cuda_internal.h"
#include "core/error.h"
#include "dequant.h"

#if CUDNN_MAJOR >= 9

enum { MAX_DEVICES = 64, MAX_DESCS = 48, WHY_SIZE = 1024 };

/* Tensor UIDs: the non-virtual ones name the variant pack's pointers. */
enum {
    UID_Q = 1,
    UID_K,
    UID_V,
    UID_O,
    UID_SCALE,
    UID_S = 101,
    UID_S2,
    UID_MAX,
    UID_SUB,
    UID_EXP,
    UID_SUM,
    UID_LOG,
    UID_LSE,
    UID_P,
};

typedef enum { GRAPH_COMPOSITE = 0, GRAPH_UNIFIED = 1 } graph_kind;
static const char *const graph_names[2] = {"composite SDPA graph", "SDPA_FWD operation"};

typedef struct plan_key {
    int64_t B, Lq, Lk, H, d;
    graph_kind prefer; /* the graph tried first */
} plan_key;

typedef struct plan_entry {
    bool used;
    plan_key key;
    uint64_t last_use;
    cudnnBackendDescriptor_t plan; /* NULL: cuDNN cannot run the key (remembered; why says why) */
    int64_t workspace;
    graph_kind kind;
    int ndescs;
    cudnnBackendDescriptor_t descs[MAX_DESCS]; /* everything the plan was built from, destroyed with it */
    char why[WHY_SIZE];
} plan_entry;

typedef struct device_state {
    bool tried;           /* handle creation attempted */
    cudnnHandle_t handle; /* NULL: cuDNN cannot run on this device (why says why) */
    char why[WHY_SIZE];
    uint64_t clock;
    plan_entry plans[CUDA_CUDNN_PLAN_CACHE];
} device_state;

static pthread_mutex_t cache_lock = PTHREAD_MUTEX_INITIALIZER;
static device_state *devices[MAX_DEVICES];
/* A *why handed to the caller outlives the lock (an entry may be evicted). */
static _Thread_local char why_copy[WHY_SIZE];

static const char *keep_why(const char *why)
{
    snprintf(why_copy, sizeof why_copy, "%s", why);
    return why_copy;
}

static bool debug_on(void)
{
    const char *s = getenv("VD_DEBUG");
    return s && s[0] && strcmp(s, "0") != 0;
}

static void debug(const char *fmt, ...) VD_PRINTF(1, 2);
static void debug(const char *fmt, ...)
{
    if (!debug_on())
        return;
    va_list ap;
    va_start(ap, fmt);
    fputs("vdiff: cuDNN attention: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

/* cuDNN's last message (the reasons behind its last refusal, even where
 * the call itself succeeded), on one line. */
static void last_message(char *buf, size_t size)
{
    buf[0] = '\0';
    cudnnGetLastErrorString(buf, size);
    buf[size - 1] = '\0';
    for (char *p = buf; *p; p++)
        if (*p == '\n' || *p == '\r')
            *p = p[1] ? ' ' : '\0';
}

/* "CUDNN_STATUS_... (code): cuDNN's last message" */
static void status_text(cudnnStatus_t st, char *buf, size_t size)
{
    char last[400];
    last_message(last, sizeof last);
    snprintf(buf, size, "%s (%d)%s%s", cudnnGetErrorString(st), (int)st, last[0] ? ": " : "", last);
}

static void destroy_descs(cudnnBackendDescriptor_t *d, int n)
{
    for (int i = n - 1; i >= 0; i--)
        if (d[i])
            (void)cudnnBackendDestroyDescriptor(d[i]); /* nothing to do if it fails */
}

static void key_text(const plan_key *k, char *buf, size_t size)
{
    snprintf(buf, size, "B=%lld Lq=%lld Lk=%lld H=%lld d=%lld", (long long)k->B, (long long)k->Lq, (long long)k->Lk,
             (long long)k->H, (long long)k->d);
}

/* ---- building a graph ------------------------------------------------------------- */

/* The descriptors of one graph being built, and its first failure: after
 * one, every further step is skipped. */
typedef struct builder {
    cudnnBackendDescriptor_t descs[MAX_DESCS];
    int n;
    cudnnStatus_t status;
    const char *what; /* the tensor or op being built */
    char msg[WHY_SIZE];
} builder;

/* A cuDNN call failed. */
static void fail(builder *b, cudnnStatus_t st, const char *call, const char *arg)
{
    if (b->status != CUDNN_STATUS_SUCCESS)
        return;
    b->status = st;
    char detail[WHY_SIZE];
    status_text(st, detail, sizeof detail);
    snprintf(b->msg, sizeof b->msg, "%s(%s) for %s: %s", call, arg, b->what ? b->what : "the graph", detail);
}

/* vdiff refuses (no cuDNN call failed, so no cuDNN message). */
static void refuse(builder *b, cudnnStatus_t st, const char *why)
{
    if (b->status != CUDNN_STATUS_SUCCESS)
        return;
    b->status = st;
    snprintf(b->msg, sizeof b->msg, "%s: %s", b->what ? b->what : "the graph", why);
}

static bool push(builder *b, cudnnBackendDescriptor_t d)
{
    if (b->n == MAX_DESCS)
        return false;
    b->descs[b->n++] = d;
    return true;
}

static cudnnBackendDescriptor_t create(builder *b, cudnnBackendDescriptorType_t type, const char *type_name)
{
    if (b->status != CUDNN_STATUS_SUCCESS)
        return NULL;
    cudnnBackendDescriptor_t d = NULL;
    cudnnStatus_t st = cudnnBackendCreateDescriptor(type, &d);
    if (st != CUDNN_STATUS_SUCCESS) {
        fail(b, st, "cudnnBackendCreateDescriptor", type_name);
        return NULL;
    }
    if (!push(b, d)) {
        (void)cudnnBackendDestroyDescriptor(d);
        refuse(b, CUDNN_STATUS_INTERNAL_ERROR, "vdiff's descriptor table is full");
        return NULL;
    }
    return d;
}
#define CREATE(b, type) create(b, type, #type)

static void set_attr(builder *b, cudnnBackendDescriptor_t d, cudnnBackendAttributeName_t name,
                     cudnnBackendAttributeType_t type, int64_t count, const void *values, const char *name_text)
{
    if (b->status != CUDNN_STATUS_SUCCESS)
        return;
    cudnnStatus_t st = cudnnBackendSetAttribute(d, name, type, count, values);
    if (st != CUDNN_STATUS_SUCCESS)
        fail(b, st, "cudnnBackendSetAttribute", name_text);
}
#define SET(b, d, name, type, count, values) set_attr(b, d, name, type, count, values, #name)

static void finalize(builder *b, cudnnBackendDescriptor_t d)
{
    if (b->status != CUDNN_STATUS_SUCCESS)
        return;
    cudnnStatus_t st = cudnnBackendFinalize(d);
    if (st != CUDNN_STATUS_SUCCESS)
        fail(b, st, "cudnnBackendFinalize", "");
}

/* A 4-d tensor; 16-byte alignment as the frontend declares by default (the
 * scratch is 256-byte aligned). */
static cudnnBackendDescriptor_t tensor(builder *b, const char *name, int64_t uid, cudnnDataType_t type,
                                       const int64_t dims[4], const int64_t strides[4], bool is_virtual, bool by_value)
{
    b->what = name;
    const int64_t alignment = 16;
    cudnnBackendDescriptor_t t = CREATE(b, CUDNN_BACKEND_TENSOR_DESCRIPTOR);
    SET(b, t, CUDNN_ATTR_TENSOR_DATA_TYPE, CUDNN_TYPE_DATA_TYPE, 1, &type);
    SET(b, t, CUDNN_ATTR_TENSOR_DIMENSIONS, CUDNN_TYPE_INT64, 4, dims);
    SET(b, t, CUDNN_ATTR_TENSOR_STRIDES, CUDNN_TYPE_INT64, 4, strides);
    SET(b, t, CUDNN_ATTR_TENSOR_UNIQUE_ID, CUDNN_TYPE_INT64, 1, &uid);
    SET(b, t, CUDNN_ATTR_TENSOR_BYTE_ALIGNMENT, CUDNN_TYPE_INT64, 1, &alignment);
    if (is_virtual)
        SET(b, t, CUDNN_ATTR_TENSOR_IS_VIRTUAL, CUDNN_TYPE_BOOLEAN, 1, &is_virtual);
    if (by_value)
        SET(b, t, CUDNN_ATTR_TENSOR_IS_BY_VALUE, CUDNN_TYPE_BOOLEAN, 1, &by_value);
    finalize(b, t);
    return t;
}

/* c = a·b, fp32 compute. */
static cudnnBackendDescriptor_t matmul(builder *b, const char *name, cudnnBackendDescriptor_t a,
                                       cudnnBackendDescriptor_t bm, cudnnBackendDescriptor_t c)
{
    b->what = name;
    const cudnnDataType_t compute = CUDNN_DATA_FLOAT;
    cudnnBackendDescriptor_t mm = CREATE(b, CUDNN_BACKEND_MATMUL_DESCRIPTOR);
    SET(b, mm, CUDNN_ATTR_MATMUL_COMP_TYPE, CUDNN_TYPE_DATA_TYPE, 1, &compute);
    finalize(b, mm);
    cudnnBackendDescriptor_t op = CREATE(b, CUDNN_BACKEND_OPERATION_MATMUL_DESCRIPTOR);
    SET(b, op, CUDNN_ATTR_OPERATION_MATMUL_ADESC, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &a);
    SET(b, op, CUDNN_ATTR_OPERATION_MATMUL_BDESC, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &bm);
    SET(b, op, CUDNN_ATTR_OPERATION_MATMUL_CDESC, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &c);
    SET(b, op, CUDNN_ATTR_OPERATION_MATMUL_DESC, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &mm);
    finalize(b, op);
    return op;
}

/* y = mode(x[, bx]) (bx NULL for a unary mode), fp32 math, alphas 1. */
static cudnnBackendDescriptor_t pointwise(builder *b, const char *name, cudnnPointwiseMode_t mode,
                                          cudnnBackendDescriptor_t x, cudnnBackendDescriptor_t bx,
                                          cudnnBackendDescriptor_t y)
{
    b->what = name;
    const cudnnDataType_t math = CUDNN_DATA_FLOAT;
    const float alpha = 1.0f;
    cudnnBackendDescriptor_t pw = CREATE(b, CUDNN_BACKEND_POINTWISE_DESCRIPTOR);
    SET(b, pw, CUDNN_ATTR_POINTWISE_MODE, CUDNN_TYPE_POINTWISE_MODE, 1, &mode);
    SET(b, pw, CUDNN_ATTR_POINTWISE_MATH_PREC, CUDNN_TYPE_DATA_TYPE, 1, &math);
    finalize(b, pw);
    cudnnBackendDescriptor_t op = CREATE(b, CUDNN_BACKEND_OPERATION_POINTWISE_DESCRIPTOR);
    SET(b, op, CUDNN_ATTR_OPERATION_POINTWISE_PW_DESCRIPTOR, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &pw);
    SET(b, op, CUDNN_ATTR_OPERATION_POINTWISE_XDESC, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &x);
    SET(b, op, CUDNN_ATTR_OPERATION_POINTWISE_YDESC, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &y);
    if (bx)
        SET(b, op, CUDNN_ATTR_OPERATION_POINTWISE_BDESC, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &bx);
    SET(b, op, CUDNN_ATTR_OPERATION_POINTWISE_ALPHA1, CUDNN_TYPE_FLOAT, 1, &alpha);
    SET(b, op, CUDNN_ATTR_OPERATION_POINTWISE_ALPHA2, CUDNN_TYPE_FLOAT, 1, &alpha);
    finalize(b, op);
    return op;
}

/* y = reduction of x over the dims where y has size 1, fp32 compute. */
static cudnnBackendDescriptor_t reduction(builder *b, const char *name, cudnnReduceTensorOp_t mode,
                                          cudnnBackendDescriptor_t x, cudnnBackendDescriptor_t y)
{
    b->what = name;
    const cudnnDataType_t compute = CUDNN_DATA_FLOAT;
    cudnnBackendDescriptor_t rd = CREATE(b, CUDNN_BACKEND_REDUCTION_DESCRIPTOR);
    SET(b, rd, CUDNN_ATTR_REDUCTION_COMP_TYPE, CUDNN_TYPE_DATA_TYPE, 1, &compute);
    SET(b, rd, CUDNN_ATTR_REDUCTION_OPERATOR, CUDNN_TYPE_REDUCTION_OPERATOR_TYPE, 1, &mode);
#if CUDNN_VERSION >= 91100
    if (cudnnGetVersion() >= 91100) { /* the frontend states the default explicitly from 9.11 on */
        const bool deterministic = false;
        SET(b, rd, CUDNN_ATTR_REDUCTION_IS_DETERMINISTIC, CUDNN_TYPE_BOOLEAN, 1, &deterministic);
    }
#endif
    finalize(b, rd);
    cudnnBackendDescriptor_t op = CREATE(b, CUDNN_BACKEND_OPERATION_REDUCTION_DESCRIPTOR);
    SET(b, op, CUDNN_ATTR_OPERATION_REDUCTION_DESC, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &rd);
    SET(b, op, CUDNN_ATTR_OPERATION_REDUCTION_XDESC, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &x);
    SET(b, op, CUDNN_ATTR_OPERATION_REDUCTION_YDESC, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &y);
    finalize(b, op);
    return op;
}

static cudnnBackendDescriptor_t op_graph(builder *b, cudnnHandle_t handle, cudnnBackendDescriptor_t *ops, int n)
{
    b->what = "the operation graph";
    cudnnBackendDescriptor_t g = CREATE(b, CUDNN_BACKEND_OPERATIONGRAPH_DESCRIPTOR);
    SET(b, g, CUDNN_ATTR_OPERATIONGRAPH_OPS, CUDNN_TYPE_BACKEND_DESCRIPTOR, n, ops);
    /* optional from cuDNN 9.8 (deprecated there), required before */
    SET(b, g, CUDNN_ATTR_OPERATIONGRAPH_HANDLE, CUDNN_TYPE_HANDLE, 1, &handle);
    finalize(b, g);
    return g;
}

/* The layouts of vdiff's [B, L, H, d] tensors as [b, h, s, d]. */
typedef struct layouts {
    int64_t q_dims[4], q_strides[4];   /* Q and O */
    int64_t kv_dims[4], kv_strides[4]; /* K and V */
    int64_t kt_dims[4], kt_strides[4]; /* K as Kᵀ */
} layouts;

static layouts layouts_of(const plan_key *k)
{
    const int64_t B = k->B, Lq = k->Lq, Lk = k->Lk, H = k->H, d = k->d;
    layouts l = {
        .q_dims = {B, H, Lq, d},  .q_strides = {Lq * H * d, d, H * d, 1},
        .kv_dims = {B, H, Lk, d}, .kv_strides = {Lk * H * d, d, H * d, 1},
        .kt_dims = {B, H, d, Lk}, .kt_strides = {Lk * H * d, d, 1, H * d},
    };
    return l;
}

static cudnnBackendDescriptor_t composite_graph(builder *b, cudnnHandle_t handle, const plan_key *k)
{
    const int64_t B = k->B, Lq = k->Lq, Lk = k->Lk, H = k->H;
    const layouts l = layouts_of(k);
    /* the frontend's dims and strides for the virtual tensors */
    const int64_t s_dims[4] = {B, H, Lq, Lk}, s_strides[4] = {H * Lq * Lk, Lq * Lk, Lk, 1};
    const int64_t r_dims[4] = {B, H, Lq, 1}, r_strides[4] = {H * Lq, Lq, 1, 1};
    const int64_t one[4] = {1, 1, 1, 1};
    const cudnnDataType_t bf16 = CUDNN_DATA_BFLOAT16, f32 = CUDNN_DATA_FLOAT;

    cudnnBackendDescriptor_t Q = tensor(b, "tensor Q", UID_Q, bf16, l.q_dims, l.q_strides, false, false);
    cudnnBackendDescriptor_t KT = tensor(b, "tensor K", UID_K, bf16, l.kt_dims, l.kt_strides, false, false);
    cudnnBackendDescriptor_t V = tensor(b, "tensor V", UID_V, bf16, l.kv_dims, l.kv_strides, false, false);
    cudnnBackendDescriptor_t O = tensor(b, "tensor O", UID_O, bf16, l.q_dims, l.q_strides, false, false);
    cudnnBackendDescriptor_t SC = tensor(b, "the scale", UID_SCALE, f32, one, one, false, true);
    cudnnBackendDescriptor_t S = tensor(b, "tensor S", UID_S, f32, s_dims, s_strides, true, false);
    cudnnBackendDescriptor_t S2 = tensor(b, "tensor S2", UID_S2, f32, s_dims, s_strides, true, false);
    cudnnBackendDescriptor_t M = tensor(b, "tensor M", UID_MAX, f32, r_dims, r_strides, true, false);
    cudnnBackendDescriptor_t D = tensor(b, "tensor S2-M", UID_SUB, f32, s_dims, s_strides, true, false);
    cudnnBackendDescriptor_t E = tensor(b, "tensor E", UID_EXP, f32, s_dims, s_strides, true, false);
    cudnnBackendDescriptor_t Z = tensor(b, "tensor Z", UID_SUM, f32, r_dims, r_strides, true, false);
    cudnnBackendDescriptor_t LZ = tensor(b, "tensor log Z", UID_LOG, f32, r_dims, r_strides, true, false);
    cudnnBackendDescriptor_t LSE = tensor(b, "tensor LSE", UID_LSE, f32, r_dims, r_strides, true, false);
    cudnnBackendDescriptor_t P = tensor(b, "tensor P", UID_P, bf16, s_dims, s_strides, true, false);

    cudnnBackendDescriptor_t ops[10];
    ops[0] = matmul(b, "matmul Q·Kᵀ", Q, KT, S);
    ops[1] = pointwise(b, "pointwise MUL (scale)", CUDNN_POINTWISE_MUL, S, SC, S2);
    ops[2] = reduction(b, "reduction MAX", CUDNN_REDUCE_TENSOR_MAX, S2, M);
    ops[3] = pointwise(b, "pointwise SUB", CUDNN_POINTWISE_SUB, S2, M, D);
    ops[4] = pointwise(b, "pointwise EXP", CUDNN_POINTWISE_EXP, D, NULL, E);
    ops[5] = reduction(b, "reduction ADD", CUDNN_REDUCE_TENSOR_ADD, E, Z);
    ops[6] = pointwise(b, "pointwise LOG", CUDNN_POINTWISE_LOG, Z, NULL, LZ);
    ops[7] = pointwise(b, "pointwise ADD", CUDNN_POINTWISE_ADD, M, LZ, LSE);
    ops[8] = pointwise(b, "pointwise DIV", CUDNN_POINTWISE_DIV, E, Z, P);
    ops[9] = matmul(b, "matmul P·V", P, V, O);
    return op_graph(b, handle, ops, 10);
}

/* The single SDPA forward operation (cuDNN 9.13.1+): K as it is, no stats. */
static cudnnBackendDescriptor_t unified_graph(builder *b, cudnnHandle_t handle, const plan_key *k)
{
    b->what = "the SDPA_FWD operation";
#if CUDNN_VERSION >= 91301
    if (cudnnGetVersion() < 91301) {
        refuse(b, CUDNN_STATUS_NOT_SUPPORTED, "it needs cuDNN 9.13.1 or newer");
        return NULL;
    }
    const layouts l = layouts_of(k);
    const int64_t one[4] = {1, 1, 1, 1};
    const cudnnDataType_t bf16 = CUDNN_DATA_BFLOAT16, f32 = CUDNN_DATA_FLOAT;
    cudnnBackendDescriptor_t Q = tensor(b, "tensor Q", UID_Q, bf16, l.q_dims, l.q_strides, false, false);
    cudnnBackendDescriptor_t K = tensor(b, "tensor K", UID_K, bf16, l.kv_dims, l.kv_strides, false, false);
    cudnnBackendDescriptor_t V = tensor(b, "tensor V", UID_V, bf16, l.kv_dims, l.kv_strides, false, false);
    cudnnBackendDescriptor_t O = tensor(b, "tensor O", UID_O, bf16, l.q_dims, l.q_strides, false, false);
    cudnnBackendDescriptor_t SC = tensor(b, "the scale", UID_SCALE, f32, one, one, false, true);
    b->what = "the SDPA_FWD operation";
    cudnnBackendDescriptor_t op = CREATE(b, CUDNN_BACKEND_OPERATION_SDPA_FWD_DESCRIPTOR);
    SET(b, op, CUDNN_ATTR_OPERATION_SDPA_FWD_QDESC, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &Q);
    SET(b, op, CUDNN_ATTR_OPERATION_SDPA_FWD_KDESC, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &K);
    SET(b, op, CUDNN_ATTR_OPERATION_SDPA_FWD_VDESC, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &V);
    SET(b, op, CUDNN_ATTR_OPERATION_SDPA_FWD_ODESC, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &O);
    SET(b, op, CUDNN_ATTR_OPERATION_SDPA_FWD_SCALEDESC, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &SC);
    finalize(b, op);
    return op_graph(b, handle, &op, 1);
#else
    (void)handle, (void)k;
    refuse(b, CUDNN_STATUS_NOT_SUPPORTED, "vdiff was built against a cuDNN older than 9.13.1");
    return NULL;
#endif
}

/* The engine's global index, for debug messages (-1 if unknown). */
static int64_t engine_index(cudnnBackendDescriptor_t cfg)
{
    cudnnBackendDescriptor_t engine = NULL;
    int64_t n = 0, index = -1;
    if (cudnnBackendCreateDescriptor(CUDNN_BACKEND_ENGINE_DESCRIPTOR, &engine) != CUDNN_STATUS_SUCCESS)
        return -1;
    if (cudnnBackendGetAttribute(cfg, CUDNN_ATTR_ENGINECFG_ENGINE, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &n, &engine) !=
            CUDNN_STATUS_SUCCESS ||
        cudnnBackendGetAttribute(engine, CUDNN_ATTR_ENGINE_GLOBAL_INDEX, CUDNN_TYPE_INT64, 1, &n, &index) !=
            CUDNN_STATUS_SUCCESS)
        index = -1;
    (void)cudnnBackendDestroyDescriptor(engine);
    return index;
}

/* The first engine config (heuristics mode A, then the fallback list) whose
 * execution plan finalizes: the config and the plan join b's descriptors.
 * NULL (b failed) when none does. */
static cudnnBackendDescriptor_t choose_plan(builder *b, cudnnBackendDescriptor_t graph, int64_t *workspace)
{
    if (b->status != CUDNN_STATUS_SUCCESS)
        return NULL;
    if (b->n + 2 > MAX_DESCS) {
        b->what = "the plan";
        refuse(b, CUDNN_STATUS_INTERNAL_ERROR, "vdiff's descriptor table is full");
        return NULL;
    }
    static const cudnnBackendHeurMode_t modes[2] = {CUDNN_HEUR_MODE_A, CUDNN_HEUR_MODE_FALLBACK};
    static const char *const mode_names[2] = {"A", "fallback"};
    char note[2][WHY_SIZE];
    cudnnBackendDescriptor_t plan = NULL;
    for (int m = 0; m < 2 && !plan; m++) {
        snprintf(note[m], sizeof note[m], "no engine config");
        cudnnBackendDescriptor_t heur = NULL, *cfgs = NULL;
        int64_t count = 0, made = 0, got = 0;
        const char *call = "cudnnBackendCreateDescriptor(CUDNN_BACKEND_ENGINEHEUR_DESCRIPTOR)";
        cudnnStatus_t st = cudnnBackendCreateDescriptor(CUDNN_BACKEND_ENGINEHEUR_DESCRIPTOR, &heur);
        if (st == CUDNN_STATUS_SUCCESS) {
            call = "cudnnBackendSetAttribute(CUDNN_ATTR_ENGINEHEUR_OPERATION_GRAPH)";
            st = cudnnBackendSetAttribute(heur, CUDNN_ATTR_ENGINEHEUR_OPERATION_GRAPH, CUDNN_TYPE_BACKEND_DESCRIPTOR,
                                          1, &graph);
        }
        if (st == CUDNN_STATUS_SUCCESS) {
            call = "cudnnBackendSetAttribute(CUDNN_ATTR_ENGINEHEUR_MODE)";
            st = cudnnBackendSetAttribute(heur, CUDNN_ATTR_ENGINEHEUR_MODE, CUDNN_TYPE_HEUR_MODE, 1, &modes[m]);
        }
        if (st == CUDNN_STATUS_SUCCESS) {
            call = "cudnnBackendFinalize(CUDNN_BACKEND_ENGINEHEUR_DESCRIPTOR)";
            st = cudnnBackendFinalize(heur);
        }
        if (st == CUDNN_STATUS_SUCCESS) {
            call = "cudnnBackendGetAttribute(CUDNN_ATTR_ENGINEHEUR_RESULTS) (count)";
            st = cudnnBackendGetAttribute(heur, CUDNN_ATTR_ENGINEHEUR_RESULTS, CUDNN_TYPE_BACKEND_DESCRIPTOR, 0,
                                          &count, NULL);
        }
        if (st == CUDNN_STATUS_SUCCESS && count > 0) {
            cfgs = calloc((size_t)count, sizeof *cfgs);
            call = "allocating the engine configs";
            st = cfgs ? CUDNN_STATUS_SUCCESS : CUDNN_STATUS_INTERNAL_ERROR_HOST_ALLOCATION_FAILED;
            for (; st == CUDNN_STATUS_SUCCESS && made < count; made++) {
                call = "cudnnBackendCreateDescriptor(CUDNN_BACKEND_ENGINECFG_DESCRIPTOR)";
                st = cudnnBackendCreateDescriptor(CUDNN_BACKEND_ENGINECFG_DESCRIPTOR, &cfgs[made]);
                if (st != CUDNN_STATUS_SUCCESS)
                    cfgs[made] = NULL;
            }
            if (st == CUDNN_STATUS_SUCCESS) {
                call = "cudnnBackendGetAttribute(CUDNN_ATTR_ENGINEHEUR_RESULTS)";
                st = cudnnBackendGetAttribute(heur, CUDNN_ATTR_ENGINEHEUR_RESULTS, CUDNN_TYPE_BACKEND_DESCRIPTOR,
                                              count, &got, cfgs);
            }
        }
        if (st != CUDNN_STATUS_SUCCESS) {
            char detail[WHY_SIZE];
            status_text(st, detail, sizeof detail);
            snprintf(note[m], sizeof note[m], "%s: %s", call, detail);
        } else if (count > 0 && got == 0) { /* cuDNN checked them and dropped them all */
            char last[400];
            last_message(last, sizeof last);
            snprintf(note[m], sizeof note[m], "none of %lld engine configs is viable: %s", (long long)count, last);
        }
        for (int64_t i = 0; st == CUDNN_STATUS_SUCCESS && i < got && i < count && !plan; i++) {
            cudnnBackendDescriptor_t p = NULL;
            int64_t n = 0, ws = -1;
            call = "cudnnBackendCreateDescriptor(CUDNN_BACKEND_EXECUTION_PLAN_DESCRIPTOR)";
            cudnnStatus_t ps = cudnnBackendCreateDescriptor(CUDNN_BACKEND_EXECUTION_PLAN_DESCRIPTOR, &p);
            if (ps == CUDNN_STATUS_SUCCESS) {
                call = "cudnnBackendSetAttribute(CUDNN_ATTR_EXECUTION_PLAN_ENGINE_CONFIG)";
                ps = cudnnBackendSetAttribute(p, CUDNN_ATTR_EXECUTION_PLAN_ENGINE_CONFIG,
                                              CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &cfgs[i]);
            }
            if (ps == CUDNN_STATUS_SUCCESS) {
                call = "cudnnBackendFinalize(CUDNN_BACKEND_EXECUTION_PLAN_DESCRIPTOR)";
                ps = cudnnBackendFinalize(p);
            }
            if (ps == CUDNN_STATUS_SUCCESS) {
                call = "cudnnBackendGetAttribute(CUDNN_ATTR_EXECUTION_PLAN_WORKSPACE_SIZE)";
                ps = cudnnBackendGetAttribute(p, CUDNN_ATTR_EXECUTION_PLAN_WORKSPACE_SIZE, CUDNN_TYPE_INT64, 1, &n,
                                              &ws);
                if (ps == CUDNN_STATUS_SUCCESS && ws < 0)
                    ps = CUDNN_STATUS_INTERNAL_ERROR_UNEXPECTED_VALUE;
            }
            if (ps == CUDNN_STATUS_SUCCESS) {
                if (debug_on())
                    debug("heuristics mode %s, config %lld of %lld: engine %lld, workspace %lld bytes",
                          mode_names[m], (long long)i, (long long)got, (long long)engine_index(cfgs[i]),
                          (long long)ws);
                push(b, cfgs[i]); /* room checked above */
                push(b, p);
                cfgs[i] = NULL;
                plan = p;
                *workspace = ws;
            } else {
                char detail[WHY_SIZE];
                status_text(ps, detail, sizeof detail);
                snprintf(note[m], sizeof note[m], "%lld config(s), the last failing at %s: %s", (long long)got, call,
                         detail);
                if (p)
                    (void)cudnnBackendDestroyDescriptor(p);
            }
        }
        for (int64_t i = 0; i < made; i++)
            if (cfgs[i])
                (void)cudnnBackendDestroyDescriptor(cfgs[i]);
        free(cfgs);
        if (heur)
            (void)cudnnBackendDestroyDescriptor(heur);
    }
    if (!plan) {
        b->status = CUDNN_STATUS_NOT_SUPPORTED;
        snprintf(b->msg, sizeof b->msg, "no engine: heuristics mode A: %s; fallback: %s", note[0], note[1]);
    }
    return plan;
}

/* Build e's plan for e->key: the preferred graph, then the other. */
static void build_entry(device_state *ds, plan_entry *e)
{
    const graph_kind order[2] = {e->key.prefer, e->key.prefer == GRAPH_COMPOSITE ? GRAPH_UNIFIED : GRAPH_COMPOSITE};
    char notes[2][WHY_SIZE], shapes[160];
    key_text(&e->key, shapes, sizeof shapes);
    for (int i = 0; i < 2; i++) {
        builder *b = calloc(1, sizeof *b); /* status 0 = CUDNN_STATUS_SUCCESS */
        if (!b) {
            snprintf(notes[i], sizeof notes[i], "%s: out of host memory", graph_names[order[i]]);
            continue;
        }
        cudnnBackendDescriptor_t graph = order[i] == GRAPH_COMPOSITE ? composite_graph(b, ds->handle, &e->key)
                                                                     : unified_graph(b, ds->handle, &e->key);
        int64_t workspace = 0;
        cudnnBackendDescriptor_t plan = choose_plan(b, graph, &workspace);
        if (b->status == CUDNN_STATUS_SUCCESS && plan) {
            e->plan = plan;
            e->workspace = workspace;
            e->kind = order[i];
            e->ndescs = b->n;
            memcpy(e->descs, b->descs, (size_t)b->n * sizeof b->descs[0]);
            free(b);
            debug("%s: plan from the %s, workspace %lld bytes", shapes, graph_names[order[i]], (long long)workspace);
            return;
        }
        snprintf(notes[i], sizeof notes[i], "%s: %s", graph_names[order[i]], b->msg);
        destroy_descs(b->descs, b->n);
        free(b);
    }
    snprintf(e->why, sizeof e->why, "cuDNN has no plan for %s (%s; %s)", shapes, notes[0], notes[1]);
    debug("%s; the other kernels run these shapes", e->why);
}

/* ---- devices and the plan cache ------------------------------------------------------- */

/* be's device state with a handle (lock held), or NULL with *why. */
static device_state *state_of(vd_backend *be, const char **why)
{
    cuda_ctx *c = cuda_ctx_of(be);
    if (c->device < 0 || c->device >= MAX_DEVICES) {
        *why = "the device index is beyond the cuDNN path's table (64 devices)";
        return NULL;
    }
    device_state *ds = devices[c->device];
    if (!ds) {
        ds = calloc(1, sizeof *ds);
        if (!ds) {
            *why = "out of host memory";
            return NULL;
        }
        devices[c->device] = ds;
    }
    if (!ds->tried) {
        ds->tried = true;
        const size_t version = cudnnGetVersion();
        if (version / 10000 != CUDNN_MAJOR) {
            snprintf(ds->why, sizeof ds->why, "the cuDNN library loaded is version %zu, vdiff was built for %d.x",
                     version, CUDNN_MAJOR);
        } else if (version == 91000 || version == 91001) {
            snprintf(ds->why, sizeof ds->why,
                     "cuDNN %zu has known SDPA bugs (NVIDIA's frontend refuses 9.10.0 and 9.10.1): use 9.10.2 or newer",
                     version);
        } else if (c->cc_major < 8) {
            snprintf(ds->why, sizeof ds->why, "it needs compute capability 8.0 or newer (this GPU has %d.%d)",
                     c->cc_major, c->cc_minor);
        } else {
            cudnnHandle_t h = NULL;
            cudnnStatus_t st = cudnnCreate(&h); /* on the current device: the caller made be's current */
            if (st == CUDNN_STATUS_SUCCESS) {
                ds->handle = h;
                debug("%s: cuDNN %zu (built against %d.%d.%d), compute capability %d.%d", be->name, version,
                      CUDNN_MAJOR, CUDNN_MINOR, CUDNN_PATCHLEVEL, c->cc_major, c->cc_minor);
            } else {
                char detail[WHY_SIZE - 64];
                status_text(st, detail, sizeof detail);
                snprintf(ds->why, sizeof ds->why, "cudnnCreate failed: %s", detail);
            }
        }
        if (!ds->handle)
            debug("%s: cuDNN cannot run: %s", be->name, ds->why);
    }
    if (!ds->handle) {
        *why = keep_why(ds->why);
        return NULL;
    }
    return ds;
}

static bool same_key(const plan_key *a, const plan_key *b)
{
    return a->B == b->B && a->Lq == b->Lq && a->Lk == b->Lk && a->H == b->H && a->d == b->d && a->prefer == b->prefer;
}

static void evict(plan_entry *e)
{
    if (e->plan)
        (void)cudaDeviceSynchronize(); /* kernels of the plan may still be queued (rare: the cache is full) */
    destroy_descs(e->descs, e->ndescs);
    memset(e, 0, sizeof *e);
}

/* The cache entry for k, built on a miss (lock held; be's device current). */
static plan_entry *lookup(device_state *ds, const plan_key *k)
{
    for (int i = 0; i < CUDA_CUDNN_PLAN_CACHE; i++) {
        plan_entry *e = &ds->plans[i];
        if (e->used && same_key(&e->key, k)) {
            e->last_use = ++ds->clock;
            return e;
        }
    }
    /* a free entry, else the least recently used one */
    plan_entry *slot = NULL;
    for (int i = 0; i < CUDA_CUDNN_PLAN_CACHE; i++) {
        plan_entry *e = &ds->plans[i];
        if (!e->used) {
            slot = e;
            break;
        }
        if (!slot || e->last_use < slot->last_use)
            slot = e;
    }
    if (slot->used)
        evict(slot);
    slot->used = true;
    slot->key = *k;
    slot->last_use = ++ds->clock;
    build_entry(ds, slot);
    return slot;
}

static graph_kind preferred_graph(void)
{
    const char *s = getenv("VD_CUDNN_SDPA");
    return s && strcmp(s, "unified") == 0 ? GRAPH_UNIFIED : GRAPH_COMPOSITE;
}

/* ---- the op ------------------------------------------------------------------------------ */

static size_t align256(size_t n) { return (n + 255) & ~(size_t)255; }

/* Run e's plan on the bf16 buffers (lock held). */
static vd_status execute(vd_backend *be, cudnnHandle_t handle, const plan_entry *e, void *q16, void *k16, void *v16,
                         void *o16, void *workspace, float scale, const vd_tensor *q, const vd_tensor *k,
                         const vd_tensor *v)
{
    _Alignas(16) float scale_value = scale; /* by value (host memory): read during cudnnBackendExecute */
    int64_t uids[5] = {UID_Q, UID_K, UID_V, UID_O, UID_SCALE};
    void *ptrs[5] = {q16, k16, v16, o16, &scale_value};
    cudnnBackendDescriptor_t pack = NULL;
    const char *call = "cudnnSetStream";
    cudnnStatus_t st = cudnnSetStream(handle, cuda_stream(be));
    if (st == CUDNN_STATUS_SUCCESS) {
        call = "cudnnBackendCreateDescriptor(CUDNN_BACKEND_VARIANT_PACK_DESCRIPTOR)";
        st = cudnnBackendCreateDescriptor(CUDNN_BACKEND_VARIANT_PACK_DESCRIPTOR, &pack);
    }
    if (st == CUDNN_STATUS_SUCCESS) {
        call = "cudnnBackendSetAttribute(CUDNN_ATTR_VARIANT_PACK_UNIQUE_IDS)";
        st = cudnnBackendSetAttribute(pack, CUDNN_ATTR_VARIANT_PACK_UNIQUE_IDS, CUDNN_TYPE_INT64, 5, uids);
    }
    if (st == CUDNN_STATUS_SUCCESS) {
        call = "cudnnBackendSetAttribute(CUDNN_ATTR_VARIANT_PACK_DATA_POINTERS)";
        st = cudnnBackendSetAttribute(pack, CUDNN_ATTR_VARIANT_PACK_DATA_POINTERS, CUDNN_TYPE_VOID_PTR, 5, ptrs);
    }
    if (st == CUDNN_STATUS_SUCCESS) {
        call = "cudnnBackendSetAttribute(CUDNN_ATTR_VARIANT_PACK_WORKSPACE)";
        st = cudnnBackendSetAttribute(pack, CUDNN_ATTR_VARIANT_PACK_WORKSPACE, CUDNN_TYPE_VOID_PTR, 1, &workspace);
    }
    if (st == CUDNN_STATUS_SUCCESS) {
        call = "cudnnBackendFinalize(CUDNN_BACKEND_VARIANT_PACK_DESCRIPTOR)";
        st = cudnnBackendFinalize(pack);
    }
    if (st == CUDNN_STATUS_SUCCESS) {
        call = "cudnnBackendExecute";
        st = cudnnBackendExecute(handle, e->plan, pack);
    }
    char detail[WHY_SIZE] = "";
    if (st != CUDNN_STATUS_SUCCESS)
        status_text(st, detail, sizeof detail); /* before anything else can replace cuDNN's last message */
    if (pack)
        (void)cudnnBackendDestroyDescriptor(pack);
    if (st == CUDNN_STATUS_SUCCESS)
        return VD_OK;
    char dq[200], dk[200], dv[200];
    return vd_error(st == CUDNN_STATUS_INTERNAL_ERROR_DEVICE_ALLOCATION_FAILED ? VD_ERR_OUT_OF_MEMORY : VD_ERR_DEVICE,
                    "%s: attention (cuDNN fused flash attention, %s): %s failed for %s, %s, %s: %s", be->name,
                    graph_names[e->kind], call, cuda_describe("q", q, dq, sizeof dq),
                    cuda_describe("k", k, dk, sizeof dk), cuda_describe("v", v, dv, sizeof dv), detail);
}

vd_status cuda_attention_cudnn(vd_backend *be, const vd_tensor *q, const vd_tensor *k, const vd_tensor *v,
                               float scale, vd_tensor *out, const char **why)
{
    cuda_use_device(be);
    const int64_t B = q->shape[0], Lq = q->shape[1], H = q->shape[2], d = q->shape[3], Lk = k->shape[1];
    *why = NULL;
    if (v->shape[3] != d || (d != 64 && d != 128)) {
        *why = "the cuDNN path handles head sizes d == dv in {64, 128}";
        return VD_ERR_UNSUPPORTED;
    }
    if (B < 1 || Lq < 1 || Lk < 1 || H < 1) {
        *why = "the cuDNN path needs at least one batch, head, query and key";
        return VD_ERR_UNSUPPORTED;
    }
    const int64_t nq = B * Lq * H * d, nk = B * Lk * H * d; /* out and v have nq and nk elements too */
    if (nq >= INT32_MAX || nk >= INT32_MAX) {
        *why = "a tensor has 2^31 elements or more (beyond what the cuDNN path trusts cuDNN's indexing with)";
        return VD_ERR_UNSUPPORTED;
    }
    plan_key key = {.B = B, .Lq = Lq, .Lk = Lk, .H = H, .d = d, .prefer = preferred_graph()};

    pthread_mutex_lock(&cache_lock);
    device_state *ds = state_of(be, why);
    if (!ds) {
        pthread_mutex_unlock(&cache_lock);
        return VD_ERR_UNSUPPORTED;
    }
    plan_entry *e = lookup(ds, &key);
    if (!e->plan) {
        *why = keep_why(e->why);
        pthread_mutex_unlock(&cache_lock);
        return VD_ERR_UNSUPPORTED;
    }
    const size_t off_k = align256((size_t)nq * 2), off_v = off_k + align256((size_t)nk * 2);
    const size_t off_o = off_v + align256((size_t)nk * 2), off_ws = off_o + align256((size_t)nq * 2);
    cuda_block *scratch = NULL;
    vd_status s = cuda_pool_alloc(be, off_ws + (size_t)e->workspace,
                                  "cuDNN attention's bf16 copies of q, k, v and of its output", &scratch);
    if (s != VD_OK) {
        pthread_mutex_unlock(&cache_lock);
        if (s == VD_ERR_OUT_OF_MEMORY) {
            *why = "its scratch does not fit in GPU memory";
            debug("B=%lld Lq=%lld Lk=%lld H=%lld d=%lld: %s (%s); fa2 runs it", (long long)B, (long long)Lq,
                  (long long)Lk, (long long)H, (long long)d, *why, vd_last_error());
            return VD_ERR_UNSUPPORTED;
        }
        return s;
    }
    char *base = scratch->ptr;
    cudaStream_t stream = cuda_stream(be);
    int err = vd_cuda_f32_to_bf16(q->data, base, nq, stream);
    if (!err)
        err = vd_cuda_f32_to_bf16(k->data, base + off_k, nk, stream);
    if (!err)
        err = vd_cuda_f32_to_bf16(v->data, base + off_v, nk, stream);
    if (err) {
        pthread_mutex_unlock(&cache_lock);
        cuda_pool_free(be, scratch);
        return cuda_op_result(be, err, "attention (cuDNN path: converting q, k and v to bf16)", "q", q, "k", k, "v",
                              v);
    }
    s = execute(be, ds->handle, e, base, base + off_k, base + off_v, base + off_o,
                e->workspace > 0 ? base + off_ws : NULL, scale, q, k, v);
    pthread_mutex_unlock(&cache_lock);
    if (s == VD_OK)
        err = vd_cuda_bf16_to_f32(base + off_o, out->data, nq, stream);
    cuda_pool_free(be, scratch); /* stream order: whoever gets it next runs after these kernels */
    if (s != VD_OK)
        return s;
    return cuda_op_result(be, err, "attention (cuDNN fused flash attention)", "q", q, "k", k, "v", v);
}

bool cuda_attention_cudnn_available(vd_backend *be, const char **why)
{
    const char *w = NULL;
    cuda_use_device(be);
    pthread_mutex_lock(&cache_lock);
    const bool ok = state_of(be, &w) != NULL;
    pthread_mutex_unlock(&cache_lock);
    if (why)
        *why = w;
    return ok;
}

int cuda_attention_cudnn_cached(vd_backend *be)
{
    const int device = cuda_ctx_of(be)->device;
    int n = 0;
    pthread_mutex_lock(&cache_lock);
    const device_state *ds = device >= 0 && device < MAX_DEVICES ? devices[device] : NULL;
    for (int i = 0; ds && i < CUDA_CUDNN_PLAN_CACHE; i++)
        n += ds->plans[i].used;
    pthread_mutex_unlock(&cache_lock);
    return n;
}

#else /* cuDNN before 9: the path is off */

vd_status cuda_attention_cudnn(vd_backend *be, const vd_tensor *q, const vd_tensor *k, const vd_tensor *v,
                               float scale, vd_tensor *out, const char **why)
{
    (void)be, (void)q, (void)k, (void)v, (void)scale, (void)out;
    *why = "vdiff was built against a cuDNN older than 9";
    return VD_ERR_UNSUPPORTED;
}

bool cuda_attention_cudnn_available(vd_backend *be, const char **why)
{
    (void)be;
    if (why)
        *why = "vdiff was built against a cuDNN older than 9";
    return false;
}

int cuda_attention_cudnn_cached(vd_backend *be)
{
    (void)be;
    return 0;
}

#endif

/* fp8 GEMMs for e4m3 weights: y[M,N] = x[M,K] · (w[N,K] · w.scale)ᵀ + bias
 * as cuBLASLt fp8 matmuls (e4m3 × e4m3, fp32 accumulation, f32 output).
 * Off unless the backend was opened with fp8_gemm (or VD_FP8_GEMM=1): the
 * activations are rounded to e4m3 too, which the bf16 path does not do.
 *
 * - The weight is used in place, in its stored e4m3 bytes.  cuBLASLt reads
 *   scales on the device, so w.scale is filled into a small device buffer
 *   once per call.
 * - x is quantised on the GPU in chunks of rows (kernels/fp8_quant.cu), its
 *   scales computed there too (no host synchronisation):
 *     sm_90: one scale per row, through "outer vector" scaling (A's scale a
 *            vector over N filled with w.scale, B's a vector over the
 *            chunk's rows; the cuBLAS docs list this mode for 9.0 only);
 *     sm_89, sm_100+ (or VD_FP8_GEMM=tensor): one scale per chunk, the
 *            scalar scale mode.
 *   If cuBLASLt has no per-row algorithm the chunk runs per tensor; if a
 *   matmul refuses per-row scaling, the chunk is redone per tensor and the
 *   backend stops trying per row.
 * - Layout as in cuda_matmul.c: yᵀ (N × m, ld N) = w (K × N, transposed) ·
 *   xᵀ (K × m) — the "TN" layout fp8 requires.  fp8 also wants 16-byte
 *   aligned matrices and dimensions, so K % 16 == 0, N % 16 == 0 and
 *   16-byte aligned w and y are required; a row count the kernels refuse is
 *   rounded down to a multiple of 16.  What is declined is left to the bf16
 *   path (still correct): the whole call, or the last few rows.
 * - The bias: cuBLASLt's bias epilogue, whose bias is bf16 for fp8 inputs
 *   with f32 output (the bias is rounded to bf16 once per call, an error
 *   far below the activations' fp8 rounding); where no algorithm takes the
 *   epilogue, a kernel adds the f32 bias.
 * - VD_FP8_GEMM=fast: cuBLASLt's fast fp8 accumulation.
 * - Descriptors and the heuristic are made per chunk shape (one or two per
 *   call): tens of microseconds against milliseconds of GEMM at the DiT's
 *   sizes, so they are not cached. */
#include <stdio.h>
#include <string.h>

#include "backend/cuda/cuda_internal.h"
#include "core/error.h"
#include "dequant.h"
#include "elementwise.h"
#include "fp8_quant.h"

/* e4m3 bytes of x per chunk (and the same bound as the bf16 path). */
#define X_CHUNK_BYTES ((int64_t)512 << 20)

typedef enum scale_mode { SCALE_PER_ROW, SCALE_PER_TENSOR } scale_mode;

typedef struct fp8_plan {
    cublasLtMatmulDesc_t desc;
    cublasLtMatrixLayout_t la, lb, ld;
    cublasLtMatmulPreference_t pref;
    cublasLtMatmulHeuristicResult_t heur;
    bool found;          /* heur holds an algorithm */
    bool bias_epilogue;  /* it adds the bias */
    scale_mode mode;
    int m;               /* rows of the chunk it was made for */
} fp8_plan;

static void plan_destroy(fp8_plan *p)
{
    if (p->pref)
        cublasLtMatmulPreferenceDestroy(p->pref);
    if (p->ld)
        cublasLtMatrixLayoutDestroy(p->ld);
    if (p->lb)
        cublasLtMatrixLayoutDestroy(p->lb);
    if (p->la)
        cublasLtMatrixLayoutDestroy(p->la);
    if (p->desc)
        cublasLtMatmulDescDestroy(p->desc);
    memset(p, 0, sizeof *p);
}

/* Statuses by which cuBLASLt declines a combination (rather than fails). */
static bool refused(cublasStatus_t st)
{
    return st == CUBLAS_STATUS_INVALID_VALUE || st == CUBLAS_STATUS_NOT_SUPPORTED ||
           st == CUBLAS_STATUS_ARCH_MISMATCH;
}

/* The matmul descriptor: TN, fp32 compute and scales, the scale pointers
 * and modes, and the bias epilogue when bias16 is given. */
static cublasStatus_t desc_create(const cuda_ctx *c, scale_mode mode, const float *wscale, const float *xscale,
                                  const void *bias16, cublasLtMatmulDesc_t *out)
{
    cublasLtMatmulDesc_t d = NULL;
    const cublasOperation_t ta = CUBLAS_OP_T, tb = CUBLAS_OP_N;
    cublasStatus_t st = cublasLtMatmulDescCreate(&d, CUBLAS_COMPUTE_32F, CUDA_R_32F);
    if (st == CUBLAS_STATUS_SUCCESS)
        st = cublasLtMatmulDescSetAttribute(d, CUBLASLT_MATMUL_DESC_TRANSA, &ta, sizeof ta);
    if (st == CUBLAS_STATUS_SUCCESS)
        st = cublasLtMatmulDescSetAttribute(d, CUBLASLT_MATMUL_DESC_TRANSB, &tb, sizeof tb);
    if (st == CUBLAS_STATUS_SUCCESS)
        st = cublasLtMatmulDescSetAttribute(d, CUBLASLT_MATMUL_DESC_A_SCALE_POINTER, &wscale, sizeof wscale);
    if (st == CUBLAS_STATUS_SUCCESS)
        st = cublasLtMatmulDescSetAttribute(d, CUBLASLT_MATMUL_DESC_B_SCALE_POINTER, &xscale, sizeof xscale);
    if (st == CUBLAS_STATUS_SUCCESS && mode == SCALE_PER_ROW) {
        /* the docs allow outer-vector scaling only on A and B together */
        const int32_t vec = CUBLASLT_MATMUL_MATRIX_SCALE_OUTER_VEC_32F;
        st = cublasLtMatmulDescSetAttribute(d, CUBLASLT_MATMUL_DESC_A_SCALE_MODE, &vec, sizeof vec);
        if (st == CUBLAS_STATUS_SUCCESS)
            st = cublasLtMatmulDescSetAttribute(d, CUBLASLT_MATMUL_DESC_B_SCALE_MODE, &vec, sizeof vec);
    }
    if (st == CUBLAS_STATUS_SUCCESS && c->fp8_fast_accum) {
        const int8_t fast = 1;
        st = cublasLtMatmulDescSetAttribute(d, CUBLASLT_MATMUL_DESC_FAST_ACCUM, &fast, sizeof fast);
    }
    const cublasLtEpilogue_t epi = bias16 ? CUBLASLT_EPILOGUE_BIAS : CUBLASLT_EPILOGUE_DEFAULT;
    if (st == CUBLAS_STATUS_SUCCESS)
        st = cublasLtMatmulDescSetAttribute(d, CUBLASLT_MATMUL_DESC_EPILOGUE, &epi, sizeof epi);
    if (st == CUBLAS_STATUS_SUCCESS && bias16) {
        const int32_t bias_type = CUDA_R_16BF;
        st = cublasLtMatmulDescSetAttribute(d, CUBLASLT_MATMUL_DESC_BIAS_DATA_TYPE, &bias_type, sizeof bias_type);
        if (st == CUBLAS_STATUS_SUCCESS)
            st = cublasLtMatmulDescSetAttribute(d, CUBLASLT_MATMUL_DESC_BIAS_POINTER, &bias16, sizeof bias16);
    }
    if (st != CUBLAS_STATUS_SUCCESS && d) {
        cublasLtMatmulDescDestroy(d);
        d = NULL;
    }
    *out = d;
    return st;
}

/* Descriptors and an algorithm for an m-row chunk in `mode`, with the
 * bias epilogue if one takes it (bias16: the bf16 bias or NULL).  wscale /
 * xscale: the device scales (vectors of n and m floats per row, one float
 * per tensor).  A refused attribute or no algorithm leaves p->found false;
 * another failure returns its status and names the call in *call. */
static cublasStatus_t plan_create(const cuda_ctx *c, scale_mode mode, int n, int m, int K, const float *wscale,
                                  const float *xscale, const void *bias16, fp8_plan *p, const char **call)
{
    memset(p, 0, sizeof *p);
    p->mode = mode;
    p->m = m;
    *call = "cublasLtMatrixLayoutCreate";
    cublasStatus_t st = cublasLtMatrixLayoutCreate(&p->la, CUDA_R_8F_E4M3, (uint64_t)K, (uint64_t)n, (int64_t)K);
    if (st == CUBLAS_STATUS_SUCCESS)
        st = cublasLtMatrixLayoutCreate(&p->lb, CUDA_R_8F_E4M3, (uint64_t)K, (uint64_t)m, (int64_t)K);
    if (st == CUBLAS_STATUS_SUCCESS)
        st = cublasLtMatrixLayoutCreate(&p->ld, CUDA_R_32F, (uint64_t)n, (uint64_t)m, (int64_t)n);
    if (st == CUBLAS_STATUS_SUCCESS) {
        *call = "cublasLtMatmulPreferenceCreate";
        st = cublasLtMatmulPreferenceCreate(&p->pref);
    }
    /* Every chunk's pointers are at least 16-byte aligned (w and y checked
     * by the caller, pool blocks 256-byte aligned, chunks K or 4·N bytes
     * apart: multiples of 16). */
    const uint64_t ws = c->lt_workspace_size;
    const uint32_t al = 16;
    if (st == CUBLAS_STATUS_SUCCESS) {
        *call = "cublasLtMatmulPreferenceSetAttribute";
        st = cublasLtMatmulPreferenceSetAttribute(p->pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &ws, sizeof ws);
    }
    if (st == CUBLAS_STATUS_SUCCESS)
        st = cublasLtMatmulPreferenceSetAttribute(p->pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES, &al, sizeof al);
    if (st == CUBLAS_STATUS_SUCCESS)
        st = cublasLtMatmulPreferenceSetAttribute(p->pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES, &al, sizeof al);
    if (st == CUBLAS_STATUS_SUCCESS)
        st = cublasLtMatmulPreferenceSetAttribute(p->pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES, &al, sizeof al);
    if (st == CUBLAS_STATUS_SUCCESS)
        st = cublasLtMatmulPreferenceSetAttribute(p->pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES, &al, sizeof al);

    /* The algorithm: with the bias epilogue first, then without (a fresh
     * descriptor, so no bias attribute is left behind). */
    for (int with_bias = bias16 != NULL; st == CUBLAS_STATUS_SUCCESS && with_bias >= 0; with_bias--) {
        *call = "cublasLtMatmulDescCreate/SetAttribute";
        st = desc_create(c, mode, wscale, xscale, with_bias ? bias16 : NULL, &p->desc);
        if (st != CUBLAS_STATUS_SUCCESS)
            break;
        int found = 0;
        cublasStatus_t hs =
            cublasLtMatmulAlgoGetHeuristic(c->lt, p->desc, p->la, p->lb, p->ld, p->ld, p->pref, 1, &p->heur, &found);
        if (hs == CUBLAS_STATUS_SUCCESS && found > 0) {
            p->found = true;
            p->bias_epilogue = with_bias;
            break;
        }
        cublasLtMatmulDescDestroy(p->desc);
        p->desc = NULL;
    }
    return st == CUBLAS_STATUS_SUCCESS || refused(st) ? CUBLAS_STATUS_SUCCESS : st;
}

/* The plan for a chunk of m rows: in *mode (per row on sm_90), else per
 * tensor; if neither has an algorithm, the same for m rounded down to a
 * multiple of 16 (fp8 kernels may want one; the rows left over go to the
 * bf16 path).  *mode becomes the mode found; p->found false: none. */
static cublasStatus_t plan_choose(const cuda_ctx *c, scale_mode *mode, int n, int m, int K, const float *wscale,
                                  const float *xscale, const void *bias16, fp8_plan *p, const char **call)
{
    const int rows[2] = {m, m / 16 * 16};
    for (int t = 0; t < 2; t++) {
        if (rows[t] == 0 || (t == 1 && rows[1] == m))
            break;
        for (scale_mode md = *mode;; md = SCALE_PER_TENSOR) {
            plan_destroy(p);
            cublasStatus_t st = plan_create(c, md, n, rows[t], K, wscale, xscale, bias16, p, call);
            if (st != CUBLAS_STATUS_SUCCESS)
                return st;
            if (p->found) {
                *mode = md;
                return CUBLAS_STATUS_SUCCESS;
            }
            if (md == SCALE_PER_TENSOR)
                break;
        }
    }
    return CUBLAS_STATUS_SUCCESS;
}

vd_status cuda_matmul_fp8(vd_backend *be, const vd_tensor *x, const vd_tensor *w, const float *bias, vd_tensor *y,
                          const char *shapes, int64_t *rows_done)
{
    *rows_done = 0;
    cuda_ctx *c = cuda_ctx_of(be);
    const int64_t K = w->shape[1], N = w->shape[0];
    const int64_t M = N ? vd_tensor_nelem(y) / N : 0;
    if (!c->fp8_gemm || w->dtype != VD_F8_E4M3 || c->cc_major * 10 + c->cc_minor < 89 || M == 0 || K == 0)
        return VD_OK;
    if (K % 16 != 0 || N % 16 != 0 || ((uintptr_t)w->data % 16) != 0 || ((uintptr_t)y->data % 16) != 0)
        return VD_OK;
    int64_t mt = cuda_scratch_bound(be, X_CHUNK_BYTES) / K;
    if (mt >= 64)
        mt = mt / 64 * 64;
    else if (mt >= 16)
        mt = mt / 16 * 16; /* only the last chunk may be a row count the kernels refuse */
    if (mt < 1)
        mt = 1;
    if (mt > M)
        mt = M;
    scale_mode mode = c->cc_major == 9 && !c->fp8_rowwise_off ? SCALE_PER_ROW : SCALE_PER_TENSOR;

    vd_status s;
    cuda_block *xq = NULL, *xs = NULL, *wsb = NULL, *b16 = NULL;
    char what[300];
    snprintf(what, sizeof what, "matmul's e4m3 copy of x (%lld x %lld)", (long long)mt, (long long)K);
    s = cuda_pool_alloc(be, (size_t)(mt * K), what, &xq);
    /* per-row scales [mt] (or the chunk's scale at [0]), then the amax scratch at [mt] */
    if (s == VD_OK)
        s = cuda_pool_alloc(be, (size_t)(mt + 1) * sizeof(float), "matmul's fp8 scales of x", &xs);
    if (s == VD_OK)
        s = cuda_pool_alloc(be, (size_t)N * sizeof(float), "matmul's fp8 weight scales", &wsb);
    if (s == VD_OK && bias)
        s = cuda_pool_alloc(be, (size_t)N * 2, "matmul's bf16 bias", &b16);
    float *const xscale = xs ? xs->ptr : NULL, *const wscale = wsb ? wsb->ptr : NULL;

    fp8_plan plan = {0};
    const char *call = NULL;
    cublasStatus_t st = CUBLAS_STATUS_SUCCESS;
    bool prepared = false;
    int64_t m0 = 0;
    while (s == VD_OK && m0 < M) {
        int m = (int)(M - m0 < mt ? M - m0 : mt);
        if (!plan.found || plan.m != m || plan.mode != mode) {
            st = plan_choose(c, &mode, (int)N, m, (int)K, wscale, xscale, b16 ? b16->ptr : NULL, &plan, &call);
            if (st != CUBLAS_STATUS_SUCCESS || !plan.found)
                break; /* (no fp8 algorithm: the bf16 path does the remaining rows) */
        }
        const bool rest_to_bf16 = plan.m < m; /* rounded down to a multiple of 16 */
        m = plan.m;
        int err = 0;
        if (!prepared) { /* once per call, after the first algorithm is found */
            err = vd_cuda_fill_f32(wscale, w->scale, N, c->stream);
            if (!err && bias)
                err = vd_cuda_f32_to_bf16(bias, b16->ptr, N, c->stream);
            s = cuda_op_result(be, err, "matmul (fp8: weight scale and bias)", "w", w, NULL, NULL, NULL, NULL);
            if (s != VD_OK)
                break;
            prepared = true;
        }
        const float *xc = (const float *)x->data + m0 * K;
        if (plan.mode == SCALE_PER_ROW)
            err = vd_cuda_quant_e4m3_rows(xc, m, K, xq->ptr, xscale, c->stream);
        else
            err = vd_cuda_quant_e4m3_tensor(xc, (int64_t)m * K, xq->ptr, xscale, xscale + mt, c->stream);
        s = cuda_op_result(be, err, "matmul (fp8: x to e4m3)", "x", x, NULL, NULL, NULL, NULL);
        if (s != VD_OK)
            break;
        const float alpha = 1.0f, beta = 0.0f; /* w.scale is in wscale */
        float *yc = (float *)y->data + m0 * N;
        st = cublasLtMatmul(c->lt, plan.desc, &alpha, w->data, plan.la, xq->ptr, plan.lb, &beta, yc, plan.ld, yc,
                            plan.ld, &plan.heur.algo, c->lt_workspace, c->lt_workspace_size, c->stream);
        if (st != CUBLAS_STATUS_SUCCESS && plan.mode == SCALE_PER_ROW && refused(st)) {
            /* per-row scaling accepted by the heuristic but refused here:
             * redo this chunk per tensor, and stop trying per row */
            c->fp8_rowwise_off = true;
            mode = SCALE_PER_TENSOR;
            st = CUBLAS_STATUS_SUCCESS;
            continue;
        }
        if (st != CUBLAS_STATUS_SUCCESS) {
            call = "cublasLtMatmul";
            break;
        }
        if (bias && !plan.bias_epilogue) {
            err = vd_cuda_add_bias_rows_f32(yc, bias, m, N, N, c->stream);
            s = cuda_op_result(be, err, "matmul (fp8: bias)", "x", x, "w", w, NULL, NULL);
        }
        if (s != VD_OK)
            break;
        m0 += m;
        if (rest_to_bf16)
            break;
    }
    if (s == VD_OK && st != CUBLAS_STATUS_SUCCESS) {
        char tile[480];
        snprintf(tile, sizeof tile, "%s (fp8 GEMM tile n=%lld, m=%lld, K=%lld, %s activation scales)", shapes,
                 (long long)N, (long long)(M - m0 < mt ? M - m0 : mt), (long long)K,
                 mode == SCALE_PER_ROW ? "per-row" : "per-tensor");
        s = cuda_blas_fail(be, st, call, "matmul", tile);
    }
    plan_destroy(&plan);
    cuda_pool_free(be, b16);
    cuda_pool_free(be, wsb);
    cuda_pool_free(be, xs);
    cuda_pool_free(be, xq);
    *rows_done = s == VD_OK ? m0 : 0;
    return s;
}

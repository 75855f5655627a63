/* matmul on CUDA: y[M,N] = x[M,K] · (w[N,K] · w.scale)ᵀ + bias, as a bf16
 * GEMM with fp32 accumulation and fp32 output (wan-spec §1.4: every Linear
 * of the DiT runs in bf16 under autocast).
 *
 * - x (f32) is rounded to bf16 into a scratch buffer, in chunks of rows of
 *   at most X_CHUNK_BYTES.
 * - bf16 weights are used in place.  Every other storage dtype (f32, f16,
 *   fp8, GGUF blocks) is decoded on the GPU (kernels/dequant.cu, the
 *   formulas of core/quant.c) into a bf16 tile of at most W_TILE_BYTES,
 *   once per call.  w.scale is the GEMM's alpha, as on the CPU.
 * - The bias is added in fp32 by cuBLASLt's epilogue, or by a small kernel
 *   where cuBLASLt declines the epilogue.
 * - Row-major y = x·wᵀ is, in cuBLAS's column-major terms, yᵀ (N × M,
 *   ld N) = w (stored K × N, ld K, transposed) · xᵀ (K × M, ld K).
 * - e4m3 weights run as fp8 GEMMs instead (cuda_matmul_fp8.c) when the
 *   backend was opened with fp8_gemm and the GPU and shapes allow; the rows
 *   that path declines come here.
 *
 * Performance ideas, not done yet: cache the bf16 copy of f32/f16 weights
 * (or run f16 weights as an f16 GEMM), cache matmul descriptors and
 * heuristics by shape, take bf16 activations straight from the producing
 * op. */
#include <stdio.h>

#include "backend/cuda/cuda_internal.h"
#include "core/error.h"
#include "dequant.h"
#include "elementwise.h"

#define X_CHUNK_BYTES ((int64_t)512 << 20)
#define W_TILE_BYTES ((int64_t)64 << 20)

/* The largest power of two (up to 256) that divides the address. */
static uint32_t alignment_of(const void *p)
{
    uintptr_t a = (uintptr_t)p;
    uint32_t al = 256;
    while (al > 1 && (a % al) != 0)
        al >>= 1;
    return al;
}

typedef struct gemm_args {
    int n, m, K;        /* output features, rows, reduction */
    const void *w;      /* bf16 [n][K] */
    const void *x;      /* bf16 [m][K] */
    float *y;           /* f32, rows ldy apart */
    int ldy;
    float alpha;
    const float *bias;  /* f32 [n] or NULL */
} gemm_args;

/* One bf16 GEMM tile.  *bias_done tells whether the epilogue added the
 * bias. */
static vd_status gemm_bf16(vd_backend *be, const gemm_args *a, const char *shapes, bool *bias_done)
{
    cuda_ctx *c = cuda_ctx_of(be);
    *bias_done = false;
    cublasLtMatmulDesc_t desc = NULL;
    cublasLtMatrixLayout_t la = NULL, lb = NULL, ld = NULL;
    cublasLtMatmulPreference_t pref = NULL;
    const float beta = 0.0f;
    const char *call = "cublasLtMatmulDescCreate";
    cublasStatus_t st = cublasLtMatmulDescCreate(&desc, CUBLAS_COMPUTE_32F, CUDA_R_32F);
    const cublasOperation_t ta = CUBLAS_OP_T, tb = CUBLAS_OP_N;
    if (st == CUBLAS_STATUS_SUCCESS) {
        call = "cublasLtMatmulDescSetAttribute";
        st = cublasLtMatmulDescSetAttribute(desc, CUBLASLT_MATMUL_DESC_TRANSA, &ta, sizeof ta);
    }
    if (st == CUBLAS_STATUS_SUCCESS)
        st = cublasLtMatmulDescSetAttribute(desc, CUBLASLT_MATMUL_DESC_TRANSB, &tb, sizeof tb);
    if (st == CUBLAS_STATUS_SUCCESS) {
        call = "cublasLtMatrixLayoutCreate";
        st = cublasLtMatrixLayoutCreate(&la, CUDA_R_16BF, (uint64_t)a->K, (uint64_t)a->n, (int64_t)a->K);
    }
    if (st == CUBLAS_STATUS_SUCCESS)
        st = cublasLtMatrixLayoutCreate(&lb, CUDA_R_16BF, (uint64_t)a->K, (uint64_t)a->m, (int64_t)a->K);
    if (st == CUBLAS_STATUS_SUCCESS)
        st = cublasLtMatrixLayoutCreate(&ld, CUDA_R_32F, (uint64_t)a->n, (uint64_t)a->m, (int64_t)a->ldy);
    if (st == CUBLAS_STATUS_SUCCESS) {
        call = "cublasLtMatmulPreferenceCreate";
        st = cublasLtMatmulPreferenceCreate(&pref);
    }
    const uint64_t ws = c->lt_workspace_size;
    const uint32_t al_a = alignment_of(a->w), al_b = alignment_of(a->x), al_d = alignment_of(a->y);
    if (st == CUBLAS_STATUS_SUCCESS) {
        call = "cublasLtMatmulPreferenceSetAttribute";
        st = cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &ws, sizeof ws);
    }
    if (st == CUBLAS_STATUS_SUCCESS)
        st = cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES, &al_a, sizeof al_a);
    if (st == CUBLAS_STATUS_SUCCESS)
        st = cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES, &al_b, sizeof al_b);
    if (st == CUBLAS_STATUS_SUCCESS)
        st = cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES, &al_d, sizeof al_d);
    if (st == CUBLAS_STATUS_SUCCESS)
        st = cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES, &al_d, sizeof al_d);

    /* The algorithm: with the bias epilogue first, then without (the bias
     * is then added by a kernel). */
    cublasLtMatmulHeuristicResult_t heur;
    int found = 0;
    bool use_bias = a->bias != NULL;
    while (st == CUBLAS_STATUS_SUCCESS) {
        const cublasLtEpilogue_t epi = use_bias ? CUBLASLT_EPILOGUE_BIAS : CUBLASLT_EPILOGUE_DEFAULT;
        call = "cublasLtMatmulDescSetAttribute";
        st = cublasLtMatmulDescSetAttribute(desc, CUBLASLT_MATMUL_DESC_EPILOGUE, &epi, sizeof epi);
        if (st == CUBLAS_STATUS_SUCCESS && use_bias)
            st = cublasLtMatmulDescSetAttribute(desc, CUBLASLT_MATMUL_DESC_BIAS_POINTER, &a->bias, sizeof a->bias);
        if (st != CUBLAS_STATUS_SUCCESS)
            break;
        found = 0;
        cublasStatus_t hs = cublasLtMatmulAlgoGetHeuristic(c->lt, desc, la, lb, ld, ld, pref, 1, &heur, &found);
        if (hs == CUBLAS_STATUS_SUCCESS && found > 0)
            break;
        found = 0;
        if (!use_bias)
            break;
        use_bias = false;
    }
    if (st == CUBLAS_STATUS_SUCCESS && found > 0) {
        call = "cublasLtMatmul";
        st = cublasLtMatmul(c->lt, desc, &a->alpha, a->w, la, a->x, lb, &beta, a->y, ld, a->y, ld, &heur.algo,
                            c->lt_workspace, c->lt_workspace_size, c->stream);
        *bias_done = st == CUBLAS_STATUS_SUCCESS && use_bias;
    } else if (st == CUBLAS_STATUS_SUCCESS) {
        /* No cuBLASLt algorithm for this shape or alignment: plain cuBLAS. */
        call = "cublasGemmEx";
        st = cublasGemmEx(c->blas, CUBLAS_OP_T, CUBLAS_OP_N, a->n, a->m, a->K, &a->alpha, a->w, CUDA_R_16BF, a->K,
                          a->x, CUDA_R_16BF, a->K, &beta, a->y, CUDA_R_32F, a->ldy, CUBLAS_COMPUTE_32F,
                          CUBLAS_GEMM_DEFAULT);
    }
    if (pref)
        cublasLtMatmulPreferenceDestroy(pref);
    if (ld)
        cublasLtMatrixLayoutDestroy(ld);
    if (lb)
        cublasLtMatrixLayoutDestroy(lb);
    if (la)
        cublasLtMatrixLayoutDestroy(la);
    if (desc)
        cublasLtMatmulDescDestroy(desc);
    if (st != CUBLAS_STATUS_SUCCESS) {
        char tile[480];
        snprintf(tile, sizeof tile, "%s (GEMM tile n=%d, m=%d, K=%d)", shapes, a->n, a->m, a->K);
        return cuda_blas_fail(be, st, call, "matmul", tile);
    }
    return VD_OK;
}

vd_status cuda_matmul(vd_backend *be, const vd_tensor *x, const vd_tensor *w, const vd_tensor *bias, vd_tensor *y)
{
    cuda_use_device(be);
    cuda_ctx *c = cuda_ctx_of(be);
    const int64_t K = w->shape[1], N = w->shape[0];
    const int64_t M = N ? vd_tensor_nelem(y) / N : 0;
    if (M == 0 || N == 0)
        return VD_OK;
    char dx[200], dw[200], shapes[420];
    snprintf(shapes, sizeof shapes, "%s · %s", cuda_describe("x", x, dx, sizeof dx),
             cuda_describe("w", w, dw, sizeof dw));
    const float *pb;
    cuda_block *b_owned;
    VD_TRY(cuda_param_f32(be, bias, "matmul", "bias", &pb, &b_owned));
    if (K == 0) { /* an empty sum: y = bias (or 0) */
        int err = vd_cuda_fill_f32(y->data, 0.0f, M * N, c->stream);
        if (!err && pb)
            err = vd_cuda_binary_f32(0, y->data, pb, y->data, M * N, N, N, c->stream);
        cuda_pool_free(be, b_owned);
        return cuda_op_result(be, err, "matmul", "x", x, "w", w, "y", y);
    }

    /* The fp8 path computes rows [0, row0); the bf16 path the rest. */
    int64_t row0 = 0;
    if (c->fp8_gemm && w->dtype == VD_F8_E4M3) {
        vd_status s8 = cuda_matmul_fp8(be, x, w, pb, y, shapes, &row0);
        if (s8 != VD_OK || row0 == M) {
            cuda_pool_free(be, b_owned);
            return s8 != VD_OK ? s8 : cuda_op_result(be, 0, "matmul", "x", x, "w", w, "y", y);
        }
    }

    const bool direct = w->dtype == VD_BF16 && ((uintptr_t)w->data & 1) == 0;
    int64_t mt = cuda_scratch_bound(be, X_CHUNK_BYTES) / (2 * K);
    if (mt >= 64)
        mt = mt / 64 * 64;
    if (mt < 1)
        mt = 1;
    if (mt > M - row0)
        mt = M - row0;
    int64_t nt = N;
    if (!direct) {
        nt = cuda_scratch_bound(be, W_TILE_BYTES) / (2 * K);
        nt = nt / 16 * 16;
        if (nt < 16)
            nt = 16;
        if (nt > N)
            nt = N;
    }
    const int64_t n_tiles = (N + nt - 1) / nt;

    vd_status s;
    cuda_block *xs = NULL, *ws = NULL;
    char what[300];
    snprintf(what, sizeof what, "matmul's bf16 copy of x (%lld x %lld)", (long long)mt, (long long)K);
    s = cuda_pool_alloc(be, (size_t)(mt * K) * 2, what, &xs);
    if (s == VD_OK && !direct) {
        snprintf(what, sizeof what, "matmul's bf16 tile of weight%s%s (%lld x %lld)", w->name ? " " : "",
                 w->name ? w->name : "", (long long)nt, (long long)K);
        s = cuda_pool_alloc(be, (size_t)(nt * K) * 2, what, &ws);
    }
    const int64_t row_bytes = cuda_row_bytes(w->dtype, K);
    /* One weight tile: decode it once, before the row chunks. */
    if (s == VD_OK && !direct && n_tiles == 1) {
        int err = vd_cuda_dequant_rows((int)w->dtype, w->data, row_bytes, NULL, 0, N, K, 1.0f, VD_CUDA_OUT_BF16,
                                       ws->ptr, c->stream);
        s = cuda_op_result(be, err, "matmul (decoding the weight)", "w", w, NULL, NULL, NULL, NULL);
    }
    for (int64_t m0 = row0; s == VD_OK && m0 < M; m0 += mt) {
        const int64_t m = M - m0 < mt ? M - m0 : mt;
        int err = vd_cuda_f32_to_bf16((const float *)x->data + m0 * K, xs->ptr, m * K, c->stream);
        s = cuda_op_result(be, err, "matmul (x to bf16)", "x", x, NULL, NULL, NULL, NULL);
        for (int64_t n0 = 0; s == VD_OK && n0 < N; n0 += nt) {
            const int64_t n = N - n0 < nt ? N - n0 : nt;
            const void *wt;
            if (direct) {
                wt = (const uint16_t *)w->data + n0 * K;
            } else {
                if (n_tiles > 1) {
                    err = vd_cuda_dequant_rows((int)w->dtype, w->data, row_bytes, NULL, n0, n, K, 1.0f,
                                               VD_CUDA_OUT_BF16, ws->ptr, c->stream);
                    s = cuda_op_result(be, err, "matmul (decoding the weight)", "w", w, NULL, NULL, NULL, NULL);
                    if (s != VD_OK)
                        break;
                }
                wt = ws->ptr;
            }
            gemm_args a = {.n = (int)n, .m = (int)m, .K = (int)K, .w = wt, .x = xs->ptr,
                           .y = (float *)y->data + m0 * N + n0, .ldy = (int)N, .alpha = w->scale,
                           .bias = pb ? pb + n0 : NULL};
            bool bias_done = false;
            s = gemm_bf16(be, &a, shapes, &bias_done);
            if (s == VD_OK && pb && !bias_done) {
                err = vd_cuda_add_bias_rows_f32(a.y, a.bias, m, n, N, c->stream);
                s = cuda_op_result(be, err, "matmul (bias)", "x", x, "w", w, "bias", bias);
            }
        }
    }
    if (s == VD_OK)
        s = cuda_op_result(be, 0, "matmul", "x", x, "w", w, "y", y);
    cuda_pool_free(be, ws);
    cuda_pool_free(be, xs);
    cuda_pool_free(be, b_owned);
    return s;
}

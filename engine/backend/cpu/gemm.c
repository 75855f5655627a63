/* Single-threaded SGEMM (BLAS or a blocked loop) and the matmul op built on
 * it: y = x·wᵀ·scale + bias with w in any storage dtype. */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "backend/cpu/cpu_internal.h"
#include "core/error.h"
#include "vd_config.h"

#if VD_HAVE_BLAS
#include <cblas.h>
#endif

static pthread_once_t gemm_once = PTHREAD_ONCE_INIT;

static void gemm_init_once(void)
{
#if VD_HAVE_OPENBLAS
    /* All parallelism is ours: BLAS runs inside our worker threads. */
    openblas_set_num_threads(1);
#endif
}

void cpu_gemm_init(void) { pthread_once(&gemm_once, gemm_init_once); }

#if !VD_HAVE_BLAS
/* The fallback: B is packed (scaled by alpha) into a KC×NC panel padded
 * with zeros, and MR rows of C accumulate against it in a local block.
 * The fixed trip counts let the compiler vectorise the inner loops. */
enum { MR = 4, NC = 64, KC = 256 };

static void gemm_fallback(bool trans_b, int M, int N, int K, float alpha, const float *A, int lda, const float *B,
                          int ldb, float beta, float *C, int ldc)
{
    for (int i = 0; i < M; i++) {
        float *c = C + (size_t)i * ldc;
        if (beta == 0.0f)
            memset(c, 0, (size_t)N * sizeof *c);
        else if (beta != 1.0f)
            for (int j = 0; j < N; j++)
                c[j] *= beta;
    }
    float panel[KC * NC];
    for (int jc = 0; jc < N; jc += NC) {
        int nc = N - jc < NC ? N - jc : NC;
        for (int pc = 0; pc < K; pc += KC) {
            int kc = K - pc < KC ? K - pc : KC;
            for (int k = 0; k < kc; k++) {
                float *p = panel + k * NC;
                for (int j = 0; j < nc; j++) {
                    float b = trans_b ? B[(size_t)(jc + j) * ldb + pc + k] : B[(size_t)(pc + k) * ldb + jc + j];
                    p[j] = alpha * b;
                }
                for (int j = nc; j < NC; j++)
                    p[j] = 0.0f;
            }
            for (int i0 = 0; i0 < M; i0 += MR) {
                int mr = M - i0 < MR ? M - i0 : MR;
                float acc[MR][NC];
                memset(acc, 0, sizeof acc);
                for (int k = 0; k < kc; k++) {
                    const float *p = panel + k * NC;
                    float a[MR];
                    for (int r = 0; r < MR; r++)
                        a[r] = r < mr ? A[(size_t)(i0 + r) * lda + pc + k] : 0.0f;
                    for (int r = 0; r < MR; r++)
                        for (int j = 0; j < NC; j++)
                            acc[r][j] += a[r] * p[j];
                }
                for (int r = 0; r < mr; r++) {
                    float *c = C + (size_t)(i0 + r) * ldc + jc;
                    for (int j = 0; j < nc; j++)
                        c[j] += acc[r][j];
                }
            }
        }
    }
}
#endif

void cpu_sgemm(bool trans_b, int M, int N, int K, float alpha, const float *A, int lda, const float *B, int ldb,
               float beta, float *C, int ldc)
{
    if (M <= 0 || N <= 0)
        return;
    if (K <= 0) {
        for (int i = 0; i < M; i++)
            for (int j = 0; j < N; j++)
                C[(size_t)i * ldc + j] = beta == 0.0f ? 0.0f : beta * C[(size_t)i * ldc + j];
        return;
    }
#if VD_HAVE_BLAS
    cblas_sgemm(CblasRowMajor, CblasNoTrans, trans_b ? CblasTrans : CblasNoTrans, M, N, K, alpha, A, lda, B, ldb,
                beta, C, ldc);
#else
    gemm_fallback(trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
#endif
}

/* ---- matmul ---------------------------------------------------------------- */

/* Tiles: MT rows of x by nt rows of w.  nt keeps a dequantised tile of w
 * near 4 MiB; both depend on the shapes only. */
enum { MT = 512 };

static int64_t weight_tile_rows(int64_t K)
{
    int64_t nt = ((int64_t)1 << 20) / (K > 0 ? K : 1);
    nt = nt / 16 * 16;
    if (nt < 16)
        nt = 16;
    if (nt > 256)
        nt = 256;
    return nt;
}

typedef struct matmul_job {
    const float *x;
    float *y;
    const vd_tensor *w;
    const float *bias;
    int64_t M, N, K, nt, m_tiles;
    float alpha;
    bool direct;       /* w read in place as f32 */
    float **scratch;   /* per worker: nt·K floats */
    int64_t *cached;   /* per worker: the w tile now in its scratch, or -1 */
    int failed;
} matmul_job;

static void matmul_tiles(void *arg, int64_t begin, int64_t end, int worker)
{
    matmul_job *j = arg;
    for (int64_t item = begin; item < end; item++) {
        int64_t ni = item / j->m_tiles, mi = item % j->m_tiles;
        int64_t n0 = ni * j->nt, n = j->N - n0 < j->nt ? j->N - n0 : j->nt;
        int64_t m0 = mi * MT, m = j->M - m0 < MT ? j->M - m0 : MT;
        const float *wt;
        if (j->direct) {
            wt = (const float *)j->w->data + n0 * j->K;
        } else {
            wt = j->scratch[worker];
            if (j->cached[worker] != ni) {
                if (cpu_weight_rows_f32(j->w, j->K, n0, n, j->scratch[worker]) != VD_OK) {
                    __atomic_store_n(&j->failed, 1, __ATOMIC_RELAXED);
                    j->cached[worker] = -1;
                    continue;
                }
                j->cached[worker] = ni;
            }
        }
        float *y = j->y + m0 * j->N + n0;
        cpu_sgemm(true, (int)m, (int)n, (int)j->K, j->alpha, j->x + m0 * j->K, (int)j->K, wt, (int)j->K, 0.0f, y,
                  (int)j->N);
        if (j->bias)
            for (int64_t r = 0; r < m; r++)
                for (int64_t c = 0; c < n; c++)
                    y[r * j->N + c] += j->bias[n0 + c];
    }
}

vd_status cpu_matmul(vd_backend *be, const vd_tensor *x, const vd_tensor *w, const vd_tensor *bias, vd_tensor *y)
{
    matmul_job j = {0};
    j.K = w->shape[1];
    j.N = w->shape[0];
    j.M = j.N ? vd_tensor_nelem(y) / j.N : 0;
    j.x = x->data;
    j.y = y->data;
    j.w = w;
    j.alpha = w->scale;
    j.direct = cpu_weight_is_direct_f32(w);
    j.nt = weight_tile_rows(j.K);
    j.m_tiles = (j.M + MT - 1) / MT;
    if (j.M == 0 || j.N == 0)
        return VD_OK;
    float *bias_owned;
    VD_TRY(cpu_param_f32(bias, "matmul", "bias", &j.bias, &bias_owned));
    if (j.K == 0) {
        for (int64_t r = 0; r < j.M; r++)
            for (int64_t c = 0; c < j.N; c++)
                j.y[r * j.N + c] = j.bias ? j.bias[c] : 0.0f;
        cpu_free(bias_owned);
        return VD_OK;
    }
    int workers = cpu_workers(be);
    vd_status s = VD_OK;
    if (!j.direct) {
        j.scratch = calloc((size_t)workers, sizeof *j.scratch);
        j.cached = malloc((size_t)workers * sizeof *j.cached);
        if (!j.scratch || !j.cached)
            s = VD_ERR_OUT_OF_MEMORY;
        for (int i = 0; s == VD_OK && i < workers; i++) {
            j.cached[i] = -1;
            j.scratch[i] = cpu_alloc_floats(j.nt * j.K);
            if (!j.scratch[i])
                s = VD_ERR_OUT_OF_MEMORY;
        }
        if (s != VD_OK)
            vd_error(s, "matmul: no memory for %d dequantisation tiles of %lld x %lld", workers, (long long)j.nt,
                     (long long)j.K);
    }
    if (s == VD_OK) {
        int64_t n_tiles = (j.N + j.nt - 1) / j.nt;
        vd_parallel_for(cpu_pool(be), n_tiles * j.m_tiles, 1, matmul_tiles, &j);
        if (j.failed)
            s = vd_error(VD_ERR_INTERNAL, "matmul: could not decode weight%s%s (%s)", w->name ? " " : "",
                         w->name ? w->name : "", vd_dtype_name(w->dtype));
    }
    for (int i = 0; j.scratch && i < workers; i++)
        cpu_free(j.scratch[i]);
    free(j.scratch);
    free(j.cached);
    cpu_free(bias_owned);
    return s;
}

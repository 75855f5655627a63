/* matmul with every weight storage dtype: the weights are built with
 * vd_dtype_from_f32, and the reference multiplies by the values they
 * decode to (so only the GEMM is under test, not the quantiser).  Bound:
 * relative L2 ≤ 1e-5 against a double-precision reference. */
#include <math.h>

#include "backend_test.h"

static void check_dtype(vd_backend *be, vd_dtype dtype, float scale, int64_t M, int64_t N, int64_t K, uint64_t seed)
{
    float *x = random_floats(seed, M * K, -1, 1), *w = random_floats(seed + 1, N * K, -1, 1);
    float *bias = random_floats(seed + 2, N, -1, 1), *w_deq;
    vd_tensor tx = dev_f32(be, 2, (int64_t[]){M, K}, x);
    vd_tensor tw = dev_converted(be, dtype, 2, (int64_t[]){N, K}, w, &w_deq);
    tw.scale = scale;
    tw.name = "blocks.0.ffn.0.weight";
    vd_tensor tb = dev_converted(be, VD_BF16, 1, (int64_t[]){N}, bias, NULL);
    float *b_deq = malloc((size_t)N * sizeof *b_deq);
    vd_dtype_to_f32(VD_BF16, tb.data, b_deq, N);
    vd_tensor ty = dev_f32(be, 2, (int64_t[]){M, N}, NULL);

    /* The quantiser must have produced something close to w, or the test
     * would not exercise realistic values. */
    double qerr = rel_l2(w_deq, w, N * K);
    CHECKF(qerr < 0.5, "%s: the stored weights are far from the originals (rel %.3g)", vd_dtype_name(dtype), qerr);

    double *ref = malloc((size_t)(M * N) * sizeof *ref);
    for (int64_t i = 0; i < M; i++)
        for (int64_t n = 0; n < N; n++) {
            double acc = 0;
            for (int64_t k = 0; k < K; k++)
                acc += (double)x[i * K + k] * w_deq[n * K + k];
            ref[i * N + n] = acc * scale + b_deq[n];
        }
    CHECK_OK(vd_op_matmul(be, &tx, &tw, &tb, &ty));
    char what[64];
    snprintf(what, sizeof what, "matmul with %s weights (scale %g)", vd_dtype_name(dtype), (double)scale);
    CHECK_CLOSE(be, &ty, ref, what);

    vd_tensor_release(&tx), vd_tensor_release(&tw), vd_tensor_release(&tb), vd_tensor_release(&ty);
    free(x), free(w), free(bias), free(w_deq), free(b_deq), free(ref);
}

int main(void)
{
    vd_backend *be = open_cpu(2);
    struct {
        vd_dtype dtype;
        float scale;
    } cases[] = {
        {VD_F32, 1.0f},     {VD_F16, 1.0f},     {VD_BF16, 1.0f},     {VD_F8_E4M3, 0.0173f}, {VD_F8_E4M3, 1.0f},
        {VD_F8_E5M2, 2.5f}, {VD_Q8_0, 1.0f},    {VD_Q4_0, 1.0f},     {VD_Q4_1, 1.0f},       {VD_Q5_0, 1.0f},
        {VD_Q5_1, 1.0f},    {VD_Q2_K, 1.0f},    {VD_Q3_K, 1.0f},     {VD_Q4_K, 1.0f},       {VD_Q5_K, 1.0f},
        {VD_Q6_K, 1.0f},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        /* K a multiple of 256 (k-quant super-blocks). */
        check_dtype(be, cases[i].dtype, cases[i].scale, 37, 41, 512, 1000 + 10 * i);
    }
    /* Two row tiles and two weight tiles, for a few kinds of decoding. */
    const vd_dtype big[] = {VD_F32, VD_BF16, VD_F8_E4M3, VD_Q8_0, VD_Q4_K};
    for (size_t i = 0; i < sizeof big / sizeof big[0]; i++)
        check_dtype(be, big[i], big[i] == VD_F8_E4M3 ? 0.5f : 1.0f, 515, 260, 2048, 2000 + 10 * i);
    vd_backend_close(be);
    return test_finish("test_cpu_matmul_dtypes");
}

/* CUDA ops against the CPU backend on random data (skipped, exit 77, where
 * no GPU is present).  fp32 paths: relative L2 ≤ 1e-5.  Also the device
 * selection errors: a CUDA ordinal past the last GPU. */
#include "backend/backend.h"
#include "test_util.h"

static vd_backend *cpu, *gpu;

/* Run a unary op on both backends and compare. */
static void check_unary(int op, int64_t n)
{
    float *x = random_floats(100 + (uint64_t)op, n, -4, 4);
    float *a = malloc((size_t)n * sizeof *a), *b = malloc((size_t)n * sizeof *b);
    int64_t s[1] = {n};
    vd_tensor cx, cy, gx, gy;
    CHECK_OK(vd_tensor_alloc(cpu, VD_F32, 1, s, &cx));
    CHECK_OK(vd_tensor_alloc(cpu, VD_F32, 1, s, &cy));
    CHECK_OK(vd_tensor_alloc(gpu, VD_F32, 1, s, &gx));
    CHECK_OK(vd_tensor_alloc(gpu, VD_F32, 1, s, &gy));
    CHECK_OK(vd_tensor_upload(cpu, &cx, x, (size_t)n * 4));
    CHECK_OK(vd_tensor_upload(gpu, &gx, x, (size_t)n * 4));
    vd_status (*fn[3])(vd_backend *, const vd_tensor *, vd_tensor *) = {vd_op_silu, vd_op_gelu_tanh, vd_op_gelu_erf};
    CHECK_OK(fn[op](cpu, &cx, &cy));
    CHECK_OK(fn[op](gpu, &gx, &gy));
    CHECK_OK(vd_tensor_download(cpu, &cy, a, (size_t)n * 4));
    CHECK_OK(vd_tensor_download(gpu, &gy, b, (size_t)n * 4));
    double e = rel_l2(b, a, n);
    CHECKF(e <= 1e-5, "unary op %d: rel L2 %.3e", op, e);
    vd_tensor_release(&cx), vd_tensor_release(&cy), vd_tensor_release(&gx), vd_tensor_release(&gy);
    free(x), free(a), free(b);
}

/* a [M, D] op b [R, D] (row broadcast), and add_gated. */
static void check_broadcast(int64_t M, int64_t R, int64_t D)
{
    int64_t sa[2] = {M, D}, sb[2] = {R, D};
    float *ha = random_floats(1, M * D, -1, 1), *hb = random_floats(2, R * D, -1, 1), *hy = random_floats(3, M * D, -1, 1);
    float *r1 = malloc((size_t)(M * D) * 4), *r2 = malloc((size_t)(M * D) * 4);
    vd_tensor t[2][4];
    vd_backend *be[2] = {cpu, gpu};
    for (int k = 0; k < 2; k++) {
        CHECK_OK(vd_tensor_alloc(be[k], VD_F32, 2, sa, &t[k][0]));
        CHECK_OK(vd_tensor_alloc(be[k], VD_F32, 2, sb, &t[k][1]));
        CHECK_OK(vd_tensor_alloc(be[k], VD_F32, 2, sa, &t[k][2]));
        CHECK_OK(vd_tensor_alloc(be[k], VD_F32, 2, sa, &t[k][3]));
        CHECK_OK(vd_tensor_upload(be[k], &t[k][0], ha, (size_t)(M * D) * 4));
        CHECK_OK(vd_tensor_upload(be[k], &t[k][1], hb, (size_t)(R * D) * 4));
        CHECK_OK(vd_tensor_upload(be[k], &t[k][3], hy, (size_t)(M * D) * 4));
    }
    for (int op = 0; op < 3; op++) {
        for (int k = 0; k < 2; k++) {
            if (op == 0)
                CHECK_OK(vd_op_add(be[k], &t[k][0], &t[k][1], &t[k][2]));
            else if (op == 1)
                CHECK_OK(vd_op_mul(be[k], &t[k][0], &t[k][1], &t[k][2]));
            else
                CHECK_OK(vd_op_add_gated(be[k], &t[k][0], &t[k][3], &t[k][1], &t[k][2]));
        }
        CHECK_OK(vd_tensor_download(cpu, &t[0][2], r1, (size_t)(M * D) * 4));
        CHECK_OK(vd_tensor_download(gpu, &t[1][2], r2, (size_t)(M * D) * 4));
        double e = rel_l2(r2, r1, M * D);
        CHECKF(e <= 1e-6, "broadcast op %d (%lld rows, %lld groups, %lld wide): rel L2 %.3e", op, (long long)M,
               (long long)R, (long long)D, e);
    }
    for (int k = 0; k < 2; k++)
        for (int i = 0; i < 4; i++)
            vd_tensor_release(&t[k][i]);
    free(ha), free(hb), free(hy), free(r1), free(r2);
}

int main(void)
{
    vd_backend_options o = {.threads = 2};
    vd_status st = vd_backend_open("cuda:0", &o, &gpu);
    if (st != VD_OK) {
        printf("skipped: %s\n", vd_last_error());
        return 77;
    }
    CHECK_OK(vd_backend_open("cpu", &o, &cpu));
    for (int op = 0; op < 3; op++)
        check_unary(op, 1000003);
    check_broadcast(4096, 1, 384);
    check_broadcast(4096, 2, 384);
    check_broadcast(4096, 4096, 384);
    check_broadcast(96 * 37, 96, 1);
    /* an ordinal past the machine's GPUs is a clear error, not a crash */
    vd_backend *bad = NULL;
    CHECK_FAILS(vd_backend_open("cuda:63", &o, &bad), VD_ERR_DEVICE);
    printf("cuda:63 -> %s\n", vd_last_error());
    vd_backend_close(gpu);
    vd_backend_close(cpu);
    return test_finish("cuda_ops");
}

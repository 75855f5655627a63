/* Timings of the CPU backend's heavy ops at model sizes (not a test).
 * Usage: bench_cpu_backend [threads] */
#include <math.h>
#include <time.h>

#include "backend_test.h"

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* CPU seconds of the whole process: on a busy machine, cpu/threads is what
 * the wall time would be without other processes. */
static double cpu_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

static double best_cpu;

#define TIME_BEST_OF_3(stmt, dt)                      \
    do {                                              \
        dt = INFINITY;                                \
        best_cpu = INFINITY;                          \
        for (int rep_ = 0; rep_ < 3; rep_++) {        \
            double t0_ = now(), c0_ = cpu_now();      \
            stmt;                                     \
            dt = fmin(dt, now() - t0_);               \
            best_cpu = fmin(best_cpu, cpu_now() - c0_); \
        }                                             \
    } while (0)

static void bench_matmul(vd_backend *be, vd_dtype dtype, int64_t M, int64_t K, int64_t N)
{
    float *x = random_floats(1, M * K, -1, 1), *w = random_floats(2, N * K, -1, 1);
    vd_tensor tx = dev_f32(be, 2, (int64_t[]){M, K}, x), ty = dev_f32(be, 2, (int64_t[]){M, N}, NULL);
    vd_tensor tw = dev_converted(be, dtype, 2, (int64_t[]){N, K}, w, NULL);
    double dt;
    TIME_BEST_OF_3(CHECK_OK(vd_op_matmul(be, &tx, &tw, NULL, &ty)), dt);
    printf("matmul [%lld x %lld] x [%lld x %lld]^T %-7s %7.3f s (cpu %6.3f s)  %6.1f GFLOP/s\n", (long long)M, (long long)K,
           (long long)N, (long long)K, vd_dtype_name(dtype), dt, best_cpu, 2.0 * M * N * K / dt * 1e-9);
    vd_tensor_release(&tx), vd_tensor_release(&ty), vd_tensor_release(&tw);
    free(x), free(w);
}

static void bench_attention(vd_backend *be, int64_t B, int64_t L, int64_t H, int64_t d)
{
    float *q = random_floats(3, B * L * H * d, -1, 1);
    vd_tensor tq = dev_f32(be, 4, (int64_t[]){B, L, H, d}, q), to = dev_f32(be, 4, (int64_t[]){B, L, H, d}, NULL);
    double dt;
    TIME_BEST_OF_3(CHECK_OK(vd_op_attention(be, &tq, &tq, &tq, 1.0f / sqrtf((float)d), NULL, NULL, &to)), dt);
    printf("attention B=%lld L=%lld H=%lld d=%lld %7.3f s (cpu %6.3f s)  %6.1f GFLOP/s\n", (long long)B, (long long)L, (long long)H,
           (long long)d, dt, best_cpu, 4.0 * B * H * L * L * d / dt * 1e-9);
    vd_tensor_release(&tq), vd_tensor_release(&to);
    free(q);
}

static void bench_conv(vd_backend *be, int64_t Cin, int64_t T, int64_t H, int64_t W, int64_t Cout)
{
    float *x = random_floats(4, Cin * T * H * W, -1, 1), *w = random_floats(5, Cout * Cin * 27, -1, 1);
    vd_tensor tx = dev_f32(be, 4, (int64_t[]){Cin, T, H, W}, x), to = dev_f32(be, 4, (int64_t[]){Cout, T, H, W}, NULL);
    vd_tensor tw = dev_f32(be, 5, (int64_t[]){Cout, Cin, 3, 3, 3}, w);
    double dt;
    TIME_BEST_OF_3(CHECK_OK(vd_op_conv3d(be, &tx, &tw, NULL, (int[]){1, 1, 1}, (int[]){2, 0, 1, 1, 1, 1}, &to)), dt);
    printf("conv3d %lld->%lld k3 on %lldx%lldx%lld %7.3f s (cpu %6.3f s)  %6.1f GFLOP/s\n", (long long)Cin, (long long)Cout,
           (long long)T, (long long)H, (long long)W, dt, best_cpu, 2.0 * Cout * Cin * 27 * T * H * W / dt * 1e-9);
    vd_tensor_release(&tx), vd_tensor_release(&to), vd_tensor_release(&tw);
    free(x), free(w);
}

int main(int argc, char **argv)
{
    vd_backend *be = open_cpu(argc > 1 ? atoi(argv[1]) : 0);
    printf("cpu backend, %d threads\n", be->threads);
    bench_matmul(be, VD_F32, 4096, 1536, 8960);
    bench_matmul(be, VD_BF16, 4096, 1536, 8960);
    bench_matmul(be, VD_Q8_0, 4096, 1536, 8960);
    bench_matmul(be, VD_Q4_K, 4096, 1536, 8960);
    bench_matmul(be, VD_F8_E4M3, 4096, 1536, 8960);
    bench_attention(be, 2, 2048, 12, 128);
    bench_attention(be, 1, 1560, 1, 384);
    bench_conv(be, 384, 3, 30, 52, 384);
    vd_backend_close(be);
    return test_finish("bench_cpu_backend");
}

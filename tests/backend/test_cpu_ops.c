/* Every CPU op against a straightforward scalar reference computed in
 * double, on random data.  Bound: relative L2 error ≤ 1e-5 (REL_L2_BOUND).
 * Shapes are deliberately not multiples of the backend's tile sizes. */
#include <math.h>

#include "backend_test.h"

/* ---- matmul (f32 weights; every storage dtype is in test_cpu_matmul_dtypes) -- */

static void ref_matmul(const float *x, const float *w, double wscale, const float *bias, int64_t M, int64_t N,
                       int64_t K, double *y)
{
    for (int64_t i = 0; i < M; i++)
        for (int64_t n = 0; n < N; n++) {
            double acc = 0;
            for (int64_t k = 0; k < K; k++)
                acc += (double)x[i * K + k] * w[n * K + k];
            y[i * N + n] = acc * wscale + (bias ? bias[n] : 0.0);
        }
}

static void test_matmul(vd_backend *be)
{
    /* Two row tiles and two weight tiles, odd sizes; x with a leading batch. */
    const int64_t B = 2, L = 265, K = 1000, N = 300, M = B * L;
    float *x = random_floats(1, M * K, -1, 1), *w = random_floats(2, N * K, -1, 1), *b = random_floats(3, N, -1, 1);
    vd_tensor tx = dev_f32(be, 3, (int64_t[]){B, L, K}, x);
    vd_tensor tw = dev_f32(be, 2, (int64_t[]){N, K}, w);
    vd_tensor tb = dev_f32(be, 1, (int64_t[]){N}, b);
    vd_tensor ty = dev_f32(be, 3, (int64_t[]){B, L, N}, NULL);
    double *ref = malloc((size_t)(M * N) * sizeof *ref);

    ref_matmul(x, w, 1.0, b, M, N, K, ref);
    CHECK_OK(vd_op_matmul(be, &tx, &tw, &tb, &ty));
    CHECK_CLOSE(be, &ty, ref, "matmul f32 + bias");

    /* Weight scale (alpha), no bias. */
    tw.scale = 0.37f;
    ref_matmul(x, w, 0.37f, NULL, M, N, K, ref);
    CHECK_OK(vd_op_matmul(be, &tx, &tw, NULL, &ty));
    CHECK_CLOSE(be, &ty, ref, "matmul f32 scaled");

    /* f32 weights at an address that is not 4-byte aligned (a mapped file
     * can put them there): the conversion path. */
    const int64_t Ns = 37;
    unsigned char *raw = malloc((size_t)(Ns * K) * 4 + 2);
    memcpy(raw + 2, w, (size_t)(Ns * K) * 4);
    vd_tensor tu;
    CHECK_OK(vd_tensor_init(&tu, VD_F32, 2, (int64_t[]){Ns, K}, raw + 2));
    vd_tensor ty2 = dev_f32(be, 3, (int64_t[]){B, L, Ns}, NULL);
    ref_matmul(x, w, 1.0, b, M, Ns, K, ref);
    vd_tensor tb2 = dev_f32(be, 1, (int64_t[]){Ns}, b);
    CHECK_OK(vd_op_matmul(be, &tx, &tu, &tb2, &ty2));
    CHECK_CLOSE(be, &ty2, ref, "matmul f32 unaligned");

    /* A single row (the time embedding case). */
    vd_tensor x1 = dev_f32(be, 1, (int64_t[]){K}, x);
    vd_tensor y1 = dev_f32(be, 1, (int64_t[]){N}, NULL);
    tw.scale = 1.0f;
    ref_matmul(x, w, 1.0, b, 1, N, K, ref);
    CHECK_OK(vd_op_matmul(be, &x1, &tw, &tb, &y1));
    CHECK_CLOSE(be, &y1, ref, "matmul one row");

    vd_tensor *ts[] = {&tx, &tw, &tb, &ty, &ty2, &tb2, &x1, &y1};
    for (size_t i = 0; i < sizeof ts / sizeof ts[0]; i++)
        vd_tensor_release(ts[i]);
    free(raw);
    free(ref);
    free(x);
    free(w);
    free(b);
}

/* ---- get_rows ------------------------------------------------------------------ */

static void test_get_rows(vd_backend *be)
{
    const int64_t V = 50, D = 64, n = 23;
    float *table = random_floats(10, V * D, -2, 2);
    int32_t ids[23];
    for (int i = 0; i < n; i++)
        ids[i] = (i * 17 + 3) % (int)V;
    ids[5] = ids[6]; /* repeats are fine */
    vd_tensor tids = dev_tensor(be, VD_I32, 1, (int64_t[]){n}, ids);
    vd_tensor out = dev_f32(be, 2, (int64_t[]){n, D}, NULL);
    const vd_dtype dtypes[] = {VD_F32, VD_F16, VD_BF16, VD_F8_E4M3, VD_Q8_0};
    double *ref = malloc((size_t)(n * D) * sizeof *ref);
    for (size_t k = 0; k < sizeof dtypes / sizeof dtypes[0]; k++) {
        float *deq;
        vd_tensor tt = dev_converted(be, dtypes[k], 2, (int64_t[]){V, D}, table, &deq);
        tt.scale = dtypes[k] == VD_F8_E4M3 ? 0.25f : 1.0f;
        for (int64_t i = 0; i < n; i++)
            for (int64_t c = 0; c < D; c++)
                ref[i * D + c] = (double)deq[ids[i] * D + c] * tt.scale;
        CHECK_OK(vd_op_get_rows(be, &tt, &tids, &out));
        float *got = host_f32(be, &out);
        double e = rel_l2_ref(got, ref, n * D);
        CHECKF(e == 0, "get_rows %s: rows differ from the decoded table (rel %.3g)", vd_dtype_name(dtypes[k]), e);
        free(got);
        free(deq);
        vd_tensor_release(&tt);
    }
    free(ref);
    free(table);
    vd_tensor_release(&tids);
    vd_tensor_release(&out);
}

/* ---- norms ------------------------------------------------------------------------ */

static void test_layernorm_modulate(vd_backend *be)
{
    const int64_t B = 2, L = 5, D = 96, M = B * L;
    float *x = random_floats(20, M * D, -3, 5);
    float *w = random_floats(21, D, 0.5f, 1.5f), *bias = random_floats(22, D, -1, 1);
    float *shift = random_floats(23, B * D, -1, 1), *scale = random_floats(24, D, -0.5f, 0.5f);
    vd_tensor tx = dev_f32(be, 3, (int64_t[]){B, L, D}, x);
    vd_tensor tout = dev_f32(be, 3, (int64_t[]){B, L, D}, NULL);
    vd_tensor tw = dev_converted(be, VD_BF16, 1, (int64_t[]){D}, w, NULL);
    vd_tensor tbias = dev_f32(be, 1, (int64_t[]){D}, bias);
    vd_tensor tshift = dev_f32(be, 3, (int64_t[]){B, 1, D}, shift); /* one row per batch item */
    float *scale_deq;
    vd_tensor tscale = dev_converted(be, VD_F16, 1, (int64_t[]){D}, scale, &scale_deq);
    float *w_deq = malloc((size_t)D * sizeof *w_deq);
    vd_dtype_to_f32(VD_BF16, tw.data, w_deq, D);
    double *ref = malloc((size_t)(M * D) * sizeof *ref), *plain = malloc((size_t)(M * D) * sizeof *plain);
    for (int64_t r = 0; r < M; r++) {
        double mean = 0, var = 0;
        for (int64_t c = 0; c < D; c++)
            mean += x[r * D + c];
        mean /= D;
        for (int64_t c = 0; c < D; c++)
            var += (x[r * D + c] - mean) * (x[r * D + c] - mean);
        var /= D;
        for (int64_t c = 0; c < D; c++) {
            double v = (x[r * D + c] - mean) / sqrt(var + 1e-6);
            plain[r * D + c] = v;
            v = v * w_deq[c] + bias[c];
            ref[r * D + c] = v * (1.0 + scale_deq[c]) + shift[(r / L) * D + c];
        }
    }
    CHECK_OK(vd_op_layernorm_modulate(be, &tx, 1e-6f, &tw, &tbias, &tshift, &tscale, &tout));
    CHECK_CLOSE(be, &tout, ref, "layernorm_modulate");
    CHECK_OK(vd_op_layernorm_modulate(be, &tx, 1e-6f, NULL, NULL, NULL, NULL, &tout));
    CHECK_CLOSE(be, &tout, plain, "layernorm plain");
    /* In place. */
    CHECK_OK(vd_op_layernorm_modulate(be, &tx, 1e-6f, &tw, &tbias, &tshift, &tscale, &tx));
    CHECK_CLOSE(be, &tx, ref, "layernorm_modulate in place");

    vd_tensor *ts[] = {&tx, &tout, &tw, &tbias, &tshift, &tscale};
    for (size_t i = 0; i < sizeof ts / sizeof ts[0]; i++)
        vd_tensor_release(ts[i]);
    free(x), free(w), free(bias), free(shift), free(scale), free(scale_deq), free(w_deq), free(ref), free(plain);
}

static void test_rmsnorm(vd_backend *be)
{
    const int64_t M = 13, D = 160;
    float *x = random_floats(30, M * D, -2, 3), *w = random_floats(31, D, 0.5f, 2);
    float *w_deq;
    vd_tensor tx = dev_f32(be, 2, (int64_t[]){M, D}, x);
    vd_tensor tw = dev_converted(be, VD_F16, 1, (int64_t[]){D}, w, &w_deq);
    vd_tensor tout = dev_f32(be, 2, (int64_t[]){M, D}, NULL);
    double *ref = malloc((size_t)(M * D) * sizeof *ref), *plain = malloc((size_t)(M * D) * sizeof *plain);
    for (int64_t r = 0; r < M; r++) {
        double ss = 0;
        for (int64_t c = 0; c < D; c++)
            ss += (double)x[r * D + c] * x[r * D + c];
        double inv = 1 / sqrt(ss / D + 1e-6);
        for (int64_t c = 0; c < D; c++) {
            plain[r * D + c] = x[r * D + c] * inv;
            ref[r * D + c] = plain[r * D + c] * w_deq[c];
        }
    }
    CHECK_OK(vd_op_rmsnorm(be, &tx, &tw, 1e-6f, &tout));
    CHECK_CLOSE(be, &tout, ref, "rmsnorm");
    CHECK_OK(vd_op_rmsnorm(be, &tx, NULL, 1e-6f, &tout));
    CHECK_CLOSE(be, &tout, plain, "rmsnorm without weight");
    CHECK_OK(vd_op_rmsnorm(be, &tx, &tw, 1e-6f, &tx));
    CHECK_CLOSE(be, &tx, ref, "rmsnorm in place");
    vd_tensor_release(&tx), vd_tensor_release(&tw), vd_tensor_release(&tout);
    free(x), free(w), free(w_deq), free(ref), free(plain);
}

static void test_channel_rmsnorm(vd_backend *be)
{
    /* 442 positions: more than one block of positions. */
    const int64_t C = 5, T = 2, H = 17, W = 13, P = T * H * W;
    float *x = random_floats(40, C * P, -2, 2), *g = random_floats(41, C, 0.5f, 1.5f);
    float *g_deq;
    vd_tensor tx = dev_f32(be, 4, (int64_t[]){C, T, H, W}, x);
    vd_tensor tg = dev_converted(be, VD_BF16, 4, (int64_t[]){C, 1, 1, 1}, g, &g_deq);
    vd_tensor tout = dev_f32(be, 4, (int64_t[]){C, T, H, W}, NULL);
    double *ref = malloc((size_t)(C * P) * sizeof *ref);
    for (int64_t p = 0; p < P; p++) {
        double ss = 0;
        for (int64_t c = 0; c < C; c++)
            ss += (double)x[c * P + p] * x[c * P + p];
        double norm = fmax(sqrt(ss), 1e-12);
        for (int64_t c = 0; c < C; c++)
            ref[c * P + p] = x[c * P + p] / norm * sqrt((double)C) * g_deq[c];
    }
    CHECK_OK(vd_op_channel_rmsnorm(be, &tx, &tg, &tout));
    CHECK_CLOSE(be, &tout, ref, "channel_rmsnorm");
    CHECK_OK(vd_op_channel_rmsnorm(be, &tx, &tg, &tx));
    CHECK_CLOSE(be, &tx, ref, "channel_rmsnorm in place");
    vd_tensor_release(&tx), vd_tensor_release(&tg), vd_tensor_release(&tout);
    free(x), free(g), free(g_deq), free(ref);
}

/* ---- rope3d ---------------------------------------------------------------------- */

/* Straight from the description: pair k of the head rotates with the
 * frame, row or column index and the frequency of its axis. */
static void ref_rope(const float *x, int64_t Bn, int64_t F, int64_t Hh, int64_t Ww, int64_t heads, int64_t d,
                     double theta, double *out)
{
    int64_t s = d / 6, dim_t = d - 4 * s, dim_s = 2 * s;
    for (int64_t m = 0; m < Bn * F * Hh * Ww; m++) {
        int64_t pos = m % (F * Hh * Ww);
        int64_t f = pos / (Hh * Ww), h = (pos / Ww) % Hh, w = pos % Ww;
        for (int64_t hd = 0; hd < heads; hd++)
            for (int64_t k = 0; k < d / 2; k++) {
                int64_t c = 2 * k;
                double p, dim;
                int64_t jj;
                if (c < dim_t) {
                    p = (double)f, dim = (double)dim_t, jj = k;
                } else if (c < dim_t + dim_s) {
                    p = (double)h, dim = (double)dim_s, jj = k - dim_t / 2;
                } else {
                    p = (double)w, dim = (double)dim_s, jj = k - (dim_t + dim_s) / 2;
                }
                double a = p * pow(theta, -2.0 * (double)jj / dim);
                const float *xi = x + (m * heads + hd) * d + c;
                double *o = out + (m * heads + hd) * d + c;
                o[0] = xi[0] * cos(a) - xi[1] * sin(a);
                o[1] = xi[0] * sin(a) + xi[1] * cos(a);
            }
    }
}

static void test_rope3d(vd_backend *be)
{
    struct {
        int64_t B, F, H, W, heads, d;
    } cases[] = {{2, 3, 5, 7, 3, 20}, {1, 2, 3, 5, 2, 128}, {1, 1, 1, 1, 1, 2}, {1, 3, 2, 1, 2, 14}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int64_t M = cases[i].B * cases[i].F * cases[i].H * cases[i].W, hd = cases[i].heads, d = cases[i].d;
        int64_t n = M * hd * d;
        float *x = random_floats(50 + i, n, -2, 2);
        double *ref = malloc((size_t)n * sizeof *ref);
        ref_rope(x, cases[i].B, cases[i].F, cases[i].H, cases[i].W, hd, d, 10000.0, ref);
        /* [B, L, H, d] with leading dims, as a model holds q. */
        vd_tensor tx = dev_f32(be, 4, (int64_t[]){cases[i].B, M / cases[i].B, hd, d}, x);
        vd_tensor tout = dev_f32(be, 4, (int64_t[]){cases[i].B, M / cases[i].B, hd, d}, NULL);
        char what[64];
        snprintf(what, sizeof what, "rope3d case %zu", i);
        CHECK_OK(vd_op_rope3d(be, &tx, cases[i].F, cases[i].H, cases[i].W, 10000.0, &tout));
        CHECK_CLOSE(be, &tout, ref, what);
        CHECK_OK(vd_op_rope3d(be, &tx, cases[i].F, cases[i].H, cases[i].W, 10000.0, &tx));
        CHECK_CLOSE(be, &tx, ref, what);
        vd_tensor_release(&tx), vd_tensor_release(&tout);
        free(x), free(ref);
    }
}

/* ---- attention ---------------------------------------------------------------------- */

static void ref_attention(const float *q, const float *k, const float *v, int64_t B, int64_t Lq, int64_t Lk,
                          int64_t H, int64_t d, int64_t dv, double scale, const float *bias, const int32_t *kv_len,
                          double *out)
{
    double *s = malloc((size_t)Lk * sizeof *s);
    for (int64_t b = 0; b < B; b++)
        for (int64_t h = 0; h < H; h++)
            for (int64_t i = 0; i < Lq; i++) {
                int64_t keys = kv_len ? kv_len[b] : Lk;
                double mx = -INFINITY, sum = 0;
                for (int64_t j = 0; j < keys; j++) {
                    double acc = 0;
                    for (int64_t c = 0; c < d; c++)
                        acc += (double)q[((b * Lq + i) * H + h) * d + c] * k[((b * Lk + j) * H + h) * d + c];
                    s[j] = acc * scale + (bias ? bias[(h * Lq + i) * Lk + j] : 0.0);
                    mx = fmax(mx, s[j]);
                }
                for (int64_t j = 0; j < keys; j++) {
                    s[j] = exp(s[j] - mx);
                    sum += s[j];
                }
                for (int64_t c = 0; c < dv; c++) {
                    double acc = 0;
                    for (int64_t j = 0; j < keys; j++)
                        acc += s[j] * v[((b * Lk + j) * H + h) * dv + c];
                    out[((b * Lq + i) * H + h) * dv + c] = acc / sum;
                }
            }
    free(s);
}

static void check_attention(vd_backend *be, int64_t B, int64_t Lq, int64_t Lk, int64_t H, int64_t d, int64_t dv,
                            bool with_bias, const int32_t *kv_len, uint64_t seed, const char *what)
{
    /* Scores spread over several units, as in a real model. */
    float *q = random_floats(seed, B * Lq * H * d, -1.5f, 1.5f), *k = random_floats(seed + 1, B * Lk * H * d, -1.5f, 1.5f);
    float *v = random_floats(seed + 2, B * Lk * H * dv, -1, 1);
    float *bias = with_bias ? random_floats(seed + 3, H * Lq * Lk, -2, 2) : NULL;
    double scale = 1.0 / sqrt((double)d) * 2.0;
    double *ref = malloc((size_t)(B * Lq * H * dv) * sizeof *ref);
    ref_attention(q, k, v, B, Lq, Lk, H, d, dv, (float)scale, bias, kv_len, ref);
    vd_tensor tq = dev_f32(be, 4, (int64_t[]){B, Lq, H, d}, q), tk = dev_f32(be, 4, (int64_t[]){B, Lk, H, d}, k);
    vd_tensor tv = dev_f32(be, 4, (int64_t[]){B, Lk, H, dv}, v), tout = dev_f32(be, 4, (int64_t[]){B, Lq, H, dv}, NULL);
    vd_tensor tb = {0};
    if (bias)
        tb = dev_f32(be, 3, (int64_t[]){H, Lq, Lk}, bias);
    CHECK_OK(vd_op_attention(be, &tq, &tk, &tv, (float)scale, bias ? &tb : NULL, kv_len, &tout));
    CHECK_CLOSE(be, &tout, ref, what);
    vd_tensor_release(&tq), vd_tensor_release(&tk), vd_tensor_release(&tv), vd_tensor_release(&tout);
    vd_tensor_release(&tb);
    free(q), free(k), free(v), free(bias), free(ref);
}

static void test_attention(vd_backend *be)
{
    /* Lq ≠ Lk, neither a multiple of the query block or key tile; bias and
     * per-batch key lengths (one crossing a key tile, one inside the first). */
    int32_t kv_len[2] = {300, 131};
    check_attention(be, 2, 70, 300, 3, 40, 24, true, kv_len, 60, "attention bias + kv_len");
    check_attention(be, 2, 70, 300, 3, 40, 24, false, NULL, 64, "attention plain");
    int32_t kv_one[1] = {1};
    check_attention(be, 1, 9, 17, 2, 64, 64, true, kv_one, 68, "attention one key");
    check_attention(be, 1, 129, 129, 2, 128, 128, false, NULL, 72, "attention d=128");
    check_attention(be, 3, 150, 150, 1, 384, 384, false, NULL, 76, "attention single head d=384");
}

/* ---- elementwise ---------------------------------------------------------------------- */

static void test_unary(vd_backend *be)
{
    const int64_t n = 10007;
    float *x = random_floats(80, n, -6, 6);
    double *ref = malloc((size_t)n * sizeof *ref);
    vd_tensor tx = dev_f32(be, 2, (int64_t[]){1, n}, x), tout = dev_f32(be, 2, (int64_t[]){1, n}, NULL);
    for (int op = 0; op < 3; op++) {
        for (int64_t i = 0; i < n; i++) {
            double v = x[i];
            if (op == 0)
                ref[i] = v / (1 + exp(-v));
            else if (op == 1)
                ref[i] = 0.5 * v * (1 + tanh(sqrt(2 / M_PI) * (v + 0.044715 * v * v * v)));
            else
                ref[i] = 0.5 * v * (1 + erf(v / sqrt(2.0)));
        }
        vd_status (*fn)(vd_backend *, const vd_tensor *, vd_tensor *) =
            op == 0 ? vd_op_silu : op == 1 ? vd_op_gelu_tanh : vd_op_gelu_erf;
        const char *name = op == 0 ? "silu" : op == 1 ? "gelu_tanh" : "gelu_erf";
        CHECK_OK(fn(be, &tx, &tout));
        CHECK_CLOSE(be, &tout, ref, name);
        vd_tensor tin = dev_f32(be, 2, (int64_t[]){1, n}, x);
        CHECK_OK(fn(be, &tin, &tin));
        CHECK_CLOSE(be, &tin, ref, name);
        vd_tensor_release(&tin);
    }
    vd_tensor_release(&tx), vd_tensor_release(&tout);
    free(x), free(ref);
}

/* a [C, G, D] combined with b of several broadcast shapes. */
static void test_binary(vd_backend *be)
{
    const int64_t C = 4, G = 6, D = 10, n = C * G * D;
    float *a = random_floats(90, n, -2, 2), *y = random_floats(91, n, -2, 2);
    struct {
        int ndim;
        int64_t shape[3];
        vd_dtype dtype;
    } bs[] = {
        {1, {D}, VD_F32},          /* every row */
        {3, {C, 1, D}, VD_BF16},   /* per group of G rows */
        {3, {C, G, D}, VD_F32},    /* per row (elementwise) */
        {2, {C, 1}, VD_F16},       /* per channel of [C, ...] */
        {1, {1}, VD_F32},          /* a scalar */
    };
    double *ref = malloc((size_t)n * sizeof *ref);
    for (size_t k = 0; k < sizeof bs / sizeof bs[0]; k++) {
        vd_tensor probe;
        vd_tensor_init(&probe, VD_F32, bs[k].ndim, bs[k].shape, NULL);
        int64_t nb = vd_tensor_nelem(&probe), Db = bs[k].shape[bs[k].ndim - 1];
        float *b = random_floats(92 + k, nb, 0.5f, 2), *b_deq;
        vd_tensor tb = dev_converted(be, bs[k].dtype, bs[k].ndim, bs[k].shape, b, &b_deq);
        int64_t M = n / Db, R = nb / Db;
        for (int op = 0; op < 3; op++) {
            for (int64_t e = 0; e < n; e++) {
                int64_t row = e / Db;
                double bv = b_deq[(row / (M / R)) * Db + e % Db];
                ref[e] = op == 0 ? a[e] + bv : op == 1 ? (double)a[e] * bv : a[e] + (double)y[e] * bv;
            }
            vd_tensor ta = dev_f32(be, 3, (int64_t[]){C, G, D}, a), ty = dev_f32(be, 3, (int64_t[]){C, G, D}, y);
            vd_tensor tout = dev_f32(be, 3, (int64_t[]){C, G, D}, NULL);
            char what[64];
            snprintf(what, sizeof what, "%s with b case %zu", op == 0 ? "add" : op == 1 ? "mul" : "add_gated", k);
            if (op == 0)
                CHECK_OK(vd_op_add(be, &ta, &tb, &tout));
            else if (op == 1)
                CHECK_OK(vd_op_mul(be, &ta, &tb, &tout));
            else
                CHECK_OK(vd_op_add_gated(be, &ta, &ty, &tb, &tout));
            CHECK_CLOSE(be, &tout, ref, what);
            /* in place (out = a) */
            if (op == 0)
                CHECK_OK(vd_op_add(be, &ta, &tb, &ta));
            else if (op == 1)
                CHECK_OK(vd_op_mul(be, &ta, &tb, &ta));
            else
                CHECK_OK(vd_op_add_gated(be, &ta, &ty, &tb, &ta));
            CHECK_CLOSE(be, &ta, ref, what);
            vd_tensor_release(&ta), vd_tensor_release(&ty), vd_tensor_release(&tout);
        }
        vd_tensor_release(&tb);
        free(b), free(b_deq);
    }
    free(a), free(y), free(ref);
}

static void test_upsample(vd_backend *be)
{
    const int64_t A = 3, T = 4, H = 5, W = 7;
    float *x = random_floats(100, A * T * H * W, -1, 1);
    double *ref = malloc((size_t)(A * T * 4 * H * W) * sizeof *ref);
    for (int64_t p = 0; p < A * T; p++)
        for (int64_t i = 0; i < 2 * H; i++)
            for (int64_t j = 0; j < 2 * W; j++)
                ref[(p * 2 * H + i) * 2 * W + j] = x[(p * H + i / 2) * W + j / 2];
    vd_tensor tx = dev_f32(be, 4, (int64_t[]){A, T, H, W}, x), tout = dev_f32(be, 4, (int64_t[]){A, T, 2 * H, 2 * W}, NULL);
    CHECK_OK(vd_op_upsample2x(be, &tx, &tout));
    CHECK_CLOSE(be, &tout, ref, "upsample2x");
    vd_tensor_release(&tx), vd_tensor_release(&tout);
    free(x), free(ref);
}

/* ---- copy and fill --------------------------------------------------------------- */

/* Offset (elements) of a multi-index in a strided tensor. */
static int64_t offset_of(const vd_tensor *t, const int64_t *idx)
{
    int64_t o = 0;
    for (int i = 0; i < t->ndim; i++)
        o += idx[i] * t->stride[i];
    return o;
}

static bool next_index(const vd_tensor *t, int64_t *idx)
{
    for (int i = t->ndim - 1; i >= 0; i--) {
        if (++idx[i] < t->shape[i])
            return true;
        idx[i] = 0;
    }
    return false;
}

static void test_copy(vd_backend *be)
{
    /* Permuted 4-D source into a contiguous f32 destination, from several dtypes. */
    const int64_t s0 = 3, s1 = 4, s2 = 5, s3 = 6, n = s0 * s1 * s2 * s3;
    float *x = random_floats(110, n, -3, 3);
    const vd_dtype dtypes[] = {VD_F32, VD_F16, VD_BF16, VD_F8_E4M3, VD_F8_E5M2};
    for (size_t k = 0; k < sizeof dtypes / sizeof dtypes[0]; k++) {
        float *deq;
        vd_tensor src = dev_converted(be, dtypes[k], 4, (int64_t[]){s0, s1, s2, s3}, x, &deq);
        src.scale = dtypes[k] == VD_F8_E4M3 ? 0.5f : 1.0f;
        vd_tensor view;
        CHECK_OK(vd_tensor_permute(&src, (int[]){2, 0, 3, 1}, &view));
        vd_tensor dst = dev_f32(be, 4, view.shape, NULL);
        double *ref = malloc((size_t)n * sizeof *ref);
        int64_t idx[4] = {0}, i = 0;
        do
            ref[i++] = (double)deq[offset_of(&view, idx)] * src.scale;
        while (next_index(&view, idx));
        CHECK_OK(vd_op_copy(be, &view, &dst));
        char what[64];
        snprintf(what, sizeof what, "copy permuted %s -> f32", vd_dtype_name(dtypes[k]));
        CHECK_CLOSE(be, &dst, ref, what);
        free(ref), free(deq);
        vd_tensor_release(&dst), vd_tensor_release(&src);
    }

    /* Same-dtype (bf16) permuted copy into a slice of a larger tensor
     * (a concatenation target): bytes must match exactly, and the rest of
     * the target must be untouched. */
    vd_tensor src = dev_converted(be, VD_BF16, 4, (int64_t[]){s0, s1, s2, s3}, x, NULL);
    vd_tensor view;
    CHECK_OK(vd_tensor_permute(&src, (int[]){1, 0, 2, 3}, &view)); /* [4, 3, 5, 6] */
    vd_tensor big = dev_tensor(be, VD_BF16, 4, (int64_t[]){s1, s0 + 2, s2, s3}, NULL);
    memset(big.data, 0xAB, vd_tensor_nbytes(&big));
    vd_tensor slot;
    CHECK_OK(vd_tensor_slice(&big, 1, 1, 1 + s0, &slot));
    CHECK_OK(vd_op_copy(be, &view, &slot));
    int64_t idx[4] = {0};
    int bad = 0;
    do {
        uint16_t got, want;
        memcpy(&got, (uint16_t *)slot.data + offset_of(&slot, idx), 2);
        memcpy(&want, (uint16_t *)view.data + offset_of(&view, idx), 2);
        bad += got != want;
    } while (next_index(&view, idx));
    CHECKF(bad == 0, "copy bf16 into a slice: %d elements differ", bad);
    const uint16_t *bb = big.data;
    int untouched = 0;
    for (int64_t i = 0; i < vd_tensor_nelem(&big); i++)
        untouched += bb[i] == 0xABAB;
    CHECKF(untouched == s1 * 2 * s2 * s3, "copy into a slice wrote outside it (%d untouched of %lld)", untouched,
           (long long)(s1 * 2 * s2 * s3));
    vd_tensor_release(&big), vd_tensor_release(&src);

    /* A contiguous f32 source into a slice along dimension 1 (dimensions
     * that merge in the source do not in the destination). */
    vd_tensor csrc = dev_f32(be, 4, (int64_t[]){s1, s0, s2, s3}, x);
    vd_tensor cbig = dev_f32(be, 4, (int64_t[]){s1, s0 + 3, s2, s3}, NULL);
    CHECK_OK(vd_op_fill(be, &cbig, -7.0f));
    CHECK_OK(vd_tensor_slice(&cbig, 1, 2, 2 + s0, &slot));
    CHECK_OK(vd_op_copy(be, &csrc, &slot));
    const float *cb = cbig.data;
    int wrong = 0;
    for (int64_t i0 = 0; i0 < s1; i0++)
        for (int64_t i1 = 0; i1 < s0 + 3; i1++)
            for (int64_t i2 = 0; i2 < s2 * s3; i2++) {
                float want = i1 >= 2 && i1 < 2 + s0 ? x[(i0 * s0 + i1 - 2) * s2 * s3 + i2] : -7.0f;
                wrong += cb[(i0 * (s0 + 3) + i1) * s2 * s3 + i2] != want;
            }
    CHECKF(wrong == 0, "copy f32 into a slice along dimension 1: %d elements wrong", wrong);
    vd_tensor_release(&csrc), vd_tensor_release(&cbig);

    /* A 5-D view sliced along two dimensions. */
    const int64_t f[5] = {2, 3, 4, 5, 6};
    int64_t n5 = 2 * 3 * 4 * 5 * 6;
    float *x5 = random_floats(111, n5, -1, 1);
    vd_tensor t5 = dev_f32(be, 5, f, x5), a, b;
    CHECK_OK(vd_tensor_slice(&t5, 2, 1, 3, &a));
    CHECK_OK(vd_tensor_slice(&a, 4, 2, 5, &b));
    vd_tensor d5 = dev_f32(be, 5, b.shape, NULL);
    double *ref5 = malloc((size_t)vd_tensor_nelem(&b) * sizeof *ref5);
    int64_t i5[5] = {0}, k5 = 0;
    do
        ref5[k5++] = ((const float *)b.data)[offset_of(&b, i5)];
    while (next_index(&b, i5));
    CHECK_OK(vd_op_copy(be, &b, &d5));
    CHECK_CLOSE(be, &d5, ref5, "copy 5-D slice");

    /* fill on the same strided view: only its elements change. */
    CHECK_OK(vd_op_fill(be, &b, 2.5f));
    float *all = host_f32(be, &t5);
    int in_view = 0, changed = 0;
    memset(i5, 0, sizeof i5);
    do
        in_view += ((const float *)b.data)[offset_of(&b, i5)] == 2.5f;
    while (next_index(&b, i5));
    for (int64_t i = 0; i < n5; i++)
        changed += all[i] != x5[i];
    CHECKF(in_view == vd_tensor_nelem(&b) && changed == vd_tensor_nelem(&b),
           "fill of a view: %d of %lld set, %d changed overall", in_view, (long long)vd_tensor_nelem(&b), changed);
    free(all), free(ref5), free(x5), free(x);
    vd_tensor_release(&t5), vd_tensor_release(&d5);
}

/* ---- conv3d ------------------------------------------------------------------------ */

static void ref_conv3d(const float *x, const float *w, double wscale, const float *bias, int64_t Cin, int64_t T,
                       int64_t H, int64_t W, int64_t Cout, int64_t kt, int64_t kh, int64_t kw, const int *st,
                       const int *pad, int64_t To, int64_t Ho, int64_t Wo, double *out)
{
    for (int64_t co = 0; co < Cout; co++)
        for (int64_t t = 0; t < To; t++)
            for (int64_t yy = 0; yy < Ho; yy++)
                for (int64_t xx = 0; xx < Wo; xx++) {
                    double acc = 0;
                    for (int64_t ci = 0; ci < Cin; ci++)
                        for (int64_t a = 0; a < kt; a++)
                            for (int64_t b = 0; b < kh; b++)
                                for (int64_t c = 0; c < kw; c++) {
                                    int64_t it = t * st[0] + a - pad[0], iy = yy * st[1] + b - pad[2],
                                            ix = xx * st[2] + c - pad[4];
                                    if (it < 0 || it >= T || iy < 0 || iy >= H || ix < 0 || ix >= W)
                                        continue;
                                    acc += (double)x[((ci * T + it) * H + iy) * W + ix] *
                                           w[(((co * Cin + ci) * kt + a) * kh + b) * kw + c];
                                }
                    out[((co * To + t) * Ho + yy) * Wo + xx] = acc * wscale + (bias ? bias[co] : 0.0);
                }
}

static void check_conv(vd_backend *be, int64_t Cin, int64_t T, int64_t H, int64_t W, int64_t Cout, int64_t kt,
                       int64_t kh, int64_t kw, const int st[3], const int pad[6], vd_dtype wdtype, float wscale,
                       bool with_bias, uint64_t seed, const char *what)
{
    int64_t To = (T + pad[0] + pad[1] - kt) / st[0] + 1, Ho = (H + pad[2] + pad[3] - kh) / st[1] + 1,
            Wo = (W + pad[4] + pad[5] - kw) / st[2] + 1;
    int64_t nw = Cout * Cin * kt * kh * kw;
    float *x = random_floats(seed, Cin * T * H * W, -1, 1), *w = random_floats(seed + 1, nw, -1, 1);
    float *b = random_floats(seed + 2, Cout, -1, 1), *w_deq;
    vd_tensor tx = dev_f32(be, 4, (int64_t[]){Cin, T, H, W}, x);
    vd_tensor tw = dev_converted(be, wdtype, 5, (int64_t[]){Cout, Cin, kt, kh, kw}, w, &w_deq);
    tw.scale = wscale;
    vd_tensor tb = dev_f32(be, 1, (int64_t[]){Cout}, b);
    vd_tensor tout = dev_f32(be, 4, (int64_t[]){Cout, To, Ho, Wo}, NULL);
    double *ref = malloc((size_t)(Cout * To * Ho * Wo) * sizeof *ref);
    ref_conv3d(x, w_deq, wscale, with_bias ? b : NULL, Cin, T, H, W, Cout, kt, kh, kw, st, pad, To, Ho, Wo, ref);
    CHECK_OK(vd_op_conv3d(be, &tx, &tw, with_bias ? &tb : NULL, st, pad, &tout));
    CHECK_CLOSE(be, &tout, ref, what);
    vd_tensor_release(&tx), vd_tensor_release(&tw), vd_tensor_release(&tb), vd_tensor_release(&tout);
    free(x), free(w), free(b), free(w_deq), free(ref);
}

static void test_conv3d(vd_backend *be)
{
    /* The VAE's causal 3×3×3 conv: two frames of zeros in front. */
    check_conv(be, 5, 4, 9, 11, 6, 3, 3, 3, (int[]){1, 1, 1}, (int[]){2, 0, 1, 1, 1, 1}, VD_F32, 1.0f, true, 120,
               "conv3d causal k3");
    /* 1×1×1 (shortcut) with f16 weights. */
    check_conv(be, 7, 3, 5, 6, 4, 1, 1, 1, (int[]){1, 1, 1}, (int[]){0, 0, 0, 0, 0, 0}, VD_F16, 1.0f, true, 124,
               "conv3d k1 f16");
    /* downsample2d: pad right and bottom by 1, 3×3 stride 2, fp8 weights with a scale. */
    check_conv(be, 6, 2, 9, 10, 5, 1, 3, 3, (int[]){1, 2, 2}, (int[]){0, 0, 0, 1, 0, 1}, VD_F8_E4M3, 0.3f, true,
               128, "conv3d stride 2 asymmetric pad e4m3");
    /* time_conv of downsample3d: (3,1,1) stride (2,1,1), no padding, no bias. */
    check_conv(be, 4, 7, 3, 4, 4, 3, 1, 1, (int[]){2, 1, 1}, (int[]){0, 0, 0, 0, 0, 0}, VD_BF16, 1.0f, false, 132,
               "conv3d temporal stride 2");
    /* The DiT patch embedding: kernel = stride = (1, 2, 2). */
    check_conv(be, 16, 2, 6, 8, 24, 1, 2, 2, (int[]){1, 2, 2}, (int[]){0, 0, 0, 0, 0, 0}, VD_F32, 1.0f, true, 136,
               "conv3d patch embedding");
    /* Stride 2 on every axis with padding on every side. */
    check_conv(be, 3, 7, 9, 8, 5, 3, 3, 3, (int[]){2, 2, 2}, (int[]){1, 2, 1, 0, 2, 1}, VD_F32, 1.0f, true, 138,
               "conv3d stride 2 padded");
    /* Many input channels: several column tiles per frame. */
    check_conv(be, 300, 2, 20, 20, 8, 3, 3, 3, (int[]){1, 1, 1}, (int[]){2, 0, 1, 1, 1, 1}, VD_F32, 1.0f, true, 140,
               "conv3d tiled columns");
}

/* ---- thread-count invariance --------------------------------------------------------- */

static void test_thread_invariance(void)
{
    vd_backend *b1 = open_cpu(1), *b3 = open_cpu(3);
    CHECK(b1->threads == 1 && b3->threads == 3);
    /* Each op on both backends (host memory is shared by CPU backends). */
    const int64_t M = 700, K = 512, N = 300;
    float *x = random_floats(150, M * K, -1, 1), *w = random_floats(151, N * K, -1, 1), *bias = random_floats(152, N, -1, 1);
    vd_tensor tx = dev_f32(b1, 2, (int64_t[]){M, K}, x), tb = dev_f32(b1, 1, (int64_t[]){N}, bias);
    vd_tensor y1 = dev_f32(b1, 2, (int64_t[]){M, N}, NULL), y3 = dev_f32(b3, 2, (int64_t[]){M, N}, NULL);
    const vd_dtype wt[] = {VD_F32, VD_BF16, VD_Q8_0};
    for (size_t i = 0; i < sizeof wt / sizeof wt[0]; i++) {
        vd_tensor tw = dev_converted(b1, wt[i], 2, (int64_t[]){N, K}, w, NULL);
        CHECK_OK(vd_op_matmul(b1, &tx, &tw, &tb, &y1));
        CHECK_OK(vd_op_matmul(b3, &tx, &tw, &tb, &y3));
        CHECKF(memcmp(y1.data, y3.data, vd_tensor_nbytes(&y1)) == 0, "matmul %s differs between 1 and 3 threads",
               vd_dtype_name(wt[i]));
        vd_tensor_release(&tw);
    }

    const int64_t B = 2, L = 300, H = 3, d = 64;
    float *q = random_floats(153, B * L * H * d, -1, 1), *ab = random_floats(154, H * L * L, -1, 1);
    vd_tensor tq = dev_f32(b1, 4, (int64_t[]){B, L, H, d}, q), tab = dev_f32(b1, 3, (int64_t[]){H, L, L}, ab);
    vd_tensor o1 = dev_f32(b1, 4, (int64_t[]){B, L, H, d}, NULL), o3 = dev_f32(b3, 4, (int64_t[]){B, L, H, d}, NULL);
    int32_t kv[2] = {300, 200};
    CHECK_OK(vd_op_attention(b1, &tq, &tq, &tq, 0.125f, &tab, kv, &o1));
    CHECK_OK(vd_op_attention(b3, &tq, &tq, &tq, 0.125f, &tab, kv, &o3));
    CHECK(memcmp(o1.data, o3.data, vd_tensor_nbytes(&o1)) == 0);

    /* conv3d, norms and rope on the same data. */
    vd_tensor cx = dev_f32(b1, 4, (int64_t[]){32, 3, 20, 24}, q);
    float *cwf = random_floats(155, 16 * 32 * 27, -1, 1);
    vd_tensor cw = dev_converted(b1, VD_F16, 5, (int64_t[]){16, 32, 3, 3, 3}, cwf, NULL);
    vd_tensor c1 = dev_f32(b1, 4, (int64_t[]){16, 3, 20, 24}, NULL), c3 = dev_f32(b3, 4, (int64_t[]){16, 3, 20, 24}, NULL);
    const int st[3] = {1, 1, 1}, pad[6] = {2, 0, 1, 1, 1, 1};
    CHECK_OK(vd_op_conv3d(b1, &cx, &cw, NULL, st, pad, &c1));
    CHECK_OK(vd_op_conv3d(b3, &cx, &cw, NULL, st, pad, &c3));
    CHECK(memcmp(c1.data, c3.data, vd_tensor_nbytes(&c1)) == 0);
    CHECK_OK(vd_op_layernorm_modulate(b1, &tq, 1e-6f, NULL, NULL, NULL, NULL, &o1));
    CHECK_OK(vd_op_layernorm_modulate(b3, &tq, 1e-6f, NULL, NULL, NULL, NULL, &o3));
    CHECK(memcmp(o1.data, o3.data, vd_tensor_nbytes(&o1)) == 0);
    vd_tensor gamma = dev_f32(b1, 1, (int64_t[]){32}, bias);
    vd_tensor n1 = dev_f32(b1, 4, cx.shape, NULL), n3 = dev_f32(b3, 4, cx.shape, NULL);
    CHECK_OK(vd_op_channel_rmsnorm(b1, &cx, &gamma, &n1));
    CHECK_OK(vd_op_channel_rmsnorm(b3, &cx, &gamma, &n3));
    CHECK(memcmp(n1.data, n3.data, vd_tensor_nbytes(&n1)) == 0);
    CHECK_OK(vd_op_rope3d(b1, &tq, 2, 10, 15, 10000.0, &o1));
    CHECK_OK(vd_op_rope3d(b3, &tq, 2, 10, 15, 10000.0, &o3));
    CHECK(memcmp(o1.data, o3.data, vd_tensor_nbytes(&o1)) == 0);

    vd_tensor *ts[] = {&tx, &tb, &y1, &y3, &tq, &tab, &o1, &o3, &cx, &cw, &c1, &c3, &gamma, &n1, &n3};
    for (size_t i = 0; i < sizeof ts / sizeof ts[0]; i++)
        vd_tensor_release(ts[i]);
    free(x), free(w), free(bias), free(q), free(ab), free(cwf);
    vd_backend_close(b1);
    vd_backend_close(b3);
}

int main(void)
{
    vd_backend *be = open_cpu(2);
    test_matmul(be);
    test_get_rows(be);
    test_layernorm_modulate(be);
    test_rmsnorm(be);
    test_channel_rmsnorm(be);
    test_rope3d(be);
    test_attention(be);
    test_unary(be);
    test_binary(be);
    test_upsample(be);
    test_copy(be);
    test_conv3d(be);
    vd_backend_close(be);
    test_thread_invariance();
    return test_finish("test_cpu_ops");
}

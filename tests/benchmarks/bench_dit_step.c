/* One denoising step with classifier-free guidance (a batch of two DiT
 * forwards) of a checkpoint at a given latent size, on a device.  Prints the
 * mean time, the FLOPs of wan-spec.md §5.3 and the floor at a given GEMM
 * peak.  Not a test: run it on the GPU machine.
 *
 *   bench_dit_step [--fp8-gemm] MODEL DEVICE FRAMES HEIGHT WIDTH [REPEATS] [PEAK_TFLOPS]
 *   (pixel size: 81 480 832 for Wan's 480p default)
 *
 * --fp8-gemm opens the device with vd_backend_options.fp8_gemm: an fp8
 * (e4m3) checkpoint's linear layers run as fp8 GEMMs on sm_89+ GPUs. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "backend/backend.h"
#include "core/rng.h"
#include "io/weights.h"
#include "models/wan_dit.h"

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

int main(int argc, char **argv)
{
    /* options first out of the way; the rest is positional */
    int fp8_gemm = 0, nargs = 1;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--fp8-gemm") == 0)
            fp8_gemm = 1;
        else
            argv[nargs++] = argv[i];
    }
    argc = nargs;
    if (argc < 6) {
        fprintf(stderr,
                "usage: bench_dit_step [--fp8-gemm] MODEL DEVICE FRAMES HEIGHT WIDTH [REPEATS] [PEAK_TFLOPS]\n");
        return 2;
    }
    const int frames = atoi(argv[3]), height = atoi(argv[4]), width = atoi(argv[5]);
    const int reps = argc > 6 ? atoi(argv[6]) : 3;
    const double peak = argc > 7 ? atof(argv[7]) : 790.0;
    vd_backend *be;
    vd_weights *w;
    vd_dit *dit;
    vd_backend_options o = {.fp8_gemm = fp8_gemm};
    if (vd_backend_open(argv[2], &o, &be) != VD_OK || vd_weights_open(argv[1], &w) != VD_OK) {
        fprintf(stderr, "%s\n", vd_last_error());
        return 1;
    }
    double t0 = now();
    if (vd_dit_load(be, w, &dit) != VD_OK) {
        fprintf(stderr, "%s\n", vd_last_error());
        return 1;
    }
    double t_load = now() - t0;
    const vd_dit_config *c = vd_dit_get_config(dit);
    const int64_t T = (frames - 1) / 4 + 1, Hl = height / 8, Wl = width / 8;
    const int64_t n = c->in_dim * T * Hl * Wl, nout = c->out_dim * T * Hl * Wl;
    float *latent = malloc((size_t)(2 * n) * sizeof *latent), *vel = malloc((size_t)(2 * nout) * sizeof *vel);
    float *ctx = malloc((size_t)(512 * c->text_dim) * sizeof *ctx);
    vd_rng_normal(1, 0, 0, latent, n);
    for (int64_t i = 0; i < n; i++)
        latent[n + i] = latent[i];
    vd_rng_uniform(2, 0, 0, ctx, 512 * c->text_dim, -0.1f, 0.1f);
    vd_tensor tc, tu;
    if (vd_dit_embed_text(dit, ctx, 100, &tc) != VD_OK || vd_dit_embed_text(dit, ctx + 100 * c->text_dim, 120, &tu) != VD_OK) {
        fprintf(stderr, "%s\n", vd_last_error());
        return 1;
    }
    vd_dit_call call = {.batch = 2, .frames = T, .height = Hl, .width = Wl, .latent = latent,
                        .text = {&tc, &tu}, .timestep = 500, .velocity = vel};
    /* FLOPs of one forward (wan-spec §5.3), two per CFG step */
    const double L = (double)T * (Hl / 2) * (Wl / 2), D = (double)c->dim, F = (double)c->ffn_dim, Lc = 512;
    const double lin = (double)c->layers * L * (12 * D * D + 4 * D * F), attn = (double)c->layers * 4 * L * L * D;
    const double cross = (double)c->layers * (4 * L * Lc * D + 4 * Lc * D * D);
    const double flops = 2 * (lin + attn + cross);
    if (vd_dit_forward(dit, &call) != VD_OK) { /* warm-up: allocator, cuBLASLt heuristics */
        fprintf(stderr, "%s\n", vd_last_error());
        return 1;
    }
    double best = INFINITY, sum = 0;
    for (int r = 0; r < reps; r++) {
        double t = now();
        if (vd_dit_forward(dit, &call) != VD_OK) {
            fprintf(stderr, "%s\n", vd_last_error());
            return 1;
        }
        t = now() - t;
        sum += t;
        if (t < best)
            best = t;
    }
    double mean = sum / reps;
    printf("model %s: dim %lld, %lld layers; %dx%dx%d -> %.0f tokens; load %.1f s%s\n", argv[1], (long long)c->dim,
           (long long)c->layers, width, height, frames, L, t_load, fp8_gemm ? "; fp8 GEMMs requested" : "");
    printf("CFG step (batch 2) on %s: mean %.3f s, best %.3f s over %d; %.1f TFLOP (linear %.1f, self-attn %.1f, "
           "cross %.1f); %.0f TFLOP/s; floor at %.0f TFLOP/s: %.3f s; ratio to floor %.2f\n",
           argv[2], mean, best, reps, flops / 1e12, 2 * lin / 1e12, 2 * attn / 1e12, 2 * cross / 1e12,
           flops / mean / 1e12, peak, flops / (peak * 1e12), mean / (flops / (peak * 1e12)));
    vd_tensor_release(&tc);
    vd_tensor_release(&tu);
    vd_dit_free(dit);
    vd_weights_close(w);
    vd_backend_close(be);
    free(latent), free(vel), free(ctx);
    return 0;
}

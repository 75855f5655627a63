/* VAE decode of a random normalised latent on a device: the time of
 * vd_vae_decode alone (frames are received and dropped).  Not a test.
 *
 *   bench_vae_decode VAE DEVICE FRAMES HEIGHT WIDTH      (pixels: 81 480 832) */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "backend/backend.h"
#include "core/rng.h"
#include "io/weights.h"
#include "models/wan_vae.h"

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static int count_frames(void *user, const float *rgb, int64_t first, int64_t n, int64_t h, int64_t w)
{
    (void)rgb, (void)first, (void)h, (void)w;
    *(int64_t *)user += n;
    return 0;
}

int main(int argc, char **argv)
{
    if (argc < 6) {
        fprintf(stderr, "usage: bench_vae_decode VAE DEVICE FRAMES HEIGHT WIDTH\n");
        return 2;
    }
    const int64_t T = (atoi(argv[3]) - 1) / 4 + 1, h = atoi(argv[4]) / 8, w = atoi(argv[5]) / 8;
    vd_backend *be;
    vd_weights *wt;
    vd_vae *vae;
    vd_backend_options o = {0};
    if (vd_backend_open(argv[2], &o, &be) != VD_OK || vd_weights_open(argv[1], &wt) != VD_OK ||
        vd_vae_load(be, wt, &vae) != VD_OK) {
        fprintf(stderr, "%s\n", vd_last_error());
        return 1;
    }
    const int64_t n = vd_vae_get_config(vae)->z_dim * T * h * w;
    float *z = malloc((size_t)n * sizeof *z);
    vd_rng_normal(3, 0, 0, z, n);
    int64_t frames = 0;
    double t = now();
    if (vd_vae_decode(vae, z, T, h, w, count_frames, &frames, NULL) != VD_OK) {
        fprintf(stderr, "%s\n", vd_last_error());
        return 1;
    }
    t = now() - t;
    printf("VAE decode on %s: latent [%lld, %lld, %lld, %lld] -> %lld frames of %lldx%lld: %.3f s (%.1f frames/s)\n",
           argv[2], (long long)vd_vae_get_config(vae)->z_dim, (long long)T, (long long)h, (long long)w,
           (long long)frames, (long long)(8 * w), (long long)(8 * h), t, (double)frames / t);
    vd_vae_free(vae);
    vd_weights_close(wt);
    vd_backend_close(be);
    free(z);
    return 0;
}

/* The Wan2.1 VAE encoder on the tiny golden VAE (CPU):
 * - the golden case (vae_encode_case1: video [3,5,16,24] → normalised μ
 *   [16,2,2,3]) within relative L2 1e-4;
 * - a round trip: a smooth synthetic video [3,9,32,48] encodes to a finite
 *   latent [16,3,4,6] that decodes to a finite video [3,9,32,48] in [−1, 1]
 *   (random weights: no claim about how close the two videos are);
 * - causality and cache resets: the first two latent frames of the 9-frame
 *   video equal the encoding of its first 5 frames, and encoding twice gives
 *   the same bits;
 * - errors: frame counts that are not 4k+1, sizes that are not multiples of
 *   8, a NaN, cancellation and a decoder-only VAE. */
#include <stdatomic.h>
#include <unistd.h>

#include "backend/backend.h"
#include "io/model_writer.h"
#include "io/weights.h"
#include "models/wan_vae.h"
#include "test_util.h"

#define GOLD VD_TEST_DATA_DIR "/golden/"

static const float *golden_f32(const vd_weights *w, const char *name, int64_t n)
{
    const vd_weight *x = w ? vd_weights_find(w, name) : NULL;
    if (!x || x->tensor.dtype != VD_F32 || vd_tensor_nelem(&x->tensor) != n) {
        fprintf(stderr, "golden tensor %s missing or not f32 [%lld]\n", name, (long long)n);
        return NULL;
    }
    return x->tensor.data;
}

static void golden_case(vd_vae *vae)
{
    vd_weights *in = NULL, *out = NULL;
    CHECK_OK(vd_weights_open(GOLD "vae_encode_case1_in.safetensors", &in));
    CHECK_OK(vd_weights_open(GOLD "vae_encode_case1_out.safetensors", &out));
    const float *video = golden_f32(in, "video", 3 * 5 * 16 * 24);
    const float *want = golden_f32(out, "latent", 16 * 2 * 2 * 3);
    CHECK(video && want);
    if (video && want) {
        float got[16 * 2 * 2 * 3];
        CHECK_OK(vd_vae_encode(vae, video, 5, 16, 24, got, NULL));
        double err = rel_l2(got, want, 16 * 2 * 2 * 3);
        CHECKF(err <= 1e-4, "golden encode: relative L2 %.3e", err);
        printf("golden encode case 1: relative L2 %.3e\n", err);
    }
    vd_weights_close(in);
    vd_weights_close(out);
}

typedef struct video_sink {
    float *video;
    int64_t frames, height, width, received;
    int order_ok;
} video_sink;

static int collect(void *user, const float *rgb, int64_t first, int64_t n, int64_t H, int64_t W)
{
    video_sink *s = user;
    if (first != s->received || H != s->height || W != s->width || first + n > s->frames) {
        s->order_ok = 0;
        return 1;
    }
    for (int c = 0; c < 3; c++)
        memcpy(s->video + (c * s->frames + first) * H * W, rgb + c * n * H * W, (size_t)(n * H * W) * sizeof(float));
    s->received += n;
    return 0;
}

static int all_finite(const float *p, int64_t n)
{
    for (int64_t i = 0; i < n; i++)
        if (!isfinite(p[i]))
            return 0;
    return 1;
}

/* A smooth moving pattern in [−0.8, 0.8]. */
static float *smooth_video(int64_t F, int64_t H, int64_t W)
{
    float *v = malloc((size_t)(3 * F * H * W) * sizeof *v);
    for (int64_t c = 0; c < 3; c++)
        for (int64_t f = 0; f < F; f++)
            for (int64_t y = 0; y < H; y++)
                for (int64_t x = 0; x < W; x++)
                    v[((c * F + f) * H + y) * W + x] =
                        0.8f * sinf(0.15f * (float)x + 0.21f * (float)y + 0.3f * (float)f + 2.0f * (float)c) *
                        cosf(0.07f * (float)(x - y) - 0.1f * (float)f);
    return v;
}

static void round_trip(vd_vae *vae)
{
    const int64_t F = 9, H = 32, W = 48, T = 3, h = 4, w = 6;
    float *video = smooth_video(F, H, W);
    const int64_t nz = 16 * T * h * w;
    float *z = malloc((size_t)nz * sizeof *z), *z2 = malloc((size_t)nz * sizeof *z2);
    float z5[16 * 2 * 4 * 6];
    CHECK_OK(vd_vae_encode(vae, video, F, H, W, z, NULL));
    CHECK(all_finite(z, nz));
    double sq = 0;
    for (int64_t i = 0; i < nz; i++)
        sq += (double)z[i] * z[i];
    CHECKF(sq > 0, "the latent is all zeros");

    /* the same call again: caches are reset between calls */
    CHECK_OK(vd_vae_encode(vae, video, F, H, W, z2, NULL));
    CHECK(memcmp(z, z2, (size_t)nz * sizeof *z) == 0);

    /* causal: the first 5 frames alone give the first 2 latent frames
     * (video [3,5,H,W] is the prefix of each channel's frames) */
    float *prefix = malloc((size_t)(3 * 5 * H * W) * sizeof *prefix);
    for (int c = 0; c < 3; c++)
        memcpy(prefix + c * 5 * H * W, video + c * F * H * W, (size_t)(5 * H * W) * sizeof *prefix);
    CHECK_OK(vd_vae_encode(vae, prefix, 5, H, W, z5, NULL));
    double worst = 0;
    for (int c = 0; c < 16; c++)
        for (int t = 0; t < 2; t++)
            for (int p = 0; p < h * w; p++) {
                double d = fabs((double)z5[(c * 2 + t) * h * w + p] - (double)z[(c * T + t) * h * w + p]);
                worst = d > worst ? d : worst;
            }
    CHECKF(worst <= 1e-6, "the 5-frame prefix encodes differently (max diff %.3e)", worst);

    /* decode the latent back */
    video_sink s = {.frames = F, .height = H, .width = W, .order_ok = 1};
    s.video = malloc((size_t)(3 * F * H * W) * sizeof *s.video);
    CHECK_OK(vd_vae_decode(vae, z, T, h, w, collect, &s, NULL));
    CHECK(s.order_ok);
    CHECKF(s.received == F, "decoded %lld frames, expected %lld", (long long)s.received, (long long)F);
    CHECK(all_finite(s.video, 3 * F * H * W));
    int in_range = 1;
    for (int64_t i = 0; i < 3 * F * H * W; i++)
        in_range &= s.video[i] >= -1.0f && s.video[i] <= 1.0f;
    CHECK(in_range);
    printf("round trip: video [3,%lld,%lld,%lld] -> latent [16,%lld,%lld,%lld] -> video, finite (rel L2 %.3f, "
           "random weights)\n",
           (long long)F, (long long)H, (long long)W, (long long)T, (long long)h, (long long)w,
           rel_l2(s.video, video, 3 * F * H * W));
    free(s.video);
    free(prefix);
    free(video);
    free(z);
    free(z2);
}

static void bad_inputs(vd_vae *vae)
{
    float *video = smooth_video(9, 32, 32);
    float z[16 * 3 * 4 * 4];
    /* frame counts */
    CHECK_FAILS(vd_vae_encode(vae, video, 4, 32, 32, z, NULL), VD_ERR_SHAPE);
    CHECK_FAILS(vd_vae_encode(vae, video, 2, 32, 32, z, NULL), VD_ERR_SHAPE);
    CHECK_FAILS(vd_vae_encode(vae, video, 0, 32, 32, z, NULL), VD_ERR_SHAPE);
    CHECK(strstr(vd_last_error(), "4k+1") != NULL);
    /* sizes */
    CHECK_FAILS(vd_vae_encode(vae, video, 1, 36, 32, z, NULL), VD_ERR_SHAPE);
    CHECK_FAILS(vd_vae_encode(vae, video, 1, 32, 12, z, NULL), VD_ERR_SHAPE);
    CHECK_FAILS(vd_vae_encode(vae, video, 1, 0, 32, z, NULL), VD_ERR_SHAPE);
    CHECK(strstr(vd_last_error(), "multiples of 8") != NULL);
    /* a NaN and an infinity */
    video[3 * 32 * 32 + 7] = NAN;
    CHECK_FAILS(vd_vae_encode(vae, video, 9, 32, 32, z, NULL), VD_ERR_INVALID_ARGUMENT);
    CHECK(strstr(vd_last_error(), "non-finite") != NULL);
    video[3 * 32 * 32 + 7] = 0.0f;
    video[2 * 9 * 32 * 32 + 5] = INFINITY;
    CHECK_FAILS(vd_vae_encode(vae, video, 9, 32, 32, z, NULL), VD_ERR_INVALID_ARGUMENT);
    video[2 * 9 * 32 * 32 + 5] = 0.0f;
    /* cancelled before the first chunk */
    atomic_int cancel = 1;
    CHECK_FAILS(vd_vae_encode(vae, video, 9, 32, 32, z, &cancel), VD_ERR_CANCELLED);
    /* and it still works afterwards */
    CHECK_OK(vd_vae_encode(vae, video, 9, 32, 32, z, NULL));
    CHECK(all_finite(z, 16 * 3 * 4 * 4));
    free(video);
}

/* A copy of the golden VAE without the encoder (encoder.* and conv1). */
static vd_status write_decoder_only(const vd_weights *w, const char *path)
{
    vd_model_writer *mw;
    VD_TRY(vd_model_writer_open(path, VD_FORMAT_NONE, &mw));
    vd_status st = VD_OK;
    for (int pass = 0; pass < 2 && st == VD_OK; pass++) {
        if (pass == 1)
            st = vd_model_writer_begin(mw);
        for (size_t i = 0; i < vd_weights_count(w) && st == VD_OK; i++) {
            const vd_weight *x = vd_weights_at(w, i);
            if (strncmp(x->name, "encoder.", 8) == 0 || strncmp(x->name, "conv1.", 6) == 0)
                continue;
            if (pass == 0)
                st = vd_model_writer_declare(mw, x->name, x->tensor.dtype, x->tensor.ndim, x->tensor.shape);
            else
                st = vd_model_writer_write(mw, x->tensor.data, vd_tensor_nbytes(&x->tensor));
        }
    }
    vd_status fin = vd_model_writer_finish(mw);
    return st != VD_OK ? st : fin;
}

static void decoder_only(vd_backend *be, const vd_weights *full)
{
    char path[] = "/tmp/vd_test_vae_dec_only_XXXXXX.safetensors";
    int fd = mkstemps(path, 12);
    CHECK(fd >= 0);
    if (fd < 0)
        return;
    close(fd);
    CHECK_OK(write_decoder_only(full, path));
    vd_weights *w = NULL;
    vd_vae *vae = NULL;
    CHECK_OK(vd_weights_open(path, &w));
    if (w)
        CHECK_OK(vd_vae_load(be, w, &vae));
    if (vae) {
        CHECK(!vd_vae_get_config(vae)->has_encoder);
        float *video = smooth_video(5, 16, 16);
        float z[16 * 2 * 2 * 2];
        CHECK_FAILS(vd_vae_encode(vae, video, 5, 16, 16, z, NULL), VD_ERR_UNSUPPORTED);
        CHECK(strstr(vd_last_error(), "only the VAE decoder") != NULL);
        /* decoding still works */
        float latent[16 * 1 * 2 * 2];
        for (int i = 0; i < 16 * 4; i++)
            latent[i] = 0.01f * (float)(i % 7);
        video_sink s = {.frames = 1, .height = 16, .width = 16, .order_ok = 1};
        s.video = malloc(3 * 16 * 16 * sizeof *s.video);
        CHECK_OK(vd_vae_decode(vae, latent, 1, 2, 2, collect, &s, NULL));
        CHECK(s.order_ok && s.received == 1);
        free(s.video);
        free(video);
    }
    vd_vae_free(vae);
    vd_weights_close(w);
    unlink(path);
}

int main(void)
{
    vd_backend *be = NULL;
    vd_backend_options opt = {.threads = 2};
    CHECK_OK(vd_backend_cpu_new(&opt, &be));
    vd_weights *w = NULL;
    vd_vae *vae = NULL;
    CHECK_OK(vd_weights_open(GOLD "vae_tiny_f32.safetensors", &w));
    if (be && w)
        CHECK_OK(vd_vae_load(be, w, &vae));
    if (vae) {
        CHECK(vd_vae_get_config(vae)->has_encoder);
        golden_case(vae);
        round_trip(vae);
        bad_inputs(vae);
        decoder_only(be, w);
    }
    vd_vae_free(vae);
    vd_weights_close(w);
    vd_backend_close(be);
    return test_finish("vae_encode");
}

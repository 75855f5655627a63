/* GPU memory over many clips in one process (issue: "no growth in GPU
 * memory across 10 clips generated in one process").  Skipped (exit 77)
 * without a CUDA build or a GPU.
 *
 * For a resident pipeline and for one whose DiT streams from pinned host
 * memory ("cuda:0,1mb;cpu,*"), on the tiny golden models: the first clip
 * warms the caches (allocator, cuBLASLt, the ring); the device's free
 * memory (cudaMemGetInfo: everything this process holds, caches included)
 * after clips 2..10 must not fall below its value after clip 2 by more than
 * 1 MiB; every clip is the same request, so every clip must also give the
 * same frames.  Closing the pipeline must give back all but the CUDA
 * libraries' own handles (within 96 MiB of the free memory before it
 * opened), and a clip of a different size in between must not leave
 * memory behind either (it may grow the caches once, not per clip). */
#include <stdio.h>
#include <string.h>

#include "test_util.h"
#include "vd_config.h"
#include "vdiff/pipeline.h"

#if VD_HAVE_CUDA
#include <cuda_runtime.h>

#define GOLD VD_TEST_DATA_DIR "/golden/"
#define MIB (1024.0 * 1024.0)

static float ctx[7 * 32], neg[5 * 32];

static int on_frames(void *user, const uint8_t *rgb, int first, int n, int width, int height)
{
    uint64_t *h = user;
    (void)first;
    for (size_t i = 0; i < (size_t)n * (size_t)width * (size_t)height * 3; i++)
        *h = *h * 1099511628211ull ^ rgb[i];
    return 0;
}

static size_t free_bytes(void)
{
    size_t f = 0, t = 0;
    if (cudaDeviceSynchronize() != cudaSuccess || cudaMemGetInfo(&f, &t) != cudaSuccess)
        return 0;
    return f;
}

static vd_request_params request(uint64_t *hash, int width, int height)
{
    vd_request_params rq = vd_request_params_default();
    rq.context = ctx, rq.context_rows = 7;
    rq.negative_context = neg, rq.negative_rows = 5;
    rq.width = width, rq.height = height, rq.frames = 17, rq.steps = 4, rq.seed = 7;
    rq.on_frames = on_frames;
    rq.user = hash;
    *hash = 1469598103934665603ull;
    return rq;
}

static void ten_clips(const char *allocation)
{
    printf("[%s]\n", allocation ? allocation : "resident");
    const size_t before_open = free_bytes();
    vd_pipeline_options po = vd_pipeline_options_default();
    po.dit = GOLD "dit_tiny_t2v_f32.safetensors";
    po.vae = GOLD "vae_tiny_f32.safetensors";
    po.device = "cuda:0";
    po.allocation = allocation;
    vd_pipeline *p = NULL;
    CHECK_OK(vd_pipeline_open(&po, &p));
    if (!p)
        return;
    uint64_t first = 0, h = 0;
    size_t after2 = 0, worst = (size_t)-1;
    for (int clip = 1; clip <= 10; clip++) {
        vd_request_params rq = request(&h, 128, 96);
        CHECK_OK(vd_pipeline_generate(p, &rq, NULL));
        if (clip == 1)
            first = h;
        CHECKF(h == first, "clip %d differs from clip 1", clip);
        const size_t f = free_bytes();
        if (clip == 2)
            after2 = f;
        if (clip >= 2 && f < worst)
            worst = f;
        printf("  clip %2d: %.1f MiB free\n", clip, f / MIB);
        if (clip == 5) {
            /* another size once: the caches may grow for it, once */
            uint64_t other;
            vd_request_params big = request(&other, 192, 128);
            CHECK_OK(vd_pipeline_generate(p, &big, NULL));
            big = request(&other, 192, 128);
            CHECK_OK(vd_pipeline_generate(p, &big, NULL));
            after2 = free_bytes(); /* the new plateau */
            printf("  after two 192x128 clips: %.1f MiB free\n", after2 / MIB);
        }
    }
    const double growth = after2 > worst ? (after2 - worst) / MIB : 0.0;
    printf("  growth over clips 2-10: %.2f MiB\n", growth);
    CHECKF(growth <= 1.0, "GPU memory grew by %.2f MiB over 9 identical clips", growth);
    vd_pipeline_close(p);
    const size_t after_close = free_bytes();
    const double kept = before_open > after_close ? (before_open - after_close) / MIB : 0.0;
    printf("  kept after close: %.1f MiB\n", kept);
    CHECKF(kept <= 96.0, "%.1f MiB still held after the pipeline closed", kept);
}

int main(void)
{
    int n = 0;
    if (cudaGetDeviceCount(&n) != cudaSuccess || n < 1) {
        printf("test_clip_memory: no GPU, skipped\n");
        return 77;
    }
    for (int i = 0; i < 7 * 32; i++)
        ctx[i] = (float)((i * 37) % 101) / 50.0f - 1.0f;
    for (int i = 0; i < 5 * 32; i++)
        neg[i] = (float)((i * 53) % 97) / 48.0f - 1.0f;
    if (cudaFree(0) != cudaSuccess) /* the context, before the first measurement */
        return 77;
    ten_clips(NULL);
    ten_clips("cuda:0,1mb;cpu,*");
    return test_finish("clip_memory");
}

#else

int main(void)
{
    printf("test_clip_memory: this build has no CUDA, skipped\n");
    return 77;
}

#endif

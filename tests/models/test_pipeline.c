/* The generation API on the tiny golden models (CPU): frames arrive in
 * chunks (1, then 4 per latent frame) as RGB8, progress is ordered, output
 * is deterministic for a seed, a request cancelled from another thread
 * stops with VD_ERR_CANCELLED, and bad settings get clear errors. */
#include <pthread.h>
#include <unistd.h>

#include "vdiff/pipeline.h"
#include "test_util.h"

#define GOLD VD_TEST_DATA_DIR "/golden/"

typedef struct sink {
    int chunks, frames, first_expected;
    int chunk_sizes[64];
    int width, height;
    uint64_t hash;
    int progress_calls, last_stage, stage_order_ok, steps_seen;
    vd_request *cancel_at_step; /* cancel when this many steps are done */
    int cancel_step;
} sink;

static int on_frames(void *user, const uint8_t *rgb, int first, int n, int width, int height)
{
    sink *s = user;
    CHECK(first == s->first_expected);
    s->first_expected += n;
    if (s->chunks < 64)
        s->chunk_sizes[s->chunks] = n;
    s->chunks++;
    s->frames += n;
    s->width = width, s->height = height;
    for (size_t i = 0; i < (size_t)n * (size_t)width * (size_t)height * 3; i++)
        s->hash = s->hash * 1099511628211ull ^ rgb[i];
    return 0;
}

static void on_progress(void *user, const vd_progress *p)
{
    sink *s = user;
    if ((int)p->stage < s->last_stage)
        s->stage_order_ok = 0;
    s->last_stage = (int)p->stage;
    s->progress_calls++;
    if (p->stage == VD_STAGE_SAMPLE) {
        s->steps_seen = p->step;
        if (s->cancel_at_step && p->step == s->cancel_step)
            vd_request_cancel(s->cancel_at_step);
    }
}

static float ctx[7 * 32], neg[5 * 32];

static vd_request_params base_request(sink *s)
{
    vd_request_params rq = vd_request_params_default();
    rq.context = ctx;
    rq.context_rows = 7;
    rq.negative_context = neg;
    rq.negative_rows = 5;
    rq.width = 48, rq.height = 32, rq.frames = 9, rq.steps = 3;
    rq.seed = 42;
    rq.on_frames = on_frames;
    rq.on_progress = on_progress;
    rq.user = s;
    memset(s, 0, sizeof *s);
    s->stage_order_ok = 1;
    return rq;
}

typedef struct canceller {
    vd_request *r;
    int delay_ms;
} canceller;

static void *cancel_later(void *arg)
{
    canceller *c = arg;
    usleep((useconds_t)c->delay_ms * 1000);
    vd_request_cancel(c->r);
    return NULL;
}

int main(void)
{
    vd_rng_uniform(1, 0, 0, ctx, 7 * 32, -1, 1);
    vd_rng_uniform(2, 0, 0, neg, 5 * 32, -1, 1);
    vd_pipeline_options po = vd_pipeline_options_default();
    po.dit = GOLD "dit_tiny_t2v_f32.safetensors";
    po.vae = GOLD "vae_tiny_f32.safetensors";
    po.threads = 2;
    vd_pipeline *p = NULL;
    CHECK_OK(vd_pipeline_open(&po, &p));
    if (!p)
        return test_finish("pipeline");
    vd_pipeline_info info;
    CHECK_OK(vd_pipeline_get_info(p, &info));
    CHECK(info.width == 832 && info.height == 480 && info.frames == 81 && info.fps == 16);
    CHECK(info.size_multiple == 16 && info.frame_multiple == 4 && !info.has_text_encoder);

    /* frames in chunks, deterministic for a seed */
    sink a, b;
    vd_request_params rq = base_request(&a);
    CHECK_OK(vd_pipeline_generate(p, &rq, NULL));
    CHECK(a.frames == 9 && a.chunks == 3 && a.chunk_sizes[0] == 1 && a.chunk_sizes[1] == 4 && a.chunk_sizes[2] == 4);
    CHECK(a.width == 48 && a.height == 32);
    CHECK(a.stage_order_ok && a.steps_seen == 3 && a.last_stage == VD_STAGE_DONE);
    rq = base_request(&b);
    CHECK_OK(vd_pipeline_generate(p, &rq, NULL));
    CHECKF(a.hash == b.hash, "same seed, different frames");
    rq = base_request(&b);
    rq.seed = 43;
    CHECK_OK(vd_pipeline_generate(p, &rq, NULL));
    CHECKF(a.hash != b.hash, "different seeds, same frames");

    /* a second pipeline on the same files shares the loaded models and
     * still generates the same clip */
    vd_pipeline *p2 = NULL;
    CHECK_OK(vd_pipeline_open(&po, &p2));
    rq = base_request(&b);
    CHECK_OK(vd_pipeline_generate(p2, &rq, NULL));
    CHECK(a.hash == b.hash);
    vd_pipeline_close(p2);

    /* cancellation: from the progress callback, and from another thread */
    vd_request *r;
    CHECK_OK(vd_request_new(&r));
    rq = base_request(&b);
    rq.steps = 6;
    b.cancel_at_step = r;
    b.cancel_step = 2;
    CHECK_FAILS(vd_pipeline_generate(p, &rq, r), VD_ERR_CANCELLED);
    CHECK(b.steps_seen == 2 && b.frames == 0);
    vd_request_reset(r);
    rq = base_request(&b);
    rq.steps = 200; /* long enough for the canceller to catch it sampling */
    canceller c = {r, 300};
    pthread_t th;
    pthread_create(&th, NULL, cancel_later, &c);
    CHECK_FAILS(vd_pipeline_generate(p, &rq, r), VD_ERR_CANCELLED);
    pthread_join(th, NULL);
    CHECK(b.steps_seen < 200);
    /* the pipeline works after a cancellation */
    vd_request_reset(r);
    rq = base_request(&b);
    CHECK_OK(vd_pipeline_generate(p, &rq, r));
    CHECK(b.hash == a.hash);
    vd_request_free(r);

    /* bad settings */
    rq = base_request(&b);
    rq.frames = 8;
    CHECK_FAILS(vd_pipeline_generate(p, &rq, NULL), VD_ERR_INVALID_ARGUMENT);
    rq = base_request(&b);
    rq.width = 40;
    CHECK_FAILS(vd_pipeline_generate(p, &rq, NULL), VD_ERR_INVALID_ARGUMENT);
    rq = base_request(&b);
    rq.steps = -1;
    CHECK_FAILS(vd_pipeline_generate(p, &rq, NULL), VD_ERR_INVALID_ARGUMENT);
    rq = base_request(&b);
    rq.context = NULL; /* no prompt, no text encoder */
    CHECK_FAILS(vd_pipeline_generate(p, &rq, NULL), VD_ERR_INVALID_ARGUMENT);
    rq = base_request(&b);
    rq.prompt = "a fox";
    rq.context = NULL;
    CHECK_FAILS(vd_pipeline_generate(p, &rq, NULL), VD_ERR_INVALID_ARGUMENT);
    rq = base_request(&b);
    float bad_ctx[7 * 32];
    memcpy(bad_ctx, ctx, sizeof bad_ctx);
    bad_ctx[5] = NAN;
    rq.context = bad_ctx;
    CHECK_FAILS(vd_pipeline_generate(p, &rq, NULL), VD_ERR_INVALID_ARGUMENT);
    rq = base_request(&b);
    float *noise = calloc(16 * 3 * 4 * 6, sizeof *noise);
    noise[17] = INFINITY;
    rq.noise = noise;
    CHECK_FAILS(vd_pipeline_generate(p, &rq, NULL), VD_ERR_INVALID_ARGUMENT);
    free(noise);
    CHECK(b.frames == 0);
    vd_pipeline_close(p);

    /* bad model sets */
    vd_pipeline_options bad = po;
    bad.dit = GOLD "vae_tiny_f32.safetensors";
    CHECK_FAILS(vd_pipeline_open(&bad, &p), VD_ERR_UNSUPPORTED);
    bad = po;
    bad.vae = GOLD "dit_tiny_t2v_f32.safetensors";
    CHECK_FAILS(vd_pipeline_open(&bad, &p), VD_ERR_UNSUPPORTED);
    bad = po;
    bad.dit = GOLD "dit_tiny_i2v_f32.safetensors"; /* image-to-video: 36 channels in */
    CHECK_FAILS(vd_pipeline_open(&bad, &p), VD_ERR_UNSUPPORTED);
    bad = po;
    bad.dit = GOLD "no-such-file.safetensors";
    CHECK_FAILS(vd_pipeline_open(&bad, &p), VD_ERR_NOT_FOUND);
    bad = po;
    bad.device = "gpu:0";
    CHECK_FAILS(vd_pipeline_open(&bad, &p), VD_ERR_INVALID_ARGUMENT);
    bad = po;
    bad.allocation = "cuda:0,2.5xb;cpu,*";
    CHECK_FAILS(vd_pipeline_open(&bad, &p), VD_ERR_INVALID_ARGUMENT);
    CHECK(strstr(vd_last_error(), "2.5xb") != NULL);
    bad = po;
    bad.vae = NULL;
    CHECK_FAILS(vd_pipeline_open(&bad, &p), VD_ERR_INVALID_ARGUMENT);
    return test_finish("pipeline");
}

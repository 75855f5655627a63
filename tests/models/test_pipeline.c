/* The generation API on the tiny golden models (CPU): frames arrive in
 * chunks (1, then 4 per latent frame) as RGB8, progress is ordered, output
 * is deterministic for a seed, a request cancelled from another thread
 * stops with VD_ERR_CANCELLED, and bad settings get clear errors.
 *
 * Placement: each model may name its own device (the same frames when the
 * text encoder and the VAE are put on "cpu" explicitly); a DiT released
 * for each decode is loaded again and gives the same frames; a bad
 * vae_device or text_encoder_device is refused with a message naming it. */
#include <pthread.h>
#include <unistd.h>

#include "io/model_writer.h"
#include "io/weights.h"
#include "model_cache.h"
#include "models/tokenizer.h"
#include "test_util.h"
#include "vd_config.h"
#include "vdiff/pipeline.h"

#define GOLD VD_TEST_DATA_DIR "/golden/"
#define TOKENIZER VD_TEST_DATA_DIR "/tokenizer/vdiff-small.model"

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

/* ---- placement ------------------------------------------------------------------ */

static bool contains(const char *haystack, const char *needle) { return strstr(haystack, needle) != NULL; }

/* A bad vae_device: refused with `status`, naming the option and the device. */
static void check_bad_vae_device(const vd_pipeline_options *po, const char *device, vd_status status)
{
    vd_pipeline_options bad = *po;
    bad.vae_device = device;
    vd_pipeline *p = NULL;
    vd_clear_error();
    vd_status st = vd_pipeline_open(&bad, &p);
    if (st == VD_OK && VD_HAVE_CUDA && strncmp(device, "cuda", 4) == 0) {
        vd_pipeline_close(p); /* a machine that has this GPU */
        return;
    }
    CHECKF(st == status, "vae_device %s: %s (%s)", device, vd_status_name(st), vd_last_error());
    CHECKF(contains(vd_last_error(), "vae_device") && contains(vd_last_error(), device), "message: %s",
           vd_last_error());
    CHECK(p == NULL);
}

/* Copy a checkpoint with one tensor replaced by `data` of `shape` (f32). */
static void write_with(const char *src, const char *dst, const char *name, const int64_t *shape, int ndim,
                       const float *data)
{
    vd_weights *w = NULL;
    CHECK_OK(vd_weights_open(src, &w));
    vd_model_writer *mw = NULL;
    if (w)
        CHECK_OK(vd_model_writer_open(dst, VD_FORMAT_SAFETENSORS, &mw));
    if (!w || !mw) {
        vd_weights_close(w);
        return;
    }
    size_t n = vd_weights_count(w);
    for (size_t i = 0; i < n; i++) {
        const vd_weight *x = vd_weights_at(w, i);
        bool swap = strcmp(x->name, name) == 0;
        CHECK_OK(vd_model_writer_declare(mw, x->name, swap ? VD_F32 : x->tensor.dtype, swap ? ndim : x->tensor.ndim,
                                         swap ? shape : x->tensor.shape));
    }
    CHECK_OK(vd_model_writer_begin(mw));
    for (size_t i = 0; i < n; i++) {
        const vd_weight *x = vd_weights_at(w, i);
        if (strcmp(x->name, name) == 0) {
            int64_t ne = 1;
            for (int d = 0; d < ndim; d++)
                ne *= shape[d];
            CHECK_OK(vd_model_writer_write(mw, data, (size_t)ne * sizeof *data));
        } else {
            CHECK_OK(vd_model_writer_write(mw, x->tensor.data, vd_tensor_nbytes(&x->tensor)));
        }
    }
    CHECK_OK(vd_model_writer_finish(mw));
    vd_weights_close(w);
}

/* A prompt-capable pair from the goldens: the tiny umT5 (d_model 64) with
 * its embedding grown to the test tokenizer's vocabulary, and the tiny DiT
 * with text_embedding.0 widened from 32 to 64 input features (the golden
 * columns kept, the new ones random). */
static bool write_prompt_models(const char *dit, const char *te)
{
    vd_tokenizer *tok = NULL;
    CHECK_OK(vd_tokenizer_open(TOKENIZER, &tok));
    vd_weights *g = NULL;
    CHECK_OK(vd_weights_open(GOLD "umt5_tiny_f32.safetensors", &g));
    const vd_weight *shared = g ? vd_weights_find(g, "shared.weight") : NULL;
    vd_weights *d = NULL;
    CHECK_OK(vd_weights_open(GOLD "dit_tiny_t2v_f32.safetensors", &d));
    const vd_weight *temb = d ? vd_weights_find(d, "text_embedding.0.weight") : NULL;
    bool ok = tok && shared && temb && shared->tensor.dtype == VD_F32 && temb->tensor.dtype == VD_F32;
    CHECK(ok);
    if (ok) {
        const int64_t D = shared->tensor.shape[1], rows = shared->tensor.shape[0];
        const int64_t vocab = ((int64_t)vd_tokenizer_vocab_size(tok) + 63) / 64 * 64;
        float *table = random_floats(7, vocab * D, -1.7f, 1.7f);
        memcpy(table, shared->tensor.data, (size_t)(rows * D) * sizeof *table);
        write_with(GOLD "umt5_tiny_f32.safetensors", te, "shared.weight", (int64_t[]){vocab, D}, 2, table);
        free(table);

        const int64_t out = temb->tensor.shape[0], in = temb->tensor.shape[1];
        float *wide = random_floats(8, out * D, -0.2f, 0.2f);
        const float *old = temb->tensor.data;
        for (int64_t r = 0; r < out; r++)
            memcpy(wide + r * D, old + r * in, (size_t)in * sizeof *wide);
        write_with(GOLD "dit_tiny_t2v_f32.safetensors", dit, "text_embedding.0.weight", (int64_t[]){out, D}, 2,
                   wide);
        free(wide);
    }
    vd_weights_close(d);
    vd_weights_close(g);
    vd_tokenizer_free(tok);
    return ok && test_failures == 0;
}

/* Frames of one prompt request (with CFG and the default negative prompt). */
static uint64_t prompt_clip(vd_pipeline *p)
{
    sink s;
    vd_request_params rq = base_request(&s);
    rq.context = rq.negative_context = NULL;
    rq.context_rows = rq.negative_rows = 0;
    rq.prompt = "a red fox runs through snow";
    CHECK_OK(vd_pipeline_generate(p, &rq, NULL));
    CHECK(s.frames == 9);
    return s.hash;
}

/* The text encoder and the VAE placed on "cpu" by name, and released
 * models, give the frames of the default placement. */
static void test_prompt_placement(const vd_pipeline_options *base)
{
    char dir[] = "/tmp/test_pipeline_XXXXXX";
    if (!mkdtemp(dir)) {
        CHECKF(0, "cannot create a scratch directory");
        return;
    }
    char dit[sizeof dir + 32], te[sizeof dir + 32];
    snprintf(dit, sizeof dit, "%s/dit.safetensors", dir);
    snprintf(te, sizeof te, "%s/umt5.safetensors", dir);
    if (write_prompt_models(dit, te)) {
        vd_pipeline_options po = *base;
        po.dit = dit;
        po.text_encoder = te;
        po.tokenizer = TOKENIZER;
        vd_pipeline *p = NULL;
        CHECK_OK(vd_pipeline_open(&po, &p));
        const int entries = vd_cache_count(); /* the CPU backend, DiT, VAE, text encoder */
        uint64_t want = p ? prompt_clip(p) : 0;

        /* named "cpu" explicitly: the same backend, the same loaded models */
        vd_pipeline_options named = po;
        named.text_encoder_device = "cpu";
        named.vae_device = "cpu";
        vd_pipeline *q = NULL;
        CHECK_OK(vd_pipeline_open(&named, &q));
        CHECKF(vd_cache_count() == entries, "%d cache entries, %d before", vd_cache_count(), entries);
        if (q)
            CHECKF(prompt_clip(q) == want, "text encoder and VAE on \"cpu\" changed the frames");
        vd_pipeline_close(q);
        vd_pipeline_close(p);
        CHECK(vd_cache_count() == 0);

        /* both released: the text encoder, then the DiT come back for each
         * request, one after the other */
        vd_pipeline_options rel = named;
        rel.release_text_encoder = 1;
        rel.release_dit_for_decode = 1;
        CHECK_OK(vd_pipeline_open(&rel, &q));
        if (q) {
            CHECKF(prompt_clip(q) == want, "released models changed the frames (first request)");
            CHECKF(vd_cache_count() == entries - 2, "%d cache entries after a request, expected %d",
                   vd_cache_count(), entries - 2);
            CHECKF(prompt_clip(q) == want, "released models changed the frames (second request)");
        }
        vd_pipeline_close(q);

        /* a bad text encoder device names its option */
        vd_pipeline_options bad = po;
        bad.text_encoder_device = "tpu";
        CHECK_FAILS(vd_pipeline_open(&bad, &q), VD_ERR_INVALID_ARGUMENT);
        CHECKF(contains(vd_last_error(), "text_encoder_device tpu"), "message: %s", vd_last_error());
    }
    remove(dit);
    remove(te);
    rmdir(dir);
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
    CHECK(vd_cache_count() == 0);

    /* the VAE on "cpu" by name: the same backend and model as the default */
    vd_pipeline_options named = po;
    named.vae_device = "cpu";
    named.text_encoder_device = "cpu"; /* no text encoder: unused */
    CHECK_OK(vd_pipeline_open(&named, &p));
    CHECKF(vd_cache_count() == 3, "%d cache entries (the CPU backend, DiT and VAE expected)", vd_cache_count());
    rq = base_request(&b);
    if (p)
        CHECK_OK(vd_pipeline_generate(p, &rq, NULL));
    CHECKF(b.hash == a.hash, "the VAE on \"cpu\" changed the frames");
    vd_pipeline_close(p);

    /* the DiT released for each decode: loaded again for the next request,
     * with the same frames every time */
    vd_pipeline_options rel = po;
    rel.release_dit_for_decode = 1;
    CHECK_OK(vd_pipeline_open(&rel, &p));
    for (int i = 0; p && i < 2; i++) {
        rq = base_request(&b);
        CHECK_OK(vd_pipeline_generate(p, &rq, NULL));
        CHECKF(b.hash == a.hash, "request %d with release_dit_for_decode changed the frames", i + 1);
        CHECKF(vd_cache_count() == 2, "the DiT is still loaded after request %d (%d cache entries)", i + 1,
               vd_cache_count());
        vd_pipeline_info ri;
        CHECK_OK(vd_pipeline_get_info(p, &ri));
        CHECK(ri.width == info.width && ri.frames == info.frames);
        int64_t shape[4];
        CHECK_OK(vd_pipeline_latent_shape(p, &rq, shape)); /* no DiT needed */
        CHECK(shape[0] == 16 && shape[1] == 3 && shape[2] == 4 && shape[3] == 6);
    }
    /* a failed sampling keeps the reloaded DiT for the next request */
    if (p) {
        vd_request *stop;
        CHECK_OK(vd_request_new(&stop));
        rq = base_request(&b);
        b.cancel_at_step = stop;
        b.cancel_step = 1;
        CHECK_FAILS(vd_pipeline_generate(p, &rq, stop), VD_ERR_CANCELLED);
        CHECK(vd_cache_count() == 3);
        rq = base_request(&b);
        CHECK_OK(vd_pipeline_generate(p, &rq, NULL));
        CHECK(b.hash == a.hash);
        vd_request_free(stop);
    }
    vd_pipeline_close(p);
    CHECK(vd_cache_count() == 0);

    /* a VAE device that is not there, or not a device */
    check_bad_vae_device(&po, "cuda:7", VD_ERR_DEVICE);
    check_bad_vae_device(&po, "tpu", VD_ERR_INVALID_ARGUMENT);
    CHECK(vd_cache_count() == 0); /* nothing left loaded by the failures */

    test_prompt_placement(&po);

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

/* Text-to-video: prompt → umT5 embeddings → DiT sampling with CFG → VAE
 * decode → RGB frames, as documented in vdiff/pipeline.h. */
#include "vdiff/pipeline.h"

#include <limits.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "backend/backend.h"
#include "backend/cuda/backend_cuda.h"
#include "core/error.h"
#include "core/rng.h"
#include "model_cache.h"
#include "models/text_encoder.h"
#include "models/wan_dit.h"
#include "models/wan_vae.h"
#include "offload/allocation.h"
#include "sampling/sampler.h"
#include "vd_config.h"

struct vd_request {
    atomic_int cancelled;
};

/* A loaded model with the file it reads from; shared through the cache. */
typedef struct loaded_model {
    vd_weights *weights;
    void *backend_ref;  /* the cached backend it lives on */
    vd_dit *dit;
    vd_vae *vae;
    vd_text_encoder *te;
    pthread_mutex_t lock; /* one generation at a time per model */
} loaded_model;

struct vd_pipeline {
    vd_backend *be;            /* the DiT's device (the compute device) */
    vd_backend *te_be, *vae_be; /* the text encoder's and the VAE's: cache references, the
                                  same object as `be` when they share its device */
    loaded_model *dit, *vae, *te;
    char *dit_path;            /* to reload a released or re-planned DiT */
    char *te_path, *tok_path;  /* to reload a released text encoder */
    int release_te, release_dit;
    vd_dit_config dit_config;  /* kept, since the DiT may be released between requests */
    vd_pipeline_info info;
    vd_allocation allocation;
    char *allocation_text;     /* as given, for the DiT's cache key and messages */
    int64_t plan_T, plan_h, plan_w; /* latent the DiT's placement was planned for; 0 = the default clip */
    uint64_t reserve_bytes;    /* VRAM the VAE and text encoder will take (auto's default budget) */
};

const char *vd_version(void) { return VD_VERSION; }

const char *vd_default_negative_prompt(void)
{
    return "色调艳丽，过曝，静态，细节模糊不清，字幕，风格，作品，画作，画面，静止，整体发灰，最差质量，低质量，JPEG压缩残留，"
           "丑陋的，残缺的，多余的手指，画得不好的手部，画得不好的脸部，畸形的，毁容的，形态畸形的肢体，手指融合，"
           "静止不动的画面，杂乱的背景，三条腿，背景人很多，倒着走";
}

const char *vd_stage_name(vd_stage stage)
{
    switch (stage) {
    case VD_STAGE_ENCODE_TEXT: return "encode";
    case VD_STAGE_SAMPLE: return "sample";
    case VD_STAGE_DECODE: return "decode";
    case VD_STAGE_DONE: return "done";
    }
    return "unknown";
}

vd_pipeline_options vd_pipeline_options_default(void)
{
    vd_pipeline_options o;
    memset(&o, 0, sizeof o);
    o.device = "cpu";
    return o;
}

vd_request_params vd_request_params_default(void)
{
    vd_request_params p;
    memset(&p, 0, sizeof p);
    p.guidance = -1;
    p.sampler = VD_SAMPLE_UNIPC;
    return p;
}

vd_status vd_allocation_validate(const char *allocation)
{
    vd_allocation a;
    return vd_allocation_parse(allocation, &a);
}

/* ---- requests ---------------------------------------------------------------- */

vd_status vd_request_new(vd_request **out)
{
    *out = calloc(1, sizeof **out);
    if (!*out)
        return vd_error(VD_ERR_OUT_OF_MEMORY, "out of memory");
    atomic_init(&(*out)->cancelled, 0);
    return VD_OK;
}

void vd_request_cancel(vd_request *r)
{
    if (r)
        atomic_store(&r->cancelled, 1);
}

void vd_request_reset(vd_request *r)
{
    if (r)
        atomic_store(&r->cancelled, 0);
}

void vd_request_free(vd_request *r) { free(r); }

/* ---- loading (through the process-wide cache) ------------------------------- */

typedef struct backend_args {
    const char *device;
    int threads;
} backend_args;

static vd_status make_backend(void *ctx, void **obj)
{
    backend_args *a = ctx;
    vd_backend_options o = {.threads = a->threads};
    return vd_backend_open(a->device, &o, (vd_backend **)obj);
}

static void free_backend(void *obj) { vd_backend_close(obj); }

typedef enum { LOAD_DIT, LOAD_VAE, LOAD_TE } load_kind;

typedef struct model_args {
    load_kind kind;
    const char *path;
    const char *tokenizer;
    vd_backend *be;
    void *backend_ref;
    const vd_allocation *alloc;  /* the DiT's placement (NULL: resident) */
    const char *alloc_text;
    uint64_t reserve_bytes;
    bool made;                   /* set by make_model: the model took backend_ref */
    int64_t plan_T, plan_h, plan_w; /* the DiT's planned latent; 0 = the model's default clip */
} model_args;

static int meta_int(const vd_weights *w, const char *key, int fallback);

/* The clip a DiT makes by default: Wan's published size, or what the
 * checkpoint's metadata states (vdiff mkmodel writes small ones). */
static void default_clip(const vd_weights *w, bool ti2v, int *width, int *height, int *frames)
{
    *width = meta_int(w, "vdiff.default_width", ti2v ? 1280 : 832);
    *height = meta_int(w, "vdiff.default_height", ti2v ? 704 : 480);
    *frames = meta_int(w, "vdiff.default_frames", ti2v ? 121 : 81);
}

/* The latent of a clip, as the DiT's placement is planned for it (as resolve()). */
static void clip_latent(int width, int height, int frames, int64_t *T, int64_t *h, int64_t *w)
{
    *T = (frames - 1) / 4 + 1, *h = height / 8, *w = width / 8;
}

/* The DiT's placement, planned for the model's default clip size (the size
 * of a request is not known when the model loads). */
static vd_status load_dit(const model_args *a, vd_weights *w, vd_dit **out)
{
    if (!a->alloc || a->alloc->mode == VD_ALLOC_RESIDENT)
        return vd_dit_load(a->be, w, out);
    vd_arch_info ai;
    bool ti2v = vd_arch_detect(w, &ai) == VD_OK && ai.arch == VD_ARCH_WAN_DIT && ai.dit.variant == VD_DIT_TI2V22;
    int width, height, frames;
    default_clip(w, ti2v, &width, &height, &frames);
    vd_dit_allocation da = {.alloc = a->alloc, .text = a->alloc_text, .reserve_bytes = a->reserve_bytes};
    clip_latent(width, height, frames, &da.frames, &da.height, &da.width);
    if (a->plan_T > 0) /* re-planned for a larger request */
        da.frames = a->plan_T, da.height = a->plan_h, da.width = a->plan_w;
    return vd_dit_load_with_allocation(a->be, w, &da, out);
}

static void free_model(void *obj)
{
    loaded_model *m = obj;
    vd_dit_free(m->dit);
    vd_vae_free(m->vae);
    vd_text_encoder_free(m->te);
    vd_weights_close(m->weights);
    vd_cache_release(m->backend_ref);
    pthread_mutex_destroy(&m->lock);
    free(m);
}

static vd_status make_model(void *ctx, void **obj)
{
    model_args *a = ctx;
    loaded_model *m = calloc(1, sizeof *m);
    if (!m)
        return vd_error(VD_ERR_OUT_OF_MEMORY, "out of memory");
    pthread_mutex_init(&m->lock, NULL);
    vd_status st = VD_OK;
    if (a->kind == LOAD_TE) {
        st = vd_text_encoder_open(a->be, a->path, a->tokenizer, &m->te);
    } else {
        st = vd_weights_open(a->path, &m->weights);
        if (st == VD_OK)
            st = a->kind == LOAD_DIT ? load_dit(a, m->weights, &m->dit) : vd_vae_load(a->be, m->weights, &m->vae);
    }
    if (st != VD_OK) {
        free_model(m);
        return st;
    }
    m->backend_ref = a->backend_ref;
    a->made = true;
    *obj = m;
    return VD_OK;
}

/* `kind` from `path` on `be` (one of the pipeline's backends). */
static vd_status acquire_model(vd_pipeline *p, load_kind kind, vd_backend *be, const char *path,
                               const char *tokenizer, loaded_model **out)
{
    char resolved[PATH_MAX];
    if (!realpath(path, resolved))
        snprintf(resolved, sizeof resolved, "%s", path); /* the loader reports the error */
    char key[PATH_MAX * 2 + 640];
    /* the device is part of the key (one file on two devices is two loaded
     * models); a DiT placed by an allocation is a different loaded object */
    const bool placed = kind == LOAD_DIT && p->allocation.mode != VD_ALLOC_RESIDENT && p->allocation_text;
    snprintf(key, sizeof key, "%d|%s|%s|%s|%s|%lldx%lldx%lld", (int)kind, be->name, resolved, tokenizer ? tokenizer : "",
             placed ? p->allocation_text : "", placed ? (long long)p->plan_T : 0LL,
             placed ? (long long)p->plan_h : 0LL, placed ? (long long)p->plan_w : 0LL);
    /* each model keeps its own reference to the backend */
    void *be_ref;
    backend_args ba = {be->name, be->threads};
    VD_TRY(vd_cache_acquire(VD_CACHED_BACKEND, be->name, make_backend, &ba, free_backend, &be_ref));
    model_args ma = {kind, path, tokenizer, be, be_ref, &p->allocation, p->allocation_text, p->reserve_bytes, false,
                     p->plan_T, p->plan_h, p->plan_w};
    vd_cached_kind ck = kind == LOAD_DIT ? VD_CACHED_DIT : (kind == LOAD_VAE ? VD_CACHED_VAE : VD_CACHED_TEXT_ENCODER);
    void *obj;
    vd_status st = vd_cache_acquire(ck, key, make_model, &ma, free_model, &obj);
    if (st != VD_OK) {
        vd_cache_release(be_ref);
        return st;
    }
    /* On a cache hit make_model did not run: the model holds a reference of
     * its own already (the same object, backends being shared by name). */
    if (!ma.made)
        vd_cache_release(be_ref);
    *out = obj;
    return VD_OK;
}

/* A cache reference to the backend of `device`, shared under its canonical
 * name ("cuda" and "cuda:0" are one backend).  Errors name the option that
 * asked for the device ("vae_device cuda:7: ..."). */
static vd_status acquire_backend(const char *option, const char *device, int threads, vd_backend **out)
{
    *out = NULL;
    char name[32];
    vd_status st = VD_OK;
    if (strcmp(device, "cpu") == 0) {
        snprintf(name, sizeof name, "cpu"); /* canonical already: no probe (and no thread pool) needed */
    } else {
        /* probe the name, then share the backend by its canonical name */
        vd_backend *probe;
        vd_backend_options bo = {.threads = threads};
        st = vd_backend_open(device, &bo, &probe);
        if (st == VD_OK) {
            snprintf(name, sizeof name, "%s", probe->name);
            vd_backend_close(probe);
        }
    }
    if (st == VD_OK) {
        backend_args ba = {name, threads};
        void *obj;
        st = vd_cache_acquire(VD_CACHED_BACKEND, name, make_backend, &ba, free_backend, &obj);
        if (st == VD_OK)
            *out = obj;
    }
    return st == VD_OK ? VD_OK : vd_error_context(st, "%s %s: ", option, device);
}

/* The backend of a model that may name its own device (NULL or "": the
 * compute device `be`, which the pipeline options named `compute`). */
static vd_status acquire_model_backend(const char *option, const char *device, const char *compute, vd_backend *be,
                                       int threads, vd_backend **out)
{
    if (device && device[0] && strcmp(device, compute) != 0 && strcmp(device, be->name) != 0)
        return acquire_backend(option, device, threads, out);
    /* the compute device: another reference to its backend, without a probe */
    backend_args ba = {be->name, threads};
    void *obj;
    VD_TRY(vd_cache_acquire(VD_CACHED_BACKEND, be->name, make_backend, &ba, free_backend, &obj));
    *out = obj;
    return VD_OK;
}

/* Give the allocator's cached free blocks of a CUDA device back to the
 * driver, so that what was just released is free for the next model (and
 * for other processes), not only for this backend. */
static void trim_device(vd_backend *be)
{
    if (be && be->kind == VD_DEVICE_CUDA)
        vd_backend_cuda_release_cached(be);
}

/* Defaults: Wan's published settings, or those a checkpoint states in its
 * metadata (vdiff mkmodel writes small ones for tiny test models). */
static int meta_int(const vd_weights *w, const char *key, int fallback)
{
    const char *v = w ? vd_weights_meta_string(w, key) : NULL;
    if (!v)
        return fallback;
    char *end;
    long x = strtol(v, &end, 10);
    return (*end == '\0' && x > 0 && x < 100000) ? (int)x : fallback;
}

static void fill_info(vd_pipeline *p)
{
    vd_pipeline_info *i = &p->info;
    const vd_dit_config *c = &p->dit_config;
    memset(i, 0, sizeof *i);
    vd_arch_info ai;
    if (vd_arch_detect(p->dit->weights, &ai) == VD_OK) {
        snprintf(i->dit_name, sizeof i->dit_name, "%s", ai.name);
        i->dit_params = ai.params;
    }
    bool ti2v = c->variant == VD_DIT_TI2V22;
    default_clip(p->dit->weights, ti2v, &i->width, &i->height, &i->frames);
    i->fps = meta_int(p->dit->weights, "vdiff.default_fps", ti2v ? 24 : 16);
    i->steps = meta_int(p->dit->weights, "vdiff.default_steps", 50);
    i->shift = 5.0;
    i->guidance = 5.0;
    i->size_multiple = (int)(8 * c->patch[1]);
    i->frame_multiple = 4;
    i->has_text_encoder = p->te_path != NULL;
}

void vd_pipeline_close(vd_pipeline *p)
{
    if (!p)
        return;
    if (p->te)
        vd_cache_release(p->te);
    if (p->vae)
        vd_cache_release(p->vae);
    if (p->dit)
        vd_cache_release(p->dit);
    /* the models' own references keep a backend alive until they are gone */
    if (p->te_be)
        vd_cache_release(p->te_be);
    if (p->vae_be)
        vd_cache_release(p->vae_be);
    if (p->be)
        vd_cache_release(p->be);
    free(p->dit_path);
    free(p->te_path);
    free(p->tok_path);
    free(p->allocation_text);
    free(p);
}

static uint64_t file_bytes(const char *path)
{
    struct stat sb;
    return path && path[0] && stat(path, &sb) == 0 && sb.st_size > 0 ? (uint64_t)sb.st_size : 0;
}

vd_status vd_pipeline_open(const vd_pipeline_options *opt, vd_pipeline **out)
{
    *out = NULL;
    if (!opt || !opt->dit || !opt->dit[0])
        return vd_error(VD_ERR_INVALID_ARGUMENT, "no DiT model given (the model option names a Wan DiT checkpoint)");
    if (!opt->vae || !opt->vae[0])
        return vd_error(VD_ERR_INVALID_ARGUMENT, "no VAE given (the vae option names a Wan VAE checkpoint, e.g. "
                                                 "wan_2.1_vae.safetensors)");
    if (opt->threads < 0 || opt->threads > 1024)
        return vd_error(VD_ERR_INVALID_ARGUMENT, "threads=%d: must be 0 (all cores) to 1024", opt->threads);
    vd_pipeline *p = calloc(1, sizeof *p);
    if (!p)
        return vd_error(VD_ERR_OUT_OF_MEMORY, "out of memory");
    vd_status st = vd_allocation_parse(opt->allocation, &p->allocation);
    if (st == VD_OK && opt->allocation) {
        p->allocation_text = strdup(opt->allocation);
        if (!p->allocation_text)
            st = vd_error(VD_ERR_OUT_OF_MEMORY, "out of memory");
    }
    const char *device = opt->device && opt->device[0] ? opt->device : "cpu";
    const bool has_te = opt->text_encoder && opt->text_encoder[0];
    /* every device first: a bad one fails before any model loads */
    if (st == VD_OK)
        st = acquire_backend("device", device, opt->threads, &p->be);
    if (st == VD_OK && has_te)
        st = acquire_model_backend("text_encoder_device", opt->text_encoder_device, device, p->be, opt->threads,
                                   &p->te_be);
    if (st == VD_OK)
        st = acquire_model_backend("vae_device", opt->vae_device, device, p->be, opt->threads, &p->vae_be);
    /* the VAE and the text encoder on the DiT's GPU take part of its memory
     * (a released text encoder comes back for each request's prompts) */
    if (st == VD_OK)
        p->reserve_bytes = (p->vae_be == p->be ? file_bytes(opt->vae) : 0) +
                           (has_te && p->te_be == p->be ? file_bytes(opt->text_encoder) : 0);
    if (st == VD_OK)
        st = acquire_model(p, LOAD_DIT, p->be, opt->dit, NULL, &p->dit);
    if (st == VD_OK)
        st = acquire_model(p, LOAD_VAE, p->vae_be, opt->vae, NULL, &p->vae);
    if (st == VD_OK && has_te)
        st = acquire_model(p, LOAD_TE, p->te_be, opt->text_encoder, opt->tokenizer, &p->te);
    if (st == VD_OK) {
        p->dit_config = *vd_dit_get_config(p->dit->dit);
        const vd_dit_config *c = &p->dit_config;
        const vd_vae_config *v = vd_vae_get_config(p->vae->vae);
        if (c->out_dim != v->z_dim || (c->in_dim != v->z_dim && c->variant == VD_DIT_T2V))
            st = vd_error(VD_ERR_UNSUPPORTED,
                          "the DiT '%s' works on %lld latent channels but the VAE '%s' has %lld; pair Wan2.1/2.2-A14B "
                          "models with the Wan2.1 VAE and TI2V-5B with the Wan2.2 VAE",
                          opt->dit, (long long)c->out_dim, opt->vae, (long long)v->z_dim);
        else if (c->variant != VD_DIT_T2V && c->variant != VD_DIT_TI2V22)
            st = vd_error(VD_ERR_UNSUPPORTED,
                          "'%s' is an image-to-video model; this pipeline generates text-to-video (use a T2V model)",
                          opt->dit);
        if (st == VD_OK && p->te) {
            int64_t d = vd_text_encoder_dim(p->te->te);
            if (d != c->text_dim)
                st = vd_error(VD_ERR_UNSUPPORTED,
                              "the text encoder '%s' gives %lld-wide embeddings but the DiT expects %lld (Wan uses "
                              "umT5-XXL, 4096)",
                              opt->text_encoder, (long long)d, (long long)c->text_dim);
        }
    }
    if (st == VD_OK && p->te) {
        p->te_path = strdup(opt->text_encoder);
        p->tok_path = opt->tokenizer ? strdup(opt->tokenizer) : NULL;
        if (!p->te_path || (opt->tokenizer && !p->tok_path))
            st = vd_error(VD_ERR_OUT_OF_MEMORY, "out of memory");
        p->release_te = opt->release_text_encoder;
    }
    if (st == VD_OK) { /* to reload a released or re-planned DiT */
        p->dit_path = strdup(opt->dit);
        if (!p->dit_path)
            st = vd_error(VD_ERR_OUT_OF_MEMORY, "out of memory");
        p->release_dit = opt->release_dit_for_decode != 0;
    }
    if (st != VD_OK) {
        vd_pipeline_close(p);
        return st;
    }
    fill_info(p);
    if (p->release_te) {
        /* checked and measured; loaded again for each request's prompts */
        vd_cache_release(p->te);
        p->te = NULL;
    }
    /* A DiT released for decoding stays loaded until the first request has
     * sampled: that request need not load it twice. */
    *out = p;
    return VD_OK;
}

vd_status vd_pipeline_get_info(const vd_pipeline *p, vd_pipeline_info *out)
{
    *out = p->info;
    return VD_OK;
}

vd_status vd_pipeline_device_memory(const vd_pipeline *p, vd_stage stage, vd_device_memory *out)
{
    if (!p || !out)
        return vd_error(VD_ERR_INVALID_ARGUMENT, "vd_pipeline_device_memory: no pipeline or out");
    memset(out, 0, sizeof *out);
    vd_backend *be = stage == VD_STAGE_ENCODE_TEXT ? p->te_be
                     : stage == VD_STAGE_SAMPLE    ? p->be
                     : stage == VD_STAGE_DECODE    ? p->vae_be
                                                   : NULL;
    if (stage == VD_STAGE_ENCODE_TEXT && !be)
        return vd_error(VD_ERR_INVALID_ARGUMENT, "the pipeline has no text encoder");
    if (!be)
        return vd_error(VD_ERR_INVALID_ARGUMENT, "stage %d has no device (use encode, sample or decode)",
                        (int)stage);
    snprintf(out->device, sizeof out->device, "%s", be->name);
    if (be->kind != VD_DEVICE_CUDA)
        return vd_error(VD_ERR_UNSUPPORTED, "device %s keeps no allocator statistics (CUDA devices do)",
                        be->name);
    vd_cuda_memory_stats ms;
    VD_TRY(vd_backend_cuda_memory(be, &ms));
    out->in_use_bytes = ms.live_bytes;
    out->cached_bytes = ms.cached_bytes;
    out->peak_bytes = ms.peak_bytes;
    out->free_bytes = ms.device_free_bytes;
    out->total_bytes = ms.device_total_bytes;
    return VD_OK;
}

/* ---- generation ---------------------------------------------------------------- */

typedef struct resolved {
    int width, height, frames, steps;
    double shift, guidance;
    int64_t C, T, h, w; /* latent */
} resolved;

static vd_status resolve(const vd_pipeline *p, const vd_request_params *rq, resolved *r)
{
    const vd_pipeline_info *i = &p->info;
    r->width = rq->width > 0 ? rq->width : i->width;
    r->height = rq->height > 0 ? rq->height : i->height;
    r->frames = rq->frames > 0 ? rq->frames : i->frames;
    r->steps = rq->steps > 0 ? rq->steps : i->steps;
    r->shift = rq->shift > 0 ? rq->shift : i->shift;
    r->guidance = rq->guidance >= 0 ? rq->guidance : i->guidance;
    if (rq->width < 0 || rq->height < 0 || rq->frames < 0 || rq->steps < 0)
        return vd_error(VD_ERR_INVALID_ARGUMENT, "negative size, frame count or step count");
    if (r->width % i->size_multiple || r->height % i->size_multiple || r->width > 8192 || r->height > 8192)
        return vd_error(VD_ERR_INVALID_ARGUMENT, "size %d×%d: width and height must be multiples of %d (up to 8192)",
                        r->width, r->height, i->size_multiple);
    if ((r->frames - 1) % i->frame_multiple != 0 || r->frames > 4097)
        return vd_error(VD_ERR_INVALID_ARGUMENT, "frames=%d: the frame count must be 4k+1 (1, 5, ..., 81, ...)",
                        r->frames);
    if (r->steps > 10000)
        return vd_error(VD_ERR_INVALID_ARGUMENT, "steps=%d is more than 10000", r->steps);
    if (!isfinite(r->shift) || !isfinite(r->guidance) || r->guidance > 100)
        return vd_error(VD_ERR_INVALID_ARGUMENT, "shift %g or guidance %g is out of range", r->shift, r->guidance);
    if (rq->sampler != VD_SAMPLE_UNIPC && rq->sampler != VD_SAMPLE_EULER)
        return vd_error(VD_ERR_INVALID_ARGUMENT, "unknown sampler %d", (int)rq->sampler);
    r->C = p->dit_config.in_dim;
    r->T = (r->frames - 1) / 4 + 1;
    r->h = r->height / 8;
    r->w = r->width / 8;
    return VD_OK;
}

vd_status vd_pipeline_latent_shape(const vd_pipeline *p, const vd_request_params *params, int64_t shape[4])
{
    resolved r;
    VD_TRY(resolve(p, params, &r));
    shape[0] = r.C, shape[1] = r.T, shape[2] = r.h, shape[3] = r.w;
    return VD_OK;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

typedef struct run {
    const vd_request_params *rq;
    resolved r;
    double t0;
    double step_time;   /* mean seconds per sampling step */
    uint8_t *rgb;
    size_t rgb_cap;
    int frames_done;
    int latent_done;
    double decode_start;
} run;

static void report(run *g, vd_stage stage, int step, int total, double eta)
{
    if (!g->rq->on_progress)
        return;
    vd_progress pr = {stage, step, total, now_s() - g->t0, eta};
    g->rq->on_progress(g->rq->user, &pr);
}

/* Load a DiT released for the previous decode again.  The file must still
 * be the model the pipeline was opened with (sizes were validated then). */
static vd_status reload_dit(vd_pipeline *p)
{
    VD_TRY(acquire_model(p, LOAD_DIT, p->be, p->dit_path, NULL, &p->dit));
    const vd_dit_config *c = vd_dit_get_config(p->dit->dit), *o = &p->dit_config;
    if (c->variant != o->variant || c->dim != o->dim || c->layers != o->layers || c->in_dim != o->in_dim ||
        c->out_dim != o->out_dim || c->text_dim != o->text_dim || c->patch[1] != o->patch[1]) {
        vd_cache_release(p->dit);
        p->dit = NULL;
        return vd_error(VD_ERR_UNSUPPORTED,
                        "the DiT '%s' changed since the pipeline was opened (it is reloaded for each request "
                        "with release_dit_for_decode); open the pipeline again",
                        p->dit_path);
    }
    return VD_OK;
}

/* Whether the request's latent needs more activation memory than the one
 * the placed DiT was planned for (the model's default clip, or the largest
 * request since). */
static bool needs_replan(const vd_pipeline *p, const resolved *r)
{
    if (p->allocation.mode == VD_ALLOC_RESIDENT || !p->allocation_text)
        return false;
    int64_t T = p->plan_T, h = p->plan_h, w = p->plan_w;
    if (T <= 0) /* the default clip, as load_dit plans it */
        clip_latent(p->info.width, p->info.height, p->info.frames, &T, &h, &w);
    return vd_dit_activation_bytes(&p->dit_config, 2, r->T, r->h, r->w) >
           vd_dit_activation_bytes(&p->dit_config, 2, T, h, w);
}

/* One prompt through the (loaded) text encoder. */
static vd_status encode_prompt(vd_pipeline *p, const char *text, float **emb, int64_t *rows)
{
    pthread_mutex_lock(&p->te->lock);
    vd_status st = vd_text_encoder_encode(p->te->te, text, emb, rows);
    pthread_mutex_unlock(&p->te->lock);
    return st;
}

/* Embeddings for the prompt and negative prompt (precomputed or encoded). */
static vd_status text_contexts(vd_pipeline *p, run *g, bool need_uncond, float **ctx, int64_t *rows, float **neg,
                               int64_t *neg_rows)
{
    const vd_request_params *rq = g->rq;
    const int64_t td = p->dit_config.text_dim;
    *ctx = *neg = NULL;
    *rows = *neg_rows = 0;
    if (rq->context) {
        if (rq->context_rows < 1)
            return vd_error(VD_ERR_INVALID_ARGUMENT, "context_rows=%d: at least 1 row is needed", rq->context_rows);
        *ctx = malloc((size_t)(rq->context_rows * td) * sizeof **ctx);
        if (!*ctx)
            return vd_error(VD_ERR_OUT_OF_MEMORY, "out of memory");
        memcpy(*ctx, rq->context, (size_t)(rq->context_rows * td) * sizeof **ctx);
        *rows = rq->context_rows;
    } else if (rq->prompt) {
        if (!p->te_path)
            return vd_error(VD_ERR_INVALID_ARGUMENT,
                            "a prompt needs a text encoder: open the pipeline with a umT5 checkpoint "
                            "(e.g. umt5_xxl_fp8_e4m3fn_scaled.safetensors), or pass precomputed embeddings");
        report(g, VD_STAGE_ENCODE_TEXT, 0, need_uncond ? 2 : 1, -1);
        VD_TRY(encode_prompt(p, rq->prompt, ctx, rows));
    } else {
        return vd_error(VD_ERR_INVALID_ARGUMENT, "no prompt and no precomputed context given");
    }
    if (!need_uncond)
        return VD_OK;
    if (rq->negative_context) {
        if (rq->negative_rows < 1)
            return vd_error(VD_ERR_INVALID_ARGUMENT, "negative_rows=%d: at least 1 row is needed", rq->negative_rows);
        *neg = malloc((size_t)(rq->negative_rows * td) * sizeof **neg);
        if (!*neg)
            return vd_error(VD_ERR_OUT_OF_MEMORY, "out of memory");
        memcpy(*neg, rq->negative_context, (size_t)(rq->negative_rows * td) * sizeof **neg);
        *neg_rows = rq->negative_rows;
        return VD_OK;
    }
    if (!p->te_path)
        return vd_error(VD_ERR_INVALID_ARGUMENT,
                        "classifier-free guidance needs a negative context: pass negative embeddings, open the "
                        "pipeline with a text encoder, or set guidance to 1");
    const char *np = rq->negative_prompt && rq->negative_prompt[0] ? rq->negative_prompt : vd_default_negative_prompt();
    report(g, VD_STAGE_ENCODE_TEXT, 1, 2, -1);
    return encode_prompt(p, np, neg, neg_rows);
}

static uint8_t to_u8(float x)
{
    float v = (x + 1.0f) * 127.5f + 0.5f;
    return (uint8_t)(v < 0 ? 0 : (v > 255 ? 255 : v));
}

static int on_decoded(void *user, const float *rgb, int64_t first, int64_t n, int64_t H, int64_t W)
{
    run *g = user;
    const vd_request_params *rq = g->rq;
    const int64_t plane = n * H * W;
    if (rq->video_out) {
        const int64_t F = g->r.frames;
        for (int c = 0; c < 3; c++)
            memcpy(rq->video_out + ((int64_t)c * F + first) * H * W, rgb + c * plane, (size_t)plane * sizeof(float));
    }
    if (rq->on_frames) {
        size_t need = (size_t)(plane * 3);
        if (need > g->rgb_cap) {
            uint8_t *q = realloc(g->rgb, need);
            if (!q)
                return 1;
            g->rgb = q;
            g->rgb_cap = need;
        }
        for (int64_t f = 0; f < n; f++)
            for (int64_t i = 0; i < H * W; i++)
                for (int c = 0; c < 3; c++)
                    g->rgb[(f * H * W + i) * 3 + c] = to_u8(rgb[c * plane + f * H * W + i]);
        if (rq->on_frames(rq->user, g->rgb, (int)first, (int)n, (int)W, (int)H) != 0)
            return 1;
    }
    g->frames_done += (int)n;
    g->latent_done++;
    double per_frame = (now_s() - g->decode_start) / (double)g->latent_done;
    report(g, VD_STAGE_DECODE, g->latent_done, (int)g->r.T, per_frame * (double)(g->r.T - g->latent_done));
    return 0;
}

static vd_status sample(vd_pipeline *p, run *g, vd_request *req, const vd_tensor *text_c, const vd_tensor *text_u,
                        float *x)
{
    const resolved *r = &g->r;
    const int64_t n = r->C * r->T * r->h * r->w;
    const int64_t n_out = p->dit_config.out_dim * r->T * r->h * r->w;
    const bool cfg = text_u != NULL;
    vd_schedule sched;
    VD_TRY(vd_schedule_flow(r->steps, r->shift, &sched));
    vd_sampler *smp = NULL;
    float *vel = malloc((size_t)(n_out * (cfg ? 2 : 1)) * sizeof *vel);
    vd_status st = vel ? VD_OK : vd_error(VD_ERR_OUT_OF_MEMORY, "out of memory");
    if (st == VD_OK)
        st = vd_sampler_new(g->rq->sampler == VD_SAMPLE_EULER ? VD_SAMPLER_EULER : VD_SAMPLER_UNIPC, &sched, n, &smp);
    float *batch = NULL;
    if (st == VD_OK && cfg) {
        batch = malloc((size_t)(2 * n) * sizeof *batch);
        if (!batch)
            st = vd_error(VD_ERR_OUT_OF_MEMORY, "out of memory");
    }
    report(g, VD_STAGE_SAMPLE, 0, r->steps, -1);
    double t_sample = now_s();
    for (int i = 0; st == VD_OK && i < r->steps; i++) {
        if (req && atomic_load(&req->cancelled)) {
            st = vd_error(VD_ERR_CANCELLED, "generation cancelled at step %d of %d", i, r->steps);
            break;
        }
        vd_dit_call call = {
            .batch = cfg ? 2 : 1, .frames = r->T, .height = r->h, .width = r->w,
            .latent = cfg ? batch : x, .text = {text_c, text_u},
            .timestep = (double)sched.timesteps[i], .velocity = vel,
            .cancel = req ? &req->cancelled : NULL,
        };
        if (cfg) {
            memcpy(batch, x, (size_t)n * sizeof *x);
            memcpy(batch + n, x, (size_t)n * sizeof *x);
        }
        pthread_mutex_lock(&p->dit->lock);
        st = vd_dit_forward(p->dit->dit, &call);
        pthread_mutex_unlock(&p->dit->lock);
        if (st != VD_OK)
            break;
        if (cfg) {
            /* v = v_uncond + g·(v_cond − v_uncond) */
            const float gscale = (float)r->guidance;
            for (int64_t j = 0; j < n_out; j++)
                vel[j] = vel[n_out + j] + gscale * (vel[j] - vel[n_out + j]);
        }
        st = vd_sampler_step(smp, i, vel, x);
        g->step_time = (now_s() - t_sample) / (double)(i + 1);
        report(g, VD_STAGE_SAMPLE, i + 1, r->steps, g->step_time * (double)(r->steps - i - 1));
    }
    vd_sampler_free(smp);
    vd_schedule_free(&sched);
    free(vel);
    free(batch);
    return st;
}

static void fill_noise(uint64_t seed, float *x, int64_t n) { vd_rng_normal(seed, 0, 0, x, n); }

vd_status vd_pipeline_generate(vd_pipeline *p, const vd_request_params *rq, vd_request *req)
{
    if (!p || !rq)
        return vd_error(VD_ERR_INVALID_ARGUMENT, "no pipeline or request parameters");
    run g;
    memset(&g, 0, sizeof g);
    g.rq = rq;
    g.t0 = now_s();
    VD_TRY(resolve(p, rq, &g.r));
    const resolved *r = &g.r;
    const bool cfg = r->guidance != 1.0;
    const int64_t n = r->C * r->T * r->h * r->w;

    float *ctx = NULL, *neg = NULL, *x = NULL;
    int64_t rows = 0, neg_rows = 0;
    vd_tensor tc = {0}, tu = {0};
    /* A released text encoder is loaded for this request's prompts only. */
    bool reload = p->release_te && !p->te && (rq->prompt || (cfg && !rq->negative_context));
    vd_status st = reload ? acquire_model(p, LOAD_TE, p->te_be, p->te_path, p->tok_path, &p->te) : VD_OK;
    if (st == VD_OK)
        st = text_contexts(p, &g, cfg, &ctx, &rows, &neg, &neg_rows);
    if (reload && p->te) {
        vd_cache_release(p->te);
        p->te = NULL;
        if (p->te_be != p->be)
            trim_device(p->te_be); /* on the DiT's device the allocator reuses the blocks */
    }
    if (st == VD_OK && req && atomic_load(&req->cancelled))
        st = vd_error(VD_ERR_CANCELLED, "generation cancelled before sampling");
    /* A placed DiT planned for a smaller clip is planned again for this
     * one: its activations would not fit the budget the plan kept. */
    int64_t old_T = p->plan_T, old_h = p->plan_h, old_w = p->plan_w;
    const bool replan = st == VD_OK && needs_replan(p, r);
    if (replan) {
        if (p->dit) {
            vd_cache_release(p->dit);
            p->dit = NULL;
            trim_device(p->be);
        }
        p->plan_T = r->T, p->plan_h = r->h, p->plan_w = r->w;
    }
    /* A DiT released for the previous decode comes back for this request's
     * sampling, after the text encoder has left. */
    if (st == VD_OK && !p->dit)
        st = reload_dit(p);
    if (replan && st != VD_OK) {
        /* this clip cannot be placed: the next request gets the old plan back */
        p->plan_T = old_T, p->plan_h = old_h, p->plan_w = old_w;
        st = vd_error_context(st, "placing the DiT for a %dx%d, %d-frame clip (larger than it was planned for): ",
                              r->width, r->height, r->frames);
    }
    if (st == VD_OK) {
        pthread_mutex_lock(&p->dit->lock);
        st = vd_dit_embed_text(p->dit->dit, ctx, rows, &tc);
        if (st == VD_OK && cfg)
            st = vd_dit_embed_text(p->dit->dit, neg, neg_rows, &tu);
        pthread_mutex_unlock(&p->dit->lock);
    }
    if (st == VD_OK) {
        x = malloc((size_t)n * sizeof *x);
        if (!x)
            st = vd_error(VD_ERR_OUT_OF_MEMORY, "out of memory for a latent of %lld values", (long long)n);
    }
    if (st == VD_OK) {
        if (rq->noise) {
            memcpy(x, rq->noise, (size_t)n * sizeof *x);
        } else {
            fill_noise(rq->seed, x, n);
        }
        st = sample(p, &g, req, &tc, cfg ? &tu : NULL, x);
    }
    vd_tensor_release(&tc);
    vd_tensor_release(&tu);
    free(ctx);
    free(neg);
    if (st == VD_OK && p->release_dit && p->dit) {
        /* The DiT's weights and activations leave the compute GPU (the
         * latent is on the host), and the allocator's cache goes back to the
         * driver, so the decode can have the memory.  After a failed or
         * cancelled sampling it stays: the next request needs it first. */
        vd_cache_release(p->dit);
        p->dit = NULL;
        trim_device(p->be);
    }
    if (st == VD_OK && rq->latent_out)
        memcpy(rq->latent_out, x, (size_t)n * sizeof *x);
    if (st == VD_OK) {
        g.decode_start = now_s();
        report(&g, VD_STAGE_DECODE, 0, (int)r->T, -1);
        pthread_mutex_lock(&p->vae->lock);
        st = vd_vae_decode(p->vae->vae, x, r->T, r->h, r->w, on_decoded, &g, req ? &req->cancelled : NULL);
        pthread_mutex_unlock(&p->vae->lock);
    }
    free(x);
    free(g.rgb);
    if (st == VD_OK)
        report(&g, VD_STAGE_DONE, 1, 1, 0);
    return st;
}

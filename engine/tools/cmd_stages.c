/* vdiff dit / vae-decode / vae-encode / schedule: the single-stage hooks by which anyone
 * checks the engine against another implementation. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend/backend.h"
#include "core/error.h"
#include "models/wan_dit.h"
#include "models/wan_vae.h"
#include "sampling/schedule.h"
#include "tools/args.h"
#include "tools/commands.h"
#include "tools/tensor_file.h"

/* Options shared by the stage commands. */
typedef struct stage_opts {
    const char *model, *input, *output, *device;
    int64_t threads;
} stage_opts;

/* Parse the common options; returns -1 to continue, else an exit code. */
static int parse_stage(vd_args *a, const char *help, const char *model_opt, stage_opts *o)
{
    bool opt;
    const char *s;
    o->device = "cpu";
    while ((s = vd_args_next(a, &opt))) {
        bool ok = true;
        if (!opt)
            return vd_args_error(a, "unexpected argument '%s'", s);
        if (vd_args_is(a, "--help") || vd_args_is(a, "-h")) {
            fputs(help, stdout);
            return 0;
        } else if (model_opt && vd_args_is(a, model_opt))
            ok = (o->model = vd_args_value(a)) != NULL;
        else if (vd_args_is(a, "--input") || vd_args_is(a, "-i"))
            ok = (o->input = vd_args_value(a)) != NULL;
        else if (vd_args_is(a, "--output") || vd_args_is(a, "-o"))
            ok = (o->output = vd_args_value(a)) != NULL;
        else if (vd_args_is(a, "--device"))
            ok = (o->device = vd_args_value(a)) != NULL;
        else if (vd_args_is(a, "--threads"))
            ok = vd_args_int(a, 0, 1024, &o->threads);
        else
            return vd_args_error(a, "unknown option %s", s);
        if (!ok)
            return 2;
    }
    if (model_opt && !o->model)
        return vd_args_error(a, "%s is required", model_opt);
    if (!o->input || !o->output)
        return vd_args_error(a, "--input and --output are required");
    return -1;
}

static const char *const dit_help =
    "usage: vdiff dit --model M --input IN --output OUT [--device cpu|cuda:N] [--threads N]\n\n"
    "One DiT forward pass.  IN (safetensors, f32): latent [C,T,H,W], timestep [1]\n"
    "(a float, used as given), context [n, text_dim] (the text encoder's output, not\n"
    "padded).  OUT: velocity [C_out,T,H,W].\n";

int vd_cmd_dit(int argc, char **argv)
{
    vd_args a;
    vd_args_init(&a, "vdiff dit", argc, argv);
    stage_opts o = {0};
    int rc = parse_stage(&a, dit_help, "--model", &o);
    if (rc >= 0)
        return rc;
    vd_weights *mw = NULL, *in = NULL;
    vd_backend *be = NULL;
    vd_dit *dit = NULL;
    float *latent = NULL, *ts = NULL, *ctx = NULL, *vel = NULL;
    vd_tensor text = {0};
    int64_t ls[5], tsh[5], cs[5];
    vd_backend_options bo = {.threads = (int)o.threads};
    vd_status st = vd_weights_open(o.input, &in);
    if (st == VD_OK)
        st = vd_read_f32(in, "latent", 4, ls, &latent);
    if (st == VD_OK)
        st = vd_read_f32(in, "timestep", 0, tsh, &ts);
    if (st == VD_OK)
        st = vd_read_f32(in, "context", 2, cs, &ctx);
    if (st == VD_OK)
        st = vd_backend_open(o.device, &bo, &be);
    if (st == VD_OK)
        st = vd_weights_open(o.model, &mw);
    if (st == VD_OK)
        st = vd_dit_load(be, mw, &dit);
    const vd_dit_config *c = dit ? vd_dit_get_config(dit) : NULL;
    if (st == VD_OK && ls[0] != c->in_dim)
        st = vd_error(VD_ERR_SHAPE, "latent has %" PRId64 " channels; the model takes %" PRId64, ls[0], c->in_dim);
    if (st == VD_OK && cs[1] != c->text_dim)
        st = vd_error(VD_ERR_SHAPE, "context rows are %" PRId64 " wide; the model takes %" PRId64, cs[1], c->text_dim);
    if (st == VD_OK)
        st = vd_dit_embed_text(dit, ctx, cs[0], &text);
    int64_t nout = c ? c->out_dim * ls[1] * ls[2] * ls[3] : 0;
    if (st == VD_OK && !(vel = malloc((size_t)nout * sizeof *vel)))
        st = vd_error(VD_ERR_OUT_OF_MEMORY, "out of memory");
    if (st == VD_OK) {
        vd_dit_call call = {.batch = 1, .frames = ls[1], .height = ls[2], .width = ls[3], .latent = latent,
                            .text = {&text, NULL}, .timestep = ts[0], .velocity = vel};
        st = vd_dit_forward(dit, &call);
    }
    if (st == VD_OK) {
        vd_named_tensor out = {"velocity", VD_F32, 4, {c->out_dim, ls[1], ls[2], ls[3]}, vel};
        st = vd_write_tensors(o.output, &out, 1);
    }
    vd_tensor_release(&text);
    vd_dit_free(dit);
    vd_weights_close(mw);
    vd_weights_close(in);
    vd_backend_close(be);
    free(latent), free(ts), free(ctx), free(vel);
    return st == VD_OK ? 0 : vd_tool_fail(a.cmd, NULL);
}

static const char *const vae_help =
    "usage: vdiff vae-decode --vae V --input IN --output OUT [--device cpu|cuda:N] [--threads N]\n\n"
    "Decode a normalised latent.  IN (safetensors): latent [16,T,h,w].  OUT: video\n"
    "[3, 4(T-1)+1, 8h, 8w] in [-1, 1].\n";

typedef struct video_sink {
    float *video;
    int64_t frames, plane;
} video_sink;

static int collect_frames(void *user, const float *rgb, int64_t first, int64_t n, int64_t H, int64_t W)
{
    video_sink *s = user;
    for (int c = 0; c < 3; c++)
        memcpy(s->video + (c * s->frames + first) * H * W, rgb + c * n * H * W, (size_t)(n * H * W) * sizeof(float));
    return 0;
}

int vd_cmd_vae_decode(int argc, char **argv)
{
    vd_args a;
    vd_args_init(&a, "vdiff vae-decode", argc, argv);
    stage_opts o = {0};
    int rc = parse_stage(&a, vae_help, "--vae", &o);
    if (rc >= 0)
        return rc;
    vd_weights *vw = NULL, *in = NULL;
    vd_backend *be = NULL;
    vd_vae *vae = NULL;
    float *latent = NULL;
    video_sink sink = {0};
    int64_t ls[5];
    vd_backend_options bo = {.threads = (int)o.threads};
    vd_status st = vd_weights_open(o.input, &in);
    if (st == VD_OK)
        st = vd_read_f32(in, "latent", 4, ls, &latent);
    if (st == VD_OK)
        st = vd_backend_open(o.device, &bo, &be);
    if (st == VD_OK)
        st = vd_weights_open(o.model, &vw);
    if (st == VD_OK)
        st = vd_vae_load(be, vw, &vae);
    if (st == VD_OK && ls[0] != vd_vae_get_config(vae)->z_dim)
        st = vd_error(VD_ERR_SHAPE, "latent has %" PRId64 " channels; this VAE decodes %" PRId64, ls[0],
                      vd_vae_get_config(vae)->z_dim);
    const int64_t F = 4 * (ls[1] - 1) + 1, H = 8 * ls[2], W = 8 * ls[3];
    if (st == VD_OK) {
        sink.frames = F;
        if (!(sink.video = malloc((size_t)(3 * F * H * W) * sizeof(float))))
            st = vd_error(VD_ERR_OUT_OF_MEMORY, "out of memory for the video");
    }
    if (st == VD_OK)
        st = vd_vae_decode(vae, latent, ls[1], ls[2], ls[3], collect_frames, &sink, NULL);
    if (st == VD_OK) {
        vd_named_tensor out = {"video", VD_F32, 4, {3, F, H, W}, sink.video};
        st = vd_write_tensors(o.output, &out, 1);
    }
    vd_vae_free(vae);
    vd_weights_close(vw);
    vd_weights_close(in);
    vd_backend_close(be);
    free(latent);
    free(sink.video);
    return st == VD_OK ? 0 : vd_tool_fail(a.cmd, NULL);
}

static const char *const vae_encode_help =
    "usage: vdiff vae-encode --vae V --input IN --output OUT [--device cpu|cuda:N] [--threads N]\n\n"
    "Encode a video into the normalised latent (the VAE's mean, (mu - mean)/std).\n"
    "IN (safetensors): video [3,F,H,W] in [-1, 1] with F = 4k+1 and H, W multiples\n"
    "of 8.  OUT: latent [16, (F-1)/4+1, H/8, W/8].  V must hold the encoder.\n";

int vd_cmd_vae_encode(int argc, char **argv)
{
    vd_args a;
    vd_args_init(&a, "vdiff vae-encode", argc, argv);
    stage_opts o = {0};
    int rc = parse_stage(&a, vae_encode_help, "--vae", &o);
    if (rc >= 0)
        return rc;
    vd_weights *vw = NULL, *in = NULL;
    vd_backend *be = NULL;
    vd_vae *vae = NULL;
    float *video = NULL, *latent = NULL;
    int64_t vs[5], ls[4] = {0};
    vd_backend_options bo = {.threads = (int)o.threads};
    vd_status st = vd_weights_open(o.input, &in);
    if (st == VD_OK)
        st = vd_read_f32(in, "video", 4, vs, &video);
    if (st == VD_OK && vs[0] != 3)
        st = vd_error(VD_ERR_SHAPE, "video has %" PRId64 " channels; the VAE encodes RGB video [3,F,H,W]", vs[0]);
    if (st == VD_OK)
        st = vd_backend_open(o.device, &bo, &be);
    if (st == VD_OK)
        st = vd_weights_open(o.model, &vw);
    if (st == VD_OK)
        st = vd_vae_load(be, vw, &vae);
    if (st == VD_OK) {
        ls[0] = vd_vae_get_config(vae)->z_dim, ls[1] = (vs[1] - 1) / 4 + 1, ls[2] = vs[2] / 8, ls[3] = vs[3] / 8;
        int64_t n = ls[0] * ls[1] * ls[2] * ls[3];
        if (!(latent = malloc((size_t)(n > 0 ? n : 1) * sizeof *latent)))
            st = vd_error(VD_ERR_OUT_OF_MEMORY, "out of memory for the latent");
    }
    if (st == VD_OK)
        st = vd_vae_encode(vae, video, vs[1], vs[2], vs[3], latent, NULL);
    if (st == VD_OK) {
        vd_named_tensor out = {"latent", VD_F32, 4, {ls[0], ls[1], ls[2], ls[3]}, latent};
        st = vd_write_tensors(o.output, &out, 1);
    }
    vd_vae_free(vae);
    vd_weights_close(vw);
    vd_weights_close(in);
    vd_backend_close(be);
    free(video);
    free(latent);
    return st == VD_OK ? 0 : vd_tool_fail(a.cmd, NULL);
}

static const char *const schedule_help =
    "usage: vdiff schedule --steps N --shift S --output OUT\n\n"
    "The flow-matching schedule of the Wan reference.  OUT (safetensors): timesteps\n"
    "[N] (i64, the integers the model sees) and sigmas [N+1] (f64, the solver's\n"
    "float32 values, ending in 0).\n";

int vd_cmd_schedule(int argc, char **argv)
{
    vd_args a;
    vd_args_init(&a, "vdiff schedule", argc, argv);
    int64_t steps = 0;
    double shift = 5.0;
    const char *out = NULL, *s;
    bool opt;
    while ((s = vd_args_next(&a, &opt))) {
        bool ok = true;
        if (!opt)
            return vd_args_error(&a, "unexpected argument '%s'", s);
        if (vd_args_is(&a, "--help") || vd_args_is(&a, "-h")) {
            fputs(schedule_help, stdout);
            return 0;
        } else if (vd_args_is(&a, "--steps"))
            ok = vd_args_int(&a, 1, 10000, &steps);
        else if (vd_args_is(&a, "--shift"))
            ok = vd_args_double(&a, 1e-6, 1e6, &shift);
        else if (vd_args_is(&a, "--output") || vd_args_is(&a, "-o"))
            ok = (out = vd_args_value(&a)) != NULL;
        else
            return vd_args_error(&a, "unknown option %s", s);
        if (!ok)
            return 2;
    }
    if (!steps || !out)
        return vd_args_error(&a, "--steps and --output are required");
    vd_schedule sc;
    if (vd_schedule_flow((int)steps, shift, &sc) != VD_OK)
        return vd_tool_fail(a.cmd, NULL);
    vd_named_tensor t[2] = {{"timesteps", VD_I64, 1, {steps}, sc.timesteps},
                            {"sigmas", VD_F64, 1, {steps + 1}, sc.sigmas}};
    vd_status st = vd_write_tensors(out, t, 2);
    vd_schedule_free(&sc);
    return st == VD_OK ? 0 : vd_tool_fail(a.cmd, NULL);
}

/* vdiff sample: the whole sampling loop with guidance on given noise and
 * text embeddings, then the VAE decode (checks the engine end to end). */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "tools/args.h"
#include "tools/commands.h"
#include "tools/tensor_file.h"
#include "vdiff/pipeline.h"

static const char *const sample_help =
    "usage: vdiff sample --model M --vae V --input IN --steps N --shift S --guidance G\n"
    "                    --sampler unipc|euler --output OUT [--device D] [--threads N]\n\n"
    "Run the sampler from given noise.  IN (safetensors, f32): noise [16,T,h,w],\n"
    "context [n, text_dim], negative_context [m, text_dim].  OUT: latent [16,T,h,w]\n"
    "and video [3, 4(T-1)+1, 8h, 8w] in [-1, 1].  Guidance 1 skips the negative pass.\n";

int vd_cmd_sample(int argc, char **argv)
{
    vd_args a;
    vd_args_init(&a, "vdiff sample", argc, argv);
    vd_pipeline_options po = vd_pipeline_options_default();
    vd_request_params rq = vd_request_params_default();
    const char *in = NULL, *out = NULL, *sampler = "unipc", *s;
    int64_t steps = 0, threads = 0;
    double shift = 5.0, guidance = 5.0;
    bool opt;
    while ((s = vd_args_next(&a, &opt))) {
        bool ok = true;
        if (!opt)
            return vd_args_error(&a, "unexpected argument '%s'", s);
        if (vd_args_is(&a, "--help") || vd_args_is(&a, "-h")) {
            fputs(sample_help, stdout);
            return 0;
        } else if (vd_args_is(&a, "--model"))
            ok = (po.dit = vd_args_value(&a)) != NULL;
        else if (vd_args_is(&a, "--vae"))
            ok = (po.vae = vd_args_value(&a)) != NULL;
        else if (vd_args_is(&a, "--device"))
            ok = (po.device = vd_args_value(&a)) != NULL;
        else if (vd_args_is(&a, "--threads"))
            ok = vd_args_int(&a, 0, 1024, &threads);
        else if (vd_args_is(&a, "--input") || vd_args_is(&a, "-i"))
            ok = (in = vd_args_value(&a)) != NULL;
        else if (vd_args_is(&a, "--output") || vd_args_is(&a, "-o"))
            ok = (out = vd_args_value(&a)) != NULL;
        else if (vd_args_is(&a, "--steps"))
            ok = vd_args_int(&a, 1, 10000, &steps);
        else if (vd_args_is(&a, "--shift"))
            ok = vd_args_double(&a, 1e-6, 1e6, &shift);
        else if (vd_args_is(&a, "--guidance"))
            ok = vd_args_double(&a, 0, 100, &guidance);
        else if (vd_args_is(&a, "--sampler"))
            ok = (sampler = vd_args_value(&a)) != NULL;
        else
            return vd_args_error(&a, "unknown option %s", s);
        if (!ok)
            return 2;
    }
    if (!po.dit || !po.vae || !in || !out || !steps)
        return vd_args_error(&a, "--model, --vae, --input, --output and --steps are required");
    if (strcmp(sampler, "unipc") == 0)
        rq.sampler = VD_SAMPLE_UNIPC;
    else if (strcmp(sampler, "euler") == 0)
        rq.sampler = VD_SAMPLE_EULER;
    else
        return vd_args_error(&a, "--sampler: '%s' is not unipc or euler", sampler);
    po.threads = (int)threads;

    vd_weights *iw = NULL;
    vd_pipeline *p = NULL;
    float *noise = NULL, *ctx = NULL, *neg = NULL, *latent = NULL, *video = NULL;
    int64_t ns[5], cs[5], gs[5];
    vd_status st = vd_weights_open(in, &iw);
    if (st == VD_OK)
        st = vd_read_f32(iw, "noise", 4, ns, &noise);
    if (st == VD_OK)
        st = vd_read_f32(iw, "context", 2, cs, &ctx);
    if (st == VD_OK && guidance != 1.0)
        st = vd_read_f32(iw, "negative_context", 2, gs, &neg);
    if (st == VD_OK)
        st = vd_pipeline_open(&po, &p);
    const int64_t F = 4 * (ns[1] - 1) + 1, H = 8 * ns[2], W = 8 * ns[3];
    if (st == VD_OK) {
        rq.noise = noise;
        rq.context = ctx;
        rq.context_rows = (int)cs[0];
        rq.negative_context = neg;
        rq.negative_rows = neg ? (int)gs[0] : 0;
        rq.width = (int)W, rq.height = (int)H, rq.frames = (int)F;
        rq.steps = (int)steps, rq.shift = shift, rq.guidance = guidance;
        int64_t shape[4];
        st = vd_pipeline_latent_shape(p, &rq, shape);
        if (st == VD_OK && shape[0] != ns[0])
            st = vd_error(VD_ERR_SHAPE, "noise has %" PRId64 " channels; the model takes %" PRId64, ns[0], shape[0]);
    }
    if (st == VD_OK) {
        latent = malloc((size_t)(ns[0] * ns[1] * ns[2] * ns[3]) * sizeof *latent);
        video = malloc((size_t)(3 * F * H * W) * sizeof *video);
        if (!latent || !video)
            st = vd_error(VD_ERR_OUT_OF_MEMORY, "out of memory");
        rq.latent_out = latent;
        rq.video_out = video;
    }
    if (st == VD_OK)
        st = vd_pipeline_generate(p, &rq, NULL);
    if (st == VD_OK) {
        vd_named_tensor t[2] = {{"latent", VD_F32, 4, {ns[0], ns[1], ns[2], ns[3]}, latent},
                                {"video", VD_F32, 4, {3, F, H, W}, video}};
        st = vd_write_tensors(out, t, 2);
    }
    vd_pipeline_close(p);
    vd_weights_close(iw);
    free(noise), free(ctx), free(neg), free(latent), free(video);
    return st == VD_OK ? 0 : vd_tool_fail(a.cmd, NULL);
}

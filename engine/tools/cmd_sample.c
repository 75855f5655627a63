/* vdiff sample: the whole sampling loop with guidance on given noise and
 * text embeddings, then the VAE decode (checks the engine end to end). */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "tools/args.h"
#include "tools/pipeline_args.h"
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
    const char *in = NULL, *out = NULL, *s;
    bool opt;
    rq.shift = 5.0;
    rq.guidance = 5.0;
    while ((s = vd_args_next(&a, &opt))) {
        bool ok = true;
        if (!opt)
            return vd_args_error(&a, "unexpected argument '%s'", s);
        if (vd_args_is(&a, "--help") || vd_args_is(&a, "-h")) {
            fputs(sample_help, stdout);
            return 0;
        } else if (vd_args_is(&a, "--input") || vd_args_is(&a, "-i"))
            ok = (in = vd_args_value(&a)) != NULL;
        else if (vd_args_is(&a, "--output") || vd_args_is(&a, "-o"))
            ok = (out = vd_args_value(&a)) != NULL;
        else if (!vd_args_pipeline_option(&a, &po, &ok) && !vd_args_request_option(&a, &rq, &ok))
            return vd_args_error(&a, "unknown option %s", s);
        if (!ok)
            return 2;
    }
    if (!po.dit || !po.vae || !in || !out || !rq.steps)
        return vd_args_error(&a, "--model, --vae, --input, --output and --steps are required");

    vd_weights *iw = NULL;
    vd_pipeline *p = NULL;
    float *noise = NULL, *ctx = NULL, *neg = NULL, *latent = NULL, *video = NULL;
    int64_t ns[5], cs[5], gs[5];
    vd_status st = vd_weights_open(in, &iw);
    if (st == VD_OK)
        st = vd_read_f32(iw, "noise", 4, ns, &noise);
    if (st == VD_OK)
        st = vd_read_f32(iw, "context", 2, cs, &ctx);
    if (st == VD_OK && rq.guidance != 1.0)
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

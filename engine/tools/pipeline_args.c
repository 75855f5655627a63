#include "tools/pipeline_args.h"

#include <string.h>

static bool take_string(vd_args *a, const char **dst)
{
    *dst = vd_args_value(a);
    return *dst != NULL;
}

bool vd_args_pipeline_option(vd_args *a, vd_pipeline_options *po, bool *ok)
{
    int64_t v;
    if (vd_args_is(a, "--model"))
        *ok = take_string(a, &po->dit);
    else if (vd_args_is(a, "--vae"))
        *ok = take_string(a, &po->vae);
    else if (vd_args_is(a, "--text-encoder"))
        *ok = take_string(a, &po->text_encoder);
    else if (vd_args_is(a, "--tokenizer"))
        *ok = take_string(a, &po->tokenizer);
    else if (vd_args_is(a, "--device"))
        *ok = take_string(a, &po->device);
    else if (vd_args_is(a, "--text-encoder-device"))
        *ok = take_string(a, &po->text_encoder_device);
    else if (vd_args_is(a, "--vae-device"))
        *ok = take_string(a, &po->vae_device);
    else if (vd_args_is(a, "--allocation"))
        *ok = take_string(a, &po->allocation);
    else if (vd_args_is(a, "--threads")) {
        *ok = vd_args_int(a, 0, 1024, &v);
        po->threads = (int)v;
    } else if (vd_args_is(a, "--release-text-encoder")) {
        po->release_text_encoder = 1;
        *ok = true;
    } else if (vd_args_is(a, "--release-dit-for-decode")) {
        po->release_dit_for_decode = 1;
        *ok = true;
    } else
        return false;
    return true;
}

bool vd_args_request_option(vd_args *a, vd_request_params *rq, bool *ok)
{
    int64_t v;
    const char *s;
    if (vd_args_is(a, "--prompt"))
        *ok = take_string(a, &rq->prompt);
    else if (vd_args_is(a, "--negative-prompt"))
        *ok = take_string(a, &rq->negative_prompt);
    else if (vd_args_is(a, "--width")) {
        *ok = vd_args_int(a, 16, 8192, &v);
        rq->width = (int)v;
    } else if (vd_args_is(a, "--height")) {
        *ok = vd_args_int(a, 16, 8192, &v);
        rq->height = (int)v;
    } else if (vd_args_is(a, "--frames")) {
        *ok = vd_args_int(a, 1, 4097, &v);
        rq->frames = (int)v;
    } else if (vd_args_is(a, "--steps")) {
        *ok = vd_args_int(a, 1, 10000, &v);
        rq->steps = (int)v;
    } else if (vd_args_is(a, "--shift"))
        *ok = vd_args_double(a, 1e-6, 1e6, &rq->shift);
    else if (vd_args_is(a, "--guidance"))
        *ok = vd_args_double(a, 0, 100, &rq->guidance);
    else if (vd_args_is(a, "--seed"))
        *ok = vd_args_uint64(a, &rq->seed);
    else if (vd_args_is(a, "--sampler")) {
        *ok = take_string(a, &s);
        if (*ok && strcmp(s, "unipc") == 0)
            rq->sampler = VD_SAMPLE_UNIPC;
        else if (*ok && strcmp(s, "euler") == 0)
            rq->sampler = VD_SAMPLE_EULER;
        else if (*ok) {
            vd_args_error(a, "--sampler: '%s' is not unipc or euler", s);
            *ok = false;
        }
    } else
        return false;
    return true;
}

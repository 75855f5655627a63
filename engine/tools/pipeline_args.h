/* The options every generating command shares: what configures a pipeline
 * (--model --vae --text-encoder --tokenizer --device --text-encoder-device
 * --vae-device --allocation --threads --release-text-encoder
 * --release-dit-for-decode) and what configures a request (--prompt
 * --negative-prompt --width --height --frames --steps --shift --guidance
 * --sampler --seed). */
#ifndef VD_TOOLS_PIPELINE_ARGS_H
#define VD_TOOLS_PIPELINE_ARGS_H

#include <stdbool.h>

#include "tools/args.h"
#include "vdiff/pipeline.h"

/* If the current option is one of the pipeline's, parse its value into
 * `po` and return true (*ok = false when the value is bad; the message is
 * printed).  Return false for any other option. */
bool vd_args_pipeline_option(vd_args *a, vd_pipeline_options *po, bool *ok);

/* The same for the request's options. */
bool vd_args_request_option(vd_args *a, vd_request_params *rq, bool *ok);

#endif

/* Small random-weight Wan DiTs with several blocks for the offloading tests
 * (CPU and GPU), written the way `vdiff mkmodel` writes them. */
#ifndef VD_TEST_OFFLOAD_MODELS_H
#define VD_TEST_OFFLOAD_MODELS_H

#include <stdio.h>
#include <string.h>

#include "core/error.h"
#include "models/storage_policy.h"
#include "tools/model_export.h"
#include "tools/random_weights.h"

/* Write a wan21-t2v DiT (dim, ffn, layers; text width 64) stored as
 * `dtype` (mkmodel's names: f32, bf16, fp8-scaled, q8_0, ...) to `path`
 * (.gguf for GGUF types). */
static inline vd_status offload_test_model(const char *path, const char *dtype, int64_t dim, int64_t ffn, int64_t layers,
                                           uint64_t seed)
{
    vd_arch_info arch;
    VD_TRY(vd_arch_from_preset("wan21-t2v", "tiny", &arch));
    arch.dit.dim = dim;
    arch.dit.ffn_dim = ffn;
    arch.dit.layers = layers;
    VD_TRY(vd_arch_finalize(&arch));
    size_t n = strlen(path);
    vd_file_format fmt = n > 5 && strcmp(path + n - 5, ".gguf") == 0 ? VD_FORMAT_GGUF : VD_FORMAT_SAFETENSORS;
    vd_storage_policy policy;
    VD_TRY(vd_storage_policy_parse(dtype, fmt, &policy));
    vd_random_weights rnd = {seed};
    const char *meta[] = {"general.architecture", "wan"};
    vd_export_request req = {.path = path, .arch = &arch, .policy = &policy, .values = vd_random_weight_values,
                             .ctx = &rnd, .meta = fmt == VD_FORMAT_GGUF ? meta : NULL,
                             .n_meta = fmt == VD_FORMAT_GGUF ? 1 : 0};
    return vd_export_model(&req);
}

#endif

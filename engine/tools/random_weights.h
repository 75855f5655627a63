/* The random values `vdiff mkmodel` writes: deterministic for a seed (each
 * tensor draws from its own Philox stream, its index in the inventory) and
 * well scaled (Linear and convolution weights with variance 1/fan_in keep
 * activations O(1) through the network; norm weights near 1; small biases
 * and modulation). */
#ifndef VD_TOOLS_RANDOM_WEIGHTS_H
#define VD_TOOLS_RANDOM_WEIGHTS_H

#include "tools/model_export.h"

typedef struct vd_random_weights {
    uint64_t seed;
} vd_random_weights;

/* A vd_export_values_fn; ctx is a vd_random_weights. */
vd_status vd_random_weight_values(void *ctx, const vd_param_desc *param, int64_t index, float *values,
                                  vd_threadpool *pool);

#endif

#include "tools/random_weights.h"

#include <math.h>

#include "core/rng.h"

typedef struct fill_job {
    uint64_t seed, stream;
    float *out;
    float lo, hi, offset;
} fill_job;

static void fill_range(void *arg, int64_t b, int64_t e, int worker)
{
    fill_job *j = arg;
    (void)worker;
    vd_rng_uniform(j->seed, j->stream, (uint64_t)b, j->out + b, e - b, j->lo, j->hi);
    if (j->offset != 0)
        for (int64_t i = b; i < e; i++)
            j->out[i] += j->offset;
}

vd_status vd_random_weight_values(void *ctx, const vd_param_desc *p, int64_t index, float *values, vd_threadpool *pool)
{
    const vd_random_weights *src = ctx;
    int64_t n = 1;
    for (int i = 0; i < p->ndim; i++)
        n *= p->shape[i];
    fill_job j = {src->seed, (uint64_t)index, values, -1, 1, 0};
    float a;
    switch (p->role) {
    case VD_ROLE_BLOCK_LINEAR:
    case VD_ROLE_LINEAR:
    case VD_ROLE_CONV:
        a = 1.7320508f / sqrtf((float)(p->fan_in > 0 ? p->fan_in : 1)); /* uniform, variance 1/fan_in */
        j.lo = -a, j.hi = a;
        break;
    case VD_ROLE_NORM: j.lo = -0.1f, j.hi = 0.1f, j.offset = 1.0f; break;
    case VD_ROLE_BIAS: j.lo = -0.05f, j.hi = 0.05f; break;
    case VD_ROLE_MODULATION: j.lo = -0.1f, j.hi = 0.1f; break;
    case VD_ROLE_EMBEDDING: j.lo = -1.0f, j.hi = 1.0f; break;
    case VD_ROLE_REL_BIAS: j.lo = -0.5f, j.hi = 0.5f; break;
    case VD_ROLE_POSITION: j.lo = -0.05f, j.hi = 0.05f; break;
    }
    vd_parallel_for(pool, n, 65536, fill_range, &j);
    return VD_OK;
}

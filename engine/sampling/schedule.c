#include "sampling/schedule.h"

#include <math.h>
#include <stdlib.h>

#include "core/error.h"

vd_status vd_schedule_flow(int steps, double shift, vd_schedule *out)
{
    out->steps = 0;
    out->timesteps = NULL;
    out->sigmas = NULL;
    if (steps < 1 || steps > 10000)
        return vd_error(VD_ERR_INVALID_ARGUMENT, "steps=%d: must be between 1 and 10000", steps);
    if (!(shift > 0) || !isfinite(shift))
        return vd_error(VD_ERR_INVALID_ARGUMENT, "shift=%g: must be a positive number (Wan uses 3 to 12)", shift);
    out->timesteps = malloc((size_t)steps * sizeof *out->timesteps);
    out->sigmas = malloc((size_t)(steps + 1) * sizeof *out->sigmas);
    if (!out->timesteps || !out->sigmas) {
        vd_schedule_free(out);
        return vd_error(VD_ERR_OUT_OF_MEMORY, "out of memory");
    }
    /* σ_max is the float32 value 1 − 0.001 of the 1000-step training grid,
     * widened to double as numpy's linspace receives it. */
    const double sigma_max = (double)(1.0f - 0.001f);
    for (int i = 0; i < steps; i++) {
        /* numpy linspace: start + i·step with step = (stop − start)/num */
        double step = (0.0 - sigma_max) / (double)steps;
        double sigma = sigma_max + (double)i * step;
        double shifted = shift * sigma / (1.0 + (shift - 1.0) * sigma);
        out->timesteps[i] = (int64_t)(shifted * 1000.0);
        out->sigmas[i] = (double)(float)shifted;
    }
    out->sigmas[steps] = 0.0;
    out->steps = steps;
    return VD_OK;
}

void vd_schedule_free(vd_schedule *s)
{
    free(s->timesteps);
    free(s->sigmas);
    s->timesteps = NULL;
    s->sigmas = NULL;
    s->steps = 0;
}

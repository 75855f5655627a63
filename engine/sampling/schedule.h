/* The flow-matching sigma schedule of the Wan reference
 * (FlowUniPCMultistepScheduler.set_timesteps):
 *   base   = linspace(σ_max, 0, S+1)[:-1] with σ_max = float32(0.999)
 *   σ'     = s·σ / (1 + (s−1)·σ)                (float64)
 *   t_i    = int64(σ'_i · 1000)                  (truncated: the model sees integers)
 *   sigmas = float32(σ'), then a final 0          (the solver's values) */
#ifndef VD_SAMPLING_SCHEDULE_H
#define VD_SAMPLING_SCHEDULE_H

#include <stdint.h>

#include "vdiff/status.h"

typedef struct vd_schedule {
    int steps;
    int64_t *timesteps; /* [steps] */
    double *sigmas;     /* [steps + 1], float32 values held in doubles; sigmas[steps] = 0 */
} vd_schedule;

/* steps 1..10000, shift > 0 and finite. */
vd_status vd_schedule_flow(int steps, double shift, vd_schedule *out);
void vd_schedule_free(vd_schedule *s);

#endif

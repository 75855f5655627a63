/* Flow-matching samplers over a vd_schedule, on host f32 latents.
 *
 * The model predicts the velocity v ≈ ε − x0; x0̂ = x − σ·v.  A sampler
 * takes the (guided) velocity at step i and moves x_i to x_{i+1}:
 * - UniPC: the Wan reference default (order 2, bh2, x0-prediction,
 *   corrector from the second step on, lower order at both ends); the
 *   last step returns the final x0 prediction;
 * - Euler: x_{i+1} = x_i + (σ_{i+1} − σ_i)·v_i. */
#ifndef VD_SAMPLING_SAMPLER_H
#define VD_SAMPLING_SAMPLER_H

#include <stdint.h>

#include "sampling/schedule.h"

typedef enum vd_sampler_kind { VD_SAMPLER_UNIPC = 0, VD_SAMPLER_EULER = 1 } vd_sampler_kind;

typedef struct vd_sampler vd_sampler;

/* A sampler for latents of n elements; `schedule` must outlive it. */
vd_status vd_sampler_new(vd_sampler_kind kind, const vd_schedule *schedule, int64_t n, vd_sampler **out);
void vd_sampler_free(vd_sampler *s);

/* Step i (0, 1, ... in order): x holds x_i on entry and x_{i+1} on return. */
vd_status vd_sampler_step(vd_sampler *s, int i, const float *velocity, float *x);

/* "unipc" / "euler"; false if unknown. */
int vd_sampler_parse(const char *name, vd_sampler_kind *out);
const char *vd_sampler_name(vd_sampler_kind kind);

#endif

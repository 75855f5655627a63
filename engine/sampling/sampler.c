/* UniPC (bh2) and Euler for flow matching, following the Wan reference's
 * FlowUniPCMultistepScheduler step by step.  Scalar coefficients are
 * computed in double from the schedule's float32 sigmas; latents are f32. */
#include "sampling/sampler.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"

struct vd_sampler {
    vd_sampler_kind kind;
    const vd_schedule *sched;
    int64_t n;
    int next_step;
    /* UniPC state */
    float *m_prev;      /* x0 prediction of the previous step */
    float *m_prev2;     /* ... and of the one before */
    float *last_sample; /* the sample the previous predictor started from */
    float *m_cur;       /* scratch: this step's x0 prediction */
    int prev_order;     /* predictor order used at the previous step */
    int lower_order_nums;
};

int vd_sampler_parse(const char *name, vd_sampler_kind *out)
{
    if (strcmp(name, "unipc") == 0)
        *out = VD_SAMPLER_UNIPC;
    else if (strcmp(name, "euler") == 0)
        *out = VD_SAMPLER_EULER;
    else
        return 0;
    return 1;
}

const char *vd_sampler_name(vd_sampler_kind kind) { return kind == VD_SAMPLER_EULER ? "euler" : "unipc"; }

vd_status vd_sampler_new(vd_sampler_kind kind, const vd_schedule *schedule, int64_t n, vd_sampler **out)
{
    *out = NULL;
    if (kind != VD_SAMPLER_UNIPC && kind != VD_SAMPLER_EULER)
        return vd_error(VD_ERR_INVALID_ARGUMENT, "unknown sampler %d (unipc or euler)", (int)kind);
    if (n <= 0 || !schedule || schedule->steps < 1)
        return vd_error(VD_ERR_INVALID_ARGUMENT, "sampler: empty latent or schedule");
    vd_sampler *s = calloc(1, sizeof *s);
    if (!s)
        return vd_error(VD_ERR_OUT_OF_MEMORY, "out of memory");
    s->kind = kind;
    s->sched = schedule;
    s->n = n;
    if (kind == VD_SAMPLER_UNIPC) {
        size_t bytes = (size_t)n * sizeof(float);
        s->m_prev = malloc(bytes);
        s->m_prev2 = malloc(bytes);
        s->last_sample = malloc(bytes);
        s->m_cur = malloc(bytes);
        if (!s->m_prev || !s->m_prev2 || !s->last_sample || !s->m_cur) {
            vd_sampler_free(s);
            return vd_error(VD_ERR_OUT_OF_MEMORY, "sampler: out of memory for %lld latent values", (long long)n);
        }
    }
    *out = s;
    return VD_OK;
}

void vd_sampler_free(vd_sampler *s)
{
    if (!s)
        return;
    free(s->m_prev);
    free(s->m_prev2);
    free(s->last_sample);
    free(s->m_cur);
    free(s);
}

/* λ = ln α − ln σ with α = 1 − σ (+∞ at σ = 0). */
static double lambda_of(double sigma) { return log(1.0 - sigma) - log(sigma); }

/* The bh2 coefficients shared by predictor and corrector for a step of
 * log-SNR size h: φ = e^(−h) − 1 (= B), g1 = φ/(−h) − 1, g2 = g1/(−h) − 1/2. */
typedef struct bh_coef {
    double phi, g1, g2;
} bh_coef;

static bh_coef bh2(double h)
{
    bh_coef c;
    double hh = -h;
    c.phi = expm1(hh);
    c.g1 = c.phi / hh - 1.0;
    c.g2 = c.g1 / hh - 0.5;
    return c;
}

/* Corrector (UniC) for step i, using this step's x0 prediction m_cur. */
static void unipc_correct(vd_sampler *s, int i, float *x)
{
    const double *sg = s->sched->sigmas;
    double sigma_t = sg[i], sigma_s0 = sg[i - 1];
    double alpha_t = 1.0 - sigma_t;
    double h = lambda_of(sigma_t) - lambda_of(sigma_s0);
    bh_coef c = bh2(h);
    double B = c.phi;
    double ratio = sigma_t / sigma_s0, base_m = alpha_t * c.phi;
    if (s->prev_order == 1) {
        double k = alpha_t * B * 0.5;
        for (int64_t j = 0; j < s->n; j++) {
            double base = ratio * s->last_sample[j] - base_m * s->m_prev[j];
            x[j] = (float)(base - k * ((double)s->m_cur[j] - s->m_prev[j]));
        }
        return;
    }
    /* order 2: r = (λ_{i−2} − λ_{i−1}) / h; solve [[1,1],[r,1]]·ρ = [g1/B, 2·g2/B] */
    double r = (lambda_of(sg[i - 2]) - lambda_of(sigma_s0)) / h;
    double b0 = c.g1 / B, b1 = 2.0 * c.g2 / B;
    double det = 1.0 - r;
    double rho0 = (b0 - b1) / det;
    double rho1 = (b1 - r * b0) / det;
    double k = alpha_t * B;
    for (int64_t j = 0; j < s->n; j++) {
        double base = ratio * s->last_sample[j] - base_m * s->m_prev[j];
        double d1 = ((double)s->m_prev2[j] - s->m_prev[j]) / r;
        double dt = (double)s->m_cur[j] - s->m_prev[j];
        x[j] = (float)(base - k * (rho0 * d1 + rho1 * dt));
    }
}

/* Predictor (UniP) from x_i with x0 prediction m_cur to x_{i+1}. */
static void unipc_predict(vd_sampler *s, int i, int order, float *x)
{
    const double *sg = s->sched->sigmas;
    double sigma_t = sg[i + 1], sigma_s0 = sg[i];
    double alpha_t = 1.0 - sigma_t;
    double h = lambda_of(sigma_t) - lambda_of(sigma_s0);
    bh_coef c = bh2(h);
    double ratio = sigma_t / sigma_s0, base_m = alpha_t * c.phi;
    if (order == 1) {
        for (int64_t j = 0; j < s->n; j++)
            x[j] = (float)(ratio * x[j] - base_m * s->m_cur[j]);
        return;
    }
    double r = (lambda_of(sg[i - 1]) - lambda_of(sigma_s0)) / h;
    double k = alpha_t * c.phi * 0.5;
    for (int64_t j = 0; j < s->n; j++) {
        double d1 = ((double)s->m_prev[j] - s->m_cur[j]) / r;
        x[j] = (float)(ratio * x[j] - base_m * s->m_cur[j] - k * d1);
    }
}

static void unipc_step(vd_sampler *s, int i, const float *v, float *x)
{
    const int steps = s->sched->steps;
    double sigma = s->sched->sigmas[i];
    /* x0 prediction from the uncorrected sample, as the reference does */
    for (int64_t j = 0; j < s->n; j++)
        s->m_cur[j] = (float)((double)x[j] - sigma * (double)v[j]);
    if (i > 0)
        unipc_correct(s, i, x);
    int order = steps - i < 2 ? steps - i : 2;
    if (order > s->lower_order_nums + 1)
        order = s->lower_order_nums + 1;
    memcpy(s->last_sample, x, (size_t)s->n * sizeof(float));
    unipc_predict(s, i, order, x);
    /* shift the history: m_prev2 ← m_prev ← m_cur */
    float *t = s->m_prev2;
    s->m_prev2 = s->m_prev;
    s->m_prev = s->m_cur;
    s->m_cur = t;
    s->prev_order = order;
    if (s->lower_order_nums < 2)
        s->lower_order_nums++;
}

vd_status vd_sampler_step(vd_sampler *s, int i, const float *velocity, float *x)
{
    if (i != s->next_step || i >= s->sched->steps)
        return vd_error(VD_ERR_INVALID_ARGUMENT, "sampler: step %d out of order (expected %d of %d)", i, s->next_step,
                        s->sched->steps);
    if (s->kind == VD_SAMPLER_EULER) {
        double dt = s->sched->sigmas[i + 1] - s->sched->sigmas[i];
        for (int64_t j = 0; j < s->n; j++)
            x[j] = (float)((double)x[j] + dt * (double)velocity[j]);
    } else {
        unipc_step(s, i, velocity, x);
    }
    s->next_step++;
    return VD_OK;
}

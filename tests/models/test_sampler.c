/* The samplers against the reference's replay (tests/data/golden/
 * sampler_replay.safetensors): given the same model outputs v_i, UniPC and
 * Euler must reproduce every intermediate x_i.  The reference computes its
 * scalars in float32 and we in double, so x_i agree to relative L2 1e-5. */
#include "io/weights.h"
#include "sampling/sampler.h"
#include "test_util.h"

static const float *f32_of(const vd_weights *w, const char *name, int64_t *n)
{
    const vd_weight *x = vd_weights_find(w, name);
    if (!x || x->tensor.dtype != VD_F32) {
        fprintf(stderr, "golden tensor %s missing\n", name);
        return NULL;
    }
    *n = vd_tensor_nelem(&x->tensor);
    return x->tensor.data;
}

static void replay(const vd_weights *w, const char *sampler, int steps, int shift)
{
    char name[96];
    int64_t nv = 0, nx = 0;
    snprintf(name, sizeof name, "%s_steps%d_shift%d.v", sampler, steps, shift);
    const float *v = f32_of(w, name, &nv);
    snprintf(name, sizeof name, "%s_steps%d_shift%d.x", sampler, steps, shift);
    const float *x = f32_of(w, name, &nx);
    CHECK(v && x);
    if (!v || !x)
        return;
    const int64_t n = nv / steps;
    CHECK(nx == n * (steps + 1));
    vd_schedule sc;
    CHECK_OK(vd_schedule_flow(steps, shift, &sc));
    vd_sampler *s;
    vd_sampler_kind kind;
    CHECK(vd_sampler_parse(sampler, &kind));
    CHECK_OK(vd_sampler_new(kind, &sc, n, &s));
    float *cur = malloc((size_t)n * sizeof *cur);
    memcpy(cur, x, (size_t)n * sizeof *cur);
    for (int i = 0; i < steps; i++) {
        CHECK_OK(vd_sampler_step(s, i, v + i * n, cur));
        double err = rel_l2(cur, x + (i + 1) * n, n);
        CHECKF(err <= 1e-5, "%s %d steps shift %d: step %d rel L2 %.3e", sampler, steps, shift, i, err);
    }
    /* steps out of order are refused */
    CHECK_FAILS(vd_sampler_step(s, 0, v, cur), VD_ERR_INVALID_ARGUMENT);
    vd_sampler_free(s);
    vd_schedule_free(&sc);
    free(cur);
}

int main(void)
{
    vd_weights *w;
    CHECK_OK(vd_weights_open(VD_TEST_DATA_DIR "/golden/sampler_replay.safetensors", &w));
    if (!w)
        return test_finish("sampler");
    const int cases[][2] = {{8, 5}, {1, 5}, {2, 3}, {20, 8}};
    for (int k = 0; k < 4; k++) {
        replay(w, "unipc", cases[k][0], cases[k][1]);
        replay(w, "euler", cases[k][0], cases[k][1]);
    }
    vd_weights_close(w);

    /* bad settings */
    vd_schedule sc;
    CHECK_FAILS(vd_schedule_flow(0, 5.0, &sc), VD_ERR_INVALID_ARGUMENT);
    CHECK_FAILS(vd_schedule_flow(10, -1.0, &sc), VD_ERR_INVALID_ARGUMENT);
    CHECK_FAILS(vd_schedule_flow(10, NAN, &sc), VD_ERR_INVALID_ARGUMENT);
    return test_finish("sampler");
}

/* Attention with a tiled online softmax (the flash-attention recurrence):
 * for each (batch, head, block of QB queries) the scores against KB keys at
 * a time come from one SGEMM, the running row maximum and sum rescale the
 * output accumulator, and a second SGEMM adds P·V.  At most QB×KB scores
 * exist at once. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "backend/cpu/cpu_internal.h"
#include "core/error.h"

enum { QB = 64, KB = 256, LANES = 8 };

typedef struct attention_job {
    const float *q, *k, *v, *bias;
    float *out;
    const int32_t *kv_len;
    int64_t B, Lq, Lk, H, d, dv, q_blocks;
    float scale;
    float **scratch; /* per worker: scores QB·KB, accumulator QB·dv, row max QB */
} attention_job;

static void attention_block(const attention_job *j, int64_t b, int64_t h, int64_t q0, float *scratch)
{
    int64_t nq = j->Lq - q0 < QB ? j->Lq - q0 : QB;
    int64_t keys = j->kv_len ? j->kv_len[b] : j->Lk;
    int ldq = (int)(j->H * j->d), ldv = (int)(j->H * j->dv), dv = (int)j->dv;
    float *S = scratch, *O = S + QB * KB, *row_max = O + QB * j->dv;
    double row_sum[QB];
    memset(O, 0, (size_t)(nq * j->dv) * sizeof *O);
    for (int64_t i = 0; i < nq; i++) {
        row_max[i] = -INFINITY;
        row_sum[i] = 0.0;
    }
    const float *qp = j->q + ((b * j->Lq + q0) * j->H + h) * j->d;
    for (int64_t k0 = 0; k0 < keys; k0 += KB) {
        int64_t nk = keys - k0 < KB ? keys - k0 : KB;
        const float *kp = j->k + ((b * j->Lk + k0) * j->H + h) * j->d;
        const float *vp = j->v + ((b * j->Lk + k0) * j->H + h) * j->dv;
        cpu_sgemm(true, (int)nq, (int)nk, (int)j->d, j->scale, qp, ldq, kp, ldq, 0.0f, S, KB);
        for (int64_t i = 0; i < nq; i++) {
            float *s = S + i * KB;
            if (j->bias) {
                const float *br = j->bias + (h * j->Lq + q0 + i) * j->Lk + k0;
                for (int64_t c = 0; c < nk; c++)
                    s[c] += br[c];
            }
            float mx = row_max[i], m8[LANES], e8[LANES];
            for (int l = 0; l < LANES; l++)
                m8[l] = mx;
            int64_t c = 0;
            for (; c + LANES <= nk; c += LANES)
                for (int l = 0; l < LANES; l++)
                    m8[l] = s[c + l] > m8[l] ? s[c + l] : m8[l];
            for (; c < nk; c++)
                m8[0] = s[c] > m8[0] ? s[c] : m8[0];
            for (int l = 0; l < LANES; l++)
                mx = m8[l] > mx ? m8[l] : mx;
            if (mx == -INFINITY) { /* every key so far masked by the bias */
                memset(s, 0, (size_t)nk * sizeof *s);
                continue;
            }
            /* Independent partial sums (a fixed order for a given nk). */
            for (int l = 0; l < LANES; l++)
                e8[l] = 0.0f;
            for (c = 0; c + LANES <= nk; c += LANES)
                for (int l = 0; l < LANES; l++) {
                    s[c + l] = expf(s[c + l] - mx);
                    e8[l] += s[c + l];
                }
            for (; c < nk; c++) {
                s[c] = expf(s[c] - mx);
                e8[0] += s[c];
            }
            double sum = 0.0;
            for (int l = 0; l < LANES; l++)
                sum += e8[l];
            if (mx != row_max[i]) {
                float corr = row_max[i] == -INFINITY ? 0.0f : expf(row_max[i] - mx);
                float *o = O + i * j->dv;
                for (int64_t e = 0; e < j->dv; e++)
                    o[e] *= corr;
                row_sum[i] *= corr;
                row_max[i] = mx;
            }
            row_sum[i] += sum;
        }
        cpu_sgemm(false, (int)nq, dv, (int)nk, 1.0f, S, KB, vp, ldv, 1.0f, O, dv);
    }
    for (int64_t i = 0; i < nq; i++) {
        float *o = j->out + ((b * j->Lq + q0 + i) * j->H + h) * j->dv;
        float inv = (float)(1.0 / row_sum[i]);
        for (int64_t c = 0; c < j->dv; c++)
            o[c] = O[i * j->dv + c] * inv;
    }
}

static void attention_items(void *arg, int64_t begin, int64_t end, int worker)
{
    attention_job *j = arg;
    for (int64_t item = begin; item < end; item++) {
        int64_t qb = item % j->q_blocks, bh = item / j->q_blocks;
        attention_block(j, bh / j->H, bh % j->H, qb * QB, j->scratch[worker]);
    }
}

vd_status cpu_attention(vd_backend *be, const vd_tensor *q, const vd_tensor *k, const vd_tensor *v, float scale,
                        const vd_tensor *bias, const int32_t *kv_len, vd_tensor *out)
{
    attention_job j = {
        .q = q->data, .k = k->data, .v = v->data, .bias = bias ? bias->data : NULL, .out = out->data,
        .kv_len = kv_len, .B = q->shape[0], .Lq = q->shape[1], .Lk = k->shape[1], .H = q->shape[2],
        .d = q->shape[3], .dv = v->shape[3], .scale = scale,
    };
    j.q_blocks = (j.Lq + QB - 1) / QB;
    int64_t items = j.B * j.H * j.q_blocks;
    if (items == 0 || j.dv == 0)
        return VD_OK;
    int workers = cpu_workers(be);
    j.scratch = calloc((size_t)workers, sizeof *j.scratch);
    vd_status s = j.scratch ? VD_OK : VD_ERR_OUT_OF_MEMORY;
    for (int i = 0; s == VD_OK && i < workers; i++)
        if (!(j.scratch[i] = cpu_alloc_floats(QB * KB + QB * j.dv + QB)))
            s = VD_ERR_OUT_OF_MEMORY;
    if (s == VD_OK)
        vd_parallel_for(cpu_pool(be), items, 1, attention_items, &j);
    else
        vd_error(s, "attention: no memory for %d work tiles (head size %lld)", workers, (long long)j.dv);
    for (int i = 0; j.scratch && i < workers; i++)
        cpu_free(j.scratch[i]);
    free(j.scratch);
    return s;
}

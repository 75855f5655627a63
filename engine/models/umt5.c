#include "models/umt5.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "models/model_weights.h"

typedef struct t5_layer {
    vd_tensor ln0, ln1;          /* f32 [D] */
    vd_tensor q, k, v, o;        /* storage dtype */
    vd_tensor rel;               /* f32 [buckets, H] */
    vd_tensor wi0, wi1, wo;      /* storage dtype */
} t5_layer;

struct vd_umt5 {
    vd_backend *be;
    vd_t5_config cfg;
    vd_tensor embed;             /* shared.weight, storage dtype [vocab, D] */
    vd_tensor final_ln;          /* f32 [D] */
    t5_layer *layers;
};

/* ---- relative-position buckets -------------------------------------------- */

int32_t vd_umt5_bucket(int64_t rel, int64_t num_buckets, int64_t max_distance)
{
    const int64_t half = num_buckets / 2, max_exact = half / 2;
    int32_t base = rel > 0 ? (int32_t)half : 0;
    int64_t n = rel < 0 ? -rel : rel;
    if (n < max_exact)
        return base + (int32_t)n;
    if (max_exact <= 0 || max_distance <= max_exact)
        return base + (int32_t)(half - 1);
    /* max_exact + ⌊ln(n/max_exact) / ln(max_distance/max_exact) · (half − max_exact)⌋.
     * Where the true value is an integer (n a power step: 16, 32, 64 for
     * umT5) double rounding may land just below it; snap to it so the floor
     * is the exact one. */
    double x = log((double)n / (double)max_exact) / log((double)max_distance / (double)max_exact) *
               (double)(half - max_exact);
    double r = nearbyint(x);
    double k = fabs(x - r) < 1e-9 ? r : floor(x);
    int64_t large = max_exact + (int64_t)k;
    if (large > half - 1)
        large = half - 1;
    return base + (int32_t)large;
}

/* ---- loading ------------------------------------------------------------------- */

static void release_layer(t5_layer *l)
{
    vd_tensor *all[] = {&l->ln0, &l->ln1, &l->q, &l->k, &l->v, &l->o, &l->rel, &l->wi0, &l->wi1, &l->wo};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        vd_tensor_release(all[i]);
}

void vd_umt5_free(vd_umt5 *enc)
{
    if (!enc)
        return;
    if (enc->layers)
        for (int64_t i = 0; i < enc->cfg.layers; i++)
            release_layer(&enc->layers[i]);
    free(enc->layers);
    vd_tensor_release(&enc->embed);
    vd_tensor_release(&enc->final_ln);
    free(enc);
}

const vd_t5_config *vd_umt5_get_config(const vd_umt5 *enc) { return &enc->cfg; }

static vd_status load_layer(vd_umt5 *enc, const vd_weights *w, int64_t i, t5_layer *l)
{
    vd_backend *be = enc->be;
    const int64_t D = enc->cfg.d_model;
    const long long li = (long long)i;
#define P "encoder.block.%lld.layer."
    VD_TRY(vd_load_vecf(be, w, D, &l->ln0, P "0.layer_norm.weight", li));
    VD_TRY(vd_load_weightf(be, w, &l->q, P "0.SelfAttention.q.weight", li));
    VD_TRY(vd_load_weightf(be, w, &l->k, P "0.SelfAttention.k.weight", li));
    VD_TRY(vd_load_weightf(be, w, &l->v, P "0.SelfAttention.v.weight", li));
    VD_TRY(vd_load_weightf(be, w, &l->o, P "0.SelfAttention.o.weight", li));
    char name[128];
    snprintf(name, sizeof name, P "0.SelfAttention.relative_attention_bias.weight", li);
    int64_t rs[2] = {enc->cfg.buckets, enc->cfg.heads};
    VD_TRY(vd_load_param_f32(be, w, name, 2, rs, &l->rel));
    VD_TRY(vd_load_vecf(be, w, D, &l->ln1, P "1.layer_norm.weight", li));
    VD_TRY(vd_load_weightf(be, w, &l->wi0, P "1.DenseReluDense.wi_0.weight", li));
    VD_TRY(vd_load_weightf(be, w, &l->wi1, P "1.DenseReluDense.wi_1.weight", li));
    VD_TRY(vd_load_weightf(be, w, &l->wo, P "1.DenseReluDense.wo.weight", li));
#undef P
    return VD_OK;
}

vd_status vd_umt5_load(vd_backend *be, const vd_weights *w, vd_umt5 **out)
{
    *out = NULL;
    vd_arch_info info;
    vd_status st = vd_arch_detect(w, &info);
    if (st != VD_OK)
        return vd_error_context(st, "'%s': ", vd_weights_path(w));
    if (info.arch != VD_ARCH_UMT5)
        return vd_error(VD_ERR_UNSUPPORTED, "'%s' is a %s, not a umT5 text encoder (pass the umt5_xxl file)",
                        vd_weights_path(w), info.name);
    vd_umt5 *enc = calloc(1, sizeof *enc);
    if (!enc)
        return vd_error(VD_ERR_OUT_OF_MEMORY, "out of memory");
    enc->be = be;
    enc->cfg = info.t5;
    enc->layers = calloc((size_t)enc->cfg.layers, sizeof *enc->layers);
    if (!enc->layers)
        st = vd_error(VD_ERR_OUT_OF_MEMORY, "out of memory");
    if (st == VD_OK)
        st = vd_load_weight(be, w, "shared.weight", &enc->embed);
    if (st == VD_OK)
        st = vd_load_vecf(be, w, enc->cfg.d_model, &enc->final_ln, "encoder.final_layer_norm.weight");
    for (int64_t i = 0; st == VD_OK && i < enc->cfg.layers; i++)
        st = load_layer(enc, w, i, &enc->layers[i]);
    if (st != VD_OK) {
        vd_umt5_free(enc);
        return vd_error_context(st, "loading the umT5 encoder from '%s': ", vd_weights_path(w));
    }
    *out = enc;
    return VD_OK;
}

/* ---- forward --------------------------------------------------------------------- */

/* Activations of one encode call. */
typedef struct workspace {
    vd_tensor ids;                 /* i32 [L] */
    vd_tensor x, a, y;             /* [L, D] */
    vd_tensor q, k, v, o;          /* [L, H·d_kv] */
    vd_tensor g, u;                /* [L, F] */
    vd_tensor buckets;             /* i32 [L·L] */
    vd_tensor gathered;            /* [L·L, H] */
    vd_tensor bias;                /* [H, L, L] */
} workspace;

static void release_workspace(workspace *ws)
{
    vd_tensor *all[] = {&ws->ids, &ws->x, &ws->a, &ws->y, &ws->q, &ws->k, &ws->v, &ws->o,
                        &ws->g, &ws->u, &ws->buckets, &ws->gathered, &ws->bias};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        vd_tensor_release(all[i]);
}

static vd_status alloc2(vd_backend *be, vd_tensor *t, int64_t r, int64_t c)
{
    int64_t s[2] = {r, c};
    return vd_tensor_alloc(be, VD_F32, 2, s, t);
}

/* View a [L, H·d] activation as [1, L, H, d] for attention. */
static vd_tensor heads_view(const vd_tensor *t, int64_t L, int64_t H, int64_t d)
{
    vd_tensor r;
    int64_t s[4] = {1, L, H, d};
    vd_tensor_reshape(t, 4, s, &r);
    return r;
}

/* Bucket index of every (query i, key j) pair, row-major [L, L], uploaded
 * once per call: every layer gathers its own bias through it. */
static vd_status upload_buckets(vd_umt5 *enc, workspace *ws, int64_t L)
{
    int32_t *host = malloc((size_t)(L * L) * sizeof *host);
    if (!host)
        return vd_error(VD_ERR_OUT_OF_MEMORY, "out of memory for the %lld×%lld position buckets", (long long)L,
                        (long long)L);
    /* the bucket depends only on j − i: compute the 2L − 1 values once */
    int32_t *by_rel = malloc((size_t)(2 * L - 1) * sizeof *by_rel);
    if (!by_rel) {
        free(host);
        return vd_error(VD_ERR_OUT_OF_MEMORY, "out of memory");
    }
    for (int64_t r = -(L - 1); r <= L - 1; r++)
        by_rel[r + L - 1] = vd_umt5_bucket(r, enc->cfg.buckets, VD_UMT5_MAX_DISTANCE);
    for (int64_t i = 0; i < L; i++)
        for (int64_t j = 0; j < L; j++)
            host[i * L + j] = by_rel[j - i + L - 1];
    free(by_rel);
    int64_t n = L * L;
    vd_status st = vd_tensor_alloc(enc->be, VD_I32, 1, &n, &ws->buckets);
    if (st == VD_OK)
        st = vd_tensor_upload(enc->be, &ws->buckets, host, (size_t)n * sizeof *host);
    free(host);
    return st;
}

/* bias[h, i, j] = rel[bucket(j − i), h]: gather [L·L, H], then transpose. */
static vd_status layer_bias(vd_umt5 *enc, const t5_layer *l, workspace *ws, int64_t L)
{
    const int64_t H = enc->cfg.heads;
    VD_TRY(vd_op_get_rows(enc->be, &l->rel, &ws->buckets, &ws->gathered));
    vd_tensor g3, src;
    int64_t s3[3] = {L, L, H};
    int axes[3] = {2, 0, 1};
    VD_TRY(vd_tensor_reshape(&ws->gathered, 3, s3, &g3));
    VD_TRY(vd_tensor_permute(&g3, axes, &src));
    return vd_op_copy(enc->be, &src, &ws->bias);
}

static vd_status run_layer(vd_umt5 *enc, const t5_layer *l, workspace *ws, int64_t L, int32_t kv_len)
{
    vd_backend *be = enc->be;
    const int64_t H = enc->cfg.heads, dk = enc->cfg.d_kv;

    /* self-attention: x += o(Attn(RMSNorm(x))), logits unscaled plus the bias */
    VD_TRY(layer_bias(enc, l, ws, L));
    VD_TRY(vd_op_rmsnorm(be, &ws->x, &l->ln0, VD_UMT5_EPS, &ws->a));
    VD_TRY(vd_op_matmul(be, &ws->a, &l->q, NULL, &ws->q));
    VD_TRY(vd_op_matmul(be, &ws->a, &l->k, NULL, &ws->k));
    VD_TRY(vd_op_matmul(be, &ws->a, &l->v, NULL, &ws->v));
    {
        vd_tensor q4 = heads_view(&ws->q, L, H, dk), k4 = heads_view(&ws->k, L, H, dk);
        vd_tensor v4 = heads_view(&ws->v, L, H, dk), o4 = heads_view(&ws->o, L, H, dk);
        VD_TRY(vd_op_attention(be, &q4, &k4, &v4, 1.0f, &ws->bias, &kv_len, &o4));
    }
    VD_TRY(vd_op_matmul(be, &ws->o, &l->o, NULL, &ws->y));
    VD_TRY(vd_op_add(be, &ws->x, &ws->y, &ws->x));

    /* feed-forward: x += wo(GELU_tanh(wi_0·h) ⊙ wi_1·h), h = RMSNorm(x) */
    VD_TRY(vd_op_rmsnorm(be, &ws->x, &l->ln1, VD_UMT5_EPS, &ws->a));
    VD_TRY(vd_op_matmul(be, &ws->a, &l->wi0, NULL, &ws->g));
    VD_TRY(vd_op_gelu_tanh(be, &ws->g, &ws->g));
    VD_TRY(vd_op_matmul(be, &ws->a, &l->wi1, NULL, &ws->u));
    VD_TRY(vd_op_mul(be, &ws->g, &ws->u, &ws->g));
    VD_TRY(vd_op_matmul(be, &ws->g, &l->wo, NULL, &ws->y));
    return vd_op_add(be, &ws->x, &ws->y, &ws->x);
}

static vd_status forward(vd_umt5 *enc, const int32_t *ids, int64_t n, int64_t L, float *out, workspace *ws)
{
    vd_backend *be = enc->be;
    const vd_t5_config *c = &enc->cfg;
    const int64_t D = c->d_model, inner = c->heads * c->d_kv;

    /* the ids, then the pad id 0 */
    int32_t *host = calloc((size_t)L, sizeof *host);
    if (!host)
        return vd_error(VD_ERR_OUT_OF_MEMORY, "out of memory");
    memcpy(host, ids, (size_t)n * sizeof *host);
    vd_status st = vd_tensor_alloc(be, VD_I32, 1, &L, &ws->ids);
    if (st == VD_OK)
        st = vd_tensor_upload(be, &ws->ids, host, (size_t)L * sizeof *host);
    free(host);
    VD_TRY(st);

    VD_TRY(alloc2(be, &ws->x, L, D));
    VD_TRY(alloc2(be, &ws->a, L, D));
    VD_TRY(alloc2(be, &ws->y, L, D));
    vd_tensor *acts[] = {&ws->q, &ws->k, &ws->v, &ws->o};
    for (size_t i = 0; i < sizeof acts / sizeof acts[0]; i++)
        VD_TRY(alloc2(be, acts[i], L, inner));
    VD_TRY(alloc2(be, &ws->g, L, c->d_ff));
    VD_TRY(alloc2(be, &ws->u, L, c->d_ff));
    VD_TRY(alloc2(be, &ws->gathered, L * L, c->heads));
    int64_t sb[3] = {c->heads, L, L};
    VD_TRY(vd_tensor_alloc(be, VD_F32, 3, sb, &ws->bias));
    VD_TRY(upload_buckets(enc, ws, L));

    VD_TRY(vd_op_get_rows(be, &enc->embed, &ws->ids, &ws->x));
    for (int64_t i = 0; i < c->layers; i++) {
        st = run_layer(enc, &enc->layers[i], ws, L, (int32_t)n);
        if (st != VD_OK)
            return vd_error_context(st, "umT5 layer %lld: ", (long long)i);
    }
    VD_TRY(vd_op_rmsnorm(be, &ws->x, &enc->final_ln, VD_UMT5_EPS, &ws->x));

    /* only the real rows leave the device */
    vd_tensor rows;
    VD_TRY(vd_tensor_slice(&ws->x, 0, 0, n, &rows));
    return vd_tensor_download(be, &rows, out, (size_t)(n * D) * sizeof *out);
}

vd_status vd_umt5_encode(vd_umt5 *enc, const int32_t *ids, int64_t n, int64_t pad_to, float *out)
{
    if (!enc || !ids || !out)
        return vd_error(VD_ERR_INVALID_ARGUMENT, "vd_umt5_encode: NULL encoder, ids or output");
    if (n < 1)
        return vd_error(VD_ERR_INVALID_ARGUMENT, "umT5: %lld token ids; encode at least one (the EOS id 1)",
                        (long long)n);
    if (pad_to != 0 && pad_to < n)
        return vd_error(VD_ERR_INVALID_ARGUMENT, "umT5: pad_to %lld is shorter than the %lld ids (0 = no padding)",
                        (long long)pad_to, (long long)n);
    const int64_t L = pad_to ? pad_to : n;
    /* the bias grows with L² (see VD_UMT5_MAX_POSITIONS) */
    if (L > VD_UMT5_MAX_POSITIONS)
        return vd_error(VD_ERR_INVALID_ARGUMENT, "umT5: sequence of %lld positions is too long (at most %d; Wan uses 512)",
                        (long long)L, VD_UMT5_MAX_POSITIONS);
    for (int64_t i = 0; i < n; i++)
        if (ids[i] < 0 || ids[i] >= enc->cfg.vocab)
            return vd_error(VD_ERR_INVALID_ARGUMENT,
                            "umT5: token id %d at position %lld is outside the encoder's vocabulary of %lld ids "
                            "(was the prompt tokenized with another model's tokenizer?)",
                            (int)ids[i], (long long)i, (long long)enc->cfg.vocab);
    workspace ws;
    memset(&ws, 0, sizeof ws);
    vd_status st = forward(enc, ids, n, L, out, &ws);
    release_workspace(&ws);
    return st;
}

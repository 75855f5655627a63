#include "models/wan_dit.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "models/model_weights.h"

typedef struct linear {
    vd_tensor w, b;
} linear;

typedef struct dit_block {
    vd_tensor modulation; /* f32 [6, D] */
    linear sa_q, sa_k, sa_v, sa_o;
    vd_tensor sa_norm_q, sa_norm_k;
    vd_tensor norm3_w, norm3_b;
    linear ca_q, ca_k, ca_v, ca_o;
    vd_tensor ca_norm_q, ca_norm_k;
    linear ffn0, ffn2;
} dit_block;

struct vd_dit {
    vd_backend *be;
    vd_dit_config cfg;
    vd_tensor patch_w; /* [D, C_in·pt·ph·pw] view of the conv weight */
    vd_tensor patch_b;
    linear text0, text2, time0, time2, time_proj, head;
    vd_tensor head_modulation; /* f32 [2, D] */
    dit_block *blocks;
};

/* ---- loading -------------------------------------------------------------- */

static vd_status load_linear(vd_dit *m, const vd_weights *w, linear *l, int64_t out, const char *base)
{
    VD_TRY(vd_load_weightf(m->be, w, &l->w, "%s.weight", base));
    return vd_load_vecf(m->be, w, out, &l->b, "%s.bias", base);
}

static void release_linear(linear *l)
{
    vd_tensor_release(&l->w);
    vd_tensor_release(&l->b);
}

static vd_status load_block(vd_dit *m, const vd_weights *w, int64_t i, dit_block *b)
{
    const int64_t D = m->cfg.dim, F = m->cfg.ffn_dim;
    char base[96];
    int64_t shape6[2] = {6, D};
#define L(field, out, suffix)                                                   \
    do {                                                                        \
        snprintf(base, sizeof base, "blocks.%lld." suffix, (long long)i);      \
        VD_TRY(load_linear(m, w, &b->field, out, base));                        \
    } while (0)
#define V(field, suffix) VD_TRY(vd_load_vecf(m->be, w, D, &b->field, "blocks.%lld." suffix, (long long)i))
    snprintf(base, sizeof base, "blocks.%lld.modulation", (long long)i);
    VD_TRY(vd_load_param_f32(m->be, w, base, 2, shape6, &b->modulation));
    L(sa_q, D, "self_attn.q");
    L(sa_k, D, "self_attn.k");
    L(sa_v, D, "self_attn.v");
    L(sa_o, D, "self_attn.o");
    V(sa_norm_q, "self_attn.norm_q.weight");
    V(sa_norm_k, "self_attn.norm_k.weight");
    V(norm3_w, "norm3.weight");
    V(norm3_b, "norm3.bias");
    L(ca_q, D, "cross_attn.q");
    L(ca_k, D, "cross_attn.k");
    L(ca_v, D, "cross_attn.v");
    L(ca_o, D, "cross_attn.o");
    V(ca_norm_q, "cross_attn.norm_q.weight");
    V(ca_norm_k, "cross_attn.norm_k.weight");
    L(ffn0, F, "ffn.0");
    L(ffn2, D, "ffn.2");
#undef L
#undef V
    return VD_OK;
}

static void release_block(dit_block *b)
{
    vd_tensor_release(&b->modulation);
    release_linear(&b->sa_q), release_linear(&b->sa_k), release_linear(&b->sa_v), release_linear(&b->sa_o);
    vd_tensor_release(&b->sa_norm_q), vd_tensor_release(&b->sa_norm_k);
    vd_tensor_release(&b->norm3_w), vd_tensor_release(&b->norm3_b);
    release_linear(&b->ca_q), release_linear(&b->ca_k), release_linear(&b->ca_v), release_linear(&b->ca_o);
    vd_tensor_release(&b->ca_norm_q), vd_tensor_release(&b->ca_norm_k);
    release_linear(&b->ffn0), release_linear(&b->ffn2);
}

void vd_dit_free(vd_dit *m)
{
    if (!m)
        return;
    if (m->blocks)
        for (int64_t i = 0; i < m->cfg.layers; i++)
            release_block(&m->blocks[i]);
    free(m->blocks);
    vd_tensor_release(&m->patch_w);
    vd_tensor_release(&m->patch_b);
    release_linear(&m->text0), release_linear(&m->text2);
    release_linear(&m->time0), release_linear(&m->time2), release_linear(&m->time_proj);
    release_linear(&m->head);
    vd_tensor_release(&m->head_modulation);
    free(m);
}

const vd_dit_config *vd_dit_get_config(const vd_dit *m) { return &m->cfg; }

vd_status vd_dit_load(vd_backend *be, const vd_weights *w, vd_dit **out)
{
    *out = NULL;
    vd_arch_info info;
    vd_status st = vd_arch_detect(w, &info);
    if (st != VD_OK)
        return vd_error_context(st, "'%s': ", vd_weights_path(w));
    if (info.arch != VD_ARCH_WAN_DIT)
        return vd_error(VD_ERR_UNSUPPORTED, "'%s' is a %s, not a Wan DiT", vd_weights_path(w), info.name);
    if (info.dit.patch[0] != 1)
        return vd_error(VD_ERR_UNSUPPORTED, "'%s': temporal patch size %lld (only 1 is supported, as in every Wan release)",
                        vd_weights_path(w), (long long)info.dit.patch[0]);
    vd_dit *m = calloc(1, sizeof *m);
    if (!m)
        return vd_error(VD_ERR_OUT_OF_MEMORY, "out of memory");
    m->be = be;
    m->cfg = info.dit;
    const int64_t D = m->cfg.dim;
    m->blocks = calloc((size_t)m->cfg.layers, sizeof *m->blocks);
    if (!m->blocks)
        st = vd_error(VD_ERR_OUT_OF_MEMORY, "out of memory");
    if (st == VD_OK)
        st = vd_load_weight(be, w, "patch_embedding.weight", &m->patch_w);
    if (st == VD_OK) {
        int64_t s2[2] = {D, m->cfg.in_dim * m->cfg.patch[0] * m->cfg.patch[1] * m->cfg.patch[2]};
        vd_tensor flat;
        st = vd_tensor_reshape(&m->patch_w, 2, s2, &flat);
        if (st == VD_OK) {
            flat.owner = m->patch_w.owner;
            m->patch_w = flat;
        }
    }
    if (st == VD_OK)
        st = vd_load_vecf(be, w, D, &m->patch_b, "patch_embedding.bias");
    if (st == VD_OK)
        st = load_linear(m, w, &m->text0, D, "text_embedding.0");
    if (st == VD_OK)
        st = load_linear(m, w, &m->text2, D, "text_embedding.2");
    if (st == VD_OK)
        st = load_linear(m, w, &m->time0, D, "time_embedding.0");
    if (st == VD_OK)
        st = load_linear(m, w, &m->time2, D, "time_embedding.2");
    if (st == VD_OK)
        st = load_linear(m, w, &m->time_proj, 6 * D, "time_projection.1");
    if (st == VD_OK)
        st = load_linear(m, w, &m->head, m->cfg.out_dim * m->cfg.patch[1] * m->cfg.patch[2], "head.head");
    if (st == VD_OK) {
        int64_t s2[2] = {2, D};
        st = vd_load_param_f32(be, w, "head.modulation", 2, s2, &m->head_modulation);
    }
    for (int64_t i = 0; st == VD_OK && i < m->cfg.layers; i++)
        st = load_block(m, w, i, &m->blocks[i]);
    if (st != VD_OK) {
        vd_dit_free(m);
        return vd_error_context(st, "loading the DiT from '%s': ", vd_weights_path(w));
    }
    *out = m;
    return VD_OK;
}

/* ---- text embedding ----------------------------------------------------- */

vd_status vd_dit_embed_text(vd_dit *m, const float *ctx, int64_t n, vd_tensor *out)
{
    const int64_t D = m->cfg.dim, C = m->cfg.text_dim, L = VD_DIT_TEXT_LEN;
    memset(out, 0, sizeof *out);
    if (n < 1 || n > L)
        return vd_error(VD_ERR_SHAPE, "text context has %lld rows; the DiT takes 1 to %lld", (long long)n, (long long)L);
    float *padded = calloc((size_t)(L * C), sizeof *padded);
    if (!padded)
        return vd_error(VD_ERR_OUT_OF_MEMORY, "out of memory");
    memcpy(padded, ctx, (size_t)(n * C) * sizeof *padded);
    for (int64_t i = 0; i < n * C; i++)
        if (!isfinite(padded[i])) {
            free(padded);
            return vd_error(VD_ERR_INVALID_ARGUMENT, "text context holds a non-finite value (row %lld)", (long long)(i / C));
        }
    vd_tensor in = {0}, hidden = {0};
    int64_t s_in[2] = {L, C}, s_h[2] = {L, D};
    vd_status st = vd_upload_f32(m->be, padded, 2, s_in, &in);
    free(padded);
    if (st == VD_OK)
        st = vd_tensor_alloc(m->be, VD_F32, 2, s_h, &hidden);
    if (st == VD_OK)
        st = vd_tensor_alloc(m->be, VD_F32, 2, s_h, out);
    if (st == VD_OK)
        st = vd_op_matmul(m->be, &in, &m->text0.w, &m->text0.b, &hidden);
    if (st == VD_OK)
        st = vd_op_gelu_tanh(m->be, &hidden, &hidden);
    if (st == VD_OK)
        st = vd_op_matmul(m->be, &hidden, &m->text2.w, &m->text2.b, out);
    vd_tensor_release(&in);
    vd_tensor_release(&hidden);
    if (st != VD_OK)
        vd_tensor_release(out);
    return st;
}

/* ---- forward ---------------------------------------------------------------- */

/* Activations of one forward pass. */
typedef struct workspace {
    vd_tensor x, a, q, k, v, o, y, h;   /* [B·L, D] except h [B·L, F] */
    vd_tensor ctx, ck, cv;              /* [B·512, D] */
    vd_tensor latent, tokens, out;      /* input, patch tokens, head output */
    vd_tensor t_freq, e1, e, e_silu, e0, mod, head_mod;
} workspace;

static void release_workspace(workspace *ws)
{
    vd_tensor *all[] = {&ws->x, &ws->a, &ws->q, &ws->k, &ws->v, &ws->o, &ws->y, &ws->h, &ws->ctx, &ws->ck, &ws->cv,
                        &ws->latent, &ws->tokens, &ws->out, &ws->t_freq, &ws->e1, &ws->e, &ws->e_silu, &ws->e0,
                        &ws->mod, &ws->head_mod};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        vd_tensor_release(all[i]);
}

static vd_status alloc2(vd_backend *be, vd_tensor *t, int64_t r, int64_t c)
{
    int64_t s[2] = {r, c};
    return vd_tensor_alloc(be, VD_F32, 2, s, t);
}

/* Row `i` of a [R, D] tensor as a [1, D] view. */
static vd_tensor row_of(const vd_tensor *t, int64_t i)
{
    vd_tensor r;
    vd_tensor_slice(t, 0, i, i + 1, &r);
    return r;
}

/* View a [B·L, H·d] activation as [B, L, H, d] for attention. */
static vd_tensor heads_view(const vd_tensor *t, int64_t B, int64_t L, int64_t H, int64_t d)
{
    vd_tensor r;
    int64_t s[4] = {B, L, H, d};
    vd_tensor_reshape(t, 4, s, &r);
    return r;
}

/* The sinusoidal time embedding of the reference: [cos(t·ω), sin(t·ω)],
 * ω_j = 10000^(−j/half), in float64, then f32. */
static void sinusoid(double t, int64_t dim, float *out)
{
    int64_t half = dim / 2;
    for (int64_t j = 0; j < half; j++) {
        double w = pow(10000.0, -(double)j / (double)half);
        out[j] = (float)cos(t * w);
        out[half + j] = (float)sin(t * w);
    }
}

static vd_status run_block(vd_dit *m, const dit_block *b, workspace *ws, int64_t B, int64_t F, int64_t Hp, int64_t Wp)
{
    vd_backend *be = m->be;
    const int64_t H = m->cfg.heads, d = m->cfg.head_dim, L = F * Hp * Wp;
    const float eps = m->cfg.eps, scale = 1.0f / sqrtf((float)d);
    /* m0..m5 = modulation + e0 (shared by the batch: same timestep) */
    VD_TRY(vd_op_add(be, &b->modulation, &ws->e0, &ws->mod));
    vd_tensor m0 = row_of(&ws->mod, 0), m1 = row_of(&ws->mod, 1), m2 = row_of(&ws->mod, 2);
    vd_tensor m3 = row_of(&ws->mod, 3), m4 = row_of(&ws->mod, 4), m5 = row_of(&ws->mod, 5);

    /* self-attention */
    VD_TRY(vd_op_layernorm_modulate(be, &ws->x, eps, NULL, NULL, &m0, &m1, &ws->a));
    VD_TRY(vd_op_matmul(be, &ws->a, &b->sa_q.w, &b->sa_q.b, &ws->q));
    VD_TRY(vd_op_matmul(be, &ws->a, &b->sa_k.w, &b->sa_k.b, &ws->k));
    VD_TRY(vd_op_matmul(be, &ws->a, &b->sa_v.w, &b->sa_v.b, &ws->v));
    VD_TRY(vd_op_rmsnorm(be, &ws->q, &b->sa_norm_q, eps, &ws->q));
    VD_TRY(vd_op_rmsnorm(be, &ws->k, &b->sa_norm_k, eps, &ws->k));
    {
        int64_t s3[3] = {B * L, H, d};
        vd_tensor q3, k3;
        VD_TRY(vd_tensor_reshape(&ws->q, 3, s3, &q3));
        VD_TRY(vd_tensor_reshape(&ws->k, 3, s3, &k3));
        VD_TRY(vd_op_rope3d(be, &q3, F, Hp, Wp, 10000.0, &q3));
        VD_TRY(vd_op_rope3d(be, &k3, F, Hp, Wp, 10000.0, &k3));
    }
    {
        vd_tensor q4 = heads_view(&ws->q, B, L, H, d), k4 = heads_view(&ws->k, B, L, H, d);
        vd_tensor v4 = heads_view(&ws->v, B, L, H, d), o4 = heads_view(&ws->o, B, L, H, d);
        VD_TRY(vd_op_attention(be, &q4, &k4, &v4, scale, NULL, NULL, &o4));
    }
    VD_TRY(vd_op_matmul(be, &ws->o, &b->sa_o.w, &b->sa_o.b, &ws->y));
    VD_TRY(vd_op_add_gated(be, &ws->x, &ws->y, &m2, &ws->x));

    /* cross-attention over the 512 text rows (no RoPE, no mask, no gate) */
    const int64_t Lc = VD_DIT_TEXT_LEN;
    VD_TRY(vd_op_layernorm_modulate(be, &ws->x, eps, &b->norm3_w, &b->norm3_b, NULL, NULL, &ws->a));
    VD_TRY(vd_op_matmul(be, &ws->a, &b->ca_q.w, &b->ca_q.b, &ws->q));
    VD_TRY(vd_op_rmsnorm(be, &ws->q, &b->ca_norm_q, eps, &ws->q));
    VD_TRY(vd_op_matmul(be, &ws->ctx, &b->ca_k.w, &b->ca_k.b, &ws->ck));
    VD_TRY(vd_op_rmsnorm(be, &ws->ck, &b->ca_norm_k, eps, &ws->ck));
    VD_TRY(vd_op_matmul(be, &ws->ctx, &b->ca_v.w, &b->ca_v.b, &ws->cv));
    {
        vd_tensor q4 = heads_view(&ws->q, B, L, H, d), o4 = heads_view(&ws->o, B, L, H, d);
        vd_tensor k4 = heads_view(&ws->ck, B, Lc, H, d), v4 = heads_view(&ws->cv, B, Lc, H, d);
        VD_TRY(vd_op_attention(be, &q4, &k4, &v4, scale, NULL, NULL, &o4));
    }
    VD_TRY(vd_op_matmul(be, &ws->o, &b->ca_o.w, &b->ca_o.b, &ws->y));
    VD_TRY(vd_op_add(be, &ws->x, &ws->y, &ws->x));

    /* feed-forward */
    VD_TRY(vd_op_layernorm_modulate(be, &ws->x, eps, NULL, NULL, &m3, &m4, &ws->a));
    VD_TRY(vd_op_matmul(be, &ws->a, &b->ffn0.w, &b->ffn0.b, &ws->h));
    VD_TRY(vd_op_gelu_tanh(be, &ws->h, &ws->h));
    VD_TRY(vd_op_matmul(be, &ws->h, &b->ffn2.w, &b->ffn2.b, &ws->y));
    return vd_op_add_gated(be, &ws->x, &ws->y, &m5, &ws->x);
}

/* latent [B, C, T, H, W] → tokens [B·T·Hp·Wp, C·ph·pw] (index c·ph·pw + i·pw + j) */
static vd_status patchify(vd_dit *m, workspace *ws, int64_t B, int64_t C, int64_t T, int64_t Hp, int64_t Wp)
{
    const int64_t ph = m->cfg.patch[1], pw = m->cfg.patch[2];
    for (int64_t b = 0; b < B; b++)
        for (int64_t f = 0; f < T; f++) {
            vd_tensor src, dst;
            /* one frame of one sample: [C, Hp, ph, Wp, pw] (strides of the 5-D latent) */
            src = ws->latent;
            src.ndim = 5;
            src.data = (float *)ws->latent.data + (b * C * T + f) * ws->latent.stride[2];
            int64_t HW = ws->latent.stride[2]; /* H·W */
            int64_t Wfull = Wp * pw;
            src.shape[0] = C, src.stride[0] = T * HW;
            src.shape[1] = Hp, src.stride[1] = ph * Wfull;
            src.shape[2] = ph, src.stride[2] = Wfull;
            src.shape[3] = Wp, src.stride[3] = pw;
            src.shape[4] = pw, src.stride[4] = 1;
            src.owner = NULL;
            /* destination rows of this frame, viewed [Hp, Wp, C, ph, pw] → permuted to [C, Hp, ph, Wp, pw] */
            int64_t row0 = (b * T + f) * Hp * Wp;
            dst = ws->tokens;
            dst.owner = NULL;
            dst.ndim = 5;
            dst.data = (float *)ws->tokens.data + row0 * C * ph * pw;
            dst.shape[0] = C, dst.stride[0] = ph * pw;
            dst.shape[1] = Hp, dst.stride[1] = Wp * C * ph * pw;
            dst.shape[2] = ph, dst.stride[2] = pw;
            dst.shape[3] = Wp, dst.stride[3] = C * ph * pw;
            dst.shape[4] = pw, dst.stride[4] = 1;
            VD_TRY(vd_op_copy(m->be, &src, &dst));
        }
    return VD_OK;
}

/* head output [B·T·Hp·Wp, ph·pw·C_out] (index (i·pw + j)·C_out + c) → [B, C_out, T, H, W] */
static vd_status unpatchify(vd_dit *m, workspace *ws, vd_tensor *vel, int64_t B, int64_t T, int64_t Hp, int64_t Wp)
{
    const int64_t ph = m->cfg.patch[1], pw = m->cfg.patch[2], C = m->cfg.out_dim;
    const int64_t H = Hp * ph, W = Wp * pw;
    for (int64_t b = 0; b < B; b++)
        for (int64_t f = 0; f < T; f++) {
            vd_tensor src = ws->out, dst = *vel;
            src.owner = dst.owner = NULL;
            int64_t row0 = (b * T + f) * Hp * Wp;
            src.ndim = 5;
            src.data = (float *)ws->out.data + row0 * ph * pw * C;
            /* [C, Hp, ph, Wp, pw] read from [Hp, Wp, ph, pw, C] */
            src.shape[0] = C, src.stride[0] = 1;
            src.shape[1] = Hp, src.stride[1] = Wp * ph * pw * C;
            src.shape[2] = ph, src.stride[2] = pw * C;
            src.shape[3] = Wp, src.stride[3] = ph * pw * C;
            src.shape[4] = pw, src.stride[4] = C;
            dst.ndim = 5;
            dst.data = (float *)vel->data + (b * C * T + f) * H * W;
            dst.shape[0] = C, dst.stride[0] = T * H * W;
            dst.shape[1] = Hp, dst.stride[1] = ph * W;
            dst.shape[2] = ph, dst.stride[2] = W;
            dst.shape[3] = Wp, dst.stride[3] = pw;
            dst.shape[4] = pw, dst.stride[4] = 1;
            VD_TRY(vd_op_copy(m->be, &src, &dst));
        }
    return VD_OK;
}

static vd_status check_call(const vd_dit *m, const vd_dit_call *c)
{
    const vd_dit_config *g = &m->cfg;
    if (c->batch < 1 || c->batch > 2)
        return vd_error(VD_ERR_INVALID_ARGUMENT, "DiT batch of %d (1 or 2: cond and uncond)", c->batch);
    if (c->frames < 1 || c->height < 1 || c->width < 1)
        return vd_error(VD_ERR_SHAPE, "latent of %lld×%lld×%lld frames×rows×columns is empty", (long long)c->frames,
                        (long long)c->height, (long long)c->width);
    if (c->height % g->patch[1] || c->width % g->patch[2])
        return vd_error(VD_ERR_SHAPE,
                        "latent height %lld and width %lld must be multiples of the patch size %lld×%lld (images: "
                        "multiples of %lld pixels)",
                        (long long)c->height, (long long)c->width, (long long)g->patch[1], (long long)g->patch[2],
                        (long long)(g->patch[1] * 8));
    if (c->height / g->patch[1] > 4096 || c->width / g->patch[2] > 4096 || c->frames > 4096)
        return vd_error(VD_ERR_SHAPE, "latent of %lld×%lld×%lld is beyond the model's position tables",
                        (long long)c->frames, (long long)c->height, (long long)c->width);
    if (!isfinite(c->timestep))
        return vd_error(VD_ERR_INVALID_ARGUMENT, "timestep is not finite");
    for (int b = 0; b < c->batch; b++) {
        const vd_tensor *t = c->text[b];
        if (!t || t->ndim != 2 || t->shape[0] != VD_DIT_TEXT_LEN || t->shape[1] != g->dim)
            return vd_error(VD_ERR_SHAPE, "text context %d is not an embedded [512, %lld] tensor from vd_dit_embed_text", b,
                            (long long)g->dim);
    }
    int64_t n = (int64_t)c->batch * g->in_dim * c->frames * c->height * c->width;
    for (int64_t i = 0; i < n; i++)
        if (!isfinite(c->latent[i]))
            return vd_error(VD_ERR_INVALID_ARGUMENT, "latent holds a non-finite value (NaN or inf) at element %lld",
                            (long long)i);
    return VD_OK;
}

static vd_status forward(vd_dit *m, const vd_dit_call *c, workspace *ws)
{
    vd_backend *be = m->be;
    const vd_dit_config *g = &m->cfg;
    const int64_t B = c->batch, C = g->in_dim, T = c->frames, Hl = c->height, Wl = c->width;
    const int64_t Hp = Hl / g->patch[1], Wp = Wl / g->patch[2], L = T * Hp * Wp, D = g->dim;
    const int64_t pdim = C * g->patch[1] * g->patch[2];

    /* time embedding e [1, D] and its projection e0 [6, D] */
    float *freq = malloc((size_t)g->freq_dim * sizeof *freq);
    if (!freq)
        return vd_error(VD_ERR_OUT_OF_MEMORY, "out of memory");
    sinusoid(c->timestep, g->freq_dim, freq);
    int64_t sf[2] = {1, g->freq_dim};
    vd_status st = vd_upload_f32(be, freq, 2, sf, &ws->t_freq);
    free(freq);
    VD_TRY(st);
    VD_TRY(alloc2(be, &ws->e1, 1, D));
    VD_TRY(alloc2(be, &ws->e, 1, D));
    VD_TRY(alloc2(be, &ws->e_silu, 1, D));
    VD_TRY(alloc2(be, &ws->e0, 1, 6 * D));
    VD_TRY(vd_op_matmul(be, &ws->t_freq, &m->time0.w, &m->time0.b, &ws->e1));
    VD_TRY(vd_op_silu(be, &ws->e1, &ws->e1));
    VD_TRY(vd_op_matmul(be, &ws->e1, &m->time2.w, &m->time2.b, &ws->e));
    VD_TRY(vd_op_silu(be, &ws->e, &ws->e_silu));
    VD_TRY(vd_op_matmul(be, &ws->e_silu, &m->time_proj.w, &m->time_proj.b, &ws->e0));
    {
        int64_t s6[2] = {6, D};
        vd_tensor e06;
        VD_TRY(vd_tensor_reshape(&ws->e0, 2, s6, &e06));
        e06.owner = ws->e0.owner;
        ws->e0 = e06;
    }
    VD_TRY(alloc2(be, &ws->mod, 6, D));

    /* patch embedding */
    int64_t s5[5] = {B, C, T, Hl, Wl};
    VD_TRY(vd_upload_f32(be, c->latent, 5, s5, &ws->latent));
    VD_TRY(alloc2(be, &ws->tokens, B * L, pdim));
    VD_TRY(patchify(m, ws, B, C, T, Hp, Wp));
    VD_TRY(alloc2(be, &ws->x, B * L, D));
    VD_TRY(vd_op_matmul(be, &ws->tokens, &m->patch_w, &m->patch_b, &ws->x));
    vd_tensor_release(&ws->tokens);
    vd_tensor_release(&ws->latent);

    /* text contexts side by side: [B·512, D] */
    VD_TRY(alloc2(be, &ws->ctx, B * VD_DIT_TEXT_LEN, D));
    for (int64_t b = 0; b < B; b++) {
        vd_tensor dst;
        VD_TRY(vd_tensor_slice(&ws->ctx, 0, b * VD_DIT_TEXT_LEN, (b + 1) * VD_DIT_TEXT_LEN, &dst));
        VD_TRY(vd_op_copy(be, c->text[b], &dst));
    }
    vd_tensor *acts[] = {&ws->a, &ws->q, &ws->k, &ws->v, &ws->o, &ws->y};
    for (size_t i = 0; i < sizeof acts / sizeof acts[0]; i++)
        VD_TRY(alloc2(be, acts[i], B * L, D));
    VD_TRY(alloc2(be, &ws->h, B * L, g->ffn_dim));
    VD_TRY(alloc2(be, &ws->ck, B * VD_DIT_TEXT_LEN, D));
    VD_TRY(alloc2(be, &ws->cv, B * VD_DIT_TEXT_LEN, D));

    for (int64_t i = 0; i < g->layers; i++) {
        if (c->cancel && atomic_load(c->cancel))
            return vd_error(VD_ERR_CANCELLED, "cancelled before block %lld of %lld", (long long)i, (long long)g->layers);
        st = run_block(m, &m->blocks[i], ws, B, T, Hp, Wp);
        if (st != VD_OK)
            return vd_error_context(st, "DiT block %lld: ", (long long)i);
    }

    /* head: (h0, h1) = head.modulation + e; out = head(LN(x)·(1 + h1) + h0) */
    VD_TRY(alloc2(be, &ws->head_mod, 2, D));
    VD_TRY(vd_op_add(be, &m->head_modulation, &ws->e, &ws->head_mod));
    vd_tensor h0 = row_of(&ws->head_mod, 0), h1 = row_of(&ws->head_mod, 1);
    VD_TRY(vd_op_layernorm_modulate(be, &ws->x, g->eps, NULL, NULL, &h0, &h1, &ws->a));
    const int64_t pout = g->out_dim * g->patch[1] * g->patch[2];
    VD_TRY(alloc2(be, &ws->out, B * L, pout));
    VD_TRY(vd_op_matmul(be, &ws->a, &m->head.w, &m->head.b, &ws->out));

    vd_tensor vel;
    int64_t so[5] = {B, g->out_dim, T, Hl, Wl};
    VD_TRY(vd_tensor_alloc(be, VD_F32, 5, so, &vel));
    st = unpatchify(m, ws, &vel, B, T, Hp, Wp);
    if (st == VD_OK)
        st = vd_tensor_download(be, &vel, c->velocity, vd_tensor_nbytes(&vel));
    vd_tensor_release(&vel);
    return st;
}

vd_status vd_dit_forward(vd_dit *m, const vd_dit_call *c)
{
    VD_TRY(check_call(m, c));
    workspace ws;
    memset(&ws, 0, sizeof ws);
    vd_status st = forward(m, c, &ws);
    release_workspace(&ws);
    return st;
}

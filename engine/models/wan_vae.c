#include "models/wan_vae.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "models/model_weights.h"

static const float wan21_mean[16] = {-0.7571f, -0.7089f, -0.9113f, 0.1075f,  -0.1745f, 0.9653f,  -0.1517f, 1.5508f,
                                     0.4134f,  -0.0715f, 0.5517f,  -0.3632f, -0.1922f, -0.9497f, 0.2503f,  -0.2921f};
static const float wan21_std[16] = {2.8184f, 1.4541f, 2.3275f, 2.6558f, 1.2196f, 1.7708f, 2.6052f, 2.0743f,
                                    3.2687f, 2.1526f, 2.8652f, 1.5579f, 1.6382f, 1.1253f, 2.8251f, 1.9160f};

const float *vd_vae_latent_mean(int version) { return version == 21 ? wan21_mean : NULL; }
const float *vd_vae_latent_std(int version) { return version == 21 ? wan21_std : NULL; }

/* A convolution; causal ones (kt = 3) keep the last two frames of their
 * input between chunks (zeros before the first).  A downsample3d time conv
 * keeps one frame instead (see run_time_downsample). */
typedef struct conv {
    vd_tensor w, b;   /* w viewed 5-D [Cout, Cin, kt, kh, kw] */
    int64_t cin, cout, kt, kh, kw;
    vd_tensor cache;  /* [Cin, 2, H, W] */
} conv;

typedef struct resblock {
    vd_tensor gamma0, gamma1;
    conv c1, c2, shortcut;
    int has_shortcut;
} resblock;

typedef struct attnblock {
    vd_tensor gamma;
    conv qkv, proj;
} attnblock;

typedef enum { RS_NONE = 0, RS_UP2D, RS_UP3D, RS_DOWN2D, RS_DOWN3D } rs_mode;

typedef struct resample {
    rs_mode mode;
    conv spatial;     /* resample.1: 3×3 conv after the 2× nearest upsampling, or with stride 2 */
    conv time;        /* time_conv: upsample3d (3,1,1) doubling the frames, downsample3d (3,1,1) stride 2 */
    int seen_first;   /* the first frame passes the time conv untouched */
} resample;

typedef struct layer {
    int is_resample;
    resblock res;
    resample rs;
} layer;

/* The encoder's or the decoder's 3-D network: conv1, the stages
 * (downsamples / upsamples), the middle (res, attention, res) and the head
 * (RMS_norm, SiLU, causal conv).  The encoder runs the stages before the
 * middle, the decoder after it. */
typedef struct trunk {
    conv conv1;
    resblock mid0, mid2;
    attnblock mid_attn;
    layer *layers;
    int n_layers;
    vd_tensor head_gamma;
    conv head;
} trunk;

struct vd_vae {
    vd_backend *be;
    vd_vae_config cfg;
    char *path;        /* for messages */
    conv conv2;        /* decoder input: 1×1×1 on the de-normalised latent */
    conv conv1;        /* encoder output: 1×1×1 giving μ and log σ² */
    trunk dec, enc;    /* enc is loaded only when cfg.has_encoder */
};

/* ---- loading -------------------------------------------------------------- */

static vd_status load_conv(vd_vae *v, const vd_weights *w, conv *c, const char *base)
{
    char name[192];
    snprintf(name, sizeof name, "%s.weight", base);
    const vd_weight *x = vd_weights_find(w, name);
    if (!x)
        return vd_error(VD_ERR_FORMAT, "tensor '%s' is missing", name);
    const vd_tensor *t = &x->tensor;
    if (t->ndim != 4 && t->ndim != 5)
        return vd_error(VD_ERR_FORMAT, "tensor '%s' is not a 2-D or 3-D convolution weight", name);
    c->cout = t->shape[0];
    c->cin = t->shape[1];
    c->kt = t->ndim == 5 ? t->shape[2] : 1;
    c->kh = t->shape[t->ndim - 2];
    c->kw = t->shape[t->ndim - 1];
    VD_TRY(vd_load_weight(v->be, w, name, &c->w));
    if (t->ndim == 4) {
        int64_t s5[5] = {c->cout, c->cin, 1, c->kh, c->kw};
        vd_tensor r;
        VD_TRY(vd_tensor_reshape(&c->w, 5, s5, &r));
        r.owner = c->w.owner;
        c->w = r;
    }
    return vd_load_vecf(v->be, w, c->cout, &c->b, "%s.bias", base);
}

static void release_conv(conv *c)
{
    vd_tensor_release(&c->w);
    vd_tensor_release(&c->b);
    vd_tensor_release(&c->cache);
}

static vd_status load_res(vd_vae *v, const vd_weights *w, resblock *r, const char *base)
{
    char n[192];
    snprintf(n, sizeof n, "%s.residual.2", base);
    VD_TRY(load_conv(v, w, &r->c1, n));
    snprintf(n, sizeof n, "%s.residual.6", base);
    VD_TRY(load_conv(v, w, &r->c2, n));
    VD_TRY(vd_load_vecf(v->be, w, r->c1.cin, &r->gamma0, "%s.residual.0.gamma", base));
    VD_TRY(vd_load_vecf(v->be, w, r->c1.cout, &r->gamma1, "%s.residual.3.gamma", base));
    snprintf(n, sizeof n, "%s.shortcut.weight", base);
    if (vd_weights_find(w, n)) {
        snprintf(n, sizeof n, "%s.shortcut", base);
        VD_TRY(load_conv(v, w, &r->shortcut, n));
        r->has_shortcut = 1;
    }
    return VD_OK;
}

static void release_res(resblock *r)
{
    vd_tensor_release(&r->gamma0);
    vd_tensor_release(&r->gamma1);
    release_conv(&r->c1);
    release_conv(&r->c2);
    release_conv(&r->shortcut);
}

static void release_trunk(trunk *k)
{
    release_conv(&k->conv1);
    release_res(&k->mid0);
    release_res(&k->mid2);
    vd_tensor_release(&k->mid_attn.gamma);
    release_conv(&k->mid_attn.qkv);
    release_conv(&k->mid_attn.proj);
    for (int i = 0; k->layers && i < k->n_layers; i++) {
        release_res(&k->layers[i].res);
        release_conv(&k->layers[i].rs.spatial);
        release_conv(&k->layers[i].rs.time);
    }
    free(k->layers);
    k->layers = NULL;
    vd_tensor_release(&k->head_gamma);
    release_conv(&k->head);
}

void vd_vae_free(vd_vae *v)
{
    if (!v)
        return;
    release_conv(&v->conv2);
    release_conv(&v->conv1);
    release_trunk(&v->dec);
    release_trunk(&v->enc);
    free(v->path);
    free(v);
}

const vd_vae_config *vd_vae_get_config(const vd_vae *v) { return &v->cfg; }

/* The parts of `part` ("encoder" / "decoder") that both have: conv1, the
 * middle and the head; then 4 stages of `per_stage` res blocks
 * (`part`.{down,up}samples.N, numbered flatly) with a resample of the given
 * mode after each of the first 3. */
static vd_status load_trunk(vd_vae *v, const vd_weights *w, trunk *k, const char *part, const char *stages,
                            int per_stage, const rs_mode modes[3])
{
    char n[192];
    snprintf(n, sizeof n, "%s.conv1", part);
    VD_TRY(load_conv(v, w, &k->conv1, n));
    snprintf(n, sizeof n, "%s.middle.0", part);
    VD_TRY(load_res(v, w, &k->mid0, n));
    snprintf(n, sizeof n, "%s.middle.2", part);
    VD_TRY(load_res(v, w, &k->mid2, n));
    VD_TRY(vd_load_vecf(v->be, w, k->mid0.c1.cin, &k->mid_attn.gamma, "%s.middle.1.norm.gamma", part));
    snprintf(n, sizeof n, "%s.middle.1.to_qkv", part);
    VD_TRY(load_conv(v, w, &k->mid_attn.qkv, n));
    snprintf(n, sizeof n, "%s.middle.1.proj", part);
    VD_TRY(load_conv(v, w, &k->mid_attn.proj, n));
    snprintf(n, sizeof n, "%s.head.2", part);
    VD_TRY(load_conv(v, w, &k->head, n));
    VD_TRY(vd_load_vecf(v->be, w, k->head.cin, &k->head_gamma, "%s.head.0.gamma", part));
    k->n_layers = 4 * per_stage + 3;
    k->layers = calloc((size_t)k->n_layers, sizeof *k->layers);
    if (!k->layers)
        return vd_error(VD_ERR_OUT_OF_MEMORY, "out of memory");
    int idx = 0;
    for (int stage = 0; stage < 4; stage++) {
        for (int r = 0; r < per_stage; r++, idx++) {
            snprintf(n, sizeof n, "%s.%s.%d", part, stages, idx);
            VD_TRY(load_res(v, w, &k->layers[idx].res, n));
        }
        if (stage < 3) {
            layer *u = &k->layers[idx];
            u->is_resample = 1;
            u->rs.mode = modes[stage];
            snprintf(n, sizeof n, "%s.%s.%d.resample.1", part, stages, idx);
            VD_TRY(load_conv(v, w, &u->rs.spatial, n));
            if (u->rs.mode == RS_UP3D || u->rs.mode == RS_DOWN3D) {
                snprintf(n, sizeof n, "%s.%s.%d.time_conv", part, stages, idx);
                VD_TRY(load_conv(v, w, &u->rs.time, n));
            }
            idx++;
        }
    }
    return VD_OK;
}

static vd_status load_decoder(vd_vae *v, const vd_weights *w)
{
    const rs_mode modes[3] = {RS_UP3D, RS_UP3D, RS_UP2D}; /* encoder temporal flags reversed */
    VD_TRY(load_conv(v, w, &v->conv2, "conv2"));
    /* stages of (res blocks + 1) and a resample after the first 3 */
    return load_trunk(v, w, &v->dec, "decoder", "upsamples", v->cfg.num_res_blocks + 1, modes);
}

static vd_status load_encoder(vd_vae *v, const vd_weights *w)
{
    const rs_mode modes[3] = {RS_DOWN2D, RS_DOWN3D, RS_DOWN3D}; /* temporal flags [False, True, True] */
    VD_TRY(load_conv(v, w, &v->conv1, "conv1"));
    return load_trunk(v, w, &v->enc, "encoder", "downsamples", v->cfg.num_res_blocks, modes);
}

vd_status vd_vae_load(vd_backend *be, const vd_weights *w, vd_vae **out)
{
    *out = NULL;
    vd_arch_info info;
    vd_status st = vd_arch_detect(w, &info);
    if (st != VD_OK)
        return vd_error_context(st, "'%s': ", vd_weights_path(w));
    if (info.arch != VD_ARCH_WAN_VAE)
        return vd_error(VD_ERR_UNSUPPORTED, "'%s' is a %s, not a Wan VAE", vd_weights_path(w), info.name);
    if (info.vae.version != 21)
        return vd_error(VD_ERR_UNSUPPORTED,
                        "'%s' is a Wan2.2 VAE (48 latent channels, for TI2V-5B); its decoder is not implemented yet — "
                        "use the Wan2.1 VAE (wan_2.1_vae.safetensors) with Wan2.1 and Wan2.2 A14B models",
                        vd_weights_path(w));
    if (!info.vae.has_decoder)
        return vd_error(VD_ERR_UNSUPPORTED, "'%s' holds only a VAE encoder; decoding needs the decoder tensors",
                        vd_weights_path(w));
    vd_vae *v = calloc(1, sizeof *v);
    if (!v || !(v->path = strdup(vd_weights_path(w)))) {
        free(v);
        return vd_error(VD_ERR_OUT_OF_MEMORY, "out of memory");
    }
    v->be = be;
    v->cfg = info.vae;
    st = load_decoder(v, w);
    if (st != VD_OK) {
        vd_vae_free(v);
        return vd_error_context(st, "loading the VAE decoder from '%s': ", vd_weights_path(w));
    }
    if (v->cfg.has_encoder) {
        st = load_encoder(v, w);
        if (st != VD_OK) {
            vd_vae_free(v);
            return vd_error_context(st, "loading the VAE encoder from '%s': ", vd_weights_path(w));
        }
    }
    *out = v;
    return VD_OK;
}

/* ---- building blocks (shared by the encoder and the decoder) -------------- */

static vd_status alloc4(vd_backend *be, int64_t c, int64_t t, int64_t h, int64_t w, vd_tensor *out)
{
    int64_t s[4] = {c, t, h, w};
    return vd_tensor_alloc(be, VD_F32, 4, s, out);
}

/* Frames [begin, end) of a [C, T, H, W] tensor. */
static vd_tensor frames_of(const vd_tensor *t, int64_t begin, int64_t end)
{
    vd_tensor r;
    vd_tensor_slice(t, 1, begin, end, &r);
    return r;
}

/* out = c(x) with stride {st, sh, sw} and zero padding {t_front, t_back,
 * top, bottom, left, right}; out is allocated here. */
static vd_status conv_apply(vd_vae *v, const conv *c, const vd_tensor *x, const int stride[3], const int pad[6],
                            vd_tensor *out)
{
    const int64_t k[3] = {c->kt, c->kh, c->kw};
    int64_t s[4] = {c->cout, 0, 0, 0};
    for (int i = 0; i < 3; i++) {
        int64_t span = x->shape[1 + i] + pad[2 * i] + pad[2 * i + 1];
        if (span < k[i])
            return vd_error(VD_ERR_SHAPE, "VAE: a %lld×%lld×%lld convolution does not fit a %lld×%lld×%lld input",
                            (long long)k[0], (long long)k[1], (long long)k[2], (long long)x->shape[1],
                            (long long)x->shape[2], (long long)x->shape[3]);
        s[1 + i] = (span - k[i]) / stride[i] + 1;
    }
    VD_TRY(vd_tensor_alloc(v->be, VD_F32, 4, s, out));
    vd_status st = vd_op_conv3d(v->be, x, &c->w, &c->b, stride, pad, out);
    if (st != VD_OK)
        vd_tensor_release(out);
    return st;
}

/* Convolution of one chunk x [Cin, t, H, W] → out [Cout, t, H, W]
 * (allocated here), spatially "same" padded.  Causal convs see their cached
 * two frames in front of the chunk. */
static vd_status run_conv(vd_vae *v, conv *c, const vd_tensor *x, vd_tensor *out)
{
    vd_backend *be = v->be;
    const int64_t t = x->shape[1], H = x->shape[2], W = x->shape[3];
    const int ph = (int)(c->kh / 2), pw = (int)(c->kw / 2);
    const int stride[3] = {1, 1, 1};
    const int pad[6] = {0, 0, ph, ph, pw, pw};
    if (c->kt == 1)
        return conv_apply(v, c, x, stride, pad, out);
    if (!c->cache.data) {
        VD_TRY(alloc4(be, c->cin, c->kt - 1, H, W, &c->cache));
        VD_TRY(vd_op_fill(be, &c->cache, 0.0f));
    }
    const int64_t keep = c->kt - 1;
    vd_tensor tmp;
    VD_TRY(alloc4(be, c->cin, keep + t, H, W, &tmp));
    vd_tensor head = frames_of(&tmp, 0, keep), body = frames_of(&tmp, keep, keep + t);
    vd_status st = vd_op_copy(be, &c->cache, &head);
    if (st == VD_OK)
        st = vd_op_copy(be, x, &body);
    if (st == VD_OK)
        st = conv_apply(v, c, &tmp, stride, pad, out);
    if (st == VD_OK) {
        vd_tensor last = frames_of(&tmp, t, t + keep);
        st = vd_op_copy(be, &last, &c->cache);
        if (st != VD_OK)
            vd_tensor_release(out);
    }
    vd_tensor_release(&tmp);
    return st;
}

/* x ← c(x) (run_conv), replacing x. */
static vd_status conv_replace(vd_vae *v, conv *c, vd_tensor *x)
{
    vd_tensor y;
    VD_TRY(run_conv(v, c, x, &y));
    vd_tensor_release(x);
    *x = y;
    return VD_OK;
}

static vd_status norm_silu(vd_vae *v, const vd_tensor *x, const vd_tensor *gamma, vd_tensor *out)
{
    VD_TRY(vd_tensor_alloc(v->be, VD_F32, x->ndim, x->shape, out));
    vd_status st = vd_op_channel_rmsnorm(v->be, x, gamma, out);
    if (st == VD_OK)
        st = vd_op_silu(v->be, out, out);
    if (st != VD_OK)
        vd_tensor_release(out);
    return st;
}

/* x ← res(x) + shortcut(x); x is replaced by a new tensor. */
static vd_status run_res(vd_vae *v, resblock *r, vd_tensor *x)
{
    vd_tensor a = {0}, b = {0}, c = {0}, sc = {0};
    vd_status st = norm_silu(v, x, &r->gamma0, &a);
    if (st == VD_OK)
        st = run_conv(v, &r->c1, &a, &b);
    vd_tensor_release(&a);
    if (st == VD_OK)
        st = norm_silu(v, &b, &r->gamma1, &a);
    vd_tensor_release(&b);
    if (st == VD_OK)
        st = run_conv(v, &r->c2, &a, &c);
    vd_tensor_release(&a);
    if (st == VD_OK && r->has_shortcut) {
        st = run_conv(v, &r->shortcut, x, &sc);
        if (st == VD_OK)
            st = vd_op_add(v->be, &c, &sc, &c);
        vd_tensor_release(&sc);
    } else if (st == VD_OK) {
        st = vd_op_add(v->be, &c, x, &c);
    }
    if (st != VD_OK) {
        vd_tensor_release(&c);
        return st;
    }
    vd_tensor_release(x);
    *x = c;
    return VD_OK;
}

/* Per-frame single-head attention over h·w tokens, plus the identity. */
static vd_status run_attn(vd_vae *v, attnblock *ab, vd_tensor *x)
{
    vd_backend *be = v->be;
    const int64_t C = x->shape[0], t = x->shape[1], H = x->shape[2], W = x->shape[3], P = H * W;
    vd_tensor a = {0}, qkv = {0}, q = {0}, k = {0}, vv = {0}, o = {0}, back = {0}, y = {0};
    vd_status st = vd_tensor_alloc(be, VD_F32, 4, x->shape, &a);
    if (st == VD_OK)
        st = vd_op_channel_rmsnorm(be, x, &ab->gamma, &a);
    if (st == VD_OK)
        st = run_conv(v, &ab->qkv, &a, &qkv);
    /* q, k, v as [t, P, 1, C] from the channel thirds of qkv [3C, t, H, W] */
    vd_tensor *parts[3] = {&q, &k, &vv};
    for (int i = 0; i < 3 && st == VD_OK; i++) {
        int64_t s4[4] = {t, P, 1, C};
        st = vd_tensor_alloc(be, VD_F32, 4, s4, parts[i]);
        if (st != VD_OK)
            break;
        vd_tensor src, src3, perm;
        int64_t s3[3] = {C, t, P};
        int axes[3] = {1, 2, 0};
        vd_tensor_slice(&qkv, 0, i * C, (i + 1) * C, &src);
        st = vd_tensor_reshape(&src, 3, s3, &src3);
        if (st == VD_OK)
            st = vd_tensor_permute(&src3, axes, &perm); /* [t, P, C] */
        vd_tensor dst3;
        int64_t d3[3] = {t, P, C};
        if (st == VD_OK)
            st = vd_tensor_reshape(parts[i], 3, d3, &dst3);
        if (st == VD_OK)
            st = vd_op_copy(be, &perm, &dst3);
    }
    if (st == VD_OK)
        st = vd_tensor_alloc(be, VD_F32, 4, q.shape, &o);
    if (st == VD_OK)
        st = vd_op_attention(be, &q, &k, &vv, 1.0f / sqrtf((float)C), NULL, NULL, &o);
    if (st == VD_OK)
        st = vd_tensor_alloc(be, VD_F32, 4, x->shape, &back);
    if (st == VD_OK) {
        /* [t, P, C] → [C, t, P] */
        vd_tensor o3, perm, dst3;
        int64_t s3[3] = {t, P, C}, d3[3] = {C, t, P};
        int axes[3] = {2, 0, 1};
        st = vd_tensor_reshape(&o, 3, s3, &o3);
        if (st == VD_OK)
            st = vd_tensor_permute(&o3, axes, &perm);
        if (st == VD_OK)
            st = vd_tensor_reshape(&back, 3, d3, &dst3);
        if (st == VD_OK)
            st = vd_op_copy(be, &perm, &dst3);
    }
    if (st == VD_OK)
        st = run_conv(v, &ab->proj, &back, &y);
    if (st == VD_OK)
        st = vd_op_add(be, &y, x, &y);
    vd_tensor *tmp[] = {&a, &qkv, &q, &k, &vv, &o, &back};
    for (size_t i = 0; i < sizeof tmp / sizeof tmp[0]; i++)
        vd_tensor_release(tmp[i]);
    if (st != VD_OK) {
        vd_tensor_release(&y);
        return st;
    }
    vd_tensor_release(x);
    *x = y;
    return VD_OK;
}

/* upsample3d's time conv: the very first frame passes; the others become
 * two frames each (output channels [0:C] first, [C:2C] second). */
static vd_status run_time_upsample(vd_vae *v, resample *rs, vd_tensor *x)
{
    vd_backend *be = v->be;
    const int64_t C = x->shape[0], t = x->shape[1], H = x->shape[2], W = x->shape[3];
    int64_t pass = rs->seen_first ? 0 : 1;
    rs->seen_first = 1;
    int64_t n = t - pass;
    if (n == 0)
        return VD_OK;
    vd_tensor sub = frames_of(x, pass, t), y = {0}, out = {0};
    vd_status st = run_conv(v, &rs->time, &sub, &y); /* [2C, n, H, W] */
    if (st == VD_OK)
        st = alloc4(be, C, pass + 2 * n, H, W, &out);
    if (st == VD_OK && pass) {
        vd_tensor f0 = frames_of(x, 0, 1), d0 = frames_of(&out, 0, 1);
        st = vd_op_copy(be, &f0, &d0);
    }
    if (st == VD_OK) {
        /* y viewed [2, C, n, HW] and permuted to [C, n, 2, HW] = out[:, pass:] */
        vd_tensor y4, perm, dst, dst4;
        int64_t s4[4] = {2, C, n, H * W};
        int axes[4] = {1, 2, 0, 3};
        st = vd_tensor_reshape(&y, 4, s4, &y4);
        if (st == VD_OK)
            st = vd_tensor_permute(&y4, axes, &perm);
        if (st == VD_OK) {
            dst = frames_of(&out, pass, pass + 2 * n);
            /* the slice is contiguous per channel only; view it through strides */
            dst4 = dst;
            dst4.ndim = 4;
            dst4.shape[0] = C, dst4.stride[0] = out.stride[0];
            dst4.shape[1] = n, dst4.stride[1] = 2 * H * W;
            dst4.shape[2] = 2, dst4.stride[2] = H * W;
            dst4.shape[3] = H * W, dst4.stride[3] = 1;
            st = vd_op_copy(be, &perm, &dst4);
        }
    }
    vd_tensor_release(&y);
    if (st != VD_OK) {
        vd_tensor_release(&out);
        return st;
    }
    vd_tensor_release(x);
    *x = out;
    return VD_OK;
}

/* downsample3d's time conv (kernel 3, stride 2, no padding): output frame 0
 * is input frame 0; output j ≥ 1 is the conv over input frames 2j−2, 2j−1,
 * 2j.  Chunked like the reference: the first chunk's frame 0 passes, and
 * every chunk after it (an even number of frames) is convolved with the
 * previous chunk's last frame (the one-frame cache) in front. */
static vd_status run_time_downsample(vd_vae *v, resample *rs, vd_tensor *x)
{
    vd_backend *be = v->be;
    const int64_t C = x->shape[0], t = x->shape[1], H = x->shape[2], W = x->shape[3];
    const int64_t pass = rs->seen_first ? 0 : 1, n = t - pass;
    if (n < 0 || n % 2 != 0)
        return vd_error(VD_ERR_INTERNAL,
                        "VAE encoder: %lld frames reached a temporal downsampling (%s); it takes 1 frame first, then "
                        "even counts",
                        (long long)t, rs->seen_first ? "a later chunk" : "the first chunk");
    if (pass) {
        vd_tensor_release(&rs->time.cache);
        VD_TRY(alloc4(be, C, 1, H, W, &rs->time.cache));
        vd_tensor f0 = frames_of(x, 0, 1);
        VD_TRY(vd_op_copy(be, &f0, &rs->time.cache));
        rs->seen_first = 1;
    }
    if (n == 0)
        return VD_OK;
    vd_tensor tmp = {0}, y = {0}, out = {0};
    vd_status st = alloc4(be, C, 1 + n, H, W, &tmp);
    if (st == VD_OK) {
        vd_tensor head = frames_of(&tmp, 0, 1), body = frames_of(&tmp, 1, 1 + n), src = frames_of(x, pass, t);
        st = vd_op_copy(be, &rs->time.cache, &head);
        if (st == VD_OK)
            st = vd_op_copy(be, &src, &body);
    }
    const int stride[3] = {2, 1, 1}, pad[6] = {0, 0, 0, 0, 0, 0};
    if (st == VD_OK)
        st = conv_apply(v, &rs->time, &tmp, stride, pad, &y); /* [C, n/2, H, W] */
    if (st == VD_OK) {
        vd_tensor last = frames_of(&tmp, n, n + 1);
        st = vd_op_copy(be, &last, &rs->time.cache);
    }
    vd_tensor_release(&tmp);
    if (st == VD_OK && pass) {
        /* frame 0 in front of the convolved frames */
        st = alloc4(be, C, 1 + n / 2, H, W, &out);
        if (st == VD_OK) {
            vd_tensor f0 = frames_of(x, 0, 1), d0 = frames_of(&out, 0, 1), rest = frames_of(&out, 1, 1 + n / 2);
            st = vd_op_copy(be, &f0, &d0);
            if (st == VD_OK)
                st = vd_op_copy(be, &y, &rest);
        }
        vd_tensor_release(&y);
    } else {
        out = y;
    }
    if (st != VD_OK) {
        vd_tensor_release(&out);
        return st;
    }
    vd_tensor_release(x);
    *x = out;
    return VD_OK;
}

/* Per frame: zero padding right 1 and bottom 1, then the 3×3 conv with
 * stride 2 (H × W → H/2 × W/2 for even sizes). */
static vd_status run_spatial_downsample(vd_vae *v, resample *rs, vd_tensor *x)
{
    const int stride[3] = {1, 2, 2}, pad[6] = {0, 0, 0, 1, 0, 1};
    vd_tensor y;
    VD_TRY(conv_apply(v, &rs->spatial, x, stride, pad, &y));
    vd_tensor_release(x);
    *x = y;
    return VD_OK;
}

static vd_status run_resample(vd_vae *v, resample *rs, vd_tensor *x)
{
    if (rs->mode == RS_DOWN2D || rs->mode == RS_DOWN3D) {
        VD_TRY(run_spatial_downsample(v, rs, x));
        return rs->mode == RS_DOWN3D ? run_time_downsample(v, rs, x) : VD_OK;
    }
    if (rs->mode == RS_UP3D)
        VD_TRY(run_time_upsample(v, rs, x));
    const int64_t C = x->shape[0], t = x->shape[1], H = x->shape[2], W = x->shape[3];
    vd_tensor up = {0}, y = {0};
    vd_status st = alloc4(v->be, C, t, 2 * H, 2 * W, &up);
    if (st == VD_OK)
        st = vd_op_upsample2x(v->be, x, &up);
    if (st == VD_OK)
        st = run_conv(v, &rs->spatial, &up, &y);
    vd_tensor_release(&up);
    if (st != VD_OK)
        return st;
    vd_tensor_release(x);
    *x = y;
    return VD_OK;
}

/* ---- the 3-D networks --------------------------------------------------------- */

static void reset_trunk(trunk *k)
{
    conv *all[] = {&k->conv1, &k->mid0.c1, &k->mid0.c2, &k->mid2.c1, &k->mid2.c2, &k->head};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        vd_tensor_release(&all[i]->cache);
    for (int i = 0; k->layers && i < k->n_layers; i++) {
        vd_tensor_release(&k->layers[i].res.c1.cache);
        vd_tensor_release(&k->layers[i].res.c2.cache);
        vd_tensor_release(&k->layers[i].rs.time.cache);
        k->layers[i].rs.seen_first = 0;
    }
}

static vd_status run_layers(vd_vae *v, trunk *k, vd_tensor *x)
{
    for (int i = 0; i < k->n_layers; i++) {
        if (k->layers[i].is_resample)
            VD_TRY(run_resample(v, &k->layers[i].rs, x));
        else
            VD_TRY(run_res(v, &k->layers[i].res, x));
    }
    return VD_OK;
}

static vd_status run_middle(vd_vae *v, trunk *k, vd_tensor *x)
{
    VD_TRY(run_res(v, &k->mid0, x));
    VD_TRY(run_attn(v, &k->mid_attn, x));
    return run_res(v, &k->mid2, x);
}

static vd_status run_head(vd_vae *v, trunk *k, vd_tensor *x)
{
    vd_tensor a, y;
    VD_TRY(norm_silu(v, x, &k->head_gamma, &a));
    vd_status st = run_conv(v, &k->head, &a, &y);
    vd_tensor_release(&a);
    VD_TRY(st);
    vd_tensor_release(x);
    *x = y;
    return VD_OK;
}

/* ---- decoding ----------------------------------------------------------------- */

/* Decode one latent frame (already de-normalised, through conv2). */
static vd_status decode_chunk(vd_vae *v, vd_tensor *x)
{
    trunk *k = &v->dec;
    VD_TRY(conv_replace(v, &k->conv1, x));
    VD_TRY(run_middle(v, k, x));
    VD_TRY(run_layers(v, k, x));
    return run_head(v, k, x);
}

vd_status vd_vae_decode(vd_vae *v, const float *latent, int64_t T, int64_t h, int64_t w, vd_vae_frames_fn on_frames,
                        void *user, atomic_int *cancel)
{
    const int64_t Z = v->cfg.z_dim;
    if (T < 1 || h < 1 || w < 1 || T > 4096 || h > 4096 || w > 4096)
        return vd_error(VD_ERR_SHAPE, "VAE latent of %lld×%lld×%lld frames×rows×columns is empty or too large",
                        (long long)T, (long long)h, (long long)w);
    const int64_t hw = h * w, n = Z * T * hw;
    for (int64_t i = 0; i < n; i++)
        if (!isfinite(latent[i]))
            return vd_error(VD_ERR_INVALID_ARGUMENT, "VAE latent holds a non-finite value (NaN or inf) at element %lld",
                            (long long)i);
    const float *mean = vd_vae_latent_mean(v->cfg.version), *stdv = vd_vae_latent_std(v->cfg.version);
    float *frame = malloc((size_t)(Z * hw) * sizeof *frame);
    float *rgb = NULL;
    if (!frame)
        return vd_error(VD_ERR_OUT_OF_MEMORY, "out of memory");
    reset_trunk(&v->dec);
    vd_status st = VD_OK;
    int64_t first = 0;
    for (int64_t i = 0; i < T && st == VD_OK; i++) {
        if (cancel && atomic_load(cancel)) {
            st = vd_error(VD_ERR_CANCELLED, "VAE decode cancelled at latent frame %lld of %lld", (long long)i, (long long)T);
            break;
        }
        /* de-normalise: z·std + mean, one latent frame */
        for (int64_t c = 0; c < Z; c++)
            for (int64_t p = 0; p < hw; p++)
                frame[c * hw + p] = latent[(c * T + i) * hw + p] * stdv[c] + mean[c];
        vd_tensor x = {0}, x2 = {0};
        int64_t s[4] = {Z, 1, h, w};
        st = vd_upload_f32(v->be, frame, 4, s, &x);
        if (st == VD_OK)
            st = run_conv(v, &v->conv2, &x, &x2);
        vd_tensor_release(&x);
        if (st == VD_OK)
            st = decode_chunk(v, &x2);
        if (st == VD_OK) {
            int64_t nf = x2.shape[1], H = x2.shape[2], W = x2.shape[3];
            size_t bytes = vd_tensor_nbytes(&x2);
            float *p = realloc(rgb, bytes);
            if (!p)
                st = vd_error(VD_ERR_OUT_OF_MEMORY, "out of memory for decoded frames");
            else
                rgb = p;
            if (st == VD_OK)
                st = vd_tensor_download(v->be, &x2, rgb, bytes);
            if (st == VD_OK) {
                for (int64_t k = 0; k < (int64_t)(bytes / sizeof(float)); k++)
                    rgb[k] = rgb[k] < -1.0f ? -1.0f : (rgb[k] > 1.0f ? 1.0f : rgb[k]);
                if (on_frames && on_frames(user, rgb, first, nf, H, W) != 0)
                    st = vd_error(VD_ERR_CANCELLED, "VAE decode stopped by the frame consumer");
                first += nf;
            }
        }
        vd_tensor_release(&x2);
    }
    reset_trunk(&v->dec);
    free(frame);
    free(rgb);
    return st;
}

/* ---- encoding ----------------------------------------------------------------- */

/* Encode one chunk of pixel frames (1 for the first chunk, then 4) into
 * one latent frame: the encoder, then conv1 → [2·z_dim, 1, h, w]. */
static vd_status encode_chunk(vd_vae *v, vd_tensor *x)
{
    trunk *k = &v->enc;
    VD_TRY(conv_replace(v, &k->conv1, x));
    VD_TRY(run_layers(v, k, x));
    VD_TRY(run_middle(v, k, x));
    VD_TRY(run_head(v, k, x));
    return conv_replace(v, &v->conv1, x);
}

vd_status vd_vae_encode(vd_vae *v, const float *video, int64_t F, int64_t H, int64_t W, float *latent_out,
                        atomic_int *cancel)
{
    if (!v || !video || !latent_out)
        return vd_error(VD_ERR_INVALID_ARGUMENT, "vd_vae_encode: the VAE, the video or the output is NULL");
    if (!v->cfg.has_encoder)
        return vd_error(VD_ERR_UNSUPPORTED,
                        "'%s' holds only the VAE decoder (no encoder.* tensors), so it cannot encode; use the "
                        "complete Wan2.1 VAE (e.g. wan_2.1_vae.safetensors)",
                        v->path);
    if (F < 1 || (F - 1) % 4 != 0 || F > 4 * 4096 + 1)
        return vd_error(VD_ERR_SHAPE,
                        "VAE encode needs 4k+1 frames (1, 5, 9, ..., at most %d); got %lld", 4 * 4096 + 1,
                        (long long)F);
    if (H < 8 || W < 8 || H % 8 != 0 || W % 8 != 0 || H > 8 * 4096 || W > 8 * 4096)
        return vd_error(VD_ERR_SHAPE,
                        "VAE encode needs a height and width that are positive multiples of 8 (at most %d); got "
                        "%lld×%lld pixels (height×width)",
                        8 * 4096, (long long)H, (long long)W);
    const int64_t C = v->enc.conv1.cin, HW = H * W, n = C * F * HW;
    for (int64_t i = 0; i < n; i++)
        if (!isfinite(video[i]))
            return vd_error(VD_ERR_INVALID_ARGUMENT,
                            "VAE encode: the video holds a non-finite value (NaN or inf) at element %lld "
                            "(channel %lld, frame %lld, row %lld, column %lld)",
                            (long long)i, (long long)(i / (F * HW)), (long long)(i / HW % F),
                            (long long)(i % HW / W), (long long)(i % W));
    const int64_t Z = v->cfg.z_dim, T = (F - 1) / 4 + 1, h = H / 8, w = W / 8, hw = h * w;
    const float *mean = vd_vae_latent_mean(v->cfg.version), *stdv = vd_vae_latent_std(v->cfg.version);
    if (!mean || !stdv || Z > 16)
        return vd_error(VD_ERR_UNSUPPORTED, "VAE encode: no latent statistics for this VAE (version %d, z %lld)",
                        v->cfg.version, (long long)Z);
    float *chunk = malloc((size_t)(C * 4 * HW) * sizeof *chunk);
    float *mu = malloc((size_t)(Z * hw) * sizeof *mu);
    if (!chunk || !mu) {
        free(chunk);
        free(mu);
        return vd_error(VD_ERR_OUT_OF_MEMORY, "out of memory");
    }
    reset_trunk(&v->enc);
    vd_status st = VD_OK;
    for (int64_t i = 0; i < T && st == VD_OK; i++) {
        if (cancel && atomic_load(cancel)) {
            st = vd_error(VD_ERR_CANCELLED, "VAE encode cancelled at latent frame %lld of %lld", (long long)i,
                          (long long)T);
            break;
        }
        /* pixel frame 0 alone, then frames 4i−3 .. 4i */
        const int64_t first = i == 0 ? 0 : 4 * i - 3, nf = i == 0 ? 1 : 4;
        for (int64_t c = 0; c < C; c++)
            memcpy(chunk + c * nf * HW, video + (c * F + first) * HW, (size_t)(nf * HW) * sizeof *chunk);
        vd_tensor x = {0};
        int64_t s[4] = {C, nf, H, W};
        st = vd_upload_f32(v->be, chunk, 4, s, &x);
        if (st == VD_OK)
            st = encode_chunk(v, &x);
        if (st == VD_OK && (x.shape[0] != 2 * Z || x.shape[1] != 1 || x.shape[2] != h || x.shape[3] != w))
            st = vd_error(VD_ERR_INTERNAL,
                          "VAE encoder: a chunk gave [%lld, %lld, %lld, %lld], not [%lld, 1, %lld, %lld]",
                          (long long)x.shape[0], (long long)x.shape[1], (long long)x.shape[2], (long long)x.shape[3],
                          (long long)(2 * Z), (long long)h, (long long)w);
        if (st == VD_OK) {
            /* μ = channels [0, z); the rest is log σ² */
            vd_tensor m;
            vd_tensor_slice(&x, 0, 0, Z, &m);
            st = vd_tensor_download(v->be, &m, mu, (size_t)(Z * hw) * sizeof *mu);
        }
        if (st == VD_OK) {
            /* normalise as the reference: (μ − mean)·(1/std) in float32 */
            for (int64_t c = 0; c < Z; c++) {
                const float inv = 1.0f / stdv[c];
                for (int64_t p = 0; p < hw; p++)
                    latent_out[(c * T + i) * hw + p] = (mu[c * hw + p] - mean[c]) * inv;
            }
        }
        vd_tensor_release(&x);
    }
    reset_trunk(&v->enc);
    free(chunk);
    free(mu);
    return st;
}

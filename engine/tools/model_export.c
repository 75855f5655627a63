#include "tools/model_export.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "io/model_writer.h"

/* Where a weight's scale goes in each fp8 layout. */
static void scale_name(const char *weight_name, vd_fp8_layout layout, char *out, size_t size)
{
    size_t n = strlen(weight_name);
    const char *suffix = layout == VD_FP8_LEGACY ? ".scale_weight" : ".weight_scale";
    if (n > 7 && strcmp(weight_name + n - 7, ".weight") == 0)
        n -= 7;
    snprintf(out, size, "%.*s%s", (int)n, weight_name, suffix);
}

static void quant_name(const char *weight_name, char *out, size_t size)
{
    size_t n = strlen(weight_name);
    if (n > 7 && strcmp(weight_name + n - 7, ".weight") == 0)
        n -= 7;
    snprintf(out, size, "%.*s.comfy_quant", (int)n, weight_name);
}

static const char *fp8_format_json(vd_dtype d)
{
    return d == VD_F8_E5M2 ? "{\"format\":\"float8_e5m2\"}" : "{\"format\":\"float8_e4m3fn\"}";
}

typedef struct declare_ctx {
    const vd_export_request *req;
    vd_model_writer *w;
    bool any_fp8_scaled;
} declare_ctx;

static bool is_scaled(const vd_export_request *req, vd_dtype d)
{
    return req->policy->fp8_scaled && (d == VD_F8_E4M3 || d == VD_F8_E5M2);
}

static vd_status declare_param(void *vctx, const vd_param_desc *p)
{
    declare_ctx *c = vctx;
    vd_dtype d;
    VD_TRY(vd_storage_policy_dtype(c->req->policy, c->req->arch, p, &d));
    VD_TRY(vd_model_writer_declare(c->w, p->name, d, p->ndim, p->shape));
    if (is_scaled(c->req, d)) {
        char n[200];
        scale_name(p->name, c->req->policy->fp8_layout, n, sizeof n);
        VD_TRY(vd_model_writer_declare(c->w, n, VD_F32, 0, NULL));
        if (c->req->policy->fp8_layout == VD_FP8_COMFY_QUANT) {
            int64_t len = (int64_t)strlen(fp8_format_json(d));
            quant_name(p->name, n, sizeof n);
            VD_TRY(vd_model_writer_declare(c->w, n, VD_U8, 1, &len));
        }
        c->any_fp8_scaled = true;
    }
    return VD_OK;
}

typedef struct convert_job {
    const float *src;
    uint8_t *dst;
    vd_dtype dtype;
    int64_t block_elems;
    size_t block_bytes;
    vd_status status;
} convert_job;

static void convert_range(void *arg, int64_t b, int64_t e, int worker)
{
    convert_job *j = arg;
    (void)worker;
    vd_status s = vd_dtype_from_f32(j->dtype, j->src + b * j->block_elems, j->dst + (size_t)b * j->block_bytes,
                                    (e - b) * j->block_elems);
    if (s != VD_OK)
        j->status = s;
}

typedef struct write_ctx {
    const vd_export_request *req;
    vd_model_writer *w;
    float *values;
    uint8_t *bytes;
    size_t cap_values, cap_bytes;
    int64_t index;
} write_ctx;

static vd_status grow(void **buf, size_t *cap, size_t need)
{
    if (need <= *cap)
        return VD_OK;
    void *p = realloc(*buf, need);
    if (!p)
        return vd_error(VD_ERR_OUT_OF_MEMORY, "out of memory allocating %zu bytes", need);
    *buf = p;
    *cap = need;
    return VD_OK;
}

static vd_status write_param(void *vctx, const vd_param_desc *p)
{
    write_ctx *c = vctx;
    const vd_export_request *req = c->req;
    vd_dtype d;
    VD_TRY(vd_storage_policy_dtype(req->policy, req->arch, p, &d));
    int64_t nelem = 1;
    for (int i = 0; i < p->ndim; i++)
        nelem *= p->shape[i];
    size_t nbytes;
    VD_TRY(vd_dtype_nbytes(d, nelem, &nbytes));
    VD_TRY(grow((void **)&c->values, &c->cap_values, (size_t)(nelem ? nelem : 1) * sizeof(float)));
    VD_TRY(grow((void **)&c->bytes, &c->cap_bytes, nbytes ? nbytes : 1));
    VD_TRY(req->values(req->ctx, p, c->index++, c->values, req->pool));

    float scale = 1.0f;
    if (is_scaled(req, d)) {
        float amax = 0;
        for (int64_t i = 0; i < nelem; i++)
            amax = fmaxf(amax, fabsf(c->values[i]));
        float fmax = d == VD_F8_E5M2 ? 57344.0f : 448.0f;
        scale = amax > 0 ? amax / fmax : 1.0f;
        for (int64_t i = 0; i < nelem; i++)
            c->values[i] /= scale;
    }
    const vd_dtype_traits *t = vd_dtype_info(d);
    convert_job job = {c->values, c->bytes, d, t->block_elems, (size_t)t->block_bytes, VD_OK};
    vd_parallel_for(req->pool, nelem / t->block_elems, 4096, convert_range, &job);
    VD_TRY(job.status);
    VD_TRY(vd_model_writer_write(c->w, c->bytes, nbytes));
    if (is_scaled(req, d)) {
        VD_TRY(vd_model_writer_write(c->w, &scale, sizeof scale));
        if (req->policy->fp8_layout == VD_FP8_COMFY_QUANT) {
            const char *json = fp8_format_json(d);
            VD_TRY(vd_model_writer_write(c->w, json, strlen(json)));
        }
    }
    if (req->verbose)
        fprintf(stderr, "  %-60s %-8s %12zu bytes\n", p->name, vd_dtype_name(d), nbytes);
    return VD_OK;
}

vd_status vd_export_model(const vd_export_request *req)
{
    vd_model_writer *w = NULL;
    VD_TRY(vd_model_writer_open(req->path, req->policy->format, &w));
    vd_status s = VD_OK;
    for (size_t i = 0; i < req->n_meta && s == VD_OK; i++)
        s = vd_model_writer_meta_string(w, req->meta[2 * i], req->meta[2 * i + 1]);

    declare_ctx dc = {req, w, false};
    if (s == VD_OK && req->policy->fp8_scaled && req->policy->fp8_layout == VD_FP8_LEGACY) {
        /* The legacy marker comes first, as in ComfyUI's files. */
        int64_t zero = 0;
        s = vd_model_writer_declare(w, "scaled_fp8", req->policy->dtype, 1, &zero);
    }
    if (s == VD_OK)
        s = vd_arch_inventory(req->arch, declare_param, &dc);
    for (size_t i = 0; i < req->n_extras && s == VD_OK; i++)
        s = vd_model_writer_declare(w, req->extras[i].name, req->extras[i].dtype, req->extras[i].ndim,
                                    req->extras[i].shape);
    if (s == VD_OK)
        s = vd_model_writer_begin(w);

    write_ctx wc = {.req = req, .w = w};
    if (s == VD_OK)
        s = vd_arch_inventory(req->arch, write_param, &wc);
    for (size_t i = 0; i < req->n_extras && s == VD_OK; i++) {
        const vd_export_extra *x = &req->extras[i];
        int64_t n = 1;
        for (int k = 0; k < x->ndim; k++)
            n *= x->shape[k];
        size_t nbytes;
        s = vd_dtype_nbytes(x->dtype, n, &nbytes);
        if (s == VD_OK)
            s = vd_model_writer_write(w, x->data, nbytes);
    }
    free(wc.values);
    free(wc.bytes);
    if (s != VD_OK) {
        vd_model_writer_abort(w);
        return vd_error_context(s, "writing '%s': ", req->path);
    }
    return vd_model_writer_finish(w);
}

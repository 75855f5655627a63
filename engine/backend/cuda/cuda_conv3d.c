/* 3-D convolution on CUDA, in fp32 (no TF32: the VAE runs in fp32 in the
 * reference), by one of two paths:
 *
 *   cuDNN (cuda_conv3d_cudnn.c), in builds with cuDNN (VD_HAVE_CUDNN): what
 *     PyTorch runs for the reference decoder.  The default there; a shape
 *     cuDNN cannot run falls back to im2col silently (and is remembered).
 *   im2col + an fp32 cuBLAS SGEMM, below: everywhere else.
 *
 * VD_CUDA_CONV (read at each call, so tests and benchmarks can switch it in
 * one process): unset or "auto" as above; "im2col" forces im2col; "cudnn"
 * forces cuDNN and fails, saying why, where it cannot run a shape (or the
 * build has no cuDNN).  The weight is dequantised to f32 first on both
 * paths, w.scale becomes the alpha of the GEMM or of the convolution, and
 * the bias is added after.
 *
 * im2col: the output [Cout, To·Ho·Wo] is computed in tiles of output
 * positions across frames, so the column buffer stays under COL_BYTES
 * whatever the frame size.  A 1×1×1 kernel with unit stride and no padding
 * needs no columns: x itself is the matrix.
 *
 * Row-major out[Cout, Q] = W[Cout, patch] · col[patch, nq] is, in cuBLAS's
 * column-major terms, outᵀ (nq × Cout, ld Q) = colᵀ (nq × patch, ld nq) ·
 * Wᵀ (patch × Cout, ld patch). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend/cuda/cuda_internal.h"
#include "conv.h"
#include "core/error.h"
#include "dequant.h"
#include "elementwise.h"
#include "vd_config.h"

#if VD_HAVE_CUDNN
#include "backend/cuda/cuda_conv3d_cudnn.h"
#endif

#define COL_BYTES ((int64_t)256 << 20)

typedef enum { CONV_AUTO, CONV_IM2COL, CONV_CUDNN } conv_path;

/* VD_CUDA_CONV; an unknown value is an error rather than a silent default. */
static vd_status conv_path_of(vd_backend *be, conv_path *path)
{
    const char *v = getenv("VD_CUDA_CONV");
    if (!v || !v[0] || strcmp(v, "auto") == 0)
        *path = CONV_AUTO;
    else if (strcmp(v, "im2col") == 0)
        *path = CONV_IM2COL;
    else if (strcmp(v, "cudnn") == 0)
        *path = CONV_CUDNN;
    else
        return vd_error(VD_ERR_INVALID_ARGUMENT, "%s: conv3d: VD_CUDA_CONV=%s: expected im2col, cudnn or auto",
                        be->name, v);
#if !VD_HAVE_CUDNN
    if (*path == CONV_CUDNN)
        return vd_error(VD_ERR_UNSUPPORTED,
                        "%s: conv3d: VD_CUDA_CONV=cudnn, but this build has no cuDNN (configure with "
                        "-Dcudnn=enabled, and -Dcudnn_root=DIR for a pip wheel's cuDNN)",
                        be->name);
#endif
    return VD_OK;
}

vd_status cuda_conv3d(vd_backend *be, const vd_tensor *x, const vd_tensor *w, const vd_tensor *bias,
                      const int stride[3], const int pad[6], vd_tensor *out)
{
    cuda_use_device(be);
    const char *op = "conv3d";
    cuda_ctx *c = cuda_ctx_of(be);
    vd_cuda_conv3d_geom g = {
        .Cin = x->shape[0], .T = x->shape[1], .H = x->shape[2], .W = x->shape[3],
        .kt = w->shape[2], .kh = w->shape[3], .kw = w->shape[4],
        .st = stride[0], .sh = stride[1], .sw = stride[2], .pt = pad[0], .ph = pad[2], .pw = pad[4],
        .To = out->shape[1], .Ho = out->shape[2], .Wo = out->shape[3],
    };
    const int64_t Cout = w->shape[0], patch = g.Cin * g.kt * g.kh * g.kw, Q = g.To * g.Ho * g.Wo;
    if (Cout == 0 || Q == 0)
        return VD_OK;
    conv_path path = CONV_AUTO;
    VD_TRY(conv_path_of(be, &path));
    char dx[200], dw[200], shapes[480];
    snprintf(shapes, sizeof shapes, "%s with %s, stride {%d, %d, %d}", cuda_describe("x", x, dx, sizeof dx),
             cuda_describe("w", w, dw, sizeof dw), stride[0], stride[1], stride[2]);
    if (patch == 0) { /* no input channels: out = bias (or 0) */
        int err = vd_cuda_fill_f32(out->data, 0.0f, Cout * Q, c->stream);
        vd_status s = cuda_op_result(be, err, op, "x", x, "w", w, "out", out);
        if (s == VD_OK && bias) {
            const float *pb;
            cuda_block *owned;
            VD_TRY(cuda_param_f32(be, bias, op, "bias", &pb, &owned));
            err = vd_cuda_binary_f32(0, out->data, pb, out->data, Cout * Q, Cout, 1, c->stream);
            cuda_pool_free(be, owned);
            s = cuda_op_result(be, err, op, "x", x, "w", w, "out", out);
        }
        return s;
    }

    vd_status s = VD_OK;
    cuda_block *w_owned = NULL, *b_owned = NULL, *col = NULL;
    const float *wf = NULL, *pb = NULL;
    /* cuDNN wants 16-byte aligned tensors (cuda_conv3d_cudnn.h); a weight
     * that is not is copied like a converted one. */
    const bool try_cudnn = VD_HAVE_CUDNN && path != CONV_IM2COL;
    const uintptr_t align = try_cudnn ? 15 : 3;
    if (w->dtype == VD_F32 && ((uintptr_t)w->data & align) == 0) {
        wf = w->data;
    } else {
        /* Dequantised once per call, without the scale (alpha carries it). */
        char what[300];
        snprintf(what, sizeof what, "conv3d's weight%s%s in f32", w->name ? " " : "", w->name ? w->name : "");
        s = cuda_pool_alloc(be, (size_t)(Cout * patch) * sizeof(float), what, &w_owned);
        if (s == VD_OK) {
            int err = vd_cuda_dequant_rows((int)w->dtype, w->data, cuda_row_bytes(w->dtype, patch), NULL, 0, Cout,
                                           patch, 1.0f, VD_CUDA_OUT_F32, w_owned->ptr, c->stream);
            s = cuda_op_result(be, err, "conv3d (decoding the weight)", "w", w, NULL, NULL, NULL, NULL);
            wf = w_owned->ptr;
        }
    }
    if (s == VD_OK)
        s = cuda_param_f32(be, bias, op, "bias", &pb, &b_owned);

    bool done = false; /* out holds the convolution (without the bias) */
#if VD_HAVE_CUDNN
    if (s == VD_OK && try_cudnn) {
        char why[400];
        s = cuda_conv3d_cudnn(be, x, w, wf, w->scale, stride, pad, out, shapes, &done, why, sizeof why);
        if (s == VD_OK && !done && path == CONV_CUDNN)
            s = vd_error(VD_ERR_UNSUPPORTED,
                         "%s: conv3d: VD_CUDA_CONV=cudnn, but cuDNN cannot run %s, padding {%d, %d, %d, %d, %d, "
                         "%d}: %s",
                         be->name, shapes, pad[0], pad[1], pad[2], pad[3], pad[4], pad[5], why);
    }
#endif
    const bool pointwise = g.kt == 1 && g.kh == 1 && g.kw == 1 && g.st == 1 && g.sh == 1 && g.sw == 1 &&
                           pad[0] == 0 && pad[1] == 0 && pad[2] == 0 && pad[3] == 0 && pad[4] == 0 && pad[5] == 0;
    int64_t tile = Q;
    if (s == VD_OK && !done && !pointwise) {
        tile = cuda_scratch_bound(be, COL_BYTES) / (int64_t)sizeof(float) / patch;
        tile = tile / 64 * 64;
        if (tile < 64)
            tile = 64;
        if (tile > Q)
            tile = Q;
        s = cuda_pool_alloc(be, (size_t)(patch * tile) * sizeof(float), "conv3d's column tile", &col);
    }
    const float alpha = w->scale, beta = 0.0f;
    for (int64_t q0 = 0; s == VD_OK && !done && q0 < Q; q0 += tile) {
        const int64_t nq = Q - q0 < tile ? Q - q0 : tile;
        const float *A;
        int64_t lda;
        if (pointwise) {
            A = (const float *)x->data + q0;
            lda = Q; /* x [Cin, Q] row-major = Q × Cin column-major */
        } else {
            int err = vd_cuda_im2col3d(&g, x->data, col->ptr, q0, nq, c->stream);
            s = cuda_op_result(be, err, "conv3d (im2col)", "x", x, "w", w, NULL, NULL);
            if (s != VD_OK)
                break;
            A = col->ptr;
            lda = nq;
        }
        cublasStatus_t bs = cublasSgemm(c->blas, CUBLAS_OP_N, CUBLAS_OP_N, (int)nq, (int)Cout, (int)patch, &alpha, A,
                                        (int)lda, wf, (int)patch, &beta, (float *)out->data + q0, (int)Q);
        if (bs != CUBLAS_STATUS_SUCCESS)
            s = cuda_blas_fail(be, bs, "cublasSgemm", op, shapes);
        else
            s = cuda_op_result(be, 0, op, "x", x, "w", w, "out", out);
    }
    if (s == VD_OK && pb) {
        /* out viewed as Cout·Q rows of 1: row r uses bias[r / Q]. */
        int err = vd_cuda_binary_f32(0, out->data, pb, out->data, Cout * Q, Cout, 1, c->stream);
        s = cuda_op_result(be, err, "conv3d (bias)", "x", x, "w", w, "out", out);
    }
    cuda_pool_free(be, col);
    cuda_pool_free(be, b_owned);
    cuda_pool_free(be, w_owned);
    return s;
}

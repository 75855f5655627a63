/* fp8 "scaled" checkpoints (ComfyUI): each quantized weight carries a
 * per-tensor scale, W = float(W_fp8) * scale.
 *
 * Two layouts are read (docs/wan-spec.md section 6):
 *   legacy   a "scaled_fp8" marker tensor; X.weight (F8_E4M3 / F8_E5M2)
 *            with X.scale_weight, a one-element f32/f16/bf16 tensor;
 *            optional X.scale_input (ignored).
 *   current  X.weight_scale (scalar); optional X.input_scale (ignored);
 *            optional X.comfy_quant, u8 bytes of JSON {"format": ...},
 *            and/or "_quantization_metadata" in the safetensors metadata
 *            ({"layers": {"X": {"format": ...}}}).  Formats float8_e4m3fn
 *            and float8_e5m2 are read (a u8 container is retyped); others
 *            are VD_ERR_UNSUPPORTED.
 * The scale is folded into the weight's vd_tensor.scale and the scale,
 * marker and comfy_quant tensors are hidden.  fp8 weights without a scale
 * (plain casts) keep scale 1. */
#ifndef VD_IO_FP8_SCALED_H
#define VD_IO_FP8_SCALED_H

#include <stdbool.h>
#include <stddef.h>

#include "io/weights.h"

typedef enum vd_quant_layout {
    VD_LAYOUT_PLAIN = 0,       /* no fp8 weights */
    VD_LAYOUT_FP8_UNSCALED,    /* fp8 casts without scales */
    VD_LAYOUT_FP8_LEGACY,      /* scaled_fp8 marker, X.scale_weight */
    VD_LAYOUT_FP8_COMFY_QUANT  /* X.weight_scale, comfy_quant / _quantization_metadata */
} vd_quant_layout;

/* "plain", "fp8 (unscaled casts)", "fp8 scaled (legacy scaled_fp8)",
 * "fp8 scaled (comfy_quant)". */
const char *vd_quant_layout_name(vd_quant_layout layout);

/* Pair the tensors of a file (names as stored; a "model.diffusion_model."
 * prefix is ignored for pairing) and fold every scale into its weight's
 * tensor.scale; retype u8 containers declared fp8; set hidden[i] for the
 * tensors that are not weights (scales, marker, comfy_quant).
 * `quant_metadata` is the "_quantization_metadata" metadata value or NULL.
 * Errors name `path` and the tensor: a scale without its weight, a
 * non-scalar or non-finite scale, a bad comfy_quant → VD_ERR_FORMAT; a
 * format other than float8 → VD_ERR_UNSUPPORTED. */
vd_status vd_fp8_fold_scales(vd_weight *weights, size_t n, const char *quant_metadata, const char *path, bool *hidden,
                             vd_quant_layout *layout);

#endif

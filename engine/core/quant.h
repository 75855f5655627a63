/* GGUF block formats (ggml layouts): decode to f32 and reference encoders.
 *
 * Layouts (all little-endian, d/m are IEEE half):
 *   Q4_0  18 B / 32: d, 16 B nibbles; w = d*(q-8); low nibbles are elements 0..15
 *   Q4_1  20 B / 32: d, m, 16 B nibbles; w = d*q + m
 *   Q5_0  22 B / 32: d, 4 B high bits, 16 B nibbles; w = d*(q-16)
 *   Q5_1  24 B / 32: d, m, 4 B high bits, 16 B nibbles; w = d*q + m
 *   Q8_0  34 B / 32: d, 32 x int8; w = d*q
 *   Q2_K  84 B / 256, Q3_K 110 B / 256, Q4_K 144 B / 256, Q5_K 176 B / 256,
 *   Q6_K 210 B / 256: the k-quant super-blocks of ggml.
 * The encoders are straightforward (per-block scale from the absolute or
 * min/max range, round to nearest); they produce valid blocks whose
 * decoded values are within the format's step of the input. */
#ifndef VD_CORE_QUANT_H
#define VD_CORE_QUANT_H

#include <stdint.h>

#include "core/dtype.h"

/* Decode `nblocks` blocks of `type` into f32 (block_elems * nblocks values). */
void vd_quant_decode(vd_dtype type, const void *src, float *dst, int64_t nblocks);

/* Encode `nblocks` blocks worth of f32 values into `type`. */
void vd_quant_encode(vd_dtype type, const float *src, void *dst, int64_t nblocks);

#endif

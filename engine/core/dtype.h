/* Element types: plain numbers, 8-bit floats and GGUF block formats.
 *
 * A block type packs `block_elems` consecutive elements of the innermost
 * dimension into `block_bytes` bytes (Q8_0: 32 elements in 34 bytes).  Plain
 * types are blocks of one element.  Conversion to f32 is exact for every
 * type (for block types: exact evaluation of the format's formula). */
#ifndef VD_CORE_DTYPE_H
#define VD_CORE_DTYPE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "vdiff/status.h"

typedef enum vd_dtype {
    VD_F32 = 0,
    VD_F16,
    VD_BF16,
    VD_F8_E4M3, /* e4m3fn: no infinities, max 448, NaN = S.1111.111 */
    VD_F8_E5M2,
    VD_F64,
    VD_I8,
    VD_U8,
    VD_I16,
    VD_I32,
    VD_I64,
    VD_BOOL,
    VD_Q4_0,
    VD_Q4_1,
    VD_Q5_0,
    VD_Q5_1,
    VD_Q8_0,
    VD_Q2_K,
    VD_Q3_K,
    VD_Q4_K,
    VD_Q5_K,
    VD_Q6_K,
    VD_DTYPE_COUNT
} vd_dtype;

typedef struct vd_dtype_traits {
    const char *name;  /* lower-case: "f32", "bf16", "f8_e4m3", "q4_k" */
    int block_elems;   /* elements per block (1 for plain types) */
    int block_bytes;   /* bytes per block */
    bool is_float;     /* a floating-point plain type */
    bool is_quantized; /* a GGUF block format */
} vd_dtype_traits;

/* Traits of a dtype; NULL for values outside the enum. */
const vd_dtype_traits *vd_dtype_info(vd_dtype dtype);

/* "f32", ...; "invalid" for an unknown value. */
const char *vd_dtype_name(vd_dtype dtype);

/* Parse a name as vd_dtype_name prints it (also "fp16", "fp8", "float32",
 * "e4m3", ... aliases).  Returns false if unknown. */
bool vd_dtype_parse(const char *name, vd_dtype *out);

/* Bytes taken by `nelem` elements, with overflow and block-divisibility
 * checks.  Fails (with a message) if nelem is negative, not a multiple of
 * the block size, or the size overflows. */
vd_status vd_dtype_nbytes(vd_dtype dtype, int64_t nelem, size_t *out);

/* Convert `n` elements (a multiple of the block size) to f32. */
vd_status vd_dtype_to_f32(vd_dtype dtype, const void *src, float *dst, int64_t n);

/* Convert `n` f32 values into `dtype`: round-to-nearest-even for floats
 * (fp8 saturates to the largest finite value), the reference quantizer for
 * block types.  Integers round to nearest and saturate. */
vd_status vd_dtype_from_f32(vd_dtype dtype, const float *src, void *dst, int64_t n);

/* Scalar conversions (exact decode; encode rounds to nearest even). */
float vd_f16_to_f32(uint16_t h);
uint16_t vd_f32_to_f16(float f);
float vd_bf16_to_f32(uint16_t b);
uint16_t vd_f32_to_bf16(float f);
float vd_e4m3_to_f32(uint8_t v);
uint8_t vd_f32_to_e4m3(float f); /* saturates to +-448, NaN stays NaN */
float vd_e5m2_to_f32(uint8_t v);
uint8_t vd_f32_to_e5m2(float f); /* saturates to +-57344, inf/NaN kept */

#endif

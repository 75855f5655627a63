/* Device-side decoding of every storage dtype to f32, element by element.
 *
 * The formulas are those of engine/core/dtype.c and engine/core/quant.c
 * (which reproduce ggml's dequantize_row_* bit for bit): each value is the
 * product of a half scale and small integers evaluated in the same order,
 * so the GPU decodes to the same f32 bits as the CPU.  (Every product but
 * Q6_K's last is exact in f32; Q6_K is evaluated as (d · sc) · q, as on the
 * CPU.  A fused multiply-add changes nothing because the product it fuses
 * is exact.)
 *
 * Bytes are read one at a time: GGUF blocks are only 2-byte aligned and
 * their 32-bit fields are not aligned at all. */
#ifndef VD_KERNELS_DECODE_CUH
#define VD_KERNELS_DECODE_CUH

#include <cuda_fp16.h>
#include <stdint.h>
#include <string.h>

#include "dtypes.h"

/* Host and device: the host side lets a CPU test check the decoders
 * against core/quant.c without a GPU. */
#define VDK_HD __host__ __device__ __forceinline__

namespace vdk {

VDK_HD float bits_f32(uint32_t u)
{
#ifdef __CUDA_ARCH__
    return __uint_as_float(u);
#else
    float f;
    memcpy(&f, &u, 4);
    return f;
#endif
}

VDK_HD float half_at(const uint8_t *p)
{
    const unsigned short h = (unsigned short)(p[0] | (p[1] << 8));
    return __half2float(__ushort_as_half(h));
}

VDK_HD uint32_t u32_at(const uint8_t *p)
{
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
}

/* e4m3fn: no infinities, S.1111.111 is NaN. */
VDK_HD float e4m3_to_f32(uint8_t v)
{
    if ((v & 0x7f) == 0x7f)
        return bits_f32(0x7fc00000u);
    const int exp = (v >> 3) & 15, man = v & 7;
    const float r = exp == 0 ? ldexpf((float)man, -9) : ldexpf((float)(8 + man), exp - 10);
    return (v & 0x80) ? -r : r;
}

VDK_HD float e5m2_to_f32(uint8_t v)
{
    const int exp = (v >> 2) & 31, man = v & 3;
    float r;
    if (exp == 31)
        r = man ? bits_f32(0x7fc00000u) : bits_f32(0x7f800000u);
    else if (exp == 0)
        r = ldexpf((float)man, -16);
    else
        r = ldexpf((float)(4 + man), exp - 17);
    return (v & 0x80) ? -r : r;
}

/* Element `i` of an array of a plain dtype (block_elems == 1). */
VDK_HD float plain_at(int dtype, const uint8_t *base, int64_t i)
{
    switch (dtype) {
    case VDK_F32: return reinterpret_cast<const float *>(base)[i];
    case VDK_F16: return __half2float(reinterpret_cast<const __half *>(base)[i]);
    case VDK_BF16: return bits_f32((uint32_t)reinterpret_cast<const unsigned short *>(base)[i] << 16);
    case VDK_F8_E4M3: return e4m3_to_f32(base[i]);
    case VDK_F8_E5M2: return e5m2_to_f32(base[i]);
    case VDK_F64: return (float)reinterpret_cast<const double *>(base)[i];
    case VDK_I8: return (float)reinterpret_cast<const int8_t *>(base)[i];
    case VDK_U8: return (float)base[i];
    case VDK_I16: return (float)reinterpret_cast<const int16_t *>(base)[i];
    case VDK_I32: return (float)reinterpret_cast<const int32_t *>(base)[i];
    case VDK_I64: return (float)reinterpret_cast<const long long *>(base)[i];
    case VDK_BOOL: return base[i] ? 1.0f : 0.0f;
    default: return bits_f32(0x7fc00000u);
    }
}

/* ---- 32-element blocks ------------------------------------------------------ */

/* The 4-bit value of element j of a 16-byte nibble array (low nibbles are
 * elements 0..15, high nibbles 16..31). */
VDK_HD int nibble32(const uint8_t *qs, int j)
{
    return j < 16 ? (qs[j] & 0x0F) : (qs[j - 16] >> 4);
}

VDK_HD float q4_0_at(const uint8_t *b, int j)
{
    const float d = half_at(b);
    return (float)(nibble32(b + 2, j) - 8) * d;
}

VDK_HD float q4_1_at(const uint8_t *b, int j)
{
    const float d = half_at(b), m = half_at(b + 2);
    return (float)nibble32(b + 4, j) * d + m;
}

VDK_HD float q5_0_at(const uint8_t *b, int j)
{
    const float d = half_at(b);
    const uint32_t qh = u32_at(b + 2);
    const int q = nibble32(b + 6, j) | (int)(((qh >> j) & 1u) << 4);
    return (float)(q - 16) * d;
}

VDK_HD float q5_1_at(const uint8_t *b, int j)
{
    const float d = half_at(b), m = half_at(b + 2);
    const uint32_t qh = u32_at(b + 4);
    const int q = nibble32(b + 8, j) | (int)(((qh >> j) & 1u) << 4);
    return (float)q * d + m;
}

VDK_HD float q8_0_at(const uint8_t *b, int j)
{
    const float d = half_at(b);
    return (float)(int8_t)b[2 + j] * d;
}

/* ---- k-quants (256-element super-blocks) -------------------------------------- */

/* Q2_K: scales[16], qs[64], d, dmin.  Element e = 128·half + 32·s + 16·part + l
 * uses scale byte e/16 and bits 2s..2s+1 of qs[32·half + 16·part + l]. */
VDK_HD float q2_k_at(const uint8_t *b, int e)
{
    const float d = half_at(b + 80), dmin = half_at(b + 82);
    const int half = e >> 7, r = e & 127, s = r >> 5, part = (r >> 4) & 1, l = r & 15;
    const uint8_t sc = b[e >> 4];
    const float dl = d * (float)(sc & 0xF), ml = dmin * (float)(sc >> 4);
    const int q = (b[16 + 32 * half + 16 * part + l] >> (2 * s)) & 3;
    return dl * (float)q - ml;
}

/* Q3_K: hmask[32], qs[64], scales[12], d.  Element e = 128·half + 32·s + l
 * (l = 0..31): low bits 2s of qs[32·half + l], high bit 4·half + s of hmask[l]
 * (set: +0, clear: −4), 6-bit scale e/16 (minus 32). */
VDK_HD float q3_k_at(const uint8_t *b, int e)
{
    const uint8_t *hmask = b, *qs = b + 32, *sc = b + 96;
    const float d = half_at(b + 108);
    const int half = e >> 7, r = e & 127, s = r >> 5, l = r & 31, i = e >> 4;
    const int low = i < 8 ? (sc[i] & 0xF) : (sc[i - 8] >> 4);
    const int high = (sc[8 + (i & 3)] >> (2 * (i >> 2))) & 3;
    const int scale = (low | (high << 4)) - 32;
    const float dl = d * (float)scale;
    const unsigned bit = 1u << (4 * half + s);
    const int v = (int)((qs[32 * half + l] >> (2 * s)) & 3) - ((hmask[l] & bit) ? 0 : 4);
    return dl * (float)v;
}

/* Q4_K / Q5_K: d, dmin, scales[12], (Q5_K: qh[32]), qs[128].  Element
 * e = 64·c + 32·part + l: nibble `part` of qs[32·c + l], fifth bit
 * 2c + part of qh[l], 6-bit scale and min of sub-block e/32. */
VDK_HD float q45_k_at(const uint8_t *b, int e, bool five)
{
    const float d = half_at(b), dmin = half_at(b + 2);
    const uint8_t *s = b + 4, *qh = b + 16, *ql = b + (five ? 48 : 16);
    const int c = e >> 6, part = (e >> 5) & 1, l = e & 31, j = e >> 5;
    int sc, m;
    if (j < 4) {
        sc = s[j] & 63;
        m = s[j + 4] & 63;
    } else {
        sc = (s[j + 4] & 0xF) | ((s[j - 4] >> 6) << 4);
        m = (s[j + 4] >> 4) | ((s[j] >> 6) << 4);
    }
    const float dl = d * (float)sc, ml = dmin * (float)m;
    int v = (ql[32 * c + l] >> (4 * part)) & 0xF;
    if (five && (qh[l] & (1u << j)))
        v += 16;
    return dl * (float)v - ml;
}

/* Q6_K: ql[128], qh[64], int8 scales[16], d.  Element e = 128·half + 32·k + l:
 * low nibble k>>1 of ql[64·half + l + 32·(k&1)], high bits 2k of
 * qh[32·half + l], scale 8·half + l/16 + 2k. */
VDK_HD float q6_k_at(const uint8_t *b, int e)
{
    const int half = e >> 7, r = e & 127, k = r >> 5, l = r & 31;
    const uint8_t *ql = b + 64 * half, *qh = b + 128 + 32 * half;
    const int8_t *sc = reinterpret_cast<const int8_t *>(b + 192) + 8 * half;
    const float d = half_at(b + 208);
    const int low = (ql[l + 32 * (k & 1)] >> (4 * (k >> 1))) & 0xF;
    const int high = (qh[l] >> (2 * k)) & 3;
    const int q = (low | (high << 4)) - 32;
    return d * (float)sc[l / 16 + 2 * k] * (float)q;
}

struct block_info {
    int elems, bytes;
};

VDK_HD block_info block_of(int dtype)
{
    switch (dtype) {
    case VDK_F32: return {1, 4};
    case VDK_F16: return {1, 2};
    case VDK_BF16: return {1, 2};
    case VDK_F8_E4M3: return {1, 1};
    case VDK_F8_E5M2: return {1, 1};
    case VDK_F64: return {1, 8};
    case VDK_I8: return {1, 1};
    case VDK_U8: return {1, 1};
    case VDK_I16: return {1, 2};
    case VDK_I32: return {1, 4};
    case VDK_I64: return {1, 8};
    case VDK_BOOL: return {1, 1};
    case VDK_Q4_0: return {32, 18};
    case VDK_Q4_1: return {32, 20};
    case VDK_Q5_0: return {32, 22};
    case VDK_Q5_1: return {32, 24};
    case VDK_Q8_0: return {32, 34};
    case VDK_Q2_K: return {256, 84};
    case VDK_Q3_K: return {256, 110};
    case VDK_Q4_K: return {256, 144};
    case VDK_Q5_K: return {256, 176};
    case VDK_Q6_K: return {256, 210};
    default: return {0, 0};
    }
}

/* Element `col` of a row of `dtype` that starts at `row` (any dtype). */
VDK_HD float row_at(int dtype, const uint8_t *row, int64_t col)
{
    switch (dtype) {
    case VDK_Q4_0: return q4_0_at(row + (col >> 5) * 18, (int)(col & 31));
    case VDK_Q4_1: return q4_1_at(row + (col >> 5) * 20, (int)(col & 31));
    case VDK_Q5_0: return q5_0_at(row + (col >> 5) * 22, (int)(col & 31));
    case VDK_Q5_1: return q5_1_at(row + (col >> 5) * 24, (int)(col & 31));
    case VDK_Q8_0: return q8_0_at(row + (col >> 5) * 34, (int)(col & 31));
    case VDK_Q2_K: return q2_k_at(row + (col >> 8) * 84, (int)(col & 255));
    case VDK_Q3_K: return q3_k_at(row + (col >> 8) * 110, (int)(col & 255));
    case VDK_Q4_K: return q45_k_at(row + (col >> 8) * 144, (int)(col & 255), false);
    case VDK_Q5_K: return q45_k_at(row + (col >> 8) * 176, (int)(col & 255), true);
    case VDK_Q6_K: return q6_k_at(row + (col >> 8) * 210, (int)(col & 255));
    default: return plain_at(dtype, row, col);
    }
}

} // namespace vdk

#endif

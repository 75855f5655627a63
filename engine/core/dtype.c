#include "core/dtype.h"

#include <math.h>
#include <string.h>
#include <strings.h>

#include "core/error.h"
#include "core/quant.h"

static const vd_dtype_traits traits[VD_DTYPE_COUNT] = {
    [VD_F32] = {"f32", 1, 4, true, false},
    [VD_F16] = {"f16", 1, 2, true, false},
    [VD_BF16] = {"bf16", 1, 2, true, false},
    [VD_F8_E4M3] = {"f8_e4m3", 1, 1, true, false},
    [VD_F8_E5M2] = {"f8_e5m2", 1, 1, true, false},
    [VD_F64] = {"f64", 1, 8, true, false},
    [VD_I8] = {"i8", 1, 1, false, false},
    [VD_U8] = {"u8", 1, 1, false, false},
    [VD_I16] = {"i16", 1, 2, false, false},
    [VD_I32] = {"i32", 1, 4, false, false},
    [VD_I64] = {"i64", 1, 8, false, false},
    [VD_BOOL] = {"bool", 1, 1, false, false},
    [VD_Q4_0] = {"q4_0", 32, 18, false, true},
    [VD_Q4_1] = {"q4_1", 32, 20, false, true},
    [VD_Q5_0] = {"q5_0", 32, 22, false, true},
    [VD_Q5_1] = {"q5_1", 32, 24, false, true},
    [VD_Q8_0] = {"q8_0", 32, 34, false, true},
    [VD_Q2_K] = {"q2_k", 256, 84, false, true},
    [VD_Q3_K] = {"q3_k", 256, 110, false, true},
    [VD_Q4_K] = {"q4_k", 256, 144, false, true},
    [VD_Q5_K] = {"q5_k", 256, 176, false, true},
    [VD_Q6_K] = {"q6_k", 256, 210, false, true},
};

const vd_dtype_traits *vd_dtype_info(vd_dtype dtype)
{
    if ((int)dtype < 0 || dtype >= VD_DTYPE_COUNT)
        return NULL;
    return &traits[dtype];
}

const char *vd_dtype_name(vd_dtype dtype)
{
    const vd_dtype_traits *t = vd_dtype_info(dtype);
    return t ? t->name : "invalid";
}

bool vd_dtype_parse(const char *name, vd_dtype *out)
{
    static const struct {
        const char *alias;
        vd_dtype dtype;
    } aliases[] = {
        {"float32", VD_F32}, {"fp32", VD_F32},         {"float", VD_F32},        {"float16", VD_F16},
        {"fp16", VD_F16},    {"half", VD_F16},         {"bfloat16", VD_BF16},    {"fp8", VD_F8_E4M3},
        {"e4m3", VD_F8_E4M3}, {"f8_e4m3fn", VD_F8_E4M3}, {"fp8_e4m3fn", VD_F8_E4M3}, {"fp8_e4m3", VD_F8_E4M3},
        {"e5m2", VD_F8_E5M2}, {"fp8_e5m2", VD_F8_E5M2}, {"float64", VD_F64},      {"double", VD_F64},
        {"int8", VD_I8},     {"uint8", VD_U8},         {"int16", VD_I16},        {"int32", VD_I32},
        {"int64", VD_I64},
    };
    for (int i = 0; i < VD_DTYPE_COUNT; i++)
        if (strcasecmp(name, traits[i].name) == 0) {
            *out = (vd_dtype)i;
            return true;
        }
    for (size_t i = 0; i < sizeof aliases / sizeof aliases[0]; i++)
        if (strcasecmp(name, aliases[i].alias) == 0) {
            *out = aliases[i].dtype;
            return true;
        }
    return false;
}

vd_status vd_dtype_nbytes(vd_dtype dtype, int64_t nelem, size_t *out)
{
    const vd_dtype_traits *t = vd_dtype_info(dtype);
    if (!t)
        return vd_error(VD_ERR_INVALID_ARGUMENT, "invalid dtype %d", (int)dtype);
    if (nelem < 0)
        return vd_error(VD_ERR_SHAPE, "negative element count %lld", (long long)nelem);
    if (nelem % t->block_elems != 0)
        return vd_error(VD_ERR_SHAPE, "%lld elements are not a whole number of %s blocks (%d each)",
                        (long long)nelem, t->name, t->block_elems);
    uint64_t blocks = (uint64_t)(nelem / t->block_elems);
    if (blocks > SIZE_MAX / (uint64_t)t->block_bytes)
        return vd_error(VD_ERR_SHAPE, "%lld %s elements overflow the address space", (long long)nelem, t->name);
    *out = (size_t)(blocks * (uint64_t)t->block_bytes);
    return VD_OK;
}

/* ---- scalar float formats --------------------------------------------- */

static uint32_t f32_bits(float f)
{
    uint32_t u;
    memcpy(&u, &f, 4);
    return u;
}

static float bits_f32(uint32_t u)
{
    float f;
    memcpy(&f, &u, 4);
    return f;
}

float vd_f16_to_f32(uint16_t h)
{
    uint32_t sign = (uint32_t)(h >> 15) << 31;
    int exp = (h >> 10) & 0x1f;
    uint32_t man = h & 0x3ff;
    if (exp == 0x1f)
        return bits_f32(sign | 0x7f800000u | (man << 13));
    if (exp == 0) {
        float v = ldexpf((float)man, -24); /* subnormal or zero: exact */
        return sign ? -v : v;
    }
    return bits_f32(sign | ((uint32_t)(exp - 15 + 127) << 23) | (man << 13));
}

/* Round |f| to a binary format with `man_bits` fraction bits, minimum normal
 * exponent `emin`, and return the rounded magnitude (exact in float).  RNE:
 * the division by a power of two is exact, rintf rounds to nearest even. */
static float round_to_format(float a, int man_bits, int emin)
{
    if (a == 0.0f)
        return 0.0f;
    int e;
    frexpf(a, &e); /* a = fr * 2^e, fr in [0.5, 1) => unbiased exponent e-1 */
    int E = e - 1;
    if (E < emin)
        E = emin; /* subnormal: fixed quantum */
    float q = ldexpf(1.0f, E - man_bits);
    return rintf(a / q) * q;
}

uint16_t vd_f32_to_f16(float f)
{
    uint32_t u = f32_bits(f);
    uint16_t sign = (uint16_t)((u >> 16) & 0x8000);
    if (isnan(f))
        return sign | 0x7e00;
    float a = fabsf(f);
    float r = round_to_format(a, 10, -14);
    if (r >= 65520.0f || isinf(a)) /* rounds past the largest half */
        return sign | 0x7c00;
    if (r == 0.0f)
        return sign;
    int e;
    frexpf(r, &e);
    int E = e - 1;
    if (E < -14)
        return sign | (uint16_t)(r / ldexpf(1.0f, -24)); /* subnormal */
    uint32_t man = (uint32_t)(r / ldexpf(1.0f, E - 10)) - 1024u;
    return sign | (uint16_t)((E + 15) << 10) | (uint16_t)man;
}

float vd_bf16_to_f32(uint16_t b) { return bits_f32((uint32_t)b << 16); }

uint16_t vd_f32_to_bf16(float f)
{
    uint32_t u = f32_bits(f);
    if (isnan(f))
        return (uint16_t)((u >> 16) | 0x40); /* keep it a quiet NaN */
    uint32_t lsb = (u >> 16) & 1u;
    u += 0x7fffu + lsb; /* round to nearest even; overflow rounds to inf */
    return (uint16_t)(u >> 16);
}

/* fp8 decode: sign, `eb` exponent bits with bias, `mb` mantissa bits. */
static float fp8_decode(uint8_t v, int eb, int mb, int bias)
{
    int sign = v >> 7;
    int exp = (v >> mb) & ((1 << eb) - 1);
    int man = v & ((1 << mb) - 1);
    float r;
    if (exp == 0)
        r = ldexpf((float)man, 1 - bias - mb);
    else
        r = ldexpf((float)((1 << mb) + man), exp - bias - mb);
    return sign ? -r : r;
}

static uint8_t fp8_encode_magnitude(float r, int mb, int bias)
{
    if (r == 0.0f)
        return 0;
    int e;
    frexpf(r, &e);
    int E = e - 1;
    if (E < 1 - bias)
        return (uint8_t)(r / ldexpf(1.0f, 1 - bias - mb)); /* subnormal */
    uint32_t man = (uint32_t)(r / ldexpf(1.0f, E - mb)) - (1u << mb);
    return (uint8_t)(((E + bias) << mb) | (int)man);
}

float vd_e4m3_to_f32(uint8_t v)
{
    if ((v & 0x7f) == 0x7f)
        return NAN;
    return fp8_decode(v, 4, 3, 7);
}

uint8_t vd_f32_to_e4m3(float f)
{
    uint8_t sign = signbit(f) ? 0x80 : 0;
    if (isnan(f))
        return sign | 0x7f;
    float r = round_to_format(fabsf(f), 3, -6);
    if (r > 448.0f)
        r = 448.0f;
    return sign | fp8_encode_magnitude(r, 3, 7);
}

float vd_e5m2_to_f32(uint8_t v)
{
    int exp = (v >> 2) & 0x1f;
    if (exp == 0x1f) {
        if (v & 3)
            return NAN;
        return (v & 0x80) ? -INFINITY : INFINITY;
    }
    return fp8_decode(v, 5, 2, 15);
}

uint8_t vd_f32_to_e5m2(float f)
{
    uint8_t sign = signbit(f) ? 0x80 : 0;
    if (isnan(f))
        return sign | 0x7f;
    if (isinf(f))
        return sign | 0x7c;
    float r = round_to_format(fabsf(f), 2, -14);
    if (r > 57344.0f)
        r = 57344.0f;
    return sign | fp8_encode_magnitude(r, 2, 15);
}

/* ---- arrays ---------------------------------------------------------------- */

static float saturate_round(float f, float lo, float hi)
{
    if (isnan(f))
        return 0.0f;
    f = rintf(f);
    return f < lo ? lo : (f > hi ? hi : f);
}

vd_status vd_dtype_to_f32(vd_dtype dtype, const void *src, float *dst, int64_t n)
{
    const vd_dtype_traits *t = vd_dtype_info(dtype);
    if (!t)
        return vd_error(VD_ERR_INVALID_ARGUMENT, "invalid dtype %d", (int)dtype);
    if (n < 0 || n % t->block_elems)
        return vd_error(VD_ERR_SHAPE, "%lld elements are not a whole number of %s blocks", (long long)n, t->name);
    if (t->is_quantized) {
        vd_quant_decode(dtype, src, dst, n / t->block_elems);
        return VD_OK;
    }
    const uint8_t *s8 = src;
    for (int64_t i = 0; i < n; i++) {
        switch (dtype) {
        case VD_F32: memcpy(&dst[i], s8 + 4 * i, 4); break;
        case VD_F16: { uint16_t h; memcpy(&h, s8 + 2 * i, 2); dst[i] = vd_f16_to_f32(h); } break;
        case VD_BF16: { uint16_t h; memcpy(&h, s8 + 2 * i, 2); dst[i] = vd_bf16_to_f32(h); } break;
        case VD_F8_E4M3: dst[i] = vd_e4m3_to_f32(s8[i]); break;
        case VD_F8_E5M2: dst[i] = vd_e5m2_to_f32(s8[i]); break;
        case VD_F64: { double d; memcpy(&d, s8 + 8 * i, 8); dst[i] = (float)d; } break;
        case VD_I8: dst[i] = (float)(int8_t)s8[i]; break;
        case VD_U8: dst[i] = (float)s8[i]; break;
        case VD_BOOL: dst[i] = s8[i] ? 1.0f : 0.0f; break;
        case VD_I16: { int16_t v; memcpy(&v, s8 + 2 * i, 2); dst[i] = (float)v; } break;
        case VD_I32: { int32_t v; memcpy(&v, s8 + 4 * i, 4); dst[i] = (float)v; } break;
        case VD_I64: { int64_t v; memcpy(&v, s8 + 8 * i, 8); dst[i] = (float)v; } break;
        default: return vd_error(VD_ERR_INTERNAL, "no f32 conversion for %s", t->name);
        }
    }
    return VD_OK;
}

vd_status vd_dtype_from_f32(vd_dtype dtype, const float *src, void *dst, int64_t n)
{
    const vd_dtype_traits *t = vd_dtype_info(dtype);
    if (!t)
        return vd_error(VD_ERR_INVALID_ARGUMENT, "invalid dtype %d", (int)dtype);
    if (n < 0 || n % t->block_elems)
        return vd_error(VD_ERR_SHAPE, "%lld elements are not a whole number of %s blocks", (long long)n, t->name);
    if (t->is_quantized) {
        vd_quant_encode(dtype, src, dst, n / t->block_elems);
        return VD_OK;
    }
    uint8_t *d8 = dst;
    for (int64_t i = 0; i < n; i++) {
        float f = src[i];
        switch (dtype) {
        case VD_F32: memcpy(d8 + 4 * i, &f, 4); break;
        case VD_F16: { uint16_t h = vd_f32_to_f16(f); memcpy(d8 + 2 * i, &h, 2); } break;
        case VD_BF16: { uint16_t h = vd_f32_to_bf16(f); memcpy(d8 + 2 * i, &h, 2); } break;
        case VD_F8_E4M3: d8[i] = vd_f32_to_e4m3(f); break;
        case VD_F8_E5M2: d8[i] = vd_f32_to_e5m2(f); break;
        case VD_F64: { double d = f; memcpy(d8 + 8 * i, &d, 8); } break;
        case VD_I8: d8[i] = (uint8_t)(int8_t)saturate_round(f, -128.0f, 127.0f); break;
        case VD_U8: d8[i] = (uint8_t)saturate_round(f, 0.0f, 255.0f); break;
        case VD_BOOL: d8[i] = (f != 0.0f && !isnan(f)) ? 1 : 0; break;
        case VD_I16: { int16_t v = (int16_t)saturate_round(f, -32768.0f, 32767.0f); memcpy(d8 + 2 * i, &v, 2); } break;
        case VD_I32: {
            /* 2147483520 is the largest float below 2^31. */
            int32_t v = (int32_t)saturate_round(f, -2147483648.0f, 2147483520.0f);
            memcpy(d8 + 4 * i, &v, 4);
        } break;
        case VD_I64: {
            int64_t v = (int64_t)saturate_round(f, -9.2233720368547758e18f, 9.2233714e18f);
            memcpy(d8 + 8 * i, &v, 8);
        } break;
        default: return vd_error(VD_ERR_INTERNAL, "no conversion from f32 to %s", t->name);
        }
    }
    return VD_OK;
}

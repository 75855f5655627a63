/* GGUF block formats: decoders that reproduce ggml's dequantize_row_* bit
 * for bit, and simple reference encoders.
 *
 * Decoding evaluates each format's formula as ggml writes it (e.g. Q4_K:
 * (d * sc) * q - dmin * m).  Every product of a half scale and the small
 * integers is exact in float except, for Q6_K, the last one, so each value
 * is rounded exactly once: the result is the same whatever the evaluation
 * order or FMA contraction, and equal to ggml's bit for bit.
 *
 * Encoders (the dtype's "reference quantizer"):
 *   Q8_0               d = absmax / 127, levels -127..127.
 *   Q4_0, Q5_0         d = (value of largest magnitude) / -8 (or -16), so
 *                      that value lands exactly on the most negative level
 *                      and the asymmetric range -8..7 is fully used.
 *   Q4_1, Q5_1         scale and offset from the block's min and max.
 *   Q2_K, Q4_K, Q5_K   per sub-block min (clamped to <= 0) and range; the
 *                      mins and scales are quantized against two half
 *                      super-block scales, the mins first so the scales can
 *                      cover [-min, max] as actually stored.
 *   Q3_K, Q6_K         per sub-block signed-absmax scale, quantized against
 *                      one half super-block scale.
 * Every weight is then rounded to the nearest level given the scales as the
 * decoder will see them (after half rounding).  Scales are rounded to half
 * away from zero and the _1 types' min downwards, so the block's extreme
 * values never need a level beyond the last.  Half scales are clamped to the
 * largest finite half, so huge inputs saturate instead of decoding to inf.
 * NaN inputs are ignored by the scale search and encoded as zero (or the
 * level nearest to it). */
#include "core/quant.h"

#include <math.h>
#include <string.h>

enum { QK = 32, QK_K = 256, HALF_MAX = 65504 };

/* ---- helpers -------------------------------------------------------------- */

static float load_half(const uint8_t *p) { return vd_f16_to_f32((uint16_t)(p[0] | (p[1] << 8))); }

/* How store_half rounds: away from zero (a scale never smaller than asked
 * for, so the extreme value still fits the last level), or down (a minimum
 * never above the block's smallest value). */
typedef enum { ROUND_AWAY, ROUND_DOWN } half_rounding;

/* Store v as a little-endian half, clamped to the finite range; returns the
 * value a decoder will read back. */
static float store_half(uint8_t *p, double v, half_rounding mode)
{
    if (!(v == v))
        v = 0.0;
    if (v > HALF_MAX)
        v = HALF_MAX;
    else if (v < -HALF_MAX)
        v = -HALF_MAX;
    uint16_t h = vd_f32_to_f16((float)v);
    double back = vd_f16_to_f32(h);
    /* One step of the bit pattern moves a half by one ulp in magnitude. */
    if (mode == ROUND_AWAY && fabs(back) < fabs(v))
        h++;
    else if (mode == ROUND_DOWN && back > v)
        h = (h & 0x8000) ? (uint16_t)(h + 1) : (uint16_t)(h - 1);
    if (h == 0x8000)
        h = 0; /* no negative zero scales */
    p[0] = (uint8_t)h;
    p[1] = (uint8_t)(h >> 8);
    return vd_f16_to_f32(h);
}

/* Nearest integer to v within [lo, hi]; NaN gives lo. */
static inline int nearest_level(float v, int lo, int hi)
{
    if (!(v > (float)lo))
        return lo;
    if (v >= (float)hi)
        return hi;
    return (int)rintf(v);
}

/* NaN -> 0, so a stray NaN weight encodes as the level nearest zero. */
static inline float zero_nan(float v) { return v == v ? v : 0.0f; }

/* The element of largest magnitude, with its sign (0 if all are zero or
 * NaN). */
static float signed_absmax(const float *x, int n)
{
    float amax = 0.0f, smax = 0.0f;
    for (int i = 0; i < n; i++) {
        float a = fabsf(x[i]);
        if (a > amax) {
            amax = a;
            smax = x[i];
        }
    }
    return smax;
}

/* ---- 32-element formats ----------------------------------------------------- */

static void decode_q4_0(const uint8_t *b, float *y)
{
    const float d = load_half(b);
    const uint8_t *qs = b + 2;
    for (int j = 0; j < QK / 2; j++) {
        const int x0 = (qs[j] & 0x0F) - 8;
        const int x1 = (qs[j] >> 4) - 8;
        y[j] = (float)x0 * d;
        y[j + QK / 2] = (float)x1 * d;
    }
}

static void decode_q4_1(const uint8_t *b, float *y)
{
    const float d = load_half(b), m = load_half(b + 2);
    const uint8_t *qs = b + 4;
    for (int j = 0; j < QK / 2; j++) {
        y[j] = (float)(qs[j] & 0x0F) * d + m;
        y[j + QK / 2] = (float)(qs[j] >> 4) * d + m;
    }
}

static uint32_t load_u32(const uint8_t *p)
{
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
}

static void decode_q5_0(const uint8_t *b, float *y)
{
    const float d = load_half(b);
    const uint32_t qh = load_u32(b + 2);
    const uint8_t *qs = b + 6;
    for (int j = 0; j < QK / 2; j++) {
        const int x0 = (int)((qs[j] & 0x0F) | (((qh >> j) & 1u) << 4)) - 16;
        const int x1 = (int)((qs[j] >> 4) | (((qh >> (j + 16)) & 1u) << 4)) - 16;
        y[j] = (float)x0 * d;
        y[j + QK / 2] = (float)x1 * d;
    }
}

static void decode_q5_1(const uint8_t *b, float *y)
{
    const float d = load_half(b), m = load_half(b + 2);
    const uint32_t qh = load_u32(b + 4);
    const uint8_t *qs = b + 8;
    for (int j = 0; j < QK / 2; j++) {
        const int x0 = (int)((qs[j] & 0x0F) | (((qh >> j) & 1u) << 4));
        const int x1 = (int)((qs[j] >> 4) | (((qh >> (j + 16)) & 1u) << 4));
        y[j] = (float)x0 * d + m;
        y[j + QK / 2] = (float)x1 * d + m;
    }
}

static void decode_q8_0(const uint8_t *b, float *y)
{
    const float d = load_half(b);
    for (int j = 0; j < QK; j++)
        y[j] = (float)(int8_t)b[2 + j] * d;
}

/* Q4_0 / Q5_0: d = (signed absmax) / -(levels/2), q = x/d + levels/2. */
static void encode_sym32(const float *x, uint8_t *b, int bits)
{
    const int mid = 1 << (bits - 1), top = (1 << bits) - 1;
    const float d = store_half(b, (double)signed_absmax(x, QK) / -mid, ROUND_AWAY);
    int q[QK];
    for (int j = 0; j < QK; j++)
        q[j] = d != 0.0f ? nearest_level(zero_nan(x[j]) / d + (float)mid, 0, top) : mid;
    uint8_t *qs = b + 2;
    if (bits == 5) {
        uint32_t qh = 0;
        for (int j = 0; j < QK; j++)
            qh |= (uint32_t)(q[j] >> 4) << j;
        for (int k = 0; k < 4; k++)
            qs[k] = (uint8_t)(qh >> (8 * k));
        qs += 4;
    }
    for (int j = 0; j < QK / 2; j++)
        qs[j] = (uint8_t)((q[j] & 0x0F) | ((q[j + QK / 2] & 0x0F) << 4));
}

/* Q4_1 / Q5_1: m = min, d = (max - min) / (levels - 1). */
static void encode_minmax32(const float *x, uint8_t *b, int bits)
{
    const int top = (1 << bits) - 1;
    float lo = INFINITY, hi = -INFINITY;
    for (int j = 0; j < QK; j++) {
        if (x[j] < lo)
            lo = x[j];
        if (x[j] > hi)
            hi = x[j];
    }
    if (!(lo <= hi)) /* all NaN */
        lo = hi = 0.0f;
    const float m = store_half(b + 2, lo, ROUND_DOWN);
    const float d = store_half(b, ((double)hi - (double)m) / top, ROUND_AWAY);
    int q[QK];
    for (int j = 0; j < QK; j++)
        q[j] = d != 0.0f ? nearest_level((zero_nan(x[j]) - m) / d, 0, top) : 0;
    uint8_t *qs = b + 4;
    if (bits == 5) {
        uint32_t qh = 0;
        for (int j = 0; j < QK; j++)
            qh |= (uint32_t)(q[j] >> 4) << j;
        for (int k = 0; k < 4; k++)
            qs[k] = (uint8_t)(qh >> (8 * k));
        qs += 4;
    }
    for (int j = 0; j < QK / 2; j++)
        qs[j] = (uint8_t)((q[j] & 0x0F) | ((q[j + QK / 2] & 0x0F) << 4));
}

static void encode_q8_0(const float *x, uint8_t *b)
{
    float amax = fabsf(signed_absmax(x, QK));
    const float d = store_half(b, (double)amax / 127.0, ROUND_AWAY);
    for (int j = 0; j < QK; j++)
        b[2 + j] = (uint8_t)(int8_t)(d != 0.0f ? nearest_level(zero_nan(x[j]) / d, -127, 127) : 0);
}

/* ---- k-quants: decoders ----------------------------------------------------- */

/* Q2_K: scales[16] (low nibble scale, high nibble min), qs[64], d, dmin. */
static void decode_q2_k(const uint8_t *b, float *y)
{
    const uint8_t *scales = b, *qs = b + 16;
    const float d = load_half(b + 80), dmin = load_half(b + 82);
    int is = 0;
    for (int half = 0; half < 2; half++) {
        const uint8_t *q = qs + 32 * half;
        for (int shift = 0; shift < 8; shift += 2) {
            for (int part = 0; part < 2; part++) {
                const uint8_t sc = scales[is++];
                const float dl = d * (float)(sc & 0xF), ml = dmin * (float)(sc >> 4);
                for (int l = 0; l < 16; l++)
                    *y++ = dl * (float)((q[16 * part + l] >> shift) & 3) - ml;
            }
        }
    }
}

/* The 16 six-bit Q3_K scales, unpacked from 12 bytes (minus the bias 32). */
static void unpack_q3_k_scales(const uint8_t *s, int sc[16])
{
    for (int i = 0; i < 16; i++) {
        const int low = i < 8 ? (s[i] & 0xF) : (s[i - 8] >> 4);
        const int high = (s[8 + (i & 3)] >> (2 * (i >> 2))) & 3;
        sc[i] = (low | (high << 4)) - 32;
    }
}

/* Q3_K: hmask[32], qs[64], scales[12], d. */
static void decode_q3_k(const uint8_t *b, float *y)
{
    const uint8_t *hmask = b, *qs = b + 32;
    const float d = load_half(b + 108);
    int sc[16];
    unpack_q3_k_scales(b + 96, sc);
    int is = 0;
    unsigned bit = 1;
    for (int half = 0; half < 2; half++) {
        const uint8_t *q = qs + 32 * half;
        for (int shift = 0; shift < 8; shift += 2, bit <<= 1) {
            for (int part = 0; part < 2; part++) {
                const float dl = d * (float)sc[is++];
                for (int l = 16 * part; l < 16 * part + 16; l++) {
                    const int v = (int)((q[l] >> shift) & 3) - ((hmask[l] & bit) ? 0 : 4);
                    *y++ = dl * (float)v;
                }
            }
        }
    }
}

/* The 6-bit scale and min of sub-block j (0..7) of Q4_K/Q5_K. */
static void k4_scale_min(const uint8_t *s, int j, int *sc, int *m)
{
    if (j < 4) {
        *sc = s[j] & 63;
        *m = s[j + 4] & 63;
    } else {
        *sc = (s[j + 4] & 0xF) | ((s[j - 4] >> 6) << 4);
        *m = (s[j + 4] >> 4) | ((s[j] >> 6) << 4);
    }
}

/* Q4_K: d, dmin, scales[12], qs[128]; Q5_K adds qh[32] before qs. */
static void decode_q45_k(const uint8_t *b, float *y, int five)
{
    const float d = load_half(b), dmin = load_half(b + 2);
    const uint8_t *scales = b + 4;
    const uint8_t *qh = b + 16;
    const uint8_t *ql = b + (five ? 48 : 16);
    for (int c = 0; c < 4; c++) {
        for (int part = 0; part < 2; part++) {
            int sc, m;
            k4_scale_min(scales, 2 * c + part, &sc, &m);
            const float dl = d * (float)sc, ml = dmin * (float)m;
            const int shift = 4 * part;
            const unsigned hbit = 1u << (2 * c + part);
            for (int l = 0; l < 32; l++) {
                int v = (ql[32 * c + l] >> shift) & 0xF;
                if (five && (qh[l] & hbit))
                    v += 16;
                *y++ = dl * (float)v - ml;
            }
        }
    }
}

/* Q6_K: ql[128], qh[64], int8 scales[16], d. */
static void decode_q6_k(const uint8_t *b, float *y)
{
    const uint8_t *ql = b, *qh = b + 128;
    const int8_t *sc = (const int8_t *)(b + 192);
    const float d = load_half(b + 208);
    for (int half = 0; half < 2; half++) {
        for (int l = 0; l < 32; l++) {
            const int is = l / 16;
            const int q1 = (int)((ql[l] & 0xF) | (((qh[l] >> 0) & 3) << 4)) - 32;
            const int q2 = (int)((ql[l + 32] & 0xF) | (((qh[l] >> 2) & 3) << 4)) - 32;
            const int q3 = (int)((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32;
            const int q4 = (int)((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32;
            y[l] = d * (float)sc[is] * (float)q1;
            y[l + 32] = d * (float)sc[is + 2] * (float)q2;
            y[l + 64] = d * (float)sc[is + 4] * (float)q3;
            y[l + 96] = d * (float)sc[is + 6] * (float)q4;
        }
        y += 128;
        ql += 64;
        qh += 32;
        sc += 8;
    }
}

/* ---- k-quants: encoders ----------------------------------------------------- */

/* Weights of `nsub` sub-blocks of `len`: value = d*sc*q - dmin*m with q in
 * 0..qmax and sc, m in 0..smax.  Writes d and dmin at `dm`/`dm + 2` and the
 * chosen sc, m and q. */
static void kquant_with_min(const float *x, int nsub, int len, int qmax, int smax, uint8_t *dm, int *sc, int *mn,
                            int *q)
{
    double lo[16], hi[16], span[16];
    double max_neg = 0.0;
    for (int j = 0; j < nsub; j++) {
        double l = 0.0, h = -INFINITY; /* the format's offset -dmin*m is <= 0 */
        for (int i = 0; i < len; i++) {
            double v = x[j * len + i];
            if (v < l)
                l = v;
            if (v > h)
                h = v;
        }
        if (!(h >= l))
            h = l; /* all NaN, or all below the clamped minimum: empty range */
        lo[j] = l;
        hi[j] = h;
        if (-l > max_neg)
            max_neg = -l;
    }
    /* Mins first, so each scale covers [-stored min, max]. */
    const float dmin = store_half(dm + 2, max_neg / smax, ROUND_AWAY);
    float ml[16];
    double max_span = 0.0;
    for (int j = 0; j < nsub; j++) {
        mn[j] = dmin != 0.0f ? nearest_level((float)(-lo[j] / dmin), 0, smax) : 0;
        ml[j] = dmin * (float)mn[j];
        span[j] = (hi[j] + ml[j]) / qmax;
        if (span[j] < 0.0)
            span[j] = 0.0;
        if (span[j] > max_span)
            max_span = span[j];
    }
    const float d = store_half(dm, max_span / smax, ROUND_AWAY);
    for (int j = 0; j < nsub; j++) {
        sc[j] = d != 0.0f ? nearest_level((float)(span[j] / d), 0, smax) : 0;
        const float dl = d * (float)sc[j];
        for (int i = 0; i < len; i++)
            q[j * len + i] = dl != 0.0f ? nearest_level((zero_nan(x[j * len + i]) + ml[j]) / dl, 0, qmax) : 0;
    }
}

/* Weights of 16 sub-blocks of 16: value = d*sc*q with q in -qhalf..qhalf-1
 * and sc in -shalf..shalf-1.  Writes d at `dp`; q is returned biased by
 * +qhalf (0..2*qhalf-1). */
static void kquant_symmetric(const float *x, int qhalf, int shalf, uint8_t *dp, int sc[16], int q[QK_K])
{
    double s[16], smax = 0.0;
    for (int j = 0; j < 16; j++) {
        s[j] = (double)signed_absmax(x + 16 * j, 16) / -qhalf;
        if (fabs(s[j]) > fabs(smax))
            smax = s[j];
    }
    const float d = store_half(dp, smax / -shalf, ROUND_AWAY);
    for (int j = 0; j < 16; j++) {
        sc[j] = d != 0.0f ? nearest_level((float)(s[j] / d), -shalf, shalf - 1) : 0;
        const float dl = d * (float)sc[j];
        for (int i = 0; i < 16; i++)
            q[16 * j + i] = dl != 0.0f ? nearest_level(zero_nan(x[16 * j + i]) / dl, -qhalf, qhalf - 1) + qhalf : qhalf;
    }
}

static void encode_q2_k(const float *x, uint8_t *b)
{
    int sc[16], mn[16], q[QK_K];
    kquant_with_min(x, 16, 16, 3, 15, b + 80, sc, mn, q);
    for (int j = 0; j < 16; j++)
        b[j] = (uint8_t)(sc[j] | (mn[j] << 4));
    uint8_t *qs = b + 16;
    /* Element 128*h + 32*k + l sits in byte 32*h + l at bits 2k. */
    for (int h = 0; h < 2; h++)
        for (int l = 0; l < 32; l++) {
            const int *e = q + 128 * h + l;
            qs[32 * h + l] = (uint8_t)(e[0] | (e[32] << 2) | (e[64] << 4) | (e[96] << 6));
        }
}

static void encode_q3_k(const float *x, uint8_t *b)
{
    int sc[16], q[QK_K];
    kquant_symmetric(x, 4, 32, b + 108, sc, q);
    uint8_t *hmask = b, *qs = b + 32, *scales = b + 96;
    memset(hmask, 0, 32);
    memset(scales, 0, 12);
    for (int i = 0; i < 16; i++) {
        const int u = sc[i] + 32;
        if (i < 8)
            scales[i] |= (uint8_t)(u & 0xF);
        else
            scales[i - 8] |= (uint8_t)((u & 0xF) << 4);
        scales[8 + (i & 3)] |= (uint8_t)((u >> 4) << (2 * (i >> 2)));
    }
    /* Element 128*h + 32*k + l: low bits in qs[32*h + l] at 2k, high bit in
     * hmask[l] bit 4*h + k. */
    for (int h = 0; h < 2; h++)
        for (int l = 0; l < 32; l++) {
            uint8_t packed = 0;
            for (int k = 0; k < 4; k++) {
                const int v = q[128 * h + 32 * k + l];
                packed |= (uint8_t)((v & 3) << (2 * k));
                hmask[l] |= (uint8_t)((v >> 2) << (4 * h + k));
            }
            qs[32 * h + l] = packed;
        }
}

static void pack_k4_scales(const int sc[8], const int mn[8], uint8_t *s)
{
    for (int j = 0; j < 4; j++) {
        s[j] = (uint8_t)(sc[j] | ((sc[j + 4] >> 4) << 6));
        s[j + 4] = (uint8_t)(mn[j] | ((mn[j + 4] >> 4) << 6));
        s[j + 8] = (uint8_t)((sc[j + 4] & 0xF) | ((mn[j + 4] & 0xF) << 4));
    }
}

static void encode_q45_k(const float *x, uint8_t *b, int five)
{
    int sc[8], mn[8], q[QK_K];
    kquant_with_min(x, 8, 32, five ? 31 : 15, 63, b, sc, mn, q);
    pack_k4_scales(sc, mn, b + 4);
    uint8_t *qh = b + 16, *ql = b + (five ? 48 : 16);
    if (five)
        memset(qh, 0, 32);
    /* Element 64*c + 32*p + l: nibble p of ql[32*c + l], fifth bit in
     * qh[l] bit 2c + p. */
    for (int c = 0; c < 4; c++)
        for (int l = 0; l < 32; l++) {
            const int v0 = q[64 * c + l], v1 = q[64 * c + 32 + l];
            ql[32 * c + l] = (uint8_t)((v0 & 0xF) | ((v1 & 0xF) << 4));
            if (five)
                qh[l] |= (uint8_t)(((v0 >> 4) << (2 * c)) | ((v1 >> 4) << (2 * c + 1)));
        }
}

static void encode_q6_k(const float *x, uint8_t *b)
{
    int sc[16], q[QK_K];
    kquant_symmetric(x, 32, 128, b + 208, sc, q);
    uint8_t *ql = b, *qh = b + 128;
    int8_t *scales = (int8_t *)(b + 192);
    for (int j = 0; j < 16; j++)
        scales[j] = (int8_t)sc[j];
    /* Element 128*h + 32*k + l: low nibble in ql[64*h + l + 32*(k&1)] (nibble
     * k>>1), high two bits in qh[32*h + l] at 2k. */
    for (int h = 0; h < 2; h++)
        for (int l = 0; l < 32; l++) {
            const int *e = q + 128 * h + l;
            ql[64 * h + l] = (uint8_t)((e[0] & 0xF) | ((e[64] & 0xF) << 4));
            ql[64 * h + l + 32] = (uint8_t)((e[32] & 0xF) | ((e[96] & 0xF) << 4));
            qh[32 * h + l] = (uint8_t)((e[0] >> 4) | ((e[32] >> 4) << 2) | ((e[64] >> 4) << 4) | ((e[96] >> 4) << 6));
        }
}

/* ---- entry points ----------------------------------------------------------- */

void vd_quant_decode(vd_dtype type, const void *src, float *dst, int64_t nblocks)
{
    const vd_dtype_traits *t = vd_dtype_info(type);
    if (!t || !t->is_quantized)
        return;
    const uint8_t *b = src;
    const size_t bb = (size_t)t->block_bytes, be = (size_t)t->block_elems;
    for (int64_t i = 0; i < nblocks; i++, b += bb, dst += be) {
        switch (type) {
        case VD_Q4_0: decode_q4_0(b, dst); break;
        case VD_Q4_1: decode_q4_1(b, dst); break;
        case VD_Q5_0: decode_q5_0(b, dst); break;
        case VD_Q5_1: decode_q5_1(b, dst); break;
        case VD_Q8_0: decode_q8_0(b, dst); break;
        case VD_Q2_K: decode_q2_k(b, dst); break;
        case VD_Q3_K: decode_q3_k(b, dst); break;
        case VD_Q4_K: decode_q45_k(b, dst, 0); break;
        case VD_Q5_K: decode_q45_k(b, dst, 1); break;
        case VD_Q6_K: decode_q6_k(b, dst); break;
        default: return;
        }
    }
}

void vd_quant_encode(vd_dtype type, const float *src, void *dst, int64_t nblocks)
{
    const vd_dtype_traits *t = vd_dtype_info(type);
    if (!t || !t->is_quantized)
        return;
    uint8_t *b = dst;
    const size_t bb = (size_t)t->block_bytes, be = (size_t)t->block_elems;
    for (int64_t i = 0; i < nblocks; i++, b += bb, src += be) {
        switch (type) {
        case VD_Q4_0: encode_sym32(src, b, 4); break;
        case VD_Q4_1: encode_minmax32(src, b, 4); break;
        case VD_Q5_0: encode_sym32(src, b, 5); break;
        case VD_Q5_1: encode_minmax32(src, b, 5); break;
        case VD_Q8_0: encode_q8_0(src, b); break;
        case VD_Q2_K: encode_q2_k(src, b); break;
        case VD_Q3_K: encode_q3_k(src, b); break;
        case VD_Q4_K: encode_q45_k(src, b, 0); break;
        case VD_Q5_K: encode_q45_k(src, b, 1); break;
        case VD_Q6_K: encode_q6_k(src, b); break;
        default: return;
        }
    }
}

/* GGUF block formats (engine/core/quant.c).
 *
 * (a) vd_quant_decode against an independent decoder written here from the
 *     published bit layouts: one element at a time, every field read from a
 *     little-endian bit stream at its bit offset.  The float formula of each
 *     format (the same operations, in the same order, as ggml's
 *     dequantize_row_*) is evaluated for that element, so the comparison is
 *     bit-exact.  A few hand-built blocks with literal expected values pin
 *     the layouts down independently of both decoders.
 * (b) encode -> decode error bounds on random normal data.
 * (c) edge cases: zero, constant, outlier, tiny, huge and NaN blocks. */
#include <math.h>
#include <string.h>
#include <time.h>

#include "core/dtype.h"
#include "core/quant.h"
#include "test_util.h"

static const vd_dtype quant_types[] = {VD_Q4_0, VD_Q4_1, VD_Q5_0, VD_Q5_1, VD_Q8_0,
                                       VD_Q2_K, VD_Q3_K, VD_Q4_K, VD_Q5_K, VD_Q6_K};
#define NTYPES (int)(sizeof quant_types / sizeof quant_types[0])

/* ---- the independent reference decoder ------------------------------------ */

/* `n` bits (n <= 8) starting at bit `pos` of a little-endian bit stream. */
static unsigned bits(const uint8_t *p, int pos, int n)
{
    unsigned v = 0;
    for (int i = 0; i < n; i++) {
        int b = pos + i;
        v |= (unsigned)((p[b >> 3] >> (b & 7)) & 1) << i;
    }
    return v;
}

static float half_field(const uint8_t *p, int byte) { return vd_f16_to_f32((uint16_t)(bits(p, 8 * byte, 8) | (bits(p, 8 * byte + 8, 8) << 8))); }

/* Element e of one block of `type`.  Comments give each field's byte
 * offset in the block. */
static float ref_element(vd_dtype type, const uint8_t *p, int e)
{
    switch (type) {
    case VD_Q4_0: { /* d@0, nibbles@2: byte 2 + e%16, low nibble for e < 16 */
        int q = (int)bits(p, 8 * (2 + e % 16) + 4 * (e / 16), 4);
        return (float)(q - 8) * half_field(p, 0);
    }
    case VD_Q4_1: { /* d@0, m@2, nibbles@4 */
        int q = (int)bits(p, 8 * (4 + e % 16) + 4 * (e / 16), 4);
        return (float)q * half_field(p, 0) + half_field(p, 2);
    }
    case VD_Q5_0: { /* d@0, 32 high bits@2 (bit e), nibbles@6 */
        int q = (int)(bits(p, 8 * (6 + e % 16) + 4 * (e / 16), 4) | (bits(p, 16 + e, 1) << 4));
        return (float)(q - 16) * half_field(p, 0);
    }
    case VD_Q5_1: { /* d@0, m@2, high bits@4, nibbles@8 */
        int q = (int)(bits(p, 8 * (8 + e % 16) + 4 * (e / 16), 4) | (bits(p, 32 + e, 1) << 4));
        return (float)q * half_field(p, 0) + half_field(p, 2);
    }
    case VD_Q8_0: /* d@0, int8@2 */
        return (float)(int8_t)bits(p, 8 * (2 + e), 8) * half_field(p, 0);
    case VD_Q2_K: { /* scales@0 (scale | min << 4 per 16), qs@16, d@80, dmin@82 */
        int s = e / 16, h = e / 128, k = (e % 128) / 32, l = e % 32;
        int sc = (int)bits(p, 8 * s, 4), m = (int)bits(p, 8 * s + 4, 4);
        int q = (int)bits(p, 8 * (16 + 32 * h + l) + 2 * k, 2);
        float dl = half_field(p, 80) * (float)sc, ml = half_field(p, 82) * (float)m;
        return dl * (float)q - ml;
    }
    case VD_Q3_K: { /* hmask@0, qs@32, scales@96 (12 B of 6-bit scales), d@108 */
        int s = e / 16, h = e / 128, k = (e % 128) / 32, l = e % 32;
        int low4 = s < 8 ? (int)bits(p, 8 * (96 + s), 4) : (int)bits(p, 8 * (96 + s - 8) + 4, 4);
        int high2 = (int)bits(p, 8 * (96 + 8 + s % 4) + 2 * (s / 4), 2);
        int sc = (low4 | (high2 << 4)) - 32;
        int q = (int)bits(p, 8 * (32 + 32 * h + l) + 2 * k, 2) + 4 * (int)bits(p, 8 * l + 4 * h + k, 1) - 4;
        float dl = half_field(p, 108) * (float)sc;
        return dl * (float)q;
    }
    case VD_Q4_K:
    case VD_Q5_K: { /* d@0, dmin@2, scales@4 (8 x 6-bit scale and min), [qh@16], qs@16 or 48 */
        int j = e / 32, c = e / 64, part = (e % 64) / 32, l = e % 32;
        int sc, m;
        if (j < 4) {
            sc = (int)bits(p, 8 * (4 + j), 6);
            m = (int)bits(p, 8 * (4 + j + 4), 6);
        } else {
            sc = (int)(bits(p, 8 * (4 + j + 4), 4) | (bits(p, 8 * (4 + j - 4) + 6, 2) << 4));
            m = (int)(bits(p, 8 * (4 + j + 4) + 4, 4) | (bits(p, 8 * (4 + j) + 6, 2) << 4));
        }
        int qs = type == VD_Q5_K ? 48 : 16;
        int q = (int)bits(p, 8 * (qs + 32 * c + l) + 4 * part, 4);
        if (type == VD_Q5_K)
            q += 16 * (int)bits(p, 8 * (16 + l) + 2 * c + part, 1);
        float dl = half_field(p, 0) * (float)sc, ml = half_field(p, 2) * (float)m;
        return dl * (float)q - ml;
    }
    case VD_Q6_K: { /* ql@0, qh@128, int8 scales@192, d@208 */
        int h = e / 128, k = (e % 128) / 32, l = e % 32;
        int low = (int)bits(p, 8 * (64 * h + l + 32 * (k & 1)) + 4 * (k >> 1), 4);
        int high = (int)bits(p, 8 * (128 + 32 * h + l) + 2 * k, 2);
        int sc = (int8_t)bits(p, 8 * (192 + e / 16), 8);
        return half_field(p, 208) * (float)sc * (float)((low | (high << 4)) - 32);
    }
    default:
        return NAN;
    }
}

/* Byte offsets of the half fields of each type. */
static int half_offsets(vd_dtype type, int off[2])
{
    switch (type) {
    case VD_Q4_0: case VD_Q5_0: case VD_Q8_0: off[0] = 0; return 1;
    case VD_Q4_1: case VD_Q5_1: case VD_Q4_K: case VD_Q5_K: off[0] = 0; off[1] = 2; return 2;
    case VD_Q2_K: off[0] = 80; off[1] = 82; return 2;
    case VD_Q3_K: off[0] = 108; return 1;
    case VD_Q6_K: off[0] = 208; return 1;
    default: return 0;
    }
}

static uint32_t rand_word(uint64_t seed, uint64_t i)
{
    uint32_t w[4];
    vd_philox4x32(seed, 7, i, w);
    return w[0];
}

/* A finite half: any sign, exponent 0..30 (zero and subnormals included). */
static uint16_t random_finite_half(uint32_t r)
{
    uint16_t h = (uint16_t)(r & 0xffff);
    if (((h >> 10) & 0x1f) == 0x1f)
        h = (uint16_t)(h & ~(1u << 14)); /* exponent 31 -> 15 */
    return h;
}

static void test_decode_matches_reference(void)
{
    enum { NB = 300 };
    for (int t = 0; t < NTYPES; t++) {
        vd_dtype type = quant_types[t];
        const vd_dtype_traits *tr = vd_dtype_info(type);
        size_t bytes = (size_t)NB * (size_t)tr->block_bytes;
        uint8_t *blocks = malloc(bytes);
        float *out = malloc(sizeof(float) * NB * (size_t)tr->block_elems);
        CHECK(blocks && out);
        for (size_t i = 0; i < bytes; i++)
            blocks[i] = (uint8_t)(rand_word(100 + (uint64_t)t, i) >> 24);
        for (int b = 0; b < NB; b++) {
            int off[2], n = half_offsets(type, off);
            for (int k = 0; k < n; k++) {
                uint16_t h = random_finite_half(rand_word(200 + (uint64_t)t, (uint64_t)(2 * b + k)));
                if (b < 4) /* pin a few to zero, one, largest and smallest half */
                    h = (uint16_t[]){0x0000, 0x3c00, 0x7bff, 0x0001}[b];
                blocks[(size_t)b * (size_t)tr->block_bytes + (size_t)off[k]] = (uint8_t)h;
                blocks[(size_t)b * (size_t)tr->block_bytes + (size_t)off[k] + 1] = (uint8_t)(h >> 8);
            }
        }
        vd_quant_decode(type, blocks, out, NB);
        int mismatches = 0;
        for (int b = 0; b < NB; b++)
            for (int e = 0; e < tr->block_elems; e++) {
                float want = ref_element(type, blocks + (size_t)b * (size_t)tr->block_bytes, e);
                float got = out[(size_t)b * (size_t)tr->block_elems + (size_t)e];
                uint32_t wb, gb;
                memcpy(&wb, &want, 4);
                memcpy(&gb, &got, 4);
                if (wb != gb && mismatches++ < 5)
                    fprintf(stderr, "%s block %d element %d: decoded %.9g, reference %.9g\n", tr->name, b, e,
                            (double)got, (double)want);
                CHECK(isfinite(got));
            }
        CHECKF(mismatches == 0, "%s: %d elements differ from the reference decoder", tr->name, mismatches);

        /* The dtype entry point is the same decoder. */
        float *via_dtype = malloc(sizeof(float) * NB * (size_t)tr->block_elems);
        CHECK_OK(vd_dtype_to_f32(type, blocks, via_dtype, (int64_t)NB * tr->block_elems));
        CHECK(memcmp(via_dtype, out, sizeof(float) * NB * (size_t)tr->block_elems) == 0);
        free(via_dtype);
        free(blocks);
        free(out);
    }
}

/* Hand-built blocks whose values follow from the format descriptions alone
 * (d = 1.0 is the half 0x3c00, 0.5 is 0x3800, 2.0 is 0x4000). */
static void test_literal_blocks(void)
{
    float y[256];
    uint8_t b[210];

    /* Q4_0: qs[j] = j | (15-j) << 4: elements 0..15 are j-8, 16..31 are 7-j. */
    memset(b, 0, sizeof b);
    b[0] = 0x00, b[1] = 0x3c;
    for (int j = 0; j < 16; j++)
        b[2 + j] = (uint8_t)(j | ((15 - j) << 4));
    vd_quant_decode(VD_Q4_0, b, y, 1);
    for (int j = 0; j < 16; j++) {
        CHECK(y[j] == (float)(j - 8));
        CHECK(y[j + 16] == (float)(7 - j));
    }

    /* Q4_1: d = 0.5, m = 2.0, all nibbles 3 -> 3.5. */
    memset(b, 0, sizeof b);
    b[1] = 0x38, b[3] = 0x40;
    memset(b + 4, 0x33, 16);
    vd_quant_decode(VD_Q4_1, b, y, 1);
    for (int j = 0; j < 32; j++)
        CHECK(y[j] == 3.5f);

    /* Q5_0: d = 1, qh = bit 1 and bit 17, nibbles 0: element 1 and 17 are
     * 16-16 = 0, the rest -16. */
    memset(b, 0, sizeof b);
    b[1] = 0x3c;
    b[2] = 0x02, b[4] = 0x02;
    vd_quant_decode(VD_Q5_0, b, y, 1);
    for (int j = 0; j < 32; j++)
        CHECK(y[j] == ((j == 1 || j == 17) ? 0.0f : -16.0f));

    /* Q5_1: d = 1, m = 0.5, qh = bit 31 only, nibbles 1: element 31 is 17.5. */
    memset(b, 0, sizeof b);
    b[1] = 0x3c, b[3] = 0x38;
    b[7] = 0x80;
    memset(b + 8, 0x11, 16);
    vd_quant_decode(VD_Q5_1, b, y, 1);
    for (int j = 0; j < 32; j++)
        CHECK(y[j] == (j == 31 ? 17.5f : 1.5f));

    /* Q8_0: d = 0.5, q = j - 16. */
    memset(b, 0, sizeof b);
    b[1] = 0x38;
    for (int j = 0; j < 32; j++)
        b[2 + j] = (uint8_t)(int8_t)(j - 16);
    vd_quant_decode(VD_Q8_0, b, y, 1);
    for (int j = 0; j < 32; j++)
        CHECK(y[j] == 0.5f * (float)(j - 16));

    /* Q2_K: d = 1, dmin = 0.5; sub-block 5 (elements 80..95) has scale 3,
     * min 2; qs byte 16 + 16 (element 80 = half 0, k 2, l 16) = 0x30
     * (bits 4-5 = 3): element 80 is 3*3 - 1 = 8, elements 81..95 are -1. */
    memset(b, 0, sizeof b);
    b[80] = 0x00, b[81] = 0x3c, b[82] = 0x00, b[83] = 0x38;
    b[5] = 0x23;
    b[16 + 16] = 0x30;
    vd_quant_decode(VD_Q2_K, b, y, 1);
    CHECK(y[80] == 8.0f);
    for (int j = 81; j < 96; j++)
        CHECK(y[j] == -1.0f);
    CHECK(y[0] == 0.0f && y[255] == 0.0f);

    /* Q3_K: d = 1; scale 9 (elements 144..159) = 37 - 32 = 5: 37 = 0b100101:
     * low nibble 5 in the high nibble of scales[1], high bits 2 in
     * scales[8 + 1] bits 4-5.  Element 144 (half 1, k 0, l 16): qs[32+32+16]
     * = 3, hmask[16] bit 4 set -> q = 3: value 15.  Element 145: q bits 0,
     * hmask clear -> -4: value -20. */
    memset(b, 0, sizeof b);
    b[108] = 0x00, b[109] = 0x3c;
    b[96 + 1] = 0x50;
    b[96 + 9] = 0x20;
    b[32 + 32 + 16] = 0x03;
    b[16] = 0x10;
    vd_quant_decode(VD_Q3_K, b, y, 1);
    CHECK(y[144] == 15.0f);
    CHECK(y[145] == -20.0f);
    CHECK(y[0] == 128.0f); /* zero bytes: scale 0 - 32 = -32, q = 0 - 4 */

    /* Q4_K: d = 1, dmin = 1; sub-block 6 (elements 192..223): scale 33 =
     * 0b100001 -> low nibble 1 in scales[6+4] low, high 2 in scales[2] bits
     * 6-7; min 18 = 0b010010 -> low nibble 2 in scales[10] high, high 1 in
     * scales[6] bits 6-7.  qs[16 + 32*3 + 0] low nibble 7: element 192 is
     * 33*7 - 18 = 213; element 193 is -18. */
    memset(b, 0, sizeof b);
    b[1] = 0x3c, b[3] = 0x3c;
    b[4 + 10] = 0x21;
    b[4 + 2] = 0x80;
    b[4 + 6] = 0x40;
    b[16 + 96] = 0x07;
    vd_quant_decode(VD_Q4_K, b, y, 1);
    CHECK(y[192] == 213.0f);
    CHECK(y[193] == -18.0f);
    CHECK(y[0] == 0.0f);

    /* Q5_K: d = 2, dmin = 0; sub-block 1 scale 3 (scales[1] = 3); element
     * 32 + 5 = high nibble of qs[48 + 5] = 4 plus qh[5] bit 1 -> 20: value
     * 2*3*20 = 120. */
    memset(b, 0, sizeof b);
    b[1] = 0x40;
    b[4 + 1] = 3;
    b[48 + 5] = 0x40;
    b[16 + 5] = 0x02;
    vd_quant_decode(VD_Q5_K, b, y, 1);
    CHECK(y[37] == 120.0f);
    CHECK(y[36] == 0.0f && y[5] == 0.0f);

    /* Q6_K: d = 0.5, scales all -2; element 128 + 96 + 3 (half 1, k 3, l 3):
     * high nibble of ql[64 + 3 + 32], bits 6-7 of qh[32 + 3]: q = 0x3f - 32
     * = 31: value 0.5 * -2 * 31 = -31.  All other elements q = 0 - 32. */
    memset(b, 0, sizeof b);
    b[208] = 0x00, b[209] = 0x38;
    memset(b + 192, 0xfe, 16);
    b[64 + 3 + 32] = 0xf0;
    b[128 + 32 + 3] = 0xc0;
    vd_quant_decode(VD_Q6_K, b, y, 1);
    CHECK(y[227] == -31.0f);
    CHECK(y[226] == 32.0f && y[0] == 32.0f);
}

/* ---- encoder accuracy ---------------------------------------------------- */

/* Bound on ‖decode(encode(x)) − x‖₂ / ‖x‖₂ for x ~ N(0, 1), per type.
 * Measured with this encoder on 64 Ki values (seed 11): q4_0 0.086,
 * q4_1 0.078, q5_0 0.043, q5_1 0.038, q8_0 0.0053, q2_k 0.328,
 * q3_k 0.155, q4_k 0.079, q5_k 0.038, q6_k 0.019.  Each bound leaves about
 * 20-25 % margin; all sit well inside the rule-of-thumb limits for the bit
 * width (4 bits ≤ 0.12, 5 bits ≤ 0.06, q6_k ≤ 0.03, q3_k ≤ 0.25,
 * q2_k ≤ 0.5). */
static double rel_l2_bound(vd_dtype type)
{
    switch (type) {
    case VD_Q4_0: return 0.105;
    case VD_Q4_1: return 0.095;
    case VD_Q5_0: return 0.053;
    case VD_Q5_1: return 0.047;
    case VD_Q8_0: return 0.0066;
    case VD_Q2_K: return 0.40;
    case VD_Q3_K: return 0.19;
    case VD_Q4_K: return 0.097;
    case VD_Q5_K: return 0.047;
    case VD_Q6_K: return 0.023;
    default: return 0;
    }
}

static void *encode_alloc(vd_dtype type, int64_t n)
{
    size_t bytes = 0;
    CHECK_OK(vd_dtype_nbytes(type, n, &bytes));
    void *p = malloc(bytes ? bytes : 1);
    if (!p) {
        fprintf(stderr, "out of memory\n");
        exit(1);
    }
    return p;
}

static void roundtrip(vd_dtype type, const float *x, float *y, int64_t n)
{
    void *q = encode_alloc(type, n);
    CHECK_OK(vd_dtype_from_f32(type, x, q, n));
    CHECK_OK(vd_dtype_to_f32(type, q, y, n));
    free(q);
}

static void test_roundtrip_error(void)
{
    enum { N = 65536 };
    float *x = malloc(sizeof(float) * N), *y = malloc(sizeof(float) * N);
    CHECK(x && y);
    vd_rng_normal(11, 0, 0, x, N);
    for (int t = 0; t < NTYPES; t++) {
        vd_dtype type = quant_types[t];
        roundtrip(type, x, y, N);
        double e = rel_l2(y, x, N);
        printf("%-5s rel L2 %.4f (bound %.3f)\n", vd_dtype_name(type), e, rel_l2_bound(type));
        CHECKF(e <= rel_l2_bound(type), "%s: relative L2 error %.4f above %.4f", vd_dtype_name(type), e,
               rel_l2_bound(type));
        /* Encoding the decoded values again is stable: they lie on the grid,
         * so a second round trip moves them very little. */
        float *z = malloc(sizeof(float) * N);
        roundtrip(type, y, z, N);
        double e2 = rel_l2(z, y, N);
        CHECKF(e2 <= rel_l2_bound(type), "%s: second round trip moved values by %.4f", vd_dtype_name(type), e2);
        free(z);
    }

    /* Q8_0 per element: |error| <= d/2 with d the block's stored scale
     * (absmax/127 rounded to half), plus float rounding of x/d. */
    void *q = encode_alloc(VD_Q8_0, N);
    CHECK_OK(vd_dtype_from_f32(VD_Q8_0, x, q, N));
    CHECK_OK(vd_dtype_to_f32(VD_Q8_0, q, y, N));
    int bad = 0;
    for (int b = 0; b < N / 32; b++) {
        const uint8_t *blk = (const uint8_t *)q + 34 * b;
        float d = vd_f16_to_f32((uint16_t)(blk[0] | (blk[1] << 8)));
        for (int j = 0; j < 32; j++)
            if (fabsf(y[32 * b + j] - x[32 * b + j]) > 0.5f * fabsf(d) * (1.0f + 1e-5f))
                bad++;
    }
    CHECKF(bad == 0, "q8_0: %d elements off by more than half a step", bad);
    free(q);

    /* Q4_0 / Q5_0: |error| <= |d| (half a step, except that values of the
     * opposite sign to the block's extreme may clamp at the top level, a
     * full step below). */
    for (int k = 0; k < 2; k++) {
        vd_dtype type = k ? VD_Q5_0 : VD_Q4_0;
        int bb = k ? 22 : 18;
        q = encode_alloc(type, N);
        CHECK_OK(vd_dtype_from_f32(type, x, q, N));
        CHECK_OK(vd_dtype_to_f32(type, q, y, N));
        bad = 0;
        for (int b = 0; b < N / 32; b++) {
            const uint8_t *blk = (const uint8_t *)q + bb * b;
            float d = vd_f16_to_f32((uint16_t)(blk[0] | (blk[1] << 8)));
            for (int j = 0; j < 32; j++)
                if (fabsf(y[32 * b + j] - x[32 * b + j]) > fabsf(d) * (1.0f + 1e-5f))
                    bad++;
        }
        CHECKF(bad == 0, "%s: %d elements off by more than a step", vd_dtype_name(type), bad);
        free(q);
    }

    /* Q4_1 / Q5_1: the stored min is rounded down and the step up, so every
     * value lies inside [m, m + top*d]: |error| <= d/2, plus float rounding
     * of (x - m) / d and of q*d + m. */
    for (int k = 0; k < 2; k++) {
        vd_dtype type = k ? VD_Q5_1 : VD_Q4_1;
        int bb = k ? 24 : 20;
        q = encode_alloc(type, N);
        CHECK_OK(vd_dtype_from_f32(type, x, q, N));
        CHECK_OK(vd_dtype_to_f32(type, q, y, N));
        bad = 0;
        for (int b = 0; b < N / 32; b++) {
            const uint8_t *blk = (const uint8_t *)q + bb * b;
            float d = vd_f16_to_f32((uint16_t)(blk[0] | (blk[1] << 8)));
            float m = vd_f16_to_f32((uint16_t)(blk[2] | (blk[3] << 8)));
            float tol = 0.5f * d * (1.0f + 1e-5f) + 2e-7f * (fabsf(m) + 31.0f * d);
            for (int j = 0; j < 32; j++)
                if (fabsf(y[32 * b + j] - x[32 * b + j]) > tol)
                    bad++;
        }
        CHECKF(bad == 0, "%s: %d elements off by more than half a step", vd_dtype_name(type), bad);
        free(q);
    }
    free(x);
    free(y);
}

/* ---- edge cases -------------------------------------------------------------- */

static bool all_finite(const float *y, int n)
{
    for (int i = 0; i < n; i++)
        if (!isfinite(y[i]))
            return false;
    return true;
}

static void test_edge_cases(void)
{
    float x[256], y[256];
    for (int t = 0; t < NTYPES; t++) {
        vd_dtype type = quant_types[t];
        const char *name = vd_dtype_name(type);
        const int n = 256; /* one K block or eight 32-blocks */

        /* All zeros decode to exact (positive) zeros. */
        memset(x, 0, sizeof x);
        roundtrip(type, x, y, n);
        for (int i = 0; i < n; i++) {
            uint32_t bits_y;
            memcpy(&bits_y, &y[i], 4);
            CHECKF(bits_y == 0, "%s: zero block decodes element %d to %g", name, i, (double)y[i]);
        }

        /* Constant blocks: every element comes back as the constant to
         * about half precision (the stored scales are the only rounding).
         * Below 2^-14 a half scale is a multiple of 2^-24, and a constant is
         * that scale times up to 256 units (q3_k: scale 32 x level 4, plus
         * the super-block factor), hence the absolute term. */
        const float constants[] = {0.7f, -3.1f, 1234.5f, -0.001f};
        for (int c = 0; c < 4; c++) {
            for (int i = 0; i < n; i++)
                x[i] = constants[c];
            roundtrip(type, x, y, n);
            float worst = 0;
            for (int i = 0; i < n; i++)
                worst = fmaxf(worst, fabsf(y[i] - x[i]));
            CHECKF(worst <= 2e-3f * fabsf(constants[c]) + 256.0f * 0x1p-24f, "%s: constant %g decodes with error %g", name,
                   (double)constants[c], (double)worst);
        }

        /* One large outlier among N(0,1) values: the outlier survives to 1 %,
         * the others stay within a few units (their scale is swamped), and
         * nothing overflows. */
        for (int sign = -1; sign <= 1; sign += 2) {
            vd_rng_normal(21, (uint64_t)t, 0, x, n);
            x[77] = 1000.0f * (float)sign;
            roundtrip(type, x, y, n);
            CHECKF(all_finite(y, n), "%s: outlier block decodes to non-finite values", name);
            CHECKF(fabsf(y[77] - x[77]) <= 10.0f, "%s: outlier %g decodes to %g", name, (double)x[77], (double)y[77]);
            float worst = 0;
            for (int i = 0; i < n; i++)
                if (i != 77)
                    worst = fmaxf(worst, fabsf(y[i] - x[i]));
            CHECKF(worst <= 10.0f, "%s: with an outlier, other elements are off by %g", name, (double)worst);
        }

        /* Tiny values (1e-6, below half precision's normal range): finite,
         * and never further from the input than the block's largest
         * magnitude (the scale may round to zero). */
        vd_rng_normal(22, (uint64_t)t, 0, x, n);
        float amax = 0;
        for (int i = 0; i < n; i++) {
            x[i] *= 1e-6f;
            amax = fmaxf(amax, fabsf(x[i]));
        }
        roundtrip(type, x, y, n);
        CHECKF(all_finite(y, n), "%s: tiny values decode to non-finite values", name);
        for (int i = 0; i < n; i++)
            CHECKF(fabsf(y[i] - x[i]) <= 2.0f * amax, "%s: tiny element %d: %g -> %g", name, i, (double)x[i],
                   (double)y[i]);

        /* Small but representable (1e-3: the k-quants' super-block scales
         * are half subnormals): the error stays as for N(0, 1), with 30 %
         * room for the smaller sample (measured within 10 % of it). */
        vd_rng_normal(23, (uint64_t)t, 0, x, n);
        for (int i = 0; i < n; i++)
            x[i] *= 1e-3f;
        roundtrip(type, x, y, n);
        double e = rel_l2(y, x, n);
        CHECKF(e <= 1.3 * rel_l2_bound(type), "%s: values of 1e-3 have relative error %.4f", name, e);

        /* Huge magnitudes saturate at the largest half scale instead of
         * overflowing to inf or NaN. */
        vd_rng_normal(24, (uint64_t)t, 0, x, n);
        for (int i = 0; i < n; i++)
            x[i] *= (i % 3 == 0) ? 3e38f : 1e9f;
        roundtrip(type, x, y, n);
        CHECKF(all_finite(y, n), "%s: huge values decode to non-finite values", name);
        for (int i = 0; i < n; i++)
            CHECKF(y[i] == 0.0f || (y[i] > 0) == (x[i] > 0),
                   "%s: huge element %d changed sign: %g -> %g", name, i, (double)x[i], (double)y[i]);

        /* A block with a NaN still yields finite values, the NaN comes back
         * near zero (within half a step; q2_k steps by about 1.5 here), and
         * the other elements keep their accuracy. */
        vd_rng_normal(25, (uint64_t)t, 0, x, n);
        x[5] = NAN;
        roundtrip(type, x, y, n);
        CHECKF(all_finite(y, n), "%s: a NaN input spreads to other elements", name);
        CHECKF(fabsf(y[5]) <= 1.0f, "%s: a NaN input decodes to %g, not about zero", name, (double)y[5]);
        x[5] = y[5] = 0;
        CHECKF(rel_l2(y, x, n) <= 2 * rel_l2_bound(type), "%s: a NaN input spoils its block", name);

        /* Scale invariance within half range: 2^k times the data gives 2^k
         * times the decoded values (all scales are stored exactly scaled). */
        vd_rng_normal(26, (uint64_t)t, 0, x, n);
        float z[256], xs[256];
        roundtrip(type, x, y, n);
        for (int i = 0; i < n; i++)
            xs[i] = x[i] * 8.0f;
        roundtrip(type, xs, z, n);
        int differ = 0;
        for (int i = 0; i < n; i++)
            differ += z[i] != 8.0f * y[i];
        CHECKF(differ == 0, "%s: scaling the input by 8 changed %d decoded values beyond the factor", name, differ);
    }
}

/* Throughput, printed (never asserted: timing does not decide a test). */
static void report_speed(void)
{
    enum { N = 1 << 21 };
    float *x = malloc(sizeof(float) * N), *y = malloc(sizeof(float) * N);
    CHECK(x && y);
    vd_rng_normal(31, 0, 0, x, N);
    for (int t = 0; t < NTYPES; t++) {
        vd_dtype type = quant_types[t];
        void *q = encode_alloc(type, N);
        clock_t c0 = clock();
        vd_quant_encode(type, x, q, N / vd_dtype_info(type)->block_elems);
        clock_t c1 = clock();
        vd_quant_decode(type, q, y, N / vd_dtype_info(type)->block_elems);
        clock_t c2 = clock();
        printf("%-5s encode %6.1f Mval/s, decode %7.1f Mval/s\n", vd_dtype_name(type),
               N / 1e6 / ((double)(c1 - c0) / CLOCKS_PER_SEC + 1e-9), N / 1e6 / ((double)(c2 - c1) / CLOCKS_PER_SEC + 1e-9));
        free(q);
    }
    free(x);
    free(y);
}

int main(void)
{
    test_decode_matches_reference();
    test_literal_blocks();
    test_roundtrip_error();
    test_edge_cases();
    report_speed();
    return test_finish("test_quant");
}

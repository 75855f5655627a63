/* Scalar float formats, dtype names and sizes, and the array conversions of
 * every plain dtype (engine/core/dtype.c).
 *
 * The references here are written from the formats' definitions: a value is
 * built from its sign, exponent and fraction fields with ldexp, and rounding
 * is checked against a nearest-value search over the table of every finite
 * value of the format (ties to the even pattern). */
#include <float.h>
#include <math.h>
#include <string.h>

#include "core/dtype.h"
#include "test_util.h"

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

static bool same_float(float a, float b) { return f32_bits(a) == f32_bits(b) || (isnan(a) && isnan(b)); }

/* ---- a generic binary float format ------------------------------------------- */

typedef struct fmt {
    const char *name;
    int ebits, mbits, bias;
    bool has_inf;      /* top exponent: inf (man 0) and NaN; else only S.1111.111 is NaN */
    bool saturates;    /* finite overflow goes to the largest finite value, not inf */
    int nbits;         /* 8 or 16 */
    float (*decode)(unsigned);
    unsigned (*encode)(float);
} fmt;

static float dec_f16(unsigned p) { return vd_f16_to_f32((uint16_t)p); }
static unsigned enc_f16(float f) { return vd_f32_to_f16(f); }
static float dec_bf16(unsigned p) { return vd_bf16_to_f32((uint16_t)p); }
static unsigned enc_bf16(float f) { return vd_f32_to_bf16(f); }
static float dec_e4m3(unsigned p) { return vd_e4m3_to_f32((uint8_t)p); }
static unsigned enc_e4m3(float f) { return vd_f32_to_e4m3(f); }
static float dec_e5m2(unsigned p) { return vd_e5m2_to_f32((uint8_t)p); }
static unsigned enc_e5m2(float f) { return vd_f32_to_e5m2(f); }

static const fmt formats[] = {
    {"f16", 5, 10, 15, true, false, 16, dec_f16, enc_f16},
    {"bf16", 8, 7, 127, true, false, 16, dec_bf16, enc_bf16},
    {"e4m3fn", 4, 3, 7, false, true, 8, dec_e4m3, enc_e4m3},
    {"e5m2", 5, 2, 15, true, true, 8, dec_e5m2, enc_e5m2},
};

static unsigned sign_bit(const fmt *F) { return 1u << (F->nbits - 1); }

static bool ref_is_nan(const fmt *F, unsigned p)
{
    unsigned mag = p & (sign_bit(F) - 1);
    unsigned emax = (1u << F->ebits) - 1, e = mag >> F->mbits, m = mag & ((1u << F->mbits) - 1);
    if (F->has_inf)
        return e == emax && m != 0;
    return mag == (sign_bit(F) - 1); /* e4m3fn: only all-ones */
}

/* The value of pattern p, from its fields. */
static double ref_value(const fmt *F, unsigned p)
{
    unsigned mag = p & (sign_bit(F) - 1);
    unsigned emax = (1u << F->ebits) - 1, e = mag >> F->mbits, m = mag & ((1u << F->mbits) - 1);
    double v;
    if (ref_is_nan(F, p))
        return NAN;
    if (F->has_inf && e == emax)
        v = INFINITY;
    else if (e == 0)
        v = ldexp((double)m, 1 - F->bias - F->mbits);
    else
        v = ldexp((double)((1u << F->mbits) + m), (int)e - F->bias - F->mbits);
    return (p & sign_bit(F)) ? -v : v;
}

/* Largest finite magnitude and its pattern. */
static unsigned max_finite_pattern(const fmt *F)
{
    unsigned p = sign_bit(F) - 1;
    while (ref_is_nan(F, p) || isinf(ref_value(F, p)))
        p--;
    return p;
}

/* Round-to-nearest-even encoding of f by search: the finite magnitudes are
 * increasing in their patterns, so binary search for the neighbours. */
static unsigned ref_encode(const fmt *F, float f)
{
    unsigned sign = signbit(f) ? sign_bit(F) : 0;
    unsigned pmax = max_finite_pattern(F);
    if (isnan(f))
        return ~0u; /* any NaN: checked separately */
    double a = fabs((double)f);
    double vmax = ref_value(F, pmax);
    unsigned inf = ((1u << F->ebits) - 1) << F->mbits;
    if (isinf(f))
        return sign | (F->has_inf ? inf : pmax);
    if (a > vmax) {
        if (F->saturates)
            return sign | pmax;
        /* The next value up would be vmax + one ulp at the top binade. */
        double ulp = ldexp(1.0, (int)(pmax >> F->mbits) - F->bias - F->mbits);
        double mid = vmax + ulp / 2;
        if (a < mid)
            return sign | pmax;
        /* A tie goes to even: pmax is odd (all-ones fraction), so to inf. */
        return sign | inf;
    }
    unsigned lo = 0, hi = pmax; /* value(lo) <= a <= value(hi) */
    while (hi - lo > 1) {
        unsigned mid = (lo + hi) / 2;
        if (ref_value(F, mid) <= a)
            lo = mid;
        else
            hi = mid;
    }
    double dl = a - ref_value(F, lo), dh = ref_value(F, hi) - a;
    unsigned r;
    if (dl < dh)
        r = lo;
    else if (dh < dl)
        r = hi;
    else
        r = (lo & 1) ? hi : lo;
    return sign | r;
}

/* Every pattern decodes to its field value and re-encodes to itself. */
static void test_exhaustive(const fmt *F)
{
    unsigned n = 1u << F->nbits;
    int bad_dec = 0, bad_enc = 0;
    for (unsigned p = 0; p < n; p++) {
        float got = F->decode(p);
        double want = ref_value(F, p);
        if (ref_is_nan(F, p)) {
            if (!isnan(got) && bad_dec++ < 5)
                fprintf(stderr, "%s 0x%x: decodes to %g, expected NaN\n", F->name, p, (double)got);
            unsigned back = F->encode(got);
            CHECKF(ref_is_nan(F, back), "%s: NaN 0x%x re-encodes to non-NaN 0x%x", F->name, p, back);
            continue;
        }
        if (!same_float(got, (float)want) && bad_dec++ < 5)
            fprintf(stderr, "%s 0x%x: decodes to %.9g, expected %.9g\n", F->name, p, (double)got, want);
        CHECK((double)(float)want == want); /* every value is exact in float */
        unsigned back = F->encode(got);
        if (back != p && bad_enc++ < 5)
            fprintf(stderr, "%s 0x%x: %.9g re-encodes to 0x%x\n", F->name, p, (double)got, back);
    }
    CHECKF(bad_dec == 0, "%s: %d patterns decode wrongly", F->name, bad_dec);
    CHECKF(bad_enc == 0, "%s: %d patterns do not re-encode to themselves", F->name, bad_enc);
}

/* Midpoints between neighbours round to the even pattern; a hair either
 * side rounds to the nearer one. */
static void test_midpoints(const fmt *F)
{
    unsigned pmax = max_finite_pattern(F);
    int bad = 0;
    for (unsigned s = 0; s < 2; s++) {
        unsigned sign = s ? sign_bit(F) : 0;
        for (unsigned p = 0; p < pmax; p++) {
            double a = ref_value(F, p), b = ref_value(F, p + 1);
            float mid = (float)((a + b) / 2);
            CHECK((double)mid == (a + b) / 2); /* exact: one bit more than the format */
            float below = nextafterf(mid, 0.0f), above = nextafterf(mid, INFINITY);
            if (s) {
                mid = -mid;
                below = -below;
                above = -above;
            }
            unsigned even = (p & 1) ? p + 1 : p;
            if (F->encode(mid) != (sign | even) && bad++ < 5)
                fprintf(stderr, "%s: midpoint %.9g encodes to 0x%x, expected 0x%x\n", F->name, (double)mid,
                        F->encode(mid), sign | even);
            if (F->encode(below) != (sign | p) && bad++ < 5)
                fprintf(stderr, "%s: %.9g encodes to 0x%x, expected 0x%x\n", F->name, (double)below,
                        F->encode(below), sign | p);
            if (F->encode(above) != (sign | (p + 1)) && bad++ < 5)
                fprintf(stderr, "%s: %.9g encodes to 0x%x, expected 0x%x\n", F->name, (double)above,
                        F->encode(above), sign | (p + 1));
        }
    }
    CHECKF(bad == 0, "%s: %d midpoint roundings wrong", F->name, bad);
}

/* Random float32 bit patterns (all magnitudes) and random values inside the
 * format's range against the search-based reference. */
static void test_random_rounding(const fmt *F, uint64_t seed)
{
    enum { N = 400000 };
    int bad = 0;
    double vmax = ref_value(F, max_finite_pattern(F));
    for (uint64_t i = 0; i < N; i++) {
        uint32_t w[4];
        vd_philox4x32(seed, 0, i, w);
        /* Odd i: any float32 bit pattern; even i: the format's own range
         * (to 10 % above its largest value) over 40 binades down. */
        float f = (i & 1) ? bits_f32(w[0])
                          : (float)(ldexp((double)(w[0] >> 8) / 8388608.0 - 1.0, -(int)(w[1] % 40)) * vmax * 1.1);
        if (isnan(f)) {
            CHECK(ref_is_nan(F, F->encode(f)));
            continue;
        }
        unsigned want = ref_encode(F, f), got = F->encode(f);
        if (want != got && bad++ < 5)
            fprintf(stderr, "%s: %.9g (0x%08x) encodes to 0x%x, expected 0x%x\n", F->name, (double)f, f32_bits(f), got,
                    want);
    }
    CHECKF(bad == 0, "%s: %d random values rounded wrongly", F->name, bad);
}

static void test_special_values(void)
{
    /* f16 */
    CHECK(vd_f32_to_f16(65504.0f) == 0x7bff);
    CHECK(vd_f32_to_f16(65519.99f) == 0x7bff);
    CHECK(vd_f32_to_f16(65520.0f) == 0x7c00); /* tie with the next binade -> even -> inf */
    CHECK(vd_f32_to_f16(1e9f) == 0x7c00);
    CHECK(vd_f32_to_f16(-INFINITY) == 0xfc00);
    CHECK(vd_f32_to_f16(-0.0f) == 0x8000);
    CHECK(vd_f32_to_f16(0x1p-25f) == 0x0000);          /* half the smallest subnormal: tie -> even 0 */
    CHECK(vd_f32_to_f16(0x1.000002p-25f) == 0x0001);   /* just above: up */
    CHECK(vd_f32_to_f16(-0x1p-26f) == 0x8000);
    CHECK(vd_f32_to_f16(0x1.ff8p-15f) == 0x03ff);      /* 1023 units: the largest subnormal */
    CHECK(vd_f32_to_f16(0x1.ffcp-15f) == 0x0400);      /* 1023.5 units: tie, rounds up into the normals */
    CHECK(isnan(vd_f16_to_f32(vd_f32_to_f16(NAN))));
    CHECK(vd_f16_to_f32(0x3c00) == 1.0f && vd_f16_to_f32(0xc000) == -2.0f && vd_f16_to_f32(0x0001) == 0x1p-24f);

    /* bf16 */
    CHECK(vd_f32_to_bf16(1.0f) == 0x3f80);
    CHECK(vd_f32_to_bf16(bits_f32(0x3f808000)) == 0x3f80); /* tie -> even */
    CHECK(vd_f32_to_bf16(bits_f32(0x3f818000)) == 0x3f82); /* tie -> even (up) */
    CHECK(vd_f32_to_bf16(FLT_MAX) == 0x7f80);               /* rounds up past the largest bf16 */
    CHECK(vd_f32_to_bf16(bits_f32(0x7f7f7fff)) == 0x7f7f);
    CHECK(vd_f32_to_bf16(INFINITY) == 0x7f80);
    CHECK(vd_f32_to_bf16(bits_f32(0x00008000)) == 0x0000); /* subnormal tie -> even */
    CHECK(vd_f32_to_bf16(bits_f32(0x00018000)) == 0x0002);
    uint16_t bn = vd_f32_to_bf16(bits_f32(0x7f800001)); /* signalling NaN with a low payload */
    CHECK(isnan(vd_bf16_to_f32(bn)));
    CHECK(isnan(vd_bf16_to_f32(vd_f32_to_bf16(-NAN))));

    /* e4m3fn: max 448, NaN only at S.1111.111, no infinities; saturates. */
    CHECK(vd_e4m3_to_f32(0x7e) == 448.0f && vd_e4m3_to_f32(0xfe) == -448.0f);
    CHECK(isnan(vd_e4m3_to_f32(0x7f)) && isnan(vd_e4m3_to_f32(0xff)));
    CHECK(vd_e4m3_to_f32(0x78) == 256.0f); /* exponent 15 is an ordinary binade */
    CHECK(vd_e4m3_to_f32(0x01) == 0x1p-9f && vd_e4m3_to_f32(0x08) == 0x1p-6f);
    CHECK(vd_f32_to_e4m3(448.0f) == 0x7e);
    CHECK(vd_f32_to_e4m3(464.0f) == 0x7e); /* would tie up to 480: saturates */
    CHECK(vd_f32_to_e4m3(1e6f) == 0x7e && vd_f32_to_e4m3(-1e6f) == 0xfe);
    CHECK(vd_f32_to_e4m3(INFINITY) == 0x7e && vd_f32_to_e4m3(-INFINITY) == 0xfe);
    CHECK((vd_f32_to_e4m3(NAN) & 0x7f) == 0x7f);
    CHECK(vd_f32_to_e4m3(0x1p-10f) == 0x00);         /* half the smallest subnormal: tie -> 0 */
    CHECK(vd_f32_to_e4m3(0x1.8p-9f * 1.0f) == 0x02); /* 1.5 subnormal units: tie -> even 2 */
    CHECK(vd_f32_to_e4m3(-0.0f) == 0x80);

    /* e5m2: max 57344, inf kept, finite overflow saturates. */
    CHECK(vd_e5m2_to_f32(0x7b) == 57344.0f);
    CHECK(isinf(vd_e5m2_to_f32(0x7c)) && vd_e5m2_to_f32(0xfc) < 0);
    CHECK(isnan(vd_e5m2_to_f32(0x7d)) && isnan(vd_e5m2_to_f32(0xff)));
    CHECK(vd_f32_to_e5m2(61440.0f) == 0x7b); /* tie with 65536: saturates */
    CHECK(vd_f32_to_e5m2(1e30f) == 0x7b && vd_f32_to_e5m2(-1e30f) == 0xfb);
    CHECK(vd_f32_to_e5m2(INFINITY) == 0x7c && vd_f32_to_e5m2(-INFINITY) == 0xfc);
    CHECK(isnan(vd_e5m2_to_f32(vd_f32_to_e5m2(NAN))));
    CHECK(vd_e5m2_to_f32(0x01) == 0x1p-16f);
}

/* ---- names and sizes ------------------------------------------------------ */

static void test_names(void)
{
    for (int i = 0; i < VD_DTYPE_COUNT; i++) {
        const vd_dtype_traits *t = vd_dtype_info((vd_dtype)i);
        CHECK(t != NULL);
        vd_dtype back = VD_DTYPE_COUNT;
        CHECKF(vd_dtype_parse(t->name, &back) && back == (vd_dtype)i, "name %s does not parse back", t->name);
        CHECK(strcmp(vd_dtype_name((vd_dtype)i), t->name) == 0);
        CHECK(t->block_elems >= 1 && t->block_bytes >= 1);
        CHECK(!(t->is_float && t->is_quantized));
        CHECK(t->is_quantized == (t->block_elems > 1));
    }
    CHECK(vd_dtype_info(VD_DTYPE_COUNT) == NULL);
    CHECK(vd_dtype_info((vd_dtype)-1) == NULL);
    CHECK(strcmp(vd_dtype_name(VD_DTYPE_COUNT), "invalid") == 0);

    static const struct {
        const char *name;
        vd_dtype dtype;
    } aliases[] = {
        {"float32", VD_F32}, {"FP32", VD_F32}, {"float", VD_F32}, {"float16", VD_F16}, {"fp16", VD_F16},
        {"half", VD_F16}, {"bfloat16", VD_BF16}, {"BF16", VD_BF16}, {"fp8", VD_F8_E4M3}, {"e4m3", VD_F8_E4M3},
        {"f8_e4m3fn", VD_F8_E4M3}, {"fp8_e4m3fn", VD_F8_E4M3}, {"F8_E4M3", VD_F8_E4M3}, {"e5m2", VD_F8_E5M2},
        {"fp8_e5m2", VD_F8_E5M2}, {"F8_E5M2", VD_F8_E5M2}, {"float64", VD_F64}, {"double", VD_F64},
        {"int8", VD_I8}, {"uint8", VD_U8}, {"int16", VD_I16}, {"int32", VD_I32}, {"int64", VD_I64},
        {"I64", VD_I64}, {"Q4_K", VD_Q4_K}, {"q8_0", VD_Q8_0}, {"BOOL", VD_BOOL},
    };
    for (size_t i = 0; i < sizeof aliases / sizeof aliases[0]; i++) {
        vd_dtype d = VD_DTYPE_COUNT;
        CHECKF(vd_dtype_parse(aliases[i].name, &d) && d == aliases[i].dtype, "alias %s", aliases[i].name);
    }
    const char *unknown[] = {"", "f8", "q4", "float128", "f32 ", "e4m3fnuz", "q4_k_m"};
    for (size_t i = 0; i < sizeof unknown / sizeof unknown[0]; i++) {
        vd_dtype d = VD_F16;
        CHECKF(!vd_dtype_parse(unknown[i], &d), "'%s' parsed", unknown[i]);
        CHECK(d == VD_F16); /* left alone on failure */
    }
}

static void test_nbytes(void)
{
    size_t n = 0;
    CHECK_OK(vd_dtype_nbytes(VD_F32, 10, &n));
    CHECK(n == 40);
    CHECK_OK(vd_dtype_nbytes(VD_BF16, 0, &n));
    CHECK(n == 0);
    CHECK_OK(vd_dtype_nbytes(VD_F8_E5M2, 7, &n));
    CHECK(n == 7);
    static const struct {
        vd_dtype t;
        int elems, bytes;
    } blocks[] = {{VD_Q4_0, 32, 18}, {VD_Q4_1, 32, 20}, {VD_Q5_0, 32, 22}, {VD_Q5_1, 32, 24},
                  {VD_Q8_0, 32, 34}, {VD_Q2_K, 256, 84}, {VD_Q3_K, 256, 110}, {VD_Q4_K, 256, 144},
                  {VD_Q5_K, 256, 176}, {VD_Q6_K, 256, 210}};
    for (size_t i = 0; i < sizeof blocks / sizeof blocks[0]; i++) {
        CHECK_OK(vd_dtype_nbytes(blocks[i].t, 3 * (int64_t)blocks[i].elems, &n));
        CHECKF(n == 3 * (size_t)blocks[i].bytes, "%s: %zu bytes for 3 blocks", vd_dtype_name(blocks[i].t), n);
        CHECK_FAILS(vd_dtype_nbytes(blocks[i].t, blocks[i].elems + 1, &n), VD_ERR_SHAPE);
        CHECK_FAILS(vd_dtype_nbytes(blocks[i].t, blocks[i].elems / 2, &n), VD_ERR_SHAPE);
    }
    CHECK_FAILS(vd_dtype_nbytes(VD_F32, -1, &n), VD_ERR_SHAPE);
    CHECK_FAILS(vd_dtype_nbytes(VD_F64, INT64_MAX, &n), VD_ERR_SHAPE);      /* 8 * (2^63 - 1) overflows */
    CHECK_FAILS(vd_dtype_nbytes(VD_F32, INT64_MAX, &n), VD_ERR_SHAPE);
    CHECK_OK(vd_dtype_nbytes(VD_F32, INT64_MAX / 4, &n)); /* 2^63 - 4 bytes: fits */
    CHECK_OK(vd_dtype_nbytes(VD_U8, INT64_MAX, &n)); /* fits a 64-bit size_t */
    CHECK_FAILS(vd_dtype_nbytes(VD_I64, INT64_MAX / 2, &n), VD_ERR_SHAPE);
    CHECK_OK(vd_dtype_nbytes(VD_Q8_0, INT64_MAX - (INT64_MAX % 32), &n)); /* 34/32 bytes each: fits */
    CHECK_FAILS(vd_dtype_nbytes(VD_DTYPE_COUNT, 4, &n), VD_ERR_INVALID_ARGUMENT);
    CHECK_FAILS(vd_dtype_nbytes((vd_dtype)-3, 4, &n), VD_ERR_INVALID_ARGUMENT);
}

/* ---- array conversions of the plain types ---------------------------------------- */

/* Inputs covering rounding ties, saturation, signs, NaN and huge values. */
static const float conv_in[] = {0.0f,   -0.0f,  0.4f,     0.5f,    1.5f,   2.5f,      -2.5f,  -3.5f,      126.6f,
                                127.5f, 128.0f, -128.6f,  -129.0f, 255.4f, 255.5f,    300.0f, -5.0f,      32767.4f,
                                4e4f,   -4e4f,  2.1e9f,   -3e9f,   1e19f,  -1e19f,    NAN,    1e-30f,     -7.75f,
                                65504.f, 1e5f,  0.3333333f, 448.0f, 500.0f, 57344.0f, 1e-7f,  123456.78f};
#define NCONV (int)(sizeof conv_in / sizeof conv_in[0])

/* Reference: round half to even, then saturate; NaN -> 0. */
static double ref_int(float f, double lo, double hi)
{
    if (isnan(f))
        return 0;
    double r = nearbyint((double)f);
    return r < lo ? lo : (r > hi ? hi : r);
}

static void test_plain_conversions(void)
{
    uint8_t buf[8 * NCONV];
    float back[NCONV];
    for (int t = 0; t < VD_DTYPE_COUNT; t++) {
        vd_dtype dt = (vd_dtype)t;
        const vd_dtype_traits *tr = vd_dtype_info(dt);
        if (tr->is_quantized)
            continue;
        memset(buf, 0xAA, sizeof buf);
        CHECK_OK(vd_dtype_from_f32(dt, conv_in, buf, NCONV));
        CHECK_OK(vd_dtype_to_f32(dt, buf, back, NCONV));
        for (int i = 0; i < NCONV; i++) {
            float f = conv_in[i];
            const uint8_t *p = buf + (size_t)i * (size_t)tr->block_bytes;
            float want_back = 0; /* what to_f32 must give for the stored value */
            switch (dt) {
            case VD_F32: {
                float v;
                memcpy(&v, p, 4);
                CHECK(same_float(v, f));
                want_back = f;
            } break;
            case VD_F64: {
                double v;
                memcpy(&v, p, 8);
                CHECK((isnan(v) && isnan(f)) || v == (double)f);
                want_back = f;
            } break;
            case VD_F16: {
                uint16_t h;
                memcpy(&h, p, 2);
                CHECK(h == vd_f32_to_f16(f));
                want_back = vd_f16_to_f32(h);
            } break;
            case VD_BF16: {
                uint16_t h;
                memcpy(&h, p, 2);
                CHECK(h == vd_f32_to_bf16(f));
                want_back = vd_bf16_to_f32(h);
            } break;
            case VD_F8_E4M3:
                CHECK(p[0] == vd_f32_to_e4m3(f));
                want_back = vd_e4m3_to_f32(p[0]);
                break;
            case VD_F8_E5M2:
                CHECK(p[0] == vd_f32_to_e5m2(f));
                want_back = vd_e5m2_to_f32(p[0]);
                break;
            case VD_I8: {
                int8_t v = (int8_t)p[0];
                CHECKF(v == ref_int(f, -128, 127), "i8: %g -> %d", (double)f, v);
                want_back = v;
            } break;
            case VD_U8:
                CHECKF(p[0] == ref_int(f, 0, 255), "u8: %g -> %d", (double)f, p[0]);
                want_back = p[0];
                break;
            case VD_I16: {
                int16_t v;
                memcpy(&v, p, 2);
                CHECKF(v == ref_int(f, -32768, 32767), "i16: %g -> %d", (double)f, v);
                want_back = v;
            } break;
            case VD_I32: {
                int32_t v;
                memcpy(&v, p, 4);
                /* Saturates at the largest float below 2^31 (2^31 - 128). */
                CHECKF(v == ref_int(f, -2147483648.0, 2147483520.0), "i32: %g -> %d", (double)f, v);
                want_back = (float)v;
            } break;
            case VD_I64: {
                int64_t v;
                memcpy(&v, p, 8);
                CHECKF((double)v == ref_int(f, -0x1p63, 0x1p63 - 0x1p39), "i64: %g -> %lld", (double)f, (long long)v);
                want_back = (float)v;
            } break;
            case VD_BOOL:
                CHECKF(p[0] == ((f != 0.0f && !isnan(f)) ? 1 : 0), "bool: %g -> %d", (double)f, p[0]);
                want_back = p[0] ? 1.0f : 0.0f;
                break;
            default:
                CHECKF(0, "dtype %s not covered by this test", tr->name);
            }
            CHECKF(same_float(back[i], want_back), "%s: element %d (%g) reads back as %g, expected %g", tr->name, i,
                   (double)f, (double)back[i], (double)want_back);
        }
        /* The bytes after the converted ones are untouched. */
        size_t used = (size_t)NCONV * (size_t)tr->block_bytes;
        if (used < sizeof buf)
            CHECK(buf[used] == 0xAA);
    }

    /* to_f32 of integer types at their extremes. */
    int64_t i64s[3] = {INT64_MIN, INT64_MAX, -12345};
    float out[3];
    CHECK_OK(vd_dtype_to_f32(VD_I64, i64s, out, 3));
    CHECK(out[0] == -0x1p63f && out[1] == 0x1p63f && out[2] == -12345.0f);
    int32_t i32s[2] = {INT32_MIN, INT32_MAX};
    CHECK_OK(vd_dtype_to_f32(VD_I32, i32s, out, 2));
    CHECK(out[0] == -0x1p31f && out[1] == 0x1p31f);
    uint8_t bools[3] = {0, 1, 7};
    CHECK_OK(vd_dtype_to_f32(VD_BOOL, bools, out, 3));
    CHECK(out[0] == 0.0f && out[1] == 1.0f && out[2] == 1.0f);
    double f64s[2] = {1e300, -1e-300};
    CHECK_OK(vd_dtype_to_f32(VD_F64, f64s, out, 2));
    CHECK(isinf(out[0]) && out[1] == 0.0f && signbit(out[1]));

    /* Failures: bad dtype, negative count, partial blocks. */
    CHECK_FAILS(vd_dtype_to_f32(VD_DTYPE_COUNT, buf, out, 1), VD_ERR_INVALID_ARGUMENT);
    CHECK_FAILS(vd_dtype_from_f32(VD_DTYPE_COUNT, out, buf, 1), VD_ERR_INVALID_ARGUMENT);
    CHECK_FAILS(vd_dtype_to_f32(VD_F32, buf, out, -1), VD_ERR_SHAPE);
    CHECK_FAILS(vd_dtype_from_f32(VD_F16, out, buf, -2), VD_ERR_SHAPE);
    float big[64] = {0};
    uint8_t qbuf[64];
    CHECK_FAILS(vd_dtype_to_f32(VD_Q8_0, qbuf, big, 33), VD_ERR_SHAPE);
    CHECK_FAILS(vd_dtype_from_f32(VD_Q4_K, big, qbuf, 32), VD_ERR_SHAPE);
    CHECK_OK(vd_dtype_to_f32(VD_F32, buf, out, 0));
}

int main(void)
{
    for (size_t i = 0; i < sizeof formats / sizeof formats[0]; i++) {
        test_exhaustive(&formats[i]);
        test_midpoints(&formats[i]);
        test_random_rounding(&formats[i], 40 + i);
    }
    test_special_values();
    test_names();
    test_nbytes();
    test_plain_conversions();
    return test_finish("test_dtype");
}

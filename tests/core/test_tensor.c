/* Tensor descriptors (engine/core/tensor.c): layout, views and their
 * failures.  Views are checked element by element against index
 * arithmetic on the original array. */
#include <string.h>

#include "core/tensor.h"
#include "test_util.h"

/* Element (i0, i1, i2) of an f32 view, through its strides. */
static float at3(const vd_tensor *t, int64_t i0, int64_t i1, int64_t i2)
{
    return ((const float *)t->data)[i0 * t->stride[0] + i1 * t->stride[1] + i2 * t->stride[2]];
}

static void test_init(void)
{
    float data[24];
    vd_tensor t;
    int64_t shape[3] = {2, 3, 4};
    CHECK_OK(vd_tensor_init(&t, VD_F32, 3, shape, data));
    CHECK(t.ndim == 3 && t.dtype == VD_F32 && t.data == data && t.owner == NULL && t.scale == 1.0f);
    CHECK(t.stride[0] == 12 && t.stride[1] == 4 && t.stride[2] == 1);
    CHECK(vd_tensor_nelem(&t) == 24 && vd_tensor_nbytes(&t) == 96);
    CHECK(vd_tensor_is_contiguous(&t));
    CHECK(vd_tensor_f32(&t) == data);
    char buf[64];
    CHECK(strcmp(vd_shape_str(&t, buf, sizeof buf), "[2, 3, 4]") == 0);
    /* A short buffer truncates but stays terminated. */
    char small[6];
    memset(small, 'x', sizeof small);
    vd_shape_str(&t, small, sizeof small);
    CHECK(memchr(small, '\0', sizeof small) != NULL && strncmp(small, "[2, 3", 5) == 0);
    char one[1] = {'x'};
    vd_shape_str(&t, one, 1);
    CHECK(one[0] == '\0');

    /* Scalars (0-D) and five dimensions. */
    CHECK_OK(vd_tensor_init(&t, VD_BF16, 0, NULL, data));
    CHECK(vd_tensor_nelem(&t) == 1 && vd_tensor_nbytes(&t) == 2 && vd_tensor_is_contiguous(&t));
    CHECK(strcmp(vd_shape_str(&t, buf, sizeof buf), "[]") == 0);
    CHECK(vd_tensor_f32(&t) == NULL);
    int64_t five[5] = {1, 2, 3, 4, 5};
    CHECK_OK(vd_tensor_init(&t, VD_I16, 5, five, data));
    CHECK(vd_tensor_nelem(&t) == 120 && vd_tensor_nbytes(&t) == 240);
    CHECK(t.stride[0] == 120 && t.stride[4] == 1 && t.stride[3] == 5 && t.stride[2] == 20);

    /* Empty tensors are contiguous wherever the zero is. */
    int64_t empty_a[2] = {0, 3}, empty_b[2] = {3, 0};
    CHECK_OK(vd_tensor_init(&t, VD_F32, 2, empty_a, NULL));
    CHECK(vd_tensor_nelem(&t) == 0 && vd_tensor_nbytes(&t) == 0 && vd_tensor_is_contiguous(&t));
    CHECK_OK(vd_tensor_init(&t, VD_F32, 2, empty_b, NULL));
    CHECK(vd_tensor_nelem(&t) == 0 && vd_tensor_is_contiguous(&t));
    vd_tensor r;
    int64_t flat0[1] = {0};
    CHECK_OK(vd_tensor_reshape(&t, 1, flat0, &r));

    /* Quantized: 2 rows of 64 q8_0 values = 4 blocks of 34 bytes. */
    int64_t qshape[2] = {2, 64};
    CHECK_OK(vd_tensor_init(&t, VD_Q8_0, 2, qshape, NULL));
    CHECK(vd_tensor_nbytes(&t) == 4 * 34);

    /* Failures. */
    int64_t neg[2] = {2, -1};
    CHECK_FAILS(vd_tensor_init(&t, VD_F32, 2, neg, NULL), VD_ERR_SHAPE);
    CHECK_FAILS(vd_tensor_init(&t, VD_F32, -1, shape, NULL), VD_ERR_SHAPE);
    int64_t six[6] = {1, 1, 1, 1, 1, 1};
    CHECK_FAILS(vd_tensor_init(&t, VD_F32, 6, six, NULL), VD_ERR_SHAPE);
    int64_t huge[3] = {1LL << 40, 1LL << 20, 1LL << 10}; /* 2^70 elements */
    CHECK_FAILS(vd_tensor_init(&t, VD_F32, 3, huge, NULL), VD_ERR_SHAPE);
    int64_t big[2] = {1LL << 61, 2}; /* 2^62 elements fit int64, 2^65 bytes do not fit size_t */
    CHECK_FAILS(vd_tensor_init(&t, VD_F64, 2, big, NULL), VD_ERR_SHAPE);
    CHECK_FAILS(vd_tensor_init(&t, VD_DTYPE_COUNT, 3, shape, NULL), VD_ERR_INVALID_ARGUMENT);
    int64_t ragged[2] = {32, 16}; /* 512 elements = 16 blocks, but rows of 16 */
    CHECK_FAILS(vd_tensor_init(&t, VD_Q4_0, 2, ragged, NULL), VD_ERR_SHAPE);
    int64_t partial[1] = {300};
    CHECK_FAILS(vd_tensor_init(&t, VD_Q4_K, 1, partial, NULL), VD_ERR_SHAPE);
}

static void test_same_shape(void)
{
    vd_tensor a, b;
    int64_t s1[2] = {3, 4}, s2[2] = {4, 3}, s3[3] = {3, 4, 1};
    CHECK_OK(vd_tensor_init(&a, VD_F32, 2, s1, NULL));
    CHECK_OK(vd_tensor_init(&b, VD_F16, 2, s1, NULL));
    CHECK(vd_tensor_same_shape(&a, &b)); /* dtype does not matter */
    CHECK_OK(vd_tensor_init(&b, VD_F32, 2, s2, NULL));
    CHECK(!vd_tensor_same_shape(&a, &b));
    CHECK_OK(vd_tensor_init(&b, VD_F32, 3, s3, NULL));
    CHECK(!vd_tensor_same_shape(&a, &b));
}

static void test_reshape(void)
{
    float data[24];
    for (int i = 0; i < 24; i++)
        data[i] = (float)i;
    vd_tensor t, r;
    int64_t shape[3] = {2, 3, 4};
    CHECK_OK(vd_tensor_init(&t, VD_F32, 3, shape, data));
    t.name = "blocks.0.weight";
    t.scale = 0.25f;
    int64_t s2[2] = {6, 4};
    CHECK_OK(vd_tensor_reshape(&t, 2, s2, &r));
    CHECK(r.data == data && r.ndim == 2 && r.shape[0] == 6 && r.stride[0] == 4 && r.stride[1] == 1);
    CHECK(r.scale == 0.25f && r.name == t.name && r.owner == NULL);
    int64_t s5[5] = {1, 2, 1, 12, 1};
    CHECK_OK(vd_tensor_reshape(&t, 5, s5, &r));
    CHECK(vd_tensor_nelem(&r) == 24 && vd_tensor_is_contiguous(&r));
    CHECK_FAILS(vd_tensor_reshape(&t, 0, NULL, &r), VD_ERR_SHAPE); /* 1 element, not 24 */

    int64_t bad[2] = {5, 5};
    CHECK_FAILS(vd_tensor_reshape(&t, 2, bad, &r), VD_ERR_SHAPE);
    int64_t neg[2] = {-6, -4};
    CHECK_FAILS(vd_tensor_reshape(&t, 2, neg, &r), VD_ERR_SHAPE);
    /* A permuted view is not contiguous and cannot be reshaped. */
    int axes[3] = {2, 1, 0};
    vd_tensor p;
    CHECK_OK(vd_tensor_permute(&t, axes, &p));
    CHECK_FAILS(vd_tensor_reshape(&p, 2, s2, &r), VD_ERR_SHAPE);
    /* A leading slice is contiguous and can. */
    vd_tensor sl;
    CHECK_OK(vd_tensor_slice(&t, 0, 1, 2, &sl));
    int64_t s12[1] = {12};
    CHECK_OK(vd_tensor_reshape(&sl, 1, s12, &r));
    CHECK(((float *)r.data)[0] == 12.0f);

    /* Quantized rows must stay whole blocks. */
    vd_tensor q;
    int64_t qs[2] = {4, 64};
    CHECK_OK(vd_tensor_init(&q, VD_Q8_0, 2, qs, NULL));
    int64_t q_ok[2] = {8, 32}, q_bad[2] = {16, 16};
    CHECK_OK(vd_tensor_reshape(&q, 2, q_ok, &r));
    CHECK_FAILS(vd_tensor_reshape(&q, 2, q_bad, &r), VD_ERR_SHAPE);
}

static void test_permute(void)
{
    float data[24];
    for (int i = 0; i < 24; i++)
        data[i] = (float)i;
    vd_tensor t, p;
    int64_t shape[3] = {2, 3, 4};
    CHECK_OK(vd_tensor_init(&t, VD_F32, 3, shape, data));
    int axes[3] = {2, 0, 1};
    CHECK_OK(vd_tensor_permute(&t, axes, &p));
    CHECK(p.shape[0] == 4 && p.shape[1] == 2 && p.shape[2] == 3);
    CHECK(!vd_tensor_is_contiguous(&p));
    int bad = 0;
    for (int i = 0; i < 4; i++)
        for (int j = 0; j < 2; j++)
            for (int k = 0; k < 3; k++)
                bad += at3(&p, i, j, k) != data[j * 12 + k * 4 + i]; /* p[i,j,k] = t[j,k,i] */
    CHECK(bad == 0);
    /* Permuting back restores the original layout. */
    int inverse[3] = {1, 2, 0};
    vd_tensor back;
    CHECK_OK(vd_tensor_permute(&p, inverse, &back));
    CHECK(vd_tensor_same_shape(&back, &t) && vd_tensor_is_contiguous(&back));
    CHECK(memcmp(back.stride, t.stride, sizeof t.stride) == 0);
    int identity[3] = {0, 1, 2};
    CHECK_OK(vd_tensor_permute(&t, identity, &p));
    CHECK(vd_tensor_is_contiguous(&p));
    /* Swapping unit dimensions keeps it contiguous. */
    int64_t unit[3] = {1, 1, 5};
    vd_tensor u;
    CHECK_OK(vd_tensor_init(&u, VD_F32, 3, unit, data));
    int swap[3] = {1, 0, 2};
    CHECK_OK(vd_tensor_permute(&u, swap, &p));
    CHECK(vd_tensor_is_contiguous(&p));

    int dup[3] = {0, 0, 1}, range[3] = {0, 1, 3}, negative[3] = {-1, 0, 1};
    CHECK_FAILS(vd_tensor_permute(&t, dup, &p), VD_ERR_INVALID_ARGUMENT);
    CHECK_FAILS(vd_tensor_permute(&t, range, &p), VD_ERR_INVALID_ARGUMENT);
    CHECK_FAILS(vd_tensor_permute(&t, negative, &p), VD_ERR_INVALID_ARGUMENT);
    vd_tensor q;
    int64_t qs[2] = {2, 32};
    CHECK_OK(vd_tensor_init(&q, VD_Q4_0, 2, qs, NULL));
    int ax2[2] = {1, 0};
    CHECK_FAILS(vd_tensor_permute(&q, ax2, &p), VD_ERR_UNSUPPORTED);
}

static void test_slice(void)
{
    float data[24];
    for (int i = 0; i < 24; i++)
        data[i] = (float)i;
    vd_tensor t, s;
    int64_t shape[3] = {2, 3, 4};
    CHECK_OK(vd_tensor_init(&t, VD_F32, 3, shape, data));
    t.owner = (vd_buffer *)(void *)&t; /* any non-NULL owner: a view must not inherit it */

    CHECK_OK(vd_tensor_slice(&t, 1, 1, 3, &s));
    CHECK(s.shape[0] == 2 && s.shape[1] == 2 && s.shape[2] == 4 && s.owner == NULL);
    CHECK(!vd_tensor_is_contiguous(&s));
    int bad = 0;
    for (int i = 0; i < 2; i++)
        for (int j = 0; j < 2; j++)
            for (int k = 0; k < 4; k++)
                bad += at3(&s, i, j, k) != data[i * 12 + (j + 1) * 4 + k];
    CHECK(bad == 0);

    CHECK_OK(vd_tensor_slice(&t, 2, 3, 4, &s));
    CHECK(s.shape[2] == 1 && at3(&s, 1, 2, 0) == data[1 * 12 + 2 * 4 + 3]);
    CHECK_OK(vd_tensor_slice(&t, 0, 1, 2, &s));
    CHECK(vd_tensor_is_contiguous(&s) && s.data == data + 12);
    CHECK_OK(vd_tensor_slice(&t, 0, 2, 2, &s)); /* empty */
    CHECK(vd_tensor_nelem(&s) == 0);
    CHECK_OK(vd_tensor_slice(&t, 1, 0, 3, &s)); /* everything */
    CHECK(s.data == data && vd_tensor_is_contiguous(&s));

    /* A slice of a permuted view. */
    vd_tensor p, ps;
    int axes[3] = {2, 0, 1};
    CHECK_OK(vd_tensor_permute(&t, axes, &p));
    CHECK_OK(vd_tensor_slice(&p, 0, 2, 4, &ps));
    bad = 0;
    for (int i = 0; i < 2; i++)
        for (int j = 0; j < 2; j++)
            for (int k = 0; k < 3; k++)
                bad += at3(&ps, i, j, k) != data[j * 12 + k * 4 + (i + 2)];
    CHECK(bad == 0);

    /* A NULL data pointer stays NULL. */
    vd_tensor n;
    CHECK_OK(vd_tensor_init(&n, VD_F32, 3, shape, NULL));
    CHECK_OK(vd_tensor_slice(&n, 0, 1, 2, &s));
    CHECK(s.data == NULL);

    CHECK_FAILS(vd_tensor_slice(&t, 3, 0, 1, &s), VD_ERR_INVALID_ARGUMENT);
    CHECK_FAILS(vd_tensor_slice(&t, -1, 0, 1, &s), VD_ERR_INVALID_ARGUMENT);
    CHECK_FAILS(vd_tensor_slice(&t, 0, -1, 1, &s), VD_ERR_INVALID_ARGUMENT);
    CHECK_FAILS(vd_tensor_slice(&t, 0, 0, 3, &s), VD_ERR_INVALID_ARGUMENT);
    CHECK_FAILS(vd_tensor_slice(&t, 1, 2, 1, &s), VD_ERR_INVALID_ARGUMENT);
    vd_tensor scalar;
    CHECK_OK(vd_tensor_init(&scalar, VD_F32, 0, NULL, data));
    CHECK_FAILS(vd_tensor_slice(&scalar, 0, 0, 1, &s), VD_ERR_INVALID_ARGUMENT);

    /* Quantized: whole rows only, and the result must stay contiguous. */
    uint8_t qdata[4 * 2 * 34];
    vd_tensor q, qs;
    int64_t qshape[2] = {4, 64};
    CHECK_OK(vd_tensor_init(&q, VD_Q8_0, 2, qshape, qdata));
    CHECK_OK(vd_tensor_slice(&q, 0, 1, 3, &qs));
    CHECK(qs.data == qdata + 68 && qs.shape[0] == 2 && vd_tensor_nbytes(&qs) == 4 * 34);
    CHECK_FAILS(vd_tensor_slice(&q, 1, 0, 32, &qs), VD_ERR_UNSUPPORTED);
    int64_t q3[3] = {2, 4, 32};
    CHECK_OK(vd_tensor_init(&q, VD_Q8_0, 3, q3, qdata));
    CHECK_FAILS(vd_tensor_slice(&q, 1, 1, 3, &qs), VD_ERR_UNSUPPORTED); /* [2, 2, 32] with a gap */
    CHECK_OK(vd_tensor_slice(&q, 1, 0, 4, &qs));                        /* the whole dimension: fine */
    CHECK_OK(vd_tensor_slice(&q, 0, 1, 2, &qs));
    CHECK(qs.data == qdata + 4 * 34);
    vd_tensor q1;
    CHECK_OK(vd_tensor_slice(&qs, 1, 1, 3, &q1)); /* [1, 2, 32]: contiguous again */
    CHECK(q1.data == qdata + 4 * 34 + 34);
}

int main(void)
{
    test_init();
    test_same_shape();
    test_reshape();
    test_permute();
    test_slice();
    return test_finish("test_tensor");
}

/* Device names and argument checking of the vd_op_* wrappers: each bad call
 * fails with the documented status and a message that names the op and
 * the tensors. */
#include "backend_test.h"
#include "core/threadpool.h"
#include "vd_config.h"

/* The call fails with `status` and its message contains `needle`. */
#define CHECK_FAILS_WITH(expr, status, needle)                                                        \
    do {                                                                                              \
        CHECK_FAILS(expr, status);                                                                    \
        CHECKF(strstr(vd_last_error(), (needle)) != NULL, "message \"%s\" lacks \"%s\"", vd_last_error(), \
               (needle));                                                                             \
    } while (0)

static void test_device_names(void)
{
    vd_backend *be = NULL;
    const char *bad[] = {"gpu", "cuda:x", "cuda:-1", "cuda:", "cuda0", "CPU", "cpu:0", "cuda:1x", " cuda:0",
                         "cuda:99999999999", ""};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char quoted[64];
        snprintf(quoted, sizeof quoted, "'%s'", bad[i]);
        CHECK_FAILS_WITH(vd_backend_open(bad[i], NULL, &be), VD_ERR_INVALID_ARGUMENT, quoted);
        CHECKF(strstr(vd_last_error(), "cuda:N") != NULL, "'%s': the message does not list the accepted forms: %s",
               bad[i], vd_last_error());
        CHECK(be == NULL);
    }
    CHECK_FAILS(vd_backend_open(NULL, NULL, &be), VD_ERR_INVALID_ARGUMENT);
    CHECK_FAILS(vd_backend_open("cpu", &(vd_backend_options){.threads = -2}, &be), VD_ERR_INVALID_ARGUMENT);
#if !VD_HAVE_CUDA
    const char *cuda[] = {"cuda", "cuda:0", "cuda:3"};
    for (size_t i = 0; i < sizeof cuda / sizeof cuda[0]; i++) {
        CHECK_FAILS_WITH(vd_backend_open(cuda[i], NULL, &be), VD_ERR_DEVICE, "no CUDA support");
        CHECK(strstr(vd_last_error(), cuda[i]) != NULL);
        CHECK(be == NULL);
    }
#endif
    /* The CPU is unaffected. */
    CHECK_OK(vd_backend_open("cpu", &(vd_backend_options){.threads = 2}, &be));
    CHECK(be && be->kind == VD_DEVICE_CPU && strcmp(be->name, "cpu") == 0 && be->threads == 2);
    vd_backend_close(be);
    CHECK_OK(vd_backend_open("cpu", NULL, &be));
    CHECK(be && be->threads == vd_cpu_count());
    vd_backend_close(be);
}

static void test_memory(vd_backend *be)
{
    float data[6] = {1, 2, 3, 4, 5, 6}, back[6] = {0};
    vd_tensor t = dev_f32(be, 2, (int64_t[]){2, 3}, data);
    CHECK(t.owner != NULL && ((uintptr_t)t.data & 63) == 0);
    CHECK_OK(vd_tensor_download(be, &t, back, sizeof back));
    CHECK(memcmp(data, back, sizeof data) == 0);
    CHECK_FAILS_WITH(vd_tensor_upload(be, &t, data, 5 * sizeof(float)), VD_ERR_SHAPE, "24 bytes");
    vd_tensor view;
    CHECK_OK(vd_tensor_permute(&t, (int[]){1, 0}, &view));
    CHECK_FAILS_WITH(vd_tensor_download(be, &view, back, sizeof back), VD_ERR_SHAPE, "not contiguous");

    /* A host tensor copied to the device keeps dtype, scale and name. */
    uint8_t fp8[4] = {0x38, 0x40, 0xb8, 0x44};
    vd_tensor host;
    CHECK_OK(vd_tensor_init(&host, VD_F8_E4M3, 1, (int64_t[]){4}, fp8));
    host.scale = 0.5f;
    host.name = "w";
    vd_tensor dev;
    CHECK_OK(vd_tensor_to_device(be, &host, &dev));
    CHECK(dev.dtype == VD_F8_E4M3 && dev.scale == 0.5f && dev.name == host.name && memcmp(dev.data, fp8, 4) == 0);
    vd_tensor_release(&dev);
    CHECK(dev.data == NULL && dev.owner == NULL);
    vd_tensor_release(&t);
}

static void test_op_errors(vd_backend *be)
{
    float buf[4096];
    for (int i = 0; i < 4096; i++)
        buf[i] = (float)(i % 13) * 0.1f + 0.05f;
    vd_tensor x = dev_f32(be, 2, (int64_t[]){4, 8}, buf);
    x.name = "hidden";
    vd_tensor w = dev_f32(be, 2, (int64_t[]){6, 9}, buf);
    w.name = "blocks.0.self_attn.q.weight";
    vd_tensor y = dev_f32(be, 2, (int64_t[]){4, 6}, NULL);

    /* matmul: K mismatch names both tensors and their shapes. */
    CHECK_FAILS_WITH(vd_op_matmul(be, &x, &w, NULL, &y), VD_ERR_SHAPE, "blocks.0.self_attn.q.weight' [6, 9]");
    CHECK(strstr(vd_last_error(), "matmul") && strstr(vd_last_error(), "'hidden' [4, 8]"));
    vd_tensor w8 = dev_f32(be, 2, (int64_t[]){6, 8}, buf), y5 = dev_f32(be, 2, (int64_t[]){4, 5}, NULL);
    CHECK_FAILS_WITH(vd_op_matmul(be, &x, &w8, NULL, &y5), VD_ERR_SHAPE, "[4, 5]");
    vd_tensor bias7 = dev_f32(be, 1, (int64_t[]){7}, buf);
    CHECK_FAILS_WITH(vd_op_matmul(be, &x, &w8, &bias7, &y), VD_ERR_SHAPE, "bias");
    vd_tensor xt;
    CHECK_OK(vd_tensor_permute(&x, (int[]){1, 0}, &xt));
    CHECK_FAILS_WITH(vd_op_matmul(be, &xt, &w8, NULL, &y), VD_ERR_SHAPE, "contiguous");
    vd_tensor xh = dev_tensor(be, VD_F16, 2, (int64_t[]){4, 8}, NULL);
    CHECK_FAILS_WITH(vd_op_matmul(be, &xh, &w8, NULL, &y), VD_ERR_SHAPE, "f32");
    vd_tensor wq = w8; /* a hand-made descriptor: 8 is not a whole Q8_0 block */
    wq.dtype = VD_Q8_0;
    CHECK_FAILS_WITH(vd_op_matmul(be, &x, &wq, NULL, &y), VD_ERR_SHAPE, "q8_0 block");
    vd_tensor wi = w8;
    wi.dtype = VD_I32;
    CHECK_FAILS_WITH(vd_op_matmul(be, &x, &wi, NULL, &y), VD_ERR_SHAPE, "integer");
    CHECK_FAILS(vd_op_matmul(be, &x, NULL, NULL, &y), VD_ERR_INVALID_ARGUMENT);
    CHECK_FAILS(vd_op_matmul(NULL, &x, &w8, NULL, &y), VD_ERR_INVALID_ARGUMENT);

    /* Row broadcast: innermost size must match, rows must divide. */
    vd_tensor a = dev_f32(be, 2, (int64_t[]){4, 6}, buf), out = dev_f32(be, 2, (int64_t[]){4, 6}, NULL);
    vd_tensor b5 = dev_f32(be, 1, (int64_t[]){5}, buf), b36 = dev_f32(be, 2, (int64_t[]){3, 6}, buf);
    vd_tensor b3 = dev_f32(be, 2, (int64_t[]){5, 1}, buf), b26 = dev_f32(be, 2, (int64_t[]){2, 6}, buf);
    CHECK_FAILS_WITH(vd_op_add(be, &a, &b5, &out), VD_ERR_SHAPE, "add");
    CHECK_FAILS_WITH(vd_op_mul(be, &a, &b36, &out), VD_ERR_SHAPE, "[3, 6]");
    CHECK_FAILS_WITH(vd_op_mul(be, &a, &b3, &out), VD_ERR_SHAPE, "[5, 1]");
    CHECK_OK(vd_op_add(be, &a, &b26, &out));
    CHECK_FAILS_WITH(vd_op_add(be, &a, &b26, &y5), VD_ERR_SHAPE, "same shape");
    CHECK_FAILS_WITH(vd_op_add_gated(be, &a, &a, &b5, &out), VD_ERR_SHAPE, "gate");
    CHECK_FAILS_WITH(vd_op_layernorm_modulate(be, &a, 1e-6f, NULL, NULL, &b36, NULL, &out), VD_ERR_SHAPE, "shift");
    CHECK_FAILS_WITH(vd_op_layernorm_modulate(be, &a, 1e-6f, &b5, NULL, NULL, NULL, &out), VD_ERR_SHAPE, "weight");
    CHECK_FAILS_WITH(vd_op_rmsnorm(be, &a, &b5, 1e-6f, &out), VD_ERR_SHAPE, "weight");
    CHECK_FAILS(vd_op_rmsnorm(be, &a, NULL, -1.0f, &out), VD_ERR_INVALID_ARGUMENT);
    CHECK_FAILS_WITH(vd_op_channel_rmsnorm(be, &a, &b5, &out), VD_ERR_SHAPE, "gamma");
    vd_tensor ids = dev_tensor(be, VD_I32, 1, (int64_t[]){2}, (int32_t[]){1, 3});
    CHECK_FAILS_WITH(vd_op_mul(be, &a, &ids, &out), VD_ERR_SHAPE, "i32");

    /* Attention: shapes and kv_len ranges. */
    vd_tensor q = dev_f32(be, 4, (int64_t[]){2, 3, 2, 8}, buf), k = dev_f32(be, 4, (int64_t[]){2, 5, 2, 8}, buf);
    vd_tensor ao = dev_f32(be, 4, (int64_t[]){2, 3, 2, 8}, NULL), kbad = dev_f32(be, 4, (int64_t[]){2, 5, 2, 4}, buf);
    vd_tensor bias_bad = dev_f32(be, 3, (int64_t[]){2, 3, 4}, buf), bias_ok = dev_f32(be, 3, (int64_t[]){2, 3, 5}, buf);
    CHECK_OK(vd_op_attention(be, &q, &k, &k, 0.3f, &bias_ok, (int32_t[]){5, 2}, &ao));
    CHECK_FAILS_WITH(vd_op_attention(be, &q, &kbad, &k, 0.3f, NULL, NULL, &ao), VD_ERR_SHAPE, "[2, 5, 2, 4]");
    CHECK_FAILS_WITH(vd_op_attention(be, &q, &k, &k, 0.3f, &bias_bad, NULL, &ao), VD_ERR_SHAPE, "[H, Lq, Lk]");
    CHECK_FAILS_WITH(vd_op_attention(be, &q, &k, &k, 0.3f, NULL, (int32_t[]){5, 0}, &ao), VD_ERR_SHAPE, "kv_len[1]");
    CHECK_FAILS_WITH(vd_op_attention(be, &q, &k, &k, 0.3f, NULL, (int32_t[]){6, 1}, &ao), VD_ERR_SHAPE, "kv_len[0]");
    CHECK_FAILS_WITH(vd_op_attention(be, &q, &k, &k, 0.3f, NULL, NULL, &out), VD_ERR_SHAPE, "attention");

    /* conv3d: the output shape formula and the channel count. */
    vd_tensor cx = dev_f32(be, 4, (int64_t[]){2, 3, 5, 6}, buf), cw = dev_f32(be, 5, (int64_t[]){4, 2, 3, 3, 3}, buf);
    vd_tensor cout_bad = dev_f32(be, 4, (int64_t[]){4, 3, 5, 6}, NULL), cout_ok = dev_f32(be, 4, (int64_t[]){4, 3, 5, 6}, NULL);
    const int st1[3] = {1, 1, 1};
    CHECK_OK(vd_op_conv3d(be, &cx, &cw, NULL, st1, (int[]){2, 0, 1, 1, 1, 1}, &cout_ok));
    CHECK_FAILS_WITH(vd_op_conv3d(be, &cx, &cw, NULL, st1, (int[]){0, 0, 1, 1, 1, 1}, &cout_bad), VD_ERR_SHAPE,
                     "gives [4, 1, 5, 6]");
    CHECK_FAILS_WITH(vd_op_conv3d(be, &cx, &cw, NULL, st1, (int[]){0, 0, 0, 0, 0, 0}, &cout_bad), VD_ERR_SHAPE,
                     "gives [4, 1, 3, 4]");
    vd_tensor cw3 = dev_f32(be, 5, (int64_t[]){4, 3, 3, 3, 3}, buf);
    CHECK_FAILS_WITH(vd_op_conv3d(be, &cx, &cw3, NULL, st1, (int[]){2, 0, 1, 1, 1, 1}, &cout_ok), VD_ERR_SHAPE,
                     "input channels");
    CHECK_FAILS(vd_op_conv3d(be, &cx, &cw, NULL, (int[]){0, 1, 1}, (int[]){2, 0, 1, 1, 1, 1}, &cout_ok),
                VD_ERR_INVALID_ARGUMENT);
    vd_tensor cw_big = dev_f32(be, 5, (int64_t[]){4, 2, 3, 7, 3}, buf);
    CHECK_FAILS_WITH(vd_op_conv3d(be, &cx, &cw_big, NULL, st1, (int[]){2, 0, 0, 0, 1, 1}, &cout_ok), VD_ERR_SHAPE,
                     "larger");

    /* rope3d, upsample2x, copy, fill, get_rows. */
    vd_tensor r = dev_f32(be, 3, (int64_t[]){6, 2, 8}, buf), ro = dev_f32(be, 3, (int64_t[]){6, 2, 8}, NULL);
    vd_tensor r_odd = dev_f32(be, 3, (int64_t[]){6, 2, 7}, buf);
    CHECK_OK(vd_op_rope3d(be, &r, 1, 2, 3, 10000.0, &ro));
    CHECK_FAILS_WITH(vd_op_rope3d(be, &r, 1, 2, 4, 10000.0, &ro), VD_ERR_SHAPE, "grid");
    CHECK_FAILS_WITH(vd_op_rope3d(be, &r_odd, 1, 2, 3, 10000.0, &r_odd), VD_ERR_SHAPE, "even");
    CHECK_FAILS_WITH(vd_op_upsample2x(be, &a, &out), VD_ERR_SHAPE, "2H");
    vd_tensor h16 = dev_tensor(be, VD_F16, 2, (int64_t[]){4, 6}, NULL);
    CHECK_FAILS_WITH(vd_op_copy(be, &a, &h16), VD_ERR_SHAPE, "f16");
    CHECK_FAILS_WITH(vd_op_copy(be, &a, &y5), VD_ERR_SHAPE, "same shape");
    CHECK_FAILS_WITH(vd_op_fill(be, &h16, 1.0f), VD_ERR_SHAPE, "f32");
    vd_tensor table = dev_f32(be, 2, (int64_t[]){3, 4}, buf), rows = dev_f32(be, 2, (int64_t[]){2, 4}, NULL);
    table.name = "shared.weight";
    CHECK_FAILS_WITH(vd_op_get_rows(be, &table, &ids, &rows), VD_ERR_INVALID_ARGUMENT, "shared.weight");
    CHECK(strstr(vd_last_error(), "ids[1] = 3"));
    vd_tensor fids = dev_f32(be, 1, (int64_t[]){2}, buf);
    CHECK_FAILS_WITH(vd_op_get_rows(be, &table, &fids, &rows), VD_ERR_SHAPE, "i32");

    vd_tensor *ts[] = {&x, &w, &y, &w8, &y5, &bias7, &xh, &a, &out, &b5, &b36, &b3, &b26, &ids, &q, &k, &ao, &kbad,
                       &bias_bad, &bias_ok, &cx, &cw, &cout_bad, &cout_ok, &cw3, &cw_big, &r, &ro, &r_odd, &h16,
                       &table, &rows, &fids};
    for (size_t i = 0; i < sizeof ts / sizeof ts[0]; i++)
        vd_tensor_release(ts[i]);
}

/* A backend whose table lacks an op reports it by name. */
static void test_missing_op(vd_backend *cpu)
{
    vd_backend_ops ops = *cpu->ops;
    ops.matmul = NULL;
    ops.conv3d = NULL;
    vd_backend fake = *cpu;
    fake.ops = &ops;
    strcpy(fake.name, "partial");
    float buf[64] = {1};
    vd_tensor x = dev_f32(cpu, 2, (int64_t[]){2, 4}, buf), w = dev_f32(cpu, 2, (int64_t[]){3, 4}, buf);
    vd_tensor y = dev_f32(cpu, 2, (int64_t[]){2, 3}, NULL);
    CHECK_FAILS_WITH(vd_op_matmul(&fake, &x, &w, NULL, &y), VD_ERR_UNSUPPORTED,
                     "op matmul is not implemented on backend partial");
    CHECK_FAILS_WITH(vd_op_conv3d(&fake, NULL, NULL, NULL, NULL, NULL, NULL), VD_ERR_UNSUPPORTED, "conv3d");
    CHECK_OK(vd_op_matmul(cpu, &x, &w, NULL, &y));
    vd_tensor_release(&x), vd_tensor_release(&w), vd_tensor_release(&y);
}

int main(void)
{
    test_device_names();
    vd_backend *be = open_cpu(2);
    test_memory(be);
    test_op_errors(be);
    test_missing_op(be);
    vd_backend_close(be);
    return test_finish("test_backend_validation");
}

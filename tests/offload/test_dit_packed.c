/* The DiT loaded with a placement plan on the CPU backend: every unit
 * packed in host memory, streamed units copied through a host ring by the
 * same schedule as on a GPU.  Its output must equal the ordinary load's bit
 * for bit, for every placement, ring depth and storage type (f32, bf16, fp8
 * scaled, GGUF Q8_0), over several passes and after a cancelled one.  This
 * checks the packed layout (offsets, f32 conversion of small parameters,
 * views), the binding of streamed blocks and the ring without a GPU. */
#include <stdatomic.h>
#include <unistd.h>

#include "backend/backend.h"
#include "io/weights.h"
#include "models/wan_dit.h"
#include "offload_models.h"
#include "test_util.h"

enum { LAYERS = 7, B = 2, T = 2, H = 4, W = 6, CTX_ROWS = 5 };

static vd_backend *cpu;

typedef struct inputs {
    float *latent;
    float *ctx[2];
    int64_t text_dim;
    int64_t n_latent, n_out;
} inputs;

/* Embedded texts, then one forward; velocity into `out`. */
static vd_status run(vd_dit *m, const inputs *in, float *out, atomic_int *cancel, float *emb0)
{
    vd_tensor t[2] = {{0}, {0}};
    vd_status st = VD_OK;
    for (int b = 0; b < 2 && st == VD_OK; b++)
        st = vd_dit_embed_text(m, in->ctx[b], CTX_ROWS, &t[b]);
    if (st == VD_OK && emb0)
        st = vd_tensor_download(cpu, &t[0], emb0, vd_tensor_nbytes(&t[0]));
    vd_dit_call call = {.batch = B, .frames = T, .height = H, .width = W, .latent = in->latent,
                        .text = {&t[0], &t[1]}, .timestep = 500, .velocity = out, .cancel = cancel};
    if (st == VD_OK)
        st = vd_dit_forward(m, &call);
    vd_tensor_release(&t[0]);
    vd_tensor_release(&t[1]);
    return st;
}

static void places_of(const char *map, vd_plan_place *p)
{
    p[0] = (vd_plan_place){VD_TIER_RESIDENT, -1};
    for (int i = 0; map[i]; i++)
        p[i + 1] = map[i] == 'R'   ? (vd_plan_place){VD_TIER_RESIDENT, -1}
                   : map[i] == 'H' ? (vd_plan_place){VD_TIER_HOST, -1}
                                   : (vd_plan_place){VD_TIER_DONOR, map[i] - '0'};
}

static void check_placement(const vd_weights *w, const vd_pack_layout *l, const inputs *in, const float *ref,
                            const float *ref_emb, const char *map, int depth, const char *dtype)
{
    vd_plan_unit_in units[LAYERS + 1];
    for (int u = 0; u <= LAYERS; u++)
        units[u] = (vd_plan_unit_in){.name = l->units[u].name, .bytes = l->units[u].bytes};
    vd_plan_gpu gpus[2] = {{.index = 0, .total_bytes = 1ull << 40, .free_bytes = 1ull << 40},
                           {.index = 1, .total_bytes = 1ull << 40, .free_bytes = 1ull << 40}};
    vd_plan_input pin = {.units = units, .n_units = LAYERS + 1, .compute = 0, .gpus = gpus, .n_gpus = 2,
                         .depth = depth};
    vd_plan_place places[LAYERS + 1];
    places_of(map, places);
    static vd_plan plan;
    CHECK_OK(vd_plan_from_places(&pin, places, &plan));
    vd_dit *m = NULL;
    vd_status st = vd_dit_load_planned(cpu, w, &plan, NULL, &m);
    CHECK_OK(st);
    if (st != VD_OK)
        return;
    float *out = malloc((size_t)in->n_out * sizeof *out);
    float *emb = malloc((size_t)VD_DIT_TEXT_LEN * 256 * sizeof *emb);
    bool same = true;
    /* three passes, a pass cancelled before its first block, two more */
    for (int pass = 0; pass < 6; pass++) {
        atomic_int cancel;
        atomic_init(&cancel, pass == 3);
        st = run(m, in, out, &cancel, pass == 0 ? emb : NULL);
        if (pass == 3) {
            CHECK(st == VD_ERR_CANCELLED);
            continue;
        }
        CHECK_OK(st);
        same = same && st == VD_OK && memcmp(out, ref, (size_t)in->n_out * sizeof *out) == 0;
        if (pass == 0)
            CHECKF(memcmp(emb, ref_emb, (size_t)VD_DIT_TEXT_LEN * 256 * sizeof *emb) == 0,
                   "%s %s: the text embedding differs", dtype, map);
    }
    vd_dit_offload_report r;
    CHECK_OK(vd_dit_offload_report_get(m, &r));
    int K = 0;
    for (int i = 0; map[i]; i++)
        K += map[i] != 'R';
    const int d = K < depth ? K : depth;
    CHECKF(r.streamed == K && r.depth == d, "%s %s: report says %d streamed, ring %d", dtype, map, r.streamed, r.depth);
    if (K > 0 && K == d)
        CHECKF(r.stream.copies == (uint64_t)K, "%s %s: %llu copies (the ring holds every streamed block)", dtype, map,
               (unsigned long long)r.stream.copies);
    else if (K > 0)
        CHECKF(r.stream.copies >= (uint64_t)(5 * K), "%s %s depth %d: only %llu copies", dtype, map, depth,
               (unsigned long long)r.stream.copies);
    uint64_t donor = 0;
    for (int u = 1; u <= LAYERS; u++)
        if (map[u - 1] >= '0' && map[u - 1] <= '9')
            donor += l->units[u].bytes;
    CHECK((r.stream.link_bytes[VD_LINK_DONOR(1)] > 0) == (donor > 0));
    printf("  %-10s %-8s depth %d: %s  (%llu copies, %llu skipped, %llu restarts)\n", dtype, map, depth,
           same ? "bit-identical" : "DIFFERS", (unsigned long long)r.stream.copies,
           (unsigned long long)r.stream.skipped, (unsigned long long)r.stream.restarts);
    CHECKF(same, "%s placement %s depth %d: the output differs from the ordinary load", dtype, map, depth);
    free(out);
    free(emb);
    vd_dit_free(m);
}

static void check_dtype(const char *dtype)
{
    char path[256];
    snprintf(path, sizeof path, "/tmp/vd_offload_packed_%d_%s.%s", (int)getpid(), dtype,
             dtype[0] == 'q' ? "gguf" : "safetensors");
    vd_status st = offload_test_model(path, dtype, 256, 512, LAYERS, 7);
    CHECK_OK(st);
    vd_weights *w = NULL;
    if (st != VD_OK || vd_weights_open(path, &w) != VD_OK) {
        CHECK(0);
        remove(path);
        return;
    }
    vd_dit *ref = NULL;
    CHECK_OK(vd_dit_load(cpu, w, &ref));
    const vd_dit_config *c = vd_dit_get_config(ref);
    inputs in = {.text_dim = c->text_dim};
    in.n_latent = (int64_t)B * c->in_dim * T * H * W;
    in.n_out = (int64_t)B * c->out_dim * T * H * W;
    in.latent = random_floats(1, in.n_latent, -1, 1);
    in.ctx[0] = random_floats(2, CTX_ROWS * c->text_dim, -1, 1);
    in.ctx[1] = random_floats(3, CTX_ROWS * c->text_dim, -1, 1);
    float *want = malloc((size_t)in.n_out * sizeof *want);
    float *emb = malloc((size_t)VD_DIT_TEXT_LEN * 256 * sizeof *emb);
    CHECK_OK(run(ref, &in, want, NULL, emb));
    vd_dit_free(ref);

    vd_pack_layout *l = NULL;
    CHECK_OK(vd_dit_layout(w, &l));
    if (l) {
        /* the layout: the stem and one unit per block, aligned offsets, sizes */
        CHECK(l->n == LAYERS + 1 && strcmp(l->units[0].name, "stem") == 0 && strcmp(l->units[3].name, "block 2") == 0);
        for (int u = 0; u < l->n; u++) {
            CHECK(l->units[u].bytes % VD_PACK_ALIGN == 0);
            for (int k = 0; k < l->units[u].n; k++)
                CHECK(l->units[u].entries[k].offset % VD_PACK_ALIGN == 0);
        }
        CHECK(l->units[1].n == 27 && l->units[0].n == 15);
        CHECK(strcmp(l->units[1].entries[0].view.name, "blocks.0.modulation") == 0 && l->units[1].entries[0].to_f32);
        const char *maps[] = {"RRRRRRR", "HHHHHHH", "HHHHHHH", "HHHHHHH", "HRHRHRH", "HHHRRRR",
                              "1H1H1H1", "RRRHRRR", "HRRRRRH", "11111RR"};
        const int depths[] = {2, 1, 2, 3, 2, 2, 2, 1, 2, 4};
        for (size_t i = 0; i < sizeof maps / sizeof maps[0]; i++)
            check_placement(w, l, &in, want, emb, maps[i], depths[i], dtype);
        vd_pack_layout_free(l);
    }
    free(in.latent);
    free(in.ctx[0]);
    free(in.ctx[1]);
    free(want);
    free(emb);
    vd_weights_close(w);
    remove(path);
}

/* A plan for the wrong model, or allocations on the CPU, are refused with a reason. */
static void check_refusals(void)
{
    char path[256];
    snprintf(path, sizeof path, "/tmp/vd_offload_refuse_%d.safetensors", (int)getpid());
    CHECK_OK(offload_test_model(path, "f32", 256, 512, 3, 1));
    vd_weights *w = NULL;
    CHECK_OK(vd_weights_open(path, &w));
    if (!w)
        return;
    vd_plan_unit_in units[8] = {{.bytes = 1000}};
    for (int i = 1; i < 8; i++)
        units[i].bytes = 1000;
    vd_plan_gpu g = {.index = 0, .total_bytes = 1ull << 40, .free_bytes = 1ull << 40};
    vd_plan_input pin = {.units = units, .n_units = 8, .compute = 0, .gpus = &g, .n_gpus = 1};
    static vd_plan plan;
    CHECK_OK(vd_plan_make(&pin, &plan));
    vd_dit *m = NULL;
    CHECK_FAILS(vd_dit_load_planned(cpu, w, &plan, NULL, &m), VD_ERR_INVALID_ARGUMENT);
    CHECK(strstr(vd_last_error(), "units") != NULL && m == NULL);
    /* an allocation string with the model on the CPU */
    vd_allocation a;
    CHECK_OK(vd_allocation_parse("cuda:0,1gb;cpu,*", &a));
    vd_dit_allocation da = {.alloc = &a, .text = "cuda:0,1gb;cpu,*", .frames = 1, .height = 4, .width = 4};
    CHECK_FAILS(vd_dit_load_with_allocation(cpu, w, &da, &m), VD_ERR_UNSUPPORTED);
    CHECKF(strstr(vd_last_error(), "CUDA") || strstr(vd_last_error(), "cuda:N"), "%s", vd_last_error());
    /* resident: the ordinary load */
    CHECK_OK(vd_allocation_parse("", &a));
    CHECK_OK(vd_dit_load_with_allocation(cpu, w, &da, &m));
    vd_dit_offload_report r;
    CHECK_FAILS(vd_dit_offload_report_get(m, &r), VD_ERR_INVALID_ARGUMENT);
    vd_dit_free(m);
    vd_weights_close(w);
    remove(path);
}

int main(void)
{
    vd_backend_options o = {.threads = 2};
    if (vd_backend_cpu_new(&o, &cpu) != VD_OK) {
        fprintf(stderr, "cpu backend: %s\n", vd_last_error());
        return 1;
    }
    const char *dtypes[] = {"f32", "bf16", "fp8-scaled", "q8_0"};
    for (size_t i = 0; i < sizeof dtypes / sizeof dtypes[0]; i++)
        check_dtype(dtypes[i]);
    check_refusals();
    vd_backend_close(cpu);
    return test_finish("test_dit_packed");
}

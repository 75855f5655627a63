/* Weight offloading on the GPU: one run tells everything.  Skipped (exit 77)
 * without a CUDA build or a GPU.
 *
 * Groups (each in its own child process, forked before any CUDA call, so a
 * fault in one cannot hide the others and each may set its environment):
 *   machine      the GPUs, their memory and peer access, the build
 *   determinism  the ordinary (resident) model run twice: the baseline the
 *                bit-for-bit comparisons rest on
 *   placements   per storage type (f32, bf16, fp8 scaled, GGUF Q8_0): every
 *                placement (packed resident, all host at ring depths 1/2/3,
 *                half host spread and contiguous, allocation strings in
 *                bytes / ratio / fraction / auto, donor cuda:1 and mixed
 *                host + donor when a second GPU exists) against the
 *                ordinary load, BIT FOR BIT, over 4 passes with a cancelled
 *                pass between; the text embedding too
 *   slow-links   the same placements with every link capped at 0.5 GB/s
 *                (copies far slower than compute: a block that ran before
 *                its copy finished would read stale bytes)
 *   budget       a 12-block model under an "auto,<budget>" far below the
 *                card: the allocator's peak must stay ≤ budget + 5%; prints
 *                the activation estimate against what was used
 *   pinned       VD_OFFLOAD_PIN_LIMIT=0 and =3 blocks: host units in
 *                pageable memory, a warning, the same output
 *   no-peer      (2 GPUs) VD_OFFLOAD_NO_PEER=1: donor copies staged through
 *                pinned host memory in 32 MiB chunks (blocks of 48 MiB),
 *                the same output; and with peer access where the GPUs
 *                have it
 *   simulate     VD_SIMULATE_LINK_GBPS=2: a measured link must not beat the
 *                cap by more than 25%; output unchanged; marked SIMULATED
 *   links        host (pinned) and donor link speeds, 256 MB copies
 *   overlap      (information, no verdict) the 12-block model: step time
 *                resident, all streamed at depth 1 and 2, and the planner's
 *                prediction from the measured block time and link speed
 *   pipeline     vd_pipeline with allocation "cuda:0,<small>;cpu,*" and
 *                "auto": the same latent as without an allocation
 *   replan       "auto,<budget>" sized for a 1280×720×81 clip: a request
 *                that large (the plan was made for the default 832×480×81)
 *                is planned again, so sampling stays within the budget
 *                (+5 %), and its latent equals the resident pipeline's
 *
 *   test_offload [GROUP...] runs only the named groups. */
#include <stdatomic.h>
#include <stdbool.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "backend/backend.h"
#include "io/weights.h"
#include "models/wan_dit.h"
#include "offload_models.h"
#include "test_util.h"
#include "vd_config.h"
#include "vdiff/pipeline.h"

#if VD_HAVE_CUDA
#include <cuda_runtime.h>

#include "backend/cuda/backend_cuda.h"
#include "offload/devices.h"
#include "offload/streaming.h"

#define GOLDEN VD_TEST_DATA_DIR "/golden/"

enum { SMALL_LAYERS = 8, MEDIUM_LAYERS = 12 };
/* the small models' latent: 2 × [16, 3, 16, 16] (192 tokens a sample) */
enum { LT = 3, LH = 16, LW = 16, CTX_ROWS = 7 };

static char dir[256];
static char small_path[4][320];
static const char *small_dtypes[4] = {"f32", "bf16", "fp8-scaled", "q8_0"};
static char medium_path[320];
static int n_gpus_seen;

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static void die(const char *what)
{
    fprintf(stderr, "%s: %s\n", what, vd_last_error());
    fflush(NULL);
    _exit(1);
}

/* ---- running a model -------------------------------------------------------------- */

typedef struct inputs {
    int64_t T, H, W;
    float *latent, *ctx[2];
    int64_t n_out;
} inputs;

static inputs make_inputs(const vd_dit_config *c, int64_t T, int64_t H, int64_t W, uint64_t seed)
{
    inputs in = {.T = T, .H = H, .W = W};
    in.latent = random_floats(seed, 2 * c->in_dim * T * H * W, -1, 1);
    in.ctx[0] = random_floats(seed + 1, CTX_ROWS * c->text_dim, -1, 1);
    in.ctx[1] = random_floats(seed + 2, CTX_ROWS * c->text_dim, -1, 1);
    in.n_out = 2 * c->out_dim * T * H * W;
    return in;
}

static void free_inputs(inputs *in)
{
    free(in->latent);
    free(in->ctx[0]);
    free(in->ctx[1]);
}

/* Embed both texts and run one pass; the velocity (and the first
 * embedding, if emb) come back to the host. */
static vd_status forward(vd_backend *be, vd_dit *m, const inputs *in, float *out, atomic_int *cancel, float *emb)
{
    vd_tensor t[2] = {{0}, {0}};
    vd_status st = VD_OK;
    for (int b = 0; b < 2 && st == VD_OK; b++)
        st = vd_dit_embed_text(m, in->ctx[b], CTX_ROWS, &t[b]);
    if (st == VD_OK && emb)
        st = vd_tensor_download(be, &t[0], emb, vd_tensor_nbytes(&t[0]));
    vd_dit_call call = {.batch = 2, .frames = in->T, .height = in->H, .width = in->W, .latent = in->latent,
                        .text = {&t[0], &t[1]}, .timestep = 731, .velocity = out, .cancel = cancel};
    if (st == VD_OK)
        st = vd_dit_forward(m, &call);
    vd_tensor_release(&t[0]);
    vd_tensor_release(&t[1]);
    return st;
}

static double max_abs(const float *a, const float *b, int64_t n)
{
    double m = 0;
    for (int64_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - (double)b[i]);
        if (d > m || d != d)
            m = d;
    }
    return m;
}

/* The ordinary (resident) load's output. */
static void reference(vd_backend *be, const vd_weights *w, const inputs *in, float *out, float *emb)
{
    vd_dit *m;
    if (vd_dit_load(be, w, &m) != VD_OK)
        die("loading the resident reference");
    if (forward(be, m, in, out, NULL, emb) != VD_OK)
        die("the resident reference pass");
    vd_dit_free(m);
}

/* ---- plans -------------------------------------------------------------------------- */

typedef struct machine {
    vd_plan_gpu gpus[VD_PLAN_MAX_GPUS];
    int n;
} machine;

static machine this_machine(const vd_offload_options *o)
{
    machine mc;
    if (vd_offload_gpus(0, o, ~0u, mc.gpus, VD_PLAN_MAX_GPUS, &mc.n) != VD_OK)
        die("listing the GPUs");
    return mc;
}

static void layout_units(const vd_pack_layout *l, vd_plan_unit_in *u)
{
    for (int i = 0; i < l->n; i++)
        u[i] = (vd_plan_unit_in){.name = l->units[i].name, .bytes = l->units[i].bytes};
}

/* A plan from a map (R resident, H host, digit = donor), one char per block. */
static vd_status plan_map(const vd_pack_layout *l, const machine *mc, const char *map, int depth, vd_plan *out)
{
    vd_plan_unit_in units[VD_PLAN_MAX_UNITS];
    layout_units(l, units);
    vd_plan_input in = {.units = units, .n_units = l->n, .compute = 0, .gpus = mc->gpus, .n_gpus = mc->n,
                        .depth = depth};
    vd_plan_place p[VD_PLAN_MAX_UNITS];
    p[0] = (vd_plan_place){VD_TIER_RESIDENT, -1};
    for (int i = 1; i < l->n; i++) {
        char c = map[i - 1];
        p[i] = c == 'R' ? (vd_plan_place){VD_TIER_RESIDENT, -1}
               : c == 'H' ? (vd_plan_place){VD_TIER_HOST, -1}
                          : (vd_plan_place){VD_TIER_DONOR, c - '0'};
    }
    return vd_plan_from_places(&in, p, out);
}

static vd_status plan_alloc(const vd_pack_layout *l, const machine *mc, const char *text, uint64_t act, vd_plan *out)
{
    vd_plan_unit_in units[VD_PLAN_MAX_UNITS];
    layout_units(l, units);
    vd_allocation a;
    VD_TRY(vd_allocation_parse(text, &a));
    vd_plan_input in = {.units = units, .n_units = l->n, .compute = 0, .gpus = mc->gpus, .n_gpus = mc->n,
                        .alloc = &a, .alloc_text = text, .activation_bytes = act};
    vd_plan_host_memory(&in.host_total_bytes, &in.host_free_bytes);
    return vd_plan_make(&in, out);
}

static const char *plan_map_str(const vd_plan *p)
{
    static char buf[VD_PLAN_MAX_UNITS + 1];
    int k = 0;
    for (int u = 1; u < p->n_units; u++) {
        const vd_plan_place *x = &p->units[u];
        buf[k++] = x->tier == VD_TIER_RESIDENT ? 'R' : x->tier == VD_TIER_HOST ? 'H' : (char)('0' + x->device);
    }
    buf[k] = '\0';
    return buf;
}

/* Load with `plan`, run 4 passes (and a cancelled one between), compare
 * each with `ref` bit for bit. */
static void check_plan(vd_backend *be, const vd_weights *w, const vd_plan *plan, const vd_offload_options *o,
                       const inputs *in, const float *ref, const float *ref_emb, int64_t emb_n, const char *label)
{
    vd_dit *m = NULL;
    vd_status st = vd_dit_load_planned(be, w, plan, o, &m);
    if (st != VD_OK) {
        printf("  %-44s LOAD FAILED: %s\n", label, vd_last_error());
        test_failures++;
        return;
    }
    float *out = malloc((size_t)in->n_out * sizeof *out), *emb = malloc((size_t)emb_n * sizeof *emb);
    bool same = true, emb_same = true;
    double worst = 0;
    for (int pass = 0; pass < 5; pass++) {
        atomic_int cancel;
        atomic_init(&cancel, pass == 2);
        st = forward(be, m, in, out, &cancel, pass == 0 ? emb : NULL);
        if (pass == 2) {
            if (st != VD_ERR_CANCELLED) {
                printf("  %-44s the cancelled pass returned %s\n", label, vd_status_name(st));
                test_failures++;
            }
            continue;
        }
        if (st != VD_OK) {
            printf("  %-44s PASS %d FAILED: %s\n", label, pass, vd_last_error());
            test_failures++;
            same = false;
            break;
        }
        if (memcmp(out, ref, (size_t)in->n_out * sizeof *out) != 0) {
            same = false;
            double d = max_abs(out, ref, in->n_out);
            worst = d > worst ? d : worst;
        }
        if (pass == 0)
            emb_same = memcmp(emb, ref_emb, (size_t)emb_n * sizeof *emb) == 0;
    }
    vd_dit_offload_report r;
    vd_dit_offload_report_get(m, &r);
    char extra[160] = "";
    if (r.host_pageable_bytes)
        snprintf(extra, sizeof extra, " pageable %.1f MB", (double)r.host_pageable_bytes / 1e6);
    for (int g = 0; g < VD_PLAN_MAX_GPUS; g++)
        if (r.donor_bytes[g])
            snprintf(extra + strlen(extra), sizeof extra - strlen(extra), " cuda:%d %s", g,
                     r.donor_staged[g] ? "staged" : "peer");
    if (r.simulated)
        snprintf(extra + strlen(extra), sizeof extra - strlen(extra), " SIMULATED");
    printf("  %-44s %s%s  [%s d%d, %llu copies, %llu restarts%s]\n", label,
           same ? "bit-identical" : "DIFFERS", emb_same ? "" : " (text embedding DIFFERS)", plan_map_str(plan),
           r.depth, (unsigned long long)r.stream.copies, (unsigned long long)r.stream.restarts, extra);
    if (!same)
        printf("      max |offloaded - resident| = %.3e\n", worst);
    if (r.warnings[0])
        printf("      warnings: %s\n", r.warnings);
    fflush(stdout);
    if (!same || !emb_same)
        test_failures++;
    free(out);
    free(emb);
    vd_dit_free(m);
}

static vd_backend *open_gpu(void)
{
    vd_backend *be;
    if (vd_backend_open("cuda:0", NULL, &be) != VD_OK)
        die("opening cuda:0");
    return be;
}

/* ---- groups --------------------------------------------------------------------------- */

static void group_machine(void)
{
    int n = 0, drv = 0, rt = 0;
    cudaGetDeviceCount(&n);
    cudaDriverGetVersion(&drv);
    cudaRuntimeGetVersion(&rt);
    printf("  CUDA driver %d, runtime %d, %d GPU(s)\n", drv, rt, n);
    vd_offload_options o = vd_offload_options_default();
    machine mc = this_machine(&o);
    for (int i = 0; i < mc.n; i++)
        printf("  cuda:%d %s: %.2f GB total, %.2f GB free%s\n", i, mc.gpus[i].name, mc.gpus[i].total_bytes / 1e9,
               mc.gpus[i].free_bytes / 1e9,
               i == 0 ? " (compute)"
                      : (mc.gpus[i].peer ? ", peer access from cuda:0" : ", NO peer access from cuda:0"));
    uint64_t ht, ha;
    vd_plan_host_memory(&ht, &ha);
    printf("  host: %.1f GB, %.1f GB available\n", ht / 1e9, ha / 1e9);
    if (n < 2)
        printf("  one GPU: the donor parts of 'placements', 'slow-links' and 'no-peer' are SKIPPED\n");
}

static void group_determinism(void)
{
    vd_backend *be = open_gpu();
    for (int d = 0; d < 4; d++) {
        vd_weights *w;
        if (vd_weights_open(small_path[d], &w) != VD_OK)
            die("opening a test model");
        vd_dit *m;
        if (vd_dit_load(be, w, &m) != VD_OK)
            die("loading");
        inputs in = make_inputs(vd_dit_get_config(m), LT, LH, LW, 11);
        float *a = malloc((size_t)in.n_out * sizeof *a), *b = malloc((size_t)in.n_out * sizeof *b);
        if (forward(be, m, &in, a, NULL, NULL) != VD_OK || forward(be, m, &in, b, NULL, NULL) != VD_OK)
            die("a resident pass");
        bool same = memcmp(a, b, (size_t)in.n_out * sizeof *a) == 0;
        printf("  %-10s resident pass twice: %s", small_dtypes[d], same ? "bit-identical\n" : "DIFFERS");
        if (!same) {
            printf(" (max |d| %.3e): the CUDA ops are not deterministic run to run, so every bit-for-bit "
                   "comparison below must fail too; fix that first\n",
                   max_abs(a, b, in.n_out));
            test_failures++;
        }
        free(a);
        free(b);
        free_inputs(&in);
        vd_dit_free(m);
        vd_weights_close(w);
    }
    vd_backend_close(be);
}

static void placements(bool slow)
{
    vd_backend *be = open_gpu();
    vd_offload_options o;
    if (vd_offload_options_from_env(&o) != VD_OK)
        die("offload options");
    machine mc = this_machine(&o);
    const bool two = mc.n >= 2;
    for (int d = 0; d < 4; d++) {
        vd_weights *w;
        vd_pack_layout *l;
        if (vd_weights_open(small_path[d], &w) != VD_OK || vd_dit_layout(w, &l) != VD_OK)
            die("opening a test model");
        vd_arch_info ai;
        vd_arch_detect(w, &ai);
        inputs in = make_inputs(&ai.dit, LT, LH, LW, 21);
        const int64_t emb_n = VD_DIT_TEXT_LEN * ai.dit.dim;
        float *ref = malloc((size_t)in.n_out * sizeof *ref), *ref_emb = malloc((size_t)emb_n * sizeof *ref_emb);
        reference(be, w, &in, ref, ref_emb);
        const uint64_t block = l->units[1].bytes, stem = l->units[0].bytes;
        printf("  %s: stem %.2f MB, block %.2f MB, %d blocks%s\n", small_dtypes[d], stem / 1e6, block / 1e6,
               SMALL_LAYERS, slow ? ", every link capped at 0.5 GB/s" : "");
        static vd_plan plan;
        const struct {
            const char *map;
            int depth;
            bool donor;
        } maps[] = {
            {"RRRRRRRR", 2, false}, {"HHHHHHHH", 1, false}, {"HHHHHHHH", 2, false}, {"HHHHHHHH", 3, false},
            {"RHRHRHRH", 2, false}, {"HHHHRRRR", 2, false}, {"RRRRRRRH", 1, false}, {"HRRRRRRH", 2, false},
            {"11111111", 2, true},  {"1H1H1H1H", 2, true},  {"H1RRH1RR", 3, true},
        };
        for (size_t i = 0; i < sizeof maps / sizeof maps[0]; i++) {
            char label[96];
            snprintf(label, sizeof label, "%s map %s depth %d", small_dtypes[d], maps[i].map, maps[i].depth);
            if (maps[i].donor && !two) {
                printf("  %-44s SKIPPED (needs a second GPU)\n", label);
                continue;
            }
            if (plan_map(l, &mc, maps[i].map, maps[i].depth, &plan) != VD_OK) {
                printf("  %-44s PLAN FAILED: %s\n", label, vd_last_error());
                test_failures++;
                continue;
            }
            check_plan(be, w, &plan, &o, &in, ref, ref_emb, emb_n, label);
        }
        /* the allocation strings, planned on this machine */
        const uint64_t act = vd_dit_activation_bytes(&ai.dit, 2, LT, LH, LW);
        char strs[6][96];
        snprintf(strs[0], sizeof strs[0], "cuda:0,%.0fb;cpu,*", (double)(stem + 3 * block));
        snprintf(strs[1], sizeof strs[1], "cuda:0,75%%;cpu,25%%");
        snprintf(strs[2], sizeof strs[2], "cuda:0,%.9f;cpu,*", (double)(stem + 2 * block) / mc.gpus[0].total_bytes);
        snprintf(strs[3], sizeof strs[3], "auto,%.0fb", (double)(stem + 4 * block + act));
        snprintf(strs[4], sizeof strs[4], "virtual_vram_gb=%.9f;donors=cuda:1,cpu", (double)(5 * block) / 1e9);
        snprintf(strs[5], sizeof strs[5], "cuda:0,25%%;cuda:1,25%%;cpu,50%%");
        for (int i = 0; i < 6; i++) {
            char label[160];
            snprintf(label, sizeof label, "%s \"%.30s\"", small_dtypes[d], strs[i]);
            if (i >= 4 && !two) {
                printf("  %-44s SKIPPED (needs a second GPU)\n", label);
                continue;
            }
            if (plan_alloc(l, &mc, strs[i], act, &plan) != VD_OK) {
                printf("  %-44s PLAN FAILED: %s\n", label, vd_last_error());
                test_failures++;
                continue;
            }
            check_plan(be, w, &plan, &o, &in, ref, ref_emb, emb_n, label);
        }
        free(ref);
        free(ref_emb);
        free_inputs(&in);
        vd_pack_layout_free(l);
        vd_weights_close(w);
    }
    vd_backend_close(be);
}

static void group_placements(void) { placements(false); }

static void group_slow_links(void)
{
    setenv("VD_SIMULATE_LINK_GBPS", "0.5", 1);
    placements(true);
}

static void group_budget(void)
{
    vd_weights *w;
    vd_pack_layout *l;
    if (vd_weights_open(medium_path, &w) != VD_OK || vd_dit_layout(w, &l) != VD_OK)
        die("opening the 12-block model");
    vd_arch_info ai;
    vd_arch_detect(w, &ai);
    const int64_t T = 3, H = 32, W = 32;
    inputs in = make_inputs(&ai.dit, T, H, W, 31);
    const int64_t emb_n = VD_DIT_TEXT_LEN * ai.dit.dim;
    float *ref = malloc((size_t)in.n_out * sizeof *ref), *ref_emb = malloc((size_t)emb_n * sizeof *ref_emb);
    {
        vd_backend *be = open_gpu();
        reference(be, w, &in, ref, ref_emb);
        vd_cuda_memory_stats ms;
        vd_backend_cuda_memory(be, &ms);
        printf("  the ordinary load and one pass peaked at %.1f MB (allocator)\n", ms.peak_bytes / 1e6);
        vd_backend_close(be);
    }
    vd_offload_options o = vd_offload_options_default();
    machine mc = this_machine(&o);
    const uint64_t act = vd_dit_activation_bytes(&ai.dit, 2, T, H, W);
    const uint64_t stem = l->units[0].bytes, block = l->units[1].bytes;
    for (int keep = 0; keep <= 4; keep += 2) {
        const uint64_t budget = stem + (uint64_t)keep * block + 2 * block + act;
        char text[64];
        snprintf(text, sizeof text, "auto,%.0fb", (double)budget);
        static vd_plan plan;
        if (plan_alloc(l, &mc, text, act, &plan) != VD_OK) {
            printf("  budget %.1f MB: PLAN FAILED: %s\n", budget / 1e6, vd_last_error());
            test_failures++;
            continue;
        }
        size_t free0 = 0, total = 0;
        cudaSetDevice(0);
        cudaMemGetInfo(&free0, &total);
        vd_backend *be = open_gpu();
        vd_dit *m;
        if (vd_dit_load_planned(be, w, &plan, &o, &m) != VD_OK)
            die("loading under a budget");
        float *out = malloc((size_t)in.n_out * sizeof *out), *emb = malloc((size_t)emb_n * sizeof *emb);
        bool same = true;
        for (int pass = 0; pass < 2; pass++) {
            if (forward(be, m, &in, out, NULL, emb) != VD_OK)
                die("a pass under a budget");
            same = same && memcmp(out, ref, (size_t)in.n_out * sizeof *out) == 0;
        }
        vd_cuda_memory_stats ms;
        vd_backend_cuda_memory(be, &ms);
        const double used_acts = (double)ms.peak_bytes - (double)(plan.resident_bytes + plan.ring_bytes);
        const bool ok = (double)ms.peak_bytes <= 1.05 * (double)budget;
        printf("  budget %8.1f MB on a %.0f GB card: %d of %d blocks resident, ring %d x %.1f MB; allocator peak "
               "%8.1f MB (%s); output %s\n",
               budget / 1e6, total / 1e9, MEDIUM_LAYERS - plan.n_streamed, MEDIUM_LAYERS, plan.depth,
               plan.slot_bytes / 1e6, ms.peak_bytes / 1e6, ok ? "within budget + 5%" : "OVER budget + 5%",
               same ? "bit-identical" : "DIFFERS");
        printf("      activations: estimated %.1f MB, used %.1f MB (estimate / used = %.2f); device memory used by "
               "this backend (cudaMemGetInfo, includes its context, cache and cuBLAS): %.1f MB\n",
               act / 1e6, used_acts / 1e6, used_acts > 0 ? act / used_acts : 0, (free0 - ms.device_free_bytes) / 1e6);
        if (!ok || !same)
            test_failures++;
        free(out);
        free(emb);
        vd_dit_free(m);
        vd_backend_close(be);
    }
    /* a budget below the stem, the ring and the activations is refused, with the amount */
    char text[64];
    snprintf(text, sizeof text, "auto,%.0fb", (double)(act / 2));
    static vd_plan p2;
    vd_status st = plan_alloc(l, &mc, text, act, &p2);
    printf("  budget below what the ring needs: %s\n", st == VD_OK ? "ACCEPTED (wrong)" : vd_last_error());
    if (st == VD_OK)
        test_failures++;
    free(ref);
    free(ref_emb);
    free_inputs(&in);
    vd_pack_layout_free(l);
    vd_weights_close(w);
}

static void pinned_case(const char *limit, const char *label)
{
    setenv("VD_OFFLOAD_PIN_LIMIT", limit, 1);
    vd_offload_options o;
    if (vd_offload_options_from_env(&o) != VD_OK)
        die("offload options");
    vd_backend *be = open_gpu();
    vd_weights *w;
    vd_pack_layout *l;
    if (vd_weights_open(small_path[1], &w) != VD_OK || vd_dit_layout(w, &l) != VD_OK)
        die("opening a test model");
    vd_arch_info ai;
    vd_arch_detect(w, &ai);
    inputs in = make_inputs(&ai.dit, LT, LH, LW, 41);
    const int64_t emb_n = VD_DIT_TEXT_LEN * ai.dit.dim;
    float *ref = malloc((size_t)in.n_out * sizeof *ref), *ref_emb = malloc((size_t)emb_n * sizeof *ref_emb);
    reference(be, w, &in, ref, ref_emb);
    machine mc = this_machine(&o);
    static vd_plan plan;
    if (plan_map(l, &mc, "HHHHHHHH", 2, &plan) != VD_OK)
        die("planning");
    vd_dit *m;
    if (vd_dit_load_planned(be, w, &plan, &o, &m) != VD_OK)
        die("loading with a pin limit");
    vd_dit_offload_report r;
    vd_dit_offload_report_get(m, &r);
    const bool warned = strstr(r.warnings, "VD_OFFLOAD_PIN_LIMIT") != NULL;
    printf("  %-30s pinned %.1f MB, pageable %.1f MB, warning %s\n", label, r.host_pinned_bytes / 1e6,
           r.host_pageable_bytes / 1e6, warned ? "given" : "MISSING");
    if (!warned || r.host_pageable_bytes == 0)
        test_failures++;
    vd_dit_free(m);
    check_plan(be, w, &plan, &o, &in, ref, ref_emb, emb_n, label);
    free(ref);
    free(ref_emb);
    free_inputs(&in);
    vd_pack_layout_free(l);
    vd_weights_close(w);
    vd_backend_close(be);
}

static void group_pinned(void)
{
    pinned_case("0", "VD_OFFLOAD_PIN_LIMIT=0");
    /* three blocks pinned, the rest pageable */
    vd_weights *w;
    vd_pack_layout *l;
    if (vd_weights_open(small_path[1], &w) != VD_OK || vd_dit_layout(w, &l) != VD_OK)
        die("opening a test model");
    char limit[32];
    snprintf(limit, sizeof limit, "%llu", (unsigned long long)(3 * l->units[1].bytes));
    vd_pack_layout_free(l);
    vd_weights_close(w);
    pinned_case(limit, "VD_OFFLOAD_PIN_LIMIT=3 blocks");
}

static void donor_case(const char *path, bool no_peer, const char *map, const char *label)
{
    if (no_peer)
        setenv("VD_OFFLOAD_NO_PEER", "1", 1);
    else
        unsetenv("VD_OFFLOAD_NO_PEER");
    vd_offload_options o;
    if (vd_offload_options_from_env(&o) != VD_OK)
        die("offload options");
    vd_backend *be = open_gpu();
    vd_weights *w;
    vd_pack_layout *l;
    if (vd_weights_open(path, &w) != VD_OK || vd_dit_layout(w, &l) != VD_OK)
        die("opening a test model");
    vd_arch_info ai;
    vd_arch_detect(w, &ai);
    inputs in = make_inputs(&ai.dit, LT, LH, LW, 51);
    const int64_t emb_n = VD_DIT_TEXT_LEN * ai.dit.dim;
    float *ref = malloc((size_t)in.n_out * sizeof *ref), *ref_emb = malloc((size_t)emb_n * sizeof *ref_emb);
    reference(be, w, &in, ref, ref_emb);
    machine mc = this_machine(&o);
    static vd_plan plan;
    if (plan_map(l, &mc, map, 2, &plan) != VD_OK)
        die("planning");
    char full[128];
    snprintf(full, sizeof full, "%s (block %.1f MB)", label, l->units[1].bytes / 1e6);
    check_plan(be, w, &plan, &o, &in, ref, ref_emb, emb_n, full);
    free(ref);
    free(ref_emb);
    free_inputs(&in);
    vd_pack_layout_free(l);
    vd_weights_close(w);
    vd_backend_close(be);
}

static void group_no_peer(void)
{
    if (n_gpus_seen < 2) {
        printf("  SKIPPED: needs a second GPU\n");
        return;
    }
    int can = 0;
    cudaDeviceCanAccessPeer(&can, 0, 1);
    printf("  cudaDeviceCanAccessPeer(cuda:0, cuda:1) = %d\n", can);
    donor_case(small_path[1], true, "11111111", "small, staged (VD_OFFLOAD_NO_PEER=1)");
    donor_case(medium_path, true, "111111111111", "12-block, staged, 2 chunks a block");
    donor_case(medium_path, true, "1H1H1H1H1H1H", "12-block, staged + host");
    if (can) {
        donor_case(small_path[1], false, "11111111", "small, peer");
        donor_case(medium_path, false, "1H1H1H1H1H1H", "12-block, peer + host");
    } else {
        printf("  these GPUs have no peer access: the peer path is not tested here\n");
    }
}

static void group_simulate(void)
{
    setenv("VD_SIMULATE_LINK_GBPS", "2", 1);
    vd_offload_options o;
    if (vd_offload_options_from_env(&o) != VD_OK)
        die("offload options");
    vd_backend *be = open_gpu();
    double bps = 0;
    if (vd_offload_measure_link(be, VD_LINK_HOST, 256u << 20, &o, false, &bps) != VD_OK)
        die("measuring the simulated host link");
    const bool ok = bps <= 1.25 * 2e9;
    printf("  host link capped at 2 GB/s: measured %.2f GB/s SIMULATED (%s)\n", bps / 1e9,
           ok ? "the cap holds" : "FASTER THAN THE CAP: pacing does not work");
    if (!ok)
        test_failures++;
    if (n_gpus_seen >= 2) {
        vd_offload_options po = o;
        machine mc = this_machine(&po);
        if (vd_offload_measure_link(be, VD_LINK_DONOR(1), 256u << 20, &o, mc.gpus[1].peer, &bps) != VD_OK)
            die("measuring the simulated donor link");
        printf("  cuda:1 link capped at 2 GB/s: measured %.2f GB/s SIMULATED (%s)\n", bps / 1e9,
               bps <= 2.5e9 ? "the cap holds" : "FASTER THAN THE CAP");
        if (bps > 2.5e9)
            test_failures++;
    }
    vd_backend_close(be);
}

static void group_links(void)
{
    vd_offload_options o = vd_offload_options_default();
    vd_backend *be = open_gpu();
    machine mc = this_machine(&o);
    double bps;
    if (vd_offload_measure_link(be, VD_LINK_HOST, 256u << 20, &o, false, &bps) != VD_OK)
        die("measuring the host link");
    printf("  host (pinned) -> cuda:0: %.2f GB/s\n", bps / 1e9);
    for (int g = 1; g < mc.n; g++) {
        for (int peer = 1; peer >= 0; peer--) {
            if (peer && !mc.gpus[g].peer)
                continue;
            if (vd_offload_measure_link(be, VD_LINK_DONOR(g), 256u << 20, &o, peer, &bps) != VD_OK)
                die("measuring a donor link");
            printf("  cuda:%d -> cuda:0 (%s): %.2f GB/s\n", g, peer ? "peer" : "staged through host", bps / 1e9);
        }
    }
    vd_backend_close(be);
}

static void group_overlap(void)
{
    vd_offload_options o = vd_offload_options_default();
    vd_backend *be = open_gpu();
    vd_weights *w;
    vd_pack_layout *l;
    if (vd_weights_open(medium_path, &w) != VD_OK || vd_dit_layout(w, &l) != VD_OK)
        die("opening the 12-block model");
    vd_arch_info ai;
    vd_arch_detect(w, &ai);
    machine mc = this_machine(&o);
    const int64_t sizes[2][3] = {{3, 32, 32}, {5, 64, 64}};
    double host_bps = 0;
    if (vd_offload_measure_link(be, VD_LINK_HOST, 256u << 20, &o, false, &host_bps) != VD_OK)
        die("measuring the host link");
    for (int s = 0; s < 2; s++) {
        const int64_t T = sizes[s][0], H = sizes[s][1], W = sizes[s][2];
        inputs in = make_inputs(&ai.dit, T, H, W, 61);
        double block_s = 0;
        if (vd_dit_time_block(be, w, T, H, W, 3, &block_s) != VD_OK)
            die("timing a block");
        float *out = malloc((size_t)in.n_out * sizeof *out);
        const char *maps[3] = {"RRRRRRRRRRRR", "HHHHHHHHHHHH", "HHHHHHHHHHHH"};
        const int depths[3] = {2, 1, 2};
        printf("  latent %lldx%lldx%lld: block %.3f ms, host link %.2f GB/s, block copy %.3f ms\n", (long long)T,
               (long long)H, (long long)W, block_s * 1e3, host_bps / 1e9, l->units[1].bytes / host_bps * 1e3);
        for (int i = 0; i < 3; i++) {
            static vd_plan plan;
            if (plan_map(l, &mc, maps[i], depths[i], &plan) != VD_OK)
                die("planning");
            vd_plan_unit_in units[VD_PLAN_MAX_UNITS];
            layout_units(l, units);
            vd_plan_input pin = {.units = units, .n_units = l->n, .compute = 0, .gpus = mc.gpus, .n_gpus = mc.n,
                                 .depth = depths[i], .block_compute_s = block_s};
            pin.link_bps[VD_LINK_HOST] = host_bps;
            vd_plan_predict(&pin, &plan);
            vd_dit *m;
            if (vd_dit_load_planned(be, w, &plan, &o, &m) != VD_OK)
                die("loading");
            forward(be, m, &in, out, NULL, NULL); /* warm-up */
            const int reps = 5;
            double t0 = now();
            for (int r = 0; r < reps; r++)
                if (forward(be, m, &in, out, NULL, NULL) != VD_OK)
                    die("a timed pass");
            const double per = (now() - t0) / reps;
            printf("    %s depth %d: %8.3f ms a pass (blocks predicted %8.3f ms; the rest is the stem, head, "
                   "text embedding and transfers of the latent)\n",
                   i == 0 ? "resident      " : "all host      ", depths[i], per * 1e3, plan.predicted_s * 1e3);
            vd_dit_free(m);
        }
        free(out);
        free_inputs(&in);
    }
    vd_pack_layout_free(l);
    vd_weights_close(w);
    vd_backend_close(be);
}

/* A pipeline of the small bf16 model and the tiny VAE on cuda:0 with this
 * allocation (NULL: resident), or NULL and a counted failure. */
static vd_pipeline *open_small_pipeline(const char *allocation)
{
    vd_pipeline_options po = vd_pipeline_options_default();
    po.dit = small_path[1];
    po.vae = GOLDEN "vae_tiny_f32.safetensors";
    po.device = "cuda:0";
    po.allocation = allocation;
    vd_pipeline *p;
    if (vd_pipeline_open(&po, &p) != VD_OK) {
        printf("  allocation %-20s OPEN FAILED: %s\n", allocation ? allocation : "(none)", vd_last_error());
        test_failures++;
        return NULL;
    }
    return p;
}

static void group_pipeline(void)
{
    const int width = 64, height = 64, frames = 5, steps = 3;
    const char *allocs[3] = {NULL, "cuda:0,3mb;cpu,*", "auto"};
    float *latent[3] = {NULL, NULL, NULL};
    int64_t n = 0;
    vd_weights *w;
    vd_arch_info ai;
    if (vd_weights_open(small_path[1], &w) != VD_OK || vd_arch_detect(w, &ai) != VD_OK)
        die("opening a test model");
    vd_weights_close(w);
    float *ctx = random_floats(71, CTX_ROWS * ai.dit.text_dim, -1, 1);
    float *neg = random_floats(72, CTX_ROWS * ai.dit.text_dim, -1, 1);
    for (int i = 0; i < 3; i++) {
        vd_pipeline *p = open_small_pipeline(allocs[i]);
        if (!p)
            continue;
        vd_request_params rq = vd_request_params_default();
        rq.context = ctx;
        rq.context_rows = CTX_ROWS;
        rq.negative_context = neg;
        rq.negative_rows = CTX_ROWS;
        rq.width = width, rq.height = height, rq.frames = frames, rq.steps = steps, rq.seed = 5;
        int64_t shape[4];
        vd_pipeline_latent_shape(p, &rq, shape);
        n = shape[0] * shape[1] * shape[2] * shape[3];
        latent[i] = malloc((size_t)n * sizeof(float));
        rq.latent_out = latent[i];
        vd_status st = vd_pipeline_generate(p, &rq, NULL);
        if (st != VD_OK) {
            printf("  allocation %-20s GENERATE FAILED: %s\n", allocs[i] ? allocs[i] : "(none)", vd_last_error());
            test_failures++;
            free(latent[i]);
            latent[i] = NULL;
        } else if (i > 0 && latent[0]) {
            bool same = memcmp(latent[i], latent[0], (size_t)n * sizeof(float)) == 0;
            printf("  allocation %-20s %d steps: latent %s the pipeline without an allocation\n", allocs[i], steps,
                   same ? "bit-identical to" : "DIFFERS from");
            if (!same)
                test_failures++;
        }
        vd_pipeline_close(p);
    }
    /* an unknown device in the allocation, through the pipeline */
    vd_pipeline_options po = vd_pipeline_options_default();
    po.dit = small_path[1];
    po.vae = GOLDEN "vae_tiny_f32.safetensors";
    po.device = "cuda:0";
    po.allocation = "cuda:0,1mb;cuda:9,*";
    vd_pipeline *p;
    vd_status st = vd_pipeline_open(&po, &p);
    printf("  allocation with cuda:9: %s\n", st == VD_OK ? "ACCEPTED (wrong)" : vd_last_error());
    if (st == VD_OK) {
        test_failures++;
        vd_pipeline_close(p);
    } else if (!strstr(vd_last_error(), "cuda:9")) {
        test_failures++;
    }
    for (int i = 0; i < 3; i++)
        free(latent[i]);
    free(ctx);
    free(neg);
}

/* ---- driver ------------------------------------------------------------------------- */

typedef struct group {
    const char *name;
    void (*fn)(void);
} group;

typedef struct replan_probe {
    vd_pipeline *p;
    vd_device_memory at_decode; /* the DiT device's counters when decoding began */
    bool seen;
} replan_probe;

static void replan_progress(void *user, const vd_progress *pr)
{
    replan_probe *b = user;
    if (pr->stage == VD_STAGE_DECODE && !b->seen)
        b->seen = vd_pipeline_device_memory(b->p, VD_STAGE_SAMPLE, &b->at_decode) == VD_OK;
}

static void group_replan(void)
{
    const int width = 1280, height = 720, frames = 81, steps = 2;
    const int64_t T = (frames - 1) / 4 + 1, h = height / 8, w = width / 8;
    vd_weights *wt;
    vd_arch_info ai;
    vd_pack_layout *l;
    if (vd_weights_open(small_path[1], &wt) != VD_OK || vd_arch_detect(wt, &ai) != VD_OK ||
        vd_dit_layout(wt, &l) != VD_OK)
        die("opening a test model");
    /* room for the stem, a ring of 2 and this clip's activations, not for
     * every block beside them */
    const uint64_t act = vd_dit_activation_bytes(&ai.dit, 2, T, h, w);
    const uint64_t budget = l->units[0].bytes + 2 * l->units[1].bytes + act + l->units[1].bytes / 2;
    vd_pack_layout_free(l);
    vd_weights_close(wt);
    char alloc[64];
    snprintf(alloc, sizeof alloc, "auto,%llub", (unsigned long long)budget);
    float *ctx = random_floats(73, CTX_ROWS * ai.dit.text_dim, -1, 1);
    float *neg = random_floats(74, CTX_ROWS * ai.dit.text_dim, -1, 1);
    const char *allocs[2] = {alloc, NULL};
    float *latent[2] = {NULL, NULL};
    int64_t n = 0;
    for (int i = 0; i < 2; i++) {
        vd_pipeline *p = open_small_pipeline(allocs[i]);
        if (!p)
            continue;
        replan_probe probe = {.p = p};
        vd_request_params rq = vd_request_params_default();
        rq.context = ctx, rq.context_rows = CTX_ROWS;
        rq.negative_context = neg, rq.negative_rows = CTX_ROWS;
        rq.width = width, rq.height = height, rq.frames = frames, rq.steps = steps, rq.seed = 9;
        rq.on_progress = replan_progress, rq.user = &probe;
        int64_t shape[4];
        vd_pipeline_latent_shape(p, &rq, shape);
        n = shape[0] * shape[1] * shape[2] * shape[3];
        latent[i] = malloc((size_t)n * sizeof(float));
        rq.latent_out = latent[i];
        if (vd_pipeline_generate(p, &rq, NULL) != VD_OK) {
            printf("  %s: GENERATE FAILED: %s\n", allocs[i] ? allocs[i] : "resident", vd_last_error());
            test_failures++;
        } else if (i == 0) {
            const double peak = probe.seen ? (double)probe.at_decode.peak_bytes : 0;
            const bool within = probe.seen && peak <= 1.05 * (double)budget;
            printf("  %s (activations %.1f MB at %dx%dx%d): sampling peak %.1f MB %s the budget + 5%%\n", alloc,
                   act / 1e6, width, height, frames, peak / 1e6, within ? "within" : "ABOVE");
            if (!within)
                test_failures++;
        } else {
            const bool same = latent[0] && memcmp(latent[0], latent[1], (size_t)n * sizeof(float)) == 0;
            printf("  re-planned latent %s the resident pipeline's\n", same ? "bit-identical to" : "DIFFERS from");
            if (!same)
                test_failures++;
        }
        vd_pipeline_close(p);
    }
    free(latent[0]);
    free(latent[1]);
    free(ctx);
    free(neg);
}

static const group groups[] = {
    {"machine", group_machine},   {"determinism", group_determinism}, {"placements", group_placements},
    {"slow-links", group_slow_links}, {"budget", group_budget},       {"pinned", group_pinned},
    {"no-peer", group_no_peer},   {"simulate", group_simulate},       {"links", group_links},
    {"overlap", group_overlap},   {"pipeline", group_pipeline},       {"replan", group_replan},
};

static bool wanted(const char *name, int argc, char **argv)
{
    if (argc < 2)
        return true;
    for (int i = 1; i < argc; i++)
        if (strcmp(argv[i], name) == 0)
            return true;
    return false;
}

static int count_gpus_in_child(void)
{
    /* CUDA must not start in the parent (the groups fork) */
    int fd[2];
    if (pipe(fd) != 0)
        return 0;
    pid_t pid = fork();
    if (pid == 0) {
        close(fd[0]);
        int n = 0;
        if (cudaGetDeviceCount(&n) != cudaSuccess)
            n = 0;
        if (write(fd[1], &n, sizeof n) != (ssize_t)sizeof n)
            _exit(1);
        _exit(0);
    }
    close(fd[1]);
    int n = 0;
    if (read(fd[0], &n, sizeof n) != (ssize_t)sizeof n)
        n = 0;
    close(fd[0]);
    waitpid(pid, NULL, 0);
    return n;
}

int main(int argc, char **argv)
{
    n_gpus_seen = count_gpus_in_child();
    if (n_gpus_seen < 1) {
        printf("test_offload: no GPU, skipped\n");
        return 77;
    }
    snprintf(dir, sizeof dir, "/tmp/vd_test_offload_XXXXXX");
    if (!mkdtemp(dir))
        die("mkdtemp");
    printf("test_offload: writing the test models to %s\n", dir);
    for (int d = 0; d < 4; d++) {
        snprintf(small_path[d], sizeof small_path[d], "%s/small_%s.%s", dir, small_dtypes[d],
                 d == 3 ? "gguf" : "safetensors");
        if (offload_test_model(small_path[d], small_dtypes[d], 256, 512, SMALL_LAYERS, 3) != VD_OK)
            die("writing a small test model");
    }
    snprintf(medium_path, sizeof medium_path, "%s/medium_bf16.safetensors", dir);
    if (offload_test_model(medium_path, "bf16", 1024, 8192, MEDIUM_LAYERS, 4) != VD_OK)
        die("writing the 12-block test model");
    fflush(stdout);
    int failed_groups = 0, ran = 0;
    for (size_t i = 0; i < sizeof groups / sizeof groups[0]; i++) {
        if (!wanted(groups[i].name, argc, argv))
            continue;
        printf("[%s]\n", groups[i].name);
        fflush(stdout);
        pid_t pid = fork();
        if (pid == 0) {
            groups[i].fn();
            fflush(NULL);
            _exit(test_failures > 255 ? 255 : test_failures);
        }
        int status = 0;
        waitpid(pid, &status, 0);
        ran++;
        if (WIFEXITED(status) && WEXITSTATUS(status) == 0) {
            printf("[%s] ok\n", groups[i].name);
        } else {
            failed_groups++;
            if (WIFEXITED(status))
                printf("[%s] FAILED: %d check(s)\n", groups[i].name, WEXITSTATUS(status));
            else
                printf("[%s] FAILED: killed by signal %d\n", groups[i].name,
                       WIFSIGNALED(status) ? WTERMSIG(status) : -1);
        }
        fflush(stdout);
    }
    for (int d = 0; d < 4; d++)
        remove(small_path[d]);
    remove(medium_path);
    rmdir(dir);
    printf("test_offload: %d of %d group(s) failed\n", failed_groups, ran);
    return failed_groups ? 1 : 0;
}

#else /* no CUDA */

int main(void)
{
    printf("test_offload: this build has no CUDA, skipped\n");
    return 77;
}

#endif

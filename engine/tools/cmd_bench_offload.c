/* Offloading benchmark: the seconds per sampling step (one DiT pass over
 * cond + uncond) of a checkpoint as a growing fraction of its blocks is
 * streamed from each source, next to the planner's prediction.  Not a test:
 * run it on the GPU machine; results go to RESULTS.md.
 *
 *   vdiff bench-offload --model M [--device cuda:0] [--width 832 --height 480 --frames 81]
 *                 [--steps 3] [--fractions 0,25,50,75,100] [--depth 2]
 *                 [--sources none,host,donor,sim6.8,sim27.2,sim50.8,auto12gb]
 *                 [--placement spread|contiguous] [--donor cuda:1]
 *
 * Sources: none (everything resident, the baseline), host (pinned host
 * memory), donor (the --donor GPU), simX (pinned host memory with the link
 * capped at X GB/s by pacing: SIMULATED; DisTorch2's published links are
 * 6.8 = PCIe 3.0 x8, 27.2 = PCIe 4.0 x16, 50.8 = NVLink 3090), autoSIZE
 * (the planner's automatic mode within a VRAM budget of SIZE on the compute
 * GPU, "auto12gb": one point, blocks streamed from wherever it chose).
 *
 * Output: comment lines (#) with the machine, the measured block time and
 * link speeds, then CSV:
 *   source,gb_offloaded,s_per_step,peak_vram_gb,predicted_s,fraction,blocks_offloaded,depth,placement,simulated */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "backend/backend.h"
#include "core/rng.h"
#include "io/weights.h"
#include "models/wan_dit.h"
#include "tools/commands.h"
#include "vd_config.h"

#if VD_HAVE_CUDA
#include "backend/cuda/backend_cuda.h"
#include "offload/devices.h"
#include "offload/streaming.h"

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static void usage(void)
{
    fprintf(stderr, "usage: vdiff bench-offload --model M [--device cuda:0] [--width W --height H --frames F] [--steps N]\n"
                    "                           [--fractions 0,25,50,75,100] [--depth 2] [--placement spread|contiguous]\n"
                    "                           [--sources none,host,donor,sim6.8,sim27.2,sim50.8,auto12gb] [--donor cuda:1]\n");
}

static int fail(const char *what)
{
    fprintf(stderr, "vdiff bench-offload: %s: %s\n", what, vd_last_error());
    return 1;
}

typedef struct source {
    char name[32];
    vd_tier tier;
    double sim_gbps;  /* 0: real link */
    vd_allocation budget; /* autoSIZE: the parsed "auto,SIZE" */
    bool is_auto;
} source;

int vd_cmd_bench_offload(int argc, char **argv)
{
    const char *model = NULL, *device = "cuda:0", *fractions = "0,25,50,75,100", *sources_text =
        "none,host,donor,sim6.8,sim27.2,sim50.8", *placement = "spread";
    int width = 832, height = 480, frames = 81, steps = 3, depth = 2, donor = 1;
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            usage();
            return 0;
        }
        if (!v) {
            usage();
            return 2;
        }
        if (!strcmp(a, "--model"))
            model = v;
        else if (!strcmp(a, "--device"))
            device = v;
        else if (!strcmp(a, "--width"))
            width = atoi(v);
        else if (!strcmp(a, "--height"))
            height = atoi(v);
        else if (!strcmp(a, "--frames"))
            frames = atoi(v);
        else if (!strcmp(a, "--steps"))
            steps = atoi(v);
        else if (!strcmp(a, "--depth"))
            depth = atoi(v);
        else if (!strcmp(a, "--fractions"))
            fractions = v;
        else if (!strcmp(a, "--sources"))
            sources_text = v;
        else if (!strcmp(a, "--placement"))
            placement = v;
        else if (!strcmp(a, "--donor") && !strncmp(v, "cuda:", 5))
            donor = atoi(v + 5);
        else {
            usage();
            return 2;
        }
        i++;
    }
    if (!model || steps < 1 || depth < 1 || depth > VD_PLAN_MAX_DEPTH || frames < 1 || (frames - 1) % 4 ||
        width % 16 || height % 16 || (strcmp(placement, "spread") && strcmp(placement, "contiguous"))) {
        usage();
        return 2;
    }
    const int64_t T = (frames - 1) / 4 + 1, H = height / 8, W = width / 8;
    vd_weights *w;
    vd_pack_layout *l;
    vd_arch_info ai;
    if (vd_weights_open(model, &w) != VD_OK || vd_arch_detect(w, &ai) != VD_OK || vd_dit_layout(w, &l) != VD_OK)
        return fail(model);
    const vd_dit_config *c = &ai.dit;
    const int N = l->n - 1;
    vd_backend *be;
    if (vd_backend_open(device, NULL, &be) != VD_OK)
        return fail(device);
    const int compute = be->device_index;
    vd_offload_options base = vd_offload_options_default();
    vd_plan_gpu gpus[VD_PLAN_MAX_GPUS];
    int n_gpus;
    if (vd_offload_gpus(compute, &base, ~0u, gpus, VD_PLAN_MAX_GPUS, &n_gpus) != VD_OK)
        return fail("listing the GPUs");
    const bool have_donor = donor != compute && donor >= 0 && donor < n_gpus;

    /* what the prediction rests on */
    double block_s = 0, host_bps = 0, donor_bps = 0;
    if (vd_dit_time_block(be, w, T, H, W, 3, &block_s) != VD_OK)
        return fail("timing a block");
    vd_backend_cuda_release_cached(be);
    if (vd_offload_measure_link(be, VD_LINK_HOST, 256u << 20, &base, false, &host_bps) != VD_OK)
        return fail("measuring the host link");
    if (have_donor &&
        vd_offload_measure_link(be, VD_LINK_DONOR(donor), 256u << 20, &base, gpus[donor].peer, &donor_bps) != VD_OK)
        return fail("measuring the donor link");
    vd_backend_close(be);

    printf("# vdiff bench-offload %s: %s, %d blocks, %.2f GB packed (block %.1f MB)\n", model, ai.name, N,
           vd_pack_layout_bytes(l) / 1e9, l->units[1].bytes / 1e6);
    printf("# libvdiff %s; %s %s, %.1f GB; clip %dx%d, %d frames (latent %lldx%lldx%lld, %lld tokens), batch 2\n",
           VD_VERSION, device, gpus[compute].name, gpus[compute].total_bytes / 1e9, width, height, frames,
           (long long)T, (long long)H, (long long)W, (long long)(T * (H / c->patch[1]) * (W / c->patch[2])));
    printf("# block compute %.3f ms per pass (measured); host link %.2f GB/s (pinned, measured)", block_s * 1e3,
           host_bps / 1e9);
    if (have_donor)
        printf("; cuda:%d link %.2f GB/s (%s, measured)", donor, donor_bps / 1e9,
               gpus[donor].peer ? "peer" : "staged through host");
    printf("\n# ring depth %d, %s placement, %d timed steps after one warm-up\n", depth, placement, steps);
    printf("# predicted_s: the planner's replay of the blocks only (stem, head and latent transfers not modelled);\n"
           "# peak_vram_gb: the allocator's peak on %s since the model's backend opened (weights, ring, activations)\n",
           device);
    printf("source,gb_offloaded,s_per_step,peak_vram_gb,predicted_s,fraction,blocks_offloaded,depth,placement,"
           "simulated\n");
    fflush(stdout);

    source srcs[16];
    int n_src = 0;
    char buf[256];
    snprintf(buf, sizeof buf, "%s", sources_text);
    char *save = NULL;
    for (char *t = strtok_r(buf, ",", &save); t && n_src < 16; t = strtok_r(NULL, ",", &save)) {
        source *s = &srcs[n_src];
        memset(s, 0, sizeof *s);
        snprintf(s->name, sizeof s->name, "%s", t);
        if (!strcmp(t, "none"))
            s->tier = VD_TIER_RESIDENT;
        else if (!strcmp(t, "host"))
            s->tier = VD_TIER_HOST;
        else if (!strcmp(t, "donor")) {
            if (!have_donor) {
                printf("# donor: SKIPPED (no cuda:%d)\n", donor);
                continue;
            }
            s->tier = VD_TIER_DONOR;
            snprintf(s->name, sizeof s->name, "donor-cuda:%d", donor);
        } else if (!strncmp(t, "sim", 3) && atof(t + 3) > 0) {
            s->tier = VD_TIER_HOST;
            s->sim_gbps = atof(t + 3);
            snprintf(s->name, sizeof s->name, "host-sim-%g", s->sim_gbps);
        } else if (!strncmp(t, "auto", 4) && t[4]) {
            char spec[64];
            snprintf(spec, sizeof spec, "auto,%s", t + 4);
            if (vd_allocation_parse(spec, &s->budget) != VD_OK) {
                fprintf(stderr, "vdiff bench-offload: source '%s': %s\n", t, vd_last_error());
                return 2;
            }
            s->is_auto = true;
            s->tier = VD_TIER_HOST;
        } else {
            fprintf(stderr, "vdiff bench-offload: unknown source '%s'\n", t);
            return 2;
        }
        n_src++;
    }

    float *latent = malloc((size_t)(2 * c->in_dim * T * H * W) * sizeof *latent);
    float *vel = malloc((size_t)(2 * c->out_dim * T * H * W) * sizeof *vel);
    float *ctx = malloc((size_t)(2 * 128 * c->text_dim) * sizeof *ctx);
    if (!latent || !vel || !ctx)
        return fail("out of memory");
    vd_rng_normal(1, 0, 0, latent, 2 * c->in_dim * T * H * W);
    vd_rng_normal(2, 0, 0, ctx, 2 * 128 * c->text_dim);

    vd_plan_unit_in units[VD_PLAN_MAX_UNITS];
    for (int u = 0; u <= N; u++)
        units[u] = (vd_plan_unit_in){.name = l->units[u].name, .bytes = l->units[u].bytes};
    for (int si = 0; si < n_src; si++) {
        const source *s = &srcs[si];
        char fb[256];
        snprintf(fb, sizeof fb, "%s", s->tier == VD_TIER_RESIDENT || s->is_auto ? "0" : fractions);
        char *save2 = NULL;
        for (char *f = strtok_r(fb, ",", &save2); f; f = strtok_r(NULL, ",", &save2)) {
            const double frac = atof(f) / 100.0;
            const int k = (int)lround(frac * N);
            vd_plan_input in = {.units = units, .n_units = N + 1, .compute = compute, .gpus = gpus, .n_gpus = n_gpus,
                                .depth = depth, .block_compute_s = block_s,
                                .positions = strcmp(placement, "contiguous") ? VD_PLACE_SPREAD : VD_PLACE_CONTIGUOUS,
                                .simulated = s->sim_gbps > 0};
            in.link_bps[VD_LINK_HOST] = s->sim_gbps > 0 ? fmin(host_bps, s->sim_gbps * 1e9) : host_bps;
            if (have_donor)
                in.link_bps[VD_LINK_DONOR(donor)] = donor_bps;
            /* k blocks on the source, at the positions the planner would pick */
            vd_plan_place places[VD_PLAN_MAX_UNITS];
            for (int u = 0; u <= N; u++)
                places[u] = (vd_plan_place){VD_TIER_RESIDENT, -1};
            for (int j = 0; j < k && s->tier != VD_TIER_RESIDENT; j++) {
                int pos = in.positions == VD_PLACE_CONTIGUOUS ? j : (int)(((int64_t)(2 * j + 1) * N) / (2 * k));
                places[1 + pos] = (vd_plan_place){s->tier, s->tier == VD_TIER_DONOR ? donor : -1};
            }
            static vd_plan plan;
            if (s->is_auto) {
                /* the planner decides, within the budget, as vdiff plan / generate would */
                in.alloc = &s->budget;
                in.alloc_text = s->name;
                in.activation_bytes = vd_dit_activation_bytes(c, 2, T, H, W);
                if (vd_plan_make(&in, &plan) != VD_OK)
                    return fail(s->name);
            } else if (vd_plan_from_places(&in, places, &plan) != VD_OK)
                return fail("planning");
            vd_offload_options o = base;
            if (s->sim_gbps > 0) {
                o.sim.active = true;
                o.sim.bps[VD_LINK_HOST] = s->sim_gbps * 1e9;
            }
            if (vd_backend_open(device, NULL, &be) != VD_OK)
                return fail(device);
            vd_dit *m;
            if (vd_dit_load_planned(be, w, &plan, &o, &m) != VD_OK)
                return fail("loading with the plan");
            vd_tensor tc, tu;
            if (vd_dit_embed_text(m, ctx, 100, &tc) != VD_OK ||
                vd_dit_embed_text(m, ctx + 128 * c->text_dim, 120, &tu) != VD_OK)
                return fail("embedding the text");
            vd_dit_call call = {.batch = 2,
                                .frames = T,
                                .height = H,
                                .width = W,
                                .latent = latent,
                                .text = {&tc, &tu},
                                .timestep = 900,
                                .velocity = vel};
            if (vd_dit_forward(m, &call) != VD_OK) /* warm-up: allocator, cuBLASLt heuristics, first copies */
                return fail("the warm-up pass");
            double t0 = now();
            for (int r = 0; r < steps; r++)
                if (vd_dit_forward(m, &call) != VD_OK)
                    return fail("a timed pass");
            const double per = (now() - t0) / steps;
            vd_cuda_memory_stats ms;
            vd_backend_cuda_memory(be, &ms);
            vd_dit_offload_report rep;
            vd_dit_offload_report_get(m, &rep);
            const uint64_t off = plan.host_bytes + (have_donor ? plan.donor_bytes[donor] : 0);
            printf("%s,%.3f,%.4f,%.3f,%.4f,%.2f,%d,%d,%s,%s\n", s->name, off / 1e9, per, ms.peak_bytes / 1e9,
                   plan.has_prediction ? plan.predicted_s : NAN, frac, plan.n_streamed, plan.depth, placement,
                   s->sim_gbps > 0 ? "SIMULATED" : "");
            if (s->is_auto)
                printf("# %s: %d of %d blocks streamed, planned VRAM %.3f GB of the %.3f GB budget (activations "
                       "%.3f GB), peak %.3f GB\n",
                       s->name, plan.n_streamed, N, plan.vram_bytes / 1e9, plan.budget_bytes / 1e9,
                       plan.activation_bytes / 1e9, ms.peak_bytes / 1e9);
            if (rep.warnings[0])
                printf("# warnings: %s\n", rep.warnings);
            fflush(stdout);
            vd_tensor_release(&tc);
            vd_tensor_release(&tu);
            vd_dit_free(m);
            vd_backend_close(be);
        }
    }
    free(latent);
    free(vel);
    free(ctx);
    vd_pack_layout_free(l);
    vd_weights_close(w);
    return 0;
}

#else

int vd_cmd_bench_offload(int argc, char **argv)
{
    (void)argc, (void)argv;
    fprintf(stderr, "vdiff bench-offload: this build of vdiff has no CUDA support; rebuild with -Dcuda=enabled\n");
    return 1;
}

#endif

/* vdiff plan: where a DiT's weights would live for an allocation, how much
 * VRAM that needs, and what a sampling step should cost. */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "io/weights.h"
#include "models/arch.h"
#include "models/wan_dit.h"
#include "offload/allocation.h"
#include "offload/plan.h"
#include "offload/streamer.h"
#include "tools/args.h"
#include "tools/commands.h"
#include "vd_config.h"

#if VD_HAVE_CUDA
#include "backend/cuda/backend_cuda.h"
#include "offload/devices.h"
#include "offload/streaming.h"
#endif

static const char *const plan_help =
    "usage: vdiff plan --model M [--width W --height H --frames F] [--device cuda:N]\n"
    "                  [--allocation STR] [--budget SIZE] [--depth N] [--placement spread|contiguous]\n\n"
    "Show where a DiT's weights would live (resident on the compute GPU, on donor GPUs,\n"
    "in pinned host memory), the VRAM that needs, and the predicted time of one\n"
    "sampling step (one pass of cond + uncond).  On a machine with a GPU, one block\n"
    "is timed at the clip size and each link's speed is measured with a 256 MB copy.\n\n"
    "  --model FILE         Wan DiT checkpoint (.safetensors or .gguf)\n"
    "  --width N --height N --frames N   clip size (default: the model's, 832x480, 81)\n"
    "  --device cuda:N      compute GPU (default cuda:0)\n"
    "  --allocation STR     \"cuda:0,8gb;cpu,*\" (bytes), \"cuda:0,8%;cuda:1,8%;cpu,4%\" (ratios),\n"
    "                       \"cuda:0,0.5;cpu,*\" (fractions of device memory),\n"
    "                       \"virtual_vram_gb=20;donors=cuda:1,cpu\", \"auto\" or \"auto,12gb\";\n"
    "                       default: everything resident\n"
    "  --budget SIZE        VRAM cap on the compute GPU (weights, ring and activations)\n"
    "  --depth N            ring slots for streamed blocks (default 2)\n"
    "  --placement P        spread (default): streamed blocks spread over the pass;\n"
    "                       contiguous: each source's blocks in one run\n"
    "  --no-measure         do not time a block or measure links on this machine\n\n"
    "Planning for another machine (no GPU needed):\n"
    "  --gpus SIZE[,SIZE]   the GPUs' memory (cuda:0, cuda:1, ...), e.g. 24gb,24gb\n"
    "  --no-peer            those GPUs have no peer access (donor copies staged through host)\n"
    "  --host-memory SIZE   host RAM available for weights\n"
    "  --block-ms X         time of one block per pass (cond + uncond) at this clip size\n"
    "  --host-gbps X        pinned host -> GPU speed\n"
    "  --donor-gbps X       donor GPU -> compute GPU speed\n\n"
    "VD_SIMULATE_LINK_GBPS=6.8 (or host=6.8,cuda:1=50.8) caps link speeds; every number\n"
    "that depends on it is marked SIMULATED.\n";

static const char *gb(uint64_t b, char *buf, size_t n)
{
    if (b >= 1000000000ull)
        snprintf(buf, n, "%.2f GB", (double)b / 1e9);
    else
        snprintf(buf, n, "%.1f MB", (double)b / 1e6);
    return buf;
}

/* seconds, in ms below one second */
static const char *secs(double s, char *buf, size_t n)
{
    if (s < 1.0)
        snprintf(buf, n, "%.3f ms", s * 1e3);
    else
        snprintf(buf, n, "%.3f s", s);
    return buf;
}

static const char *mode_name(vd_alloc_mode m)
{
    switch (m) {
    case VD_ALLOC_RESIDENT: return "resident";
    case VD_ALLOC_BYTES: return "bytes";
    case VD_ALLOC_RATIO: return "ratios";
    case VD_ALLOC_FRACTION: return "fractions of device memory";
    case VD_ALLOC_VIRTUAL_VRAM: return "virtual VRAM";
    case VD_ALLOC_AUTO: return "auto";
    }
    return "?";
}

static int meta_int(const vd_weights *w, const char *key, int fallback)
{
    const char *v = vd_weights_meta_string(w, key);
    if (!v)
        return fallback;
    char *end;
    long x = strtol(v, &end, 10);
    return (*end == '\0' && x > 0 && x < 100000) ? (int)x : fallback;
}

/* One character per block: R resident, H host, 0-9 donor ordinal, D donor ≥ 10. */
static char place_char(const vd_plan_place *p)
{
    if (p->tier == VD_TIER_RESIDENT)
        return 'R';
    if (p->tier == VD_TIER_HOST)
        return 'H';
    return p->device < 10 ? (char)('0' + p->device) : 'D';
}

static void where(const vd_plan *plan, const vd_plan_place *p, char *buf, size_t n)
{
    if (p->tier == VD_TIER_RESIDENT)
        snprintf(buf, n, "cuda:%d", plan->compute);
    else if (p->tier == VD_TIER_HOST)
        snprintf(buf, n, "host");
    else
        snprintf(buf, n, "cuda:%d", p->device);
}

static bool same_place(const vd_plan_place *a, const vd_plan_place *b)
{
    return a->tier == b->tier && (a->tier != VD_TIER_DONOR || a->device == b->device);
}

static void print_plan(const vd_plan *plan, const vd_plan_input *in, const vd_pack_layout *l)
{
    char s1[32], s2[32], w[16];
    const int N = plan->n_units - 1;
    printf("\nplacement (R resident, H host, N donor cuda:N; one character per block, in execution order)\n  S ");
    for (int u = 1; u <= N; u++) {
        putchar(place_char(&plan->units[u]));
        if (u % 10 == 0 && u < N)
            putchar(' ');
    }
    printf("\n");
    printf("  %-14s %-9s %-8s %s\n", "units", "tier", "where", "bytes");
    where(plan, &plan->units[0], w, sizeof w);
    printf("  %-14s %-9s %-8s %s\n", "stem", "resident", w, gb(l->units[0].bytes, s1, sizeof s1));
    for (int u = 1; u <= N;) {
        int v = u;
        uint64_t bytes = 0;
        while (v <= N && same_place(&plan->units[v], &plan->units[u]))
            bytes += l->units[v++].bytes;
        char name[32];
        if (v - 1 == u)
            snprintf(name, sizeof name, "block %d", u - 1);
        else
            snprintf(name, sizeof name, "blocks %d-%d", u - 1, v - 2);
        where(plan, &plan->units[u], w, sizeof w);
        printf("  %-14s %-9s %-8s %s\n", name,
               plan->units[u].tier == VD_TIER_HOST ? "host" : vd_tier_name(plan->units[u].tier), w,
               gb(bytes, s1, sizeof s1));
        u = v;
    }
    int n_res = 0, n_host = 0, n_donor[VD_PLAN_MAX_GPUS] = {0};
    for (int u = 1; u <= N; u++) {
        if (plan->units[u].tier == VD_TIER_RESIDENT)
            n_res++;
        else if (plan->units[u].tier == VD_TIER_HOST)
            n_host++;
        else
            n_donor[plan->units[u].device]++;
    }
    printf("\nper tier\n");
    printf("  %-22s %10s  (stem + %d block%s)\n", "resident", gb(plan->resident_bytes, s1, sizeof s1), n_res,
           n_res == 1 ? "" : "s");
    if (plan->host_bytes)
        printf("  %-22s %10s  (%d block%s)\n", "host (pinned)", gb(plan->host_bytes, s1, sizeof s1), n_host,
               n_host == 1 ? "" : "s");
    for (int g = 0; g < VD_PLAN_MAX_GPUS; g++)
        if (plan->donor_bytes[g]) {
            char t[32];
            snprintf(t, sizeof t, "donor cuda:%d", g);
            printf("  %-22s %10s  (%d block%s)\n", t, gb(plan->donor_bytes[g], s1, sizeof s1), n_donor[g],
                   n_donor[g] == 1 ? "" : "s");
        }
    printf("\nVRAM on cuda:%d\n", plan->compute);
    printf("  %-22s %10s\n", "resident weights", gb(plan->resident_bytes, s1, sizeof s1));
    printf("  %-22s %10s  (%d slot%s x %s)\n", "ring", gb(plan->ring_bytes, s1, sizeof s1), plan->depth,
           plan->depth == 1 ? "" : "s", gb(plan->slot_bytes, s2, sizeof s2));
    printf("  %-22s %10s\n", "activations (estimate)", gb(plan->activation_bytes, s1, sizeof s1));
    printf("  %-22s %10s", "total", gb(plan->vram_bytes, s1, sizeof s1));
    if (plan->budget_bytes)
        printf("  (budget %s)\n", gb(plan->budget_bytes, s2, sizeof s2));
    else
        printf("\n");
    (void)in;
}

int vd_cmd_plan(int argc, char **argv)
{
    vd_args a;
    vd_args_init(&a, "vdiff plan", argc, argv);
    const char *model = NULL, *device = "cuda:0", *alloc_text = "", *placement = "spread", *gpus_text = NULL, *s;
    int64_t width = 0, height = 0, frames = 0, depth = 0;
    double budget = 0, host_mem = 0, block_ms = 0, host_gbps = 0, donor_gbps = 0;
    bool no_measure = false, no_peer = false, opt;
    while ((s = vd_args_next(&a, &opt))) {
        bool ok = true;
        if (!opt)
            return vd_args_error(&a, "unexpected argument '%s'", s);
        if (vd_args_is(&a, "--help") || vd_args_is(&a, "-h")) {
            fputs(plan_help, stdout);
            return 0;
        } else if (vd_args_is(&a, "--model"))
            ok = (model = vd_args_value(&a)) != NULL;
        else if (vd_args_is(&a, "--device"))
            ok = (device = vd_args_value(&a)) != NULL;
        else if (vd_args_is(&a, "--allocation"))
            ok = (alloc_text = vd_args_value(&a)) != NULL;
        else if (vd_args_is(&a, "--placement"))
            ok = (placement = vd_args_value(&a)) != NULL;
        else if (vd_args_is(&a, "--gpus"))
            ok = (gpus_text = vd_args_value(&a)) != NULL;
        else if (vd_args_is(&a, "--width"))
            ok = vd_args_int(&a, 16, 8192, &width);
        else if (vd_args_is(&a, "--height"))
            ok = vd_args_int(&a, 16, 8192, &height);
        else if (vd_args_is(&a, "--frames"))
            ok = vd_args_int(&a, 1, 4097, &frames);
        else if (vd_args_is(&a, "--depth"))
            ok = vd_args_int(&a, 1, VD_PLAN_MAX_DEPTH, &depth);
        else if (vd_args_is(&a, "--block-ms"))
            ok = vd_args_double(&a, 1e-6, 1e7, &block_ms);
        else if (vd_args_is(&a, "--host-gbps"))
            ok = vd_args_double(&a, 1e-6, 1e5, &host_gbps);
        else if (vd_args_is(&a, "--donor-gbps"))
            ok = vd_args_double(&a, 1e-6, 1e5, &donor_gbps);
        else if (vd_args_is(&a, "--no-measure"))
            no_measure = true;
        else if (vd_args_is(&a, "--no-peer"))
            no_peer = true;
        else if (vd_args_is(&a, "--budget") || vd_args_is(&a, "--host-memory")) {
            bool is_budget = vd_args_is(&a, "--budget");
            const char *v = vd_args_value(&a);
            double *dst = is_budget ? &budget : &host_mem;
            ok = v != NULL;
            if (ok && (!vd_parse_bytes(v, dst) || *dst <= 0))
                return vd_args_error(&a, "%s: '%s' is not a size (e.g. 12gb, 512mb)",
                                     is_budget ? "--budget" : "--host-memory", v);
        } else
            return vd_args_error(&a, "unknown option '%s'", s);
        if (!ok)
            return 2;
    }
    if (!model)
        return vd_args_error(&a, "--model is required");
    vd_plan_positions positions;
    if (strcmp(placement, "spread") == 0)
        positions = VD_PLACE_SPREAD;
    else if (strcmp(placement, "contiguous") == 0)
        positions = VD_PLACE_CONTIGUOUS;
    else
        return vd_args_error(&a, "--placement: '%s' is not spread or contiguous", placement);
    int compute = 0;
    if (strcmp(device, "cuda") != 0) {
        char *end;
        if (strncmp(device, "cuda:", 5) != 0 || !device[5] || (compute = (int)strtol(device + 5, &end, 10), *end) ||
            compute < 0 || compute >= VD_PLAN_MAX_GPUS)
            return vd_args_error(&a, "--device: '%s' is not cuda:N (offloading streams weights to a GPU)", device);
    }
    vd_allocation alloc;
    if (vd_allocation_parse(alloc_text, &alloc) != VD_OK)
        return vd_tool_fail(a.cmd, "--allocation");
    vd_offload_options oo;
    if (vd_offload_options_from_env(&oo) != VD_OK)
        return vd_tool_fail(a.cmd, NULL);
    if (no_peer)
        oo.no_peer = true;

    vd_weights *w = NULL;
    vd_pack_layout *layout = NULL;
    vd_arch_info info;
    if (vd_weights_open(model, &w) != VD_OK)
        return vd_tool_fail(a.cmd, NULL);
    if (vd_arch_detect(w, &info) != VD_OK || vd_dit_layout(w, &layout) != VD_OK) {
        vd_weights_close(w);
        return vd_tool_fail(a.cmd, NULL);
    }
    const vd_dit_config *c = &info.dit;
    const bool ti2v = c->variant == VD_DIT_TI2V22;
    if (!width)
        width = meta_int(w, "vdiff.default_width", ti2v ? 1280 : 832);
    if (!height)
        height = meta_int(w, "vdiff.default_height", ti2v ? 704 : 480);
    if (!frames)
        frames = meta_int(w, "vdiff.default_frames", ti2v ? 121 : 81);
    int rc = 0;
    const int64_t mult = 8 * c->patch[1];
    if (width % mult || height % mult || (frames - 1) % 4) {
        fprintf(stderr,
                "%s: %" PRId64 "x%" PRId64 ", %" PRId64 " frames: width and height must be multiples of %" PRId64
                " and frames 4k+1\n",
                a.cmd, width, height, frames, mult);
        rc = 2;
        goto done;
    }
    (void)no_measure; /* used with CUDA */
    const int64_t T = (frames - 1) / 4 + 1, lh = height / 8, lw = width / 8;
    const int64_t tokens = T * (lh / c->patch[1]) * (lw / c->patch[2]);

    /* the machine: described, or this one */
    vd_plan_gpu gpus[VD_PLAN_MAX_GPUS];
    int n_gpus = 0;
    bool real = false;
    char s1[32], s2[32], s3[32];
    if (gpus_text) {
        char buf[512];
        snprintf(buf, sizeof buf, "%s", gpus_text);
        char *save = NULL;
        for (char *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
            double b;
            if (n_gpus == VD_PLAN_MAX_GPUS || !vd_parse_bytes(t, &b) || b <= 0) {
                rc = vd_args_error(&a, "--gpus: '%s' is not a list of sizes (e.g. 24gb,24gb)", gpus_text);
                goto done;
            }
            gpus[n_gpus] = (vd_plan_gpu){.index = n_gpus, .total_bytes = (uint64_t)b, .free_bytes = (uint64_t)b,
                                         .peer = !oo.no_peer};
            snprintf(gpus[n_gpus].name, sizeof gpus[n_gpus].name, "described");
            n_gpus++;
        }
    } else {
#if VD_HAVE_CUDA
        if (vd_offload_gpus(compute, &oo, ~0u, gpus, VD_PLAN_MAX_GPUS, &n_gpus) != VD_OK) {
            fprintf(stderr, "%s: %s\n(to plan for another machine, describe its GPUs with --gpus 24gb[,24gb...])\n",
                    a.cmd, vd_last_error());
            rc = 1;
            goto done;
        }
        real = true;
#else
        fprintf(stderr,
                "%s: this build of vdiff has no CUDA, and offloading needs a CUDA build (-Dcuda=enabled); to plan "
                "for another machine, describe its GPUs with --gpus 24gb[,24gb...]\n",
                a.cmd);
        rc = 1;
        goto done;
#endif
    }
    vd_plan_unit_in units[VD_PLAN_MAX_UNITS];
    for (int u = 0; u < layout->n; u++)
        units[u] = (vd_plan_unit_in){.name = layout->units[u].name, .bytes = layout->units[u].bytes};
    vd_plan_input in = {
        .units = units, .n_units = layout->n, .compute = compute, .gpus = gpus, .n_gpus = n_gpus,
        .alloc = &alloc, .alloc_text = alloc_text, .activation_bytes = vd_dit_activation_bytes(c, 2, T, lh, lw),
        .budget_bytes = (uint64_t)budget, .depth = (int)depth, .positions = positions, .simulated = oo.sim.active,
    };
    if (host_mem > 0)
        in.host_total_bytes = in.host_free_bytes = (uint64_t)host_mem;
    else if (!gpus_text)
        vd_plan_host_memory(&in.host_total_bytes, &in.host_free_bytes);

    /* what the prediction rests on */
    const char *how_block = "unknown", *how_link[VD_PLAN_MAX_LINKS] = {0};
    if (block_ms > 0) {
        in.block_compute_s = block_ms / 1e3;
        how_block = "given";
    }
    if (host_gbps > 0) {
        in.link_bps[VD_LINK_HOST] = host_gbps * 1e9;
        how_link[VD_LINK_HOST] = "given";
    }
    for (int i = 0; i < n_gpus; i++)
        if (donor_gbps > 0 && gpus[i].index != compute) {
            in.link_bps[VD_LINK_DONOR(gpus[i].index)] = donor_gbps * 1e9;
            how_link[VD_LINK_DONOR(gpus[i].index)] = "given";
        }
#if VD_HAVE_CUDA
    if (real && !no_measure) {
        vd_backend *be = NULL;
        char dev[16];
        snprintf(dev, sizeof dev, "cuda:%d", compute);
        if (vd_backend_open(dev, NULL, &be) != VD_OK) {
            rc = vd_tool_fail(a.cmd, NULL);
            goto done;
        }
        printf("measuring on %s: one block at latent %" PRId64 "x%" PRId64 "x%" PRId64 ", then each link...\n", dev, T,
               lh, lw);
        fflush(stdout);
        if (!(block_ms > 0)) {
            if (vd_dit_time_block(be, w, T, lh, lw, 3, &in.block_compute_s) == VD_OK)
                how_block = "measured";
            else
                fprintf(stderr, "%s: cannot time a block: %s\n", a.cmd, vd_last_error());
        }
        vd_backend_cuda_release_cached(be);
        for (int i = 0; i <= n_gpus; i++) {
            int link = i == n_gpus ? VD_LINK_HOST : VD_LINK_DONOR(gpus[i].index);
            if ((i < n_gpus && gpus[i].index == compute) || how_link[link])
                continue;
            bool peer = i < n_gpus && gpus[i].peer;
            if (vd_offload_measure_link(be, link, 256u << 20, &oo, peer, &in.link_bps[link]) == VD_OK)
                how_link[link] = "measured";
            else
                fprintf(stderr, "%s: %s\n", a.cmd, vd_last_error());
        }
        vd_backend_close(be);
        /* the measurements' memory is back */
        vd_offload_gpus(compute, &oo, ~0u, gpus, VD_PLAN_MAX_GPUS, &n_gpus);
    }
#endif
    /* simulated caps apply to whatever the speed came from (a measurement through the capped path
     * already shows them; a given speed is capped here; an unknown one becomes the cap) */
    for (int l = 0; l < VD_PLAN_MAX_LINKS; l++) {
        double cap = vd_link_sim_cap(&oo.sim, l);
        if (cap > 0 && (!(in.link_bps[l] > 0) || in.link_bps[l] > cap)) {
            in.link_bps[l] = cap;
            how_link[l] = "SIMULATED cap";
        }
    }

    printf("model       %s: %s, %" PRId64 " blocks, %s packed (stem %s, largest block %s)\n", model, info.name,
           c->layers, gb(vd_pack_layout_bytes(layout), s1, sizeof s1), gb(layout->units[0].bytes, s2, sizeof s2),
           gb(layout->n > 1 ? layout->units[1].bytes : 0, s3, sizeof s3));
    printf("clip        %" PRId64 "x%" PRId64 ", %" PRId64 " frames -> latent %" PRId64 "x%" PRId64 "x%" PRId64
           ", %" PRId64 " tokens per sample, batch 2 (cond + uncond)\n",
           width, height, frames, T, lh, lw, tokens);
    for (int i = 0; i < n_gpus; i++)
        printf("%-11s cuda:%d %s: %s total, %s free%s%s\n", gpus[i].index == compute ? "compute" : "other",
               gpus[i].index, gpus[i].name, gb(gpus[i].total_bytes, s1, sizeof s1),
               gb(gpus[i].free_bytes, s2, sizeof s2),
               gpus[i].index == compute ? "" : (gpus[i].peer ? ", peer access" : ", no peer access (staged)"),
               real ? "" : " (described)");
    if (in.host_total_bytes)
        printf("host        %s, %s available\n", gb(in.host_total_bytes, s1, sizeof s1),
               gb(in.host_free_bytes, s2, sizeof s2));
    printf("allocation  \"%s\" (%s), ring of %d, %s placement\n", alloc_text, mode_name(alloc.mode),
           depth ? (int)depth : VD_PLAN_DEFAULT_DEPTH, placement);
    if (oo.sim.active)
        printf("LINK SIMULATION ACTIVE (VD_SIMULATE_LINK_GBPS=%s): link speeds and predictions are SIMULATED\n",
               getenv("VD_SIMULATE_LINK_GBPS") ? getenv("VD_SIMULATE_LINK_GBPS") : "");

    vd_plan *plan = malloc(sizeof *plan);
    if (!plan) {
        fprintf(stderr, "%s: out of memory\n", a.cmd);
        rc = 1;
        goto done;
    }
    if (vd_plan_make(&in, plan) != VD_OK) {
        fprintf(stderr, "%s: %s\n", a.cmd, vd_last_error());
        free(plan);
        rc = 1;
        goto done;
    }
    print_plan(plan, &in, layout);

    printf("\ntiming\n");
    if (in.block_compute_s > 0)
        printf("  %-22s %9.2f ms per pass (%s, latent %" PRId64 "x%" PRId64 "x%" PRId64 ")\n", "block compute",
               in.block_compute_s * 1e3, how_block, T, lh, lw);
    else
        printf("  %-22s unknown\n", "block compute");
    for (int l = 0; l < VD_PLAN_MAX_LINKS; l++) {
        if (l != VD_LINK_HOST && !(l - 1 < VD_PLAN_MAX_GPUS && (plan->donor_bytes[l - 1] || how_link[l])))
            continue;
        char name[16], t[32];
        snprintf(t, sizeof t, "link %s", vd_link_name(l, name, sizeof name));
        if (in.link_bps[l] > 0)
            printf("  %-22s %9.2f GB/s (%s)%s\n", t, in.link_bps[l] / 1e9, how_link[l] ? how_link[l] : "?",
                   vd_link_sim_cap(&oo.sim, l) > 0 ? " SIMULATED" : "");
        else
            printf("  %-22s unknown\n", t);
    }
    printf("\nprediction\n");
    if (plan->has_prediction) {
        double extra = plan->compute_s > 0 ? 100.0 * (plan->predicted_s / plan->compute_s - 1) : 0;
        if (fabs(extra) < 0.05)
            extra = 0;
        char t1[32], t2[32];
        printf("  %-22s %12s%s  (all resident: %s, %+.1f%%)\n", "one step", secs(plan->predicted_s, t1, sizeof t1),
               plan->simulated ? " SIMULATED" : "", secs(plan->compute_s, t2, sizeof t2), extra);
        for (int l = 0; l < VD_PLAN_MAX_LINKS; l++)
            if (plan->link_busy_s[l] > 0) {
                char name[16], t[40];
                snprintf(t, sizeof t, "%s link busy", vd_link_name(l, name, sizeof name));
                printf("  %-22s %12s per step%s\n", t, secs(plan->link_busy_s[l], t1, sizeof t1),
                       vd_link_sim_cap(&oo.sim, l) > 0 ? " SIMULATED" : "");
            }
    } else {
        printf("  none: %s\n", in.block_compute_s > 0 ? "a link in use has no known speed"
                               : real ? "the block could not be timed (see above)"
                                      : "no GPU measured here; give --block-ms and --host-gbps / --donor-gbps");
    }
    if (plan->notes[0]) {
        printf("\nnotes\n  - ");
        for (const char *p = plan->notes; *p; p++) {
            if (p[0] == ';' && p[1] == ' ') {
                printf("\n  - ");
                p++;
            } else {
                putchar(*p);
            }
        }
        printf("\n");
    }
    free(plan);
done:
    vd_pack_layout_free(layout);
    vd_weights_close(w);
    return rc;
}

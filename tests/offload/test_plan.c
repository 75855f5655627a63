/* The placement planner with invented machines: every allocation mode, the
 * error cases, ring sizing and the predicted step time (hand-computed
 * schedules). */
#include <math.h>
#include <string.h>

#include "offload/allocation.h"
#include "offload/plan.h"
#include "test_util.h"

#define GB 1000000000ull

/* A model: a 0.5 GB stem and N blocks of 1 GB. */
enum { N = 10 };
static vd_plan_unit_in units[N + 1];
static vd_plan_gpu gpus[4];
static vd_plan plan;

static void setup_units(void)
{
    units[0] = (vd_plan_unit_in){.name = "stem", .bytes = GB / 2};
    for (int i = 1; i <= N; i++)
        units[i] = (vd_plan_unit_in){.name = "block", .bytes = GB};
}

/* n GPUs of `each` bytes, all free, peer access. */
static void setup_gpus(int n, uint64_t each)
{
    for (int i = 0; i < n; i++)
        gpus[i] = (vd_plan_gpu){.index = i, .total_bytes = each, .free_bytes = each, .peer = true};
}

static vd_plan_input input(int n_gpus, const vd_allocation *a, const char *text)
{
    vd_plan_input in = {
        .units = units, .n_units = N + 1, .compute = 0, .gpus = gpus, .n_gpus = n_gpus,
        .host_total_bytes = 256 * GB, .host_free_bytes = 200 * GB, .alloc = a, .alloc_text = text,
        .activation_bytes = 2 * GB,
    };
    return in;
}

/* "S" + one character per block (R, H, digit = donor). */
static const char *map(const vd_plan *p)
{
    static char buf[VD_PLAN_MAX_UNITS + 2];
    int k = 0;
    for (int u = 1; u < p->n_units; u++) {
        const vd_plan_place *x = &p->units[u];
        buf[k++] = x->tier == VD_TIER_RESIDENT ? 'R' : x->tier == VD_TIER_HOST ? 'H' : (char)('0' + x->device);
    }
    buf[k] = '\0';
    return buf;
}

static int count(const vd_plan *p, char c)
{
    int n = 0;
    for (const char *s = map(p); *s; s++)
        n += *s == c;
    return n;
}

/* Plan `text` on n_gpus GPUs; returns the status. */
static vd_status make(const char *text, int n_gpus, vd_plan_input *tweak, vd_plan *out)
{
    vd_allocation a;
    vd_status st = vd_allocation_parse(text, &a);
    if (st != VD_OK)
        return st;
    vd_plan_input in = input(n_gpus, &a, text);
    if (tweak) {
        tweak->units = in.units, tweak->n_units = in.n_units, tweak->gpus = in.gpus, tweak->n_gpus = in.n_gpus;
        tweak->alloc = &a, tweak->alloc_text = text;
        if (!tweak->host_total_bytes)
            tweak->host_total_bytes = in.host_total_bytes, tweak->host_free_bytes = in.host_free_bytes;
        if (!tweak->activation_bytes)
            tweak->activation_bytes = in.activation_bytes;
        in = *tweak;
    }
    return vd_plan_make(&in, out);
}

/* The failure names `part`. */
static void check_error_quotes(vd_status st, const char *part)
{
    CHECKF(st == VD_ERR_INVALID_ARGUMENT, "expected invalid argument, got %s", vd_status_name(st));
    CHECKF(strstr(vd_last_error(), part) != NULL, "message '%s' should quote '%s'", vd_last_error(), part);
}

static void test_resident(void)
{
    setup_gpus(1, 24 * GB);
    CHECK_OK(make("", 1, NULL, &plan));
    CHECK(strcmp(map(&plan), "RRRRRRRRRR") == 0);
    CHECK(plan.n_streamed == 0 && plan.depth == 0 && plan.ring_bytes == 0);
    CHECK(plan.resident_bytes == 10 * GB + GB / 2);
    CHECK(plan.vram_bytes == 12 * GB + GB / 2);
    /* a model larger than the card, resident: refused with what to do */
    setup_gpus(1, 8 * GB);
    vd_status st = make("", 1, NULL, &plan);
    CHECK(st == VD_ERR_INVALID_ARGUMENT && strstr(vd_last_error(), "cuda:0") && strstr(vd_last_error(), "auto"));
}

static void test_bytes(void)
{
    setup_gpus(2, 24 * GB);
    /* 4.5 GB on cuda:0: the stem (0.5) + 4 blocks; 6 blocks on cpu, spread */
    CHECK_OK(make("cuda:0,4.5gb;cpu,*", 1, NULL, &plan));
    CHECKF(strcmp(map(&plan), "HRHRHHRHRH") == 0, "map %s", map(&plan));
    CHECK(plan.mode == VD_ALLOC_BYTES);
    CHECK(plan.resident_bytes == 4 * GB + GB / 2 && plan.host_bytes == 6 * GB);
    CHECK(plan.depth == 2 && plan.slot_bytes == GB && plan.ring_bytes == 2 * GB);
    CHECK(plan.vram_bytes == plan.resident_bytes + 2 * GB + 2 * GB);
    /* without '*' the rest goes to cpu (DisTorch) */
    vd_plan p2;
    CHECK_OK(make("cuda:0,4.5gb", 1, NULL, &p2));
    CHECK(strcmp(map(&p2), map(&plan)) == 0);
    /* contiguous: the host run first */
    vd_plan_input t = {.compute = 0, .positions = VD_PLACE_CONTIGUOUS};
    CHECK_OK(make("cuda:0,4.5gb;cpu,*", 1, &t, &plan));
    CHECKF(strcmp(map(&plan), "HHHHHHRRRR") == 0, "map %s", map(&plan));
    /* three devices: 2 blocks resident, 3 on cuda:1, 5 on the host */
    CHECK_OK(make("cuda:0,2.5gb;cuda:1,3gb;cpu,*", 2, NULL, &plan));
    CHECKF(strcmp(map(&plan), "H1RH1HHR1H") == 0, "map %s", map(&plan));
    CHECK(plan.donor_bytes[1] == 3 * GB && plan.host_bytes == 5 * GB);
    t = (vd_plan_input){.compute = 0, .positions = VD_PLACE_CONTIGUOUS};
    CHECK_OK(make("cuda:0,2.5gb;cuda:1,3gb;cpu,*", 2, &t, &plan));
    CHECKF(strcmp(map(&plan), "111HHHHHRR") == 0, "map %s", map(&plan));
    /* '*' on the compute GPU, shares listed first */
    CHECK_OK(make("cpu,3gb;cuda:0,*", 1, NULL, &plan));
    CHECK(count(&plan, 'H') == 3 && count(&plan, 'R') == 7);
    /* midpoint rule: 4.9 GB → stem + 4.4 GB of blocks → 4 blocks; 5.1 → 5 */
    CHECK_OK(make("cuda:0,4.9gb;cpu,*", 1, NULL, &plan));
    CHECK(count(&plan, 'R') == 4);
    CHECK_OK(make("cuda:0,5.1gb;cpu,*", 1, NULL, &plan));
    CHECK(count(&plan, 'R') == 5);
    /* a share smaller than the stem: the stem stays, with a note */
    CHECK_OK(make("cuda:0,0.1gb;cpu,*", 1, NULL, &plan));
    CHECK(count(&plan, 'R') == 0 && plan.resident_bytes == GB / 2);
    CHECK(strstr(plan.notes, "stem") != NULL);
}

static void test_ratio(void)
{
    setup_gpus(2, 24 * GB);
    /* 8/8/4 = 40/40/20 of 10.5 GB: cuda:0 4.2 (stem + 3.7 → 4 blocks), cuda:1 4.2 (4), cpu 2.1 (2) */
    CHECK_OK(make("cuda:0,8%;cuda:1,8%;cpu,4%", 2, NULL, &plan));
    CHECK(plan.mode == VD_ALLOC_RATIO);
    CHECKF(count(&plan, 'R') == 4 && count(&plan, '1') == 4 && count(&plan, 'H') == 2, "map %s", map(&plan));
    /* with '*': percentages of the model */
    CHECK_OK(make("cuda:1,50%;cuda:0,*", 2, NULL, &plan));
    CHECKF(count(&plan, '1') == 5 && count(&plan, 'R') == 5, "map %s", map(&plan));
    check_error_quotes(make("cuda:1,70%;cpu,40%;cuda:0,*", 2, NULL, &plan), "110%");
}

static void test_fraction(void)
{
    setup_gpus(2, 24 * GB);
    /* 0.1 of 24 GB = 2.4 GB: the stem + 2 blocks */
    CHECK_OK(make("cuda:0,0.1;cpu,*", 1, NULL, &plan));
    CHECK(plan.mode == VD_ALLOC_FRACTION);
    CHECKF(count(&plan, 'R') == 2 && count(&plan, 'H') == 8, "map %s", map(&plan));
    /* without '*' what the fractions leave stays on the compute GPU (DisTorch's orphans) */
    CHECK_OK(make("cuda:1,0.1", 2, NULL, &plan));
    CHECKF(count(&plan, '1') == 2 && count(&plan, 'R') == 8, "map %s", map(&plan));
    CHECK(strstr(plan.notes, "stays on cuda:0") != NULL);
    /* a fraction of the host's memory needs its size */
    vd_plan_input t = {.compute = 0, .host_total_bytes = 0};
    vd_allocation a;
    CHECK_OK(vd_allocation_parse("cuda:0,0.1;cpu,0.5", &a));
    vd_plan_input in = input(1, &a, "cuda:0,0.1;cpu,0.5");
    in.host_total_bytes = 0;
    (void)t;
    check_error_quotes(vd_plan_make(&in, &plan), "cpu,0.5");
}

static void test_virtual(void)
{
    setup_gpus(2, 24 * GB);
    /* keep 10.5 − 6 = 4.5 GB (stem + 4 blocks) on cuda:0, 6 blocks on cuda:1 */
    CHECK_OK(make("virtual_vram_gb=6;donors=cuda:1", 2, NULL, &plan));
    CHECK(plan.mode == VD_ALLOC_VIRTUAL_VRAM);
    CHECKF(count(&plan, 'R') == 4 && count(&plan, '1') == 6, "map %s", map(&plan));
    /* DisTorch's own form, default donor cpu */
    CHECK_OK(make("#cuda:0;6;cpu", 1, NULL, &plan));
    CHECKF(count(&plan, 'R') == 4 && count(&plan, 'H') == 6, "map %s", map(&plan));
    /* donors in order, each up to its total memory: a 3 GB cuda:1, then cpu */
    gpus[1].total_bytes = gpus[1].free_bytes = 3 * GB;
    CHECK_OK(make("virtual_vram_gb=6;donors=cuda:1,cpu", 2, NULL, &plan));
    CHECKF(count(&plan, 'R') == 4 && count(&plan, '1') == 3 && count(&plan, 'H') == 3, "map %s", map(&plan));
    /* more virtual VRAM than the donors hold: the rest stays, with a note */
    CHECK_OK(make("virtual_vram_gb=6;donors=cuda:1", 2, NULL, &plan));
    CHECKF(count(&plan, '1') == 3 && count(&plan, 'R') == 7, "map %s", map(&plan));
    CHECK(strstr(plan.notes, "virtual VRAM") != NULL);
    setup_gpus(2, 24 * GB);
    /* a donor that is the compute device */
    check_error_quotes(make("virtual_vram_gb=6;donors=cuda:0", 2, NULL, &plan), "cuda:0 is the compute device");
    /* a compute device that is not the one computing */
    check_error_quotes(make("#cuda:1;6;cpu", 2, NULL, &plan), "cuda:1");
}

static void test_errors(void)
{
    setup_gpus(1, 24 * GB);
    /* unknown device */
    check_error_quotes(make("cuda:0,2gb;cuda:7,*", 1, NULL, &plan), "cuda:7");
    CHECK(strstr(vd_last_error(), "1 GPU") != NULL);
    check_error_quotes(make("virtual_vram_gb=4;donors=cuda:3", 1, NULL, &plan), "cuda:3");
    /* a request above the device's memory */
    setup_gpus(2, 24 * GB);
    check_error_quotes(make("cuda:1,30gb;cpu,*", 2, NULL, &plan), "cuda:1,30 GB");
    /* placed bytes above a donor's free memory */
    gpus[1].free_bytes = 2 * GB;
    check_error_quotes(make("cuda:1,5gb;cpu,*", 2, NULL, &plan), "donor cuda:1");
    setup_gpus(2, 24 * GB);
    /* host memory */
    vd_plan_input t = {.compute = 0, .host_total_bytes = 256 * GB, .host_free_bytes = 3 * GB};
    check_error_quotes(make("cuda:0,1gb;cpu,*", 1, &t, &plan), "host");
    /* a budget the allocation exceeds */
    t = (vd_plan_input){.compute = 0, .budget_bytes = 5 * GB};
    check_error_quotes(make("cuda:0,8.5gb;cpu,*", 1, &t, &plan), "budget");
    /* the compute device absent, a bad depth */
    vd_plan_input in = input(1, NULL, "");
    in.compute = 2;
    CHECK_FAILS(vd_plan_make(&in, &plan), VD_ERR_DEVICE);
    in = input(1, NULL, "");
    in.depth = 99;
    CHECK_FAILS(vd_plan_make(&in, &plan), VD_ERR_INVALID_ARGUMENT);
}

static void test_auto(void)
{
    setup_gpus(1, 24 * GB);
    /* everything fits 24 GB: resident */
    CHECK_OK(make("auto", 1, NULL, &plan));
    CHECK(plan.mode == VD_ALLOC_AUTO && plan.n_streamed == 0);
    CHECK(strstr(plan.notes, "fits") != NULL);
    /* 8 GB: stem + (10 − K) + min(2, K) + 2 activations ≤ 8 → K = 7 */
    CHECK_OK(make("auto,8gb", 1, NULL, &plan));
    CHECKF(plan.n_streamed == 7 && count(&plan, 'H') == 7, "map %s", map(&plan));
    CHECK(plan.vram_bytes <= 8 * GB && plan.vram_bytes == GB / 2 + 3 * GB + 2 * GB + 2 * GB);
    CHECK(plan.budget_bytes == 8 * GB);
    /* the budget option wins over the string's */
    vd_plan_input t = {.compute = 0, .budget_bytes = 9 * GB};
    CHECK_OK(make("auto,8gb", 1, &t, &plan));
    CHECK(plan.n_streamed == 6);
    /* a ring of 1 needs less */
    t = (vd_plan_input){.compute = 0, .depth = 1};
    CHECK_OK(make("auto,8gb", 1, &t, &plan));
    CHECK(plan.n_streamed == 6 && plan.depth == 1);
    /* too small even with every block streamed: says how much is needed (0.5 + 2 + 2 = 4.5 GB) */
    check_error_quotes(make("auto,3gb", 1, NULL, &plan), "4.50 GB");
    /* the free memory is the default budget */
    gpus[0].free_bytes = 8 * GB;
    CHECK_OK(make("auto", 1, NULL, &plan));
    CHECK(plan.n_streamed == 7 && strstr(plan.notes, "free memory"));
    /* two sources with measured links share in proportion to bandwidth: 75 vs 25 GB/s → 5 : 2 */
    setup_gpus(2, 24 * GB);
    t = (vd_plan_input){.compute = 0};
    t.link_bps[VD_LINK_HOST] = 25e9;
    t.link_bps[VD_LINK_DONOR(1)] = 75e9;
    CHECK_OK(make("auto,8gb", 2, &t, &plan));
    CHECKF(count(&plan, '1') == 5 && count(&plan, 'H') == 2, "map %s", map(&plan));
    /* without measurements the other GPU fills first */
    CHECK_OK(make("auto,8gb", 2, NULL, &plan));
    CHECKF(count(&plan, '1') == 7, "map %s", map(&plan));
    /* ... up to its capacity (keeping 5% free) */
    gpus[1].total_bytes = 4 * GB, gpus[1].free_bytes = 4 * GB;
    CHECK_OK(make("auto,8gb", 2, NULL, &plan));
    CHECKF(count(&plan, '1') == 3 && count(&plan, 'H') == 4, "map %s", map(&plan));
}

/* Explicit tiers and the predictor's hand-computed schedules. */
static vd_plan_input timed(double block_s, double host_bps)
{
    vd_plan_input in = input(2, NULL, "");
    in.block_compute_s = block_s;
    in.link_bps[VD_LINK_HOST] = host_bps;
    return in;
}

static void places(const char *m, vd_plan_place *out)
{
    out[0] = (vd_plan_place){VD_TIER_RESIDENT, -1};
    for (int u = 1; u <= N; u++) {
        char c = m[u - 1];
        out[u] = c == 'R' ? (vd_plan_place){VD_TIER_RESIDENT, -1}
                 : c == 'H' ? (vd_plan_place){VD_TIER_HOST, -1}
                            : (vd_plan_place){VD_TIER_DONOR, c - '0'};
    }
}

static void expect_pred(const char *m, int depth, double block_s, double host_bps, double donor_bps, double want)
{
    vd_plan_input in = timed(block_s, host_bps);
    in.link_bps[VD_LINK_DONOR(1)] = donor_bps;
    in.depth = depth;
    vd_plan_place pl[N + 1];
    places(m, pl);
    vd_plan p;
    CHECK_OK(vd_plan_from_places(&in, pl, &p));
    CHECKF(p.has_prediction && fabs(p.predicted_s - want) < 1e-9,
           "%s depth %d (block %.2f s, host %.0f GB/s, donor %.0f GB/s): predicted %.6f s, want %.6f s", m, depth,
           block_s, host_bps / 1e9, donor_bps / 1e9, p.predicted_s, want);
}

static void test_predict(void)
{
    setup_gpus(2, 24 * GB);
    /* all resident: Σ compute */
    expect_pred("RRRRRRRRRR", 2, 0.1, 10e9, 0, 1.0);
    /* all streamed, one link, ring of 2: Σ max(compute, transfer) */
    expect_pred("HHHHHHHHHH", 2, 0.2, 10e9, 0, 2.0); /* transfer 0.1 < compute 0.2 */
    expect_pred("HHHHHHHHHH", 2, 0.1, 5e9, 0, 2.0);  /* transfer 0.2 > compute 0.1 */
    /* a ring of 1 serialises: Σ (compute + transfer) */
    expect_pred("HHHHHHHHHH", 1, 0.1, 5e9, 0, 3.0);
    /* half streamed with transfer = 1.5 × compute: spread hides it all (each copy has two blocks of
     * compute), a contiguous run does not (worked out by hand: 1.15 s; Σ max would say 1.25 s) */
    expect_pred("RHRHRHRHRH", 2, 0.1, 1e9 / 0.15, 0, 1.0);
    expect_pred("HHHHHRRRRR", 2, 0.1, 1e9 / 0.15, 0, 1.15);
    /* two links (host and cuda:1, 5 GB/s each) alternate: together they keep up with compute */
    expect_pred("H1H1H1H1H1", 4, 0.1, 5e9, 5e9, 1.0);
    /* ... where one of them alone is link-bound */
    expect_pred("HHHHHHHHHH", 4, 0.1, 5e9, 0, 2.0);
    /* as many streamed blocks as slots: nothing moves after the first pass */
    vd_plan_input in = timed(0.1, 1e9);
    vd_plan_place pl[N + 1];
    places("HRRRRHRRRR", pl);
    vd_plan p;
    CHECK_OK(vd_plan_from_places(&in, pl, &p));
    CHECK(p.depth == 2 && p.n_streamed == 2 && fabs(p.predicted_s - 1.0) < 1e-9 && p.link_busy_s[VD_LINK_HOST] == 0);
    CHECK(strstr(p.notes, "ring holds all 2") != NULL);
    /* ring sizing: depth clamps to the streamed count; the slot is the largest streamed unit */
    units[4].bytes = 3 * GB / 2;
    in = timed(0, 0);
    in.depth = 3;
    places("RRRHHRRRRR", pl);
    CHECK_OK(vd_plan_from_places(&in, pl, &p));
    CHECK(p.depth == 2 && p.depth_requested == 3 && p.slot_bytes == 3 * GB / 2 && p.ring_bytes == 3 * GB);
    CHECK(!p.has_prediction); /* no compute time, no link speed */
    in.depth = 0;
    places("RRRHHHHRRR", pl);
    CHECK_OK(vd_plan_from_places(&in, pl, &p));
    CHECK(p.depth == VD_PLAN_DEFAULT_DEPTH && p.ring_bytes == 3 * GB);
    setup_units();
    /* the link busy time per pass; simulated plans say so */
    in = timed(0.1, 10e9);
    in.simulated = true;
    places("HHHHHRRRRR", pl);
    CHECK_OK(vd_plan_from_places(&in, pl, &p));
    CHECK(fabs(p.link_busy_s[VD_LINK_HOST] - 0.5) < 1e-9 && fabs(p.compute_s - 1.0) < 1e-9);
    CHECK(p.simulated && strstr(p.notes, "SIMULATED"));
    /* the stem must stay, a donor must exist */
    places("RRRRRRRRRR", pl);
    pl[0].tier = VD_TIER_HOST;
    CHECK_FAILS(vd_plan_from_places(&in, pl, &p), VD_ERR_INVALID_ARGUMENT);
    places("RRRR3RRRRR", pl);
    CHECK_FAILS(vd_plan_from_places(&in, pl, &p), VD_ERR_INVALID_ARGUMENT);
}

static void test_link_sim(void)
{
    vd_link_sim s;
    CHECK_OK(vd_link_sim_parse(NULL, &s));
    CHECK(!s.active && vd_link_sim_cap(&s, VD_LINK_HOST) == 0);
    CHECK_OK(vd_link_sim_parse("6.8", &s));
    CHECK(s.active && vd_link_sim_cap(&s, VD_LINK_HOST) == 6.8e9 && vd_link_sim_cap(&s, VD_LINK_DONOR(1)) == 6.8e9);
    CHECK_OK(vd_link_sim_parse("host=27.2, cuda:1=50.8", &s));
    CHECK(vd_link_sim_cap(&s, VD_LINK_HOST) == 27.2e9 && vd_link_sim_cap(&s, VD_LINK_DONOR(1)) == 50.8e9);
    CHECK(vd_link_sim_cap(&s, VD_LINK_DONOR(2)) == 0);
    CHECK_FAILS(vd_link_sim_parse("fast", &s), VD_ERR_INVALID_ARGUMENT);
    CHECK_FAILS(vd_link_sim_parse("nvlink=5", &s), VD_ERR_INVALID_ARGUMENT);
    CHECK_FAILS(vd_link_sim_parse("host=-1", &s), VD_ERR_INVALID_ARGUMENT);
    double b;
    CHECK(vd_parse_bytes("12gb", &b) && b == 12e9);
    CHECK(vd_parse_bytes(" 1.5GiB ", &b) && b == 1.5 * 1024 * 1024 * 1024);
    CHECK(vd_parse_bytes("0", &b) && b == 0);
    CHECK(!vd_parse_bytes("lots", &b) && !vd_parse_bytes("", &b) && !vd_parse_bytes("-1gb", &b));
}

int main(void)
{
    setup_units();
    test_resident();
    test_bytes();
    test_ratio();
    test_fraction();
    test_virtual();
    test_errors();
    test_auto();
    test_predict();
    test_link_sim();
    return test_finish("test_plan");
}

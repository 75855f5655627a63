/* Host emulation of kernels/attention_fa2.cu: the kernels and their launch
 * sequence run unchanged on the CPU, with every lane of a block as a fiber.
 *
 * The kernel file does all its shared-memory and tensor-core work through a
 * handful of primitives; this program defines host versions of them and
 * includes the kernel file (VD_FA2_EMULATE):
 *   ldmatrix .x4 (.trans), mma.sync m16n8k16 bf16, shfl.xor   warp-collective:
 *       a lane that reaches one parks; when all 32 lanes of the warp have
 *       parked at the same collective (same kind, same count of earlier
 *       collectives) it is computed from the PTX ISA's fragment layouts
 *       (written here from the ISA, independently of the kernel) and the
 *       lanes resume.  Lanes of a warp at different collectives = error.
 *   __syncthreads   block-wide; every lane must arrive, none may have exited.
 *   cp.async 16 / commit / wait_group 0   the copy lands at the wait (or, in
 *       "eager" mode, at the issue) and a shadow of shared memory checks the
 *       ordering against the barriers: a chunk read while a copy into it is
 *       in flight, or read before a barrier separates the reader from the
 *       writer's wait, or written while another warp read it since the last
 *       barrier, or written by two copies in flight, is a reported race.
 *   global loads and stores   bounds and alignment against the buffers the
 *       test registered; reads of scratch never written (by the conversion
 *       kernel) are errors; every output element must be written exactly once.
 * It also counts shared-memory wavefronts of every ldmatrix phase and
 * cp.async store phase (bank conflicts) and the 32-byte global sectors of
 * every cp.async warp instruction (coalescing).
 *
 * The cases (every variant, d = 64 and 128): partial query and key tiles,
 * Lq != Lk, B up to 17 (more than one launch carries), H = 3 in passes of
 * fewer heads, bias with rows masked by −inf over more than a key tile,
 * kv_len including counts one past and one short of a tile, Lq = Lk = 1,
 * peaky softmax (the running-max rescale), unaligned inputs (the scalar
 * conversion path), dynamic shared memory off a 128-byte boundary, and
 * copies landing at issue with lanes run in a shuffled order.  Each compares
 * the emulated output with (1) a double-precision reference of the exact op
 * (bound 1e-2 relative L2, as the GPU test), and (2) a scalar model of the
 * kernel's arithmetic (bf16 q·scale·log2 e, k, v; f32 scores summed per
 * k-step of 16; key tiles of BC with the running max; P rounded to bf16, the
 * sums not), which the emulation must match to 1e-6 (it does to ~1e-7): an
 * off-by-one in a mask, a bias offset or a fragment layout shows there as
 * errors of 1e-3 and more.  Twenty-odd planted bugs (a missing barrier or
 * wait, a wrong stage, swizzle, lane map, mask, pack order, bias row or key,
 * head offset, batch key count...) each fail it.
 *
 * Registered as the meson test emu_attention_fa2 (about 20 s; needs no GPU).
 * By hand:
 *   g++ -O2 -std=c++17 -I kernels tests/gpu/emu_attention_fa2.cpp -o /tmp/emu_fa2 && /tmp/emu_fa2
 *   /tmp/emu_fa2 quick        a subset
 */
#include <ucontext.h>

#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/common_interface_defs.h>
#define EMU_ASAN 1
#else
#define EMU_ASAN 0
#endif

#include <algorithm>
#include <climits>
#include <cmath>
#include <cstdarg>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <random>
#include <string>
#include <vector>

/* ---- the CUDA surface the kernel file uses ------------------------------------------- */

struct dim3 {
    unsigned x, y, z;
    dim3(unsigned a = 1, unsigned b = 1, unsigned c = 1) : x(a), y(b), z(c) {}
};
#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __launch_bounds__(...)
static inline void __trap() { abort(); }

/* Fiber switches: a few instructions on x86-64 (swapcontext makes a system
 * call per switch, which made the emulation ten times slower). */
#if defined(__x86_64__)
extern "C" void emu_switch(void **save_sp, void *new_sp);
asm(R"(
    .text
    .globl emu_switch
    .type emu_switch, @function
emu_switch:
    pushq %rbp
    pushq %rbx
    pushq %r12
    pushq %r13
    pushq %r14
    pushq %r15
    movq %rsp, (%rdi)
    movq %rsi, %rsp
    popq %r15
    popq %r14
    popq %r13
    popq %r12
    popq %rbx
    popq %rbp
    ret
    .size emu_switch, .-emu_switch
)");
struct Ctx {
    void *sp = nullptr;
};
static inline void ctx_switch(Ctx *from, Ctx *to) { emu_switch(&from->sp, to->sp); }
static inline void ctx_make(Ctx *c, char *stack, size_t size, void (*entry)())
{
    uintptr_t top = ((uintptr_t)stack + size) & ~(uintptr_t)15;
    void **sp = (void **)top;
    *--sp = nullptr;          /* the entry's return address (it never returns) */
    *--sp = (void *)entry;    /* emu_switch returns into the entry */
    for (int i = 0; i < 6; i++)
        *--sp = nullptr;      /* rbp rbx r12..r15 */
    c->sp = sp;
}
#else
struct Ctx {
    ucontext_t uc;
};
static inline void ctx_switch(Ctx *from, Ctx *to) { swapcontext(&from->uc, &to->uc); }
static inline void ctx_make(Ctx *c, char *stack, size_t size, void (*entry)())
{
    getcontext(&c->uc);
    c->uc.uc_stack.ss_sp = stack;
    c->uc.uc_stack.ss_size = size;
    c->uc.uc_link = nullptr;
    makecontext(&c->uc, entry, 0);
}
#endif

namespace emu {

enum Op { RUN, LDSM, LDSMT, MMA, SHFL, BAR, DONE };
static const char *op_name[] = {"run", "ldmatrix", "ldmatrix.trans", "mma", "shfl", "bar.sync", "exit"};

struct Pending {
    uint32_t dst;
    const uint8_t *src;
};

struct Thread {
    Ctx ctx;
    void *asan_fake = nullptr;
    const void *stack_lo = nullptr;
    dim3 tidx;
    int tid = 0, warp = 0, lane = 0;
    Op op = RUN;
    uint64_t ncoll = 0; /* collectives reached so far */
    uint32_t addr = 0, r[4] = {0, 0, 0, 0};
    uint32_t a[4] = {0, 0, 0, 0}, b0 = 0, b1 = 0;
    float c[4] = {0, 0, 0, 0};
    float sv = 0, sres = 0;
    int smask = 0;
    unsigned member = 0;
    std::vector<Pending> pend;
    int ncp = 0; /* cp.async issued so far (groups lanes into warp instructions) */
};

struct Shadow {
    int w_thr = -1;   /* last cp.async writer, -1 = never written */
    int w_done = -1;  /* epoch of the writer's wait; PENDING while in flight */
    int r_epoch = -1; /* epoch of the last reads */
    uint32_t r_warps = 0;
};
static const int PENDING = INT_MAX;

struct GBuf {
    uintptr_t lo, hi;
    std::string name;
    bool writable, track_init, count_writes;
    std::vector<uint8_t> init;     /* per byte, when track_init */
    std::vector<uint16_t> writes;  /* per 4-byte word, when count_writes */
};

struct CpRec {
    int warp, seq, lane;
    uint32_t dst;
    uintptr_t src;
};

/* state of the block being run */
static std::vector<Thread> thr;
static Thread *cur;
static Thread direct_thread; /* for kernels run without fibers */
static bool in_fiber;
static Ctx sched_ctx;
static std::vector<uint8_t> smem;
static std::vector<Shadow> shadow;
static size_t smem_limit;     /* end of the dynamic shared memory (shared address) */
static uint32_t smem_offset;  /* its start: smem_base() (the kernel must align it itself) */
static int epoch;
static dim3 g_blockIdx, g_blockDim, g_gridDim;
static std::function<void()> body;
static std::vector<std::vector<char>> stacks;
static const size_t STACK = 256 * 1024;

/* options and results */
static bool eager = false;
static bool shuffle_order = false;
static std::mt19937 rng(12345);
static bool analyse = false; /* gather bank / coalescing statistics for this block */
static long errors = 0;
static std::vector<GBuf> gbufs;
static std::vector<CpRec> cprecs;

struct Stats {
    long ldsm_phases = 0, ldsm_wavefronts = 0;
    long cp_phases = 0, cp_wavefronts = 0;
    long cp_instr = 0, cp_sectors = 0, cp_sectors_min = 0;
    long collectives = 0;
};
static Stats stats;

static void fail(const char *fmt, ...)
{
    errors++;
    if (errors > 40)
        return;
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "  EMU ERROR (block %u,%u,%u thread %d epoch %d): ", g_blockIdx.x, g_blockIdx.y, g_blockIdx.z,
            cur ? cur->tid : -1, epoch);
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n");
    va_end(ap);
}

/* ---- global memory ---- */

static GBuf &add_buffer(const void *p, size_t bytes, const char *name, bool writable, bool track_init,
                        bool count_writes)
{
    GBuf b;
    b.lo = (uintptr_t)p;
    b.hi = b.lo + bytes;
    b.name = name;
    b.writable = writable;
    b.track_init = track_init;
    b.count_writes = count_writes;
    if (track_init)
        b.init.assign(bytes, 0);
    if (count_writes)
        b.writes.assign(bytes / 4 + 1, 0);
    gbufs.push_back(std::move(b));
    return gbufs.back();
}

static void check_global(const void *p, size_t n, bool write, size_t align)
{
    const uintptr_t a = (uintptr_t)p;
    if (a % align)
        fail("global %s of %zu bytes at %p not %zu-byte aligned", write ? "store" : "load", n, p, align);
    for (GBuf &b : gbufs) {
        if (a >= b.lo && a + n <= b.hi) {
            const size_t off = a - b.lo;
            if (write) {
                if (!b.writable)
                    fail("store into read-only buffer %s at offset %zu", b.name.c_str(), off);
                if (b.track_init)
                    memset(&b.init[off], 1, n);
                if (b.count_writes)
                    for (size_t w = off / 4; w < (off + n + 3) / 4; w++)
                        b.writes[w]++;
            } else if (b.track_init) {
                for (size_t i = 0; i < n; i++)
                    if (!b.init[off + i]) {
                        fail("load of never-written bytes of %s at offset %zu", b.name.c_str(), off + i);
                        break;
                    }
            }
            return;
        }
    }
    fail("global %s of %zu bytes at %p outside every buffer", write ? "store" : "load", n, p);
}

/* ---- shared memory shadow ---- */

static bool smem_range_ok(uint32_t addr, uint32_t n, const char *what)
{
    if (addr % 16) {
        fail("%s: shared address %u not 16-byte aligned", what, addr);
        return false;
    }
    if ((size_t)addr + n > smem_limit || addr < smem_offset) {
        fail("%s: shared address %u + %u outside the dynamic shared memory [%u, %zu)", what, addr, n, smem_offset,
             smem_limit);
        return false;
    }
    return true;
}

static void shadow_read(uint32_t addr, int warp, const char *what)
{
    Shadow &s = shadow[addr / 16];
    if (s.w_thr < 0)
        fail("%s: reads shared chunk %u that nothing wrote", what, addr);
    else if (s.w_done == PENDING)
        fail("%s by warp %d: reads shared chunk %u while thread %d's cp.async into it is in flight", what, warp,
             addr, s.w_thr);
    else if (s.w_done >= epoch)
        fail("%s by warp %d: reads shared chunk %u written by thread %d with no barrier after its wait", what, warp,
             addr, s.w_thr);
    if (s.r_epoch != epoch) {
        s.r_epoch = epoch;
        s.r_warps = 0;
    }
    s.r_warps |= 1u << warp;
}

static void shadow_write(uint32_t addr, const Thread &t)
{
    Shadow &s = shadow[addr / 16];
    if (s.w_thr >= 0 && s.w_done == PENDING)
        fail("cp.async into shared chunk %u while thread %d's copy into it is still in flight", addr, s.w_thr);
    else if (s.w_thr >= 0 && s.w_thr != t.tid && s.w_done >= epoch)
        fail("cp.async into shared chunk %u that thread %d wrote with no barrier since", addr, s.w_thr);
    if (s.r_epoch == epoch && (s.r_warps & ~(1u << t.warp)))
        fail("cp.async into shared chunk %u that warp(s) 0x%x read since the last barrier", addr,
             s.r_warps & ~(1u << t.warp));
    s.w_thr = t.tid;
    s.w_done = PENDING;
}

/* ---- fibers ---- */

/* AddressSanitizer follows the stack switches (CI runs the suite under it). */
#if EMU_ASAN
static const void *main_stack_lo;
static size_t main_stack_size;
static void *main_fake;
#endif

static void to_fiber(Thread *t)
{
#if EMU_ASAN
    __sanitizer_start_switch_fiber(&main_fake, t->stack_lo, STACK);
#endif
    ctx_switch(&sched_ctx, &t->ctx);
#if EMU_ASAN
    __sanitizer_finish_switch_fiber(main_fake, nullptr, nullptr);
#endif
}

static void to_scheduler(Thread *t, bool exiting)
{
#if EMU_ASAN
    __sanitizer_start_switch_fiber(exiting ? nullptr : &t->asan_fake, main_stack_lo, main_stack_size);
#else
    (void)exiting;
#endif
    ctx_switch(&t->ctx, &sched_ctx);
#if EMU_ASAN
    __sanitizer_finish_switch_fiber(t->asan_fake, nullptr, nullptr);
#endif
}

static void yield_to_scheduler()
{
    if (!in_fiber) {
        fail("a warp collective (%s) in a kernel run without fibers", op_name[cur->op]);
        abort();
    }
    Thread *t = cur;
    t->ncoll++;
    to_scheduler(t, false);
    cur = t;
}

static void fiber_entry()
{
#if EMU_ASAN
    __sanitizer_finish_switch_fiber(nullptr, &main_stack_lo, &main_stack_size);
#endif
    body();
    cur->op = DONE;
    to_scheduler(cur, true);
    abort(); /* never resumed */
}

static inline float bf16_to_f(uint16_t h)
{
    uint32_t u = (uint32_t)h << 16;
    float f;
    memcpy(&f, &u, 4);
    return f;
}

static inline uint16_t f_to_bf16(float f) /* round to nearest even, NaN kept quiet */
{
    uint32_t u;
    memcpy(&u, &f, 4);
    if ((u & 0x7fffffffu) > 0x7f800000u)
        return (uint16_t)((u >> 16) | 0x40);
    u += 0x7fffu + ((u >> 16) & 1u);
    return (uint16_t)(u >> 16);
}

/* Shared-memory wavefronts of one phase of 16-byte accesses (8 lanes):
 * the most distinct 16-byte addresses that share a group of 4 banks. */
static int wavefronts(const uint32_t *addrs, int n)
{
    int worst = 0;
    for (int gidx = 0; gidx < 8; gidx++) {
        std::vector<uint32_t> seen;
        for (int i = 0; i < n; i++)
            if (((addrs[i] >> 4) & 7) == (uint32_t)gidx &&
                std::find(seen.begin(), seen.end(), addrs[i] & ~15u) == seen.end())
                seen.push_back(addrs[i] & ~15u);
        worst = std::max(worst, (int)seen.size());
    }
    return worst;
}

static void resolve_ldsm(Thread **L, bool trans, int warp)
{
    const char *what = trans ? "ldmatrix.trans" : "ldmatrix";
    for (int i = 0; i < 4; i++) {
        uint16_t M[8][8];
        uint32_t addrs[8];
        for (int j = 0; j < 8; j++) {
            const uint32_t a = L[8 * i + j]->addr;
            addrs[j] = a;
            if (!smem_range_ok(a, 16, what)) {
                memset(M[j], 0xff, 16);
                continue;
            }
            shadow_read(a, warp, what);
            memcpy(M[j], &smem[a], 16);
        }
        if (analyse) {
            stats.ldsm_phases++;
            stats.ldsm_wavefronts += wavefronts(addrs, 8);
        }
        /* PTX ISA, ldmatrix: lane t receives row t/4, columns 2(t%4) and
         * 2(t%4)+1 of each matrix (the lower column in the lower half);
         * with .trans, of the transposed matrix. */
        for (int t = 0; t < 32; t++) {
            const int rr = t / 4, cc = 2 * (t % 4);
            const uint16_t lo = trans ? M[cc][rr] : M[rr][cc];
            const uint16_t hi = trans ? M[cc + 1][rr] : M[rr][cc + 1];
            L[t]->r[i] = (uint32_t)lo | ((uint32_t)hi << 16);
        }
    }
}

static void resolve_mma(Thread **L)
{
    /* PTX ISA, mma.m16n8k16 with .bf16 A (row) and B (col), f32 C/D:
     *   A: a_i (i = 0..7, two per register, the lower index in the low half)
     *      row = groupID for i in {0,1,4,5}, groupID + 8 otherwise;
     *      col = threadID_in_group·2 + (i & 1), + 8 for i >= 4
     *   B: b_i (i = 0..3): row = threadID_in_group·2 + (i & 1), + 8 for i >= 2; col = groupID
     *   C, D: c_i (i = 0..3): row = groupID, + 8 for i >= 2; col = threadID_in_group·2 + (i & 1) */
    float A[16][16], B[16][8], C[16][8];
    int na[16][16] = {}, nbm[16][8] = {}, nc[16][8] = {};
    for (int lane = 0; lane < 32; lane++) {
        const Thread *t = L[lane];
        const int gid = lane >> 2, tig = lane & 3;
        for (int i = 0; i < 8; i++) {
            const uint32_t reg = t->a[i / 2];
            const uint16_t h = (i & 1) ? (uint16_t)(reg >> 16) : (uint16_t)(reg & 0xffff);
            const int row = (i < 2 || (i >= 4 && i < 6)) ? gid : gid + 8;
            const int col = tig * 2 + (i & 1) + (i >= 4 ? 8 : 0);
            A[row][col] = bf16_to_f(h);
            na[row][col]++;
        }
        for (int i = 0; i < 4; i++) {
            const uint32_t reg = i < 2 ? t->b0 : t->b1;
            const uint16_t h = (i & 1) ? (uint16_t)(reg >> 16) : (uint16_t)(reg & 0xffff);
            const int row = tig * 2 + (i & 1) + (i >= 2 ? 8 : 0);
            B[row][gid] = bf16_to_f(h);
            nbm[row][gid]++;
        }
        for (int i = 0; i < 4; i++) {
            const int row = i < 2 ? gid : gid + 8, col = tig * 2 + (i & 1);
            C[row][col] = t->c[i];
            nc[row][col]++;
        }
    }
    for (int r = 0; r < 16; r++)
        for (int c = 0; c < 16; c++)
            if (na[r][c] != 1 || (c < 8 && (nbm[r][c] != 1 || nc[r][c] != 1))) {
                fail("emulator: mma fragment map is not a bijection");
                return;
            }
    float Dm[16][8];
    for (int r = 0; r < 16; r++)
        for (int c = 0; c < 8; c++) {
            double acc = C[r][c];
            for (int k = 0; k < 16; k++)
                acc += (double)A[r][k] * (double)B[k][c];
            Dm[r][c] = (float)acc;
        }
    for (int lane = 0; lane < 32; lane++) {
        const int gid = lane >> 2, tig = lane & 3;
        for (int i = 0; i < 4; i++)
            L[lane]->c[i] = Dm[i < 2 ? gid : gid + 8][tig * 2 + (i & 1)];
    }
}

static void resolve_shfl(Thread **L)
{
    for (int lane = 0; lane < 32; lane++) {
        if (L[lane]->member != 0xffffffffu)
            fail("shfl with a partial member mask");
        if (L[lane]->smask != L[0]->smask)
            fail("shfl: lanes disagree on the lane mask");
    }
    for (int lane = 0; lane < 32; lane++)
        L[lane]->sres = L[lane ^ (L[lane]->smask & 31)]->sv;
}

/* Per-warp cp.async instruction analysis (first block of a launch). */
static void analyse_cp()
{
    std::sort(cprecs.begin(), cprecs.end(),
              [](const CpRec &a, const CpRec &b) {
                  return a.warp != b.warp ? a.warp < b.warp : a.seq != b.seq ? a.seq < b.seq : a.lane < b.lane;
              });
    for (size_t i = 0; i < cprecs.size();) {
        size_t j = i;
        while (j < cprecs.size() && cprecs[j].warp == cprecs[i].warp && cprecs[j].seq == cprecs[i].seq)
            j++;
        /* one warp instruction, lanes in order: phases of 8 lanes */
        std::vector<CpRec> grp(cprecs.begin() + i, cprecs.begin() + j);
        for (size_t p = 0; p < grp.size(); p += 8) {
            uint32_t a[8];
            int n = 0;
            for (size_t q = p; q < grp.size() && q < p + 8; q++)
                a[n++] = grp[q].dst;
            stats.cp_phases++;
            stats.cp_wavefronts += wavefronts(a, n);
        }
        std::vector<uintptr_t> sectors;
        for (auto &r : grp)
            for (uintptr_t s = r.src / 32; s <= (r.src + 15) / 32; s++)
                if (std::find(sectors.begin(), sectors.end(), s) == sectors.end())
                    sectors.push_back(s);
        stats.cp_instr++;
        stats.cp_sectors += (long)sectors.size();
        stats.cp_sectors_min += (long)((grp.size() * 16 + 31) / 32);
        i = j;
    }
    cprecs.clear();
}

/* Run one block of `nthreads` lanes through `body` with fibers. */
static void run_block(int nthreads)
{
    if ((int)stacks.size() < nthreads)
        stacks.resize(nthreads);
    thr.assign(nthreads, Thread());
    for (int t = 0; t < nthreads; t++) {
        Thread &th = thr[t];
        th.tid = t;
        th.warp = t / 32;
        th.lane = t % 32;
        th.tidx = dim3((unsigned)t, 0, 0);
        if (stacks[t].empty())
            stacks[t].resize(STACK);
        ctx_make(&th.ctx, stacks[t].data(), STACK, fiber_entry);
        th.stack_lo = stacks[t].data();
    }
    epoch = 0;
    std::fill(smem.begin(), smem.end(), 0xff);
    std::fill(shadow.begin(), shadow.end(), Shadow());
    const int nwarps = (nthreads + 31) / 32;
    if (nthreads % 32) {
        fail("block of %d threads (not whole warps)", nthreads);
        return;
    }
    std::vector<int> order(nthreads);
    for (int i = 0; i < nthreads; i++)
        order[i] = i;
    in_fiber = true;
    for (;;) {
        if (shuffle_order)
            std::shuffle(order.begin(), order.end(), rng);
        for (int i : order) {
            Thread &th = thr[i];
            if (th.op == RUN) {
                cur = &th;
                to_fiber(&th);
            }
        }
        cur = nullptr;
        bool progress = false, all_done = true, all_bar_or_done = true, any_bar = false;
        for (int w = 0; w < nwarps; w++) {
            Thread *L[32];
            for (int l = 0; l < 32; l++)
                L[l] = &thr[w * 32 + l];
            const Op op = L[0]->op;
            bool same = true;
            for (int l = 1; l < 32; l++)
                same = same && L[l]->op == op && L[l]->ncoll == L[0]->ncoll;
            for (int l = 0; l < 32; l++) {
                all_done = all_done && L[l]->op == DONE;
                all_bar_or_done = all_bar_or_done && (L[l]->op == DONE || L[l]->op == BAR);
                any_bar = any_bar || L[l]->op == BAR;
            }
            if (op == LDSM || op == LDSMT || op == MMA || op == SHFL) {
                if (!same) {
                    cur = L[0];
                    fail("warp %d: lanes at different collectives (lane 0 at %s #%llu)", w, op_name[op],
                         (unsigned long long)L[0]->ncoll);
                    in_fiber = false;
                    return;
                }
                if (op == LDSM || op == LDSMT)
                    resolve_ldsm(L, op == LDSMT, w);
                else if (op == MMA)
                    resolve_mma(L);
                else
                    resolve_shfl(L);
                stats.collectives++;
                for (int l = 0; l < 32; l++)
                    L[l]->op = RUN;
                progress = true;
            } else {
                for (int l = 0; l < 32; l++)
                    if (L[l]->op != BAR && L[l]->op != DONE) {
                        cur = L[l];
                        fail("warp %d: lane %d at %s while lane 0 is at %s", w, l, op_name[L[l]->op], op_name[op]);
                        in_fiber = false;
                        return;
                    }
            }
        }
        if (progress)
            continue;
        if (all_done)
            break;
        if (all_bar_or_done && any_bar) {
            bool all_bar = true;
            for (auto &th : thr)
                all_bar = all_bar && th.op == BAR;
            if (!all_bar) {
                fail("__syncthreads reached by some threads while others exited");
                in_fiber = false;
                return;
            }
            for (auto &th : thr) {
                if (th.ncoll != thr[0].ncoll) {
                    fail("__syncthreads: threads at different points (%llu vs %llu collectives)",
                         (unsigned long long)th.ncoll, (unsigned long long)thr[0].ncoll);
                    in_fiber = false;
                    return;
                }
                th.op = RUN;
            }
            epoch++;
            continue;
        }
        fail("deadlock");
        in_fiber = false;
        return;
    }
    in_fiber = false;
    for (auto &th : thr)
        if (!th.pend.empty())
            fail("thread %d exited with %zu cp.async copies never waited for", th.tid, th.pend.size());
    if (analyse)
        analyse_cp();
}

/* Launch a grid.  collective: the kernel uses warp collectives and
 * barriers (fibers); otherwise each thread runs to completion in turn. */
static void launch(dim3 grid, dim3 block, size_t smem_bytes, std::function<void()> fn, bool collective)
{
    if (grid.x == 0 || grid.y == 0 || grid.z == 0 || grid.y > 65535 || grid.z > 65535 || block.x > 1024 ||
        smem_bytes > 227 * 1024) {
        fail("bad launch: grid %u,%u,%u block %u smem %zu", grid.x, grid.y, grid.z, block.x, smem_bytes);
        return;
    }
    body = std::move(fn);
    g_gridDim = grid;
    g_blockDim = block;
    smem.assign(smem_offset + smem_bytes, 0xff);
    shadow.assign((smem_offset + smem_bytes) / 16 + 1, Shadow());
    smem_limit = smem_offset + smem_bytes;
    bool first = true;
    for (unsigned z = 0; z < grid.z; z++)
        for (unsigned y = 0; y < grid.y; y++)
            for (unsigned x = 0; x < grid.x; x++) {
                g_blockIdx = dim3(x, y, z);
                if (collective) {
                    analyse = first;
                    first = false;
                    run_block((int)block.x);
                    analyse = false;
                } else {
                    for (unsigned t = 0; t < block.x; t++) {
                        direct_thread = Thread();
                        direct_thread.tid = (int)t;
                        direct_thread.tidx = dim3(t, 0, 0);
                        cur = &direct_thread;
                        body();
                    }
                    cur = nullptr;
                }
                if (errors > 40)
                    return;
            }
}

} // namespace emu

#define threadIdx (emu::cur->tidx)
#define blockIdx (emu::g_blockIdx)
#define blockDim (emu::g_blockDim)
#define gridDim (emu::g_gridDim)

static inline void __syncthreads()
{
    emu::cur->op = emu::BAR;
    emu::yield_to_scheduler();
}

static inline float __shfl_xor_sync(unsigned member, float v, int lane_mask)
{
    emu::cur->op = emu::SHFL;
    emu::cur->member = member;
    emu::cur->sv = v;
    emu::cur->smask = lane_mask;
    emu::yield_to_scheduler();
    return emu::cur->sres;
}

namespace fa2 {

struct bf16 {
    uint16_t bits;
};

static inline uint32_t pack_bf16(float lo, float hi)
{
    return (uint32_t)emu::f_to_bf16(lo) | ((uint32_t)emu::f_to_bf16(hi) << 16);
}

static inline uint32_t smem_base() { return emu::smem_offset; }

static inline void cp_async_16(uint32_t dst, const void *src)
{
    emu::Thread &t = *emu::cur;
    if (!emu::in_fiber) {
        emu::fail("cp.async in a kernel run without fibers");
        return;
    }
    emu::check_global(src, 16, false, 16);
    if (!emu::smem_range_ok(dst, 16, "cp.async"))
        return;
    emu::shadow_write(dst, t);
    if (emu::analyse)
        emu::cprecs.push_back({t.warp, t.ncp, t.lane, dst, (uintptr_t)src});
    t.ncp++;
    if (emu::eager)
        memcpy(&emu::smem[dst], src, 16);
    t.pend.push_back({dst, (const uint8_t *)src});
}

static inline void cp_async_commit() {}

static inline void cp_async_wait_all()
{
    emu::Thread &t = *emu::cur;
    for (auto &p : t.pend) {
        if (!emu::eager)
            memcpy(&emu::smem[p.dst], p.src, 16);
        emu::shadow[p.dst / 16].w_done = emu::epoch;
    }
    t.pend.clear();
}

static inline void ldsm_x4(uint32_t (&r)[4], uint32_t addr)
{
    emu::cur->op = emu::LDSM;
    emu::cur->addr = addr;
    emu::yield_to_scheduler();
    for (int i = 0; i < 4; i++)
        r[i] = emu::cur->r[i];
}

static inline void ldsm_x4_t(uint32_t (&r)[4], uint32_t addr)
{
    emu::cur->op = emu::LDSMT;
    emu::cur->addr = addr;
    emu::yield_to_scheduler();
    for (int i = 0; i < 4; i++)
        r[i] = emu::cur->r[i];
}

static inline void mma_16816(float (&d)[4], const uint32_t (&a)[4], uint32_t b0, uint32_t b1)
{
    emu::Thread &t = *emu::cur;
    t.op = emu::MMA;
    for (int i = 0; i < 4; i++)
        t.a[i] = a[i], t.c[i] = d[i];
    t.b0 = b0, t.b1 = b1;
    emu::yield_to_scheduler();
    for (int i = 0; i < 4; i++)
        d[i] = emu::cur->c[i];
}

static inline float fast_exp2(float x) { return exp2f(x); }
static inline float fast_rcp(float x) { return 1.0f / x; }

static inline float ld_bias(const float *p)
{
    emu::check_global(p, 4, false, 4);
    return *p;
}

static inline void st_out2(float *p, float a, float b)
{
    emu::check_global(p, 8, true, 8);
    p[0] = a;
    p[1] = b;
}

static inline float ld_f32(const float *p)
{
    emu::check_global(p, 4, false, 4);
    return *p;
}

static inline void ld_f32x4(const float *p, float *x)
{
    emu::check_global(p, 16, false, 16);
    memcpy(x, p, 16);
}

static inline void st_u32x4(void *p, const uint32_t *w)
{
    emu::check_global(p, 16, true, 16);
    memcpy(p, w, 16);
}

} // namespace fa2

#define VD_FA2_EMULATE 1
#include "attention_fa2.cu"

/* ---- the launcher the kernel file's enqueue() drives ----------------------------------- */

struct EmuLaunch {
    std::vector<std::string> log;

    template <class C, bool BIAS>
    int forward(dim3 grid, const fa2::Params &p)
    {
        char buf[160];
        snprintf(buf, sizeof buf, "forward D=%d warps=%d MT=%d BC=%d bias=%d grid %u,%u,%u smem %d", C::D, C::WARPS,
                 C::MT, C::BC, (int)BIAS, grid.x, grid.y, grid.z, C::SMEM);
        log.push_back(buf);
        fa2::Params pc = p;
        emu::launch(grid, dim3(C::THREADS), C::SMEM, [pc] { fa2::fa2_forward<C, BIAS>(pc); }, true);
        return 0;
    }

    template <int D, bool VEC>
    int convert(dim3 grid, const float *src, fa2::bf16 *dst, int L, int Lp, int H, int h0, int nh, int b0, float mul)
    {
        char buf[160];
        snprintf(buf, sizeof buf, "convert D=%d vec=%d grid %u,%u,%u L=%d Lp=%d h0=%d nh=%d b0=%d", D, (int)VEC, grid.x,
                 grid.y, grid.z, L, Lp, h0, nh, b0);
        log.push_back(buf);
        emu::launch(grid, dim3(fa2::kConvThreads), 0,
                    [=] { fa2::fa2_convert<D, VEC>(src, dst, L, Lp, H, h0, nh, b0, mul); }, false);
        return 0;
    }
};

/* ---- references ------------------------------------------------------------------------ */

static float bf16r(float x) { return emu::bf16_to_f(emu::f_to_bf16(x)); }

struct Case {
    const char *name;
    int64_t B, Lq, Lk, H, d;
    bool bias, kv_len;
    float qgain;       /* q range ±qgain (scores' spread) */
    int neg_inf_rows;  /* rows whose bias is −inf on the first keys (> one tile for some) */
    int64_t hpp;       /* heads per pass (0: all) */
    int misalign;      /* offset q, k, v by this many floats (unaligned: scalar conversion loads) */
};

struct Data {
    std::vector<float> q, k, v, bias;
    std::vector<int32_t> kv;
};

/* Exact op in double. */
static void reference_exact(const Case &c, const Data &D, const float *q, const float *k, const float *v,
                            std::vector<double> &out)
{
    const int64_t d = c.d;
    const double scale = 1.0 / sqrt((double)d);
    out.assign((size_t)(c.B * c.Lq * c.H * d), 0.0);
    std::vector<double> s(c.Lk);
    for (int64_t b = 0; b < c.B; b++)
        for (int64_t h = 0; h < c.H; h++)
            for (int64_t i = 0; i < c.Lq; i++) {
                const int64_t keys = c.kv_len ? D.kv[b] : c.Lk;
                const float *qi = q + ((b * c.Lq + i) * c.H + h) * d;
                double mx = -INFINITY;
                for (int64_t j = 0; j < keys; j++) {
                    const float *kj = k + ((b * c.Lk + j) * c.H + h) * d;
                    double acc = 0;
                    for (int64_t e = 0; e < d; e++)
                        acc += (double)qi[e] * kj[e];
                    acc *= scale;
                    if (c.bias)
                        acc += D.bias[(h * c.Lq + i) * c.Lk + j];
                    s[j] = acc;
                    mx = std::max(mx, acc);
                }
                double sum = 0;
                for (int64_t j = 0; j < keys; j++) {
                    s[j] = s[j] == -INFINITY ? 0.0 : exp(s[j] - mx);
                    sum += s[j];
                }
                double *o = &out[((b * c.Lq + i) * c.H + h) * d];
                for (int64_t j = 0; j < keys; j++) {
                    const float *vj = v + ((b * c.Lk + j) * c.H + h) * d;
                    for (int64_t e = 0; e < d; e++)
                        o[e] += s[j] * vj[e];
                }
                for (int64_t e = 0; e < d; e++)
                    o[e] /= sum;
            }
}

/* The kernel's arithmetic, scalar: bf16 inputs (q scaled by scale·log2 e in
 * f32 first), log2-domain scores, key tiles of BC with the running max,
 * P rounded to bf16 for P·V while the sum uses the f32 p. */
static void reference_model(const Case &c, const Data &D, const float *q, const float *k, const float *v, int BC,
                            std::vector<double> &out)
{
    const int64_t d = c.d;
    const float mul = (1.0f / sqrtf((float)d)) * fa2::kLog2e;
    out.assign((size_t)(c.B * c.Lq * c.H * d), 0.0);
    std::vector<float> qb(d), s(BC);
    std::vector<double> o(d);
    for (int64_t b = 0; b < c.B; b++)
        for (int64_t h = 0; h < c.H; h++)
            for (int64_t i = 0; i < c.Lq; i++) {
                const int64_t keys = c.kv_len ? D.kv[b] : c.Lk;
                const float *qi = q + ((b * c.Lq + i) * c.H + h) * d;
                for (int64_t e = 0; e < d; e++)
                    qb[e] = bf16r(qi[e] * mul);
                float m = -INFINITY;
                double l = 0;
                std::fill(o.begin(), o.end(), 0.0);
                for (int64_t k0 = 0; k0 < keys; k0 += BC) {
                    float mx = m;
                    for (int j = 0; j < BC; j++) {
                        const int64_t key = k0 + j;
                        if (key >= keys) {
                            s[j] = -INFINITY;
                            continue;
                        }
                        const float *kj = k + ((b * c.Lk + key) * c.H + h) * d;
                        /* f32 accumulation, rounded after each k-step of 16 (as the mma chain) */
                        float sv = 0.0f;
                        for (int64_t e0 = 0; e0 < d; e0 += 16) {
                            double acc = sv;
                            for (int64_t e = e0; e < e0 + 16; e++)
                                acc += (double)qb[e] * bf16r(kj[e]);
                            sv = (float)acc;
                        }
                        if (c.bias)
                            sv = sv + D.bias[(h * c.Lq + i) * c.Lk + key] * fa2::kLog2e;
                        s[j] = sv;
                        mx = std::max(mx, sv);
                    }
                    const float base = mx == -INFINITY ? 0.0f : mx;
                    const double corr = exp2f(m - base);
                    m = mx;
                    double sum = 0;
                    for (int e = 0; e < d; e++)
                        o[e] *= corr;
                    for (int j = 0; j < BC; j++) {
                        const float p = exp2f(s[j] - base);
                        sum += p;
                        if (p == 0.0f)
                            continue;
                        const float pb = bf16r(p);
                        const float *vj = v + ((b * c.Lk + k0 + j) * c.H + h) * d;
                        for (int64_t e = 0; e < d; e++)
                            o[e] += (double)pb * bf16r(vj[e]);
                    }
                    l = l * corr + sum;
                }
                double *dst = &out[((b * c.Lq + i) * c.H + h) * d];
                for (int64_t e = 0; e < d; e++)
                    dst[e] = o[e] / l;
            }
}

static double rel_l2(const float *a, const std::vector<double> &ref, size_t n, double *max_abs)
{
    double num = 0, den = 0, mx = 0;
    for (size_t i = 0; i < n; i++) {
        const double dd = (double)a[i] - ref[i];
        num += dd * dd;
        den += ref[i] * ref[i];
        if (!(fabs(dd) <= mx))
            mx = fabs(dd);
    }
    *max_abs = mx;
    return den > 0 ? sqrt(num / den) : (num > 0 ? INFINITY : 0);
}

static int variant_bc(int64_t d, int variant)
{
    static const int bc64[] = {fa2::Variant<64, 0>::C::BC, fa2::Variant<64, 1>::C::BC, fa2::Variant<64, 2>::C::BC,
                               fa2::Variant<64, 3>::C::BC};
    static const int bc128[] = {fa2::Variant<128, 0>::C::BC, fa2::Variant<128, 1>::C::BC,
                                fa2::Variant<128, 2>::C::BC, fa2::Variant<128, 3>::C::BC};
    static_assert(sizeof bc64 / sizeof bc64[0] == VD_CUDA_FA2_VARIANTS, "a BC per variant");
    return d == 64 ? bc64[variant] : bc128[variant];
}

static int failures = 0, runs = 0;

static void run_case(const Case &c, int variant, bool eager, bool shuffle, uint64_t seed, uint32_t smem_at = 0)
{
    std::mt19937_64 g(seed);
    std::uniform_real_distribution<float> U(-1.0f, 1.0f);
    Data D;
    const int64_t d = c.d, mis = c.misalign;
    const size_t nq = (size_t)(c.B * c.Lq * c.H * d), nk = (size_t)(c.B * c.Lk * c.H * d);
    D.q.resize(nq + mis), D.k.resize(nk + mis), D.v.resize(nk + mis);
    for (auto &x : D.q)
        x = U(g) * c.qgain;
    for (auto &x : D.k)
        x = U(g) * 1.7320508f;
    for (auto &x : D.v)
        x = U(g);
    if (c.bias) {
        D.bias.resize((size_t)(c.H * c.Lq * c.Lk));
        for (auto &x : D.bias)
            x = 2.0f * U(g);
        /* −inf on the first keys of some rows: one row masked over more than
         * a whole key tile, others partly */
        for (int r = 0; r < c.neg_inf_rows && r < c.Lq; r++) {
            const int64_t h = r % c.H, i = (r * 37) % c.Lq;
            const int64_t upto = std::min<int64_t>(c.Lk - 1, r == 0 ? 150 : 3 + 11 * r);
            for (int64_t j = 0; j < upto; j++)
                D.bias[(h * c.Lq + i) * c.Lk + j] = -INFINITY;
        }
    }
    if (c.kv_len) {
        D.kv.resize(c.B);
        for (int64_t b = 0; b < c.B; b++)
            D.kv[b] = (int32_t)(b == 0 ? c.Lk : b == 1 ? (c.Lk * 2) / 5 + 1 : 1 + (b * 7919) % c.Lk);
    }
    if (c.bias && c.kv_len) /* a −inf row must keep at least one live key in every batch */
        for (int r = 0; r < c.neg_inf_rows && r < c.Lq; r++) {
            const int64_t h = r % c.H, i = (r * 37) % c.Lq;
            D.bias[(h * c.Lq + i) * c.Lk + 0] = 0.5f;
        }
    const float *q = D.q.data() + mis, *k = D.k.data() + mis, *v = D.v.data() + mis;

    const int64_t hpp = c.hpp ? c.hpp : c.H;
    const size_t sbytes = vd_cuda_attention_fa2_scratch_bytes(c.B, c.Lq, c.Lk, hpp, d);
    std::vector<uint8_t> scratch_store(sbytes + 256);
    uint8_t *scratch = (uint8_t *)(((uintptr_t)scratch_store.data() + 255) & ~(uintptr_t)255); /* as cudaMalloc */
    memset(scratch, 0xff, sbytes); /* bf16 NaN */
    std::vector<float> out(nq, NAN);

    emu::gbufs.clear();
    emu::add_buffer(q, nq * 4, "q", false, false, false);
    emu::add_buffer(k, nk * 4, "k", false, false, false);
    emu::add_buffer(v, nk * 4, "v", false, false, false);
    if (c.bias)
        emu::add_buffer(D.bias.data(), D.bias.size() * 4, "bias", false, false, false);
    emu::add_buffer(scratch, sbytes, "scratch", true, true, false);
    emu::add_buffer(out.data(), nq * 4, "out", true, false, true);
    emu::errors = 0;
    emu::stats = emu::Stats();
    emu::eager = eager;
    emu::shuffle_order = shuffle;
    emu::smem_offset = smem_at;

    EmuLaunch launch;
    const float scale = 1.0f / sqrtf((float)d);
    const int rc = fa2::enqueue(launch, variant, q, k, v, c.bias ? D.bias.data() : nullptr, out.data(), c.B, c.Lq,
                                c.Lk, c.H, d, scale, c.kv_len ? D.kv.data() : nullptr, scratch, hpp);

    bool ok = rc == 0 && emu::errors == 0;
    /* every output element written exactly once */
    const emu::GBuf &ob = emu::gbufs.back();
    size_t bad_w = 0;
    for (size_t i = 0; i < nq; i++)
        bad_w += ob.writes[i] != 1;
    if (bad_w) {
        fprintf(stderr, "  %zu output elements not written exactly once\n", bad_w);
        ok = false;
    }
    std::vector<double> ex, mo;
    reference_exact(c, D, q, k, v, ex);
    reference_model(c, D, q, k, v, variant_bc(d, variant), mo);
    double mx_e, mx_m;
    const double e_exact = rel_l2(out.data(), ex, nq, &mx_e), e_model = rel_l2(out.data(), mo, nq, &mx_m);
    const bool num_ok = e_exact <= 1e-2 && e_model <= 1e-6;
    ok = ok && num_ok;
    const auto &S = emu::stats;
    printf("%-4s %-34s v%d %s%s%s  exact %.2e  model %.2e (max %.1e)  ldsm %.2f wf/phase  cp.st %.2f wf/phase  "
           "cp.gl %.2f sect  %s\n",
           ok ? "ok" : "FAIL", c.name, variant, eager ? "eager" : "lazy ", shuffle ? "+shuf" : "      ",
           smem_at ? " smem@16" : "", e_exact,
           e_model, mx_m, S.ldsm_phases ? (double)S.ldsm_wavefronts / S.ldsm_phases : 0.0,
           S.cp_phases ? (double)S.cp_wavefronts / S.cp_phases : 0.0,
           S.cp_sectors_min ? (double)S.cp_sectors / S.cp_sectors_min : 0.0, rc ? "(enqueue failed)" : "");
    runs++;
    if (!ok) {
        failures++;
        for (auto &s : launch.log)
            fprintf(stderr, "    %s\n", s.c_str());
    }
    fflush(stdout);
}

/* Arguments the enqueue must refuse. */
static void check_refusals()
{
    std::vector<float> buf(64 * 128 * 4, 0.0f);
    std::vector<uint8_t> scr(1 << 20);
    EmuLaunch launch;
    int32_t bad_kv[2] = {5, 0};
    float *p = buf.data();
    void *s = (void *)(((uintptr_t)scr.data() + 15) & ~(uintptr_t)15);
    int fails = 0;
    fails += fa2::enqueue(launch, 0, p, p, p, nullptr, p, 1, 4, 4, 1, 96, 1.0f, nullptr, s, 1) == 0;  /* d = 96 */
    fails += fa2::enqueue(launch, VD_CUDA_FA2_VARIANTS, p, p, p, nullptr, p, 1, 4, 4, 1, 64, 1.0f, nullptr, s, 1) == 0;
    fails += fa2::enqueue(launch, -1, p, p, p, nullptr, p, 1, 4, 4, 1, 64, 1.0f, nullptr, s, 1) == 0;
    fails += fa2::enqueue(launch, 0, p, p, p, nullptr, p, 2, 4, 4, 1, 64, 1.0f, bad_kv, s, 1) == 0;   /* kv_len 0 */
    fails += fa2::enqueue(launch, 0, p, p, p, nullptr, p + 1, 1, 4, 4, 1, 64, 1.0f, nullptr, s, 1) == 0; /* out */
    fails += !launch.log.empty();
    printf("%-4s argument refusals\n", fails ? "FAIL" : "ok");
    failures += fails != 0;
    runs++;
}

int main(int argc, char **argv)
{
    const bool quick = argc > 1 && strcmp(argv[1], "quick") == 0;
    static const Case cases[] = {
        /* name                               B   Lq   Lk  H    d  bias   kv    qgain inf hpp mis */
        {"B2 H3 Lq300 Lk257", 2, 300, 257, 3, 0, false, false, 1.7320508f, 0, 0, 0},
        {"B2 H3 Lq300 Lk257 +bias +kv_len", 2, 300, 257, 3, 0, true, true, 1.7320508f, 0, 0, 0},
        {"B2 H3 Lq77 Lk512 +kv_len (tile multiples)", 2, 77, 512, 3, 0, false, true, 1.7320508f, 0, 0, 0},
        {"B3 H2 Lq130 Lk65 +bias(-inf) +kv_len", 3, 130, 65, 2, 0, true, true, 1.7320508f, 5, 0, 0},
        {"B1 H2 Lq256 Lk300 +bias(-inf) peaky", 1, 256, 300, 2, 0, true, false, 6.0f, 4, 0, 0},
        {"B1 H2 Lq256 Lk200 peaky", 1, 256, 200, 2, 0, false, false, 6.0f, 0, 0, 0},
        {"B1 H1 Lq1 Lk1", 1, 1, 1, 1, 0, false, false, 1.7320508f, 0, 0, 0},
        {"B2 H3 Lq40 Lk33 heads/pass 2, misaligned", 2, 40, 33, 3, 0, false, true, 1.7320508f, 0, 2, 1},
        {"B17 H2 Lq20 Lk10 +kv_len heads/pass 1", 17, 20, 10, 2, 0, false, true, 1.7320508f, 0, 1, 0},
        {"B1 H1 Lq5 Lk700 +kv_len", 1, 5, 700, 1, 0, false, true, 1.7320508f, 0, 0, 0},
        {"B2 H1 Lq70 Lk383 +kv_len (one key short)", 2, 70, 383, 1, 0, false, true, 1.7320508f, 0, 0, 0},
    };
    const int ncases = sizeof cases / sizeof cases[0];
    check_refusals();
    uint64_t seed = 1000;
    for (int64_t d : {64, 128}) {
        for (int variant = 0; variant < VD_CUDA_FA2_VARIANTS; variant++) {
            for (int i = 0; i < ncases; i++) {
                if (quick && i != 1 && i != 3)
                    continue;
                Case c = cases[i];
                c.d = d;
                run_case(c, variant, false, false, seed++);
            }
            /* eager copies and a shuffled lane order on one case; then
             * dynamic shared memory that starts off a 128-byte boundary */
            Case c = cases[1];
            c.d = d;
            run_case(c, variant, true, true, seed++);
            run_case(c, variant, false, false, seed++, 16);
        }
    }
    printf("emu_attention_fa2: %d passed, %d failed\n", runs - failures, failures);
    return failures ? 1 : 0;
}

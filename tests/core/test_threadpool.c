/* The thread pool (engine/core/threadpool.c): every index exactly once for
 * many sizes, grains and thread counts; chunk and worker bounds; nested
 * calls inline; two threads submitting to one pool at once. */
#include <pthread.h>
#include <stdatomic.h>
#include <unistd.h>

#include "core/threadpool.h"
#include "test_util.h"

typedef struct coverage {
    atomic_int *hits;      /* per index */
    int64_t n, grain;
    int pool_size;
    atomic_int bad_chunk;  /* empty, out of range, or short chunks (other than the last) */
    atomic_int bad_worker; /* worker index outside 0..size-1 */
    atomic_int busy[64];   /* per worker: inside fn right now */
    atomic_int overlap;    /* two threads ran with the same worker index at once */
} coverage;

static void count_range(void *varg, int64_t begin, int64_t end, int worker)
{
    coverage *c = varg;
    if (begin < 0 || end > c->n || begin >= end || (end - begin < c->grain && end != c->n))
        atomic_fetch_add(&c->bad_chunk, 1);
    if (worker < 0 || worker >= c->pool_size || worker >= 64) {
        atomic_fetch_add(&c->bad_worker, 1);
        return;
    }
    if (atomic_fetch_add(&c->busy[worker], 1) != 0)
        atomic_fetch_add(&c->overlap, 1);
    for (int64_t i = begin; i < end && i >= 0 && i < c->n; i++)
        atomic_fetch_add(&c->hits[i], 1);
    atomic_fetch_sub(&c->busy[worker], 1);
}

/* Run one parallel_for and check its coverage; returns the failures. */
static int run_coverage(vd_threadpool *pool, int64_t n, int64_t grain)
{
    coverage c;
    memset(&c, 0, sizeof c);
    c.n = n;
    c.grain = grain < 1 ? 1 : grain;
    c.pool_size = vd_threadpool_size(pool);
    c.hits = calloc((size_t)(n > 0 ? n : 1), sizeof *c.hits);
    if (!c.hits)
        return 1;
    vd_parallel_for(pool, n, grain, count_range, &c);
    int fails = 0;
    for (int64_t i = 0; i < n; i++)
        if (atomic_load(&c.hits[i]) != 1 && fails++ < 3)
            fprintf(stderr, "pool %d, n %lld, grain %lld: index %lld ran %d times\n", c.pool_size, (long long)n,
                    (long long)grain, (long long)i, atomic_load(&c.hits[i]));
    if (atomic_load(&c.bad_chunk) || atomic_load(&c.bad_worker) || atomic_load(&c.overlap)) {
        fprintf(stderr, "pool %d, n %lld, grain %lld: %d bad chunks, %d bad workers, %d overlaps\n", c.pool_size,
                (long long)n, (long long)grain, atomic_load(&c.bad_chunk), atomic_load(&c.bad_worker),
                atomic_load(&c.overlap));
        fails++;
    }
    free(c.hits);
    return fails;
}

static void test_coverage(void)
{
    const int threads[] = {1, 2, 3, 4, 8};
    const int64_t sizes[] = {0, 1, 2, 7, 31, 100, 1000, 12345};
    const int64_t grains[] = {-5, 0, 1, 3, 64, 1000, 100000};
    for (size_t a = 0; a < sizeof threads / sizeof threads[0]; a++) {
        vd_threadpool *pool = NULL;
        CHECK_OK(vd_threadpool_new(threads[a], &pool));
        if (!pool)
            continue;
        CHECK(vd_threadpool_size(pool) == threads[a]);
        for (size_t b = 0; b < sizeof sizes / sizeof sizes[0]; b++)
            for (size_t g = 0; g < sizeof grains / sizeof grains[0]; g++)
                CHECK(run_coverage(pool, sizes[b], grains[g]) == 0);
        /* Many small jobs back to back (the start/stop handshake). */
        int fails = 0;
        for (int rep = 0; rep < 300; rep++)
            fails += run_coverage(pool, 1 + rep % 50, 1);
        CHECK(fails == 0);
        vd_threadpool_free(pool);
    }
    /* Without a pool: one inline call. */
    CHECK(run_coverage(NULL, 1000, 7) == 0);
    CHECK(vd_threadpool_size(NULL) == 1);
    vd_threadpool_free(NULL);

    vd_threadpool *pool = NULL;
    CHECK_OK(vd_threadpool_new(0, &pool)); /* 0: one per online core */
    CHECK(pool && vd_threadpool_size(pool) == vd_cpu_count());
    vd_threadpool_free(pool);
    CHECK(vd_cpu_count() >= 1);
    CHECK_FAILS(vd_threadpool_new(5000, &pool), VD_ERR_INVALID_ARGUMENT);
    CHECK(pool == NULL);
}

/* ---- nesting ----------------------------------------------------------------- */

typedef struct nested {
    vd_threadpool *pool;
    atomic_int *hits; /* 64 x 64 */
    atomic_int wrong_worker;
    atomic_int inner_calls;
} nested;

typedef struct inner_arg {
    nested *outer;
    int64_t row;
    int worker; /* the outer chunk's worker */
} inner_arg;

static void inner_fn(void *varg, int64_t begin, int64_t end, int worker)
{
    inner_arg *a = varg;
    atomic_fetch_add(&a->outer->inner_calls, 1);
    if (worker != a->worker) /* inline: same thread, so same worker slot */
        atomic_fetch_add(&a->outer->wrong_worker, 1);
    for (int64_t i = begin; i < end; i++)
        atomic_fetch_add(&a->outer->hits[a->row * 64 + i], 1);
}

static void outer_fn(void *varg, int64_t begin, int64_t end, int worker)
{
    nested *o = varg;
    for (int64_t r = begin; r < end; r++) {
        inner_arg a = {o, r, worker};
        vd_parallel_for(o->pool, 64, 1, inner_fn, &a);
    }
}

static void test_nested(void)
{
    vd_threadpool *pool = NULL;
    CHECK_OK(vd_threadpool_new(4, &pool));
    if (!pool)
        return;
    nested o;
    memset(&o, 0, sizeof o);
    o.pool = pool;
    o.hits = calloc(64 * 64, sizeof *o.hits);
    CHECK(o.hits != NULL);
    vd_parallel_for(pool, 64, 1, outer_fn, &o);
    int bad = 0;
    for (int i = 0; i < 64 * 64; i++)
        bad += atomic_load(&o.hits[i]) != 1;
    CHECK(bad == 0);
    CHECK(atomic_load(&o.inner_calls) == 64); /* each inner call ran as one inline chunk */
    CHECK(atomic_load(&o.wrong_worker) == 0);
    free(o.hits);
    vd_threadpool_free(pool);
}

/* ---- two submitting threads ------------------------------------------------- */

typedef struct submitter {
    vd_threadpool *pool;
    int seed;
    int fails;
} submitter;

static void *submit_many(void *varg)
{
    submitter *s = varg;
    for (int rep = 0; rep < 200; rep++) {
        int64_t n = 1 + (rep * 37 + s->seed * 11) % 3000;
        s->fails += run_coverage(s->pool, n, 1 + rep % 5);
    }
    return NULL;
}

static void test_concurrent_callers(void)
{
    vd_threadpool *pool = NULL;
    CHECK_OK(vd_threadpool_new(3, &pool));
    if (!pool)
        return;
    submitter s[2] = {{pool, 1, 0}, {pool, 2, 0}};
    pthread_t th[2];
    for (int i = 0; i < 2; i++)
        CHECK(pthread_create(&th[i], NULL, submit_many, &s[i]) == 0);
    for (int i = 0; i < 2; i++)
        pthread_join(th[i], NULL);
    CHECK(s[0].fails == 0 && s[1].fails == 0);
    vd_threadpool_free(pool);
}

int main(void)
{
    alarm(100); /* a deadlock fails the test instead of hanging it */
    test_coverage();
    test_nested();
    test_concurrent_callers();
    return test_finish("test_threadpool");
}

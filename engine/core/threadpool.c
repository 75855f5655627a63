#include "core/threadpool.h"

#include <pthread.h>
#include <stdlib.h>
#include <unistd.h>

#include "core/error.h"

struct vd_threadpool {
    int size; /* workers + the caller */
    pthread_t *threads;
    pthread_mutex_t lock;      /* guards the job fields below */
    pthread_cond_t start;
    pthread_cond_t done;
    pthread_mutex_t submit;    /* one parallel_for at a time */
    /* current job */
    vd_range_fn fn;
    void *arg;
    int64_t n, chunk, next;
    int pending;               /* workers still inside the current job */
    unsigned generation;
    int stop;
};

/* 1 + the worker index of the chunk this thread is running, 0 outside any
 * parallel_for.  A nested call runs inline and passes that index on, so
 * per-worker scratch indexed by `worker` is never shared by two threads. */
static _Thread_local int vd_inside_worker;

int vd_cpu_count(void)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (int)n : 1;
}

/* Claim chunks until none are left; shared by workers and the caller. */
static void run_chunks(vd_threadpool *p, int worker)
{
    for (;;) {
        pthread_mutex_lock(&p->lock);
        int64_t b = p->next;
        p->next += p->chunk;
        pthread_mutex_unlock(&p->lock);
        if (b >= p->n)
            return;
        int64_t e = b + p->chunk < p->n ? b + p->chunk : p->n;
        p->fn(p->arg, b, e, worker);
    }
}

typedef struct worker_arg {
    vd_threadpool *pool;
    int index;
} worker_arg;

static void *worker_main(void *varg)
{
    worker_arg wa = *(worker_arg *)varg;
    free(varg);
    vd_threadpool *p = wa.pool;
    vd_inside_worker = wa.index + 1;
    unsigned seen = 0;
    pthread_mutex_lock(&p->lock);
    for (;;) {
        while (!p->stop && p->generation == seen)
            pthread_cond_wait(&p->start, &p->lock);
        if (p->stop)
            break;
        seen = p->generation;
        pthread_mutex_unlock(&p->lock);
        run_chunks(p, wa.index);
        pthread_mutex_lock(&p->lock);
        if (--p->pending == 0)
            pthread_cond_signal(&p->done);
    }
    pthread_mutex_unlock(&p->lock);
    return NULL;
}

vd_status vd_threadpool_new(int threads, vd_threadpool **out)
{
    *out = NULL;
    if (threads <= 0)
        threads = vd_cpu_count();
    if (threads > 1024)
        return vd_error(VD_ERR_INVALID_ARGUMENT, "threads=%d is more than 1024", threads);
    vd_threadpool *p = calloc(1, sizeof *p);
    if (!p)
        return vd_error(VD_ERR_OUT_OF_MEMORY, "thread pool: out of memory");
    p->size = threads;
    pthread_mutex_init(&p->lock, NULL);
    pthread_mutex_init(&p->submit, NULL);
    pthread_cond_init(&p->start, NULL);
    pthread_cond_init(&p->done, NULL);
    if (threads > 1) {
        p->threads = calloc((size_t)threads - 1, sizeof *p->threads);
        if (!p->threads) {
            vd_threadpool_free(p);
            return vd_error(VD_ERR_OUT_OF_MEMORY, "thread pool: out of memory");
        }
        for (int i = 0; i < threads - 1; i++) {
            worker_arg *wa = malloc(sizeof *wa);
            if (wa) {
                wa->pool = p;
                wa->index = i + 1;
            }
            if (!wa || pthread_create(&p->threads[i], NULL, worker_main, wa) != 0) {
                free(wa);
                p->size = i + 1; /* the workers started so far, plus the caller */
                vd_threadpool_free(p);
                return vd_error(VD_ERR_OUT_OF_MEMORY, "thread pool: could not start thread %d of %d", i + 2, threads);
            }
        }
    }
    *out = p;
    return VD_OK;
}

void vd_threadpool_free(vd_threadpool *p)
{
    if (!p)
        return;
    pthread_mutex_lock(&p->lock);
    p->stop = 1;
    pthread_cond_broadcast(&p->start);
    pthread_mutex_unlock(&p->lock);
    for (int i = 0; p->threads && i < p->size - 1; i++)
        pthread_join(p->threads[i], NULL);
    free(p->threads);
    pthread_mutex_destroy(&p->lock);
    pthread_mutex_destroy(&p->submit);
    pthread_cond_destroy(&p->start);
    pthread_cond_destroy(&p->done);
    free(p);
}

int vd_threadpool_size(const vd_threadpool *p) { return p ? p->size : 1; }

void vd_parallel_for(vd_threadpool *p, int64_t n, int64_t grain, vd_range_fn fn, void *arg)
{
    if (n <= 0)
        return;
    if (grain < 1)
        grain = 1;
    if (!p || p->size == 1 || vd_inside_worker || n <= grain) {
        fn(arg, 0, n, vd_inside_worker ? vd_inside_worker - 1 : 0);
        return;
    }
    pthread_mutex_lock(&p->submit);
    /* About four chunks per thread balances uneven chunks without much
     * locking. */
    int64_t chunk = (n + (int64_t)p->size * 4 - 1) / ((int64_t)p->size * 4);
    if (chunk < grain)
        chunk = grain;
    pthread_mutex_lock(&p->lock);
    p->fn = fn;
    p->arg = arg;
    p->n = n;
    p->chunk = chunk;
    p->next = 0;
    p->pending = p->size - 1;
    p->generation++;
    pthread_cond_broadcast(&p->start);
    pthread_mutex_unlock(&p->lock);

    vd_inside_worker = 1;
    run_chunks(p, 0);
    vd_inside_worker = 0;

    pthread_mutex_lock(&p->lock);
    while (p->pending > 0)
        pthread_cond_wait(&p->done, &p->lock);
    pthread_mutex_unlock(&p->lock);
    pthread_mutex_unlock(&p->submit);
}

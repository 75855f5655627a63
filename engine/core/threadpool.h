/* A fixed pool of worker threads running parallel-for loops.
 *
 * vd_parallel_for splits [0, n) into contiguous chunks and runs
 * fn(arg, begin, end, worker) on the pool and the calling thread; it returns
 * when every chunk is done.  Calls from different threads are serialised;
 * a call from inside a worker runs inline (no nesting deadlock). */
#ifndef VD_CORE_THREADPOOL_H
#define VD_CORE_THREADPOOL_H

#include <stdint.h>

#include "vdiff/status.h"

typedef struct vd_threadpool vd_threadpool;

typedef void (*vd_range_fn)(void *arg, int64_t begin, int64_t end, int worker);

/* `threads` total including the caller; 0 = online cores. */
vd_status vd_threadpool_new(int threads, vd_threadpool **out);
void vd_threadpool_free(vd_threadpool *pool);
int vd_threadpool_size(const vd_threadpool *pool);

/* Run fn over [0, n) in chunks of at least `grain` indices.  pool may be
 * NULL (runs inline). */
void vd_parallel_for(vd_threadpool *pool, int64_t n, int64_t grain, vd_range_fn fn, void *arg);

/* Online processor count (at least 1). */
int vd_cpu_count(void);

#endif

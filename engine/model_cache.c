#include "model_cache.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"

typedef struct entry {
    vd_cached_kind kind;
    char *key;
    void *obj;
    int refs;
    vd_cache_free_fn destroy;
    struct entry *next;
} entry;

/* Recursive: making a model acquires the weights and backend it needs,
 * and destroying one releases them. */
static pthread_mutex_t cache_lock;
static pthread_once_t cache_once = PTHREAD_ONCE_INIT;
static entry *cache_head;

static void init_lock(void)
{
    pthread_mutexattr_t a;
    pthread_mutexattr_init(&a);
    pthread_mutexattr_settype(&a, PTHREAD_MUTEX_RECURSIVE);
    pthread_mutex_init(&cache_lock, &a);
    pthread_mutexattr_destroy(&a);
}

vd_status vd_cache_acquire(vd_cached_kind kind, const char *key, vd_cache_make_fn make, void *ctx,
                           vd_cache_free_fn destroy, void **obj)
{
    *obj = NULL;
    pthread_once(&cache_once, init_lock);
    /* Loading happens under the lock: two pipelines asking for the same
     * file at once must not both load it. */
    pthread_mutex_lock(&cache_lock);
    for (entry *e = cache_head; e; e = e->next)
        if (e->kind == kind && strcmp(e->key, key) == 0) {
            e->refs++;
            *obj = e->obj;
            pthread_mutex_unlock(&cache_lock);
            return VD_OK;
        }
    entry *e = calloc(1, sizeof *e);
    char *k = strdup(key);
    if (!e || !k) {
        free(e);
        free(k);
        pthread_mutex_unlock(&cache_lock);
        return vd_error(VD_ERR_OUT_OF_MEMORY, "out of memory");
    }
    vd_status st = make(ctx, &e->obj);
    if (st != VD_OK) {
        free(e);
        free(k);
        pthread_mutex_unlock(&cache_lock);
        return st;
    }
    e->kind = kind;
    e->key = k;
    e->refs = 1;
    e->destroy = destroy;
    e->next = cache_head;
    cache_head = e;
    *obj = e->obj;
    pthread_mutex_unlock(&cache_lock);
    return VD_OK;
}

void vd_cache_release(void *obj)
{
    if (!obj)
        return;
    pthread_once(&cache_once, init_lock);
    pthread_mutex_lock(&cache_lock);
    for (entry **pe = &cache_head; *pe; pe = &(*pe)->next) {
        entry *e = *pe;
        if (e->obj != obj)
            continue;
        if (--e->refs == 0) {
            *pe = e->next;
            e->destroy(e->obj);
            free(e->key);
            free(e);
        }
        break;
    }
    pthread_mutex_unlock(&cache_lock);
}

int vd_cache_count(void)
{
    int n = 0;
    pthread_once(&cache_once, init_lock);
    pthread_mutex_lock(&cache_lock);
    for (entry *e = cache_head; e; e = e->next)
        n++;
    pthread_mutex_unlock(&cache_lock);
    return n;
}

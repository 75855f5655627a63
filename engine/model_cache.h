/* Process-wide sharing of loaded models: pipelines that name the same file
 * on the same device get the same loaded object (a user running two prompts
 * side by side does not pay the memory twice).  Entries are reference
 * counted and freed when the last user releases them. */
#ifndef VD_MODEL_CACHE_H
#define VD_MODEL_CACHE_H

#include "vdiff/status.h"

typedef enum vd_cached_kind {
    VD_CACHED_BACKEND = 0,
    VD_CACHED_WEIGHTS,
    VD_CACHED_DIT,
    VD_CACHED_VAE,
    VD_CACHED_TEXT_ENCODER
} vd_cached_kind;

/* Builds the object for a key on a miss. */
typedef vd_status (*vd_cache_make_fn)(void *ctx, void **obj);
typedef void (*vd_cache_free_fn)(void *obj);

/* Get the object for (kind, key), making it with `make` if absent.  The
 * key should identify the object completely (e.g. a resolved path plus the
 * device name).  Every successful acquire needs one vd_cache_release. */
vd_status vd_cache_acquire(vd_cached_kind kind, const char *key, vd_cache_make_fn make, void *ctx,
                           vd_cache_free_fn destroy, void **obj);
void vd_cache_release(void *obj);

/* Number of live entries (tests). */
int vd_cache_count(void);

#endif

/* A sorted index of names (not copied) for duplicate detection and lookup.
 *
 * Readers use it to reject files that name a tensor or key twice, the fp8
 * folding pass to pair "X.weight" with "X.scale_weight", the name maps to
 * find collisions, and weight sets to look names up. */
#ifndef VD_IO_NAME_INDEX_H
#define VD_IO_NAME_INDEX_H

#include <stdbool.h>
#include <stddef.h>

#include "vdiff/status.h"

typedef struct vd_name_index_entry {
    const char *name;
    size_t index; /* the caller's position of this name */
} vd_name_index_entry;

typedef struct vd_name_index {
    vd_name_index_entry *entries; /* sorted by name (strcmp) */
    size_t count, capacity;
} vd_name_index;

/* Index `names[0..n)`.  If two names are equal, *has_dup is set and
 * *dup_a < *dup_b are the positions of one such pair (the index is still
 * built).  Fails only for lack of memory. */
vd_status vd_name_index_build(vd_name_index *ix, const char *const *names, size_t n, bool *has_dup,
                              size_t *dup_a, size_t *dup_b);

/* Insert one name; returns false (and leaves the index unchanged) if it is
 * already there.  *oom is set when memory ran out. */
bool vd_name_index_insert(vd_name_index *ix, const char *name, size_t index, bool *oom);

/* Position of `name`, or false if absent. */
bool vd_name_index_find(const vd_name_index *ix, const char *name, size_t *index);

void vd_name_index_free(vd_name_index *ix);

#endif

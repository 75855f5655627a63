#include "io/name_index.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"

static int entry_cmp(const void *a, const void *b)
{
    const vd_name_index_entry *x = a, *y = b;
    int c = strcmp(x->name, y->name);
    if (c)
        return c;
    return x->index < y->index ? -1 : x->index > y->index;
}

vd_status vd_name_index_build(vd_name_index *ix, const char *const *names, size_t n, bool *has_dup,
                              size_t *dup_a, size_t *dup_b)
{
    memset(ix, 0, sizeof *ix);
    *has_dup = false;
    if (n == 0)
        return VD_OK;
    if (n > SIZE_MAX / sizeof *ix->entries)
        return vd_error(VD_ERR_OUT_OF_MEMORY, "out of memory indexing %zu names", n);
    ix->entries = malloc(n * sizeof *ix->entries);
    if (!ix->entries)
        return vd_error(VD_ERR_OUT_OF_MEMORY, "out of memory indexing %zu names", n);
    for (size_t i = 0; i < n; i++) {
        ix->entries[i].name = names[i];
        ix->entries[i].index = i;
    }
    ix->count = ix->capacity = n;
    qsort(ix->entries, n, sizeof *ix->entries, entry_cmp);
    for (size_t i = 1; i < n; i++)
        if (strcmp(ix->entries[i - 1].name, ix->entries[i].name) == 0) {
            *has_dup = true;
            *dup_a = ix->entries[i - 1].index;
            *dup_b = ix->entries[i].index;
            break;
        }
    return VD_OK;
}

/* First position whose name is >= `name`. */
static size_t lower_bound(const vd_name_index *ix, const char *name)
{
    size_t lo = 0, hi = ix->count;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (strcmp(ix->entries[mid].name, name) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

bool vd_name_index_insert(vd_name_index *ix, const char *name, size_t index, bool *oom)
{
    *oom = false;
    size_t at = lower_bound(ix, name);
    if (at < ix->count && strcmp(ix->entries[at].name, name) == 0)
        return false;
    if (ix->count == ix->capacity) {
        size_t cap = ix->capacity ? ix->capacity * 2 : 16;
        if (cap < ix->capacity || cap > SIZE_MAX / sizeof *ix->entries) {
            *oom = true;
            return false;
        }
        vd_name_index_entry *e = realloc(ix->entries, cap * sizeof *e);
        if (!e) {
            *oom = true;
            return false;
        }
        ix->entries = e;
        ix->capacity = cap;
    }
    memmove(&ix->entries[at + 1], &ix->entries[at], (ix->count - at) * sizeof *ix->entries);
    ix->entries[at].name = name;
    ix->entries[at].index = index;
    ix->count++;
    return true;
}

bool vd_name_index_find(const vd_name_index *ix, const char *name, size_t *index)
{
    size_t at = lower_bound(ix, name);
    if (at < ix->count && strcmp(ix->entries[at].name, name) == 0) {
        *index = ix->entries[at].index;
        return true;
    }
    return false;
}

void vd_name_index_free(vd_name_index *ix)
{
    free(ix->entries);
    memset(ix, 0, sizeof *ix);
}

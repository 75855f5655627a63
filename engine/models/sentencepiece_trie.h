/* A byte trie over piece strings, for finding every piece that starts at a
 * position of the normalized text (the lattice of the Unigram Viterbi) and
 * the longest user-defined piece there.  Children of a node are stored
 * contiguously, sorted by byte, and found by binary search. */
#ifndef VD_MODELS_SENTENCEPIECE_TRIE_H
#define VD_MODELS_SENTENCEPIECE_TRIE_H

#include <stddef.h>
#include <stdint.h>

#include "vdiff/status.h"

typedef struct vd_sp_trie_node {
    uint32_t first_child; /* index of the first child in nodes[] */
    uint16_t n_children;  /* 0..256 */
    uint8_t label;        /* the byte leading here from the parent */
    int32_t value;        /* id of the piece ending here, or -1 */
} vd_sp_trie_node;

typedef struct vd_sp_trie {
    vd_sp_trie_node *nodes; /* nodes[0] is the root */
    size_t n_nodes;
} vd_sp_trie;

typedef struct vd_sp_trie_key {
    const uint8_t *bytes;
    size_t len;
    int32_t value;
} vd_sp_trie_key;

/* Build from `n` keys (sorted in place).  Two equal keys fail with
 * VD_ERR_FORMAT naming the duplicated piece and `source`. */
vd_status vd_sp_trie_build(vd_sp_trie *t, vd_sp_trie_key *keys, size_t n, const char *source);
void vd_sp_trie_free(vd_sp_trie *t);

/* Follow byte b from `node`; returns the child or 0 (the root is never a
 * child) when there is none. */
static inline uint32_t vd_sp_trie_step(const vd_sp_trie *t, uint32_t node, uint8_t b)
{
    const vd_sp_trie_node *nd = &t->nodes[node];
    uint32_t lo = nd->first_child, hi = nd->first_child + nd->n_children;
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        uint8_t l = t->nodes[mid].label;
        if (l == b)
            return mid;
        if (l < b)
            lo = mid + 1;
        else
            hi = mid;
    }
    return 0;
}

/* Exact lookup: the value of key s[0..n), or -1. */
int32_t vd_sp_trie_find(const vd_sp_trie *t, const uint8_t *s, size_t n);

#endif

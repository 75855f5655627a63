#include "models/sentencepiece_trie.h"

#include <stdlib.h>
#include <string.h>

#include "core/error.h"

static int compare_keys(const void *a, const void *b)
{
    const vd_sp_trie_key *x = a, *y = b;
    size_t n = x->len < y->len ? x->len : y->len;
    int c = n ? memcmp(x->bytes, y->bytes, n) : 0;
    if (c)
        return c;
    return (x->len > y->len) - (x->len < y->len);
}

/* Per-node build state: the range of sorted keys below the node. */
typedef struct build_range {
    uint32_t lo, hi, depth;
} build_range;

typedef struct builder {
    vd_sp_trie_node *nodes;
    build_range *ranges;
    size_t n, cap;
} builder;

static vd_status push_node(builder *b, uint8_t label, uint32_t lo, uint32_t hi, uint32_t depth)
{
    if (b->n == b->cap) {
        size_t cap = b->cap ? b->cap * 2 : 1024;
        if (cap > UINT32_MAX || cap > SIZE_MAX / sizeof *b->nodes)
            return vd_error(VD_ERR_UNSUPPORTED, "SentencePiece vocabulary too large for its trie");
        vd_sp_trie_node *nodes = realloc(b->nodes, cap * sizeof *nodes);
        if (!nodes)
            return vd_error(VD_ERR_OUT_OF_MEMORY, "out of memory building the SentencePiece trie");
        b->nodes = nodes;
        build_range *ranges = realloc(b->ranges, cap * sizeof *ranges);
        if (!ranges)
            return vd_error(VD_ERR_OUT_OF_MEMORY, "out of memory building the SentencePiece trie");
        b->ranges = ranges;
        b->cap = cap;
    }
    b->nodes[b->n] = (vd_sp_trie_node){.first_child = 0, .n_children = 0, .label = label, .value = -1};
    b->ranges[b->n] = (build_range){lo, hi, depth};
    b->n++;
    return VD_OK;
}

/* Nodes are created breadth first: node i's children are appended while
 * node i is visited, so they end up contiguous and sorted by byte. */
static vd_status build(builder *b, const vd_sp_trie_key *keys, size_t n, const char *source)
{
    VD_TRY(push_node(b, 0, 0, (uint32_t)n, 0));
    for (size_t i = 0; i < b->n; i++) {
        build_range r = b->ranges[i];
        uint32_t p = r.lo;
        if (p < r.hi && keys[p].len == r.depth) {
            if (p + 1 < r.hi && keys[p + 1].len == r.depth)
                return vd_error(VD_ERR_FORMAT, "'%s': piece \"%.*s\" is defined twice; the model is corrupt", source,
                                (int)(keys[p].len > 64 ? 64 : keys[p].len), (const char *)keys[p].bytes);
            b->nodes[i].value = keys[p].value;
            p++;
        }
        b->nodes[i].first_child = (uint32_t)b->n;
        unsigned children = 0;
        while (p < r.hi) {
            uint8_t label = keys[p].bytes[r.depth];
            uint32_t q = p + 1;
            while (q < r.hi && keys[q].bytes[r.depth] == label)
                q++;
            VD_TRY(push_node(b, label, p, q, r.depth + 1));
            children++;
            p = q;
        }
        b->nodes[i].n_children = (uint16_t)children;
    }
    return VD_OK;
}

vd_status vd_sp_trie_build(vd_sp_trie *t, vd_sp_trie_key *keys, size_t n, const char *source)
{
    memset(t, 0, sizeof *t);
    if (n >= UINT32_MAX)
        return vd_error(VD_ERR_UNSUPPORTED, "'%s': too many pieces for the SentencePiece trie", source);
    if (n)
        qsort(keys, n, sizeof *keys, compare_keys);
    builder b = {0};
    vd_status s = build(&b, keys, n, source);
    free(b.ranges);
    if (s != VD_OK) {
        free(b.nodes);
        return s;
    }
    t->nodes = b.nodes;
    t->n_nodes = b.n;
    return VD_OK;
}

void vd_sp_trie_free(vd_sp_trie *t)
{
    free(t->nodes);
    memset(t, 0, sizeof *t);
}

int32_t vd_sp_trie_find(const vd_sp_trie *t, const uint8_t *s, size_t n)
{
    if (!t->nodes)
        return -1;
    uint32_t node = 0;
    for (size_t i = 0; i < n; i++) {
        node = vd_sp_trie_step(t, node, s[i]);
        if (node == 0)
            return -1;
    }
    return t->nodes[node].value;
}

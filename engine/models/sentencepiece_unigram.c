#include "models/sentencepiece_unigram.h"

#include <stdbool.h>
#include <stdlib.h>

#include "core/error.h"
#include "models/sentencepiece_utf8.h"

/* SentencePiece's penalty below the lowest NORMAL piece score for an
 * unknown character (unigram_model.cc kUnkPenalty). */
#define VD_SP_UNK_PENALTY 10.0f

/* The best path ending at a byte position: its score, where its last piece
 * starts (SIZE_MAX: not reached yet) and that piece's id. */
typedef struct best_path {
    float score;
    int32_t id;
    size_t start;
} best_path;

static vd_status push_id(int32_t id, int32_t **ids, size_t *n, size_t *cap)
{
    if (*n == *cap) {
        size_t c = *cap ? *cap * 2 : 64;
        if (c > SIZE_MAX / sizeof **ids)
            return vd_error(VD_ERR_OUT_OF_MEMORY, "out of memory encoding text");
        int32_t *p = realloc(*ids, c * sizeof *p);
        if (!p)
            return vd_error(VD_ERR_OUT_OF_MEMORY, "out of memory encoding text");
        *ids = p;
        *cap = c;
    }
    (*ids)[(*n)++] = id;
    return VD_OK;
}

/* The score of a user-defined piece of `length` bytes, as SentencePiece
 * 0.2.2 computes it (unigram_model.cc GetUserDefinedScore): 0.1 * (length
 * - 1) in double, returned as float.  It is >= 0 while NORMAL scores are log
 * probabilities (<= 0), so user-defined pieces always win, and a longer one
 * scores more than shorter ones covering the same bytes.  SentencePiece
 * 0.1.x to 0.2.1 used length * max_score - 0.1 in double, where max_score
 * (the highest NORMAL score, floored at FLT_MIN) is FLT_MIN in practice:
 * about -0.1 per piece, whatever its length. */
static float user_defined_score(size_t length)
{
    return (float)(0.1 * ((double)(int)length - 1.0));
}

/* SentencePiece 0.2.2's Model::EncodeOptimized (unigram_model.cc, the
 * default encoder).  Ties and near-ties decide ids, so its arithmetic and
 * order are mirrored exactly:
 *
 *  - scores are floats, and a candidate's path score is the float sum of
 *    the piece's score and the best path score at the piece's start,
 *    rounded to float before it is compared with the float best score
 *    stored at the piece's end;
 *  - candidates are tried by start position, then by length (the order the
 *    trie yields them); one replaces the stored best only when strictly
 *    greater, so of candidates with equal float sums the first tried --
 *    the one whose last piece starts earliest, i.e. is longest -- is kept;
 *  - a character that no piece of exactly its length covers adds an <unk>
 *    candidate scoring min_score - 10, after the pieces starting there.
 *
 * SentencePiece 0.1.x to 0.2.1 differ in the first point: the conditional
 * that picks a piece's score mixed the float score with the double
 * user-defined score, so every candidate sum was a double, compared
 * unrounded with the stored float.  Two paths whose float sums tie could
 * then differ by a fraction of a float ulp, and the later one could win:
 * "ffd" after "u+" in tests/data/tokenizer/vdiff-tiny-unk.model encodes as
 * f ff d with 0.2.2 and as ff f d with 0.1.97.  The change is upstream
 * commit efc3c654 ("Remove max_score() from unigram_model. Uses fixed score
 * for user defined symbols", May 2026), which made the user-defined score,
 * and with it every candidate sum, a float. */
static void viterbi(const vd_sp_vocab *v, const uint8_t *s, size_t n, best_path *best)
{
    const vd_sp_model *m = v->model;
    const vd_sp_trie *t = &v->pieces;
    const float unk_score = v->min_score - VD_SP_UNK_PENALTY;
    for (size_t i = 0; i <= n; i++)
        best[i] = (best_path){0.0f, -1, SIZE_MAX};

    size_t start = 0;
    while (start < n) {
        const float base = best[start].score;
        size_t mblen = vd_sp_one_char_len(s[start]);
        if (mblen > n - start)
            mblen = n - start;
        bool has_single_node = false;
        uint32_t node = 0;
        for (size_t pos = start; pos < n;) {
            node = vd_sp_trie_step(t, node, s[pos]);
            if (node == 0)
                break;
            pos++;
            int32_t id = t->nodes[node].value;
            if (id < 0 || m->pieces[id].type == VD_SP_UNUSED)
                continue;
            size_t length = pos - start;
            const float score =
                m->pieces[id].type == VD_SP_USER_DEFINED ? user_defined_score(length) : m->pieces[id].score;
            /* Assigning to a float rounds the sum to float even where
             * FLT_EVAL_METHOD keeps excess precision. */
            const float candidate = score + base;
            best_path *target = &best[pos];
            if (target->start == SIZE_MAX || candidate > target->score)
                *target = (best_path){candidate, id, start};
            if (length == mblen)
                has_single_node = true;
        }
        if (!has_single_node) {
            best_path *target = &best[start + mblen];
            const float candidate = unk_score + base;
            if (target->start == SIZE_MAX || candidate > target->score)
                *target = (best_path){candidate, v->unk_id, start};
        }
        start += mblen;
    }
}

vd_status vd_sp_unigram_encode(const vd_sp_vocab *v, const uint8_t *text, size_t n, int32_t **ids, size_t *n_ids,
                               size_t *cap)
{
    if (n == 0)
        return VD_OK;
    if (n >= SIZE_MAX / sizeof(best_path) - 1)
        return vd_error(VD_ERR_OUT_OF_MEMORY, "text of %zu bytes is too long to encode", n);
    best_path *best = malloc((n + 1) * sizeof *best);
    if (!best)
        return vd_error(VD_ERR_OUT_OF_MEMORY, "out of memory encoding %zu bytes of text", n);
    viterbi(v, text, n, best);

    /* Backtrack into (start, id) pairs, last piece first. */
    size_t count = 0;
    for (size_t end = n; end > 0; end = best[end].start) {
        if (best[end].start == SIZE_MAX || best[end].start >= end) {
            free(best);
            return vd_error(VD_ERR_INTERNAL, "tokenizer: no Viterbi path to byte %zu; please report this", end);
        }
        count++;
    }
    size_t *starts = malloc(count * sizeof *starts);
    if (!starts) {
        free(best);
        return vd_error(VD_ERR_OUT_OF_MEMORY, "out of memory encoding text");
    }
    size_t k = count;
    for (size_t end = n; end > 0; end = best[end].start)
        starts[--k] = best[end].start;

    vd_status s = VD_OK;
    bool prev_unk = false;
    for (size_t i = 0; i < count && s == VD_OK; i++) {
        size_t begin = starts[i];
        size_t end = i + 1 < count ? starts[i + 1] : n;
        int32_t id = best[end].id;
        bool is_unk = id == v->unk_id;
        if (is_unk && v->model->byte_fallback) {
            for (size_t b = begin; b < end && s == VD_OK; b++)
                s = push_id(v->byte_ids[text[b]], ids, n_ids, cap);
        } else if (!(is_unk && prev_unk)) {
            /* A run of unknown pieces merges into one <unk>. */
            s = push_id(id, ids, n_ids, cap);
        }
        prev_unk = is_unk;
    }
    free(starts);
    free(best);
    return s;
}

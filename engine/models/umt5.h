/* The umT5 encoder Wan uses to embed prompts (wan-spec.md §3): token
 * embedding, N pre-norm layers of self-attention with a per-layer learned
 * relative-position bias (no 1/√d scaling) and a gated GELU-tanh FFN, then a
 * final RMSNorm.  Written once against the backend interface; any size is
 * inferred from the checkpoint (the 5.7B XXL, tiny test models), in any
 * storage dtype the backend's matmul reads (f32, f16, bf16, fp8 scaled,
 * GGUF blocks).
 *
 * An encoder is not safe to use from several threads at once. */
#ifndef VD_MODELS_UMT5_H
#define VD_MODELS_UMT5_H

#include <stdint.h>

#include "backend/backend.h"
#include "io/weights.h"
#include "models/arch.h"

/* relative_attention_max_distance of every umT5 / T5 release (not stored in
 * the checkpoints). */
#define VD_UMT5_MAX_DISTANCE 128

/* Longest sequence vd_umt5_encode takes (Wan uses 512).  The position bias
 * takes 2·heads·L² floats of device memory while encoding (128 MB for XXL
 * at 512, 8.6 GB at 4096). */
#define VD_UMT5_MAX_POSITIONS 4096

/* T5 LayerNorm epsilon. */
#define VD_UMT5_EPS 1e-6f

typedef struct vd_umt5 vd_umt5;

/* Load an encoder from an opened weight set onto `be` (the architecture
 * must detect as umT5).  The weight set must stay open while the encoder is
 * used: on the CPU the weights are read in place from the mapping. */
vd_status vd_umt5_load(vd_backend *be, const vd_weights *w, vd_umt5 **out);

/* Release the encoder and every device tensor it holds (NULL ok).  The weight
 * set stays open; close it too to give its mapping back. */
void vd_umt5_free(vd_umt5 *enc);

const vd_t5_config *vd_umt5_get_config(const vd_umt5 *enc);

/* Encode n token ids (1 ≤ n) into out [n, d_model] (host f32).
 *
 * pad_to = 0 runs on the n tokens; pad_to ≥ n runs on pad_to positions, the
 * ids followed by the pad id 0, with the padded keys masked, as the Wan
 * reference does with pad_to = 512.  Both give the same rows: the masked keys
 * contribute nothing and the relative positions of the real tokens are
 * unchanged, so padding only costs time.
 *
 * An id outside the embedding table is VD_ERR_INVALID_ARGUMENT naming it. */
vd_status vd_umt5_encode(vd_umt5 *enc, const int32_t *ids, int64_t n, int64_t pad_to, float *out);

/* The bidirectional relative-position bucket of HF T5's
 * _relative_position_bucket for rel = key − query: half of the buckets per
 * direction (rel > 0 in the upper half), the first half of each exact, the
 * rest logarithmic up to max_distance, the last one catching everything
 * farther.  Evaluated exactly (the reference's float32 path agrees with
 * exact arithmetic; tests/data/golden/umt5_buckets checks −300..300). */
int32_t vd_umt5_bucket(int64_t rel, int64_t num_buckets, int64_t max_distance);

#endif

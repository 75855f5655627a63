"""Reference umT5 encoder (docs/wan-spec.md §3), float32 on CPU, HF/ComfyUI names.

  x = shared[ids]
  per layer i:  h = RMSNorm(x);  x += o(Attn(h))       (per-layer relative bias,
                                                        no 1/√d, key padding mask)
                h = RMSNorm(x);  x += wo(GELU_tanh(wi_0·h) ⊙ (wi_1·h))
  out = RMSNorm_final(x)

T5 RMSNorm: x·rsqrt(mean(x²) + 1e-6)·w (no mean subtraction, no bias).
"""
import math

import torch

EPS = 1e-6


class T5Config:
    def __init__(self, w):
        self.vocab, self.d_model = w["shared.weight"].shape
        n = 0
        while ("encoder.block.%d.layer.0.SelfAttention.q.weight" % n) in w:
            n += 1
        self.num_layers = n
        rb = w["encoder.block.0.layer.0.SelfAttention.relative_attention_bias.weight"]
        self.num_buckets, self.num_heads = rb.shape
        self.inner = w["encoder.block.0.layer.0.SelfAttention.q.weight"].shape[0]
        self.d_kv = self.inner // self.num_heads
        self.d_ff = w["encoder.block.0.layer.1.DenseReluDense.wi_0.weight"].shape[0]
        self.max_distance = 128


def rms_norm(x, w):
    return w * (x * torch.rsqrt(x.pow(2).mean(dim=-1, keepdim=True) + EPS))


def gelu_tanh(x):
    return 0.5 * x * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * torch.pow(x, 3.0))))


def relative_position_bucket(rel, num_buckets=32, max_distance=128):
    """Bidirectional T5 bucket of rel = key_pos − query_pos (int64 tensor).

    Mirrors the reference/HF arithmetic exactly (float32 log, truncation):
      half = num_buckets//2 (16); bucket = (rel > 0)·half + b(|rel|),
      max_exact = half//2 (8);  b(n) = n if n < 8 else
      min(half-1, 8 + trunc(log(n/8 as float32) / ln(max_distance/8) · (half − 8)))."""
    half = num_buckets // 2
    buckets = (rel > 0).to(torch.int64) * half
    n = rel.abs()
    max_exact = half // 2
    safe = torch.clamp(n, min=1)  # log(0) is never used (n < max_exact there)
    large = max_exact + (torch.log(safe.float() / max_exact)
                         / math.log(max_distance / max_exact)
                         * (half - max_exact)).to(torch.int64)
    large = torch.clamp(large, max=half - 1)
    return buckets + torch.where(n < max_exact, n, large)


def position_bias(table, L):
    """table [num_buckets, H] -> bias [H, L, L] (query i, key j)."""
    pos = torch.arange(L)
    rel = pos[None, :] - pos[:, None]  # key − query
    return table[relative_position_bucket(rel, table.shape[0])].permute(2, 0, 1)


def encode(w, ids, mask=None):
    """ids int tensor [L]; mask [L] (1 = real token) or None -> hidden [L, d_model].

    Masked keys get torch.finfo(float32).min before the softmax (the attention bias
    is replaced there, as in Wan's T5Attention).  Rows of padded query positions are
    computed as well; callers truncate to the real length."""
    cfg = T5Config(w)
    H, dk = cfg.num_heads, cfg.d_kv
    with torch.no_grad():
        ids = torch.as_tensor(ids).to(torch.int64)
        L = ids.shape[0]
        x = w["shared.weight"][ids]
        for i in range(cfg.num_layers):
            p = "encoder.block.%d.layer." % i
            h = rms_norm(x, w[p + "0.layer_norm.weight"])
            q = (h @ w[p + "0.SelfAttention.q.weight"].t()).view(L, H, dk).transpose(0, 1)
            k = (h @ w[p + "0.SelfAttention.k.weight"].t()).view(L, H, dk).transpose(0, 1)
            v = (h @ w[p + "0.SelfAttention.v.weight"].t()).view(L, H, dk).transpose(0, 1)
            bias = position_bias(w[p + "0.SelfAttention.relative_attention_bias.weight"], L)
            if mask is not None:
                m = torch.as_tensor(mask).view(1, 1, L)
                bias = bias.masked_fill(m == 0, torch.finfo(torch.float32).min)
            logits = torch.matmul(q, k.transpose(1, 2)) + bias  # no 1/sqrt(d)
            a = torch.softmax(logits, dim=-1)
            o = torch.matmul(a, v).transpose(0, 1).reshape(L, H * dk)
            x = x + o @ w[p + "0.SelfAttention.o.weight"].t()
            h = rms_norm(x, w[p + "1.layer_norm.weight"])
            g = gelu_tanh(h @ w[p + "1.DenseReluDense.wi_0.weight"].t())
            u = h @ w[p + "1.DenseReluDense.wi_1.weight"].t()
            x = x + (g * u) @ w[p + "1.DenseReluDense.wo.weight"].t()
        return rms_norm(x, w["encoder.final_layer_norm.weight"])


def hf_encode(w, ids, mask=None):
    """Same computation with transformers' UMT5EncoderModel (None if unavailable)."""
    try:
        import transformers
        from transformers import UMT5Config, UMT5EncoderModel
    except Exception:
        return None, "transformers not importable"
    cfg = T5Config(w)
    hc = UMT5Config(vocab_size=cfg.vocab, d_model=cfg.d_model, d_kv=cfg.d_kv,
                    d_ff=cfg.d_ff, num_layers=cfg.num_layers, num_heads=cfg.num_heads,
                    relative_attention_num_buckets=cfg.num_buckets,
                    relative_attention_max_distance=cfg.max_distance,
                    dropout_rate=0.0, layer_norm_epsilon=EPS,
                    feed_forward_proj="gated-gelu", is_encoder_decoder=False)
    try:
        model = UMT5EncoderModel(hc, attn_implementation="eager")
    except TypeError:
        hc._attn_implementation = "eager"
        model = UMT5EncoderModel(hc)
    model = model.float().eval()
    sd = {k: v.clone() for k, v in w.items()}
    sd["encoder.embed_tokens.weight"] = w["shared.weight"].clone()
    missing, unexpected = model.load_state_dict(sd, strict=False)
    tied = "encoder.embed_tokens.weight"
    missing = [k for k in missing if k != tied]
    unexpected = [k for k in unexpected if k != tied]
    if missing or unexpected:
        return None, "state dict mismatch: missing=%s unexpected=%s" % (missing, unexpected)
    ids = torch.as_tensor(ids).to(torch.int64)[None]
    am = None if mask is None else torch.as_tensor(mask).to(torch.int64)[None]
    with torch.no_grad():
        out = model(input_ids=ids, attention_mask=am).last_hidden_state[0]
    return out.float(), "transformers %s" % transformers.__version__

"""Reference Wan 2.1/2.2 DiT forward (docs/wan-spec.md §1.3), float32 on CPU.

Written from the specification, one sample per call (classifier-free guidance is
two calls).  Weights are a dict of float32 torch tensors keyed by the canonical
Wan/ComfyUI names (§1.2); quantized checkpoints must be dequantized by the
caller (see make_goldens.load_dit_weights) so that reference and engine use the
same weight values.

Everything is float32 except where the specification says the reference uses
float64: the timestep sinusoid and the RoPE rotation.
"""
import math

import torch
import torch.nn.functional as F

TEXT_LEN = 512
EPS = 1e-6
HEAD_DIM = 128
PATCH = (1, 2, 2)


class DitConfig:
    """Configuration inferred from tensor shapes (as ComfyUI's detector does)."""

    def __init__(self, w):
        pe = w["patch_embedding.weight"]
        self.dim = pe.shape[0]
        self.in_dim = pe.shape[1]
        assert tuple(pe.shape[2:]) == PATCH, pe.shape
        self.out_dim = w["head.head.weight"].shape[0] // 4
        self.text_dim = w["text_embedding.0.weight"].shape[1]
        self.freq_dim = w["time_embedding.0.weight"].shape[1]
        self.ffn_dim = w["blocks.0.ffn.0.weight"].shape[0]
        n = 0
        while ("blocks.%d.modulation" % n) in w:
            n += 1
        self.num_layers = n
        assert self.dim % HEAD_DIM == 0
        self.num_heads = self.dim // HEAD_DIM
        self.head_dim = HEAD_DIM

    def __repr__(self):
        return ("DitConfig(dim=%d, ffn=%d, heads=%d, layers=%d, in=%d, out=%d, freq=%d, text=%d)"
                % (self.dim, self.ffn_dim, self.num_heads, self.num_layers, self.in_dim,
                   self.out_dim, self.freq_dim, self.text_dim))


def linear(x, w, prefix):
    """y = x·Wᵀ + b for the Linear stored under `prefix`."""
    return F.linear(x, w[prefix + ".weight"], w[prefix + ".bias"])


def gelu_tanh(x):
    return 0.5 * x * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x * x * x)))


def layer_norm(x, weight=None, bias=None):
    """LayerNorm over the last dim, eps 1e-6 (affine only when weight is given)."""
    return F.layer_norm(x, (x.shape[-1],), weight, bias, EPS)


def rms_norm(x, weight):
    """WanRMSNorm over the whole last dim: x·rsqrt(mean(x²)+eps), then ·weight."""
    return x * torch.rsqrt(x.pow(2).mean(dim=-1, keepdim=True) + EPS) * weight


def sinusoid(t, dim):
    """[cos(t·ω_0..ω_{h-1}), sin(t·ω_0..ω_{h-1})], ω_j = 10000^(-j/h), float64 -> float32."""
    half = dim // 2
    t = torch.tensor([float(t)], dtype=torch.float64)
    omega = torch.pow(torch.tensor(10000.0, dtype=torch.float64),
                      -torch.arange(half, dtype=torch.float64) / half)
    arg = t[:, None] * omega[None, :]
    return torch.cat([torch.cos(arg), torch.sin(arg)], dim=1)[0].float()


def rope_split(d):
    """Channels rotated by (frame, row, column): d-4⌊d/6⌋, 2⌊d/6⌋, 2⌊d/6⌋ (44/42/42 for 128)."""
    s = 2 * (d // 6)
    return d - 2 * s, s, s


def rope_angles(grid, d):
    """Angles [L, d/2] (float64) for every token of the (F', H', W') grid, raster order."""
    nf, nh, nw = grid
    parts = []
    for axis, (n_axis, ch) in enumerate(zip(grid, rope_split(d))):
        omega = 1.0 / torch.pow(torch.tensor(10000.0, dtype=torch.float64),
                                torch.arange(0, ch, 2, dtype=torch.float64) / ch)  # [ch/2]
        pos = torch.arange(n_axis, dtype=torch.float64)
        ang = pos[:, None] * omega[None, :]  # [n_axis, ch/2]
        shape = [1, 1, 1, ch // 2]
        shape[axis] = n_axis
        parts.append(ang.view(*shape).expand(nf, nh, nw, ch // 2))
    return torch.cat(parts, dim=-1).reshape(nf * nh * nw, d // 2)


def rope_apply(x, angles):
    """x [L, H, d] float32; adjacent pairs (x[2k], x[2k+1]) rotated in float64."""
    L, H, d = x.shape
    xd = x.to(torch.float64).reshape(L, H, d // 2, 2)
    x0, x1 = xd[..., 0], xd[..., 1]
    c = torch.cos(angles)[:, None, :]
    s = torch.sin(angles)[:, None, :]
    y0 = x0 * c - x1 * s
    y1 = x0 * s + x1 * c
    return torch.stack([y0, y1], dim=-1).reshape(L, H, d).float()


def attention(q, k, v):
    """q [Lq,H,d], k/v [Lk,H,d] -> [Lq, H·d]; softmax(q·kᵀ/√d)·v, no mask."""
    d = q.shape[-1]
    qh, kh, vh = q.transpose(0, 1), k.transpose(0, 1), v.transpose(0, 1)  # [H, L, d]
    logits = torch.matmul(qh, kh.transpose(1, 2)) / math.sqrt(d)
    p = torch.softmax(logits, dim=-1)
    o = torch.matmul(p, vh)  # [H, Lq, d]
    return o.transpose(0, 1).reshape(q.shape[0], -1)


def patch_embed(x, w, cfg):
    """Conv3d kernel=stride=(1,2,2) -> tokens [L, D] (f-major, then h, then w)."""
    y = F.conv3d(x[None], w["patch_embedding.weight"], w["patch_embedding.bias"], stride=PATCH)
    grid = tuple(y.shape[2:])
    return y[0].flatten(1).transpose(0, 1).contiguous(), grid


def unpatchify(out, grid, c):
    """[L, 4c] with feature index (q·2+r)·c + ch -> [c, F', 2H', 2W']."""
    nf, nh, nw = grid
    u = out.view(nf, nh, nw, 1, 2, 2, c)
    u = u.permute(6, 0, 3, 1, 4, 2, 5)  # c, f, p, h, q, w, r
    return u.reshape(c, nf, 2 * nh, 2 * nw)


def time_embedding(t, w, cfg):
    """-> (e [D], e0 [6, D]) in float32."""
    s = sinusoid(t, cfg.freq_dim)
    e = linear(F.silu(linear(s, w, "time_embedding.0")), w, "time_embedding.2")
    e0 = linear(F.silu(e), w, "time_projection.1").view(6, cfg.dim)
    return e, e0, s


def text_embedding(context, w, cfg):
    """Zero-pad to 512 rows BEFORE the MLP, then Linear, GELU-tanh, Linear -> [512, D]."""
    n = context.shape[0]
    assert n <= TEXT_LEN
    ctx = torch.cat([context, context.new_zeros(TEXT_LEN - n, context.shape[1])], dim=0)
    return linear(gelu_tanh(linear(ctx, w, "text_embedding.0")), w, "text_embedding.2")


def block_forward(x, ctx, e0, angles, w, i, cfg, trace=None):
    p = "blocks.%d." % i
    H, d = cfg.num_heads, cfg.head_dim
    m = w[p + "modulation"].view(6, cfg.dim) + e0
    shift_sa, scale_sa, gate_sa, shift_ff, scale_ff, gate_ff = m.unbind(0)

    # self-attention
    a = layer_norm(x) * (1 + scale_sa) + shift_sa
    q = rms_norm(linear(a, w, p + "self_attn.q"), w[p + "self_attn.norm_q.weight"])
    k = rms_norm(linear(a, w, p + "self_attn.k"), w[p + "self_attn.norm_k.weight"])
    v = linear(a, w, p + "self_attn.v")
    L = x.shape[0]
    q = rope_apply(q.view(L, H, d), angles)
    k = rope_apply(k.view(L, H, d), angles)
    y = linear(attention(q, k, v.view(L, H, d)), w, p + "self_attn.o")
    if trace is not None:
        trace[p + "q_rope"] = q.reshape(L, -1)
        trace[p + "k_rope"] = k.reshape(L, -1)
        trace[p + "self_attn_out"] = y
    x = x + y * gate_sa

    # cross-attention (no RoPE, no mask, all 512 (+ image) rows, no gate)
    c = layer_norm(x, w[p + "norm3.weight"], w[p + "norm3.bias"])
    q = rms_norm(linear(c, w, p + "cross_attn.q"), w[p + "cross_attn.norm_q.weight"])
    k = rms_norm(linear(ctx, w, p + "cross_attn.k"), w[p + "cross_attn.norm_k.weight"])
    v = linear(ctx, w, p + "cross_attn.v")
    Lc = ctx.shape[0]
    y = attention(q.view(L, H, d), k.view(Lc, H, d), v.view(Lc, H, d))
    y = linear(y, w, p + "cross_attn.o")
    if trace is not None:
        trace[p + "cross_attn_out"] = y
    x = x + y

    # feed-forward
    f = layer_norm(x) * (1 + scale_ff) + shift_ff
    y = linear(gelu_tanh(linear(f, w, p + "ffn.0")), w, p + "ffn.2")
    x = x + y * gate_ff
    return x


def forward(w, latent, t, context, trace=None):
    """Predicted velocity [out_dim, T, H, W] for one sample.

    w:       dict name -> float32 torch tensor (canonical names)
    latent:  [in_dim, T, H, W] float32 (i2v: the 36-channel concatenation)
    t:       timestep (python number; the reference feeds an integer)
    context: [n, text_dim] float32 text-encoder rows (n <= 512)
    trace:   optional dict that receives intermediate tensors (for debugging goldens)
    """
    cfg = DitConfig(w)
    assert latent.shape[0] == cfg.in_dim, (latent.shape, cfg)
    assert latent.shape[2] % 2 == 0 and latent.shape[3] % 2 == 0
    with torch.no_grad():
        x, grid = patch_embed(latent, w, cfg)
        e, e0, s = time_embedding(t, w, cfg)
        ctx = text_embedding(context, w, cfg)
        angles = rope_angles(grid, cfg.head_dim)
        if trace is not None:
            trace.update({"sinusoid": s, "e": e, "e0": e0, "context_emb": ctx,
                          "patch_tokens": x})
        for i in range(cfg.num_layers):
            x = block_forward(x, ctx, e0, angles, w, i, cfg, trace)
            if trace is not None:
                trace["blocks.%d.out" % i] = x
        hm = w["head.modulation"].view(2, cfg.dim) + e  # note: e, not e0
        out = linear(layer_norm(x) * (1 + hm[1]) + hm[0], w, "head.head")
        if trace is not None:
            trace["head_out"] = out
        return unpatchify(out, grid, cfg.out_dim)

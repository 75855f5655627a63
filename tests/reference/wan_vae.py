"""Reference Wan 2.1 VAE (docs/wan-spec.md §2.1–2.5), float32 on CPU.

Two decoders are implemented and must agree:
  decode_whole():   every stage runs once over the whole frame sequence using the
                    "net effect" rules of §2.4 (causal convs = 2 zero frames in
                    front; upsample3d passes frame 0 through and applies time_conv
                    causally to frames 1..n-1 only).
  decode_chunked(): the reference procedure: conv2 on all frames, then the decoder
                    once per latent frame with a 2-frame cache per causal conv and
                    the 'Rep' sentinel for the upsample3d time_conv.
Likewise encode_whole() / encode_chunked() (chunks of 1, 4, 4, ... frames).

Weights: dict name -> float32 torch tensor with the Wan/ComfyUI names.  The base
width, z_dim and the stage structure are inferred from the tensor names/shapes.
"""
import math

import torch
import torch.nn.functional as F

MEAN = [-0.7571, -0.7089, -0.9113, 0.1075, -0.1745, 0.9653, -0.1517, 1.5508,
        0.4134, -0.0715, 0.5517, -0.3632, -0.1922, -0.9497, 0.2503, -0.2921]
STD = [2.8184, 1.4541, 2.3275, 2.6558, 1.2196, 1.7708, 2.6052, 2.0743,
       3.2687, 2.1526, 2.8652, 1.5579, 1.6382, 1.1253, 2.8251, 1.9160]


def _mean_std():
    mean = torch.tensor(MEAN, dtype=torch.float32)
    std = torch.tensor(STD, dtype=torch.float32)
    return mean, std


def denormalize(z):
    """z [16,T,h,w] normalised -> μ.  The reference stores scale = [mean, 1/std]
    (float32) and computes z / (1/std) + mean; we mirror that exactly (it can
    differ from z·std + mean in the last bit)."""
    mean, std = _mean_std()
    inv_std = 1.0 / std
    return z / inv_std.view(-1, 1, 1, 1) + mean.view(-1, 1, 1, 1)


def normalize(mu):
    """μ -> (μ - mean)·(1/std), as the reference encoder does."""
    mean, std = _mean_std()
    inv_std = 1.0 / std
    return (mu - mean.view(-1, 1, 1, 1)) * inv_std.view(-1, 1, 1, 1)


# ----------------------------------------------------------------------------
# building blocks (tensors are [C, T, H, W]; a batch dim is added for F.conv*)
# ----------------------------------------------------------------------------
def rms_norm(x, gamma):
    """F.normalize over channels (eps 1e-12) · √C · gamma."""
    C = x.shape[0]
    return F.normalize(x, dim=0) * (C ** 0.5) * gamma.reshape(C, *([1] * (x.dim() - 1)))


def causal_conv3d(x, w, b, front=None):
    """CausalConv3d on [C,T,H,W].  Spatial zero pad k//2; temporal: 2 frames in
    front for k_t=3 (zero frames, or the given `front` cache frames followed by
    enough zero frames to make 2), none behind.  k_t=1 convs are pointwise in time."""
    kt, kh, kw = w.shape[2:]
    ph, pw = kh // 2, kw // 2
    if kt == 3:
        pad_t = 2
        if front is not None:
            x = torch.cat([front, x], dim=1)
            pad_t -= front.shape[1]
    else:
        assert kt == 1
        pad_t = 0
    x = F.pad(x[None], (pw, pw, ph, ph, pad_t, 0))
    return F.conv3d(x, w, b)[0]


def conv2d_frames(x, w, b, stride=1, padding=0):
    """Conv2d applied to every frame of [C,T,H,W]."""
    y = F.conv2d(x.transpose(0, 1), w, b, stride=stride, padding=padding)
    return y.transpose(0, 1)


def upsample_nearest2x(x):
    """Nearest(-exact) 2× on H and W of [C,T,H,W] (identical for an integer factor 2)."""
    return x.repeat_interleave(2, dim=2).repeat_interleave(2, dim=3)


class Cache:
    """Per-conv caches of the chunked procedure, indexed in call order."""

    def __init__(self):
        self.slots = []
        self.idx = 0

    def start_chunk(self):
        self.idx = 0

    def get(self):
        if self.idx == len(self.slots):
            self.slots.append(None)
        return self.slots[self.idx]

    def put(self, v):
        self.slots[self.idx] = v
        self.idx += 1


def cached_conv(x, w, b, cache):
    """Causal k_t=3 conv with a feature cache (cache=None -> whole-sequence semantics).
    The new cache entry is the last 2 frames of this conv's input; if the chunk has
    a single frame, the last frame of the previous entry is prepended."""
    if cache is None:
        return causal_conv3d(x, w, b)
    prev = cache.get()
    new = x[:, -2:]
    if new.shape[1] < 2 and prev is not None:
        new = torch.cat([prev[:, -1:], new], dim=1)
    y = causal_conv3d(x, w, b, front=prev)
    cache.put(new.clone())
    return y


def residual_block(x, w, p, cache=None):
    h = x
    if (p + "shortcut.weight") in w:
        h = causal_conv3d(x, w[p + "shortcut.weight"], w[p + "shortcut.bias"])
    y = F.silu(rms_norm(x, w[p + "residual.0.gamma"]))
    y = cached_conv(y, w[p + "residual.2.weight"], w[p + "residual.2.bias"], cache)
    y = F.silu(rms_norm(y, w[p + "residual.3.gamma"]))
    y = cached_conv(y, w[p + "residual.6.weight"], w[p + "residual.6.bias"], cache)
    return y + h


def attention_block(x, w, p):
    """Per frame, single head over the h·w tokens, scale 1/√C."""
    C, T, H, W = x.shape
    y = x.transpose(0, 1)  # [T, C, H, W]
    y = F.normalize(y, dim=1) * (C ** 0.5) * w[p + "norm.gamma"].reshape(1, C, 1, 1)
    qkv = F.conv2d(y, w[p + "to_qkv.weight"], w[p + "to_qkv.bias"])  # [T, 3C, H, W]
    qkv = qkv.reshape(T, 3 * C, H * W).transpose(1, 2)  # [T, HW, 3C]
    q, k, v = qkv[..., :C], qkv[..., C:2 * C], qkv[..., 2 * C:]
    a = torch.softmax(torch.matmul(q, k.transpose(1, 2)) / math.sqrt(C), dim=-1)
    o = torch.matmul(a, v)  # [T, HW, C]
    o = o.transpose(1, 2).reshape(T, C, H, W)
    o = F.conv2d(o, w[p + "proj.weight"], w[p + "proj.bias"])
    return o.transpose(0, 1) + x


def upsample3d_time(x, w, p, cache=None):
    """time_conv of an upsample3d Resample: n frames -> 1 + 2(n-1) frames (whole) or,
    chunked, following the reference's 'Rep' sentinel logic."""
    tw, tb = w[p + "time_conv.weight"], w[p + "time_conv.bias"]
    C = x.shape[0]

    def double(y):  # [2C, n, H, W] -> [C, 2n, H, W]: channels [0:C] first, [C:2C] second
        n = y.shape[1]
        return torch.stack([y[:C], y[C:]], dim=2).reshape(C, 2 * n, *y.shape[2:])

    if cache is None:
        first = x[:, :1]
        if x.shape[1] == 1:
            return first
        rest = double(causal_conv3d(x[:, 1:], tw, tb))  # causal over frames 1..n-1 only
        return torch.cat([first, rest], dim=1)

    prev = cache.get()
    if prev is None:            # first chunk: pass through, mark 'Rep'
        cache.put("Rep")
        return x
    new = x[:, -2:]
    if new.shape[1] < 2 and not isinstance(prev, str):
        new = torch.cat([prev[:, -1:], new], dim=1)
    if new.shape[1] < 2 and isinstance(prev, str):
        new = torch.cat([torch.zeros_like(new), new], dim=1)
    if isinstance(prev, str):   # 'Rep': plain causal conv, 2 zero frames in front
        y = causal_conv3d(x, tw, tb)
    else:
        y = causal_conv3d(x, tw, tb, front=prev)
    cache.put(new.clone())
    return double(y)


def resample(x, w, p, mode, cache=None):
    if mode == "upsample3d":
        x = upsample3d_time(x, w, p, cache)
    if mode in ("upsample2d", "upsample3d"):
        return conv2d_frames(upsample_nearest2x(x), w[p + "resample.1.weight"],
                             w[p + "resample.1.bias"], padding=1)
    assert mode in ("downsample2d", "downsample3d")
    y = F.pad(x, (0, 1, 0, 1))  # right 1, bottom 1
    y = conv2d_frames(y, w[p + "resample.1.weight"], w[p + "resample.1.bias"], stride=2)
    if mode == "downsample2d":
        return y
    tw, tb = w[p + "time_conv.weight"], w[p + "time_conv.bias"]
    if cache is None:
        # output 0 = input 0; output j>=1 = time_conv over inputs (2j-2, 2j-1, 2j)
        if y.shape[1] == 1:
            return y
        z = F.conv3d(y[None], tw, tb, stride=(2, 1, 1))[0]
        return torch.cat([y[:, :1], z], dim=1)
    prev = cache.get()
    if prev is None:
        cache.put(y.clone())
        return y
    new = y[:, -1:].clone()
    z = F.conv3d(torch.cat([prev[:, -1:], y], dim=1)[None], tw, tb, stride=(2, 1, 1))[0]
    cache.put(new)
    return z


# ----------------------------------------------------------------------------
# structure inferred from the tensor names
# ----------------------------------------------------------------------------
def _stage_list(w, prefix):
    """Sequence of ('res'|'attn'|mode, p) for `prefix` = 'decoder.upsamples.' etc."""
    out = []
    i = 0
    while True:
        p = "%s%d." % (prefix, i)
        if (p + "residual.0.gamma") in w:
            out.append(("res", p))
        elif (p + "norm.gamma") in w:
            out.append(("attn", p))
        elif (p + "resample.1.weight") in w:
            rw = w[p + "resample.1.weight"]
            has_t = (p + "time_conv.weight") in w
            if rw.shape[0] < rw.shape[1]:  # C -> C/2: upsample
                out.append(("upsample3d" if has_t else "upsample2d", p))
            else:
                out.append(("downsample3d" if has_t else "downsample2d", p))
        else:
            break
        i += 1
    return out


def vae_config(w):
    return {
        "z_dim": w["conv2.weight"].shape[0],
        "base_dim": w["decoder.head.0.gamma"].shape[0],
        "decoder": [m for m, _ in _stage_list(w, "decoder.upsamples.")],
        "encoder": [m for m, _ in _stage_list(w, "encoder.downsamples.")],
    }


def _run_stages(x, w, prefix, cache):
    for mode, p in _stage_list(w, prefix):
        if mode == "res":
            x = residual_block(x, w, p, cache)
        elif mode == "attn":
            x = attention_block(x, w, p)
        else:
            x = resample(x, w, p, mode, cache)
    return x


def _middle(x, w, prefix, cache):
    x = residual_block(x, w, prefix + "middle.0.", cache)
    x = attention_block(x, w, prefix + "middle.1.")
    return residual_block(x, w, prefix + "middle.2.", cache)


def _head(x, w, prefix, cache):
    x = F.silu(rms_norm(x, w[prefix + "head.0.gamma"]))
    return cached_conv(x, w[prefix + "head.2.weight"], w[prefix + "head.2.bias"], cache)


def decoder(x, w, cache=None):
    x = cached_conv(x, w["decoder.conv1.weight"], w["decoder.conv1.bias"], cache)
    x = _middle(x, w, "decoder.", cache)
    x = _run_stages(x, w, "decoder.upsamples.", cache)
    return _head(x, w, "decoder.", cache)


def encoder(x, w, cache=None):
    x = cached_conv(x, w["encoder.conv1.weight"], w["encoder.conv1.bias"], cache)
    x = _run_stages(x, w, "encoder.downsamples.", cache)
    x = _middle(x, w, "encoder.", cache)
    return _head(x, w, "encoder.", cache)


# ----------------------------------------------------------------------------
# public entry points
# ----------------------------------------------------------------------------
def decode_whole(w, z):
    """z: normalised latent [16, T, h, w] -> video [3, 4(T-1)+1, 8h, 8w] in [-1, 1]."""
    with torch.no_grad():
        x = causal_conv3d(denormalize(z), w["conv2.weight"], w["conv2.bias"])
        return decoder(x, w, None).clamp(-1, 1)


def decode_chunked(w, z):
    """The reference procedure: conv2 on all frames, then one latent frame at a time."""
    with torch.no_grad():
        x = causal_conv3d(denormalize(z), w["conv2.weight"], w["conv2.bias"])
        cache = Cache()
        outs = []
        for i in range(x.shape[1]):
            cache.start_chunk()
            outs.append(decoder(x[:, i:i + 1], w, cache))
        return torch.cat(outs, dim=1).clamp(-1, 1)


def _encode_tail(w, h):
    mu = causal_conv3d(h, w["conv1.weight"], w["conv1.bias"])[: w["conv2.weight"].shape[0]]
    return normalize(mu)


def encode_whole(w, video):
    """video [3, F=4k+1, H, W] in [-1,1] -> normalised latent μ [16, k+1, H/8, W/8]."""
    with torch.no_grad():
        return _encode_tail(w, encoder(video, w, None))


def encode_chunked(w, video):
    """Reference procedure: chunks of 1, 4, 4, ... frames with per-conv caches."""
    with torch.no_grad():
        T = video.shape[1]
        assert (T - 1) % 4 == 0
        cache = Cache()
        outs = []
        for i in range(1 + (T - 1) // 4):
            cache.start_chunk()
            chunk = video[:, :1] if i == 0 else video[:, 1 + 4 * (i - 1):1 + 4 * i]
            outs.append(encoder(chunk, w, cache))
        return _encode_tail(w, torch.cat(outs, dim=1))

#!/usr/bin/env python3
"""PyTorch side of bench_dit_step: one CFG step (a batch of two forwards) of a
Wan DiT with random bf16 weights of the real shapes, written from
docs/wan-spec.md the way the official code runs it (bf16 GEMMs and attention
through scaled_dot_product_attention, fp32 norms, modulation and residual
stream), timed with CUDA events.  Run on the GPU machine:

    python3 tests/benchmarks/torch_wan_step.py 1.3b [frames height width]
    python3 tests/benchmarks/torch_wan_step.py 14b
"""
import sys
import math
import torch
import torch.nn.functional as F

CONFIGS = {"1.3b": (1536, 8960, 30), "14b": (5120, 13824, 40), "5b": (3072, 14336, 30)}


def rope_tables(f, h, w, d, dev):
    """cos/sin [L, d/2] for Wan's 3-D RoPE (split d-4*(d//6), 2*(d//6), 2*(d//6))."""
    dt = d - 4 * (d // 6)
    ds = 2 * (d // 6)

    def freqs(n, dim):
        j = torch.arange(dim // 2, dtype=torch.float64)
        om = 10000.0 ** (-2 * j / dim)
        return torch.outer(torch.arange(n, dtype=torch.float64), om)

    ft, fh, fw = freqs(f, dt), freqs(h, ds), freqs(w, ds)
    ang = torch.cat([ft[:, None, None, :].expand(f, h, w, -1), fh[None, :, None, :].expand(f, h, w, -1),
                     fw[None, None, :, :].expand(f, h, w, -1)], dim=-1).reshape(f * h * w, d // 2)
    return ang.cos().float().to(dev), ang.sin().float().to(dev)


def rope(x, cos, sin):
    # x [B, L, H, d] (adjacent pairs rotate)
    xf = x.float().unflatten(-1, (-1, 2))
    x0, x1 = xf[..., 0], xf[..., 1]
    c, s = cos[None, :, None, :], sin[None, :, None, :]
    return torch.stack([x0 * c - x1 * s, x0 * s + x1 * c], dim=-1).flatten(-2).to(torch.bfloat16)


def rms(x, w, eps=1e-6):
    xf = x.float()
    return (xf * torch.rsqrt(xf.pow(2).mean(-1, keepdim=True) + eps)).to(x.dtype) * w


def main():
    size = sys.argv[1] if len(sys.argv) > 1 else "1.3b"
    frames, height, width = (int(a) for a in sys.argv[2:5]) if len(sys.argv) > 4 else (81, 480, 832)
    D, FF, N = CONFIGS[size]
    H, d = D // 128, 128
    dev, bf = "cuda", torch.bfloat16
    T, Hp, Wp = (frames - 1) // 4 + 1, height // 16, width // 16
    L, Lc, B = T * Hp * Wp, 512, 2
    g = torch.Generator(device=dev).manual_seed(0)

    def lin(o, i):
        return (torch.randn(o, i, device=dev, dtype=bf, generator=g) / math.sqrt(i),
                torch.zeros(o, device=dev, dtype=bf))

    blocks = []
    for _ in range(N):
        blk = {k: lin(D, D) for k in ("q", "k", "v", "o", "cq", "ck", "cv", "co")}
        blk["f1"], blk["f2"] = lin(FF, D), lin(D, FF)
        blk["mod"] = torch.randn(6, D, device=dev) * 0.02
        for k in ("nq", "nk", "cnq", "cnk", "n3w"):
            blk[k] = torch.ones(D, device=dev, dtype=bf)
        blk["n3b"] = torch.zeros(D, device=dev, dtype=bf)
        blocks.append(blk)
    x0 = torch.randn(B, L, D, device=dev)
    ctx = torch.randn(B, Lc, D, device=dev, dtype=bf)
    e0 = torch.randn(6, D, device=dev) * 0.1
    cos, sin = rope_tables(T, Hp, Wp, d, dev)

    def forward(x):
        for b in blocks:
            m = (b["mod"] + e0).unbind(0)
            a = (F.layer_norm(x, (D,), eps=1e-6) * (1 + m[1]) + m[0]).to(bf)
            q = rms(F.linear(a, *b["q"]), b["nq"]).view(B, L, H, d)
            k = rms(F.linear(a, *b["k"]), b["nk"]).view(B, L, H, d)
            v = F.linear(a, *b["v"]).view(B, L, H, d)
            q, k = rope(q, cos, sin), rope(k, cos, sin)
            y = F.scaled_dot_product_attention(q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2))
            y = F.linear(y.transpose(1, 2).reshape(B, L, D), *b["o"])
            x = x + y.float() * m[2]
            c = F.layer_norm(x, (D,), b["n3w"].float(), b["n3b"].float(), eps=1e-6).to(bf)
            q = rms(F.linear(c, *b["cq"]), b["cnq"]).view(B, L, H, d).transpose(1, 2)
            k = rms(F.linear(ctx, *b["ck"]), b["cnk"]).view(B, Lc, H, d).transpose(1, 2)
            v = F.linear(ctx, *b["cv"]).view(B, Lc, H, d).transpose(1, 2)
            y = F.scaled_dot_product_attention(q, k, v).transpose(1, 2).reshape(B, L, D)
            x = x + F.linear(y, *b["co"]).float()
            f = (F.layer_norm(x, (D,), eps=1e-6) * (1 + m[4]) + m[3]).to(bf)
            y = F.linear(F.gelu(F.linear(f, *b["f1"]), approximate="tanh"), *b["f2"])
            x = x + y.float() * m[5]
        return x

    with torch.no_grad():
        forward(x0)
        torch.cuda.synchronize()
        ev = [torch.cuda.Event(enable_timing=True) for _ in range(2)]
        reps = 3
        ev[0].record()
        for _ in range(reps):
            forward(x0)
        ev[1].record()
        torch.cuda.synchronize()
    sec = ev[0].elapsed_time(ev[1]) / reps / 1e3
    lin_f = N * L * (12 * D * D + 4 * D * FF)
    att_f = N * 4 * L * L * D
    cross_f = N * (4 * L * Lc * D + 4 * Lc * D * D)
    fl = 2 * (lin_f + att_f + cross_f)
    print(f"torch {torch.__version__} {size} blocks only, {width}x{height}x{frames} ({L} tokens), CFG batch 2: "
          f"{sec:.3f} s per step, {fl / 1e12:.1f} TFLOP, {fl / sec / 1e12:.0f} TFLOP/s; "
          f"floor at 790 TFLOP/s {fl / 790e12:.3f} s; peak memory {torch.cuda.max_memory_allocated() / 2**30:.1f} GiB")


if __name__ == "__main__":
    main()

"""Cross-checks of the reference modules against second, differently written
implementations (run by make_goldens.py before it writes anything; also runnable
alone: /usr/bin/python3 tests/reference/selfcheck.py).

* DiT: wan_dit.forward (written from the spec) vs a forward written in the style of
  the upstream code (complex RoPE via torch.polar/view_as_complex, upstream
  rope_params/rope_apply split, einsum unpatchify, F.gelu(approximate='tanh')).
* UniPC: sampler.UniPC (float32, reference arithmetic) vs the closed-form
  description of §4 evaluated in float64.
* Euler == first-order UniPC predictor (§4: "The first-order predictor is exactly
  the flow Euler step"), checked in float64.
* VAE: chunked vs whole decode/encode is checked in make_goldens itself.
"""
import math
import os
import sys

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import sampler as smp  # noqa: E402
import wan_dit  # noqa: E402


# ----------------------------------------------------------------------------
# DiT, upstream style
# ----------------------------------------------------------------------------
def _rope_params(max_seq_len, dim, theta=10000):
    freqs = torch.outer(torch.arange(max_seq_len),
                        1.0 / torch.pow(theta, torch.arange(0, dim, 2).to(torch.float64).div(dim)))
    return torch.polar(torch.ones_like(freqs), freqs)


def _rope_apply(x, grid, freqs):
    # x [1, L, n, d]
    n, c = x.size(2), x.size(3) // 2
    freqs = freqs.split([c - 2 * (c // 3), c // 3, c // 3], dim=1)
    f, h, w = grid
    seq_len = f * h * w
    x_i = torch.view_as_complex(x[0, :seq_len].to(torch.float64).reshape(seq_len, n, -1, 2))
    freqs_i = torch.cat([
        freqs[0][:f].view(f, 1, 1, -1).expand(f, h, w, -1),
        freqs[1][:h].view(1, h, 1, -1).expand(f, h, w, -1),
        freqs[2][:w].view(1, 1, w, -1).expand(f, h, w, -1)], dim=-1).reshape(seq_len, 1, -1)
    return torch.view_as_real(x_i * freqs_i).flatten(2)[None].float()


def upstream_style_forward(w, x, t, context, text_len=512):
    D = w["patch_embedding.weight"].shape[0]
    n_heads = D // 128
    d = 128
    out_dim = w["head.head.weight"].shape[0] // 4
    L_ = lambda inp, name: F.linear(inp, w[name + ".weight"], w[name + ".bias"])  # noqa: E731
    with torch.no_grad():
        u = F.conv3d(x[None], w["patch_embedding.weight"], w["patch_embedding.bias"], stride=(1, 2, 2))
        grid = tuple(u.shape[2:])
        u = u.flatten(2).transpose(1, 2)  # [1, L, D]
        seq = u.shape[1]
        position = torch.tensor([t]).type(torch.float64)
        half = w["time_embedding.0.weight"].shape[1] // 2
        sinus = torch.outer(position, torch.pow(10000, -torch.arange(half).to(position).div(half)))
        sinus = torch.cat([torch.cos(sinus), torch.sin(sinus)], dim=1)
        e = L_(F.silu(L_(sinus.float(), "time_embedding.0")), "time_embedding.2")  # [1, D]
        e0 = L_(F.silu(e), "time_projection.1").unflatten(1, (6, D))  # [1, 6, D]
        ctx = torch.cat([context, context.new_zeros(text_len - context.size(0), context.size(1))])[None]
        ctx = L_(F.gelu(L_(ctx, "text_embedding.0"), approximate="tanh"), "text_embedding.2")
        freqs = torch.cat([_rope_params(1024, d - 4 * (d // 6)), _rope_params(1024, 2 * (d // 6)),
                           _rope_params(1024, 2 * (d // 6))], dim=1)

        def rms(v, name):
            return v * torch.rsqrt(v.pow(2).mean(dim=-1, keepdim=True) + 1e-6) * w[name]

        def attn(q, k, v):  # [1, L, n, d]
            q, k, v = q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2)
            a = torch.softmax(q @ k.transpose(-1, -2) * (1.0 / math.sqrt(d)), dim=-1)
            return (a @ v).transpose(1, 2).flatten(2)

        xx = u
        i = 0
        while ("blocks.%d.modulation" % i) in w:
            p = "blocks.%d." % i
            ee = (w[p + "modulation"] + e0).chunk(6, dim=1)
            y = F.layer_norm(xx, (D,), eps=1e-6) * (1 + ee[1]) + ee[0]
            q = rms(L_(y, p + "self_attn.q"), p + "self_attn.norm_q.weight").view(1, seq, n_heads, d)
            k = rms(L_(y, p + "self_attn.k"), p + "self_attn.norm_k.weight").view(1, seq, n_heads, d)
            v = L_(y, p + "self_attn.v").view(1, seq, n_heads, d)
            y = L_(attn(_rope_apply(q, grid, freqs), _rope_apply(k, grid, freqs), v), p + "self_attn.o")
            xx = xx + y * ee[2]
            c = F.layer_norm(xx, (D,), w[p + "norm3.weight"], w[p + "norm3.bias"], eps=1e-6)
            q = rms(L_(c, p + "cross_attn.q"), p + "cross_attn.norm_q.weight").view(1, -1, n_heads, d)
            k = rms(L_(ctx, p + "cross_attn.k"), p + "cross_attn.norm_k.weight").view(1, -1, n_heads, d)
            v = L_(ctx, p + "cross_attn.v").view(1, -1, n_heads, d)
            xx = xx + L_(attn(q, k, v), p + "cross_attn.o")
            y = F.layer_norm(xx, (D,), eps=1e-6) * (1 + ee[4]) + ee[3]
            y = L_(F.gelu(L_(y, p + "ffn.0"), approximate="tanh"), p + "ffn.2")
            xx = xx + y * ee[5]
            i += 1
        he = (w["head.modulation"] + e[:, None, :]).chunk(2, dim=1)
        o = L_(F.layer_norm(xx, (D,), eps=1e-6) * (1 + he[1]) + he[0], "head.head")[0]
        fg, hg, wg = grid
        o = o[:fg * hg * wg].view(fg, hg, wg, 1, 2, 2, out_dim)
        o = torch.einsum("fhwpqrc->cfphqwr", o)
        return o.reshape(out_dim, fg, 2 * hg, 2 * wg)


def check_dit(w, cases):
    worst = 0.0
    for lat, t, ctx in cases:
        a = wan_dit.forward(w, lat, t, ctx)
        b = upstream_style_forward(w, lat, t, ctx)
        d = (a - b).abs().max().item() / max(1.0, b.abs().max().item())
        worst = max(worst, d)
    assert worst < 2e-5, "DiT spec-vs-upstream-style mismatch %g" % worst
    return worst


# ----------------------------------------------------------------------------
# UniPC closed form (spec §4), float64
# ----------------------------------------------------------------------------
def unipc_spec_f64(x, vs, sigmas):
    sig = [float(s) for s in sigmas]
    S = len(vs)
    lam = [math.log(1 - s) - math.log(s) if s > 0 else math.inf for s in sig]
    alpha = [1 - s for s in sig]
    x = x.double()
    ms = []
    xs = [x]
    x_prev = None
    p_prev = None
    for i in range(S):
        v = vs[i].double()
        m = x - sig[i] * v
        if i >= 1:
            h = lam[i] - lam[i - 1]
            phi = math.expm1(-h)
            B = phi
            base = (sig[i] / sig[i - 1]) * x_prev - alpha[i] * phi * ms[-1]
            if p_prev == 1:
                x = base - alpha[i] * B * 0.5 * (m - ms[-1])
            else:
                r = (lam[i - 2] - lam[i - 1]) / h
                D = (ms[-2] - ms[-1]) / r
                g1 = phi / (-h) - 1
                g2 = g1 / (-h) - 0.5
                b = np.array([g1 / B, 2 * g2 / B])
                rho = np.linalg.solve(np.array([[1.0, 1.0], [r, 1.0]]), b)
                x = base - alpha[i] * B * (rho[0] * D + rho[1] * (m - ms[-1]))
        ms.append(m)
        q = min(2, S - i, i + 1)
        if sig[i + 1] == 0:
            xn = m  # lambda = inf, phi = -1
            if q == 2:
                pass  # the final step has q = 1 by lower_order_final
        else:
            h = lam[i + 1] - lam[i]
            phi = math.expm1(-h)
            xn = (sig[i + 1] / sig[i]) * x - alpha[i + 1] * phi * m
            if q == 2:
                r = (lam[i - 1] - lam[i]) / h
                D = (ms[-2] - m) / r
                xn = xn - alpha[i + 1] * phi * 0.5 * D
        x_prev = x
        p_prev = q
        x = xn
        xs.append(x)
    return torch.stack(xs)


def check_unipc():
    worst = 0.0
    for steps, shift in [(8, 5.0), (20, 8.0), (2, 3.0), (1, 5.0), (50, 5.0)]:
        rng = np.random.RandomState(99 + steps)
        x0 = torch.from_numpy(rng.standard_normal((2, 3, 4)).astype(np.float32))
        vs = torch.from_numpy(rng.standard_normal((steps, 2, 3, 4)).astype(np.float32))
        s = smp.UniPC(steps, shift)
        x = x0
        xs = [x]
        for i in range(steps):
            x = s.step(vs[i], x)
            xs.append(x)
        ref = unipc_spec_f64(x0, vs, s.sigmas)
        d = (torch.stack(xs).double() - ref).abs().max().item()
        worst = max(worst, d)
    assert worst < 1e-3, "UniPC reference-arithmetic vs spec closed form: %g" % worst
    return worst


def check_euler_is_first_order_unipc():
    ts, sig32, _ = smp.schedule(8, 5.0)
    sig = [float(v) for v in sig32]
    rng = np.random.RandomState(5)
    x = rng.standard_normal(10)
    v = rng.standard_normal(10)
    worst = 0.0
    for i in range(7):
        s0, s1 = sig[i], sig[i + 1]
        m = x - s0 * v
        h = (math.log(1 - s1) - math.log(s1)) - (math.log(1 - s0) - math.log(s0))
        unipc1 = (s1 / s0) * x - (1 - s1) * math.expm1(-h) * m
        euler = x + (s1 - s0) * v
        worst = max(worst, float(np.abs(unipc1 - euler).max()))
    assert worst < 1e-12, worst
    return worst


def run_all(dit_w=None, dit_cases=None):
    res = {}
    if dit_w is not None:
        res["dit_spec_vs_upstream_style_rel"] = check_dit(dit_w, dit_cases)
    res["unipc_f32_vs_spec_f64_maxabs"] = check_unipc()
    res["euler_vs_unipc_order1_f64"] = check_euler_is_first_order_unipc()
    return res


if __name__ == "__main__":
    import make_goldens as mg
    w = mg.to_torch(mg.make_dit_weights(seed=1001))
    rng = np.random.RandomState(1)
    cases = [(torch.from_numpy(rng.standard_normal((16, 3, 6, 10)).astype(np.float32)), 999,
              torch.from_numpy(rng.standard_normal((7, 32)).astype(np.float32))),
             (torch.from_numpy(rng.standard_normal((16, 2, 4, 8)).astype(np.float32)), 3,
              torch.from_numpy(rng.standard_normal((512, 32)).astype(np.float32)))]
    print(run_all(w, cases))

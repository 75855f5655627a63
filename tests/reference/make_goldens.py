#!/usr/bin/env python3
"""Build tiny random models and golden input/output files for the engine's tests.

    /usr/bin/python3 tests/reference/make_goldens.py [--out tests/data/golden]

Everything is deterministic: weights and inputs come from numpy RandomState with
fixed seeds (identical bytes on every machine); outputs are computed on CPU in
float32 (float64 where the spec says so) by the reference modules next to this
file.  Outputs can differ in the last bits between torch versions; the metadata
of every output file records the torch version that produced it.
"""
import argparse
import math
import os
import sys
import time

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import sampler as smp  # noqa: E402
import selfcheck  # noqa: E402
import st  # noqa: E402
import umt5  # noqa: E402
import wan_dit  # noqa: E402
import wan_vae  # noqa: E402

GEN = "tests/reference/make_goldens.py"


def meta(**kw):
    m = {"generator": GEN, "torch_version": torch.__version__,
         "numpy_version": np.__version__}
    m.update({k: str(v) for k, v in kw.items()})
    return m


def f32(a):
    return np.ascontiguousarray(np.asarray(a, dtype=np.float32))


def tnp(t):
    """torch tensor -> numpy (keeps int dtypes, float -> float32 unless float64)."""
    a = t.detach().cpu().numpy()
    if a.dtype == np.float16:
        a = a.astype(np.float32)
    return np.ascontiguousarray(a)


def to_torch(wnp):
    return {k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in wnp.items()}


# =============================================================================
# tiny DiT
# =============================================================================
def make_dit_weights(seed, dim=256, ffn=256, layers=2, in_dim=16, out_dim=16,
                     freq_dim=256, text_dim=32):
    """Canonical names and shapes (§1.2), random but well-scaled float32."""
    rng = np.random.RandomState(seed)
    w = {}

    def normal(shape, std):
        return f32(rng.standard_normal(shape) * std)

    def lin(name, out, inp, gain=1.0, bstd=0.02):
        w[name + ".weight"] = normal((out, inp), gain / math.sqrt(inp))
        w[name + ".bias"] = normal((out,), bstd)

    def norm_w(name, n, mean=1.0):
        w[name] = f32(mean * (1.0 + rng.standard_normal(n) * 0.1))

    w["patch_embedding.weight"] = normal((dim, in_dim, 1, 2, 2), 1.0 / math.sqrt(in_dim * 4))
    w["patch_embedding.bias"] = normal((dim,), 0.02)
    lin("text_embedding.0", dim, text_dim)
    lin("text_embedding.2", dim, dim)
    lin("time_embedding.0", dim, freq_dim)
    lin("time_embedding.2", dim, dim)
    lin("time_projection.1", 6 * dim, dim, gain=0.5)
    for i in range(layers):
        p = "blocks.%d." % i
        w[p + "modulation"] = normal((1, 6, dim), 0.1)
        for m in ("q", "k", "v", "o"):
            lin(p + "self_attn." + m, dim, dim)
        norm_w(p + "self_attn.norm_q.weight", dim)
        norm_w(p + "self_attn.norm_k.weight", dim)
        norm_w(p + "norm3.weight", dim)
        w[p + "norm3.bias"] = normal((dim,), 0.05)
        for m in ("q", "k", "v", "o"):
            lin(p + "cross_attn." + m, dim, dim)
        # larger q/k norm weights sharpen the cross-attention so that the few real
        # context rows are not drowned by the 512-n identical padded rows
        norm_w(p + "cross_attn.norm_q.weight", dim, mean=2.0)
        norm_w(p + "cross_attn.norm_k.weight", dim, mean=2.0)
        lin(p + "ffn.0", ffn, dim)
        lin(p + "ffn.2", dim, ffn)
    lin("head.head", 4 * out_dim, dim)
    w["head.modulation"] = normal((1, 2, dim), 0.1)
    return w


def is_fp8_quantized(name):
    """Block Linear weights, as in ComfyUI's legacy *_fp8_scaled Wan files (§6)."""
    if not name.startswith("blocks.") or not name.endswith(".weight"):
        return False
    parts = name.split(".")
    tail = ".".join(parts[2:])
    return tail in ("self_attn.q.weight", "self_attn.k.weight", "self_attn.v.weight",
                    "self_attn.o.weight", "cross_attn.q.weight", "cross_attn.k.weight",
                    "cross_attn.v.weight", "cross_attn.o.weight", "ffn.0.weight",
                    "ffn.2.weight")


def store_bf16(w):
    return {k: st.bf16_encode(v) for k, v in w.items()}


def store_fp8_scaled(w):
    out = {}
    for k, v in w.items():
        if is_fp8_quantized(k):
            scale = np.float32(np.abs(v).max()) / np.float32(448.0)
            q = st.e4m3_encode(v / scale)
            out[k] = q
            out[k[:-len("weight")] + "scale_weight"] = f32([scale])
        else:
            out[k] = st.bf16_encode(v)
    out["scaled_fp8"] = st.Raw("F8_E4M3", np.zeros((0,), np.uint8), (0,))
    return out


def dequantize(stored):
    """Stored tensors -> float32 weights exactly as an engine must see them:
    bf16/f8 decoded; scaled fp8 multiplied by X.scale_weight (float32)."""
    w = {}
    for k, v in stored.items():
        if k == "scaled_fp8" or k.endswith(".scale_weight"):
            continue
        d = st.decode(v).astype(np.float32)
        sk = k[:-len("weight")] + "scale_weight"
        if k.endswith(".weight") and sk in stored:
            d = (d * np.asarray(stored[sk], np.float32)[0]).astype(np.float32)
        w[k] = d
    return w


def check_patch_embedding_as_linear(w):
    """§1.3 step 1: the Conv3d equals a Linear on features indexed c·4 + kh·2 + kw."""
    rng = np.random.RandomState(7)
    C = w["patch_embedding.weight"].shape[1]
    x = torch.from_numpy(f32(rng.standard_normal((C, 1, 2, 2))))
    conv, _ = wan_dit.patch_embed(x, w, None)
    feats = x[:, 0].reshape(C * 4)  # index c*4 + kh*2 + kw
    lin = w["patch_embedding.weight"].reshape(-1, C * 4) @ feats + w["patch_embedding.bias"]
    assert torch.allclose(conv[0], lin, atol=1e-5), "patch embedding layout"


def gen_dit(out_dir, summary):
    t0 = time.time()
    w_f32 = make_dit_weights(seed=1001)
    w_i2v = make_dit_weights(seed=1002, dim=128, ffn=256, in_dim=36, layers=1)  # 1 head
    models = {
        "t2v_f32": ("dit_tiny_t2v_f32.safetensors", w_f32, "F32"),
        "t2v_bf16": ("dit_tiny_t2v_bf16.safetensors", store_bf16(w_f32), "BF16"),
        "t2v_fp8": ("dit_tiny_t2v_fp8_scaled.safetensors", store_fp8_scaled(w_f32),
                    "fp8 e4m3fn scaled (ComfyUI legacy layout) + BF16"),
        "i2v_f32": ("dit_tiny_i2v_f32.safetensors", w_i2v, "F32"),
    }
    weights = {}
    for key, (fname, stored, desc) in models.items():
        st.save(os.path.join(out_dir, fname), stored,
                meta(model="tiny Wan DiT (%s)" % key, storage=desc,
                     config=repr(wan_dit.DitConfig(stored if desc == "F32" else dequantize(stored)))))
        # reload what was written and decode, so the reference uses the stored values
        loaded, _ = st.load(os.path.join(out_dir, fname))
        weights[key] = to_torch(dequantize(loaded))
    check_patch_embedding_as_linear(weights["t2v_f32"])

    # (model, C, T, H, W, timestep, context length, debug trace)
    cases = [
        ("t2v_f32", 16, 1, 4, 6, 999.0, 7, True),
        ("t2v_f32", 16, 2, 6, 10, 500.0, 1, False),
        ("t2v_f32", 16, 3, 10, 6, 3.0, 512, False),
        ("t2v_f32", 16, 2, 4, 4, 731.5, 20, False),    # non-integer t (ComfyUI style)
        ("t2v_bf16", 16, 1, 4, 6, 500.0, 7, False),
        ("t2v_bf16", 16, 2, 6, 10, 999.0, 512, False),
        ("t2v_fp8", 16, 1, 4, 6, 3.0, 1, False),
        ("t2v_fp8", 16, 3, 10, 6, 500.0, 7, False),
        ("i2v_f32", 36, 2, 6, 10, 999.0, 7, False),
        ("i2v_f32", 36, 1, 4, 6, 3.0, 512, False),
    ]
    for n, (mk, C, T, H, W, t, nctx, dbg) in enumerate(cases, start=1):
        rng = np.random.RandomState(2000 + n)
        lat = f32(rng.standard_normal((C, T, H, W)))
        if C == 36:  # i2v layout: 16 noise | 4 mask (1 on latent frame 0) | 16 image latent
            lat[16:20] = 0.0
            lat[16:20, 0] = 1.0
        ctx = f32(rng.standard_normal((nctx, 32)))
        trace = {} if dbg else None
        vel = wan_dit.forward(weights[mk], torch.from_numpy(lat), t, torch.from_numpy(ctx), trace)
        desc = ("%s: latent [%d,%d,%d,%d] (patch grid %dx%dx%d), t=%g, context %d rows"
                % (models[mk][0], C, T, H, W, T, H // 2, W // 2, t, nctx))
        st.save(os.path.join(out_dir, "dit_case%d_in.safetensors" % n),
                {"latent": lat, "timestep": f32([t]), "context": ctx},
                meta(case=desc, model_file=models[mk][0]))
        outs = {"velocity": tnp(vel)}
        extra = {}
        if mk in ("t2v_bf16", "t2v_fp8"):
            ref = wan_dit.forward(weights["t2v_f32"], torch.from_numpy(lat), t, torch.from_numpy(ctx))
            extra["max_abs_diff_vs_f32_weights"] = "%.4g" % (vel - ref).abs().max().item()
        if trace is not None:
            # all padded context rows are identical: keep the real rows + the first pad row
            trace["context_emb"] = trace["context_emb"][:nctx + 1]
            for k, v in trace.items():
                outs["debug." + k] = tnp(v)
        st.save(os.path.join(out_dir, "dit_case%d_out.safetensors" % n), outs,
                meta(case=desc, model_file=models[mk][0],
                     velocity_std="%.4f" % vel.std().item(), **extra))
        summary.append("dit_case%d: %s | velocity std %.3f %s" % (n, desc, vel.std().item(), extra))
    print("dit: %.1fs" % (time.time() - t0))
    return weights


# =============================================================================
# tiny VAE
# =============================================================================
def make_vae_weights(seed, base=8, z_dim=16):
    """Wan 2.1 VAE layout (§2.3, §2.5) with base width `base` instead of 96."""
    rng = np.random.RandomState(seed)
    w = {}

    def conv(name, cout, cin, k, gain=1.0):
        ks = (k,) if isinstance(k, int) else k
        fan = cin * int(np.prod(ks))
        w[name + ".weight"] = f32(rng.standard_normal((cout, cin) + tuple(ks)) * gain / math.sqrt(fan))
        w[name + ".bias"] = f32(rng.standard_normal(cout) * 0.02)

    def gamma(name, c, images=False):
        shape = (c, 1, 1) if images else (c, 1, 1, 1)
        w[name] = f32(1.0 + rng.standard_normal(shape) * 0.1)

    def res(p, cin, cout):
        gamma(p + "residual.0.gamma", cin)
        conv(p + "residual.2", cout, cin, (3, 3, 3))
        gamma(p + "residual.3.gamma", cout)
        conv(p + "residual.6", cout, cout, (3, 3, 3), gain=0.5)
        if cin != cout:
            conv(p + "shortcut", cout, cin, (1, 1, 1))

    def attn(p, c):
        gamma(p + "norm.gamma", c, images=True)
        conv(p + "to_qkv", 3 * c, c, (1, 1))
        conv(p + "proj", c, c, (1, 1), gain=0.5)

    b = base
    # ---- encoder: dims b·[1,1,2,4,4], temporal downsample [False, True, True]
    conv("encoder.conv1", b, 3, (3, 3, 3))
    enc = [("res", b, b), ("res", b, b), ("down2d", b),
           ("res", b, 2 * b), ("res", 2 * b, 2 * b), ("down3d", 2 * b),
           ("res", 2 * b, 4 * b), ("res", 4 * b, 4 * b), ("down3d", 4 * b),
           ("res", 4 * b, 4 * b), ("res", 4 * b, 4 * b)]
    for i, s in enumerate(enc):
        p = "encoder.downsamples.%d." % i
        if s[0] == "res":
            res(p, s[1], s[2])
        else:
            c = s[1]
            conv(p + "resample.1", c, c, (3, 3))
            if s[0] == "down3d":
                conv(p + "time_conv", c, c, (3, 1, 1))
    res("encoder.middle.0.", 4 * b, 4 * b)
    attn("encoder.middle.1.", 4 * b)
    res("encoder.middle.2.", 4 * b, 4 * b)
    gamma("encoder.head.0.gamma", 4 * b)
    conv("encoder.head.2", 2 * z_dim, 4 * b, (3, 3, 3))
    conv("conv1", 2 * z_dim, 2 * z_dim, (1, 1, 1))
    # ---- decoder (table §2.3 with 96 -> b)
    conv("conv2", z_dim, z_dim, (1, 1, 1))
    conv("decoder.conv1", 4 * b, z_dim, (3, 3, 3))
    res("decoder.middle.0.", 4 * b, 4 * b)
    attn("decoder.middle.1.", 4 * b)
    res("decoder.middle.2.", 4 * b, 4 * b)
    dec = [("res", 4 * b, 4 * b)] * 3 + [("up3d", 4 * b)] + \
          [("res", 2 * b, 4 * b), ("res", 4 * b, 4 * b), ("res", 4 * b, 4 * b), ("up3d", 4 * b)] + \
          [("res", 2 * b, 2 * b)] * 3 + [("up2d", 2 * b)] + [("res", b, b)] * 3
    for i, s in enumerate(dec):
        p = "decoder.upsamples.%d." % i
        if s[0] == "res":
            res(p, s[1], s[2])
        else:
            c = s[1]
            if s[0] == "up3d":
                conv(p + "time_conv", 2 * c, c, (3, 1, 1))
            conv(p + "resample.1", c // 2, c, (3, 3))
    gamma("decoder.head.0.gamma", b)
    conv("decoder.head.2", 3, b, (3, 3, 3), gain=0.5)
    return w


def gen_vae(out_dir, summary):
    t0 = time.time()
    wnp = make_vae_weights(seed=3001)
    fname = "vae_tiny_f32.safetensors"
    w = to_torch(wnp)
    cfg = wan_vae.vae_config(w)
    st.save(os.path.join(out_dir, fname), wnp,
            meta(model="tiny Wan 2.1 VAE (base width 8, z_dim 16)", storage="F32",
                 config=repr(cfg)))
    assert cfg["decoder"] == ["res"] * 3 + ["upsample3d"] + ["res"] * 3 + ["upsample3d"] + \
        ["res"] * 3 + ["upsample2d"] + ["res"] * 3, cfg
    assert cfg["encoder"] == ["res", "res", "downsample2d", "res", "res", "downsample3d",
                              "res", "res", "downsample3d", "res", "res"], cfg

    for n, (T, h, wd) in enumerate([(1, 4, 4), (3, 4, 6), (4, 6, 2)], start=1):
        rng = np.random.RandomState(4000 + n)
        z = f32(rng.standard_normal((16, T, h, wd)))
        zt = torch.from_numpy(z)
        chunked = wan_vae.decode_chunked(w, zt)
        whole = wan_vae.decode_whole(w, zt)
        diff = (chunked - whole).abs().max().item()
        assert diff < 1e-4, "chunked vs whole VAE decode differ by %g" % diff
        F_ = 4 * (T - 1) + 1
        assert tuple(chunked.shape) == (3, F_, 8 * h, 8 * wd), chunked.shape
        sat = (chunked.abs() >= 1).float().mean().item()
        desc = "%s decode: latent [16,%d,%d,%d] -> video [3,%d,%d,%d]" % (fname, T, h, wd, F_, 8 * h, 8 * wd)
        st.save(os.path.join(out_dir, "vae_decode_case%d_in.safetensors" % n), {"latent": z},
                meta(case=desc, model_file=fname))
        st.save(os.path.join(out_dir, "vae_decode_case%d_out.safetensors" % n), {"video": tnp(chunked)},
                meta(case=desc, model_file=fname, procedure="chunked (reference), clamped to [-1,1]",
                     max_abs_diff_chunked_vs_whole="%.3g" % diff,
                     fraction_saturated="%.4f" % sat))
        summary.append("vae_decode_case%d: %s | chunked-vs-whole %.2g, saturated %.3f, std %.3f"
                       % (n, desc, diff, sat, chunked.std().item()))

    # encoder: video [3, 5, 16, 24] -> latent [16, 2, 2, 3]
    rng = np.random.RandomState(4100)
    video = f32(np.clip(rng.standard_normal((3, 5, 16, 24)) * 0.5, -1, 1))
    vt = torch.from_numpy(video)
    mu_c = wan_vae.encode_chunked(w, vt)
    mu_w = wan_vae.encode_whole(w, vt)
    diff = (mu_c - mu_w).abs().max().item()
    assert diff < 1e-4, "chunked vs whole VAE encode differ by %g" % diff
    desc = "%s encode: video [3,5,16,24] -> normalised latent mu [16,2,2,3]" % fname
    st.save(os.path.join(out_dir, "vae_encode_case1_in.safetensors"), {"video": video},
            meta(case=desc, model_file=fname))
    st.save(os.path.join(out_dir, "vae_encode_case1_out.safetensors"), {"latent": tnp(mu_c)},
            meta(case=desc, model_file=fname, procedure="chunked (reference): 1, 4 frames",
                 max_abs_diff_chunked_vs_whole="%.3g" % diff))
    summary.append("vae_encode_case1: %s | chunked-vs-whole %.2g" % (desc, diff))
    print("vae: %.1fs" % (time.time() - t0))
    return w


# =============================================================================
# schedules and samplers
# =============================================================================
def gen_schedules(out_dir, summary):
    tensors = {}
    for steps, shift in [(8, 5.0), (50, 5.0), (40, 12.0), (20, 8.0), (1, 5.0), (2, 3.0)]:
        ts, sig32, sig64 = smp.schedule(steps, shift)
        p = "steps%d_shift%g." % (steps, shift)
        tensors[p + "timesteps"] = tnp(ts)
        tensors[p + "sigmas"] = tnp(sig64)
        tensors[p + "sigmas_f32"] = tnp(sig32)
        summary.append("schedule %s t=%s" % (p[:-1], ts.tolist()[:6] + (["..."] if steps > 6 else [])))
    # cross-checks of numbers quoted in the spec
    ts50 = tensors["steps50_shift5.timesteps"].tolist()
    assert ts50[:3] == [999, 995, 991] and ts50[-2:] == [172, 92], ts50
    assert sum(1 for t in tensors["steps40_shift12.timesteps"] if t >= 875) == 26
    ts_i2v, _, _ = smp.schedule(40, 5.0)
    assert sum(1 for t in ts_i2v.tolist() if t >= 900) == 15
    st.save(os.path.join(out_dir, "schedules.safetensors"), tensors,
            meta(case="FlowUniPC set_timesteps(steps, shift), sigma_max=float32(0.999)",
                 sigma_max=repr(smp.base_sigma_max()[0])))


def gen_sampler_replay(out_dir, summary):
    """Sampler arithmetic alone: model outputs are pre-drawn and do not depend on x,
    so a test can feed v_i from the file and compare every x_i."""
    tensors = {}
    for sname in ("unipc", "euler"):
        for steps, shift in [(8, 5.0), (1, 5.0), (2, 3.0), (20, 8.0)]:
            rng = np.random.RandomState(5000 + steps)
            x = torch.from_numpy(f32(rng.standard_normal((16, 1, 2, 2))))
            vs = torch.from_numpy(f32(rng.standard_normal((steps, 16, 1, 2, 2))))
            s = smp.make_sampler(sname, steps, shift)
            xs = [x]
            for i in range(steps):
                x = s.step(vs[i], x)
                xs.append(x)
            p = "%s_steps%d_shift%g." % (sname, steps, shift)
            tensors[p + "v"] = tnp(vs)
            tensors[p + "x"] = tnp(torch.stack(xs))
    st.save(os.path.join(out_dir, "sampler_replay.safetensors"), tensors,
            meta(case="x[0] = start sample; x[i+1] = sampler.step(v[i], x[i]) with v[i] given "
                      "(UniPC bh2 order 2 predict-x0 with corrector, lower_order_final; Euler)"))
    summary.append("sampler_replay: %d tensors" % len(tensors))


def gen_sampling(out_dir, dit_w, vae_w, summary):
    t0 = time.time()
    rng = np.random.RandomState(6001)
    noise = f32(rng.standard_normal((16, 3, 4, 6)))
    ctx = f32(rng.standard_normal((7, 32)))
    neg = f32(rng.standard_normal((12, 32)))
    steps, shift, guide = 8, 5.0, 5.0
    desc_in = ("8-step sampling on dit_tiny_t2v_f32 + vae_tiny_f32: noise [16,3,4,6], "
               "context [7,32], negative_context [12,32], steps 8, shift 5.0, guidance 5.0")
    st.save(os.path.join(out_dir, "sample_case_in.safetensors"),
            {"noise": noise, "context": ctx, "negative_context": neg},
            meta(case=desc_in, steps=steps, shift=shift, guidance=guide))
    w = dit_w["t2v_f32"]
    ctx_t, neg_t = torch.from_numpy(ctx), torch.from_numpy(neg)

    def model_fn(x, t, which):
        return wan_dit.forward(w, x, t, ctx_t if which == "cond" else neg_t)

    for sname in ("unipc", "euler"):
        rec = {}
        lat = smp.sample(model_fn, torch.from_numpy(noise), steps, shift, guide, sname, rec)
        video = wan_vae.decode_chunked(vae_w, lat)
        outs = {"latent": tnp(lat), "video": tnp(video)}
        for k, v in rec.items():
            outs[k] = tnp(v)
        desc = "%s; sampler %s; model timestep = int64 schedule value" % (desc_in, sname)
        st.save(os.path.join(out_dir, "sample_%s_out.safetensors" % sname), outs,
                meta(case=desc, sampler=sname, steps=steps, shift=shift, guidance=guide))
        summary.append("sample_%s: latent std %.3f, video [3,%d,%d,%d] range [%.3f, %.3f]"
                       % (sname, lat.std().item(), *video.shape[1:], video.min().item(),
                          video.max().item()))
    print("sampling: %.1fs" % (time.time() - t0))


# =============================================================================
# umT5
# =============================================================================
def make_umt5_weights(seed, vocab=512, d_model=64, heads=4, d_kv=16, d_ff=128, layers=2,
                      buckets=32):
    rng = np.random.RandomState(seed)
    w = {}

    def normal(shape, std):
        return f32(rng.standard_normal(shape) * std)

    w["shared.weight"] = normal((vocab, d_model), 1.0)
    inner = heads * d_kv
    for i in range(layers):
        p = "encoder.block.%d.layer." % i
        w[p + "0.layer_norm.weight"] = f32(1.0 + rng.standard_normal(d_model) * 0.1)
        w[p + "0.SelfAttention.q.weight"] = normal((inner, d_model), 1.0 / math.sqrt(d_model * d_kv))
        w[p + "0.SelfAttention.k.weight"] = normal((inner, d_model), 1.0 / math.sqrt(d_model))
        w[p + "0.SelfAttention.v.weight"] = normal((inner, d_model), 1.0 / math.sqrt(d_model))
        w[p + "0.SelfAttention.o.weight"] = normal((d_model, inner), 1.0 / math.sqrt(inner))
        w[p + "0.SelfAttention.relative_attention_bias.weight"] = normal((buckets, heads), 1.0)
        w[p + "1.layer_norm.weight"] = f32(1.0 + rng.standard_normal(d_model) * 0.1)
        w[p + "1.DenseReluDense.wi_0.weight"] = normal((d_ff, d_model), 1.0 / math.sqrt(d_model))
        w[p + "1.DenseReluDense.wi_1.weight"] = normal((d_ff, d_model), 1.0 / math.sqrt(d_model))
        w[p + "1.DenseReluDense.wo.weight"] = normal((d_model, d_ff), 1.0 / math.sqrt(d_ff))
    w["encoder.final_layer_norm.weight"] = f32(1.0 + rng.standard_normal(d_model) * 0.1)
    return w


def gen_umt5(out_dir, summary):
    t0 = time.time()
    wnp = make_umt5_weights(seed=7001)
    fname = "umt5_tiny_f32.safetensors"
    st.save(os.path.join(out_dir, fname), wnp,
            meta(model="tiny umT5 encoder: vocab 512, d_model 64, 4 heads x d_kv 16, d_ff 128, "
                       "2 layers, 32 buckets, max_distance 128", storage="F32"))
    w = to_torch(wnp)

    rel = torch.arange(-300, 301)
    st.save(os.path.join(out_dir, "umt5_buckets.safetensors"),
            {"relative_position": tnp(rel).astype(np.int32),
             "bucket": tnp(umt5.relative_position_bucket(rel)).astype(np.int32)},
            meta(case="bidirectional T5 bucket (32 buckets, max_distance 128) of "
                      "rel = key_pos - query_pos, for rel in [-300, 300]"))

    rng = np.random.RandomState(7100)
    ids_a = rng.randint(2, 512, size=8).tolist() + [1]           # 8 tokens + EOS
    ids_c = rng.randint(2, 512, size=199).tolist() + [1]         # 200 tokens (|rel| up to 199)
    ids_d = rng.randint(2, 512, size=149).tolist() + [1]
    # (real ids, padded length or None)
    cases = [(ids_a, 512, "9 real tokens (8 + EOS id 1) padded with id 0 to 512, mask"),
             (ids_a, None, "same 9 tokens, unpadded, no mask"),
             (ids_c, None, "200 tokens unpadded (distances beyond max_distance 128)"),
             (ids_d, 192, "150 real tokens padded to 192, mask")]
    ref_a = None
    for n, (ids, padlen, what) in enumerate(cases, start=1):
        nreal = len(ids)
        if padlen:
            full = ids + [0] * (padlen - nreal)
            mask = [1] * nreal + [0] * (padlen - nreal)
        else:
            full, mask = ids, None
        ids_t = torch.tensor(full, dtype=torch.int64)
        mask_t = None if mask is None else torch.tensor(mask, dtype=torch.int64)
        hidden = umt5.encode(w, ids_t, mask_t)
        emb = hidden[:nreal]
        extra = {}
        try:
            hf, hfver = umt5.hf_encode(w, ids_t, mask_t)
        except Exception as ex:  # never let the optional cross-check break generation
            hf, hfver = None, "error: %r" % (ex,)
        if hf is not None:
            extra["hf_check"] = hfver
            extra["hf_max_abs_diff"] = "%.3g" % (hf[:nreal] - emb).abs().max().item()
        else:
            extra["hf_check"] = "skipped (%s)" % hfver
        if n == 1:
            ref_a = emb
        if n == 2:
            d = (emb - ref_a).abs().max().item()
            extra["max_abs_diff_vs_padded_case1"] = "%.3g" % d
            assert d < 1e-4, d
        inp = {"ids": np.array(full, dtype=np.int32)}
        if mask is not None:
            inp["mask"] = np.array(mask, dtype=np.int32)
        desc = "%s: %s -> embeddings [%d, 64] (truncated to the real length)" % (fname, what, nreal)
        st.save(os.path.join(out_dir, "umt5_case%d_in.safetensors" % n), inp,
                meta(case=desc, model_file=fname, real_length=nreal))
        st.save(os.path.join(out_dir, "umt5_case%d_out.safetensors" % n), {"embeddings": tnp(emb)},
                meta(case=desc, model_file=fname, real_length=nreal, **extra))
        summary.append("umt5_case%d: %s | %s" % (n, desc, extra))
    print("umt5: %.1fs" % (time.time() - t0))


# =============================================================================
# storage codecs
# =============================================================================
def gen_codecs(out_dir, summary):
    rng = np.random.RandomState(8001)
    sub = 2.0 ** -9  # smallest e4m3fn subnormal
    specials = [0.0, -0.0, 1.0, -1.0, 448.0, -448.0, 440.0, 456.0 - 1e-3, 0.5 * sub, 1.5 * sub,
                sub, 2.0 ** -6, 1.0625, 1.1875, 3.0 * 2 ** -10, 0.3, -17.5, 240.0, 232.0, 248.0]
    e4 = f32(np.concatenate([specials, rng.standard_normal(200) * 4.0,
                             rng.uniform(-448, 448, 100), rng.standard_normal(50) * 1e-2]))
    e5 = f32(np.concatenate([specials, [57344.0, -57344.0, 49152.0, 2.0 ** -16, 2.0 ** -17, 1.125, 1.375],
                             rng.standard_normal(200) * 100.0, rng.standard_normal(50) * 1e-4]))
    bf = f32(np.concatenate([[0.0, -0.0, 1.0, 1.00390625, 1.01171875, 3.0e38, -1e-40, 65504.0],
                             rng.standard_normal(300) * 10.0]))
    e4q, e5q, bfq = st.e4m3_encode(e4), st.e5m2_encode(e5), st.bf16_encode(bf)
    extra = {}
    # bf16 against torch (available everywhere)
    tb = torch.from_numpy(bf).to(torch.bfloat16).float().numpy()
    assert np.array_equal(tb.view(np.uint32), st.bf16_decode(bfq.bits).view(np.uint32)), "bf16 codec"
    extra["bf16_vs_torch"] = "identical"
    if hasattr(torch, "float8_e4m3fn"):
        t4 = torch.from_numpy(e4).to(torch.float8_e4m3fn).view(torch.uint8).numpy()
        t5 = torch.from_numpy(e5).to(torch.float8_e5m2).view(torch.uint8).numpy()
        m4 = int((t4 != e4q.bits).sum())
        m5 = int((t5 != e5q.bits).sum())
        extra["fp8_vs_torch"] = "e4m3fn mismatches %d/%d, e5m2 mismatches %d/%d" % (m4, e4.size, m5, e5.size)
        if m4 or m5:
            print("WARNING: fp8 codec differs from torch: %s" % extra["fp8_vs_torch"])
            for vals, ours, theirs in ((e4, e4q.bits, t4), (e5, e5q.bits, t5)):
                bad = np.nonzero(ours != theirs)[0][:10]
                print("  values %s ours %s torch %s" % (vals[bad], ours[bad], theirs[bad]))
    else:
        extra["fp8_vs_torch"] = "skipped (torch %s has no float8)" % torch.__version__
    st.save(os.path.join(out_dir, "dtype_codecs.safetensors"),
            {"e4m3_values": e4, "e4m3": e4q, "e4m3_decoded": st.e4m3_decode(e4q.bits),
             "e5m2_values": e5, "e5m2": e5q, "e5m2_decoded": st.e5m2_decode(e5q.bits),
             "bf16_values": bf, "bf16": bfq, "bf16_decoded": st.bf16_decode(bfq.bits)},
            meta(case="float32 -> storage encodings, round-to-nearest-even", **extra))
    summary.append("dtype_codecs: %s" % extra)


def validate_with_safetensors(out_dir):
    """When the `safetensors` package is importable (GPU machine), re-read every file
    with it and compare against our own reader byte for byte."""
    try:
        from safetensors import safe_open
    except Exception:
        return "skipped (safetensors not importable)"
    width = {1: torch.uint8, 2: torch.int16, 4: torch.int32, 8: torch.int64}
    n = 0
    for fname in sorted(os.listdir(out_dir)):
        if not fname.endswith(".safetensors"):
            continue
        path = os.path.join(out_dir, fname)
        ours, ours_meta = st.load(path)
        with safe_open(path, framework="pt") as f:
            assert set(f.keys()) == set(ours.keys()), fname
            assert (f.metadata() or {}) == ours_meta, fname
            for k in f.keys():
                t = f.get_tensor(k)
                o = ours[k]
                raw = o.bits if isinstance(o, st.Raw) else np.asarray(o)
                assert list(t.shape) == list(raw.shape), (fname, k)
                if t.numel() == 0:
                    continue
                tb = t.contiguous().view(width[t.element_size()]).numpy().tobytes()
                assert tb == raw.tobytes(), (fname, k)
                n += 1
    return "ok (%d tensors identical)" % n


def main():
    ap = argparse.ArgumentParser()
    here = os.path.dirname(os.path.abspath(__file__))
    ap.add_argument("--out", default=os.path.join(here, "..", "data", "golden"))
    args = ap.parse_args()
    out_dir = os.path.abspath(args.out)
    os.makedirs(out_dir, exist_ok=True)
    torch.manual_seed(0)
    t0 = time.time()
    summary = []
    gen_codecs(out_dir, summary)
    gen_schedules(out_dir, summary)
    gen_sampler_replay(out_dir, summary)
    dit_w = gen_dit(out_dir, summary)
    rng = np.random.RandomState(1)
    sc_cases = [(torch.from_numpy(f32(rng.standard_normal((16, 3, 6, 10)))), 999,
                 torch.from_numpy(f32(rng.standard_normal((7, 32))))),
                (torch.from_numpy(f32(rng.standard_normal((16, 2, 4, 8)))), 3,
                 torch.from_numpy(f32(rng.standard_normal((512, 32)))))]
    summary.append("selfcheck t2v: %s" % selfcheck.run_all(dit_w["t2v_f32"], sc_cases))
    summary.append("selfcheck i2v: %s" % selfcheck.check_dit(
        dit_w["i2v_f32"], [(torch.from_numpy(f32(rng.standard_normal((36, 2, 6, 4)))), 500,
                            torch.from_numpy(f32(rng.standard_normal((3, 32)))))]))
    vae_w = gen_vae(out_dir, summary)
    gen_sampling(out_dir, dit_w, vae_w, summary)
    gen_umt5(out_dir, summary)
    try:
        res = validate_with_safetensors(out_dir)
    except Exception as ex:  # report, do not hide: the files may be unreadable elsewhere
        res = "FAILED: %r" % (ex,)
        print("WARNING: safetensors cross-read " + res)
    summary.append("safetensors package cross-read: %s" % res)
    print("\n".join(summary))
    total = sum(os.path.getsize(os.path.join(out_dir, f)) for f in os.listdir(out_dir)
                if f.endswith(".safetensors"))
    print("total %.2f MB in %s, %.1fs" % (total / 1e6, out_dir, time.time() - t0))


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""PyTorch side of the VAE-decode benchmark: the reference Wan2.1 decoder
(tests/reference/wan_vae.py, fp32 as the Wan reference runs it) on the GPU,
whole-sequence (its fastest form; the chunked form gives the same frames),
with the same VAE file and latent as `vdiff vae-decode --device cuda:0`.

    python3 tests/benchmarks/torch_vae_decode.py VAE.safetensors LATENT.safetensors
"""
import os
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "reference"))
import st  # noqa: E402
import wan_vae  # noqa: E402


def main():
    weights, _ = st.load_f32(sys.argv[1])
    w = {k: torch.from_numpy(np.ascontiguousarray(v)).cuda() for k, v in weights.items() if v.dtype == np.float32}
    lat, _ = st.load_f32(sys.argv[2])
    z = torch.from_numpy(lat["latent"]).cuda()
    mean = torch.tensor(wan_vae.MEAN, device="cuda").view(-1, 1, 1, 1)
    std = torch.tensor(wan_vae.STD, device="cuda").view(-1, 1, 1, 1)
    torch.backends.cudnn.allow_tf32 = False
    torch.backends.cuda.matmul.allow_tf32 = False

    def decode():
        with torch.no_grad():
            x = wan_vae.causal_conv3d(z * std + mean, w["conv2.weight"], w["conv2.bias"])
            return wan_vae.decoder(x, w, None).clamp(-1, 1)

    decode()
    torch.cuda.synchronize()
    t = time.time()
    out = decode()
    torch.cuda.synchronize()
    t = time.time() - t
    print(f"torch {torch.__version__} VAE decode (reference, fp32, cuDNN) latent {list(z.shape)} -> video "
          f"{list(out.shape)}: {t:.3f} s; peak memory {torch.cuda.max_memory_allocated() / 2**30:.1f} GiB")


if __name__ == "__main__":
    main()

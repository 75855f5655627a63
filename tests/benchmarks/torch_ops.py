#!/usr/bin/env python3
"""PyTorch side of bench_cuda_ops: the same shapes on the same GPU, timed the
same way (CUDA events, warm-up, mean of repeats), so the two can be printed
side by side.  Run on the GPU machine:  python3 tests/benchmarks/torch_ops.py
"""
import torch
import torch.nn.functional as F

dev = "cuda"
torch.backends.cuda.matmul.allow_tf32 = False
torch.backends.cudnn.allow_tf32 = False


def timed(fn, reps=10, warm=3):
    for _ in range(warm):
        fn()
    torch.cuda.synchronize()
    a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    a.record()
    for _ in range(reps):
        fn()
    b.record()
    torch.cuda.synchronize()
    return a.elapsed_time(b) / reps


def matmul(m, n, k):
    x = torch.randn(m, k, device=dev, dtype=torch.bfloat16)
    w = torch.randn(n, k, device=dev, dtype=torch.bfloat16)
    ms = timed(lambda: F.linear(x, w))
    print(f"torch matmul {m} x {n} x {k}, bf16: {ms:9.3f} ms {2 * m * n * k / ms / 1e9:8.1f} TFLOP/s")


def attention(L, H, d, backend):
    q, k, v = (torch.randn(1, H, L, d, device=dev, dtype=torch.bfloat16) for _ in range(3))
    from torch.nn.attention import sdpa_kernel, SDPBackend
    be = {"cudnn": SDPBackend.CUDNN_ATTENTION, "flash": SDPBackend.FLASH_ATTENTION,
          "efficient": SDPBackend.EFFICIENT_ATTENTION}[backend]
    try:
        with sdpa_kernel(be):
            ms = timed(lambda: F.scaled_dot_product_attention(q, k, v), reps=5)
    except RuntimeError as e:
        print(f"torch attention L={L} H={H} d={d} ({backend}): unavailable ({str(e)[:60]})")
        return
    print(f"torch attention L={L} H={H} d={d} ({backend}): {ms:9.3f} ms {4 * L * L * d * H / ms / 1e9:8.1f} TFLOP/s")


def conv3d():
    x = torch.randn(1, 384, 5, 60, 104, device=dev)
    w = torch.randn(384, 384, 3, 3, 3, device=dev)
    ms = timed(lambda: F.conv3d(x, w, padding=(0, 1, 1)))
    flops = 2 * 384 * 384 * 27 * 3 * 60 * 104
    print(f"torch conv3d 384 -> 384, 3x3x3, 3 x 60 x 104 (fp32): {ms:9.3f} ms {flops / ms / 1e9:8.1f} TFLOP/s")


if __name__ == "__main__":
    print("device:", torch.cuda.get_device_name(), "torch", torch.__version__)
    matmul(32760, 5120, 5120)
    matmul(32760, 13824, 5120)
    matmul(32760, 5120, 13824)
    for be in ("cudnn", "flash", "efficient"):
        attention(32760, 40, 128, be)
    attention(32760, 12, 128, "cudnn")
    conv3d()

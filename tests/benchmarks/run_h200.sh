#!/usr/bin/env bash
# The CUDA-backend benchmarks of RESULTS.md, side by side with PyTorch on the
# same GPU in the same run.  On the GPU machine, from the repository root:
#
#   bash tests/benchmarks/run_h200.sh OUT_DIR [BUILD_DIR] [STEP...]
#   STEP: ops 13b 14b 14b-fp8 14b-q8 vae   (default: all)
#
# Random-weight checkpoints with the real shapes are made with vdiff mkmodel
# in $VD_BENCH_MODELS (default /tmp/vdiff-bench) and the 14B ones removed
# after use (28.6 GB each in bf16).  Every step writes OUT_DIR/<step>.txt.
set -u
O=${1:?usage: run_h200.sh OUT_DIR [BUILD_DIR] [STEP...]}
B=${2:-build-gpu}
shift $(($# >= 2 ? 2 : 1))
steps=${*:-ops 13b 14b 14b-fp8 14b-q8 vae}
M=${VD_BENCH_MODELS:-/tmp/vdiff-bench}
mkdir -p "$O" "$M"
. "$(dirname "$0")/gpu_build.sh"
V=$B/engine/tools/vdiff
S=$B/tests/benchmarks/bench_dit_step

dit_step() { # name preset dtype file-extension [bench option]
    local f=$M/$1.$4
    [ -f "$f" ] || "$V" mkmodel --arch wan21-t2v --preset "$2" --dtype "$3" -o "$f" >/dev/null || return
    "$S" "$f" cuda:0 81 480 832 2
    [ -n "${5:-}" ] && "$S" $5 "$f" cuda:0 81 480 832 2
    case $1 in *14b*) rm -f "$f" ;; esac
}

for s in $steps; do
  echo "=== $s ($(date +%T))"
  case $s in
  ops) {
      "$B/tests/gpu/bench_cuda_ops"
      echo "--- attention through cuDNN's fused SDPA (VD_CUDA_ATTENTION=cudnn, the default path)"
      VD_CUDA_ATTENTION=cudnn "$B/tests/gpu/bench_cuda_ops" attention
      echo "--- fp8 GEMMs (per-row activation scales; then per-tensor)"
      "$B/tests/gpu/bench_cuda_ops" fp8
      VD_FP8_GEMM=tensor "$B/tests/gpu/bench_cuda_ops" fp8
      python3 tests/benchmarks/torch_ops.py
    } >"$O/ops.txt" 2>&1 ;;
  13b) { dit_step w13b_bf16 1.3b bf16 safetensors; python3 tests/benchmarks/torch_wan_step.py 1.3b; } >"$O/13b.txt" 2>&1 ;;
  14b) { dit_step w14b_bf16 14b bf16 safetensors; python3 tests/benchmarks/torch_wan_step.py 14b; } >"$O/14b.txt" 2>&1 ;;
  14b-fp8) dit_step w14b_fp8 14b fp8-scaled safetensors --fp8-gemm >"$O/14b-fp8.txt" 2>&1 ;;
  14b-q8) dit_step w14b_q8 14b q8_0 gguf >"$O/14b-q8.txt" 2>&1 ;;
  vae)
    {
      [ -f "$M/vae.safetensors" ] || "$V" mkmodel --arch wan-vae -o "$M/vae.safetensors" >/dev/null
      "$B/tests/benchmarks/bench_vae_decode" "$M/vae.safetensors" cuda:0 81 480 832
      echo "--- im2col + SGEMM convolutions (VD_CUDA_CONV=im2col)"
      VD_CUDA_CONV=im2col "$B/tests/benchmarks/bench_vae_decode" "$M/vae.safetensors" cuda:0 81 480 832
      python3 -c "
import sys; sys.path.insert(0, 'tests/reference'); import numpy as np, st
st.save('$M/latent.safetensors', {'latent': np.random.RandomState(0).randn(16, 21, 60, 104).astype(np.float32)})"
      python3 tests/benchmarks/torch_vae_decode.py "$M/vae.safetensors" "$M/latent.safetensors"
    } >"$O/vae.txt" 2>&1 ;;
  *) echo "unknown step $s" ;;
  esac
  grep -hE "TFLOP/s|VAE decode|error|Error" "$O/$s.txt" | grep -v "^matmul.*weights:" | tail -12
done

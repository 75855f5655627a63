#!/usr/bin/env bash
# The offloading sweep of RESULTS.md in one command, on the GPU machine
# (2× H200 for the donor lines), from the repository root:
#
#   bash tests/benchmarks/run_offload_sweep.sh OUT_DIR [BUILD_DIR]
#
# Makes a random-weight Wan 14B bf16 checkpoint (28.6 GB, in $VD_BENCH_MODELS,
# default /tmp/vdiff-bench), then for a video-like clip (832×480×81) and an
# image-like one (1024×1024, 1 frame) times steps with 0–100 % of the blocks
# streamed from pinned host memory, the donor GPU, and host links SIMULATED at
# 6.8, 27.2 and 50.8 GB/s (the seed's PCIe 3.0 x8, PCIe 4.0 x16 and NVLink
# 3090 links), writes OUT_DIR/<case>.csv and plots them (OUT_DIR/<case>.png).
set -u
O=${1:?usage: run_offload_sweep.sh OUT_DIR [BUILD_DIR]}
B=${2:-build-gpu}
M=${VD_BENCH_MODELS:-/tmp/vdiff-bench}
mkdir -p "$O" "$M"
. "$(dirname "$0")/gpu_build.sh"
V=$B/engine/tools/vdiff
f=$M/w14b_bf16.safetensors
[ -f "$f" ] || "$V" mkmodel --arch wan21-t2v --preset 14b --dtype bf16 -o "$f" >/dev/null || exit 1
# VD_SWEEP_CASES picks the cases (default: video image); VD_SWEEP_FRACTIONS
# and VD_SWEEP_STEPS shorten a run (every point reloads the 28.6 GB model).
cases=${VD_SWEEP_CASES:-video image}
fr=${VD_SWEEP_FRACTIONS:-0,25,50,75,100}
sources=none,host,donor,sim6.8,sim27.2,sim50.8
for case in $cases; do
  case $case in
  video) c=offload_14b_480p81
    # auto12gb: the planner's own placement within a 12 GB budget on cuda:0
    "$V" bench-offload --model "$f" --steps "${VD_SWEEP_STEPS:-2}" --fractions "$fr" --sources $sources,auto12gb \
        >"$O/$c.csv" ;;
  image) c=offload_14b_1024sq
    "$V" bench-offload --model "$f" --width 1024 --height 1024 --frames 1 --steps "${VD_SWEEP_STEPS:-3}" \
        --fractions "$fr" --sources $sources >"$O/$c.csv" ;;
  *) echo "unknown case $case"; continue ;;
  esac
  python3 tests/benchmarks/plot_offload.py "$O/$c.png" "$O/$c.csv" "Wan 14B bf16, $c" || true
  grep -v '^#' "$O/$c.csv"
  grep '^# auto' "$O/$c.csv"
done

#!/usr/bin/env bash
# The attention kernels' checks for one session on a GPU machine (see
# kernels/attention_fa2.cu): registers, spills and instruction mix as built,
# the host emulation, the GPU test groups, the timings, and compute-sanitizer
# on small shapes.  Each step writes OUT_DIR/attn_<step>.txt and prints its
# summary lines; a step that fails does not stop the next.
#
# usage: tests/gpu/attention_gpu_checks.sh BUILD_DIR [OUT_DIR] [STEP...]
#   STEP: sass emu test bench golden sanitize   (default: all, in that order)
# Build first: meson setup BUILD_DIR -Dcuda=enabled -Dgst=disabled -Dffmpeg=disabled && ninja -C BUILD_DIR
set -u
B=${1:?usage: $0 BUILD_DIR [OUT_DIR] [STEP...]}
O=${2:-.}
shift $(($# >= 2 ? 2 : 1))
steps=${*:-sass emu test bench golden sanitize}
mkdir -p "$O"
T=$B/tests/gpu/test_cuda_ops
status=0

step() { echo "=== $1 ($(date +%T))"; }

for s in $steps; do
  case $s in
  sass)
    step "sass: per fa2 kernel: registers, stack, and SASS counts (HMMA = mma.sync, LDSM = ldmatrix, LDGSTS = cp.async, LDL/STL = spills)"
    obj=$(find "$B/kernels" -name 'attention_fa2.cu.o' | head -1)
    {
      cuobjdump -res-usage "$obj" 2>&1 | grep -A1 fa2_forward
      cuobjdump -sass "$obj" 2>&1 | awk '
        /Function :/ { if (f) print f, c["HMMA"]+0, c["LDSM"]+0, c["LDGSTS"]+0, c["MUFU"]+0, c["BAR"]+0, c["LDL"]+0, c["STL"]+0; f=$3; delete c; next }
        /\/\*[0-9a-f]+\*\// { split($0, w, /[ ;]+/); for (i in w) if (w[i] ~ /^(HMMA|LDSM|LDGSTS|MUFU|BAR|LDL|STL)(\.|$)/) { split(w[i], o, "."); c[o[1]]++ } }
        END { if (f) print f, c["HMMA"]+0, c["LDSM"]+0, c["LDGSTS"]+0, c["MUFU"]+0, c["BAR"]+0, c["LDL"]+0, c["STL"]+0 }' |
        sed 's/^/function HMMA LDSM LDGSTS MUFU BAR LDL STL: /'
    } >"$O/attn_sass.txt" 2>&1
    grep -E "REG|function" "$O/attn_sass.txt" | sed -E 's/_ZN3fa211fa2_forwardINS_3CfgIL//' | head -40
    ;;
  emu)
    step "emu: the host emulation of the fa2 kernels"
    timeout 300 "$B/tests/gpu/emu_attention_fa2" >"$O/attn_emu.txt" 2>&1 || status=1
    grep -E "FAIL|passed" "$O/attn_emu.txt"
    ;;
  test)
    step "test: attention groups against the CPU backend"
    timeout 480 "$T" attention attention_fa2_small attention_fa2_v1 attention_fa2_v2 attention_fa2_v3 \
      attention_fa2_passes attention_mma_kernel attention_f32_kernel >"$O/attn_test.txt" 2>&1 || status=1
    grep -E "^==|FAIL|failed|error" "$O/attn_test.txt"
    ;;
  bench)
    step "bench: attention timings (4·L²·d·H FLOPs; q/k/v conversion included)"
    timeout 300 "$B/tests/gpu/bench_cuda_ops" attention >"$O/attn_bench.txt" 2>&1 || status=1
    cat "$O/attn_bench.txt"
    ;;
  golden)
    step "golden: the tiny models through the default kernels"
    timeout 300 "$T" dit_golden dit_golden_f32_attention umt5_golden >"$O/attn_golden.txt" 2>&1 || status=1
    grep -E "^==|FAIL|failed" "$O/attn_golden.txt"
    ;;
  sanitize)
    step "sanitize: compute-sanitizer memcheck, racecheck, synccheck on attention_fa2_small"
    for tool in memcheck racecheck synccheck; do
      timeout 240 compute-sanitizer --tool "$tool" --error-exitcode 3 "$T" attention_fa2_small \
        >"$O/attn_sanitize_$tool.txt" 2>&1
      rc=$?
      [ $rc -ne 0 ] && status=1
      echo "$tool: exit $rc; $(grep -E 'ERROR SUMMARY|RACECHECK SUMMARY|cuda_ops:' "$O/attn_sanitize_$tool.txt" | tr '\n' ' ')"
    done
    ;;
  *)
    echo "unknown step $s"
    status=1
    ;;
  esac
done
exit $status

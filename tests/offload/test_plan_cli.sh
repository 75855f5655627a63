#!/bin/sh
# vdiff plan for a described machine (--gpus): the placement, the VRAM, the
# prediction, SIMULATED links, and the errors that quote the bad part.
set -u
: "${VDIFF:?VDIFF must name the vdiff program}"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail=0
check() { # description, then a command that must succeed
    what=$1
    shift
    if "$@"; then :; else echo "FAIL: $what"; fail=1; fi
}
has() { grep -q -- "$2" "$1"; }

"$VDIFF" mkmodel --arch wan21-t2v --preset tiny --layers 6 --dtype bf16 -o "$tmp/m.safetensors" >/dev/null || exit 1
M="$tmp/m.safetensors"

check "--help" "$VDIFF" plan --help >"$tmp/help"
check "help mentions --allocation" has "$tmp/help" "--allocation"

# bytes: 2 MB on the GPU (the stem + a block), the rest in host memory
"$VDIFF" plan --model "$M" --gpus 1gb --host-memory 8gb --allocation "cuda:0,2mb;cpu,*" \
    --block-ms 2 --host-gbps 1 >"$tmp/out" 2>"$tmp/err"
check "bytes plan exits 0" test $? -eq 0
cat "$tmp/out"
for s in "placement" "S [RH]*" "per tier" "host (pinned)" "VRAM on cuda:0" "ring" "activations (estimate)" \
         "block compute" "link host" "one step" "(bytes)"; do
    check "bytes plan output has '$s'" has "$tmp/out" "$s"
done
check "no SIMULATED without the variable" sh -c "! grep -q SIMULATED '$tmp/out'"

# no timings: the plan without a prediction, and it says so
"$VDIFF" plan --model "$M" --gpus 1gb --allocation "cuda:0,2mb;cpu,*" >"$tmp/out" 2>&1
check "untimed plan exits 0" test $? -eq 0
check "untimed plan says why there is no prediction" has "$tmp/out" "none: no GPU measured here"

# simulated links are marked
VD_SIMULATE_LINK_GBPS=6.8 "$VDIFF" plan --model "$M" --gpus 1gb --allocation "cuda:0,2mb;cpu,*" --block-ms 2 \
    >"$tmp/out" 2>&1
check "simulated plan exits 0" test $? -eq 0
check "simulation announced" has "$tmp/out" "LINK SIMULATION ACTIVE"
check "simulated link speed" has "$tmp/out" "6.80 GB/s (SIMULATED cap) SIMULATED"
check "simulated prediction" has "$tmp/out" "s SIMULATED"
VD_SIMULATE_LINK_GBPS=fast "$VDIFF" plan --model "$M" --gpus 1gb >"$tmp/out" 2>&1
check "a bad simulation setting fails" test $? -eq 1
check "... naming the variable" has "$tmp/out" "VD_SIMULATE_LINK_GBPS"

# two GPUs: ratios, a donor, auto
"$VDIFF" plan --model "$M" --gpus 1gb,1gb --allocation "cuda:0,50%;cuda:1,25%;cpu,25%" >"$tmp/out" 2>&1
check "ratio plan exits 0" test $? -eq 0
check "ratio plan has a donor" has "$tmp/out" "donor cuda:1"
# (90 MB: the stem, a ring slot and the activations fit, the whole model does not)
"$VDIFF" plan --model "$M" --gpus 1gb,1gb --allocation "auto,90mb" --block-ms 1 --host-gbps 10 --donor-gbps 40 \
    --depth 1 >"$tmp/out" 2>&1
check "auto plan exits 0" test $? -eq 0
check "auto plan streams blocks" has "$tmp/out" "blocks stream to fit the budget"

# errors quote the bad part
"$VDIFF" plan --model "$M" --gpus 1gb --allocation "cuda:0,1mb;cuda:7,*" >"$tmp/out" 2>&1
check "unknown device fails" test $? -eq 1
check "unknown device named" has "$tmp/out" "cuda:7 does not exist"
"$VDIFF" plan --model "$M" --gpus 1gb,1gb --allocation "virtual_vram_gb=0.01;donors=cuda:0" >"$tmp/out" 2>&1
check "donor = compute fails" test $? -eq 1
check "donor = compute explained" has "$tmp/out" "is the compute device"
"$VDIFF" plan --model "$M" --gpus 1gb,1gb --allocation "cuda:1,5gb;cpu,*" >"$tmp/out" 2>&1
check "over-commit fails" test $? -eq 1
check "over-commit quoted" has "$tmp/out" "cuda:1,5 GB"
"$VDIFF" plan --model "$M" --gpus 1gb --allocation "auto,1mb" >"$tmp/out" 2>&1
check "tiny budget fails" test $? -eq 1
check "tiny budget says how much is needed" has "$tmp/out" "needs .* MB"
"$VDIFF" plan --model "$M" --gpus 1gb --budget 1mb >"$tmp/out" 2>&1
check "budget below a resident model fails" test $? -eq 1
"$VDIFF" plan --model "$M" --gpus 1gb --allocation "cuda:0,2xb" >"$tmp/out" 2>&1
check "a bad allocation is a usage error" test $? -ne 0
"$VDIFF" plan --model "$M" --gpus 1gb --width 100 >"$tmp/out" 2>&1
check "a bad size fails" test $? -eq 2

# this machine: a CUDA build with a GPU plans and measures; otherwise the
# message says how to describe a machine
if "$VDIFF" plan --model "$M" --allocation "cuda:0,2mb;cpu,*" >"$tmp/out" 2>&1; then
    check "measured plan has a prediction" has "$tmp/out" "one step"
else
    check "without a GPU: how to plan for another machine" has "$tmp/out" "--gpus"
fi

[ $fail -eq 0 ] && echo "test_plan_cli: all checks passed"
exit $fail

#!/usr/bin/env bash
# vdiff t5 and vdiff encode-prompt against the PyTorch reference's umT5
# goldens (tests/data/golden/README.md, "umT5 cases"):
#   vdiff t5 on cases 1–4 as given, and case 2 padded to 512 / case 1 run
#   with its mask: relative L2 ≤ 1e-4 (fp32 math; we measure about 3e-7);
#   encode-prompt --output equals vdiff t5 on the same ids padded to 512
#   (relative L2 ≤ 1e-5) and prints the ids tokenize --clean gives;
#   errors: a non-T5 model, an id outside the vocabulary, a model without a
#   tokenizer, missing options (exit 1 for failures, 2 for usage).
set -u
: "${VDIFF:?}" "${COMPARE:?}" "${GOLDEN:?}" "${VD_SOURCE_ROOT:?}"
tok=$VD_SOURCE_ROOT/tests/data/tokenizer/vdiff-small.model
tiny=$GOLDEN/umt5_tiny_f32.safetensors
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail=0
run() { "$@" || { echo "FAILED: $*"; fail=1; }; }
# expect CODE PATTERN CMD...: exit status CODE and PATTERN in stderr
expect() {
  local code=$1 pat=$2
  shift 2
  "$@" >"$tmp/out" 2>"$tmp/err"
  local rc=$?
  if [ $rc -ne "$code" ] || ! grep -q -- "$pat" "$tmp/err"; then
    echo "FAILED: $* (exit $rc, want $code and '$pat' in stderr):"
    cat "$tmp/err"
    fail=1
  fi
}

for i in 1 2 3 4; do
  echo "t5 case $i"
  run "$VDIFF" t5 --model "$tiny" --input "$GOLDEN/umt5_case${i}_in.safetensors" --output "$tmp/t5_$i.safetensors" \
    --threads 2 &&
    run "$COMPARE" "$tmp/t5_$i.safetensors" "$GOLDEN/umt5_case${i}_out.safetensors" embeddings 1e-4
done
echo "t5 case 2 padded to 512"
run "$VDIFF" t5 --model "$tiny" --input "$GOLDEN/umt5_case2_in.safetensors" --output "$tmp/t5_2p.safetensors" \
  --pad-to 512 --threads 2 &&
  run "$COMPARE" "$tmp/t5_2p.safetensors" "$GOLDEN/umt5_case1_out.safetensors" embeddings 1e-4

echo "encode-prompt"
run "$VDIFF" mkmodel --arch umt5 --preset tiny --dtype bf16 --tokenizer "$tok" -o "$tmp/umt5_tok.safetensors" \
  >/dev/null
prompt='  A red fox &amp;amp; a   hare run
through snow.  '
if "$VDIFF" encode-prompt --model "$tmp/umt5_tok.safetensors" --output "$tmp/prompt.safetensors" --threads 2 \
  "$prompt" >"$tmp/summary"; then
  want=$("$VDIFF" tokenize --tokenizer "$tok" --clean "$prompt")
  got=$(sed -n 's/^ids: *//p' "$tmp/summary")
  [ "$got" = "$want" ] || { echo "FAILED: encode-prompt ids '$got', tokenize --clean gives '$want'"; fail=1; }
  n=$(echo "$want" | wc -w)
  grep -q "^embeddings: \[$n, 64\]" "$tmp/summary" || { echo "FAILED: shape line"; cat "$tmp/summary"; fail=1; }
  for key in mean std min max; do
    grep -q "^$key: " "$tmp/summary" || { echo "FAILED: no $key line"; fail=1; }
  done
  # the reference's way: the same ids padded to 512 with the mask
  run "$VDIFF" t5 --model "$tmp/umt5_tok.safetensors" --input "$tmp/prompt.safetensors" --pad-to 512 \
    --output "$tmp/prompt_t5.safetensors" --threads 2 &&
    run "$COMPARE" "$tmp/prompt_t5.safetensors" "$tmp/prompt.safetensors" embeddings 1e-5
else
  echo "FAILED: encode-prompt"
  fail=1
fi
echo "encode-prompt, empty prompt"
run "$VDIFF" encode-prompt --model "$tmp/umt5_tok.safetensors" --threads 1 "" >"$tmp/summary"
grep -q '^ids: *1$' "$tmp/summary" || { echo "FAILED: empty prompt is not just EOS"; cat "$tmp/summary"; fail=1; }

echo "errors"
expect 1 "not a umT5" "$VDIFF" t5 --model "$GOLDEN/vae_tiny_f32.safetensors" \
  --input "$GOLDEN/umt5_case2_in.safetensors" --output "$tmp/x.safetensors"
# the prompt's ids (vocabulary 4096) do not fit the 512-row golden encoder
expect 1 "outside the encoder's vocabulary" "$VDIFF" t5 --model "$tiny" --input "$tmp/prompt.safetensors" \
  --output "$tmp/x.safetensors"
expect 1 "--tokenizer" "$VDIFF" encode-prompt --model "$tiny" "a prompt"
expect 1 "pieces" "$VDIFF" encode-prompt --model "$tiny" --tokenizer "$tok" "a prompt"
expect 1 "no 'ids' tensor" "$VDIFF" t5 --model "$tiny" --input "$GOLDEN/umt5_case1_out.safetensors" \
  --output "$tmp/x.safetensors"
expect 1 "shorter" "$VDIFF" t5 --model "$tiny" --input "$GOLDEN/umt5_case3_in.safetensors" --pad-to 100 \
  --output "$tmp/x.safetensors"
expect 2 "required" "$VDIFF" t5 --model "$tiny" --output "$tmp/x.safetensors"
expect 2 "required" "$VDIFF" encode-prompt "a prompt"
expect 2 "unknown option" "$VDIFF" t5 --bogus
[ ! -e "$tmp/x.safetensors" ] || { echo "FAILED: a failed run left an output file"; fail=1; }
for c in t5 encode-prompt tokenize; do
  "$VDIFF" $c --help | grep -q "^usage: vdiff $c" || { echo "FAILED: vdiff $c --help"; fail=1; }
done
exit $fail

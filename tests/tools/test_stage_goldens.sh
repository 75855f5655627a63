#!/usr/bin/env bash
# The command-line contract against the PyTorch reference's goldens
# (tests/data/golden, made by tests/reference/make_goldens.py):
#   vdiff dit         relative L2 ≤ 1e-4 for f32 storage, ≤ 1e-3 for bf16 and
#                     fp8-scaled storage (the reference computes on the same
#                     dequantised weights, so the error is arithmetic only)
#   vdiff vae-decode  relative L2 ≤ 1e-4
#   vdiff vae-encode  relative L2 ≤ 1e-4 (the normalised μ of a [3,5,16,24]
#                     video; the reference encodes frame 0, then 4 frames)
#   vdiff schedule    timesteps and float32 sigmas exactly
#   vdiff sample      8 steps with guidance 5, UniPC and Euler: latent and
#                     video within relative L2 1e-3 (the loop amplifies
#                     last-bit differences: a 1e-5 change of the input moves
#                     the final latent by about 2e-4; we measure about 6e-6)
set -u
: "${VDIFF:?}" "${COMPARE:?}" "${GOLDEN:?}"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail=0
run() { "$@" || { echo "FAILED: $*"; fail=1; }; }

for i in 1 2 3 4 5 6 7 8 9 10; do
  in=$GOLDEN/dit_case${i}_in.safetensors
  case $i in
    1|2|3|4) model=dit_tiny_t2v_f32; bound=1e-4 ;;
    5|6) model=dit_tiny_t2v_bf16; bound=1e-3 ;;
    7|8) model=dit_tiny_t2v_fp8_scaled; bound=1e-3 ;;
    9|10) model=dit_tiny_i2v_f32; bound=1e-4 ;;
  esac
  echo "dit case $i ($model)"
  run "$VDIFF" dit --model "$GOLDEN/$model.safetensors" --input "$in" --output "$tmp/dit$i.safetensors" --threads 2 &&
    run "$COMPARE" "$tmp/dit$i.safetensors" "$GOLDEN/dit_case${i}_out.safetensors" velocity $bound
done

for i in 1 2 3; do
  echo "vae-decode case $i"
  run "$VDIFF" vae-decode --vae "$GOLDEN/vae_tiny_f32.safetensors" --input "$GOLDEN/vae_decode_case${i}_in.safetensors" \
    --output "$tmp/vae$i.safetensors" --threads 2 &&
    run "$COMPARE" "$tmp/vae$i.safetensors" "$GOLDEN/vae_decode_case${i}_out.safetensors" video 1e-4
done

echo "vae-encode case 1"
run "$VDIFF" vae-encode --vae "$GOLDEN/vae_tiny_f32.safetensors" --input "$GOLDEN/vae_encode_case1_in.safetensors" \
  --output "$tmp/enc1.safetensors" --threads 2 &&
  run "$COMPARE" "$tmp/enc1.safetensors" "$GOLDEN/vae_encode_case1_out.safetensors" latent 1e-4

for s in "8 5" "50 5" "40 12" "20 8" "1 5" "2 3"; do
  set -- $s
  echo "schedule steps $1 shift $2"
  run "$VDIFF" schedule --steps "$1" --shift "$2" --output "$tmp/s.safetensors" &&
    run "$COMPARE" "$tmp/s.safetensors" "$GOLDEN/schedules.safetensors" \
      "timesteps:steps$1_shift$2.timesteps" 0 "sigmas:steps$1_shift$2.sigmas_f32" 0
done
for s in unipc euler; do
  echo "sample ($s)"
  run "$VDIFF" sample --model "$GOLDEN/dit_tiny_t2v_f32.safetensors" --vae "$GOLDEN/vae_tiny_f32.safetensors" \
    --input "$GOLDEN/sample_case_in.safetensors" --steps 8 --shift 5 --guidance 5 --sampler $s \
    --output "$tmp/sample_$s.safetensors" --threads 2 &&
    run "$COMPARE" "$tmp/sample_$s.safetensors" "$GOLDEN/sample_${s}_out.safetensors" latent 1e-3 video 1e-3
done
# inputs that do not fit the model: clear errors
if "$VDIFF" dit --model "$GOLDEN/dit_tiny_t2v_f32.safetensors" --input "$GOLDEN/dit_case9_in.safetensors" \
    --output "$tmp/bad.safetensors" 2>"$tmp/err"; then
  echo "FAILED: a 36-channel latent was accepted by a 16-channel DiT"; fail=1
else
  grep -q "channels" "$tmp/err" || { echo "FAILED: unclear message: $(cat "$tmp/err")"; fail=1; }
fi
if "$VDIFF" vae-decode --vae "$GOLDEN/vae_tiny_f32.safetensors" --input "$GOLDEN/dit_case9_in.safetensors" \
    --output "$tmp/bad.safetensors" 2>"$tmp/err"; then
  echo "FAILED: a 36-channel latent was decoded by a 16-channel VAE"; fail=1
else
  grep -q "channels" "$tmp/err" || { echo "FAILED: unclear message: $(cat "$tmp/err")"; fail=1; }
fi

# vae-encode inputs it cannot take: each a clear error and no output.
# mkvideo FILE F H W [nan]: a zero video [3,F,H,W] (f32 safetensors), its
# first value NaN when asked.
mkvideo() {
  local n=$((3 * $2 * $3 * $4 * 4))
  local hdr="{\"video\":{\"dtype\":\"F32\",\"shape\":[3,$2,$3,$4],\"data_offsets\":[0,$n]}}"
  while [ $((${#hdr} % 8)) -ne 0 ]; do hdr="$hdr "; done
  local len=${#hdr}
  {
    printf "$(printf '\\x%02x\\x%02x\\x%02x\\x%02x\\x00\\x00\\x00\\x00' $((len & 255)) $((len >> 8 & 255)) \
      $((len >> 16 & 255)) $((len >> 24 & 255)))"
    printf '%s' "$hdr"
    if [ "${5:-}" = nan ]; then printf '\x00\x00\xc0\x7f'; head -c $((n - 4)) /dev/zero; else head -c $n /dev/zero; fi
  } >"$1"
}
# encode_fails WHAT VAE INPUT PATTERN: vae-encode must fail with PATTERN in its message
encode_fails() {
  echo "vae-encode refuses $1"
  if "$VDIFF" vae-encode --vae "$2" --input "$3" --output "$tmp/bad.safetensors" --threads 2 2>"$tmp/err"; then
    echo "FAILED: vae-encode accepted $1"; fail=1
  else
    grep -q "$4" "$tmp/err" || { echo "FAILED: unclear message for $1: $(cat "$tmp/err")"; fail=1; }
  fi
}
vae=$GOLDEN/vae_tiny_f32.safetensors
mkvideo "$tmp/ok.safetensors" 5 16 16
run "$VDIFF" vae-encode --vae "$vae" --input "$tmp/ok.safetensors" --output "$tmp/ok_latent.safetensors" --threads 2
mkvideo "$tmp/f4.safetensors" 4 16 16
encode_fails "4 frames" "$vae" "$tmp/f4.safetensors" "4k+1 frames"
mkvideo "$tmp/h12.safetensors" 5 12 16
encode_fails "a height of 12" "$vae" "$tmp/h12.safetensors" "multiples of 8"
mkvideo "$tmp/w20.safetensors" 1 16 20
encode_fails "a width of 20" "$vae" "$tmp/w20.safetensors" "multiples of 8"
mkvideo "$tmp/nan.safetensors" 5 16 16 nan
encode_fails "a NaN" "$vae" "$tmp/nan.safetensors" "non-finite"
if "$VDIFF" mkmodel --arch wan-vae --preset tiny --no-encoder -o "$tmp/vae_dec_only.safetensors" >/dev/null; then
  encode_fails "a decoder-only VAE" "$tmp/vae_dec_only.safetensors" "$tmp/ok.safetensors" "only the VAE decoder"
  echo "vae-decode with a decoder-only VAE"
  run "$VDIFF" vae-decode --vae "$tmp/vae_dec_only.safetensors" --input "$GOLDEN/vae_decode_case1_in.safetensors" \
    --output "$tmp/dec_only_video.safetensors" --threads 2
else
  echo "FAILED: vdiff mkmodel --no-encoder"; fail=1
fi
[ -e "$tmp/bad.safetensors" ] && { echo "FAILED: an output was written after an error"; fail=1; }
exit $fail

#!/usr/bin/env bash
# Render one clip per line of a text file of prompts:
#   out/clip-001.mp4, out/clip-002.mp4, ...
# Empty lines and lines starting with '#' are skipped (they do not take a
# number).  Each clip gets the line's seed unless --seed is given, so adding
# prompts at the end does not change the earlier clips.
#
# usage: render-prompts.sh [--out DIR] [--encoder x264|libav] [--keep-going]
#                          [mp4-x264.sh options] PROMPTS.txt
#
# Example:
#   VDIFF_MODEL=wan2.1_t2v_1.3B_fp16.safetensors VDIFF_VAE=wan_2.1_vae.safetensors \
#   VDIFF_TEXT_ENCODER=umt5_xxl_fp8_e4m3fn_scaled.safetensors VDIFF_DEVICE=cuda:0 \
#       examples/render-prompts.sh --out clips --frames 33 prompts.txt
set -eu
here=$(dirname "$0")
outdir=out
encoder=x264
keep_going=0
seed=""
pass=()
file=""

while [ $# -gt 0 ]; do
    case "$1" in
    --out) outdir=$2; shift ;;
    --encoder) encoder=$2; shift ;;
    --keep-going) keep_going=1 ;;
    --seed) seed=$2; shift ;;
    -h|--help) sed -n '2,16p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    --quiet) pass+=("$1") ;;
    --*) pass+=("$1" "$2"); shift ;;
    *) file=$1 ;;
    esac
    shift
done

if [ -z "$file" ] || [ ! -r "$file" ]; then
    echo "$(basename "$0"): give a readable file of prompts, one a line" >&2
    exit 2
fi
case "$encoder" in
x264) script=$here/mp4-x264.sh ;;
libav) script=$here/mp4-libav.sh ;;
*) echo "$(basename "$0"): --encoder is x264 or libav" >&2; exit 2 ;;
esac

mkdir -p "$outdir"
n=0
failed=0
while IFS= read -r line || [ -n "$line" ]; do
    line=${line%$'\r'}
    case "$line" in ''|'#'*) continue ;; esac
    n=$((n + 1))
    out=$(printf '%s/clip-%03d.mp4' "$outdir" "$n")
    echo "[$n] $line -> $out" >&2
    if ! "$script" --quiet "${pass[@]}" --seed "${seed:-$n}" -- "$line" "$out" </dev/null >/dev/null; then
        echo "[$n] failed" >&2
        failed=$((failed + 1))
        [ $keep_going = 1 ] || exit 1
    fi
done < "$file"

echo "$n clips in $outdir ($failed failed)" >&2
[ $failed = 0 ]

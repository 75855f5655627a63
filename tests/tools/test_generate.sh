#!/usr/bin/env bash
# vdiff generate on tiny random models: an MP4 (H.264 through FFmpeg) and a
# .y4m, checked with ffprobe for codec, size and frame count; bad settings
# fail with a message and leave no file behind.  The MP4 part is skipped
# (the rest still runs) where vdiff was built without FFmpeg; the whole test
# exits 77 without ffprobe.
set -u
: "${VDIFF:?}" "${VD_SOURCE_ROOT:?}"
command -v ffprobe >/dev/null 2>&1 || { echo "SKIP: ffprobe is not installed"; exit 77; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail=0
"$VDIFF" mkmodel --arch wan21-t2v --preset tiny --dtype bf16 -o "$tmp/dit.safetensors" >/dev/null || exit 1
"$VDIFF" mkmodel --arch wan-vae --preset tiny -o "$tmp/vae.safetensors" >/dev/null || exit 1
"$VDIFF" mkmodel --arch umt5 --preset tiny --tokenizer "$VD_SOURCE_ROOT/tests/data/tokenizer/vdiff-small.model" \
    -o "$tmp/te.safetensors" >/dev/null || exit 1
gen() { "$VDIFF" generate --model "$tmp/dit.safetensors" --vae "$tmp/vae.safetensors" \
    --text-encoder "$tmp/te.safetensors" --threads 2 --steps 2 "$@"; }

# check FILE CODEC WIDTH HEIGHT FRAMES
check() {
    got=$(ffprobe -v error -select_streams v:0 -count_frames \
        -show_entries stream=codec_name,width,height,nb_read_frames -of csv=p=0 "$1")
    if [ "$got" = "$2,$3,$4,$5" ]; then echo "ok: $1: $got"; else echo "FAIL: $1: $got, expected $2,$3,$4,$5"; fail=1; fi
}

if gen --prompt "a red fox runs through snow" --width 64 --height 48 --frames 9 --quiet -o "$tmp/a.y4m"; then
    check "$tmp/a.y4m" rawvideo 64 48 9
else
    echo "FAIL: y4m output"; fail=1
fi

if gen --prompt "probe" --frames 1 --quiet -o "$tmp/probe.mp4" 2>"$tmp/err"; then
    gen --prompt "a red fox \"runs\" through snow!" --width 96 --height 64 --frames 13 -o "$tmp/b.mp4" 2>"$tmp/bar" ||
        { echo "FAIL: mp4 output"; fail=1; }
    check "$tmp/b.mp4" h264 96 64 13
    grep -q "sample" "$tmp/bar" && grep -q "decode" "$tmp/bar" || { echo "FAIL: no progress bar"; fail=1; }
elif grep -q "without FFmpeg" "$tmp/err"; then
    echo "skipped MP4: $(cat "$tmp/err")"
else
    echo "FAIL: $(cat "$tmp/err")"; fail=1
fi

# bad settings: a clear message, a non-zero exit, no output file
for bad in "--frames 8" "--width 40" "--sampler heun" "--device gpu:0" "--allocation cuda:0,2xb"; do
    # shellcheck disable=SC2086
    if gen --prompt x $bad --quiet -o "$tmp/bad.y4m" 2>"$tmp/err"; then
        echo "FAIL: '$bad' was accepted"; fail=1
    elif [ ! -s "$tmp/err" ] || [ -e "$tmp/bad.y4m" ] || [ -e "$tmp/bad.y4m.part" ]; then
        echo "FAIL: '$bad': no message, or a file was left"; fail=1
    else
        echo "ok: '$bad' -> $(head -c 160 "$tmp/err" | head -1)"
    fi
done
if gen --prompt x --quiet -o "$tmp/x.avi2" 2>"$tmp/err"; then echo "FAIL: unknown container accepted"; fail=1; fi
exit $fail

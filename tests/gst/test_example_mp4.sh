#!/usr/bin/env bash
# Runs examples/mp4-x264.sh (and mp4-libav.sh, render-prompts.sh where their
# encoders exist) on tiny random-weight models and checks the files with
# ffprobe: frame count and size.  Exits 77 (skipped) without x264enc or
# ffprobe.
set -eu

: "${VDIFF_TOOL:?VDIFF_TOOL names the vdiff program}"
examples=${VDIFF_EXAMPLES_DIR:-$(dirname "$0")/../../examples}
tokenizer=${VDIFF_TOKENIZER:-$(dirname "$0")/../data/tokenizer/vdiff-small.model}
# Sanitizer builds: gst-launch-1.0 and gst-inspect-1.0 are not instrumented,
# so our instrumented plugin needs the sanitizer runtimes loaded first.
if [ -n "${VDIFF_LD_PRELOAD:-}" ]; then
    export LD_PRELOAD=$VDIFF_LD_PRELOAD
fi

if ! gst-inspect-1.0 vdiffsrc >/dev/null 2>&1; then
    echo "vdiffsrc is not found (GST_PLUGIN_PATH=${GST_PLUGIN_PATH_1_0:-${GST_PLUGIN_PATH:-}})" >&2
    exit 1
fi
if ! gst-inspect-1.0 x264enc >/dev/null 2>&1; then
    echo "SKIP: x264enc (gst-plugins-ugly) is not installed" >&2
    exit 77
fi
if ! command -v ffprobe >/dev/null 2>&1; then
    echo "SKIP: ffprobe is not installed" >&2
    exit 77
fi

dir=$(mktemp -d "${TMPDIR:-/tmp}/vdiff-example-XXXXXX")
trap 'rm -rf "$dir"' EXIT

"$VDIFF_TOOL" mkmodel --arch wan21-t2v --preset tiny --dtype f32 -o "$dir/dit.safetensors" >/dev/null
"$VDIFF_TOOL" mkmodel --arch wan-vae --preset tiny --dtype f32 -o "$dir/vae.safetensors" >/dev/null
"$VDIFF_TOOL" mkmodel --arch umt5 --preset tiny --dtype f32 --tokenizer "$tokenizer" \
    -o "$dir/umt5.safetensors" >/dev/null

export VDIFF_MODEL=$dir/dit.safetensors VDIFF_VAE=$dir/vae.safetensors
export VDIFF_TEXT_ENCODER=$dir/umt5.safetensors
export VDIFF_STEPS=2

# check FILE FRAMES WIDTH HEIGHT
check() {
    local file=$1 frames=$2 width=$3 height=$4 got
    [ -s "$file" ] || { echo "FAIL: $file was not written" >&2; exit 1; }
    got=$(ffprobe -v error -select_streams v:0 -count_frames \
        -show_entries stream=nb_read_frames,width,height -of csv=p=0 "$file")
    if [ "$got" != "$width,$height,$frames" ]; then
        echo "FAIL: $file has width,height,frames $got; expected $width,$height,$frames" >&2
        exit 1
    fi
    echo "ok: $file $got"
}

# A prompt with the characters gst-launch's parser cares about.
prompt='a "red" fox! runs through snow, at dusk'

"$examples/mp4-x264.sh" --quiet --width 64 --height 48 --frames 5 --seed 3 \
    "$prompt" "$dir/fox x264.mp4"
check "$dir/fox x264.mp4" 5 64 48

"$examples/mp4-x264.sh" --quiet --width 96 --height 64 --frames 9 --fps 24 \
    "waves" "$dir/waves.mp4"
check "$dir/waves.mp4" 9 96 64

if gst-inspect-1.0 avenc_mpeg4 >/dev/null 2>&1; then
    "$examples/mp4-libav.sh" --quiet --width 64 --height 48 --frames 5 \
        "$prompt" "$dir/fox-libav.mp4"
    check "$dir/fox-libav.mp4" 5 64 48
else
    echo "avenc_mpeg4 (gst-libav) is not installed: mp4-libav.sh not checked"
fi

printf '%s\n' "# a comment" "a red fox" "" "the sea at night" > "$dir/prompts.txt"
"$examples/render-prompts.sh" --out "$dir/clips" --width 64 --height 48 --frames 5 \
    "$dir/prompts.txt"
check "$dir/clips/clip-001.mp4" 5 64 48
check "$dir/clips/clip-002.mp4" 5 64 48
[ ! -e "$dir/clips/clip-003.mp4" ] || { echo "FAIL: a clip for a comment line" >&2; exit 1; }

# Errors reach the shell: a missing model fails.
if VDIFF_MODEL=$dir/missing.safetensors "$examples/mp4-x264.sh" --quiet --frames 5 \
        "x" "$dir/missing.mp4" 2>/dev/null; then
    echo "FAIL: a missing model did not fail" >&2
    exit 1
fi
echo "ok: a missing model fails"

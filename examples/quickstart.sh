#!/usr/bin/env bash
# The main job on a fresh machine, in one command: install what is missing,
# build, make the small default model set if no model is given, and render a
# clip with vdiffsrc to an MP4 file.
#
#   bash examples/quickstart.sh ["PROMPT" [OUT.mp4]]
#
# Real models: set VDIFF_MODEL, VDIFF_VAE and VDIFF_TEXT_ENCODER (and
# VDIFF_DEVICE=cuda:0, VDIFF_WIDTH/HEIGHT/FRAMES ...; see
# examples/mp4-x264.sh --help).  Without them the default set is used:
# random weights in the real Wan layout (so the clip is structured noise)
# with the real SentencePiece tokenizer committed in tests/data/tokenizer.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

bash .ci/install-deps.sh
[ -f build/build.ninja ] || meson setup build
ninja -C build

prompt=${1:-"a red fox runs through fresh snow at dawn"}
out=${2:-out.mp4}
vdiff=build/engine/tools/vdiff
default_set=0
if [ -z "${VDIFF_MODEL:-}" ]; then
    default_set=1
    dir=${VDIFF_MODELS_DIR:-$root/models}
    mkdir -p "$dir"
    dit=$dir/wan-tiny-t2v.safetensors vae=$dir/wan-tiny-vae.safetensors te=$dir/umt5-tiny.safetensors
    [ -f "$dit" ] || "$vdiff" mkmodel --arch wan21-t2v --preset tiny --dtype bf16 --seed 1 -o "$dit"
    [ -f "$vae" ] || "$vdiff" mkmodel --arch wan-vae --preset tiny --dtype f32 --seed 2 -o "$vae"
    [ -f "$te" ] || "$vdiff" mkmodel --arch umt5 --preset tiny --dtype f32 --seed 3 \
        --tokenizer tests/data/tokenizer/vdiff-small.model -o "$te"
    export VDIFF_MODEL=$dit VDIFF_VAE=$vae VDIFF_TEXT_ENCODER=$te
fi

export GST_PLUGIN_PATH=$root/build/gst${GST_PLUGIN_PATH:+:$GST_PLUGIN_PATH}
bash examples/mp4-x264.sh "$prompt" "$out"

abs=$(cd "$(dirname "$out")" && pwd)/$(basename "$out")
echo
echo "Wrote $abs"
command -v ffprobe >/dev/null &&
    ffprobe -v error -select_streams v:0 -count_frames \
        -show_entries stream=codec_name,width,height,nb_read_frames,r_frame_rate -of compact=p=0 "$out"
if [ $default_set = 1 ]; then
    cat <<MSG

That clip came from the small default model set in ${dir} (random weights in
the real Wan layout, so it shows structured noise).  For real videos, download
ComfyUI's repackaged Wan files (Hugging Face: Comfy-Org/Wan_2.1_ComfyUI_repackaged,
folder split_files/):
  diffusion_models/wan2.1_t2v_1.3B_fp16.safetensors   (or a 14B / fp8 / GGUF variant)
  vae/wan_2.1_vae.safetensors
  text_encoders/umt5_xxl_fp8_e4m3fn_scaled.safetensors
and run:
  VDIFF_MODEL=wan2.1_t2v_1.3B_fp16.safetensors VDIFF_VAE=wan_2.1_vae.safetensors \\
  VDIFF_TEXT_ENCODER=umt5_xxl_fp8_e4m3fn_scaled.safetensors VDIFF_DEVICE=cuda:0 \\
  bash examples/quickstart.sh "your prompt" clip.mp4
MSG
fi

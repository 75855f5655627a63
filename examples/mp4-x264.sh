#!/usr/bin/env bash
# Generate a clip from a prompt and encode it to H.264 in MP4 with x264
# (gst-plugins-ugly).  The pipeline it runs:
#
#   gst-launch-1.0 -e -m vdiffsrc model=... vae=... text-encoder=... prompt="..." \
#       ! video/x-raw,width=832,height=480 ! videoconvert ! x264enc ! mp4mux \
#       ! filesink location=out.mp4
#
# Example:
#   examples/mp4-x264.sh --model wan2.1_t2v_1.3B_fp16.safetensors \
#       --vae wan_2.1_vae.safetensors --text-encoder umt5_xxl_fp8_e4m3fn_scaled.safetensors \
#       --device cuda:0 --width 832 --height 480 "a red fox runs through fresh snow" fox.mp4
#
# Run with --help for every option; the model paths may also come from
# VDIFF_MODEL, VDIFF_VAE and VDIFF_TEXT_ENCODER.  From a build tree, point
# GStreamer at the plugin first: export GST_PLUGIN_PATH=<builddir>/gst
set -eu
. "$(dirname "$0")/common.sh"
vdiff_parse_args "$@"

exec "${LAUNCH[@]}" "${VDIFFSRC[@]}" ! "$CAPS" ! videoconvert ! \
    x264enc ! video/x-h264,profile=high ! mp4mux ! \
    filesink location="$(gst_quote "$OUTPUT")"

#!/usr/bin/env bash
# Generate a clip from a prompt and encode it to MPEG-4 Part 2 in MP4 with
# FFmpeg's encoder through gst-libav (no x264 needed).  The pipeline it runs:
#
#   gst-launch-1.0 -e -m vdiffsrc model=... vae=... text-encoder=... prompt="..." \
#       ! video/x-raw,width=832,height=480 ! videoconvert ! avenc_mpeg4 bitrate=4000000 \
#       ! mp4mux ! filesink location=out.mp4
#
# Takes the same options as mp4-x264.sh (see --help).
set -eu
. "$(dirname "$0")/common.sh"
vdiff_parse_args "$@"

exec "${LAUNCH[@]}" "${VDIFFSRC[@]}" ! "$CAPS" ! videoconvert ! \
    avenc_mpeg4 bitrate=4000000 ! mp4mux ! \
    filesink location="$(gst_quote "$OUTPUT")"

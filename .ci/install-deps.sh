#!/usr/bin/env bash
# Install the Debian packages gst-vdiff needs, only those that are missing.
# Used by .ci/run and by the README's quickstart; needs root (or sudo) when
# something is missing.
set -euo pipefail
pkgs=(
  build-essential meson ninja-build pkg-config python3
  libcjson-dev libopenblas-dev
  # the GStreamer plugin, its tests and the MP4 examples
  libgstreamer1.0-dev libgstreamer-plugins-base1.0-dev gstreamer1.0-tools
  gstreamer1.0-plugins-base gstreamer1.0-plugins-good gstreamer1.0-plugins-ugly gstreamer1.0-libav
  # MP4 output of `vdiff generate`, and ffprobe for the tests
  libavformat-dev libavcodec-dev libavutil-dev libswscale-dev ffmpeg
)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing: ${missing[*]}"
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -q >/dev/null
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null
fi

#!/usr/bin/env bash
# Installs the Debian packages Vigil builds against, if any are missing:
# FFmpeg's libraries (video decoding through video-rs), clang for bindgen,
# the DejaVu fonts for the text in PNG plots, the ffmpeg program (the
# live-input test serves a stream on the loopback interface with it),
# Chromium (the report.html tests render the page in headless Chromium),
# Slurm and MUNGE (the fit-array test starts a private one-node cluster with
# scripts/slurm-cluster.sh), nats-server (the event-sink tests start a
# JetStream server on the loopback interface), and the Vulkan loader with
# Mesa's drivers (the `cae` plugin's GPU tests run on lavapipe, Mesa's
# software Vulkan driver, where there is no GPU).
set -euo pipefail
packages=(
  pkg-config clang libclang-dev
  libavcodec-dev libavformat-dev libavutil-dev libswscale-dev libswresample-dev libavdevice-dev libavfilter-dev
  fonts-dejavu-core ffmpeg chromium
  slurm-wlm munge nats-server
  libvulkan1 mesa-vulkan-drivers
)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing Debian packages: ${missing[*]}"
  sudo_cmd=""
  [ "$(id -u)" -ne 0 ] && sudo_cmd="sudo"
  $sudo_cmd apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
# The workspace's rust-version (Cargo.toml): the newest minimum among the
# locked dependencies, burn 0.22's (tract 0.23.9 needs 1.91).
min_rust="1.95"
if ! command -v cargo >/dev/null; then
  echo "error: cargo is not installed; install Rust $min_rust or newer (https://rustup.rs) and run this again" >&2
  exit 1
fi
have_rust="$(cargo --version | awk '{print $2}')"
if [ "$(printf '%s\n%s\n' "$min_rust" "$have_rust" | sort -V | head -n1)" != "$min_rust" ]; then
  echo "error: cargo $have_rust is too old; Vigil needs Rust $min_rust or newer (rustup update) for its locked dependencies" >&2
  exit 1
fi

#!/usr/bin/env bash
# Installs what building and testing rtfx needs on a Debian machine, skipping what is present.
# Sourced by tools/main.sh and tools/test.sh; safe to run again.
set -euo pipefail

# System libraries for nice-plug's standalone (ALSA, JACK) and editor (X11/XCB/GL), plus the
# reference tools the tests and benchmarks compare against. xvfb, x11-apps (xwd) and x11-utils
# (xwininfo) let tests/plugin_gui.rs open the plugin editor headless, xdotool clicks in it
# (tests/plugin_preset_menu.rs); qtractor provides
# qtractor_plugin_scan, a second CLAP host for tests/plugin_qtractor.rs; python3-venv lets
# tools/test.sh install pedalboard, the VST3 host of tests/plugin_vst3.rs; jackd2 runs a dummy
# JACK server for tests/plugin_standalone.rs.
DEB_PACKAGES=(
  pkg-config libasound2-dev libjack-jackd2-dev libgl-dev libx11-xcb-dev libxcb1-dev
  libxcb-dri2-0-dev libxcb-icccm4-dev libxcursor-dev libxkbcommon-dev libxcb-shape0-dev
  libxcb-xfixes0-dev
  # jackd2: JACK dummy servers for the standalone and real-time device tests.
  xvfb x11-apps x11-utils xdotool qtractor python3-venv jackd2
  # sox: the reference for tests/stats_cli.rs (sox stats) and tests/convert_cli.rs (rate -v).
  sox
  # Loaded at run time by `rtfx render`: libsoxr0 for --rate, libflac12 (libFLAC) for .flac,
  # libmp3lame0 (LAME) for .mp3, libopusenc0 for .opus.
  libsoxr0 libflac12 libmp3lame0 libopusenc0
  # ffmpeg: the independent decoder of tests/formats_cli.rs (MP3, Opus, AIFF outputs).
  ffmpeg
  # A private single-node Slurm cluster for tests/slurm.rs (started and stopped by the test).
  munge slurmctld slurmd slurm-client
)

missing=()
for p in "${DEB_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
  if [ "$(id -u)" -eq 0 ]; then
    echo "setup: installing Debian packages: ${missing[*]}" >&2
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  else
    echo "setup: missing Debian packages: ${missing[*]}" >&2
    echo "setup: run as root, or: sudo apt-get install ${missing[*]}" >&2
    exit 1
  fi
fi

if ! command -v cargo >/dev/null 2>&1; then
  echo "setup: cargo not found. rtfx needs Rust 1.95 or later: install it with rustup (https://rustup.rs)." >&2
  exit 1
fi
rust_minor=$(rustc --version | sed -E 's/^rustc 1\.([0-9]+).*/\1/')
if [ "$rust_minor" -lt 95 ]; then
  echo "setup: $(rustc --version) is too old; rtfx needs Rust 1.95 or later (rustup update stable)." >&2
  exit 1
fi

#!/usr/bin/env bash
# Every check CI runs: install what is missing, then format, lint, and all tests.
set -euo pipefail
cd "$(dirname "$0")/.."
source tools/setup.sh
# pedalboard (PyPI; JUCE's VST3 hosting) and numpy in a venv under the target directory, for
# tests/plugin_vst3.rs (which looks for it there, or takes RTFX_HOST_PYTHON).
host_venv="${CARGO_TARGET_DIR:-$PWD/target}/host-venv"
if ! "$host_venv/bin/python" -c "import pedalboard, numpy" >/dev/null 2>&1; then
  if ! command -v python3 >/dev/null 2>&1; then
    echo "setup: python3 not found; it is needed for the VST3 host test (pedalboard)." >&2
    exit 1
  fi
  echo "setup: installing pedalboard and numpy into $host_venv" >&2
  python3 -m venv "$host_venv"
  "$host_venv/bin/pip" install -q --disable-pip-version-check pedalboard numpy
fi
cargo fmt --all --check
cargo clippy --workspace --all-targets -- -D warnings
cargo test --all-targets
cargo test --doc

# The `cuda` feature, on a machine without a GPU: lint, build, the kernel's CPU emulation,
# and NVRTC (from PyPI) compiling the kernel. Device tests say they were skipped.
NVRTC_DIR="${CARGO_TARGET_DIR:-target}/nvrtc"
NVRTC_LIB="$NVRTC_DIR/nvidia/cuda_nvrtc/lib"
if [ ! -e "$NVRTC_LIB/libnvrtc.so.12" ]; then
  python3 -m pip install --quiet --disable-pip-version-check --target "$NVRTC_DIR" nvidia-cuda-nvrtc-cu12
fi
cargo clippy --all-targets --features cuda -- -D warnings
LD_LIBRARY_PATH="$(realpath "$NVRTC_LIB")${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" RTFX_REQUIRE_NVRTC=1 \
  cargo test --features cuda --lib --test gpu_cuda

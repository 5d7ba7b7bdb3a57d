#!/usr/bin/env bash
# The main job: install what is missing, build the plugin bundles (rtfx.clap, rtfx.vst3) and the
# rtfx binary in release mode, and run the demo.
set -euo pipefail
cd "$(dirname "$0")/.."
source tools/setup.sh
# Builds target/release/rtfx too; bundles land in target/bundled/ (or $CARGO_TARGET_DIR/bundled/).
cargo xtask bundle rtfx --release
target_dir="${CARGO_TARGET_DIR:-target}"
ls -d "$target_dir/bundled/rtfx.clap" "$target_dir/bundled/rtfx.vst3"
"$target_dir/release/rtfx" demo

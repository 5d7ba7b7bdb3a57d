#!/usr/bin/env bash
# The main job: install what is missing, build the plugin bundles (rtfx.clap, rtfx.vst3) and
# the rtfx binary in release mode, and render the demo file: a generated guitar-like signal
# through tools/demo/guitar-chain.toml.
set -euo pipefail
cd "$(dirname "$0")/.."
source tools/setup.sh
# Builds target/release/rtfx too; bundles land in target/bundled/ (or $CARGO_TARGET_DIR/bundled/).
cargo xtask bundle rtfx --release
target_dir="${CARGO_TARGET_DIR:-target}"
ls -d "$target_dir/bundled/rtfx.clap" "$target_dir/bundled/rtfx.vst3"
RTFX="$target_dir/release/rtfx"
mkdir -p target/demo
"$RTFX" demo --seconds 10 --write-input target/demo/guitar-dry.wav
"$RTFX" render target/demo/guitar-dry.wav target/demo/guitar-fx.wav \
    --chain tools/demo/guitar-chain.toml --tail auto --subtype pcm24 --force
"$RTFX" info target/demo/guitar-fx.wav
echo "rendered target/demo/guitar-fx.wav"

#!/usr/bin/env bash
# The main job: install what is missing, build rtfx in release mode, and render the demo
# file: a generated guitar-like signal through tools/demo/guitar-chain.toml.
set -euo pipefail
cd "$(dirname "$0")/.."
source tools/setup.sh
cargo build --release --bin rtfx
RTFX="${CARGO_TARGET_DIR:-target}/release/rtfx"
mkdir -p target/demo
"$RTFX" demo --seconds 10 --write-input target/demo/guitar-dry.wav
"$RTFX" render target/demo/guitar-dry.wav target/demo/guitar-fx.wav \
    --chain tools/demo/guitar-chain.toml --tail auto --subtype pcm24 --force
"$RTFX" info target/demo/guitar-fx.wav
echo "rendered target/demo/guitar-fx.wav"

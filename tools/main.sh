#!/usr/bin/env bash
# The main job: install what is missing, build rtfx in release mode and run the demo.
set -euo pipefail
cd "$(dirname "$0")/.."
source tools/setup.sh
cargo build --release --bin rtfx
./target/release/rtfx demo

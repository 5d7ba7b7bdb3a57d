#!/usr/bin/env bash
# Every check CI runs: install what is missing, then format, lint, and all tests.
set -euo pipefail
cd "$(dirname "$0")/.."
source tools/setup.sh
cargo fmt --all --check
cargo clippy --workspace --all-targets -- -D warnings
cargo test --all-targets
cargo test --doc

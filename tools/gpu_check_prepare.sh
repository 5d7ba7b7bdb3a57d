#!/usr/bin/env bash
# Packs what a GPU machine without Rust or network needs to run the `cuda` checks: the
# release test binaries of tests/gpu_cuda.rs and tests/plugin_offload.rs and the
# benches/gpu_latency.rs binary (built here with `--features cuda`), NVRTC 12 from PyPI, and
# tools/gpu_check_run.sh, xz-compressed into .gpu/ (about 40 MB; add `/.gpu/` to
# .git/info/exclude). Then, on the GPU machine, from the repository root:
#   bash .gpu/gpu_check_run.sh     # results in $OUT (or ./gpu-results)
set -euo pipefail
cd "$(dirname "$0")/.."
target="${CARGO_TARGET_DIR:-target}"
nvrtc="$target/nvrtc/nvidia/cuda_nvrtc/lib"
if [ ! -e "$nvrtc/libnvrtc.so.12" ]; then
  python3 -m pip install --quiet --disable-pip-version-check --target "$target/nvrtc" nvidia-cuda-nvrtc-cu12
fi
exe() { # the executable path cargo prints for a --no-run build
  grep -o '(\(.*\))' | tail -1 | tr -d '()'
}
gpu_cuda=$(cargo test --release --features cuda --test gpu_cuda --no-run 2>&1 | tee /dev/stderr | exe)
offload=$(cargo test --release --features cuda --test plugin_offload --no-run 2>&1 | tee /dev/stderr | exe)
latency=$(cargo bench --features cuda --bench gpu_latency --no-run 2>&1 | tee /dev/stderr | exe)
rm -rf .gpu && mkdir .gpu
cp "$gpu_cuda" .gpu/gpu_cuda
cp "$offload" .gpu/plugin_offload
cp "$latency" .gpu/gpu_latency
cp "$nvrtc/libnvrtc.so.12" "$nvrtc"/libnvrtc-builtins.so.12.* .gpu/
cp tools/gpu_check_run.sh .gpu/
xz -6 -T0 .gpu/gpu_cuda .gpu/plugin_offload .gpu/gpu_latency .gpu/libnvrtc*
du -sh .gpu

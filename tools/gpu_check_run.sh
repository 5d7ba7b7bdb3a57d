#!/usr/bin/env bash
# Runs the `cuda` checks that tools/gpu_check_prepare.sh packed into .gpu/, on a machine with
# an NVIDIA GPU (no Rust, no network needed): the GPU tests with RTFX_REQUIRE_GPU=1 (a missing
# device fails instead of skipping), the latency bench, and the plugin's offload tests.
set -u
cd "$(dirname "$0")"
OUT="${OUT:-$PWD/../gpu-results}"
mkdir -p "$OUT"
for f in *.xz; do xz -d -T0 "$f"; done
chmod +x gpu_cuda gpu_latency plugin_offload
export LD_LIBRARY_PATH="$PWD${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv 2>&1 | tee "$OUT/smi.txt"
RTFX_REQUIRE_GPU=1 RTFX_REQUIRE_NVRTC=1 timeout 300 ./gpu_cuda --test-threads=1 --nocapture \
  > "$OUT/gpu_cuda.txt" 2>&1
echo "gpu_cuda rc=$?" | tee -a "$OUT/gpu_cuda.txt"
tail -25 "$OUT/gpu_cuda.txt"
timeout 300 ./gpu_latency --bench > "$OUT/gpu_latency.txt" 2>&1
echo "gpu_latency rc=$?" | tee -a "$OUT/gpu_latency.txt"
cat "$OUT/gpu_latency.txt"
timeout 200 ./plugin_offload --test-threads=1 > "$OUT/plugin_offload.txt" 2>&1
echo "plugin_offload rc=$?" | tee -a "$OUT/plugin_offload.txt"
grep -E "^test |test result|panicked" "$OUT/plugin_offload.txt"

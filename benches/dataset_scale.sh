#!/usr/bin/env bash
# Rendering a dataset at scale: N one-second 16 kHz mono PCM16 clips through a randomised
# chain, from a manifest: one process with --jobs 1 and 2, and 2 and 4 local shards (one
# process each, --jobs 1), against `cp -r` of the same files. Prints wall time, items per
# second, time per item and the ratio to the copy, and how --jobs 2 compares with --jobs 1
# next to what two CPU-bound processes gain over one on this machine.
#
#   bash benches/dataset_scale.sh            # 3000 clips, 3 rounds (medians); RUNS=5 steadier
#   ITEMS=10000 RUNS=1 bash benches/dataset_scale.sh
#   WORK=/dev/shm/rtfx-scale bash benches/dataset_scale.sh   # in memory: no disk's moods
set -euo pipefail
cd "$(dirname "$0")/.."

ITEMS="${ITEMS:-3000}"
RUNS="${RUNS:-3}"
WORK="${WORK:-${TMPDIR:-/tmp}/rtfx-scale}"
cargo build --release --bin rtfx
RTFX="$(realpath "${CARGO_TARGET_DIR:-target}/release/rtfx")"

mkdir -p "$WORK"
if [ ! -f "$WORK/items.jsonl" ] || [ "$(wc -l < "$WORK/items.jsonl")" -ne "$ITEMS" ]; then
    echo "generating $ITEMS clips in $WORK/clips" >&2
    rm -rf "$WORK/clips"
    python3 - "$WORK" "$ITEMS" <<'PY'
import os, struct, sys, random
work, items = sys.argv[1], int(sys.argv[2])
os.makedirs(f"{work}/clips", exist_ok=True)
rng = random.Random(1)
with open(f"{work}/items.jsonl", "w") as manifest:
    for i in range(items):
        samples = [int(rng.gauss(0, 3000)) for _ in range(16000)]
        data = struct.pack(f"<{len(samples)}h", *[max(-32768, min(32767, s)) for s in samples])
        header = b"RIFF" + struct.pack("<I", 36 + len(data)) + b"WAVEfmt " + struct.pack(
            "<IHHIIHH", 16, 1, 1, 16000, 32000, 2, 16) + b"data" + struct.pack("<I", len(data))
        with open(f"{work}/clips/{i:06}.wav", "wb") as f:
            f.write(header + data)
        manifest.write(f'{{"input": "clips/{i:06}.wav", "output": "out/{i:06}.wav"}}\n')
PY
fi

# Items without outputs: each run writes into a folder of its own under --output-dir.
[ -f "$WORK/inputs.jsonl" ] || sed 's/, "output": "out\/[0-9]*.wav"//' "$WORK/items.jsonl" > "$WORK/inputs.jsonl"

chain=(-e 'hibutterworth:cutoff=loguniform(60,200),order=2' -e 'gain:uniform(0.5,1.0)'
       --seed 1 --subtype pcm16 -q --no-sync)
median() { python3 -c "import statistics,sys; print(statistics.median(float(x) for x in sys.argv[1:]))" "$@"; }
elapsed() { python3 -c "import sys; print(float(sys.argv[2]) - float(sys.argv[1]))" "$1" "$(date +%s.%N)"; }
# Every run writes new files into a new folder, and the last run's writeback is flushed
# first: deleting thousands of files just before creating as many makes ext4 search past
# the freed inodes on every create, which once tripled the times measured here.
fresh() { sync; mkdir -p "$WORK/runs"; mktemp -d -u "$WORK/runs/XXXXXX"; }
run_shards() {
    local n=$1 jobs=$2 out; out=$(fresh)
    local t0; t0=$(date +%s.%N)
    for ((i = 0; i < n; i++)); do
        (cd "$WORK" && "$RTFX" render --manifest inputs.jsonl --output-dir "$out" \
            --shard "$i/$n" --jobs "$jobs" "${chain[@]}") &
    done
    wait
    elapsed "$t0"
}
copy() {
    local out; out=$(fresh)
    local t0; t0=$(date +%s.%N)
    cp -r "$WORK/clips" "$out"
    elapsed "$t0"
}

ratio() { python3 -c "import sys; print(float(sys.argv[1]) / float(sys.argv[2]))" "$1" "$2"; }
# What two CPU-bound processes gain over one on this machine (shared cores, a busy host):
# the ceiling for --jobs 2. Two hashes of a cached file at once against one.
[ -f "$WORK/ceiling.bin" ] || head -c $((128 << 20)) /dev/urandom > "$WORK/ceiling.bin"
ceiling() {
    local t0 one two
    t0=$(date +%s.%N); sha256sum "$WORK/ceiling.bin" > /dev/null; one=$(elapsed "$t0")
    t0=$(date +%s.%N)
    sha256sum "$WORK/ceiling.bin" > /dev/null & sha256sum "$WORK/ceiling.bin" > /dev/null
    wait
    two=$(elapsed "$t0")
    python3 -c "import sys; print(2 * float(sys.argv[1]) / float(sys.argv[2]))" "$one" "$two"
}
speedups="" ceilings="" checks="" plains=""
# The bookkeeping alone: `--check` reads and parses every line, draws and builds every
# chain and checks every input and output path, and renders nothing.
# Everything but the DSP: the same items decoded, dithered to PCM16 and written atomically,
# with no effects (a conversion); the full run less this is the chain's cost.
no_chain() {
    local t0 out; out=$(fresh); t0=$(date +%s.%N)
    (cd "$WORK" && "$RTFX" render --manifest inputs.jsonl --output-dir "$out" --jobs 1 \
        --seed 1 --subtype pcm16 -q --no-sync)
    elapsed "$t0"
}
check_only() {
    local t0 out; out=$(fresh); t0=$(date +%s.%N)
    (cd "$WORK" && "$RTFX" render --manifest inputs.jsonl --output-dir "$out" --jobs 1 \
        "${chain[@]}" --check > /dev/null 2>&1)
    elapsed "$t0"
}

if [ -d "$WORK/runs" ]; then
    rm -rf "$WORK/runs"
    echo "waiting 60 s for the deleted outputs of an earlier run to age out" >&2
    sleep 60
fi
echo "$ITEMS one-second 16 kHz mono PCM16 clips, randomised high-pass + gain, $RUNS rounds, $(nproc) CPUs"
echo "in $WORK ($(df --output=fstype "$WORK" | tail -1))"
# Rounds interleave the runs, so that each meets the same state of the disk; the median of
# each run's ratio to the copy in the same round is printed beside its median time.
labels=(copy "1 1" "1 2" "2 1" "4 1")
declare -A times ratios
for ((r = 0; r < RUNS; r++)); do
    copy_t=$(copy)
    for label in "${labels[@]}"; do
        if [ "$label" = copy ]; then t=$copy_t; else t=$(run_shards $label); fi
        times[$label]+="$t "
        ratios[$label]+="$(python3 -c "import sys; print(float(sys.argv[1]) / float(sys.argv[2]))" "$t" "$copy_t") "
    done
    speedups+="$(ratio "$(echo ${times["1 1"]} | awk '{print $NF}')" "$(echo ${times["1 2"]} | awk '{print $NF}')") "
    ceilings+="$(ceiling) "
    checks+="$(check_only) "
    plains+="$(no_chain) "
done
printf "%-30s %10s %12s %14s %12s\n" "run" "wall s" "items/s" "ms per item" "× cp -r"
for label in "${labels[@]}"; do
    t=$(median ${times[$label]})
    x=$(median ${ratios[$label]})
    set -- $label
    name=$([ "$label" = copy ] && echo "cp -r" || echo "$1 shard(s), --jobs $2 each")
    python3 -c "import sys; t=float(sys.argv[2]); n=int(sys.argv[3]); print(f'{sys.argv[1]:<30} {t:>10.3f} {n/t:>12.0f} {1000*t/n:>14.3f} {float(sys.argv[4]):>12.2f}')" "$name" "$t" "$ITEMS" "$x"
done
echo "--jobs 2 against --jobs 1: $(median $speedups | xargs printf '%.2f')x (median of each round's ratio)"
echo "two CPU-bound processes against one on this machine: $(median $ceilings | xargs printf '%.2f')x (sha256sum; the ceiling for the line above)"
check_t=$(median $checks)
python3 -c "import sys; c, t, n = float(sys.argv[1]), float(sys.argv[2]), int(sys.argv[3]); print(f'bookkeeping (--check alone, --jobs 1: lines parsed, chains drawn and built, paths checked): {c:.3f} s, {1e6 * c / n:.1f} us per item, {100 * c / t:.0f} % of --jobs 1')" "$check_t" "$(median ${times["1 1"]})" "$ITEMS"
python3 -c "import sys; p, t, n = float(sys.argv[1]), float(sys.argv[2]), int(sys.argv[3]); print(f'without the chain (--jobs 1, decode, dither to PCM16, atomic write): {p:.3f} s, {1e6 * p / n:.1f} us per item; the chain: {1e6 * (t - p) / n:.1f} us per item, {100 * (t - p) / t:.0f} % of --jobs 1')" "$(median $plains)" "$(median ${times["1 1"]})" "$ITEMS"
starts=""
for ((i = 0; i < 20; i++)); do t0=$(date +%s.%N); "$RTFX" --version > /dev/null; starts+="$(elapsed "$t0") "; done
echo "process start and exit (rtfx --version, median of 20): $(median $starts | xargs printf '%.4f') s"
# One shard's memory.
out=$(fresh)
( cd "$WORK" && /usr/bin/time -f "peak RSS of one shard: %M KB" "$RTFX" render --manifest inputs.jsonl --output-dir "$out" --jobs 1 "${chain[@]}" ) 2>&1 | tail -1
rm -rf "$WORK/runs"

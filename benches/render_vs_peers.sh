#!/usr/bin/env bash
# Side-by-side speed of `rtfx render`, sox and ffmpeg on the same chain and file.
#
#   bash benches/render_vs_peers.sh            # 10-minute stereo 48 kHz float WAV, 5 runs each
#   MINUTES=60 RUNS=3 bash benches/render_vs_peers.sh   # the 1-hour file (peak RSS check)
#
# Prints the median wall time, x real time, peak RSS and the peer/rtfx ratios for
#   1. high-pass 80 Hz order 2, low-pass 8 kHz order 4, gain 1.5
#   2. the same plus reverb (sox's `reverb 50`; ffmpeg has no comparable reverb)
#   3. the filters into 24-bit FLAC (rtfx, sox; sizes printed after the table)
#   4. sample-rate conversion alone, 44.1 -> 48 kHz and 48 -> 16 kHz, against sox's `rate -v`
#      and `rate -h` (then benches/resample_quality.py measures the three's quality)
#   5. Spotify's pedalboard (PyPI) as a peer: the filter chain through a streamed AudioFile
#      loop, and a dataset batch of 500 clips (4 s mono 16 kHz PCM16, filters + reverb:
#      `rtfx render --jobs 2` against one Python process looping over pedalboard)
# Every tool writes 32-bit float WAV. By default rtfx fsyncs its output before renaming it
# into place (sox and ffmpeg do not), so that row includes getting the file onto the disk;
# the "rtfx-ns" row (--no-sync) is the like-for-like comparison.
set -euo pipefail
cd "$(dirname "$0")/.."

MINUTES="${MINUTES:-10}"
RUNS="${RUNS:-5}"
WORK="${WORK:-${TMPDIR:-/tmp}/rtfx-bench}"

need=()
command -v sox >/dev/null || need+=(sox)
command -v ffmpeg >/dev/null || need+=(ffmpeg)
[ -x /usr/bin/time ] || need+=(time)
if [ "${#need[@]}" -gt 0 ]; then
    if [ "$(id -u)" = 0 ]; then
        apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}"
    else
        echo "install ${need[*]} first (sudo apt-get install ${need[*]})" >&2
        exit 1
    fi
fi

cargo build --release --bin rtfx
RTFX="${CARGO_TARGET_DIR:-target}/release/rtfx"

mkdir -p "$WORK"
IN="$WORK/in-${MINUTES}min.wav"
if [ ! -f "$IN" ]; then
    echo "generating $IN ($MINUTES minutes of stereo pink noise, 48 kHz float)" >&2
    sox -n -r 48000 -c 2 -e floating-point -b 32 "$IN" synth "$((MINUTES * 60))" pinknoise gain -6
fi

IN44="$WORK/in-${MINUTES}min-44k.wav"
if [ ! -f "$IN44" ]; then
    echo "generating $IN44 (the same at 44.1 kHz)" >&2
    sox -n -r 44100 -c 2 -e floating-point -b 32 "$IN44" synth "$((MINUTES * 60))" pinknoise gain -6
fi

python3 - "$RTFX" "$IN" "$WORK" "$RUNS" "$MINUTES" "$IN44" <<'PY'
import os, statistics, subprocess, sys, time

rtfx, src, work, runs, minutes = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5])
src44 = sys.argv[6]
audio_s = minutes * 60.0
out = os.path.join(work, "out.wav")
flac_out = os.path.join(work, "out.flac")
flac_sizes = {}

filters_rtfx = ["-e", "hibutterworth:80,order=2", "-e", "lobutterworth:8000,order=4", "-e", "gain:1.5"]
filters_sox = ["highpass", "80", "0.7071q", "lowpass", "8000", "0.5412q", "lowpass", "8000", "1.3066q", "vol", "1.5"]
filters_ff = "highpass=f=80:width_type=q:w=0.7071,lowpass=f=8000:width_type=q:w=0.5412,lowpass=f=8000:width_type=q:w=1.3066,volume=1.5"

cases = {
    "filters+gain": {
        "rtfx": [rtfx, "render", src, out, "--force", "-q", "--no-sync"] + filters_rtfx,
        "rtfx-fs": [rtfx, "render", src, out, "--force", "-q"] + filters_rtfx,
        "sox": ["sox", "-V1", src, out] + filters_sox,
        "ffmpeg": ["ffmpeg", "-v", "error", "-y", "-i", src, "-af", filters_ff, "-c:a", "pcm_f32le", out],
    },
    "filters+gain+reverb": {
        "rtfx": [rtfx, "render", src, out, "--force", "-q", "--no-sync"] + filters_rtfx + ["-e", "reverb:room_size=0.5"],
        "rtfx-fs": [rtfx, "render", src, out, "--force", "-q"] + filters_rtfx + ["-e", "reverb:room_size=0.5"],
        "sox": ["sox", "-V1", src, out] + filters_sox + ["reverb", "50"],
    },
    "filters -> FLAC 24": {
        "rtfx": [rtfx, "render", src, flac_out, "--force", "-q", "--no-sync", "--subtype", "pcm24"] + filters_rtfx,
        "sox": ["sox", "-V1", src, "-b", "24", flac_out] + filters_sox,
    },
    "44.1k->48k": {
        "rtfx": [rtfx, "render", src44, out, "--force", "-q", "--no-sync", "--rate", "48000"],
        "sox -v": ["sox", "-V1", src44, out, "rate", "-v", "48000"],
        "sox -h": ["sox", "-V1", src44, out, "rate", "-h", "48000"],
    },
    "48k->16k": {
        "rtfx": [rtfx, "render", src, out, "--force", "-q", "--no-sync", "--rate", "16000"],
        "sox -v": ["sox", "-V1", src, out, "rate", "-v", "16000"],
        "sox -h": ["sox", "-V1", src, out, "rate", "-h", "16000"],
    },
    "copy (cp)": {"cp": ["cp", src, out]},
}

def run(cmd):
    """Wall seconds and peak RSS (MiB) of one run (RSS from GNU time: a fork of this Python
    process would report Python's own size)."""
    for stale in (out, flac_out):
        if os.path.exists(stale):
            os.remove(stale)
    t0 = time.perf_counter()
    p = subprocess.run(["/usr/bin/time", "-f", "RSS_KB %M"] + cmd, stdout=subprocess.DEVNULL,
                       stderr=subprocess.PIPE)
    wall = time.perf_counter() - t0
    err = p.stderr.decode(errors="replace")
    if p.returncode != 0:
        sys.exit(f"{cmd[0]} failed: {err}")
    rss = [l for l in err.splitlines() if l.startswith("RSS_KB ")][-1]
    return wall, int(rss.split()[1]) / 1024.0

print(f"{minutes}-minute stereo 48 kHz float WAV, median of {runs} runs, {os.cpu_count()} CPUs")
print("rtfx = rtfx render --no-sync; rtfx-fs = rtfx render (fsync before rename)")
print(f"{'chain':<22}{'tool':<8}{'median s':>10}{'x real time':>13}{'peak RSS MiB':>14}{'tool / rtfx':>13}")
for case, tools in cases.items():
    medians = {}
    for tool, cmd in tools.items():
        walls, rss = [], []
        run(cmd)  # warm the page cache and the binary
        for _ in range(runs):
            w, r = run(cmd)
            walls.append(w)
            rss.append(r)
        medians[tool] = statistics.median(walls)
        if os.path.exists(flac_out):
            flac_sizes[tool] = os.path.getsize(flac_out)
        ratio = medians[tool] / medians["rtfx"] if "rtfx" in medians else float("nan")
        ratio_s = f"{ratio:.2f}x" if "rtfx" in medians else "-"
        print(f"{case:<22}{tool:<8}{medians[tool]:>10.3f}{audio_s / medians[tool]:>13.0f}{max(rss):>14.1f}{ratio_s:>13}")
if flac_sizes:
    print("FLAC sizes: " + ", ".join(f"{t} {b / 1e6:.2f} MB" for t, b in flac_sizes.items())
          + (f" (rtfx / sox = {flac_sizes['rtfx'] / flac_sizes['sox']:.4f})" if {"rtfx", "sox"} <= flac_sizes.keys() else ""))
for stale in (out, flac_out):
    if os.path.exists(stale):
        os.remove(stale)
PY

python3 -c "import numpy, scipy" 2>/dev/null || python3 -m pip install -q numpy scipy
python3 benches/resample_quality.py "$RTFX"

# pedalboard in a venv (the one tools/test.sh makes, else one of our own).
VENV="${CARGO_TARGET_DIR:-target}/host-venv"
if ! "$VENV/bin/python" -c "import pedalboard, numpy" >/dev/null 2>&1; then
    VENV="$WORK/venv"
    [ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"
    "$VENV/bin/pip" install -q --disable-pip-version-check pedalboard numpy
fi
"$VENV/bin/python" - "$RTFX" "$IN" "$WORK" "$RUNS" "$MINUTES" <<'PY'
import os, shutil, statistics, subprocess, sys, time
import numpy as np
import pedalboard
from pedalboard import Gain, HighpassFilter, LowpassFilter, Pedalboard, PeakFilter, Reverb
from pedalboard.io import AudioFile

rtfx, src, work, runs, minutes = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5])
out = os.path.join(work, "pb-out.wav")

def timed(fn):
    fn()  # warm-up
    walls = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        walls.append(time.perf_counter() - t0)
    return statistics.median(walls)

def run(cmd):
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

# 1. The filter chain at three biquad sections each. pedalboard has no second-order high- or
# low-pass (its HighpassFilter and LowpassFilter are first order), so three of its biquad
# filters (PeakFilter) stand in for the same work.
board = Pedalboard([PeakFilter(80, 3, 0.7071), PeakFilter(8000, -3, 0.5412),
                    PeakFilter(8000, -3, 1.3066), Gain(3.52)])
def pedalboard_stream():
    with AudioFile(src) as f, AudioFile(out, "w", f.samplerate, f.num_channels, bit_depth=32) as o:
        while f.tell() < f.frames:
            o.write(board(f.read(65536), f.samplerate, reset=False))
def rtfx_filters():
    run([rtfx, "render", src, out, "--force", "-q", "--no-sync",
         "-e", "hibutterworth:80,order=2", "-e", "lobutterworth:8000,order=4", "-e", "gain:1.5"])
t_rtfx, t_pb = timed(rtfx_filters), timed(pedalboard_stream)
print(f"\npedalboard {pedalboard.__version__}, {minutes}-minute stereo 48 kHz float WAV, median of {runs}")
print(f"filters (3 biquads)    rtfx {t_rtfx:.3f} s   pedalboard {t_pb:.3f} s   pedalboard / rtfx {t_pb / t_rtfx:.2f}x")

# 2. The dataset batch: 500 clips of 4 s mono 16 kHz PCM16, filters + reverb.
clips = os.path.join(work, "clips")
if not os.path.isdir(clips):
    os.makedirs(clips)
    rng = np.random.default_rng(7)
    for i in range(500):
        x = (rng.standard_normal((1, 64000)) * 0.1).astype(np.float32)
        with AudioFile(os.path.join(clips, f"clip{i:03}.wav"), "w", 16000, 1, bit_depth=16) as o:
            o.write(x)
rendered = os.path.join(work, "clips-out")
names = sorted(os.listdir(clips))
batch_board = Pedalboard([HighpassFilter(80), LowpassFilter(6000), Reverb(room_size=0.5)])
def pedalboard_batch():
    shutil.rmtree(rendered, ignore_errors=True)
    os.makedirs(rendered)
    for name in names:
        with AudioFile(os.path.join(clips, name)) as f:
            x, rate = f.read(f.frames), f.samplerate
        with AudioFile(os.path.join(rendered, name), "w", rate, 1, bit_depth=16) as o:
            o.write(batch_board(x, rate))
def rtfx_batch():
    shutil.rmtree(rendered, ignore_errors=True)
    run([rtfx, "render", os.path.join(clips, "*.wav"), "-O", rendered, "--jobs", "2", "-q",
         "--no-sync", "--subtype", "pcm16", "-e", "hibutterworth:80", "-e", "lobutterworth:6000",
         "-e", "reverb:room_size=0.5"])
t_rtfx, t_pb = timed(rtfx_batch), timed(pedalboard_batch)
print(f"500 clips, --jobs 2    rtfx {t_rtfx:.3f} s   pedalboard {t_pb:.3f} s   pedalboard / rtfx {t_pb / t_rtfx:.2f}x")
PY

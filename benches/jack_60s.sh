#!/usr/bin/env bash
# 60 s of `rtfx live` on a JACK dummy server at 64 frames (48 kHz, 2 in / 2 out, the guitar
# chain with reverb): prints the processor's statistics and the xruns jackd logged, and exits 1
# when there was any xrun. Needs jackd (Debian jackd2) and a release build:
#   cargo build --release && bash benches/jack_60s.sh
# SECONDS_TO_RUN=… changes the length; JACKD_FLAGS="--no-realtime" where RT scheduling is refused.
set -euo pipefail
cd "$(dirname "$0")/.."
rtfx="${CARGO_TARGET_DIR:-target}/release/rtfx"
seconds="${SECONDS_TO_RUN:-60}"
name="rtfx-bench-$$"
log="$(mktemp)"
stats="$(mktemp)"
export JACK_DEFAULT_SERVER="$name"
# shellcheck disable=SC2086
jackd -n "$name" -p 16 ${JACKD_FLAGS:--R -P 80} -d dummy -r 48000 -p 64 >"$log" 2>&1 &
jack=$!
trap 'kill -TERM $jack 2>/dev/null || true; wait $jack 2>/dev/null || true; rm -f "$log" "$stats"' EXIT
sleep 2
echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
"$rtfx" live --host jack --buffer 64 --duration "$seconds" --quiet --stats-json "$stats" \
  -e hibutterworth:80,order=2 -e lobutterworth:8000,order=4 -e gain:1.5 -e reverb:room_size=0.3
kill -TERM $jack; wait $jack 2>/dev/null || true
jack_xruns=$(grep -ci xrun "$log" || true)
python3 - "$stats" "$jack_xruns" "$seconds" <<'PY'
import json, sys
s = json.load(open(sys.argv[1]))
jack_xruns, seconds = int(sys.argv[2]), float(sys.argv[3])
print(f"callbacks {s['callback_count']} (expected {int(seconds * 750)}), "
      f"callback median/p99 {s['median']*1000:.1f}/{s['p99']*1000:.1f} µs, "
      f"DSP median/p99/max {s['dsp_median']*1000:.1f}/{s['dsp_p99']*1000:.1f}/{s['dsp_max']*1000:.1f} µs, "
      f"xruns: processor {s['xrun_count']} (input overflow {s['input_overflow_count']}, "
      f"output underflow {s['output_underflow_count']}, backend {s['backend_xrun_count']}), jackd {jack_xruns}")
sys.exit(1 if s['xrun_count'] or jack_xruns else 0)
PY

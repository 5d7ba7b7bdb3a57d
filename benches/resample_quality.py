#!/usr/bin/env python3
"""Quality of sample-rate conversion: `rtfx render --rate` against sox's `rate -v` and `rate -h`.

    python3 benches/resample_quality.py [path/to/rtfx]      (needs numpy, scipy and sox)

For 44.1 -> 48 kHz and 48 -> 16 kHz, with 1-second mono tones (amplitude 0.5) in 32-bit float:
  passband  the largest gain error, in dB, of tones from 0.01 to 0.9 of the lower Nyquist
            frequency (least-squares sine fit over the middle half of the output);
  residual  the largest RMS of what is not the tone (images, aliases, noise), in dB of the tone;
  alias     (downsampling) the largest output RMS of tones from 1.05 to 2.9 times the new Nyquist
            frequency, in dB of the input tone;
  phase     the largest phase error of the fitted tones against the ideal output (sample n at
            time n / rate), in radians: 0 means output aligned with input;
  length    output frames minus round(frames x out / in), over all tones.
"""
import os, subprocess, sys, tempfile
import numpy as np
from scipy.io import wavfile

RTFX = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.environ.get("CARGO_TARGET_DIR", "target"), "release", "rtfx")
WORK = tempfile.mkdtemp(prefix="rtfx-rq-")
IN, OUT = os.path.join(WORK, "in.wav"), os.path.join(WORK, "out.wav")

TOOLS = {
    "rtfx": lambda rate: [RTFX, "render", IN, OUT, "--rate", str(rate), "-f", "-q", "--no-sync"],
    "sox -v": lambda rate: ["sox", IN, "-e", "floating-point", OUT, "rate", "-v", str(rate)],
    "sox -h": lambda rate: ["sox", IN, "-e", "floating-point", OUT, "rate", "-h", str(rate)],
}

def convert(tool, rin, rout, x):
    wavfile.write(IN, rin, x.astype(np.float32))
    if os.path.exists(OUT):
        os.remove(OUT)
    subprocess.run(TOOLS[tool](rout), check=True, stderr=subprocess.DEVNULL)
    return wavfile.read(OUT)[1].astype(np.float64)

def tone(rin, f):
    return 0.5 * np.sin(2 * np.pi * f * np.arange(rin) / rin)

def db(rms):
    return 20 * np.log10(rms / (0.5 / np.sqrt(2)) + 1e-30)

def measure(tool, rin, rout):
    nyq = min(rin, rout) / 2
    gain_err, residual, phase, lengths = 0.0, -999.0, 0.0, set()
    for frac in [0.01, 0.1, 0.3, 0.5, 0.7, 0.8, 0.85, 0.9]:
        f = frac * nyq
        y = convert(tool, rin, rout, tone(rin, f))
        lengths.add(len(y) - round(rin * rout / rin))
        a, b = len(y) // 4, 3 * len(y) // 4
        t = np.arange(a, b) / rout
        basis = np.stack([np.sin(2 * np.pi * f * t), np.cos(2 * np.pi * f * t)], 1)
        coef, *_ = np.linalg.lstsq(basis, y[a:b], rcond=None)
        gain_err = max(gain_err, abs(20 * np.log10(np.hypot(*coef) / 0.5)))
        phase = max(phase, abs(np.arctan2(coef[1], coef[0])))
        residual = max(residual, db(np.sqrt(np.mean((y[a:b] - basis @ coef) ** 2))))
    alias = None
    if rout < rin:
        alias = -999.0
        for frac in [1.05, 1.2, 1.5, 2.0, 2.9]:
            y = convert(tool, rin, rout, tone(rin, frac * nyq))
            y = y[len(y) // 4: 3 * len(y) // 4]
            alias = max(alias, db(np.sqrt(np.mean(y ** 2))))
    return gain_err, residual, alias, phase, sorted(lengths)

print(f"{'conversion':<16}{'tool':<8}{'passband dB':>12}{'residual dB':>13}{'alias dB':>10}{'phase rad':>11}{'length':>8}")
for rin, rout in [(44100, 48000), (48000, 16000)]:
    for tool in TOOLS:
        g, r, a, p, l = measure(tool, rin, rout)
        alias = "-" if a is None else f"{a:.0f}"
        print(f"{f'{rin} -> {rout}':<16}{tool:<8}{g:>12.4f}{r:>13.1f}{alias:>10}{p:>11.1e}{str(l):>8}")

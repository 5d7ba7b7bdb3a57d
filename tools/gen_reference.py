#!/usr/bin/env python3
"""Writes the scipy reference data for the filter-design tests (tests/filter_design.rs).

Run from the repository root:

    pip install scipy numpy && python3 tools/gen_reference.py

It writes small JSON files into tests/data/ that are committed, so CI needs neither Python nor
scipy. Re-run it only to change the grid; the output is deterministic for a given scipy version
(the version used is recorded in every file under "generator").

Files:
- iir_sos.json      scipy.signal.butter/cheby1/cheby2/ellip(N, ..., Wn=cutoff/(fs/2), btype,
                    output="sos") over a grid of families, bands, orders and cutoffs;
                    Linkwitz-Riley of order N is butter(N/2) concatenated twice (scipy has none).
                    Elliptic designs also carry "stop_edge_hz", the stopband edge implied by the
                    degree equation.
- iir_impulse.json  the first 64 samples of the impulse response of a few designs
                    (scipy.signal.sosfilt, float64).
- iir_noise.json    one seeded-noise case per family: 256 input samples and scipy's sosfilt output.
- firwin.json       scipy.signal.firwin taps for every window x (lowpass, highpass, bandpass,
                    bandstop) x a couple of tap counts.
"""

import json
import math
import os
import sys

import numpy as np
import scipy
import scipy.signal as sig
from scipy.signal._filter_design import _ellipdeg, _pow10m1

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "tests", "data")
GENERATOR = f"tools/gen_reference.py (scipy {scipy.__version__}, numpy {np.__version__})"

ORDERS = [1, 2, 3, 4, 5, 8, 12, 16]
LR_ORDERS = [2, 4, 6, 8, 12, 16]
# (cutoff_hz, sample_rate): very low at a high rate, mid-band, near Nyquist (0.45 fs).
CUTOFFS = [(20.0, 192000.0), (1000.0, 48000.0), (0.45 * 44100.0, 44100.0)]
BUTTER_EXTRA_CUTOFFS = [(5000.0, 44100.0)]
CHEBY1_RIPPLES = [0.1, 1.0]
CHEBY2_ATTENUATIONS = [0.1, 40.0]  # 0.1 dB is torchfx's default `ripple` for Chebyshev2.
ELLIP_SETTINGS = [(0.1, 40.0), (1.0, 60.0)]


def btype(band):
    return {"lowpass": "low", "highpass": "high"}[band]


def design(d):
    """scipy SOS of a design dict (family, band, order, cutoff_hz, sample_rate, params)."""
    wn = d["cutoff_hz"] / (d["sample_rate"] / 2.0)
    bt = btype(d["band"])
    fam, n = d["family"], d["order"]
    if fam == "butterworth":
        return sig.butter(n, wn, bt, output="sos")
    if fam == "chebyshev1":
        return sig.cheby1(n, d["ripple_db"], wn, bt, output="sos")
    if fam == "chebyshev2":
        return sig.cheby2(n, d["attenuation_db"], wn, bt, output="sos")
    if fam == "elliptic":
        return sig.ellip(n, d["ripple_db"], d["attenuation_db"], wn, bt, output="sos")
    if fam == "linkwitz_riley":
        half = sig.butter(n // 2, wn, bt, output="sos")
        return np.concatenate([half, half])
    raise ValueError(fam)


def elliptic_stop_edge(d):
    """Stopband edge (Hz) of a digital elliptic design: the analog edge is wp/sqrt(m)."""
    eps_sq = _pow10m1(0.1 * d["ripple_db"])
    ck1_sq = eps_sq / _pow10m1(0.1 * d["attenuation_db"])
    m = float(_ellipdeg(d["order"], ck1_sq))
    fs = d["sample_rate"]
    t = math.tan(math.pi * d["cutoff_hz"] / fs)
    t = t / math.sqrt(m) if d["band"] == "lowpass" else t * math.sqrt(m)
    return math.atan(t) * fs / math.pi


def grid():
    designs = []

    def add(family, orders, cutoffs, params):
        for p in params:
            for band in ["lowpass", "highpass"]:
                for n in orders:
                    for fc, fs in cutoffs:
                        d = {"family": family, "band": band, "order": n,
                             "cutoff_hz": fc, "sample_rate": fs}
                        d.update(p)
                        designs.append(d)

    add("butterworth", ORDERS, CUTOFFS + BUTTER_EXTRA_CUTOFFS, [{}])
    add("chebyshev1", ORDERS, CUTOFFS, [{"ripple_db": r} for r in CHEBY1_RIPPLES])
    add("chebyshev2", ORDERS, CUTOFFS, [{"attenuation_db": a} for a in CHEBY2_ATTENUATIONS])
    add("elliptic", ORDERS, CUTOFFS,
        [{"ripple_db": r, "attenuation_db": a} for r, a in ELLIP_SETTINGS])
    add("linkwitz_riley", LR_ORDERS, CUTOFFS, [{}])
    for d in designs:
        d["sos"] = design(d).tolist()
        if d["family"] == "elliptic":
            d["stop_edge_hz"] = elliptic_stop_edge(d)
    return designs


IMPULSE_DESIGNS = [
    {"family": "butterworth", "band": "lowpass", "order": 4, "cutoff_hz": 1000.0,
     "sample_rate": 48000.0},
    {"family": "butterworth", "band": "highpass", "order": 3, "cutoff_hz": 5000.0,
     "sample_rate": 44100.0},
    {"family": "chebyshev1", "band": "highpass", "order": 5, "cutoff_hz": 2000.0,
     "sample_rate": 48000.0, "ripple_db": 1.0},
    {"family": "chebyshev2", "band": "lowpass", "order": 8, "cutoff_hz": 8000.0,
     "sample_rate": 48000.0, "attenuation_db": 40.0},
    {"family": "elliptic", "band": "highpass", "order": 6, "cutoff_hz": 300.0,
     "sample_rate": 48000.0, "ripple_db": 0.5, "attenuation_db": 60.0},
    {"family": "elliptic", "band": "lowpass", "order": 7, "cutoff_hz": 12000.0,
     "sample_rate": 44100.0, "ripple_db": 0.1, "attenuation_db": 80.0},
    {"family": "linkwitz_riley", "band": "lowpass", "order": 4, "cutoff_hz": 2500.0,
     "sample_rate": 48000.0},
    {"family": "linkwitz_riley", "band": "highpass", "order": 8, "cutoff_hz": 150.0,
     "sample_rate": 48000.0},
]

NOISE_DESIGNS = [
    {"family": "butterworth", "band": "lowpass", "order": 4, "cutoff_hz": 2000.0,
     "sample_rate": 48000.0},
    {"family": "chebyshev1", "band": "highpass", "order": 6, "cutoff_hz": 500.0,
     "sample_rate": 44100.0, "ripple_db": 1.0},
    {"family": "chebyshev2", "band": "lowpass", "order": 5, "cutoff_hz": 3000.0,
     "sample_rate": 48000.0, "attenuation_db": 40.0},
    {"family": "elliptic", "band": "highpass", "order": 4, "cutoff_hz": 200.0,
     "sample_rate": 48000.0, "ripple_db": 0.5, "attenuation_db": 50.0},
    {"family": "linkwitz_riley", "band": "lowpass", "order": 8, "cutoff_hz": 1000.0,
     "sample_rate": 48000.0},
]

WINDOWS = ["hann", "hamming", "blackman", "bartlett", "barthann", "nuttall", "flattop",
           "parzen", "bohman", "boxcar", "kaiser"]
FIR_FS = 48000.0
# (kind, cutoffs_hz, pass_zero, tap counts): highpass and bandstop pass Nyquist (odd taps only).
FIR_KINDS = [
    ("lowpass", [3000.0], True, [16, 33]),
    ("highpass", [3000.0], False, [15, 33]),
    ("bandpass", [3000.0, 9000.0], False, [16, 33]),
    ("bandstop", [3000.0, 9000.0], True, [15, 33]),
]


def firwin_cases():
    cases = []
    for w in WINDOWS:
        betas = [0.5, 8.6] if w == "kaiser" else [None]
        for beta in betas:
            window = ("kaiser", beta) if w == "kaiser" else w
            for kind, cutoffs, pass_zero, taps in FIR_KINDS:
                for n in taps:
                    h = sig.firwin(n, cutoffs, window=window, pass_zero=pass_zero, fs=FIR_FS)
                    cases.append({"window": w, "kaiser_beta": beta, "kind": kind,
                                  "cutoffs_hz": cutoffs, "pass_zero": pass_zero,
                                  "sample_rate": FIR_FS, "num_taps": n, "taps": h.tolist()})
    # Multi-band and single-tap edge cases with the default window.
    for cutoffs, pass_zero, n in [([2000.0, 6000.0, 12000.0], True, 40),
                                  ([2000.0, 6000.0, 12000.0], False, 41),
                                  ([1000.0, 2000.0, 4000.0, 8000.0], False, 33),
                                  ([5000.0], True, 1)]:
        h = sig.firwin(n, cutoffs, window="hamming", pass_zero=pass_zero, fs=FIR_FS)
        cases.append({"window": "hamming", "kaiser_beta": None, "kind": "multiband",
                      "cutoffs_hz": cutoffs, "pass_zero": pass_zero, "sample_rate": FIR_FS,
                      "num_taps": n, "taps": h.tolist()})
    return cases


def write(name, payload):
    path = os.path.join(OUT, name)
    with open(path, "w") as f:
        json.dump({"generator": GENERATOR, **payload}, f, separators=(",", ":"))
        f.write("\n")
    print(f"wrote {os.path.relpath(path, ROOT)} ({os.path.getsize(path)} bytes)", file=sys.stderr)


def main():
    os.makedirs(OUT, exist_ok=True)
    write("iir_sos.json", {"designs": grid()})

    impulses = []
    x = np.zeros(64)
    x[0] = 1.0
    for d in IMPULSE_DESIGNS:
        sos = design(d)
        impulses.append({**d, "sos": sos.tolist(), "impulse": sig.sosfilt(sos, x).tolist()})
    write("iir_impulse.json", {"cases": impulses})

    rng = np.random.default_rng(20240611)
    noise = []
    for d in NOISE_DESIGNS:
        x = rng.standard_normal(256)
        sos = design(d)
        noise.append({**d, "sos": sos.tolist(), "input": x.tolist(),
                      "output": sig.sosfilt(sos, x).tolist()})
    write("iir_noise.json", {"cases": noise})

    write("firwin.json", {"cases": firwin_cases()})


if __name__ == "__main__":
    main()

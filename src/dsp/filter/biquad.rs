//! RBJ "Audio EQ Cookbook" biquads.
//!
//! Shelf and peaking gains follow RBJ: A = 10^(dB/40), so a +6 dB shelf boosts by 6 dB.
//! torchfx 0.8.0 uses A = 10^(dB/20) and so doubles every shelf and EQ gain (its
//! `ParametricEQ(gain=6)` peaks at +12 dB); rtfx deliberately does not.
//!
//! ```
//! use rtfx::dsp::filter::biquad::{design_biquad, BiquadKind};
//! use rtfx::dsp::filter::design::magnitude_db;
//!
//! let s = design_biquad(BiquadKind::Peaking, 1000.0, 1.0, 6.0, 48000.0);
//! assert!((magnitude_db(&[s], 1000.0, 48000.0) - 6.0).abs() < 1e-9);
//! ```

use super::design::{MAX_CUTOFF_RATIO, MIN_CUTOFF_RATIO, Section};

/// The RBJ biquad shapes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BiquadKind {
    /// Low-pass.
    Lowpass,
    /// High-pass.
    Highpass,
    /// Band-pass with 0 dB peak gain.
    Bandpass,
    /// Band-pass with peak gain Q.
    BandpassPeak,
    /// Notch.
    Notch,
    /// All-pass.
    Allpass,
    /// Low shelf (gain in dB).
    LowShelf,
    /// High shelf (gain in dB).
    HighShelf,
    /// Peaking EQ (gain in dB).
    Peaking,
}

/// Smallest and largest Q the designers accept; anything else is clamped into this range.
pub const Q_RANGE: (f64, f64) = (1e-3, 1e3);

/// Clamps a cutoff into (0, 0.49·fs) so that any host value gives a stable filter; NaN becomes
/// 1 kHz (or 0.25·fs at very low rates).
pub fn clamp_cutoff(cutoff_hz: f64, sample_rate: f64) -> f64 {
    let fs = if sample_rate.is_finite() && sample_rate > 0.0 {
        sample_rate
    } else {
        48000.0
    };
    let hi = MAX_CUTOFF_RATIO * fs;
    let lo = MIN_CUTOFF_RATIO * fs;
    if cutoff_hz.is_nan() {
        1000.0f64.min(0.25 * fs)
    } else {
        cutoff_hz.clamp(lo, hi)
    }
}

/// Designs one RBJ section. `gain_db` is used by the shelves and the peaking EQ only.
/// Cutoff and Q are clamped (see [`clamp_cutoff`], [`Q_RANGE`]); gain is clamped to ±120 dB.
pub fn design_biquad(
    kind: BiquadKind,
    cutoff_hz: f64,
    q: f64,
    gain_db: f64,
    sample_rate: f64,
) -> Section {
    let fs = if sample_rate.is_finite() && sample_rate > 0.0 {
        sample_rate
    } else {
        48000.0
    };
    let f0 = clamp_cutoff(cutoff_hz, fs);
    let q = if q.is_nan() {
        std::f64::consts::FRAC_1_SQRT_2
    } else {
        q.clamp(Q_RANGE.0, Q_RANGE.1)
    };
    let gain_db = if gain_db.is_nan() {
        0.0
    } else {
        gain_db.clamp(-120.0, 120.0)
    };
    let w0 = 2.0 * std::f64::consts::PI * f0 / fs;
    let (sin, cos) = w0.sin_cos();
    let alpha = sin / (2.0 * q);
    let a = 10f64.powf(gain_db / 40.0);
    let (b, den) = match kind {
        BiquadKind::Lowpass => (
            [(1.0 - cos) / 2.0, 1.0 - cos, (1.0 - cos) / 2.0],
            [1.0 + alpha, -2.0 * cos, 1.0 - alpha],
        ),
        BiquadKind::Highpass => (
            [(1.0 + cos) / 2.0, -(1.0 + cos), (1.0 + cos) / 2.0],
            [1.0 + alpha, -2.0 * cos, 1.0 - alpha],
        ),
        BiquadKind::Bandpass => ([alpha, 0.0, -alpha], [1.0 + alpha, -2.0 * cos, 1.0 - alpha]),
        BiquadKind::BandpassPeak => (
            [q * alpha, 0.0, -q * alpha],
            [1.0 + alpha, -2.0 * cos, 1.0 - alpha],
        ),
        BiquadKind::Notch => (
            [1.0, -2.0 * cos, 1.0],
            [1.0 + alpha, -2.0 * cos, 1.0 - alpha],
        ),
        BiquadKind::Allpass => (
            [1.0 - alpha, -2.0 * cos, 1.0 + alpha],
            [1.0 + alpha, -2.0 * cos, 1.0 - alpha],
        ),
        BiquadKind::Peaking => (
            [1.0 + alpha * a, -2.0 * cos, 1.0 - alpha * a],
            [1.0 + alpha / a, -2.0 * cos, 1.0 - alpha / a],
        ),
        BiquadKind::LowShelf => {
            let k = 2.0 * a.sqrt() * alpha;
            (
                [
                    a * ((a + 1.0) - (a - 1.0) * cos + k),
                    2.0 * a * ((a - 1.0) - (a + 1.0) * cos),
                    a * ((a + 1.0) - (a - 1.0) * cos - k),
                ],
                [
                    (a + 1.0) + (a - 1.0) * cos + k,
                    -2.0 * ((a - 1.0) + (a + 1.0) * cos),
                    (a + 1.0) + (a - 1.0) * cos - k,
                ],
            )
        }
        BiquadKind::HighShelf => {
            let k = 2.0 * a.sqrt() * alpha;
            (
                [
                    a * ((a + 1.0) + (a - 1.0) * cos + k),
                    -2.0 * a * ((a - 1.0) + (a + 1.0) * cos),
                    a * ((a + 1.0) + (a - 1.0) * cos - k),
                ],
                [
                    (a + 1.0) - (a - 1.0) * cos + k,
                    2.0 * ((a - 1.0) - (a + 1.0) * cos),
                    (a + 1.0) - (a - 1.0) * cos - k,
                ],
            )
        }
    };
    let a0 = den[0];
    Section {
        b: [b[0] / a0, b[1] / a0, b[2] / a0],
        a: [1.0, den[1] / a0, den[2] / a0],
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dsp::filter::design::magnitude_db;

    const FS: f64 = 48000.0;

    fn mag(s: Section, f: f64) -> f64 {
        magnitude_db(&[s], f, FS)
    }

    #[test]
    fn spec_coefficient_formulas() {
        // torchfx table: w0 = 2π f/fs, α = sin w0 / 2q, divided by a0 = 1 + α.
        let (f, q) = (1000.0, 0.707);
        let w0 = 2.0 * std::f64::consts::PI * f / FS;
        let (sn, c) = w0.sin_cos();
        let al = sn / (2.0 * q);
        let a0 = 1.0 + al;
        let s = design_biquad(BiquadKind::Lowpass, f, q, 0.0, FS);
        let want = [(1.0 - c) / 2.0 / a0, (1.0 - c) / a0, (1.0 - c) / 2.0 / a0];
        for (got, want) in s.b.iter().zip(want) {
            assert!((got - want).abs() < 1e-15);
        }
        assert!((s.a[1] + 2.0 * c / a0).abs() < 1e-15 && (s.a[2] - (1.0 - al) / a0).abs() < 1e-15);
        let s = design_biquad(BiquadKind::BandpassPeak, f, 4.0, 0.0, FS);
        assert!(
            (mag(s, f) - 20.0 * 4f64.log10()).abs() < 1e-9,
            "BPF peak gain is q"
        );
        assert!(mag(design_biquad(BiquadKind::Bandpass, f, 4.0, 0.0, FS), f).abs() < 1e-9);
    }

    #[test]
    fn shapes_have_their_textbook_responses() {
        let f = 2000.0;
        assert!(
            (mag(
                design_biquad(BiquadKind::Lowpass, f, 0.5f64.sqrt(), 0.0, FS),
                f
            ) + 3.0103)
                .abs()
                < 1e-3
        );
        assert!(
            (mag(
                design_biquad(BiquadKind::Highpass, f, 0.5f64.sqrt(), 0.0, FS),
                f
            ) + 3.0103)
                .abs()
                < 1e-3
        );
        assert!(mag(design_biquad(BiquadKind::Notch, f, 2.0, 0.0, FS), f) < -100.0);
        for probe in [20.0, 500.0, 2000.0, 9000.0, 20000.0] {
            assert!(mag(design_biquad(BiquadKind::Allpass, f, 0.7, 0.0, FS), probe).abs() < 1e-9);
        }
    }

    #[test]
    fn shelves_and_peaks_use_rbj_gain() {
        for g in [-12.0, -6.0, 3.0, 6.0, 12.0] {
            assert!(
                (mag(
                    design_biquad(BiquadKind::Peaking, 1000.0, 1.0, g, FS),
                    1000.0
                ) - g)
                    .abs()
                    < 1e-9
            );
            // Shelves reach the full gain far from the corner and half of it at the corner.
            assert!(
                (mag(
                    design_biquad(BiquadKind::LowShelf, 1000.0, 0.707, g, FS),
                    10.0
                ) - g)
                    .abs()
                    < 0.01
            );
            assert!(
                (mag(
                    design_biquad(BiquadKind::LowShelf, 1000.0, 0.707, g, FS),
                    1000.0
                ) - g / 2.0)
                    .abs()
                    < 1e-9
            );
            assert!(
                (mag(
                    design_biquad(BiquadKind::HighShelf, 1000.0, 0.707, g, FS),
                    23000.0
                ) - g)
                    .abs()
                    < 0.05
            );
            assert!(
                (mag(
                    design_biquad(BiquadKind::HighShelf, 1000.0, 0.707, g, FS),
                    1000.0
                ) - g / 2.0)
                    .abs()
                    < 1e-9
            );
        }
    }

    #[test]
    fn any_input_gives_a_stable_section() {
        for cutoff in [f64::NAN, -5.0, 0.0, 1e-9, 24000.0, 1e9, f64::INFINITY] {
            for q in [f64::NAN, -1.0, 0.0, 1e-9, 1e9] {
                for kind in [
                    BiquadKind::Lowpass,
                    BiquadKind::HighShelf,
                    BiquadKind::Peaking,
                    BiquadKind::Notch,
                ] {
                    let s = design_biquad(kind, cutoff, q, 6.0, FS);
                    assert!(
                        s.b.iter().chain(&s.a).all(|v| v.is_finite()),
                        "{kind:?} {cutoff} {q}"
                    );
                    // Stability triangle: |a2| < 1 and |a1| < 1 + a2.
                    assert!(
                        s.a[2].abs() < 1.0 && s.a[1].abs() < 1.0 + s.a[2],
                        "{kind:?} {cutoff} {q}: {s:?}"
                    );
                }
            }
        }
    }
}

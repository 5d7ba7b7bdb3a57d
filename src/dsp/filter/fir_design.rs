//! Windowed-sinc FIR design, equivalent to `scipy.signal.firwin` (with `scale=True`), without
//! heap allocation on success.
//!
//! The windows are scipy's symmetric (`sym=True`) windows, as `firwin` uses them
//! (`get_window(..., fftbins=False)`), evaluated sample by sample.

use std::f64::consts::PI;

use crate::error::{Error, Result};

/// A window for [`firwin_into`]; the names and formulas are scipy's (`scipy.signal.windows`).
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Window {
    /// `hann`: raised cosine `0.5 - 0.5·cos`.
    Hann,
    /// `hamming`: `0.54 - 0.46·cos` (firwin's and torchfx's default).
    Hamming,
    /// `blackman`: `0.42 - 0.5·cos + 0.08·cos2`.
    Blackman,
    /// `bartlett`: triangle with zero end points.
    Bartlett,
    /// `barthann`: modified Bartlett–Hann.
    Barthann,
    /// `nuttall`: minimum 4-term Blackman–Harris (Nuttall's coefficients).
    Nuttall,
    /// `flattop`: 5-term flat top.
    Flattop,
    /// `parzen`: de la Vallée Poussin (piecewise cubic).
    Parzen,
    /// `bohman`.
    Bohman,
    /// `boxcar`: rectangular (all ones).
    Boxcar,
    /// `("kaiser", β)`; torchfx maps a bare `"kaiser"` to β = 0.5
    /// ([`Window::DEFAULT_KAISER_BETA`]).
    Kaiser(f64),
}

impl Window {
    /// Window names, in the order of [`Window::from_index`] (scipy's names).
    pub const NAMES: &'static [&'static str] = &[
        "hann", "hamming", "blackman", "bartlett", "barthann", "nuttall", "flattop", "parzen",
        "bohman", "boxcar", "kaiser",
    ];

    /// The β torchfx gives a bare `"kaiser"` window.
    pub const DEFAULT_KAISER_BETA: f64 = 0.5;

    /// The window at `i` in [`Window::NAMES`]; `"kaiser"` takes `kaiser_beta`. An index past the
    /// end gives [`Window::Hamming`], firwin's default.
    pub fn from_index(i: usize, kaiser_beta: f64) -> Window {
        match i {
            0 => Window::Hann,
            1 => Window::Hamming,
            2 => Window::Blackman,
            3 => Window::Bartlett,
            4 => Window::Barthann,
            5 => Window::Nuttall,
            6 => Window::Flattop,
            7 => Window::Parzen,
            8 => Window::Bohman,
            9 => Window::Boxcar,
            10 => Window::Kaiser(kaiser_beta),
            _ => Window::Hamming,
        }
    }

    /// Index of this window in [`Window::NAMES`].
    pub fn index(&self) -> usize {
        match self {
            Window::Hann => 0,
            Window::Hamming => 1,
            Window::Blackman => 2,
            Window::Bartlett => 3,
            Window::Barthann => 4,
            Window::Nuttall => 5,
            Window::Flattop => 6,
            Window::Parzen => 7,
            Window::Bohman => 8,
            Window::Boxcar => 9,
            Window::Kaiser(_) => 10,
        }
    }

    /// scipy's name of this window.
    pub fn name(&self) -> &'static str {
        Self::NAMES[self.index()]
    }

    /// The window with the given name (ASCII case-insensitive); `"kaiser"` gets
    /// [`Window::DEFAULT_KAISER_BETA`].
    pub fn from_name(name: &str) -> Option<Window> {
        Self::NAMES
            .iter()
            .position(|n| n.eq_ignore_ascii_case(name))
            .map(|i| Window::from_index(i, Self::DEFAULT_KAISER_BETA))
    }

    /// Sample `n` of this symmetric window of length `len` (`scipy.signal.get_window(w, len,
    /// fftbins=False)[n]`); a window of length 0 or 1 is all ones.
    pub fn value(&self, n: usize, len: usize) -> f64 {
        if len <= 1 {
            return 1.0;
        }
        let nf = n as f64;
        let m = len as f64;
        match *self {
            Window::Hann => general_cosine(&[0.5, 1.0 - 0.5], n, len),
            Window::Hamming => general_cosine(&[0.54, 1.0 - 0.54], n, len),
            Window::Blackman => general_cosine(&[0.42, 0.50, 0.08], n, len),
            Window::Nuttall => {
                general_cosine(&[0.3635819, 0.4891775, 0.1365995, 0.0106411], n, len)
            }
            Window::Flattop => general_cosine(
                &[
                    0.21557895,
                    0.41663158,
                    0.277263158,
                    0.083578947,
                    0.006947368,
                ],
                n,
                len,
            ),
            Window::Bartlett => {
                if nf <= (m - 1.0) / 2.0 {
                    2.0 * nf / (m - 1.0)
                } else {
                    2.0 - 2.0 * nf / (m - 1.0)
                }
            }
            Window::Barthann => {
                let fac = (nf / (m - 1.0) - 0.5).abs();
                0.62 - 0.48 * fac + 0.38 * (2.0 * PI * fac).cos()
            }
            Window::Parzen => {
                let x = (-(m - 1.0) / 2.0 + nf).abs();
                let half = m / 2.0;
                if x <= (m - 1.0) / 4.0 {
                    let r = x / half;
                    1.0 - 6.0 * (r * r) + 6.0 * r.powf(3.0)
                } else {
                    2.0 * (1.0 - x / half).powf(3.0)
                }
            }
            Window::Bohman => {
                if n == 0 || n + 1 >= len {
                    0.0
                } else {
                    let fac = linspace(-1.0, 1.0, n, len).abs();
                    (1.0 - fac) * (PI * fac).cos() + 1.0 / PI * (PI * fac).sin()
                }
            }
            Window::Boxcar => 1.0,
            Window::Kaiser(beta) => {
                let alpha = (m - 1.0) / 2.0;
                let r = (nf - alpha) / alpha;
                bessel_i0(beta * (1.0 - r * r).sqrt()) / bessel_i0(beta)
            }
        }
    }
}

/// `np.linspace(start, stop, len)[n]`.
fn linspace(start: f64, stop: f64, n: usize, len: usize) -> f64 {
    if n + 1 == len {
        return stop;
    }
    let step = (stop - start) / (len - 1) as f64;
    n as f64 * step + start
}

/// scipy's `general_cosine` (symmetric): `Σ a_k·cos(k·x)`, `x = linspace(-π, π, len)[n]`.
fn general_cosine(a: &[f64], n: usize, len: usize) -> f64 {
    let fac = linspace(-PI, PI, n, len);
    let mut w = 0.0;
    for (k, &ak) in a.iter().enumerate() {
        w += ak * (k as f64 * fac).cos();
    }
    w
}

/// Modified Bessel function of the first kind, order 0, by its power series (all terms positive,
/// so the relative error stays near machine precision).
pub(crate) fn bessel_i0(x: f64) -> f64 {
    let q = 0.25 * x * x;
    let mut term = 1.0;
    let mut sum = 1.0;
    for k in 1..2000 {
        let kf = k as f64;
        term *= q / (kf * kf);
        sum += term;
        if term <= sum * 1e-17 {
            break;
        }
    }
    sum
}

/// `np.sinc(x) = sin(πx)/(πx)`.
pub(crate) fn sinc(x: f64) -> f64 {
    if x == 0.0 {
        1.0
    } else {
        let y = PI * x;
        y.sin() / y
    }
}

/// numpy's pairwise summation (`np.sum` of a contiguous float64 array) of `f(i)`,
/// `i in start..start + n`.
fn pairwise_sum(f: &impl Fn(usize) -> f64, start: usize, n: usize) -> f64 {
    if n < 8 {
        let mut res = 0.0;
        for i in start..start + n {
            res += f(i);
        }
        res
    } else if n <= 128 {
        let mut r = [0.0f64; 8];
        for (j, rj) in r.iter_mut().enumerate() {
            *rj = f(start + j);
        }
        let mut i = 8;
        while i < n - n % 8 {
            for (j, rj) in r.iter_mut().enumerate() {
                *rj += f(start + i + j);
            }
            i += 8;
        }
        let mut res = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]));
        while i < n {
            res += f(start + i);
            i += 1;
        }
        res
    } else {
        let mut n2 = n / 2;
        n2 -= n2 % 8;
        pairwise_sum(f, start, n2) + pairwise_sum(f, start + n2, n - n2)
    }
}

/// Checks that `num_taps` can realise a design with `bands` cutoffs and `pass_zero`: a design
/// that passes the Nyquist frequency (high-pass, band-stop) needs an odd tap count, since an
/// even-length linear-phase filter has zero response there. Depends on no sample rate, so a
/// chain checks it when it is built. Returns whether the design passes Nyquist.
///
/// # Errors
/// An even `num_taps` for a design that passes Nyquist, with the next odd count as the fix.
pub fn check_taps_for_bands(num_taps: usize, bands: usize, pass_zero: bool) -> Result<bool> {
    let pass_nyquist = bands.is_multiple_of(2) == pass_zero;
    if pass_nyquist && num_taps.is_multiple_of(2) {
        return Err(Error::invalid_parameter(
            "A filter with an even number of coefficients must have zero response at the Nyquist \
             frequency (a high-pass or band-stop needs an odd number of taps)",
            "num_taps",
            num_taps,
        )
        .with_suggestion(format!("use an odd number of taps, e.g. {}", num_taps + 1)));
    }
    Ok(pass_nyquist)
}

/// `scipy.signal.firwin(len(taps), cutoffs_hz, window=window, pass_zero=pass_zero,
/// fs=sample_rate)`: writes the windowed-sinc taps into `taps` (its length is the tap count).
///
/// `cutoffs_hz` are band edges, strictly increasing, each in `(0, fs/2)`. With `pass_zero` the
/// first band (from DC) passes, and the bands alternate from there; a band reaching Nyquist passes
/// when the number of cutoffs is even and `pass_zero` is set, or odd and it is not. The taps are
/// scaled as scipy scales them: unity gain at DC when `pass_zero`, else at Nyquist when the first
/// passband reaches it, else at the centre of the first passband.
///
/// Never allocates unless it returns an error. Errors ([`Error::InvalidParameter`]): no taps, a
/// sample rate that is not finite and positive, no cutoff, a cutoff outside `(0, fs/2)`, cutoffs
/// not strictly increasing, an even tap count with a passband at Nyquist, a Kaiser β that is not
/// finite or exceeds 700 in magnitude.
///
/// ```
/// use rtfx::dsp::filter::fir_design::{firwin_into, Window};
///
/// let mut taps = [0.0; 31];
/// firwin_into(&mut taps, &[4000.0], 48000.0, Window::Hamming, true).unwrap();
/// // Symmetric (linear phase) and unity gain at DC.
/// assert!((taps[0] - taps[30]).abs() < 1e-15);
/// assert!((taps.iter().sum::<f64>() - 1.0).abs() < 1e-12);
/// // A high-pass needs an odd tap count.
/// let mut even = [0.0; 30];
/// assert!(firwin_into(&mut even, &[4000.0], 48000.0, Window::Hamming, false).is_err());
/// ```
pub fn firwin_into(
    taps: &mut [f64],
    cutoffs_hz: &[f64],
    sample_rate: f64,
    window: Window,
    pass_zero: bool,
) -> Result<()> {
    let num_taps = taps.len();
    if num_taps == 0 {
        return Err(
            Error::invalid_parameter("num_taps must be at least 1", "num_taps", 0)
                .with_suggestion("use an odd number of taps such as 101"),
        );
    }
    if !(sample_rate.is_finite() && sample_rate > 0.0) {
        return Err(Error::invalid_parameter(
            "sample_rate must be finite and positive",
            "sample_rate",
            sample_rate,
        )
        .with_suggestion("use a common rate such as 44100 or 48000"));
    }
    if cutoffs_hz.is_empty() {
        return Err(Error::invalid_parameter(
            "At least one cutoff frequency must be given",
            "cutoff",
            "[]",
        )
        .with_suggestion("give one cutoff for a low/high-pass, two for a band-pass/stop"));
    }
    if let Window::Kaiser(beta) = window
        && !(beta.is_finite() && beta.abs() <= 700.0)
    {
        return Err(Error::invalid_parameter(
            "the Kaiser window beta must be finite and at most 700",
            "kaiser_beta",
            beta,
        )
        .with_suggestion("use a beta between 0 and 20 (0.5 is torchfx's default)"));
    }
    let nyq = 0.5 * sample_rate;
    for &c in cutoffs_hz {
        let w = c / nyq;
        if !(w > 0.0 && w < 1.0) {
            return Err(Error::invalid_parameter(
                "Invalid cutoff frequency: frequencies must be greater than 0 and less than fs/2",
                "cutoff",
                c,
            )
            .with_suggestion(format!("use a cutoff in (0, {nyq}) Hz")));
        }
    }
    for pair in cutoffs_hz.windows(2) {
        if pair[1] / nyq - pair[0] / nyq <= 0.0 {
            return Err(Error::invalid_parameter(
                "Invalid cutoff frequencies: the frequencies must be strictly increasing",
                "cutoff",
                pair[1],
            )
            .with_suggestion(format!(
                "give cutoffs above {} Hz in increasing order",
                pair[0]
            )));
        }
    }
    let pass_nyquist = check_taps_for_bands(num_taps, cutoffs_hz.len(), pass_zero)?;

    // Band edges (normalized to Nyquist), with 0 and/or 1 added so they pair into passbands.
    let lead = usize::from(pass_zero);
    let n_edges = lead + cutoffs_hz.len() + usize::from(pass_nyquist);
    let edge = |i: usize| -> f64 {
        if i < lead {
            0.0
        } else if i - lead < cutoffs_hz.len() {
            cutoffs_hz[i - lead] / nyq
        } else {
            1.0
        }
    };
    let alpha = 0.5 * (num_taps - 1) as f64;
    for (i, tap) in taps.iter_mut().enumerate() {
        let m = i as f64 - alpha;
        let mut h = 0.0;
        for band in 0..n_edges / 2 {
            let (left, right) = (edge(2 * band), edge(2 * band + 1));
            h += right * sinc(right * m);
            h -= left * sinc(left * m);
        }
        *tap = h * window.value(i, num_taps);
    }

    // Unity gain at the scale frequency of the first passband.
    let (left, right) = (edge(0), edge(1));
    let scale_frequency = if left == 0.0 {
        0.0
    } else if right == 1.0 {
        1.0
    } else {
        0.5 * (left + right)
    };
    let taps_ref: &[f64] = taps;
    let s = pairwise_sum(
        &|i| taps_ref[i] * (PI * (i as f64 - alpha) * scale_frequency).cos(),
        0,
        num_taps,
    );
    for tap in taps.iter_mut() {
        *tap /= s;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for (i, name) in Window::NAMES.iter().enumerate() {
            let w = Window::from_index(i, 3.0);
            assert_eq!(w.index(), i);
            assert_eq!(w.name(), *name);
        }
        assert_eq!(Window::from_index(10, 3.0), Window::Kaiser(3.0));
        assert_eq!(Window::from_index(99, 3.0), Window::Hamming);
        assert_eq!(Window::from_name("KAISER"), Some(Window::Kaiser(0.5)));
        assert_eq!(Window::from_name("nope"), None);
    }

    #[test]
    fn bessel_i0_matches_scipy() {
        // scipy.special.i0
        assert_eq!(bessel_i0(0.0), 1.0);
        assert!((bessel_i0(0.5) / 1.0634833707413234 - 1.0).abs() < 1e-15);
        assert!((bessel_i0(8.6) / 750.4611595631659 - 1.0).abs() < 1e-14);
    }

    #[test]
    fn windows_are_symmetric_and_peak_in_the_middle() {
        for i in 0..Window::NAMES.len() {
            let w = Window::from_index(i, 8.6);
            for len in [2usize, 3, 16, 33] {
                for n in 0..len {
                    let a = w.value(n, len);
                    let b = w.value(len - 1 - n, len);
                    assert!((a - b).abs() < 4e-15, "{w:?} {len} {n}: {a} vs {b}");
                }
                if len % 2 == 1 {
                    assert!((w.value(len / 2, len) - 1.0).abs() < 1e-12 || w == Window::Flattop);
                }
            }
            assert_eq!(w.value(0, 1), 1.0);
        }
    }

    #[test]
    fn pairwise_sum_matches_sequential_for_small_exact_inputs() {
        let f = |i: usize| i as f64;
        for n in [0usize, 1, 7, 8, 9, 128, 129, 1000] {
            let want = (n * n.saturating_sub(1) / 2) as f64;
            assert_eq!(pairwise_sum(&f, 0, n), want);
        }
    }

    #[test]
    fn errors_name_the_parameter() {
        let mut t = [0.0; 11];
        let e = firwin_into(&mut t, &[30000.0], 48000.0, Window::Hann, true).unwrap_err();
        assert_eq!(e.parameter_name(), Some("cutoff"));
        assert_eq!(e.actual_value(), Some("30000"));
        assert!(e.suggestion().is_some());
        let e = firwin_into(&mut t, &[0.0], 48000.0, Window::Hann, true).unwrap_err();
        assert_eq!(e.parameter_name(), Some("cutoff"));
        let e = firwin_into(&mut t, &[f64::NAN], 48000.0, Window::Hann, true).unwrap_err();
        assert_eq!(e.parameter_name(), Some("cutoff"));
        let e = firwin_into(&mut t, &[5000.0, 5000.0], 48000.0, Window::Hann, true).unwrap_err();
        assert_eq!(e.parameter_name(), Some("cutoff"));
        let e = firwin_into(&mut t, &[], 48000.0, Window::Hann, true).unwrap_err();
        assert_eq!(e.parameter_name(), Some("cutoff"));
        let e = firwin_into(&mut t, &[100.0], 0.0, Window::Hann, true).unwrap_err();
        assert_eq!(e.parameter_name(), Some("sample_rate"));
        let e = firwin_into(&mut [], &[100.0], 48000.0, Window::Hann, true).unwrap_err();
        assert_eq!(e.parameter_name(), Some("num_taps"));
        let mut even = [0.0; 10];
        let e = firwin_into(&mut even, &[100.0, 200.0], 48000.0, Window::Hann, true).unwrap_err();
        assert_eq!(e.parameter_name(), Some("num_taps"));
        assert!(e.is_invalid_parameter());
        let e = firwin_into(&mut t, &[100.0], 48000.0, Window::Kaiser(f64::NAN), true).unwrap_err();
        assert_eq!(e.parameter_name(), Some("kaiser_beta"));
        // Even taps are fine without a passband at Nyquist.
        firwin_into(&mut even, &[100.0], 48000.0, Window::Hann, true).unwrap();
        firwin_into(&mut even, &[100.0, 200.0], 48000.0, Window::Hann, false).unwrap();
    }

    #[test]
    fn single_tap_is_unity() {
        let mut t = [0.0; 1];
        firwin_into(&mut t, &[5000.0], 48000.0, Window::Blackman, true).unwrap();
        assert!((t[0] - 1.0).abs() < 1e-15);
    }
}

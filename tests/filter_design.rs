//! Filter design against scipy: IIR second-order sections (`butter`, `cheby1`, `cheby2`,
//! `ellip`, Linkwitz–Riley) and `firwin` taps, compared with the reference data in `tests/data/`
//! written by `tools/gen_reference.py`; plus analytic magnitude checks, clamping and the
//! no-allocation guarantee.

use std::sync::OnceLock;

use assert_no_alloc::{AllocDisabler, assert_no_alloc};
use rtfx::dsp::filter::design::{
    BandType, Family, MAX_ORDER, MAX_SECTIONS, Section, SosDesign, design_iir, magnitude_db,
    order_from_db_per_octave, response,
};
use rtfx::dsp::filter::fir_design::{Window, firwin_into};
use serde::Deserialize;

#[global_allocator]
static ALLOC: AllocDisabler = AllocDisabler;

/// Relative tolerance on the coefficients of Butterworth, Chebyshev and Linkwitz–Riley designs.
const RTOL: f64 = 1e-9;
/// Relative tolerance on the coefficients of elliptic designs.
const RTOL_ELLIPTIC: f64 = 1e-9;
/// A coefficient this small relative to the largest of its polynomial is compared absolutely.
const TINY: f64 = 1e-12;

// ---------------------------------------------------------------------------------------------
// Reference data
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Clone, Deserialize)]
struct IirRef {
    family: String,
    band: String,
    order: usize,
    cutoff_hz: f64,
    sample_rate: f64,
    ripple_db: Option<f64>,
    attenuation_db: Option<f64>,
    sos: Vec<[f64; 6]>,
    stop_edge_hz: Option<f64>,
    impulse: Option<Vec<f64>>,
    input: Option<Vec<f64>>,
    output: Option<Vec<f64>>,
}

impl IirRef {
    fn family(&self) -> Family {
        match self.family.as_str() {
            "butterworth" => Family::Butterworth,
            "chebyshev1" => Family::Chebyshev1 {
                ripple_db: self.ripple_db.unwrap(),
            },
            "chebyshev2" => Family::Chebyshev2 {
                attenuation_db: self.attenuation_db.unwrap(),
            },
            "elliptic" => Family::Elliptic {
                ripple_db: self.ripple_db.unwrap(),
                attenuation_db: self.attenuation_db.unwrap(),
            },
            "linkwitz_riley" => Family::LinkwitzRiley,
            other => panic!("unknown family {other}"),
        }
    }

    fn band(&self) -> BandType {
        match self.band.as_str() {
            "lowpass" => BandType::Lowpass,
            "highpass" => BandType::Highpass,
            other => panic!("unknown band {other}"),
        }
    }

    fn design(&self) -> SosDesign {
        design_iir(
            self.family(),
            self.band(),
            self.order,
            self.cutoff_hz,
            self.sample_rate,
        )
    }

    fn label(&self) -> String {
        format!(
            "{} {} N={} fc={} fs={} rp={:?} rs={:?}",
            self.family,
            self.band,
            self.order,
            self.cutoff_hz,
            self.sample_rate,
            self.ripple_db,
            self.attenuation_db
        )
    }
}

#[derive(Debug, Deserialize)]
struct IirFile {
    #[serde(alias = "cases")]
    designs: Vec<IirRef>,
}

#[derive(Debug, Deserialize)]
struct FirRef {
    window: String,
    kaiser_beta: Option<f64>,
    kind: String,
    cutoffs_hz: Vec<f64>,
    pass_zero: bool,
    sample_rate: f64,
    num_taps: usize,
    taps: Vec<f64>,
}

#[derive(Debug, Deserialize)]
struct FirFile {
    cases: Vec<FirRef>,
}

fn load<T: for<'de> Deserialize<'de>>(name: &str) -> T {
    let path = format!("{}/tests/data/{name}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn sos_refs() -> &'static [IirRef] {
    static DATA: OnceLock<IirFile> = OnceLock::new();
    &DATA.get_or_init(|| load("iir_sos.json")).designs
}

fn impulse_refs() -> &'static [IirRef] {
    static DATA: OnceLock<IirFile> = OnceLock::new();
    &DATA.get_or_init(|| load("iir_impulse.json")).designs
}

fn noise_refs() -> &'static [IirRef] {
    static DATA: OnceLock<IirFile> = OnceLock::new();
    &DATA.get_or_init(|| load("iir_noise.json")).designs
}

fn fir_refs() -> &'static [FirRef] {
    static DATA: OnceLock<FirFile> = OnceLock::new();
    &DATA.get_or_init(|| load("firwin.json")).cases
}

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

/// A plain float64 Direct-Form-I cascade (torchfx's recurrence), for impulse and noise tests.
fn run_df1(sections: &[Section], x: &[f64]) -> Vec<f64> {
    let mut state = vec![[0.0f64; 4]; sections.len()];
    x.iter()
        .map(|&x0| {
            let mut v = x0;
            for (s, st) in sections.iter().zip(state.iter_mut()) {
                let [x1, x2, y1, y2] = *st;
                let y = s.b[0] * v + s.b[1] * x1 + s.b[2] * x2 - s.a[1] * y1 - s.a[2] * y2;
                *st = [v, x1, y, y1];
                v = y;
            }
            v
        })
        .collect()
}

/// Largest pole radius of a section, computed stably (complex pairs: `sqrt(a2)`).
fn pole_radius(s: &Section) -> f64 {
    let (a1, a2) = (s.a[1], s.a[2]);
    let disc = a1 * a1 - 4.0 * a2;
    if disc < 0.0 {
        return a2.sqrt();
    }
    if a1 == 0.0 && a2 == 0.0 {
        return 0.0;
    }
    // q = -(a1 + sign(a1)·sqrt(disc))/2; roots q and a2/q.
    let q = -0.5 * (a1 + a1.signum() * disc.sqrt());
    if q == 0.0 {
        return disc.sqrt() / 2.0;
    }
    q.abs().max((a2 / q).abs())
}

fn assert_finite_and_stable(d: &SosDesign, what: &str) {
    assert!(!d.is_empty(), "{what}: empty design");
    assert!(d.len() <= MAX_SECTIONS, "{what}: {} sections", d.len());
    for (i, s) in d.as_slice().iter().enumerate() {
        assert_eq!(s.a[0], 1.0, "{what}: section {i} a0");
        assert!(
            s.b.iter().chain(&s.a).all(|c| c.is_finite()),
            "{what}: section {i} not finite: {s:?}"
        );
        let r = pole_radius(s);
        assert!(r < 1.0, "{what}: section {i} pole radius {r} ({s:?})");
    }
}

/// Per-family worst errors: (relative error of non-tiny coefficients, error relative to the
/// polynomial's largest coefficient).
#[derive(Default, Clone, Copy)]
struct Worst {
    rel: f64,
    scaled: f64,
}

fn compare_sections(got: &[Section], want: &[[f64; 6]], rtol: f64, what: &str) -> Worst {
    assert_eq!(got.len(), want.len(), "{what}: section count");
    let mut worst = Worst::default();
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        let g6 = [g.b[0], g.b[1], g.b[2], g.a[0], g.a[1], g.a[2]];
        for half in [0..3, 3..6] {
            let scale = w[half.clone()].iter().fold(0.0f64, |m, c| m.max(c.abs()));
            for j in half {
                let err = (g6[j] - w[j]).abs();
                let tiny = w[j].abs() <= TINY * scale;
                let ok = if tiny {
                    err <= TINY * scale
                } else {
                    err <= rtol * w[j].abs()
                };
                assert!(
                    ok,
                    "{what}: section {i} coefficient {j}: got {} want {} (err {err:e})\n got {got:?}\n want {want:?}",
                    g6[j], w[j]
                );
                if !tiny {
                    worst.rel = worst.rel.max(err / w[j].abs());
                }
                if scale > 0.0 {
                    worst.scaled = worst.scaled.max(err / scale);
                }
            }
        }
    }
    worst
}

fn mag2(sections: &[Section], f: f64, fs: f64) -> f64 {
    let (re, im) = response(sections, f, fs);
    re * re + im * im
}

/// Tolerance on a response computed from f64 sections: 1e-9, except for a cutoff below
/// 1e-3·fs. There the poles sit within ~2π·fc/fs of z = 1 and the rounding of the coefficients
/// themselves (scipy's too) moves the response by about ε/(2π·fc/fs)².
fn response_tolerance(fc: f64, fs: f64) -> f64 {
    if fc / fs < 1e-3 { 1e-8 } else { 1e-9 }
}

/// Frequencies spread over (0, fs/2), avoiding both ends.
fn freq_grid(fs: f64, n: usize) -> impl Iterator<Item = f64> {
    (1..n).map(move |i| fs / 2.0 * i as f64 / n as f64)
}

// ---------------------------------------------------------------------------------------------
// IIR against scipy
// ---------------------------------------------------------------------------------------------

#[test]
fn iir_sections_match_scipy() {
    let families = [
        "butterworth",
        "chebyshev1",
        "chebyshev2",
        "elliptic",
        "linkwitz_riley",
    ];
    let mut worst = [Worst::default(); 5];
    let mut counts = [0usize; 5];
    for r in sos_refs() {
        let fi = families.iter().position(|f| *f == r.family).unwrap();
        let rtol = if r.family == "elliptic" {
            RTOL_ELLIPTIC
        } else {
            RTOL
        };
        let d = r.design();
        let w = compare_sections(d.as_slice(), &r.sos, rtol, &r.label());
        worst[fi].rel = worst[fi].rel.max(w.rel);
        worst[fi].scaled = worst[fi].scaled.max(w.scaled);
        counts[fi] += 1;
    }
    for (i, f) in families.iter().enumerate() {
        assert!(counts[i] >= 36, "{f}: only {} reference designs", counts[i]);
        eprintln!(
            "{f:>15}: {:3} designs, worst relative coefficient error {:.2e} (scaled {:.2e})",
            counts[i], worst[i].rel, worst[i].scaled
        );
    }
}

#[test]
fn impulse_responses_match_scipy_sosfilt() {
    for r in impulse_refs() {
        let d = r.design();
        compare_sections(d.as_slice(), &r.sos, RTOL_ELLIPTIC.max(RTOL), &r.label());
        let want = r.impulse.as_ref().unwrap();
        let mut x = vec![0.0; want.len()];
        x[0] = 1.0;
        let got = run_df1(d.as_slice(), &x);
        let peak = want.iter().fold(0.0f64, |m, v| m.max(v.abs()));
        for (n, (g, w)) in got.iter().zip(want).enumerate() {
            assert!(
                (g - w).abs() <= 1e-9 * peak.max(1e-3),
                "{}: h[{n}] = {g} want {w}",
                r.label()
            );
        }
    }
}

#[test]
fn noise_through_the_cascade_matches_scipy_sosfilt() {
    let refs = noise_refs();
    assert_eq!(refs.len(), 5, "one case per family");
    for r in refs {
        let d = r.design();
        compare_sections(d.as_slice(), &r.sos, RTOL_ELLIPTIC.max(RTOL), &r.label());
        let x = r.input.as_ref().unwrap();
        let want = r.output.as_ref().unwrap();
        assert_eq!(x.len(), 256);
        let got = run_df1(d.as_slice(), x);
        let peak = want.iter().fold(0.0f64, |m, v| m.max(v.abs()));
        for (n, (g, w)) in got.iter().zip(want).enumerate() {
            assert!(
                (g - w).abs() <= 1e-9 * peak,
                "{}: y[{n}] = {g} want {w}",
                r.label()
            );
        }
    }
}

/// The runtime (the engine's f64 transposed-DF-II cascade with f32 input and output, run in
/// uneven blocks) reproduces scipy's float64 `sosfilt` output within f32 precision.
#[test]
fn runtime_cascade_matches_scipy_sosfilt_in_f32() {
    use rtfx::dsp::filter::sos::SosCascade;
    for r in noise_refs() {
        let d = r.design();
        let x: Vec<f32> = r
            .input
            .as_ref()
            .unwrap()
            .iter()
            .map(|&v| v as f32)
            .collect();
        let want = r.output.as_ref().unwrap();
        let mut cascade = SosCascade::new(d.as_slice(), 1);
        let mut y = x.clone();
        let (a, rest) = y.split_at_mut(37);
        cascade.process(&mut [a]);
        let (b, c) = rest.split_at_mut(100);
        cascade.process(&mut [b]);
        cascade.process(&mut [c]);
        for (n, (g, w)) in y.iter().zip(want).enumerate() {
            assert!(
                (f64::from(*g) - w).abs() <= 1e-5,
                "{}: sample {n}: runtime {g} vs scipy {w}",
                r.label()
            );
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Analytic magnitude responses
// ---------------------------------------------------------------------------------------------

const CUTOFFS: [(f64, f64); 5] = [
    (20.0, 192000.0),
    (100.0, 44100.0),
    (1000.0, 48000.0),
    (8000.0, 48000.0),
    (19845.0, 44100.0),
];

#[test]
fn butterworth_matches_the_bilinear_butterworth_formula() {
    let mut worst = 0.0f64;
    for n in 1..=MAX_ORDER {
        for (fc, fs) in CUTOFFS {
            for band in [BandType::Lowpass, BandType::Highpass] {
                let d = design_iir(Family::Butterworth, band, n, fc, fs);
                let s = d.as_slice();
                let tc = (std::f64::consts::PI * fc / fs).tan();
                for f in freq_grid(fs, 97).chain([fc / 3.0, fc / 1.5, fc * 1.1, fc * 1.01]) {
                    if f >= fs / 2.0 {
                        continue;
                    }
                    let t = (std::f64::consts::PI * f / fs).tan();
                    let ratio = match band {
                        BandType::Lowpass => t / tc,
                        BandType::Highpass => tc / t,
                    };
                    let want = 1.0 / (1.0 + ratio.powi(2 * n as i32));
                    let got = mag2(s, f, fs);
                    let tol = response_tolerance(fc, fs);
                    worst = worst.max((got - want).abs() / tol);
                    assert!(
                        (got - want).abs() <= tol,
                        "butter {band:?} N={n} fc={fc} fs={fs} f={f}: |H|^2 {got} want {want}"
                    );
                }
                let at_fc = magnitude_db(s, fc, fs);
                assert!(
                    (at_fc + 3.010_299_956_639_812).abs() < 1e-6,
                    "butter {band:?} N={n} fc={fc}: {at_fc} dB at the cutoff"
                );
            }
        }
    }
    eprintln!("butterworth |H|^2: worst error {worst:.3} of the tolerance");
}

#[test]
fn linkwitz_riley_is_minus_6_db_at_cutoff_and_sums_to_an_allpass() {
    let mut worst = 0.0f64;
    for n in (2..=MAX_ORDER).step_by(2) {
        for (fc, fs) in CUTOFFS {
            let lp = design_iir(Family::LinkwitzRiley, BandType::Lowpass, n, fc, fs);
            let hp = design_iir(Family::LinkwitzRiley, BandType::Highpass, n, fc, fs);
            for d in [&lp, &hp] {
                let at_fc = magnitude_db(d.as_slice(), fc, fs);
                assert!(
                    (at_fc + 6.020_599_913_279_624).abs() < 1e-6,
                    "LR{n} fc={fc}: {at_fc} dB"
                );
            }
            // LR of order N = 2M: with M even, lp + hp is an allpass; with M odd the highpass is
            // in anti-phase and lp - hp is the allpass.
            let sign = if (n / 2).is_multiple_of(2) { 1.0 } else { -1.0 };
            for f in freq_grid(fs, 211).chain([fc, fc * 0.97, fc * 1.03]) {
                let (lr, li) = response(lp.as_slice(), f, fs);
                let (hr, hi) = response(hp.as_slice(), f, fs);
                let sum = (lr + sign * hr).hypot(li + sign * hi);
                let tol = response_tolerance(fc, fs);
                worst = worst.max((sum - 1.0).abs() / tol);
                assert!(
                    (sum - 1.0).abs() < tol,
                    "LR{n} fc={fc} fs={fs} f={f}: |lp {} hp| = {sum}",
                    if sign > 0.0 { "+" } else { "-" }
                );
            }
        }
    }
    eprintln!("Linkwitz-Riley allpass: worst error {worst:.3} of the tolerance");
}

#[test]
fn linkwitz_riley_rounds_odd_orders_up_and_is_butterworth_twice() {
    for n in [1usize, 3, 5, 7, 15] {
        let odd = design_iir(Family::LinkwitzRiley, BandType::Lowpass, n, 500.0, 48000.0);
        let even = design_iir(
            Family::LinkwitzRiley,
            BandType::Lowpass,
            n + 1,
            500.0,
            48000.0,
        );
        assert_eq!(odd, even, "LR order {n}");
    }
    let lr = design_iir(
        Family::LinkwitzRiley,
        BandType::Highpass,
        12,
        800.0,
        44100.0,
    );
    let bw = design_iir(Family::Butterworth, BandType::Highpass, 6, 800.0, 44100.0);
    assert_eq!(&lr.as_slice()[..3], bw.as_slice());
    assert_eq!(&lr.as_slice()[3..], bw.as_slice());
}

#[test]
fn chebyshev1_passband_ripple_is_bounded() {
    for rp in [0.1, 0.5, 1.0, 3.0] {
        for n in 1..=MAX_ORDER {
            for (fc, fs) in CUTOFFS {
                for band in [BandType::Lowpass, BandType::Highpass] {
                    let fam = Family::Chebyshev1 { ripple_db: rp };
                    let d = design_iir(fam, band, n, fc, fs);
                    let s = d.as_slice();
                    let at_fc = magnitude_db(s, fc, fs);
                    assert!(
                        (at_fc + rp).abs() < 1e-6,
                        "cheby1 rp={rp} {band:?} N={n} fc={fc}: {at_fc} dB at cutoff"
                    );
                    for i in 1..200 {
                        let f = match band {
                            BandType::Lowpass => fc * i as f64 / 200.0,
                            BandType::Highpass => fc + (fs / 2.0 - fc) * i as f64 / 200.0,
                        };
                        let m = magnitude_db(s, f, fs);
                        assert!(
                            m <= 1e-6 && m >= -rp - 1e-6,
                            "cheby1 rp={rp} {band:?} N={n} fc={fc} f={f}: {m} dB in the passband"
                        );
                    }
                }
            }
        }
    }
}

#[test]
fn chebyshev2_stopband_attenuation_holds_beyond_the_edge() {
    for rs in [20.0, 40.0, 60.0] {
        for n in 1..=MAX_ORDER {
            for (fc, fs) in CUTOFFS {
                for band in [BandType::Lowpass, BandType::Highpass] {
                    let fam = Family::Chebyshev2 { attenuation_db: rs };
                    let d = design_iir(fam, band, n, fc, fs);
                    let s = d.as_slice();
                    let at_fc = magnitude_db(s, fc, fs);
                    assert!(
                        (at_fc + rs).abs() < 1e-5,
                        "cheby2 rs={rs} {band:?} N={n} fc={fc}: {at_fc} dB at the stopband edge"
                    );
                    for i in 1..200 {
                        let f = match band {
                            BandType::Lowpass => fc + (fs / 2.0 - fc) * i as f64 / 200.0,
                            BandType::Highpass => fc * i as f64 / 200.0,
                        };
                        let m = magnitude_db(s, f, fs);
                        assert!(
                            m <= -rs + 1e-5,
                            "cheby2 rs={rs} {band:?} N={n} fc={fc} f={f}: {m} dB in the stopband"
                        );
                    }
                    // Unity gain in the passband's far end (DC or Nyquist).
                    let far = match band {
                        BandType::Lowpass => 0.0,
                        BandType::Highpass => fs / 2.0,
                    };
                    assert!(magnitude_db(s, far, fs).abs() < 1e-6);
                }
            }
        }
    }
}

#[test]
fn elliptic_ripple_and_attenuation_hold() {
    let mut checked = 0;
    for r in sos_refs().iter().filter(|r| r.family == "elliptic") {
        let (rp, rs) = (r.ripple_db.unwrap(), r.attenuation_db.unwrap());
        let edge = r.stop_edge_hz.unwrap();
        let (fc, fs) = (r.cutoff_hz, r.sample_rate);
        let d = r.design();
        let s = d.as_slice();
        let at_fc = magnitude_db(s, fc, fs);
        assert!(
            (at_fc + rp).abs() < 1e-5,
            "{}: {at_fc} dB at the passband edge",
            r.label()
        );
        for i in 1..200 {
            let t = i as f64 / 200.0;
            let (pass, stop) = match r.band() {
                BandType::Lowpass => (fc * t, edge + (fs / 2.0 - edge) * t),
                BandType::Highpass => (fc + (fs / 2.0 - fc) * t, edge * t),
            };
            let m = magnitude_db(s, pass, fs);
            assert!(
                m <= 1e-5 && m >= -rp - 1e-5,
                "{}: {m} dB at {pass} Hz in the passband",
                r.label()
            );
            if (r.band() == BandType::Lowpass && edge < fs / 2.0) || r.band() == BandType::Highpass
            {
                let m = magnitude_db(s, stop, fs);
                assert!(
                    m <= -rs + 1e-5,
                    "{}: {m} dB at {stop} Hz beyond the stopband edge {edge}",
                    r.label()
                );
            }
        }
        checked += 1;
    }
    assert!(checked >= 36);
}

// ---------------------------------------------------------------------------------------------
// Clamping and robustness
// ---------------------------------------------------------------------------------------------

fn all_families() -> Vec<Family> {
    vec![
        Family::Butterworth,
        Family::Chebyshev1 { ripple_db: 0.1 },
        Family::Chebyshev2 {
            attenuation_db: 0.1,
        },
        Family::Chebyshev2 {
            attenuation_db: 40.0,
        },
        Family::Elliptic {
            ripple_db: 0.1,
            attenuation_db: 40.0,
        },
        Family::LinkwitzRiley,
    ]
}

#[test]
fn out_of_range_inputs_give_finite_stable_sections() {
    let fs = 48000.0;
    let cutoffs = [
        0.0,
        -100.0,
        f64::NAN,
        f64::INFINITY,
        f64::NEG_INFINITY,
        fs / 2.0,
        fs,
        1e-300,
        1.0,
        23999.0,
    ];
    for fam in all_families() {
        for band in [BandType::Lowpass, BandType::Highpass] {
            for order in [0usize, 1, 2, 3, 15, 16, 17, 99, usize::MAX] {
                for fc in cutoffs {
                    let d = design_iir(fam, band, order, fc, fs);
                    assert_finite_and_stable(&d, &format!("{fam:?} {band:?} N={order} fc={fc}"));
                }
                for bad_fs in [0.0, -48000.0, f64::NAN, f64::INFINITY, 1e-300] {
                    let d = design_iir(fam, band, order, 1000.0, bad_fs);
                    assert_finite_and_stable(&d, &format!("{fam:?} {band:?} fs={bad_fs}"));
                }
            }
        }
    }
}

#[test]
fn out_of_range_ripple_and_attenuation_give_finite_stable_sections() {
    let odd = [
        f64::NAN,
        -1.0,
        0.0,
        1e-9,
        0.5,
        30.0,
        1e9,
        f64::INFINITY,
        f64::NEG_INFINITY,
    ];
    let mut families = Vec::new();
    for &x in &odd {
        families.push(Family::Chebyshev1 { ripple_db: x });
        families.push(Family::Chebyshev2 { attenuation_db: x });
        for &y in &odd {
            families.push(Family::Elliptic {
                ripple_db: x,
                attenuation_db: y,
            });
        }
    }
    for fam in families {
        for band in [BandType::Lowpass, BandType::Highpass] {
            for order in [1usize, 2, 5, 16] {
                for fc in [0.0, 1000.0, 24000.0] {
                    let d = design_iir(fam, band, order, fc, 48000.0);
                    assert_finite_and_stable(&d, &format!("{fam:?} {band:?} N={order} fc={fc}"));
                }
            }
        }
    }
}

#[test]
fn clamped_inputs_equal_the_clamped_design() {
    let fs = 48000.0;
    for fam in all_families() {
        for band in [BandType::Lowpass, BandType::Highpass] {
            let top = design_iir(fam, band, 4, 0.49 * fs, fs);
            let bottom = design_iir(fam, band, 4, 1e-6 * fs, fs);
            assert_eq!(design_iir(fam, band, 4, fs, fs), top);
            assert_eq!(design_iir(fam, band, 4, f64::NAN, fs), top);
            assert_eq!(design_iir(fam, band, 4, f64::INFINITY, fs), top);
            assert_eq!(design_iir(fam, band, 4, 0.0, fs), bottom);
            assert_eq!(design_iir(fam, band, 4, -5.0, fs), bottom);
            assert_eq!(
                design_iir(fam, band, 99, 1000.0, fs),
                design_iir(fam, band, 16, 1000.0, fs)
            );
            if fam != Family::LinkwitzRiley {
                assert_eq!(
                    design_iir(fam, band, 0, 1000.0, fs),
                    design_iir(fam, band, 1, 1000.0, fs)
                );
            }
        }
    }
    // Ripple and attenuation clamps.
    let c1 = |rp| Family::Chebyshev1 { ripple_db: rp };
    let d = |f| design_iir(f, BandType::Lowpass, 5, 1000.0, fs);
    assert_eq!(d(c1(f64::NAN)), d(c1(0.1)));
    assert_eq!(d(c1(-3.0)), d(c1(0.001)));
    assert_eq!(d(c1(1e6)), d(c1(20.0)));
    let c2 = |rs| Family::Chebyshev2 { attenuation_db: rs };
    assert_eq!(d(c2(f64::NAN)), d(c2(0.1)));
    assert_eq!(d(c2(1e6)), d(c2(160.0)));
    let el = |rp, rs| Family::Elliptic {
        ripple_db: rp,
        attenuation_db: rs,
    };
    assert_eq!(d(el(f64::NAN, f64::NAN)), d(el(0.1, 40.0)));
    assert_eq!(d(el(50.0, 5.0)), d(el(10.0, 11.0)));
    assert_eq!(d(el(1.0, 1e6)), d(el(1.0, 160.0)));
}

#[test]
fn sections_are_normalized_and_counted() {
    for fam in all_families() {
        for n in 1..=MAX_ORDER {
            let d = design_iir(fam, BandType::Highpass, n, 3000.0, 48000.0);
            assert!(d.as_slice().iter().all(|s| s.a[0] == 1.0));
            let expect = match fam {
                Family::LinkwitzRiley => 2 * n.next_multiple_of(2).div_ceil(4),
                _ => n.div_ceil(2),
            };
            assert_eq!(d.len(), expect, "{fam:?} N={n}");
            assert!(!d.is_empty());
        }
    }
    assert_eq!(order_from_db_per_octave(24), 4);
    assert_eq!(order_from_db_per_octave(5), 1);
}

#[test]
fn design_and_firwin_do_not_allocate() {
    let mut taps = [0.0f64; 63];
    let total = assert_no_alloc(|| {
        let mut acc = 0.0;
        for fam in [
            Family::Butterworth,
            Family::Chebyshev1 { ripple_db: 1.0 },
            Family::Chebyshev2 {
                attenuation_db: 60.0,
            },
            Family::Elliptic {
                ripple_db: 0.5,
                attenuation_db: 70.0,
            },
            Family::LinkwitzRiley,
        ] {
            for band in [BandType::Lowpass, BandType::Highpass] {
                for n in 1..=MAX_ORDER {
                    // A swept cutoff, as the audio thread would see it.
                    for fc in [20.0, 440.0, 5000.0, 23000.0, f64::NAN] {
                        let d = design_iir(fam, band, n, fc, 48000.0);
                        acc += magnitude_db(d.as_slice(), 1000.0, 48000.0).max(-400.0);
                    }
                }
            }
        }
        for i in 0..Window::NAMES.len() {
            firwin_into(
                &mut taps,
                &[2000.0, 7000.0],
                48000.0,
                Window::from_index(i, 6.0),
                false,
            )
            .unwrap();
            acc += taps[31];
        }
        acc
    });
    assert!(total.is_finite());
}

// ---------------------------------------------------------------------------------------------
// firwin
// ---------------------------------------------------------------------------------------------

fn window_of(r: &FirRef) -> Window {
    let i = Window::NAMES
        .iter()
        .position(|n| *n == r.window)
        .unwrap_or_else(|| panic!("unknown window {}", r.window));
    Window::from_index(i, r.kaiser_beta.unwrap_or(Window::DEFAULT_KAISER_BETA))
}

#[test]
fn firwin_matches_scipy() {
    let refs = fir_refs();
    let mut worst = 0.0f64;
    for name in Window::NAMES {
        for kind in ["lowpass", "highpass", "bandpass", "bandstop"] {
            assert!(
                refs.iter().any(|r| r.window == *name && r.kind == kind),
                "no reference for {name} {kind}"
            );
        }
    }
    for r in refs {
        let mut taps = vec![0.0; r.num_taps];
        firwin_into(
            &mut taps,
            &r.cutoffs_hz,
            r.sample_rate,
            window_of(r),
            r.pass_zero,
        )
        .unwrap_or_else(|e| panic!("{r:?}: {e}"));
        for (i, (g, w)) in taps.iter().zip(&r.taps).enumerate() {
            let err = (g - w).abs();
            worst = worst.max(err);
            assert!(
                err <= 1e-12,
                "{} {} beta={:?} taps={} tap {i}: {g} want {w}",
                r.window,
                r.kind,
                r.kaiser_beta,
                r.num_taps
            );
        }
    }
    eprintln!(
        "firwin: {} cases, worst absolute tap error {worst:.2e}",
        refs.len()
    );
}

#[test]
fn firwin_is_unity_at_the_scale_frequency() {
    let fs = 48000.0;
    let gain = |taps: &[f64], f: f64| {
        let w = 2.0 * std::f64::consts::PI * f / fs;
        let (re, im) = taps
            .iter()
            .enumerate()
            .fold((0.0, 0.0), |(re, im), (n, h)| {
                (re + h * (w * n as f64).cos(), im - h * (w * n as f64).sin())
            });
        re.hypot(im)
    };
    for i in 0..Window::NAMES.len() {
        let w = Window::from_index(i, 5.0);
        let mut taps = [0.0; 41];
        firwin_into(&mut taps, &[6000.0], fs, w, true).unwrap();
        assert!((gain(&taps, 0.0) - 1.0).abs() < 1e-12, "{w:?} lowpass DC");
        firwin_into(&mut taps, &[6000.0], fs, w, false).unwrap();
        assert!(
            (gain(&taps, fs / 2.0) - 1.0).abs() < 1e-12,
            "{w:?} highpass Nyquist"
        );
        firwin_into(&mut taps, &[4000.0, 8000.0], fs, w, false).unwrap();
        assert!(
            (gain(&taps, 6000.0) - 1.0).abs() < 1e-12,
            "{w:?} bandpass centre"
        );
    }
}

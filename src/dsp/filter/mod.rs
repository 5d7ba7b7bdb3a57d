//! Filters: designs (analog prototype → bilinear → second-order sections, scipy-equivalent),
//! RBJ biquads, FIR, and the runtime cascade they all run on.

pub mod biquad;
pub mod design;
pub mod engine;
pub mod fir;
pub mod fir_design;
pub mod iir;
pub mod sos;

use crate::dsp::Effect;
use crate::dsp::registry::EffectEntry;
use iir::{Filter, FilterType};

fn filter(kind: &'static FilterType) -> Box<dyn Effect> {
    Box::new(Filter::new(kind))
}

macro_rules! entry {
    ($konst:ident, [$($pos:literal),*], [$($req:literal),*], $summary:literal) => {
        EffectEntry {
            name: iir::$konst.name,
            positional: &[$($pos),*],
            required: &[$(&[$req]),*],
            summary: $summary,
            build: || filter(&iir::$konst),
        }
    };
}

/// Registry entries of every filter.
pub const ENTRIES: &[EffectEntry] = &[
    entry!(
        ALLPASS,
        ["cutoff", "q"],
        ["cutoff", "q"],
        "RBJ all-pass biquad"
    ),
    entry!(
        BANDPASS,
        ["cutoff", "q"],
        ["cutoff", "q"],
        "RBJ band-pass biquad, 0 dB peak"
    ),
    entry!(
        BANDPASSPEAK,
        ["cutoff", "q"],
        ["cutoff", "q"],
        "RBJ band-pass biquad, peak gain = q"
    ),
    entry!(
        BUTTERWORTH,
        ["btype", "cutoff", "order"],
        ["btype", "cutoff"],
        "Butterworth low- or high-pass (order 4)"
    ),
    entry!(
        CHEBYSHEV1,
        ["btype", "cutoff", "order"],
        ["btype", "cutoff"],
        "Chebyshev type I low- or high-pass"
    ),
    entry!(
        CHEBYSHEV2,
        ["btype", "cutoff", "order"],
        ["btype", "cutoff"],
        "Chebyshev type II low- or high-pass"
    ),
    entry!(
        ELLIPTIC,
        ["btype", "cutoff", "order"],
        ["btype", "cutoff"],
        "Elliptic (Cauer) low- or high-pass"
    ),
    EffectEntry {
        name: "fir",
        positional: &["cutoff", "num_taps"],
        required: &[&["cutoff"]],
        summary: "Windowed-sinc FIR (scipy firwin), streaming",
        build: || Box::new(fir::Fir::new()),
    },
    entry!(
        HIBUTTERWORTH,
        ["cutoff", "order"],
        ["cutoff"],
        "Butterworth high-pass (order 5)"
    ),
    entry!(
        HICHEBYSHEV1,
        ["cutoff", "order"],
        ["cutoff"],
        "Chebyshev type I high-pass"
    ),
    entry!(
        HICHEBYSHEV2,
        ["cutoff", "order"],
        ["cutoff"],
        "Chebyshev type II high-pass"
    ),
    entry!(
        HIELLIPTIC,
        ["cutoff", "order"],
        ["cutoff"],
        "Elliptic high-pass"
    ),
    entry!(
        HIGHPASS,
        ["cutoff", "q"],
        ["cutoff", "q"],
        "RBJ high-pass biquad"
    ),
    entry!(
        HILINKWITZRILEY,
        ["cutoff", "order"],
        ["cutoff"],
        "Linkwitz-Riley high-pass (order 4)"
    ),
    entry!(
        HISHELVING,
        ["cutoff", "q", "gain"],
        ["cutoff", "gain"],
        "RBJ high shelf"
    ),
    entry!(
        IIRALLPASS,
        ["cutoff", "q"],
        ["cutoff", "q"],
        "RBJ all-pass (torchfx AllPass)"
    ),
    entry!(
        IIRNOTCH,
        ["cutoff", "q"],
        ["cutoff", "q"],
        "RBJ notch (torchfx Notch)"
    ),
    entry!(
        LINKWITZRILEY,
        ["btype", "cutoff", "order"],
        ["btype", "cutoff"],
        "Linkwitz-Riley low- or high-pass"
    ),
    entry!(
        LOBUTTERWORTH,
        ["cutoff", "order"],
        ["cutoff"],
        "Butterworth low-pass (order 5)"
    ),
    entry!(
        LOCHEBYSHEV1,
        ["cutoff", "order"],
        ["cutoff"],
        "Chebyshev type I low-pass"
    ),
    entry!(
        LOCHEBYSHEV2,
        ["cutoff", "order"],
        ["cutoff"],
        "Chebyshev type II low-pass"
    ),
    entry!(
        LOELLIPTIC,
        ["cutoff", "order"],
        ["cutoff"],
        "Elliptic low-pass"
    ),
    entry!(
        LOLINKWITZRILEY,
        ["cutoff", "order"],
        ["cutoff"],
        "Linkwitz-Riley low-pass (order 4)"
    ),
    entry!(
        LOSHELVING,
        ["cutoff", "q", "gain"],
        ["cutoff", "gain"],
        "RBJ low shelf"
    ),
    entry!(
        LOWPASS,
        ["cutoff", "q"],
        ["cutoff", "q"],
        "RBJ low-pass biquad"
    ),
    entry!(NOTCH, ["cutoff", "q"], ["cutoff", "q"], "RBJ notch biquad"),
    entry!(
        PARAMETRICEQ,
        ["frequency", "q", "gain"],
        ["frequency", "q", "gain"],
        "RBJ peaking EQ, gain in dB"
    ),
    entry!(
        PEAKING,
        ["cutoff", "q"],
        ["cutoff", "q", "gain"],
        "RBJ peaking EQ, gain linear or dB"
    ),
];

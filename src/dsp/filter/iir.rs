//! Filter effects: every IIR design and RBJ biquad of the registry as one [`Effect`] type.
//!
//! A [`FilterType`] names a registry entry, its parameters and how they turn into sections;
//! [`Filter`] holds parameter values and runs a [`SosCascade`]. Parameter changes redesign
//! the sections and keep the state (no click), and never allocate.

use super::biquad::{BiquadKind, clamp_cutoff, design_biquad};
use super::design::{
    BandType, Family, MAX_SECTIONS, Section, design_iir, order_from_db_per_octave,
};
use super::sos::SosCascade;
use crate::dsp::{Effect, ParamInfo, param_index, param_info_at};
use crate::error::{Error, Result};

/// Most parameters any filter type has.
const MAX_PARAMS: usize = 8;

/// Sections designed for the current parameters: fixed capacity, no heap.
#[derive(Clone, Copy, Debug)]
pub struct Sections {
    list: [Section; MAX_SECTIONS],
    len: usize,
}

impl Sections {
    fn one(s: Section) -> Self {
        let mut list = [Section::default(); MAX_SECTIONS];
        list[0] = s;
        Self { list, len: 1 }
    }

    fn from_slice(s: &[Section]) -> Self {
        let mut list = [Section::default(); MAX_SECTIONS];
        let len = s.len().min(MAX_SECTIONS);
        list[..len].copy_from_slice(&s[..len]);
        Self { list, len }
    }

    /// The sections in cascade order.
    pub fn as_slice(&self) -> &[Section] {
        &self.list[..self.len]
    }
}

/// A registry filter: name, parameters and design.
pub struct FilterType {
    /// Registry name.
    pub name: &'static str,
    /// Parameters in positional order.
    pub params: &'static [ParamInfo],
    /// Designs the sections from the parameter values (same order as `params`) at a rate.
    design: fn(&[f64], f64) -> Sections,
    /// Extra checks of a parameter combination (e.g. order limits in a mode).
    check: fn(&[f64]) -> Result<()>,
}

/// A filter effect of any [`FilterType`].
#[derive(Clone)]
pub struct Filter {
    kind: &'static FilterType,
    values: [f64; MAX_PARAMS],
    sample_rate: f64,
    cascade: SosCascade,
    prepared: bool,
}

impl Filter {
    /// A filter with default parameter values (required ones are NaN until set).
    pub fn new(kind: &'static FilterType) -> Self {
        let mut values = [f64::NAN; MAX_PARAMS];
        for (v, p) in values.iter_mut().zip(kind.params) {
            *v = p.default;
        }
        Self {
            kind,
            values,
            sample_rate: 0.0,
            cascade: SosCascade::new(&[], 0),
            prepared: false,
        }
    }

    /// The sections for the current parameters at the prepared rate.
    pub fn sections(&self) -> Sections {
        (self.kind.design)(&self.values[..self.kind.params.len()], self.sample_rate)
    }

    /// The runtime cascade (for tests of its state).
    pub fn cascade(&self) -> &SosCascade {
        &self.cascade
    }

    fn value(&self, name: &str) -> Option<f64> {
        self.kind
            .params
            .iter()
            .position(|p| p.name == name)
            .map(|i| self.values[i])
    }

    /// Takes `candidate` as the parameter values if their combination is valid, redesigning
    /// the cascade when prepared (its state is kept); otherwise changes nothing.
    fn apply_values(&mut self, candidate: [f64; MAX_PARAMS]) -> Result<()> {
        (self.kind.check)(&candidate[..self.kind.params.len()])?;
        self.values = candidate;
        if self.prepared {
            let sections = self.sections();
            self.cascade.set_sections(sections.as_slice());
        }
        Ok(())
    }
}

impl Effect for Filter {
    fn name(&self) -> &'static str {
        self.kind.name
    }

    fn params(&self) -> &'static [ParamInfo] {
        self.kind.params
    }

    fn get_param_at(&self, index: usize) -> Option<f64> {
        (index < self.kind.params.len()).then(|| self.values[index])
    }

    fn set_param_at(&mut self, index: usize, value: f64) -> Result<()> {
        let info = param_info_at(self.kind.name, self.kind.params, index)?;
        let mut candidate = self.values;
        candidate[index] = info.validate(value)?;
        self.apply_values(candidate)
    }

    /// Checks the combination (order and order_scale, gain and gain_scale) with every given
    /// value in place, so `order=24,order_scale=db` is a 24 dB/octave slope in either order.
    fn set_params(&mut self, params: &[(&str, f64)]) -> Result<()> {
        let mut candidate = self.values;
        for &(name, value) in params {
            let i = param_index(self.kind.name, self.kind.params, name)?;
            candidate[i] = self.kind.params[i].validate(value)?;
        }
        self.apply_values(candidate)
    }

    fn prepare(&mut self, sample_rate: f64, _max_block: usize, channels: usize) -> Result<()> {
        for (p, v) in self.kind.params.iter().zip(&self.values) {
            if v.is_nan() && p.default.is_nan() {
                return Err(Error::invalid_parameter(
                    format!("Filter '{}' needs a value for '{}'", self.kind.name, p.name),
                    p.name,
                    "nothing",
                )
                .with_suggestion(format!("set it, e.g. {}:{}=...", self.kind.name, p.name)));
            }
        }
        for name in ["cutoff", "frequency", "cutoff_high"] {
            if let Some(f) = self.value(name).filter(|f| !f.is_nan())
                && f >= sample_rate / 2.0
            {
                return Err(Error::invalid_parameter(
                    format!(
                        "'{}' {name} ({f} Hz) must be below the Nyquist frequency ({} Hz) for sample rate {sample_rate} Hz",
                        self.kind.name,
                        sample_rate / 2.0
                    ),
                    name,
                    f,
                )
                .with_suggestion(format!("use a {name} below {} Hz or a higher sample rate", sample_rate / 2.0)));
            }
        }
        self.sample_rate = sample_rate;
        let sections = self.sections();
        self.cascade = SosCascade::new(sections.as_slice(), channels);
        self.cascade.reserve_sections(MAX_SECTIONS);
        self.prepared = true;
        Ok(())
    }

    fn process(&mut self, block: &mut [&mut [f32]]) {
        self.cascade.process(block);
    }

    fn reset(&mut self) {
        self.cascade.reset();
    }

    fn visit_state(&self, visit: &mut dyn FnMut(f64)) {
        self.cascade.state_words().for_each(visit);
    }

    fn cascade(&self) -> Option<&SosCascade> {
        self.prepared.then_some(&self.cascade)
    }

    fn cascade_mut(&mut self) -> Option<&mut SosCascade> {
        self.prepared.then_some(&mut self.cascade)
    }

    fn tail_samples(&self) -> usize {
        // Time for the slowest pole to decay by 120 dB: n = ln(1e-6) / ln(r).
        let mut worst = 0.0f64;
        for s in self.sections().as_slice() {
            worst = worst.max(pole_radius(s.a[1], s.a[2]));
        }
        if worst <= 0.0 || worst >= 1.0 {
            return 0;
        }
        ((1e-6f64).ln() / worst.ln())
            .ceil()
            .min(10.0 * self.sample_rate.max(1.0)) as usize
    }

    fn clone_box(&self) -> Box<dyn Effect> {
        Box::new(self.clone())
    }
}

/// Largest pole magnitude of z² + a1·z + a2.
fn pole_radius(a1: f64, a2: f64) -> f64 {
    let disc = a1 * a1 - 4.0 * a2;
    if disc < 0.0 {
        a2.abs().sqrt()
    } else {
        let root = disc.sqrt();
        ((-a1 + root) / 2.0).abs().max(((-a1 - root) / 2.0).abs())
    }
}

// ---- parameter sets ------------------------------------------------------------------

const CUTOFF: ParamInfo = ParamInfo::continuous(
    "cutoff",
    1e-3,
    384_000.0,
    f64::NAN,
    "Hz",
    "Cutoff or centre frequency",
);
const Q: ParamInfo = ParamInfo::continuous(
    "q",
    1e-3,
    1000.0,
    f64::NAN,
    "",
    "Quality factor (bandwidth)",
);
const Q_DEFAULT: ParamInfo = ParamInfo::continuous(
    "q",
    1e-3,
    1000.0,
    std::f64::consts::FRAC_1_SQRT_2,
    "",
    "Quality factor (bandwidth)",
);
const ORDER_SCALE: ParamInfo = ParamInfo::choice(
    "order_scale",
    &["linear", "db"],
    0,
    "\"db\": order is a slope in dB/octave (order = dB / 6)",
);
const BTYPE: ParamInfo = ParamInfo::choice(
    "btype",
    &["lowpass", "highpass"],
    0,
    "Band type (\"low\"/\"high\" accepted)",
);
/// Highest filter order: two poles per section of the fixed-capacity cascade.
const MAX_ORDER: usize = 2 * MAX_SECTIONS;
/// Steepest slope with order_scale="db", in dB/octave (6 per order).
const MAX_SLOPE_DB: usize = 6 * MAX_ORDER;

// The descriptions state the limits that depend on order_scale; the tests below check them
// against `check_order`, and the ranges against `MAX_ORDER` and `MAX_SLOPE_DB`.

/// The order of a filter with order_scale (Butterworth).
const fn order(default: f64) -> ParamInfo {
    ParamInfo::integer(
        "order",
        1.0,
        MAX_SLOPE_DB as f64,
        default,
        "Filter order 1-16; with order_scale=\"db\" a slope of 6-96 dB/octave (order = slope / 6, rounded down)",
    )
}
/// The order of a Linkwitz-Riley filter (even; with order_scale).
const fn lr_order(default: f64) -> ParamInfo {
    ParamInfo::integer(
        "order",
        2.0,
        MAX_SLOPE_DB as f64,
        default,
        "Even filter order 2-16; with order_scale=\"db\" a slope of 12-96 dB/octave (order = slope / 6, rounded down, even)",
    )
}
/// The order of a filter without order_scale (Chebyshev, elliptic).
const fn plain_order(default: f64) -> ParamInfo {
    ParamInfo::integer("order", 1.0, MAX_ORDER as f64, default, "Filter order 1-16")
}
const RIPPLE: ParamInfo =
    ParamInfo::continuous("ripple", 1e-3, 30.0, 0.1, "dB", "Passband ripple").unsmoothed();
const STOP_RIPPLE: ParamInfo = ParamInfo::continuous(
    "ripple",
    1e-3,
    200.0,
    0.1,
    "dB",
    "Stopband attenuation (torchfx calls it ripple)",
)
.unsmoothed();
const PASS_RIPPLE: ParamInfo =
    ParamInfo::continuous("passband_ripple", 1e-3, 30.0, 0.1, "dB", "Passband ripple").unsmoothed();
const STOP_ATTEN: ParamInfo = ParamInfo::continuous(
    "stopband_attenuation",
    1e-3,
    200.0,
    40.0,
    "dB",
    "Stopband attenuation",
)
.unsmoothed();
/// Gains in dB accepted by the shelves and peaking EQs.
const DB_GAIN_RANGE: (f64, f64) = (-60.0, 60.0);
/// Largest linear gain factor of the shelves and `peaking`.
const MAX_LINEAR_GAIN: f64 = 1000.0;

const SHELF_GAIN: ParamInfo = ParamInfo::continuous(
    "gain",
    DB_GAIN_RANGE.0,
    MAX_LINEAR_GAIN,
    f64::NAN,
    "",
    "Shelf gain: a factor in [0, 1000], or dB in [-60, 60] with gain_scale=\"db\"",
);
const PEAK_GAIN: ParamInfo = ParamInfo::continuous(
    "gain",
    DB_GAIN_RANGE.0,
    MAX_LINEAR_GAIN,
    f64::NAN,
    "",
    "Peak gain: a factor in [0, 1000], or dB in [-60, 60] with gain_scale=\"db\"",
);
const GAIN_SCALE: ParamInfo =
    ParamInfo::choice("gain_scale", &["linear", "db"], 0, "How gain is given");
const EQ_GAIN_DB: ParamInfo = ParamInfo::continuous(
    "gain",
    DB_GAIN_RANGE.0,
    DB_GAIN_RANGE.1,
    f64::NAN,
    "dB",
    "Peak gain (RBJ: the response peaks at exactly this gain)",
);

const BIQUAD_PARAMS: &[ParamInfo] = &[CUTOFF, Q];
const BUTTER_PARAMS: &[ParamInfo] = &[CUTOFF, order(5.0), ORDER_SCALE];
const LR_PARAMS: &[ParamInfo] = &[CUTOFF, lr_order(4.0), ORDER_SCALE];
const CHEBY1_PARAMS: &[ParamInfo] = &[CUTOFF, plain_order(4.0), RIPPLE];
const CHEBY2_PARAMS: &[ParamInfo] = &[CUTOFF, plain_order(4.0), STOP_RIPPLE];
const ELLIP_PARAMS: &[ParamInfo] = &[CUTOFF, plain_order(4.0), PASS_RIPPLE, STOP_ATTEN];
const BASE_BUTTER_PARAMS: &[ParamInfo] = &[BTYPE, CUTOFF, order(4.0), ORDER_SCALE];
const BASE_LR_PARAMS: &[ParamInfo] = &[BTYPE, CUTOFF, lr_order(4.0), ORDER_SCALE];
const BASE_CHEBY1_PARAMS: &[ParamInfo] = &[BTYPE, CUTOFF, plain_order(4.0), RIPPLE];
const BASE_CHEBY2_PARAMS: &[ParamInfo] = &[BTYPE, CUTOFF, plain_order(4.0), STOP_RIPPLE];
const BASE_ELLIP_PARAMS: &[ParamInfo] = &[BTYPE, CUTOFF, plain_order(4.0), PASS_RIPPLE, STOP_ATTEN];
const SHELF_PARAMS: &[ParamInfo] = &[CUTOFF, Q_DEFAULT, SHELF_GAIN, GAIN_SCALE];
const EQ_PARAMS: &[ParamInfo] = &[
    ParamInfo::continuous(
        "frequency",
        1e-3,
        384_000.0,
        f64::NAN,
        "Hz",
        "Centre frequency",
    ),
    Q,
    EQ_GAIN_DB,
];
const PEAKING_PARAMS: &[ParamInfo] = &[CUTOFF, Q, PEAK_GAIN, GAIN_SCALE];

// ---- checks and designs --------------------------------------------------------------

fn no_check(_: &[f64]) -> Result<()> {
    Ok(())
}

/// The order actually designed, from an order and an optional order_scale value.
fn effective_order(order: f64, db_scale: bool) -> usize {
    let order = if order.is_nan() { 4 } else { order as usize };
    if db_scale {
        order_from_db_per_octave(order)
    } else {
        order
    }
}

fn order_error(order: f64, scale_db: bool) -> Error {
    let (what, fix) = if scale_db {
        ("slope", format!("use at most {MAX_SLOPE_DB} dB/octave"))
    } else {
        (
            "order",
            format!(
                "use an order from 1 to {MAX_ORDER}, or a slope of up to {MAX_SLOPE_DB} dB/octave \
                 with order_scale=\"db\""
            ),
        )
    };
    Error::invalid_parameter(format!("Filter {what} too high"), "order", order).with_suggestion(fix)
}

/// Checks order (and optional order_scale) at `order_index`.
fn check_order(
    v: &[f64],
    order_index: usize,
    scale_index: Option<usize>,
    even: bool,
) -> Result<()> {
    let db = scale_index.is_some_and(|i| v[i] == 1.0);
    let order = v[order_index];
    let n = effective_order(order, db);
    if n > MAX_ORDER {
        return Err(order_error(order, db));
    }
    if db && order < 6.0 {
        return Err(
            Error::invalid_parameter("Slope below 6 dB/octave", "order", order).with_suggestion(
                format!(
                    "with order_scale=\"db\" the order is a slope in dB/octave from 6 to \
                     {MAX_SLOPE_DB} (6, 12, 18, ...): give it too, e.g. order=24,order_scale=db"
                ),
            ),
        );
    }
    if even && n % 2 == 1 {
        let fix = if db {
            "with order_scale=\"db\" use a multiple of 12 dB/octave: 12, 24, 48 ..."
        } else {
            "use 2, 4, 8 ... (an LR filter is two Butterworth filters of half the order)"
        };
        return Err(
            Error::invalid_parameter("Linkwitz-Riley order must be even", "order", order)
                .with_suggestion(fix),
        );
    }
    Ok(())
}

fn check_butter(v: &[f64]) -> Result<()> {
    check_order(v, 1, Some(2), false)
}
fn check_lr(v: &[f64]) -> Result<()> {
    check_order(v, 1, Some(2), true)
}
fn check_plain_order(v: &[f64]) -> Result<()> {
    check_order(v, 1, None, false)
}
fn check_base_butter(v: &[f64]) -> Result<()> {
    check_order(v, 2, Some(3), false)
}
fn check_base_lr(v: &[f64]) -> Result<()> {
    check_order(v, 2, Some(3), true)
}
fn check_base_order(v: &[f64]) -> Result<()> {
    check_order(v, 2, None, false)
}
fn check_shelf_gain(v: &[f64]) -> Result<()> {
    let (gain, db) = (v[2], v[3] == 1.0);
    if gain.is_nan() {
        return Ok(());
    }
    let (lo, hi) = DB_GAIN_RANGE;
    if db && !(lo..=hi).contains(&gain) {
        return Err(Error::invalid_parameter("Gain out of range", "gain", gain)
            .with_expected(format!("[{lo}, {hi}] dB with gain_scale=\"db\"")));
    }
    if !db && !(0.0..=MAX_LINEAR_GAIN).contains(&gain) {
        return Err(Error::invalid_parameter(
            format!("A linear gain must be in [0, {MAX_LINEAR_GAIN}]"),
            "gain",
            gain,
        )
        .with_suggestion(format!(
            "give dB in [{lo}, {hi}] with gain_scale=\"db\", e.g. gain=-6,gain_scale=db"
        )));
    }
    Ok(())
}

/// Linear or dB gain to dB (linear ≤ 0 → 0 dB, as torchfx's Peaking does).
fn gain_db(gain: f64, db_scale: bool) -> f64 {
    if gain.is_nan() {
        0.0
    } else if db_scale {
        gain
    } else if gain > 0.0 {
        crate::dsp::gain_to_db(gain)
    } else {
        0.0
    }
}

fn band(index_value: f64) -> BandType {
    if index_value == 1.0 {
        BandType::Highpass
    } else {
        BandType::Lowpass
    }
}

fn iir(family: Family, band: BandType, order: usize, cutoff: f64, fs: f64) -> Sections {
    Sections::from_slice(design_iir(family, band, order, clamp_cutoff(cutoff, fs), fs).as_slice())
}

macro_rules! biquad_type {
    ($konst:ident, $name:literal, $kind:expr) => {
        #[doc = concat!("Registry filter `", $name, "`.")]
        pub static $konst: FilterType = FilterType {
            name: $name,
            params: BIQUAD_PARAMS,
            design: |v, fs| Sections::one(design_biquad($kind, v[0], v[1], 0.0, fs)),
            check: no_check,
        };
    };
}

biquad_type!(LOWPASS, "lowpass", BiquadKind::Lowpass);
biquad_type!(HIGHPASS, "highpass", BiquadKind::Highpass);
biquad_type!(BANDPASS, "bandpass", BiquadKind::Bandpass);
biquad_type!(BANDPASSPEAK, "bandpasspeak", BiquadKind::BandpassPeak);
biquad_type!(NOTCH, "notch", BiquadKind::Notch);
biquad_type!(ALLPASS, "allpass", BiquadKind::Allpass);
biquad_type!(IIRNOTCH, "iirnotch", BiquadKind::Notch);
biquad_type!(IIRALLPASS, "iirallpass", BiquadKind::Allpass);

macro_rules! iir_type {
    ($konst:ident, $name:literal, $params:expr, $check:expr, $band:expr, |$v:ident| $family:expr, $order_scale:expr) => {
        #[doc = concat!("Registry filter `", $name, "`.")]
        pub static $konst: FilterType = FilterType {
            name: $name,
            params: $params,
            design: |$v, fs| {
                iir(
                    $family,
                    $band,
                    effective_order($v[1], $order_scale),
                    $v[0],
                    fs,
                )
            },
            check: $check,
        };
    };
}

iir_type!(
    LOBUTTERWORTH,
    "lobutterworth",
    BUTTER_PARAMS,
    check_butter,
    BandType::Lowpass,
    |v| Family::Butterworth,
    v[2] == 1.0
);
iir_type!(
    HIBUTTERWORTH,
    "hibutterworth",
    BUTTER_PARAMS,
    check_butter,
    BandType::Highpass,
    |v| Family::Butterworth,
    v[2] == 1.0
);
iir_type!(
    LOLINKWITZRILEY,
    "lolinkwitzriley",
    LR_PARAMS,
    check_lr,
    BandType::Lowpass,
    |v| Family::LinkwitzRiley,
    v[2] == 1.0
);
iir_type!(
    HILINKWITZRILEY,
    "hilinkwitzriley",
    LR_PARAMS,
    check_lr,
    BandType::Highpass,
    |v| Family::LinkwitzRiley,
    v[2] == 1.0
);
iir_type!(
    LOCHEBYSHEV1,
    "lochebyshev1",
    CHEBY1_PARAMS,
    check_plain_order,
    BandType::Lowpass,
    |v| Family::Chebyshev1 { ripple_db: v[2] },
    false
);
iir_type!(
    HICHEBYSHEV1,
    "hichebyshev1",
    CHEBY1_PARAMS,
    check_plain_order,
    BandType::Highpass,
    |v| Family::Chebyshev1 { ripple_db: v[2] },
    false
);
iir_type!(
    LOCHEBYSHEV2,
    "lochebyshev2",
    CHEBY2_PARAMS,
    check_plain_order,
    BandType::Lowpass,
    |v| Family::Chebyshev2 {
        attenuation_db: v[2]
    },
    false
);
iir_type!(
    HICHEBYSHEV2,
    "hichebyshev2",
    CHEBY2_PARAMS,
    check_plain_order,
    BandType::Highpass,
    |v| Family::Chebyshev2 {
        attenuation_db: v[2]
    },
    false
);
iir_type!(
    LOELLIPTIC,
    "loelliptic",
    ELLIP_PARAMS,
    check_plain_order,
    BandType::Lowpass,
    |v| Family::Elliptic {
        ripple_db: v[2],
        attenuation_db: v[3]
    },
    false
);
iir_type!(
    HIELLIPTIC,
    "hielliptic",
    ELLIP_PARAMS,
    check_plain_order,
    BandType::Highpass,
    |v| Family::Elliptic {
        ripple_db: v[2],
        attenuation_db: v[3]
    },
    false
);

macro_rules! base_type {
    ($konst:ident, $name:literal, $params:expr, $check:expr, |$v:ident| $family:expr, $order_scale:expr) => {
        #[doc = concat!("Registry filter `", $name, "` (band type as first parameter).")]
        pub static $konst: FilterType = FilterType {
            name: $name,
            params: $params,
            design: |$v, fs| {
                iir(
                    $family,
                    band($v[0]),
                    effective_order($v[2], $order_scale),
                    $v[1],
                    fs,
                )
            },
            check: $check,
        };
    };
}

base_type!(
    BUTTERWORTH,
    "butterworth",
    BASE_BUTTER_PARAMS,
    check_base_butter,
    |v| Family::Butterworth,
    v[3] == 1.0
);
base_type!(
    LINKWITZRILEY,
    "linkwitzriley",
    BASE_LR_PARAMS,
    check_base_lr,
    |v| Family::LinkwitzRiley,
    v[3] == 1.0
);
base_type!(
    CHEBYSHEV1,
    "chebyshev1",
    BASE_CHEBY1_PARAMS,
    check_base_order,
    |v| Family::Chebyshev1 { ripple_db: v[3] },
    false
);
base_type!(
    CHEBYSHEV2,
    "chebyshev2",
    BASE_CHEBY2_PARAMS,
    check_base_order,
    |v| Family::Chebyshev2 {
        attenuation_db: v[3]
    },
    false
);
base_type!(
    ELLIPTIC,
    "elliptic",
    BASE_ELLIP_PARAMS,
    check_base_order,
    |v| Family::Elliptic {
        ripple_db: v[3],
        attenuation_db: v[4]
    },
    false
);

/// Registry filter `loshelving` (RBJ low shelf; see the module docs on gain).
pub static LOSHELVING: FilterType = FilterType {
    name: "loshelving",
    params: SHELF_PARAMS,
    design: |v, fs| {
        Sections::one(design_biquad(
            BiquadKind::LowShelf,
            v[0],
            v[1],
            gain_db(v[2], v[3] == 1.0),
            fs,
        ))
    },
    check: check_shelf_gain,
};
/// Registry filter `hishelving` (RBJ high shelf).
pub static HISHELVING: FilterType = FilterType {
    name: "hishelving",
    params: SHELF_PARAMS,
    design: |v, fs| {
        Sections::one(design_biquad(
            BiquadKind::HighShelf,
            v[0],
            v[1],
            gain_db(v[2], v[3] == 1.0),
            fs,
        ))
    },
    check: check_shelf_gain,
};
/// Registry filter `parametriceq` (RBJ peaking EQ, gain in dB).
pub static PARAMETRICEQ: FilterType = FilterType {
    name: "parametriceq",
    params: EQ_PARAMS,
    design: |v, fs| Sections::one(design_biquad(BiquadKind::Peaking, v[0], v[1], v[2], fs)),
    check: no_check,
};
/// Registry filter `peaking` (RBJ peaking EQ, gain linear or dB).
pub static PEAKING: FilterType = FilterType {
    name: "peaking",
    params: PEAKING_PARAMS,
    design: |v, fs| {
        Sections::one(design_biquad(
            BiquadKind::Peaking,
            v[0],
            v[1],
            gain_db(v[2], v[3] == 1.0),
            fs,
        ))
    },
    check: check_shelf_gain,
};

#[cfg(test)]
mod tests {
    use super::*;

    /// Every IIR type with an order, and the index of its order_scale (if any).
    fn ordered_types() -> Vec<&'static FilterType> {
        vec![
            &LOBUTTERWORTH,
            &HIBUTTERWORTH,
            &LOLINKWITZRILEY,
            &HILINKWITZRILEY,
            &LOCHEBYSHEV1,
            &HICHEBYSHEV1,
            &LOCHEBYSHEV2,
            &HICHEBYSHEV2,
            &LOELLIPTIC,
            &HIELLIPTIC,
            &BUTTERWORTH,
            &LINKWITZRILEY,
            &CHEBYSHEV1,
            &CHEBYSHEV2,
            &ELLIPTIC,
        ]
    }

    fn defaults(kind: &FilterType) -> Vec<f64> {
        kind.params.iter().map(|p| p.default).collect()
    }

    fn index(kind: &FilterType, name: &str) -> Option<usize> {
        kind.params.iter().position(|p| p.name == name)
    }

    /// The smallest and largest of the accepted values, if any.
    fn bounds(accepted: impl Iterator<Item = f64>) -> Option<(f64, f64)> {
        accepted.fold(None, |b, v| match b {
            None => Some((v, v)),
            Some((lo, hi)) => Some((f64::min(lo, v), f64::max(hi, v))),
        })
    }

    #[test]
    fn order_limits_of_every_mode_are_in_the_description_and_range() {
        for kind in ordered_types() {
            let order = index(kind, "order").expect("an order");
            let info = &kind.params[order];
            let scale = index(kind, "order_scale");
            let modes: &[f64] = if scale.is_some() { &[0.0, 1.0] } else { &[0.0] };
            let mut all = Vec::new();
            for &mode in modes {
                let accepted = (0..=200).map(f64::from).filter(|&o| {
                    let mut v = defaults(kind);
                    v[order] = o;
                    if let Some(s) = scale {
                        v[s] = mode;
                    }
                    info.validate(o).is_ok() && (kind.check)(&v).is_ok()
                });
                let (lo, hi) =
                    bounds(accepted).unwrap_or_else(|| panic!("{}: no order accepted", kind.name));
                let text = format!("{lo}-{hi}");
                assert!(
                    info.description.contains(&text),
                    "{}: order {text} accepted with order_scale={mode}, description: {}",
                    kind.name,
                    info.description
                );
                all.extend([lo, hi]);
            }
            let (lo, hi) = bounds(all.into_iter()).expect("bounds");
            assert_eq!(
                (info.min, info.max),
                (lo, hi),
                "{}: advertised range",
                kind.name
            );
        }
    }

    #[test]
    fn gain_limits_of_every_scale_are_in_the_description_and_range() {
        for kind in [&LOSHELVING, &HISHELVING, &PEAKING] {
            let gain = index(kind, "gain").expect("a gain");
            let scale = index(kind, "gain_scale").expect("a gain_scale");
            let info = &kind.params[gain];
            let mut all = Vec::new();
            for mode in [0.0, 1.0] {
                let accepted = (-4000..=4000).map(|g| f64::from(g) / 2.0).filter(|&g| {
                    let mut v = defaults(kind);
                    v[gain] = g;
                    v[scale] = mode;
                    info.validate(g).is_ok() && (kind.check)(&v).is_ok()
                });
                let (lo, hi) = bounds(accepted).expect("some gain accepted");
                let text = format!("[{lo}, {hi}]");
                assert!(
                    info.description.contains(&text),
                    "{}: gain {text} accepted with gain_scale={mode}, description: {}",
                    kind.name,
                    info.description
                );
                all.extend([lo, hi]);
            }
            let (lo, hi) = bounds(all.into_iter()).expect("bounds");
            assert_eq!(
                (info.min, info.max),
                (lo, hi),
                "{}: advertised range",
                kind.name
            );
        }
        let peak_gain = &PEAKING.params[index(&PEAKING, "gain").expect("gain")];
        assert!(
            !peak_gain.description.to_lowercase().contains("shelf"),
            "peaking's gain: {}",
            peak_gain.description
        );
    }

    #[test]
    fn a_slope_in_db_is_checked_with_the_order_given_in_the_same_build() {
        use crate::dsp::ParamValue;
        use crate::dsp::registry::build;
        let n = |v: f64| ParamValue::Number(v);
        let t = |s: &str| ParamValue::Text(s.into());
        for (name, params) in [
            (
                "lobutterworth",
                vec![
                    ("cutoff", n(1000.0)),
                    ("order", n(24.0)),
                    ("order_scale", t("db")),
                ],
            ),
            (
                "hibutterworth",
                vec![
                    ("order_scale", t("db")),
                    ("cutoff", n(80.0)),
                    ("order", n(96.0)),
                ],
            ),
            (
                "butterworth",
                vec![
                    ("btype", t("high")),
                    ("cutoff", n(80.0)),
                    ("order", n(12.0)),
                    ("order_scale", t("db")),
                ],
            ),
            (
                "linkwitzriley",
                vec![
                    ("btype", t("low")),
                    ("cutoff", n(500.0)),
                    ("order", n(24.0)),
                    ("order_scale", t("db")),
                ],
            ),
            (
                "lolinkwitzriley",
                vec![
                    ("cutoff", n(500.0)),
                    ("order", n(48.0)),
                    ("order_scale", t("db")),
                ],
            ),
        ] {
            let params: Vec<(String, ParamValue)> = params
                .into_iter()
                .map(|(k, v)| (k.to_string(), v))
                .collect();
            let fx = build(name, &params).unwrap_or_else(|e| panic!("{name}: {e}"));
            let order = params.iter().find_map(|(k, v)| match (k.as_str(), v) {
                ("order", ParamValue::Number(x)) => Some(*x),
                _ => None,
            });
            assert_eq!(fx.get_param("order"), order, "{name}");
            assert_eq!(fx.get_param("order_scale"), Some(1.0), "{name}");
        }
        // A slope the order cannot give is still refused, naming the order.
        let err = build(
            "lobutterworth",
            &[
                ("cutoff".into(), n(1000.0)),
                ("order".into(), n(5.0)),
                ("order_scale".into(), t("db")),
            ],
        )
        .err()
        .expect("5 dB/octave")
        .to_string();
        assert!(
            err.contains("Parameter: order") && err.contains("Got: 5"),
            "{err}"
        );
        // A linear order above 16 is refused, and so is an odd Linkwitz-Riley order.
        assert!(
            build(
                "lobutterworth",
                &[("cutoff".into(), n(1000.0)), ("order".into(), n(24.0))]
            )
            .is_err()
        );
        assert!(
            build(
                "lolinkwitzriley",
                &[("cutoff".into(), n(1000.0)), ("order".into(), n(3.0))]
            )
            .is_err()
        );
    }
}

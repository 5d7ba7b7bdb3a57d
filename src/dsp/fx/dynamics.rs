//! Dynamics: `compressor`, `expander` and `gate` (torchfx 0.8.0 formulas); the limiter is
//! [`super::limiter`].
//!
//! Unlike torchfx, every parameter is live: changing the ratio, the times, the threshold or the
//! floor recomputes the cached coefficients at once and keeps the detector state.

use super::{finite_or_zero, one_pole_coeff};
use crate::dsp::{Effect, ParamInfo, db_to_gain, param_info_at, sanitize_state, unhandled_param};
use crate::error::{Error, Result};

/// The `Effect` impl shared by the expander and the gate (both wrap a [`Downward`]).
macro_rules! downward_effect {
    ($ty:ident, $name:literal, $params:ident, $fields:ident) => {
        impl Effect for $ty {
            fn name(&self) -> &'static str {
                $name
            }

            fn params(&self) -> &'static [ParamInfo] {
                &$params
            }

            fn get_param_at(&self, index: usize) -> Option<f64> {
                $fields.get(index).map(|&field| self.0.get(field))
            }

            fn set_param_at(&mut self, index: usize, value: f64) -> Result<()> {
                let p = param_info_at($name, &$params, index)?;
                let value = p.validate(value)?;
                let field = *$fields
                    .get(index)
                    .ok_or_else(|| unhandled_param($name, p))?;
                self.0.set(field, value);
                Ok(())
            }

            fn prepare(
                &mut self,
                sample_rate: f64,
                _max_block: usize,
                channels: usize,
            ) -> Result<()> {
                self.0.prepare(sample_rate, channels)
            }

            fn process(&mut self, block: &mut [&mut [f32]]) {
                self.0.process(block);
            }

            fn reset(&mut self) {
                self.0.reset();
            }

            fn visit_state(&self, visit: &mut dyn FnMut(f64)) {
                self.0.visit_state(visit);
            }

            fn clone_box(&self) -> Box<dyn Effect> {
                Box::new(self.clone())
            }
        }
    };
}

const DETECTORS: &[&str] = &["peak", "rms"];
/// Ratios at or above this value act as an infinite ratio.
pub const RATIO_INFINITE: f64 = 100.0;
/// Expander slope used for an infinite ratio (torchfx's value).
const INFINITE_SLOPE: f64 = 1e6;
#[inline(always)]
fn level_db(env: f64) -> f64 {
    crate::dsp::gain_to_db(env.max(1e-12))
}

pub(super) fn check_rate(sample_rate: f64) -> Result<()> {
    if sample_rate.is_finite() && sample_rate > 0.0 {
        Ok(())
    } else {
        Err(Error::invalid_sample_rate(
            sample_rate,
            "a positive sample rate",
        ))
    }
}

// ---------------------------------------------------------------------------------------------
// Level detector shared by the compressor and the expanders.

/// Detector coefficients: attack, release and the RMS averaging coefficient (= attack).
#[derive(Debug, Clone, Copy, Default)]
struct DetectorCoeffs {
    attack: f64,
    release: f64,
    rms: bool,
}

impl DetectorCoeffs {
    fn new(attack_s: f64, release_s: f64, rms: bool, fs: f64) -> Self {
        Self {
            attack: one_pole_coeff(attack_s, fs),
            release: one_pole_coeff(release_s, fs),
            rms,
        }
    }
}

/// Per-channel detector state (torchfx: `ms`, `y1`, `yL`, zero-initialised).
#[derive(Debug, Clone, Copy, Default)]
struct DetectorState {
    ms: f64,
    y1: f64,
    yl: f64,
}

impl DetectorState {
    /// Visits `ms`, `y1` and `yL`.
    fn visit(&self, visit: &mut dyn FnMut(f64)) {
        visit(self.ms);
        visit(self.y1);
        visit(self.yl);
    }

    /// One sample of torchfx's detector; returns the smoothed envelope `yL`.
    #[inline(always)]
    fn step(&mut self, c: &DetectorCoeffs, x: f64) -> f64 {
        let rect = if c.rms {
            self.ms = sanitize_state(c.attack * self.ms + (1.0 - c.attack) * x * x);
            self.ms.sqrt()
        } else {
            x.abs()
        };
        self.y1 = sanitize_state(rect.max(c.release * self.y1));
        self.yl = sanitize_state(c.attack * self.yl + (1.0 - c.attack) * self.y1);
        self.yl
    }
}

// ---------------------------------------------------------------------------------------------
// Compressor

static COMPRESSOR_PARAMS: [ParamInfo; 7] = [
    ParamInfo::continuous(
        "threshold",
        -120.0,
        0.0,
        -20.0,
        "dB",
        "Level above which the gain is reduced",
    ),
    ParamInfo::continuous(
        "ratio",
        1.0,
        RATIO_INFINITE,
        4.0,
        ":1",
        "Compression ratio (100 = infinite)",
    ),
    ParamInfo::continuous(
        "attack",
        0.0,
        5.0,
        0.005,
        "s",
        "Attack time of the level detector",
    ),
    ParamInfo::continuous(
        "release",
        0.0,
        5.0,
        0.05,
        "s",
        "Release time of the level detector",
    ),
    ParamInfo::continuous(
        "knee",
        0.0,
        24.0,
        6.0,
        "dB",
        "Width of the soft knee (0 = hard knee)",
    ),
    ParamInfo::continuous(
        "makeup_gain",
        -24.0,
        48.0,
        0.0,
        "dB",
        "Gain added after compression",
    ),
    ParamInfo::choice("detector", DETECTORS, 0, "Level detector: peak or RMS"),
];

/// torchfx 0.8.0's `Compressor(threshold=-20, ratio=4, attack=0.005, release=0.05, knee=6,
/// makeup_gain=0, detector="peak")`.
///
/// Per channel and sample: the detector gives the envelope `yL` (see the spec: `y1 =
/// max(rect, aR·y1)`, `yL = aA·yL + (1−aA)·y1`, `rect` = |x| or the RMS with coefficient aA);
/// `L = 20·log10(max(yL, 1e−12))`, `over = L − thr`; in the knee (`knee > 0` and
/// `|2·over| ≤ knee`) `Lsc = L + (1/ratio − 1)(over + knee/2)²/(2·knee)`, above it
/// `Lsc = thr + over/ratio`, below it `Lsc = L`; `y = x·10^((Lsc − L + makeup)/20)`.
///
/// The ratio is limited to [1, 100]; 100 means an infinite ratio (`1/ratio = 0`), since
/// parameter values must be finite. Every parameter is live (torchfx caches ratio and times).
#[derive(Debug, Clone)]
pub struct Compressor {
    threshold: f64,
    ratio: f64,
    attack: f64,
    release: f64,
    knee: f64,
    makeup: f64,
    rms: bool,
    sample_rate: f64,
    coeffs: DetectorCoeffs,
    states: Vec<DetectorState>,
}

impl Default for Compressor {
    fn default() -> Self {
        Self::new()
    }
}

impl Compressor {
    /// Index of `threshold` in [`Effect::params`].
    pub const THRESHOLD: usize = 0;
    /// Index of `ratio`.
    pub const RATIO: usize = 1;
    /// Index of `attack`.
    pub const ATTACK: usize = 2;
    /// Index of `release`.
    pub const RELEASE: usize = 3;
    /// Index of `knee`.
    pub const KNEE: usize = 4;
    /// Index of `makeup_gain`.
    pub const MAKEUP_GAIN: usize = 5;
    /// Index of `detector`.
    pub const DETECTOR: usize = 6;

    /// A compressor with torchfx's defaults.
    pub fn new() -> Self {
        Self {
            threshold: -20.0,
            ratio: 4.0,
            attack: 0.005,
            release: 0.05,
            knee: 6.0,
            makeup: 0.0,
            rms: false,
            sample_rate: 0.0,
            coeffs: DetectorCoeffs::default(),
            states: Vec::new(),
        }
    }

    /// A compressor with the given threshold (dB) and ratio, other parameters default.
    pub fn with(threshold_db: f64, ratio: f64) -> Result<Self> {
        let mut c = Self::new();
        c.set_param("threshold", threshold_db)?;
        c.set_param("ratio", ratio)?;
        Ok(c)
    }

    fn update(&mut self) {
        self.coeffs = DetectorCoeffs::new(self.attack, self.release, self.rms, self.sample_rate);
    }

    fn inv_ratio(&self) -> f64 {
        if self.ratio >= RATIO_INFINITE {
            0.0
        } else {
            1.0 / self.ratio
        }
    }

    /// The static curve: output level (dB) for a detector level `l` (dB), without makeup.
    pub fn static_curve(&self, l: f64) -> f64 {
        compressor_curve(l, self.threshold, self.inv_ratio(), self.knee)
    }
}

/// torchfx's compressor curve: `Lsc` for a level `l` (all in dB).
#[inline(always)]
fn compressor_curve(l: f64, threshold: f64, inv_ratio: f64, knee: f64) -> f64 {
    let over = l - threshold;
    if knee > 0.0 && (2.0 * over).abs() <= knee {
        let k = over + knee / 2.0;
        l + (inv_ratio - 1.0) * k * k / (2.0 * knee)
    } else if over > 0.0 {
        threshold + over * inv_ratio
    } else {
        l
    }
}

impl Effect for Compressor {
    fn name(&self) -> &'static str {
        "compressor"
    }

    fn params(&self) -> &'static [ParamInfo] {
        &COMPRESSOR_PARAMS
    }

    fn get_param_at(&self, index: usize) -> Option<f64> {
        Some(match index {
            Self::THRESHOLD => self.threshold,
            Self::RATIO => self.ratio,
            Self::ATTACK => self.attack,
            Self::RELEASE => self.release,
            Self::KNEE => self.knee,
            Self::MAKEUP_GAIN => self.makeup,
            Self::DETECTOR => f64::from(u8::from(self.rms)),
            _ => return None,
        })
    }

    fn set_param_at(&mut self, index: usize, value: f64) -> Result<()> {
        let p = param_info_at(self.name(), &COMPRESSOR_PARAMS, index)?;
        let value = p.validate(value)?;
        match index {
            Self::THRESHOLD => self.threshold = value,
            Self::RATIO => self.ratio = value,
            Self::ATTACK => self.attack = value,
            Self::RELEASE => self.release = value,
            Self::KNEE => self.knee = value,
            Self::MAKEUP_GAIN => self.makeup = value,
            Self::DETECTOR => self.rms = value != 0.0,
            _ => return Err(unhandled_param(self.name(), p)),
        }
        self.update();
        Ok(())
    }

    fn prepare(&mut self, sample_rate: f64, _max_block: usize, channels: usize) -> Result<()> {
        check_rate(sample_rate)?;
        self.sample_rate = sample_rate;
        self.states = vec![DetectorState::default(); channels];
        self.update();
        Ok(())
    }

    fn process(&mut self, block: &mut [&mut [f32]]) {
        let c = self.coeffs;
        let (makeup, threshold, inv_ratio, knee) =
            (self.makeup, self.threshold, self.inv_ratio(), self.knee);
        // Below the knee the curve is the identity and the gain is exactly the makeup gain,
        // so the per-sample log and power are skipped there. The envelope is compared in
        // linear terms, 1e-9 (relative) under the knee's start: far beyond the rounding of
        // the dB conversion, so the result is bit for bit the full formula's.
        let knee_start = if knee > 0.0 {
            threshold - knee / 2.0
        } else {
            threshold
        };
        let below_knee = db_to_gain(knee_start) * (1.0 - 1e-9);
        let makeup_gain = db_to_gain(makeup);
        for (ch, state) in block.iter_mut().zip(self.states.iter_mut()) {
            for sample in ch.iter_mut() {
                let x = finite_or_zero(*sample);
                let env = state.step(&c, x);
                let gain = if env < below_knee {
                    makeup_gain
                } else {
                    let l = level_db(env);
                    let lsc = compressor_curve(l, threshold, inv_ratio, knee);
                    db_to_gain(lsc - l + makeup)
                };
                *sample = (x * gain) as f32;
            }
        }
    }

    fn reset(&mut self) {
        self.states.fill(DetectorState::default());
    }

    fn visit_state(&self, visit: &mut dyn FnMut(f64)) {
        self.states.iter().for_each(|s| s.visit(visit));
    }

    fn clone_box(&self) -> Box<dyn Effect> {
        Box::new(self.clone())
    }
}

// ---------------------------------------------------------------------------------------------
// Expander and gate

/// A parameter of [`Downward`]; [`EXPANDER_FIELDS`] and [`GATE_FIELDS`] map each effect's
/// parameter indices to them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum DownwardField {
    Threshold,
    Ratio,
    Attack,
    Release,
    Knee,
    Floor,
    Detector,
}

impl DownwardField {
    /// The parameter name this field is listed under.
    #[cfg(test)]
    fn name(self) -> &'static str {
        match self {
            Self::Threshold => "threshold",
            Self::Ratio => "ratio",
            Self::Attack => "attack",
            Self::Release => "release",
            Self::Knee => "knee",
            Self::Floor => "floor",
            Self::Detector => "detector",
        }
    }
}

/// The shared downward expander of [`Expander`] and [`Gate`].
#[derive(Debug, Clone)]
struct Downward {
    threshold: f64,
    ratio: f64,
    attack: f64,
    release: f64,
    knee: f64,
    floor: f64,
    rms: bool,
    sample_rate: f64,
    coeffs: DetectorCoeffs,
    states: Vec<DetectorState>,
}

impl Downward {
    fn slope(&self) -> f64 {
        if self.ratio >= RATIO_INFINITE {
            INFINITE_SLOPE
        } else {
            self.ratio - 1.0
        }
    }

    /// Gain in dB for a detector level `l` (dB): torchfx's expander curve, floored.
    fn gain_db(&self, l: f64, slope: f64) -> f64 {
        let over = l - self.threshold;
        let g = if self.knee > 0.0 && (2.0 * over).abs() <= self.knee {
            let k = over - self.knee / 2.0;
            -slope * k * k / (2.0 * self.knee)
        } else if over < 0.0 {
            slope * over
        } else {
            0.0
        };
        g.max(self.floor)
    }

    fn update(&mut self) {
        self.coeffs = DetectorCoeffs::new(self.attack, self.release, self.rms, self.sample_rate);
    }

    fn get(&self, field: DownwardField) -> f64 {
        match field {
            DownwardField::Threshold => self.threshold,
            DownwardField::Ratio => self.ratio,
            DownwardField::Attack => self.attack,
            DownwardField::Release => self.release,
            DownwardField::Knee => self.knee,
            DownwardField::Floor => self.floor,
            DownwardField::Detector => f64::from(u8::from(self.rms)),
        }
    }

    fn set(&mut self, field: DownwardField, value: f64) {
        match field {
            DownwardField::Threshold => self.threshold = value,
            DownwardField::Ratio => self.ratio = value,
            DownwardField::Attack => self.attack = value,
            DownwardField::Release => self.release = value,
            DownwardField::Knee => self.knee = value,
            DownwardField::Floor => self.floor = value,
            DownwardField::Detector => self.rms = value != 0.0,
        }
        self.update();
    }

    fn prepare(&mut self, sample_rate: f64, channels: usize) -> Result<()> {
        check_rate(sample_rate)?;
        self.sample_rate = sample_rate;
        self.states = vec![DetectorState::default(); channels];
        self.update();
        Ok(())
    }

    fn process(&mut self, block: &mut [&mut [f32]]) {
        let c = self.coeffs;
        let slope = self.slope();
        for (ch, i) in block.iter_mut().zip(0..self.states.len()) {
            for sample in ch.iter_mut() {
                let x = finite_or_zero(*sample);
                let l = level_db(self.states[i].step(&c, x));
                *sample = (x * db_to_gain(self.gain_db(l, slope))) as f32;
            }
        }
    }

    fn reset(&mut self) {
        self.states.fill(DetectorState::default());
    }

    fn visit_state(&self, visit: &mut dyn FnMut(f64)) {
        self.states.iter().for_each(|s| s.visit(visit));
    }
}

static EXPANDER_PARAMS: [ParamInfo; 7] = [
    ParamInfo::continuous(
        "threshold",
        -120.0,
        0.0,
        -40.0,
        "dB",
        "Level below which the gain is reduced",
    ),
    ParamInfo::continuous(
        "ratio",
        1.0,
        RATIO_INFINITE,
        2.0,
        ":1",
        "Expansion ratio (100 = infinite)",
    ),
    ParamInfo::continuous(
        "attack",
        0.0,
        5.0,
        0.005,
        "s",
        "Attack time of the level detector",
    ),
    ParamInfo::continuous(
        "release",
        0.0,
        5.0,
        0.05,
        "s",
        "Release time of the level detector",
    ),
    ParamInfo::continuous(
        "knee",
        0.0,
        24.0,
        6.0,
        "dB",
        "Width of the soft knee (0 = hard knee)",
    ),
    ParamInfo::continuous("floor", -240.0, 0.0, -240.0, "dB", "Largest attenuation"),
    ParamInfo::choice("detector", DETECTORS, 0, "Level detector: peak or RMS"),
];

/// torchfx 0.8.0's `Expander(threshold=-40, ratio=2, attack=0.005, release=0.05, knee=6,
/// floor=None, detector="peak")`.
///
/// Same detector as the [`Compressor`]; `slope = ratio − 1`, `over = L − thr`; in the knee
/// (`knee > 0` and `|2·over| ≤ knee`) `g = −slope(over − knee/2)²/(2·knee)`, below it
/// `g = slope·over`, above it 0; `g = max(g, floor)`; `y = x·10^(g/20)`. A ratio of 100 means
/// infinite (slope 1e6, like torchfx's `inf`); torchfx's `floor=None` is −240 dB, the default
/// here. The detector starts at zero, so the output starts attenuated (as in torchfx).
#[derive(Debug, Clone)]
pub struct Expander(Downward);

impl Default for Expander {
    fn default() -> Self {
        Self::new()
    }
}

impl Expander {
    /// An expander with torchfx's defaults.
    pub fn new() -> Self {
        Self(Downward {
            threshold: -40.0,
            ratio: 2.0,
            attack: 0.005,
            release: 0.05,
            knee: 6.0,
            floor: -240.0,
            rms: false,
            sample_rate: 0.0,
            coeffs: DetectorCoeffs::default(),
            states: Vec::new(),
        })
    }

    /// An expander with the given threshold (dB) and ratio, other parameters default.
    pub fn with(threshold_db: f64, ratio: f64) -> Result<Self> {
        let mut e = Self::new();
        e.set_param("threshold", threshold_db)?;
        e.set_param("ratio", ratio)?;
        Ok(e)
    }
}

/// [`EXPANDER_PARAMS`], in order.
static EXPANDER_FIELDS: [DownwardField; 7] = [
    DownwardField::Threshold,
    DownwardField::Ratio,
    DownwardField::Attack,
    DownwardField::Release,
    DownwardField::Knee,
    DownwardField::Floor,
    DownwardField::Detector,
];

downward_effect!(Expander, "expander", EXPANDER_PARAMS, EXPANDER_FIELDS);

static GATE_PARAMS: [ParamInfo; 6] = [
    ParamInfo::continuous(
        "threshold",
        -120.0,
        0.0,
        -50.0,
        "dB",
        "Level below which the gate closes",
    ),
    ParamInfo::continuous(
        "attack",
        0.0,
        5.0,
        0.001,
        "s",
        "Attack time of the level detector",
    ),
    ParamInfo::continuous(
        "release",
        0.0,
        5.0,
        0.05,
        "s",
        "Release time of the level detector",
    ),
    ParamInfo::continuous("floor", -240.0, 0.0, -80.0, "dB", "Attenuation when closed"),
    ParamInfo::continuous(
        "knee",
        0.0,
        24.0,
        3.0,
        "dB",
        "Width of the soft knee (0 = hard knee)",
    ),
    ParamInfo::choice("detector", DETECTORS, 0, "Level detector: peak or RMS"),
];

/// torchfx 0.8.0's `Gate(threshold=-50, attack=0.001, release=0.05, floor=-80, knee=3,
/// detector="peak")`: an [`Expander`] with an infinite ratio.
#[derive(Debug, Clone)]
pub struct Gate(Downward);

impl Default for Gate {
    fn default() -> Self {
        Self::new()
    }
}

impl Gate {
    /// A gate with torchfx's defaults.
    pub fn new() -> Self {
        Self(Downward {
            threshold: -50.0,
            ratio: RATIO_INFINITE,
            attack: 0.001,
            release: 0.05,
            knee: 3.0,
            floor: -80.0,
            rms: false,
            sample_rate: 0.0,
            coeffs: DetectorCoeffs::default(),
            states: Vec::new(),
        })
    }

    /// A gate with the given threshold (dB), other parameters default.
    pub fn with(threshold_db: f64) -> Result<Self> {
        let mut g = Self::new();
        g.set_param("threshold", threshold_db)?;
        Ok(g)
    }
}

/// [`GATE_PARAMS`], in order.
static GATE_FIELDS: [DownwardField; 6] = [
    DownwardField::Threshold,
    DownwardField::Attack,
    DownwardField::Release,
    DownwardField::Floor,
    DownwardField::Knee,
    DownwardField::Detector,
];

downward_effect!(Gate, "gate", GATE_PARAMS, GATE_FIELDS);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dsp::fx::test_util::*;

    const FS: f64 = 48000.0;

    /// The expander's and the gate's index → field maps follow their parameter tables.
    #[test]
    fn downward_fields_follow_the_tables() {
        for (params, fields) in [
            (&EXPANDER_PARAMS[..], &EXPANDER_FIELDS[..]),
            (&GATE_PARAMS[..], &GATE_FIELDS[..]),
        ] {
            let names: Vec<&str> = fields.iter().map(|f| f.name()).collect();
            let listed: Vec<&str> = params.iter().map(|p| p.name).collect();
            assert_eq!(names, listed);
        }
    }

    fn db(x: f32) -> f64 {
        20.0 * f64::from(x.abs()).log10()
    }

    /// Output level (dB) of a DC input at `level_db` once the detector has settled.
    fn steady_dc(fx: &mut dyn Effect, level_db: f64) -> f64 {
        fx.prepare(FS, 4096, 1).unwrap();
        let x = 10f64.powf(level_db / 20.0) as f32;
        let out = run_chunked(fx, &[vec![x; FS as usize]], &[4096]);
        db(*out[0].last().unwrap())
    }

    #[test]
    fn compressor_static_curve_at_steady_state() {
        let mut c = Compressor::with(-20.0, 4.0).unwrap();
        assert!((steady_dc(&mut c, -10.0) - -17.5).abs() < 1e-4);
        // Below the knee: unity.
        assert!((steady_dc(&mut c, -30.0) - -30.0).abs() < 1e-4);
        // At the threshold, inside the 6 dB knee: L + (1/4 − 1)·3²/12.
        assert!((steady_dc(&mut c, -20.0) - (-20.0 - 0.75 * 9.0 / 12.0)).abs() < 1e-4);
        // Makeup gain and an infinite ratio.
        c.set_param("makeup_gain", 6.0).unwrap();
        assert!((steady_dc(&mut c, -10.0) - -11.5).abs() < 1e-4);
        let mut inf = Compressor::with(-20.0, 100.0).unwrap();
        assert!((steady_dc(&mut inf, -5.0) - -20.0).abs() < 1e-4);
        // The RMS detector settles on |x| for DC too.
        let mut rms = Compressor::with(-20.0, 4.0).unwrap();
        rms.set_param("detector", 1.0).unwrap();
        assert!((steady_dc(&mut rms, -10.0) - -17.5).abs() < 1e-4);
    }

    /// The static curve against torchfx 0.8.0's formula, written out here from the behavioural
    /// reference (not through `compressor_curve`, which the bit-exact test below shares with
    /// the implementation): over = L − thr; in the knee (knee > 0, |2·over| ≤ knee)
    /// Lsc = L + (1/ratio − 1)(over + knee/2)² / (2·knee); above it thr + over/ratio; else L.
    #[test]
    fn static_curve_matches_the_reference_formula() {
        let reference = |l: f64, thr: f64, ratio: f64, knee: f64| {
            let over = l - thr;
            let slope = if ratio.is_infinite() {
                0.0
            } else {
                1.0 / ratio
            };
            if knee > 0.0 && (2.0 * over).abs() <= knee {
                l + (slope - 1.0) * (over + knee / 2.0).powi(2) / (2.0 * knee)
            } else if over > 0.0 {
                thr + over * slope
            } else {
                l
            }
        };
        let mut checked = 0;
        for thr in [-40.0, -20.0, -3.0] {
            for ratio in [1.0, 1.5, 4.0, 20.0, f64::INFINITY] {
                for knee in [0.0, 0.5, 6.0, 24.0] {
                    let mut c = Compressor::with(thr, ratio.min(RATIO_INFINITE)).unwrap();
                    c.set_param("knee", knee).unwrap();
                    for step in 0..=400 {
                        let l = -80.0 + 0.2 * f64::from(step);
                        let want = reference(l, thr, ratio, knee);
                        let got = c.static_curve(l);
                        assert!(
                            (got - want).abs() <= 1e-9 * want.abs().max(1.0),
                            "thr {thr}, ratio {ratio}, knee {knee}, L {l}: {got} vs {want}"
                        );
                        checked += 1;
                    }
                }
            }
        }
        assert_eq!(checked, 3 * 5 * 4 * 401);
        // The curve's landmarks: unity below the knee, 1/ratio above it, continuous at its
        // edges (−20 dB, 4:1, 6 dB knee: the knee spans −23…−17 dB).
        let mut c = Compressor::with(-20.0, 4.0).unwrap();
        c.set_param("knee", 6.0).unwrap();
        assert_eq!(c.static_curve(-30.0), -30.0);
        assert!((c.static_curve(-10.0) - -17.5).abs() < 1e-12);
        assert!((c.static_curve(-23.0) - -23.0).abs() < 1e-12);
        assert!((c.static_curve(-17.0) - (-20.0 + 3.0 / 4.0)).abs() < 1e-12);
    }

    /// The full per-sample formula of the compressor's docs, for comparison.
    fn compressor_reference(c: &Compressor, x: &[f32]) -> Vec<f32> {
        let mut state = DetectorState::default();
        x.iter()
            .map(|&s| {
                let x = finite_or_zero(s);
                let l = level_db(state.step(&c.coeffs, x));
                let lsc = compressor_curve(l, c.threshold, c.inv_ratio(), c.knee);
                (x * db_to_gain(lsc - l + c.makeup)) as f32
            })
            .collect()
    }

    #[test]
    fn compressor_skips_log_and_power_below_the_knee_bit_for_bit() {
        // Bursts that cross the knee both ways, slowly decaying tails, silence, and levels
        // right at the knee's start.
        let mut x: Vec<f32> = (0..48_000)
            .map(|i| {
                let t = i as f64 / FS;
                let burst = if (i / 6000) % 2 == 0 { 0.9 } else { 0.02 };
                (burst
                    * (-(t % 0.125) * 20.0).exp()
                    * (2.0 * std::f64::consts::PI * 220.0 * t).sin()) as f32
            })
            .collect();
        x.extend(std::iter::repeat_n(0.0, 2000));
        for (threshold, knee, ratio, makeup, rms) in [
            (-20.0, 6.0, 4.0, 0.0, false),
            (-20.0, 0.0, 4.0, 3.0, false),
            (-35.0, 12.0, 100.0, -2.0, true),
            (-6.0, 0.0, 2.0, 0.0, true),
        ] {
            let mut c = Compressor::with(threshold, ratio).unwrap();
            c.set_param("knee", knee).unwrap();
            c.set_param("makeup_gain", makeup).unwrap();
            c.set_param("detector", f64::from(u8::from(rms))).unwrap();
            c.prepare(FS, 4096, 1).unwrap();
            // Levels at the knee's start, just under and just over it, as DC.
            let start = if knee > 0.0 {
                threshold - knee / 2.0
            } else {
                threshold
            };
            let mut input = x.clone();
            for offset in [-1e-6, 0.0, 1e-6] {
                input.extend(std::iter::repeat_n(db_to_gain(start + offset) as f32, 4000));
            }
            let expected = compressor_reference(&c, &input);
            let out = run_chunked(&mut c, &[input], &[4096]);
            let differ = out[0]
                .iter()
                .zip(&expected)
                .filter(|(a, b)| a.to_bits() != b.to_bits())
                .count();
            assert_eq!(
                differ, 0,
                "threshold {threshold}, knee {knee}: {differ} samples differ"
            );
        }
    }

    #[test]
    fn compressor_sine_peak_level() {
        let mut c = Compressor::with(-20.0, 4.0).unwrap();
        c.prepare(FS, 4096, 1).unwrap();
        let a = 10f64.powf(-10.0 / 20.0);
        let x: Vec<f32> = (0..48000)
            .map(|n| (a * (2.0 * std::f64::consts::PI * 1000.0 * n as f64 / FS).sin()) as f32)
            .collect();
        let out = run_once(&mut c, &[x]);
        let peak = out[0][24000..].iter().fold(0.0f32, |m, v| m.max(v.abs()));
        assert!((db(peak) - -17.5).abs() < 0.5, "{}", db(peak));
    }

    #[test]
    fn compressor_parameters_are_live() {
        let mut c = Compressor::with(-20.0, 4.0).unwrap();
        c.set_param("attack", 0.0).unwrap();
        c.prepare(FS, 4096, 1).unwrap();
        let x = 10f64.powf(-10.0 / 20.0) as f32;
        run_once(&mut c, &[vec![x; 4800]]);
        // New ratio: effective on the next sample, state kept (no re-attack from zero).
        c.set_param("ratio", 2.0).unwrap();
        let out = run_once(&mut c, &[vec![x; 4]]);
        assert!((db(out[0][0]) - -15.0).abs() < 1e-4, "{}", db(out[0][0]));
        c.set_param("threshold", -30.0).unwrap();
        let out = run_once(&mut c, &[vec![x; 4]]);
        assert!((db(out[0][0]) - -20.0).abs() < 1e-4);
        assert!(c.set_param("ratio", 0.5).is_err());
        assert!(c.set_param("knee", 25.0).is_err());
        assert!(c.set_param("makeup_gain", 49.0).is_err());
        assert!(c.set_param("attack", 6.0).is_err());
        assert!(c.set_param("threshold", 1.0).is_err());
        assert_eq!(c.get_param("RATIO"), Some(2.0));
    }

    #[test]
    fn expander_static_curve() {
        let mut e = Expander::with(-40.0, 2.0).unwrap();
        // 10 dB below the threshold, slope 1: another 10 dB down.
        assert!((steady_dc(&mut e, -50.0) - -60.0).abs() < 1e-4);
        assert!((steady_dc(&mut e, -20.0) - -20.0).abs() < 1e-4);
        // Inside the knee at the threshold: −slope·(knee/2)²/(2·knee).
        assert!((steady_dc(&mut e, -40.0) - (-40.0 - 9.0 / 12.0)).abs() < 1e-4);
        e.set_param("floor", -5.0).unwrap();
        assert!((steady_dc(&mut e, -50.0) - -55.0).abs() < 1e-4);
        assert!(e.set_param("floor", 1.0).is_err());
    }

    #[test]
    fn gate_closes_on_quiet_input() {
        let mut g = Gate::new();
        // 20 dB under the threshold: attenuated to the −80 dB floor.
        assert!((steady_dc(&mut g, -70.0) - -150.0).abs() < 1e-3);
        // Loud input passes.
        assert!((steady_dc(&mut g, -10.0) - -10.0).abs() < 1e-4);
        // A quiet noise floor is pushed down by 80 dB, a loud burst is not.
        g.prepare(FS, 4096, 1).unwrap();
        let quiet: Vec<f32> = noise(1, 24000, 3)[0].iter().map(|x| x * 1e-4).collect();
        let out = run_once(&mut g, std::slice::from_ref(&quiet));
        let (qi, qo) = (rms(&quiet[12000..]), rms(&out[0][12000..]));
        assert!(qo < qi * 1.1e-4, "{qi} {qo}");
        assert!(g.set_param("ratio", 2.0).is_err(), "a gate has no ratio");
    }

    fn rms(x: &[f32]) -> f64 {
        (x.iter().map(|&v| f64::from(v) * f64::from(v)).sum::<f64>() / x.len() as f64).sqrt()
    }

    /// The window maximum equals a brute-force maximum at every step, for several windows,
    /// with the window changed mid-stream (rebuilt from the history) and at the start.
    fn all() -> Vec<Box<dyn Fn() -> Box<dyn Effect>>> {
        vec![
            Box::new(|| {
                let mut c = Compressor::with(-30.0, 6.0).unwrap();
                c.set_param("detector", 1.0).unwrap();
                Box::new(c)
            }),
            Box::new(|| Box::new(Compressor::with(-20.0, 100.0).unwrap())),
            Box::new(|| Box::new(Expander::with(-20.0, 3.0).unwrap())),
            Box::new(|| Box::new(Gate::with(-10.0).unwrap())),
        ]
    }

    #[test]
    fn dynamics_chunked_matches_one_shot() {
        for make in all() {
            assert_chunked_matches(make.as_ref(), 2, 20_000);
        }
    }

    #[test]
    fn dynamics_no_subnormals_and_nan_recovery() {
        for make in all() {
            let mut fx = make();
            assert_no_subnormal_output(fx.as_mut(), 2);
            assert_nan_recovers(make().as_mut(), 2);
            assert_passthrough_unprepared(make().as_mut());
        }
        let mut c = Compressor::new();
        assert_no_subnormal_output(&mut c, 1);
        assert!(
            c.states
                .iter()
                .all(|s| is_clean(s.ms) && is_clean(s.y1) && is_clean(s.yl))
        );
        let mut c = Compressor::new();
        c.set_param("detector", 1.0).unwrap();
        assert_no_subnormal_output(&mut c, 1);
        assert!(
            c.states
                .iter()
                .all(|s| is_clean(s.ms) && is_clean(s.y1) && is_clean(s.yl))
        );
    }

    #[test]
    fn dynamics_visit_detector_state() {
        let loud = noise(2, 2048, 3);
        for mut fx in [
            Box::new(Compressor::new()) as Box<dyn Effect>,
            Box::new(Expander::new()),
            Box::new(Gate::new()),
        ] {
            fx.set_param("detector", 1.0).unwrap();
            assert!(visited(fx.as_ref()).is_empty());
            fx.prepare(FS, 512, 2).unwrap();
            assert_eq!(visited(fx.as_ref()), vec![0.0; 6], "{}", fx.name());
            run_chunked(fx.as_mut(), &loud, &[512]);
            // RMS detector: ms, y1 and yL all carry the burst.
            let state = visited(fx.as_ref());
            assert!(state.iter().all(|&v| v > 0.0 && v.is_normal()), "{state:?}");
            fx.reset();
            assert_eq!(visited(fx.as_ref()), vec![0.0; 6]);
        }
    }
}

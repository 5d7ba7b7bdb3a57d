//! `gain`: a constant gain as an amplitude factor, in decibels or as a power ratio.

use crate::dsp::{Effect, ParamInfo, param_info_at, unhandled_param};
use crate::error::{Error, Result};

/// The ways a gain value can be given.
const GAIN_TYPES: &[&str] = &["amplitude", "db", "power"];

const AMPLITUDE: usize = 0;
const DB: usize = 1;
const POWER: usize = 2;

/// Largest amplitude or power gain accepted.
const MAX_LINEAR: f64 = 1000.0;
/// dB range accepted when `gain_type` is "db".
const DB_RANGE: (f64, f64) = (-120.0, 60.0);

static PARAMS: [ParamInfo; 3] = [
    ParamInfo::continuous(
        "gain",
        -120.0,
        1000.0,
        1.0,
        "",
        "Gain: a factor in [0, 1000] (amplitude, power) or decibels in [-120, 60] (db)",
    ),
    ParamInfo::choice(
        "gain_type",
        GAIN_TYPES,
        AMPLITUDE,
        "How gain is read: amplitude factor, dB or power ratio",
    ),
    ParamInfo::toggle("clamp", false, "Clamp the output to [-1, 1]"),
];

/// torchfx's `Gain(gain, gain_type="amplitude", clamp=False)`.
///
/// - amplitude: `y = g·x`;
/// - db: `y = x·10^(g/20)` (a gain of 0 dB leaves the signal untouched);
/// - power: `y = x·10^(log10(g)/2) = √g·x` (a gain of 1 leaves it untouched);
/// - clamp: the output is clamped to `[-1, 1]`.
///
/// Unlike torchfx, the value is validated when it is set: a negative amplitude or power gain is
/// an error ("gain must be positive"; 0 is allowed), and so is a dB gain outside [-120, 60].
/// The check uses the `gain_type` in force, so set `gain_type` before `gain`. Changing
/// `gain_type` fails when the current gain is invalid for the new type.
///
/// Stateless; the chain smooths `gain` itself.
#[derive(Debug, Clone)]
pub struct Gain {
    gain: f64,
    gain_type: usize,
    clamp: bool,
    /// Linear factor derived from `gain` and `gain_type`.
    factor: f32,
    /// Channels prepared for; 0 before `prepare` (pass-through).
    channels: usize,
}

impl Default for Gain {
    fn default() -> Self {
        Self::new()
    }
}

impl Gain {
    /// Index of `gain` in [`Effect::params`].
    pub const GAIN: usize = 0;
    /// Index of `gain_type`.
    pub const GAIN_TYPE: usize = 1;
    /// Index of `clamp`.
    pub const CLAMP: usize = 2;

    /// A unity gain.
    pub fn new() -> Self {
        let mut g = Self {
            gain: 1.0,
            gain_type: AMPLITUDE,
            clamp: false,
            factor: 1.0,
            channels: 0,
        };
        g.update();
        g
    }

    /// A gain of `gain` read as an amplitude factor.
    pub fn amplitude(gain: f64) -> Result<Self> {
        let mut g = Self::new();
        g.set_param("gain", gain)?;
        Ok(g)
    }

    /// A gain of `gain_db` decibels.
    pub fn db(gain_db: f64) -> Result<Self> {
        let mut g = Self::new();
        g.set_param("gain_type", DB as f64)?;
        g.set_param("gain", gain_db)?;
        Ok(g)
    }

    /// The linear factor applied to each sample.
    pub fn factor(&self) -> f64 {
        linear_factor(self.gain, self.gain_type)
    }

    fn update(&mut self) {
        self.factor = linear_factor(self.gain, self.gain_type) as f32;
    }
}

/// The linear factor of `gain` read as `gain_type` (spec formulas).
fn linear_factor(gain: f64, gain_type: usize) -> f64 {
    match gain_type {
        DB if gain != 0.0 => crate::dsp::db_to_gain(gain),
        POWER if gain != 1.0 => 10f64.powf(gain.log10() / 2.0),
        DB | POWER => 1.0,
        _ => gain,
    }
}

/// Checks `gain` against the rules of `gain_type`.
fn check_gain(gain: f64, gain_type: usize) -> Result<()> {
    if gain_type == DB {
        if !(DB_RANGE.0..=DB_RANGE.1).contains(&gain) {
            return Err(Error::invalid_parameter(
                "Value out of range for 'gain' (dB)",
                "gain",
                gain,
            )
            .with_expected(format!("[{}, {}] dB", DB_RANGE.0, DB_RANGE.1))
            .with_suggestion("use a dB gain in [-120, 60]"));
        }
    } else if gain < 0.0 {
        return Err(Error::invalid_parameter(
            format!("{} gain must be positive.", GAIN_TYPES[gain_type]),
            "gain",
            gain,
        )
        .with_expected(format!("[0, {MAX_LINEAR}]"))
        .with_suggestion("use gain_type=\"db\" for negative decibel values"));
    } else if gain > MAX_LINEAR {
        return Err(
            Error::invalid_parameter("Value out of range for 'gain'", "gain", gain)
                .with_expected(format!("[0, {MAX_LINEAR}]")),
        );
    }
    Ok(())
}

impl Effect for Gain {
    fn name(&self) -> &'static str {
        "gain"
    }

    fn params(&self) -> &'static [ParamInfo] {
        &PARAMS
    }

    fn get_param_at(&self, index: usize) -> Option<f64> {
        Some(match index {
            Self::GAIN => self.gain,
            Self::GAIN_TYPE => self.gain_type as f64,
            Self::CLAMP => f64::from(u8::from(self.clamp)),
            _ => return None,
        })
    }

    fn set_param_at(&mut self, index: usize, value: f64) -> Result<()> {
        let p = param_info_at(self.name(), &PARAMS, index)?;
        let value = p.validate(value)?;
        match index {
            Self::GAIN => {
                check_gain(value, self.gain_type)?;
                self.gain = value;
            }
            Self::GAIN_TYPE => {
                let t = value as usize;
                check_gain(self.gain, t).map_err(|e| {
                    e.with_suggestion(format!(
                        "the current gain {} is invalid as {}: set gain_type before gain",
                        self.gain, GAIN_TYPES[t]
                    ))
                })?;
                self.gain_type = t;
            }
            Self::CLAMP => self.clamp = value != 0.0,
            _ => return Err(unhandled_param(self.name(), p)),
        }
        self.update();
        Ok(())
    }

    fn prepare(&mut self, _sample_rate: f64, _max_block: usize, channels: usize) -> Result<()> {
        self.channels = channels;
        Ok(())
    }

    fn linear_gain(&self) -> Option<f64> {
        (!self.clamp && self.channels > 0).then(|| f64::from(self.factor))
    }

    fn process(&mut self, block: &mut [&mut [f32]]) {
        let channels = self.channels.min(block.len());
        let block = &mut block[..channels];
        let g = self.factor;
        // Non-finite input becomes 0 so NaN/∞ never reach the output (branch-free: it vectorises).
        if self.clamp {
            for ch in block.iter_mut() {
                for x in ch.iter_mut() {
                    let v = if x.is_finite() { *x } else { 0.0 };
                    *x = (v * g).clamp(-1.0, 1.0);
                }
            }
        } else {
            for ch in block.iter_mut() {
                for x in ch.iter_mut() {
                    let v = if x.is_finite() { *x } else { 0.0 };
                    *x = (v * g).clamp(f32::MIN, f32::MAX);
                }
            }
        }
    }

    fn reset(&mut self) {}

    fn clone_box(&self) -> Box<dyn Effect> {
        Box::new(self.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dsp::fx::test_util::*;

    fn run(g: &mut Gain, input: &[f32]) -> Vec<f32> {
        g.prepare(48000.0, 64, 1).unwrap();
        let mut buf = input.to_vec();
        g.process(&mut [&mut buf[..]]);
        buf
    }

    #[test]
    fn gain_amplitude() {
        let mut g = Gain::amplitude(2.0).unwrap();
        assert_eq!(run(&mut g, &[0.25, -0.5, 1.0]), vec![0.5, -1.0, 2.0]);
        let mut z = Gain::amplitude(0.0).unwrap();
        assert_eq!(run(&mut z, &[0.25, -0.5]), vec![0.0, 0.0]);
    }

    #[test]
    fn gain_db_and_zero_db() {
        let mut g = Gain::db(6.0).unwrap();
        let out = run(&mut g, &[0.5]);
        assert!((f64::from(out[0]) - 0.5 * 10f64.powf(0.3)).abs() < 1e-6);
        let mut g = Gain::db(-20.0).unwrap();
        assert!((run(&mut g, &[1.0])[0] - 0.1).abs() < 1e-7);
        let mut unity = Gain::db(0.0).unwrap();
        assert_eq!(run(&mut unity, &[0.3, -0.7]), vec![0.3, -0.7]);
    }

    #[test]
    fn gain_power() {
        let mut g = Gain::new();
        g.set_param("gain_type", POWER as f64).unwrap();
        g.set_param("gain", 4.0).unwrap();
        assert!((run(&mut g, &[0.25])[0] - 0.5).abs() < 1e-7);
        g.set_param("gain", 1.0).unwrap();
        assert_eq!(run(&mut g, &[0.3]), vec![0.3]);
    }

    #[test]
    fn gain_clamp() {
        let mut g = Gain::amplitude(4.0).unwrap();
        g.set_param("clamp", 1.0).unwrap();
        assert_eq!(run(&mut g, &[0.5, -0.5, 0.1]), vec![1.0, -1.0, 0.4]);
        // Without clamp, >1.0 passes.
        g.set_param("clamp", 0.0).unwrap();
        assert_eq!(run(&mut g, &[0.5]), vec![2.0]);
    }

    #[test]
    fn gain_errors() {
        let e = Gain::amplitude(-1.0).unwrap_err().to_string();
        assert!(
            e.contains("gain must be positive")
                && e.contains("Parameter: gain")
                && e.contains("Got: -1"),
            "{e}"
        );
        let mut g = Gain::new();
        g.set_param("gain_type", POWER as f64).unwrap();
        assert!(
            g.set_param("gain", -0.5)
                .unwrap_err()
                .to_string()
                .contains("gain must be positive")
        );
        assert!(g.set_param("gain", 1001.0).is_err());
        // Invalid gain type index.
        assert!(g.set_param("gain_type", 3.0).is_err());
        // dB range.
        let e = Gain::db(61.0).unwrap_err().to_string();
        assert!(e.contains("[-120, 60]"), "{e}");
        assert!(Gain::db(-121.0).is_err());
        // Switching to amplitude with a negative dB value fails and changes nothing.
        let mut g = Gain::db(-6.0).unwrap();
        assert!(g.set_param("gain_type", AMPLITUDE as f64).is_err());
        assert_eq!(g.get_param("gain_type"), Some(DB as f64));
        let e = g.set_param("gian", 1.0).unwrap_err().to_string();
        assert!(e.contains("did you mean 'gain'"), "{e}");
    }

    #[test]
    fn gain_chunked_matches_one_shot() {
        assert_chunked_matches(&|| Box::new(Gain::db(-3.0).unwrap()), 2, 10_000);
    }

    #[test]
    fn gain_passthrough_before_prepare() {
        assert_passthrough_unprepared(&mut Gain::amplitude(3.0).unwrap());
    }

    /// Empty blocks and no channels are fine; channels beyond the prepared count pass
    /// unchanged while the prepared ones are scaled.
    #[test]
    fn gain_more_channels_than_prepared_pass_unchanged() {
        let mut g = Gain::amplitude(2.0).unwrap();
        g.prepare(48000.0, 4, 1).unwrap();
        let mut empty = [0.0f32; 0];
        g.process(&mut [&mut empty[..]]);
        g.process(&mut []);
        let (mut a, mut b) = ([0.25f32, -0.5, 1.0], [0.25f32, -0.5, 1.0]);
        g.process(&mut [&mut a[..], &mut b[..]]);
        assert_eq!(a, [0.5, -1.0, 2.0]);
        assert_eq!(b, [0.25, -0.5, 1.0]);
    }
}

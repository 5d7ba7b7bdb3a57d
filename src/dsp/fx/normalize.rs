//! `normalize`: scales audio so that its peak, RMS or a percentile of |x| reaches a target.

use crate::dsp::{Effect, ParamInfo, param_info_at, unhandled_param};
use crate::error::{Error, Result};
use std::ops::Range;

const STRATEGIES: &[&str] = &["peak", "rms", "percentile", "per_channel"];

static PARAMS: [ParamInfo; 3] = [
    ParamInfo::continuous("peak", 0.0, 100.0, 1.0, "", "Target level (linear)").above_min(),
    ParamInfo::choice(
        "strategy",
        STRATEGIES,
        0,
        "What reaches the target: the peak, the RMS, a percentile of |x| (all channels) or each channel's peak",
    ),
    ParamInfo::continuous(
        "percentile",
        0.0,
        100.0,
        99.0,
        "%",
        "Percentile of |x| for strategy=percentile",
    )
    .above_min(),
];

/// How the level that is scaled to `peak` is measured (torchfx's normalisation strategies).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NormalizeStrategy {
    /// `y = x / max|x| · peak` over all channels.
    Peak,
    /// `y = x / sqrt(mean(x²)) · peak` over all channels.
    Rms,
    /// `y = x / q · peak`, `q` the linearly interpolated `percentile` of |x| over all samples.
    Percentile,
    /// Each channel scaled by its own peak; silent channels untouched.
    PerChannel,
}

impl NormalizeStrategy {
    /// The strategy for a choice index (0 peak, 1 rms, 2 percentile, 3 per_channel).
    pub fn from_index(index: usize) -> Option<Self> {
        Some(match index {
            0 => Self::Peak,
            1 => Self::Rms,
            2 => Self::Percentile,
            3 => Self::PerChannel,
            _ => return None,
        })
    }

    /// The choice index of this strategy.
    pub fn index(self) -> usize {
        match self {
            Self::Peak => 0,
            Self::Rms => 1,
            Self::Percentile => 2,
            Self::PerChannel => 3,
        }
    }
}

fn check_peak(peak: f64) -> Result<()> {
    if peak > 0.0 && peak.is_finite() {
        Ok(())
    } else {
        Err(
            Error::invalid_parameter("peak must be positive", "peak", peak)
                .with_expected("a value > 0"),
        )
    }
}

/// Scales frames `r` of every channel by `peak / level` (nothing when the level is 0).
fn scale(block: &mut [&mut [f32]], r: Range<usize>, level: f64, peak: f64) {
    if level > 0.0 && level.is_finite() {
        for ch in block.iter_mut() {
            scale_channel(&mut ch[r.clone()], level, peak);
        }
    }
}

fn scale_channel(ch: &mut [f32], level: f64, peak: f64) {
    for x in ch.iter_mut() {
        *x = (f64::from(*x) / level * peak) as f32;
    }
}

/// Running sample peak and mean square of a signal, NaN and infinity left out: the one level
/// measurement of the normalize effect (per block) and the renderer's `--normalize` (per file).
///
/// ```
/// use rtfx::dsp::fx::normalize::Levels;
/// let mut levels = Levels::default();
/// levels.add(&[0.5, -1.0]);
/// levels.add(&[f32::NAN, 0.5]);
/// assert_eq!(levels.peak(), 1.0);
/// assert_eq!(levels.rms(), 0.5f64.sqrt());
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Levels {
    peak: f32,
    sum_sq: f64,
    count: u64,
}

impl Levels {
    /// Adds samples (of any channel) to the measurement.
    pub fn add(&mut self, samples: &[f32]) {
        let mut peak = self.peak;
        let mut sum = 0.0f64;
        let mut count = 0u64;
        for &x in samples.iter().filter(|x| x.is_finite()) {
            peak = peak.max(x.abs());
            sum += f64::from(x) * f64::from(x);
            count += 1;
        }
        self.peak = peak;
        self.sum_sq += sum;
        self.count += count;
    }

    /// The largest |x| added (0 before any).
    pub fn peak(&self) -> f64 {
        f64::from(self.peak)
    }

    /// The root mean square of every finite sample added (0 before any).
    pub fn rms(&self) -> f64 {
        if self.count == 0 {
            0.0
        } else {
            (self.sum_sq / self.count as f64).sqrt()
        }
    }
}

/// The levels of frames `r` of every channel.
fn block_levels(block: &[&mut [f32]], r: Range<usize>) -> Levels {
    let mut levels = Levels::default();
    for ch in block {
        levels.add(&ch[r.clone()]);
    }
    levels
}

/// Normalises frames `r` of `block` in place; `scratch` must hold every sample of the range for
/// the percentile strategy (any excess is left out of the measurement).
fn apply(
    block: &mut [&mut [f32]],
    r: Range<usize>,
    strategy: NormalizeStrategy,
    peak: f64,
    percentile: f64,
    scratch: &mut [f32],
) {
    match strategy {
        NormalizeStrategy::Peak => {
            let m = block_levels(block, r.clone()).peak();
            scale(block, r, m, peak);
        }
        NormalizeStrategy::Rms => {
            // No finite sample: rms() is 0 and nothing is scaled.
            let m = block_levels(block, r.clone()).rms();
            scale(block, r, m, peak);
        }
        NormalizeStrategy::Percentile => {
            let mut n = 0;
            for ch in block.iter() {
                for &x in ch[r.clone()].iter().filter(|x| x.is_finite()) {
                    if n < scratch.len() {
                        scratch[n] = x.abs();
                        n += 1;
                    }
                }
            }
            if n == 0 {
                return;
            }
            let values = &mut scratch[..n];
            // torch.quantile's "linear" interpolation: position q·(n−1).
            let pos = percentile / 100.0 * (n - 1) as f64;
            let lo = (pos.floor() as usize).min(n - 1);
            let frac = pos - lo as f64;
            let (_, &mut v_lo, upper) = values.select_nth_unstable_by(lo, f32::total_cmp);
            let v_hi = if frac > 0.0 {
                upper.iter().copied().fold(f32::INFINITY, f32::min)
            } else {
                v_lo
            };
            let v_lo = f64::from(v_lo);
            let v_hi = if v_hi.is_finite() {
                f64::from(v_hi)
            } else {
                v_lo
            };
            scale(block, r, v_lo + (v_hi - v_lo) * frac, peak);
        }
        NormalizeStrategy::PerChannel => {
            for ch in block.iter_mut() {
                let ch = &mut ch[r.clone()];
                let mut levels = Levels::default();
                levels.add(ch);
                let m = levels.peak();
                if m > 0.0 {
                    scale_channel(ch, m, peak);
                }
            }
        }
    }
}

/// torchfx's `Normalize(peak=1.0, strategy)`, applied to each block on its own.
///
/// This is torchfx's per-chunk behaviour: the output depends on how the stream is cut into
/// blocks (the only effect here whose chunked output differs from its one-shot output). Blocks
/// longer than the prepared maximum are normalised in pieces of the prepared maximum; channels
/// beyond the prepared count pass untouched and are not measured. For a whole file, the
/// renderer's `--normalize` measures the whole output first.
#[derive(Debug, Clone)]
pub struct Normalize {
    peak: f64,
    strategy: NormalizeStrategy,
    percentile: f64,
    max_block: usize,
    channels: usize,
    /// max_block × channels magnitudes for the percentile selection.
    scratch: Vec<f32>,
}

impl Default for Normalize {
    fn default() -> Self {
        Self::new()
    }
}

impl Normalize {
    /// Index of `peak` in [`Effect::params`].
    pub const PEAK: usize = 0;
    /// Index of `strategy`.
    pub const STRATEGY: usize = 1;
    /// Index of `percentile`.
    pub const PERCENTILE: usize = 2;

    /// Peak normalisation to 1.0.
    pub fn new() -> Self {
        Self {
            peak: 1.0,
            strategy: NormalizeStrategy::Peak,
            percentile: 99.0,
            max_block: 0,
            channels: 0,
            scratch: Vec::new(),
        }
    }

    /// Normalisation of the given strategy to `peak`.
    pub fn with(strategy: NormalizeStrategy, peak: f64) -> Result<Self> {
        check_peak(peak)?;
        Ok(Self {
            peak,
            strategy,
            ..Self::new()
        })
    }
}

impl Effect for Normalize {
    fn name(&self) -> &'static str {
        "normalize"
    }

    fn params(&self) -> &'static [ParamInfo] {
        &PARAMS
    }

    fn get_param_at(&self, index: usize) -> Option<f64> {
        Some(match index {
            Self::PEAK => self.peak,
            Self::STRATEGY => self.strategy.index() as f64,
            Self::PERCENTILE => self.percentile,
            _ => return None,
        })
    }

    fn set_param_at(&mut self, index: usize, value: f64) -> Result<()> {
        let p = param_info_at(self.name(), &PARAMS, index)?;
        let value = p.validate(value)?;
        match index {
            Self::PEAK => self.peak = value,
            Self::STRATEGY => {
                self.strategy = NormalizeStrategy::from_index(value as usize)
                    .unwrap_or(NormalizeStrategy::Peak);
            }
            Self::PERCENTILE => self.percentile = value,
            _ => return Err(unhandled_param(self.name(), p)),
        }
        Ok(())
    }

    fn prepare(&mut self, _sample_rate: f64, max_block: usize, channels: usize) -> Result<()> {
        self.max_block = max_block;
        self.channels = channels;
        self.scratch = vec![0.0; max_block * channels];
        Ok(())
    }

    fn process(&mut self, block: &mut [&mut [f32]]) {
        let channels = self.channels.min(block.len());
        if channels == 0 || self.max_block == 0 {
            return;
        }
        let block = &mut block[..channels];
        // Non-finite samples count as silence: they would otherwise set the peak to NaN/∞ and
        // wipe out the whole block.
        for channel in block.iter_mut() {
            for x in channel.iter_mut() {
                *x = if x.is_finite() { *x } else { 0.0 };
            }
        }
        let frames = block.iter().map(|c| c.len()).min().unwrap_or(0);
        let mut start = 0;
        while start < frames {
            let end = (start + self.max_block).min(frames);
            apply(
                block,
                start..end,
                self.strategy,
                self.peak,
                self.percentile,
                &mut self.scratch,
            );
            start = end;
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

    fn run(fx: &mut Normalize, input: &[Vec<f32>]) -> Vec<Vec<f32>> {
        fx.prepare(48000.0, 4096, input.len()).unwrap();
        run_once(fx, input)
    }

    fn close(a: &[f32], b: &[f64]) -> bool {
        a.len() == b.len()
            && a.iter()
                .zip(b)
                .all(|(x, y)| (f64::from(*x) - y).abs() < 1e-6)
    }

    #[test]
    fn normalize_peak_all_channels() {
        let mut fx = Normalize::new();
        let out = run(&mut fx, &[vec![0.5, -0.25], vec![0.1, 0.2]]);
        assert!(
            close(&out[0], &[1.0, -0.5]) && close(&out[1], &[0.2, 0.4]),
            "{out:?}"
        );
        let mut fx = Normalize::with(NormalizeStrategy::Peak, 0.5).unwrap();
        let out = run(&mut fx, &[vec![0.25, -0.125]]);
        assert!(close(&out[0], &[0.5, -0.25]), "{out:?}");
    }

    #[test]
    fn normalize_rms() {
        let mut fx = Normalize::with(NormalizeStrategy::Rms, 0.5).unwrap();
        let out = run(&mut fx, &[vec![2.0, -2.0, 2.0, -2.0]]);
        assert!(close(&out[0], &[0.5, -0.5, 0.5, -0.5]), "{out:?}");
        let mut fx = Normalize::with(NormalizeStrategy::Rms, 1.0).unwrap();
        let out = run(&mut fx, &[vec![3.0], vec![4.0]]);
        let rms = 12.5f64.sqrt();
        assert!(
            close(&out[0], &[3.0 / rms]) && close(&out[1], &[4.0 / rms]),
            "{out:?}"
        );
    }

    #[test]
    fn normalize_percentile_interpolates() {
        let mut fx = Normalize::with(NormalizeStrategy::Percentile, 1.0).unwrap();
        fx.set_param("percentile", 50.0).unwrap();
        // |x| = 0.01..=1.00 (shuffled sign and order): median by linear interpolation is 0.505.
        let x: Vec<f32> = (1..=100)
            .rev()
            .map(|i| {
                if i % 2 == 0 {
                    i as f32 / 100.0
                } else {
                    -(i as f32) / 100.0
                }
            })
            .collect();
        let out = run(&mut fx, std::slice::from_ref(&x));
        let expected: Vec<f64> = x.iter().map(|&v| f64::from(v) / 0.505).collect();
        assert!(close(&out[0], &expected));
        // 100th percentile is the peak.
        let mut fx = Normalize::with(NormalizeStrategy::Percentile, 1.0).unwrap();
        fx.set_param("percentile", 100.0).unwrap();
        let out = run(&mut fx, &[vec![0.5, -0.25], vec![0.1, 0.2]]);
        assert!(
            close(&out[0], &[1.0, -0.5]) && close(&out[1], &[0.2, 0.4]),
            "{out:?}"
        );
    }

    #[test]
    fn normalize_percentile_matches_sorted_reference() {
        let input = noise(2, 999, 21);
        for p in [1.0, 37.5, 50.0, 99.0, 99.9, 100.0] {
            let mut sorted: Vec<f64> = input.iter().flatten().map(|x| f64::from(x.abs())).collect();
            sorted.sort_by(f64::total_cmp);
            let pos = p / 100.0 * (sorted.len() - 1) as f64;
            let lo = pos.floor() as usize;
            let hi = (lo + 1).min(sorted.len() - 1);
            let q = sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo as f64);
            let mut fx = Normalize::with(NormalizeStrategy::Percentile, 0.7).unwrap();
            fx.set_param("percentile", p).unwrap();
            let out = run(&mut fx, &input);
            for (o, i) in out.iter().flatten().zip(input.iter().flatten()) {
                let expected = f64::from(*i) / q * 0.7;
                assert!(
                    (f64::from(*o) - expected).abs() < 1e-5 * expected.abs().max(1.0),
                    "p {p}"
                );
            }
        }
    }

    #[test]
    fn normalize_per_channel() {
        let mut fx = Normalize::with(NormalizeStrategy::PerChannel, 1.0).unwrap();
        let out = run(&mut fx, &[vec![0.5, -0.25], vec![0.1, 0.2], vec![0.0, 0.0]]);
        assert!(
            close(&out[0], &[1.0, -0.5]) && close(&out[1], &[0.5, 1.0]),
            "{out:?}"
        );
        assert_eq!(out[2], vec![0.0, 0.0]);
    }

    #[test]
    fn normalize_zero_signal_unchanged() {
        for s in 0..4 {
            let mut fx = Normalize::with(NormalizeStrategy::from_index(s).unwrap(), 1.0).unwrap();
            let out = run(&mut fx, &[vec![0.0; 16], vec![0.0; 16]]);
            assert!(out.iter().flatten().all(|&x| x == 0.0));
        }
    }

    #[test]
    fn normalize_invalid_values() {
        assert!(Normalize::with(NormalizeStrategy::Peak, 0.0).is_err());
        assert!(Normalize::with(NormalizeStrategy::Peak, -1.0).is_err());
        let mut fx = Normalize::new();
        let e = fx.set_param("peak", 0.0).unwrap_err().to_string();
        assert!(
            e.contains("Parameter: peak") && e.contains("Expected: (0, 100]"),
            "{e}"
        );
        assert!(fx.set_param("percentile", 0.0).is_err());
        assert!(fx.set_param("percentile", 100.5).is_err());
        assert!(fx.set_param("strategy", 4.0).is_err());
    }

    #[test]
    fn normalize_is_per_block_and_splits_long_blocks() {
        let mut fx = Normalize::new();
        fx.prepare(48000.0, 2, 1).unwrap();
        // A block of 4 with max_block 2 is normalised as two pieces.
        let mut x = [0.5f32, 0.25, 0.1, 0.05];
        fx.process(&mut [&mut x[..]]);
        assert!(close(&x, &[1.0, 0.5, 1.0, 0.5]), "{x:?}");
        // Channels beyond the prepared count are untouched.
        let mut a = [0.5f32, 0.25];
        let mut b = [0.5f32, 0.25];
        fx.process(&mut [&mut a[..], &mut b[..]]);
        assert_eq!(b, [0.5, 0.25]);
    }

    #[test]
    fn normalize_same_blocks_same_output() {
        // Per-block semantics: equal block boundaries give bit-identical output.
        let input = noise(2, 4096, 3);
        let mut a = Normalize::with(NormalizeStrategy::Percentile, 0.8).unwrap();
        a.prepare(48000.0, 512, 2).unwrap();
        let mut b = a.clone();
        assert_eq!(
            run_chunked(&mut a, &input, &[512]),
            run_chunked(&mut b, &input, &[512])
        );
    }

    #[test]
    fn normalize_passthrough_before_prepare() {
        assert_passthrough_unprepared(&mut Normalize::with(NormalizeStrategy::Rms, 0.1).unwrap());
    }
}

//! Pure DSP: filters, effects, the chain and its grammar.
//!
//! Nothing here knows about threads, files, devices or plugin frameworks: slices in, slices out.
//! Audio is planar: a block is `&mut [&mut [f32]]`, one slice per channel, all the same length.
//!
//! The contract every effect keeps ([`Effect`]):
//! - [`Effect::prepare`] allocates everything; [`Effect::process`] never allocates, locks, logs
//!   or panics, for any block length from 0 to the prepared maximum;
//! - processing a signal in chunks gives the same output as processing it at once;
//! - parameter changes never reset filter state;
//! - no NaN, infinity or subnormal number ever stays in the state.

pub mod chain;
pub mod filter;
pub mod fx;
pub mod noise;
pub mod param;
pub mod random;
pub mod registry;
pub mod resample;
pub mod section;
pub(crate) mod simd;
pub mod smooth;
pub mod spec;
pub mod true_peak;

pub use chain::Chain;
pub use param::{ParamInfo, ParamKind, ParamValue};

use crate::error::{Error, Result, clip};

/// A planar block of audio: one slice per channel.
pub type Block<'a, 'b> = &'a mut [&'b mut [f32]];

/// An audio effect or filter that can run in a real-time chain.
pub trait Effect: Send {
    /// The registry name (lower case), e.g. "lobutterworth".
    fn name(&self) -> &'static str;

    /// Metadata of every parameter, in positional order.
    fn params(&self) -> &'static [ParamInfo];

    /// Current value of the parameter at `index` in [`Effect::params`] (engine units: choices
    /// as indices, toggles as 0/1); `None` past the end.
    fn get_param_at(&self, index: usize) -> Option<f64>;

    /// Sets the parameter at `index` in [`Effect::params`], validating the value (and the
    /// index: past the end is an error). Never resets filter state. Does not allocate on
    /// success, so the chain's smoother calls it on the audio thread: no name is looked up.
    fn set_param_at(&mut self, index: usize, value: f64) -> Result<()>;

    /// Current value of a parameter by name (case-insensitive): [`Effect::get_param_at`] at
    /// its index.
    fn get_param(&self, name: &str) -> Option<f64> {
        let index = self
            .params()
            .iter()
            .position(|p| p.name.eq_ignore_ascii_case(name))?;
        self.get_param_at(index)
    }

    /// Sets a parameter by name (case-insensitive): [`Effect::set_param_at`] at its index, or
    /// an error that names the effect and suggests the nearest parameter.
    fn set_param(&mut self, name: &str, value: f64) -> Result<()> {
        let index = param_index(self.name(), self.params(), name)?;
        self.set_param_at(index, value)
    }

    /// Sets several parameters as one change: an effect whose parameters constrain each other
    /// (a filter's order and its order_scale) checks the combination once, with every given
    /// value in place, and changes nothing when it is refused. The default sets them one by
    /// one, in order, with [`Effect::set_param`].
    fn set_params(&mut self, params: &[(&str, f64)]) -> Result<()> {
        for (name, value) in params {
            self.set_param(name, *value)?;
        }
        Ok(())
    }

    /// Allocates buffers and computes coefficients for this rate, maximum block length and
    /// channel count; clears the state. Fails when the parameters make no sense at this rate
    /// (e.g. a cutoff above Nyquist).
    fn prepare(&mut self, sample_rate: f64, max_block: usize, channels: usize) -> Result<()>;

    /// Processes one planar block in place. Blocks longer than the prepared maximum, or with
    /// more channels than prepared, are processed as far as prepared (extra channels pass).
    fn process(&mut self, block: &mut [&mut [f32]]);

    /// Clears all state (delay lines, filter memories, envelopes) without touching parameters.
    fn reset(&mut self);

    /// Samples of delay the effect adds (lookahead).
    fn latency_samples(&self) -> usize {
        0
    }

    /// Samples after the input stops until the output has decayed below -120 dB (reverb,
    /// delay); 0 for effects without memory.
    fn tail_samples(&self) -> usize {
        0
    }

    /// Calls `visit` with every number of the effect's internal state (filter memories, delay
    /// lines, envelopes), so tests can prove that no NaN, infinity or subnormal ever stays
    /// there. Effects without state keep the default, which visits nothing.
    fn visit_state(&self, visit: &mut dyn FnMut(f64)) {
        let _ = visit;
    }

    /// The runtime cascade, when the effect is exactly a cascade of second-order sections (an
    /// IIR filter or biquad). The chain then runs consecutive filters in one fused pass.
    fn cascade(&self) -> Option<&filter::sos::SosCascade> {
        None
    }

    /// Mutable access to the cascade of [`Effect::cascade`] (same effect, same cascade).
    fn cascade_mut(&mut self) -> Option<&mut filter::sos::SosCascade> {
        None
    }

    /// The factor, when the effect is exactly a linear gain at the moment (no clamping). The
    /// chain folds such gains into a fused filter pass.
    fn linear_gain(&self) -> Option<f64> {
        None
    }

    /// A copy with the same parameters (state need not be copied; call `prepare` before use).
    fn clone_box(&self) -> Box<dyn Effect>;
}

impl Clone for Box<dyn Effect> {
    fn clone(&self) -> Self {
        self.clone_box()
    }
}

/// Decibels to a linear factor, 10^(db/20) (as `exp(db·ln 10/20)`, cheaper than `powf`).
///
/// ```
/// assert!((rtfx::dsp::db_to_gain(-6.0) - 0.501187).abs() < 1e-6);
/// assert_eq!(rtfx::dsp::db_to_gain(0.0), 1.0);
/// ```
#[inline]
pub fn db_to_gain(db: f64) -> f64 {
    (db * (std::f64::consts::LN_10 / 20.0)).exp()
}

/// A linear factor to decibels, 20·log10(gain) (−∞ for 0).
///
/// ```
/// assert!((rtfx::dsp::gain_to_db(0.5) + 6.0206).abs() < 1e-4);
/// ```
#[inline]
pub fn gain_to_db(gain: f64) -> f64 {
    20.0 * gain.log10()
}

/// Looks up a parameter's metadata by name (case-insensitive), or returns an error that names
/// the effect and suggests the nearest parameter.
pub fn find_param(
    effect: &'static str,
    params: &'static [ParamInfo],
    name: &str,
) -> Result<&'static ParamInfo> {
    params
        .iter()
        .find(|p| p.name.eq_ignore_ascii_case(name))
        .ok_or_else(|| unknown_param(effect, params, name))
}

/// The index of parameter `name` (case-insensitive) in `params`, or the error of
/// [`find_param`].
pub fn param_index(
    effect: &'static str,
    params: &'static [ParamInfo],
    name: &str,
) -> Result<usize> {
    params
        .iter()
        .position(|p| p.name.eq_ignore_ascii_case(name))
        .ok_or_else(|| unknown_param(effect, params, name))
}

/// The metadata of the parameter at `index`, or an error for an index past the end of
/// `params` (what [`Effect::set_param_at`] returns for it).
pub fn param_info_at(
    effect: &'static str,
    params: &'static [ParamInfo],
    index: usize,
) -> Result<&'static ParamInfo> {
    params.get(index).ok_or_else(|| {
        Error::invalid_parameter(
            format!(
                "Effect '{effect}' has no parameter #{index} (it has {})",
                params.len()
            ),
            effect,
            index as f64,
        )
        .with_suggestion(format!(
            "use an index below {} or a parameter name",
            params.len()
        ))
    })
}

/// The error for a parameter that is in an effect's table but that its `set_param_at` does
/// not handle: a programming error, reported instead of writing another field.
pub fn unhandled_param(effect: &'static str, info: &ParamInfo) -> Error {
    Error::invalid_parameter(
        format!(
            "Effect '{effect}' lists parameter '{}' but cannot set it",
            info.name
        ),
        info.name,
        f64::NAN,
    )
    .with_suggestion("this is a bug in rtfx: please report it")
}

/// The error for an unknown parameter name: lists the valid ones and suggests the nearest.
pub fn unknown_param(effect: &str, params: &[ParamInfo], name: &str) -> Error {
    let names: Vec<&str> = params.iter().map(|p| p.name).collect();
    let suggestion = match nearest(name, names.iter().copied()) {
        _ if names.is_empty() => format!("'{effect}' has no parameters"),
        Some(n) => format!(
            "did you mean '{n}'? Parameters of '{effect}': {}",
            names.join(", ")
        ),
        None => format!("parameters of '{effect}': {}", names.join(", ")),
    };
    Error::invalid_parameter(
        format!("Unknown parameter '{}' for effect '{effect}'", clip(name)),
        clip(name),
        name,
    )
    .with_suggestion(suggestion)
}

/// The candidate closest to `word` by edit distance, if it is close enough to be a likely typo.
pub fn nearest<'a>(word: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let word = word.to_ascii_lowercase();
    candidates
        .into_iter()
        .map(|c| (edit_distance(&word, &c.to_ascii_lowercase()), c))
        .filter(|(d, c)| *d <= (c.len().max(word.len()) / 3).max(2))
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

/// Levenshtein distance between two strings (by chars).
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, &cb) in b.iter().enumerate() {
            let above = row[j + 1];
            row[j + 1] = (above + 1)
                .min(row[j] + 1)
                .min(diagonal + usize::from(ca != cb));
            diagonal = above;
        }
    }
    row[b.len()]
}

/// Number of frames in a planar block (0 for a block without channels).
#[inline]
pub fn frames(block: &[&mut [f32]]) -> usize {
    block.first().map_or(0, |c| c.len())
}

/// Most channels [`with_planar`] and [`with_planar_mut`] hand over (the renderer's and the
/// real-time engine's channel limit); further buffers are left out.
pub const MAX_PLANAR_VIEWS: usize = 32;

/// Runs `f` on `range` of each buffer as a planar block, without allocating (the slice list
/// lives on the stack).
///
/// ```
/// let mut bufs = vec![vec![1.0f32; 8], vec![2.0; 8]];
/// rtfx::dsp::with_planar_mut(&mut bufs, 2..4, |block| {
///     block.iter_mut().for_each(|ch| ch.fill(0.0))
/// });
/// assert_eq!(bufs[1], [2.0, 2.0, 0.0, 0.0, 2.0, 2.0, 2.0, 2.0]);
/// ```
pub fn with_planar_mut<R>(
    bufs: &mut [Vec<f32>],
    range: std::ops::Range<usize>,
    f: impl FnOnce(&mut [&mut [f32]]) -> R,
) -> R {
    let mut views: [&mut [f32]; MAX_PLANAR_VIEWS] = std::array::from_fn(|_| Default::default());
    let n = bufs.len().min(MAX_PLANAR_VIEWS);
    for (view, buf) in views.iter_mut().zip(bufs.iter_mut()) {
        *view = &mut buf[range.clone()];
    }
    f(&mut views[..n])
}

/// Runs `f` on frames `range` of every channel of a planar block (up to
/// [`MAX_PLANAR_VIEWS`] channels), without allocating: a piece of a block.
///
/// ```
/// let (mut l, mut r) = ([1.0f32; 4], [2.0f32; 4]);
/// let mut block = [&mut l[..], &mut r[..]];
/// rtfx::dsp::with_frames_mut(&mut block, 1..3, |piece| {
///     piece.iter_mut().for_each(|ch| ch.fill(0.0))
/// });
/// assert_eq!((l, r), ([1.0, 0.0, 0.0, 1.0], [2.0, 0.0, 0.0, 2.0]));
/// ```
pub fn with_frames_mut<R>(
    block: &mut [&mut [f32]],
    range: std::ops::Range<usize>,
    f: impl FnOnce(&mut [&mut [f32]]) -> R,
) -> R {
    let mut views: [&mut [f32]; MAX_PLANAR_VIEWS] = std::array::from_fn(|_| Default::default());
    let n = block.len().min(MAX_PLANAR_VIEWS);
    for (view, channel) in views.iter_mut().zip(block.iter_mut()) {
        *view = &mut channel[range.clone()];
    }
    f(&mut views[..n])
}

/// [`with_planar_mut`] for reading.
pub fn with_planar<R>(
    bufs: &[Vec<f32>],
    range: std::ops::Range<usize>,
    f: impl FnOnce(&[&[f32]]) -> R,
) -> R {
    let mut views: [&[f32]; MAX_PLANAR_VIEWS] = [&[]; MAX_PLANAR_VIEWS];
    let n = bufs.len().min(MAX_PLANAR_VIEWS);
    for (view, buf) in views.iter_mut().zip(bufs) {
        *view = &buf[range.clone()];
    }
    f(&views[..n])
}

/// Magnitude below which state and output values are written as exact zeros: far above the
/// subnormal range (1.2e-38 in `f32`), far below hearing. Every flush in the engine uses it.
pub const FLUSH_BELOW: f64 = 1e-30;

/// [`FLUSH_BELOW`] as an `f32`.
pub const FLUSH_BELOW_F32: f32 = 1e-30;

/// Flushes subnormal numbers (and NaN/inf) in filter or feedback state to zero, so that state
/// never decays into the slow subnormal range or latches a bad input.
#[inline(always)]
pub fn sanitize_state(x: f64) -> f64 {
    if x.abs() < FLUSH_BELOW || !x.is_finite() {
        0.0
    } else {
        x
    }
}

/// `f32` variant of [`sanitize_state`]: the threshold sits far above the subnormal range
/// (1.2e-38) and far below audible levels.
#[inline(always)]
pub fn sanitize_state_f32(x: f32) -> f32 {
    if x.abs() < FLUSH_BELOW_F32 || !x.is_finite() {
        0.0
    } else {
        x
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_finds_typos_only() {
        assert_eq!(nearest("cutof", ["cutoff", "q", "order"]), Some("cutoff"));
        assert_eq!(
            nearest("lobuterworth", ["lobutterworth", "hibutterworth"]),
            Some("lobutterworth")
        );
        assert_eq!(nearest("zzzzzz", ["cutoff", "q"]), None);
    }

    #[test]
    fn sanitize_flushes_tiny_and_bad_values() {
        assert_eq!(sanitize_state(1e-310), 0.0);
        assert_eq!(sanitize_state(f64::NAN), 0.0);
        assert_eq!(sanitize_state(f64::INFINITY), 0.0);
        assert_eq!(sanitize_state(0.5), 0.5);
        assert_eq!(sanitize_state_f32(1e-40), 0.0);
    }
}

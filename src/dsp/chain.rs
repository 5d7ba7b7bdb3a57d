//! The chain: ordered effects with parameter paths ("0.cutoff") and click-free parameter ramps.

use std::fmt;

use crate::dsp::filter::design::MAX_SECTIONS;
use crate::dsp::filter::sos::SosCascade;
use crate::dsp::smooth::LinearSmoother;
use crate::dsp::{Effect, ParamInfo, frames, nearest, unknown_param};
use crate::error::{Error, Result, clip};

/// While a parameter ramps, the chain applies a new value every this many samples, counted from
/// the start of the ramp.
pub const SMOOTH_STEP: usize = 32;

/// Default ramp length of smoothed parameters, in milliseconds.
pub const DEFAULT_SMOOTHING_MS: f64 = 20.0;

/// Highest sample rate a chain accepts, in Hz.
pub const MAX_SAMPLE_RATE: f64 = 768_000.0;

/// Longest ramp [`Chain::set_smoothing_ms`] accepts, in milliseconds.
pub const MAX_SMOOTHING_MS: f64 = 10_000.0;

/// Marks a parameter without a smoother slot.
const NO_SLOT: usize = usize::MAX;

/// A resolved parameter path: effect index and index into that effect's [`Effect::params`].
///
/// Resolve once with [`Chain::resolve`] (allocating, may fail), then set with
/// [`Chain::set_param_at`] (never fails, never allocates) on the audio thread.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ParamAddress {
    /// Index of the effect in the chain.
    pub effect: usize,
    /// Index of the parameter in the effect's parameter list.
    pub param: usize,
}

/// The ramp of one smoothed parameter.
#[derive(Debug, Clone, Copy)]
struct Slot {
    effect: usize,
    /// The parameter's index in the effect's [`Effect::params`].
    param: usize,
    smoother: LinearSmoother,
    /// Samples left until the next grid point of the running ramp; 0 means "apply the next
    /// value before the next sample".
    countdown: usize,
}

/// An ordered list of effects, processed in place one after the other.
///
/// - [`Chain::prepare`] prepares every effect and preallocates everything;
///   [`Chain::process`] never allocates, whatever the block length.
/// - Parameters are addressed as `"<index>.<name>"`. Changes of smoothed parameters ramp
///   linearly over [`Chain::smoothing_ms`] (20 ms by default), updated every [`SMOOTH_STEP`]
///   samples counted from the start of the ramp, so the output does not depend on how the
///   stream is cut into blocks. Changes never reset filter state.
///
/// ```
/// use rtfx::dsp::Chain;
/// use rtfx::dsp::spec::parse_chain;
///
/// let mut chain: Chain = parse_chain(&["gain:0.5"]).unwrap();
/// chain.prepare(48000.0, 512, 2).unwrap();
/// let mut left = vec![1.0f32; 512];
/// let mut right = vec![1.0f32; 512];
/// chain.process(&mut [&mut left[..], &mut right[..]]);
/// assert_eq!(left[0], 0.5);
///
/// // Ramp the gain to 0.25 over 20 ms; the target is visible at once.
/// chain.set_param("0.gain", 0.25).unwrap();
/// assert_eq!(chain.get_param("0.gain").unwrap(), 0.25);
/// let err = chain.set_param("0.gian", 1.0).unwrap_err();
/// assert!(err.to_string().contains("did you mean 'gain'?"));
/// ```
pub struct Chain {
    effects: Vec<Box<dyn Effect>>,
    prepared: bool,
    sample_rate: f64,
    max_block: usize,
    channels: usize,
    smoothing_ms: f64,
    /// One slot per smoothed parameter of every effect (sized in `prepare`).
    slots: Vec<Slot>,
    /// `slot_of[param_base[effect] + param]` is the slot of a parameter, or `NO_SLOT`.
    param_base: Vec<usize>,
    slot_of: Vec<usize>,
    /// True while any slot ramps.
    ramping: bool,
    /// Preallocated room for the channel slices of one piece of a block; always empty between
    /// calls (its element lifetime is only a placeholder).
    scratch: Vec<&'static mut [f32]>,
    /// Room to run consecutive filters (and linear gains) as one cascade, sized in `prepare`.
    fused: SosCascade,
}

impl Chain {
    /// A chain of these effects, unprepared.
    pub fn new(effects: Vec<Box<dyn Effect>>) -> Self {
        Self {
            effects,
            prepared: false,
            sample_rate: 0.0,
            max_block: 0,
            channels: 0,
            smoothing_ms: DEFAULT_SMOOTHING_MS,
            slots: Vec::new(),
            param_base: Vec::new(),
            slot_of: Vec::new(),
            ramping: false,
            scratch: Vec::new(),
            fused: SosCascade::new(&[], 0),
        }
    }

    /// Appends an effect. The chain becomes unprepared: call [`Chain::prepare`] again before
    /// processing.
    pub fn push(&mut self, effect: Box<dyn Effect>) {
        self.unprepare();
        self.effects.push(effect);
    }

    /// Number of effects.
    pub fn len(&self) -> usize {
        self.effects.len()
    }

    /// True when the chain has no effects (it then passes audio through).
    pub fn is_empty(&self) -> bool {
        self.effects.is_empty()
    }

    /// The effects, in processing order. While a parameter ramps, an effect reports the value
    /// it currently uses; [`Chain::get_param`] reports the target.
    pub fn effects(&self) -> &[Box<dyn Effect>] {
        &self.effects
    }

    /// The effect at `index`, if any.
    pub fn effect(&self, index: usize) -> Option<&dyn Effect> {
        self.effects.get(index).map(|e| e.as_ref())
    }

    /// True after a successful [`Chain::prepare`] (and until [`Chain::push`]).
    pub fn is_prepared(&self) -> bool {
        self.prepared
    }

    /// The prepared sample rate (0 before [`Chain::prepare`]).
    pub fn sample_rate(&self) -> f64 {
        self.sample_rate
    }

    /// The prepared maximum block length (0 before [`Chain::prepare`]).
    pub fn max_block(&self) -> usize {
        self.max_block
    }

    /// The prepared channel count (0 before [`Chain::prepare`]).
    pub fn channels(&self) -> usize {
        self.channels
    }

    /// Ramp length of smoothed parameters, in milliseconds.
    pub fn smoothing_ms(&self) -> f64 {
        self.smoothing_ms
    }

    /// Sets the ramp length of smoothed parameters (0 turns smoothing off). Applies to ramps
    /// started afterwards.
    pub fn set_smoothing_ms(&mut self, ms: f64) -> Result<()> {
        if !ms.is_finite() || !(0.0..=MAX_SMOOTHING_MS).contains(&ms) {
            return Err(
                Error::invalid_range("Invalid smoothing time", "smoothing_ms", ms)
                    .with_expected(format!("[0, {MAX_SMOOTHING_MS}] ms"))
                    .with_suggestion("use a few milliseconds, e.g. 20"),
            );
        }
        self.smoothing_ms = ms;
        Ok(())
    }

    /// Prepares every effect for this sample rate, maximum block length and channel count, and
    /// preallocates the smoothers. Clears all state; running ramps jump to their targets.
    ///
    /// Fails on a sample rate outside `[1, 768000]` Hz, a zero block length or channel count,
    /// or when an effect's parameters make no sense at this rate; the error then names the
    /// effect's index and name, and its parameter as `"<index>.<name>"`.
    pub fn prepare(&mut self, sample_rate: f64, max_block: usize, channels: usize) -> Result<()> {
        if !sample_rate.is_finite() || !(1.0..=MAX_SAMPLE_RATE).contains(&sample_rate) {
            return Err(Error::invalid_sample_rate(
                sample_rate,
                format!("a rate in [1, {MAX_SAMPLE_RATE}] Hz"),
            ));
        }
        if max_block == 0 {
            return Err(Error::invalid_range(
                "Maximum block length must be at least 1",
                "max_block",
                0,
            )
            .with_expected("at least 1 frame")
            .with_suggestion("use the host's maximum block size, e.g. 512"));
        }
        if channels == 0 {
            return Err(
                Error::invalid_range("Channel count must be at least 1", "channels", 0)
                    .with_expected("at least 1 channel"),
            );
        }
        self.unprepare();
        for (i, fx) in self.effects.iter_mut().enumerate() {
            fx.prepare(sample_rate, max_block, channels)
                .map_err(|e| in_effect(e, i, fx.name()))?;
        }
        self.param_base.clear();
        self.slot_of.clear();
        for (i, fx) in self.effects.iter().enumerate() {
            self.param_base.push(self.slot_of.len());
            for (param, info) in fx.params().iter().enumerate() {
                if info.smoothed {
                    self.slot_of.push(self.slots.len());
                    let value = fx.get_param_at(param).unwrap_or(f64::NAN);
                    self.slots.push(Slot {
                        effect: i,
                        param,
                        smoother: LinearSmoother::new(value),
                        countdown: 0,
                    });
                } else {
                    self.slot_of.push(NO_SLOT);
                }
            }
        }
        self.scratch = Vec::with_capacity(channels);
        let fusable = self
            .effects
            .iter()
            .filter(|fx| fx.cascade().is_some())
            .count();
        self.fused = SosCascade::with_capacity(fusable * MAX_SECTIONS, channels);
        self.sample_rate = sample_rate;
        self.max_block = max_block;
        self.channels = channels;
        self.prepared = true;
        Ok(())
    }

    /// Ends running ramps on their targets and forgets the preparation.
    fn unprepare(&mut self) {
        self.finish_ramps();
        self.slots.clear();
        self.prepared = false;
    }

    /// Applies the target of every running ramp at once.
    fn finish_ramps(&mut self) {
        for slot in self.slots.iter_mut().filter(|s| s.smoother.is_active()) {
            let target = slot.smoother.target();
            let _ = self.effects[slot.effect].set_param_at(slot.param, target);
            slot.smoother.reset(target);
        }
        self.ramping = false;
    }

    /// Processes one planar block in place through every effect, in order. Never allocates.
    ///
    /// Any length is accepted: blocks longer than the prepared maximum are processed in pieces
    /// of at most that length. Channels beyond the prepared count pass through the pieces
    /// untouched. Before [`Chain::prepare`] the audio passes through unchanged.
    pub fn process(&mut self, block: &mut [&mut [f32]]) {
        let frames = frames(block);
        if !self.prepared || frames == 0 {
            return;
        }
        if !self.ramping && frames <= self.max_block {
            run_effects(&mut self.effects, &mut self.fused, block);
            return;
        }
        let mut pos = 0;
        while pos < frames {
            let mut len = (frames - pos).min(self.max_block);
            if self.ramping {
                len = len.min(self.update_ramps());
            }
            let mut piece: Vec<&mut [f32]> = std::mem::take(&mut self.scratch);
            let room = piece.capacity();
            for channel in block.iter_mut().take(room) {
                let end = (pos + len).min(channel.len());
                piece.push(&mut channel[pos.min(end)..end]);
            }
            run_effects(&mut self.effects, &mut self.fused, &mut piece);
            self.scratch = recycle(piece);
            for slot in self.slots.iter_mut().filter(|s| s.smoother.is_active()) {
                slot.countdown -= len;
            }
            pos += len;
        }
    }

    /// Applies the next value of every ramp that reached a grid point; returns how many samples
    /// may be processed before the next grid point.
    fn update_ramps(&mut self) -> usize {
        let mut limit = usize::MAX;
        let mut any = false;
        for slot in self.slots.iter_mut().filter(|s| s.smoother.is_active()) {
            if slot.countdown == 0 {
                let value = slot.smoother.advance(SMOOTH_STEP);
                // The target was validated; an effect that refuses an intermediate value
                // (a mode changed meanwhile) keeps its previous one.
                let _ = self.effects[slot.effect].set_param_at(slot.param, value);
                slot.countdown = SMOOTH_STEP;
            }
            if slot.smoother.is_active() {
                any = true;
                limit = limit.min(slot.countdown);
            }
        }
        self.ramping = any;
        limit
    }

    /// The metadata of the parameter at `addr`, if the address is valid.
    pub fn param_info_at(&self, addr: ParamAddress) -> Option<&'static ParamInfo> {
        self.effects.get(addr.effect)?.params().get(addr.param)
    }

    /// The smoother slot of a parameter, when the chain is prepared and it is smoothed.
    fn slot_index(&self, addr: ParamAddress) -> Option<usize> {
        if !self.prepared {
            return None;
        }
        let base = *self.param_base.get(addr.effect)?;
        self.slot_of
            .get(base + addr.param)
            .copied()
            .filter(|&s| s != NO_SLOT)
    }

    /// Ramp length in samples at the prepared rate.
    fn ramp_samples(&self) -> usize {
        (self.smoothing_ms * self.sample_rate / 1000.0).round() as usize
    }

    /// Resolves a parameter path `"<index>.<name>"` (split at the first dot; the name is
    /// case-insensitive). Errors show the path and suggest the valid index range or the
    /// nearest parameter name.
    pub fn resolve(&self, path: &str) -> Result<ParamAddress> {
        let valid = || match self.effects.len() {
            0 => "the chain is empty: add an effect first".to_string(),
            1 => "use index 0 (the chain has 1 effect)".to_string(),
            n => format!("use an index in 0..={} (the chain has {n} effects)", n - 1),
        };
        let Some((index_text, name)) = path.trim().split_once('.') else {
            let example = match path
                .trim()
                .parse::<usize>()
                .ok()
                .and_then(|i| self.effects.get(i))
            {
                Some(fx) => format!(
                    "write '<index>.<parameter>', e.g. '{}.{}'; parameters of '{}': {}",
                    path.trim(),
                    fx.params().first().map_or("gain", |p| p.name),
                    fx.name(),
                    param_names(fx.params())
                ),
                None => "write '<index>.<parameter>', e.g. '0.cutoff'".to_string(),
            };
            return Err(path_error(
                format!(
                    "Invalid parameter path '{}': missing the parameter name",
                    clip(path)
                ),
                path,
                path,
            )
            .with_expected("<index>.<parameter>")
            .with_suggestion(example));
        };
        let index_text = index_text.trim();
        let name = name.trim();
        let Ok(index) = index_text.parse::<usize>() else {
            return Err(path_error(
                format!(
                    "Invalid parameter path '{}': '{}' is not an effect index",
                    clip(path),
                    clip(index_text)
                ),
                path,
                index_text,
            )
            .with_expected("<index>.<parameter> with a whole-number index")
            .with_suggestion(valid()));
        };
        let Some(fx) = self.effects.get(index) else {
            let mut e = Error::invalid_range(
                format!(
                    "Invalid parameter path '{}': effect index {index} is out of range",
                    clip(path)
                ),
                clip(path),
                index,
            )
            .with_suggestion(valid());
            if let Some(last) = self.effects.len().checked_sub(1) {
                e = e.with_expected(format!("an index in 0..={last}"));
            }
            return Err(e);
        };
        if name.is_empty() {
            return Err(path_error(
                format!(
                    "Invalid parameter path '{}': missing the parameter name",
                    clip(path)
                ),
                path,
                path,
            )
            .with_suggestion(format!(
                "parameters of '{}': {}",
                fx.name(),
                param_names(fx.params())
            )));
        }
        match fx
            .params()
            .iter()
            .position(|p| p.name.eq_ignore_ascii_case(name))
        {
            Some(param) => Ok(ParamAddress {
                effect: index,
                param,
            }),
            None => {
                let e = unknown_param(fx.name(), fx.params(), name);
                let message = format!("{} (path '{}')", e.message(), clip(path));
                Err(e.with_message(message).with_parameter_name(clip(path)))
            }
        }
    }

    /// Sets a parameter by path, e.g. `chain.set_param("0.cutoff", 800.0)`.
    ///
    /// The value is validated by the parameter's metadata and by the effect. When the chain is
    /// prepared and the parameter is smoothed, it ramps to the value over
    /// [`Chain::smoothing_ms`]; otherwise it applies at once. Filter state is never reset.
    pub fn set_param(&mut self, path: &str, value: f64) -> Result<()> {
        let addr = self.resolve(path)?;
        let info = self.effects[addr.effect].params()[addr.param];
        let value = info
            .validate(value)
            .map_err(|e| e.with_parameter_name(path))?;
        match self.slot_index(addr) {
            Some(s) if self.ramp_samples() > 0 => {
                let slot = self.slots[s];
                if slot.smoother.is_active() && slot.smoother.target() == value {
                    return Ok(());
                }
                // Let the effect check the value in its current mode, then restore the value in
                // force: the ramp moves it.
                let fx = &mut self.effects[addr.effect];
                fx.set_param_at(addr.param, value)
                    .map_err(|e| e.with_parameter_name(path))?;
                let _ = fx.set_param_at(addr.param, slot.smoother.current());
                self.start_ramp(s, value);
            }
            Some(s) => {
                self.effects[addr.effect]
                    .set_param_at(addr.param, value)
                    .map_err(|e| e.with_parameter_name(path))?;
                self.slots[s].smoother.reset(value);
            }
            None => self.effects[addr.effect]
                .set_param_at(addr.param, value)
                .map_err(|e| e.with_parameter_name(path))?,
        }
        Ok(())
    }

    /// Starts (or retargets) the ramp of slot `s`, from the next sample on.
    fn start_ramp(&mut self, s: usize, target: f64) {
        let ramp = self.ramp_samples();
        let slot = &mut self.slots[s];
        slot.smoother.set_target(target, ramp);
        slot.countdown = 0;
        if slot.smoother.is_active() {
            self.ramping = true;
        } else {
            let _ = self.effects[slot.effect].set_param_at(slot.param, target);
        }
    }

    /// Sets a resolved parameter, clamping the value into range instead of failing (NaN
    /// becomes the default). Does not allocate, so the real-time processor and the plugin
    /// call it on the audio thread. An invalid address is ignored.
    ///
    /// The value is not checked by the effect: if the effect refuses it in its current mode,
    /// the parameter keeps its previous value (building that error is the only allocation).
    pub fn set_param_at(&mut self, addr: ParamAddress, value: f64) {
        let Some(info) = self.param_info_at(addr) else {
            return;
        };
        let value = info.clamp(value);
        match self.slot_index(addr) {
            Some(s) if self.ramp_samples() > 0 => {
                let smoother = &self.slots[s].smoother;
                if smoother.is_active() && smoother.target() == value {
                    return;
                }
                self.start_ramp(s, value);
            }
            Some(s) => {
                let _ = self.effects[addr.effect].set_param_at(addr.param, value);
                self.slots[s].smoother.reset(value);
            }
            None => {
                let _ = self.effects[addr.effect].set_param_at(addr.param, value);
            }
        }
    }

    /// The value a parameter is set to (the target of a running ramp), or NaN for an invalid
    /// address or an unset parameter.
    pub fn get_param_at(&self, addr: ParamAddress) -> f64 {
        if let Some(s) = self.slot_index(addr) {
            return self.slots[s].smoother.target();
        }
        match self.param_info_at(addr) {
            Some(_) => self.effects[addr.effect]
                .get_param_at(addr.param)
                .unwrap_or(f64::NAN),
            None => f64::NAN,
        }
    }

    /// The value a parameter is set to (the target of a running ramp), by path.
    pub fn get_param(&self, path: &str) -> Result<f64> {
        Ok(self.get_param_at(self.resolve(path)?))
    }

    /// Clears the state of every effect; running ramps jump to their targets.
    pub fn reset(&mut self) {
        self.finish_ramps();
        for fx in &mut self.effects {
            fx.reset();
        }
    }

    /// Total latency of the chain in samples (sum over the effects).
    pub fn latency_samples(&self) -> usize {
        self.effects
            .iter()
            .map(|e| e.latency_samples())
            .fold(0, usize::saturating_add)
    }

    /// Samples until the output has decayed after the input stops: the sum of the effects'
    /// tails (conservative).
    pub fn tail_samples(&self) -> usize {
        self.effects
            .iter()
            .map(|e| e.tail_samples())
            .fold(0, usize::saturating_add)
    }
}

/// Runs the effects in order over one block. A run of consecutive filters (with any linear
/// gains between them) goes through `fused` in a single pass: one trip over the audio instead
/// of one per filter, with the filters' recursions overlapping in the CPU. The result equals
/// running them one by one up to rounding (gains are applied at the end of the run).
fn run_effects(effects: &mut [Box<dyn Effect>], fused: &mut SosCascade, block: &mut [&mut [f32]]) {
    let mut i = 0;
    while i < effects.len() {
        let (mut end, mut filters, mut sections, mut gain) = (i, 0, 0, 1.0);
        while end < effects.len() {
            if let Some(c) = effects[end].cascade() {
                filters += 1;
                sections += c.len();
            } else if let Some(g) = effects[end].linear_gain() {
                gain *= g;
            } else {
                break;
            }
            end += 1;
        }
        if filters > 0 && end - i > 1 && sections <= fused.capacity() {
            let run = &mut effects[i..end];
            fused.gather(run.iter().filter_map(|fx| fx.cascade()));
            fused.process_scaled(block, gain);
            fused.scatter(run.iter_mut().filter_map(|fx| fx.cascade_mut()));
            i = end;
        } else {
            effects[i].process(block);
            i += 1;
        }
    }
}

/// An empty vector of channel slices with its capacity kept, for any element lifetime.
fn recycle<'b>(mut piece: Vec<&mut [f32]>) -> Vec<&'b mut [f32]> {
    piece.clear();
    let mut piece = std::mem::ManuallyDrop::new(piece);
    let (ptr, capacity) = (piece.as_mut_ptr(), piece.capacity());
    // SAFETY: the vector is empty, so no reference of either lifetime exists in it; only the
    // allocation is handed over, and both element types have the same size and alignment.
    unsafe { Vec::from_raw_parts(ptr.cast::<&'b mut [f32]>(), 0, capacity) }
}

/// The comma-separated names of a parameter list.
fn param_names(params: &[ParamInfo]) -> String {
    params.iter().map(|p| p.name).collect::<Vec<_>>().join(", ")
}

/// An invalid-parameter error about a path.
fn path_error(message: String, path: &str, got: &str) -> Error {
    Error::invalid_parameter(message, clip(path), got)
}

/// `error` with `prefix` and ": " put before its message.
fn prefix_message(error: Error, prefix: &str) -> Error {
    let message = format!("{prefix}: {}", error.message());
    error.with_message(message)
}

/// An effect's error in the chain: the message names the effect by its index, counting from 0
/// like parameter paths ("effect 1 ('fir'): …"), and the parameter is `"i.name"`. Every error
/// about one effect of a chain is numbered this way.
pub(crate) fn in_effect(error: Error, index: usize, name: &str) -> Error {
    numbered(error, index, &format!("'{name}'"))
}

/// `error` about effect `index` of a chain, described by `what` (the name or spec in quotes,
/// maybe a line): "effect {index} ({what}): …", with the parameter as the path `"index.name"`.
pub(crate) fn numbered(error: Error, index: usize, what: &str) -> Error {
    let parameter = error.parameter_name().map(|p| format!("{index}.{p}"));
    let error = prefix_message(error, &format!("effect {index} ({what})"));
    match parameter {
        Some(p) => error.with_parameter_name(p),
        None => error,
    }
}

impl Clone for Chain {
    /// Copies the effects with their parameters (running ramps at their targets) and the
    /// smoothing time; prepares the copy like the original (with fresh state).
    fn clone(&self) -> Self {
        let mut effects: Vec<Box<dyn Effect>> =
            self.effects.iter().map(|e| e.clone_box()).collect();
        for slot in self.slots.iter().filter(|s| s.smoother.is_active()) {
            let _ = effects[slot.effect].set_param_at(slot.param, slot.smoother.target());
        }
        let mut chain = Chain::new(effects);
        chain.smoothing_ms = self.smoothing_ms;
        if self.prepared {
            // The same parameters prepared fine at these settings before.
            let _ = chain.prepare(self.sample_rate, self.max_block, self.channels);
        }
        chain
    }
}

impl PartialEq for Chain {
    /// Equal when the effects have the same names and every parameter the same value
    /// (targets of running ramps; NaN equals NaN).
    fn eq(&self, other: &Self) -> bool {
        self.len() == other.len()
            && self
                .effects
                .iter()
                .zip(&other.effects)
                .enumerate()
                .all(|(i, (a, b))| {
                    a.name() == b.name()
                        && a.params().len() == b.params().len()
                        && (0..a.params().len()).all(|param| {
                            let addr = ParamAddress { effect: i, param };
                            let (x, y) = (self.get_param_at(addr), other.get_param_at(addr));
                            x == y || (x.is_nan() && y.is_nan())
                        })
                })
    }
}

impl fmt::Debug for Chain {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let effects: Vec<String> = self
            .effects
            .iter()
            .enumerate()
            .map(|(i, fx)| {
                let params: Vec<String> = fx
                    .params()
                    .iter()
                    .enumerate()
                    .map(|(param, p)| {
                        format!(
                            "{}={}",
                            p.name,
                            self.get_param_at(ParamAddress { effect: i, param })
                        )
                    })
                    .collect();
                format!("{}({})", fx.name(), params.join(", "))
            })
            .collect();
        f.debug_struct("Chain")
            .field("effects", &effects)
            .field("prepared", &self.prepared)
            .field("sample_rate", &self.sample_rate)
            .field("max_block", &self.max_block)
            .field("channels", &self.channels)
            .finish()
    }
}

/// The nearest effect parameter path to `path` among all of a chain's paths (for messages).
pub fn nearest_path(chain: &Chain, path: &str) -> Option<String> {
    let paths: Vec<String> = chain
        .effects
        .iter()
        .enumerate()
        .flat_map(|(i, fx)| fx.params().iter().map(move |p| format!("{i}.{}", p.name)))
        .collect();
    nearest(path, paths.iter().map(String::as_str)).map(str::to_string)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dsp::{ParamInfo, param_info_at};

    static TEST_PARAMS: [ParamInfo; 3] = [
        ParamInfo::continuous("gain", 0.0, 4.0, 1.0, "", "factor"),
        ParamInfo::continuous("cutoff", 10.0, 20_000.0, 1000.0, "Hz", "unused"),
        ParamInfo::choice("mode", &["normal", "inverted"], 0, "sign"),
    ];

    /// A gain with a smoothed "gain", a smoothed (unused) "cutoff" and an unsmoothed choice.
    #[derive(Clone)]
    struct TestGain {
        gain: f64,
        cutoff: f64,
        mode: f64,
        channels: usize,
        latency: usize,
        tail: usize,
        fail_prepare: bool,
    }

    impl TestGain {
        fn boxed() -> Box<dyn Effect> {
            Box::new(Self::new())
        }
        fn new() -> Self {
            Self {
                gain: 1.0,
                cutoff: 1000.0,
                mode: 0.0,
                channels: 0,
                latency: 0,
                tail: 0,
                fail_prepare: false,
            }
        }
    }

    impl Effect for TestGain {
        fn name(&self) -> &'static str {
            "testgain"
        }
        fn params(&self) -> &'static [ParamInfo] {
            &TEST_PARAMS
        }
        fn get_param_at(&self, index: usize) -> Option<f64> {
            [self.gain, self.cutoff, self.mode].get(index).copied()
        }
        fn set_param_at(&mut self, index: usize, value: f64) -> Result<()> {
            let p = param_info_at(self.name(), &TEST_PARAMS, index)?;
            let v = p.validate(value)?;
            match index {
                0 => self.gain = v,
                1 => self.cutoff = v,
                2 => self.mode = v,
                _ => return Err(crate::dsp::unhandled_param(self.name(), p)),
            }
            Ok(())
        }
        fn prepare(&mut self, sample_rate: f64, _max_block: usize, channels: usize) -> Result<()> {
            if self.fail_prepare || self.cutoff >= sample_rate / 2.0 {
                return Err(Error::invalid_parameter(
                    "cutoff above Nyquist",
                    "cutoff",
                    self.cutoff,
                ));
            }
            self.channels = channels;
            Ok(())
        }
        fn process(&mut self, block: &mut [&mut [f32]]) {
            let g = (if self.mode == 1.0 {
                -self.gain
            } else {
                self.gain
            }) as f32;
            for channel in block.iter_mut().take(self.channels) {
                for x in channel.iter_mut() {
                    *x *= g;
                }
            }
        }
        fn reset(&mut self) {}
        fn latency_samples(&self) -> usize {
            self.latency
        }
        fn tail_samples(&self) -> usize {
            self.tail
        }
        fn clone_box(&self) -> Box<dyn Effect> {
            Box::new(self.clone())
        }
    }

    fn chain_of(n: usize) -> Chain {
        Chain::new((0..n).map(|_| TestGain::boxed()).collect())
    }

    fn ramp_input(channels: usize, frames: usize) -> Vec<Vec<f32>> {
        (0..channels)
            .map(|c| {
                (0..frames)
                    .map(|n| ((n * 7 + c * 13) % 17) as f32 / 17.0 - 0.4)
                    .collect()
            })
            .collect()
    }

    /// Runs `input` through `chain` in blocks of `sizes` (cycled), starting at `start`.
    fn run(chain: &mut Chain, data: &mut [Vec<f32>], start: usize, end: usize, sizes: &[usize]) {
        let mut pos = start;
        let mut i = 0;
        while pos < end {
            let n = sizes[i % sizes.len()].min(end - pos);
            i += 1;
            let mut block: Vec<&mut [f32]> =
                data.iter_mut().map(|c| &mut c[pos..pos + n]).collect();
            chain.process(&mut block);
            pos += n;
        }
    }

    /// Processes 4000 frames with ramps started at frames 0, 1000 (retarget of a running ramp
    /// at 1500) and 3000, cutting each segment into blocks of `sizes`.
    fn scheduled(sizes: &[usize]) -> (Vec<Vec<f32>>, Chain) {
        let mut chain = chain_of(1);
        chain.prepare(48000.0, 512, 2).unwrap();
        let mut data = ramp_input(2, 4000);
        chain.set_param("0.gain", 0.0).unwrap();
        run(&mut chain, &mut data, 0, 1000, sizes);
        chain.set_param("0.gain", 2.0).unwrap();
        run(&mut chain, &mut data, 1000, 1500, sizes);
        chain.set_param("0.gain", 0.5).unwrap();
        chain.set_param("0.cutoff", 20.0).unwrap();
        run(&mut chain, &mut data, 1500, 3000, sizes);
        chain.set_param("0.gain", 3.0).unwrap();
        run(&mut chain, &mut data, 3000, 4000, sizes);
        (data, chain)
    }

    #[test]
    fn smoothing_is_independent_of_block_sizes() {
        let (reference, _) = scheduled(&[usize::MAX]);
        for sizes in [
            vec![1],
            vec![7],
            vec![64],
            vec![512],
            vec![5000],
            crate::dsp::fx::test_util::random_sizes(500, 300, 99),
        ] {
            let (got, _) = scheduled(&sizes);
            for (c, (g, r)) in got.iter().zip(&reference).enumerate() {
                for (n, (a, b)) in g.iter().zip(r).enumerate() {
                    assert_eq!(
                        a.to_bits(),
                        b.to_bits(),
                        "sizes {:?}: ch {c} frame {n}",
                        &sizes[..1]
                    );
                }
            }
        }
    }

    #[test]
    fn gain_ramp_lands_exactly_on_target() {
        let mut chain = chain_of(1);
        chain.prepare(48000.0, 256, 1).unwrap();
        chain.set_param("0.gain", 0.0).unwrap();
        assert_eq!(chain.get_param("0.gain").unwrap(), 0.0);
        // The effect still has the old value until audio runs.
        assert_eq!(chain.effect(0).unwrap().get_param("gain"), Some(1.0));
        let mut data = vec![vec![1.0f32; 2000]];
        run(&mut chain, &mut data, 0, 2000, &[100]);
        let out = &data[0];
        // 20 ms at 48 kHz = 960 samples = 30 steps of 32.
        assert_eq!(out[0], (1.0 - 1.0 / 30.0) as f32);
        assert_eq!(out[31], out[0]);
        assert!(out[32] < out[31]);
        for w in out[..960].windows(2) {
            assert!(w[1] <= w[0]);
        }
        assert!(out[927] > 0.0);
        assert!(
            out[928..].iter().all(|&x| x == 0.0),
            "ramp must end exactly on 0"
        );
        assert_eq!(chain.effect(0).unwrap().get_param("gain"), Some(0.0));
        assert!(!chain.ramping);
    }

    #[test]
    fn unprepared_or_unsmoothed_changes_apply_at_once() {
        let mut chain = chain_of(1);
        chain.set_param("0.gain", 0.5).unwrap();
        assert_eq!(chain.effect(0).unwrap().get_param("gain"), Some(0.5));
        chain.prepare(48000.0, 64, 1).unwrap();
        chain.set_param("0.mode", 1.0).unwrap();
        assert_eq!(chain.effect(0).unwrap().get_param("mode"), Some(1.0));
        chain.set_smoothing_ms(0.0).unwrap();
        chain.set_param("0.gain", 2.0).unwrap();
        assert_eq!(chain.effect(0).unwrap().get_param("gain"), Some(2.0));
        let mut data = vec![vec![1.0f32; 10]];
        run(&mut chain, &mut data, 0, 10, &[10]);
        assert!(data[0].iter().all(|&x| x == -2.0));
        assert!(chain.set_smoothing_ms(-1.0).is_err());
        assert!(chain.set_smoothing_ms(f64::NAN).is_err());
    }

    #[test]
    fn unprepared_chain_passes_audio_through() {
        let mut chain = chain_of(2);
        chain.set_param("1.gain", 3.0).unwrap();
        let mut data = ramp_input(2, 50);
        let before = data.clone();
        run(&mut chain, &mut data, 0, 50, &[50]);
        assert_eq!(data, before);
    }

    #[test]
    fn long_blocks_are_split_at_max_block() {
        let mut a = chain_of(2);
        a.set_param("0.gain", 0.5).unwrap();
        let mut b = a.clone();
        a.prepare(44100.0, 16, 2).unwrap();
        b.prepare(44100.0, 4096, 2).unwrap();
        let mut x = ramp_input(2, 1000);
        let mut y = x.clone();
        run(&mut a, &mut x, 0, 1000, &[1000]);
        run(&mut b, &mut y, 0, 1000, &[1000]);
        assert_eq!(x, y);
        // Extra channels beyond the prepared count pass the pieces untouched.
        let mut wide = ramp_input(3, 100);
        let third = wide[2].clone();
        run(&mut a, &mut wide, 0, 100, &[100]);
        assert_eq!(wide[2], third);
    }

    #[test]
    fn bad_paths_are_errors_with_suggestions() {
        let mut chain = chain_of(2);
        let e = chain.set_param("x.cutoff", 1.0).unwrap_err().to_string();
        assert!(
            e.contains("'x.cutoff'") && e.contains("not an effect index") && e.contains("0..=1"),
            "{e}"
        );
        let e = chain.set_param("9.cutoff", 1.0).unwrap_err();
        assert!(matches!(e, Error::InvalidRange(_)));
        let e = e.to_string();
        assert!(
            e.contains("'9.cutoff'") && e.contains("out of range") && e.contains("0..=1"),
            "{e}"
        );
        let e = chain.set_param("0", 1.0).unwrap_err().to_string();
        assert!(
            e.contains("missing the parameter name") && e.contains("'0.gain'"),
            "{e}"
        );
        let e = chain.set_param("0.", 1.0).unwrap_err().to_string();
        assert!(e.contains("missing the parameter name"), "{e}");
        let e = chain.set_param("0.cutof", 1.0).unwrap_err();
        assert_eq!(e.parameter_name(), Some("0.cutof"));
        let e = e.to_string();
        assert!(
            e.contains("did you mean 'cutoff'?") && e.contains("'0.cutof'"),
            "{e}"
        );
        let e = Chain::new(vec![])
            .get_param("0.gain")
            .unwrap_err()
            .to_string();
        assert!(e.contains("the chain is empty"), "{e}");
        // Values are validated too, naming the path.
        let e = chain.set_param("1.gain", 9.0).unwrap_err();
        assert_eq!(e.parameter_name(), Some("1.gain"));
        assert!(chain.set_param("1.mode", 0.5).is_err());
        // Names are case-insensitive; whitespace is trimmed.
        chain.set_param(" 1 . GAIN ", 2.0).unwrap();
        assert_eq!(chain.get_param("1.gain").unwrap(), 2.0);
    }

    #[test]
    fn set_param_at_clamps_and_ignores_bad_addresses() {
        let mut chain = chain_of(1);
        chain.prepare(48000.0, 64, 1).unwrap();
        let addr = chain.resolve("0.gain").unwrap();
        assert_eq!(
            addr,
            ParamAddress {
                effect: 0,
                param: 0
            }
        );
        chain.set_param_at(addr, 99.0);
        assert_eq!(chain.get_param_at(addr), 4.0);
        chain.set_param_at(addr, f64::NAN);
        assert_eq!(chain.get_param_at(addr), 1.0);
        let mode = chain.resolve("0.MODE").unwrap();
        chain.set_param_at(mode, 0.7);
        assert_eq!(chain.get_param_at(mode), 1.0);
        chain.set_param_at(
            ParamAddress {
                effect: 5,
                param: 0,
            },
            1.0,
        );
        chain.set_param_at(
            ParamAddress {
                effect: 0,
                param: 9,
            },
            1.0,
        );
        assert!(
            chain
                .get_param_at(ParamAddress {
                    effect: 0,
                    param: 9
                })
                .is_nan()
        );
    }

    #[test]
    fn repeated_same_target_does_not_restart_the_ramp() {
        let mut chain = chain_of(1);
        chain.prepare(48000.0, 64, 1).unwrap();
        let addr = chain.resolve("0.gain").unwrap();
        let mut data = vec![vec![1.0f32; 960]];
        let mut pos = 0;
        while pos < 960 {
            chain.set_param_at(addr, 0.0); // a host re-sending the same value every block
            run(&mut chain, &mut data, pos, pos + 64, &[64]);
            pos += 64;
        }
        assert_eq!(chain.effect(0).unwrap().get_param("gain"), Some(0.0));
    }

    #[test]
    fn prepare_validates_and_names_the_failing_effect() {
        let mut chain = chain_of(2);
        assert!(matches!(
            chain.prepare(0.0, 64, 1),
            Err(Error::InvalidSampleRate(_))
        ));
        assert!(matches!(
            chain.prepare(f64::NAN, 64, 1),
            Err(Error::InvalidSampleRate(_))
        ));
        assert!(matches!(
            chain.prepare(768_001.0, 64, 1),
            Err(Error::InvalidSampleRate(_))
        ));
        assert!(matches!(
            chain.prepare(48000.0, 0, 1),
            Err(Error::InvalidRange(_))
        ));
        assert!(matches!(
            chain.prepare(48000.0, 64, 0),
            Err(Error::InvalidRange(_))
        ));
        chain.prepare(22050.5, 64, 1).unwrap();
        chain.set_param("1.cutoff", 15000.0).unwrap();
        let e = chain.prepare(8000.0, 64, 1).unwrap_err();
        assert_eq!(e.parameter_name(), Some("1.cutoff"));
        assert!(e.message().starts_with("effect 1 ('testgain'): "), "{e}");
        assert!(!chain.is_prepared());
        chain.prepare(48000.0, 64, 3).unwrap();
        assert_eq!(
            (chain.sample_rate(), chain.max_block(), chain.channels()),
            (48000.0, 64, 3)
        );
    }

    #[test]
    fn latency_and_tail_are_sums() {
        let mut a = TestGain::new();
        a.latency = 10;
        a.tail = 100;
        let mut b = TestGain::new();
        b.latency = 5;
        b.tail = usize::MAX;
        let mut chain = Chain::new(vec![Box::new(a.clone()), Box::new(a)]);
        assert_eq!(chain.latency_samples(), 20);
        assert_eq!(chain.tail_samples(), 200);
        chain.push(Box::new(b));
        assert_eq!(chain.latency_samples(), 25);
        assert_eq!(chain.tail_samples(), usize::MAX);
        assert_eq!(Chain::new(vec![]).latency_samples(), 0);
    }

    #[test]
    fn clone_and_eq_compare_parameters() {
        let mut a = chain_of(2);
        a.prepare(48000.0, 64, 2).unwrap();
        a.set_param("1.gain", 0.25).unwrap(); // ramping
        let b = a.clone();
        assert!(b.is_prepared());
        assert_eq!(a, b);
        assert_eq!(b.effect(1).unwrap().get_param("gain"), Some(0.25));
        let mut c = b.clone();
        c.set_param("0.mode", 1.0).unwrap();
        assert_ne!(a, c);
        assert_ne!(a, chain_of(1));
        assert!(format!("{a:?}").contains("testgain(gain=1, cutoff=1000, mode=0)"));
    }

    #[test]
    fn reset_ends_ramps_on_target() {
        let mut chain = chain_of(1);
        chain.prepare(48000.0, 64, 1).unwrap();
        chain.set_param("0.gain", 3.0).unwrap();
        chain.reset();
        assert_eq!(chain.effect(0).unwrap().get_param("gain"), Some(3.0));
        let mut data = vec![vec![1.0f32; 4]];
        run(&mut chain, &mut data, 0, 4, &[4]);
        assert!(data[0].iter().all(|&x| x == 3.0));
    }

    #[test]
    fn push_unprepares() {
        let mut chain = chain_of(1);
        chain.prepare(48000.0, 64, 1).unwrap();
        chain.push(TestGain::boxed());
        assert!(!chain.is_prepared());
        assert_eq!(chain.len(), 2);
        assert!(!chain.is_empty());
        assert_eq!(nearest_path(&chain, "1.gian").as_deref(), Some("1.gain"));
    }

    /// Runs `make()` over 6000 frames of stereo noise in blocks of `sizes`, changing every
    /// smoothed parameter of every effect at frames 1000 and 3500.
    fn scheduled_registry(make: &dyn Fn() -> Chain, sizes: &[usize]) -> Vec<Vec<f32>> {
        let mut chain = make();
        chain.prepare(48000.0, 256, 2).unwrap();
        let mut data = ramp_input(2, 6000);
        for (c, channel) in data.iter_mut().enumerate() {
            let mut state = 0x9E37_79B9_7F4A_7C15u64 + c as u64;
            for x in channel.iter_mut() {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                *x = ((state >> 40) as f32 / (1u64 << 24) as f32) * 1.6 - 0.8;
            }
        }
        let mut pos = 0;
        for (end, fraction) in [(1000, 0.0), (3500, 0.3), (6000, 0.6)] {
            if fraction > 0.0 {
                for i in 0..chain.len() {
                    for info in chain.effects()[i].params() {
                        if info.smoothed && info.max.is_finite() && info.min.is_finite() {
                            let v = info.min + (info.max - info.min) * fraction * 0.5;
                            let _ = chain.set_param(&format!("{i}.{}", info.name), v);
                        }
                    }
                }
            }
            run(&mut chain, &mut data, pos, end, sizes);
            pos = end;
        }
        data
    }

    #[test]
    fn registry_effects_ramp_identically_for_any_block_sizes() {
        use crate::dsp::registry::{build, entries, example_value};
        let make = || {
            let effects = entries()
                .iter()
                // Normalize works per block by design (torchfx's per-chunk normalisation).
                .filter(|e| e.name != "normalize")
                .map(|e| {
                    let infos = e.params();
                    let params: Vec<(String, crate::dsp::ParamValue)> = e
                        .required
                        .iter()
                        .filter_map(|g| g.first())
                        .map(|n| {
                            let info = infos.iter().find(|i| i.name == *n).unwrap();
                            (info.name.to_string(), info.to_value(example_value(info)))
                        })
                        .collect();
                    build(e.name, &params).unwrap()
                })
                .collect();
            Chain::new(effects)
        };
        let reference = scheduled_registry(&make, &[usize::MAX]);
        assert!(reference.iter().flatten().all(|x| x.is_finite()));
        for sizes in [
            vec![1],
            vec![7],
            vec![64],
            crate::dsp::fx::test_util::random_sizes(800, 300, 5),
        ] {
            let got = scheduled_registry(&make, &sizes);
            for (c, (g, r)) in got.iter().zip(&reference).enumerate() {
                for (n, (a, b)) in g.iter().zip(r).enumerate() {
                    // The engine contract allows 1e-6 across block boundaries (bit-exact today).
                    assert!(
                        (a - b).abs() <= 1e-6,
                        "sizes {:?}: ch {c} frame {n}: {a} != {b}",
                        &sizes[..1]
                    );
                }
            }
        }
    }

    #[test]
    fn registry_gain_ramp_is_bit_exact_for_any_block_sizes() {
        let Ok(gain) = crate::dsp::registry::build(
            "gain",
            &[("gain".into(), crate::dsp::ParamValue::Number(1.0))],
        ) else {
            return;
        };
        let run_with = |sizes: &[usize]| {
            let mut chain = Chain::new(vec![gain.clone()]);
            chain.prepare(48000.0, 512, 2).unwrap();
            chain.set_param("0.gain", 0.0).unwrap();
            let mut data = ramp_input(2, 2000);
            run(&mut chain, &mut data, 0, 2000, sizes);
            data
        };
        let reference = run_with(&[usize::MAX]);
        assert!(
            reference[0][960..].iter().all(|&x| x == 0.0),
            "the ramp ends exactly on 0"
        );
        assert!(reference[0][..928].iter().any(|&x| x != 0.0));
        for sizes in [
            vec![1],
            vec![7],
            vec![64],
            crate::dsp::fx::test_util::random_sizes(300, 300, 17),
        ] {
            assert_eq!(run_with(&sizes), reference, "sizes {:?}", &sizes[..1]);
        }
    }

    #[test]
    fn zero_length_and_channelless_blocks_are_fine() {
        let mut chain = chain_of(1);
        chain.prepare(48000.0, 64, 2).unwrap();
        chain.set_param("0.gain", 0.0).unwrap();
        chain.process(&mut []);
        let mut empty: [&mut [f32]; 2] = [&mut [], &mut []];
        chain.process(&mut empty);
        assert!(chain.ramping);
    }
}

//! The channel strip the plugin runs: input gain → high-pass → low-pass → EQ (low shelf, peak,
//! high shelf) → compressor → delay → reverb → limiter → output gain, with a click-free enable
//! switch per section and a click-free, latency-compensated bypass.
//!
//! [`Strip`] knows nothing of nice-plug: it takes plain [`StripSettings`] (the targets) and
//! planar `f32` blocks, so tests, the plugin and its offload worker drive it the same way.
//! It arranges [`crate::dsp`] parts and re-implements no DSP: the effects and filter designs,
//! set by parameter index, and the section machinery of [`crate::dsp::section`] (switch and
//! bypass cross-fades, gain ramps, the bypass and limiter delay lines, the order-change
//! cross-fade). What is its own is the arrangement: the order of the sections, when each
//! switches, the latency compensation and the meters.
//!
//! Real-time contract: [`Strip::prepare`] allocates everything; [`Strip::process`] and
//! [`Strip::reset`] never allocate, lock, log or panic, for any block length (blocks longer than
//! the prepared maximum are fine too: the strip works in steps of [`STEP`] frames).
//!
//! Smoothing: every continuous parameter ramps linearly over [`SMOOTHING_MS`] to its new target
//! (cutoffs and EQ frequencies on a logarithmic scale), applied every [`STEP`] frames; gains are
//! interpolated per sample. Enable switches and the bypass cross-fade over [`FADE_MS`]. Filter
//! parameter changes (cutoff, order, gain, Q) redesign the coefficients and keep the filter
//! state: the high- and low-pass always run four second-order sections (unused ones are
//! pass-through sections), so even an order change keeps the state.
//!
//! Safety: non-finite and subnormal output samples are written as exact zeros, and the dsp
//! effects flush their own state, so a NaN never latches and silence never decays into
//! subnormal numbers.

use crate::dsp::chain::{DEFAULT_SMOOTHING_MS, SMOOTH_STEP};
use crate::dsp::filter::biquad::{BiquadKind, design_biquad};
use crate::dsp::filter::design::{BandType, Family, Section, design_iir};
use crate::dsp::filter::engine::{EngineCascade, EngineFactory};
use crate::dsp::filter::sos::SosCascade;
use crate::dsp::fx::{Compressor, Delay, Limiter, Reverb};
use crate::dsp::section::{
    CrossfadingCascade, DelayLines, FadePlan, SectionFade, block_peak, crossfade, ramp_gain,
    run_faded,
};
use crate::dsp::smooth::LinearSmoother;
use crate::dsp::{
    Chain, Effect, FLUSH_BELOW_F32, db_to_gain, gain_to_db, with_frames_mut, with_planar_mut,
};
use crate::error::Result;

/// Frames per processing step: parameter ramps advance and coefficients are updated once per
/// step (the chain's [`SMOOTH_STEP`], so that the strip and its exported chain ramp alike).
pub const STEP: usize = SMOOTH_STEP;
/// Ramp time of continuous parameters, in milliseconds (the chain's default).
pub const SMOOTHING_MS: f64 = DEFAULT_SMOOTHING_MS;
/// Cross-fade time of the enable switches and the bypass, in milliseconds.
pub const FADE_MS: f64 = 10.0;
/// Highest high-/low-pass order.
pub const MAX_FILTER_ORDER: usize = 8;
/// Longest limiter lookahead, in milliseconds (the lookahead is the plugin's latency).
pub const MAX_LOOKAHEAD_MS: f64 = 20.0;
/// Longest delay time, in milliseconds.
pub const MAX_DELAY_MS: f64 = 4000.0;
/// Lowest cutoff or EQ frequency, in Hz.
pub const MIN_FREQ_HZ: f64 = 10.0;
/// Channels the strip processes (the plugin's layouts are mono and stereo); further channels
/// pass through unchanged.
pub const STRIP_CHANNELS: usize = 2;

/// Second-order sections the high- and low-pass always run (order 8 needs four).
const FILTER_SECTIONS: usize = MAX_FILTER_ORDER.div_ceil(2);

// ---------------------------------------------------------------------------------------------
// Settings

/// A high- or low-pass section (Butterworth).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FilterSettings {
    /// Section switch.
    pub enabled: bool,
    /// Cutoff in Hz (clamped to [`MIN_FREQ_HZ`] and, by the filter designer, below Nyquist).
    pub cutoff_hz: f64,
    /// Order 1–[`MAX_FILTER_ORDER`] (6 dB/octave per order).
    pub order: usize,
}

/// One EQ band (RBJ shelf or peak).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct EqBand {
    /// Corner or centre frequency in Hz.
    pub freq_hz: f64,
    /// Gain in dB.
    pub gain_db: f64,
    /// Quality factor (shelf slope for the shelves).
    pub q: f64,
}

/// The three-band EQ.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct EqSettings {
    /// Section switch.
    pub enabled: bool,
    /// Low shelf.
    pub low_shelf: EqBand,
    /// Peak (bell).
    pub peak: EqBand,
    /// High shelf.
    pub high_shelf: EqBand,
}

/// The compressor ([`Compressor`], peak detector).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CompressorSettings {
    /// Section switch.
    pub enabled: bool,
    /// Threshold in dBFS.
    pub threshold_db: f64,
    /// Ratio (100 = infinite).
    pub ratio: f64,
    /// Attack in milliseconds.
    pub attack_ms: f64,
    /// Release in milliseconds.
    pub release_ms: f64,
    /// Knee width in dB.
    pub knee_db: f64,
    /// Makeup gain in dB.
    pub makeup_db: f64,
}

/// How the delay time is given.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum DelayTime {
    /// Milliseconds.
    Ms(f64),
    /// A note value (fraction of a whole note, e.g. 0.125 for 1/8) at a tempo in BPM.
    Note {
        /// Fraction of a whole note.
        fraction: f64,
        /// Tempo in beats (quarter notes) per minute.
        bpm: f64,
    },
}

impl DelayTime {
    /// The delay in milliseconds, clamped to (0, [`MAX_DELAY_MS`]]; a bad tempo counts as 120.
    pub fn ms(self) -> f64 {
        let ms = match self {
            DelayTime::Ms(ms) => ms,
            DelayTime::Note { fraction, bpm } => {
                let bpm = if bpm.is_finite() && bpm > 0.0 {
                    bpm
                } else {
                    120.0
                };
                fraction * 4.0 * 60_000.0 / bpm
            }
        };
        if ms.is_finite() {
            ms.clamp(0.1, MAX_DELAY_MS)
        } else {
            250.0
        }
    }
}

/// The feedback delay ([`Delay`]).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DelaySettings {
    /// Section switch.
    pub enabled: bool,
    /// Delay time.
    pub time: DelayTime,
    /// Feedback share, 0–0.95.
    pub feedback: f64,
    /// Wet share, 0–1.
    pub mix: f64,
    /// Stereo ping-pong (stereo only).
    pub ping_pong: bool,
}

/// The reverb ([`Reverb`], Freeverb).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ReverbSettings {
    /// Section switch.
    pub enabled: bool,
    /// Room size, 0–1.
    pub room_size: f64,
    /// Damping, 0–1.
    pub damping: f64,
    /// Wet share, 0–1.
    pub mix: f64,
}

/// The lookahead limiter ([`Limiter`]).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LimiterSettings {
    /// Section switch. The strip's latency is the lookahead whether the limiter is on or off
    /// (its delay stays in the path while it is off).
    pub enabled: bool,
    /// Ceiling in dBFS.
    pub ceiling_db: f64,
    /// Lookahead in milliseconds (0–[`MAX_LOOKAHEAD_MS`]).
    pub lookahead_ms: f64,
    /// Release in milliseconds.
    pub release_ms: f64,
    /// True-peak mode: the ceiling is in dBTP, peaks between the samples are limited too
    /// (see [`Limiter`]; the latency is then at least 0.75 ms).
    pub true_peak: bool,
}

impl LimiterSettings {
    /// The limiter's latency in samples at `fs`: its lookahead, in true-peak mode at least
    /// [`crate::dsp::fx::limiter::TRUE_PEAK_MIN_LATENCY`].
    pub fn latency_samples(&self, fs: f64) -> usize {
        crate::dsp::fx::limiter::limiter_latency(
            lookahead_samples(self.lookahead_ms, fs),
            self.true_peak,
        )
    }
}

/// Every parameter of the strip, in engine units. `Default` is the plugin's default preset:
/// all sections off, unity gains (the strip then passes audio unchanged, delayed by the
/// limiter's 5 ms lookahead: see [`Strip::latency_samples`]).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StripSettings {
    /// Input gain in dB.
    pub input_gain_db: f64,
    /// High-pass.
    pub high_pass: FilterSettings,
    /// Low-pass.
    pub low_pass: FilterSettings,
    /// EQ.
    pub eq: EqSettings,
    /// Compressor.
    pub compressor: CompressorSettings,
    /// Delay.
    pub delay: DelaySettings,
    /// Reverb.
    pub reverb: ReverbSettings,
    /// Limiter.
    pub limiter: LimiterSettings,
    /// Output gain in dB.
    pub output_gain_db: f64,
    /// Bypass: the output is the (latency-compensated) input.
    pub bypass: bool,
}

impl Default for StripSettings {
    fn default() -> Self {
        Self {
            input_gain_db: 0.0,
            high_pass: FilterSettings {
                enabled: false,
                cutoff_hz: 30.0,
                order: 2,
            },
            low_pass: FilterSettings {
                enabled: false,
                cutoff_hz: 18_000.0,
                order: 2,
            },
            eq: EqSettings {
                enabled: false,
                low_shelf: EqBand {
                    freq_hz: 100.0,
                    gain_db: 0.0,
                    q: std::f64::consts::FRAC_1_SQRT_2,
                },
                peak: EqBand {
                    freq_hz: 1000.0,
                    gain_db: 0.0,
                    q: 1.0,
                },
                high_shelf: EqBand {
                    freq_hz: 8000.0,
                    gain_db: 0.0,
                    q: std::f64::consts::FRAC_1_SQRT_2,
                },
            },
            compressor: CompressorSettings {
                enabled: false,
                threshold_db: -18.0,
                ratio: 3.0,
                attack_ms: 10.0,
                release_ms: 100.0,
                knee_db: 6.0,
                makeup_db: 0.0,
            },
            delay: DelaySettings {
                enabled: false,
                time: DelayTime::Ms(250.0),
                feedback: 0.35,
                mix: 0.25,
                ping_pong: false,
            },
            reverb: ReverbSettings {
                enabled: false,
                room_size: 0.5,
                damping: 0.5,
                mix: 0.25,
            },
            limiter: LimiterSettings {
                enabled: false,
                ceiling_db: -0.3,
                lookahead_ms: 5.0,
                release_ms: 50.0,
                true_peak: false,
            },
            output_gain_db: 0.0,
            bypass: false,
        }
    }
}

impl StripSettings {
    /// The second-order sections the strip's high-pass, low-pass and EQ run at `sample_rate`
    /// once their parameters have settled at these values: the enabled sections' coefficients
    /// from the same designs the audio path uses (clamps included), in processing order. The
    /// editor draws its frequency response from them
    /// ([`crate::dsp::filter::design::magnitude_db`]).
    ///
    /// ```
    /// use rtfx::dsp::filter::design::magnitude_db;
    /// use rtfx::plugin::strip::StripSettings;
    ///
    /// let mut s = StripSettings::default();
    /// s.eq.enabled = true;
    /// s.eq.peak.gain_db = 12.0;
    /// let sections = s.filter_sections(48_000.0);
    /// assert!((magnitude_db(&sections, 1000.0, 48_000.0) - 12.0).abs() < 1e-9);
    /// ```
    pub fn filter_sections(&self, sample_rate: f64) -> Vec<Section> {
        let mut sections = Vec::with_capacity(2 * FILTER_SECTIONS + 3);
        for (f, band) in [
            (&self.high_pass, BandType::Highpass),
            (&self.low_pass, BandType::Lowpass),
        ] {
            if f.enabled {
                let cutoff = f.cutoff_hz.max(MIN_FREQ_HZ);
                let order = f.order.clamp(1, MAX_FILTER_ORDER);
                sections.extend(pass_sections(band, cutoff, order, sample_rate));
            }
        }
        if self.eq.enabled {
            sections.extend(eq_sections(Eq::band_values(&self.eq), sample_rate));
        }
        sections
    }

    /// The strip as a chain in rtfx's grammar (one spec per effect), for `rtfx render -e` or
    /// [`crate::dsp::spec::parse_chain`]: the input and output gains always, the other sections
    /// when enabled. Delay note values become `bpm` + `delay_time` (`delay_ms` at a tempo outside
    /// the delay's 20-999 BPM). The bypass is ignored.
    pub fn to_specs(&self) -> Vec<String> {
        let mut specs = vec![format!(
            "gain:gain={},gain_type=db",
            fmt_num(self.input_gain_db)
        )];
        for (f, name) in [
            (&self.high_pass, "hibutterworth"),
            (&self.low_pass, "lobutterworth"),
        ] {
            if f.enabled {
                specs.push(format!(
                    "{name}:cutoff={},order={}",
                    fmt_num(f.cutoff_hz),
                    f.order.clamp(1, MAX_FILTER_ORDER)
                ));
            }
        }
        let eq = &self.eq;
        if eq.enabled {
            let b = &eq.low_shelf;
            specs.push(format!(
                "loshelving:cutoff={},q={},gain={},gain_scale=db",
                fmt_num(b.freq_hz),
                fmt_num(b.q),
                fmt_num(b.gain_db)
            ));
            let b = &eq.peak;
            specs.push(format!(
                "parametriceq:frequency={},q={},gain={}",
                fmt_num(b.freq_hz),
                fmt_num(b.q),
                fmt_num(b.gain_db)
            ));
            let b = &eq.high_shelf;
            specs.push(format!(
                "hishelving:cutoff={},q={},gain={},gain_scale=db",
                fmt_num(b.freq_hz),
                fmt_num(b.q),
                fmt_num(b.gain_db)
            ));
        }
        let c = &self.compressor;
        if c.enabled {
            specs.push(format!(
                "compressor:threshold={},ratio={},attack={},release={},knee={},makeup_gain={}",
                fmt_num(c.threshold_db),
                fmt_num(c.ratio),
                fmt_num(c.attack_ms / 1000.0),
                fmt_num(c.release_ms / 1000.0),
                fmt_num(c.knee_db),
                fmt_num(c.makeup_db)
            ));
        }
        let d = &self.delay;
        if d.enabled {
            let time = match d.time {
                // A tempo outside the delay's bpm range is exported as the time it gives.
                DelayTime::Note { fraction, bpm }
                    if (crate::dsp::fx::delay::MIN_BPM..=crate::dsp::fx::delay::MAX_BPM)
                        .contains(&bpm) =>
                {
                    format!("bpm={},delay_time={}", fmt_num(bpm), fmt_num(fraction))
                }
                t => format!("delay_ms={}", fmt_num(t.ms())),
            };
            specs.push(format!(
                "delay:{time},feedback={},mix={},ping_pong={}",
                fmt_num(d.feedback),
                fmt_num(d.mix),
                d.ping_pong
            ));
        }
        let r = &self.reverb;
        if r.enabled {
            specs.push(format!(
                "reverb:room_size={},damping={},mix={}",
                fmt_num(r.room_size),
                fmt_num(r.damping),
                fmt_num(r.mix)
            ));
        }
        let l = &self.limiter;
        if l.enabled {
            specs.push(format!(
                "limiter:threshold={},lookahead={},release={}{}",
                fmt_num(l.ceiling_db),
                fmt_num(l.lookahead_ms / 1000.0),
                fmt_num(l.release_ms / 1000.0),
                if l.true_peak { ",true_peak=true" } else { "" }
            ));
        }
        specs.push(format!(
            "gain:gain={},gain_type=db",
            fmt_num(self.output_gain_db)
        ));
        specs
    }

    /// The strip as a [`Chain`] (see [`Self::to_specs`]).
    pub fn to_chain(&self) -> Result<Chain> {
        crate::dsp::spec::parse_chain(&self.to_specs())
    }

    /// The strip as a TOML chain file that `rtfx render --chain` and
    /// [`crate::dsp::spec::chain_from_toml`] accept.
    pub fn to_toml(&self) -> Result<String> {
        Ok(crate::dsp::spec::chain_to_toml(&self.to_chain()?))
    }
}

/// A number in the shortest form that parses back to the same `f64`.
fn fmt_num(x: f64) -> String {
    format!("{x}")
}

// ---------------------------------------------------------------------------------------------
// Building blocks

/// Sets each `(index, value)` whose value differs from the one last applied (`applied`, in the
/// same order) on `fx`, by parameter index and clamped into the parameter's range from the
/// effect's own table; a value the effect refuses keeps the previous one. Never allocates on
/// success.
fn apply_changed(fx: &mut impl Effect, values: &[(usize, f64)], applied: &mut [f64]) {
    let params = fx.params();
    for (&(index, value), applied) in values.iter().zip(applied.iter_mut()) {
        let Some(info) = params.get(index) else {
            continue;
        };
        let value = info.clamp(value);
        if value != *applied && fx.set_param_at(index, value).is_ok() {
            *applied = value;
        }
    }
}

/// A Butterworth high- or low-pass with a fixed four-section cascade.
struct PassFilter {
    band: BandType,
    core: CrossfadingCascade,
    ln_cutoff: LinearSmoother,
    order: usize,
    designed: (f64, usize),
    fade: SectionFade,
}

impl PassFilter {
    fn new(band: BandType, s: &FilterSettings) -> Self {
        Self {
            band,
            core: CrossfadingCascade::new(FILTER_SECTIONS, 0, STEP, 1),
            ln_cutoff: LinearSmoother::new(s.cutoff_hz.max(MIN_FREQ_HZ).ln()),
            order: s.order,
            designed: (f64::NAN, 0),
            fade: SectionFade::new(s.enabled, 1),
        }
    }

    fn design(&mut self, fs: f64) {
        // The designer clamps it below Nyquist, as the chain's filters do.
        let cutoff = self.ln_cutoff.current().exp();
        let order = self.order.clamp(1, MAX_FILTER_ORDER);
        if self.designed == (cutoff, order) {
            return;
        }
        if self.designed.1 != 0 && self.designed.1 != order && !self.fade.is_dormant() {
            self.core.begin_order_change();
        }
        self.designed = (cutoff, order);
        let sections = pass_sections(self.band, cutoff, order, fs);
        self.core.cascade_mut().set_sections(&sections);
    }
}

/// The high- or low-pass's sections for `cutoff` (Hz) and `order`: the Butterworth design
/// padded with pass-through sections to [`FILTER_SECTIONS`]. (The one design the strip runs and
/// the editor draws, see [`StripSettings::filter_sections`].)
fn pass_sections(band: BandType, cutoff: f64, order: usize, fs: f64) -> [Section; FILTER_SECTIONS] {
    let design = design_iir(Family::Butterworth, band, order, cutoff, fs);
    let mut sections = [Section::IDENTITY; FILTER_SECTIONS];
    for (slot, s) in sections.iter_mut().zip(design.as_slice()) {
        *slot = *s;
    }
    sections
}

/// The EQ's three sections for per-band `[ln(frequency), gain dB, Q]` (see
/// [`Eq::band_values`]).
fn eq_sections(bands: [[f64; 3]; 3], fs: f64) -> [Section; 3] {
    let mut sections = [Section::IDENTITY; 3];
    for ((slot, kind), [ln_f, gain, q]) in sections.iter_mut().zip(EQ_KINDS).zip(bands) {
        *slot = design_biquad(kind, ln_f.exp(), q, gain, fs);
    }
    sections
}

/// The three EQ bands in one three-section cascade.
struct Eq {
    cascade: SosCascade,
    /// Per band: ln(frequency), gain (dB), Q.
    bands: [[LinearSmoother; 3]; 3],
    designed: [[f64; 3]; 3],
    fade: SectionFade,
}

const EQ_KINDS: [BiquadKind; 3] = [
    BiquadKind::LowShelf,
    BiquadKind::Peaking,
    BiquadKind::HighShelf,
];

impl Eq {
    fn band_values(s: &EqSettings) -> [[f64; 3]; 3] {
        [s.low_shelf, s.peak, s.high_shelf].map(|b| {
            [
                b.freq_hz.max(MIN_FREQ_HZ).ln(),
                b.gain_db.clamp(-60.0, 60.0),
                b.q.clamp(0.05, 40.0),
            ]
        })
    }

    fn new(s: &EqSettings) -> Self {
        Self {
            cascade: SosCascade::new(&[Section::IDENTITY; 3], 0),
            bands: Self::band_values(s).map(|b| b.map(LinearSmoother::new)),
            designed: [[f64::NAN; 3]; 3],
            fade: SectionFade::new(s.enabled, 1),
        }
    }

    fn design(&mut self, fs: f64) {
        let now = self.bands.map(|b| b.map(|v| v.current()));
        if now == self.designed {
            return;
        }
        self.designed = now;
        self.cascade.set_sections(&eq_sections(now, fs));
    }
}

/// Levels of the last processed block, for meters.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct StripLevels {
    /// Peak |x| of the input.
    pub input_peak: f32,
    /// Peak |y| of the output.
    pub output_peak: f32,
    /// Gain reduction of the compressor, in dB (≤ 0).
    pub compressor_gr_db: f32,
    /// Gain reduction of the limiter, in dB (≤ 0).
    pub limiter_gr_db: f32,
}

impl StripLevels {
    /// Gain reduction of the compressor and limiter together, in dB (≤ 0).
    pub fn gain_reduction_db(&self) -> f32 {
        self.compressor_gr_db + self.limiter_gr_db
    }
}

// ---------------------------------------------------------------------------------------------
// The filters on a cascade engine (GPU mode)

/// Sections of the fused filter cascade an engine runs: high-pass, low-pass, EQ.
const ENGINE_SECTIONS: usize = 2 * FILTER_SECTIONS + 3;

/// The strip's high-pass, low-pass and EQ as one fused cascade on a [`CascadeEngine`](crate::dsp::filter::engine::CascadeEngine) (the
/// CUDA graph runner in GPU mode), through the one engine adapter, [`EngineCascade`]. The
/// engine runs them in steps where none of the three is switching on or off or changing order
/// (those cross-fades need two versions of a filter at once, which the CPU does); a section
/// that is off is an identity section; the state moves between the CPU cascades and the engine
/// as it takes over and hands back.
struct FilterEngine {
    cascade: EngineCascade,
    /// Whether the engine should be used (GPU mode is selected).
    active: bool,
}

/// A filter engine built for a strip of some channel count, not yet installed
/// ([`Strip::build_filter_engine`], [`Strip::install_filter_engine`]).
pub struct PreparedFilterEngine {
    channels: usize,
    description: String,
    engine: FilterEngine,
}

impl PreparedFilterEngine {
    /// Where the engine runs (its [`CascadeEngine::describe`](crate::dsp::filter::engine::CascadeEngine::describe)).
    pub fn description(&self) -> &str {
        &self.description
    }
}

// ---------------------------------------------------------------------------------------------
// The strip

/// The channel strip. See the module documentation.
pub struct Strip {
    sample_rate: f64,
    channels: usize,
    prepared: bool,
    target: StripSettings,
    smooth_ramp: usize,

    input_gain: LinearSmoother,
    output_gain: LinearSmoother,
    high_pass: PassFilter,
    low_pass: PassFilter,
    eq: Eq,

    compressor: Compressor,
    /// threshold, ratio, knee, makeup.
    comp_values: [LinearSmoother; 4],
    comp_applied: [f64; 6],
    comp_fade: SectionFade,

    delay: Delay,
    /// feedback, mix.
    delay_values: [LinearSmoother; 2],
    delay_applied: [f64; 4],
    delay_ping_pong: bool,
    delay_fade: SectionFade,

    reverb: Reverb,
    /// room size, damping, mix.
    reverb_values: [LinearSmoother; 3],
    reverb_applied: [f64; 3],
    reverb_fade: SectionFade,

    limiter: Limiter,
    /// ceiling.
    limiter_ceiling: LinearSmoother,
    limiter_applied: [f64; 4],
    limiter_fade: SectionFade,
    /// The limiter's input delayed by its latency: the path while the limiter is off.
    limiter_line: DelayLines,

    bypass: SectionFade,
    dry: DelayLines,
    /// Latency in samples now in force (the limiter's, whether it is on or off).
    latency: usize,

    /// Per channel: the input of a fading section.
    scratch: Vec<Vec<f32>>,
    /// Per channel: the latency-compensated input (for the bypass).
    bypass_dry: Vec<Vec<f32>>,
    levels: StripLevels,
    /// The filters on a cascade engine (GPU mode), when one is attached.
    filter_engine: Option<FilterEngine>,
}

impl Default for Strip {
    fn default() -> Self {
        Self::new(StripSettings::default())
    }
}

impl Strip {
    /// An unprepared strip with these settings (it passes audio until [`Self::prepare`]).
    pub fn new(settings: StripSettings) -> Self {
        let s = settings;
        let c = &s.compressor;
        let d = &s.delay;
        let r = &s.reverb;
        Self {
            sample_rate: 0.0,
            channels: 0,
            prepared: false,
            target: s,
            smooth_ramp: 1,
            input_gain: LinearSmoother::new(db_to_gain(s.input_gain_db)),
            output_gain: LinearSmoother::new(db_to_gain(s.output_gain_db)),
            high_pass: PassFilter::new(BandType::Highpass, &s.high_pass),
            low_pass: PassFilter::new(BandType::Lowpass, &s.low_pass),
            eq: Eq::new(&s.eq),
            compressor: Compressor::new(),
            comp_values: [c.threshold_db, c.ratio, c.knee_db, c.makeup_db].map(LinearSmoother::new),
            comp_applied: [f64::NAN; 6],
            comp_fade: SectionFade::new(c.enabled, 1),
            delay: Delay::new(),
            delay_values: [d.feedback, d.mix].map(LinearSmoother::new),
            delay_applied: [f64::NAN; 4],
            delay_ping_pong: d.ping_pong,
            delay_fade: SectionFade::new(d.enabled, 1),
            reverb: Reverb::new(),
            reverb_values: [r.room_size, r.damping, r.mix].map(LinearSmoother::new),
            reverb_applied: [f64::NAN; 3],
            reverb_fade: SectionFade::new(r.enabled, 1),
            limiter: Limiter::new(),
            limiter_ceiling: LinearSmoother::new(s.limiter.ceiling_db),
            limiter_applied: [f64::NAN; 4],
            limiter_fade: SectionFade::new(s.limiter.enabled, 1),
            limiter_line: DelayLines::default(),
            bypass: SectionFade::new(!s.bypass, 1),
            dry: DelayLines::default(),
            latency: 0,
            scratch: Vec::new(),
            bypass_dry: Vec::new(),
            filter_engine: None,
            levels: StripLevels::default(),
        }
    }

    /// Allocates every buffer for this rate and channel count (at most [`STRIP_CHANNELS`] are
    /// processed), snaps every parameter to `settings` (no ramps) and clears all state.
    /// `max_block` is a hint only: any block length works.
    pub fn prepare(
        &mut self,
        sample_rate: f64,
        _max_block: usize,
        channels: usize,
        settings: &StripSettings,
    ) -> Result<()> {
        if !(sample_rate.is_finite() && sample_rate > 0.0) {
            return Err(crate::Error::invalid_sample_rate(
                sample_rate,
                "a positive sample rate",
            ));
        }
        let channels = channels.min(STRIP_CHANNELS);
        *self = Self::new(*settings);
        self.sample_rate = sample_rate;
        self.channels = channels;
        self.smooth_ramp = ((SMOOTHING_MS * sample_rate / 1000.0).round() as usize).max(1);
        let fade_ramp = ((FADE_MS * sample_rate / 1000.0).round() as usize).max(1);
        for fade in [
            &mut self.high_pass.fade,
            &mut self.low_pass.fade,
            &mut self.eq.fade,
            &mut self.comp_fade,
            &mut self.delay_fade,
            &mut self.reverb_fade,
            &mut self.limiter_fade,
            &mut self.bypass,
        ] {
            fade.set_ramp(fade_ramp);
        }
        let order_fade = self.smooth_ramp;
        self.high_pass.core = CrossfadingCascade::new(FILTER_SECTIONS, channels, STEP, order_fade);
        self.low_pass.core = CrossfadingCascade::new(FILTER_SECTIONS, channels, STEP, order_fade);
        self.eq.cascade = SosCascade::new(&[Section::IDENTITY; 3], channels);
        self.delay
            .set_param_at(Delay::DELAY_MS, settings.delay.time.ms())?;
        self.delay.prepare(sample_rate, STEP, channels)?;
        self.compressor.prepare(sample_rate, STEP, channels)?;
        self.reverb.prepare(sample_rate, STEP, channels)?;
        self.limiter.prepare(sample_rate, STEP, channels)?;
        let dry_len = (MAX_LOOKAHEAD_MS * sample_rate / 1000.0).ceil() as usize + 2;
        self.dry = DelayLines::new(channels, dry_len);
        self.limiter_line = DelayLines::new(channels, dry_len);
        self.scratch = vec![vec![0.0; STEP]; channels];
        self.bypass_dry = vec![vec![0.0; STEP]; channels];
        self.prepared = true;
        self.apply_parameters();
        self.latency = self.target_latency();
        Ok(())
    }

    /// True after a successful [`Self::prepare`].
    pub fn is_prepared(&self) -> bool {
        self.prepared
    }

    /// The prepared sample rate (0 before [`Self::prepare`]).
    pub fn sample_rate(&self) -> f64 {
        self.sample_rate
    }

    /// The settings the strip is moving to.
    pub fn settings(&self) -> &StripSettings {
        &self.target
    }

    /// Clears every delay line, filter memory and envelope, and finishes every ramp at its
    /// target. Never allocates.
    pub fn reset(&mut self) {
        // Jump to the targets first (which may start a delay-time cross-fade), then clear
        // everything (which ends it).
        let t = self.target;
        self.jump_to(&t);
        self.high_pass.core.reset();
        self.low_pass.core.reset();
        self.eq.cascade.reset();
        self.compressor.reset();
        self.delay.reset();
        self.reverb.reset();
        self.limiter.reset();
        self.limiter_line.clear();
        self.dry.clear();
        if let Some(fe) = self.filter_engine.as_mut() {
            // The CPU cascades are the live (cleared) state again.
            fe.cascade.forget_state();
        }
    }

    /// Jumps to `settings` at once: no parameter ramps, no switch or order cross-fades (the
    /// audio state is kept). For the first block after a reset, when there is no audio history
    /// worth ramping from. Never allocates.
    pub fn jump_to(&mut self, settings: &StripSettings) {
        // The filters' state is kept on the CPU side while the settings jump.
        self.hand_back_filters();
        self.snap(settings);
        for core in [&mut self.high_pass.core, &mut self.low_pass.core] {
            core.end_order_change();
        }
        if self.prepared {
            self.latency = self.target_latency();
        }
    }

    /// Jumps every parameter to `settings` without ramps (keeps the state).
    fn snap(&mut self, s: &StripSettings) {
        self.target = *s;
        self.input_gain.reset(db_to_gain(s.input_gain_db));
        self.output_gain.reset(db_to_gain(s.output_gain_db));
        for (f, fs) in [
            (&mut self.high_pass, &s.high_pass),
            (&mut self.low_pass, &s.low_pass),
        ] {
            f.ln_cutoff.reset(fs.cutoff_hz.max(MIN_FREQ_HZ).ln());
            f.order = fs.order;
            f.fade.snap(fs.enabled);
        }
        for (band, values) in self.eq.bands.iter_mut().zip(Eq::band_values(&s.eq)) {
            for (b, v) in band.iter_mut().zip(values) {
                b.reset(v);
            }
        }
        self.eq.fade.snap(s.eq.enabled);
        let c = &s.compressor;
        for (v, t) in
            self.comp_values
                .iter_mut()
                .zip([c.threshold_db, c.ratio, c.knee_db, c.makeup_db])
        {
            v.reset(t);
        }
        self.comp_fade.snap(c.enabled);
        for (v, t) in self
            .delay_values
            .iter_mut()
            .zip([s.delay.feedback, s.delay.mix])
        {
            v.reset(t);
        }
        self.delay_ping_pong = s.delay.ping_pong;
        self.delay_fade.snap(s.delay.enabled);
        let r = &s.reverb;
        for (v, t) in self
            .reverb_values
            .iter_mut()
            .zip([r.room_size, r.damping, r.mix])
        {
            v.reset(t);
        }
        self.reverb_fade.snap(r.enabled);
        self.limiter_ceiling.reset(s.limiter.ceiling_db);
        self.limiter_fade.snap(s.limiter.enabled);
        self.bypass.snap(!s.bypass);
        self.apply_parameters();
    }

    /// Samples of latency the strip adds with its current settings: the limiter's latency
    /// ([`LimiterSettings::latency_samples`]), whether the limiter is on or off (its delay
    /// stays in the path, so that switching it needs no host restart; a lookahead of 0 ms
    /// makes the strip latency-free).
    pub fn latency_samples(&self) -> usize {
        self.latency
    }

    /// The latency the strip will have for its target settings (what the host should be told).
    pub fn target_latency(&self) -> usize {
        if self.sample_rate > 0.0 {
            self.target.limiter.latency_samples(self.sample_rate)
        } else {
            0
        }
    }

    /// Samples after the input stops until the output has decayed (delay and reverb tails,
    /// plus the latency).
    pub fn tail_samples(&self) -> usize {
        let mut tail = self.latency;
        if self.target.delay.enabled {
            tail = tail.saturating_add(self.delay.tail_samples());
        }
        if self.target.reverb.enabled {
            tail = tail.saturating_add(self.reverb.tail_samples());
        }
        tail
    }

    /// Levels of the last processed block.
    pub fn levels(&self) -> StripLevels {
        self.levels
    }

    /// Sets new targets: continuous parameters start ramping, switches start fading. The
    /// parameters of a section that is off and silent (dormant) jump instead: nothing of it is
    /// heard, and a filter that wakes up still sweeping from its old cutoff clicks (a preset
    /// that switches a 6 kHz low-pass on used to sweep it down from 18 kHz while fading in).
    pub fn set_settings(&mut self, s: &StripSettings) {
        if *s == self.target {
            return;
        }
        self.target = *s;
        let ramp = self.smooth_ramp;
        let ramp_for = |fade: &SectionFade| if fade.is_dormant() { 0 } else { ramp };
        self.input_gain.retarget(db_to_gain(s.input_gain_db), ramp);
        self.output_gain
            .retarget(db_to_gain(s.output_gain_db), ramp);
        for (f, fs) in [
            (&mut self.high_pass, &s.high_pass),
            (&mut self.low_pass, &s.low_pass),
        ] {
            f.ln_cutoff
                .retarget(fs.cutoff_hz.max(MIN_FREQ_HZ).ln(), ramp_for(&f.fade));
            f.order = fs.order;
            f.fade.set(fs.enabled);
        }
        let eq_ramp = ramp_for(&self.eq.fade);
        for (band, values) in self.eq.bands.iter_mut().zip(Eq::band_values(&s.eq)) {
            for (b, v) in band.iter_mut().zip(values) {
                b.retarget(v, eq_ramp);
            }
        }
        self.eq.fade.set(s.eq.enabled);
        let c = &s.compressor;
        let comp_ramp = ramp_for(&self.comp_fade);
        for (v, t) in
            self.comp_values
                .iter_mut()
                .zip([c.threshold_db, c.ratio, c.knee_db, c.makeup_db])
        {
            v.retarget(t, comp_ramp);
        }
        self.comp_fade.set(c.enabled);
        for (v, t) in self
            .delay_values
            .iter_mut()
            .zip([s.delay.feedback, s.delay.mix])
        {
            v.retarget(t, ramp_for(&self.delay_fade));
        }
        self.delay_ping_pong = s.delay.ping_pong;
        self.delay_fade.set(s.delay.enabled);
        let r = &s.reverb;
        for (v, t) in self
            .reverb_values
            .iter_mut()
            .zip([r.room_size, r.damping, r.mix])
        {
            v.retarget(t, ramp_for(&self.reverb_fade));
        }
        self.reverb_fade.set(r.enabled);
        self.limiter_ceiling
            .retarget(s.limiter.ceiling_db, ramp_for(&self.limiter_fade));
        self.limiter_fade.set(s.limiter.enabled);
        self.bypass.set(!s.bypass);
    }

    /// Advances every ramp by `n` samples and hands the values to the effects (coefficients
    /// are redesigned only when a value changed). Never allocates.
    fn advance(&mut self, n: usize) {
        for f in [&mut self.high_pass, &mut self.low_pass] {
            f.ln_cutoff.advance(n);
        }
        for band in &mut self.eq.bands {
            for v in band.iter_mut() {
                v.advance(n);
            }
        }
        for v in self
            .comp_values
            .iter_mut()
            .chain(&mut self.delay_values)
            .chain(&mut self.reverb_values)
        {
            v.advance(n);
        }
        self.limiter_ceiling.advance(n);
        self.apply_parameters();
    }

    /// Hands the current (ramped) values to the effects.
    fn apply_parameters(&mut self) {
        if !self.prepared {
            return;
        }
        let fs = self.sample_rate;
        self.high_pass.design(fs);
        self.low_pass.design(fs);
        self.eq.design(fs);

        let c = &self.target.compressor;
        let [thr, ratio, knee, makeup] = self.comp_values.map(|v| v.current());
        apply_changed(
            &mut self.compressor,
            &[
                (Compressor::THRESHOLD, thr),
                (Compressor::RATIO, ratio),
                (Compressor::ATTACK, c.attack_ms / 1000.0),
                (Compressor::RELEASE, c.release_ms / 1000.0),
                (Compressor::KNEE, knee),
                (Compressor::MAKEUP_GAIN, makeup),
            ],
            &mut self.comp_applied,
        );

        let [fb, mix] = self.delay_values.map(|v| v.current());
        apply_changed(
            &mut self.delay,
            &[
                (Delay::DELAY_MS, self.target.delay.time.ms()),
                (Delay::FEEDBACK, fb),
                (Delay::MIX, mix),
                (Delay::PING_PONG, f64::from(u8::from(self.delay_ping_pong))),
            ],
            &mut self.delay_applied,
        );

        let [room, damping, mix] = self.reverb_values.map(|v| v.current());
        apply_changed(
            &mut self.reverb,
            &[
                (Reverb::ROOM_SIZE, room),
                (Reverb::DAMPING, damping),
                (Reverb::MIX, mix),
            ],
            &mut self.reverb_applied,
        );

        let l = &self.target.limiter;
        apply_changed(
            &mut self.limiter,
            &[
                (Limiter::THRESHOLD, self.limiter_ceiling.current()),
                (
                    Limiter::LOOKAHEAD,
                    lookahead_samples(l.lookahead_ms, fs) as f64 / fs,
                ),
                (Limiter::RELEASE, l.release_ms / 1000.0),
                (Limiter::TRUE_PEAK, f64::from(u8::from(l.true_peak))),
            ],
            &mut self.limiter_applied,
        );
    }

    /// Processes a planar block in place. Channels beyond the prepared ones pass unchanged;
    /// before [`Self::prepare`] everything passes. Channels of unequal length are processed up
    /// to the shortest. Never allocates.
    pub fn process(&mut self, block: &mut [&mut [f32]]) {
        self.levels = StripLevels::default();
        let channels = self.channels.min(block.len());
        let n = block[..channels].iter().map(|c| c.len()).min().unwrap_or(0);
        if !self.prepared || n == 0 {
            return;
        }
        let mut start = 0;
        while start < n {
            let end = (start + STEP).min(n);
            with_frames_mut(&mut block[..channels], start..end, |step| self.step(step));
            start = end;
        }
    }

    /// Attaches a cascade engine for the high-pass, low-pass and EQ (GPU mode), built by
    /// `factory` for this strip's channels and [`STEP`]-frame steps, and returns where it runs.
    /// It is used while [`Self::set_filter_engine_active`] says so (see `FilterEngine`).
    /// Call after [`Self::prepare`], which detaches it. Allocates.
    pub fn attach_filter_engine(&mut self, factory: EngineFactory) -> Result<String> {
        if !self.prepared {
            return Err(crate::Error::realtime(
                "The strip must be prepared before a filter engine is attached",
            ));
        }
        let engine = Self::build_filter_engine(self.channels, factory)?;
        let description = engine.description.clone();
        self.install_filter_engine(engine)?;
        Ok(description)
    }

    /// Builds, away from any strip (e.g. on a thread of its own: compiling a kernel and
    /// capturing a graph take a while), the engine [`Self::attach_filter_engine`] would attach
    /// to a strip of `channels`. Install it with [`Self::install_filter_engine`]. Allocates.
    pub fn build_filter_engine(
        channels: usize,
        factory: EngineFactory,
    ) -> Result<PreparedFilterEngine> {
        let identity = SosCascade::new(&[Section::IDENTITY; ENGINE_SECTIONS], channels);
        let engine = factory(&identity, channels, STEP)?;
        let description = engine.describe();
        Ok(PreparedFilterEngine {
            channels,
            description,
            engine: FilterEngine {
                cascade: EngineCascade::new(engine, ENGINE_SECTIONS),
                active: false,
            },
        })
    }

    /// Installs an engine from [`Self::build_filter_engine`], between blocks of a running
    /// stream if need be: the filters keep running on the CPU until the next step that may
    /// use it, and their state moves over then. Never allocates (the engine is moved in; a
    /// strip has no engine to drop when this is used as intended: once, after `prepare`).
    /// Fails, dropping the engine, when the strip is not prepared or has another channel
    /// count.
    pub fn install_filter_engine(&mut self, engine: PreparedFilterEngine) -> Result<()> {
        if !self.prepared || engine.channels != self.channels {
            return Err(crate::Error::realtime(format!(
                "A filter engine built for {} channels does not fit this strip ({} channels{})",
                engine.channels,
                self.channels,
                if self.prepared { "" } else { ", not prepared" }
            )));
        }
        self.filter_engine = Some(engine.engine);
        Ok(())
    }

    /// Runs the filters on the attached engine (`true`) or on the CPU from the next step on.
    pub fn set_filter_engine_active(&mut self, active: bool) {
        if let Some(fe) = self.filter_engine.as_mut() {
            fe.active = active;
        }
    }

    /// Steps the engine ran since the last call (0 without one).
    pub fn take_engine_steps(&mut self) -> u64 {
        self.filter_engine
            .as_mut()
            .map_or(0, |fe| fe.cascade.take_steps())
    }

    /// The engine's first error; the filters have run on the CPU since.
    pub fn filter_engine_error(&self) -> Option<&str> {
        self.filter_engine
            .as_ref()
            .and_then(|fe| fe.cascade.error())
    }

    /// High-pass, low-pass and EQ for one step: on the engine when it may take them, else on
    /// the CPU under their fades (each section is reset once it has faded out, so that
    /// switching it back on starts from silence).
    fn run_filters(&mut self, block: &mut [&mut [f32]]) {
        if self.filters_on_engine(block) {
            return;
        }
        let scratch = &mut self.scratch;
        for (core, fade) in [
            (&mut self.high_pass.core, &mut self.high_pass.fade),
            (&mut self.low_pass.core, &mut self.low_pass.fade),
        ] {
            run_faded(fade, block, scratch, core);
        }
        run_faded(&mut self.eq.fade, block, scratch, &mut self.eq.cascade);
    }

    /// Runs the filters on the engine when one is attached and active and none of them is
    /// cross-fading (switching, or changing order), moving the state over when the engine
    /// takes over or hands back; false when the CPU must run them.
    fn filters_on_engine(&mut self, block: &mut [&mut [f32]]) -> bool {
        let Some(fe) = self.filter_engine.as_mut() else {
            return false;
        };
        let (hp, lp, eq) = (&mut self.high_pass, &mut self.low_pass, &mut self.eq);
        let settled = SectionFade::is_settled;
        let steady = fe.active
            && fe.cascade.error().is_none()
            && settled(&hp.fade)
            && settled(&lp.fade)
            && settled(&eq.fade)
            && !hp.core.is_fading()
            && !lp.core.is_fading();
        let on = [&hp.fade, &lp.fade, &eq.fade].map(SectionFade::is_switched_on);
        let mut parts = [
            hp.core.cascade_mut(),
            lp.core.cascade_mut(),
            &mut eq.cascade,
        ];
        if !steady {
            fe.cascade.hand_back(&mut parts);
            return false;
        }
        fe.cascade.run(&mut parts, &on, block)
    }

    /// Before this step's parameters are applied: if a filter's order is about to change,
    /// the CPU cascades must hold the live state (the order change keeps the old filter
    /// running from it), so the engine hands it back first.
    fn sync_filters_before_order_change(&mut self) {
        let pending = [&self.high_pass, &self.low_pass]
            .iter()
            .any(|f| f.order.clamp(1, MAX_FILTER_ORDER) != f.designed.1);
        if pending {
            self.hand_back_filters();
        }
    }

    /// Moves the live filter state from the engine (if it holds it) to the CPU cascades.
    fn hand_back_filters(&mut self) {
        if let Some(fe) = self.filter_engine.as_mut() {
            let (hp, lp, eq) = (&mut self.high_pass, &mut self.low_pass, &mut self.eq);
            fe.cascade.hand_back(&mut [
                hp.core.cascade_mut(),
                lp.core.cascade_mut(),
                &mut eq.cascade,
            ]);
        }
    }

    /// One step of at most [`STEP`] frames.
    fn step(&mut self, block: &mut [&mut [f32]]) {
        let n = crate::dsp::frames(block);
        self.levels.input_peak = self.levels.input_peak.max(block_peak(block));

        // The dry path for the bypass: the input delayed by the latency.
        for (ch, dry) in block.iter().zip(self.bypass_dry.iter_mut()) {
            dry[..n].copy_from_slice(ch);
        }
        let (dry, latency) = (&mut self.dry, self.latency);
        with_planar_mut(&mut self.bypass_dry, 0..n, |b| dry.delay(b, latency));

        self.sync_filters_before_order_change();
        self.advance(n);
        let g0 = self.input_gain.current();
        let g1 = self.input_gain.advance(n);
        ramp_gain(block, g0, g1);

        self.run_filters(block);
        let scratch = &mut self.scratch;

        // Compressor, with its gain reduction measured as output peak over input peak.
        let before = block_peak(block);
        let comp_active = !self.comp_fade.is_dormant() || self.comp_fade.is_switched_on();
        run_faded(&mut self.comp_fade, block, scratch, &mut self.compressor);
        if comp_active && before > 1e-6 {
            let makeup = self.comp_applied[5];
            let after = block_peak(block);
            let gr = gain_to_db(f64::from(after.max(1e-12)) / f64::from(before)) - makeup;
            self.levels.compressor_gr_db = self.levels.compressor_gr_db.min(gr.min(0.0) as f32);
        }

        run_faded(&mut self.delay_fade, block, scratch, &mut self.delay);
        run_faded(&mut self.reverb_fade, block, scratch, &mut self.reverb);

        // Limiter: its delay stays in the path while it is off (`limiter_line`), so switching
        // it changes neither the latency (the switch is automatable, no host restart) nor
        // the timing: the switch cross-fades between two time-aligned signals. Its gain
        // reduction is the reduction a peak limiter needs for this step's input (the output
        // lags by the lookahead).
        let lim_latency = self.limiter.latency_samples();
        let was_dormant = self.limiter_fade.is_dormant();
        let plan = self.limiter_fade.plan(n);
        let waking = was_dormant && !self.limiter_fade.is_dormant();
        if waking {
            self.prime_limiter(lim_latency);
        }
        let before = block_peak(block);
        let line_out = &mut self.scratch;
        for (ch, d) in block.iter().zip(line_out.iter_mut()) {
            d[..n].copy_from_slice(ch);
        }
        let limiter_line = &mut self.limiter_line;
        with_planar_mut(line_out, 0..n, |b| limiter_line.delay(b, lim_latency));
        match plan {
            FadePlan::Skip | FadePlan::ResetThenSkip => {
                if matches!(plan, FadePlan::ResetThenSkip) {
                    self.limiter.reset();
                }
                for (ch, d) in block.iter_mut().zip(line_out.iter()) {
                    ch.copy_from_slice(&d[..n]);
                }
            }
            FadePlan::Process => self.limiter.process(block),
            FadePlan::Mix(m0, m1) => {
                self.limiter.process(block);
                crossfade(block, line_out, m0, m1);
            }
        }
        if !self.limiter_fade.is_dormant() && before > 1e-6 {
            let ceiling = self.limiter_applied[0];
            let gr = ceiling - gain_to_db(f64::from(before));
            self.levels.limiter_gr_db = self.levels.limiter_gr_db.min(gr.clamp(-60.0, 0.0) as f32);
        }
        self.latency = lim_latency;

        let g0 = self.output_gain.current();
        let g1 = self.output_gain.advance(n);
        ramp_gain(block, g0, g1);

        // Bypass: cross-fade to the latency-compensated input.
        let (b0, b1) = self.bypass.advance(n);
        if !(b0 == 1.0 && b1 == 1.0) {
            crossfade(block, &self.bypass_dry, b0, b1);
        }

        // No NaN, infinity or subnormal number leaves the strip.
        for ch in block.iter_mut() {
            for x in ch.iter_mut() {
                if x.abs() < FLUSH_BELOW_F32 || !x.is_finite() {
                    *x = 0.0;
                }
            }
        }
        self.levels.output_peak = self.levels.output_peak.max(block_peak(block));
    }

    /// Brings the limiter, idle since it was last switched off, to the state it would have
    /// had running all along as far as its output needs: from reset, it runs over the last
    /// `latency` samples of its input (kept by `limiter_line`), so its lookahead buffer is
    /// full and its gain already ramps into the peaks ahead. Without this its output would
    /// start with `latency` samples of silence, a dip in the switch's cross-fade. Bounded
    /// work (at most [`MAX_LOOKAHEAD_MS`] of audio), no allocation.
    fn prime_limiter(&mut self, latency: usize) {
        self.limiter.reset();
        let mut done = 0;
        while done < latency {
            let n = (latency - done).min(STEP);
            self.limiter_line
                .recent(latency - done, n, &mut self.scratch);
            let limiter = &mut self.limiter;
            with_planar_mut(&mut self.scratch, 0..n, |b| limiter.process(b));
            done += n;
        }
    }

    /// Calls `visit` with every number of the strip's internal state (for tests).
    pub fn visit_state(&self, visit: &mut dyn FnMut(f64)) {
        for c in [
            self.high_pass.core.cascade(),
            self.high_pass.core.previous(),
            self.low_pass.core.cascade(),
            self.low_pass.core.previous(),
            &self.eq.cascade,
        ] {
            c.state_words().for_each(&mut *visit);
        }
        self.compressor.visit_state(visit);
        self.delay.visit_state(visit);
        self.reverb.visit_state(visit);
        self.limiter.visit_state(visit);
    }
}

/// The limiter lookahead in samples for `ms` at `fs` (clamped to [0, `MAX_LOOKAHEAD_MS`]).
pub fn lookahead_samples(ms: f64, fs: f64) -> usize {
    let ms = if ms.is_finite() {
        ms.clamp(0.0, MAX_LOOKAHEAD_MS)
    } else {
        0.0
    };
    (ms * fs / 1000.0).round() as usize
}

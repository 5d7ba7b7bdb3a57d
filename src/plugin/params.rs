//! The plugin's parameters: stable ids, ranges, skew, units and text formatters.
//!
//! **The `#[id]` strings are part of every saved project and automation lane: never rename or
//! remove one.** New parameters get new ids; a parameter that is no longer used stays (hidden).
//!
//! Every value↔text pair round-trips: `text → value → text` gives the same text, which hosts and
//! clap-validator's `param-conversions` check. Continuous parameters are smoothed by the
//! [`Strip`](super::strip::Strip) itself (linear ramps of [`SMOOTHING_MS`](super::strip::SMOOTHING_MS)),
//! so the nice-plug smoothers stay off.

use std::sync::{Arc, RwLock};

use nice_plug::context::gui::GuiContext;
use nice_plug::params::internals::ParamPtr;
use nice_plug::prelude::*;

use super::strip::{
    CompressorSettings, DelaySettings, DelayTime, EqBand, EqSettings, FilterSettings,
    LimiterSettings, MAX_DELAY_MS, MAX_FILTER_ORDER, MAX_LOOKAHEAD_MS, ReverbSettings,
    StripSettings,
};

/// Default editor size in logical pixels (width, height): everything shows without scrolling
/// (the response plot and two rows of sections). Projects keep the size they saved (the
/// `editor-size` persisted field); older projects saved 1160×580 or 980×560, where the editor
/// scrolls.
pub const DEFAULT_EDITOR_SIZE: (u32, u32) = (1160, 740);

/// Where the strip runs (see [`super::offload`]).
#[derive(Enum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProcessingMode {
    /// On the host's audio thread (zero added latency).
    #[id = "inline"]
    #[name = "Inline"]
    Inline,
    /// On a worker thread fed through lock-free rings (adds a fixed latency).
    #[id = "offload"]
    #[name = "Offload"]
    Offload,
    /// Offload, with the worker strip's filters on the CUDA graph runner where there is a
    /// device (see [`super::offload::gpu_status`]).
    #[id = "gpu"]
    #[name = "GPU"]
    Gpu,
}

/// How the delay time is set.
#[derive(Enum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum DelaySync {
    /// The time in milliseconds.
    #[id = "time"]
    #[name = "Time"]
    Time,
    /// A note value at the host's tempo.
    #[id = "tempo"]
    #[name = "Tempo"]
    Tempo,
}

/// Note values of the tempo-synced delay (d = dotted, t = triplet).
#[derive(Enum, Debug, Clone, Copy, PartialEq, Eq)]
#[allow(missing_docs)]
pub enum NoteValue {
    #[id = "1/1"]
    #[name = "1/1"]
    Whole,
    #[id = "1/2"]
    #[name = "1/2"]
    Half,
    #[id = "1/2d"]
    #[name = "1/2d"]
    HalfDotted,
    #[id = "1/2t"]
    #[name = "1/2t"]
    HalfTriplet,
    #[id = "1/4"]
    #[name = "1/4"]
    Quarter,
    #[id = "1/4d"]
    #[name = "1/4d"]
    QuarterDotted,
    #[id = "1/4t"]
    #[name = "1/4t"]
    QuarterTriplet,
    #[id = "1/8"]
    #[name = "1/8"]
    Eighth,
    #[id = "1/8d"]
    #[name = "1/8d"]
    EighthDotted,
    #[id = "1/8t"]
    #[name = "1/8t"]
    EighthTriplet,
    #[id = "1/16"]
    #[name = "1/16"]
    Sixteenth,
    #[id = "1/16d"]
    #[name = "1/16d"]
    SixteenthDotted,
    #[id = "1/16t"]
    #[name = "1/16t"]
    SixteenthTriplet,
    #[id = "1/32"]
    #[name = "1/32"]
    ThirtySecond,
}

impl NoteValue {
    /// The note value as a fraction of a whole note (1/8 dotted = 3/16).
    pub fn fraction(self) -> f64 {
        use NoteValue::*;
        let (base, kind) = match self {
            Whole => (1.0, 0),
            Half => (0.5, 0),
            HalfDotted => (0.5, 1),
            HalfTriplet => (0.5, 2),
            Quarter => (0.25, 0),
            QuarterDotted => (0.25, 1),
            QuarterTriplet => (0.25, 2),
            Eighth => (0.125, 0),
            EighthDotted => (0.125, 1),
            EighthTriplet => (0.125, 2),
            Sixteenth => (0.0625, 0),
            SixteenthDotted => (0.0625, 1),
            SixteenthTriplet => (0.0625, 2),
            ThirtySecond => (0.03125, 0),
        };
        match kind {
            1 => base * 1.5,
            2 => base * 2.0 / 3.0,
            _ => base,
        }
    }
}

/// A text-to-value formatter as nice-plug takes it.
pub type StringToValue = Arc<dyn Fn(&str) -> Option<f32> + Send + Sync>;

/// Parses a number followed by an optional unit ("12.5 ms", "-3dB", "40 %"): the unit letters,
/// `%` and spaces at the end are ignored.
pub fn s2v_number() -> StringToValue {
    Arc::new(|text| {
        text.trim()
            .trim_end_matches(|c: char| c.is_ascii_alphabetic() || c == ' ' || c == '%')
            .trim()
            .parse::<f32>()
            .ok()
            .filter(|v| v.is_finite())
    })
}

fn db_param(name: &str, default: f32, min: f32, max: f32) -> FloatParam {
    FloatParam::new(name, default, FloatRange::Linear { min, max })
        .with_unit(" dB")
        .with_step_size(0.1)
        .with_value_to_string(formatters::v2s_f32_rounded(1))
        .with_string_to_value(s2v_number())
}

fn freq_param(name: &str, default: f32) -> FloatParam {
    FloatParam::new(
        name,
        default,
        FloatRange::Skewed {
            min: 10.0,
            max: 20_000.0,
            factor: FloatRange::skew_factor(-2.0),
        },
    )
    .with_value_to_string(formatters::v2s_f32_hz_then_khz(2))
    .with_string_to_value(formatters::s2v_f32_hz_then_khz())
}

fn q_param(name: &str, default: f32) -> FloatParam {
    FloatParam::new(
        name,
        default,
        FloatRange::Skewed {
            min: 0.1,
            max: 10.0,
            factor: FloatRange::skew_factor(-1.0),
        },
    )
    .with_value_to_string(formatters::v2s_f32_rounded(2))
    .with_string_to_value(s2v_number())
}

fn ms_param(name: &str, default: f32, min: f32, max: f32, skew: f32) -> FloatParam {
    FloatParam::new(
        name,
        default,
        FloatRange::Skewed {
            min,
            max,
            factor: FloatRange::skew_factor(skew),
        },
    )
    .with_unit(" ms")
    .with_value_to_string(formatters::v2s_f32_rounded(1))
    .with_string_to_value(s2v_number())
}

fn percent_param(name: &str, default: f32, max: f32) -> FloatParam {
    FloatParam::new(name, default, FloatRange::Linear { min: 0.0, max })
        .with_unit(" %")
        .with_value_to_string(formatters::v2s_f32_percentage(1))
        .with_string_to_value(formatters::s2v_f32_percentage())
}

fn order_param(name: &str) -> IntParam {
    IntParam::new(
        name,
        2,
        IntRange::Linear {
            min: 1,
            max: MAX_FILTER_ORDER as i32,
        },
    )
}

/// Every parameter of the plugin, plus the persisted editor size.
#[derive(Params)]
pub struct RtfxParams {
    /// Editor size in logical pixels, saved with the project.
    #[persist = "editor-size"]
    pub editor_size: RwLock<(u32, u32)>,

    /// Input gain (dB).
    #[id = "in_gain"]
    pub input_gain: FloatParam,

    /// High-pass switch.
    #[id = "hp_on"]
    pub hp_on: BoolParam,
    /// High-pass cutoff (Hz).
    #[id = "hp_freq"]
    pub hp_freq: FloatParam,
    /// High-pass order (1–8).
    #[id = "hp_order"]
    pub hp_order: IntParam,

    /// Low-pass switch.
    #[id = "lp_on"]
    pub lp_on: BoolParam,
    /// Low-pass cutoff (Hz).
    #[id = "lp_freq"]
    pub lp_freq: FloatParam,
    /// Low-pass order (1–8).
    #[id = "lp_order"]
    pub lp_order: IntParam,

    /// EQ switch.
    #[id = "eq_on"]
    pub eq_on: BoolParam,
    /// Low-shelf frequency.
    #[id = "ls_freq"]
    pub ls_freq: FloatParam,
    /// Low-shelf gain.
    #[id = "ls_gain"]
    pub ls_gain: FloatParam,
    /// Low-shelf Q.
    #[id = "ls_q"]
    pub ls_q: FloatParam,
    /// Peak frequency.
    #[id = "pk_freq"]
    pub pk_freq: FloatParam,
    /// Peak gain.
    #[id = "pk_gain"]
    pub pk_gain: FloatParam,
    /// Peak Q.
    #[id = "pk_q"]
    pub pk_q: FloatParam,
    /// High-shelf frequency.
    #[id = "hs_freq"]
    pub hs_freq: FloatParam,
    /// High-shelf gain.
    #[id = "hs_gain"]
    pub hs_gain: FloatParam,
    /// High-shelf Q.
    #[id = "hs_q"]
    pub hs_q: FloatParam,

    /// Compressor switch.
    #[id = "comp_on"]
    pub comp_on: BoolParam,
    /// Compressor threshold (dB).
    #[id = "comp_thresh"]
    pub comp_threshold: FloatParam,
    /// Compressor ratio.
    #[id = "comp_ratio"]
    pub comp_ratio: FloatParam,
    /// Compressor attack (ms).
    #[id = "comp_attack"]
    pub comp_attack: FloatParam,
    /// Compressor release (ms).
    #[id = "comp_release"]
    pub comp_release: FloatParam,
    /// Compressor knee (dB).
    #[id = "comp_knee"]
    pub comp_knee: FloatParam,
    /// Compressor makeup gain (dB).
    #[id = "comp_makeup"]
    pub comp_makeup: FloatParam,

    /// Delay switch.
    #[id = "dly_on"]
    pub delay_on: BoolParam,
    /// Delay time in ms or tempo-synced.
    #[id = "dly_sync"]
    pub delay_sync: EnumParam<DelaySync>,
    /// Delay time (ms).
    #[id = "dly_time"]
    pub delay_time: FloatParam,
    /// Delay note value (tempo sync).
    #[id = "dly_note"]
    pub delay_note: EnumParam<NoteValue>,
    /// Delay feedback.
    #[id = "dly_fb"]
    pub delay_feedback: FloatParam,
    /// Delay wet mix.
    #[id = "dly_mix"]
    pub delay_mix: FloatParam,
    /// Delay ping-pong.
    #[id = "dly_pingpong"]
    pub delay_ping_pong: BoolParam,

    /// Reverb switch.
    #[id = "rev_on"]
    pub reverb_on: BoolParam,
    /// Reverb room size.
    #[id = "rev_size"]
    pub reverb_size: FloatParam,
    /// Reverb damping.
    #[id = "rev_damp"]
    pub reverb_damping: FloatParam,
    /// Reverb wet mix.
    #[id = "rev_mix"]
    pub reverb_mix: FloatParam,

    /// Limiter switch (automatable: the latency is the lookahead whether it is on or off).
    #[id = "lim_on"]
    pub limiter_on: BoolParam,
    /// Limiter ceiling (dBFS).
    #[id = "lim_ceiling"]
    pub limiter_ceiling: FloatParam,
    /// Limiter lookahead (ms; the latency; not automatable).
    #[id = "lim_lookahead"]
    pub limiter_lookahead: FloatParam,
    /// Limiter release (ms).
    #[id = "lim_release"]
    pub limiter_release: FloatParam,

    /// Output gain (dB).
    #[id = "out_gain"]
    pub output_gain: FloatParam,

    /// Host-linked bypass.
    #[id = "bypass"]
    pub bypass: BoolParam,

    /// Processing mode (changes the latency, so not automatable).
    #[id = "mode"]
    pub mode: EnumParam<ProcessingMode>,
    /// Limiter true-peak mode (ceiling in dBTP; may change the latency, so not automatable).
    /// Added after the first release: appended so that existing parameters keep their order.
    #[id = "lim_tp"]
    pub limiter_true_peak: BoolParam,
}

impl Default for RtfxParams {
    fn default() -> Self {
        let d = StripSettings::default();
        let f = |x: f64| x as f32;
        Self {
            editor_size: RwLock::new(DEFAULT_EDITOR_SIZE),
            input_gain: db_param("Input Gain", f(d.input_gain_db), -24.0, 24.0),

            hp_on: BoolParam::new("High-Pass", d.high_pass.enabled),
            hp_freq: freq_param("High-Pass Cutoff", f(d.high_pass.cutoff_hz)),
            hp_order: order_param("High-Pass Order"),
            lp_on: BoolParam::new("Low-Pass", d.low_pass.enabled),
            lp_freq: freq_param("Low-Pass Cutoff", f(d.low_pass.cutoff_hz)),
            lp_order: order_param("Low-Pass Order"),

            eq_on: BoolParam::new("EQ", d.eq.enabled),
            ls_freq: freq_param("Low Shelf Freq", f(d.eq.low_shelf.freq_hz)),
            ls_gain: db_param("Low Shelf Gain", f(d.eq.low_shelf.gain_db), -24.0, 24.0),
            ls_q: q_param("Low Shelf Q", f(d.eq.low_shelf.q)),
            pk_freq: freq_param("Peak Freq", f(d.eq.peak.freq_hz)),
            pk_gain: db_param("Peak Gain", f(d.eq.peak.gain_db), -24.0, 24.0),
            pk_q: q_param("Peak Q", f(d.eq.peak.q)),
            hs_freq: freq_param("High Shelf Freq", f(d.eq.high_shelf.freq_hz)),
            hs_gain: db_param("High Shelf Gain", f(d.eq.high_shelf.gain_db), -24.0, 24.0),
            hs_q: q_param("High Shelf Q", f(d.eq.high_shelf.q)),

            comp_on: BoolParam::new("Compressor", d.compressor.enabled),
            comp_threshold: db_param("Comp Threshold", f(d.compressor.threshold_db), -60.0, 0.0),
            comp_ratio: FloatParam::new(
                "Comp Ratio",
                f(d.compressor.ratio),
                FloatRange::Skewed {
                    min: 1.0,
                    max: 20.0,
                    factor: FloatRange::skew_factor(-1.5),
                },
            )
            .with_value_to_string(formatters::v2s_compression_ratio(1))
            .with_string_to_value(formatters::s2v_compression_ratio()),
            comp_attack: ms_param("Comp Attack", f(d.compressor.attack_ms), 0.1, 200.0, -2.0),
            comp_release: ms_param(
                "Comp Release",
                f(d.compressor.release_ms),
                5.0,
                2000.0,
                -2.0,
            ),
            comp_knee: db_param("Comp Knee", f(d.compressor.knee_db), 0.0, 24.0),
            comp_makeup: db_param("Comp Makeup", f(d.compressor.makeup_db), -12.0, 24.0),

            delay_on: BoolParam::new("Delay", d.delay.enabled),
            delay_sync: EnumParam::new("Delay Sync", DelaySync::Time),
            delay_time: ms_param("Delay Time", 250.0, 1.0, MAX_DELAY_MS as f32, -1.5),
            delay_note: EnumParam::new("Delay Note", NoteValue::Eighth),
            delay_feedback: percent_param("Delay Feedback", f(d.delay.feedback), 0.95),
            delay_mix: percent_param("Delay Mix", f(d.delay.mix), 1.0),
            delay_ping_pong: BoolParam::new("Delay Ping-Pong", d.delay.ping_pong),

            reverb_on: BoolParam::new("Reverb", d.reverb.enabled),
            reverb_size: percent_param("Reverb Size", f(d.reverb.room_size), 1.0),
            reverb_damping: percent_param("Reverb Damping", f(d.reverb.damping), 1.0),
            reverb_mix: percent_param("Reverb Mix", f(d.reverb.mix), 1.0),

            limiter_on: BoolParam::new("Limiter", d.limiter.enabled),
            limiter_ceiling: db_param("Limiter Ceiling", f(d.limiter.ceiling_db), -24.0, 0.0),
            limiter_lookahead: ms_param(
                "Limiter Lookahead",
                f(d.limiter.lookahead_ms),
                0.0,
                MAX_LOOKAHEAD_MS as f32,
                0.0,
            )
            .non_automatable(),
            limiter_release: ms_param(
                "Limiter Release",
                f(d.limiter.release_ms),
                1.0,
                1000.0,
                -2.0,
            ),

            output_gain: db_param("Output Gain", f(d.output_gain_db), -24.0, 24.0),
            bypass: BoolParam::new("Bypass", d.bypass).make_bypass(),
            mode: EnumParam::new("Processing Mode", ProcessingMode::Inline).non_automatable(),
            limiter_true_peak: BoolParam::new("Limiter True Peak", d.limiter.true_peak)
                .non_automatable(),
        }
    }
}

impl RtfxParams {
    /// The strip settings for the current parameter values; `bpm` is the host tempo for the
    /// tempo-synced delay. Reads atomics only (no allocation): safe on the audio thread.
    pub fn settings(&self, bpm: f64) -> StripSettings {
        let v = |p: &FloatParam| f64::from(p.value());
        let band = |freq: &FloatParam, gain: &FloatParam, q: &FloatParam| EqBand {
            freq_hz: v(freq),
            gain_db: v(gain),
            q: v(q),
        };
        StripSettings {
            input_gain_db: v(&self.input_gain),
            high_pass: FilterSettings {
                enabled: self.hp_on.value(),
                cutoff_hz: v(&self.hp_freq),
                order: self.hp_order.value().clamp(1, MAX_FILTER_ORDER as i32) as usize,
            },
            low_pass: FilterSettings {
                enabled: self.lp_on.value(),
                cutoff_hz: v(&self.lp_freq),
                order: self.lp_order.value().clamp(1, MAX_FILTER_ORDER as i32) as usize,
            },
            eq: EqSettings {
                enabled: self.eq_on.value(),
                low_shelf: band(&self.ls_freq, &self.ls_gain, &self.ls_q),
                peak: band(&self.pk_freq, &self.pk_gain, &self.pk_q),
                high_shelf: band(&self.hs_freq, &self.hs_gain, &self.hs_q),
            },
            compressor: CompressorSettings {
                enabled: self.comp_on.value(),
                threshold_db: v(&self.comp_threshold),
                ratio: v(&self.comp_ratio),
                attack_ms: v(&self.comp_attack),
                release_ms: v(&self.comp_release),
                knee_db: v(&self.comp_knee),
                makeup_db: v(&self.comp_makeup),
            },
            delay: DelaySettings {
                enabled: self.delay_on.value(),
                time: match self.delay_sync.value() {
                    DelaySync::Time => DelayTime::Ms(v(&self.delay_time)),
                    DelaySync::Tempo => DelayTime::Note {
                        fraction: self.delay_note.value().fraction(),
                        bpm,
                    },
                },
                feedback: v(&self.delay_feedback),
                mix: v(&self.delay_mix),
                ping_pong: self.delay_ping_pong.value(),
            },
            reverb: ReverbSettings {
                enabled: self.reverb_on.value(),
                room_size: v(&self.reverb_size),
                damping: v(&self.reverb_damping),
                mix: v(&self.reverb_mix),
            },
            limiter: LimiterSettings {
                enabled: self.limiter_on.value(),
                ceiling_db: v(&self.limiter_ceiling),
                lookahead_ms: v(&self.limiter_lookahead),
                release_ms: v(&self.limiter_release),
                true_peak: self.limiter_true_peak.value(),
            },
            output_gain_db: v(&self.output_gain),
            bypass: self.bypass.value(),
        }
    }

    /// The normalized value, with its parameter, that each sound parameter needs to hold for
    /// the strip to run `s` (every parameter but the processing mode, the bypass and the editor
    /// size). Values outside a parameter's range come out clamped to it; a tempo-synced delay
    /// whose note value the `Delay Note` parameter lacks becomes a delay time (at its tempo).
    /// Setting them all applies a preset ([`Self::apply_values`] for a host-less copy, the
    /// editor with gestures).
    pub fn values_for(&self, s: &StripSettings) -> Vec<(ParamPtr, f32)> {
        fn float(p: &FloatParam, v: f64) -> (ParamPtr, f32) {
            (p.as_ptr(), p.preview_normalized(v as f32))
        }
        fn int(p: &IntParam, v: usize) -> (ParamPtr, f32) {
            (
                p.as_ptr(),
                p.preview_normalized(v.min(i32::MAX as usize) as i32),
            )
        }
        fn switch(p: &BoolParam, on: bool) -> (ParamPtr, f32) {
            (p.as_ptr(), p.preview_normalized(on))
        }
        fn choice<T: Enum + PartialEq>(p: &EnumParam<T>, v: T) -> (ParamPtr, f32) {
            (p.as_ptr(), p.preview_normalized(v))
        }
        let note = match s.delay.time {
            DelayTime::Note { fraction, .. } => (0..NoteValue::variants().len())
                .map(NoteValue::from_index)
                .find(|n| (n.fraction() - fraction).abs() < 1e-12),
            DelayTime::Ms(_) => None,
        };
        let mut values = vec![
            float(&self.input_gain, s.input_gain_db),
            switch(&self.hp_on, s.high_pass.enabled),
            float(&self.hp_freq, s.high_pass.cutoff_hz),
            int(&self.hp_order, s.high_pass.order),
            switch(&self.lp_on, s.low_pass.enabled),
            float(&self.lp_freq, s.low_pass.cutoff_hz),
            int(&self.lp_order, s.low_pass.order),
            switch(&self.eq_on, s.eq.enabled),
        ];
        for (band, (freq, gain, q)) in [s.eq.low_shelf, s.eq.peak, s.eq.high_shelf].iter().zip([
            (&self.ls_freq, &self.ls_gain, &self.ls_q),
            (&self.pk_freq, &self.pk_gain, &self.pk_q),
            (&self.hs_freq, &self.hs_gain, &self.hs_q),
        ]) {
            values.push(float(freq, band.freq_hz));
            values.push(float(gain, band.gain_db));
            values.push(float(q, band.q));
        }
        let c = &s.compressor;
        let d = &s.delay;
        let r = &s.reverb;
        let l = &s.limiter;
        values.extend([
            switch(&self.comp_on, c.enabled),
            float(&self.comp_threshold, c.threshold_db),
            float(&self.comp_ratio, c.ratio),
            float(&self.comp_attack, c.attack_ms),
            float(&self.comp_release, c.release_ms),
            float(&self.comp_knee, c.knee_db),
            float(&self.comp_makeup, c.makeup_db),
            switch(&self.delay_on, d.enabled),
            float(&self.delay_feedback, d.feedback),
            float(&self.delay_mix, d.mix),
            switch(&self.delay_ping_pong, d.ping_pong),
            switch(&self.reverb_on, r.enabled),
            float(&self.reverb_size, r.room_size),
            float(&self.reverb_damping, r.damping),
            float(&self.reverb_mix, r.mix),
            switch(&self.limiter_on, l.enabled),
            float(&self.limiter_ceiling, l.ceiling_db),
            float(&self.limiter_lookahead, l.lookahead_ms),
            float(&self.limiter_release, l.release_ms),
            switch(&self.limiter_true_peak, l.true_peak),
            float(&self.output_gain, s.output_gain_db),
        ]);
        match note {
            Some(note) => values.extend([
                choice(&self.delay_sync, DelaySync::Tempo),
                choice(&self.delay_note, note),
            ]),
            None => values.extend([
                choice(&self.delay_sync, DelaySync::Time),
                float(&self.delay_time, d.time.ms()),
            ]),
        }
        values
    }

    /// Sets these parameters to `values` (from [`Self::values_for`]) directly, with no host to
    /// tell: for a copy of the parameters that no plugin uses.
    pub fn apply_values(&self, values: &[(ParamPtr, f32)]) {
        for &(param, normalized) in values {
            // SAFETY: the pointers come from `values_for` on parameters that outlive this call.
            unsafe {
                param._internal_set_normalized_value(normalized);
            }
        }
    }

    /// Applies `s` from the editor as one step of the host's undo: a gesture begins on every
    /// sound parameter, then every value changes, then every gesture ends (hosts that record
    /// gestures group what changes inside them). The strip takes the new values through its
    /// ramps and cross-fades, so the change is click-free.
    pub fn apply_with_gestures(&self, gui: &GuiContext, s: &StripSettings) {
        let values = self.values_for(s);
        // SAFETY: every pointer is one of these parameters, which the plugin owns for as long
        // as its editor exists.
        unsafe {
            for &(param, _) in &values {
                gui.raw_begin_set_parameter(param);
            }
            for &(param, normalized) in &values {
                gui.raw_set_parameter_normalized(param, normalized);
            }
            for &(param, _) in &values {
                gui.raw_end_set_parameter(param);
            }
        }
    }

    /// `s` as the parameters hold it: each value clamped to its parameter's range and rounded
    /// to its step and to `f32`. Loading a preset gives the strip exactly these settings, and
    /// exporting them writes exactly this chain.
    pub fn quantize(s: &StripSettings) -> StripSettings {
        let params = RtfxParams::default();
        params.apply_values(&params.values_for(s));
        let bpm = match s.delay.time {
            DelayTime::Note { bpm, .. } => bpm,
            DelayTime::Ms(_) => super::DEFAULT_TEMPO,
        };
        StripSettings {
            bypass: s.bypass,
            ..params.settings(bpm)
        }
    }

    /// The persisted editor size (logical pixels), sanitised to a usable range.
    pub fn editor_size(&self) -> (u32, u32) {
        let (w, h) = self
            .editor_size
            .read()
            .map(|s| *s)
            .unwrap_or(DEFAULT_EDITOR_SIZE);
        (w.clamp(400, 4000), h.clamp(300, 3000))
    }
}

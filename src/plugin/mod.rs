//! The rtfx plugin: the channel strip as a CLAP and VST3 plugin (nice-plug), with an egui
//! editor.
//!
//! The host is the backend: [`Rtfx::process`] runs the [`strip::Strip`] inline on the host's
//! audio thread. Its latency is the limiter's lookahead whether the limiter is on or off (the
//! lookahead delay stays in the path, so the limiter switch is automatable and never makes the
//! host restart); a lookahead of 0 ms makes the plugin latency-free.
//! Parameters arrive as nice-plug parameters ([`params::RtfxParams`]); meters and statistics
//! go to the editor through atomics only ([`Meters`]).
//!
//! Processing modes (the `mode` parameter, [`params::ProcessingMode`]; not automatable, since
//! it changes the latency, which is re-reported through the host's restart path):
//! - **Inline** (default): the strip runs in `process()`; no added latency.
//! - **Offload**: `process()` only moves samples through lock-free rings to a worker thread
//!   that runs its own strip in fixed chunks ([`offload`]); the latency grows by the host's
//!   maximum block plus [`offload::OFFLOAD_CHUNK`]; late worker output becomes silence and is
//!   counted ([`Meters::underflows`]).
//! - **GPU**: Offload, with the worker strip's high-pass, low-pass and EQ as one cascade on the
//!   CUDA graph runner when there is a device (while no filter is switching or changing
//!   order); without one it is Offload on the CPU worker, and the editor says which
//!   ([`offload::gpu_status_line`]).
//!
//! The worker thread starts in `activate` (parked until offload is used, so the mode can be
//! switched while processing without allocating) and is stopped and joined in `deactivate`.
//!
//! Audio thread: no allocation, lock, log or panic; any block length; every sample rate from
//! 1 kHz to 768 kHz (everything is rebuilt in `activate`); output free of NaN, infinity and
//! subnormal numbers.

pub mod analyser;
pub mod display;
pub mod editor;
pub mod offload;
pub mod params;
pub mod presets;
pub mod standalone;
pub mod strip;

use std::num::NonZeroU32;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU32, AtomicU64, Ordering};
use std::time::Instant;

use crate::dsp::section::block_mean_square as mean_square;
use crate::realtime::metrics::percentile_index;
use atomic_float::{AtomicF32, AtomicF64};
use nice_plug::prelude::*;

use self::analyser::{AnalyserFeed, AnalyserTap};
use self::offload::Offload;
use self::params::{ProcessingMode, RtfxParams};
use self::strip::{Strip, StripLevels, StripSettings};

/// Tempo the tempo-synced delay uses when the host reports none (BPM).
pub const DEFAULT_TEMPO: f64 = 120.0;

/// Number of bins of the DSP-load histogram; bin `i` holds blocks whose processing took
/// `[i, i+1) × LOAD_BIN_PERCENT` percent of the block's duration (the last bin: more).
pub const LOAD_BINS: usize = 400;
/// Width of one load-histogram bin, in percent of the block's duration.
pub const LOAD_BIN_PERCENT: f32 = 0.25;

/// Values the audio thread shares with the editor, through atomics only (and the analyser's
/// rings, [`Meters::with_analyser`], which only the editor locks).
///
/// Peaks are maxima since the editor last took them ([`Meters::take_levels`]); the signal
/// energies are running sums the editor reads differences of ([`Meters::energy`]); the load
/// histogram counts blocks by DSP time as a share of the block's real-time duration.
pub struct Meters {
    input_peak: AtomicF32,
    output_peak: AtomicF32,
    compressor_gr_db: AtomicF32,
    limiter_gr_db: AtomicF32,
    /// Running sums of the input's and output's mean square per frame, and of the frames.
    input_energy: AtomicF64,
    output_energy: AtomicF64,
    energy_frames: AtomicU64,
    latency_samples: AtomicU32,
    sample_rate: AtomicF32,
    tempo: AtomicF64,
    blocks: AtomicU64,
    overruns: AtomicU64,
    load: [AtomicU32; LOAD_BINS],
    active_mode: AtomicU8,
    underflows: AtomicU64,
    worker_realtime: AtomicBool,
    gpu_filters: AtomicBool,
    /// Why the offload worker could not start at the last activation (for the editor). Written
    /// in `activate` and read by the editor; the audio thread never touches it.
    offload_error: std::sync::Mutex<Option<String>>,
    /// The analyser's rings (the plugin's audio side holds the other ends).
    analyser: std::sync::Mutex<Option<AnalyserFeed>>,
}

impl Default for Meters {
    fn default() -> Self {
        Self {
            input_peak: AtomicF32::new(0.0),
            output_peak: AtomicF32::new(0.0),
            compressor_gr_db: AtomicF32::new(0.0),
            limiter_gr_db: AtomicF32::new(0.0),
            input_energy: AtomicF64::new(0.0),
            output_energy: AtomicF64::new(0.0),
            energy_frames: AtomicU64::new(0),
            latency_samples: AtomicU32::new(0),
            sample_rate: AtomicF32::new(0.0),
            tempo: AtomicF64::new(DEFAULT_TEMPO),
            blocks: AtomicU64::new(0),
            overruns: AtomicU64::new(0),
            load: std::array::from_fn(|_| AtomicU32::new(0)),
            active_mode: AtomicU8::new(0),
            underflows: AtomicU64::new(0),
            worker_realtime: AtomicBool::new(false),
            gpu_filters: AtomicBool::new(false),
            offload_error: std::sync::Mutex::new(None),
            analyser: std::sync::Mutex::new(None),
        }
    }
}

/// DSP-load statistics, from [`Meters::load_stats`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LoadStats {
    /// Blocks counted.
    pub blocks: u64,
    /// Median DSP time per block, in percent of the block's duration.
    pub median_percent: f32,
    /// 99th percentile, in percent of the block's duration.
    pub p99_percent: f32,
    /// Blocks that took longer than their duration (would be xruns in real time).
    pub overruns: u64,
}

impl Meters {
    /// Records one processed block (audio thread; atomics only).
    pub fn record(&self, levels: StripLevels, load_percent: f32) {
        self.record_levels(levels);
        if load_percent.is_finite() {
            let bin = ((load_percent / LOAD_BIN_PERCENT) as usize).min(LOAD_BINS - 1);
            self.load[bin].fetch_add(1, Ordering::Relaxed);
            self.blocks.fetch_add(1, Ordering::Relaxed);
            if load_percent > 100.0 {
                self.overruns.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// Records the levels of a block processed elsewhere (the offload worker; atomics only).
    pub fn record_levels(&self, levels: StripLevels) {
        self.input_peak
            .fetch_max(levels.input_peak, Ordering::Relaxed);
        self.output_peak
            .fetch_max(levels.output_peak, Ordering::Relaxed);
        self.compressor_gr_db
            .fetch_min(levels.compressor_gr_db, Ordering::Relaxed);
        self.limiter_gr_db
            .fetch_min(levels.limiter_gr_db, Ordering::Relaxed);
    }

    /// Adds a block's input and output energy (mean square over channels and frames) for the
    /// RMS meters (audio thread; atomics only, one writer).
    pub fn record_energy(&self, input_mean_square: f32, output_mean_square: f32, frames: usize) {
        let n = frames as f64;
        let add = |sum: &AtomicF64, ms: f32| {
            if ms.is_finite() {
                sum.store(
                    sum.load(Ordering::Relaxed) + f64::from(ms) * n,
                    Ordering::Relaxed,
                );
            }
        };
        add(&self.input_energy, input_mean_square);
        add(&self.output_energy, output_mean_square);
        self.energy_frames.store(
            self.energy_frames.load(Ordering::Relaxed) + frames as u64,
            Ordering::Release,
        );
    }

    /// The running sums `(input energy, output energy, frames)`: the RMS over an interval is
    /// `sqrt(Δenergy / Δframes)` between two reads.
    pub fn energy(&self) -> (f64, f64, u64) {
        let frames = self.energy_frames.load(Ordering::Acquire);
        (
            self.input_energy.load(Ordering::Relaxed),
            self.output_energy.load(Ordering::Relaxed),
            frames,
        )
    }

    /// Runs `f` on the analyser's rings (GUI threads only; `None` outside the plugin).
    pub fn with_analyser<R>(&self, f: impl FnOnce(&mut AnalyserFeed) -> R) -> Option<R> {
        let mut feed = self.analyser.lock().ok()?;
        feed.as_mut().map(f)
    }

    /// The processing mode that is running: Inline until the first activation, and Inline
    /// when the offload worker could not be started. GPU mode runs on the offload worker,
    /// with its filters on the GPU where there is one (see [`offload::gpu_status_line`]).
    /// Why the offload worker could not start at the last activation (then Offload and GPU
    /// mode run inline), or `None` when it runs.
    pub fn offload_error(&self) -> Option<String> {
        self.offload_error.lock().ok().and_then(|e| e.clone())
    }

    fn set_offload_error(&self, error: Option<String>) {
        if let Ok(mut slot) = self.offload_error.lock() {
            *slot = error;
        }
    }

    pub fn active_mode(&self) -> ProcessingMode {
        match self.active_mode.load(Ordering::Relaxed) {
            1 => ProcessingMode::Offload,
            2 => ProcessingMode::Gpu,
            _ => ProcessingMode::Inline,
        }
    }

    fn set_active_mode(&self, mode: ProcessingMode) {
        let v = match mode {
            ProcessingMode::Inline => 0,
            ProcessingMode::Offload => 1,
            ProcessingMode::Gpu => 2,
        };
        self.active_mode.store(v, Ordering::Relaxed);
    }

    /// Host blocks in offload mode that lacked worker output (filled with silence).
    pub fn underflows(&self) -> u64 {
        self.underflows.load(Ordering::Relaxed)
    }

    /// Whether the offload worker got real-time scheduling (the system grants it e.g. to
    /// members of the `audio` group with an rtprio limit); false until the worker starts.
    pub fn worker_realtime(&self) -> bool {
        self.worker_realtime.load(Ordering::Acquire)
    }

    pub(crate) fn set_worker_realtime(&self, realtime: bool) {
        self.worker_realtime.store(realtime, Ordering::Release);
    }

    /// Whether the strip's filters ran on the GPU in the offload worker's last chunk.
    pub fn gpu_filters(&self) -> bool {
        self.gpu_filters.load(Ordering::Relaxed)
    }

    pub(crate) fn set_gpu_filters(&self, on_gpu: bool) {
        self.gpu_filters.store(on_gpu, Ordering::Relaxed);
    }

    /// Takes the input peak, output peak and the compressor's and limiter's gain reductions
    /// (dB) accumulated since the last call, and resets them.
    pub fn take_levels(&self) -> StripLevels {
        StripLevels {
            input_peak: self.input_peak.swap(0.0, Ordering::Relaxed),
            output_peak: self.output_peak.swap(0.0, Ordering::Relaxed),
            compressor_gr_db: self.compressor_gr_db.swap(0.0, Ordering::Relaxed),
            limiter_gr_db: self.limiter_gr_db.swap(0.0, Ordering::Relaxed),
        }
    }

    /// The latency reported to the host, in samples.
    pub fn latency_samples(&self) -> u32 {
        self.latency_samples.load(Ordering::Relaxed)
    }

    /// The sample rate of the running activation (0 before the first).
    pub fn sample_rate(&self) -> f32 {
        self.sample_rate.load(Ordering::Relaxed)
    }

    /// The host tempo of the last processed block (BPM; [`DEFAULT_TEMPO`] before one).
    pub fn tempo(&self) -> f64 {
        self.tempo.load(Ordering::Relaxed)
    }

    /// Median and 99th percentile of the DSP load, or `None` before the first block.
    pub fn load_stats(&self) -> Option<LoadStats> {
        let counts: Vec<u32> = self
            .load
            .iter()
            .map(|c| c.load(Ordering::Relaxed))
            .collect();
        let total: u64 = counts.iter().map(|&c| u64::from(c)).sum();
        if total == 0 {
            return None;
        }
        // The real-time processor's nearest rank, over the histogram's bins.
        let quantile = |q: f64| {
            let index = percentile_index(total as usize, q) as u64;
            let mut seen = 0u64;
            for (i, &c) in counts.iter().enumerate() {
                seen += u64::from(c);
                if seen > index {
                    return (i as f32 + 0.5) * LOAD_BIN_PERCENT;
                }
            }
            LOAD_BINS as f32 * LOAD_BIN_PERCENT
        };
        Some(LoadStats {
            blocks: self.blocks.load(Ordering::Relaxed),
            median_percent: quantile(0.5),
            p99_percent: quantile(0.99),
            overruns: self.overruns.load(Ordering::Relaxed),
        })
    }

    /// Clears the load statistics.
    pub fn reset_stats(&self) {
        self.load.iter().for_each(|c| c.store(0, Ordering::Relaxed));
        self.blocks.store(0, Ordering::Relaxed);
        self.overruns.store(0, Ordering::Relaxed);
        self.underflows.store(0, Ordering::Relaxed);
    }
}

/// The rtfx plugin.
pub struct Rtfx {
    params: Arc<RtfxParams>,
    meters: Arc<Meters>,
    strip: Strip,
    /// Hands the input and output to the editor's analyser.
    analyser: AnalyserTap,
    /// The offload worker (from `activate` to `deactivate`).
    offload: Option<Offload>,
    /// The processing mode running now.
    mode: ProcessingMode,
    sample_rate: f32,
    /// Latency last reported to the host.
    reported_latency: u32,
    /// The next block follows an activation or a reset: jump to the parameter values instead
    /// of ramping (hosts often deliver values set before playback with that first block).
    fresh: bool,
}

impl Default for Rtfx {
    fn default() -> Self {
        let (analyser, feed) = analyser::analyser_channel();
        let meters = Meters {
            analyser: std::sync::Mutex::new(Some(feed)),
            ..Meters::default()
        };
        Self {
            params: Arc::new(RtfxParams::default()),
            meters: Arc::new(meters),
            strip: Strip::default(),
            analyser,
            offload: None,
            mode: ProcessingMode::Inline,
            sample_rate: 0.0,
            reported_latency: 0,
            fresh: true,
        }
    }
}

impl Rtfx {
    /// The parameters (shared with the host wrapper and the editor).
    pub fn rtfx_params(&self) -> &Arc<RtfxParams> {
        &self.params
    }

    /// The meters and statistics shared with the editor.
    pub fn meters(&self) -> &Arc<Meters> {
        &self.meters
    }

    /// The strip (for tests: latency, tail, state).
    pub fn strip(&self) -> &Strip {
        &self.strip
    }

    /// The offload worker's audio-side handle while active (for tests and diagnostics).
    pub fn offload(&self) -> Option<&Offload> {
        self.offload.as_ref()
    }

    /// The processing mode to run: the parameter's, or Inline without a worker.
    fn wanted_mode(&self) -> ProcessingMode {
        match self.offload {
            Some(_) => self.params.mode.value(),
            None => ProcessingMode::Inline,
        }
    }

    /// The latency to report for `settings` in `mode`: the limiter's latency (on or off) plus,
    /// when offloaded, the offload latency.
    fn latency_for(&self, settings: &StripSettings, mode: ProcessingMode) -> u32 {
        let strip = if self.sample_rate > 0.0 {
            settings
                .limiter
                .latency_samples(f64::from(self.sample_rate))
        } else {
            0
        };
        let offload = match (&self.offload, mode) {
            (Some(o), ProcessingMode::Offload | ProcessingMode::Gpu) => o.latency(),
            _ => 0,
        };
        (strip + offload).min(u32::MAX as usize) as u32
    }
}

/// The plugin's home page, as hosts show it in their plugin browsers: set when the bundles are
/// built (`RTFX_HOMEPAGE_URL`) by whoever publishes them; empty while rtfx has no public
/// address of its own. Likewise `RTFX_SUPPORT_EMAIL`, `RTFX_MANUAL_URL` and `RTFX_SUPPORT_URL`.
const HOMEPAGE_URL: &str = match option_env!("RTFX_HOMEPAGE_URL") {
    Some(url) => url,
    None => "",
};
/// See [`HOMEPAGE_URL`].
const SUPPORT_EMAIL: &str = match option_env!("RTFX_SUPPORT_EMAIL") {
    Some(email) => email,
    None => "",
};

impl Plugin for Rtfx {
    const NAME: &'static str = "rtfx";
    const VENDOR: &'static str = "rtfx";
    const URL: &'static str = HOMEPAGE_URL;
    const EMAIL: &'static str = SUPPORT_EMAIL;
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");

    const AUDIO_IO_LAYOUTS: &'static [AudioIOLayout] = &[
        AudioIOLayout {
            main_input_channels: NonZeroU32::new(2),
            main_output_channels: NonZeroU32::new(2),
            ..AudioIOLayout::const_default()
        },
        AudioIOLayout {
            main_input_channels: NonZeroU32::new(1),
            main_output_channels: NonZeroU32::new(1),
            ..AudioIOLayout::const_default()
        },
    ];

    const SAMPLE_ACCURATE_AUTOMATION: bool = true;

    type SysExMessage = ();
    type BackgroundTask = ();
    type Editor = editor::RtfxEditor;

    fn params(&self) -> Arc<dyn Params> {
        self.params.clone()
    }

    fn editor(&mut self, _async_executor: AsyncExecutor<Self>) -> Option<Self::Editor> {
        if standalone::headless() {
            // The standalone app without a display: run without an editor.
            return None;
        }
        Some(editor::RtfxEditor::new(
            self.params.clone(),
            self.meters.clone(),
        ))
    }

    /// Runs before a saved state is applied: every value is checked against its parameter's
    /// range (non-finite values become the default, others are clamped), so a damaged or
    /// hand-edited project can never push a parameter out of range. States from other plugins
    /// carry none of our ids and change nothing. The state's `version` is the plugin version
    /// that saved it; no migration is needed yet.
    fn filter_state(state: &mut PluginState) {
        clamp_saved_state(state);
    }

    fn activate(
        &mut self,
        audio_io_layout: &AudioIOLayout,
        buffer_config: &BufferConfig,
        context: &mut impl ActivateContext<Self>,
    ) -> bool {
        // Stops and joins the previous activation's worker, if any.
        self.offload = None;
        let channels = audio_io_layout
            .main_output_channels
            .map_or(0, NonZeroU32::get) as usize;
        let sample_rate = buffer_config.sample_rate;
        let settings = self.params.settings(DEFAULT_TEMPO);
        if self
            .strip
            .prepare(
                f64::from(sample_rate),
                buffer_config.max_buffer_size as usize,
                channels,
                &settings,
            )
            .is_err()
        {
            return false;
        }
        self.sample_rate = sample_rate;
        // Without a worker the plugin still runs (inline). The GPU status is computed here,
        // once per process and outside the audio thread (it may load the driver).
        let started = Offload::start(
            self.params.clone(),
            self.meters.clone(),
            f64::from(sample_rate),
            buffer_config.max_buffer_size as usize,
            channels,
            buffer_config.process_mode,
            offload::gpu_status().is_ok().then_some(
                crate::gpu::leading_filters::cuda_engine
                    as crate::dsp::filter::engine::EngineFactory,
            ),
        );
        self.meters
            .set_offload_error(started.as_ref().err().map(|e| e.to_string()));
        self.offload = started.ok();
        self.mode = self.wanted_mode();
        self.meters.set_active_mode(self.mode);
        // The wrapper remembers the last value (0 at first): report changes only.
        let latency = self.latency_for(&settings, self.mode);
        if latency != self.reported_latency {
            self.reported_latency = latency;
            context.set_latency_samples(latency);
        }
        self.meters
            .latency_samples
            .store(self.reported_latency, Ordering::Relaxed);
        self.meters
            .sample_rate
            .store(sample_rate, Ordering::Relaxed);
        self.fresh = true;
        true
    }

    /// Stops and joins the offload worker.
    fn deactivate(&mut self) {
        self.offload = None;
    }

    /// Clears all audio state and jumps every parameter to its current value (no ramps); the
    /// first block after it jumps to the values it brings too, so that processing after a reset
    /// starts exactly at the current settings. The offload worker drops its queued audio and
    /// resets its strip too (the output restarts after the offload latency).
    fn reset(&mut self) {
        if let Some(offload) = self.offload.as_mut() {
            offload.restart();
        }
        let bpm = self.meters.tempo.load(Ordering::Relaxed);
        self.strip.set_settings(&self.params.settings(bpm));
        self.strip.reset();
        self.fresh = true;
    }

    fn process(
        &mut self,
        buffer: &mut Buffer,
        _aux: &mut AuxiliaryBuffers,
        context: &mut impl ProcessContext<Self>,
    ) -> ProcessStatus {
        let started = Instant::now();
        let bpm = context
            .transport()
            .tempo
            .filter(|t| t.is_finite() && *t > 0.0)
            .unwrap_or(DEFAULT_TEMPO);
        self.meters.tempo.store(bpm, Ordering::Relaxed);
        let settings = self.params.settings(bpm);
        if self.fresh {
            self.strip.jump_to(&settings);
            self.fresh = false;
        } else {
            self.strip.set_settings(&settings);
        }

        let mode = self.wanted_mode();
        if mode != self.mode {
            // A mode switch (the host restarts us for the latency change, but need not do so
            // before the next block): start the side that takes over from fresh state.
            // Offload ↔ GPU keeps the worker running as it is (the same CPU worker).
            match (self.mode, mode, self.offload.as_mut()) {
                (
                    ProcessingMode::Inline,
                    ProcessingMode::Offload | ProcessingMode::Gpu,
                    Some(o),
                ) => o.restart(),
                (_, ProcessingMode::Inline, _) => {
                    self.strip.reset();
                    self.strip.jump_to(&settings);
                }
                _ => {}
            }
            self.mode = mode;
            self.meters.set_active_mode(mode);
        }

        let latency = self.latency_for(&settings, mode);
        if latency != self.reported_latency {
            // The wrapper asks the host to restart (CLAP) or sends kLatencyChanged (VST3).
            self.reported_latency = latency;
            context.set_latency_samples(latency);
            self.meters
                .latency_samples
                .store(latency, Ordering::Relaxed);
        }

        let frames = buffer.samples();
        let input_mean_square = mean_square(buffer.as_slice_immutable());
        self.analyser.push_input(buffer.as_slice_immutable());
        let (levels, tail) = match (mode, self.offload.as_mut()) {
            (ProcessingMode::Offload | ProcessingMode::Gpu, Some(o)) => {
                if o.process(buffer.as_slice()) {
                    self.meters.underflows.fetch_add(1, Ordering::Relaxed);
                }
                // The worker records its own levels and tail.
                (StripLevels::default(), Some(o.tail_samples()))
            }
            _ => {
                self.strip.process(buffer.as_slice());
                (self.strip.levels(), None)
            }
        };

        self.analyser.push_output(buffer.as_slice_immutable());
        let output_mean_square = mean_square(buffer.as_slice_immutable());
        self.meters
            .record_energy(input_mean_square, output_mean_square, frames);
        if frames > 0 && self.sample_rate > 0.0 {
            let duration = frames as f32 / self.sample_rate;
            let load = started.elapsed().as_secs_f32() / duration * 100.0;
            self.meters.record(levels, load);
        }
        let tail = tail.unwrap_or_else(|| self.strip.tail_samples());
        ProcessStatus::Tail(tail.min(u32::MAX as usize) as u32)
    }
}

/// Clamps every parameter value of a saved state into its range (the plugin's
/// `Plugin::filter_state` calls it before every state load).
///
/// nice-plug does not export its state value type, so the values are edited in their JSON form
/// (`{"f32": 1.5}`, `{"i32": 3}`, `{"bool": true}`, `{"string": "id"}`), exactly as saved.
pub fn clamp_saved_state(state: &mut PluginState) {
    use serde_json::Value;
    let Ok(Value::Object(mut values)) = serde_json::to_value(&state.params) else {
        return;
    };
    let params = RtfxParams::default();
    let map = params.param_map();
    for (id, value) in values.iter_mut() {
        let Some((_, ptr, _)) = map.iter().find(|(pid, _, _)| pid == id) else {
            continue;
        };
        // SAFETY: `ptr` points into `params`, which outlives this loop.
        let (lo, hi, default) = unsafe {
            (
                ptr.preview_plain(0.0),
                ptr.preview_plain(1.0),
                ptr.default_plain_value(),
            )
        };
        let Value::Object(tagged) = value else {
            continue;
        };
        if let Some(v) = tagged.get_mut("f32") {
            let x = v.as_f64().map(|x| x as f32).filter(|x| x.is_finite());
            let x = x.map_or(default, |x| x.clamp(lo, hi));
            *v = Value::from(x);
        } else if let Some(v) = tagged.get_mut("i32") {
            let (lo, hi) = (lo.round() as i64, hi.round() as i64);
            let x = v
                .as_i64()
                .map_or(default.round() as i64, |x| x.clamp(lo, hi));
            *v = Value::from(x);
        }
    }
    if let Ok(clean) = serde_json::from_value(Value::Object(values)) {
        state.params = clean;
    }
}

impl ClapPlugin for Rtfx {
    const CLAP_ID: &'static str = "com.rtfx.rtfx";
    const CLAP_DESCRIPTION: Option<&'static str> =
        Some("Channel strip: gain, high/low-pass, 3-band EQ, compressor, delay, reverb, limiter");
    /// From the build-time variable `RTFX_MANUAL_URL`; none when unset.
    const CLAP_MANUAL_URL: Option<&'static str> = option_env!("RTFX_MANUAL_URL");
    /// From the build-time variable `RTFX_SUPPORT_URL`; none when unset.
    const CLAP_SUPPORT_URL: Option<&'static str> = option_env!("RTFX_SUPPORT_URL");
    const CLAP_FEATURES: &'static [ClapFeature] = &[
        ClapFeature::AudioEffect,
        ClapFeature::Stereo,
        ClapFeature::Mono,
        ClapFeature::Equalizer,
        ClapFeature::Filter,
        ClapFeature::Compressor,
        ClapFeature::Limiter,
        ClapFeature::Delay,
        ClapFeature::Reverb,
        ClapFeature::Mixing,
    ];
}

impl Vst3Plugin for Rtfx {
    /// Never change: hosts identify the plugin (and saved projects) by it.
    const VST3_CLASS_ID: [u8; 16] = *b"rtfxChannelStrp1";
    const VST3_SUBCATEGORIES: &'static [Vst3SubCategory] = &[
        Vst3SubCategory::Fx,
        Vst3SubCategory::Eq,
        Vst3SubCategory::Dynamics,
        Vst3SubCategory::Reverb,
        Vst3SubCategory::Delay,
        Vst3SubCategory::Stereo,
    ];
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::realtime::LatencyStats;

    /// The load histogram's quantiles are the real-time processor's nearest rank
    /// ([`LatencyStats`]) over the same values, to the bin.
    #[test]
    fn load_quantiles_match_the_processors_statistics() {
        let meters = Meters::default();
        // 100 blocks, one in each bin 0..100 (0.25 % apart), recorded at the bins' centres.
        let loads: Vec<f32> = (0..100)
            .map(|i| (i as f32 + 0.5) * LOAD_BIN_PERCENT)
            .collect();
        for &load in loads.iter().rev() {
            meters.record(StripLevels::default(), load);
        }
        let mut nanos: Vec<u64> = loads.iter().map(|&l| (l * 1e6) as u64).collect();
        let reference = LatencyStats::from_nanos(&mut nanos);
        let stats = meters.load_stats().expect("100 blocks");
        assert_eq!(stats.blocks, 100);
        assert!((f64::from(stats.median_percent) - reference.median).abs() < 1e-6);
        assert!((f64::from(stats.p99_percent) - reference.p99).abs() < 1e-6);
    }
}

nice_export_clap!(Rtfx);
nice_export_vst3!(Rtfx);

//! `RealtimeProcessor`: a chain on an audio backend, with the DSP off the audio thread
//! (torchfx 0.8.0's design, done lock-free).
//!
//! ```text
//!  backend callback ──input ring──▶ DSP side (worker thread or process_pending) ──output ring──▶ backend callback
//!        ▲ counters, latency log (atomics)          ▲ parameter queue (rtrb) from set_parameter
//! ```
//!
//! - The **callback** only copies: input into the input ring (counting an input overflow when
//!   it does not fit), the output ring into the device buffer (counting an output underflow and
//!   playing silence when it holds less than a buffer), then wakes the worker
//!   (`Thread::unpark`: an atomic swap and at most one futex wake, no lock). It never
//!   allocates, locks, logs or blocks; its run time goes into a preallocated log.
//! - The **DSP side** processes whole chunks of `buffer_size` frames while the input ring holds
//!   one and the output ring has room for one, applying staged parameter changes at each chunk
//!   boundary. It owns the chain; with `start_worker` it runs on the thread
//!   "rtfx-realtime-dsp", otherwise the caller drives [`RealtimeProcessor::process_pending`].
//! - **Parameters**: [`RealtimeProcessor::set_parameter`] validates at once (an unknown path or
//!   a bad value is an error, with a suggestion) and stages the change in a lock-free queue.
//!   Changes ramp like every chain parameter and never reset filter state.
//! - **Channels**: the chain runs at `max(channels_in, channels_out)` channels. Mono input is
//!   broadcast to every channel, N inputs fill M > N channels cyclically; for fewer outputs the
//!   first ones are played, and a mono output gets the average of all channels. An output-only
//!   stream processes silence (so tails and generators play); an input-only stream discards
//!   the output.
//! - **Length**: rtfx effects process in place, so every chain preserves chunk length by
//!   construction (torchfx's length-changing `Delay` is a real feedback delay here); effects
//!   that cannot run at the stream's rate fail at construction, naming the effect.
//!
//! Differences from torchfx 0.8.0: the rings are created at each `start` (nothing stale is
//! played after a restart); the latency log is bounded and lock-free; a chunk-time log (DSP
//! time per chunk) sits beside the callback log; parameter errors are returned, not warned.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::thread::Thread;
use std::time::Instant;

use super::backend::{AudioBackend, AudioCallback};
use super::config::{BackendStatus, MAX_STREAM_CHANNELS, StreamConfig};
use super::metrics::{Counters, LatencyLog, LatencyStats};
use super::ring::{RingConsumer, RingProducer, ring_buffer};
use super::worker::{WorkerTask, WorkerThread};
use crate::dsp::Chain;
use crate::dsp::chain::ParamAddress;
use crate::error::{Error, Result};

/// Construction options of a [`RealtimeProcessor`] (torchfx's keyword arguments).
#[derive(Debug, Clone, PartialEq)]
pub struct ProcessorOptions {
    /// Ring capacity in buffers (rounded up to a power of two in frames); at least 2.
    pub ring_blocks: usize,
    /// Callback durations (and chunk durations) kept for statistics.
    pub latency_log_size: usize,
    /// Write `prime_blocks` buffers of silence into the output ring at each start, so the
    /// first callbacks have output while the first chunk is processed (latency: one buffer
    /// plus the primed ones).
    pub prime_output: bool,
    /// Buffers of silence primed when `prime_output` is on (default 1, torchfx's; more buys
    /// headroom against a late worker at the cost of latency). At most `ring_blocks − 1`.
    pub prime_blocks: usize,
    /// Run the DSP on a worker thread; when false the caller runs
    /// [`RealtimeProcessor::process_pending`].
    pub start_worker: bool,
    /// Parameter changes that may wait for the next chunk.
    pub param_queue_size: usize,
    /// Real-time (SCHED_FIFO) priority asked for the worker thread, 1–99 (Linux/Unix). When the
    /// system refuses, the worker runs at normal priority
    /// ([`RealtimeProcessor::worker_is_realtime`] tells). `None` keeps normal priority.
    pub worker_priority: Option<i32>,
}

impl Default for ProcessorOptions {
    fn default() -> Self {
        Self {
            ring_blocks: 4,
            latency_log_size: 65536,
            prime_output: true,
            prime_blocks: 1,
            start_worker: true,
            param_queue_size: 1024,
            worker_priority: Some(60),
        }
    }
}

/// Everything the callback, the DSP side and the control thread share: atomics only.
struct Shared {
    counters: Counters,
    callback_log: LatencyLog,
    chunk_log: LatencyLog,
    reset_dsp: AtomicBool,
    reset_output: AtomicU64,
    input_fill: AtomicUsize,
    output_fill: AtomicUsize,
    worker_realtime: AtomicBool,
}

/// The DSP side: owns the chain and its halves of the rings.
struct DspSide {
    chain: Chain,
    input: Option<RingConsumer>,
    output: Option<RingProducer>,
    params: rtrb::Consumer<(ParamAddress, f64)>,
    /// Planar work block, `width × block`.
    work: Vec<f32>,
    width: usize,
    block: usize,
    channels_in: usize,
    channels_out: usize,
    shared: Arc<Shared>,
}

impl DspSide {
    /// Applies every staged parameter change.
    fn apply_params(&mut self) {
        while let Ok((addr, value)) = self.params.pop() {
            self.chain.set_param_at(addr, value);
        }
    }

    /// Clears the chain's state and the input ring.
    fn reset(&mut self) {
        self.chain.reset();
        if let Some(rx) = self.input.as_mut() {
            rx.clear();
        }
    }

    /// Processes every chunk that is ready; returns how many. Never allocates.
    fn drain(&mut self) -> usize {
        if self.shared.reset_dsp.swap(false, Ordering::AcqRel) {
            self.reset();
        }
        if self.input.is_none() && self.output.is_none() {
            return 0;
        }
        let b = self.block;
        let mut done = 0;
        loop {
            let input_ready = match &self.input {
                Some(rx) => rx.available_read() >= b,
                None => self.channels_in == 0,
            };
            let output_room = match &self.output {
                Some(tx) => tx.available_write() >= b,
                None => self.channels_out == 0,
            };
            if !(input_ready && output_room) {
                break;
            }
            self.apply_params();
            let start = Instant::now();
            let w = self.width;
            let mut chans: [&mut [f32]; MAX_STREAM_CHANNELS] = Default::default();
            for (slot, chunk) in chans.iter_mut().zip(self.work.chunks_exact_mut(b)) {
                *slot = chunk;
            }
            match self.input.as_mut() {
                Some(rx) => {
                    rx.read_frames(&mut chans[..self.channels_in], 0, b);
                    spread(&mut chans[..w], self.channels_in);
                }
                None => chans[..w].iter_mut().for_each(|c| c.fill(0.0)),
            }
            self.chain.process(&mut chans[..w]);
            if let Some(tx) = self.output.as_mut() {
                let cout = self.channels_out;
                if cout == 1 && w > 1 {
                    let (first, rest) = chans[..w].split_at_mut(1);
                    let scale = 1.0 / w as f32;
                    for (f, x) in first[0].iter_mut().enumerate() {
                        let sum: f32 = rest.iter().map(|c| c[f]).sum::<f32>() + *x;
                        *x = sum * scale;
                    }
                }
                let mut outs: [&[f32]; MAX_STREAM_CHANNELS] = [&[]; MAX_STREAM_CHANNELS];
                for (slot, c) in outs.iter_mut().zip(chans.iter()) {
                    *slot = c;
                }
                tx.write_frames(&outs[..cout], 0, b);
            }
            self.shared
                .chunk_log
                .record(start.elapsed().as_nanos() as u64);
            Counters::bump(&self.shared.counters.chunks);
            done += 1;
        }
        if let Some(rx) = &self.input {
            self.shared
                .input_fill
                .store(rx.available_read(), Ordering::Relaxed);
        }
        if let Some(tx) = &self.output {
            self.shared
                .output_fill
                .store(tx.available_read(), Ordering::Relaxed);
        }
        done
    }
}

impl WorkerTask for DspSide {
    fn run_ready(&mut self) {
        self.drain();
    }

    fn started(&mut self, realtime: bool) {
        self.shared
            .worker_realtime
            .store(realtime, Ordering::Release);
    }
}

/// Fills channels `filled..` of `chans` from the first `filled` ones, cyclically (mono input
/// is broadcast).
fn spread(chans: &mut [&mut [f32]], filled: usize) {
    if filled == 0 || filled >= chans.len() {
        return;
    }
    let (src, dst) = chans.split_at_mut(filled);
    for (k, d) in dst.iter_mut().enumerate() {
        d.copy_from_slice(src[k % filled]);
    }
}

/// The audio-thread side: the callback's halves of the rings.
struct CallbackSide {
    input: Option<RingProducer>,
    output: Option<RingConsumer>,
    shared: Arc<Shared>,
    worker: Option<Thread>,
    reset_seen: u64,
}

impl CallbackSide {
    /// The audio callback. Never allocates, locks, logs or blocks.
    fn run(&mut self, input: &[&[f32]], output: &mut [&mut [f32]], status: BackendStatus) {
        let start = Instant::now();
        let counters = &self.shared.counters;
        if status.has_xrun() {
            Counters::bump(&counters.backend_xruns);
        }
        if let Some(tx) = self.input.as_mut() {
            let n = input.first().map_or(0, |c| c.len());
            if n > 0 && tx.write_frames(input, 0, n) < n {
                Counters::bump(&counters.input_overflows);
            }
        }
        if let Some(rx) = self.output.as_mut() {
            let generation = self.shared.reset_output.load(Ordering::Acquire);
            if generation != self.reset_seen {
                rx.clear();
                self.reset_seen = generation;
            }
            let n = output.first().map_or(0, |c| c.len());
            let got = rx.read_frames(output, 0, n);
            if got < n {
                for c in output.iter_mut() {
                    c[got..].fill(0.0);
                }
                Counters::bump(&counters.output_underflows);
            }
        }
        Counters::bump(&counters.callbacks);
        if let Some(worker) = &self.worker {
            worker.unpark();
        }
        self.shared
            .callback_log
            .record(start.elapsed().as_nanos() as u64);
    }
}

/// A snapshot of a processor's statistics (what `rtfx live --stats-json` writes).
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct ProcessorStats {
    /// Callback run times (torchfx `latency_stats_ms`).
    pub callback_ms: LatencyStats,
    /// DSP time per chunk.
    pub chunk_ms: LatencyStats,
    /// Callbacks run.
    pub callback_count: u64,
    /// Chunks processed.
    pub chunk_count: u64,
    /// Sum of the three xrun counters below.
    pub xrun_count: u64,
    /// Callbacks whose input did not fit in the input ring.
    pub input_overflow_count: u64,
    /// Callbacks that played (partly) silence because the output ring ran dry.
    pub output_underflow_count: u64,
    /// Callbacks whose backend reported an xrun.
    pub backend_xrun_count: u64,
    /// Frames in the input ring after the last chunk.
    pub input_ring_frames: usize,
    /// Frames in the output ring after the last chunk.
    pub output_ring_frames: usize,
    /// Frames per buffer.
    pub buffer_size: usize,
    /// Sample rate in Hz.
    pub sample_rate: u32,
    /// One buffer in milliseconds.
    pub deadline_ms: f64,
    /// Algorithmic latency in milliseconds.
    pub latency_ms: f64,
}

impl ProcessorStats {
    /// The statistics as a flat JSON object: the `latency_stats_ms` keys (callback times), the
    /// same keys prefixed `dsp_` (DSP time per chunk), every counter, ring fill, buffer size,
    /// sample rate, deadline and latency.
    pub fn to_json(&self) -> String {
        let mut parts: Vec<String> = Vec::new();
        for (k, v) in self.callback_ms.entries() {
            parts.push(format!("\"{k}\": {}", json_number(v)));
        }
        for (k, v) in self.chunk_ms.entries() {
            parts.push(format!("\"dsp_{k}\": {}", json_number(v)));
        }
        for (k, v) in [
            ("callback_count", self.callback_count),
            ("chunk_count", self.chunk_count),
            ("xrun_count", self.xrun_count),
            ("input_overflow_count", self.input_overflow_count),
            ("output_underflow_count", self.output_underflow_count),
            ("backend_xrun_count", self.backend_xrun_count),
            ("input_ring_frames", self.input_ring_frames as u64),
            ("output_ring_frames", self.output_ring_frames as u64),
            ("buffer_size", self.buffer_size as u64),
            ("sample_rate", u64::from(self.sample_rate)),
        ] {
            parts.push(format!("\"{k}\": {v}"));
        }
        parts.push(format!(
            "\"deadline_ms\": {}",
            json_number(self.deadline_ms)
        ));
        parts.push(format!("\"latency_ms\": {}", json_number(self.latency_ms)));
        format!("{{\n  {}\n}}\n", parts.join(",\n  "))
    }
}

/// A finite number as JSON (non-finite numbers become null).
fn json_number(x: f64) -> String {
    if x.is_finite() {
        format!("{x}")
    } else {
        "null".into()
    }
}

/// Runs a chain on an audio backend in real time (torchfx `RealtimeProcessor`); see the
/// [module docs](self).
///
/// ```
/// use rtfx::dsp::spec::parse_chain;
/// use rtfx::realtime::{BackendStatus, ProcessorOptions, RealtimeProcessor, StreamConfig, TestBackend};
///
/// let (backend, driver) = TestBackend::new();
/// let config = StreamConfig::new(48000, 64).with_channels(1, 1);
/// let options = ProcessorOptions { start_worker: false, ..Default::default() };
/// let mut p = RealtimeProcessor::new(parse_chain(&["gain:2"]).unwrap(), Box::new(backend), config, options).unwrap();
/// p.start().unwrap();
/// let mut out = [0.0f32; 64];
/// driver.run(&[&[0.25; 64]], &mut [&mut out], BackendStatus::default());
/// assert_eq!(out, [0.0; 64]); // the primed block of silence
/// assert_eq!(p.process_pending().unwrap(), 1);
/// driver.run(&[&[0.25; 64]], &mut [&mut out], BackendStatus::default());
/// assert_eq!(out, [0.5; 64]); // the first block, doubled
/// p.stop().unwrap();
/// assert_eq!(p.callback_count(), 2);
/// ```
pub struct RealtimeProcessor {
    config: StreamConfig,
    options: ProcessorOptions,
    backend: Box<dyn AudioBackend>,
    /// A copy of the chain on the control side: resolves and validates parameter paths and
    /// holds the values set.
    control: Chain,
    dsp: Option<DspSide>,
    worker: Option<WorkerThread<DspSide>>,
    params: rtrb::Producer<(ParamAddress, f64)>,
    shared: Arc<Shared>,
    running: bool,
    width: usize,
}

/// Most buffers a ring holds: latency beyond this many buffers helps nothing, and the bound
/// keeps what the rings allocate in check.
pub const MAX_RING_BLOCKS: usize = 64;

impl ProcessorOptions {
    /// Checks the options: `ring_blocks` in 2..=[`MAX_RING_BLOCKS`], non-zero log and queue
    /// sizes, and with `prime_output` a `prime_blocks` that leaves room in the output ring.
    ///
    /// # Errors
    /// The first option out of range, named, with its value and the range.
    pub fn validate(&self) -> Result<()> {
        if !(2..=MAX_RING_BLOCKS).contains(&self.ring_blocks) {
            return Err(Error::invalid_range(
                format!(
                    "ring_blocks must be at least 2 (one block for the producer, one for the \
                     consumer) and at most {MAX_RING_BLOCKS}"
                ),
                "ring_blocks",
                self.ring_blocks,
            )
            .with_expected(format!("2 to {MAX_RING_BLOCKS}"))
            .with_suggestion("use the default, 4"));
        }
        for (name, value) in [
            ("latency_log_size", self.latency_log_size),
            ("param_queue_size", self.param_queue_size),
        ] {
            if value == 0 {
                return Err(
                    Error::invalid_range(format!("{name} must be positive"), name, value)
                        .with_expected("at least 1"),
                );
            }
        }
        if self.prime_output && !(1..self.ring_blocks).contains(&self.prime_blocks) {
            return Err(Error::invalid_range(
                "prime_blocks must leave room in the output ring",
                "prime_blocks",
                self.prime_blocks,
            )
            .with_expected(format!("1..={}", self.ring_blocks - 1))
            .with_suggestion("raise ring_blocks, or prime fewer blocks"));
        }
        Ok(())
    }
}

impl RealtimeProcessor {
    /// A processor running `chain` on `backend` with `config`.
    ///
    /// Validates the configuration (sample rate 1..=768000 Hz, buffer size > 0, at least one
    /// channel) and the options ([`ProcessorOptions::validate`]), and
    /// prepares the chain for the stream's rate, buffer size and channel count; an effect that
    /// cannot run at this rate fails here, named by index and name.
    pub fn new(
        mut chain: Chain,
        backend: Box<dyn AudioBackend>,
        config: StreamConfig,
        options: ProcessorOptions,
    ) -> Result<Self> {
        config.validate()?;
        options.validate()?;
        let width = config.channels_in.max(config.channels_out).max(1);
        let rate = f64::from(config.sample_rate);
        let mut control = chain.clone();
        chain.prepare(rate, config.buffer_size, width)?;
        control.set_smoothing_ms(0.0)?;
        control.prepare(rate, 1, 1)?;
        let shared = Arc::new(Shared {
            counters: Counters::default(),
            callback_log: LatencyLog::new(options.latency_log_size),
            chunk_log: LatencyLog::new(options.latency_log_size),
            reset_dsp: AtomicBool::new(false),
            reset_output: AtomicU64::new(0),
            input_fill: AtomicUsize::new(0),
            output_fill: AtomicUsize::new(0),
            worker_realtime: AtomicBool::new(false),
        });
        let (params_tx, params_rx) = rtrb::RingBuffer::new(options.param_queue_size);
        let dsp = DspSide {
            chain,
            input: None,
            output: None,
            params: params_rx,
            work: vec![0.0; width * config.buffer_size],
            width,
            block: config.buffer_size,
            channels_in: config.channels_in,
            channels_out: config.channels_out,
            shared: shared.clone(),
        };
        Ok(Self {
            config,
            options,
            backend,
            control,
            dsp: Some(dsp),
            worker: None,
            params: params_tx,
            shared,
            running: false,
            width,
        })
    }

    /// A processor with the default options.
    pub fn with_defaults(
        chain: Chain,
        backend: Box<dyn AudioBackend>,
        config: StreamConfig,
    ) -> Result<Self> {
        Self::new(chain, backend, config, ProcessorOptions::default())
    }

    /// Starts: creates the rings, primes the output, starts the worker (if enabled), then
    /// opens and starts the backend's stream. If the backend fails, the worker is stopped and
    /// the backend's error is returned unchanged; the processor stays stopped.
    pub fn start(&mut self) -> Result<()> {
        if self.running {
            return Err(Error::realtime("Processor is already running")
                .with_suggestion("Call stop() before starting again"));
        }
        if self.dsp.is_none() {
            return Err(
                Error::realtime("The chain was lost when the DSP worker thread panicked")
                    .with_suggestion("create a new RealtimeProcessor"),
            );
        }
        self.shared.reset_dsp.store(false, Ordering::Release);
        let b = self.config.buffer_size;
        let frames = self.options.ring_blocks.saturating_mul(b);
        let (cin, cout) = (self.config.channels_in, self.config.channels_out);
        let (in_tx, in_rx) = if cin > 0 {
            let (t, r) = ring_buffer(frames, cin)?;
            (Some(t), Some(r))
        } else {
            (None, None)
        };
        let (mut out_tx, out_rx) = if cout > 0 {
            let (t, r) = ring_buffer(frames, cout)?;
            (Some(t), Some(r))
        } else {
            (None, None)
        };
        if let Some(tx) = out_tx.as_mut() {
            tx.write_silence(b * self.primed_blocks());
        }
        let Some(mut dsp) = self.dsp.take() else {
            return Err(Error::realtime("The chain is missing"));
        };
        dsp.input = in_rx;
        dsp.output = out_tx;
        let mut side = CallbackSide {
            input: in_tx,
            output: out_rx,
            shared: self.shared.clone(),
            worker: None,
            reset_seen: self.shared.reset_output.load(Ordering::Acquire),
        };
        if self.options.start_worker {
            self.shared.worker_realtime.store(false, Ordering::Release);
            let worker = WorkerThread::spawn("realtime-dsp", self.options.worker_priority, dsp)?;
            side.worker = Some(worker.waker().clone());
            self.worker = Some(worker);
        } else {
            self.dsp = Some(dsp);
        }
        let callback: AudioCallback = Box::new(move |input, output, status| {
            side.run(input, output, status);
        });
        let opened = self
            .backend
            .open_stream(&self.config, Some(callback))
            .and_then(|()| self.backend.start());
        if let Err(e) = opened {
            self.backend.close();
            let _ = self.join_worker();
            if let Some(dsp) = self.dsp.as_mut() {
                dsp.input = None;
                dsp.output = None;
            }
            return Err(e);
        }
        self.running = true;
        Ok(())
    }

    /// Signals the worker, waits for it and takes the DSP side back.
    fn join_worker(&mut self) -> Result<()> {
        let Some(worker) = self.worker.take() else {
            return Ok(());
        };
        self.dsp = Some(worker.join()?);
        Ok(())
    }

    /// Stops: stops and closes the backend's stream, stops the worker, and returns the first
    /// error (the backend's, then the worker's). Fails when not running.
    pub fn stop(&mut self) -> Result<()> {
        if !self.running {
            return Err(
                Error::realtime("Processor is not running").with_suggestion("Call start() first")
            );
        }
        self.running = false;
        let stopped = self.backend.stop();
        self.backend.close();
        let joined = self.join_worker();
        if let Some(dsp) = self.dsp.as_mut() {
            dsp.input = None;
            dsp.output = None;
        }
        stopped.and(joined)
    }

    /// Processes every chunk that is ready (input ring holds a buffer and output ring has room
    /// for one) and returns how many; for processors built with `start_worker: false`.
    pub fn process_pending(&mut self) -> Result<usize> {
        match self.dsp.as_mut() {
            Some(dsp) => Ok(dsp.drain()),
            None => Err(Error::realtime(
                "process_pending() is not available while the DSP worker runs",
            )
            .with_suggestion(
                "construct the processor with start_worker: false to drive it yourself",
            )),
        }
    }

    /// Stages a parameter change, e.g. `set_parameter("0.cutoff", 2000.0)`. The path and value
    /// are checked at once (errors name the path and suggest a fix); the change is applied
    /// lock-free at the next chunk boundary and ramps without resetting filter state.
    pub fn set_parameter(&mut self, path: &str, value: f64) -> Result<()> {
        if self.params.is_full() {
            match self.dsp.as_mut() {
                Some(dsp) => dsp.apply_params(),
                None => {
                    return Err(Error::realtime(format!(
                        "Too many parameter changes are waiting ({} staged)",
                        self.options.param_queue_size
                    ))
                    .with_parameter_name(path)
                    .with_suggestion(
                        "changes are applied at each processed chunk: wait for audio to run, or raise param_queue_size",
                    ));
                }
            }
        }
        let addr = self.control.resolve(path)?;
        // Check a frequency at the stream's rate on a copy of the effect (a cutoff at or above
        // Nyquist is refused, as when the chain was built), then keep it. Other parameters do
        // not depend on the rate; the chain checks them below.
        if let Some(info) = self.control.param_info_at(addr)
            && info.unit == "Hz"
        {
            let value = info
                .validate(value)
                .map_err(|e| e.with_parameter_name(path))?;
            let mut probe = self.control.effects()[addr.effect].clone_box();
            let rate = f64::from(self.config.sample_rate);
            probe
                .set_param(info.name, value)
                .and_then(|()| probe.prepare(rate, 1, 1))
                .map_err(|e| e.with_parameter_name(path))?;
        }
        self.control.set_param(path, value)?;
        let value = self.control.get_param_at(addr);
        self.params
            .push((addr, value))
            .map_err(|_| Error::realtime("The parameter queue is full").with_parameter_name(path))
    }

    /// The value a parameter was last set to.
    pub fn get_parameter(&self, path: &str) -> Result<f64> {
        self.control.get_param(path)
    }

    /// Clears the rings and every effect's state. While running, the DSP side and the callback
    /// do it at their next turn.
    pub fn reset_state(&mut self) {
        self.shared.reset_output.fetch_add(1, Ordering::AcqRel);
        match self.dsp.as_mut() {
            Some(dsp) => dsp.reset(),
            None => {
                self.shared.reset_dsp.store(true, Ordering::Release);
                if let Some(worker) = &self.worker {
                    worker.waker().unpark();
                }
            }
        }
    }

    /// Clears the latency logs and zeroes every counter.
    pub fn reset_metrics(&self) {
        self.shared.counters.reset();
        self.shared.callback_log.clear();
        self.shared.chunk_log.clear();
    }

    /// The callback durations held in the log, oldest first, in nanoseconds.
    pub fn latency_log_ns(&self) -> Vec<u64> {
        self.shared.callback_log.to_vec()
    }

    /// Statistics of the callback durations in milliseconds (torchfx `latency_stats_ms`).
    pub fn latency_stats_ms(&self) -> LatencyStats {
        self.shared.callback_log.stats_ms()
    }

    /// Statistics of the DSP time per chunk in milliseconds.
    pub fn chunk_stats_ms(&self) -> LatencyStats {
        self.shared.chunk_log.stats_ms()
    }

    /// Everything at once.
    pub fn stats(&self) -> ProcessorStats {
        ProcessorStats {
            callback_ms: self.latency_stats_ms(),
            chunk_ms: self.chunk_stats_ms(),
            callback_count: self.callback_count(),
            chunk_count: self.chunk_count(),
            xrun_count: self.xrun_count(),
            input_overflow_count: self.input_overflow_count(),
            output_underflow_count: self.output_underflow_count(),
            backend_xrun_count: self.backend_xrun_count(),
            input_ring_frames: self.shared.input_fill.load(Ordering::Relaxed),
            output_ring_frames: self.shared.output_fill.load(Ordering::Relaxed),
            buffer_size: self.config.buffer_size,
            sample_rate: self.config.sample_rate,
            deadline_ms: self.deadline_ms(),
            latency_ms: self.latency_ms(),
        }
    }

    fn count(counter: &AtomicU64) -> u64 {
        counter.load(Ordering::Relaxed)
    }

    /// Callbacks run.
    pub fn callback_count(&self) -> u64 {
        Self::count(&self.shared.counters.callbacks)
    }

    /// Chunks processed.
    pub fn chunk_count(&self) -> u64 {
        Self::count(&self.shared.counters.chunks)
    }

    /// Backend xruns + input overflows + output underflows.
    pub fn xrun_count(&self) -> u64 {
        self.backend_xrun_count() + self.input_overflow_count() + self.output_underflow_count()
    }

    /// Callbacks whose input did not fit in the input ring (the excess was dropped).
    pub fn input_overflow_count(&self) -> u64 {
        Self::count(&self.shared.counters.input_overflows)
    }

    /// Callbacks that found less than a buffer in the output ring (silence was played).
    pub fn output_underflow_count(&self) -> u64 {
        Self::count(&self.shared.counters.output_underflows)
    }

    /// Callbacks whose backend status reported an xrun.
    pub fn backend_xrun_count(&self) -> u64 {
        Self::count(&self.shared.counters.backend_xruns)
    }

    /// Buffers of silence primed at start: `prime_blocks` with `prime_output`, else 0.
    fn primed_blocks(&self) -> usize {
        if self.options.prime_output {
            self.options.prime_blocks
        } else {
            0
        }
    }

    /// Algorithmic latency: (1 + primed buffers) × buffer_size / sample_rate × 1000, so
    /// 2 buffers by default (torchfx's formula).
    pub fn latency_ms(&self) -> f64 {
        (1 + self.primed_blocks()) as f64 * self.deadline_ms()
    }

    /// Time budget of one callback: buffer_size / sample_rate × 1000.
    pub fn deadline_ms(&self) -> f64 {
        self.config.latency_ms()
    }

    /// True when the worker thread got the real-time priority it asked for (see
    /// [`ProcessorOptions::worker_priority`]).
    pub fn worker_is_realtime(&self) -> bool {
        self.shared.worker_realtime.load(Ordering::Acquire)
    }

    /// True between a successful `start` and `stop`.
    pub fn is_running(&self) -> bool {
        self.running
    }

    /// The stream configuration.
    pub fn config(&self) -> &StreamConfig {
        &self.config
    }

    /// The construction options.
    pub fn options(&self) -> &ProcessorOptions {
        &self.options
    }

    /// The channel count the chain runs at: `max(channels_in, channels_out, 1)`.
    pub fn chain_channels(&self) -> usize {
        self.width
    }

    /// The chain as configured from the control side (its parameter values are the ones set;
    /// its processing state lives with the DSP side).
    pub fn chain(&self) -> &Chain {
        &self.control
    }

    /// The backend.
    pub fn backend(&self) -> &dyn AudioBackend {
        self.backend.as_ref()
    }
}

impl Drop for RealtimeProcessor {
    fn drop(&mut self) {
        if self.running {
            let _ = self.stop();
        }
    }
}

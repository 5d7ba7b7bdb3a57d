//! The plugin's offload mode: `process()` only moves samples through two lock-free rings
//! ([`crate::realtime::ring`], the real-time processor's); a worker thread
//! ([`crate::realtime::worker`], the one the processor runs on) runs the plugin's own
//! [`Strip`] on them in fixed chunks of [`OFFLOAD_CHUNK`] frames.
//!
//! Timing: the audio thread writes a host block into the input ring, wakes the worker and
//! reads as many frames from the output ring. After every (re)start the first
//! [`Offload::latency`] output frames are silence (the priming), so the output is the strip's
//! output delayed by a fixed `max_block + OFFLOAD_CHUNK` frames: the worker has one host block
//! period to process what the previous blocks brought. When it is late, the missing frames are
//! silence, the block is counted as an underflow ([`super::Meters::underflows`]) and the
//! stream re-synchronises (the queued input is dropped, the priming starts again), so the
//! latency reported to the host stays true.
//!
//! Parameters reach the worker through the plugin's atomic parameters, read once per chunk:
//! in offload mode automation is applied at chunk granularity, not sample-accurately.
//!
//! In an offline render (nice-plug's [`ProcessMode::Offline`]) the audio thread waits for the
//! worker instead of emitting silence, so offline bounces are exact.
//!
//! GPU mode runs on this same worker, with the strip's filters on the GPU when there is one:
//! see [`gpu_status`]. The filters' GPU engine is built the first time GPU mode is asked for,
//! on a thread of normal priority (`EngineBuild`); until it is ready the filters run on the
//! CPU, so neither activation nor the worker waits for a kernel compile.

use std::sync::atomic::{AtomicBool, AtomicU8, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::thread::{JoinHandle, Thread};
use std::time::{Duration, Instant};

use nice_plug::prelude::ProcessMode;

use super::Meters;
use super::params::{ProcessingMode, RtfxParams};
use super::strip::{PreparedFilterEngine, Strip};
use crate::dsp::filter::engine::EngineFactory;
use crate::dsp::with_planar_mut;
use crate::error::{Error, Result};
use crate::realtime::config::MAX_STREAM_CHANNELS;
use crate::realtime::ring::{RingConsumer, RingProducer, ring_buffer};
use crate::realtime::worker::{WorkerTask, WorkerThread};

/// Frames the worker processes at a time.
pub const OFFLOAD_CHUNK: usize = 64;

/// The longest host block offload accepts (about 22 s at 48 kHz): its rings hold four times
/// the host's largest block, and the latency grows by one.
pub const MAX_OFFLOAD_BLOCK: usize = 1 << 20;

/// Real-time (SCHED_FIFO) priority asked for the worker thread: below JACK's and the host's
/// own audio threads (which are around 70–95), above everything else, since a late worker is
/// an audible gap.
const WORKER_PRIORITY: i32 = 60;

/// How long an offline render waits for the worker before giving up on a block (counted as
/// an underflow).
const OFFLINE_WAIT: Duration = Duration::from_secs(2);

/// No flush pending.
const RUNNING: u8 = 0;
/// Drop the queued input, keep the strip's state (re-synchronisation after an underflow).
const FLUSH: u8 = 1;
/// Drop the queued input and reset the strip to the current parameters (start, reset, mode
/// switch).
const FLUSH_RESET: u8 = 2;

/// The GPU mode's status for this process, computed once (it may initialise the CUDA
/// driver): `Ok(device name)` when a CUDA device exists, else `Err(reason)`.
///
/// With a device, the worker's strip runs its high-pass, low-pass and EQ as one cascade on the
/// CUDA graph runner (see [`Strip::attach_filter_engine`]) and everything else on the CPU
/// worker; without one, GPU mode is offload mode.
pub fn gpu_status() -> &'static Result<String> {
    static STATUS: OnceLock<Result<String>> = OnceLock::new();
    STATUS.get_or_init(crate::gpu::cuda_available)
}

/// The first attempt of this process to build the filters' GPU engine: where it runs, or why
/// it could not be built (e.g. no NVRTC).
static GPU_FILTERS: OnceLock<Result<String>> = OnceLock::new();

/// The line the editor shows for GPU mode; `filters_on_gpu` is whether the filters ran on the
/// GPU in the worker's last chunk ([`super::Meters::gpu_filters`]).
pub fn gpu_status_line(filters_on_gpu: bool) -> String {
    match (gpu_status(), GPU_FILTERS.get()) {
        (Err(reason), _) => format!("GPU unavailable: {reason} — CPU worker"),
        (Ok(device), Some(Err(reason))) => {
            format!("GPU {device} found, but its engine failed: {reason} — CPU worker")
        }
        (Ok(_), Some(Ok(engine))) if filters_on_gpu => {
            format!("filters on {engine}, the rest on the CPU worker")
        }
        (Ok(device), None) => format!(
            "GPU {device}: building the filters' engine; the CPU worker runs them meanwhile"
        ),
        (Ok(device), Some(Ok(_))) => format!(
            "GPU {device}: filters on the CPU worker while a filter switches or changes order"
        ),
    }
}

/// What the two threads share.
struct Shared {
    flush: AtomicU8,
    /// Reset the strip to the current parameters before the next chunk (a restart while no
    /// audio is queued: no handshake needed).
    reset_strip: AtomicBool,
    /// The worker strip's tail after its last chunk ([`Strip::tail_samples`]).
    tail: AtomicUsize,
    stalled: AtomicBool,
}

/// GPU mode's filter engine, built once on a thread of its own when the worker first runs
/// in GPU mode: compiling the kernel and capturing a graph take a while (and GPU memory), so
/// an activation that never uses GPU mode never pays for them, and the worker never waits.
struct EngineBuild {
    /// The worker wants the engine (GPU mode was selected).
    requested: AtomicBool,
    /// The plugin deactivates: the builder leaves without building.
    stop: AtomicBool,
    /// The builder's result, for the worker to take (it only ever `try_lock`s).
    result: Mutex<Option<Result<PreparedFilterEngine>>>,
}

impl EngineBuild {
    /// The builder thread: waits until the engine is requested (or the offload stops), builds
    /// it for `channels` with `factory`, and leaves it in `result`.
    fn run(&self, channels: usize, factory: EngineFactory) {
        while !self.requested.load(Ordering::Acquire) {
            if self.stop.load(Ordering::Acquire) {
                return;
            }
            std::thread::park();
        }
        let built = Strip::build_filter_engine(channels, factory);
        let _ = GPU_FILTERS.set(
            built
                .as_ref()
                .map(|e| e.description().to_string())
                .map_err(Clone::clone),
        );
        *self.result.lock().unwrap_or_else(|e| e.into_inner()) = Some(built);
    }
}

/// The audio-thread side of the offload worker; owns the thread (stopped and joined on
/// drop).
pub struct Offload {
    shared: Arc<Shared>,
    to_worker: RingProducer,
    from_worker: RingConsumer,
    /// `None` only while dropping (the worker stops before the engine builder).
    worker: Option<WorkerThread<Worker>>,
    waker: Thread,
    /// GPU mode's engine builder, where there is a device (stopped and joined on drop).
    engine_builder: Option<(Arc<EngineBuild>, JoinHandle<()>)>,
    latency: usize,
    /// Output frames of silence still to emit before reading the output ring.
    priming: usize,
    /// A flush is pending: emit silence, write nothing, until the worker confirms it.
    syncing: bool,
    /// Audio was written since the stream (re)started.
    dirty: bool,
    offline: bool,
}

/// The worker thread's state.
struct Worker {
    shared: Arc<Shared>,
    params: Arc<RtfxParams>,
    meters: Arc<Meters>,
    strip: Strip,
    input: RingConsumer,
    output: RingProducer,
    scratch: Vec<Vec<f32>>,
    /// GPU mode's engine, while it is still to be requested or installed, with the builder
    /// thread to wake.
    engine_build: Option<(Arc<EngineBuild>, Thread)>,
}

impl Offload {
    /// Prepares a strip for `sample_rate` and `channels` and starts the worker thread.
    /// `max_block` is the host's largest block; the latency is `max_block + OFFLOAD_CHUNK`.
    /// `gpu_engine` builds GPU mode's filter engine (the CUDA graph runner where
    /// [`gpu_status`] found a device; `None` keeps GPU mode on the CPU): it is built the first
    /// time GPU mode runs, on a thread of its own. Allocates: call from `activate`, never from
    /// `process`.
    pub fn start(
        params: Arc<RtfxParams>,
        meters: Arc<Meters>,
        sample_rate: f64,
        max_block: usize,
        channels: usize,
        mode: ProcessMode,
        gpu_engine: Option<EngineFactory>,
    ) -> Result<Self> {
        if max_block > MAX_OFFLOAD_BLOCK {
            return Err(Error::invalid_range(
                format!("The host's largest block ({max_block} frames) is too long to offload"),
                "max_block",
                max_block,
            )
            .with_expected(format!("at most {MAX_OFFLOAD_BLOCK} frames"))
            .with_suggestion("use Inline mode, or a smaller buffer size in the host"));
        }
        let latency = max_block.max(1) + OFFLOAD_CHUNK;
        let channels = channels.max(1);
        let capacity = (4 * latency).next_power_of_two();
        let (to_worker, input) = ring_buffer(capacity, channels)?;
        let (output, from_worker) = ring_buffer(capacity, channels)?;
        let mut strip = Strip::default();
        let settings = params.settings(meters.tempo());
        strip.prepare(sample_rate, OFFLOAD_CHUNK, channels, &settings)?;
        let engine_builder = match gpu_engine {
            Some(factory) => {
                let build = Arc::new(EngineBuild {
                    requested: AtomicBool::new(false),
                    stop: AtomicBool::new(false),
                    result: Mutex::new(None),
                });
                let builder = build.clone();
                let thread = std::thread::Builder::new()
                    .name("rtfx-gpu-build".into())
                    .spawn(move || builder.run(channels, factory))
                    .map_err(|e| {
                        Error::backend_not_available("offload worker").with_message(format!(
                            "cannot start the GPU engine's build thread: {e}"
                        ))
                    })?;
                Some((build, thread))
            }
            None => None,
        };
        let shared = Arc::new(Shared {
            flush: AtomicU8::new(RUNNING),
            reset_strip: AtomicBool::new(false),
            tail: AtomicUsize::new(0),
            stalled: AtomicBool::new(false),
        });
        let worker = Worker {
            shared: shared.clone(),
            params,
            meters,
            strip,
            input,
            output,
            scratch: vec![vec![0.0; OFFLOAD_CHUNK]; channels],
            engine_build: engine_builder
                .as_ref()
                .map(|(build, thread)| (build.clone(), thread.thread().clone())),
        };
        let worker = WorkerThread::spawn("offload", Some(WORKER_PRIORITY), worker)?;
        let waker = worker.waker().clone();
        Ok(Self {
            shared,
            to_worker,
            from_worker,
            worker: Some(worker),
            waker,
            engine_builder,
            latency,
            // The strip is fresh: the stream starts with the priming, no flush needed.
            priming: latency,
            syncing: false,
            dirty: false,
            offline: mode == ProcessMode::Offline,
        })
    }

    /// The latency offloading adds, in frames (`max_block + OFFLOAD_CHUNK`).
    pub fn latency(&self) -> usize {
        self.latency
    }

    /// Frames after the input stops until the output has decayed: the worker strip's tail
    /// (as of its last chunk) plus the offload latency.
    pub fn tail_samples(&self) -> usize {
        self.shared
            .tail
            .load(Ordering::Relaxed)
            .saturating_add(self.latency)
    }

    /// Restarts the stream: the worker drops queued input and resets its strip to the current
    /// parameters; the output restarts with the priming. Lock-free; safe on the audio thread.
    pub fn restart(&mut self) {
        if !self.dirty && !self.syncing {
            // Nothing queued (e.g. the host's reset right after activation): the worker resets
            // its strip before the first chunk it gets, and the priming is still to come.
            self.shared.reset_strip.store(true, Ordering::Release);
        } else {
            self.shared.flush.store(FLUSH_RESET, Ordering::Release);
            self.syncing = true;
        }
        self.waker.unpark();
    }

    /// For tests and diagnostics: while stalled the worker processes nothing (as if it had
    /// no CPU time), so the audio thread underflows. Takes effect within one chunk.
    pub fn set_stalled(&self, stalled: bool) {
        self.shared.stalled.store(stalled, Ordering::Release);
        self.waker.unpark();
    }

    /// Moves one host block through the worker: `block` (planar, in place) goes to the input
    /// ring and is replaced by the worker's output `latency` frames earlier. Returns whether
    /// frames were missing (an underflow: the worker was late, or has not yet confirmed a
    /// restart). Never allocates, locks or logs; blocks only in an
    /// offline render.
    pub fn process(&mut self, block: &mut [&mut [f32]]) -> bool {
        let frames = block.iter().map(|c| c.len()).min().unwrap_or(0);
        if frames == 0 {
            return false;
        }
        if self.syncing && !self.wait_for_sync() {
            // The worker has not confirmed the restart yet: a dropout like any other.
            block.iter_mut().for_each(|c| c.fill(0.0));
            return true;
        }
        let written = write_planar(&mut self.to_worker, block, frames);
        self.dirty = true;
        self.waker.unpark();
        let primed = self.priming.min(frames);
        self.priming -= primed;
        for c in block.iter_mut() {
            c[..primed].fill(0.0);
        }
        let wanted = frames - primed;
        if self.offline && wanted > 0 {
            let deadline = Instant::now() + OFFLINE_WAIT;
            while self.from_worker.available_read() < wanted && Instant::now() < deadline {
                std::thread::yield_now();
            }
        }
        let read = self.from_worker.read_frames(block, primed, wanted);
        let underflow = read < wanted || written < frames;
        if underflow {
            for c in block.iter_mut() {
                c[primed + read..].fill(0.0);
            }
            // Re-synchronise so that the latency stays what the host was told.
            self.shared.flush.store(FLUSH, Ordering::Release);
            self.syncing = true;
            self.waker.unpark();
        }
        underflow
    }

    /// Checks (offline: waits for) the worker's confirmation of a pending flush; once it has
    /// come, drops the stale output and starts the priming.
    fn wait_for_sync(&mut self) -> bool {
        if self.offline {
            let deadline = Instant::now() + OFFLINE_WAIT;
            while self.shared.flush.load(Ordering::Acquire) != RUNNING && Instant::now() < deadline
            {
                std::thread::yield_now();
            }
        }
        if self.shared.flush.load(Ordering::Acquire) != RUNNING {
            return false;
        }
        let stale = self.from_worker.available_read();
        self.from_worker.discard(stale);
        self.priming = self.latency;
        self.syncing = false;
        self.dirty = false;
        true
    }
}

/// Writes the first `frames` frames of a mutable planar block (no allocation).
fn write_planar(ring: &mut RingProducer, block: &[&mut [f32]], frames: usize) -> usize {
    let mut views: [&[f32]; MAX_STREAM_CHANNELS] = [&[]; MAX_STREAM_CHANNELS];
    let n = block.len().min(MAX_STREAM_CHANNELS);
    for (view, channel) in views.iter_mut().zip(block.iter()) {
        *view = channel;
    }
    ring.write_frames(&views[..n], 0, frames)
}

impl Drop for Offload {
    fn drop(&mut self) {
        // Stops and joins the worker.
        drop(self.worker.take());
        if let Some((build, thread)) = self.engine_builder.take() {
            // Waits out a build in progress (a kernel compile): deactivation, not the audio
            // thread.
            build.stop.store(true, Ordering::Release);
            thread.thread().unpark();
            let _ = thread.join();
        }
    }
}

impl WorkerTask for Worker {
    fn started(&mut self, realtime: bool) {
        self.meters.set_worker_realtime(realtime);
    }

    /// Carries out a pending flush, then processes chunks while a whole one is queued and
    /// there is room for its output. Woken by every host block, a flush, a stall change and
    /// the stop.
    fn run_ready(&mut self) {
        loop {
            let flush = self.shared.flush.load(Ordering::Acquire);
            if flush != RUNNING {
                let queued = self.input.available_read();
                self.input.discard(queued);
                if flush == FLUSH_RESET {
                    self.shared.reset_strip.store(false, Ordering::Relaxed);
                    self.reset_strip();
                }
                self.shared.flush.store(RUNNING, Ordering::Release);
                continue;
            }
            if self.shared.stalled.load(Ordering::Acquire)
                || self.input.available_read() < OFFLOAD_CHUNK
                || self.output.available_write() < OFFLOAD_CHUNK
            {
                return;
            }
            self.chunk();
        }
    }
}

impl Worker {
    /// Clears the strip's state and jumps it to the current parameters (as the plugin's
    /// `reset` and first block after it do inline).
    fn reset_strip(&mut self) {
        let settings = self.params.settings(self.meters.tempo());
        self.strip.set_settings(&settings);
        self.strip.reset();
        self.strip.jump_to(&settings);
    }

    /// In GPU mode: asks the builder for the filter engine the first time, and installs it
    /// once built. Never blocks (the result is only `try_lock`ed) and never allocates (the
    /// engine is moved in); a failed build leaves the filters on the CPU.
    fn take_gpu_engine(&mut self) {
        let Some((build, builder)) = &self.engine_build else {
            return;
        };
        if !build.requested.swap(true, Ordering::AcqRel) {
            builder.unpark();
            return;
        }
        let built = match build.result.try_lock() {
            Ok(mut result) => result.take(),
            Err(_) => None,
        };
        if let Some(built) = built {
            if let Ok(engine) = built {
                let _ = self.strip.install_filter_engine(engine);
            }
            // Done with the builder (its own reference is dropped as it leaves).
            self.engine_build = None;
        }
    }

    /// Processes one chunk from the input ring to the output ring.
    fn chunk(&mut self) {
        // The audio thread requests the reset before it writes audio: seeing the audio (above)
        // means seeing the request.
        if self.shared.reset_strip.swap(false, Ordering::AcqRel) {
            self.reset_strip();
        }
        let gpu = self.params.mode.value() == ProcessingMode::Gpu;
        if gpu {
            self.take_gpu_engine();
        }
        let settings = self.params.settings(self.meters.tempo());
        let (input, output, strip) = (&mut self.input, &mut self.output, &mut self.strip);
        with_planar_mut(&mut self.scratch, 0..OFFLOAD_CHUNK, |block| {
            input.read_frames(block, 0, OFFLOAD_CHUNK);
            strip.set_settings(&settings);
            strip.set_filter_engine_active(gpu);
            strip.process(block);
            write_planar(output, block, OFFLOAD_CHUNK);
        });
        self.meters
            .set_gpu_filters(self.strip.take_engine_steps() > 0);
        self.meters.record_levels(self.strip.levels());
        self.shared
            .tail
            .store(self.strip.tail_samples(), Ordering::Relaxed);
    }
}

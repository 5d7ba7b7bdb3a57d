//! The audio backend abstraction (torchfx `AudioBackend`), its state machine, the fixed-block
//! adapter every backend uses, blocking I/O over rings, and a deterministic [`TestBackend`]
//! that tests drive callback by callback.
//!
//! State machine (torchfx `SoundDeviceBackend`, §1.4 of the spec):
//!
//! | call | allowed from | result / error |
//! |---|---|---|
//! | `open_stream` | closed, stopped | → open; else "Cannot open stream: stream is already open or running"; failure → error state + "Failed to open audio stream: …" |
//! | `start` | open, stopped | → running; else "Cannot start stream: stream is not open" |
//! | `stop` | running | → stopped; else "Cannot stop stream: stream is not running" |
//! | `close` | any | stops if running, releases the stream, never fails → closed |

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use super::config::{
    BackendStatus, DeviceSelector, MAX_STREAM_CHANNELS, StreamConfig, StreamDirection, StreamState,
};
use super::ring::{RingConsumer, RingProducer, ring_buffer};
use crate::error::{Error, Result};

/// The user's audio callback: `(input, output, status)`. `input` has `channels_in` planar
/// channels (none for an output-only stream), `output` has `channels_out` planar channels,
/// zeroed before the call (none for input-only). Every call has exactly `buffer_size` frames:
/// backends split or accumulate device buffers of other sizes ([`BlockAdapter`]).
pub type AudioCallback = Box<dyn FnMut(&[&[f32]], &mut [&mut [f32]], BackendStatus) + Send>;

/// One audio device as a backend lists it.
#[derive(Debug, Clone, PartialEq)]
pub struct DeviceInfo {
    /// Position in the backend's list (usable as [`DeviceSelector::Index`]).
    pub index: usize,
    /// Name shown to users (matched by [`DeviceSelector::Name`]).
    pub name: String,
    /// Most input channels, 0 when the device cannot capture.
    pub max_input_channels: usize,
    /// Most output channels, 0 when the device cannot play.
    pub max_output_channels: usize,
    /// The device's default sample rate in Hz (0 when unknown).
    pub default_sample_rate: f64,
    /// True for the system's default input device.
    pub is_default_input: bool,
    /// True for the system's default output device.
    pub is_default_output: bool,
}

/// An audio I/O backend (torchfx `AudioBackend`). Backends report xruns in the
/// [`BackendStatus`] of each callback; they do not count them. `Send`, so that a
/// [`crate::realtime::RealtimeProcessor`] can live in a plugin or move between threads.
pub trait AudioBackend: Send {
    /// The backend's name, e.g. "cpal (ALSA)".
    fn name(&self) -> &str;

    /// True when the backend can open streams on this system.
    fn is_available(&self) -> bool;

    /// The stream's state.
    fn state(&self) -> StreamState;

    /// Every device, with its channels and default rate.
    fn devices(&self) -> Result<Vec<DeviceInfo>>;

    /// The index of the default device for a direction (duplex → the input device, as in
    /// torchfx), or `None` when there is none.
    fn default_device(&self, direction: StreamDirection) -> Result<Option<usize>>;

    /// Opens a stream. With a callback, the callback is run for every buffer once started;
    /// without one, the stream is for blocking [`AudioBackend::read`]/[`AudioBackend::write`].
    fn open_stream(&mut self, config: &StreamConfig, callback: Option<AudioCallback>)
    -> Result<()>;

    /// Starts (or restarts) the stream.
    fn start(&mut self) -> Result<()>;

    /// Stops the stream; it can be started again.
    fn stop(&mut self) -> Result<()>;

    /// Stops if running and releases the stream. Never fails.
    fn close(&mut self);

    /// Blocking read of exactly `out[0].len()` frames into `out` (`channels_in` channels).
    fn read(&mut self, out: &mut [&mut [f32]]) -> Result<()>;

    /// Blocking write of every frame of `data` (`channels_out` channels).
    fn write(&mut self, data: &[&[f32]]) -> Result<()>;

    /// The error that ended the running stream (e.g. the device was unplugged), if any.
    fn stream_error(&self) -> Option<Error> {
        None
    }

    /// The device's own buffer size for the open stream, when the backend knows it (callbacks
    /// still get exactly `buffer_size` frames).
    fn device_buffer_size(&self) -> Option<usize> {
        None
    }

    /// The input device's rate when the open duplex stream resamples its input to the
    /// stream's rate; `None` when it does not.
    fn input_resampled_from(&self) -> Option<u32> {
        None
    }
}

impl<B: AudioBackend + ?Sized> AudioBackend for Box<B> {
    fn name(&self) -> &str {
        (**self).name()
    }
    fn is_available(&self) -> bool {
        (**self).is_available()
    }
    fn state(&self) -> StreamState {
        (**self).state()
    }
    fn devices(&self) -> Result<Vec<DeviceInfo>> {
        (**self).devices()
    }
    fn default_device(&self, direction: StreamDirection) -> Result<Option<usize>> {
        (**self).default_device(direction)
    }
    fn open_stream(
        &mut self,
        config: &StreamConfig,
        callback: Option<AudioCallback>,
    ) -> Result<()> {
        (**self).open_stream(config, callback)
    }
    fn start(&mut self) -> Result<()> {
        (**self).start()
    }
    fn stop(&mut self) -> Result<()> {
        (**self).stop()
    }
    fn close(&mut self) {
        (**self).close()
    }
    fn read(&mut self, out: &mut [&mut [f32]]) -> Result<()> {
        (**self).read(out)
    }
    fn write(&mut self, data: &[&[f32]]) -> Result<()> {
        (**self).write(data)
    }
    fn stream_error(&self) -> Option<Error> {
        (**self).stream_error()
    }
    fn device_buffer_size(&self) -> Option<usize> {
        (**self).device_buffer_size()
    }
    fn input_resampled_from(&self) -> Option<u32> {
        (**self).input_resampled_from()
    }
}

/// Checks that a stream may be opened from `state`.
pub fn check_open(state: StreamState) -> Result<()> {
    match state {
        StreamState::Closed | StreamState::Stopped | StreamState::Error => Ok(()),
        _ => Err(
            Error::stream("Cannot open stream: stream is already open or running")
                .with_suggestion("call stop() and close() first"),
        ),
    }
}

/// Checks that a stream may be started from `state`.
pub fn check_start(state: StreamState) -> Result<()> {
    match state {
        StreamState::Open | StreamState::Stopped => Ok(()),
        _ => Err(Error::stream("Cannot start stream: stream is not open")
            .with_suggestion("call open_stream() first")),
    }
}

/// Checks that a stream may be stopped from `state`.
pub fn check_stop(state: StreamState) -> Result<()> {
    match state {
        StreamState::Running => Ok(()),
        _ => Err(Error::stream("Cannot stop stream: stream is not running")),
    }
}

/// The error for a failed open, with the backend's reason.
pub fn open_failed(reason: impl std::fmt::Display) -> Error {
    Error::stream(format!("Failed to open audio stream: {reason}"))
}

/// Chooses a device from `devices`: by index, or the exact name, or the first name containing
/// the text (case-insensitive); it must have channels in the wanted direction. The error lists
/// the candidates.
pub fn choose_device<'a>(
    devices: &'a [DeviceInfo],
    selector: &DeviceSelector,
    input: bool,
) -> Result<&'a DeviceInfo> {
    let usable = |d: &&DeviceInfo| {
        if input {
            d.max_input_channels > 0
        } else {
            d.max_output_channels > 0
        }
    };
    let kind = if input { "input" } else { "output" };
    let found = match selector {
        DeviceSelector::Index(i) => devices.iter().find(|d| d.index == *i).filter(usable),
        DeviceSelector::Name(name) => {
            let lower = name.to_lowercase();
            devices
                .iter()
                .filter(usable)
                .find(|d| d.name.to_lowercase() == lower)
                .or_else(|| {
                    devices
                        .iter()
                        .filter(usable)
                        .find(|d| d.name.to_lowercase().contains(&lower))
                })
        }
    };
    found.ok_or_else(|| {
        let list: Vec<String> = devices
            .iter()
            .filter(usable)
            .map(|d| format!("{}: {}", d.index, d.name))
            .collect();
        Error::stream(format!("No {kind} device matches {selector}"))
            .with_parameter_name(if input { "device_in" } else { "device_out" })
            .with_suggestion(if list.is_empty() {
                format!(
                    "this backend has no {kind} devices; run `rtfx devices` to see all backends"
                )
            } else {
                format!("choose one of [{}] (see `rtfx devices`)", list.join("; "))
            })
    })
}

/// Turns device buffers of any size into callbacks of exactly `block` frames.
///
/// Input frames accumulate until a block is full; output comes from the last block's output.
/// While every device buffer is a multiple of the block, the callback runs in step with the
/// device and adds no latency. A duplex stream that gets a device buffer of another size
/// switches, once, to a fixed extra latency of one block (it plays one block of silence, then
/// never underflows whatever the device's sizes). Output-only and input-only streams never
/// add latency. Preallocated; [`BlockAdapter::process_interleaved`] never allocates.
pub struct BlockAdapter {
    block: usize,
    channels_in: usize,
    channels_out: usize,
    callback: AudioCallback,
    /// Planar input block, `channels_in × block`.
    input: Vec<f32>,
    /// Planar output block, `channels_out × block`.
    output: Vec<f32>,
    in_fill: usize,
    out_pos: usize,
    pending: usize,
    /// Duplex only: a device buffer that is not a multiple of the block was seen, so the
    /// output runs one block behind.
    delayed: bool,
    /// Frames of silence still to play before the delayed output starts.
    zeros_owed: usize,
    status: BackendStatus,
}

impl BlockAdapter {
    /// An adapter for blocks of `block` frames.
    pub fn new(
        block: usize,
        channels_in: usize,
        channels_out: usize,
        callback: AudioCallback,
    ) -> Self {
        let block = block.max(1);
        Self {
            block,
            channels_in: channels_in.min(MAX_STREAM_CHANNELS),
            channels_out: channels_out.min(MAX_STREAM_CHANNELS),
            callback,
            input: vec![0.0; channels_in.min(MAX_STREAM_CHANNELS) * block],
            output: vec![0.0; channels_out.min(MAX_STREAM_CHANNELS) * block],
            in_fill: 0,
            out_pos: 0,
            pending: 0,
            delayed: false,
            zeros_owed: 0,
            status: BackendStatus::default(),
        }
    }

    /// Frames per callback.
    pub fn block(&self) -> usize {
        self.block
    }

    /// Handles one device buffer of planar audio (any length) through the interleaved path,
    /// in pieces that fit the caller's scratch buffers (`scratch_in` holds `piece ×
    /// channels_in` samples, `scratch_out` `piece × channels_out`). Missing input channels
    /// and samples read as silence; output channels beyond `channels_out` are zeroed.
    pub fn process_planar(
        &mut self,
        input: &[&[f32]],
        output: &mut [&mut [f32]],
        scratch_in: &mut [f32],
        scratch_out: &mut [f32],
        status: BackendStatus,
    ) {
        let (cin, cout) = (self.channels_in, self.channels_out);
        let fits = |len: usize, channels: usize| len.checked_div(channels).unwrap_or(usize::MAX);
        let piece = fits(scratch_in.len(), cin).min(fits(scratch_out.len(), cout));
        let frames = input
            .first()
            .map(|c| c.len())
            .or_else(|| output.first().map(|c| c.len()))
            .unwrap_or(0);
        let mut pos = 0;
        let mut status = status;
        while pos < frames && piece > 0 {
            let n = (frames - pos).min(piece);
            for f in 0..n {
                for c in 0..cin {
                    scratch_in[f * cin + c] = input
                        .get(c)
                        .and_then(|ch| ch.get(pos + f))
                        .copied()
                        .unwrap_or(0.0);
                }
            }
            self.process_interleaved(
                &scratch_in[..n * cin],
                &mut scratch_out[..n * cout],
                n,
                status,
            );
            status = BackendStatus::default();
            for (c, channel) in output.iter_mut().enumerate() {
                let end = (pos + n).min(channel.len());
                for f in pos..end {
                    channel[f] = if c < cout {
                        scratch_out[(f - pos) * cout + c]
                    } else {
                        0.0
                    };
                }
            }
            pos += n;
        }
    }

    /// Handles one device buffer of `frames` frames: `input` interleaved with `channels_in`
    /// channels (missing samples read as silence), `output` interleaved with `channels_out`
    /// channels. `status` is passed on with the next callback.
    pub fn process_interleaved(
        &mut self,
        input: &[f32],
        output: &mut [f32],
        frames: usize,
        status: BackendStatus,
    ) {
        self.status = self.status.merge(status);
        let (cin, cout, b) = (self.channels_in, self.channels_out, self.block);
        if cin > 0 && cout > 0 && !self.delayed && !frames.is_multiple_of(b) {
            self.delayed = true;
            self.zeros_owed = b.saturating_sub(self.pending + self.in_fill);
        }
        let mut pos = 0;
        while pos < frames {
            if cout > 0 && cin == 0 && self.pending == 0 {
                self.call();
            }
            if cin > 0 && self.in_fill == b && (cout == 0 || self.pending == 0) {
                self.call();
            }
            let mut step = frames - pos;
            if cin > 0 {
                step = step.min(b - self.in_fill);
            }
            if cout > 0 && self.zeros_owed > 0 {
                step = step.min(self.zeros_owed);
            } else if cout > 0 && self.pending > 0 {
                step = step.min(self.pending);
            }
            if step == 0 {
                break;
            }
            if cin > 0 {
                for f in 0..step {
                    let base = (pos + f) * cin;
                    for c in 0..cin {
                        self.input[c * b + self.in_fill + f] =
                            input.get(base + c).copied().unwrap_or(0.0);
                    }
                }
                self.in_fill += step;
                if self.in_fill == b && (cout == 0 || self.pending == 0) {
                    self.call();
                }
            }
            if cout > 0 {
                let end = ((pos + step) * cout).min(output.len());
                let out = &mut output[(pos * cout).min(end)..end];
                if self.zeros_owed > 0 {
                    out.fill(0.0);
                    self.zeros_owed -= step;
                } else if self.pending > 0 {
                    for (f, frame) in out.chunks_exact_mut(cout).enumerate() {
                        for (c, x) in frame.iter_mut().enumerate() {
                            *x = self.output[c * b + self.out_pos + f];
                        }
                    }
                    self.out_pos += step;
                    self.pending -= step;
                } else {
                    out.fill(0.0);
                }
            }
            pos += step;
        }
        if pos < frames && cout > 0 {
            let from = (pos * cout).min(output.len());
            output[from..].fill(0.0);
        }
    }

    /// Runs the callback on the accumulated input block.
    fn call(&mut self) {
        let b = self.block;
        let mut ins: [&[f32]; MAX_STREAM_CHANNELS] = [&[]; MAX_STREAM_CHANNELS];
        for (slot, chunk) in ins.iter_mut().zip(self.input.chunks_exact(b)) {
            *slot = chunk;
        }
        self.output.fill(0.0);
        let mut outs: [&mut [f32]; MAX_STREAM_CHANNELS] = Default::default();
        for (slot, chunk) in outs.iter_mut().zip(self.output.chunks_exact_mut(b)) {
            *slot = chunk;
        }
        let status = std::mem::take(&mut self.status);
        (self.callback)(
            &ins[..self.channels_in],
            &mut outs[..self.channels_out],
            status,
        );
        self.in_fill = 0;
        if self.channels_out > 0 {
            self.pending = b;
            self.out_pos = 0;
        }
    }
}

/// The application side of a stream opened for blocking I/O: rings filled and drained by an
/// internal callback.
pub struct BlockingIo {
    input: Option<RingConsumer>,
    output: Option<RingProducer>,
    timeout: Duration,
    poll: Duration,
    running: bool,
}

/// The callback a stream runs: the caller's, or (for blocking read/write) the internal callback
/// of a [`blocking_stream`], whose application side is kept in `blocking`.
pub fn callback_or_blocking(
    config: &StreamConfig,
    callback: Option<AudioCallback>,
    blocking: &mut Option<BlockingIo>,
) -> Result<AudioCallback> {
    match callback {
        Some(cb) => {
            *blocking = None;
            Ok(cb)
        }
        None => {
            let (cb, io) = blocking_stream(config)?;
            *blocking = Some(io);
            Ok(cb)
        }
    }
}

/// Builds the internal callback of a blocking stream and its application side. The rings hold
/// a quarter of a second or eight buffers, whichever is more.
pub fn blocking_stream(config: &StreamConfig) -> Result<(AudioCallback, BlockingIo)> {
    let frames = (config.sample_rate as usize / 4).max(config.buffer_size * 8);
    let (cin, cout) = (config.channels_in, config.channels_out);
    let (in_tx, in_rx) = if cin > 0 {
        let (t, r) = ring_buffer(frames, cin)?;
        (Some(t), Some(r))
    } else {
        (None, None)
    };
    let (out_tx, out_rx) = if cout > 0 {
        let (t, r) = ring_buffer(frames, cout)?;
        (Some(t), Some(r))
    } else {
        (None, None)
    };
    let mut in_tx: Option<RingProducer> = in_tx;
    let mut out_rx: Option<RingConsumer> = out_rx;
    let callback: AudioCallback = Box::new(move |input, output, _status| {
        if let Some(tx) = in_tx.as_mut() {
            let n = input.first().map_or(0, |c| c.len());
            tx.write_frames(input, 0, n);
        }
        if let Some(rx) = out_rx.as_mut() {
            let n = output.first().map_or(0, |c| c.len());
            rx.read_frames(output, 0, n);
        }
    });
    let buffer_s = config.buffer_size as f64 / f64::from(config.sample_rate);
    Ok((
        callback,
        BlockingIo {
            input: in_rx,
            output: out_tx,
            timeout: Duration::from_secs_f64(1.0 + 20.0 * buffer_s),
            poll: Duration::from_secs_f64((buffer_s / 4.0).clamp(1e-4, 5e-3)),
            running: false,
        },
    ))
}

/// The error for blocking I/O without a blocking stream.
fn not_configured() -> Error {
    Error::stream("Stream not configured")
        .with_suggestion("call open_stream(config, None) and start() first")
}

impl BlockingIo {
    /// Marks the stream as running (I/O allowed) or not.
    pub fn set_running(&mut self, running: bool) {
        self.running = running;
    }

    /// Blocks until `out` is filled from the input ring.
    pub fn read(&mut self, out: &mut [&mut [f32]]) -> Result<()> {
        let running = self.running;
        let (timeout, poll) = (self.timeout, self.poll);
        let Some(rx) = self.input.as_mut() else {
            return Err(Error::stream("Cannot read from output-only stream")
                .with_suggestion("open the stream with channels_in > 0"));
        };
        if out.len() != rx.channels() {
            return Err(Error::invalid_parameter(
                format!(
                    "Channel mismatch: stream has {} input channels, buffer has {}",
                    rx.channels(),
                    out.len()
                ),
                "channels",
                out.len(),
            ));
        }
        if !running {
            return Err(Error::stream("Cannot read: stream is not running")
                .with_suggestion("call start() first"));
        }
        let frames = out.first().map_or(0, |c| c.len());
        let mut done = 0;
        let mut last_progress = Instant::now();
        while done < frames {
            let n = rx.read_frames(out, done, frames - done);
            if n > 0 {
                done += n;
                last_progress = Instant::now();
            } else if last_progress.elapsed() > timeout {
                return Err(Error::stream(format!(
                    "Timed out reading audio: got {done} of {frames} frames"
                ))
                .with_suggestion("the device delivers no input; check it with `rtfx devices`"));
            } else {
                std::thread::sleep(poll);
            }
        }
        Ok(())
    }

    /// Blocks until every frame of `data` is in the output ring.
    pub fn write(&mut self, data: &[&[f32]]) -> Result<()> {
        let running = self.running;
        let (timeout, poll) = (self.timeout, self.poll);
        let Some(tx) = self.output.as_mut() else {
            return Err(Error::stream("Cannot write to input-only stream")
                .with_suggestion("open the stream with channels_out > 0"));
        };
        if data.len() != tx.channels() {
            return Err(Error::invalid_parameter(
                format!(
                    "Channel mismatch: stream has {} output channels, data has {}",
                    tx.channels(),
                    data.len()
                ),
                "channels",
                data.len(),
            ));
        }
        if !running {
            return Err(Error::stream("Cannot write: stream is not running")
                .with_suggestion("call start() first"));
        }
        let frames = data.first().map_or(0, |c| c.len());
        if data.iter().any(|c| c.len() != frames) {
            return Err(Error::invalid_parameter(
                "Channels of a block must have the same length",
                "frames",
                frames,
            ));
        }
        let mut done = 0;
        let mut last_progress = Instant::now();
        while done < frames {
            let n = tx.write_frames(data, done, frames - done);
            if n > 0 {
                done += n;
                last_progress = Instant::now();
            } else if last_progress.elapsed() > timeout {
                return Err(Error::stream(format!(
                    "Timed out writing audio: wrote {done} of {frames} frames"
                ))
                .with_suggestion("the device consumes no output; check it with `rtfx devices`"));
            } else {
                std::thread::sleep(poll);
            }
        }
        Ok(())
    }
}

/// Blocking I/O on a backend whose stream may be absent or callback-driven.
pub fn blocking_read(
    io: Option<&mut BlockingIo>,
    opened: bool,
    out: &mut [&mut [f32]],
) -> Result<()> {
    match io {
        Some(io) => io.read(out),
        None if opened => Err(
            Error::stream("Cannot read: the stream was opened with a callback")
                .with_suggestion("open the stream with open_stream(config, None) for blocking I/O"),
        ),
        None => Err(not_configured()),
    }
}

/// See [`blocking_read`].
pub fn blocking_write(io: Option<&mut BlockingIo>, opened: bool, data: &[&[f32]]) -> Result<()> {
    match io {
        Some(io) => io.write(data),
        None if opened => Err(
            Error::stream("Cannot write: the stream was opened with a callback")
                .with_suggestion("open the stream with open_stream(config, None) for blocking I/O"),
        ),
        None => Err(not_configured()),
    }
}

/// How often each [`TestBackend`] call happened.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TestCounts {
    /// Successful `open_stream` calls.
    pub open: usize,
    /// Successful `start` calls.
    pub start: usize,
    /// Successful `stop` calls.
    pub stop: usize,
    /// `close` calls.
    pub close: usize,
    /// Device buffers run through the callback by the driver.
    pub buffers: usize,
}

struct TestShared {
    state: StreamState,
    config: Option<StreamConfig>,
    adapter: Option<BlockAdapter>,
    counts: TestCounts,
    fail_open: Option<String>,
    fail_start: Option<String>,
    /// Interleaved scratch for planar driving, `SCRATCH_FRAMES × channels`.
    scratch_in: Vec<f32>,
    scratch_out: Vec<f32>,
}

/// Frames of the test driver's planar scratch; longer buffers are run in pieces.
const SCRATCH_FRAMES: usize = 8192;

/// A backend without a device: the test (or benchmark) runs every device buffer through the
/// stream's callback with a [`TestDriver`]. It follows the state machine of the real backends
/// and can be told to fail the next open or start.
///
/// ```
/// use rtfx::realtime::{AudioBackend, BackendStatus, StreamConfig, TestBackend};
///
/// let (mut backend, driver) = TestBackend::new();
/// let config = StreamConfig::new(48000, 4).with_channels(1, 1);
/// backend.open_stream(&config, Some(Box::new(|input, output, _status| {
///     for (o, i) in output[0].iter_mut().zip(input[0]) {
///         *o = 2.0 * i;
///     }
/// }))).unwrap();
/// backend.start().unwrap();
/// let mut out = [0.0f32; 4];
/// assert!(driver.run(&[&[1.0, 2.0, 3.0, 4.0]], &mut [&mut out], BackendStatus::default()));
/// assert_eq!(out, [2.0, 4.0, 6.0, 8.0]);
/// ```
pub struct TestBackend {
    shared: Arc<Mutex<TestShared>>,
    blocking: Option<BlockingIo>,
}

/// Drives a [`TestBackend`]'s stream: each call is one device buffer.
#[derive(Clone)]
pub struct TestDriver {
    shared: Arc<Mutex<TestShared>>,
}

fn lock(shared: &Mutex<TestShared>) -> MutexGuard<'_, TestShared> {
    shared.lock().unwrap_or_else(|e| e.into_inner())
}

impl TestBackend {
    /// A closed test backend and its driver.
    pub fn new() -> (TestBackend, TestDriver) {
        let shared = Arc::new(Mutex::new(TestShared {
            state: StreamState::Closed,
            config: None,
            adapter: None,
            counts: TestCounts::default(),
            fail_open: None,
            fail_start: None,
            scratch_in: Vec::new(),
            scratch_out: Vec::new(),
        }));
        (
            TestBackend {
                shared: shared.clone(),
                blocking: None,
            },
            TestDriver { shared },
        )
    }
}

impl AudioBackend for TestBackend {
    fn name(&self) -> &str {
        "test"
    }

    fn is_available(&self) -> bool {
        true
    }

    fn state(&self) -> StreamState {
        lock(&self.shared).state
    }

    fn devices(&self) -> Result<Vec<DeviceInfo>> {
        Ok(vec![DeviceInfo {
            index: 0,
            name: "test device".into(),
            max_input_channels: MAX_STREAM_CHANNELS,
            max_output_channels: MAX_STREAM_CHANNELS,
            default_sample_rate: 48000.0,
            is_default_input: true,
            is_default_output: true,
        }])
    }

    fn default_device(&self, _direction: StreamDirection) -> Result<Option<usize>> {
        Ok(Some(0))
    }

    fn open_stream(
        &mut self,
        config: &StreamConfig,
        callback: Option<AudioCallback>,
    ) -> Result<()> {
        let mut s = lock(&self.shared);
        check_open(s.state)?;
        if let Some(reason) = s.fail_open.take() {
            s.state = StreamState::Error;
            return Err(open_failed(reason));
        }
        if let Err(e) = config.validate() {
            s.state = StreamState::Error;
            return Err(open_failed(e));
        }
        let callback = callback_or_blocking(config, callback, &mut self.blocking)?;
        let (cin, cout) = (config.channels_in, config.channels_out);
        s.adapter = Some(BlockAdapter::new(config.buffer_size, cin, cout, callback));
        s.scratch_in = vec![0.0; SCRATCH_FRAMES * cin];
        s.scratch_out = vec![0.0; SCRATCH_FRAMES * cout];
        s.config = Some(config.clone());
        s.state = StreamState::Open;
        s.counts.open += 1;
        Ok(())
    }

    fn start(&mut self) -> Result<()> {
        let mut s = lock(&self.shared);
        check_start(s.state)?;
        if let Some(reason) = s.fail_start.take() {
            return Err(Error::stream(format!(
                "Failed to start audio stream: {reason}"
            )));
        }
        s.state = StreamState::Running;
        s.counts.start += 1;
        if let Some(io) = self.blocking.as_mut() {
            io.set_running(true);
        }
        Ok(())
    }

    fn stop(&mut self) -> Result<()> {
        let mut s = lock(&self.shared);
        check_stop(s.state)?;
        s.state = StreamState::Stopped;
        s.counts.stop += 1;
        if let Some(io) = self.blocking.as_mut() {
            io.set_running(false);
        }
        Ok(())
    }

    fn close(&mut self) {
        let mut s = lock(&self.shared);
        if s.state == StreamState::Running {
            s.counts.stop += 1;
        }
        s.adapter = None;
        s.config = None;
        s.state = StreamState::Closed;
        s.counts.close += 1;
        self.blocking = None;
    }

    fn read(&mut self, out: &mut [&mut [f32]]) -> Result<()> {
        let opened = lock(&self.shared).adapter.is_some();
        blocking_read(self.blocking.as_mut(), opened, out)
    }

    fn write(&mut self, data: &[&[f32]]) -> Result<()> {
        let opened = lock(&self.shared).adapter.is_some();
        blocking_write(self.blocking.as_mut(), opened, data)
    }
}

impl TestDriver {
    /// Runs one device buffer of planar audio through the stream (of any length: the backend
    /// splits or accumulates it into callbacks of `buffer_size` frames). `input` needs
    /// `channels_in` channels (missing ones read as silence), `output` gets `channels_out`.
    /// Returns false, touching nothing, when the stream is not running. Does not allocate.
    pub fn run(&self, input: &[&[f32]], output: &mut [&mut [f32]], status: BackendStatus) -> bool {
        let mut guard = lock(&self.shared);
        let s = &mut *guard;
        if s.state != StreamState::Running {
            return false;
        }
        let Some(adapter) = s.adapter.as_mut() else {
            return false;
        };
        adapter.process_planar(input, output, &mut s.scratch_in, &mut s.scratch_out, status);
        s.counts.buffers += 1;
        true
    }

    /// Runs one device buffer of `frames` interleaved frames; see [`TestDriver::run`].
    pub fn run_interleaved(
        &self,
        input: &[f32],
        output: &mut [f32],
        frames: usize,
        status: BackendStatus,
    ) -> bool {
        let mut s = lock(&self.shared);
        if s.state != StreamState::Running {
            return false;
        }
        let Some(adapter) = s.adapter.as_mut() else {
            return false;
        };
        adapter.process_interleaved(input, output, frames, status);
        s.counts.buffers += 1;
        true
    }

    /// The stream's state.
    pub fn state(&self) -> StreamState {
        lock(&self.shared).state
    }

    /// The configuration of the open stream.
    pub fn config(&self) -> Option<StreamConfig> {
        lock(&self.shared).config.clone()
    }

    /// How often each backend call happened.
    pub fn counts(&self) -> TestCounts {
        lock(&self.shared).counts
    }

    /// Makes the next `open_stream` fail with this reason (and leave the error state).
    pub fn fail_next_open(&self, reason: &str) {
        lock(&self.shared).fail_open = Some(reason.to_string());
    }

    /// Makes the next `start` fail with this reason.
    pub fn fail_next_start(&self, reason: &str) {
        lock(&self.shared).fail_start = Some(reason.to_string());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn recorder(block: usize, cin: usize, cout: usize) -> (BlockAdapter, Arc<Mutex<Vec<usize>>>) {
        let calls = Arc::new(Mutex::new(Vec::new()));
        let seen = calls.clone();
        // Output = input + 100 (or a counter when there is no input); records each call's size.
        let mut counter = 0.0f32;
        let adapter = BlockAdapter::new(
            block,
            cin,
            cout,
            Box::new(move |input, output, _| {
                let n = input
                    .first()
                    .map(|c| c.len())
                    .or(output.first().map(|c| c.len()));
                seen.lock().unwrap().push(n.unwrap_or(0));
                for (c, out) in output.iter_mut().enumerate() {
                    for (f, x) in out.iter_mut().enumerate() {
                        *x = match input.get(c.min(input.len().saturating_sub(1))) {
                            Some(i) => i[f] + 100.0,
                            None => {
                                counter += 1.0;
                                counter
                            }
                        };
                    }
                }
            }),
        );
        (adapter, calls)
    }

    #[test]
    fn equal_sizes_add_no_latency() {
        let (mut a, calls) = recorder(4, 1, 1);
        let mut out = [0.0f32; 4];
        a.process_interleaved(&[1.0, 2.0, 3.0, 4.0], &mut out, 4, BackendStatus::default());
        assert_eq!(out, [101.0, 102.0, 103.0, 104.0]);
        assert_eq!(*calls.lock().unwrap(), vec![4]);
    }

    #[test]
    fn odd_sizes_keep_order_with_bounded_latency() {
        for sizes in [vec![3usize], vec![5], vec![1, 7, 2], vec![9, 1], vec![16]] {
            let (mut a, calls) = recorder(4, 2, 2);
            let total = 200;
            let input: Vec<f32> = (0..total).flat_map(|i| [i as f32, -(i as f32)]).collect();
            let mut output = vec![f32::NAN; total * 2];
            let mut pos = 0;
            let mut k = 0;
            while pos < total {
                let n = sizes[k % sizes.len()].min(total - pos);
                a.process_interleaved(
                    &input[pos * 2..(pos + n) * 2],
                    &mut output[pos * 2..(pos + n) * 2],
                    n,
                    BackendStatus::default(),
                );
                pos += n;
                k += 1;
            }
            assert!(calls.lock().unwrap().iter().all(|&n| n == 4));
            // Find the latency: the first non-zero left sample is input 0 + 100.
            let lag = (0..total).find(|&f| output[f * 2] != 0.0).unwrap();
            assert!(lag <= 4, "sizes {sizes:?}: lag {lag}");
            for f in lag..total {
                let src = (f - lag) as f32;
                assert_eq!(output[f * 2], src + 100.0, "sizes {sizes:?} frame {f}");
                assert_eq!(output[f * 2 + 1], -src + 100.0, "sizes {sizes:?} frame {f}");
            }
        }
    }

    #[test]
    fn output_only_and_input_only_blocks() {
        let (mut a, calls) = recorder(4, 0, 1);
        let mut out = [0.0f32; 6];
        a.process_interleaved(&[], &mut out, 6, BackendStatus::default());
        assert_eq!(out, [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
        a.process_interleaved(&[], &mut out[..2], 2, BackendStatus::default());
        assert_eq!(out[..2], [7.0, 8.0]);
        assert_eq!(calls.lock().unwrap().len(), 2);

        let (mut a, calls) = recorder(4, 1, 0);
        a.process_interleaved(&[1.0; 3], &mut [], 3, BackendStatus::default());
        assert!(calls.lock().unwrap().is_empty());
        a.process_interleaved(&[1.0; 6], &mut [], 6, BackendStatus::default());
        assert_eq!(calls.lock().unwrap().len(), 2);
    }

    #[test]
    fn status_reaches_the_next_callback() {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let s2 = seen.clone();
        let mut a = BlockAdapter::new(
            4,
            1,
            1,
            Box::new(move |_, _, status| s2.lock().unwrap().push(status.has_xrun())),
        );
        let xrun = BackendStatus {
            input_overflow: true,
            ..Default::default()
        };
        let mut out = [0.0f32; 2];
        a.process_interleaved(&[0.0; 2], &mut out, 2, xrun);
        for _ in 0..4 {
            a.process_interleaved(&[0.0; 2], &mut out, 2, BackendStatus::default());
        }
        assert_eq!(*seen.lock().unwrap(), vec![true, false]);
    }

    #[test]
    fn state_machine_errors() {
        let (mut b, driver) = TestBackend::new();
        let config = StreamConfig::new(48000, 8).with_channels(1, 1);
        assert_eq!(
            b.start().unwrap_err().message(),
            "Cannot start stream: stream is not open"
        );
        assert_eq!(
            b.stop().unwrap_err().message(),
            "Cannot stop stream: stream is not running"
        );
        b.open_stream(&config, Some(Box::new(|_, _, _| {})))
            .unwrap();
        assert_eq!(b.state(), StreamState::Open);
        let e = b.open_stream(&config, None).unwrap_err();
        assert_eq!(
            e.message(),
            "Cannot open stream: stream is already open or running"
        );
        assert!(matches!(e, Error::Stream(_)));
        b.start().unwrap();
        assert!(b.start().is_err());
        let mut out = [0.0f32; 8];
        assert!(driver.run(&[&[0.0; 8]], &mut [&mut out], BackendStatus::default()));
        b.stop().unwrap();
        assert!(!driver.run(&[&[0.0; 8]], &mut [&mut out], BackendStatus::default()));
        b.start().unwrap();
        b.close();
        assert_eq!(b.state(), StreamState::Closed);
        assert_eq!(
            driver.counts(),
            TestCounts {
                open: 1,
                start: 2,
                stop: 2,
                close: 1,
                buffers: 1
            }
        );
        driver.fail_next_open("device on fire");
        let e = b.open_stream(&config, None).unwrap_err();
        assert_eq!(e.message(), "Failed to open audio stream: device on fire");
        assert_eq!(b.state(), StreamState::Error);
        b.open_stream(&config, None).unwrap();
        driver.fail_next_start("busy");
        assert!(b.start().unwrap_err().message().contains("busy"));
    }

    #[test]
    fn blocking_io_round_trips_through_the_driver() {
        let (mut b, driver) = TestBackend::new();
        let mut buf = [0.0f32; 4];
        assert_eq!(
            b.read(&mut [&mut buf]).unwrap_err().message(),
            "Stream not configured"
        );
        assert_eq!(
            b.write(&[&buf]).unwrap_err().message(),
            "Stream not configured"
        );
        let config = StreamConfig::new(48000, 4).with_channels(1, 1);
        b.open_stream(&config, None).unwrap();
        assert!(
            b.read(&mut [&mut buf])
                .unwrap_err()
                .message()
                .contains("not running")
        );
        b.start().unwrap();
        b.write(&[&[1.0, 2.0, 3.0, 4.0, 5.0]]).unwrap();
        let mut out = [0.0f32; 8];
        assert!(driver.run(
            &[&[9.0, 8.0, 7.0, 6.0, 5.0, 4.0, 3.0, 2.0]],
            &mut [&mut out],
            BackendStatus::default()
        ));
        assert_eq!(out, [1.0, 2.0, 3.0, 4.0, 5.0, 0.0, 0.0, 0.0]);
        b.read(&mut [&mut buf]).unwrap();
        assert_eq!(buf, [9.0, 8.0, 7.0, 6.0]);
        b.read(&mut [&mut buf]).unwrap();
        assert_eq!(buf, [5.0, 4.0, 3.0, 2.0]);
        // A read that needs more input waits for the driver on another thread.
        let d2 = driver.clone();
        let feeder = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(20));
            let mut o = [0.0f32; 4];
            d2.run(&[&[0.5; 4]], &mut [&mut o], BackendStatus::default())
        });
        b.read(&mut [&mut buf]).unwrap();
        assert!(feeder.join().unwrap());
        assert_eq!(buf, [0.5; 4]);

        let (mut b, _d) = TestBackend::new();
        b.open_stream(&StreamConfig::new(48000, 4).with_channels(0, 1), None)
            .unwrap();
        b.start().unwrap();
        assert_eq!(
            b.read(&mut [&mut buf]).unwrap_err().message(),
            "Cannot read from output-only stream"
        );
        let (mut b, _d) = TestBackend::new();
        b.open_stream(
            &StreamConfig::new(48000, 4).with_channels(1, 0),
            Some(Box::new(|_, _, _| {})),
        )
        .unwrap();
        assert!(
            b.write(&[&buf])
                .unwrap_err()
                .message()
                .contains("opened with a callback")
        );
    }

    #[test]
    fn devices_are_chosen_by_index_or_name() {
        let devices = vec![
            DeviceInfo {
                index: 0,
                name: "Discard all samples (playback) or generate zero samples (capture)".into(),
                max_input_channels: 2,
                max_output_channels: 2,
                default_sample_rate: 48000.0,
                is_default_input: false,
                is_default_output: false,
            },
            DeviceInfo {
                index: 1,
                name: "Mic only".into(),
                max_input_channels: 1,
                max_output_channels: 0,
                default_sample_rate: 44100.0,
                is_default_input: true,
                is_default_output: false,
            },
        ];
        let d = choose_device(&devices, &DeviceSelector::Name("discard".into()), false).unwrap();
        assert_eq!(d.index, 0);
        assert_eq!(
            choose_device(&devices, &DeviceSelector::Index(1), true)
                .unwrap()
                .index,
            1
        );
        let e = choose_device(&devices, &DeviceSelector::Index(1), false).unwrap_err();
        assert!(e.to_string().contains("No output device matches #1"), "{e}");
        assert!(e.to_string().contains("0: Discard"), "{e}");
        assert_eq!(e.parameter_name(), Some("device_out"));
    }
}

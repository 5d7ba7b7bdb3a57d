//! [`HostBackend`]: a backend whose "device" is someone else's audio callback, e.g. a plugin's
//! `process()` running a [`crate::realtime::RealtimeProcessor`] in offload mode. The host's
//! thread calls [`HostDriver::process`] with each block it gets; everything on that path is
//! lock-free and allocation-free.
//!
//! The stream's callback (wrapped in a preallocated [`BlockAdapter`]) travels to the driver
//! through an `rtrb` queue when the stream opens; when it closes, the driver hands the old one
//! back through a second queue, so that it is dropped (freed) on the control thread, never on
//! the audio thread.
//!
//! ```
//! use rtfx::dsp::spec::parse_chain;
//! use rtfx::realtime::{BackendStatus, HostBackend, ProcessorOptions, RealtimeProcessor, StreamConfig};
//!
//! let (backend, mut driver) = HostBackend::new(true);
//! let config = StreamConfig::new(48000, 64).with_channels(1, 1);
//! let options = ProcessorOptions { start_worker: false, ..Default::default() };
//! let mut p = RealtimeProcessor::new(parse_chain(&["gain:2"]).unwrap(), Box::new(backend), config, options).unwrap();
//! p.start().unwrap();
//! let input = [0.25f32; 64];
//! let mut out = [1.0f32; 64];
//! for _ in 0..3 {
//!     // In a plugin: called from process(); here one block at a time with the DSP in between.
//!     assert!(driver.process(&[&input], &mut [&mut out], BackendStatus::default()));
//!     p.process_pending().unwrap();
//! }
//! // Fixed latency: the adapter's block plus the primed block, then the processed audio.
//! assert_eq!(out, [0.5; 64]);
//! ```

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use super::backend::{
    AudioBackend, AudioCallback, BlockAdapter, BlockingIo, DeviceInfo, blocking_read,
    blocking_write, callback_or_blocking, check_open, check_start, check_stop, open_failed,
};
use super::config::{
    BackendStatus, MAX_STREAM_CHANNELS, StreamConfig, StreamDirection, StreamState,
};
use crate::error::Result;

/// Frames the driver converts per piece (longer host blocks are handled in pieces).
const PIECE_FRAMES: usize = 2048;

/// What travels to the audio thread when a stream opens.
struct Slot {
    adapter: BlockAdapter,
    generation: u64,
    /// Interleaved scratch, `PIECE_FRAMES × channels`.
    scratch_in: Vec<f32>,
    scratch_out: Vec<f32>,
}

struct Shared {
    running: AtomicBool,
    generation: AtomicU64,
}

/// The control side of a host-driven stream (see the [module docs](self)).
pub struct HostBackend {
    shared: Arc<Shared>,
    to_audio: rtrb::Producer<Box<Slot>>,
    retired: rtrb::Consumer<Box<Slot>>,
    state: StreamState,
    blocking: Option<BlockingIo>,
    opened: bool,
    fixed_latency: bool,
    added_latency: usize,
}

/// The audio side of a host-driven stream: call [`HostDriver::process`] from the host's audio
/// callback. `Send`, so it can be moved into that callback.
pub struct HostDriver {
    shared: Arc<Shared>,
    from_control: rtrb::Consumer<Box<Slot>>,
    retire: rtrb::Producer<Box<Slot>>,
    current: Option<Box<Slot>>,
}

/// Streams the control side may open before the driver has run once.
const QUEUE: usize = 16;

impl HostBackend {
    /// A closed host backend and its driver. With `fixed_latency`, a duplex stream always runs
    /// one buffer behind (see [`BlockAdapter::with_fixed_delay`]), so its latency does not depend
    /// on the host's block sizes: [`HostBackend::added_latency_frames`] tells how much.
    pub fn new(fixed_latency: bool) -> (HostBackend, HostDriver) {
        let shared = Arc::new(Shared {
            running: AtomicBool::new(false),
            generation: AtomicU64::new(0),
        });
        let (to_audio, from_control) = rtrb::RingBuffer::new(QUEUE);
        let (retire, retired) = rtrb::RingBuffer::new(QUEUE * 2);
        (
            HostBackend {
                shared: shared.clone(),
                to_audio,
                retired,
                state: StreamState::Closed,
                blocking: None,
                opened: false,
                fixed_latency,
                added_latency: 0,
            },
            HostDriver {
                shared,
                from_control,
                retire,
                current: None,
            },
        )
    }

    /// Frames of latency the open stream's block adapter adds: one buffer for a duplex stream
    /// with `fixed_latency`, else 0 (until odd host block sizes make it run one buffer behind).
    pub fn added_latency_frames(&self) -> usize {
        self.added_latency
    }

    /// Drops the streams the driver handed back.
    fn collect(&mut self) {
        while self.retired.pop().is_ok() {}
    }
}

impl AudioBackend for HostBackend {
    fn name(&self) -> &str {
        "host"
    }

    fn is_available(&self) -> bool {
        true
    }

    fn state(&self) -> StreamState {
        self.state
    }

    fn devices(&self) -> Result<Vec<DeviceInfo>> {
        Ok(vec![DeviceInfo {
            index: 0,
            name: "host audio callback".into(),
            max_input_channels: MAX_STREAM_CHANNELS,
            max_output_channels: MAX_STREAM_CHANNELS,
            default_sample_rate: 0.0,
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
        check_open(self.state)?;
        self.collect();
        if let Err(e) = config.validate() {
            self.state = StreamState::Error;
            return Err(open_failed(e));
        }
        let callback = callback_or_blocking(config, callback, &mut self.blocking)?;
        let (cin, cout) = (config.channels_in, config.channels_out);
        let mut adapter = BlockAdapter::new(config.buffer_size, cin, cout, callback);
        if self.fixed_latency {
            adapter = adapter.with_fixed_delay();
        }
        self.added_latency = adapter.added_latency();
        let slot = Box::new(Slot {
            adapter,
            generation: self.shared.generation.load(Ordering::Acquire),
            scratch_in: vec![0.0; PIECE_FRAMES * cin],
            scratch_out: vec![0.0; PIECE_FRAMES * cout],
        });
        if self.to_audio.push(slot).is_err() {
            self.state = StreamState::Error;
            return Err(open_failed(
                "the host's audio thread has not run since the last streams were opened",
            ));
        }
        self.opened = true;
        self.state = StreamState::Open;
        Ok(())
    }

    fn start(&mut self) -> Result<()> {
        check_start(self.state)?;
        self.shared.running.store(true, Ordering::Release);
        if let Some(io) = self.blocking.as_mut() {
            io.set_running(true);
        }
        self.state = StreamState::Running;
        Ok(())
    }

    fn stop(&mut self) -> Result<()> {
        check_stop(self.state)?;
        self.shared.running.store(false, Ordering::Release);
        if let Some(io) = self.blocking.as_mut() {
            io.set_running(false);
        }
        self.state = StreamState::Stopped;
        Ok(())
    }

    fn close(&mut self) {
        self.shared.running.store(false, Ordering::Release);
        // The driver retires the stream at its next call; it is dropped here later.
        self.shared.generation.fetch_add(1, Ordering::AcqRel);
        self.collect();
        self.blocking = None;
        self.opened = false;
        self.state = StreamState::Closed;
    }

    fn read(&mut self, out: &mut [&mut [f32]]) -> Result<()> {
        blocking_read(self.blocking.as_mut(), self.opened, out)
    }

    fn write(&mut self, data: &[&[f32]]) -> Result<()> {
        blocking_write(self.blocking.as_mut(), self.opened, data)
    }
}

impl HostDriver {
    /// Hands a stream back for dropping on the control thread. The control side empties the
    /// return queue at every open and close, so it has room (were it full, the stream would be
    /// freed here).
    fn retire(&mut self, slot: Box<Slot>) {
        let _ = self.retire.push(slot);
    }

    /// Runs one host block through the stream: `input` with `channels_in` planar channels
    /// (missing ones read as silence), `output` with `channels_out` (filled; silence when the
    /// stream is not running). Any length. Returns whether the stream ran. Never allocates,
    /// locks or blocks.
    pub fn process(
        &mut self,
        input: &[&[f32]],
        output: &mut [&mut [f32]],
        status: BackendStatus,
    ) -> bool {
        let generation = self.shared.generation.load(Ordering::Acquire);
        if self
            .current
            .as_ref()
            .is_some_and(|c| c.generation != generation)
            && let Some(old) = self.current.take()
        {
            self.retire(old);
        }
        while let Ok(slot) = self.from_control.pop() {
            if slot.generation == generation {
                if let Some(old) = self.current.take() {
                    self.retire(old);
                }
                self.current = Some(slot);
            } else {
                self.retire(slot);
            }
        }
        let running = self.shared.running.load(Ordering::Acquire);
        let slot = match self.current.as_mut() {
            Some(s) if running && s.generation == generation => s,
            _ => {
                for c in output.iter_mut() {
                    c.fill(0.0);
                }
                return false;
            }
        };
        slot.adapter.process_planar(
            input,
            output,
            &mut slot.scratch_in,
            &mut slot.scratch_out,
            status,
        );
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn streams_travel_to_the_driver_and_back() {
        let (mut backend, mut driver) = HostBackend::new(false);
        let config = StreamConfig::new(48000, 4).with_channels(1, 1);
        let mut out = [9.0f32; 4];
        assert!(!driver.process(&[&[1.0; 4]], &mut [&mut out], BackendStatus::default()));
        assert_eq!(out, [0.0; 4]);
        backend
            .open_stream(
                &config,
                Some(Box::new(|i, o, _| o[0].copy_from_slice(i[0]))),
            )
            .unwrap();
        assert!(!driver.process(&[&[1.0; 4]], &mut [&mut out], BackendStatus::default()));
        backend.start().unwrap();
        assert!(driver.process(
            &[&[1.0, 2.0, 3.0, 4.0]],
            &mut [&mut out],
            BackendStatus::default()
        ));
        assert_eq!(out, [1.0, 2.0, 3.0, 4.0]);
        backend.stop().unwrap();
        assert!(!driver.process(&[&[1.0; 4]], &mut [&mut out], BackendStatus::default()));
        backend.start().unwrap();
        backend.close();
        assert_eq!(backend.state(), StreamState::Closed);
        // The driver retires the closed stream; the next open collects it.
        assert!(!driver.process(&[&[1.0; 4]], &mut [&mut out], BackendStatus::default()));
        assert!(driver.current.is_none());
        assert_eq!(backend.retired.slots(), 1);
        backend
            .open_stream(&config, Some(Box::new(|_, o, _| o[0].fill(5.0))))
            .unwrap();
        assert_eq!(backend.retired.slots(), 0);
        backend.start().unwrap();
        assert!(driver.process(&[&[1.0; 4]], &mut [&mut out], BackendStatus::default()));
        assert_eq!(out, [5.0; 4]);
        assert!(backend.start().is_err());
    }

    #[test]
    fn fixed_latency_is_one_block() {
        let (mut backend, mut driver) = HostBackend::new(true);
        let config = StreamConfig::new(48000, 4).with_channels(1, 1);
        backend
            .open_stream(
                &config,
                Some(Box::new(|i, o, _| o[0].copy_from_slice(i[0]))),
            )
            .unwrap();
        assert_eq!(backend.added_latency_frames(), 4);
        backend.start().unwrap();
        let input: Vec<f32> = (1..=12).map(|x| x as f32).collect();
        let mut out = vec![0.0f32; 12];
        assert!(driver.process(&[&input], &mut [&mut out], BackendStatus::default()));
        assert_eq!(out[..4], [0.0; 4]);
        assert_eq!(out[4..], input[..8]);
    }
}

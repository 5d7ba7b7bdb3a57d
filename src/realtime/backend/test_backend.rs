//! [`TestBackend`]: a backend without a device, driven buffer by buffer by a test or a
//! benchmark ([`TestDriver`]).

use std::sync::{Arc, Mutex, MutexGuard};

use super::{
    AudioBackend, AudioCallback, BlockAdapter, BlockingIo, DeviceInfo, blocking_read,
    blocking_write, callback_or_blocking, check_open, check_start, check_stop, open_failed,
};
use crate::error::{Error, Result};
use crate::realtime::config::{
    BackendStatus, MAX_STREAM_CHANNELS, StreamConfig, StreamDirection, StreamState,
};

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
    use std::time::Duration;

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
}

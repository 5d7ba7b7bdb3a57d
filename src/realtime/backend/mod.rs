//! The audio backend abstraction (torchfx `AudioBackend`): the trait, its state machine and
//! device choice here; one file each for the fixed-block adapter every backend uses
//! ([`adapter`]), blocking I/O over rings ([`blocking`]) and the deterministic
//! [`TestBackend`] that tests drive callback by callback ([`test_backend`]). The cpal backend
//! is [`crate::realtime::cpal_backend`].
//!
//! State machine (torchfx `SoundDeviceBackend`, §1.4 of the spec):
//!
//! | call | allowed from | result / error |
//! |---|---|---|
//! | `open_stream` | closed, stopped | → open; else "Cannot open stream: stream is already open or running"; failure → error state + "Failed to open audio stream: …" |
//! | `start` | open, stopped | → running; else "Cannot start stream: stream is not open" |
//! | `stop` | running | → stopped; else "Cannot stop stream: stream is not running" |
//! | `close` | any | stops if running, releases the stream, never fails → closed |

pub mod adapter;
pub mod blocking;
pub mod test_backend;

pub use adapter::BlockAdapter;
pub use blocking::{
    BlockingIo, blocking_read, blocking_stream, blocking_write, callback_or_blocking,
};
pub use test_backend::{TestBackend, TestCounts, TestDriver};

use super::config::{BackendStatus, DeviceSelector, StreamConfig, StreamDirection, StreamState};
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

#[cfg(test)]
mod tests {
    use super::*;

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

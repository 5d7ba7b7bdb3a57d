//! Stream configuration and the small types every backend shares (torchfx `StreamConfig`,
//! `StreamDirection`, `StreamState`, `BackendStatus`).

use std::fmt;

use crate::error::{Error, Result};

/// Highest sample rate a stream accepts, in Hz (the same limit as [`crate::dsp::Chain`]).
pub const MAX_SAMPLE_RATE: u32 = 768_000;

/// Most channels a stream direction accepts.
pub const MAX_STREAM_CHANNELS: usize = 32;

/// Most frames per callback a stream accepts: far above any device's buffer (JACK and
/// ALSA stop at 8192), and a bound on what the rings and the chain allocate.
pub const MAX_BUFFER_SIZE: usize = 32_768;

/// Which way audio flows through a stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StreamDirection {
    /// Capture only.
    Input,
    /// Playback only.
    Output,
    /// Capture and playback.
    Duplex,
}

impl StreamDirection {
    /// torchfx's value: "input", "output" or "duplex".
    pub fn as_str(self) -> &'static str {
        match self {
            StreamDirection::Input => "input",
            StreamDirection::Output => "output",
            StreamDirection::Duplex => "duplex",
        }
    }
}

impl fmt::Display for StreamDirection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Life cycle of a backend's stream (see [`crate::realtime::backend::AudioBackend`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StreamState {
    /// No stream (initial state, and after `close`).
    Closed,
    /// Opened, not started.
    Open,
    /// Callbacks are running.
    Running,
    /// Started once, now stopped; can be started again.
    Stopped,
    /// Opening failed.
    Error,
}

impl StreamState {
    /// torchfx's value: "closed", "open", "running", "stopped" or "error".
    pub fn as_str(self) -> &'static str {
        match self {
            StreamState::Closed => "closed",
            StreamState::Open => "open",
            StreamState::Running => "running",
            StreamState::Stopped => "stopped",
            StreamState::Error => "error",
        }
    }
}

impl fmt::Display for StreamState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What the backend reports with each callback. `priming_output` is not an xrun.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Hash)]
pub struct BackendStatus {
    /// Input samples were lost before this callback (capture overrun).
    pub input_overflow: bool,
    /// The device played silence because output came too late (playback underrun).
    pub output_underflow: bool,
    /// Input was missing and replaced by silence (e.g. the duplex input ring ran dry).
    pub input_underflow: bool,
    /// Output had to be dropped.
    pub output_overflow: bool,
    /// The device is still filling its output with the initial silence.
    pub priming_output: bool,
}

impl BackendStatus {
    /// True when any of the four xrun flags is set (`priming_output` does not count).
    pub fn has_xrun(&self) -> bool {
        self.input_overflow || self.output_underflow || self.input_underflow || self.output_overflow
    }

    /// The flags of both statuses combined.
    pub fn merge(self, other: BackendStatus) -> BackendStatus {
        BackendStatus {
            input_overflow: self.input_overflow || other.input_overflow,
            output_underflow: self.output_underflow || other.output_underflow,
            input_underflow: self.input_underflow || other.input_underflow,
            output_overflow: self.output_overflow || other.output_overflow,
            priming_output: self.priming_output || other.priming_output,
        }
    }
}

/// A device, chosen by its index in [`crate::realtime::backend::AudioBackend::devices`] or by
/// a case-insensitive substring of its name.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum DeviceSelector {
    /// The device at this index.
    Index(usize),
    /// The first device whose name is this text or contains it (case-insensitive).
    Name(String),
}

impl DeviceSelector {
    /// Parses a command-line device: a whole number is an index, anything else a name.
    pub fn parse(text: &str) -> DeviceSelector {
        match text.trim().parse::<usize>() {
            Ok(i) => DeviceSelector::Index(i),
            Err(_) => DeviceSelector::Name(text.trim().to_string()),
        }
    }
}

impl fmt::Display for DeviceSelector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DeviceSelector::Index(i) => write!(f, "#{i}"),
            DeviceSelector::Name(n) => write!(f, "'{n}'"),
        }
    }
}

/// Requested device latency (torchfx passes it to PortAudio): a preset or seconds.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub enum Latency {
    /// As low as the device allows (the default): the backend asks for `buffer_size` frames.
    #[default]
    Low,
    /// A safe, higher latency: the backend lets the device choose its period.
    High,
    /// This many seconds of device buffering.
    Seconds(f64),
}

/// The stream configuration (torchfx `StreamConfig`), with torchfx's defaults:
///
/// ```
/// use rtfx::realtime::{StreamConfig, StreamDirection};
/// let c = StreamConfig::default();
/// assert_eq!((c.sample_rate, c.buffer_size, c.channels_in, c.channels_out), (48000, 512, 0, 2));
/// assert_eq!(c.dtype, "float32");
/// assert_eq!(c.direction(), StreamDirection::Output);
/// assert_eq!(c.latency_ms(), 10.666666666666666);
/// let c = StreamConfig::new(44100, 256).with_channels(1, 2);
/// assert_eq!(c.direction(), StreamDirection::Duplex);
/// assert_eq!(c.latency_ms(), 5.804988662131519);
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct StreamConfig {
    /// Sample rate in Hz.
    pub sample_rate: u32,
    /// Frames per callback, which is also the processor's DSP chunk size.
    pub buffer_size: usize,
    /// Input channels (0 = output only).
    pub channels_in: usize,
    /// Output channels (0 = input only).
    pub channels_out: usize,
    /// Sample format; only "float32" is supported (devices are converted by the backend).
    pub dtype: String,
    /// Input device (`None` = the system default).
    pub device_in: Option<DeviceSelector>,
    /// Output device (`None` = the system default).
    pub device_out: Option<DeviceSelector>,
    /// Requested device latency.
    pub latency: Latency,
    /// Rate of the input device in a duplex stream when it differs from `sample_rate`: the
    /// backend resamples the input to `sample_rate`. `None` runs the input at `sample_rate`
    /// when the device supports it and otherwise at the device's own default rate (resampled).
    pub input_rate: Option<u32>,
}

impl Default for StreamConfig {
    fn default() -> Self {
        Self {
            sample_rate: 48000,
            buffer_size: 512,
            channels_in: 0,
            channels_out: 2,
            dtype: "float32".to_string(),
            device_in: None,
            device_out: None,
            latency: Latency::Low,
            input_rate: None,
        }
    }
}

impl StreamConfig {
    /// The defaults with this rate and buffer size.
    pub fn new(sample_rate: u32, buffer_size: usize) -> Self {
        Self {
            sample_rate,
            buffer_size,
            ..Self::default()
        }
    }

    /// Sets the input and output channel counts.
    pub fn with_channels(mut self, channels_in: usize, channels_out: usize) -> Self {
        self.channels_in = channels_in;
        self.channels_out = channels_out;
        self
    }

    /// Sets the input and output devices.
    pub fn with_devices(
        mut self,
        device_in: Option<DeviceSelector>,
        device_out: Option<DeviceSelector>,
    ) -> Self {
        self.device_in = device_in;
        self.device_out = device_out;
        self
    }

    /// Sets the input device's rate for a duplex stream (see [`StreamConfig::input_rate`]).
    pub fn with_input_rate(mut self, input_rate: Option<u32>) -> Self {
        self.input_rate = input_rate;
        self
    }

    /// Sets the requested latency.
    pub fn with_latency(mut self, latency: Latency) -> Self {
        self.latency = latency;
        self
    }

    /// Duplex when there are inputs and outputs, else input when there are inputs, else output
    /// (so 0 in and 0 out is "output", as in torchfx).
    pub fn direction(&self) -> StreamDirection {
        match (self.channels_in > 0, self.channels_out > 0) {
            (true, true) => StreamDirection::Duplex,
            (true, false) => StreamDirection::Input,
            _ => StreamDirection::Output,
        }
    }

    /// One buffer in milliseconds: `buffer_size / sample_rate × 1000`.
    pub fn latency_ms(&self) -> f64 {
        self.buffer_size as f64 / f64::from(self.sample_rate) * 1000.0
    }

    /// Checks the configuration: sample rate in 1..=768000 Hz, buffer size in
    /// 1..=[`MAX_BUFFER_SIZE`], at least one
    /// channel, at most [`MAX_STREAM_CHANNELS`] per direction, dtype "float32", a finite non-negative
    /// latency.
    pub fn validate(&self) -> Result<()> {
        if !(1..=MAX_SAMPLE_RATE).contains(&self.sample_rate) {
            return Err(Error::invalid_sample_rate(
                self.sample_rate,
                format!("an integer in 1..={MAX_SAMPLE_RATE}"),
            ));
        }
        if !(1..=MAX_BUFFER_SIZE).contains(&self.buffer_size) {
            return Err(Error::invalid_range(
                "Buffer size is out of range",
                "buffer_size",
                self.buffer_size,
            )
            .with_expected(format!("1 to {MAX_BUFFER_SIZE} frames"))
            .with_suggestion("use a power of two such as 256 or 512"));
        }
        if self.channels_in == 0 && self.channels_out == 0 {
            return Err(Error::invalid_range(
                "A stream needs at least one channel",
                "channels_in + channels_out",
                0,
            )
            .with_expected("channels_in > 0 or channels_out > 0")
            .with_suggestion("use channels_out = 2 for stereo playback"));
        }
        for (name, value) in [
            ("channels_in", self.channels_in),
            ("channels_out", self.channels_out),
        ] {
            if value > MAX_STREAM_CHANNELS {
                return Err(Error::invalid_range("Too many channels", name, value)
                    .with_expected(format!("at most {MAX_STREAM_CHANNELS}")));
            }
        }
        if let Some(rate) = self.input_rate
            && !(1..=MAX_SAMPLE_RATE).contains(&rate)
        {
            return Err(Error::invalid_sample_rate(
                rate,
                format!("an integer in 1..={MAX_SAMPLE_RATE}"),
            )
            .with_message(format!(
                "The input rate must be 1 to {MAX_SAMPLE_RATE} Hz, got {rate}"
            )));
        }
        if self.dtype != "float32" {
            return Err(Error::invalid_parameter(
                "Unsupported sample format",
                "dtype",
                &self.dtype,
            )
            .with_expected("float32")
            .with_suggestion(
                "rtfx processes float32; the backend converts the device's own format",
            ));
        }
        if let Latency::Seconds(s) = self.latency
            && (!s.is_finite() || s < 0.0)
        {
            return Err(Error::invalid_range(
                "Latency must be a non-negative number of seconds",
                "latency",
                s,
            )
            .with_suggestion("use Latency::Low, Latency::High or e.g. 0.01 s"));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_direction_follow_torchfx() {
        let c = StreamConfig::default();
        assert_eq!(c.latency, Latency::Low);
        assert_eq!((c.device_in.clone(), c.device_out.clone()), (None, None));
        assert_eq!(c.direction(), StreamDirection::Output);
        assert_eq!(
            c.clone().with_channels(2, 0).direction(),
            StreamDirection::Input
        );
        assert_eq!(
            c.clone().with_channels(0, 0).direction(),
            StreamDirection::Output
        );
        assert_eq!(
            c.clone().with_channels(1, 1).direction(),
            StreamDirection::Duplex
        );
        assert_eq!(StreamDirection::Duplex.to_string(), "duplex");
        assert_eq!(StreamState::Running.to_string(), "running");
        assert_eq!(
            StreamConfig::new(48000, 512).latency_ms(),
            10.666666666666666
        );
        c.validate().unwrap();
    }

    #[test]
    fn validation_names_the_field() {
        let e = StreamConfig::new(0, 512).validate().unwrap_err();
        assert!(matches!(e, Error::InvalidSampleRate(_)));
        assert!(e.to_string().contains("1..=768000"), "{e}");
        assert!(StreamConfig::new(768_001, 512).validate().is_err());
        StreamConfig::new(768_000, 512).validate().unwrap();
        StreamConfig::new(1, 1).validate().unwrap();
        let e = StreamConfig::new(48000, 0).validate().unwrap_err();
        assert_eq!(e.parameter_name(), Some("buffer_size"));
        assert!(matches!(e, Error::InvalidRange(_)));
        let e = StreamConfig::new(48000, 64)
            .with_channels(0, 0)
            .validate()
            .unwrap_err();
        assert!(e.to_string().contains("at least one channel"), "{e}");
        let e = StreamConfig::new(48000, 64)
            .with_channels(33, 2)
            .validate()
            .unwrap_err();
        assert_eq!(e.parameter_name(), Some("channels_in"));
        let c = StreamConfig {
            dtype: "int16".into(),
            ..StreamConfig::default()
        };
        assert_eq!(c.validate().unwrap_err().parameter_name(), Some("dtype"));
        let c = StreamConfig::default().with_latency(Latency::Seconds(f64::NAN));
        assert_eq!(c.validate().unwrap_err().parameter_name(), Some("latency"));
        let e = StreamConfig::default()
            .with_input_rate(Some(0))
            .validate()
            .unwrap_err();
        assert!(e.to_string().contains("input rate"), "{e}");
        assert!(
            StreamConfig::default()
                .with_input_rate(Some(44_100))
                .validate()
                .is_ok()
        );
    }

    #[test]
    fn status_xrun_excludes_priming() {
        let mut s = BackendStatus {
            priming_output: true,
            ..Default::default()
        };
        assert!(!s.has_xrun());
        for i in 0..4 {
            let mut t = BackendStatus::default();
            match i {
                0 => t.input_overflow = true,
                1 => t.output_underflow = true,
                2 => t.input_underflow = true,
                _ => t.output_overflow = true,
            }
            assert!(t.has_xrun());
            s = s.merge(t);
        }
        assert!(s.has_xrun() && s.priming_output && s.output_overflow);
    }

    #[test]
    fn device_selector_parses_index_or_name() {
        assert_eq!(DeviceSelector::parse(" 3 "), DeviceSelector::Index(3));
        assert_eq!(
            DeviceSelector::parse("Discard"),
            DeviceSelector::Name("Discard".into())
        );
        assert_eq!(DeviceSelector::Index(2).to_string(), "#2");
    }
}

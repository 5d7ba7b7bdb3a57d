//! [`CpalBackend`]: audio devices through cpal (ALSA, JACK, CoreAudio, WASAPI …), torchfx's
//! `SoundDeviceBackend`.
//!
//! - Devices are listed with their channels and default rate, and chosen by index or by a
//!   case-insensitive substring of their name ([`DeviceSelector`]).
//! - cpal has no duplex stream: a duplex stream is an input stream that writes into a
//!   lock-free ring and an output stream that reads it and runs the callback. When the input is
//!   late the output plays silence and the ring keeps one device buffer of slack from then on;
//!   until the pair has settled (a few callbacks after the first input) that counts as
//!   priming, later as an input-underflow xrun.
//! - Device buffers of any size are split or accumulated into callbacks of exactly
//!   `buffer_size` frames ([`BlockAdapter`]); cpal's `BufferSize::Fixed` is only a request.
//! - xruns that cpal reports through its error callback are passed to the next callback's
//!   [`BackendStatus`]; a stream that dies (device unplugged) is reported by
//!   [`AudioBackend::stream_error`].
//! - Errors name the fix: a busy device, a missing device or server, a permission problem.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};

use cpal::traits::{DeviceTrait, HostTrait, StreamTrait};

use super::backend::{
    AudioBackend, AudioCallback, BlockAdapter, BlockingIo, DeviceInfo, blocking_read,
    blocking_write, callback_or_blocking, check_open, check_start, check_stop, choose_device,
    open_failed,
};
use super::config::{
    BackendStatus, DeviceSelector, Latency, StreamConfig, StreamDirection, StreamState,
};
use crate::dsp::resample::Resampler;
use crate::error::{Error, Result};

/// Most frames the duplex path moves per piece (device buffers longer than this are handled
/// in pieces).
const PIECE_FRAMES: usize = 4096;
/// Input frames the duplex resampler takes at a time (callbacks are cut into such pieces).
const RESAMPLE_PIECE: usize = 4096;

/// Output callbacks after the first input during which a late input counts as priming, not as
/// an xrun (the input and output streams of a duplex pair start independently).
const SETTLE_CALLBACKS: usize = 8;

/// Flags the stream's error callback sets and the data callbacks read (atomics only).
#[derive(Default)]
struct StreamFlags {
    input_xrun: AtomicBool,
    output_xrun: AtomicBool,
    input_overflow: AtomicBool,
    /// 0 = healthy, else 1 + the index of the fatal [`cpal::ErrorKind`] in [`FATAL`].
    failed: AtomicU8,
    /// False while stopped: the data callbacks then play silence without calling the user's
    /// callback (some devices, like ALSA's null PCM, cannot pause).
    active: AtomicBool,
}

/// Error kinds after which the stream does not recover.
const FATAL: [cpal::ErrorKind; 3] = [
    cpal::ErrorKind::DeviceNotAvailable,
    cpal::ErrorKind::StreamInvalidated,
    cpal::ErrorKind::DeviceChanged,
];

impl StreamFlags {
    /// The status for the next callback; clears the flags it reports.
    fn take_status(&self) -> BackendStatus {
        BackendStatus {
            input_overflow: self.input_xrun.swap(false, Ordering::Relaxed)
                | self.input_overflow.swap(false, Ordering::Relaxed),
            output_underflow: self.output_xrun.swap(false, Ordering::Relaxed),
            ..BackendStatus::default()
        }
    }

    /// Records an error from cpal's error callback.
    fn record(&self, error: &cpal::Error, input: bool) {
        if error.kind() == cpal::ErrorKind::Xrun {
            if input {
                self.input_xrun.store(true, Ordering::Relaxed);
            } else {
                self.output_xrun.store(true, Ordering::Relaxed);
            }
        } else if let Some(i) = FATAL.iter().position(|k| *k == error.kind()) {
            self.failed.store(i as u8 + 1, Ordering::Relaxed);
        }
    }
}

/// The suggestion for a cpal error kind.
fn suggestion_for(kind: cpal::ErrorKind) -> Option<&'static str> {
    use cpal::ErrorKind as K;
    Some(match kind {
        K::DeviceBusy => {
            "another application is using the device: close it, or choose another device (`rtfx devices`)"
        }
        K::DeviceNotAvailable | K::DeviceChanged => {
            "the device is missing or was disconnected: reconnect it or choose another one (`rtfx devices`); for JACK, start the server (e.g. `jackd -d dummy -r 48000 -p 256`)"
        }
        K::HostUnavailable => {
            "the audio system is not running: start it (for JACK: `jackd -d dummy -r 48000 -p 256`) or choose another --host"
        }
        K::PermissionDenied => {
            "add your user to the 'audio' group (`sudo usermod -aG audio $USER`) and log in again"
        }
        K::RealtimeDenied => {
            "allow real-time scheduling: join the 'audio' group and set an rtprio limit in /etc/security/limits.d"
        }
        K::UnsupportedConfig => {
            "the device does not support this rate, buffer size, channel count or float32: try other --rate/--buffer values, or the 'default' device, which converts"
        }
        K::StreamInvalidated => "the stream must be rebuilt: stop and start again",
        K::ResourceExhausted => "close other audio applications and try again",
        _ => return None,
    })
}

/// A stream error from a cpal error, with a suggestion.
fn from_cpal(context: &str, error: &cpal::Error) -> Error {
    let e = Error::stream(format!("{context}: {error}"));
    match suggestion_for(error.kind()) {
        Some(s) => e.with_suggestion(s),
        None => e,
    }
}

/// The error for a device that cannot run `channels` channels at `rate` Hz, given its
/// configurations `(channels, min rate, max rate)`; `None` when one fits or none is listed
/// (some hosts list nothing and let the stream decide).
fn device_support_error(
    name: &str,
    ranges: &[(usize, u32, u32)],
    channels: usize,
    rate: u32,
    input: bool,
) -> Option<Error> {
    if ranges.is_empty() {
        return None;
    }
    let kind = if input { "input" } else { "output" };
    let max = ranges.iter().map(|r| r.0).max().unwrap_or(0);
    if channels > max {
        return Some(
            Error::invalid_range(
                format!("Device '{name}' has at most {max} {kind} channels"),
                if input { "channels_in" } else { "channels_out" },
                channels,
            )
            .with_expected(format!("at most {max}"))
            .with_suggestion("use fewer channels or choose another device (`rtfx devices`)"),
        );
    }
    let usable: Vec<&(usize, u32, u32)> = ranges.iter().filter(|r| r.0 >= channels).collect();
    if usable.iter().any(|r| (r.1..=r.2).contains(&rate)) {
        return None;
    }
    let mut spans: Vec<String> = usable
        .iter()
        .map(|r| {
            if r.1 == r.2 {
                format!("{} Hz", r.1)
            } else {
                format!("{}–{} Hz", r.1, r.2)
            }
        })
        .collect();
    spans.sort();
    spans.dedup();
    Some(
        Error::invalid_sample_rate(rate, spans.join(", "))
            .with_message(format!(
                "Device '{name}' does not support {rate} Hz for {channels} {kind} channels"
            ))
            .with_suggestion(if input {
                "choose a supported --rate, or --input-rate for the input device of a duplex stream (rtfx resamples the input to the stream's rate)"
            } else {
                "choose a supported --rate (the output device sets the stream's rate)"
            }),
    )
}

/// Audio devices through cpal; see the [module docs](self).
pub struct CpalBackend {
    host: cpal::Host,
    name: String,
    state: StreamState,
    input: Option<cpal::Stream>,
    output: Option<cpal::Stream>,
    blocking: Option<BlockingIo>,
    flags: Arc<StreamFlags>,
    opened: bool,
    device_buffer: Option<usize>,
    /// The input device's rate when a duplex stream resamples it.
    input_resampled_from: Option<u32>,
}

impl CpalBackend {
    /// The backend on the system's default host (ALSA on Linux).
    pub fn new() -> Self {
        Self::from_host(cpal::default_host())
    }

    fn from_host(host: cpal::Host) -> Self {
        let name = format!("cpal ({})", host.id().name());
        Self {
            host,
            name,
            state: StreamState::Closed,
            input: None,
            output: None,
            blocking: None,
            flags: Arc::new(StreamFlags::default()),
            opened: false,
            device_buffer: None,
            input_resampled_from: None,
        }
    }

    /// The names of the hosts compiled in, and of those available now.
    pub fn hosts() -> (Vec<&'static str>, Vec<&'static str>) {
        (
            cpal::ALL_HOSTS.iter().map(|h| h.name()).collect(),
            cpal::available_hosts().iter().map(|h| h.name()).collect(),
        )
    }

    /// The backend on a named host ("alsa", "jack", … case-insensitive).
    pub fn with_host(name: &str) -> Result<Self> {
        let wanted = name.trim().to_lowercase();
        let Some(id) = cpal::ALL_HOSTS
            .iter()
            .find(|h| h.name().to_lowercase() == wanted)
        else {
            let (all, _) = Self::hosts();
            return Err(Error::backend_not_available(name)
                .with_suggestion(format!("this build knows the hosts: {}", all.join(", "))));
        };
        match cpal::host_from_id(*id) {
            Ok(host) => Ok(Self::from_host(host)),
            Err(e) => {
                let suggestion = if wanted == "jack" {
                    "install JACK (Debian: jackd2) and start a server, e.g. `jackd --no-realtime -d dummy -r 48000 -p 256`".to_string()
                } else {
                    suggestion_for(e.kind())
                        .unwrap_or("choose another --host")
                        .to_string()
                };
                Err(Error::backend_not_available(id.name())
                    .with_message(format!(
                        "Audio backend '{}' is not available: {e}",
                        id.name()
                    ))
                    .with_suggestion(suggestion))
            }
        }
    }

    /// The cpal host's name, e.g. "ALSA" or "JACK".
    pub fn host_name(&self) -> &'static str {
        self.host.id().name()
    }

    /// The devices and their cpal handles, in listing order.
    fn list(&self) -> Result<Vec<(DeviceInfo, cpal::Device)>> {
        let devices = self
            .host
            .devices()
            .map_err(|e| from_cpal("Could not list audio devices", &e))?;
        let default_in = self.host.default_input_device();
        let default_out = self.host.default_output_device();
        let mut out = Vec::new();
        for (index, device) in devices.enumerate() {
            let name = device
                .description()
                .map(|d| d.name().to_string())
                .unwrap_or_else(|_| device.to_string());
            let max_in = device
                .supported_input_configs()
                .map(|it| it.map(|c| usize::from(c.channels())).max().unwrap_or(0))
                .unwrap_or(0);
            let max_out = device
                .supported_output_configs()
                .map(|it| it.map(|c| usize::from(c.channels())).max().unwrap_or(0))
                .unwrap_or(0);
            let rate = device
                .default_output_config()
                .or_else(|_| device.default_input_config())
                .map(|c| f64::from(c.sample_rate()))
                .unwrap_or(0.0);
            out.push((
                DeviceInfo {
                    index,
                    name,
                    max_input_channels: max_in,
                    max_output_channels: max_out,
                    default_sample_rate: rate,
                    is_default_input: default_in.as_ref() == Some(&device),
                    is_default_output: default_out.as_ref() == Some(&device),
                },
                device,
            ));
        }
        Ok(out)
    }

    /// The device for a direction: the selected one, or the host's default.
    fn find(
        &self,
        selector: Option<&DeviceSelector>,
        input: bool,
    ) -> Result<(String, cpal::Device)> {
        let kind = if input { "input" } else { "output" };
        if self.host.id().name() == "JACK"
            && self.host.devices().map_or(true, |mut d| d.next().is_none())
        {
            return Err(Error::backend_not_available("JACK")
                .with_message("No JACK server is running")
                .with_suggestion(
                    "start one, e.g. `jackd -d alsa` with a sound card or `jackd --no-realtime -d dummy -r 48000 -p 256` without; or choose --host alsa",
                ));
        }
        match selector {
            None => {
                let device = if input {
                    self.host.default_input_device()
                } else {
                    self.host.default_output_device()
                };
                let device = device.ok_or_else(|| {
                    Error::stream(format!("No default {kind} device on {}", self.name))
                        .with_suggestion(format!(
                            "choose a device with --{kind} (see `rtfx devices`); on a machine without a sound card use ALSA's null device ('Discard') or a JACK dummy server"
                        ))
                })?;
                let name = device
                    .description()
                    .map(|d| d.name().to_string())
                    .unwrap_or_else(|_| device.to_string());
                Ok((name, device))
            }
            Some(sel) => {
                let list = self.list()?;
                let infos: Vec<DeviceInfo> = list.iter().map(|(i, _)| i.clone()).collect();
                let chosen = choose_device(&infos, sel, input)?.index;
                list.into_iter()
                    .find(|(i, _)| i.index == chosen)
                    .map(|(i, d)| (i.name, d))
                    .ok_or_else(|| Error::stream(format!("The {kind} device {sel} disappeared")))
            }
        }
    }

    /// cpal's stream configuration for `channels` channels.
    fn cpal_config(
        &self,
        config: &StreamConfig,
        channels: usize,
        fixed: bool,
    ) -> cpal::StreamConfig {
        let buffer_size = match config.latency {
            Latency::Low if fixed => cpal::BufferSize::Fixed(config.buffer_size as u32),
            Latency::Seconds(s) if fixed => {
                cpal::BufferSize::Fixed(((s * f64::from(config.sample_rate)).round() as u32).max(1))
            }
            _ => cpal::BufferSize::Default,
        };
        cpal::StreamConfig {
            channels: channels as u16,
            sample_rate: config.sample_rate,
            buffer_size,
        }
    }

    /// Checks that `device` has `channels` channels in a direction and supports `rate`; the
    /// errors name the device, what it supports and the option to change.
    fn check_device(
        device: &cpal::Device,
        name: &str,
        channels: usize,
        rate: u32,
        input: bool,
    ) -> Result<()> {
        let ranges: Vec<(usize, u32, u32)> = if input {
            device.supported_input_configs().map(|it| {
                it.map(|c| {
                    (
                        usize::from(c.channels()),
                        c.min_sample_rate(),
                        c.max_sample_rate(),
                    )
                })
                .collect()
            })
        } else {
            device.supported_output_configs().map(|it| {
                it.map(|c| {
                    (
                        usize::from(c.channels()),
                        c.min_sample_rate(),
                        c.max_sample_rate(),
                    )
                })
                .collect()
            })
        }
        .unwrap_or_default();
        device_support_error(name, &ranges, channels, rate, input).map_or(Ok(()), Err)
    }

    /// Builds the streams for `config`, running `callback` through a block adapter.
    fn build(&mut self, config: &StreamConfig, callback: AudioCallback) -> Result<()> {
        let (cin, cout) = (config.channels_in, config.channels_out);
        let direction = config.direction();
        let flags = Arc::new(StreamFlags::default());
        self.flags = flags.clone();
        let mut adapter = BlockAdapter::new(config.buffer_size, cin, cout, callback);
        match direction {
            StreamDirection::Output => {
                let (name, device) = self.find(config.device_out.as_ref(), false)?;
                Self::check_device(&device, &name, cout, config.sample_rate, false)?;
                let f = flags.clone();
                let stream = self.build_output(
                    &device,
                    config,
                    cout,
                    move |data| {
                        if !f.active.load(Ordering::Acquire) {
                            data.fill(0.0);
                            return;
                        }
                        let frames = data.len() / cout;
                        adapter.process_interleaved(&[], data, frames, f.take_status());
                    },
                    flags.clone(),
                )?;
                self.output = Some(stream);
            }
            StreamDirection::Input => {
                let (name, device) = self.find(config.device_in.as_ref(), true)?;
                Self::check_device(&device, &name, cin, config.sample_rate, true)?;
                let f = flags.clone();
                let stream = self.build_input(
                    &device,
                    config,
                    cin,
                    move |data| {
                        if !f.active.load(Ordering::Acquire) {
                            return;
                        }
                        let frames = data.len() / cin;
                        adapter.process_interleaved(data, &mut [], frames, f.take_status());
                    },
                    flags.clone(),
                )?;
                self.input = Some(stream);
            }
            StreamDirection::Duplex => {
                let (in_name, in_dev) = self.find(config.device_in.as_ref(), true)?;
                let (out_name, out_dev) = self.find(config.device_out.as_ref(), false)?;
                Self::check_device(&out_dev, &out_name, cout, config.sample_rate, false)?;
                let in_rate = Self::duplex_input_rate(&in_dev, &in_name, cin, config)?;
                // The input runs at its own rate and is resampled to the stream's in its
                // callback, before the ring (no allocation there: the converter and its output
                // buffer are made here).
                let in_config = StreamConfig {
                    sample_rate: in_rate,
                    buffer_size: (config.buffer_size as u64 * u64::from(in_rate))
                        .div_ceil(u64::from(config.sample_rate))
                        .max(1) as usize,
                    ..config.clone()
                };
                let mut resampler = if in_rate == config.sample_rate {
                    None
                } else {
                    Some(Resampler::new(
                        in_rate,
                        config.sample_rate,
                        cin,
                        RESAMPLE_PIECE,
                    )?)
                };
                let mut resampled = vec![
                    0.0f32;
                    resampler
                        .as_ref()
                        .map_or(0, |r| r.max_output(RESAMPLE_PIECE))
                        * cin
                ];
                self.input_resampled_from = resampler.as_ref().map(|_| in_rate);
                let capacity = (config.buffer_size * 8).max(PIECE_FRAMES * 2) * cin;
                let (mut tx, mut rx) = rtrb::RingBuffer::<f32>::new(capacity);
                let started = Arc::new(AtomicBool::new(false));
                let (f_in, started_in) = (flags.clone(), started.clone());
                let input = self.build_input(
                    &in_dev,
                    &in_config,
                    cin,
                    move |data| {
                        if !f_in.active.load(Ordering::Acquire) {
                            return;
                        }
                        started_in.store(true, Ordering::Release);
                        let mut push = |frames: &[f32]| {
                            let fit = (tx.slots() / cin * cin).min(frames.len());
                            let _ = tx.push_partial_slice(&frames[..fit]);
                            if fit < frames.len() {
                                f_in.input_overflow.store(true, Ordering::Relaxed);
                            }
                        };
                        match resampler.as_mut() {
                            None => push(data),
                            Some(r) => {
                                for piece in data.chunks(RESAMPLE_PIECE * cin) {
                                    let n = r.process(piece, &mut resampled);
                                    push(&resampled[..n * cin]);
                                }
                            }
                        }
                    },
                    flags.clone(),
                )?;
                let mut scratch = vec![0.0f32; PIECE_FRAMES * cin];
                let mut settled = 0usize;
                let f_out = flags.clone();
                let output = self.build_output(
                    &out_dev,
                    config,
                    cout,
                    move |data| {
                        if !f_out.active.load(Ordering::Acquire) {
                            data.fill(0.0);
                            return;
                        }
                        let frames = data.len() / cout;
                        let mut status = f_out.take_status();
                        let mut pos = 0;
                        if started.load(Ordering::Acquire) {
                            settled = settled.saturating_add(1);
                        }
                        while pos < frames {
                            let n = (frames - pos).min(PIECE_FRAMES);
                            let wanted = &mut scratch[..n * cin];
                            // Whole pieces only: when the input is late, play silence and leave
                            // the ring as it is, so it runs one device buffer ahead from then on.
                            if rx.slots() >= wanted.len() {
                                let _ = rx.pop_partial_slice(wanted);
                            } else {
                                wanted.fill(0.0);
                                if settled > SETTLE_CALLBACKS {
                                    status.input_underflow = true;
                                } else {
                                    status.priming_output = true;
                                }
                            }
                            adapter.process_interleaved(
                                &scratch[..n * cin],
                                &mut data[pos * cout..(pos + n) * cout],
                                n,
                                status,
                            );
                            status = BackendStatus::default();
                            pos += n;
                        }
                    },
                    flags.clone(),
                )?;
                self.input = Some(input);
                self.output = Some(output);
            }
        }
        self.device_buffer = self
            .output
            .as_ref()
            .or(self.input.as_ref())
            .and_then(|s| s.buffer_size().ok())
            .map(|n| n as usize);
        Ok(())
    }

    /// The rate to run a duplex stream's input device at: `config.input_rate` when given
    /// (checked), else the stream's rate when the device supports it, else the device's own
    /// default rate (which the stream then resamples). The error names what the device supports.
    fn duplex_input_rate(
        device: &cpal::Device,
        name: &str,
        channels: usize,
        config: &StreamConfig,
    ) -> Result<u32> {
        if let Some(rate) = config.input_rate {
            Self::check_device(device, name, channels, rate, true)?;
            return Ok(rate);
        }
        match Self::check_device(device, name, channels, config.sample_rate, true) {
            Ok(()) => Ok(config.sample_rate),
            Err(e) => {
                let own = device.default_input_config().ok().map(|c| c.sample_rate());
                match own {
                    Some(rate)
                        if Self::check_device(device, name, channels, rate, true).is_ok() =>
                    {
                        Ok(rate)
                    }
                    _ => Err(e),
                }
            }
        }
    }

    /// Whether the device accepts a fixed buffer of the configured size (cpal fails to open
    /// streams with a fixed size outside the device's range, so ask only when it fits).
    fn fixed_fits(
        device: &cpal::Device,
        config: &StreamConfig,
        channels: usize,
        input: bool,
    ) -> bool {
        let fits = |range: cpal::SupportedStreamConfigRange| {
            usize::from(range.channels()) >= channels
                && range.min_sample_rate() <= config.sample_rate
                && config.sample_rate <= range.max_sample_rate()
                && match range.buffer_size() {
                    cpal::SupportedBufferSize::Range { min, max } => {
                        (*min as usize..=*max as usize).contains(&config.buffer_size)
                    }
                    cpal::SupportedBufferSize::Unknown => true,
                }
        };
        if input {
            device
                .supported_input_configs()
                .map(|mut it| it.any(fits))
                .unwrap_or(false)
        } else {
            device
                .supported_output_configs()
                .map(|mut it| it.any(fits))
                .unwrap_or(false)
        }
    }

    /// An output stream calling `fill` with each interleaved device buffer.
    fn build_output(
        &self,
        device: &cpal::Device,
        config: &StreamConfig,
        channels: usize,
        mut fill: impl FnMut(&mut [f32]) + Send + 'static,
        flags: Arc<StreamFlags>,
    ) -> Result<cpal::Stream> {
        let fixed = Self::fixed_fits(device, config, channels, false);
        device
            .build_output_stream::<f32, _, _>(
                self.cpal_config(config, channels, fixed),
                move |data: &mut [f32], _: &cpal::OutputCallbackInfo| fill(data),
                move |e| flags.record(&e, false),
                None,
            )
            .map_err(|e| from_cpal("Could not open the output stream", &e))
    }

    /// An input stream calling `take` with each interleaved device buffer.
    fn build_input(
        &self,
        device: &cpal::Device,
        config: &StreamConfig,
        channels: usize,
        mut take: impl FnMut(&[f32]) + Send + 'static,
        flags: Arc<StreamFlags>,
    ) -> Result<cpal::Stream> {
        let fixed = Self::fixed_fits(device, config, channels, true);
        device
            .build_input_stream::<f32, _, _>(
                self.cpal_config(config, channels, fixed),
                move |data: &[f32], _: &cpal::InputCallbackInfo| take(data),
                move |e| flags.record(&e, true),
                None,
            )
            .map_err(|e| from_cpal("Could not open the input stream", &e))
    }

    /// Drops the streams.
    fn release(&mut self) {
        self.input = None;
        self.output = None;
        self.blocking = None;
        self.device_buffer = None;
        self.input_resampled_from = None;
        self.opened = false;
    }

    /// Runs `op` on every stream, stopping at the first error.
    fn each_stream(
        &self,
        op: impl Fn(&cpal::Stream) -> std::result::Result<(), cpal::Error>,
        what: &str,
    ) -> Result<()> {
        for stream in self.input.iter().chain(self.output.iter()) {
            op(stream).map_err(|e| from_cpal(what, &e))?;
        }
        Ok(())
    }
}

impl AudioBackend for CpalBackend {
    fn name(&self) -> &str {
        &self.name
    }

    fn is_available(&self) -> bool {
        cpal::available_hosts().contains(&self.host.id())
    }

    fn state(&self) -> StreamState {
        self.state
    }

    fn devices(&self) -> Result<Vec<DeviceInfo>> {
        Ok(self.list()?.into_iter().map(|(i, _)| i).collect())
    }

    fn default_device(&self, direction: StreamDirection) -> Result<Option<usize>> {
        let list = self.list()?;
        let input = direction != StreamDirection::Output;
        Ok(list
            .iter()
            .find(|(i, _)| {
                if input {
                    i.is_default_input
                } else {
                    i.is_default_output
                }
            })
            .map(|(i, _)| i.index))
    }

    fn open_stream(
        &mut self,
        config: &StreamConfig,
        callback: Option<AudioCallback>,
    ) -> Result<()> {
        check_open(self.state)?;
        self.release();
        let built = config.validate().and_then(|()| {
            let callback = callback_or_blocking(config, callback, &mut self.blocking)?;
            self.build(config, callback)
        });
        match built {
            Ok(()) => {
                self.opened = true;
                self.state = StreamState::Open;
                Ok(())
            }
            Err(e) => {
                self.release();
                self.state = StreamState::Error;
                let mut err = open_failed(e.message());
                let details = e.details();
                if let Some(s) = &details.suggestion {
                    err = err.with_suggestion(s.clone());
                }
                if let Some(p) = &details.parameter_name {
                    err = err.with_parameter_name(p.clone());
                }
                if let Some(x) = &details.expected {
                    err = err.with_expected(x.clone());
                }
                Err(err)
            }
        }
    }

    fn start(&mut self) -> Result<()> {
        check_start(self.state)?;
        if !self.opened {
            return Err(Error::stream("Cannot start stream: stream is not open"));
        }
        self.flags.active.store(true, Ordering::Release);
        // Output first, so a duplex stream's input never waits on a stopped output.
        for stream in self.output.iter().chain(self.input.iter()) {
            stream
                .play()
                .map_err(|e| from_cpal("Could not start the audio stream", &e))?;
        }
        if let Some(io) = self.blocking.as_mut() {
            io.set_running(true);
        }
        self.state = StreamState::Running;
        Ok(())
    }

    fn stop(&mut self) -> Result<()> {
        check_stop(self.state)?;
        self.state = StreamState::Stopped;
        if let Some(io) = self.blocking.as_mut() {
            io.set_running(false);
        }
        // The callbacks stop calling the user at once; pausing the device only saves work, and
        // devices that cannot pause (ALSA's null PCM) keep running silently until closed.
        self.flags.active.store(false, Ordering::Release);
        let _ = self.each_stream(|s| s.pause(), "Could not stop the audio stream");
        Ok(())
    }

    fn close(&mut self) {
        self.flags.active.store(false, Ordering::Release);
        if self.state == StreamState::Running {
            let _ = self.each_stream(|s| s.pause(), "");
        }
        self.release();
        self.state = StreamState::Closed;
    }

    fn read(&mut self, out: &mut [&mut [f32]]) -> Result<()> {
        blocking_read(self.blocking.as_mut(), self.opened, out)
    }

    fn write(&mut self, data: &[&[f32]]) -> Result<()> {
        blocking_write(self.blocking.as_mut(), self.opened, data)
    }

    fn device_buffer_size(&self) -> Option<usize> {
        self.device_buffer
    }

    fn input_resampled_from(&self) -> Option<u32> {
        self.input_resampled_from
    }

    fn stream_error(&self) -> Option<Error> {
        let code = self.flags.failed.load(Ordering::Relaxed);
        let kind = *FATAL.get(usize::from(code).checked_sub(1)?)?;
        Some(from_cpal(
            "The audio stream failed",
            &cpal::Error::new(kind),
        ))
    }
}

impl Default for CpalBackend {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn device_errors_name_the_fix() {
        let e = from_cpal(
            "Could not open the output stream",
            &cpal::Error::new(cpal::ErrorKind::DeviceBusy),
        );
        assert!(
            e.message()
                .starts_with("Could not open the output stream: ")
        );
        assert!(e.suggestion().unwrap().contains("close it"), "{e}");
        let e = from_cpal("x", &cpal::Error::new(cpal::ErrorKind::PermissionDenied));
        assert!(e.suggestion().unwrap().contains("'audio' group"), "{e}");
        let e = from_cpal("x", &cpal::Error::new(cpal::ErrorKind::DeviceNotAvailable));
        assert!(e.suggestion().unwrap().contains("jackd -d dummy"), "{e}");
        let e = from_cpal("x", &cpal::Error::new(cpal::ErrorKind::RealtimeDenied));
        assert!(e.suggestion().unwrap().contains("rtprio"), "{e}");
        assert!(e.is_realtime());
        assert!(suggestion_for(cpal::ErrorKind::Other).is_none());
    }

    #[test]
    fn xrun_flags_reach_the_next_status_once() {
        let flags = StreamFlags::default();
        flags.record(&cpal::Error::new(cpal::ErrorKind::Xrun), true);
        flags.record(&cpal::Error::new(cpal::ErrorKind::Xrun), false);
        let s = flags.take_status();
        assert!(s.input_overflow && s.output_underflow && s.has_xrun());
        assert!(!flags.take_status().has_xrun());
        assert_eq!(flags.failed.load(Ordering::Relaxed), 0);
        flags.record(
            &cpal::Error::new(cpal::ErrorKind::DeviceNotAvailable),
            false,
        );
        assert_eq!(flags.failed.load(Ordering::Relaxed), 1);
    }

    #[test]
    fn unsupported_channels_and_rates_are_named() {
        let ranges = [(2, 44100, 48000), (2, 96000, 96000), (8, 48000, 48000)];
        assert!(device_support_error("dev", &ranges, 2, 48000, false).is_none());
        assert!(device_support_error("dev", &ranges, 8, 48000, true).is_none());
        assert!(device_support_error("dev", &[], 99, 1, true).is_none());
        let e = device_support_error("dev", &ranges, 9, 48000, false).unwrap();
        assert_eq!(e.parameter_name(), Some("channels_out"));
        assert!(e.message().contains("at most 8 output channels"), "{e}");
        let e = device_support_error("USB mic", &ranges, 2, 22050, true).unwrap();
        assert!(matches!(e, Error::InvalidSampleRate(_)));
        let text = e.to_string();
        assert!(
            text.contains("Device 'USB mic' does not support 22050 Hz for 2 input channels"),
            "{text}"
        );
        assert!(
            text.contains("44100–48000 Hz, 48000 Hz, 96000 Hz"),
            "{text}"
        );
        assert!(text.contains("--rate"), "{text}");
    }

    #[test]
    fn unknown_hosts_are_refused_with_the_list() {
        let e = CpalBackend::with_host("nosuchhost").err().unwrap();
        assert!(matches!(e, Error::BackendNotAvailable { .. }));
        assert!(e.suggestion().unwrap().contains("ALSA"), "{e}");
    }
}

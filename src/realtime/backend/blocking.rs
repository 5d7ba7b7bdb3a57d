//! Blocking I/O (`open_stream(config, None)`, then `read` and `write`) on any backend: an
//! internal callback moves audio between the device and two rings, which the application
//! side ([`BlockingIo`]) reads and writes with a timeout.

use std::time::{Duration, Instant};

use super::AudioCallback;
use crate::error::{Error, Result};
use crate::realtime::config::StreamConfig;
use crate::realtime::ring::{RingConsumer, RingProducer, ring_buffer};

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

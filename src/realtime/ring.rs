//! A multichannel single-producer single-consumer ring buffer of audio frames (torchfx
//! `TensorRingBuffer`), lock-free over [`rtrb`].
//!
//! [`ring_buffer`] returns the two halves, [`RingProducer`] and [`RingConsumer`], each `Send`,
//! so one thread writes while another reads. Frames are stored interleaved in one `rtrb` queue,
//! so a frame's channels always travel together. The capacity (in frames) is rounded up to a
//! power of two. Reads copy into the caller's planar buffers and writes copy from them: nothing
//! on the read or write path allocates, locks or blocks ([`RingConsumer::read_vec`] is the one
//! allocating convenience, for use off the audio path). Error paths (a channel mismatch, an
//! underrun) build an error and so allocate: the audio path checks sizes first.
//!
//! ```
//! use rtfx::realtime::ring_buffer;
//!
//! let (mut tx, mut rx) = ring_buffer(300, 2).unwrap();
//! assert_eq!(tx.capacity(), 512);
//! let left = [1.0f32, 2.0, 3.0];
//! let right = [-1.0f32, -2.0, -3.0];
//! assert_eq!(tx.write(&[&left, &right]).unwrap(), 3);
//! let (mut l, mut r) = ([0.0f32; 2], [0.0f32; 2]);
//! rx.read(&mut [&mut l, &mut r]).unwrap();
//! assert_eq!((l, r), ([1.0, 2.0], [-1.0, -2.0]));
//! assert_eq!(rx.available_read(), 1);
//! let e = rx.read(&mut [&mut l, &mut r]).unwrap_err();
//! assert_eq!(e.message(), "Requested 2 samples but only 1 available");
//! ```

use rtrb::RingBuffer;

use crate::error::{Error, Result};

/// The writing half of a ring (see the [module docs](self)).
pub struct RingProducer {
    tx: rtrb::Producer<f32>,
    channels: usize,
    capacity: usize,
}

/// The reading half of a ring (see the [module docs](self)).
pub struct RingConsumer {
    rx: rtrb::Consumer<f32>,
    channels: usize,
    capacity: usize,
}

/// Creates a ring of at least `capacity` frames (rounded up to a power of two) of `channels`
/// channels, and returns its two halves.
///
/// Fails with torchfx's messages on a zero capacity ("Capacity must be positive, got 0") or a
/// zero channel count ("Channels must be positive, got 0").
pub fn ring_buffer(capacity: usize, channels: usize) -> Result<(RingProducer, RingConsumer)> {
    if capacity == 0 {
        return Err(
            Error::invalid_range("Capacity must be positive, got 0", "capacity", capacity)
                .with_expected("at least 1 frame"),
        );
    }
    if channels == 0 {
        return Err(
            Error::invalid_range("Channels must be positive, got 0", "channels", channels)
                .with_expected("at least 1 channel"),
        );
    }
    let Some(frames) = capacity.checked_next_power_of_two() else {
        return Err(
            Error::invalid_range("Capacity is too large", "capacity", capacity)
                .with_expected(format!("at most {}", 1usize << (usize::BITS - 1))),
        );
    };
    let Some(slots) = frames.checked_mul(channels) else {
        return Err(Error::invalid_range(
            "Capacity × channels is too large",
            "capacity",
            capacity,
        ));
    };
    let (tx, rx) = RingBuffer::new(slots);
    Ok((
        RingProducer {
            tx,
            channels,
            capacity: frames,
        },
        RingConsumer {
            rx,
            channels,
            capacity: frames,
        },
    ))
}

/// The error for a block with the wrong number of channels.
fn channel_mismatch(ring: usize, data: usize) -> Error {
    Error::invalid_parameter(
        format!("Channel mismatch: buffer has {ring} channels, data has {data} channels"),
        "channels",
        data,
    )
    .with_expected(format!("{ring} channels"))
}

/// Frames in a planar block whose channels must all have the same length.
fn block_frames(lens: impl Iterator<Item = usize>) -> Result<usize> {
    let mut frames = None;
    for len in lens {
        match frames {
            None => frames = Some(len),
            Some(f) if f != len => {
                return Err(Error::invalid_parameter(
                    "Channels of a block must have the same length",
                    "frames",
                    format!("{f} and {len}"),
                ));
            }
            Some(_) => {}
        }
    }
    Ok(frames.unwrap_or(0))
}

impl RingProducer {
    /// Capacity in frames (a power of two).
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Channels per frame.
    pub fn channels(&self) -> usize {
        self.channels
    }

    /// Frames that can be written now.
    pub fn available_write(&self) -> usize {
        self.tx.slots() / self.channels
    }

    /// Frames that can be read now (as seen from the writing side).
    pub fn available_read(&self) -> usize {
        self.capacity - self.available_write()
    }

    /// True when the reading half was dropped.
    pub fn is_abandoned(&self) -> bool {
        self.tx.is_abandoned()
    }

    /// Writes as many leading frames of the planar block `data` as fit and returns how many
    /// were written (0 when full); the rest is dropped. Never allocates on success.
    ///
    /// Fails when `data` has another channel count than the ring ("Channel mismatch: buffer
    /// has A channels, data has B channels") or channels of different lengths.
    pub fn write(&mut self, data: &[&[f32]]) -> Result<usize> {
        if data.len() != self.channels {
            return Err(channel_mismatch(self.channels, data.len()));
        }
        let frames = block_frames(data.iter().map(|c| c.len()))?;
        Ok(self.write_frames(data, 0, frames))
    }

    /// Writes frames `start..start + frames` of `data` (which has the ring's channel count),
    /// as many as fit; returns the count written. The audio-path form of [`RingProducer::write`].
    /// Extra channels in `data` are ignored; fewer than the ring's, or frames beyond a
    /// channel's end, write nothing.
    pub fn write_frames(&mut self, data: &[&[f32]], start: usize, frames: usize) -> usize {
        let ch = self.channels;
        let n = frames.min(self.available_write());
        if n == 0 || data.len() < ch || data[..ch].iter().any(|c| c.len() < start + n) {
            return 0;
        }
        let Ok(mut chunk) = self.tx.write_chunk(n * ch) else {
            return 0;
        };
        let (a, b) = chunk.as_mut_slices();
        let first = a.len() / ch;
        interleave(a, &data[..ch], start);
        interleave(b, &data[..ch], start + first);
        chunk.commit_all();
        n
    }

    /// Writes `frames` frames of silence, as many as fit; returns the count written.
    pub fn write_silence(&mut self, frames: usize) -> usize {
        let n = frames.min(self.available_write());
        if n == 0 {
            return 0;
        }
        let Ok(mut chunk) = self.tx.write_chunk(n * self.channels) else {
            return 0;
        };
        let (a, b) = chunk.as_mut_slices();
        a.fill(0.0);
        b.fill(0.0);
        chunk.commit_all();
        n
    }
}

impl RingConsumer {
    /// Capacity in frames (a power of two).
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Channels per frame.
    pub fn channels(&self) -> usize {
        self.channels
    }

    /// Frames that can be read now.
    pub fn available_read(&self) -> usize {
        self.rx.slots() / self.channels
    }

    /// Frames that can be written now (as seen from the reading side).
    pub fn available_write(&self) -> usize {
        self.capacity - self.available_read()
    }

    /// True when the writing half was dropped.
    pub fn is_abandoned(&self) -> bool {
        self.rx.is_abandoned()
    }

    /// Checks `out`'s shape and returns its frame count.
    fn out_frames(&self, out: &[&mut [f32]]) -> Result<usize> {
        if out.len() != self.channels {
            return Err(channel_mismatch(self.channels, out.len()));
        }
        block_frames(out.iter().map(|c| c.len()))
    }

    /// Reads exactly as many frames as `out` holds and advances. Fails with torchfx's
    /// underrun error ("Requested n samples but only a available") and reads nothing when
    /// fewer are available.
    pub fn read(&mut self, out: &mut [&mut [f32]]) -> Result<()> {
        let n = self.out_frames(out)?;
        let available = self.available_read();
        if n > available {
            return Err(underrun(
                n,
                available,
                "Reduce read size or wait for more data",
            ));
        }
        self.copy_out(out, 0, n, true);
        Ok(())
    }

    /// Like [`RingConsumer::read`] without advancing.
    pub fn peek(&mut self, out: &mut [&mut [f32]]) -> Result<()> {
        let n = self.out_frames(out)?;
        let available = self.available_read();
        if n > available {
            return Err(underrun(
                n,
                available,
                "Reduce peek size or wait for more data",
            ));
        }
        self.copy_out(out, 0, n, false);
        Ok(())
    }

    /// Reads up to `frames` frames into `out[..][start..]` (which has the ring's channel
    /// count) and advances; returns the count read. The audio-path form of
    /// [`RingConsumer::read`]: never fails, never allocates.
    ///
    /// Extra channels in `out` are left alone; fewer than the ring's, or too short channels,
    /// read nothing.
    pub fn read_frames(&mut self, out: &mut [&mut [f32]], start: usize, frames: usize) -> usize {
        let n = frames.min(self.available_read());
        if out.len() < self.channels || out[..self.channels].iter().any(|c| c.len() < start + n) {
            return 0;
        }
        self.copy_out(out, start, n, true)
    }

    /// Copies `n` (≤ available) frames into `out[..][start..]`, committing when `advance`.
    fn copy_out(&mut self, out: &mut [&mut [f32]], start: usize, n: usize, advance: bool) -> usize {
        let ch = self.channels;
        if n == 0 {
            return 0;
        }
        let Ok(chunk) = self.rx.read_chunk(n * ch) else {
            return 0;
        };
        let (a, b) = chunk.as_slices();
        let first = a.len() / ch;
        let out = &mut out[..ch];
        deinterleave(a, out, start);
        deinterleave(b, out, start + first);
        if advance {
            chunk.commit_all();
        }
        n
    }

    /// Skips `frames` frames. Fails with "Cannot advance n samples, only a available" (no
    /// suggestion, as in torchfx) when fewer are available.
    pub fn advance_read(&mut self, frames: usize) -> Result<()> {
        let available = self.available_read();
        if frames > available {
            return Err(Error::buffer_underrun(format!(
                "Cannot advance {frames} samples, only {available} available"
            )));
        }
        self.discard(frames);
        Ok(())
    }

    /// Skips up to `frames` frames; returns the count skipped. Never allocates.
    pub fn discard(&mut self, frames: usize) -> usize {
        let n = frames.min(self.available_read());
        if n > 0
            && let Ok(chunk) = self.rx.read_chunk(n * self.channels)
        {
            chunk.commit_all();
        }
        n
    }

    /// Empties the ring (the reading side's `clear`: everything written so far is dropped).
    pub fn clear(&mut self) {
        self.discard(usize::MAX);
    }

    /// Reads `frames` frames into new planar vectors (allocates: not for the audio path).
    pub fn read_vec(&mut self, frames: usize) -> Result<Vec<Vec<f32>>> {
        let available = self.available_read();
        if frames > available {
            return Err(underrun(
                frames,
                available,
                "Reduce read size or wait for more data",
            ));
        }
        let mut out = vec![vec![0.0f32; frames]; self.channels];
        let mut refs: Vec<&mut [f32]> = out.iter_mut().map(|c| c.as_mut_slice()).collect();
        self.copy_out(&mut refs, 0, frames, true);
        Ok(out)
    }
}

/// torchfx's underrun error.
fn underrun(requested: usize, available: usize, suggestion: &str) -> Error {
    Error::buffer_underrun(format!(
        "Requested {requested} samples but only {available} available"
    ))
    .with_suggestion(suggestion)
}

/// Writes whole frames `start..` of planar `data` into interleaved `dst`.
#[inline]
fn interleave(dst: &mut [f32], data: &[&[f32]], start: usize) {
    let ch = data.len().max(1);
    if ch == 1 {
        dst.copy_from_slice(&data[0][start..start + dst.len()]);
        return;
    }
    for (c, channel) in data.iter().enumerate() {
        let src = &channel[start..start + dst.len() / ch];
        for (frame, &x) in dst.chunks_exact_mut(ch).zip(src) {
            frame[c] = x;
        }
    }
}

/// Reads interleaved `src` into planar `out[..][start..]`.
#[inline]
fn deinterleave(src: &[f32], out: &mut [&mut [f32]], start: usize) {
    let ch = out.len().max(1);
    if ch == 1 {
        out[0][start..start + src.len()].copy_from_slice(src);
        return;
    }
    for (c, channel) in out.iter_mut().enumerate() {
        let dst = &mut channel[start..start + src.len() / ch];
        for (x, frame) in dst.iter_mut().zip(src.chunks_exact(ch)) {
            *x = frame[c];
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ramp(n: usize, offset: f32) -> Vec<f32> {
        (0..n).map(|i| i as f32 + offset).collect()
    }

    #[test]
    fn creation_rounds_capacity_up_to_a_power_of_two() {
        for (asked, got) in [(300, 512), (256, 256), (1, 1), (257, 512)] {
            let (tx, rx) = ring_buffer(asked, 2).unwrap();
            assert_eq!((tx.capacity(), rx.capacity()), (got, got));
            assert_eq!((tx.channels(), rx.channels()), (2, 2));
            assert_eq!((rx.available_read(), rx.available_write()), (0, got));
            assert_eq!((tx.available_read(), tx.available_write()), (0, got));
        }
        let e = ring_buffer(0, 1).err().unwrap();
        assert_eq!(e.message(), "Capacity must be positive, got 0");
        let e = ring_buffer(8, 0).err().unwrap();
        assert_eq!(e.message(), "Channels must be positive, got 0");
        assert!(ring_buffer(usize::MAX, 1).is_err());
    }

    #[test]
    fn round_trip_mono_and_multichannel() {
        let (mut tx, mut rx) = ring_buffer(256, 1).unwrap();
        let x = ramp(100, 0.0);
        assert_eq!(tx.write(&[&x]).unwrap(), 100);
        assert_eq!(tx.available_write(), 156);
        let got = rx.read_vec(100).unwrap();
        assert_eq!(got, vec![x]);

        let (mut tx, mut rx) = ring_buffer(64, 3).unwrap();
        let chans: Vec<Vec<f32>> = (0..3).map(|c| ramp(40, c as f32 * 100.0)).collect();
        let refs: Vec<&[f32]> = chans.iter().map(|c| c.as_slice()).collect();
        assert_eq!(tx.write(&refs).unwrap(), 40);
        assert_eq!(rx.read_vec(40).unwrap(), chans);
    }

    #[test]
    fn channel_mismatch_is_an_error() {
        let (mut tx, mut rx) = ring_buffer(16, 2).unwrap();
        let x = [0.0f32; 4];
        let e = tx.write(&[&x]).unwrap_err();
        assert_eq!(
            e.message(),
            "Channel mismatch: buffer has 2 channels, data has 1 channels"
        );
        let mut o = [0.0f32; 4];
        assert!(rx.read(&mut [&mut o]).is_err());
        let y = [0.0f32; 3];
        assert!(tx.write(&[&x, &y]).is_err());
    }

    #[test]
    fn wraparound_and_partial_writes() {
        let (mut tx, mut rx) = ring_buffer(256, 2).unwrap();
        let a = ramp(200, 0.0);
        let b = ramp(200, 1000.0);
        assert_eq!(tx.write(&[&a, &b]).unwrap(), 200);
        assert_eq!(rx.read_vec(200).unwrap(), vec![a.clone(), b.clone()]);
        // The next 200 frames wrap at frame 256.
        let c = ramp(200, 5000.0);
        let d = ramp(200, 9000.0);
        assert_eq!(tx.write(&[&c, &d]).unwrap(), 200);
        assert_eq!(rx.read_vec(200).unwrap(), vec![c, d]);
        // Overflow returns the partial count: 200 into 128.
        let (mut tx, mut rx) = ring_buffer(128, 1).unwrap();
        assert_eq!(tx.write(&[&a]).unwrap(), 128);
        assert_eq!(tx.write(&[&a]).unwrap(), 0);
        assert_eq!(rx.read_vec(128).unwrap(), vec![a[..128].to_vec()]);
    }

    #[test]
    fn underrun_errors_peek_and_advance() {
        let (mut tx, mut rx) = ring_buffer(16, 1).unwrap();
        tx.write(&[&[1.0, 2.0, 3.0]]).unwrap();
        let mut o = [0.0f32; 5];
        let e = rx.read(&mut [&mut o]).unwrap_err();
        assert!(e.is_audio_processing());
        assert_eq!(e.message(), "Requested 5 samples but only 3 available");
        assert_eq!(
            e.suggestion(),
            Some("Reduce read size or wait for more data")
        );
        let e = rx.peek(&mut [&mut o]).unwrap_err();
        assert_eq!(
            e.suggestion(),
            Some("Reduce peek size or wait for more data")
        );
        let mut p = [0.0f32; 2];
        rx.peek(&mut [&mut p]).unwrap();
        assert_eq!(p, [1.0, 2.0]);
        assert_eq!(rx.available_read(), 3, "peek does not consume");
        rx.advance_read(1).unwrap();
        rx.read(&mut [&mut p]).unwrap();
        assert_eq!(p, [2.0, 3.0]);
        let e = rx.advance_read(1).unwrap_err();
        assert_eq!(e.message(), "Cannot advance 1 samples, only 0 available");
        assert_eq!(e.suggestion(), None);
        tx.write(&[&[1.0; 7]]).unwrap();
        rx.clear();
        assert_eq!((rx.available_read(), tx.available_write()), (0, 16));
        assert_eq!(tx.write_silence(20), 16);
        assert_eq!(rx.read_vec(16).unwrap(), vec![vec![0.0; 16]]);
    }

    #[test]
    fn ten_cycles_keep_order() {
        let (mut tx, mut rx) = ring_buffer(64, 2).unwrap();
        for cycle in 0..10 {
            let a = ramp(50, cycle as f32 * 50.0);
            let b = ramp(50, -(cycle as f32) * 50.0);
            assert_eq!(tx.write(&[&a, &b]).unwrap(), 50);
            assert_eq!(rx.read_vec(50).unwrap(), vec![a, b]);
        }
        let mut o = [0.0f32; 4];
        let mut p = [0.0f32; 4];
        tx.write(&[&[1.0, 2.0], &[3.0, 4.0]]).unwrap();
        assert_eq!(rx.read_frames(&mut [&mut o, &mut p], 1, 4), 2);
        assert_eq!((o, p), ([0.0, 1.0, 2.0, 0.0], [0.0, 3.0, 4.0, 0.0]));
        // The audio-path forms ignore extra channels and refuse short ones.
        assert_eq!(tx.write_frames(&[&[5.0], &[6.0], &[7.0]], 0, 1), 1);
        assert_eq!(tx.write_frames(&[&[5.0], &[]], 0, 1), 0);
        let mut extra = [9.0f32; 1];
        assert_eq!(rx.read_frames(&mut [&mut o[..1], &mut p[..0]], 0, 1), 0);
        assert_eq!(
            rx.read_frames(&mut [&mut o[..1], &mut p[..1], &mut extra], 0, 1),
            1
        );
        assert_eq!((o[0], p[0], extra[0]), (5.0, 6.0, 9.0));
    }
}

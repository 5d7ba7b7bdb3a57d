//! [`BlockAdapter`]: device buffers of any size in, callbacks of exactly `buffer_size` frames
//! out.

use super::AudioCallback;
use crate::realtime::config::{BackendStatus, MAX_STREAM_CHANNELS};

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

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

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
}

//! A streaming sample-rate converter for interleaved audio: band-limited (windowed-sinc)
//! interpolation at a fixed ratio, for devices that run at different rates (a 44.1 kHz
//! microphone feeding a 48 kHz interface).
//!
//! Each output frame `n` sits at input time `n · in_rate / out_rate`, computed exactly in
//! integers, so the output does not depend on how the input is cut into pieces. Its value is the
//! sum of the 64 input frames around that time weighted by a Blackman–Harris-windowed sinc
//! (read from a table of 512 phases per input frame, linearly interpolated), with the cut-off at
//! 0.4375 of the lower of the two rates: flat to about 0.37 of the lower rate (16 kHz at
//! 44.1 kHz, within 0.1 dB), and content above the lower Nyquist frequency attenuated by more
//! than 70 dB. Output frame `n` is the input signal at that time (no shift); it can be computed
//! once the input 32 frames past it has arrived, which is the converter's latency.
//!
//! `new` allocates; `process` never does.
//!
//! ```
//! use rtfx::dsp::resample::Resampler;
//!
//! let mut r = Resampler::new(44_100, 48_000, 2, 512).unwrap();
//! let input = vec![0.25f32; 512 * 2]; // 512 stereo frames
//! let mut output = vec![0.0f32; r.max_output(512) * 2];
//! let mut produced = 0;
//! for _ in 0..20 {
//!     produced = r.process(&input, &mut output);
//! }
//! assert!((556..=558).contains(&produced)); // 512 · 48000 / 44100 ≈ 557.2
//! assert!((output[produced * 2 - 1] - 0.25).abs() < 1e-3); // DC passes at unity gain
//! ```

use crate::error::{Error, Result};

/// Input frames on each side of the interpolation point.
const HALF_TAPS: usize = 32;
/// Table entries per input frame of the kernel.
const PHASES: usize = 512;
/// Cut-off in cycles per frame of the lower of the two rates (its Nyquist frequency is 0.5).
const CUTOFF: f64 = 0.4375;

/// A fixed-ratio streaming resampler (see the module docs).
#[derive(Debug, Clone)]
pub struct Resampler {
    channels: usize,
    /// The ratio in lowest terms.
    in_rate: u64,
    out_rate: u64,
    /// The kernel at `PHASES` points per input frame over `[-HALF_TAPS, HALF_TAPS]`, plus one.
    table: Vec<f32>,
    /// Buffered input, interleaved; frame `j` is input frame `first + j`.
    buffer: Vec<f32>,
    buffered: usize,
    /// Absolute input frame of `buffer[0]` (negative at the start: the zero history).
    first: i64,
    /// Output frames produced so far.
    produced: u64,
    max_input: usize,
}

fn gcd(a: u64, b: u64) -> u64 {
    if b == 0 { a } else { gcd(b, a % b) }
}

/// The 4-term Blackman–Harris window at `u` in `[-1, 1]` (0 outside).
fn blackman_harris(u: f64) -> f64 {
    if u.abs() >= 1.0 {
        return 0.0;
    }
    let x = std::f64::consts::PI * (u + 1.0); // 0 … 2π over the window
    0.35875 - 0.48829 * x.cos() + 0.14128 * (2.0 * x).cos() - 0.01168 * (3.0 * x).cos()
}

impl Resampler {
    /// A converter from `in_rate` to `out_rate` Hz for `channels` interleaved channels, taking
    /// up to `max_input` frames per [`Self::process`] call.
    pub fn new(in_rate: u32, out_rate: u32, channels: usize, max_input: usize) -> Result<Self> {
        for (name, rate) in [("in_rate", in_rate), ("out_rate", out_rate)] {
            if rate == 0 || rate > 768_000 {
                return Err(
                    Error::invalid_sample_rate(rate, "1 to 768000 Hz").with_message(format!(
                        "The resampler's {name} must be 1 to 768000 Hz, got {rate}"
                    )),
                );
            }
        }
        if channels == 0 || max_input == 0 {
            return Err(Error::invalid_range(
                format!(
                    "A resampler needs channels and frames, got {channels} channels of {max_input} frames"
                ),
                "channels",
                channels,
            ));
        }
        let g = gcd(u64::from(in_rate), u64::from(out_rate));
        let (in_rate, out_rate) = (u64::from(in_rate) / g, u64::from(out_rate) / g);
        // Cut-off in cycles per input frame; downsampling moves it below the output's Nyquist.
        let ratio = (out_rate as f64 / in_rate as f64).min(1.0);
        let fc = CUTOFF * ratio;
        let span = HALF_TAPS as f64;
        let table = (0..=2 * HALF_TAPS * PHASES)
            .map(|j| {
                let u = j as f64 / PHASES as f64 - span;
                let x = 2.0 * fc * u;
                let sinc = if x == 0.0 {
                    1.0
                } else {
                    (std::f64::consts::PI * x).sin() / (std::f64::consts::PI * x)
                };
                (2.0 * fc * sinc * blackman_harris(u / span)) as f32
            })
            .collect();
        let capacity = max_input + 2 * HALF_TAPS + 2;
        let mut r = Self {
            channels,
            in_rate,
            out_rate,
            table,
            buffer: vec![0.0; capacity * channels],
            buffered: 0,
            first: 0,
            produced: 0,
            max_input,
        };
        r.reset();
        Ok(r)
    }

    /// Most output frames one call with `input_frames` frames can produce.
    pub fn max_output(&self, input_frames: usize) -> usize {
        (input_frames as u64 * self.out_rate).div_ceil(self.in_rate) as usize + 1
    }

    /// Latency in input frames: an output frame waits for this much input past its time.
    pub fn latency_frames(&self) -> usize {
        HALF_TAPS
    }

    /// Clears the history (as if the stream had just started).
    pub fn reset(&mut self) {
        self.buffer.fill(0.0);
        // The zero history before the first input frame.
        self.buffered = HALF_TAPS;
        self.first = -(HALF_TAPS as i64);
        self.produced = 0;
    }

    /// Consumes `input` (interleaved, at most `max_input` frames; more is ignored) and writes
    /// as many output frames as it can into `output` (interleaved; room for
    /// [`Self::max_output`] frames guarantees nothing waits). Returns the frames written.
    pub fn process(&mut self, input: &[f32], output: &mut [f32]) -> usize {
        let ch = self.channels;
        let frames = (input.len() / ch).min(self.max_input);
        let room = self.buffer.len() / ch - self.buffered;
        let frames = frames.min(room);
        let at = self.buffered * ch;
        self.buffer[at..at + frames * ch].copy_from_slice(&input[..frames * ch]);
        self.buffered += frames;

        let last = self.first + self.buffered as i64 - 1; // newest buffered input frame
        let mut written = 0;
        let out_frames = output.len() / ch;
        while written < out_frames {
            let num = self.produced * self.in_rate;
            let centre = (num / self.out_rate) as i64;
            if centre + HALF_TAPS as i64 > last {
                break;
            }
            // Phase of the output point between input frames `centre` and `centre + 1`.
            let frac = (num % self.out_rate) as f64 / self.out_rate as f64;
            let start = (centre - HALF_TAPS as i64 + 1 - self.first) as usize;
            let out = &mut output[written * ch..(written + 1) * ch];
            out.fill(0.0);
            for k in 0..2 * HALF_TAPS {
                // Input frame centre − HALF_TAPS + 1 + k is at distance d = (k + 1 − HALF_TAPS) − frac.
                let pos = ((k + 1) as f64 - frac) * PHASES as f64;
                let idx = pos as usize;
                let t = (pos - idx as f64) as f32;
                let w = self.table[idx]
                    + (self.table[(idx + 1).min(self.table.len() - 1)] - self.table[idx]) * t;
                let frame = &self.buffer[(start + k) * ch..(start + k + 1) * ch];
                for (o, s) in out.iter_mut().zip(frame) {
                    *o += w * s;
                }
            }
            written += 1;
            self.produced += 1;
        }
        // Drop what no future output frame needs.
        let next_centre = ((self.produced * self.in_rate) / self.out_rate) as i64;
        let keep_from = next_centre - HALF_TAPS as i64 + 1;
        let drop = (keep_from - self.first).clamp(0, self.buffered as i64) as usize;
        if drop > 0 {
            self.buffer.copy_within(drop * ch..self.buffered * ch, 0);
            self.buffered -= drop;
            self.first += drop as i64;
        }
        written
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sine(rate: f64, freq: f64, frames: usize, channels: usize) -> Vec<f32> {
        (0..frames)
            .flat_map(|n| {
                let v = (std::f64::consts::TAU * freq * n as f64 / rate).sin() as f32 * 0.5;
                std::iter::repeat_n(v, channels)
            })
            .collect()
    }

    /// Runs `input` through `r` in pieces of the given lengths (cycled).
    fn run(r: &mut Resampler, input: &[f32], pieces: &[usize]) -> Vec<f32> {
        let ch = r.channels;
        let mut out = Vec::new();
        let mut scratch = vec![0.0; r.max_output(r.max_input) * ch];
        let (mut pos, mut i) = (0, 0);
        while pos < input.len() / ch {
            let n = pieces[i % pieces.len()].min(input.len() / ch - pos);
            let written = r.process(&input[pos * ch..(pos + n) * ch], &mut scratch);
            out.extend_from_slice(&scratch[..written * ch]);
            pos += n;
            i += 1;
        }
        out
    }

    #[test]
    fn a_sine_keeps_its_frequency_and_level_up_and_down() {
        for (from, to) in [
            (44_100u32, 48_000u32),
            (48_000, 44_100),
            (48_000, 96_000),
            (96_000, 48_000),
        ] {
            let mut r = Resampler::new(from, to, 2, 512).unwrap();
            let input = sine(f64::from(from), 1000.0, from as usize, 2);
            let out = run(&mut r, &input, &[512]);
            // Output frame n is the input at time n / to: compare with the ideal sine there,
            // past the start-up (the history before the first input is silence).
            let mut worst = 0.0f64;
            for n in (to as usize / 10)..(out.len() / 2) {
                let t = n as f64 / f64::from(to);
                let want = (std::f64::consts::TAU * 1000.0 * t).sin() * 0.5;
                for c in 0..2 {
                    worst = worst.max((f64::from(out[2 * n + c]) - want).abs());
                }
            }
            assert!(worst < 1e-3, "{from} -> {to}: error {worst}");
            // One second in gives one second out, less the latency (output waits for the
            // input HALF_TAPS frames ahead of it).
            let delay = HALF_TAPS as f64 / f64::from(from);
            let frames = out.len() / 2;
            let expected = f64::from(to) * (1.0 - delay);
            assert!(
                (frames as f64 - expected).abs() <= 2.0,
                "{from} -> {to}: {frames} frames"
            );
        }
    }

    #[test]
    fn the_passband_is_flat_to_16_khz_at_44_1_khz() {
        for freq in [100.0, 5_000.0, 10_000.0, 16_000.0] {
            let mut r = Resampler::new(44_100, 48_000, 1, 1024).unwrap();
            let out = run(&mut r, &sine(44_100.0, freq, 44_100, 1), &[1024]);
            let tail = &out[4800..];
            let rms = (tail.iter().map(|v| f64::from(*v).powi(2)).sum::<f64>() / tail.len() as f64)
                .sqrt();
            let gain_db = 20.0 * (rms / (0.5 / 2f64.sqrt())).log10();
            assert!(gain_db.abs() < 0.1, "{freq} Hz: {gain_db:.3} dB");
        }
    }

    #[test]
    fn content_above_the_lower_nyquist_frequency_is_removed() {
        let mut r = Resampler::new(48_000, 44_100, 1, 1024).unwrap();
        // 23 kHz would alias to 21.1 kHz at 44.1 kHz.
        let input = sine(48_000.0, 23_000.0, 48_000, 1);
        let out = run(&mut r, &input, &[1024]);
        let tail = &out[4410..];
        let rms =
            (tail.iter().map(|v| f64::from(*v).powi(2)).sum::<f64>() / tail.len() as f64).sqrt();
        let level_db = 20.0 * (rms / (0.5 / 2f64.sqrt())).log10();
        assert!(level_db < -70.0, "alias at {level_db:.1} dB");
    }

    #[test]
    fn the_output_does_not_depend_on_how_the_input_is_cut() {
        let input = sine(44_100.0, 3_000.0, 20_000, 2);
        let whole = run(
            &mut Resampler::new(44_100, 48_000, 2, 4096).unwrap(),
            &input,
            &[4096],
        );
        for pieces in [&[1usize][..], &[7, 64, 1, 300], &[4096, 13]] {
            let cut = run(
                &mut Resampler::new(44_100, 48_000, 2, 4096).unwrap(),
                &input,
                pieces,
            );
            assert_eq!(cut, whole, "pieces {pieces:?}");
        }
        // reset starts over.
        let mut r = Resampler::new(44_100, 48_000, 2, 4096).unwrap();
        let _ = run(&mut r, &input, &[4096]);
        r.reset();
        assert_eq!(run(&mut r, &input, &[4096]), whole);
    }

    #[test]
    fn bad_rates_and_shapes_are_refused() {
        let err = Resampler::new(0, 48_000, 2, 512).unwrap_err().to_string();
        assert!(err.contains("in_rate") && err.contains("768000"), "{err}");
        assert!(Resampler::new(48_000, 1_000_000, 2, 512).is_err());
        assert!(Resampler::new(48_000, 44_100, 0, 512).is_err());
    }
}

//! The editor's spectrum analyser: the audio thread hands its input and output over through
//! lock-free single-producer, single-consumer rings ([`rtrb`]), and the GUI thread analyses
//! them ([`Spectrum`], an FFT with [`realfft`]).
//!
//! The audio side ([`AnalyserTap`]) writes the mid signal (the mean of the channels) of each
//! block into its ring, as much as fits; when the editor is closed or behind, the ring is full
//! and the rest is dropped. It never allocates, locks or waits for the GUI. The GUI side
//! ([`AnalyserFeed`]) drains the rings once a frame; the feed lives in the plugin's
//! [`Meters`](super::Meters) and only GUI threads touch it.

use std::sync::Arc;

use realfft::num_complex::Complex;
use realfft::{RealFftPlanner, RealToComplex};
use rtrb::{Consumer, Producer, RingBuffer};

/// Samples each ring holds: about 0.7 s at 48 kHz, many editor frames' worth.
pub const TAP_CAPACITY: usize = 1 << 15;
/// Samples per analysis (a Hann window): 5.9 Hz bins at 48 kHz.
pub const FFT_SIZE: usize = 8192;
/// The lowest level the analyser shows, in dBFS (silence reads this).
pub const SPECTRUM_FLOOR_DB: f32 = -120.0;
/// How fast a displayed level falls once its signal has gone, in dB per second (rises are
/// immediate).
pub const SPECTRUM_FALL_DB_PER_S: f32 = 60.0;

/// The audio thread's end: hands the input and output over to the editor.
pub struct AnalyserTap {
    input: Producer<f32>,
    output: Producer<f32>,
}

/// The editor's end: what the audio thread handed over, not yet analysed.
pub struct AnalyserFeed {
    /// The plugin's input (mid signal).
    pub input: Consumer<f32>,
    /// The plugin's output (mid signal).
    pub output: Consumer<f32>,
}

/// A connected tap and feed (allocates both rings).
pub fn analyser_channel() -> (AnalyserTap, AnalyserFeed) {
    let (input, input_rx) = RingBuffer::new(TAP_CAPACITY);
    let (output, output_rx) = RingBuffer::new(TAP_CAPACITY);
    (
        AnalyserTap { input, output },
        AnalyserFeed {
            input: input_rx,
            output: output_rx,
        },
    )
}

impl AnalyserTap {
    /// Hands the input block over (before processing). Never allocates, locks or waits.
    pub fn push_input(&mut self, block: &[&mut [f32]]) {
        push_mid(&mut self.input, block);
    }

    /// Hands the output block over (after processing). Never allocates, locks or waits.
    pub fn push_output(&mut self, block: &[&mut [f32]]) {
        push_mid(&mut self.output, block);
    }
}

/// Writes the mean of the channels, frame by frame, as far as the ring has room; non-finite
/// samples are written as 0 (a NaN would poison every bin of the next analysis).
fn push_mid(ring: &mut Producer<f32>, block: &[&mut [f32]]) {
    let frames = crate::dsp::frames(block).min(ring.slots());
    if frames == 0 || block.is_empty() {
        return;
    }
    let Ok(chunk) = ring.write_chunk_uninit(frames) else {
        return;
    };
    let finite = |x: f32| if x.is_finite() { x } else { 0.0 };
    match block {
        [mono] => chunk.fill_from_iter(mono.iter().map(|&x| finite(x))),
        [l, r] => {
            chunk.fill_from_iter(l.iter().zip(r.iter()).map(|(&l, &r)| finite(0.5 * (l + r))))
        }
        _ => {
            let scale = 1.0 / block.len() as f32;
            chunk.fill_from_iter(
                (0..frames).map(|i| finite(block.iter().map(|c| c[i]).sum::<f32>() * scale)),
            )
        }
    };
}

/// A spectrum of the latest [`FFT_SIZE`] samples of one signal (GUI thread): Hann-windowed,
/// scaled so that a full-scale sine reads 0 dBFS at its frequency, with levels that rise at
/// once and fall at [`SPECTRUM_FALL_DB_PER_S`].
pub struct Spectrum {
    /// The latest samples, oldest first once `write` wraps (a circular buffer).
    history: Vec<f32>,
    write: usize,
    fft: Arc<dyn RealToComplex<f32>>,
    window: Vec<f32>,
    frame: Vec<f32>,
    bins: Vec<Complex<f32>>,
    scratch: Vec<Complex<f32>>,
    /// Displayed level per bin, dBFS.
    db: Vec<f32>,
    /// This analysis's level per bin, dBFS.
    now: Vec<f32>,
    /// Whether any sample has arrived since the last analysis.
    fresh: bool,
}

impl Default for Spectrum {
    fn default() -> Self {
        Self::new()
    }
}

impl Spectrum {
    /// An analyser showing silence.
    pub fn new() -> Self {
        let fft = RealFftPlanner::<f32>::new().plan_fft_forward(FFT_SIZE);
        let bins = fft.make_output_vec();
        let scratch = fft.make_scratch_vec();
        let window = (0..FFT_SIZE)
            .map(|i| {
                let phase = 2.0 * std::f64::consts::PI * i as f64 / FFT_SIZE as f64;
                (0.5 - 0.5 * phase.cos()) as f32
            })
            .collect();
        Self {
            history: vec![0.0; FFT_SIZE],
            write: 0,
            db: vec![SPECTRUM_FLOOR_DB; bins.len()],
            now: vec![SPECTRUM_FLOOR_DB; bins.len()],
            frame: fft.make_input_vec(),
            fft,
            window,
            bins,
            scratch,
            fresh: false,
        }
    }

    /// Takes everything waiting in `ring` into the history.
    pub fn take(&mut self, ring: &mut Consumer<f32>) {
        let waiting = ring.slots();
        let Ok(chunk) = ring.read_chunk(waiting) else {
            return;
        };
        let (a, b) = chunk.as_slices();
        for part in [a, b] {
            // Only the last FFT_SIZE samples matter.
            let part = &part[part.len().saturating_sub(FFT_SIZE)..];
            for &x in part {
                self.history[self.write] = x;
                self.write = (self.write + 1) % FFT_SIZE;
            }
        }
        self.fresh |= waiting > 0;
        chunk.commit_all();
    }

    /// Analyses the latest samples; `dt` is the time since the last analysis, in seconds (the
    /// displayed levels fall by at most [`SPECTRUM_FALL_DB_PER_S`] × `dt`).
    pub fn analyse(&mut self, dt: f32) {
        let fall = SPECTRUM_FALL_DB_PER_S * dt.max(0.0);
        if !self.fresh {
            for db in &mut self.db {
                *db = (*db - fall).max(SPECTRUM_FLOOR_DB);
            }
            return;
        }
        self.fresh = false;
        let (newer, older) = self.history.split_at(self.write);
        for ((f, &x), &w) in self
            .frame
            .iter_mut()
            .zip(older.iter().chain(newer))
            .zip(&self.window)
        {
            *f = x * w;
        }
        if self
            .fft
            .process_with_scratch(&mut self.frame, &mut self.bins, &mut self.scratch)
            .is_err()
        {
            return;
        }
        // A sine of amplitude A gives |X| = A·N/4 under a Hann window.
        let scale = 4.0 / FFT_SIZE as f32;
        for (now, bin) in self.now.iter_mut().zip(&self.bins) {
            let level = bin.norm() * scale;
            *now = if level > 1e-6 {
                (20.0 * level.log10()).max(SPECTRUM_FLOOR_DB)
            } else {
                SPECTRUM_FLOOR_DB
            };
        }
        // A sine between two bins reads up to 1.4 dB low at its highest bin (the window's
        // scalloping): a parabola through each peak's bin and its neighbours (in dB) finds
        // the level at the top.
        for k in 1..self.now.len() - 1 {
            let (a, b, c) = (self.now[k - 1], self.now[k], self.now[k + 1]);
            if b > a && b >= c && b > SPECTRUM_FLOOR_DB {
                let curvature = a - 2.0 * b + c;
                if curvature < 0.0 {
                    let offset = 0.5 * (a - c) / curvature;
                    // (Raising a peak cannot make its right neighbour a peak.)
                    self.now[k] = b - 0.25 * (a - c) * offset;
                }
            }
        }
        for (db, &now) in self.db.iter_mut().zip(&self.now) {
            *db = now.max(*db - fall);
        }
    }

    /// The highest displayed level, in dBFS, of the bins from `lo_hz` to `hi_hz` at
    /// `sample_rate` (the nearest bin when the range holds none).
    pub fn level_db(&self, lo_hz: f32, hi_hz: f32, sample_rate: f32) -> f32 {
        let per_bin = sample_rate / FFT_SIZE as f32;
        let last = self.db.len() - 1;
        let bin = |hz: f32| ((hz / per_bin).round().max(0.0) as usize).min(last);
        let (lo, hi) = (bin(lo_hz), bin(hi_hz));
        self.db[lo..=hi.max(lo)]
            .iter()
            .copied()
            .fold(SPECTRUM_FLOOR_DB, f32::max)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FS: f32 = 48_000.0;

    fn sine(freq: f32, amp: f32, frames: usize) -> Vec<f32> {
        (0..frames)
            .map(|n| amp * (2.0 * std::f32::consts::PI * freq * n as f32 / FS).sin())
            .collect()
    }

    /// A sine handed over by the tap reads its level at its frequency (to 0.25 dB, though
    /// 1 kHz lies between two bins), and far below it elsewhere; the mid signal is the mean of
    /// the channels.
    #[test]
    fn a_sine_reads_its_level_at_its_frequency() {
        let (mut tap, mut feed) = analyser_channel();
        let mut tone = sine(1000.0, 0.5, 5 * 2048);
        let mut silent = vec![0.0; 2048];
        for l in tone.chunks_mut(2048) {
            let mut r = l.to_vec();
            tap.push_input(&[l, &mut r]);
            // Output: the sine in one channel of two, so its mid is half as loud.
            tap.push_output(&[l, &mut silent]);
        }
        let mut input = Spectrum::new();
        let mut output = Spectrum::new();
        input.take(&mut feed.input);
        output.take(&mut feed.output);
        input.analyse(0.03);
        output.analyse(0.03);
        let at = |s: &Spectrum, f: f32| s.level_db(f - 10.0, f + 10.0, FS);
        assert!((at(&input, 1000.0) - 20.0 * 0.5f32.log10()).abs() < 0.25);
        assert!((at(&output, 1000.0) - 20.0 * 0.25f32.log10()).abs() < 0.25);
        assert!(at(&input, 3000.0) < -80.0, "{}", at(&input, 3000.0));
        assert!(at(&input, 200.0) < -80.0, "{}", at(&input, 200.0));
    }

    /// The tap never blocks: once the ring is full the rest is dropped, and the GUI reads the
    /// latest samples it got; NaN arrives as 0.
    #[test]
    fn a_full_ring_drops_and_nan_becomes_zero() {
        let (mut tap, mut feed) = analyser_channel();
        let mut block = vec![f32::NAN; TAP_CAPACITY + 100];
        tap.push_input(&[&mut block]);
        assert_eq!(feed.input.slots(), TAP_CAPACITY);
        let mut more = vec![1.0; 10];
        tap.push_input(&[&mut more]);
        assert_eq!(feed.input.slots(), TAP_CAPACITY);
        let mut spectrum = Spectrum::new();
        spectrum.take(&mut feed.input);
        spectrum.analyse(0.03);
        assert!(spectrum.db.iter().all(|&d| d == SPECTRUM_FLOOR_DB));
    }

    /// Once the signal stops, the levels fall at the set rate instead of vanishing.
    #[test]
    fn levels_fall_at_the_set_rate() {
        let (mut tap, mut feed) = analyser_channel();
        let mut l = sine(2000.0, 1.0, FFT_SIZE);
        tap.push_input(&[&mut l]);
        let mut s = Spectrum::new();
        s.take(&mut feed.input);
        s.analyse(0.03);
        let before = s.level_db(1990.0, 2010.0, FS);
        assert!(before.abs() < 0.25, "{before}");
        s.analyse(0.1);
        let after = s.level_db(1990.0, 2010.0, FS);
        assert!((before - after - SPECTRUM_FALL_DB_PER_S * 0.1).abs() < 1e-3);
    }
}

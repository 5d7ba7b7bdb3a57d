//! `limiter`: a lookahead peak limiter (torchfx 0.8.0's formula), with a true-peak mode that
//! limits the 8× oversampled signal. Every parameter is live, the lookahead included (it is
//! the latency).

use super::dynamics::check_rate;
use super::{finite_or_zero, one_pole_coeff};
use crate::dsp::true_peak::{self, TruePeakDetector};
use crate::dsp::{
    Effect, ParamInfo, db_to_gain, param_info_at, sanitize_state, sanitize_state_f32,
    unhandled_param,
};
use crate::error::Result;

/// Longest lookahead accepted, in seconds (the delay line is allocated for it).
pub const MAX_LOOKAHEAD_S: f64 = 0.1;

/// True-peak mode: samples the gain is held at its lowest on each side of a detected peak.
pub const TRUE_PEAK_HOLD: usize = 4;

/// True-peak mode: the detector aims this far (dB) under the threshold. It covers what the
/// 8×, 64-tap interpolator under-reads (content between 0.45·fs and Nyquist, which steps,
/// clipped material and the gain's own modulation have) and float rounding: measured against
/// a 256-tap, 32× reference the output stays under the threshold with it, and exceeds it by
/// up to 0.03 dB on clicks and steps without it.
pub const TRUE_PEAK_MARGIN_DB: f64 = 0.05;

/// Smallest latency of the limiter in true-peak mode, in samples: the interpolator's delay
/// ([`true_peak::DELAY`]) plus the hold ([`TRUE_PEAK_HOLD`]). 36 samples (0.75 ms at 48 kHz).
pub const TRUE_PEAK_MIN_LATENCY: usize = true_peak::DELAY + TRUE_PEAK_HOLD;

/// The limiter's latency in samples for a lookahead of `lookahead_samples` (already rounded
/// at the sample rate) and the given mode: the lookahead, and in true-peak mode at least
/// [`TRUE_PEAK_MIN_LATENCY`]. (Before `prepare` the limiter itself reports 0.)
pub fn limiter_latency(lookahead_samples: usize, true_peak: bool) -> usize {
    if true_peak {
        lookahead_samples.max(TRUE_PEAK_MIN_LATENCY)
    } else {
        lookahead_samples
    }
}

static LIMITER_PARAMS: [ParamInfo; 4] = [
    ParamInfo::continuous(
        "threshold",
        -60.0,
        0.0,
        -1.0,
        "dBFS",
        "Ceiling: the output never exceeds it",
    ),
    ParamInfo::continuous(
        "lookahead",
        0.0,
        MAX_LOOKAHEAD_S,
        0.005,
        "s",
        "Lookahead (= latency) and attack time",
    )
    .unsmoothed(),
    ParamInfo::continuous("release", 0.001, 5.0, 0.05, "s", "Release time of the gain"),
    ParamInfo::toggle(
        "true_peak",
        false,
        "Limit the true (inter-sample) peak, 8x oversampled, in dBTP; latency at least 36 samples",
    ),
];

/// Per-channel limiter state: the delay line of past inputs, the sliding maximum of |x| over
/// the lookahead window, and the smoothed gain.
///
/// The sliding maximum is van Herk / Gil–Werman's: time is cut into blocks of the window's
/// length `W`; the maximum of the window ending at `t` is the larger of the running maximum of
/// `t`'s block so far (`prefix`) and the maximum of the previous block from the window's start
/// to its end (`suffix`, computed in one backward pass when a block completes). O(1) per sample
/// like a monotonic deque, but without its data-dependent loop: on noise the deque's branch
/// mispredictions made it the strip's most expensive part.
#[derive(Debug, Clone)]
struct LimiterChannel {
    /// The last `history.len()` inputs (non-finite ones as 0).
    history: Vec<f32>,
    /// Ring position of the next input.
    pos: usize,
    /// Number of inputs seen (the time of the next input).
    time: u64,
    /// Window length `W` = lookahead delay + 1.
    window: usize,
    /// Position of the next input in its block (`time mod W`).
    phase: usize,
    /// Largest |x| of the current block so far.
    prefix: f32,
    /// `suffix[i]` = largest |x| of the previous block from its position `i` to its end;
    /// `suffix[W]` = 0. Room for the longest window.
    suffix: Vec<f32>,
    gain: f64,
    /// True-peak mode: the sliding maximum runs on `tp_mags` instead of |history|.
    tp: bool,
    /// True-peak mode: the interpolating detector (fed with every input).
    detector: TruePeakDetector,
    /// True-peak mode: the detector's interval peaks, aligned with `history`.
    tp_mags: Vec<f32>,
    /// True-peak mode: the gain targets (thr / window peak), aligned with `history`.
    targets: Vec<f64>,
    /// True-peak mode: the sum of the last `box_len` targets.
    box_sum: f64,
    /// True-peak mode: length of the moving average that ramps the gain.
    box_len: usize,
}

impl LimiterChannel {
    fn new(history: usize) -> Self {
        Self {
            history: vec![0.0; history],
            pos: 0,
            time: 0,
            window: 1,
            phase: 0,
            prefix: 0.0,
            suffix: vec![0.0; history + 1],
            gain: 1.0,
            tp: false,
            detector: TruePeakDetector::new(),
            tp_mags: vec![0.0; history],
            targets: vec![1.0; history],
            box_sum: 0.0,
            box_len: 0,
        }
    }

    fn clear(&mut self) {
        self.history.fill(0.0);
        self.pos = 0;
        self.time = 0;
        self.phase = 0;
        self.prefix = 0.0;
        self.suffix.fill(0.0);
        self.gain = 1.0;
        self.detector.reset();
        self.tp_mags.fill(0.0);
        self.targets.fill(1.0);
        self.box_sum = self.box_len as f64;
    }

    /// Visits the smoothed gain, the whole delay line and the sliding-maximum state, and in
    /// true-peak mode the interval peaks, the gain targets and their sum.
    fn visit(&self, visit: &mut dyn FnMut(f64)) {
        visit(self.gain);
        self.history.iter().for_each(|&v| visit(f64::from(v)));
        visit(f64::from(self.prefix));
        self.suffix.iter().for_each(|&v| visit(f64::from(v)));
        if self.tp {
            self.tp_mags.iter().for_each(|&v| visit(f64::from(v)));
            self.targets.iter().for_each(|&v| visit(v));
            visit(self.box_sum);
        }
    }

    /// Ring index of the input `back` samples before the next one (1 = the newest).
    #[inline(always)]
    fn index_back(&self, back: usize) -> usize {
        let n = self.history.len();
        let idx = self.pos + n - back;
        if idx >= n { idx - n } else { idx }
    }

    /// The detector magnitude of the input `back` samples before the next one (1 = the
    /// newest): |x|, or in true-peak mode the interval's true peak; 0 before the first input
    /// (the history starts as zeros). `back` ≤ the history's length.
    #[inline(always)]
    fn magnitude_back(&self, back: usize) -> f32 {
        let idx = self.index_back(back);
        if self.tp {
            self.tp_mags[idx]
        } else {
            self.history[idx].abs()
        }
    }

    /// Enters (or re-enters, with a new geometry) true-peak mode: recomputes the detector and
    /// the interval peaks from the stored inputs, rebuilds the sliding maximum over `window`
    /// of them, and starts the moving average of `box_len` targets at the current gain, so
    /// that the gain goes on from where it is (no jump) and ramps to the new targets.
    fn enter_true_peak(&mut self, window: usize, box_len: usize) {
        self.tp = true;
        let n = self.history.len();
        let span = (window + true_peak::TAPS + 2).min(n);
        let mut det = TruePeakDetector::new();
        for back in (1..=span).rev() {
            let idx = self.index_back(back);
            self.tp_mags[idx] = sanitize_state_f32(det.push(self.history[idx]));
        }
        self.detector = det;
        self.rebuild(window);
        self.box_len = box_len.clamp(1, n - 1);
        let g = self.gain.min(1.0);
        for back in 1..=self.box_len {
            let idx = self.index_back(back);
            self.targets[idx] = g;
        }
        self.box_sum = g * self.box_len as f64;
    }

    /// Fills `suffix[from..W]` for the block of `W` inputs that ends `end_back` samples before
    /// the next input (`end_back` = 1: the newest); `suffix[W]` = 0.
    fn fill_suffix(&mut self, from: usize, end_back: usize) {
        let w = self.window;
        let mut running = 0.0f32;
        self.suffix[w] = 0.0;
        for i in (from..w).rev() {
            running = running.max(self.magnitude_back(end_back + (w - 1 - i)));
            self.suffix[i] = running;
        }
    }

    /// Takes the newest input's magnitude and returns the largest |x| of the last `W` inputs.
    #[inline(always)]
    fn push_max(&mut self, magnitude: f32) -> f32 {
        self.prefix = if self.phase == 0 {
            magnitude
        } else {
            self.prefix.max(magnitude)
        };
        let peak = self.prefix.max(self.suffix[self.phase + 1]);
        self.phase += 1;
        if self.phase == self.window {
            // The block is complete (its newest input is the one just written).
            self.phase = 0;
            self.fill_suffix(0, 1);
        }
        peak
    }

    /// Sets the window to `w` inputs and rebuilds the sliding maximum from the stored
    /// magnitudes, as if the new window had always been in use.
    fn rebuild(&mut self, w: usize) {
        self.window = w;
        self.phase = (self.time % w as u64) as usize;
        let p = self.phase;
        // The current block holds the last `p` inputs; the previous block ends just before.
        self.prefix = (1..=p).fold(0.0f32, |m, back| m.max(self.magnitude_back(back)));
        // Only suffix[p + 1..] is read before the next block completes: inputs inside the
        // window, so inside the history.
        self.suffix[..=p.min(w)].fill(0.0);
        self.fill_suffix((p + 1).min(w), p + 1);
    }
}

/// A lookahead peak limiter (torchfx 0.8.0's `Limiter(threshold=-1, lookahead=0.005,
/// release=0.05)` with a real lookahead).
///
/// The audio is delayed by `L = round(lookahead·fs)` samples (reported as
/// [`Effect::latency_samples`]). For each delayed sample the gain target is
/// `gr = min(1, thr_lin / max(peak, 1e−12))`, where `peak` is the largest |x| of the L+1
/// samples from the delayed one to the newest (a van Herk / Gil–Werman sliding maximum: O(1)
/// per sample, branch-light, no allocation). The gain follows it with torchfx's one-poles
/// (`g = gr < g ? aA·g + (1−aA)·gr : aR·g + (1−aR)·gr`, `aA = exp(−1/(lookahead·fs))`,
/// `aR = exp(−1/(release·fs))`), and the output is
/// `y = x_delayed · min(g, thr_lin / max(|x_delayed|, 1e−12))`, so |y| never exceeds the
/// ceiling `thr_lin = 10^(thr/20)`, whatever the input and whenever parameters change.
///
/// torchfx computes the window within each chunk and adds no delay; rtfx's window spans chunk
/// boundaries, so chunked output equals one-shot output. All parameters are live. Changing
/// `lookahead` while running changes the latency (the delayed read position jumps, which may
/// click; hosts are told the new latency through `latency_samples`); the window is rebuilt
/// from the stored history without allocating. The gain is per channel (unlinked), as in
/// torchfx.
///
/// **True-peak mode** (`true_peak`, off by default; off, the output is bit for bit what it
/// always was). The threshold is then a true-peak ceiling in dBTP: the detector runs on the
/// 8× oversampled signal ([`crate::dsp::true_peak`]: within 0.002 dB of the continuous peak
/// up to 0.45·fs), so peaks between the samples are caught too. The latency is
/// `max(L, 36)` samples (the interpolator needs [`true_peak::DELAY`] = 32 samples, plus a
/// hold of [`TRUE_PEAK_HOLD`] = 4), see [`limiter_latency`]. The gain is the moving average
/// over `M = latency − 35` samples of `thr / (largest interval true peak over the last
/// M + 8)`, released by the same one-pole: it ramps linearly into each peak and is at its
/// lowest, flat, for 4 samples on each side of it, so the oversampled output stays under
/// the ceiling (a sample-by-sample clamp, as in peak mode, would itself create inter-sample
/// overshoot). With the lookahead under 1 ms the ramps are short and the limiting harder.
/// Switching the mode keeps the gain and ramps from it (no jump); the ceiling holds again
/// once one lookahead has passed. While the lookahead is at least 0.75 ms the latency does
/// not change with the mode, so switching does not move the output in time either.
#[derive(Debug, Clone)]
pub struct Limiter {
    threshold: f64,
    lookahead: f64,
    release: f64,
    true_peak: bool,
    /// The mode the channels are in (`true_peak` once prepared).
    tp_applied: bool,
    /// Sliding-maximum window in true-peak mode.
    tp_window: usize,
    /// The detector's linear threshold in true-peak mode (`thr_lin` less the margin).
    tp_thr: f64,
    sample_rate: f64,
    thr_lin: f64,
    /// Largest `f32` not above `thr_lin`: the final clamp.
    thr_f32: f32,
    attack_coeff: f64,
    release_coeff: f64,
    delay: usize,
    channels: Vec<LimiterChannel>,
}

impl Default for Limiter {
    fn default() -> Self {
        Self::new()
    }
}

impl Limiter {
    /// Index of `threshold` (the ceiling) in [`Effect::params`].
    pub const THRESHOLD: usize = 0;
    /// Index of `lookahead`.
    pub const LOOKAHEAD: usize = 1;
    /// Index of `release`.
    pub const RELEASE: usize = 2;
    /// Index of `true_peak`.
    pub const TRUE_PEAK: usize = 3;

    /// A limiter with torchfx's defaults (−1 dBFS, 5 ms lookahead, 50 ms release).
    pub fn new() -> Self {
        let mut l = Self {
            threshold: -1.0,
            lookahead: 0.005,
            release: 0.05,
            true_peak: false,
            tp_applied: false,
            tp_window: 0,
            tp_thr: 1.0,
            sample_rate: 0.0,
            thr_lin: 1.0,
            thr_f32: 1.0,
            attack_coeff: 0.0,
            release_coeff: 0.0,
            delay: 0,
            channels: Vec::new(),
        };
        l.update();
        l
    }

    /// A limiter with the given ceiling (dBFS), other parameters default.
    pub fn with(threshold_db: f64) -> Result<Self> {
        let mut l = Self::new();
        l.set_param("threshold", threshold_db)?;
        Ok(l)
    }

    /// The linear ceiling.
    pub fn ceiling(&self) -> f64 {
        self.thr_lin
    }

    /// True-peak mode's `process` (see the type's docs).
    fn process_true_peak(&mut self, block: &mut [&mut [f32]]) {
        let delay = self.delay;
        let thr = self.tp_thr;
        let thr32 = self.thr_f32;
        let a_rel = self.release_coeff;
        for (ch, st) in block.iter_mut().zip(self.channels.iter_mut()) {
            let n = st.history.len();
            let box_len = st.box_len;
            let inv_box = 1.0 / box_len as f64;
            let mut gain = st.gain;
            let mut box_sum = st.box_sum;
            for sample in ch.iter_mut() {
                let x = sanitize_state_f32(finite_or_zero(*sample) as f32);
                let w = st.pos;
                st.history[w] = x;
                let back = w + n - delay;
                let delayed = st.history[if back >= n { back - n } else { back }];
                let m = sanitize_state_f32(st.detector.push(x));
                st.tp_mags[w] = m;
                st.pos = if w + 1 == n { 0 } else { w + 1 };
                st.time += 1;
                let peak = f64::from(st.push_max(m));
                let gr = if peak <= thr { 1.0 } else { thr / peak };
                // The moving average of the targets: its oldest leaves, the newest enters.
                let leave = w + n - box_len;
                let leave = if leave >= n { leave - n } else { leave };
                box_sum = sanitize_state(box_sum + gr - st.targets[leave]);
                st.targets[w] = gr;
                let target = (box_sum * inv_box).min(1.0);
                let g = if target < gain {
                    target
                } else {
                    a_rel * gain + (1.0 - a_rel) * target
                };
                gain = sanitize_state(g);
                *sample = ((f64::from(delayed) * gain) as f32).clamp(-thr32, thr32);
            }
            st.gain = gain;
            st.box_sum = box_sum;
        }
    }

    fn update(&mut self) {
        self.thr_lin = db_to_gain(self.threshold);
        let mut t = self.thr_lin as f32;
        if f64::from(t) > self.thr_lin {
            t = f32::from_bits(t.to_bits() - 1);
        }
        self.thr_f32 = t;
        self.tp_thr = db_to_gain(self.threshold - TRUE_PEAK_MARGIN_DB);
        self.attack_coeff = one_pole_coeff(self.lookahead, self.sample_rate);
        self.release_coeff = one_pole_coeff(self.release, self.sample_rate);
        let lookahead = (self.lookahead * self.sample_rate).round() as usize;
        let max = self
            .channels
            .first()
            .map_or(0, |c| c.history.len().saturating_sub(1));
        if self.true_peak && !self.channels.is_empty() {
            // delay = M − 1 + DELAY + HOLD: the delayed sample sits in the middle of the
            // 2·HOLD + 1 intervals every one of the M averaged targets has seen.
            let delay = limiter_latency(lookahead, true).min(max);
            let box_len = (delay + 1).saturating_sub(TRUE_PEAK_MIN_LATENCY).max(1);
            let window = box_len + 2 * TRUE_PEAK_HOLD;
            if delay != self.delay || !self.tp_applied || window != self.tp_window {
                self.delay = delay;
                self.tp_window = window;
                self.tp_applied = true;
                for c in &mut self.channels {
                    c.enter_true_peak(window, box_len);
                }
            }
        } else {
            let delay = lookahead.min(max);
            if delay != self.delay || self.tp_applied {
                self.delay = delay;
                self.tp_applied = false;
                for c in &mut self.channels {
                    c.tp = false;
                    c.rebuild(delay + 1);
                }
            }
        }
    }
}

impl Effect for Limiter {
    fn name(&self) -> &'static str {
        "limiter"
    }

    fn params(&self) -> &'static [ParamInfo] {
        &LIMITER_PARAMS
    }

    fn get_param_at(&self, index: usize) -> Option<f64> {
        Some(match index {
            Self::THRESHOLD => self.threshold,
            Self::LOOKAHEAD => self.lookahead,
            Self::RELEASE => self.release,
            Self::TRUE_PEAK => f64::from(u8::from(self.true_peak)),
            _ => return None,
        })
    }

    fn set_param_at(&mut self, index: usize, value: f64) -> Result<()> {
        let p = param_info_at(self.name(), &LIMITER_PARAMS, index)?;
        let value = p.validate(value)?;
        match index {
            Self::THRESHOLD => self.threshold = value,
            Self::LOOKAHEAD => self.lookahead = value,
            Self::RELEASE => self.release = value,
            Self::TRUE_PEAK => self.true_peak = value != 0.0,
            _ => return Err(unhandled_param(self.name(), p)),
        }
        self.update();
        Ok(())
    }

    fn prepare(&mut self, sample_rate: f64, _max_block: usize, channels: usize) -> Result<()> {
        check_rate(sample_rate)?;
        self.sample_rate = sample_rate;
        let history = (MAX_LOOKAHEAD_S * sample_rate).round() as usize + 1;
        self.channels = vec![LimiterChannel::new(history); channels];
        self.delay = 0;
        self.tp_applied = false;
        self.tp_window = 0;
        self.update();
        Ok(())
    }

    fn process(&mut self, block: &mut [&mut [f32]]) {
        if self.tp_applied {
            self.process_true_peak(block);
            return;
        }
        let delay = self.delay;
        let thr = self.thr_lin;
        let thr32 = self.thr_f32;
        let (a_att, a_rel) = (self.attack_coeff, self.release_coeff);
        for (ch, st) in block.iter_mut().zip(self.channels.iter_mut()) {
            let n = st.history.len();
            // In a local: the compiler cannot keep a field in a register across the stores
            // into the history and deque buffers.
            let mut gain = st.gain;
            for sample in ch.iter_mut() {
                // Subnormal input is stored as 0 so the lookahead line never holds one.
                let x = sanitize_state_f32(finite_or_zero(*sample) as f32);
                // The delayed sample leaves the ring slot `delay` positions back (before the
                // newest is written, so a zero delay returns the newest itself below).
                st.history[st.pos] = x;
                let back = st.pos + n - delay;
                let delayed = st.history[if back >= n { back - n } else { back }];
                st.pos = if st.pos + 1 == n { 0 } else { st.pos + 1 };
                st.time += 1;
                let peak = f64::from(st.push_max(x.abs()));

                // gr = min(thr / peak, 1) and, below, min(gain, thr / |d|): a peak at or under
                // the threshold gives exactly 1 (and gain ≤ 1), so the divisions are only
                // needed above it.
                let gr = if peak <= thr { 1.0 } else { thr / peak };
                let g = if gr < gain {
                    a_att * gain + (1.0 - a_att) * gr
                } else {
                    a_rel * gain + (1.0 - a_rel) * gr
                };
                gain = sanitize_state(g);
                let d = f64::from(delayed);
                let applied = if d.abs() <= thr {
                    gain
                } else {
                    gain.min(thr / d.abs())
                };
                *sample = ((d * applied) as f32).clamp(-thr32, thr32);
            }
            st.gain = gain;
        }
    }

    fn reset(&mut self) {
        for c in &mut self.channels {
            c.clear();
        }
    }

    fn visit_state(&self, visit: &mut dyn FnMut(f64)) {
        self.channels.iter().for_each(|c| c.visit(visit));
    }

    fn latency_samples(&self) -> usize {
        self.delay
    }

    fn tail_samples(&self) -> usize {
        self.delay
    }

    fn clone_box(&self) -> Box<dyn Effect> {
        Box::new(self.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dsp::fx::test_util::*;

    const FS: f64 = 48000.0;

    fn all() -> Vec<Box<dyn Fn() -> Box<dyn Effect>>> {
        vec![
            Box::new(|| Box::new(Limiter::with(-6.0).unwrap())),
            Box::new(|| {
                let mut l = Limiter::with(-12.0).unwrap();
                l.set_param("lookahead", 0.0).unwrap();
                Box::new(l)
            }),
            Box::new(|| {
                let mut l = Limiter::with(-6.0).unwrap();
                l.set_param("true_peak", 1.0).unwrap();
                Box::new(l)
            }),
            Box::new(|| {
                let mut l = Limiter::with(-12.0).unwrap();
                l.set_param("lookahead", 0.0).unwrap();
                l.set_param("true_peak", 1.0).unwrap();
                Box::new(l)
            }),
        ]
    }

    #[test]
    fn limiter_ceiling_never_exceeded() {
        let mut l = Limiter::with(-3.0).unwrap();
        l.prepare(FS, 512, 2).unwrap();
        let mut rng = Noise::new(77);
        for round in 0..60 {
            if round % 10 == 5 {
                // Parameter changes mid-stream, including the lookahead (latency) itself.
                l.set_param("threshold", -1.0 - (round as f64) / 10.0)
                    .unwrap();
                l.set_param("lookahead", [0.0, 0.002, 0.01, 0.1][round / 10 % 4])
                    .unwrap();
                l.set_param("release", 0.001 + (round as f64) / 100.0)
                    .unwrap();
            }
            let scale = [0.5f32, 4.0, 100.0, 1e6][round % 4];
            let mut a: Vec<f32> = (0..512).map(|_| rng.sample() * scale).collect();
            let mut b: Vec<f32> = (0..512)
                .map(|_| {
                    if rng.next_u64().is_multiple_of(50) {
                        scale * 10.0
                    } else {
                        rng.sample()
                    }
                })
                .collect();
            l.process(&mut [&mut a[..], &mut b[..]]);
            let ceiling = l.ceiling();
            for &y in a.iter().chain(&b) {
                assert!(
                    f64::from(y.abs()) <= ceiling,
                    "round {round}: {y} > {ceiling}"
                );
            }
        }
    }

    #[test]
    fn limiter_latency_and_transparency() {
        let mut l = Limiter::new();
        l.prepare(FS, 512, 1).unwrap();
        assert_eq!(l.latency_samples(), 240);
        let x = noise(1, 2000, 4)[0]
            .iter()
            .map(|v| v * 0.5)
            .collect::<Vec<_>>();
        let out = run_once(&mut l, std::slice::from_ref(&x));
        assert!(out[0][..240].iter().all(|&v| v == 0.0));
        for n in 240..2000 {
            assert!((out[0][n] - x[n - 240]).abs() < 1e-6, "{n}");
        }
        l.set_param("lookahead", 0.0).unwrap();
        assert_eq!(l.latency_samples(), 0);
        l.set_param("lookahead", 0.1).unwrap();
        assert_eq!(l.latency_samples(), 4800);
        assert!(l.set_param("lookahead", 0.2).is_err());
        assert!(l.set_param("release", 0.0).is_err());
        assert!(l.set_param("threshold", -61.0).is_err());
    }

    #[test]
    fn limiter_lookahead_catches_peak() {
        // A step to 1.0 (0 dBFS) under a −6 dB ceiling: with lookahead the gain has already
        // come down when the step leaves the delay line, so the output is the step scaled, not
        // clipped by the safety bound.
        let mut l = Limiter::with(-6.0).unwrap();
        l.prepare(FS, 4096, 1).unwrap();
        let mut x = vec![0.01f32; 4000];
        for v in x.iter_mut().skip(2000) {
            *v = 1.0;
        }
        let out = run_once(&mut l, &[x]);
        let ceiling = l.ceiling() as f32;
        assert!(out[0].iter().all(|v| v.abs() <= ceiling));
        // Long after the step the output sits at the ceiling.
        assert!((out[0][3999] - ceiling).abs() < 1e-3);
        // Just before the step reaches the output the gain is already reduced.
        assert!(out[0][2000 + 239] < 0.01 * 0.9);
    }

    #[test]
    fn limiter_sliding_max_matches_brute_force() {
        let n = 50;
        let mut st = LimiterChannel::new(n);
        let mut rng = Noise::new(5);
        let xs: Vec<f32> = (0..3000).map(|_| rng.sample()).collect();
        let delays = [17usize, 0, 1, 49, 30, 2];
        for (t, &x) in xs.iter().enumerate() {
            if t % 500 == 0 {
                st.rebuild(delays[t / 500] + 1);
            }
            let delay = delays[t / 500];
            st.history[st.pos] = x;
            st.pos = (st.pos + 1) % n;
            st.time += 1;
            let peak = st.push_max(x.abs());
            let lo = t.saturating_sub(delay);
            let brute = xs[lo..=t].iter().fold(0.0f32, |m, v| m.max(v.abs()));
            assert_eq!(peak, brute, "t {t}, delay {delay}");
        }
    }

    #[test]
    fn limiter_true_peak_latency_and_switching_keep_state() {
        let mut l = Limiter::new();
        assert_eq!(l.get_param("true_peak"), Some(0.0));
        l.set_param("true_peak", 1.0).unwrap();
        assert_eq!(l.latency_samples(), 0, "unprepared");
        l.prepare(FS, 512, 2).unwrap();
        // 5 ms covers the interpolator: the latency does not change with the mode.
        assert_eq!(l.latency_samples(), 240);
        l.set_param("lookahead", 0.0).unwrap();
        assert_eq!(l.latency_samples(), TRUE_PEAK_MIN_LATENCY);
        assert_eq!(limiter_latency(0, true), 36);
        assert_eq!(limiter_latency(240, true), 240);
        assert_eq!(limiter_latency(10, false), 10);
        l.set_param("true_peak", 0.0).unwrap();
        assert_eq!(l.latency_samples(), 0);
        // Off, the output is what it always was: bit for bit the default limiter's, also
        // after a round trip through the true-peak mode before any audio.
        let x = noise(2, 6000, 8);
        let mut a = Limiter::new();
        a.prepare(FS, 512, 2).unwrap();
        let mut b = Limiter::new();
        b.set_param("true_peak", 1.0).unwrap();
        b.prepare(FS, 512, 2).unwrap();
        b.set_param("true_peak", 0.0).unwrap();
        assert_eq!(
            run_chunked(&mut a, &x, &[512]),
            run_chunked(&mut b, &x, &[512])
        );
        // Switching on mid-stream keeps the delay line: a tone passes on without a gap.
        let mut l = Limiter::with(-20.0).unwrap();
        l.prepare(FS, 512, 1).unwrap();
        let tone: Vec<f32> = (0..9600)
            .map(|n| (0.5 * (2.0 * std::f64::consts::PI * 130.0 * n as f64 / FS).sin()) as f32)
            .collect();
        let mut out = run_chunked(&mut l, &[tone[..4801].to_vec()], &[512]).remove(0);
        l.set_param("true_peak", 1.0).unwrap();
        out.extend(run_chunked(&mut l, &[tone[4801..].to_vec()], &[512]).remove(0));
        let step = out[1000..]
            .windows(2)
            .fold(0.0f32, |m, w| m.max((w[1] - w[0]).abs()));
        assert!(step < 0.003, "largest step {step}");
        // And the true-peak ceiling holds once a lookahead has passed.
        let ceiling = 10f64.powf(-20.0 / 20.0);
        let settled = crate::dsp::true_peak::true_peak(&out[4801 + 480..]);
        assert!(settled <= ceiling, "{settled} > {ceiling}");
    }

    #[test]
    fn dynamics_reset_and_extra_channels() {
        let mut l = Limiter::with(-6.0).unwrap();
        l.prepare(FS, 64, 1).unwrap();
        let mut a = vec![1.0f32; 64];
        let mut b = vec![1.0f32; 64];
        l.process(&mut [&mut a[..], &mut b[..]]);
        assert!(b.iter().all(|&v| v == 1.0));
        l.reset();
        let mut z = vec![0.0f32; 300];
        l.process(&mut [&mut z[..]]);
        assert!(z.iter().all(|&v| v == 0.0), "reset clears the delay line");
    }

    #[test]
    fn limiter_chunked_matches_one_shot() {
        for make in all() {
            assert_chunked_matches(make.as_ref(), 2, 20_000);
        }
    }

    #[test]
    fn limiter_no_subnormals_and_nan_recovery() {
        for make in all() {
            let mut fx = make();
            assert_no_subnormal_output(fx.as_mut(), 2);
            assert_nan_recovers(make().as_mut(), 2);
            assert_passthrough_unprepared(make().as_mut());
        }
    }

    #[test]
    fn limiter_visits_its_state() {
        let loud = noise(2, 2048, 3);
        let mut l = Limiter::with(-20.0).unwrap();
        assert!(visited(&l).is_empty());
        l.prepare(FS, 512, 2).unwrap();
        let history = (MAX_LOOKAHEAD_S * FS).round() as usize + 1;
        // Per channel: gain 1, then the history, the block maximum and the suffix maxima, all 0.
        let fresh = visited(&l);
        let per_channel = 1 + history + 1 + (history + 1);
        assert_eq!(fresh.len(), 2 * per_channel);
        assert_eq!(fresh[0], 1.0);
        assert!(fresh[1..per_channel].iter().all(|&v| v == 0.0));
        run_chunked(&mut l, &loud, &[512]);
        let state = visited(&l);
        // The gain came down, the delay line holds the burst and the maxima its peaks.
        assert!(state[0] < 0.5 && state[0] > 0.0, "gain {}", state[0]);
        assert_eq!(state.len(), fresh.len());
        assert!(state[1 + history..per_channel].iter().any(|&v| v > 0.5));
        assert!(state.iter().all(|&v| is_clean(v)));
        l.reset();
        assert_eq!(visited(&l), fresh);
    }
}

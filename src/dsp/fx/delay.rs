//! `delay`: a feedback delay line that keeps the stream's length (real-time form), plus
//! torchfx's finite-taps form as a pure function for offline use.

use super::finite_or_zero;
use crate::dsp::{
    Effect, ParamInfo, param_info_at, sanitize_state, sanitize_state_f32, unhandled_param,
};
use crate::error::{Error, Result};

/// Longest delay the real-time line holds, in seconds (allocated in `prepare`).
pub const MAX_DELAY_S: f64 = 10.0;
/// Length of the crossfade between the old and the new read position when the delay time
/// changes, in seconds.
pub const CROSSFADE_S: f64 = 0.010;
/// Slowest tempo `bpm` accepts (a whole note at 20 BPM is 12 s, beyond the line already).
pub const MIN_BPM: f64 = 20.0;
/// Fastest tempo `bpm` accepts.
pub const MAX_BPM: f64 = 999.0;

static PARAMS: [ParamInfo; 8] = [
    ParamInfo::integer(
        "delay_samples",
        1.0,
        1_920_000.0,
        f64::NAN,
        "Delay in samples (takes precedence over delay_ms and bpm; at most 10 s at the running rate)",
    ),
    ParamInfo::continuous(
        "feedback",
        0.0,
        0.95,
        0.3,
        "",
        "Share of the echo fed back into the line",
    ),
    ParamInfo::continuous(
        "mix",
        0.0,
        1.0,
        0.2,
        "",
        "Wet share: y = (1−mix)·x + mix·wet",
    ),
    ParamInfo::continuous(
        "bpm",
        MIN_BPM,
        MAX_BPM,
        f64::NAN,
        "BPM",
        "Tempo for delay_time",
    )
    .unsmoothed(),
    ParamInfo::musical_time(
        "delay_time",
        0.125,
        "Note value of the delay when bpm is set",
    ),
    ParamInfo::continuous(
        "delay_ms",
        0.0,
        MAX_DELAY_S * 1000.0,
        f64::NAN,
        "ms",
        "Delay in milliseconds (used when delay_samples is unset)",
    )
    .above_min()
    .unsmoothed(),
    ParamInfo::toggle(
        "ping_pong",
        false,
        "Stereo ping-pong (exactly two channels)",
    ),
    ParamInfo::integer(
        "taps",
        1.0,
        64.0,
        3.0,
        "Number of echoes of the offline finite-taps form (delay_taps)",
    ),
];

/// Samples in `fraction_of_whole_note` at `bpm` and `sample_rate`, truncated like torchfx
/// (`int(seconds × fs)`, `seconds = fraction × 4 × 60 / bpm`).
///
/// ```
/// use rtfx::dsp::fx::bpm_to_samples;
/// assert_eq!(bpm_to_samples(120.0, 0.25, 44100.0), 22050);
/// assert_eq!(bpm_to_samples(120.0, 0.125, 44100.0), 11025);
/// assert_eq!(bpm_to_samples(120.0, 0.0625, 44100.0), 5512);
/// ```
pub fn bpm_to_samples(bpm: f64, fraction_of_whole_note: f64, sample_rate: f64) -> usize {
    if bpm.is_nan() || bpm <= 0.0 {
        return 0;
    }
    let seconds = fraction_of_whole_note * 4.0 * (60.0 / bpm);
    let samples = seconds * sample_rate;
    if samples.is_finite() && samples > 0.0 {
        samples as usize
    } else {
        0
    }
}

/// torchfx's offline `Delay`: finite taps, no recursion, output longer than the input.
///
/// Each output channel has `T + delay_samples·taps` samples (T the longest input channel):
/// `y = (1−mix)·x_zero_padded + mix·wet`, `wet[n] = Σ_{k=1..taps} feedback^(k−1)·x[n − k·d]`.
/// With `ping_pong` and exactly two channels, odd taps put the left input into the right
/// channel and even taps put the right input into the left; other channel counts fall back to
/// the mono form (each channel echoes itself).
pub fn delay_taps(
    input: &[&[f32]],
    delay_samples: usize,
    feedback: f32,
    mix: f32,
    taps: usize,
    ping_pong: bool,
) -> Vec<Vec<f32>> {
    let frames = input.iter().map(|c| c.len()).max().unwrap_or(0);
    let len = frames + delay_samples * taps;
    let (feedback, mix) = (f64::from(feedback), f64::from(mix));
    let cross = ping_pong && input.len() == 2;
    let mut wet = vec![vec![0.0f64; len]; input.len()];
    let mut gain = 1.0f64;
    for k in 1..=taps {
        let shift = k * delay_samples;
        for (c, w) in wet.iter_mut().enumerate() {
            // Source channel of this tap: itself, or across in ping-pong (odd taps L→R, even R→L).
            let src = match (cross, k % 2 == 1, c) {
                (false, _, c) => Some(c),
                (true, true, 1) => Some(0),
                (true, false, 0) => Some(1),
                _ => None,
            };
            if let Some(src) = src {
                for (n, &x) in input[src].iter().enumerate() {
                    w[n + shift] += gain * f64::from(x);
                }
            }
        }
        gain *= feedback;
    }
    wet.into_iter()
        .enumerate()
        .map(|(c, w)| {
            w.into_iter()
                .enumerate()
                .map(|(n, wv)| {
                    let dry = input[c].get(n).copied().map_or(0.0, f64::from);
                    ((1.0 - mix) * dry + mix * wv) as f32
                })
                .collect()
        })
        .collect()
}

/// A real-time feedback delay (rtfx's replacement for torchfx's length-changing `Delay`).
///
/// Per channel: `wet` is read `d` samples back from the line, the line is written with
/// `x + feedback·wet`, and `y = (1−mix)·x + mix·wet`. An impulse gives echoes of 1,
/// feedback, feedback², … at d, 2d, 3d, … (the same gains and times as torchfx's taps, without
/// a limit on their number). The line is `f64`, flushed of tiny values; a non-finite input
/// sample counts as silence.
///
/// **Delay time**: `delay_samples` if set, else `delay_ms` (rounded to whole samples), else
/// `bpm` with `delay_time` (a fraction of a whole note, truncated like torchfx:
/// [`bpm_to_samples`]). Setting one of these three to NaN unsets it, so a host can switch from
/// milliseconds to tempo sync. At least one must be set by `prepare`, which fails otherwise.
/// The line holds at most [`MAX_DELAY_S`] (10 s) at the prepared rate; longer delays are
/// clamped to that.
///
/// **Changing the delay while running** never jumps: the output crossfades linearly from the
/// old read position to the new one over [`CROSSFADE_S`] (10 ms). A change that arrives
/// during a crossfade waits until it ends (only the latest such change is kept), so fast
/// automation moves in 10 ms steps without clicks.
///
/// **Ping-pong** (`ping_pong` on and exactly two prepared channels): the input enters the
/// right line as the mono sum `(L+R)/2`; each line's output feeds the other line
/// (`right line = (L+R)/2 + feedback·wet_L`, `left line = feedback·wet_R`), so echoes alternate
/// right, left, right … with gains 1, feedback, feedback², … at d, 2d, 3d — the first echo on
/// the right like torchfx's odd taps. With any other channel count each channel has its own
/// line (mono behaviour).
///
/// `taps` is kept for the offline form ([`delay_taps`]) and the chain grammar; the real-time
/// line ignores it.
#[derive(Debug, Clone)]
pub struct Delay {
    delay_samples: f64,
    feedback: f64,
    mix: f64,
    bpm: f64,
    delay_time: f64,
    delay_ms: f64,
    ping_pong: bool,
    taps: usize,
    sample_rate: f64,
    /// One line per prepared channel, each `capacity` long.
    lines: Vec<Vec<f64>>,
    capacity: usize,
    write: usize,
    /// Read delay in force (the crossfade's source while fading).
    current: usize,
    /// Crossfade target, when fading.
    target: usize,
    /// Samples of the crossfade done (0 = not fading).
    fade_pos: usize,
    fade_len: usize,
    /// A change that arrived during the crossfade.
    pending: Option<usize>,
}

impl Default for Delay {
    fn default() -> Self {
        Self::new()
    }
}

impl Delay {
    /// Index of `delay_samples` in [`Effect::params`].
    pub const DELAY_SAMPLES: usize = 0;
    /// Index of `feedback`.
    pub const FEEDBACK: usize = 1;
    /// Index of `mix`.
    pub const MIX: usize = 2;
    /// Index of `bpm`.
    pub const BPM: usize = 3;
    /// Index of `delay_time`.
    pub const DELAY_TIME: usize = 4;
    /// Index of `delay_ms`.
    pub const DELAY_MS: usize = 5;
    /// Index of `ping_pong`.
    pub const PING_PONG: usize = 6;
    /// Index of `taps`.
    pub const TAPS: usize = 7;

    /// A delay with torchfx's defaults (feedback 0.3, mix 0.2) and no delay time yet.
    pub fn new() -> Self {
        Self {
            delay_samples: f64::NAN,
            feedback: 0.3,
            mix: 0.2,
            bpm: f64::NAN,
            delay_time: 0.125,
            delay_ms: f64::NAN,
            ping_pong: false,
            taps: 3,
            sample_rate: 0.0,
            lines: Vec::new(),
            capacity: 0,
            write: 0,
            current: 1,
            target: 1,
            fade_pos: 0,
            fade_len: 1,
            pending: None,
        }
    }

    /// A delay of `delay_samples` with the given feedback and mix.
    pub fn with_samples(delay_samples: usize, feedback: f64, mix: f64) -> Result<Self> {
        let mut d = Self::new();
        d.set_param("delay_samples", delay_samples as f64)?;
        d.set_param("feedback", feedback)?;
        d.set_param("mix", mix)?;
        Ok(d)
    }

    /// The delay in samples the line is set to once running crossfades end (after `prepare`).
    pub fn current_delay(&self) -> usize {
        match self.pending {
            Some(d) => d,
            None if self.fade_pos > 0 => self.target,
            None => self.current,
        }
    }

    /// Longest delay the prepared line holds.
    fn max_delay(&self) -> usize {
        self.capacity.saturating_sub(1).max(1)
    }

    /// The delay in samples the parameters ask for at `fs`, before clamping.
    fn requested(&self, fs: f64) -> Option<usize> {
        if !self.delay_samples.is_nan() {
            Some(self.delay_samples as usize)
        } else if !self.delay_ms.is_nan() {
            Some((self.delay_ms * fs / 1000.0).round() as usize)
        } else if !self.bpm.is_nan() {
            Some(bpm_to_samples(self.bpm, self.delay_time, fs))
        } else {
            None
        }
    }

    /// Moves towards the delay the parameters ask for (after a parameter change).
    fn retarget(&mut self) {
        if self.lines.is_empty() {
            return;
        }
        let Some(d) = self.requested(self.sample_rate) else {
            return;
        };
        let d = d.clamp(1, self.max_delay());
        if self.fade_pos > 0 {
            self.pending = (d != self.target).then_some(d);
        } else if d != self.current {
            self.start_fade(d);
        }
    }

    fn start_fade(&mut self, to: usize) {
        self.target = to;
        self.fade_pos = 1;
        self.pending = None;
    }

    #[inline(always)]
    fn read(&self, line: &[f64], d: usize) -> f64 {
        let i = if self.write >= d {
            self.write - d
        } else {
            self.write + self.capacity - d
        };
        line[i]
    }

    /// The wet signal of `line` at this frame (crossfaded while the delay changes).
    #[inline(always)]
    fn wet(&self, line: &[f64], t: f64) -> f64 {
        if self.fade_pos > 0 {
            (1.0 - t) * self.read(line, self.current) + t * self.read(line, self.target)
        } else {
            self.read(line, self.current)
        }
    }

    /// Advances the write position and the crossfade by one frame.
    #[inline(always)]
    fn advance(&mut self) {
        self.write += 1;
        if self.write >= self.capacity {
            self.write = 0;
        }
        if self.fade_pos > 0 {
            if self.fade_pos >= self.fade_len {
                self.current = self.target;
                self.fade_pos = 0;
                if let Some(next) = self.pending.take()
                    && next != self.current
                {
                    self.start_fade(next);
                }
            } else {
                self.fade_pos += 1;
            }
        }
    }
}

impl Effect for Delay {
    fn name(&self) -> &'static str {
        "delay"
    }

    fn params(&self) -> &'static [ParamInfo] {
        &PARAMS
    }

    fn get_param_at(&self, index: usize) -> Option<f64> {
        Some(match index {
            Self::DELAY_SAMPLES => self.delay_samples,
            Self::FEEDBACK => self.feedback,
            Self::MIX => self.mix,
            Self::BPM => self.bpm,
            Self::DELAY_TIME => self.delay_time,
            Self::DELAY_MS => self.delay_ms,
            Self::PING_PONG => f64::from(u8::from(self.ping_pong)),
            Self::TAPS => self.taps as f64,
            _ => return None,
        })
    }

    fn set_param_at(&mut self, index: usize, value: f64) -> Result<()> {
        let p = param_info_at(self.name(), &PARAMS, index)?;
        let unsettable = matches!(index, Self::DELAY_SAMPLES | Self::DELAY_MS | Self::BPM);
        let value = if unsettable && value.is_nan() {
            value
        } else {
            p.validate(value)?
        };
        match index {
            Self::DELAY_SAMPLES => self.delay_samples = value,
            Self::FEEDBACK => self.feedback = value,
            Self::MIX => self.mix = value,
            Self::BPM => self.bpm = value,
            Self::DELAY_TIME => self.delay_time = value,
            Self::DELAY_MS => self.delay_ms = value,
            Self::PING_PONG => self.ping_pong = value != 0.0,
            Self::TAPS => self.taps = value as usize,
            _ => return Err(unhandled_param(self.name(), p)),
        }
        if matches!(
            index,
            Self::DELAY_SAMPLES | Self::DELAY_MS | Self::BPM | Self::DELAY_TIME
        ) {
            self.retarget();
        }
        Ok(())
    }

    fn prepare(&mut self, sample_rate: f64, _max_block: usize, channels: usize) -> Result<()> {
        if !(sample_rate.is_finite() && sample_rate > 0.0) {
            return Err(Error::invalid_sample_rate(
                sample_rate,
                "a positive sample rate",
            ));
        }
        let Some(d) = self.requested(sample_rate) else {
            return Err(Error::invalid_parameter(
                "Delay needs a delay time: delay_samples, delay_ms or bpm",
                "delay_samples",
                "unset",
            )
            .with_suggestion("give delay_samples, or delay_ms, or bpm (with delay_time, e.g. bpm=120,delay_time=1/8)"));
        };
        self.sample_rate = sample_rate;
        self.capacity = (MAX_DELAY_S * sample_rate).ceil() as usize + 1;
        self.lines = vec![vec![0.0; self.capacity]; channels];
        self.write = 0;
        self.current = d.clamp(1, self.max_delay());
        self.target = self.current;
        self.fade_pos = 0;
        self.pending = None;
        self.fade_len = ((CROSSFADE_S * sample_rate).round() as usize).max(1);
        Ok(())
    }

    fn process(&mut self, block: &mut [&mut [f32]]) {
        if self.lines.is_empty() {
            return;
        }
        let frames = block.iter().map(|c| c.len()).min().unwrap_or(0);
        let fb = self.feedback;
        let mix = self.mix;
        let channels = self.lines.len();
        let ping_pong = self.ping_pong && channels == 2;
        // Move the lines out so that reading them does not borrow `self` (no allocation).
        let mut lines = std::mem::take(&mut self.lines);
        for n in 0..frames {
            let t = self.fade_pos as f64 / self.fade_len as f64;
            let w = self.write;
            if ping_pong {
                let xl = block.first().map_or(0.0, |c| finite_or_zero(c[n]));
                let xr = block.get(1).map_or(0.0, |c| finite_or_zero(c[n]));
                let wet_l = self.wet(&lines[0], t);
                let wet_r = self.wet(&lines[1], t);
                lines[0][w] = sanitize_state(fb * wet_r);
                lines[1][w] = sanitize_state(0.5 * (xl + xr) + fb * wet_l);
                for (c, (x, wet)) in [(xl, wet_l), (xr, wet_r)].into_iter().enumerate() {
                    if let Some(ch) = block.get_mut(c) {
                        ch[n] = sanitize_state_f32(((1.0 - mix) * x + mix * wet) as f32);
                    }
                }
            } else {
                for (c, line) in lines.iter_mut().enumerate() {
                    let x = block.get(c).map_or(0.0, |ch| finite_or_zero(ch[n]));
                    let wet = self.wet(line, t);
                    line[w] = sanitize_state(x + fb * wet);
                    if let Some(ch) = block.get_mut(c) {
                        ch[n] = sanitize_state_f32(((1.0 - mix) * x + mix * wet) as f32);
                    }
                }
            }
            self.advance();
        }
        self.lines = lines;
    }

    fn reset(&mut self) {
        for line in &mut self.lines {
            line.fill(0.0);
        }
        self.write = 0;
        if self.fade_pos > 0 {
            self.current = self.pending.take().unwrap_or(self.target);
            self.target = self.current;
            self.fade_pos = 0;
        }
    }

    /// The delay lines of every channel (whole buffers: any slot may be read after a change of
    /// the delay time). The crossfade state is positions and counters only, no samples.
    fn visit_state(&self, visit: &mut dyn FnMut(f64)) {
        for line in &self.lines {
            line.iter().for_each(|&v| visit(v));
        }
    }

    /// `d × ceil(ln(1e-6)/ln(feedback))` (one delay when feedback is 0): the time until the
    /// echoes fall below -120 dB. 0 before `prepare`.
    fn tail_samples(&self) -> usize {
        if self.lines.is_empty() {
            return 0;
        }
        let d = self.current.max(self.target).max(self.pending.unwrap_or(0));
        let repeats = if self.feedback > 0.0 {
            ((1e-6f64).ln() / self.feedback.ln()).ceil().max(1.0) as usize
        } else {
            1
        };
        d.saturating_mul(repeats)
    }

    fn clone_box(&self) -> Box<dyn Effect> {
        Box::new(self.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dsp::fx::test_util::*;

    fn impulse(len: usize) -> Vec<f32> {
        let mut x = vec![0.0; len];
        x[0] = 1.0;
        x
    }

    fn prepared(d: usize, feedback: f64, mix: f64, channels: usize) -> Delay {
        let mut fx = Delay::with_samples(d, feedback, mix).unwrap();
        fx.prepare(48000.0, 4096, channels).unwrap();
        fx
    }

    #[test]
    fn delay_echo_train() {
        let mut fx = prepared(2, 0.5, 1.0, 1);
        let out = run_once(&mut fx, &[impulse(10)]);
        assert_eq!(
            out[0],
            vec![0.0, 0.0, 1.0, 0.0, 0.5, 0.0, 0.25, 0.0, 0.125, 0.0]
        );
        let mut fx = prepared(100, 0.5, 1.0, 1);
        let out = run_once(&mut fx, &[impulse(400)]);
        assert_eq!((out[0][100], out[0][200], out[0][300]), (1.0, 0.5, 0.25));
        assert_eq!(out[0].iter().filter(|&&x| x != 0.0).count(), 3);
    }

    #[test]
    fn delay_mix_zero_is_dry_and_half_mix() {
        let input = noise(2, 5000, 3);
        let mut fx = prepared(7, 0.6, 0.0, 2);
        assert_eq!(run_once(&mut fx, &input), input);
        let mut fx = prepared(2, 0.0, 0.5, 1);
        let out = run_once(&mut fx, &[impulse(6)]);
        assert_eq!(out[0], vec![0.5, 0.0, 0.5, 0.0, 0.0, 0.0]);
    }

    #[test]
    fn delay_bpm_values() {
        assert_eq!(bpm_to_samples(120.0, 0.25, 44100.0), 22050);
        assert_eq!(bpm_to_samples(120.0, 0.125, 44100.0), 11025);
        assert_eq!(bpm_to_samples(120.0, 0.0625, 44100.0), 5512);
        assert_eq!(bpm_to_samples(0.0, 0.25, 44100.0), 0);
        let mut fx = Delay::new();
        fx.set_param("bpm", 120.0).unwrap();
        fx.prepare(44100.0, 512, 1).unwrap();
        assert_eq!(fx.current_delay(), 11025);
        let mut fx = Delay::new();
        fx.set_param("bpm", 120.0).unwrap();
        fx.set_param("delay_time", 0.25).unwrap();
        fx.prepare(44100.0, 512, 1).unwrap();
        assert_eq!(fx.current_delay(), 22050);
    }

    #[test]
    fn delay_time_precedence_and_unset() {
        let mut fx = Delay::new();
        fx.set_param("bpm", 120.0).unwrap();
        fx.set_param("delay_ms", 250.0).unwrap();
        fx.prepare(48000.0, 512, 1).unwrap();
        assert_eq!(fx.current_delay(), 12000);
        fx.set_param("delay_samples", 100.0).unwrap();
        assert_eq!(fx.current_delay(), 100);
        fx.set_param("delay_samples", f64::NAN).unwrap();
        assert!(fx.get_param("delay_samples").unwrap().is_nan());
        assert_eq!(fx.current_delay(), 12000);
        fx.set_param("delay_ms", f64::NAN).unwrap();
        assert_eq!(fx.current_delay(), 12000); // 1/8 at 120 BPM = 0.25 s
        fx.set_param("delay_time", 0.25).unwrap();
        assert_eq!(fx.current_delay(), 24000);
        // Longer than the line: clamped to 10 s.
        fx.set_param("delay_ms", 10_000.0).unwrap();
        assert_eq!(fx.current_delay(), 480_000);
        fx.set_param("bpm", MIN_BPM).unwrap();
        fx.set_param("bpm", MAX_BPM).unwrap();
    }

    #[test]
    fn delay_requires_a_time() {
        let mut fx = Delay::new();
        let e = fx.prepare(48000.0, 512, 2).unwrap_err();
        assert_eq!(e.parameter_name(), Some("delay_samples"));
        let text = e.to_string();
        assert!(text.contains("bpm") && text.contains("delay_ms"), "{text}");
        assert!(fx.set_param("delay_samples", 0.0).is_err());
        assert!(fx.set_param("bpm", 0.0).is_err());
        assert!(fx.set_param("bpm", -1.0).is_err());
        let e = fx.set_param("bpm", 1e-300).unwrap_err().to_string();
        assert!(
            e.contains("Parameter: bpm") && e.contains("Got: 1e-300") && e.contains("[20, 999]"),
            "{e}"
        );
        assert!(fx.set_param("bpm", 1000.0).is_err());
        assert!(fx.set_param("delay_ms", 0.0).is_err());
        let e = fx.set_param("feedback", 0.96).unwrap_err().to_string();
        assert!(e.contains("feedback") && e.contains("[0, 0.95]"), "{e}");
        assert!(fx.set_param("mix", 1.1).is_err());
        assert!(fx.set_param("taps", 0.0).is_err());
        assert!(
            fx.set_param("feedbak", 0.1)
                .unwrap_err()
                .to_string()
                .contains("did you mean 'feedback'")
        );
    }

    #[test]
    fn delay_ping_pong_alternates() {
        let mut fx = Delay::with_samples(3, 0.5, 1.0).unwrap();
        fx.set_param("ping_pong", 1.0).unwrap();
        fx.prepare(48000.0, 64, 2).unwrap();
        let out = run_once(&mut fx, &[impulse(13), impulse(13)]);
        let nonzero = |c: &Vec<f32>| {
            c.iter()
                .enumerate()
                .filter(|(_, x)| **x != 0.0)
                .map(|(n, &x)| (n, x))
                .collect::<Vec<_>>()
        };
        assert_eq!(nonzero(&out[1]), vec![(3, 1.0), (9, 0.25)]);
        assert_eq!(nonzero(&out[0]), vec![(6, 0.5), (12, 0.125)]);
        // Other widths: mono per channel.
        let mut fx = Delay::with_samples(3, 0.5, 1.0).unwrap();
        fx.set_param("ping_pong", 1.0).unwrap();
        fx.prepare(48000.0, 64, 3).unwrap();
        let out = run_once(&mut fx, &[impulse(7), vec![0.0; 7], vec![0.0; 7]]);
        assert_eq!(out[0], vec![0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.5]);
        assert!(out[1].iter().chain(&out[2]).all(|&x| x == 0.0));
    }

    #[test]
    fn delay_change_crossfades_without_click() {
        let fs = 48000.0;
        let mut fx = Delay::with_samples(1000, 0.0, 1.0).unwrap();
        fx.prepare(fs, 512, 1).unwrap();
        let sine: Vec<f32> = (0..48000)
            .map(|n| (2.0 * std::f64::consts::PI * 440.0 * n as f64 / fs).sin() as f32)
            .collect();
        let mut out = Vec::new();
        for (i, chunk) in sine.chunks(512).enumerate() {
            let mut b = chunk.to_vec();
            if i == 20 {
                fx.set_param("delay_samples", 1537.0).unwrap();
                // These arrive mid-fade: the latest is applied after it.
                fx.set_param("delay_ms", 5.0).unwrap();
                fx.set_param("delay_samples", 1777.0).unwrap();
            }
            fx.process(&mut [&mut b[..]]);
            out.extend(b);
        }
        let max_step = out[1100..]
            .windows(2)
            .map(|w| (w[1] - w[0]).abs())
            .fold(0.0f32, f32::max);
        assert!(max_step < 0.07, "max step {max_step}");
        assert_eq!(fx.current_delay(), 1777);
        // After the fades the output is the input delayed by exactly 1777 samples.
        for n in 40_000..40_100 {
            assert_eq!(out[n], sine[n - 1777]);
        }
    }

    #[test]
    fn delay_tail_samples() {
        let fx = prepared(100, 0.5, 0.5, 1);
        assert_eq!(fx.tail_samples(), 100 * 20);
        let fx = prepared(100, 0.0, 0.5, 1);
        assert_eq!(fx.tail_samples(), 100);
        assert_eq!(Delay::new().tail_samples(), 0);
    }

    #[test]
    fn delay_taps_spec_cases() {
        let x = impulse(5);
        let out = delay_taps(&[&x], 2, 0.0, 1.0, 1, false);
        assert_eq!(out[0].len(), 5 + 2);
        assert_eq!(out[0][2], 1.0);
        let out = delay_taps(&[&x], 2, 0.5, 1.0, 3, false);
        assert_eq!(out[0].len(), 5 + 6);
        assert_eq!((out[0][2], out[0][4], out[0][6]), (1.0, 0.5, 0.25));
        assert_eq!(out[0].iter().filter(|&&v| v != 0.0).count(), 3);
        // mix 0: dry, zero padded; mix 0.5: half each.
        let out = delay_taps(&[&x], 2, 0.5, 0.0, 3, false);
        assert_eq!(
            out[0],
            [1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0]
        );
        let out = delay_taps(&[&x], 2, 0.5, 0.5, 2, false);
        assert_eq!(&out[0][..5], &[0.5, 0.0, 0.5, 0.0, 0.25]);
        // Short input, several channels.
        let out = delay_taps(&[&[1.0][..], &[0.5][..]], 4, 0.5, 1.0, 2, false);
        assert_eq!(out[0], vec![0.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 0.5]);
        assert_eq!(out[1], vec![0.0, 0.0, 0.0, 0.0, 0.5, 0.0, 0.0, 0.0, 0.25]);
    }

    #[test]
    fn delay_taps_ping_pong_routing() {
        let l = impulse(4);
        let r = vec![0.0, 1.0, 0.0, 0.0];
        let out = delay_taps(&[&l, &r], 2, 0.5, 1.0, 3, true);
        // Odd taps (1, 3): L into R at 2 and 6; even tap 2: R into L at 1 + 4 = 5.
        assert_eq!(
            out[1],
            vec![0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 0.25, 0.0, 0.0, 0.0]
        );
        assert_eq!(
            out[0],
            vec![0.0, 0.0, 0.0, 0.0, 0.0, 0.5, 0.0, 0.0, 0.0, 0.0]
        );
        // Mono fallback for one channel.
        let out = delay_taps(&[&l], 2, 0.5, 1.0, 2, true);
        assert_eq!(out[0], vec![0.0, 0.0, 1.0, 0.0, 0.5, 0.0, 0.0, 0.0]);
    }

    #[test]
    fn delay_chunked_matches_one_shot() {
        assert_chunked_matches(
            &|| Box::new(Delay::with_samples(333, 0.7, 0.5).unwrap()),
            2,
            20_000,
        );
        assert_chunked_matches(
            &|| {
                let mut d = Delay::with_samples(1000, 0.6, 0.4).unwrap();
                d.set_param("ping_pong", 1.0).unwrap();
                Box::new(d)
            },
            2,
            20_000,
        );
    }

    #[test]
    fn delay_no_subnormals_and_nan_recovery() {
        let mut fx = Delay::with_samples(300, 0.95, 0.7).unwrap();
        assert_no_subnormal_output(&mut fx, 2);
        assert!(fx.lines.iter().flatten().all(|&v| is_clean(v)));
        assert_nan_recovers(&mut Delay::with_samples(100, 0.9, 0.5).unwrap(), 2);
        let mut pp = Delay::with_samples(100, 0.9, 0.5).unwrap();
        pp.set_param("ping_pong", 1.0).unwrap();
        assert_nan_recovers(&mut pp, 2);
    }

    #[test]
    fn delay_visits_the_lines() {
        let mut fx = Delay::with_samples(100, 0.9, 0.5).unwrap();
        assert!(visited(&fx).is_empty());
        fx.set_param("ping_pong", 1.0).unwrap();
        fx.prepare(48000.0, 256, 2).unwrap();
        assert_eq!(visited(&fx).len(), 2 * 480_001);
        run_chunked(&mut fx, &noise(2, 1024, 3), &[256]);
        let state = visited(&fx);
        assert!(state.iter().any(|&v| v != 0.0));
        assert!(state.iter().all(|&v| is_clean(v)));
        fx.reset();
        assert!(visited(&fx).iter().all(|&v| v == 0.0));
    }

    #[test]
    fn delay_unprepared_and_odd_blocks() {
        assert_passthrough_unprepared(&mut Delay::with_samples(3, 0.5, 0.5).unwrap());
        let mut fx = prepared(3, 0.5, 1.0, 1);
        let mut a = impulse(8);
        let mut b = impulse(8);
        fx.process(&mut [&mut a[..], &mut b[..]]);
        assert_eq!(b, impulse(8));
        assert_eq!(a[3], 1.0);
        // Fewer channels than prepared: the missing line is fed silence, nothing breaks.
        let mut fx = prepared(3, 0.5, 1.0, 2);
        let mut only = impulse(8);
        fx.process(&mut [&mut only[..]]);
        assert_eq!(only[3], 1.0);
        assert_eq!(only[6], 0.5);
        fx.process(&mut []);
        let mut long = vec![0.1f32; 10_000];
        fx.process(&mut [&mut long[..]]);
    }
}

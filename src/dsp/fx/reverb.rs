//! `reverb`: the Freeverb algorithm of torchfx 0.8.0 (8 damped feedback combs, 4 allpasses).

use super::finite_or_zero;
use crate::dsp::{Effect, ParamInfo, find_param, sanitize_state, sanitize_state_f32};
use crate::error::{Error, Result};

/// Comb lengths at 44.1 kHz.
const COMB_LENGTHS: [usize; 8] = [1116, 1188, 1277, 1356, 1422, 1491, 1557, 1617];
/// Allpass lengths at 44.1 kHz.
const ALLPASS_LENGTHS: [usize; 4] = [556, 441, 341, 225];
/// Input gain of the comb bank.
const FIXED_GAIN: f64 = 0.015;
/// Allpass feedback.
const ALLPASS_FEEDBACK: f64 = 0.5;
/// Largest stereo spread accepted (samples at 44.1 kHz).
const MAX_SPREAD: f64 = 100.0;
/// Longest tail reported, in seconds.
const MAX_TAIL_S: f64 = 30.0;

static PARAMS: [ParamInfo; 4] = [
    ParamInfo::continuous("room_size", 0.0, 1.0, 0.5, "", "Room size: comb feedback 0.7 + 0.28·room_size"),
    ParamInfo::continuous("damping", 0.0, 1.0, 0.5, "", "High-frequency damping in the combs"),
    ParamInfo::continuous("mix", 0.0, 1.0, 0.3, "", "Wet share: y = (1−mix)·x + mix·wet"),
    ParamInfo::continuous(
        "stereo_spread",
        0.0,
        MAX_SPREAD,
        0.0,
        "samples",
        "Extra delay-line length of odd channels, in samples at 44.1 kHz (0 = identical L/R like torchfx, 23 = classic Freeverb)",
    )
    .unsmoothed(),
];

/// A circular delay line with an active length no longer than its buffer.
#[derive(Debug, Clone)]
struct Line {
    buf: Vec<f64>,
    len: usize,
    idx: usize,
}

impl Line {
    fn new(capacity: usize, len: usize) -> Self {
        Self {
            buf: vec![0.0; capacity.max(1)],
            len: len.clamp(1, capacity.max(1)),
            idx: 0,
        }
    }

    fn set_len(&mut self, len: usize) {
        self.len = len.clamp(1, self.buf.len());
        if self.idx >= self.len {
            self.idx %= self.len;
        }
    }

    fn clear(&mut self) {
        self.buf.fill(0.0);
        self.idx = 0;
    }
}

/// The delay lines of one channel.
#[derive(Debug, Clone)]
struct ChannelState {
    combs: [Line; 8],
    stores: [f64; 8],
    allpasses: [Line; 4],
}

/// Length of a line of `base` samples at 44.1 kHz, plus `spread`, at `fs` (at least 1).
fn scaled_len(base: usize, spread: f64, fs: f64) -> usize {
    (((base as f64 + spread) * fs / 44100.0).round() as usize).max(1)
}

/// torchfx 0.8.0's `Reverb(room_size=0.5, damping=0.5, mix=0.3)`: Freeverb on each channel.
///
/// Per channel and sample, with `fb = 0.7 + 0.28·room_size` and `damp = 0.4·damping`:
/// eight combs in parallel (`out = buf; store = out(1−damp) + store·damp;
/// buf = 0.015·x + store·fb; acc += out`), then four allpasses in series (`bo = buf;
/// buf = acc + 0.5·bo; acc = bo − acc`), and `y = (1−mix)·x + mix·acc`. Line lengths are
/// `round(L·fs/44100)` (at least 1) for the comb lengths 1116…1617 and allpass lengths
/// 556, 441, 341, 225.
///
/// rtfx adds `stereo_spread`: odd channels get lines `round((L + spread)·fs/44100)` long. The
/// default 0 keeps torchfx's identical left and right; Freeverb's classic value is 23. All
/// lines are allocated for the largest spread in `prepare`, so changing the spread never
/// allocates; the lines keep their contents (the read positions wrap into the new length).
///
/// Room size, damping and mix are read per sample and can change at any time. The state is in
/// `f64` and flushed of tiny values; a non-finite input sample counts as silence.
#[derive(Debug, Clone)]
pub struct Reverb {
    room_size: f64,
    damping: f64,
    mix: f64,
    spread: f64,
    sample_rate: f64,
    states: Vec<ChannelState>,
}

impl Default for Reverb {
    fn default() -> Self {
        Self::new()
    }
}

impl Reverb {
    /// A reverb with torchfx's defaults (room 0.5, damping 0.5, mix 0.3).
    pub fn new() -> Self {
        Self {
            room_size: 0.5,
            damping: 0.5,
            mix: 0.3,
            spread: 0.0,
            sample_rate: 0.0,
            states: Vec::new(),
        }
    }

    /// A reverb with the given room size, damping and mix (each in [0, 1]).
    pub fn with(room_size: f64, damping: f64, mix: f64) -> Result<Self> {
        let mut r = Self::new();
        r.set_param("room_size", room_size)?;
        r.set_param("damping", damping)?;
        r.set_param("mix", mix)?;
        Ok(r)
    }

    /// The active comb lengths of a channel (after `prepare`).
    pub fn comb_lengths(&self, channel: usize) -> Option<[usize; 8]> {
        let s = self.states.get(channel)?;
        Some(std::array::from_fn(|i| s.combs[i].len))
    }

    /// The active allpass lengths of a channel (after `prepare`).
    pub fn allpass_lengths(&self, channel: usize) -> Option<[usize; 4]> {
        let s = self.states.get(channel)?;
        Some(std::array::from_fn(|i| s.allpasses[i].len))
    }

    fn spread_of(&self, channel: usize) -> f64 {
        if channel % 2 == 1 { self.spread } else { 0.0 }
    }

    fn apply_lengths(&mut self) {
        let fs = self.sample_rate;
        for c in 0..self.states.len() {
            let spread = self.spread_of(c);
            let s = &mut self.states[c];
            for (line, &base) in s.combs.iter_mut().zip(&COMB_LENGTHS) {
                line.set_len(scaled_len(base, spread, fs));
            }
            for (line, &base) in s.allpasses.iter_mut().zip(&ALLPASS_LENGTHS) {
                line.set_len(scaled_len(base, spread, fs));
            }
        }
    }
}

impl Effect for Reverb {
    fn name(&self) -> &'static str {
        "reverb"
    }

    fn params(&self) -> &'static [ParamInfo] {
        &PARAMS
    }

    fn get_param(&self, name: &str) -> Option<f64> {
        let p = find_param(self.name(), &PARAMS, name).ok()?;
        Some(match p.name {
            "room_size" => self.room_size,
            "damping" => self.damping,
            "mix" => self.mix,
            _ => self.spread,
        })
    }

    fn set_param(&mut self, name: &str, value: f64) -> Result<()> {
        let p = find_param(self.name(), &PARAMS, name)?;
        let value = p.validate(value)?;
        match p.name {
            "room_size" => self.room_size = value,
            "damping" => self.damping = value,
            "mix" => self.mix = value,
            _ => {
                self.spread = value;
                self.apply_lengths();
            }
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
        self.sample_rate = sample_rate;
        self.states = (0..channels)
            .map(|c| {
                let spread = self.spread_of(c);
                ChannelState {
                    combs: std::array::from_fn(|i| {
                        Line::new(
                            scaled_len(COMB_LENGTHS[i], MAX_SPREAD, sample_rate),
                            scaled_len(COMB_LENGTHS[i], spread, sample_rate),
                        )
                    }),
                    stores: [0.0; 8],
                    allpasses: std::array::from_fn(|i| {
                        Line::new(
                            scaled_len(ALLPASS_LENGTHS[i], MAX_SPREAD, sample_rate),
                            scaled_len(ALLPASS_LENGTHS[i], spread, sample_rate),
                        )
                    }),
                }
            })
            .collect();
        Ok(())
    }

    fn process(&mut self, block: &mut [&mut [f32]]) {
        let fb = 0.7 + 0.28 * self.room_size;
        let damp = 0.4 * self.damping;
        let mix = self.mix;
        for (ch, state) in block.iter_mut().zip(self.states.iter_mut()) {
            for sample in ch.iter_mut() {
                let x = finite_or_zero(*sample);
                let mut acc = 0.0;
                for (line, store) in state.combs.iter_mut().zip(state.stores.iter_mut()) {
                    let out = line.buf[line.idx];
                    *store = sanitize_state(out * (1.0 - damp) + *store * damp);
                    line.buf[line.idx] = sanitize_state(FIXED_GAIN * x + *store * fb);
                    acc += out;
                    line.idx += 1;
                    if line.idx >= line.len {
                        line.idx = 0;
                    }
                }
                for line in state.allpasses.iter_mut() {
                    let bo = line.buf[line.idx];
                    line.buf[line.idx] = sanitize_state(acc + ALLPASS_FEEDBACK * bo);
                    acc = bo - acc;
                    line.idx += 1;
                    if line.idx >= line.len {
                        line.idx = 0;
                    }
                }
                *sample = sanitize_state_f32(((1.0 - mix) * x + mix * acc) as f32);
            }
        }
    }

    fn reset(&mut self) {
        for s in &mut self.states {
            s.combs.iter_mut().for_each(Line::clear);
            s.allpasses.iter_mut().for_each(Line::clear);
            s.stores = [0.0; 8];
        }
    }

    /// The comb and allpass lines (whole buffers: a shortened line keeps its tail, which is read
    /// again when the spread grows) and the comb damping stores of every channel.
    fn visit_state(&self, visit: &mut dyn FnMut(f64)) {
        for s in &self.states {
            for line in s.combs.iter().chain(&s.allpasses) {
                line.buf.iter().for_each(|&v| visit(v));
            }
            s.stores.iter().for_each(|&v| visit(v));
        }
    }

    /// The time for the slowest comb to decay by 120 dB plus the allpass delays, at most 30 s.
    fn tail_samples(&self) -> usize {
        if self.sample_rate <= 0.0 {
            return 0;
        }
        let fb = 0.7 + 0.28 * self.room_size;
        let longest_comb = scaled_len(COMB_LENGTHS[7], self.spread, self.sample_rate) as f64;
        let allpasses: usize = ALLPASS_LENGTHS
            .iter()
            .map(|&l| scaled_len(l, self.spread, self.sample_rate))
            .sum();
        let loops = (1e-6f64).ln() / fb.ln();
        let tail = longest_comb * loops + allpasses as f64;
        tail.min(MAX_TAIL_S * self.sample_rate).ceil() as usize
    }

    fn clone_box(&self) -> Box<dyn Effect> {
        Box::new(self.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dsp::fx::test_util::*;

    #[test]
    fn reverb_mix_zero_is_dry_exactly() {
        let mut r = Reverb::with(0.8, 0.3, 0.0).unwrap();
        r.prepare(48000.0, 4096, 2).unwrap();
        let input = noise(2, 20_000, 1);
        assert_eq!(run_chunked(&mut r, &input, &[4096]), input);
    }

    #[test]
    fn reverb_comb_lengths_at_48k() {
        let mut r = Reverb::new();
        r.prepare(48000.0, 64, 2).unwrap();
        // round(L·48000/44100)
        assert_eq!(
            r.comb_lengths(0).unwrap(),
            [1215, 1293, 1390, 1476, 1548, 1623, 1695, 1760]
        );
        assert_eq!(r.allpass_lengths(0).unwrap(), [605, 480, 371, 245]);
        assert_eq!(r.comb_lengths(1), r.comb_lengths(0));
        r.set_param("stereo_spread", 23.0).unwrap();
        assert_eq!(
            r.comb_lengths(1).unwrap()[0],
            ((1116.0f64 + 23.0) * 48000.0 / 44100.0).round() as usize
        );
        assert_eq!(r.comb_lengths(0).unwrap()[0], 1215);
        r.prepare(44100.0, 64, 1).unwrap();
        assert_eq!(r.comb_lengths(0).unwrap(), COMB_LENGTHS);
        // Tiny rates keep lines of at least one sample.
        r.prepare(10.0, 64, 1).unwrap();
        assert!(r.comb_lengths(0).unwrap().iter().all(|&l| l >= 1));
    }

    /// A direct transcription of the spec's per-sample loop for one channel at 44.1 kHz.
    fn reference(x: &[f32], room: f64, damping: f64, mix: f64) -> Vec<f64> {
        let fb = 0.7 + 0.28 * room;
        let damp = 0.4 * damping;
        let mut combs: Vec<Vec<f64>> = COMB_LENGTHS.iter().map(|&l| vec![0.0; l]).collect();
        let mut stores = [0.0f64; 8];
        let mut cidx = [0usize; 8];
        let mut aps: Vec<Vec<f64>> = ALLPASS_LENGTHS.iter().map(|&l| vec![0.0; l]).collect();
        let mut aidx = [0usize; 4];
        x.iter()
            .map(|&s| {
                let s = f64::from(s);
                let mut acc = 0.0;
                for i in 0..8 {
                    let out = combs[i][cidx[i]];
                    stores[i] = out * (1.0 - damp) + stores[i] * damp;
                    combs[i][cidx[i]] = 0.015 * s + stores[i] * fb;
                    acc += out;
                    cidx[i] = (cidx[i] + 1) % combs[i].len();
                }
                for i in 0..4 {
                    let bo = aps[i][aidx[i]];
                    aps[i][aidx[i]] = acc + 0.5 * bo;
                    acc = bo - acc;
                    aidx[i] = (aidx[i] + 1) % aps[i].len();
                }
                (1.0 - mix) * s + mix * acc
            })
            .collect()
    }

    #[test]
    fn reverb_matches_spec_loop() {
        let input = noise(1, 10_000, 4);
        let mut r = Reverb::with(0.7, 0.4, 0.6).unwrap();
        r.prepare(44100.0, 10_000, 1).unwrap();
        let out = run_once(&mut r, &input);
        let expected = reference(&input[0], 0.7, 0.4, 0.6);
        for (n, (a, b)) in out[0].iter().zip(&expected).enumerate() {
            assert!((f64::from(*a) - b).abs() < 1e-6, "frame {n}: {a} vs {b}");
        }
        // The first comb output arrives after the shortest comb, then the allpass chain passes
        // it at once: before 1116 samples the output is only the dry part plus allpass echoes of 0.
        let mut r = Reverb::with(0.5, 0.5, 1.0).unwrap();
        r.prepare(44100.0, 2048, 1).unwrap();
        let mut imp = vec![0.0f32; 2048];
        imp[0] = 1.0;
        r.process(&mut [&mut imp[..]]);
        assert!(imp[..1116].iter().all(|&x| x == 0.0));
        assert!(imp[1116] != 0.0);
    }

    #[test]
    fn reverb_reset_cuts_tail() {
        let mut r = Reverb::with(0.9, 0.2, 0.5).unwrap();
        r.prepare(48000.0, 1024, 2).unwrap();
        let burst = noise(2, 4096, 2);
        run_chunked(&mut r, &burst, &[1024]);
        let silence = vec![vec![0.0f32; 1024]; 2];
        let tail = run_once(&mut r, &silence);
        assert!(tail.iter().flatten().any(|&x| x.abs() > 1e-4));
        r.reset();
        let after = run_once(&mut r, &silence);
        assert!(after.iter().flatten().all(|&x| x == 0.0));
    }

    #[test]
    fn reverb_identical_channels_without_spread() {
        let mut r = Reverb::with(0.6, 0.5, 0.5).unwrap();
        r.prepare(48000.0, 4096, 2).unwrap();
        let x = noise(1, 4096, 8).remove(0);
        let out = run_once(&mut r, &[x.clone(), x]);
        assert_eq!(out[0], out[1]);
        let mut r = Reverb::with(0.6, 0.5, 0.5).unwrap();
        r.set_param("stereo_spread", 23.0).unwrap();
        r.prepare(48000.0, 4096, 2).unwrap();
        let x = noise(1, 4096, 8).remove(0);
        let out = run_once(&mut r, &[x.clone(), x]);
        assert_ne!(out[0], out[1]);
    }

    #[test]
    fn reverb_tail_estimate() {
        let mut r = Reverb::with(0.5, 0.5, 0.3).unwrap();
        assert_eq!(r.tail_samples(), 0);
        r.prepare(44100.0, 64, 1).unwrap();
        let fb: f64 = 0.84;
        let expected = 1617.0 * (1e-6f64).ln() / fb.ln() + (556 + 441 + 341 + 225) as f64;
        assert_eq!(r.tail_samples(), expected.ceil() as usize);
        r.set_param("room_size", 1.0).unwrap();
        assert!(r.tail_samples() <= 30 * 44100);
    }

    #[test]
    fn reverb_params_validate() {
        let mut r = Reverb::new();
        for p in ["room_size", "damping", "mix"] {
            let e = r.set_param(p, 1.5).unwrap_err().to_string();
            assert!(e.contains(p) && e.contains("[0, 1]"), "{e}");
        }
        assert!(r.set_param("stereo_spread", 101.0).is_err());
        assert!(r.set_param("ROOM_SIZE", 0.2).is_ok());
        assert_eq!(r.get_param("room_size"), Some(0.2));
    }

    #[test]
    fn reverb_chunked_matches_one_shot() {
        assert_chunked_matches(
            &|| {
                let mut r = Reverb::with(0.8, 0.3, 0.4).unwrap();
                r.set_param("stereo_spread", 23.0).unwrap();
                Box::new(r)
            },
            2,
            30_000,
        );
    }

    #[test]
    fn reverb_no_subnormals_and_nan_recovery() {
        assert_no_subnormal_output(&mut Reverb::with(1.0, 0.0, 0.5).unwrap(), 2);
        assert_nan_recovers(&mut Reverb::with(0.9, 0.5, 0.5).unwrap(), 2);
        let mut r = Reverb::with(0.9, 0.5, 0.5).unwrap();
        assert_no_subnormal_output(&mut r, 1);
        for s in &r.states {
            for l in s.combs.iter().chain(&s.allpasses) {
                assert!(l.buf.iter().all(|&v| is_clean(v)));
            }
            assert!(s.stores.iter().all(|&v| is_clean(v)));
        }
    }

    #[test]
    fn reverb_visits_lines_and_stores() {
        let mut r = Reverb::with(0.9, 0.5, 0.5).unwrap();
        assert!(visited(&r).is_empty());
        r.set_param("stereo_spread", 23.0).unwrap();
        r.prepare(48000.0, 1024, 2).unwrap();
        let per_channel: usize = COMB_LENGTHS
            .iter()
            .chain(&ALLPASS_LENGTHS)
            .map(|&l| scaled_len(l, MAX_SPREAD, 48000.0))
            .sum::<usize>()
            + 8;
        assert_eq!(visited(&r).len(), 2 * per_channel);
        assert!(visited(&r).iter().all(|&v| v == 0.0));
        run_chunked(&mut r, &noise(2, 4096, 3), &[1024]);
        let state = visited(&r);
        assert!(state.iter().any(|&v| v != 0.0));
        assert!(state.iter().all(|&v| is_clean(v)));
        r.reset();
        assert!(visited(&r).iter().all(|&v| v == 0.0));
    }

    #[test]
    fn reverb_passthrough_before_prepare_and_extra_channels() {
        assert_passthrough_unprepared(&mut Reverb::new());
        let mut r = Reverb::with(0.5, 0.5, 1.0).unwrap();
        r.prepare(48000.0, 64, 1).unwrap();
        let mut a = vec![1.0f32; 64];
        let mut b = vec![1.0f32; 64];
        r.process(&mut [&mut a[..], &mut b[..]]);
        assert!(b.iter().all(|&x| x == 1.0));
        // Longer block than prepared: processed, no panic.
        let mut long = vec![0.5f32; 1000];
        r.process(&mut [&mut long[..]]);
    }
}

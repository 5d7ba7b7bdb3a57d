//! `reverb`: the Freeverb algorithm of torchfx 0.8.0 (8 damped feedback combs, 4 allpasses).

use super::finite_or_zero;
use crate::dsp::simd::{F32x4, Pair};
use crate::dsp::{
    Effect, ParamInfo, param_info_at, sanitize_state, sanitize_state_f32, unhandled_param,
};
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

impl ChannelState {
    /// Runs `samples` through the reverb; no line may wrap within them.
    #[inline]
    fn run_segment(&mut self, samples: &mut [f32], fb: f64, damp: f64, mix: f64) {
        let n = samples.len();
        let combs = self.combs.each_mut().map(|l| &mut l.buf[l.idx..l.idx + n]);
        let allpasses = self
            .allpasses
            .each_mut()
            .map(|l| &mut l.buf[l.idx..l.idx + n]);
        let [c0, c1, c2, c3, c4, c5, c6, c7] = combs;
        let [a0, a1, a2, a3] = allpasses;
        let mut stores = self.stores;
        for (i, sample) in samples.iter_mut().enumerate() {
            let x = finite_or_zero(*sample);
            let input = FIXED_GAIN * x;
            let mut acc = 0.0;
            // The eight combs are independent: written out so their recursions overlap.
            for (line, store) in [
                &mut *c0, &mut *c1, &mut *c2, &mut *c3, &mut *c4, &mut *c5, &mut *c6, &mut *c7,
            ]
            .into_iter()
            .zip(stores.iter_mut())
            {
                let out = line[i];
                *store = out * (1.0 - damp) + *store * damp;
                line[i] = flush_tiny(input + *store * fb);
                acc += out;
            }
            for line in [&mut *a0, &mut *a1, &mut *a2, &mut *a3] {
                let bo = line[i];
                line[i] = flush_tiny(acc + ALLPASS_FEEDBACK * bo);
                acc = bo - acc;
            }
            *sample = sanitize_state_f32(((1.0 - mix) * x + mix * acc) as f32);
        }
        // Stores only feed the (flushed) line writes, so flushing them once per segment keeps
        // them out of the subnormal range without a test per sample.
        self.stores = stores.map(sanitize_state);
        for line in self.combs.iter_mut().chain(self.allpasses.iter_mut()) {
            line.idx += n;
            if line.idx >= line.len {
                line.idx = 0;
            }
        }
    }
}

/// Zero for magnitudes below 1e-30 (far above the subnormal range, far below hearing). The
/// input is finite, so the lines cannot hold NaN; one comparison per write suffices.
#[inline(always)]
fn flush_tiny(x: f64) -> f64 {
    if x.abs() < crate::dsp::FLUSH_BELOW {
        0.0
    } else {
        x
    }
}

/// Frames per pass of the packed stereo path (the size of its scratch buffers).
const CHUNK: usize = 256;

/// Largest input magnitude of the packed stereo path: far beyond any audio, and small enough
/// that no `f32` line or sum can overflow to infinity (and then NaN) whatever the input.
const INPUT_LIMIT: f32 = 1e30;

/// A per-channel state value in `f32`, limited like the inputs (only absurd inputs on the
/// `f64` path can leave values this large).
fn packed_value(x: f64) -> f32 {
    x.clamp(-1e32, 1e32) as f32
}

/// A delay line of (left, right) pairs for the packed stereo path: both channels share the
/// active length and the position.
///
/// The right channel is stored rotated: physical slot `p < len` holds the right channel's
/// logical slot `(p + rot) % len` (slots from `len` on are stored as they are). This lets two
/// per-channel lines of equal length but different positions be packed and unpacked exactly.
#[derive(Debug, Clone)]
struct PairLine {
    buf: Vec<Pair>,
    len: usize,
    idx: usize,
    rot: usize,
}

impl PairLine {
    fn new(capacity: usize) -> Self {
        Self {
            buf: vec![Pair::default(); capacity.max(1)],
            len: 1,
            idx: 0,
            rot: 0,
        }
    }

    /// Takes over the state of two per-channel lines of equal length and capacity (rounded to
    /// `f32`).
    fn pack(&mut self, left: &Line, right: &Line) {
        let len = left.len;
        debug_assert_eq!(len, right.len);
        debug_assert!(self.buf.len() == left.buf.len() && self.buf.len() == right.buf.len());
        self.len = len;
        self.idx = left.idx;
        self.rot = (right.idx + len - left.idx) % len;
        for (p, (&l, &r)) in self.buf.iter_mut().zip(left.buf.iter().zip(&right.buf)) {
            *p = Pair([packed_value(l), packed_value(r)]);
        }
        // Right lane, physical slot p < len ← logical slot (p + rot) % len.
        let (head, tail) = right.buf[..len].split_at(self.rot);
        for (p, &r) in self.buf[..len].iter_mut().zip(tail.iter().chain(head)) {
            p.0[1] = packed_value(r);
        }
    }

    /// Writes the state back to two per-channel lines (the inverse of [`PairLine::pack`]).
    fn unpack(&self, left: &mut Line, right: &mut Line) {
        let len = self.len;
        left.idx = self.idx;
        right.idx = (self.idx + self.rot) % len;
        for (p, (l, r)) in self
            .buf
            .iter()
            .zip(left.buf.iter_mut().zip(right.buf.iter_mut()))
        {
            *l = f64::from(p.0[0]);
            *r = f64::from(p.0[1]);
        }
        let (head, tail) = right.buf[..len].split_at_mut(self.rot);
        for (p, r) in self.buf[..len].iter().zip(tail.iter_mut().chain(head)) {
            *r = f64::from(p.0[1]);
        }
    }

    fn clear(&mut self) {
        self.buf.fill(Pair::default());
        self.idx = 0;
        self.rot = 0;
    }

    /// The next `n` slots from the position (the caller makes sure they do not wrap).
    #[inline(always)]
    fn ahead(&mut self, n: usize) -> &mut [Pair] {
        &mut self.buf[self.idx..self.idx + n]
    }

    #[inline(always)]
    fn advance(&mut self, n: usize) {
        self.idx += n;
        if self.idx >= self.len {
            self.idx = 0;
        }
    }
}

/// The per-block coefficients of the packed path, in `f32`. Coefficients below 1e-30 count as
/// zero, so no product of them can be subnormal.
#[derive(Clone, Copy)]
struct Coeffs {
    fb: f32,
    damp: f32,
    undamp: f32,
    dry: f32,
    wet: f32,
}

impl Coeffs {
    fn new(fb: f64, damp: f64, mix: f64) -> Self {
        let c = |x: f64| {
            if x < crate::dsp::FLUSH_BELOW {
                0.0
            } else {
                x as f32
            }
        };
        Self {
            fb: c(fb),
            damp: c(damp),
            undamp: c(1.0 - damp),
            dry: c(1.0 - mix),
            wet: c(mix),
        }
    }
}

/// Both channels of a stereo reverb with identical line lengths, in `f32`: every line holds
/// (left, right) pairs, the combs run in pairs (`j`, `j + 4`) as four lanes
/// `[left j, right j, left j+4, right j+4]`, and the allpasses run two frames at a time.
#[derive(Debug, Clone)]
struct PairState {
    combs: [PairLine; 8],
    /// The damping stores of the comb pairs, in the lane order of the combs.
    stores: [[f32; 4]; 4],
    allpasses: [PairLine; 4],
    /// Scratch for one chunk: `0.015·x` as `[left, right, left, right]`.
    inputs: Vec<[f32; 4]>,
    /// Scratch for one chunk: `(1 − mix)·x`.
    dry: Vec<Pair>,
    /// Scratch for one chunk: the sum of the comb outputs.
    acc: Vec<Pair>,
}

impl PairState {
    fn new(sample_rate: f64) -> Self {
        Self {
            combs: std::array::from_fn(|i| {
                PairLine::new(scaled_len(COMB_LENGTHS[i], MAX_SPREAD, sample_rate))
            }),
            stores: [[0.0; 4]; 4],
            allpasses: std::array::from_fn(|i| {
                PairLine::new(scaled_len(ALLPASS_LENGTHS[i], MAX_SPREAD, sample_rate))
            }),
            inputs: vec![[0.0; 4]; CHUNK],
            dry: vec![Pair::default(); CHUNK],
            acc: vec![Pair::default(); CHUNK],
        }
    }

    fn pack(&mut self, left: &ChannelState, right: &ChannelState) {
        let lines = self.combs.iter_mut().chain(self.allpasses.iter_mut());
        let lefts = left.combs.iter().chain(&left.allpasses);
        let rights = right.combs.iter().chain(&right.allpasses);
        for (p, (l, r)) in lines.zip(lefts.zip(rights)) {
            p.pack(l, r);
        }
        self.stores = std::array::from_fn(|j| {
            [
                left.stores[j],
                right.stores[j],
                left.stores[j + 4],
                right.stores[j + 4],
            ]
            .map(packed_value)
        });
    }

    fn unpack(&self, left: &mut ChannelState, right: &mut ChannelState) {
        let lines = self.combs.iter().chain(&self.allpasses);
        let lefts = left.combs.iter_mut().chain(left.allpasses.iter_mut());
        let rights = right.combs.iter_mut().chain(right.allpasses.iter_mut());
        for (p, (l, r)) in lines.zip(lefts.zip(rights)) {
            p.unpack(l, r);
        }
        for (j, s) in self.stores.iter().enumerate() {
            let [l0, r0, l4, r4] = s.map(f64::from);
            (left.stores[j], right.stores[j]) = (l0, r0);
            (left.stores[j + 4], right.stores[j + 4]) = (l4, r4);
        }
    }

    fn clear(&mut self) {
        self.combs.iter_mut().for_each(PairLine::clear);
        self.allpasses.iter_mut().for_each(PairLine::clear);
        self.stores = [[0.0; 4]; 4];
    }

    /// Runs a stereo block through the reverb, in chunks of at most [`CHUNK`] frames.
    fn process(&mut self, left: &mut [f32], right: &mut [f32], k: Coeffs) {
        for (l, r) in left.chunks_mut(CHUNK).zip(right.chunks_mut(CHUNK)) {
            self.run_chunk(l, r, k);
        }
    }

    /// Runs at most [`CHUNK`] frames: the inputs, then the combs, then the allpasses and the
    /// output, each pass split where its lines wrap. The combs never read what the allpasses
    /// write, and no line reads back a slot written in the same pass before it wraps, so the
    /// passes compute exactly what the frame-by-frame loop computes.
    fn run_chunk(&mut self, left: &mut [f32], right: &mut [f32], k: Coeffs) {
        let n = left.len().min(right.len());
        let (left, right) = (&mut left[..n], &mut right[..n]);
        self.prepare_inputs(left, right, k);
        let mut done = 0;
        while done < n {
            let len = self
                .combs
                .iter()
                .map(|l| l.len - l.idx)
                .fold(n - done, usize::min);
            self.run_combs(done, len, k);
            self.combs.iter_mut().for_each(|l| l.advance(len));
            done += len;
        }
        // The stores only feed the (flushed) line writes, so flushing them once per chunk keeps
        // them out of the subnormal range without a test per sample.
        for s in self.stores.iter_mut().flatten() {
            *s = crate::dsp::sanitize_state_f32(*s);
        }
        let mut done = 0;
        while done < n {
            let len = self
                .allpasses
                .iter()
                .map(|l| l.len - l.idx)
                .fold(n - done, usize::min);
            let end = done + len;
            self.run_allpasses(&mut left[done..end], &mut right[done..end], done, k);
            self.allpasses.iter_mut().for_each(|l| l.advance(len));
            done = end;
        }
    }

    /// Fills `inputs` and `dry` for the chunk. A non-finite or tiny (< 1e-30) input sample
    /// counts as silence, and samples are limited to ±[`INPUT_LIMIT`].
    fn prepare_inputs(&mut self, left: &[f32], right: &[f32], k: Coeffs) {
        let n = left.len();
        let gain = F32x4::splat(FIXED_GAIN as f32);
        let dry = F32x4::splat(k.dry);
        let (l2, l1) = left.as_chunks::<2>();
        let (r2, r1) = right[..n].as_chunks::<2>();
        let (i2, i1) = self.inputs[..n].as_chunks_mut::<2>();
        let (d2, d1) = self.dry[..n].as_chunks_mut::<2>();
        let m = l2.len();
        let (r2, i2, d2) = (&r2[..m], &mut i2[..m], &mut d2[..m]);
        for f in 0..m {
            let x = F32x4::new([l2[f][0], r2[f][0], l2[f][1], r2[f][1]])
                .sanitize()
                .clamp(INPUT_LIMIT);
            let g = gain.mul(x);
            g.low_halves(g).store(&mut i2[f][0]);
            g.high_halves(g).store(&mut i2[f][1]);
            dry.mul(x).store_pairs(&mut d2[f]);
        }
        if let ([l], [r], [i], [d]) = (l1, r1, i1, d1) {
            let x = F32x4::new([*l, *r, 0.0, 0.0]).sanitize().clamp(INPUT_LIMIT);
            let g = gain.mul(x);
            g.low_halves(g).store(i);
            dry.mul(x).store_pair(d);
        }
    }

    /// The eight combs over chunk frames `start..start + n` (no comb wraps within them):
    /// `out = buf; store = out·(1 − damp) + store·damp; buf = input + store·fb; acc += out`.
    #[inline]
    fn run_combs(&mut self, start: usize, n: usize, k: Coeffs) {
        let undamp = F32x4::splat(k.undamp);
        let damp = F32x4::splat(k.damp);
        let fb = F32x4::splat(k.fb);
        let inputs = &self.inputs[start..start + n];
        let accs = &mut self.acc[start..start + n];
        let [c0, c1, c2, c3, c4, c5, c6, c7] = self.combs.each_mut().map(|l| l.ahead(n));
        let mut stores = self.stores.map(|s| F32x4::load(&s));
        for (f, (input, acc)) in inputs.iter().zip(accs.iter_mut()).enumerate() {
            let input = F32x4::load(input);
            let mut sum = F32x4::zero();
            // The four comb pairs are independent: written out so their recursions overlap.
            for ((a, b), store) in [
                (&mut c0[f], &mut c4[f]),
                (&mut c1[f], &mut c5[f]),
                (&mut c2[f], &mut c6[f]),
                (&mut c3[f], &mut c7[f]),
            ]
            .into_iter()
            .zip(stores.iter_mut())
            {
                let out = F32x4::load_two(a, b);
                *store = out.mul(undamp).add(store.mul(damp));
                input.add(store.mul(fb)).flush_tiny().store_two(a, b);
                sum = sum.add(out);
            }
            sum.fold().store_pair(acc);
        }
        for (s, v) in self.stores.iter_mut().zip(stores) {
            v.store(s);
        }
    }

    /// The four allpasses and the output over `left`/`right` (chunk frames from `start`; no
    /// allpass wraps within them), two frames per step: `bo = buf; buf = acc + 0.5·bo;
    /// acc = bo − acc`, then `y = (1 − mix)·x + mix·acc`.
    #[inline]
    fn run_allpasses(&mut self, left: &mut [f32], right: &mut [f32], start: usize, k: Coeffs) {
        let n = left.len();
        let feedback = F32x4::splat(ALLPASS_FEEDBACK as f32);
        let wet = F32x4::splat(k.wet);
        let [x0, x1, x2, x3] = self.allpasses.each_mut().map(|l| l.ahead(n));
        let (l2, l1) = left.as_chunks_mut::<2>();
        let (r2, r1) = right[..n].as_chunks_mut::<2>();
        let (acc2, acc1) = self.acc[start..start + n].as_chunks::<2>();
        let (dry2, dry1) = self.dry[start..start + n].as_chunks::<2>();
        let (a0, a0r) = x0.as_chunks_mut::<2>();
        let (a1, a1r) = x1.as_chunks_mut::<2>();
        let (a2, a2r) = x2.as_chunks_mut::<2>();
        let (a3, a3r) = x3.as_chunks_mut::<2>();
        let m = l2.len();
        let (r2, acc2, dry2) = (&mut r2[..m], &acc2[..m], &dry2[..m]);
        let (a0, a1, a2, a3) = (&mut a0[..m], &mut a1[..m], &mut a2[..m], &mut a3[..m]);
        for f in 0..m {
            let mut acc = F32x4::load_pairs(&acc2[f]);
            for line in [&mut a0[f], &mut a1[f], &mut a2[f], &mut a3[f]] {
                let bo = F32x4::load_pairs(line);
                acc.add(feedback.mul(bo)).flush_tiny().store_pairs(line);
                acc = bo.sub(acc);
            }
            let y = F32x4::load_pairs(&dry2[f]).add(wet.mul(acc)).sanitize();
            let [yl0, yr0, yl1, yr1] = y.to_array();
            l2[f] = [yl0, yl1];
            r2[f] = [yr0, yr1];
        }
        if let ([l], [r], [acc], [dry]) = (l1, r1, acc1, dry1) {
            let mut acc = F32x4::load_pair(acc);
            for line in [a0r, a1r, a2r, a3r] {
                let line = &mut line[0];
                let bo = F32x4::load_pair(line);
                acc.add(feedback.mul(bo)).flush_tiny().store_pair(line);
                acc = bo.sub(acc);
            }
            let [yl, yr, _, _] = F32x4::load_pair(dry)
                .add(wet.mul(acc))
                .sanitize()
                .to_array();
            (*l, *r) = (yl, yr);
        }
    }
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
/// Room size, damping and mix are read per sample and can change at any time. Line writes below
/// 1e-30 are flushed to zero; a non-finite input sample counts as silence.
///
/// Precision: the state is in `f64` per channel, except for the common stereo case — exactly two
/// prepared channels with identical line lengths (`stereo_spread` rounding to the same lengths,
/// 0 by default) — which runs both channels together in `f32` (SSE2 on x86-64): the combs in
/// pairs on four lanes, the allpasses two frames at a time, about 3x faster. Its output differs
/// from the `f64` loop by about one `f32` rounding step at moderate settings (≤ 1.2e-7 on full
/// scale noise); with `room_size` near 1 the feedback accumulates the rounding to ~1e-6 of the
/// signal peak (≈ −120 dB). The two layouts are allocated in `prepare` and the state moves
/// between them without allocating when the spread or the channel count of a block changes
/// (`f64` to `f32` rounds; back is exact). The `f32` path limits its input to ±1e30 so that
/// its state cannot overflow.
#[derive(Debug, Clone)]
pub struct Reverb {
    room_size: f64,
    damping: f64,
    mix: f64,
    spread: f64,
    sample_rate: f64,
    states: Vec<ChannelState>,
    /// The packed layout, allocated in `prepare` for exactly two channels.
    pair: Option<PairState>,
    /// Whether the state lives in `pair` (then `states` holds only the line lengths).
    packed: bool,
}

impl Default for Reverb {
    fn default() -> Self {
        Self::new()
    }
}

impl Reverb {
    /// Index of `room_size` in [`Effect::params`].
    pub const ROOM_SIZE: usize = 0;
    /// Index of `damping`.
    pub const DAMPING: usize = 1;
    /// Index of `mix`.
    pub const MIX: usize = 2;
    /// Index of `stereo_spread`.
    pub const STEREO_SPREAD: usize = 3;

    /// A reverb with torchfx's defaults (room 0.5, damping 0.5, mix 0.3).
    pub fn new() -> Self {
        Self {
            room_size: 0.5,
            damping: 0.5,
            mix: 0.3,
            spread: 0.0,
            sample_rate: 0.0,
            states: Vec::new(),
            pair: None,
            packed: false,
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
        // Lengths are set on the per-channel layout.
        self.unpack();
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

    /// Whether a block of these channels can run on the packed layout: two prepared channels
    /// with identical line lengths, and left and right blocks of equal length.
    fn packable(&self, block: &[&mut [f32]]) -> bool {
        match (&self.states[..], block) {
            ([l, r], [bl, br, ..]) if self.pair.is_some() && bl.len() == br.len() => l
                .combs
                .iter()
                .chain(&l.allpasses)
                .zip(r.combs.iter().chain(&r.allpasses))
                .all(|(a, b)| a.len == b.len),
            _ => false,
        }
    }

    /// Moves the state to the packed layout (no allocation).
    fn pack(&mut self) {
        if !self.packed
            && let (Some(pair), [l, r]) = (&mut self.pair, &self.states[..])
        {
            pair.pack(l, r);
            self.packed = true;
        }
    }

    /// Moves the state back to the per-channel layout (no allocation).
    fn unpack(&mut self) {
        if self.packed
            && let (Some(pair), [l, r]) = (&self.pair, &mut self.states[..])
        {
            pair.unpack(l, r);
            self.packed = false;
        }
    }

    /// The per-channel path: every channel on its own `f64` lines.
    fn process_channels(&mut self, block: &mut [&mut [f32]], fb: f64, damp: f64, mix: f64) {
        for (ch, state) in block.iter_mut().zip(self.states.iter_mut()) {
            let mut done = 0;
            while done < ch.len() {
                // A segment in which no line wraps: plain slices, no per-sample index checks.
                let remaining = ch.len() - done;
                let len = state
                    .combs
                    .iter()
                    .chain(&state.allpasses)
                    .map(|l| l.len - l.idx)
                    .fold(remaining, usize::min);
                state.run_segment(&mut ch[done..done + len], fb, damp, mix);
                done += len;
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

    fn get_param_at(&self, index: usize) -> Option<f64> {
        Some(match index {
            Self::ROOM_SIZE => self.room_size,
            Self::DAMPING => self.damping,
            Self::MIX => self.mix,
            Self::STEREO_SPREAD => self.spread,
            _ => return None,
        })
    }

    fn set_param_at(&mut self, index: usize, value: f64) -> Result<()> {
        let p = param_info_at(self.name(), &PARAMS, index)?;
        let value = p.validate(value)?;
        match index {
            Self::ROOM_SIZE => self.room_size = value,
            Self::DAMPING => self.damping = value,
            Self::MIX => self.mix = value,
            Self::STEREO_SPREAD => {
                self.spread = value;
                self.apply_lengths();
            }
            _ => return Err(unhandled_param(self.name(), p)),
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
        self.pair = (channels == 2).then(|| PairState::new(sample_rate));
        self.packed = false;
        Ok(())
    }

    fn process(&mut self, block: &mut [&mut [f32]]) {
        let fb = 0.7 + 0.28 * self.room_size;
        let damp = 0.4 * self.damping;
        let mix = self.mix;
        if self.packable(block) {
            self.pack();
            if let (Some(pair), [left, right, ..]) = (&mut self.pair, &mut *block) {
                pair.process(left, right, Coeffs::new(fb, damp, mix));
            }
            return;
        }
        self.unpack();
        self.process_channels(block, fb, damp, mix);
    }

    fn reset(&mut self) {
        if let Some(pair) = &mut self.pair {
            pair.clear();
        }
        for s in &mut self.states {
            s.combs.iter_mut().for_each(Line::clear);
            s.allpasses.iter_mut().for_each(Line::clear);
            s.stores = [0.0; 8];
        }
    }

    /// The comb and allpass lines (whole buffers: a shortened line keeps its tail, which is read
    /// again when the spread grows) and the comb damping stores of every channel.
    fn visit_state(&self, visit: &mut dyn FnMut(f64)) {
        if self.packed
            && let Some(pair) = &self.pair
        {
            for line in pair.combs.iter().chain(&pair.allpasses) {
                line.buf
                    .iter()
                    .for_each(|p| p.0.iter().for_each(|&v| visit(f64::from(v))));
            }
            pair.stores
                .iter()
                .flatten()
                .for_each(|&v| visit(f64::from(v)));
            return;
        }
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
    fn reverb_stereo_matches_spec_loop() {
        // Two channels with identical line lengths run on the packed f32 path.
        let input = noise(2, 10_000, 4);
        let mut r = Reverb::with(0.7, 0.4, 0.6).unwrap();
        r.prepare(44100.0, 512, 2).unwrap();
        let out = run_chunked(&mut r, &input, &[512, 7, 1, 300]);
        assert!(r.packed);
        for (c, (out, x)) in out.iter().zip(&input).enumerate() {
            let expected = reference(x, 0.7, 0.4, 0.6);
            for (n, (a, b)) in out.iter().zip(&expected).enumerate() {
                assert!(
                    (f64::from(*a) - b).abs() < 1e-6,
                    "channel {c} frame {n}: {a} vs {b}"
                );
            }
        }
    }

    #[test]
    fn reverb_layout_switches_keep_the_state() {
        // Moving the packed state to the per-channel lines and back is exact, so a reverb that
        // switches layout between blocks matches one that never does.
        let input = noise(2, 8192, 6);
        let mut steady = Reverb::with(0.8, 0.3, 0.5).unwrap();
        steady.prepare(48000.0, 512, 2).unwrap();
        let mut switching = steady.clone();
        let expected = run_chunked(&mut steady, &input, &[512]);
        let mut out = input.clone();
        let (l, r) = out.split_at_mut(1);
        for (l, r) in l[0].chunks_mut(512).zip(r[0].chunks_mut(512)) {
            switching.process(&mut [l, r]);
            assert!(switching.packed);
            // Setting the spread moves the state to the per-channel lines.
            switching.set_param("stereo_spread", 0.0).unwrap();
            assert!(!switching.packed);
        }
        assert_eq!(out, expected);
    }

    #[test]
    fn reverb_packs_lines_at_different_positions() {
        // With a spread the channels' positions drift apart; back at spread 0 the packed path
        // takes the lines over rotated and continues what the per-channel path computes.
        let mut packed = Reverb::with(0.8, 0.3, 0.5).unwrap();
        packed.set_param("stereo_spread", 23.0).unwrap();
        packed.prepare(48000.0, 512, 2).unwrap();
        run_chunked(&mut packed, &noise(2, 3000, 7), &[512]);
        packed.set_param("stereo_spread", 0.0).unwrap();
        let mut per_channel = packed.clone();
        let input = noise(2, 6000, 8);
        let out = run_chunked(&mut packed, &input, &[512]);
        let pair = packed.pair.as_ref().unwrap();
        assert!(packed.packed && pair.combs.iter().any(|l| l.rot != 0));
        let mut expected = input.clone();
        let (l, r) = expected.split_at_mut(1);
        let (fb, damp) = (0.7 + 0.28 * 0.8, 0.4 * 0.3);
        for (l, r) in l[0].chunks_mut(512).zip(r[0].chunks_mut(512)) {
            per_channel.process_channels(&mut [l, r], fb, damp, 0.5);
        }
        for (c, (a, b)) in out.iter().zip(&expected).enumerate() {
            for (n, (a, b)) in a.iter().zip(b).enumerate() {
                assert!((a - b).abs() < 1e-6, "channel {c} frame {n}: {a} vs {b}");
            }
        }
        packed.unpack();
        for (a, b) in packed.states.iter().zip(&per_channel.states) {
            for (la, lb) in a
                .combs
                .iter()
                .chain(&a.allpasses)
                .zip(b.combs.iter().chain(&b.allpasses))
            {
                assert_eq!((la.len, la.idx), (lb.len, lb.idx));
                assert!(
                    la.buf
                        .iter()
                        .zip(&lb.buf)
                        .all(|(x, y)| (x - y).abs() < 1e-6)
                );
            }
            assert!(
                a.stores
                    .iter()
                    .zip(&b.stores)
                    .all(|(x, y)| (x - y).abs() < 1e-6)
            );
        }
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
        // The packed stereo state: every f32 is zero or normal.
        let mut r = Reverb::with(0.9, 0.5, 0.5).unwrap();
        assert_no_subnormal_output(&mut r, 2);
        let pair = r.pair.as_ref().unwrap();
        assert!(r.packed);
        for l in pair.combs.iter().chain(&pair.allpasses) {
            assert!(
                l.buf
                    .iter()
                    .flat_map(|p| p.0)
                    .all(|v| v == 0.0 || v.is_normal())
            );
        }
        assert!(
            pair.stores
                .iter()
                .flatten()
                .all(|&v| v == 0.0 || v.is_normal())
        );
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
    fn reverb_huge_input_keeps_the_state_finite() {
        for channels in [1, 2] {
            let mut r = Reverb::with(1.0, 0.0, 1.0).unwrap();
            r.prepare(48000.0, 512, channels).unwrap();
            let mut input = noise(channels, 96000, 12);
            for c in &mut input {
                c[..48000].fill(f32::MAX);
            }
            let out = run_chunked(&mut r, &input, &[512]);
            assert_eq!(r.packed, channels == 2);
            assert!(visited(&r).iter().all(|v| v.is_finite()));
            assert!(out.iter().flatten().all(|v| v.is_finite()));
        }
        // Huge values left on the f64 lines by blocks of one channel, then taken over by the
        // packed path.
        let mut r = Reverb::with(1.0, 0.0, 1.0).unwrap();
        r.prepare(48000.0, 512, 2).unwrap();
        let mut huge = vec![f32::MAX; 512];
        for _ in 0..100 {
            huge.fill(f32::MAX);
            r.process(&mut [&mut huge[..]]);
        }
        assert!(visited(&r).iter().any(|v| v.abs() > 1e38));
        let out = run_chunked(&mut r, &noise(2, 48000, 13), &[512]);
        assert!(r.packed);
        assert!(visited(&r).iter().all(|v| v.is_finite()));
        assert!(out.iter().flatten().all(|v| v.is_finite()));
    }

    #[test]
    fn reverb_visits_packed_state() {
        let mut r = Reverb::with(0.9, 0.5, 0.5).unwrap();
        r.prepare(48000.0, 1024, 2).unwrap();
        run_chunked(&mut r, &noise(2, 4096, 3), &[1024]);
        assert!(r.packed);
        let per_channel: usize = COMB_LENGTHS
            .iter()
            .chain(&ALLPASS_LENGTHS)
            .map(|&l| scaled_len(l, MAX_SPREAD, 48000.0))
            .sum::<usize>()
            + 8;
        let state = visited(&r);
        assert_eq!(state.len(), 2 * per_channel);
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

//! The runtime second-order-section cascade that every IIR filter and biquad runs on.
//!
//! Form and precision: transposed direct form II with `f64` coefficients and state. At low
//! cutoffs the poles crowd the unit circle (20 Hz at 192 kHz puts them about 6.5e-4 from it):
//! in `f32` the coefficient a1 ≈ −1.9993 is quantised with an error larger than the distance
//! that sets the cutoff, and the state's rounding noise is amplified by 1/(1−r) ≈ 1500. `f64`
//! keeps the response within 1e-9 of the design there. Transposed DF-II needs two state words
//! per section (DF-I needs four), which keeps the whole state of a stereo cascade in registers.
//!
//! Speed: the two channels of a stereo pair run together in two `f64` lanes (one SSE2 register
//! on x86-64), all sections per sample before the next sample, so a stereo cascade costs the
//! same as a mono one. Odd channel counts run the last channel with an idle second lane.
//! Where the CPU has FMA ([`fused_multiply_add`]; checked at run time, since the x86-64
//! baseline lacks it) each multiply-add is fused: the `s1` recursion becomes one 4-cycle
//! operation and the kernel has half the instructions (guitar-chain filters 4.6 → 3.5 ns per
//! stereo frame on this project's Zen 3 machine).
//!
//! Safety: at the end of each block, state words that are non-finite or below 1e-30 are set to
//! zero, so a NaN or infinity in the input never outlives its block and silence never decays
//! into subnormal numbers; output samples that are non-finite or below 1e-30 are written as
//! exact zeros as they are stored (a branch-free mask on the packed pair).
//!
//! ```
//! use rtfx::dsp::filter::design::{design_iir, BandType, Family};
//! use rtfx::dsp::filter::sos::SosCascade;
//!
//! let design = design_iir(Family::Butterworth, BandType::Lowpass, 4, 1000.0, 48000.0);
//! let mut cascade = SosCascade::new(design.as_slice(), 2);
//! let mut left = vec![1.0f32; 4800];
//! let mut right = vec![0.0f32; 4800];
//! cascade.process(&mut [&mut left[..], &mut right[..]]);
//! assert!((left[4799] - 1.0).abs() < 1e-4); // unity gain at DC
//! assert_eq!(right[4799], 0.0);
//! ```

use super::design::Section;
use crate::dsp::simd::F64x2;

/// Coefficients of one section, with a0 normalised away, plus the input weights of the state
/// updates written in terms of the old state instead of the output (see [`step`]).
#[derive(Clone, Copy, Debug, PartialEq, Default)]
struct Coefficients {
    b0: f64,
    b1: f64,
    b2: f64,
    a1: f64,
    a2: f64,
    /// b1 − a1·b0.
    k1: f64,
    /// b2 − a2·b0.
    k2: f64,
}

impl Coefficients {
    /// `[b0, a1, a2, k1, k2]`: what the recursion multiplies by.
    fn row(&self) -> [f64; 5] {
        [self.b0, self.a1, self.a2, self.k1, self.k2]
    }

    fn from_section(s: &Section) -> Self {
        // Designs already have a[0] == 1; dividing keeps hand-made sections correct too.
        let a0 = if s.a[0] != 0.0 && s.a[0].is_finite() {
            s.a[0]
        } else {
            1.0
        };
        let (b0, b1, b2) = (s.b[0] / a0, s.b[1] / a0, s.b[2] / a0);
        let (a1, a2) = (s.a[1] / a0, s.a[2] / a0);
        Self {
            b0,
            b1,
            b2,
            a1,
            a2,
            k1: b1 - a1 * b0,
            k2: b2 - a2 * b0,
        }
    }
}

/// Two lanes of `f64`, one per channel of a stereo pair, as stored between blocks.
type Lanes = [f64; 2];

/// Transposed DF-II state of one section for one channel pair.
#[derive(Clone, Copy, Debug, PartialEq, Default)]
struct PairState {
    s1: Lanes,
    s2: Lanes,
}

/// A cascade of second-order sections with per-channel state carried across blocks.
#[derive(Clone, Debug, PartialEq)]
pub struct SosCascade {
    coefficients: Vec<Coefficients>,
    /// `pairs × sections` states, pair-major.
    state: Vec<PairState>,
    channels: usize,
}

impl SosCascade {
    /// A cascade for `channels` channels with zeroed state.
    pub fn new(sections: &[Section], channels: usize) -> Self {
        let mut cascade = Self {
            coefficients: Vec::with_capacity(sections.len()),
            state: Vec::new(),
            channels: 0,
        };
        cascade.set_channels(channels);
        cascade.reserve_sections(sections.len());
        cascade.set_sections(sections);
        cascade
    }

    /// An empty cascade with room for `sections` sections on `channels` channels, used by the
    /// chain to run several filters in one pass ([`Self::gather`]).
    pub fn with_capacity(sections: usize, channels: usize) -> Self {
        Self {
            coefficients: Vec::with_capacity(sections),
            state: Vec::with_capacity(sections * channels.div_ceil(2)),
            channels,
        }
    }

    /// Writes [`Self::coefficient_rows`] into `out` (up to its length) without allocating.
    pub fn write_coefficient_rows(&self, out: &mut [[f64; 5]]) {
        for (row, c) in out.iter_mut().zip(&self.coefficients) {
            *row = c.row();
        }
    }

    /// Copies the state into `out` in the GPU kernel's layout for a fused cascade of `total`
    /// sections in which this one starts at section `offset`: `[s1, s2]` of section
    /// `offset + k` of channel `ch` at `out[2·(ch·total + offset + k)]`. Never allocates.
    pub fn export_state(&self, out: &mut [f64], total: usize, offset: usize) {
        let k_len = self.coefficients.len();
        for ch in 0..self.channels {
            let (pair, lane) = (ch / 2, ch % 2);
            for k in 0..k_len {
                let st = &self.state[pair * k_len + k];
                let at = 2 * (ch * total + offset + k);
                if let Some(slot) = out.get_mut(at..at + 2) {
                    slot.copy_from_slice(&[st.s1[lane], st.s2[lane]]);
                }
            }
        }
    }

    /// The reverse of [`Self::export_state`]: takes this cascade's state from a fused one.
    pub fn import_state(&mut self, from: &[f64], total: usize, offset: usize) {
        let k_len = self.coefficients.len();
        for ch in 0..self.channels {
            let (pair, lane) = (ch / 2, ch % 2);
            for k in 0..k_len {
                let at = 2 * (ch * total + offset + k);
                if let Some(&[s1, s2]) = from
                    .get(at..at + 2)
                    .and_then(|s| <&[f64; 2]>::try_from(s).ok())
                {
                    let st = &mut self.state[pair * k_len + k];
                    st.s1[lane] = s1;
                    st.s2[lane] = s2;
                }
            }
        }
    }

    /// Each section's coefficients, normalised so that a0 = 1, as
    /// `[b0, a1, a2, k1, k2]` with k1 = b1 − a1·b0 and k2 = b2 − a2·b0: exactly the numbers the
    /// recursion multiplies by (see `step`), and the table the GPU kernel works from.
    pub fn coefficient_rows(&self) -> Vec<[f64; 5]> {
        self.coefficients.iter().map(Coefficients::row).collect()
    }

    /// Number of sections this cascade holds without allocating.
    pub fn capacity(&self) -> usize {
        let pairs = self.channels.div_ceil(2).max(1);
        self.coefficients
            .capacity()
            .min(self.state.capacity() / pairs)
    }

    /// Makes this cascade the concatenation of `parts` (sections and state), which must all
    /// have this cascade's channel count. Runs of consecutive filters then cost one pass
    /// over the audio instead of one per filter, and their recursions overlap in the CPU.
    /// Does not allocate when the total fits [`Self::capacity`].
    pub fn gather<'a>(&mut self, parts: impl Iterator<Item = &'a SosCascade> + Clone) {
        self.coefficients.clear();
        self.state.clear();
        for part in parts.clone() {
            self.coefficients.extend_from_slice(&part.coefficients);
        }
        for pair in 0..self.channels.div_ceil(2) {
            for part in parts.clone() {
                let k = part.coefficients.len();
                self.state
                    .extend_from_slice(&part.state[pair * k..(pair + 1) * k]);
            }
        }
    }

    /// Hands the state back to the cascades [`Self::gather`] took it from (same order).
    pub fn scatter<'a>(&self, parts: impl Iterator<Item = &'a mut SosCascade>) {
        let total = self.coefficients.len();
        let mut offset = 0;
        for part in parts {
            let k = part.coefficients.len();
            for pair in 0..self.channels.div_ceil(2) {
                let from = pair * total + offset;
                part.state[pair * k..(pair + 1) * k].copy_from_slice(&self.state[from..from + k]);
            }
            offset += k;
        }
    }

    /// Reallocates the state for a new channel count (zeroed). Allocates.
    pub fn set_channels(&mut self, channels: usize) {
        self.channels = channels;
        self.resize_state();
    }

    /// Makes room for `sections` sections so that later [`Self::set_sections`] calls with at
    /// most that many sections never allocate.
    pub fn reserve_sections(&mut self, sections: usize) {
        let pairs = self.channels.div_ceil(2);
        self.coefficients
            .reserve(sections.saturating_sub(self.coefficients.len()));
        self.state
            .reserve((pairs * sections).saturating_sub(self.state.len()));
    }

    /// Replaces the coefficients and keeps the state of every section that still exists, so a
    /// sweep never clicks from a state reset. Does not allocate when the section count fits
    /// what was reserved.
    pub fn set_sections(&mut self, sections: &[Section]) {
        let old = self.coefficients.len();
        self.coefficients.clear();
        self.coefficients
            .extend(sections.iter().map(Coefficients::from_section));
        if old != sections.len() {
            self.resize_state();
        }
    }

    fn resize_state(&mut self) {
        let pairs = self.channels.div_ceil(2);
        self.state.clear();
        self.state
            .resize(pairs * self.coefficients.len(), PairState::default());
    }

    /// Number of sections.
    pub fn len(&self) -> usize {
        self.coefficients.len()
    }

    /// True when the cascade has no sections (it then passes audio through).
    pub fn is_empty(&self) -> bool {
        self.coefficients.is_empty()
    }

    /// Number of channels the state is sized for.
    pub fn channels(&self) -> usize {
        self.channels
    }

    /// Zeroes the state.
    pub fn reset(&mut self) {
        self.state.fill(PairState::default());
    }

    /// True when every state word is exactly zero (for tests of decay and reset).
    pub fn state_is_zero(&self) -> bool {
        self.state
            .iter()
            .all(|s| s.s1 == [0.0; 2] && s.s2 == [0.0; 2])
    }

    /// Every state word, for tests (e.g. that no subnormal number is left in the state).
    pub fn state_words(&self) -> impl Iterator<Item = f64> + '_ {
        self.state
            .iter()
            .flat_map(|s| [s.s1[0], s.s1[1], s.s2[0], s.s2[1]])
    }

    /// Filters a planar block in place. Channels beyond those the state is sized for pass
    /// through unchanged. Never allocates.
    pub fn process(&mut self, block: &mut [&mut [f32]]) {
        self.process_scaled(block, 1.0);
    }

    /// Filters a planar block in place and multiplies the output by `gain` (a linear gain
    /// folded into the same pass).
    pub fn process_scaled(&mut self, block: &mut [&mut [f32]], gain: f64) {
        self.process_with(block, gain, fused_multiply_add());
    }

    /// [`Self::process_scaled`] with the arithmetic chosen: `fused` needs a CPU with FMA.
    fn process_with(&mut self, block: &mut [&mut [f32]], gain: f64, fused: bool) {
        let sections = self.coefficients.len();
        if sections == 0 {
            return;
        }
        let channels = block.len().min(self.channels);
        let mut pair = 0;
        while pair * 2 < channels {
            let state = &mut self.state[pair * sections..(pair + 1) * sections];
            let (head, tail) = block.split_at_mut(pair * 2 + 1);
            let left = &mut *head[pair * 2];
            let right = if pair * 2 + 1 < channels {
                tail.first_mut().map(|r| &mut **r)
            } else {
                None
            };
            run_pair(&self.coefficients, state, left, right, gain, fused);
            pair += 1;
        }
    }
}

/// True when this CPU has fused multiply-add (x86-64 FMA3), and the cascade therefore uses it:
/// each multiply-add is rounded once, which shortens the recursion's critical path and halves
/// the instruction count. Results then differ from the separate-multiply-and-add path in the
/// last bits (both are well inside the tolerance against the reference designs). The GPU kernel
/// fuses the same operations, so it is bit-identical to the CPU whenever this is true.
pub fn fused_multiply_add() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::arch::is_x86_feature_detected!("fma")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// Runs one channel pair (or a single channel) through the cascade, dispatching to a kernel
/// unrolled for the section count.
fn run_pair(
    c: &[Coefficients],
    state: &mut [PairState],
    left: &mut [f32],
    right: Option<&mut [f32]>,
    gain: f64,
    fused: bool,
) {
    macro_rules! dispatch {
        ($kernel:ident, $kernel_dyn:ident, $($k:literal)*) => {
            match c.len() {
                $($k => $kernel::<$k>(
                    c.try_into().unwrap_or(&[Coefficients::default(); $k]),
                    state,
                    left,
                    right,
                    gain,
                ),)*
                _ => $kernel_dyn(c, state, left, right, gain),
            }
        };
    }
    #[cfg(target_arch = "x86_64")]
    if fused && fused_multiply_add() {
        // SAFETY: the CPU has FMA (checked just above).
        unsafe { dispatch!(kernel_fma, kernel_dyn_fma, 1 2 3 4 5 6 7 8 9 10 11 12) };
    } else {
        dispatch!(kernel, kernel_dyn, 1 2 3 4 5 6 7 8 9 10 11 12);
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        let _ = fused;
        dispatch!(kernel, kernel_dyn, 1 2 3 4 5 6 7 8 9 10 11 12);
    }
    for s in state.iter_mut() {
        for lane in 0..2 {
            s.s1[lane] = crate::dsp::sanitize_state(s.s1[lane]);
            s.s2[lane] = crate::dsp::sanitize_state(s.s2[lane]);
        }
    }
}

/// One section's coefficients, each broadcast to both lanes.
#[derive(Clone, Copy)]
struct SectionLanes {
    b0: F64x2,
    a1: F64x2,
    a2: F64x2,
    k1: F64x2,
    k2: F64x2,
}

impl SectionLanes {
    #[inline(always)]
    fn new(c: &Coefficients) -> Self {
        SectionLanes {
            b0: F64x2::splat(c.b0),
            a1: F64x2::splat(c.a1),
            a2: F64x2::splat(c.a2),
            k1: F64x2::splat(c.k1),
            k2: F64x2::splat(c.k2),
        }
    }
}

/// One sample through one section, both lanes at once. Transposed DF-II is
/// `y = b0·x + s1; s1' = b1·x − a1·y + s2; s2' = b2·x − a2·y`; substituting `y` into the state
/// updates gives `s1' = (k1·x + s2) − a1·s1` and `s2' = k2·x − a2·s1`: the same state and
/// response, but the recursion from `s1` back to `s1` is one multiply and one subtraction
/// instead of four dependent operations. That loop-carried latency bounds a cascade's speed;
/// everything else overlaps across samples and sections. (The GPU kernel uses this order too:
/// see `gpu::kernel`.)
#[inline(always)]
fn step(c: &SectionLanes, s1: &mut F64x2, s2: &mut F64x2, x: F64x2) -> F64x2 {
    let old = *s1;
    let y = c.b0.mul(x).add(old);
    *s1 = c.k1.mul(x).add(*s2).sub(c.a1.mul(old));
    *s2 = c.k2.mul(x).sub(c.a2.mul(old));
    y
}

/// [`step`] with each multiply-add fused: `y = fma(b0, x, s1)`,
/// `s1' = fma(−a1, s1, fma(k1, x, s2))`, `s2' = fma(−a2, s1, k2·x)`. The `s1` recursion is
/// then a single fused operation.
#[cfg(target_arch = "x86_64")]
#[inline]
#[target_feature(enable = "fma")]
fn step_fma(c: &SectionLanes, s1: &mut F64x2, s2: &mut F64x2, x: F64x2) -> F64x2 {
    let old = *s1;
    let y = c.b0.mul_add(x, old);
    *s1 = c.a1.neg_mul_add(old, c.k1.mul_add(x, *s2));
    *s2 = c.a2.neg_mul_add(old, c.k2.mul(x));
    y
}

/// Defines the two cascade kernels around one `step` function: `$kernel::<K>` keeps the
/// coefficients and state of `K` sections in registers for the whole block; `$kernel_dyn`
/// takes any section count (long fused cascades) with the state in memory. Output samples are
/// cleaned as they are stored (see [`F64x2::to_f32_clean`]).
macro_rules! cascade_kernels {
    ($kernel:ident, $kernel_dyn:ident, $step:ident $(, #[$feature:meta])?) => {
        $(#[$feature])?
        #[inline]
        fn $kernel<const K: usize>(
            c: &[Coefficients; K],
            state: &mut [PairState],
            left: &mut [f32],
            right: Option<&mut [f32]>,
            gain: f64,
        ) {
            let c: [SectionLanes; K] = std::array::from_fn(|k| SectionLanes::new(&c[k]));
            let mut s1: [F64x2; K] = std::array::from_fn(|k| F64x2::new(state[k].s1[0], state[k].s1[1]));
            let mut s2: [F64x2; K] = std::array::from_fn(|k| F64x2::new(state[k].s2[0], state[k].s2[1]));
            let g = F64x2::splat(gain);
            match right {
                Some(right) => {
                    let n = left.len().min(right.len());
                    for (l, r) in left[..n].iter_mut().zip(right[..n].iter_mut()) {
                        let mut x = F64x2::from_f32(*l, *r);
                        for k in 0..K {
                            x = $step(&c[k], &mut s1[k], &mut s2[k], x);
                        }
                        (*l, *r) = x.mul(g).to_f32_clean();
                    }
                }
                None => {
                    for l in left.iter_mut() {
                        let mut x = F64x2::from_f32(*l, 0.0);
                        for k in 0..K {
                            x = $step(&c[k], &mut s1[k], &mut s2[k], x);
                        }
                        *l = x.mul(g).to_f32_clean().0;
                    }
                }
            }
            for k in 0..K {
                state[k].s1 = s1[k].get();
                state[k].s2 = s2[k].get();
            }
        }

        $(#[$feature])?
        fn $kernel_dyn(
            c: &[Coefficients],
            state: &mut [PairState],
            left: &mut [f32],
            right: Option<&mut [f32]>,
            gain: f64,
        ) {
            let g = F64x2::splat(gain);
            let mut one = |lane0: f32, lane1: f32| {
                let mut x = F64x2::from_f32(lane0, lane1);
                for (ck, sk) in c.iter().zip(state.iter_mut()) {
                    let mut s1 = F64x2::new(sk.s1[0], sk.s1[1]);
                    let mut s2 = F64x2::new(sk.s2[0], sk.s2[1]);
                    x = $step(&SectionLanes::new(ck), &mut s1, &mut s2, x);
                    sk.s1 = s1.get();
                    sk.s2 = s2.get();
                }
                x.mul(g).to_f32_clean()
            };
            match right {
                Some(right) => {
                    for (l, r) in left.iter_mut().zip(right.iter_mut()) {
                        (*l, *r) = one(*l, *r);
                    }
                }
                None => {
                    for l in left.iter_mut() {
                        *l = one(*l, 0.0).0;
                    }
                }
            }
        }
    };
}

cascade_kernels!(kernel, kernel_dyn, step);
#[cfg(target_arch = "x86_64")]
cascade_kernels!(kernel_fma, kernel_dyn_fma, step_fma, #[target_feature(enable = "fma")]);

#[cfg(test)]
mod tests {
    use super::*;

    fn section(b: [f64; 3], a: [f64; 3]) -> Section {
        Section { b, a }
    }

    /// Plain f64 direct form I reference.
    fn reference(sections: &[Section], x: &[f32]) -> Vec<f64> {
        let mut out: Vec<f64> = x.iter().map(|&v| f64::from(v)).collect();
        for s in sections {
            let (mut x1, mut x2, mut y1, mut y2) = (0.0, 0.0, 0.0, 0.0);
            for v in out.iter_mut() {
                let x0 = *v;
                let y = s.b[0] * x0 + s.b[1] * x1 + s.b[2] * x2 - s.a[1] * y1 - s.a[2] * y2;
                x2 = x1;
                x1 = x0;
                y2 = y1;
                y1 = y;
                *v = y;
            }
        }
        out
    }

    fn test_sections(k: usize) -> Vec<Section> {
        (0..k)
            .map(|i| {
                let r = 0.5 + 0.04 * i as f64;
                let w = 0.3 + 0.1 * i as f64;
                section(
                    [0.2, 0.1 * i as f64, -0.05],
                    [1.0, -2.0 * r * w.cos(), r * r],
                )
            })
            .collect()
    }

    fn noise(n: usize, seed: u32) -> Vec<f32> {
        crate::dsp::noise::noise(n, u64::from(seed), 0.5)
    }

    /// Every unrolled kernel and the any-length one (k = 13), with separate and (where the CPU
    /// has FMA) fused multiply-adds.
    #[test]
    fn matches_direct_form_one_for_every_kernel() {
        for fused in [false, true] {
            for k in 1..=13 {
                let sections = test_sections(k);
                let x = noise(1000, k as u32);
                let mut l = x.clone();
                let mut r: Vec<f32> = x.iter().map(|v| -v).collect();
                let mut m = x.clone();
                let mut stereo = SosCascade::new(&sections, 2);
                stereo.process_with(&mut [&mut l[..], &mut r[..]], 1.0, fused);
                let mut mono = SosCascade::new(&sections, 1);
                mono.process_with(&mut [&mut m[..]], 1.0, fused);
                let want = reference(&sections, &x);
                for i in 0..x.len() {
                    let at = format!("fused={fused} k={k} i={i}");
                    assert!((f64::from(l[i]) - want[i]).abs() < 1e-6, "{at}");
                    assert!((f64::from(r[i]) + want[i]).abs() < 1e-6, "{at}");
                    assert_eq!(m[i], l[i], "mono lane differs, {at}");
                }
            }
        }
    }

    #[test]
    fn chunked_equals_one_shot_bit_exact() {
        let sections = test_sections(3);
        let x = noise(5000, 7);
        let mut whole = x.clone();
        SosCascade::new(&sections, 1).process(&mut [&mut whole[..]]);
        for chunk in [1, 7, 64, 4096] {
            let mut c = SosCascade::new(&sections, 1);
            let mut y = x.clone();
            for piece in y.chunks_mut(chunk) {
                c.process(&mut [piece]);
            }
            assert_eq!(y, whole, "chunk {chunk}");
        }
    }

    #[test]
    fn nan_input_never_latches() {
        for (fused, k) in [(false, 2), (true, 2), (false, 13), (true, 13)] {
            let sections = test_sections(k);
            let mut c = SosCascade::new(&sections, 3);
            let mut a = [f32::NAN, 1.0, f32::INFINITY, 0.5];
            let mut b = [f32::NEG_INFINITY; 4];
            let mut d = [0.25f32; 4];
            c.process_with(&mut [&mut a[..], &mut b[..], &mut d[..]], 1.0, fused);
            assert!(a.iter().chain(&b).chain(&d).all(|v| v.is_finite()));
            assert!(c.state_words().all(f64::is_finite));
        }
    }

    /// Output samples that would be subnormal, infinite or NaN in `f32` are stored as +0.
    #[test]
    fn output_cleaning_zeroes_subnormal_overflowing_and_nan_samples() {
        let pass = [section([1.0, 0.0, 0.0], [1.0, 0.0, 0.0])];
        for fused in [false, true] {
            let mut c = SosCascade::new(&pass, 1);
            let input = [
                1e-31f32,
                -1e-31,
                1e-30,
                -0.5,
                f32::MAX,
                f32::MIN_POSITIVE / 4.0,
            ];
            let mut x = input;
            // Gain 2 makes f32::MAX overflow; the others scale and are then judged.
            c.process_with(&mut [&mut x[..]], 2.0, fused);
            assert_eq!(x[..2], [0.0, 0.0], "fused={fused}");
            assert!(x[..2].iter().all(|v| v.is_sign_positive()));
            assert_eq!(x[2..4], [2e-30, -1.0], "fused={fused}");
            assert_eq!(x[4..], [0.0, 0.0], "fused={fused}");
        }
    }

    #[test]
    fn silence_after_burst_leaves_no_subnormals() {
        let sections = test_sections(4);
        let mut c = SosCascade::new(&sections, 2);
        let mut l = vec![1.0f32; 512];
        let mut r = vec![-1.0f32; 512];
        c.process(&mut [&mut l[..], &mut r[..]]);
        for _ in 0..200 {
            let mut l = vec![0.0f32; 512];
            let mut r = vec![0.0f32; 512];
            c.process(&mut [&mut l[..], &mut r[..]]);
            assert!(l.iter().chain(&r).all(|v| *v == 0.0 || v.is_normal()));
        }
        assert!(c.state_is_zero());
    }

    #[test]
    fn coefficient_change_keeps_state() {
        let mut c = SosCascade::new(&test_sections(2), 1);
        let mut x = [1.0f32; 16];
        c.process(&mut [&mut x[..]]);
        c.set_sections(&test_sections(2)[..2]);
        assert!(!c.state_is_zero());
        c.reset();
        assert!(c.state_is_zero());
    }

    #[test]
    fn extra_channels_pass_through() {
        let mut c = SosCascade::new(&test_sections(1), 1);
        let mut a = vec![1.0f32; 4];
        let mut b = vec![1.0f32; 4];
        c.process(&mut [&mut a[..], &mut b[..]]);
        assert_eq!(b, vec![1.0; 4]);
        assert_ne!(a, vec![1.0; 4]);
    }
}

//! The parts a channel strip is arranged from, besides its effects: click-free on/off switching
//! of a section ([`SectionFade`], [`run_faded`]), gain ramps ([`ramp_gain`]), the dry/wet mix
//! of a fade ([`crossfade`]), delay lines that keep a dry path in time with a latent wet one
//! ([`DelayLines`]), and a filter cascade whose order can change without a click
//! ([`CrossfadingCascade`]). Pure DSP: planar blocks in, planar blocks out; nothing allocates
//! after construction.
//!
//! ```
//! use rtfx::dsp::section::{FadePlan, SectionFade};
//! let mut fade = SectionFade::new(true, 4);
//! fade.set(false); // switch off over 4 samples
//! assert!(matches!(fade.plan(2), FadePlan::Mix(m0, m1) if m0 == 1.0 && m1 == 0.5));
//! assert!(matches!(fade.plan(2), FadePlan::Mix(_, m1) if m1 == 0.0));
//! assert!(matches!(fade.plan(2), FadePlan::ResetThenSkip)); // once, to start clean next time
//! assert!(matches!(fade.plan(2), FadePlan::Skip)); // then it costs nothing
//! ```

use crate::dsp::filter::design::Section;
use crate::dsp::filter::sos::SosCascade;
use crate::dsp::smooth::LinearSmoother;
use crate::dsp::{Effect, frames, with_planar_mut};

/// An on/off cross-fade: 1 means the section's output, 0 its input.
#[derive(Debug, Clone, Copy)]
pub struct SectionFade {
    mix: LinearSmoother,
    ramp: usize,
    /// True once the section has been reset after fading out (it then costs nothing).
    dormant: bool,
}

/// What a section does in one block, from [`SectionFade::plan`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum FadePlan {
    /// Off and quiet: nothing to do.
    Skip,
    /// Just faded out: reset the state once, then nothing.
    ResetThenSkip,
    /// Fully on: process in place.
    Process,
    /// Fading from `m0` to `m1`: process and mix with the input ([`crossfade`]).
    Mix(f64, f64),
}

impl SectionFade {
    /// A fade at rest, on or off, that switches over `ramp` samples.
    pub fn new(on: bool, ramp: usize) -> Self {
        Self {
            mix: LinearSmoother::new(if on { 1.0 } else { 0.0 }),
            ramp: ramp.max(1),
            dormant: !on,
        }
    }

    /// Changes the switching time (takes effect at the next switch).
    pub fn set_ramp(&mut self, ramp: usize) {
        self.ramp = ramp.max(1);
    }

    /// Switches on or off, ramping over the fade's time (nothing when already heading there).
    pub fn set(&mut self, on: bool) {
        let target = if on { 1.0 } else { 0.0 };
        if self.mix.target() != target {
            self.mix.set_target(target, self.ramp);
        }
    }

    /// Jumps on or off at once (off counts as reset: the section's state is the caller's
    /// business after a jump).
    pub fn snap(&mut self, on: bool) {
        self.mix.reset(if on { 1.0 } else { 0.0 });
        self.dormant = !on;
    }

    /// True when the fade is on or heading on.
    pub fn is_switched_on(&self) -> bool {
        self.mix.target() == 1.0
    }

    /// Moves the mix `n` samples on and returns it before and after, for a fade that only
    /// mixes (a bypass) rather than running a section.
    pub fn advance(&mut self, n: usize) -> (f64, f64) {
        (self.mix.current(), self.mix.advance(n))
    }

    /// True once the section has faded out and been reset.
    pub fn is_dormant(&self) -> bool {
        self.dormant
    }

    /// True when the section is fully on, or off and reset: no fade in progress or pending.
    pub fn is_settled(&self) -> bool {
        let at_rest = self.mix.current() == self.mix.target();
        at_rest && (self.mix.target() == 1.0 || self.dormant)
    }

    /// The mix now (1 on, 0 off).
    pub fn mix(&self) -> f64 {
        self.mix.current()
    }

    /// Advances `n` samples and says what the section does over them.
    pub fn plan(&mut self, n: usize) -> FadePlan {
        let m0 = self.mix.current();
        let m1 = self.mix.advance(n);
        if m0 == 0.0 && m1 == 0.0 {
            if self.dormant {
                FadePlan::Skip
            } else {
                self.dormant = true;
                FadePlan::ResetThenSkip
            }
        } else {
            self.dormant = false;
            if m0 == 1.0 && m1 == 1.0 {
                FadePlan::Process
            } else {
                FadePlan::Mix(m0, m1)
            }
        }
    }
}

/// Something a section runs in place: the DSP effects, the SOS cascade, the
/// [`CrossfadingCascade`].
pub trait InPlace {
    /// Processes a planar block in place.
    fn process_in_place(&mut self, block: &mut [&mut [f32]]);
    /// Clears the state.
    fn clear_state(&mut self);
}

impl<T: Effect> InPlace for T {
    fn process_in_place(&mut self, block: &mut [&mut [f32]]) {
        Effect::process(self, block);
    }
    fn clear_state(&mut self) {
        Effect::reset(self);
    }
}

impl InPlace for SosCascade {
    fn process_in_place(&mut self, block: &mut [&mut [f32]]) {
        SosCascade::process(self, block);
    }
    fn clear_state(&mut self) {
        SosCascade::reset(self);
    }
}

/// Runs `section` over `block` under `fade`: in place when on; mixed with its input while
/// fading (`dry + (wet − dry)·m`, `m` ramping per sample; `scratch` holds the input, one
/// buffer per channel at least as long as the block); reset once when it has faded out, so
/// that switching it back on starts from silence; nothing while off.
pub fn run_faded(
    fade: &mut SectionFade,
    block: &mut [&mut [f32]],
    scratch: &mut [Vec<f32>],
    section: &mut impl InPlace,
) {
    let n = frames(block);
    match fade.plan(n) {
        FadePlan::Skip => {}
        FadePlan::ResetThenSkip => section.clear_state(),
        FadePlan::Process => section.process_in_place(block),
        FadePlan::Mix(m0, m1) => {
            for (ch, dry) in block.iter().zip(scratch.iter_mut()) {
                dry[..n].copy_from_slice(ch);
            }
            section.process_in_place(block);
            crossfade(block, scratch, m0, m1);
        }
    }
}

/// `block = dry + (block − dry)·m`, `m` going linearly from `m0` (excluded) to `m1` (reached
/// on the last sample).
pub fn crossfade(block: &mut [&mut [f32]], dry: &[Vec<f32>], m0: f64, m1: f64) {
    let n = frames(block);
    if n == 0 {
        return;
    }
    let step = (m1 - m0) / n as f64;
    for (ch, dry) in block.iter_mut().zip(dry) {
        for (i, (y, &x)) in ch.iter_mut().zip(&dry[..n]).enumerate() {
            let m = (m0 + step * (i + 1) as f64) as f32;
            *y = x + (*y - x) * m;
        }
    }
}

/// Multiplies by a gain going linearly from `g0` (excluded) to `g1` (reached on the last
/// sample).
pub fn ramp_gain(block: &mut [&mut [f32]], g0: f64, g1: f64) {
    let n = frames(block);
    if n == 0 || (g0 == 1.0 && g1 == 1.0) {
        return;
    }
    if g0 == g1 {
        let g = g0 as f32;
        for ch in block.iter_mut() {
            ch.iter_mut().for_each(|x| *x *= g);
        }
        return;
    }
    let step = (g1 - g0) / n as f64;
    for ch in block.iter_mut() {
        for (i, x) in ch.iter_mut().enumerate() {
            *x *= (g0 + step * (i + 1) as f64) as f32;
        }
    }
}

/// Largest |x| of a block (non-finite samples count as 0).
pub fn block_peak(block: &[&mut [f32]]) -> f32 {
    block.iter().flat_map(|c| c.iter()).fold(
        0.0f32,
        |m, &x| if x.is_finite() { m.max(x.abs()) } else { m },
    )
}

/// Mean of `x²` over every channel and frame of a planar block (non-finite samples count as 0;
/// 0 for an empty block): the block's power, for RMS meters.
///
/// ```
/// let (mut l, mut r) = ([1.0f32, -1.0], [0.0f32, 0.0]);
/// assert_eq!(rtfx::dsp::section::block_mean_square(&[&mut l, &mut r]), 0.5);
/// ```
pub fn block_mean_square(block: &[&mut [f32]]) -> f32 {
    let count: usize = block.iter().map(|c| c.len()).sum();
    if count == 0 {
        return 0.0;
    }
    // Eight lanes of f32 partial sums (they vectorise; a block's power needs no more), and a
    // careful second pass only when a non-finite sample spoilt them.
    let lanes = |c: &[f32]| {
        let mut acc = [0.0f32; 8];
        let chunks = c.chunks_exact(8);
        let rest = chunks.remainder();
        for chunk in chunks {
            for (a, &x) in acc.iter_mut().zip(chunk) {
                *a += x * x;
            }
        }
        acc.iter().sum::<f32>() + rest.iter().map(|&x| x * x).sum::<f32>()
    };
    let mut sum: f32 = block.iter().map(|c| lanes(c)).sum();
    if !sum.is_finite() {
        sum = block
            .iter()
            .flat_map(|c| c.iter())
            .filter(|x| x.is_finite())
            .map(|&x| f64::from(x) * f64::from(x))
            .sum::<f64>() as f32;
    }
    sum / count as f32
}

/// One delay line per channel, for delays up to `capacity − 1` samples, that also remembers
/// what went in: a dry path kept in time with a latent wet one.
#[derive(Debug, Clone, Default)]
pub struct DelayLines {
    lines: Vec<Vec<f32>>,
    write: usize,
}

impl DelayLines {
    /// Silent lines for `channels` channels holding `capacity` samples each.
    pub fn new(channels: usize, capacity: usize) -> Self {
        Self {
            lines: vec![vec![0.0; capacity]; channels],
            write: 0,
        }
    }

    /// Delays every channel of `block` by `delay` samples (at most `capacity − 1`), in place.
    pub fn delay(&mut self, block: &mut [&mut [f32]], delay: usize) {
        let Some(cap) = self.lines.first().map(|l| l.len()) else {
            return;
        };
        if cap == 0 {
            return;
        }
        let delay = delay.min(cap - 1);
        let n = frames(block);
        for (ch, line) in block.iter_mut().zip(self.lines.iter_mut()) {
            let mut w = self.write;
            for x in ch.iter_mut() {
                line[w] = *x;
                let r = if w >= delay {
                    w - delay
                } else {
                    w + cap - delay
                };
                *x = line[r];
                w = if w + 1 == cap { 0 } else { w + 1 };
            }
        }
        self.write = (self.write + n) % cap;
    }

    /// Copies the `n` samples that entered the lines `back` … `back − n + 1` samples ago
    /// (oldest first) into `out` (per channel; `back` is clamped to the capacity).
    pub fn recent(&self, back: usize, n: usize, out: &mut [Vec<f32>]) {
        let Some(cap) = self.lines.first().map(|l| l.len()) else {
            return;
        };
        let back = back.min(cap);
        for (line, o) in self.lines.iter().zip(out.iter_mut()) {
            let mut r = (self.write + cap - back) % cap;
            for y in o[..n].iter_mut() {
                *y = line[r];
                r = if r + 1 == cap { 0 } else { r + 1 };
            }
        }
    }

    /// Silences the lines.
    pub fn clear(&mut self) {
        self.lines.iter_mut().for_each(|l| l.fill(0.0));
        self.write = 0;
    }
}

/// A fixed-length SOS cascade whose design may change order without a click: on an order
/// change ([`Self::begin_order_change`]) the old filter keeps running and fades out while the
/// new one starts from silence and fades in.
#[derive(Debug, Clone)]
pub struct CrossfadingCascade {
    cascade: SosCascade,
    /// The filter as it was before the last order change, still running while it fades out.
    previous: SosCascade,
    /// 0 → 1 from the previous order to the new one.
    order_fade: LinearSmoother,
    fade_len: usize,
    tmp: Vec<Vec<f32>>,
}

impl CrossfadingCascade {
    /// `sections` identity sections for `channels` channels, blocks of up to `max_block`
    /// frames, order changes fading over `fade_len` samples.
    pub fn new(sections: usize, channels: usize, max_block: usize, fade_len: usize) -> Self {
        let mut previous = SosCascade::with_capacity(sections, channels);
        previous.reserve_sections(sections);
        Self {
            cascade: SosCascade::new(&vec![Section::IDENTITY; sections], channels),
            previous,
            order_fade: LinearSmoother::new(1.0),
            fade_len: fade_len.max(1),
            tmp: vec![vec![0.0; max_block]; channels],
        }
    }

    /// The running cascade (set its sections for a new design).
    pub fn cascade(&self) -> &SosCascade {
        &self.cascade
    }

    /// The running cascade, mutably.
    pub fn cascade_mut(&mut self) -> &mut SosCascade {
        &mut self.cascade
    }

    /// The cascade fading out after an order change (empty when there was none).
    pub fn previous(&self) -> &SosCascade {
        &self.previous
    }

    /// True while an order change cross-fades.
    pub fn is_fading(&self) -> bool {
        self.order_fade.current() < 1.0
    }

    /// Ends an order change at once: the running cascade alone from now on.
    pub fn end_order_change(&mut self) {
        self.order_fade.reset(1.0);
    }

    /// An order change: the current filter keeps running (and fades out) as the previous one,
    /// the running cascade restarts from silence and fades in; set its new sections after
    /// this. Never allocates.
    pub fn begin_order_change(&mut self) {
        self.previous.gather(std::iter::once(&self.cascade));
        self.cascade.reset();
        self.order_fade.reset(0.0);
        self.order_fade.set_target(1.0, self.fade_len);
    }

    /// Processes a block of up to `max_block` frames in place.
    pub fn process(&mut self, block: &mut [&mut [f32]]) {
        let m0 = self.order_fade.current();
        if m0 >= 1.0 {
            self.cascade.process(block);
            return;
        }
        let n = frames(block);
        let m1 = self.order_fade.advance(n);
        for (ch, t) in block.iter().zip(self.tmp.iter_mut()) {
            t[..n].copy_from_slice(ch);
        }
        let previous = &mut self.previous;
        with_planar_mut(&mut self.tmp, 0..n, |b| previous.process(b));
        self.cascade.process(block);
        crossfade(block, &self.tmp, m0, m1);
    }

    /// Clears both cascades and ends any order change.
    pub fn reset(&mut self) {
        self.cascade.reset();
        self.previous.reset();
        self.order_fade.reset(1.0);
    }
}

impl InPlace for CrossfadingCascade {
    fn process_in_place(&mut self, block: &mut [&mut [f32]]) {
        self.process(block);
    }
    fn clear_state(&mut self) {
        self.reset();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dsp::filter::design::{BandType, Family, design_iir};
    use crate::dsp::fx::Gain;
    use crate::dsp::noise::noise;

    #[test]
    fn crossfade_and_gain_ramps_are_linear_and_end_on_target() {
        let dry = vec![vec![1.0f32; 4]];
        let mut wet = [3.0f32; 4];
        crossfade(&mut [&mut wet[..]], &dry, 0.0, 1.0);
        // m = 0.25, 0.5, 0.75, 1: 1 + 2m.
        assert_eq!(wet, [1.5, 2.0, 2.5, 3.0]);
        let mut x = [2.0f32; 4];
        ramp_gain(&mut [&mut x[..]], 1.0, 0.0);
        assert_eq!(x, [1.5, 1.0, 0.5, 0.0]);
        let mut y = [2.0f32; 3];
        ramp_gain(&mut [&mut y[..]], 0.5, 0.5);
        assert_eq!(y, [1.0; 3]);
        let z = [f32::NAN, -3.0, 2.0];
        let mut z = z;
        assert_eq!(block_peak(&[&mut z[..]]), 3.0);
    }

    /// Off → on → off over a gain effect: the output follows the mix sample by sample, the
    /// effect is reset once when it has faded out, and nothing runs while it is off.
    #[test]
    fn a_faded_section_mixes_per_sample_and_resets_once() {
        let mut fade = SectionFade::new(false, 8);
        let mut gain = Gain::amplitude(3.0).unwrap();
        gain.prepare(48_000.0, 8, 1).unwrap();
        let mut scratch = vec![vec![0.0f32; 8]];
        let run = |fade: &mut SectionFade, gain: &mut Gain, scratch: &mut [Vec<f32>]| {
            let mut x = [1.0f32; 8];
            run_faded(fade, &mut [&mut x[..]], scratch, gain);
            x
        };
        assert_eq!(run(&mut fade, &mut gain, &mut scratch), [1.0; 8]);
        fade.set(true);
        let up = run(&mut fade, &mut gain, &mut scratch);
        for (i, y) in up.iter().enumerate() {
            let m = (i + 1) as f32 / 8.0;
            assert!((y - (1.0 + 2.0 * m)).abs() < 1e-6, "{i}: {y}");
        }
        assert_eq!(run(&mut fade, &mut gain, &mut scratch), [3.0; 8]);
        fade.set(false);
        run(&mut fade, &mut gain, &mut scratch);
        assert!(!fade.is_dormant());
        assert_eq!(fade.plan(8), FadePlan::ResetThenSkip);
        assert!(fade.is_dormant());
        assert_eq!(fade.plan(8), FadePlan::Skip);
    }

    #[test]
    fn delay_lines_delay_and_remember() {
        let mut lines = DelayLines::new(2, 8);
        let input: Vec<f32> = (1..=12).map(|v| v as f32).collect();
        let (mut l, mut r) = (input.clone(), input.clone());
        lines.delay(&mut [&mut l[..], &mut r[..]], 3);
        assert_eq!(l[..3], [0.0; 3]);
        assert_eq!(l[3..], input[..9]);
        assert_eq!(l, r);
        // The last 4 samples that went in, oldest first.
        let mut out = vec![vec![0.0f32; 4]; 2];
        lines.recent(4, 4, &mut out);
        assert_eq!(out[0], [9.0, 10.0, 11.0, 12.0]);
        // A delay beyond the capacity is the longest one.
        let mut x = [0.0f32; 1];
        lines.delay(&mut [&mut x[..]], 100);
        lines.clear();
        let mut y = [5.0f32; 2];
        lines.delay(&mut [&mut y[..]], 1);
        assert_eq!(y, [0.0, 5.0]);
    }

    /// An order change fades from the old filter to the new one (which starts from silence)
    /// and then is exactly the new filter.
    #[test]
    fn an_order_change_crossfades_then_runs_the_new_filter_alone() {
        let fs = 48_000.0;
        let design = |order| design_iir(Family::Butterworth, BandType::Lowpass, order, 1000.0, fs);
        let set = |c: &mut SosCascade, order: usize| {
            let mut sections = [Section::IDENTITY; 4];
            for (slot, s) in sections.iter_mut().zip(design(order).as_slice()) {
                *slot = *s;
            }
            c.set_sections(&sections);
        };
        let x = noise(512, 4, 0.5);
        let mut fading = CrossfadingCascade::new(4, 1, 64, 128);
        set(fading.cascade_mut(), 2);
        let mut old = SosCascade::new(&[Section::IDENTITY; 4], 1);
        set(&mut old, 2);
        let mut head = x[..64].to_vec();
        fading.process(&mut [&mut head[..]]);
        let mut old_head = x[..64].to_vec();
        old.process(&mut [&mut old_head[..]]);
        assert_eq!(head, old_head);

        fading.begin_order_change();
        set(fading.cascade_mut(), 6);
        assert!(fading.is_fading());
        let mut new = SosCascade::new(&[Section::IDENTITY; 4], 1);
        set(&mut new, 6);
        let (mut y, mut y_old, mut y_new) = (x[64..].to_vec(), x[64..].to_vec(), x[64..].to_vec());
        for ((a, b), c) in y
            .chunks_mut(64)
            .zip(y_old.chunks_mut(64))
            .zip(y_new.chunks_mut(64))
        {
            fading.process(&mut [a]);
            old.process(&mut [b]);
            new.process(&mut [c]);
        }
        assert!(!fading.is_fading());
        for (i, ((&got, &o), &n)) in y.iter().zip(&y_old).zip(&y_new).enumerate() {
            let m = ((i + 1) as f64 / 128.0).min(1.0) as f32;
            let want = o + (n - o) * m;
            assert!((got - want).abs() < 1e-6, "sample {i}: {got} vs {want}");
        }
    }
}

//! Float to integer samples: scale, seeded TPDF dither, round, clamp with a count of clips.

#[cfg(test)]
use crate::dsp::noise::Noise;

/// Turns planar `f32` into integers: scale, TPDF dither, round, clamp (counting clips).
///
/// `Copy`, so that a block's loop can work on a local copy that stays in registers (through
/// `&mut self.quantizer`, the generator's state went to memory and back on every sample).
#[derive(Clone, Copy)]
pub(super) struct Quantizer {
    pub(super) scale: f32,
    pub(super) min: f32,
    pub(super) max: f32,
    pub(super) dither: bool,
    pub(super) rng: DitherNoise,
    pub(super) clipped: u64,
}

impl Quantizer {
    pub(super) fn new(bits: u16, dither: bool, seed: u64) -> Self {
        let full = (1u64 << (bits - 1)) as f32;
        Quantizer {
            scale: full,
            min: -full,
            // Largest representable value; for 32 bits f32 rounds 2^31-1 up, so stay below.
            max: if bits >= 32 {
                2_147_483_520.0
            } else {
                full - 1.0
            },
            dither,
            rng: DitherNoise::new(seed),
            clipped: 0,
        }
    }

    /// Scales, dithers and rounds one sample, clamping at the rails. `clipped` counts the
    /// samples that clip without dither (the signal is beyond the largest code); dither that
    /// merely pushes a sample at the rails past them is clamped without counting, so the
    /// count is the same with and without dither.
    #[inline]
    pub(super) fn quantize(&mut self, x: f32) -> i32 {
        let scaled = x * self.scale;
        let v = if self.dither {
            scaled + self.rng.triangular()
        } else {
            scaled
        };
        let (min, max) = (self.min as i64, self.max as i64);
        self.clipped += u64::from(!(min..=max).contains(&round_half_away(scaled)));
        round_half_away(v).clamp(min, max) as i32
    }

    /// [`Self::quantize`] over `n` frames of `planar`, into `out` interleaved (frame by frame,
    /// as the sample-by-sample calls would draw the dither), with the same results. Up to
    /// 24 bits it runs in blocks: the dither is drawn ahead, and the rails are compared in
    /// `f32` before rounding (`round(v) > max` exactly when `v >= max + 0.5`), which leaves
    /// a loop without branches, several times faster than calling [`Self::quantize`].
    pub(super) fn quantize_interleaved(&mut self, planar: &[&[f32]], n: usize, out: &mut Vec<i32>) {
        let channels = planar.len();
        out.clear();
        out.resize(n * channels, 0);
        // Above 24 bits `max + 0.5` is no `f32`; more channels than a block holds: one by one.
        if self.scale > 8_388_608.0 || channels > NOISE_BLOCK || channels == 0 {
            for (k, o) in out.iter_mut().enumerate() {
                *o = self.quantize(planar[k % channels][k / channels]);
            }
            return;
        }
        simd::dispatch(self, planar, n, out);
    }

    /// The block path of [`Self::quantize_interleaved`] (up to 24 bits, at most
    /// [`NOISE_BLOCK`] channels). Inlined into one copy per instruction set ([`simd`]).
    #[inline(always)]
    fn quantize_blocks(&mut self, planar: &[&[f32]], n: usize, out: &mut [i32]) {
        let channels = planar.len();
        // A local copy stays in registers (through `self` the state went to memory and back
        // on every sample).
        let mut q = *self;
        // `round(v) > max` exactly when `v >= max + 0.5`, and `round(v) < min` when
        // `v <= min - 0.5`; those halves taken to the nearest f32 outward (-2²³ - ½ is none).
        let outward = |edge: f64, up: bool| {
            let e = edge as f32;
            match f64::from(e).partial_cmp(&edge) {
                Some(std::cmp::Ordering::Less) if up => e.next_up(),
                Some(std::cmp::Ordering::Greater) if !up => e.next_down(),
                _ => e,
            }
        };
        let rails = Rails {
            scale: q.scale,
            hi: outward(f64::from(q.max) + 0.5, true),
            lo: outward(f64::from(q.min) - 0.5, false),
            max: q.max,
            min: q.min,
        };
        let mut noise = [0f32; NOISE_BLOCK];
        let (mut lane_noise, mut lane_ints) = ([0f32; NOISE_BLOCK], [0i32; NOISE_BLOCK]);
        let mut clipped = 0u64;
        let frames_per_block = NOISE_BLOCK / channels;
        for first in (0..n).step_by(frames_per_block) {
            let end = (first + frames_per_block).min(n);
            let frames = end - first;
            let noise = &mut noise[..frames * channels];
            if q.dither {
                q.rng.fill(noise);
            } else {
                noise.fill(0.0);
            }
            let ints = &mut out[first * channels..end * channels];
            if channels == 1 {
                clipped += rails.quantize(&planar[0][first..end], noise, ints);
                continue;
            }
            // Each channel through contiguous buffers, so that the loop vectorises.
            for (c, samples) in planar.iter().enumerate() {
                let (lane_noise, lane_ints) = (&mut lane_noise[..frames], &mut lane_ints[..frames]);
                for (d, frame) in lane_noise.iter_mut().zip(noise.chunks_exact(channels)) {
                    *d = frame[c];
                }
                clipped += rails.quantize(&samples[first..end], lane_noise, lane_ints);
                for (q, frame) in lane_ints.iter().zip(ints.chunks_exact_mut(channels)) {
                    frame[c] = *q;
                }
            }
        }
        q.clipped += clipped;
        *self = q;
    }
}

/// What [`Quantizer::quantize_interleaved`] compares and clamps with.
struct Rails {
    scale: f32,
    /// The smallest `f32` at or above `max + 0.5`: from there on a sample rounds past `max`.
    hi: f32,
    /// The largest `f32` at or below `min - 0.5`.
    lo: f32,
    max: f32,
    min: f32,
}

impl Rails {
    /// Quantizes `xs` with `noise` (dither, or zeros) into `out`; returns the clips counted
    /// as [`Quantizer::quantize`] counts them. No branches: clamping before rounding gives
    /// the rail wherever rounding would pass it, and NaN becomes 0 as `f32::round` makes it.
    #[inline(always)]
    fn quantize(&self, xs: &[f32], noise: &[f32], out: &mut [i32]) -> u64 {
        let mut clipped = 0u32;
        for ((&x, &d), o) in xs.iter().zip(noise).zip(out.iter_mut()) {
            let scaled = x * self.scale;
            clipped += u32::from(scaled >= self.hi) + u32::from(scaled <= self.lo);
            *o = round_within(scaled + d, self.min, self.max);
        }
        u64::from(clipped)
    }
}

/// Samples of dither drawn ahead by [`Quantizer::quantize_interleaved`].
const NOISE_BLOCK: usize = 1024;

/// `x.clamp(min, max).round()` as an integer (NaN gives 0), for rails within ±2²⁴: the
/// integer part and the exact fraction, with nothing but conversions and compares, which
/// vectorise.
#[inline(always)]
fn round_within(x: f32, min: f32, max: f32) -> i32 {
    debug_assert!(min >= -16_777_216.0 && max <= 16_777_216.0);
    let x = if x.is_nan() { 0.0 } else { x.max(min).min(max) };
    // SAFETY: `x` is finite and within ±2²⁴ (the rails are, and NaN became 0), so it fits
    // an i32; the checked `as` would add a per-lane fix-up that stops the loop vectorising.
    let whole: i32 = unsafe { x.to_int_unchecked() };
    let fraction = x - whole as f32;
    whole + i32::from(fraction >= 0.5) - i32::from(fraction <= -0.5)
}

/// The dither's generator: SplitMix64, whose only carried dependency from one draw to the
/// next is an addition (xorshift's chain of shifts, twice per sample, was the slowest part
/// of writing 16-bit output). Draw `k` is a function of `seed + k·γ` alone, so a block of
/// draws is computed lane by lane in vector registers ([`simd`]). One 64-bit draw makes two
/// samples of dither: four 16-bit uniforms, far finer than the LSB they dither.
#[derive(Clone, Copy)]
pub(super) struct DitherNoise {
    state: u64,
    /// The second sample of the last draw, when it is not used yet: the sequence is the same
    /// whatever the blocks it is drawn in.
    pending: Option<f32>,
}

/// SplitMix64's increment (the golden ratio in 64 bits).
const GAMMA: u64 = 0x9E37_79B9_7F4A_7C15;

/// SplitMix64's output function: the draw for the state `z`.
#[inline(always)]
fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Two samples of triangular noise of ±1 LSB peak and mean 0 from one draw, each the
/// difference of two of its 16-bit uniforms in [0, 1).
#[inline(always)]
fn triangular_pair(z: u64) -> (f32, f32) {
    const STEP: f32 = 1.0 / 65_536.0;
    let part = |shift: u32| ((z >> shift) & 0xFFFF) as i32;
    (
        (part(48) - part(32)) as f32 * STEP,
        (part(16) - part(0)) as f32 * STEP,
    )
}

impl DitherNoise {
    pub(super) fn new(seed: u64) -> Self {
        DitherNoise {
            state: seed,
            pending: None,
        }
    }

    /// The next two samples.
    #[inline(always)]
    fn pair(&mut self) -> (f32, f32) {
        self.state = self.state.wrapping_add(GAMMA);
        triangular_pair(mix(self.state))
    }

    /// The next sample of triangular noise.
    #[inline]
    fn triangular(&mut self) -> f32 {
        if let Some(second) = self.pending.take() {
            return second;
        }
        let (first, second) = self.pair();
        self.pending = Some(second);
        first
    }

    /// The next `out.len()` samples, as many [`Self::triangular`] calls would give them.
    /// The pairs are computed from their index (no carried state), so the loop vectorises.
    #[inline(always)]
    fn fill(&mut self, out: &mut [f32]) {
        let mut rest = out;
        if let Some(second) = self.pending {
            let Some((head, tail)) = rest.split_first_mut() else {
                return;
            };
            *head = second;
            self.pending = None;
            rest = tail;
        }
        let mut pairs = rest.chunks_exact_mut(2);
        let state = self.state;
        let mut drawn = 0u64;
        for (k, pair) in (1u64..).zip(&mut pairs) {
            (pair[0], pair[1]) = triangular_pair(mix(state.wrapping_add(GAMMA.wrapping_mul(k))));
            drawn = k;
        }
        self.state = state.wrapping_add(GAMMA.wrapping_mul(drawn));
        if let [last] = pairs.into_remainder() {
            *last = self.triangular();
        }
    }
}

/// One copy of the block quantizer per instruction set, the best this CPU has chosen at run
/// time: the same operations in wider registers, so the same integers. With AVX-512's 64-bit
/// multiply the dither's generator runs about three times as fast as on baseline x86-64.
pub(super) mod simd {
    use super::Quantizer;

    /// The instruction sets the block quantizer is compiled for.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub(super) enum Isa {
        Baseline,
        Avx2,
        Avx512,
    }

    impl Isa {
        /// Whether this CPU runs it.
        pub(super) fn available(self) -> bool {
            #[cfg(target_arch = "x86_64")]
            {
                match self {
                    Isa::Baseline => true,
                    Isa::Avx2 => std::arch::is_x86_feature_detected!("avx2"),
                    Isa::Avx512 => {
                        std::arch::is_x86_feature_detected!("avx512f")
                            && std::arch::is_x86_feature_detected!("avx512dq")
                            && std::arch::is_x86_feature_detected!("avx512vl")
                    }
                }
            }
            #[cfg(not(target_arch = "x86_64"))]
            {
                self == Isa::Baseline
            }
        }
    }

    /// The block quantizer with the best instruction set available.
    pub(super) fn dispatch(q: &mut Quantizer, planar: &[&[f32]], n: usize, out: &mut [i32]) {
        let best = [Isa::Avx512, Isa::Avx2]
            .into_iter()
            .find(|isa| isa.available())
            .unwrap_or(Isa::Baseline);
        run(best, q, planar, n, out);
    }

    /// The block quantizer compiled for `isa`, or for the baseline when this CPU lacks it.
    pub(super) fn run(isa: Isa, q: &mut Quantizer, planar: &[&[f32]], n: usize, out: &mut [i32]) {
        #[cfg(target_arch = "x86_64")]
        {
            #[target_feature(enable = "avx512f,avx512dq,avx512vl")]
            fn avx512(q: &mut Quantizer, planar: &[&[f32]], n: usize, out: &mut [i32]) {
                q.quantize_blocks(planar, n, out);
            }
            #[target_feature(enable = "avx2")]
            fn avx2(q: &mut Quantizer, planar: &[&[f32]], n: usize, out: &mut [i32]) {
                q.quantize_blocks(planar, n, out);
            }
            if isa.available() {
                match isa {
                    // SAFETY: the CPU has these instructions (checked just above).
                    Isa::Avx512 => return unsafe { avx512(q, planar, n, out) },
                    // SAFETY: as above.
                    Isa::Avx2 => return unsafe { avx2(q, planar, n, out) },
                    Isa::Baseline => {}
                }
            }
        }
        let _ = isa;
        q.quantize_blocks(planar, n, out);
    }
}

/// `x.round()` as an integer (halves away from zero; NaN gives 0, infinities saturate),
/// without the `roundf` call that baseline x86-64 makes of `f32::round`: it cost a quarter of
/// a short clip's render. In `f64`, adding ½ to any `f32` is exact where it matters, and the
/// cast truncates toward zero.
#[inline]
fn round_half_away(x: f32) -> i64 {
    let x = f64::from(x);
    (x + 0.5f64.copysign(x)) as i64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dither_is_triangular_from_independent_halves() {
        let mut noise = DitherNoise::new(3);
        let n = 400_000;
        let draws: Vec<f64> = (0..n).map(|_| f64::from(noise.triangular())).collect();
        let mean = draws.iter().sum::<f64>() / n as f64;
        let var = draws.iter().map(|d| (d - mean).powi(2)).sum::<f64>() / n as f64;
        let inner = draws.iter().filter(|d| d.abs() < 0.5).count() as f64 / n as f64;
        assert!(draws.iter().all(|d| d.abs() < 1.0));
        assert!(mean.abs() < 0.003, "mean {mean}");
        // Two independent uniforms: variance 1/12 + 1/12; correlated halves would change it.
        assert!((var - 1.0 / 6.0).abs() < 0.002, "variance {var}");
        // A triangle holds 3/4 of its mass within half its width; a uniform would hold 1/2.
        assert!((inner - 0.75).abs() < 0.005, "inner mass {inner}");
        // Successive draws are uncorrelated.
        let lag1 = draws.windows(2).map(|w| w[0] * w[1]).sum::<f64>() / n as f64 / var;
        assert!(lag1.abs() < 0.01, "lag-1 correlation {lag1}");
    }

    #[test]
    fn blocks_quantize_as_sample_by_sample() {
        let mut rng = Noise::new(11);
        for bits in [16u16, 24, 32] {
            for dither in [false, true] {
                for channels in [1usize, 2, 3] {
                    let n = 3000;
                    let planar: Vec<Vec<f32>> = (0..channels)
                        .map(|_| {
                            (0..n)
                                .map(|i| match i % 97 {
                                    0 => f32::NAN,
                                    1 => f32::INFINITY,
                                    2 => 1.0,
                                    3 => -1.0,
                                    // Half a code either side of each rail, and just inside.
                                    4..=20 => {
                                        let lsb = 1.0 / (1u64 << (bits - 1)) as f32;
                                        let rail = if i % 2 == 0 { 1.0 } else { -1.0 };
                                        rail * (1.0 + lsb * ((i % 7) as f32 - 3.0) * 0.5)
                                    }
                                    _ => (rng.unit() - 0.5) * 2.2,
                                })
                                .collect()
                        })
                        .collect();
                    let views: Vec<&[f32]> = planar.iter().map(Vec::as_slice).collect();
                    let mut one = Quantizer::new(bits, dither, 5);
                    let want: Vec<i32> = (0..n * channels)
                        .map(|k| one.quantize(views[k % channels][k / channels]))
                        .collect();
                    assert!(one.clipped > 0);
                    let mut block = Quantizer::new(bits, dither, 5);
                    let mut got = Vec::new();
                    block.quantize_interleaved(&views, n, &mut got);
                    assert_eq!(got, want, "{bits} bits, dither {dither}, {channels} ch");
                    assert_eq!(block.clipped, one.clipped, "{bits} bits clip count");
                    // Each instruction set's copy of the block path (those this CPU has).
                    for isa in [simd::Isa::Baseline, simd::Isa::Avx2, simd::Isa::Avx512] {
                        if bits > 24 || !isa.available() {
                            continue;
                        }
                        let mut block = Quantizer::new(bits, dither, 5);
                        let mut got = vec![0; n * channels];
                        simd::run(isa, &mut block, &views, n, &mut got);
                        assert_eq!(
                            got, want,
                            "{isa:?}, {bits} bits, dither {dither}, {channels} ch"
                        );
                        assert_eq!(block.clipped, one.clipped, "{isa:?} clip count");
                    }
                }
            }
        }
    }

    #[test]
    fn dither_does_not_depend_on_how_the_signal_is_split() {
        let mut rng = Noise::new(4);
        let signal: Vec<f32> = (0..5001).map(|_| (rng.unit() - 0.5) * 1e-3).collect();
        let mut whole = Quantizer::new(16, true, 8);
        let mut want = Vec::new();
        whole.quantize_interleaved(&[&signal], signal.len(), &mut want);
        for cut in [1, 7, 1024, 1025, 3333] {
            let mut parts = Quantizer::new(16, true, 8);
            let (mut a, mut b) = (Vec::new(), Vec::new());
            parts.quantize_interleaved(&[&signal[..cut]], cut, &mut a);
            let rest = &signal[cut..];
            parts.quantize_interleaved(&[rest], rest.len(), &mut b);
            a.extend(b);
            assert_eq!(a, want, "cut at {cut}");
        }
    }

    #[test]
    fn both_roundings_match_f32_round() {
        let edge = [
            0.0f32,
            -0.0,
            0.5,
            -0.5,
            1.5,
            -1.5,
            2.5,
            -2.5,
            0.499_999_97,
            -0.499_999_97,
            8_388_607.5,
            -8_388_608.5,
            16_777_215.0,
            2_147_483_520.0,
            f32::MIN_POSITIVE,
            1e-30,
        ];
        let mut rng = Noise::new(7);
        let random = (0..200_000).map(|_| (rng.unit() - 0.5) * 2f32.powi(rng.below(34) as i32));
        for x in edge.into_iter().chain(random) {
            assert_eq!(round_half_away(x), x.round() as i64, "{x}");
            let within = (x.round() as i32).clamp(-8_388_608, 8_388_607);
            assert_eq!(round_within(x, -8_388_608.0, 8_388_607.0), within, "{x}");
        }
        assert_eq!(round_half_away(f32::NAN), 0);
        assert_eq!(round_half_away(f32::INFINITY), i64::MAX);
        assert_eq!(round_within(f32::NAN, -32768.0, 32767.0), 0);
        assert_eq!(round_within(f32::INFINITY, -32768.0, 32767.0), 32767);
        assert_eq!(round_within(-1e9, -32768.0, 32767.0), -32768);
    }

    #[test]
    fn quantizes_and_counts_clips() {
        let mut q = Quantizer::new(16, false, 1);
        let got: Vec<i32> = [0.0, 0.5 / 32768.0, -1.5 / 32768.0, 1.0, -1.0, 2.0, f32::NAN]
            .into_iter()
            .map(|x| q.quantize(x))
            .collect();
        assert_eq!(got, [0, 1, -2, 32767, -32768, 32767, 0]);
        // 1.0 scales to 32768, past the largest code: a clip; -1.0 is exactly the smallest.
        assert_eq!(q.clipped, 2);
    }
}

//! Float to integer samples: scale, seeded TPDF dither, round, clamp with a count of clips.

use crate::dsp::noise::Noise;

/// Turns planar `f32` into integers: scale, TPDF dither, round, clamp (counting clips).
pub(super) struct Quantizer {
    pub(super) scale: f32,
    pub(super) min: f32,
    pub(super) max: f32,
    pub(super) dither: bool,
    pub(super) rng: Noise,
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
            rng: Noise::new(seed),
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
        let mut v = scaled;
        if self.dither {
            // Sum of two uniforms: triangular noise of ±1 LSB peak, mean 0.
            v += self.rng.unit() - self.rng.unit();
        }
        let r = v.round();
        if r > self.max {
            self.clipped += u64::from(scaled.round() > self.max);
            self.max as i32
        } else if r < self.min {
            self.clipped += u64::from(scaled.round() < self.min);
            self.min as i32
        } else {
            r as i32
        }
    }
}

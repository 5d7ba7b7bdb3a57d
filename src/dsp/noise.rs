//! Deterministic white noise: the one pseudo-random generator of rtfx. The dither of integer
//! output, the demo's test signal, and the tests and benchmarks all draw from [`Noise`], so a
//! seed means the same sequence everywhere, on every machine.
//!
//! ```
//! use rtfx::dsp::noise::{Noise, noise};
//! let mut a = Noise::new(7);
//! let first = a.sample();
//! assert!((-1.0..1.0).contains(&first));
//! assert_eq!(noise(3, 7, 1.0)[0], first); // the same seed, the same sequence
//! assert_ne!(noise(3, 6, 1.0), noise(3, 7, 1.0));
//! ```

/// xorshift64* (Vigna), seeded through splitmix64 so that every seed, 0 and neighbours
/// included, starts its own sequence. Not for cryptography.
#[derive(Debug, Clone)]
pub struct Noise {
    state: u64,
}

impl Noise {
    /// A generator for `seed` (any value).
    pub fn new(seed: u64) -> Self {
        // splitmix64's finaliser: a bijection, so distinct seeds give distinct states.
        let mut z = seed.wrapping_add(0x9E37_79B9_7F4A_7C15);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        // xorshift's one forbidden state; the only seed that maps to it gets another.
        Self {
            state: if z == 0 { 0x2545_F491_4F6C_DD1D } else { z },
        }
    }

    /// The next 64 random bits.
    #[inline]
    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.state;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.state = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Uniform in [0, 1), in steps of 2⁻²⁴ (every value exact in `f32`).
    #[inline]
    pub fn unit(&mut self) -> f32 {
        (self.next_u64() >> 40) as f32 * (1.0 / 16_777_216.0)
    }

    /// Uniform in [0, 1) as `f64`, in steps of 2⁻⁵³.
    #[inline]
    pub fn unit_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / 9_007_199_254_740_992.0)
    }

    /// Uniform in [-1, 1).
    #[inline]
    pub fn sample(&mut self) -> f32 {
        self.unit() * 2.0 - 1.0
    }

    /// Uniform in `0..n` (`n > 0`; the modulo bias is below 2⁻³² for any `n` under 2³²).
    #[inline]
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n.max(1) as u64) as usize
    }
}

/// `frames` samples of white noise in [-amplitude, amplitude) from [`Noise::new`]`(seed)`.
pub fn noise(frames: usize, seed: u64, amplitude: f32) -> Vec<f32> {
    let mut rng = Noise::new(seed);
    (0..frames).map(|_| rng.sample() * amplitude).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn neighbouring_seeds_give_different_sequences() {
        for seed in [0u64, 1, 2, 3, u64::MAX - 1, u64::MAX] {
            assert_ne!(
                noise(64, seed, 1.0),
                noise(64, seed ^ 1, 1.0),
                "seed {seed}"
            );
        }
    }

    #[test]
    fn white_and_uniform() {
        let x = noise(1 << 16, 1, 1.0);
        let n = x.len() as f64;
        let mean = x.iter().map(|&v| f64::from(v)).sum::<f64>() / n;
        let var = x.iter().map(|&v| f64::from(v).powi(2)).sum::<f64>() / n - mean * mean;
        // Uniform on [-1, 1): mean 0, variance 1/3; neighbours uncorrelated.
        assert!(mean.abs() < 0.01, "{mean}");
        assert!((var - 1.0 / 3.0).abs() < 0.01, "{var}");
        let lag1 = x
            .windows(2)
            .map(|w| f64::from(w[0]) * f64::from(w[1]))
            .sum::<f64>()
            / n;
        assert!(lag1.abs() < 0.01, "{lag1}");
        assert!(x.iter().all(|v| (-1.0..1.0).contains(v)));
    }
}

//! SIMD lanes for the DSP kernels, one register's worth at a time: [`F64x2`] (two `f64`
//! lanes, one per channel of a stereo pair: the SOS cascade) and [`F32x4`] (four `f32` lanes:
//! the reverb's packed stereo combs). SSE2 intrinsics on x86-64 (baseline: no target features
//! needed, except the FMA variants, which callers only use after checking the CPU), a plain
//! array elsewhere; every operation is the scalar one per lane, so both builds compute the
//! same numbers.

/// One (left, right) pair of `f32` samples, 8-byte aligned so a pair moves as one 64-bit lane.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
#[repr(C, align(8))]
pub struct Pair(pub [f32; 2]);

/// Four `f32` lanes computed together: one SSE2 register on x86-64 (baseline, no target
/// features needed), a plain array elsewhere. Every operation is the scalar one per lane, so
/// both builds compute the same numbers.
#[cfg(target_arch = "x86_64")]
mod f32x4 {
    use super::Pair;
    use std::arch::x86_64::*;

    #[derive(Clone, Copy)]
    pub struct F32x4(__m128);

    // SAFETY (every `unsafe` block in this impl): SSE2 is part of the x86-64 baseline, so the
    // intrinsics are available; the pointer loads and stores only touch the `Pair`s or arrays
    // they are derived from, and `Pair` is 8-byte aligned, as the 64-bit accesses require.
    impl F32x4 {
        #[inline(always)]
        pub fn splat(x: f32) -> Self {
            Self(unsafe { _mm_set1_ps(x) })
        }

        #[inline(always)]
        pub fn zero() -> Self {
            Self(unsafe { _mm_setzero_ps() })
        }

        #[inline(always)]
        pub fn new(x: [f32; 4]) -> Self {
            Self(unsafe { _mm_setr_ps(x[0], x[1], x[2], x[3]) })
        }

        #[inline(always)]
        pub fn to_array(self) -> [f32; 4] {
            let mut a = [0.0; 4];
            self.store(&mut a);
            a
        }

        #[inline(always)]
        pub fn load(a: &[f32; 4]) -> Self {
            Self(unsafe { _mm_loadu_ps(a.as_ptr()) })
        }

        #[inline(always)]
        pub fn store(self, a: &mut [f32; 4]) {
            unsafe { _mm_storeu_ps(a.as_mut_ptr(), self.0) }
        }

        /// `[a.0, a.1, 0, 0]`.
        #[inline(always)]
        pub fn load_pair(a: &Pair) -> Self {
            Self(unsafe { _mm_castpd_ps(_mm_load_sd(std::ptr::from_ref(a).cast())) })
        }

        /// Stores lanes 0 and 1.
        #[inline(always)]
        pub fn store_pair(self, a: &mut Pair) {
            unsafe { _mm_storel_pd(std::ptr::from_mut(a).cast(), _mm_castps_pd(self.0)) }
        }

        /// `[a.0, a.1, b.0, b.1]`.
        #[inline(always)]
        pub fn load_two(a: &Pair, b: &Pair) -> Self {
            unsafe {
                let lo = _mm_load_sd(std::ptr::from_ref(a).cast());
                Self(_mm_castpd_ps(_mm_loadh_pd(
                    lo,
                    std::ptr::from_ref(b).cast(),
                )))
            }
        }

        /// Stores lanes 0 and 1 to `a`, lanes 2 and 3 to `b`.
        #[inline(always)]
        pub fn store_two(self, a: &mut Pair, b: &mut Pair) {
            unsafe {
                let v = _mm_castps_pd(self.0);
                _mm_storel_pd(std::ptr::from_mut(a).cast(), v);
                _mm_storeh_pd(std::ptr::from_mut(b).cast(), v);
            }
        }

        /// Two consecutive pairs.
        #[inline(always)]
        pub fn load_pairs(a: &[Pair; 2]) -> Self {
            Self(unsafe { _mm_loadu_ps(a.as_ptr().cast()) })
        }

        #[inline(always)]
        pub fn store_pairs(self, a: &mut [Pair; 2]) {
            unsafe { _mm_storeu_ps(a.as_mut_ptr().cast(), self.0) }
        }

        #[inline(always)]
        pub fn add(self, b: Self) -> Self {
            Self(unsafe { _mm_add_ps(self.0, b.0) })
        }

        #[inline(always)]
        pub fn sub(self, b: Self) -> Self {
            Self(unsafe { _mm_sub_ps(self.0, b.0) })
        }

        #[inline(always)]
        pub fn mul(self, b: Self) -> Self {
            Self(unsafe { _mm_mul_ps(self.0, b.0) })
        }

        /// `[a0, a1, b0, b1]`.
        #[inline(always)]
        pub fn low_halves(self, b: Self) -> Self {
            Self(unsafe { _mm_movelh_ps(self.0, b.0) })
        }

        /// `[a2, a3, b2, b3]`.
        #[inline(always)]
        pub fn high_halves(self, b: Self) -> Self {
            Self(unsafe { _mm_movehl_ps(b.0, self.0) })
        }

        /// `[a0 + a2, a1 + a3, …]`: the two pairs summed, in lanes 0 and 1.
        #[inline(always)]
        pub fn fold(self) -> Self {
            Self(unsafe { _mm_add_ps(self.0, _mm_movehl_ps(self.0, self.0)) })
        }

        /// Zero where `|x| < 1e-30`, else `x`, lane by lane (see [`super::flush_tiny`]).
        #[inline(always)]
        pub fn flush_tiny(self) -> Self {
            unsafe {
                let abs = _mm_and_ps(self.0, _mm_castsi128_ps(_mm_set1_epi32(i32::MAX)));
                Self(_mm_and_ps(
                    self.0,
                    _mm_cmpnlt_ps(abs, _mm_set1_ps(crate::dsp::FLUSH_BELOW_F32)),
                ))
            }
        }

        /// `x` limited to `[-bound, bound]` (`x` not NaN).
        #[inline(always)]
        pub fn clamp(self, bound: f32) -> Self {
            unsafe {
                Self(_mm_max_ps(
                    _mm_min_ps(self.0, _mm_set1_ps(bound)),
                    _mm_set1_ps(-bound),
                ))
            }
        }

        /// Zero where `|x| < 1e-30` or `x` is not finite, else `x`, lane by lane (the rule
        /// of `sanitize_state_f32`).
        #[inline(always)]
        pub fn sanitize(self) -> Self {
            unsafe {
                let abs = _mm_and_ps(self.0, _mm_castsi128_ps(_mm_set1_epi32(i32::MAX)));
                let big = _mm_cmpnlt_ps(abs, _mm_set1_ps(crate::dsp::FLUSH_BELOW_F32));
                let finite = _mm_cmplt_ps(abs, _mm_set1_ps(f32::INFINITY));
                Self(_mm_and_ps(self.0, _mm_and_ps(big, finite)))
            }
        }
    }
}

/// Portable [`F32x4`]: the same operations on a plain array.
#[cfg(any(test, not(target_arch = "x86_64")))]
#[cfg_attr(all(test, target_arch = "x86_64"), allow(dead_code))]
mod f32x4_portable {
    use super::Pair;

    #[derive(Clone, Copy)]
    pub struct F32x4([f32; 4]);

    impl F32x4 {
        #[inline(always)]
        fn map2(self, b: Self, f: impl Fn(f32, f32) -> f32) -> Self {
            Self(std::array::from_fn(|i| f(self.0[i], b.0[i])))
        }

        #[inline(always)]
        pub fn splat(x: f32) -> Self {
            Self([x; 4])
        }

        #[inline(always)]
        pub fn zero() -> Self {
            Self([0.0; 4])
        }

        #[inline(always)]
        pub fn new(x: [f32; 4]) -> Self {
            Self(x)
        }

        #[inline(always)]
        pub fn to_array(self) -> [f32; 4] {
            self.0
        }

        #[inline(always)]
        pub fn load(a: &[f32; 4]) -> Self {
            Self(*a)
        }

        #[inline(always)]
        pub fn store(self, a: &mut [f32; 4]) {
            *a = self.0;
        }

        #[inline(always)]
        pub fn load_pair(a: &Pair) -> Self {
            Self([a.0[0], a.0[1], 0.0, 0.0])
        }

        #[inline(always)]
        pub fn store_pair(self, a: &mut Pair) {
            a.0 = [self.0[0], self.0[1]];
        }

        #[inline(always)]
        pub fn load_two(a: &Pair, b: &Pair) -> Self {
            Self([a.0[0], a.0[1], b.0[0], b.0[1]])
        }

        #[inline(always)]
        pub fn store_two(self, a: &mut Pair, b: &mut Pair) {
            a.0 = [self.0[0], self.0[1]];
            b.0 = [self.0[2], self.0[3]];
        }

        #[inline(always)]
        pub fn load_pairs(a: &[Pair; 2]) -> Self {
            Self::load_two(&a[0], &a[1])
        }

        #[inline(always)]
        pub fn store_pairs(self, a: &mut [Pair; 2]) {
            let [a0, a1] = a;
            self.store_two(a0, a1);
        }

        #[inline(always)]
        pub fn add(self, b: Self) -> Self {
            self.map2(b, |x, y| x + y)
        }

        #[inline(always)]
        pub fn sub(self, b: Self) -> Self {
            self.map2(b, |x, y| x - y)
        }

        #[inline(always)]
        pub fn mul(self, b: Self) -> Self {
            self.map2(b, |x, y| x * y)
        }

        #[inline(always)]
        pub fn low_halves(self, b: Self) -> Self {
            Self([self.0[0], self.0[1], b.0[0], b.0[1]])
        }

        #[inline(always)]
        pub fn high_halves(self, b: Self) -> Self {
            Self([self.0[2], self.0[3], b.0[2], b.0[3]])
        }

        #[inline(always)]
        pub fn fold(self) -> Self {
            let a = self.0;
            Self([a[0] + a[2], a[1] + a[3], a[2] + a[2], a[3] + a[3]])
        }

        #[inline(always)]
        pub fn flush_tiny(self) -> Self {
            Self(self.0.map(|x| {
                if x.abs() < crate::dsp::FLUSH_BELOW_F32 {
                    0.0
                } else {
                    x
                }
            }))
        }

        #[inline(always)]
        pub fn clamp(self, bound: f32) -> Self {
            Self(self.0.map(|x| x.clamp(-bound, bound)))
        }

        #[inline(always)]
        pub fn sanitize(self) -> Self {
            Self(self.0.map(sanitize_state_f32))
        }
    }

    use crate::dsp::sanitize_state_f32;
}

#[cfg(target_arch = "x86_64")]
pub use f32x4::F32x4;
#[cfg(not(target_arch = "x86_64"))]
pub use f32x4_portable::F32x4;

/// Two `f64` lanes as one SSE2 register (baseline on x86-64). Written with intrinsics
/// because LLVM's SLP vectoriser leaves the `[f64; 2]` recursion scalar (every operation twice).
#[cfg(target_arch = "x86_64")]
mod f64x2 {
    use std::arch::x86_64::{
        __m128d, _mm_add_pd, _mm_and_ps, _mm_andnot_ps, _mm_cmpge_ps, _mm_cmple_ps, _mm_cvtpd_ps,
        _mm_cvtps_pd, _mm_cvtss_f32, _mm_fmadd_pd, _mm_fnmadd_pd, _mm_mul_pd, _mm_set_pd,
        _mm_set_ss, _mm_set1_pd, _mm_set1_ps, _mm_shuffle_ps, _mm_storeu_pd, _mm_sub_pd,
        _mm_unpacklo_ps,
    };

    #[derive(Clone, Copy)]
    pub struct F64x2(__m128d);

    impl F64x2 {
        #[inline(always)]
        pub fn splat(v: f64) -> F64x2 {
            // SAFETY: SSE2 is part of the x86-64 baseline.
            F64x2(unsafe { _mm_set1_pd(v) })
        }
        #[inline(always)]
        pub fn new(lane0: f64, lane1: f64) -> F64x2 {
            // SAFETY: SSE2 is part of the x86-64 baseline.
            F64x2(unsafe { _mm_set_pd(lane1, lane0) })
        }
        #[inline(always)]
        pub fn get(self) -> [f64; 2] {
            let mut out = [0.0; 2];
            // SAFETY: `out` has room for the two lanes; unaligned store.
            unsafe { _mm_storeu_pd(out.as_mut_ptr(), self.0) };
            out
        }
        /// Two `f32` samples widened in one packed conversion.
        #[inline(always)]
        pub fn from_f32(lane0: f32, lane1: f32) -> F64x2 {
            // SAFETY: SSE2 is part of the x86-64 baseline.
            F64x2(unsafe { _mm_cvtps_pd(_mm_unpacklo_ps(_mm_set_ss(lane0), _mm_set_ss(lane1))) })
        }
        /// Both lanes narrowed to `f32` in one packed conversion (same rounding as `as f32`),
        /// each written as 0 when it is NaN, infinite or below 1e-30 in magnitude (every
        /// subnormal included): a mask on the packed pair, no branch.
        #[inline(always)]
        pub fn to_f32_clean(self) -> (f32, f32) {
            // SAFETY: SSE2 is part of the x86-64 baseline.
            unsafe {
                let f = _mm_cvtpd_ps(self.0);
                let magnitude = _mm_andnot_ps(_mm_set1_ps(-0.0), f);
                // Ordered comparisons: false for NaN, so NaN lanes are zeroed too.
                let keep = _mm_and_ps(
                    _mm_cmpge_ps(magnitude, _mm_set1_ps(crate::dsp::FLUSH_BELOW_F32)),
                    _mm_cmple_ps(magnitude, _mm_set1_ps(f32::MAX)),
                );
                let f = _mm_and_ps(f, keep);
                (
                    _mm_cvtss_f32(f),
                    _mm_cvtss_f32(_mm_shuffle_ps::<0b01>(f, f)),
                )
            }
        }
        /// `self·b + c`, rounded once.
        #[inline]
        #[target_feature(enable = "fma")]
        pub fn mul_add(self, b: F64x2, c: F64x2) -> F64x2 {
            F64x2(_mm_fmadd_pd(self.0, b.0, c.0))
        }
        /// `c − self·b`, rounded once.
        #[inline]
        #[target_feature(enable = "fma")]
        pub fn neg_mul_add(self, b: F64x2, c: F64x2) -> F64x2 {
            F64x2(_mm_fnmadd_pd(self.0, b.0, c.0))
        }
        #[inline(always)]
        pub fn add(self, o: F64x2) -> F64x2 {
            // SAFETY: SSE2 is part of the x86-64 baseline.
            F64x2(unsafe { _mm_add_pd(self.0, o.0) })
        }
        #[inline(always)]
        pub fn sub(self, o: F64x2) -> F64x2 {
            // SAFETY: SSE2 is part of the x86-64 baseline.
            F64x2(unsafe { _mm_sub_pd(self.0, o.0) })
        }
        #[inline(always)]
        pub fn mul(self, o: F64x2) -> F64x2 {
            // SAFETY: SSE2 is part of the x86-64 baseline.
            F64x2(unsafe { _mm_mul_pd(self.0, o.0) })
        }
    }
}

/// Portable two-lane fallback with the same operations.
#[cfg(any(test, not(target_arch = "x86_64")))]
#[cfg_attr(all(test, target_arch = "x86_64"), allow(dead_code))]
mod f64x2_portable {
    #[derive(Clone, Copy)]
    pub struct F64x2([f64; 2]);

    impl F64x2 {
        #[inline(always)]
        pub fn splat(v: f64) -> F64x2 {
            F64x2([v, v])
        }
        #[inline(always)]
        pub fn new(lane0: f64, lane1: f64) -> F64x2 {
            F64x2([lane0, lane1])
        }
        #[inline(always)]
        pub fn get(self) -> [f64; 2] {
            self.0
        }
        #[inline(always)]
        pub fn from_f32(lane0: f32, lane1: f32) -> F64x2 {
            F64x2([f64::from(lane0), f64::from(lane1)])
        }
        #[inline(always)]
        pub fn to_f32_clean(self) -> (f32, f32) {
            let clean = |v: f64| {
                let v = v as f32;
                if (crate::dsp::FLUSH_BELOW_F32..=f32::MAX).contains(&v.abs()) {
                    v
                } else {
                    0.0
                }
            };
            (clean(self.0[0]), clean(self.0[1]))
        }
        #[inline(always)]
        pub fn add(self, o: F64x2) -> F64x2 {
            F64x2([self.0[0] + o.0[0], self.0[1] + o.0[1]])
        }
        #[inline(always)]
        pub fn sub(self, o: F64x2) -> F64x2 {
            F64x2([self.0[0] - o.0[0], self.0[1] - o.0[1]])
        }
        #[inline(always)]
        pub fn mul(self, o: F64x2) -> F64x2 {
            F64x2([self.0[0] * o.0[0], self.0[1] * o.0[1]])
        }
    }
}

#[cfg(target_arch = "x86_64")]
pub use f64x2::F64x2;
#[cfg(not(target_arch = "x86_64"))]
pub use f64x2_portable::F64x2;

/// The portable lanes compute what the SSE2 ones do, bit for bit, on awkward values too: the
/// claim that both builds give the same numbers, checked where the SSE2 build runs.
#[cfg(all(test, target_arch = "x86_64"))]
mod tests {
    use super::*;
    use crate::dsp::noise::Noise;

    /// Random values, with the awkward ones mixed in.
    fn values(seed: u64) -> impl FnMut() -> f32 {
        const SPECIAL: [f32; 8] = [
            0.0,
            -0.0,
            f32::NAN,
            f32::INFINITY,
            f32::NEG_INFINITY,
            1e-38,
            -3e-39,
            f32::MAX,
        ];
        let mut rng = Noise::new(seed);
        move || {
            if rng.below(5) == 0 {
                SPECIAL[rng.below(SPECIAL.len())]
            } else {
                rng.sample() * [1e-35, 1.0, 1e30][rng.below(3)]
            }
        }
    }

    fn same_f32(a: [f32; 4], b: [f32; 4], what: &str) {
        assert_eq!(a.map(f32::to_bits), b.map(f32::to_bits), "{what}");
    }

    #[test]
    fn f32x4_portable_equals_sse2() {
        use super::f32x4_portable::F32x4 as P;
        let mut next = values(1);
        for _ in 0..2000 {
            let (x, y) = (
                [next(), next(), next(), next()],
                [next(), next(), next(), next()],
            );
            let (a, b, pa, pb) = (F32x4::new(x), F32x4::new(y), P::new(x), P::new(y));
            same_f32(a.to_array(), pa.to_array(), "new");
            same_f32(a.add(b).to_array(), pa.add(pb).to_array(), "add");
            same_f32(a.sub(b).to_array(), pa.sub(pb).to_array(), "sub");
            same_f32(a.mul(b).to_array(), pa.mul(pb).to_array(), "mul");
            same_f32(
                a.low_halves(b).to_array(),
                pa.low_halves(pb).to_array(),
                "low",
            );
            same_f32(
                a.high_halves(b).to_array(),
                pa.high_halves(pb).to_array(),
                "high",
            );
            // Lanes 2 and 3 of a fold are not used.
            let (f, pf) = (a.fold().to_array(), pa.fold().to_array());
            same_f32([f[0], f[1], 0.0, 0.0], [pf[0], pf[1], 0.0, 0.0], "fold");
            same_f32(
                a.flush_tiny().to_array(),
                pa.flush_tiny().to_array(),
                "flush_tiny",
            );
            // clamp's contract excludes NaN (the reverb sanitizes first, as here).
            same_f32(
                a.sanitize().clamp(1e4).to_array(),
                pa.sanitize().clamp(1e4).to_array(),
                "clamp",
            );
            same_f32(
                a.sanitize().to_array(),
                pa.sanitize().to_array(),
                "sanitize",
            );
            let pairs = [Pair([x[0], x[1]]), Pair([x[2], x[3]])];
            same_f32(
                F32x4::load_pairs(&pairs).to_array(),
                P::load_pairs(&pairs).to_array(),
                "load_pairs",
            );
            same_f32(
                F32x4::load_two(&pairs[1], &pairs[0]).to_array(),
                P::load_two(&pairs[1], &pairs[0]).to_array(),
                "load_two",
            );
            let (mut s1, mut s2) = (Pair::default(), Pair::default());
            let (mut p1, mut p2) = (Pair::default(), Pair::default());
            a.store_two(&mut s1, &mut s2);
            pa.store_two(&mut p1, &mut p2);
            assert_eq!(
                [s1.0, s2.0].map(|p| p.map(f32::to_bits)),
                [p1.0, p2.0].map(|p| p.map(f32::to_bits)),
                "store_two"
            );
        }
    }

    #[test]
    fn f64x2_portable_equals_sse2() {
        use super::f64x2_portable::F64x2 as P;
        let mut next = values(2);
        for _ in 0..2000 {
            let (x0, x1, y0, y1) = (next(), next(), next(), next());
            let (a, b) = (F64x2::from_f32(x0, x1), F64x2::from_f32(y0, y1));
            let (pa, pb) = (P::from_f32(x0, x1), P::from_f32(y0, y1));
            let bits = |v: [f64; 2]| v.map(f64::to_bits);
            assert_eq!(bits(a.get()), bits(pa.get()), "from_f32");
            assert_eq!(bits(a.add(b).get()), bits(pa.add(pb).get()), "add");
            assert_eq!(bits(a.sub(b).get()), bits(pa.sub(pb).get()), "sub");
            assert_eq!(bits(a.mul(b).get()), bits(pa.mul(pb).get()), "mul");
            let clean = |(l, r): (f32, f32)| [l.to_bits(), r.to_bits()];
            let wide = F64x2::new(f64::from(x0) * 1e10, f64::from(y0) * 1e-10);
            let pwide = P::new(f64::from(x0) * 1e10, f64::from(y0) * 1e-10);
            assert_eq!(
                clean(a.to_f32_clean()),
                clean(pa.to_f32_clean()),
                "to_f32_clean"
            );
            assert_eq!(
                clean(wide.to_f32_clean()),
                clean(pwide.to_f32_clean()),
                "to_f32_clean, out of range"
            );
        }
    }
}

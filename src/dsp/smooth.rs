//! Parameter smoothing.
//!
//! [`LinearSmoother`] ramps a value linearly to a target over a number of samples, without
//! allocating. Its value is a function of the samples left in the ramp only
//! (`target - step * remaining`), so it does not matter in how many steps the ramp is walked:
//! the same position always gives the same value, and the end is exactly the target.

/// A linear ramp from the current value to a target over a fixed number of samples.
///
/// ```
/// use rtfx::dsp::smooth::LinearSmoother;
/// let mut s = LinearSmoother::new(1.0);
/// s.set_target(0.0, 4);
/// assert_eq!(s.advance(1), 0.75);
/// assert_eq!(s.advance(2), 0.25);
/// assert_eq!(s.advance(100), 0.0); // lands exactly on the target
/// assert!(!s.is_active());
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LinearSmoother {
    current: f64,
    target: f64,
    step: f64,
    remaining: usize,
}

impl LinearSmoother {
    /// A smoother at rest on `value`.
    pub const fn new(value: f64) -> Self {
        Self {
            current: value,
            target: value,
            step: 0.0,
            remaining: 0,
        }
    }

    /// Starts a ramp from the current value to `target` over `ramp_samples` samples. A ramp of
    /// 0 samples (or a target equal to the current value) jumps at once.
    pub fn set_target(&mut self, target: f64, ramp_samples: usize) {
        self.target = target;
        if ramp_samples == 0
            || target == self.current
            || !target.is_finite()
            || !self.current.is_finite()
        {
            self.reset(target);
        } else {
            self.step = (target - self.current) / ramp_samples as f64;
            self.remaining = ramp_samples;
        }
    }

    /// [`Self::set_target`], except that a target equal to the one already set leaves the
    /// ramp as it is (a parameter read again every block does not restart its ramp).
    pub fn retarget(&mut self, target: f64, ramp_samples: usize) {
        if self.target() != target {
            self.set_target(target, ramp_samples);
        }
    }

    /// Jumps to `value` and stops any ramp.
    pub fn reset(&mut self, value: f64) {
        self.current = value;
        self.target = value;
        self.step = 0.0;
        self.remaining = 0;
    }

    /// True while a ramp is in progress.
    #[inline]
    pub fn is_active(&self) -> bool {
        self.remaining > 0
    }

    /// Moves `n` samples along the ramp and returns the new current value (exactly the target
    /// once the ramp is over).
    #[inline]
    pub fn advance(&mut self, n: usize) -> f64 {
        if n >= self.remaining {
            self.remaining = 0;
            self.step = 0.0;
            self.current = self.target;
        } else {
            self.remaining -= n;
            self.current = self.target - self.step * self.remaining as f64;
        }
        self.current
    }

    /// The value now.
    #[inline]
    pub fn current(&self) -> f64 {
        self.current
    }

    /// The value the ramp ends on.
    #[inline]
    pub fn target(&self) -> f64 {
        self.target
    }

    /// Samples left in the ramp (0 when at rest).
    #[inline]
    pub fn remaining(&self) -> usize {
        self.remaining
    }
}

impl Default for LinearSmoother {
    fn default() -> Self {
        Self::new(0.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn starts_at_rest() {
        let s = LinearSmoother::new(0.5);
        assert_eq!(s.current(), 0.5);
        assert_eq!(s.target(), 0.5);
        assert!(!s.is_active());
        assert_eq!(LinearSmoother::default().current(), 0.0);
    }

    #[test]
    fn ramps_linearly_and_lands_exactly() {
        let mut s = LinearSmoother::new(1.0);
        s.set_target(0.1, 3);
        assert!(s.is_active());
        let a = s.advance(1);
        let b = s.advance(1);
        assert!(
            (a - 0.7).abs() < 1e-12 && (b - 0.4).abs() < 1e-12,
            "{a} {b}"
        );
        assert_eq!(s.advance(1), 0.1);
        assert!(!s.is_active());
        assert_eq!(s.advance(5), 0.1);
    }

    #[test]
    fn value_depends_on_position_not_on_step_sizes() {
        let mut one = LinearSmoother::new(-3.0);
        let mut many = one;
        one.set_target(7.3, 1000);
        many.set_target(7.3, 1000);
        one.advance(637);
        for _ in 0..637 {
            many.advance(1);
        }
        assert_eq!(one.current().to_bits(), many.current().to_bits());
        assert_eq!(one.advance(10_000), 7.3);
        assert_eq!(many.advance(363), 7.3);
    }

    #[test]
    fn zero_ramp_or_same_target_jumps() {
        let mut s = LinearSmoother::new(1.0);
        s.set_target(2.0, 0);
        assert_eq!(s.current(), 2.0);
        assert!(!s.is_active());
        s.set_target(2.0, 100);
        assert!(!s.is_active());
    }

    #[test]
    fn retarget_mid_ramp_starts_from_current() {
        let mut s = LinearSmoother::new(0.0);
        s.set_target(1.0, 10);
        s.advance(5);
        assert_eq!(s.current(), 0.5);
        s.set_target(0.0, 5);
        assert_eq!(s.remaining(), 5);
        assert_eq!(s.advance(1), 0.4);
        s.reset(3.0);
        assert_eq!((s.current(), s.target(), s.is_active()), (3.0, 3.0, false));
    }

    #[test]
    fn advance_zero_keeps_value() {
        let mut s = LinearSmoother::new(0.0);
        s.set_target(1.0, 4);
        assert_eq!(s.advance(0), 0.0);
        assert!(s.is_active());
    }
}

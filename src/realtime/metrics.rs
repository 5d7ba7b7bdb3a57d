//! Lock-free metrics of the real-time path: a bounded log of durations and the xrun counters.
//!
//! The audio thread writes with plain atomic stores (no allocation, no lock, no syscall); any
//! other thread reads at any time. Readers may see an entry being overwritten by a newer one
//! while they copy the log, which only matters for statistics that are approximate anyway.

use std::sync::atomic::{AtomicU64, Ordering};

/// A preallocated FIFO of the last `capacity` durations in nanoseconds (torchfx's
/// `deque(maxlen=latency_log_size)`): the oldest entry is evicted when full.
///
/// One thread records ([`LatencyLog::record`]); any thread reads.
#[derive(Debug)]
pub struct LatencyLog {
    slots: Box<[AtomicU64]>,
    /// Entries recorded since creation (never wraps in practice: 2^64 callbacks).
    written: AtomicU64,
    /// Value of `written` at the last [`LatencyLog::clear`].
    start: AtomicU64,
}

impl LatencyLog {
    /// A log that keeps the last `capacity` entries (at least 1).
    pub fn new(capacity: usize) -> Self {
        let capacity = capacity.max(1);
        Self {
            slots: (0..capacity).map(|_| AtomicU64::new(0)).collect(),
            written: AtomicU64::new(0),
            start: AtomicU64::new(0),
        }
    }

    /// How many entries the log keeps.
    pub fn capacity(&self) -> usize {
        self.slots.len()
    }

    /// Appends one entry. Call from one thread at a time. Never allocates or blocks.
    #[inline]
    pub fn record(&self, nanos: u64) {
        let i = self.written.load(Ordering::Relaxed);
        self.slots[(i % self.slots.len() as u64) as usize].store(nanos, Ordering::Relaxed);
        self.written.store(i.wrapping_add(1), Ordering::Release);
    }

    /// Entries held now.
    pub fn len(&self) -> usize {
        let (from, to) = self.range();
        (to - from) as usize
    }

    /// True when no entry is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Forgets every entry.
    pub fn clear(&self) {
        self.start
            .store(self.written.load(Ordering::Acquire), Ordering::Release);
    }

    /// The index range of held entries.
    fn range(&self) -> (u64, u64) {
        let to = self.written.load(Ordering::Acquire);
        let from = self
            .start
            .load(Ordering::Acquire)
            .max(to.saturating_sub(self.slots.len() as u64))
            .min(to);
        (from, to)
    }

    /// The held entries, oldest first (allocates: not for the audio thread).
    pub fn to_vec(&self) -> Vec<u64> {
        let (from, to) = self.range();
        let n = self.slots.len() as u64;
        (from..to)
            .map(|i| self.slots[(i % n) as usize].load(Ordering::Relaxed))
            .collect()
    }

    /// Statistics of the held entries, in milliseconds.
    pub fn stats_ms(&self) -> LatencyStats {
        LatencyStats::from_nanos(&mut self.to_vec())
    }
}

/// Summary of a duration log in milliseconds (torchfx `latency_stats_ms`): all zero when the
/// log is empty (count included).
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct LatencyStats {
    /// Number of entries.
    pub count: f64,
    /// Shortest.
    pub min: f64,
    /// Nearest-rank median (the upper one for an even count).
    pub median: f64,
    /// Arithmetic mean.
    pub mean: f64,
    /// Nearest-rank 95th percentile.
    pub p95: f64,
    /// Nearest-rank 99th percentile.
    pub p99: f64,
    /// Longest.
    pub max: f64,
}

/// Index of percentile `p` (0..=1) in a sorted list of `n` entries: `clamp(floor(p·n), 0,
/// n−1)`, torchfx's nearest rank without interpolation.
pub fn percentile_index(n: usize, p: f64) -> usize {
    if n == 0 {
        return 0;
    }
    ((p * n as f64).floor().max(0.0) as usize).min(n - 1)
}

impl LatencyStats {
    /// The statistics of durations in nanoseconds (sorts `nanos` in place).
    ///
    /// ```
    /// use rtfx::realtime::LatencyStats;
    /// let s = LatencyStats::from_nanos(&mut [4_000_000, 1_000_000, 3_000_000, 2_000_000]);
    /// assert_eq!((s.count, s.min, s.median, s.mean, s.max), (4.0, 1.0, 3.0, 2.5, 4.0));
    /// assert_eq!(LatencyStats::from_nanos(&mut []), LatencyStats::default());
    /// ```
    pub fn from_nanos(nanos: &mut [u64]) -> Self {
        let n = nanos.len();
        if n == 0 {
            return Self::default();
        }
        nanos.sort_unstable();
        let ms = |ns: u64| ns as f64 / 1e6;
        let at = |p: f64| ms(nanos[percentile_index(n, p)]);
        let sum: u128 = nanos.iter().map(|&x| u128::from(x)).sum();
        Self {
            count: n as f64,
            min: ms(nanos[0]),
            median: at(0.5),
            mean: sum as f64 / n as f64 / 1e6,
            p95: at(0.95),
            p99: at(0.99),
            max: ms(nanos[n - 1]),
        }
    }

    /// The seven values with torchfx's keys, in order.
    pub fn entries(&self) -> [(&'static str, f64); 7] {
        [
            ("count", self.count),
            ("min", self.min),
            ("median", self.median),
            ("mean", self.mean),
            ("p95", self.p95),
            ("p99", self.p99),
            ("max", self.max),
        ]
    }
}

/// The processor's counters. Written by the audio thread with relaxed atomic adds.
#[derive(Debug, Default)]
pub struct Counters {
    /// Callbacks run.
    pub callbacks: AtomicU64,
    /// Callbacks whose input did not fit in the input ring.
    pub input_overflows: AtomicU64,
    /// Callbacks whose output ring held less than a buffer.
    pub output_underflows: AtomicU64,
    /// Callbacks whose backend status reported an xrun.
    pub backend_xruns: AtomicU64,
    /// DSP chunks processed.
    pub chunks: AtomicU64,
}

impl Counters {
    /// Adds one to a counter.
    #[inline]
    pub fn bump(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// Sets every counter to zero.
    pub fn reset(&self) {
        for c in [
            &self.callbacks,
            &self.input_overflows,
            &self.output_underflows,
            &self.backend_xruns,
            &self.chunks,
        ] {
            c.store(0, Ordering::Relaxed);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_is_a_bounded_fifo() {
        let log = LatencyLog::new(3);
        assert!(log.is_empty());
        for x in 1..=5 {
            log.record(x);
        }
        assert_eq!(log.to_vec(), vec![3, 4, 5]);
        assert_eq!(log.len(), 3);
        log.clear();
        assert!(log.to_vec().is_empty());
        log.record(9);
        assert_eq!(log.to_vec(), vec![9]);
        assert_eq!(LatencyLog::new(0).capacity(), 1);
    }

    #[test]
    fn stats_use_nearest_rank() {
        // 1..=100 ms: p95 = element at floor(0.95·100) = 95 → 96 ms; median index 50 → 51 ms.
        let mut v: Vec<u64> = (1..=100u64).rev().map(|ms| ms * 1_000_000).collect();
        let s = LatencyStats::from_nanos(&mut v);
        assert_eq!(s.count, 100.0);
        assert_eq!(s.min, 1.0);
        assert_eq!(s.median, 51.0);
        assert_eq!(s.p95, 96.0);
        assert_eq!(s.p99, 100.0);
        assert_eq!(s.max, 100.0);
        assert_eq!(s.mean, 50.5);
        let one = LatencyStats::from_nanos(&mut [2_500_000]);
        assert_eq!((one.median, one.p99, one.min), (2.5, 2.5, 2.5));
        assert_eq!(percentile_index(10, 0.5), 5);
        assert_eq!(percentile_index(10, 1.5), 9);
        assert_eq!(percentile_index(0, 0.5), 0);
        assert_eq!(s.entries()[2], ("median", 51.0));
    }

    #[test]
    fn counters_reset() {
        let c = Counters::default();
        Counters::bump(&c.callbacks);
        Counters::bump(&c.backend_xruns);
        assert_eq!(c.callbacks.load(Ordering::Relaxed), 1);
        c.reset();
        assert_eq!(c.backend_xruns.load(Ordering::Relaxed), 0);
    }
}

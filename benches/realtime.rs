//! Real-time path benchmark: `RealtimeProcessor` driven by the test backend, callback by
//! callback, at 64, 128, 256 and 512 frames, 48 kHz stereo duplex, with the guitar chain
//! (hibutterworth:80,order=2 → lobutterworth:8000,order=4 → gain:1.5) plus reverb.
//!
//! For each buffer size it runs `RTFX_BENCH_SECONDS` (default 20) seconds of stereo noise after
//! one second of warm-up (under `cargo test` 0.05 s, as a smoke test), one `process_pending` after each callback (what the worker does), and
//! prints per-callback and per-chunk times (median, p99, max) from the processor's own logs,
//! plus the whole cycle (callback + DSP, as seen by the caller) and the p99 DSP time as a share
//! of the buffer's deadline.
//!
//! Run: `cargo bench --bench realtime` (add `RTFX_BENCH_SECONDS=60` for longer runs).

use std::time::Instant;

use rtfx::dsp::spec::parse_chain;
use rtfx::realtime::{
    BackendStatus, LatencyStats, ProcessorOptions, RealtimeProcessor, StreamConfig, TestBackend,
};

const CHAIN: &[&str] = &[
    "hibutterworth:80,order=2",
    "lobutterworth:8000,order=4",
    "gain:1.5",
    "reverb:room_size=0.3",
];

fn noise(n: usize, seed: u64) -> Vec<f32> {
    rtfx::dsp::noise::noise(n, seed, 0.5)
}

fn us(ms: f64) -> f64 {
    ms * 1000.0
}

fn main() {
    // `cargo bench` passes --bench; `cargo test --all-targets` runs this main without it, as a
    // quick smoke test.
    let benching = std::env::args().any(|a| a == "--bench");
    let seconds: f64 = std::env::var("RTFX_BENCH_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .filter(|s: &f64| *s > 0.0)
        .unwrap_or(if benching { 20.0 } else { 0.05 });
    let rate = 48000u32;
    println!(
        "rtfx realtime bench: {} + reverb, 48 kHz stereo duplex, {seconds} s per size, test backend, one process_pending per callback",
        CHAIN[..3].join(" → ")
    );
    println!(
        "{:>6} {:>9} | {:>28} | {:>28} | {:>28} | {:>9}",
        "frames",
        "deadline",
        "callback µs (med/p99/max)",
        "DSP chunk µs (med/p99/max)",
        "cycle µs (med/p99/max)",
        "p99 DSP %"
    );
    for block in [64usize, 128, 256, 512] {
        let (backend, driver) = TestBackend::new();
        let config = StreamConfig::new(rate, block).with_channels(2, 2);
        let options = ProcessorOptions {
            start_worker: false,
            latency_log_size: 1 << 21,
            ..ProcessorOptions::default()
        };
        let chain = parse_chain(CHAIN).expect("the guitar chain parses");
        let mut p = RealtimeProcessor::new(chain, Box::new(backend), config, options)
            .expect("the processor builds");
        p.start().expect("the test backend starts");
        let left = noise(rate as usize, 1);
        let right = noise(rate as usize, 2);
        let mut out_l = vec![0.0f32; block];
        let mut out_r = vec![0.0f32; block];
        let callbacks = |secs: f64| (secs * f64::from(rate) / block as f64).ceil() as usize;
        let mut pos = 0;
        let mut step = |p: &mut RealtimeProcessor| {
            if pos + block > left.len() {
                pos = 0;
            }
            let ok = driver.run(
                &[&left[pos..pos + block], &right[pos..pos + block]],
                &mut [&mut out_l[..], &mut out_r[..]],
                BackendStatus::default(),
            );
            assert!(ok);
            p.process_pending().expect("manual mode");
            pos += block;
        };
        for _ in 0..callbacks(seconds.min(1.0)) {
            step(&mut p);
        }
        p.reset_metrics();
        let n = callbacks(seconds);
        let mut cycle_ns = Vec::with_capacity(n);
        for _ in 0..n {
            let t = Instant::now();
            step(&mut p);
            cycle_ns.push(t.elapsed().as_nanos() as u64);
        }
        p.stop().expect("stops");
        let cb = p.latency_stats_ms();
        let dsp = p.chunk_stats_ms();
        let cycle = LatencyStats::from_nanos(&mut cycle_ns);
        assert_eq!(p.xrun_count(), 0, "no xruns when the DSP keeps up");
        let deadline = p.deadline_ms();
        println!(
            "{:>6} {:>7.3}ms | {:>8.2} {:>8.2} {:>9.2} | {:>8.2} {:>8.2} {:>9.2} | {:>8.2} {:>8.2} {:>9.2} | {:>8.3}%",
            block,
            deadline,
            us(cb.median),
            us(cb.p99),
            us(cb.max),
            us(dsp.median),
            us(dsp.p99),
            us(dsp.max),
            us(cycle.median),
            us(cycle.p99),
            us(cycle.max),
            dsp.p99 / deadline * 100.0
        );
    }
}

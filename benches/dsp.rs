//! DSP core benchmarks: each filter family alone, the guitar chain's filters, and the full
//! guitar chain with reverb, on stereo 48 kHz audio in 512-frame blocks on one core.
//!
//! Run: `cargo bench --bench dsp`. Criterion reports throughput in frames per second; at the
//! end a table gives ns per stereo frame and the real-time factor (frames/s ÷ 48000), the
//! median of 15 timed passes over 10 s of audio.

use criterion::{Criterion, Throughput};
use rtfx::dsp::Chain;
use rtfx::dsp::spec::parse_chain;
use std::hint::black_box;
use std::time::Instant;

const RATE: f64 = 48000.0;
const BLOCK: usize = 512;

/// (label, chain specs)
const CASES: &[(&str, &[&str])] = &[
    ("butterworth lp order 4", &["lobutterworth:1000,order=4"]),
    (
        "chebyshev1 lp order 4",
        &["lochebyshev1:1000,order=4,ripple=1"],
    ),
    (
        "chebyshev2 lp order 4",
        &["lochebyshev2:1000,order=4,ripple=40"],
    ),
    ("elliptic lp order 4", &["loelliptic:1000,order=4"]),
    (
        "linkwitz-riley lp order 4",
        &["lolinkwitzriley:1000,order=4"],
    ),
    ("rbj lowpass biquad", &["lowpass:1000,q=0.707"]),
    ("rbj peaking eq", &["parametriceq:1000,1,6"]),
    ("fir 101 taps", &["fir:1000,num_taps=101"]),
    (
        "guitar chain filters (hp2 + lp4 + gain)",
        &[
            "hibutterworth:80,order=2",
            "lobutterworth:8000,order=4",
            "gain:1.5",
        ],
    ),
    (
        "guitar chain with reverb",
        &[
            "hibutterworth:80,order=2",
            "lobutterworth:8000,order=4",
            "gain:1.5",
            "reverb:room_size=0.3",
        ],
    ),
];

fn build(specs: &[&str]) -> Chain {
    let mut chain = parse_chain(specs).expect("benchmark chain must parse");
    chain
        .prepare(RATE, BLOCK, 2)
        .expect("benchmark chain must prepare");
    chain
}

fn signal(frames: usize) -> (Vec<f32>, Vec<f32>) {
    let mut rng = rtfx::dsp::noise::Noise::new(1);
    let mut next = || rng.sample() * 0.5;
    let left = (0..frames).map(|_| next()).collect();
    let right = (0..frames).map(|_| next()).collect();
    (left, right)
}

/// Processes the whole signal in BLOCK-frame blocks.
fn run(chain: &mut Chain, left: &mut [f32], right: &mut [f32]) {
    for (l, r) in left.chunks_mut(BLOCK).zip(right.chunks_mut(BLOCK)) {
        chain.process(&mut [l, r]);
    }
}

fn criterion_benches(c: &mut Criterion) {
    let frames = RATE as usize; // one second per iteration
    let (l0, r0) = signal(frames);
    let mut group = c.benchmark_group("stereo_48k");
    group.throughput(Throughput::Elements(frames as u64));
    for (label, specs) in CASES {
        let mut chain = build(specs);
        let (mut l, mut r) = (l0.clone(), r0.clone());
        group.bench_function(*label, |b| {
            b.iter(|| {
                run(&mut chain, &mut l, &mut r);
                black_box(&l);
            })
        });
    }
    group.finish();
}

/// The README table: median of 15 passes over 10 s of stereo audio.
fn summary() {
    let frames = 10 * RATE as usize;
    let (l0, r0) = signal(frames);
    println!(
        "\n{:<44} {:>14} {:>14}",
        "case (stereo 48 kHz, 512-frame blocks)", "ns/frame", "x real time"
    );
    for (label, specs) in CASES {
        let mut chain = build(specs);
        let (mut l, mut r) = (l0.clone(), r0.clone());
        run(&mut chain, &mut l, &mut r); // warm-up
        let mut times: Vec<f64> = (0..15)
            .map(|_| {
                let start = Instant::now();
                run(&mut chain, &mut l, &mut r);
                black_box(&l);
                start.elapsed().as_secs_f64()
            })
            .collect();
        times.sort_by(f64::total_cmp);
        let t = times[times.len() / 2];
        println!(
            "{:<44} {:>14.2} {:>14.0}",
            label,
            t * 1e9 / frames as f64,
            (frames as f64 / RATE) / t
        );
    }
}

fn main() {
    let mut criterion = Criterion::default().configure_from_args();
    // `cargo test --benches` runs each benchmark once in test mode; skip the long summary then.
    let test_mode = std::env::args().any(|a| a == "--test");
    criterion_benches(&mut criterion);
    criterion.final_summary();
    if !test_mode {
        summary();
    }
}

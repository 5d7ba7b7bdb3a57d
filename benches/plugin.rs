//! The plugin's inline processing cost: the full channel strip (every section on) on stereo
//! 48 kHz audio in 64- and 256-frame blocks, one core. Each block does what `Rtfx::process`
//! does: read every parameter, hand the settings to the strip, process.
//!
//! Run: `cargo bench --bench plugin`. Prints, per block size, the mean and 99th-percentile time
//! per block, and both as a share of the block's real-time deadline (block / 48000 s): the
//! mean share is the CPU load of one core.

use std::hint::black_box;
use std::time::Instant;

use rtfx::plugin::params::RtfxParams;
use rtfx::plugin::strip::Strip;

const RATE: f64 = 48_000.0;
/// Seconds of audio per block size (`cargo bench`); `cargo test --all-targets` runs this
/// binary without `--bench` as a quick smoke run of half a second.
const SECONDS: f64 = 20.0;
const SMOKE_SECONDS: f64 = 0.5;

fn noise(frames: usize, seed: u64) -> Vec<f32> {
    let mut s = seed.wrapping_mul(6364136223846793005).wrapping_add(1);
    (0..frames)
        .map(|_| {
            s = s
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((s >> 40) as f32 / (1u64 << 24) as f32 * 2.0 - 1.0) * 0.5
        })
        .collect()
}

/// Every section on, with typical settings.
fn params() -> RtfxParams {
    use nice_plug::params::Params;
    let params = RtfxParams::default();
    let on = [
        "hp_on", "lp_on", "eq_on", "comp_on", "dly_on", "rev_on", "lim_on",
    ];
    for (id, ptr, _) in params.param_map() {
        let normalized = if on.contains(&id.as_str()) {
            Some(1.0)
        } else {
            match id.as_str() {
                "hp_order" => Some(3.0 / 7.0),
                "lp_order" => Some(3.0 / 7.0),
                "pk_gain" | "ls_gain" => Some(0.6),
                _ => None,
            }
        };
        if let Some(n) = normalized {
            unsafe {
                ptr._internal_set_normalized_value(n);
            }
        }
    }
    params
}

fn main() {
    let seconds = if std::env::args().any(|a| a == "--bench") {
        SECONDS
    } else {
        SMOKE_SECONDS
    };
    let params = params();
    println!(
        "full strip, stereo, {} kHz, {seconds} s of noise per block size",
        RATE / 1000.0
    );
    println!(
        "| block | mean per block | p99 per block | mean % of deadline (CPU load) | p99 % of deadline |"
    );
    println!("|---|---|---|---|---|");
    for block in [64usize, 256] {
        let settings = params.settings(120.0);
        let mut strip = Strip::new(settings);
        strip.prepare(RATE, block, 2, &settings).expect("prepare");
        let frames = (seconds * RATE) as usize;
        let (mut l, mut r) = (noise(frames, 1), noise(frames, 2));
        let mut times = Vec::with_capacity(frames / block + 1);
        // Warm-up pass, then the timed pass.
        for pass in 0..2 {
            times.clear();
            let mut start = 0;
            while start + block <= frames {
                let t = Instant::now();
                strip.set_settings(&params.settings(120.0));
                strip.process(&mut [&mut l[start..start + block], &mut r[start..start + block]]);
                times.push(t.elapsed().as_nanos() as f64);
                start += block;
            }
            black_box(&l);
            let _ = pass;
        }
        times.sort_by(f64::total_cmp);
        let mean = times.iter().sum::<f64>() / times.len() as f64;
        let p99 = times[(times.len() as f64 * 0.99) as usize - 1];
        let deadline_ns = block as f64 / RATE * 1e9;
        println!(
            "| {block} | {:.1} µs | {:.1} µs | {:.2} % | {:.2} % |",
            mean / 1000.0,
            p99 / 1000.0,
            mean / deadline_ns * 100.0,
            p99 / deadline_ns * 100.0
        );
    }
}

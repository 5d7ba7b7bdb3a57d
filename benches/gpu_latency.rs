//! Per-chunk latency of the CUDA runner: eager launches vs graph replay, for 64…4096 frames ×
//! 1…64 channels, with a check of the GPU output against the CPU cascade.
//!
//! ```sh
//! cargo bench --features cuda --bench gpu_latency
//! ```
//!
//! Needs a CUDA device and NVRTC (`pip install nvidia-cuda-nvrtc-cu12`, then put its
//! `nvidia/cuda_nvrtc/lib` on `LD_LIBRARY_PATH`); without them it says so and exits.

use std::time::Instant;

use rtfx::dsp::filter::design::{BandType, Family, design_iir};
use rtfx::dsp::filter::sos::SosCascade;
use rtfx::gpu::{CudaGraphRunner, cuda_device_name};

const RUNS: usize = 300;

fn percentile(sorted: &[f64], p: f64) -> f64 {
    let rank = ((p / 100.0) * sorted.len() as f64).ceil().max(1.0) as usize;
    sorted[rank.min(sorted.len()) - 1]
}

fn main() {
    let device = match cuda_device_name() {
        Ok(name) => name,
        Err(e) => {
            println!("no CUDA device, nothing to measure: {e}");
            return;
        }
    };
    println!("device: {device}; guitar-chain cascade (3 sections); {RUNS} chunks per case");
    println!(
        "{:>7} {:>9} {:>13} {:>13} {:>13} {:>13} {:>9}",
        "frames",
        "channels",
        "eager med ms",
        "eager p99 ms",
        "graph med ms",
        "graph p99 ms",
        "matches"
    );
    let mut sections = Vec::new();
    sections.extend_from_slice(
        design_iir(Family::Butterworth, BandType::Highpass, 2, 80.0, 48_000.0).as_slice(),
    );
    sections.extend_from_slice(
        design_iir(Family::Butterworth, BandType::Lowpass, 4, 8000.0, 48_000.0).as_slice(),
    );
    for frames in [64usize, 256, 1024, 4096] {
        for channels in [1usize, 2, 8, 64] {
            let mut cpu = SosCascade::new(&sections, channels);
            let mut gpu = match CudaGraphRunner::new(&cpu, channels, frames, 3) {
                Ok(r) => r,
                Err(e) => {
                    println!("{frames:>7} {channels:>9} runner failed: {e}");
                    continue;
                }
            };
            let input: Vec<Vec<f32>> = (0..channels)
                .map(|c| {
                    (0..frames)
                        .map(|n| ((n * 31 + c * 7) % 97) as f32 / 97.0 - 0.5)
                        .collect()
                })
                .collect();
            let views: Vec<&[f32]> = input.iter().map(Vec::as_slice).collect();
            let mut out = vec![vec![0.0f32; frames]; channels];
            // Correctness first: one replay against the CPU cascade.
            {
                let mut out_views: Vec<&mut [f32]> = out.iter_mut().map(|c| &mut c[..]).collect();
                gpu.run(&views, &mut out_views).expect("graph replay");
            }
            let mut want = input.clone();
            let mut want_views: Vec<&mut [f32]> = want.iter_mut().map(|c| &mut c[..]).collect();
            cpu.process(&mut want_views);
            let matches = out == want;
            let mut time = |graph: bool| {
                let mut t = Vec::with_capacity(RUNS);
                for _ in 0..RUNS {
                    let mut out_views: Vec<&mut [f32]> =
                        out.iter_mut().map(|c| &mut c[..]).collect();
                    let start = Instant::now();
                    if graph {
                        gpu.run(&views, &mut out_views).expect("graph replay");
                    } else {
                        gpu.run_eager(&views, &mut out_views).expect("eager launch");
                    }
                    t.push(start.elapsed().as_secs_f64() * 1e3);
                }
                t.sort_by(f64::total_cmp);
                (percentile(&t, 50.0), percentile(&t, 99.0))
            };
            let (em, ep) = time(false);
            let (gm, gp) = time(true);
            println!(
                "{frames:>7} {channels:>9} {em:>13.4} {ep:>13.4} {gm:>13.4} {gp:>13.4} {matches:>9}"
            );
        }
    }
}

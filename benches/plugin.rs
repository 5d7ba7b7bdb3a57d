//! The plugin's processing cost with every section of the channel strip on, stereo 48 kHz,
//! 64- and 256-frame blocks:
//!
//! 1. The strip itself, one core: each block does what `Rtfx::process` does in inline mode
//!    (read every parameter, hand the settings to the strip, process).
//! 2. `Rtfx::process` on the host's thread in inline and offload mode, called at the pace of
//!    real time (offload hands the audio to its worker thread and returns), with the offload
//!    worker's underflow count.
//!
//! Run: `cargo bench --bench plugin`. Prints, per case, the mean and 99th-percentile time per
//! block, and both as a share of the block's real-time deadline (block / 48000 s): the mean
//! share is the CPU load of the host's audio thread.

use std::hint::black_box;
use std::time::Instant;

use nice_plug::prelude::*;
use plugin_common::noise;
use rtfx::plugin::Rtfx;
use rtfx::plugin::params::RtfxParams;
use rtfx::plugin::strip::Strip;

#[path = "../tests/plugin_common/mod.rs"]
mod plugin_common;

const RATE: f64 = 48_000.0;
/// Seconds of audio per block size (`cargo bench`); `cargo test --all-targets` runs this
/// binary without `--bench` as a quick smoke run of half a second.
const SECONDS: f64 = 20.0;
const SMOKE_SECONDS: f64 = 0.5;

/// The normalized value of each parameter that differs from its default: every section on,
/// with typical settings.
fn typical(id: &str) -> Option<f32> {
    const ON: [&str; 7] = [
        "hp_on", "lp_on", "eq_on", "comp_on", "dly_on", "rev_on", "lim_on",
    ];
    if ON.contains(&id) {
        return Some(1.0);
    }
    match id {
        "hp_order" | "lp_order" => Some(3.0 / 7.0),
        "pk_gain" | "ls_gain" => Some(0.6),
        _ => None,
    }
}

/// Every section on, with typical settings.
fn params() -> RtfxParams {
    let params = RtfxParams::default();
    for (id, ptr, _) in params.param_map() {
        if let Some(n) = typical(&id) {
            unsafe {
                ptr._internal_set_normalized_value(n);
            }
        }
    }
    params
}

/// The editor's side of the analyser while it is open: a thread that takes what the audio
/// thread handed over and analyses it 30 times a second, as the editor does, until `stop`.
fn open_editor_analyser(
    meters: std::sync::Arc<rtfx::plugin::Meters>,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
) -> std::thread::JoinHandle<()> {
    use rtfx::plugin::analyser::Spectrum;
    std::thread::spawn(move || {
        let (mut input, mut output) = (Spectrum::new(), Spectrum::new());
        while !stop.load(std::sync::atomic::Ordering::Relaxed) {
            meters.with_analyser(|feed| {
                input.take(&mut feed.input);
                output.take(&mut feed.output);
            });
            input.analyse(0.033);
            output.analyse(0.033);
            std::thread::sleep(std::time::Duration::from_millis(33));
        }
    })
}

/// `Rtfx::process` on the host thread in `mode`, paced at real time (or back to back when not
/// `paced`), with the editor's analyser open.
fn plugin_row(mode: &str, block: usize, seconds: f64, paced: bool) {
    let plugin_ids: Vec<String> = {
        let p = Rtfx::default();
        p.params()
            .param_map()
            .into_iter()
            .map(|(id, _, _)| id)
            .collect()
    };
    let mut plugin = Rtfx::default();
    for id in &plugin_ids {
        if let Some(n) = typical(id) {
            plugin_common::set_normalized(&plugin, id, n);
        }
    }
    plugin_common::set_text(&plugin, "mode", mode);
    let mut host = plugin_common::Host::new(RATE as f32, Some(120.0));
    assert!(plugin_common::activate(
        &mut plugin,
        &mut host,
        RATE as f32,
        block as u32,
        2
    ));
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let editor = open_editor_analyser(plugin.meters().clone(), stop.clone());
    let frames = (seconds * RATE) as usize;
    let mut chans = vec![noise(frames, 1, 0.5), noise(frames, 2, 0.5)];
    let mut times = Vec::with_capacity(frames / block + 1);
    let period = std::time::Duration::from_secs_f64(block as f64 / RATE);
    let begin = Instant::now();
    let mut start = 0;
    let mut i = 0u32;
    while start + block <= frames {
        // Real-time pace: the offload worker gets the time a real callback period gives it.
        let due = begin + period * i;
        if let Some(wait) = due.checked_duration_since(Instant::now()).filter(|_| paced) {
            std::thread::sleep(wait);
        }
        let mut buf = plugin_common::buffer(&mut chans, start, start + block);
        let mut aux = AuxiliaryBuffers {
            inputs: &mut [],
            outputs: &mut [],
        };
        let t = Instant::now();
        plugin.process(&mut buf, &mut aux, &mut host);
        times.push(t.elapsed().as_nanos() as f64);
        start += block;
        i += 1;
    }
    black_box(&chans);
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    editor.join().expect("the editor's analyser thread");
    times.sort_by(f64::total_cmp);
    let mean = times.iter().sum::<f64>() / times.len() as f64;
    let p99 = times[((times.len() as f64 * 0.99) as usize).max(1) - 1];
    let deadline_ns = block as f64 / RATE * 1e9;
    println!(
        "| {mode}{} | {block} | {:.1} µs | {:.1} µs | {:.2} % | {:.2} % | {} |",
        if paced { "" } else { ", back to back" },
        mean / 1000.0,
        p99 / 1000.0,
        mean / deadline_ns * 100.0,
        p99 / deadline_ns * 100.0,
        plugin.meters().underflows()
    );
    plugin.deactivate();
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
        let (mut l, mut r) = (noise(frames, 1, 0.5), noise(frames, 2, 0.5));
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
    println!();
    println!("the editor's taps alone (analyser rings and RMS sums, input and output)");
    println!("| block | mean per block | mean % of deadline |");
    println!("|---|---|---|");
    for block in [64usize, 256] {
        let (mut tap, mut feed) = rtfx::plugin::analyser::analyser_channel();
        let frames = (seconds * RATE) as usize;
        let (mut l, mut r) = (noise(frames, 1, 0.5), noise(frames, 2, 0.5));
        let mut total = std::time::Duration::ZERO;
        let mut blocks = 0u32;
        let mut start = 0;
        while start + block <= frames {
            let mut b = [&mut l[start..start + block], &mut r[start..start + block]];
            let t = Instant::now();
            black_box(rtfx::dsp::section::block_mean_square(&b));
            tap.push_input(&b);
            tap.push_output(&b);
            black_box(rtfx::dsp::section::block_mean_square(&b));
            total += t.elapsed();
            black_box(&mut b);
            for ring in [&mut feed.input, &mut feed.output] {
                if let Ok(chunk) = ring.read_chunk(ring.slots()) {
                    chunk.commit_all();
                }
            }
            start += block;
            blocks += 1;
        }
        let mean = total.as_nanos() as f64 / f64::from(blocks.max(1));
        println!(
            "| {block} | {:.2} µs | {:.3} % |",
            mean / 1000.0,
            mean / (block as f64 / RATE * 1e9) * 100.0
        );
    }
    println!();
    println!(
        "Rtfx::process on the host thread, paced at real time, with the editor's analyser open, \
         {seconds} s per case"
    );
    println!(
        "| mode | block | mean per block | p99 per block | mean % of deadline | p99 % of deadline | offload underflows |"
    );
    println!("|---|---|---|---|---|---|---|");
    for mode in ["Inline", "Offload"] {
        for block in [64usize, 256] {
            plugin_row(mode, block, seconds, true);
        }
    }
    // The same calls with no pause between them (hot caches): what `process()` itself costs
    // over the strip, without the cost of waking up after a sleep.
    for block in [64usize, 256] {
        plugin_row("Inline", block, seconds, false);
    }
}

//! The plugin's processing modes: offload output equals inline output delayed by the offload
//! latency; the latency reported per mode; underflows counted when the worker is starved;
//! runtime mode switches stay clean; GPU mode falls back to the CPU worker and says why; the
//! worker thread does not outlive its activation.
//!
//! The tests run one at a time (`SERIAL`): they start worker threads and one counts them.

mod plugin_common;

use std::sync::Mutex;
use std::time::Duration;

use nice_plug::prelude::*;
use plugin_common::*;
use rtfx::plugin::Rtfx;
use rtfx::plugin::editor::mode_line;
use rtfx::plugin::offload::{OFFLOAD_CHUNK, gpu_status};
use rtfx::plugin::params::ProcessingMode;

static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

const RATE: f32 = 48_000.0;

/// Parameter settings compared between the modes.
const SETTINGS: &[&[(&str, &str)]] = &[
    &[],
    &[
        ("in_gain", "6 dB"),
        ("hp_on", "On"),
        ("hp_freq", "200 Hz"),
        ("hp_order", "4"),
        ("eq_on", "On"),
        ("pk_gain", "9 dB"),
        ("comp_on", "On"),
        ("comp_thresh", "-30 dB"),
    ],
    &[
        ("lp_on", "On"),
        ("lp_freq", "3 kHz"),
        ("dly_on", "On"),
        ("dly_time", "20 ms"),
        ("dly_pingpong", "On"),
        ("rev_on", "On"),
        ("rev_size", "80 %"),
        ("lim_on", "On"),
        ("lim_ceiling", "-6 dB"),
        ("lim_lookahead", "2 ms"),
    ],
];

fn plugin_with(settings: &[(&str, &str)], mode: &str) -> Rtfx {
    let plugin = Rtfx::default();
    for (id, value) in settings {
        set_text(&plugin, id, value);
    }
    set_text(&plugin, "mode", mode);
    plugin
}

/// Renders `input` (stereo) with `block`-frame host blocks; returns the output and the
/// latency the plugin reported.
fn render(
    settings: &[(&str, &str)],
    mode: &str,
    process_mode: ProcessMode,
    input: &[Vec<f32>],
    block: usize,
) -> (Vec<Vec<f32>>, u32) {
    let mut plugin = plugin_with(settings, mode);
    let mut host = Host::new(RATE, Some(120.0));
    assert!(activate_in(
        &mut plugin,
        &mut host,
        RATE,
        block as u32,
        2,
        process_mode
    ));
    let mut chans = input.to_vec();
    process_all(&mut plugin, &mut host, &mut chans, block);
    assert_eq!(plugin.meters().underflows(), 0, "{mode} at block {block}");
    (chans, host.latency.get().unwrap_or(0))
}

#[test]
fn offload_equals_inline_delayed_by_the_reported_latency() {
    let _serial = serial();
    let frames = 6000;
    for (k, settings) in SETTINGS.iter().enumerate() {
        for block in [1usize, 64, 511, 4096] {
            let offload_latency = block + OFFLOAD_CHUNK;
            let source = [noise(frames, 7, 0.5), noise(frames, 8, 0.5)];
            let (inline, inline_latency) =
                render(settings, "Inline", ProcessMode::Offline, &source, block);
            // The offload run gets the same input followed by enough silence to flush it.
            let padded: Vec<Vec<f32>> = source
                .iter()
                .map(|c| {
                    let mut c = c.clone();
                    c.resize(frames + offload_latency, 0.0);
                    c
                })
                .collect();
            for mode in ["Offload", "GPU"] {
                let (out, latency) = render(settings, mode, ProcessMode::Offline, &padded, block);
                assert_eq!(
                    latency as usize,
                    inline_latency as usize + offload_latency,
                    "settings {k}, {mode}, block {block}"
                );
                assert!(out.iter().flatten().all(|&x| clean(x)));
                for (c, (o, i)) in out.iter().zip(&inline).enumerate() {
                    assert!(o[..offload_latency].iter().all(|&x| x == 0.0));
                    let worst = o[offload_latency..]
                        .iter()
                        .zip(i)
                        .map(|(a, b)| (a - b).abs())
                        .fold(0.0f32, f32::max);
                    assert!(
                        worst <= 1e-6,
                        "settings {k}, {mode}, block {block}, channel {c}: differs by {worst}"
                    );
                }
                // Something came through (not two silent outputs agreeing).
                assert!(out[0].iter().any(|&x| x.abs() > 1e-3));
            }
        }
    }
}

#[test]
fn latency_is_reported_per_mode_and_re_reported_on_a_switch() {
    let _serial = serial();
    for (mode, added) in [("Inline", 0), ("Offload", 512 + 64), ("GPU", 512 + 64)] {
        let mut plugin = plugin_with(&[("lim_on", "On"), ("lim_lookahead", "5 ms")], mode);
        let mut host = Host::new(RATE, None);
        assert!(activate(&mut plugin, &mut host, RATE, 512, 2));
        assert_eq!(host.latency.get(), Some(240 + added), "{mode}");
        assert_eq!(plugin.meters().latency_samples(), 240 + added);
    }
    // At runtime: the next block reports the new latency through the host.
    let mut plugin = Rtfx::default();
    let mut host = Host::new(RATE, None);
    assert!(activate(&mut plugin, &mut host, RATE, 256, 1));
    // Inline, limiter off: the limiter's 5 ms lookahead is still the latency.
    assert_eq!(host.latency.get(), Some(240), "inline: the lookahead");
    let mut chans = vec![noise(256, 1, 0.5)];
    set_text(&plugin, "mode", "Offload");
    process_all(&mut plugin, &mut host, &mut chans, 256);
    assert_eq!(host.latency.get(), Some(240 + 256 + 64));
    assert_eq!(plugin.meters().active_mode(), ProcessingMode::Offload);
    set_text(&plugin, "mode", "Inline");
    process_all(&mut plugin, &mut host, &mut chans, 256);
    assert_eq!(host.latency.get(), Some(240));
    assert_eq!(plugin.meters().active_mode(), ProcessingMode::Inline);
}

#[test]
fn a_starved_worker_underflows_into_counted_silence_and_recovers() {
    let _serial = serial();
    let block = 64;
    let mut plugin = plugin_with(&[("in_gain", "6 dB")], "Offload");
    let mut host = Host::new(RATE, None);
    assert!(activate(&mut plugin, &mut host, RATE, block as u32, 2));
    plugin.offload().expect("worker").set_stalled(true);
    let mut chans = vec![noise(block * 40, 1, 0.5), noise(block * 40, 2, 0.5)];
    process_all(&mut plugin, &mut host, &mut chans, block);
    let starved = plugin.meters().underflows();
    assert!(starved > 0, "no underflow counted");
    // (The stall takes effect within a chunk: look at the later blocks.)
    assert!(
        chans
            .iter()
            .all(|c| c[c.len() / 2..].iter().all(|&x| x == 0.0)),
        "starved output not silent"
    );

    plugin.offload().expect("worker").set_stalled(false);
    // In real time, with time between the blocks for the worker.
    let mut good_blocks = 0;
    for round in 0..2000 {
        let mut chans = vec![noise(block, round, 0.5), noise(block, round + 1, 0.5)];
        let before = plugin.meters().underflows();
        process_all(&mut plugin, &mut host, &mut chans, block);
        let underflowed = plugin.meters().underflows() != before;
        if !underflowed && chans[0].iter().any(|&x| x != 0.0) {
            good_blocks += 1;
            if good_blocks == 20 {
                break;
            }
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    assert_eq!(good_blocks, 20, "the worker never caught up");
    assert!(plugin.meters().underflows() >= starved);
    let line = mode_line(
        ProcessingMode::Offload,
        plugin.meters().active_mode(),
        plugin.meters().underflows(),
        false,
        None,
    );
    assert!(line.contains(&format!("{} underflows", plugin.meters().underflows())));
}

#[test]
fn switching_modes_while_processing_stays_clean() {
    let _serial = serial();
    let mut plugin = plugin_with(SETTINGS[2], "Inline");
    let mut host = Host::new(RATE, Some(100.0));
    assert!(activate(&mut plugin, &mut host, RATE, 511, 2));
    let modes = ["Offload", "GPU", "Inline", "GPU", "Offload", "Inline"];
    for (round, mode) in modes.iter().cycle().take(30).enumerate() {
        set_text(&plugin, "mode", mode);
        let mut chans = vec![
            noise(511 * 3, round as u64, 0.9),
            noise(511 * 3, round as u64 + 9, 0.9),
        ];
        process_all(&mut plugin, &mut host, &mut chans, 100 + round * 13);
        assert!(chans.iter().flatten().all(|&x| clean(x)), "{mode}");
        if round % 4 == 0 {
            plugin.reset();
        }
    }
}

#[test]
fn gpu_mode_falls_back_to_the_cpu_worker_and_says_why() {
    let _serial = serial();
    let mut plugin = plugin_with(&[], "GPU");
    let mut host = Host::new(RATE, None);
    assert!(activate(&mut plugin, &mut host, RATE, 128, 2));
    assert_eq!(plugin.meters().active_mode(), ProcessingMode::Gpu);
    assert!(plugin.offload().is_some());
    let line = mode_line(ProcessingMode::Gpu, ProcessingMode::Gpu, 0, false, None);
    match gpu_status() {
        Err(reason) => {
            assert!(!reason.to_string().is_empty());
            assert!(
                line.contains(&format!("GPU unavailable: {reason} — CPU worker")),
                "{line}"
            );
        }
        Ok(device) => assert!(line.contains(device.as_str()), "{line}"),
    }
    #[cfg(not(feature = "cuda"))]
    assert!(
        gpu_status().is_err(),
        "built without cuda yet a GPU was found"
    );
}

/// Names of this process's threads (Linux).
#[cfg(target_os = "linux")]
fn worker_threads() -> usize {
    std::fs::read_dir("/proc/self/task")
        .expect("/proc")
        .filter_map(|t| std::fs::read_to_string(t.ok()?.path().join("comm")).ok())
        .filter(|name| name.trim() == "rtfx-offload")
        .count()
}

/// Waits (up to 2 s: a new thread names itself once it runs) for `n` worker threads.
#[cfg(target_os = "linux")]
fn workers_become(n: usize) -> usize {
    let deadline = std::time::Instant::now() + Duration::from_secs(2);
    loop {
        let now = worker_threads();
        if now == n || std::time::Instant::now() > deadline {
            return now;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[cfg(target_os = "linux")]
#[test]
fn the_worker_does_not_outlive_its_activation() {
    let _serial = serial();
    assert_eq!(workers_become(0), 0);
    let mut plugin = plugin_with(&[], "Offload");
    let mut host = Host::new(RATE, None);
    for _ in 0..10 {
        assert!(activate(&mut plugin, &mut host, RATE, 64, 2));
        let mut chans = vec![noise(640, 1, 0.5), noise(640, 2, 0.5)];
        process_all(&mut plugin, &mut host, &mut chans, 64);
        assert_eq!(workers_become(1), 1);
    }
    plugin.deactivate();
    assert_eq!(workers_become(0), 0);
    assert!(activate(&mut plugin, &mut host, RATE, 64, 2));
    assert_eq!(workers_become(1), 1);
    drop(plugin);
    assert_eq!(workers_become(0), 0);
}

#[test]
fn the_hosts_reset_at_start_costs_no_underflow() {
    let _serial = serial();
    let mut plugin = plugin_with(&[], "Offload");
    let mut host = Host::new(RATE, None);
    // `activate` resets too, as nice-plug's start_processing does.
    assert!(activate(&mut plugin, &mut host, RATE, 64, 2));
    let mut chans = vec![noise(64, 1, 0.5), noise(64, 2, 0.5)];
    process_all(&mut plugin, &mut host, &mut chans, 64);
    assert_eq!(plugin.meters().underflows(), 0);
}

#[test]
fn a_reset_mid_stream_restarts_like_a_fresh_activation() {
    let _serial = serial();
    let settings = SETTINGS[2];
    let block = 64;
    let latency = block + OFFLOAD_CHUNK;
    let source = [noise(3000, 3, 0.5), noise(3000, 4, 0.5)];
    let padded: Vec<Vec<f32>> = source
        .iter()
        .map(|c| {
            let mut c = c.clone();
            c.resize(3000 + latency, 0.0);
            c
        })
        .collect();
    let (fresh, _) = render(settings, "Offload", ProcessMode::Offline, &padded, block);

    let mut plugin = plugin_with(settings, "Offload");
    let mut host = Host::new(RATE, Some(120.0));
    assert!(activate_in(
        &mut plugin,
        &mut host,
        RATE,
        block as u32,
        2,
        ProcessMode::Offline
    ));
    let mut before = vec![noise(1000, 5, 0.9), noise(1000, 6, 0.9)];
    process_all(&mut plugin, &mut host, &mut before, block);
    plugin.reset();
    let mut after = padded.clone();
    process_all(&mut plugin, &mut host, &mut after, block);
    assert_eq!(after, fresh);
    assert!(after[0].iter().any(|&x| x.abs() > 1e-3));
}

#[test]
fn the_tail_includes_the_offload_latency() {
    let _serial = serial();
    let mut plugin = plugin_with(&[("dly_on", "On")], "Offload");
    let mut host = Host::new(RATE, None);
    assert!(activate_in(
        &mut plugin,
        &mut host,
        RATE,
        256,
        2,
        ProcessMode::Offline
    ));
    let mut chans = vec![noise(2048, 1, 0.5), noise(2048, 2, 0.5)];
    let status = process_all(&mut plugin, &mut host, &mut chans, 256);
    // Delay 250 ms, feedback 35 %: 12000 × ceil(ln 1e-6 / ln 0.35) = 12000 × 14 (as inline),
    // plus the strip's latency (the limiter's 5 ms lookahead) and the offload latency.
    assert_eq!(status, ProcessStatus::Tail(12_000 * 14 + 240 + 256 + 64));
}

/// The offload worker asks for real-time scheduling and reports whether it got it: the same
/// answer a probe thread gets from this system.
#[test]
fn the_worker_asks_for_real_time_scheduling_and_says_if_it_got_it() {
    let _serial = serial();
    let expected = std::thread::spawn(|| rtfx::realtime::worker::promote_current_thread(60))
        .join()
        .expect("probe thread");
    let mut plugin = plugin_with(&[], "Offload");
    let mut host = Host::new(RATE, None);
    assert!(activate(&mut plugin, &mut host, RATE, 64, 2));
    let mut chans = vec![noise(64 * 20, 1, 0.5), noise(64 * 20, 2, 0.5)];
    process_all(&mut plugin, &mut host, &mut chans, 64);
    // The worker sets the flag as it starts; give it a moment on a loaded machine.
    let start = std::time::Instant::now();
    while plugin.meters().worker_realtime() != expected && start.elapsed() < Duration::from_secs(2)
    {
        std::thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(plugin.meters().worker_realtime(), expected);
    eprintln!("offload worker real-time: {expected}");
}

/// Builds of GPU mode's engine by [`counting_engine`].
static ENGINE_BUILDS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// The kernel's CPU emulation as GPU mode's engine, counting the builds.
fn counting_engine(
    cascade: &rtfx::dsp::filter::sos::SosCascade,
    channels: usize,
    frames: usize,
) -> rtfx::Result<Box<dyn rtfx::dsp::filter::engine::CascadeEngine>> {
    ENGINE_BUILDS.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    rtfx::dsp::filter::engine::emulated_engine(cascade, channels, frames)
}

#[test]
fn gpu_engine_is_built_when_gpu_mode_is_first_used_and_takes_over_mid_stream() {
    use rtfx::plugin::Meters;
    use rtfx::plugin::offload::Offload;
    use rtfx::plugin::params::RtfxParams;
    use std::sync::Arc;
    use std::sync::atomic::Ordering::SeqCst;

    let _serial = serial();
    let start = |factory: Option<rtfx::dsp::filter::engine::EngineFactory>| {
        let params = Arc::new(RtfxParams::default());
        for (id, text) in [
            ("mode", "Offload"),
            ("hp_on", "On"),
            ("hp_freq", "150 Hz"),
            ("eq_on", "On"),
            ("pk_gain", "6 dB"),
        ] {
            set_params_text(&*params, id, text);
        }
        let meters = Arc::new(Meters::default());
        let offload = Offload::start(
            params.clone(),
            meters.clone(),
            f64::from(RATE),
            256,
            2,
            ProcessMode::Offline,
            factory,
        )
        .expect("offload starts");
        (params, meters, offload)
    };

    // An activation that never uses GPU mode builds nothing, and stops its builder.
    drop(start(Some(counting_engine)));
    assert_eq!(ENGINE_BUILDS.load(SeqCst), 0);

    // Offload mode, then GPU mode mid-stream; beside it the same without an engine.
    let (gpu_params, gpu_meters, mut gpu) = start(Some(counting_engine));
    let (cpu_params, _, mut cpu) = start(None);
    let left = noise(48_000, 7, 0.5);
    let right = noise(48_000, 8, 0.5);
    let mut on_engine = 0;
    for (i, start_frame) in (0..left.len()).step_by(256).enumerate() {
        if i == 40 {
            for params in [&gpu_params, &cpu_params] {
                set_params_text(&**params, "mode", "GPU");
            }
        }
        let end = (start_frame + 256).min(left.len());
        let mut a = [
            left[start_frame..end].to_vec(),
            right[start_frame..end].to_vec(),
        ];
        let mut b = a.clone();
        {
            let [l, r] = &mut a;
            assert!(!gpu.process(&mut [l.as_mut_slice(), r.as_mut_slice()]));
        }
        {
            let [l, r] = &mut b;
            assert!(!cpu.process(&mut [l.as_mut_slice(), r.as_mut_slice()]));
        }
        for (x, y) in a.iter().flatten().zip(b.iter().flatten()) {
            assert!((x - y).abs() < 1e-6, "block {i}: {x} vs {y}");
        }
        if i < 40 {
            assert_eq!(ENGINE_BUILDS.load(SeqCst), 0, "built before GPU mode");
        }
        on_engine += usize::from(gpu_meters.gpu_filters());
    }
    assert_eq!(ENGINE_BUILDS.load(SeqCst), 1, "one build, on first use");
    assert!(
        on_engine > 100,
        "the filters ran on the engine in only {on_engine} blocks"
    );
}

/// A host whose largest block is too long to offload (over 2^20 frames): the worker does not
/// start, the plugin runs inline and stays clean, and the editor's mode line says why (it used
/// to say only "offload worker not running", the reason dropped).
#[test]
fn offload_that_cannot_start_runs_inline_and_says_why() {
    let _serial = serial();
    let mut plugin = plugin_with(&[], "Offload");
    let mut host = Host::new(RATE, None);
    let huge = (rtfx::plugin::offload::MAX_OFFLOAD_BLOCK + 1) as u32;
    assert!(activate(&mut plugin, &mut host, RATE, huge, 2));
    assert!(plugin.offload().is_none());
    assert_eq!(plugin.meters().active_mode(), ProcessingMode::Inline);
    let reason = plugin.meters().offload_error().expect("a reason");
    assert!(
        reason.contains("too long to offload") && reason.contains("1048577"),
        "{reason}"
    );
    let line = mode_line(
        ProcessingMode::Offload,
        plugin.meters().active_mode(),
        0,
        false,
        plugin.meters().offload_error().as_deref(),
    );
    assert!(line.contains("offload unavailable: "), "{line}");
    let mut chans = vec![noise(1024, 1, 0.5), noise(1024, 2, 0.5)];
    process_all(&mut plugin, &mut host, &mut chans, 256);
    assert!(chans.iter().flatten().all(|&x| clean(x)));
    // A normal activation clears the reason.
    assert!(activate(&mut plugin, &mut host, RATE, 256, 2));
    assert_eq!(plugin.meters().offload_error(), None);
    assert_eq!(plugin.meters().active_mode(), ProcessingMode::Offload);
}

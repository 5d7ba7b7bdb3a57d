//! Proof that the plugin's audio path never allocates: `Plugin::process` (and `reset`) run
//! inside `assert_no_alloc` for every section, with parameters changing between blocks (ramps,
//! switches, order changes, latency changes), at block sizes 0 to 4096, stereo and mono.
//! assert_no_alloc's allocator is this test binary's global allocator; a violation aborts the
//! test binary, which fails the run. `the_checker_is_armed` proves the check would fire.

mod plugin_common;

use assert_no_alloc::{AllocDisabler, assert_no_alloc};
use nice_plug::prelude::*;
use plugin_common::*;
use rtfx::plugin::Rtfx;

#[global_allocator]
static ALLOCATOR: AllocDisabler = AllocDisabler;

const SECTIONS: &[&str] = &[
    "", "hp_on", "lp_on", "eq_on", "comp_on", "dly_on", "rev_on", "lim_on", "bypass",
];

/// Processes `chans` in blocks, each `process` call inside `assert_no_alloc`.
fn process_checked(plugin: &mut Rtfx, host: &mut Host, chans: &mut [Vec<f32>], block: usize) {
    let frames = chans[0].len();
    let mut start = 0;
    loop {
        let end = (start + block).min(frames);
        // Building the buffer's slice list may allocate (a Vec in nice-plug); the wrappers do
        // it once at activation, so it stays outside the check.
        let mut buf = buffer(chans, start, end);
        let mut aux = AuxiliaryBuffers {
            inputs: &mut [],
            outputs: &mut [],
        };
        assert_no_alloc(|| {
            plugin.process(&mut buf, &mut aux, host);
        });
        if end >= frames {
            break;
        }
        start = end;
    }
}

#[test]
fn every_section_processes_without_allocating() {
    for channels in [2u32, 1] {
        for section in SECTIONS {
            let mut plugin = Rtfx::default();
            if !section.is_empty() {
                set_text(&plugin, section, "On");
            }
            let mut host = Host::new(48_000.0, Some(120.0));
            assert!(activate(&mut plugin, &mut host, 48_000.0, 4096, channels));
            for block in [0usize, 1, 7, 64, 511, 4096] {
                let mut chans: Vec<Vec<f32>> = (0..channels)
                    .map(|c| noise(block.max(1) * 3, u64::from(c), 0.8))
                    .collect();
                process_checked(&mut plugin, &mut host, &mut chans, block.max(1));
                if block == 0 {
                    let mut empty: Vec<Vec<f32>> = (0..channels).map(|_| Vec::new()).collect();
                    let mut buf = buffer(&mut empty, 0, 0);
                    let mut aux = AuxiliaryBuffers {
                        inputs: &mut [],
                        outputs: &mut [],
                    };
                    assert_no_alloc(|| {
                        plugin.process(&mut buf, &mut aux, &mut host);
                    });
                }
                assert_no_alloc(|| plugin.reset());
                assert!(chans.iter().flatten().all(|x| x.is_finite()), "{section}");
            }
        }
    }
}

/// The editor's analyser taps stay allocation-free while the editor takes what they hand over
/// (between blocks, as the GUI thread would), and hand over every frame of input and output.
#[test]
fn the_analyser_taps_run_without_allocating() {
    let mut plugin = Rtfx::default();
    set_text(&plugin, "eq_on", "On");
    let mut host = Host::new(48_000.0, Some(120.0));
    assert!(activate(&mut plugin, &mut host, 48_000.0, 4096, 2));
    let mut handed_over = [0usize; 2];
    let mut processed = 0;
    for block in [1usize, 64, 511, 4096] {
        for round in 0..20 {
            let mut chans: Vec<Vec<f32>> = (0..2)
                .map(|c| noise(block, (round * 2 + c) as u64, 0.5))
                .collect();
            process_checked(&mut plugin, &mut host, &mut chans, block);
            processed += block;
            plugin.meters().with_analyser(|feed| {
                for (count, ring) in handed_over
                    .iter_mut()
                    .zip([&mut feed.input, &mut feed.output])
                {
                    let waiting = ring.slots();
                    *count += waiting;
                    if let Ok(chunk) = ring.read_chunk(waiting) {
                        chunk.commit_all();
                    }
                }
            });
        }
    }
    assert_eq!(handed_over, [processed; 2]);
}

#[test]
fn parameter_changes_while_processing_do_not_allocate() {
    let mut plugin = Rtfx::default();
    for id in SECTIONS.iter().filter(|s| !s.is_empty() && **s != "bypass") {
        set_text(&plugin, id, "On");
    }
    let mut host = Host::new(44_100.0, Some(98.0));
    assert!(activate(&mut plugin, &mut host, 44_100.0, 512, 2));
    let changes: &[(&str, &[&str])] = &[
        ("hp_freq", &["30 Hz", "2 kHz", "100 Hz"]),
        ("hp_order", &["1", "8", "3"]),
        ("lp_freq", &["18 kHz", "400 Hz"]),
        ("lp_order", &["8", "2"]),
        ("pk_gain", &["12 dB", "-12 dB"]),
        ("hs_q", &["0.3", "4"]),
        ("comp_thresh", &["-40 dB", "0 dB"]),
        ("comp_ratio", &["20", "1.5"]),
        ("dly_time", &["10 ms", "2000 ms"]),
        ("dly_sync", &["Tempo", "Time"]),
        ("dly_note", &["1/16t", "1/2d"]),
        ("dly_pingpong", &["On", "Off"]),
        ("rev_size", &["100 %", "0 %"]),
        ("lim_ceiling", &["-12 dB", "0 dB"]),
        ("lim_tp", &["On"]),
        ("lim_lookahead", &["20 ms", "0 ms", "3 ms"]),
        ("lim_on", &["Off", "On"]),
        ("lim_tp", &["Off", "On"]),
        ("lim_ceiling", &["-6 dB"]),
        ("eq_on", &["Off", "On"]),
        ("bypass", &["On", "Off"]),
        ("in_gain", &["24 dB", "-24 dB"]),
    ];
    let mut chans = vec![noise(512 * 40, 1, 0.7), noise(512 * 40, 2, 0.7)];
    let mut round = 0;
    for (id, values) in changes {
        for value in *values {
            set_text(&plugin, id, value);
            round += 1;
            let start = (round * 512) % (chans[0].len() - 512);
            let mut buf = buffer(&mut chans, start, start + 333);
            let mut aux = AuxiliaryBuffers {
                inputs: &mut [],
                outputs: &mut [],
            };
            assert_no_alloc(|| {
                plugin.process(&mut buf, &mut aux, &mut host);
            });
        }
    }
    assert!(chans.iter().flatten().all(|x| x.is_finite()));
}

/// Offload and GPU mode (the worker on the CPU), real-time and offline (which waits for the
/// worker), with mode switches and resets between blocks: the audio thread's side never
/// allocates. (assert_no_alloc watches the calling thread only; the worker runs the same
/// allocation-free strip code.)
#[test]
fn offload_modes_process_without_allocating() {
    for process_mode in [ProcessMode::Realtime, ProcessMode::Offline] {
        for mode in ["Offload", "GPU"] {
            let mut plugin = Rtfx::default();
            for id in SECTIONS.iter().filter(|s| !s.is_empty() && **s != "bypass") {
                set_text(&plugin, id, "On");
            }
            set_text(&plugin, "mode", mode);
            let mut host = Host::new(48_000.0, Some(120.0));
            assert!(activate_in(
                &mut plugin,
                &mut host,
                48_000.0,
                4096,
                2,
                process_mode
            ));
            for block in [1usize, 64, 511, 4096] {
                let mut chans = vec![noise(block * 3, 1, 0.8), noise(block * 3, 2, 0.8)];
                process_checked(&mut plugin, &mut host, &mut chans, block);
                assert!(chans.iter().flatten().all(|x| x.is_finite()), "{mode}");
                assert_no_alloc(|| plugin.reset());
            }
            // Switching modes while processing.
            for next in ["Inline", mode, "Inline", mode] {
                set_text(&plugin, "mode", next);
                let mut chans = vec![noise(1024, 3, 0.8), noise(1024, 4, 0.8)];
                process_checked(&mut plugin, &mut host, &mut chans, 256);
                assert!(chans.iter().flatten().all(|x| x.is_finite()), "{next}");
            }
        }
    }
}

/// Runs in a child process (this test binary, filtered to this test): allocating inside the
/// guard must abort it.
#[test]
fn the_checker_is_armed() {
    if std::env::var_os("RTFX_PLUGIN_ALLOC_CHILD").is_some() {
        assert_no_alloc(|| {
            let v = vec![0u8; 64];
            std::hint::black_box(v);
        });
        return;
    }
    let exe = std::env::current_exe().expect("test binary");
    let status = std::process::Command::new(exe)
        .args(["--exact", "the_checker_is_armed", "--nocapture"])
        .env("RTFX_PLUGIN_ALLOC_CHILD", "1")
        .output()
        .expect("child runs");
    assert!(
        !status.status.success(),
        "allocation inside assert_no_alloc was not caught"
    );
}

/// GPU mode's filter path in the worker's strip (here on the kernel's CPU emulation): moving
/// the state to the engine and back, uploading coefficients and running it never allocate.
#[test]
fn the_strip_with_a_filter_engine_processes_without_allocating() {
    use rtfx::dsp::filter::engine::emulated_engine;
    use rtfx::plugin::strip::{Strip, StripSettings};
    let mut settings = StripSettings::default();
    settings.high_pass.enabled = true;
    settings.low_pass.enabled = true;
    settings.eq.enabled = true;
    let mut strip = Strip::new(settings);
    strip.prepare(48_000.0, 512, 2, &settings).expect("prepare");
    strip.attach_filter_engine(emulated_engine).expect("engine");
    strip.set_filter_engine_active(true);
    let mut l = noise(4096, 1, 0.5);
    let mut r = noise(4096, 2, 0.5);
    let mut changed = settings;
    changed.high_pass.cutoff_hz = 300.0;
    changed.low_pass.order = 6;
    changed.eq.enabled = false;
    assert_no_alloc(|| {
        for (i, (lc, rc)) in l.chunks_mut(64).zip(r.chunks_mut(64)).enumerate() {
            match i {
                10 => strip.set_settings(&changed),
                40 => strip.set_filter_engine_active(false),
                50 => strip.set_filter_engine_active(true),
                _ => {}
            }
            strip.process(&mut [lc, rc]);
        }
        strip.reset();
    });
    assert!(strip.take_engine_steps() > 0);
    assert!(l.iter().chain(&r).all(|v| v.is_finite()));
}

//! The plugin driven through nice-plug's `Plugin` interface with a minimal host: layouts,
//! latency reporting and re-reporting, tail, tempo sync from the transport, bypass, and clean
//! output under random parameter values at every sample rate and block size.

mod plugin_common;

use nice_plug::prelude::*;
use plugin_common::*;
use rtfx::plugin::Rtfx;

#[test]
fn layouts_are_stereo_and_mono() {
    let layouts: Vec<(u32, u32)> = Rtfx::AUDIO_IO_LAYOUTS
        .iter()
        .map(|l| {
            (
                l.main_input_channels.map_or(0, |c| c.get()),
                l.main_output_channels.map_or(0, |c| c.get()),
            )
        })
        .collect();
    assert_eq!(layouts, [(2, 2), (1, 1)]);
    assert_eq!(<Rtfx as ClapPlugin>::CLAP_ID, "com.rtfx.rtfx");
    assert_eq!(Rtfx::NAME, "rtfx");
}

/// The default plugin passes audio unchanged, delayed by the latency it reports (the
/// switched-off limiter's 5 ms lookahead); with a 0 ms lookahead it is the input itself.
#[test]
fn default_plugin_is_transparent_delayed_by_its_latency() {
    for (lookahead, latency) in [(None, 240usize), (Some("0 ms"), 0)] {
        for channels in [1u32, 2] {
            let mut plugin = Rtfx::default();
            if let Some(text) = lookahead {
                set_text(&plugin, "lim_lookahead", text);
            }
            let mut host = Host::new(48_000.0, None);
            assert!(activate(&mut plugin, &mut host, 48_000.0, 512, channels));
            // The wrapper starts at 0 latency: 0 is not reported.
            let reported = (latency > 0).then_some(latency as u32);
            assert_eq!(host.latency.get(), reported);
            assert_eq!(plugin.strip().latency_samples(), latency);
            let mut chans: Vec<Vec<f32>> = (0..channels)
                .map(|c| noise(4096, u64::from(c), 0.5))
                .collect();
            let before = chans.clone();
            let status = process_all(&mut plugin, &mut host, &mut chans, 500);
            for (out, input) in chans.iter().zip(&before) {
                assert!(out[..latency].iter().all(|&x| x == 0.0));
                assert_eq!(out[latency..], input[..4096 - latency]);
            }
            assert_eq!(status, ProcessStatus::Tail(latency as u32));
        }
    }
}

#[test]
fn latency_is_reported_on_activate_and_when_it_changes() {
    let mut plugin = Rtfx::default();
    set_text(&plugin, "lim_on", "On");
    set_text(&plugin, "lim_lookahead", "5 ms");
    let mut host = Host::new(48_000.0, None);
    assert!(activate(&mut plugin, &mut host, 48_000.0, 512, 2));
    assert_eq!(host.latency.get(), Some(240));
    assert_eq!(plugin.meters().latency_samples(), 240);

    // Changing the lookahead while running re-reports the latency.
    host.latency.set(None);
    set_text(&plugin, "lim_lookahead", "10 ms");
    let mut chans = vec![vec![0.0f32; 256]; 2];
    process_all(&mut plugin, &mut host, &mut chans, 256);
    assert_eq!(host.latency.get(), Some(480));
    // Unchanged latency is not re-reported.
    host.latency.set(None);
    process_all(&mut plugin, &mut host, &mut chans, 256);
    assert_eq!(host.latency.get(), None);
    // Switching the limiter off keeps it (the lookahead delay stays in the path): nothing
    // is re-reported.
    set_text(&plugin, "lim_on", "Off");
    process_all(&mut plugin, &mut host, &mut chans, 256);
    assert_eq!(host.latency.get(), None);
    assert_eq!(plugin.meters().latency_samples(), 480);

    // Re-activating reports the latency again, whether the limiter is on or off; a
    // lookahead of 0 ms makes it 0.
    // (Only a latency that differs from the one reported is reported again.)
    for (switch, lookahead, reported) in [
        ("On", "10 ms", None),
        ("Off", "10 ms", None),
        ("Off", "0 ms", Some(0)),
        ("Off", "5 ms", Some(240)),
    ] {
        set_text(&plugin, "lim_on", switch);
        set_text(&plugin, "lim_lookahead", lookahead);
        host.latency.set(None);
        assert!(activate(&mut plugin, &mut host, 48_000.0, 512, 2));
        assert_eq!(host.latency.get(), reported, "{switch} {lookahead}");
    }

    // At 96 kHz the same lookahead is twice the samples.
    let mut plugin = Rtfx::default();
    set_text(&plugin, "lim_on", "On");
    let mut host = Host::new(96_000.0, None);
    assert!(activate(&mut plugin, &mut host, 96_000.0, 512, 2));
    assert_eq!(host.latency.get(), Some(480));
}

#[test]
fn tail_covers_delay_and_reverb() {
    let mut plugin = Rtfx::default();
    set_text(&plugin, "dly_on", "On");
    set_text(&plugin, "dly_time", "250 ms");
    set_text(&plugin, "dly_fb", "50 %");
    let mut host = Host::new(48_000.0, None);
    assert!(activate(&mut plugin, &mut host, 48_000.0, 512, 2));
    let mut chans = vec![vec![0.0f32; 512]; 2];
    let status = process_all(&mut plugin, &mut host, &mut chans, 512);
    // 20 echoes to -120 dB after the 240-sample latency (the limiter's lookahead).
    assert_eq!(status, ProcessStatus::Tail(240 + 12_000 * 20));
    set_text(&plugin, "rev_on", "On");
    let status = process_all(&mut plugin, &mut host, &mut chans, 512);
    match status {
        ProcessStatus::Tail(n) => assert!(n > 240 + 12_000 * 20 + 48_000, "{n}"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn tempo_sync_follows_the_host_tempo() {
    let mut plugin = Rtfx::default();
    set_text(&plugin, "dly_on", "On");
    set_text(&plugin, "dly_sync", "Tempo");
    set_text(&plugin, "dly_note", "1/4");
    set_text(&plugin, "dly_mix", "100 %");
    set_text(&plugin, "dly_fb", "0 %");
    // A quarter note at 100 BPM: 600 ms = 28800 samples (no lookahead latency).
    set_text(&plugin, "lim_lookahead", "0 ms");
    let mut host = Host::new(48_000.0, Some(100.0));
    assert!(activate(&mut plugin, &mut host, 48_000.0, 1024, 2));
    let mut chans = vec![vec![0.0f32; 40_000]; 2];
    chans[0][0] = 1.0;
    process_all(&mut plugin, &mut host, &mut chans, 1024);
    assert_eq!(chans[0].iter().position(|&x| x != 0.0), Some(28_800));
}

#[test]
fn bypass_returns_the_latency_compensated_input() {
    let mut plugin = Rtfx::default();
    for id in ["eq_on", "comp_on", "rev_on", "lim_on", "bypass"] {
        set_text(&plugin, id, "On");
    }
    set_text(&plugin, "pk_gain", "12 dB");
    let mut host = Host::new(48_000.0, None);
    assert!(activate(&mut plugin, &mut host, 48_000.0, 512, 2));
    let latency = host.latency.get().expect("latency reported") as usize;
    assert_eq!(latency, 240);
    let input = noise(8192, 3, 0.5);
    let mut chans = vec![input.clone(), input.clone()];
    process_all(&mut plugin, &mut host, &mut chans, 512);
    assert_eq!(&chans[0][latency..], &input[..8192 - latency]);
    assert!(chans[0][..latency].iter().all(|&x| x == 0.0));
}

#[test]
fn random_parameters_never_give_nan_inf_or_subnormal_output() {
    let rates = [
        1000.0f32, 22_050.0, 44_100.0, 48_000.0, 96_000.0, 192_000.0, 768_000.0,
    ];
    let blocks = [1usize, 64, 511, 4096];
    let mut rng = rtfx::dsp::noise::Noise::new(1);
    for &rate in &rates {
        for &block in &blocks {
            let mut plugin = Rtfx::default();
            let ids: Vec<String> = plugin
                .params()
                .param_map()
                .into_iter()
                .map(|(id, _, _)| id)
                .collect();
            let mut host = Host::new(rate, Some(137.0));
            let mut randomize = |plugin: &Rtfx| {
                for id in &ids {
                    let n = rng.unit();
                    // Hit the ends of the ranges often.
                    let n = if n < 0.15 {
                        0.0
                    } else if n > 0.85 {
                        1.0
                    } else {
                        n
                    };
                    set_normalized(plugin, id, n);
                }
            };
            randomize(&plugin);
            assert!(activate(&mut plugin, &mut host, rate, block as u32, 2));
            let frames = (block * 3).max(2048);
            for round in 0..3 {
                let mut chans = vec![noise(frames, round, 1.0), noise(frames, round + 7, 1.0)];
                if round == 1 {
                    chans[0][5] = f32::NAN;
                    chans[1][frames / 2] = f32::INFINITY;
                }
                process_all(&mut plugin, &mut host, &mut chans, block);
                for c in &chans {
                    assert!(
                        c.iter().all(|&x| clean(x)),
                        "rate {rate}, block {block}, round {round}"
                    );
                }
                randomize(&plugin);
            }
            // Silence after the noise decays to silence without subnormals.
            let mut chans = vec![vec![0.0f32; frames]; 2];
            process_all(&mut plugin, &mut host, &mut chans, block);
            assert!(chans.iter().flatten().all(|&x| clean(x)));
        }
    }
}

#[test]
fn zero_length_blocks_are_harmless() {
    let mut plugin = Rtfx::default();
    set_text(&plugin, "rev_on", "On");
    let mut host = Host::new(48_000.0, None);
    assert!(activate(&mut plugin, &mut host, 48_000.0, 64, 2));
    let mut chans = vec![Vec::<f32>::new(), Vec::new()];
    let mut buf = buffer(&mut chans, 0, 0);
    let mut aux = AuxiliaryBuffers {
        inputs: &mut [],
        outputs: &mut [],
    };
    plugin.process(&mut buf, &mut aux, &mut host);
    // And reactivating at another rate works, then reset mid-stream.
    assert!(activate(&mut plugin, &mut host, 44_100.0, 64, 1));
    let mut chans = vec![noise(1000, 1, 0.5)];
    process_all(&mut plugin, &mut host, &mut chans, 64);
    plugin.reset();
    process_all(&mut plugin, &mut host, &mut chans, 64);
    assert!(chans[0].iter().all(|&x| clean(x)));
}

#[test]
fn meters_see_levels_and_load() {
    let mut plugin = Rtfx::default();
    set_text(&plugin, "comp_on", "On");
    set_text(&plugin, "comp_thresh", "-40 dB");
    let mut host = Host::new(48_000.0, None);
    assert!(activate(&mut plugin, &mut host, 48_000.0, 256, 2));
    let mut chans = vec![noise(48_000, 1, 0.5), noise(48_000, 2, 0.5)];
    process_all(&mut plugin, &mut host, &mut chans, 256);
    let levels = plugin.meters().take_levels();
    assert!(
        levels.input_peak > 0.4 && levels.input_peak <= 0.5,
        "{levels:?}"
    );
    assert!(levels.output_peak > 0.0 && levels.output_peak < levels.input_peak);
    assert!(levels.gain_reduction_db() < -6.0, "{levels:?}");
    // Taken: the next read starts from zero.
    assert_eq!(plugin.meters().take_levels().input_peak, 0.0);
    let stats = plugin.meters().load_stats().expect("stats");
    assert_eq!(stats.blocks, 48_000 / 256 + 1);
    assert!(stats.median_percent > 0.0 && stats.p99_percent >= stats.median_percent);
    plugin.meters().reset_stats();
    assert!(plugin.meters().load_stats().is_none());
}

#[test]
fn export_chain_writes_a_chain_file_the_renderer_accepts() {
    let plugin = Rtfx::default();
    set_text(&plugin, "hp_on", "On");
    set_text(&plugin, "hp_freq", "120 Hz");
    set_text(&plugin, "dly_on", "On");
    set_text(&plugin, "dly_sync", "Tempo");
    let dir = std::env::temp_dir().join(format!("rtfx-plugin-export-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("strip.toml");
    rtfx::plugin::editor::export_chain(plugin.rtfx_params(), 140.0, &path).expect("export");
    let text = std::fs::read_to_string(&path).unwrap();
    let file = rtfx::dsp::spec::chain_from_toml(&text).expect("renderer accepts it");
    let names: Vec<&str> = file.chain.effects().iter().map(|e| e.name()).collect();
    assert_eq!(names, ["gain", "hibutterworth", "delay", "gain"]);
    assert!(text.contains("bpm = 140"), "{text}");
    // A path in a missing directory is an error, not a panic, and leaves nothing behind.
    let bad = dir.join("missing").join("x.toml");
    let err = rtfx::plugin::editor::export_chain(plugin.rtfx_params(), 120.0, &bad).unwrap_err();
    assert!(err.to_string().contains("cannot write"), "{err}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn reset_applies_parameter_changes_made_while_not_processing() {
    // A host sets parameters, then resets (e.g. before an offline render): the first block must
    // already use them, exactly as a plugin activated with those values does.
    let ids = [
        ("hp_on", "On"),
        ("hp_freq", "300 Hz"),
        ("rev_on", "On"),
        ("comp_on", "On"),
    ];
    let mut a = Rtfx::default();
    let mut host_a = Host::new(48_000.0, None);
    assert!(activate(&mut a, &mut host_a, 48_000.0, 512, 2));
    for (id, v) in ids {
        set_text(&a, id, v);
    }
    a.reset();
    let mut b = Rtfx::default();
    for (id, v) in ids {
        set_text(&b, id, v);
    }
    let mut host_b = Host::new(48_000.0, None);
    assert!(activate(&mut b, &mut host_b, 48_000.0, 512, 2));
    let input = vec![noise(4800, 1, 0.5), noise(4800, 2, 0.5)];
    let (mut xa, mut xb) = (input.clone(), input.clone());
    process_all(&mut a, &mut host_a, &mut xa, 512);
    process_all(&mut b, &mut host_b, &mut xb, 512);
    assert_eq!(xa, xb);
}

#[test]
fn true_peak_mode_adds_the_interpolator_latency_under_a_short_lookahead() {
    let mut plugin = Rtfx::default();
    set_text(&plugin, "lim_on", "On");
    set_text(&plugin, "lim_lookahead", "0 ms");
    let mut host = Host::new(48_000.0, None);
    assert!(activate(&mut plugin, &mut host, 48_000.0, 512, 2));
    assert_eq!(plugin.meters().latency_samples(), 0);
    let mut chans = vec![vec![0.0f32; 256]; 2];
    set_text(&plugin, "lim_tp", "On");
    process_all(&mut plugin, &mut host, &mut chans, 256);
    assert_eq!(host.latency.get(), Some(36));
    assert_eq!(plugin.meters().latency_samples(), 36);
    // A lookahead longer than the interpolator's delay is the latency in either mode.
    set_text(&plugin, "lim_lookahead", "5 ms");
    process_all(&mut plugin, &mut host, &mut chans, 256);
    assert_eq!(host.latency.get(), Some(240));
    host.latency.set(None);
    set_text(&plugin, "lim_tp", "Off");
    process_all(&mut plugin, &mut host, &mut chans, 256);
    assert_eq!(
        host.latency.get(),
        None,
        "unchanged latency is not re-reported"
    );
}

//! The plugin's channel strip driven directly (no nice-plug): pass-through, every section,
//! latency and tail, click-free switches, state kept across filter changes, chunking, NaN
//! recovery, and agreement with the renderer's chain for the exported TOML.

// Settings are built by changing a few fields of the defaults, which reads best here.
#![allow(clippy::field_reassign_with_default)]

use rtfx::dsp::spec::chain_from_toml;
use rtfx::plugin::strip::{DelayTime, STEP, Strip, StripSettings};

const FS: f64 = 48_000.0;

use rtfx::dsp::noise::noise;

fn sine(frames: usize, freq: f64, amp: f32) -> Vec<f32> {
    (0..frames)
        .map(|n| {
            (f64::from(amp) * (2.0 * std::f64::consts::PI * freq * n as f64 / FS).sin()) as f32
        })
        .collect()
}

fn prepared(settings: &StripSettings) -> Strip {
    let mut strip = Strip::new(*settings);
    strip.prepare(FS, 512, 2, settings).expect("prepare");
    strip
}

/// Runs stereo channels through the strip in blocks of `block` frames.
fn run(strip: &mut Strip, l: &mut [f32], r: &mut [f32], block: usize) {
    let mut start = 0;
    while start < l.len() {
        let end = (start + block).min(l.len());
        strip.process(&mut [&mut l[start..end], &mut r[start..end]]);
        start = end;
    }
}

/// Every section on with audible settings.
fn everything_on() -> StripSettings {
    let mut s = StripSettings::default();
    s.input_gain_db = 3.0;
    s.high_pass.enabled = true;
    s.high_pass.cutoff_hz = 80.0;
    s.high_pass.order = 4;
    s.low_pass.enabled = true;
    s.low_pass.cutoff_hz = 12_000.0;
    s.low_pass.order = 3;
    s.eq.enabled = true;
    s.eq.low_shelf.gain_db = 4.0;
    s.eq.peak.gain_db = -6.0;
    s.eq.high_shelf.gain_db = 2.0;
    s.compressor.enabled = true;
    s.compressor.threshold_db = -24.0;
    s.compressor.makeup_db = 3.0;
    s.delay.enabled = true;
    s.delay.time = DelayTime::Ms(120.0);
    s.delay.ping_pong = true;
    s.reverb.enabled = true;
    s.limiter.enabled = true;
    s.limiter.ceiling_db = -1.0;
    s.output_gain_db = -2.0;
    s
}

/// The default strip passes audio unchanged, delayed by the limiter's lookahead (5 ms: the
/// limiter is off, but its delay stays in the path so that its switch needs no restart); a
/// lookahead of 0 ms makes it latency-free.
#[test]
fn default_settings_pass_audio_unchanged_delayed_by_the_lookahead() {
    let mut strip = prepared(&StripSettings::default());
    let (mut l, mut r) = (noise(4800, 1, 0.8), noise(4800, 2, 0.8));
    let (l0, r0) = (l.clone(), r.clone());
    run(&mut strip, &mut l, &mut r, 333);
    assert_eq!(strip.latency_samples(), 240);
    assert_eq!(strip.tail_samples(), 240);
    assert!(l[..240].iter().chain(&r[..240]).all(|&x| x == 0.0));
    assert_eq!(l[240..], l0[..4800 - 240]);
    assert_eq!(r[240..], r0[..4800 - 240]);

    let mut s = StripSettings::default();
    s.limiter.lookahead_ms = 0.0;
    let mut strip = prepared(&s);
    let (mut l, mut r) = (l0.clone(), r0.clone());
    run(&mut strip, &mut l, &mut r, 333);
    assert_eq!(strip.latency_samples(), 0);
    assert_eq!(strip.tail_samples(), 0);
    assert_eq!(l, l0);
    assert_eq!(r, r0);
}

/// The limiter switch moves nothing in time: toggled every 50 ms (as automation would) on a
/// signal under the ceiling, the output is the input delayed by the lookahead, sample for
/// sample, and the latency never changes. On a signal over the ceiling, switching on limits
/// from the end of the cross-fade, and no switch clicks.
#[test]
fn limiter_switch_keeps_the_latency_and_the_timing() {
    for true_peak in [false, true] {
        let mut s = StripSettings::default();
        s.limiter.true_peak = true_peak;
        s.limiter.ceiling_db = -1.0;
        let mut strip = prepared(&s);
        let input = sine(48_000, 220.0, 0.5);
        let (mut l, mut r) = (input.clone(), input.clone());
        let mut start = 0;
        while start < l.len() {
            let end = (start + 480).min(l.len());
            if start % 2400 == 1200 {
                s.limiter.enabled = !s.limiter.enabled;
                strip.set_settings(&s);
                assert_eq!(strip.target_latency(), 240);
            }
            strip.process(&mut [&mut l[start..end], &mut r[start..end]]);
            assert_eq!(strip.latency_samples(), 240);
            start = end;
        }
        let diff = l[240..]
            .iter()
            .zip(&input)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0f32, f32::max);
        assert!(
            diff < 1e-6,
            "true_peak {true_peak}: the output left the delayed input by {diff}"
        );

        // Over the ceiling (a 0 dBFS sine, ceiling -6 dB): on/off every 90 ms (11.7 periods:
        // the switches do not fall on zero crossings).
        s.limiter.ceiling_db = -6.0;
        s.limiter.enabled = false;
        let mut strip = prepared(&s);
        let mut l = sine(48_000, 130.0, 1.0);
        let mut r = l.clone();
        let ceiling = 10f32.powf(-6.0 / 20.0);
        let fade = 480; // FADE_MS at 48 kHz
        let mut on_since = None;
        let mut start = 0;
        while start < l.len() {
            let end = (start + 480).min(l.len());
            if start % 4320 == 0 && start > 0 {
                s.limiter.enabled = !s.limiter.enabled;
                strip.set_settings(&s);
                on_since = s.limiter.enabled.then_some(start);
            }
            strip.process(&mut [&mut l[start..end], &mut r[start..end]]);
            if let Some(on) = on_since
                && start >= on + fade
            {
                let peak = l[start..end].iter().fold(0.0f32, |m, x| m.max(x.abs()));
                assert!(
                    peak <= ceiling * 1.0001,
                    "true_peak {true_peak}: {peak} over the ceiling at frame {start}"
                );
            }
            start = end;
        }
        // A 0 dBFS 130 Hz sine moves by at most 0.017 per sample; a switch that jumped in
        // time or started the limiter from silence would step by far more.
        let step = max_step(&l);
        assert!(step < 0.02, "true_peak {true_peak}: largest jump {step}");
    }
}

fn rms(x: &[f32]) -> f32 {
    (x.iter().map(|v| v * v).sum::<f32>() / x.len().max(1) as f32).sqrt()
}

/// Each section, alone, does what it is for, measured against the input delayed by the
/// strip's latency (the output is always delayed, so "differs from the input" would prove
/// nothing): gains scale exactly, the filters attenuate a tone outside their band by their
/// slope, the EQ boosts its band, the compressor and limiter reduce the level, the delay
/// echoes after its time and the reverb rings on. Everything on at once stays clean. Output and
/// state never hold NaN, infinity or subnormal numbers.
#[test]
fn every_section_does_its_job_and_stays_clean() {
    type Check = fn(&[f32], &[f32]) -> Result<(), String>;
    let base = StripSettings::default();
    let mut variants: Vec<(&str, StripSettings, Vec<f32>, Check)> = Vec::new();
    let mut s = base;
    s.input_gain_db = -6.0;
    variants.push(("input gain", s, noise(24_000, 3, 0.5), |i, o| {
        exact_ratio(i, o, 10f32.powf(-6.0 / 20.0))
    }));
    let mut s = base;
    s.output_gain_db = 6.0;
    variants.push(("output gain", s, noise(24_000, 3, 0.5), |i, o| {
        exact_ratio(i, o, 10f32.powf(6.0 / 20.0))
    }));
    // 2nd-order high-pass at 2 kHz on 100 Hz: (100/2000)^2, -52 dB.
    let mut s = base;
    s.high_pass.enabled = true;
    s.high_pass.cutoff_hz = 2000.0;
    variants.push(("high-pass", s, sine(24_000, 100.0, 0.5), |i, o| {
        level_ratio(i, o, 0.0, 0.005)
    }));
    // 2nd-order low-pass at 500 Hz on 10 kHz: (500/10000)^2, -52 dB.
    let mut s = base;
    s.low_pass.enabled = true;
    s.low_pass.cutoff_hz = 500.0;
    variants.push(("low-pass", s, sine(24_000, 10_000.0, 0.5), |i, o| {
        level_ratio(i, o, 0.0, 0.005)
    }));
    // +12 dB peak at 1 kHz on 1 kHz: about 4x.
    let mut s = base;
    s.eq.enabled = true;
    s.eq.peak.gain_db = 12.0;
    variants.push(("eq", s, sine(24_000, 1000.0, 0.1), |i, o| {
        level_ratio(i, o, 3.6, 4.4)
    }));
    // 3:1 above -30 dB on a sine at -9 dBFS RMS: about 14 dB less once settled.
    let mut s = base;
    s.compressor.enabled = true;
    s.compressor.threshold_db = -30.0;
    variants.push(("compressor", s, sine(24_000, 200.0, 0.5), |i, o| {
        level_ratio(&i[12_000..], &o[12_000..], 0.12, 0.35)
    }));
    // An impulse: the dry impulse, then the first echo 250 ms (12000 samples) later.
    let mut s = base;
    s.delay.enabled = true;
    let mut impulse = vec![0.0f32; 24_000];
    impulse[100] = 0.5;
    variants.push(("delay", s, impulse.clone(), |i, o| {
        // The (delayed) impulse's position; mix 25 %: the dry part is 0.75 of it.
        let at = i.iter().position(|&x| x != 0.0).ok_or("no impulse")?;
        let echo = o[at + 12_000].abs();
        let elsewhere = o
            .iter()
            .enumerate()
            .filter(|&(n, _)| n != at && n != at + 12_000)
            .fold(0.0f32, |m, (_, x)| m.max(x.abs()));
        if (o[at] - i[at] * 0.75).abs() < 1e-6 && echo > 0.05 && elsewhere < 1e-6 {
            Ok(())
        } else {
            Err(format!("dry {}, echo {echo}, elsewhere {elsewhere}", o[at]))
        }
    }));
    // The impulse rings on in the reverb long after it.
    let mut s = base;
    s.reverb.enabled = true;
    variants.push(("reverb", s, impulse, |_, o| {
        let tail = rms(&o[4_800..9_600]);
        if tail > 1e-4 {
            Ok(())
        } else {
            Err(format!("no reverb tail (rms {tail})"))
        }
    }));
    // Ceiling -12 dBFS on a 0.9 sine: never above 0.2512.
    let mut s = base;
    s.limiter.enabled = true;
    s.limiter.ceiling_db = -12.0;
    variants.push(("limiter", s, sine(24_000, 200.0, 0.9), |_, o| {
        let peak = o.iter().fold(0.0f32, |m, x| m.max(x.abs()));
        if peak <= 10f32.powf(-12.0 / 20.0) && peak > 0.2 {
            Ok(())
        } else {
            Err(format!("peak {peak}"))
        }
    }));
    variants.push((
        "everything",
        everything_on(),
        noise(24_000, 3, 0.5),
        |i, o| level_ratio(i, o, 0.05, 20.0),
    ));

    for (name, settings, input, check) in variants {
        let mut strip = prepared(&settings);
        let (mut l, mut r) = (input.clone(), input.clone());
        run(&mut strip, &mut l, &mut r, 256);
        let latency = strip.latency_samples();
        assert_eq!(latency, 240, "{name}");
        let delayed: Vec<f32> = std::iter::repeat_n(0.0, latency)
            .chain(input.iter().copied())
            .take(input.len())
            .collect();
        check(&delayed, &l).unwrap_or_else(|e| panic!("{name}: {e}"));
        // Identical channels in, identical out (everything on has ping-pong: not there).
        assert!(
            name == "everything" || l == r,
            "{name}: the channels differ"
        );
        assert!(
            l.iter()
                .all(|x| x.is_finite() && (*x == 0.0 || x.abs() >= f32::MIN_POSITIVE)),
            "{name}: non-finite or subnormal output"
        );
        let mut bad = 0;
        strip.visit_state(&mut |v| {
            if !v.is_finite() || (v != 0.0 && v.abs() < f64::from(f32::MIN_POSITIVE)) {
                bad += 1;
            }
        });
        assert_eq!(bad, 0, "{name}: bad numbers in the state");
    }
}

/// `output == input · ratio`, sample for sample (to f32 rounding).
fn exact_ratio(input: &[f32], output: &[f32], ratio: f32) -> Result<(), String> {
    let worst = input
        .iter()
        .zip(output)
        .map(|(i, o)| (o - i * ratio).abs())
        .fold(0.0f32, f32::max);
    if worst < 1e-6 {
        Ok(())
    } else {
        Err(format!("output is not input x {ratio} (off by {worst})"))
    }
}

/// The output's RMS over the input's (both after the first 4800 samples, once filters and
/// switches have settled) lies in `[lo, hi]`.
fn level_ratio(input: &[f32], output: &[f32], lo: f32, hi: f32) -> Result<(), String> {
    let skip = 4_800.min(input.len() / 2);
    let ratio = rms(&output[skip..]) / rms(&input[skip..]);
    if (lo..=hi).contains(&ratio) {
        Ok(())
    } else {
        Err(format!("level ratio {ratio}, expected {lo}..{hi}"))
    }
}

#[test]
fn limiter_latency_and_ceiling() {
    let mut s = StripSettings::default();
    s.limiter.enabled = true;
    s.limiter.lookahead_ms = 5.0;
    s.limiter.ceiling_db = -6.0;
    let mut strip = prepared(&s);
    assert_eq!(strip.latency_samples(), 240);
    assert_eq!(strip.target_latency(), 240);
    // A quiet impulse comes out exactly 240 samples later, unchanged.
    let mut l = vec![0.0f32; 1024];
    let mut r = vec![0.0f32; 1024];
    l[10] = 0.25;
    run(&mut strip, &mut l, &mut r, 100);
    assert_eq!(l[250], 0.25);
    assert_eq!(l.iter().filter(|&&x| x != 0.0).count(), 1);
    // Loud noise never exceeds the ceiling.
    let (mut l, mut r) = (noise(48_000, 5, 1.0), noise(48_000, 6, 1.0));
    run(&mut strip, &mut l, &mut r, 512);
    let ceiling = 10f32.powf(-6.0 / 20.0);
    assert!(l.iter().chain(&r).all(|x| x.abs() <= ceiling));
    // The tail reported is the latency (no delay or reverb).
    assert_eq!(strip.tail_samples(), 240);
    // Switching the limiter off keeps the latency (its delay stays in the path).
    s.limiter.enabled = false;
    strip.set_settings(&s);
    assert_eq!(strip.target_latency(), 240);
}

#[test]
fn delay_and_reverb_report_their_tails() {
    let mut s = StripSettings::default();
    s.delay.enabled = true;
    s.delay.time = DelayTime::Ms(250.0);
    s.delay.feedback = 0.5;
    let strip = prepared(&s);
    // 12000 samples per echo, ceil(ln 1e-6 / ln 0.5) = 20 echoes to -120 dB, after the
    // 240-sample latency.
    assert_eq!(strip.tail_samples(), 240 + 12_000 * 20);
    s.delay.enabled = false;
    s.reverb.enabled = true;
    let strip = prepared(&s);
    let tail = strip.tail_samples();
    assert!(tail > 48_000 && tail < 30 * 48_000, "{tail}");
}

#[test]
fn tempo_synced_delay_uses_the_note_value() {
    let mut s = StripSettings::default();
    s.delay.enabled = true;
    s.delay.mix = 1.0;
    s.delay.feedback = 0.0;
    s.delay.time = DelayTime::Note {
        fraction: 0.25,
        bpm: 120.0,
    };
    // A quarter note at 120 BPM is 500 ms = 24000 samples (with no lookahead latency).
    s.limiter.lookahead_ms = 0.0;
    let mut strip = prepared(&s);
    let mut l = vec![0.0f32; 30_000];
    let mut r = vec![0.0f32; 30_000];
    l[0] = 1.0;
    run(&mut strip, &mut l, &mut r, 512);
    let first = l.iter().position(|&x| x != 0.0);
    assert_eq!(first, Some(24_000));
}

#[test]
fn static_settings_give_the_same_output_for_any_block_sizes() {
    let s = everything_on();
    let (l0, r0) = (noise(20_000, 7, 0.7), noise(20_000, 8, 0.7));
    let mut outputs = Vec::new();
    for block in [20_000, 1, 7, 64, 511, 4096] {
        let mut strip = prepared(&s);
        let (mut l, mut r) = (l0.clone(), r0.clone());
        run(&mut strip, &mut l, &mut r, block);
        outputs.push((block, l, r));
    }
    let (_, l_ref, r_ref) = &outputs[0];
    for (block, l, r) in &outputs[1..] {
        assert!(l == l_ref && r == r_ref, "block size {block} differs");
    }
}

/// Largest jump between consecutive samples.
fn max_step(x: &[f32]) -> f32 {
    x.windows(2)
        .map(|w| (w[1] - w[0]).abs())
        .fold(0.0, f32::max)
}

#[test]
fn switches_and_bypass_cross_fade_without_clicks() {
    // A 100 Hz sine moves at most 2π·100/48000·0.5 ≈ 0.0065 per sample; a hard switch of a
    // +18 dB peak at 100 Hz, or of the bypass against a -24 dB gain, would jump far more.
    let mut s = StripSettings::default();
    s.eq.peak.freq_hz = 100.0;
    s.eq.peak.gain_db = 18.0;
    s.output_gain_db = -24.0;
    let mut strip = prepared(&s);
    let mut l = sine(48_000, 100.0, 0.5);
    let mut r = l.clone();
    let mut start = 0;
    let mut toggles = 0;
    while start < l.len() {
        let end = (start + 480).min(l.len());
        if start % 4800 == 0 {
            toggles += 1;
            s.eq.enabled = !s.eq.enabled;
            s.bypass = toggles % 3 == 0;
            strip.set_settings(&s);
        }
        strip.process(&mut [&mut l[start..end], &mut r[start..end]]);
        start = end;
    }
    let step = max_step(&l);
    assert!(step < 0.05, "largest jump {step}");
}

#[test]
fn cutoff_and_order_changes_keep_the_filter_state() {
    // Sweep the high-pass cutoff and change the order while a low sine plays: a state reset
    // would make the output jump.
    let mut s = StripSettings::default();
    s.high_pass.enabled = true;
    s.high_pass.cutoff_hz = 20.0;
    let mut strip = prepared(&s);
    let mut l = sine(96_000, 200.0, 0.5);
    let mut r = l.clone();
    let mut start = 0;
    let mut k = 0;
    while start < l.len() {
        let end = (start + 64).min(l.len());
        k += 1;
        s.high_pass.cutoff_hz = 20.0 + (k % 200) as f64 * 2.0;
        if k % 250 == 0 {
            s.high_pass.order = 1 + (k / 250) % 8;
        }
        strip.set_settings(&s);
        strip.process(&mut [&mut l[start..end], &mut r[start..end]]);
        start = end;
    }
    // The sine itself moves at most 2π·200/48000·0.5 ≈ 0.013 per sample.
    let step = max_step(&l[4800..]);
    assert!(step < 0.04, "largest jump {step}");
}

#[test]
fn nan_input_never_latches() {
    let mut strip = prepared(&everything_on());
    let mut l = noise(STEP * 10, 9, 0.5);
    let mut r = noise(STEP * 10, 10, 0.5);
    l[17] = f32::NAN;
    r[40] = f32::INFINITY;
    run(&mut strip, &mut l, &mut r, 64);
    assert!(l.iter().chain(&r).all(|x| x.is_finite()));
    let (mut l, mut r) = (noise(48_000, 11, 0.5), noise(48_000, 12, 0.5));
    run(&mut strip, &mut l, &mut r, 64);
    let energy: f32 = l[24_000..].iter().map(|x| x * x).sum();
    assert!(energy > 1.0, "the strip went silent after a NaN ({energy})");
    let mut bad = 0;
    strip.visit_state(&mut |v| bad += usize::from(!v.is_finite()));
    assert_eq!(bad, 0);
}

#[test]
fn reset_clears_every_state() {
    let mut strip = prepared(&everything_on());
    let (mut l, mut r) = (noise(9600, 13, 0.5), noise(9600, 14, 0.5));
    run(&mut strip, &mut l, &mut r, 256);
    let state = |strip: &Strip| {
        let mut words = Vec::new();
        strip.visit_state(&mut |v| words.push(v));
        words
    };
    let fresh = state(&prepared(&everything_on()));
    assert_ne!(state(&strip), fresh);
    strip.reset();
    assert_eq!(state(&strip), fresh);
    // Silence in, silence out after a reset.
    let (mut l, mut r) = (vec![0.0f32; 4096], vec![0.0f32; 4096]);
    run(&mut strip, &mut l, &mut r, 4096);
    assert!(l.iter().chain(&r).all(|&x| x == 0.0));
}

#[test]
fn extreme_sample_rates_and_settings_stay_finite() {
    for fs in [
        1000.0, 8000.0, 44_100.0, 96_000.0, 192_000.0, 768_000.0, 22_050.5,
    ] {
        let mut s = everything_on();
        s.high_pass.cutoff_hz = 20_000.0;
        s.high_pass.order = 8;
        s.low_pass.cutoff_hz = 20_000.0;
        s.low_pass.order = 8;
        s.eq.high_shelf.freq_hz = 20_000.0;
        s.eq.high_shelf.gain_db = 24.0;
        s.eq.peak.q = 10.0;
        s.delay.feedback = 0.95;
        s.reverb.room_size = 1.0;
        let mut strip = Strip::new(s);
        strip.prepare(fs, 4096, 2, &s).expect("prepare");
        let frames = (fs as usize / 4).max(4096);
        let (mut l, mut r) = (noise(frames, 15, 1.0), noise(frames, 16, 1.0));
        run(&mut strip, &mut l, &mut r, 4096);
        assert!(
            l.iter().chain(&r).all(|x| x.is_finite() && x.abs() < 10.0),
            "fs {fs}"
        );
    }
}

#[test]
fn mono_works() {
    let s = everything_on();
    let mut strip = Strip::new(s);
    strip.prepare(FS, 512, 1, &s).expect("prepare");
    let mut m = noise(9600, 17, 0.5);
    let mut start = 0;
    while start < m.len() {
        let end = (start + 100).min(m.len());
        strip.process(&mut [&mut m[start..end]]);
        start = end;
    }
    assert!(m.iter().all(|x| x.is_finite()));
    assert!(m.iter().any(|&x| x != 0.0));
}

#[test]
fn exported_chain_matches_the_strip() {
    // The exported TOML builds the renderer's chain, which must sound like the strip: every
    // section on (ping-pong and the limiter included), and with the limiter off (the strip
    // keeps its lookahead delay, the chain has no limiter: they agree once each is compensated
    // for its own latency).
    let mut limiter_off = everything_on();
    limiter_off.limiter.enabled = false;
    // Cutoffs near Nyquist (0.46·fs here) are clamped where the chain's designers clamp them.
    let mut near_nyquist = everything_on();
    near_nyquist.low_pass.cutoff_hz = 22_000.0;
    near_nyquist.eq.high_shelf.freq_hz = 22_500.0;
    for (s, sections, latencies) in [
        (everything_on(), 11, (240, 240)),
        (limiter_off, 10, (240, 0)),
        (near_nyquist, 11, (240, 240)),
    ] {
        let toml = s.to_toml().expect("toml");
        let file = chain_from_toml(&toml).expect("the exported chain parses");
        let mut chain = file.chain;
        assert_eq!(chain.len(), sections);
        chain.prepare(FS, 4096, 2).expect("chain prepares");
        let mut strip = prepared(&s);
        let (l0, r0) = (noise(24_000, 18, 0.5), noise(24_000, 19, 0.5));
        let (mut l1, mut r1) = (l0.clone(), r0.clone());
        run(&mut strip, &mut l1, &mut r1, 512);
        let (mut l2, mut r2) = (l0.clone(), r0.clone());
        let mut start = 0;
        while start < l2.len() {
            let end = (start + 512).min(l2.len());
            chain.process(&mut [&mut l2[start..end], &mut r2[start..end]]);
            start = end;
        }
        let (ls, lc) = (strip.latency_samples(), chain.latency_samples());
        assert_eq!((ls, lc), latencies);
        assert!(l1[ls..].iter().chain(&r1[ls..]).any(|x| x.abs() > 0.05));
        let diff = l1[ls..]
            .iter()
            .zip(&l2[lc..])
            .chain(r1[ls..].iter().zip(&r2[lc..]))
            .map(|(a, b)| (a - b).abs())
            .fold(0.0f32, f32::max);
        assert!(
            diff < 1e-4,
            "{sections} sections: strip and exported chain differ by {diff}"
        );
    }

    // Tempo-synced delays export as bpm + note value; the limiter exports too.
    let mut s = everything_on();
    s.delay.time = DelayTime::Note {
        fraction: 0.1875,
        bpm: 90.0,
    };
    let toml = s.to_toml().expect("toml");
    assert!(toml.contains("bpm = 90"), "{toml}");
    assert!(toml.contains("name = \"limiter\""), "{toml}");
    chain_from_toml(&toml).expect("parses");
    // A host tempo outside the delay's bpm range (20-999) exports as the time it gives.
    s.delay.time = DelayTime::Note {
        fraction: 0.125,
        bpm: 10.0,
    };
    let toml = s.to_toml().expect("a slow tempo exports");
    assert!(
        toml.contains("delay_ms = ") && !toml.contains("bpm"),
        "{toml}"
    );
}

#[test]
fn reset_jumps_to_new_settings_without_ramps() {
    // Settings changed, then a reset before any processing: the output is exactly what a
    // strip prepared with the new settings gives.
    let mut strip = prepared(&StripSettings::default());
    let s = everything_on();
    strip.set_settings(&s);
    strip.reset();
    assert_eq!(strip.latency_samples(), strip.target_latency());
    let mut fresh = prepared(&s);
    let (mut l1, mut r1) = (noise(9600, 21, 0.5), noise(9600, 22, 0.5));
    let (mut l2, mut r2) = (l1.clone(), r1.clone());
    run(&mut strip, &mut l1, &mut r1, 480);
    run(&mut fresh, &mut l2, &mut r2, 480);
    assert!(l1 == l2 && r1 == r2);
}

#[test]
fn odd_blocks_do_not_panic() {
    let s = everything_on();
    let mut strip = prepared(&s);
    // No channels, unequal lengths, more channels than prepared.
    strip.process(&mut []);
    let (mut l, mut r) = (noise(100, 23, 0.5), noise(60, 24, 0.5));
    strip.process(&mut [&mut l[..], &mut r[..]]);
    assert!(l.iter().chain(&r).all(|x| x.is_finite()));
    let mut c = noise(100, 25, 0.5);
    let before = c.clone();
    let (mut l, mut r) = (noise(100, 26, 0.5), noise(100, 27, 0.5));
    strip.process(&mut [&mut l[..], &mut r[..], &mut c[..]]);
    assert_eq!(c, before, "a third channel passes unchanged");
}

/// GPU mode's filters: with the high-pass, low-pass and EQ on a cascade engine (here the GPU
/// kernel's CPU emulation), the strip sounds the same as on the CPU through steady settings,
/// a moving cutoff, sections switching, an order change and the engine being switched off —
/// and the engine really ran the steady stretches.
#[test]
fn the_filters_on_a_cascade_engine_sound_the_same_as_on_the_cpu() {
    use rtfx::dsp::filter::engine::emulated_engine;
    let start = everything_on();
    let mut cpu = prepared(&start);
    let mut gpu = prepared(&start);
    let description = gpu.attach_filter_engine(emulated_engine).expect("engine");
    assert!(description.contains("emulation"), "{description}");
    gpu.set_filter_engine_active(true);

    let mut changes: Vec<(usize, StripSettings)> = Vec::new();
    let mut s = start;
    s.high_pass.cutoff_hz = 200.0; // a moving cutoff (smoothed: coefficient uploads)
    changes.push((20, s));
    s.low_pass.enabled = false; // a section switching off…
    changes.push((40, s));
    s.low_pass.enabled = true; // …and on again
    changes.push((60, s));
    s.high_pass.order = 6; // an order change (cross-fade on the CPU)
    changes.push((80, s));
    s.eq.peak.gain_db = 3.0;
    changes.push((100, s));

    let block = 64;
    let (mut worst, mut engine_steps) = (0.0f32, 0u64);
    for b in 0..140 {
        if let Some((_, settings)) = changes.iter().find(|(at, _)| *at == b) {
            cpu.set_settings(settings);
            gpu.set_settings(settings);
        }
        if b == 120 {
            gpu.set_filter_engine_active(false); // hands the state back to the CPU
        }
        let (l, r) = (
            noise(block, 100 + b as u64, 0.5),
            noise(block, 300 + b as u64, 0.5),
        );
        let (mut l1, mut r1) = (l.clone(), r.clone());
        let (mut l2, mut r2) = (l, r);
        cpu.process(&mut [&mut l1[..], &mut r1[..]]);
        gpu.process(&mut [&mut l2[..], &mut r2[..]]);
        for (a, b) in l1.iter().chain(&r1).zip(l2.iter().chain(&r2)) {
            worst = worst.max((a - b).abs());
        }
        engine_steps += gpu.take_engine_steps();
    }
    assert!(gpu.filter_engine_error().is_none());
    // f32 rounding between the CPU's separate cascades, which the fused cascade does not do.
    assert!(worst < 1e-6, "largest difference {worst}");
    // 120 blocks of 2 steps on the engine, less the cross-fades (each about 10 ms).
    assert!(engine_steps > 150, "the engine ran {engine_steps} steps");
    assert!(engine_steps < 240, "the engine ran {engine_steps} steps");
}

/// The limiter's true-peak mode: the latency the strip reports includes the interpolator's
/// delay when the lookahead is shorter, the exported chain carries `true_peak` and sounds
/// like the strip, and switching the mode while audio runs does not click.
#[test]
fn limiter_true_peak_mode_latency_export_and_switching() {
    let mut s = StripSettings::default();
    s.limiter.enabled = true;
    s.limiter.ceiling_db = -3.0;
    s.limiter.true_peak = true;
    s.limiter.lookahead_ms = 0.0;
    let strip = prepared(&s);
    assert_eq!(strip.target_latency(), 36);
    assert_eq!(strip.latency_samples(), 36);
    s.limiter.lookahead_ms = 5.0;
    let strip = prepared(&s);
    assert_eq!(strip.latency_samples(), 240);

    // Export: the chain's limiter is in true-peak mode and its output is the strip's.
    for lookahead in [5.0, 0.0] {
        s.limiter.lookahead_ms = lookahead;
        let toml = s.to_toml().expect("toml");
        assert!(toml.contains("true_peak = true"), "{toml}");
        let mut chain = chain_from_toml(&toml).expect("parses").chain;
        chain.prepare(FS, 4096, 2).expect("chain prepares");
        let mut strip = prepared(&s);
        assert_eq!(chain.latency_samples(), strip.latency_samples());
        let (l0, r0) = (sine(24_000, 14_100.0, 0.9), noise(24_000, 21, 0.9));
        let (mut l1, mut r1) = (l0.clone(), r0.clone());
        run(&mut strip, &mut l1, &mut r1, 512);
        let (mut l2, mut r2) = (l0, r0);
        let mut start = 0;
        while start < l2.len() {
            let end = (start + 512).min(l2.len());
            chain.process(&mut [&mut l2[start..end], &mut r2[start..end]]);
            start = end;
        }
        let diff = l1
            .iter()
            .zip(&l2)
            .chain(r1.iter().zip(&r2))
            .map(|(a, b)| (a - b).abs())
            .fold(0.0f32, f32::max);
        assert!(
            diff < 1e-4,
            "lookahead {lookahead}: strip and chain differ by {diff}"
        );
    }
    let mut off = s;
    off.limiter.true_peak = false;
    assert!(off.to_toml().unwrap().contains("true_peak = false"));

    // Switching: a 130 Hz sine limited by 6 dB; the mode toggles every 100 ms (never at a
    // zero crossing). Its largest step stays that of the limited sine (≈ 0.0043 per sample),
    // far from a click (a state reset on switching jumps by up to 0.25).
    s.limiter.lookahead_ms = 5.0;
    s.limiter.ceiling_db = -12.0;
    let mut strip = prepared(&s);
    let mut l = sine(48_000, 130.0, 0.5);
    let mut r = l.clone();
    let mut start = 0;
    while start < l.len() {
        let end = (start + 480).min(l.len());
        if start % 4800 == 0 {
            s.limiter.true_peak = !s.limiter.true_peak;
            strip.set_settings(&s);
            assert_eq!(strip.target_latency(), 240);
        }
        strip.process(&mut [&mut l[start..end], &mut r[start..end]]);
        start = end;
    }
    let step = max_step(&l[4800..]);
    assert!(step < 0.01, "largest jump {step}");
}

/// The frequency response the editor draws ([`StripSettings::filter_sections`]) is what the
/// strip's filters and EQ do: a sine at each test frequency comes out with the drawn gain, to
/// 0.05 dB (measured over whole periods once the filters have settled).
#[test]
fn drawn_response_is_what_the_strip_does() {
    use rtfx::dsp::filter::design::magnitude_db;
    let mut s = StripSettings::default();
    s.high_pass.enabled = true;
    s.high_pass.cutoff_hz = 80.0;
    s.high_pass.order = 4;
    s.low_pass.enabled = true;
    s.low_pass.cutoff_hz = 12_000.0;
    s.low_pass.order = 3;
    s.eq.enabled = true;
    s.eq.low_shelf.freq_hz = 200.0;
    s.eq.low_shelf.gain_db = 4.0;
    s.eq.peak.freq_hz = 2000.0;
    s.eq.peak.gain_db = -6.0;
    s.eq.peak.q = 2.0;
    s.eq.high_shelf.freq_hz = 9000.0;
    s.eq.high_shelf.gain_db = 3.0;
    let sections = s.filter_sections(FS);
    for freq in [
        50.0, 100.0, 300.0, 1000.0, 2000.0, 5000.0, 10_000.0, 15_000.0,
    ] {
        let settle = FS as usize / 2;
        let mut l = sine(settle + FS as usize, freq, 0.1);
        let input = l.clone();
        let mut r = l.clone();
        let mut strip = prepared(&s);
        run(&mut strip, &mut l, &mut r, 256);
        let measured = 20.0 * f64::from(rms(&l[settle..]) / rms(&input[settle..])).log10();
        let drawn = magnitude_db(&sections, freq, FS);
        assert!(
            (measured - drawn).abs() < 0.05,
            "{freq} Hz: the strip gives {measured:.3} dB, the editor draws {drawn:.3} dB"
        );
    }
}

/// Changing from one factory preset to the next while a tone plays is click-free: the change
/// goes through the strip's ramps and cross-fades, so the largest sample-to-sample step around
/// the change is at most 2.5 times what the presets give on their own. Jumping to the
/// new preset without them (`jump_to`) is what clicks.
#[test]
fn preset_changes_are_click_free() {
    use rtfx::plugin::presets::{factory_preset, factory_presets};
    let names: Vec<&str> = factory_presets().iter().map(|(n, _)| *n).collect();
    let half = 4800;
    // At 112.5 Hz the change (after 0.1 s) meets the tone at its peak, where a jump in gain
    // shows most.
    let tone = sine(2 * half, 112.5, 0.3);
    // The largest step of the last `half` samples with `settings` throughout (settled).
    let settled_step = |settings: &StripSettings| {
        let (mut l, mut r) = (tone.clone(), tone.clone());
        let mut strip = prepared(settings);
        run(&mut strip, &mut l, &mut r, 480);
        max_step(&l[half..])
    };
    for pair in names.windows(2) {
        let (a, b) = (
            factory_preset(pair[0]).expect("preset"),
            factory_preset(pair[1]).expect("preset"),
        );
        let (mut l, mut r) = (tone.clone(), tone.clone());
        let mut strip = prepared(&a);
        run(&mut strip, &mut l[..half], &mut r[..half], 480);
        strip.set_settings(&b);
        run(&mut strip, &mut l[half..], &mut r[half..], 480);
        let around = max_step(&l[half - 480..half + 2400]);
        // Ramps can overshoot the level a little (the compressor's detector lags its new
        // settings); a jump is 25 times the settled step here.
        let bound = 2.5 * settled_step(&a).max(settled_step(&b));
        assert!(
            around <= bound,
            "{} → {}: a step of {around} at the change (the presets alone: {bound})",
            pair[0],
            pair[1]
        );
    }
}

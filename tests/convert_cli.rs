//! `rtfx render --rate/--channels/--remix/--chain-rate`: sample-rate and channel conversion,
//! checked against the math (tones keep level and time, exact lengths, channel means), against
//! sox's `rate -v` on the same file, and for every bad value the issue lists.

mod common;

use std::f64::consts::TAU;
use std::path::Path;

use common::{assert_no_temp_files, hound_read_interleaved, rtfx, write_float_wav};

fn sine(freq: f64, rate: u32, frames: usize, amplitude: f64) -> Vec<f32> {
    (0..frames)
        .map(|n| (amplitude * (TAU * freq * n as f64 / f64::from(rate)).sin()) as f32)
        .collect()
}

/// Planar channels of a WAV, with its spec.
fn read_planar(path: &Path) -> (hound::WavSpec, Vec<Vec<f32>>) {
    let (spec, samples) = hound_read_interleaved(path);
    let channels = usize::from(spec.channels);
    let planar = (0..channels)
        .map(|c| samples.iter().skip(c).step_by(channels).copied().collect())
        .collect();
    (spec, planar)
}

/// Least-squares amplitude and phase of a sine at `freq` in `y[range]` (`rate`), and the
/// largest residual.
fn fit(y: &[f32], freq: f64, rate: u32, range: std::ops::Range<usize>) -> (f64, f64, f64) {
    let w = TAU * freq / f64::from(rate);
    let (mut ss, mut cc, mut sc, mut ys, mut yc) = (0.0, 0.0, 0.0, 0.0, 0.0);
    for n in range.clone() {
        let (s, c, v) = ((w * n as f64).sin(), (w * n as f64).cos(), f64::from(y[n]));
        (ss, cc, sc, ys, yc) = (ss + s * s, cc + c * c, sc + s * c, ys + v * s, yc + v * c);
    }
    let det = ss * cc - sc * sc;
    let (a, b) = ((ys * cc - yc * sc) / det, (yc * ss - ys * sc) / det);
    let residual = range
        .map(|n| (f64::from(y[n]) - a * (w * n as f64).sin() - b * (w * n as f64).cos()).abs())
        .fold(0.0, f64::max);
    (a.hypot(b), b.atan2(a), residual)
}

#[test]
fn rate_conversion_keeps_tones_in_level_and_time_with_the_exact_length() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // 1.5 s + 1 frame of two tones, one per channel.
    let frames = 66_151;
    write_float_wav(
        &d.join("in.wav"),
        44_100,
        &[
            sine(997.0, 44_100, frames, 0.5),
            sine(15_000.0, 44_100, frames, 0.25),
        ],
    );
    let r = rtfx(d, &["render", "in.wav", "out.wav", "--rate", "48000"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let (spec, out) = read_planar(&d.join("out.wav"));
    assert_eq!((spec.sample_rate, spec.channels), (48_000, 2));
    // round(66151 × 48000 / 44100) = round(72000.54) = 72001.
    assert_eq!(out[0].len(), 72_001);
    for (ch, freq, amplitude) in [(0, 997.0, 0.5), (1, 15_000.0, 0.25)] {
        let (a, phase, residual) = fit(&out[ch], freq, 48_000, 4000..68_000);
        let gain_db = 20.0 * (a / amplitude).log10();
        assert!(gain_db.abs() < 0.01, "{freq} Hz: {gain_db} dB");
        assert!(
            phase.abs() < 1e-5,
            "{freq} Hz: phase {phase} rad (output not aligned)"
        );
        assert!(
            residual < amplitude * 1e-6,
            "{freq} Hz: residual {residual}"
        );
    }
    // The whole output is the same for any chunk size, and with the chain after the
    // conversion too (gain 1 makes the two orders equal).
    for args in [
        &["--chunk-size", "1000"][..],
        &["--chunk-size", "777", "--chain-rate", "out", "-e", "gain:1"],
    ] {
        let mut all = vec!["render", "in.wav", "again.wav", "--rate", "48000", "-f"];
        all.extend_from_slice(args);
        let r = rtfx(d, &all);
        assert_eq!(r.code, 0, "{args:?}: {}", r.stderr);
        assert_eq!(read_planar(&d.join("again.wav")).1, out, "{args:?}");
    }
}

#[test]
fn rate_conversion_matches_sox_rate_v() {
    if std::process::Command::new("sox")
        .arg("--version")
        .output()
        .is_err()
    {
        eprintln!("skipped: sox is not installed (tools/setup.sh installs it)");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // Tones up to half the new Nyquist frequency, where both are flat to far below 0.001 dB
    // (near the band edge their filters differ: sox's `-v` passband ends at 0.95, libsoxr's
    // very-high-quality recipe at 0.91).
    let tones: Vec<f32> = (0..48_000)
        .map(|n| {
            [100.0, 997.0, 3000.0, 4000.0]
                .iter()
                .map(|f| (0.1 * (TAU * f * n as f64 / 48_000.0).sin()) as f32)
                .sum()
        })
        .collect();
    write_float_wav(&d.join("in.wav"), 48_000, &[tones]);
    let r = rtfx(d, &["render", "in.wav", "ours.wav", "--rate", "16000"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let sox = std::process::Command::new("sox")
        .current_dir(d)
        .args([
            "in.wav",
            "-e",
            "floating-point",
            "sox.wav",
            "rate",
            "-v",
            "16000",
        ])
        .status()
        .unwrap();
    assert!(sox.success());
    let (_, ours) = read_planar(&d.join("ours.wav"));
    let (_, theirs) = read_planar(&d.join("sox.wav"));
    assert_eq!(ours[0].len(), theirs[0].len());
    // Same algorithm (libsoxr is sox's resampler): they agree to better than -110 dB of the 0.4 peak.
    // Away from the edges, where the abrupt start and end ring differently in the two filters.
    let worst = ours[0][1600..14_400]
        .iter()
        .zip(&theirs[0][1600..14_400])
        .map(|(a, b)| (a - b).abs())
        .fold(0.0f32, f32::max);
    eprintln!("largest difference from sox {worst}");
    assert!(worst < 1e-6, "largest difference from sox {worst}");
}

#[test]
fn channels_are_mixed_down_copied_up_or_remixed() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let left = sine(440.0, 16_000, 16_000, 0.5);
    let right = sine(1000.0, 16_000, 16_000, 0.25);
    write_float_wav(&d.join("st.wav"), 16_000, &[left.clone(), right.clone()]);
    write_float_wav(&d.join("mono.wav"), 16_000, std::slice::from_ref(&left));

    let r = rtfx(d, &["render", "st.wav", "m.wav", "--channels", "1"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let (spec, out) = read_planar(&d.join("m.wav"));
    assert_eq!(spec.channels, 1);
    for (i, y) in out[0].iter().enumerate() {
        assert!((y - (left[i] + right[i]) / 2.0).abs() < 1e-7, "frame {i}");
    }

    let r = rtfx(d, &["render", "mono.wav", "s.wav", "--channels", "2"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(
        read_planar(&d.join("s.wav")).1,
        vec![left.clone(), left.clone()]
    );

    // Swap and a third channel of the difference, through a chain after the conversion.
    let r = rtfx(
        d,
        &[
            "render",
            "st.wav",
            "r.wav",
            "--remix",
            "0,1; 1,0; 1,-1",
            "--chain-rate",
            "out",
            "-e",
            "gain:0.5",
        ],
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    let (spec, out) = read_planar(&d.join("r.wav"));
    assert_eq!(spec.channels, 3);
    for i in 0..left.len() {
        assert!((out[0][i] - 0.5 * right[i]).abs() < 1e-7);
        assert!((out[1][i] - 0.5 * left[i]).abs() < 1e-7);
        assert!((out[2][i] - 0.5 * (left[i] - right[i])).abs() < 1e-7);
    }
}

#[test]
fn the_chain_runs_at_the_rate_chain_rate_names() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write_float_wav(
        &d.join("in.wav"),
        48_000,
        &[sine(1000.0, 48_000, 24_000, 0.5)],
    );
    // A 12 kHz high-pass is fine at the input's 48 kHz but above 16 kHz's Nyquist frequency.
    let spec = ["-e", "hibutterworth:12000"];
    let r = rtfx(
        d,
        &[&["render", "in.wav", "a.wav", "--rate", "16000"][..], &spec].concat(),
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    let r = rtfx(
        d,
        &[
            &[
                "render",
                "in.wav",
                "b.wav",
                "--rate",
                "16000",
                "--chain-rate",
                "out",
            ][..],
            &spec,
        ]
        .concat(),
    );
    assert_eq!(r.code, 1);
    assert!(r.stderr.contains("16000 Hz"), "{}", r.stderr);
    assert!(!d.join("b.wav").exists());
    // The tail is rendered at the chain's rate and converted with the rest: 0.5 s of tail on
    // 0.5 s of input is 1 s at 16 kHz either way.
    for side in ["in", "out"] {
        let r = rtfx(
            d,
            &[
                "render",
                "in.wav",
                "t.wav",
                "-f",
                "--rate",
                "16000",
                "--chain-rate",
                side,
                "--tail",
                "0.5",
                "-e",
                "gain:1",
            ],
        );
        assert_eq!(r.code, 0, "{}", r.stderr);
        assert_eq!(read_planar(&d.join("t.wav")).1[0].len(), 16_000, "{side}");
    }
}

#[test]
fn normalisation_measures_the_converted_output() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let a = sine(100.0, 44_100, 44_100, 0.5);
    let half: Vec<f32> = a.iter().map(|x| 0.5 * x).collect();
    // The mono mix peaks at 0.375 where the input peaks at 0.5: measured before the mix,
    // "peak:-6" would land at -8.5 dBFS.
    write_float_wav(&d.join("in.wav"), 44_100, &[a, half]);
    let r = rtfx(
        d,
        &[
            "render",
            "in.wav",
            "n.wav",
            "--rate",
            "48000",
            "--channels",
            "1",
            "--normalize",
            "peak:-6",
        ],
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    let (spec, out) = read_planar(&d.join("n.wav"));
    assert_eq!((spec.sample_rate, spec.channels), (48_000, 1));
    let peak = out[0].iter().fold(0.0f32, |m, x| m.max(x.abs()));
    assert!((20.0 * peak.log10() + 6.0).abs() < 0.001, "peak {peak}");
}

#[test]
fn a_render_without_effects_converts_and_one_that_changes_nothing_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write_float_wav(&d.join("in.wav"), 22_050, &[sine(440.0, 22_050, 2205, 0.5)]);
    let r = rtfx(d, &["render", "in.wav", "out.flac", "--rate", "44100"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let r = rtfx(d, &["render", "in.wav", "out.flac", "-f"]);
    assert_eq!(r.code, 0, "another format is a conversion: {}", r.stderr);
    let r = rtfx(d, &["render", "in.wav", "same.wav"]);
    assert_eq!(r.code, 2);
    assert!(
        r.stderr.contains("no effects specified") && r.stderr.contains("--rate"),
        "{}",
        r.stderr
    );
    assert!(!d.join("same.wav").exists());
}

#[test]
fn bad_conversion_values_are_usage_errors_that_name_the_fix() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write_float_wav(
        &d.join("in.wav"),
        48_000,
        &[sine(440.0, 48_000, 480, 0.5), sine(440.0, 48_000, 480, 0.5)],
    );
    let before = std::fs::read(d.join("in.wav")).unwrap();
    for (args, code, says) in [
        (&["--rate", "0"][..], 2, "rate"),
        (&["--rate", "10000000"], 2, "1000 to 768000 Hz"),
        (&["--rate=-5"], 2, "--rate"),
        (&["--channels", "0"], 2, "1 to 32"),
        (&["--remix", "1,x"], 2, "'x' in row 1 is not a number"),
        (&["--remix", "1,1;1"], 2, "row 2 has 1 gains"),
        (
            &["--remix", "1,1", "--channels", "2"],
            2,
            "disagrees with --remix",
        ),
        (
            &["--chain-rate", "sideways", "--rate", "8000"],
            2,
            "sideways",
        ),
        // Known only once the file is open: a processing error naming the way out.
        (&["--channels", "3"], 1, "--remix with 3 rows of 2 gains"),
        (&["--remix", "1,1,1"], 1, "give 2 gains in every row"),
    ] {
        let mut all = vec!["render", "in.wav", "out.wav", "-e", "gain:0.5"];
        all.extend_from_slice(args);
        let r = rtfx(d, &all);
        assert_eq!(r.code, code, "{args:?}: {}", r.stderr);
        assert!(r.stderr.contains(says), "{args:?}: {}", r.stderr);
        assert!(!d.join("out.wav").exists(), "{args:?} left an output");
        assert_no_temp_files(d);
    }
    assert_eq!(std::fs::read(d.join("in.wav")).unwrap(), before);
}

#[test]
fn without_libsoxr_a_conversion_names_the_package_and_nothing_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write_float_wav(&d.join("in.wav"), 48_000, &[sine(440.0, 48_000, 4800, 0.5)]);
    let out = assert_cmd::Command::new(common::rtfx_bin())
        .current_dir(d)
        .env("RTFX_SOXR_LIBRARY", "libsoxr-that-is-not-installed.so.0")
        .args(["render", "in.wav", "out.wav", "--rate", "16000"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("needs libsoxr") && stderr.contains("apt-get install libsoxr0"),
        "{stderr}"
    );
    assert!(!d.join("out.wav").exists());
    assert_no_temp_files(d);
    // Renders that convert nothing do not need it.
    let out = assert_cmd::Command::new(common::rtfx_bin())
        .current_dir(d)
        .env("RTFX_SOXR_LIBRARY", "libsoxr-that-is-not-installed.so.0")
        .args([
            "render",
            "in.wav",
            "mono.wav",
            "--channels",
            "1",
            "-e",
            "gain:0.5",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

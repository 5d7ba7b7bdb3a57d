//! `rtfx stats` against reference values: the EBU test signals of Tech 3341 (integrated
//! loudness of a 1 kHz sine) and Tech 3342 (loudness range of two levels), analytic peaks, RMS,
//! DC, crest factor, true peak and clipped samples of constructed signals, and sox's `stats`
//! on the same noise file.

mod common;

use std::f64::consts::PI;
use std::path::Path;

use common::{noise, rtfx, write_float_wav};

const FS: u32 = 48_000;

/// A stereo sine of `freq` at `peak_dbfs` for `seconds`, both channels alike.
fn sine(freq: f64, peak_dbfs: f64, seconds: f64, phase: f64) -> Vec<f32> {
    let a = 10f64.powf(peak_dbfs / 20.0);
    (0..(seconds * f64::from(FS)) as usize)
        .map(|n| (a * (2.0 * PI * freq * n as f64 / f64::from(FS) + phase).sin()) as f32)
        .collect()
}

/// `rtfx stats --json FILE` as a JSON value.
fn stats(dir: &Path, file: &str) -> serde_json::Value {
    let r = rtfx(dir, &["stats", "--json", file]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    serde_json::from_str(r.stdout.trim()).expect("one JSON object")
}

fn num(v: &serde_json::Value) -> f64 {
    v.as_f64().unwrap_or_else(|| panic!("not a number: {v}"))
}

/// EBU Tech 3341 cases 1 and 2 (a stereo 1 kHz sine at −23 and −33 dBFS reads −23.0 and
/// −33.0 LUFS, ±0.1) and Tech 3342 case 1 (20 s at −20 dBFS then 20 s at −30 dBFS: a
/// loudness range of 10 ± 1 LU; its loudest 3 s read −20 LUFS).
#[test]
fn loudness_matches_the_ebu_test_signals() {
    let dir = tempfile::tempdir().expect("temp dir");
    let d = dir.path();
    for level in [-23.0, -33.0] {
        let s = sine(1000.0, level, 20.0, 0.0);
        write_float_wav(&d.join("ebu.wav"), FS, &[s.clone(), s]);
        let v = stats(d, "ebu.wav");
        let lufs = num(&v["integrated_lufs"]);
        assert!((lufs - level).abs() <= 0.1, "{level} dBFS read {lufs} LUFS");
    }
    let mut s = sine(1000.0, -20.0, 20.0, 0.0);
    s.extend(sine(1000.0, -30.0, 20.0, 0.0));
    write_float_wav(&d.join("lra.wav"), FS, &[s.clone(), s]);
    let v = stats(d, "lra.wav");
    let lra = num(&v["loudness_range_lu"]);
    assert!((lra - 10.0).abs() <= 1.0, "LRA {lra}");
    let st = num(&v["short_term_max_lufs"]);
    assert!((st + 20.0).abs() <= 0.1, "short-term max {st}");
    assert!((num(&v["duration_seconds"]) - 40.0).abs() < 1e-9);
}

/// Peaks, RMS, DC, crest factor, true peak and clipped samples of signals whose values are
/// known: a sine plus DC, a sine at fs/4 sampled 45° off its crests (samples at 0.7071 of its
/// true peak), and 16-bit audio with samples at the rails.
#[test]
fn levels_match_their_analytic_values() {
    let dir = tempfile::tempdir().expect("temp dir");
    let d = dir.path();
    // Left: 0.5·sin(997 Hz) + 0.1 (peak 0.6, DC 0.1, RMS √(0.125 + 0.01)); right: fs/4.
    let left: Vec<f32> = sine(997.0, 20.0 * 0.5f64.log10(), 2.0, 0.0)
        .iter()
        .map(|x| x + 0.1)
        .collect();
    // Faded in and out over 10 ms: an abrupt start rings above the sine's own peak.
    let mut right = sine(12_000.0, -3.0, 2.0, PI / 4.0);
    let (len, fade) = (right.len(), 480);
    for i in 0..fade {
        let g = (0.5 - 0.5 * (PI * i as f64 / fade as f64).cos()) as f32;
        right[i] *= g;
        right[len - 1 - i] *= g;
    }
    write_float_wav(&d.join("known.wav"), FS, &[left, right]);
    let v = stats(d, "known.wav");
    let (l, r) = (&v["channels"][0], &v["channels"][1]);
    let db = |x: f64| 20.0 * x.log10();
    assert!((num(&l["peak_dbfs"]) - db(0.6)).abs() < 1e-3, "{l}");
    assert!((num(&l["dc_offset"]) - 0.1).abs() < 1e-4, "{l}");
    assert!(
        (num(&l["rms_dbfs"]) - db(0.135f64.sqrt())).abs() < 1e-3,
        "{l}"
    );
    assert!(
        (num(&l["crest_db"]) - db(0.6 / 0.135f64.sqrt())).abs() < 2e-3,
        "{l}"
    );
    assert!((num(&r["true_peak_dbtp"]) + 3.0).abs() < 0.01, "{r}");
    assert!(
        (num(&r["peak_dbfs"]) - (-3.0 + db(0.5f64.sqrt()))).abs() < 0.01,
        "{r}"
    );
    assert_eq!(num(&v["overall"]["clipped_samples"]), 0.0);

    // 16-bit: three samples at +32767 and two at −32768 clip; 32766 does not.
    let spec = hound::WavSpec {
        channels: 1,
        sample_rate: FS,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut w = hound::WavWriter::create(d.join("clip.wav"), spec).expect("wav");
    for (i, x) in noise(48_000, 9, 0.3).iter().enumerate() {
        let sample = match i {
            100 | 200 | 300 => i16::MAX,
            400 | 500 => i16::MIN,
            600 => 32766,
            _ => (x * 32767.0) as i16,
        };
        w.write_sample(sample).expect("write");
    }
    w.finalize().expect("finalize");
    let v = stats(d, "clip.wav");
    assert_eq!(num(&v["channels"][0]["clipped_samples"]), 5.0, "{v}");
}

/// On a noise file, the peak, RMS and DC per channel agree with sox's `stats` (to its printed
/// precision). Skipped, with a note, where sox is missing (`tools/setup.sh` installs it).
#[test]
fn levels_agree_with_sox_stats() {
    if std::process::Command::new("sox")
        .arg("--version")
        .output()
        .is_err()
    {
        eprintln!("sox not found: skipping the comparison with sox stats");
        return;
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let d = dir.path();
    let left: Vec<f32> = noise(96_000, 3, 0.4).iter().map(|x| x + 0.02).collect();
    write_float_wav(&d.join("noise.wav"), FS, &[left, noise(96_000, 4, 0.2)]);
    let v = stats(d, "noise.wav");
    let out = std::process::Command::new("sox")
        .current_dir(d)
        .args(["noise.wav", "-n", "stats"])
        .output()
        .expect("sox runs");
    let text = String::from_utf8_lossy(&out.stderr);
    // Lines like "Pk lev dB      -7.96     -7.96    -13.98": overall, left, right.
    let row = |name: &str| -> Vec<f64> {
        text.lines()
            .find(|l| l.starts_with(name))
            .unwrap_or_else(|| panic!("sox stats has no {name}: {text}"))[name.len()..]
            .split_whitespace()
            .map(|t| t.parse().expect("a number"))
            .collect()
    };
    let (pk, rms, dc) = (row("Pk lev dB"), row("RMS lev dB"), row("DC offset"));
    for c in 0..2 {
        let ours = &v["channels"][c];
        assert!(
            (num(&ours["peak_dbfs"]) - pk[c + 1]).abs() <= 0.006,
            "{ours} vs {pk:?}"
        );
        assert!(
            (num(&ours["rms_dbfs"]) - rms[c + 1]).abs() <= 0.006,
            "{ours} vs {rms:?}"
        );
        assert!(
            (num(&ours["dc_offset"]) - dc[c + 1]).abs() <= 1e-6,
            "{ours} vs {dc:?}"
        );
    }
    assert!((num(&v["overall"]["peak_dbfs"]) - pk[0]).abs() <= 0.006);
}

/// Missing inputs and directories are usage errors that name the path; the table names the
/// file and every figure.
#[test]
fn bad_input_is_named_and_the_table_reads() {
    let dir = tempfile::tempdir().expect("temp dir");
    let d = dir.path();
    let r = rtfx(d, &["stats", "missing.wav"]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(
        r.stderr.contains("'missing.wav' does not exist"),
        "{}",
        r.stderr
    );
    let r = rtfx(d, &["stats", "."]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stderr.contains("is a directory"), "{}", r.stderr);
    std::fs::write(d.join("junk.wav"), b"not audio at all").expect("write");
    let r = rtfx(d, &["stats", "junk.wav"]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(r.stderr.contains("junk.wav"), "{}", r.stderr);

    let s = sine(1000.0, -20.0, 1.0, 0.0);
    write_float_wav(&d.join("one.wav"), FS, &[s]);
    let r = rtfx(d, &["stats", "one.wav"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    for expected in [
        "File: one.wav (48000 Hz, 1 channel, 1.000 s, 48000 frames)",
        "Peak dBFS",
        "True peak dBTP",
        "RMS dBFS",
        "Crest factor dB",
        "DC offset",
        "Clipped samples",
        "Integrated loudness",
        "Loudness range",
        "Short-term max       -inf LUFS",
    ] {
        assert!(
            r.stdout.contains(expected),
            "no {expected:?} in:\n{}",
            r.stdout
        );
    }
}

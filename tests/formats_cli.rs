//! `rtfx render` into MP3 (LAME), Opus (libopusenc) and AIFF: checked by decoding with an
//! independent decoder (ffmpeg) against the signal rendered, exact lengths (LAME's gapless
//! header), bitrates, tags copied from the input (read back by ffprobe), and the refusals.

mod common;

use std::path::Path;
use std::process::Command;

use common::{assert_no_temp_files, rtfx, write_float_wav};

fn have(tool: &str) -> bool {
    Command::new(tool).arg("-version").output().is_ok()
}

fn tone(frames: usize, freq: f64, rate: f64, amplitude: f64) -> Vec<f32> {
    (0..frames)
        .map(|n| (amplitude * (std::f64::consts::TAU * freq * n as f64 / rate).sin()) as f32)
        .collect()
}

/// Decodes with ffmpeg to planar f32 at the file's own rate (`channels` channels).
fn ffmpeg_decode(path: &Path, channels: usize) -> Vec<Vec<f32>> {
    let out = Command::new("ffmpeg")
        .args(["-v", "error", "-i"])
        .arg(path)
        .args(["-f", "f32le", "-"])
        .output()
        .expect("ffmpeg runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let samples: Vec<f32> = out
        .stdout
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect();
    (0..channels)
        .map(|c| samples.iter().skip(c).step_by(channels).copied().collect())
        .collect()
}

/// The format-level and stream-level tags and the stream's rate, as ffprobe reads them.
fn ffprobe(path: &Path) -> String {
    let out = Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-show_entries",
            "format_tags:stream_tags:stream=sample_rate,channels,codec_name",
            "-of",
            "default=noprint_wrappers=1",
        ])
        .arg(path)
        .output()
        .expect("ffprobe runs");
    String::from_utf8_lossy(&out.stdout).to_ascii_lowercase()
}

/// Checks that ffprobe's text holds the tags `tagged_input` gives.
fn assert_copied_tags(probe: &str) {
    for tag in [
        "title=song title",
        "artist=the artist",
        "album=album x",
        "comment=hello there",
    ] {
        assert!(probe.contains(tag), "{tag} missing from {probe}");
    }
}

/// Checks that `rtfx info` reads `name` back with exactly `frames` frames.
fn assert_rtfx_reads_frames(dir: &Path, name: &str, frames: usize) {
    let r = rtfx(dir, &["info", name]);
    assert!(
        r.stdout.contains(&format!("Frames:      {frames}")),
        "{name}: {}",
        r.stdout
    );
}

/// Signal-to-error ratio in dB of `got` against `want` over `range`.
fn snr_db(got: &[f32], want: &[f32], range: std::ops::Range<usize>) -> f64 {
    let (mut signal, mut error) = (0.0f64, 0.0f64);
    for i in range {
        signal += f64::from(want[i]).powi(2);
        error += f64::from(got[i] - want[i]).powi(2);
    }
    10.0 * (signal / error.max(1e-30)).log10()
}

/// A tagged stereo FLAC of two tones (ffmpeg writes the tags).
fn tagged_input(dir: &Path, rate: u32, frames: usize) -> (Vec<f32>, Vec<f32>) {
    let left = tone(frames, 440.0, f64::from(rate), 0.5);
    let right = tone(frames, 1000.0, f64::from(rate), 0.25);
    write_float_wav(&dir.join("plain.wav"), rate, &[left.clone(), right.clone()]);
    let status = Command::new("ffmpeg")
        .current_dir(dir)
        .args([
            "-v",
            "error",
            "-y",
            "-i",
            "plain.wav",
            "-metadata",
            "title=Song Title",
            "-metadata",
            "artist=The Artist",
            "-metadata",
            "album=Album X",
            "-metadata",
            "comment=hello there",
            "-sample_fmt",
            "s32",
            "tagged.flac",
        ])
        .status()
        .unwrap();
    assert!(status.success());
    (left, right)
}

#[test]
fn mp3_decodes_to_the_signal_with_the_exact_length_bitrate_and_tags() {
    if !have("ffmpeg") {
        eprintln!("skipped: ffmpeg is not installed (tools/setup.sh installs it)");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let frames = 5 * 44_100 + 123;
    let (left, right) = tagged_input(d, 44_100, frames);
    let r = rtfx(d, &["render", "tagged.flac", "vbr.mp3", "-e", "gain:0.5"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let decoded = ffmpeg_decode(&d.join("vbr.mp3"), 2);
    // LAME's header states the delay and padding: the decoder gives back exactly the frames.
    assert_eq!(decoded[0].len(), frames);
    let want = [
        left.iter().map(|x| 0.5 * x).collect::<Vec<_>>(),
        right.iter().map(|x| 0.5 * x).collect::<Vec<_>>(),
    ];
    for c in 0..2 {
        let snr = snr_db(&decoded[c], &want[c], 2000..frames - 2000);
        assert!(
            snr > 30.0,
            "channel {c}: {snr:.1} dB against the rendered signal"
        );
    }
    let tags = ffprobe(&d.join("vbr.mp3"));
    assert_copied_tags(&tags);
    // rtfx reads it back at the same length too.
    assert_rtfx_reads_frames(d, "vbr.mp3", frames);

    // Constant bitrate: the size is the bitrate's, within a frame or two and the header.
    let r = rtfx(
        d,
        &[
            "render",
            "tagged.flac",
            "cbr.mp3",
            "-e",
            "gain:0.5",
            "--bitrate",
            "128",
            "--no-tags",
        ],
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    let size = std::fs::metadata(d.join("cbr.mp3")).unwrap().len() as f64;
    let expected = 128_000.0 / 8.0 * frames as f64 / 44_100.0;
    assert!(
        (size / expected - 1.0).abs() < 0.02,
        "{size} bytes for {expected:.0}"
    );
    let tags = ffprobe(&d.join("cbr.mp3"));
    assert!(!tags.contains("song title"), "--no-tags kept {tags}");
}

#[test]
fn opus_keeps_the_signal_and_the_tags_and_says_48_khz() {
    if !have("ffmpeg") {
        eprintln!("skipped: ffmpeg is not installed (tools/setup.sh installs it)");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let frames = 3 * 48_000;
    let (left, right) = tagged_input(d, 48_000, frames);
    let r = rtfx(
        d,
        &[
            "render",
            "tagged.flac",
            "out.opus",
            "-e",
            "gain:0.5",
            "--bitrate",
            "160",
        ],
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(!r.stderr.contains("Opus runs at 48 kHz"), "{}", r.stderr);
    let probe = ffprobe(&d.join("out.opus"));
    assert!(
        probe.contains("codec_name=opus") && probe.contains("sample_rate=48000"),
        "{probe}"
    );
    assert_copied_tags(&probe);
    let decoded = ffmpeg_decode(&d.join("out.opus"), 2);
    // The header's pre-skip and end trimming give back the input's length at 48 kHz.
    assert_eq!(decoded[0].len(), frames);
    for (c, x) in [left, right].iter().enumerate() {
        let want: Vec<f32> = x.iter().map(|v| 0.5 * v).collect();
        let snr = snr_db(&decoded[c], &want, 4800..frames - 4800);
        assert!(
            snr > 20.0,
            "channel {c}: {snr:.1} dB against the rendered signal"
        );
    }
    // Another rate: said once, and the stream still decodes at 48 kHz to the same duration.
    write_float_wav(
        &d.join("at44.wav"),
        44_100,
        &[tone(44_100, 440.0, 44_100.0, 0.5)],
    );
    let r = rtfx(d, &["render", "at44.wav", "at44.opus", "-e", "gain:1"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(
        r.stderr
            .contains("Opus runs at 48 kHz: libopusenc resampled the 44100 Hz"),
        "{}",
        r.stderr
    );
    assert_eq!(ffmpeg_decode(&d.join("at44.opus"), 1)[0].len(), 48_000);
}

#[test]
fn ogg_vorbis_keeps_the_signal_length_and_tags_and_the_same_bytes_each_time() {
    if !have("ffmpeg") {
        eprintln!("skipped: ffmpeg is not installed (tools/setup.sh installs it)");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let frames = 2 * 44_100 + 7;
    let (left, right) = tagged_input(d, 44_100, frames);
    let r = rtfx(
        d,
        &[
            "render",
            "tagged.flac",
            "out.ogg",
            "-e",
            "gain:0.5",
            "--quality",
            "6",
        ],
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    let probe = ffprobe(&d.join("out.ogg"));
    assert!(probe.contains("codec_name=vorbis"), "{probe}");
    assert_copied_tags(&probe);
    let decoded = ffmpeg_decode(&d.join("out.ogg"), 2);
    assert_eq!(decoded[0].len(), frames);
    for (c, x) in [left, right].iter().enumerate() {
        let want: Vec<f32> = x.iter().map(|v| 0.5 * v).collect();
        let snr = snr_db(&decoded[c], &want, 2000..frames - 2000);
        assert!(
            snr > 25.0,
            "channel {c}: {snr:.1} dB against the rendered signal"
        );
    }
    assert_rtfx_reads_frames(d, "out.ogg", frames);
    // A fixed stream serial: the same command writes the same bytes.
    let r = rtfx(
        d,
        &[
            "render",
            "tagged.flac",
            "again.ogg",
            "-e",
            "gain:0.5",
            "--quality",
            "6",
        ],
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(
        std::fs::read(d.join("out.ogg")).unwrap(),
        std::fs::read(d.join("again.ogg")).unwrap()
    );
}

#[test]
fn aiff_holds_the_exact_samples_big_endian_with_tags() {
    if !have("ffmpeg") {
        eprintln!("skipped: ffmpeg is not installed (tools/setup.sh installs it)");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let frames = 22_051;
    let (left, right) = tagged_input(d, 22_050, frames);
    let r = rtfx(
        d,
        &[
            "render",
            "tagged.flac",
            "out.aiff",
            "-e",
            "gain:0.5",
            "--no-dither",
        ],
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    let decoded = ffmpeg_decode(&d.join("out.aiff"), 2);
    assert_eq!(decoded[0].len(), frames);
    // 24-bit without dither: each sample is the rendered one on the 24-bit grid (rounded in
    // f32 by rtfx, so within one step of f64 rounding).
    for (c, x) in [left, right].iter().enumerate() {
        for i in 0..frames {
            let want = (f64::from(0.5 * x[i]) * 8_388_608.0).round() / 8_388_608.0;
            assert!(
                (f64::from(decoded[c][i]) - want).abs() <= 1.0 / 8_388_608.0,
                "channel {c} frame {i}: {} vs {want}",
                decoded[c][i]
            );
        }
    }
    let probe = ffprobe(&d.join("out.aiff"));
    assert!(probe.contains("sample_rate=22050"), "{probe}");
    assert!(
        probe.contains("title=song title") && probe.contains("the artist"),
        "{probe}"
    );
    // rtfx reads it back.
    assert_rtfx_reads_frames(d, "out.aiff", frames);
}

#[test]
fn lossy_options_and_layouts_a_format_cannot_take_are_refused_with_the_fix() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let mono = tone(9600, 440.0, 96_000.0, 0.5);
    write_float_wav(&d.join("hi.wav"), 96_000, std::slice::from_ref(&mono));
    write_float_wav(
        &d.join("three.wav"),
        48_000,
        &[mono.clone(), mono.clone(), mono.clone()],
    );
    write_float_wav(&d.join("in.wav"), 48_000, std::slice::from_ref(&mono));
    for (args, code, says) in [
        (
            &["in.wav", "o.mp3", "--bitrate", "100"][..],
            2,
            "no 100 kbit/s",
        ),
        (&["in.wav", "o.mp3", "--quality", "12"], 2, "0 (best) to 9"),
        (&["in.wav", "o.mp3", "--subtype", "pcm16"], 2, "lossy"),
        (&["in.wav", "o.flac", "--quality", "3"], 2, "not lossy"),
        (&["in.wav", "o.opus", "--quality", "3"], 2, "--bitrate KBPS"),
        (&["in.wav", "o.opus", "--bitrate", "600"], 2, "6 to 510"),
        (
            &["in.wav", "o.ogg", "--quality", "11"],
            2,
            "-1 (smallest) to 10",
        ),
        (&["in.wav", "o.aiff", "--subtype", "float"], 2, "pcm24"),
        (
            &["in.wav", "o.mp3", "--quality", "2", "--bitrate", "128"],
            2,
            "cannot be used with",
        ),
        (&["hi.wav", "o.mp3"], 1, "add --rate 48000"),
        (&["three.wav", "o.mp3"], 1, "--channels 1"),
        (&["three.wav", "o.opus"], 1, "--channels 1"),
    ] {
        let mut all = vec!["render"];
        all.extend_from_slice(args);
        all.extend_from_slice(&["-e", "gain:0.5"]);
        let r = rtfx(d, &all);
        assert_eq!(r.code, code, "{args:?}: {}", r.stderr);
        assert!(r.stderr.contains(says), "{args:?}: {}", r.stderr);
        assert!(!d.join(args[1]).exists(), "{args:?} left an output");
        assert_no_temp_files(d);
    }
    // 96 kHz to MP3 works once converted.
    let r = rtfx(
        d,
        &[
            "render", "hi.wav", "ok.mp3", "--rate", "48000", "-e", "gain:0.5",
        ],
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    // Without LAME, MP3 output names the package.
    let out = assert_cmd::Command::new(common::rtfx_bin())
        .current_dir(d)
        .env("RTFX_LAME_LIBRARY", "libmp3lame-missing.so.0")
        .args(["render", "in.wav", "x.mp3", "-e", "gain:0.5"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("apt-get install libmp3lame0"), "{stderr}");
    assert!(!d.join("x.mp3").exists());
    assert_no_temp_files(d);
}

#[test]
fn flac_is_as_small_as_sox_makes_it_and_decodes_to_the_same_samples_without_libflac() {
    if Command::new("sox").arg("--version").output().is_err() {
        eprintln!("skipped: sox is not installed (tools/setup.sh installs it)");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // 10 s of stereo pink noise, 24-bit, through the guitar chain's filters.
    let status = Command::new("sox")
        .current_dir(d)
        .args([
            "-n",
            "-r",
            "48000",
            "-c",
            "2",
            "-b",
            "24",
            "in.wav",
            "synth",
            "10",
            "pinknoise",
            "gain",
            "-6",
        ])
        .status()
        .unwrap();
    assert!(status.success());
    let chain = [
        "-e",
        "hibutterworth:80,order=2",
        "-e",
        "lobutterworth:8000,order=4",
        "-e",
        "gain:1.5",
    ];
    let r = rtfx(
        d,
        &[&["render", "in.wav", "ours.flac"][..], &chain].concat(),
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(!r.stderr.contains("built-in encoder"), "{}", r.stderr);
    let status = Command::new("sox")
        .current_dir(d)
        .args([
            "in.wav", "sox.flac", "highpass", "80", "0.7071q", "lowpass", "8000", "0.5412q",
            "lowpass", "8000", "1.3066q", "vol", "1.5",
        ])
        .status()
        .unwrap();
    assert!(status.success());
    let size = |name: &str| std::fs::metadata(d.join(name)).unwrap().len() as f64;
    let ratio = size("ours.flac") / size("sox.flac");
    assert!(
        ratio < 1.01,
        "rtfx's FLAC is {:.2} % larger than sox's",
        (ratio - 1.0) * 100.0
    );

    // Without libFLAC: the built-in encoder, a warning that says so, and the same samples.
    let out = assert_cmd::Command::new(common::rtfx_bin())
        .current_dir(d)
        .env("RTFX_FLAC_LIBRARY", "libFLAC-missing.so")
        .args([&["render", "in.wav", "builtin.flac"][..], &chain].concat())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains("built-in encoder") && stderr.contains("libflac12"),
        "{stderr}"
    );
    // Each decodes (rtfx checks the MD5 in STREAMINFO) to the same samples.
    for name in ["ours.flac", "builtin.flac"] {
        let r = rtfx(
            d,
            &["render", name, &format!("{name}.wav"), "--subtype", "pcm24"],
        );
        assert_eq!(r.code, 0, "{name}: {}", r.stderr);
    }
    assert_eq!(
        std::fs::read(d.join("ours.flac.wav")).unwrap(),
        std::fs::read(d.join("builtin.flac.wav")).unwrap()
    );
    assert!(size("builtin.flac") > size("ours.flac"));
}

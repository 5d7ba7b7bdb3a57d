//! `rtfx render` and `rtfx info` as a user runs them: the bad-input checklist items 1–21 of
//! expectations.md (exit code, a message naming the file or parameter and the fix, nothing
//! lost), batch mode, progress output and determinism.

mod common;

use std::path::{Path, PathBuf};

use common::{assert_no_temp_files, hound_read_interleaved, listing, noise, rtfx, write_float_wav};

fn write_wav(path: &Path, rate: u32, planar: &[Vec<f32>]) {
    write_float_wav(path, rate, planar);
}

fn read_wav(path: &Path) -> (hound::WavSpec, Vec<f32>) {
    hound_read_interleaved(path)
}

/// A directory with `in.wav`: 0.5 s of stereo noise at 48 kHz.
fn setup() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().expect("temp dir");
    let input = dir.path().join("in.wav");
    write_wav(
        &input,
        48_000,
        &[noise(24_000, 1, 0.5), noise(24_000, 2, 0.5)],
    );
    (dir, input)
}

#[test]
fn render_writes_the_chain_output_and_reports_it() {
    let (dir, _) = setup();
    let r = rtfx(
        dir.path(),
        &["render", "in.wav", "out.wav", "-e", "gain:0.5"],
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stderr.contains("✓ in.wav → out.wav"), "{}", r.stderr);
    let (_, input) = read_wav(&dir.path().join("in.wav"));
    let (spec, out) = read_wav(&dir.path().join("out.wav"));
    assert_eq!(spec.sample_format, hound::SampleFormat::Float);
    assert_eq!(out.len(), input.len());
    assert!(out.iter().zip(&input).all(|(o, i)| *o == i * 0.5));
}

#[test]
fn help_documents_the_exit_codes() {
    let (dir, _) = setup();
    let r = rtfx(dir.path(), &["render", "--help"]);
    assert_eq!(r.code, 0);
    let text = r.stdout.split_whitespace().collect::<Vec<_>>().join(" ");
    for part in [
        "Exit codes",
        "2 usage error",
        "3 some files of a batch failed",
    ] {
        assert!(text.contains(part), "--help lacks '{part}':\n{}", r.stdout);
    }
}

// 1. Missing input, directory input.
#[test]
fn missing_or_directory_input_is_a_usage_error() {
    let (dir, _) = setup();
    let r = rtfx(
        dir.path(),
        &["render", "nope.wav", "out.wav", "-e", "gain:1"],
    );
    assert_eq!(r.code, 2);
    assert!(
        r.stderr.contains("'nope.wav' does not exist"),
        "{}",
        r.stderr
    );
    std::fs::create_dir(dir.path().join("sub")).unwrap();
    let r = rtfx(dir.path(), &["render", "sub", "out.wav", "-e", "gain:1"]);
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("'sub' is a directory"), "{}", r.stderr);
    assert!(!dir.path().join("out.wav").exists());
}

// 2. Empty, cut mid-header, lying about its length.
#[test]
fn empty_truncated_and_lying_files_fail_without_output() {
    let (dir, input) = setup();
    let bytes = std::fs::read(&input).unwrap();
    std::fs::write(dir.path().join("empty.wav"), b"").unwrap();
    std::fs::write(dir.path().join("head.wav"), &bytes[..30]).unwrap();
    std::fs::write(dir.path().join("cut.wav"), &bytes[..bytes.len() / 2]).unwrap();
    for (name, says) in [
        ("empty.wav", "is empty (0 bytes)"),
        ("head.wav", "not a valid WAV file"),
        ("cut.wav", "is truncated"),
    ] {
        let r = rtfx(dir.path(), &["render", name, "out.wav", "-e", "gain:1"]);
        assert_eq!(r.code, 1, "{name}: {}", r.stderr);
        assert!(r.stderr.contains(says), "{name}: {}", r.stderr);
        assert!(r.stderr.contains(name), "{}", r.stderr);
        assert!(!dir.path().join("out.wav").exists());
        assert_no_temp_files(dir.path());
    }
    let r = rtfx(
        dir.path(),
        &[
            "render",
            "cut.wav",
            "out.wav",
            "-e",
            "gain:1",
            "--allow-truncated",
        ],
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    let (_, out) = read_wav(&dir.path().join("out.wav"));
    let data_start = bytes.windows(4).position(|w| w == b"data").unwrap() + 8;
    assert_eq!(out.len(), (bytes.len() / 2 - data_start) / 8 * 2);
}

// 3. Not audio.
#[test]
fn non_audio_input_names_the_detected_format() {
    let (dir, _) = setup();
    std::fs::write(dir.path().join("notes.wav"), "just some text\n").unwrap();
    std::fs::write(dir.path().join("pic.flac"), b"\x89PNG\r\n\x1a\n0000000000").unwrap();
    for (name, detected) in [
        ("notes.wav", "detected: text"),
        ("pic.flac", "detected: a PNG image"),
    ] {
        let r = rtfx(dir.path(), &["render", name, "out.wav", "-e", "gain:1"]);
        assert_eq!(r.code, 1, "{}", r.stderr);
        assert!(r.stderr.contains(detected), "{}", r.stderr);
        assert!(r.stderr.contains("convert the file first"), "{}", r.stderr);
    }
}

/// A 16-bit PCM WAV header with the given fields and `frames` frames of silence.
fn raw_wav(channels: u16, rate: u32, frames: u32) -> Vec<u8> {
    let block = u32::from(channels) * 2;
    let data = frames * block;
    let mut h = Vec::new();
    h.extend_from_slice(b"RIFF");
    h.extend_from_slice(&(36 + data).to_le_bytes());
    h.extend_from_slice(b"WAVEfmt ");
    h.extend_from_slice(&16u32.to_le_bytes());
    h.extend_from_slice(&1u16.to_le_bytes());
    h.extend_from_slice(&channels.to_le_bytes());
    h.extend_from_slice(&rate.to_le_bytes());
    h.extend_from_slice(&rate.wrapping_mul(block).to_le_bytes());
    h.extend_from_slice(&(block as u16).to_le_bytes());
    h.extend_from_slice(&16u16.to_le_bytes());
    h.extend_from_slice(b"data");
    h.extend_from_slice(&data.to_le_bytes());
    h.resize(h.len() + data as usize, 0);
    h
}

// 4. Channel counts and rates outside the documented limits.
#[test]
fn impossible_channel_counts_and_rates_are_refused() {
    let (dir, _) = setup();
    for (channels, rate, says) in [
        (0u16, 48_000u32, "has 0 channels"),
        (33, 48_000, "has 33 channels"),
        (2, 0, "sample rate of 0 Hz"),
        (2, 1, "sample rate of 1 Hz"),
        (2, 800_000, "sample rate of 800000 Hz"),
    ] {
        std::fs::write(dir.path().join("odd.wav"), raw_wav(channels, rate, 10)).unwrap();
        let r = rtfx(
            dir.path(),
            &["render", "odd.wav", "out.wav", "-e", "gain:1"],
        );
        assert_eq!(r.code, 1, "{says}: {}", r.stderr);
        assert!(r.stderr.contains(says), "{}", r.stderr);
        assert!(!dir.path().join("out.wav").exists());
    }
}

// 5. Zero frames.
#[test]
fn an_empty_stream_gives_a_valid_empty_output_or_is_refused_on_request() {
    let (dir, _) = setup();
    std::fs::write(dir.path().join("zero.wav"), raw_wav(2, 48_000, 0)).unwrap();
    let r = rtfx(
        dir.path(),
        &[
            "render",
            "zero.wav",
            "out.wav",
            "-e",
            "gain:2",
            "--normalize",
            "peak:-1",
        ],
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    let (spec, out) = read_wav(&dir.path().join("out.wav"));
    assert_eq!((spec.channels, out.len()), (2, 0));
    let r = rtfx(
        dir.path(),
        &[
            "render",
            "zero.wav",
            "out2.wav",
            "-e",
            "gain:2",
            "--no-empty",
        ],
    );
    assert_eq!(r.code, 1);
    assert!(r.stderr.contains("holds no audio frames"), "{}", r.stderr);
}

// 6. Silence with --normalize.
#[test]
fn silence_is_left_at_unity_with_a_warning() {
    let (dir, _) = setup();
    write_wav(&dir.path().join("quiet.wav"), 48_000, &[vec![0.0; 4800]]);
    let r = rtfx(
        dir.path(),
        &[
            "render",
            "quiet.wav",
            "out.wav",
            "-e",
            "gain:1",
            "--normalize",
            "rms:-20",
        ],
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(
        r.stderr.contains("cannot normalize silence"),
        "{}",
        r.stderr
    );
    let (_, out) = read_wav(&dir.path().join("out.wav"));
    assert!(out.iter().all(|&x| x == 0.0));
}

// 7. NaN and Inf input.
#[test]
fn nan_input_is_replaced_and_counted_or_fails_with_strict() {
    let (dir, _) = setup();
    let mut samples = noise(4800, 3, 0.5);
    samples[100] = f32::NAN;
    samples[200] = f32::INFINITY;
    write_wav(&dir.path().join("nan.wav"), 48_000, &[samples]);
    let r = rtfx(
        dir.path(),
        &["render", "nan.wav", "out.wav", "-e", "lobutterworth:1000"],
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(
        r.stderr.contains("2 NaN/Inf input samples were replaced"),
        "{}",
        r.stderr
    );
    let (_, out) = read_wav(&dir.path().join("out.wav"));
    assert!(out.iter().all(|x| x.is_finite()));
    let r = rtfx(
        dir.path(),
        &["render", "nan.wav", "out2.wav", "-e", "gain:1", "--strict"],
    );
    assert_eq!(r.code, 1);
    assert!(
        r.stderr.contains("contains NaN or Inf samples"),
        "{}",
        r.stderr
    );
    assert!(!dir.path().join("out2.wav").exists());
    assert_no_temp_files(dir.path());
}

// 8 and 13. Float above 1.0; clipping reported only for integer output; dither by default.
#[test]
fn hot_float_input_clips_only_when_converted_to_integers() {
    let (dir, _) = setup();
    write_wav(
        &dir.path().join("hot.wav"),
        48_000,
        &[vec![1.5, -0.25, 0.1, -1.7]],
    );
    let r = rtfx(dir.path(), &["render", "hot.wav", "f.wav", "-e", "gain:1"]);
    assert_eq!(r.code, 0);
    assert!(!r.stderr.contains("clipped"), "{}", r.stderr);
    assert_eq!(
        read_wav(&dir.path().join("f.wav")).1,
        vec![1.5, -0.25, 0.1, -1.7]
    );
    let r = rtfx(
        dir.path(),
        &[
            "render",
            "hot.wav",
            "i.wav",
            "-e",
            "gain:1",
            "--subtype",
            "pcm16",
        ],
    );
    assert_eq!(r.code, 0);
    assert!(
        r.stderr
            .contains("2 samples clipped when converting to PCM_16"),
        "{}",
        r.stderr
    );
    let (spec, out) = read_wav(&dir.path().join("i.wav"));
    assert_eq!(spec.bits_per_sample, 16);
    assert!(
        out[0] > 0.999 && out[3] == -1.0,
        "clamped, not wrapped: {out:?}"
    );
}

#[test]
fn integer_output_is_dithered_unless_asked_not_to() {
    let (dir, _) = setup();
    let quiet: Vec<f32> = noise(48_000, 9, 1e-5);
    write_wav(&dir.path().join("low.wav"), 48_000, &[quiet]);
    for (name, extra) in [("d.wav", None), ("n.wav", Some("--no-dither"))] {
        let mut args = vec![
            "render",
            "low.wav",
            name,
            "-e",
            "gain:1",
            "--subtype",
            "pcm16",
        ];
        args.extend(extra);
        assert_eq!(rtfx(dir.path(), &args).code, 0);
    }
    let (_, d) = read_wav(&dir.path().join("d.wav"));
    let (_, n) = read_wav(&dir.path().join("n.wav"));
    // ±0.33 LSB noise rounds to silence without dither, and survives as noise with it.
    assert!(n.iter().all(|&x| x == 0.0));
    assert!(d.iter().filter(|&&x| x != 0.0).count() > 1000);
}

// 9. Output is the input, also through ./ and symlinks.
#[test]
fn the_input_is_never_overwritten() {
    let (dir, input) = setup();
    let before = std::fs::read(&input).unwrap();
    std::os::unix::fs::symlink("in.wav", dir.path().join("link.wav")).unwrap();
    for out in ["in.wav", "./in.wav", "link.wav"] {
        let r = rtfx(
            dir.path(),
            &["render", "in.wav", out, "-e", "gain:0.1", "--force"],
        );
        assert_eq!(r.code, 2, "{out}: {}", r.stderr);
        assert!(r.stderr.contains("is the input file"), "{}", r.stderr);
    }
    assert_eq!(std::fs::read(&input).unwrap(), before);
}

// 10. Existing output.
#[test]
fn an_existing_output_needs_force_and_is_replaced_atomically() {
    let (dir, _) = setup();
    std::fs::write(dir.path().join("out.wav"), b"keep me").unwrap();
    let r = rtfx(dir.path(), &["render", "in.wav", "out.wav", "-e", "gain:1"]);
    assert_eq!(r.code, 2);
    assert!(
        r.stderr.contains("already exists") && r.stderr.contains("--force"),
        "{}",
        r.stderr
    );
    assert_eq!(
        std::fs::read(dir.path().join("out.wav")).unwrap(),
        b"keep me"
    );
    // A failing render with --force keeps the old output too.
    std::fs::write(dir.path().join("bad.wav"), "text").unwrap();
    let r = rtfx(
        dir.path(),
        &["render", "bad.wav", "out.wav", "-e", "gain:1", "--force"],
    );
    assert_eq!(r.code, 1);
    assert_eq!(
        std::fs::read(dir.path().join("out.wav")).unwrap(),
        b"keep me"
    );
    let r = rtfx(
        dir.path(),
        &["render", "in.wav", "out.wav", "-e", "gain:1", "-y"],
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(read_wav(&dir.path().join("out.wav")).1.len(), 48_000);
    assert_no_temp_files(dir.path());
}

// 11. Missing output directory.
#[test]
fn a_missing_output_directory_is_named() {
    let (dir, _) = setup();
    let r = rtfx(
        dir.path(),
        &["render", "in.wav", "no/such/out.wav", "-e", "gain:1"],
    );
    assert_eq!(r.code, 2);
    assert!(
        r.stderr.contains("'no/such' does not exist"),
        "{}",
        r.stderr
    );
    assert!(r.stderr.contains("mkdir -p"), "{}", r.stderr);
}

// 12. Unknown output extension.
#[test]
fn an_unknown_output_extension_is_refused() {
    let (dir, _) = setup();
    let r = rtfx(
        dir.path(),
        &["render", "in.wav", "song.m4a", "-e", "gain:1"],
    );
    assert_eq!(r.code, 2);
    assert!(
        r.stderr.contains("unsupported extension '.m4a'"),
        "{}",
        r.stderr
    );
    assert!(!dir.path().join("song.m4a").exists());
}

// 14. Batch with failures and collisions.
#[test]
fn a_batch_keeps_going_reports_and_exits_3_when_some_files_fail() {
    let (dir, _) = setup();
    let d = dir.path();
    std::fs::create_dir(d.join("src")).unwrap();
    std::fs::create_dir(d.join("out")).unwrap();
    for name in ["a.wav", "c.wav"] {
        write_wav(&d.join("src").join(name), 44_100, &[noise(4410, 5, 0.3)]);
    }
    std::fs::write(d.join("src/b.wav"), "broken").unwrap();
    let r = rtfx(
        d,
        &[
            "render",
            "src/*.wav",
            "-O",
            "out",
            "-e",
            "gain:0.5",
            "-j",
            "2",
        ],
    );
    assert_eq!(r.code, 3, "{}", r.stderr);
    assert!(r.stderr.contains("2 of 3 files rendered"), "{}", r.stderr);
    assert!(r.stderr.contains("1 failed"), "{}", r.stderr);
    assert!(r.stderr.contains("✗ src/b.wav"), "{}", r.stderr);
    assert_eq!(listing(&d.join("out")), vec!["a.wav", "c.wav"]);

    // A missing --output-dir is created, with its parents.
    let r = rtfx(
        d,
        &["render", "src/a.wav", "-O", "out2/deep", "-e", "gain:1"],
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(listing(&d.join("out2/deep")), vec!["a.wav"]);
    // One that cannot be created (under a file) is named, and nothing is rendered.
    let r = rtfx(
        d,
        &["render", "src/a.wav", "-O", "src/a.wav/sub", "-e", "gain:1"],
    );
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(
        r.stderr
            .contains("cannot create the output directory 'src/a.wav/sub'"),
        "{}",
        r.stderr
    );

    std::fs::create_dir(d.join("other")).unwrap();
    write_wav(&d.join("other/a.wav"), 44_100, &[noise(441, 5, 0.3)]);
    std::fs::create_dir(d.join("out3")).unwrap();
    let r = rtfx(
        d,
        &[
            "render",
            "src/a.wav",
            "other/a.wav",
            "-O",
            "out3",
            "-e",
            "gain:1",
        ],
    );
    assert_eq!(r.code, 2);
    assert!(
        r.stderr.contains("would both be written to"),
        "{}",
        r.stderr
    );
    assert!(listing(&d.join("out3")).is_empty());

    std::fs::create_dir(d.join("out4")).unwrap();
    let r = rtfx(
        d,
        &[
            "render",
            "src/b.wav",
            "src/c.wav",
            "-O",
            "out4",
            "-e",
            "gain:1",
            "--fail-fast",
        ],
    );
    assert_eq!(r.code, 3);
    assert!(r.stderr.contains("1 skipped (--fail-fast)"), "{}", r.stderr);
    assert!(listing(&d.join("out4")).is_empty());
}

// 15. Outputs larger than WAV can hold are refused before writing.
#[test]
fn an_output_too_large_for_wav_is_refused_up_front() {
    let (dir, _) = setup();
    // A sparse 16-bit stereo WAV of 2^29 frames (2 GiB of data, no disk used): as float
    // output it would need 4 GiB.
    let frames: u32 = 1 << 29;
    let mut header = raw_wav(2, 48_000, 0);
    let data = frames * 4;
    header[4..8].copy_from_slice(&(36 + data).to_le_bytes());
    header[40..44].copy_from_slice(&data.to_le_bytes());
    let path = dir.path().join("huge.wav");
    std::fs::write(&path, &header).unwrap();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&path)
        .unwrap()
        .set_len(44 + u64::from(data))
        .unwrap();
    let r = rtfx(
        dir.path(),
        &["render", "huge.wav", "out.wav", "-e", "gain:1"],
    );
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(
        r.stderr.contains("too large for a WAV file"),
        "{}",
        r.stderr
    );
    assert!(r.stderr.contains("FLAC"), "{}", r.stderr);
    assert!(!dir.path().join("out.wav").exists());
    assert_no_temp_files(dir.path());
}

// 16, 17, 19. Chain errors on the command line.
#[test]
fn chain_mistakes_are_usage_errors_with_suggestions() {
    let (dir, _) = setup();
    for (spec, says) in [
        ("lowpas:1000,q=0.7", "lowpass"),
        ("lowpass:1000,q=0.7,cutof=3", "cutoff"),
        ("lowpass:-5,q=0.7", "cutoff"),
        ("lowpass:1000,q=0", "'q'"),
        ("lobutterworth:1000,order=0", "order"),
        ("gain:nan", "gain"),
        ("reverb:room_size=inf", "room_size"),
    ] {
        let r = rtfx(dir.path(), &["render", "in.wav", "out.wav", "-e", spec]);
        assert_eq!(r.code, 2, "{spec}: {}", r.stderr);
        assert!(r.stderr.contains(says), "{spec}: {}", r.stderr);
        assert!(!dir.path().join("out.wav").exists());
    }
    let r = rtfx(dir.path(), &["render", "in.wav", "out.wav"]);
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("no effects specified"), "{}", r.stderr);
}

// 18. Cutoff at or above Nyquist for this file.
#[test]
fn a_cutoff_above_nyquist_for_the_file_is_an_error() {
    let (dir, _) = setup();
    let r = rtfx(
        dir.path(),
        &["render", "in.wav", "out.wav", "-e", "hibutterworth:24000"],
    );
    assert_eq!(r.code, 1);
    assert!(
        r.stderr
            .contains("must be below the Nyquist frequency (24000 Hz)"),
        "{}",
        r.stderr
    );
    assert!(
        r.stderr
            .contains("reduce the cutoff or use a higher sample rate")
    );
}

// 16 and 20. Broken chain files.
#[test]
fn broken_chain_files_fail_cleanly() {
    let (dir, _) = setup();
    let d = dir.path();
    let mut rng = rtfx::dsp::noise::Noise::new(12345);
    let random: Vec<u8> = (0..4096).map(|_| (rng.next_u64() >> 56) as u8).collect();
    std::fs::write(d.join("random.toml"), random).unwrap();
    std::fs::write(d.join("empty.toml"), "").unwrap();
    std::fs::write(d.join("cut.toml"), "[[effects]]\nname = \"gai").unwrap();
    std::fs::write(
        d.join("typo.toml"),
        "[[effects]]\nname = \"lobutterworth\"\ncutoff = 1000\n\n[[effects]]\nname = \"gain\"\ngian = 2\n",
    )
    .unwrap();
    std::fs::write(
        d.join("future.toml"),
        "version = 99\n[[effects]]\nname = \"gain\"\n",
    )
    .unwrap();
    for (file, says) in [
        ("random.toml", "random.toml"),
        ("empty.toml", "[[effects]]"),
        ("cut.toml", "cut.toml"),
        ("typo.toml", "line 7"),
        ("future.toml", "version"),
        ("missing.toml", "cannot read chain file 'missing.toml'"),
    ] {
        let r = rtfx(d, &["render", "in.wav", "out.wav", "--chain", file]);
        assert_eq!(r.code, 2, "{file}: {}", r.stderr);
        assert!(r.stderr.contains(says), "{file}: {}", r.stderr);
        assert!(!d.join("out.wav").exists());
    }
    let r = rtfx(d, &["render", "in.wav", "out.wav", "--chain", "typo.toml"]);
    assert!(r.stderr.contains("gain"), "{}", r.stderr);
}

// 21 and C15. The same command gives the same bytes; a TOML chain equals the -e chain.
#[test]
fn rendering_is_deterministic_and_toml_equals_the_command_line() {
    let (dir, _) = setup();
    let d = dir.path();
    std::fs::write(
        d.join("chain.toml"),
        "[[effects]]\nname = \"hibutterworth\"\ncutoff = 80\norder = 2\n\n[[effects]]\nname = \"reverb\"\nroom_size = 0.4\n",
    )
    .unwrap();
    let args = |out: &'static str| {
        vec![
            "render",
            "in.wav",
            out,
            "-e",
            "hibutterworth:80,order=2",
            "-e",
            "reverb:room_size=0.4",
            "--subtype",
            "pcm24",
            "--tail",
            "auto",
        ]
    };
    assert_eq!(rtfx(d, &args("a.wav")).code, 0);
    assert_eq!(rtfx(d, &args("b.wav")).code, 0);
    let r = rtfx(
        d,
        &[
            "render",
            "in.wav",
            "c.wav",
            "--chain",
            "chain.toml",
            "--subtype",
            "pcm24",
            "--tail",
            "auto",
        ],
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    let a = std::fs::read(d.join("a.wav")).unwrap();
    assert_eq!(a, std::fs::read(d.join("b.wav")).unwrap());
    assert_eq!(a, std::fs::read(d.join("c.wav")).unwrap());
}

#[test]
fn flac_output_and_info() {
    let (dir, _) = setup();
    let r = rtfx(
        dir.path(),
        &["render", "in.wav", "out.flac", "-e", "gain:0.5"],
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    let r = rtfx(dir.path(), &["info", "out.flac"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    for line in [
        "Format:      FLAC",
        "Sample Rate: 48000 Hz",
        "Channels:    2",
        "Duration:    0.50 s",
        "Frames:      24000",
        "Subtype:     PCM_24",
    ] {
        assert!(
            r.stdout.contains(line),
            "missing '{line}' in:\n{}",
            r.stdout
        );
    }
    let r = rtfx(dir.path(), &["info", "in.wav", "--json"]);
    let v: serde_json::Value = serde_json::from_str(r.stdout.trim()).expect("json");
    assert_eq!(v["frames"], 24_000);
    assert_eq!(v["subtype"], "FLOAT");
    let r = rtfx(dir.path(), &["info", "nothing.wav"]);
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("'nothing.wav' does not exist"));
}

#[test]
fn progress_is_silent_when_piped_and_json_on_request() {
    let (dir, _) = setup();
    let r = rtfx(
        dir.path(),
        &["render", "in.wav", "a.wav", "-e", "gain:1", "-q"],
    );
    assert_eq!(r.code, 0);
    assert_eq!(r.stderr, "", "quiet and not a TTY: nothing on stderr");
    let r = rtfx(
        dir.path(),
        &[
            "render",
            "in.wav",
            "b.wav",
            "-e",
            "gain:1",
            "--progress",
            "json",
            "--chunk-size",
            "4096",
        ],
    );
    assert_eq!(r.code, 0);
    let lines: Vec<serde_json::Value> = r
        .stderr
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|_| panic!("not JSON: {l}")))
        .collect();
    assert!(lines.iter().any(|v| v["event"] == "progress"));
    let done = lines.last().unwrap();
    assert_eq!(done["event"], "done");
    assert_eq!(done["ok"], true);
    assert_eq!(done["frames"], 24_000);
}

#[test]
fn cuda_falls_back_to_the_cpu_with_one_warning() {
    let (dir, _) = setup();
    let r = rtfx(
        dir.path(),
        &[
            "render", "in.wav", "out.wav", "-e", "gain:1", "--device", "cuda",
        ],
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(r.stderr.matches("warning:").count(), 1, "{}", r.stderr);
    assert!(r.stderr.contains("rendering on the CPU"));
}

// 10. Ctrl-C mid-render: exit 130, the temporary file removed, an existing output untouched.
#[test]
fn ctrl_c_removes_the_partial_output_and_keeps_the_old_one() {
    let (dir, _) = setup();
    let d = dir.path();
    // 60 s of stereo through a 4095-tap FIR in 1024-frame chunks: seconds of work.
    write_wav(
        &d.join("long.wav"),
        48_000,
        &[noise(48_000 * 60, 11, 0.5), noise(48_000 * 60, 12, 0.5)],
    );
    std::fs::write(d.join("out.wav"), b"previous").unwrap();
    let mut child = std::process::Command::new(common::rtfx_bin())
        .current_dir(d)
        .args([
            "render",
            "long.wav",
            "out.wav",
            "-e",
            "fir:1000,num_taps=4095",
            "--force",
            "--chunk-size",
            "1024",
            "-q",
        ])
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("rtfx starts");
    // Wait until the render has started writing its temporary file.
    let started = std::time::Instant::now();
    while !listing(d).iter().any(|n| n.contains(".tmp-")) {
        assert!(
            started.elapsed() < std::time::Duration::from_secs(20),
            "no temporary file appeared"
        );
        assert!(
            child.try_wait().unwrap().is_none(),
            "rtfx ended before Ctrl-C"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let status = std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .expect("kill runs");
    assert!(status.success());
    let out = child.wait_with_output().expect("rtfx ends");
    assert_eq!(
        out.status.code(),
        Some(130),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(std::fs::read(d.join("out.wav")).unwrap(), b"previous");
    assert_no_temp_files(d);
    // Even with -q, a single file's interruption is said (it used to end silently).
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("Rendering interrupted"), "{err}");
}

#[test]
fn invalid_chunking_is_a_usage_error_before_any_file() {
    let (dir, _) = setup();
    let r = rtfx(
        dir.path(),
        &[
            "render",
            "in.wav",
            "out.wav",
            "-e",
            "gain:1",
            "--chunk-size",
            "1024",
            "--overlap",
            "1024",
        ],
    );
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stderr.contains("invalid chunking"), "{}", r.stderr);
    assert!(
        r.stderr
            .contains("Overlap (1024) must be less than chunk_size (1024)"),
        "{}",
        r.stderr
    );
    assert!(
        !dir.path().join("out.wav").exists(),
        "no output on a usage error"
    );
    let r = rtfx(
        dir.path(),
        &[
            "render",
            "in.wav",
            "out.wav",
            "-e",
            "gain:1",
            "--chunk-size",
            "0",
        ],
    );
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(
        r.stderr.contains("Chunk size is out of range") && r.stderr.contains("Got: 0"),
        "{}",
        r.stderr
    );
}

/// A delay fed back at 0.95 every 10 s decays for about 45 minutes: `--tail auto` stops at its
/// documented maximum of 60 s and says so (it used to write a 2705 s file without a word).
#[test]
fn tail_auto_stops_at_its_maximum_with_a_warning() {
    let dir = tempfile::tempdir().unwrap();
    write_wav(&dir.path().join("in.wav"), 8_000, &[noise(800, 3, 0.5)]);
    let r = rtfx(
        dir.path(),
        &[
            "render",
            "in.wav",
            "out.wav",
            "-e",
            "delay:delay_ms=10000,feedback=0.95,mix=0.5",
            "--tail",
            "auto",
        ],
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stderr.contains("maximum of 60 s"), "{}", r.stderr);
    let (_, out) = read_wav(&dir.path().join("out.wav"));
    assert_eq!(out.len(), 800 + 60 * 8_000);
}

/// A dangling symbolic link as the output: refused before rendering without --force (it used
/// to render the whole file, then fail with "File exists"); with --force the render writes
/// through the link, which stays a link, as sox and ffmpeg do.
#[cfg(unix)]
#[test]
fn a_symlinked_output_needs_force_and_is_written_through() {
    let (dir, _) = setup();
    let d = dir.path();
    std::os::unix::fs::symlink("target.wav", d.join("link.wav")).unwrap();
    let r = rtfx(d, &["render", "in.wav", "link.wav", "-e", "gain:0.5"]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(
        r.stderr
            .contains("'link.wav' already exists (a symbolic link to"),
        "{}",
        r.stderr
    );
    assert!(!d.join("target.wav").exists());
    let r = rtfx(
        d,
        &["render", "in.wav", "link.wav", "-e", "gain:0.5", "--force"],
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    let meta = std::fs::symlink_metadata(d.join("link.wav")).unwrap();
    assert!(meta.file_type().is_symlink(), "the link was replaced");
    let (_, input) = read_wav(&d.join("in.wav"));
    let (_, out) = read_wav(&d.join("target.wav"));
    assert_eq!(out.len(), input.len());
    assert_no_temp_files(d);
}

#[test]
fn an_output_dir_that_is_a_file_says_so() {
    let (dir, _) = setup();
    std::fs::write(dir.path().join("afile"), b"x").unwrap();
    let r = rtfx(
        dir.path(),
        &["render", "in.wav", "-O", "afile", "-e", "gain:1"],
    );
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(
        r.stderr.contains("'afile' is a file, not a directory"),
        "{}",
        r.stderr
    );
}

/// Caught before rendering (exit 2), not after the work (exit 1).
#[test]
fn an_impossible_output_subtype_is_a_usage_error_before_rendering() {
    let (dir, _) = setup();
    let r = rtfx(
        dir.path(),
        &[
            "render",
            "in.wav",
            "out.flac",
            "-e",
            "gain:1",
            "--subtype",
            "pcm32",
        ],
    );
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(
        r.stderr.contains("FLAC holds 16- or 24-bit"),
        "{}",
        r.stderr
    );
    assert!(!r.stderr.contains("rendering 'in.wav'"), "{}", r.stderr);
    assert_no_temp_files(dir.path());
}

/// An even-tap high-pass FIR used to pass the chain check and fail at render time (exit 1,
/// after reading the file); it is now refused with the chain (exit 2).
#[test]
fn an_even_tap_high_pass_fir_is_a_usage_error_before_rendering() {
    let (dir, _) = setup();
    for spec in [
        "fir:1000,num_taps=100,pass_zero=false",
        "fir:num_taps=100,pass_zero=false,cutoff=1000",
        "fir:1000,cutoff_high=2000,num_taps=64",
    ] {
        let r = rtfx(dir.path(), &["render", "in.wav", "out.wav", "-e", spec]);
        assert_eq!(r.code, 2, "{spec}: {}", r.stderr);
        assert!(r.stderr.contains("odd number of taps"), "{}", r.stderr);
        assert!(!r.stderr.contains("rendering 'in.wav'"), "{}", r.stderr);
    }
    let r = rtfx(
        dir.path(),
        &["render", "in.wav", "out.wav", "-e", "fir:1000,num_taps=100"],
    );
    assert_eq!(r.code, 0, "an even-tap low-pass is fine: {}", r.stderr);
}

/// Each file's result is a line of its own. With `--progress bar` into a file the ✓ line used
/// to vanish (printed through the hidden bars); on a terminal it was padded to the width
/// with no newline, so a captured terminal log was one long line. The terminal case runs
/// under `script` (util-linux), which gives rtfx a pseudo-terminal.
#[test]
fn every_file_ends_its_line_in_logs_and_on_terminals() {
    let (dir, _) = setup();
    let d = dir.path();
    let r = rtfx(
        d,
        &[
            "render",
            "in.wav",
            "out.wav",
            "-e",
            "gain:1",
            "--progress",
            "bar",
        ],
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stderr.contains("✓ in.wav → out.wav ("), "{:?}", r.stderr);
    assert!(r.stderr.ends_with(")\n"), "{:?}", r.stderr);

    std::fs::create_dir(d.join("out")).unwrap();
    std::fs::copy(d.join("in.wav"), d.join("two.wav")).unwrap();
    let bin = common::rtfx_bin();
    let command = format!(
        "{} render in.wav two.wav -O out -e gain:1",
        bin.to_string_lossy()
    );
    let Ok(out) = std::process::Command::new("script")
        .current_dir(d)
        .args(["-qec", &command, "/dev/null"])
        .output()
    else {
        eprintln!("no `script` (util-linux): the terminal case is skipped");
        return;
    };
    let log = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{log}");
    for name in ["in.wav", "two.wav"] {
        let at = log
            .find(&format!("✓ {name} → "))
            .unwrap_or_else(|| panic!("no line for {name}: {log:?}"));
        let rest = &log[at..];
        let end = rest.find(")").expect("the line's end");
        assert!(
            rest[end + 1..].starts_with("\r\n") || rest[end + 1..].starts_with('\n'),
            "{name}'s line does not end: {:?}",
            &rest[..rest.len().min(end + 40)]
        );
    }
}

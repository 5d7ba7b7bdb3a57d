//! `rtfx render` with `-` for stdin and stdout: WAV and raw streams in and out, sox at the
//! other end of the pipe, streams cut short, terminals refused, and flat memory for a stream
//! far larger than the memory it may use.

mod common;

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

use common::{assert_no_temp_files, hound_read_interleaved, rtfx_bin, write_float_wav};

/// What a run gave: exit code, stdout bytes, stderr text.
struct Piped {
    code: i32,
    stdout: Vec<u8>,
    stderr: String,
}

/// Runs rtfx in `dir` with `stdin` bytes on its standard input.
fn rtfx_piped(dir: &Path, args: &[&str], stdin: &[u8]) -> Piped {
    let mut child = Command::new(rtfx_bin())
        .current_dir(dir)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("rtfx starts");
    let mut input = child.stdin.take().expect("stdin");
    let bytes = stdin.to_vec();
    // Written from a thread: rtfx may stop reading (an error) before taking it all.
    let writer = std::thread::spawn(move || {
        let _ = input.write_all(&bytes);
    });
    let out = child.wait_with_output().expect("rtfx runs");
    let _ = writer.join();
    Piped {
        code: out.status.code().unwrap_or(-1),
        stdout: out.stdout,
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// Runs a bash script (pipefail: any stage's failure fails the pipeline) in `dir`, with the
/// binary under test as `$RTFX`.
fn sh(dir: &Path, script: &str) -> std::process::Output {
    Command::new("bash")
        .current_dir(dir)
        .env("RTFX", rtfx_bin())
        .args(["-c", &format!("set -o pipefail; {script}")])
        .output()
        .expect("sh runs")
}

fn tone(frames: usize, freq: f32, rate: f32) -> Vec<f32> {
    (0..frames)
        .map(|n| 0.5 * (std::f32::consts::TAU * freq * n as f32 / rate).sin())
        .collect()
}

fn f32le(samples: &[f32]) -> Vec<u8> {
    samples.iter().flat_map(|s| s.to_le_bytes()).collect()
}

#[test]
fn a_wav_stream_goes_through_rtfx_into_sox() {
    if Command::new("sox").arg("--version").output().is_err() {
        eprintln!("skipped: sox is not installed (tools/setup.sh installs it)");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let left = tone(48_000, 440.0, 48_000.0);
    let right = tone(48_000, 1000.0, 48_000.0);
    write_float_wav(&d.join("in.wav"), 48_000, &[left.clone(), right.clone()]);
    // The issue's own line, with pipefail so that any stage's failure shows.
    let out = sh(
        d,
        "\"$RTFX\" render - - -e gain:0.5 < in.wav | sox -t wav - out.wav",
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (spec, samples) = hound_read_interleaved(&d.join("out.wav"));
    assert_eq!((spec.sample_rate, spec.channels), (48_000, 2));
    assert_eq!(samples.len(), 96_000);
    // sox carries samples as 32-bit integers inside and rounds float on the way in and out
    // (measured: up to 1e-6 relative); the same samples otherwise.
    for (i, pair) in samples.chunks(2).enumerate() {
        assert!(
            (pair[0] - 0.5 * left[i]).abs() < 1e-6,
            "frame {i}: {} {}",
            pair[0],
            0.5 * left[i]
        );
        assert!(
            (pair[1] - 0.5 * right[i]).abs() < 1e-6,
            "frame {i}: {} {}",
            pair[1],
            0.5 * right[i]
        );
    }
}

#[test]
fn raw_samples_in_and_out() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // s16le stereo in: frame n is (n, -n) in 16-bit codes.
    let frames = 10_001;
    let raw: Vec<u8> = (0..frames as i16)
        .flat_map(|n| [n.to_le_bytes(), (-n).to_le_bytes()].concat())
        .collect();
    let r = rtfx_piped(
        d,
        &[
            "render",
            "-",
            "out.wav",
            "--input-format",
            "s16le",
            "--input-rate",
            "22050",
            "--input-channels",
            "2",
            "-e",
            "gain:1",
        ],
        &raw,
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    let (spec, samples) = hound_read_interleaved(&d.join("out.wav"));
    assert_eq!((spec.sample_rate, spec.channels), (22_050, 2));
    assert_eq!(samples.len(), 2 * frames);
    for (n, pair) in samples.chunks(2).enumerate() {
        assert_eq!(pair[0], n as f32 / 32768.0);
        assert_eq!(pair[1], -(n as f32) / 32768.0);
    }

    // Raw out: the float samples themselves, no header, no padding.
    let mono = tone(4801, 300.0, 48_000.0);
    write_float_wav(&d.join("mono.wav"), 48_000, std::slice::from_ref(&mono));
    let r = rtfx_piped(
        d,
        &[
            "render",
            "mono.wav",
            "-",
            "--format",
            "raw",
            "-e",
            "gain:0.25",
        ],
        &[],
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    let want: Vec<f32> = mono.iter().map(|x| 0.25 * x).collect();
    assert_eq!(r.stdout, f32le(&want));
    // A .raw file holds the same bytes.
    let r = rtfx_piped(
        d,
        &["render", "mono.wav", "out.raw", "-e", "gain:0.25"],
        &[],
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(std::fs::read(d.join("out.raw")).unwrap(), f32le(&want));

    // A WAV stream out: a header that says "until the stream ends" and nothing to patch.
    let r = rtfx_piped(d, &["render", "mono.wav", "-", "-e", "gain:0.25"], &[]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(&r.stdout[0..4], b"RIFF");
    assert_eq!(&r.stdout[4..8], &u32::MAX.to_le_bytes());
    let data = r.stdout.windows(4).position(|w| w == b"data").unwrap();
    assert_eq!(&r.stdout[data + 4..data + 8], &u32::MAX.to_le_bytes());
    assert_eq!(&r.stdout[data + 8..], &f32le(&want)[..]);
    // And rtfx reads its own stream back from stdin.
    let back = rtfx_piped(d, &["render", "-", "back.wav", "-e", "gain:4"], &r.stdout);
    assert_eq!(back.code, 0, "{}", back.stderr);
    let (_, samples) = hound_read_interleaved(&d.join("back.wav"));
    assert_eq!(samples, mono);
}

/// A WAV header for float stereo at 8 kHz whose data chunk declares `data_size` bytes.
fn wav_header(data_size: u32) -> Vec<u8> {
    let mut h = Vec::new();
    h.extend_from_slice(b"RIFF");
    h.extend_from_slice(&data_size.saturating_add(36).to_le_bytes());
    h.extend_from_slice(b"WAVEfmt ");
    h.extend_from_slice(&16u32.to_le_bytes());
    h.extend_from_slice(&3u16.to_le_bytes());
    h.extend_from_slice(&2u16.to_le_bytes());
    h.extend_from_slice(&8000u32.to_le_bytes());
    h.extend_from_slice(&64_000u32.to_le_bytes());
    h.extend_from_slice(&8u16.to_le_bytes());
    h.extend_from_slice(&32u16.to_le_bytes());
    h.extend_from_slice(b"data");
    h.extend_from_slice(&data_size.to_le_bytes());
    h
}

#[test]
fn a_stream_cut_short_fails_without_leaving_a_file_and_open_lengths_read_to_the_end() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let samples: Vec<f32> = (0..2000).map(|i| i as f32 / 4000.0).collect();
    // Declares 1000 frames, delivers 600 (the writer died).
    let mut cut = wav_header(8000);
    cut.extend_from_slice(&f32le(&samples[..1200]));
    let r = rtfx_piped(d, &["render", "-", "out.wav", "-e", "gain:1"], &cut);
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(
        r.stderr.contains("ended early") && r.stderr.contains("400 of its 1000 frames"),
        "{}",
        r.stderr
    );
    assert!(!d.join("out.wav").exists());
    assert_no_temp_files(d);
    // --allow-truncated renders what came, and says what did not.
    let r = rtfx_piped(
        d,
        &[
            "render",
            "-",
            "out.wav",
            "-e",
            "gain:1",
            "--allow-truncated",
        ],
        &cut,
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stderr.contains("400 of its 1000 frames"), "{}", r.stderr);
    assert_eq!(
        hound_read_interleaved(&d.join("out.wav")).1,
        samples[..1200]
    );

    // The open lengths writers leave in a pipe's header: ffmpeg's u32::MAX, sox's 0x7FFFF000,
    // and 0. Each reads to the end of the stream, and a half frame at the end is dropped with
    // a warning.
    for size in [u32::MAX, 0x7FFF_F000, 0] {
        let mut open = wav_header(size);
        open.extend_from_slice(&f32le(&samples));
        open.extend_from_slice(&[0, 0, 0]);
        let r = rtfx_piped(d, &["render", "-", "o.wav", "-f", "-e", "gain:1"], &open);
        assert_eq!(r.code, 0, "{size:#x}: {}", r.stderr);
        assert!(r.stderr.contains("3 bytes were dropped"), "{}", r.stderr);
        assert_eq!(
            hound_read_interleaved(&d.join("o.wav")).1,
            samples,
            "{size:#x}"
        );
    }
}

#[test]
fn what_a_pipe_cannot_do_is_refused_with_the_fix() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write_float_wav(&d.join("in.wav"), 8000, &[tone(800, 100.0, 8000.0)]);
    let wav = std::fs::read(d.join("in.wav")).unwrap();
    let flac_head = b"fLaC\0\0\0\x22 and more bytes that are not audio".to_vec();
    for (args, stdin, code, says) in [
        (
            &[
                "render",
                "-",
                "o.wav",
                "--input-format",
                "s16le",
                "-e",
                "gain:1",
            ][..],
            &wav[..],
            2,
            "--input-rate HZ and --input-channels N",
        ),
        (
            &[
                "render",
                "-",
                "o.wav",
                "--input-rate",
                "8000",
                "-e",
                "gain:1",
            ],
            &wav,
            2,
            "give --input-format too",
        ),
        (
            &[
                "render",
                "in.wav",
                "o.wav",
                "--input-format",
                "s16le",
                "--input-rate",
                "8000",
                "--input-channels",
                "1",
                "-e",
                "gain:1",
            ],
            &wav,
            2,
            "give '-' as the input",
        ),
        (
            &[
                "render",
                "-",
                "o.wav",
                "--input-format",
                "u8",
                "--input-rate",
                "8000",
                "--input-channels",
                "1",
                "-e",
                "gain:1",
            ],
            &wav,
            2,
            "f32le, s16le, s24le or s32le",
        ),
        (
            &[
                "render",
                "-",
                "o.wav",
                "--normalize",
                "peak:-1",
                "-e",
                "gain:1",
            ],
            &wav,
            2,
            "save the input to a file",
        ),
        (
            &["render", "in.wav", "-", "--format", "flac", "-e", "gain:1"],
            &[],
            2,
            "FLAC cannot be written to a pipe",
        ),
        (
            &["render", "-", "in.wav", "-O", "outdir", "-e", "gain:1"],
            &wav,
            2,
            "one stream, not a batch",
        ),
        (
            &["render", "-", "o.wav", "-e", "gain:1"],
            &flac_head[..],
            1,
            "'stdin' holds FLAC",
        ),
        (
            &["render", "-", "o.wav", "-e", "gain:1"],
            &[],
            1,
            "the stream was empty",
        ),
    ] {
        let r = rtfx_piped(d, args, stdin);
        assert_eq!(r.code, code, "{args:?}: {}", r.stderr);
        assert!(r.stderr.contains(says), "{args:?}: {}", r.stderr);
        assert!(
            !d.join("o.wav").exists() && !d.join("outdir").exists(),
            "{args:?}"
        );
        assert_no_temp_files(d);
    }
}

/// Runs rtfx with stdout (or stdin) on a pseudo-terminal.
#[cfg(unix)]
fn rtfx_on_terminal(dir: &Path, args: &[&str], stdout_is_terminal: bool) -> (i32, String) {
    use std::os::fd::{FromRawFd, OwnedFd};
    let (mut master, mut slave) = (0, 0);
    // SAFETY: openpty writes two descriptors we then own; the other arguments may be null.
    let ok = unsafe {
        libc::openpty(
            &mut master,
            &mut slave,
            std::ptr::null_mut(),
            std::ptr::null(),
            std::ptr::null(),
        )
    };
    assert_eq!(ok, 0, "openpty");
    // SAFETY: both descriptors are fresh and owned here alone.
    let (master, slave) = unsafe { (OwnedFd::from_raw_fd(master), OwnedFd::from_raw_fd(slave)) };
    let mut command = Command::new(rtfx_bin());
    command.current_dir(dir).args(args).stderr(Stdio::piped());
    if stdout_is_terminal {
        command.stdout(Stdio::from(slave)).stdin(Stdio::null());
    } else {
        command.stdin(Stdio::from(slave)).stdout(Stdio::null());
    }
    let out = command.output().expect("rtfx runs");
    drop(master);
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[cfg(unix)]
#[test]
fn audio_is_never_read_from_or_written_to_a_terminal() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write_float_wav(&d.join("in.wav"), 8000, &[tone(800, 100.0, 8000.0)]);
    let (code, stderr) = rtfx_on_terminal(d, &["render", "in.wav", "-", "-e", "gain:1"], true);
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("stdout, which is a terminal"), "{stderr}");
    let (code, stderr) = rtfx_on_terminal(d, &["render", "-", "o.wav", "-e", "gain:1"], false);
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("stdin, which is a terminal"), "{stderr}");
    assert!(!d.join("o.wav").exists());
}

#[test]
fn a_reader_that_hangs_up_ends_the_render_with_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write_float_wav(&d.join("in.wav"), 48_000, &[tone(480_000, 440.0, 48_000.0)]);
    // `head` takes 1000 bytes and leaves; rtfx must stop with an error, not hang or panic.
    let out = sh(
        d,
        "\"$RTFX\" render in.wav - -e gain:0.5 | head -c 1000 > /dev/null",
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(
        stderr.contains("Broken pipe") || stderr.contains("os error 32"),
        "{stderr}"
    );
}

#[cfg(target_os = "linux")]
#[test]
fn memory_stays_flat_for_a_stream_much_larger_than_it() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(rtfx_bin())
        .current_dir(dir.path())
        .args([
            "render",
            "-",
            "-",
            "--input-format",
            "f32le",
            "--input-rate",
            "48000",
            "--input-channels",
            "2",
            "--format",
            "raw",
            "-e",
            "lobutterworth:8000",
            "-e",
            "gain:0.5",
            "-q",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("rtfx starts");
    // 512 MiB of stereo float in, counted out.
    const BYTES: u64 = 512 << 20;
    let mut input = child.stdin.take().unwrap();
    let mut output = child.stdout.take().unwrap();
    let counted = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let counter = {
        let counted = counted.clone();
        std::thread::spawn(move || {
            let mut buf = vec![0u8; 1 << 16];
            loop {
                match std::io::Read::read(&mut output, &mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => counted.fetch_add(n as u64, std::sync::atomic::Ordering::Relaxed),
                };
            }
        })
    };
    let block = vec![0u8; 1 << 20];
    for _ in 0..BYTES >> 20 {
        input.write_all(&block).unwrap();
    }
    // Everything but what is in flight has come out; rtfx now waits for more input. Its peak
    // resident set so far (VmHWM: of this program alone, not of the test that started it).
    while counted.load(std::sync::atomic::Ordering::Relaxed) < BYTES - (16 << 20) {
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    let peak_kib = common::peak_rss_kib(child.id()).expect("VmHWM");
    drop(input);
    counter.join().unwrap();
    assert_eq!(counted.load(std::sync::atomic::Ordering::Relaxed), BYTES);
    assert!(child.wait().unwrap().success());
    let peak_mib = peak_kib / 1024.0;
    assert!(
        peak_mib < 48.0,
        "peak RSS {peak_mib:.1} MiB for a 512 MiB stream"
    );
}

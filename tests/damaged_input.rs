//! Damaged, truncated and odd inputs never pass silently (issue 12, part A and the WAV header
//! items of D): each case is built from a good file by cutting or flipping bytes, rendered with
//! the `rtfx` binary, and must fail with a message that names the file, where the damage is and
//! what to do, leaving no output behind; `--allow-truncated` renders it anyway and counts what
//! was lost. `RTFX_TEST_BIN=/path/to/rtfx` runs these against another build.

mod common;

use std::path::{Path, PathBuf};

use common::{Run, assert_no_temp_files, hound_read_interleaved, noise, rtfx, write_float_wav};

const RATE: u32 = 44_100;
const FRAMES: usize = 2 * RATE as usize;

/// A directory with `in.wav` (2 s of stereo noise) and `good.flac` rendered from it by rtfx's
/// own FLAC writer (16 bit, with its MD5 in STREAMINFO).
fn flac_setup() -> (tempfile::TempDir, Vec<u8>) {
    let dir = tempfile::tempdir().expect("temp dir");
    write_float_wav(
        &dir.path().join("in.wav"),
        RATE,
        &[noise(FRAMES, 1, 0.25), noise(FRAMES, 2, 0.25)],
    );
    let r = rtfx(
        dir.path(),
        &[
            "render",
            "in.wav",
            "good.flac",
            "-e",
            "gain:1",
            "--subtype",
            "pcm16",
        ],
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    let bytes = std::fs::read(dir.path().join("good.flac")).expect("read flac");
    (dir, bytes)
}

fn render(dir: &Path, input: &str, extra: &[&str]) -> Run {
    let mut args = vec!["render", input, "out.wav", "-e", "gain:1"];
    args.extend_from_slice(extra);
    rtfx(dir, &args)
}

/// The render failed with exit 1, named the file and left nothing behind.
fn assert_refused(dir: &Path, r: &Run, input: &str, words: &[&str]) {
    assert_eq!(r.code, 1, "must fail:\n{}", r.stderr);
    assert!(r.stderr.contains(&format!("'{input}'")), "{}", r.stderr);
    for w in words {
        assert!(r.stderr.contains(w), "message lacks '{w}':\n{}", r.stderr);
    }
    assert!(!dir.join("out.wav").exists(), "an output was left");
    assert_no_temp_files(dir);
}

fn frames_of(path: &Path) -> usize {
    let (spec, samples) = hound_read_interleaved(path);
    samples.len() / usize::from(spec.channels)
}

#[test]
fn the_undamaged_flac_renders_whole_and_verified() {
    let (dir, _) = flac_setup();
    let r = render(dir.path(), "good.flac", &[]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(!r.stderr.contains("warning"), "{}", r.stderr);
    assert_eq!(frames_of(&dir.path().join("out.wav")), FRAMES);
}

#[test]
fn a_corrupt_flac_frame_is_an_error_with_its_position() {
    let (dir, good) = flac_setup();
    let mut bad = good.clone();
    let mid = bad.len() / 2;
    for b in &mut bad[mid..mid + 64] {
        *b ^= 0x5A;
    }
    std::fs::write(dir.path().join("bad.flac"), &bad).unwrap();
    let r = render(dir.path(), "bad.flac", &[]);
    assert_refused(
        dir.path(),
        &r,
        "bad.flac",
        &["damaged at", " s (frame ", "--allow-truncated"],
    );
    // The damage is in the middle: the position named lies between 0.5 s and 1.5 s.
    let at: f64 = r
        .stderr
        .split("damaged at ")
        .nth(1)
        .and_then(|t| t.split(' ').next())
        .and_then(|t| t.parse().ok())
        .expect("a time in seconds");
    assert!((0.5..1.5).contains(&at), "{at} s:\n{}", r.stderr);

    // Opted in: the damaged stretch is silence, so everything after keeps its time.
    let r = render(dir.path(), "bad.flac", &["--allow-truncated"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stderr.contains("frames lost"), "{}", r.stderr);
    assert_eq!(frames_of(&dir.path().join("out.wav")), FRAMES);
}

#[test]
fn a_flac_cut_in_half_is_refused_as_truncated() {
    let (dir, good) = flac_setup();
    std::fs::write(dir.path().join("half.flac"), &good[..good.len() / 2]).unwrap();
    let r = render(dir.path(), "half.flac", &[]);
    assert_refused(
        dir.path(),
        &r,
        "half.flac",
        &["truncated", &format!("declares {FRAMES} frames"), "missing"],
    );
    let r = render(dir.path(), "half.flac", &["--allow-truncated"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let got = frames_of(&dir.path().join("out.wav"));
    assert!(got < FRAMES * 2 / 3, "{got}");
    assert!(
        r.stderr.contains(&format!("{} frames lost", FRAMES - got)),
        "{}",
        r.stderr
    );
}

/// STREAMINFO's 36-bit total sample count, bytes 18..26 of the file (after "fLaC" and the
/// block header), multiplied by 10.
#[test]
fn a_flac_streaminfo_longer_than_its_audio_is_refused() {
    let (dir, good) = flac_setup();
    let mut bad = good.clone();
    let field = u64::from_be_bytes(bad[18..26].try_into().unwrap());
    let mask = (1u64 << 36) - 1;
    assert_eq!(field & mask, FRAMES as u64, "STREAMINFO's sample count");
    let longer = (field & !mask) | (FRAMES as u64 * 10);
    bad[18..26].copy_from_slice(&longer.to_be_bytes());
    std::fs::write(dir.path().join("long.flac"), &bad).unwrap();
    let r = render(dir.path(), "long.flac", &[]);
    assert_refused(
        dir.path(),
        &r,
        "long.flac",
        &["truncated", &format!("declares {} frames", FRAMES * 10)],
    );
}

/// The MD5 signature is bytes 26..42; flipping one byte leaves the audio intact.
#[test]
fn a_flac_md5_mismatch_is_refused_unless_verification_is_skipped() {
    let (dir, good) = flac_setup();
    let mut bad = good.clone();
    bad[30] ^= 0xFF;
    std::fs::write(dir.path().join("md5.flac"), &bad).unwrap();
    let r = render(dir.path(), "md5.flac", &[]);
    assert_refused(dir.path(), &r, "md5.flac", &["MD5", "--no-verify"]);
    let r = render(dir.path(), "md5.flac", &["--no-verify"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(frames_of(&dir.path().join("out.wav")), FRAMES);
}

fn fixture(name: &str) -> Vec<u8> {
    let path: PathBuf = [env!("CARGO_MANIFEST_DIR"), "tests", "data", "formats", name]
        .iter()
        .collect();
    std::fs::read(path).expect("fixture")
}

/// tone.mp3 (ffmpeg/LAME, 0.25 s) carries an Info header with its frame count.
#[test]
fn an_mp3_cut_short_is_refused_and_one_without_a_length_says_what_was_checked() {
    let dir = tempfile::tempdir().unwrap();
    let good = fixture("tone.mp3");
    std::fs::write(dir.path().join("cut.mp3"), &good[..good.len() / 2]).unwrap();
    let r = render(dir.path(), "cut.mp3", &[]);
    assert_refused(
        dir.path(),
        &r,
        "cut.mp3",
        &["truncated", "declares 11025 frames"],
    );

    // Without its Info header the length is only an estimate: say so rather than guess.
    let mut blind = good[..good.len() / 2].to_vec();
    let at = blind
        .windows(4)
        .position(|w| w == b"Info" || w == b"Xing")
        .expect("an Info header");
    blind[at..at + 4].copy_from_slice(b"None");
    std::fs::write(dir.path().join("blind.mp3"), &blind).unwrap();
    let r = render(dir.path(), "blind.mp3", &[]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stderr.contains("cannot be detected"), "{}", r.stderr);
    let r = rtfx(dir.path(), &["info", "blind.mp3"]);
    assert!(
        r.stdout.contains("no Xing/LAME/VBRI header"),
        "{}",
        r.stdout
    );
}

#[test]
fn an_ogg_cut_short_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let good = fixture("tone-2s.ogg");
    // Drop the last page (the one that ends the stream): every page left is whole.
    let last = good
        .windows(4)
        .rposition(|w| w == b"OggS")
        .expect("an Ogg page");
    std::fs::write(dir.path().join("cut.ogg"), &good[..last]).unwrap();
    let r = render(dir.path(), "cut.ogg", &[]);
    assert_refused(dir.path(), &r, "cut.ogg", &["truncated", "Ogg page"]);
    let r = render(dir.path(), "cut.ogg", &["--allow-truncated"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stderr.contains("truncated"), "{}", r.stderr);
}

/// A 16-bit stereo WAV in `container` ("RIFF", "RF64", "BW64") holding `frames` frames, with
/// `fmt_chunks` copies of the format chunk; for RF64/BW64 the ds64 chunk declares
/// `ds64_bytes` of data (the data chunk's own size is then 0xFFFFFFFF).
fn wav_bytes(container: &[u8; 4], frames: usize, ds64_bytes: Option<u64>, fmt: &[u8]) -> Vec<u8> {
    let data: Vec<u8> = (0..frames * 2)
        .flat_map(|i| ((i as i16).wrapping_mul(97)).to_le_bytes())
        .collect();
    let mut f = Vec::new();
    f.extend_from_slice(container);
    f.extend_from_slice(&u32::MAX.to_le_bytes());
    f.extend_from_slice(b"WAVE");
    if let Some(bytes) = ds64_bytes {
        f.extend_from_slice(b"ds64");
        f.extend_from_slice(&28u32.to_le_bytes());
        f.extend_from_slice(&0u64.to_le_bytes());
        f.extend_from_slice(&bytes.to_le_bytes());
        f.extend_from_slice(&(bytes / 4).to_le_bytes());
        f.extend_from_slice(&0u32.to_le_bytes());
    }
    f.extend_from_slice(fmt);
    f.extend_from_slice(b"data");
    let size = if ds64_bytes.is_some() {
        u32::MAX
    } else {
        data.len() as u32
    };
    f.extend_from_slice(&size.to_le_bytes());
    f.extend_from_slice(&data);
    f
}

/// A plain PCM 'fmt ' chunk: 16-bit stereo at 48 kHz.
fn pcm16_fmt() -> Vec<u8> {
    let mut f = Vec::new();
    f.extend_from_slice(b"fmt ");
    f.extend_from_slice(&16u32.to_le_bytes());
    f.extend_from_slice(&1u16.to_le_bytes());
    f.extend_from_slice(&2u16.to_le_bytes());
    f.extend_from_slice(&48_000u32.to_le_bytes());
    f.extend_from_slice(&(48_000u32 * 4).to_le_bytes());
    f.extend_from_slice(&4u16.to_le_bytes());
    f.extend_from_slice(&16u16.to_le_bytes());
    f
}

#[test]
fn an_rf64_whose_ds64_claims_more_than_the_file_holds_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let fmt = pcm16_fmt();
    let ok = wav_bytes(b"RF64", 48_000, Some(48_000 * 4), &fmt);
    std::fs::write(dir.path().join("ok.wav"), &ok).unwrap();
    let r = render(dir.path(), "ok.wav", &[]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(frames_of(&dir.path().join("out.wav")), 48_000);
    std::fs::remove_file(dir.path().join("out.wav")).unwrap();

    for claim in [96_000u64 * 4, 1 << 62, u64::MAX] {
        let bad = wav_bytes(b"RF64", 48_000, Some(claim), &fmt);
        std::fs::write(dir.path().join("bad.wav"), &bad).unwrap();
        let r = render(dir.path(), "bad.wav", &[]);
        assert_refused(
            dir.path(),
            &r,
            "bad.wav",
            &["truncated", "holds only 48000"],
        );
    }
    let r = render(dir.path(), "bad.wav", &["--allow-truncated"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stderr.contains("frames are missing"), "{}", r.stderr);
    assert_eq!(frames_of(&dir.path().join("out.wav")), 48_000);
}

#[test]
fn bw64_is_read_like_rf64() {
    let dir = tempfile::tempdir().unwrap();
    let bytes = wav_bytes(b"BW64", 4_800, Some(4_800 * 4), &pcm16_fmt());
    std::fs::write(dir.path().join("bw.wav"), &bytes).unwrap();
    let r = rtfx(dir.path(), &["info", "bw.wav"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stdout.contains("Frames:      4800"), "{}", r.stdout);
    let r = render(dir.path(), "bw.wav", &[]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(frames_of(&dir.path().join("out.wav")), 4_800);
}

#[test]
fn two_fmt_chunks_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let mut fmt = pcm16_fmt();
    let mut second = pcm16_fmt();
    second[10..12].copy_from_slice(&1u16.to_le_bytes()); // mono: which one is true?
    fmt.extend_from_slice(&second);
    let bytes = wav_bytes(b"RIFF", 4_800, None, &fmt);
    std::fs::write(dir.path().join("two.wav"), &bytes).unwrap();
    let r = render(dir.path(), "two.wav", &[]);
    assert_refused(dir.path(), &r, "two.wav", &["two 'fmt ' chunks"]);
}

#[test]
fn more_valid_bits_than_the_container_holds_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    // WAVE_FORMAT_EXTENSIBLE, 16-bit container claiming 24 valid bits.
    let mut fmt = Vec::new();
    fmt.extend_from_slice(b"fmt ");
    fmt.extend_from_slice(&40u32.to_le_bytes());
    fmt.extend_from_slice(&0xFFFEu16.to_le_bytes());
    fmt.extend_from_slice(&2u16.to_le_bytes());
    fmt.extend_from_slice(&48_000u32.to_le_bytes());
    fmt.extend_from_slice(&(48_000u32 * 4).to_le_bytes());
    fmt.extend_from_slice(&4u16.to_le_bytes());
    fmt.extend_from_slice(&16u16.to_le_bytes());
    fmt.extend_from_slice(&22u16.to_le_bytes());
    fmt.extend_from_slice(&24u16.to_le_bytes());
    fmt.extend_from_slice(&3u32.to_le_bytes());
    fmt.extend_from_slice(&1u16.to_le_bytes());
    fmt.extend_from_slice(&[0, 0, 0, 0, 0x10, 0, 0x80, 0, 0, 0xAA, 0, 0x38, 0x9B, 0x71]);
    let bytes = wav_bytes(b"RIFF", 4_800, None, &fmt);
    std::fs::write(dir.path().join("bits.wav"), &bytes).unwrap();
    let r = render(dir.path(), "bits.wav", &[]);
    assert_refused(
        dir.path(),
        &r,
        "bits.wav",
        &["24 valid bits", "16-bit container"],
    );
}

/// A header fault that --allow-truncated cannot get past must not suggest it.
#[test]
fn a_block_align_mismatch_does_not_suggest_allow_truncated() {
    let dir = tempfile::tempdir().unwrap();
    let mut fmt = pcm16_fmt();
    fmt[20..22].copy_from_slice(&6u16.to_le_bytes());
    let bytes = wav_bytes(b"RIFF", 4_800, None, &fmt);
    std::fs::write(dir.path().join("align.wav"), &bytes).unwrap();
    let r = render(dir.path(), "align.wav", &[]);
    assert_refused(dir.path(), &r, "align.wav", &["block align 6"]);
    assert!(!r.stderr.contains("--allow-truncated"), "{}", r.stderr);
}

/// A FIFO with no writer used to hang `info` and `render` (opening it blocks); a character
/// device was reported as "empty (0 bytes)".
#[cfg(unix)]
#[test]
fn a_fifo_or_device_input_is_refused_at_once_with_what_it_is() {
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("pipe.wav");
    let made = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .expect("mkfifo runs");
    assert!(made.success());
    for args in [
        vec!["info", "pipe.wav"],
        vec!["render", "pipe.wav", "out.wav", "-e", "gain:1"],
    ] {
        let mut child = std::process::Command::new(common::rtfx_bin())
            .current_dir(dir.path())
            .args(&args)
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("spawn");
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        let status = loop {
            if let Some(s) = child.try_wait().expect("wait") {
                break s;
            }
            if std::time::Instant::now() > deadline {
                let _ = child.kill();
                panic!("`rtfx {}` hangs on a FIFO", args.join(" "));
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        };
        let mut err = String::new();
        std::io::Read::read_to_string(child.stderr.as_mut().unwrap(), &mut err).unwrap();
        assert!(!status.success(), "{err}");
        assert!(err.contains("FIFO (named pipe)"), "{err}");
    }
    let r = render(dir.path(), "/dev/urandom", &[]);
    assert!(r.stderr.contains("is a character device"), "{}", r.stderr);
    assert!(!r.stderr.contains("empty"), "{}", r.stderr);
    // A socket does not open at all; it is still named for what it is.
    let _socket = std::os::unix::net::UnixListener::bind(dir.path().join("sock.wav")).unwrap();
    for args in [
        vec!["info", "sock.wav"],
        vec!["render", "sock.wav", "out.wav", "-e", "gain:1"],
    ] {
        let r = rtfx(dir.path(), &args);
        assert!(
            r.stderr
                .contains("'sock.wav' is a socket, not a regular file"),
            "{}",
            r.stderr
        );
    }
}

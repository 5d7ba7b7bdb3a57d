//! Size options have documented bounds checked before anything is allocated, and their
//! violations are usage errors (exit 2) that state the range (issue 12, parts B and D). Sizes
//! that once panicked ("capacity overflow") or aborted on 32 GB to 400 GB allocations are
//! among the cases. `RTFX_TEST_BIN=/path/to/rtfx` runs these against another build.

mod common;

use common::{assert_no_temp_files, noise, rtfx, write_float_wav};

fn dir_with_input() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("temp dir");
    write_float_wav(&dir.path().join("in.wav"), 48_000, &[noise(4_800, 1, 0.5)]);
    dir
}

#[test]
fn render_chunk_sizes_are_bounded_before_any_allocation() {
    let dir = dir_with_input();
    for size in ["18446744073709551615", "100000000000", "1048577", "0"] {
        let r = rtfx(
            dir.path(),
            &[
                "render",
                "in.wav",
                "o.wav",
                "-e",
                "gain:1",
                "--chunk-size",
                size,
            ],
        );
        assert_eq!(r.code, 2, "--chunk-size {size}: {}", r.stderr);
        assert!(r.stderr.contains("1 to 1048576 frames"), "{}", r.stderr);
        assert!(!dir.path().join("o.wav").exists());
        assert_no_temp_files(dir.path());
    }
    let r = rtfx(
        dir.path(),
        &[
            "render",
            "in.wav",
            "o.wav",
            "-e",
            "gain:1",
            "--chunk-size",
            "1048576",
        ],
    );
    assert_eq!(r.code, 0, "the largest chunk size works: {}", r.stderr);
}

/// Every one of these is refused before a device is opened, so no audio hardware is needed.
#[test]
fn live_size_and_rate_options_are_usage_errors_that_state_their_range() {
    let dir = dir_with_input();
    for (option, value, range) in [
        ("--buffer", "1000000000", "1..=32768"),
        ("--buffer", "10000000", "1..=32768"),
        ("--buffer", "0", "1..=32768"),
        ("--ring-blocks", "100000000", "2..=64"),
        ("--ring-blocks", "1", "2..=64"),
        ("--rate", "0", "1000..=768000"),
        ("--rate", "1", "1000..=768000"),
        ("--input-rate", "999", "1000..=768000"),
        ("--in-channels", "65", "0..=32"),
        ("--out-channels", "33", "0..=32"),
        ("--prime-blocks", "10", "1..=3"),
    ] {
        let r = rtfx(
            dir.path(),
            &[
                "live",
                "-e",
                "gain:1",
                "--host",
                "alsa",
                "--duration",
                "0.1",
                option,
                value,
            ],
        );
        assert_eq!(r.code, 2, "{option} {value}: {}", r.stderr);
        assert!(r.stderr.contains(range), "{option} {value}: {}", r.stderr);
    }
}

/// `rtfx info x | head -0`, `rtfx effects | head -1`: stdout's reader is gone before the
/// output is written. That must not panic (exit 101).
#[cfg(unix)]
#[test]
fn a_closed_stdout_does_not_panic() {
    let dir = dir_with_input();
    for args in [vec!["info", "in.wav"], vec!["effects"], vec!["--help"]] {
        let mut child = std::process::Command::new(common::rtfx_bin())
            .current_dir(dir.path())
            .args(&args)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("spawn");
        drop(child.stdout.take());
        let out = child.wait_with_output().expect("wait");
        let err = String::from_utf8_lossy(&out.stderr);
        assert_ne!(
            out.status.code(),
            Some(101),
            "`rtfx {}` panicked: {err}",
            args.join(" ")
        );
        assert!(!err.contains("panicked"), "{err}");
    }
}

/// `rtfx --help` lists `standalone`, `rtfx help standalone` answers, and a bare `rtfx` with no
/// display prints the help (exit 2) instead of starting a window-less app that blocks.
#[test]
fn help_lists_standalone_and_bare_rtfx_without_a_display_prints_help() {
    let dir = tempfile::tempdir().unwrap();
    let r = rtfx(dir.path(), &["--help"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stdout.contains("  standalone  "), "{}", r.stdout);
    let r = rtfx(dir.path(), &["help", "standalone"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stdout.contains("rtfx standalone --help"), "{}", r.stdout);

    let mut child = std::process::Command::new(common::rtfx_bin())
        .env_remove("DISPLAY")
        .env_remove("WAYLAND_DISPLAY")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while child.try_wait().expect("wait").is_none() {
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            panic!("a bare `rtfx` without a display did not print help and exit");
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let out = child.wait_with_output().expect("output");
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{text}");
    assert!(text.contains("Usage: rtfx <COMMAND>"), "{text}");
}

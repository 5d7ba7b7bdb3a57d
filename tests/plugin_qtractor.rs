//! A light load check in a second real host: Debian's `qtractor_plugin_scan` (from the
//! `qtractor` package, which `tools/setup.sh` installs) loads the `.clap`, and must describe it
//! on a `CLAP|` line: name, 2 audio ins and outs, no MIDI, 43 parameters, a GUI.
//!
//! The test fails when the scanner is missing; set `RTFX_SKIP_QTRACTOR=1` to skip it
//! deliberately. `RTFX_CLAP` picks another build, as in `tests/plugin_clap.rs`.

#![cfg(target_os = "linux")]

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};

fn scanner() -> Option<PathBuf> {
    let candidates = [
        "/usr/lib/x86_64-linux-gnu/qtractor/qtractor_plugin_scan",
        "/usr/lib/aarch64-linux-gnu/qtractor/qtractor_plugin_scan",
        "/usr/lib/qtractor/qtractor_plugin_scan",
        "/usr/local/lib/qtractor/qtractor_plugin_scan",
    ];
    candidates.iter().map(PathBuf::from).find(|p| p.exists())
}

fn plugin_path() -> PathBuf {
    if let Some(p) = std::env::var_os("RTFX_CLAP") {
        return PathBuf::from(p);
    }
    let exe = std::env::current_exe().expect("test binary path");
    exe.parent().expect("deps directory").join("librtfx.so")
}

#[test]
fn qtractor_scans_the_clap() {
    if std::env::var_os("RTFX_SKIP_QTRACTOR").is_some() {
        eprintln!("RTFX_SKIP_QTRACTOR is set: skipping");
        return;
    }
    let scanner = scanner().expect("qtractor_plugin_scan (Debian package qtractor) is installed");
    let path = plugin_path();
    let mut child = Command::new(&scanner)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .env_remove("DISPLAY")
        .spawn()
        .expect("the scanner runs");
    writeln!(
        child.stdin.take().expect("stdin"),
        "CLAP:{}",
        path.display()
    )
    .expect("write the request");
    let out = child.wait_with_output().expect("the scanner exits");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let line = stdout
        .lines()
        .find(|l| l.starts_with("CLAP|"))
        .unwrap_or_else(|| {
            panic!(
                "no CLAP| line; stdout: {stdout}; stderr: {}",
                String::from_utf8_lossy(&out.stderr)
            )
        });
    let fields: Vec<&str> = line.split('|').collect();
    assert_eq!(fields[1], "rtfx", "{line}");
    assert_eq!(fields[2], "2:2", "audio ins:outs in {line}");
    assert_eq!(fields[3], "0:0", "MIDI ins:outs in {line}");
    assert_eq!(fields[4], "43:0", "parameters in {line}");
    assert!(fields[5].contains("GUI"), "{line}");
}

//! The standalone app (`rtfx standalone`): headless on the dummy backend for 5 s, with its
//! editor window open under Xvfb, and as a JACK client of a `jackd -d dummy` server (ports
//! registered and connected); all stop cleanly on Ctrl-C (SIGINT), and the windowed app on
//! SIGTERM too, with exit status 0.
//!
//! Needs `jackd` and `jack_lsp` (Debian package jackd2, which `tools/setup.sh` installs); the
//! JACK test fails without them unless `RTFX_SKIP_JACK=1` is set.

#![cfg(target_os = "linux")]

mod x11_common;

use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

fn rtfx_standalone(args: &[&str], envs: &[(&str, &str)]) -> Child {
    // RTFX_TEST_BIN runs these against another build (to see a new check fail on an old one).
    let bin =
        std::env::var_os("RTFX_TEST_BIN").unwrap_or_else(|| env!("CARGO_BIN_EXE_rtfx").into());
    let mut cmd = Command::new(bin);
    cmd.arg("standalone")
        .args(args)
        .env_remove("DISPLAY")
        .env_remove("WAYLAND_DISPLAY")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in envs {
        cmd.env(k, v);
    }
    cmd.spawn().expect("rtfx runs")
}

/// Sends SIGINT (Ctrl-C) and waits at most 30 s for the exit (a JACK client's shutdown waits
/// for the server, which can take seconds on a loaded 2-core machine).
fn interrupt(child: Child) -> Output {
    signal(child, "-INT")
}

/// Sends `signal` (a `kill` option such as "-TERM") and waits at most 30 s for the exit.
fn signal(child: Child, signal: &str) -> Output {
    let pid = child.id().to_string();
    let status = Command::new("kill")
        .args([signal, &pid])
        .status()
        .expect("kill runs");
    assert!(status.success());
    let start = Instant::now();
    let mut child = child;
    loop {
        if child.try_wait().expect("wait").is_some() {
            return child.wait_with_output().expect("output");
        }
        if start.elapsed() > Duration::from_secs(30) {
            let _ = child.kill();
            panic!("the standalone app did not stop within 30 s of kill {signal}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn dummy_backend_runs_headless_and_stops_cleanly() {
    let child = rtfx_standalone(&["-b", "dummy", "-r", "48000", "-p", "256"], &[]);
    std::thread::sleep(Duration::from_secs(5));
    let out = interrupt(child);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "exit {:?}: {stderr}", out.status);
    assert!(stderr.contains("No GUI available for rtfx"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}

/// With an editor window (Xvfb), SIGINT and SIGTERM used to be ignored until SIGKILL: nothing
/// closed the window. They must close it and end the app with status 0.
#[test]
fn with_its_editor_open_sigint_and_sigterm_close_the_window_and_exit_0() {
    if std::env::var_os("RTFX_SKIP_GUI_TESTS").is_some() {
        eprintln!("RTFX_SKIP_GUI_TESTS is set: skipping");
        return;
    }
    let xvfb = x11_common::start_xvfb();
    for sig in ["-INT", "-TERM"] {
        let child = rtfx_standalone(&["-b", "dummy"], &[("DISPLAY", xvfb.display.as_str())]);
        // Until the editor's window is up (its title is the plugin's name).
        let start = Instant::now();
        loop {
            let tree = Command::new("xwininfo")
                .args(["-root", "-tree", "-display", &xvfb.display])
                .output()
                .expect("xwininfo runs");
            if String::from_utf8_lossy(&tree.stdout).contains("\"rtfx\"") {
                break;
            }
            assert!(
                start.elapsed() < Duration::from_secs(30),
                "the editor window did not open"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        std::thread::sleep(Duration::from_millis(500));
        let out = signal(child, sig);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            out.status.success(),
            "kill {sig}: exit {:?}: {stderr}",
            out.status
        );
        assert!(!stderr.contains("panicked"), "{stderr}");
        assert!(
            !stderr.contains("No GUI available"),
            "the editor did not open: {stderr}"
        );
    }
}

#[test]
fn bad_options_are_refused_with_a_message() {
    let out = Command::new(env!("CARGO_BIN_EXE_rtfx"))
        .args(["standalone", "--sample-rate", "fast"])
        .env_remove("DISPLAY")
        .output()
        .expect("rtfx runs");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("sample-rate"), "{stderr}");
}

/// A `jackd -d dummy` server with its own name, stopped on drop.
struct Jackd {
    child: Child,
    name: String,
}

impl Drop for Jackd {
    fn drop(&mut self) {
        // SIGTERM lets jackd remove its shared-memory files; SIGKILL only if it hangs.
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(5) {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn jack_lsp(server: &str) -> Option<String> {
    let out = Command::new("jack_lsp")
        .arg("-c")
        .env("JACK_DEFAULT_SERVER", server)
        .env("JACK_NO_START_SERVER", "1")
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}

#[test]
fn jack_client_of_a_dummy_server() {
    if std::env::var_os("RTFX_SKIP_JACK").is_some() {
        eprintln!("RTFX_SKIP_JACK is set: skipping");
        return;
    }
    let name = format!("rtfx-test-{}", std::process::id());
    let child = Command::new("jackd")
        .args([
            "--no-realtime",
            "-n",
            &name,
            "-d",
            "dummy",
            "-r",
            "48000",
            "-p",
            "256",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("jackd runs (Debian package jackd2, or set RTFX_SKIP_JACK=1)");
    let server = Jackd { child, name };
    let start = Instant::now();
    while jack_lsp(&server.name).is_none() {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "jackd did not start"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let app = rtfx_standalone(
        &[
            "-b",
            "jack",
            "--connect-jack-inputs",
            "system:capture_1,system:capture_2",
        ],
        &[
            ("JACK_DEFAULT_SERVER", server.name.as_str()),
            ("JACK_NO_START_SERVER", "1"),
        ],
    );
    let mut ports = String::new();
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(10) {
        ports = jack_lsp(&server.name).unwrap_or_default();
        if ports.contains("rtfx:output_2") && ports.contains("   rtfx:input_2") {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    std::thread::sleep(Duration::from_secs(2));
    let out = interrupt(app);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "exit {:?}: {stderr}", out.status);
    // Outputs go to the playback ports; inputs come from the capture ports.
    assert!(
        ports.contains("rtfx:output_1\n   system:playback_1"),
        "{ports}"
    );
    assert!(
        ports.contains("system:capture_1\n   rtfx:input_1"),
        "{ports}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
    drop(server);
}

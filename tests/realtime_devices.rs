//! `RealtimeProcessor` + `CpalBackend` on real drivers without a sound card: ALSA's `null` PCM
//! ("Discard all samples (playback) or generate zero samples (capture)", part of alsa-lib) and
//! a JACK server with its dummy driver (`jackd -d dummy`, Debian package jackd2, installed by
//! `tools/setup.sh`). Each run lasts a second or a few; callbacks are counted and the
//! statistics must be sane.
//!
//! The ALSA null device is not paced (it runs callbacks as fast as it can), so its runs check
//! plumbing and statistics, not xruns. The JACK dummy driver is paced like a sound card.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use rtfx::dsp::spec::parse_chain;
use rtfx::realtime::{
    AudioBackend, CpalBackend, DeviceSelector, LatencyStats, ProcessorOptions, RealtimeProcessor,
    StreamConfig,
};

const NULL_DEVICE: &str = "Discard all samples";

/// The device tests run one at a time: the unpaced null device keeps a core busy, which would
/// disturb the paced JACK run's timing.
static DEVICES: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn exclusive() -> std::sync::MutexGuard<'static, ()> {
    DEVICES.lock().unwrap_or_else(|e| e.into_inner())
}

/// The ALSA backend; `None` (after printing why) off Linux, where ALSA does not exist. On
/// Linux a missing ALSA host is a failure, not a silent skip: the test command installs it.
fn alsa_or_skip() -> Option<CpalBackend> {
    if !cfg!(target_os = "linux") {
        println!("SKIPPED: ALSA exists only on Linux");
        return None;
    }
    match CpalBackend::with_host("alsa") {
        Ok(backend) => Some(backend),
        Err(e) => panic!("no ALSA host: {e} (tools/setup.sh installs ALSA)"),
    }
}

fn assert_sane(stats: &LatencyStats, what: &str) {
    assert!(stats.count > 0.0, "{what}: empty log");
    assert!(
        stats.min > 0.0
            && stats.min <= stats.median
            && stats.median <= stats.p95
            && stats.p95 <= stats.p99
            && stats.p99 <= stats.max
            && stats.min <= stats.mean
            && stats.mean <= stats.max,
        "{what}: {stats:?}"
    );
}

fn guitar_chain() -> rtfx::dsp::Chain {
    parse_chain(&[
        "hibutterworth:80,order=2",
        "lobutterworth:8000,order=4",
        "gain:1.5",
        "reverb:room_size=0.3",
    ])
    .unwrap()
}

#[test]
fn alsa_null_device_is_listed_and_runs_output_and_input_streams() {
    let _serial = exclusive();
    let Some(backend) = alsa_or_skip() else {
        return;
    };
    let devices = backend.devices().unwrap();
    let null = devices
        .iter()
        .find(|d| d.name.starts_with(NULL_DEVICE))
        .unwrap_or_else(|| panic!("alsa-lib always defines the null PCM; devices: {devices:?}"));
    assert!(
        null.max_output_channels >= 2 && null.max_input_channels >= 2,
        "{null:?}"
    );

    for (cin, cout) in [(0, 2), (2, 0)] {
        let backend = CpalBackend::with_host("alsa").expect("the ALSA host, found above");
        let config = StreamConfig::new(48000, 256)
            .with_channels(cin, cout)
            .with_devices(
                Some(DeviceSelector::Name("discard".into())),
                Some(DeviceSelector::Name("discard".into())),
            );
        // The null device is not paced: keep the worker, which it wakes constantly, at normal
        // priority.
        let options = ProcessorOptions {
            worker_priority: None,
            ..ProcessorOptions::default()
        };
        let mut p =
            RealtimeProcessor::new(guitar_chain(), Box::new(backend), config, options).unwrap();
        p.start().unwrap();
        assert!(!p.worker_is_realtime());
        p.set_parameter("1.cutoff", 4000.0).unwrap();
        std::thread::sleep(Duration::from_millis(700));
        assert!(p.backend().stream_error().is_none());
        p.stop().unwrap();
        let s = p.stats();
        assert!(s.callback_count > 50, "{cin} in/{cout} out: {s:?}");
        assert!(s.chunk_count > 10, "{cin} in/{cout} out: {s:?}");
        assert_sane(&s.callback_ms, "callback");
        assert_sane(&s.chunk_ms, "chunk");
        assert!(s.chunk_ms.median < s.deadline_ms, "{s:?}");
        assert_eq!(p.get_parameter("1.cutoff").unwrap(), 4000.0);
    }
}

#[test]
fn alsa_null_device_blocking_io() {
    let _serial = exclusive();
    let Some(mut backend) = alsa_or_skip() else {
        return;
    };
    let config = StreamConfig::new(48000, 256)
        .with_channels(1, 2)
        .with_devices(
            Some(DeviceSelector::Name(NULL_DEVICE.into())),
            Some(DeviceSelector::Name(NULL_DEVICE.into())),
        );
    backend.open_stream(&config, None).unwrap();
    backend.start().unwrap();
    let tone: Vec<f32> = (0..9600).map(|i| (i as f32 * 0.05).sin() * 0.5).collect();
    backend.write(&[&tone, &tone]).unwrap();
    let mut captured = vec![1.0f32; 4800];
    backend.read(&mut [&mut captured]).unwrap();
    assert!(
        captured.iter().all(|&x| x == 0.0),
        "the null PCM captures silence"
    );
    backend.stop().unwrap();
    assert!(
        backend.read(&mut [&mut captured]).is_err(),
        "no reads while stopped"
    );
    backend.close();
}

#[test]
fn missing_devices_are_clear_errors() {
    let _serial = exclusive();
    let Some(backend) = alsa_or_skip() else {
        return;
    };
    let config = StreamConfig::new(48000, 256)
        .with_channels(0, 2)
        .with_devices(None, Some(DeviceSelector::Name("no such device".into())));
    let mut p =
        RealtimeProcessor::with_defaults(guitar_chain(), Box::new(backend), config).unwrap();
    let e = p.start().unwrap_err();
    let text = e.to_string();
    assert!(
        text.contains("No output device matches 'no such device'"),
        "{text}"
    );
    assert!(
        text.contains("Discard all samples"),
        "the error lists the devices: {text}"
    );
    assert!(!p.is_running());
    let e = CpalBackend::with_host("nosuchhost").err().unwrap();
    assert!(e.to_string().contains("ALSA"), "{e}");
}

/// A JACK server with the dummy driver, stopped on drop.
///
/// The name is fixed: JACK keeps at most 8 server names in its shared registry and reuses a
/// name's slot only when that name's server is gone, so a name per run would fill it up.
struct JackServer {
    child: Child,
    name: &'static str,
}

impl Drop for JackServer {
    fn drop(&mut self) {
        // SIGTERM lets jackd remove itself from JACK's registry; SIGKILL only if it hangs.
        #[cfg(unix)]
        {
            // SAFETY: signals our own child process.
            unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
            let deadline = Instant::now() + Duration::from_secs(5);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = self.child.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_jack(period: usize) -> Result<JackServer, String> {
    if !cfg!(target_os = "linux") {
        return Err("the JACK test runs on Linux".into());
    }
    let name = "rtfx-test";
    // "-p 16" before "-d" is the port limit: it keeps JACK's shared memory at about 38 MB
    // instead of 107 MB, under the 64 MB /dev/shm of a default Docker container.
    let child = Command::new("jackd")
        .args(["-n", name, "-p", "16", "--no-realtime", "-d", "dummy"])
        .args(["-r", "48000", "-p"])
        .arg(period.to_string())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| {
            format!(
                "cannot run jackd ({e}): install it with tools/setup.sh (Debian package jackd2)"
            )
        })?;
    // SAFETY: only this test reads JACK_DEFAULT_SERVER, and it is set before any JACK client
    // of this process exists.
    unsafe { std::env::set_var("JACK_DEFAULT_SERVER", name) };
    Ok(JackServer { child, name })
}

/// A JACK dummy server at 256 frames; `None` (after printing why) where the JACK tests do not
/// run. On Linux a missing jackd is a failure: the test command installs it.
fn jack_or_skip() -> Option<JackServer> {
    match start_jack(256) {
        Ok(server) => Some(server),
        Err(reason) if !cfg!(target_os = "linux") => {
            println!("SKIPPED: {reason}");
            None
        }
        Err(reason) => panic!("{reason}"),
    }
}

/// Waits until the server accepts clients; returns a backend on it.
fn wait_for_jack(server: &mut JackServer) -> CpalBackend {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        if let Ok(b) = CpalBackend::with_host("jack")
            && b.devices().map(|d| !d.is_empty()).unwrap_or(false)
        {
            return b;
        }
        // (When a server of that name already runs, ours exits and the check above uses it.)
        if let Ok(Some(status)) = server.child.try_wait() {
            panic!(
                "jackd '{}' exited at start ({status}); run `jackd -n {} --no-realtime -d dummy` by hand to see why",
                server.name, server.name
            );
        }
        assert!(
            Instant::now() < deadline,
            "jackd '{}' did not come up",
            server.name
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// `rtfx live` on a JACK server that stops and comes back: it reopens the stream by itself;
/// with --no-reconnect it stops with the error instead.
#[test]
fn rtfx_live_reconnects_when_the_jack_server_comes_back() {
    let _serial = exclusive();
    let Some(mut server) = jack_or_skip() else {
        return;
    };
    drop(wait_for_jack(&mut server));
    let live = |extra: &[&str]| {
        rtfx()
            .args([
                "live",
                "--host",
                "jack",
                "-e",
                "gain:0.5",
                "--in-channels",
                "0",
            ])
            .args(["--duration", "7", "--quiet"])
            .args(extra)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    };
    let child = live(&[]);
    std::thread::sleep(Duration::from_millis(2000));
    drop(server); // the "device" goes away
    std::thread::sleep(Duration::from_millis(1000));
    let mut server = start_jack(256).unwrap();
    drop(wait_for_jack(&mut server));
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{:?}: {err}", out.status);
    assert!(
        err.contains("the stream stopped; reopening it every second"),
        "{err}"
    );
    assert!(err.contains("reconnected after "), "{err}");

    let child = live(&["--no-reconnect"]);
    std::thread::sleep(Duration::from_millis(1500));
    drop(server);
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("the audio stream stopped"), "{err}");
    assert!(err.contains("disconnected"), "{err}");
}

#[test]
fn jack_dummy_server_runs_the_processor_in_real_time() {
    let _serial = exclusive();
    let Some(mut server) = jack_or_skip() else {
        return;
    };
    let backend = wait_for_jack(&mut server);
    let config = StreamConfig::new(48000, 256).with_channels(2, 2);
    let mut p = RealtimeProcessor::new(
        guitar_chain(),
        Box::new(backend),
        config,
        ProcessorOptions::default(),
    )
    .unwrap();
    p.start().unwrap();
    std::thread::sleep(Duration::from_millis(2000));
    p.set_parameter("2.gain", 0.5).unwrap();
    std::thread::sleep(Duration::from_millis(500));
    assert!(p.backend().stream_error().is_none());
    p.stop().unwrap();
    let s = p.stats();
    println!("JACK dummy, 2.5 s at 48 kHz / 256: {s:?}");
    // Paced: about 187.5 callbacks per second.
    assert!(
        (300..=520).contains(&s.callback_count),
        "{} callbacks in 2.5 s",
        s.callback_count
    );
    assert!(s.chunk_count + 8 >= s.callback_count, "{s:?}");
    assert_sane(&s.callback_ms, "callback");
    assert_sane(&s.chunk_ms, "chunk");
    assert!(s.chunk_ms.median < s.deadline_ms / 2.0, "{s:?}");
    // A loaded CI machine may cause server xruns, which are reported, not hidden; the worker
    // itself keeps up.
    assert!(s.output_underflow_count * 10 < s.callback_count, "{s:?}");
}

/// The `rtfx` binary built with this test.
fn rtfx() -> Command {
    // RTFX_TEST_BIN runs these against another build (to see a new check fail on an old one).
    Command::new(
        std::env::var_os("RTFX_TEST_BIN").unwrap_or_else(|| env!("CARGO_BIN_EXE_rtfx").into()),
    )
}

#[test]
fn rtfx_devices_and_live_on_the_null_device() {
    let _serial = exclusive();
    if alsa_or_skip().is_none() {
        return;
    }
    let out = rtfx().args(["devices", "--host", "alsa"]).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(text.contains(NULL_DEVICE), "{text}");

    let dir = std::env::temp_dir().join(format!("rtfx-live-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let json = dir.join("stats.json");
    let out = rtfx()
        .args(["live", "-e", "highpass:80,q=0.707", "-e", "gain:0.5"])
        .args([
            "--host",
            "alsa",
            "--output",
            "discard",
            "--in-channels",
            "0",
        ])
        .args([
            "--rate",
            "48000",
            "--buffer",
            "256",
            "--duration",
            "1.2",
            "--stats-json",
        ])
        .arg(&json)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(
        err.contains("callbacks") && err.contains("% of 5.333 ms"),
        "{err}"
    );
    let stats: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    for key in [
        "count",
        "min",
        "median",
        "mean",
        "p95",
        "p99",
        "max",
        "dsp_p99",
        "callback_count",
        "chunk_count",
        "xrun_count",
        "input_overflow_count",
        "output_underflow_count",
        "backend_xrun_count",
        "buffer_size",
        "sample_rate",
        "deadline_ms",
        "latency_ms",
    ] {
        assert!(
            stats.get(key).is_some_and(|v| v.is_number()),
            "{key} in {stats}"
        );
    }
    assert_eq!(stats["buffer_size"], 256);
    assert_eq!(stats["sample_rate"], 48000);
    assert!(stats["callback_count"].as_u64().unwrap() > 10, "{stats}");
    std::fs::remove_dir_all(&dir).unwrap();

    // --device cuda: the leading filters on a CUDA graph where there is a GPU; here (no GPU, or
    // a build without the feature) one message says why, and the chain runs on the CPU.
    let out = rtfx()
        .args([
            "live",
            "--device",
            "cuda",
            "-e",
            "hibutterworth:80,order=2",
            "-e",
            "gain:0.5",
        ])
        .args([
            "--host",
            "alsa",
            "--output",
            "discard",
            "--in-channels",
            "0",
        ])
        .args(["--duration", "0.5", "--quiet"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    let on_gpu = err.contains("note: --device cuda: hibutterworth on a CUDA graph on ");
    let explained = err.matches("warning: --device cuda: ").count() == 1
        && err.contains("; running on the CPU");
    assert!(
        on_gpu != explained,
        "exactly one of the two outcomes: {err}"
    );
    assert!(err.contains("callbacks"), "{err}");

    // A duplex stream whose input device runs at another rate: the input is resampled.
    let out = rtfx()
        .args(["live", "-e", "gain:0.5", "--host", "alsa"])
        .args([
            "--input", "discard", "--output", "discard", "--rate", "48000",
        ])
        .args(["--input-rate", "44100", "--duration", "0.5", "--quiet"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(
        err.contains("note: the input device runs at 44100 Hz; rtfx resamples it to 48000 Hz"),
        "{err}"
    );
    assert!(
        err.contains("2 in / 2 out") && err.contains("callbacks"),
        "{err}"
    );

    // No effects (usage error, exit 2), an unknown device (exit 1): the fix is in the message.
    let out = rtfx().args(["live", "--duration", "1"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2), "a usage error");
    assert!(String::from_utf8_lossy(&out.stderr).contains("no effects specified"));
    let out = rtfx()
        .args([
            "live",
            "-e",
            "gain:1",
            "--host",
            "alsa",
            "--output",
            "nonexistent",
            "--in-channels",
            "0",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("No output device matches 'nonexistent'"),
        "{err}"
    );
}

#[cfg(unix)]
#[test]
fn rtfx_live_stops_cleanly_on_ctrl_c() {
    let _serial = exclusive();
    if alsa_or_skip().is_none() {
        return;
    }
    let child = rtfx()
        .args([
            "live", "-e", "gain:0.5", "--host", "alsa", "--output", "discard",
        ])
        .args(["--in-channels", "0", "--buffer", "512"])
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(1500));
    // SAFETY: signals our own child process.
    assert_eq!(unsafe { libc::kill(child.id() as i32, libc::SIGINT) }, 0);
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{:?}: {err}", out.status);
    assert!(err.contains("stopping (Ctrl-C)"), "{err}");
}

/// `rtfx live … 2>&1 | head -1`: the reader of stderr goes away; the next status line used
/// to panic (exit 101). Status lines are dropped instead and the run ends normally.
#[cfg(unix)]
#[test]
fn rtfx_live_survives_stderr_closing() {
    let _serial = exclusive();
    if alsa_or_skip().is_none() {
        return;
    }
    let mut child = rtfx()
        .args([
            "live", "-e", "gain:0.5", "--host", "alsa", "--output", "discard",
        ])
        .args(["--in-channels", "0", "--duration", "2.5"])
        .stderr(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    // Read the first line, as `head -1` would, then hang up both streams.
    let mut first = String::new();
    let mut err = std::io::BufReader::new(child.stderr.take().unwrap());
    std::io::BufRead::read_line(&mut err, &mut first).unwrap();
    drop(err);
    drop(child.stdout.take());
    let status = child.wait().unwrap();
    assert!(first.starts_with("rtfx live:"), "{first}");
    assert!(status.success(), "{status:?}");
}

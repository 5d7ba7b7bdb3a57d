//! The `.vst3` in a real VST3 host: pedalboard (PyPI; JUCE's VST3 hosting). The plugin is
//! loaded with a few parameter settings, processes noise, and must match the renderer's chain
//! for the same settings (`StripSettings::to_chain`, which "Export chain…" writes); its state
//! must round-trip through the host, and latency must be reported.
//!
//! Python: `RTFX_HOST_PYTHON`, else the venv `tools/setup.sh` creates in
//! `<target>/host-venv` (`python3 -m venv` + `pip install pedalboard numpy`). The test fails
//! when neither works; set `RTFX_SKIP_VST3_HOST=1` to skip it deliberately. The bundle is made
//! from the debug library `cargo test` builds, unless `RTFX_VST3` names one (for example
//! `target/bundled/rtfx.vst3`).

#![cfg(target_os = "linux")]

use std::path::{Path, PathBuf};
use std::process::Command;

use nice_plug::params::Params;
use rtfx::plugin::params::RtfxParams;

const RATE: f64 = 48_000.0;

const SCRIPT: &str = r#"
import json, sys
import numpy as np
import pedalboard

plugin_path, in_path, out_path, params_json, rate = sys.argv[1:6]
rate = float(rate)
params = json.loads(params_json)
x = np.fromfile(in_path, dtype="<f4").reshape(2, -1)
p = pedalboard.load_plugin(plugin_path)
for k, v in params.items():
    setattr(p, k, v)
y = p.process(x, rate, reset=True)
state = p.raw_state
q = pedalboard.load_plugin(plugin_path)
q.raw_state = state
y2 = q.process(x, rate, reset=True)
lim = pedalboard.load_plugin(plugin_path)
lim.limiter = True
lim.limiter_lookahead_ms = 5.0
lim.process(np.zeros((2, 512), dtype=np.float32), rate)
np.ascontiguousarray(y, dtype="<f4").tofile(out_path)
print(json.dumps({
    "name": p.name,
    "parameters": len(p.parameters),
    "state_identical": bytes(q.raw_state) == bytes(state),
    "reload_max_diff": float(np.abs(y - y2).max()),
    "values": {k: str(getattr(q, k)) for k in params},
    "raw": [float(v.raw_value) for v in q.parameters.values()],
    "limiter_latency": int(lim.reported_latency_samples),
}))
"#;

fn python() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("RTFX_HOST_PYTHON") {
        return Some(PathBuf::from(p));
    }
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("target"));
    let venv = target.join("host-venv/bin/python");
    venv.exists().then_some(venv)
}

/// A `.vst3` bundle around the library `cargo test` just built (a symlink, no copy).
fn bundle() -> PathBuf {
    if let Some(p) = std::env::var_os("RTFX_VST3") {
        return PathBuf::from(p);
    }
    let exe = std::env::current_exe().expect("test binary path");
    let lib = exe.parent().expect("deps directory").join("librtfx.so");
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("rtfx-test.vst3");
    let arch = PathBuf::from(format!("Contents/{}-linux", std::env::consts::ARCH));
    let so = dir.join(&arch).join("rtfx-test.so");
    std::fs::create_dir_all(dir.join(&arch)).expect("bundle directory");
    let _ = std::fs::remove_file(&so);
    std::os::unix::fs::symlink(&lib, &so).expect("link the library into the bundle");
    dir
}

fn noise(frames: usize, seed: u64) -> Vec<f32> {
    rtfx::dsp::noise::noise(frames, seed, 0.4)
}

#[test]
fn pedalboard_matches_the_exported_chain_and_round_trips_state() {
    if std::env::var_os("RTFX_SKIP_VST3_HOST").is_some() {
        eprintln!("RTFX_SKIP_VST3_HOST is set: skipping");
        return;
    }
    let python = python().expect(
        "a Python with pedalboard: run tools/setup.sh, or set RTFX_HOST_PYTHON \
         (or RTFX_SKIP_VST3_HOST=1 to skip)",
    );
    let tmp = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
    let frames = 48_000;
    let (l, r) = (noise(frames, 1), noise(frames, 2));
    let input_path = tmp.join("vst3-in.f32");
    let output_path = tmp.join("vst3-out.f32");
    let script_path = tmp.join("vst3_host.py");
    let bytes: Vec<u8> = l.iter().chain(&r).flat_map(|x| x.to_le_bytes()).collect();
    std::fs::write(&input_path, bytes).unwrap();
    std::fs::write(&script_path, SCRIPT).unwrap();

    // The same settings for pedalboard (display units) and for the strip.
    let params = r#"{"input_gain_db": -3.0, "high_pass": true, "high_pass_cutoff": 120.0,
        "high_pass_order": 4, "eq": true, "peak_freq": 2000.0, "peak_gain_db": 6.0,
        "peak_q": 1.5, "compressor": true, "comp_threshold_db": -24.0, "delay": true,
        "delay_time_ms": 125.0, "delay_feedback": 40.0, "delay_mix": 30.0, "reverb": true,
        "reverb_size": 60.0, "output_gain_db": -2.0}"#;
    let out = Command::new(&python)
        .arg(&script_path)
        .arg(bundle())
        .arg(&input_path)
        .arg(&output_path)
        .arg(params.replace('\n', " "))
        .arg(RATE.to_string())
        .output()
        .expect("python runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "host script failed: {stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report = stdout.lines().last().unwrap_or_default();
    eprintln!("pedalboard: {report}");
    assert!(report.contains(r#""name": "rtfx""#), "{report}");
    assert!(report.contains(r#""parameters": 43"#), "{report}");
    assert!(
        report.contains(r#""state_identical": true"#),
        "state did not round-trip: {report}"
    );
    assert!(
        report.contains(r#""reload_max_diff": 0.0"#),
        "a reloaded state sounds different: {report}"
    );
    assert!(report.contains(r#""limiter_latency": 240"#), "{report}");

    // pedalboard snaps values to its own grid (125 ms becomes 125.2 ms): rebuild the settings
    // from the normalized values the host reports, in parameter order.
    let raw: Vec<f32> = report
        .split("\"raw\": [")
        .nth(1)
        .and_then(|t| t.split(']').next())
        .expect("raw values")
        .split(',')
        .map(|v| v.trim().parse().expect("a number"))
        .collect();
    let params = RtfxParams::default();
    let map = params.param_map();
    assert_eq!(raw.len(), map.len());
    for ((_, ptr, _), v) in map.iter().zip(&raw) {
        unsafe {
            ptr._internal_set_normalized_value(*v);
        }
    }
    let s = params.settings(120.0);
    assert!(s.high_pass.enabled && s.eq.enabled && s.delay.enabled && s.reverb.enabled);
    assert_eq!(s.high_pass.order, 4);
    assert!(
        (s.high_pass.cutoff_hz - 120.0).abs() < 1.0,
        "{}",
        s.high_pass.cutoff_hz
    );
    assert!((s.input_gain_db + 3.0).abs() < 0.05);
    let data = std::fs::read(&output_path).unwrap();
    let host: Vec<f32> = data
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect();
    assert_eq!(host.len(), 2 * frames);

    let mut chain = s.to_chain().expect("chain");
    chain.prepare(RATE, 8192, 2).expect("prepare");
    let (mut el, mut er) = (l.clone(), r.clone());
    let mut start = 0;
    while start < frames {
        let end = (start + 8192).min(frames);
        chain.process(&mut [&mut el[start..end], &mut er[start..end]]);
        start = end;
    }
    let diff = el
        .iter()
        .chain(&er)
        .zip(&host)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0f32, f32::max);
    let peak = host.iter().fold(0.0f32, |m, x| m.max(x.abs()));
    eprintln!("max difference to the chain: {diff} (peak {peak})");
    assert!(peak > 0.05, "the host got silence");
    assert!(
        diff < 1e-5,
        "pedalboard output and the exported chain differ by {diff}"
    );
}

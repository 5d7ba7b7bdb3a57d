//! Helpers shared by the integration tests: every registered effect built with valid
//! parameters, and deterministic test signals.
#![allow(dead_code)]

use std::path::Path;

use rtfx::dsp::registry::{self, EffectEntry};
use rtfx::dsp::{Effect, ParamInfo, ParamValue};

/// A valid value for a required parameter (one whose default is unset).
pub fn example_value(entry: &EffectEntry, p: &ParamInfo) -> f64 {
    if entry.name == "gain" && p.name == "gain" {
        return 2.0; // the default, 1.0, would make the effect a no-op in tests
    }
    if !p.default.is_nan() {
        return p.default;
    }
    match p.name {
        "cutoff" | "frequency" => 1000.0,
        "q" => 0.707,
        "gain" if entry.name == "parametriceq" => 6.0,
        "gain" => 2.0,
        "delay_samples" => 2400.0,
        "bpm" => 120.0,
        _ => p.clamp(1.0),
    }
}

/// The parameters that make `entry` buildable: every required group's first member.
pub fn example_params(entry: &EffectEntry) -> Vec<(String, ParamValue)> {
    let effect = (entry.build)();
    entry
        .required
        .iter()
        .filter_map(|group| group.first())
        .filter_map(|name| effect.params().iter().find(|p| p.name == *name))
        .map(|p| (p.name.to_string(), p.to_value(example_value(entry, p))))
        .collect()
}

/// Every registered effect, built with valid parameters.
pub fn all_effects() -> Vec<Box<dyn Effect>> {
    registry::entries()
        .iter()
        .map(|entry| {
            registry::build(entry.name, &example_params(entry))
                .unwrap_or_else(|e| panic!("registry entry '{}' does not build: {e}", entry.name))
        })
        .collect()
}

/// Effects whose output for a block depends on the whole block by design (per-chunk
/// normalisation), so chunked output legitimately differs from one-shot output.
pub fn is_block_wise(name: &str) -> bool {
    name == "normalize"
}

/// Deterministic white noise in [-amplitude, amplitude).
#[allow(unused_imports)] // not every test binary that shares this module uses it
pub use rtfx::dsp::noise::noise;

/// Runs `effect` over planar `channels` in consecutive blocks of the given sizes (cycled).
pub fn process_in_blocks(effect: &mut dyn Effect, channels: &mut [Vec<f32>], sizes: &[usize]) {
    let frames = channels[0].len();
    let mut start = 0;
    let mut i = 0;
    while start < frames {
        let n = sizes[i % sizes.len()].min(frames - start);
        let mut views: Vec<&mut [f32]> = channels
            .iter_mut()
            .map(|c| &mut c[start..start + n])
            .collect();
        effect.process(&mut views);
        start += n;
        i += 1;
    }
}

/// Writes planar audio as 32-bit float WAV with hound (a writer independent of rtfx's).
pub fn write_float_wav(path: &std::path::Path, rate: u32, planar: &[Vec<f32>]) {
    let spec = hound::WavSpec {
        channels: planar.len() as u16,
        sample_rate: rate,
        bits_per_sample: 32,
        sample_format: hound::SampleFormat::Float,
    };
    let mut w = hound::WavWriter::create(path, spec).expect("hound create");
    for i in 0..planar[0].len() {
        for ch in planar {
            w.write_sample(ch[i]).expect("hound write");
        }
    }
    w.finalize().expect("hound finalize");
}

/// Reads any WAV with hound, interleaved, integers scaled to [-1, 1).
pub fn hound_read_interleaved(path: &std::path::Path) -> (hound::WavSpec, Vec<f32>) {
    let mut r = hound::WavReader::open(path).expect("hound open");
    let spec = r.spec();
    let samples = match spec.sample_format {
        hound::SampleFormat::Float => r.samples::<f32>().map(|s| s.expect("sample")).collect(),
        hound::SampleFormat::Int => {
            let scale = 2f32.powi(i32::from(spec.bits_per_sample) - 1);
            r.samples::<i32>()
                .map(|s| s.expect("sample") as f32 / scale)
                .collect()
        }
    };
    (spec, samples)
}

/// What a run of the `rtfx` binary gave.
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

/// The `rtfx` binary under test: the one built with the tests, or `RTFX_TEST_BIN` (to show
/// that a new check fails on an older build).
pub fn rtfx_bin() -> std::ffi::OsString {
    std::env::var_os("RTFX_TEST_BIN").unwrap_or_else(|| env!("CARGO_BIN_EXE_rtfx").into())
}

/// Runs the `rtfx` binary under test in `dir`.
pub fn rtfx(dir: &Path, args: &[&str]) -> Run {
    let out = assert_cmd::Command::new(rtfx_bin())
        .current_dir(dir)
        .args(args)
        .output()
        .expect("rtfx runs");
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// Files in `dir`, sorted by name.
pub fn listing(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// Fails when a renderer temporary file (`.NAME.tmp-XXXX`) was left in `dir`.
pub fn assert_no_temp_files(dir: &Path) {
    let left: Vec<String> = listing(dir)
        .into_iter()
        .filter(|n| n.contains(".tmp-"))
        .collect();
    assert!(left.is_empty(), "temporary files left behind: {left:?}");
}

/// Renders `input` to `output` through the chain given as specs, with the library's
/// `render_file` (8000-frame chunks; the output is the same for any chunk size).
pub fn render_specs(
    chain: &[&str],
    input: &Path,
    output: &Path,
    options: &rtfx::offline::render::RenderOptions,
) -> rtfx::offline::render::RenderReport {
    let chain = rtfx::dsp::spec::parse_chain(chain).expect("chain");
    let mut p = rtfx::offline::stream::StreamProcessor::new(chain, 8000, 0).expect("processor");
    rtfx::offline::render::render_file(
        &mut p,
        input,
        output,
        options,
        &mut |_| {},
        &std::sync::atomic::AtomicBool::new(false),
    )
    .expect("render")
}

/// A running process's peak resident set in KiB (`VmHWM` in `/proc/PID/status`: of that
/// program alone, unlike `wait4`'s maxrss, which counts the forked test too); `None` once it
/// has gone.
#[cfg(target_os = "linux")]
pub fn peak_rss_kib(pid: u32) -> Option<f64> {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()?
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

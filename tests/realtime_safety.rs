//! Proof that the audio path never allocates: every effect and a long chain run inside
//! `assert_no_alloc` over block sizes 0, 1, 7, 64, 512 and 4096, including while parameters
//! ramp. assert_no_alloc's allocator is this test binary's global allocator; a violation
//! aborts the process, which fails the test run. `the_checker_is_armed` proves it would.

mod common;

use assert_no_alloc::{AllocDisabler, assert_no_alloc};
use rtfx::dsp::Chain;
use rtfx::dsp::registry;

#[global_allocator]
static ALLOCATOR: AllocDisabler = AllocDisabler;

const SIZES: [usize; 6] = [0, 1, 7, 64, 512, 4096];

fn buffers(frames: usize) -> (Vec<f32>, Vec<f32>) {
    (common::noise(frames, 1, 0.9), common::noise(frames, 2, 0.9))
}

#[test]
fn every_effect_processes_without_allocating() {
    for mut effect in common::all_effects() {
        effect
            .prepare(48000.0, 4096, 2)
            .unwrap_or_else(|e| panic!("{}: {e}", effect.name()));
        let (mut l, mut r) = buffers(4096);
        for &n in &SIZES {
            assert_no_alloc(|| {
                effect.process(&mut [&mut l[..n], &mut r[..n]]);
                effect.reset();
                effect.process(&mut [&mut l[..n], &mut r[..n]]);
            });
        }
        assert!(
            l.iter().chain(&r).all(|v| v.is_finite()),
            "{}",
            effect.name()
        );
    }
}

#[test]
fn long_chain_processes_and_ramps_without_allocating() {
    let mut chain = Chain::new(common::all_effects());
    chain
        .prepare(48000.0, 4096, 2)
        .expect("chain of every effect prepares");
    // Resolve the addresses of every smoothed parameter off the audio path.
    let mut targets = Vec::new();
    for (i, effect) in chain.effects().iter().enumerate() {
        for p in effect.params().iter().filter(|p| p.smoothed) {
            let path = format!("{i}.{}", p.name);
            let addr = chain.resolve(&path).unwrap();
            let now = chain.get_param(&path).unwrap();
            let target = p.clamp(if now.is_nan() { p.default } else { now * 0.9 });
            targets.push((addr, target));
        }
    }
    assert!(!targets.is_empty());
    let (mut l, mut r) = buffers(4096);
    for &n in &SIZES {
        assert_no_alloc(|| {
            for &(addr, target) in &targets {
                chain.set_param_at(addr, target);
            }
            chain.process(&mut [&mut l[..n], &mut r[..n]]);
            chain.process(&mut [&mut l[..n], &mut r[..n]]);
        });
    }
    assert!(l.iter().chain(&r).all(|v| v.is_finite()));
}

#[test]
fn every_effect_builds_from_the_registry() {
    let effects = common::all_effects();
    assert_eq!(effects.len(), registry::entries().len());
    assert!(
        effects.len() >= 35,
        "only {} effects registered",
        effects.len()
    );
}

/// Runs in a child process: allocating inside `assert_no_alloc` must abort it. This proves the
/// allocator above is installed and armed, so the tests above can fail.
#[test]
fn the_checker_is_armed() {
    if std::env::var_os("RTFX_ALLOC_CHILD").is_some() {
        assert_no_alloc(|| {
            let v = std::hint::black_box(vec![0u8; 64]);
            drop(v);
        });
        return; // not reached when the checker works
    }
    let exe = std::env::current_exe().unwrap();
    let out = std::process::Command::new(exe)
        .args([
            "--exact",
            "the_checker_is_armed",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("RTFX_ALLOC_CHILD", "1")
        .output()
        .unwrap();
    assert!(
        !out.status.success(),
        "an allocation inside assert_no_alloc went unnoticed"
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("memory allocation"),
        "unexpected child failure: {stderr}"
    );
}

/// The duplex input's sample-rate converter runs in the input callback: no allocation, any
/// piece size up to its maximum.
#[test]
fn the_resampler_processes_without_allocating() {
    use rtfx::dsp::resample::Resampler;
    for (from, to) in [(44_100, 48_000), (48_000, 44_100), (96_000, 48_000)] {
        let mut r = Resampler::new(from, to, 2, 4096).expect("resampler");
        let input = vec![0.1f32; 4096 * 2];
        let mut output = vec![0.0f32; r.max_output(4096) * 2];
        let mut produced = 0;
        assert_no_alloc(|| {
            for frames in [0usize, 1, 7, 64, 512, 4096, 4096, 333] {
                produced += r.process(&input[..frames * 2], &mut output);
            }
        });
        assert!(produced > 0, "{from} -> {to}");
    }
}

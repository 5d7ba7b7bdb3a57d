//! `RealtimeProcessor` driven callback by callback through the test backend: priming,
//! chunking, staged parameters, counters and statistics, channel adaptation, errors, the
//! worker thread, and no allocation on the audio path (this binary's global allocator aborts on
//! any allocation inside `assert_no_alloc`).

use std::time::{Duration, Instant};

use assert_no_alloc::{AllocDisabler, assert_no_alloc};
use rtfx::Error;
use rtfx::dsp::Chain;
use rtfx::dsp::spec::parse_chain;
use rtfx::realtime::{
    BackendStatus, ProcessorOptions, RealtimeProcessor, StreamConfig, StreamState, TestBackend,
    TestDriver,
};

#[global_allocator]
static ALLOCATOR: AllocDisabler = AllocDisabler;

const OK: BackendStatus = BackendStatus {
    input_overflow: false,
    output_underflow: false,
    input_underflow: false,
    output_overflow: false,
    priming_output: false,
};

fn manual() -> ProcessorOptions {
    ProcessorOptions {
        start_worker: false,
        ..ProcessorOptions::default()
    }
}

fn chain(specs: &[&str]) -> Chain {
    let mut c = parse_chain(specs).unwrap();
    c.set_smoothing_ms(0.0).unwrap();
    c
}

fn setup(
    specs: &[&str],
    config: StreamConfig,
    options: ProcessorOptions,
) -> (RealtimeProcessor, TestDriver) {
    let (backend, driver) = TestBackend::new();
    let p = RealtimeProcessor::new(chain(specs), Box::new(backend), config, options).unwrap();
    (p, driver)
}

/// Deterministic noise.
fn noise(n: usize, seed: u64) -> Vec<f32> {
    rtfx::dsp::noise::noise(n, seed, 0.8)
}

#[test]
fn priming_gives_one_silent_block_then_processed_audio() {
    let config = StreamConfig::new(48000, 64).with_channels(1, 1);
    let (mut p, driver) = setup(&["gain:2"], config, manual());
    assert_eq!(p.latency_ms(), 2.0 * 64.0 / 48.0);
    assert_eq!(p.deadline_ms(), 64.0 / 48.0);
    p.start().unwrap();
    assert!(p.is_running());
    let mut out = vec![9.0f32; 64];
    let input: Vec<f32> = (0..64).map(|i| i as f32 / 64.0).collect();
    assert!(driver.run(&[&input], &mut [&mut out], OK));
    assert!(
        out.iter().all(|&x| x == 0.0),
        "first callback plays the primed block"
    );
    assert_eq!(p.output_underflow_count(), 0);
    assert_eq!(p.process_pending().unwrap(), 1);
    assert!(driver.run(&[&input], &mut [&mut out], OK));
    for (o, i) in out.iter().zip(&input) {
        assert_eq!(*o, 2.0 * i);
    }
    // Two primed blocks: two silent callbacks, three blocks of latency.
    let options = ProcessorOptions {
        prime_blocks: 2,
        ..manual()
    };
    let (mut q, d2) = setup(
        &["gain:2"],
        StreamConfig::new(48000, 64).with_channels(1, 1),
        options,
    );
    assert_eq!(q.latency_ms(), 3.0 * 64.0 / 48.0);
    q.start().unwrap();
    for _ in 0..2 {
        d2.run(&[&input], &mut [&mut out], OK);
        assert!(out.iter().all(|&x| x == 0.0));
        q.process_pending().unwrap();
    }
    d2.run(&[&input], &mut [&mut out], OK);
    assert_eq!(out[1], 2.0 * input[1]);
    assert_eq!(q.xrun_count(), 0);
    // Without priming the first callback underflows.
    let options = ProcessorOptions {
        prime_output: false,
        ..manual()
    };
    let (mut q, d2) = setup(
        &["gain:2"],
        StreamConfig::new(48000, 64).with_channels(1, 1),
        options,
    );
    assert_eq!(q.latency_ms(), 64.0 / 48.0);
    q.start().unwrap();
    d2.run(&[&input], &mut [&mut out], OK);
    assert_eq!(q.output_underflow_count(), 1);
    assert_eq!(q.xrun_count(), 1);
}

#[test]
fn process_pending_counts_chunks() {
    // Blocks of 32, rings of 4 blocks (128 frames); the output ring starts with the primed block.
    let config = StreamConfig::new(48000, 32).with_channels(1, 1);
    let (mut p, driver) = setup(&["gain:1"], config, manual());
    p.start().unwrap();
    assert_eq!(p.process_pending().unwrap(), 0, "nothing to process yet");
    // One device buffer of 96 frames is 3 callbacks of 32 (through the block adapter); nothing
    // is processed meanwhile, so the primed block plays, then two callbacks underflow.
    let input = vec![0.5f32; 96];
    let mut out = vec![0.0f32; 96];
    driver.run(&[&input], &mut [&mut out], OK);
    assert_eq!(p.callback_count(), 3);
    assert_eq!(p.output_underflow_count(), 2);
    assert_eq!(p.process_pending().unwrap(), 3);
    assert_eq!(p.chunk_count(), 3);
    // The three processed blocks play next, in order.
    driver.run(&[&input], &mut [&mut out], OK);
    assert_eq!(out, vec![0.5f32; 96]);
    assert_eq!(p.output_underflow_count(), 2);
}

#[test]
fn output_ring_full_stops_processing() {
    let config = StreamConfig::new(48000, 16).with_channels(1, 1);
    let options = ProcessorOptions {
        ring_blocks: 2,
        ..manual()
    };
    let (mut p, driver) = setup(&["gain:1"], config, options);
    p.start().unwrap();
    let input = vec![0.1f32; 16];
    let mut out = vec![0.0f32; 16];
    driver.run(&[&input], &mut [&mut out], OK); // plays the primed block, 1 block in
    driver.run(&[&input], &mut [&mut out], OK); // underflow, 2 blocks in (input ring full)
    driver.run(&[&input], &mut [&mut out], OK); // underflow, input overflow
    assert_eq!(p.input_overflow_count(), 1);
    assert_eq!(p.output_underflow_count(), 2);
    assert_eq!(p.xrun_count(), 3);
    // The 2 blocks that fit were kept; the third was dropped.
    assert_eq!(p.process_pending().unwrap(), 2);
    assert_eq!(p.process_pending().unwrap(), 0);
    // Output only: silence is processed until the output ring (4 blocks, 1 primed) is full.
    let config = StreamConfig::new(48000, 16).with_channels(0, 1);
    let (mut p, driver) = setup(&["gain:1"], config, manual());
    p.start().unwrap();
    assert_eq!(p.process_pending().unwrap(), 3);
    assert_eq!(p.process_pending().unwrap(), 0, "the output ring is full");
    driver.run(&[], &mut [&mut out], OK);
    assert_eq!(p.process_pending().unwrap(), 1);
    assert_eq!(p.stats().output_ring_frames, 64);
}

#[test]
fn counters_latency_log_and_stats() {
    let config = StreamConfig::new(48000, 8).with_channels(1, 1);
    let options = ProcessorOptions {
        latency_log_size: 5,
        ..manual()
    };
    let (mut p, driver) = setup(&["gain:1"], config, options);
    let empty = p.latency_stats_ms();
    assert!(empty.entries().iter().all(|(_, v)| *v == 0.0));
    assert_eq!(
        empty.entries().map(|(k, _)| k),
        ["count", "min", "median", "mean", "p95", "p99", "max"]
    );
    p.start().unwrap();
    let input = [0.0f32; 8];
    let mut out = [0.0f32; 8];
    let xrun = BackendStatus {
        output_underflow: true,
        ..OK
    };
    let priming = BackendStatus {
        priming_output: true,
        ..OK
    };
    driver.run(&[&input], &mut [&mut out], xrun);
    p.process_pending().unwrap();
    driver.run(&[&input], &mut [&mut out], priming);
    p.process_pending().unwrap();
    assert_eq!(p.backend_xrun_count(), 1, "priming_output is not an xrun");
    assert_eq!(p.xrun_count(), 1);
    for _ in 0..10 {
        driver.run(&[&input], &mut [&mut out], OK);
        p.process_pending().unwrap();
    }
    assert_eq!(p.callback_count(), 12);
    let log = p.latency_log_ns();
    assert_eq!(
        log.len(),
        5,
        "the log keeps the last latency_log_size entries"
    );
    let stats = p.latency_stats_ms();
    assert_eq!(stats.count, 5.0);
    let mut sorted = log.clone();
    sorted.sort_unstable();
    assert_eq!(stats.min, sorted[0] as f64 / 1e6);
    assert_eq!(stats.median, sorted[2] as f64 / 1e6);
    assert_eq!(stats.p95, sorted[4] as f64 / 1e6);
    assert_eq!(stats.max, sorted[4] as f64 / 1e6);
    assert!(stats.min > 0.0 && stats.max < 50.0, "{stats:?}");
    assert_eq!(p.chunk_stats_ms().count, 5.0);
    let s = p.stats();
    assert_eq!(
        (
            s.callback_count,
            s.chunk_count,
            s.buffer_size,
            s.sample_rate
        ),
        (12, 12, 8, 48000)
    );
    let json = s.to_json();
    for key in [
        "\"count\": 5",
        "\"p99\":",
        "\"dsp_median\":",
        "\"xrun_count\": 1",
        "\"backend_xrun_count\": 1",
        "\"buffer_size\": 8",
        "\"sample_rate\": 48000",
    ] {
        assert!(json.contains(key), "{key} missing in {json}");
    }
    p.reset_metrics();
    assert_eq!(
        (
            p.callback_count(),
            p.xrun_count(),
            p.backend_xrun_count(),
            p.chunk_count()
        ),
        (0, 0, 0, 0)
    );
    assert_eq!(p.latency_stats_ms().count, 0.0);
    assert!(p.latency_log_ns().is_empty());
}

#[test]
fn start_stop_errors_and_backend_calls() {
    let config = StreamConfig::new(48000, 32).with_channels(0, 2);
    let (mut p, driver) = setup(&["gain:1"], config, manual());
    let e = p.stop().unwrap_err();
    assert_eq!(
        e.to_string(),
        "Processor is not running | Suggestion: Call start() first"
    );
    assert!(e.is_realtime());
    p.start().unwrap();
    let e = p.start().unwrap_err();
    assert_eq!(
        e.to_string(),
        "Processor is already running | Suggestion: Call stop() before starting again"
    );
    assert_eq!(driver.state(), StreamState::Running);
    p.stop().unwrap();
    assert_eq!(driver.state(), StreamState::Closed);
    assert!(!p.is_running());
    let c = driver.counts();
    assert_eq!((c.open, c.start, c.stop, c.close), (1, 1, 1, 1));
    // A failing backend leaves the processor stopped, with the backend's error unchanged.
    driver.fail_next_open("no such device");
    let e = p.start().unwrap_err();
    assert_eq!(e.message(), "Failed to open audio stream: no such device");
    assert!(!p.is_running());
    driver.fail_next_start("device busy");
    let e = p.start().unwrap_err();
    assert!(e.message().contains("device busy"), "{e}");
    assert!(!p.is_running());
    assert_eq!(p.backend().state(), StreamState::Closed);
    // It starts fine afterwards, in worker mode too.
    p.start().unwrap();
    p.stop().unwrap();
    let (mut w, wd) = setup(
        &["gain:1"],
        StreamConfig::new(48000, 32).with_channels(0, 2),
        ProcessorOptions::default(),
    );
    wd.fail_next_open("gone");
    assert!(w.start().is_err());
    w.start().unwrap();
    assert!(
        w.process_pending()
            .unwrap_err()
            .to_string()
            .contains("start_worker: false")
    );
    w.stop().unwrap();
    assert_eq!(
        w.process_pending().unwrap(),
        0,
        "after stop the engine is back"
    );
}

#[test]
fn construction_is_validated() {
    let bad = |config: StreamConfig, options: ProcessorOptions, specs: &[&str]| {
        let (backend, _) = TestBackend::new();
        RealtimeProcessor::new(chain(specs), Box::new(backend), config, options)
            .err()
            .unwrap()
    };
    let c = StreamConfig::new(48000, 64);
    let e = bad(
        c.clone(),
        ProcessorOptions {
            ring_blocks: 1,
            ..manual()
        },
        &["gain:1"],
    );
    assert_eq!(e.parameter_name(), Some("ring_blocks"));
    assert!(matches!(e, Error::InvalidRange(_)));
    let e = bad(StreamConfig::new(0, 64), manual(), &["gain:1"]);
    assert!(matches!(e, Error::InvalidSampleRate(_)));
    let e = bad(StreamConfig::new(800_000, 64), manual(), &["gain:1"]);
    assert!(matches!(e, Error::InvalidSampleRate(_)));
    let e = bad(StreamConfig::new(48000, 0), manual(), &["gain:1"]);
    assert_eq!(e.parameter_name(), Some("buffer_size"));
    let e = bad(
        c.clone(),
        ProcessorOptions {
            prime_blocks: 4,
            ..manual()
        },
        &["gain:1"],
    );
    assert_eq!(e.parameter_name(), Some("prime_blocks"));
    let e = bad(
        c.clone(),
        ProcessorOptions {
            latency_log_size: 0,
            ..manual()
        },
        &["gain:1"],
    );
    assert_eq!(e.parameter_name(), Some("latency_log_size"));
    // An effect that cannot run at this rate is named.
    let e = bad(
        StreamConfig::new(16000, 64),
        manual(),
        &["gain:1", "lobutterworth:9000,order=2"],
    );
    assert!(e.to_string().contains("effect 1 ('lobutterworth')"), "{e}");
    assert!(e.to_string().contains("Nyquist"), "{e}");
}

/// Runs `frames` of `input` (planar) through the processor in device buffers of `device`
/// frames, processing after every buffer; returns the output.
fn run_stream(
    p: &mut RealtimeProcessor,
    driver: &TestDriver,
    input: &[Vec<f32>],
    out_channels: usize,
    device: usize,
    mut at: impl FnMut(&mut RealtimeProcessor, usize),
) -> Vec<Vec<f32>> {
    let frames = input.first().map_or(0, |c| c.len());
    let mut output = vec![vec![0.0f32; frames]; out_channels];
    let mut pos = 0;
    while pos < frames {
        let n = device.min(frames - pos);
        at(p, pos);
        let ins: Vec<&[f32]> = input.iter().map(|c| &c[pos..pos + n]).collect();
        let mut outs: Vec<&mut [f32]> = output.iter_mut().map(|c| &mut c[pos..pos + n]).collect();
        assert!(driver.run(&ins, &mut outs, OK));
        p.process_pending().unwrap();
        pos += n;
    }
    output
}

#[test]
fn staged_parameters_match_offline_processing_and_keep_filter_state() {
    let specs = [
        "hibutterworth:80,order=2",
        "lobutterworth:8000,order=4",
        "gain:1.5",
    ];
    let b = 64;
    let frames = 64 * 60;
    let input = vec![noise(frames, 1), noise(frames, 2)];
    let config = StreamConfig::new(48000, b).with_channels(2, 2);
    let (mut p, driver) = setup(&specs, config, manual());
    p.start().unwrap();
    // Change the low-pass cutoff and the gain at frame 1280 (a chunk boundary).
    let output = run_stream(&mut p, &driver, &input, 2, b, |p, pos| {
        if pos == 1280 {
            p.set_parameter("1.cutoff", 2000.0).unwrap();
            p.set_parameter("2.gain", 0.5).unwrap();
        }
    });
    assert_eq!(p.get_parameter("1.cutoff").unwrap(), 2000.0);
    // The same chain offline, with the change applied before the chunk that starts at 1280:
    // the processor's chunk k is the input's chunk k, played one block later (priming).
    let mut reference = chain(&specs);
    reference.prepare(48000.0, b, 2).unwrap();
    let mut expected = input.clone();
    for start in (0..frames).step_by(b) {
        if start == 1280 {
            reference.set_param("1.cutoff", 2000.0).unwrap();
            reference.set_param("2.gain", 0.5).unwrap();
        }
        let (l, r) = expected.split_at_mut(1);
        reference.process(&mut [&mut l[0][start..start + b], &mut r[0][start..start + b]]);
    }
    for c in 0..2 {
        assert!(output[c][..b].iter().all(|&x| x == 0.0));
        assert_eq!(&output[c][b..], &expected[c][..frames - b], "channel {c}");
    }
    // State was kept: the chunk after the change is not what a freshly reset filter gives.
    let mut fresh = chain(&[
        "hibutterworth:80,order=2",
        "lobutterworth:2000,order=4",
        "gain:0.5",
    ]);
    fresh.prepare(48000.0, b, 2).unwrap();
    let mut l = input[0][1280..1280 + b].to_vec();
    let mut r = input[1][1280..1280 + b].to_vec();
    fresh.process(&mut [&mut l, &mut r]);
    assert_ne!(&output[0][1280 + b..1280 + 2 * b], &l[..]);
    assert_eq!(p.xrun_count(), 0);
}

#[test]
fn odd_device_buffers_still_give_the_offline_result() {
    let b = 64;
    let frames = 64 * 40;
    let input = vec![noise(frames, 7)];
    let specs = ["lobutterworth:3000,order=4", "reverb:room_size=0.5"];
    // Device buffers no longer than a block, so that processing after each one keeps up (with
    // longer buffers several callbacks run before this test's process_pending; a worker keeps
    // up between callbacks).
    for device in [37, 50, 64, 13] {
        let config = StreamConfig::new(48000, b).with_channels(1, 1);
        let (mut p, driver) = setup(&specs, config, manual());
        p.start().unwrap();
        let output = run_stream(&mut p, &driver, &input, 1, device, |_, _| {});
        let mut reference = chain(&specs);
        reference.prepare(48000.0, b, 1).unwrap();
        let mut expected = input[0].clone();
        for start in (0..frames).step_by(b) {
            reference.process(&mut [&mut expected[start..start + b]]);
        }
        // Latency: one primed block, plus one block when device buffers are not multiples of b.
        let lag = if device % b == 0 { b } else { 2 * b };
        assert!(
            output[0][..lag].iter().all(|&x| x == 0.0),
            "device {device}"
        );
        let mismatch = output[0][lag..]
            .iter()
            .zip(&expected[..frames - lag])
            .position(|(a, b)| a != b);
        assert_eq!(mismatch, None, "device {device}: first differing frame");
        assert_eq!(p.output_underflow_count(), 0, "device {device}");
        let blocks = (frames / b) as u64;
        assert!(
            (blocks - 1..=blocks).contains(&p.callback_count()),
            "device {device}"
        );
    }
}

#[test]
fn parameter_errors_are_immediate() {
    let config = StreamConfig::new(48000, 64).with_channels(2, 2);
    let (mut p, _driver) = setup(&["hibutterworth:80", "gain:1"], config, manual());
    let e = p.set_parameter("0.cutof", 100.0).unwrap_err();
    assert!(e.to_string().contains("did you mean 'cutoff'?"), "{e}");
    let e = p.set_parameter("5.gain", 1.0).unwrap_err();
    assert!(e.to_string().contains("out of range"), "{e}");
    let e = p.set_parameter("gain", 1.0).unwrap_err();
    assert!(e.to_string().contains("missing the parameter name"), "{e}");
    let e = p.set_parameter("0.cutoff", 30000.0).unwrap_err();
    assert_eq!(e.parameter_name(), Some("0.cutoff"));
    assert!(p.set_parameter("1.gain", f64::NAN).is_err());
    // The failed calls changed nothing.
    assert_eq!(p.get_parameter("0.cutoff").unwrap(), 80.0);
    // A full queue is drained into the chain when the caller owns the engine.
    for i in 0..3000 {
        p.set_parameter("1.gain", 1.0 + (i % 3) as f64 * 0.1)
            .unwrap();
    }
    assert!((p.get_parameter("1.gain").unwrap() - 1.2).abs() < 1e-12);
}

#[test]
fn channels_are_adapted() {
    let b = 32;
    // Mono in, stereo out: broadcast.
    let (mut p, d) = setup(
        &["gain:2"],
        StreamConfig::new(48000, b).with_channels(1, 2),
        manual(),
    );
    assert_eq!(p.chain_channels(), 2);
    p.start().unwrap();
    let x: Vec<f32> = (0..b).map(|i| i as f32).collect();
    let (mut l, mut r) = (vec![0.0f32; b], vec![0.0f32; b]);
    d.run(&[&x], &mut [&mut l, &mut r], OK);
    p.process_pending().unwrap();
    d.run(&[&x], &mut [&mut l, &mut r], OK);
    let doubled: Vec<f32> = x.iter().map(|v| 2.0 * v).collect();
    assert_eq!((&l, &r), (&doubled, &doubled));
    p.stop().unwrap();
    // Stereo in, mono out: the average.
    let (mut p, d) = setup(
        &["gain:1"],
        StreamConfig::new(48000, b).with_channels(2, 1),
        manual(),
    );
    p.start().unwrap();
    let y: Vec<f32> = x.iter().map(|v| -v + 1.0).collect();
    let mut m = vec![0.0f32; b];
    d.run(&[&x, &y], &mut [&mut m], OK);
    p.process_pending().unwrap();
    d.run(&[&x, &y], &mut [&mut m], OK);
    assert!(m.iter().all(|&v| v == 0.5), "{m:?}");
    // Stereo in, 3 out: channels repeat cyclically.
    let (mut p, d) = setup(
        &["gain:1"],
        StreamConfig::new(48000, b).with_channels(2, 3),
        manual(),
    );
    p.start().unwrap();
    let mut o = vec![vec![0.0f32; b]; 3];
    for _ in 0..2 {
        let mut outs: Vec<&mut [f32]> = o.iter_mut().map(|c| c.as_mut_slice()).collect();
        d.run(&[&x, &y], &mut outs, OK);
        p.process_pending().unwrap();
    }
    assert_eq!((&o[0], &o[1], &o[2]), (&x, &y, &x));
    // Output only: the chain processes silence, with no underflow after priming.
    let (mut p, d) = setup(
        &["gain:1"],
        StreamConfig::new(48000, b).with_channels(0, 2),
        manual(),
    );
    p.start().unwrap();
    for _ in 0..10 {
        assert_eq!(
            p.process_pending().unwrap(),
            if p.callback_count() == 0 { 3 } else { 1 }
        );
        d.run(&[], &mut [&mut l, &mut r], OK);
    }
    assert_eq!(p.output_underflow_count(), 0);
    // Input only: chunks are processed and dropped.
    let (mut p, d) = setup(
        &["gain:1"],
        StreamConfig::new(48000, b).with_channels(2, 0),
        manual(),
    );
    p.start().unwrap();
    for _ in 0..10 {
        d.run(&[&x, &y], &mut [], OK);
        assert_eq!(p.process_pending().unwrap(), 1);
    }
    assert_eq!(p.xrun_count(), 0);
}

#[test]
fn reset_state_empties_rings_and_clears_effects() {
    let b = 32;
    let (mut p, d) = setup(
        &["reverb:room_size=0.9,mix=1"],
        StreamConfig::new(48000, b).with_channels(1, 1),
        manual(),
    );
    p.start().unwrap();
    let x = vec![0.9f32; b];
    let mut o = vec![0.0f32; b];
    for _ in 0..3 {
        d.run(&[&x], &mut [&mut o], OK);
    }
    p.process_pending().unwrap();
    p.reset_metrics();
    p.reset_state();
    assert_eq!(
        p.process_pending().unwrap(),
        0,
        "the input ring was emptied"
    );
    d.run(&[&vec![0.0; b]], &mut [&mut o], OK);
    assert!(o.iter().all(|&v| v == 0.0), "the output ring was emptied");
    assert_eq!(p.output_underflow_count(), 1);
    p.process_pending().unwrap();
    d.run(&[&vec![0.0; b]], &mut [&mut o], OK);
    assert!(
        o.iter().all(|&v| v == 0.0),
        "the reverb tail was cleared: {o:?}"
    );
}

#[test]
fn callback_and_dsp_paths_do_not_allocate() {
    let b = 64;
    let specs = [
        "hibutterworth:80,order=2",
        "lobutterworth:8000,order=4",
        "gain:1.5",
        "reverb:room_size=0.3",
    ];
    let options = ProcessorOptions {
        ring_blocks: 32,
        ..manual()
    };
    let (mut p, d) = setup(
        &specs,
        StreamConfig::new(48000, b).with_channels(2, 2),
        options,
    );
    p.start().unwrap();
    let x = noise(1000, 3);
    let mut l = vec![0.0f32; 1000];
    let mut r = vec![0.0f32; 1000];
    p.set_parameter("1.cutoff", 3000.0).unwrap();
    p.set_parameter("2.gain", 0.7).unwrap();
    for n in [64usize, 1, 100, 1000, 0, 64, 7] {
        assert_no_alloc(|| {
            d.run(&[&x[..n], &x[..n]], &mut [&mut l[..n], &mut r[..n]], OK);
            p.process_pending().unwrap();
        });
    }
    assert!(p.chunk_count() >= 18, "{} chunks", p.chunk_count());
    assert!(l.iter().chain(&r).all(|v| v.is_finite()));
}

#[test]
fn worker_thread_processes_and_stops() {
    let b = 64;
    let (mut p, d) = setup(
        &["gain:0.5"],
        StreamConfig::new(48000, b).with_channels(1, 1),
        ProcessorOptions::default(),
    );
    p.start().unwrap();
    let x = vec![0.8f32; b];
    let mut o = vec![0.0f32; b];
    let mut heard = false;
    let deadline = Instant::now() + Duration::from_secs(10);
    while !heard && Instant::now() < deadline {
        let before = p.chunk_count();
        d.run(&[&x], &mut [&mut o], OK);
        heard = o.iter().all(|&v| v == 0.4);
        // Wait for the worker to process the block this callback delivered.
        while p.chunk_count() == before && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(1));
        }
    }
    assert!(heard, "the worker's output reached the callback");
    // Parameters reach the worker too.
    p.set_parameter("0.gain", 0.25).unwrap();
    let mut changed = false;
    while !changed && Instant::now() < deadline {
        let before = p.chunk_count();
        d.run(&[&x], &mut [&mut o], OK);
        changed = o.iter().all(|&v| v == 0.2);
        while p.chunk_count() == before && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(1));
        }
    }
    assert!(changed, "the staged gain reached the worker");
    p.reset_state();
    p.stop().unwrap();
    assert!(p.callback_count() >= 2);
}

#[test]
fn drop_stops_the_stream() {
    let (p, d) = setup(
        &["gain:1"],
        StreamConfig::new(48000, 64).with_channels(1, 1),
        ProcessorOptions::default(),
    );
    let mut p = p;
    p.start().unwrap();
    drop(p);
    assert_eq!(d.state(), StreamState::Closed);
    assert_eq!(d.counts().stop, 1);
}

/// An effect that panics on its `after`-th block: a stand-in for a buggy effect.
#[derive(Clone)]
struct Fails {
    after: usize,
    seen: usize,
}

static FAILS_PARAMS: [rtfx::dsp::ParamInfo; 1] = [rtfx::dsp::ParamInfo::continuous(
    "gain", 0.0, 2.0, 1.0, "", "unused",
)];

impl rtfx::dsp::Effect for Fails {
    fn name(&self) -> &'static str {
        "fails"
    }
    fn params(&self) -> &'static [rtfx::dsp::ParamInfo] {
        &FAILS_PARAMS
    }
    fn get_param_at(&self, _index: usize) -> Option<f64> {
        Some(1.0)
    }
    fn set_param_at(&mut self, _index: usize, _value: f64) -> rtfx::Result<()> {
        Ok(())
    }
    fn prepare(&mut self, _rate: f64, _max_block: usize, _channels: usize) -> rtfx::Result<()> {
        Ok(())
    }
    fn process(&mut self, _block: &mut [&mut [f32]]) {
        self.seen += 1;
        assert!(self.seen < self.after, "boom in block {}", self.seen);
    }
    fn reset(&mut self) {}
    fn clone_box(&self) -> Box<dyn rtfx::dsp::Effect> {
        Box::new(self.clone())
    }
}

#[test]
fn a_worker_failure_surfaces_at_stop() {
    let (backend, d) = TestBackend::new();
    let chain = Chain::new(vec![Box::new(Fails { after: 3, seen: 0 })]);
    let config = StreamConfig::new(48000, 16).with_channels(1, 1);
    let mut p = RealtimeProcessor::new(
        chain,
        Box::new(backend),
        config,
        ProcessorOptions::default(),
    )
    .unwrap();
    p.start().unwrap();
    let x = vec![0.1f32; 16];
    let mut o = vec![0.0f32; 16];
    let deadline = Instant::now() + Duration::from_secs(10);
    while p.chunk_count() < 2 && Instant::now() < deadline {
        d.run(&[&x], &mut [&mut o], OK);
        std::thread::sleep(Duration::from_millis(2));
    }
    // The third block panics in the worker; audio keeps running, now underflowing.
    for _ in 0..20 {
        d.run(&[&x], &mut [&mut o], OK);
        std::thread::sleep(Duration::from_millis(2));
    }
    assert!(p.output_underflow_count() > 0);
    let e = p.stop().unwrap_err();
    assert!(e.is_realtime());
    assert!(
        e.to_string()
            .contains("DSP worker thread panicked: boom in block 3"),
        "{e}"
    );
    assert!(!p.is_running());
    assert_eq!(
        d.state(),
        StreamState::Closed,
        "the stream was closed first"
    );
    let e = p.start().unwrap_err();
    assert!(
        e.to_string().contains("create a new RealtimeProcessor"),
        "{e}"
    );
}

#[test]
fn processor_and_backends_are_send() {
    fn assert_send<T: Send>() {}
    assert_send::<RealtimeProcessor>();
    assert_send::<rtfx::realtime::CpalBackend>();
    assert_send::<TestDriver>();
}

#[test]
fn runs_from_1_khz_to_768_khz() {
    for rate in [1000u32, 22050, 44100, 96000, 192_000, 768_000] {
        let (mut p, d) = setup(
            &[
                "hibutterworth:80,order=2",
                "gain:1.5",
                "reverb:room_size=0.3",
            ],
            StreamConfig::new(rate, 128).with_channels(2, 2),
            manual(),
        );
        p.start().unwrap();
        let x = noise(128, u64::from(rate));
        let (mut l, mut r) = (vec![0.0f32; 128], vec![0.0f32; 128]);
        for _ in 0..20 {
            d.run(&[&x, &x], &mut [&mut l, &mut r], OK);
            p.process_pending().unwrap();
        }
        assert!(l.iter().chain(&r).all(|v| v.is_finite()), "{rate} Hz");
        assert!(l.iter().any(|&v| v != 0.0), "{rate} Hz");
        assert_eq!(p.xrun_count(), 0, "{rate} Hz");
        assert_eq!(p.deadline_ms(), 128.0 / f64::from(rate) * 1000.0);
    }
}

#[test]
fn an_impossible_ring_is_refused_before_anything_is_allocated() {
    // A ring this large once reached start() and failed there (capacity overflow); the
    // bound on ring_blocks now refuses it at construction, naming the option and its range.
    // (A failed start leaving the processor usable is checked with fail_next_open above.)
    let options = ProcessorOptions {
        ring_blocks: usize::MAX / 2,
        ..manual()
    };
    let (backend, _driver) = TestBackend::new();
    let config = StreamConfig::new(48000, 64).with_channels(1, 1);
    let e = RealtimeProcessor::new(chain(&["gain:1"]), Box::new(backend), config, options)
        .err()
        .expect("refused");
    assert_eq!(e.parameter_name(), Some("ring_blocks"), "{e}");
    assert!(e.to_string().contains("2 to 64"), "{e}");
}

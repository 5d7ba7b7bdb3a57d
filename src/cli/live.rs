//! `rtfx live`: runs a chain on an audio device through `RealtimeProcessor`, printing a status
//! line every second and the statistics as JSON on exit. Exit codes: 0 when stopped by
//! `--duration` or Ctrl-C, 1 on a device or stream error, 2 on a bad option or chain.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;

use super::render::Device;
use super::{OnGpu, Usage, chain_from_args, leading_filters_on_gpu};
use rtfx::dsp::Chain;
use rtfx::dsp::spec::chain_to_specs;
use rtfx::offline::audio_io::{MAX_SAMPLE_RATE, MIN_SAMPLE_RATE};
use rtfx::realtime::backend::choose_device;
use rtfx::realtime::config::{MAX_BUFFER_SIZE, MAX_STREAM_CHANNELS};
use rtfx::realtime::processor::MAX_RING_BLOCKS;
use rtfx::realtime::{
    AudioBackend, CpalBackend, DeviceSelector, ProcessorOptions, ProcessorStats, RealtimeProcessor,
    StreamConfig,
};

/// A parser for a count in `min..=max`: a value outside is a usage error (exit 2) that
/// states the range, checked before anything is allocated.
fn usize_in(min: usize, max: usize) -> clap::builder::RangedU64ValueParser<usize> {
    clap::builder::RangedU64ValueParser::<usize>::new().range(min as u64..=max as u64)
}

/// How often a lost device is looked for again.
const RECONNECT_INTERVAL: Duration = Duration::from_secs(1);

/// The exit codes, for `--help`.
pub const EXIT_CODES: &str = "Exit codes: 0 stopped by --duration or Ctrl-C; 1 device or stream error, or a lost device that did not come back before --duration ended (the message names the fix); 2 bad option or chain.";

/// Options of `rtfx live`.
#[derive(clap::Args, Debug)]
pub struct LiveArgs {
    /// Effect specs, applied after the --chain file's effects, e.g. -e hibutterworth:80,order=2.
    #[arg(short = 'e', long = "effect")]
    pub effects: Vec<String>,
    /// A TOML chain file with [[effects]] tables.
    #[arg(long)]
    pub chain: Option<PathBuf>,
    /// A preset (factory or user; `rtfx preset list`) instead of a chain file.
    #[arg(
        short = 'p',
        long = "preset",
        value_name = "NAME",
        conflicts_with = "chain"
    )]
    pub preset: Option<String>,
    /// Sample rate in Hz (default: the output device's rate, e.g. the JACK server's, or 48000).
    #[arg(long, value_name = "HZ", value_parser = clap::value_parser!(u32).range(i64::from(MIN_SAMPLE_RATE)..=i64::from(MAX_SAMPLE_RATE)))]
    pub rate: Option<u32>,
    /// Frames per callback, which is also the DSP chunk size.
    #[arg(long, default_value_t = 256, value_name = "FRAMES", value_parser = usize_in(1, MAX_BUFFER_SIZE))]
    pub buffer: usize,
    /// Input device: an index or a name substring from `rtfx devices` (default: the system's).
    #[arg(long)]
    pub input: Option<String>,
    /// Output device: an index or a name substring (default: the system's).
    #[arg(long)]
    pub output: Option<String>,
    /// Input device rate in Hz for a duplex stream, when it differs from --rate: the input is
    /// resampled to --rate (default: --rate when the input device supports it, else the
    /// device's own rate).
    #[arg(long, value_name = "HZ", value_parser = clap::value_parser!(u32).range(i64::from(MIN_SAMPLE_RATE)..=i64::from(MAX_SAMPLE_RATE)))]
    pub input_rate: Option<u32>,
    /// Input channels (0 = output only: the chain processes silence).
    #[arg(long, default_value_t = 2, value_parser = usize_in(0, MAX_STREAM_CHANNELS))]
    pub in_channels: usize,
    /// Output channels (0 = input only).
    #[arg(long, default_value_t = 2, value_parser = usize_in(0, MAX_STREAM_CHANNELS))]
    pub out_channels: usize,
    /// cpal host: auto, alsa, jack, … (auto: JACK when a server is running, else the system's
    /// default host).
    #[arg(long, default_value = "auto")]
    pub host: String,
    /// Stop after this many seconds (default: run until Ctrl-C).
    #[arg(long)]
    pub duration: Option<f64>,
    /// Write the statistics as JSON to this file on exit.
    #[arg(long)]
    pub stats_json: Option<PathBuf>,
    /// Ring capacity in buffers (at least 2).
    #[arg(long, default_value_t = 4, value_parser = usize_in(2, MAX_RING_BLOCKS))]
    pub ring_blocks: usize,
    /// Buffers of silence primed at start: headroom against a late DSP thread, at the cost of
    /// latency (1..ring-blocks − 1).
    #[arg(long, default_value_t = 1)]
    pub prime_blocks: usize,
    /// No status line each second.
    #[arg(short, long)]
    pub quiet: bool,
    /// When the device disappears (unplugged, JACK server stopped), stop with an error instead
    /// of reopening the stream every second until it is back.
    #[arg(long)]
    pub no_reconnect: bool,
    /// Compute device: cuda runs the filters the chain starts with as a CUDA graph (the rest
    /// on the CPU); without a usable GPU it says why and runs on the CPU.
    #[arg(long, value_enum, default_value = "cpu")]
    pub device: Device,
}

/// `--device cuda`: the chain with its leading filters on a CUDA graph and the flag that tells
/// when the GPU failed, or the chain as it was (on the CPU) after a message saying why.
fn on_gpu(
    chain: Chain,
    rate: u32,
    buffer: usize,
    width: usize,
) -> (Chain, Option<Arc<AtomicBool>>) {
    match leading_filters_on_gpu(&chain, rate, buffer, width, "running on the CPU") {
        OnGpu::Offloaded(offloaded) => {
            errln!(
                "note: --device cuda: {} ({} of {} effects; the rest run on the CPU)",
                offloaded.description,
                offloaded.filters,
                chain.len()
            );
            (offloaded.chain, Some(offloaded.engine_failed))
        }
        OnGpu::Failed => (chain, None),
        OnGpu::NoFilters => {
            errln!(
                "warning: --device cuda: the chain does not start with a filter (the GPU runs IIR filters and biquads); running on the CPU"
            );
            (chain, None)
        }
    }
}

/// JACK when a server is running, else the system's default host (ALSA on Linux).
fn auto_backend() -> CpalBackend {
    if let Ok(jack) = CpalBackend::with_host("jack")
        && jack.devices().is_ok_and(|d| !d.is_empty())
    {
        return jack;
    }
    CpalBackend::new()
}

/// The default rate of the device the stream will play on (or record from).
fn device_rate(backend: &CpalBackend, args: &LiveArgs) -> Option<u32> {
    let devices = backend.devices().ok()?;
    let (selector, input) = match (args.out_channels > 0, &args.output, &args.input) {
        (true, Some(out), _) => (Some(out), false),
        (true, None, _) => (None, false),
        (false, _, sel) => (sel.as_ref(), true),
    };
    let device = match selector {
        Some(text) => choose_device(&devices, &DeviceSelector::parse(text), input).ok()?,
        None => devices.iter().find(|d| {
            if input {
                d.is_default_input
            } else {
                d.is_default_output
            }
        })?,
    };
    let rate = device.default_sample_rate;
    (1.0..=768_000.0).contains(&rate).then_some(rate as u32)
}

/// One status line.
fn status_line(elapsed: f64, s: &ProcessorStats) -> String {
    let budget = if s.deadline_ms > 0.0 {
        s.chunk_ms.p99 / s.deadline_ms * 100.0
    } else {
        0.0
    };
    format!(
        "[{elapsed:6.1} s] callbacks {} | callback median {:.3} p99 {:.3} max {:.3} ms | dsp median {:.3} p99 {:.3} max {:.3} ms ({budget:.1}% of {:.3} ms) | xruns {} (input {}, output {}, device {}) | rings {}/{} frames",
        s.callback_count,
        s.callback_ms.median,
        s.callback_ms.p99,
        s.callback_ms.max,
        s.chunk_ms.median,
        s.chunk_ms.p99,
        s.chunk_ms.max,
        s.deadline_ms,
        s.xrun_count,
        s.input_overflow_count,
        s.output_underflow_count,
        s.backend_xrun_count,
        s.input_ring_frames,
        s.output_ring_frames,
    )
}

/// Runs `rtfx live`.
pub fn run(args: &LiveArgs) -> anyhow::Result<()> {
    if let Some(d) = args.duration
        && !(d.is_finite() && d > 0.0)
    {
        return Err(Usage(anyhow::anyhow!(
            "--duration must be a positive number of seconds, got {d}"
        ))
        .into());
    }
    let options = ProcessorOptions {
        ring_blocks: args.ring_blocks,
        prime_blocks: args.prime_blocks,
        ..ProcessorOptions::default()
    };
    // Bad options and a bad chain are usage errors (exit code 2), found before any device is
    // opened; device problems are errors (exit code 1).
    options
        .validate()
        .map_err(|e| Usage(anyhow::anyhow!(e).context("invalid --ring-blocks/--prime-blocks")))?;
    let (chain, _) = chain_from_args(
        args.chain.as_deref(),
        args.preset.as_deref(),
        &args.effects,
        false,
    )
    .map_err(Usage)?;
    let specs = chain_to_specs(&chain);
    let backend = if args.host.eq_ignore_ascii_case("auto") {
        auto_backend()
    } else {
        CpalBackend::with_host(&args.host)?
    };
    let backend_name = backend.name().to_string();
    let rate = match args.rate {
        Some(r) => r,
        None => device_rate(&backend, args).unwrap_or(48000),
    };
    let width = args.in_channels.max(args.out_channels).max(1);
    let (chain, gpu_failed) = match args.device {
        Device::Cpu => (chain, None),
        Device::Cuda => on_gpu(chain, rate, args.buffer, width),
    };
    let config = StreamConfig::new(rate, args.buffer)
        .with_channels(args.in_channels, args.out_channels)
        .with_devices(
            args.input.as_deref().map(DeviceSelector::parse),
            args.output.as_deref().map(DeviceSelector::parse),
        )
        .with_input_rate(args.input_rate);
    let mut processor = RealtimeProcessor::new(chain, Box::new(backend), config, options)
        .context("setting up the real-time processor")?;

    let stop = Arc::new(AtomicBool::new(false));
    let flag = stop.clone();
    ctrlc::set_handler(move || flag.store(true, Ordering::Relaxed))
        .context("installing the Ctrl-C handler")?;

    processor
        .start()
        .with_context(|| format!("starting the stream on {backend_name}"))?;
    errln!(
        "rtfx live: {} on {backend_name}, {} Hz, {} frames (deadline {:.3} ms, latency {:.3} ms), {} in / {} out; Ctrl-C stops",
        specs.join(" → "),
        rate,
        args.buffer,
        processor.deadline_ms(),
        processor.latency_ms(),
        args.in_channels,
        args.out_channels,
    );
    if let Some(input_rate) = processor.backend().input_resampled_from() {
        errln!(
            "note: the input device runs at {input_rate} Hz; rtfx resamples it to {rate} Hz (64-tap windowed sinc, flat to {:.1} kHz)",
            0.37 * f64::from(input_rate.min(rate)) / 1000.0
        );
    }
    if let Some(device) = processor.backend().device_buffer_size()
        && device != args.buffer
    {
        let extra = if device % args.buffer == 0 {
            "no added latency"
        } else {
            "one more buffer of latency for a duplex stream"
        };
        errln!(
            "note: the device runs {device}-frame buffers; rtfx splits or gathers them into {}-frame callbacks ({extra})",
            args.buffer
        );
    }
    // The worker sets its priority as it starts.
    std::thread::sleep(Duration::from_millis(20));
    if !processor.worker_is_realtime() {
        errln!(
            "note: the DSP worker runs at normal priority (real-time scheduling was refused); for fewer xruns allow it, e.g. join the 'audio' group with an rtprio limit in /etc/security/limits.d"
        );
    }
    let started = Instant::now();
    let mut next_status = 1.0;
    let mut failure = None;
    // While the device is gone (unplugged, JACK server stopped): when it went, and when to try
    // to reopen it next.
    let mut lost: Option<(Instant, Instant)> = None;
    loop {
        std::thread::sleep(Duration::from_millis(50));
        let elapsed = started.elapsed().as_secs_f64();
        if stop.load(Ordering::Relaxed) {
            errln!("stopping (Ctrl-C)");
            // Stopping while waiting for the device is what the user asked for.
            failure = None;
            break;
        }
        if args.duration.is_some_and(|d| elapsed >= d) {
            break;
        }
        match lost {
            None => {
                if let Some(e) = processor.backend().stream_error() {
                    if args.no_reconnect {
                        failure = Some(e);
                        break;
                    }
                    errln!("warning: {e}");
                    errln!(
                        "the stream stopped; reopening it every second until the device is back (Ctrl-C stops)"
                    );
                    let _ = processor.stop();
                    let now = Instant::now();
                    lost = Some((now, now + RECONNECT_INTERVAL));
                    failure = Some(e);
                    continue;
                }
            }
            Some((since, retry)) => {
                if Instant::now() >= retry {
                    match processor.start() {
                        Ok(()) => {
                            errln!("reconnected after {:.1} s", since.elapsed().as_secs_f64());
                            lost = None;
                            failure = None;
                        }
                        Err(e) => {
                            lost = Some((since, Instant::now() + RECONNECT_INTERVAL));
                            failure = Some(e);
                        }
                    }
                }
                continue;
            }
        }
        if let Some(flag) = &gpu_failed
            && flag.swap(false, Ordering::Relaxed)
        {
            errln!("warning: the GPU failed; the filters run on the CPU from now on");
        }
        if elapsed >= next_status {
            if !args.quiet {
                errln!("{}", status_line(elapsed, &processor.stats()));
            }
            next_status += 1.0;
        }
    }
    let stopped = if lost.is_none() {
        processor.stop()
    } else {
        Ok(())
    };
    let stats = processor.stats();
    errln!("{}", status_line(started.elapsed().as_secs_f64(), &stats));
    if let Some(path) = &args.stats_json {
        std::fs::write(path, stats.to_json())
            .with_context(|| format!("writing the statistics to {}", path.display()))?;
    }
    if let Some(e) = failure {
        let what = if lost.is_some() {
            "the device did not come back"
        } else {
            "the audio stream stopped"
        };
        return Err(anyhow::Error::new(e).context(what));
    }
    stopped.context("stopping the processor")?;
    Ok(())
}

//! Command-line interface of the `rtfx` binary.

/// `println!` that never panics: when stdout's reader has gone (`rtfx info x | head -1`)
/// the line is dropped and the command finishes normally.
macro_rules! outln {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout(), $($arg)*);
    }};
}

/// `eprintln!` that never panics: status lines and messages are dropped when stderr's reader
/// has gone (`rtfx live … 2>&1 | head -1`), and the work goes on.
macro_rules! errln {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr(), $($arg)*);
    }};
}

mod demo;
mod devices;
mod effects;
mod info;
mod live;
mod manifest;
mod preset;
mod render;
mod stats;

use std::path::Path;

use anyhow::{Context, anyhow};
use clap::{Parser, Subcommand};
use rtfx::dsp::Chain;
use rtfx::dsp::spec::{ChainFile, append_specs, chain_from_toml};
use rtfx::gpu::leading_filters::{Offloaded, cuda_engine, offload_leading_filters};

/// rtfx — real-time audio effects engine.
#[derive(Parser, Debug)]
#[command(name = "rtfx", version, about, long_about = None, arg_required_else_help = true)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// A usage error: bad options, chain, paths (exit code 2).
#[derive(Debug, thiserror::Error)]
#[error("{0:#}")]
pub struct Usage(pub anyhow::Error);

/// How a command that did not fail ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Everything done (exit code 0).
    Success,
    /// Some files of a batch failed (exit code 3).
    PartialFailure,
    /// Stopped by Ctrl-C (exit code 130).
    Interrupted,
}

impl Outcome {
    /// The process exit code.
    pub fn code(self) -> u8 {
        match self {
            Outcome::Success => 0,
            Outcome::PartialFailure => 3,
            Outcome::Interrupted => 130,
        }
    }
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Render audio files through a chain (one file, or a batch with --output-dir).
    #[command(after_help = render::EXIT_CODES)]
    Render(Box<render::RenderArgs>),
    /// Show an audio file's format, rate, channels, duration, frames, subtype and size.
    Info {
        /// The audio file.
        file: std::path::PathBuf,
        /// Print one JSON object instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Measure files: per channel and overall the sample and true peak, RMS, crest factor, DC
    /// offset and clipped samples; integrated loudness, loudness range, short-term maximum.
    Stats {
        /// The audio files.
        #[arg(required = true)]
        files: Vec<std::path::PathBuf>,
        /// Print one JSON object per file instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// List every effect with its parameters, ranges, units and defaults.
    Effects {
        /// Only this effect.
        name: Option<String>,
    },
    /// Run a chain over a generated test signal and report its level and speed.
    Demo {
        /// Effect specs, e.g. -e hibutterworth:80,order=2 (default: the guitar chain).
        #[arg(short = 'e', long = "effect")]
        effects: Vec<String>,
        /// Seconds of stereo 48 kHz audio to process.
        #[arg(long, default_value_t = 60.0)]
        seconds: f64,
        /// Block size in frames.
        #[arg(long, default_value_t = 512)]
        block: usize,
        /// Also write the generated (dry) test signal to this WAV file, e.g. to render it.
        #[arg(long, value_name = "FILE.wav")]
        write_input: Option<std::path::PathBuf>,
    },
    /// Tools for manifest renders' provenance logs: `rtfx manifest merge DIR` joins a log
    /// folder's shard logs into one record per output.
    Manifest(manifest::ManifestArgs),
    /// List, show, save or delete presets: the plugin's factory presets and the user's preset
    /// folder, as TOML chain files (render one with `rtfx render -p NAME`).
    Preset(preset::PresetArgs),
    /// List the audio hosts and devices (index, channels, default rate).
    Devices {
        /// Only this cpal host (alsa, jack, …).
        #[arg(long)]
        host: Option<String>,
    },
    /// Run a chain on an audio device in real time, with live statistics.
    #[command(after_help = live::EXIT_CODES)]
    Live(live::LiveArgs),
    /// Run the plugin as a standalone app with its editor (JACK, ALSA or a dummy backend);
    /// `rtfx` alone does the same where a display is available. Ctrl-C or SIGTERM closes it.
    #[command(
        after_help = "Its options (backend, devices, sample rate, period size, tempo…): rtfx standalone --help"
    )]
    Standalone {
        /// Options of the standalone app (`rtfx standalone --help` lists them).
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        options: Vec<String>,
    },
}

/// Runs the parsed command.
pub fn run(cli: Cli) -> anyhow::Result<Outcome> {
    match cli.command {
        Command::Render(args) => render::run(*args),
        Command::Info { file, json } => info::run(&file, json).map(|()| Outcome::Success),
        Command::Stats { files, json } => stats::run(&files, json).map(|()| Outcome::Success),
        Command::Effects { name } => effects::run(name.as_deref()).map(|()| Outcome::Success),
        Command::Demo {
            effects,
            seconds,
            block,
            write_input,
        } => demo::run(&effects, seconds, block, write_input.as_deref()).map(|()| Outcome::Success),
        Command::Devices { host } => devices::run(host.as_deref()).map(|()| Outcome::Success),
        Command::Manifest(args) => manifest::run(&args).map(|()| Outcome::Success),
        Command::Preset(args) => preset::run(&args).map(|()| Outcome::Success),
        Command::Live(args) => live::run(&args).map(|()| Outcome::Success),
        // main() hands `rtfx standalone …` to the app before parsing; this arm is the same
        // path for completeness.
        Command::Standalone { options } => {
            if rtfx::plugin::standalone::run_with_options(options) {
                Ok(Outcome::Success)
            } else {
                Err(anyhow::anyhow!("the standalone app could not start"))
            }
        }
    }
}

/// The chain a command runs: the chain file's effects (`--chain`) or the preset's
/// (`--preset`), then the `-e` effects, numbered by their place in the whole chain; and the
/// file's top-level settings. The one builder of `rtfx render`, `rtfx live` and
/// `rtfx preset save`. An empty chain is refused unless `allow_empty` (a render that only
/// converts).
fn chain_from_args(
    chain_file: Option<&Path>,
    preset: Option<&str>,
    effects: &[String],
    allow_empty: bool,
) -> anyhow::Result<(Chain, Option<ChainFile>)> {
    let mut chain = Chain::new(Vec::new());
    let mut file = None;
    if let Some(name) = preset {
        use rtfx::plugin::presets::{find_preset, preset_dir, preset_text};
        let preset = find_preset(preset_dir().as_deref(), name)?;
        let text = preset_text(&preset)?;
        let parsed =
            chain_from_toml(&text).with_context(|| format!("in preset '{}'", preset.name()))?;
        for fx in parsed.chain.effects() {
            chain.push(fx.clone_box());
        }
        file = Some(parsed);
    }
    if let Some(path) = chain_file {
        let text = std::fs::read(path)
            .with_context(|| format!("cannot read chain file '{}'", path.display()))?;
        let text = String::from_utf8(text).map_err(|_| {
            anyhow!(
                "chain file '{}' is not UTF-8 text; give a TOML file with [[effects]] tables",
                path.display()
            )
        })?;
        let parsed = chain_from_toml(&text)
            .with_context(|| format!("in chain file '{}'", path.display()))?;
        for fx in parsed.chain.effects() {
            chain.push(fx.clone_box());
        }
        file = Some(parsed);
    }
    append_specs(&mut chain, effects).context("in -e/--effect")?;
    anyhow::ensure!(allow_empty || !chain.is_empty(), "{NO_EFFECTS}");
    Ok((chain, file))
}

/// The error for a command with no effects.
const NO_EFFECTS: &str = "no effects specified: add -e SPEC (e.g. -e highpass:80,q=0.707 -e \
                          gain:0.5) or --chain FILE.toml; `rtfx effects` lists them";

/// Refuses an input path that does not exist or is a directory (a usage error naming it).
/// The one check of `rtfx info` and `rtfx stats`.
fn check_input_file(path: &Path) -> anyhow::Result<()> {
    let shown = path.display();
    if !path.exists() {
        return Err(Usage(anyhow!("input '{shown}' does not exist; check the path")).into());
    }
    if path.is_dir() {
        return Err(Usage(anyhow!(
            "input '{shown}' is a directory; give an audio file"
        ))
        .into());
    }
    Ok(())
}

/// Where `--device cuda` put a chain, from [`leading_filters_on_gpu`].
enum OnGpu {
    /// Its leading filters run on a CUDA graph.
    Offloaded(Box<Offloaded>),
    /// It does not start with a filter: it stays on the CPU.
    NoFilters,
    /// The GPU failed (a warning said why): it stays on the CPU.
    Failed,
}

/// `--device cuda` for one stream shape: the filters `chain` starts with on a CUDA graph, the
/// rest on the CPU. When the GPU fails, a warning says why and ends with `fallback` (e.g.
/// "running on the CPU"). The one GPU fallback of `rtfx render` and `rtfx live`.
fn leading_filters_on_gpu(
    chain: &Chain,
    rate: u32,
    frames: usize,
    channels: usize,
    fallback: &str,
) -> OnGpu {
    match offload_leading_filters(chain, f64::from(rate), frames, channels, cuda_engine) {
        Ok(Some(offloaded)) => OnGpu::Offloaded(Box::new(offloaded)),
        Ok(None) => OnGpu::NoFilters,
        Err(e) => {
            errln!("warning: --device cuda: {e}; {fallback}");
            OnGpu::Failed
        }
    }
}

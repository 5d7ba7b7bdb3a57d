//! `rtfx render`: bounce files through a chain, one file or a batch.

use std::collections::HashMap;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use anyhow::{Context, anyhow};
use clap::{Args, ValueEnum};
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use rtfx::dsp::chain::Chain;
use rtfx::dsp::random::RandomChain;
use rtfx::offline::audio_io::{LossyQuality, OutputFormat, RawInput, ReadOptions, Subtype};
use rtfx::offline::convert::{ConvertOptions, Remix, check_channels, check_rate};
use rtfx::offline::manifest::{DuplicateFilter, Manifest, ManifestItem, Shard};
use rtfx::offline::provenance::{
    LogWriter, Record, Rendered, StaleTemporaries, is_done, load_records, log_files, log_path,
    sha256_file,
};
use rtfx::offline::render::{
    NormalizeTarget, Progress, RenderOptions, RenderReport, Tail, check_paths,
    check_paths_new_dirs, check_pipe_options, is_pipe, render_file,
};
use rtfx::offline::stream::StreamProcessor;

use super::{NO_EFFECTS, OnGpu, Outcome, Usage, chain_from_args, leading_filters_on_gpu};

/// Where the `render` options are documented for `--help`.
pub const EXIT_CODES: &str = "Exit codes: 0 every file rendered; 1 processing error (bad or \
truncated audio, write failure); 2 usage error (bad option, chain, path, existing output); 3 \
some files of a batch failed; 130 interrupted (Ctrl-C; partial outputs removed).";

/// Progress reporting style.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ProgressMode {
    /// A bar when stderr is a terminal, nothing otherwise.
    Auto,
    /// Always draw bars.
    Bar,
    /// One JSON object per line on stderr.
    Json,
    /// No progress output.
    None,
}

/// Which side of the rate and channel conversion the chain runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ChainRate {
    /// At the input's rate and channels; the conversion follows the chain.
    In,
    /// At the output's rate and channels; the conversion comes first.
    Out,
}

/// Compute device.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Device {
    /// The CPU chain.
    Cpu,
    /// The CUDA graph runner (falls back to the CPU with a warning when unavailable).
    Cuda,
}

/// `--device cuda`'s chain adapter: the filters a chain starts with on a CUDA graph built for
/// the file's shape; the chain as it is (after a warning) when that fails or it starts with
/// something else.
fn filters_on_gpu(
    chain: &Chain,
    rate: u32,
    frames: usize,
    channels: usize,
) -> rtfx::Result<Option<Chain>> {
    let fallback = "this file renders on the CPU";
    Ok(
        match leading_filters_on_gpu(chain, rate, frames, channels, fallback) {
            OnGpu::Offloaded(offloaded) => Some(offloaded.chain),
            OnGpu::NoFilters | OnGpu::Failed => None,
        },
    )
}

/// Options of `rtfx render`.
#[derive(Args, Debug)]
pub struct RenderArgs {
    /// Input file and output file (`IN OUT`), or inputs/globs with --output-dir.
    #[arg(required_unless_present = "manifest", value_name = "PATHS")]
    paths: Vec<String>,
    /// A manifest of items to render: JSON Lines (.jsonl) or CSV with a header row (.csv);
    /// fields input, output (or --output-dir), key, seed, chain, preset, effects.
    #[arg(long, value_name = "FILE", conflicts_with = "paths")]
    manifest: Option<PathBuf>,
    /// Check the manifest (syntax, inputs, outputs, chains) and render nothing.
    #[arg(long, requires = "manifest")]
    check: bool,
    /// Render only a part of the manifest: I/N (0-based: 0/4 to 3/4), slurm (the job array's
    /// task) or k8s (an Indexed Job's index, with --shard-count). Item n goes to shard n mod N.
    #[arg(long, value_name = "I/N|slurm|k8s", requires = "manifest")]
    shard: Option<String>,
    /// Shards in all, for --shard k8s.
    #[arg(long, value_name = "N", requires = "shard")]
    shard_count: Option<u64>,
    /// Write a provenance record (JSON line) per rendered file into DIR, one file per shard.
    #[arg(long, value_name = "DIR")]
    log: Option<PathBuf>,
    /// Skip items whose output matches a record in --log (same chain, seed and SHA-256);
    /// render the rest again, replacing what is there.
    #[arg(long, requires = "log")]
    resume: bool,
    /// Effect spec `name[:value,key=value,...]`, repeatable, applied after --chain's effects.
    #[arg(short = 'e', long = "effect", value_name = "SPEC")]
    effects: Vec<String>,
    /// TOML chain file with [[effects]] tables (torchfx format).
    #[arg(short = 'c', long = "chain", alias = "config", value_name = "FILE")]
    chain: Option<PathBuf>,
    /// A preset (factory or user; `rtfx preset list`) instead of a chain file.
    #[arg(
        short = 'p',
        long = "preset",
        value_name = "NAME",
        conflicts_with = "chain"
    )]
    preset: Option<String>,
    /// Write every input into this directory under its own name (batch mode).
    #[arg(short = 'O', long = "output-dir", value_name = "DIR")]
    output_dir: Option<PathBuf>,
    /// Output extension in batch mode (default: the input's when writable, else wav); with
    /// `-` as the output, what goes to stdout: wav (default) or raw (samples of --subtype).
    #[arg(long = "format", value_name = "wav|flac|aiff|mp3|opus|raw")]
    format: Option<String>,
    /// Lossy quality: MP3's VBR scale, 0 (best) to 9 (smallest); default 2.
    #[arg(long, value_name = "Q", conflicts_with = "bitrate")]
    quality: Option<f32>,
    /// Lossy bitrate in kbit/s: MP3 constant bitrate (8 to 320), Opus target (6 to 510;
    /// default 64 per channel).
    #[arg(long, value_name = "KBPS")]
    bitrate: Option<u32>,
    /// Do not copy title, artist, album and comment from the input.
    #[arg(long)]
    no_tags: bool,
    /// Raw samples on stdin (input `-`): f32le, s16le, s24le or s32le, little-endian and
    /// interleaved; needs --input-rate and --input-channels.
    #[arg(long, value_name = "f32le|s16le|s24le|s32le")]
    input_format: Option<String>,
    /// Sample rate of raw input, in Hz.
    #[arg(long, value_name = "HZ")]
    input_rate: Option<u32>,
    /// Channels of raw input.
    #[arg(long, value_name = "N")]
    input_channels: Option<usize>,
    /// Output encoding: pcm16, pcm24, pcm32 or float (default: float for WAV, pcm24 for FLAC).
    #[arg(long)]
    subtype: Option<String>,
    /// Output sample rate in Hz (libsoxr, sox's `rate -v` quality; default: the input's).
    #[arg(long, value_name = "HZ")]
    rate: Option<u32>,
    /// Output channels: 1 is the mean of the input's channels, more copy a mono input; other
    /// conversions need --remix (default: the input's count).
    #[arg(long, value_name = "N")]
    channels: Option<usize>,
    /// Channel matrix: one row per output channel (rows ';'), one gain per input channel
    /// (gains ','), e.g. '0.5,0.5' (stereo to mono) or '0,1;1,0' (swap).
    #[arg(long, value_name = "MATRIX")]
    remix: Option<String>,
    /// Where the chain runs: at the input's rate and channels, before --rate/--channels/--remix
    /// convert them (in, the default), or after (out).
    #[arg(long, value_enum, default_value_t = ChainRate::In, value_name = "in|out")]
    chain_rate: ChainRate,
    /// Render this much after the input ends: auto (reverb/delay decay) or seconds.
    #[arg(long, default_value = "0", value_name = "auto|SECONDS")]
    tail: String,
    /// Whole-file normalisation: peak:DBFS, rms:DBFS or lufs:LUFS (two passes).
    #[arg(long, value_name = "KIND:LEVEL")]
    normalize: Option<String>,
    /// Frames read per chunk (memory use; output does not depend on it).
    #[arg(long, value_name = "FRAMES")]
    chunk_size: Option<usize>,
    /// torchfx overlap: shortens the hop, never re-processes samples.
    #[arg(long, value_name = "FRAMES")]
    overlap: Option<usize>,
    /// Compute device (cuda falls back to cpu with a warning when unavailable).
    #[arg(long, value_enum)]
    device: Option<Device>,
    /// Replace existing outputs.
    #[arg(short = 'f', long, short_alias = 'y')]
    force: bool,
    /// Turn off TPDF dither for integer output.
    #[arg(long)]
    no_dither: bool,
    /// Seed of the dither noise (the same seed gives identical bytes).
    #[arg(long, value_name = "N")]
    seed: Option<u64>,
    /// Render what a truncated or damaged input holds instead of failing: damaged packets
    /// become silence (later audio keeps its time), and the frames lost are reported.
    #[arg(long, alias = "allow-damaged")]
    allow_truncated: bool,
    /// Skip checking the decoded audio against the file's checksum (FLAC's MD5).
    #[arg(long)]
    no_verify: bool,
    /// Fail on NaN/Inf input samples instead of replacing them with 0.
    #[arg(long)]
    strict: bool,
    /// Refuse inputs with no frames instead of writing an empty output.
    #[arg(long)]
    no_empty: bool,
    /// Keep the chain's latency (limiter lookahead) instead of removing it.
    #[arg(long)]
    keep_latency: bool,
    /// Skip the fsync before the output is renamed into place (faster on slow disks; a power
    /// cut right after the render may then leave an incomplete file).
    #[arg(long)]
    no_sync: bool,
    /// Files rendered in parallel in batch mode: a number, or `auto` for the cores this process
    /// may use (its CPU affinity and quota: a Slurm task's or a container's share).
    #[arg(short = 'j', long, default_value = "1", value_name = "N|auto", value_parser = parse_jobs)]
    jobs: usize,
    /// Stop a batch at the first failure.
    #[arg(long)]
    fail_fast: bool,
    /// Print only errors and warnings.
    #[arg(short = 'q', long)]
    quiet: bool,
    /// Progress reporting.
    #[arg(long, value_enum, default_value_t = ProgressMode::Auto)]
    progress: ProgressMode,
}

/// Set by Ctrl-C: renders stop at the next chunk and remove their temporary files.
static CANCEL: AtomicBool = AtomicBool::new(false);

/// One file to render.
struct Job {
    /// Its identity in provenance records (a manifest's key, else the input path).
    key: String,
    input: PathBuf,
    output: PathBuf,
    /// A manifest item's own chain (its chain file or preset, and its effects).
    chain: Option<Chain>,
    /// A manifest item's seed (the dither noise's).
    seed: Option<u64>,
}

impl Job {
    fn new(input: PathBuf, output: PathBuf) -> Self {
        Job {
            key: input.display().to_string(),
            input,
            output,
            chain: None,
            seed: None,
        }
    }
}

/// `--jobs`: a count of at least 1, or `auto`: the cores this process may run on, as the
/// standard library finds them (CPU affinity, and the cgroup quota on Linux), so that a Slurm
/// task or a container gets its allocation, not the machine's core count.
fn parse_jobs(text: &str) -> Result<usize, String> {
    if text.eq_ignore_ascii_case("auto") {
        return Ok(std::thread::available_parallelism().map_or(1, |n| n.get()));
    }
    match text.parse::<usize>() {
        Ok(0) => Err("must be at least 1, or auto (the cores this process may use)".into()),
        Ok(n) => Ok(n),
        Err(_) => Err("expected a number of files at once, or auto".into()),
    }
}

/// Where the workers take their files from.
enum Source {
    /// A planned list (paths and globs), taken in order.
    List(Mutex<std::vec::IntoIter<Job>>),
    /// A manifest, read as the render goes: this shard's items only. Lines are taken under
    /// the lock; drawing and building each item's chain happens outside it, in parallel.
    Manifest(Box<(Mutex<ManifestJobs>, JobMaker)>),
}

impl Source {
    /// The next file to render, if any.
    fn next(&self) -> Option<anyhow::Result<Job>> {
        match self {
            Source::List(jobs) => jobs.lock().ok()?.next().map(Ok),
            Source::Manifest(manifest) => {
                let (items, maker) = &**manifest;
                let item = items.lock().ok()?.next_item()?;
                Some(item.and_then(|item| maker.job(item)))
            }
        }
    }
}

/// A manifest's items for this shard ([`JobMaker`] makes them jobs).
struct ManifestJobs {
    items: Manifest<std::io::BufReader<std::fs::File>>,
    shard: Option<Shard>,
    /// Items read so far, in every shard.
    read: u64,
}

/// Makes a manifest item into a job: its output, and its own chain when it has one.
struct JobMaker {
    /// Where items without an output go, named after their input.
    output_dir: Option<PathBuf>,
    /// The output extension for those (`--format`).
    format: Option<String>,
    /// The command's chain parts, which an item's own chain fields replace or extend.
    base: ChainArgs,
    /// The command's seed (`--seed`): items without their own draw from it and their key.
    seed: u64,
    /// The command's chain as a template, parsed once, when it holds distributions: what
    /// items without chain fields of their own draw from (most manifests' every item).
    base_template: Option<RandomChain>,
}

/// The command's chain as given: a chain file or preset, then `-e` effects. A chain file
/// with distributions is a template: its effects are specs, drawn like `-e` specs.
#[derive(Clone)]
struct ChainArgs {
    chain: Option<PathBuf>,
    /// A template chain file's effects, as specs (the file is then not read as a chain).
    chain_specs: Vec<String>,
    preset: Option<String>,
    effects: Vec<String>,
}

impl ChainArgs {
    /// The chain of `chain` (a file), `preset` and `-e` `effects`.
    fn new(chain: Option<&Path>, preset: Option<&str>, effects: &[String]) -> anyhow::Result<Self> {
        let (chain, chain_specs) = expand_chain_file(chain)?;
        Ok(ChainArgs {
            chain,
            chain_specs,
            preset: preset.map(String::from),
            effects: effects.to_vec(),
        })
    }

    /// Every effect spec in order: a template file's, then `-e` effects, then `extra`.
    fn specs(&self, extra: &[String]) -> Vec<String> {
        let mut specs = self.chain_specs.clone();
        specs.extend(self.effects.iter().cloned());
        specs.extend(extra.iter().cloned());
        specs
    }

    /// The chain for a file with this seed and key (distributions drawn), with `extra`
    /// effects after the command's, and `params` overrides (see [`ManifestItem::params`]):
    /// for those every effect is written as a spec (a chain file's or preset's in full) and
    /// each override appended to its effect's spec (a later value wins, replacing a number or
    /// a distribution).
    fn draw(
        &self,
        extra: &[String],
        params: &[(String, String)],
        seed: u64,
        key: &str,
    ) -> anyhow::Result<Chain> {
        if params.is_empty() {
            let specs = self.specs(extra);
            return match RandomChain::parse(&specs)? {
                Some(template) => self.build(&template.draw(seed, key)),
                None => self.build(&specs),
            };
        }
        let mut specs = if self.chain.is_some() || self.preset.is_some() {
            rtfx::dsp::spec::chain_to_specs(&self.build(&[])?)
        } else {
            Vec::new()
        };
        specs.extend(self.specs(extra));
        for (path, value) in params {
            let (index, name) = path.split_once('.').unwrap_or((path, ""));
            let count = specs.len();
            let spec = index
                .trim()
                .parse::<usize>()
                .ok()
                .and_then(|i| specs.get_mut(i))
                .ok_or_else(|| {
                    anyhow!(
                        "params '{path}': the item's chain has {count} effects (0 to {})",
                        count.saturating_sub(1)
                    )
                })?;
            let separator = match spec.split_once(':') {
                Some((_, rest)) if !rest.trim().is_empty() => ",",
                Some(_) => "",
                None => ":",
            };
            *spec = format!("{spec}{separator}{}={value}", name.trim());
        }
        let written = ChainArgs {
            chain: None,
            chain_specs: Vec::new(),
            preset: None,
            effects: specs,
        };
        written.draw(&[], &[], seed, key)
    }

    /// The chain of the chain file or preset, then `specs` (every effect spec, drawn).
    fn build(&self, specs: &[String]) -> anyhow::Result<Chain> {
        let (chain, _) =
            chain_from_args(self.chain.as_deref(), self.preset.as_deref(), specs, true)?;
        Ok(chain)
    }
}

/// A chain file as a path to read as it is, or, when it holds distributions, its effects as
/// specs to draw from.
fn expand_chain_file(path: Option<&Path>) -> anyhow::Result<(Option<PathBuf>, Vec<String>)> {
    let Some(path) = path else {
        return Ok((None, Vec::new()));
    };
    // Unreadable files are reported by chain_from_args, with its message.
    let Ok(text) = std::fs::read_to_string(path) else {
        return Ok((Some(path.to_path_buf()), Vec::new()));
    };
    match rtfx::dsp::random::template_specs_from_toml(&text)
        .with_context(|| format!("in chain file '{}'", path.display()))?
    {
        Some(specs) => Ok((None, specs)),
        None => Ok((Some(path.to_path_buf()), Vec::new())),
    }
}

impl ManifestJobs {
    fn open(args: &RenderArgs, path: &Path) -> anyhow::Result<Self> {
        let shard = args
            .shard
            .as_deref()
            .map(|s| Shard::parse(s, args.shard_count))
            .transpose()?;
        Ok(ManifestJobs {
            items: Manifest::open(path)?,
            shard,
            read: 0,
        })
    }

    /// The next item of this shard, or the first malformed line's error.
    fn next_item(&mut self) -> Option<anyhow::Result<ManifestItem>> {
        loop {
            let item = match self.items.next()? {
                Ok(item) => item,
                Err(e) => return Some(Err(e.into())),
            };
            self.read += 1;
            if self.shard.is_some_and(|s| !s.selects(item.index)) {
                continue;
            }
            return Some(Ok(item));
        }
    }
}

impl JobMaker {
    fn new(args: &RenderArgs) -> anyhow::Result<Self> {
        let base = ChainArgs::new(args.chain.as_deref(), args.preset.as_deref(), &args.effects)?;
        Ok(JobMaker {
            output_dir: args.output_dir.clone(),
            format: args.format.clone(),
            base_template: RandomChain::parse(&base.specs(&[]))?,
            base,
            seed: args
                .seed
                .unwrap_or(rtfx::offline::audio_io::DEFAULT_DITHER_SEED),
        })
    }

    /// Where an item is written: its output, or its input's name in `--output-dir`.
    fn output_of(&self, item: &ManifestItem) -> anyhow::Result<PathBuf> {
        Ok(match (&item.output, &self.output_dir) {
            (Some(output), _) => output.clone(),
            (None, Some(dir)) => dir.join(output_name(&item.input, self.format.as_deref())),
            (None, None) => anyhow::bail!(
                "manifest line {}: the item has no output; give it one, or name a folder \
                 with --output-dir",
                item.line
            ),
        })
    }

    fn job(&self, item: ManifestItem) -> anyhow::Result<Job> {
        let line = item.line;
        let context = || format!("manifest line {line}");
        let output = self.output_of(&item)?;
        let own = item.chain.is_some() || item.preset.is_some();
        let seed = item.seed.unwrap_or(self.seed);
        let chain = if !own && item.effects.is_empty() && item.params.is_empty() {
            // The command's chain: drawn from the template parsed once, if it is one.
            match &self.base_template {
                Some(template) => Some(
                    self.base
                        .build(&template.draw(seed, &item.key))
                        .with_context(context)?,
                ),
                None => None,
            }
        } else {
            // An item's own chain or effects: drawn (when random) and built for it alone.
            let base = if own {
                // The item's chain file or preset replaces the command's; `-e` effects stay.
                ChainArgs::new(
                    item.chain.as_deref(),
                    item.preset.as_deref(),
                    &self.base.effects,
                )
                .with_context(context)?
            } else {
                self.base.clone()
            };
            Some(
                base.draw(&item.effects, &item.params, seed, &item.key)
                    .with_context(context)?,
            )
        };
        Ok(Job {
            key: item.key,
            input: item.input,
            output,
            chain,
            seed: item.seed,
        })
    }
}

/// The output name of `input` in a folder: its stem, with `format` as the extension (or its
/// own when rtfx writes it, else wav).
fn output_name(input: &Path, format: Option<&str>) -> String {
    let stem = input
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let ext = match format {
        Some(e) => e.to_string(),
        None => {
            let own = input
                .extension()
                .map(|e| e.to_string_lossy().into_owned())
                .unwrap_or_default();
            if OutputFormat::from_path(input).is_ok() {
                own
            } else {
                "wav".into()
            }
        }
    };
    format!("{stem}.{ext}")
}

/// Runs `rtfx render`.
pub fn run(args: RenderArgs) -> anyhow::Result<Outcome> {
    // `-e` specs with distributions are a template, drawn per file; the rest of the chain is
    // built as it is.
    let chain_args = ChainArgs::new(args.chain.as_deref(), args.preset.as_deref(), &args.effects)
        .map_err(Usage)?;
    let template = RandomChain::parse(&chain_args.specs(&[]))
        .context("in the chain's effects")
        .map_err(Usage)?;
    let fixed_effects: &[String] = if template.is_some() {
        &[]
    } else {
        &args.effects
    };
    let (chain, file) = chain_from_args(
        chain_args.chain.as_deref(),
        args.preset.as_deref(),
        fixed_effects,
        true,
    )
    .map_err(Usage)?;
    let options = render_options(&args).map_err(Usage)?;
    let chunk_size = args
        .chunk_size
        .or(file.as_ref().and_then(|f| f.chunk_size))
        .unwrap_or(StreamProcessor::DEFAULT_CHUNK_SIZE);
    let overlap = args
        .overlap
        .or(file.as_ref().and_then(|f| f.overlap))
        .unwrap_or(0);
    // Validates chunk size and overlap once, before any file.
    StreamProcessor::check_chunking(chunk_size, overlap)
        .map_err(|e| Usage(anyhow!(e).context("invalid chunking")))?;
    let device = args
        .device
        .or(match file.as_ref().and_then(|f| f.device.as_deref()) {
            Some("cuda") => Some(Device::Cuda),
            _ => None,
        })
        .unwrap_or(Device::Cpu);
    let on_gpu = device == Device::Cuda
        && match rtfx::gpu::cuda_available() {
            Ok(name) => {
                errln!(
                    "note: --device cuda: the filters each chain starts with run on {name} (a \
                     CUDA graph per file shape), the rest on the CPU"
                );
                true
            }
            Err(e) => {
                errln!("warning: --device cuda: {e}; rendering on the CPU");
                false
            }
        };
    let (source, total) = match &args.manifest {
        Some(path) => {
            let (items, selected) = check_manifest(&args, path, &options, chain.is_empty())?;
            if args.check {
                let shard = match args.shard {
                    Some(_) => format!(", {selected} in this shard"),
                    None => String::new(),
                };
                errln!(
                    "manifest '{}': {items} items{shard}, all valid (inputs readable, outputs \
                     free, chains built); nothing rendered (--check)",
                    path.display()
                );
                return Ok(Outcome::Success);
            }
            let jobs = ManifestJobs::open(&args, path).map_err(Usage)?;
            let maker = JobMaker::new(&args).map_err(Usage)?;
            (
                Source::Manifest(Box::new((Mutex::new(jobs), maker))),
                selected as usize,
            )
        }
        None => {
            let mut jobs = plan_jobs(&args).map_err(Usage)?;
            if template.is_some() {
                let seed = options.dither_seed;
                for job in &mut jobs {
                    let chain = chain_args
                        .draw(&[], &[], seed, &job.key)
                        .with_context(|| format!("'{}'", job.input.display()))
                        .map_err(Usage)?;
                    job.chain = Some(chain);
                }
            }
            check_terminals(&jobs).map_err(Usage)?;
            for job in &jobs {
                check_job(job, &options, chain.is_empty(), false)?;
            }
            let total = jobs.len();
            (Source::List(Mutex::new(jobs.into_iter())), total)
        }
    };
    let provenance = match &args.log {
        Some(dir) => {
            let shard = args
                .shard
                .as_deref()
                .map(|s| Shard::parse(s, args.shard_count))
                .transpose()
                .map_err(|e| Usage(anyhow!(e)))?
                .map(|s| (s.index, s.count));
            let log_file = log_path(dir, shard);
            let log = LogWriter::open(&log_file).map_err(|e| Usage(anyhow!(e)))?;
            let records = if args.resume {
                let (records, cut) = load_records(dir, shard.map(|_| log_file.as_path()))?;
                if records.is_empty() && shard.is_some() && has_other_logs(dir, &log_file) {
                    errln!(
                        "note: a shard resumes from its own log '{}', which holds no records \
                         yet; the folder's other logs (another shard count, or no shards) are \
                         not read, so their items render again",
                        log_file.display()
                    );
                }
                if cut > 0 {
                    errln!(
                        "note: {cut} log lines in '{}' were cut short (a killed run); their \
                         items render again",
                        dir.display()
                    );
                }
                records
            } else {
                HashMap::new()
            };
            Some(Provenance {
                log,
                records,
                resume: args.resume,
                base_specs: rtfx::dsp::spec::chain_to_specs(&chain),
                stale: StaleTemporaries::default(),
            })
        }
        None => None,
    };
    install_ctrlc();

    let batch = args.output_dir.is_some() || args.manifest.is_some();
    let reporter = Reporter::new(args.progress, args.quiet, batch, total);
    let done = AtomicUsize::new(0);
    let already = AtomicUsize::new(0);
    let failed = AtomicUsize::new(0);
    let stop = AtomicBool::new(false);
    let single_error: Mutex<Option<anyhow::Error>> = Mutex::new(None);
    let workers = args.jobs.min(total).max(1);
    let started = Instant::now();
    let new_processor = |chain: &Chain| -> rtfx::Result<StreamProcessor> {
        let processor = StreamProcessor::new(chain.clone(), chunk_size, overlap)?;
        Ok(if on_gpu {
            processor.with_adapter(Box::new(filters_on_gpu))
        } else {
            processor
        })
    };
    // Each worker owns its chain: files in parallel share nothing.
    let processors = (0..workers)
        .map(|_| {
            new_processor(&chain).map(|processor| Worker {
                processor,
                made_dir: None,
            })
        })
        .collect::<rtfx::Result<Vec<_>>>()?;
    let fail_fast = args.fail_fast;
    let manifest = args.manifest.is_some();
    std::thread::scope(|scope| {
        let (source, done, already, failed, stop, single_error, reporter, options) = (
            &source,
            &done,
            &already,
            &failed,
            &stop,
            &single_error,
            &reporter,
            &options,
        );
        let (new_processor, provenance) = (&new_processor, provenance.as_ref());
        for mut worker in processors {
            scope.spawn(move || {
                loop {
                    if stop.load(Ordering::Relaxed) || CANCEL.load(Ordering::Relaxed) {
                        break;
                    }
                    let Some(job) = source.next() else { break };
                    let result = job.and_then(|job| {
                        render_job(
                            &job,
                            &mut worker,
                            new_processor,
                            options,
                            manifest,
                            reporter,
                            provenance,
                        )
                    });
                    match result {
                        Ok(Done::Rendered) => {
                            done.fetch_add(1, Ordering::Relaxed);
                        }
                        Ok(Done::AlreadyDone) => {
                            already.fetch_add(1, Ordering::Relaxed);
                        }
                        Err(e) => {
                            failed.fetch_add(1, Ordering::Relaxed);
                            if fail_fast {
                                stop.store(true, Ordering::Relaxed);
                            }
                            if let Ok(mut first) = single_error.lock() {
                                first.get_or_insert(e);
                            }
                        }
                    }
                }
            });
        }
    });
    let failed = failed.load(Ordering::Relaxed);
    let done = done.load(Ordering::Relaxed);
    let already = already.load(Ordering::Relaxed);
    if CANCEL.load(Ordering::Relaxed) {
        // Said for a single file as for a batch: the partial outputs are gone.
        reporter.line(&format!(
            "Rendering interrupted: {done} of {total} files rendered; partial outputs were removed"
        ));
        return Ok(Outcome::Interrupted);
    }
    if !batch {
        // A single file: its error is the command's error.
        return match single_error.into_inner().ok().flatten() {
            Some(e) => Err(e),
            None => Ok(Outcome::Success),
        };
    }
    let skipped = total - done - failed - already;
    if !args.quiet || failed > 0 {
        let mut line = format!(
            "{done} of {total} files rendered in {:.2} s",
            started.elapsed().as_secs_f64()
        );
        if already > 0 {
            line.push_str(&format!(", {already} already done (--resume)"));
        }
        if failed > 0 {
            line.push_str(&format!(", {failed} failed"));
        }
        if skipped > 0 {
            line.push_str(&format!(", {skipped} skipped (--fail-fast)"));
        }
        reporter.line(&line);
    }
    Ok(if failed > 0 {
        Outcome::PartialFailure
    } else {
        Outcome::Success
    })
}

/// Whether `dir` holds `*.jsonl` logs besides `own`.
fn has_other_logs(dir: &Path, own: &Path) -> bool {
    log_files(dir).is_ok_and(|logs| logs.iter().any(|log| log != own))
}

/// Provenance records (`--log`) and resuming from them (`--resume`).
struct Provenance {
    log: LogWriter,
    /// Records found in the log folder, by output (with `--resume`).
    records: HashMap<PathBuf, Rendered>,
    resume: bool,
    /// The command's chain as specs (items with their own chain give theirs).
    base_specs: Vec<String>,
    /// What killed runs left beside the outputs rendered again.
    stale: StaleTemporaries,
}

/// What a rendering thread keeps from one job to the next.
struct Worker {
    /// The command's chain (items with a chain of their own get a processor per item).
    processor: StreamProcessor,
    /// The output folder this worker made or found last: a manifest's items mostly share
    /// one, and asking the filesystem again for each would cost two system calls per file.
    made_dir: Option<PathBuf>,
}

/// What became of a job.
enum Done {
    Rendered,
    /// Its output already matched its record (`--resume`).
    AlreadyDone,
}

/// Renders one job with the worker's processor, or a processor of the job's own chain; a
/// manifest's output folders are made as needed.
fn render_job(
    job: &Job,
    worker: &mut Worker,
    new_processor: &dyn Fn(&Chain) -> rtfx::Result<StreamProcessor>,
    options: &RenderOptions,
    manifest: bool,
    reporter: &Reporter,
    provenance: Option<&Provenance>,
) -> anyhow::Result<Done> {
    let seed = job.seed.unwrap_or(options.dither_seed);
    let specs = |base: &[String]| {
        job.chain
            .as_ref()
            .map_or_else(|| base.to_vec(), rtfx::dsp::spec::chain_to_specs)
    };
    let mut replace = false;
    if let Some(p) = provenance.filter(|p| p.resume) {
        if is_done(
            p.records.get(&job.output),
            &job.output,
            &specs(&p.base_specs),
            seed,
        ) {
            return Ok(Done::AlreadyDone);
        }
        // A killed run's temporary files, and whatever is under the output's name now, go.
        p.stale.remove(&job.output);
        replace = true;
    }
    let mut own;
    let processor = match &job.chain {
        Some(chain) => {
            own = new_processor(chain)?;
            &mut own
        }
        None => &mut worker.processor,
    };
    let adjusted;
    let options = if job.seed.is_some() || replace {
        adjusted = RenderOptions {
            dither_seed: seed,
            force: options.force || replace,
            ..options.clone()
        };
        &adjusted
    } else {
        options
    };
    if let Some(dir) = job
        .output
        .parent()
        .filter(|d| manifest && !d.as_os_str().is_empty())
        .filter(|d| worker.made_dir.as_deref() != Some(*d))
    {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("cannot create the output folder '{}'", dir.display()))?;
        worker.made_dir = Some(dir.to_path_buf());
    }
    let bar = reporter.start(&job.input);
    let t0 = Instant::now();
    let result = render_file(
        processor,
        &job.input,
        &job.output,
        options,
        &mut |p| reporter.update(&bar, &job.input, p),
        &CANCEL,
    )
    .with_context(|| format!("rendering '{}'", job.input.display()));
    reporter.finish(&bar, job, &result, t0.elapsed());
    let report = result?;
    if let Some(p) = provenance {
        let record = Record {
            key: job.key.clone(),
            input: job.input.clone(),
            output: job.output.clone(),
            chain: specs(&p.base_specs),
            seed,
            input_frames: report.input.frames,
            input_rate: report.input.sample_rate,
            output_frames: report.frames,
            output_rate: report.sample_rate,
            output_channels: report.channels,
            sha256: sha256_file(&job.output)?,
            rtfx: env!("CARGO_PKG_VERSION").to_string(),
            wall_seconds: t0.elapsed().as_secs_f64(),
        };
        p.log.append(&record)?;
    }
    Ok(Done::Rendered)
}

/// The checks every job passes before anything renders (usage errors): paths, pipes, that
/// something is asked for, the subtype and quality against the format. `new_dirs`: the
/// output's folder may not exist yet (a manifest's are made when rendering).
fn check_job(
    job: &Job,
    options: &RenderOptions,
    command_chain_empty: bool,
    new_dirs: bool,
) -> anyhow::Result<()> {
    let usage = |e: rtfx::Error| Usage(anyhow!(e));
    let format = if new_dirs {
        check_paths_new_dirs(&job.input, &job.output, options.force)
    } else {
        check_paths(&job.input, &job.output, options.force)
    }
    .map_err(usage)?;
    check_pipe_options(&job.input, options).map_err(usage)?;
    let empty = job
        .chain
        .as_ref()
        .map_or(command_chain_empty, Chain::is_empty);
    if empty && !converts(options, job) {
        return Err(Usage(anyhow!(
            "{NO_EFFECTS}; to convert without effects, give --rate, --channels, --remix, \
             --subtype, --normalize or another output format"
        ))
        .into());
    }
    let format = if is_pipe(&job.output) {
        options.pipe_format.unwrap_or(format)
    } else {
        format
    };
    let in_output =
        |e: rtfx::Error| Usage(anyhow!(e).context(format!("output '{}'", job.output.display())));
    if let Some(subtype) = options.subtype {
        format.check_subtype(subtype).map_err(in_output)?;
    }
    format.check_quality(options.quality).map_err(in_output)?;
    Ok(())
}

/// Manifest items checked together by [`check_manifest`]'s threads.
const CHECK_BATCH: usize = 4096;

/// Reads the whole manifest once before anything renders: every line must parse, and this
/// shard's items must pass [`check_job`] with distinct outputs. Returns the item count and
/// this shard's. Memory stays flat: distinct outputs are checked by a fixed-size filter and
/// a second pass over the few outputs it flags.
fn check_manifest(
    args: &RenderArgs,
    path: &Path,
    options: &RenderOptions,
    command_chain_empty: bool,
) -> anyhow::Result<(u64, u64)> {
    let mut jobs = ManifestJobs::open(args, path).map_err(Usage)?;
    let maker = JobMaker::new(args).map_err(Usage)?;
    let mut outputs = DuplicateFilter::default();
    // Resuming, an existing output is either done (skipped) or rendered again.
    let resume_options;
    let check_options = if args.resume {
        resume_options = RenderOptions {
            force: true,
            ..options.clone()
        };
        &resume_options
    } else {
        options
    };
    let check = |item: ManifestItem| -> anyhow::Result<PathBuf> {
        let line = item.line;
        let in_line = |e: anyhow::Error| Usage(e.context(format!("manifest line {line}")));
        let job = maker.job(item).map_err(Usage)?;
        anyhow::ensure!(
            !is_pipe(&job.input) && !is_pipe(&job.output),
            Usage(anyhow!(
                "manifest line {line}: '-' (a pipe) cannot be a manifest item"
            ))
        );
        check_job(&job, check_options, command_chain_empty, true).map_err(in_line)?;
        Ok(job.output)
    };
    // In batches, each checked by the workers in parallel (drawing chains and asking the
    // filesystem about paths is most of a render's bookkeeping), in line order for errors.
    let threads = args.jobs.max(1);
    let mut selected = 0u64;
    let mut batch = Vec::with_capacity(CHECK_BATCH);
    loop {
        batch.clear();
        let mut malformed = None;
        while batch.len() < CHECK_BATCH {
            match jobs.next_item() {
                Some(Ok(item)) => batch.push(item),
                Some(Err(e)) => {
                    malformed = Some(e);
                    break;
                }
                None => break,
            }
        }
        selected += batch.len() as u64;
        let per_thread = batch.len().div_ceil(threads).max(1);
        let checked: Vec<anyhow::Result<PathBuf>> = std::thread::scope(|scope| {
            let check = &check;
            let parts: Vec<_> = batch
                .chunks(per_thread)
                .map(|part| {
                    scope.spawn(move || part.iter().cloned().map(check).collect::<Vec<_>>())
                })
                .collect();
            parts
                .into_iter()
                .flat_map(|part| {
                    part.join()
                        .unwrap_or_else(|_| vec![Err(anyhow!("a check panicked"))])
                })
                .collect()
        });
        for output in checked {
            outputs.add(&output?);
        }
        if let Some(e) = malformed {
            return Err(Usage(e).into());
        }
        if batch.len() < CHECK_BATCH {
            break;
        }
    }
    let items = jobs.read;
    if outputs.has_suspects() {
        // The second pass: only outputs the filter may have seen twice are compared.
        let mut again = ManifestJobs::open(args, path).map_err(Usage)?;
        let shard = again.shard;
        let named = std::iter::from_fn(|| {
            loop {
                let item = again.items.next()?.ok()?;
                if shard.is_some_and(|s| !s.selects(item.index)) {
                    continue;
                }
                let line = item.line;
                return Some((line, maker.output_of(&item).ok()?));
            }
        });
        if let Some((first, line, output)) = outputs.confirm(named) {
            return Err(Usage(anyhow!(
                "manifest lines {first} and {line} both write '{}'; give each item its own output",
                output.display()
            ))
            .into());
        }
    }
    anyhow::ensure!(
        items > 0,
        Usage(anyhow!("manifest '{}' holds no items", path.display()))
    );
    Ok((items, selected))
}

/// The layout of raw samples on stdin, from `--input-format/--input-rate/--input-channels`.
fn raw_input(args: &RenderArgs) -> anyhow::Result<Option<RawInput>> {
    let Some(format) = args.input_format.as_deref() else {
        anyhow::ensure!(
            args.input_rate.is_none() && args.input_channels.is_none(),
            "--input-rate and --input-channels describe raw samples: give --input-format too \
             (f32le, s16le, s24le or s32le); a WAV stream on stdin describes itself"
        );
        return Ok(None);
    };
    anyhow::ensure!(
        args.paths.first().map(String::as_str) == Some("-"),
        "--input-format describes raw samples on stdin: give '-' as the input (e.g. `... | rtfx \
         render - out.wav --input-format s16le --input-rate 16000 --input-channels 1`)"
    );
    let subtype = Subtype::parse_raw(format)?;
    let (Some(sample_rate), Some(channels)) = (args.input_rate, args.input_channels) else {
        anyhow::bail!(
            "raw input has no header: give its rate and channels with --input-rate HZ and \
             --input-channels N (e.g. --input-rate 48000 --input-channels 2)"
        );
    };
    let sample_rate = check_rate(sample_rate).context("--input-rate")?;
    let channels = check_channels(channels).context("--input-channels")?;
    Ok(Some(RawInput {
        subtype,
        sample_rate,
        channels,
    }))
}

/// Refuses stdin or stdout at a terminal: audio typed in or printed out is never meant.
fn check_terminals(jobs: &[Job]) -> anyhow::Result<()> {
    for job in jobs {
        anyhow::ensure!(
            !(is_pipe(&job.input) && std::io::stdin().is_terminal()),
            "input '-' reads audio from stdin, which is a terminal here; pipe or redirect audio \
             in (`rtfx render - out.wav ... < in.wav`)"
        );
        anyhow::ensure!(
            !(is_pipe(&job.output) && std::io::stdout().is_terminal()),
            "output '-' writes audio to stdout, which is a terminal here; redirect it to a file \
             or pipe it on (`rtfx render in.wav - ... | sox -t wav - out.wav`)"
        );
    }
    Ok(())
}

/// Whether rendering `job` with no effects would still change something: the rate, channels,
/// encoding, level or container.
fn converts(options: &RenderOptions, job: &Job) -> bool {
    let extension = |p: &Path| {
        p.extension()
            .map(|e| e.to_string_lossy().to_ascii_lowercase())
    };
    options.convert.is_set()
        || options.subtype.is_some()
        || options.normalize.is_some()
        || options.raw_input.is_some()
        || options.pipe_format.is_some()
        || extension(&job.input) != extension(&job.output)
}

fn render_options(args: &RenderArgs) -> anyhow::Result<RenderOptions> {
    Ok(RenderOptions {
        subtype: args.subtype.as_deref().map(Subtype::parse).transpose()?,
        dither: !args.no_dither,
        dither_seed: args
            .seed
            .unwrap_or(rtfx::offline::audio_io::DEFAULT_DITHER_SEED),
        tail: Tail::parse(&args.tail)?,
        normalize: args
            .normalize
            .as_deref()
            .map(NormalizeTarget::parse)
            .transpose()?,
        read: ReadOptions {
            allow_truncated: args.allow_truncated,
            verify: !args.no_verify,
        },
        strict: args.strict,
        no_empty: args.no_empty,
        force: args.force,
        compensate_latency: !args.keep_latency,
        sync: !args.no_sync,
        raw_input: raw_input(args)?,
        quality: match (args.quality, args.bitrate) {
            (Some(q), _) => LossyQuality::Quality(q),
            (None, Some(b)) => LossyQuality::Bitrate(b),
            (None, None) => LossyQuality::Default,
        },
        copy_tags: !args.no_tags,
        pipe_format: match (
            args.paths.get(1).map(String::as_str),
            args.format.as_deref(),
        ) {
            (Some("-"), Some(name)) if args.output_dir.is_none() => {
                match OutputFormat::from_path(Path::new(&format!("stdout.{name}")))? {
                    OutputFormat::Flac => anyhow::bail!(
                        "FLAC cannot be written to a pipe (its header is completed at the end); \
                         use --format wav or --format raw for stdout, or write a .flac file"
                    ),
                    format => Some(format),
                }
            }
            _ => None,
        },
        convert: ConvertOptions {
            rate: args.rate.map(check_rate).transpose()?,
            channels: args.channels.map(check_channels).transpose()?,
            remix: match args.remix.as_deref().map(Remix::parse).transpose()? {
                Some(remix) => {
                    if let Some(n) = args.channels.filter(|&n| n != remix.outputs()) {
                        anyhow::bail!(
                            "--channels {n} disagrees with --remix, which has {} rows (one per \
                             output channel); drop --channels or give {n} rows",
                            remix.outputs()
                        );
                    }
                    Some(remix)
                }
                None => None,
            },
            chain_after: args.chain_rate == ChainRate::Out,
        },
    })
}

/// Expands globs and pairs every input with its output; refuses collisions.
fn plan_jobs(args: &RenderArgs) -> anyhow::Result<Vec<Job>> {
    let Some(dir) = &args.output_dir else {
        anyhow::ensure!(
            args.paths.len() == 2,
            "give an input and an output (`rtfx render IN OUT -e ...`), or several inputs with \
             --output-dir DIR (got {} paths)",
            args.paths.len()
        );
        anyhow::ensure!(
            args.format.is_none() || args.paths[1] == "-",
            "--format applies to batch mode (--output-dir) and to stdout ('-') only; the output \
             name's extension sets the format"
        );
        if args.paths[0] == "-" {
            return Ok(vec![Job::new(
                PathBuf::from("-"),
                PathBuf::from(&args.paths[1]),
            )]);
        }
        let inputs = expand(&args.paths[0])?;
        anyhow::ensure!(
            inputs.len() == 1,
            "'{}' matches {} files; render several files with --output-dir DIR",
            args.paths[0],
            inputs.len()
        );
        return Ok(vec![Job::new(
            inputs[0].clone(),
            PathBuf::from(&args.paths[1]),
        )]);
    };
    anyhow::ensure!(
        !dir.exists() || dir.is_dir(),
        "--output-dir '{}' is a file, not a directory; give a directory",
        dir.display()
    );
    if let Some(ext) = &args.format {
        OutputFormat::from_path(Path::new(&format!("x.{ext}")))?;
    }
    anyhow::ensure!(
        !args.paths.iter().any(|p| p == "-"),
        "'-' (stdin) is one stream, not a batch: render it alone (`rtfx render - OUT ...`)"
    );
    let mut jobs = Vec::new();
    for pattern in &args.paths {
        for input in expand(pattern)? {
            let output = dir.join(output_name(&input, args.format.as_deref()));
            jobs.push(Job::new(input, output));
        }
    }
    let mut seen: HashMap<PathBuf, &Path> = HashMap::new();
    for job in &jobs {
        if let Some(first) = seen.insert(job.output.clone(), &job.input) {
            anyhow::bail!(
                "'{}' and '{}' would both be written to '{}'; render them into different \
                 directories or rename one",
                first.display(),
                job.input.display(),
                job.output.display()
            );
        }
    }
    // Created (with its parents) once the batch is known to be valid.
    std::fs::create_dir_all(dir)
        .with_context(|| format!("cannot create the output directory '{}'", dir.display()))?;
    Ok(jobs)
}

/// A path, or the sorted files a glob matches.
fn expand(pattern: &str) -> anyhow::Result<Vec<PathBuf>> {
    let is_glob = pattern.contains(['*', '?', '[']);
    if !is_glob {
        return Ok(vec![PathBuf::from(pattern)]);
    }
    let mut found: Vec<PathBuf> = glob::glob(pattern)
        .with_context(|| format!("invalid glob '{pattern}'"))?
        .filter_map(|p| p.ok())
        .filter(|p| p.is_file())
        .collect();
    found.sort();
    anyhow::ensure!(
        !found.is_empty(),
        "'{pattern}' matches no files; check the pattern"
    );
    Ok(found)
}

fn install_ctrlc() {
    static ONCE: OnceLock<()> = OnceLock::new();
    ONCE.get_or_init(|| {
        // Without a handler Ctrl-C would kill us mid-write; the temp file would stay behind.
        let _ = ctrlc::set_handler(|| CANCEL.store(true, Ordering::Relaxed));
    });
}

/// Prints progress and per-file results in the chosen style.
struct Reporter {
    mode: ProgressMode,
    quiet: bool,
    batch: bool,
    multi: Option<MultiProgress>,
    overall: Option<ProgressBar>,
    last_json: Mutex<Instant>,
}

impl Reporter {
    fn new(mode: ProgressMode, quiet: bool, batch: bool, files: usize) -> Self {
        let bars = match mode {
            ProgressMode::Bar => !quiet,
            ProgressMode::Auto => !quiet && std::io::stderr().is_terminal(),
            ProgressMode::Json | ProgressMode::None => false,
        };
        let (multi, overall) = if bars {
            let multi = MultiProgress::with_draw_target(ProgressDrawTarget::stderr());
            let overall = (files > 1).then(|| {
                let b = multi.add(ProgressBar::new(files as u64));
                b.set_style(
                    ProgressStyle::with_template("{prefix:>8} [{bar:30}] {pos}/{len} files")
                        .unwrap_or_else(|_| ProgressStyle::default_bar()),
                );
                b.set_prefix("overall");
                b
            });
            (Some(multi), overall)
        } else {
            (None, None)
        };
        Reporter {
            mode,
            quiet,
            batch,
            multi,
            overall,
            last_json: Mutex::new(Instant::now() - Duration::from_secs(1)),
        }
    }

    fn start(&self, input: &Path) -> Option<ProgressBar> {
        let multi = self.multi.as_ref()?;
        let bar = multi.add(ProgressBar::new(1));
        bar.set_style(
            ProgressStyle::with_template(
                "{prefix:>8} [{bar:30}] {percent:>3}% {msg} ({elapsed} / eta {eta})",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
        );
        bar.set_prefix("render");
        bar.set_message(input.display().to_string());
        Some(bar)
    }

    fn update(&self, bar: &Option<ProgressBar>, input: &Path, p: Progress) {
        if let Some(bar) = bar {
            let total = p.frames_total.unwrap_or(0) * u64::from(p.passes);
            let done = p.frames_total.unwrap_or(0) * u64::from(p.pass - 1) + p.frames_done;
            bar.set_length(total.max(done));
            bar.set_position(done);
        }
        if self.mode == ProgressMode::Json {
            // At most ten lines a second per process: a log, not a flood.
            if let Ok(mut last) = self.last_json.lock() {
                let finished = p.frames_total == Some(p.frames_done);
                if last.elapsed() < Duration::from_millis(100) && !finished {
                    return;
                }
                *last = Instant::now();
            }
            let fraction = p
                .frames_total
                .filter(|&t| t > 0)
                .map(|t| {
                    (f64::from(p.pass - 1) + p.frames_done as f64 / t as f64) / f64::from(p.passes)
                })
                .unwrap_or(0.0);
            errln!(
                "{}",
                serde_json::json!({
                    "event": "progress",
                    "input": input.display().to_string(),
                    "pass": p.pass,
                    "passes": p.passes,
                    "frames_done": p.frames_done,
                    "frames_total": p.frames_total,
                    "fraction": fraction,
                })
            );
        }
    }

    fn finish(
        &self,
        bar: &Option<ProgressBar>,
        job: &Job,
        result: &anyhow::Result<RenderReport>,
        elapsed: Duration,
    ) {
        if let Some(bar) = bar {
            bar.finish_and_clear();
        }
        if let Some(overall) = &self.overall {
            overall.inc(1);
        }
        let secs = elapsed.as_secs_f64();
        if self.mode == ProgressMode::Json {
            let value = match result {
                Ok(r) => serde_json::json!({
                    "event": "done",
                    "ok": true,
                    "input": job.input.display().to_string(),
                    "output": job.output.display().to_string(),
                    "frames": r.frames,
                    "tail_frames": r.tail_frames,
                    "clipped": r.clipped,
                    "nonfinite_replaced": r.nonfinite_replaced,
                    "gain_db": r.gain_db,
                    "seconds": secs,
                    "warnings": r.warnings,
                }),
                Err(e) => serde_json::json!({
                    "event": "done",
                    "ok": false,
                    "input": job.input.display().to_string(),
                    "output": job.output.display().to_string(),
                    "error": format!("{e:#}"),
                }),
            };
            errln!("{value}");
            return;
        }
        match result {
            Ok(r) => {
                for w in &r.warnings {
                    self.line(&format!("warning: {}: {w}", job.input.display()));
                }
                if !self.quiet {
                    let audio = r.frames as f64 / f64::from(r.sample_rate);
                    let speed = if secs > 0.0 { audio / secs } else { 0.0 };
                    // A lossy format's samples are the encoder's business: no subtype.
                    let subtype = if r.format.is_lossy() {
                        String::new()
                    } else {
                        format!(" {}", r.subtype.name())
                    };
                    let mut line = format!(
                        "✓ {} → {} ({}{}, {:.2} s of audio in {:.2} s, {:.0}x real time",
                        job.input.display(),
                        job.output.display(),
                        r.format,
                        subtype,
                        audio,
                        secs,
                        speed
                    );
                    if let Some(g) = r.gain_db {
                        line.push_str(&format!(", gain {g:+.2} dB"));
                    }
                    line.push(')');
                    self.line(&line);
                }
            }
            // A single file's error is printed once, by main, as the command's error.
            Err(e) if self.batch => self.line(&format!("✗ {}: {e:#}", job.input.display())),
            Err(_) => {}
        }
    }

    /// One finished line: the bars step aside while it is written, so it ends with a real
    /// newline on a terminal (a captured terminal log keeps one line per file) and is written
    /// even where the bars are hidden (`--progress bar` into a file).
    fn line(&self, text: &str) {
        match &self.multi {
            Some(m) => m.suspend(|| errln!("{text}")),
            None => errln!("{text}"),
        }
    }
}

//! Rendering one file through a [`StreamProcessor`]: tails, latency compensation, whole-file
//! normalisation, dither, and the no-data-loss rules (never write over the input, never
//! overwrite without `force`, write a temporary file in the target directory, `fsync`, rename;
//! the temporary file disappears on any error or cancellation).

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

use crate::dsp::fx::normalize::Levels;
use crate::error::{Error, Result};
use crate::offline::audio_io::{
    AudioInfo, AudioReader, AudioWriter, DEFAULT_DITHER_SEED, LossyQuality, OutputFormat, RawInput,
    ReadOptions, Subtype, Tags, WriteOptions, open_regular_file,
};
use crate::offline::convert::{Conversion, ConvertOptions};
use crate::offline::stream::StreamProcessor;

/// How much to render after the input ends.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Tail {
    /// The chain's own estimate (reverb and delay decay to -120 dB; 0 for other chains).
    Auto,
    /// A fixed length in seconds (0 keeps the input's length).
    Seconds(f64),
}

impl Tail {
    /// Parses "auto" or a number of seconds.
    pub fn parse(text: &str) -> Result<Self> {
        if text.eq_ignore_ascii_case("auto") {
            return Ok(Tail::Auto);
        }
        match text.trim_end_matches('s').parse::<f64>() {
            Ok(s) if s.is_finite() && (0.0..=3600.0).contains(&s) => Ok(Tail::Seconds(s)),
            _ => Err(
                Error::invalid_parameter("Invalid tail length", "tail", text)
                    .with_expected("auto or seconds in [0, 3600]")
                    .with_suggestion("e.g. --tail auto or --tail 2.5"),
            ),
        }
    }
}

/// Whole-file normalisation target.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum NormalizeTarget {
    /// Sample peak in dBFS.
    Peak(f64),
    /// RMS over all channels in dBFS.
    Rms(f64),
    /// EBU R128 integrated loudness in LUFS, with a -1 dBTP true-peak ceiling.
    Lufs(f64),
}

impl NormalizeTarget {
    /// Parses "peak:-1", "rms:-20" or "lufs:-14".
    ///
    /// ```
    /// use rtfx::offline::render::NormalizeTarget;
    /// assert_eq!(NormalizeTarget::parse("lufs:-14").unwrap(), NormalizeTarget::Lufs(-14.0));
    /// assert!(NormalizeTarget::parse("lufs:+3").is_err());
    /// ```
    pub fn parse(text: &str) -> Result<Self> {
        let bad = || {
            Error::invalid_parameter("Invalid normalisation target", "normalize", text)
                .with_expected("peak:DBFS, rms:DBFS or lufs:LUFS with a level in [-70, 0]")
                .with_suggestion("e.g. --normalize peak:-1 or --normalize lufs:-14")
        };
        let (kind, level) = text.split_once(':').ok_or_else(bad)?;
        let level: f64 = level.trim().parse().map_err(|_| bad())?;
        if !level.is_finite() || !(-70.0..=0.0).contains(&level) {
            return Err(bad());
        }
        match kind.trim().to_ascii_lowercase().as_str() {
            "peak" => Ok(NormalizeTarget::Peak(level)),
            "rms" => Ok(NormalizeTarget::Rms(level)),
            "lufs" => Ok(NormalizeTarget::Lufs(level)),
            _ => Err(bad()),
        }
    }
}

/// True-peak ceiling kept by loudness normalisation, in dBTP, measured by rtfx's true-peak
/// meter ([`crate::dsp::true_peak`], 8× oversampling with parabolic refinement).
pub const LUFS_TRUE_PEAK_CEILING_DB: f64 = -1.0;

/// Headroom under [`LUFS_TRUE_PEAK_CEILING_DB`] that a capped loudness gain aims for: covers
/// the meter's own error on non-band-limited material (clicks, steps: 0.003 dB against a
/// 256-tap, 32× reference), float rounding and integer dither, so that the written file
/// stays at or below the ceiling by any accurate meter.
pub const LUFS_TRUE_PEAK_MARGIN_DB: f64 = 0.01;

/// Everything `render_file` can be asked to do.
#[derive(Debug, Clone, PartialEq)]
pub struct RenderOptions {
    /// Output encoding; `None` picks the format's default (float WAV, 24-bit FLAC).
    pub subtype: Option<Subtype>,
    /// TPDF dither for integer output.
    pub dither: bool,
    /// Seed of the dither noise.
    pub dither_seed: u64,
    /// Frames rendered after the input ends (at the rate the chain runs at).
    pub tail: Tail,
    /// Whole-file normalisation (two passes).
    pub normalize: Option<NormalizeTarget>,
    /// How damaged input is treated: truncated or damaged files, checksums.
    pub read: ReadOptions,
    /// Fail on NaN/Inf input samples instead of replacing them with 0.
    pub strict: bool,
    /// Refuse inputs with no frames instead of writing an empty output.
    pub no_empty: bool,
    /// Replace an existing output.
    pub force: bool,
    /// Drop the chain's latency (limiter lookahead) so output lines up with input.
    pub compensate_latency: bool,
    /// `fsync` the output before renaming it into place, so that a power cut never leaves a
    /// half-written file under the output's name. Costs the time to get the file onto the
    /// disk; sox and ffmpeg do not do it.
    pub sync: bool,
    /// Output sample rate and channels (`--rate`, `--channels`, `--remix`), and whether the
    /// chain runs before the conversion (the default) or after it.
    pub convert: ConvertOptions,
    /// The layout of raw samples read from stdin (input `-`); `None` reads a WAV stream.
    pub raw_input: Option<RawInput>,
    /// What is written to stdout (output `-`): WAV (the default) or raw samples.
    pub pipe_format: Option<OutputFormat>,
    /// A lossy encoder's quality or bitrate (`--quality`, `--bitrate`).
    pub quality: LossyQuality,
    /// Copy title, artist, album and comment from the input into outputs that hold them
    /// (`--no-tags` turns it off).
    pub copy_tags: bool,
}

impl Default for RenderOptions {
    fn default() -> Self {
        RenderOptions {
            subtype: None,
            dither: true,
            dither_seed: DEFAULT_DITHER_SEED,
            tail: Tail::Seconds(0.0),
            normalize: None,
            read: ReadOptions::default(),
            strict: false,
            no_empty: false,
            force: false,
            compensate_latency: true,
            sync: true,
            convert: ConvertOptions::default(),
            raw_input: None,
            pipe_format: None,
            quality: LossyQuality::Default,
            copy_tags: true,
        }
    }
}

/// What a render did.
#[derive(Debug, Clone, PartialEq)]
pub struct RenderReport {
    /// The input as read.
    pub input: AudioInfo,
    /// Output container and encoding.
    pub format: OutputFormat,
    /// Output encoding.
    pub subtype: Subtype,
    /// Output sample rate.
    pub sample_rate: u32,
    /// Output channels.
    pub channels: usize,
    /// Frames written (input frames plus tail, at the output's rate).
    pub frames: u64,
    /// Tail frames appended.
    pub tail_frames: u64,
    /// Samples clamped to the integer range.
    pub clipped: u64,
    /// NaN/Inf input samples replaced with 0.
    pub nonfinite_replaced: u64,
    /// Normalisation gain applied, in dB.
    pub gain_db: Option<f64>,
    /// Things the user should know (silence not normalised, clipping, replaced samples…).
    pub warnings: Vec<String>,
}

/// Progress of one file, for bars and JSON lines.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Progress {
    /// 1-based pass (2 passes when normalising).
    pub pass: u32,
    /// Passes in all.
    pub passes: u32,
    /// Output frames done in this pass.
    pub frames_done: u64,
    /// Output frames of a pass, when known.
    pub frames_total: Option<u64>,
}

/// Longest tail `--tail auto` renders, in seconds: a delay with feedback near 1 decays for
/// hours, and an unbounded tail would fill the disk without a word. `--tail SECONDS` renders
/// more when that is really wanted.
pub const MAX_AUTO_TAIL_SECONDS: f64 = 60.0;

/// Checks paths before any work: the input is a readable file, the output has a writable
/// extension, is not the input (also through symlinks or hard links), and does not exist
/// unless `force`. Errors here are usage errors (exit code 2 in the CLI).
pub fn check_paths(input: &Path, output: &Path, force: bool) -> Result<OutputFormat> {
    check_output_paths(input, output, force, false)
}

/// [`check_paths`] for an output whose folder is made before rendering (manifest items): the
/// folder need not exist yet.
pub fn check_paths_new_dirs(input: &Path, output: &Path, force: bool) -> Result<OutputFormat> {
    check_output_paths(input, output, force, true)
}

fn check_output_paths(
    input: &Path,
    output: &Path,
    force: bool,
    new_dirs: bool,
) -> Result<OutputFormat> {
    if !is_pipe(input) {
        check_input(input)?;
    }
    if is_pipe(output) {
        return Ok(OutputFormat::Wav);
    }
    let format = OutputFormat::from_path(output)?;
    let out_shown = output.display().to_string();
    // Nothing under the output's name, not even a dangling link (the common case, and in a
    // dataset the one that matters: a few system calls per file add up over a million):
    // only its folder is left to check.
    let absent =
        matches!(fs::symlink_metadata(output), Err(e) if e.kind() == std::io::ErrorKind::NotFound);
    if absent {
        check_output_dir(&output_dir(output), new_dirs)?;
        return Ok(format);
    }
    if !is_pipe(input) && same_file(input, output) {
        return Err(Error::invalid_parameter(
            format!("Output '{out_shown}' is the input file"),
            "output",
            &out_shown,
        )
        .with_suggestion("choose another output name; rtfx never writes over its input"));
    }
    if fs::metadata(output).is_ok_and(|m| m.is_dir()) {
        return Err(
            Error::io(format!("Output '{out_shown}' is a directory"), out_shown)
                .with_suggestion("give a file name, or use --output-dir for directories"),
        );
    }
    // A symbolic link, even one whose target does not exist yet, is an existing output: the
    // render writes through it (as sox and ffmpeg do), so it needs --force.
    let target = write_target(output);
    let is_link = target != output;
    if !force && (is_link || fs::metadata(output).is_ok()) {
        let what = if is_link {
            format!(" (a symbolic link to '{}')", target.display())
        } else {
            String::new()
        };
        return Err(Error::invalid_parameter(
            format!("Output '{out_shown}' already exists{what}"),
            "output",
            &out_shown,
        )
        .with_suggestion(if is_link {
            "pass --force to write through the link (it stays, and its target is replaced), or \
             choose another name"
        } else {
            "pass --force to replace it, or choose another name"
        }));
    }
    check_output_dir(&output_dir(&target), new_dirs)?;
    Ok(format)
}

/// The output's folder exists, or `new_dirs` says it will be made.
fn check_output_dir(dir: &Path, new_dirs: bool) -> Result<()> {
    match fs::metadata(dir) {
        Ok(m) if m.is_dir() => Ok(()),
        Err(_) if new_dirs => Ok(()),
        _ => Err(Error::io(
            format!("Output directory '{}' does not exist", dir.display()),
            dir.display().to_string(),
        )
        .with_suggestion("create it first (mkdir -p)")),
    }
}

/// Whether a path is `-`: stdin as an input, stdout as an output.
pub fn is_pipe(path: &Path) -> bool {
    path.as_os_str() == "-"
}

/// The output format: from the extension, or for stdout (`-`) `pipe_format` (WAV by default).
pub fn output_format(output: &Path, pipe_format: Option<OutputFormat>) -> Result<OutputFormat> {
    if is_pipe(output) {
        Ok(pipe_format.unwrap_or(OutputFormat::Wav))
    } else {
        OutputFormat::from_path(output)
    }
}

/// Refuses options a pipe cannot serve: `--normalize` reads its input twice.
pub fn check_pipe_options(input: &Path, options: &RenderOptions) -> Result<()> {
    if is_pipe(input) && options.normalize.is_some() {
        return Err(Error::invalid_parameter(
            "--normalize reads the input twice (measure, then render), which stdin cannot be",
            "normalize",
            "stdin",
        )
        .with_suggestion("save the input to a file and render that, or drop --normalize"));
    }
    Ok(())
}

/// Opens `input`, or stdin for `-` (a WAV stream, or raw samples as `raw` says).
fn open_input(input: &Path, options: &RenderOptions) -> Result<AudioReader> {
    if is_pipe(input) {
        AudioReader::from_stream(
            Box::new(std::io::stdin()),
            "stdin",
            options.raw_input,
            options.read,
        )
    } else {
        AudioReader::open(input, options.read)
    }
}

/// The input checks of [`check_paths`]: a regular file that opens for reading.
fn check_input(input: &Path) -> Result<()> {
    open_regular_file(input).map(drop)
}

/// The file a write to `output` lands on: `output` itself, or, when it is a symbolic link, the
/// end of its chain of links (relative links resolve against their own directory). A chain
/// that loops stops after 40 links, as the kernel does.
fn write_target(output: &Path) -> PathBuf {
    let mut path = output.to_path_buf();
    for _ in 0..40 {
        match fs::read_link(&path) {
            Ok(next) if next.is_absolute() => path = next,
            Ok(next) => path = output_dir(&path).join(next),
            Err(_) => break,
        }
    }
    path
}

/// The directory an output file goes into.
fn output_dir(output: &Path) -> PathBuf {
    match output.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// Whether two existing paths name the same file (symlinks, `./`, hard links).
fn same_file(a: &Path, b: &Path) -> bool {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        match (fs::metadata(a), fs::metadata(b)) {
            (Ok(ma), Ok(mb)) => ma.dev() == mb.dev() && ma.ino() == mb.ino(),
            _ => false,
        }
    }
    #[cfg(not(unix))]
    match (fs::canonicalize(a), fs::canonicalize(output_dir(b))) {
        (Ok(ca), Ok(dir)) => b.file_name().is_some_and(|name| ca == dir.join(name)),
        _ => false,
    }
}

impl StreamProcessor {
    /// torchfx's `process_file`: renders `input` into `output` (parent directories created,
    /// an existing output replaced, the input never overwritten), format from the output's
    /// extension, `subtype` or the format's default. Same rate and channels as the input, no
    /// tail; see [`crate::offline::render::render_file`] for every option.
    pub fn process_file(
        &mut self,
        input: &Path,
        output: &Path,
        subtype: Option<Subtype>,
    ) -> Result<RenderReport> {
        if let Some(parent) = output.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).map_err(|e| {
                Error::io(
                    format!("Cannot create directory '{}': {e}", parent.display()),
                    parent.display().to_string(),
                )
            })?;
        }
        check_paths(input, output, true)?;
        let options = RenderOptions {
            subtype,
            force: true,
            ..RenderOptions::default()
        };
        render_file(
            self,
            input,
            output,
            &options,
            &mut |_| {},
            &AtomicBool::new(false),
        )
    }
}

/// Renders `input` through `processor` into `output`.
///
/// Call [`check_paths`] first for the usage checks. `progress` is called once per chunk;
/// `cancel` is polled once per chunk and makes the render fail with "interrupted" (the
/// temporary file is removed, an existing output is untouched).
pub fn render_file(
    processor: &mut StreamProcessor,
    input: &Path,
    output: &Path,
    options: &RenderOptions,
    progress: &mut dyn FnMut(Progress),
    cancel: &AtomicBool,
) -> Result<RenderReport> {
    let format = output_format(output, options.pipe_format)?;
    let subtype = options.subtype.unwrap_or(format.default_subtype());
    check_pipe_options(input, options)?;
    let mut reader = open_input(input, options)?;
    let info = reader.info().clone();
    let shown = input.display().to_string();
    if info.frames == Some(0) && options.no_empty {
        return Err(
            Error::format(format!("Input '{shown}' holds no audio frames"))
                .with_parameter_name(shown)
                .with_suggestion("drop --no-empty to write an empty output"),
        );
    }
    // The conversion (rate, channels) runs after the chain unless asked to run first; the
    // chain runs at the rate and channel count of the side it is on.
    let conversion = || -> Result<Option<Conversion>> {
        if !options.convert.is_set() {
            return Ok(None);
        }
        Conversion::new(&options.convert, info.sample_rate, info.channels, &shown).map(Some)
    };
    let probe = conversion()?;
    let (out_rate, out_channels) = probe
        .as_ref()
        .map_or((info.sample_rate, info.channels), |c| {
            (c.out_rate(), c.out_channels())
        });
    let chain_after = options.convert.chain_after && probe.is_some();
    let (chain_rate, chain_channels) = if chain_after {
        (out_rate, out_channels)
    } else {
        (info.sample_rate, info.channels)
    };
    drop(probe);
    processor.configure(chain_rate, chain_channels)?;
    let rate = f64::from(chain_rate);
    let mut warnings = Vec::new();
    let tail_frames = match options.tail {
        Tail::Auto => {
            let decay = processor.chain().tail_samples() as u64;
            let most = (MAX_AUTO_TAIL_SECONDS * rate) as u64;
            if decay > most {
                warnings.push(format!(
                    "--tail auto stopped at its maximum of {MAX_AUTO_TAIL_SECONDS} s; the chain \
                     decays for {:.0} s (give --tail SECONDS to render more)",
                    decay as f64 / rate
                ));
            }
            decay.min(most)
        }
        Tail::Seconds(s) => (s * rate).round() as u64,
    };
    let latency = if options.compensate_latency {
        processor.chain().latency_samples() as u64
    } else {
        0
    };
    let out_frames = info.frames.map(|f| {
        let converted =
            |frames| crate::offline::convert::output_frames(frames, info.sample_rate, out_rate);
        if chain_after {
            converted(f) + tail_frames
        } else {
            converted(f + tail_frames)
        }
    });

    let pass = Pass {
        tail_frames,
        latency,
        total: out_frames,
        strict: options.strict,
        cancel,
    };
    let passes = if options.normalize.is_some() { 2 } else { 1 };
    let mut gain_db = None;
    let mut gain = 1.0f32;
    if let Some(target) = options.normalize {
        let measured = {
            let mut meter = Meter::new(target, out_channels, out_rate)?;
            run_pass(
                processor,
                &mut reader,
                &pass,
                stage(conversion()?, chain_after),
                &mut |p| {
                    progress(Progress {
                        pass: 1,
                        passes,
                        ..p
                    })
                },
                &mut |block| meter.add(block),
            )?;
            meter.finish()?
        };
        let (g, warning) = normalisation_gain(target, &measured);
        if let Some(w) = warning {
            warnings.push(w);
        }
        gain_db = Some(crate::dsp::gain_to_db(g));
        gain = g as f32;
        reader = open_input(input, options)?;
        processor.configure(chain_rate, chain_channels)?;
    }

    let write_options = WriteOptions {
        format,
        subtype,
        dither: options.dither,
        dither_seed: options.dither_seed,
        quality: options.quality,
    };
    let tags = if options.copy_tags {
        info.tags.clone()
    } else {
        Tags::default()
    };
    // Writes the final pass into `out` (a file's temporary, or stdout as a stream).
    let mut final_pass = |out: &mut Box<dyn WriteSeek + '_>, streaming: bool| {
        let mut writer = if streaming {
            AudioWriter::new_stream(out, write_options, out_rate, out_channels)?
        } else {
            AudioWriter::new_tagged(
                out,
                write_options,
                out_rate,
                out_channels,
                out_frames,
                &tags,
            )?
        };
        let mut scaled: Vec<Vec<f32>> = Vec::new();
        run_pass(
            processor,
            &mut reader,
            &pass,
            stage(conversion()?, chain_after),
            &mut |p| {
                progress(Progress {
                    pass: passes,
                    passes,
                    ..p
                })
            },
            &mut |block| {
                if gain == 1.0 {
                    writer.write(block)
                } else {
                    scaled.resize_with(block.len(), Vec::new);
                    for (s, b) in scaled.iter_mut().zip(block) {
                        s.clear();
                        s.extend(b.iter().map(|&x| x * gain));
                    }
                    let frames = block.first().map_or(0, |b| b.len());
                    crate::dsp::with_planar(&scaled, 0..frames, |view| writer.write(view))
                }
            },
        )?;
        let note = writer.note().map(String::from);
        writer.finish().map(|stats| (stats, note))
    };
    let (stats, note) = if is_pipe(output) {
        // stdout: written as it is rendered; a failure ends the stream early (and the exit
        // status says so), as with any program writing to a pipe.
        let mut out: Box<dyn WriteSeek + '_> = Box::new(Unseekable(
            std::io::BufWriter::with_capacity(1 << 20, std::io::stdout().lock()),
        ));
        final_pass(&mut out, true)?
    } else {
        write_file(output, options, |file| {
            // A short file's header and samples leave in one write.
            let mut out: Box<dyn WriteSeek + '_> =
                Box::new(std::io::BufWriter::with_capacity(1 << 16, file));
            final_pass(&mut out, false)
        })?
    };

    warnings.extend(note);
    warnings.extend(reader.damage().iter().cloned());
    if info.format == "MP3" && !info.frames_exact {
        warnings.push(format!(
            "'{shown}' does not state its length (an MP3 without a Xing/LAME/VBRI header): a file \
             cut short cannot be detected; only decode errors were checked"
        ));
    }
    let nonfinite = reader.nonfinite_replaced();
    if nonfinite > 0 {
        warnings.push(format!(
            "{nonfinite} NaN/Inf input samples were replaced with 0 (use --strict to fail instead)"
        ));
    }
    if stats.clipped > 0 {
        warnings.push(format!(
            "{} samples clipped when converting to {} (lower the gain or write float)",
            stats.clipped,
            subtype.name()
        ));
    }
    Ok(RenderReport {
        input: info,
        format,
        subtype,
        sample_rate: out_rate,
        channels: out_channels,
        frames: stats.frames,
        tail_frames,
        clipped: stats.clipped,
        nonfinite_replaced: nonfinite,
        gain_db,
        warnings,
    })
}

/// Where the final pass writes: a file (through [`EarlyWriteback`]) or stdout.
trait WriteSeek: std::io::Write + std::io::Seek {}

impl<T: std::io::Write + std::io::Seek> WriteSeek for T {}

/// A writer that cannot seek (stdout), for [`AudioWriter::new_stream`], which never asks.
struct Unseekable<W>(W);

impl<W: std::io::Write> std::io::Write for Unseekable<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.write(buf)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.0.flush()
    }
}

impl<W> std::io::Seek for Unseekable<W> {
    fn seek(&mut self, _: std::io::SeekFrom) -> std::io::Result<u64> {
        Err(std::io::Error::new(
            std::io::ErrorKind::Unsupported,
            "a pipe cannot seek",
        ))
    }
}

/// Writes `output` safely: `write` fills a temporary file in the output's directory (beside
/// a symbolic link's target, so that the rename replaces the target, not the link), which is
/// then `fsync`ed (unless `options.sync` is off) and renamed into place, refusing to replace
/// a file that appeared meanwhile unless `options.force`. On any error the temporary file
/// disappears.
fn write_file<T>(
    output: &Path,
    options: &RenderOptions,
    write: impl FnOnce(EarlyWriteback<'_>) -> Result<T>,
) -> Result<T> {
    let target = write_target(output);
    let dir = output_dir(&target);
    let name = target
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "output".into());
    let out_shown = output.display().to_string();
    let prefix = format!(".{name}.tmp-");
    let mut builder = tempfile::Builder::new();
    builder.prefix(&prefix);
    // Like any new file: 0666 less the umask (tempfile's default is 0600).
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        builder.permissions(fs::Permissions::from_mode(0o666));
    }
    let mut temp = builder.tempfile_in(&dir).map_err(|e| {
        Error::io(
            format!("Cannot create a temporary file in '{}': {e}", dir.display()),
            dir.display().to_string(),
        )
        .with_suggestion("check that the output directory exists and is writable")
    })?;
    let result = write(EarlyWriteback::new(temp.as_file_mut(), options.sync))?;
    let synced = if options.sync {
        temp.as_file().sync_all()
    } else {
        Ok(())
    };
    synced.map_err(|e| {
        Error::io(
            format!("Cannot write output '{out_shown}': {e}"),
            out_shown.clone(),
        )
        .with_suggestion("check free disk space")
    })?;
    let persisted = if options.force {
        temp.persist(&target).map(|_| ())
    } else {
        temp.persist_noclobber(&target).map(|_| ())
    };
    persisted.map_err(|e| {
        Error::io(
            format!(
                "Cannot move the finished output to '{out_shown}': {}",
                e.error
            ),
            out_shown.clone(),
        )
        .with_suggestion("pass --force if another program created the file meanwhile")
    })?;
    Ok(result)
}

/// A file that asks the kernel to start writing each finished stretch to disk while the
/// render goes on, so the final `fsync` (needed before the rename for the output to survive a
/// crash) finds little left to do instead of the whole file.
struct EarlyWriteback<'a> {
    file: &'a mut fs::File,
    /// Bytes from the start of the file up to which writeback has been started.
    started: u64,
    /// Current write position.
    position: u64,
    /// Whether to start writeback at all (only worth it when the file will be synced).
    enabled: bool,
}

/// Bytes between writeback requests.
const WRITEBACK_STRETCH: u64 = 8 << 20;

impl<'a> EarlyWriteback<'a> {
    fn new(file: &'a mut fs::File, enabled: bool) -> Self {
        EarlyWriteback {
            file,
            started: 0,
            position: 0,
            enabled,
        }
    }

    #[cfg(target_os = "linux")]
    fn start_writeback(&mut self) {
        use std::os::fd::AsRawFd;
        if !self.enabled || self.position < self.started + WRITEBACK_STRETCH {
            return;
        }
        let fd = self.file.as_raw_fd();
        let len = (self.position - self.started) as libc::off64_t;
        // SAFETY: a plain syscall on an open descriptor we own; it reads no user memory.
        // Failure only means the final fsync does all the work, so its result is ignored.
        unsafe {
            libc::sync_file_range(
                fd,
                self.started as libc::off64_t,
                len,
                libc::SYNC_FILE_RANGE_WRITE,
            );
        }
        self.started = self.position;
    }

    #[cfg(not(target_os = "linux"))]
    fn start_writeback(&mut self) {}
}

impl std::io::Write for EarlyWriteback<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.file.write(buf)?;
        self.position += n as u64;
        self.start_writeback();
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.file.flush()
    }
}

impl std::io::Seek for EarlyWriteback<'_> {
    fn seek(&mut self, pos: std::io::SeekFrom) -> std::io::Result<u64> {
        let at = self.file.seek(pos)?;
        self.position = at;
        // Header rewrites jump back: restart the stretch from there.
        self.started = self.started.min(at);
        Ok(at)
    }
}

/// Blocks in flight between the decoding thread and the processing thread.
const READ_AHEAD: usize = 3;

/// Fewest frames a read asks for when the header says fewer are left.
const MIN_READ: usize = 4096;

/// What a pass over the input needs besides the processor and the reader.
struct Pass<'a> {
    /// Frames of silence processed after the input (the effects' tail).
    tail_frames: u64,
    /// Frames dropped at the start and flushed at the end (the chain's latency).
    latency: u64,
    /// Output frames of the pass, when known (for progress).
    total: Option<u64>,
    /// NaN or infinity in the input is an error (else it is replaced with 0).
    strict: bool,
    /// Set to stop: the pass ends with an "interrupted" error.
    cancel: &'a AtomicBool,
}

/// Where a pass converts rate and channels, if at all.
enum Stage {
    /// No conversion.
    None,
    /// Before the chain, on the decoding thread.
    Before(Box<Conversion>),
    /// After the chain (and its latency compensation), before the sink.
    After(Box<Conversion>),
}

fn stage(conversion: Option<Conversion>, chain_after: bool) -> Stage {
    match conversion {
        None => Stage::None,
        Some(c) if chain_after => Stage::Before(Box::new(c)),
        Some(c) => Stage::After(Box::new(c)),
    }
}

/// A block decoded by the reading thread: planar buffers and their valid frame count.
type ReadBlock = Result<(Vec<Vec<f32>>, usize)>;

/// Reads the next block into `buf` (`want` frames at most), through `before` when the
/// conversion runs first; Ok(0) at the end.
fn read_block(
    reader: &mut AudioReader,
    before: Option<&mut Conversion>,
    raw: &mut Vec<Vec<f32>>,
    finished: &mut bool,
    buf: &mut Vec<Vec<f32>>,
    want: usize,
    strict: bool,
) -> Result<usize> {
    let mut read = |into: &mut Vec<Vec<f32>>| -> Result<usize> {
        for b in into.iter_mut() {
            b.resize(want, 0.0);
        }
        let before = reader.nonfinite_replaced();
        let n = reader.read(into)?;
        if strict && reader.nonfinite_replaced() > before {
            return Err(Error::format(format!(
                "Input '{}' contains NaN or Inf samples",
                reader.name()
            ))
            .with_suggestion("drop --strict to replace them with 0"));
        }
        Ok(n)
    };
    let Some(conversion) = before else {
        return read(buf);
    };
    // A converter holds back its first frames: read until some come out, or the input ends.
    while !*finished {
        let n = read(raw)?;
        if n == 0 {
            *finished = true;
            conversion.finish(buf)?;
        } else {
            crate::dsp::with_planar(raw, 0..n, |view| conversion.process(view, buf))?;
        }
        let made = buf.first().map_or(0, Vec::len);
        if made > 0 {
            return Ok(made);
        }
    }
    Ok(0)
}

/// One pass over the file plus tail: read, process, drop the first `pass.latency` frames,
/// flush that many frames of zeros at the end, convert where `stage` says, and hand each block
/// to `sink`.
///
/// Decoding runs on its own thread, READ_AHEAD blocks ahead of processing and writing, so
/// the two halves of a render overlap on two cores. The buffers circulate between the
/// threads: nothing is allocated per block once their sizes have settled. A file that is one
/// read long has nothing to overlap and is decoded in line: starting and joining a thread
/// cost a tenth of a one-second clip's render.
fn run_pass(
    processor: &mut StreamProcessor,
    reader: &mut AudioReader,
    pass: &Pass,
    stage: Stage,
    progress: &mut dyn FnMut(Progress),
    sink: &mut dyn FnMut(&[&[f32]]) -> Result<()>,
) -> Result<u64> {
    let in_channels = reader.info().channels;
    let (mut before, after) = match stage {
        Stage::None => (None, None),
        Stage::Before(c) => (Some(c), None),
        Stage::After(c) => (None, Some(c)),
    };
    let channels = before.as_ref().map_or(in_channels, |c| c.out_channels());
    let (chunk, hop) = (processor.chunk_size(), processor.hop());
    let mut read_sizes = processor.read_sizes();
    // A short file needs no chunk-sized buffers (allocating and touching them cost most of
    // a one-second clip's render): reads ask for what the header says is left, and at
    // least MIN_READ frames, so a header that understates the length still reads on.
    let declared = reader.info().frames;
    let sized = move |want: usize, position: u64| match declared {
        Some(frames) => want.min((frames.saturating_sub(position) as usize).max(MIN_READ)),
        None => want,
    };
    let first_read = sized(chunk, 0);
    let one_read = declared.is_some_and(|frames| frames <= first_read as u64);
    let strict = pass.strict;
    let mut raw = vec![Vec::new(); in_channels];
    let mut finished = false;
    let mut read_next = move |mut buf: Vec<Vec<f32>>| -> ReadBlock {
        let want = sized(read_sizes.next().unwrap_or(hop), reader.position());
        let block = read_block(
            reader,
            before.as_deref_mut(),
            &mut raw,
            &mut finished,
            &mut buf,
            want,
            strict,
        );
        block.map(|n| (buf, n))
    };
    let new_buffer = || vec![Vec::with_capacity(first_read); channels];
    if one_read {
        let mut source =
            |spare: Option<Vec<Vec<f32>>>| Some(read_next(spare.unwrap_or_else(new_buffer)));
        return process_blocks(
            processor,
            pass,
            after,
            channels,
            &mut source,
            progress,
            sink,
        );
    }
    std::thread::scope(|scope| {
        let (full_tx, full_rx) = std::sync::mpsc::sync_channel::<ReadBlock>(READ_AHEAD);
        let (empty_tx, empty_rx) = std::sync::mpsc::channel::<Vec<Vec<f32>>>();
        for _ in 0..READ_AHEAD {
            let _ = empty_tx.send(new_buffer());
        }
        scope.spawn(move || {
            // Ends when the file ends, on an error, or when the processing side hangs up.
            while let Ok(buf) = empty_rx.recv() {
                let block = read_next(buf);
                let stop = !matches!(block, Ok((_, n)) if n > 0);
                if full_tx.send(block).is_err() || stop {
                    break;
                }
            }
        });
        // Moved in, so that returning (also on an error) hangs up on the reading thread.
        let mut source = move |spare: Option<Vec<Vec<f32>>>| {
            if let Some(buf) = spare {
                let _ = empty_tx.send(buf);
            }
            full_rx.recv().ok()
        };
        process_blocks(
            processor,
            pass,
            after,
            channels,
            &mut source,
            progress,
            sink,
        )
    })
}

/// The processing half of [`run_pass`]. `source` hands back the previous block's buffers
/// (when there was one) and gives the next block: `None` or zero frames at the end.
fn process_blocks(
    processor: &mut StreamProcessor,
    pass: &Pass,
    mut after: Option<Box<Conversion>>,
    channels: usize,
    source: &mut dyn FnMut(Option<Vec<Vec<f32>>>) -> Option<ReadBlock>,
    progress: &mut dyn FnMut(Progress),
    sink: &mut dyn FnMut(&[&[f32]]) -> Result<()>,
) -> Result<u64> {
    let &Pass {
        tail_frames,
        latency,
        total,
        cancel,
        ..
    } = pass;
    let hop = processor.hop();
    // Sized when the tail needs it.
    let mut tail_buf = vec![Vec::new(); channels];
    let mut converted: Vec<Vec<f32>> = Vec::new();
    let mut input_done = false;
    let mut spare = None;
    let mut extra = tail_frames + latency;
    let mut skip = latency;
    let mut written = 0u64;
    let mut emit = |block: &[&[f32]], written: &mut u64| -> Result<()> {
        let Some(conversion) = after.as_deref_mut() else {
            *written += block.first().map_or(0, |b| b.len()) as u64;
            return sink(block);
        };
        conversion.process(block, &mut converted)?;
        let n = converted.first().map_or(0, Vec::len);
        *written += n as u64;
        if n > 0 {
            crate::dsp::with_planar(&converted, 0..n, &mut *sink)?;
        }
        Ok(())
    };
    loop {
        if cancel.load(Ordering::Relaxed) {
            return Err(Error::stream("Rendering interrupted")
                .with_suggestion("the partial output was removed; run the command again"));
        }
        let mut from_reader = None;
        if !input_done {
            match source(spare.take()) {
                Some(Ok((buf, n))) if n > 0 => from_reader = Some((buf, n)),
                Some(Ok(_)) | None => input_done = true,
                Some(Err(e)) => return Err(e),
            }
        }
        let (mut buf, n) = match from_reader {
            Some(block) => block,
            None => {
                if extra == 0 {
                    break;
                }
                // Past the end: feed silence for the tail and to flush the latency.
                let n = extra.min(hop as u64) as usize;
                extra -= n as u64;
                for b in &mut tail_buf {
                    b.clear();
                    b.resize(n, 0.0);
                }
                (std::mem::take(&mut tail_buf), n)
            }
        };
        crate::dsp::with_planar_mut(&mut buf, 0..n, |block| processor.process_block(block));
        let drop = skip.min(n as u64) as usize;
        skip -= drop as u64;
        if drop < n {
            crate::dsp::with_planar(&buf, drop..n, |block| emit(block, &mut written))?;
        }
        if input_done {
            tail_buf = buf;
        } else {
            spare = Some(buf);
        }
        progress(Progress {
            pass: 1,
            passes: 1,
            frames_done: written,
            frames_total: total,
        });
    }
    if let Some(conversion) = after.as_deref_mut() {
        conversion.finish(&mut converted)?;
        let n = converted.first().map_or(0, Vec::len);
        written += n as u64;
        if n > 0 {
            crate::dsp::with_planar(&converted, 0..n, &mut *sink)?;
        }
    }
    Ok(written)
}

/// Level measurements of a whole rendered signal.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Measured {
    /// Largest absolute sample.
    pub peak: f64,
    /// RMS over all samples of all channels.
    pub rms: f64,
    /// Integrated loudness in LUFS (-inf for silence), when measured.
    pub lufs: Option<f64>,
    /// Largest true peak over the channels (linear), when measured.
    pub true_peak: Option<f64>,
}

/// Whole-file levels for normalisation: sample peak and RMS ([`Levels`], the normalize
/// effect's own measurement) and, for a loudness target, the integrated loudness (the
/// `ebur128` crate) and the true peak (rtfx's own oversampling meter,
/// [`crate::dsp::true_peak`]: the `ebur128` crate's 4× true peak reads low on inter-sample
/// peaks near Nyquist, by enough to let the -1 dBTP ceiling be crossed).
struct Meter {
    levels: Levels,
    ebu: Option<ebur128::EbuR128>,
    true_peak: Option<crate::dsp::true_peak::TruePeakMeter>,
}

impl Meter {
    fn new(target: NormalizeTarget, channels: usize, rate: u32) -> Result<Self> {
        let ebu = match target {
            NormalizeTarget::Lufs(_) => Some(
                ebur128::EbuR128::new(channels as u32, rate, ebur128::Mode::I)
                    .map_err(|e| Error::format(format!("Loudness meter failed: {e}")))?,
            ),
            _ => None,
        };
        let true_peak = ebu
            .as_ref()
            .map(|_| crate::dsp::true_peak::TruePeakMeter::new(channels));
        Ok(Meter {
            levels: Levels::default(),
            ebu,
            true_peak,
        })
    }

    fn add(&mut self, block: &[&[f32]]) -> Result<()> {
        for ch in block {
            self.levels.add(ch);
        }
        if let Some(ebu) = &mut self.ebu {
            ebu.add_frames_planar_f32(block)
                .map_err(|e| Error::format(format!("Loudness meter failed: {e}")))?;
        }
        if let Some(tp) = &mut self.true_peak {
            tp.add(block);
        }
        Ok(())
    }

    fn finish(self) -> Result<Measured> {
        let peak = self.levels.peak();
        let lufs = self
            .ebu
            .as_ref()
            .map(|ebu| ebu.loudness_global().unwrap_or(f64::NEG_INFINITY));
        // Never below the sample peak (the meter's reading is at least that, up to rounding).
        let true_peak = self.true_peak.as_ref().map(|m| m.true_peak().max(peak));
        Ok(Measured {
            peak,
            rms: self.levels.rms(),
            lufs,
            true_peak,
        })
    }
}

/// The linear gain that meets `target` for a signal measured as `m`, and a warning when it
/// cannot be met (silence stays at unity gain; loudness gain is capped by the true-peak
/// ceiling).
pub fn normalisation_gain(target: NormalizeTarget, m: &Measured) -> (f64, Option<String>) {
    let db = crate::dsp::db_to_gain;
    let silence = || {
        (
            1.0,
            Some("cannot normalize silence: gain left at 0 dB".to_string()),
        )
    };
    match target {
        NormalizeTarget::Peak(level) => {
            if m.peak <= 0.0 {
                return silence();
            }
            (db(level) / m.peak, None)
        }
        NormalizeTarget::Rms(level) => {
            if m.rms <= 0.0 {
                return silence();
            }
            (db(level) / m.rms, None)
        }
        NormalizeTarget::Lufs(level) => {
            let lufs = m.lufs.unwrap_or(f64::NEG_INFINITY);
            if !lufs.is_finite() {
                return silence();
            }
            let gain = db(level - lufs);
            let tp = m.true_peak.unwrap_or(m.peak);
            let ceiling = db(LUFS_TRUE_PEAK_CEILING_DB - LUFS_TRUE_PEAK_MARGIN_DB);
            if tp > 0.0 && tp * gain > ceiling {
                let capped = ceiling / tp;
                let reached = lufs + crate::dsp::gain_to_db(capped);
                return (
                    capped,
                    Some(format!(
                        "loudness target {level} LUFS would push the true peak above \
                         {LUFS_TRUE_PEAK_CEILING_DB} dBTP; reached {reached:.1} LUFS instead"
                    )),
                );
            }
            (gain, None)
        }
    }
}

//! Audio file reading and writing for the offline renderer.
//!
//! Reading ([`AudioReader`], here): plain RIFF/RF64 WAV (PCM 8/16/24/32, float 32/64,
//! `WAVE_FORMAT_EXTENSIBLE`) goes through a lean reader of our own (`wav_reader.rs`) that
//! converts large raw blocks straight into planar `f32` (the renderer's hot path: no
//! per-sample decode calls); everything else (FLAC, OGG/Vorbis, MP3, AIFF, exotic WAV codecs)
//! goes through symphonia (`decode.rs`). Writing ([`AudioWriter`], `writer.rs`): WAV (PCM
//! 16/24/32, float 32) through a block writer of our own, FLAC (16/24 bit) through flacenc
//! (`flac.rs`), frame by frame so memory stays flat; formats and subtypes in `format.rs`.
//! Integer output gets seeded TPDF dither by default (`dither.rs`) and clamps (never wraps)
//! with a count of clipped samples.
//!
//! ```no_run
//! use rtfx::offline::audio_io::{
//!     AudioReader, AudioWriter, OutputFormat, ReadOptions, Subtype, WriteOptions,
//! };
//!
//! let mut reader = AudioReader::open("in.wav".as_ref(), ReadOptions::default())?;
//! let info = reader.info().clone();
//! let mut out = std::fs::File::create("out.flac")?;
//! let options = WriteOptions::new(OutputFormat::Flac, Subtype::Pcm24);
//! let mut writer = AudioWriter::new(&mut out, options, info.sample_rate, info.channels, info.frames)?;
//! let mut planar = vec![vec![0.0f32; 4096]; info.channels];
//! loop {
//!     let n = reader.read(&mut planar)?;
//!     if n == 0 { break; }
//!     let block: Vec<&[f32]> = planar.iter().map(|c| &c[..n]).collect();
//!     writer.write(&block)?;
//! }
//! let stats = writer.finish()?;
//! println!("{} samples clipped", stats.clipped);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::fs::File;
use std::io::Read;
use std::path::Path;

use crate::error::{Error, Result};

mod decode;
mod dither;
mod flac;
mod format;
mod libflac;
mod lossy;
mod wav_reader;
mod writer;

use decode::SymphoniaSource;
pub use format::{OutputFormat, Subtype};
pub use lossy::{LossyQuality, MP3_BITRATES, MP3_RATES};
use wav_reader::WavSource;

pub use writer::{AudioWriter, DEFAULT_DITHER_SEED, WriteOptions, WriteStats};

/// Most channels a file may have (the renderer's documented limit).
pub const MAX_FILE_CHANNELS: usize = 32;
/// Lowest sample rate the renderer accepts, in Hz.
pub const MIN_SAMPLE_RATE: u32 = 1000;
/// Highest sample rate the renderer accepts, in Hz.
pub const MAX_SAMPLE_RATE: u32 = 768_000;

/// What an input file holds.
#[derive(Debug, Clone, PartialEq)]
pub struct AudioInfo {
    /// Container format, e.g. "WAV", "FLAC", "OGG".
    pub format: String,
    /// Sample encoding, e.g. "PCM_16", "PCM_24", "FLOAT", "DOUBLE", "VORBIS".
    pub subtype: String,
    /// Frames per second.
    pub sample_rate: u32,
    /// Channel count.
    pub channels: usize,
    /// Frames in the file, when the container says (always for WAV and FLAC).
    pub frames: Option<u64>,
    /// Whether `frames` is exact, so that reading checks the file delivers all of them. False
    /// for an MP3 without a Xing/LAME/VBRI header, whose length is estimated from its bitrate.
    pub frames_exact: bool,
    /// File size in bytes.
    pub file_size: u64,
    /// Title, artist, album and comment, where the file carries them (FLAC, Ogg, MP3's ID3,
    /// AIFF; not read from WAV).
    pub tags: Tags,
}

/// The tags rtfx carries from an input to an output that holds them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Tags {
    /// Title.
    pub title: Option<String>,
    /// Artist.
    pub artist: Option<String>,
    /// Album.
    pub album: Option<String>,
    /// Comment.
    pub comment: Option<String>,
}

impl Tags {
    /// Whether there is no tag at all.
    pub fn is_empty(&self) -> bool {
        self.title.is_none()
            && self.artist.is_none()
            && self.album.is_none()
            && self.comment.is_none()
    }
}

impl AudioInfo {
    /// Duration in seconds, when the frame count is known.
    pub fn duration_seconds(&self) -> Option<f64> {
        self.frames.map(|f| f as f64 / f64::from(self.sample_rate))
    }
}

/// How [`AudioReader`] treats damaged input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReadOptions {
    /// Read what can be read from a truncated or damaged file instead of failing: a WAV whose
    /// header promises more data than the file holds, a compressed file shorter than its
    /// header says, a packet that does not decode (it becomes silence of the packet's length,
    /// so later audio keeps its time). [`AudioReader::frames_lost`] counts what was missing.
    pub allow_truncated: bool,
    /// Check the decoded audio against the checksum the file carries (FLAC's STREAMINFO MD5)
    /// when it ends.
    pub verify: bool,
}

impl Default for ReadOptions {
    /// Damage is an error; checksums are verified.
    fn default() -> Self {
        ReadOptions {
            allow_truncated: false,
            verify: true,
        }
    }
}

/// Reads an audio file block by block into planar `f32`.
pub struct AudioReader {
    name: String,
    info: AudioInfo,
    source: Source,
    /// Non-finite samples replaced by 0 so far.
    nonfinite: u64,
    /// Frames delivered so far.
    position: u64,
}

/// "1.250 s (frame 55125)": a position in a file, for messages.
fn at_frame(frame: u64, sample_rate: u32) -> String {
    let seconds = frame as f64 / f64::from(sample_rate.max(1));
    format!("{seconds:.3} s (frame {frame})")
}

enum Source {
    Wav(WavSource),
    Symphonia(Box<SymphoniaSource>),
}

impl AudioReader {
    /// Opens `path` and reads its header.
    ///
    /// A file whose header promises more data than it holds, or a packet that does not
    /// decode, is an error (at open for WAV, when reading reaches it otherwise) unless
    /// `options.allow_truncated` is set; see [`ReadOptions`].
    ///
    /// # Errors
    /// A path that is not a regular file (a FIFO, a device, a directory), an unreadable or
    /// empty file, a header that is not audio rtfx decodes, or a layout outside
    /// [`MAX_FILE_CHANNELS`] and [`MIN_SAMPLE_RATE`]..=[`MAX_SAMPLE_RATE`].
    pub fn open(path: &Path, options: ReadOptions) -> Result<Self> {
        let shown = path.display().to_string();
        let (file, meta) = open_regular_file(path)?;
        let file_size = meta.len();
        if file_size == 0 {
            return Err(Error::format(format!("Input '{shown}' is empty (0 bytes)"))
                .with_parameter_name(shown)
                .with_suggestion("the file holds no audio; check that it was written completely"));
        }
        // The header's chunks and a short file's samples in one read.
        let mut file = std::io::BufReader::with_capacity(1 << 16, file);
        let mut riff = [0u8; 12];
        let got = read_up_to(&mut file, &mut riff)
            .map_err(|e| Error::io(format!("Cannot read '{shown}': {e}"), shown.clone()))?;
        let head = &riff[..got];
        let source = if is_riff(head) {
            match WavSource::open(
                Box::new(file),
                riff,
                Some(file_size),
                &shown,
                options.allow_truncated,
            )? {
                Some(wav) => Source::Wav(wav),
                // A WAV codec we do not decode ourselves (ADPCM, mu-law…): symphonia.
                None => Source::Symphonia(Box::new(SymphoniaSource::open(
                    path, &shown, head, options,
                )?)),
            }
        } else {
            Source::Symphonia(Box::new(SymphoniaSource::open(
                path, &shown, head, options,
            )?))
        };
        Self::with_source(shown, source, file_size)
    }

    /// Reads a stream that cannot seek (stdin): a WAV stream, or raw interleaved samples
    /// when `raw` describes them. `name` is how messages call it (e.g. "stdin"). A WAV
    /// header's length is checked as the data arrives; the open lengths that writers leave in
    /// a pipe's header (`u32::MAX`, sox's `0x7FFFF000`, 0) and raw samples end where the
    /// stream does, with an unknown frame count.
    ///
    /// # Errors
    /// A stream that is neither WAV nor `raw`, a WAV codec only read from files, a bad header
    /// or layout.
    pub fn from_stream(
        mut stream: Box<dyn Read + Send>,
        name: &str,
        raw: Option<RawInput>,
        options: ReadOptions,
    ) -> Result<Self> {
        let shown = name.to_string();
        if let Some(raw) = raw {
            let source = WavSource::raw(
                stream,
                raw.subtype.raw_encoding(),
                raw.sample_rate,
                raw.channels,
                &shown,
            )?;
            return Self::with_source(shown, Source::Wav(source), 0);
        }
        let mut riff = [0u8; 12];
        let got = read_up_to(&mut stream, &mut riff)
            .map_err(|e| Error::io(format!("Cannot read '{shown}': {e}"), shown.clone()))?;
        let head = &riff[..got];
        let not_wav = |what: &str| {
            Error::format(format!(
                "'{shown}' holds {what}: rtfx reads WAV or raw samples from a pipe"
            ))
            .with_parameter_name(&shown)
            .with_suggestion(
                "save it to a file and render that, or describe raw samples with \
                     --input-format f32le|s16le|s24le|s32le --input-rate HZ --input-channels N",
            )
        };
        if got == 0 {
            return Err(not_wav("nothing (the stream was empty)"));
        }
        if !is_riff(head) {
            return Err(not_wav(sniff_format(head)));
        }
        match WavSource::open(stream, riff, None, &shown, options.allow_truncated)? {
            Some(wav) => Self::with_source(shown, Source::Wav(wav), 0),
            None => Err(not_wav(
                "a WAV codec rtfx decodes only from files (ADPCM, µ-law…)",
            )),
        }
    }

    fn with_source(shown: String, source: Source, file_size: u64) -> Result<Self> {
        let (format, subtype, sample_rate, channels, frames, frames_exact, tags) = match &source {
            Source::Wav(w) => (
                "WAV".to_string(),
                w.encoding.subtype().to_string(),
                w.sample_rate,
                w.channels,
                w.frames,
                w.frames.is_some(),
                Tags::default(),
            ),
            Source::Symphonia(s) => (
                s.format.clone(),
                s.subtype.clone(),
                s.sample_rate,
                s.channels,
                s.frames,
                s.frames_exact,
                s.tags.clone(),
            ),
        };
        check_layout(&shown, sample_rate, channels)?;
        Ok(AudioReader {
            name: shown,
            info: AudioInfo {
                format,
                subtype,
                sample_rate,
                channels,
                frames,
                frames_exact,
                file_size,
                tags,
            },
            source,
            nonfinite: 0,
            position: 0,
        })
    }

    /// The file's format, rate, channels and length.
    pub fn info(&self) -> &AudioInfo {
        &self.info
    }

    /// The path as given, for messages.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Non-finite (NaN or ±Inf) samples replaced by 0 so far.
    pub fn nonfinite_replaced(&self) -> u64 {
        self.nonfinite
    }

    /// Frames read so far.
    pub fn position(&self) -> u64 {
        self.position
    }

    /// Frames the file should have held but did not deliver (a truncated file, or damaged
    /// packets read as silence), when [`ReadOptions::allow_truncated`] let reading go on.
    /// Complete once [`read`](Self::read) has returned 0.
    pub fn frames_lost(&self) -> u64 {
        match &self.source {
            Source::Wav(w) => w.lost,
            Source::Symphonia(s) => s.lost,
        }
    }

    /// What reading found wrong and let pass (with [`ReadOptions::allow_truncated`]): one
    /// line each, for the renderer's warnings. Complete once [`read`](Self::read) has
    /// returned 0.
    pub fn damage(&self) -> &[String] {
        match &self.source {
            Source::Wav(w) => &w.damage,
            Source::Symphonia(s) => &s.damage,
        }
    }

    /// Reads up to `planar[0].len()` frames into the planar buffers (one per channel, all of
    /// the same length; there must be `info().channels` of them). Returns the frames read;
    /// 0 means the end of the file. NaN and ±Inf samples become 0 and are counted.
    pub fn read(&mut self, planar: &mut [Vec<f32>]) -> Result<usize> {
        if planar.len() != self.info.channels {
            return Err(Error::invalid_range(
                "Planar buffer count differs from the file's channel count",
                "planar",
                planar.len(),
            )
            .with_expected(format!("{} buffers", self.info.channels)));
        }
        let max = planar.iter().map(Vec::len).min().unwrap_or(0);
        let (n, nonfinite) = match &mut self.source {
            Source::Wav(w) => w.read(planar, max)?,
            Source::Symphonia(s) => s.read(planar, max)?,
        };
        self.nonfinite += nonfinite;
        self.position += n as u64;
        Ok(n)
    }
}

/// Whether a stream starts with a RIFF/RF64/BW64 WAVE header.
fn is_riff(head: &[u8]) -> bool {
    head.len() == 12
        && matches!(&head[0..4], b"RIFF" | b"RF64" | b"BW64")
        && &head[8..12] == b"WAVE"
}

/// How raw samples from a pipe are laid out (`--input-format/--input-rate/--input-channels`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RawInput {
    /// Sample encoding, little-endian interleaved: f32le, s16le, s24le or s32le.
    pub subtype: Subtype,
    /// Frames per second.
    pub sample_rate: u32,
    /// Channels.
    pub channels: usize,
}

/// Opens an input file for reading, with its metadata, refusing what is not a regular file
/// (without waiting on a FIFO that has no writer): a pipe or device has no length to check.
///
/// # Errors
/// The path cannot be opened, or names a directory, FIFO, device or socket.
pub fn open_regular_file(path: &Path) -> Result<(File, std::fs::Metadata)> {
    let shown = &path.display().to_string();
    let cannot_open = |e: std::io::Error| {
        if e.kind() == std::io::ErrorKind::NotFound {
            return Error::io(format!("Input '{shown}' does not exist"), shown).with_suggestion(
                "check the path (globs need quotes only when the shell must not expand them)",
            );
        }
        // What will not open may still be a kind rtfx refuses anyway (a socket): say so.
        if let Ok(meta) = std::fs::metadata(path)
            && let Err(refused) = check_file_kind(path, meta.file_type())
        {
            return refused;
        }
        Error::io(format!("Input '{shown}' cannot be read: {e}"), shown)
            .with_suggestion("check the file's permissions")
    };
    let mut open = std::fs::OpenOptions::new();
    open.read(true);
    // Opening a FIFO would wait for a writer, and a terminal could become ours: neither, so
    // that the kind is checked on what was opened (one `fstat`, and no race with a rename).
    // Reads of regular files ignore O_NONBLOCK.
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        open.custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY);
    }
    let file = open.open(path).map_err(cannot_open)?;
    let meta = file.metadata().map_err(cannot_open)?;
    check_file_kind(path, meta.file_type())?;
    Ok((file, meta))
}

/// Refuses anything but a regular file (`kind`, from the caller's `metadata`) as an input.
fn check_file_kind(path: &Path, kind: std::fs::FileType) -> Result<()> {
    let shown = &path.display().to_string();
    if kind.is_file() {
        return Ok(());
    }
    let what = if kind.is_dir() {
        "a directory"
    } else {
        file_kind_name(&kind)
    };
    Err(
        Error::format(format!("Input '{shown}' is {what}, not a regular file"))
            .with_parameter_name(shown)
            .with_suggestion(if kind.is_dir() {
                "give an audio file, or a glob such as 'dir/*.wav' with --output-dir"
            } else {
                "rtfx reads audio files it can check from start to end; save the stream to a \
                 file first (e.g. `cat PIPE > in.wav`)"
            }),
    )
}

/// Names a special file type: FIFO, character device, block device, socket.
pub(crate) fn file_kind_name(kind: &std::fs::FileType) -> &'static str {
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        if kind.is_fifo() {
            return "a FIFO (named pipe)";
        } else if kind.is_char_device() {
            return "a character device";
        } else if kind.is_block_device() {
            return "a block device";
        } else if kind.is_socket() {
            return "a socket";
        }
    }
    let _ = kind;
    "a special file"
}

/// Refuses rates and channel counts outside the documented limits.
fn check_layout(shown: &str, sample_rate: u32, channels: usize) -> Result<()> {
    if channels == 0 || channels > MAX_FILE_CHANNELS {
        return Err(Error::invalid_range(
            format!("Input '{shown}' has {channels} channels"),
            "channels",
            channels,
        )
        .with_expected(format!("1 to {MAX_FILE_CHANNELS} channels"))
        .with_suggestion("the header may be corrupt; re-export the file"));
    }
    if !(MIN_SAMPLE_RATE..=MAX_SAMPLE_RATE).contains(&sample_rate) {
        return Err(Error::invalid_sample_rate(
            sample_rate,
            format!("{MIN_SAMPLE_RATE} to {MAX_SAMPLE_RATE} Hz"),
        )
        .with_message(format!(
            "Input '{shown}' has an unsupported sample rate of {sample_rate} Hz"
        ))
        .with_suggestion("the header may be corrupt; resample or re-export the file"));
    }
    Ok(())
}

/// Reads until `buf` is full or the end of the file; returns the bytes read.
fn read_up_to(r: &mut impl Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut got = 0;
    while got < buf.len() {
        match r.read(&mut buf[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(got)
}

/// Names a file type from its first bytes, for "not audio" errors.
pub fn sniff_format(head: &[u8]) -> &'static str {
    let starts = |m: &[u8]| head.starts_with(m);
    if starts(b"RIFF") || starts(b"RF64") || starts(b"BW64") {
        "RIFF (WAV)"
    } else if starts(b"fLaC") {
        "FLAC"
    } else if starts(b"OggS") {
        "OGG"
    } else if starts(b"ID3") || (head.len() > 1 && head[0] == 0xFF && head[1] & 0xE0 == 0xE0) {
        "MP3"
    } else if starts(b"FORM") {
        "AIFF"
    } else if starts(b"\x89PNG") {
        "a PNG image"
    } else if starts(b"\xFF\xD8\xFF") {
        "a JPEG image"
    } else if starts(b"%PDF") {
        "a PDF document"
    } else if starts(b"PK\x03\x04") {
        "a ZIP archive"
    } else if starts(b"\x7FELF") {
        "an ELF executable"
    } else if !head.is_empty()
        && head
            .iter()
            .all(|&b| b == b'\n' || b == b'\r' || b == b'\t' || (0x20..0x7F).contains(&b))
    {
        "text"
    } else {
        "unknown binary data"
    }
}

//! Audio file reading and writing for the offline renderer.
//!
//! Reading: plain RIFF/RF64 WAV (PCM 8/16/24/32, float 32/64, `WAVE_FORMAT_EXTENSIBLE`) goes
//! through a lean reader of our own that converts large raw blocks straight into planar `f32`
//! (the renderer's hot path: no per-sample decode calls); everything else (FLAC, OGG/Vorbis,
//! MP3, AIFF, exotic WAV codecs) goes through symphonia. Writing: WAV (PCM 16/24/32, float 32)
//! through a block writer of our own, FLAC (16/24 bit) through flacenc, frame by frame so
//! memory stays flat. Integer output gets seeded TPDF dither by default and clamps (never
//! wraps) with a count of clipped samples.
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

use std::fmt;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::Path;

use crate::dsp::noise::Noise;
use crate::error::{Error, Result};

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
        check_regular_file(path)?;
        let mut file = File::open(path).map_err(|e| {
            Error::io(format!("Cannot open input '{shown}': {e}"), shown.clone())
                .with_suggestion("check the path and its permissions")
        })?;
        let file_size = file
            .metadata()
            .map_err(|e| Error::io(format!("Cannot read '{shown}': {e}"), shown.clone()))?
            .len();
        if file_size == 0 {
            return Err(Error::format(format!("Input '{shown}' is empty (0 bytes)"))
                .with_parameter_name(shown)
                .with_suggestion("the file holds no audio; check that it was written completely"));
        }
        let mut head = [0u8; 12];
        let got = read_up_to(&mut file, &mut head)
            .map_err(|e| Error::io(format!("Cannot read '{shown}': {e}"), shown.clone()))?;
        file.seek(SeekFrom::Start(0))
            .map_err(|e| Error::io(format!("Cannot read '{shown}': {e}"), shown.clone()))?;
        let head = &head[..got];
        let is_riff = head.len() == 12
            && matches!(&head[0..4], b"RIFF" | b"RF64" | b"BW64")
            && &head[8..12] == b"WAVE";
        let source = if is_riff {
            match WavSource::open(file, file_size, &shown, options.allow_truncated)? {
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
        let (format, subtype, sample_rate, channels, frames, frames_exact) = match &source {
            Source::Wav(w) => (
                "WAV".to_string(),
                w.encoding.subtype().to_string(),
                w.sample_rate,
                w.channels,
                Some(w.frames),
                true,
            ),
            Source::Symphonia(s) => (
                s.format.clone(),
                s.subtype.clone(),
                s.sample_rate,
                s.channels,
                s.frames,
                s.frames_exact,
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

/// Refuses what is not a regular file before opening it: opening a FIFO with no writer
/// blocks forever, and a pipe or device has no length to check.
///
/// # Errors
/// The path cannot be read, or names a directory, FIFO, device or socket.
pub fn check_regular_file(path: &Path) -> Result<()> {
    let shown = &path.display().to_string();
    let meta = std::fs::metadata(path).map_err(|e| {
        Error::io(format!("Cannot open input '{shown}': {e}"), shown)
            .with_suggestion("check the path and its permissions")
    })?;
    let kind = meta.file_type();
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
fn file_kind_name(kind: &std::fs::FileType) -> &'static str {
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

// ---------------------------------------------------------------------------------------------
// WAV reading
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq)]
enum WavEncoding {
    U8,
    I16,
    I24,
    I32,
    F32,
    F64,
}

impl WavEncoding {
    fn bytes(self) -> usize {
        match self {
            WavEncoding::U8 => 1,
            WavEncoding::I16 => 2,
            WavEncoding::I24 => 3,
            WavEncoding::I32 | WavEncoding::F32 => 4,
            WavEncoding::F64 => 8,
        }
    }

    fn subtype(self) -> &'static str {
        match self {
            WavEncoding::U8 => "PCM_U8",
            WavEncoding::I16 => "PCM_16",
            WavEncoding::I24 => "PCM_24",
            WavEncoding::I32 => "PCM_32",
            WavEncoding::F32 => "FLOAT",
            WavEncoding::F64 => "DOUBLE",
        }
    }
}

struct WavSource {
    file: File,
    encoding: WavEncoding,
    channels: usize,
    sample_rate: u32,
    block_align: usize,
    frames: u64,
    remaining: u64,
    raw: Vec<u8>,
    shown: String,
    /// Frames the header declared beyond the end of the file (with allow_truncated).
    lost: u64,
    /// What was let pass, for warnings.
    damage: Vec<String>,
}

const WAVE_FORMAT_PCM: u16 = 1;
const WAVE_FORMAT_IEEE_FLOAT: u16 = 3;
const WAVE_FORMAT_EXTENSIBLE: u16 = 0xFFFE;

fn le_u16(b: &[u8]) -> u16 {
    u16::from_le_bytes([b[0], b[1]])
}

fn le_u32(b: &[u8]) -> u32 {
    u32::from_le_bytes([b[0], b[1], b[2], b[3]])
}

fn le_u64(b: &[u8]) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[..8]);
    u64::from_le_bytes(a)
}

impl WavSource {
    /// Parses the chunks up to `data`. `Ok(None)` means a valid WAV whose codec we leave to
    /// symphonia.
    fn open(
        mut file: File,
        file_size: u64,
        shown: &str,
        allow_truncated: bool,
    ) -> Result<Option<Self>> {
        let io = |e: std::io::Error| Error::io(format!("Cannot read '{shown}': {e}"), shown);
        // Header damage: --allow-truncated cannot help, so it is not suggested.
        let corrupt = |what: &str| {
            Error::format(format!("Input '{shown}' is not a valid WAV file: {what}"))
                .with_parameter_name(shown)
                .with_suggestion("the file is truncated or corrupt; re-export it")
        };
        let mut riff = [0u8; 12];
        file.read_exact(&mut riff).map_err(io)?;
        // RF64 and BW64 (EBU Tech 3285/ITU-R BS.2088) keep 64-bit sizes in a 'ds64' chunk.
        let wide = matches!(&riff[0..4], b"RF64" | b"BW64");
        let container = String::from_utf8_lossy(&riff[0..4]).into_owned();
        let mut pos = 12u64;
        let mut fmt: Option<(u16, usize, u32, usize, usize)> = None;
        let mut ds64_data: Option<u64> = None;
        loop {
            let mut header = [0u8; 8];
            let got = read_up_to(&mut file, &mut header).map_err(io)?;
            if got < 8 {
                return Err(corrupt("no 'data' chunk"));
            }
            pos += 8;
            let id = [header[0], header[1], header[2], header[3]];
            let size32 = le_u32(&header[4..8]);
            match &id {
                b"fmt " => {
                    if fmt.is_some() {
                        return Err(corrupt(
                            "two 'fmt ' chunks (which one describes the audio is ambiguous)",
                        ));
                    }
                    if !(16..=1024).contains(&size32) {
                        return Err(corrupt("malformed 'fmt ' chunk"));
                    }
                    let mut body = vec![0u8; size32 as usize];
                    file.read_exact(&mut body)
                        .map_err(|_| corrupt("'fmt ' chunk cut short"))?;
                    let mut tag = le_u16(&body[0..2]);
                    let channels = usize::from(le_u16(&body[2..4]));
                    let rate = le_u32(&body[4..8]);
                    let block_align = usize::from(le_u16(&body[12..14]));
                    let bits = usize::from(le_u16(&body[14..16]));
                    if tag == WAVE_FORMAT_EXTENSIBLE {
                        if body.len() < 26 {
                            return Err(corrupt("'fmt ' extension cut short"));
                        }
                        let valid_bits = usize::from(le_u16(&body[18..20]));
                        if valid_bits > bits {
                            return Err(corrupt(&format!(
                                "{valid_bits} valid bits per sample in a {bits}-bit container"
                            )));
                        }
                        tag = le_u16(&body[24..26]);
                    }
                    fmt = Some((tag, channels, rate, block_align, bits));
                    pos += u64::from(size32) + u64::from(size32 & 1);
                    file.seek(SeekFrom::Start(pos)).map_err(io)?;
                }
                b"ds64" if wide => {
                    if !(16..=1 << 20).contains(&size32) {
                        return Err(corrupt("malformed 'ds64' chunk"));
                    }
                    let mut body = vec![0u8; size32 as usize];
                    file.read_exact(&mut body)
                        .map_err(|_| corrupt("'ds64' chunk cut short"))?;
                    ds64_data = Some(le_u64(&body[8..16]));
                    pos += u64::from(size32) + u64::from(size32 & 1);
                    file.seek(SeekFrom::Start(pos)).map_err(io)?;
                }
                b"data" => {
                    let Some((tag, channels, rate, block_align, bits)) = fmt else {
                        return Err(corrupt("'data' before 'fmt '"));
                    };
                    check_layout(shown, rate, channels)?;
                    let encoding = match (tag, bits) {
                        (WAVE_FORMAT_PCM, 8) => WavEncoding::U8,
                        (WAVE_FORMAT_PCM, 16) => WavEncoding::I16,
                        (WAVE_FORMAT_PCM, 24) => WavEncoding::I24,
                        (WAVE_FORMAT_PCM, 32) => WavEncoding::I32,
                        (WAVE_FORMAT_IEEE_FLOAT, 32) => WavEncoding::F32,
                        (WAVE_FORMAT_IEEE_FLOAT, 64) => WavEncoding::F64,
                        _ => return Ok(None),
                    };
                    if block_align != channels * encoding.bytes() {
                        return Err(corrupt(&format!(
                            "block align {block_align} does not match {channels} channels of {} \
                             bytes",
                            encoding.bytes()
                        )));
                    }
                    let declared = if wide && size32 == u32::MAX {
                        ds64_data.ok_or_else(|| {
                            corrupt(&format!("{container} without a 'ds64' chunk"))
                        })?
                    } else {
                        u64::from(size32)
                    };
                    // A plain RIFF writer that streamed to a pipe leaves u32::MAX: its length
                    // was unknown, so the file's end is the data's end. In RF64/BW64 the ds64
                    // size is the real claim.
                    let length_unknown = !wide && size32 == u32::MAX;
                    let align = block_align as u64;
                    let present = file_size.saturating_sub(pos);
                    let mut lost = 0;
                    let mut damage = Vec::new();
                    let bytes = if declared > present {
                        if !length_unknown {
                            let problem = format!(
                                "its header declares {} frames but the file holds only {}",
                                declared / align,
                                present / align
                            );
                            if !allow_truncated {
                                return Err(Error::format(format!(
                                    "Input '{shown}' is truncated: {problem} (it ends at {})",
                                    at_frame(present / align, rate)
                                ))
                                .with_parameter_name(shown)
                                .with_suggestion(
                                    "re-export the file, or pass --allow-truncated to render \
                                     the frames that are present",
                                ));
                            }
                            lost = declared / align - present / align;
                            damage.push(format!(
                                "Input '{shown}' is truncated: {problem}; {lost} frames are \
                                 missing after {}",
                                at_frame(present / align, rate)
                            ));
                        }
                        present
                    } else {
                        declared
                    };
                    let frames = bytes / align;
                    return Ok(Some(WavSource {
                        file,
                        encoding,
                        channels,
                        sample_rate: rate,
                        block_align,
                        frames,
                        remaining: frames,
                        raw: Vec::new(),
                        shown: shown.to_string(),
                        lost,
                        damage,
                    }));
                }
                _ => {
                    // Skip unknown chunks (LIST, fact, JUNK, bext…), padded to even sizes.
                    let skip = u64::from(size32) + u64::from(size32 & 1);
                    pos += skip;
                    if pos > file_size {
                        return Err(corrupt("a chunk runs past the end of the file"));
                    }
                    file.seek(SeekFrom::Start(pos)).map_err(io)?;
                }
            }
        }
    }

    fn read(&mut self, planar: &mut [Vec<f32>], max: usize) -> Result<(usize, u64)> {
        let n = (max as u64).min(self.remaining) as usize;
        if n == 0 {
            return Ok((0, 0));
        }
        let bytes = n * self.block_align;
        if self.raw.len() < bytes {
            self.raw.resize(bytes, 0);
        }
        let got = read_up_to(&mut self.file, &mut self.raw[..bytes])
            .map_err(|e| Error::io(format!("Cannot read '{}': {e}", self.shown), &self.shown))?;
        let n = got / self.block_align;
        if n == 0 {
            // The file shrank while we read it.
            self.remaining = 0;
            return Err(
                Error::format(format!("Input '{}' ended early while reading", self.shown))
                    .with_parameter_name(&self.shown)
                    .with_suggestion(
                        "another program may be writing the file; try again when it is done",
                    ),
            );
        }
        self.remaining -= n as u64;
        let nonfinite = deinterleave(self.encoding, &self.raw[..n * self.block_align], planar);
        Ok((n, nonfinite))
    }
}

/// Converts interleaved little-endian samples into planar `f32`; returns how many non-finite
/// samples were replaced by 0.
fn deinterleave(encoding: WavEncoding, raw: &[u8], planar: &mut [Vec<f32>]) -> u64 {
    let channels = planar.len();
    let width = encoding.bytes();
    let frame_bytes = width * channels;
    // One channel at a time keeps each output stream sequential.
    let mut nonfinite = 0u64;
    for (ch, out) in planar.iter_mut().enumerate() {
        let frames = raw.chunks_exact(frame_bytes);
        let offset = ch * width;
        match encoding {
            WavEncoding::U8 => {
                for (o, f) in out.iter_mut().zip(frames) {
                    *o = (f32::from(f[offset]) - 128.0) * (1.0 / 128.0);
                }
            }
            WavEncoding::I16 => {
                for (o, f) in out.iter_mut().zip(frames) {
                    let s = i16::from_le_bytes([f[offset], f[offset + 1]]);
                    *o = f32::from(s) * (1.0 / 32768.0);
                }
            }
            WavEncoding::I24 => {
                for (o, f) in out.iter_mut().zip(frames) {
                    let s = i32::from_le_bytes([0, f[offset], f[offset + 1], f[offset + 2]]) >> 8;
                    *o = s as f32 * (1.0 / 8_388_608.0);
                }
            }
            WavEncoding::I32 => {
                for (o, f) in out.iter_mut().zip(frames) {
                    let s = i32::from_le_bytes([
                        f[offset],
                        f[offset + 1],
                        f[offset + 2],
                        f[offset + 3],
                    ]);
                    *o = s as f32 * (1.0 / 2_147_483_648.0);
                }
            }
            WavEncoding::F32 => {
                let mut bad = 0u64;
                for (o, f) in out.iter_mut().zip(frames) {
                    let s = f32::from_le_bytes([
                        f[offset],
                        f[offset + 1],
                        f[offset + 2],
                        f[offset + 3],
                    ]);
                    let ok = s.is_finite();
                    bad += u64::from(!ok);
                    *o = if ok { s } else { 0.0 };
                }
                nonfinite += bad;
            }
            WavEncoding::F64 => {
                let mut bad = 0u64;
                for (o, f) in out.iter_mut().zip(frames) {
                    let mut b = [0u8; 8];
                    b.copy_from_slice(&f[offset..offset + 8]);
                    let s = f64::from_le_bytes(b) as f32;
                    let ok = s.is_finite();
                    bad += u64::from(!ok);
                    *o = if ok { s } else { 0.0 };
                }
                nonfinite += bad;
            }
        }
    }
    nonfinite
}

// ---------------------------------------------------------------------------------------------
// Everything else: symphonia
// ---------------------------------------------------------------------------------------------

struct SymphoniaSource {
    format_reader: Box<dyn symphonia::core::formats::FormatReader>,
    decoder: Box<dyn symphonia::core::codecs::audio::AudioDecoder>,
    track_id: u32,
    format: String,
    subtype: String,
    sample_rate: u32,
    channels: usize,
    frames: Option<u64>,
    /// Whether `frames` is exact (not a bitrate estimate), so the end checks it.
    frames_exact: bool,
    /// Decoded frames not yet delivered, planar.
    pending: Vec<Vec<f32>>,
    pending_pos: usize,
    done: bool,
    shown: String,
    options: ReadOptions,
    /// Frames decoded (or stood in for by silence) so far: the position of the next packet.
    decoded: u64,
    /// Frames missing: damaged packets read as silence, or the end cut short.
    lost: u64,
    /// Whether packet timestamps count frames from the start (time base 1/rate), so a jump
    /// in them shows data the demuxer skipped.
    pts_in_frames: bool,
    /// False for an Ogg stream whose last page is not marked as its end: the file was cut.
    ended_properly: bool,
    /// A packet read but not yet decoded (silence for a gap before it goes first).
    held: Option<symphonia::core::packet::Packet>,
    /// What was let pass, for warnings.
    damage: Vec<String>,
}

/// Whether an Ogg file's last page carries the end-of-stream flag, as every complete Ogg
/// stream's does (RFC 3533). A file cut short ends on a page without it.
fn ogg_has_end_page(path: &Path) -> bool {
    const TAIL: u64 = 1 << 16;
    let tail = File::open(path).and_then(|mut f| {
        let len = f.seek(SeekFrom::End(0))?;
        f.seek(SeekFrom::Start(len.saturating_sub(TAIL)))?;
        let mut buf = Vec::new();
        f.read_to_end(&mut buf)?;
        Ok(buf)
    });
    let Ok(tail) = tail else {
        // Unreadable now: decoding will say so.
        return true;
    };
    // The last page header: "OggS", version 0, the header-type flags (0x04: last page), and
    // at byte 26 the segment count, whose table gives the body's length: the page must be
    // whole.
    let Some(start) = tail
        .windows(5)
        .rposition(|w| &w[..4] == b"OggS" && w[4] == 0)
    else {
        return false;
    };
    let page = &tail[start..];
    let Some(&segments) = page.get(26) else {
        return false;
    };
    let table_end = 27 + usize::from(segments);
    let Some(table) = page.get(27..table_end) else {
        return false;
    };
    let body: usize = table.iter().map(|&b| usize::from(b)).sum();
    page[5] & 0x04 != 0 && page.len() >= table_end + body
}

/// Whether an MP3 file states its length exactly: a Xing/Info (LAME) or VBRI header in its
/// first frame. Without one, the length is an estimate from the bitrate and file size.
fn mp3_length_is_stated(path: &Path) -> bool {
    let mut head = vec![0u8; 1 << 16];
    let got = File::open(path)
        .and_then(|mut f| read_up_to(&mut f, &mut head))
        .unwrap_or(0);
    let head = &head[..got];
    // Skip an ID3v2 tag (its size is four 7-bit bytes, plus a footer when flagged).
    let mut start = 0usize;
    if head.len() >= 10 && head.starts_with(b"ID3") {
        let size = head[6..10]
            .iter()
            .fold(0usize, |acc, &b| (acc << 7) | usize::from(b & 0x7F));
        start = 10 + size + if head[5] & 0x10 != 0 { 10 } else { 0 };
    }
    let Some(sync) = head.get(start..).and_then(|rest| {
        rest.windows(2)
            .position(|w| w[0] == 0xFF && w[1] & 0xE0 == 0xE0)
    }) else {
        return false;
    };
    // The tag sits after the side information: within the first 200 bytes of the frame.
    let frame = &head[start + sync..head.len().min(start + sync + 200)];
    frame
        .windows(4)
        .any(|w| w == b"Xing" || w == b"Info" || w == b"VBRI")
}

impl SymphoniaSource {
    fn open(path: &Path, shown: &str, head: &[u8], options: ReadOptions) -> Result<Self> {
        use symphonia::core::codecs::audio::AudioDecoderOptions;
        use symphonia::core::formats::probe::Hint;
        use symphonia::core::formats::{FormatOptions, TrackType};
        use symphonia::core::io::MediaSourceStream;
        use symphonia::core::meta::MetadataOptions;

        let detected = sniff_format(head);
        let not_audio = |why: String| {
            Error::format(format!(
                "Input '{shown}' is not audio rtfx can decode (detected: {detected}): {why}"
            ))
            .with_parameter_name(shown)
            .with_suggestion(
                "supported inputs are WAV, FLAC, OGG/Vorbis, MP3 and AIFF; convert the file first \
                 (e.g. with ffmpeg)",
            )
        };
        let file = File::open(path)
            .map_err(|e| Error::io(format!("Cannot open input '{shown}': {e}"), shown))?;
        let mss = MediaSourceStream::new(Box::new(file), Default::default());
        let mut hint = Hint::new();
        if let Some(ext) = path.extension().and_then(|e| e.to_str()) {
            hint.with_extension(ext);
        }
        let format_reader = symphonia::default::get_probe()
            .probe(
                &hint,
                mss,
                FormatOptions::default(),
                MetadataOptions::default(),
            )
            .map_err(|e| match (&e, detected) {
                // A format rtfx reads whose contents do not hold together: damage, not a
                // wrong format.
                (
                    symphonia::core::errors::Error::DecodeError(_)
                    | symphonia::core::errors::Error::IoError(_),
                    "FLAC" | "OGG" | "MP3" | "AIFF" | "RIFF (WAV)",
                ) => Error::format(format!(
                    "Input '{shown}' looks like {detected} but is damaged: {e}"
                ))
                .with_parameter_name(shown)
                .with_suggestion("the file is corrupt or truncated; re-export it"),
                _ => not_audio(e.to_string()),
            })?;
        let track = format_reader
            .default_track(TrackType::Audio)
            .ok_or_else(|| not_audio("no audio track".into()))?;
        let track_id = track.id;
        let frames = track.num_frames;
        let time_base = track.time_base;
        let params = track
            .codec_params
            .as_ref()
            .and_then(|p| p.audio())
            .ok_or_else(|| not_audio("no audio codec parameters".into()))?
            .clone();
        let decoder_options = AudioDecoderOptions::default().verify(options.verify);
        let decoder = symphonia::default::get_codecs()
            .make_audio_decoder(&params, &decoder_options)
            .map_err(|e| not_audio(format!("unsupported codec ({e})")))?;
        let sample_rate = params.sample_rate.unwrap_or(0);
        let channels = params.channels.as_ref().map_or(0, |c| c.count());
        let format = match detected {
            "FLAC" => "FLAC",
            "OGG" => "OGG",
            "MP3" => "MP3",
            "AIFF" => "AIFF",
            "RIFF (WAV)" => "WAV",
            _ => "audio",
        }
        .to_string();
        let codec_name = symphonia::default::get_codecs()
            .get_audio_decoder(params.codec)
            .map(|d| d.codec.info.short_name.to_uppercase())
            .unwrap_or_else(|| "UNKNOWN".into());
        let subtype = match (params.bits_per_sample, format.as_str()) {
            (Some(bits), "FLAC" | "AIFF" | "WAV") => format!("PCM_{bits}"),
            _ => codec_name,
        };
        let frames_exact = frames.is_some() && (format != "MP3" || mp3_length_is_stated(path));
        let ended_properly = format != "OGG" || ogg_has_end_page(path);
        // FLAC frame headers number their samples; other formats' timestamps carry encoder
        // delay and trimming, so only FLAC's are trusted to reveal skipped data.
        let pts_in_frames = format == "FLAC"
            && time_base.is_some_and(|tb| tb.numer.get() == 1 && tb.denom.get() == sample_rate);
        Ok(SymphoniaSource {
            format_reader,
            decoder,
            track_id,
            format,
            subtype,
            sample_rate,
            channels,
            frames,
            frames_exact,
            pending: vec![Vec::new(); channels],
            pending_pos: 0,
            done: false,
            shown: shown.to_string(),
            options,
            decoded: 0,
            lost: 0,
            pts_in_frames,
            ended_properly,
            held: None,
            damage: Vec::new(),
        })
    }

    /// A damaged stretch at the current position: an error, or (with allow_truncated) a note
    /// and `frames` counted as lost.
    fn damaged(&mut self, problem: &str, frames: u64) -> Result<()> {
        self.fault("damaged", problem, frames)
    }

    /// Like [`damaged`](Self::damaged), with the word for what is wrong ("damaged",
    /// "truncated").
    fn fault(&mut self, what: &str, problem: &str, frames: u64) -> Result<()> {
        let at = at_frame(self.decoded, self.sample_rate);
        if !self.options.allow_truncated {
            return Err(Error::format(format!(
                "Input '{}' is {what} at {at}: {problem}",
                self.shown
            ))
            .with_parameter_name(&self.shown)
            .with_suggestion(
                "re-export or repair the file, or pass --allow-truncated to render what decodes \
                 (damaged packets become silence and are counted)",
            ));
        }
        self.lost += frames;
        self.damage.push(format!(
            "Input '{}' is {what} at {at}: {problem}; {frames} frames lost",
            self.shown
        ));
        Ok(())
    }

    /// `len` frames of silence standing in for damaged audio, as the next pending block.
    fn silence(&mut self, len: usize) {
        for p in &mut self.pending {
            p.clear();
            p.resize(len, 0.0);
        }
        self.pending_pos = 0;
        self.decoded += len as u64;
    }

    /// The checks at the end of the stream: the length the header declares, and the
    /// checksum.
    fn finish(&mut self) -> Result<()> {
        if self.frames_exact
            && let Some(declared) = self.frames
            && self.decoded < declared
        {
            let missing = declared - self.decoded;
            let problem = format!(
                "its header declares {declared} frames ({:.3} s), so {missing} frames are \
                 missing",
                declared as f64 / f64::from(self.sample_rate.max(1)),
            );
            self.fault("truncated", &problem, missing)?;
        }
        if !self.ended_properly {
            self.ended_properly = true;
            self.fault(
                "truncated",
                "its last Ogg page does not end the stream (how much is missing is unknown)",
                0,
            )?;
        }
        // With frames already counted lost, a checksum mismatch says nothing new.
        if self.options.verify && self.decoder.finalize().verify_ok == Some(false) && self.lost == 0
        {
            let problem = "the decoded audio does not match the MD5 checksum in its header";
            if !self.options.allow_truncated {
                return Err(Error::format(format!("Input '{}': {problem}", self.shown))
                    .with_parameter_name(&self.shown)
                    .with_suggestion(
                        "the file is corrupt; re-export it, or pass --no-verify to skip the \
                         check (or --allow-truncated to render it anyway)",
                    ));
            }
            self.damage
                .push(format!("Input '{}': {problem}", self.shown));
        }
        Ok(())
    }

    /// Decodes the next packet into `pending`; false at the end of the stream (after its
    /// checks).
    fn decode_next(&mut self) -> Result<bool> {
        use symphonia::core::errors::Error as SymErr;
        loop {
            let next = match self.held.take() {
                Some(p) => Ok(Some(p)),
                None => self.format_reader.next_packet(),
            };
            let packet = match next {
                Ok(Some(p)) => p,
                Ok(None) => {
                    self.finish()?;
                    return Ok(false);
                }
                // The file ends inside a packet: the length check names what is missing.
                Err(SymErr::IoError(e)) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
                    self.finish()?;
                    return Ok(false);
                }
                Err(e) => {
                    let problem = format!("the container cannot be read ({e})");
                    // Nothing after this point can be located: stop here either way.
                    self.damaged(&problem, 0)?;
                    self.finish()?;
                    return Ok(false);
                }
            };
            if packet.track_id != self.track_id {
                continue;
            }
            // A packet that starts later than the audio so far: the demuxer skipped damaged
            // data (FLAC frames that fail their CRC, lost Ogg pages) to find it.
            if self.pts_in_frames
                && let Ok(start) = u64::try_from(packet.pts.get())
                && start > self.decoded
            {
                let gap = start - self.decoded;
                self.damaged(
                    &format!("{gap} frames are unreadable (damaged data was skipped)"),
                    gap,
                )?;
                let len = usize::try_from(gap).unwrap_or(usize::MAX).min(1 << 20);
                self.silence(len);
                // The packet itself comes next time; the gap may take several calls.
                self.held = Some(packet);
                return Ok(true);
            }
            let decoded = match self.decoder.decode(&packet) {
                Ok(d) => d,
                Err(SymErr::DecodeError(why)) => {
                    // The packet's stated duration stands in as silence, so what follows
                    // keeps its time.
                    let frames = packet.dur.get();
                    self.damaged(&format!("a packet does not decode ({why})"), frames)?;
                    if frames == 0 {
                        continue;
                    }
                    let len = usize::try_from(frames).unwrap_or(usize::MAX).min(1 << 20);
                    self.silence(len);
                    return Ok(true);
                }
                Err(e) => {
                    return Err(
                        Error::format(format!("Cannot decode '{}': {e}", self.shown))
                            .with_parameter_name(&self.shown),
                    );
                }
            };
            let frames = decoded.frames();
            if decoded.num_planes() != self.channels {
                return Err(Error::format(format!(
                    "Input '{}' changes its channel count mid-stream",
                    self.shown
                ))
                .with_parameter_name(&self.shown));
            }
            for p in &mut self.pending {
                p.resize(frames, 0.0);
            }
            decoded.copy_to_slice_planar::<f32, _>(&mut self.pending);
            self.pending_pos = 0;
            self.decoded += frames as u64;
            if frames > 0 {
                return Ok(true);
            }
        }
    }

    fn read(&mut self, planar: &mut [Vec<f32>], max: usize) -> Result<(usize, u64)> {
        let mut n = 0;
        let mut nonfinite = 0u64;
        while n < max && !self.done {
            let have = self.pending.first().map_or(0, Vec::len) - self.pending_pos;
            if have == 0 {
                if !self.decode_next()? {
                    self.done = true;
                }
                continue;
            }
            let take = have.min(max - n);
            for (out, src) in planar.iter_mut().zip(&self.pending) {
                for (o, &s) in out[n..n + take]
                    .iter_mut()
                    .zip(&src[self.pending_pos..self.pending_pos + take])
                {
                    let ok = s.is_finite();
                    nonfinite += u64::from(!ok);
                    *o = if ok { s } else { 0.0 };
                }
            }
            self.pending_pos += take;
            n += take;
        }
        Ok((n, nonfinite))
    }
}

// ---------------------------------------------------------------------------------------------
// Writing
// ---------------------------------------------------------------------------------------------

/// Output container, chosen from the output file's extension.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutputFormat {
    /// RIFF WAV.
    Wav,
    /// FLAC (16 or 24 bit).
    Flac,
}

impl OutputFormat {
    /// The format for `path`'s extension (case-insensitive), or an error naming the
    /// extensions rtfx writes.
    ///
    /// ```
    /// use rtfx::offline::audio_io::OutputFormat;
    /// assert_eq!(OutputFormat::from_path("a/b.WAV".as_ref()).unwrap(), OutputFormat::Wav);
    /// assert!(OutputFormat::from_path("song.mp3".as_ref()).is_err());
    /// ```
    pub fn from_path(path: &Path) -> Result<Self> {
        let ext = path
            .extension()
            .and_then(|e| e.to_str())
            .map(str::to_ascii_lowercase)
            .unwrap_or_default();
        match ext.as_str() {
            "wav" | "wave" => Ok(OutputFormat::Wav),
            "flac" => Ok(OutputFormat::Flac),
            _ => Err(Error::invalid_parameter(
                format!(
                    "Cannot write output '{}': unsupported extension '.{ext}'",
                    path.display()
                ),
                "output",
                path.display(),
            )
            .with_expected(".wav or .flac")
            .with_suggestion("name the output .wav or .flac (rtfx never writes WAV data under another extension)")),
        }
    }

    /// Checks that this format holds `subtype` (FLAC: 16 or 24 bit), before anything is
    /// rendered.
    ///
    /// # Errors
    /// The subtype, what the format holds, and the fix.
    pub fn check_subtype(self, subtype: Subtype) -> Result<()> {
        if self == OutputFormat::Flac && !matches!(subtype, Subtype::Pcm16 | Subtype::Pcm24) {
            return Err(Error::invalid_parameter(
                "FLAC holds 16- or 24-bit integer samples only",
                "subtype",
                subtype.name().to_ascii_lowercase(),
            )
            .with_expected("pcm16 or pcm24")
            .with_suggestion("use --subtype pcm24, or write a .wav for float output"));
        }
        Ok(())
    }

    /// Subtype used when none is asked for: 32-bit float for WAV (as torchfx), 24-bit for
    /// FLAC (FLAC holds integers only).
    pub fn default_subtype(self) -> Subtype {
        match self {
            OutputFormat::Wav => Subtype::Float,
            OutputFormat::Flac => Subtype::Pcm24,
        }
    }
}

impl fmt::Display for OutputFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            OutputFormat::Wav => "WAV",
            OutputFormat::Flac => "FLAC",
        })
    }
}

/// Sample encoding of the output.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Subtype {
    /// 16-bit integer.
    Pcm16,
    /// 24-bit integer.
    Pcm24,
    /// 32-bit integer.
    Pcm32,
    /// 32-bit IEEE float.
    Float,
}

impl Subtype {
    /// Parses "pcm16", "pcm24", "pcm32" or "float" (also "PCM_16" and friends).
    pub fn parse(text: &str) -> Result<Self> {
        match text.to_ascii_lowercase().replace('_', "").as_str() {
            "pcm16" | "16" => Ok(Subtype::Pcm16),
            "pcm24" | "24" => Ok(Subtype::Pcm24),
            "pcm32" | "32" => Ok(Subtype::Pcm32),
            "float" | "float32" | "f32" => Ok(Subtype::Float),
            _ => Err(
                Error::invalid_parameter("Unknown output subtype", "subtype", text)
                    .with_expected("pcm16, pcm24, pcm32 or float"),
            ),
        }
    }

    /// Bits per sample.
    pub fn bits(self) -> u16 {
        match self {
            Subtype::Pcm16 => 16,
            Subtype::Pcm24 => 24,
            Subtype::Pcm32 | Subtype::Float => 32,
        }
    }

    /// libsndfile-style name ("PCM_16", "FLOAT").
    pub fn name(self) -> &'static str {
        match self {
            Subtype::Pcm16 => "PCM_16",
            Subtype::Pcm24 => "PCM_24",
            Subtype::Pcm32 => "PCM_32",
            Subtype::Float => "FLOAT",
        }
    }
}

/// How to write the output.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct WriteOptions {
    /// Container.
    pub format: OutputFormat,
    /// Sample encoding.
    pub subtype: Subtype,
    /// TPDF dither before integer quantisation (on by default, as sox).
    pub dither: bool,
    /// Seed of the dither noise: the same seed gives the same bytes.
    pub dither_seed: u64,
}

impl WriteOptions {
    /// Options with dither on and the default seed.
    pub fn new(format: OutputFormat, subtype: Subtype) -> Self {
        WriteOptions {
            format,
            subtype,
            dither: true,
            dither_seed: DEFAULT_DITHER_SEED,
        }
    }
}

/// Seed of the dither noise unless one is given.
pub const DEFAULT_DITHER_SEED: u64 = 0x005E_ED0F_D17E_u64;

/// What a finished write did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WriteStats {
    /// Frames written.
    pub frames: u64,
    /// Samples clamped to the integer range (0 for float output).
    pub clipped: u64,
}

/// Turns planar `f32` into integers: scale, TPDF dither, round, clamp (counting clips).
struct Quantizer {
    scale: f32,
    min: f32,
    max: f32,
    dither: bool,
    rng: Noise,
    clipped: u64,
}

impl Quantizer {
    fn new(bits: u16, dither: bool, seed: u64) -> Self {
        let full = (1u64 << (bits - 1)) as f32;
        Quantizer {
            scale: full,
            min: -full,
            // Largest representable value; for 32 bits f32 rounds 2^31-1 up, so stay below.
            max: if bits >= 32 {
                2_147_483_520.0
            } else {
                full - 1.0
            },
            dither,
            rng: Noise::new(seed),
            clipped: 0,
        }
    }

    /// Scales, dithers and rounds one sample, clamping at the rails. `clipped` counts the
    /// samples that clip without dither (the signal is beyond the largest code); dither that
    /// merely pushes a sample at the rails past them is clamped without counting, so the
    /// count is the same with and without dither.
    #[inline]
    fn quantize(&mut self, x: f32) -> i32 {
        let scaled = x * self.scale;
        let mut v = scaled;
        if self.dither {
            // Sum of two uniforms: triangular noise of ±1 LSB peak, mean 0.
            v += self.rng.unit() - self.rng.unit();
        }
        let r = v.round();
        if r > self.max {
            self.clipped += u64::from(scaled.round() > self.max);
            self.max as i32
        } else if r < self.min {
            self.clipped += u64::from(scaled.round() < self.min);
            self.min as i32
        } else {
            r as i32
        }
    }
}

/// Writes planar `f32` blocks to a WAV or FLAC stream.
pub struct AudioWriter<'a, W: Write + Seek> {
    out: &'a mut W,
    options: WriteOptions,
    sample_rate: u32,
    channels: usize,
    frames: u64,
    bytes: Vec<u8>,
    ints: Vec<i32>,
    quantizer: Quantizer,
    flac: Option<FlacState>,
}

struct FlacState {
    config: flacenc::error::Verified<flacenc::config::Encoder>,
    stream_info: flacenc::component::StreamInfo,
    framebuf: flacenc::source::FrameBuf,
    context: flacenc::source::Context,
    block: usize,
    channels: usize,
    pending: Vec<i32>,
    sink: flacenc::bitsink::MemSink<u8>,
}

/// FLAC block size in frames (the reference encoder's default).
const FLAC_BLOCK: usize = 4096;
/// Largest WAV data chunk.
const WAV_MAX_DATA: u64 = u32::MAX as u64 - 64;

impl<'a, W: Write + Seek> AudioWriter<'a, W> {
    /// Starts a stream of `channels` channels at `sample_rate`. `expected_frames`, when
    /// known, lets a WAV that could not hold the data be refused before anything is written.
    pub fn new(
        out: &'a mut W,
        options: WriteOptions,
        sample_rate: u32,
        channels: usize,
        expected_frames: Option<u64>,
    ) -> Result<Self> {
        let bits = options.subtype.bits();
        let mut flac = None;
        match options.format {
            OutputFormat::Wav => {
                if let Some(frames) = expected_frames {
                    let bytes = frames.saturating_mul(channels as u64 * u64::from(bits / 8));
                    if bytes > WAV_MAX_DATA {
                        return Err(wav_too_big(bytes));
                    }
                }
            }
            OutputFormat::Flac => {
                options.format.check_subtype(options.subtype)?;
                if channels > 8 {
                    return Err(Error::invalid_range(
                        "FLAC holds at most 8 channels",
                        "channels",
                        channels,
                    )
                    .with_suggestion("write a .wav instead"));
                }
                flac = Some(FlacState::new(sample_rate, channels, usize::from(bits))?);
            }
        }
        let mut writer = AudioWriter {
            out,
            options,
            sample_rate,
            channels,
            frames: 0,
            bytes: Vec::new(),
            ints: Vec::new(),
            quantizer: Quantizer::new(bits.min(32), options.dither, options.dither_seed),
            flac,
        };
        writer.write_header()?;
        Ok(writer)
    }

    fn io(e: std::io::Error) -> Error {
        Error::io(format!("Cannot write output: {e}"), "output")
            .with_suggestion("check free disk space and permissions of the output directory")
    }

    fn write_header(&mut self) -> Result<()> {
        let header = match &self.flac {
            Some(f) => f.header_bytes()?,
            None => wav_header(
                self.options.subtype,
                self.channels,
                self.sample_rate,
                self.frames,
            ),
        };
        self.out.seek(SeekFrom::Start(0)).map_err(Self::io)?;
        self.out.write_all(&header).map_err(Self::io)
    }

    /// Appends one planar block (one slice per channel, equal lengths).
    pub fn write(&mut self, planar: &[&[f32]]) -> Result<()> {
        let n = planar.first().map_or(0, |c| c.len());
        if planar.len() != self.channels || planar.iter().any(|c| c.len() != n) {
            return Err(Error::invalid_range(
                "Block shape differs from the output's channel count",
                "planar",
                planar.len(),
            )
            .with_expected(format!("{} channels of equal length", self.channels)));
        }
        if n == 0 {
            return Ok(());
        }
        if self.flac.is_some() {
            self.write_flac(planar, n)?;
        } else {
            self.write_wav(planar, n)?;
        }
        self.frames += n as u64;
        Ok(())
    }

    fn write_wav(&mut self, planar: &[&[f32]], n: usize) -> Result<()> {
        let width = usize::from(self.options.subtype.bits() / 8);
        let total = (self.frames + n as u64) * (self.channels * width) as u64;
        if total > WAV_MAX_DATA {
            return Err(wav_too_big(total));
        }
        self.bytes.clear();
        self.bytes.reserve(n * self.channels * width);
        match self.options.subtype {
            Subtype::Float => {
                for i in 0..n {
                    for c in planar {
                        self.bytes.extend_from_slice(&c[i].to_le_bytes());
                    }
                }
            }
            Subtype::Pcm16 => {
                for i in 0..n {
                    for c in planar {
                        let q = self.quantizer.quantize(c[i]) as i16;
                        self.bytes.extend_from_slice(&q.to_le_bytes());
                    }
                }
            }
            Subtype::Pcm24 => {
                for i in 0..n {
                    for c in planar {
                        let q = self.quantizer.quantize(c[i]);
                        self.bytes.extend_from_slice(&q.to_le_bytes()[..3]);
                    }
                }
            }
            Subtype::Pcm32 => {
                for i in 0..n {
                    for c in planar {
                        let q = self.quantizer.quantize(c[i]);
                        self.bytes.extend_from_slice(&q.to_le_bytes());
                    }
                }
            }
        }
        self.out.write_all(&self.bytes).map_err(Self::io)
    }

    fn write_flac(&mut self, planar: &[&[f32]], n: usize) -> Result<()> {
        let Some(flac) = self.flac.as_mut() else {
            return Ok(());
        };
        let mut i = 0;
        while i < n {
            let take = (flac.block - flac.filled()).min(n - i);
            self.ints.clear();
            for k in i..i + take {
                for c in planar {
                    self.ints.push(self.quantizer.quantize(c[k]));
                }
            }
            flac.push(&self.ints);
            if flac.filled() == flac.block {
                flac.encode_block(self.out)?;
            }
            i += take;
        }
        Ok(())
    }

    /// Flushes everything, writes the final header and returns what was written.
    pub fn finish(mut self) -> Result<WriteStats> {
        if let Some(flac) = self.flac.as_mut() {
            if flac.filled() > 0 {
                flac.encode_block(self.out)?;
            }
            flac.finalize();
        } else if self.frames * (self.channels as u64) * u64::from(self.options.subtype.bits() / 8)
            % 2
            == 1
        {
            // RIFF chunks are padded to an even size.
            self.out.write_all(&[0]).map_err(Self::io)?;
        }
        self.write_header()?;
        self.out.seek(SeekFrom::End(0)).map_err(Self::io)?;
        self.out.flush().map_err(Self::io)?;
        Ok(WriteStats {
            frames: self.frames,
            clipped: self.quantizer.clipped,
        })
    }
}

fn wav_too_big(bytes: u64) -> Error {
    Error::invalid_range(
        "The output is too large for a WAV file (4 GiB limit)",
        "output_bytes",
        bytes,
    )
    .with_suggestion("write FLAC (.flac), use a smaller subtype such as pcm16, or split the input")
}

/// The WAV header for `frames` frames: a 16-byte `fmt ` for PCM, 18 bytes plus a `fact`
/// chunk for float, `WAVE_FORMAT_EXTENSIBLE` beyond two channels.
fn wav_header(subtype: Subtype, channels: usize, sample_rate: u32, frames: u64) -> Vec<u8> {
    let bits = subtype.bits();
    let width = u32::from(bits / 8);
    let block_align = channels as u32 * width;
    let data = (frames * u64::from(block_align)).min(u64::from(u32::MAX)) as u32;
    let float = subtype == Subtype::Float;
    let tag = if float {
        WAVE_FORMAT_IEEE_FLOAT
    } else {
        WAVE_FORMAT_PCM
    };
    let extensible = channels > 2;
    let fmt_size: u32 = match (extensible, float) {
        (true, _) => 40,
        (false, true) => 18,
        (false, false) => 16,
    };
    let fact_size: u32 = if float { 12 } else { 0 };
    let mut h = Vec::with_capacity(96);
    h.extend_from_slice(b"RIFF");
    let riff = 4 + (8 + fmt_size) + fact_size + 8 + data + (data & 1);
    h.extend_from_slice(&riff.to_le_bytes());
    h.extend_from_slice(b"WAVE");
    h.extend_from_slice(b"fmt ");
    h.extend_from_slice(&fmt_size.to_le_bytes());
    h.extend_from_slice(
        &(if extensible {
            WAVE_FORMAT_EXTENSIBLE
        } else {
            tag
        })
        .to_le_bytes(),
    );
    h.extend_from_slice(&(channels as u16).to_le_bytes());
    h.extend_from_slice(&sample_rate.to_le_bytes());
    h.extend_from_slice(&(sample_rate * block_align).to_le_bytes());
    h.extend_from_slice(&(block_align as u16).to_le_bytes());
    h.extend_from_slice(&bits.to_le_bytes());
    if extensible {
        h.extend_from_slice(&22u16.to_le_bytes());
        h.extend_from_slice(&bits.to_le_bytes());
        // Channel mask: the first `channels` speaker positions.
        let mask: u32 = if channels >= 32 {
            0
        } else {
            (1u32 << channels) - 1
        };
        h.extend_from_slice(&mask.to_le_bytes());
        h.extend_from_slice(&tag.to_le_bytes());
        h.extend_from_slice(&[
            0x00, 0x00, 0x00, 0x00, 0x10, 0x00, 0x80, 0x00, 0x00, 0xAA, 0x00, 0x38, 0x9B, 0x71,
        ]);
    } else if float {
        h.extend_from_slice(&0u16.to_le_bytes());
    }
    if float {
        h.extend_from_slice(b"fact");
        h.extend_from_slice(&4u32.to_le_bytes());
        h.extend_from_slice(&(frames.min(u64::from(u32::MAX)) as u32).to_le_bytes());
    }
    h.extend_from_slice(b"data");
    h.extend_from_slice(&data.to_le_bytes());
    h
}

impl FlacState {
    fn new(sample_rate: u32, channels: usize, bits: usize) -> Result<Self> {
        use flacenc::error::Verify;
        let fail = |what: String| {
            Error::format(format!("Cannot start the FLAC encoder: {what}"))
                .with_suggestion("write a .wav instead")
        };
        let mut config = flacenc::config::Encoder::default();
        // flacenc 0.5.1's fixed-predictor search blows up on some signals (hundreds of MB
        // per minute of pink noise, and bloated frames); LPC alone compresses better anyway.
        config.subframe_coding.use_fixed = false;
        let config = config
            .into_verified()
            .map_err(|(_, e)| fail(e.to_string()))?;
        let mut stream_info =
            flacenc::component::StreamInfo::new(sample_rate as usize, channels, bits)
                .map_err(|e| fail(e.to_string()))?;
        stream_info
            .set_block_sizes(FLAC_BLOCK, FLAC_BLOCK)
            .map_err(|e| fail(e.to_string()))?;
        let framebuf = flacenc::source::FrameBuf::with_size(channels, FLAC_BLOCK)
            .map_err(|e| fail(e.to_string()))?;
        Ok(FlacState {
            config,
            stream_info,
            framebuf,
            context: flacenc::source::Context::new(bits, channels),
            block: FLAC_BLOCK,
            channels,
            pending: Vec::with_capacity(FLAC_BLOCK * channels),
            sink: flacenc::bitsink::MemSink::new(),
        })
    }

    /// Frames gathered for the next FLAC frame.
    fn filled(&self) -> usize {
        self.pending.len() / self.channels
    }

    fn push(&mut self, interleaved: &[i32]) {
        self.pending.extend_from_slice(interleaved);
    }

    /// Encodes the gathered frames as one FLAC frame and writes it.
    fn encode_block<W: Write>(&mut self, out: &mut W) -> Result<()> {
        use flacenc::component::BitRepr;
        use flacenc::source::Fill;
        let fail = |e: String| Error::format(format!("FLAC encoding failed: {e}"));
        // Both fills overwrite: the frame buffer from its start, the context adds one frame.
        self.framebuf
            .fill_interleaved(&self.pending)
            .map_err(|e| fail(e.to_string()))?;
        self.context
            .fill_interleaved(&self.pending)
            .map_err(|e| fail(e.to_string()))?;
        self.pending.clear();
        let number = self.context.current_frame_number().unwrap_or(0);
        let frame = flacenc::encode_fixed_size_frame(
            &self.config,
            &self.framebuf,
            number,
            &self.stream_info,
        )
        .map_err(|e| fail(e.to_string()))?;
        self.stream_info.update_frame_info(&frame);
        self.sink.clear();
        frame
            .write(&mut self.sink)
            .map_err(|e| fail(e.to_string()))?;
        out.write_all(self.sink.as_slice()).map_err(|e| {
            Error::io(format!("Cannot write output: {e}"), "output")
                .with_suggestion("check free disk space and permissions of the output directory")
        })
    }

    fn finalize(&mut self) {
        // Fixed-block streams declare the block size as both minimum and maximum; the last,
        // shorter block does not count (as the reference encoder writes it).
        let _ = self.stream_info.set_block_sizes(FLAC_BLOCK, FLAC_BLOCK);
        self.stream_info.set_md5_digest(&self.context.md5_digest());
        self.stream_info
            .set_total_samples(self.context.total_samples());
    }

    fn header_bytes(&self) -> Result<Vec<u8>> {
        use flacenc::component::BitRepr;
        let stream = flacenc::component::Stream::with_stream_info(self.stream_info.clone());
        let mut sink = flacenc::bitsink::MemSink::<u8>::new();
        stream
            .write(&mut sink)
            .map_err(|e| Error::format(format!("FLAC header failed: {e}")))?;
        Ok(sink.as_slice().to_vec())
    }
}

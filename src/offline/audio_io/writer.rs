//! [`AudioWriter`]: planar `f32` blocks to a WAV or FLAC stream.

use std::io::{Seek, SeekFrom, Write};

use super::Tags;
use super::dither::Quantizer;
use super::flac::FlacState;
use super::format::{OutputFormat, Subtype};
use super::libflac::LibFlacEncoder;
use super::lossy::{LossyQuality, Mp3Encoder, OpusEncoder, VorbisEncoder};
use super::wav_reader::{WAVE_FORMAT_EXTENSIBLE, WAVE_FORMAT_IEEE_FLOAT, WAVE_FORMAT_PCM};
use crate::error::{Error, Result};

/// How to write the output.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct WriteOptions {
    /// Container.
    pub format: OutputFormat,
    /// Sample encoding.
    pub subtype: Subtype,
    /// TPDF dither before quantising to fewer than 24 bits (on by default; 24- and 32-bit
    /// output is rounded, as sox does).
    pub dither: bool,
    /// Seed of the dither noise: the same seed gives the same bytes.
    pub dither_seed: u64,
    /// A lossy encoder's quality or bitrate (ignored by the lossless formats).
    pub quality: LossyQuality,
}

impl WriteOptions {
    /// Options with dither on and the default seed.
    pub fn new(format: OutputFormat, subtype: Subtype) -> Self {
        WriteOptions {
            format,
            subtype,
            dither: true,
            dither_seed: DEFAULT_DITHER_SEED,
            quality: LossyQuality::Default,
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
    /// The built-in FLAC encoder, when libFLAC is not there.
    flac: Option<FlacState>,
    /// libFLAC, the FLAC encoder when it can be loaded.
    libflac: Option<LibFlacEncoder<W>>,
    /// Something the user should know about how the file was written.
    note: Option<String>,
    lossy: Option<Lossy>,
    /// AIFF's NAME/AUTH/ANNO chunks (empty for other formats).
    aiff_tags: Vec<u8>,
    /// Writing to a pipe: the header (WAV) says the length is open, and nothing seeks.
    streaming: bool,
    /// The frame count the WAV or AIFF header on disk states: the expected length at first,
    /// so that a render that ends there needs no second trip back to the header.
    header_frames: u64,
}

/// A lossy encoder behind the writer.
enum Lossy {
    Mp3(Mp3Encoder),
    Opus(OpusEncoder),
    Vorbis(Box<VorbisEncoder>),
}

/// Largest WAV data chunk.
pub(super) const WAV_MAX_DATA: u64 = u32::MAX as u64 - 64;

impl<'a, W: Write + Seek> AudioWriter<'a, W> {
    /// Starts a stream of `channels` channels at `sample_rate`, written from the start of
    /// `out` (where it is now: the header's rewrite goes back to offset 0). `expected_frames`,
    /// when known, lets a WAV that could not hold the data be refused before anything is
    /// written.
    pub fn new(
        out: &'a mut W,
        options: WriteOptions,
        sample_rate: u32,
        channels: usize,
        expected_frames: Option<u64>,
    ) -> Result<Self> {
        Self::new_tagged(
            out,
            options,
            sample_rate,
            channels,
            expected_frames,
            &Tags::default(),
        )
    }

    /// Like [`Self::new`], writing `tags` into formats that hold them (MP3's ID3v2, Opus
    /// comments, AIFF's NAME/AUTH/ANNO chunks).
    pub fn new_tagged(
        out: &'a mut W,
        options: WriteOptions,
        sample_rate: u32,
        channels: usize,
        expected_frames: Option<u64>,
        tags: &Tags,
    ) -> Result<Self> {
        Self::start(
            out,
            options,
            sample_rate,
            channels,
            expected_frames,
            false,
            tags,
        )
    }

    /// Starts a stream that is never sought (a pipe; `out`'s `Seek` is not called): WAV gets a
    /// header whose sizes say "until the stream ends" (`u32::MAX`, as ffmpeg writes), raw gets
    /// none. FLAC needs to go back to its header and is refused.
    pub fn new_stream(
        out: &'a mut W,
        options: WriteOptions,
        sample_rate: u32,
        channels: usize,
    ) -> Result<Self> {
        if !matches!(options.format, OutputFormat::Wav | OutputFormat::Raw) {
            return Err(Error::invalid_parameter(
                format!(
                    "{} cannot be written to a pipe (its header is completed at the end)",
                    options.format
                ),
                "format",
                options.format,
            )
            .with_suggestion("write WAV or raw to the pipe, or a file of this format"));
        }
        Self::start(
            out,
            options,
            sample_rate,
            channels,
            None,
            true,
            &Tags::default(),
        )
    }

    fn start(
        out: &'a mut W,
        options: WriteOptions,
        sample_rate: u32,
        channels: usize,
        expected_frames: Option<u64>,
        streaming: bool,
        tags: &Tags,
    ) -> Result<Self> {
        let bits = options.subtype.bits();
        let mut flac = None;
        let mut libflac = None;
        let mut note = None;
        let mut lossy = None;
        let mut aiff_tags = Vec::new();
        options.format.check_quality(options.quality)?;
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
                match super::libflac::available() {
                    Ok(()) => {
                        libflac = Some(LibFlacEncoder::new(
                            sample_rate,
                            channels,
                            u32::from(bits),
                            expected_frames,
                            tags,
                            &mut *out,
                        )?);
                    }
                    Err(e) => {
                        note = Some(format!(
                            "{}: FLAC was written by rtfx's built-in encoder instead, slower \
                             and about 7-20 % larger ({})",
                            e.message(),
                            e.suggestion().unwrap_or("install libFLAC")
                        ));
                        flac = Some(FlacState::new(sample_rate, channels, usize::from(bits))?);
                    }
                }
            }
            OutputFormat::Raw => {}
            OutputFormat::Aiff => {
                options.format.check_subtype(options.subtype)?;
                aiff_tags = aiff_tag_chunks(tags);
            }
            OutputFormat::Mp3 => {
                lossy = Some(Lossy::Mp3(Mp3Encoder::new(
                    sample_rate,
                    channels,
                    options.quality,
                    tags,
                    &mut *out,
                )?));
            }
            OutputFormat::Vorbis => {
                lossy = Some(Lossy::Vorbis(Box::new(VorbisEncoder::new(
                    sample_rate,
                    channels,
                    options.quality,
                    tags,
                )?)));
            }
            OutputFormat::Opus => {
                if sample_rate != 48_000 {
                    note = Some(format!(
                        "Opus runs at 48 kHz: libopusenc resampled the {sample_rate} Hz signal \
                         (the header keeps {sample_rate} Hz for decoders that convert back)"
                    ));
                }
                lossy = Some(Lossy::Opus(OpusEncoder::new(
                    sample_rate,
                    channels,
                    options.quality,
                    tags,
                )?));
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
            // As sox: dither below 24 bits only. 24- and 32-bit rounding error (-144 dB and
            // below) is under any converter's noise; dither there would only cost lossless
            // compression about 10 % in size.
            quantizer: Quantizer::new(
                bits.min(32),
                options.dither && bits < 24,
                options.dither_seed,
            ),
            flac,
            libflac,
            note,
            lossy,
            aiff_tags,
            streaming,
            header_frames: expected_frames.unwrap_or(0),
        };
        writer.write_header(false)?;
        Ok(writer)
    }

    fn io(e: std::io::Error) -> Error {
        Error::io(format!("Cannot write output: {e}"), "output")
            .with_suggestion("check free disk space and permissions of the output directory")
    }

    /// Writes the header where `out` is, or, with `rewind`, over the first one.
    fn write_header(&mut self, rewind: bool) -> Result<()> {
        if self.libflac.is_some() {
            // libFLAC writes its own header, and rewrites STREAMINFO when it finishes.
            return Ok(());
        }
        let header = match (&self.flac, self.options.format) {
            (Some(f), _) => f.header_bytes()?,
            (
                None,
                OutputFormat::Raw | OutputFormat::Mp3 | OutputFormat::Opus | OutputFormat::Vorbis,
            ) => return Ok(()),
            (None, OutputFormat::Aiff) => aiff_header(
                self.options.subtype,
                self.channels,
                self.sample_rate,
                self.header_frames,
                &self.aiff_tags,
            ),
            (None, _) => wav_header(
                self.options.subtype,
                self.channels,
                self.sample_rate,
                (!self.streaming).then_some(self.header_frames),
            ),
        };
        if rewind && !self.streaming {
            self.out.seek(SeekFrom::Start(0)).map_err(Self::io)?;
        }
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
        match &mut self.lossy {
            Some(Lossy::Mp3(e)) => e.write(planar, &mut *self.out)?,
            Some(Lossy::Opus(e)) => e.write(planar, &mut *self.out)?,
            Some(Lossy::Vorbis(e)) => e.write(planar, &mut *self.out)?,
            None if self.flac.is_some() || self.libflac.is_some() => self.write_flac(planar, n)?,
            None => self.write_wav(planar, n)?,
        }
        self.frames += n as u64;
        Ok(())
    }

    fn write_wav(&mut self, planar: &[&[f32]], n: usize) -> Result<()> {
        let width = usize::from(self.options.subtype.bits() / 8);
        let total = (self.frames + n as u64) * (self.channels * width) as u64;
        // A stream's header says "open length" already; raw has no header to overflow.
        let bounded = self.options.format == OutputFormat::Wav && !self.streaming;
        if bounded && total > WAV_MAX_DATA {
            return Err(wav_too_big(total));
        }
        let bytes = &mut self.bytes;
        if self.options.subtype == Subtype::Float {
            let frame = planar.len() * 4;
            encode(bytes, n * frame, |out| {
                for (i, samples) in out.chunks_exact_mut(frame.max(1)).enumerate() {
                    for (channel, sample) in planar.iter().zip(samples.chunks_exact_mut(4)) {
                        sample.copy_from_slice(&channel[i].to_le_bytes());
                    }
                }
            });
        } else {
            self.quantizer
                .quantize_interleaved(planar, n, &mut self.ints);
            // Clamped to the subtype's range, each integer's low bytes are its sample.
            match width {
                2 => encode_ints::<2>(bytes, &self.ints),
                3 => encode_ints::<3>(bytes, &self.ints),
                _ => encode_ints::<4>(bytes, &self.ints),
            }
        }
        if self.options.format == OutputFormat::Aiff {
            // AIFF is big-endian.
            for sample in self.bytes.chunks_exact_mut(width) {
                sample.reverse();
            }
        }
        self.out.write_all(&self.bytes).map_err(Self::io)
    }

    fn write_flac(&mut self, planar: &[&[f32]], n: usize) -> Result<()> {
        if let Some(encoder) = self.libflac.as_mut() {
            self.quantizer
                .quantize_interleaved(planar, n, &mut self.ints);
            return encoder.write(&self.ints, n, self.out);
        }
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

    /// Something the user should know about how the file is written (e.g. the FLAC encoder
    /// rtfx fell back to), for the render's warnings.
    pub fn note(&self) -> Option<&str> {
        self.note.as_deref()
    }

    /// Flushes everything, writes the final header and returns what was written.
    pub fn finish(mut self) -> Result<WriteStats> {
        if let Some(encoder) = self.libflac.as_mut() {
            encoder.finish(self.out)?;
        }
        match &mut self.lossy {
            Some(Lossy::Mp3(e)) => e.finish(&mut *self.out)?,
            Some(Lossy::Opus(e)) => e.finish(&mut *self.out)?,
            Some(Lossy::Vorbis(e)) => e.finish(&mut *self.out)?,
            None => {}
        }
        if let Some(flac) = self.flac.as_mut() {
            if flac.filled() > 0 {
                flac.encode_block(self.out)?;
            }
            flac.finalize();
        } else if matches!(self.options.format, OutputFormat::Wav | OutputFormat::Aiff)
            && !self.streaming
            && self.frames * (self.channels as u64) * u64::from(self.options.subtype.bits() / 8) % 2
                == 1
        {
            // RIFF chunks are padded to an even size.
            self.out.write_all(&[0]).map_err(Self::io)?;
        }
        // WAV and AIFF headers depend on nothing but the frame count: one that already says
        // the right count stays.
        let header_right = self.flac.is_none() && self.header_frames == self.frames;
        if !self.streaming
            && !matches!(self.options.format, OutputFormat::Raw)
            && self.lossy.is_none()
            && !header_right
        {
            self.header_frames = self.frames;
            self.write_header(true)?;
            self.out.seek(SeekFrom::End(0)).map_err(Self::io)?;
        }
        self.out.flush().map_err(Self::io)?;
        Ok(WriteStats {
            frames: self.frames,
            clipped: self.quantizer.clipped,
        })
    }
}

pub(super) fn wav_too_big(bytes: u64) -> Error {
    Error::invalid_range(
        "The output is too large for a WAV file (4 GiB limit)",
        "output_bytes",
        bytes,
    )
    .with_suggestion("write FLAC (.flac), use a smaller subtype such as pcm16, or split the input")
}

/// The WAV header for `frames` frames (`None`: a stream of open length, every size
/// `u32::MAX`): a 16-byte `fmt ` for PCM, 18 bytes plus a `fact` chunk for float,
/// `WAVE_FORMAT_EXTENSIBLE` beyond two channels.
pub(super) fn wav_header(
    subtype: Subtype,
    channels: usize,
    sample_rate: u32,
    frames: Option<u64>,
) -> Vec<u8> {
    let bits = subtype.bits();
    let width = u32::from(bits / 8);
    let block_align = channels as u32 * width;
    let data = frames.map_or(u32::MAX, |frames| {
        (frames * u64::from(block_align)).min(u64::from(u32::MAX)) as u32
    });
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
    let riff = if frames.is_some() {
        4 + (8 + fmt_size) + fact_size + 8 + data + (data & 1)
    } else {
        u32::MAX
    };
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
        let fact = frames.map_or(u32::MAX, |f| f.min(u64::from(u32::MAX)) as u32);
        h.extend_from_slice(&fact.to_le_bytes());
    }
    h.extend_from_slice(b"data");
    h.extend_from_slice(&data.to_le_bytes());
    h
}

/// AIFF's text chunks for `tags`: NAME (title), AUTH (artist), ANNO (album and comment, one
/// chunk each, "Album: …" and the comment as it is).
fn aiff_tag_chunks(tags: &Tags) -> Vec<u8> {
    let mut chunks = Vec::new();
    let album = tags.album.as_ref().map(|a| format!("Album: {a}"));
    for (id, text) in [
        (b"NAME", tags.title.as_ref()),
        (b"AUTH", tags.artist.as_ref()),
        (b"ANNO", album.as_ref()),
        (b"ANNO", tags.comment.as_ref()),
    ] {
        if let Some(text) = text {
            let bytes = text.as_bytes();
            chunks.extend_from_slice(id);
            chunks.extend_from_slice(&(bytes.len() as u32).to_be_bytes());
            chunks.extend_from_slice(bytes);
            if bytes.len() % 2 == 1 {
                chunks.push(0);
            }
        }
    }
    chunks
}

/// An AIFF header for `frames` frames of big-endian integers: FORM, COMM, the text chunks,
/// and the SSND chunk's header (offset and block size 0).
fn aiff_header(
    subtype: Subtype,
    channels: usize,
    sample_rate: u32,
    frames: u64,
    text_chunks: &[u8],
) -> Vec<u8> {
    let width = u64::from(subtype.bits() / 8);
    let data = (frames * channels as u64 * width).min(u64::from(u32::MAX) - 64) as u32;
    let ssnd = 8 + data;
    let form = 4 + (8 + 18) + text_chunks.len() as u32 + 8 + ssnd + (ssnd & 1);
    let mut h = Vec::with_capacity(64 + text_chunks.len());
    h.extend_from_slice(b"FORM");
    h.extend_from_slice(&form.to_be_bytes());
    h.extend_from_slice(b"AIFF");
    h.extend_from_slice(b"COMM");
    h.extend_from_slice(&18u32.to_be_bytes());
    h.extend_from_slice(&(channels as u16).to_be_bytes());
    h.extend_from_slice(&(frames.min(u64::from(u32::MAX)) as u32).to_be_bytes());
    h.extend_from_slice(&subtype.bits().to_be_bytes());
    h.extend_from_slice(&extended_80(f64::from(sample_rate)));
    h.extend_from_slice(text_chunks);
    h.extend_from_slice(b"SSND");
    h.extend_from_slice(&ssnd.to_be_bytes());
    h.extend_from_slice(&0u32.to_be_bytes());
    h.extend_from_slice(&0u32.to_be_bytes());
    h
}

/// A positive number as an 80-bit IEEE 754 extended float, big-endian (AIFF's sample rate).
fn extended_80(value: f64) -> [u8; 10] {
    let mut out = [0u8; 10];
    if value <= 0.0 {
        return out;
    }
    let exponent = value.log2().floor() as i32;
    let mantissa = (value / 2f64.powi(exponent) * 2f64.powi(63)) as u64;
    out[..2].copy_from_slice(&((exponent + 16_383) as u16).to_be_bytes());
    out[2..].copy_from_slice(&mantissa.to_be_bytes());
    out
}

/// Replaces `bytes` with the low `W` bytes of each of `ints`, little-endian.
fn encode_ints<const W: usize>(bytes: &mut Vec<u8>, ints: &[i32]) {
    encode(bytes, ints.len() * W, |out| {
        for (q, sample) in ints.iter().zip(out.chunks_exact_mut(W)) {
            sample.copy_from_slice(&q.to_le_bytes()[..W]);
        }
    });
}

/// Sizes `bytes` to `len` and lets `fill` write all of it.
fn encode(bytes: &mut Vec<u8>, len: usize, fill: impl FnOnce(&mut [u8])) {
    bytes.clear();
    bytes.resize(len, 0);
    fill(bytes);
}

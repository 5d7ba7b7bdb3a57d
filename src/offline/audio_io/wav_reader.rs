//! The lean WAV reader: RIFF/RF64, PCM 8/16/24/32, float 32/64, `WAVE_FORMAT_EXTENSIBLE`,
//! converting large raw blocks straight into planar `f32` (the renderer's hot path).

use std::io::Read;

use super::{at_frame, check_layout, read_up_to};
use crate::error::{Error, Result};

#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) enum WavEncoding {
    U8,
    I16,
    I24,
    I32,
    F32,
    F64,
}

impl WavEncoding {
    pub(super) fn bytes(self) -> usize {
        match self {
            WavEncoding::U8 => 1,
            WavEncoding::I16 => 2,
            WavEncoding::I24 => 3,
            WavEncoding::I32 | WavEncoding::F32 => 4,
            WavEncoding::F64 => 8,
        }
    }

    pub(super) fn subtype(self) -> &'static str {
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

/// A byte stream the WAV reader reads: a file, or a pipe (stdin).
pub(super) type ByteStream = Box<dyn Read + Send>;

pub(super) struct WavSource {
    pub(super) input: ByteStream,
    pub(super) encoding: WavEncoding,
    pub(super) channels: usize,
    pub(super) sample_rate: u32,
    pub(super) block_align: usize,
    /// Frames in the stream; `None` when a pipe's header (or raw samples) leave it open: the
    /// stream then ends where its bytes do.
    pub(super) frames: Option<u64>,
    /// Frames still expected (`u64::MAX` when the length is open).
    pub(super) remaining: u64,
    pub(super) raw: Vec<u8>,
    pub(super) shown: String,
    /// Frames the header declared beyond the end of the file (with allow_truncated).
    pub(super) lost: u64,
    /// What was let pass, for warnings.
    pub(super) damage: Vec<String>,
    /// A stream that ends before its header's length is damage rather than an error.
    pub(super) allow_truncated: bool,
}

pub(super) const WAVE_FORMAT_PCM: u16 = 1;
pub(super) const WAVE_FORMAT_IEEE_FLOAT: u16 = 3;
pub(super) const WAVE_FORMAT_EXTENSIBLE: u16 = 0xFFFE;

pub(super) fn le_u16(b: &[u8]) -> u16 {
    u16::from_le_bytes([b[0], b[1]])
}

pub(super) fn le_u32(b: &[u8]) -> u32 {
    u32::from_le_bytes([b[0], b[1], b[2], b[3]])
}

pub(super) fn le_u64(b: &[u8]) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[..8]);
    u64::from_le_bytes(a)
}

/// Data sizes a WAV writer leaves in a header it cannot go back to (writing to a pipe): ffmpeg
/// writes `u32::MAX`, sox `0x7FFF_F000`, others 0. In a pipe they mean "until the stream ends".
fn is_open_length(size: u32) -> bool {
    size == 0 || size >= 0x7FFF_F000
}

/// Reads and drops `n` bytes (a chunk a pipe cannot seek past); false if the stream ends first.
fn skip(input: &mut ByteStream, n: u64) -> std::io::Result<bool> {
    Ok(std::io::copy(&mut input.by_ref().take(n), &mut std::io::sink())? == n)
}

impl WavSource {
    /// Parses the chunks after the 12-byte RIFF header `riff` (already read from `input`) up
    /// to `data`. `file_size` is `None` for a pipe. `Ok(None)` means a valid WAV whose codec
    /// we leave to symphonia.
    pub(super) fn open(
        mut input: ByteStream,
        riff: [u8; 12],
        file_size: Option<u64>,
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
        // RF64 and BW64 (EBU Tech 3285/ITU-R BS.2088) keep 64-bit sizes in a 'ds64' chunk.
        let wide = matches!(&riff[0..4], b"RF64" | b"BW64");
        let container = String::from_utf8_lossy(&riff[0..4]).into_owned();
        let mut pos = 12u64;
        let mut fmt: Option<(u16, usize, u32, usize, usize)> = None;
        let mut ds64_data: Option<u64> = None;
        loop {
            let mut header = [0u8; 8];
            let got = read_up_to(&mut input, &mut header).map_err(io)?;
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
                    let mut body = vec![0u8; size32 as usize + (size32 & 1) as usize];
                    input
                        .read_exact(&mut body)
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
                }
                b"ds64" if wide => {
                    if !(16..=1 << 20).contains(&size32) {
                        return Err(corrupt("malformed 'ds64' chunk"));
                    }
                    let mut body = vec![0u8; size32 as usize + (size32 & 1) as usize];
                    input
                        .read_exact(&mut body)
                        .map_err(|_| corrupt("'ds64' chunk cut short"))?;
                    ds64_data = Some(le_u64(&body[8..16]));
                    pos += u64::from(size32) + u64::from(size32 & 1);
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
                    // size is the real claim. Read from a pipe, any of the sizes such writers
                    // leave means the same.
                    let length_unknown = !wide
                        && (size32 == u32::MAX || (file_size.is_none() && is_open_length(size32)));
                    let align = block_align as u64;
                    let mut lost = 0;
                    let mut damage = Vec::new();
                    let frames = match file_size {
                        // A pipe: the header's length is checked as the data arrives.
                        None => (!length_unknown).then_some(declared / align),
                        Some(file_size) => {
                            let present = file_size.saturating_sub(pos);
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
                                            "re-export the file, or pass --allow-truncated to \
                                             render the frames that are present",
                                        ));
                                    }
                                    lost = declared / align - present / align;
                                    damage.push(format!(
                                        "Input '{shown}' is truncated: {problem}; {lost} frames \
                                         are missing after {}",
                                        at_frame(present / align, rate)
                                    ));
                                }
                                present
                            } else {
                                declared
                            };
                            Some(bytes / align)
                        }
                    };
                    return Ok(Some(WavSource {
                        input,
                        encoding,
                        channels,
                        sample_rate: rate,
                        block_align,
                        frames,
                        remaining: frames.unwrap_or(u64::MAX),
                        raw: Vec::new(),
                        shown: shown.to_string(),
                        lost,
                        damage,
                        allow_truncated,
                    }));
                }
                _ => {
                    // Skip unknown chunks (LIST, fact, JUNK, bext…), padded to even sizes.
                    let length = u64::from(size32) + u64::from(size32 & 1);
                    pos += length;
                    if file_size.is_some_and(|size| pos > size)
                        || !skip(&mut input, length).map_err(io)?
                    {
                        return Err(corrupt("a chunk runs past the end of the file"));
                    }
                }
            }
        }
    }

    /// Raw interleaved little-endian samples from `input` (no header): the stream ends where
    /// its bytes do.
    pub(super) fn raw(
        input: ByteStream,
        encoding: WavEncoding,
        sample_rate: u32,
        channels: usize,
        shown: &str,
    ) -> Result<Self> {
        check_layout(shown, sample_rate, channels)?;
        Ok(WavSource {
            input,
            encoding,
            channels,
            sample_rate,
            block_align: channels * encoding.bytes(),
            frames: None,
            remaining: u64::MAX,
            raw: Vec::new(),
            shown: shown.to_string(),
            lost: 0,
            damage: Vec::new(),
            allow_truncated: false,
        })
    }

    pub(super) fn read(&mut self, planar: &mut [Vec<f32>], max: usize) -> Result<(usize, u64)> {
        let n = (max as u64).min(self.remaining) as usize;
        if n == 0 {
            return Ok((0, 0));
        }
        let bytes = n * self.block_align;
        if self.raw.len() < bytes {
            self.raw.resize(bytes, 0);
        }
        let got = read_up_to(&mut self.input, &mut self.raw[..bytes])
            .map_err(|e| Error::io(format!("Cannot read '{}': {e}", self.shown), &self.shown))?;
        let n = got / self.block_align;
        if got < bytes {
            self.end_early(got % self.block_align, n as u64)?;
        }
        if n == 0 {
            return Ok((0, 0));
        }
        self.remaining = self.remaining.saturating_sub(n as u64);
        let nonfinite = deinterleave(self.encoding, &self.raw[..n * self.block_align], planar);
        Ok((n, nonfinite))
    }

    /// The stream ended before `remaining` frames: fine for an open length (but for a partial
    /// last frame, which is dropped with a warning), an error or damage otherwise.
    fn end_early(&mut self, partial: usize, read_now: u64) -> Result<()> {
        let Some(frames) = self.frames else {
            self.remaining = 0;
            if partial > 0 {
                self.damage.push(format!(
                    "'{}' ended inside a frame: its last {partial} bytes were dropped",
                    self.shown
                ));
            }
            return Ok(());
        };
        let missing = self.remaining - read_now;
        let at = frames - missing;
        self.remaining = read_now;
        let problem = format!(
            "'{}' ended early: {missing} of its {frames} frames are missing after {}",
            self.shown,
            at_frame(at, self.sample_rate)
        );
        if self.allow_truncated {
            self.lost += missing;
            self.damage.push(problem);
            return Ok(());
        }
        Err(Error::format(format!("Input {problem}"))
            .with_parameter_name(&self.shown)
            .with_suggestion(
                "the file was cut short or another program is still writing it; re-export it, \
                 or pass --allow-truncated to render the frames that are present",
            ))
    }
}

/// Converts interleaved little-endian samples into planar `f32`; returns how many non-finite
/// samples were replaced by 0.
pub(super) fn deinterleave(encoding: WavEncoding, raw: &[u8], planar: &mut [Vec<f32>]) -> u64 {
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
            // Mono 16-bit, the usual dataset clip: contiguous samples, a loop that vectorises.
            WavEncoding::I16 if channels == 1 => {
                for (o, s) in out.iter_mut().zip(raw.chunks_exact(2)) {
                    *o = f32::from(i16::from_le_bytes([s[0], s[1]])) * (1.0 / 32768.0);
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

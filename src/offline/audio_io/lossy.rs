//! Lossy encoders, fed `f32` directly (never dithered to an integer depth first): MP3 through
//! LAME and Opus through libopusenc, both loaded at run time (see
//! [`crate::offline::system_library`]), and Ogg Vorbis through `vorbis_rs` (libvorbis built
//! from source into rtfx, BSD-licensed).

use std::ffi::{CString, c_char, c_float, c_int, c_uchar, c_void};
use std::io::{Seek, SeekFrom, Write};
use std::sync::{Arc, OnceLock};

use super::Tags;
use crate::error::{Error, Result};
use crate::offline::system_library::{Loaded, SystemLibrary, load_once, symbol};

/// How hard a lossy encoder works: `--quality` or `--bitrate`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum LossyQuality {
    /// The format's default (MP3: VBR quality 2, about 190 kbit/s in stereo; Opus: 128 kbit/s
    /// in stereo, 64 in mono).
    Default,
    /// A variable-bitrate quality on the format's scale (MP3: 0 best to 9 smallest, as LAME's
    /// `-V`).
    Quality(f32),
    /// A bitrate in kbit/s (MP3: constant bitrate; Opus: its target).
    Bitrate(u32),
}

/// Rates an MP3 stream can carry (MPEG-1, 2 and 2.5 layer III).
pub const MP3_RATES: [u32; 9] = [
    8000, 11_025, 12_000, 16_000, 22_050, 24_000, 32_000, 44_100, 48_000,
];

/// Bitrates LAME's constant-bitrate mode takes, in kbit/s.
pub const MP3_BITRATES: [u32; 18] = [
    8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160, 192, 224, 256, 320,
];

/// Bytes of the error a write callback records (the encoders cannot return Rust errors).
fn io_error(e: std::io::Error) -> Error {
    Error::io(format!("Cannot write output: {e}"), "output")
        .with_suggestion("check free disk space and permissions of the output directory")
}

// --- MP3: LAME ------------------------------------------------------------------------------

type Lame = *mut c_void;

/// The LAME functions rtfx calls (lame.h, LAME 3.100).
#[derive(Clone, Copy)]
struct LameApi {
    init: unsafe extern "C" fn() -> Lame,
    set_num_channels: unsafe extern "C" fn(Lame, c_int) -> c_int,
    set_in_samplerate: unsafe extern "C" fn(Lame, c_int) -> c_int,
    set_out_samplerate: unsafe extern "C" fn(Lame, c_int) -> c_int,
    set_brate: unsafe extern "C" fn(Lame, c_int) -> c_int,
    set_vbr: unsafe extern "C" fn(Lame, c_int) -> c_int,
    set_vbr_quality: unsafe extern "C" fn(Lame, c_float) -> c_int,
    set_mode: unsafe extern "C" fn(Lame, c_int) -> c_int,
    set_write_id3tag_automatic: unsafe extern "C" fn(Lame, c_int),
    init_params: unsafe extern "C" fn(Lame) -> c_int,
    encode_ieee_float: unsafe extern "C" fn(
        Lame,
        *const c_float,
        *const c_float,
        c_int,
        *mut c_uchar,
        c_int,
    ) -> c_int,
    flush: unsafe extern "C" fn(Lame, *mut c_uchar, c_int) -> c_int,
    lametag_frame: unsafe extern "C" fn(Lame, *mut c_uchar, usize) -> usize,
    id3_init: unsafe extern "C" fn(Lame),
    id3_v2_only: unsafe extern "C" fn(Lame),
    id3_set_title: unsafe extern "C" fn(Lame, *const c_char),
    id3_set_artist: unsafe extern "C" fn(Lame, *const c_char),
    id3_set_album: unsafe extern "C" fn(Lame, *const c_char),
    id3_set_comment: unsafe extern "C" fn(Lame, *const c_char),
    id3v2_tag: unsafe extern "C" fn(Lame, *mut c_uchar, usize) -> usize,
    close: unsafe extern "C" fn(Lame) -> c_int,
}

struct LameLibrary {
    api: LameApi,
    _library: libloading::Library,
}

const LAME_LIBRARY: SystemLibrary = SystemLibrary {
    purpose: "MP3 output",
    name: "LAME (libmp3lame)",
    files: [
        &["libmp3lame.so.0"],
        &["libmp3lame.0.dylib"],
        &["libmp3lame.dll"],
    ],
    override_var: "RTFX_LAME_LIBRARY",
    install: "Debian/Ubuntu: apt-get install libmp3lame0; Fedora: dnf install lame-libs; macOS: \
              brew install lame",
};

fn lame() -> Result<Arc<LameLibrary>> {
    static LOADED: OnceLock<Loaded<LameLibrary>> = OnceLock::new();
    load_once(&LOADED, &LAME_LIBRARY, |library| {
        // SAFETY: each symbol is read with the signature lame.h gives; the library is kept
        // beside them.
        unsafe {
            let api = LameApi {
                init: symbol(&library, b"lame_init\0")?,
                set_num_channels: symbol(&library, b"lame_set_num_channels\0")?,
                set_in_samplerate: symbol(&library, b"lame_set_in_samplerate\0")?,
                set_out_samplerate: symbol(&library, b"lame_set_out_samplerate\0")?,
                set_brate: symbol(&library, b"lame_set_brate\0")?,
                set_vbr: symbol(&library, b"lame_set_VBR\0")?,
                set_vbr_quality: symbol(&library, b"lame_set_VBR_quality\0")?,
                set_mode: symbol(&library, b"lame_set_mode\0")?,
                set_write_id3tag_automatic: symbol(&library, b"lame_set_write_id3tag_automatic\0")?,
                init_params: symbol(&library, b"lame_init_params\0")?,
                encode_ieee_float: symbol(&library, b"lame_encode_buffer_ieee_float\0")?,
                flush: symbol(&library, b"lame_encode_flush\0")?,
                lametag_frame: symbol(&library, b"lame_get_lametag_frame\0")?,
                id3_init: symbol(&library, b"id3tag_init\0")?,
                id3_v2_only: symbol(&library, b"id3tag_v2_only\0")?,
                id3_set_title: symbol(&library, b"id3tag_set_title\0")?,
                id3_set_artist: symbol(&library, b"id3tag_set_artist\0")?,
                id3_set_album: symbol(&library, b"id3tag_set_album\0")?,
                id3_set_comment: symbol(&library, b"id3tag_set_comment\0")?,
                id3v2_tag: symbol(&library, b"lame_get_id3v2_tag\0")?,
                close: symbol(&library, b"lame_close\0")?,
            };
            Ok(LameLibrary {
                api,
                _library: library,
            })
        }
    })
}

/// A LAME encoder writing one MP3 stream: an ID3v2 tag (when there are tags), the frames, and
/// at the end the LAME/Xing frame over the first frame, which states the exact length and the
/// encoder delay (so decoders, rtfx's included, trim it and read exactly the frames given).
pub(super) struct Mp3Encoder {
    lib: Arc<LameLibrary>,
    handle: Lame,
    channels: usize,
    /// Where the first audio frame starts (after the ID3v2 tag).
    first_frame: u64,
    buffer: Vec<u8>,
}

// SAFETY: the handle is used by one thread at a time (`&mut self`); LAME keeps its state in it.
unsafe impl Send for Mp3Encoder {}

impl Mp3Encoder {
    /// Starts an encoder and writes the ID3v2 tag (if any) to `out`.
    pub(super) fn new(
        sample_rate: u32,
        channels: usize,
        quality: LossyQuality,
        tags: &Tags,
        out: &mut dyn Write,
    ) -> Result<Self> {
        check_mp3_layout(sample_rate, channels)?;
        let lib = lame()?;
        let api = lib.api;
        // SAFETY: lame_init returns a fresh handle or null; every call below gets that handle.
        let handle = unsafe { (api.init)() };
        if handle.is_null() {
            return Err(Error::stream(
                "LAME could not start an encoder (out of memory?)",
            ));
        }
        let mut encoder = Mp3Encoder {
            lib,
            handle,
            channels,
            first_frame: 0,
            buffer: Vec::new(),
        };
        let strings: Vec<CString>;
        // SAFETY: setters on the handle; the strings outlive the calls that read them.
        let ok = unsafe {
            (api.set_num_channels)(handle, channels as c_int);
            (api.set_in_samplerate)(handle, sample_rate as c_int);
            // Never let LAME pick a lower rate by itself: the output keeps the rate asked for.
            (api.set_out_samplerate)(handle, sample_rate as c_int);
            // MONO = 3; JOINT_STEREO = 1.
            (api.set_mode)(handle, if channels == 1 { 3 } else { 1 });
            match quality {
                LossyQuality::Bitrate(kbps) => {
                    (api.set_vbr)(handle, 0);
                    (api.set_brate)(handle, kbps as c_int);
                }
                LossyQuality::Quality(q) => {
                    (api.set_vbr)(handle, 4);
                    (api.set_vbr_quality)(handle, q);
                }
                LossyQuality::Default => {
                    (api.set_vbr)(handle, 4);
                    (api.set_vbr_quality)(handle, 2.0);
                }
            }
            (api.set_write_id3tag_automatic)(handle, 0);
            if !tags.is_empty() {
                (api.id3_init)(handle);
                (api.id3_v2_only)(handle);
                strings = [&tags.title, &tags.artist, &tags.album, &tags.comment]
                    .iter()
                    .map(|t| {
                        CString::new(t.as_deref().unwrap_or("").replace('\0', ""))
                            .unwrap_or_default()
                    })
                    .collect();
                let setters = [
                    api.id3_set_title,
                    api.id3_set_artist,
                    api.id3_set_album,
                    api.id3_set_comment,
                ];
                for ((set, value), given) in setters.iter().zip(&strings).zip([
                    &tags.title,
                    &tags.artist,
                    &tags.album,
                    &tags.comment,
                ]) {
                    if given.is_some() {
                        set(handle, value.as_ptr());
                    }
                }
            }
            (api.init_params)(handle) >= 0
        };
        if !ok {
            return Err(Error::invalid_parameter(
                format!("LAME refused these settings ({sample_rate} Hz, {channels} channels, {quality:?})"),
                "quality",
                format!("{quality:?}"),
            )
            .with_suggestion("use --bitrate 128..320 or --quality 0..9 at 32000, 44100 or 48000 Hz"));
        }
        if !tags.is_empty() {
            // SAFETY: a null buffer asks for the size; the second call fills that many bytes.
            let tag = unsafe {
                let size = (api.id3v2_tag)(handle, std::ptr::null_mut(), 0);
                let mut tag = vec![0u8; size];
                let got = (api.id3v2_tag)(handle, tag.as_mut_ptr(), size);
                tag.truncate(got.min(size));
                tag
            };
            out.write_all(&tag).map_err(io_error)?;
            encoder.first_frame = tag.len() as u64;
        }
        Ok(encoder)
    }

    /// Encodes one planar block.
    pub(super) fn write(&mut self, planar: &[&[f32]], out: &mut dyn Write) -> Result<()> {
        let frames = planar.first().map_or(0, |c| c.len());
        // LAME's worst case: 1.25 × samples + 7200 bytes.
        for start in (0..frames).step_by(1 << 16) {
            let n = (frames - start).min(1 << 16);
            self.buffer.resize(n + n / 4 + 7200, 0);
            let left = planar[0][start..].as_ptr();
            let right = planar[self.channels - 1][start..].as_ptr();
            // SAFETY: both channel pointers hold `n` samples; the buffer holds its length.
            let made = unsafe {
                (self.lib.api.encode_ieee_float)(
                    self.handle,
                    left,
                    right,
                    n as c_int,
                    self.buffer.as_mut_ptr(),
                    self.buffer.len() as c_int,
                )
            };
            if made < 0 {
                return Err(Error::stream(format!(
                    "LAME failed to encode (error {made})"
                )));
            }
            out.write_all(&self.buffer[..made as usize])
                .map_err(io_error)?;
        }
        Ok(())
    }

    /// Flushes the last frames and writes the LAME/Xing frame over the first frame.
    pub(super) fn finish<W: Write + Seek>(&mut self, out: &mut W) -> Result<()> {
        self.buffer.resize(7200, 0);
        // SAFETY: the buffer holds its length.
        let made = unsafe {
            (self.lib.api.flush)(
                self.handle,
                self.buffer.as_mut_ptr(),
                self.buffer.len() as c_int,
            )
        };
        if made < 0 {
            return Err(Error::stream(format!(
                "LAME failed to flush (error {made})"
            )));
        }
        out.write_all(&self.buffer[..made as usize])
            .map_err(io_error)?;
        self.buffer.resize(4096, 0);
        // SAFETY: as above.
        let tag = unsafe {
            (self.lib.api.lametag_frame)(self.handle, self.buffer.as_mut_ptr(), self.buffer.len())
        };
        if tag > 0 && tag <= self.buffer.len() {
            let end = out.stream_position().map_err(io_error)?;
            out.seek(SeekFrom::Start(self.first_frame))
                .map_err(io_error)?;
            out.write_all(&self.buffer[..tag]).map_err(io_error)?;
            out.seek(SeekFrom::Start(end)).map_err(io_error)?;
        }
        Ok(())
    }
}

impl Drop for Mp3Encoder {
    fn drop(&mut self) {
        // SAFETY: the handle came from lame_init and is closed once.
        unsafe {
            (self.lib.api.close)(self.handle);
        }
    }
}

/// Refuses a rate or channel count MP3 cannot carry, naming the fix.
pub(super) fn check_mp3_layout(sample_rate: u32, channels: usize) -> Result<()> {
    if !MP3_RATES.contains(&sample_rate) {
        let nearest = MP3_RATES
            .iter()
            .min_by_key(|&&r| r.abs_diff(sample_rate))
            .copied()
            .unwrap_or(44_100);
        return Err(Error::invalid_parameter(
            format!(
                "MP3 cannot carry {sample_rate} Hz; rtfx does not resample without being asked"
            ),
            "rate",
            sample_rate,
        )
        .with_expected("8000, 11025, 12000, 16000, 22050, 24000, 32000, 44100 or 48000 Hz")
        .with_suggestion(format!("add --rate {nearest} (or write another format)")));
    }
    if !(1..=2).contains(&channels) {
        return Err(Error::invalid_parameter(
            format!("MP3 holds 1 or 2 channels, not {channels}"),
            "channels",
            channels,
        )
        .with_suggestion("add --channels 1, or --remix with 2 rows, or write FLAC or WAV"));
    }
    Ok(())
}

// --- Opus: libopusenc -----------------------------------------------------------------------

type OpusEnc = *mut c_void;
type OpusComments = *mut c_void;

/// `OpusEncCallbacks` (opusenc.h).
#[repr(C)]
struct OpusCallbacks {
    write: unsafe extern "C" fn(*mut c_void, *const c_uchar, i32) -> c_int,
    close: unsafe extern "C" fn(*mut c_void) -> c_int,
}

#[derive(Clone, Copy)]
struct OpusApi {
    comments_create: unsafe extern "C" fn() -> OpusComments,
    comments_add: unsafe extern "C" fn(OpusComments, *const c_char, *const c_char) -> c_int,
    comments_destroy: unsafe extern "C" fn(OpusComments),
    create_callbacks: unsafe extern "C" fn(
        *const OpusCallbacks,
        *mut c_void,
        OpusComments,
        i32,
        c_int,
        c_int,
        *mut c_int,
    ) -> OpusEnc,
    ctl: unsafe extern "C" fn(OpusEnc, c_int, ...) -> c_int,
    write_float: unsafe extern "C" fn(OpusEnc, *const c_float, c_int) -> c_int,
    drain: unsafe extern "C" fn(OpusEnc) -> c_int,
    destroy: unsafe extern "C" fn(OpusEnc),
}

struct OpusLibrary {
    api: OpusApi,
    _library: libloading::Library,
}

const OPUS_LIBRARY: SystemLibrary = SystemLibrary {
    purpose: "Opus output",
    name: "libopusenc",
    files: [
        &["libopusenc.so.0"],
        &["libopusenc.0.dylib"],
        &["opusenc.dll"],
    ],
    override_var: "RTFX_OPUSENC_LIBRARY",
    install: "Debian/Ubuntu: apt-get install libopusenc0; Fedora: dnf install libopusenc; macOS: \
              brew install libopusenc",
};

fn opusenc() -> Result<Arc<OpusLibrary>> {
    static LOADED: OnceLock<Loaded<OpusLibrary>> = OnceLock::new();
    load_once(&LOADED, &OPUS_LIBRARY, |library| {
        // SAFETY: each symbol is read with the signature opusenc.h gives.
        unsafe {
            let api = OpusApi {
                comments_create: symbol(&library, b"ope_comments_create\0")?,
                comments_add: symbol(&library, b"ope_comments_add\0")?,
                comments_destroy: symbol(&library, b"ope_comments_destroy\0")?,
                create_callbacks: symbol(&library, b"ope_encoder_create_callbacks\0")?,
                ctl: symbol(&library, b"ope_encoder_ctl\0")?,
                write_float: symbol(&library, b"ope_encoder_write_float\0")?,
                drain: symbol(&library, b"ope_encoder_drain\0")?,
                destroy: symbol(&library, b"ope_encoder_destroy\0")?,
            };
            Ok(OpusLibrary {
                api,
                _library: library,
            })
        }
    })
}

/// `OPUS_SET_BITRATE_REQUEST` (opus_defines.h).
const OPUS_SET_BITRATE: c_int = 4002;

/// Where libopusenc's pages land until the writer passes them on.
unsafe extern "C" fn collect_pages(user: *mut c_void, data: *const c_uchar, len: i32) -> c_int {
    // SAFETY: `user` is the encoder's boxed page buffer, alive while the encoder is; `data`
    // holds `len` bytes.
    unsafe {
        let pages = &mut *(user as *mut Vec<u8>);
        pages.extend_from_slice(std::slice::from_raw_parts(data, len.max(0) as usize));
    }
    0
}

unsafe extern "C" fn close_pages(_: *mut c_void) -> c_int {
    0
}

/// An Ogg Opus encoder (libopusenc: it resamples any input rate to Opus's 48 kHz itself and
/// records the input rate in the header for decoders that resample back).
pub(super) struct OpusEncoder {
    lib: Arc<OpusLibrary>,
    handle: OpusEnc,
    channels: usize,
    /// Pages written by libopusenc's callback, passed to the output after each call. Boxed:
    /// the callback holds the address of the `Vec` itself, which must not move.
    #[allow(clippy::box_collection)]
    pages: Box<Vec<u8>>,
    interleaved: Vec<f32>,
}

// SAFETY: one thread at a time uses the handle (`&mut self`).
unsafe impl Send for OpusEncoder {}

impl OpusEncoder {
    pub(super) fn new(
        sample_rate: u32,
        channels: usize,
        quality: LossyQuality,
        tags: &Tags,
    ) -> Result<Self> {
        if !(1..=2).contains(&channels) {
            return Err(Error::invalid_parameter(
                format!("rtfx writes Opus with 1 or 2 channels, not {channels}"),
                "channels",
                channels,
            )
            .with_suggestion("add --channels 1, or --remix with 2 rows, or write FLAC or WAV"));
        }
        let bitrate = match quality {
            LossyQuality::Bitrate(kbps) => kbps,
            _ => 64 * channels as u32,
        };
        let lib = opusenc()?;
        let api = lib.api;
        let mut pages = Box::new(Vec::new());
        let callbacks = OpusCallbacks {
            write: collect_pages,
            close: close_pages,
        };
        let mut error = 0;
        // SAFETY: the comments object is created, filled and destroyed here (the encoder
        // copies it); the callbacks get the boxed page buffer, which the encoder outlives not.
        let handle = unsafe {
            let comments = (api.comments_create)();
            for (key, value) in [
                ("TITLE", &tags.title),
                ("ARTIST", &tags.artist),
                ("ALBUM", &tags.album),
                ("COMMENT", &tags.comment),
            ] {
                if let Some(value) = value {
                    let key = CString::new(key).unwrap_or_default();
                    let value = CString::new(value.replace('\0', "")).unwrap_or_default();
                    (api.comments_add)(comments, key.as_ptr(), value.as_ptr());
                }
            }
            let handle = (api.create_callbacks)(
                &callbacks,
                (&mut *pages) as *mut Vec<u8> as *mut c_void,
                comments,
                sample_rate as i32,
                channels as c_int,
                0,
                &mut error,
            );
            (api.comments_destroy)(comments);
            handle
        };
        if handle.is_null() {
            return Err(Error::stream(format!(
                "libopusenc could not start an encoder for {sample_rate} Hz, {channels} channels \
                 (error {error})"
            )));
        }
        // SAFETY: a documented request with its documented argument type.
        unsafe {
            (api.ctl)(handle, OPUS_SET_BITRATE, (bitrate * 1000) as i32);
        }
        Ok(OpusEncoder {
            lib,
            handle,
            channels,
            pages,
            interleaved: Vec::new(),
        })
    }

    fn pass_pages(&mut self, out: &mut dyn Write) -> Result<()> {
        out.write_all(&self.pages).map_err(io_error)?;
        self.pages.clear();
        Ok(())
    }

    pub(super) fn write(&mut self, planar: &[&[f32]], out: &mut dyn Write) -> Result<()> {
        let frames = planar.first().map_or(0, |c| c.len());
        self.interleaved.clear();
        self.interleaved.reserve(frames * self.channels);
        for i in 0..frames {
            for c in planar {
                self.interleaved.push(c[i]);
            }
        }
        // SAFETY: the buffer holds `frames` interleaved frames.
        let status = unsafe {
            (self.lib.api.write_float)(self.handle, self.interleaved.as_ptr(), frames as c_int)
        };
        if status != 0 {
            return Err(Error::stream(format!(
                "libopusenc failed to encode (error {status})"
            )));
        }
        self.pass_pages(out)
    }

    pub(super) fn finish(&mut self, out: &mut dyn Write) -> Result<()> {
        // SAFETY: drains the encoder once; pages arrive through the callback.
        let status = unsafe { (self.lib.api.drain)(self.handle) };
        if status != 0 {
            return Err(Error::stream(format!(
                "libopusenc failed to finish (error {status})"
            )));
        }
        self.pass_pages(out)
    }
}

impl Drop for OpusEncoder {
    fn drop(&mut self) {
        // SAFETY: the handle came from ope_encoder_create_callbacks and is destroyed once,
        // before the page buffer it writes to.
        unsafe { (self.lib.api.destroy)(self.handle) }
    }
}

// --- Ogg Vorbis: vorbis_rs ------------------------------------------------------------------

/// Where the Vorbis encoder's pages land until the writer passes them on.
#[derive(Clone, Default)]
struct SharedPages(Arc<std::sync::Mutex<Vec<u8>>>);

impl Write for SharedPages {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .map_err(|_| std::io::Error::other("page buffer poisoned"))?
            .extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Ogg stream serial: fixed, so that the same render gives the same bytes.
const VORBIS_STREAM_SERIAL: i32 = 0x7274_6678; // "rtfx"

/// An Ogg Vorbis encoder (quality `--quality -1..10` on oggenc's scale, default 5, about 160
/// kbit/s in stereo; or `--bitrate` as an average).
pub(super) struct VorbisEncoder {
    encoder: Option<vorbis_rs::VorbisEncoder<SharedPages>>,
    pages: SharedPages,
}

fn vorbis_error(e: vorbis_rs::VorbisError) -> Error {
    Error::stream(format!("The Vorbis encoder failed: {e}"))
}

impl VorbisEncoder {
    pub(super) fn new(
        sample_rate: u32,
        channels: usize,
        quality: LossyQuality,
        tags: &Tags,
    ) -> Result<Self> {
        use std::num::{NonZeroU8, NonZeroU32};
        use vorbis_rs::VorbisBitrateManagementStrategy as Strategy;
        let rate = NonZeroU32::new(sample_rate)
            .ok_or_else(|| Error::invalid_sample_rate(sample_rate, "a positive rate"))?;
        let count = u8::try_from(channels)
            .ok()
            .and_then(NonZeroU8::new)
            .ok_or_else(|| {
                Error::invalid_range("Vorbis holds 1 to 255 channels", "channels", channels)
            })?;
        let strategy = match quality {
            LossyQuality::Quality(q) => Strategy::QualityVbr {
                target_quality: q / 10.0,
            },
            LossyQuality::Bitrate(kbps) => Strategy::Abr {
                average_bitrate: NonZeroU32::new(kbps * 1000).unwrap_or(NonZeroU32::MIN),
            },
            LossyQuality::Default => Strategy::QualityVbr {
                target_quality: 0.5,
            },
        };
        let pages = SharedPages::default();
        let mut builder = vorbis_rs::VorbisEncoderBuilder::new_with_serial(
            rate,
            count,
            pages.clone(),
            VORBIS_STREAM_SERIAL,
        );
        builder.bitrate_management_strategy(strategy);
        for (key, value) in [
            ("TITLE", &tags.title),
            ("ARTIST", &tags.artist),
            ("ALBUM", &tags.album),
            ("COMMENT", &tags.comment),
        ] {
            if let Some(value) = value {
                builder
                    .comment_tag(key, value.replace('\0', ""))
                    .map_err(vorbis_error)?;
            }
        }
        let encoder = builder.build().map_err(|e| {
            Error::invalid_parameter(
                format!("The Vorbis encoder refused {sample_rate} Hz, {channels} channels, {quality:?}: {e}"),
                "quality",
                format!("{quality:?}"),
            )
            .with_suggestion("use --quality -1..10 or --bitrate 45..500 at a common rate (e.g. --rate 44100)")
        })?;
        Ok(VorbisEncoder {
            encoder: Some(encoder),
            pages,
        })
    }

    fn pass_pages(&mut self, out: &mut dyn Write) -> Result<()> {
        let mut pages = self
            .pages
            .0
            .lock()
            .map_err(|_| Error::stream("The Vorbis page buffer was poisoned"))?;
        out.write_all(&pages).map_err(io_error)?;
        pages.clear();
        Ok(())
    }

    pub(super) fn write(&mut self, planar: &[&[f32]], out: &mut dyn Write) -> Result<()> {
        if let Some(encoder) = self.encoder.as_mut() {
            encoder.encode_audio_block(planar).map_err(vorbis_error)?;
        }
        self.pass_pages(out)
    }

    pub(super) fn finish(&mut self, out: &mut dyn Write) -> Result<()> {
        if let Some(encoder) = self.encoder.take() {
            encoder.finish().map_err(vorbis_error)?;
        }
        self.pass_pages(out)
    }
}

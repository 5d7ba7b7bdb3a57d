//! Sample-rate and channel conversion for the renderer (`rtfx render --rate/--channels/--remix`).
//!
//! # Sample rate
//! [`RateConverter`] runs libsoxr (the resampler inside sox) at its "very high quality" recipe,
//! linear phase, one thread. Measured against the issue's bar on tones (44.1 → 48 kHz and
//! 48 → 16 kHz, `benches/resample_quality.py`): passband flat within 0.006 dB up to 0.9 of the
//! lower Nyquist frequency, everything that is not the tone (images, aliases, noise) below
//! −150 dB, tones above the output's Nyquist frequency attenuated by more than 155 dB, output
//! aligned with the input to 1e-11 rad of phase. `rubato`'s FFT resampler, the other candidate,
//! reached −131 to −136 dB and was misaligned by a fraction of a sample, at the same speed.
//!
//! libsoxr is loaded when the first converter is made (`libsoxr.so.0`; Debian's `libsoxr0`),
//! not linked: rtfx and its plugin start without it, and only `--rate` needs it. It is
//! LGPL-2.1, used as the unmodified system library.
//!
//! The output has exactly `round(frames × out_rate / in_rate)` frames ([`output_frames`]), and
//! does not depend on how the input is cut into blocks.
//!
//! # Channels
//! [`ChannelMap`]: equal counts pass through; mono from any count is the mean of the channels;
//! any count from mono copies it to every channel; other counts need an explicit [`Remix`]
//! matrix (a 5.1 file's channel order is not known from the count alone).

use std::sync::{Arc, OnceLock};

use crate::error::{Error, Result};
use crate::offline::system_library::{Loaded, SystemLibrary, load_once, symbol};

/// Output rates `--rate` accepts, in Hz: the rates rtfx reads.
pub const RATE_RANGE: std::ops::RangeInclusive<u32> =
    crate::offline::audio_io::MIN_SAMPLE_RATE..=crate::offline::audio_io::MAX_SAMPLE_RATE;

/// Most channels a conversion writes: as many as rtfx reads.
pub const MAX_CHANNELS: usize = crate::offline::audio_io::MAX_FILE_CHANNELS;

/// Largest gain in a remix matrix.
pub const MAX_REMIX_GAIN: f32 = 16.0;

/// Frames a conversion of `frames` input frames at `in_rate` yields at `out_rate`:
/// `round(frames × out_rate / in_rate)`, halves rounded up, computed exactly.
///
/// ```
/// use rtfx::offline::convert::output_frames;
/// assert_eq!(output_frames(44_100, 44_100, 48_000), 48_000);
/// assert_eq!(output_frames(3, 48_000, 16_000), 1);
/// assert_eq!(output_frames(1, 2, 1), 1); // 0.5 rounds up
/// ```
pub fn output_frames(frames: u64, in_rate: u32, out_rate: u32) -> u64 {
    let in_rate = u128::from(in_rate.max(1));
    ((u128::from(frames) * u128::from(out_rate) + in_rate / 2) / in_rate) as u64
}

/// Checks an output rate given on the command line.
///
/// ```
/// use rtfx::offline::convert::check_rate;
/// assert!(check_rate(48_000).is_ok());
/// assert!(check_rate(0).unwrap_err().to_string().contains("rate"));
/// ```
pub fn check_rate(rate: u32) -> Result<u32> {
    if RATE_RANGE.contains(&rate) {
        Ok(rate)
    } else {
        Err(
            Error::invalid_range("Output sample rate is out of range", "rate", rate)
                .with_expected(format!("{} to {} Hz", RATE_RANGE.start(), RATE_RANGE.end()))
                .with_suggestion("e.g. --rate 48000, --rate 44100 or --rate 16000"),
        )
    }
}

/// Checks a channel count given on the command line.
pub fn check_channels(channels: usize) -> Result<usize> {
    if (1..=MAX_CHANNELS).contains(&channels) {
        Ok(channels)
    } else {
        Err(
            Error::invalid_range("Output channel count is out of range", "channels", channels)
                .with_expected(format!("1 to {MAX_CHANNELS}"))
                .with_suggestion("e.g. --channels 1 for mono or --channels 2 for stereo"),
        )
    }
}

/// An explicit channel matrix (`--remix`): one row per output channel, one gain per input
/// channel. Text form: rows separated by `;`, gains by `,` (spaces allowed).
///
/// ```
/// use rtfx::offline::convert::Remix;
/// // Stereo swapped: out 1 = in 2, out 2 = in 1.
/// let swap = Remix::parse("0,1; 1,0").unwrap();
/// assert_eq!(swap.outputs(), 2);
/// assert_eq!(swap.inputs(), 2);
/// assert!(Remix::parse("1,x").is_err());
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct Remix {
    rows: Vec<Vec<f32>>,
}

impl Remix {
    /// Parses `"g,g,...; g,g,..."`; every row must have the same number of gains, each finite
    /// and within ±[`MAX_REMIX_GAIN`].
    pub fn parse(text: &str) -> Result<Self> {
        let bad = |why: String| {
            Error::invalid_parameter(format!("Invalid remix matrix: {why}"), "remix", text)
                .with_expected(
                    "one row per output channel separated by ';', one gain per input channel \
                     separated by ','",
                )
                .with_suggestion(
                    "e.g. --remix '0.5,0.5' (stereo to mono) or --remix '0,1;1,0' (swap)",
                )
        };
        let mut rows = Vec::new();
        for (r, row) in text.split(';').enumerate() {
            let mut gains = Vec::new();
            for cell in row.split(',') {
                let cell = cell.trim();
                let g: f32 = cell
                    .parse()
                    .map_err(|_| bad(format!("'{cell}' in row {} is not a number", r + 1)))?;
                if !g.is_finite() || g.abs() > MAX_REMIX_GAIN {
                    return Err(bad(format!(
                        "gain {cell} in row {} is outside ±{MAX_REMIX_GAIN}",
                        r + 1
                    )));
                }
                gains.push(g);
            }
            rows.push(gains);
        }
        let inputs = rows[0].len();
        if let Some((r, row)) = rows.iter().enumerate().find(|(_, row)| row.len() != inputs) {
            return Err(bad(format!(
                "row {} has {} gains but row 1 has {inputs}",
                r + 1,
                row.len()
            )));
        }
        if rows.len() > MAX_CHANNELS {
            return Err(bad(format!("{} rows (at most {MAX_CHANNELS})", rows.len())));
        }
        Ok(Remix { rows })
    }

    /// Output channels (rows).
    pub fn outputs(&self) -> usize {
        self.rows.len()
    }

    /// Input channels the matrix expects (columns).
    pub fn inputs(&self) -> usize {
        self.rows[0].len()
    }
}

/// How the channels of a stream become the output's (see the module docs).
#[derive(Debug, Clone, PartialEq)]
pub enum ChannelMap {
    /// Same count: untouched.
    Identity,
    /// Every output channel is `gains[out][in]`-weighted sum of the inputs.
    Matrix(Vec<Vec<f32>>),
}

impl ChannelMap {
    /// The map from `inputs` channels to `outputs` (or to the remix's rows). Fails when the
    /// counts have no documented rule or the remix expects another input count; `name` is the
    /// input's name for the message.
    pub fn new(
        inputs: usize,
        outputs: Option<usize>,
        remix: Option<&Remix>,
        name: &str,
    ) -> Result<Self> {
        if let Some(remix) = remix {
            if remix.inputs() != inputs {
                return Err(Error::invalid_parameter(
                    format!(
                        "The remix matrix has {} gains per row but '{name}' has {inputs} channels",
                        remix.inputs()
                    ),
                    "remix",
                    remix.inputs(),
                )
                .with_suggestion(format!("give {inputs} gains in every row")));
            }
            return Ok(ChannelMap::Matrix(remix.rows.clone()));
        }
        let outputs = outputs.unwrap_or(inputs);
        Ok(if outputs == inputs {
            ChannelMap::Identity
        } else if outputs == 1 {
            ChannelMap::Matrix(vec![vec![1.0 / inputs as f32; inputs]])
        } else if inputs == 1 {
            ChannelMap::Matrix(vec![vec![1.0]; outputs])
        } else {
            return Err(Error::invalid_parameter(
                format!(
                    "'{name}' has {inputs} channels: rtfx converts {inputs} to {outputs} channels \
                     only with an explicit matrix"
                ),
                "channels",
                outputs,
            )
            .with_suggestion(format!(
                "give --remix with {outputs} rows of {inputs} gains (rows ';', gains ','), or \
                 --channels 1 for the mean of all channels"
            )));
        })
    }

    /// Output channels for `inputs` input channels.
    pub fn outputs(&self, inputs: usize) -> usize {
        match self {
            ChannelMap::Identity => inputs,
            ChannelMap::Matrix(rows) => rows.len(),
        }
    }

    /// Writes `input` (planar, equal lengths) mapped into `output`, resizing its channels to
    /// the input's length.
    pub fn apply(&self, input: &[&[f32]], output: &mut Vec<Vec<f32>>) {
        let frames = input.first().map_or(0, |c| c.len());
        match self {
            ChannelMap::Identity => {
                output.resize_with(input.len(), Vec::new);
                for (o, i) in output.iter_mut().zip(input) {
                    o.clear();
                    o.extend_from_slice(i);
                }
            }
            ChannelMap::Matrix(rows) => {
                output.resize_with(rows.len(), Vec::new);
                for (o, gains) in output.iter_mut().zip(rows) {
                    o.clear();
                    o.resize(frames, 0.0);
                    for (&g, i) in gains.iter().zip(input) {
                        if g != 0.0 {
                            for (y, &x) in o.iter_mut().zip(*i) {
                                *y += g * x;
                            }
                        }
                    }
                }
            }
        }
    }
}

// --- libsoxr, loaded at run time ------------------------------------------------------------

/// `soxr_io_spec_t` (soxr.h, libsoxr 0.1.x).
#[repr(C)]
#[derive(Clone, Copy)]
struct SoxrIoSpec {
    itype: std::ffi::c_int,
    otype: std::ffi::c_int,
    scale: f64,
    e: *mut std::ffi::c_void,
    flags: std::ffi::c_ulong,
}

/// `soxr_quality_spec_t`.
#[repr(C)]
#[derive(Clone, Copy)]
struct SoxrQualitySpec {
    precision: f64,
    phase_response: f64,
    passband_end: f64,
    stopband_begin: f64,
    e: *mut std::ffi::c_void,
    flags: std::ffi::c_ulong,
}

/// `soxr_runtime_spec_t`.
#[repr(C)]
#[derive(Clone, Copy)]
struct SoxrRuntimeSpec {
    log2_min_dft_size: std::ffi::c_uint,
    log2_large_dft_size: std::ffi::c_uint,
    coef_size_kbytes: std::ffi::c_uint,
    num_threads: std::ffi::c_uint,
    e: *mut std::ffi::c_void,
    flags: std::ffi::c_ulong,
}

type SoxrHandle = *mut std::ffi::c_void;
type SoxrError = *const std::ffi::c_char;

/// `SOXR_FLOAT32_S`: planar ("split") 32-bit float.
const SOXR_FLOAT32_S: std::ffi::c_int = 4;
/// `SOXR_VHQ` (= `SOXR_28_BITQ`): the recipe of sox's `rate -v`.
const SOXR_VHQ: std::ffi::c_ulong = 6;

/// The libsoxr functions rtfx calls.
struct Soxr {
    create: unsafe extern "C" fn(
        f64,
        f64,
        std::ffi::c_uint,
        *mut SoxrError,
        *const SoxrIoSpec,
        *const SoxrQualitySpec,
        *const SoxrRuntimeSpec,
    ) -> SoxrHandle,
    process: unsafe extern "C" fn(
        SoxrHandle,
        *const *const f32,
        usize,
        *mut usize,
        *const *mut f32,
        usize,
        *mut usize,
    ) -> SoxrError,
    delete: unsafe extern "C" fn(SoxrHandle),
    io_spec: unsafe extern "C" fn(std::ffi::c_int, std::ffi::c_int) -> SoxrIoSpec,
    quality_spec: unsafe extern "C" fn(std::ffi::c_ulong, std::ffi::c_ulong) -> SoxrQualitySpec,
    runtime_spec: unsafe extern "C" fn(std::ffi::c_uint) -> SoxrRuntimeSpec,
    /// Keeps the functions above valid.
    _library: libloading::Library,
}

/// libsoxr as rtfx finds it (`RTFX_SOXR_LIBRARY` names another build).
const SOXR_LIBRARY: SystemLibrary = SystemLibrary {
    purpose: "Sample-rate conversion",
    name: "libsoxr",
    files: [&["libsoxr.so.0"], &["libsoxr.0.dylib"], &["soxr.dll"]],
    override_var: "RTFX_SOXR_LIBRARY",
    install: "Debian/Ubuntu: apt-get install libsoxr0; Fedora: dnf install soxr; macOS: brew \
              install libsoxr; or render without --rate",
};

/// Loads libsoxr once per process.
fn soxr() -> Result<Arc<Soxr>> {
    static LOADED: OnceLock<Loaded<Soxr>> = OnceLock::new();
    load_once(&LOADED, &SOXR_LIBRARY, |library| {
        // SAFETY: each symbol is read with the signature soxr.h gives; the library is kept
        // in the struct, so the pointers stay valid.
        unsafe {
            Ok(Soxr {
                create: symbol(&library, b"soxr_create\0")?,
                process: symbol(&library, b"soxr_process\0")?,
                delete: symbol(&library, b"soxr_delete\0")?,
                io_spec: symbol(&library, b"soxr_io_spec\0")?,
                quality_spec: symbol(&library, b"soxr_quality_spec\0")?,
                runtime_spec: symbol(&library, b"soxr_runtime_spec\0")?,
                _library: library,
            })
        }
    })
}

/// A streaming sample-rate converter over planar `f32` (see the module docs).
///
/// ```no_run
/// use rtfx::offline::convert::RateConverter;
///
/// let mut converter = RateConverter::new(44_100, 48_000, 1)?;
/// let input = vec![0.25f32; 44_100];
/// let mut output = vec![Vec::new()];
/// converter.process(&[&input], &mut output)?;
/// let mut rest = vec![Vec::new()];
/// converter.finish(&mut rest)?;
/// assert_eq!(output[0].len() + rest[0].len(), 48_000);
/// # Ok::<(), rtfx::Error>(())
/// ```
pub struct RateConverter {
    soxr: Arc<Soxr>,
    handle: SoxrHandle,
    in_rate: u32,
    out_rate: u32,
    channels: usize,
    frames_in: u64,
    frames_out: u64,
}

// SAFETY: the handle is used by one thread at a time (every method takes `&mut self`), and
// libsoxr keeps no thread-local state.
unsafe impl Send for RateConverter {}

impl RateConverter {
    /// A converter of `channels` channels from `in_rate` to `out_rate`.
    pub fn new(in_rate: u32, out_rate: u32, channels: usize) -> Result<Self> {
        if in_rate == 0 || out_rate == 0 || channels == 0 {
            return Err(Error::invalid_range(
                "A rate converter needs non-zero rates and channels",
                "rate",
                format!("{in_rate} -> {out_rate} Hz, {channels} channels"),
            ));
        }
        let soxr = soxr()?;
        let mut error: SoxrError = std::ptr::null();
        // SAFETY: the spec functions return plain structs; `create` reads them and writes
        // `error`, all valid for the call.
        let handle = unsafe {
            let io = (soxr.io_spec)(SOXR_FLOAT32_S, SOXR_FLOAT32_S);
            let quality = (soxr.quality_spec)(SOXR_VHQ, 0);
            // One thread: the renderer already overlaps decoding with processing, and batches
            // run files in parallel.
            let runtime = (soxr.runtime_spec)(1);
            (soxr.create)(
                f64::from(in_rate),
                f64::from(out_rate),
                channels as std::ffi::c_uint,
                &mut error,
                &io,
                &quality,
                &runtime,
            )
        };
        if handle.is_null() || !error.is_null() {
            return Err(Error::stream(format!(
                "libsoxr cannot convert {in_rate} Hz to {out_rate} Hz: {}",
                soxr_message(error)
            )));
        }
        Ok(RateConverter {
            soxr,
            handle,
            in_rate,
            out_rate,
            channels,
            frames_in: 0,
            frames_out: 0,
        })
    }

    /// Output rate.
    pub fn out_rate(&self) -> u32 {
        self.out_rate
    }

    /// Converts `input` (planar, `channels` channels of equal length), replacing `output`'s
    /// contents with what is ready (possibly nothing).
    pub fn process(&mut self, input: &[&[f32]], output: &mut Vec<Vec<f32>>) -> Result<()> {
        let frames = input.first().map_or(0, |c| c.len());
        self.frames_in += frames as u64;
        self.run(Some(input), frames, output)
    }

    /// Ends the input: `output` gets the rest, so that the whole output has exactly
    /// [`output_frames`] of the input's length.
    pub fn finish(&mut self, output: &mut Vec<Vec<f32>>) -> Result<()> {
        self.run(None, 0, output)?;
        let want = output_frames(self.frames_in, self.in_rate, self.out_rate);
        // libsoxr ends on the exact length already; this only guards its rounding.
        let have = self.frames_out;
        let len = output.first().map_or(0, |c| c.len()) as u64;
        let keep = (len + want).saturating_sub(have) as usize;
        for c in output.iter_mut() {
            c.resize(keep, 0.0);
        }
        self.frames_out = want;
        Ok(())
    }

    /// One call sequence of `soxr_process`: all of `input`, or (None) the flush.
    fn run(
        &mut self,
        input: Option<&[&[f32]]>,
        frames: usize,
        output: &mut Vec<Vec<f32>>,
    ) -> Result<()> {
        output.resize_with(self.channels, Vec::new);
        for c in output.iter_mut() {
            c.clear();
        }
        let mut offset = 0usize;
        loop {
            // Room for what this input gives, plus libsoxr's internal buffer on a flush.
            let room = output_frames((frames - offset) as u64, self.in_rate, self.out_rate)
                as usize
                + 4096;
            let start = output[0].len();
            for c in output.iter_mut() {
                c.resize(start + room, 0.0);
            }
            let outs: Vec<*mut f32> = output.iter_mut().map(|c| c[start..].as_mut_ptr()).collect();
            let (mut used, mut made) = (0usize, 0usize);
            let ins: Vec<*const f32>;
            let in_ptr = match input {
                Some(input) => {
                    ins = input.iter().map(|c| c[offset..].as_ptr()).collect();
                    ins.as_ptr()
                }
                None => std::ptr::null(),
            };
            // SAFETY: every pointer covers at least the lengths passed (`frames - offset`
            // input frames, `room` output frames per channel), and `channels` pointers each.
            let error = unsafe {
                (self.soxr.process)(
                    self.handle,
                    in_ptr,
                    frames - offset,
                    &mut used,
                    outs.as_ptr(),
                    room,
                    &mut made,
                )
            };
            if !error.is_null() {
                return Err(Error::stream(format!(
                    "libsoxr failed converting {} Hz to {} Hz: {}",
                    self.in_rate,
                    self.out_rate,
                    soxr_message(error)
                )));
            }
            for c in output.iter_mut() {
                c.truncate(start + made);
            }
            self.frames_out += made as u64;
            offset += used;
            let done = match input {
                Some(_) => offset >= frames && made < room,
                None => made == 0,
            };
            if done {
                return Ok(());
            }
        }
    }
}

impl Drop for RateConverter {
    fn drop(&mut self) {
        // SAFETY: the handle came from soxr_create and is deleted once.
        unsafe { (self.soxr.delete)(self.handle) }
    }
}

/// A libsoxr error string.
fn soxr_message(error: SoxrError) -> String {
    if error.is_null() {
        "unknown error".into()
    } else {
        // SAFETY: libsoxr's errors are static NUL-terminated strings.
        unsafe { std::ffi::CStr::from_ptr(error) }
            .to_string_lossy()
            .into_owned()
    }
}

/// What the output's rate and channels should be (`--rate`, `--channels`, `--remix`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ConvertOptions {
    /// Output rate; `None` keeps the input's.
    pub rate: Option<u32>,
    /// Output channels; `None` keeps the input's (or the remix's rows).
    pub channels: Option<usize>,
    /// Explicit channel matrix.
    pub remix: Option<Remix>,
    /// Run the chain after the conversion (at the output's rate and channels) instead of
    /// before it (at the input's).
    pub chain_after: bool,
}

impl ConvertOptions {
    /// Whether anything is asked for.
    pub fn is_set(&self) -> bool {
        self.rate.is_some() || self.channels.is_some() || self.remix.is_some()
    }
}

/// Rate and channel conversion of one stream: the channel map, then the rate converter when
/// channels are fewer (less to resample), the other way round when they are more.
pub struct Conversion {
    map: ChannelMap,
    rate: Option<RateConverter>,
    in_rate: u32,
    in_channels: usize,
    out_channels: usize,
    /// Between the two stages.
    middle: Vec<Vec<f32>>,
}

impl Conversion {
    /// The conversion `options` asks for from a stream of `in_rate` and `in_channels`
    /// (`name` is the input's name for errors).
    pub fn new(
        options: &ConvertOptions,
        in_rate: u32,
        in_channels: usize,
        name: &str,
    ) -> Result<Self> {
        let map = ChannelMap::new(in_channels, options.channels, options.remix.as_ref(), name)?;
        let out_channels = map.outputs(in_channels);
        let out_rate = options.rate.unwrap_or(in_rate);
        let rate = if out_rate != in_rate {
            Some(RateConverter::new(
                in_rate,
                out_rate,
                in_channels.min(out_channels),
            )?)
        } else {
            None
        };
        Ok(Conversion {
            map,
            rate,
            in_rate,
            in_channels,
            out_channels,
            middle: Vec::new(),
        })
    }

    /// Output rate.
    pub fn out_rate(&self) -> u32 {
        self.rate.as_ref().map_or(self.in_rate, |r| r.out_rate())
    }

    /// Output channels.
    pub fn out_channels(&self) -> usize {
        self.out_channels
    }

    /// Output frames for `frames` input frames.
    pub fn output_frames(&self, frames: u64) -> u64 {
        output_frames(frames, self.in_rate, self.out_rate())
    }

    /// Converts a planar block; `output` is replaced with what is ready.
    pub fn process(&mut self, input: &[&[f32]], output: &mut Vec<Vec<f32>>) -> Result<()> {
        let Some(rate) = self.rate.as_mut() else {
            self.map.apply(input, output);
            return Ok(());
        };
        if self.out_channels <= self.in_channels {
            self.map.apply(input, &mut self.middle);
            crate::dsp::with_planar(&self.middle, 0..frames_of(&self.middle), |view| {
                rate.process(view, output)
            })
        } else {
            rate.process(input, &mut self.middle)?;
            let map = &self.map;
            crate::dsp::with_planar(&self.middle, 0..frames_of(&self.middle), |view| {
                map.apply(view, output);
                Ok(())
            })
        }
    }

    /// Ends the stream: `output` gets the converter's last frames (none without one).
    pub fn finish(&mut self, output: &mut Vec<Vec<f32>>) -> Result<()> {
        let Some(rate) = self.rate.as_mut() else {
            output.resize_with(self.out_channels, Vec::new);
            output.iter_mut().for_each(Vec::clear);
            return Ok(());
        };
        if self.out_channels <= self.in_channels {
            rate.finish(output)
        } else {
            rate.finish(&mut self.middle)?;
            let map = &self.map;
            crate::dsp::with_planar(&self.middle, 0..frames_of(&self.middle), |view| {
                map.apply(view, output);
                Ok(())
            })
        }
    }
}

fn frames_of(planar: &[Vec<f32>]) -> usize {
    planar.first().map_or(0, Vec::len)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sine(freq: f64, rate: u32, frames: usize) -> Vec<f32> {
        (0..frames)
            .map(|n| {
                (0.5 * (std::f64::consts::TAU * freq * n as f64 / f64::from(rate)).sin()) as f32
            })
            .collect()
    }

    /// Converts in blocks of `block` frames; the whole output.
    fn convert(input: &[Vec<f32>], in_rate: u32, out_rate: u32, block: usize) -> Vec<Vec<f32>> {
        let mut c = RateConverter::new(in_rate, out_rate, input.len()).unwrap();
        let mut all = vec![Vec::new(); input.len()];
        let mut out = Vec::new();
        let frames = input[0].len();
        let mut at = 0;
        while at < frames {
            let end = (at + block).min(frames);
            crate::dsp::with_planar(input, at..end, |view| c.process(view, &mut out)).unwrap();
            for (a, o) in all.iter_mut().zip(&out) {
                a.extend_from_slice(o);
            }
            at = end;
        }
        c.finish(&mut out).unwrap();
        for (a, o) in all.iter_mut().zip(&out) {
            a.extend_from_slice(o);
        }
        all
    }

    #[test]
    fn output_has_the_exact_length_for_any_block_size() {
        for (in_rate, out_rate, frames) in [
            (44_100, 48_000, 44_101),
            (48_000, 16_000, 10_001),
            (8000, 96_000, 777),
        ] {
            let input = vec![sine(440.0, in_rate, frames)];
            for block in [1, 7, 4096, frames] {
                let out = convert(&input, in_rate, out_rate, block);
                assert_eq!(
                    out[0].len() as u64,
                    output_frames(frames as u64, in_rate, out_rate),
                    "{in_rate}->{out_rate}, block {block}"
                );
            }
        }
    }

    #[test]
    fn output_does_not_depend_on_the_block_size() {
        let input = vec![sine(1000.0, 44_100, 30_000), sine(3000.0, 44_100, 30_000)];
        let whole = convert(&input, 44_100, 48_000, 30_000);
        for block in [1, 100, 4097] {
            assert_eq!(
                convert(&input, 44_100, 48_000, block),
                whole,
                "block {block}"
            );
        }
    }

    /// Least-squares fit of `a·sin + b·cos` at `freq` to `y` (frames `range` at `rate`): the
    /// gain in dB against 0.5, the phase in rad, and the largest residual.
    fn fit(y: &[f32], freq: f64, rate: u32, range: std::ops::Range<usize>) -> (f64, f64, f64) {
        let w = std::f64::consts::TAU * freq / f64::from(rate);
        let (mut ss, mut cc, mut sc, mut ys, mut yc) = (0.0, 0.0, 0.0, 0.0, 0.0);
        for n in range.clone() {
            let (s, c, v) = ((w * n as f64).sin(), (w * n as f64).cos(), f64::from(y[n]));
            (ss, cc, sc, ys, yc) = (ss + s * s, cc + c * c, sc + s * c, ys + v * s, yc + v * c);
        }
        let det = ss * cc - sc * sc;
        let (a, b) = ((ys * cc - yc * sc) / det, (yc * ss - ys * sc) / det);
        let residual = range
            .map(|n| (f64::from(y[n]) - a * (w * n as f64).sin() - b * (w * n as f64).cos()).abs())
            .fold(0.0, f64::max);
        (20.0 * (a.hypot(b) / 0.5).log10(), b.atan2(a), residual)
    }

    #[test]
    fn tones_keep_their_level_and_time_and_nothing_else_above_minus_120_db() {
        // Passband within 0.01 dB up to 0.9 of the lower Nyquist frequency, output sample n at
        // input time n / 48000 s (phase 0), and what is not the tone below -120 dB of it.
        for freq in [1000.0, 0.9 * 22_050.0] {
            let out = convert(&[sine(freq, 44_100, 44_100)], 44_100, 48_000, 1024);
            let (gain_db, phase, residual) = fit(&out[0], freq, 48_000, 2000..46_000);
            assert!(gain_db.abs() < 0.01, "{freq} Hz: gain {gain_db} dB");
            assert!(phase.abs() < 1e-6, "{freq} Hz: phase {phase} rad");
            assert!(residual < 0.5e-6, "{freq} Hz: residual {residual}");
            // The end comes from the flush, not from padding.
            let end_peak = out[0][47_900..].iter().fold(0.0f32, |m, x| m.max(x.abs()));
            assert!(
                end_peak > 0.4,
                "{freq} Hz: the last frames peak at {end_peak}"
            );
        }
    }

    #[test]
    fn tones_above_the_new_nyquist_frequency_are_gone() {
        // 48 -> 16 kHz: 8.4 to 23 kHz must not alias into the output (below -120 dB).
        for freq in [8400.0, 12_000.0, 23_000.0] {
            let out = convert(&[sine(freq, 48_000, 48_000)], 48_000, 16_000, 4096);
            let peak = out[0][1000..15_000]
                .iter()
                .fold(0.0f32, |m, x| m.max(x.abs()));
            assert!(peak < 0.5e-6, "{freq} Hz leaks at {peak}");
        }
    }

    #[test]
    fn mono_from_stereo_is_the_mean_and_stereo_from_mono_copies() {
        let down = ChannelMap::new(2, Some(1), None, "x").unwrap();
        let mut out = Vec::new();
        down.apply(&[&[1.0, 0.0], &[0.0, -0.5]], &mut out);
        assert_eq!(out, vec![vec![0.5, -0.25]]);
        let up = ChannelMap::new(1, Some(2), None, "x").unwrap();
        up.apply(&[&[0.25, -1.0]], &mut out);
        assert_eq!(out, vec![vec![0.25, -1.0], vec![0.25, -1.0]]);
        let swap = Remix::parse("0,1;1,0").unwrap();
        ChannelMap::new(2, None, Some(&swap), "x")
            .unwrap()
            .apply(&[&[1.0], &[2.0]], &mut out);
        assert_eq!(out, vec![vec![2.0], vec![1.0]]);
    }

    #[test]
    fn unruled_channel_counts_and_bad_matrices_are_refused_with_the_fix() {
        let e = ChannelMap::new(6, Some(2), None, "film.wav")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("film.wav") && e.contains("6 channels") && e.contains("--remix"),
            "{e}"
        );
        let e = ChannelMap::new(2, None, Some(&Remix::parse("1,1,1").unwrap()), "a.wav")
            .unwrap_err()
            .to_string();
        assert!(e.contains("3 gains") && e.contains("2 channels"), "{e}");
        for bad in ["1,2;3", "", "1;;1", "inf", "100"] {
            assert!(Remix::parse(bad).is_err(), "{bad}");
        }
        assert!(check_rate(0).is_err() && check_rate(10_000_000).is_err());
        assert!(check_channels(0).is_err() && check_channels(33).is_err());
    }
}

//! The output formats ([`OutputFormat`], from the file extension) and sample subtypes.

use std::fmt;
use std::path::Path;

use crate::error::{Error, Result};

/// Output container, chosen from the output file's extension.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutputFormat {
    /// RIFF WAV.
    Wav,
    /// FLAC (16 or 24 bit).
    Flac,
    /// Raw interleaved little-endian samples, no header (`.raw`, or `--format raw` on stdout).
    Raw,
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
            "raw" => Ok(OutputFormat::Raw),
            _ => Err(Error::invalid_parameter(
                format!(
                    "Cannot write output '{}': unsupported extension '.{ext}'",
                    path.display()
                ),
                "output",
                path.display(),
            )
            .with_expected(".wav, .flac or .raw")
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
            OutputFormat::Wav | OutputFormat::Raw => Subtype::Float,
            OutputFormat::Flac => Subtype::Pcm24,
        }
    }
}

impl fmt::Display for OutputFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            OutputFormat::Wav => "WAV",
            OutputFormat::Flac => "FLAC",
            OutputFormat::Raw => "RAW",
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

    /// Parses a raw sample layout: "f32le", "s16le", "s24le" or "s32le" (ffmpeg's names).
    ///
    /// ```
    /// use rtfx::offline::audio_io::Subtype;
    /// assert_eq!(Subtype::parse_raw("s16le").unwrap(), Subtype::Pcm16);
    /// assert!(Subtype::parse_raw("u8").is_err());
    /// ```
    pub fn parse_raw(text: &str) -> Result<Self> {
        match text.to_ascii_lowercase().as_str() {
            "f32le" => Ok(Subtype::Float),
            "s16le" => Ok(Subtype::Pcm16),
            "s24le" => Ok(Subtype::Pcm24),
            "s32le" => Ok(Subtype::Pcm32),
            _ => Err(
                Error::invalid_parameter("Unknown raw sample format", "input-format", text)
                    .with_expected("f32le, s16le, s24le or s32le (little-endian, interleaved)")
                    .with_suggestion("e.g. --input-format s16le"),
            ),
        }
    }

    /// The raw layout's name ("f32le", "s16le"…).
    pub fn raw_name(self) -> &'static str {
        match self {
            Subtype::Pcm16 => "s16le",
            Subtype::Pcm24 => "s24le",
            Subtype::Pcm32 => "s32le",
            Subtype::Float => "f32le",
        }
    }

    /// The WAV reader's encoding of these samples.
    pub(super) fn raw_encoding(self) -> super::wav_reader::WavEncoding {
        use super::wav_reader::WavEncoding;
        match self {
            Subtype::Pcm16 => WavEncoding::I16,
            Subtype::Pcm24 => WavEncoding::I24,
            Subtype::Pcm32 => WavEncoding::I32,
            Subtype::Float => WavEncoding::F32,
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

//! The output formats ([`OutputFormat`], from the file extension) and sample subtypes.

use std::fmt;
use std::path::Path;

use super::lossy::LossyQuality;
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
    /// AIFF (16, 24 or 32-bit big-endian integers).
    Aiff,
    /// MP3 through LAME (lossy).
    Mp3,
    /// Ogg Opus through libopusenc (lossy; 48 kHz inside, the input's rate in the header).
    Opus,
    /// Ogg Vorbis (lossy).
    Vorbis,
}

impl OutputFormat {
    /// The format for `path`'s extension (case-insensitive), or an error naming the
    /// extensions rtfx writes.
    ///
    /// ```
    /// use rtfx::offline::audio_io::OutputFormat;
    /// assert_eq!(OutputFormat::from_path("a/b.WAV".as_ref()).unwrap(), OutputFormat::Wav);
    /// assert!(OutputFormat::from_path("song.m4a".as_ref()).is_err());
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
            "aif" | "aiff" => Ok(OutputFormat::Aiff),
            "mp3" => Ok(OutputFormat::Mp3),
            "opus" => Ok(OutputFormat::Opus),
            "ogg" | "oga" => Ok(OutputFormat::Vorbis),
            _ => Err(Error::invalid_parameter(
                format!(
                    "Cannot write output '{}': unsupported extension '.{ext}'",
                    path.display()
                ),
                "output",
                path.display(),
            )
            .with_expected(".wav, .flac, .aiff, .mp3, .ogg, .opus or .raw")
            .with_suggestion("name the output with one of these extensions (rtfx never writes data under another format's name)")),
        }
    }

    /// Checks that this format holds `subtype` (FLAC: 16 or 24 bit), before anything is
    /// rendered.
    ///
    /// # Errors
    /// The subtype, what the format holds, and the fix.
    pub fn check_subtype(self, subtype: Subtype) -> Result<()> {
        if self.is_lossy() {
            return Err(Error::invalid_parameter(
                format!("{self} is lossy: it has no sample subtype"),
                "subtype",
                subtype.name().to_ascii_lowercase(),
            )
            .with_suggestion("drop --subtype; --quality or --bitrate set a lossy encoder's size"));
        }
        if self == OutputFormat::Aiff && subtype == Subtype::Float {
            return Err(Error::invalid_parameter(
                "AIFF holds 16-, 24- or 32-bit integer samples only",
                "subtype",
                "float",
            )
            .with_expected("pcm16, pcm24 or pcm32")
            .with_suggestion("use --subtype pcm24, or write a .wav for float output"));
        }
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
            // Lossy encoders take the float signal itself: never dithered to integers first.
            OutputFormat::Wav
            | OutputFormat::Raw
            | OutputFormat::Mp3
            | OutputFormat::Opus
            | OutputFormat::Vorbis => Subtype::Float,
            OutputFormat::Flac | OutputFormat::Aiff => Subtype::Pcm24,
        }
    }

    /// Checks `--quality`/`--bitrate` against this format: MP3 takes a VBR quality 0 (best)
    /// to 9 or a constant bitrate LAME offers; Opus a bitrate of 6 to 510 kbit/s; lossless
    /// formats neither.
    ///
    /// ```
    /// use rtfx::offline::audio_io::{LossyQuality, OutputFormat};
    /// assert!(OutputFormat::Mp3.check_quality(LossyQuality::Bitrate(192)).is_ok());
    /// assert!(OutputFormat::Mp3.check_quality(LossyQuality::Bitrate(100)).is_err());
    /// assert!(OutputFormat::Flac.check_quality(LossyQuality::Quality(2.0)).is_err());
    /// ```
    pub fn check_quality(self, quality: LossyQuality) -> Result<()> {
        use super::lossy::MP3_BITRATES;
        let bad = |message: String, value: String, fix: &str| {
            Err(Error::invalid_parameter(message, "quality", value)
                .with_suggestion(fix.to_string()))
        };
        match (self, quality) {
            (_, LossyQuality::Default) => Ok(()),
            (OutputFormat::Mp3, LossyQuality::Quality(q)) if (0.0..=9.0).contains(&q) => Ok(()),
            (OutputFormat::Mp3, LossyQuality::Quality(q)) => bad(
                "MP3 quality is LAME's VBR scale, 0 (best) to 9 (smallest)".into(),
                q.to_string(),
                "e.g. --quality 2 (about 190 kbit/s in stereo)",
            ),
            (OutputFormat::Mp3, LossyQuality::Bitrate(b)) if MP3_BITRATES.contains(&b) => Ok(()),
            (OutputFormat::Mp3, LossyQuality::Bitrate(b)) => bad(
                format!("MP3 has no {b} kbit/s bitrate"),
                b.to_string(),
                "use one of 8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160, 192, 224, 256, 320",
            ),
            (OutputFormat::Opus, LossyQuality::Bitrate(b)) if (6..=510).contains(&b) => Ok(()),
            (OutputFormat::Opus, LossyQuality::Bitrate(b)) => bad(
                "Opus bitrates run from 6 to 510 kbit/s".into(),
                b.to_string(),
                "e.g. --bitrate 96 (speech 32-64, music 96-160)",
            ),
            (OutputFormat::Vorbis, LossyQuality::Quality(q)) if (-1.0..=10.0).contains(&q) => {
                Ok(())
            }
            (OutputFormat::Vorbis, LossyQuality::Quality(q)) => bad(
                "Vorbis quality runs from -1 (smallest) to 10 (best), as oggenc's".into(),
                q.to_string(),
                "e.g. --quality 5 (about 160 kbit/s in stereo)",
            ),
            (OutputFormat::Vorbis, LossyQuality::Bitrate(b)) if (32..=500).contains(&b) => Ok(()),
            (OutputFormat::Vorbis, LossyQuality::Bitrate(b)) => bad(
                "Vorbis average bitrates run from 32 to 500 kbit/s".into(),
                b.to_string(),
                "e.g. --bitrate 160, or --quality 5",
            ),
            (OutputFormat::Opus, LossyQuality::Quality(q)) => bad(
                "Opus takes a bitrate, not a quality".into(),
                q.to_string(),
                "use --bitrate KBPS, e.g. --bitrate 128",
            ),
            (lossless, _) => bad(
                format!("{lossless} is not lossy: --quality and --bitrate do not apply"),
                format!("{quality:?}"),
                "drop them, or write .mp3 or .opus",
            ),
        }
    }

    /// Whether the format is a lossy codec (MP3, Opus, Vorbis).
    pub fn is_lossy(self) -> bool {
        matches!(
            self,
            OutputFormat::Mp3 | OutputFormat::Opus | OutputFormat::Vorbis
        )
    }

    /// Whether the format carries title/artist/album/comment tags rtfx writes.
    pub fn holds_tags(self) -> bool {
        matches!(
            self,
            OutputFormat::Mp3 | OutputFormat::Opus | OutputFormat::Aiff
        )
    }
}

impl fmt::Display for OutputFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            OutputFormat::Wav => "WAV",
            OutputFormat::Flac => "FLAC",
            OutputFormat::Raw => "RAW",
            OutputFormat::Aiff => "AIFF",
            OutputFormat::Mp3 => "MP3",
            OutputFormat::Opus => "OPUS",
            OutputFormat::Vorbis => "OGG",
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

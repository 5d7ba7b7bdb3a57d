//! The one error family of rtfx, modelled on torchfx's exception hierarchy.
//!
//! Every variant carries [`ErrorDetails`]: a message plus the optional parameter name, the value
//! that was given, what was expected and a suggestion. `Display` joins the present parts with
//! `" | "`, as torchfx does:
//!
//! ```
//! use rtfx::Error;
//! let e = Error::invalid_parameter("feedback must be in [0, 0.95]", "feedback", 1.2)
//!     .with_suggestion("use a value of 0.95 or less");
//! assert_eq!(
//!     e.to_string(),
//!     "feedback must be in [0, 0.95] | Parameter: feedback | Got: 1.2 | Suggestion: use a value of 0.95 or less"
//! );
//! ```

use std::fmt;

/// Result type used throughout the library.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// The parts every error carries; absent parts are not printed.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ErrorDetails {
    /// What went wrong, in one sentence.
    pub message: String,
    /// The parameter, file or setting at fault.
    pub parameter_name: Option<String>,
    /// The value that was given, as text.
    pub actual_value: Option<String>,
    /// What would have been accepted.
    pub expected: Option<String>,
    /// How to fix it.
    pub suggestion: Option<String>,
}

impl ErrorDetails {
    /// Details with only a message.
    pub fn new(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            ..Self::default()
        }
    }
}

impl fmt::Display for ErrorDetails {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)?;
        if let Some(p) = &self.parameter_name {
            write!(f, " | Parameter: {p}")?;
        }
        if let Some(v) = &self.actual_value {
            write!(f, " | Got: {v}")?;
        }
        if let Some(e) = &self.expected {
            write!(f, " | Expected: {e}")?;
        }
        if let Some(s) = &self.suggestion {
            write!(f, " | Suggestion: {s}")?;
        }
        Ok(())
    }
}

/// The rtfx error family (torchfx's `TorchFXError` tree as one enum).
///
/// torchfx's class hierarchy maps onto [`Error::is_realtime`] (RealtimeError and its
/// subclasses) and [`Error::is_audio_processing`] (the buffer errors).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// A real-time processor misuse or failure (torchfx `RealtimeError`).
    #[error("{0}")]
    Realtime(Box<ErrorDetails>),
    /// An audio stream could not be opened, started, stopped or used (torchfx `StreamError`).
    #[error("{0}")]
    Stream(Box<ErrorDetails>),
    /// An audio or compute backend is missing (torchfx `BackendNotAvailableError`).
    #[error("{details}")]
    BackendNotAvailable {
        /// The backend's name, e.g. "cuda" or "cpal".
        backend_name: String,
        /// Message and suggestion.
        details: Box<ErrorDetails>,
    },
    /// A ring buffer read more than it held (torchfx `BufferUnderrunError`).
    #[error("{0}")]
    BufferUnderrun(Box<ErrorDetails>),
    /// A ring buffer was asked to hold more than it can (torchfx `BufferOverrunError`).
    #[error("{0}")]
    BufferOverrun(Box<ErrorDetails>),
    /// A parameter is unknown or its value is invalid (torchfx `InvalidParameterError`).
    #[error("{0}")]
    InvalidParameter(Box<ErrorDetails>),
    /// A sample rate is out of range (torchfx `InvalidSampleRateError`).
    #[error("{0}")]
    InvalidSampleRate(Box<ErrorDetails>),
    /// A size or count is out of range (torchfx `InvalidRangeError`).
    #[error("{0}")]
    InvalidRange(Box<ErrorDetails>),
    /// Reading or writing a file failed.
    #[error("{0}")]
    Io(Box<ErrorDetails>),
    /// A file, chain text or preset is malformed or of an unsupported format.
    #[error("{0}")]
    Format(Box<ErrorDetails>),
}

/// Most characters of user text an error echoes; longer text is cut by [`clip`].
pub const MAX_ECHO_CHARS: usize = 60;

/// User text as an error echoes it: unchanged up to [`MAX_ECHO_CHARS`] characters, else its
/// start, an ellipsis and its full length, so a 100 KB name never makes a 100 KB message.
///
/// ```
/// let long = "x".repeat(100_000);
/// let shown = rtfx::error::clip(&long);
/// assert!(shown.ends_with("xxx… (100000 characters)"));
/// assert_eq!(rtfx::error::clip("lobutterworth"), "lobutterworth");
/// ```
pub fn clip(text: &str) -> std::borrow::Cow<'_, str> {
    match text.char_indices().nth(MAX_ECHO_CHARS) {
        None => std::borrow::Cow::Borrowed(text),
        Some((end, _)) => std::borrow::Cow::Owned(format!(
            "{}… ({} characters)",
            &text[..end],
            text.chars().count()
        )),
    }
}

/// A number as errors show it: plainly (`0.5`, `-6`, `44100`) in the usual range, with at most
/// six significant digits in scientific notation when huge or tiny (`1e308`, `1.23457e-20`).
///
/// ```
/// assert_eq!(rtfx::error::compact_number(1e308), "1e308");
/// assert_eq!(rtfx::error::compact_number(-6.0), "-6");
/// ```
pub fn compact_number(value: f64) -> String {
    let magnitude = value.abs();
    if !value.is_finite() || value == 0.0 || (1e-4..1e15).contains(&magnitude) {
        return value.to_string();
    }
    let text = format!("{value:.5e}");
    match text.split_once('e') {
        Some((mantissa, exponent)) if mantissa.contains('.') => {
            let mantissa = mantissa.trim_end_matches('0').trim_end_matches('.');
            format!("{mantissa}e{exponent}")
        }
        _ => text,
    }
}

/// A value's text as errors show it: a long number compactly ([`compact_number`]), any other
/// long text cut ([`clip`]). Every "Got:" part goes through here.
pub fn brief(text: &str) -> String {
    // Numbers up to 12 characters are kept as written ("0.001", "44100").
    if text.len() > 12
        && let Ok(number) = text.trim().parse::<f64>()
    {
        return compact_number(number);
    }
    clip(text).into_owned()
}

/// Formats a value for the "Got:" part of an error (see [`brief`]).
fn show(value: impl fmt::Display) -> Option<String> {
    Some(brief(&value.to_string()))
}

impl Error {
    /// An unknown parameter or an invalid value.
    pub fn invalid_parameter(
        message: impl Into<String>,
        parameter: impl Into<String>,
        value: impl fmt::Display,
    ) -> Self {
        Error::InvalidParameter(Box::new(ErrorDetails {
            message: message.into(),
            parameter_name: Some(parameter.into()),
            actual_value: show(value),
            ..ErrorDetails::default()
        }))
    }

    /// An invalid sample rate.
    pub fn invalid_sample_rate(value: impl fmt::Display, expected: impl Into<String>) -> Self {
        Error::InvalidSampleRate(Box::new(ErrorDetails {
            message: "Invalid sample rate".into(),
            parameter_name: Some("sample_rate".into()),
            actual_value: show(value),
            expected: Some(expected.into()),
            suggestion: Some("use a common rate such as 44100 or 48000".into()),
        }))
    }

    /// A size, count or index out of range.
    pub fn invalid_range(
        message: impl Into<String>,
        parameter: impl Into<String>,
        value: impl fmt::Display,
    ) -> Self {
        Error::InvalidRange(Box::new(ErrorDetails {
            message: message.into(),
            parameter_name: Some(parameter.into()),
            actual_value: show(value),
            ..ErrorDetails::default()
        }))
    }

    /// A malformed chain text, preset or file.
    pub fn format(message: impl Into<String>) -> Self {
        Error::Format(Box::new(ErrorDetails::new(message)))
    }

    /// A real-time processor error.
    pub fn realtime(message: impl Into<String>) -> Self {
        Error::Realtime(Box::new(ErrorDetails::new(message)))
    }

    /// A stream error.
    pub fn stream(message: impl Into<String>) -> Self {
        Error::Stream(Box::new(ErrorDetails::new(message)))
    }

    /// A missing backend; the default suggestion names how to get it.
    pub fn backend_not_available(backend_name: impl Into<String>) -> Self {
        let backend_name = backend_name.into();
        Error::BackendNotAvailable {
            details: Box::new(ErrorDetails {
                message: format!("Audio backend '{backend_name}' is not available"),
                suggestion: Some(format!(
                    "Install the '{backend_name}' drivers and libraries"
                )),
                ..ErrorDetails::default()
            }),
            backend_name,
        }
    }

    /// A buffer underrun with the given message.
    pub fn buffer_underrun(message: impl Into<String>) -> Self {
        Error::BufferUnderrun(Box::new(ErrorDetails::new(message)))
    }

    /// An I/O failure on `path`.
    pub fn io(message: impl Into<String>, path: impl Into<String>) -> Self {
        Error::Io(Box::new(ErrorDetails {
            message: message.into(),
            parameter_name: Some(path.into()),
            ..ErrorDetails::default()
        }))
    }

    /// The details shared by every variant.
    pub fn details(&self) -> &ErrorDetails {
        match self {
            Error::Realtime(d)
            | Error::Stream(d)
            | Error::BufferUnderrun(d)
            | Error::BufferOverrun(d)
            | Error::InvalidParameter(d)
            | Error::InvalidSampleRate(d)
            | Error::InvalidRange(d)
            | Error::Io(d)
            | Error::Format(d) => d,
            Error::BackendNotAvailable { details, .. } => details,
        }
    }

    /// The details, to change in place.
    pub fn details_mut(&mut self) -> &mut ErrorDetails {
        match self {
            Error::Realtime(d)
            | Error::Stream(d)
            | Error::BufferUnderrun(d)
            | Error::BufferOverrun(d)
            | Error::InvalidParameter(d)
            | Error::InvalidSampleRate(d)
            | Error::InvalidRange(d)
            | Error::Io(d)
            | Error::Format(d) => d,
            Error::BackendNotAvailable { details, .. } => details,
        }
    }

    /// Replaces the message.
    pub fn with_message(mut self, message: impl Into<String>) -> Self {
        self.details_mut().message = message.into();
        self
    }

    /// Replaces the suggestion.
    pub fn with_suggestion(mut self, suggestion: impl Into<String>) -> Self {
        self.details_mut().suggestion = Some(suggestion.into());
        self
    }

    /// Replaces the "expected" part.
    pub fn with_expected(mut self, expected: impl Into<String>) -> Self {
        self.details_mut().expected = Some(expected.into());
        self
    }

    /// Replaces the parameter name (e.g. to prefix it with an effect's index in a chain).
    pub fn with_parameter_name(mut self, name: impl Into<String>) -> Self {
        self.details_mut().parameter_name = Some(name.into());
        self
    }

    /// The message without the other parts.
    pub fn message(&self) -> &str {
        &self.details().message
    }

    /// The parameter at fault, if any.
    pub fn parameter_name(&self) -> Option<&str> {
        self.details().parameter_name.as_deref()
    }

    /// The value that was given, if any.
    pub fn actual_value(&self) -> Option<&str> {
        self.details().actual_value.as_deref()
    }

    /// The suggested fix, if any.
    pub fn suggestion(&self) -> Option<&str> {
        self.details().suggestion.as_deref()
    }

    /// True for torchfx's `RealtimeError` and its subclasses (stream, backend-not-available).
    pub fn is_realtime(&self) -> bool {
        matches!(
            self,
            Error::Realtime(_) | Error::Stream(_) | Error::BackendNotAvailable { .. }
        )
    }

    /// True for torchfx's `AudioProcessingError` subclasses (the buffer errors).
    pub fn is_audio_processing(&self) -> bool {
        matches!(self, Error::BufferUnderrun(_) | Error::BufferOverrun(_))
    }

    /// True for torchfx's `InvalidParameterError` and its subclasses.
    pub fn is_invalid_parameter(&self) -> bool {
        matches!(
            self,
            Error::InvalidParameter(_) | Error::InvalidSampleRate(_) | Error::InvalidRange(_)
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_joins_present_parts() {
        let e = Error::realtime("Processor is already running")
            .with_suggestion("Call stop() before starting again");
        assert_eq!(
            e.to_string(),
            "Processor is already running | Suggestion: Call stop() before starting again"
        );
        assert!(e.is_realtime());
        assert!(!e.is_audio_processing());
    }

    #[test]
    fn backend_not_available_keeps_name_and_suggestion() {
        let e = Error::backend_not_available("cuda").with_suggestion("install the NVIDIA driver");
        match &e {
            Error::BackendNotAvailable { backend_name, .. } => assert_eq!(backend_name, "cuda"),
            other => panic!("wrong variant {other:?}"),
        }
        let text = e.to_string();
        assert!(text.contains("'cuda'"), "{text}");
        assert!(
            text.ends_with("Suggestion: install the NVIDIA driver"),
            "{text}"
        );
        assert!(e.is_realtime());
    }

    #[test]
    fn sample_rate_error_names_expected_range() {
        let e = Error::invalid_sample_rate(0, "an integer in 1..=768000");
        assert_eq!(e.parameter_name(), Some("sample_rate"));
        assert_eq!(e.actual_value(), Some("0"));
        assert!(e.to_string().contains("Expected: an integer in 1..=768000"));
        assert!(e.is_invalid_parameter());
    }

    #[test]
    fn huge_and_tiny_numbers_are_shown_compactly() {
        let got = |v: f64| {
            Error::invalid_parameter("x", "gain", v)
                .actual_value()
                .map(str::to_string)
        };
        assert_eq!(got(1e308).as_deref(), Some("1e308"));
        assert_eq!(got(-1.5e300).as_deref(), Some("-1.5e300"));
        assert_eq!(got(1e-300).as_deref(), Some("1e-300"));
        assert_eq!(got(1.234_567_89e20).as_deref(), Some("1.23457e20"));
        assert_eq!(got(0.5).as_deref(), Some("0.5"));
        assert_eq!(got(-6.0).as_deref(), Some("-6"));
        assert_eq!(got(44_100.0).as_deref(), Some("44100"));
        assert_eq!(got(0.0).as_deref(), Some("0"));
        assert_eq!(got(f64::INFINITY).as_deref(), Some("inf"));
        let text = Error::invalid_parameter("x", "gain", 1e308).to_string();
        assert!(text.len() < 60, "{text}");
    }

    #[test]
    fn long_text_is_cut_with_its_length() {
        let long = "y".repeat(100_000);
        let e = Error::invalid_parameter("x", "name", &long);
        let got = e.actual_value().unwrap_or_default();
        let start: String = got.chars().take(80).collect();
        assert!(got.ends_with("… (100000 characters)"), "{start}…");
        assert!(got.chars().count() < 100, "{got}");
        assert!(got.starts_with("yyyyyyyyyy"), "{got}");
        let e = Error::invalid_parameter("x", "name", "short text");
        assert_eq!(e.actual_value(), Some("short text"));
    }

    #[test]
    fn buffer_errors_are_audio_processing_not_realtime() {
        let e = Error::buffer_underrun("Requested 10 samples but only 5 available");
        assert!(e.is_audio_processing());
        assert!(!e.is_realtime());
    }
}

//! Parameter metadata and values shared by every effect.
//!
//! Inside the engine every parameter is an `f64`: choices are indices into their option list,
//! toggles are 0 or 1, musical times are fractions of a whole note (1/8 dotted = 0.1875). The
//! text forms (grammar, TOML) are converted at the edge by [`ParamInfo::parse`] and
//! [`ParamInfo::to_value`], so the audio path never sees a string.

use crate::error::{Error, Result};

/// What kind of values a parameter takes.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum ParamKind {
    /// Any real number in `[min, max]`.
    Continuous,
    /// A whole number in `[min, max]`.
    Integer,
    /// On or off (0 or 1).
    Toggle,
    /// One of the listed names; the value is its index.
    Choice(&'static [&'static str]),
    /// A note value "n/d", "n/dd" (dotted) or "n/dt" (triplet); the value is a fraction of a
    /// whole note.
    MusicalTime,
}

/// Describes one parameter of an effect.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ParamInfo {
    /// Name used in parameter paths, the grammar and TOML.
    pub name: &'static str,
    /// Smallest accepted value (excluded itself when `min_exclusive`).
    pub min: f64,
    /// Whether `min` itself is refused: the range is `(min, max]` (e.g. a level that must be
    /// above 0).
    pub min_exclusive: bool,
    /// Largest accepted value.
    pub max: f64,
    /// Value of a freshly constructed effect (NaN when the parameter is required).
    pub default: f64,
    /// Display unit ("Hz", "dB", "ms", "s", "" …).
    pub unit: &'static str,
    /// Value kind.
    pub kind: ParamKind,
    /// Whether the chain ramps changes of this parameter instead of jumping.
    pub smoothed: bool,
    /// One line for `rtfx effects` and the README.
    pub description: &'static str,
}

/// A parameter value as written in chain text or TOML.
#[derive(Debug, Clone, PartialEq)]
pub enum ParamValue {
    /// A number (integers are numbers too).
    Number(f64),
    /// true/false, yes/no.
    Bool(bool),
    /// Anything else: choice names, musical times.
    Text(String),
}

impl std::fmt::Display for ParamValue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ParamValue::Number(v) => write!(f, "{v}"),
            ParamValue::Bool(b) => write!(f, "{b}"),
            ParamValue::Text(s) => write!(f, "{s:?}"),
        }
    }
}

impl ParamInfo {
    /// A continuous parameter with smoothing on.
    pub const fn continuous(
        name: &'static str,
        min: f64,
        max: f64,
        default: f64,
        unit: &'static str,
        description: &'static str,
    ) -> Self {
        Self {
            name,
            min,
            min_exclusive: false,
            max,
            default,
            unit,
            kind: ParamKind::Continuous,
            smoothed: true,
            description,
        }
    }

    /// Same parameter, but `min` itself is refused: the range is `(min, max]`.
    pub const fn above_min(mut self) -> Self {
        self.min_exclusive = true;
        self
    }

    /// Same parameter, but changes jump instead of ramping.
    pub const fn unsmoothed(mut self) -> Self {
        self.smoothed = false;
        self
    }

    /// An integer parameter (never smoothed).
    pub const fn integer(
        name: &'static str,
        min: f64,
        max: f64,
        default: f64,
        description: &'static str,
    ) -> Self {
        Self {
            name,
            min,
            min_exclusive: false,
            max,
            default,
            unit: "",
            kind: ParamKind::Integer,
            smoothed: false,
            description,
        }
    }

    /// An on/off parameter.
    pub const fn toggle(name: &'static str, default: bool, description: &'static str) -> Self {
        Self {
            name,
            min: 0.0,
            min_exclusive: false,
            max: 1.0,
            default: if default { 1.0 } else { 0.0 },
            unit: "",
            kind: ParamKind::Toggle,
            smoothed: false,
            description,
        }
    }

    /// A choice among names; `default` is an index.
    pub const fn choice(
        name: &'static str,
        options: &'static [&'static str],
        default: usize,
        description: &'static str,
    ) -> Self {
        Self {
            name,
            min: 0.0,
            min_exclusive: false,
            max: (options.len() - 1) as f64,
            default: default as f64,
            unit: "",
            kind: ParamKind::Choice(options),
            smoothed: false,
            description,
        }
    }

    /// A musical note value; `default` is a fraction of a whole note.
    pub const fn musical_time(name: &'static str, default: f64, description: &'static str) -> Self {
        Self {
            name,
            min: 1.0 / 256.0,
            min_exclusive: false,
            max: 16.0,
            default,
            unit: "note",
            kind: ParamKind::MusicalTime,
            smoothed: false,
            description,
        }
    }

    /// Checks a numeric value: finite, in range, whole for integers and choices.
    ///
    /// Returns the value unchanged or an error naming the parameter, the value and the range.
    pub fn validate(&self, value: f64) -> Result<f64> {
        let whole = matches!(
            self.kind,
            ParamKind::Integer | ParamKind::Toggle | ParamKind::Choice(_)
        );
        if !value.is_finite()
            || value < self.min
            || (self.min_exclusive && value == self.min)
            || value > self.max
            || (whole && value.fract() != 0.0)
        {
            return Err(Error::invalid_parameter(
                format!("Value out of range for '{}'", self.name),
                self.name,
                value,
            )
            .with_expected(self.range_text())
            .with_suggestion(format!("use a value in {}", self.range_text())));
        }
        Ok(value)
    }

    /// Clamps any value into range (NaN becomes the default, or `min` if there is none).
    /// This is what hosts and smoothers use: they must never fail.
    pub fn clamp(&self, value: f64) -> f64 {
        if value.is_nan() {
            return if self.default.is_nan() {
                self.min
            } else {
                self.default
            };
        }
        let v = value.clamp(self.min, self.max);
        match self.kind {
            ParamKind::Integer | ParamKind::Toggle | ParamKind::Choice(_) => v.round(),
            _ => v,
        }
    }

    /// The accepted range as text, e.g. `[0, 0.95]` or `one of "peak", "rms"`.
    pub fn range_text(&self) -> String {
        match self.kind {
            ParamKind::Choice(options) => {
                let names: Vec<String> = options.iter().map(|o| format!("\"{o}\"")).collect();
                format!("one of {}", names.join(", "))
            }
            ParamKind::Toggle => "true or false".into(),
            ParamKind::MusicalTime => {
                "a note value such as \"1/4\", \"1/8d\" (dotted) or \"1/8t\" (triplet)".into()
            }
            _ if self.min_exclusive => format!("({}, {}]", self.min, self.max),
            _ => format!("[{}, {}]", self.min, self.max),
        }
    }

    /// Converts a text-level value to the engine's number, validating it.
    pub fn parse(&self, value: &ParamValue) -> Result<f64> {
        let bad = |why: &str| {
            Error::invalid_parameter(
                format!("Invalid value for '{}': {why}", self.name),
                self.name,
                value,
            )
            .with_expected(self.range_text())
        };
        let number = match (self.kind, value) {
            (ParamKind::Toggle, ParamValue::Bool(b)) => f64::from(u8::from(*b)),
            (ParamKind::Choice(options), ParamValue::Text(t)) => {
                let t = t.trim().to_ascii_lowercase();
                let index = options
                    .iter()
                    .position(|o| *o == t)
                    .or_else(|| choice_alias(options, &t))
                    .ok_or_else(|| {
                        let suggestion = crate::dsp::nearest(&t, options.iter().copied())
                            .map(|n| format!("did you mean '{n}'?"))
                            .unwrap_or_else(|| format!("use {}", self.range_text()));
                        bad("unknown option").with_suggestion(suggestion)
                    })?;
                index as f64
            }
            (ParamKind::MusicalTime, ParamValue::Text(t)) => {
                parse_musical_time(t).ok_or_else(|| {
                    bad("not a note value")
                        .with_suggestion("write it like \"1/8\", \"1/8d\" or \"1/8t\"")
                })?
            }
            (_, ParamValue::Number(v)) => *v,
            (ParamKind::Toggle, ParamValue::Text(_)) => {
                return Err(bad("expected true or false")
                    .with_suggestion("give true or false (in TOML without quotes)"));
            }
            (_, ParamValue::Bool(_)) => return Err(bad("a true/false value is not accepted here")),
            (_, ParamValue::Text(_)) => return Err(bad("expected a number")),
        };
        self.validate(number)
    }

    /// The engine's number back in its natural text-level form (choice name, bool, note value).
    pub fn to_value(&self, number: f64) -> ParamValue {
        match self.kind {
            ParamKind::Toggle => ParamValue::Bool(number >= 0.5),
            ParamKind::Choice(options) => {
                let index = (number.round().max(0.0) as usize).min(options.len() - 1);
                ParamValue::Text(options[index].to_string())
            }
            ParamKind::MusicalTime => ParamValue::Text(format_musical_time(number)),
            _ => ParamValue::Number(number),
        }
    }
}

/// Short names users write for choices ("low"/"high" for the band types, "lp"/"hp").
fn choice_alias(options: &[&str], text: &str) -> Option<usize> {
    let canonical = match text {
        "low" | "lp" | "lowpass" => "lowpass",
        "high" | "hp" | "highpass" => "highpass",
        "dB" | "decibel" | "decibels" => "db",
        "amp" | "linear" => "amplitude",
        _ => return None,
    };
    options.iter().position(|o| *o == canonical)
}

/// Parses "n/d", "n/dd" (dotted, ×1.5) or "n/dt" (triplet) into a fraction of a whole note.
///
/// A triplet lasts 2/3 of the plain note, the musical definition (three in the time of two).
/// torchfx 0.8.0 multiplies by 1/3 instead, which makes "1/8t" half as long as it should be;
/// rtfx deliberately differs (see the README).
///
/// ```
/// use rtfx::dsp::param::parse_musical_time;
/// assert_eq!(parse_musical_time("1/8d"), Some(0.1875));
/// assert_eq!(parse_musical_time("1/8x"), None);
/// ```
pub fn parse_musical_time(text: &str) -> Option<f64> {
    let t = text.trim();
    let (body, factor) = if let Some(b) = t.strip_suffix('d') {
        (b, 1.5)
    } else if let Some(b) = t.strip_suffix('t') {
        (b, 2.0 / 3.0)
    } else {
        (t, 1.0)
    };
    let (n, d) = body.split_once('/')?;
    let numeric = |s: &str| !s.is_empty() && s.bytes().all(|c| c.is_ascii_digit() || c == b'.');
    if !numeric(n) || !numeric(d) {
        return None;
    }
    let n: f64 = n.parse().ok()?;
    let d: f64 = d.parse().ok()?;
    if n <= 0.0 || d <= 0.0 {
        return None;
    }
    Some(n / d * factor)
}

/// Writes a fraction of a whole note as "n/d", "n/dd" or "n/dt" when it is one, else as a plain
/// fraction of the smallest fitting denominator up to 256.
pub fn format_musical_time(fraction: f64) -> String {
    // Prefer the names musicians use ("1/8d" rather than "3/16"), then any n/d.
    for one_only in [true, false] {
        for (suffix, factor) in [("", 1.0), ("d", 1.5), ("t", 2.0 / 3.0)] {
            let plain = fraction / factor;
            for d in [1u32, 2, 4, 8, 16, 32, 64, 128, 256] {
                let n = plain * f64::from(d);
                let whole = n >= 1.0 && (n - n.round()).abs() < 1e-9;
                if whole && (!one_only || n.round() == 1.0) {
                    return format!("{}/{d}{suffix}", n.round() as u64);
                }
            }
        }
    }
    // Not a note value: write the exact fraction of a whole note over 1 so it parses back.
    format!("{fraction}/1")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn musical_time_round_trips() {
        for text in ["1/4", "1/8", "1/8d", "1/8t", "5/16", "1/16t", "1/2d", "1/1"] {
            let v = parse_musical_time(text).unwrap();
            assert_eq!(format_musical_time(v), text, "{text} -> {v}");
        }
        assert_eq!(parse_musical_time("1/8d"), Some(0.1875));
        assert_eq!(
            format_musical_time(parse_musical_time("3/16").unwrap()),
            "1/8d"
        );
        assert!((parse_musical_time("1/4t").unwrap() - 1.0 / 6.0).abs() < 1e-15);
        for bad in ["", "1", "/4", "1/", "a/4", "1/4x", "0/4", "1/0", "-1/4"] {
            assert_eq!(parse_musical_time(bad), None, "{bad}");
        }
    }

    #[test]
    fn validate_names_parameter_and_range() {
        let p = ParamInfo::continuous("feedback", 0.0, 0.95, 0.3, "", "");
        assert_eq!(p.validate(0.5).unwrap(), 0.5);
        let e = p.validate(1.2).unwrap_err().to_string();
        assert!(
            e.contains("Parameter: feedback") && e.contains("Got: 1.2") && e.contains("[0, 0.95]"),
            "{e}"
        );
        assert!(p.validate(f64::NAN).is_err());
        assert_eq!(p.clamp(7.0), 0.95);
        assert_eq!(p.clamp(f64::NAN), 0.3);
    }

    #[test]
    fn choices_parse_by_name_alias_and_suggest() {
        let p = ParamInfo::choice("btype", &["lowpass", "highpass"], 0, "");
        assert_eq!(p.parse(&ParamValue::Text("HighPass".into())).unwrap(), 1.0);
        assert_eq!(p.parse(&ParamValue::Text("low".into())).unwrap(), 0.0);
        let e = p
            .parse(&ParamValue::Text("higpass".into()))
            .unwrap_err()
            .to_string();
        assert!(e.contains("did you mean 'highpass'?"), "{e}");
        assert_eq!(p.to_value(1.0), ParamValue::Text("highpass".into()));
    }
}

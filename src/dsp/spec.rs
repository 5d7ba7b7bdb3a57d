//! Chain grammar and TOML.
//!
//! The grammar is torchfx's: `name[:tok(,tok)*]` where a token is `key=value` or a positional
//! `value`, e.g. `lobutterworth:8000,order=4`. A TOML chain file lists `[[effects]]` tables with
//! a `name` and keyword parameters, plus optional top-level `device` (`"cpu"` or `"cuda"`),
//! `chunk_size` and `overlap`. Errors number effects from 0, like parameter paths:
//!
//! ```
//! use rtfx::dsp::spec::{chain_from_toml, chain_to_toml, parse_chain};
//!
//! let chain = parse_chain(&["gain:0.5", "gain:gain=-6,gain_type=db"]).unwrap();
//! let text = chain_to_toml(&chain);
//! assert!(text.starts_with("[[effects]]\nname = \"gain\"\n"));
//! assert_eq!(chain_from_toml(&text).unwrap().chain, chain);
//! let err = parse_chain(&["gain:0.5", "gain:abc"]).unwrap_err();
//! assert!(err.to_string().starts_with("effect 1 ('gain:abc'): "));
//! assert_eq!(err.parameter_name(), Some("1.gain"));
//! ```

use std::collections::BTreeMap;

use serde::Deserialize;
use toml::Spanned;

use crate::dsp::chain::{ParamAddress, numbered};
use crate::dsp::registry::{self, EffectEntry};
use crate::dsp::{Chain, Effect, ParamInfo, ParamValue, unknown_param};
use crate::error::{Error, ErrorDetails, Result, brief, clip};

/// One effect as written in the grammar: its registry name and its parameters, keyed by their
/// canonical names, in the order first given.
#[derive(Debug, Clone, PartialEq)]
pub struct EffectSpec {
    /// Lower-case registry name, e.g. "lobutterworth".
    pub name: String,
    /// Parameter names and text-level values (later duplicates already overwrote earlier ones).
    pub params: Vec<(String, ParamValue)>,
}

/// Converts a grammar value: true/yes and false/no (any case) are booleans, then numbers
/// (integer or float), else text.
///
/// ```
/// use rtfx::dsp::{ParamValue, spec::coerce_value};
/// assert_eq!(coerce_value("Yes"), ParamValue::Bool(true));
/// assert_eq!(coerce_value("1e3"), ParamValue::Number(1000.0));
/// assert_eq!(coerce_value("1/8d"), ParamValue::Text("1/8d".into()));
/// ```
pub fn coerce_value(text: &str) -> ParamValue {
    let text = text.trim();
    match text.to_ascii_lowercase().as_str() {
        "true" | "yes" => ParamValue::Bool(true),
        "false" | "no" => ParamValue::Bool(false),
        _ => match text.parse::<f64>() {
            Ok(v) => ParamValue::Number(v),
            Err(_) => ParamValue::Text(text.to_string()),
        },
    }
}

/// A grammar error about `spec` (echoed cut short, see [`clip`]).
fn grammar_error(message: String, spec: &str) -> Error {
    Error::Format(Box::new(ErrorDetails {
        message,
        actual_value: Some(brief(spec)),
        ..ErrorDetails::default()
    }))
}

/// Parses one effect in torchfx's grammar `name[:tok(,tok)*]`.
///
/// Whitespace around names, keys and values is trimmed; names and keys are case-insensitive;
/// empty tokens are skipped; positional values fill the effect's positional parameters in
/// order wherever they appear; a later value for the same parameter overwrites an earlier one.
/// Unknown effects and keys are errors that suggest the nearest name. Values are converted by
/// [`coerce_value`] and validated later, by [`build_effect`].
///
/// ```
/// use rtfx::dsp::{ParamValue, spec::parse_effect};
/// let spec = parse_effect("Gain: 0.5 ,clamp=yes").unwrap();
/// assert_eq!(spec.name, "gain");
/// assert_eq!(spec.params[0], ("gain".to_string(), ParamValue::Number(0.5)));
/// assert_eq!(spec.params[1], ("clamp".to_string(), ParamValue::Bool(true)));
/// ```
pub fn parse_effect(text: &str) -> Result<EffectSpec> {
    let (name, rest) = match text.split_once(':') {
        Some((n, r)) => (n.trim(), Some(r)),
        None => (text.trim(), None),
    };
    if name.is_empty() {
        return Err(
            grammar_error(format!("Empty effect name in '{}'", clip(text)), text)
                .with_expected("name[:value,...,key=value,...]")
                .with_suggestion("e.g. 'lobutterworth:8000,order=4'"),
        );
    }
    let entry = registry::lookup(name).ok_or_else(|| {
        let e = registry::unknown_effect(name);
        if name.contains(['=', ',']) {
            // "gain=0.5" or "gain,0.5": the colon after the name is missing.
            e.with_suggestion(
                "separate the effect name from its parameters with ':', e.g. 'gain:0.5'",
            )
        } else {
            e
        }
    })?;
    let infos = entry.params();
    let mut params: Vec<(String, ParamValue)> = Vec::new();
    let mut positional = 0;
    // Commas inside parentheses (a distribution's arguments) do not split.
    for token in crate::dsp::random::split_params(rest.unwrap_or("")) {
        let (info, value) = match token.split_once('=') {
            Some((key, value)) => {
                let key = key.trim().to_ascii_lowercase();
                if key.is_empty() {
                    return Err(grammar_error(
                        format!(
                            "Missing parameter name in '{}' of '{}'",
                            clip(token),
                            clip(text)
                        ),
                        text,
                    )
                    .with_suggestion(format!(
                        "write it as key=value; parameters of '{}': {}",
                        entry.name,
                        names(infos)
                    )));
                }
                let info = infos
                    .iter()
                    .find(|p| p.name == key)
                    .ok_or_else(|| unknown_param(entry.name, infos, &key))?;
                (info, value.trim())
            }
            None => {
                let Some(param) = entry.positional.get(positional) else {
                    return Err(too_many_positionals(entry, text));
                };
                positional += 1;
                let info = infos.iter().find(|p| p.name == *param).ok_or_else(|| {
                    Error::format(format!(
                        "Effect '{}' has no parameter '{param}'",
                        entry.name
                    ))
                })?;
                (info, token)
            }
        };
        if value.is_empty() {
            return Err(grammar_error(
                format!("Missing value for '{}' in '{}'", info.name, clip(text)),
                text,
            )
            .with_expected(info.range_text())
            .with_suggestion(format!("write it as {}=<value>", info.name)));
        }
        let value = coerce_value(value);
        match params.iter_mut().find(|(k, _)| k == info.name) {
            Some(slot) => slot.1 = value,
            None => params.push((info.name.to_string(), value)),
        }
    }
    Ok(EffectSpec {
        name: entry.name.to_string(),
        params,
    })
}

/// torchfx's "too many positional parameters" error.
fn too_many_positionals(entry: &EffectEntry, text: &str) -> Error {
    let n = entry.positional.len();
    grammar_error(
        format!(
            "Too many positional parameters for '{}'. Expected at most {n}: [{}]",
            entry.name,
            entry.positional.join(", ")
        ),
        text,
    )
    .with_suggestion("give further parameters as key=value")
}

/// The comma-separated names of a parameter list.
fn names(params: &[ParamInfo]) -> String {
    params.iter().map(|p| p.name).collect::<Vec<_>>().join(", ")
}

/// Builds the effect a spec describes (see [`registry::build`]).
pub fn build_effect(spec: &EffectSpec) -> Result<Box<dyn Effect>> {
    registry::build(&spec.name, &spec.params)
}

/// Parses and builds a chain from effect specs, e.g. the `-e` options of `rtfx render`.
///
/// An error names the spec it comes from by its index in the chain, counting from 0 like
/// parameter paths (`"1.cutoff"`) and the chain's own errors: "effect 1 ('lobuterworth:100'): …".
pub fn parse_chain<S: AsRef<str>>(specs: &[S]) -> Result<Chain> {
    let mut chain = Chain::new(Vec::with_capacity(specs.len()));
    append_specs(&mut chain, specs)?;
    Ok(chain)
}

/// Parses effect specs and appends them to `chain` (e.g. the `-e` effects after a chain
/// file's). Errors number the effects by their index in the whole chain, so the first spec
/// appended to a chain of two effects is "effect 2"; on error the chain is unchanged.
pub fn append_specs<S: AsRef<str>>(chain: &mut Chain, specs: &[S]) -> Result<()> {
    let mut effects = Vec::with_capacity(specs.len());
    for (i, text) in specs.iter().enumerate() {
        let text = text.as_ref();
        let effect = parse_effect(text)
            .and_then(|spec| build_effect(&spec))
            .map_err(|e| numbered(e, chain.len() + i, &format!("'{}'", clip(text))))?;
        effects.push(effect);
    }
    for effect in effects {
        chain.push(effect);
    }
    Ok(())
}

/// The grammar form of an effect with all its parameters as keywords (parameters that are unset
/// are left out), e.g. `lobutterworth:cutoff=1000,order=5`.
pub fn effect_to_spec(effect: &dyn Effect) -> String {
    let values: Vec<(usize, f64)> = effect
        .params()
        .iter()
        .enumerate()
        .map(|(i, p)| (i, effect.get_param(p.name).unwrap_or(f64::NAN)))
        .collect();
    spec_text(effect, &values)
}

/// The grammar form of an effect with these parameter values (by parameter index).
fn spec_text(effect: &dyn Effect, values: &[(usize, f64)]) -> String {
    let tokens: Vec<String> = values
        .iter()
        .filter(|(_, v)| !v.is_nan())
        .map(|&(i, v)| {
            let info = &effect.params()[i];
            let value = match natural_value(info, v) {
                ParamValue::Text(t) => t,
                ParamValue::Bool(b) => b.to_string(),
                ParamValue::Number(n) => n.to_string(),
            };
            format!("{}={value}", info.name)
        })
        .collect();
    if tokens.is_empty() {
        effect.name().to_string()
    } else {
        format!("{}:{}", effect.name(), tokens.join(","))
    }
}

/// A value in its natural text-level form when that form converts back to exactly the same
/// number, else as a plain number.
fn natural_value(info: &ParamInfo, value: f64) -> ParamValue {
    let natural = info.to_value(value);
    match info.parse(&natural) {
        Ok(back) if back == value => natural,
        _ => ParamValue::Number(value),
    }
}

/// The values a chain file's `device` accepts.
pub const DEVICES: &[&str] = &["cpu", "cuda"];

/// A chain file: the effects plus the top-level defaults of torchfx's `process` command.
#[derive(Debug, Clone, PartialEq)]
pub struct ChainFile {
    /// `device = "cpu"` or `"cuda"` (one of [`DEVICES`], lower case; others are refused).
    pub device: Option<String>,
    /// Chunk length for offline rendering.
    pub chunk_size: Option<usize>,
    /// Overlap between offline chunks.
    pub overlap: Option<usize>,
    /// The effects, in order.
    pub chain: Chain,
}

/// One `[[effects]]` table as read, keys and values with their spans.
type RawTable = BTreeMap<Spanned<String>, Spanned<toml::Value>>;

/// The TOML document as read (spans kept for messages).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    device: Option<Spanned<String>>,
    chunk_size: Option<Spanned<usize>>,
    overlap: Option<Spanned<usize>>,
    effects: Option<Vec<Spanned<RawTable>>>,
}

/// 1-based line and column of a byte offset.
fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, column)
}

/// A TOML format error located at `span`.
fn toml_error(text: &str, span: std::ops::Range<usize>, message: String) -> Error {
    let (line, _) = line_column(text, span.start);
    Error::format(format!("line {line}: {message}"))
}

/// The minimal example shown when a file has no effects.
const TOML_EXAMPLE: &str =
    "add at least one effect, e.g.\n[[effects]]\nname = \"gain\"\ngain = 0.5";

/// Reads a TOML chain file (torchfx's `[[effects]]` format).
///
/// Every `[[effects]]` table needs a `name` (case-insensitive); its other keys are keyword
/// parameters (integers and floats are numbers, booleans booleans, strings text; arrays and
/// tables are errors). `device` must be one of [`DEVICES`]. Errors name the line, the effect
/// (counting from 0: "effect 1 ('gain', line 7): …") and, where it helps, the nearest name.
pub fn chain_from_toml(text: &str) -> Result<ChainFile> {
    let raw: RawFile = toml::from_str(text).map_err(|e| {
        let location = match e.span() {
            Some(span) => {
                let (line, column) = line_column(text, span.start);
                format!(" at line {line}, column {column}")
            }
            None => String::new(),
        };
        Error::format(format!(
            "Invalid TOML chain{location}: {}",
            e.message().trim()
        ))
        .with_suggestion(
            "the chain format is optional top-level device, chunk_size and overlap, then \
                 [[effects]] tables with a 'name' and parameters",
        )
    })?;
    if let Some(c) = &raw.chunk_size
        && *c.get_ref() == 0
    {
        return Err(
            toml_error(text, c.span(), "'chunk_size' must be at least 1".into())
                .with_expected("a positive integer"),
        );
    }
    if let (Some(c), Some(o)) = (&raw.chunk_size, &raw.overlap)
        && o.get_ref() >= c.get_ref()
    {
        return Err(toml_error(
            text,
            o.span(),
            format!(
                "'overlap' ({}) must be less than 'chunk_size' ({})",
                o.get_ref(),
                c.get_ref()
            ),
        ));
    }
    let device = match &raw.device {
        None => None,
        Some(d) => {
            let name = d.get_ref().trim().to_ascii_lowercase();
            if !DEVICES.contains(&name.as_str()) {
                let quoted: Vec<String> = DEVICES.iter().map(|d| format!("\"{d}\"")).collect();
                let (line, _) = line_column(text, d.span().start);
                return Err(Error::invalid_parameter(
                    format!("line {line}: unknown device '{}'", clip(d.get_ref())),
                    "device",
                    d.get_ref(),
                )
                .with_expected(quoted.join(" or "))
                .with_suggestion(
                    "write device = \"cpu\", or device = \"cuda\" for the GPU (a build with \
                     --features cuda), or leave it out",
                ));
            }
            Some(name)
        }
    };
    let entries = raw.effects.unwrap_or_default();
    if entries.is_empty() {
        return Err(Error::format("No [[effects]] entries found").with_suggestion(TOML_EXAMPLE));
    }
    let mut effects = Vec::with_capacity(entries.len());
    for (i, entry) in entries.iter().enumerate() {
        let effect = effect_from_table(entry.get_ref()).map_err(|(e, at)| {
            let (line, _) = line_column(text, at.unwrap_or(entry.span().start));
            // Numbered from 0 like the chain's effects and parameter paths ("1.cutoff").
            let what = match entry_name(entry.get_ref()) {
                Some(name) => format!("'{}', line {line}", clip(name)),
                None => format!("line {line}"),
            };
            numbered(e, i, &what)
        })?;
        effects.push(effect);
    }
    Ok(ChainFile {
        device,
        chunk_size: raw.chunk_size.map(Spanned::into_inner),
        overlap: raw.overlap.map(Spanned::into_inner),
        chain: Chain::new(effects),
    })
}

/// The `name` of an `[[effects]]` table, when it is a string.
fn entry_name(table: &RawTable) -> Option<&str> {
    table
        .iter()
        .find(|(k, _)| k.get_ref() == "name")
        .and_then(|(_, v)| v.get_ref().as_str())
}

/// An error and, when known, the byte offset it points at.
type Located<T> = std::result::Result<T, (Error, Option<usize>)>;

/// Builds one effect from an `[[effects]]` table.
fn effect_from_table(
    table: &BTreeMap<Spanned<String>, Spanned<toml::Value>>,
) -> Located<Box<dyn Effect>> {
    let name = table
        .iter()
        .find(|(k, _)| k.get_ref() == "name")
        .map(|(_, v)| v);
    let Some(name) = name else {
        let e = Error::format("missing 'name'")
            .with_suggestion("every [[effects]] table needs a name, e.g. name = \"gain\"");
        return Err((e, None));
    };
    let at_name = Some(name.span().start);
    let toml::Value::String(name_text) = name.get_ref() else {
        let e = Error::format("'name' must be a string")
            .with_suggestion("e.g. name = \"lobutterworth\"");
        return Err((e, at_name));
    };
    let entry = registry::lookup(name_text)
        .ok_or_else(|| (registry::unknown_effect(name_text), at_name))?;
    let infos = entry.params();
    let mut params = Vec::with_capacity(table.len());
    for (key, value) in table.iter().filter(|(k, _)| k.get_ref() != "name") {
        let info = infos
            .iter()
            .find(|p| p.name.eq_ignore_ascii_case(key.get_ref()))
            .ok_or_else(|| {
                (
                    unknown_param(entry.name, infos, key.get_ref()),
                    Some(key.span().start),
                )
            })?;
        let value = match value.get_ref() {
            toml::Value::Integer(i) => ParamValue::Number(*i as f64),
            toml::Value::Float(f) => ParamValue::Number(*f),
            toml::Value::Boolean(b) => ParamValue::Bool(*b),
            toml::Value::String(s) => ParamValue::Text(s.clone()),
            other => {
                let e = Error::invalid_parameter(
                    format!(
                        "'{}' must be a number, boolean or string, not {}",
                        info.name,
                        other.type_str()
                    ),
                    info.name,
                    other,
                )
                .with_expected(info.range_text());
                return Err((e, Some(key.span().start)));
            }
        };
        params.push((info.name.to_string(), value, key.span().start));
    }
    let values: Vec<(String, ParamValue)> = params
        .iter()
        .map(|(k, v, _)| (k.clone(), v.clone()))
        .collect();
    registry::build(entry.name, &values).map_err(|e| {
        // Point at the key the error names, if any.
        let at = e
            .parameter_name()
            .and_then(|p| params.iter().find(|(k, _, _)| k == p))
            .map(|(_, _, at)| *at);
        (e, at)
    })
}

/// Writes a chain as TOML that [`chain_from_toml`] reads back into an equal chain: one
/// `[[effects]]` table per effect with every set parameter in its natural form (choice names,
/// booleans, note values, integers, floats). Running ramps are written at their targets.
pub fn chain_to_toml(chain: &Chain) -> String {
    let mut out = String::new();
    for (i, fx) in chain.effects().iter().enumerate() {
        if i > 0 {
            out.push('\n');
        }
        out.push_str("[[effects]]\n");
        out.push_str(&format!(
            "name = {}\n",
            toml::Value::String(fx.name().to_string())
        ));
        for (param, info) in fx.params().iter().enumerate() {
            let value = chain.get_param_at(ParamAddress { effect: i, param });
            if value.is_nan() {
                continue;
            }
            let written = match natural_value(info, value) {
                ParamValue::Text(t) => toml::Value::String(t),
                ParamValue::Bool(b) => toml::Value::Boolean(b),
                ParamValue::Number(n)
                    if matches!(
                        info.kind,
                        crate::dsp::ParamKind::Integer | crate::dsp::ParamKind::Choice(_)
                    ) && n.fract() == 0.0
                        && n.abs() < 9.0e15 =>
                {
                    toml::Value::Integer(n as i64)
                }
                ParamValue::Number(n) => toml::Value::Float(n),
            };
            out.push_str(&format!("{} = {written}\n", info.name));
        }
    }
    out
}

/// The grammar form of every effect of a chain (parameters at their targets), e.g. for
/// printing the chain a file describes.
pub fn chain_to_specs(chain: &Chain) -> Vec<String> {
    chain
        .effects()
        .iter()
        .enumerate()
        .map(|(i, fx)| {
            let values: Vec<(usize, f64)> = (0..fx.params().len())
                .map(|param| (param, chain.get_param_at(ParamAddress { effect: i, param })))
                .collect();
            spec_text(fx.as_ref(), &values)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dsp::registry::{entries, example_value, lookup};

    fn has(name: &str) -> bool {
        lookup(name).is_some()
    }

    #[test]
    fn value_coercion() {
        assert_eq!(coerce_value("true"), ParamValue::Bool(true));
        assert_eq!(coerce_value("yes"), ParamValue::Bool(true));
        assert_eq!(coerce_value("YES"), ParamValue::Bool(true));
        assert_eq!(coerce_value("No"), ParamValue::Bool(false));
        assert_eq!(coerce_value("FALSE"), ParamValue::Bool(false));
        assert_eq!(coerce_value("1e3"), ParamValue::Number(1000.0));
        assert_eq!(coerce_value("-3"), ParamValue::Number(-3.0));
        assert_eq!(coerce_value("42"), ParamValue::Number(42.0));
        assert_eq!(coerce_value("0.25"), ParamValue::Number(0.25));
        assert_eq!(coerce_value(" 7 "), ParamValue::Number(7.0));
        assert_eq!(coerce_value("abc"), ParamValue::Text("abc".into()));
        assert_eq!(coerce_value("1/8d"), ParamValue::Text("1/8d".into()));
        assert_eq!(coerce_value("db"), ParamValue::Text("db".into()));
    }

    #[test]
    fn parse_name_only() {
        for e in entries() {
            let spec = parse_effect(e.name).unwrap();
            assert_eq!(spec.name, e.name);
            assert!(spec.params.is_empty());
            assert_eq!(
                parse_effect(&format!(" {}: ", e.name)).unwrap().name,
                e.name
            );
        }
    }

    #[test]
    fn parse_positional_keywords_and_mixed() {
        for e in entries().iter().filter(|e| !e.positional.is_empty()) {
            let values: Vec<String> = (0..e.positional.len())
                .map(|i| format!("{}", i + 1))
                .collect();
            // All positional.
            let spec = parse_effect(&format!("{}:{}", e.name, values.join(","))).unwrap();
            let expected: Vec<(String, ParamValue)> = e
                .positional
                .iter()
                .enumerate()
                .map(|(i, p)| (p.to_string(), ParamValue::Number((i + 1) as f64)))
                .collect();
            assert_eq!(spec.params, expected, "{}", e.name);
            // All keywords (upper-case keys, spaces).
            let kw: Vec<String> = e
                .positional
                .iter()
                .enumerate()
                .map(|(i, p)| format!(" {} = {} ", p.to_ascii_uppercase(), i + 1))
                .collect();
            assert_eq!(
                parse_effect(&format!("{}:{}", e.name, kw.join(",")))
                    .unwrap()
                    .params,
                expected
            );
            // Mixed: a keyword first, positionals still fill in order; empty tokens skipped.
            let spec = parse_effect(&format!("{}:,{}=9,,5", e.name, e.positional[0])).unwrap();
            assert_eq!(
                spec.params[0],
                (e.positional[0].to_string(), ParamValue::Number(5.0))
            );
        }
        if has("lobutterworth") {
            let spec = parse_effect("lobutterworth:8000,order=4").unwrap();
            assert_eq!(
                spec.params,
                vec![
                    ("cutoff".to_string(), ParamValue::Number(8000.0)),
                    ("order".to_string(), ParamValue::Number(4.0))
                ]
            );
        }
    }

    #[test]
    fn later_duplicates_overwrite() {
        let e = entries()
            .iter()
            .find(|e| !e.positional.is_empty())
            .expect("some effect");
        let p = e.positional[0];
        let spec = parse_effect(&format!("{}:{p}=1,{p}=2", e.name)).unwrap();
        assert_eq!(spec.params, vec![(p.to_string(), ParamValue::Number(2.0))]);
    }

    #[test]
    fn parse_is_case_insensitive() {
        for e in entries() {
            let upper = e.name.to_ascii_uppercase();
            assert_eq!(parse_effect(&upper).unwrap().name, e.name);
        }
    }

    #[test]
    fn unknown_effect_and_key_suggest() {
        let err = parse_effect("nosucheffectxyz:1").unwrap_err();
        assert!(matches!(err, Error::Format(_)));
        assert!(
            err.to_string().contains("Unknown effect 'nosucheffectxyz'"),
            "{err}"
        );
        if has("lobutterworth") {
            let err = parse_chain(&["gain:0.5", "lobuterworth:100"])
                .unwrap_err()
                .to_string();
            assert!(err.contains("effect 1 ('lobuterworth:100')"), "{err}");
            assert!(err.contains("did you mean 'lobutterworth'?"), "{err}");
            let err = parse_effect("lobutterworth:cutof=100")
                .unwrap_err()
                .to_string();
            assert!(err.contains("did you mean 'cutoff'?"), "{err}");
        }
        for e in entries() {
            let first = e.params()[0].name;
            let err = parse_effect(&format!("{}:{first}x=1", e.name))
                .unwrap_err()
                .to_string();
            assert!(err.contains(&format!("did you mean '{first}'?")), "{err}");
        }
        let err = parse_effect("gain=0.5").unwrap_err().to_string();
        assert!(err.contains("with ':'"), "{err}");
        assert!(parse_effect("").is_err());
        assert!(parse_effect(":1").is_err());
    }

    #[test]
    fn too_many_positionals() {
        for e in entries() {
            let n = e.positional.len();
            let values = vec!["1"; n + 1].join(",");
            let err = parse_effect(&format!("{}:{values}", e.name))
                .unwrap_err()
                .to_string();
            let expected = format!(
                "Too many positional parameters for '{}'. Expected at most {n}: [{}]",
                e.name,
                e.positional.join(", ")
            );
            assert!(err.starts_with(&expected), "{err}");
        }
    }

    #[test]
    fn missing_values_and_keys_are_errors() {
        let e = entries().first().expect("some effect");
        let p = e.params()[0].name;
        assert!(
            parse_effect(&format!("{}:{p}=", e.name))
                .unwrap_err()
                .to_string()
                .contains("Missing value")
        );
        assert!(
            parse_effect(&format!("{}:=1", e.name))
                .unwrap_err()
                .to_string()
                .contains("Missing parameter name")
        );
    }

    #[test]
    fn gain_specs_build_and_validate() {
        if !has("gain") {
            return;
        }
        let chain =
            parse_chain(&["gain:0.5", "GAIN: -6 , gain_type = dB", "gain:2,clamp=yes"]).unwrap();
        assert_eq!(chain.len(), 3);
        assert_eq!(chain.get_param("0.gain").unwrap(), 0.5);
        assert_eq!(chain.get_param("1.gain").unwrap(), -6.0);
        assert_eq!(chain.get_param("1.gain_type").unwrap(), 1.0);
        assert_eq!(chain.get_param("2.clamp").unwrap(), 1.0);
        let err = parse_chain(&["gain:0.5", "gain:abc"])
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("effect 1 ('gain:abc'): "), "{err}");
        assert!(parse_chain(&["gain:1e9"]).is_err());
        assert!(parse_chain(&["gain:nan"]).is_err());
        assert!(
            parse_chain(&["gain:0.5,0.6"])
                .unwrap_err()
                .to_string()
                .contains("Too many positional")
        );
        assert_eq!(
            effect_to_spec(chain.effect(1).unwrap()),
            "gain:gain=-6,gain_type=db,clamp=false"
        );
        assert_eq!(
            chain_to_specs(&chain)[0],
            "gain:gain=0.5,gain_type=amplitude,clamp=false"
        );
        let empty: [&str; 0] = [];
        assert!(parse_chain(&empty).unwrap().is_empty());
    }

    #[test]
    fn toml_load() {
        if !has("gain") {
            return;
        }
        let file = chain_from_toml(
            "device = \"cpu\"\nchunk_size = 4096\noverlap = 0\n\n[[effects]]\nname = \"Gain\"\ngain = -6\ngain_type = \"db\"\n\n[[effects]]\nname = \"gain\"\nGAIN = 2\nclamp = true\n",
        )
        .unwrap();
        assert_eq!(file.device.as_deref(), Some("cpu"));
        assert_eq!(file.chunk_size, Some(4096));
        assert_eq!(file.overlap, Some(0));
        assert_eq!(file.chain.len(), 2);
        assert_eq!(file.chain.get_param("0.gain").unwrap(), -6.0);
        assert_eq!(file.chain.get_param("1.clamp").unwrap(), 1.0);
        let spec = parse_chain(&["gain:-6,gain_type=db", "gain:2,clamp=true"]).unwrap();
        assert_eq!(file.chain, spec);
    }

    #[test]
    fn toml_errors() {
        let e = chain_from_toml("").unwrap_err();
        assert!(matches!(e, Error::Format(_)));
        assert!(
            e.to_string().contains("No [[effects]] entries found"),
            "{e}"
        );
        assert!(
            e.suggestion().unwrap().contains("[[effects]]\nname = "),
            "{e}"
        );
        assert!(
            chain_from_toml("device = \"cpu\"\neffects = []\n")
                .unwrap_err()
                .to_string()
                .contains("No [[effects]]")
        );

        let first = entries().first().expect("some effect");
        let one = Chain::new(vec![
            registry::build(first.name, &required_params(first)).unwrap(),
        ]);
        let lines = chain_to_toml(&one).lines().count();
        let missing = format!("{}\n[[effects]]\nmix = 0.5\n", chain_to_toml(&one));
        let e = chain_from_toml(&missing).unwrap_err().to_string();
        let at = format!("effect 1 (line {})", lines + 2);
        assert!(e.contains(&at) && e.contains("missing 'name'"), "{e}");

        let e = chain_from_toml("[[effects]]\nname = \"nosucheffectxyz\"\n")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("effect 0 ('nosucheffectxyz', line 2)")
                && e.contains("Unknown effect 'nosucheffectxyz'"),
            "{e}"
        );
        let e = chain_from_toml("[[effects]]\nname = 3\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("'name' must be a string"), "{e}");

        let e = chain_from_toml("[[effects]\nname = \"gain\"\n").unwrap_err();
        assert!(matches!(e, Error::Format(_)));
        assert!(e.to_string().contains("line 1, column"), "{e}");
        let e = chain_from_toml("[[effects]]\nname = \"gain\"\ngain = \n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("line 3, column"), "{e}");
        let e = chain_from_toml("devise = \"cpu\"\n[[effects]]\nname = \"gain\"\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("devise") && e.contains("line 1"), "{e}");
        let e = chain_from_toml("chunk_size = -4\n[[effects]]\nname = \"gain\"\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("line 1"), "{e}");
        let e = chain_from_toml("chunk_size = 0\n[[effects]]\nname = \"gain\"\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("chunk_size"), "{e}");
        let e = chain_from_toml("chunk_size = 8\noverlap = 8\n[[effects]]\nname = \"gain\"\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("overlap"), "{e}");

        if has("gain") {
            let e = chain_from_toml("[[effects]]\nname = \"gain\"\ngian = 2\n")
                .unwrap_err()
                .to_string();
            assert!(
                e.contains("line 3") && e.contains("did you mean 'gain'?"),
                "{e}"
            );
            let e = chain_from_toml("[[effects]]\nname = \"gain\"\ngain = [1, 2]\n")
                .unwrap_err()
                .to_string();
            assert!(
                e.contains("line 3") && e.contains("'gain' must be a number"),
                "{e}"
            );
            let e = chain_from_toml("[[effects]]\nname = \"gain\"\ngain = { a = 1 }\n")
                .unwrap_err()
                .to_string();
            assert!(e.contains("'gain' must be a number"), "{e}");
            let e = chain_from_toml("[[effects]]\nname = \"gain\"\ngain = nan\n")
                .unwrap_err()
                .to_string();
            assert!(e.contains("gain"), "{e}");
        }
    }

    /// The required parameters of an entry (first of each group) set to example values.
    fn required_params(e: &EffectEntry) -> Vec<(String, ParamValue)> {
        let infos = e.params();
        e.required
            .iter()
            .filter_map(|g| g.first())
            .map(|n| {
                let info = infos.iter().find(|i| i.name == *n).unwrap();
                (info.name.to_string(), info.to_value(example_value(info)))
            })
            .collect()
    }

    /// A chain with every registered effect, each built with its required parameters set to
    /// example values.
    fn every_effect_chain() -> Chain {
        let effects = entries()
            .iter()
            .map(|e| {
                registry::build(e.name, &required_params(e))
                    .unwrap_or_else(|err| panic!("{}: {err}", e.name))
            })
            .collect();
        Chain::new(effects)
    }

    #[test]
    fn toml_round_trip_covers_every_effect() {
        let chain = every_effect_chain();
        assert_eq!(chain.len(), entries().len());
        let text = chain_to_toml(&chain);
        let back = chain_from_toml(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
        assert_eq!(back.chain, chain, "{text}");
        assert_eq!(chain_to_toml(&back.chain), text, "writing is deterministic");
        assert_eq!(back.device, None);
        // The grammar round-trips too.
        let specs = chain_to_specs(&chain);
        assert_eq!(parse_chain(&specs).unwrap(), chain, "{specs:?}");
    }

    #[test]
    fn round_trip_keeps_non_default_values() {
        // Set every continuous parameter to a value between default and max, one effect at a
        // time, and check the TOML round trip keeps it bit for bit.
        for e in entries() {
            let mut chain = every_effect_chain();
            let i = entries().iter().position(|x| x.name == e.name).unwrap();
            for info in e.params() {
                if info.kind != crate::dsp::ParamKind::Continuous || !info.max.is_finite() {
                    continue;
                }
                let base = example_value(info);
                let v = base + (info.max - base) * 0.123_456_789;
                let path = format!("{i}.{}", info.name);
                if chain.set_param(&path, v).is_ok() {
                    let back = chain_from_toml(&chain_to_toml(&chain)).unwrap().chain;
                    assert_eq!(
                        back.get_param(&path).unwrap().to_bits(),
                        v.to_bits(),
                        "{path}"
                    );
                }
            }
        }
    }

    #[test]
    fn natural_values_fall_back_to_numbers() {
        let t = ParamInfo::musical_time("time", 0.25, "");
        assert_eq!(natural_value(&t, 0.1875), ParamValue::Text("1/8d".into()));
        assert_eq!(natural_value(&t, 0.3), ParamValue::Text("0.3/1".into()));
        let c = ParamInfo::choice("mode", &["a", "b"], 0, "");
        assert_eq!(natural_value(&c, 1.0), ParamValue::Text("b".into()));
        assert_eq!(line_column("ab\ncd", 4), (2, 2));
        assert_eq!(line_column("", 0), (1, 1));
    }
}

//! The effect registry: every name the chain grammar and TOML files accept.
//!
//! The effects (`crate::dsp::fx`) and the filters (`crate::dsp::filter`) each export a sorted
//! `ENTRIES` table; [`entries`] merges them once, sorted by name. [`build`] turns a name and
//! text-level parameters into a ready-to-prepare [`Effect`], with torchfx-style errors.

use std::sync::OnceLock;

use crate::dsp::{Effect, ParamInfo, ParamKind, ParamValue, find_param, nearest};
use crate::error::{Error, ErrorDetails, Result, brief, clip};

/// One registry entry.
#[derive(Debug, Clone, Copy)]
pub struct EffectEntry {
    /// Lower-case name used in the grammar, e.g. "lobutterworth".
    pub name: &'static str,
    /// Parameter names filled by positional values, in order.
    pub positional: &'static [&'static str],
    /// Each inner list names parameters of which at least one must be given.
    pub required: &'static [&'static [&'static str]],
    /// One line for `rtfx effects`.
    pub summary: &'static str,
    /// Builds the effect with default parameters.
    pub build: fn() -> Box<dyn Effect>,
}

impl EffectEntry {
    /// Metadata of the effect's parameters (builds a default instance to ask it).
    pub fn params(&self) -> &'static [ParamInfo] {
        (self.build)().params()
    }
}

/// Every registered effect, sorted by name.
pub fn entries() -> &'static [EffectEntry] {
    static ENTRIES: OnceLock<Vec<EffectEntry>> = OnceLock::new();
    ENTRIES.get_or_init(|| {
        let mut all: Vec<EffectEntry> = crate::dsp::fx::ENTRIES
            .iter()
            .chain(crate::dsp::filter::ENTRIES)
            .copied()
            .collect();
        all.sort_by(|a, b| a.name.cmp(b.name));
        all
    })
}

/// The names of all registered effects, sorted.
pub fn names() -> impl Iterator<Item = &'static str> {
    entries().iter().map(|e| e.name)
}

/// The entry for a name (case-insensitive, surrounding whitespace ignored).
pub fn lookup(name: &str) -> Option<&'static EffectEntry> {
    let name = name.trim();
    entries().iter().find(|e| e.name.eq_ignore_ascii_case(name))
}

/// The error for an unknown effect name: suggests the nearest name and lists all of them.
///
/// ```
/// let e = rtfx::dsp::registry::unknown_effect("nosuchfx");
/// assert!(e.to_string().starts_with("Unknown effect 'nosuchfx'"));
/// ```
pub fn unknown_effect(name: &str) -> Error {
    let available = names().collect::<Vec<_>>().join(", ");
    let suggestion = match nearest(name.trim(), names()) {
        Some(n) => format!("did you mean '{n}'? Available effects: {available}"),
        None => format!("Available effects: {available}"),
    };
    Error::Format(Box::new(ErrorDetails {
        message: format!("Unknown effect '{}'", clip(name.trim())),
        actual_value: Some(brief(name)),
        suggestion: Some(suggestion),
        ..ErrorDetails::default()
    }))
}

/// A valid, typical value of a parameter, for examples in error messages and tests: the
/// default when there is one, else 1000 for a frequency, 1 when in range, else mid-range.
pub fn example_value(info: &ParamInfo) -> f64 {
    if info.default.is_finite() {
        return info.default;
    }
    let in_range = |v: f64| info.validate(v).is_ok();
    let value = match info.kind {
        ParamKind::Choice(_) | ParamKind::Toggle => info.min,
        ParamKind::MusicalTime if in_range(0.25) => 0.25,
        _ if info.unit == "Hz" && in_range(1000.0) => 1000.0,
        _ if in_range(1.0) => 1.0,
        _ => {
            let (lo, hi) = example_range(info);
            lo + (hi - lo) / 2.0
        }
    };
    info.clamp(value)
}

/// A finite range to pick example values of `info` from: its own bounds, an infinite lower
/// one replaced by −1000 and an infinite upper one by 1000 above the lower (or above 0).
pub fn example_range(info: &ParamInfo) -> (f64, f64) {
    let lo = if info.min.is_finite() {
        info.min
    } else {
        -1000.0
    };
    let hi = if info.max.is_finite() {
        info.max
    } else {
        lo.max(0.0) + 1000.0
    };
    (lo, hi)
}

/// `value` written as the grammar writes it (choice names, note values, plain numbers).
fn example_text(info: &ParamInfo, value: f64) -> String {
    match info.to_value(value) {
        ParamValue::Text(t) => t,
        other => other.to_string(),
    }
}

/// Builds an effect from its name and text-level parameters.
///
/// Every parameter is converted and validated with its [`ParamInfo`], then all of them are set
/// at once with [`Effect::set_params`], so a value whose validity depends on another parameter
/// is checked with the value given for it (`order=24,order_scale=db` in any order), not with
/// its default. Choice and toggle parameters come first (in the given order), then the others,
/// for effects that set them one by one (e.g. `gain` checked against `gain_type`). Unknown
/// names suggest the nearest one; missing required parameters are named with an example of the
/// grammar.
pub fn build(name: &str, params: &[(String, ParamValue)]) -> Result<Box<dyn Effect>> {
    let entry = lookup(name).ok_or_else(|| unknown_effect(name))?;
    let mut effect = (entry.build)();
    let infos = effect.params();
    let mut resolved: Vec<(&'static ParamInfo, &ParamValue)> = Vec::with_capacity(params.len());
    for (key, value) in params {
        resolved.push((find_param(entry.name, infos, key.trim())?, value));
    }
    let is_mode = |info: &ParamInfo| matches!(info.kind, ParamKind::Choice(_) | ParamKind::Toggle);
    // Stable sort: modes first, the given order otherwise.
    resolved.sort_by_key(|(info, _)| !is_mode(info));
    let numbers = resolved
        .iter()
        .map(|(info, value)| Ok((info.name, info.parse(value)?)))
        .collect::<Result<Vec<_>>>()?;
    effect.set_params(&numbers)?;
    let missing: Vec<&[&str]> = entry
        .required
        .iter()
        .copied()
        .filter(|group| {
            !group.iter().any(|g| {
                resolved
                    .iter()
                    .any(|(info, _)| info.name.eq_ignore_ascii_case(g))
            })
        })
        .collect();
    if !missing.is_empty() {
        return Err(missing_required(entry, infos, &missing));
    }
    Ok(effect)
}

/// The error for required parameters that were not given.
fn missing_required(
    entry: &EffectEntry,
    infos: &'static [ParamInfo],
    missing: &[&[&str]],
) -> Error {
    let describe = |group: &[&str]| match group {
        [one] => format!("'{one}'"),
        many => {
            let quoted: Vec<String> = many.iter().map(|n| format!("'{n}'")).collect();
            format!("one of {}", quoted.join(", "))
        }
    };
    let what: Vec<String> = missing.iter().map(|g| describe(g)).collect();
    let plural = if missing.len() > 1 { "s" } else { "" };
    let message = format!(
        "Invalid parameters for effect '{}': missing required parameter{plural} {}",
        entry.name,
        what.join(" and ")
    );
    let info_of = |n: &str| infos.iter().find(|p| p.name.eq_ignore_ascii_case(n));
    // Keyword example for every missing group (its first parameter).
    let keywords: Vec<String> = missing
        .iter()
        .filter_map(|g| g.first().and_then(|n| info_of(n)))
        .map(|info| format!("{}={}", info.name, example_text(info, example_value(info))))
        .collect();
    // Positional example when every missing group has a positional parameter: fill the
    // positional list up to the last one needed.
    let positions: Option<Vec<usize>> = missing
        .iter()
        .map(|g| {
            g.iter()
                .find_map(|n| entry.positional.iter().position(|p| p == n))
        })
        .collect();
    let mut suggestion = String::from("give it");
    if let Some(last) = positions.and_then(|p| p.into_iter().max()) {
        let values: Vec<String> = entry.positional[..=last]
            .iter()
            .filter_map(|n| info_of(n))
            .map(|info| example_text(info, example_value(info)))
            .collect();
        suggestion.push_str(&format!(
            " positionally, e.g. `{}:{}`, or",
            entry.name,
            values.join(",")
        ));
    }
    suggestion.push_str(&format!(
        " as keyword{plural}, e.g. `{}:{}`",
        entry.name,
        keywords.join(",")
    ));
    Error::InvalidParameter(Box::new(ErrorDetails {
        message,
        parameter_name: Some(
            missing
                .iter()
                .map(|g| g.join("|"))
                .collect::<Vec<_>>()
                .join(", "),
        ),
        suggestion: Some(suggestion),
        ..ErrorDetails::default()
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_are_sorted_unique_and_match_their_effects() {
        let all = entries();
        for pair in all.windows(2) {
            assert!(
                pair[0].name < pair[1].name,
                "{} !< {}",
                pair[0].name,
                pair[1].name
            );
        }
        for e in all {
            assert_eq!(e.name, e.name.to_ascii_lowercase());
            let fx = (e.build)();
            assert_eq!(fx.name(), e.name);
            for p in e
                .positional
                .iter()
                .chain(e.required.iter().flat_map(|g| g.iter()))
            {
                assert!(
                    fx.params().iter().any(|i| i.name == *p),
                    "{}: '{p}' is not a parameter",
                    e.name
                );
            }
        }
    }

    #[test]
    fn lookup_is_case_insensitive() {
        for e in entries() {
            assert_eq!(
                lookup(&e.name.to_ascii_uppercase()).map(|x| x.name),
                Some(e.name)
            );
            assert_eq!(
                lookup(&format!("  {} ", e.name)).map(|x| x.name),
                Some(e.name)
            );
        }
        assert!(lookup("definitely-not-an-effect").is_none());
    }

    #[test]
    fn unknown_effect_lists_available_and_suggests() {
        let e = build("zzzzzzzzzz", &[])
            .err()
            .expect("unknown name must fail");
        assert!(matches!(e, Error::Format(_)));
        let text = e.to_string();
        assert!(text.contains("Unknown effect 'zzzzzzzzzz'"), "{text}");
        assert!(text.contains("Available effects:"), "{text}");
        for n in names() {
            assert!(text.contains(n), "{text} lacks {n}");
        }
        if let Some(first) = entries().iter().find(|e| e.name.len() >= 5) {
            let typo = &first.name[..first.name.len() - 1];
            let text = build(typo, &[]).err().unwrap().to_string();
            assert!(
                text.contains(&format!("did you mean '{}'?", first.name)),
                "{text}"
            );
        }
    }

    /// Required parameters of an entry set to example values.
    pub(crate) fn required_example(e: &EffectEntry) -> Vec<(String, ParamValue)> {
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

    #[test]
    fn every_entry_builds_with_its_required_examples() {
        for e in entries() {
            let params = required_example(e);
            let fx = build(e.name, &params).unwrap_or_else(|err| panic!("{}: {err}", e.name));
            assert_eq!(fx.name(), e.name);
        }
    }

    #[test]
    fn missing_required_names_the_parameter_and_shows_the_grammar() {
        for e in entries().iter().filter(|e| !e.required.is_empty()) {
            let err = build(e.name, &[])
                .err()
                .expect("missing required must fail");
            let text = err.to_string();
            assert!(
                text.starts_with(&format!(
                    "Invalid parameters for effect '{}': missing required",
                    e.name
                )),
                "{text}"
            );
            for g in e.required {
                assert!(text.contains(&format!("'{}'", g[0])), "{text}");
            }
            assert!(text.contains(&format!("`{}:", e.name)), "{text}");
            assert!(err.is_invalid_parameter());
        }
    }

    #[test]
    fn unknown_parameter_suggests_nearest() {
        for e in entries() {
            let first = e.params()[0].name;
            let mut params = required_example(e);
            params.push((format!("{first}x"), ParamValue::Number(1.0)));
            let text = build(e.name, &params)
                .err()
                .expect("unknown key")
                .to_string();
            assert!(
                text.contains(&format!("did you mean '{first}'")),
                "{}: {text}",
                e.name
            );
        }
    }

    #[test]
    fn gain_mode_is_applied_before_gain() {
        if lookup("gain").is_none() {
            return;
        }
        // A negative gain is only valid in dB; it must see gain_type first even when given last.
        let fx = build(
            "gain",
            &[
                ("gain".into(), ParamValue::Number(-6.0)),
                ("GAIN_TYPE".into(), ParamValue::Text("db".into())),
            ],
        )
        .unwrap();
        assert_eq!(fx.get_param("gain"), Some(-6.0));
        assert_eq!(fx.get_param("gain_type"), Some(1.0));
    }

    #[test]
    fn example_values_are_valid() {
        let cases = [
            ParamInfo::continuous("cutoff", 1.0, 100_000.0, f64::NAN, "Hz", ""),
            ParamInfo::continuous("q", 0.01, 100.0, f64::NAN, "", ""),
            ParamInfo::continuous("x", 2.0, 4.0, f64::NAN, "", ""),
            ParamInfo::continuous("y", 2.0, f64::INFINITY, f64::NAN, "", ""),
            ParamInfo::integer("n", 1.0, 9.0, f64::NAN, ""),
            ParamInfo::choice("c", &["a", "b"], 1, ""),
            ParamInfo::musical_time("t", f64::NAN, ""),
        ];
        for info in &cases {
            let v = example_value(info);
            assert!(info.validate(v).is_ok(), "{}: {v}", info.name);
        }
        assert_eq!(example_value(&cases[0]), 1000.0);
        assert_eq!(example_value(&cases[1]), 1.0);
        assert_eq!(example_value(&cases[2]), 3.0);
        assert_eq!(example_value(&cases[5]), 1.0);
    }
}

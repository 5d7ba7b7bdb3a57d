//! Seeded random augmentation: effect specs whose values are distributions, drawn anew for
//! each item from a generator seeded by the item's seed and identity, never by its position.
//!
//! A value may be `uniform(a,b)`, `loguniform(a,b)` (for frequencies: uniform in log), a
//! `normal(mean,sd)` clipped to the parameter's range, or `choice(x,y,...)`; `p=0.5` applies
//! the whole effect with that probability. Parentheses protect the commas inside:
//!
//! ```
//! use rtfx::dsp::random::RandomChain;
//!
//! let template = RandomChain::parse(&["lobutterworth:loguniform(2000,8000),order=4",
//!                                     "reverb:room_size=uniform(0.1,0.9),p=0.5"])?.unwrap();
//! let a = template.draw(7, "clips/a.wav");
//! assert_eq!(a, template.draw(7, "clips/a.wav")); // same seed and key, same values
//! assert!(a[0].starts_with("lobutterworth:"));
//! # Ok::<(), rtfx::Error>(())
//! ```

use sha2::Digest;

use crate::dsp::noise::Noise;
use crate::dsp::registry::{self, EffectEntry};
use crate::dsp::{ParamInfo, ParamKind};
use crate::error::{Error, Result};

/// Splits a spec's parameters on commas outside parentheses.
///
/// ```
/// use rtfx::dsp::random::split_params;
/// assert_eq!(split_params("uniform(1,2),q=0.7"), ["uniform(1,2)", "q=0.7"]);
/// ```
pub fn split_params(text: &str) -> Vec<&str> {
    let mut parts = Vec::new();
    let (mut depth, mut start) = (0i32, 0);
    for (i, c) in text.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            ',' if depth == 0 => {
                parts.push(text[start..i].trim());
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(text[start..].trim());
    parts.retain(|p| !p.is_empty());
    parts
}

/// A distribution of one parameter's values.
#[derive(Debug, Clone, PartialEq)]
pub enum Distribution {
    /// Uniform in `[a, b)`.
    Uniform(f64, f64),
    /// Uniform in `log` between `a` and `b` (both above 0).
    LogUniform(f64, f64),
    /// Normal, clipped to the parameter's range.
    Normal(f64, f64),
    /// One of the values, each as likely.
    Choice(Vec<String>),
}

impl Distribution {
    /// Parses `name(args)`; `Ok(None)` when `text` is not a distribution.
    pub fn parse(text: &str, param: &str) -> Result<Option<Self>> {
        let text = text.trim();
        let Some((name, rest)) = text.split_once('(') else {
            return Ok(None);
        };
        let name = name.trim().to_ascii_lowercase();
        let known = ["uniform", "loguniform", "normal", "choice"];
        let bad = |why: String| {
            Error::invalid_parameter(
                format!("Invalid distribution for '{param}': {why}"),
                param,
                text,
            )
            .with_expected("uniform(a,b), loguniform(a,b), normal(mean,sd) or choice(x,y,...)")
        };
        if !known.contains(&name.as_str()) {
            return Err(bad(format!("unknown distribution '{name}'")));
        }
        let Some(args) = rest.trim_end().strip_suffix(')') else {
            return Err(bad("the closing parenthesis is missing".into()));
        };
        let args: Vec<&str> = args.split(',').map(str::trim).collect();
        if name == "choice" {
            if args.iter().any(|a| a.is_empty()) {
                return Err(bad("choice needs values separated by commas".into()));
            }
            return Ok(Some(Distribution::Choice(
                args.iter().map(|a| a.to_string()).collect(),
            )));
        }
        let numbers: Vec<f64> = args
            .iter()
            .map(|a| a.parse::<f64>().ok().filter(|v| v.is_finite()))
            .collect::<Option<_>>()
            .ok_or_else(|| bad(format!("{name} takes two numbers")))?;
        let [a, b] = numbers[..] else {
            return Err(bad(format!(
                "{name} takes two numbers, not {}",
                numbers.len()
            )));
        };
        Ok(Some(match name.as_str() {
            "uniform" if a < b => Distribution::Uniform(a, b),
            "loguniform" if 0.0 < a && a < b => Distribution::LogUniform(a, b),
            "normal" if b > 0.0 => Distribution::Normal(a, b),
            "uniform" => return Err(bad(format!("uniform(a,b) needs a < b, got {a} and {b}"))),
            "loguniform" => {
                return Err(bad(format!(
                    "loguniform(a,b) needs 0 < a < b, got {a} and {b}"
                )));
            }
            _ => return Err(bad(format!("normal(mean,sd) needs sd > 0, got {b}"))),
        }))
    }

    /// Checks the distribution's values against the parameter's range.
    fn check(&self, info: &ParamInfo, effect: &str) -> Result<()> {
        let out = |v: f64| v < info.min || (info.min_exclusive && v <= info.min) || v > info.max;
        let (low, high) = match self {
            Distribution::Uniform(a, b) | Distribution::LogUniform(a, b) => (*a, *b),
            // Clipped to the range when drawn; the mean must lie in it.
            Distribution::Normal(m, _) => (*m, *m),
            Distribution::Choice(_) => return Ok(()),
        };
        if matches!(info.kind, ParamKind::Choice(_)) {
            return Err(Error::invalid_parameter(
                format!(
                    "'{}' of '{effect}' takes names: use choice(a,b,...)",
                    info.name
                ),
                info.name,
                format!("{self:?}"),
            ));
        }
        if out(low) || out(high) {
            return Err(Error::invalid_range(
                format!(
                    "The distribution of '{}' of '{effect}' reaches outside its range",
                    info.name
                ),
                info.name,
                format!("{low} to {high}"),
            )
            .with_expected(info.range_text()));
        }
        Ok(())
    }

    /// One value as spec text.
    fn draw(&self, rng: &mut Noise, info: Option<&ParamInfo>) -> String {
        let value = match self {
            Distribution::Uniform(a, b) => a + (b - a) * rng.unit_f64(),
            Distribution::LogUniform(a, b) => (a.ln() + (b.ln() - a.ln()) * rng.unit_f64()).exp(),
            Distribution::Normal(m, sd) => {
                // Box-Muller, clipped to the parameter's range.
                let u = 1.0 - rng.unit_f64();
                let v = rng.unit_f64();
                let x = m + sd * (-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos();
                info.map_or(x, |i| x.clamp(i.min, i.max))
            }
            Distribution::Choice(values) => return values[rng.below(values.len())].clone(),
        };
        format!("{value}")
    }
}

/// One parameter token of a template effect.
#[derive(Debug, Clone, PartialEq)]
enum Token {
    /// Written as given.
    Fixed(String),
    /// `key=` (or positional) followed by a drawn value.
    Random {
        key: Option<String>,
        param: Option<&'static ParamInfo>,
        distribution: Distribution,
    },
}

/// One effect of a template: its tokens and the probability it is applied with.
#[derive(Debug, Clone, PartialEq)]
struct RandomEffect {
    name: String,
    tokens: Vec<Token>,
    probability: Option<f64>,
}

/// A chain template whose values are drawn per item.
#[derive(Debug, Clone, PartialEq)]
pub struct RandomChain {
    effects: Vec<RandomEffect>,
}

impl RandomChain {
    /// Parses specs; `Ok(None)` when none holds a distribution or a probability (a plain
    /// chain). Distributions are checked against their parameter's range.
    pub fn parse<S: AsRef<str>>(specs: &[S]) -> Result<Option<Self>> {
        let mut random = false;
        let mut effects = Vec::new();
        for spec in specs {
            let text = spec.as_ref();
            let (name, rest) = text.split_once(':').unwrap_or((text, ""));
            let entry = registry::lookup(name.trim());
            let mut tokens = Vec::new();
            let mut probability = None;
            let mut positional = 0;
            for token in split_params(rest) {
                let (key, value) = match token.split_once('=') {
                    Some((k, v)) => (Some(k.trim().to_ascii_lowercase()), v.trim()),
                    None => (None, token),
                };
                if key.as_deref() == Some("p") {
                    let p: f64 = value
                        .parse()
                        .ok()
                        .filter(|p| (0.0..=1.0).contains(p))
                        .ok_or_else(|| {
                            Error::invalid_parameter(
                                format!("The probability of '{}' must be from 0 to 1", name.trim()),
                                "p",
                                value,
                            )
                            .with_suggestion("e.g. p=0.5 applies the effect to half the items")
                        })?;
                    probability = Some(p);
                    random = true;
                    continue;
                }
                let info = entry.and_then(|e| param_info(e, key.as_deref(), positional));
                if key.is_none() {
                    positional += 1;
                }
                let shown =
                    info.map_or_else(|| key.clone().unwrap_or_default(), |i| i.name.to_string());
                match Distribution::parse(value, &shown)? {
                    Some(distribution) => {
                        if let Some(info) = info {
                            distribution.check(info, name.trim())?;
                        }
                        random = true;
                        tokens.push(Token::Random {
                            key,
                            param: info,
                            distribution,
                        });
                    }
                    None => tokens.push(Token::Fixed(token.to_string())),
                }
            }
            effects.push(RandomEffect {
                name: name.trim().to_string(),
                tokens,
                probability,
            });
        }
        Ok(random.then_some(RandomChain { effects }))
    }

    /// The concrete specs for the item with this `seed` and identity `key`: the same pair
    /// always gives the same values, on any machine, in any order.
    pub fn draw(&self, seed: u64, key: &str) -> Vec<String> {
        let mut rng = Noise::new(item_seed(seed, key));
        let mut specs = Vec::new();
        for effect in &self.effects {
            // Drawn whether or not the effect is applied, so later values do not depend on it.
            let applied = effect.probability.is_none_or(|p| rng.unit_f64() < p);
            let params: Vec<String> = effect
                .tokens
                .iter()
                .map(|t| match t {
                    Token::Fixed(text) => text.clone(),
                    Token::Random {
                        key,
                        param,
                        distribution,
                    } => {
                        let value = distribution.draw(&mut rng, *param);
                        match key {
                            Some(k) => format!("{k}={value}"),
                            None => value,
                        }
                    }
                })
                .collect();
            if applied {
                specs.push(if params.is_empty() {
                    effect.name.clone()
                } else {
                    format!("{}:{}", effect.name, params.join(","))
                });
            }
        }
        specs
    }
}

/// The effects of a TOML chain file as grammar specs, when some value is a distribution (a
/// string such as `"uniform(0.1,0.9)"`) or an effect has a probability `p`; `Ok(None)` for a
/// plain file, which [`crate::dsp::spec::chain_from_toml`] reads as it is. The specs go to
/// [`RandomChain::parse`] like `-e` specs.
///
/// ```
/// let text = "[[effects]]\nname = \"reverb\"\nroom_size = \"uniform(0.1,0.9)\"\np = 0.5\n";
/// let specs = rtfx::dsp::random::template_specs_from_toml(text)?.unwrap();
/// assert_eq!(specs, ["reverb:room_size=uniform(0.1,0.9),p=0.5"]);
/// # Ok::<(), rtfx::Error>(())
/// ```
pub fn template_specs_from_toml(text: &str) -> Result<Option<Vec<String>>> {
    let value: toml::Table = toml::from_str(text)
        .map_err(|e| Error::format(format!("Invalid TOML chain: {}", e.message())))?;
    let Some(toml::Value::Array(effects)) = value.get("effects") else {
        return Ok(None);
    };
    let mut random = false;
    let mut specs = Vec::new();
    for effect in effects {
        let Some(table) = effect.as_table() else {
            return Ok(None);
        };
        let Some(name) = table.get("name").and_then(|n| n.as_str()) else {
            return Ok(None);
        };
        let mut params = Vec::new();
        for (key, value) in table.iter().filter(|(k, _)| k.as_str() != "name") {
            let text = match value {
                toml::Value::String(s) => {
                    random |= s.contains('(');
                    s.clone()
                }
                toml::Value::Integer(i) => i.to_string(),
                toml::Value::Float(f) => f.to_string(),
                toml::Value::Boolean(b) => b.to_string(),
                _ => return Ok(None),
            };
            random |= key == "p";
            params.push(format!("{key}={text}"));
        }
        // `p` last, as in the grammar's examples; the order of keywords does not matter.
        params.sort_by_key(|p| p.starts_with("p="));
        specs.push(if params.is_empty() {
            name.to_string()
        } else {
            format!("{name}:{}", params.join(","))
        });
    }
    Ok(random.then_some(specs))
}

/// The parameter a key (or the n-th positional value) names.
fn param_info(
    entry: &EffectEntry,
    key: Option<&str>,
    positional: usize,
) -> Option<&'static ParamInfo> {
    let name = match key {
        Some(k) => k.to_string(),
        None => entry.positional.get(positional)?.to_string(),
    };
    entry.params().iter().find(|p| p.name == name)
}

/// The generator seed of an item: SHA-256 of the seed and the key, so that it depends on
/// both and on nothing else.
pub fn item_seed(seed: u64, key: &str) -> u64 {
    let digest = sha2::Sha256::new()
        .chain_update(seed.to_le_bytes())
        .chain_update(key.as_bytes())
        .finalize();
    let mut bytes = [0u8; 8];
    bytes.copy_from_slice(&digest[..8]);
    u64::from_le_bytes(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn draws_follow_their_distributions_and_depend_on_seed_and_key_only() {
        let t = RandomChain::parse(&[
            "lobutterworth:cutoff=loguniform(1000,8000),order=choice(2,4)",
            "gain:uniform(0.5,1.5)",
        ])
        .unwrap()
        .unwrap();
        let mut cutoffs = Vec::new();
        for i in 0..2000 {
            let specs = t.draw(1, &format!("item{i}"));
            let cutoff: f64 = specs[0]
                .split("cutoff=")
                .nth(1)
                .unwrap()
                .split(',')
                .next()
                .unwrap()
                .parse()
                .unwrap();
            assert!((1000.0..8000.0).contains(&cutoff));
            cutoffs.push(cutoff.ln());
            assert!(specs[0].ends_with("order=2") || specs[0].ends_with("order=4"));
            let gain: f64 = specs[1].trim_start_matches("gain:").parse().unwrap();
            assert!((0.5..1.5).contains(&gain));
        }
        // Uniform in log: the mean of ln(cutoff) is the middle of ln(1000)..ln(8000).
        let mean = cutoffs.iter().sum::<f64>() / cutoffs.len() as f64;
        let middle = (1000f64.ln() + 8000f64.ln()) / 2.0;
        assert!((mean - middle).abs() < 0.05, "{mean} vs {middle}");
        assert_eq!(t.draw(1, "a"), t.draw(1, "a"));
        assert_ne!(t.draw(1, "a"), t.draw(2, "a"));
        assert_ne!(t.draw(1, "a"), t.draw(1, "b"));
    }

    #[test]
    fn probability_applies_the_effect_that_often() {
        let t = RandomChain::parse(&["gain:0.5,p=0.3", "hibutterworth:80"])
            .unwrap()
            .unwrap();
        let applied = (0..4000)
            .filter(|i| t.draw(9, &i.to_string()).len() == 2)
            .count();
        assert!((applied as f64 / 4000.0 - 0.3).abs() < 0.03, "{applied}");
        assert!(
            RandomChain::parse(&["gain:0.5", "hibutterworth:80,order=2"])
                .unwrap()
                .is_none()
        );
    }

    #[test]
    fn bad_distributions_name_the_parameter() {
        for (spec, says) in [
            ("gain:uniform(2,1)", "a < b"),
            ("lobutterworth:cutoff=loguniform(0,100)", "0 < a < b"),
            (
                "lobutterworth:cutoff=gaussian(1,2)",
                "unknown distribution 'gaussian'",
            ),
            ("reverb:room_size=uniform(0.5,3)", "room_size"),
            ("gain:normal(1,0)", "sd > 0"),
            ("gain:0.5,p=2", "from 0 to 1"),
            ("gain:uniform(1,2", "closing parenthesis"),
        ] {
            let e = RandomChain::parse(&[spec]).unwrap_err().to_string();
            assert!(e.contains(says), "{spec}: {e}");
        }
    }
}

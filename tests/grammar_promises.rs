//! What the chain grammar, the TOML chain files, the README and `rtfx effects` promise, checked
//! against what the registry really builds (issue 12): every documented parameter combination
//! builds the same effect from the grammar and from TOML, every advertised range is the range
//! the build accepts, and errors number effects one way and never echo huge values.

use std::process::Command;

use rtfx::dsp::registry::{self, EffectEntry, entries, example_value};
use rtfx::dsp::spec::{chain_from_toml, parse_chain};
use rtfx::dsp::{Chain, ParamInfo, ParamKind, ParamValue};

/// Parameters as the grammar and TOML carry them.
type Params = Vec<(String, ParamValue)>;

/// The required parameters of an entry (first of each group) set to example values.
fn required(entry: &EffectEntry) -> Params {
    let infos = entry.params();
    entry
        .required
        .iter()
        .filter_map(|group| group.first())
        .filter_map(|name| infos.iter().find(|p| p.name == *name))
        .map(|p| (p.name.to_string(), p.to_value(example_value(p))))
        .collect()
}

/// `params` with `name` set to `value` (replacing an earlier value).
fn with(params: &Params, name: &str, value: ParamValue) -> Params {
    let mut out: Params = params.iter().filter(|(k, _)| k != name).cloned().collect();
    out.push((name.to_string(), value));
    out
}

/// A value as grammar text.
fn grammar_text(value: &ParamValue) -> String {
    match value {
        ParamValue::Number(n) => n.to_string(),
        ParamValue::Bool(b) => b.to_string(),
        ParamValue::Text(t) => t.clone(),
    }
}

/// The grammar form with every parameter as a keyword.
fn keyword_spec(entry: &EffectEntry, params: &Params) -> String {
    let tokens: Vec<String> = params
        .iter()
        .map(|(k, v)| format!("{k}={}", grammar_text(v)))
        .collect();
    format!("{}:{}", entry.name, tokens.join(","))
}

/// The grammar form with the longest run of given positional parameters written positionally
/// and the others as keywords; None when the first positional parameter is not given.
fn positional_spec(entry: &EffectEntry, params: &Params) -> Option<String> {
    let value_of = |name: &str| params.iter().find(|(k, _)| k == name).map(|(_, v)| v);
    let positional: Vec<&str> = entry
        .positional
        .iter()
        .copied()
        .take_while(|p| value_of(p).is_some())
        .collect();
    if positional.is_empty() {
        return None;
    }
    let mut tokens: Vec<String> = positional
        .iter()
        .filter_map(|p| value_of(p))
        .map(grammar_text)
        .collect();
    tokens.extend(
        params
            .iter()
            .filter(|(k, _)| !positional.contains(&k.as_str()))
            .map(|(k, v)| format!("{k}={}", grammar_text(v))),
    );
    Some(format!("{}:{}", entry.name, tokens.join(",")))
}

/// The TOML form: one `[[effects]]` table.
fn toml_text(entry: &EffectEntry, params: &Params) -> String {
    let infos = entry.params();
    let mut text = format!("[[effects]]\nname = \"{}\"\n", entry.name);
    for (k, v) in params {
        let info = infos.iter().find(|p| p.name == k).expect("a parameter");
        let value = match v {
            ParamValue::Number(n)
                if info.kind == ParamKind::Integer && n.fract() == 0.0 && n.abs() < 1e15 =>
            {
                toml::Value::Integer(*n as i64)
            }
            ParamValue::Number(n) => toml::Value::Float(*n),
            ParamValue::Bool(b) => toml::Value::Boolean(*b),
            ParamValue::Text(t) => toml::Value::String(t.clone()),
        };
        text.push_str(&format!("{k} = {value}\n"));
    }
    text
}

/// Builds `params` through the registry, the keyword and positional grammar and TOML, and
/// checks that all of them agree. Returns the registry's error, if it refuses.
fn build_every_way(entry: &EffectEntry, params: &Params) -> Result<Chain, String> {
    let direct = registry::build(entry.name, params).map_err(|e| e.to_string())?;
    let direct = Chain::new(vec![direct]);
    let keyword = keyword_spec(entry, params);
    let from_keywords =
        parse_chain(&[&keyword]).unwrap_or_else(|e| panic!("grammar `{keyword}`: {e}"));
    assert_eq!(from_keywords, direct, "grammar `{keyword}`");
    if let Some(spec) = positional_spec(entry, params) {
        let from_positional =
            parse_chain(&[&spec]).unwrap_or_else(|e| panic!("grammar `{spec}`: {e}"));
        assert_eq!(from_positional, direct, "grammar `{spec}`");
    }
    let toml = toml_text(entry, params);
    let from_toml = chain_from_toml(&toml)
        .unwrap_or_else(|e| panic!("TOML of `{keyword}`: {e}\n{toml}"))
        .chain;
    assert_eq!(from_toml, direct, "TOML of `{keyword}`:\n{toml}");
    Ok(direct)
}

/// The documented values of a parameter: every option of a choice, both states of a toggle,
/// the default (or example) of anything else.
fn documented_values(info: &ParamInfo) -> Vec<ParamValue> {
    match info.kind {
        ParamKind::Choice(options) => options
            .iter()
            .map(|o| ParamValue::Text((*o).to_string()))
            .collect(),
        ParamKind::Toggle => vec![ParamValue::Bool(false), ParamValue::Bool(true)],
        _ => vec![info.to_value(example_value(info))],
    }
}

/// Values of a numeric parameter worth trying as a companion of a mode: its example, default,
/// minimum and maximum.
fn companion_values(info: &ParamInfo) -> Vec<f64> {
    [example_value(info), info.default, info.min, info.max]
        .into_iter()
        .filter(|v| v.is_finite())
        .collect()
}

#[test]
fn every_documented_parameter_builds_the_same_from_grammar_and_toml() {
    let mut failures = Vec::new();
    for entry in entries() {
        let base = required(entry);
        build_every_way(entry, &base)
            .unwrap_or_else(|e| panic!("{}: required examples refused: {e}", entry.name));
        let infos = entry.params();
        for info in infos {
            for value in documented_values(info) {
                let params = with(&base, info.name, value.clone());
                if build_every_way(entry, &params).is_ok() {
                    continue;
                }
                // A mode may need another parameter in its own range (e.g. order_scale=db
                // needs the order as a slope): some companion value must make it build.
                let companion = infos
                    .iter()
                    .filter(|c| c.name != info.name)
                    .filter(|c| matches!(c.kind, ParamKind::Continuous | ParamKind::Integer))
                    .flat_map(|c| companion_values(c).into_iter().map(move |v| (c, v)))
                    .find(|(c, v)| {
                        let params = with(&params, c.name, ParamValue::Number(*v));
                        build_every_way(entry, &params).is_ok()
                    });
                if companion.is_none() {
                    let err = registry::build(entry.name, &params)
                        .err()
                        .map(|e| e.to_string())
                        .unwrap_or_default();
                    failures.push(format!("`{}`: {err}", keyword_spec(entry, &params)));
                }
            }
        }
    }
    assert!(
        failures.is_empty(),
        "documented values that never build:\n{}",
        failures.join("\n")
    );
}

#[test]
fn slopes_in_db_per_octave_build_in_every_form() {
    let cases = [
        "lobutterworth:1000,order=24,order_scale=db",
        "lobutterworth:1000,24,order_scale=db",
        "hibutterworth:80,order_scale=db,order=12",
        "butterworth:high,80,24,order_scale=db",
        "linkwitzriley:low,500,order=24,order_scale=db",
        "lolinkwitzriley:500,24,order_scale=db",
        "hilinkwitzriley:500,order=96,order_scale=db",
    ];
    for spec in cases {
        let chain = parse_chain(&[spec]).unwrap_or_else(|e| panic!("`{spec}`: {e}"));
        let name = spec.split(':').next().unwrap_or_default();
        let fx = chain.effect(0).expect("one effect");
        let order = fx.get_param("order").expect("an order");
        assert_eq!(fx.get_param("order_scale"), Some(1.0), "`{spec}`");
        let mut toml =
            format!("[[effects]]\nname = \"{name}\"\norder = {order}\norder_scale = \"db\"\n");
        for p in ["cutoff", "btype"] {
            if let Some(v) = fx.get_param(p) {
                let info = fx.params().iter().find(|i| i.name == p).expect("info");
                let value = match info.to_value(v) {
                    ParamValue::Text(t) => format!("\"{t}\""),
                    other => other.to_string(),
                };
                toml.push_str(&format!("{p} = {value}\n"));
            }
        }
        let file = chain_from_toml(&toml).unwrap_or_else(|e| panic!("{toml}: {e}"));
        assert_eq!(file.chain, chain, "{toml}");
    }
}

/// `text` split at the first `sep` outside parentheses (all of it and "" when there is none).
fn split_top_level(text: &str, sep: char) -> (&str, &str) {
    let mut depth = 0i32;
    for (i, c) in text.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            _ if c == sep && depth == 0 => return (&text[..i], &text[i + c.len_utf8()..]),
            _ => {}
        }
    }
    (text, "")
}

/// The parameter names of a README effects-table cell, without their notes in parentheses.
fn cell_names(cell: &str) -> Vec<String> {
    let mut depth = 0;
    let mut plain = String::new();
    for c in cell.chars() {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            _ if depth == 0 => plain.push(c),
            _ => {}
        }
    }
    plain
        .split(',')
        .filter_map(|item| item.split_whitespace().next())
        .map(|w| w.trim_matches(|c: char| !c.is_ascii_alphanumeric() && c != '_'))
        .filter(|w| !w.is_empty())
        .map(str::to_string)
        .collect()
}

#[test]
fn readme_effects_table_matches_the_registry() {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md"))
        .expect("README.md");
    let section = readme
        .split("\n## Effects\n")
        .nth(1)
        .and_then(|s| s.split("\n## ").next())
        .expect("an Effects section");
    let mut problems = Vec::new();
    let mut seen = Vec::new();
    for row in section.lines().filter(|l| l.starts_with("| `")) {
        let cells: Vec<&str> = row.split('|').map(str::trim).collect();
        let (names, params) = (cells[1], cells[2]);
        // "positional; keyword-only": the part before ';' lists the positional parameters.
        let (positional, keywords) = split_top_level(params, ';');
        let positional = cell_names(positional);
        let keywords = cell_names(keywords);
        for name in names.split('`').skip(1).step_by(2) {
            let Some(entry) = registry::lookup(name) else {
                problems.push(format!("README names unknown effect '{name}'"));
                continue;
            };
            seen.push(entry.name);
            if positional != entry.positional {
                problems.push(format!(
                    "{name}: README positional {positional:?}, registry {:?}",
                    entry.positional
                ));
            }
            for p in positional.iter().chain(&keywords) {
                if !entry.params().iter().any(|i| i.name == p) {
                    problems.push(format!("{name}: README lists unknown parameter '{p}'"));
                }
            }
        }
    }
    for entry in entries() {
        if !seen.contains(&entry.name) {
            problems.push(format!("{} is missing from the README table", entry.name));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn readme_grammar_examples_build_from_grammar_and_toml() {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md"))
        .expect("README.md");
    let section = readme
        .split("\n## Chain grammar\n")
        .nth(1)
        .and_then(|s| s.split("```text\n").nth(1))
        .and_then(|s| s.split("```").next())
        .expect("the grammar examples");
    let mut count = 0;
    for line in section.lines() {
        let Some(spec) = line.split_whitespace().next() else {
            continue;
        };
        let chain = parse_chain(&[spec]).unwrap_or_else(|e| panic!("README `{spec}`: {e}"));
        let back = chain_from_toml(&rtfx::dsp::spec::chain_to_toml(&chain))
            .unwrap_or_else(|e| panic!("README `{spec}` as TOML: {e}"));
        assert_eq!(back.chain, chain, "{spec}");
        count += 1;
    }
    assert!(count >= 5, "{section}");
}

/// Whether the build accepts `value` for `info` with some setting of the entry's modes (its
/// choice and toggle parameters), and the error of the default setting when it never does.
fn accepted_in_some_mode(entry: &EffectEntry, info: &ParamInfo, value: f64) -> Result<(), String> {
    let base = with(&required(entry), info.name, ParamValue::Number(value));
    let modes: Vec<&ParamInfo> = entry
        .params()
        .iter()
        .filter(|p| p.name != info.name)
        .filter(|p| matches!(p.kind, ParamKind::Choice(_) | ParamKind::Toggle))
        .collect();
    // Every combination of mode values (few: at most a couple of modes per effect).
    let mut settings: Vec<Params> = vec![base.clone()];
    for mode in modes {
        let mut next = Vec::new();
        for s in &settings {
            for v in 0..=(mode.max as usize) {
                next.push(with(s, mode.name, mode.to_value(v as f64)));
            }
        }
        settings = next;
    }
    if settings
        .iter()
        .any(|params| registry::build(entry.name, params).is_ok())
    {
        return Ok(());
    }
    Err(registry::build(entry.name, &base)
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default())
}

#[test]
fn advertised_ranges_are_the_accepted_ranges() {
    let mut problems = Vec::new();
    for entry in entries() {
        for info in entry.params() {
            if !matches!(info.kind, ParamKind::Continuous | ParamKind::Integer) {
                continue; // choices, toggles and note values have no numeric range to test
            }
            let range = info.range_text();
            // `(a, b]`: the minimum itself is excluded, the smallest number above it is not.
            let open_min = range.starts_with('(');
            let step = |v: f64, up: bool| match (info.kind, up) {
                (ParamKind::Integer, true) => v + 1.0,
                (ParamKind::Integer, false) => v - 1.0,
                (_, true) => v.next_up(),
                (_, false) => v.next_down(),
            };
            let lowest = if open_min {
                step(info.min, true)
            } else {
                info.min
            };
            let below = if open_min {
                info.min
            } else {
                step(info.min, false)
            };
            for (what, v) in [("minimum", lowest), ("maximum", info.max)] {
                if let Err(e) = accepted_in_some_mode(entry, info, v) {
                    problems.push(format!(
                        "{}.{} advertises {range} but its {what} {v} is refused: {e}",
                        entry.name, info.name
                    ));
                }
            }
            for v in [below, step(info.max, true)] {
                if accepted_in_some_mode(entry, info, v).is_ok() {
                    problems.push(format!(
                        "{}.{} advertises {range} but {v} is accepted",
                        entry.name, info.name
                    ));
                }
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn an_absurd_tempo_is_an_error_naming_bpm_its_value_and_range() {
    for spec in [
        "delay:bpm=1e-300,feedback=0.95",
        "delay:bpm=0.5",
        "delay:bpm=5000",
    ] {
        let err = parse_chain(&[spec])
            .err()
            .unwrap_or_else(|| panic!("`{spec}` must be refused"))
            .to_string();
        let value = spec
            .split("bpm=")
            .nth(1)
            .and_then(|s| s.split(',').next())
            .expect("a value");
        assert!(
            err.contains("Parameter: 0.bpm") || err.contains("Parameter: bpm"),
            "{err}"
        );
        assert!(err.contains(&format!("Got: {value}")), "{err}");
        assert!(err.contains("[20, 999]"), "{err}");
    }
    let chain = parse_chain(&["delay:bpm=20,delay_time=1/4", "delay:bpm=999"]).expect("in range");
    assert_eq!(chain.len(), 2);
}

#[test]
fn effects_are_numbered_from_zero_in_parse_and_build_errors() {
    let err = parse_chain(&["gain:0.5", "lobuterworth:100"])
        .expect_err("unknown effect")
        .to_string();
    assert!(err.starts_with("effect 1 ('lobuterworth:100'): "), "{err}");
    let err = parse_chain(&["gain:0.5", "gain:abc"]).expect_err("text gain");
    assert!(
        err.to_string().starts_with("effect 1 ('gain:abc'): "),
        "{err}"
    );
    assert_eq!(err.parameter_name(), Some("1.gain"), "{err}");
    let mut chain = parse_chain(&["gain:0.5", "fir:30000"]).expect("builds");
    let err = chain
        .prepare(44_100.0, 512, 2)
        .expect_err("cutoff above Nyquist")
        .to_string();
    assert!(err.starts_with("effect 1 ('fir'): "), "{err}");
    assert!(err.contains("Parameter: 1.cutoff"), "{err}");
    let err = chain_from_toml(
        "[[effects]]\nname = \"gain\"\ngain = 0.5\n\n[[effects]]\nname = \"gain\"\ngain = \"abc\"\n",
    )
    .expect_err("text gain")
    .to_string();
    assert!(err.starts_with("effect 1 ('gain', line 7): "), "{err}");
}

/// Runs the binary in `dir`; returns exit code and stderr.
fn rtfx_in(dir: &std::path::Path, args: &[&str]) -> (i32, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_rtfx"))
        .current_dir(dir)
        .args(args)
        .output()
        .expect("rtfx runs");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn render_numbers_effects_from_zero_for_parse_and_build_errors() {
    let dir = tempfile::tempdir().expect("temp dir");
    let spec = hound::WavSpec {
        channels: 1,
        sample_rate: 44_100,
        bits_per_sample: 32,
        sample_format: hound::SampleFormat::Float,
    };
    let mut w = hound::WavWriter::create(dir.path().join("in.wav"), spec).expect("wav");
    for i in 0..4410 {
        w.write_sample((i as f32 * 0.01).sin() * 0.5)
            .expect("sample");
    }
    w.finalize().expect("wav");
    let (code, err) = rtfx_in(
        dir.path(),
        &[
            "render", "in.wav", "a.wav", "-e", "gain:0.5", "-e", "gain:abc",
        ],
    );
    assert_ne!(code, 0);
    assert!(err.contains("effect 1 ('gain:abc')"), "{err}");
    let (code, err) = rtfx_in(
        dir.path(),
        &[
            "render",
            "in.wav",
            "b.wav",
            "-e",
            "gain:0.5",
            "-e",
            "fir:30000",
        ],
    );
    assert_ne!(code, 0);
    assert!(err.contains("effect 1 ('fir')"), "{err}");
}

#[test]
fn toml_device_must_be_known_and_toggles_expect_true_or_false() {
    let err = chain_from_toml("device = \"tpu\"\n[[effects]]\nname = \"gain\"\ngain = 0.5\n")
        .expect_err("unknown device")
        .to_string();
    for part in ["device", "tpu", "\"cpu\"", "\"cuda\""] {
        assert!(err.contains(part), "{err} lacks {part}");
    }
    for device in ["cpu", "cuda"] {
        let file = chain_from_toml(&format!(
            "device = \"{device}\"\n[[effects]]\nname = \"gain\"\ngain = 0.5\n"
        ))
        .expect("known device");
        assert_eq!(file.device.as_deref(), Some(device));
    }
    let err = chain_from_toml("[[effects]]\nname = \"fir\"\ncutoff = 1000\npass_zero = \"yes\"\n")
        .expect_err("a string is not a boolean")
        .to_string();
    assert!(err.contains("expected true or false"), "{err}");
    assert!(!err.contains("expected a number"), "{err}");
    assert!(err.contains("pass_zero"), "{err}");
}

#[test]
fn errors_show_huge_numbers_and_long_text_briefly() {
    let err = parse_chain(&["gain:1e308"])
        .expect_err("too big")
        .to_string();
    assert!(err.contains("Got: 1e308"), "{err}");
    assert!(err.len() < 400, "{} characters: {err}", err.len());

    let long = "x".repeat(100_000);
    let texts = [
        parse_chain(&[long.as_str()]).err(),
        parse_chain(&[format!("{long}:1")]).err(),
        parse_chain(&[format!("gain:{long}=1")]).err(),
        parse_chain(&[format!("gain:{long}")]).err(),
        parse_chain(&[format!("gain:1,gain_type={long}")]).err(),
        chain_from_toml(&format!("[[effects]]\nname = \"{long}\"\n")).err(),
        chain_from_toml(&format!("[[effects]]\nname = \"gain\"\n{long} = 1\n")).err(),
    ];
    for (i, err) in texts.into_iter().enumerate() {
        let err = err
            .unwrap_or_else(|| panic!("case {i} must fail"))
            .to_string();
        assert!(
            err.len() < 2000,
            "case {i}: {} characters: {}…",
            err.len(),
            err.chars().take(300).collect::<String>()
        );
        // The text is cut to its start and its full length (the spec, a key, a quoted value).
        assert!(
            err.contains("… (1000") && err.contains(" characters)"),
            "case {i}: {err}"
        );
    }
}

//! `rtfx preset list|show|save|delete` and `rtfx render -p NAME` as a user runs them, over the
//! preset folder the plugin uses (a temporary one here, through `RTFX_PRESET_DIR`, or the
//! default under `XDG_CONFIG_HOME` / `HOME`).

mod common;

use std::path::Path;

use common::{Run, noise, rtfx_bin, write_float_wav};
use rtfx::dsp::spec::chain_from_toml;
use rtfx::plugin::presets::{factory_preset_toml, factory_presets};

/// Runs `rtfx` in `dir` with exactly these preset-related environment variables.
fn run(dir: &Path, env: &[(&str, &Path)], args: &[&str]) -> Run {
    let mut cmd = assert_cmd::Command::new(rtfx_bin());
    cmd.current_dir(dir)
        .env_remove("RTFX_PRESET_DIR")
        .env_remove("XDG_CONFIG_HOME")
        .env_remove("HOME")
        .args(args);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().expect("rtfx runs");
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

#[test]
fn presets_are_listed_shown_saved_rendered_and_deleted() {
    let dir = tempfile::tempdir().expect("temp dir");
    let d = dir.path();
    let presets = d.join("presets");
    let env = [("RTFX_PRESET_DIR", presets.as_path())];
    write_float_wav(
        &d.join("in.wav"),
        48_000,
        &[noise(24_000, 1, 0.5), noise(24_000, 2, 0.5)],
    );

    // The factory presets are listed, in the menu's order.
    let r = run(d, &env, &["preset", "list", "--json"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let listed: Vec<serde_json::Value> = r
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON line"))
        .collect();
    let factory: Vec<&str> = factory_presets().iter().map(|(n, _)| *n).collect();
    assert_eq!(listed.len(), factory.len());
    for (line, name) in listed.iter().zip(&factory) {
        assert_eq!(line["name"], *name);
        assert_eq!(line["kind"], "factory");
    }

    // `show` prints what the plugin exports for the preset; `render -p` renders it exactly
    // as `--chain` with that file does.
    let r = run(d, &env, &["preset", "show", "vocal"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let expected = factory_preset_toml("Vocal").expect("Vocal").expect("toml");
    assert_eq!(r.stdout.trim_end(), expected.trim_end());
    std::fs::write(d.join("vocal.toml"), &r.stdout).expect("write");
    let r = run(d, &env, &["render", "in.wav", "a.wav", "-p", "Vocal"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let r = run(
        d,
        &env,
        &["render", "in.wav", "b.wav", "--chain", "vocal.toml"],
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(
        std::fs::read(d.join("a.wav")).expect("a"),
        std::fs::read(d.join("b.wav")).expect("b")
    );

    // `save` keeps every parameter, positional ones too, and creates the folder.
    let r = run(
        d,
        &env,
        &[
            "preset",
            "save",
            "my chain",
            "-e",
            "lobutterworth:1000,order=4",
            "-e",
            "gain:0.5",
        ],
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    let file = presets.join("my chain.toml");
    let text = std::fs::read_to_string(&file).expect("the preset file");
    assert!(
        text.contains("cutoff = 1000") && text.contains("order = 4"),
        "{text}"
    );
    assert!(text.contains("gain = 0.5"), "{text}");
    chain_from_toml(&text).expect("the preset is a chain file");
    let r = run(d, &env, &["preset", "list"]);
    assert!(
        r.stdout
            .lines()
            .last()
            .unwrap_or_default()
            .starts_with("my chain")
    );
    assert!(r.stdout.contains("user"), "{}", r.stdout);
    let r = run(d, &env, &["render", "in.wav", "c.wav", "-p", "my chain"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let r = run(
        d,
        &env,
        &[
            "render",
            "in.wav",
            "e.wav",
            "-e",
            "lobutterworth:1000,order=4",
            "-e",
            "gain:0.5",
        ],
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(
        std::fs::read(d.join("c.wav")).expect("c"),
        std::fs::read(d.join("e.wav")).expect("e")
    );

    // Saving over a preset needs --force; the file is unchanged without it.
    let r = run(d, &env, &["preset", "save", "my chain", "-e", "gain:2"]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stderr.contains("add --force"), "{}", r.stderr);
    assert_eq!(std::fs::read_to_string(&file).expect("file"), text);
    let r = run(
        d,
        &env,
        &["preset", "save", "my chain", "-e", "gain:2", "--force"],
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(
        std::fs::read_to_string(&file)
            .expect("file")
            .contains("gain = 2")
    );

    // Bad names, unknown presets, and --preset with --chain are usage errors that say why.
    let r = run(d, &env, &["preset", "save", "a/b", "-e", "gain:1"]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stderr.contains("preset name"), "{}", r.stderr);
    assert!(!presets.join("a").exists());
    let r = run(d, &env, &["preset", "show", "Vocl"]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stderr.contains("did you mean 'Vocal'"), "{}", r.stderr);
    let r = run(
        d,
        &env,
        &[
            "render",
            "in.wav",
            "f.wav",
            "-p",
            "Vocal",
            "--chain",
            "vocal.toml",
        ],
    );
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(!d.join("f.wav").exists());
    let r = run(d, &env, &["preset", "save", "x"]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stderr.contains("no effects specified"), "{}", r.stderr);

    // Delete removes the user's file; factory presets stay.
    let r = run(d, &env, &["preset", "delete", "my chain"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(!file.exists());
    let r = run(d, &env, &["preset", "delete", "Vocal"]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(
        r.stderr.contains("factory presets cannot be deleted"),
        "{}",
        r.stderr
    );
}

/// Without `RTFX_PRESET_DIR` the folder is `$XDG_CONFIG_HOME/rtfx/presets`, else
/// `~/.config/rtfx/presets` (the plugin's folder on Linux).
#[test]
fn the_default_folder_follows_xdg() {
    let dir = tempfile::tempdir().expect("temp dir");
    let d = dir.path();
    let (xdg, home) = (d.join("xdg"), d.join("home"));
    let r = run(
        d,
        &[("XDG_CONFIG_HOME", &xdg), ("HOME", &home)],
        &["preset", "save", "one", "-e", "gain:1"],
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(xdg.join("rtfx/presets/one.toml").exists());
    let r = run(
        d,
        &[("HOME", &home)],
        &["preset", "save", "two", "-e", "gain:1"],
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(home.join(".config/rtfx/presets/two.toml").exists());
    let r = run(d, &[], &["preset", "save", "three", "-e", "gain:1"]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stderr.contains("RTFX_PRESET_DIR"), "{}", r.stderr);
}

//! The `rtfx` binary as a user runs it.

use std::process::Command;

fn rtfx(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_rtfx"))
        .args(args)
        .output()
        .expect("rtfx runs");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn effects_lists_every_registered_effect_with_parameters() {
    let (code, out, _) = rtfx(&["effects"]);
    assert_eq!(code, 0);
    for entry in rtfx::dsp::registry::entries() {
        assert!(
            out.contains(&format!("{} — ", entry.name)),
            "{} missing from `rtfx effects`",
            entry.name
        );
    }
    let (code, out, _) = rtfx(&["effects", "LoButterworth"]);
    assert_eq!(code, 0);
    assert!(
        out.contains("cutoff") && out.contains("order") && out.contains("default 5"),
        "{out}"
    );
}

#[test]
fn unknown_effect_suggests_the_nearest_name() {
    let (code, _, err) = rtfx(&["effects", "lobuterworth"]);
    assert_eq!(code, 1);
    assert!(err.contains("did you mean 'lobutterworth'?"), "{err}");
}

#[test]
fn demo_runs_a_chain_and_reports_levels() {
    let (code, out, err) = rtfx(&[
        "demo",
        "--seconds",
        "0.5",
        "-e",
        "lobutterworth:1000,order=4",
        "-e",
        "gain:-6,gain_type=db",
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("output peak") && out.contains("x real time"),
        "{out}"
    );
    let (code, _, err) = rtfx(&["demo", "-e", "lobutterworth:cutof=100"]);
    assert_eq!(code, 1);
    assert!(err.contains("did you mean 'cutoff'?"), "{err}");
}

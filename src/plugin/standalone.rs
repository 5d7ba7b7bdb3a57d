//! The standalone app: `rtfx` with no arguments, or `rtfx standalone [OPTIONS]`, runs the
//! plugin with its editor through nice-plug's standalone wrapper, on JACK, ALSA (cpal) or the
//! `dummy` backend (`rtfx standalone --help` lists the options: backend, devices, sample rate,
//! period size, tempo…). The wrapper splits the audio callbacks into blocks of at most the
//! period size, so callbacks of any size are fine.
//!
//! Without a display (no `DISPLAY` or `WAYLAND_DISPLAY` on Linux and other Unix systems) the
//! app runs without its editor until Ctrl-C, and then exits with status 0.

use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};

use super::Rtfx;

/// Set while the standalone app runs without a display: the plugin then offers no editor.
static HEADLESS: AtomicBool = AtomicBool::new(false);

/// True when the standalone app runs without a display (the editor is then not offered).
pub fn headless() -> bool {
    HEADLESS.load(Ordering::Relaxed)
}

/// True when no display server can be reached (Unix other than macOS: neither `DISPLAY` nor
/// `WAYLAND_DISPLAY` is set). Always false elsewhere.
fn no_display() -> bool {
    if cfg!(all(unix, not(target_os = "macos"))) {
        let set = |name: &str| std::env::var_os(name).is_some_and(|v| !v.is_empty());
        !set("DISPLAY") && !set("WAYLAND_DISPLAY")
    } else {
        false
    }
}

/// Runs the standalone app when the command line asks for it — no arguments at all where a
/// display is available, or `standalone` as the first one — and returns its exit status;
/// otherwise returns `None` (the other subcommands, and the help that `rtfx` alone prints
/// without a display, are not the standalone's).
pub fn run_if_requested() -> Option<ExitCode> {
    let rest: Vec<String> = std::env::args().skip(1).collect();
    let options = match rest.first().map(String::as_str) {
        // Without a display there is no window to open: `rtfx` alone prints the help.
        None if no_display() => return None,
        None => Vec::new(),
        Some("standalone") => rest[1..].to_vec(),
        Some(_) => return None,
    };
    Some(if run_with_options(options) {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// Runs the standalone app with the options that follow `rtfx standalone`. Returns false when
/// the audio backend or the editor could not start.
pub fn run_with_options(options: Vec<String>) -> bool {
    let program = std::env::args()
        .next()
        .unwrap_or_else(|| "rtfx".to_string());
    run(std::iter::once(format!("{program} standalone")).chain(options))
}

/// Runs the standalone app with these arguments (the first is the program name, as in
/// `std::env::args`). Returns false when the audio backend or the editor could not start.
pub fn run(args: impl IntoIterator<Item = String>) -> bool {
    HEADLESS.store(no_display(), Ordering::Relaxed);
    nice_plug::wrapper::standalone::nice_export_standalone_with_args::<Rtfx, _>(args)
}

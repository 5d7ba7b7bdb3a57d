//! The `rtfx` binary: one executable for every way in: the standalone app (no arguments or
//! `standalone`), live processing (`live`, `devices`), the offline renderer (`render`, `info`),
//! the effect list and a demo of the DSP core.

mod cli;

use std::io::Write as _;

use clap::Parser;

fn main() -> std::process::ExitCode {
    // `rtfx` alone, or `rtfx standalone [OPTIONS]`: the plugin as a standalone app.
    if let Some(code) = rtfx::plugin::standalone::run_if_requested() {
        return code;
    }
    let args = cli::Cli::parse();
    match cli::run(args) {
        Ok(outcome) => std::process::ExitCode::from(outcome.code()),
        Err(e) => {
            // Never panics: stderr's reader may have gone.
            let _ = writeln!(std::io::stderr(), "error: {e:#}");
            // Exit codes are documented in `rtfx render --help` and the README.
            let code = if e.downcast_ref::<cli::Usage>().is_some() {
                2
            } else {
                1
            };
            std::process::ExitCode::from(code)
        }
    }
}

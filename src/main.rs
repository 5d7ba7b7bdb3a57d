//! The `rtfx` binary: one executable for every way in. Today it lists the effects of the engine
//! and runs a demo of the DSP core; the renderer, live mode and standalone app join it as their
//! issues land.

mod cli;

use clap::Parser;

fn main() -> std::process::ExitCode {
    // `rtfx` alone, or `rtfx standalone [OPTIONS]`: the plugin as a standalone app.
    if let Some(code) = rtfx::plugin::standalone::run_if_requested() {
        return code;
    }
    let args = cli::Cli::parse();
    match cli::run(args) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::from(1)
        }
    }
}

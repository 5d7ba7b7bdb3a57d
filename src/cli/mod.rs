//! Command-line interface of the `rtfx` binary.

mod demo;
mod devices;
mod effects;
mod live;

use clap::{Parser, Subcommand};

/// rtfx — real-time audio effects engine.
#[derive(Parser, Debug)]
#[command(name = "rtfx", version, about, long_about = None)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// List every effect with its parameters, ranges, units and defaults.
    Effects {
        /// Only this effect.
        name: Option<String>,
    },
    /// Run a chain over a generated test signal and report its level and speed.
    Demo {
        /// Effect specs, e.g. -e hibutterworth:80,order=2 (default: the guitar chain).
        #[arg(short = 'e', long = "effect")]
        effects: Vec<String>,
        /// Seconds of stereo 48 kHz audio to process.
        #[arg(long, default_value_t = 60.0)]
        seconds: f64,
        /// Block size in frames.
        #[arg(long, default_value_t = 512)]
        block: usize,
    },
    /// List the audio hosts and devices (index, channels, default rate).
    Devices {
        /// Only this cpal host (alsa, jack, …).
        #[arg(long)]
        host: Option<String>,
    },
    /// Run a chain on an audio device in real time, with live statistics.
    Live(live::LiveArgs),
}

/// Runs the parsed command.
pub fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Effects { name } => effects::run(name.as_deref()),
        Command::Demo {
            effects,
            seconds,
            block,
        } => demo::run(&effects, seconds, block),
        Command::Devices { host } => devices::run(host.as_deref()),
        Command::Live(args) => live::run(&args),
    }
}

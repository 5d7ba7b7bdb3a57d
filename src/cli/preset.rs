//! `rtfx preset`: the preset library the plugin's preset menu uses (factory presets and the
//! per-user preset folder, see `rtfx::plugin::presets`), from the command line.

use std::path::PathBuf;

use anyhow::{Context, anyhow};
use clap::{Args, Subcommand};
use rtfx::plugin::presets::{
    Preset, delete_preset, find_preset, list_presets, preset_dir, preset_path, preset_text,
    save_chain_preset,
};

use super::{Usage, chain_from_args};

/// Options of `rtfx preset`.
#[derive(Args, Debug)]
pub struct PresetArgs {
    #[command(subcommand)]
    action: Action,
}

#[derive(Subcommand, Debug)]
enum Action {
    /// List the factory presets, then the user's (with their files).
    List {
        /// Print JSON lines (`{"name", "kind", "path"}`) instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Print a preset's chain file (TOML), as `rtfx render --chain` reads it.
    Show {
        /// The preset (a user preset shadows a factory preset of the same name).
        name: String,
    },
    /// Save a chain as a user preset: every parameter of every effect, positional or not.
    Save {
        /// The preset's name (1 to 64 characters, no path separators).
        name: String,
        /// Effect spec `name[:value,key=value,...]`, repeatable, after --chain's or
        /// --preset's effects.
        #[arg(short = 'e', long = "effect", value_name = "SPEC")]
        effects: Vec<String>,
        /// A TOML chain file to start from.
        #[arg(
            short = 'c',
            long = "chain",
            value_name = "FILE",
            conflicts_with = "preset"
        )]
        chain: Option<PathBuf>,
        /// A preset to start from.
        #[arg(short = 'p', long = "preset", value_name = "NAME")]
        preset: Option<String>,
        /// Replace a user preset of that name.
        #[arg(short = 'f', long)]
        force: bool,
    },
    /// Delete a user preset (factory presets cannot be deleted).
    Delete {
        /// The user preset.
        name: String,
    },
}

/// The preset folder, or an error saying how to name one.
fn folder() -> anyhow::Result<PathBuf> {
    preset_dir().ok_or_else(|| {
        anyhow!(
            "no preset folder: neither HOME nor XDG_CONFIG_HOME is set; set {} to a folder",
            rtfx::plugin::presets::PRESET_DIR_VAR
        )
    })
}

/// Runs `rtfx preset …`.
pub fn run(args: &PresetArgs) -> anyhow::Result<()> {
    match &args.action {
        Action::List { json } => {
            let dir = preset_dir();
            for preset in list_presets(dir.as_deref()) {
                let (kind, path) = match &preset {
                    Preset::Factory(_) => ("factory", None),
                    Preset::User(_, path) => ("user", Some(path.display().to_string())),
                };
                if *json {
                    let line = serde_json::json!({
                        "name": preset.name(),
                        "kind": kind,
                        "path": path,
                    });
                    outln!("{line}");
                } else {
                    outln!(
                        "{:<24} {kind:<8} {}",
                        preset.name(),
                        path.unwrap_or_default()
                    );
                }
            }
            if !*json {
                match dir {
                    Some(dir) => errln!("user presets: {}", dir.display()),
                    None => errln!("no user preset folder (set HOME or RTFX_PRESET_DIR)"),
                }
            }
            Ok(())
        }
        Action::Show { name } => {
            let preset = find_preset(preset_dir().as_deref(), name).map_err(|e| Usage(e.into()))?;
            let text = preset_text(&preset)?;
            outln!("{}", text.trim_end());
            Ok(())
        }
        Action::Save {
            name,
            effects,
            chain,
            preset,
            force,
        } => {
            let dir = folder().map_err(Usage)?;
            let path = preset_path(&dir, name).map_err(|e| Usage(e.into()))?;
            if path.exists() && !force {
                return Err(Usage(anyhow!(
                    "the user preset '{}' exists ({}); add --force to replace it",
                    name.trim(),
                    path.display()
                ))
                .into());
            }
            let (chain, _) = chain_from_args(chain.as_deref(), preset.as_deref(), effects, false)
                .map_err(Usage)?;
            let saved = save_chain_preset(&dir, name, &chain)
                .with_context(|| format!("cannot save the preset '{}'", name.trim()))?;
            errln!("saved {}", saved.display());
            Ok(())
        }
        Action::Delete { name } => {
            let dir = folder().map_err(Usage)?;
            delete_preset(&dir, name).map_err(|e| Usage(e.into()))?;
            errln!("deleted {}", name.trim());
            Ok(())
        }
    }
}

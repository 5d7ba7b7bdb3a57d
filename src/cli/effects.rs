//! `rtfx effects`: the registry as a table.

use anyhow::{Context, bail};
use rtfx::dsp::registry;

pub fn run(name: Option<&str>) -> anyhow::Result<()> {
    let entries: Vec<_> = match name {
        Some(n) => vec![registry::lookup(n).with_context(|| {
            let names: Vec<&str> = registry::entries().iter().map(|e| e.name).collect();
            match rtfx::dsp::nearest(n, names.iter().copied()) {
                Some(s) => format!("unknown effect '{n}': did you mean '{s}'?"),
                None => format!("unknown effect '{n}'; run `rtfx effects` for the list"),
            }
        })?],
        None => registry::entries().iter().collect(),
    };
    if entries.is_empty() {
        bail!("no effects registered");
    }
    for entry in entries {
        let effect = (entry.build)();
        outln!("{} — {}", entry.name, entry.summary);
        outln!("  positional: {}", entry.positional.join(", "));
        for p in effect.params() {
            let alone = entry.required.iter().any(|group| group == &[p.name]);
            let default = if p.default.is_nan() && alone {
                "required".to_string()
            } else if p.default.is_nan() {
                let group = entry.required.iter().find(|g| g.contains(&p.name));
                match group {
                    Some(g) => format!("one of {} required", g.join("/")),
                    None => "unset".to_string(),
                }
            } else {
                p.to_value(p.default).to_string()
            };
            outln!(
                "  {:<22} {:<44} default {:<10} {}",
                p.name,
                format!("{} {}", p.range_text(), p.unit).trim_end(),
                default,
                p.description
            );
        }
    }
    Ok(())
}

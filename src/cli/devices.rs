//! `rtfx devices`: the audio hosts and devices cpal sees.

use anyhow::Context;
use rtfx::realtime::{AudioBackend, CpalBackend};

/// Lists the devices of one host, or of every available host.
pub fn run(host: Option<&str>) -> anyhow::Result<()> {
    let (all, available) = CpalBackend::hosts();
    let hosts: Vec<String> = match host {
        Some(h) => vec![h.to_string()],
        None => available.iter().map(|h| h.to_string()).collect(),
    };
    if hosts.is_empty() {
        anyhow::bail!(
            "no audio host is available (this build knows: {}); install ALSA (libasound2) or start a JACK server",
            all.join(", ")
        );
    }
    let default = cpal_default_host();
    for name in hosts {
        let backend = CpalBackend::with_host(&name)?;
        let marker = if Some(backend.host_name()) == default {
            " (default host)"
        } else {
            ""
        };
        outln!("{}{marker}", backend.name());
        let devices = backend
            .devices()
            .with_context(|| format!("listing the devices of {}", backend.name()))?;
        if devices.is_empty() {
            outln!("  no devices");
            continue;
        }
        outln!(
            "  {:>3}  {:>3}  {:>3}  {:>8}  name",
            "#",
            "in",
            "out",
            "rate"
        );
        for d in devices {
            let mut flags = Vec::new();
            if d.is_default_input {
                flags.push("default input");
            }
            if d.is_default_output {
                flags.push("default output");
            }
            let flags = if flags.is_empty() {
                String::new()
            } else {
                format!("  [{}]", flags.join(", "))
            };
            outln!(
                "  {:>3}  {:>3}  {:>3}  {:>8}  {}{flags}",
                d.index,
                d.max_input_channels,
                d.max_output_channels,
                d.default_sample_rate,
                d.name
            );
        }
    }
    outln!(
        "\nUse a device with `rtfx live --input <# or name> --output <# or name>` (names match by substring)."
    );
    Ok(())
}

/// The name of cpal's default host.
fn cpal_default_host() -> Option<&'static str> {
    Some(CpalBackend::new().host_name())
}

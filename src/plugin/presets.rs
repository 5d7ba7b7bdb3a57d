//! Presets: the factory presets and the user's preset folder, all as the TOML chain files that
//! `rtfx render --chain` reads, so a preset renders offline exactly as the plugin plays it.
//!
//! - **Factory presets** ([`factory_presets`]) are strip settings built in; as files they are
//!   what the plugin exports once they are loaded ([`factory_preset_toml`]).
//! - **User presets** are `NAME.toml` files in one folder ([`preset_dir`]):
//!   `$RTFX_PRESET_DIR` if set, else `$XDG_CONFIG_HOME/rtfx/presets` (default
//!   `~/.config/rtfx/presets`) on Linux and other Unix systems,
//!   `~/Library/Application Support/rtfx/presets` on macOS and `%APPDATA%\rtfx\presets` on
//!   Windows. Saving replaces a file whole or not at all (a temporary file and a rename).
//! - **Importing a chain** ([`import_chain`]) maps a chain's effects onto the strip's sections
//!   and names every effect or setting that has no place there, instead of dropping it.

use std::path::{Path, PathBuf};

use super::strip::{DelayTime, MAX_FILTER_ORDER, StripSettings};
use crate::dsp::param::ParamValue;
use crate::dsp::spec::chain_from_toml;
use crate::dsp::{Chain, gain_to_db};
use crate::error::{Error, Result};

/// The environment variable that overrides the preset folder.
pub const PRESET_DIR_VAR: &str = "RTFX_PRESET_DIR";

/// The per-user preset folder (see the module documentation), or `None` when the system names
/// no home or configuration folder.
pub fn preset_dir() -> Option<PathBuf> {
    let var = |name: &str| std::env::var_os(name).filter(|v| !v.is_empty());
    if let Some(dir) = var(PRESET_DIR_VAR) {
        return Some(PathBuf::from(dir));
    }
    let base = if cfg!(windows) {
        var("APPDATA").map(PathBuf::from)
    } else if cfg!(target_os = "macos") {
        var("HOME").map(|h| Path::new(&h).join("Library/Application Support"))
    } else {
        var("XDG_CONFIG_HOME")
            .map(PathBuf::from)
            .or_else(|| var("HOME").map(|h| Path::new(&h).join(".config")))
    };
    base.map(|b| b.join("rtfx").join("presets"))
}

/// The factory presets, in menu order: a name and the strip's settings (before the
/// parameters round them, see [`factory_preset_toml`]).
pub fn factory_presets() -> Vec<(&'static str, StripSettings)> {
    let init = StripSettings::default;
    let mut presets = Vec::new();
    presets.push(("Init", init()));

    let mut s = init();
    s.high_pass = on_filter(80.0, 2);
    s.eq.enabled = true;
    s.eq.low_shelf.freq_hz = 200.0;
    s.eq.low_shelf.gain_db = -2.0;
    s.eq.peak.freq_hz = 3000.0;
    s.eq.peak.gain_db = 2.5;
    s.eq.peak.q = 0.8;
    s.eq.high_shelf.freq_hz = 10_000.0;
    s.eq.high_shelf.gain_db = 3.0;
    compress(&mut s, -20.0, 3.0, 5.0, 80.0, 3.0);
    s.reverb.enabled = true;
    s.reverb.room_size = 0.4;
    s.reverb.mix = 0.12;
    presets.push(("Vocal", s));

    let mut s = init();
    s.high_pass = on_filter(90.0, 4);
    s.low_pass = on_filter(15_000.0, 2);
    s.eq.enabled = true;
    s.eq.low_shelf.freq_hz = 150.0;
    s.eq.low_shelf.gain_db = -3.0;
    s.eq.peak.freq_hz = 2500.0;
    s.eq.peak.gain_db = 3.0;
    s.eq.peak.q = 1.0;
    s.eq.high_shelf.freq_hz = 8000.0;
    s.eq.high_shelf.gain_db = -1.5;
    compress(&mut s, -24.0, 4.0, 3.0, 120.0, 6.0);
    limit(&mut s, -1.0);
    presets.push(("Podcast voice", s));

    let mut s = init();
    s.high_pass = on_filter(70.0, 2);
    s.eq.enabled = true;
    s.eq.low_shelf.freq_hz = 250.0;
    s.eq.low_shelf.gain_db = -3.0;
    s.eq.peak.freq_hz = 5000.0;
    s.eq.peak.gain_db = 1.5;
    s.eq.high_shelf.freq_hz = 12_000.0;
    s.eq.high_shelf.gain_db = 2.0;
    compress(&mut s, -18.0, 2.0, 15.0, 150.0, 1.5);
    s.reverb.enabled = true;
    s.reverb.room_size = 0.35;
    s.reverb.damping = 0.6;
    s.reverb.mix = 0.1;
    presets.push(("Acoustic guitar", s));

    let mut s = init();
    s.high_pass = on_filter(90.0, 2);
    s.low_pass = on_filter(6000.0, 4);
    s.eq.enabled = true;
    s.eq.low_shelf.freq_hz = 120.0;
    s.eq.low_shelf.gain_db = 2.0;
    s.eq.peak.freq_hz = 800.0;
    s.eq.peak.gain_db = 3.0;
    s.eq.peak.q = 0.9;
    s.eq.high_shelf.freq_hz = 3500.0;
    s.eq.high_shelf.gain_db = -2.0;
    compress(&mut s, -22.0, 4.0, 2.0, 60.0, 4.0);
    s.delay.enabled = true;
    s.delay.time = DelayTime::Ms(380.0);
    s.delay.feedback = 0.25;
    s.delay.mix = 0.15;
    presets.push(("DI guitar", s));

    let mut s = init();
    s.high_pass = on_filter(35.0, 4);
    s.low_pass = on_filter(8000.0, 2);
    s.eq.enabled = true;
    s.eq.low_shelf.freq_hz = 80.0;
    s.eq.low_shelf.gain_db = 2.0;
    s.eq.peak.freq_hz = 300.0;
    s.eq.peak.gain_db = -3.0;
    s.eq.peak.q = 1.2;
    s.eq.high_shelf.freq_hz = 2500.0;
    s.eq.high_shelf.gain_db = 1.5;
    compress(&mut s, -20.0, 4.0, 10.0, 100.0, 3.0);
    presets.push(("Bass", s));

    let mut s = init();
    s.high_pass = on_filter(30.0, 2);
    s.eq.enabled = true;
    s.eq.low_shelf.freq_hz = 60.0;
    s.eq.low_shelf.gain_db = 1.5;
    s.eq.peak.freq_hz = 400.0;
    s.eq.peak.gain_db = -2.0;
    s.eq.peak.q = 1.0;
    s.eq.high_shelf.freq_hz = 10_000.0;
    s.eq.high_shelf.gain_db = 2.0;
    compress(&mut s, -16.0, 4.0, 30.0, 150.0, 3.0);
    limit(&mut s, -0.5);
    presets.push(("Drum bus", s));

    let mut s = init();
    s.high_pass = on_filter(150.0, 4);
    s.eq.enabled = true;
    s.eq.low_shelf.freq_hz = 300.0;
    s.eq.low_shelf.gain_db = -2.0;
    s.eq.peak.freq_hz = 3500.0;
    s.eq.peak.gain_db = -1.5;
    s.eq.peak.q = 2.0;
    s.eq.high_shelf.freq_hz = 12_000.0;
    s.eq.high_shelf.gain_db = 2.5;
    presets.push(("Overheads", s));

    let mut s = init();
    s.high_pass = on_filter(25.0, 2);
    compress(&mut s, -14.0, 2.0, 30.0, 200.0, 1.0);
    s.compressor.knee_db = 12.0;
    limit(&mut s, -0.3);
    presets.push(("Mix bus glue", s));

    let mut s = init();
    limit(&mut s, -1.0);
    s.limiter.true_peak = true;
    s.limiter.lookahead_ms = 5.0;
    s.limiter.release_ms = 80.0;
    s.input_gain_db = 3.0;
    presets.push(("Master limiter", s));

    let mut s = init();
    s.high_pass = on_filter(400.0, 4);
    s.low_pass = on_filter(3400.0, 4);
    s.eq.enabled = true;
    s.eq.peak.freq_hz = 1500.0;
    s.eq.peak.gain_db = 6.0;
    s.eq.peak.q = 1.5;
    compress(&mut s, -30.0, 8.0, 1.0, 50.0, 6.0);
    presets.push(("Telephone (lo-fi)", s));

    let mut s = init();
    s.high_pass = on_filter(60.0, 6);
    presets.push(("De-rumble", s));

    let mut s = init();
    s.delay.enabled = true;
    s.delay.time = DelayTime::Note {
        fraction: 0.25,
        bpm: super::DEFAULT_TEMPO,
    };
    s.delay.feedback = 0.35;
    s.delay.mix = 0.2;
    s.delay.ping_pong = true;
    s.reverb.enabled = true;
    s.reverb.room_size = 0.8;
    s.reverb.damping = 0.4;
    s.reverb.mix = 0.3;
    s.low_pass = on_filter(12_000.0, 2);
    presets.push(("Ambience", s));

    presets
}

fn on_filter(cutoff_hz: f64, order: usize) -> super::strip::FilterSettings {
    super::strip::FilterSettings {
        enabled: true,
        cutoff_hz,
        order,
    }
}

fn compress(
    s: &mut StripSettings,
    threshold: f64,
    ratio: f64,
    attack: f64,
    release: f64,
    makeup: f64,
) {
    let c = &mut s.compressor;
    c.enabled = true;
    c.threshold_db = threshold;
    c.ratio = ratio;
    c.attack_ms = attack;
    c.release_ms = release;
    c.makeup_db = makeup;
}

fn limit(s: &mut StripSettings, ceiling_db: f64) {
    s.limiter.enabled = true;
    s.limiter.ceiling_db = ceiling_db;
}

/// A factory preset by name (case-insensitive), as the parameters hold it once loaded.
pub fn factory_preset(name: &str) -> Option<StripSettings> {
    factory_presets()
        .into_iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, s)| super::params::RtfxParams::quantize(&s))
}

/// A factory preset as the chain file the plugin exports once it is loaded.
pub fn factory_preset_toml(name: &str) -> Option<Result<String>> {
    factory_preset(name).map(|s| s.to_toml())
}

/// A preset the menu lists.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Preset {
    /// Built in.
    Factory(&'static str),
    /// A file in the preset folder: its name (the file name without `.toml`) and path.
    User(String, PathBuf),
}

impl Preset {
    /// The name the menu shows.
    pub fn name(&self) -> &str {
        match self {
            Preset::Factory(name) => name,
            Preset::User(name, _) => name,
        }
    }
}

/// The factory presets, then the `.toml` files of `dir` (if it exists) sorted by name.
pub fn list_presets(dir: Option<&Path>) -> Vec<Preset> {
    let mut presets: Vec<Preset> = factory_presets()
        .into_iter()
        .map(|(n, _)| Preset::Factory(n))
        .collect();
    let mut user: Vec<Preset> = dir
        .and_then(|d| std::fs::read_dir(d).ok())
        .into_iter()
        .flatten()
        .filter_map(|entry| {
            let path = entry.ok()?.path();
            if path.extension()? != "toml" {
                return None;
            }
            let name = path.file_stem()?.to_str()?.to_string();
            Some(Preset::User(name, path))
        })
        .collect();
    user.sort_by_key(|p| p.name().to_lowercase());
    presets.extend(user);
    presets
}

/// What loading a preset or importing a chain gives: the strip's settings, and what of the
/// chain has no place in the strip (each with the reason; empty when everything fitted).
#[derive(Debug, Clone, PartialEq)]
pub struct Imported {
    /// The settings (the sections the chain does not use are off, at their defaults).
    pub settings: StripSettings,
    /// What was left out or changed, e.g. "effect 3 (phaser): the strip has no phaser".
    pub not_fitting: Vec<String>,
}

/// Loads a preset: a factory preset, or a user preset's chain file imported into the strip.
pub fn load_preset(preset: &Preset) -> Result<Imported> {
    match preset {
        Preset::Factory(name) => Ok(Imported {
            settings: factory_preset(name).unwrap_or_default(),
            not_fitting: Vec::new(),
        }),
        Preset::User(_, path) => import_chain_file(path),
    }
}

/// Reads a TOML chain file and imports it into the strip ([`import_chain`]).
pub fn import_chain_file(path: &Path) -> Result<Imported> {
    let shown = path.display().to_string();
    let text = std::fs::read_to_string(path)
        .map_err(|e| Error::io(format!("cannot read the chain file: {e}"), shown.clone()))?;
    let file = chain_from_toml(&text).map_err(|e| {
        let message = format!("{shown}: {}", e.message());
        e.with_message(message)
    })?;
    Ok(import_chain(&file.chain))
}

/// The strip's sections in processing order, as [`import_chain`] fills them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Slot {
    InputGain,
    HighPass,
    LowPass,
    LowShelf,
    Peak,
    HighShelf,
    Compressor,
    Delay,
    Reverb,
    Limiter,
    OutputGain,
}

/// Maps a chain's effects onto the strip: a `gain` before every other section becomes the
/// input gain and one after them the output gain; `hibutterworth` and `lobutterworth` the
/// high- and low-pass; `loshelving`, `parametriceq` (or `peaking`) and `hishelving` the EQ's
/// bands; `compressor`, `delay`, `reverb` and `limiter` their sections. Whatever does not fit
/// is named in [`Imported::not_fitting`]: effects the strip lacks, a second effect for a
/// section already filled, effects in an order the strip cannot follow, and settings the
/// strip's sections do not have (an RMS detector, a clamping gain, a delay in samples, a
/// reverb's stereo spread). A section's values outside the plugin's ranges are clamped when
/// the preset is applied to the parameters.
///
/// ```
/// use rtfx::dsp::spec::parse_chain;
/// use rtfx::plugin::presets::import_chain;
///
/// let chain = parse_chain(&["hibutterworth:cutoff=80,order=4", "notch:cutoff=50,q=30"]).unwrap();
/// let imported = import_chain(&chain);
/// assert!(imported.settings.high_pass.enabled);
/// assert_eq!(imported.settings.high_pass.order, 4);
/// assert!(imported.not_fitting[0].contains("the strip has no notch"));
/// ```
pub fn import_chain(chain: &Chain) -> Imported {
    let mut s = StripSettings::default();
    let mut not_fitting = Vec::new();
    let mut last: Option<Slot> = None;
    let mut used: Vec<Slot> = Vec::new();
    for (i, fx) in chain.effects().iter().enumerate() {
        let name = fx.name();
        let what = format!("effect {} ({name})", i + 1);
        let get = |p: &str| fx.get_param(p).unwrap_or(f64::NAN);
        // A parameter's value in its text form ("db", "true"), empty when unset or absent.
        let text = |p: &str| {
            let value = get(p);
            let info = fx.params().iter().find(|info| info.name == p);
            match info.map(|info| info.to_value(value)) {
                _ if value.is_nan() => String::new(),
                Some(ParamValue::Text(t)) => t,
                Some(ParamValue::Bool(b)) => b.to_string(),
                Some(ParamValue::Number(n)) => n.to_string(),
                None => String::new(),
            }
        };
        let slot = match name {
            "gain" if last.is_none() && !used.contains(&Slot::InputGain) => Slot::InputGain,
            "gain" => Slot::OutputGain,
            "hibutterworth" => Slot::HighPass,
            "lobutterworth" => Slot::LowPass,
            "loshelving" => Slot::LowShelf,
            "parametriceq" | "peaking" => Slot::Peak,
            "hishelving" => Slot::HighShelf,
            "compressor" => Slot::Compressor,
            "delay" => Slot::Delay,
            "reverb" => Slot::Reverb,
            "limiter" => Slot::Limiter,
            _ => {
                not_fitting.push(format!("{what}: the strip has no {name}; left out"));
                continue;
            }
        };
        if used.contains(&slot) {
            not_fitting.push(format!(
                "{what}: the strip has one {}, already taken by an earlier effect; left out",
                slot_name(slot)
            ));
            continue;
        }
        if last.is_some_and(|l| slot < l) {
            not_fitting.push(format!(
                "{what}: the strip runs its {} before the {}, so it moved there",
                slot_name(slot),
                last.map(slot_name).unwrap_or_default()
            ));
        }
        used.push(slot);
        last = Some(last.map_or(slot, |l| l.max(slot)));
        let shelf_gain_db = |gain: f64| {
            if text("gain_scale") == "db" {
                gain
            } else {
                gain_to_db(gain)
            }
        };
        match slot {
            Slot::InputGain | Slot::OutputGain => {
                let gain = get("gain");
                let db = match text("gain_type").as_str() {
                    "db" => gain,
                    "power" => 10.0 * gain.log10(),
                    _ => gain_to_db(gain),
                };
                if slot == Slot::InputGain {
                    s.input_gain_db = db;
                } else {
                    s.output_gain_db = db;
                }
                if text("clamp") == "true" {
                    not_fitting.push(format!(
                        "{what}: the strip's gains do not clamp to [-1, 1]; clamp left out"
                    ));
                }
            }
            Slot::HighPass | Slot::LowPass => {
                let f = if slot == Slot::HighPass {
                    &mut s.high_pass
                } else {
                    &mut s.low_pass
                };
                f.enabled = true;
                f.cutoff_hz = get("cutoff");
                let order = if text("order_scale") == "db" {
                    (get("order") / 6.0).floor()
                } else {
                    get("order")
                };
                if order > MAX_FILTER_ORDER as f64 {
                    not_fitting.push(format!(
                        "{what}: order {order} is more than the strip's {MAX_FILTER_ORDER}; \
                         set to {MAX_FILTER_ORDER}"
                    ));
                }
                f.order = order.clamp(1.0, MAX_FILTER_ORDER as f64) as usize;
            }
            Slot::LowShelf | Slot::Peak | Slot::HighShelf => {
                s.eq.enabled = true;
                let band = match slot {
                    Slot::LowShelf => &mut s.eq.low_shelf,
                    Slot::Peak => &mut s.eq.peak,
                    _ => &mut s.eq.high_shelf,
                };
                if name == "parametriceq" {
                    band.freq_hz = get("frequency");
                    band.gain_db = get("gain");
                } else {
                    band.freq_hz = get("cutoff");
                    band.gain_db = shelf_gain_db(get("gain"));
                }
                band.q = get("q");
            }
            Slot::Compressor => {
                let c = &mut s.compressor;
                c.enabled = true;
                c.threshold_db = get("threshold");
                c.ratio = get("ratio");
                c.attack_ms = get("attack") * 1000.0;
                c.release_ms = get("release") * 1000.0;
                c.knee_db = get("knee");
                c.makeup_db = get("makeup_gain");
                if text("detector") == "rms" {
                    not_fitting.push(format!(
                        "{what}: the strip's compressor detects peaks; detector=rms left out"
                    ));
                }
            }
            Slot::Delay => {
                let d = &mut s.delay;
                d.enabled = true;
                d.feedback = get("feedback");
                d.mix = get("mix");
                d.ping_pong = text("ping_pong") == "true";
                let (samples, ms, bpm) = (get("delay_samples"), get("delay_ms"), get("bpm"));
                d.time = if !samples.is_nan() {
                    not_fitting.push(format!(
                        "{what}: the strip's delay is set in ms or note values, not samples \
                         ({samples} samples); set to 250 ms"
                    ));
                    DelayTime::Ms(250.0)
                } else if !ms.is_nan() {
                    DelayTime::Ms(ms)
                } else {
                    DelayTime::Note {
                        fraction: get("delay_time"),
                        bpm,
                    }
                };
            }
            Slot::Reverb => {
                let r = &mut s.reverb;
                r.enabled = true;
                r.room_size = get("room_size");
                r.damping = get("damping");
                r.mix = get("mix");
                if get("stereo_spread") != 0.0 {
                    not_fitting.push(format!(
                        "{what}: the strip's reverb has no stereo spread; left at 0"
                    ));
                }
            }
            Slot::Limiter => {
                let l = &mut s.limiter;
                l.enabled = true;
                l.ceiling_db = get("threshold");
                l.lookahead_ms = get("lookahead") * 1000.0;
                l.release_ms = get("release") * 1000.0;
                l.true_peak = text("true_peak") == "true";
            }
        }
    }
    Imported {
        settings: s,
        not_fitting,
    }
}

fn slot_name(slot: Slot) -> &'static str {
    match slot {
        Slot::InputGain => "input gain",
        Slot::HighPass => "high-pass",
        Slot::LowPass => "low-pass",
        Slot::LowShelf => "low shelf",
        Slot::Peak => "peak band",
        Slot::HighShelf => "high shelf",
        Slot::Compressor => "compressor",
        Slot::Delay => "delay",
        Slot::Reverb => "reverb",
        Slot::Limiter => "limiter",
        Slot::OutputGain => "output gain",
    }
}

/// A preset by name, case-insensitive: the user's preset in `dir` first (a user preset may
/// shadow a factory one), then a factory preset. The error names the nearest preset.
pub fn find_preset(dir: Option<&Path>, name: &str) -> Result<Preset> {
    let presets = list_presets(dir);
    let user_first = presets
        .iter()
        .rev()
        .find(|p| p.name().eq_ignore_ascii_case(name.trim()));
    if let Some(found) = user_first {
        return Ok(found.clone());
    }
    let near = crate::dsp::nearest(name, presets.iter().map(Preset::name))
        .map(|n| format!("did you mean '{n}'? "))
        .unwrap_or_default();
    Err(Error::invalid_parameter("no such preset", "preset", name)
        .with_suggestion(format!("{near}`rtfx preset list` lists the presets")))
}

/// A preset's chain file: a factory preset as the plugin exports it, a user preset's file.
pub fn preset_text(preset: &Preset) -> Result<String> {
    match preset {
        Preset::Factory(name) => factory_preset_toml(name).unwrap_or_else(|| {
            Err(Error::invalid_parameter(
                "no such factory preset",
                "preset",
                name,
            ))
        }),
        Preset::User(_, path) => std::fs::read_to_string(path).map_err(|e| {
            Error::io(
                format!("cannot read the preset: {e}"),
                path.display().to_string(),
            )
        }),
    }
}

/// Saves any chain as the user preset `name` in `dir` (created when missing): every set
/// parameter of every effect, positional or not, as [`crate::dsp::spec::chain_to_toml`]
/// writes it. Replaces a preset of that name whole or not at all.
pub fn save_chain_preset(dir: &Path, name: &str, chain: &Chain) -> Result<PathBuf> {
    save_preset_text(dir, name, &crate::dsp::spec::chain_to_toml(chain))
}

/// Checks a preset name: not empty, at most 64 characters, and no path separators or
/// characters file systems refuse.
pub fn check_preset_name(name: &str) -> Result<&str> {
    let trimmed = name.trim();
    let bad = trimmed.chars().find(|c| {
        matches!(c, '/' | '\\' | ':' | '*' | '?' | '"' | '<' | '>' | '|') || c.is_control()
    });
    if trimmed.is_empty()
        || trimmed.chars().count() > 64
        || bad.is_some()
        || trimmed.starts_with('.')
    {
        return Err(Error::invalid_parameter(
            "a preset name has 1 to 64 characters, does not start with '.' and has none of \
             / \\ : * ? \" < > |",
            "preset name",
            name,
        )
        .with_suggestion("name it like \"Vocal bright\" or \"podcast-2\""));
    }
    Ok(trimmed)
}

/// The file of the user preset `name` in `dir`.
pub fn preset_path(dir: &Path, name: &str) -> Result<PathBuf> {
    Ok(dir.join(format!("{}.toml", check_preset_name(name)?)))
}

/// Saves `settings` as the user preset `name` in `dir` (created when missing), replacing a
/// preset of that name whole or not at all. Returns the file.
pub fn save_preset(dir: &Path, name: &str, settings: &StripSettings) -> Result<PathBuf> {
    save_preset_text(dir, name, &settings.to_toml()?)
}

/// Writes a chain file as the user preset `name` in `dir` (created when missing).
fn save_preset_text(dir: &Path, name: &str, text: &str) -> Result<PathBuf> {
    let path = preset_path(dir, name)?;
    let shown = dir.display().to_string();
    std::fs::create_dir_all(dir).map_err(|e| {
        Error::io(
            format!("cannot create the preset folder: {e}"),
            shown.clone(),
        )
    })?;
    write_atomically(&path, text)?;
    Ok(path)
}

/// Writes `text` to `path` through a temporary file in the same folder and a rename.
pub fn write_atomically(path: &Path, text: &str) -> Result<()> {
    let shown = path.display().to_string();
    let io = |e: std::io::Error| Error::io(format!("cannot write the file: {e}"), shown.clone());
    let tmp = path.with_extension("toml.tmp");
    std::fs::write(&tmp, text).map_err(io)?;
    std::fs::rename(&tmp, path).map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        io(e)
    })
}

/// Renames the user preset `from` to `to` in `dir`; refuses to replace another preset.
pub fn rename_preset(dir: &Path, from: &str, to: &str) -> Result<PathBuf> {
    let (old, new) = (preset_path(dir, from)?, preset_path(dir, to)?);
    if !old.exists() {
        return Err(Error::io("no such user preset", old.display().to_string())
            .with_suggestion("factory presets cannot be renamed; save a copy under a new name"));
    }
    if new.exists() && !same_file_name_ignoring_case(&old, &new) {
        return Err(
            Error::io("a preset of that name exists", new.display().to_string())
                .with_suggestion("delete it first, or choose another name"),
        );
    }
    std::fs::rename(&old, &new).map_err(|e| {
        Error::io(
            format!("cannot rename the preset: {e}"),
            old.display().to_string(),
        )
    })?;
    Ok(new)
}

fn same_file_name_ignoring_case(a: &Path, b: &Path) -> bool {
    a.to_string_lossy()
        .eq_ignore_ascii_case(&b.to_string_lossy())
}

/// Deletes the user preset `name` in `dir`.
pub fn delete_preset(dir: &Path, name: &str) -> Result<()> {
    let path = preset_path(dir, name)?;
    std::fs::remove_file(&path).map_err(|e| {
        Error::io(
            format!("cannot delete the preset: {e}"),
            path.display().to_string(),
        )
        .with_suggestion("factory presets cannot be deleted")
    })
}

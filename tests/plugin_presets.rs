//! Presets: the factory presets, the user's preset folder (save, list, load, rename, delete),
//! and importing a chain file into the strip, naming what does not fit. A preset's chain file
//! renders (through the renderer's chain) what the strip plays with the preset loaded.

use nice_plug::prelude::Params;
use rtfx::dsp::noise::noise;
use rtfx::dsp::spec::{chain_from_toml, parse_chain};
use rtfx::plugin::params::RtfxParams;
use rtfx::plugin::presets::{
    Preset, delete_preset, factory_preset, factory_preset_toml, factory_presets, import_chain,
    list_presets, load_preset, rename_preset, save_preset,
};
use rtfx::plugin::strip::{Strip, StripSettings};

const FS: f64 = 48_000.0;

/// Whether two settings agree, numbers to a relative 1e-6 (what passing a value through a
/// host's normalized 0–1 form changes: the last bits of an `f32`), everything else exactly.
fn same(a: &StripSettings, b: &StripSettings) -> bool {
    let tokens = |s: &StripSettings| {
        format!("{s:?}")
            .split([' ', ',', '(', ')', '{', '}', ':'])
            .filter(|t| !t.is_empty())
            .map(str::to_string)
            .collect::<Vec<_>>()
    };
    let (ta, tb) = (tokens(a), tokens(b));
    ta.len() == tb.len()
        && ta
            .iter()
            .zip(&tb)
            .all(|(x, y)| match (x.parse::<f64>(), y.parse::<f64>()) {
                (Ok(x), Ok(y)) => (x - y).abs() <= 1e-6 * x.abs().max(y.abs()).max(1e-3),
                _ => x == y,
            })
}

/// The strip's output for `settings` and the output of the chain `toml` describes, over the
/// same stereo noise, each with its own latency removed: the largest difference.
fn strip_vs_chain(settings: &StripSettings, toml: &str) -> f32 {
    let mut chain = chain_from_toml(toml)
        .expect("the preset's chain parses")
        .chain;
    chain.prepare(FS, 512, 2).expect("the chain prepares");
    let mut strip = Strip::new(*settings);
    strip.prepare(FS, 512, 2, settings).expect("prepare");
    let (l0, r0) = (noise(48_000, 5, 0.5), noise(48_000, 6, 0.5));
    let (mut l1, mut r1, mut l2, mut r2) = (l0.clone(), r0.clone(), l0.clone(), r0);
    for start in (0..l0.len()).step_by(512) {
        let end = (start + 512).min(l0.len());
        strip.process(&mut [&mut l1[start..end], &mut r1[start..end]]);
        chain.process(&mut [&mut l2[start..end], &mut r2[start..end]]);
    }
    let (ls, lc) = (strip.latency_samples(), chain.latency_samples());
    let n = l1.len() - ls.max(lc);
    assert!(
        l1[ls..].iter().any(|x| x.abs() > 0.01),
        "the strip is silent"
    );
    l1[ls..ls + n]
        .iter()
        .zip(&l2[lc..lc + n])
        .chain(r1[ls..ls + n].iter().zip(&r2[lc..lc + n]))
        .map(|(a, b)| (a - b).abs())
        .fold(0.0, f32::max)
}

/// At least 12 factory presets with distinct names; each loads into the strip exactly as its
/// chain file says (the file imports back to the same settings, with nothing left over), and
/// the file renders what the strip plays.
#[test]
fn factory_presets_render_as_their_chain_files() {
    let presets = factory_presets();
    assert!(presets.len() >= 12, "{} factory presets", presets.len());
    let mut names: Vec<&str> = presets.iter().map(|(n, _)| *n).collect();
    names.sort_unstable();
    names.dedup();
    assert_eq!(names.len(), presets.len(), "duplicate preset names");
    // A loaded preset's name is in the editor's name field: saving under it must work.
    for name in &names {
        rtfx::plugin::presets::check_preset_name(name).expect("a valid user preset name");
    }
    for (name, _) in &presets {
        let settings = factory_preset(name).expect("the preset exists");
        let toml = factory_preset_toml(name).expect("exists").expect("exports");
        let chain = chain_from_toml(&toml).expect("parses").chain;
        let imported = import_chain(&chain);
        assert!(
            imported.not_fitting.is_empty(),
            "{name}: {:?}",
            imported.not_fitting
        );
        assert!(
            same(&imported.settings, &settings),
            "{name}: the file loads back as {:?}, not {settings:?}",
            imported.settings
        );
        let diff = strip_vs_chain(&settings, &toml);
        assert!(diff < 1e-6, "{name}: strip and chain file differ by {diff}");
    }
}

/// Loading a preset into the parameters gives the strip the preset's settings: the values the
/// parameters get, read back, are the quantized settings (the preset's own values to the last
/// bits of an `f32`), and they stay put when applied again.
#[test]
fn preset_values_round_trip_through_the_parameters() {
    for (name, raw) in factory_presets() {
        let params = RtfxParams::default();
        params.apply_values(&params.values_for(&raw));
        let quantized = RtfxParams::quantize(&raw);
        assert_eq!(params.settings(120.0), quantized, "{name}");
        assert!(
            same(&quantized, &raw),
            "{name}: {quantized:?} is not {raw:?}"
        );
        params.apply_values(&params.values_for(&quantized));
        assert!(
            same(&params.settings(120.0), &quantized),
            "{name}: not stable"
        );
    }
}

/// User presets: saved as chain files in the folder (created on first save), listed after the
/// factory presets in name order, loaded back exactly, renamed (never over another preset) and
/// deleted; bad names are refused with a message that names the rule.
#[test]
fn user_presets_save_list_load_rename_and_delete() {
    let dir = tempfile::tempdir().expect("temp dir");
    let folder = dir.path().join("nested").join("presets");
    let vocal = factory_preset("vocal").expect("Vocal");
    let bass = factory_preset("Bass").expect("Bass");
    let path = save_preset(&folder, "my vocal", &vocal).expect("save");
    assert_eq!(path, folder.join("my vocal.toml"));
    save_preset(&folder, "A bass", &bass).expect("save");
    std::fs::write(folder.join("notes.txt"), "not a preset").expect("write");

    let listed = list_presets(Some(&folder));
    let factory = factory_presets().len();
    assert_eq!(listed.len(), factory + 2);
    assert_eq!(listed[factory].name(), "A bass");
    assert_eq!(listed[factory + 1].name(), "my vocal");
    assert!(matches!(listed[0], Preset::Factory("Init")));
    let loaded = load_preset(&listed[factory + 1]).expect("load");
    assert!(same(&loaded.settings, &vocal), "{:?}", loaded.settings);
    assert!(loaded.not_fitting.is_empty());
    // The file is what `rtfx render --chain` reads, and renders what the strip plays.
    let text = std::fs::read_to_string(&path).expect("read");
    assert!(strip_vs_chain(&vocal, &text) < 1e-6);

    // Saving again replaces the preset whole; no temporary file is left.
    save_preset(&folder, "my vocal", &bass).expect("save over");
    let reloaded = load_preset(&list_presets(Some(&folder))[factory + 1]).expect("load");
    assert!(same(&reloaded.settings, &bass));
    let leftovers: Vec<_> = std::fs::read_dir(&folder)
        .expect("dir")
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().ends_with(".tmp"))
        .collect();
    assert!(leftovers.is_empty());

    let err = rename_preset(&folder, "my vocal", "A bass").expect_err("would replace");
    assert!(err.to_string().contains("exists"), "{err}");
    rename_preset(&folder, "my vocal", "lead vocal").expect("rename");
    assert!(folder.join("lead vocal.toml").exists() && !path.exists());
    let err = rename_preset(&folder, "Vocal", "x").expect_err("factory");
    assert!(err.to_string().contains("no such user preset"), "{err}");

    for bad in ["", "  ", "a/b", "..", ".hidden", "x:y", &"n".repeat(65)] {
        let err = save_preset(&folder, bad, &vocal).expect_err(bad);
        assert!(err.to_string().contains("preset name"), "{bad:?}: {err}");
    }

    delete_preset(&folder, "lead vocal").expect("delete");
    delete_preset(&folder, "A bass").expect("delete");
    assert_eq!(list_presets(Some(&folder)).len(), factory);
    assert!(delete_preset(&folder, "A bass").is_err());
}

/// Importing a chain maps what the strip has onto its sections and names the rest: an effect
/// the strip lacks, a second compressor, a section out of the strip's order, settings the
/// strip's sections lack, an order above 8; nothing else is mentioned.
#[test]
fn importing_a_chain_names_what_does_not_fit() {
    let chain = parse_chain(&[
        "gain:gain=-3,gain_type=db",
        "hibutterworth:cutoff=100,order=12",
        "parametriceq:frequency=2000,q=2,gain=4",
        "reverb:room_size=0.7,damping=0.3,mix=0.2,stereo_spread=23",
        "compressor:threshold=-20,ratio=3,detector=rms",
        "gate:threshold=-50",
        "compressor:threshold=-10,ratio=2",
        "delay:delay_samples=4800,feedback=0.3,mix=0.2",
        "gain:gain=0.5",
    ])
    .expect("the chain parses");
    let imported = import_chain(&chain);
    let s = imported.settings;
    assert!((s.input_gain_db + 3.0).abs() < 1e-12);
    assert!((s.output_gain_db - 20.0 * 0.5f64.log10()).abs() < 1e-12);
    assert!(s.high_pass.enabled && s.high_pass.order == 8 && s.high_pass.cutoff_hz == 100.0);
    assert!(s.eq.enabled && s.eq.peak.freq_hz == 2000.0 && s.eq.peak.gain_db == 4.0);
    assert_eq!(s.eq.low_shelf, StripSettings::default().eq.low_shelf);
    assert!(s.reverb.enabled && s.reverb.room_size == 0.7);
    assert!(s.compressor.enabled && s.compressor.threshold_db == -20.0);
    assert!(s.delay.enabled && !s.limiter.enabled && !s.low_pass.enabled);
    let notes = imported.not_fitting.join("\n");
    for expected in [
        "effect 2 (hibutterworth): order 12 is more than the strip's 8",
        "effect 4 (reverb): the strip's reverb has no stereo spread",
        "effect 5 (compressor): the strip runs its compressor before the reverb",
        "effect 5 (compressor): the strip's compressor detects peaks; detector=rms left out",
        "effect 6 (gate): the strip has no gate; left out",
        "effect 7 (compressor): the strip has one compressor, already taken",
        "effect 8 (delay): the strip runs its delay before the reverb",
        "effect 8 (delay): the strip's delay is set in ms or note values, not samples",
    ] {
        assert!(
            notes.contains(expected),
            "missing {expected:?} in:\n{notes}"
        );
    }
    assert_eq!(imported.not_fitting.len(), 8, "{notes}");
}

/// What the editor tells the host, in order.
#[derive(Default)]
struct Recorder {
    calls: std::sync::Mutex<Vec<(char, usize, f32)>>,
}

impl nice_plug::context::gui::GuiContextInner for Recorder {
    fn plugin_api(&self) -> nice_plug::context::PluginApi {
        nice_plug::context::PluginApi::Clap
    }
    unsafe fn raw_begin_set_parameter(&self, param: nice_plug::params::internals::ParamPtr) {
        self.calls.lock().unwrap().push(('b', address(param), 0.0));
    }
    unsafe fn raw_set_parameter_normalized(
        &self,
        param: nice_plug::params::internals::ParamPtr,
        normalized: f32,
    ) {
        self.calls
            .lock()
            .unwrap()
            .push(('s', address(param), normalized));
    }
    unsafe fn raw_end_set_parameter(&self, param: nice_plug::params::internals::ParamPtr) {
        self.calls.lock().unwrap().push(('e', address(param), 0.0));
    }
    fn get_state(&self) -> nice_plug::prelude::PluginState {
        unreachable!("presets never read the state")
    }
    fn set_state(&self, _state: nice_plug::prelude::PluginState) {
        unreachable!("presets never set the state")
    }
    fn request_restart(&self) {}
}

fn address(param: nice_plug::params::internals::ParamPtr) -> usize {
    use nice_plug::params::internals::ParamPtr;
    match param {
        ParamPtr::FloatParam(p) => p as usize,
        ParamPtr::IntParam(p) => p as usize,
        ParamPtr::BoolParam(p) => p as usize,
        ParamPtr::EnumParam(p) => p as usize,
    }
}

/// Loading a preset from the editor is one undo step: a gesture begins on every sound
/// parameter before any value changes, and every gesture ends after the last change; each
/// parameter is set once, and the values make the parameters hold the preset.
#[test]
fn a_preset_change_is_one_gesture_group() {
    let recorder = std::sync::Arc::new(Recorder::default());
    let gui = nice_plug::context::gui::GuiContext::new(recorder.clone());
    let params = RtfxParams::default();
    let vocal = factory_preset("Vocal").expect("Vocal");
    params.apply_with_gestures(&gui, &vocal);
    let calls = recorder.calls.lock().unwrap().clone();
    let count = |kind: char| calls.iter().filter(|c| c.0 == kind).count();
    let n = count('b');
    assert!(n >= 40, "{n} parameters");
    assert_eq!((count('s'), count('e')), (n, n));
    let kinds: String = calls.iter().map(|c| c.0).collect();
    assert_eq!(
        kinds,
        format!("{}{}{}", "b".repeat(n), "s".repeat(n), "e".repeat(n))
    );
    let mut touched: Vec<usize> = calls[..n].iter().map(|c| c.1).collect();
    touched.sort_unstable();
    touched.dedup();
    assert_eq!(touched.len(), n, "a parameter was set twice");
    // The values set, applied to a copy, give the preset.
    let copy = RtfxParams::default();
    copy.apply_values(&copy.values_for(&vocal));
    let by_address: std::collections::HashMap<usize, f32> =
        calls[n..2 * n].iter().map(|c| (c.1, c.2)).collect();
    for (id, ptr, _) in params.param_map() {
        if let Some(v) = by_address.get(&address(ptr)) {
            let expected = copy
                .param_map()
                .into_iter()
                .find(|(i, _, _)| *i == id)
                .map(|(_, p, _)| unsafe { p.modulated_normalized_value() })
                .expect("same parameters");
            assert_eq!(*v, expected, "{id}");
        }
    }
    // Mode and bypass are not part of a preset.
    for id in ["mode", "bypass"] {
        let ptr = params
            .param_map()
            .into_iter()
            .find(|(i, _, _)| i == id)
            .expect(id)
            .1;
        assert!(!by_address.contains_key(&address(ptr)), "{id} was set");
    }
}

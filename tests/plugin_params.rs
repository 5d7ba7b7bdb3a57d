//! The plugin's parameters: stable ids, value↔text round trips, defaults that match the strip,
//! and the persisted editor size.

use std::collections::BTreeMap;

use nice_plug::params::Params;
use nice_plug::prelude::Plugin;
use rtfx::plugin::Rtfx;
use rtfx::plugin::params::{DEFAULT_EDITOR_SIZE, RtfxParams};
use rtfx::plugin::strip::{DelayTime, StripSettings};

/// Every parameter id, in declaration order. Saved projects and automation refer to these:
/// this list may only grow.
const IDS: &[&str] = &[
    "in_gain",
    "hp_on",
    "hp_freq",
    "hp_order",
    "lp_on",
    "lp_freq",
    "lp_order",
    "eq_on",
    "ls_freq",
    "ls_gain",
    "ls_q",
    "pk_freq",
    "pk_gain",
    "pk_q",
    "hs_freq",
    "hs_gain",
    "hs_q",
    "comp_on",
    "comp_thresh",
    "comp_ratio",
    "comp_attack",
    "comp_release",
    "comp_knee",
    "comp_makeup",
    "dly_on",
    "dly_sync",
    "dly_time",
    "dly_note",
    "dly_fb",
    "dly_mix",
    "dly_pingpong",
    "rev_on",
    "rev_size",
    "rev_damp",
    "rev_mix",
    "lim_on",
    "lim_ceiling",
    "lim_lookahead",
    "lim_release",
    "out_gain",
    "bypass",
    "mode",
    "lim_tp",
];

#[test]
fn parameter_ids_are_stable() {
    let plugin = Rtfx::default();
    let ids: Vec<String> = plugin
        .params()
        .param_map()
        .into_iter()
        .map(|(id, _, _)| id)
        .collect();
    assert_eq!(ids, IDS);
}

#[test]
fn every_value_to_text_round_trips() {
    let plugin = Rtfx::default();
    let params = plugin.params();
    let mut checked = 0;
    for (id, ptr, _) in params.param_map() {
        let steps = unsafe { ptr.step_count() };
        let points: Vec<f32> = match steps {
            Some(n) => (0..=n).map(|i| i as f32 / n as f32).collect(),
            None => (0..=200).map(|i| i as f32 / 200.0).collect(),
        };
        for n in points {
            for unit in [true, false] {
                let text = unsafe { ptr.normalized_value_to_string(n, unit) };
                let back = unsafe { ptr.string_to_normalized_value(&text) }
                    .unwrap_or_else(|| panic!("{id}: '{text}' does not parse"));
                assert!((0.0..=1.0).contains(&back), "{id}: '{text}' → {back}");
                let again = unsafe { ptr.normalized_value_to_string(back, unit) };
                assert_eq!(
                    again, text,
                    "{id}: value {n} → '{text}' → {back} → '{again}'"
                );
                checked += 1;
            }
        }
    }
    assert!(checked > 1000);
}

#[test]
fn texts_with_and_without_units_parse() {
    let plugin = Rtfx::default();
    let params = plugin.params();
    let map = params.param_map();
    let ptr = |id: &str| {
        map.iter()
            .find(|(i, _, _)| i == id)
            .map(|(_, p, _)| *p)
            .unwrap()
    };
    let plain = |id: &str, text: &str| unsafe {
        let p = ptr(id);
        p.preview_plain(
            p.string_to_normalized_value(text)
                .unwrap_or_else(|| panic!("{id} '{text}'")),
        )
    };
    assert_eq!(plain("in_gain", "-6 dB"), -6.0);
    assert_eq!(plain("in_gain", "-6dB"), -6.0);
    assert_eq!(plain("in_gain", "-6"), -6.0);
    assert!((plain("hp_freq", "1.5 kHz") - 1500.0).abs() < 0.1);
    assert!((plain("hp_freq", "80 Hz") - 80.0).abs() < 0.01);
    assert!((plain("dly_time", "375 ms") - 375.0).abs() < 0.01);
    assert!((plain("dly_mix", "40 %") - 0.4).abs() < 1e-6);
    assert!((plain("comp_ratio", "4:1") - 4.0).abs() < 1e-6);
    // Out-of-range text is clamped to the range, never outside it.
    assert_eq!(plain("in_gain", "100 dB"), 24.0);
    assert!(unsafe { ptr("in_gain").string_to_normalized_value("loud") }.is_none());
    assert!(unsafe { ptr("in_gain").string_to_normalized_value("nan") }.is_none());
}

#[test]
fn default_parameters_are_the_strip_defaults() {
    let params = RtfxParams::default();
    let got = params.settings(120.0);
    let want = StripSettings::default();
    // Parameters are f32: compare through f32.
    let f = |x: f64| x as f32;
    assert_eq!(f(got.input_gain_db), f(want.input_gain_db));
    assert_eq!(got.high_pass.enabled, want.high_pass.enabled);
    assert_eq!(f(got.high_pass.cutoff_hz), f(want.high_pass.cutoff_hz));
    assert_eq!(got.high_pass.order, want.high_pass.order);
    assert_eq!(f(got.low_pass.cutoff_hz), f(want.low_pass.cutoff_hz));
    assert_eq!(f(got.eq.peak.freq_hz), f(want.eq.peak.freq_hz));
    assert_eq!(f(got.eq.low_shelf.q), f(want.eq.low_shelf.q));
    assert_eq!(
        f(got.compressor.threshold_db),
        f(want.compressor.threshold_db)
    );
    assert_eq!(f(got.compressor.attack_ms), f(want.compressor.attack_ms));
    assert_eq!(got.delay.time, DelayTime::Ms(250.0));
    assert_eq!(f(got.delay.feedback), f(want.delay.feedback));
    assert_eq!(f(got.reverb.mix), f(want.reverb.mix));
    assert_eq!(got.limiter.enabled, want.limiter.enabled);
    assert_eq!(f(got.limiter.lookahead_ms), f(want.limiter.lookahead_ms));
    assert_eq!(got.bypass, want.bypass);
    // By default every section is off: the plugin is transparent.
    assert!(
        !got.high_pass.enabled
            && !got.low_pass.enabled
            && !got.eq.enabled
            && !got.compressor.enabled
            && !got.delay.enabled
            && !got.reverb.enabled
            && !got.limiter.enabled
    );
}

#[test]
fn editor_size_is_persisted() {
    let params = RtfxParams::default();
    assert_eq!(params.editor_size(), DEFAULT_EDITOR_SIZE);
    *params.editor_size.write().unwrap() = (1234, 777);
    let saved = params.serialize_fields();
    assert!(saved.contains_key("editor-size"), "{saved:?}");
    let other = RtfxParams::default();
    other.deserialize_fields(&saved);
    assert_eq!(other.editor_size(), (1234, 777));
    // Garbage or absurd sizes never give an unusable window.
    let mut bad = BTreeMap::new();
    bad.insert("editor-size".to_string(), "[1, 99999999]".to_string());
    other.deserialize_fields(&bad);
    let (w, h) = other.editor_size();
    assert!((400..=4000).contains(&w) && (300..=3000).contains(&h));
    bad.insert("editor-size".to_string(), "not json".to_string());
    other.deserialize_fields(&bad);
    let (w, h) = other.editor_size();
    assert!((400..=4000).contains(&w) && (300..=3000).contains(&h));
}

#[test]
fn only_latency_changing_parameters_are_not_automatable() {
    use nice_plug::prelude::ParamFlags;
    let plugin = Rtfx::default();
    for (id, ptr, _) in plugin.params().param_map() {
        let flags = unsafe { ptr.flags() };
        let automatable = !flags.contains(ParamFlags::NON_AUTOMATABLE);
        // The limiter switch keeps the latency (its delay stays in the path), so it is
        // automatable; only what changes the latency is not.
        let expected = !matches!(id.as_str(), "lim_lookahead" | "mode" | "lim_tp");
        assert_eq!(automatable, expected, "{id}");
        if id == "bypass" {
            assert!(flags.contains(ParamFlags::BYPASS));
        }
    }
}

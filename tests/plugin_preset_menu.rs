//! The editor's preset menu in a real CLAP host under Xvfb (Linux), clicked with the mouse
//! (xdotool): "<" from no preset loads the last factory preset (Ambience); the host receives
//! the change as one gesture group (a gesture begins on every parameter, then every value,
//! then every gesture ends) and the plugin's parameters hold the preset; ">" then wraps round
//! to the first preset (Init). The user preset folder is a temporary one (`RTFX_PRESET_DIR`).
//!
//! Needs what tests/plugin_gui.rs needs, and xdotool (`tools/setup.sh` installs it);
//! `RTFX_SKIP_GUI_TESTS=1` skips it.

#![cfg(target_os = "linux")]

mod x11_common;

use std::time::{Duration, Instant};

use clack_host::prelude::*;
use rtfx::plugin::presets::{PRESET_DIR_VAR, factory_presets};
use x11_common::clap_gui::{
    GuiHost, ParamEvent, instance, open, param_id, param_value, plugin_path, pump,
    take_param_events,
};
use x11_common::{click, headless_display, layout_report_file, wait_for_layout, wait_until_drawn};

/// Waits (pumping the host) until the plugin has sent parameter events and they have stopped
/// coming, and returns them.
fn events_after_click(inst: &mut PluginInstance<GuiHost>) -> Vec<ParamEvent> {
    let start = Instant::now();
    let mut events = Vec::new();
    loop {
        pump(&mut [&mut *inst], Duration::from_millis(200));
        let new = take_param_events(inst);
        if new.is_empty() && !events.is_empty() {
            return events;
        }
        events.extend(new);
        assert!(
            start.elapsed() < Duration::from_secs(15),
            "no parameter events from the click"
        );
    }
}

/// Asserts the events are one gesture group over at least 40 parameters, each once.
fn assert_one_gesture_group(events: &[ParamEvent]) {
    let n = events
        .iter()
        .filter(|e| matches!(e, ParamEvent::Begin(_)))
        .count();
    assert!(n >= 40, "{n} gestures: {events:?}");
    assert_eq!(events.len(), 3 * n, "{events:?}");
    let (begins, rest) = events.split_at(n);
    let (values, ends) = rest.split_at(n);
    assert!(
        begins.iter().all(|e| matches!(e, ParamEvent::Begin(_))),
        "{events:?}"
    );
    assert!(
        values.iter().all(|e| matches!(e, ParamEvent::Value(..))),
        "{events:?}"
    );
    assert!(
        ends.iter().all(|e| matches!(e, ParamEvent::End(_))),
        "{events:?}"
    );
    let mut ids: Vec<u32> = begins
        .iter()
        .map(|e| match e {
            ParamEvent::Begin(id) => *id,
            _ => unreachable!(),
        })
        .collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), n, "a parameter's gesture began twice");
}

#[test]
fn the_preset_menu_loads_presets_as_one_undo_step() {
    let Some((xvfb, root)) = headless_display("the preset menu test") else {
        return;
    };
    let layout_file = layout_report_file("presets");
    let presets = tempfile::tempdir().expect("temp dir");
    // SAFETY: this binary has this one test, so no other thread reads the environment.
    unsafe { std::env::set_var(PRESET_DIR_VAR, presets.path()) };
    let entry = unsafe { PluginEntry::load(plugin_path()) }.expect("the .clap loads");
    let mut inst = instance(&entry);
    let gui = open(&mut inst, root);
    let size = gui.get_size(&inst.plugin_handle()).expect("size");
    let size = (size.width, size.height);
    let shot = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("rtfx-presets.xwd");
    wait_until_drawn(&xvfb.display, size, &shot, || {
        pump(&mut [&mut inst], Duration::from_millis(300))
    });
    let window_line = format!("window {} {}", size.0, size.1);
    let layout = wait_for_layout(&layout_file, &["pixels_per_point 1", &window_line], || {
        pump(&mut [&mut inst], Duration::from_millis(100))
    });
    assert_eq!(param_value(&mut inst, "rev_on"), 0.0);

    // "<" with no preset loaded: the last factory preset, Ambience (delay and reverb on,
    // ping-pong, EQ off).
    let last = factory_presets().last().expect("presets").0;
    assert_eq!(last, "Ambience");
    click(&xvfb.display, &layout, "preset_previous");
    let events = events_after_click(&mut inst);
    assert_one_gesture_group(&events);
    for (id, expected) in [
        ("rev_on", 1.0),
        ("dly_on", 1.0),
        ("dly_pingpong", 1.0),
        ("eq_on", 0.0),
    ] {
        assert_eq!(param_value(&mut inst, id), expected, "{id}");
        let sent = events.iter().find_map(|e| match e {
            ParamEvent::Value(p, v) if *p == param_id(id).get() => Some(*v),
            _ => None,
        });
        assert_eq!(sent, Some(expected), "{id} as the host was told");
    }

    // ">" from the last preset wraps to the first, Init: everything off again.
    click(&xvfb.display, &layout, "preset_next");
    let events = events_after_click(&mut inst);
    assert_one_gesture_group(&events);
    for id in ["rev_on", "dly_on", "dly_pingpong"] {
        assert_eq!(param_value(&mut inst, id), 0.0, "{id}");
    }

    gui.destroy(&inst.plugin_handle());
    let _ = std::fs::remove_file(&layout_file);
    drop(inst);
    drop(entry);
}

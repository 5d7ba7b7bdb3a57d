//! The editor draws the sound (Linux, Xvfb, the plugin in a real CLAP host): with the EQ's peak
//! at +12 dB at 1 kHz, the response curve is drawn where the math says (every column within a
//! few pixels of the filter's magnitude response, the top of the peak at 1 kHz and +12 dB), and
//! with a 3 kHz sine playing through the plugin, the analyser shows the output's peak at 3 kHz
//! at its level, and nothing at 300 Hz.
//!
//! The pixel positions come from this test's own mapping of the axes (log frequency, linear
//! dB, over the ranges `rtfx::plugin::display` documents) and the plot's rectangle from the
//! editor's layout report. Screenshots are saved in the test temp folder
//! (`rtfx-display.xwd` and `.ppm`).
//!
//! Needs what tests/plugin_gui.rs needs; `RTFX_SKIP_GUI_TESTS=1` skips it.

#![cfg(target_os = "linux")]
// Settings are built by changing a few fields of the defaults, which reads best here.
#![allow(clippy::field_reassign_with_default)]

mod x11_common;

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use clack_host::prelude::*;
use nice_plug::prelude::Param;
use rtfx::dsp::filter::design::magnitude_db;
use rtfx::plugin::display::{
    CURVE_COLOUR, FREQ_RANGE, OUTPUT_SPECTRUM_COLOUR, RESPONSE_DB_RANGE, SPECTRUM_DB_RANGE,
};
use rtfx::plugin::params::RtfxParams;
use rtfx::plugin::strip::StripSettings;
use x11_common::clap_gui::{flush, instance, open, plugin_path, process, pump};
use x11_common::{Screenshot, find_window, headless_display, layout_report_file, screenshot};
use x11_common::{wait_for_layout, wait_until_drawn};

const FS: f64 = 48_000.0;
const SINE_HZ: f64 = 3000.0;
const SINE_AMP: f32 = 0.25;
/// Handles' frequencies (HP, LS, PK, HS, LP at their defaults): their circles and labels cover
/// the curve around them.
const HANDLES_HZ: [f32; 5] = [30.0, 100.0, 1000.0, 8000.0, 18_000.0];

/// The plot: its rectangle in the screenshot (pixels; the scale is 1).
#[derive(Debug, Clone, Copy)]
struct Plot {
    x0: f32,
    y0: f32,
    x1: f32,
    y1: f32,
}

impl Plot {
    fn x(&self, freq: f32) -> f32 {
        let (lo, hi) = FREQ_RANGE;
        self.x0 + (self.x1 - self.x0) * (freq / lo).ln() / (hi / lo).ln()
    }

    fn freq(&self, x: f32) -> f32 {
        let (lo, hi) = FREQ_RANGE;
        lo * (hi / lo).powf((x - self.x0) / (self.x1 - self.x0))
    }

    fn y_response(&self, db: f32) -> f32 {
        let (lo, hi) = RESPONSE_DB_RANGE;
        self.y0 + (self.y1 - self.y0) * (hi - db) / (hi - lo)
    }

    fn y_spectrum(&self, db: f32) -> f32 {
        let (lo, hi) = SPECTRUM_DB_RANGE;
        self.y0 + (self.y1 - self.y0) * (hi - db) / (hi - lo)
    }
}

fn near(px: [u8; 3], colour: egui::Color32, tolerance: u8) -> bool {
    let c = [colour.r(), colour.g(), colour.b()];
    px.iter().zip(c).all(|(&a, b)| a.abs_diff(b) <= tolerance)
}

/// The centre row of the response curve's pixels in column `x`, if any.
fn curve_y(shot: &Screenshot, plot: &Plot, x: usize) -> Option<f32> {
    let rows: Vec<usize> = (plot.y0 as usize..plot.y1 as usize)
        .filter(|&y| near(shot.rgb(x, y), CURVE_COLOUR, 40))
        .collect();
    (!rows.is_empty()).then(|| rows.iter().sum::<usize>() as f32 / rows.len() as f32)
}

/// The top row of the output spectrum's fill in column `x`, if any.
fn spectrum_top(shot: &Screenshot, plot: &Plot, x: usize) -> Option<f32> {
    (plot.y0 as usize..plot.y1 as usize)
        .find(|&y| near(shot.rgb(x, y), OUTPUT_SPECTRUM_COLOUR, 6))
        .map(|y| y as f32)
}

/// What is wrong with the screenshot, or `None` when the curve and the analyser are right.
fn check(shot: &Screenshot, plot: &Plot, settings: &StripSettings) -> Option<String> {
    let sections = settings.filter_sections(FS);
    let response = |f: f32| magnitude_db(&sections, f64::from(f), FS) as f32;
    // Every column clear of the handles: the curve within 2.5 pixels of the math.
    let mut checked = 0;
    let mut highest = (f32::MAX, 0.0);
    let mut x = plot.x0 as usize + 3;
    while (x as f32) < plot.x1 - 3.0 {
        let xf = x as f32 + 0.5;
        if HANDLES_HZ.iter().all(|&h| (plot.x(h) - xf).abs() > 12.0) {
            let expected = plot.y_response(response(plot.freq(xf)));
            let Some(found) = curve_y(shot, plot, x) else {
                return Some(format!("no curve in column {x}"));
            };
            if (found - expected).abs() > 2.5 {
                return Some(format!(
                    "column {x} ({:.0} Hz): the curve is at y {found:.1}, the math says {expected:.1}",
                    plot.freq(xf)
                ));
            }
            if found < highest.0 {
                highest = (found, xf);
            }
            checked += 1;
        }
        x += 3;
    }
    assert!(checked > 200, "only {checked} columns checked");
    // The peak: +12 dB at 1 kHz (the handle covers ±12 pixels of it, and columns are checked
    // 3 pixels apart, so the highest one checked is at most 16 pixels from it).
    let (peak_y, peak_x) = highest;
    if (peak_x - plot.x(1000.0)).abs() > 16.0 || (peak_y - plot.y_response(12.0)).abs() > 2.5 {
        return Some(format!(
            "the curve's top is at ({peak_x:.1}, {peak_y:.1}); +12 dB at 1 kHz is at ({:.1}, {:.1})",
            plot.x(1000.0),
            plot.y_response(12.0)
        ));
    }
    // The analyser: the sine's output level at its frequency, nothing a decade below.
    let level = 20.0 * SINE_AMP.log10() + response(SINE_HZ as f32);
    let expected = plot.y_spectrum(level);
    let at_sine = plot.x(SINE_HZ as f32);
    let top = (at_sine as usize - 1..=at_sine as usize + 1)
        .filter_map(|x| spectrum_top(shot, plot, x))
        .fold(f32::MAX, f32::min);
    if (top - expected).abs() > 4.0 {
        return Some(format!(
            "the analyser shows {:.1} dBFS at {SINE_HZ} Hz (y {top}); the output is {level:.1} \
             dBFS (y {expected:.1})",
            -(top - plot.y0) / (plot.y1 - plot.y0) * (SPECTRUM_DB_RANGE.1 - SPECTRUM_DB_RANGE.0)
        ));
    }
    let below = plot.x(300.0) as usize;
    if let Some(y) = spectrum_top(shot, plot, below)
        && y < plot.y_spectrum(-70.0)
    {
        return Some(format!("the analyser shows a level at 300 Hz (y {y})"));
    }
    None
}

#[test]
fn editor_draws_the_response_and_the_spectrum() {
    let Some((xvfb, root)) = headless_display("the editor's drawing test") else {
        return;
    };
    let layout = layout_report_file("display");
    let entry = unsafe { PluginEntry::load(plugin_path()) }.expect("the .clap loads");
    let mut inst = instance(&entry);

    let params = RtfxParams::default();
    flush(
        &mut inst,
        &[
            ("eq_on", 1.0),
            (
                "pk_gain",
                f64::from(params.pk_gain.preview_normalized(12.0)),
            ),
        ],
    );
    let mut settings = StripSettings::default();
    settings.eq.enabled = true;
    settings.eq.peak.gain_db = 12.0;

    let config = PluginAudioConfiguration {
        sample_rate: FS,
        min_frames_count: 1,
        max_frames_count: 512,
    };
    let proc = inst.activate(|_, _| (), config).expect("activate");
    let gui = open(&mut inst, root);
    let size = gui.get_size(&inst.plugin_handle()).expect("size");
    let size = (size.width, size.height);

    let stop = AtomicBool::new(false);
    let shot_path = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("rtfx-display.xwd");
    let proc = std::thread::scope(|scope| {
        // The host's audio thread: a 3 kHz sine in 512-frame blocks, about in real time.
        let audio = scope.spawn(|| {
            let mut proc = proc.start_processing().expect("start processing");
            let mut n = 0u64;
            let mut output = vec![vec![0.0f32; 512]; 2];
            while !stop.load(Ordering::Relaxed) {
                let block: Vec<f32> = (0..512)
                    .map(|i| {
                        let t = (n + i) as f64 / FS;
                        (f64::from(SINE_AMP) * (2.0 * std::f64::consts::PI * SINE_HZ * t).sin())
                            as f32
                    })
                    .collect();
                n += 512;
                let mut input = vec![block.clone(), block];
                process(&mut proc, &mut input, &mut output);
                std::thread::sleep(Duration::from_millis(10));
            }
            proc.stop_processing()
        });

        wait_until_drawn(&xvfb.display, size, &shot_path, || {
            pump(&mut [&mut inst], Duration::from_millis(300))
        });
        let window_line = format!("window {} {}", size.0, size.1);
        let laid_out = wait_for_layout(&layout, &["pixels_per_point 1", &window_line], || {
            pump(&mut [&mut inst], Duration::from_millis(100))
        });
        let [x0, y0, x1, y1] = laid_out
            .items
            .iter()
            .find(|(name, _)| name == "Response")
            .expect("the layout report has the response plot")
            .1;
        let plot = Plot { x0, y0, x1, y1 };
        // The analyser needs a few frames of audio; give it up to 15 s on a loaded machine.
        let start = Instant::now();
        let mut problem;
        loop {
            pump(&mut [&mut inst], Duration::from_millis(300));
            let window = find_window(&xvfb.display, size).expect("the editor's window");
            let shot = screenshot(&xvfb.display, Some(window), &shot_path);
            problem = check(&shot, &plot, &settings);
            if problem.is_none() || start.elapsed() > Duration::from_secs(15) {
                break;
            }
        }
        stop.store(true, Ordering::Relaxed);
        let proc = audio.join().expect("the audio thread");
        if let Some(problem) = problem {
            panic!(
                "{problem} (plot {plot:?}; screenshot {})",
                shot_path.with_extension("ppm").display()
            );
        }
        proc
    });
    gui.destroy(&inst.plugin_handle());
    inst.deactivate(proc);
    let _ = std::fs::remove_file(&layout);
    drop(inst);
    drop(entry);
}

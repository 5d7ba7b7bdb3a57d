//! `rtfx stats`: levels and loudness of audio files (see `rtfx::offline::stats`).

use std::path::PathBuf;

use anyhow::Context;
use rtfx::dsp::gain_to_db;
use rtfx::offline::stats::{FileStats, Levels, file_stats};

use super::check_input_file;

/// A level in dB with `decimals`, "-inf" for silence.
fn db(x: f64, decimals: usize) -> String {
    if x > 0.0 {
        format!("{:.*}", decimals, gain_to_db(x))
    } else {
        "-inf".into()
    }
}

/// A finite number for JSON, `null` otherwise (JSON has no infinity).
fn finite(x: f64) -> serde_json::Value {
    if x.is_finite() {
        serde_json::json!((x * 1e4).round() / 1e4)
    } else {
        serde_json::Value::Null
    }
}

fn levels_json(l: &Levels) -> serde_json::Value {
    let db = |x: f64| {
        finite(if x > 0.0 {
            gain_to_db(x)
        } else {
            f64::NEG_INFINITY
        })
    };
    serde_json::json!({
        "peak_dbfs": db(l.peak),
        "true_peak_dbtp": db(l.true_peak),
        "rms_dbfs": db(l.rms),
        "crest_db": l.crest_db().map_or(serde_json::Value::Null, finite),
        "dc_offset": l.dc,
        "clipped_samples": l.clipped,
    })
}

fn print_json(file: &str, s: &FileStats) {
    let line = serde_json::json!({
        "file": file,
        "sample_rate": s.sample_rate,
        "frames": s.frames,
        "duration_seconds": s.duration_seconds(),
        "integrated_lufs": finite(s.integrated_lufs),
        "loudness_range_lu": finite(s.loudness_range_lu),
        "short_term_max_lufs": finite(s.short_term_max_lufs),
        "overall": levels_json(&s.overall),
        "channels": s.channels.iter().map(levels_json).collect::<Vec<_>>(),
    });
    outln!("{line}");
}

fn print_table(file: &str, s: &FileStats) {
    outln!(
        "File: {file} ({} Hz, {} channel{}, {:.3} s, {} frames)",
        s.sample_rate,
        s.channels.len(),
        if s.channels.len() == 1 { "" } else { "s" },
        s.duration_seconds(),
        s.frames
    );
    let columns: Vec<&Levels> = std::iter::once(&s.overall).chain(&s.channels).collect();
    let mut header = format!("{:<18}{:>11}", "", "overall");
    for c in 1..=s.channels.len() {
        header.push_str(&format!("{:>11}", format!("ch{c}")));
    }
    outln!("{header}");
    let row = |name: &str, value: &dyn Fn(&Levels) -> String| {
        let mut line = format!("{name:<18}");
        for l in &columns {
            line.push_str(&format!("{:>11}", value(l)));
        }
        outln!("{line}");
    };
    row("Peak dBFS", &|l| db(l.peak, 2));
    row("True peak dBTP", &|l| db(l.true_peak, 2));
    row("RMS dBFS", &|l| db(l.rms, 2));
    row("Crest factor dB", &|l| {
        l.crest_db().map_or("-".into(), |c| format!("{c:.2}"))
    });
    row("DC offset", &|l| format!("{:.6}", l.dc));
    row("Clipped samples", &|l| l.clipped.to_string());
    let lufs = |x: f64| {
        if x.is_finite() {
            format!("{x:.1}")
        } else {
            "-inf".into()
        }
    };
    outln!("Integrated loudness  {} LUFS", lufs(s.integrated_lufs));
    outln!("Loudness range       {:.1} LU", s.loudness_range_lu);
    outln!("Short-term max       {} LUFS", lufs(s.short_term_max_lufs));
}

/// Measures every file and prints its figures (a table each, or a JSON line each).
pub fn run(files: &[PathBuf], json: bool) -> anyhow::Result<()> {
    for path in files {
        check_input_file(path)?;
    }
    for (i, path) in files.iter().enumerate() {
        let shown = path.display().to_string();
        let stats = file_stats(path).with_context(|| format!("cannot measure '{shown}'"))?;
        if json {
            print_json(&shown, &stats);
        } else {
            if i > 0 {
                outln!();
            }
            print_table(&shown, &stats);
        }
    }
    Ok(())
}

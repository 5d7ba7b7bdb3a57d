//! `rtfx info`: what an audio file holds.

use std::path::Path;

use rtfx::offline::audio_io::{AudioReader, ReadOptions};

use super::check_input_file;

/// Prints format, rate, channels, duration, frames, subtype and size of `path`.
pub fn run(path: &Path, json: bool) -> anyhow::Result<()> {
    check_input_file(path)?;
    let shown = path.display();
    let reader = AudioReader::open(
        path,
        ReadOptions {
            allow_truncated: true,
            verify: false,
        },
    )?;
    let info = reader.info();
    if json {
        outln!(
            "{}",
            serde_json::json!({
                "file": shown.to_string(),
                "format": info.format,
                "subtype": info.subtype,
                "sample_rate": info.sample_rate,
                "channels": info.channels,
                "frames": info.frames,
                "frames_exact": info.frames_exact,
                "duration_seconds": info.duration_seconds(),
                "file_size": info.file_size,
            })
        );
        return Ok(());
    }
    let duration = match info.duration_seconds() {
        Some(s) if s >= 60.0 => format!("{}:{:05.2}", (s / 60.0).floor() as u64, s % 60.0),
        Some(s) => format!("{s:.2} s"),
        None => "unknown".into(),
    };
    let frames = match info.frames {
        None => "unknown".to_string(),
        Some(f) if info.frames_exact => f.to_string(),
        Some(f) => format!("~{f} (estimated from the bitrate: no Xing/LAME/VBRI header)"),
    };
    let frames = if info.format == "MP3" && info.frames.is_none() {
        format!("{frames} (no Xing/LAME/VBRI header states it)")
    } else {
        frames
    };
    outln!("File:        {shown}");
    outln!("Format:      {}", info.format);
    outln!("Sample Rate: {} Hz", info.sample_rate);
    outln!("Channels:    {}", info.channels);
    outln!("Duration:    {duration}");
    outln!("Frames:      {frames}");
    outln!("Subtype:     {}", info.subtype);
    outln!("File Size:   {} bytes", info.file_size);
    Ok(())
}

//! A file's levels, measured in one streaming pass (`rtfx stats`): per channel and overall the
//! sample peak, true peak, RMS, crest factor, DC offset and clipped samples; the integrated
//! loudness, loudness range and largest short-term loudness (EBU R128, through the `ebur128`
//! crate); the duration.
//!
//! Memory stays flat for any length: the file is read in blocks, and the loudness meter keeps
//! only its gating histogram.

use std::path::Path;

use crate::dsp::true_peak::TruePeakMeter;
use crate::error::{Error, Result};
use crate::offline::audio_io::{AudioReader, ReadOptions};

/// Frames per read.
const BLOCK: usize = 4096;

/// One channel's levels (or all channels together), linear.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Levels {
    /// Largest |x|.
    pub peak: f64,
    /// Largest inter-sample peak (rtfx's 8× oversampled true-peak meter,
    /// [`crate::dsp::true_peak`]), at least `peak`.
    pub true_peak: f64,
    /// Root mean square.
    pub rms: f64,
    /// Mean (DC offset).
    pub dc: f64,
    /// Samples at or beyond full scale: ±1.0, or the largest code of an integer format.
    pub clipped: u64,
}

impl Levels {
    /// Peak over RMS in dB (`None` for silence).
    pub fn crest_db(&self) -> Option<f64> {
        (self.rms > 0.0).then(|| crate::dsp::gain_to_db(self.peak / self.rms))
    }
}

/// What [`file_stats`] measures.
#[derive(Debug, Clone, PartialEq)]
pub struct FileStats {
    /// Sample rate in Hz.
    pub sample_rate: u32,
    /// Frames read.
    pub frames: u64,
    /// Per channel.
    pub channels: Vec<Levels>,
    /// All channels together (peaks are the largest, RMS and DC over every sample, clipped
    /// the sum).
    pub overall: Levels,
    /// Integrated loudness in LUFS (−inf when the gate leaves nothing: silence).
    pub integrated_lufs: f64,
    /// Loudness range in LU (EBU Tech 3342).
    pub loudness_range_lu: f64,
    /// Largest short-term loudness (3 s window, every 100 ms) in LUFS (−inf for files shorter
    /// than 3 s of anything but silence).
    pub short_term_max_lufs: f64,
}

impl FileStats {
    /// Duration in seconds.
    pub fn duration_seconds(&self) -> f64 {
        self.frames as f64 / f64::from(self.sample_rate.max(1))
    }
}

/// Running sums for one channel.
#[derive(Default, Clone, Copy)]
struct Sums {
    peak: f32,
    sum: f64,
    sum_sq: f64,
    clipped: u64,
}

/// Measures `path` in one pass (see the module documentation).
///
/// # Errors
/// What opening or decoding the file gives ([`AudioReader`]), and a loudness meter that cannot
/// run at the file's rate or channel count.
pub fn file_stats(path: &Path) -> Result<FileStats> {
    let mut reader = AudioReader::open(path, ReadOptions::default())?;
    let info = reader.info().clone();
    let channels = info.channels;
    let rate = info.sample_rate;
    let full_scale = full_scale(&info.subtype);
    let meter_error = |e: ebur128::Error| Error::format(format!("the loudness meter failed: {e}"));
    let mode = ebur128::Mode::I | ebur128::Mode::LRA | ebur128::Mode::S;
    let mut ebu = ebur128::EbuR128::new(channels as u32, rate, mode).map_err(meter_error)?;
    let mut true_peak = TruePeakMeter::new(channels);
    let mut sums = vec![Sums::default(); channels];
    let mut planar = vec![vec![0.0f32; BLOCK]; channels];
    // Short-term loudness is read every 100 ms of audio.
    let step = (rate as usize / 10).max(1);
    let mut until_step = step;
    let mut short_term_max = f64::NEG_INFINITY;
    let mut frames = 0u64;
    loop {
        let n = reader.read(&mut planar)?;
        if n == 0 {
            break;
        }
        frames += n as u64;
        for (s, ch) in sums.iter_mut().zip(&planar) {
            for &x in &ch[..n] {
                s.peak = s.peak.max(x.abs());
                s.sum += f64::from(x);
                s.sum_sq += f64::from(x) * f64::from(x);
                s.clipped += u64::from(x.abs() >= full_scale);
            }
        }
        let block: Vec<&[f32]> = planar.iter().map(|c| &c[..n]).collect();
        true_peak.add(&block);
        let mut start = 0;
        while start < n {
            let take = (n - start).min(until_step);
            let part: Vec<&[f32]> = block.iter().map(|c| &c[start..start + take]).collect();
            ebu.add_frames_planar_f32(&part).map_err(meter_error)?;
            start += take;
            until_step -= take;
            if until_step == 0 {
                until_step = step;
                // Only once a whole 3 s window has been heard.
                if frames - (n - start) as u64 >= 3 * u64::from(rate)
                    && let Ok(st) = ebu.loudness_shortterm()
                    && st.is_finite()
                {
                    short_term_max = short_term_max.max(st);
                }
            }
        }
    }
    let count = frames.max(1) as f64;
    let per_channel: Vec<Levels> = sums
        .iter()
        .enumerate()
        .map(|(c, s)| Levels {
            peak: f64::from(s.peak),
            true_peak: true_peak.channel_peak(c).max(f64::from(s.peak)),
            rms: (s.sum_sq / count).sqrt(),
            dc: s.sum / count,
            clipped: s.clipped,
        })
        .collect();
    let all = count * channels.max(1) as f64;
    let overall = Levels {
        peak: per_channel.iter().map(|l| l.peak).fold(0.0, f64::max),
        true_peak: per_channel.iter().map(|l| l.true_peak).fold(0.0, f64::max),
        rms: (sums.iter().map(|s| s.sum_sq).sum::<f64>() / all).sqrt(),
        dc: sums.iter().map(|s| s.sum).sum::<f64>() / all,
        clipped: sums.iter().map(|s| s.clipped).sum(),
    };
    Ok(FileStats {
        sample_rate: rate,
        frames,
        channels: per_channel,
        overall,
        integrated_lufs: ebu.loudness_global().unwrap_or(f64::NEG_INFINITY),
        loudness_range_lu: ebu.loudness_range().unwrap_or(0.0),
        short_term_max_lufs: short_term_max,
    })
}

/// The level at which a sample counts as clipped: the largest code of an integer format
/// (`PCM_16`: 32767/32768), else 1.0.
fn full_scale(subtype: &str) -> f32 {
    let upper = subtype.to_ascii_uppercase();
    let bits: Option<u32> = upper
        .contains("PCM")
        .then(|| {
            upper
                .chars()
                .filter(char::is_ascii_digit)
                .collect::<String>()
        })
        .and_then(|d| d.parse().ok())
        .filter(|b| (2..=32).contains(b));
    match bits {
        Some(b) => {
            let half = 2f64.powi(b as i32 - 1);
            ((half - 1.0) / half) as f32
        }
        None => 1.0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn full_scale_is_the_largest_code() {
        assert_eq!(full_scale("PCM_16"), 32767.0 / 32768.0);
        assert_eq!(full_scale("pcm24"), (8_388_607.0f64 / 8_388_608.0) as f32);
        assert_eq!(full_scale("FLOAT"), 1.0);
        assert_eq!(full_scale("MP3"), 1.0);
    }
}

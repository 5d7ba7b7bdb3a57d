//! `rtfx demo`: runs a chain over a generated stereo signal and reports level and speed.

use anyhow::Context;
use rtfx::dsp::spec::parse_chain;
use std::path::Path;
use std::time::Instant;

/// The "guitar chain" of the benchmarks.
pub const GUITAR_CHAIN: &[&str] = &[
    "hibutterworth:80,order=2",
    "lobutterworth:8000,order=4",
    "gain:1.5",
    "reverb:room_size=0.3",
];

pub fn run(
    effects: &[String],
    seconds: f64,
    block: usize,
    write_input: Option<&Path>,
) -> anyhow::Result<()> {
    let specs: Vec<String> = if effects.is_empty() {
        GUITAR_CHAIN.iter().map(|s| s.to_string()).collect()
    } else {
        effects.to_vec()
    };
    anyhow::ensure!(
        seconds > 0.0 && seconds.is_finite(),
        "--seconds must be a positive number, got {seconds}"
    );
    anyhow::ensure!(block > 0, "--block must be at least 1");
    let rate = 48000.0;
    let mut chain = parse_chain(&specs).context("building the chain")?;
    chain
        .prepare(rate, block, 2)
        .context("preparing the chain")?;

    let frames = (seconds * rate) as usize;
    // A plucked-string-like test signal: decaying harmonics plus a little noise, stereo.
    let mut rng = rtfx::dsp::noise::Noise::new(0x1234_5678);
    let mut left = vec![0.0f32; block];
    let mut right = vec![0.0f32; block];
    let (mut peak_in, mut peak_out, mut sum_in, mut sum_out) = (0.0f32, 0.0f32, 0.0f64, 0.0f64);
    let mut busy = std::time::Duration::ZERO;
    let mut dry: [Vec<f32>; 2] = [Vec::new(), Vec::new()];
    let mut done = 0;
    while done < frames {
        let n = block.min(frames - done);
        for i in 0..n {
            let t = (done + i) as f32 / rate as f32;
            let note = t % 0.5;
            let env = (-6.0 * note).exp();
            let f = 110.0 * (1 + ((done + i) / 24000) % 4) as f32;
            let tone: f32 = (1..6)
                .map(|h| (std::f32::consts::TAU * f * h as f32 * note).sin() / h as f32)
                .sum();
            let noise = rng.sample() * 0.5;
            left[i] = 0.3 * env * tone + 0.01 * noise;
            right[i] = 0.3 * env * tone - 0.01 * noise;
            peak_in = peak_in.max(left[i].abs());
            sum_in += f64::from(left[i]).powi(2);
        }
        if write_input.is_some() {
            dry[0].extend_from_slice(&left[..n]);
            dry[1].extend_from_slice(&right[..n]);
        }
        let start = Instant::now();
        chain.process(&mut [&mut left[..n], &mut right[..n]]);
        busy += start.elapsed();
        for &v in left[..n].iter().chain(&right[..n]) {
            anyhow::ensure!(v.is_finite(), "the chain produced a non-finite sample");
            peak_out = peak_out.max(v.abs());
            sum_out += f64::from(v).powi(2) / 2.0;
        }
        done += n;
    }
    if let Some(path) = write_input {
        write_dry(path, rate as u32, &dry)?;
        outln!("wrote the dry test signal to {}", path.display());
    }
    let db = |v: f64| rtfx::dsp::gain_to_db(v.max(1e-12));
    outln!("chain: {}", specs.join(" | "));
    outln!("processed {seconds} s of stereo 48 kHz audio in blocks of {block}");
    outln!(
        "input  peak {:7.2} dBFS, RMS {:7.2} dBFS",
        db(f64::from(peak_in)),
        db((sum_in / frames as f64).sqrt())
    );
    outln!(
        "output peak {:7.2} dBFS, RMS {:7.2} dBFS",
        db(f64::from(peak_out)),
        db((sum_out / frames as f64).sqrt())
    );
    outln!(
        "DSP time {:.1} ms: {:.1} ns per stereo frame, {:.0}x real time on one core",
        busy.as_secs_f64() * 1e3,
        busy.as_secs_f64() * 1e9 / frames as f64,
        seconds / busy.as_secs_f64()
    );
    outln!(
        "latency {} samples, tail {} samples",
        chain.latency_samples(),
        chain.tail_samples()
    );
    Ok(())
}

/// Writes the dry signal as a float WAV (replacing an older demo file).
fn write_dry(path: &Path, rate: u32, dry: &[Vec<f32>; 2]) -> anyhow::Result<()> {
    use rtfx::offline::audio_io::{AudioWriter, OutputFormat, Subtype, WriteOptions};
    let format = OutputFormat::from_path(path)?;
    let mut file = std::fs::File::create(path)
        .with_context(|| format!("cannot create '{}'", path.display()))?;
    let mut writer = AudioWriter::new(
        &mut file,
        WriteOptions::new(format, Subtype::Float),
        rate,
        2,
        Some(dry[0].len() as u64),
    )?;
    writer.write(&[&dry[0], &dry[1]])?;
    writer.finish()?;
    Ok(())
}

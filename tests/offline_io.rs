//! The offline path as a library: file formats, dither, StreamProcessor and render_file.

mod common;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;

use common::{
    all_effects, hound_read_interleaved, is_block_wise, noise, render_specs, write_float_wav,
};
use rtfx::dsp::chain::Chain;
use rtfx::dsp::spec::parse_chain;
use rtfx::offline::audio_io::{
    AudioReader, AudioWriter, OutputFormat, ReadOptions, Subtype, WriteOptions,
};
use rtfx::offline::render::{NormalizeTarget, RenderOptions, Tail, render_file};
use rtfx::offline::stream::StreamProcessor;

fn tmp() -> tempfile::TempDir {
    tempfile::tempdir().expect("temp dir")
}

/// Planar noise, `channels` × `frames`, distinct per channel.
fn signal(channels: usize, frames: usize, amplitude: f32) -> Vec<Vec<f32>> {
    (0..channels)
        .map(|c| noise(frames, 17 + c as u64, amplitude))
        .collect()
}

/// Reads any WAV with hound as planar f32 (integers scaled to [-1, 1)).
fn hound_read(path: &Path) -> (hound::WavSpec, Vec<Vec<f32>>) {
    let (spec, inter) = hound_read_interleaved(path);
    let ch = usize::from(spec.channels);
    let mut planar = vec![Vec::new(); ch];
    for (i, s) in inter.into_iter().enumerate() {
        planar[i % ch].push(s);
    }
    (spec, planar)
}

/// Reads a whole file with our reader.
fn read_all(path: &Path) -> (u32, Vec<Vec<f32>>) {
    let mut reader = AudioReader::open(path, ReadOptions::default()).expect("open");
    let ch = reader.info().channels;
    let mut out = vec![Vec::new(); ch];
    let mut buf = vec![vec![0.0f32; 1000]; ch];
    loop {
        let n = reader.read(&mut buf).expect("read");
        if n == 0 {
            break;
        }
        for (o, b) in out.iter_mut().zip(&buf) {
            o.extend_from_slice(&b[..n]);
        }
    }
    (reader.info().sample_rate, out)
}

/// Writes planar audio with our writer.
fn write_ours(path: &Path, options: WriteOptions, rate: u32, planar: &[Vec<f32>]) -> u64 {
    let mut file = std::fs::File::create(path).expect("create");
    let mut w = AudioWriter::new(&mut file, options, rate, planar.len(), None).expect("writer");
    // Uneven pieces: the writer must not depend on block boundaries.
    let mut pos = 0;
    let frames = planar[0].len();
    for step in [1usize, 999, 4096, 10_000].iter().cycle() {
        if pos >= frames {
            break;
        }
        let n = (*step).min(frames - pos);
        let view: Vec<&[f32]> = planar.iter().map(|c| &c[pos..pos + n]).collect();
        w.write(&view).expect("write");
        pos += n;
    }
    w.finish().expect("finish").clipped
}

fn no_dither(format: OutputFormat, subtype: Subtype) -> WriteOptions {
    WriteOptions {
        dither: false,
        ..WriteOptions::new(format, subtype)
    }
}

#[test]
fn wav_round_trips_every_subtype_and_hound_agrees() {
    let dir = tmp();
    for channels in [1, 2, 3] {
        let input = signal(channels, 12_345, 0.9);
        for subtype in [
            Subtype::Float,
            Subtype::Pcm16,
            Subtype::Pcm24,
            Subtype::Pcm32,
        ] {
            let path = dir
                .path()
                .join(format!("rt-{channels}-{}.wav", subtype.name()));
            let clipped = write_ours(&path, no_dither(OutputFormat::Wav, subtype), 44_100, &input);
            assert_eq!(clipped, 0);
            let (rate, ours) = read_all(&path);
            let (spec, theirs) = hound_read(&path);
            assert_eq!(rate, 44_100);
            assert_eq!(spec.sample_rate, 44_100);
            assert_eq!(usize::from(spec.channels), channels);
            assert_eq!(spec.bits_per_sample, subtype.bits());
            let lsb = if subtype == Subtype::Float {
                0.0
            } else {
                2f32.powi(1 - i32::from(subtype.bits()))
            };
            for c in 0..channels {
                assert_eq!(ours[c].len(), input[c].len());
                assert_eq!(ours[c], theirs[c], "our reader and hound differ");
                for (a, b) in ours[c].iter().zip(&input[c]) {
                    assert!(
                        (a - b).abs() <= lsb * 0.5 + 1e-7,
                        "{}: {a} vs {b}",
                        subtype.name()
                    );
                }
            }
        }
    }
}

#[test]
fn flac_round_trips_16_and_24_bit() {
    let dir = tmp();
    let input = signal(2, 20_000, 0.8);
    for subtype in [Subtype::Pcm16, Subtype::Pcm24] {
        let path = dir.path().join(format!("rt-{}.flac", subtype.name()));
        write_ours(
            &path,
            no_dither(OutputFormat::Flac, subtype),
            48_000,
            &input,
        );
        let reader = AudioReader::open(&path, ReadOptions::default()).expect("open flac");
        assert_eq!(reader.info().format, "FLAC");
        assert_eq!(reader.info().frames, Some(20_000));
        assert_eq!(
            reader.info().subtype,
            format!("PCM_{}", subtype.bits()),
            "FLAC bit depth"
        );
        let (rate, out) = read_all(&path);
        assert_eq!(rate, 48_000);
        let lsb = 2f32.powi(1 - i32::from(subtype.bits()));
        for c in 0..2 {
            assert_eq!(out[c].len(), 20_000);
            let worst = out[c]
                .iter()
                .zip(&input[c])
                .map(|(a, b)| (a - b).abs())
                .fold(0.0f32, f32::max);
            assert!(worst <= lsb * 0.5 + 1e-7, "worst {worst} > half an LSB");
        }
    }
}

#[test]
fn reads_integer_wavs_written_by_hound() {
    let dir = tmp();
    let input = signal(2, 3000, 0.7);
    for bits in [8u16, 16, 24, 32] {
        let path = dir.path().join(format!("h{bits}.wav"));
        let spec = hound::WavSpec {
            channels: 2,
            sample_rate: 22_050,
            bits_per_sample: bits,
            sample_format: hound::SampleFormat::Int,
        };
        let mut w = hound::WavWriter::create(&path, spec).expect("create");
        let scale = 2f32.powi(i32::from(bits) - 1);
        for i in 0..3000 {
            for ch in &input {
                let v = (ch[i] * scale).round() as i32;
                if bits == 8 {
                    w.write_sample(v as i8).expect("write");
                } else {
                    w.write_sample(v).expect("write");
                }
            }
        }
        w.finalize().expect("finalize");
        let reader = AudioReader::open(&path, ReadOptions::default()).expect("open");
        assert_eq!(
            reader.info().subtype,
            if bits == 8 {
                "PCM_U8".to_string()
            } else {
                format!("PCM_{bits}")
            }
        );
        let (_, ours) = read_all(&path);
        let (_, theirs) = hound_read(&path);
        for c in 0..2 {
            assert_eq!(ours[c], theirs[c], "{bits}-bit");
        }
    }
}

/// A hand-made WAV: 64-bit float in WAVE_FORMAT_EXTENSIBLE inside an RF64 container.
#[test]
fn reads_rf64_extensible_float64() {
    let dir = tmp();
    let path = dir.path().join("rf64.wav");
    let frames = 500u64;
    let input = signal(2, frames as usize, 0.5);
    let mut data = Vec::new();
    for i in 0..frames as usize {
        for ch in &input {
            data.extend_from_slice(&f64::from(ch[i]).to_le_bytes());
        }
    }
    let mut f = Vec::new();
    f.extend_from_slice(b"RF64");
    f.extend_from_slice(&u32::MAX.to_le_bytes());
    f.extend_from_slice(b"WAVE");
    f.extend_from_slice(b"ds64");
    f.extend_from_slice(&28u32.to_le_bytes());
    f.extend_from_slice(&0u64.to_le_bytes());
    f.extend_from_slice(&(data.len() as u64).to_le_bytes());
    f.extend_from_slice(&frames.to_le_bytes());
    f.extend_from_slice(&0u32.to_le_bytes());
    f.extend_from_slice(b"fmt ");
    f.extend_from_slice(&40u32.to_le_bytes());
    f.extend_from_slice(&0xFFFEu16.to_le_bytes());
    f.extend_from_slice(&2u16.to_le_bytes());
    f.extend_from_slice(&96_000u32.to_le_bytes());
    f.extend_from_slice(&(96_000u32 * 16).to_le_bytes());
    f.extend_from_slice(&16u16.to_le_bytes());
    f.extend_from_slice(&64u16.to_le_bytes());
    f.extend_from_slice(&22u16.to_le_bytes());
    f.extend_from_slice(&64u16.to_le_bytes());
    f.extend_from_slice(&3u32.to_le_bytes());
    f.extend_from_slice(&3u16.to_le_bytes());
    f.extend_from_slice(&[0, 0, 0, 0, 0x10, 0, 0x80, 0, 0, 0xAA, 0, 0x38, 0x9B, 0x71]);
    f.extend_from_slice(b"data");
    f.extend_from_slice(&u32::MAX.to_le_bytes());
    f.extend_from_slice(&data);
    std::fs::write(&path, f).expect("write");
    let reader = AudioReader::open(&path, ReadOptions::default()).expect("open rf64");
    assert_eq!(reader.info().subtype, "DOUBLE");
    assert_eq!(reader.info().frames, Some(frames));
    let (rate, out) = read_all(&path);
    assert_eq!(rate, 96_000);
    assert_eq!(out, input);
}

#[test]
fn truncated_wav_is_refused_unless_allowed() {
    let dir = tmp();
    let path = dir.path().join("cut.wav");
    write_float_wav(&path, 48_000, &signal(2, 10_000, 0.5));
    let full = std::fs::read(&path).expect("read");
    std::fs::write(&path, &full[..full.len() - 8000 * 8 - 3]).expect("cut");
    let err = AudioReader::open(&path, ReadOptions::default())
        .err()
        .expect("a truncated file must be refused")
        .to_string();
    assert!(err.contains("truncated"), "{err}");
    assert!(err.contains("10000 frames"), "{err}");
    assert!(err.contains("--allow-truncated"), "{err}");
    let reader = AudioReader::open(
        &path,
        ReadOptions {
            allow_truncated: true,
            ..Default::default()
        },
    )
    .expect("allowed");
    assert_eq!(reader.info().frames, Some(1999));
}

#[test]
fn non_finite_input_samples_become_zero_and_are_counted() {
    let dir = tmp();
    let path = dir.path().join("nan.wav");
    let mut input = signal(1, 1000, 0.5);
    input[0][10] = f32::NAN;
    input[0][20] = f32::INFINITY;
    input[0][30] = f32::NEG_INFINITY;
    write_float_wav(&path, 48_000, &input);
    let mut reader = AudioReader::open(&path, ReadOptions::default()).expect("open");
    let mut buf = vec![vec![0.0f32; 2000]];
    let n = reader.read(&mut buf).expect("read");
    assert_eq!(n, 1000);
    assert_eq!(reader.nonfinite_replaced(), 3);
    assert_eq!(buf[0][10], 0.0);
    assert_eq!(buf[0][20], 0.0);
    assert_eq!(buf[0][30], 0.0);
    assert_eq!(buf[0][11], input[0][11]);
}

#[test]
fn tpdf_dither_is_zero_mean_bounded_reproducible_and_linearises() {
    let dir = tmp();
    // A constant a quarter of an LSB: truncation gives silence, dither keeps it on average.
    let lsb = 1.0 / 32768.0;
    let input = vec![vec![0.25 * lsb; 200_000]];
    let dithered = dir.path().join("d.wav");
    let plain = dir.path().join("p.wav");
    write_ours(
        &dithered,
        WriteOptions::new(OutputFormat::Wav, Subtype::Pcm16),
        48_000,
        &input,
    );
    write_ours(
        &plain,
        no_dither(OutputFormat::Wav, Subtype::Pcm16),
        48_000,
        &input,
    );
    let (_, d) = hound_read(&dithered);
    let (_, p) = hound_read(&plain);
    assert!(
        p[0].iter().all(|&x| x == 0.0),
        "undithered output rounds to 0"
    );
    let mean = d[0].iter().map(|&x| f64::from(x)).sum::<f64>() / d[0].len() as f64;
    assert!(
        (mean / f64::from(lsb) - 0.25).abs() < 0.02,
        "dithered mean {} LSB, want 0.25",
        mean / f64::from(lsb)
    );
    let peak = d[0].iter().fold(0.0f32, |m, &x| m.max(x.abs()));
    assert!(peak <= 2.0 * lsb, "TPDF peak {} LSB", peak / lsb);
    // Zero input: noise of mean ~0 within ±1 LSB.
    let zero = vec![vec![0.0f32; 200_000]];
    let z = dir.path().join("z.wav");
    write_ours(
        &z,
        WriteOptions::new(OutputFormat::Wav, Subtype::Pcm16),
        48_000,
        &zero,
    );
    let (_, zd) = hound_read(&z);
    let zmean = zd[0].iter().map(|&x| f64::from(x)).sum::<f64>() / zd[0].len() as f64;
    assert!(
        zmean.abs() / f64::from(lsb) < 0.01,
        "zero-input dither mean {zmean}"
    );
    assert!(zd[0].iter().all(|&x| x.abs() <= lsb));
    let var = zd[0]
        .iter()
        .map(|&x| f64::from(x / lsb).powi(2))
        .sum::<f64>()
        / zd[0].len() as f64;
    // Rounded triangular noise of ±1 LSB: P(±1) = 1/8 each, variance 0.25.
    assert!((var - 0.25).abs() < 0.02, "dither variance {var} LSB²");
    // Same seed, same bytes; another seed, other bytes.
    let again = dir.path().join("d2.wav");
    write_ours(
        &again,
        WriteOptions::new(OutputFormat::Wav, Subtype::Pcm16),
        48_000,
        &input,
    );
    assert_eq!(
        std::fs::read(&dithered).unwrap(),
        std::fs::read(&again).unwrap()
    );
    let other = dir.path().join("d3.wav");
    let seeded = WriteOptions {
        dither_seed: 42,
        ..WriteOptions::new(OutputFormat::Wav, Subtype::Pcm16)
    };
    write_ours(&other, seeded, 48_000, &input);
    assert_ne!(
        std::fs::read(&dithered).unwrap(),
        std::fs::read(&other).unwrap()
    );
    // Seeds that differ in the lowest bit only are different seeds (`--seed 2`, `--seed 3`).
    let neighbour = dir.path().join("d4.wav");
    let seeded = WriteOptions {
        dither_seed: 43,
        ..WriteOptions::new(OutputFormat::Wav, Subtype::Pcm16)
    };
    write_ours(&neighbour, seeded, 48_000, &input);
    assert_ne!(
        std::fs::read(&other).unwrap(),
        std::fs::read(&neighbour).unwrap(),
        "seeds 42 and 43 gave the same dither"
    );
}

/// Dither at the rails is clamped, not counted: a signal that never exceeds the largest code
/// reports no clipping with dither on (it used to report about a quarter of such samples,
/// e.g. 616 for a limiter at 0 dBFS into PCM16), and one that does reports the same count
/// with and without dither.
#[test]
fn dither_at_full_scale_is_not_counted_as_clipping() {
    let dir = tmp();
    let top = 32_767.0 / 32_768.0;
    let at_rails: Vec<f32> = (0..20_000)
        .map(|i| if i % 2 == 0 { top } else { -1.0 })
        .collect();
    let path = dir.path().join("rails.wav");
    let dithered = WriteOptions::new(OutputFormat::Wav, Subtype::Pcm16);
    assert_eq!(
        write_ours(&path, dithered, 48_000, std::slice::from_ref(&at_rails)),
        0
    );
    let over: Vec<f32> = at_rails.iter().map(|&x| x * 1.01).collect();
    let with = write_ours(&path, dithered, 48_000, std::slice::from_ref(&over));
    let without = write_ours(
        &path,
        no_dither(OutputFormat::Wav, Subtype::Pcm16),
        48_000,
        &[over],
    );
    assert_eq!((with, without), (20_000, 20_000));
}

#[test]
fn integer_output_clamps_and_counts_instead_of_wrapping() {
    let dir = tmp();
    let input = vec![vec![1.5f32, -1.5, 0.5, 1.0, -1.0]];
    for subtype in [Subtype::Pcm16, Subtype::Pcm24, Subtype::Pcm32] {
        let path = dir.path().join(format!("clip-{}.wav", subtype.name()));
        let clipped = write_ours(&path, no_dither(OutputFormat::Wav, subtype), 48_000, &input);
        // 1.5, -1.5 and 1.0 (one above the largest code) clip; -1.0 is exact.
        assert_eq!(clipped, 3, "{}", subtype.name());
        let (_, out) = hound_read(&path);
        assert!(out[0][0] > 0.999 && out[0][1] == -1.0, "{:?}", out[0]);
        assert!((out[0][2] - 0.5).abs() < 1e-6);
    }
    let path = dir.path().join("clip-float.wav");
    assert_eq!(
        write_ours(
            &path,
            no_dither(OutputFormat::Wav, Subtype::Float),
            48_000,
            &input
        ),
        0
    );
    let (_, out) = hound_read(&path);
    assert_eq!(out[0], input[0], "float output keeps values above 1.0");
}

#[test]
fn output_format_comes_from_the_extension() {
    assert_eq!(
        OutputFormat::from_path(Path::new("x.Wav")).unwrap(),
        OutputFormat::Wav
    );
    assert_eq!(
        OutputFormat::from_path(Path::new("x.FLAC")).unwrap(),
        OutputFormat::Flac
    );
    for (name, format) in [
        ("x.aif", OutputFormat::Aiff),
        ("x.AIFF", OutputFormat::Aiff),
        ("x.mp3", OutputFormat::Mp3),
        ("x.opus", OutputFormat::Opus),
        ("x.ogg", OutputFormat::Vorbis),
        ("x.raw", OutputFormat::Raw),
    ] {
        assert_eq!(OutputFormat::from_path(Path::new(name)).unwrap(), format);
    }
    for bad in ["x.m4a", "x.wma", "x", "x.wav.tmp"] {
        let err = OutputFormat::from_path(Path::new(bad))
            .unwrap_err()
            .to_string();
        assert!(err.contains(".wav, .flac, .aiff, .mp3"), "{bad}: {err}");
    }
}

/// Concatenated `process_chunks` output.
fn stream_all(processor: &mut StreamProcessor, path: &Path) -> Vec<Vec<f32>> {
    let mut reader = AudioReader::open(path, ReadOptions::default()).expect("open");
    let mut out = vec![Vec::new(); reader.info().channels];
    for chunk in processor.process_chunks(&mut reader).expect("chunks") {
        for (o, c) in out.iter_mut().zip(chunk.expect("chunk")) {
            o.extend_from_slice(&c);
        }
    }
    out
}

/// One-shot processing of the whole signal.
fn one_shot(chain: &Chain, rate: u32, input: &[Vec<f32>]) -> Vec<Vec<f32>> {
    let mut chain = chain.clone();
    chain
        .prepare(
            f64::from(rate),
            rtfx::offline::stream::PROCESS_BLOCK,
            input.len(),
        )
        .expect("prepare");
    let mut out = input.to_vec();
    let mut views: Vec<&mut [f32]> = out.iter_mut().map(|c| &mut c[..]).collect();
    chain.process(&mut views);
    out
}

#[test]
fn stream_processor_equals_one_shot_for_every_effect_with_any_chunking() {
    let dir = tmp();
    let path = dir.path().join("in.wav");
    let input = signal(2, 30_000, 0.5);
    write_float_wav(&path, 48_000, &input);
    for fx in all_effects() {
        if is_block_wise(fx.name()) {
            continue;
        }
        let chain = Chain::new(vec![fx.clone_box()]);
        let want = one_shot(&chain, 48_000, &input);
        for (chunk, overlap) in [(65_536, 0), (1000, 0), (4097, 1234), (777, 776)] {
            let mut p = StreamProcessor::new(chain.clone(), chunk, overlap).expect("processor");
            let got = stream_all(&mut p, &path);
            assert_eq!(got[0].len(), 30_000);
            assert!(
                got == want,
                "{} differs from one-shot with chunk {chunk}, overlap {overlap}",
                fx.name()
            );
        }
    }
}

/// `rtfx render --device cuda`'s path: an adapter moves the chain's leading filters onto a
/// cascade engine (here the GPU kernel's CPU emulation) for each file's shape; the output is
/// the CPU chain's (bit for bit on a CPU with FMA, as the kernel fuses the same operations).
#[test]
fn stream_processor_with_filters_on_an_engine_equals_the_cpu_chain() {
    use rtfx::dsp::filter::engine::emulated_engine;
    use rtfx::dsp::filter::sos::fused_multiply_add;
    use rtfx::gpu::leading_filters::offload_leading_filters;
    let dir = tmp();
    let chain = parse_chain(&[
        "hibutterworth:80,order=2",
        "lobutterworth:8000,order=4",
        "reverb",
    ])
    .unwrap();
    let mut p = StreamProcessor::new(chain.clone(), 10_000, 0)
        .expect("processor")
        .with_adapter(Box::new(|chain, rate, frames, channels| {
            let offloaded =
                offload_leading_filters(chain, f64::from(rate), frames, channels, emulated_engine)?;
            Ok(offloaded.map(|o| o.chain))
        }));
    // Two files of different shapes: the adapter rebuilds the engine for each.
    for (channels, rate) in [(2, 48_000), (1, 44_100)] {
        let path = dir.path().join(format!("in-{channels}.wav"));
        let input = signal(channels, 30_000, 0.5);
        write_float_wav(&path, rate, &input);
        let got = stream_all(&mut p, &path);
        assert_eq!(p.chain().effects()[0].name(), "gpu_filters");
        let want = one_shot(&chain, rate, &input);
        for (g, w) in got.iter().flatten().zip(want.iter().flatten()) {
            if fused_multiply_add() {
                assert_eq!(g.to_bits(), w.to_bits(), "{channels} ch: {g} vs {w}");
            } else {
                assert!((g - w).abs() < 1e-5, "{channels} ch: {g} vs {w}");
            }
        }
    }
}

#[test]
fn stream_processor_validates_its_arguments_like_torchfx() {
    let chain = parse_chain(&["gain:0.5"]).unwrap();
    let err = StreamProcessor::new(chain.clone(), 0, 0).err().unwrap();
    assert!(err.to_string().contains("chunk_size"), "{err}");
    let err = StreamProcessor::new(chain.clone(), 100, 100).err().unwrap();
    assert!(
        err.to_string()
            .contains("Overlap (100) must be less than chunk_size (100)"),
        "{err}"
    );
    let mut p =
        StreamProcessor::new(parse_chain(&["lobutterworth:30000"]).unwrap(), 100, 0).unwrap();
    let err = p.configure(44_100, 2).unwrap_err().to_string();
    assert!(
        err.contains("must be below the Nyquist frequency (22050 Hz) for sample rate 44100 Hz"),
        "{err}"
    );
    assert!(err.contains("reduce the cutoff"), "{err}");
}

#[test]
fn render_of_float_wav_is_bit_exact_with_one_shot_chain() {
    let dir = tmp();
    let input_path = dir.path().join("in.wav");
    let out_path = dir.path().join("out.wav");
    let input = signal(2, 50_000, 0.5);
    write_float_wav(&input_path, 48_000, &input);
    let specs = [
        "hibutterworth:80,order=2",
        "lobutterworth:8000,order=4",
        "gain:1.5",
        "reverb:room_size=0.3",
        "delay:delay_samples=1000,feedback=0.3,mix=0.2",
    ];
    let report = render_specs(&specs, &input_path, &out_path, &RenderOptions::default());
    assert_eq!(report.frames, 50_000);
    let (spec, out) = hound_read(&out_path);
    assert_eq!(spec.sample_format, hound::SampleFormat::Float);
    let want = one_shot(&parse_chain(&specs).unwrap(), 48_000, &input);
    assert!(out == want, "render differs from the one-shot chain");
}

#[test]
fn tail_auto_appends_the_decay_and_seconds_are_exact() {
    let dir = tmp();
    let input_path = dir.path().join("in.wav");
    let mut input = vec![vec![0.0f32; 4800]; 2];
    input[0][0] = 1.0;
    input[1][0] = 1.0;
    write_float_wav(&input_path, 48_000, &input);
    let chain = ["reverb:room_size=0.5"];
    let expected_tail = parse_chain(&chain).map(|mut c| {
        c.prepare(48_000.0, 512, 2).unwrap();
        c.tail_samples() as u64
    });
    let out = dir.path().join("auto.wav");
    let report = render_specs(
        &chain,
        &input_path,
        &out,
        &RenderOptions {
            tail: Tail::Auto,
            ..RenderOptions::default()
        },
    );
    let tail = expected_tail.unwrap();
    assert!(tail > 4800, "reverb tail {tail} frames");
    assert_eq!(report.tail_frames, tail);
    let (_, data) = hound_read(&out);
    assert_eq!(data[0].len() as u64, 4800 + tail);
    let energy = |s: &[f32]| s.iter().map(|x| x * x).sum::<f32>();
    assert!(
        energy(&data[0][4800..9600]) > 1e-6,
        "the tail holds the decay"
    );
    let end = data[0].len();
    assert!(energy(&data[0][end - 4800..]) < 1e-9, "and ends quiet");

    let out = dir.path().join("fixed.wav");
    let report = render_specs(
        &chain,
        &input_path,
        &out,
        &RenderOptions {
            tail: Tail::Seconds(0.5),
            ..RenderOptions::default()
        },
    );
    assert_eq!(report.frames, 4800 + 24_000);
}

#[test]
fn limiter_latency_is_compensated() {
    let dir = tmp();
    let input_path = dir.path().join("in.wav");
    let input = signal(1, 20_000, 0.2);
    write_float_wav(&input_path, 48_000, &input);
    let specs = ["limiter:threshold=-1,lookahead=0.005"];
    let mut chain = parse_chain(&specs).unwrap();
    chain.prepare(48_000.0, 512, 1).unwrap();
    assert_eq!(chain.latency_samples(), 240, "5 ms of lookahead at 48 kHz");
    let out = dir.path().join("out.wav");
    render_specs(&specs, &input_path, &out, &RenderOptions::default());
    let (_, data) = hound_read(&out);
    assert_eq!(data[0].len(), 20_000);
    // Quiet input passes the limiter unchanged: aligned output equals input.
    let worst = data[0]
        .iter()
        .zip(&input[0])
        .map(|(a, b)| (a - b).abs())
        .fold(0.0f32, f32::max);
    assert!(worst < 1e-6, "misaligned by the lookahead: worst {worst}");
}

fn peak_db(data: &[Vec<f32>]) -> f64 {
    let peak = data.iter().flatten().fold(0.0f32, |m, &x| m.max(x.abs()));
    20.0 * f64::from(peak).log10()
}

#[test]
fn normalisation_meets_peak_rms_and_loudness_targets() {
    let dir = tmp();
    let input_path = dir.path().join("in.wav");
    let input = signal(2, 96_000, 0.1);
    write_float_wav(&input_path, 48_000, &input);
    let chain = ["lobutterworth:4000,order=2"];
    let run = |target: NormalizeTarget, name: &str| {
        let out = dir.path().join(name);
        let report = render_specs(
            &chain,
            &input_path,
            &out,
            &RenderOptions {
                normalize: Some(target),
                ..RenderOptions::default()
            },
        );
        assert!(report.gain_db.is_some());
        hound_read(&out).1
    };
    let peak = run(NormalizeTarget::Peak(-1.0), "peak.wav");
    assert!(
        (peak_db(&peak) + 1.0).abs() < 0.01,
        "peak {}",
        peak_db(&peak)
    );

    let rms = run(NormalizeTarget::Rms(-20.0), "rms.wav");
    let all: Vec<f32> = rms.iter().flatten().copied().collect();
    let rms_db =
        10.0 * (all.iter().map(|&x| f64::from(x).powi(2)).sum::<f64>() / all.len() as f64).log10();
    assert!((rms_db + 20.0).abs() < 0.01, "rms {rms_db}");

    let loud = run(NormalizeTarget::Lufs(-23.0), "lufs.wav");
    let mut meter = ebur128::EbuR128::new(2, 48_000, ebur128::Mode::I).unwrap();
    let views: Vec<&[f32]> = loud.iter().map(Vec::as_slice).collect();
    meter.add_frames_planar_f32(&views).unwrap();
    let lufs = meter.loudness_global().unwrap();
    assert!((lufs + 23.0).abs() < 0.1, "loudness {lufs} LUFS");
}

#[test]
fn silence_is_not_normalised() {
    let dir = tmp();
    let input_path = dir.path().join("silent.wav");
    write_float_wav(&input_path, 48_000, &[vec![0.0; 48_000]]);
    for target in [
        NormalizeTarget::Peak(-1.0),
        NormalizeTarget::Rms(-20.0),
        NormalizeTarget::Lufs(-14.0),
    ] {
        let out = dir.path().join("out.wav");
        let _ = std::fs::remove_file(&out);
        let report = render_specs(
            &["gain:1"],
            &input_path,
            &out,
            &RenderOptions {
                normalize: Some(target),
                ..RenderOptions::default()
            },
        );
        assert_eq!(report.gain_db, Some(0.0));
        assert!(
            report
                .warnings
                .iter()
                .any(|w| w.contains("cannot normalize silence")),
            "{:?}",
            report.warnings
        );
        let (_, data) = hound_read(&out);
        assert!(data[0].iter().all(|&x| x == 0.0));
    }
}

#[test]
fn a_failed_render_leaves_no_temporary_file_and_keeps_the_old_output() {
    let dir = tmp();
    let input_path = dir.path().join("in.wav");
    write_float_wav(&input_path, 48_000, &signal(1, 100_000, 0.5));
    let out = dir.path().join("out.wav");
    std::fs::File::create(&out)
        .and_then(|mut f| f.write_all(b"previous output"))
        .unwrap();
    let mut p = StreamProcessor::new(parse_chain(&["gain:0.5"]).unwrap(), 1000, 0).unwrap();
    let cancel = AtomicBool::new(false);
    let mut calls = 0;
    let err = render_file(
        &mut p,
        &input_path,
        &out,
        &RenderOptions {
            force: true,
            ..RenderOptions::default()
        },
        &mut |_| {
            // Ctrl-C half way through.
            calls += 1;
            if calls == 50 {
                cancel.store(true, std::sync::atomic::Ordering::Relaxed);
            }
        },
        &cancel,
    )
    .unwrap_err();
    assert!(err.to_string().contains("interrupted"), "{err}");
    assert_eq!(std::fs::read(&out).unwrap(), b"previous output");
    let names: Vec<PathBuf> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(names.len(), 2, "temporary file left behind: {names:?}");
}

/// flacenc's fixed predictors once produced frames ~40x the raw size on low-passed noise.
#[test]
fn flac_output_of_coloured_noise_is_smaller_than_raw_pcm() {
    let dir = tmp();
    // Pink-ish: white noise through a gentle low-pass, near full scale.
    let mut input = signal(2, 96_000, 1.0);
    let mut chain = parse_chain(&["lobutterworth:300,order=1"]).unwrap();
    chain.prepare(48_000.0, 96_000, 2).unwrap();
    let mut views: Vec<&mut [f32]> = input.iter_mut().map(|c| &mut c[..]).collect();
    chain.process(&mut views);
    let path = dir.path().join("pink.flac");
    write_ours(
        &path,
        WriteOptions::new(OutputFormat::Flac, Subtype::Pcm24),
        48_000,
        &input,
    );
    let size = std::fs::metadata(&path).unwrap().len();
    let raw = 96_000 * 2 * 3;
    assert!(size < raw, "FLAC {size} bytes, raw PCM {raw} bytes");
}

/// The compressed fixtures of tests/data/formats (made by tools/gen_format_fixtures.sh): a
/// 441 Hz sine of amplitude 1/8, 0.25 s at 44.1 kHz (ffmpeg's mono-to-stereo upmix puts it
/// at -3 dB in each channel).
#[test]
fn decodes_aiff_flac_ogg_and_mp3() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/formats");
    for (name, format, channels, tolerance) in [
        ("tone.aiff", "AIFF", 2, 1e-4),
        ("tone.flac", "FLAC", 2, 1e-4),
        ("tone.ogg", "OGG", 2, 0.01),
        ("tone.mp3", "MP3", 1, 0.01),
    ] {
        let path = dir.join(name);
        let reader = AudioReader::open(&path, ReadOptions::default()).expect(name);
        assert_eq!(reader.info().format, format, "{name}");
        assert_eq!(reader.info().sample_rate, 44_100, "{name}");
        assert_eq!(reader.info().channels, channels, "{name}");
        let (_, data) = read_all(&path);
        assert_eq!(data[0].len(), 11_025, "{name}: frames");
        let amplitude = if channels == 2 {
            0.125 * std::f64::consts::FRAC_1_SQRT_2
        } else {
            0.125
        };
        // Compare with the sine away from the codecs' start-up transients, as RMS error.
        let range = 2000..9000;
        let err: f64 = range
            .clone()
            .map(|n| {
                let want = amplitude * (std::f64::consts::TAU * 441.0 * n as f64 / 44_100.0).sin();
                (f64::from(data[0][n]) - want).powi(2)
            })
            .sum::<f64>()
            / range.len() as f64;
        assert!(err.sqrt() < tolerance, "{name}: RMS error {}", err.sqrt());
    }
}

#[test]
fn process_file_creates_directories_and_matches_render() {
    let dir = tmp();
    let input = dir.path().join("in.wav");
    write_float_wav(&input, 44_100, &signal(2, 5000, 0.5));
    let out = dir.path().join("a/b/out.wav");
    let chain = parse_chain(&["hibutterworth:100,order=2", "gain:0.8"]).unwrap();
    let mut p = StreamProcessor::new(chain.clone(), 1024, 0).unwrap();
    let report = p.process_file(&input, &out, None).expect("process_file");
    assert_eq!(report.frames, 5000);
    assert_eq!(report.subtype, Subtype::Float);
    let (spec, data) = hound_read(&out);
    assert_eq!(spec.sample_rate, 44_100);
    assert!(data == one_shot(&chain, 44_100, &signal(2, 5000, 0.5)));
    // Replacing an output is fine; writing over the input is not.
    p.process_file(&input, &out, Some(Subtype::Pcm16))
        .expect("replace");
    assert_eq!(hound_read(&out).0.bits_per_sample, 16);
    let err = p
        .process_file(&input, &input, None)
        .unwrap_err()
        .to_string();
    assert!(err.contains("is the input file"), "{err}");
}

/// A disk that fills up after `room` bytes.
struct FullDisk {
    data: std::io::Cursor<Vec<u8>>,
    room: u64,
}

impl Write for FullDisk {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if self.data.position() + buf.len() as u64 > self.room {
            return Err(std::io::Error::from_raw_os_error(28));
        }
        self.data.write(buf)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl std::io::Seek for FullDisk {
    fn seek(&mut self, pos: std::io::SeekFrom) -> std::io::Result<u64> {
        self.data.seek(pos)
    }
}

// Checklist item 11: the disk fills mid-write.
#[test]
fn a_full_disk_is_reported_with_the_os_reason() {
    for format in [OutputFormat::Wav, OutputFormat::Flac] {
        let mut disk = FullDisk {
            data: std::io::Cursor::new(Vec::new()),
            room: 10_000,
        };
        let options = WriteOptions::new(format, format.default_subtype());
        let mut w = AudioWriter::new(&mut disk, options, 48_000, 2, None).expect("header fits");
        let block = signal(2, 48_000, 0.5);
        let view: Vec<&[f32]> = block.iter().map(Vec::as_slice).collect();
        let err = w.write(&view).unwrap_err().to_string();
        assert!(err.contains("No space left on device"), "{format}: {err}");
        assert!(err.contains("free disk space"), "{format}: {err}");
    }
}

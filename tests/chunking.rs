//! Chunked processing equals one-shot processing for every effect and for a chain: bit-exact
//! for chunk sizes 1, 7, 64, 4096 and for random splits.

mod common;

use rtfx::dsp::Effect;
use rtfx::dsp::spec::parse_chain;

const FRAMES: usize = 12_000;

fn one_shot(effect: &mut dyn Effect, input: &[Vec<f32>]) -> Vec<Vec<f32>> {
    effect.prepare(48000.0, FRAMES, input.len()).unwrap();
    let mut out = input.to_vec();
    common::process_in_blocks(effect, &mut out, &[FRAMES]);
    out
}

fn chunked(effect: &mut dyn Effect, input: &[Vec<f32>], sizes: &[usize]) -> Vec<Vec<f32>> {
    effect.prepare(48000.0, FRAMES, input.len()).unwrap();
    let mut out = input.to_vec();
    common::process_in_blocks(effect, &mut out, sizes);
    out
}

fn random_sizes(seed: u64) -> Vec<usize> {
    let mut rng = rtfx::dsp::noise::Noise::new(seed);
    (0..200).map(|_| rng.below(700)).collect()
}

#[test]
fn every_effect_is_chunk_invariant() {
    let input = vec![
        common::noise(FRAMES, 11, 0.8),
        common::noise(FRAMES, 12, 0.3),
    ];
    let splits: Vec<Vec<usize>> = vec![
        vec![1],
        vec![7],
        vec![64],
        vec![4096],
        random_sizes(3),
        random_sizes(4),
    ];
    let mut checked = 0;
    for mut effect in common::all_effects() {
        let name = effect.name();
        if common::is_block_wise(name) {
            continue;
        }
        let reference = one_shot(effect.as_mut(), &input);
        assert!(reference != input, "{name} did nothing to the test signal");
        for sizes in &splits {
            let got = chunked(effect.as_mut(), &input, sizes);
            for (c, (g, r)) in got.iter().zip(&reference).enumerate() {
                if let Some(i) = g
                    .iter()
                    .zip(r)
                    .position(|(a, b)| a.to_bits() != b.to_bits())
                {
                    panic!(
                        "{name}: channel {c} differs at frame {i} with splits {:?}: {} vs {}",
                        &sizes[..sizes.len().min(4)],
                        g[i],
                        r[i]
                    );
                }
            }
        }
        checked += 1;
    }
    assert!(checked >= 30, "only {checked} effects checked");
}

/// Every registry effect again with each of its toggles flipped from its default (a mode such
/// as the limiter's `true_peak` runs other code than the default checked above).
#[test]
fn every_effect_is_chunk_invariant_with_each_toggle_flipped() {
    let input = vec![
        common::noise(FRAMES, 13, 0.9),
        common::noise(FRAMES, 14, 0.4),
    ];
    let splits = [vec![1], vec![7], random_sizes(5), random_sizes(6)];
    let mut checked = Vec::new();
    for entry in rtfx::dsp::registry::entries() {
        if common::is_block_wise(entry.name) {
            continue;
        }
        let base = common::example_params(entry);
        let probe = (entry.build)();
        for p in probe.params() {
            if p.kind != rtfx::dsp::ParamKind::Toggle {
                continue;
            }
            let mut params = base.clone();
            params.push((
                p.name.to_string(),
                rtfx::dsp::ParamValue::Bool(p.default == 0.0),
            ));
            let Ok(mut effect) = rtfx::dsp::registry::build(entry.name, &params) else {
                continue;
            };
            let reference = one_shot(effect.as_mut(), &input);
            for sizes in &splits {
                let got = chunked(effect.as_mut(), &input, sizes);
                assert!(
                    got == reference,
                    "{} with {} flipped depends on block sizes {:?}",
                    entry.name,
                    p.name,
                    &sizes[..sizes.len().min(4)]
                );
            }
            checked.push(format!("{}.{}", entry.name, p.name));
        }
    }
    assert!(
        checked.iter().any(|c| c == "limiter.true_peak"),
        "{checked:?}"
    );
}

#[test]
fn chain_is_chunk_invariant_including_parameter_ramps() {
    let specs = [
        "hibutterworth:80,order=2",
        "lobutterworth:8000,order=4",
        "gain:1.5",
        "reverb:room_size=0.3",
        "compressor",
        "limiter",
    ];
    let input = vec![
        common::noise(FRAMES, 21, 0.9),
        common::noise(FRAMES, 22, 0.9),
    ];
    let run = |sizes: &[usize]| {
        let mut chain = parse_chain(&specs).unwrap();
        chain.prepare(48000.0, 512, 2).unwrap();
        let mut out = input.clone();
        let mut start = 0;
        let mut i = 0;
        let mut swept = false;
        while start < FRAMES {
            // The sweep starts at frame 3000 whatever the block sizes.
            if !swept && start >= 3000 {
                chain.set_param("1.cutoff", 2000.0).unwrap();
                chain.set_param("2.gain", 0.5).unwrap();
                swept = true;
            }
            let limit = if swept { FRAMES } else { 3000 };
            let n = sizes[i % sizes.len()]
                .min(limit - start)
                .max(1)
                .min(FRAMES - start);
            let (l, r) = out.split_at_mut(1);
            chain.process(&mut [&mut l[0][start..start + n], &mut r[0][start..start + n]]);
            start += n;
            i += 1;
        }
        out
    };
    let reference = run(&[FRAMES]);
    for sizes in [vec![1], vec![7], vec![64], vec![4096], random_sizes(9)] {
        assert!(
            run(&sizes) == reference,
            "chain output depends on block sizes {:?}",
            &sizes[..sizes.len().min(4)]
        );
    }
}

#[test]
fn fused_filter_runs_equal_the_effects_one_by_one() {
    // The chain runs consecutive filters and linear gains in one pass; the result must match
    // running each effect on its own.
    let specs = [
        "hibutterworth:80,order=2",
        "gain:1.5",
        "lobutterworth:8000,order=4",
        "peaking:1000,1,gain=6,gain_scale=db",
        "reverb",
        "lowpass:3000,0.7",
    ];
    let input = vec![
        common::noise(FRAMES, 31, 0.9),
        common::noise(FRAMES, 32, 0.9),
    ];
    let mut chain = parse_chain(&specs).unwrap();
    chain.prepare(48000.0, 512, 2).unwrap();
    let mut fused = input.clone();
    let mut separate = input.clone();
    let mut effects: Vec<Box<dyn Effect>> = specs
        .iter()
        .map(|s| rtfx::dsp::spec::build_effect(&rtfx::dsp::spec::parse_effect(s).unwrap()).unwrap())
        .collect();
    for fx in &mut effects {
        fx.prepare(48000.0, 512, 2).unwrap();
    }
    for start in (0..FRAMES).step_by(512) {
        let end = (start + 512).min(FRAMES);
        let (l, r) = fused.split_at_mut(1);
        chain.process(&mut [&mut l[0][start..end], &mut r[0][start..end]]);
        let (l, r) = separate.split_at_mut(1);
        for fx in &mut effects {
            fx.process(&mut [&mut l[0][start..end], &mut r[0][start..end]]);
        }
    }
    let worst = fused
        .iter()
        .flatten()
        .zip(separate.iter().flatten())
        .map(|(a, b)| (a - b).abs())
        .fold(0.0f32, f32::max);
    assert!(
        worst <= 1e-6,
        "fused and separate processing differ by {worst}"
    );
    assert!(fused != input);
}

//! Effects: gain, normalisation, Freeverb reverb, feedback delay and dynamics.
//!
//! Every effect implements [`crate::dsp::Effect`] and follows torchfx 0.8.0's formulas (the
//! behavioural reference the project was specified from, kept outside this repository), except
//! where a type's documentation says it deliberately
//! differs (the delay is a real feedback line; every dynamics parameter is live; the limiter has
//! a real lookahead delay).

pub mod delay;
pub mod dynamics;
pub mod gain;
pub mod limiter;
pub mod normalize;
pub mod reverb;

pub use delay::{Delay, bpm_to_samples, delay_taps};
pub use dynamics::{Compressor, Expander, Gate};
pub use gain::Gain;
pub use limiter::Limiter;
pub use normalize::{Normalize, NormalizeStrategy};
pub use reverb::Reverb;

use crate::dsp::Effect;
use crate::dsp::registry::EffectEntry;

/// Treats a non-finite input sample as silence for state updates.
#[inline(always)]
pub(crate) fn finite_or_zero(x: f32) -> f64 {
    if x.is_finite() { f64::from(x) } else { 0.0 }
}

/// One-pole coefficient `exp(-1/(time·fs))`, 0 for a zero time (torchfx's convention).
#[inline]
pub(crate) fn one_pole_coeff(time_s: f64, sample_rate: f64) -> f64 {
    if time_s > 0.0 && sample_rate > 0.0 {
        (-1.0 / (time_s * sample_rate)).exp()
    } else {
        0.0
    }
}

/// The registry entries of the effects in this module, sorted by name.
pub const ENTRIES: &[EffectEntry] = &[
    EffectEntry {
        name: "compressor",
        positional: &["threshold", "ratio"],
        required: &[],
        summary: "Feed-forward compressor (peak/RMS detector, soft knee, makeup gain)",
        build: || Box::new(Compressor::new()) as Box<dyn Effect>,
    },
    EffectEntry {
        name: "delay",
        positional: &["delay_samples", "feedback", "mix"],
        required: &[&["delay_samples", "delay_ms", "bpm"]],
        summary: "Feedback delay line (samples, ms or BPM note value; optional ping-pong)",
        build: || Box::new(Delay::new()) as Box<dyn Effect>,
    },
    EffectEntry {
        name: "expander",
        positional: &["threshold", "ratio"],
        required: &[],
        summary: "Downward expander (attenuates below the threshold, with floor)",
        build: || Box::new(Expander::new()) as Box<dyn Effect>,
    },
    EffectEntry {
        name: "gain",
        positional: &["gain"],
        required: &[&["gain"]],
        summary: "Gain as amplitude factor, dB or power ratio, optional clamp to [-1, 1]",
        build: || Box::new(Gain::new()) as Box<dyn Effect>,
    },
    EffectEntry {
        name: "gate",
        positional: &["threshold"],
        required: &[],
        summary: "Noise gate (expander with infinite ratio down to a floor)",
        build: || Box::new(Gate::new()) as Box<dyn Effect>,
    },
    EffectEntry {
        name: "limiter",
        positional: &["threshold"],
        required: &[],
        summary: "Lookahead peak limiter; the output never exceeds the ceiling (true_peak: \
                  also between the samples, in dBTP)",
        build: || Box::new(Limiter::new()) as Box<dyn Effect>,
    },
    EffectEntry {
        name: "normalize",
        positional: &["peak"],
        required: &[],
        summary: "Per-block normalisation (peak, RMS, percentile or per channel)",
        build: || Box::new(Normalize::new()) as Box<dyn Effect>,
    },
    EffectEntry {
        name: "reverb",
        positional: &["room_size", "damping", "mix"],
        required: &[],
        summary: "Freeverb reverb (8 damped combs, 4 allpasses)",
        build: || Box::new(Reverb::new()) as Box<dyn Effect>,
    },
];

#[cfg(test)]
pub(crate) mod test_util {
    //! Helpers shared by the effect tests.

    use crate::dsp::Effect;
    pub use crate::dsp::noise::Noise;

    /// `channels` channels of noise.
    pub fn noise(channels: usize, frames: usize, seed: u64) -> Vec<Vec<f32>> {
        let mut rng = Noise::new(seed);
        (0..channels)
            .map(|_| (0..frames).map(|_| rng.sample()).collect())
            .collect()
    }

    /// Runs `input` through `fx` in blocks of the given sizes (cycled), returns the output.
    pub fn run_chunked(fx: &mut dyn Effect, input: &[Vec<f32>], sizes: &[usize]) -> Vec<Vec<f32>> {
        let mut out: Vec<Vec<f32>> = input.to_vec();
        let frames = out.first().map_or(0, Vec::len);
        let mut pos = 0;
        let mut i = 0;
        while pos < frames {
            let n = sizes[i % sizes.len()].min(frames - pos);
            i += 1;
            let mut block: Vec<&mut [f32]> = out.iter_mut().map(|c| &mut c[pos..pos + n]).collect();
            fx.process(&mut block);
            pos += n;
        }
        out
    }

    /// Runs the whole input as one block.
    pub fn run_once(fx: &mut dyn Effect, input: &[Vec<f32>]) -> Vec<Vec<f32>> {
        run_chunked(fx, input, &[usize::MAX])
    }

    /// Random block sizes in 1..=max.
    pub fn random_sizes(count: usize, max: usize, seed: u64) -> Vec<usize> {
        let mut rng = Noise::new(seed);
        (0..count).map(|_| 1 + rng.below(max)).collect()
    }

    /// Checks that chunked processing (sizes 1, 7, 64, 4096 and random splits) equals one-shot
    /// processing bit-exactly for freshly prepared copies of `make()`.
    pub fn assert_chunked_matches(
        make: &dyn Fn() -> Box<dyn Effect>,
        channels: usize,
        frames: usize,
    ) {
        let input = noise(channels, frames, 7);
        let mut reference = make();
        reference.prepare(48000.0, frames, channels).unwrap();
        let expected = run_once(reference.as_mut(), &input);
        let splits: Vec<Vec<usize>> = vec![
            vec![1],
            vec![7],
            vec![64],
            vec![4096],
            random_sizes(200, 300, 3),
            random_sizes(200, 1000, 11),
        ];
        for sizes in splits {
            let mut fx = make();
            fx.prepare(48000.0, frames, channels).unwrap();
            let got = run_chunked(fx.as_mut(), &input, &sizes);
            for (c, (g, e)) in got.iter().zip(&expected).enumerate() {
                for (n, (a, b)) in g.iter().zip(e).enumerate() {
                    assert!(
                        a.to_bits() == b.to_bits(),
                        "{}: chunk sizes {:?}: channel {c} frame {n}: {a} != {b}",
                        fx.name(),
                        &sizes[..sizes.len().min(4)]
                    );
                }
            }
        }
    }

    /// True when `x` is zero or a normal (not subnormal, finite) number.
    pub fn is_clean(x: f64) -> bool {
        x == 0.0 || x.is_normal()
    }

    /// Feeds a loud burst then 10 s of silence at 48 kHz (in 512-sample blocks) and checks that
    /// no output sample of the silence is subnormal or non-finite.
    pub fn assert_no_subnormal_output(fx: &mut dyn Effect, channels: usize) {
        fx.prepare(48000.0, 512, channels).unwrap();
        let burst = noise(channels, 48000 / 2, 5)
            .into_iter()
            .map(|c| c.into_iter().map(|x| x * 4.0).collect::<Vec<_>>())
            .collect::<Vec<_>>();
        run_chunked(fx, &burst, &[512]);
        let mut block = vec![vec![0.0f32; 512]; channels];
        for _ in 0..(10 * 48000 / 512) {
            for c in block.iter_mut() {
                c.fill(0.0);
            }
            let mut b: Vec<&mut [f32]> = block.iter_mut().map(|c| &mut c[..]).collect();
            fx.process(&mut b);
            for c in &block {
                for &x in c {
                    assert!(
                        is_clean(f64::from(x)),
                        "{}: unclean output {x:e}",
                        fx.name()
                    );
                }
            }
        }
    }

    /// Feeds noise with a NaN and an infinity in it, then checks that the block after next is
    /// entirely finite (the bad samples did not latch into the state).
    pub fn assert_nan_recovers(fx: &mut dyn Effect, channels: usize) {
        fx.prepare(48000.0, 256, channels).unwrap();
        let mut input = noise(channels, 256 * 4, 9);
        for c in input.iter_mut() {
            c[300] = f32::NAN;
            c[301] = f32::INFINITY;
            c[302] = f32::NEG_INFINITY;
        }
        let out = run_chunked(fx, &input, &[256]);
        for c in &out {
            for (n, &x) in c.iter().enumerate().skip(512) {
                assert!(
                    x.is_finite(),
                    "{}: frame {n} is {x} after NaN input",
                    fx.name()
                );
            }
        }
    }

    /// Every number `fx.visit_state` reports, in visiting order.
    pub fn visited(fx: &dyn Effect) -> Vec<f64> {
        let mut values = Vec::new();
        fx.visit_state(&mut |v| values.push(v));
        values
    }

    /// Processing before prepare must pass audio through unchanged.
    pub fn assert_passthrough_unprepared(fx: &mut dyn Effect) {
        let input = noise(2, 100, 13);
        let out = run_once(fx, &input);
        assert_eq!(
            out,
            input,
            "{}: process before prepare must pass through",
            fx.name()
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_sorted_and_buildable() {
        for pair in ENTRIES.windows(2) {
            assert!(
                pair[0].name < pair[1].name,
                "{} >= {}",
                pair[0].name,
                pair[1].name
            );
        }
        for e in ENTRIES {
            let fx = (e.build)();
            assert_eq!(fx.name(), e.name);
            let names: Vec<&str> = fx.params().iter().map(|p| p.name).collect();
            for (i, p) in e.positional.iter().enumerate() {
                assert_eq!(names.get(i), Some(p), "{}: positional order", e.name);
            }
            for group in e.required {
                for p in *group {
                    assert!(names.contains(p), "{}: required {p} unknown", e.name);
                }
            }
        }
    }

    #[test]
    fn unknown_parameter_suggests_nearest() {
        for e in ENTRIES {
            let mut fx = (e.build)();
            let first = fx.params()[0].name;
            let typo = format!("{}x", first);
            let err = fx.set_param(&typo, 1.0).unwrap_err().to_string();
            assert!(
                err.contains(&format!("did you mean '{first}'")),
                "{}: {err}",
                e.name
            );
        }
    }

    #[test]
    fn params_case_insensitive_and_defaults_round_trip() {
        for e in ENTRIES {
            let mut fx = (e.build)();
            for p in fx.params() {
                let v = fx.get_param(&p.name.to_ascii_uppercase()).unwrap();
                if p.default.is_nan() {
                    assert!(v.is_nan(), "{}.{}", e.name, p.name);
                } else {
                    assert_eq!(v, p.default, "{}.{}", e.name, p.name);
                    fx.set_param(&p.name.to_ascii_uppercase(), v).unwrap();
                }
            }
            assert!(fx.get_param("nope").is_none());
        }
    }
}

//! Every parameter of every registered effect round-trips by index and by name: setting one
//! changes that parameter and no other (a parameter listed in an effect's table but forgotten
//! in its setter used to write the last field silently), the name-based API reaches the same
//! parameter as the index, and the index constants the strip uses name the right entries.

use rtfx::dsp::fx::{Compressor, Delay, Gain, Limiter, Normalize, Reverb};
use rtfx::dsp::registry::{entries, example_range, example_value};
use rtfx::dsp::{Effect, ParamInfo, ParamKind};

/// Bit-level equality (NaN equals NaN: an unset parameter stays unset).
fn same(a: Option<f64>, b: Option<f64>) -> bool {
    a.map(f64::to_bits) == b.map(f64::to_bits)
}

/// Valid values for `info` other than `current`, most distinctive first.
fn candidates(info: &ParamInfo, current: f64) -> Vec<f64> {
    let mut values = match info.kind {
        ParamKind::Toggle => vec![1.0, 0.0],
        ParamKind::Choice(names) => (0..names.len()).rev().map(|i| i as f64).collect(),
        _ => {
            let (lo, hi) = example_range(info);
            let mut v: Vec<f64> = [0.37, 0.61, 0.13, 0.9, 1.0]
                .iter()
                .map(|f| lo + (hi - lo) * f)
                .collect();
            v.push(example_value(info));
            if matches!(info.kind, ParamKind::Integer) {
                v.iter_mut().for_each(|x| *x = x.round());
            }
            v
        }
    };
    values.retain(|&v| info.validate(v).is_ok() && v.to_bits() != current.to_bits());
    values
}

fn snapshot(fx: &dyn Effect) -> Vec<Option<f64>> {
    (0..fx.params().len()).map(|i| fx.get_param_at(i)).collect()
}

#[test]
fn every_parameter_round_trips_by_index_and_by_name() {
    let mut checked = 0;
    for entry in entries() {
        let fresh = (entry.build)();
        let params = fresh.params();
        for (index, info) in params.iter().enumerate() {
            // A parameter constrained by another (a filter's order_scale in dB needs an order
            // that is a multiple of 6) is tried from a base where one other parameter is set.
            let bases = std::iter::once(None).chain(params.iter().enumerate().flat_map(
                |(other, other_info)| {
                    let current = fresh.get_param_at(other).unwrap_or(f64::NAN);
                    candidates(other_info, current)
                        .into_iter()
                        .filter(move |_| other != index)
                        .map(move |v| Some((other, v)))
                },
            ));
            let base = |setting: Option<(usize, f64)>| {
                let mut fx = (entry.build)();
                if let Some((other, v)) = setting {
                    fx.set_param_at(other, v).ok()?;
                }
                Some(fx)
            };
            let mut found = None;
            for setting in bases {
                let Some(probe) = base(setting) else { continue };
                let current = probe.get_param_at(index).expect("every listed index reads");
                let values = candidates(info, current);
                if let Some(&value) = values.iter().find(|&&v| {
                    base(setting).is_some_and(|mut fx| fx.set_param_at(index, v).is_ok())
                }) {
                    found = Some((setting, value, values));
                    break;
                }
            }
            let Some((setting, value, values)) = found else {
                panic!("{}.{}: no value could be set", entry.name, info.name);
            };
            let mut fx = base(setting).expect("the base sets");
            let before = snapshot(fx.as_ref());
            fx.set_param_at(index, value)
                .unwrap_or_else(|e| panic!("{}.{}: {e}", entry.name, info.name));
            assert!(
                same(fx.get_param_at(index), Some(value)),
                "{}.{}: set {value} by index, reads {:?}",
                entry.name,
                info.name,
                fx.get_param_at(index)
            );
            let after = snapshot(fx.as_ref());
            for (other, (b, a)) in before.iter().zip(&after).enumerate() {
                if other != index {
                    assert!(
                        same(*b, *a),
                        "{}: setting '{}' changed '{}' from {b:?} to {a:?}",
                        entry.name,
                        info.name,
                        params[other].name
                    );
                }
            }
            // By name (in upper case: names are case-insensitive): the same parameter.
            assert!(same(fx.get_param(&info.name.to_uppercase()), Some(value)));
            if let Some(&again) = values.iter().find(|&&v| {
                v != value && base(setting).is_some_and(|mut fx| fx.set_param_at(index, v).is_ok())
            }) {
                fx.set_param(&info.name.to_uppercase(), again)
                    .unwrap_or_else(|e| panic!("{}.{}: {e}", entry.name, info.name));
                assert!(
                    same(fx.get_param_at(index), Some(again)),
                    "{}.{}: set {again} by name, index reads {:?}",
                    entry.name,
                    info.name,
                    fx.get_param_at(index)
                );
            }
            checked += 1;
        }
        // Past the end: an error that says so, and nothing to read.
        let mut fx = (entry.build)();
        let err = fx
            .set_param_at(params.len(), 0.0)
            .expect_err("an index past the end is refused");
        assert!(
            err.to_string()
                .contains(&format!("no parameter #{}", params.len())),
            "{}: {err}",
            entry.name
        );
        assert_eq!(fx.get_param_at(params.len()), None);
        let bits = |fx: &dyn Effect| -> Vec<Option<u64>> {
            snapshot(fx).iter().map(|v| v.map(f64::to_bits)).collect()
        };
        assert_eq!(bits(fx.as_ref()), bits(fresh.as_ref()));
    }
    assert!(checked > 60, "only {checked} parameters checked");
}

/// An effect's index constant and the parameter name it stands for.
type IndexConstant = (usize, &'static str);

/// The index constants name the entries they stand for, one constant per parameter.
#[test]
fn index_constants_match_the_tables() {
    let compressor = Compressor::new().params();
    let limiter = Limiter::new().params();
    let delay = Delay::new().params();
    let reverb = Reverb::new().params();
    let gain = Gain::new().params();
    let normalize = Normalize::new().params();
    let tables: [(&[ParamInfo], &[IndexConstant]); 6] = [
        (
            compressor,
            &[
                (Compressor::THRESHOLD, "threshold"),
                (Compressor::RATIO, "ratio"),
                (Compressor::ATTACK, "attack"),
                (Compressor::RELEASE, "release"),
                (Compressor::KNEE, "knee"),
                (Compressor::MAKEUP_GAIN, "makeup_gain"),
                (Compressor::DETECTOR, "detector"),
            ],
        ),
        (
            limiter,
            &[
                (Limiter::THRESHOLD, "threshold"),
                (Limiter::LOOKAHEAD, "lookahead"),
                (Limiter::RELEASE, "release"),
                (Limiter::TRUE_PEAK, "true_peak"),
            ],
        ),
        (
            delay,
            &[
                (Delay::DELAY_SAMPLES, "delay_samples"),
                (Delay::FEEDBACK, "feedback"),
                (Delay::MIX, "mix"),
                (Delay::BPM, "bpm"),
                (Delay::DELAY_TIME, "delay_time"),
                (Delay::DELAY_MS, "delay_ms"),
                (Delay::PING_PONG, "ping_pong"),
                (Delay::TAPS, "taps"),
            ],
        ),
        (
            reverb,
            &[
                (Reverb::ROOM_SIZE, "room_size"),
                (Reverb::DAMPING, "damping"),
                (Reverb::MIX, "mix"),
                (Reverb::STEREO_SPREAD, "stereo_spread"),
            ],
        ),
        (
            gain,
            &[
                (Gain::GAIN, "gain"),
                (Gain::GAIN_TYPE, "gain_type"),
                (Gain::CLAMP, "clamp"),
            ],
        ),
        (
            normalize,
            &[
                (Normalize::PEAK, "peak"),
                (Normalize::STRATEGY, "strategy"),
                (Normalize::PERCENTILE, "percentile"),
            ],
        ),
    ];
    for (params, constants) in tables {
        assert_eq!(constants.len(), params.len(), "a constant per parameter");
        for &(index, name) in constants {
            assert_eq!(params[index].name, name);
        }
    }
}

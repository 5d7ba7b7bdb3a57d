//! Running the leading filters of a chain on a cascade engine: the CUDA graph runner on a GPU,
//! or the kernel's CPU emulation (which is how this wiring is tested on machines without one).
//!
//! [`offload_leading_filters`] takes a chain, fuses the IIR filters and biquads it starts with
//! into one SOS cascade, hands that cascade to an engine built for a fixed chunk shape, and
//! returns a chain whose first effect is [`OffloadedFilters`] (running the engine) followed by
//! the rest of the original effects. Only the leading run is offloaded: the filters are the
//! part of a chain a GPU kernel computes well, and anything after a nonlinear effect would
//! need a second round trip per chunk.
//!
//! The offloaded filters' parameters are fixed when the engine is built (the kernel's
//! coefficients live on the device); [`OffloadedFilters`] refuses parameter changes with an
//! error that says so. A chunk whose shape differs from the captured one runs on a CPU copy
//! of the cascade, and so does every chunk after the engine has failed once (its error is kept
//! for [`OffloadedFilters::engine_error`]): the audio never stops because of the GPU.
//!
//! ```
//! use rtfx::dsp::spec::parse_chain;
//! use rtfx::dsp::filter::engine::emulated_engine;
//! use rtfx::gpu::leading_filters::offload_leading_filters;
//!
//! let chain = parse_chain(&["hibutterworth:80,order=2", "lobutterworth:8000,order=4", "reverb"]).unwrap();
//! let offloaded = offload_leading_filters(&chain, 48000.0, 256, 2, emulated_engine)
//!     .unwrap()
//!     .expect("the chain starts with filters");
//! assert_eq!(offloaded.filters, 2);
//! assert_eq!(offloaded.description, "hibutterworth, lobutterworth on the CPU emulation of the CUDA kernel");
//! let mut offloaded = offloaded.chain; // the fused filters, then the reverb
//! assert_eq!(offloaded.len(), 2);
//! offloaded.prepare(48000.0, 256, 2).unwrap();
//! let (mut l, mut r) = (vec![0.5f32; 256], vec![-0.5f32; 256]);
//! offloaded.process(&mut [&mut l[..], &mut r[..]]);
//! assert!(l.iter().chain(&r).all(|v| v.is_finite()));
//! ```

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::dsp::filter::engine::{CascadeEngine, EngineCascade, EngineFactory, check_engine_shape};
use crate::dsp::filter::sos::SosCascade;
use crate::dsp::{Chain, Effect, ParamInfo, with_frames_mut};
use crate::error::{Error, Result};

/// The [`EngineFactory`] of the CUDA graph runner; without the `cuda` feature, a driver or a
/// device, the reason as `BackendNotAvailable("cuda")`.
pub fn cuda_engine(
    cascade: &SosCascade,
    channels: usize,
    frames: usize,
) -> Result<Box<dyn CascadeEngine>> {
    #[cfg(feature = "cuda")]
    {
        Ok(Box::new(super::CudaGraphRunner::new(
            cascade, channels, frames, 3,
        )?))
    }
    #[cfg(not(feature = "cuda"))]
    {
        let _ = (cascade, channels, frames);
        Err(super::cuda_available()
            .err()
            .unwrap_or_else(|| Error::backend_not_available("cuda")))
    }
}

/// The leading filters of a chain, fused, running on a [`CascadeEngine`] (see the module
/// docs). An [`Effect`] named `gpu_filters`, with no parameters. A copy has no engine (one
/// owns device memory) and runs the same cascade on the CPU.
pub struct OffloadedFilters {
    /// The engine, through the one engine adapter; `None` in a copy.
    engine: Option<EngineCascade>,
    /// The same cascade on the CPU: chunks of another shape, every chunk once the engine has
    /// failed, and every chunk of a copy.
    cpu: SosCascade,
    /// Names of the filters it replaces, e.g. "hibutterworth, lobutterworth".
    names: String,
    sample_rate: f64,
    tail: usize,
    /// Set when the engine fails (shared with [`Offloaded::engine_failed`]).
    failed: Arc<AtomicBool>,
}

impl OffloadedFilters {
    /// Where the filters run, e.g. "hibutterworth, lobutterworth on CUDA graph on …".
    pub fn describe(&self) -> String {
        match &self.engine {
            Some(engine) => match engine.error() {
                Some(e) => format!("{} on the CPU (the engine failed: {e})", self.names),
                None => format!("{} on {}", self.names, engine.describe()),
            },
            None => format!("{} on the CPU", self.names),
        }
    }

    /// The error for changing parameter `name` while the filters run on the GPU.
    fn fixed_coefficients(&self, name: &str) -> Error {
        Error::invalid_parameter(
            format!(
                "The filters {} run on the GPU with fixed coefficients; '{name}' cannot change while running",
                self.names
            ),
            name,
            name,
        )
        .with_suggestion("restart with the new value, or run on the CPU (--device cpu)")
    }

    /// The engine's first error, after which the filters run on the CPU.
    pub fn engine_error(&self) -> Option<&str> {
        self.engine.as_ref().and_then(EngineCascade::error)
    }
}

impl Effect for OffloadedFilters {
    fn name(&self) -> &'static str {
        "gpu_filters"
    }

    fn params(&self) -> &'static [ParamInfo] {
        &[]
    }

    fn get_param_at(&self, _index: usize) -> Option<f64> {
        None
    }

    fn set_param_at(&mut self, index: usize, _value: f64) -> Result<()> {
        Err(self.fixed_coefficients(&format!("#{index}")))
    }

    fn set_param(&mut self, name: &str, _value: f64) -> Result<()> {
        Err(self.fixed_coefficients(name))
    }

    fn prepare(&mut self, sample_rate: f64, _max_block: usize, channels: usize) -> Result<()> {
        if let Some(engine) = self.engine.as_mut() {
            let (engine_channels, _) = engine.shape();
            if sample_rate != self.sample_rate || channels != engine_channels {
                return Err(Error::invalid_range(
                    format!(
                        "The GPU filters were built for {engine_channels} channels at {} Hz, not {channels} at {sample_rate} Hz",
                        self.sample_rate
                    ),
                    "shape",
                    format!("{channels}x{sample_rate}"),
                )
                .with_suggestion("offload the chain again for this stream"));
            }
            // The CPU cascade starts clean; the engine takes its state at the first chunk.
            engine.forget_state();
        }
        self.cpu.set_channels(channels);
        Ok(())
    }

    fn process(&mut self, block: &mut [&mut [f32]]) {
        let n = block.first().map_or(0, |c| c.len());
        if n == 0 {
            return;
        }
        // The engine, unless this is a copy or it has failed; a block of another shape runs
        // on the CPU, which takes the state back first.
        let cpu = &mut self.cpu;
        let engine = match self.engine.as_mut() {
            Some(engine) if engine.error().is_none() => engine,
            _ => return cpu.process(block),
        };
        let (channels, frames) = engine.shape();
        if block.len() != channels || block.iter().any(|c| c.len() != n) {
            engine.hand_back(&mut [&mut *cpu]);
            return cpu.process(block);
        }
        // Chunks of up to the engine's length (the chain's pieces are never longer).
        let mut pos = 0;
        while pos < n {
            let len = (n - pos).min(frames);
            let ran = with_frames_mut(block, pos..pos + len, |piece| {
                engine.run(&mut [&mut *cpu], &[true], piece)
            });
            if !ran {
                // The engine failed and cleared the CPU cascade (the device's state is lost):
                // the CPU goes on from there, this piece and everything after it.
                self.failed.store(true, Ordering::Relaxed);
                with_frames_mut(block, pos..n, |rest| cpu.process(rest));
                return;
            }
            pos += len;
        }
    }

    fn reset(&mut self) {
        self.cpu.reset();
        if let Some(engine) = self.engine.as_mut() {
            engine.forget_state();
        }
    }

    fn tail_samples(&self) -> usize {
        self.tail
    }

    /// The cascade, for the chain to fuse, only in a copy (with an engine, `process` must run).
    fn cascade(&self) -> Option<&SosCascade> {
        self.engine.is_none().then_some(&self.cpu)
    }

    fn cascade_mut(&mut self) -> Option<&mut SosCascade> {
        self.engine.is_none().then_some(&mut self.cpu)
    }

    fn clone_box(&self) -> Box<dyn Effect> {
        // An engine owns device memory and cannot be copied: the copy runs on the CPU.
        Box::new(OffloadedFilters {
            engine: None,
            cpu: self.cpu.clone(),
            names: self.names.clone(),
            sample_rate: self.sample_rate,
            tail: self.tail,
            failed: Arc::new(AtomicBool::new(false)),
        })
    }
}

/// A chain whose leading filters run on an engine ([`offload_leading_filters`]).
pub struct Offloaded {
    /// The fused filters as one [`OffloadedFilters`], then clones of the other effects;
    /// prepare it as usual.
    pub chain: Chain,
    /// How many of the original effects the engine runs.
    pub filters: usize,
    /// What runs where, e.g. "hibutterworth, lobutterworth on a CUDA graph on …".
    pub description: String,
    /// Becomes true if the engine fails while running; the filters then run on the CPU.
    pub engine_failed: Arc<AtomicBool>,
}

/// Moves the IIR filters and biquads that `chain` starts with onto an engine from `factory`,
/// for a stream of `channels × frames` chunks at `sample_rate`; `None` when the chain does not
/// start with a filter. `chain` itself is not changed. Allocates; the factory's error (no
/// device, no driver) is returned as it is, so the caller can fall back to `chain` and say why.
pub fn offload_leading_filters(
    chain: &Chain,
    sample_rate: f64,
    frames: usize,
    channels: usize,
    factory: EngineFactory,
) -> Result<Option<Offloaded>> {
    // Prepared, the filters hold their designed cascades.
    let mut designed = chain.clone();
    designed.prepare(sample_rate, frames, channels)?;
    let leading = designed
        .effects()
        .iter()
        .take_while(|fx| fx.cascade().is_some())
        .count();
    if leading == 0 {
        return Ok(None);
    }
    let parts = &designed.effects()[..leading];
    let sections: usize = parts
        .iter()
        .filter_map(|fx| fx.cascade())
        .map(SosCascade::len)
        .sum();
    check_engine_shape(sections, channels, frames)?;
    let mut fused = SosCascade::with_capacity(sections, channels);
    fused.gather(parts.iter().filter_map(|fx| fx.cascade()));
    fused.reset();
    let engine = EngineCascade::new(factory(&fused, channels, frames)?, sections);
    let names: Vec<&str> = parts.iter().map(|fx| fx.name()).collect();
    let failed = Arc::new(AtomicBool::new(false));
    let offloaded = OffloadedFilters {
        engine: Some(engine),
        cpu: fused,
        names: names.join(", "),
        sample_rate,
        tail: parts.iter().map(|fx| fx.tail_samples()).sum(),
        failed: failed.clone(),
    };
    let description = offloaded.describe();
    let mut effects: Vec<Box<dyn Effect>> = vec![Box::new(offloaded)];
    effects.extend(chain.effects()[leading..].iter().cloned());
    let mut out = Chain::new(effects);
    out.set_smoothing_ms(chain.smoothing_ms())?;
    Ok(Some(Offloaded {
        chain: out,
        filters: leading,
        description,
        engine_failed: failed,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dsp::filter::engine::{EmulatedEngine, emulated_engine};
    use crate::dsp::filter::sos::fused_multiply_add;
    use crate::dsp::fx::test_util::noise;
    use crate::dsp::spec::parse_chain;

    const RATE: f64 = 48_000.0;

    /// Bit for bit where the CPU fuses multiply-adds as the kernel does; else last-bit close.
    fn assert_same(got: &[Vec<f32>], want: &[Vec<f32>], what: &str) {
        for (g, w) in got.iter().flatten().zip(want.iter().flatten()) {
            if fused_multiply_add() {
                assert_eq!(g.to_bits(), w.to_bits(), "{what}: {g} vs {w}");
            } else {
                assert!(
                    (g - w).abs() <= 1e-5 * w.abs().max(1e-3),
                    "{what}: {g} vs {w}"
                );
            }
        }
    }

    /// Runs `chain` over `input` in blocks of the given lengths (cycled).
    fn run(chain: &mut Chain, input: &[Vec<f32>], lengths: &[usize]) -> Vec<Vec<f32>> {
        let mut out = input.to_vec();
        let frames = out[0].len();
        let (mut pos, mut i) = (0, 0);
        while pos < frames {
            let len = lengths[i % lengths.len()].min(frames - pos);
            let mut views: Vec<&mut [f32]> =
                out.iter_mut().map(|c| &mut c[pos..pos + len]).collect();
            chain.process(&mut views);
            pos += len;
            i += 1;
        }
        out
    }

    fn guitar() -> Chain {
        parse_chain(&[
            "hibutterworth:80,order=2",
            "lobutterworth:8000,order=4",
            "reverb:room_size=0.3",
        ])
        .unwrap()
    }

    #[test]
    fn the_offloaded_chain_equals_the_cpu_chain_for_blocks_of_any_length() {
        let chain = guitar();
        let Offloaded {
            chain: mut offloaded,
            filters,
            engine_failed,
            ..
        } = offload_leading_filters(&chain, RATE, 256, 2, emulated_engine)
            .unwrap()
            .expect("leading filters");
        assert_eq!(filters, 2);
        let names: Vec<&str> = offloaded.effects().iter().map(|fx| fx.name()).collect();
        assert_eq!(names, ["gpu_filters", "reverb"]);
        offloaded.prepare(RATE, 256, 2).unwrap();
        let mut cpu = chain.clone();
        cpu.prepare(RATE, 256, 2).unwrap();
        let input = noise(2, 48_000, 9);
        // Full chunks (the graph's shape), shorter ones (eager launches) and longer ones (the
        // chain cuts them into prepared-length pieces): the state carries on through all.
        let lengths = [256, 256, 100, 1, 256, 37, 1000, 256];
        let got = run(&mut offloaded, &input, &lengths);
        let want = run(&mut cpu, &input, &[256]);
        assert_same(&got, &want, "guitar chain");
        // reset clears the engine's state as the CPU chain's.
        offloaded.reset();
        cpu.reset();
        let got = run(&mut offloaded, &input[..], &[256]);
        let want = run(&mut cpu, &input[..], &[256]);
        assert_same(&got, &want, "after reset");
        assert!(!engine_failed.load(Ordering::Relaxed));
    }

    /// A block the engine was not built for (here one channel of two) runs on the CPU from the
    /// engine's state, and the engine takes the state back after it: the filters carry on as
    /// one filter would.
    #[test]
    fn a_block_of_another_shape_carries_the_state_over() {
        let chain =
            parse_chain(&["hibutterworth:80,order=2", "lobutterworth:8000,order=4"]).unwrap();
        let mut offloaded = offload_leading_filters(&chain, RATE, 256, 2, emulated_engine)
            .unwrap()
            .expect("leading filters")
            .chain;
        offloaded.prepare(RATE, 256, 2).unwrap();
        let mut cpu = chain.clone();
        cpu.prepare(RATE, 256, 2).unwrap();
        let input = noise(2, 1024, 5);
        let (mut got, mut want) = (input.clone(), input.clone());
        for (start, stereo) in [(0, true), (256, false), (512, true), (768, true)] {
            for (out, chain) in [(&mut got, &mut offloaded), (&mut want, &mut cpu)] {
                let (l, r) = out.split_at_mut(1);
                let (l, r) = (&mut l[0][start..start + 256], &mut r[0][start..start + 256]);
                if stereo {
                    chain.process(&mut [l, r]);
                } else {
                    chain.process(&mut [l]);
                }
            }
        }
        assert_same(&got, &want, "mono block between stereo ones");
    }

    #[test]
    fn a_chain_that_does_not_start_with_a_filter_is_left_alone() {
        let chain = parse_chain(&["gain:0.5", "lowpass:1000,q=0.707"]).unwrap();
        let offloaded = offload_leading_filters(&chain, RATE, 256, 2, emulated_engine).unwrap();
        assert!(offloaded.is_none());
    }

    fn no_device(_: &SosCascade, _: usize, _: usize) -> Result<Box<dyn CascadeEngine>> {
        Err(Error::backend_not_available("cuda").with_message("no CUDA device in this test"))
    }

    #[test]
    fn the_factory_error_is_returned_for_the_caller_to_fall_back() {
        let err = offload_leading_filters(&guitar(), RATE, 256, 2, no_device)
            .err()
            .expect("the factory fails");
        assert!(
            err.to_string().contains("no CUDA device in this test"),
            "{err}"
        );
        // Shapes no engine can take are refused before the factory is asked.
        let err = offload_leading_filters(&guitar(), RATE, 256, 33, emulated_engine)
            .err()
            .expect("33 channels");
        assert!(err.to_string().contains("33x256"), "{err}");
    }

    /// The emulation for `good_chunks` chunks, then a driver error on every call.
    struct FailingEngine {
        inner: EmulatedEngine,
        good_chunks: usize,
    }

    impl CascadeEngine for FailingEngine {
        fn run(&mut self, block: &mut [&mut [f32]]) -> Result<()> {
            if self.good_chunks == 0 {
                return Err(Error::backend_not_available("cuda").with_message("device lost"));
            }
            self.good_chunks -= 1;
            self.inner.run(block)
        }
        fn reset_state(&mut self) -> Result<()> {
            self.inner.reset_state()
        }
        fn set_coefficients(&mut self, rows: &[[f64; 5]]) -> Result<()> {
            self.inner.set_coefficients(rows)
        }
        fn load_state(&mut self, state: &[f64]) -> Result<()> {
            self.inner.load_state(state)
        }
        fn store_state(&mut self, state: &mut [f64]) -> Result<()> {
            self.inner.store_state(state)
        }
        fn shape(&self) -> (usize, usize) {
            self.inner.shape()
        }
        fn describe(&self) -> String {
            "a failing test engine".into()
        }
    }

    fn failing(c: &SosCascade, channels: usize, frames: usize) -> Result<Box<dyn CascadeEngine>> {
        Ok(Box::new(FailingEngine {
            inner: EmulatedEngine::new(c, channels, frames)?,
            good_chunks: 3,
        }))
    }

    #[test]
    fn an_engine_that_fails_mid_stream_hands_over_to_the_cpu() {
        let chain = parse_chain(&["lobutterworth:1000,order=4"]).unwrap();
        let Offloaded {
            chain: mut offloaded,
            engine_failed,
            ..
        } = offload_leading_filters(&chain, RATE, 64, 1, failing)
            .unwrap()
            .unwrap();
        offloaded.prepare(RATE, 64, 1).unwrap();
        let input = vec![vec![0.5f32; 64 * 10]];
        let out = run(&mut offloaded, &input, &[64]);
        // DC through a low-pass: the output approaches 0.5 and never stops or breaks.
        assert!(out[0].iter().all(|v| v.is_finite() && v.abs() < 1.0));
        assert!((out[0][64 * 10 - 1] - 0.5).abs() < 1e-3);
        assert!(engine_failed.load(Ordering::Relaxed));
        // A copy runs the same filters on the CPU (an engine cannot be copied).
        let mut copy = offloaded.clone();
        copy.prepare(RATE, 64, 1).unwrap();
        let from_copy = run(&mut copy, &input, &[64]);
        assert!((from_copy[0][64 * 10 - 1] - 0.5).abs() < 1e-3);
    }

    #[test]
    fn the_offloaded_filters_refuse_parameter_changes_and_say_why() {
        let mut offloaded = offload_leading_filters(&guitar(), RATE, 256, 2, emulated_engine)
            .unwrap()
            .unwrap()
            .chain;
        offloaded.prepare(RATE, 256, 2).unwrap();
        let err = offloaded
            .set_param("0.cutoff", 100.0)
            .unwrap_err()
            .to_string();
        assert!(err.contains("'gpu_filters' has no parameters"), "{err}");
        // The CPU effects after them still take parameters.
        offloaded.set_param("1.room_size", 0.5).unwrap();
        // A stream of another shape needs a new offload.
        let err = offloaded.prepare(RATE, 256, 1).unwrap_err().to_string();
        assert!(err.contains("offload the chain again"), "{err}");
    }

    #[test]
    fn the_cuda_engine_explains_why_it_is_unavailable() {
        if crate::gpu::cuda_available().is_ok() {
            eprintln!("skipped: this machine has a CUDA device");
            return;
        }
        let cascade = SosCascade::new(
            crate::dsp::filter::design::design_iir(
                crate::dsp::filter::design::Family::Butterworth,
                crate::dsp::filter::design::BandType::Lowpass,
                2,
                1000.0,
                RATE,
            )
            .as_slice(),
            2,
        );
        let err = cuda_engine(&cascade, 2, 256).err().expect("no device here");
        assert!(
            matches!(err, Error::BackendNotAvailable { ref backend_name, .. } if backend_name == "cuda"),
            "{err:?}"
        );
    }
}

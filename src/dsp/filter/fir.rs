//! Streaming FIR filter (`fir` in the registry): a windowed-sinc design equal to scipy's
//! `firwin`, run as a direct-form convolution whose history is kept across blocks.
//!
//! torchfx's FIR starts every call from zero history, so chunked output has seams at every
//! chunk boundary; rtfx keeps the last `num_taps − 1` input samples of each channel, so chunked
//! output equals one-shot output.
//!
//! ```
//! use rtfx::dsp::Effect;
//! use rtfx::dsp::filter::fir::Fir;
//!
//! let mut fir = Fir::new();
//! fir.set_param("cutoff", 1000.0).unwrap();
//! fir.set_param("num_taps", 31.0).unwrap();
//! fir.prepare(48000.0, 64, 1).unwrap();
//! let mut x = vec![1.0f32; 64];
//! fir.process(&mut [&mut x[..]]);
//! assert!((x[63] - 1.0).abs() < 1e-5); // unity at DC once the history is full
//! ```

use super::fir_design::{Window, check_taps_for_bands, firwin_into};
use crate::dsp::{Effect, ParamInfo, param_index, param_info_at};
use crate::error::{Error, Result};

/// Longest FIR accepted (taps).
pub const MAX_TAPS: usize = 4095;

const PARAMS: &[ParamInfo] = &[
    ParamInfo::continuous(
        "cutoff",
        1e-3,
        384_000.0,
        f64::NAN,
        "Hz",
        "Band edge (the lower one with cutoff_high)",
    )
    .unsmoothed(),
    ParamInfo::integer(
        "num_taps",
        1.0,
        MAX_TAPS as f64,
        101.0,
        "Number of taps (odd for high-pass and band-stop)",
    ),
    ParamInfo::continuous(
        "cutoff_high",
        1e-3,
        384_000.0,
        f64::NAN,
        "Hz",
        "Upper band edge: band-pass (pass_zero=false) or band-stop",
    )
    .unsmoothed(),
    ParamInfo::toggle(
        "pass_zero",
        true,
        "Pass DC (low-pass / band-stop) or not (high-pass / band-pass)",
    ),
    ParamInfo::choice("window", Window::NAMES, 1, "Design window"),
    ParamInfo::continuous(
        "kaiser_beta",
        0.0,
        50.0,
        0.5,
        "",
        "Kaiser window shape (window=\"kaiser\")",
    )
    .unsmoothed(),
];

/// Parameter indices.
const CUTOFF: usize = 0;
const NUM_TAPS: usize = 1;
const CUTOFF_HIGH: usize = 2;
const PASS_ZERO: usize = 3;
const WINDOW: usize = 4;
const KAISER_BETA: usize = 5;

/// A streaming windowed-sinc FIR filter.
#[derive(Clone)]
pub struct Fir {
    values: [f64; 6],
    sample_rate: f64,
    /// Design scratch (f64, `MAX_TAPS` long once prepared).
    design: Vec<f64>,
    /// Taps in reverse order, so the dot product walks history forward.
    reversed: Vec<f32>,
    taps: usize,
    /// Per channel a doubled ring of `2 × MAX_TAPS` samples: the last `taps` inputs are always
    /// contiguous at `[pos + MAX_TAPS − taps + 1 ..= pos + MAX_TAPS]`.
    history: Vec<Vec<f32>>,
    pos: usize,
    prepared: bool,
}

impl Default for Fir {
    fn default() -> Self {
        Self::new()
    }
}

impl Fir {
    /// An FIR with default parameters; `cutoff` must be set before `prepare`.
    pub fn new() -> Self {
        let mut values = [0.0; 6];
        for (v, p) in values.iter_mut().zip(PARAMS) {
            *v = p.default;
        }
        Self {
            values,
            sample_rate: 0.0,
            design: Vec::new(),
            reversed: Vec::new(),
            taps: 0,
            history: Vec::new(),
            pos: 0,
            prepared: false,
        }
    }

    /// The current taps (in filter order), for tests and displays.
    pub fn taps(&self) -> Vec<f32> {
        self.reversed[..self.taps].iter().rev().copied().collect()
    }

    /// Designs into the preallocated buffers. Fails for impossible combinations (bad band
    /// edges, an even tap count with a pass band at Nyquist).
    fn redesign(&mut self, values: &[f64; 6]) -> Result<()> {
        let taps = values[NUM_TAPS] as usize;
        let window = Window::from_index(values[WINDOW] as usize, values[KAISER_BETA]);
        let pass_zero = values[PASS_ZERO] == 1.0;
        let mut edges = [values[CUTOFF], values[CUTOFF_HIGH]];
        let bands = if values[CUTOFF_HIGH].is_nan() { 1 } else { 2 };
        if bands == 2 && edges[1] <= edges[0] {
            return Err(Error::invalid_parameter(
                "cutoff_high must be above cutoff",
                "cutoff_high",
                edges[1],
            )
            .with_suggestion(format!("use a cutoff_high above {} Hz", edges[0])));
        }
        edges.sort_by(f64::total_cmp);
        firwin_into(
            &mut self.design[..taps],
            &edges[..bands],
            self.sample_rate,
            window,
            pass_zero,
        )?;
        for (r, d) in self
            .reversed
            .iter_mut()
            .zip(self.design[..taps].iter().rev())
        {
            *r = *d as f32;
        }
        self.taps = taps;
        Ok(())
    }
}

impl Fir {
    /// Takes `candidate` as the parameter values if the combination is valid, redesigning the
    /// filter when prepared; otherwise changes nothing.
    fn apply_values(&mut self, candidate: [f64; 6]) -> Result<()> {
        let bands = if candidate[CUTOFF_HIGH].is_nan() {
            1
        } else {
            2
        };
        check_taps_for_bands(
            candidate[NUM_TAPS] as usize,
            bands,
            candidate[PASS_ZERO] == 1.0,
        )?;
        if self.prepared {
            self.redesign(&candidate)?;
        }
        self.values = candidate;
        Ok(())
    }
}

impl Effect for Fir {
    fn name(&self) -> &'static str {
        "fir"
    }

    fn params(&self) -> &'static [ParamInfo] {
        PARAMS
    }

    fn get_param_at(&self, index: usize) -> Option<f64> {
        self.values.get(index).copied()
    }

    fn set_param_at(&mut self, index: usize, value: f64) -> Result<()> {
        let info = param_info_at("fir", PARAMS, index)?;
        let mut candidate = self.values;
        candidate[index] = info.validate(value)?;
        self.apply_values(candidate)
    }

    /// Checks the combination with every given value in place: an even tap count for a
    /// design that passes Nyquist is refused here, when the chain is built, not at render time.
    fn set_params(&mut self, params: &[(&str, f64)]) -> Result<()> {
        let mut candidate = self.values;
        for &(name, value) in params {
            let i = param_index("fir", PARAMS, name)?;
            candidate[i] = PARAMS[i].validate(value)?;
        }
        self.apply_values(candidate)
    }
    fn prepare(&mut self, sample_rate: f64, _max_block: usize, channels: usize) -> Result<()> {
        if self.values[CUTOFF].is_nan() {
            return Err(Error::invalid_parameter(
                "Filter 'fir' needs a value for 'cutoff'",
                "cutoff",
                "nothing",
            )
            .with_suggestion("set it, e.g. fir:1000 or fir:cutoff=1000"));
        }
        self.sample_rate = sample_rate;
        self.design = vec![0.0; MAX_TAPS];
        self.reversed = vec![0.0; MAX_TAPS];
        self.history = vec![vec![0.0; 2 * MAX_TAPS]; channels];
        self.pos = 0;
        let values = self.values;
        self.redesign(&values)?;
        self.prepared = true;
        Ok(())
    }

    fn process(&mut self, block: &mut [&mut [f32]]) {
        if !self.prepared || self.taps == 0 {
            return;
        }
        let taps = &self.reversed[..self.taps];
        let frames = crate::dsp::frames(block);
        let start = self.pos;
        for (channel, history) in block.iter_mut().zip(self.history.iter_mut()) {
            let mut pos = start;
            for x in channel.iter_mut().take(frames) {
                let v = if x.is_finite() { *x } else { 0.0 };
                history[pos] = v;
                history[pos + MAX_TAPS] = v;
                let end = pos + MAX_TAPS + 1;
                let window = &history[end - taps.len()..end];
                *x = dot(taps, window);
                pos = if pos + 1 == MAX_TAPS { 0 } else { pos + 1 };
            }
        }
        self.pos = (start + frames) % MAX_TAPS;
    }

    fn reset(&mut self) {
        for h in &mut self.history {
            h.fill(0.0);
        }
        self.pos = 0;
    }

    fn visit_state(&self, visit: &mut dyn FnMut(f64)) {
        self.history
            .iter()
            .flatten()
            .for_each(|&v| visit(f64::from(v)));
    }

    fn tail_samples(&self) -> usize {
        self.taps.saturating_sub(1)
    }

    fn clone_box(&self) -> Box<dyn Effect> {
        Box::new(self.clone())
    }
}

/// Dot product with eight independent accumulators so it vectorises (exact-size chunks keep
/// bounds checks out of the loop).
#[inline]
fn dot(a: &[f32], b: &[f32]) -> f32 {
    let mut acc = [0.0f32; 8];
    let (a8, b8) = (a.chunks_exact(8), b.chunks_exact(8));
    let tail: f32 = a8
        .remainder()
        .iter()
        .zip(b8.remainder())
        .map(|(x, y)| x * y)
        .sum();
    for (x, y) in a8.zip(b8) {
        for l in 0..8 {
            acc[l] += x[l] * y[l];
        }
    }
    let total = tail + acc.iter().sum::<f32>();
    crate::dsp::sanitize_state_f32(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fir(cutoff: f64, taps: f64) -> Fir {
        let mut f = Fir::new();
        f.set_param("cutoff", cutoff).unwrap();
        f.set_param("num_taps", taps).unwrap();
        f.prepare(48000.0, 4096, 2).unwrap();
        f
    }

    #[test]
    fn impulse_response_is_the_taps() {
        let mut f = fir(3000.0, 21.0);
        let mut x = [0.0f32; 40];
        x[0] = 1.0;
        f.process(&mut [&mut x[..]]);
        let taps = f.taps();
        assert_eq!(&x[..21], &taps[..]);
        assert!(x[21..].iter().all(|&v| v == 0.0));
    }

    #[test]
    fn chunked_equals_one_shot() {
        let signal: Vec<f32> = (0..9000)
            .map(|i| ((i * 7919) % 1000) as f32 / 500.0 - 1.0)
            .collect();
        let mut whole = signal.clone();
        fir(2000.0, 255.0).process(&mut [&mut whole[..]]);
        for chunk in [1, 7, 64, 4096] {
            let mut f = fir(2000.0, 255.0);
            let mut y = signal.clone();
            for piece in y.chunks_mut(chunk) {
                f.process(&mut [piece]);
            }
            assert_eq!(y, whole, "chunk {chunk}");
        }
    }

    #[test]
    fn even_taps_high_pass_is_refused_and_state_kept() {
        let mut f = fir(2000.0, 31.0);
        assert!(f.set_param("pass_zero", 0.0).is_ok());
        let e = f.set_param("num_taps", 32.0).unwrap_err();
        assert!(
            e.to_string().contains("num_taps") || e.to_string().contains("odd"),
            "{e}"
        );
        assert_eq!(f.get_param("num_taps"), Some(31.0));
        let e = Fir::new().prepare(48000.0, 64, 1).unwrap_err();
        assert!(e.to_string().contains("cutoff"), "{e}");
    }
}

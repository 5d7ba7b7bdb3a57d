//! Cascade engines: whatever runs a fused SOS cascade over fixed-shape chunks and keeps its
//! state between them. The CUDA graph runner ([`crate::gpu`]) is one; [`EmulatedEngine`] is
//! another, on the CPU, with the CUDA kernel's exact arithmetic ([`emulate`]), so everything
//! built on the trait (the chain's offloaded filters, the plugin's GPU mode) is tested on
//! machines without a GPU. Pure DSP: nothing here knows of CUDA.

use crate::dsp::filter::sos::SosCascade;
use crate::error::{Error, Result};

/// Most sections an engine runs (the CUDA kernel holds them in registers).
pub const MAX_ENGINE_SECTIONS: usize = 64;

/// Most channels an offloaded chain may have (as many as a real-time stream).
pub const MAX_ENGINE_CHANNELS: usize = 32;

/// Runs fixed-shape chunks through a fused SOS cascade whose state it keeps between chunks.
pub trait CascadeEngine: Send {
    /// Filters one planar chunk in place: the engine's channels, 1 up to its frames (the
    /// state carries on across chunks of any length). On error `block` is left as it was
    /// (engines write it only after the chunk has been computed).
    fn run(&mut self, block: &mut [&mut [f32]]) -> Result<()>;
    /// Zeroes the filter state.
    fn reset_state(&mut self) -> Result<()>;
    /// Replaces the coefficients (`[b0, a1, a2, k1, k2]` per section, as many sections as the
    /// engine was built for); the state is kept, as when a CPU cascade's coefficients change.
    fn set_coefficients(&mut self, rows: &[[f64; 5]]) -> Result<()>;
    /// Replaces the filter state: `[s1, s2]` per section per channel (the kernel's layout,
    /// see [`SosCascade::export_state`]).
    fn load_state(&mut self, state: &[f64]) -> Result<()>;
    /// Copies the filter state out, in the same layout.
    fn store_state(&mut self, state: &mut [f64]) -> Result<()>;
    /// `(channels, frames)` of the chunks it was built for.
    fn shape(&self) -> (usize, usize);
    /// Where it runs, for messages (e.g. "CUDA graph on NVIDIA H100").
    fn describe(&self) -> String;
}

/// Builds an engine for a cascade and a chunk shape `(cascade, channels, frames)`.
pub type EngineFactory = fn(&SosCascade, usize, usize) -> Result<Box<dyn CascadeEngine>>;

/// The kernel's CPU emulation ([`emulate`]) as an engine: the same arithmetic as the GPU, so
/// the offload wiring can be tested without a device. Never allocates after construction.
pub struct EmulatedEngine {
    rows: Vec<[f64; 5]>,
    state: Vec<f64>,
    input: Vec<f32>,
    output: Vec<f32>,
    channels: usize,
    frames: usize,
}

impl EmulatedEngine {
    /// An engine for `cascade` and `channels × frames` chunks, with zeroed state.
    pub fn new(cascade: &SosCascade, channels: usize, frames: usize) -> Result<Self> {
        let rows = cascade.coefficient_rows();
        check_engine_shape(rows.len(), channels, frames)?;
        Ok(Self {
            state: vec![0.0; rows.len() * 2 * channels],
            rows,
            input: vec![0.0; channels * frames],
            output: vec![0.0; channels * frames],
            channels,
            frames,
        })
    }
}

/// The [`EngineFactory`] of [`EmulatedEngine`].
pub fn emulated_engine(
    cascade: &SosCascade,
    channels: usize,
    frames: usize,
) -> Result<Box<dyn CascadeEngine>> {
    Ok(Box::new(EmulatedEngine::new(cascade, channels, frames)?))
}

/// The error for a table of the wrong length handed to an engine.
pub fn check_len(what: &str, got: usize, want: usize) -> Result<()> {
    if got == want {
        return Ok(());
    }
    Err(Error::invalid_range(
        format!("The engine holds {want} {what}, not {got}"),
        "length",
        got,
    )
    .with_suggestion("build a new engine for another cascade or shape"))
}

/// The section-count and shape limits every engine shares with the GPU kernel.
pub fn check_engine_shape(sections: usize, channels: usize, frames: usize) -> Result<()> {
    if sections == 0 || sections > MAX_ENGINE_SECTIONS {
        return Err(Error::invalid_range(
            format!("A cascade engine needs 1 to {MAX_ENGINE_SECTIONS} sections, not {sections}"),
            "sections",
            sections,
        )
        .with_suggestion("offload fewer or lower-order filters, or run them on the CPU"));
    }
    if channels == 0 || channels > MAX_ENGINE_CHANNELS || frames == 0 {
        return Err(Error::invalid_range(
            format!("Cannot run {channels}x{frames} chunks"),
            "shape",
            format!("{channels}x{frames}"),
        )
        .with_expected(format!(
            "1 to {MAX_ENGINE_CHANNELS} channels and at least 1 frame"
        )));
    }
    Ok(())
}

impl CascadeEngine for EmulatedEngine {
    fn run(&mut self, block: &mut [&mut [f32]]) -> Result<()> {
        let channels = self.channels;
        let frames = block.first().map_or(0, |c| c.len());
        if block.len() != channels
            || frames == 0
            || frames > self.frames
            || block.iter().any(|c| c.len() != frames)
        {
            return Err(Error::invalid_range(
                format!(
                    "The chunk's shape differs from the engine's {channels}x(1..={})",
                    self.frames
                ),
                "shape",
                format!("{}x{frames}", block.len()),
            ));
        }
        let n = channels * frames;
        for (dst, src) in self.input[..n].chunks_exact_mut(frames).zip(block.iter()) {
            dst.copy_from_slice(src);
        }
        emulate(
            &self.rows,
            &mut self.state,
            &self.input[..n],
            &mut self.output[..n],
            channels,
            frames,
            1.0,
        );
        for (dst, src) in block.iter_mut().zip(self.output[..n].chunks_exact(frames)) {
            dst.copy_from_slice(src);
        }
        Ok(())
    }

    fn reset_state(&mut self) -> Result<()> {
        self.state.fill(0.0);
        Ok(())
    }

    fn set_coefficients(&mut self, rows: &[[f64; 5]]) -> Result<()> {
        check_len("coefficient rows", rows.len(), self.rows.len())?;
        self.rows.copy_from_slice(rows);
        Ok(())
    }

    fn load_state(&mut self, state: &[f64]) -> Result<()> {
        check_len("state words", state.len(), self.state.len())?;
        self.state.copy_from_slice(state);
        Ok(())
    }

    fn store_state(&mut self, state: &mut [f64]) -> Result<()> {
        check_len("state words", state.len(), self.state.len())?;
        state.copy_from_slice(&self.state);
        Ok(())
    }

    fn shape(&self) -> (usize, usize) {
        (self.channels, self.frames)
    }

    fn describe(&self) -> String {
        "the CPU emulation of the CUDA kernel".into()
    }
}

/// Runs the kernel's arithmetic on the CPU, thread by thread (one per channel), over planar
/// buffers of `channels × frames`. `coeffs` are [`SosCascade::coefficient_rows`]
/// (`[b0, a1, a2, k1, k2]`); `state`
/// holds `[s1, s2]` per section per channel and carries over between calls.
///
/// [`SosCascade::coefficient_rows`]: crate::dsp::filter::sos::SosCascade::coefficient_rows
///
/// ```
/// use rtfx::dsp::filter::design::{design_iir, BandType, Family};
/// use rtfx::dsp::filter::sos::{fused_multiply_add, SosCascade};
/// use rtfx::dsp::filter::engine::emulate;
///
/// let design = design_iir(Family::Butterworth, BandType::Lowpass, 4, 1000.0, 48000.0);
/// let mut cpu = SosCascade::new(design.as_slice(), 1);
/// let rows = cpu.coefficient_rows();
/// let mut state = vec![0.0; rows.len() * 2];
/// let input: Vec<f32> = (0..256).map(|n| ((n * 7) % 13) as f32 / 13.0 - 0.5).collect();
/// let mut gpu_out = vec![0.0f32; 256];
/// emulate(&rows, &mut state, &input, &mut gpu_out, 1, 256, 1.0);
/// let mut cpu_out = input.clone();
/// cpu.process(&mut [&mut cpu_out[..]]);
/// if fused_multiply_add() {
///     assert_eq!(gpu_out, cpu_out); // bit for bit
/// }
/// assert!(gpu_out.iter().zip(&cpu_out).all(|(g, c)| (g - c).abs() < 1e-6));
/// ```
pub fn emulate(
    coeffs: &[[f64; 5]],
    state: &mut [f64],
    input: &[f32],
    output: &mut [f32],
    channels: usize,
    frames: usize,
    gain: f64,
) {
    let sections = coeffs.len();
    for ch in 0..channels {
        let my_state = &mut state[ch * sections * 2..(ch + 1) * sections * 2];
        let mut st = [0.0f64; 2 * MAX_ENGINE_SECTIONS];
        st[..2 * sections].copy_from_slice(my_state);
        let inp = &input[ch * frames..(ch + 1) * frames];
        let out = &mut output[ch * frames..(ch + 1) * frames];
        for (o, &i) in out.iter_mut().zip(inp) {
            let mut x = f64::from(i);
            for (k, c) in coeffs.iter().enumerate() {
                let old = st[2 * k];
                let y = c[0].mul_add(x, old);
                st[2 * k] = (-c[1]).mul_add(old, c[3].mul_add(x, st[2 * k + 1]));
                st[2 * k + 1] = (-c[2]).mul_add(old, c[4] * x);
                x = y;
            }
            let v = (x * gain) as f32;
            let m = v.abs();
            *o = if (crate::dsp::FLUSH_BELOW_F32..=f32::MAX).contains(&m) {
                v
            } else {
                0.0
            };
        }
        for (dst, &v) in my_state.iter_mut().zip(&st[..2 * sections]) {
            *dst = crate::dsp::sanitize_state(v);
        }
    }
}

/// Most cascades an [`EngineCascade`] runs end to end.
pub const MAX_ENGINE_PARTS: usize = 8;

/// The identity section's row (`y = x`).
const IDENTITY_ROW: [f64; 5] = [1.0, 0.0, 0.0, 0.0, 0.0];

/// The one adapter between CPU filter cascades and a [`CascadeEngine`]: runs one or more SOS
/// cascades (the *parts*, laid end to end: their sections together are the engine's) on the
/// engine, a part that is off as identity sections. Coefficient changes are uploaded as they
/// happen; the filter state moves to the engine when it takes over and back into the parts
/// when it hands over ([`Self::hand_back`]), so switching between the two never clicks; when
/// the engine fails, the parts restart from silence and the engine is not used again. The
/// chain's offloaded filters and the plugin's GPU mode both run on it. Never allocates after
/// construction.
pub struct EngineCascade {
    engine: Box<dyn CascadeEngine>,
    rows: Vec<[f64; 5]>,
    uploaded: Vec<[f64; 5]>,
    /// The fused state in the kernel's layout, for the moves.
    state: Vec<f64>,
    /// The engine's state is the live one (the parts' is stale).
    holds_state: bool,
    /// Which parts the engine runs with their state (the others are identity sections).
    ran: [bool; MAX_ENGINE_PARTS],
    /// Steps the engine ran since [`Self::take_steps`].
    steps: u64,
    /// The engine's first error.
    error: Option<String>,
}

impl EngineCascade {
    /// An adapter for `engine`, built for `sections` sections in all.
    pub fn new(engine: Box<dyn CascadeEngine>, sections: usize) -> Self {
        let (channels, _) = engine.shape();
        Self {
            engine,
            rows: vec![IDENTITY_ROW; sections],
            // Not a row: the first run uploads the parts' coefficients.
            uploaded: vec![[f64::NAN; 5]; sections],
            state: vec![0.0; sections * 2 * channels],
            holds_state: false,
            ran: [false; MAX_ENGINE_PARTS],
            steps: 0,
            error: None,
        }
    }

    /// `(channels, frames)` of the engine's chunks.
    pub fn shape(&self) -> (usize, usize) {
        self.engine.shape()
    }

    /// Where the engine runs (its [`CascadeEngine::describe`]).
    pub fn describe(&self) -> String {
        self.engine.describe()
    }

    /// The engine's first error: it has not been used since.
    pub fn error(&self) -> Option<&str> {
        self.error.as_deref()
    }

    /// Steps the engine ran since the last call.
    pub fn take_steps(&mut self) -> u64 {
        std::mem::take(&mut self.steps)
    }

    /// The parts' state is the live one again (they were reset, say): the next run takes it
    /// over from them.
    pub fn forget_state(&mut self) {
        self.holds_state = false;
    }

    /// Runs `block` (the engine's channels, up to its frames) through `parts` on the engine,
    /// `on[i]` false running part `i` as identity sections; the first run after the parts
    /// held the state moves it over. False, with the parts reset (the device's state is
    /// lost) and the engine retired, when the engine fails or the parts do not fit it: the
    /// caller then runs them on the CPU. Never allocates.
    pub fn run(
        &mut self,
        parts: &mut [&mut SosCascade],
        on: &[bool],
        block: &mut [&mut [f32]],
    ) -> bool {
        if self.error.is_some() {
            return false;
        }
        let total: usize = parts.iter().map(|p| p.len()).sum();
        if total != self.rows.len() || parts.len() > MAX_ENGINE_PARTS {
            self.error = Some(format!(
                "{} cascades of {total} sections do not fit an engine of {} sections",
                parts.len(),
                self.rows.len()
            ));
            parts.iter_mut().for_each(|p| p.reset());
            return false;
        }
        let mut offset = 0;
        for (i, part) in parts.iter().enumerate() {
            let rows = &mut self.rows[offset..offset + part.len()];
            if on.get(i).copied().unwrap_or(true) {
                part.write_coefficient_rows(rows);
            } else {
                rows.fill(IDENTITY_ROW);
            }
            offset += part.len();
        }
        let ran = self.run_engine(parts, on, block);
        match ran {
            Ok(()) => {
                self.steps += 1;
                true
            }
            Err(e) => {
                // The device's state is lost: the CPU goes on from silence.
                self.error = Some(e.to_string());
                self.holds_state = false;
                parts.iter_mut().for_each(|p| p.reset());
                false
            }
        }
    }

    fn run_engine(
        &mut self,
        parts: &[&mut SosCascade],
        on: &[bool],
        block: &mut [&mut [f32]],
    ) -> Result<()> {
        if self.rows != self.uploaded {
            self.engine.set_coefficients(&self.rows)?;
            self.uploaded.copy_from_slice(&self.rows);
        }
        if !self.holds_state {
            self.state.fill(0.0);
            let total = self.rows.len();
            let mut offset = 0;
            for (i, part) in parts.iter().enumerate() {
                let part_on = on.get(i).copied().unwrap_or(true);
                if part_on {
                    part.export_state(&mut self.state, total, offset);
                }
                self.ran[i] = part_on;
                offset += part.len();
            }
            self.engine.load_state(&self.state)?;
            self.holds_state = true;
        }
        self.engine.run(block)
    }

    /// When the engine holds the live state, moves it back into the parts it ran (the same
    /// parts as in [`Self::run`]); on an engine error those restart from silence and the
    /// engine is not used again.
    pub fn hand_back(&mut self, parts: &mut [&mut SosCascade]) {
        if !self.holds_state {
            return;
        }
        self.holds_state = false;
        match self.engine.store_state(&mut self.state) {
            Ok(()) => {
                let total = self.rows.len();
                let mut offset = 0;
                for (part, &ran) in parts.iter_mut().zip(&self.ran) {
                    if ran {
                        part.import_state(&self.state, total, offset);
                    }
                    offset += part.len();
                }
            }
            Err(e) => {
                self.error = Some(e.to_string());
                parts.iter_mut().for_each(|p| p.reset());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dsp::filter::design::{BandType, Family, design_iir};
    use crate::dsp::filter::sos::{SosCascade, fused_multiply_add};

    fn noise(n: usize, seed: u32) -> Vec<f32> {
        crate::dsp::noise::noise(n, u64::from(seed), 0.5)
    }

    /// A fused cascade like the guitar chain's: high-pass order 2, low-pass order 4, and an
    /// elliptic section set.
    fn cascade(channels: usize) -> SosCascade {
        let mut sections = Vec::new();
        for (family, band, order, cutoff) in [
            (Family::Butterworth, BandType::Highpass, 2, 80.0),
            (Family::Butterworth, BandType::Lowpass, 4, 8000.0),
            (
                Family::Elliptic {
                    ripple_db: 0.5,
                    attenuation_db: 60.0,
                },
                BandType::Lowpass,
                5,
                12_000.0,
            ),
        ] {
            sections
                .extend_from_slice(design_iir(family, band, order, cutoff, 48_000.0).as_slice());
        }
        SosCascade::new(&sections, channels)
    }

    /// Bit for bit where the CPU cascade fuses its multiply-adds as the kernel does; within
    /// f32 rounding of the last bits otherwise.
    fn assert_same_as_cpu(gpu: &[f32], cpu: &[f32], channels: usize, chunk: usize) {
        if fused_multiply_add() {
            assert_eq!(gpu, cpu, "{channels} channels, chunk {chunk}");
        } else {
            for (i, (g, c)) in gpu.iter().zip(cpu).enumerate() {
                assert!(
                    (g - c).abs() <= 1e-6 * c.abs().max(1e-3),
                    "{channels} channels, chunk {chunk}, sample {i}: {g} vs {c}"
                );
            }
        }
    }

    #[test]
    fn emulation_equals_the_cpu_cascade_bit_for_bit_across_chunks() {
        for channels in [1, 2, 5] {
            let mut cpu = cascade(channels);
            let rows = cpu.coefficient_rows();
            let mut state = vec![0.0; rows.len() * 2 * channels];
            for (chunk, frames) in [512usize, 64, 4096, 1].into_iter().enumerate() {
                let planar: Vec<Vec<f32>> = (0..channels)
                    .map(|c| noise(frames, (chunk * 10 + c) as u32))
                    .collect();
                let flat: Vec<f32> = planar.concat();
                let mut gpu_out = vec![0.0f32; flat.len()];
                emulate(
                    &rows,
                    &mut state,
                    &flat,
                    &mut gpu_out,
                    channels,
                    frames,
                    1.5,
                );
                let mut cpu_out = planar.clone();
                let mut views: Vec<&mut [f32]> = cpu_out.iter_mut().map(|c| &mut c[..]).collect();
                cpu.process_scaled(&mut views, 1.5);
                assert_same_as_cpu(&gpu_out, &cpu_out.concat(), channels, chunk);
            }
        }
    }

    #[test]
    fn emulation_cleans_nan_and_subnormals_like_the_cpu() {
        let mut cpu = cascade(1);
        let rows = cpu.coefficient_rows();
        let mut state = vec![0.0; rows.len() * 2];
        let mut input = noise(256, 3);
        input[10] = f32::NAN;
        let mut out = vec![0.0f32; 256];
        emulate(&rows, &mut state, &input, &mut out, 1, 256, 1.0);
        assert!(out.iter().all(|v| v.is_finite()));
        assert!(
            state.iter().all(|&v| v == 0.0),
            "NaN state is cleared at the chunk end"
        );
        let mut cpu_out = input.clone();
        cpu.process(&mut [&mut cpu_out[..]]);
        assert_same_as_cpu(&out, &cpu_out, 1, 0);
        // Silence afterwards: nothing subnormal, state decays to exact zeros.
        let silence = vec![0.0f32; 48_000];
        let mut out = vec![1.0f32; 48_000];
        emulate(&rows, &mut state, &silence, &mut out, 1, 48_000, 1.0);
        assert!(out.iter().all(|v| *v == 0.0 || v.is_normal()));
    }
}

//! The CUDA kernel of the GPU runner, and a CPU emulation of its exact arithmetic.
//!
//! Thread mapping: one thread per channel runs every section of the cascade over the whole
//! chunk, in time order. An IIR filter is a recursion in time, so the only free parallelism is
//! across channels (and, with more work, across sections as a wavefront, or over time as a
//! parallel scan of the sections' 2×2 state matrices). For audio chunks (64–4096 frames,
//! 1–64 channels) the cost of a graph replay is dominated by its fixed launch and copy
//! overhead, not by this loop, so the simple mapping wins; a scan only pays for chunks of
//! hundreds of thousands of frames.
//!
//! Arithmetic: the kernel does what [`SosCascade`](crate::dsp::filter::sos::SosCascade) does,
//! operation for operation: `f64` transposed direct form II with the output substituted into
//! the state updates, with the multiply-adds fused: `y = fma(b0, x, s1)`,
//! `s1' = fma(−a1, s1, fma(k1, x, s2))`, `s2' = fma(−a2, s1, k2·x)`
//! (k1 = b1 − a1·b0, k2 = b2 − a2·b0), output `(y·gain) as f32` written as 0 when
//! it is non-finite or below 1e-30 in magnitude, state words cleaned the same way at the end of
//! the chunk. The fusions are explicit `fma()` calls and the source is compiled with
//! `--fmad=false`, so NVRTC fuses nothing else. IEEE `f64` FMA rounds once on every device, so
//! the GPU's output is bit-identical to the CPU's on a CPU with FMA
//! ([`fused_multiply_add`](crate::dsp::filter::sos::fused_multiply_add); any x86-64 since
//! 2013), and within a few ulps of it on one without. [`emulate`] runs the same loops on the
//! CPU (with `f64::mul_add`, exact on any CPU) and is tested against `SosCascade`, so the
//! algorithm is proven before the kernel ever meets a device.

/// Name of the kernel's entry point.
pub const KERNEL_NAME: &str = "sos_cascade";

/// Most sections the kernel holds in registers (the runner refuses more).
pub const MAX_SECTIONS: usize = 64;

/// CUDA C source of the kernel. Buffers are planar: `input[ch * frames + n]`; `coeffs` holds
/// `[b0, a1, a2, k1, k2]` per section; `state` holds `[s1, s2]` per section per channel.
pub const SOURCE: &str = r#"
#define MAX_SECTIONS 64
#define FLUSH_BELOW 1e-30
#define FLUSH_BELOW_F 1e-30f
#define F32_MAX 3.40282346638528859812e+38f
#define F64_MAX 1.7976931348623157e+308

extern "C" __global__ void sos_cascade(
    const float* __restrict__ input,
    float* __restrict__ output,
    const double* __restrict__ coeffs,
    double* __restrict__ state,
    int sections,
    int channels,
    int frames,
    double gain)
{
    int ch = blockIdx.x * blockDim.x + threadIdx.x;
    if (ch >= channels || sections > MAX_SECTIONS) {
        return;
    }
    double st[2 * MAX_SECTIONS];
    double* my_state = state + (size_t)ch * sections * 2;
    for (int i = 0; i < 2 * sections; ++i) {
        st[i] = my_state[i];
    }
    const float* in = input + (size_t)ch * frames;
    float* out = output + (size_t)ch * frames;
    for (int n = 0; n < frames; ++n) {
        double x = (double)in[n];
        for (int k = 0; k < sections; ++k) {
            const double* c = coeffs + 5 * k;
            double old = st[2 * k];
            double y = fma(c[0], x, old);
            st[2 * k] = fma(-c[1], old, fma(c[3], x, st[2 * k + 1]));
            st[2 * k + 1] = fma(-c[2], old, c[4] * x);
            x = y;
        }
        float v = (float)(x * gain);
        float m = fabsf(v);
        out[n] = (m >= FLUSH_BELOW_F && m <= F32_MAX) ? v : 0.0f;
    }
    for (int i = 0; i < 2 * sections; ++i) {
        double v = st[i];
        double m = fabs(v);
        my_state[i] = (m < FLUSH_BELOW || !(m <= F64_MAX)) ? 0.0 : v;
    }
}
"#;

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
/// use rtfx::gpu::kernel::emulate;
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
        let mut st = [0.0f64; 2 * MAX_SECTIONS];
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dsp::filter::design::{BandType, Family, design_iir};
    use crate::dsp::filter::sos::{SosCascade, fused_multiply_add};

    fn noise(n: usize, seed: u32) -> Vec<f32> {
        let mut s = seed.wrapping_mul(2_654_435_761).wrapping_add(1);
        (0..n)
            .map(|_| {
                s = s.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
                (s >> 8) as f32 / 16_777_216.0 - 0.5
            })
            .collect()
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

    #[test]
    fn the_source_states_the_same_limits_as_the_emulation() {
        assert!(SOURCE.contains(&format!("#define MAX_SECTIONS {MAX_SECTIONS}")));
        assert!(SOURCE.contains(&format!("void {KERNEL_NAME}(")));
        assert!(SOURCE.contains("#define FLUSH_BELOW 1e-30"));
        assert_eq!(crate::dsp::FLUSH_BELOW, 1e-30);
    }
}

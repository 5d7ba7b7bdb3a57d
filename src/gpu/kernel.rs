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
//! 2013), and within a few ulps of it on one without. [`emulate`](crate::dsp::filter::engine::emulate) runs the same loops on the
//! CPU (with `f64::mul_add`, exact on any CPU) and is tested against `SosCascade`, so the
//! algorithm is proven before the kernel ever meets a device.

/// Name of the kernel's entry point.
pub const KERNEL_NAME: &str = "sos_cascade";

/// Most sections the kernel holds in registers (the runner refuses more): the limit every
/// cascade engine shares.
pub const MAX_SECTIONS: usize = crate::dsp::filter::engine::MAX_ENGINE_SECTIONS;

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_source_states_the_same_limits_as_the_emulation() {
        assert!(SOURCE.contains(&format!("#define MAX_SECTIONS {MAX_SECTIONS}")));
        assert!(SOURCE.contains(&format!("void {KERNEL_NAME}(")));
        assert!(SOURCE.contains("#define FLUSH_BELOW 1e-30"));
        assert_eq!(crate::dsp::FLUSH_BELOW, 1e-30);
    }
}

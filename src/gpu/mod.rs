//! GPU offload of the SOS cascade (torchfx 0.8.0's `CudaGraphRunner`), behind the `cuda`
//! feature.
//!
//! - [`kernel`] (always built): the CUDA kernel's source. Its exact arithmetic on the CPU, and
//!   the engine trait every cascade engine implements, are plain DSP in
//!   [`crate::dsp::filter::engine`].
//! - `CudaGraphRunner` (feature `cuda`): compiles the kernel with NVRTC, captures
//!   copy in → kernel → copy out into a CUDA graph and replays it per chunk, with the filter
//!   state kept on the device.
//! - [`leading_filters`] (always built): runs the filters a chain starts with on a cascade engine (the
//!   runner, or the kernel's CPU emulation in tests); `rtfx live --device cuda` uses it.
//!
//! cudarc loads the driver and NVRTC at run time, so `--features cuda` builds without a CUDA
//! toolkit; without a driver or device every entry point returns
//! [`Error::BackendNotAvailable`](crate::Error::BackendNotAvailable) instead of panicking.

pub mod kernel;
pub mod leading_filters;

#[cfg(feature = "cuda")]
mod runner;

#[cfg(feature = "cuda")]
pub use runner::{CudaGraphRunner, compile_kernel, cuda_device_name};

use crate::error::Result;

/// The CUDA device rtfx would use, or why there is none (built without `cuda`, no driver, no
/// device).
pub fn cuda_available() -> Result<String> {
    #[cfg(feature = "cuda")]
    {
        cuda_device_name()
    }
    #[cfg(not(feature = "cuda"))]
    {
        Err(crate::error::Error::backend_not_available("cuda")
            .with_message("This rtfx was built without the `cuda` feature")
            .with_suggestion("rebuild with `cargo build --release --features cuda`"))
    }
}

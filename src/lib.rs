//! # rtfx
//!
//! A real-time audio effects engine: the DSP core of the rtfx VST3/CLAP plugin, standalone
//! app, live processor and offline renderer. It re-implements the real-time module of torchfx
//! 0.8.0 (see the README for where it deliberately differs).
//!
//! Layers point one way: the binary and the plugin use `realtime`/`offline`/`gpu`, which use
//! [`dsp`]. The [`dsp`] module is pure: planar `f32` slices in and out.
//!
//! ```
//! use rtfx::dsp::spec::parse_chain;
//!
//! // High-pass at 80 Hz, low-pass at 8 kHz, then 1.5x gain, like `rtfx render -e ...`.
//! let mut chain = parse_chain(&["hibutterworth:80,order=2", "lobutterworth:8000,order=4", "gain:1.5"]).unwrap();
//! chain.prepare(48000.0, 512, 2).unwrap();
//! let mut left = vec![0.0f32; 512];
//! let mut right = vec![0.0f32; 512];
//! left[0] = 1.0;
//! chain.process(&mut [&mut left[..], &mut right[..]]);
//! assert!(left.iter().all(|x| x.is_finite()));
//! assert!(right.iter().all(|&x| x == 0.0));
//! ```

pub mod dsp;
pub mod error;
pub mod gpu;
pub mod offline;
pub mod plugin;
pub mod realtime;

pub use error::{Error, ErrorDetails, Result};

//! Offline processing: files in, files out, through the same [`Chain`](crate::dsp::chain::Chain)
//! the plugin and the live processor run.
//!
//! - [`audio_io`]: decoding (lean WAV reader, symphonia for the rest) and encoding (WAV, FLAC),
//!   dither and clip counting.
//! - [`convert`]: sample-rate (libsoxr) and channel conversion.
//! - [`system_library`]: libraries loaded at run time (libsoxr, LAME, libopusenc).
//! - [`manifest`]: render manifests (JSON Lines, CSV) and shards.
//! - [`provenance`]: per-item records of what was rendered, and resuming from them.
//! - [`stream`]: [`StreamProcessor`](stream::StreamProcessor), torchfx's chunked file
//!   processor with state carried across chunks.
//! - [`render`]: one file end to end with tails, latency compensation, normalisation and the
//!   no-data-loss rules.
//! - [`stats`]: a file's levels and loudness in one streaming pass (`rtfx stats`).

pub mod audio_io;
pub mod convert;
pub mod manifest;
pub mod provenance;
pub mod render;
pub mod stats;
pub mod stream;
pub mod system_library;

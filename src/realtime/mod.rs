//! Real-time processing (torchfx `torchfx.realtime`): stream configuration, a lock-free
//! multichannel ring buffer, audio backends (cpal and a deterministic test backend) and
//! [`RealtimeProcessor`], which runs a [`crate::dsp::Chain`] on a backend with the DSP off the
//! audio thread.
//!
//! Layering: this module uses [`crate::dsp`]; `dsp` knows nothing of it.

pub mod backend;
pub mod config;
pub mod cpal_backend;
pub mod metrics;
pub mod processor;
pub mod ring;
pub mod worker;

pub use backend::{
    AudioBackend, AudioCallback, BlockAdapter, DeviceInfo, TestBackend, TestCounts, TestDriver,
};
pub use config::{
    BackendStatus, DeviceSelector, Latency, StreamConfig, StreamDirection, StreamState,
};
pub use cpal_backend::CpalBackend;
pub use metrics::{LatencyLog, LatencyStats};
pub use processor::{ProcessorOptions, ProcessorStats, RealtimeProcessor};
pub use ring::{RingConsumer, RingProducer, ring_buffer};

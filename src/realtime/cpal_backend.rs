//! cpal
pub struct CpalBackend;

//! FLAC encoding through flacenc, block by block, so memory stays flat.

use std::io::Write;

use crate::error::{Error, Result};

pub(super) struct FlacState {
    pub(super) config: flacenc::error::Verified<flacenc::config::Encoder>,
    pub(super) stream_info: flacenc::component::StreamInfo,
    pub(super) framebuf: flacenc::source::FrameBuf,
    pub(super) context: flacenc::source::Context,
    pub(super) block: usize,
    pub(super) channels: usize,
    pub(super) pending: Vec<i32>,
    pub(super) sink: flacenc::bitsink::MemSink<u8>,
}

/// FLAC block size in frames (the reference encoder's default).
pub(super) const FLAC_BLOCK: usize = 4096;
impl FlacState {
    pub(super) fn new(sample_rate: u32, channels: usize, bits: usize) -> Result<Self> {
        use flacenc::error::Verify;
        let fail = |what: String| {
            Error::format(format!("Cannot start the FLAC encoder: {what}"))
                .with_suggestion("write a .wav instead")
        };
        let mut config = flacenc::config::Encoder::default();
        // flacenc 0.5.1's fixed-predictor search blows up on some signals (hundreds of MB
        // per minute of pink noise, and bloated frames); LPC alone compresses better anyway.
        config.subframe_coding.use_fixed = false;
        let config = config
            .into_verified()
            .map_err(|(_, e)| fail(e.to_string()))?;
        let mut stream_info =
            flacenc::component::StreamInfo::new(sample_rate as usize, channels, bits)
                .map_err(|e| fail(e.to_string()))?;
        stream_info
            .set_block_sizes(FLAC_BLOCK, FLAC_BLOCK)
            .map_err(|e| fail(e.to_string()))?;
        let framebuf = flacenc::source::FrameBuf::with_size(channels, FLAC_BLOCK)
            .map_err(|e| fail(e.to_string()))?;
        Ok(FlacState {
            config,
            stream_info,
            framebuf,
            context: flacenc::source::Context::new(bits, channels),
            block: FLAC_BLOCK,
            channels,
            pending: Vec::with_capacity(FLAC_BLOCK * channels),
            sink: flacenc::bitsink::MemSink::new(),
        })
    }

    /// Frames gathered for the next FLAC frame.
    pub(super) fn filled(&self) -> usize {
        self.pending.len() / self.channels
    }

    pub(super) fn push(&mut self, interleaved: &[i32]) {
        self.pending.extend_from_slice(interleaved);
    }

    /// Encodes the gathered frames as one FLAC frame and writes it.
    pub(super) fn encode_block<W: Write>(&mut self, out: &mut W) -> Result<()> {
        use flacenc::component::BitRepr;
        use flacenc::source::Fill;
        let fail = |e: String| Error::format(format!("FLAC encoding failed: {e}"));
        // Both fills overwrite: the frame buffer from its start, the context adds one frame.
        self.framebuf
            .fill_interleaved(&self.pending)
            .map_err(|e| fail(e.to_string()))?;
        self.context
            .fill_interleaved(&self.pending)
            .map_err(|e| fail(e.to_string()))?;
        self.pending.clear();
        let number = self.context.current_frame_number().unwrap_or(0);
        let frame = flacenc::encode_fixed_size_frame(
            &self.config,
            &self.framebuf,
            number,
            &self.stream_info,
        )
        .map_err(|e| fail(e.to_string()))?;
        self.stream_info.update_frame_info(&frame);
        self.sink.clear();
        frame
            .write(&mut self.sink)
            .map_err(|e| fail(e.to_string()))?;
        out.write_all(self.sink.as_slice()).map_err(|e| {
            Error::io(format!("Cannot write output: {e}"), "output")
                .with_suggestion("check free disk space and permissions of the output directory")
        })
    }

    pub(super) fn finalize(&mut self) {
        // Fixed-block streams declare the block size as both minimum and maximum; the last,
        // shorter block does not count (as the reference encoder writes it).
        let _ = self.stream_info.set_block_sizes(FLAC_BLOCK, FLAC_BLOCK);
        self.stream_info.set_md5_digest(&self.context.md5_digest());
        self.stream_info
            .set_total_samples(self.context.total_samples());
    }

    pub(super) fn header_bytes(&self) -> Result<Vec<u8>> {
        use flacenc::component::BitRepr;
        let stream = flacenc::component::Stream::with_stream_info(self.stream_info.clone());
        let mut sink = flacenc::bitsink::MemSink::<u8>::new();
        stream
            .write(&mut sink)
            .map_err(|e| Error::format(format!("FLAC header failed: {e}")))?;
        Ok(sink.as_slice().to_vec())
    }
}

//! `StreamProcessor`: a chain over audio files, chunk by chunk, with flat memory.
//!
//! # The overlap rule
//! torchfx re-feeds the last `overlap` input samples of each chunk as left context and drops
//! their output; with stateful effects (IIR filters, reverb, delay, dynamics) that processes
//! those samples twice and corrupts the state. Here every effect carries its state across
//! chunks, so no context is ever needed: `overlap` only shortens the hop (each chunk reads
//! `chunk_size - overlap` new frames), no sample is processed twice, and the output equals
//! one-shot processing of the whole decoded signal — bit-exact for float WAV.
//!
//! ```no_run
//! use rtfx::dsp::spec::parse_chain;
//! use rtfx::offline::stream::StreamProcessor;
//! use rtfx::offline::audio_io::AudioReader;
//!
//! let chain = parse_chain(&["hibutterworth:80,order=2", "gain:1.5"])?;
//! let mut processor = StreamProcessor::new(chain, 65536, 0)?;
//! let mut reader = AudioReader::open("in.wav".as_ref(), Default::default())?;
//! for chunk in processor.process_chunks(&mut reader)? {
//!     let chunk = chunk?;
//!     println!("{} channels x {} frames", chunk.len(), chunk[0].len());
//! }
//! # Ok::<(), rtfx::Error>(())
//! ```

use crate::dsp::chain::{Chain, in_effect};
use crate::error::{Error, Result};

use crate::offline::audio_io::AudioReader;

/// Largest block the chain is prepared for; longer chunks are processed in pieces of this
/// size (output is the same, and the working set stays in cache).
pub const PROCESS_BLOCK: usize = 8192;

/// Rebuilds a chain for a file's sample rate, largest block and channel count before it is
/// prepared, e.g. to move its filters onto a GPU (`rtfx render --device cuda`); `Ok(None)`
/// keeps the chain as it is. Arguments: the chain, rate, largest block, channels.
pub type ChainAdapter = Box<dyn FnMut(&Chain, u32, usize, usize) -> Result<Option<Chain>> + Send>;

/// Runs a [`Chain`] over files chunk by chunk (torchfx `StreamProcessor`).
pub struct StreamProcessor {
    chain: Chain,
    chunk_size: usize,
    overlap: usize,
    configured: Option<(u32, usize)>,
    /// The adapter and the chain as given, which it adapts for each new file shape.
    adapter: Option<(ChainAdapter, Chain)>,
}

impl StreamProcessor {
    /// torchfx's default chunk size in frames.
    pub const DEFAULT_CHUNK_SIZE: usize = 65536;
    /// Largest chunk size: 2^20 frames (about 22 s at 48 kHz). The renderer keeps a few chunks
    /// in flight, so this bounds its memory (32 MiB a chunk in stereo) before anything is
    /// allocated.
    pub const MAX_CHUNK_SIZE: usize = 1 << 20;

    /// A processor reading `chunk_size` frames at a time (`overlap` frames fewer after the
    /// first; see the module docs). Fails on `chunk_size == 0` or `overlap >= chunk_size`, and
    /// on effects that would change the length of a chunk (none in the registry do; the
    /// check names the culprit).
    pub fn new(chain: Chain, chunk_size: usize, overlap: usize) -> Result<Self> {
        Self::check_chunking(chunk_size, overlap)?;
        Ok(StreamProcessor {
            chain,
            chunk_size,
            overlap,
            configured: None,
            adapter: None,
        })
    }

    /// Checks a chunk size and overlap the way [`Self::new`] does, without a chain: the chunk
    /// size must be in 1..=[`Self::MAX_CHUNK_SIZE`] and the overlap smaller than it.
    ///
    /// ```
    /// use rtfx::offline::stream::StreamProcessor;
    /// assert!(StreamProcessor::check_chunking(65536, 0).is_ok());
    /// assert!(StreamProcessor::check_chunking(1024, 1024).is_err());
    /// assert!(StreamProcessor::check_chunking(usize::MAX, 0).is_err());
    /// ```
    pub fn check_chunking(chunk_size: usize, overlap: usize) -> Result<()> {
        if !(1..=Self::MAX_CHUNK_SIZE).contains(&chunk_size) {
            return Err(Error::invalid_range(
                "Chunk size is out of range",
                "chunk_size",
                chunk_size,
            )
            .with_expected(format!("1 to {} frames", Self::MAX_CHUNK_SIZE))
            .with_suggestion(
                "use the default of 65536: the output is the same for any chunk size",
            ));
        }
        if overlap >= chunk_size {
            return Err(Error::invalid_range(
                format!("Overlap ({overlap}) must be less than chunk_size ({chunk_size})"),
                "overlap",
                overlap,
            )
            .with_suggestion("use overlap 0: effects carry their state across chunks"));
        }
        Ok(())
    }

    /// Has `adapter` rebuild the chain whenever a file of another rate or channel count is
    /// configured. Parameter changes through [`Self::chain_mut`] then last until the next
    /// such file.
    pub fn with_adapter(mut self, adapter: ChainAdapter) -> Self {
        self.adapter = Some((adapter, self.chain.clone()));
        self
    }

    /// Frames read per chunk (the first chunk).
    pub fn chunk_size(&self) -> usize {
        self.chunk_size
    }

    /// Frames by which later chunks are shorter (see the module docs).
    pub fn overlap(&self) -> usize {
        self.overlap
    }

    /// New frames read per chunk after the first.
    pub fn hop(&self) -> usize {
        self.chunk_size - self.overlap
    }

    /// Frames to read for each chunk in turn: [`Self::chunk_size`] for the first, then
    /// [`Self::hop`] (the one place this rule is written; the renderer reads the same way).
    pub fn read_sizes(&self) -> ReadSizes {
        std::iter::once(self.chunk_size).chain(std::iter::repeat(self.hop()))
    }

    /// The chain.
    pub fn chain(&self) -> &Chain {
        &self.chain
    }

    /// The chain, for parameter changes between files.
    pub fn chain_mut(&mut self) -> &mut Chain {
        &mut self.chain
    }

    /// Clears every effect's state (each file starts clean anyway).
    pub fn reset_state(&mut self) {
        self.chain.reset();
    }

    /// Prepares the chain for a file of this rate and channel count and clears its state.
    ///
    /// A frequency parameter at or above the file's Nyquist frequency is an error (as in
    /// torchfx) rather than being clamped: a renderer should not silently change the sound.
    pub fn configure(&mut self, sample_rate: u32, channels: usize) -> Result<()> {
        check_nyquist(&self.chain, sample_rate)?;
        if self.configured == Some((sample_rate, channels)) {
            self.chain.reset();
        } else {
            if let Some((adapt, source)) = self.adapter.as_mut() {
                self.chain = adapt(source, sample_rate, PROCESS_BLOCK, channels)?
                    .unwrap_or_else(|| source.clone());
            }
            self.chain
                .prepare(f64::from(sample_rate), PROCESS_BLOCK, channels)?;
            self.configured = Some((sample_rate, channels));
        }
        Ok(())
    }

    /// Processes one planar block in place (any length).
    pub fn process_block(&mut self, block: &mut [&mut [f32]]) {
        self.chain.process(block);
    }

    /// Configures for `reader`'s file and yields its processed chunks, lazily, as planar
    /// buffers. The pieces concatenate to exactly the file's length (no tail, no latency
    /// compensation: the renderer adds those).
    pub fn process_chunks<'a>(&'a mut self, reader: &'a mut AudioReader) -> Result<Chunks<'a>> {
        let info = reader.info().clone();
        self.configure(info.sample_rate, info.channels)?;
        Ok(Chunks {
            buf: vec![vec![0.0; self.chunk_size]; info.channels],
            sizes: self.read_sizes(),
            processor: self,
            reader,
            done: false,
        })
    }
}

/// Errors for any frequency parameter at or above Nyquist for `sample_rate`.
pub fn check_nyquist(chain: &Chain, sample_rate: u32) -> Result<()> {
    let nyquist = f64::from(sample_rate) / 2.0;
    for (i, fx) in chain.effects().iter().enumerate() {
        for info in fx.params().iter().filter(|p| p.unit == "Hz") {
            let Some(value) = fx.get_param(info.name) else {
                continue;
            };
            if value.is_finite() && value >= nyquist {
                let e = Error::invalid_parameter(
                    format!(
                        "{} ({value} Hz) must be below the Nyquist frequency ({nyquist} Hz) for \
                         sample rate {sample_rate} Hz",
                        info.name
                    ),
                    info.name,
                    value,
                )
                .with_suggestion("reduce the cutoff or use a higher sample rate");
                // "effect 1 ('fir'): …", parameter "1.cutoff", as the chain's own errors.
                return Err(in_effect(e, i, fx.name()));
            }
        }
    }
    Ok(())
}

/// The frames to read per chunk, from [`StreamProcessor::read_sizes`] (endless).
pub type ReadSizes = std::iter::Chain<std::iter::Once<usize>, std::iter::Repeat<usize>>;

/// Iterator over a file's processed chunks (see [`StreamProcessor::process_chunks`]).
pub struct Chunks<'a> {
    processor: &'a mut StreamProcessor,
    reader: &'a mut AudioReader,
    buf: Vec<Vec<f32>>,
    sizes: ReadSizes,
    done: bool,
}

impl Iterator for Chunks<'_> {
    type Item = Result<Vec<Vec<f32>>>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        let want = self.sizes.next().unwrap_or(0);
        for b in &mut self.buf {
            b.resize(want, 0.0);
        }
        let n = match self.reader.read(&mut self.buf) {
            Ok(n) => n,
            Err(e) => {
                self.done = true;
                return Some(Err(e));
            }
        };
        if n == 0 {
            self.done = true;
            return None;
        }
        let processor = &mut *self.processor;
        crate::dsp::with_planar_mut(&mut self.buf, 0..n, |block| processor.process_block(block));
        Some(Ok(self.buf.iter().map(|b| b[..n].to_vec()).collect()))
    }
}

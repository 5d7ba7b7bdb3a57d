//! `CudaGraphRunner`: a fixed-shape SOS cascade captured into a CUDA graph and replayed per
//! chunk (torchfx 0.8.0's `CudaGraphRunner`), through cudarc.
//!
//! The graph is `copy in (pinned host → device) → kernel → copy out (device → pinned host)`.
//! Coefficients and filter state live on the device; the state carries across replays, so
//! chunked output equals one-shot output. cudarc's automatic event tracking is turned off for
//! this context: its cross-stream events must not be recorded into the captured graph, and
//! every buffer here is used on the runner's one stream.
//!
//! The launch path is small on purpose: it is the only part this project's GPU-less machines
//! cannot exercise (see the README for what was verified where).

use std::sync::Arc;

use cudarc::driver::{
    CudaContext, CudaFunction, CudaGraph, CudaSlice, CudaStream, DevicePtr, DevicePtrMut,
    DriverError, PinnedHostSlice, result, sys,
};
use cudarc::nvrtc::{CompileOptions, compile_ptx_with_opts};

use super::kernel::{KERNEL_NAME, MAX_SECTIONS, SOURCE};
use crate::dsp::filter::sos::SosCascade;
use crate::error::{Error, Result};

/// Threads per block: channels beyond this use more blocks.
const BLOCK_THREADS: u32 = 64;

/// The error for a failed CUDA call.
fn cuda_error(what: &'static str) -> impl Fn(DriverError) -> Error {
    move |e| {
        Error::backend_not_available("cuda")
            .with_message(format!("CUDA {what} failed: {e}"))
            .with_suggestion("check the NVIDIA driver and GPU (nvidia-smi), or use the CPU")
    }
}

/// Opens device 0's context after checking that the driver library can be loaded: cudarc
/// panics when `libcuda` is missing, so this comes before any driver call.
fn open_context() -> Result<Arc<CudaContext>> {
    // SAFETY: only tries to dlopen the driver library.
    if !unsafe { sys::is_culib_present() } {
        return Err(Error::backend_not_available("cuda")
            .with_message("The CUDA driver (libcuda.so) is not installed")
            .with_suggestion("install the NVIDIA driver for a CUDA GPU, or use the CPU"));
    }
    CudaContext::new(0).map_err(cuda_error("device initialisation"))
}

/// Checks that the CUDA driver can be loaded and a device opened; returns the device's name.
pub fn cuda_device_name() -> Result<String> {
    open_context()?.name().map_err(cuda_error("device query"))
}

/// Compiles the kernel to PTX with NVRTC (`--fmad=false`: only the source's explicit `fma` calls are fused; see [`super::kernel`]).
pub fn compile_kernel() -> Result<cudarc::nvrtc::Ptx> {
    // SAFETY: only tries to dlopen the NVRTC library.
    if !unsafe { cudarc::nvrtc::sys::is_culib_present() } {
        return Err(Error::backend_not_available("nvrtc")
            .with_message("The CUDA runtime compiler (libnvrtc.so) is not installed")
            .with_suggestion(
                "pip install nvidia-cuda-nvrtc-cu12 (a version no newer than the driver's CUDA \
                 version, see nvidia-smi) and add its nvidia/cuda_nvrtc/lib directory to \
                 LD_LIBRARY_PATH, or install the CUDA toolkit",
            ));
    }
    let options = CompileOptions {
        fmad: Some(false),
        name: Some("rtfx_sos_cascade.cu".into()),
        ..CompileOptions::default()
    };
    compile_ptx_with_opts(SOURCE, options).map_err(|e| {
        Error::backend_not_available("nvrtc")
            .with_message(format!("NVRTC could not compile the SOS kernel: {e}"))
    })
}

/// A fixed-shape SOS cascade replayed on the GPU as a CUDA graph.
pub struct CudaGraphRunner {
    // Dropped first: the graph refers to the buffers below.
    graph: Option<CudaGraph>,
    function: CudaFunction,
    coeffs: CudaSlice<f64>,
    state: CudaSlice<f64>,
    input_dev: CudaSlice<f32>,
    output_dev: CudaSlice<f32>,
    /// Owners of the pinned host buffers (freed on drop); used through the addresses below.
    _input_host: PinnedHostSlice<f32>,
    _output_host: PinnedHostSlice<f32>,
    /// The pinned buffers' addresses, taken once: cudarc's accessors wait on the buffers'
    /// events, which is illegal while a stream is being captured (the capture would fail
    /// with CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED), and costs a driver call per chunk.
    /// Valid as long as the buffers above (moving a `PinnedHostSlice` does not move its memory).
    host_in: *mut f32,
    host_out: *mut f32,
    stream: Arc<CudaStream>,
    sections: usize,
    channels: usize,
    frames: usize,
}

impl CudaGraphRunner {
    /// Uploads `cascade`'s coefficients and a zeroed state for `channels × frames` chunks,
    /// compiles the kernel, runs it `warmup` times, clears the state and captures the graph.
    ///
    /// Fails with `BackendNotAvailable("cuda")` (or `"nvrtc"`) when the driver, a device or
    /// the compiler is missing — never a panic.
    pub fn new(
        cascade: &SosCascade,
        channels: usize,
        frames: usize,
        warmup: usize,
    ) -> Result<Self> {
        let rows = cascade.coefficient_rows();
        if rows.is_empty() || rows.len() > MAX_SECTIONS {
            return Err(Error::invalid_range(
                "The GPU runner needs 1 to 64 sections",
                "sections",
                rows.len(),
            )
            .with_suggestion("split long cascades, or run them on the CPU"));
        }
        if channels == 0 || frames == 0 {
            return Err(Error::invalid_range(
                format!("Cannot capture a {channels}x{frames} chunk"),
                "shape",
                format!("{channels}x{frames}"),
            )
            .with_expected("at least 1 channel and 1 frame"));
        }
        let ctx = open_context()?;
        let ptx = compile_kernel()?;
        // SAFETY: no other stream of this context uses these buffers (see the module docs).
        unsafe { ctx.disable_event_tracking() };
        let stream = ctx.new_stream().map_err(cuda_error("stream creation"))?;
        let module = ctx.load_module(ptx).map_err(cuda_error("module load"))?;
        let function = module
            .load_function(KERNEL_NAME)
            .map_err(cuda_error("kernel lookup"))?;
        let flat: Vec<f64> = rows.iter().flatten().copied().collect();
        let coeffs = stream.clone_htod(&flat).map_err(cuda_error("upload"))?;
        let n = channels * frames;
        let state = stream
            .alloc_zeros::<f64>(rows.len() * 2 * channels)
            .map_err(cuda_error("allocation"))?;
        let input_dev = stream
            .alloc_zeros::<f32>(n)
            .map_err(cuda_error("allocation"))?;
        let output_dev = stream
            .alloc_zeros::<f32>(n)
            .map_err(cuda_error("allocation"))?;
        // SAFETY: both host buffers are fully written before they are read. The output buffer
        // is not write-combined: the CPU reads it.
        let mut input_host =
            unsafe { ctx.alloc_pinned::<f32>(n) }.map_err(cuda_error("allocation"))?;
        let mut output_host = unsafe { ctx.alloc_pinned_with_flags::<f32>(n, 0) }
            .map_err(cuda_error("allocation"))?;
        let host_in = input_host.as_mut_ptr().map_err(cuda_error("host buffer"))?;
        let host_out = output_host
            .as_mut_ptr()
            .map_err(cuda_error("host buffer"))?;
        // SAFETY: `host_in` points to `n` pinned floats, nothing else refers to them yet.
        unsafe { std::slice::from_raw_parts_mut(host_in, n) }.fill(0.0);
        let mut runner = CudaGraphRunner {
            graph: None,
            function,
            coeffs,
            state,
            input_dev,
            output_dev,
            _input_host: input_host,
            _output_host: output_host,
            host_in,
            host_out,
            stream,
            sections: rows.len(),
            channels,
            frames,
        };
        for _ in 0..warmup {
            runner.enqueue(frames)?;
        }
        runner.reset_state()?;
        runner.capture()?;
        Ok(runner)
    }

    /// Channels and frames of the captured chunk.
    pub fn shape(&self) -> (usize, usize) {
        (self.channels, self.frames)
    }

    /// Enqueues copy in, kernel and copy out on the stream (captured, or eager).
    /// Enqueues for the first `frames` frames of each channel (planar with stride `frames`;
    /// at most the captured length).
    fn enqueue(&mut self, frames: usize) -> Result<()> {
        // The raw calls below need the context current on this thread (the runner may be
        // built on one thread and run on another).
        self.stream
            .context()
            .bind_to_thread()
            .map_err(cuda_error("context binding"))?;
        let cu_stream = self.stream.cu_stream();
        let (input_ptr, _r1) = self.input_dev.device_ptr(&self.stream);
        let (output_ptr, _r2) = self.output_dev.device_ptr_mut(&self.stream);
        let (coeffs_ptr, _r3) = self.coeffs.device_ptr(&self.stream);
        let (state_ptr, _r4) = self.state.device_ptr_mut(&self.stream);
        let (host_in, host_out) = (self.host_in.cast_const(), self.host_out);
        let n = self.channels * frames;
        let mut args = (
            input_ptr,
            output_ptr,
            coeffs_ptr,
            state_ptr,
            self.sections as i32,
            self.channels as i32,
            frames as i32,
            1.0f64,
        );
        let mut params: [*mut std::ffi::c_void; 8] = [
            &mut args.0 as *mut _ as *mut _,
            &mut args.1 as *mut _ as *mut _,
            &mut args.2 as *mut _ as *mut _,
            &mut args.3 as *mut _ as *mut _,
            &mut args.4 as *mut _ as *mut _,
            &mut args.5 as *mut _ as *mut _,
            &mut args.6 as *mut _ as *mut _,
            &mut args.7 as *mut _ as *mut _,
        ];
        let blocks = (self.channels as u32).div_ceil(BLOCK_THREADS);
        // SAFETY: the pinned host buffers and device buffers hold `n` values each and outlive
        // the stream's work (run() synchronises; Drop drops the graph before the buffers).
        // The parameter array matches the kernel's signature in kernel::SOURCE.
        unsafe {
            let host_in = std::slice::from_raw_parts(host_in, n);
            let host_out = std::slice::from_raw_parts_mut(host_out, n);
            result::memcpy_htod_async(input_ptr, host_in, cu_stream)
                .map_err(cuda_error("copy to the device"))?;
            result::launch_kernel(
                self.function.cu_function(),
                (blocks, 1, 1),
                (BLOCK_THREADS, 1, 1),
                0,
                cu_stream,
                &mut params,
            )
            .map_err(cuda_error("kernel launch"))?;
            result::memcpy_dtoh_async(host_out, output_ptr, cu_stream)
                .map_err(cuda_error("copy from the device"))?;
        }
        Ok(())
    }

    /// Captures copy in → kernel → copy out into a graph (again, after new coefficients).
    fn capture(&mut self) -> Result<()> {
        self.graph = None;
        self.stream
            .begin_capture(sys::CUstreamCaptureMode::CU_STREAM_CAPTURE_MODE_THREAD_LOCAL)
            .map_err(cuda_error("graph capture"))?;
        let enqueued = self.enqueue(self.frames);
        // End the capture whatever happened, so the stream is usable again.
        let graph = self
            .stream
            .end_capture(sys::CUgraphInstantiate_flags(0))
            .map_err(cuda_error("graph capture"));
        enqueued?;
        let graph = graph?.ok_or_else(|| {
            Error::backend_not_available("cuda").with_message("CUDA graph capture recorded nothing")
        })?;
        graph.upload().map_err(cuda_error("graph upload"))?;
        self.graph = Some(graph);
        Ok(())
    }

    fn check_shape(&self, what: &str, channels: usize, frames: Option<usize>) -> Result<()> {
        let frames_ok = frames == Some(self.frames);
        if channels != self.channels || !frames_ok {
            let got = match frames {
                Some(f) => format!("{channels}x{f}"),
                None => format!("{channels} channels of unequal length"),
            };
            return Err(Error::invalid_range(
                format!(
                    "The {what} shape {got} differs from the captured shape {}x{}",
                    self.channels, self.frames
                ),
                what,
                got,
            )
            .with_suggestion("create a runner for this shape (graphs have a fixed shape)"));
        }
        Ok(())
    }

    /// The common length of planar channels, or `None` when they differ.
    fn planar_frames(mut lengths: impl Iterator<Item = usize>) -> Option<usize> {
        let n = lengths.next().unwrap_or(0);
        lengths.all(|len| len == n).then_some(n)
    }

    /// Filters one chunk: `input` and `output` are planar, `channels × frames` as captured.
    pub fn run(&mut self, input: &[&[f32]], output: &mut [&mut [f32]]) -> Result<()> {
        self.run_with(input, output, true)
    }

    /// The same as [`Self::run`] with eager launches instead of the graph (for comparison).
    pub fn run_eager(&mut self, input: &[&[f32]], output: &mut [&mut [f32]]) -> Result<()> {
        self.run_with(input, output, false)
    }

    fn run_with(&mut self, input: &[&[f32]], output: &mut [&mut [f32]], graph: bool) -> Result<()> {
        self.check_shape(
            "input",
            input.len(),
            Self::planar_frames(input.iter().map(|c| c.len())),
        )?;
        self.check_shape(
            "output",
            output.len(),
            Self::planar_frames(output.iter().map(|c| c.len())),
        )?;
        let frames = self.frames;
        self.load_input(input.iter().map(|c| &c[..]), frames)?;
        self.launch(graph, frames)?;
        self.store_output(output, frames)
    }

    /// Filters a chunk of 1 up to the captured number of frames in place (the
    /// [`CascadeEngine`](crate::dsp::filter::engine::CascadeEngine) form of [`Self::run`]): a full chunk
    /// replays the graph, a shorter one is launched eagerly, and the state carries on either
    /// way. On error `block` is unchanged.
    pub fn run_in_place(&mut self, block: &mut [&mut [f32]]) -> Result<()> {
        let frames = Self::planar_frames(block.iter().map(|c| c.len()))
            .filter(|&n| n >= 1 && n <= self.frames && block.len() == self.channels);
        let Some(frames) = frames else {
            // Names both shapes.
            return self.check_shape("block", block.len(), None);
        };
        self.load_input(block.iter().map(|c| &c[..]), frames)?;
        self.launch(true, frames)?;
        self.store_output(block, frames)
    }

    /// Copies planar channels of `frames` frames into the pinned input buffer (stride `frames`).
    fn load_input<'a>(
        &mut self,
        input: impl Iterator<Item = &'a [f32]>,
        frames: usize,
    ) -> Result<()> {
        // SAFETY: the pinned input buffer holds channels × captured frames ≥ channels ×
        // `frames` floats; the stream is idle (every launch is synchronised), so the device
        // does not read it meanwhile.
        let host =
            unsafe { std::slice::from_raw_parts_mut(self.host_in, self.channels * self.frames) };
        for (dst, src) in host.chunks_exact_mut(frames).zip(input) {
            dst.copy_from_slice(src);
        }
        Ok(())
    }

    /// Replays the graph for a full chunk (when `graph`), else enqueues eagerly; waits.
    fn launch(&mut self, graph: bool, frames: usize) -> Result<()> {
        match (&self.graph, graph && frames == self.frames) {
            (Some(g), true) => g.launch().map_err(cuda_error("graph launch"))?,
            _ => self.enqueue(frames)?,
        }
        self.stream
            .synchronize()
            .map_err(cuda_error("synchronisation"))
    }

    /// Copies the pinned output buffer (stride `frames`) into planar channels.
    fn store_output(&mut self, output: &mut [&mut [f32]], frames: usize) -> Result<()> {
        // SAFETY: as in `load_input`, for the output buffer (the launch has completed).
        let host = unsafe {
            std::slice::from_raw_parts(self.host_out.cast_const(), self.channels * self.frames)
        };
        for (dst, src) in output.iter_mut().zip(host.chunks_exact(frames)) {
            dst.copy_from_slice(src);
        }
        Ok(())
    }

    /// Copies `values` into the device's state (`to_state`) or coefficient buffer and waits.
    /// The captured graph reads both buffers when it runs, so it stays valid: new coefficients
    /// of the same section count need no re-capture.
    fn upload(&mut self, values: &[f64], to_state: bool) -> Result<()> {
        let target = if to_state {
            &mut self.state
        } else {
            &mut self.coeffs
        };
        self.stream
            .memcpy_htod(values, target)
            .map_err(cuda_error("upload"))?;
        self.stream
            .synchronize()
            .map_err(cuda_error("synchronisation"))
    }

    /// Zeroes the filter state on the device, in place (the graph stays valid).
    pub fn reset_state(&mut self) -> Result<()> {
        self.stream
            .memset_zeros(&mut self.state)
            .map_err(cuda_error("state reset"))?;
        self.stream
            .synchronize()
            .map_err(cuda_error("synchronisation"))
    }

    /// Uploads new coefficients (same section count) and captures the graph again; the state
    /// is kept, as on the CPU.
    pub fn recapture(&mut self, cascade: &SosCascade) -> Result<()> {
        let rows = cascade.coefficient_rows();
        if rows.len() != self.sections {
            return Err(Error::invalid_range(
                format!(
                    "The cascade has {} sections; this runner was built for {}",
                    rows.len(),
                    self.sections
                ),
                "sections",
                rows.len(),
            )
            .with_suggestion("create a new runner for a different section count"));
        }
        let flat: Vec<f64> = rows.iter().flatten().copied().collect();
        self.stream
            .memcpy_htod(&flat, &mut self.coeffs)
            .map_err(cuda_error("upload"))?;
        self.stream
            .synchronize()
            .map_err(cuda_error("synchronisation"))?;
        self.capture()
    }
}

impl Drop for CudaGraphRunner {
    fn drop(&mut self) {
        // Destroy the graph with the context current on this thread and nothing in flight
        // (cudarc's graph drop does not bind the context itself).
        let _ = self.stream.context().bind_to_thread();
        let _ = self.stream.synchronize();
        self.graph = None;
    }
}

// SAFETY: the CUDA driver API is thread-safe; every call the runner makes binds its context to
// the calling thread first (cudarc's stream, graph and copy methods do, and `enqueue` does
// before its raw calls), and `&mut self` keeps it to one thread at a time. Only the graph's
// raw handles keep cudarc's `CudaGraph` from being `Send`.
unsafe impl Send for CudaGraphRunner {}

impl crate::dsp::filter::engine::CascadeEngine for CudaGraphRunner {
    fn run(&mut self, block: &mut [&mut [f32]]) -> Result<()> {
        self.run_in_place(block)
    }

    fn reset_state(&mut self) -> Result<()> {
        CudaGraphRunner::reset_state(self)
    }

    fn set_coefficients(&mut self, rows: &[[f64; 5]]) -> Result<()> {
        crate::dsp::filter::engine::check_len("coefficient rows", rows.len(), self.sections)?;
        self.upload(rows.as_flattened(), false)
    }

    fn load_state(&mut self, state: &[f64]) -> Result<()> {
        crate::dsp::filter::engine::check_len(
            "state words",
            state.len(),
            self.sections * 2 * self.channels,
        )?;
        self.upload(state, true)
    }

    fn store_state(&mut self, state: &mut [f64]) -> Result<()> {
        crate::dsp::filter::engine::check_len(
            "state words",
            state.len(),
            self.sections * 2 * self.channels,
        )?;
        self.stream
            .memcpy_dtoh(&self.state, state)
            .map_err(cuda_error("download"))?;
        self.stream
            .synchronize()
            .map_err(cuda_error("synchronisation"))
    }

    fn shape(&self) -> (usize, usize) {
        CudaGraphRunner::shape(self)
    }

    fn describe(&self) -> String {
        let device = self
            .stream
            .context()
            .name()
            .unwrap_or_else(|_| "a CUDA device".into());
        format!("a CUDA graph on {device}")
    }
}

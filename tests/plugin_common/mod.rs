//! A minimal host for driving the rtfx plugin's `Plugin` implementation directly: activate,
//! process planar buffers, set parameters. No wrapper is involved, so parameter values are set
//! through nice-plug's internal setters, exactly as its wrappers do.
#![allow(dead_code)]

use std::cell::Cell;

use nice_plug::midi::PluginNoteEvent;
use nice_plug::prelude::*;
use rtfx::plugin::Rtfx;

/// Process and activate context: records the latency the plugin reports.
pub struct Host {
    pub transport: Transport,
    pub latency: Cell<Option<u32>>,
}

impl Host {
    pub fn new(sample_rate: f32, tempo: Option<f64>) -> Self {
        let mut transport = Transport::new(sample_rate);
        transport.tempo = tempo;
        Self {
            transport,
            latency: Cell::new(None),
        }
    }
}

impl ProcessContext<Rtfx> for Host {
    fn plugin_api(&self) -> PluginApi {
        PluginApi::Clap
    }
    fn execute_background(&self, _task: ()) {}
    fn execute_gui(&self, _task: ()) {}
    fn transport(&self) -> &Transport {
        &self.transport
    }
    fn next_event(&mut self) -> Option<PluginNoteEvent<Rtfx>> {
        None
    }
    fn try_send_event(
        &mut self,
        event: PluginNoteEvent<Rtfx>,
    ) -> Result<
        (),
        (
            PluginNoteEvent<Rtfx>,
            nice_plug::context::process::SendEventError,
        ),
    > {
        Err((
            event,
            nice_plug::context::process::SendEventError::NoOutputBuffer,
        ))
    }
    fn set_latency_samples(&self, samples: u32) {
        self.latency.set(Some(samples));
    }
    fn request_restart(&self) {}
    fn set_current_voice_capacity(&self, _capacity: u32) {}
}

impl ActivateContext<Rtfx> for Host {
    fn plugin_api(&self) -> PluginApi {
        PluginApi::Clap
    }
    fn execute(&self, _task: ()) {}
    fn set_latency_samples(&self, samples: u32) {
        self.latency.set(Some(samples));
    }
    fn set_current_voice_capacity(&self, _capacity: u32) {}
}

/// Activates `plugin` with the stereo (2) or mono (1) layout and calls `reset`.
pub fn activate(
    plugin: &mut Rtfx,
    host: &mut Host,
    sample_rate: f32,
    max_block: u32,
    channels: u32,
) -> bool {
    activate_in(
        plugin,
        host,
        sample_rate,
        max_block,
        channels,
        ProcessMode::Realtime,
    )
}

/// [`activate`] with the host's processing mode (real-time or an offline render).
pub fn activate_in(
    plugin: &mut Rtfx,
    host: &mut Host,
    sample_rate: f32,
    max_block: u32,
    channels: u32,
    process_mode: ProcessMode,
) -> bool {
    let layout = Rtfx::AUDIO_IO_LAYOUTS
        .iter()
        .find(|l| l.main_output_channels.map(|c| c.get()) == Some(channels))
        .expect("layout");
    let config = BufferConfig {
        sample_rate,
        min_buffer_size: None,
        max_buffer_size: max_block,
        process_mode,
    };
    let ok = plugin.activate(layout, &config, host);
    plugin.reset();
    ok
}

/// A nice-plug buffer over `frames start..end` of planar channels.
pub fn buffer<'a>(chans: &'a mut [Vec<f32>], start: usize, end: usize) -> Buffer<'a> {
    let mut b = Buffer::default();
    unsafe {
        b.set_slices(end - start, |v| {
            v.extend(chans.iter_mut().map(|c| &mut c[start..end]));
        });
    }
    b
}

/// Processes the channels in blocks of `block` frames.
pub fn process_all(
    plugin: &mut Rtfx,
    host: &mut Host,
    chans: &mut [Vec<f32>],
    block: usize,
) -> ProcessStatus {
    let frames = chans[0].len();
    let mut status = ProcessStatus::Normal;
    let mut start = 0;
    while start < frames {
        let end = (start + block.max(1)).min(frames);
        let mut buf = buffer(chans, start, end);
        let mut aux = AuxiliaryBuffers {
            inputs: &mut [],
            outputs: &mut [],
        };
        status = plugin.process(&mut buf, &mut aux, host);
        start = end;
    }
    status
}

/// Sets a parameter by id to a normalized value (as a host automation event would).
pub fn set_normalized(plugin: &Rtfx, id: &str, normalized: f32) {
    let params = plugin.params();
    let (_, ptr, _) = params
        .param_map()
        .into_iter()
        .find(|(pid, _, _)| pid == id)
        .unwrap_or_else(|| panic!("no parameter '{id}'"));
    unsafe {
        ptr._internal_set_normalized_value(normalized);
    }
}

/// Sets a parameter by id to the value its text parses to (e.g. "6 dB", "1.5 kHz", "On").
pub fn set_text(plugin: &Rtfx, id: &str, text: &str) {
    set_params_text(&*plugin.params(), id, text);
}

/// [`set_text`] on a parameter set without a plugin (e.g. the one an offload worker reads).
pub fn set_params_text(params: &dyn Params, id: &str, text: &str) {
    let (_, ptr, _) = params
        .param_map()
        .into_iter()
        .find(|(pid, _, _)| pid == id)
        .unwrap_or_else(|| panic!("no parameter '{id}'"));
    unsafe {
        let n = ptr
            .string_to_normalized_value(text)
            .unwrap_or_else(|| panic!("'{text}' does not parse for '{id}'"));
        ptr._internal_set_normalized_value(n);
    }
}

/// Deterministic noise in [-amplitude, amplitude).
#[allow(unused_imports)] // not every test binary that shares this module uses it
pub use rtfx::dsp::noise::noise;

/// True when a sample is finite and not subnormal.
pub fn clean(x: f32) -> bool {
    x.is_finite() && (x == 0.0 || x.abs() >= f32::MIN_POSITIVE)
}

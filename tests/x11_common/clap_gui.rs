//! A CLAP host with the GUI and params extensions (clack-host) for the editor tests: load the
//! plugin, make an instance, open its editor embedded in a window, run its main-thread
//! callbacks, and flush the parameter changes the editor sends (recording them).

use std::ffi::CString;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use clack_extensions::gui::{
    GuiApiType, GuiConfiguration, GuiSize, HostGui, HostGuiImpl, PluginGui, Window,
};
use clack_extensions::params::{
    HostParams, HostParamsImplMainThread, HostParamsImplShared, ParamClearFlags, ParamRescanFlags,
    PluginParams,
};
use clack_host::prelude::*;

pub struct GuiHost;

pub struct Shared {
    callback: AtomicBool,
    flush: AtomicBool,
    /// Parameter events the plugin sent while inactive, in order.
    events: std::sync::Mutex<Vec<ParamEvent>>,
}

/// A parameter event from the plugin: a gesture's begin or end, or a new value.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum ParamEvent {
    Begin(u32),
    Value(u32, f64),
    End(u32),
}

impl HostParamsImplShared for Shared {
    fn request_flush(&self) {
        self.flush.store(true, Ordering::SeqCst);
    }
}

pub struct GuiMain;

impl MainThreadHandler<'_> for GuiMain {}

impl HostParamsImplMainThread for GuiMain {
    fn rescan(&self, _flags: ParamRescanFlags) {}
    fn clear(&self, _param_id: ClapId, _flags: ParamClearFlags) {}
}

impl SharedHandler<'_> for Shared {
    fn request_restart(&self) {}
    fn request_process(&self) {}
    fn request_callback(&self) {
        self.callback.store(true, Ordering::SeqCst);
    }
}

impl HostGuiImpl for Shared {
    fn resize_hints_changed(&self) {}
    fn request_resize(&self, _new_size: GuiSize) -> Result<(), HostError> {
        Ok(())
    }
    fn request_show(&self) -> Result<(), HostError> {
        Ok(())
    }
    fn request_hide(&self) -> Result<(), HostError> {
        Ok(())
    }
    fn closed(&self, _was_destroyed: bool) {}
}

impl HostHandlers for GuiHost {
    type Shared<'a> = Shared;
    type MainThread<'a> = GuiMain;
    type AudioProcessor<'a> = ();

    fn declare_extensions(builder: &mut HostExtensions<Self>, _shared: &Self::Shared<'_>) {
        builder.register::<HostGui>().register::<HostParams>();
    }
}

pub fn plugin_path() -> PathBuf {
    if let Some(p) = std::env::var_os("RTFX_CLAP") {
        return PathBuf::from(p);
    }
    let exe = std::env::current_exe().expect("test binary path");
    exe.parent().expect("deps directory").join("librtfx.so")
}

pub fn instance(entry: &PluginEntry) -> PluginInstance<GuiHost> {
    let host = HostInfo::new("rtfx-gui-test", "rtfx", "https://example.invalid", "0.1").unwrap();
    let id = CString::new("com.rtfx.rtfx").unwrap();
    PluginInstance::<GuiHost>::new(
        |_| Shared {
            callback: AtomicBool::new(false),
            flush: AtomicBool::new(false),
            events: std::sync::Mutex::new(Vec::new()),
        },
        |_| GuiMain,
        entry,
        &id,
        &host,
    )
    .expect("instance")
}

pub const CONFIG: GuiConfiguration<'static> = GuiConfiguration {
    api_type: GuiApiType::X11,
    is_floating: false,
};

pub fn open(inst: &mut PluginInstance<GuiHost>, root: u64) -> PluginGui {
    open_scaled(inst, root, None)
}

/// Opens the editor as a host does: create, then (on a HiDPI screen) `set_scale` before asking
/// for the size, then parent and show.
pub fn open_scaled(inst: &mut PluginInstance<GuiHost>, root: u64, scale: Option<f64>) -> PluginGui {
    let gui: PluginGui = inst
        .plugin_shared_handle()
        .get_extension()
        .expect("gui extension");
    let handle = inst.plugin_handle();
    assert!(gui.is_api_supported(&handle, CONFIG));
    // Xvfb on a busy machine has refused a new X connection now and then (XOpenDisplay fails,
    // the editor reports it and stays closed, the host goes on): retry like a user would.
    let mut attempts = 0;
    while let Err(e) = gui.create(&handle, CONFIG) {
        attempts += 1;
        assert!(attempts < 3, "the editor did not open in 3 attempts: {e:?}");
        eprintln!("the editor did not open ({e:?}); trying again");
        std::thread::sleep(Duration::from_millis(200));
    }
    if let Some(scale) = scale {
        assert!(gui.set_scale(&handle, scale).is_ok(), "set_scale {scale}");
    }
    let size = gui.get_size(&handle).expect("size");
    assert!(size.width >= 400 && size.height >= 300, "{size:?}");
    unsafe { gui.set_parent(&handle, Window::from_x11_handle(root as _)) }.expect("set parent");
    gui.show(&handle).expect("show");
    gui
}

/// Runs the host's main-thread callbacks for `time` (the editor asks for them to handle its
/// window events).
pub fn pump(instances: &mut [&mut PluginInstance<GuiHost>], time: Duration) {
    let start = Instant::now();
    while start.elapsed() < time {
        for inst in instances.iter_mut() {
            let requested =
                inst.access_shared_handler(|s| s.callback.swap(false, Ordering::SeqCst));
            if requested {
                inst.call_on_main_thread_callback();
            }
            let flush = inst.access_shared_handler(|s| s.flush.swap(false, Ordering::SeqCst));
            if flush {
                flush_output(inst);
            }
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Takes the parameter changes the plugin queued (while inactive: on the main thread) into
/// the instance's event record.
fn flush_output(inst: &mut PluginInstance<GuiHost>) {
    use clack_host::events::spaces::CoreEventSpace;
    let Some(params) = inst.plugin_shared_handle().get_extension::<PluginParams>() else {
        return;
    };
    let Some(mut handle) = inst.inactive_plugin_handle() else {
        // Active: the changes come out of `process`.
        return;
    };
    let mut out = EventBuffer::new();
    params.flush(
        &mut handle,
        &EventBuffer::new().as_input(),
        &mut out.as_output(),
    );
    let recorded: Vec<ParamEvent> = out
        .iter()
        .filter_map(|e| match e.as_core_event()? {
            CoreEventSpace::ParamGestureBegin(g) => Some(ParamEvent::Begin(g.param_id()?.get())),
            CoreEventSpace::ParamGestureEnd(g) => Some(ParamEvent::End(g.param_id()?.get())),
            CoreEventSpace::ParamValue(v) => {
                Some(ParamEvent::Value(v.param_id()?.get(), v.value()))
            }
            _ => None,
        })
        .collect();
    inst.access_shared_handler(|s| s.events.lock().unwrap().extend(recorded));
}

/// The parameter events recorded so far (see [`pump`]), taken.
pub fn take_param_events(inst: &mut PluginInstance<GuiHost>) -> Vec<ParamEvent> {
    inst.access_shared_handler(|s| std::mem::take(&mut *s.events.lock().unwrap()))
}

/// A parameter's value as the plugin reports it to the host.
pub fn param_value(inst: &mut PluginInstance<GuiHost>, id: &str) -> f64 {
    let params: PluginParams = inst
        .plugin_shared_handle()
        .get_extension()
        .expect("params extension");
    params
        .get_value(&inst.plugin_handle(), param_id(id))
        .expect("the parameter has a value")
}

/// nice-plug's CLAP parameter id for a string id (a Rabin fingerprint, top bit cleared).
pub fn param_id(id: &str) -> ClapId {
    let mut hash: u32 = 0;
    for b in id.bytes() {
        hash = hash.wrapping_mul(31).wrapping_add(u32::from(b));
    }
    ClapId::new(hash & !(1 << 31))
}

/// Sets parameters (normalized values) while the plugin is inactive.
pub fn flush(inst: &mut PluginInstance<GuiHost>, values: &[(&str, f64)]) {
    use clack_host::events::event_types::ParamValueEvent;
    let params: PluginParams = inst
        .plugin_shared_handle()
        .get_extension()
        .expect("params extension");
    let mut events = EventBuffer::new();
    for (id, v) in values {
        events.push(&ParamValueEvent::new(
            0,
            param_id(id),
            Pckn::match_all(),
            *v,
        ));
    }
    let mut handle = inst.inactive_plugin_handle().expect("inactive");
    params.flush(
        &mut handle,
        &events.as_input(),
        &mut EventBuffer::new().as_output(),
    );
}

/// Processes planar `input` into `output` in one call (no events).
pub fn process(
    proc: &mut StartedPluginAudioProcessor<GuiHost>,
    input: &mut [Vec<f32>],
    output: &mut [Vec<f32>],
) {
    let mut in_ports = AudioPorts::with_capacity(input.len(), 1);
    let mut out_ports = AudioPorts::with_capacity(output.len(), 1);
    let ins = in_ports.with_input_buffers([AudioPortBuffer {
        latency: 0,
        channels: AudioPortBufferType::f32_input_only(input.iter_mut().map(InputChannel::variable)),
    }]);
    let mut outs = out_ports.with_output_buffers([AudioPortBuffer {
        latency: 0,
        channels: AudioPortBufferType::f32_output_only(output.iter_mut().map(|c| c.as_mut_slice())),
    }]);
    proc.process(
        &ins,
        &mut outs,
        &EventBuffer::new().as_input(),
        &mut EventBuffer::new().as_output(),
        None,
        None,
    )
    .expect("process");
}

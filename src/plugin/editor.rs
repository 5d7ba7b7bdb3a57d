//! The plugin's editor (nice-plug-egui): the sections as a channel strip, meters, statistics
//! and "Export chain…".
//!
//! The editor reads parameters from [`RtfxParams`] and changes them through nice-plug's
//! `ParamSetter` (with begin/end gestures, so host undo and touch automation work). Meters and
//! statistics come from [`Meters`] (atomics only: the audio thread never waits for the GUI).
//! The window is resizable and its size is saved with the plugin state (the `editor-size`
//! persisted field).
//!
//! Open/close paths are kept minimal (a fresh egui editor per open, no global state), because
//! nice-plug's VST3 view has a known race while an editor opens or closes. Closing waits until
//! the window's thread has finished (see [`WindowThreadEnd`]).

use std::cell::RefCell;
use std::error::Error;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::ThreadId;
use std::time::Duration;

use nice_plug::context::gui::GuiContext;
use nice_plug::editor::dpi::{LogicalSize, NativeSize, Size};
use nice_plug::editor::{EditorHandle, HostMethods, SpawnedEditor};
use nice_plug::prelude::*;
use nice_plug_egui::baseview::{self, HandlerError, WindowSize};
use nice_plug_egui::widgets::ParamSlider;
use nice_plug_egui::{
    EguiEditor, EguiEditorHandle, EguiEditorState, EguiNiceSettings, Frame, NiceEguiApp,
    RepaintNotifier, create_egui_editor,
};

use super::params::{DelaySync, ProcessingMode, RtfxParams};
use super::{Meters, strip::StripLevels};

/// Smallest editor size, in logical pixels.
const MIN_SIZE: (f32, f32) = (640.0, 400.0);
/// Width of the parameter sliders, in logical pixels.
const SLIDER_WIDTH: f32 = 110.0;

/// An egui editor and its state (size, open flag).
type Built = (EguiEditor<StripApp>, Arc<EguiEditorState>);

/// The editor: builds a fresh egui editor, at the saved size, each time the host opens it.
pub struct RtfxEditor {
    params: Arc<RtfxParams>,
    meters: Arc<Meters>,
    inner: Mutex<Option<Built>>,
}

impl RtfxEditor {
    /// An editor for these parameters and meters (nothing is opened yet).
    pub fn new(params: Arc<RtfxParams>, meters: Arc<Meters>) -> Self {
        let inner = Mutex::new(build_editor(&params, &meters, None));
        Self {
            params,
            meters,
            inner,
        }
    }
}

fn resize_hint() -> ResizeHint {
    ResizeHint::resizable().with_min_logical_size(LogicalSize::new(MIN_SIZE.0, MIN_SIZE.1))
}

/// The saved size as a logical [`Size`].
fn saved_size(params: &RtfxParams) -> Size {
    let (w, h) = params.editor_size();
    Size::Logical(LogicalSize::new(f64::from(w), f64::from(h)))
}

/// An egui editor at the size saved in `params`. `window_thread` is the signal its window
/// thread gives when it ends, with the thread that opens the window (see [`WindowThreadEnd`]).
fn build_editor(
    params: &Arc<RtfxParams>,
    meters: &Arc<Meters>,
    window_thread: Option<(Arc<WindowThreadEnd>, ThreadId)>,
) -> Option<Built> {
    let state = EguiEditorState::from_size(saved_size(params), 1.0);
    let settings = EguiNiceSettings::new()
        .with_tile("rtfx")
        .with_resize_hint(resize_hint());
    let app = StripApp {
        params: params.clone(),
        meters: meters.clone(),
        gui: None,
        shown: StripLevels::default(),
        export_path: default_export_path(),
        export_status: String::new(),
        window_thread,
    };
    create_egui_editor(state.clone(), RepaintNotifier::new(), settings, app)
        .map(|editor| (editor, state))
}

/// `~/rtfx-chain.toml`, or `rtfx-chain.toml` in the working directory without a home.
fn default_export_path() -> String {
    std::env::var_os("HOME")
        .map(|h| Path::new(&h).join("rtfx-chain.toml"))
        .unwrap_or_else(|| "rtfx-chain.toml".into())
        .to_string_lossy()
        .into_owned()
}

impl Editor for RtfxEditor {
    type Handle = RtfxEditorHandle;

    fn spawn(
        &self,
        parent: Option<ParentWindowHandle>,
        wait_for_parent: bool,
        fallback_scale_factor: Option<f64>,
        gui_context: GuiContext,
        host: Option<HostMethods>,
    ) -> Result<SpawnedEditor<Self::Handle>, Box<dyn Error>> {
        let end = Arc::new(WindowThreadEnd::default());
        let opener = std::thread::current().id();
        let Some((editor, state)) =
            build_editor(&self.params, &self.meters, Some((end.clone(), opener)))
        else {
            return Err("nice-plug-egui could not create the editor".into());
        };
        let spawned = editor.spawn(
            parent,
            wait_for_parent,
            fallback_scale_factor,
            gui_context,
            host,
        )?;
        if let Ok(mut inner) = self.inner.lock() {
            *inner = Some((editor, state));
        }
        Ok(SpawnedEditor {
            handle: RtfxEditorHandle(spawned.handle),
            window: EditorWindow {
                window: Some(spawned.window),
                end,
            },
        })
    }

    fn size(&self) -> NativeSize<u32> {
        let saved = saved_size(&self.params);
        if let Ok(mut inner) = self.inner.lock() {
            // While closed, follow the saved size (a project may just have been loaded).
            let stale = inner
                .as_ref()
                .is_none_or(|(_, state)| !state.is_open() && state.size() != saved);
            if stale {
                *inner = build_editor(&self.params, &self.meters, None);
            }
            if let Some((editor, _)) = inner.as_ref() {
                return editor.size();
            }
        }
        let (w, h) = self.params.editor_size();
        NativeSize::new(w, h)
    }

    fn resize_hint(&self) -> ResizeHint {
        resize_hint()
    }
}

/// Lets the thread that closes an editor wait until the editor's window thread has ended.
///
/// On X11 baseview runs each window on a thread of its own, and closing the window does not
/// always join that thread: its close asks the thread to show the window first, that request
/// fails once the thread has stopped reading requests ("X11 thread disconnected"), and the join
/// is skipped. The thread then tears down its OpenGL context while the host goes on. When the
/// host closed two editors close together (or closed and reopened one within milliseconds), one
/// thread could unload libEGL while the other still had a thread-exit destructor inside it,
/// and the host crashed. So [`EditorWindow`] waits for this signal, which a thread-local
/// destructor on the window thread gives after everything the thread owned has been dropped,
/// and then (on Linux) for the thread itself to be gone: the C library's thread-exit
/// destructors, libEGL's among them, run after Rust's.
#[derive(Default)]
struct WindowThreadEnd {
    ended: Mutex<bool>,
    ended_changed: Condvar,
    /// The window runs on a thread other than the one that opened it (X11), so there is an end
    /// to wait for. On Windows and macOS the window lives on the host's thread.
    armed: AtomicBool,
    /// The window thread's kernel id (Linux; 0 when unknown).
    tid: std::sync::atomic::AtomicI32,
}

/// How long closing an editor waits for its window thread (a safety net: it takes milliseconds).
const WINDOW_THREAD_END_TIMEOUT: Duration = Duration::from_secs(5);

thread_local! {
    /// On a window thread: gives that thread's [`WindowThreadEnd`] signal when the thread ends.
    static WINDOW_THREAD_END_GUARD: RefCell<Option<WindowThreadEndGuard>> =
        const { RefCell::new(None) };
}

struct WindowThreadEndGuard(Arc<WindowThreadEnd>);

impl Drop for WindowThreadEndGuard {
    fn drop(&mut self) {
        let mut ended = self.0.ended.lock().unwrap_or_else(|e| e.into_inner());
        *ended = true;
        self.0.ended_changed.notify_all();
    }
}

impl WindowThreadEnd {
    /// Called on the window's thread while it builds the window: arms the signal when that is
    /// not `opener`, the thread that asked for the window.
    fn arm_if_separate(self: &Arc<Self>, opener: ThreadId) {
        if std::thread::current().id() == opener {
            return;
        }
        #[cfg(target_os = "linux")]
        {
            // SAFETY: gettid has no preconditions.
            self.tid.store(unsafe { libc::gettid() }, Ordering::Relaxed);
            pin_gl_libraries();
        }
        self.armed.store(true, Ordering::Release);
        let guard = WindowThreadEndGuard(self.clone());
        WINDOW_THREAD_END_GUARD.with(|slot| *slot.borrow_mut() = Some(guard));
    }

    /// Waits until the window thread has ended, if the window has one. Returns whether it did
    /// end in time (or there was nothing to wait for).
    fn wait(&self, timeout: Duration) -> bool {
        if !self.armed.load(Ordering::Acquire) {
            return true;
        }
        let deadline = std::time::Instant::now() + timeout;
        let ended = self.ended.lock().unwrap_or_else(|e| e.into_inner());
        let (ended, _) = self
            .ended_changed
            .wait_timeout_while(ended, timeout, |ended| !*ended)
            .unwrap_or_else(|e| e.into_inner());
        if !*ended {
            return false;
        }
        #[cfg(target_os = "linux")]
        {
            // The kernel drops /proc/self/task/<tid> once the thread has fully exited.
            let tid = self.tid.load(Ordering::Relaxed);
            let task = Path::new("/proc/self/task").join(tid.to_string());
            while tid != 0 && task.exists() {
                if std::time::Instant::now() >= deadline {
                    return false;
                }
                std::thread::sleep(Duration::from_millis(1));
            }
        }
        true
    }
}

/// Keeps the OpenGL libraries the editor loaded (EGL or GLX, through glvnd) loaded for good.
///
/// Each window thread opens libEGL (or libGL) itself and closes it when it ends; the last close
/// unloads it, although other threads that used it may still have to run its thread-exit
/// destructors. Marking the loaded libraries "no delete" makes those destructors always
/// present. Only libraries that are already loaded are touched.
#[cfg(target_os = "linux")]
fn pin_gl_libraries() {
    // glvnd's front ends and dispatcher, and the Mesa and NVIDIA vendor libraries behind them.
    const LIBRARIES: [&std::ffi::CStr; 9] = [
        c"libEGL.so.1",
        c"libGLdispatch.so.0",
        c"libGL.so.1",
        c"libGLX.so.0",
        c"libEGL_mesa.so.0",
        c"libGLX_mesa.so.0",
        c"libglapi.so.0",
        c"libEGL_nvidia.so.0",
        c"libGLX_nvidia.so.0",
    ];
    for name in LIBRARIES {
        // SAFETY: RTLD_NOLOAD never loads (so no library constructor runs); the handle only
        // adds a reference, given back right away, and RTLD_NODELETE stays on the library.
        unsafe {
            let handle = libc::dlopen(
                name.as_ptr(),
                libc::RTLD_NOW | libc::RTLD_NOLOAD | libc::RTLD_NODELETE,
            );
            if !handle.is_null() {
                libc::dlclose(handle);
            }
        }
    }
}

/// The editor's baseview window; dropping it closes the window and waits for its thread.
pub struct EditorWindow {
    window: Option<baseview::Window>,
    end: Arc<WindowThreadEnd>,
}

impl EditorWindow {
    fn inner(&self) -> Result<&baseview::Window, baseview::Error> {
        self.window
            .as_ref()
            .ok_or_else(|| HandlerError::from(WindowClosed).into())
    }
}

/// The window was already handed to `run_until_closed`.
#[derive(Debug, thiserror::Error)]
#[error("the rtfx editor window is already closed; open the editor again")]
struct WindowClosed;

impl Drop for EditorWindow {
    fn drop(&mut self) {
        drop(self.window.take());
        if !self.end.wait(WINDOW_THREAD_END_TIMEOUT) {
            nice_plug::nice_log!(
                "rtfx: the editor's window thread did not end within {} s of closing",
                WINDOW_THREAD_END_TIMEOUT.as_secs()
            );
        }
    }
}

/// The editor's handle: nice-plug-egui's, with [`EditorWindow`] as its window.
pub struct RtfxEditorHandle(EguiEditorHandle);

impl EditorHandle for RtfxEditorHandle {
    type Window = EditorWindow;
    type Error = baseview::Error;

    fn run_until_closed(mut window: Self::Window) -> Result<(), Self::Error> {
        match window.window.take() {
            Some(inner) => EguiEditorHandle::run_until_closed(inner),
            None => Ok(()),
        }
    }

    fn set_parent(
        &self,
        parent: ParentWindowHandle,
        window: &Self::Window,
    ) -> Result<(), Self::Error> {
        self.0.set_parent(parent, window.inner()?)
    }

    fn show(&self, window: &Self::Window) -> Result<(), Self::Error> {
        self.0.show(window.inner()?)
    }

    fn hide(&self, window: &Self::Window) -> Result<(), Self::Error> {
        self.0.hide(window.inner()?)
    }

    fn set_size(
        &self,
        new_size: NativeSize<u32>,
        window: &Self::Window,
    ) -> Result<(), Self::Error> {
        self.0.set_size(new_size, window.inner()?)
    }

    fn host_main_thread_callback(&self, window: &Self::Window) {
        if let Ok(inner) = window.inner() {
            self.0.host_main_thread_callback(inner);
        }
    }

    fn adjust_size(
        &self,
        new_size: NativeSize<u32>,
        window: &Self::Window,
    ) -> Option<NativeSize<u32>> {
        self.0.adjust_size(new_size, window.inner().ok()?)
    }

    fn set_fallback_scale_factor(
        &self,
        scale_factor: f64,
        window: &Self::Window,
    ) -> Result<(), Self::Error> {
        self.0
            .set_fallback_scale_factor(scale_factor, window.inner()?)
    }

    fn on_virtual_key_from_host(
        &self,
        key_code: VirtualKeyCode,
        is_down: bool,
        modifiers: Modifiers,
    ) -> bool {
        self.0
            .on_virtual_key_from_host(key_code, is_down, modifiers)
    }

    fn state_changed(&self) {
        self.0.state_changed();
    }

    fn param_value_changed(&self, id: &str, normalized_value: f32) {
        self.0.param_value_changed(id, normalized_value);
    }

    fn param_modulation_changed(&self, id: &str, modulation_offset: f32) {
        self.0.param_modulation_changed(id, modulation_offset);
    }
}

/// The egui app: one frame of the channel strip.
pub struct StripApp {
    params: Arc<RtfxParams>,
    meters: Arc<Meters>,
    gui: Option<GuiContext>,
    /// Meter values on screen (peaks fall back slowly).
    shown: StripLevels,
    export_path: String,
    export_status: String,
    /// Armed in [`NiceEguiApp::build`], on the window's thread.
    window_thread: Option<(Arc<WindowThreadEnd>, ThreadId)>,
}

impl NiceEguiApp for StripApp {
    fn build(
        &mut self,
        _egui_ctx: egui::Context,
        gui: GuiContext,
        _frame: &mut Frame,
    ) -> Result<(), HandlerError> {
        self.gui = Some(gui);
        if let Some((end, opener)) = &self.window_thread {
            end.arm_if_separate(*opener);
        }
        Ok(())
    }

    fn ui(&mut self, ui: &mut egui::Ui, _frame: &mut Frame) {
        // The standalone app got SIGINT or SIGTERM: close the window, which ends the app with
        // status 0 (never set inside a plugin host).
        if nice_plug::wrapper::standalone::stop_requested() {
            ui.ctx().send_viewport_cmd(egui::ViewportCommand::Close);
        }
        let Some(gui) = self.gui.clone() else {
            return;
        };
        let setter = gui.param_setter();
        self.update_meters();
        // Full width (no shrinking to the content), so that sections wrap at the window's edge.
        egui::ScrollArea::vertical()
            .auto_shrink([false, false])
            .show(ui, |ui| {
                self.header(ui, &setter);
                ui.separator();
                self.sections(ui, &setter);
                ui.separator();
                self.footer(ui);
            });
        ui.ctx().request_repaint_after(Duration::from_millis(33));
    }

    fn resized(&mut self, new_size: WindowSize) {
        let w = new_size.logical.width.round().clamp(1.0, 10_000.0) as u32;
        let h = new_size.logical.height.round().clamp(1.0, 10_000.0) as u32;
        if let Ok(mut size) = self.params.editor_size.write() {
            *size = (w, h);
        }
    }

    fn editor_closed(&mut self) {
        self.gui = None;
    }
}

/// A checkbox bound to a [`BoolParam`], with a host gesture around the change.
fn switch(ui: &mut egui::Ui, setter: &ParamSetter, param: &BoolParam, label: &str) {
    let mut on = param.value();
    if ui
        .checkbox(&mut on, egui::RichText::new(label).strong())
        .changed()
    {
        setter.begin_set_parameter(param);
        setter.set_parameter(param, on);
        setter.end_set_parameter(param);
    }
}

/// A labelled parameter slider.
fn slider<P: Param>(ui: &mut egui::Ui, setter: &ParamSetter, param: &P) {
    ui.label(param.name());
    ui.add(ParamSlider::for_param(param, setter).with_width(SLIDER_WIDTH));
}

/// A horizontal level meter from -60 to 0 dB.
fn meter(ui: &mut egui::Ui, label: &str, db: f32, color: egui::Color32) {
    ui.horizontal(|ui| {
        ui.add_sized([28.0, 14.0], egui::Label::new(label));
        let (rect, _) = ui.allocate_exact_size(egui::vec2(160.0, 12.0), egui::Sense::hover());
        let painter = ui.painter();
        painter.rect_filled(rect, 2.0, egui::Color32::from_gray(40));
        let fill = ((db + 60.0) / 60.0).clamp(0.0, 1.0);
        let mut bar = rect;
        bar.set_width(rect.width() * fill);
        painter.rect_filled(bar, 2.0, color);
        ui.label(if db <= -60.0 {
            "-inf dB".to_string()
        } else {
            format!("{db:.1} dB")
        });
    });
}

fn to_db(x: f32) -> f32 {
    if x > 1e-6 { 20.0 * x.log10() } else { -120.0 }
}

impl StripApp {
    /// Takes the audio thread's peaks; displayed peaks fall at about 20 dB/s (at 30 frames/s).
    fn update_meters(&mut self) {
        let new = self.meters.take_levels();
        let fall = |shown: f32, new: f32| new.max(shown * 0.9);
        self.shown.input_peak = fall(self.shown.input_peak, new.input_peak);
        self.shown.output_peak = fall(self.shown.output_peak, new.output_peak);
        self.shown.gain_reduction_db = new
            .gain_reduction_db
            .min(self.shown.gain_reduction_db * 0.9);
    }

    fn header(&mut self, ui: &mut egui::Ui, setter: &ParamSetter) {
        ui.horizontal(|ui| {
            ui.heading("rtfx");
            ui.label("channel strip");
            ui.separator();
            switch(ui, setter, &self.params.bypass, "Bypass");
            ui.separator();
            ui.vertical(|ui| slider(ui, setter, &self.params.mode));
            ui.separator();
            ui.vertical(|ui| {
                meter(
                    ui,
                    "In",
                    to_db(self.shown.input_peak),
                    egui::Color32::from_rgb(80, 170, 90),
                );
                meter(
                    ui,
                    "Out",
                    to_db(self.shown.output_peak),
                    egui::Color32::from_rgb(80, 170, 90),
                );
                // Gain reduction grows from the left like the level meters (0 dB = none).
                meter(
                    ui,
                    "GR",
                    -60.0 - self.shown.gain_reduction_db.max(-60.0),
                    egui::Color32::from_rgb(210, 150, 60),
                );
                ui.label(format!(
                    "gain reduction {:.1} dB",
                    self.shown.gain_reduction_db
                ));
            });
        });
    }

    fn sections(&mut self, ui: &mut egui::Ui, setter: &ParamSetter) {
        let p = self.params.clone();
        // Sections flow left to right like a channel strip and wrap in narrow windows.
        ui.horizontal_wrapped(|ui| {
            section(ui, "Input", |ui| slider(ui, setter, &p.input_gain));
            section(ui, "Filters", |ui| {
                switch(ui, setter, &p.hp_on, "High-pass");
                slider(ui, setter, &p.hp_freq);
                slider(ui, setter, &p.hp_order);
                ui.add_space(6.0);
                switch(ui, setter, &p.lp_on, "Low-pass");
                slider(ui, setter, &p.lp_freq);
                slider(ui, setter, &p.lp_order);
            });
            section(ui, "EQ", |ui| {
                switch(ui, setter, &p.eq_on, "EQ");
                egui::Grid::new("eq").num_columns(3).show(ui, |ui| {
                    for (freq, gain, q) in [
                        (&p.ls_freq, &p.ls_gain, &p.ls_q),
                        (&p.pk_freq, &p.pk_gain, &p.pk_q),
                        (&p.hs_freq, &p.hs_gain, &p.hs_q),
                    ] {
                        ui.vertical(|ui| slider(ui, setter, freq));
                        ui.vertical(|ui| slider(ui, setter, gain));
                        ui.vertical(|ui| slider(ui, setter, q));
                        ui.end_row();
                    }
                });
            });
            section(ui, "Compressor", |ui| {
                switch(ui, setter, &p.comp_on, "Compressor");
                slider(ui, setter, &p.comp_threshold);
                slider(ui, setter, &p.comp_ratio);
                slider(ui, setter, &p.comp_attack);
                slider(ui, setter, &p.comp_release);
                slider(ui, setter, &p.comp_knee);
                slider(ui, setter, &p.comp_makeup);
            });
            section(ui, "Delay", |ui| {
                switch(ui, setter, &p.delay_on, "Delay");
                slider(ui, setter, &p.delay_sync);
                if p.delay_sync.value() == DelaySync::Tempo {
                    slider(ui, setter, &p.delay_note);
                } else {
                    slider(ui, setter, &p.delay_time);
                }
                slider(ui, setter, &p.delay_feedback);
                slider(ui, setter, &p.delay_mix);
                switch(ui, setter, &p.delay_ping_pong, "Ping-pong");
            });
            section(ui, "Reverb", |ui| {
                switch(ui, setter, &p.reverb_on, "Reverb");
                slider(ui, setter, &p.reverb_size);
                slider(ui, setter, &p.reverb_damping);
                slider(ui, setter, &p.reverb_mix);
            });
            section(ui, "Limiter", |ui| {
                switch(ui, setter, &p.limiter_on, "Limiter");
                slider(ui, setter, &p.limiter_ceiling);
                slider(ui, setter, &p.limiter_lookahead);
                slider(ui, setter, &p.limiter_release);
                switch(ui, setter, &p.limiter_true_peak, "True peak");
            });
            section(ui, "Output", |ui| slider(ui, setter, &p.output_gain));
        });
    }

    fn footer(&mut self, ui: &mut egui::Ui) {
        ui.horizontal(|ui| {
            let rate = self.meters.sample_rate();
            let latency = self.meters.latency_samples();
            let active = self.meters.active_mode();
            ui.label(mode_line(
                self.params.mode.value(),
                active,
                self.meters.underflows(),
                self.meters.gpu_filters(),
            ));
            if active != ProcessingMode::Inline && !self.meters.worker_realtime() {
                ui.label(WORKER_NOT_REALTIME)
                    .on_hover_text("allow real-time scheduling for your user, e.g. the `audio` group with an rtprio limit in /etc/security/limits.d");
            }
            ui.separator();
            if rate > 0.0 {
                ui.label(format!(
                    "{:.1} kHz, latency {latency} samples ({:.2} ms)",
                    rate / 1000.0,
                    latency as f32 * 1000.0 / rate
                ));
            } else {
                ui.label("not active");
            }
            ui.separator();
            match self.meters.load_stats() {
                Some(s) => ui.label(format!(
                    "DSP per block: median {:.2} %, p99 {:.2} % of the deadline; \
                     {} blocks, {} over the deadline",
                    s.median_percent, s.p99_percent, s.blocks, s.overruns
                )),
                None => ui.label("DSP per block: no blocks yet"),
            };
            if ui.button("Reset stats").clicked() {
                self.meters.reset_stats();
            }
        });
        ui.horizontal(|ui| {
            ui.label("Chain file:");
            ui.add(egui::TextEdit::singleline(&mut self.export_path).desired_width(320.0));
            if ui.button("Export chain…").clicked() {
                let tempo = self.meters.tempo();
                self.export_status =
                    match export_chain(&self.params, tempo, Path::new(&self.export_path)) {
                        Ok(()) => format!("wrote {}", self.export_path),
                        Err(e) => format!("export failed: {e}"),
                    };
            }
            ui.label(&self.export_status);
        });
    }
}

/// Shown next to the mode line in offload and GPU mode when the system refused the worker
/// real-time scheduling.
pub const WORKER_NOT_REALTIME: &str = "(worker at normal priority)";

/// The stats panel's processing-mode line: the mode running, the offload underflows, and for
/// GPU mode what runs where (`filters_on_gpu`: the filters ran on the GPU in the last chunk).
pub fn mode_line(
    wanted: ProcessingMode,
    active: ProcessingMode,
    underflows: u64,
    filters_on_gpu: bool,
) -> String {
    match active {
        ProcessingMode::Inline if wanted != ProcessingMode::Inline => {
            "Mode: inline (offload worker not running)".to_string()
        }
        ProcessingMode::Inline => "Mode: inline".to_string(),
        ProcessingMode::Offload => format!("Mode: offload, {underflows} underflows"),
        ProcessingMode::Gpu => format!(
            "Mode: {}, {underflows} underflows",
            super::offload::gpu_status_line(filters_on_gpu)
        ),
    }
}

/// A framed column with a title.
///
/// In a wrapping row egui decides whether an item moves to the next row from the width it asks
/// for, and a container cannot know its width before it is laid out: a section that did not fit
/// used to be squeezed into the rest of the row (its labels wrapping letter by letter, the
/// sections after it squeezed to nothing) instead of wrapping. So each section asks for the
/// width it took in the previous frame, and its text never wraps, so that width is its natural
/// one. (The first frame lays them out once to measure them; the next one wraps them.)
fn section(ui: &mut egui::Ui, title: &str, add: impl FnOnce(&mut egui::Ui)) {
    let id = ui.make_persistent_id(("rtfx-section-width", title));
    let natural: f32 = ui.ctx().data(|d| d.get_temp(id)).unwrap_or(0.0);
    let placed = ui.allocate_ui(egui::vec2(natural, ui.available_height()), |ui| {
        ui.group(|ui| {
            ui.style_mut().wrap_mode = Some(egui::TextWrapMode::Extend);
            ui.vertical(|ui| {
                ui.label(egui::RichText::new(title).heading());
                add(ui);
            });
        });
    });
    let width = placed.response.rect.width();
    if (width - natural).abs() > 0.5 {
        // The editor repaints every 33 ms anyway (see `ui`), which lays the row out again.
        ui.ctx().data_mut(|d| d.insert_temp(id, width));
    }
}

/// Writes the current strip as a TOML chain file that `rtfx render --chain` accepts, through a
/// temporary file in the same directory and a rename (an existing file is replaced whole or
/// not at all).
pub fn export_chain(params: &RtfxParams, tempo: f64, path: &Path) -> crate::Result<()> {
    let toml = params.settings(tempo).to_toml()?;
    let tmp = path.with_extension("toml.tmp");
    let shown = path.display().to_string();
    let io = |e: std::io::Error| {
        crate::Error::io(format!("cannot write the chain file: {e}"), shown.clone())
    };
    std::fs::write(&tmp, toml).map_err(io)?;
    std::fs::rename(&tmp, path).map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        io(e)
    })
}

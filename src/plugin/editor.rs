//! The plugin's editor (nice-plug-egui): the sections as a channel strip, meters, statistics
//! and "Export chain…".
//!
//! The editor reads parameters from [`RtfxParams`] and changes them through nice-plug's
//! `ParamSetter` (with begin/end gestures, so host undo and touch automation work). Meters and
//! statistics come from [`Meters`] (atomics only: the audio thread never waits for the GUI).
//! The window is resizable and its size is saved with the plugin state (the `editor-size`
//! persisted field). At the default size ([`DEFAULT_EDITOR_SIZE`]) everything shows without
//! scrolling; smaller windows wrap the top bar and the sections and scroll vertically. For the
//! GUI tests the editor can report what it laid out (see [`LAYOUT_REPORT_VAR`]).
//!
//! [`DEFAULT_EDITOR_SIZE`]: super::params::DEFAULT_EDITOR_SIZE
//!
//! Open/close paths are kept minimal (a fresh egui editor per open, no global state), because
//! nice-plug's VST3 view has a known race while an editor opens or closes. Closing waits until
//! the window's thread has finished (see `WindowThreadEnd`).

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

use super::Meters;
use super::display::{COMPRESSOR_COLOUR, LIMITER_COLOUR, SoundDisplay};
use super::params::{DelaySync, ProcessingMode, RtfxParams};
use super::presets::{
    Preset, delete_preset, import_chain_file, list_presets, load_preset, preset_dir, rename_preset,
    save_preset,
};

/// Smallest editor size, in logical pixels.
const MIN_SIZE: (f32, f32) = (640.0, 400.0);
/// Width of the parameter sliders (without their value), in logical pixels.
const SLIDER_WIDTH: f32 = 110.0;
/// The window's background (egui's dark panel colour).
const BACKGROUND: egui::Color32 = egui::Color32::from_gray(27);
/// Width of the level meters' bars, in logical pixels.
const METER_WIDTH: f32 = 150.0;
/// Width of the EQ's sliders (three bands of three side by side), in logical pixels.
const EQ_SLIDER_WIDTH: f32 = 80.0;

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
        display: SoundDisplay::default(),
        export_path: default_export_path(),
        export_status: String::new(),
        presets: PresetBar::new(),
        window_thread,
        layout_report: std::env::var_os(LAYOUT_REPORT_VAR).map(Into::into),
        last_layout: String::new(),
        placed: Vec::new(),
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
    /// The response plot, the analyser and the meters.
    display: SoundDisplay,
    export_path: String,
    export_status: String,
    /// The preset menu and the user preset folder.
    presets: PresetBar,
    /// Armed in [`NiceEguiApp::build`], on the window's thread.
    window_thread: Option<(Arc<WindowThreadEnd>, ThreadId)>,
    /// Where to write what was laid out ([`LAYOUT_REPORT_VAR`]); `None` normally.
    layout_report: Option<std::path::PathBuf>,
    /// The report last written (it is written only when it changes).
    last_layout: String,
    /// This frame's header, sections and footer with their rectangles (logical pixels).
    placed: Vec<(&'static str, egui::Rect)>,
}

/// The environment variable naming a file the editor writes its layout to, for the GUI tests
/// (they load the plugin into their own process, so they set it before loading). Unset
/// normally. The file is replaced (write and rename) whenever the layout changes, with lines
/// `window W H` (the window, logical pixels), `pixels_per_point P`, `viewport W H` (the scroll
/// area), `content W H` (what was laid out in it), then `NAME X0 Y0 X1 Y1` for the header,
/// each section and the footer (window coordinates, logical pixels).
pub const LAYOUT_REPORT_VAR: &str = "RTFX_EDITOR_LAYOUT_REPORT";

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
        self.display.update(&self.meters);
        self.placed.clear();
        // Paint the whole window (egui leaves what no widget covers at the clear colour, black),
        // so that the GUI tests can see that the editor fills its window.
        ui.painter()
            .rect_filled(ui.ctx().content_rect(), 0.0, BACKGROUND);
        // A solid scroll bar (egui's default floats over the content, faint until hovered),
        // shown whenever the window is too small for everything.
        ui.spacing_mut().scroll = egui::style::ScrollStyle::solid();
        // Full width (no shrinking to the content), so that sections wrap at the window's edge.
        // The statistics stay in view at the bottom whatever the window's size; the rest
        // scrolls above them.
        let footer = egui::Panel::bottom("rtfx-footer")
            .resizable(false)
            .frame(
                egui::Frame::new()
                    .fill(BACKGROUND)
                    .inner_margin(egui::Margin::symmetric(0, 4)),
            )
            .show(ui, |ui| self.footer(ui))
            .response
            .rect;
        let scroll = egui::ScrollArea::vertical()
            .auto_shrink([false, false])
            .scroll_bar_visibility(egui::scroll_area::ScrollBarVisibility::VisibleWhenNeeded)
            .show(ui, |ui| {
                let header = ui.scope(|ui| self.header(ui, &setter)).response.rect;
                self.placed.push(("header", header));
                ui.separator();
                let rate = self.meters.sample_rate();
                let width = ui.available_width();
                let plot = self
                    .display
                    .response_plot(ui, &self.params, &setter, rate, width);
                self.placed.push(("Response", plot));
                self.sections(ui, &setter);
            });
        self.placed.push(("footer", footer));
        self.report_layout(ui.ctx(), &scroll);
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

/// A parameter slider in a two-column grid: a short label (the parameter's full name on hover),
/// then the slider with its value. Ends the grid row.
fn slider<P: Param>(ui: &mut egui::Ui, setter: &ParamSetter, param: &P, label: &str) {
    ui.label(label).on_hover_text(param.name());
    ui.add(ParamSlider::for_param(param, setter).with_width(SLIDER_WIDTH));
    ui.end_row();
}

/// A [`switch`] on a row of its own in a two-column grid.
fn switch_row(ui: &mut egui::Ui, setter: &ParamSetter, param: &BoolParam, label: &str) {
    switch(ui, setter, param, label);
    ui.end_row();
}

/// The two-column grid (label, slider) a section's controls are laid out in.
fn controls(ui: &mut egui::Ui, id: &str, add: impl FnOnce(&mut egui::Ui)) {
    egui::Grid::new(id)
        .num_columns(2)
        .spacing([8.0, 4.0])
        .show(ui, add);
}

impl StripApp {
    /// Writes the layout to [`LAYOUT_REPORT_VAR`]'s file when it changed (tests only).
    fn report_layout<R>(
        &mut self,
        ctx: &egui::Context,
        scroll: &egui::scroll_area::ScrollAreaOutput<R>,
    ) {
        let Some(path) = &self.layout_report else {
            return;
        };
        use std::fmt::Write as _;
        let window = ctx.content_rect();
        let mut text = format!(
            "window {:.0} {:.0}\npixels_per_point {}\nviewport {:.0} {:.0}\ncontent {:.0} {:.0}\n",
            window.width(),
            window.height(),
            ctx.pixels_per_point(),
            scroll.inner_rect.width(),
            scroll.inner_rect.height(),
            scroll.content_size.x,
            scroll.content_size.y,
        );
        for (name, r) in &self.placed {
            let _ = writeln!(
                text,
                "{} {:.0} {:.0} {:.0} {:.0}",
                name.replace(' ', "_"),
                r.min.x,
                r.min.y,
                r.max.x,
                r.max.y
            );
        }
        if text != self.last_layout {
            let tmp = path.with_extension("tmp");
            if std::fs::write(&tmp, &text).is_ok() && std::fs::rename(&tmp, path).is_ok() {
                self.last_layout = text;
            }
        }
    }

    /// The top bar: bypass, processing mode, the input and output gains.
    fn header(&mut self, ui: &mut egui::Ui, setter: &ParamSetter) {
        let p = self.params.clone();
        // Wraps in narrow windows (the scroll area scrolls only vertically).
        ui.horizontal_wrapped(|ui| {
            wrapping_item(ui, "title", |ui| {
                ui.heading("rtfx");
                ui.label("channel strip");
            });
            ui.separator();
            let gui = self.gui.clone();
            let (presets, placed) = (&mut self.presets, &mut self.placed);
            wrapping_item(ui, "presets", |ui| {
                if let Some(gui) = &gui {
                    placed.extend(presets.ui(ui, gui, &p));
                }
            });
            ui.separator();
            wrapping_item(ui, "bypass", |ui| {
                switch(ui, setter, &p.bypass, "Bypass");
                ui.add(ParamSlider::for_param(&p.mode, setter).with_width(SLIDER_WIDTH))
                    .on_hover_text(p.mode.name());
            });
            ui.separator();
            wrapping_item(ui, "gains", |ui| {
                controls(ui, "gains", |ui| {
                    slider(ui, setter, &p.input_gain, "Input");
                    slider(ui, setter, &p.output_gain, "Output");
                });
            });
        });
    }

    fn sections(&mut self, ui: &mut egui::Ui, setter: &ParamSetter) {
        let p = self.params.clone();
        let placed = &mut self.placed;
        // Sections flow left to right like a channel strip and wrap in narrow windows.
        ui.horizontal_wrapped(|ui| {
            section(ui, placed, "Filters", |ui| {
                controls(ui, "filters", |ui| {
                    switch_row(ui, setter, &p.hp_on, "High-pass");
                    slider(ui, setter, &p.hp_freq, "Cutoff");
                    slider(ui, setter, &p.hp_order, "Order");
                    switch_row(ui, setter, &p.lp_on, "Low-pass");
                    slider(ui, setter, &p.lp_freq, "Cutoff");
                    slider(ui, setter, &p.lp_order, "Order");
                });
            });
            section(ui, placed, "EQ", |ui| {
                switch(ui, setter, &p.eq_on, "EQ");
                egui::Grid::new("eq")
                    .num_columns(4)
                    .spacing([8.0, 4.0])
                    .show(ui, |ui| {
                        for heading in ["", "Frequency", "Gain", "Q"] {
                            ui.label(heading);
                        }
                        ui.end_row();
                        for (band, freq, gain, q) in [
                            ("Low shelf", &p.ls_freq, &p.ls_gain, &p.ls_q),
                            ("Peak", &p.pk_freq, &p.pk_gain, &p.pk_q),
                            ("High shelf", &p.hs_freq, &p.hs_gain, &p.hs_q),
                        ] {
                            ui.label(band);
                            for param in [freq, gain, q] {
                                ui.add(
                                    ParamSlider::for_param(param, setter)
                                        .with_width(EQ_SLIDER_WIDTH),
                                )
                                .on_hover_text(param.name());
                            }
                            ui.end_row();
                        }
                    });
            });
            section(ui, placed, "Compressor", |ui| {
                controls(ui, "compressor", |ui| {
                    switch_row(ui, setter, &p.comp_on, "Compressor");
                    slider(ui, setter, &p.comp_threshold, "Threshold");
                    slider(ui, setter, &p.comp_ratio, "Ratio");
                    slider(ui, setter, &p.comp_attack, "Attack");
                    slider(ui, setter, &p.comp_release, "Release");
                    slider(ui, setter, &p.comp_knee, "Knee");
                    slider(ui, setter, &p.comp_makeup, "Makeup");
                });
            });
            section(ui, placed, "Delay", |ui| {
                controls(ui, "delay", |ui| {
                    switch_row(ui, setter, &p.delay_on, "Delay");
                    slider(ui, setter, &p.delay_sync, "Sync");
                    if p.delay_sync.value() == DelaySync::Tempo {
                        slider(ui, setter, &p.delay_note, "Note");
                    } else {
                        slider(ui, setter, &p.delay_time, "Time");
                    }
                    slider(ui, setter, &p.delay_feedback, "Feedback");
                    slider(ui, setter, &p.delay_mix, "Mix");
                    switch_row(ui, setter, &p.delay_ping_pong, "Ping-pong");
                });
            });
            section(ui, placed, "Reverb", |ui| {
                controls(ui, "reverb", |ui| {
                    switch_row(ui, setter, &p.reverb_on, "Reverb");
                    slider(ui, setter, &p.reverb_size, "Size");
                    slider(ui, setter, &p.reverb_damping, "Damping");
                    slider(ui, setter, &p.reverb_mix, "Mix");
                });
            });
            section(ui, placed, "Limiter", |ui| {
                controls(ui, "limiter", |ui| {
                    switch_row(ui, setter, &p.limiter_on, "Limiter");
                    slider(ui, setter, &p.limiter_ceiling, "Ceiling");
                    slider(ui, setter, &p.limiter_lookahead, "Lookahead");
                    slider(ui, setter, &p.limiter_release, "Release");
                    switch_row(ui, setter, &p.limiter_true_peak, "True peak");
                });
            });
            let display = &self.display;
            section(ui, placed, "Meters", |ui| {
                let reduction = display.reduction();
                ui.horizontal(|ui| {
                    ui.label("Gain reduction:");
                    ui.colored_label(
                        COMPRESSOR_COLOUR,
                        format!("comp {:.1} dB", reduction.compressor_db),
                    );
                    ui.colored_label(
                        LIMITER_COLOUR,
                        format!("limiter {:.1} dB", reduction.limiter_db),
                    );
                });
                display.reduction_history(ui, egui::vec2(METER_WIDTH + 110.0, 96.0));
                display.level_meter(ui, 0, "In", METER_WIDTH);
                display.level_meter(ui, 1, "Out", METER_WIDTH);
            });
        });
    }

    fn footer(&mut self, ui: &mut egui::Ui) {
        // The stats line grows once audio runs: it wraps rather than running off the window.
        ui.horizontal_wrapped(|ui| {
            let rate = self.meters.sample_rate();
            let latency = self.meters.latency_samples();
            let active = self.meters.active_mode();
            ui.label(mode_line(
                self.params.mode.value(),
                active,
                self.meters.underflows(),
                self.meters.gpu_filters(),
                self.meters.offload_error().as_deref(),
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
            if ui
                .button("Import chain…")
                .on_hover_text(
                    "load the chain file named here into the strip; effects and settings the \
                     strip has no place for are listed, not dropped silently",
                )
                .clicked()
            {
                self.export_status = match import_chain_file(Path::new(&self.export_path)) {
                    Ok(imported) => {
                        if let Some(gui) = &self.gui {
                            self.params.apply_with_gestures(gui, &imported.settings);
                        }
                        self.presets.current = None;
                        imported_text(&self.export_path, &imported.not_fitting)
                    }
                    Err(e) => format!("import failed: {e}"),
                };
            }
            status_label(ui, &self.export_status);
        });
    }
}

/// The editor's preset menu: factory presets and the user's preset folder
/// ([`super::presets`]), previous/next, save, rename and delete.
struct PresetBar {
    dir: Option<std::path::PathBuf>,
    list: Vec<Preset>,
    /// The preset loaded last (an index into `list`), until the user loads something else.
    current: Option<usize>,
    /// The name field (for saving and renaming).
    name: String,
    status: String,
}

impl PresetBar {
    fn new() -> Self {
        let dir = preset_dir();
        let list = list_presets(dir.as_deref());
        Self {
            dir,
            list,
            current: None,
            name: String::new(),
            status: String::new(),
        }
    }

    /// Reads the folder again, keeping the current preset selected by name.
    fn refresh(&mut self, select: Option<&str>) {
        self.list = list_presets(self.dir.as_deref());
        self.current = select.and_then(|name| {
            self.list
                .iter()
                .position(|p| matches!(p, Preset::User(n, _) if n == name))
        });
    }

    /// Loads preset `index` into the parameters (one undo step).
    fn load(&mut self, index: usize, gui: &GuiContext, params: &RtfxParams) {
        let Some(preset) = self.list.get(index) else {
            return;
        };
        match load_preset(preset) {
            Ok(imported) => {
                params.apply_with_gestures(gui, &imported.settings);
                self.current = Some(index);
                self.name = preset.name().to_string();
                self.status = if imported.not_fitting.is_empty() {
                    String::new()
                } else {
                    imported_text(preset.name(), &imported.not_fitting)
                };
            }
            Err(e) => self.status = format!("cannot load {}: {e}", preset.name()),
        }
    }

    /// The bar; returns where its previous and next buttons are (for the layout report).
    fn ui(
        &mut self,
        ui: &mut egui::Ui,
        gui: &GuiContext,
        params: &RtfxParams,
    ) -> [(&'static str, egui::Rect); 2] {
        let mut buttons = [("preset_previous", egui::Rect::NOTHING); 2];
        buttons[1].0 = "preset_next";
        ui.horizontal(|ui| {
            let count = self.list.len();
            let previous = ui.button("<").on_hover_text("previous preset");
            buttons[0].1 = previous.rect;
            if previous.clicked() && count > 0 {
                let i = self.current.map_or(count - 1, |i| (i + count - 1) % count);
                self.load(i, gui, params);
            }
            let shown = self
                .current
                .and_then(|i| self.list.get(i))
                .map_or("(no preset)", |p| p.name())
                .to_string();
            let mut chosen = None;
            egui::ComboBox::from_id_salt("rtfx-presets")
                .selected_text(shown)
                .width(150.0)
                .show_ui(ui, |ui| {
                    let mut user_started = false;
                    for (i, preset) in self.list.iter().enumerate() {
                        if matches!(preset, Preset::User(..)) && !user_started {
                            user_started = true;
                            ui.separator();
                        }
                        if ui
                            .selectable_label(self.current == Some(i), preset.name())
                            .clicked()
                        {
                            chosen = Some(i);
                        }
                    }
                });
            if let Some(i) = chosen {
                self.load(i, gui, params);
            }
            let next = ui.button(">").on_hover_text("next preset");
            buttons[1].1 = next.rect;
            if next.clicked() && count > 0 {
                let i = self.current.map_or(0, |i| (i + 1) % count);
                self.load(i, gui, params);
            }
        });
        ui.horizontal(|ui| {
            ui.add(
                egui::TextEdit::singleline(&mut self.name)
                    .hint_text("preset name")
                    .desired_width(120.0),
            );
            let Some(dir) = self.dir.clone() else {
                ui.label("(no preset folder: set RTFX_PRESET_DIR)");
                return;
            };
            let folder = dir.display().to_string();
            if ui
                .button("Save")
                .on_hover_text(format!("save the strip as a user preset in {folder}"))
                .clicked()
            {
                let settings = params.settings(super::DEFAULT_TEMPO);
                self.status = match save_preset(&dir, &self.name, &settings) {
                    Ok(path) => {
                        let name = self.name.trim().to_string();
                        self.refresh(Some(&name));
                        format!("saved {}", path.display())
                    }
                    Err(e) => format!("not saved: {e}"),
                };
            }
            let user = match self.current.and_then(|i| self.list.get(i)) {
                Some(Preset::User(name, _)) => Some(name.clone()),
                _ => None,
            };
            ui.add_enabled_ui(user.is_some(), |ui| {
                let old = user.clone().unwrap_or_default();
                if ui
                    .button("Rename")
                    .on_hover_text("rename the current user preset to the name given")
                    .clicked()
                {
                    self.status = match rename_preset(&dir, &old, &self.name) {
                        Ok(_) => {
                            let name = self.name.trim().to_string();
                            self.refresh(Some(&name));
                            format!("renamed {old} to {name}")
                        }
                        Err(e) => format!("not renamed: {e}"),
                    };
                }
                if ui
                    .button("Delete")
                    .on_hover_text("delete the current user preset's file")
                    .clicked()
                {
                    self.status = match delete_preset(&dir, &old) {
                        Ok(()) => {
                            self.refresh(None);
                            format!("deleted {old}")
                        }
                        Err(e) => format!("not deleted: {e}"),
                    };
                }
            });
        });
        status_label(ui, &self.status);
        buttons
    }
}

/// A status message on one short line (the whole of it on hover): messages that list what a
/// chain could not bring can be long, and the bars they sit in do not wrap.
fn status_label(ui: &mut egui::Ui, status: &str) {
    const SHOWN: usize = 70;
    if status.is_empty() {
        return;
    }
    if status.chars().count() <= SHOWN {
        ui.label(egui::RichText::new(status).small());
    } else {
        let short: String = status.chars().take(SHOWN - 1).collect();
        ui.label(egui::RichText::new(format!("{short}…")).small())
            .on_hover_text(status);
    }
}

/// What loading a chain brought, naming what did not fit.
fn imported_text(what: &str, not_fitting: &[String]) -> String {
    if not_fitting.is_empty() {
        format!("loaded {what}")
    } else {
        format!(
            "loaded {what}; not in the strip: {}",
            not_fitting.join("; ")
        )
    }
}

/// Shown next to the mode line in offload and GPU mode when the system refused the worker
/// real-time scheduling.
pub const WORKER_NOT_REALTIME: &str = "(worker at normal priority)";

/// The stats panel's processing-mode line: the mode running, the offload underflows, and for
/// GPU mode what runs where (`filters_on_gpu`: the filters ran on the GPU in the last chunk);
/// when offload was asked for but could not start, why (`offload_error`).
pub fn mode_line(
    wanted: ProcessingMode,
    active: ProcessingMode,
    underflows: u64,
    filters_on_gpu: bool,
    offload_error: Option<&str>,
) -> String {
    match active {
        ProcessingMode::Inline if wanted != ProcessingMode::Inline => match offload_error {
            Some(reason) => format!("Mode: inline (offload unavailable: {reason})"),
            None => "Mode: inline (offload worker not running)".to_string(),
        },
        ProcessingMode::Inline => "Mode: inline".to_string(),
        ProcessingMode::Offload => format!("Mode: offload, {underflows} underflows"),
        ProcessingMode::Gpu => format!(
            "Mode: {}, {underflows} underflows",
            super::offload::gpu_status_line(filters_on_gpu)
        ),
    }
}

/// A framed column with a title (see [`wrapping_item`]).
fn section(
    ui: &mut egui::Ui,
    placed: &mut Vec<(&'static str, egui::Rect)>,
    title: &'static str,
    add: impl FnOnce(&mut egui::Ui),
) {
    let rect = wrapping_item(ui, title, |ui| {
        ui.group(|ui| {
            ui.vertical(|ui| {
                ui.label(egui::RichText::new(title).heading());
                add(ui);
            });
        });
    });
    placed.push((title, rect));
}

/// A column in a wrapping row (`horizontal_wrapped`); returns its rectangle.
///
/// In a wrapping row egui decides whether an item moves to the next row from the width it asks
/// for, and a container cannot know its width before it is laid out: a section that did not fit
/// used to be squeezed into the rest of the row (its labels wrapping letter by letter, the
/// sections after it squeezed to nothing) instead of wrapping, and the header's groups ran off
/// the window's right edge. So each item asks for the width it took in the previous frame, and
/// its text never wraps, so that width is its natural one. (The first frame lays them out once
/// to measure them; the next one wraps them.)
fn wrapping_item(ui: &mut egui::Ui, key: &str, add: impl FnOnce(&mut egui::Ui)) -> egui::Rect {
    let id = ui.make_persistent_id(("rtfx-item-width", key));
    let natural: f32 = ui.ctx().data(|d| d.get_temp(id)).unwrap_or(0.0);
    let item = ui.allocate_ui(egui::vec2(natural, ui.available_height()), |ui| {
        ui.style_mut().wrap_mode = Some(egui::TextWrapMode::Extend);
        ui.vertical(add);
    });
    let rect = item.response.rect;
    let width = rect.width();
    if (width - natural).abs() > 0.5 {
        // The editor repaints every 33 ms anyway (see `ui`), which lays the row out again.
        ui.ctx().data_mut(|d| d.insert_temp(id, width));
    }
    rect
}

/// Writes the current strip as a TOML chain file that `rtfx render --chain` accepts, through a
/// temporary file in the same directory and a rename (an existing file is replaced whole or
/// not at all).
pub fn export_chain(params: &RtfxParams, tempo: f64, path: &Path) -> crate::Result<()> {
    super::presets::write_atomically(path, &params.settings(tempo).to_toml()?)
}

//! The editor in a VST3 host under Xvfb (Linux), while the host automates a parameter.
//!
//! A minimal VST3 host, written against the SDK's interfaces (the `vst3` crate), loads the
//! plugin library the way DAWs do (`ModuleEntry`, `GetPluginFactory`), gives each editor a frame
//! with the Linux run loop (`IRunLoop`, as REAPER, Bitwig and Ardour do), and runs an audio
//! thread per instance that sends a parameter change with every 256-frame block. Meanwhile the
//! editors of two instances are opened and closed many times, one at a time and both together.
//! This is where nice-plug's VST3 view has a known race (see the brief): parameter changes from
//! the audio thread reach the editor from another thread while it opens or closes.
//!
//! Checks: the first open fills its window and shows every section without scrolling (as in
//! tests/plugin_gui.rs), every open draws something (a screenshot is not blank after the
//! first), every block's output is finite, the automated value arrives, and nothing crashes,
//! including the library being unloaded right after the last close.
//!
//! Needs Xvfb, xwd and xwininfo like tests/plugin_gui.rs; `RTFX_SKIP_GUI_TESTS=1` skips it.

#![cfg(target_os = "linux")]

mod x11_common;

use std::ffi::{CStr, CString, c_void};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use vst3::Steinberg::Linux::{
    FileDescriptor, IEventHandler, IEventHandlerTrait, IRunLoop, IRunLoopTrait, ITimerHandler,
    ITimerHandlerTrait, TimerInterval,
};
use vst3::Steinberg::Vst::{
    AudioBusBuffers, AudioBusBuffers__type0, BusDirections_, IAudioProcessor, IAudioProcessorTrait,
    IComponent, IComponentHandler, IComponentHandlerTrait, IComponentTrait, IEditController,
    IEditControllerTrait, IParamValueQueue, IParamValueQueueTrait, IParameterChanges,
    IParameterChangesTrait, MediaTypes_, ParamID, ParamValue, ParameterInfo, ProcessData,
    ProcessModes_, ProcessSetup, RestartFlags_, SymbolicSampleSizes_,
};
use vst3::Steinberg::{
    IPlugFrame, IPlugFrameTrait, IPlugView, IPlugViewTrait, IPluginBaseTrait, IPluginFactory,
    IPluginFactoryTrait, PClassInfo, ViewRect, int32, kInvalidArgument,
    kPlatformTypeX11EmbedWindowID, kResultFalse, kResultOk, tresult,
};
use vst3::{Class, ComPtr, ComRef, ComWrapper, Interface};
use x11_common::{
    assert_everything_visible, assert_fills_window, headless_display, layout_report_file,
    reopen_pause, wait_for_layout, wait_until_drawn,
};

const RATE: f64 = 48_000.0;
const BLOCK: usize = 256;

/// The editor's frame: resizes on request, and is the Linux run loop the editor posts its
/// main-thread work to (file descriptors to watch and timers), pumped by [`Frame::pump`].
#[derive(Default)]
struct Frame {
    handlers: Mutex<Vec<(ComPtr<IEventHandler>, FileDescriptor)>>,
    timers: Mutex<Vec<(ComPtr<ITimerHandler>, Duration, Instant)>>,
}

impl Class for Frame {
    type Interfaces = (IPlugFrame, IRunLoop);
}

impl IPlugFrameTrait for Frame {
    unsafe fn resizeView(&self, view: *mut IPlugView, new_size: *mut ViewRect) -> tresult {
        match unsafe { ComRef::from_raw(view) } {
            Some(view) => unsafe { view.onSize(new_size) },
            None => kResultOk,
        }
    }
}

impl IRunLoopTrait for Frame {
    unsafe fn registerEventHandler(
        &self,
        handler: *mut IEventHandler,
        fd: FileDescriptor,
    ) -> tresult {
        if let Some(handler) = unsafe { ComRef::from_raw(handler) } {
            self.handlers
                .lock()
                .unwrap()
                .push((handler.to_com_ptr(), fd));
        }
        kResultOk
    }

    unsafe fn unregisterEventHandler(&self, handler: *mut IEventHandler) -> tresult {
        self.handlers
            .lock()
            .unwrap()
            .retain(|(h, _)| h.as_ptr() != handler);
        kResultOk
    }

    unsafe fn registerTimer(
        &self,
        handler: *mut ITimerHandler,
        milliseconds: TimerInterval,
    ) -> tresult {
        if let Some(handler) = unsafe { ComRef::from_raw(handler) } {
            let every = Duration::from_millis(milliseconds.max(1));
            self.timers
                .lock()
                .unwrap()
                .push((handler.to_com_ptr(), every, Instant::now() + every));
        }
        kResultOk
    }

    unsafe fn unregisterTimer(&self, handler: *mut ITimerHandler) -> tresult {
        self.timers
            .lock()
            .unwrap()
            .retain(|(h, _, _)| h.as_ptr() != handler);
        kResultOk
    }
}

impl Frame {
    /// Runs the host's GUI-thread loop for `time`: calls the handlers whose descriptors are
    /// readable and the timers that are due. Lists are copied first, because handlers may
    /// unregister themselves while they run.
    fn pump(&self, time: Duration) {
        let start = Instant::now();
        while start.elapsed() < time {
            let handlers = self.handlers.lock().unwrap().clone();
            for (handler, fd) in handlers {
                let mut poll = libc::pollfd {
                    fd,
                    events: libc::POLLIN,
                    revents: 0,
                };
                if unsafe { libc::poll(&mut poll, 1, 0) } > 0 && poll.revents & libc::POLLIN != 0 {
                    unsafe { handler.onFDIsSet(fd) };
                }
            }
            let due: Vec<ComPtr<ITimerHandler>> = {
                let mut timers = self.timers.lock().unwrap();
                let now = Instant::now();
                timers
                    .iter_mut()
                    .filter(|(_, _, next)| *next <= now)
                    .map(|(handler, every, next)| {
                        *next = now + *every;
                        handler.clone()
                    })
                    .collect()
            };
            for handler in due {
                unsafe { handler.onTimer() };
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}

/// The host's side of parameter edits and restarts: records the restart flags asked for.
#[derive(Default)]
struct ComponentHandler {
    restart_flags: AtomicI32,
}

impl Class for ComponentHandler {
    type Interfaces = (IComponentHandler,);
}

impl IComponentHandlerTrait for ComponentHandler {
    unsafe fn beginEdit(&self, _id: ParamID) -> tresult {
        kResultOk
    }
    unsafe fn performEdit(&self, _id: ParamID, _value: ParamValue) -> tresult {
        kResultOk
    }
    unsafe fn endEdit(&self, _id: ParamID) -> tresult {
        kResultOk
    }
    unsafe fn restartComponent(&self, flags: int32) -> tresult {
        self.restart_flags.fetch_or(flags, Ordering::SeqCst);
        kResultOk
    }
}

/// One parameter's value at the start of each block: the host's automation.
struct Queue {
    id: ParamID,
    value_bits: AtomicU64,
}

impl Class for Queue {
    type Interfaces = (IParamValueQueue,);
}

impl IParamValueQueueTrait for Queue {
    unsafe fn getParameterId(&self) -> ParamID {
        self.id
    }
    unsafe fn getPointCount(&self) -> int32 {
        1
    }
    unsafe fn getPoint(
        &self,
        index: int32,
        sample_offset: *mut int32,
        value: *mut ParamValue,
    ) -> tresult {
        if index != 0 || sample_offset.is_null() || value.is_null() {
            return kInvalidArgument;
        }
        unsafe {
            *sample_offset = 0;
            *value = f64::from_bits(self.value_bits.load(Ordering::Relaxed));
        }
        kResultOk
    }
    unsafe fn addPoint(&self, _offset: int32, _value: ParamValue, _index: *mut int32) -> tresult {
        kResultFalse
    }
}

/// The block's parameter changes: the first `count` of `queues`.
struct Changes {
    queues: Vec<ComWrapper<Queue>>,
    count: AtomicI32,
}

impl Class for Changes {
    type Interfaces = (IParameterChanges,);
}

impl IParameterChangesTrait for Changes {
    unsafe fn getParameterCount(&self) -> int32 {
        self.count.load(Ordering::Relaxed)
    }
    unsafe fn getParameterData(&self, index: int32) -> *mut IParamValueQueue {
        usize::try_from(index)
            .ok()
            .filter(|&i| i < self.count.load(Ordering::Relaxed) as usize)
            .and_then(|i| self.queues.get(i))
            .and_then(|q| q.as_com_ref::<IParamValueQueue>())
            .map_or(std::ptr::null_mut(), |q| q.as_ptr())
    }
    unsafe fn addParameterData(
        &self,
        _id: *const ParamID,
        _index: *mut int32,
    ) -> *mut IParamValueQueue {
        std::ptr::null_mut()
    }
}

/// The plugin library, loaded as a VST3 host loads a module; `ModuleExit` and unloaded on drop.
struct Module {
    handle: *mut c_void,
    factory: Option<ComPtr<IPluginFactory>>,
}

fn library_path() -> PathBuf {
    if let Some(p) = std::env::var_os("RTFX_VST3_LIBRARY") {
        return PathBuf::from(p);
    }
    let exe = std::env::current_exe().expect("test binary path");
    exe.parent().expect("deps directory").join("librtfx.so")
}

/// The address of `name` in the library, or a panic that names it.
fn symbol(handle: *mut c_void, name: &CStr) -> *mut c_void {
    let address = unsafe { libc::dlsym(handle, name.as_ptr()) };
    assert!(!address.is_null(), "the library does not export {name:?}");
    address
}

impl Module {
    fn load(path: &std::path::Path) -> Module {
        use std::os::unix::ffi::OsStrExt;
        let c_path = CString::new(path.as_os_str().as_bytes()).expect("library path");
        let handle = unsafe { libc::dlopen(c_path.as_ptr(), libc::RTLD_NOW | libc::RTLD_LOCAL) };
        assert!(
            !handle.is_null(),
            "dlopen {}: {:?}",
            path.display(),
            unsafe { CStr::from_ptr(libc::dlerror()) }
        );
        type Entry = extern "C" fn(*mut c_void) -> bool;
        type GetFactory = extern "system" fn() -> *mut c_void;
        let entry: Entry = unsafe { std::mem::transmute(symbol(handle, c"ModuleEntry")) };
        assert!(entry(handle), "ModuleEntry failed");
        let get_factory: GetFactory =
            unsafe { std::mem::transmute(symbol(handle, c"GetPluginFactory")) };
        let factory = unsafe { ComPtr::from_raw(get_factory() as *mut IPluginFactory) };
        assert!(factory.is_some(), "GetPluginFactory returned nothing");
        Module { handle, factory }
    }

    fn factory(&self) -> &ComPtr<IPluginFactory> {
        self.factory.as_ref().expect("the module is loaded")
    }

    /// The class id of the audio effect (category "Audio Module Class").
    fn effect_class(&self) -> [i8; 16] {
        let factory = self.factory();
        for index in 0..unsafe { factory.countClasses() } {
            let mut info: PClassInfo = unsafe { std::mem::zeroed() };
            assert_eq!(unsafe { factory.getClassInfo(index, &mut info) }, kResultOk);
            let category = unsafe { CStr::from_ptr(info.category.as_ptr()) };
            if category.to_bytes() == b"Audio Module Class" {
                return info.cid;
            }
        }
        panic!("no audio effect class in the factory");
    }
}

impl Drop for Module {
    fn drop(&mut self) {
        drop(self.factory.take());
        type Exit = extern "C" fn() -> bool;
        let exit: Exit = unsafe { std::mem::transmute(symbol(self.handle, c"ModuleExit")) };
        assert!(exit(), "ModuleExit failed");
        unsafe { libc::dlclose(self.handle) };
    }
}

/// What an audio thread saw.
#[derive(Debug, Default)]
struct AudioReport {
    blocks: usize,
    failed_calls: usize,
    non_finite: usize,
    last_value: f64,
}

/// One plugin instance, active, with an audio thread automating `param` (the input gain),
/// and moving the limiter lookahead to its longest (a latency change) once `long_lookahead` is
/// set.
struct Instance {
    component: ComPtr<IComponent>,
    controller: ComPtr<IEditController>,
    handler: ComWrapper<ComponentHandler>,
    param: ParamID,
    long_lookahead: Arc<AtomicBool>,
    stop: Arc<AtomicBool>,
    audio: Option<std::thread::JoinHandle<AudioReport>>,
}

impl Instance {
    fn new(module: &Module, cid: &[i8; 16]) -> Self {
        let mut object: *mut c_void = std::ptr::null_mut();
        let result = unsafe {
            module.factory().createInstance(
                cid.as_ptr(),
                IComponent::IID.as_ptr() as *const _,
                &mut object,
            )
        };
        assert_eq!(result, kResultOk, "createInstance");
        let component =
            unsafe { ComPtr::from_raw(object as *mut IComponent) }.expect("an IComponent");
        assert_eq!(
            unsafe { component.initialize(std::ptr::null_mut()) },
            kResultOk
        );
        let controller: ComPtr<IEditController> = component
            .cast()
            .expect("the component is its own edit controller");
        let handler = ComWrapper::new(ComponentHandler::default());
        let handler_ptr = handler
            .as_com_ref::<IComponentHandler>()
            .expect("handler")
            .as_ptr();
        assert_eq!(
            unsafe { controller.setComponentHandler(handler_ptr) },
            kResultOk
        );
        let param = Self::param_id(&controller, "Input Gain");
        let limiter = Self::param_id(&controller, "Limiter Lookahead");
        let processor: ComPtr<IAudioProcessor> = component.cast().expect("an IAudioProcessor");
        let mut setup = ProcessSetup {
            processMode: ProcessModes_::kRealtime as i32,
            symbolicSampleSize: SymbolicSampleSizes_::kSample32 as i32,
            maxSamplesPerBlock: BLOCK as i32,
            sampleRate: RATE,
        };
        assert_eq!(unsafe { processor.setupProcessing(&mut setup) }, kResultOk);
        for dir in [BusDirections_::kInput, BusDirections_::kOutput] {
            let r = unsafe { component.activateBus(MediaTypes_::kAudio as i32, dir as i32, 0, 1) };
            assert_eq!(r, kResultOk, "activateBus");
        }
        assert_eq!(unsafe { component.setActive(1) }, kResultOk);
        assert_eq!(unsafe { processor.setProcessing(1) }, kResultOk);
        let stop = Arc::new(AtomicBool::new(false));
        let long_lookahead = Arc::new(AtomicBool::new(false));
        let audio = {
            let (stop, long_lookahead) = (stop.clone(), long_lookahead.clone());
            std::thread::spawn(move || {
                run_audio(processor, [param, limiter], &long_lookahead, &stop)
            })
        };
        Instance {
            component,
            controller,
            handler,
            param,
            long_lookahead,
            stop,
            audio: Some(audio),
        }
    }

    /// The id of the parameter titled `title`.
    fn param_id(controller: &ComPtr<IEditController>, title: &str) -> ParamID {
        for index in 0..unsafe { controller.getParameterCount() } {
            let mut info: ParameterInfo = unsafe { std::mem::zeroed() };
            assert_eq!(
                unsafe { controller.getParameterInfo(index, &mut info) },
                kResultOk
            );
            let end = info.title.iter().position(|&c| c == 0).unwrap_or(128);
            if String::from_utf16_lossy(&info.title[..end]) == title {
                return info.id;
            }
        }
        panic!("no parameter titled {title}");
    }

    /// Stops the audio thread and returns what it saw.
    fn stop_audio(&mut self) -> AudioReport {
        self.stop.store(true, Ordering::SeqCst);
        self.audio
            .take()
            .expect("audio thread")
            .join()
            .expect("the audio thread ended normally")
    }

    fn shut_down(self) {
        let processor: ComPtr<IAudioProcessor> = self.component.cast().expect("processor");
        assert_eq!(unsafe { processor.setProcessing(0) }, kResultOk);
        assert_eq!(unsafe { self.component.setActive(0) }, kResultOk);
        assert_eq!(unsafe { self.component.terminate() }, kResultOk);
    }
}

/// The audio thread: 256-frame stereo blocks of a sine at the pace of real time, each with a
/// new value for the first of `params` (a slow sweep) and, once `long_lookahead` is set, 1.0 for
/// the second, until `stop`.
fn run_audio(
    processor: ComPtr<IAudioProcessor>,
    params: [ParamID; 2],
    long_lookahead: &AtomicBool,
    stop: &AtomicBool,
) -> AudioReport {
    let changes = ComWrapper::new(Changes {
        queues: params
            .iter()
            .map(|&id| {
                ComWrapper::new(Queue {
                    id,
                    value_bits: AtomicU64::new(1.0f64.to_bits()),
                })
            })
            .collect(),
        count: AtomicI32::new(1),
    });
    let changes_ptr = changes
        .as_com_ref::<IParameterChanges>()
        .expect("changes")
        .as_ptr();
    let mut input = [vec![0.0f32; BLOCK], vec![0.0f32; BLOCK]];
    let mut output = [vec![0.0f32; BLOCK], vec![0.0f32; BLOCK]];
    let mut report = AudioReport::default();
    let period = Duration::from_secs_f64(BLOCK as f64 / RATE);
    let mut next = Instant::now();
    while !stop.load(Ordering::SeqCst) {
        let block = report.blocks;
        for channel in input.iter_mut() {
            for (i, x) in channel.iter_mut().enumerate() {
                let t = (block * BLOCK + i) as f64 / RATE;
                *x = (0.3 * (std::f64::consts::TAU * 440.0 * t).sin()) as f32;
            }
        }
        let value = 0.5 + 0.4 * (block as f64 * 0.05).sin();
        changes.queues[0]
            .value_bits
            .store(value.to_bits(), Ordering::Relaxed);
        if long_lookahead.load(Ordering::Relaxed) {
            changes.count.store(2, Ordering::Relaxed);
        }
        let mut in_ptrs = [input[0].as_mut_ptr(), input[1].as_mut_ptr()];
        let mut out_ptrs = [output[0].as_mut_ptr(), output[1].as_mut_ptr()];
        let mut inputs = AudioBusBuffers {
            numChannels: 2,
            silenceFlags: 0,
            __field0: AudioBusBuffers__type0 {
                channelBuffers32: in_ptrs.as_mut_ptr(),
            },
        };
        let mut outputs = AudioBusBuffers {
            numChannels: 2,
            silenceFlags: 0,
            __field0: AudioBusBuffers__type0 {
                channelBuffers32: out_ptrs.as_mut_ptr(),
            },
        };
        let mut data = ProcessData {
            processMode: ProcessModes_::kRealtime as i32,
            symbolicSampleSize: SymbolicSampleSizes_::kSample32 as i32,
            numSamples: BLOCK as i32,
            numInputs: 1,
            numOutputs: 1,
            inputs: &mut inputs,
            outputs: &mut outputs,
            inputParameterChanges: changes_ptr,
            outputParameterChanges: std::ptr::null_mut(),
            inputEvents: std::ptr::null_mut(),
            outputEvents: std::ptr::null_mut(),
            processContext: std::ptr::null_mut(),
        };
        if unsafe { processor.process(&mut data) } != kResultOk {
            report.failed_calls += 1;
        }
        report.non_finite += output.iter().flatten().filter(|x| !x.is_finite()).count();
        report.blocks += 1;
        report.last_value = value;
        next += period;
        if let Some(wait) = next.checked_duration_since(Instant::now()) {
            std::thread::sleep(wait);
        }
    }
    report
}

/// Creates the editor view and attaches it to `parent` (an X11 window), with `frame` as its
/// frame and run loop. Returns the view and its size.
fn open(
    controller: &ComPtr<IEditController>,
    frame: &ComWrapper<Frame>,
    parent: u64,
) -> (ComPtr<IPlugView>, (u32, u32)) {
    let view = unsafe { ComPtr::from_raw(controller.createView(c"editor".as_ptr())) }
        .expect("the plugin has an editor view");
    assert_eq!(
        unsafe { view.isPlatformTypeSupported(kPlatformTypeX11EmbedWindowID) },
        kResultOk
    );
    let frame_ptr = frame.as_com_ref::<IPlugFrame>().expect("frame").as_ptr();
    assert_eq!(unsafe { view.setFrame(frame_ptr) }, kResultOk);
    let mut rect = ViewRect {
        left: 0,
        top: 0,
        right: 0,
        bottom: 0,
    };
    assert_eq!(unsafe { view.getSize(&mut rect) }, kResultOk);
    assert!(
        rect.right - rect.left >= 400 && rect.bottom - rect.top >= 300,
        "editor size {}x{}",
        rect.right - rect.left,
        rect.bottom - rect.top
    );
    // Xvfb on a busy machine has refused a new X connection now and then (the editor then
    // fails to open and says so; the host goes on): retry like a user would, as
    // tests/plugin_gui.rs does.
    let mut attempts = 0;
    while unsafe { view.attached(parent as *mut c_void, kPlatformTypeX11EmbedWindowID) }
        != kResultOk
    {
        attempts += 1;
        assert!(attempts < 3, "the editor did not attach in 3 attempts");
        eprintln!("the editor did not attach; trying again");
        std::thread::sleep(Duration::from_millis(200));
    }
    let size = (rect.right - rect.left, rect.bottom - rect.top);
    (view, (size.0 as u32, size.1 as u32))
}

/// Detaches and releases the editor view, as a host does when its window closes.
fn close(view: ComPtr<IPlugView>) {
    assert_eq!(unsafe { view.removed() }, kResultOk, "removed");
    assert_eq!(unsafe { view.setFrame(std::ptr::null_mut()) }, kResultOk);
    drop(view);
}

#[test]
fn editor_opens_and_closes_while_the_host_automates() {
    let Some((xvfb, root)) = headless_display("the VST3 editor test") else {
        return;
    };

    let layout = layout_report_file("vst3-editor");
    let module = Module::load(&library_path());
    let cid = module.effect_class();
    let frame = ComWrapper::new(Frame::default());
    let mut a = Instance::new(&module, &cid);
    let mut b = Instance::new(&module, &cid);

    let (mut view_a, size) = open(&a.controller, &frame, root);
    let shot = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("rtfx-vst3-editor.xwd");
    let drawn = wait_until_drawn(&xvfb.display, size, &shot, || {
        frame.pump(Duration::from_millis(500))
    });
    assert_fills_window(&drawn, size);
    // Every section is visible at the default size, without scrolling.
    let window_line = format!("window {} {}", size.0, size.1);
    let laid_out = wait_for_layout(&layout, &["pixels_per_point 1", &window_line], || {
        frame.pump(Duration::from_millis(100))
    });
    assert_everything_visible(&laid_out);

    let mut view_b = Some(open(&b.controller, &frame, root).0);
    frame.pump(Duration::from_millis(300));
    let pause = reopen_pause();
    for round in 0..20 {
        let both = round % 4 == 3;
        close(view_a);
        if both {
            close(view_b.take().expect("b's editor is open"));
        }
        frame.pump(pause);
        view_a = open(&a.controller, &frame, root).0;
        if both {
            view_b = Some(open(&b.controller, &frame, root).0);
        }
        frame.pump(Duration::from_millis(if round % 5 == 0 { 200 } else { 30 }));
    }
    close(view_a);
    close(view_b.expect("b's editor is open"));
    let _ = std::fs::remove_file(&layout);

    // The host still hears of latency changes: the limiter's lookahead, moved from 5 to 20 ms
    // by a parameter change in `process`, reaches it as a restart (the wrapper's background
    // thread delivers it).
    for instance in [&a, &b] {
        instance.long_lookahead.store(true, Ordering::SeqCst);
    }
    let start = Instant::now();
    let latency_changed = |i: &Instance| {
        i.handler.restart_flags.load(Ordering::SeqCst) & RestartFlags_::kLatencyChanged != 0
    };
    while start.elapsed() < Duration::from_secs(5) && !(latency_changed(&a) && latency_changed(&b))
    {
        frame.pump(Duration::from_millis(20));
    }
    for instance in [&a, &b] {
        assert!(
            latency_changed(instance),
            "the host was not told of the new latency (restart flags {:#x})",
            instance.handler.restart_flags.load(Ordering::SeqCst)
        );
        let processor: ComPtr<IAudioProcessor> = instance.component.cast().expect("processor");
        assert!(unsafe { processor.getLatencySamples() } > 0);
    }

    for instance in [&mut a, &mut b] {
        let report = instance.stop_audio();
        eprintln!("audio thread: {report:?}");
        assert!(report.blocks > 100, "{report:?}");
        assert_eq!(report.failed_calls, 0, "{report:?}");
        assert_eq!(report.non_finite, 0, "{report:?}");
        // The last automated value is the parameter's value now, to the parameter's rounding
        // (Input Gain snaps to 0.1 dB over -24..24 dB; the host's value is not snapped).
        let now = unsafe { instance.controller.getParamNormalized(instance.param) };
        assert!(
            (now - report.last_value).abs() <= 0.1 / 48.0 / 2.0 + 1e-6,
            "automation did not arrive: {now} vs {}",
            report.last_value
        );
    }
    a.shut_down();
    b.shut_down();
    drop(frame);
    // Unload right away: no editor thread may still be running the plugin's code.
    drop(module);
}

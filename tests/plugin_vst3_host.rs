//! The VST3 wrapper under what the VST3 SDK validator does to it (no display needed):
//! - its extensive mode automates every parameter on every sample of a block ("Change every 1
//!   Samples"), where nice-plug grew its event buffer on the audio thread: here the `process`
//!   calls run inside `assert_no_alloc`, with one and with two points per sample, and the last
//!   point of every parameter must be its value afterwards;
//! - its "Parameter Bypass persistence" test sets the bypass from the edit controller while the
//!   plugin processes, which nice-plug ignored: the controller must report it, the processor
//!   must apply it, and the saved state must hold it;
//! - its class info must name the SDK the wrapper is built against;
//! - instances come and go while others run: the background thread all instances share must
//!   survive a removed instance's leftover tasks.
//!
//! The automation and bypass tests host the wrapper in this process
//! (`nice_plug::wrapper::vst3::Wrapper`, the code the `.vst3` runs), so that this binary's
//! allocator sees every allocation `process` makes; the factory test loads the built library
//! as hosts do.

#![cfg(target_os = "linux")]

mod vst3_common;

use std::ffi::{CStr, c_void};
use std::sync::Mutex;

use assert_no_alloc::{AllocDisabler, assert_no_alloc};
use nice_plug::wrapper::vst3::Wrapper;
use rtfx::plugin::Rtfx;
use vst3::Steinberg::Vst::{
    IAudioProcessor, IAudioProcessorTrait, IComponent, IComponentTrait, IEditController,
    IEditControllerTrait, IParameterChanges, ParamID, ParameterInfo_,
};
use vst3::Steinberg::{
    IBStream, IBStreamTrait, IPluginBaseTrait, IPluginFactory2, IPluginFactory2Trait,
    IPluginFactoryTrait, PClassInfo2, int32, int64, kInvalidArgument, kResultOk, tresult,
};
use vst3::{Class, ComPtr, ComWrapper};
use vst3_common::{
    Changes, ComponentHandler, Module, library_path, param_id, parameters, process_stereo,
    start_processing, title,
};

#[global_allocator]
static ALLOCATOR: AllocDisabler = AllocDisabler;

const RATE: f64 = 48_000.0;
const BLOCK: usize = 512;

/// A plugin instance hosted in this process: initialised, buses on, set up for `BLOCK`-frame
/// blocks at 48 kHz, active and processing.
struct Instance {
    wrapper: ComWrapper<Wrapper<Rtfx>>,
    component: ComPtr<IComponent>,
    controller: ComPtr<IEditController>,
    processor: ComPtr<IAudioProcessor>,
}

impl Instance {
    fn new() -> Instance {
        let wrapper = ComWrapper::new(Wrapper::<Rtfx>::new());
        let component = wrapper.to_com_ptr::<IComponent>().expect("an IComponent");
        assert_eq!(
            unsafe { component.initialize(std::ptr::null_mut()) },
            kResultOk
        );
        let controller: ComPtr<IEditController> = component.cast().expect("a controller");
        let processor: ComPtr<IAudioProcessor> = component.cast().expect("a processor");
        start_processing(&component, &processor, BLOCK, RATE);
        Instance {
            wrapper,
            component,
            controller,
            processor,
        }
    }

    fn set_processing(&self, on: bool) {
        assert_eq!(
            unsafe { self.processor.setProcessing(u8::from(on)) },
            kResultOk
        );
    }

    fn get(&self, id: ParamID) -> f64 {
        unsafe { self.controller.getParamNormalized(id) }
    }

    fn set(&self, id: ParamID, value: f64) {
        assert_eq!(
            unsafe { self.controller.setParamNormalized(id, value) },
            kResultOk
        );
    }

    /// One `process` call on the audio thread (a thread of its own, as in a host), inside
    /// `assert_no_alloc`: an allocation aborts this test binary.
    fn process_checked(
        &self,
        input: &mut [Vec<f32>; 2],
        output: &mut [Vec<f32>; 2],
        changes: *mut IParameterChanges,
    ) {
        // Raw pointers are not `Send`; the address is, and the call is joined below.
        let changes = changes as usize;
        let processor = &self.processor;
        let result = std::thread::scope(|scope| {
            scope
                .spawn(move || {
                    assert_no_alloc(|| process_stereo(processor, input, output, changes as *mut _))
                })
                .join()
                .expect("the audio thread")
        });
        assert_eq!(result, kResultOk, "process");
    }

    /// The component's state (`IComponent::getState`).
    fn state(&self) -> Vec<u8> {
        let stream = ComWrapper::new(MemoryStream::default());
        let ptr = stream.as_com_ref::<IBStream>().expect("stream").as_ptr();
        assert_eq!(unsafe { self.component.getState(ptr) }, kResultOk);
        stream.bytes()
    }

    fn load_state(&self, bytes: &[u8]) {
        let stream = ComWrapper::new(MemoryStream::with(bytes));
        let ptr = stream.as_com_ref::<IBStream>().expect("stream").as_ptr();
        assert_eq!(unsafe { self.component.setState(ptr) }, kResultOk);
    }
}

impl Drop for Instance {
    fn drop(&mut self) {
        unsafe {
            self.processor.setProcessing(0);
            self.component.setActive(0);
            self.component.terminate();
        }
    }
}

/// An in-memory `IBStream`.
#[derive(Default)]
struct MemoryStream {
    data: Mutex<(Vec<u8>, usize)>,
}

impl MemoryStream {
    fn with(bytes: &[u8]) -> Self {
        Self {
            data: Mutex::new((bytes.to_vec(), 0)),
        }
    }

    fn bytes(&self) -> Vec<u8> {
        self.data.lock().expect("stream").0.clone()
    }
}

impl Class for MemoryStream {
    type Interfaces = (IBStream,);
}

impl IBStreamTrait for MemoryStream {
    unsafe fn read(&self, buffer: *mut c_void, n: int32, read: *mut int32) -> tresult {
        let mut data = self.data.lock().expect("stream");
        let (bytes, pos) = &mut *data;
        let n = (n.max(0) as usize).min(bytes.len() - *pos);
        unsafe {
            std::ptr::copy_nonoverlapping(bytes[*pos..].as_ptr(), buffer as *mut u8, n);
            if !read.is_null() {
                *read = n as int32;
            }
        }
        *pos += n;
        kResultOk
    }
    unsafe fn write(&self, buffer: *mut c_void, n: int32, written: *mut int32) -> tresult {
        let mut data = self.data.lock().expect("stream");
        let (bytes, pos) = &mut *data;
        let n = n.max(0) as usize;
        let src = unsafe { std::slice::from_raw_parts(buffer as *const u8, n) };
        let end = *pos + n;
        if bytes.len() < end {
            bytes.resize(end, 0);
        }
        bytes[*pos..end].copy_from_slice(src);
        *pos = end;
        if !written.is_null() {
            unsafe { *written = n as int32 };
        }
        kResultOk
    }
    unsafe fn seek(&self, offset: int64, mode: int32, result: *mut int64) -> tresult {
        let mut data = self.data.lock().expect("stream");
        let (bytes, pos) = &mut *data;
        let base = match mode {
            0 => 0,
            1 => *pos as i64,
            2 => bytes.len() as i64,
            _ => return kInvalidArgument,
        };
        let target = base + offset;
        if target < 0 || target as usize > bytes.len() {
            return kInvalidArgument;
        }
        *pos = target as usize;
        if !result.is_null() {
            unsafe { *result = target };
        }
        kResultOk
    }
    unsafe fn tell(&self, result: *mut int64) -> tresult {
        let pos = self.data.lock().expect("stream").1;
        if !result.is_null() {
            unsafe { *result = pos as int64 };
        }
        kResultOk
    }
}

/// A fixed pseudo-random sequence in [0, 1].
fn values(seed: u64) -> impl FnMut() -> f64 {
    let mut rng = rtfx::dsp::noise::Noise::new(seed);
    move || rng.unit_f64()
}

/// The VST3 validator's "Change every 1 Samples" on all parameters, then twice that: every
/// `process` call runs inside `assert_no_alloc`. Afterwards each parameter holds its queue's
/// last value (as a fresh instance would after `setParamNormalized` with it), nothing is
/// dropped while the points fit the block (one per sample and parameter), and when they do
/// not, the drops are counted and the last values still arrive.
#[test]
fn every_parameter_automated_on_every_sample_never_allocates() {
    let plugin = Instance::new();
    let reference = Instance::new();
    reference.set_processing(false);
    let ids: Vec<ParamID> = parameters(&plugin.controller)
        .iter()
        .map(|p| p.id)
        .collect();
    assert!(ids.len() > 40, "{} parameters", ids.len());
    let changes = Changes::new(&ids, 2 * BLOCK, ids.len());
    let changes_ptr = changes
        .as_com_ref::<IParameterChanges>()
        .expect("changes")
        .as_ptr();
    let mut input = [vec![0.25f32; BLOCK], vec![-0.25f32; BLOCK]];
    let mut output = [vec![0.0f32; BLOCK], vec![0.0f32; BLOCK]];
    let mut next = values(7);
    for (round, points_per_sample) in [(0, 1), (1, 1), (2, 1), (3, 2), (4, 2)] {
        let mut last = Vec::new();
        for queue in &changes.queues {
            let points: Vec<(i32, f64)> = (0..BLOCK * points_per_sample)
                .map(|i| ((i / points_per_sample) as i32, next()))
                .collect();
            last.push(points[points.len() - 1].1);
            queue.set_points(points);
        }
        let dropped_before = plugin.wrapper.dropped_input_events();
        plugin.process_checked(&mut input, &mut output, changes_ptr);
        assert!(
            output.iter().flatten().all(|x| x.is_finite()),
            "round {round}: non-finite output"
        );
        let dropped = plugin.wrapper.dropped_input_events() - dropped_before;
        if points_per_sample == 1 {
            assert_eq!(dropped, 0, "round {round}: points fit, none may be dropped");
        } else {
            // Room for one point per sample and parameter: the second half is thinned out.
            assert!(
                dropped >= (ids.len() * BLOCK) as u64 / 2,
                "round {round}: {dropped} dropped"
            );
        }
        for (&id, &value) in ids.iter().zip(&last) {
            reference.set(id, value);
            assert_eq!(
                plugin.get(id),
                reference.get(id),
                "round {round}: parameter {id} is not at its last automated value {value}"
            );
        }
    }
}

/// The VST3 validator's "Parameter Bypass persistence", step by step, plus what the processor
/// does with a bypass set from the controller.
#[test]
fn bypass_set_by_the_controller_while_processing_sticks() {
    let plugin = Instance::new();
    let infos = parameters(&plugin.controller);
    let bypass = infos
        .iter()
        .find(|p| p.flags & ParameterInfo_::ParameterFlags_::kIsBypass != 0)
        .expect("a bypass parameter")
        .id;
    let gain = infos
        .iter()
        .find(|p| title(p) == "Input Gain")
        .expect("Input Gain")
        .id;
    let mut empty = [Vec::new(), Vec::new()];
    let mut empty_out = [Vec::new(), Vec::new()];

    // 1. Bypass on from the controller while processing: the controller reports it at once.
    plugin.set(bypass, 1.0);
    assert!(
        plugin.get(bypass) >= 1.0,
        "The bypass parameter was not correctly set in the controller (reads {})",
        plugin.get(bypass)
    );
    // 2. A flush call carrying the same change, then stop: the saved state has the bypass on.
    let changes = Changes::new(&[bypass], 1, 1);
    let changes_ptr = changes
        .as_com_ref::<IParameterChanges>()
        .expect("changes")
        .as_ptr();
    changes.queues[0].set_value(1.0);
    plugin.process_checked(&mut empty, &mut empty_out, changes_ptr);
    plugin.set_processing(false);
    let saved = plugin.state();
    // 3. Bypass off from the controller while processing, flushed without changes.
    plugin.set_processing(true);
    plugin.set(bypass, 0.0);
    assert!(plugin.get(bypass) <= 0.0, "bypass off was not set");
    plugin.process_checked(&mut empty, &mut empty_out, std::ptr::null_mut());
    plugin.set_processing(false);
    assert!(plugin.get(bypass) <= 0.0, "bypass off did not stick");
    // 4. The saved state restores the bypass.
    plugin.load_state(&saved);
    assert!(
        plugin.get(bypass) >= 1.0,
        "the state did not keep the bypass"
    );
    let other = Instance::new();
    other.set_processing(false);
    other.load_state(&saved);
    assert!(
        other.get(bypass) >= 1.0,
        "a new instance did not get the bypass"
    );

    // The processor applies a controller's bypass too: with the input gain at -24 dB, the
    // bypassed output is the input delayed by the latency (240 frames) after the 10 ms
    // cross-fade; an ignored bypass leaves it 24 dB down.
    let plugin = Instance::new();
    plugin.set_processing(false);
    plugin.set(gain, 0.0);
    plugin.set_processing(true);
    let mut input = [vec![0.5f32; BLOCK], vec![-0.5f32; BLOCK]];
    let mut output = [vec![0.0f32; BLOCK], vec![0.0f32; BLOCK]];
    for _ in 0..4 {
        plugin.process_checked(&mut input, &mut output, std::ptr::null_mut());
    }
    let quiet = 0.5 * 10f32.powf(-24.0 / 20.0);
    assert!(
        (output[0][BLOCK - 1] - quiet).abs() < 1e-4,
        "{}",
        output[0][BLOCK - 1]
    );
    plugin.set(bypass, 1.0);
    for _ in 0..4 {
        plugin.process_checked(&mut input, &mut output, std::ptr::null_mut());
    }
    assert!(
        output[0].iter().all(|&x| (x - 0.5).abs() < 1e-6),
        "the processor did not apply the controller's bypass: {}",
        output[0][BLOCK - 1]
    );
    assert!(plugin.get(bypass) >= 1.0);
}

/// Hosts show the SDK a plugin was built with: the class info names the SDK whose headers
/// the wrapper's bindings come from, and the vendor.
#[test]
fn the_factory_names_the_sdk_and_the_vendor() {
    let module = Module::load(&library_path());
    let factory: ComPtr<IPluginFactory2> = module.factory().cast().expect("IPluginFactory2");
    let count = unsafe { factory.countClasses() };
    assert!(count >= 1);
    let want = unsafe { CStr::from_ptr(vst3::Steinberg::Vst::SDKVersionString) };
    assert_eq!(want.to_str(), Ok("VST 3.8.0"));
    for index in 0..count {
        let mut info: PClassInfo2 = unsafe { std::mem::zeroed() };
        assert_eq!(
            unsafe { factory.getClassInfo2(index, &mut info) },
            kResultOk
        );
        let text = |field: &[std::ffi::c_char]| {
            unsafe { CStr::from_ptr(field.as_ptr()) }
                .to_string_lossy()
                .into_owned()
        };
        assert_eq!(
            text(&info.sdkVersion),
            want.to_string_lossy(),
            "class {index}"
        );
        assert_eq!(text(&info.vendor), "rtfx", "class {index}");
        assert!(!text(&info.version).is_empty());
    }
}

/// nice-plug runs every instance's main-thread tasks (parameter notifications, latency
/// changes) on one background thread per process. It used to shut that thread down when it
/// met a task of an instance that no longer existed, so removing an instance right after it
/// had automation left every other instance without its tasks (the host never heard of their
/// latency changes), and the last instance's removal then panicked (an abort in the host).
/// Deterministically: the survivor's host holds the shared thread inside a restart request
/// while another instance is automated on every sample and removed (its notifications fill
/// the task queue behind), and the survivor's next latency change is requested while the
/// queue is full (upstream dropped such a request); once released, that latency change must
/// still reach the host.
#[test]
fn removing_an_instance_leaves_the_shared_task_thread_running() {
    use std::sync::atomic::Ordering::SeqCst;
    let survivor = Instance::new();
    let handler = ComWrapper::new(ComponentHandler::default());
    let handler_ptr = handler
        .as_com_ref::<vst3::Steinberg::Vst::IComponentHandler>()
        .expect("handler")
        .as_ptr();
    assert_eq!(
        unsafe { survivor.controller.setComponentHandler(handler_ptr) },
        kResultOk
    );
    let mut input = [vec![0.1f32; BLOCK], vec![0.1f32; BLOCK]];
    let mut output = [vec![0.0f32; BLOCK], vec![0.0f32; BLOCK]];
    let lookahead = param_id(&survivor.controller, "Limiter Lookahead");
    let lookahead_changes = Changes::new(&[lookahead], 1, 1);
    let lookahead_ptr = lookahead_changes
        .as_com_ref::<IParameterChanges>()
        .expect("changes")
        .as_ptr();
    // Waits (up to 5 s) for the host's `n`th restart request, processing empty blocks
    // meanwhile as a host goes on doing.
    let wait_for_restarts = |n: i32, input: &mut [Vec<f32>; 2], output: &mut [Vec<f32>; 2]| {
        let start = std::time::Instant::now();
        while handler.restarts.load(SeqCst) < n
            && start.elapsed() < std::time::Duration::from_secs(5)
        {
            survivor.process_checked(input, output, std::ptr::null_mut());
            std::thread::sleep(std::time::Duration::from_millis(2));
        }
        handler.restarts.load(SeqCst)
    };

    // The survivor's lookahead 5 → 20 ms: the shared thread asks its host to restart, and
    // stays there while the host holds it.
    handler.hold.store(true, SeqCst);
    lookahead_changes.queues[0].set_value(1.0);
    survivor.process_checked(&mut input, &mut output, lookahead_ptr);
    assert_eq!(
        wait_for_restarts(1, &mut input, &mut output),
        1,
        "the first latency change never arrived"
    );

    // Another instance, automated on every sample and removed while its notifications (far
    // more than the task queue's 4096) wait in the queue.
    let doomed = Instance::new();
    let ids: Vec<ParamID> = parameters(&doomed.controller)
        .iter()
        .map(|p| p.id)
        .collect();
    let changes = Changes::new(&ids, BLOCK, ids.len());
    let mut next = values(3);
    for queue in &changes.queues {
        queue.set_points((0..BLOCK).map(|i| (i as i32, next())));
    }
    let ptr = changes
        .as_com_ref::<IParameterChanges>()
        .expect("changes")
        .as_ptr();
    doomed.process_checked(&mut input, &mut output, ptr);
    drop(doomed);

    // The survivor's lookahead back to 0 ms while the queue is still full: a second latency
    // change, whose restart request cannot be queued yet.
    lookahead_changes.queues[0].set_value(0.0);
    survivor.process_checked(&mut input, &mut output, lookahead_ptr);
    handler.hold.store(false, SeqCst);
    assert_eq!(
        wait_for_restarts(2, &mut input, &mut output),
        2,
        "the host never heard of the survivor's second latency change"
    );
    let latency_changed = vst3::Steinberg::Vst::RestartFlags_::kLatencyChanged;
    assert_ne!(handler.restart_flags.load(SeqCst) & latency_changed, 0);
}

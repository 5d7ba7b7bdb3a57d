//! A minimal VST3 host for the tests, written against the SDK's interfaces (the `vst3` crate,
//! the version nice-plug uses): the plugin library loaded as DAWs load it ([`Module`]), the
//! host's parameter changes with any number of points per parameter ([`Queue`], [`Changes`]),
//! and stereo `process` calls ([`process_stereo`]).

#![allow(dead_code)]

use std::ffi::{CStr, CString, c_void};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicU64, Ordering};

use vst3::Steinberg::Vst::{
    AudioBusBuffers, AudioBusBuffers__type0, BusDirections_, IAudioProcessor, IAudioProcessorTrait,
    IComponent, IComponentHandler, IComponentHandlerTrait, IComponentTrait, IEditController,
    IEditControllerTrait, IParamValueQueue, IParamValueQueueTrait, IParameterChanges,
    IParameterChangesTrait, MediaTypes_, ParamID, ParamValue, ParameterInfo, ProcessData,
    ProcessModes_, ProcessSetup, SymbolicSampleSizes_,
};
use vst3::Steinberg::{
    IPluginFactory, IPluginFactoryTrait, PClassInfo, int32, kInvalidArgument, kResultFalse,
    kResultOk, tresult,
};
use vst3::{Class, ComPtr, ComWrapper};

/// The host's side of parameter edits and restarts: records the edits (in order) and the
/// restart flags asked for, and counts the requests; while `hold` is set, a request waits (it
/// blocks the plugin's thread that makes it, as a busy host's main thread would).
#[derive(Default)]
pub struct ComponentHandler {
    pub restart_flags: AtomicI32,
    pub restarts: AtomicI32,
    pub hold: AtomicBool,
    pub edits: std::sync::Mutex<Vec<Edit>>,
}

/// An edit the plugin's editor told the host of.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Edit {
    Begin(ParamID),
    Perform(ParamID, ParamValue),
    End(ParamID),
}

impl ComponentHandler {
    fn record(&self, edit: Edit) {
        if let Ok(mut edits) = self.edits.lock() {
            edits.push(edit);
        }
    }
}

impl Class for ComponentHandler {
    type Interfaces = (IComponentHandler,);
}

impl IComponentHandlerTrait for ComponentHandler {
    unsafe fn beginEdit(&self, id: ParamID) -> tresult {
        self.record(Edit::Begin(id));
        kResultOk
    }
    unsafe fn performEdit(&self, id: ParamID, value: ParamValue) -> tresult {
        self.record(Edit::Perform(id, value));
        kResultOk
    }
    unsafe fn endEdit(&self, id: ParamID) -> tresult {
        self.record(Edit::End(id));
        kResultOk
    }
    unsafe fn restartComponent(&self, flags: int32) -> tresult {
        self.restart_flags.fetch_or(flags, Ordering::SeqCst);
        self.restarts.fetch_add(1, Ordering::SeqCst);
        while self.hold.load(Ordering::SeqCst) {
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
        kResultOk
    }
}

/// One parameter's points for the next `process` call: the host's automation. Holds at most
/// the capacity given to [`Queue::new`]; setting points never allocates.
pub struct Queue {
    pub id: ParamID,
    points: Vec<(AtomicI32, AtomicU64)>,
    count: AtomicI32,
}

impl Queue {
    /// A queue for `id` with room for `capacity` points, holding one point (offset 0, 1.0).
    pub fn new(id: ParamID, capacity: usize) -> Self {
        let queue = Self {
            id,
            points: (0..capacity.max(1))
                .map(|_| (AtomicI32::new(0), AtomicU64::new(0)))
                .collect(),
            count: AtomicI32::new(0),
        };
        queue.set_value(1.0);
        queue
    }

    /// One point: `value` at offset 0.
    pub fn set_value(&self, value: f64) {
        self.set_points([(0, value)]);
    }

    /// These points (offset, normalized value), up to the capacity.
    pub fn set_points(&self, points: impl IntoIterator<Item = (i32, f64)>) {
        let mut n = 0;
        for ((offset, value), slot) in points.into_iter().zip(&self.points) {
            slot.0.store(offset, Ordering::Relaxed);
            slot.1.store(value.to_bits(), Ordering::Relaxed);
            n += 1;
        }
        self.count.store(n, Ordering::Relaxed);
    }
}

impl Class for Queue {
    type Interfaces = (IParamValueQueue,);
}

impl IParamValueQueueTrait for Queue {
    unsafe fn getParameterId(&self) -> ParamID {
        self.id
    }
    unsafe fn getPointCount(&self) -> int32 {
        self.count.load(Ordering::Relaxed)
    }
    unsafe fn getPoint(
        &self,
        index: int32,
        sample_offset: *mut int32,
        value: *mut ParamValue,
    ) -> tresult {
        let count = self.count.load(Ordering::Relaxed);
        if index < 0 || index >= count || sample_offset.is_null() || value.is_null() {
            return kInvalidArgument;
        }
        let (offset, bits) = &self.points[index as usize];
        unsafe {
            *sample_offset = offset.load(Ordering::Relaxed);
            *value = f64::from_bits(bits.load(Ordering::Relaxed));
        }
        kResultOk
    }
    unsafe fn addPoint(&self, _offset: int32, _value: ParamValue, _index: *mut int32) -> tresult {
        kResultFalse
    }
}

/// The call's parameter changes: the first `count` of `queues`.
pub struct Changes {
    pub queues: Vec<ComWrapper<Queue>>,
    pub count: AtomicI32,
}

impl Changes {
    /// One queue per id, each with room for `capacity` points; the first `active` are sent.
    pub fn new(ids: &[ParamID], capacity: usize, active: usize) -> ComWrapper<Changes> {
        ComWrapper::new(Changes {
            queues: ids
                .iter()
                .map(|&id| ComWrapper::new(Queue::new(id, capacity)))
                .collect(),
            count: AtomicI32::new(active as i32),
        })
    }
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

/// One real-time `process` call on stereo `input` → `output` (equal lengths) with `changes`
/// (null for none). Builds everything on the stack: no allocation.
pub fn process_stereo(
    processor: &ComPtr<IAudioProcessor>,
    input: &mut [Vec<f32>; 2],
    output: &mut [Vec<f32>; 2],
    changes: *mut IParameterChanges,
) -> tresult {
    let frames = input[0].len();
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
        numSamples: frames as i32,
        numInputs: 1,
        numOutputs: 1,
        inputs: &mut inputs,
        outputs: &mut outputs,
        inputParameterChanges: changes,
        outputParameterChanges: std::ptr::null_mut(),
        inputEvents: std::ptr::null_mut(),
        outputEvents: std::ptr::null_mut(),
        processContext: std::ptr::null_mut(),
    };
    unsafe { processor.process(&mut data) }
}

/// What a host does before audio runs: real-time 32-bit processing in blocks of at most
/// `block` frames at `rate`, the main audio buses on, active, processing.
pub fn start_processing(
    component: &ComPtr<IComponent>,
    processor: &ComPtr<IAudioProcessor>,
    block: usize,
    rate: f64,
) {
    let mut setup = ProcessSetup {
        processMode: ProcessModes_::kRealtime as i32,
        symbolicSampleSize: SymbolicSampleSizes_::kSample32 as i32,
        maxSamplesPerBlock: block as i32,
        sampleRate: rate,
    };
    assert_eq!(unsafe { processor.setupProcessing(&mut setup) }, kResultOk);
    for dir in [BusDirections_::kInput, BusDirections_::kOutput] {
        let r = unsafe { component.activateBus(MediaTypes_::kAudio as i32, dir as i32, 0, 1) };
        assert_eq!(r, kResultOk, "activateBus");
    }
    assert_eq!(unsafe { component.setActive(1) }, kResultOk);
    assert_eq!(unsafe { processor.setProcessing(1) }, kResultOk);
}

/// Every parameter's info, in the controller's order.
pub fn parameters(controller: &ComPtr<IEditController>) -> Vec<ParameterInfo> {
    (0..unsafe { controller.getParameterCount() })
        .map(|index| {
            let mut info: ParameterInfo = unsafe { std::mem::zeroed() };
            assert_eq!(
                unsafe { controller.getParameterInfo(index, &mut info) },
                kResultOk
            );
            info
        })
        .collect()
}

/// A parameter's title.
pub fn title(info: &ParameterInfo) -> String {
    let end = info.title.iter().position(|&c| c == 0).unwrap_or(128);
    String::from_utf16_lossy(&info.title[..end])
}

/// The id of the parameter titled `title`.
pub fn param_id(controller: &ComPtr<IEditController>, wanted: &str) -> ParamID {
    parameters(controller)
        .iter()
        .find(|info| title(info) == wanted)
        .unwrap_or_else(|| panic!("no parameter titled {wanted}"))
        .id
}

/// The plugin library, loaded as a VST3 host loads a module; `ModuleExit` and unloaded on drop.
pub struct Module {
    handle: *mut c_void,
    factory: Option<ComPtr<IPluginFactory>>,
}

/// The library `cargo test` built (or `RTFX_VST3_LIBRARY`).
pub fn library_path() -> PathBuf {
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
    pub fn load(path: &std::path::Path) -> Module {
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

    pub fn factory(&self) -> &ComPtr<IPluginFactory> {
        self.factory.as_ref().expect("the module is loaded")
    }

    /// The class id of the audio effect (category "Audio Module Class").
    pub fn effect_class(&self) -> [i8; 16] {
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

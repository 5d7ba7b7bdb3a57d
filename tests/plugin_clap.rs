//! The built `.clap` loaded into a real CLAP host (clack-host): scan, parameters, activate /
//! process / deactivate at several rates and block sizes, sample-accurate parameter events,
//! clean output under random parameter values, latency and tail, and state save/load.
//!
//! By default the test loads the debug cdylib that `cargo test` builds next to this test binary
//! (`target/debug/deps/librtfx.so`; the copy one directory up can be stale). Set `RTFX_CLAP` to
//! test another build, e.g. `RTFX_CLAP=target/bundled/rtfx.clap`.

use std::cell::{Cell, RefCell};
use std::ffi::CString;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::ThreadId;

use clack_extensions::latency::{HostLatency, HostLatencyImpl, PluginLatency};
use clack_extensions::params::{
    HostParams, HostParamsImplMainThread, HostParamsImplShared, ParamClearFlags, ParamInfoBuffer,
    ParamRescanFlags, PluginParams,
};
use clack_extensions::state::{HostState, HostStateImpl, PluginState};
use clack_extensions::tail::{PluginTail, TailLength};
use clack_extensions::thread_check::{HostThreadCheck, HostThreadCheckImpl};
use clack_host::events::event_types::ParamValueEvent;
use clack_host::prelude::*;

struct TestHost;

/// What the plugin asked of the host, and every CLAP rule it broke. The host is strict the way
/// clap-validator is, with the threading rules each host extension documents:
/// - `clap_host_latency::changed`: main thread, only within `clap_plugin::activate`;
/// - `clap_host_params::rescan` and `clear`: main thread (never inside `process`), and a full
///   rescan (`CLAP_PARAM_RESCAN_ALL`) only while the plugin is inactive;
/// - `clap_host_params::request_flush`: any thread but the audio thread (inside `process` it
///   is pointless: the plugin is already processing);
/// - `clap_host_state::mark_dirty`: main thread.
///
/// The host also answers `clap_host_thread_check`: the main thread is the test's thread, the
/// audio thread is whichever thread is inside `process`. Each instance's log fails the test
/// when it is dropped with a broken rule.
struct HostLog {
    main_thread: ThreadId,
    /// Set by [`activate`] around the plugin's `activate` call.
    activating: AtomicBool,
    /// Set by [`activate`], cleared by [`deactivate`].
    active: AtomicBool,
    latency_changed: AtomicU32,
    param_rescans: AtomicU32,
    flush_requests: AtomicU32,
    dirty_marks: AtomicU32,
    restarts: AtomicU32,
    callback_requested: AtomicBool,
    broken: Mutex<Vec<String>>,
}

thread_local! {
    /// True on a thread while it is inside the plugin's `process` (see [`process`]).
    static IN_PROCESS: Cell<bool> = const { Cell::new(false) };
}

impl HostLog {
    fn new() -> Self {
        HostLog {
            main_thread: std::thread::current().id(),
            activating: AtomicBool::new(false),
            active: AtomicBool::new(false),
            latency_changed: AtomicU32::new(0),
            param_rescans: AtomicU32::new(0),
            flush_requests: AtomicU32::new(0),
            dirty_marks: AtomicU32::new(0),
            restarts: AtomicU32::new(0),
            callback_requested: AtomicBool::new(false),
            broken: Mutex::new(Vec::new()),
        }
    }

    fn broke(&self, rule: String) {
        self.broken.lock().unwrap().push(rule);
    }

    fn broken(&self) -> Vec<String> {
        self.broken.lock().unwrap().clone()
    }

    /// Records a broken rule if `what` (a `[main-thread]` host function) is called off the main
    /// thread or from inside `process`.
    fn require_main_thread(&self, what: &str) {
        if std::thread::current().id() != self.main_thread {
            self.broke(format!("{what} called off the main thread"));
        }
        if IN_PROCESS.with(Cell::get) {
            self.broke(format!(
                "{what} called from the audio thread (inside process)"
            ));
        }
    }
}

struct Shared {
    log: Arc<HostLog>,
}

impl Drop for Shared {
    fn drop(&mut self) {
        let broken = self.log.broken();
        if !broken.is_empty() && !std::thread::panicking() {
            panic!("the plugin broke CLAP host rules: {broken:?}");
        }
    }
}

impl HostParamsImplShared for Shared {
    fn request_flush(&self) {
        self.log.flush_requests.fetch_add(1, Ordering::SeqCst);
        if IN_PROCESS.with(Cell::get) {
            self.log
                .broke("clap_host_params::request_flush called from the audio thread".into());
        }
    }
}

impl HostThreadCheckImpl for Shared {
    fn is_main_thread(&self) -> bool {
        std::thread::current().id() == self.log.main_thread
    }
    fn is_audio_thread(&self) -> bool {
        IN_PROCESS.with(Cell::get)
    }
}

impl SharedHandler<'_> for Shared {
    fn request_restart(&self) {
        self.log.restarts.fetch_add(1, Ordering::SeqCst);
    }
    fn request_process(&self) {}
    fn request_callback(&self) {
        self.log.callback_requested.store(true, Ordering::SeqCst);
    }
}

struct MainThread<'a> {
    shared: &'a Shared,
}

impl<'a> MainThreadHandler<'a> for MainThread<'a> {}

impl HostLatencyImpl for MainThread<'_> {
    fn changed(&self) {
        let log = &self.shared.log;
        log.latency_changed.fetch_add(1, Ordering::SeqCst);
        if !log.activating.load(Ordering::SeqCst) {
            log.broke("clap_host_latency::changed called outside clap_plugin::activate".into());
        }
        log.require_main_thread("clap_host_latency::changed");
    }
}

impl HostParamsImplMainThread for MainThread<'_> {
    fn rescan(&self, flags: ParamRescanFlags) {
        let log = &self.shared.log;
        log.param_rescans.fetch_add(1, Ordering::SeqCst);
        log.require_main_thread("clap_host_params::rescan");
        if flags.contains(ParamRescanFlags::ALL) && log.active.load(Ordering::SeqCst) {
            log.broke("clap_host_params::rescan(ALL) called while the plugin is active".into());
        }
    }
    fn clear(&self, _param_id: ClapId, _flags: ParamClearFlags) {
        self.shared
            .log
            .require_main_thread("clap_host_params::clear");
    }
}

impl HostStateImpl for MainThread<'_> {
    fn mark_dirty(&self) {
        let log = &self.shared.log;
        log.dirty_marks.fetch_add(1, Ordering::SeqCst);
        log.require_main_thread("clap_host_state::mark_dirty");
    }
}

impl HostHandlers for TestHost {
    type Shared<'a> = Shared;
    type MainThread<'a> = MainThread<'a>;
    type AudioProcessor<'a> = ();

    fn declare_extensions(builder: &mut HostExtensions<Self>, _shared: &Self::Shared<'_>) {
        builder
            .register::<HostLatency>()
            .register::<HostParams>()
            .register::<HostState>()
            .register::<HostThreadCheck>();
    }
}

thread_local! {
    /// The log of the instance this test thread made last (see [`instance`]).
    static LAST_LOG: RefCell<Option<Arc<HostLog>>> = const { RefCell::new(None) };
}

/// The host log of the last instance made on this thread.
fn last_log() -> Arc<HostLog> {
    LAST_LOG.with(|l| l.borrow().clone().expect("an instance was made"))
}

/// Activates `inst` the way a host does, marking the call so that the latency extension can
/// tell calls inside `activate` from calls outside it.
fn activate(
    inst: &mut PluginInstance<TestHost>,
    log: &HostLog,
    config: PluginAudioConfiguration,
) -> StoppedPluginAudioProcessor<TestHost> {
    log.activating.store(true, Ordering::SeqCst);
    let proc = inst.activate(|_, _| (), config).expect("activate");
    log.activating.store(false, Ordering::SeqCst);
    log.active.store(true, Ordering::SeqCst);
    proc
}

/// Deactivates `inst` and marks its log inactive.
fn deactivate(inst: &mut PluginInstance<TestHost>, proc: StoppedPluginAudioProcessor<TestHost>) {
    inst.deactivate(proc);
    inst.access_shared_handler(|shared| shared.log.active.store(false, Ordering::SeqCst));
}

/// [`process`] on a thread of its own, as a host's audio thread: what the plugin hands to the
/// main thread then waits for the host's callback instead of running at once.
fn process_on_audio_thread(
    proc: &mut StartedPluginAudioProcessor<TestHost>,
    input: &mut [Vec<f32>],
    output: &mut [Vec<f32>],
    events: &EventBuffer,
) {
    std::thread::scope(|scope| {
        scope
            .spawn(|| process(proc, input, output, events))
            .join()
            .expect("the audio thread");
    });
}

/// Runs the plugin's main-thread callback when it asked for one, as a host's event loop does.
fn run_main_thread_callback(inst: &mut PluginInstance<TestHost>, log: &HostLog) {
    if log.callback_requested.swap(false, Ordering::SeqCst) {
        inst.call_on_main_thread_callback();
    }
}

const PARAM_COUNT: u32 = 43;

fn plugin_path() -> PathBuf {
    if let Some(p) = std::env::var_os("RTFX_CLAP") {
        return PathBuf::from(p);
    }
    let exe = std::env::current_exe().expect("test binary path");
    let dir = exe.parent().expect("deps directory");
    let lib = if cfg!(target_os = "macos") {
        "librtfx.dylib"
    } else if cfg!(windows) {
        "rtfx.dll"
    } else {
        "librtfx.so"
    };
    dir.join(lib)
}

fn load() -> PluginEntry {
    let path = plugin_path();
    assert!(path.exists(), "{} does not exist", path.display());
    unsafe { PluginEntry::load(&path) }.expect("the .clap loads")
}

fn instance(entry: &PluginEntry) -> PluginInstance<TestHost> {
    let host = HostInfo::new("rtfx-test", "rtfx", "https://example.invalid", "0.1").unwrap();
    let id = CString::new("com.rtfx.rtfx").unwrap();
    let log = Arc::new(HostLog::new());
    LAST_LOG.with(|l| *l.borrow_mut() = Some(log.clone()));
    PluginInstance::<TestHost>::new(
        move |_| Shared { log },
        |shared| MainThread { shared },
        entry,
        &id,
        &host,
    )
    .expect("instance")
}

/// nice-plug's CLAP parameter id for a string id (a Rabin fingerprint, top bit cleared).
fn param_id(id: &str) -> ClapId {
    let mut hash: u32 = 0;
    for b in id.bytes() {
        hash = hash.wrapping_mul(31).wrapping_add(u32::from(b));
    }
    ClapId::new(hash & !(1 << 31))
}

fn params(inst: &PluginInstance<TestHost>) -> PluginParams {
    inst.plugin_shared_handle()
        .get_extension()
        .expect("params extension")
}

fn state(inst: &PluginInstance<TestHost>) -> PluginState {
    inst.plugin_shared_handle()
        .get_extension()
        .expect("state extension")
}

/// Sets parameters (normalized values) while the plugin is inactive.
fn flush(inst: &mut PluginInstance<TestHost>, values: &[(&str, f64)]) {
    let params = params(inst);
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

/// Processes planar stereo `input` into `output` in one call.
fn process(
    proc: &mut StartedPluginAudioProcessor<TestHost>,
    input: &mut [Vec<f32>],
    output: &mut [Vec<f32>],
    events: &EventBuffer,
) -> ProcessStatus {
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
    IN_PROCESS.with(|p| p.set(true));
    let status = proc.process(
        &ins,
        &mut outs,
        &events.as_input(),
        &mut EventBuffer::new().as_output(),
        None,
        None,
    );
    IN_PROCESS.with(|p| p.set(false));
    status.expect("process")
}

use rtfx::dsp::noise::noise;

fn clean(x: f32) -> bool {
    x.is_finite() && (x == 0.0 || x.abs() >= f32::MIN_POSITIVE)
}

fn save(inst: &mut PluginInstance<TestHost>) -> Vec<u8> {
    let st = state(inst);
    let mut bytes = Vec::new();
    st.save(&inst.plugin_handle(), &mut bytes).expect("save");
    bytes
}

#[test]
fn scan_finds_one_audio_effect() {
    let entry = load();
    let factory = entry.get_plugin_factory().expect("plugin factory");
    let descriptors: Vec<_> = factory.plugin_descriptors().collect();
    assert_eq!(descriptors.len(), 1);
    let d = &descriptors[0];
    assert_eq!(d.id().unwrap().to_str().unwrap(), "com.rtfx.rtfx");
    assert_eq!(d.name().unwrap().to_str().unwrap(), "rtfx");
    let features: Vec<String> = d
        .features()
        .map(|f| f.to_string_lossy().into_owned())
        .collect();
    assert!(features.iter().any(|f| f == "audio-effect"), "{features:?}");
    assert!(features.iter().any(|f| f == "stereo"), "{features:?}");
    // The browser links are what the build was given (RTFX_HOMEPAGE_URL, RTFX_MANUAL_URL,
    // RTFX_SUPPORT_URL; see README), and nothing made up when it was given none.
    let text = |s: Option<&std::ffi::CStr>| {
        s.and_then(|s| s.to_str().ok())
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
    };
    let given = |v: Option<&str>| v.filter(|s| !s.is_empty()).map(str::to_owned);
    assert_eq!(text(d.vendor()).as_deref(), Some("rtfx"));
    assert_eq!(text(d.url()), given(option_env!("RTFX_HOMEPAGE_URL")));
    assert_eq!(text(d.manual_url()), given(option_env!("RTFX_MANUAL_URL")));
    assert_eq!(
        text(d.support_url()),
        given(option_env!("RTFX_SUPPORT_URL"))
    );
}

#[test]
fn parameters_are_exposed_with_stable_ids() {
    let entry = load();
    let mut inst = instance(&entry);
    let params = params(&inst);
    let handle = inst.plugin_handle();
    assert_eq!(params.count(&handle), PARAM_COUNT);
    let mut buffer = ParamInfoBuffer::new();
    let info = params.get_info(&handle, 0, &mut buffer).expect("info");
    assert_eq!(info.id, param_id("in_gain"));
    assert_eq!(info.name, b"Input Gain");
    let mut ids = Vec::new();
    for i in 0..PARAM_COUNT {
        let mut buffer = ParamInfoBuffer::new();
        let info = params.get_info(&handle, i, &mut buffer).expect("info");
        ids.push(info.id);
        let value = params.get_value(&handle, info.id).expect("value");
        assert!(value.is_finite());
    }
    for id in [
        "hp_freq",
        "comp_ratio",
        "dly_note",
        "lim_lookahead",
        "bypass",
    ] {
        assert!(ids.contains(&param_id(id)), "{id}");
    }
}

/// With the default settings (every section off) the output is the input delayed by the
/// latency the plugin reports (the switched-off limiter's 5 ms lookahead), sample for sample;
/// with a lookahead of 0 ms it is the input itself.
#[test]
fn default_output_is_the_input_delayed_by_the_latency_at_every_rate_and_block_size() {
    let entry = load();
    for rate in [44_100.0, 48_000.0, 96_000.0] {
        for block in [1usize, 64, 511, 4096] {
            for zero_lookahead in [false, true] {
                let mut inst = instance(&entry);
                if zero_lookahead {
                    flush(&mut inst, &[("lim_lookahead", 0.0)]);
                }
                let config = PluginAudioConfiguration {
                    sample_rate: rate,
                    min_frames_count: 1,
                    max_frames_count: block as u32,
                };
                let proc = activate(&mut inst, &last_log(), config);
                let latency: PluginLatency = inst
                    .plugin_shared_handle()
                    .get_extension()
                    .expect("latency extension");
                let delay = latency.get(&inst.plugin_handle()) as usize;
                let want = if zero_lookahead {
                    0
                } else {
                    (0.005 * rate).round() as usize
                };
                assert_eq!(delay, want, "rate {rate}");
                let mut proc = proc.start_processing().expect("start");
                let total = (delay + 600).div_ceil(block) * block;
                let source = [noise(total, 3, 0.5), noise(total, 12, 0.5)];
                let mut heard = [Vec::new(), Vec::new()];
                for start in (0..total).step_by(block) {
                    let mut input: Vec<Vec<f32>> = source
                        .iter()
                        .map(|c| c[start..start + block].to_vec())
                        .collect();
                    let mut output = vec![vec![0.0f32; block]; 2];
                    process(&mut proc, &mut input, &mut output, &EventBuffer::new());
                    for (h, o) in heard.iter_mut().zip(&output) {
                        h.extend_from_slice(o);
                    }
                }
                for (h, src) in heard.iter().zip(&source) {
                    assert!(
                        h[..delay].iter().all(|&x| x == 0.0),
                        "rate {rate}, block {block}"
                    );
                    assert_eq!(
                        h[delay..],
                        src[..total - delay],
                        "rate {rate}, block {block}"
                    );
                }
                deactivate(&mut inst, proc.stop_processing());
            }
        }
    }
}

#[test]
fn parameter_events_are_sample_accurate() {
    let entry = load();
    let mut inst = instance(&entry);
    let config = PluginAudioConfiguration {
        sample_rate: 48_000.0,
        min_frames_count: 1,
        max_frames_count: 512,
    };
    // No lookahead: no latency, so output frame n is input frame n.
    flush(&mut inst, &[("lim_lookahead", 0.0)]);
    let mut proc = activate(&mut inst, &last_log(), config)
        .start_processing()
        .expect("start");
    // Input gain to -24 dB (normalized 0) at frame 100.
    let mut events = EventBuffer::new();
    events.push(&ParamValueEvent::new(
        100,
        param_id("in_gain"),
        Pckn::match_all(),
        0.0,
    ));
    let mut input = vec![vec![0.5f32; 512], vec![0.5f32; 512]];
    let mut output = vec![vec![0.0f32; 512]; 2];
    process(&mut proc, &mut input, &mut output, &events);
    assert!(
        output[0][..100].iter().all(|&x| x == 0.5),
        "changed before the event"
    );
    assert!(output[0][101] < 0.5, "no change right after the event");
    // Smoothed: a ramp, not a jump.
    assert!(output[0][101] > 0.45, "{}", output[0][101]);
    // After the 20 ms ramp the gain is -24 dB.
    let mut input = vec![vec![0.5f32; 2048], vec![0.5f32; 2048]];
    let mut output = vec![vec![0.0f32; 2048]; 2];
    process(&mut proc, &mut input, &mut output, &EventBuffer::new());
    let want = 0.5 * 10f32.powf(-24.0 / 20.0);
    assert!((output[0][2047] - want).abs() < 1e-6, "{}", output[0][2047]);
    let params = params(&inst);
    let value = params
        .get_value(&inst.plugin_handle(), param_id("in_gain"))
        .expect("value");
    // nice-plug exposes continuous parameters normalized: -24 dB is the bottom of the range.
    assert_eq!(value, 0.0);
    deactivate(&mut inst, proc.stop_processing());
}

#[test]
fn random_parameter_events_give_clean_output() {
    let entry = load();
    let mut inst = instance(&entry);
    let params = params(&inst);
    let ids: Vec<ClapId> = {
        let handle = inst.plugin_handle();
        (0..params.count(&handle))
            .map(|i| {
                let mut b = ParamInfoBuffer::new();
                params.get_info(&handle, i, &mut b).expect("info").id
            })
            .collect()
    };
    let config = PluginAudioConfiguration {
        sample_rate: 44_100.0,
        min_frames_count: 1,
        max_frames_count: 1024,
    };
    let mut proc = activate(&mut inst, &last_log(), config)
        .start_processing()
        .expect("start");
    let mut rng = rtfx::dsp::noise::Noise::new(7);
    let mut next = || rng.unit_f64();
    for round in 0..40 {
        // Some changes land mid-block, sample-accurately. CLAP wants events sorted by time.
        let mut changes: Vec<(u32, ClapId, f64)> = ids
            .iter()
            .enumerate()
            .map(|(k, id)| {
                let v = next();
                let v = if v < 0.1 {
                    0.0
                } else if v > 0.9 {
                    1.0
                } else {
                    v
                };
                (((k * 97) % 1024) as u32, *id, v)
            })
            .collect();
        changes.sort_by_key(|c| c.0);
        let mut events = EventBuffer::new();
        for (time, id, v) in changes {
            events.push(&ParamValueEvent::new(time, id, Pckn::match_all(), v));
        }
        let mut input = vec![noise(1024, round, 1.0), noise(1024, round + 100, 1.0)];
        let mut output = vec![vec![0.0f32; 1024]; 2];
        process(&mut proc, &mut input, &mut output, &events);
        assert!(output.iter().flatten().all(|&x| clean(x)), "round {round}");
    }
    // Then silence: still clean (no subnormal decay).
    for _ in 0..20 {
        let mut input = vec![vec![0.0f32; 1024]; 2];
        let mut output = vec![vec![0.0f32; 1024]; 2];
        process(&mut proc, &mut input, &mut output, &EventBuffer::new());
        assert!(output.iter().flatten().all(|&x| clean(x)));
    }
    deactivate(&mut inst, proc.stop_processing());
}

#[test]
fn latency_and_tail_are_reported() {
    let entry = load();
    let mut inst = instance(&entry);
    // Limiter on (bool: 1.0), lookahead 10 ms of 0..20 ms (normalized 0.5, linear), delay on.
    flush(
        &mut inst,
        &[("lim_on", 1.0), ("lim_lookahead", 0.5), ("dly_on", 1.0)],
    );
    let config = PluginAudioConfiguration {
        sample_rate: 48_000.0,
        min_frames_count: 1,
        max_frames_count: 256,
    };
    let proc = activate(&mut inst, &last_log(), config);
    let latency: PluginLatency = inst
        .plugin_shared_handle()
        .get_extension()
        .expect("latency extension");
    assert_eq!(latency.get(&inst.plugin_handle()), 480);
    let mut proc = proc.start_processing().expect("start");
    let mut input = vec![vec![0.0f32; 256]; 2];
    let mut output = vec![vec![0.0f32; 256]; 2];
    process(&mut proc, &mut input, &mut output, &EventBuffer::new());
    let tail: PluginTail = inst
        .plugin_shared_handle()
        .get_extension()
        .expect("tail extension");
    // Delay 250 ms, feedback 35 %: 12000 × ceil(ln 1e-6 / ln 0.35) = 12000 × 14, plus latency.
    match tail.get(&proc.plugin_handle()) {
        TailLength::Finite(n) => assert_eq!(n, 12_000 * 14 + 480),
        TailLength::Infinite => panic!("infinite tail"),
    }
    deactivate(&mut inst, proc.stop_processing());
}

#[test]
fn offload_and_gpu_modes_report_their_latency_and_pass_audio() {
    let entry = load();
    // mode: Inline 0.0, Offload 0.5, GPU 1.0 (three choices).
    for (mode, normalized) in [("Offload", 0.5), ("GPU", 1.0)] {
        let mut inst = instance(&entry);
        flush(&mut inst, &[("mode", normalized)]);
        let config = PluginAudioConfiguration {
            sample_rate: 48_000.0,
            min_frames_count: 1,
            max_frames_count: 256,
        };
        let proc = activate(&mut inst, &last_log(), config);
        let latency: PluginLatency = inst
            .plugin_shared_handle()
            .get_extension()
            .expect("latency extension");
        // The limiter's 5 ms lookahead (on or off), the host's largest block, and the
        // worker's 64-frame chunk.
        assert_eq!(latency.get(&inst.plugin_handle()), 240 + 256 + 64, "{mode}");
        let mut proc = proc.start_processing().expect("start");
        let mut heard = false;
        for round in 0..60 {
            let mut input = vec![noise(256, round, 0.5), noise(256, round + 1, 0.5)];
            let mut output = vec![vec![0.0f32; 256]; 2];
            process(&mut proc, &mut input, &mut output, &EventBuffer::new());
            assert!(output.iter().flatten().all(|&x| clean(x)), "{mode}");
            heard |= round >= 40 && output[0].iter().any(|&x| x != 0.0);
            // Real time, roughly: the worker gets the block's duration (5.3 ms).
            std::thread::sleep(std::time::Duration::from_millis(4));
        }
        assert!(heard, "{mode}: the worker's output never arrived");
        deactivate(&mut inst, proc.stop_processing());
    }
}

#[test]
fn state_round_trips_byte_identically_and_bad_state_is_rejected() {
    let entry = load();
    let mut a = instance(&entry);
    flush(
        &mut a,
        &[
            ("hp_on", 1.0),
            ("hp_freq", 0.3),
            ("hp_order", 0.5),
            ("comp_ratio", 0.42),
            ("dly_note", 0.7),
            ("rev_mix", 0.123),
            ("out_gain", 0.25),
        ],
    );
    let first = save(&mut a);
    assert!(!first.is_empty());

    let mut b = instance(&entry);
    let b_log = last_log();
    let st = state(&b);
    st.load(&b.plugin_handle(), &mut first.as_slice())
        .expect("load");
    // The plugin tells the host to rescan the loaded values (through the strict params
    // extension: on the main thread, a values-only rescan).
    assert!(
        b_log.param_rescans.load(Ordering::SeqCst) >= 1,
        "no rescan after a load"
    );
    let second = save(&mut b);
    assert_eq!(first, second, "save → load → save is not byte-identical");
    let params = params(&b);
    let hp = params
        .get_value(&b.plugin_handle(), param_id("hp_on"))
        .expect("value");
    assert_eq!(hp, 1.0);

    // Empty and random state are rejected, and the current state stays.
    let empty: &[u8] = &[];
    assert!(st.load(&b.plugin_handle(), &mut &empty[..]).is_err());
    let mut rng = rtfx::dsp::noise::Noise::new(99);
    let junk: Vec<u8> = (0..1 << 20).map(|_| (rng.next_u64() >> 56) as u8).collect();
    assert!(st.load(&b.plugin_handle(), &mut junk.as_slice()).is_err());
    // Truncated JSON too.
    let truncated = &first[..first.len() / 2];
    assert!(st.load(&b.plugin_handle(), &mut &truncated[..]).is_err());
    assert_eq!(save(&mut b), first, "a rejected load changed the state");
    // Another nice-plug plugin's state carries none of our ids: nothing changes.
    let foreign = r#"{"version":"1.0.0","params":{"gain":{"f32":0.5}},"fields":{"note":"\"x\""}}"#;
    let mut bytes = (foreign.len() as u64).to_le_bytes().to_vec();
    bytes.extend_from_slice(foreign.as_bytes());
    let _ = st.load(&b.plugin_handle(), &mut bytes.as_slice());
    assert_eq!(save(&mut b), first, "a foreign state changed the state");
}

#[test]
fn out_of_range_state_values_are_clamped() {
    let entry = load();
    let mut inst = instance(&entry);
    let json = r#"{"version":"0.0.1","params":{"in_gain":{"f32":1000.0},"out_gain":{"f32":-1e30},"hp_order":{"i32":99},"dly_note":{"i32":-5},"hp_on":{"bool":true},"no_such":{"f32":1.0}},"fields":{}}"#;
    let mut bytes = (json.len() as u64).to_le_bytes().to_vec();
    bytes.extend_from_slice(json.as_bytes());
    let st = state(&inst);
    st.load(&inst.plugin_handle(), &mut bytes.as_slice())
        .expect("a state with odd values still loads");
    let params = params(&inst);
    let handle = inst.plugin_handle();
    let value = |id: &str| params.get_value(&handle, param_id(id)).expect("value");
    // Normalized values: clamped to the ends of the ranges.
    assert_eq!(value("in_gain"), 1.0);
    assert_eq!(value("out_gain"), 0.0);
    assert_eq!(value("hp_on"), 1.0);
    // Stepped parameters are exposed as plain steps: order 8, first note value.
    assert_eq!(value("hp_order"), 7.0);
    assert_eq!(value("dly_note"), 0.0);
    let saved = save(&mut inst);
    let text = String::from_utf8_lossy(&saved[8..]).into_owned();
    assert!(text.contains(r#""in_gain":{"f32":24.0}"#), "{text}");
}

/// clap-validator failed `param-set-events` and three fuzz tests with "clap_host_latency::changed
/// Must only be called within 'clap_plugin::activate'". A latency set before or during
/// activation is announced inside `activate`; a change while active asks for a restart (and
/// never calls `changed`), and the next `activate` announces it.
#[test]
fn latency_changes_are_announced_only_inside_activate() {
    let entry = load();
    let mut inst = instance(&entry);
    let log = last_log();
    let latency: PluginLatency = inst
        .plugin_shared_handle()
        .get_extension()
        .expect("latency extension");
    // Limiter on while inactive: 5 ms lookahead = 240 frames at 48 kHz.
    flush(&mut inst, &[("lim_on", 1.0)]);
    let config = PluginAudioConfiguration {
        sample_rate: 48_000.0,
        min_frames_count: 1,
        max_frames_count: 256,
    };
    let proc = activate(&mut inst, &log, config);
    run_main_thread_callback(&mut inst, &log);
    assert_eq!(latency.get(&inst.plugin_handle()), 240);
    let announced = log.latency_changed.load(Ordering::SeqCst);
    assert!(
        announced >= 1,
        "the activation's latency was never announced"
    );
    // While processing: lookahead to 10 ms (normalized 0.5 of 0..20 ms), then the host
    // deactivates the plugin before its event loop gets to the plugin's callback, as
    // clap-validator's parameter tests do.
    let lookahead = |normalized: f64| {
        let mut events = EventBuffer::new();
        events.push(&ParamValueEvent::new(
            0,
            param_id("lim_lookahead"),
            Pckn::match_all(),
            normalized,
        ));
        events
    };
    let mut input = vec![vec![0.0f32; 256]; 2];
    let mut output = vec![vec![0.0f32; 256]; 2];
    let mut proc = proc.start_processing().expect("start");
    process_on_audio_thread(&mut proc, &mut input, &mut output, &lookahead(0.5));
    process_on_audio_thread(&mut proc, &mut input, &mut output, &EventBuffer::new());
    deactivate(&mut inst, proc.stop_processing());
    run_main_thread_callback(&mut inst, &log);
    assert_eq!(log.latency_changed.load(Ordering::SeqCst), announced);
    let proc = activate(&mut inst, &log, config);
    assert_eq!(latency.get(&inst.plugin_handle()), 480);
    let announced_again = log.latency_changed.load(Ordering::SeqCst);
    assert!(
        announced_again > announced,
        "the new latency was not announced"
    );
    // A change while active, with the callback run while active: a restart request, no
    // `changed` (that waits for the next activate).
    let restarts = log.restarts.load(Ordering::SeqCst);
    let mut proc = proc.start_processing().expect("start");
    process_on_audio_thread(&mut proc, &mut input, &mut output, &lookahead(0.25));
    process_on_audio_thread(&mut proc, &mut input, &mut output, &EventBuffer::new());
    run_main_thread_callback(&mut inst, &log);
    assert!(
        log.restarts.load(Ordering::SeqCst) > restarts,
        "a latency change while active must request a restart"
    );
    assert_eq!(log.latency_changed.load(Ordering::SeqCst), announced_again);
    deactivate(&mut inst, proc.stop_processing());
    let proc = activate(&mut inst, &log, config);
    assert_eq!(latency.get(&inst.plugin_handle()), 240);
    // The limiter switch is automation, not a latency change: switching it off and on while
    // processing neither requests a restart nor changes the latency.
    let (restarts, announced) = (
        log.restarts.load(Ordering::SeqCst),
        log.latency_changed.load(Ordering::SeqCst),
    );
    let switch = |on: f64| {
        let mut events = EventBuffer::new();
        events.push(&ParamValueEvent::new(
            17,
            param_id("lim_on"),
            Pckn::match_all(),
            on,
        ));
        events
    };
    let mut proc = proc.start_processing().expect("start");
    for on in [0.0, 1.0, 0.0] {
        process_on_audio_thread(&mut proc, &mut input, &mut output, &switch(on));
        run_main_thread_callback(&mut inst, &log);
    }
    assert_eq!(log.restarts.load(Ordering::SeqCst), restarts);
    assert_eq!(log.latency_changed.load(Ordering::SeqCst), announced);
    assert_eq!(latency.get(&inst.plugin_handle()), 240);
    deactivate(&mut inst, proc.stop_processing());
    assert_eq!(log.broken(), Vec::<String>::new());
}

/// A bounded fuzz like clap-validator's: random parameter events (sample-accurate and at block
/// starts) on every parameter, random block sizes, rates and restarts, with the host's
/// main-thread callback run whenever asked. The output stays finite and free of subnormals,
/// and no host rule is broken.
#[test]
fn random_automation_and_restarts_break_no_rule() {
    let entry = load();
    let mut inst = instance(&entry);
    let log = last_log();
    let ids: Vec<ClapId> = {
        let params = params(&inst);
        let handle = inst.plugin_handle();
        (0..params.count(&handle))
            .map(|i| {
                let mut buffer = ParamInfoBuffer::new();
                params.get_info(&handle, i, &mut buffer).expect("info").id
            })
            .collect()
    };
    let mut rng = rtfx::dsp::noise::Noise::new(0x5EED);
    let mut next = move |n: u64| rng.below(n as usize) as u64;
    for activation in 0..12 {
        let max = [64u32, 256, 1024][next(3) as usize];
        let rate = [44_100.0, 48_000.0, 96_000.0][next(3) as usize];
        let config = PluginAudioConfiguration {
            sample_rate: rate,
            min_frames_count: 1,
            max_frames_count: max,
        };
        let mut proc = activate(&mut inst, &log, config)
            .start_processing()
            .expect("start");
        for block in 0..24 {
            let frames = 1 + next(u64::from(max)) as usize;
            let mut events = EventBuffer::new();
            for _ in 0..next(6) {
                let id = ids[next(ids.len() as u64) as usize];
                let at = if next(2) == 0 {
                    0
                } else {
                    next(frames as u64) as u32
                };
                let value = next(1001) as f64 / 1000.0;
                events.push(&ParamValueEvent::new(at, id, Pckn::match_all(), value));
            }
            events.sort();
            let mut input = vec![noise(frames, block, 0.7), noise(frames, block + 99, 0.7)];
            let mut output = vec![vec![0.0f32; frames]; 2];
            process_on_audio_thread(&mut proc, &mut input, &mut output, &events);
            assert!(
                output.iter().flatten().all(|&x| clean(x)),
                "activation {activation}, block {block}: output not finite or subnormal"
            );
            // The host's event loop lags behind the audio thread now and then.
            if next(3) != 0 {
                run_main_thread_callback(&mut inst, &log);
            }
        }
        deactivate(&mut inst, proc.stop_processing());
        run_main_thread_callback(&mut inst, &log);
    }
    assert_eq!(log.broken(), Vec::<String>::new());
}

/// The strict host's rules fire: each documented threading rule of the params and state
/// extensions, broken on purpose here by calling the host's side directly, is recorded (the
/// plugin tests above would otherwise pass for a host that checks nothing).
#[test]
fn the_host_rules_are_armed() {
    let log = Arc::new(HostLog::new());
    let shared = Shared { log: log.clone() };
    let main = MainThread { shared: &shared };
    main.rescan(ParamRescanFlags::VALUES);
    main.mark_dirty();
    shared.request_flush();
    assert_eq!(log.broken(), Vec::<String>::new(), "allowed calls");

    IN_PROCESS.with(|p| p.set(true));
    main.rescan(ParamRescanFlags::VALUES);
    main.mark_dirty();
    shared.request_flush();
    IN_PROCESS.with(|p| p.set(false));
    std::thread::scope(|scope| {
        scope.spawn(|| main.clear(ClapId::new(1), ParamClearFlags::ALL));
    });
    log.active.store(true, Ordering::SeqCst);
    main.rescan(ParamRescanFlags::ALL);
    let broken = std::mem::take(&mut *log.broken.lock().unwrap());
    assert_eq!(
        broken,
        [
            "clap_host_params::rescan called from the audio thread (inside process)",
            "clap_host_state::mark_dirty called from the audio thread (inside process)",
            "clap_host_params::request_flush called from the audio thread",
            "clap_host_params::clear called off the main thread",
            "clap_host_params::rescan(ALL) called while the plugin is active",
        ]
    );
}

use atomic_refcell::{AtomicRefCell, AtomicRefMut};
use crossbeam::atomic::AtomicCell;
use crossbeam::channel;
use nice_plug_core::audio_setup::{AudioIOLayout, BufferConfig, ProcessMode};
#[cfg(feature = "editor")]
use nice_plug_core::context::gui::GuiContext;
use nice_plug_core::context::process::Transport;
#[cfg(feature = "editor")]
use nice_plug_core::editor::dpi::Size;
#[cfg(feature = "editor")]
use nice_plug_core::editor::{Editor, SpawnedEditor};
use nice_plug_core::midi::{MidiConfig, PluginNoteEvent};
use nice_plug_core::params::internals::ParamPtr;
use nice_plug_core::params::{ParamFlags, Params};
#[cfg(feature = "editor")]
use nice_plug_core::plugin::TrackInfo;
use nice_plug_core::plugin::{Plugin, PluginState, ProcessStatus, TaskExecutor};
use parking_lot::Mutex;
#[cfg(feature = "editor")]
use parking_lot::RwLock;
use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicU32, AtomicU64, Ordering};
use try_lock::TryLock;
#[cfg(feature = "editor")]
use vst3::ComWrapper;
use vst3::Steinberg::Vst::{IComponentHandler, IComponentHandlerTrait, IEventList, RestartFlags_};
use vst3::Steinberg::{kInvalidArgument, kResultOk, tresult};
use vst3::{ComPtr, ComRef};

use super::context::{WrapperActivateContext, WrapperProcessContext};
use super::note_expressions::NoteExpressionController;
use super::param_units::ParamUnits;
use super::util::{VST3_MIDI_NUM_PARAMS, VST3_MIDI_PARAMS_END, VST3_MIDI_PARAMS_START};
use crate::event_loop::{EventLoop, MainThreadExecutor, OsEventLoop};
use crate::util::permit_alloc;
use crate::wrapper::state;
use crate::wrapper::util::buffer_management::BufferManager;
use crate::wrapper::util::hash_param_id;
use crate::wrapper::vst3::Vst3Plugin;
#[cfg(feature = "editor")]
use crate::wrapper::vst3::context::WrapperGuiContext;
#[cfg(feature = "editor")]
use crate::wrapper::vst3::view::WrapperView;

/// The actual wrapper bits. We need this as an `Arc<T>` so we can safely use our event loop API.
/// Since we can't combine that with VST3's interior reference counting this just has to be moved to
/// its own struct.
pub(crate) struct WrapperInner<P: Vst3Plugin> {
    /// The wrapped plugin instance.
    pub plugin: TryLock<P>,
    /// The plugin's background task executor closure.
    pub task_executor: Mutex<TaskExecutor<P>>,
    /// The plugin's parameters. These are fetched once during initialization. That way the
    /// `ParamPtr`s are guaranteed to live at least as long as this object and we can interact with
    /// the `Params` object without having to acquire a lock on `plugin`.
    pub params: Arc<dyn Params>,
    /// The plugin's editor, if it has one. This object does not do anything on its own, but we need
    /// to instantiate this in advance so we don't need to lock the entire [`Plugin`] object when
    /// creating an editor. Wrapped in an `AtomicRefCell` because it needs to be initialized late.
    #[allow(clippy::type_complexity)]
    #[cfg(feature = "editor")]
    pub editor: AtomicRefCell<Option<Arc<Mutex<P::Editor>>>>,
    #[allow(clippy::type_complexity)]
    // My personal record for craziest Rust type!!!!
    #[cfg(feature = "editor")]
    pub editor_window:
        Arc<AtomicRefCell<Option<fragile::Fragile<SpawnedEditor<<P::Editor as Editor>::Handle>>>>>,

    /// The host's [`IComponentHandler`] instance, if passed through
    /// [`IEditController::set_component_handler`].
    pub component_handler: AtomicRefCell<Option<ComPtr<IComponentHandler>>>,

    /// Our own [`IPlugView`] instance.
    #[cfg(feature = "editor")]
    pub plug_view: RwLock<Option<ComWrapper<WrapperView<P>>>>,

    /// Whether the editor is currently open. This is changed by the attached and removed functions on IPlugViewTrait
    #[cfg(feature = "editor")]
    pub is_editor_open: AtomicBool,

    /// A realtime-safe task queue so the plugin can schedule tasks that need to be run later on the
    /// GUI thread. This field should not be used directly for posting tasks. This should be done
    /// through [`Self::schedule_gui()`] instead. That method posts the task to the host's
    /// `IRunLoop` instead of it's available.
    ///
    /// This AtomicRefCell+Option is only needed because it has to be initialized late. There is no
    /// reason to mutably borrow the event loop, so reads will never be contested.
    ///
    /// TODO: Is there a better type for Send+Sync late initialization?
    pub event_loop: AtomicRefCell<Option<OsEventLoop<Task<P>, Self>>>,

    /// Whether the plugin is currently processing audio. In other words, the last state
    /// `IAudioProcessor::setActive()` has been called with.
    pub is_processing: AtomicBool,
    /// The current audio IO layout. Modified through `IAudioProcessor::setBusArrangements()` after
    /// matching the proposed bus arrangement to one of the supported ones. The plugin's first audio
    /// IO layout is chosen as the default. Because of the way VST3 works it's not possible to
    /// change the number of busses from that default, only the channel counts can change.
    pub current_audio_io_layout: AtomicCell<AudioIOLayout>,
    /// The current buffer configuration, containing the sample rate and the maximum block size.
    /// Will be set in `IAudioProcessor::setupProcessing()`.
    pub current_buffer_config: AtomicCell<Option<BufferConfig>>,
    /// The current audio processing mode. Set in `IAudioProcessor::setup_processing()`.
    pub current_process_mode: AtomicCell<ProcessMode>,
    /// The most recently reported track information. Hosts may send partial updates (e.g.
    /// Ableton), so this is used to merge successive [`IInfoListener::setChannelContextInfos()`]
    /// calls.
    #[cfg(feature = "editor")]
    pub current_track_info: AtomicRefCell<TrackInfo>,

    /// The last process status returned by the plugin. This is used for tail handling.
    pub last_process_status: AtomicCell<ProcessStatus>,
    /// The current latency in samples, as set by the plugin through the [`ActivateContext`] and the
    /// [`ProcessContext`].
    pub current_latency: AtomicU32,
    /// rtfx patch: restart flags (`RestartFlags_`) asked for and not yet delivered to the
    /// host. Posting the restart task can fail when the task queue is full (a host's main
    /// thread busy while many parameter notifications queue up); upstream then lost the
    /// request, and with it a latency change. The flags stay here until a `TriggerRestart`
    /// task delivers them; `process()` posts one again while they are pending.
    pub pending_restart_flags: AtomicI32,
    /// rtfx patch: a `TriggerRestart` task for [`Self::pending_restart_flags`] is queued.
    pub restart_task_queued: AtomicBool,
    /// A data structure that helps manage and create buffers for all of the plugin's inputs and
    /// outputs based on channel pointers provided by the host.
    pub buffer_manager: AtomicRefCell<BufferManager>,
    /// The incoming events for the plugin, if `P::ACCEPTS_MIDI` is set. If
    /// `P::SAMPLE_ACCURATE_AUTOMATION`, this is also read in lockstep with the parameter change
    /// block splitting.
    ///
    /// NOTE: Because with VST3 MIDI CC messages are sent as parameter changes and VST3 does not
    ///       interleave parameter changes and note events, this queue has to be sorted when
    ///       creating the process context
    pub input_note_events: AtomicRefCell<VecDeque<PluginNoteEvent<P>>>,
    /// VST3 has several useful predefined note expressions, but for some reason they are the only
    /// note event type that don't have MIDI note ID and channel fields. So we need to keep track of
    /// the most recent VST3 note IDs we've seen, and then map those back to MIDI note IDs and
    /// channels as needed.
    pub note_expression_controller: AtomicRefCell<NoteExpressionController>,
    /// Unprocessed parameter changes and note events sent by the host during a process call.
    /// Parameter changes are sent as separate queues for each parameter, and note events are in
    /// another queue on top of that. And if `P::MIDI_INPUT >= MidiConfig::MidiCCs`, then we can
    /// also receive MIDI CC messages through special parameter changes. On top of that, we also
    /// support sample accurate automation through block splitting if
    /// `P::SAMPLE_ACCURATE_AUTOMATION` is set. To account for all of this, we'll read all of the
    /// parameter changes and events into a vector at the start of the process call, sort it, and
    /// then do the block splitting based on that. Note events need to have their timing adjusted to
    /// match the block start, since they're all read upfront.
    ///
    /// rtfx patch: sized in `IAudioProcessor::setupProcessing()` by
    /// [`Self::process_event_capacities()`] and never grown on the audio thread: `process()` fills
    /// it through [`ProcessEventCollector`], which drops what does not fit (counted in
    /// [`Self::dropped_input_events`]) instead of allocating.
    pub process_events: AtomicRefCell<Vec<QueuedProcessEvent<P>>>,
    /// rtfx patch: the number of input events (parameter change points, note events, MIDI CCs)
    /// that `process()` dropped since the instance was created because they did not fit the
    /// buffers sized in `setupProcessing()` (the alternative was allocating on the audio thread).
    /// Only incremented on the audio thread, never reset. Read it with
    /// [`Wrapper::dropped_input_events()`][super::Wrapper::dropped_input_events()]; the wrapper
    /// also logs new drops as a warning from `setupProcessing()` and `setActive(false)`, which do
    /// not run on the audio thread.
    pub dropped_input_events: AtomicU64,
    /// rtfx patch: the part of [`Self::dropped_input_events`] that has been logged already.
    pub dropped_input_events_reported: AtomicU64,
    /// rtfx patch: values the edit controller received through `setParamNormalized()` while the
    /// plugin was processing, one slot per parameter in [`Self::param_hashes`] order, as `f32`
    /// bits, [`NO_PENDING_VALUE`] when empty. See [`Self::set_param_from_controller()`].
    pub pending_controller_values: Box<[AtomicU32]>,
    /// rtfx patch: set after a slot in [`Self::pending_controller_values`] was filled, so
    /// `process()` only scans the slots when there is something to apply.
    pub has_pending_controller_values: AtomicBool,
    /// The plugin is able to restore state through a method on the `GuiContext`. To avoid changing
    /// parameters mid-processing and running into garbled data if the host also tries to load state
    /// at the same time the restoring happens at the end of each processing call. If this zero
    /// capacity channel contains state data at that point, then the audio thread will take the
    /// state out of the channel, restore the state, and then send it back through the same channel.
    /// In other words, the GUI thread acts as a sender and then as a receiver, while the audio
    /// thread acts as a receiver and then as a sender. That way deallocation can happen on the GUI
    /// thread. All of this happens without any blocking on the audio thread.
    pub updated_state_sender: channel::Sender<PluginState>,
    /// The receiver belonging to [`new_state_sender`][Self::new_state_sender].
    pub updated_state_receiver: channel::Receiver<PluginState>,

    /// The keys from `param_map` in a stable order.
    pub param_hashes: Vec<u32>,
    /// rtfx patch: the index of each parameter hash in [`Self::param_hashes`].
    pub param_index_by_hash: HashMap<u32, usize>,
    /// A mapping from parameter ID hashes (obtained from the string parameter IDs) to pointers to
    /// parameters belonging to the plugin. These addresses will remain stable as long as the
    /// `params` object does not get deallocated.
    pub param_by_hash: HashMap<u32, ParamPtr>,
    /// Mappings from parameter hashes to string parameter IDs. Used for notifying the plugin's
    /// editor about parameter changes.
    pub param_id_by_hash: HashMap<u32, String>,
    pub param_units: ParamUnits,
    /// Mappings from string parameter identifiers to parameter hashes. Useful for debug logging
    /// and when storing and restoring plugin state.
    pub param_id_to_hash: HashMap<String, u32>,
    /// The inverse mapping from [`param_by_hash`][Self::param_by_hash]. This is needed to be able
    /// to have an ergonomic parameter setting API that uses references to the parameters instead of
    /// having to add a setter function to the parameter (or even worse, have it be completely
    /// untyped).
    pub param_ptr_to_hash: HashMap<ParamPtr, u32>,
}

/// Tasks that can be sent from the plugin to be executed on the main thread in a non-blocking
/// realtime-safe way (either a random thread or `IRunLoop` on Linux, the OS' message loop on
/// Windows and macOS).
#[allow(clippy::enum_variant_names)]
pub enum Task<P: Plugin> {
    /// Execute one of the plugin's background tasks.
    PluginTask(P::BackgroundTask),
    /// Inform the plugin that one or more parameter values have changed.
    #[cfg(feature = "editor")]
    StateChanged,
    /// Inform the plugin that one parameter's value has changed. This uses the parameter hashes
    /// since the task will be created from the audio thread.
    #[cfg(feature = "editor")]
    ParameterValueChanged(u32, f32),
    /// Trigger a restart with the given restart flags. This is a bit set of the flags from
    /// [`vst3::Steinberg::Vst::RestartFlags`].
    TriggerRestart(i32),
    // Request the editor to be resized according to its current size. Right now there is no way to
    // handle "denied resize" requests yet.
    #[cfg(feature = "editor")]
    RequestResize { size: Size, scale_factor: f64 },
    #[cfg(feature = "editor")]
    CallMainThread,
}

/// VST3 makes audio processing pretty complicated. In order to support both block splitting for
/// sample accurate automation and MIDI CC handling through parameters we need to put all parameter
/// changes and (translated) note events into a sorted array first.
#[derive(Debug, PartialEq)]
pub enum ProcessEvent<P: Plugin> {
    /// An incoming parameter change sent by the host. This will only be used when sample accurate
    /// automation has been enabled, and the parameters are only updated when we process this
    /// spooled event at the start of a block.
    ParameterChange {
        /// The event's sample offset within the buffer. Used for sorting.
        timing: u32,
        /// The parameter's hash, as used everywhere else.
        hash: u32,
        /// The normalized values, as provided by the host.
        normalized_value: f32,
    },
    /// An incoming parameter change sent by the host. This will only be used when sample accurate
    /// automation has been enabled, and the parameters are only updated when we process this
    /// spooled event at the start of a block.
    ///
    /// The timing stored within the note event needs to have the block start index subtraced from
    /// it. make sure to subtract the block start index with [`NoteEvent::subtract_timing()`] before
    /// putting this into the input event queue.
    NoteEvent(PluginNoteEvent<P>),
}

impl<P: Plugin> ProcessEvent<P> {
    #[inline]
    pub(crate) fn timing(&self) -> u32 {
        match self {
            ProcessEvent::ParameterChange { timing, .. } => *timing,
            ProcessEvent::NoteEvent(event) => event.timing(),
        }
    }
}

/// rtfx patch: the most events `process()` buffers per call, whatever the block size and the
/// parameter count. Dense automation needs `max block size * automatable parameters` entries
/// (every parameter with a point on every sample, as the VST3 validator's extensive mode sends);
/// the buffer is allocated per plugin instance, so this bounds the memory an instance reserves
/// for a case that real hosts do not produce (they send a few points per parameter and block).
/// 2^20 events covers, for example, 8192-sample blocks with 128 parameters automated on every
/// sample. See also [`MAX_PROCESS_EVENT_BUFFER_BYTES`].
pub const MAX_PROCESS_EVENTS: usize = 1 << 20;
/// rtfx patch: the most bytes the event buffer may take, for plugins whose events are large (a
/// big `SysExMessage` type). An event is a few dozen bytes for most plugins, where
/// [`MAX_PROCESS_EVENTS`] binds first (about 24-32 MiB per instance at worst).
pub const MAX_PROCESS_EVENT_BUFFER_BYTES: usize = 32 << 20;
/// rtfx patch: marks an empty slot of [`WrapperInner::pending_controller_values`]: a NaN bit
/// pattern, and values are only stored after an `is_finite()` check.
pub const NO_PENDING_VALUE: u32 = u32::MAX;

/// rtfx patch: a [`ProcessEvent`] with the order it was read in, so the buffer can be sorted
/// with `sort_unstable` (in place, no allocation; the stable `sort` allocates a scratch buffer)
/// and still keep the host's order of events at the same sample. Upstream kept the buffer sorted
/// by inserting every out-of-order event in the middle, which is quadratic when each of many
/// parameter queues has points across the whole block.
#[derive(Debug, PartialEq)]
pub struct QueuedProcessEvent<P: Plugin> {
    pub order: u32,
    pub event: ProcessEvent<P>,
}

impl<P: Plugin> QueuedProcessEvent<P> {
    /// Sorting key: by timing, parameter changes before note events at the same sample (block
    /// splitting relies on that, see `process()`), then in the order they were read.
    #[inline]
    fn sort_key(&self) -> (u32, bool, u32) {
        (
            self.event.timing(),
            matches!(self.event, ProcessEvent::NoteEvent(_)),
            self.order,
        )
    }
}

/// rtfx patch: fills [`WrapperInner::process_events`] on the audio thread without ever growing
/// it. An event that does not fit (the buffer is full, or for note events, the plugin's note
/// buffer [`WrapperInner::input_note_events`] would overflow) is dropped and counted; nothing is
/// logged here (logging allocates). [`Self::finish()`] sorts the buffer and returns the count.
pub(crate) struct ProcessEventCollector<'a, P: Plugin> {
    events: &'a mut Vec<QueuedProcessEvent<P>>,
    note_capacity: usize,
    notes: usize,
    sorted: bool,
    dropped: u64,
}

impl<'a, P: Plugin> ProcessEventCollector<'a, P> {
    /// Clears `events`. `note_capacity` is the capacity of the note event queue the block loop
    /// hands to the plugin: admitting no more note events than that means it cannot overflow.
    pub fn new(events: &'a mut Vec<QueuedProcessEvent<P>>, note_capacity: usize) -> Self {
        events.clear();
        Self {
            events,
            note_capacity,
            notes: 0,
            sorted: true,
            dropped: 0,
        }
    }

    /// Free slots in the buffer.
    #[inline]
    pub fn free(&self) -> usize {
        self.events.capacity() - self.events.len()
    }

    /// Note events that can still be admitted.
    #[inline]
    pub fn notes_free(&self) -> usize {
        self.note_capacity
            .saturating_sub(self.notes)
            .min(self.free())
    }

    /// Counts `n` events the caller decided not to push.
    #[inline]
    pub fn count_dropped(&mut self, n: u64) {
        self.dropped += n;
    }

    /// Appends the event if it fits (this never allocates: `len < capacity`), otherwise drops
    /// and counts it. Returns whether it was kept.
    #[inline]
    pub fn push(&mut self, event: ProcessEvent<P>) -> bool {
        let is_note = matches!(event, ProcessEvent::NoteEvent(_));
        if self.events.len() >= self.events.capacity()
            || (is_note && self.notes >= self.note_capacity)
        {
            self.dropped += 1;
            return false;
        }

        let event = QueuedProcessEvent {
            order: self.events.len() as u32,
            event,
        };
        if let Some(last) = self.events.last()
            && (event.event.timing(), is_note)
                < (
                    last.event.timing(),
                    matches!(last.event, ProcessEvent::NoteEvent(_)),
                )
        {
            self.sorted = false;
        }
        self.events.push(event);
        if is_note {
            self.notes += 1;
        }

        true
    }

    /// Sorts the buffer if events arrived out of order (in place, no allocation) and returns the
    /// number of dropped events.
    pub fn finish(self) -> u64 {
        if !self.sorted {
            self.events
                .sort_unstable_by_key(QueuedProcessEvent::sort_key);
        }
        self.dropped
    }
}

impl<P: Vst3Plugin> WrapperInner<P> {
    #[allow(unused_unsafe)]
    pub fn new() -> Arc<Self> {
        let mut plugin = P::default();
        let task_executor = Mutex::new(plugin.task_executor());

        // This is used to allow the plugin to restore preset data from its editor, see the comment
        // on `Self::updated_state_sender`
        let (updated_state_sender, updated_state_receiver) = channel::bounded(0);

        // This is a mapping from the parameter IDs specified by the plugin to pointers to those
        // parameters. These pointers are assumed to be safe to dereference as long as
        // `wrapper.plugin` is alive. The plugin API identifiers these parameters by hashes, which
        // we'll calculate from the string ID specified by the plugin. These parameters should also
        // remain in the same order as the one returned by the plugin.
        let params = plugin.params();
        let param_id_hashes_ptrs_groups: Vec<_> = params
            .param_map()
            .into_iter()
            .map(|(id, ptr, group)| {
                let hash = hash_param_id(&id);
                (id, hash, ptr, group)
            })
            .collect();
        if cfg!(debug_assertions) {
            let param_map = params.param_map();
            let param_ids: HashSet<_> = param_id_hashes_ptrs_groups
                .iter()
                .map(|(id, _, _, _)| id.clone())
                .collect();
            crate::nice_debug_assert_eq!(
                param_map.len(),
                param_ids.len(),
                "The plugin has duplicate parameter IDs, weird things may happen. Consider using \
                 6 character parameter IDs to avoid collisions."
            );

            let mut bypass_param_exists = false;
            for (id, hash, ptr, _) in &param_id_hashes_ptrs_groups {
                let flags = unsafe { ptr.flags() };
                let is_bypass = flags.contains(ParamFlags::BYPASS);

                if is_bypass && bypass_param_exists {
                    crate::nice_debug_assert_failure!(
                        "Duplicate bypass parameters found, the host will only use the first one"
                    );
                }

                bypass_param_exists |= is_bypass;

                if P::MIDI_INPUT >= MidiConfig::MidiCCs
                    && (VST3_MIDI_PARAMS_START..VST3_MIDI_PARAMS_END).contains(hash)
                {
                    crate::nice_debug_assert_failure!(
                        "Parameter '{}' collides with an automatically generated MIDI CC \
                         parameter, consider giving it a different ID",
                        id
                    );
                }
            }
        }

        let param_hashes: Vec<u32> = param_id_hashes_ptrs_groups
            .iter()
            .map(|(_, hash, _, _)| *hash)
            .collect();
        let param_index_by_hash = param_hashes
            .iter()
            .enumerate()
            .map(|(index, hash)| (*hash, index))
            .collect();
        let pending_controller_values = param_hashes
            .iter()
            .map(|_| AtomicU32::new(NO_PENDING_VALUE))
            .collect();
        let param_by_hash = param_id_hashes_ptrs_groups
            .iter()
            .map(|(_, hash, ptr, _)| (*hash, *ptr))
            .collect();
        let param_id_by_hash = param_id_hashes_ptrs_groups
            .iter()
            .map(|(id, hash, _, _)| (*hash, id.clone()))
            .collect();
        let param_units = ParamUnits::from_param_groups(
            param_id_hashes_ptrs_groups
                .iter()
                .map(|(_, hash, _, group_name)| (*hash, group_name.as_str())),
        )
        .expect("Inconsistent parameter groups");
        let param_id_to_hash = param_id_hashes_ptrs_groups
            .iter()
            .map(|(id, hash, _, _)| (id.clone(), *hash))
            .collect();
        let param_ptr_to_hash = param_id_hashes_ptrs_groups
            .into_iter()
            .map(|(_, hash, ptr, _)| (ptr, hash))
            .collect();

        let input_note_events = if P::MIDI_INPUT == MidiConfig::None {
            AtomicRefCell::new(VecDeque::new())
        } else {
            AtomicRefCell::new(VecDeque::with_capacity(P::INPUT_EVENT_CAPACITY))
        };

        let wrapper = Arc::new(Self {
            plugin: TryLock::new(plugin),
            task_executor,
            params,
            // Initialized later as it needs a reference to the wrapper for the async executor
            #[cfg(feature = "editor")]
            editor: AtomicRefCell::new(None),
            #[cfg(feature = "editor")]
            editor_window: Arc::new(AtomicRefCell::new(None)),

            component_handler: AtomicRefCell::new(None),

            #[cfg(feature = "editor")]
            plug_view: RwLock::new(None),

            #[cfg(feature = "editor")]
            is_editor_open: AtomicBool::new(false),

            event_loop: AtomicRefCell::new(None),

            is_processing: AtomicBool::new(false),
            // Some hosts, like the current version of Bitwig and Ardour at the time of writing,
            // will try using the plugin's default not yet initialized bus arrangement. Because of
            // that, we'll always initialize this configuration even before the host requests a
            // channel layout.
            current_audio_io_layout: AtomicCell::new(
                P::AUDIO_IO_LAYOUTS.first().copied().unwrap_or_default(),
            ),
            current_buffer_config: AtomicCell::new(None),
            current_process_mode: AtomicCell::new(ProcessMode::Realtime),
            #[cfg(feature = "editor")]
            current_track_info: AtomicRefCell::new(TrackInfo::default()),
            last_process_status: AtomicCell::new(ProcessStatus::Normal),
            current_latency: AtomicU32::new(0),
            pending_restart_flags: AtomicI32::new(0),
            restart_task_queued: AtomicBool::new(false),
            // This is initialized just before calling `Plugin::activate()` so that during the
            // process call buffers can be initialized without any allocations
            buffer_manager: AtomicRefCell::new(BufferManager::for_audio_io_layout(
                0,
                AudioIOLayout::default(),
            )),
            input_note_events,
            note_expression_controller: AtomicRefCell::new(NoteExpressionController::default()),
            process_events: AtomicRefCell::new(Vec::with_capacity(P::INPUT_EVENT_CAPACITY)),
            dropped_input_events: AtomicU64::new(0),
            dropped_input_events_reported: AtomicU64::new(0),
            pending_controller_values,
            has_pending_controller_values: AtomicBool::new(false),
            updated_state_sender,
            updated_state_receiver,

            param_hashes,
            param_index_by_hash,
            param_by_hash,
            param_id_by_hash,
            param_units,
            param_id_to_hash,
            param_ptr_to_hash,
        });

        // FIXME: Right now this is safe, but if we are going to have a singleton main thread queue
        //        serving multiple plugin instances, Arc can't be used because its reference count
        //        is separate from the internal COM-style reference count.
        *wrapper.event_loop.borrow_mut() =
            Some(OsEventLoop::new_and_spawn(Arc::downgrade(&wrapper)));

        // The editor also needs to be initialized later so the Async executor can work.

        #[cfg(feature = "editor")]
        {
            *wrapper.editor.borrow_mut() = wrapper
                .plugin
                .try_lock()
                .unwrap()
                .editor(nice_plug_core::context::gui::AsyncExecutor::new(
                    Arc::new({
                        let wrapper = Arc::downgrade(&wrapper);
                        move |task| {
                            let wrapper = match wrapper.upgrade() {
                                Some(wrapper) => wrapper,
                                None => return,
                            };

                            let task_posted = wrapper.schedule_background(Task::PluginTask(task));
                            crate::nice_debug_assert!(
                                task_posted,
                                "The task queue is full, dropping task..."
                            );
                        }
                    }),
                    Arc::new({
                        let wrapper = Arc::downgrade(&wrapper);
                        move |task| {
                            let wrapper = match wrapper.upgrade() {
                                Some(wrapper) => wrapper,
                                None => return,
                            };

                            let task_posted = wrapper.schedule_gui(Task::PluginTask(task));
                            crate::nice_debug_assert!(
                                task_posted,
                                "The task queue is full, dropping task..."
                            );
                        }
                    }),
                ))
                .map(|editor| Arc::new(Mutex::new(editor)));
        }

        wrapper
    }

    #[cfg(feature = "editor")]
    pub fn make_gui_context(self: Arc<Self>) -> GuiContext {
        GuiContext::new(Arc::new(WrapperGuiContext {
            inner: Arc::downgrade(&self),
            #[cfg(debug_assertions)]
            param_gesture_checker: Default::default(),
        }))
    }

    /// # Note
    ///
    /// The lock on the plugin must be dropped before this object is dropped to avoid deadlocks
    /// caused by reentrant function calls.
    pub fn make_activate_context(&self) -> WrapperActivateContext<'_, P> {
        WrapperActivateContext {
            inner: self,
            pending_requests: Default::default(),
        }
    }

    pub fn make_process_context<'a>(
        &'a self,
        transport: Transport,
        host_out_events: Option<ComRef<'a, IEventList>>,
        total_buffer_len: usize,
        current_sample_idx: usize,
    ) -> WrapperProcessContext<'a, P> {
        WrapperProcessContext {
            inner: self,
            input_events_guard: self.input_note_events.borrow_mut(),
            transport,
            host_out_events,
            total_buffer_len: total_buffer_len as u32,
            current_sample_idx: current_sample_idx as u32,
        }
    }

    /// Posts the task to the background task queue using [`EventLoop::schedule_background()`] so it
    /// can be run in the background without blocking either the GUI or the audio thread.
    ///
    /// If the task queue is full, then this will return false.
    #[must_use]
    pub fn schedule_background(&self, task: Task<P>) -> bool {
        let event_loop = self.event_loop.borrow();
        let event_loop = event_loop.as_ref().unwrap();
        event_loop.schedule_background(task)
    }

    /// Either posts the task to the task queue using [`EventLoop::schedule_gui()`] so it can be
    /// delegated to the main thread, executes the task directly if this is the main thread, or runs
    /// the task on the host's `IRunLoop` if the GUI is open and it exposes one.
    ///
    /// If the task queue is full, then this will return false.
    #[must_use]
    pub fn schedule_gui(&self, task: Task<P>) -> bool {
        let event_loop = self.event_loop.borrow();
        let event_loop = event_loop.as_ref().unwrap();
        if event_loop.is_main_thread() {
            self.execute(task, true);
            true
        } else {
            // If the editor is open, and the host exposes the `IRunLoop` interface, then we'll run
            // the task on the host's GUI thread using that interface. Otherwise we'll use the
            // regular event loop. If the editor gets dropped while there's still outstanding work
            // left in the run loop task queue, then those tasks will be posted to the regular event
            // loop so no work is lost.
            #[cfg(feature = "editor")]
            if self.is_editor_open.load(Ordering::Relaxed) {
                match self
                    .plug_view
                    .read()
                    .clone()
                    .unwrap()
                    .do_maybe_in_run_loop(task)
                {
                    Ok(()) => true,
                    Err(task) => event_loop.schedule_gui(task),
                }
            } else {
                event_loop.schedule_gui(task)
            }

            #[cfg(not(feature = "editor"))]
            event_loop.schedule_gui(task)
        }
    }

    /// Get a parameter's ID based on a `ParamPtr`. Used in the `GuiContext` implementation for the
    /// gesture checks.
    #[allow(unused)]
    pub fn param_id_from_ptr(&self, param: ParamPtr) -> Option<&str> {
        self.param_ptr_to_hash
            .get(&param)
            .and_then(|hash| self.param_id_by_hash.get(hash))
            .map(|s| s.as_str())
    }

    /// Convenience function for setting a value for a parameter as triggered by a VST3 parameter
    /// update. The same rate is for updating parameter smoothing.
    ///
    /// After calling this function, you should call
    /// [`notify_param_values_changed()`][Self::notify_param_values_changed()] to allow the editor
    /// to update itself. This needs to be done separately so you can process parameter changes in
    /// batches.
    pub fn set_normalized_value_by_hash(
        &self,
        hash: u32,
        normalized_value: f32,
        sample_rate: Option<f32>,
    ) -> tresult {
        if !normalized_value.is_finite() {
            return kInvalidArgument;
        }

        match self.param_by_hash.get(&hash) {
            Some(param_ptr) => {
                if unsafe { param_ptr._internal_set_normalized_value(normalized_value) } {
                    if let Some(sample_rate) = sample_rate {
                        unsafe { param_ptr._internal_update_smoother(sample_rate, false) };
                    }

                    // rtfx patch: upstream logged a full task queue here in debug builds, on the
                    // audio thread (logging allocates), which dense automation (a point on every
                    // sample of every parameter) triggers at once. The task only tells an open
                    // editor to repaint, which it also does on its own timer, so a dropped one is
                    // harmless.
                    #[cfg(feature = "editor")]
                    {
                        let _ =
                            self.schedule_gui(Task::ParameterValueChanged(hash, normalized_value));
                    }
                }

                kResultOk
            }
            _ => kInvalidArgument,
        }
    }

    /// Get the plugin's state object, may be called by the plugin's GUI as part of its own preset
    /// management. The wrapper doesn't use these functions and serializes and deserializes directly
    /// the JSON in the relevant plugin API methods instead.
    #[cfg(feature = "editor")]
    pub fn get_state_object(&self) -> PluginState {
        unsafe {
            state::serialize_object::<P>(
                self.params.clone(),
                state::make_params_iter(&self.param_by_hash, &self.param_id_to_hash),
            )
        }
    }

    /// Update the plugin's internal state, called by the plugin itself from the GUI thread. To
    /// prevent corrupting data and changing parameters during processing the actual state is only
    /// updated at the end of the audio processing cycle.
    #[cfg(feature = "editor")]
    pub fn set_state_object_from_gui(&self, mut state: PluginState) {
        use crossbeam::channel::SendTimeoutError;

        // Use a loop and timeouts to handle the super rare edge case when this function gets called
        // between a process call and the host disabling the plugin
        loop {
            if self.is_processing.load(Ordering::SeqCst) {
                // If the plugin is currently processing audio, then we'll perform the restore
                // operation at the end of the audio call. This involves sending the state to the
                // audio thread, having the audio thread handle the state restore at the very end of
                // the process function, and then sending the state back to this thread so it can be
                // deallocated without blocking the audio thread.
                match self
                    .updated_state_sender
                    .send_timeout(state, std::time::Duration::from_secs(1))
                {
                    Ok(_) => {
                        // As mentioned above, the state object will be passed back to this thread
                        // so we can deallocate it without blocking.
                        let state = self.updated_state_receiver.recv();
                        drop(state);
                        break;
                    }
                    Err(SendTimeoutError::Timeout(value)) => {
                        state = value;
                        continue;
                    }
                    Err(SendTimeoutError::Disconnected(_)) => {
                        crate::nice_debug_assert_failure!("State update channel got disconnected");
                        return;
                    }
                }
            } else {
                // Otherwise we'll set the state right here and now, since this function should be
                // called from a GUI thread
                self.set_state_inner(&mut state);
                break;
            }
        }

        // After the state has been updated, notify the host about the new parameter values
        self.request_restart_flags(RestartFlags_::kParamValuesChanged);
    }

    pub fn set_latency_samples(&self, samples: u32) {
        // Only trigger a restart if it's actually needed
        let old_latency = self.current_latency.swap(samples, Ordering::SeqCst);
        if old_latency != samples {
            self.request_restart();
        }
    }

    pub fn request_restart(&self) {
        self.request_restart_flags(RestartFlags_::kLatencyChanged);
    }

    /// rtfx patch: asks the host for a restart with `flags`, kept pending until delivered (see
    /// [`Self::pending_restart_flags`]). Lock-free and allocation-free.
    pub fn request_restart_flags(&self, flags: i32) {
        self.pending_restart_flags.fetch_or(flags, Ordering::SeqCst);
        self.post_pending_restart();
    }

    /// rtfx patch: queues a `TriggerRestart` task for the pending restart flags unless one is
    /// queued already; when the queue is full the flags stay pending for the next try (every
    /// `process()` call makes one).
    pub fn post_pending_restart(&self) {
        if self.pending_restart_flags.load(Ordering::SeqCst) == 0
            || self.restart_task_queued.swap(true, Ordering::SeqCst)
        {
            return;
        }
        if !self.schedule_gui(Task::TriggerRestart(0)) {
            self.restart_task_queued.store(false, Ordering::SeqCst);
        }
    }

    /// Immediately set the plugin state. Returns `false` if the deserialization failed. The plugin
    /// state is set from a couple places, so this function aims to deduplicate that. Includes
    /// `permit_alloc()`s around the deserialization and initialization for the use case where
    /// `set_state_object_from_gui()` was called while the plugin is process audio.
    ///
    /// Implicitly emits `Task::ParameterValuesChanged`.
    ///
    /// # Notes
    ///
    /// `self.plugin` must _not_ be locked while calling this function or it will deadlock.
    pub fn set_state_inner(&self, state: &mut PluginState) -> bool {
        // rtfx patch: a loaded state supersedes what the controller set before it (see
        // `set_param_from_controller()`); a later `setParamNormalized()` still wins.
        self.clear_pending_controller_values();

        // FIXME: This is obviously not realtime-safe, but loading presets without doing this
        //        could lead to inconsistencies. `state::deserialize_object()` normally never
        //        allocates, but if the plugin has persistent non-parameter data then its
        //        `deserialize_fields()` implementation may still allocate.
        let success = permit_alloc(|| unsafe {
            state::deserialize_object::<P>(
                state,
                self.params.clone(),
                state::make_params_getter(&self.param_by_hash, &self.param_id_to_hash),
                self.current_buffer_config.load().as_ref(),
            )
        });
        if !success {
            crate::nice_debug_assert_failure!(
                "Deserializing plugin state from a state object failed"
            );
            return false;
        }

        #[cfg(feature = "editor")]
        {
            // Reinitialize the plugin after loading state so it can respond to the new parameter values
            let task_posted = self.schedule_gui(Task::StateChanged);
            crate::nice_debug_assert!(task_posted, "The task queue is full, dropping task...");
        }

        success
    }
}

impl<P: Vst3Plugin> WrapperInner<P> {
    /// rtfx patch: runs `f` with the open editor when this thread can reach it now.
    ///
    /// Tasks also run on the background thread: always when the host has no `IRunLoop`, and
    /// while the editor opens or closes (`is_editor_open` is false then). Borrowing the window
    /// there while the GUI thread held it in `attached()`/`removed()` panicked ("already
    /// mutably borrowed"), as did touching the thread-bound window from another thread; the
    /// panic ended the background thread and every later task was lost (latency changes
    /// included). Such a task is skipped instead: parameter and state notifications are
    /// repaint hints (the editor redraws on its own timer), and a `CallMainThread` that reaches
    /// the background thread could not have run there anyway (upstream panicked).
    #[cfg(feature = "editor")]
    fn with_editor_here(&self, f: impl FnOnce(&SpawnedEditor<<P::Editor as Editor>::Handle>)) {
        if let Ok(window) = self.editor_window.try_borrow()
            && let Some(window) = window.as_ref()
            && let Ok(editor) = window.try_get()
        {
            f(editor);
        }
    }

    /// rtfx patch: the editor window, mutably, for `attached()` and `removed()` on the GUI
    /// thread. [`Self::with_editor_here`] on the background thread may hold a shared borrow for
    /// an instant; `borrow_mut` would panic then ("already immutably borrowed", inside a VST3
    /// call, aborting the host), so this waits it out. After 100 ms it borrows as before.
    #[cfg(feature = "editor")]
    #[allow(clippy::type_complexity)]
    pub fn editor_window_mut(
        &self,
    ) -> AtomicRefMut<'_, Option<fragile::Fragile<SpawnedEditor<<P::Editor as Editor>::Handle>>>>
    {
        let start = std::time::Instant::now();
        while start.elapsed() < std::time::Duration::from_millis(100) {
            if let Ok(window) = self.editor_window.try_borrow_mut() {
                return window;
            }
            std::thread::yield_now();
        }
        self.editor_window.borrow_mut()
    }
}

/// rtfx patch: the input event buffers (sized for dense automation, never grown while processing)
/// and the controller's parameter changes while processing.
impl<P: Vst3Plugin> WrapperInner<P> {
    /// The capacities of [`Self::process_events`] and of [`Self::input_note_events`] for blocks
    /// of up to `max_block_size` samples: room for a point on every sample of every parameter
    /// that is buffered (all of them with `P::SAMPLE_ACCURATE_AUTOMATION`, none otherwise: those
    /// changes are applied as they are read) and of every MIDI CC pseudo-parameter, plus
    /// `P::INPUT_EVENT_CAPACITY` note events, but at most [`MAX_PROCESS_EVENTS`] events or
    /// [`MAX_PROCESS_EVENT_BUFFER_BYTES`] bytes, and never less than `P::INPUT_EVENT_CAPACITY`
    /// (upstream's fixed size).
    pub fn process_event_capacities(&self, max_block_size: usize) -> (usize, usize) {
        let event_size = std::mem::size_of::<QueuedProcessEvent<P>>().max(1);
        let cap = MAX_PROCESS_EVENTS.min(MAX_PROCESS_EVENT_BUFFER_BYTES / event_size);

        let automated_params = if P::SAMPLE_ACCURATE_AUTOMATION {
            self.param_hashes.len()
        } else {
            0
        };
        let midi_cc_params = if P::MIDI_INPUT >= MidiConfig::MidiCCs {
            VST3_MIDI_NUM_PARAMS as usize
        } else {
            0
        };
        let notes = if P::MIDI_INPUT == MidiConfig::None {
            0
        } else {
            P::INPUT_EVENT_CAPACITY.saturating_add(max_block_size.saturating_mul(midi_cc_params))
        };
        let worst_case = max_block_size
            .saturating_mul(automated_params)
            .saturating_add(notes);

        let total = worst_case.min(cap).max(P::INPUT_EVENT_CAPACITY);
        (total, notes.min(total))
    }

    /// Sizes the input event buffers for `max_block_size`. Called from `setupProcessing()`, which
    /// the host calls while the plugin is inactive, not on the audio thread. If a misbehaving
    /// host processes at the same time, the buffers are left as they are.
    pub fn resize_event_buffers(&self, max_block_size: usize) {
        let (total, notes) = self.process_event_capacities(max_block_size);

        // Reallocate when too small, and also when far too large (after a smaller block size)
        let needs_resize = |capacity: usize, wanted: usize| {
            capacity < wanted || capacity / 2 > wanted.max(P::INPUT_EVENT_CAPACITY)
        };
        match self.process_events.try_borrow_mut() {
            Ok(mut events) => {
                if needs_resize(events.capacity(), total) {
                    *events = Vec::with_capacity(total);
                }
            }
            Err(_) => crate::nice_error!(
                "setupProcessing() was called during process(), not resizing the event buffer"
            ),
        }
        if P::MIDI_INPUT != MidiConfig::None {
            match self.input_note_events.try_borrow_mut() {
                Ok(mut events) => {
                    if needs_resize(events.capacity(), notes) {
                        *events = VecDeque::with_capacity(notes);
                    }
                }
                Err(_) => crate::nice_error!(
                    "setupProcessing() was called during process(), not resizing the note buffer"
                ),
            }
        }

        crate::nice_trace!(
            "Input event buffer: {} events ({} notes) for blocks of {} samples",
            total,
            notes,
            max_block_size
        );
    }

    /// Logs the events `process()` dropped since the last report. Not for the audio thread.
    pub fn report_dropped_input_events(&self) {
        let total = self.dropped_input_events.load(Ordering::Relaxed);
        let reported = self
            .dropped_input_events_reported
            .swap(total, Ordering::Relaxed);
        if total > reported {
            crate::nice_warn!(
                "Dropped {} input events (parameter change points or note events) that did not                  fit the event buffer, to avoid allocating on the audio thread ({} in total)",
                total - reported,
                total
            );
        }
    }

    /// `IEditController::setParamNormalized()`.
    ///
    /// Upstream ignored the call while the plugin was processing (so `getParamNormalized()` went
    /// on returning the old value, which the VST3 validator's bypass persistence test reports),
    /// because the parameters are shared by the controller and the processor: writing them here
    /// would race with `process()`, which writes them from the host's parameter changes. The
    /// parameter atomics make that free of undefined behaviour, but not consistent: a parameter
    /// is several atomics (value, normalized value, unmodulated values, smoother target, step
    /// size and steps left), and two threads storing different values at once can leave them
    /// mixed, e.g. `value()` from one write and the smoother heading to the other, until the next
    /// change. The value could also change in the middle of a block.
    ///
    /// Instead, while processing, the value goes to a per-parameter slot
    /// ([`Self::pending_controller_values`]); only the audio thread moves it into the parameter,
    /// at the start of the next `process()` call ([`Self::apply_pending_controller_values()`])
    /// or in `setProcessing(false)`, so the parameters keep a single writer at a time and change
    /// only between blocks. `getParamNormalized()` returns the slot's value while it is pending,
    /// so the controller reflects the new value immediately.
    ///
    /// Host automation keeps priority: when the same `process()` call carries points for the
    /// parameter, the slot is discarded and the host's points apply at their sample offsets
    /// (hosts that echo their automation to the controller send the same values through
    /// `process()` anyway, and a late echo can then not pull the value back). A loaded state
    /// discards the slots too. When not processing, the value is set right away, as upstream
    /// does. Caveat: a host that stops calling `process()` without `setProcessing(false)` (REAPER
    /// for bypassed plugins) leaves the value pending until it resumes, so `getState()` in the
    /// meantime saves the previous value; upstream dropped the value altogether.
    pub fn set_param_from_controller(&self, hash: u32, normalized_value: f32) -> tresult {
        if !normalized_value.is_finite() {
            return kInvalidArgument;
        }

        if self.is_processing.load(Ordering::SeqCst) {
            match self.param_index_by_hash.get(&hash) {
                Some(&index) => {
                    self.pending_controller_values[index]
                        .store(normalized_value.to_bits(), Ordering::SeqCst);
                    self.has_pending_controller_values
                        .store(true, Ordering::SeqCst);
                }
                // Upstream's answer while processing, e.g. for the MIDI CC pseudo-parameters
                None => (),
            }

            kResultOk
        } else {
            // NOTE: As upstream, this assumes the host does not start processing while this
            //       runs.
            let sample_rate = self.current_buffer_config.load().map(|c| c.sample_rate);
            self.set_normalized_value_by_hash(hash, normalized_value, sample_rate)
        }
    }

    /// The controller's value for the parameter while it is pending (see
    /// [`Self::set_param_from_controller()`]), snapped the way setting it will snap it.
    pub fn pending_controller_value(&self, hash: u32) -> Option<f32> {
        let index = *self.param_index_by_hash.get(&hash)?;
        let bits = self.pending_controller_values[index].load(Ordering::SeqCst);
        if bits == NO_PENDING_VALUE {
            return None;
        }

        let param_ptr = self.param_by_hash.get(&hash)?;
        let value = f32::from_bits(bits);
        Some(unsafe { param_ptr.preview_normalized(param_ptr.preview_plain(value)) })
    }

    /// Discards the controller's pending value for the parameter: called by `process()` when the
    /// host's parameter changes for this call have points for it.
    #[inline]
    pub fn discard_pending_controller_value(&self, hash: u32) {
        if let Some(&index) = self.param_index_by_hash.get(&hash) {
            self.pending_controller_values[index].store(NO_PENDING_VALUE, Ordering::SeqCst);
        }
    }

    /// Moves the controller's pending values into the parameters. Called by `process()` before
    /// its first block and by `setProcessing(false)`. Lock-free and allocation-free: a swap per
    /// parameter, only when something is pending. A value stored while this runs is either
    /// applied now or left with the flag set for the next call (each slot is swapped out, so
    /// none is applied twice or lost).
    pub fn apply_pending_controller_values(&self, sample_rate: Option<f32>) {
        if !self
            .has_pending_controller_values
            .swap(false, Ordering::SeqCst)
        {
            return;
        }

        for (index, slot) in self.pending_controller_values.iter().enumerate() {
            let bits = slot.swap(NO_PENDING_VALUE, Ordering::SeqCst);
            if bits != NO_PENDING_VALUE {
                self.set_normalized_value_by_hash(
                    self.param_hashes[index],
                    f32::from_bits(bits),
                    sample_rate,
                );
            }
        }
    }

    /// Discards all of the controller's pending values.
    pub fn clear_pending_controller_values(&self) {
        if self
            .has_pending_controller_values
            .swap(false, Ordering::SeqCst)
        {
            for slot in self.pending_controller_values.iter() {
                slot.store(NO_PENDING_VALUE, Ordering::SeqCst);
            }
        }
    }
}

impl<P: Vst3Plugin> MainThreadExecutor<Task<P>> for WrapperInner<P> {
    fn execute(&self, task: Task<P>, is_gui_thread: bool) {
        // This function is always called from the main thread
        match task {
            Task::PluginTask(task) => (self.task_executor.lock())(task),
            #[cfg(feature = "editor")]
            Task::StateChanged => {
                use nice_plug_core::editor::EditorHandle;

                self.with_editor_here(|editor| editor.handle.state_changed());
            }
            #[cfg(feature = "editor")]
            Task::ParameterValueChanged(param_hash, normalized_value) => {
                use nice_plug_core::editor::EditorHandle;

                let param_id = &self.param_id_by_hash[&param_hash];
                self.with_editor_here(|editor| {
                    editor.handle.param_value_changed(param_id, normalized_value)
                });
            }
            Task::TriggerRestart(flags) => match &*self.component_handler.borrow() {
                Some(handler) => unsafe {
                    crate::nice_debug_assert!(is_gui_thread);
                    // rtfx patch: deliver every pending flag (see `pending_restart_flags`)
                    self.restart_task_queued.store(false, Ordering::SeqCst);
                    let flags = flags | self.pending_restart_flags.swap(0, Ordering::SeqCst);
                    if flags == 0 {
                        return;
                    }
                    let result = handler.restartComponent(flags);
                    crate::nice_debug_assert_eq!(
                        result,
                        kResultOk,
                        "Failed the restart request call with flags '{:?}'",
                        flags
                    );
                },
                None => {
                    // rtfx patch: the flags stay pending for a later task
                    self.restart_task_queued.store(false, Ordering::SeqCst);
                    crate::nice_debug_assert_failure!("Component handler not yet set")
                }
            },
            #[cfg(feature = "editor")]
            Task::RequestResize { size, scale_factor } => {
                if self.is_editor_open.load(Ordering::SeqCst) {
                    unsafe {
                        crate::nice_debug_assert!(is_gui_thread);
                        let _success = WrapperView::request_resize(
                            &self.plug_view.read().clone().unwrap(),
                            size,
                            scale_factor,
                        );
                    }
                } else {
                    crate::nice_debug_assert_failure!("Can't resize a closed editor");
                }
            }
            #[cfg(feature = "editor")]
            Task::CallMainThread => {
                use nice_plug_core::editor::EditorHandle;

                self.with_editor_here(|editor| {
                    editor.handle.host_main_thread_callback(&editor.window)
                });
            }
        }
    }
}

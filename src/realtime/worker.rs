//! [`WorkerThread`]: the one DSP worker thread of rtfx. The real-time processor's engine and
//! the plugin's offload mode both run on it: a thread, real-time priority when the system
//! grants it, woken by the audio thread (`Thread::unpark`: lock-free) or at least every
//! [`PARK_TIMEOUT`], doing whatever work is ready, until it is stopped.
//!
//! ```
//! use std::sync::Arc;
//! use std::sync::atomic::{AtomicUsize, Ordering};
//! use rtfx::realtime::worker::{WorkerTask, WorkerThread};
//!
//! struct Count(Arc<AtomicUsize>);
//! impl WorkerTask for Count {
//!     fn run_ready(&mut self) {
//!         self.0.fetch_add(1, Ordering::Relaxed);
//!     }
//! }
//!
//! let turns = Arc::new(AtomicUsize::new(0));
//! let worker = WorkerThread::spawn("example", None, Count(turns.clone()))?;
//! worker.waker().unpark();
//! let task = worker.join()?; // stops it, and hands the task back
//! assert!(turns.load(Ordering::Relaxed) >= 1);
//! # Ok::<(), rtfx::Error>(())
//! ```

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::{JoinHandle, Thread};
use std::time::Duration;

use crate::error::{Error, Result};

/// The longest a worker sleeps without being woken (a missed wake costs at most this).
pub const PARK_TIMEOUT: Duration = Duration::from_millis(50);

/// What a [`WorkerThread`] runs.
pub trait WorkerTask: Send + 'static {
    /// Does the work that is ready, then returns (the thread sleeps until it is woken). Must
    /// not block: the thread is stopped between two calls.
    fn run_ready(&mut self);

    /// Called once on the new thread, before any work, with whether it got the real-time
    /// priority it asked for.
    fn started(&mut self, _realtime: bool) {}
}

/// A running worker (see the [module docs](self)). Dropping it stops and joins the thread.
pub struct WorkerThread<T: WorkerTask> {
    stop: Arc<AtomicBool>,
    handle: Option<JoinHandle<T>>,
    waker: Thread,
}

impl<T: WorkerTask> WorkerThread<T> {
    /// Starts a thread named `rtfx-{name}` running `task`; with `priority`, it asks for
    /// real-time (SCHED_FIFO) scheduling at that priority (1–99) first and tells the task
    /// whether it got it ([`WorkerTask::started`]). Allocates: never call it on the audio
    /// thread.
    pub fn spawn(name: &str, priority: Option<i32>, mut task: T) -> Result<Self> {
        let stop = Arc::new(AtomicBool::new(false));
        let stopped = stop.clone();
        let handle = std::thread::Builder::new()
            .name(format!("rtfx-{name}"))
            .spawn(move || {
                task.started(priority.is_some_and(promote_current_thread));
                loop {
                    task.run_ready();
                    if stopped.load(Ordering::Acquire) {
                        break;
                    }
                    std::thread::park_timeout(PARK_TIMEOUT);
                }
                task
            })
            .map_err(|e| {
                Error::realtime(format!("Could not start the {name} worker thread: {e}"))
                    .with_suggestion("the system is out of threads or memory; close something")
            })?;
        let waker = handle.thread().clone();
        Ok(Self {
            stop,
            handle: Some(handle),
            waker,
        })
    }

    /// The handle that wakes the worker (`unpark`: lock-free, safe on the audio thread).
    pub fn waker(&self) -> &Thread {
        &self.waker
    }

    /// Stops the worker after its current turn and hands the task back; a task that panicked
    /// is an error quoting the panic.
    pub fn join(mut self) -> Result<T> {
        let handle = self.handle.take().expect("joined once: join takes self");
        self.stop.store(true, Ordering::Release);
        self.waker.unpark();
        handle.join().map_err(|panic| {
            let reason = panic
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown panic".into());
            let name = self.waker.name().unwrap_or("rtfx worker").to_string();
            Error::realtime(format!("The DSP worker thread panicked: {reason}"))
                .with_parameter_name(name)
                .with_suggestion("this is a bug in an effect; please report it with the chain used")
        })
    }
}

impl<T: WorkerTask> Drop for WorkerThread<T> {
    fn drop(&mut self) {
        if let Some(handle) = self.handle.take() {
            self.stop.store(true, Ordering::Release);
            self.waker.unpark();
            let _ = handle.join();
        }
    }
}

/// Asks real-time (SCHED_FIFO) scheduling at `priority` (1–99) for the calling thread; true
/// when granted.
#[cfg(unix)]
pub fn promote_current_thread(priority: i32) -> bool {
    let param = libc::sched_param {
        sched_priority: priority.clamp(1, 99),
    };
    // SAFETY: pthread_self() is the calling thread; `param` lives across the call.
    unsafe { libc::pthread_setschedparam(libc::pthread_self(), libc::SCHED_FIFO, &param) == 0 }
}

/// Real-time scheduling is not implemented on this platform.
#[cfg(not(unix))]
pub fn promote_current_thread(_priority: i32) -> bool {
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Panics;
    impl WorkerTask for Panics {
        fn run_ready(&mut self) {
            panic!("boom");
        }
    }

    #[test]
    fn a_panic_is_an_error_that_quotes_it() {
        let worker = WorkerThread::spawn("test", None, Panics).unwrap();
        let e = worker.join().err().expect("the task panicked");
        assert!(
            e.to_string()
                .contains("The DSP worker thread panicked: boom"),
            "{e}"
        );
    }

    struct Started(std::sync::mpsc::Sender<bool>);
    impl WorkerTask for Started {
        fn run_ready(&mut self) {}
        fn started(&mut self, realtime: bool) {
            let _ = self.0.send(realtime);
        }
    }

    #[test]
    fn without_a_priority_it_stays_at_normal_priority() {
        let (tx, rx) = std::sync::mpsc::channel();
        let worker = WorkerThread::spawn("test", None, Started(tx)).unwrap();
        assert!(!rx.recv().unwrap());
        drop(worker);
    }
}

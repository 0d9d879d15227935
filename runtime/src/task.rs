//! A goroutine's closure and its join slot, in one allocation, and the
//! [`JoinHandle`] that reads the slot.
//!
//! # The join slot's state machine
//!
//! `Packet::state` is one word:
//!
//! - `INCOMPLETE`: the goroutine has not finished; nobody waits.
//! - a pointer to a boxed [`Waiter`] (word-aligned, so never 0, 1 or 2): the
//!   joiner is parked; the completer owns the box once it claims the slot.
//! - `CLAIMED`: a completer is writing the result; joiners spin briefly.
//! - `DONE`: the result is written (Release), the joiner may take it (Acquire).
//!
//! Two parties may try to complete: the goroutine itself, and runtime
//! shutdown abandoning a goroutine that can no longer run. The CAS to
//! `CLAIMED` picks exactly one; the loser drops its result.

use std::any::Any;
use std::cell::UnsafeCell;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread;

use crate::sched::g::Task;
use crate::sched::{block, WaitReason, Waiter};

const INCOMPLETE: usize = 0;
const CLAIMED: usize = 1;
const DONE: usize = 2;

/// The message carried by `join`'s `Err` for a goroutine abandoned when its
/// runtime shut down before it could finish.
pub const ABANDONED: &str = "goro: goroutine abandoned: its runtime shut down before it finished";

pub(crate) struct Packet<T> {
    state: AtomicUsize,
    result: UnsafeCell<Option<thread::Result<T>>>,
}

// SAFETY: `result` is written by the single party that claimed the slot and
// read by the joiner only after observing DONE (Release/Acquire), so there is
// no concurrent access; T crosses threads, hence `T: Send`.
unsafe impl<T: Send> Sync for Packet<T> {}

impl<T> Packet<T> {
    fn new() -> Packet<T> {
        Packet {
            state: AtomicUsize::new(INCOMPLETE),
            result: UnsafeCell::new(None),
        }
    }

    /// Stores `result` unless someone else completed first; wakes the joiner.
    fn complete(&self, result: thread::Result<T>) -> bool {
        let mut state = self.state.load(Ordering::Acquire);
        loop {
            if state == DONE || state == CLAIMED {
                return false;
            }
            match self
                .state
                .compare_exchange(state, CLAIMED, Ordering::AcqRel, Ordering::Acquire)
            {
                Ok(_) => break,
                Err(actual) => state = actual,
            }
        }
        // SAFETY: we claimed the slot; the joiner reads only after DONE.
        unsafe { *self.result.get() = Some(result) };
        self.state.store(DONE, Ordering::Release);
        if state != INCOMPLETE {
            // SAFETY: a state that is not INCOMPLETE/CLAIMED/DONE is the
            // joiner's boxed waiter, and claiming the slot gave it to us.
            let waiter = unsafe { Box::from_raw(state as *mut Waiter) };
            waiter.wake();
        }
        true
    }

    fn is_done(&self) -> bool {
        self.state.load(Ordering::Acquire) == DONE
    }

    fn join(&self) -> thread::Result<T> {
        loop {
            match self.state.load(Ordering::Acquire) {
                DONE => {
                    // SAFETY: DONE (Acquire) means the result is written and
                    // no one else touches it; `join` consumes the handle.
                    return unsafe { (*self.result.get()).take() }
                        .expect("goro: join slot emptied twice");
                }
                CLAIMED => std::hint::spin_loop(),
                _ => block(WaitReason::Join, |waiter| {
                    let boxed = Box::into_raw(Box::new(waiter));
                    match self.state.compare_exchange(
                        INCOMPLETE,
                        boxed as usize,
                        Ordering::AcqRel,
                        Ordering::Acquire,
                    ) {
                        Ok(_) => true,
                        Err(_) => {
                            // SAFETY: the CAS failed, so the box was never shared.
                            drop(unsafe { Box::from_raw(boxed) });
                            false
                        }
                    }
                }),
            }
        }
    }
}

/// The closure and the join slot of one goroutine.
pub(crate) struct TaskCell<F, T> {
    packet: Packet<T>,
    func: UnsafeCell<Option<F>>,
}

// SAFETY: `func` is taken by exactly one party — the goroutine when it first
// runs, or shutdown for a goroutine that never ran — so it is never accessed
// concurrently; F only moves to that party's thread, hence `F: Send`.
unsafe impl<F: Send, T: Send> Sync for TaskCell<F, T> {}

impl<F, T> TaskCell<F, T>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    pub(crate) fn new(func: F) -> Arc<TaskCell<F, T>> {
        Arc::new(TaskCell {
            packet: Packet::new(),
            func: UnsafeCell::new(Some(func)),
        })
    }
}

impl<F, T> Task for TaskCell<F, T>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    fn run(&self) {
        // SAFETY: only the goroutine's first run takes the closure (type doc).
        let Some(func) = (unsafe { (*self.func.get()).take() }) else {
            return;
        };
        let result = catch_unwind(AssertUnwindSafe(func));
        self.packet.complete(result);
    }

    fn abandon(&self) {
        let payload: Box<dyn Any + Send> = Box::new(ABANDONED);
        if self.packet.complete(Err(payload)) {
            // SAFETY: shutdown calls this only when no M can run the goroutine.
            drop(unsafe { (*self.func.get()).take() });
        }
    }
}

/// Type-erased access to a task's join slot.
pub(crate) trait Joinable<T>: Send + Sync {
    fn packet(&self) -> &Packet<T>;
}

impl<F, T> Joinable<T> for TaskCell<F, T>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    fn packet(&self) -> &Packet<T> {
        &self.packet
    }
}

/// An owned permission to wait for a goroutine and take its result.
///
/// Dropping the handle detaches the goroutine (it keeps running).
pub struct JoinHandle<T> {
    slot: Arc<dyn Joinable<T>>,
    id: u64,
}

impl<T> JoinHandle<T> {
    pub(crate) fn new(slot: Arc<dyn Joinable<T>>, id: u64) -> JoinHandle<T> {
        JoinHandle { slot, id }
    }

    /// Waits for the goroutine to finish. A goroutine parks (its M runs
    /// others meanwhile); a foreign thread blocks.
    ///
    /// Returns `Err(payload)` if the goroutine panicked (the payload of its
    /// panic), or if its runtime shut down first ([`ABANDONED`]).
    pub fn join(self) -> thread::Result<T> {
        self.slot.packet().join()
    }

    /// The goroutine's id, as shown by the runtime's diagnostics.
    pub fn id(&self) -> u64 {
        self.id
    }

    /// Whether the goroutine has finished (its result is ready).
    pub fn is_finished(&self) -> bool {
        self.slot.packet().is_done()
    }
}

impl<T> std::fmt::Debug for JoinHandle<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JoinHandle").field("id", &self.id).finish()
    }
}

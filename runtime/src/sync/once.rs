//! [`Once`]: run an initialiser exactly once. Go's `sync.Once`
//! (`src/sync/once.go`, The Go Authors).
//!
//! # Protocol
//!
//! - Fast path: `done` is set (Acquire, pairing with the Release store made
//!   after the initialiser returned): return. One load.
//! - Slow path: take `lock` (a [`RawMutex`]; concurrent callers park on it
//!   with wait reason `Once`), and run the initialiser if `done` is still
//!   clear; then set `done` and unlock. Callers that waited find `done` set
//!   and return, having seen everything the initialiser wrote (the store of
//!   `done` and the unlock are both Release).
//!
//! Why a lock rather than Go's rejected CAS-then-run: a caller must not
//! return before the initialiser has *finished*, so the losers must wait.
//!
//! # A panicking initialiser (Go's behaviour, not std's)
//!
//! If `f` panics, the `Once` counts as done (the drop guard sets `done` as
//! the panic unwinds, as Go's `defer` does), the lock is released, the panic
//! propagates to that caller, and every later `call_once` returns at once
//! without running anything. std instead poisons the `Once` and panics in
//! every later caller. Go's choice is kept because `Once` guards no value
//! here: there is no half-built value a later caller could observe, and
//! Go's `TestOncePanic` (ported in `tests/sync_once.rs`) pins it down.
//!
//! # Calling the same `Once` from its own initialiser
//!
//! That would wait for itself forever (in Go it deadlocks). Here it panics
//! with a message instead: the runner's token (`caller.rs`) is recorded
//! while the initialiser runs.

use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use super::caller;
use super::raw_mutex::RawMutex;
use crate::sched::WaitReason;

/// Runs a one-time initialisation; concurrent callers park until it is done.
pub struct Once {
    done: AtomicBool,
    /// The token of the caller running the initialiser, or 0.
    runner: AtomicUsize,
    lock: RawMutex,
}

impl Once {
    /// A `Once` that has not run.
    pub const fn new() -> Once {
        Once {
            done: AtomicBool::new(false),
            runner: AtomicUsize::new(0),
            lock: RawMutex::new(),
        }
    }

    /// Runs `f` if no call has run one yet; otherwise returns once the first
    /// call's `f` has finished (parking the goroutine meanwhile).
    ///
    /// # Panics
    /// Propagates a panic of `f` (the `Once` then counts as done: module
    /// doc). Panics if `f` calls `call_once` on this same `Once`.
    pub fn call_once<F: FnOnce()>(&self, f: F) {
        // Acquire: pairs with the Release store in `Finish::drop`.
        if self.done.load(Ordering::Acquire) {
            return;
        }
        self.call_slow(f);
    }

    #[cold]
    fn call_slow<F: FnOnce()>(&self, f: F) {
        let me = caller::token();
        if self.runner.load(Ordering::Relaxed) == me {
            panic!("sync: Once::call_once called from inside its own initialiser (it would wait for itself forever)");
        }
        self.lock.lock(WaitReason::Once);
        let _unlock = Unlock(&self.lock);
        if self.done.load(Ordering::Relaxed) {
            return;
        }
        self.runner.store(me, Ordering::Relaxed);
        let _finish = Finish(self);
        f();
    }

    /// Whether an initialiser has finished (or panicked).
    pub fn is_completed(&self) -> bool {
        self.done.load(Ordering::Acquire)
    }
}

impl Default for Once {
    fn default() -> Once {
        Once::new()
    }
}

impl fmt::Debug for Once {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Once")
            .field("completed", &self.is_completed())
            .finish()
    }
}

/// Marks the `Once` done when the initialiser returns or unwinds.
struct Finish<'a>(&'a Once);

impl Drop for Finish<'_> {
    fn drop(&mut self) {
        self.0.runner.store(0, Ordering::Relaxed);
        self.0.done.store(true, Ordering::Release);
    }
}

/// Unlocks the `Once`'s lock, on return or unwind.
struct Unlock<'a>(&'a RawMutex);

impl Drop for Unlock<'_> {
    fn drop(&mut self) {
        // SAFETY: constructed right after taking the lock.
        unsafe { self.0.unlock() };
    }
}

// Its state stays consistent if a caller unwinds (no user data inside).
impl std::panic::UnwindSafe for Once {}
impl std::panic::RefUnwindSafe for Once {}

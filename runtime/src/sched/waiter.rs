//! Waiters: one way to block for both goroutines and foreign threads.
//!
//! Everything that waits (a `JoinHandle::join`, a `WaitGroup::wait`, a
//! channel, and later locks) may be called from a goroutine, which must park
//! without blocking its M, or from a plain thread (`main` before the runtime,
//! a thread of an embedding program), which must block. [`block`] hides the
//! difference: the caller supplies a `register` closure that publishes a
//! [`Waiter`] into its wait queue (or reports that the condition already
//! holds), and whoever later satisfies the condition calls [`Waiter::wake`].
//!
//! For a goroutine, `register` runs as `park`'s unlock, after the goroutine
//! is off its stack (see `schedule.rs`); for a thread, it runs inline and the
//! thread then sleeps with `std::thread::park` until a flag is set.
//!
//! Channels use a second form, [`prepare_wait`] + [`wait_unlocking`]: the
//! waiter is queued while the caller holds its lock, and the lock is released
//! only after the goroutine is off its stack (Go's `chanparkcommit`), which
//! saves locking twice and re-checking.

use std::sync::atomic::{AtomicU8, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::Thread;
use std::time::Instant;

use super::g::{GRef, WaitReason};
use super::m::current_m;
use super::schedule::{in_goroutine, park, ready};

/// Someone blocked until `wake` is called, exactly once. A select queues a
/// clone per case; only the case that wins its word calls `wake`.
#[derive(Clone)]
pub(crate) enum Waiter {
    /// A parked goroutine.
    Goroutine(GRef),
    /// A blocked OS thread.
    Thread(Arc<ThreadWaiter>),
}

/// Threads outside every runtime that are blocked in a goro wait with no
/// deadline (a `join`, a channel, a lock), process-wide. Deadlock detection
/// (`deadlock.rs`) compares it with the process's thread count: only when
/// every thread that is not an M is counted here can no one outside the
/// runtime wake a goroutine.
///
/// A thread counts itself only once its waiter is published and it is
/// committed to sleeping (`ThreadWaiter::commit`, a CAS that fails if it was
/// woken already), and the party that wakes it uncounts it, before the
/// thread can run again. So a counted thread is asleep or about to be, with
/// nothing left to do before its wake. (Counting from the waiter's creation
/// counted a thread still inside `register`, about to find its condition
/// holds and run on: a false deadlock if the check came just then.) The two
/// sides may meet in either order, so the count can dip below zero (wrap)
/// for a moment: the check then sees a mismatch, and stays silent.
pub(crate) static FOREIGN_BLOCKED: AtomicUsize = AtomicUsize::new(0);

/// `ThreadWaiter::state`: published, not (yet) counted.
const WAITING: u8 = 0;
/// Counted in `FOREIGN_BLOCKED`, asleep or about to sleep.
const COUNTED: u8 = 1;
/// Woken; whoever moved it here from `COUNTED` uncounted it.
const WOKEN: u8 = 2;

/// The state a blocked thread sleeps on.
pub(crate) struct ThreadWaiter {
    state: AtomicU8,
    /// Whether the wait has no deadline, and so may be counted.
    untimed: bool,
    thread: Thread,
}

impl Waiter {
    /// Wakes the waiter: readies the goroutine or unparks the thread.
    pub(crate) fn wake(self) {
        match self {
            Waiter::Goroutine(g) => ready(g),
            Waiter::Thread(waiter) => {
                // Release pairs with the Acquire loads in `wait`.
                if waiter.state.swap(WOKEN, Ordering::AcqRel) == COUNTED {
                    FOREIGN_BLOCKED.fetch_sub(1, Ordering::SeqCst);
                }
                waiter.thread.unpark();
            }
        }
    }
}

/// Blocks the calling goroutine or thread until the [`Waiter`] handed to
/// `register` is woken. `register` returns `false`, dropping the waiter, if
/// the awaited condition already holds; then `block` returns at once.
///
/// `register` must not block or panic (for a goroutine it runs on another
/// goroutine's stack).
pub(crate) fn block(reason: WaitReason, register: impl FnOnce(Waiter) -> bool) {
    if in_goroutine() {
        park(reason, |g| register(Waiter::Goroutine(g)));
        return;
    }
    let waiter = ThreadWaiter::new(true);
    if register(Waiter::Thread(waiter.clone())) {
        waiter.wait();
    }
}

impl ThreadWaiter {
    /// The calling thread's waiter; an `untimed` one counts itself as
    /// blocked for good once it commits to sleeping (see [`FOREIGN_BLOCKED`]).
    fn new(untimed: bool) -> Arc<ThreadWaiter> {
        Arc::new(ThreadWaiter {
            state: AtomicU8::new(WAITING),
            untimed,
            thread: std::thread::current(),
        })
    }

    /// Counts the thread as blocked, unless it was woken already. Called
    /// after the waiter is published, right before sleeping.
    fn commit(&self) {
        if self.untimed
            && self
                .state
                .compare_exchange(WAITING, COUNTED, Ordering::AcqRel, Ordering::Acquire)
                .is_ok()
        {
            FOREIGN_BLOCKED.fetch_add(1, Ordering::SeqCst);
        }
    }

    fn woken(&self) -> bool {
        self.state.load(Ordering::Acquire) == WOKEN
    }

    /// Blocks until woken.
    pub(crate) fn wait(&self) {
        self.commit();
        while !self.woken() {
            std::thread::park();
        }
    }

    /// Blocks until woken or until `deadline`; returns whether woken. A
    /// timed wait is never counted: it ends by itself.
    pub(crate) fn wait_until(&self, deadline: Instant) -> bool {
        loop {
            if self.woken() {
                return true;
            }
            let now = Instant::now();
            if now >= deadline {
                return false;
            }
            std::thread::park_timeout(deadline - now);
        }
    }
}

/// How the caller of [`prepare_wait`] will wait.
pub(crate) enum WaitHandle {
    /// Park the current goroutine.
    Goroutine,
    /// Block the current thread on this waiter.
    Thread(Arc<ThreadWaiter>),
}

/// The [`Waiter`] for the calling goroutine or thread, to be queued under a
/// lock before calling [`wait_unlocking`] (Go's `gopark` with
/// `chanparkcommit`): it saves locking twice and re-checking.
pub(crate) fn prepare_wait() -> (Waiter, WaitHandle) {
    prepare_wait_for(false)
}

/// [`prepare_wait`] for a wait that may end at a deadline (`timed`), which
/// a thread ends by itself, so it is not counted as blocked for good.
pub(crate) fn prepare_wait_for(timed: bool) -> (Waiter, WaitHandle) {
    // The count keeps us on this M while we read its goroutine.
    let section = super::locks::Section::enter();
    // SAFETY: a non-null current M is this thread's live M.
    if let Some(g) = unsafe { current_m().as_ref() }.and_then(|m| m.curg.get()) {
        return (Waiter::Goroutine(g), WaitHandle::Goroutine);
    }
    drop(section);
    let waiter = ThreadWaiter::new(!timed);
    (Waiter::Thread(waiter.clone()), WaitHandle::Thread(waiter))
}

/// Waits until the waiter queued under `lock` is woken, releasing `lock`
/// only once the goroutine is off its stack (for a thread: before it
/// blocks). Whoever wakes the waiter must take `lock` to dequeue it, so the
/// wake cannot come before the goroutine has parked.
///
/// `lock` is dropped on this OS thread either way (a `MutexGuard` may be
/// passed). Dropping it must not block for long, switch or panic.
pub(crate) fn wait_unlocking<L>(reason: WaitReason, handle: WaitHandle, lock: L) {
    match handle {
        WaitHandle::Goroutine => park(reason, move |_| {
            drop(lock);
            true
        }),
        WaitHandle::Thread(waiter) => {
            drop(lock);
            waiter.wait();
        }
    }
}

//! `goro::preempt`: control over async preemption from user code.
//!
//! sysmon preempts a goroutine that has run for a whole time slice (10 ms)
//! without switching, at almost any instruction (`sched/preempt.rs` has the
//! mechanism and the safe-point rules). A preempted goroutine may resume on
//! another OS thread, so code that relies on the thread — a thread-local
//! read twice, a `RefCell` borrowed from a thread-local, an FFI library with
//! per-thread state — holds a [`disable`] guard for the span that must stay
//! on one thread.
//!
//! `GORO_DEBUG=asyncpreemptoff=1` turns async preemption off for the whole
//! process; blocked-M handoff and `blocking()` keep working.
//!
//! A program whose global allocator is compiled into it (jemalloc, mimalloc)
//! wraps it in [`PreemptOffAllocator`], so that no goroutine is stopped
//! inside it holding that thread's allocator state (`allocator.rs`).

mod allocator;

use std::marker::PhantomData;

pub use allocator::PreemptOffAllocator;

use crate::sched::locks;
use crate::sched::m::{current_m, M};

/// Keeps the current goroutine from being preempted, and so on its OS
/// thread, until dropped. Nests. While held, the goroutine must not switch
/// out — no `yield_now`, channel wait, lock wait, sleep or join — or the
/// process aborts with a message saying so (Go throws likewise): a switch
/// would move it off the thread the guard promised.
///
/// A long computation under the guard delays everything queued behind it on
/// its P, as in a runtime without preemption; keep it short.
#[must_use = "preemption is re-enabled when the guard drops"]
pub struct PreemptGuard {
    m: *const M,
    /// `!Send`: the guard belongs to its thread.
    _thread: PhantomData<*const ()>,
}

/// Disables async preemption of the calling goroutine until the returned
/// guard drops. Outside a goroutine it does nothing harmful (threads are
/// never preempted) and the guard is still required to be dropped on the
/// same thread.
///
/// ```
/// goro_runtime::run(|| {
///     let _pinned = goro_runtime::preempt::disable();
///     let thread = std::thread::current().id();
///     let sum: u64 = (0..1_000u64).sum();
///     assert_eq!(std::thread::current().id(), thread);
///     sum
/// });
/// ```
pub fn disable() -> PreemptGuard {
    locks::acquire();
    let m = current_m();
    // SAFETY: a non-null current M is this thread's live M; the count keeps
    // the goroutine on it.
    if let Some(m) = unsafe { m.as_ref() } {
        m.preempt_off.set(m.preempt_off.get() + 1);
    }
    PreemptGuard {
        m,
        _thread: PhantomData,
    }
}

/// Whether the calling goroutine holds a [`disable`] guard (so it must not
/// switch out).
pub(crate) fn pinned() -> bool {
    // The count keeps us on this M while its field is read.
    let _section = locks::Section::enter();
    // SAFETY: a non-null current M is this thread's live M.
    unsafe { current_m().as_ref() }.is_some_and(|m| m.preempt_off.get() != 0)
}

impl Drop for PreemptGuard {
    fn drop(&mut self) {
        let m = current_m();
        if m != self.m {
            crate::sys::write_stderr(
                b"fatal error: goro: a preempt::disable() guard was dropped on another thread\n",
            );
            crate::sys::abort();
        }
        // SAFETY: as in `disable`: still the same, live M.
        if let Some(m) = unsafe { m.as_ref() } {
            m.preempt_off.set(m.preempt_off.get() - 1);
        }
        locks::release();
    }
}

impl std::fmt::Debug for PreemptGuard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PreemptGuard").finish_non_exhaustive()
    }
}

//! An asymmetric Dekker fence for locks whose release is a plain store.
//!
//! `raw_mutex.rs` releases its lock with a store and then reads its waiter
//! count; a waiter counts itself and then reads the lock word. That is
//! Dekker's pattern, and it needs a StoreLoad barrier on *both* sides: on
//! x86 a store may sit in the store buffer while the following load runs,
//! so without one the unlocker can miss the new waiter while the waiter
//! still sees the lock held, and the waiter sleeps forever.
//!
//! The unlock is the hot side (once per critical section) and the park the
//! cold one (once per sleep), so the barrier is split unevenly, as Linux's
//! `membarrier(2)` man page describes and `sched/sysmon.rs` already does:
//!
//! - [`light`] (the unlocker): a compiler barrier only, so the store and the
//!   load stay in program order in the emitted code; no instruction.
//! - [`heavy`] (the waiter, before it re-reads the lock word):
//!   `membarrier(MEMBARRIER_CMD_PRIVATE_EXPEDITED)`, which makes every
//!   running thread of the process execute a full barrier. Afterwards either
//!   the unlocker's store is visible to the waiter's read, or the unlocker's
//!   read comes after its barrier point and sees the waiter's count.
//!
//! The light side may skip its fence only once the process is registered
//! for expedited membarrier; until then (and for good if registration fails:
//! Linux < 4.14, or a seccomp filter) [`light_ok`] is false and the unlocker
//! uses a locked read-modify-write, a full barrier, instead. Registration
//! (`sys::thread::membarrier_ready`, shared with sysmon's handoff) happens
//! on first need, and [`light_ok`] turns true only in a waiter's [`heavy`],
//! after it, so a waiter never uses the plain fence against an unlocker
//! that skipped its own.
//!
//! Measured here: `membarrier` costs the caller 1–7 µs with another thread of
//! the process running (an IPI to its CPU), 0.3 µs alone; a locked RMW costs
//! ~12 ns uncontended, which is what the unlock saves every time.

use std::sync::atomic::{compiler_fence, fence, AtomicBool, Ordering};

use crate::sys::thread;

/// Set once the process is registered: unlockers may use [`light`].
static LIGHT_OK: AtomicBool = AtomicBool::new(false);

/// Whether the light side may rely on [`heavy`] (and skip its own fence).
#[inline(always)]
pub(crate) fn light_ok() -> bool {
    LIGHT_OK.load(Ordering::Relaxed)
}

/// The unlocker's side: keeps its store and its following load in program
/// order in the generated code. Pairs with [`heavy`].
#[inline(always)]
pub(crate) fn light() {
    compiler_fence(Ordering::SeqCst);
}

/// The waiter's side: a full barrier on every running thread of the process
/// (or, without membarrier, on this one: the unlockers then fence too).
/// Pairs with [`light`].
pub(crate) fn heavy() {
    let registered = {
        // The count keeps a preemption from parking us while other threads
        // wait for the one-time registration inside.
        let _section = crate::sched::locks::Section::enter();
        thread::membarrier_ready()
    };
    if registered && !LIGHT_OK.load(Ordering::Relaxed) {
        LIGHT_OK.store(true, Ordering::SeqCst);
    }
    fence(Ordering::SeqCst);
    if registered && thread::membarrier().is_err() {
        // Registered, yet refused: unlockers already skip their fence, so
        // going on could lose a wakeup.
        super::raw_mutex::fatal("sync: membarrier failed after registration");
    }
}

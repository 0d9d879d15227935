//! The M's "locks" count (Go's `m.locks`): while it is non-zero, the code
//! running on this thread is runtime code, which async preemption must not
//! interrupt and sysmon must not take the P from.
//!
//! # Why a thread-local raised by one instruction
//!
//! A goroutine may move to another M at any instruction it can be preempted
//! at. A count kept in the M struct would be raised by "read the current M,
//! then increment its field": a preemption between the two would move the
//! goroutine, and it would then raise the *old* M's count and go on to use
//! the old M's P. Go avoids this because its runtime code is never
//! async-preempted at all (the compiler marks it). goro cannot mark code, so
//! the count is a thread-local (per M: an M is a thread) raised and lowered by
//! a single `inc`/`dec` on `fs:`-relative memory. A signal lands between
//! instructions, so either the count was raised — the handler sees it and
//! refuses — or it was not and nothing of the runtime's has started. Once it
//! is raised the goroutine cannot move, so the M read afterwards is the right
//! one.
//!
//! The variable is defined in assembly and addressed through the
//! initial-exec TLS model (`@GOTTPOFF`): the first instruction loads the
//! variable's offset from the thread pointer (the same on every thread), the
//! second increments `fs:[offset]`. It is not a `thread_local!`, because LLVM
//! may compute a thread-local's address once and reuse it after a switch
//! (see `m.rs`); here the `fs:` segment is read by the increment itself.
//!
//! # Who holds the count
//!
//! - Every door into the scheduler and every [`crate::util::RawSpinLock`]
//!   critical section raises it for its duration, as does every std mutex
//!   of the runtime that goroutine code takes ([`lock`]).
//! - A switch carries one count from the switcher to the resumer: the G that
//!   switches out raises it, and the context that resumes on the same thread
//!   lowers it (a G, after `finish_switch`; a new G, in `goroutine_entry`).
//!   g0 keeps the count it is resumed with, so scheduler code on g0 always
//!   runs with it raised.
//! - A goroutine therefore runs user code at count 0, and only there can it
//!   be preempted or have its P taken while it blocks in the kernel.
//!
//! Readers: the SIGURG handler reads its own thread's count ([`get`]), and
//! sysmon reads other Ms' counts through the address each M records at start
//! ([`address`]); sysmon orders that read after its own write with
//! `membarrier` (see `sysmon.rs`).

use std::arch::{asm, global_asm};
use std::ops::{Deref, DerefMut};
use std::sync::atomic::AtomicU32;
use std::sync::{Mutex, MutexGuard};

// The count itself: four bytes of zero-initialised TLS, hidden so that it
// never clashes with another copy of this crate's symbol.
global_asm!(
    ".pushsection .tbss,\"awT\",@nobits",
    ".p2align 2",
    ".globl goro_runtime_m_locks_v0",
    ".hidden goro_runtime_m_locks_v0",
    ".type goro_runtime_m_locks_v0,@object",
    ".size goro_runtime_m_locks_v0,4",
    "goro_runtime_m_locks_v0:",
    ".zero 4",
    ".popsection",
);

/// Raises this thread's count (one `inc` on `fs:` memory; see module doc).
/// Also a compiler barrier: nothing after it moves before it.
#[inline(always)]
pub(crate) fn acquire() {
    // SAFETY: reads the variable's TLS offset from the GOT and increments
    // this thread's copy; touches no other memory.
    unsafe {
        asm!(
            "mov {offset}, qword ptr [rip + goro_runtime_m_locks_v0@GOTTPOFF]",
            "inc dword ptr fs:[{offset}]",
            offset = out(reg) _,
            options(nostack),
        );
    }
}

/// Lowers this thread's count (one `dec`). Also a compiler barrier: nothing
/// before it moves after it.
#[inline(always)]
pub(crate) fn release() {
    // SAFETY: as in `acquire`.
    unsafe {
        asm!(
            "mov {offset}, qword ptr [rip + goro_runtime_m_locks_v0@GOTTPOFF]",
            "dec dword ptr fs:[{offset}]",
            offset = out(reg) _,
            options(nostack),
        );
    }
}

/// This thread's count. Async-signal-safe.
#[inline(always)]
pub(crate) fn get() -> u32 {
    let value: u32;
    // SAFETY: reads this thread's copy of the variable.
    unsafe {
        asm!(
            "mov {offset}, qword ptr [rip + goro_runtime_m_locks_v0@GOTTPOFF]",
            "mov {value:e}, dword ptr fs:[{offset}]",
            offset = out(reg) _,
            value = out(reg) value,
            options(nostack, readonly, preserves_flags),
        );
    }
    value
}

/// The address of this thread's count, for other threads to read.
pub(crate) fn address() -> *const AtomicU32 {
    let address: usize;
    // SAFETY: `fs:[0]` holds the thread pointer itself (the TCB's self
    // pointer, x86_64 TLS ABI); adding the variable's offset gives its
    // address in this thread's static TLS block.
    unsafe {
        asm!(
            "mov {address}, qword ptr [rip + goro_runtime_m_locks_v0@GOTTPOFF]",
            "add {address}, qword ptr fs:[0]",
            address = out(reg) address,
            options(nostack, readonly),
        );
    }
    address as *const AtomicU32
}

/// Holds the count raised for a scope (a door that does not switch).
pub(crate) struct Section(());

impl Section {
    #[inline(always)]
    pub(crate) fn enter() -> Section {
        acquire();
        Section(())
    }
}

impl Drop for Section {
    #[inline(always)]
    fn drop(&mut self) {
        release();
    }
}

/// A std `MutexGuard` taken with the count raised, which stays raised until
/// the guard drops: for the runtime's std mutexes that goroutine code takes
/// too, not only g0 (HACKING.md, lock order rule 9, lists them). A goroutine
/// preempted while holding one would leave it held, and the next M to
/// enter the scheduler would block on it for good: `stats()` called in a
/// loop on two Ps did that with the sched lock (`Idle::snapshot`).
pub(crate) struct SectionGuard<'a, T> {
    // Declared first, so dropped (unlocked) before the count falls.
    guard: MutexGuard<'a, T>,
    _section: Section,
}

/// Locks `mutex` inside a [`Section`] (a poisoned lock is taken as is: the
/// runtime's invariants do not depend on a panicking holder).
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> SectionGuard<'_, T> {
    let section = Section::enter();
    SectionGuard {
        guard: mutex.lock().unwrap_or_else(|e| e.into_inner()),
        _section: section,
    }
}

impl<T> Deref for SectionGuard<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.guard
    }
}

impl<T> DerefMut for SectionGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        &mut self.guard
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::Ordering;

    #[test]
    fn the_count_is_per_thread_and_readable_through_its_address() {
        let base = get();
        acquire();
        acquire();
        assert_eq!(get(), base + 2);
        // SAFETY: the address of this thread's live TLS variable.
        let shared = unsafe { &*address() };
        assert_eq!(shared.load(Ordering::Relaxed), base + 2);
        std::thread::spawn(|| assert_eq!(get(), 0)).join().unwrap();
        release();
        release();
        assert_eq!(get(), base);
    }
}

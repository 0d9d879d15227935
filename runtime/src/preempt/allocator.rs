//! [`PreemptOffAllocator`]: a global allocator that async preemption never
//! interrupts (DESIGN §3, "allocator wrappers raise the preempt-off count").
//!
//! # Why
//!
//! An allocator keeps per-thread state: glibc's tcache, jemalloc's and
//! mimalloc's thread caches and heaps, reached through a thread-local, with
//! no lock, on the assumption that the code using them stays on its thread.
//! A goroutine preempted halfway through `malloc` breaks it: it may resume on
//! another M and finish the operation on the old thread's cache while a
//! goroutine on the old thread uses the same cache, or it may park holding an
//! arena lock that the next goroutine on its M then waits for.
//!
//! The SIGURG handler already refuses to stop a goroutine whose instruction
//! pointer lies outside the program's own executable segment, and that
//! covers glibc's `malloc`, the default behind `std::alloc::System`
//! (`sched/preempt.rs`, safe-point rule 4). It cannot cover an allocator
//! compiled into the program, as the `tikv-jemallocator` and `mimalloc`
//! crates are: their code is the program's own. Wrapping such an allocator
//! in [`PreemptOffAllocator`] closes that gap.
//!
//! # How
//!
//! Each call raises the thread's "locks" count (`sched/locks.rs`, Go's
//! `m.locks`) around the inner allocator's call, so the handler sees a
//! non-zero count and declines; sysmon asks again on a later tick. That
//! count is a thread-local raised by one `inc` on `fs:` memory, so the
//! wrapper costs two instructions per call, allocates nothing itself, and
//! works the same on threads that are not Ms. While it is raised sysmon also
//! leaves the M's P alone, as it does for the runtime's own code, so a
//! system call inside the allocator (`mmap`, `madvise`) keeps its P.
//!
//! Rejected: bumping the M's `preempt_off` counter, as `preempt::disable()`
//! does. Reaching it means reading the current M and then writing its
//! field; a preemption between the two would move the goroutine, which
//! would then raise the old M's counter (`locks.rs` has the full argument).
//!
//! Measured by `benches/alloc.rs` (a 64-byte `alloc` plus `dealloc` through
//! `System`, criterion medians of three runs, alternating): bare 18.5, 15.2
//! and 15.2 ns, wrapped 17.0, 16.5 and 13.7 ns. The two `fs:` increments
//! are lost in the run-to-run noise of about 2 ns.
//!
//! The test that the wrapper holds (`tests/preempt.rs`): on one P with 1 ms
//! slices, a goroutine allocates in a loop through an allocator that spins
//! in the program's own code, while a witness goroutine notes every
//! preemption. Bare, 11–13 of 20 preemptions landed inside the allocator;
//! wrapped, none of 20, and with the wrapper's count removed the test fails.

use std::alloc::{GlobalAlloc, Layout};

use crate::sched::locks::Section;

/// Wraps a global allocator so that async preemption never stops a
/// goroutine inside it. Use it when the program's global allocator is
/// compiled into the program (jemalloc, mimalloc, your own); the default
/// `System` allocator needs no wrapper (see the module doc).
///
/// ```
/// use std::alloc::System;
/// use goro_runtime::preempt::PreemptOffAllocator;
///
/// // In a real program, the inner allocator would be e.g.
/// // `tikv_jemallocator::Jemalloc` or `mimalloc::MiMalloc`.
/// #[global_allocator]
/// static GLOBAL: PreemptOffAllocator<System> = PreemptOffAllocator::new(System);
///
/// let words: Vec<String> = goro_runtime::run(|| {
///     let handles: Vec<_> = (0..4)
///         .map(|i| goro_runtime::go(move || format!("goroutine {i}")))
///         .collect();
///     handles.into_iter().map(|h| h.join().unwrap()).collect()
/// });
/// assert_eq!(words[3], "goroutine 3");
/// ```
#[derive(Debug, Default, Clone, Copy)]
pub struct PreemptOffAllocator<A> {
    inner: A,
}

impl<A> PreemptOffAllocator<A> {
    /// Wraps `inner`. A `const fn`, for a `#[global_allocator]` static.
    pub const fn new(inner: A) -> PreemptOffAllocator<A> {
        PreemptOffAllocator { inner }
    }

    /// The wrapped allocator.
    pub const fn inner(&self) -> &A {
        &self.inner
    }
}

// SAFETY: every method forwards to the inner allocator with the caller's
// arguments unchanged and returns its result unchanged; raising and lowering
// the thread's count touches no memory the allocator hands out. So the
// wrapper keeps every promise the inner `GlobalAlloc` makes.
unsafe impl<A: GlobalAlloc> GlobalAlloc for PreemptOffAllocator<A> {
    #[inline]
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let _locks = Section::enter();
        // SAFETY: the caller upholds `GlobalAlloc::alloc`'s contract for
        // `layout`; it is passed on unchanged.
        unsafe { self.inner.alloc(layout) }
    }

    #[inline]
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        let _locks = Section::enter();
        // SAFETY: as in `alloc`.
        unsafe { self.inner.alloc_zeroed(layout) }
    }

    #[inline]
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        let _locks = Section::enter();
        // SAFETY: the caller guarantees `ptr` came from this allocator (and
        // so from `inner`) with `layout`.
        unsafe { self.inner.dealloc(ptr, layout) }
    }

    #[inline]
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let _locks = Section::enter();
        // SAFETY: as in `dealloc`, and the caller's `new_size` contract is
        // passed on unchanged.
        unsafe { self.inner.realloc(ptr, layout, new_size) }
    }
}

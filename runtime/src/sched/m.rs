//! The worker thread (M): its identity, its thread-local pointer, and its
//! main function.
//!
//! # The current M, and why it is read through a non-inlined accessor
//!
//! A goroutine may resume on a different M after any switch. LLVM is allowed
//! to compute the address of a thread-local once and reuse it for the rest of
//! a function (it hoists `llvm.threadlocal.address`), which would leave a
//! migrated goroutine reading the *previous* thread's M. The runtime therefore
//! reads the current M only through [`current_m`], which is `#[inline(never)]`:
//! each call computes the TLS address afresh on the calling thread, and calls
//! cannot be merged across a switch because the switch's `asm!` clobbers all
//! memory. Code that switches re-reads `current_m()` after the switch and
//! never uses an `&M` obtained before it. `tests/migration.rs` checks this in
//! release mode.
//!
//! The thread-local is `const`-initialised and has no destructor, so reading
//! it never allocates or registers anything: the SIGSEGV handler may read it.

use std::cell::{Cell, UnsafeCell};
use std::io;
use std::ptr;
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicPtr, AtomicU32, Ordering};

use super::g::GRef;
use super::p::P;
use super::shared::Shared;
use crate::sys;

/// Size of each M's alternate signal stack: the SIGSEGV report needs a few
/// KiB and the kernel's AVX-512 signal frame about 3 KiB.
const ALT_STACK_SIZE: usize = 64 * 1024;

/// Size of an M's own thread stack (g0), where the schedule loop runs.
const G0_STACK_SIZE: usize = 256 * 1024;

thread_local! {
    static CURRENT_M: Cell<*const M> = const { Cell::new(ptr::null()) };
}

/// The M running on the calling thread, or null on a foreign thread.
/// See the module doc for why this must never be inlined.
#[inline(never)]
pub(crate) fn current_m() -> *const M {
    CURRENT_M.with(Cell::get)
}

/// What the G that just switched out asked to have done once it is off its
/// stack. Executed by `schedule::finish_switch` on the stack switched to, for
/// the G in `M::pending_g`.
///
/// A one-byte action plus separate cells, rather than an enum carrying the G
/// and the closure: copying a 32-byte enum through memory right after
/// writing it field by field stalled store-to-load forwarding on every yield
/// (measured: 16% of `yield_switch_1p`'s samples).
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Pending {
    None,
    /// Re-queue at the tail of the local run queue.
    Yield,
    /// Mark Waiting and call `M::park_unlock` (which lives on the parked G's
    /// stack and stays valid while it is parked).
    Park,
    /// Recycle the dead G.
    Exit,
    /// Async preemption: re-queue on the global queue (`preempt.rs`).
    Preempted,
}

/// A park's unlock closure, lifetime erased (see `schedule::park`).
pub(crate) type Unlock = *mut (dyn FnMut(GRef) -> bool + 'static);

/// An OS thread that runs goroutines while it holds a P.
pub(crate) struct M {
    pub id: usize,
    /// The runtime; outlives the M (Ms are joined before `Shared` drops, and a
    /// runtime with an unjoined M is leaked).
    pub shared: *const Shared,
    /// Saved stack pointer of this thread's own stack (Go's g0) while a
    /// goroutine runs.
    pub g0_sp: UnsafeCell<usize>,
    pub curg: Cell<Option<GRef>>,
    pub p: Cell<*const P>,
    pub pending: Cell<Pending>,
    /// The G that left `pending`.
    pub pending_g: Cell<Option<GRef>>,
    /// The unlock closure of a `Pending::Park`.
    pub park_unlock: Cell<Option<Unlock>>,
    pub spinning: Cell<bool>,
    rng: Cell<u64>,
    /// Handoff from a waker: the P to run with (null: exit) and whether to
    /// start spinning. Written before `wake_word`'s Release store.
    pub next_p: AtomicPtr<P>,
    pub next_spinning: AtomicBool,
    /// Futex word: 1 when woken.
    pub wake_word: AtomicU32,
    pub exited: AtomicBool,
    /// This thread's "locks" count (`locks.rs`), for sysmon to read; set by
    /// the thread itself at start.
    pub locks: AtomicPtr<AtomicU32>,
    /// The kernel thread id, for `tgkill`; set at start.
    pub tid: AtomicI32,
    /// The clock of this thread's CPU time, for sysmon; set at start.
    pub cpu_clock: AtomicI32,
    /// A preemption signal is on its way (dedupes SIGURG per M).
    pub preempt_requested: AtomicBool,
    /// The G inside `blocking()`, with `curg` cleared meanwhile.
    pub blocking_g: Cell<Option<GRef>>,
    /// The P this M left in `Syscall` state on entering `blocking()`.
    pub syscall_p: Cell<*const P>,
    /// Depth of `goro::preempt::disable()` guards on this M's goroutine.
    pub preempt_off: Cell<u32>,
    /// sysmon took this M's P while it sat in the kernel, and the M has not
    /// been back to the scheduler since: its goroutine runs without a P.
    pub orphaned: AtomicBool,
}

// SAFETY: the Cell/UnsafeCell fields are used only by the M's own thread; the
// fields other threads use (next_p, next_spinning, wake_word, exited) are atomic.
unsafe impl Sync for M {}
// SAFETY: as above.
unsafe impl Send for M {}

impl M {
    fn new(id: usize, shared: &Shared) -> M {
        M {
            id,
            shared,
            g0_sp: UnsafeCell::new(0),
            curg: Cell::new(None),
            p: Cell::new(ptr::null()),
            pending: Cell::new(Pending::None),
            pending_g: Cell::new(None),
            park_unlock: Cell::new(None),
            spinning: Cell::new(false),
            rng: Cell::new(
                0x9E37_79B9_7F4A_7C15 ^ (id as u64).wrapping_mul(0xBF58_476D_1CE4_E5B9) | 1,
            ),
            next_p: AtomicPtr::new(ptr::null_mut()),
            next_spinning: AtomicBool::new(false),
            wake_word: AtomicU32::new(0),
            exited: AtomicBool::new(false),
            locks: AtomicPtr::new(ptr::null_mut()),
            tid: AtomicI32::new(0),
            cpu_clock: AtomicI32::new(-1),
            preempt_requested: AtomicBool::new(false),
            blocking_g: Cell::new(None),
            syscall_p: Cell::new(ptr::null()),
            preempt_off: Cell::new(0),
            orphaned: AtomicBool::new(false),
        }
    }

    /// This M's identity in `P::owner`.
    pub(crate) fn owner_tag(&self) -> usize {
        self as *const M as usize
    }

    /// Takes `p` (from the idle list, a waker or a system call's exit).
    pub(crate) fn install_p(&self, p: *const P) {
        if let Some(p) = (!p.is_null()).then(|| {
            // SAFETY: non-null P pointers point into `Shared::ps`.
            unsafe { &*p }
        }) {
            p.owner.store(self.owner_tag(), Ordering::Release);
            self.orphaned.store(false, Ordering::Relaxed);
        }
        self.p.set(p);
    }

    /// The P this M holds, checked: `None` if it has none, or if sysmon took
    /// it while the M was blocked in the kernel (then the M tries for an
    /// idle P before giving up). A door calls this with the "locks" count
    /// raised, which keeps sysmon from taking the P until the count drops.
    #[inline]
    pub(crate) fn own_p(&self) -> Option<&P> {
        let p = self.p.get();
        if p.is_null() {
            return None;
        }
        // SAFETY: non-null P pointers point into `Shared::ps`.
        let p = unsafe { &*p };
        if p.owner.load(Ordering::Acquire) == self.owner_tag() {
            return Some(p);
        }
        self.lost_p(p)
    }

    #[cold]
    fn lost_p<'a>(&'a self, p: &'a P) -> Option<&'a P> {
        loop {
            match p.owner.load(Ordering::Acquire) {
                // sysmon is deciding (it saw our count at 0 an instant ago);
                // it settles within a `membarrier`.
                owner if owner == super::p::RETAKING => std::hint::spin_loop(),
                owner if owner == self.owner_tag() => return Some(p),
                _ => break,
            }
        }
        self.p.set(ptr::null());
        let shared = self.shared();
        let p = shared.idle.take_p(shared)?;
        self.install_p(p);
        Some(p)
    }

    pub(crate) fn shared(&self) -> &Shared {
        // SAFETY: the Shared outlives its Ms (field doc).
        unsafe { &*self.shared }
    }

    /// The P this M holds.
    ///
    /// # Panics
    /// Debug builds check that the M holds one.
    pub(crate) fn p(&self) -> &P {
        let p = self.p.get();
        debug_assert!(!p.is_null(), "goro: M{} has no P", self.id);
        // SAFETY: non-null `p` points into `Shared::ps`, which lives as long
        // as the Shared.
        unsafe { &*p }
    }

    /// xorshift64: victim order for stealing.
    pub(crate) fn random(&self) -> u64 {
        let mut x = self.rng.get();
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.rng.set(x);
        x
    }
}

/// A raw M pointer that can sit in the idle list and cross threads.
#[derive(Clone, Copy)]
pub(crate) struct MPtr(pub *const M);
// SAFETY: M is Sync (above); the pointer is only dereferenced while the M lives.
unsafe impl Send for MPtr {}

/// Starts a new M thread that begins with `p`.
pub(crate) fn start_thread(
    shared: &Shared,
    id: usize,
    p: *const P,
    spinning: bool,
) -> io::Result<(MPtr, std::thread::JoinHandle<()>)> {
    let m = Box::into_raw(Box::new(M::new(id, shared)));
    // SAFETY: just allocated, not yet shared.
    unsafe {
        (*m).next_p.store(p.cast_mut(), Ordering::Relaxed);
        (*m).next_spinning.store(spinning, Ordering::Relaxed);
    }
    let handoff = MPtr(m);
    let spawned = std::thread::Builder::new()
        .name(format!("goro-m{id}"))
        .stack_size(G0_STACK_SIZE)
        .spawn(move || {
            let handoff = handoff;
            m_main(handoff)
        });
    match spawned {
        Ok(handle) => Ok((MPtr(m), handle)),
        Err(error) => {
            // SAFETY: the thread never started, so we still own the box.
            drop(unsafe { Box::from_raw(m) });
            Err(error)
        }
    }
}

fn m_main(m: MPtr) {
    // SAFETY: the M box lives until its thread is joined (runtime.rs).
    let m = unsafe { &*m.0 };
    let alt_stack = sys::signal::AltStack::install(ALT_STACK_SIZE);
    if let Err(error) = &alt_stack {
        tracing::warn!(%error, m = m.id, "no alternate signal stack: stack overflow reports disabled");
    }
    CURRENT_M.with(|c| c.set(m));
    m.locks
        .store(super::locks::address().cast_mut(), Ordering::Release);
    m.tid.store(sys::gettid(), Ordering::Release);
    m.cpu_clock.store(
        sys::thread::thread_cpu_clock().unwrap_or(-1),
        Ordering::Release,
    );
    super::preempt::prepare_thread();
    m.install_p(m.next_p.swap(ptr::null_mut(), Ordering::Acquire));
    m.spinning.set(m.next_spinning.load(Ordering::Relaxed));
    tracing::trace!(m = m.id, "M start");
    super::schedule::schedule_loop(m);
    if let Some(p) = m.own_p() {
        m.shared().idle.release_p_at_exit(p);
        m.p.set(ptr::null());
    }
    CURRENT_M.with(|c| c.set(ptr::null()));
    drop(alt_stack);
    tracing::trace!(m = m.id, "M exit");
    m.exited.store(true, Ordering::Release);
}

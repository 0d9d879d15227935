//! A spin lock that a thread which keeps taking it alone comes to own
//! ("biased locking"): the owner then takes and releases it with plain
//! loads and stores, no locked instruction. Used for channels
//! (`chan/queue.rs`), whose every operation is one critical section.
//!
//! # Why
//!
//! A locked read-modify-write costs about 12 ns on this VM (a `lock
//! cmpxchg` + release store pair measured 11.9–12.8 ns in a tight loop,
//! against 2.9 ns for a plain increment). `buffered_128/1p` spends two
//! critical sections per value (the send's and the receive's); before this
//! lock the `lock cmpxchg` of [`RawSpinLock`] took two thirds of each
//! operation's samples (`perf annotate`), so about 20 of the ~27 ns per
//! value. On one P every operation on such a channel comes from one thread,
//! and nothing but the lock's cost is left to save.
//!
//! # Protocol
//!
//! The lock is a [`RawSpinLock`] (the *shared lock*) plus two words:
//! - `bias`: `NONE`, `REVOKED`, or the owner thread's identity (the address
//!   of its `sched::locks` count, unique among live threads);
//! - `busy`: the owner's identity while it holds the lock through the bias,
//!   else 0. Only the owner writes it.
//!
//! 1. **Unbiased.** Everyone takes the shared lock. Under it the lock counts
//!    consecutive acquisitions by one thread; after [`BIAS_AFTER`] of them
//!    in a row, once the process is registered for `membarrier`
//!    (`sys::thread::membarrier_registered`), it stores that thread into
//!    `bias`.
//! 2. **Biased, owner side.** The owner stores itself into `busy`, then
//!    reads `bias` again; if it still names the owner, the owner holds the
//!    lock. Release is `busy = 0` (Release). Between the store and the load
//!    there is only a compiler fence.
//! 3. **Biased, anyone else** takes the shared lock, stores `REVOKED` into
//!    `bias`, runs `membarrier(PRIVATE_EXPEDITED)`, and waits until `busy`
//!    is 0. It then holds the lock, and the lock stays unbiased for good.
//!
//! Why 2 and 3 exclude each other: this is Dekker's pattern (owner: store
//! `busy`, load `bias`; revoker: store `bias`, load `busy`), which needs a
//! StoreLoad barrier on both sides. The owner's side has none (x86 may let
//! its load pass its store), the revoker's is `membarrier`, which makes
//! every running thread of the process execute a full barrier, as in
//! `sync/fence.rs` and `sched/sysmon.rs`. Where the owner's barrier point
//! falls decides the case: before its load of `bias`, the load sees
//! `REVOKED` and the owner drops `busy` and takes the shared lock instead;
//! after its store of `busy`, the store is visible to the revoker, which
//! waits for the release. (A thread not running has passed a context
//! switch, a full barrier, and its stores are visible.) The owner's
//! critical-section writes reach the revoker through the Release/Acquire
//! pair on `busy`; the revoker's reach the former owner through the shared
//! lock, which is all it uses from then on. Owner and shared-lock holders
//! before the bias are ordered by the shared lock, which the owner itself
//! held when the bias was set.
//!
//! A guard remembers which way it took the lock; a raw release (`select!`)
//! tells the two ways apart by `busy == me`: only the owner, and
//! only while it holds the lock through the bias, sets `busy` to itself,
//! and a thread never holds one lock twice. The release must run on the
//! thread that took the lock — the runtime's count (`sched::locks`), raised
//! for the whole critical section as for [`RawSpinLock`], keeps a goroutine
//! on its thread, and `sched::wait_unlocking` releases on the same thread.
//!
//! Lock order (`select!` takes several channel locks by address) is kept:
//! an owner holding through the bias counts as holding, and a revoker waits
//! for it only while holding locks ordered before this one.
//!
//! # Costs, and why the bias is never given back
//!
//! The owner's acquire + release is about ten plain instructions. A
//! revocation costs the revoker one `membarrier` (0.4–7 µs here), once per
//! lock: re-biasing would let two threads that alternate in runs (a
//! producer filling a buffer of 128 while its consumer is parked, then the
//! consumer on another P draining it) revoke on every run. [`BIAS_AFTER`]
//! keeps short-lived channels shared between threads (a reply channel per
//! request) from ever biasing. Unbiased, the lock costs what
//! [`RawSpinLock`] does plus a few plain instructions.
//!
//! Without `membarrier` (Linux < 4.14, seccomp) or before the process is
//! registered (the diagnostics thread registers it at start, `diag/mod.rs`)
//! no lock biases, and every lock is a plain [`RawSpinLock`].

use std::cell::UnsafeCell;
use std::ops::{Deref, DerefMut};
use std::sync::atomic::{compiler_fence, AtomicUsize, Ordering};

use super::RawSpinLock;
use crate::sched::locks;
use crate::sys::thread;

/// Consecutive acquisitions by one thread before the lock biases to it.
const BIAS_AFTER: u32 = 64;

/// `bias`: not biased yet.
const NONE: usize = 0;
/// `bias`: revoked, for good.
const REVOKED: usize = 1;

/// Spins of a revoker waiting for the owner's release before it yields.
const SPINS_BEFORE_YIELD: u32 = 64;

/// This thread's identity: the address of its `sched::locks` count, read
/// afresh from `fs:` (never a cached thread-local address), which is what a
/// goroutine that may have migrated needs. Never `NONE` or `REVOKED`.
#[inline(always)]
fn me() -> usize {
    locks::address() as usize
}

/// The lock words alone (see [`BiasedLock`]), for `select!`, which holds
/// several at once without guards.
pub(crate) struct RawBiasedLock {
    shared: RawSpinLock,
    bias: AtomicUsize,
    busy: AtomicUsize,
    /// Under `shared`: the thread that took it last, and how many times in
    /// a row before this one.
    streak: UnsafeCell<(usize, u32)>,
}

impl RawBiasedLock {
    const fn new() -> RawBiasedLock {
        RawBiasedLock {
            shared: RawSpinLock::new(),
            bias: AtomicUsize::new(NONE),
            busy: AtomicUsize::new(0),
            streak: UnsafeCell::new((NONE, 0)),
        }
    }

    /// Takes the lock: through the bias if this thread owns it, else through
    /// the shared lock (module doc).
    #[inline(always)]
    pub(crate) fn lock(&self) {
        self.lock_how();
    }

    /// [`Self::lock`], telling how: `true` through the bias, for
    /// [`Self::unlock_as`].
    #[inline(always)]
    fn lock_how(&self) -> bool {
        locks::acquire();
        let me = me();
        if self.bias.load(Ordering::Relaxed) == me {
            self.busy.store(me, Ordering::Relaxed);
            // The light side of the Dekker pair: keeps the store above
            // before the load below in the emitted code (module doc).
            compiler_fence(Ordering::SeqCst);
            if self.bias.load(Ordering::Relaxed) == me {
                return true;
            }
            // Revoked meanwhile: the revoker waits for this.
            self.busy.store(0, Ordering::Release);
        }
        self.shared.lock_uncounted();
        let bias = self.bias.load(Ordering::Relaxed);
        if bias != REVOKED {
            self.unbiased(me, bias);
        }
        false
    }

    /// Under the shared lock, while not revoked: count the streak and bias,
    /// or revoke another thread's bias.
    #[inline(never)]
    fn unbiased(&self, me: usize, bias: usize) {
        if bias == NONE {
            // SAFETY: `streak` is only touched under the shared lock, which
            // we hold.
            let streak = unsafe { &mut *self.streak.get() };
            if streak.0 != me {
                *streak = (me, 0);
            } else if streak.1 < BIAS_AFTER {
                streak.1 += 1;
            } else if thread::membarrier_registered() {
                // Visible to this thread at once, to others through the
                // shared lock's release.
                self.bias.store(me, Ordering::Relaxed);
            }
        } else if bias != me {
            self.revoke();
        }
    }

    /// Under the shared lock: ends another thread's bias and waits until it
    /// no longer holds the lock through it.
    #[cold]
    #[inline(never)]
    fn revoke(&self) {
        self.bias.store(REVOKED, Ordering::SeqCst);
        // The heavy side of the Dekker pair (module doc). The bias was only
        // set once registered, so a failure here would lose exclusion.
        if thread::membarrier().is_err() {
            let message = b"fatal error: goro: membarrier failed after registration\n";
            crate::sys::write_stderr(message);
            std::process::abort();
        }
        let mut spins = 0u32;
        while self.busy.load(Ordering::Acquire) != 0 {
            if spins < SPINS_BEFORE_YIELD {
                spins += 1;
                std::hint::spin_loop();
            } else {
                std::thread::yield_now();
            }
        }
    }

    /// Releases the lock, the way it was taken.
    ///
    /// # Safety
    /// The calling thread holds the lock (took it with [`Self::lock`], on
    /// this thread).
    #[inline(always)]
    pub(crate) unsafe fn unlock(&self) {
        // SAFETY: the caller holds the lock, on this thread (above), and
        // `busy` names this thread exactly when it holds it through the
        // bias (module doc).
        unsafe { self.unlock_as(self.busy.load(Ordering::Relaxed) == me()) };
    }

    /// Releases the lock, taken the way `biased` says.
    ///
    /// # Safety
    /// The calling thread holds the lock; `biased` is what
    /// [`Self::lock_how`] returned when it took it.
    #[inline(always)]
    unsafe fn unlock_as(&self, biased: bool) {
        if biased {
            self.busy.store(0, Ordering::Release);
        } else {
            // SAFETY: we hold the lock, not through the bias: through the
            // shared lock.
            unsafe { self.shared.unlock_uncounted() };
        }
        locks::release();
    }

    /// Whether the lock is biased to some thread (tests).
    #[cfg(test)]
    pub(crate) fn is_biased(&self) -> bool {
        self.bias.load(Ordering::Relaxed) > REVOKED
    }
}

/// A value behind a [`RawBiasedLock`].
pub(crate) struct BiasedLock<T> {
    raw: RawBiasedLock,
    value: UnsafeCell<T>,
}

// SAFETY: the lock hands out access to `value` (and its own `streak`) to one
// holder at a time, with Acquire/Release edges between holders (module doc),
// so sharing it needs only `T: Send`.
unsafe impl<T: Send> Sync for BiasedLock<T> {}
// SAFETY: as above.
unsafe impl<T: Send> Send for BiasedLock<T> {}

impl<T> BiasedLock<T> {
    pub(crate) const fn new(value: T) -> BiasedLock<T> {
        BiasedLock {
            raw: RawBiasedLock::new(),
            value: UnsafeCell::new(value),
        }
    }

    #[inline]
    pub(crate) fn lock(&self) -> BiasedLockGuard<'_, T> {
        let biased = self.raw.lock_how();
        BiasedLockGuard { lock: self, biased }
    }

    /// The lock words, for `select!`'s multi-channel locking.
    pub(crate) fn raw(&self) -> &RawBiasedLock {
        &self.raw
    }

    /// The value, without a guard.
    ///
    /// # Safety
    /// The caller holds the lock through [`BiasedLock::raw`], and no guard
    /// or other reference to the value is alive.
    #[allow(clippy::mut_from_ref)]
    pub(crate) unsafe fn value_unguarded(&self) -> &mut T {
        // SAFETY: the caller holds the lock exclusively (above).
        unsafe { &mut *self.value.get() }
    }
}

/// Access to a [`BiasedLock`]'s value; unlocks on drop, which must happen
/// on the thread that locked (it does: the count keeps a goroutine there,
/// and `sched::wait_unlocking` drops it on the same thread).
pub(crate) struct BiasedLockGuard<'a, T> {
    lock: &'a BiasedLock<T>,
    /// Taken through the bias (saves the release reading `busy`).
    biased: bool,
}

impl<T> Deref for BiasedLockGuard<'_, T> {
    type Target = T;
    #[inline]
    fn deref(&self) -> &T {
        // SAFETY: the guard proves we hold the lock.
        unsafe { &*self.lock.value.get() }
    }
}

impl<T> DerefMut for BiasedLockGuard<'_, T> {
    #[inline]
    fn deref_mut(&mut self) -> &mut T {
        // SAFETY: the guard proves we hold the lock, exclusively.
        unsafe { &mut *self.lock.value.get() }
    }
}

impl<T> Drop for BiasedLockGuard<'_, T> {
    #[inline]
    fn drop(&mut self) {
        // SAFETY: the guard proves we hold the lock, taken on this thread.
        unsafe { self.lock.raw.unlock_as(self.biased) };
    }
}

#[cfg(test)]
mod tests {
    use super::{BiasedLock, BIAS_AFTER};
    use std::sync::Arc;

    fn register() {
        assert!(
            crate::sys::thread::membarrier_ready(),
            "these tests need membarrier"
        );
    }

    #[test]
    fn biases_to_a_lone_thread_and_revokes_for_another() {
        register();
        let lock = Arc::new(BiasedLock::new(0u64));
        for _ in 0..=BIAS_AFTER + 1 {
            *lock.lock() += 1;
        }
        assert!(lock.raw().is_biased());
        let other = lock.clone();
        std::thread::spawn(move || *other.lock() += 1)
            .join()
            .unwrap();
        assert!(!lock.raw().is_biased());
        *lock.lock() += 1;
        assert_eq!(*lock.lock(), u64::from(BIAS_AFTER) + 4);
    }

    #[test]
    fn excludes_across_threads_through_a_revocation() {
        register();
        for _ in 0..20 {
            let lock = Arc::new(BiasedLock::new(0u64));
            // Bias it to this thread, then race it against three others.
            for _ in 0..=BIAS_AFTER + 1 {
                *lock.lock() += 1;
            }
            let base = *lock.lock();
            let threads: Vec<_> = (0..3)
                .map(|_| {
                    let lock = lock.clone();
                    std::thread::spawn(move || {
                        for _ in 0..20_000 {
                            *lock.lock() += 1;
                        }
                    })
                })
                .collect();
            for _ in 0..20_000 {
                *lock.lock() += 1;
            }
            for thread in threads {
                thread.join().unwrap();
            }
            assert_eq!(*lock.lock(), base + 80_000);
        }
    }
}

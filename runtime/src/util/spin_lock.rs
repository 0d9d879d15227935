//! A test-and-test-and-set spin lock for the runtime's tiny critical sections
//! (wait queues, timer heaps; a channel's lock, `biased_lock.rs`, is built on
//! its lock word).
//!
//! Why not `std::sync::Mutex`: its unlock is an atomic swap (to learn
//! whether a sleeper needs a futex wake), so every critical section costs two
//! locked instructions. Here unlock is a plain release store. On the
//! unbuffered ping-pong benchmark each round trip takes five channel
//! critical sections, and locked instructions were nearly all of its profile.
//!
//! When it is right: the holder never blocks, never switches goroutines and
//! runs for a few dozen instructions. The one exception is a channel handing
//! its guard to `sched::wait_unlocking`, which releases it right after the
//! switch, on the same thread. A waiter spins with `spin_loop` and, after a
//! short while, yields its thread, so a holder preempted by the OS (a foreign
//! thread, say) costs the waiter time slices, not a livelock.
//!
//! Holding the lock raises the M's "locks" count (`sched/locks.rs`), taken
//! before the first attempt and dropped after the release: a holder is never
//! async-preempted, so a waiter on the same P cannot spin behind a holder
//! that sits in a run queue.

use std::cell::UnsafeCell;
use std::ops::{Deref, DerefMut};
use std::sync::atomic::{AtomicBool, Ordering};

use crate::sched::locks;

/// Spins before a waiter starts yielding its thread.
const SPINS_BEFORE_YIELD: u32 = 64;

pub(crate) struct SpinLock<T> {
    locked: RawSpinLock,
    value: UnsafeCell<T>,
}

/// The lock word alone: [`SpinLock`]'s, and the shared lock inside a
/// channel's `BiasedLock`.
pub(crate) struct RawSpinLock(AtomicBool);

impl RawSpinLock {
    pub(super) const fn new() -> RawSpinLock {
        RawSpinLock(AtomicBool::new(false))
    }
}

impl RawSpinLock {
    /// Takes the lock, spinning (then yielding) while it is held. The
    /// uncontended case is one inlined compare-exchange: out of line, the
    /// call and its register saves were a tenth of `buffered_128/1p`.
    #[inline]
    pub(crate) fn lock(&self) {
        locks::acquire();
        self.lock_uncounted();
    }

    /// Takes the lock word, for a caller that raised the count itself
    /// (`BiasedLock`).
    #[inline]
    pub(super) fn lock_uncounted(&self) {
        if self
            .0
            .compare_exchange(false, true, Ordering::Acquire, Ordering::Relaxed)
            .is_err()
        {
            self.lock_contended();
        }
    }

    #[cold]
    #[inline(never)]
    fn lock_contended(&self) {
        let mut spins = 0u32;
        while !self.try_take() {
            if spins < SPINS_BEFORE_YIELD {
                spins += 1;
                std::hint::spin_loop();
            } else {
                std::thread::yield_now();
            }
        }
    }

    /// Takes the lock if it is free right now.
    #[inline]
    pub(crate) fn try_lock(&self) -> bool {
        locks::acquire();
        let taken = self.try_take();
        if !taken {
            locks::release();
        }
        taken
    }

    /// The lock word's test-and-test-and-set, without the count.
    #[inline]
    fn try_take(&self) -> bool {
        !self.0.load(Ordering::Relaxed)
            && self
                .0
                .compare_exchange_weak(false, true, Ordering::Acquire, Ordering::Relaxed)
                .is_ok()
    }

    /// Releases the lock: a plain release store, paired with the next
    /// holder's Acquire CAS.
    ///
    /// # Safety
    /// The caller holds the lock (took it with `lock`/`try_lock`, or owns a
    /// guard it will forget).
    #[inline]
    pub(crate) unsafe fn unlock(&self) {
        // SAFETY: the caller holds the lock.
        unsafe { self.unlock_uncounted() };
        locks::release();
    }

    /// Releases the lock word, leaving the count to the caller.
    ///
    /// # Safety
    /// The caller holds the lock word.
    #[inline]
    pub(super) unsafe fn unlock_uncounted(&self) {
        self.0.store(false, Ordering::Release);
    }
}

// SAFETY: the lock hands out access to `value` to one holder at a time
// (Acquire on lock, Release on unlock), so sharing it needs only `T: Send`.
unsafe impl<T: Send> Sync for SpinLock<T> {}
// SAFETY: as above.
unsafe impl<T: Send> Send for SpinLock<T> {}

impl<T> SpinLock<T> {
    pub(crate) const fn new(value: T) -> SpinLock<T> {
        SpinLock {
            locked: RawSpinLock::new(),
            value: UnsafeCell::new(value),
        }
    }

    /// Takes the lock if it is free right now.
    pub(crate) fn try_lock(&self) -> Option<SpinLockGuard<'_, T>> {
        // `then`, not `then_some`: a guard built eagerly and dropped on
        // failure would release someone else's lock.
        self.locked.try_lock().then(|| SpinLockGuard { lock: self })
    }

    #[inline]
    pub(crate) fn lock(&self) -> SpinLockGuard<'_, T> {
        self.locked.lock();
        SpinLockGuard { lock: self }
    }
}

/// Access to a [`SpinLock`]'s value; unlocks on drop.
pub(crate) struct SpinLockGuard<'a, T> {
    lock: &'a SpinLock<T>,
}

impl<T> Deref for SpinLockGuard<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        // SAFETY: the guard proves we hold the lock.
        unsafe { &*self.lock.value.get() }
    }
}

impl<T> DerefMut for SpinLockGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        // SAFETY: the guard proves we hold the lock, exclusively.
        unsafe { &mut *self.lock.value.get() }
    }
}

impl<T> Drop for SpinLockGuard<'_, T> {
    fn drop(&mut self) {
        // SAFETY: the guard proves we hold the lock.
        unsafe { self.lock.locked.unlock() };
    }
}

#[cfg(test)]
mod tests {
    use super::SpinLock;
    use std::sync::Arc;

    #[test]
    fn failed_try_lock_leaves_the_holder_locked() {
        let lock = SpinLock::new(0u32);
        let held = lock.lock();
        assert!(lock.try_lock().is_none());
        assert!(
            lock.try_lock().is_none(),
            "a failed try_lock released the lock"
        );
        drop(held);
        assert!(lock.try_lock().is_some());
    }

    #[test]
    fn excludes_across_threads() {
        let lock = Arc::new(SpinLock::new(0u64));
        let threads: Vec<_> = (0..4)
            .map(|_| {
                let lock = lock.clone();
                std::thread::spawn(move || {
                    for _ in 0..50_000 {
                        *lock.lock() += 1;
                    }
                })
            })
            .collect();
        for thread in threads {
            thread.join().unwrap();
        }
        assert_eq!(*lock.lock(), 200_000);
    }
}

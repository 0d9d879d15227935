//! [`Mutex<T>`]: mutual exclusion that parks the goroutine, not the thread.
//!
//! The lock and its protocol (normal and starvation mode, spinning, the
//! invariants) are Go's `sync.Mutex`, with the lock bit in a word of its own
//! and a store-release unlock; all documented in `raw_mutex.rs`.
//! This file is the Rust face: the value lives inside the mutex and is
//! reached only through a [`MutexGuard`], which unlocks on drop.
//!
//! Decisions:
//! - **No poisoning** (as parking_lot): a goroutine that panics while holding
//!   the guard unlocks on unwind and the next holder sees whatever state the
//!   value was left in. Go has no poisoning either.
//! - **The guard is `Send`** (when `T: Send`). A goro mutex has no owner
//!   thread: a goroutine holding a guard may be switched out at any
//!   instruction (async preemption, a park, a yield) and resume on another
//!   OS thread, and unlocking there is correct, as unlocking from another
//!   goroutine is in Go. While the holder is switched out, waiters spin
//!   briefly and then park; nothing blocks an M.
//! - **Re-locking from the holder deadlocks** (as in Go and std): the
//!   goroutine parks forever. The mutex does not record its owner, because
//!   that would cost a store on every uncontended lock.

use std::cell::UnsafeCell;
use std::fmt;
use std::ops::{Deref, DerefMut};

use super::raw_mutex::RawMutex;
use crate::sched::WaitReason;

/// A mutual-exclusion lock protecting a `T`. Waiting parks the goroutine (a
/// foreign thread blocks). Fair under contention: see the module doc of
/// Go's starvation mode in `raw_mutex.rs`.
///
/// ```
/// use std::sync::Arc;
/// let total = goro_runtime::run(|| {
///     let counter = Arc::new(goro_runtime::sync::Mutex::new(0));
///     let handles: Vec<_> = (0..10)
///         .map(|_| {
///             let counter = counter.clone();
///             goro_runtime::go(move || *counter.lock() += 1)
///         })
///         .collect();
///     handles.into_iter().for_each(|h| h.join().unwrap());
///     let total = *counter.lock();
///     total
/// });
/// assert_eq!(total, 10);
/// ```
pub struct Mutex<T: ?Sized> {
    raw: RawMutex,
    value: UnsafeCell<T>,
}

// SAFETY: the mutex hands `&mut T` to one guard at a time (Acquire on lock,
// Release on unlock), so sharing it across threads needs only `T: Send`.
unsafe impl<T: ?Sized + Send> Sync for Mutex<T> {}
// SAFETY: moving the mutex moves the `T`.
unsafe impl<T: ?Sized + Send> Send for Mutex<T> {}

impl<T> Mutex<T> {
    /// An unlocked mutex holding `value`.
    pub const fn new(value: T) -> Mutex<T> {
        Mutex {
            raw: RawMutex::new(),
            value: UnsafeCell::new(value),
        }
    }

    /// Consumes the mutex and returns its value.
    pub fn into_inner(self) -> T {
        self.value.into_inner()
    }
}

impl<T: ?Sized> Mutex<T> {
    /// Locks, parking the goroutine while another holds the lock.
    pub fn lock(&self) -> MutexGuard<'_, T> {
        self.raw.lock(WaitReason::Mutex);
        MutexGuard { mutex: self }
    }

    /// Locks if that needs no waiting.
    pub fn try_lock(&self) -> Option<MutexGuard<'_, T>> {
        self.raw.try_lock().then(|| MutexGuard { mutex: self })
    }

    /// Whether the mutex is locked right now; by the time the caller looks
    /// at the answer it may have changed (for diagnostics and tests).
    pub fn is_locked(&self) -> bool {
        self.raw.is_locked()
    }

    /// The value, through an exclusive borrow: no locking needed.
    pub fn get_mut(&mut self) -> &mut T {
        self.value.get_mut()
    }
}

impl<T: Default> Default for Mutex<T> {
    fn default() -> Mutex<T> {
        Mutex::new(T::default())
    }
}

impl<T> From<T> for Mutex<T> {
    fn from(value: T) -> Mutex<T> {
        Mutex::new(value)
    }
}

impl<T: ?Sized + fmt::Debug> fmt::Debug for Mutex<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("Mutex");
        match self.try_lock() {
            Some(guard) => d.field("value", &&*guard),
            None => d.field("value", &format_args!("<locked>")),
        };
        d.finish()
    }
}

/// Access to a locked [`Mutex`]'s value; unlocks when dropped.
#[must_use = "if unused the Mutex will immediately unlock"]
pub struct MutexGuard<'a, T: ?Sized> {
    mutex: &'a Mutex<T>,
}

// SAFETY: sending the guard to another thread gives that thread `&mut T`
// (so `T: Send`), and unlocking from any thread is correct (module doc).
unsafe impl<T: ?Sized + Send> Send for MutexGuard<'_, T> {}
// SAFETY: a shared guard gives only `&T`.
unsafe impl<T: ?Sized + Sync> Sync for MutexGuard<'_, T> {}

impl<'a, T: ?Sized> MutexGuard<'a, T> {
    /// The mutex this guard locks (for `Condvar`).
    pub(crate) fn mutex(&self) -> &'a Mutex<T> {
        self.mutex
    }
}

impl<T: ?Sized> Deref for MutexGuard<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        // SAFETY: the guard proves we hold the lock.
        unsafe { &*self.mutex.value.get() }
    }
}

impl<T: ?Sized> DerefMut for MutexGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        // SAFETY: the guard proves we hold the lock, exclusively.
        unsafe { &mut *self.mutex.value.get() }
    }
}

impl<T: ?Sized> Drop for MutexGuard<'_, T> {
    fn drop(&mut self) {
        // SAFETY: the guard proves we hold the lock.
        unsafe { self.mutex.raw.unlock() };
    }
}

impl<T: ?Sized + fmt::Debug> fmt::Debug for MutexGuard<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&**self, f)
    }
}

impl<T: ?Sized + fmt::Display> fmt::Display for MutexGuard<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&**self, f)
    }
}

//! [`RwLock<T>`]: many readers or one writer, with writer preference. Go's
//! `sync.RWMutex` (`src/sync/rwmutex.go`, The Go Authors).
//!
//! # State
//!
//! - `writer`: a [`RawMutex`] that writers take first, so writers queue among
//!   themselves (with the mutex's fairness) and at most one is "pending".
//! - `reader_count`: readers holding or waiting for the lock. A pending
//!   writer subtracts [`MAX_READERS`] from it, so it goes negative: that is
//!   how readers learn a writer is pending.
//! - `reader_wait`: readers the pending writer still waits for to leave.
//! - `writer_sem`, `reader_sem`: where the pending writer and blocked readers
//!   sleep (`sema.rs`).
//!
//! # Protocol
//!
//! Read lock: increment `reader_count`; if the result is negative a writer is
//! pending or active, so sleep on `reader_sem` (the writer's unlock releases
//! one permit for each reader that arrived meanwhile).
//!
//! Read unlock: decrement `reader_count`; if negative, a writer is pending:
//! decrement `reader_wait`, and the last reader to leave wakes the writer on
//! `writer_sem`.
//!
//! Write lock: take `writer`; subtract `MAX_READERS` from `reader_count`
//! (from now on new readers queue: **writer preference**, as Go: a pending
//! writer blocks new readers, so a stream of readers cannot starve it); add
//! the number of active readers it saw to `reader_wait` and, unless they all
//! left already (the sum is zero), sleep on `writer_sem`.
//!
//! Write unlock: add `MAX_READERS` back (new readers proceed), release one
//! `reader_sem` permit per reader that queued meanwhile, unlock `writer`.
//!
//! Invariants: `reader_count` is in `[-MAX_READERS, MAX_READERS)`; it is
//! negative exactly while a writer is pending or holds the lock. Readers that
//! arrive while it is negative are exactly the ones the write unlock
//! releases: each incremented `reader_count`, and the unlock reads that
//! count in the same atomic add that lets new readers in.
//!
//! # Guards and preemption
//!
//! Both guards are `Send` (a read guard when `T: Sync`, a write guard when
//! `T: Send + Sync`): the lock has no owner thread, so a holder switched out
//! at any instruction may resume and unlock on another OS thread; meanwhile
//! other goroutines park, never blocking their M. Re-acquiring from the
//! holder (a read inside a write, or a read inside a read while a writer is
//! pending) deadlocks, as in Go: a pending writer blocks the second read.

use std::cell::UnsafeCell;
use std::fmt;
use std::ops::{Deref, DerefMut};
use std::sync::atomic::{AtomicI32, Ordering};

use super::raw_mutex::RawMutex;
use super::sema::Sema;
use crate::sched::WaitReason;

/// The most readers at once (Go's `rwmutexMaxReaders`).
const MAX_READERS: i32 = 1 << 30;

struct RawRwLock {
    writer: RawMutex,
    writer_sem: Sema,
    reader_sem: Sema,
    reader_count: AtomicI32,
    reader_wait: AtomicI32,
}

impl RawRwLock {
    const fn new() -> RawRwLock {
        RawRwLock {
            writer: RawMutex::new(),
            writer_sem: Sema::new(),
            reader_sem: Sema::new(),
            reader_count: AtomicI32::new(0),
            reader_wait: AtomicI32::new(0),
        }
    }

    fn read(&self) {
        // Acquire: pairs with the write unlock's Release add.
        if self.reader_count.fetch_add(1, Ordering::Acquire) + 1 < 0 {
            self.reader_sem.acquire(false, WaitReason::RwLock);
        }
    }

    fn try_read(&self) -> bool {
        let mut count = self.reader_count.load(Ordering::Relaxed);
        loop {
            if count < 0 {
                return false;
            }
            match self.reader_count.compare_exchange_weak(
                count,
                count + 1,
                Ordering::Acquire,
                Ordering::Relaxed,
            ) {
                Ok(_) => return true,
                Err(now) => count = now,
            }
        }
    }

    /// # Safety
    /// The caller holds a read lock.
    unsafe fn read_unlock(&self) {
        // Release: pairs with the writer's AcqRel subtraction.
        let count = self.reader_count.fetch_sub(1, Ordering::Release) - 1;
        if count < 0 {
            self.read_unlock_slow(count);
        }
    }

    #[cold]
    fn read_unlock_slow(&self, count: i32) {
        if count + 1 == 0 || count + 1 == -MAX_READERS {
            super::raw_mutex::fatal("sync: read unlock of an unlocked RwLock");
        }
        // A writer is pending; the last reader it waits for wakes it.
        if self.reader_wait.fetch_sub(1, Ordering::AcqRel) - 1 == 0 {
            self.writer_sem.release(false);
        }
    }

    fn write(&self) {
        self.writer.lock(WaitReason::Mutex);
        // Announce the writer; `active` readers still hold the lock.
        let active = self.reader_count.fetch_sub(MAX_READERS, Ordering::AcqRel);
        if active != 0 && self.reader_wait.fetch_add(active, Ordering::AcqRel) + active != 0 {
            self.writer_sem.acquire(false, WaitReason::RwLock);
        }
    }

    fn try_write(&self) -> bool {
        if !self.writer.try_lock() {
            return false;
        }
        if self
            .reader_count
            .compare_exchange(0, -MAX_READERS, Ordering::Acquire, Ordering::Relaxed)
            .is_err()
        {
            // SAFETY: we took `writer` just above.
            unsafe { self.writer.unlock() };
            return false;
        }
        true
    }

    /// # Safety
    /// The caller holds the write lock.
    unsafe fn write_unlock(&self) {
        // Release: pairs with readers' Acquire increments.
        let queued = self.reader_count.fetch_add(MAX_READERS, Ordering::Release) + MAX_READERS;
        if queued >= MAX_READERS {
            super::raw_mutex::fatal("sync: write unlock of an unlocked RwLock");
        }
        if queued > 0 {
            self.reader_sem.release_many(queued as u32, false);
        }
        // SAFETY: the write lock holder holds `writer`.
        unsafe { self.writer.unlock() };
    }
}

/// A reader-writer lock protecting a `T`: any number of [`read`] guards or
/// one [`write`] guard. A waiting writer blocks new readers (Go's writer
/// preference). Waiting parks the goroutine; a foreign thread blocks.
///
/// [`read`]: RwLock::read
/// [`write`]: RwLock::write
pub struct RwLock<T: ?Sized> {
    raw: RawRwLock,
    value: UnsafeCell<T>,
}

// SAFETY: readers share `&T` across threads (`T: Sync`); a writer gets
// `&mut T` on whichever thread it runs (`T: Send`).
unsafe impl<T: ?Sized + Send + Sync> Sync for RwLock<T> {}
// SAFETY: moving the lock moves the `T`.
unsafe impl<T: ?Sized + Send> Send for RwLock<T> {}

impl<T> RwLock<T> {
    /// An unlocked lock holding `value`.
    pub const fn new(value: T) -> RwLock<T> {
        RwLock {
            raw: RawRwLock::new(),
            value: UnsafeCell::new(value),
        }
    }

    /// Consumes the lock and returns its value.
    pub fn into_inner(self) -> T {
        self.value.into_inner()
    }
}

impl<T: ?Sized> RwLock<T> {
    /// Locks for reading, parking while a writer holds or waits for the lock.
    pub fn read(&self) -> RwLockReadGuard<'_, T> {
        self.raw.read();
        RwLockReadGuard { lock: self }
    }

    /// Locks for reading if no writer holds or waits for the lock.
    pub fn try_read(&self) -> Option<RwLockReadGuard<'_, T>> {
        self.raw.try_read().then(|| RwLockReadGuard { lock: self })
    }

    /// Locks for writing, parking until every reader and writer has left.
    pub fn write(&self) -> RwLockWriteGuard<'_, T> {
        self.raw.write();
        RwLockWriteGuard { lock: self }
    }

    /// Locks for writing if nobody holds or waits for the lock.
    pub fn try_write(&self) -> Option<RwLockWriteGuard<'_, T>> {
        self.raw
            .try_write()
            .then(|| RwLockWriteGuard { lock: self })
    }

    /// The value, through an exclusive borrow: no locking needed.
    pub fn get_mut(&mut self) -> &mut T {
        self.value.get_mut()
    }
}

impl<T: Default> Default for RwLock<T> {
    fn default() -> RwLock<T> {
        RwLock::new(T::default())
    }
}

impl<T> From<T> for RwLock<T> {
    fn from(value: T) -> RwLock<T> {
        RwLock::new(value)
    }
}

impl<T: ?Sized + fmt::Debug> fmt::Debug for RwLock<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("RwLock");
        match self.try_read() {
            Some(guard) => d.field("value", &&*guard),
            None => d.field("value", &format_args!("<locked>")),
        };
        d.finish()
    }
}

/// Shared access to a read-locked [`RwLock`]'s value; unlocks when dropped.
#[must_use = "if unused the RwLock will immediately unlock"]
pub struct RwLockReadGuard<'a, T: ?Sized> {
    lock: &'a RwLock<T>,
}

/// Exclusive access to a write-locked [`RwLock`]'s value; unlocks when
/// dropped.
#[must_use = "if unused the RwLock will immediately unlock"]
pub struct RwLockWriteGuard<'a, T: ?Sized> {
    lock: &'a RwLock<T>,
}

// SAFETY: a read guard gives `&T` on whichever thread holds it, and the read
// unlock may run on any thread (module doc).
unsafe impl<T: ?Sized + Sync> Send for RwLockReadGuard<'_, T> {}
// SAFETY: as above.
unsafe impl<T: ?Sized + Sync> Sync for RwLockReadGuard<'_, T> {}
// SAFETY: a write guard gives `&mut T` on whichever thread holds it
// (`T: Send`), and drops it after readers may have shared `&T` (`T: Sync`).
unsafe impl<T: ?Sized + Send + Sync> Send for RwLockWriteGuard<'_, T> {}
// SAFETY: a shared write guard gives only `&T`.
unsafe impl<T: ?Sized + Sync> Sync for RwLockWriteGuard<'_, T> {}

impl<T: ?Sized> Deref for RwLockReadGuard<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        // SAFETY: a read lock excludes writers.
        unsafe { &*self.lock.value.get() }
    }
}

impl<T: ?Sized> Drop for RwLockReadGuard<'_, T> {
    fn drop(&mut self) {
        // SAFETY: the guard proves we hold a read lock.
        unsafe { self.lock.raw.read_unlock() };
    }
}

impl<T: ?Sized> Deref for RwLockWriteGuard<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        // SAFETY: the write lock excludes everyone else.
        unsafe { &*self.lock.value.get() }
    }
}

impl<T: ?Sized> DerefMut for RwLockWriteGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        // SAFETY: the write lock excludes everyone else.
        unsafe { &mut *self.lock.value.get() }
    }
}

impl<T: ?Sized> Drop for RwLockWriteGuard<'_, T> {
    fn drop(&mut self) {
        // SAFETY: the guard proves we hold the write lock.
        unsafe { self.lock.raw.write_unlock() };
    }
}

impl<T: ?Sized + fmt::Debug> fmt::Debug for RwLockReadGuard<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&**self, f)
    }
}

impl<T: ?Sized + fmt::Debug> fmt::Debug for RwLockWriteGuard<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&**self, f)
    }
}

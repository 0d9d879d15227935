//! Go's `sync.WaitGroup`: wait for a collection of goroutines to finish.
//!
//! Invariants:
//! - `count` is the number of outstanding `done` calls; it never goes below
//!   zero (that panics, as in Go).
//! - A waiter is added to `waiters` only under its lock and only while
//!   `count > 0` (re-checked under the lock). The `add` that brings `count` to
//!   zero takes the same lock and wakes everyone queued. Because the zeroing
//!   `fetch_add` happens before that lock, a waiter checking under the lock
//!   either sees zero or is already queued: no wakeup is lost.

use std::sync::atomic::{AtomicI64, Ordering};

use crate::sched::{block, WaitReason, Waiter};
use crate::util::SpinLock;

/// Waits for a collection of goroutines (or threads) to finish.
///
/// Share it with `Arc`. `wait` parks a goroutine, or blocks a foreign thread.
pub struct WaitGroup {
    count: AtomicI64,
    /// A spin lock, which keeps its holder from being preempted: a
    /// `std::sync::Mutex` held by a preempted goroutine would block any
    /// goroutine of the same M that `add`s or `wait`s (a thread-level
    /// wait, until sysmon hands the P off).
    waiters: SpinLock<Vec<Waiter>>,
}

impl Default for WaitGroup {
    fn default() -> WaitGroup {
        WaitGroup {
            count: AtomicI64::new(0),
            waiters: SpinLock::new(Vec::new()),
        }
    }
}

impl WaitGroup {
    /// A wait group with a zero counter.
    pub fn new() -> WaitGroup {
        WaitGroup::default()
    }

    /// Adds `delta` (which may be negative) to the counter; at zero, every
    /// waiter is released.
    ///
    /// # Panics
    /// If the counter would go negative ("sync: negative WaitGroup counter").
    pub fn add(&self, delta: i64) {
        let count = self.count.fetch_add(delta, Ordering::AcqRel) + delta;
        if count < 0 {
            panic!("sync: negative WaitGroup counter");
        }
        if count == 0 && delta != 0 {
            let waiters = std::mem::take(&mut *self.lock());
            for waiter in waiters {
                waiter.wake();
            }
        }
    }

    /// Decrements the counter by one.
    ///
    /// # Panics
    /// If the counter would go negative.
    pub fn done(&self) {
        self.add(-1);
    }

    /// Blocks until the counter is zero.
    pub fn wait(&self) {
        if self.count.load(Ordering::Acquire) == 0 {
            return;
        }
        block(WaitReason::WaitGroup, |waiter| {
            let mut waiters = self.lock();
            if self.count.load(Ordering::Acquire) == 0 {
                return false;
            }
            waiters.push(waiter);
            true
        });
    }

    fn lock(&self) -> crate::util::SpinLockGuard<'_, Vec<Waiter>> {
        self.waiters.lock()
    }
}

impl std::fmt::Debug for WaitGroup {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WaitGroup")
            .field("count", &self.count.load(Ordering::Relaxed))
            .finish()
    }
}

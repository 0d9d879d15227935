//! A counting semaphore with a FIFO wait queue, for building locks: Go's
//! runtime semaphore (`src/runtime/sema.go`, `semacquire1`/`semrelease1`),
//! one per lock instead of Go's address-hashed table.
//!
//! It is not a user-facing semaphore (that is `sync::Semaphore`): a release
//! with nobody waiting just banks a permit, and a lock built on it keeps its
//! own state word and uses the semaphore only to sleep and be woken.
//!
//! # Protocol
//!
//! `count` is the number of banked permits; `waiters` is how many callers
//! are queued or about to queue (Go's `nwait`).
//!
//! Acquire:
//! 1. Take a permit with a CAS if `count > 0` (no lock).
//! 2. Otherwise lock the queue, increment `waiters` (SeqCst), and try once
//!    more to take a permit; on success decrement `waiters` and return.
//! 3. Otherwise queue an entry (at the back, or at the front for a `lifo`
//!    caller that has waited before) and park, releasing the queue lock only
//!    once off the stack (`sched::wait_unlocking`).
//! 4. When woken: if the releaser handed its permit over (`handoff`), return;
//!    else try to take a permit, and go back to step 2 if someone else took
//!    it first.
//!
//! Release:
//! 1. Add a permit to `count` (SeqCst), then read `waiters` (SeqCst); if it
//!    is zero, return without locking.
//! 2. Otherwise lock the queue, re-check `waiters`, pop the front entry and
//!    decrement `waiters`. With `handoff`, take the permit back and mark the
//!    entry's slot so the waiter owns it without competing.
//! 3. Unlock, then wake the waiter.
//!
//! Why no wakeup is lost: a releaser's `count` increment and an acquirer's
//! `waiters` increment are both SeqCst, each followed by a SeqCst read of the
//! other variable, so at least one of them sees the other's write (Dekker):
//! either the acquirer finds the permit in step 2, or the releaser finds a
//! waiter in step 1. A found waiter is in the queue, because `waiters` is
//! incremented and the entry queued under one holding of the queue lock,
//! which the releaser takes before popping.
//!
//! Rejected: Go's global table of wait queues hashed by address keeps a
//! mutex at 8 bytes, but unrelated locks then share a bucket lock and a
//! lookup on every slow path; a queue per lock costs 40 bytes and no lookup.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};

use crate::sched::{prepare_wait, wait_unlocking, WaitReason, Waiter};
use crate::util::SpinLock;

/// A queued acquirer.
struct Entry {
    waiter: Waiter,
    /// Set by a handing-off releaser; lives on the parked acquirer's stack.
    handed_off: *const AtomicBool,
}

// SAFETY: `handed_off` is written only by the party that dequeued the entry
// under the queue lock, while its owner stays parked until woken (module
// doc), so the pointer may travel to the releaser's thread.
unsafe impl Send for Entry {}

pub(crate) struct Sema {
    count: AtomicU32,
    waiters: AtomicU32,
    queue: SpinLock<VecDeque<Entry>>,
}

impl Sema {
    pub(crate) const fn new() -> Sema {
        Sema {
            count: AtomicU32::new(0),
            waiters: AtomicU32::new(0),
            queue: SpinLock::new(VecDeque::new()),
        }
    }

    /// Takes a banked permit if there is one (Go's `cansemacquire`).
    fn try_take(&self) -> bool {
        let mut count = self.count.load(Ordering::SeqCst);
        while count > 0 {
            match self.count.compare_exchange_weak(
                count,
                count - 1,
                Ordering::SeqCst,
                Ordering::SeqCst,
            ) {
                Ok(_) => return true,
                Err(now) => count = now,
            }
        }
        false
    }

    /// Waits for a permit and takes it. A `lifo` caller (one that waited
    /// before) queues at the front.
    pub(crate) fn acquire(&self, lifo: bool, reason: WaitReason) {
        if self.try_take() {
            return;
        }
        loop {
            let mut queue = self.queue.lock();
            // SeqCst: pairs with `release`'s increment of `count` and its
            // read of `waiters` (module doc, "why no wakeup is lost").
            self.waiters.fetch_add(1, Ordering::SeqCst);
            if self.try_take() {
                self.waiters.fetch_sub(1, Ordering::SeqCst);
                return;
            }
            let handed_off = AtomicBool::new(false);
            let (waiter, handle) = prepare_wait();
            let entry = Entry {
                waiter,
                handed_off: &handed_off,
            };
            if lifo {
                queue.push_front(entry);
            } else {
                queue.push_back(entry);
            }
            wait_unlocking(reason, handle, queue);
            // Acquire: pairs with the releaser's Release store, so whatever
            // it did before handing off (a lock's critical section) is seen.
            if handed_off.load(Ordering::Acquire) || self.try_take() {
                return;
            }
        }
    }

    /// Adds a permit and wakes the front waiter, if any. With `handoff` the
    /// permit goes straight to that waiter; returns whether that happened.
    pub(crate) fn release(&self, handoff: bool) -> bool {
        self.release_many(1, handoff)
    }

    /// Adds `permits` permits and wakes up to that many waiters, front first.
    pub(crate) fn release_many(&self, permits: u32, handoff: bool) -> bool {
        self.count.fetch_add(permits, Ordering::SeqCst);
        if self.waiters.load(Ordering::SeqCst) == 0 {
            return false;
        }
        let mut handed = false;
        let mut woken = 0;
        while woken < permits {
            let mut queue = self.queue.lock();
            if self.waiters.load(Ordering::SeqCst) == 0 {
                return handed;
            }
            let Some(entry) = queue.pop_front() else {
                // `waiters` counts only queued entries while the lock is
                // held (they change together under it).
                unreachable!("goro: semaphore waiter count without a queued waiter");
            };
            self.waiters.fetch_sub(1, Ordering::SeqCst);
            if handoff && self.try_take() {
                // SAFETY: we dequeued the entry under the lock and its owner
                // stays parked until we wake it, so its flag is alive.
                unsafe { (*entry.handed_off).store(true, Ordering::Release) };
                handed = true;
            }
            drop(queue);
            entry.waiter.wake();
            woken += 1;
        }
        handed
    }
}

//! Go's `sync.WaitGroup`: wait for a collection of goroutines to finish.
//!
//! # State
//!
//! One `AtomicU64`: the counter in the low 32 bits (the number of
//! outstanding `done` calls; it never goes below zero, which panics as in
//! Go) and an epoch in the high 32 bits, advanced by the very
//! compare-exchange that brings the counter to zero.
//!
//! # Why the epoch
//!
//! A waiter queues under the waiters' lock, only while the counter is
//! non-zero (re-checked under that lock), and records the epoch it saw. The
//! add that zeroes the counter then takes the lock and wakes the waiters of
//! the epoch it ended, and only those. Without the epoch it woke everybody
//! queued when it got the lock, which could include a waiter that queued
//! after a new `add` had raised the counter again (zero, `add(1)`, `wait`,
//! and only then the zeroing `done` taking the lock): that `wait` returned
//! with the counter at 1. Go packs its waiter count beside the counter for
//! the same reason.
//!
//! A waiter of epoch `e` queued before the zeroing compare-exchange of `e`
//! (it read the state under the lock and saw `e` with a non-zero counter),
//! and that zeroing add takes the lock after its compare-exchange, so it
//! finds the waiter: no wakeup is lost.

use std::sync::atomic::{AtomicU64, Ordering};

use crate::sched::{block, WaitReason, Waiter};
use crate::util::SpinLock;

/// The counter's bits in the state word.
const COUNT: u64 = 0xFFFF_FFFF;
/// One epoch, in the state word's high half.
const EPOCH_ONE: u64 = 1 << 32;

/// Waits for a collection of goroutines (or threads) to finish.
///
/// Share it with `Arc`. `wait` parks a goroutine, or blocks a foreign thread.
pub struct WaitGroup {
    /// `epoch << 32 | counter` (module doc).
    state: AtomicU64,
    /// Each waiter with the epoch it waits for. A spin lock, which keeps its
    /// holder from being preempted: a `std::sync::Mutex` held by a preempted
    /// goroutine would block any goroutine of the same M that `add`s or
    /// `wait`s (a thread-level wait, until sysmon hands the P off).
    waiters: SpinLock<Vec<(u32, Waiter)>>,
}

impl Default for WaitGroup {
    fn default() -> WaitGroup {
        WaitGroup {
            state: AtomicU64::new(0),
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
    /// If the counter would go negative ("sync: negative WaitGroup counter")
    /// or past `u32::MAX`; the counter is then left unchanged.
    pub fn add(&self, delta: i64) {
        let mut old = self.state.load(Ordering::Relaxed);
        loop {
            let count = (old & COUNT) as i64 + delta;
            if count < 0 {
                panic!("sync: negative WaitGroup counter");
            }
            if count > COUNT as i64 {
                panic!("sync: WaitGroup counter overflow");
            }
            let zeroed = count == 0 && delta != 0;
            let mut new = (old & !COUNT) | count as u64;
            if zeroed {
                new = new.wrapping_add(EPOCH_ONE);
            }
            match self
                .state
                .compare_exchange_weak(old, new, Ordering::AcqRel, Ordering::Relaxed)
            {
                Ok(_) if zeroed => return self.wake_epoch((old >> 32) as u32),
                Ok(_) => return,
                Err(now) => old = now,
            }
        }
    }

    /// Wakes the waiters of `epoch`, which has just ended.
    fn wake_epoch(&self, epoch: u32) {
        let ended: Vec<(u32, Waiter)> = {
            let mut waiters = self.lock();
            if waiters.iter().all(|(of, _)| *of == epoch) {
                // The usual case: no allocation under the spin lock.
                std::mem::take(&mut *waiters)
            } else {
                let (ended, later) = std::mem::take(&mut *waiters)
                    .into_iter()
                    .partition(|(of, _)| *of == epoch);
                *waiters = later;
                ended
            }
        };
        for (_, waiter) in ended {
            waiter.wake();
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
        if self.state.load(Ordering::Acquire) & COUNT == 0 {
            return;
        }
        block(WaitReason::WaitGroup, |waiter| {
            let mut waiters = self.lock();
            let state = self.state.load(Ordering::Acquire);
            if state & COUNT == 0 {
                return false;
            }
            waiters.push(((state >> 32) as u32, waiter));
            true
        });
    }

    fn lock(&self) -> crate::util::SpinLockGuard<'_, Vec<(u32, Waiter)>> {
        self.waiters.lock()
    }
}

impl std::fmt::Debug for WaitGroup {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WaitGroup")
            .field("count", &(self.state.load(Ordering::Relaxed) & COUNT))
            .finish()
    }
}

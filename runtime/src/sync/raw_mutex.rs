//! The lock word behind [`Mutex`](super::Mutex): Go's `sync.Mutex`
//! (`src/sync/mutex.go`, The Go Authors), rewritten for goro.
//!
//! # State
//!
//! One `AtomicU32`:
//!
//! | bits | name | meaning |
//! |---|---|---|
//! | 0 | `LOCKED` | somebody holds the lock |
//! | 1 | `WOKEN` | a waiter is awake (spinning, or woken and about to compete): an unlocker need not wake another |
//! | 2 | `STARVING` | starvation mode (below) |
//! | 3.. | waiters | goroutines queued, or about to queue, on `sema` |
//!
//! `sema` (`sema.rs`, Go's runtime semaphore) is where waiters sleep.
//!
//! # Two modes
//!
//! **Normal mode** (Go's default): waiters queue FIFO, but a woken waiter
//! does not own the lock; it competes with goroutines arriving just now, which
//! have the advantage of being on a CPU already. A waiter that loses goes
//! back to the *front* of the queue. This keeps throughput high: a lock
//! released and re-taken on the same CPU stays in that CPU's cache, and
//! nobody switches goroutines.
//!
//! **Starvation mode**: a waiter that has waited more than
//! [`STARVATION_THRESHOLD`] (1 ms) when it is woken and fails again sets
//! `STARVING`. From then on the unlocker hands ownership straight to the
//! front waiter (the lock is never observably free: `STARVING` keeps new
//! arrivals from taking it or spinning, and they queue at the back). The
//! waiter that receives the lock switches the mutex back to normal mode if
//! it is the last waiter or waited less than the threshold. This bounds tail
//! latency; normal mode is much faster, which is why it is left as soon as
//! possible ("two goroutines can go lock-step infinitely" in starvation
//! mode, as Go's comment says).
//!
//! # Protocol
//!
//! Lock (fast path): CAS the word from 0 to `LOCKED` (Acquire). One atomic.
//!
//! Lock (slow path), looping on a snapshot `old` of the word:
//! 1. If the lock is held in normal mode and spinning can help
//!    (`spin.rs`), spin a round; first try to set `WOKEN` (if waiters exist
//!    and it is clear) so the coming unlock does not wake a sleeper we would
//!    race with.
//! 2. Compute `new`: set `LOCKED` unless starving; count ourselves as a
//!    waiter if the lock is held or starving; set `STARVING` if we have
//!    starved and the lock is held; clear `WOKEN` if we own it (we were
//!    woken, or set it while spinning).
//! 3. CAS `old` → `new`. If it succeeded and the lock was free and not
//!    starving, we hold it. Otherwise we counted ourselves as a waiter:
//!    sleep on `sema` (at the front if we waited before), then:
//!    - in starvation mode we were handed the lock: set `LOCKED`, remove
//!      ourselves from the waiter count, and leave starvation mode if we are
//!      the last waiter or did not starve; done.
//!    - in normal mode we were woken to compete: we own `WOKEN`; loop.
//!
//! Unlock (fast path): subtract `LOCKED` (Release); if the result is 0
//! nobody waits. One atomic.
//!
//! Unlock (slow path):
//! - Normal mode: if there are waiters and nobody holds `WOKEN`, `LOCKED`
//!   or `STARVING`, CAS the word to one waiter fewer with `WOKEN` set, then
//!   release one permit on `sema` (wakes the front waiter). Otherwise
//!   someone else is already awake (or owns the lock): wake nobody.
//! - Starvation mode: release with handoff: the front waiter gets the
//!   permit directly; then yield (Go's `goyield`) so it runs now, on this P.
//!
//! # Invariants
//!
//! - `LOCKED` is set by exactly one party at a time: a successful CAS, or the
//!   waiter handed the lock in starvation mode (while `STARVING` is set, the
//!   lock is owned even with `LOCKED` clear, and nobody else may set it).
//! - `STARVING` implies at least one counted waiter, and is set only while
//!   the lock is held: an unlocker in starvation mode always has someone to
//!   hand off to.
//! - `WOKEN` is owned by at most one goroutine; whoever set it clears it.
//! - The waiter count is at least the number of entries queued on `sema`
//!   (it is incremented before queueing, decremented by the waker).
//!
//! # Measured (`benches/mutex.rs` beside `ci/go/mutex`, 2 cores, 2 Ps)
//!
//! 4 goroutines × lock/increment/unlock, per pair, in the same runs, on a
//! shared machine (load average 2–4): goro 28–53 ns in most runs against
//! Go 1.19's 35–79 ns (median of pairs ≈ 38 vs 54 ns, ratio ≈ 0.7), with
//! bimodal outliers up to 85 ns for goro. The profile is the fast path's
//! CAS and `fetch_sub` missing the cache (the line ping-pongs between the
//! cores) and `lock_slow`'s spin; the semaphore is under 1%. Turning
//! spinning off measured 26–30 ns in three runs, but Go's spin rule is kept
//! until a quieter machine can tell the two apart (the brief asks for Go's
//! design; the numbers so far are within noise).

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use super::sema::Sema;
use super::spin::{can_spin, spin};
use crate::sched::WaitReason;

const LOCKED: u32 = 1;
const WOKEN: u32 = 1 << 1;
const STARVING: u32 = 1 << 2;
const WAITER_SHIFT: u32 = 3;
const ONE_WAITER: u32 = 1 << WAITER_SHIFT;

/// How long a waiter waits before it switches the mutex to starvation
/// mode (Go's `starvationThresholdNs`).
pub(crate) const STARVATION_THRESHOLD: Duration = Duration::from_millis(1);

/// Go's mutex, without the value it protects.
pub(crate) struct RawMutex {
    state: AtomicU32,
    sema: Sema,
}

impl RawMutex {
    pub(crate) const fn new() -> RawMutex {
        RawMutex {
            state: AtomicU32::new(0),
            sema: Sema::new(),
        }
    }

    /// Takes the lock, parking (with `reason`) while another holds it.
    #[inline]
    pub(crate) fn lock(&self, reason: WaitReason) {
        if self
            .state
            .compare_exchange(0, LOCKED, Ordering::Acquire, Ordering::Relaxed)
            .is_err()
        {
            self.lock_slow(reason);
        }
    }

    /// Takes the lock if it is free and not being handed to a waiter.
    pub(crate) fn try_lock(&self) -> bool {
        let old = self.state.load(Ordering::Relaxed);
        if old & (LOCKED | STARVING) != 0 {
            return false;
        }
        self.state
            .compare_exchange(old, old | LOCKED, Ordering::Acquire, Ordering::Relaxed)
            .is_ok()
    }

    /// Whether some party holds the lock (or it is being handed over).
    pub(crate) fn is_locked(&self) -> bool {
        self.state.load(Ordering::Relaxed) & (LOCKED | STARVING) != 0
    }

    /// Releases the lock.
    ///
    /// # Safety
    /// The caller holds the lock (a guard being dropped).
    #[inline]
    pub(crate) unsafe fn unlock(&self) {
        let new = self.state.fetch_sub(LOCKED, Ordering::Release) - LOCKED;
        if new != 0 {
            self.unlock_slow(new);
        }
    }

    #[cold]
    fn lock_slow(&self, reason: WaitReason) {
        let mut wait_start: Option<Instant> = None;
        let mut starving = false;
        let mut awake = false;
        let mut round = 0;
        let mut old = self.state.load(Ordering::Relaxed);
        loop {
            // 1. Spin while a running holder may release the lock soon
            //    (never in starvation mode: the lock goes to a waiter).
            if old & (LOCKED | STARVING) == LOCKED && can_spin(round) {
                if !awake
                    && old & WOKEN == 0
                    && old >> WAITER_SHIFT != 0
                    && self
                        .state
                        .compare_exchange(old, old | WOKEN, Ordering::Relaxed, Ordering::Relaxed)
                        .is_ok()
                {
                    awake = true;
                }
                spin();
                round += 1;
                old = self.state.load(Ordering::Relaxed);
                continue;
            }
            // 2. The word we want.
            let mut new = old;
            if old & STARVING == 0 {
                new |= LOCKED;
            }
            if old & (LOCKED | STARVING) != 0 {
                new += ONE_WAITER;
            }
            if starving && old & LOCKED != 0 {
                // Only while held: unlock expects a starving mutex to have a
                // waiter to hand off to, which is us.
                new |= STARVING;
            }
            if awake {
                if new & WOKEN == 0 {
                    fatal("sync: inconsistent mutex state (WOKEN lost)");
                }
                new &= !WOKEN;
            }
            // 3. Publish it.
            match self
                .state
                .compare_exchange(old, new, Ordering::Acquire, Ordering::Relaxed)
            {
                Ok(_) => {
                    if old & (LOCKED | STARVING) == 0 {
                        return; // took the free lock
                    }
                    let lifo = wait_start.is_some();
                    let start = *wait_start.get_or_insert_with(Instant::now);
                    self.sema.acquire(lifo, reason);
                    starving = starving || start.elapsed() > STARVATION_THRESHOLD;
                    old = self.state.load(Ordering::Acquire);
                    if old & STARVING != 0 {
                        // Handed the lock: set LOCKED, stop counting as a
                        // waiter, and leave starvation mode if it is over.
                        if old & (LOCKED | WOKEN) != 0 || old >> WAITER_SHIFT == 0 {
                            fatal("sync: inconsistent mutex state (starving handoff)");
                        }
                        let mut delta = LOCKED.wrapping_sub(ONE_WAITER);
                        if !starving || old >> WAITER_SHIFT == 1 {
                            delta = delta.wrapping_sub(STARVING);
                        }
                        self.state.fetch_add(delta, Ordering::Acquire);
                        return;
                    }
                    awake = true;
                    round = 0;
                }
                Err(now) => old = now,
            }
        }
    }

    #[cold]
    fn unlock_slow(&self, new: u32) {
        if new.wrapping_add(LOCKED) & LOCKED == 0 {
            fatal("sync: unlock of unlocked mutex");
        }
        if new & STARVING != 0 {
            // Hand the lock to the front waiter and let it run now. LOCKED
            // stays clear until it sets it; STARVING keeps others out.
            if self.sema.release(true) {
                crate::sched::yield_now();
            }
            return;
        }
        let mut old = new;
        loop {
            // Nobody to wake, or someone is already awake or owns the lock
            // (or the mutex turned starving: its handoff chain is not ours).
            if old >> WAITER_SHIFT == 0 || old & (LOCKED | WOKEN | STARVING) != 0 {
                return;
            }
            let new = (old - ONE_WAITER) | WOKEN;
            match self
                .state
                .compare_exchange(old, new, Ordering::Relaxed, Ordering::Relaxed)
            {
                Ok(_) => {
                    self.sema.release(false);
                    return;
                }
                Err(now) => old = now,
            }
        }
    }
}

/// An unrecoverable lock-state corruption (Go's `fatal`/`throw`): the state
/// word no longer means anything, so no caller could continue safely.
#[cold]
pub(crate) fn fatal(message: &str) -> ! {
    crate::sys::write_stderr(b"fatal error: ");
    crate::sys::write_stderr(message.as_bytes());
    crate::sys::write_stderr(b"\n");
    crate::sys::abort();
}

//! The lock behind [`Mutex`](super::Mutex): Go's `sync.Mutex`
//! (`src/sync/mutex.go`, The Go Authors), rewritten for goro, with the lock
//! bit moved into a word of its own so that a lock/unlock pair costs one
//! locked instruction.
//!
//! # State
//!
//! Two `AtomicU32`s on one cache line:
//!
//! - `held`: 1 while somebody holds the lock, *or while it is being handed
//!   to a waiter in starvation mode*; 0 when free (Go's `mutexLocked`).
//! - `state`:
//!
//! | bits | name | meaning |
//! |---|---|---|
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
//! front waiter: it leaves `held` at 1, so the lock is never observably free
//! and new arrivals queue at the back. The waiter that receives the lock
//! switches the mutex back to normal mode if it is the last waiter or waited
//! less than the threshold. This bounds tail latency; normal mode is much
//! faster, which is why it is left as soon as possible.
//!
//! # Protocol
//!
//! Lock (fast path): CAS `held` from 0 to 1 (Acquire). One locked
//! instruction, whatever the waiter count says.
//!
//! Unlock (fast path): read `state`; if it is not starving, store 0 to
//! `held` (Release), [`fence::light`] (a compiler barrier), read `state`
//! again, and call `wake_one` only if waiters are counted with nobody
//! awake. No locked instruction. (Starvation mode, a double unlock, or a
//! process without `membarrier` take `unlock_slow`: the handoff, the fatal
//! error, or the same release as a `swap`, a full barrier.)
//!
//! Lock (slow path), looping on fresh reads of `held` and `state`:
//! 1. If the lock is held in normal mode and spinning can help
//!    (`spin.rs`), spin a round; first try to set `WOKEN` (if waiters exist
//!    and it is clear) so the coming unlock does not wake a sleeper we would
//!    race with.
//! 2. If `held` is 0, CAS it to 1; on success clear `WOKEN` if it is ours;
//!    done.
//! 3. Otherwise count ourselves a waiter in `state` (CAS): set `STARVING` if
//!    we have starved, clear `WOKEN` if it is ours.
//! 4. [`fence::heavy`] (`membarrier`), then read `held` again: the holder we
//!    saw may have released the lock before our count was visible to it.
//!    If it is free: in normal mode do the unlocker's duty, `wake_one`
//!    (possibly waking ourselves); if starving, CAS `held` to 1 and keep the
//!    lock as a handoff (step 6).
//! 5. Sleep on `sema` (at the front if we waited before).
//! 6. Woken with `STARVING` set: we were handed the lock (`held` is still
//!    1). Stop counting as a waiter and leave starvation mode if we are the
//!    last waiter or did not starve; done. Otherwise we were woken to
//!    compete and own `WOKEN`: loop.
//!
//! `wake_one`: unless no waiter is counted, `WOKEN` or `STARVING` is set,
//! or `held` is 1 (its holder will wake at its unlock), CAS `state` to one
//! waiter fewer with `WOKEN` set and release one permit on `sema` (wakes
//! the front waiter, or banks the permit for the one about to sleep).
//!
//! Unlock in starvation mode: release with handoff (the front waiter gets
//! the permit directly) and yield (Go's `goyield`) so it runs now.
//!
//! # Why no wakeup is lost
//!
//! The unlocker stores `held` and then reads `state`; a waiter counts itself
//! in `state` and then reads `held`: Dekker's pattern. The unlocker's side
//! has no fence instruction, the waiter's side has `membarrier`, which runs
//! a full barrier on every running thread (`fence.rs`). So either the
//! waiter sees `held == 0` (and wakes somebody itself, or takes the starving
//! lock), or the unlocker sees the count (and wakes somebody unless
//! somebody is awake already). An awake waiter is itself in the loop and
//! goes through step 4 before it sleeps. A holder that took the lock after
//! the waiter's count reads `state` after its own locked CAS, so it sees
//! the count.
//!
//! A waiter may set `STARVING` just after the holder's first read of `state`,
//! so that the holder releases in normal mode. Two cases, by Dekker again:
//! - the waiter's step 4 sees `held == 0`: it takes the free lock itself, or
//!   whoever took it first sees `STARVING` at its unlock and hands off;
//! - it sees `held == 1` and sleeps: then the holder's read after its release
//!   sees `STARVING`, takes the lock back if it is still free, and unlocks
//!   again, now handing off (`reclaim_for_handoff`). Without that step the
//!   waiter slept on a free lock until some other goroutine happened to lock
//!   it (Go's single-word unlock reads the flag in the same atomic add).
//!
//! # Invariants
//!
//! - `held` is set to 1 by exactly one party at a time (a successful CAS);
//!   in starvation mode it stays 1 across a handoff, and the receiver of
//!   the permit owns the lock.
//! - `STARVING` is set only by the waiter that owned `WOKEN` (only a woken
//!   waiter can have starved), in the same CAS that gives `WOKEN` up; it is
//!   cleared only by an owner of the lock. So a `sema` permit taken while
//!   `STARVING` is set is always a handoff.
//! - `WOKEN` is owned by at most one goroutine; whoever set it, or the
//!   waiter it was set for, clears it.
//! - The waiter count is at least the number of entries queued on `sema`
//!   (it is incremented before queueing, decremented by the waker).
//!
//! # Measured (`benches/mutex.rs` beside `ci/go/mutex`, 2 cores, 2 Ps)
//!
//! Issue 3's bar: 4 goroutines × 1M lock/increment/unlock on 2 Ps, at
//! least 1.5× Go 1.19 (ns per pair), both measured in one run. Command:
//! `cargo bench --bench mutex -- go-shape` (Go's program: 7 rounds of
//! 4 × 1M, median) strictly interleaved with `ci/go/mutex`'s binary. The
//! machine is shared with other builds, so single figures swing by 2×.
//!
//! Where the time went before this design (`perf record -e cpu-clock`):
//! nearly all of it on the lock word's cache line. A locked RMW costs
//! ~12 ns here even uncontended (a C loop: CAS + `xadd` 25 ns per pair,
//! CAS + plain store 14 ns). With Go's single word, once a waiter is
//! counted the word is never 0, so every lock took the failed fast-path
//! CAS, `lock_slow`'s CAS and the unlock's `xadd`: three locked RMWs,
//! ~37 ns, even with the lock staying on one CPU. Go pays the same.
//!
//! | interleaved run (medians of 7 rounds) | Go | goro, one word | goro, split word |
//! |---|---|---|---|
//! | 1 | 77.9 | 70.8 | 40.0 |
//! | 2 | 52.3 | 53.5 | 26.9 |
//! | 3 | 53.3 | 52.2 | 19.1 |
//! | 4 (a later session) | 55.1 | 48.9 | 31.4 |
//! | 5 | 50.5 | 55.3 | 28.9 |
//! | 6 | 44.7 | 56.0 | 23.2 |
//! | 7 | 59.0 | 46.9 | 24.2 |
//!
//! (ns per pair.) Runs 4–7: Go 52.8, goro 26.6 (median of the medians), so
//! 1.99× Go; each run alone 1.75–2.44×. The single-word version stayed at
//! parity (52.1).
//! The cost: each sleep pays a `membarrier` (1–7 µs with the other CPU
//! busy). Go's RWMutex hammer stress test (`tests/sync_rwlock.rs`,
//! `stress_rwlock_hammer`, whose writers park on this mutex around 3–5 µs
//! critical sections) went from 27.5 s to 34 s, interleaved A/B, 2 runs
//! each. Locks whose waiters sleep on most acquisitions pay it; locks taken
//! often and briefly win.
//!
//! Rejected (measured, or shown unsound):
//! - **Go's single word** (the previous version of this file): three
//!   locked RMWs per pair under contention (above); at parity with Go.
//! - **Ready the woken waiter on the unlocker's P without `wakep`** (so
//!   the second P stays asleep and the lock stays on one CPU; needs a hook
//!   in `sched`). With the split word: 23.9, 25.8, 30.2 ns in the runs
//!   above, no better than with `wakep` (40.0, 26.9, 19.1); with the single
//!   word it used one CPU but still cost ~40 ns, the three RMWs. It also
//!   leaves a woken waiter queued behind an unlocker that keeps its CPU
//!   until preemption (10 ms) while another P idles
//!   (`tests/sync_mutex.rs`, `a_woken_waiter_runs_while_its_unlocker_keeps_
//!   the_cpu`). Not kept.
//! - **A byte store into Go's single word** (Linux's qspinlock unlock):
//!   the same saving, but racing mixed-size atomics on one location are
//!   undefined in Rust's memory model.
//! - **An `mfence` on the unlocker's side** instead of `membarrier`: as
//!   costly as the locked RMW it replaces.
//! - **Fencing only the first waiter** (count 0 → 1): loses a wakeup when
//!   an awake waiter gives up `WOKEN` and sleeps while the holder's release
//!   is still in its store buffer; every sleep fences.
//! - **Lock fast path as load + CAS from the loaded word** (single word):
//!   in a C model, 54 vs 43 ns with the word at 0 and 84 vs 56 ns with two
//!   threads contending.
//! - **No spinning** (`ACTIVE_SPIN = 0`) and **8-PAUSE rounds** (single
//!   word): lost 2.3× when both CPUs were ours. Go's rule and constants are
//!   kept.

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use super::fence;
use super::sema::Sema;
use super::spin::{can_spin, spin};
use crate::sched::WaitReason;

/// `state` bits (the lock bit itself is the separate word `held`).
const WOKEN: u32 = 1 << 1;
const STARVING: u32 = 1 << 2;
const WAITER_SHIFT: u32 = 3;
const ONE_WAITER: u32 = 1 << WAITER_SHIFT;

/// How long a waiter waits before it switches the mutex to starvation
/// mode (Go's `starvationThresholdNs`).
pub(crate) const STARVATION_THRESHOLD: Duration = Duration::from_millis(1);

/// Go's mutex, without the value it protects.
pub(crate) struct RawMutex {
    /// 1 while somebody holds the lock, or while it is being handed to a
    /// waiter in starvation mode; 0 when free.
    held: AtomicU32,
    /// `WOKEN | STARVING | waiters << WAITER_SHIFT` (module doc).
    state: AtomicU32,
    sema: Sema,
}

impl RawMutex {
    pub(crate) const fn new() -> RawMutex {
        RawMutex {
            held: AtomicU32::new(0),
            state: AtomicU32::new(0),
            sema: Sema::new(),
        }
    }

    /// Takes the lock, parking (with `reason`) while another holds it.
    #[inline]
    pub(crate) fn lock(&self, reason: WaitReason) {
        // Whatever the waiter count: one locked RMW.
        if self
            .held
            .compare_exchange(0, 1, Ordering::Acquire, Ordering::Relaxed)
            .is_err()
        {
            self.lock_slow(reason);
        }
    }

    /// Takes the lock if it is free (in starvation mode it never is: the
    /// unlocker hands it over without clearing `held`).
    pub(crate) fn try_lock(&self) -> bool {
        self.held.load(Ordering::Relaxed) == 0
            && self
                .held
                .compare_exchange(0, 1, Ordering::Acquire, Ordering::Relaxed)
                .is_ok()
    }

    /// Whether some party holds the lock (or it is being handed over).
    pub(crate) fn is_locked(&self) -> bool {
        self.held.load(Ordering::Relaxed) != 0
    }

    /// Releases the lock.
    ///
    /// # Safety
    /// The caller holds the lock (a guard being dropped).
    #[inline]
    pub(crate) unsafe fn unlock(&self) {
        // Starvation mode (the owner's handoff: `held` stays 1), a double
        // unlock, or no membarrier: the slow path.
        if self.state.load(Ordering::Relaxed) & STARVING != 0
            || self.held.load(Ordering::Relaxed) == 0
            || !fence::light_ok()
        {
            return self.unlock_slow();
        }
        self.held.store(0, Ordering::Release);
        // Dekker with the parking waiter's `fence::heavy` (module doc).
        fence::light();
        self.after_release(self.state.load(Ordering::Relaxed));
    }

    /// The unlocker's duty once `held` is 0, given `state` read after the
    /// release: wake a waiter to compete, or, if the mutex went into
    /// starvation mode since the unlocker's first read, see that the
    /// starving waiter gets the lock.
    #[inline]
    fn after_release(&self, state: u32) {
        if state >= ONE_WAITER && state & (WOKEN | STARVING) == 0 {
            self.wake_one();
        } else if state & STARVING != 0 {
            self.reclaim_for_handoff();
        }
    }

    /// A waiter set `STARVING` between our first read of `state` and our
    /// release, saw `held` still 1 and went to sleep: nobody else will wake
    /// it (the next locker might never come). Take the lock back if it is
    /// still free and unlock it again, which now hands it off. If somebody
    /// took it first (the starving waiter itself in step 4, or a newcomer),
    /// their unlock hands off. If `STARVING` was cleared meanwhile, the
    /// second unlock is a normal one.
    #[cold]
    fn reclaim_for_handoff(&self) {
        if self
            .held
            .compare_exchange(0, 1, Ordering::Acquire, Ordering::Relaxed)
            .is_ok()
        {
            // SAFETY: we hold the lock again (the CAS just above).
            unsafe { self.unlock() };
        }
    }

    #[cold]
    fn unlock_slow(&self) {
        if self.held.load(Ordering::Relaxed) == 0 {
            fatal("sync: unlock of unlocked mutex");
        }
        if self.state.load(Ordering::Relaxed) & STARVING != 0 {
            // Only the owner clears STARVING, so it is still set: hand the
            // lock (`held` stays 1) to the front waiter and let it run now.
            // Not while pinned by `preempt::disable()`, where a switch is
            // fatal, nor while unwinding (a switch could move the panic to
            // another thread's count): the waiter runs a little later.
            if self.sema.release(true) && !crate::preempt::pinned() && !std::thread::panicking() {
                crate::sched::yield_now();
            }
            return;
        }
        // No membarrier: a full barrier between the release and the read.
        if self.held.swap(0, Ordering::SeqCst) == 0 {
            fatal("sync: unlock of unlocked mutex");
        }
        self.after_release(self.state.load(Ordering::SeqCst));
    }

    /// Wakes the front waiter to compete for the lock, unless the lock is
    /// held (its holder's unlock will), someone is awake already, or the
    /// mutex is starving (handoffs are the holder's).
    #[cold]
    fn wake_one(&self) {
        let mut old = self.state.load(Ordering::SeqCst);
        loop {
            if old >> WAITER_SHIFT == 0
                || old & (WOKEN | STARVING) != 0
                || self.held.load(Ordering::SeqCst) != 0
            {
                return;
            }
            let new = (old - ONE_WAITER) | WOKEN;
            match self
                .state
                .compare_exchange(old, new, Ordering::SeqCst, Ordering::SeqCst)
            {
                Ok(_) => {
                    self.sema.release(false);
                    return;
                }
                Err(now) => old = now,
            }
        }
    }

    #[cold]
    fn lock_slow(&self, reason: WaitReason) {
        let mut wait_start: Option<Instant> = None;
        let mut starving = false;
        let mut awake = false;
        let mut round = 0;
        loop {
            let held = self.held.load(Ordering::Relaxed);
            let old = self.state.load(Ordering::Relaxed);
            // 1. Spin while a running holder may release the lock soon
            //    (never in starvation mode: the lock goes to a waiter).
            if held != 0 && old & STARVING == 0 && can_spin(round) {
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
                continue;
            }
            // 2. Free: take it (a newcomer may barge in normal mode).
            if held == 0 {
                if self
                    .held
                    .compare_exchange(0, 1, Ordering::Acquire, Ordering::Relaxed)
                    .is_ok()
                {
                    if awake {
                        self.give_up_woken();
                    }
                    return;
                }
                continue;
            }
            // 3. Held: count ourselves a waiter (and mark the mutex starving
            //    if we have starved; give up WOKEN if it is ours).
            let mut new = old + ONE_WAITER;
            if starving {
                new |= STARVING;
            }
            if awake {
                if new & WOKEN == 0 {
                    fatal("sync: inconsistent mutex state (WOKEN lost)");
                }
                new &= !WOKEN;
            }
            if self
                .state
                .compare_exchange(old, new, Ordering::SeqCst, Ordering::Relaxed)
                .is_err()
            {
                continue;
            }
            // 4. The holder we saw may have released the lock without seeing
            //    our count (its unlock has no fence): look again.
            fence::heavy();
            if self.held.load(Ordering::SeqCst) == 0 {
                if self.state.load(Ordering::SeqCst) & STARVING != 0 {
                    // Starving with the lock free (its holder released it
                    // just before STARVING was set): take it as a handoff.
                    if self
                        .held
                        .compare_exchange(0, 1, Ordering::Acquire, Ordering::Relaxed)
                        .is_ok()
                    {
                        self.take_handoff(starving);
                        return;
                    }
                } else {
                    // Do the unlocker's duty: wake somebody (maybe us).
                    self.wake_one();
                }
            }
            // 5. Sleep.
            let lifo = wait_start.is_some();
            let start = *wait_start.get_or_insert_with(Instant::now);
            self.sema.acquire(lifo, reason);
            starving = starving || start.elapsed() > STARVATION_THRESHOLD;
            if self.state.load(Ordering::Acquire) & STARVING != 0 {
                // Handed the lock (`held` is still 1).
                self.take_handoff(starving);
                return;
            }
            awake = true;
            round = 0;
        }
    }

    /// We own the lock in starvation mode and are still counted as a waiter:
    /// stop counting, and leave starvation mode if we are the last waiter or
    /// did not starve (Go's rule).
    fn take_handoff(&self, starving: bool) {
        let old = self.state.load(Ordering::Acquire);
        if old & WOKEN != 0 || old >> WAITER_SHIFT == 0 || old & STARVING == 0 {
            fatal("sync: inconsistent mutex state (starving handoff)");
        }
        let mut delta = 0u32.wrapping_sub(ONE_WAITER);
        if !starving || old >> WAITER_SHIFT == 1 {
            delta = delta.wrapping_sub(STARVING);
        }
        self.state.fetch_add(delta, Ordering::Acquire);
    }

    /// A woken (or spinning) waiter took the lock: clear the WOKEN it owns.
    fn give_up_woken(&self) {
        let old = self.state.fetch_and(!WOKEN, Ordering::Relaxed);
        if old & WOKEN == 0 {
            fatal("sync: inconsistent mutex state (WOKEN lost)");
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

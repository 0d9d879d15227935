//! When the io_uring netpoller's work is spread over idle Ps: at once only
//! if no P is running; otherwise once the running Ms have not run out of
//! queued work for [`SPREAD_AFTER`].
//!
//! # Why
//!
//! Go wakes an idle P for every batch the netpoller readies
//! (`injectglist`), and a spinning M that finds work wakes the next spinner
//! (`resetspinning`). For a network server whose goroutines run a few µs
//! per readiness edge, that keeps every P half busy: each M takes part of a
//! batch, runs dry, spins, sleeps, and is woken again by the next batch.
//! Every round costs a futex wake (about 10 µs of CPU on both sides and
//! 15–35 µs of latency, DESIGN §5), cross-CPU cache traffic on the sockets
//! and buffers, and, on a machine the load generator shares, CPU taken from
//! the client. One M would have finished the batch before the second woke.
//!
//! A throwaway build that never spread netpoll work while a P ran showed
//! the cost: one M ran the echo example at 100 connections for 5.5–6.5
//! CPU-µs per round trip against 6.2–6.8 for Go's rule, and
//! redis-benchmark's share of a CPU against the kv example rose from 86–87 %
//! to 98 % (involuntary switches 0.046–0.086 → 0.003–0.009 per request). At
//! 10,000 connections it was worse (10.97/11.17 against 10.03/10.40 µs): there
//! the backlog does not drain and a second P pays. Hence a rule that spreads
//! only when the work outgrows the running Ms.
//!
//! # The rule
//!
//! The io_uring netpoller thread readies each batch onto the global queue
//! (`netpoll::ready_batch`), then:
//!
//! 1. If every P is idle it calls `wakep_global`, as Go does: nothing else
//!    would run the batch.
//! 2. Otherwise it wakes nobody: a running M takes the batch from the global
//!    queue as soon as its own queue is empty (`next_local`). It starts
//!    watching the backlog: [`Idle::backlog_since`](super::idle::Idle) =
//!    now, unless a backlog is already watched.
//! 3. An M that runs out of local and global work clears `backlog_since`
//!    ([`ran_dry`]): the running Ms caught up.
//! 4. While a backlog is watched, a spinning M that finds work does not wake
//!    the next spinner ([`chain_wake_allowed`]); the netpoller thread has
//!    taken that decision over.
//! 5. Once the backlog is [`SPREAD_AFTER`] old, the netpoller thread (which
//!    bounds its wait by that time: the `Handler`'s recall) looks at the
//!    queues: if goroutines are still queued, globally or on any P, it calls
//!    `wakep_global` and watches for another `SPREAD_AFTER`; if not, it stops
//!    watching. So under a sustained backlog one more P joins every
//!    `SPREAD_AFTER`, and every P is busy within `procs × SPREAD_AFTER`.
//!
//! # Liveness
//!
//! A batch readied while some P is running waits at most `SPREAD_AFTER`
//! (plus the netpoller thread's wake-up) longer than under Go's rule, even
//! if the running goroutine never yields: step 5 runs on the netpoller
//! thread, not on the busy M. The same step closes the race in step 2 where
//! the one running M, having looked at the global queue before our push,
//! goes idle while we read its P as busy.
//!
//! Only the netpoller thread's batches are watched. Spawns, channel and
//! timer wake-ups keep Go's eager `wakep` (a CPU-bound fan-out spreads at
//! once), and so do the Ms that reap epoll readiness themselves (they hold
//! a P and run the first G; step 5 has no thread to run it).
//!
//! # Measured
//!
//! `/work/scratch/ab3.sh` (Go's loadgen, echo, 64 B, `--procs 2`, 4 s runs)
//! and `wrk_ab2.sh` (`wrk -t1`, 5 s), interleaved with the `a74fe1c` build
//! and Go; the window was an environment variable in the measuring build.
//!
//! - **50 µs**: worse at 100 connections (9.05/9.32/8.07 against
//!   7.14/8.33/6.41 CPU-µs per round trip). The netpoller thread's recalls
//!   tripled its sleeps (0.157 against 0.054 per round trip), and the
//!   backlog rarely drained within 50 µs, so the second P was woken anyway.
//! - **200 µs**: worse too (6.23/6.98/7.74 against 5.12/6.36/7.18).
//! - **1 ms** (kept): at 100 connections 4.91, 6.07, 5.45, 4.44, 5.03, 5.77
//!   against 5.12, 6.36, 7.18, 5.52, 7.31, 5.77 (Go 7.82, 8.04, 7.34, 7.22,
//!   6.39, 7.44); wrk -c1000 102.7k and 115.6k requests/s against 88.9k and
//!   102.1k (Go 61.1k, 52.3k), 8.99/8.13 CPU-µs per request against
//!   10.23/9.08. At 10,000 connections mixed: 11.79 against 11.81, and 12.61
//!   (p99 203 ms) against 10.27 (157 ms). kv within noise.
//!
//! # Rejected
//!
//! - **Never spreading netpoll work while a P runs** (the first throwaway
//!   build): the 10,000-connection loss above, and a goroutine queued behind
//!   a CPU-bound one waited for its preemption (10 ms).
//! - **Counting queued goroutines** instead of time: how long a batch takes
//!   depends on what its goroutines do, which the scheduler cannot see.

use std::sync::atomic::{fence, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

use super::idle::wakep_global;
use super::shared::Shared;
use super::timers;

/// How long a backlog of netpoller work may go without the running Ms
/// running dry before another P is woken (rule step 5), in ns: 1 ms. The
/// module doc has the windows measured (50 µs, 200 µs and 1 ms); a tenth
/// of the preemption slice, so a goroutine queued behind a CPU-bound one
/// waits far less than the slice that preempts it.
pub(crate) const SPREAD_AFTER: u64 = 1_000_000;

/// The netpoller thread's side of the rule: which runtime it watches.
#[derive(Default)]
pub(crate) struct Watch {
    shared: Option<Weak<Shared>>,
}

impl Watch {
    /// Rule steps 1 and 2, after a batch was pushed to `shared`'s global
    /// queue by the netpoller thread.
    pub(crate) fn after_batch(&mut self, shared: &Arc<Shared>) {
        let idle = &shared.idle;
        // Pairs with the fence of an M that stops spinning and looks at the
        // queues once more (`sched/mod.rs` step 5), as in `wakep_global`:
        // either we see its P idle, or it sees the batch.
        fence(Ordering::SeqCst);
        if idle.npidle.load(Ordering::SeqCst) == shared.config.procs {
            wakep_global(shared);
        }
        if idle.backlog_since.load(Ordering::Relaxed) == 0 {
            idle.backlog_since
                .store(timers::now().max(1), Ordering::Relaxed);
        }
        if self
            .shared
            .as_ref()
            .is_none_or(|watched| !std::ptr::eq(watched.as_ptr(), Arc::as_ptr(shared)))
        {
            self.shared = Some(Arc::downgrade(shared));
        }
    }

    /// Rule step 5, on every call of the netpoller's handler: returns how
    /// soon the handler must be called again (`None`: no backlog watched).
    pub(crate) fn check(&mut self) -> Option<Duration> {
        let shared = self.shared.as_ref()?.upgrade()?;
        let idle = &shared.idle;
        let since = idle.backlog_since.load(Ordering::Relaxed);
        if since == 0 {
            return None;
        }
        let now = timers::now();
        let age = now.saturating_sub(since);
        if age < SPREAD_AFTER {
            return Some(Duration::from_nanos(SPREAD_AFTER - age));
        }
        if queued(&shared) {
            wakep_global(&shared);
            idle.backlog_since.store(now.max(1), Ordering::Relaxed);
            return Some(Duration::from_nanos(SPREAD_AFTER));
        }
        // An M may have cleared it meanwhile; either way nothing is queued.
        idle.backlog_since.store(0, Ordering::Relaxed);
        None
    }
}

/// Goroutines wait in the global queue or in some P's local queue.
fn queued(shared: &Shared) -> bool {
    !shared.injector.is_empty() || shared.stealers.iter().any(|stealer| !stealer.is_empty())
}

/// Rule step 3: an M found no local or global work.
pub(crate) fn ran_dry(shared: &Shared) {
    let since = &shared.idle.backlog_since;
    // Load first: the common case (nothing watched) writes nothing.
    if since.load(Ordering::Relaxed) != 0 {
        since.store(0, Ordering::Relaxed);
    }
}

/// Rule step 4: whether a spinner that found work may wake the next one.
pub(crate) fn chain_wake_allowed(shared: &Shared) -> bool {
    shared.idle.backlog_since.load(Ordering::Relaxed) == 0
}

//! Deadlock detection (Go's `checkdead`): when no goroutine can ever run
//! again, print `fatal error: all goroutines are asleep - deadlock!` and
//! exit with status 2, as Go does.
//!
//! # When it is a deadlock
//!
//! The last M to go idle checks, under the sched lock (so every other M
//! stays asleep meanwhile), that nothing could ever wake a goroutine:
//! 1. every M is idle and every P is idle, and no run queue holds a G;
//! 2. no timer is pending (a sleeping goroutine will wake: not a deadlock);
//! 3. the netpoller was never started (a goroutine parked on a socket may
//!    be woken by the network; Go's "no netpoll waiters", conservatively);
//! 4. some goroutine is alive (parked);
//! 5. no thread outside the runtime can wake one: every thread of the
//!    process is either this runtime's M or blocked, with no deadline, in a
//!    goro wait (`FOREIGN_BLOCKED`; `goro::run`'s main thread waiting for
//!    the main goroutine is one). Go has no foreign threads; goro must
//!    assume any other thread (a signal handler thread, another runtime, the
//!    test harness) might send on a channel, so it stays silent then.
//!
//! Each condition is stable once all hold — nobody is left to change one —
//! and each check is conservative: a check that misreads a racing change
//! can only miss a deadlock, never report a false one. For condition 5
//! that needs a thread to count itself only once it is committed to
//! sleeping (`waiter.rs`, `FOREIGN_BLOCKED`): counted from the moment it
//! created its waiter, a thread about to find its condition already true
//! was once taken for blocked. The thread count comes from
//! `/proc/self/task`, read only when 1–4 hold, which in a correct program
//! means "idle until a foreign thread acts": rare.
//!
//! A count that does not match may be a moment's: a helper thread starting
//! or stopping, or a foreign thread on its way out after waking a
//! goroutine. So the M looks again, 1 ms apart, 10 times
//! ([`SETTLE_TRIES`]), from its idle sleep: on the idle list, without the
//! sched lock, so a waker can still hand it a P and start nobody new.
//! (It used to sleep between looks under the sched lock, so every idle
//! moment of a program fed by a foreign thread stalled every waker, and
//! sysmon's handoffs, for up to 10 ms.) After those it keeps looking, twice
//! as far apart each time up to once a second ([`look_again_after`]), for as
//! long as it stays unsure: a foreign thread still at work may block for
//! good at any later moment (a `join` after a long computation), and then
//! no other event would ever run the check again. An idle runtime beside a
//! busy foreign thread thus wakes one M once a second.
//!
//! Condition 2 counts live timers only: a stopped timer's entry stays in its
//! heap until it surfaces (or a purge), and a stopped one-hour timer used to
//! put the report off by an hour (as in Go before 1.23). The heaps are only
//! `try_lock`ed here, under the sched lock; a heap that is busy counts as
//! live. One consequence, as in Go since 1.23: a dead entry may hold a
//! channel's last `Sender` (a dropped `Timer` whose receiver was cloned),
//! whose drop would have disconnected that channel when the entry surfaced;
//! a goroutine waiting on it is reported now rather than woken with
//! `Err(Closed)` an hour later.
//!
//! # Rejected alternatives
//!
//! - **A watchdog timeout** ("nothing ran for N seconds"): a program idle on
//!   purpose is not deadlocked, and a real deadlock would be reported late.
//! - **Reporting without the thread check**: an embedding program whose own
//!   thread feeds a channel would be killed while it is merely slow.

use std::fmt::Write as _;
use std::sync::atomic::Ordering;

use super::g::Status;
use super::shared::Shared;
use super::timers;
use super::waiter::FOREIGN_BLOCKED;

/// How many times the last idle M looks at the thread count 1 ms apart,
/// before it spaces its looks out ([`look_again_after`]).
pub(crate) const SETTLE_TRIES: u32 = 10;

/// How long the last idle M sleeps before its `looks`-th look: 1 ms for the
/// first [`SETTLE_TRIES`], then doubling, up to 1 s.
pub(crate) fn look_again_after(looks: u32) -> u64 {
    const FIRST: u64 = 1_000_000;
    const MOST: u64 = 1_000_000_000;
    let doublings = looks.saturating_sub(SETTLE_TRIES).min(10);
    (FIRST << doublings).min(MOST)
}

/// What [`check`] found, when it did not exit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// Something can still run: not a deadlock.
    Live,
    /// Conditions 1–4 hold but the thread count does not match: a foreign
    /// thread may be at work, or a helper thread is starting or stopping.
    /// The caller looks again after [`look_again_after`], without holding
    /// the sched lock in between (it used to sleep under it, stalling every
    /// waker for up to 10 ms).
    Unsure,
}

/// Called by the last M going idle, under the sched lock, with the number of
/// M threads this runtime has. Exits the process if it is deadlocked.
pub(crate) fn check(shared: &Shared, m_threads: usize) -> Verdict {
    // Cheapest first: `any_live` may walk a heap of stopped timers.
    if shared.is_stopping()
        || shared.netpoll.get().is_some()
        || shared.any_work()
        || shared.live_goroutines() == 0
        || timers::any_live(shared)
    {
        return Verdict::Live;
    }
    // The runtime's helper threads (sysmon, diagnostics) are counted from
    // just after they are spawned until just before they are told to stop:
    // never while one might be gone, else a helper that has exited but is
    // still counted and a running foreign thread nobody counts would add
    // up to a false report. The count can be short for a moment while one
    // starts or stops (then it does not match: unsure), and a foreign
    // thread that just woke a goroutine may be on its way out.
    let blocked = FOREIGN_BLOCKED.load(Ordering::SeqCst);
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return Verdict::Live;
    };
    let sysmon = usize::from(shared.sysmon.is_counted());
    // `blocked` may have wrapped for a moment (`waiter.rs`): wrapping sums.
    let expected = m_threads
        .wrapping_add(blocked)
        .wrapping_add(sysmon)
        .wrapping_add(crate::diag::helper_threads());
    if tasks.count() == expected {
        report(shared);
    }
    Verdict::Unsure
}

/// Prints Go's message and the parked goroutines, and exits with status 2.
fn report(shared: &Shared) -> ! {
    let mut message = String::from("fatal error: all goroutines are asleep - deadlock!\n");
    // `all_gs` is taken before the sched lock elsewhere (HACKING.md), and
    // we hold the sched lock: only try it.
    if let Ok(all) = shared.all_gs.try_lock() {
        for g in all.iter().filter(|g| g.status() == Status::Waiting) {
            let _ = write!(
                message,
                "\ngoroutine {} [{}]:\n",
                g.id(),
                g.wait_reason().as_str()
            );
        }
    }
    crate::sys::write_stderr(message.as_bytes());
    std::process::exit(2);
}

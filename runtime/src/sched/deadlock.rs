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
//! can only miss a deadlock, never report a false one. The thread count
//! comes from `/proc/self/task`, read only when 1–4 hold, which in a
//! correct program means "idle until a foreign thread acts": rare.
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
use super::timers::{self, NEVER};
use super::waiter::FOREIGN_BLOCKED;

/// Called by the last M going idle, under the sched lock, with the number of
/// M threads this runtime has. Exits the process if it is deadlocked.
/// Looks at the thread count this many times, 1 ms apart (see `check`).
const SETTLE_TRIES: usize = 10;

pub(crate) fn check(shared: &Shared, m_threads: usize) {
    if shared.is_stopping()
        || timers::earliest(shared) != NEVER
        || shared.netpoll.get().is_some()
        || shared.any_work()
        || shared.live_goroutines() == 0
    {
        return;
    }
    // The runtime's helper threads (sysmon, diagnostics) are counted from
    // just before they are spawned until just after they are joined, so the
    // count can be off for a moment while one starts or stops: look a few
    // times before calling it a foreign thread at work.
    for attempt in 0..SETTLE_TRIES {
        let blocked = FOREIGN_BLOCKED.load(Ordering::SeqCst);
        let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
            return;
        };
        let sysmon = usize::from(shared.sysmon.is_counted());
        if tasks.count() == m_threads + blocked + sysmon + crate::diag::helper_threads() {
            report(shared);
        }
        if attempt + 1 < SETTLE_TRIES {
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
    }
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

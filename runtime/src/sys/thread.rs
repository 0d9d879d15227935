//! Threads seen from outside: another thread's CPU clock, a signal to one
//! thread, and the process-wide memory barrier sysmon pairs with the Ms'
//! plain stores (`sched/sysmon.rs`).

use std::io;

/// The clock id of the calling thread's CPU time, which other threads may
/// read with [`clock_nanos`].
pub fn thread_cpu_clock() -> io::Result<libc::clockid_t> {
    let mut clock: libc::clockid_t = 0;
    // SAFETY: `pthread_self` is the calling thread; `clock` is writable.
    let rc = unsafe { libc::pthread_getcpuclockid(libc::pthread_self(), &mut clock) };
    if rc == 0 {
        Ok(clock)
    } else {
        Err(io::Error::from_raw_os_error(rc))
    }
}

/// The time of `clock` in nanoseconds, or `None` if it cannot be read (a
/// thread that has exited).
pub fn clock_nanos(clock: libc::clockid_t) -> Option<u64> {
    let mut now = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `now` is writable; a bad clock id is an error, not UB.
    let rc = unsafe { libc::clock_gettime(clock, &mut now) };
    (rc == 0).then(|| now.tv_sec as u64 * 1_000_000_000 + now.tv_nsec as u64)
}

/// Sends `signal` to thread `tid` of this process.
pub fn tgkill(tid: i32, signal: libc::c_int) -> io::Result<()> {
    // SAFETY: tgkill takes plain integers; a stale tid is an error (ESRCH).
    let rc = unsafe { libc::syscall(libc::SYS_tgkill, libc::getpid(), tid, signal) };
    if rc == 0 {
        Ok(())
    } else {
        Err(super::last_error())
    }
}

const MEMBARRIER_CMD_PRIVATE_EXPEDITED: libc::c_int = 1 << 3;
const MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED: libc::c_int = 1 << 4;

/// Whether [`membarrier`] may be used: registers the process on first call
/// (Linux ≥ 4.14; refused under some seccomp filters) and remembers the
/// answer. Registration takes about 14 ms here (the kernel waits for an RCU
/// grace period), so it is done off the goroutines' path: by the diagnostics
/// thread as it starts (`diag/mod.rs`), or else by the first user that needs
/// it: sysmon's blocked-M handoff or a parking `Mutex` waiter
/// (`sync/fence.rs`). Channel locks only ask [`membarrier_registered`].
pub fn membarrier_ready() -> bool {
    *MEMBARRIER_READY.get_or_init(|| match membarrier_register() {
        Ok(()) => true,
        Err(error) => {
            tracing::debug!(
                %error,
                "goro: no membarrier; only blocking() hands Ps off, and Mutex unlock fences"
            );
            false
        }
    })
}

/// [`membarrier_ready`]'s answer, once known.
static MEMBARRIER_READY: std::sync::OnceLock<bool> = std::sync::OnceLock::new();

/// Whether the process is already registered for [`membarrier`], without
/// registering it (nor waiting for a registration in progress): for hot
/// paths that may use it only once someone else has paid the ~14 ms
/// (`util/biased_lock.rs`).
#[inline]
pub fn membarrier_registered() -> bool {
    MEMBARRIER_READY.get() == Some(&true)
}

/// Registers the process for [`membarrier`]. Use [`membarrier_ready`].
fn membarrier_register() -> io::Result<()> {
    // SAFETY: the membarrier command takes no pointers.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_membarrier,
            MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED,
            0,
            0,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(super::last_error())
    }
}

/// A full memory barrier on every running thread of this process: when it
/// returns, every store another thread made before its own barrier point is
/// visible to the caller. Requires `membarrier_register`.
pub fn membarrier() -> io::Result<()> {
    // SAFETY: the membarrier command takes no pointers.
    let rc = unsafe { libc::syscall(libc::SYS_membarrier, MEMBARRIER_CMD_PRIVATE_EXPEDITED, 0, 0) };
    if rc == 0 {
        Ok(())
    } else {
        Err(super::last_error())
    }
}

/// Lowers the calling thread's timer slack to `nanos`, so short sleeps
/// (sysmon's 20 µs) are not stretched to the default 50 µs.
pub fn set_timer_slack(nanos: u64) {
    // SAFETY: PR_SET_TIMERSLACK takes a plain integer.
    unsafe { libc::prctl(libc::PR_SET_TIMERSLACK, nanos as libc::c_ulong, 0, 0, 0) };
}

/// Whether thread `tid` of this process is runnable ('R' in
/// `/proc/self/task/TID/stat`), as opposed to sleeping in the kernel; `None`
/// if the file cannot be read. About 10 µs: for rare confirmations only.
pub fn is_runnable(tid: i32) -> Option<bool> {
    let stat = std::fs::read(format!("/proc/self/task/{tid}/stat")).ok()?;
    // The state letter follows the command name, which is in parentheses
    // and may itself contain ") ".
    let close = stat.iter().rposition(|&byte| byte == b')')?;
    stat.get(close + 2).map(|&state| state == b'R')
}

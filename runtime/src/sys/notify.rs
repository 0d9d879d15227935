//! System calls for the diagnostics thread (`diag/`): an eventfd a signal
//! handler can poke, `poll(2)` on two fds, errno save/restore and `raise`.
//!
//! `signal_eventfd`, `Errno`, `raise` and `signal::reset_default` are
//! async-signal-safe (no allocation, no lock): the SIGQUIT handler uses them.

use std::io;
use std::time::Duration;

/// A new non-blocking, close-on-exec eventfd.
pub fn eventfd() -> io::Result<i32> {
    // SAFETY: eventfd has no memory preconditions.
    let fd = unsafe { libc::eventfd(0, libc::EFD_CLOEXEC | libc::EFD_NONBLOCK) };
    if fd < 0 {
        return Err(super::last_error());
    }
    Ok(fd)
}

/// Adds 1 to the eventfd's counter. Async-signal-safe; errors are ignored
/// (a full counter already means "readable").
pub fn signal_eventfd(fd: i32) {
    let one: u64 = 1;
    // SAFETY: writes 8 bytes from a valid local.
    unsafe { libc::write(fd, (&one as *const u64).cast(), 8) };
}

/// Resets the eventfd's counter (non-blocking read).
pub fn drain_eventfd(fd: i32) {
    let mut value: u64 = 0;
    // SAFETY: reads 8 bytes into a valid local.
    unsafe { libc::read(fd, (&mut value as *mut u64).cast(), 8) };
}

/// Closes `fd`.
pub fn close(fd: i32) {
    // SAFETY: the caller owns `fd` and uses it no more.
    unsafe { libc::close(fd) };
}

/// Waits until `first` or `second` is readable, or `timeout`; returns which
/// are readable. EINTR counts as a timeout.
pub fn poll_two(first: i32, second: i32, timeout: Duration) -> (bool, bool) {
    let mut fds = [
        libc::pollfd {
            fd: first,
            events: libc::POLLIN,
            revents: 0,
        },
        libc::pollfd {
            fd: second,
            events: libc::POLLIN,
            revents: 0,
        },
    ];
    // Rounded up: a timeout rounded down to 0 ms would busy-poll until due.
    let millis = timeout.as_nanos().div_ceil(1_000_000).min(i32::MAX as u128) as i32;
    // SAFETY: `fds` is a valid array of two pollfds.
    let n = unsafe { libc::poll(fds.as_mut_ptr(), 2, millis) };
    if n <= 0 {
        return (false, false);
    }
    (fds[0].revents != 0, fds[1].revents != 0)
}

/// The calling thread's errno, saved so a handler can restore it.
pub struct Errno(i32);

impl Errno {
    /// Saves errno. Async-signal-safe.
    pub fn save() -> Errno {
        // SAFETY: __errno_location returns this thread's errno slot.
        Errno(unsafe { *libc::__errno_location() })
    }

    /// Restores the saved errno. Async-signal-safe.
    pub fn restore(self) {
        // SAFETY: as in `save`.
        unsafe { *libc::__errno_location() = self.0 };
    }
}

/// Sends `signal` to the calling thread. Async-signal-safe.
pub fn raise(signal: i32) {
    // SAFETY: raise has no memory preconditions.
    unsafe { libc::raise(signal) };
}

/// Whether `action` is the default disposition.
pub fn is_default(action: &libc::sigaction) -> bool {
    action.sa_sigaction == libc::SIG_DFL
}

/// Re-installs a disposition saved from `signal::install`.
pub fn restore_action(signal: i32, action: &libc::sigaction) {
    // SAFETY: `action` is a valid sigaction returned by the kernel.
    unsafe { libc::sigaction(signal, action, std::ptr::null_mut()) };
}

/// Process resident set size in bytes, from `/proc/self/statm` (one small
/// read: cheap enough to poll every second).
pub fn resident_bytes() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = text.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages * super::page_size() as u64)
}

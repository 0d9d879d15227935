//! The crate's only user of `libc`: the eventfd and epoll system calls.
//!
//! errno is read only through [`last_error`], never inlined: some of these
//! calls (`epoll_ctl` on registration) run on goroutines, and std lets LLVM
//! reuse errno's address within a function, which is wrong once a goroutine
//! can resume on another thread (the runtime's `sys` module doc has the
//! details and the failure it caused).

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// The calling thread's errno as an `io::Error`, never inlined (module doc).
#[inline(never)]
pub(crate) fn last_error() -> io::Error {
    io::Error::last_os_error()
}

/// A non-blocking, close-on-exec eventfd: the poller's doorbell.
pub(crate) struct EventFd(OwnedFd);

impl EventFd {
    pub(crate) fn new() -> io::Result<EventFd> {
        // SAFETY: eventfd has no memory preconditions.
        let fd = unsafe { libc::eventfd(0, libc::EFD_NONBLOCK | libc::EFD_CLOEXEC) };
        if fd < 0 {
            return Err(last_error());
        }
        // SAFETY: `fd` is a fresh descriptor that nothing else owns.
        Ok(EventFd(unsafe { OwnedFd::from_raw_fd(fd) }))
    }

    pub(crate) fn raw(&self) -> RawFd {
        self.0.as_raw_fd()
    }

    /// Adds one to the counter, waking whoever polls it.
    pub(crate) fn signal(&self) {
        signal_raw(self.raw());
    }
}

/// Adds one to the eventfd `fd`'s counter.
pub(crate) fn signal_raw(fd: RawFd) {
    let one: u64 = 1;
    // SAFETY: writes 8 bytes from a live u64. EAGAIN (counter saturated)
    // means a wake is pending anyway.
    unsafe { libc::write(fd, (&one as *const u64).cast(), 8) };
}

/// Resets the eventfd `fd`'s counter (non-blocking).
pub(crate) fn drain_eventfd(fd: RawFd) {
    let mut value: u64 = 0;
    // SAFETY: reads 8 bytes into a live u64; EAGAIN when already zero.
    unsafe { libc::read(fd, (&mut value as *mut u64).cast(), 8) };
}

pub(crate) fn epoll_create() -> io::Result<OwnedFd> {
    // SAFETY: no memory preconditions.
    let fd = unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) };
    if fd < 0 {
        return Err(last_error());
    }
    // SAFETY: fresh descriptor, owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

pub(crate) fn epoll_ctl(
    epoll: RawFd,
    op: i32,
    fd: RawFd,
    events: u32,
    data: u64,
) -> io::Result<()> {
    let mut event = libc::epoll_event { events, u64: data };
    // SAFETY: `event` is a live epoll_event for the duration of the call.
    let rc = unsafe { libc::epoll_ctl(epoll, op, fd, &mut event) };
    if rc < 0 {
        Err(last_error())
    } else {
        Ok(())
    }
}

/// Waits for events into `out`, returning how many arrived (0 on EINTR).
/// The timeout is kept to the nanosecond with `epoll_pwait2` (Linux 5.11);
/// where that is missing, `epoll_wait` rounds it up to whole milliseconds,
/// so a timer is never woken for early.
pub(crate) fn epoll_wait(
    epoll: RawFd,
    out: &mut [libc::epoll_event],
    timeout: Option<Duration>,
) -> io::Result<usize> {
    static NO_PWAIT2: AtomicBool = AtomicBool::new(false);
    let n = match timeout {
        Some(d) if !d.is_zero() && !NO_PWAIT2.load(Ordering::Relaxed) => {
            let spec = libc::timespec {
                tv_sec: d.as_secs().min(i64::MAX as u64) as libc::time_t,
                tv_nsec: d.subsec_nanos() as libc::c_long,
            };
            // SAFETY: `out` is a writable array of `out.len()` events and
            // `spec` a live timespec; no signal mask is passed.
            let n = unsafe {
                libc::syscall(
                    libc::SYS_epoll_pwait2,
                    epoll,
                    out.as_mut_ptr(),
                    out.len() as libc::c_int,
                    &spec as *const libc::timespec,
                    std::ptr::null::<libc::sigset_t>(),
                    0usize,
                )
            };
            if n < 0 && last_error().raw_os_error() == Some(libc::ENOSYS) {
                NO_PWAIT2.store(true, Ordering::Relaxed);
                return epoll_wait(epoll, out, timeout);
            }
            n as libc::c_int
        }
        _ => {
            let ms = match timeout {
                None => -1,
                Some(d) => d.as_nanos().div_ceil(1_000_000).min(i32::MAX as u128) as i32,
            };
            // SAFETY: `out` is a writable array of `out.len()` events.
            unsafe { libc::epoll_wait(epoll, out.as_mut_ptr(), out.len() as i32, ms) }
        }
    };
    if n < 0 {
        let error = last_error();
        if error.kind() == io::ErrorKind::Interrupted {
            return Ok(0);
        }
        return Err(error);
    }
    Ok(n as usize)
}

pub(crate) fn empty_epoll_event() -> libc::epoll_event {
    libc::epoll_event { events: 0, u64: 0 }
}

pub(crate) const EPOLLIN: u32 = libc::EPOLLIN as u32;
pub(crate) const EPOLLOUT: u32 = libc::EPOLLOUT as u32;
pub(crate) const EPOLLRDHUP: u32 = libc::EPOLLRDHUP as u32;
pub(crate) const EPOLLHUP: u32 = libc::EPOLLHUP as u32;
pub(crate) const EPOLLERR: u32 = libc::EPOLLERR as u32;
pub(crate) const EPOLLET: u32 = libc::EPOLLET as u32;
pub(crate) const EPOLL_CTL_ADD: i32 = libc::EPOLL_CTL_ADD;
pub(crate) const EPOLL_CTL_DEL: i32 = libc::EPOLL_CTL_DEL;
pub(crate) const POLLIN: u32 = libc::POLLIN as u32;
pub(crate) const POLLOUT: u32 = libc::POLLOUT as u32;
pub(crate) const POLLRDHUP: u32 = libc::POLLRDHUP as u32;
pub(crate) const POLLHUP: u32 = libc::POLLHUP as u32;
pub(crate) const POLLERR: u32 = libc::POLLERR as u32;
pub(crate) const ECANCELED: i32 = libc::ECANCELED;
pub(crate) const ENOENT: i32 = libc::ENOENT;
pub(crate) const EALREADY: i32 = libc::EALREADY;
pub(crate) const ETIME: i32 = libc::ETIME;
pub(crate) const EINTR: i32 = libc::EINTR;
pub(crate) const EBUSY: i32 = libc::EBUSY;
pub(crate) const EINVAL: i32 = libc::EINVAL;
pub(crate) const ENOMEM: i32 = libc::ENOMEM;

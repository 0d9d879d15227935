//! The only module that names `libc`: thin, typed wrappers over the system calls
//! the runtime makes (futex, mprotect, signals, thread ids).
//!
//! Every wrapper returns `io::Result` or a plain value; none allocates, so the
//! signal-handler-safe ones (`write_stderr`, `abort`, `gettid`, `signal::reset_default`)
//! may be called from a handler.
//!
//! # errno is read only through [`last_error`]
//!
//! std declares glibc's `__errno_location` `#[ffi_const]` and inlines
//! `io::Error::last_os_error()` (rust-lang/rust#139081, "std: deduplicate
//! `errno` accesses"), so LLVM may compute errno's address once per function
//! and reuse it, even hoisted out of a loop. That is sound for threads and
//! wrong for goroutines: a goroutine that parks between a system call and
//! reading errno, or between two reads, may resume on another M and read the
//! old thread's errno. It happened: with `recv` inlined into
//! `Pollable::read_stream`'s retry loop, `peer_reset_surfaces_as_an_error`
//! read ECONNRESET as EAGAIN (then parked for ever) or as EINTR (then retried,
//! and read 0 bytes), in 28 of 40 runs. [`last_error`] is `#[inline(never)]`:
//! each call asks the thread it runs on.

pub mod futex;
pub mod memory;
pub mod net;
pub mod notify;
pub mod signal;
pub mod thread;

use std::io;

/// The calling thread's errno as an `io::Error` (std's `last_os_error`),
/// never inlined, so that a goroutine never reads another thread's errno
/// (module doc). Every errno read in the runtime goes through here.
///
/// The "locks" count is raised for the read: std computes errno's address
/// (`__errno_location`, in libc, where no preemption lands) and then loads
/// from it in the program's own code, and a preemption between the two
/// would move the goroutine and have it load the old thread's errno. A
/// preemption before the count is raised is harmless: the handler carries
/// errno's value to the thread the goroutine resumes on.
#[inline(never)]
pub fn last_error() -> io::Error {
    let _section = crate::sched::locks::Section::enter();
    io::Error::last_os_error()
}

/// The system page size (4 KiB on every x86_64 Linux we target, but read once).
pub fn page_size() -> usize {
    use std::sync::OnceLock;
    static PAGE: OnceLock<usize> = OnceLock::new();
    *PAGE.get_or_init(|| {
        // SAFETY: sysconf has no preconditions.
        let size = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
        if size > 0 {
            size as usize
        } else {
            4096
        }
    })
}

/// Makes `[addr, addr + len)` inaccessible (the stack guard page).
///
/// # Safety
/// `addr` must be page-aligned and the range must lie inside a mapping that the
/// caller owns and that nothing else is using.
pub unsafe fn protect_none(addr: *mut u8, len: usize) -> io::Result<()> {
    // SAFETY: the caller guarantees the range is its own mapping.
    let rc = unsafe { libc::mprotect(addr.cast(), len, libc::PROT_NONE) };
    if rc == 0 {
        Ok(())
    } else {
        Err(last_error())
    }
}

/// The kernel's thread id of the calling thread.
pub fn gettid() -> i32 {
    // SAFETY: gettid has no preconditions and cannot fail.
    unsafe { libc::gettid() }
}

/// Writes `bytes` to standard error with raw `write(2)` calls: no lock, no
/// allocation, so it is usable from a signal handler.
pub fn write_stderr(bytes: &[u8]) {
    let mut rest = bytes;
    while !rest.is_empty() {
        // SAFETY: `rest` is a valid readable slice for its length.
        let n = unsafe { libc::write(2, rest.as_ptr().cast(), rest.len()) };
        if n <= 0 {
            if n < 0 && last_error().kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return;
        }
        rest = &rest[n as usize..];
    }
}

/// Aborts the process with SIGABRT. Async-signal-safe.
pub fn abort() -> ! {
    // SAFETY: abort has no preconditions.
    unsafe { libc::abort() }
}

/// `vm.max_map_count`, if readable.
pub fn max_map_count() -> Option<u64> {
    std::fs::read_to_string("/proc/sys/vm/max_map_count")
        .ok()
        .and_then(|text| text.trim().parse().ok())
}

//! The only module that names `libc`: thin, typed wrappers over the system calls
//! the runtime makes (futex, mprotect, signals, thread ids).
//!
//! Every wrapper returns `io::Result` or a plain value; none allocates, so the
//! signal-handler-safe ones (`write_stderr`, `abort`, `gettid`, `signal::reset_default`)
//! may be called from a handler.

pub mod futex;
pub mod memory;
pub mod net;
pub mod notify;
pub mod signal;
pub mod thread;

use std::io;

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
        Err(io::Error::last_os_error())
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
            if n < 0 && io::Error::last_os_error().kind() == io::ErrorKind::Interrupted {
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

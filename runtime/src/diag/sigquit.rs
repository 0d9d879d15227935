//! SIGQUIT: a goroutine dump on stderr, like Go's, and the process carries
//! on (unless `GORO_DEBUG=sigquit=exit`: then it exits with status 2, as Go).
//!
//! # Async-signal safety
//!
//! The handler does two things, both async-signal-safe: it writes 8 bytes
//! to an eventfd, which wakes the diagnostics thread (`diag/mod.rs`), and it
//! saves and restores errno around that write. It allocates nothing, takes
//! no lock and reads only atomics. The dump itself (which allocates and
//! locks `all_gs`) runs on the diagnostics thread.
//!
//! When no runtime is alive (all shut down) the handler restores the
//! default action and re-raises the signal, so a process that once ran a
//! runtime still quits on SIGQUIT. The handler is installed once, at the
//! first `build`, and only if SIGQUIT had its default action: an embedding
//! program's own handler is left alone.
//!
//! The eventfd is created once and never closed: closing it while a handler
//! on another thread may still be about to write to it could direct that
//! write to an unrelated file reusing the descriptor number. One fd for the
//! process lifetime is the price.
//!
//! Rejected: blocking SIGQUIT and `sigwait`ing in a dedicated thread. The
//! mask must then be set in *every* thread before it starts, including the
//! embedding program's main thread and threads created before the runtime;
//! any thread left unmasked takes the default action (core dump).

use std::sync::atomic::{AtomicBool, AtomicI32, AtomicUsize, Ordering};
use std::sync::Once;

use crate::sys::{notify, signal};

static FD: AtomicI32 = AtomicI32::new(-1);
static LIVE: AtomicUsize = AtomicUsize::new(0);
static EXIT: AtomicBool = AtomicBool::new(false);
static INSTALL: Once = Once::new();

/// Installs the handler once per process. `exit` is `GORO_DEBUG=sigquit=exit`.
pub(crate) fn install(exit: bool) {
    EXIT.store(exit, Ordering::Relaxed);
    INSTALL.call_once(|| {
        let fd = match notify::eventfd() {
            Ok(fd) => fd,
            Err(error) => {
                tracing::warn!(%error, "no eventfd: SIGQUIT goroutine dumps disabled");
                return;
            }
        };
        FD.store(fd, Ordering::Release);
        match signal::install(libc::SIGQUIT, on_sigquit, libc::SA_RESTART) {
            Ok(previous) if !notify::is_default(&previous) => {
                notify::restore_action(libc::SIGQUIT, &previous);
                tracing::debug!("SIGQUIT already handled by the program; no goroutine dump");
            }
            Ok(_) => {}
            Err(error) => tracing::warn!(%error, "cannot install the SIGQUIT handler"),
        }
    });
}

/// The eventfd the handler writes (-1 if none).
pub(crate) fn fd() -> i32 {
    FD.load(Ordering::Acquire)
}

/// How many runtimes are alive (the registry keeps it current).
pub(crate) fn set_live(runtimes: usize) {
    LIVE.store(runtimes, Ordering::Release);
}

/// Whether the process exits after a SIGQUIT dump.
pub(crate) fn exit_after_dump() -> bool {
    EXIT.load(Ordering::Relaxed)
}

extern "C" fn on_sigquit(_: libc::c_int, _: *mut libc::siginfo_t, _: *mut libc::c_void) {
    let errno = notify::Errno::save();
    if LIVE.load(Ordering::Acquire) == 0 {
        // Delivered again once this handler returns (SIGQUIT is blocked
        // while it runs), now with the default action.
        signal::reset_default(libc::SIGQUIT);
        notify::raise(libc::SIGQUIT);
    } else {
        notify::signal_eventfd(FD.load(Ordering::Acquire));
    }
    errno.restore();
}

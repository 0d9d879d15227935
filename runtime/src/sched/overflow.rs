//! Stack overflow: a SIGSEGV handler that recognises a fault in the running
//! goroutine's guard page and says so.
//!
//! The handler runs on the M's alternate signal stack (installed in
//! `m::m_main`; the goroutine's own stack is exhausted). It reads the current
//! M through its const-initialised thread-local (no allocation, no lock), the
//! running G from the M, and the G's guard range from its stack. If the fault
//! address lies in that guard page it writes
//! `goroutine N (name) overflowed its stack of K bytes` with raw `write(2)`
//! calls, formatting into a buffer on the alternate stack, and aborts
//! (SIGABRT).
//!
//! Any other SIGSEGV is not ours: it goes to the handler that was installed
//! before goro's (Rust's std has one, for thread guard pages), or, if there
//! was none, the default action is restored and the faulting instruction
//! re-executes, so a foreign segfault still kills the process with SIGSEGV.
//!
//! Everything here is async-signal-safe: no allocation, no lock; the handler
//! only reads memory owned by the interrupted M.

use std::fmt::Write as _;
use std::sync::OnceLock;

use super::m::current_m;
use crate::sys::{self, signal};

/// The SIGSEGV action in place before goro installed its own.
static PREVIOUS: OnceLock<libc::sigaction> = OnceLock::new();

/// Installs the handler once per process.
pub(crate) fn install() {
    static INSTALLED: std::sync::Once = std::sync::Once::new();
    INSTALLED.call_once(|| match signal::install(libc::SIGSEGV, on_sigsegv, 0) {
        Ok(previous) => {
            let _ = PREVIOUS.set(previous);
        }
        Err(error) => tracing::warn!(%error, "cannot install the stack-overflow handler"),
    });
}

extern "C" fn on_sigsegv(
    signum: libc::c_int,
    info: *mut libc::siginfo_t,
    context: *mut libc::c_void,
) {
    // SAFETY: the kernel passes a valid siginfo for SA_SIGINFO handlers.
    let address = unsafe { (*info).si_addr() } as usize;
    // SAFETY: a non-null current M is this thread's live M.
    if let Some(m) = unsafe { current_m().as_ref() } {
        // The running G, the one switching out (a switch sets `curg` to
        // its successor just before pushing its last words on the old
        // stack), and the one inside `blocking(f)`, whose `f` runs on its
        // stack while `curg` is empty.
        let candidates = [m.curg.get(), m.pending_g.get(), m.blocking_g.get()];
        for g in candidates.into_iter().flatten() {
            // SAFETY: all three are owned by this (interrupted) M: one is
            // Running on it, one is mid-switch on it, one is in `blocking()`
            // on it.
            if let Some(stack) = unsafe { g.stack() } {
                let (low, high) = stack.guard();
                if (low..high).contains(&address) {
                    // SAFETY: as above.
                    let name = unsafe { g.name() }.unwrap_or("unnamed");
                    report(g.id(), name, stack.usable());
                }
            }
        }
    }
    chain(signum, info, context);
}

fn report(id: u64, name: &str, size: usize) -> ! {
    let mut buffer = Buffer {
        bytes: [0; 512],
        len: 0,
    };
    let _ = write!(
        buffer,
        "goroutine {id} ({name}) overflowed its stack of {size} bytes\n\
         fatal error: stack overflow (raise it with goro::Builder::stack_size or GORO_STACK_SIZE)\n"
    );
    sys::write_stderr(&buffer.bytes[..buffer.len]);
    sys::abort()
}

/// Passes a fault that is not a goroutine overflow to the previous handler.
fn chain(signum: libc::c_int, info: *mut libc::siginfo_t, context: *mut libc::c_void) {
    let Some(previous) = PREVIOUS.get() else {
        signal::reset_default(signum);
        return;
    };
    let handler = previous.sa_sigaction;
    if handler == libc::SIG_DFL || handler == libc::SIG_IGN {
        // Returning re-executes the faulting instruction under the default
        // action: the process dies of SIGSEGV as if goro were not here.
        signal::reset_default(signum);
    } else if previous.sa_flags & libc::SA_SIGINFO != 0 {
        // SAFETY: the previous action was installed with SA_SIGINFO, so its
        // handler has this signature.
        let handler: signal::SigInfoHandler = unsafe { std::mem::transmute(handler) };
        handler(signum, info, context);
    } else {
        // SAFETY: without SA_SIGINFO the handler takes just the signal number.
        let handler: extern "C" fn(libc::c_int) = unsafe { std::mem::transmute(handler) };
        handler(signum);
    }
}

/// A fixed buffer for formatting without allocating.
struct Buffer {
    bytes: [u8; 512],
    len: usize,
}

impl std::fmt::Write for Buffer {
    fn write_str(&mut self, text: &str) -> std::fmt::Result {
        let room = self.bytes.len() - self.len;
        let take = text.len().min(room);
        self.bytes[self.len..self.len + take].copy_from_slice(&text.as_bytes()[..take]);
        self.len += take;
        Ok(())
    }
}

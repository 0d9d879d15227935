//! Signal plumbing: installing a handler with `sigaction`, and giving a thread
//! an alternate signal stack so a handler can run when the faulting stack is
//! exhausted.

use std::io;
use std::mem::MaybeUninit;

/// A handler with the `SA_SIGINFO` signature.
pub type SigInfoHandler = extern "C" fn(libc::c_int, *mut libc::siginfo_t, *mut libc::c_void);

/// Installs `handler` for `signal` with `SA_SIGINFO | SA_ONSTACK | extra_flags`
/// and returns the action it replaced.
pub fn install(
    signal: libc::c_int,
    handler: SigInfoHandler,
    extra_flags: libc::c_int,
) -> io::Result<libc::sigaction> {
    // SAFETY: an all-zero sigaction is a valid value (empty mask, no flags).
    let mut action: libc::sigaction = unsafe { MaybeUninit::zeroed().assume_init() };
    action.sa_sigaction = handler as usize;
    action.sa_flags = libc::SA_SIGINFO | libc::SA_ONSTACK | extra_flags;
    // SAFETY: `action.sa_mask` is a valid sigset_t to initialise.
    unsafe { libc::sigemptyset(&mut action.sa_mask) };
    let mut old = MaybeUninit::<libc::sigaction>::zeroed();
    // SAFETY: both pointers are valid for the call.
    let rc = unsafe { libc::sigaction(signal, &action, old.as_mut_ptr()) };
    if rc != 0 {
        return Err(super::last_error());
    }
    // SAFETY: sigaction succeeded and filled `old`.
    Ok(unsafe { old.assume_init() })
}

/// Restores the default action for `signal`. Async-signal-safe.
pub fn reset_default(signal: libc::c_int) {
    // SAFETY: an all-zero sigaction with SIG_DFL is valid; sigaction is
    // async-signal-safe and both pointers are valid.
    unsafe {
        let mut action: libc::sigaction = MaybeUninit::zeroed().assume_init();
        action.sa_sigaction = libc::SIG_DFL;
        libc::sigaction(signal, &action, std::ptr::null_mut());
    }
}

/// An alternate signal stack owned by one thread. Dropping it restores the
/// alternate stack the thread had before, then unmaps this one.
pub struct AltStack {
    /// Held only to be unmapped, after `drop` has uninstalled it.
    _mapping: memmap2::MmapMut,
    previous: libc::stack_t,
}

impl AltStack {
    /// Maps `size` bytes and installs them as the calling thread's alternate
    /// signal stack.
    pub fn install(size: usize) -> io::Result<AltStack> {
        let mut mapping = memmap2::MmapOptions::new().len(size).stack().map_anon()?;
        let new = libc::stack_t {
            ss_sp: mapping.as_mut_ptr().cast(),
            ss_flags: 0,
            ss_size: size,
        };
        let mut previous = MaybeUninit::<libc::stack_t>::zeroed();
        // SAFETY: `new` describes memory this struct owns and keeps mapped
        // until drop, which uninstalls it first; `previous` is writable.
        let rc = unsafe { libc::sigaltstack(&new, previous.as_mut_ptr()) };
        if rc != 0 {
            return Err(super::last_error());
        }
        Ok(AltStack {
            _mapping: mapping,
            // SAFETY: sigaltstack succeeded and filled `previous`.
            previous: unsafe { previous.assume_init() },
        })
    }
}

impl Drop for AltStack {
    fn drop(&mut self) {
        let restore = if self.previous.ss_flags & libc::SS_DISABLE != 0 {
            libc::stack_t {
                ss_sp: std::ptr::null_mut(),
                ss_flags: libc::SS_DISABLE,
                ss_size: 0,
            }
        } else {
            self.previous
        };
        // SAFETY: re-installs the stack that was current before ours (still
        // mapped by whoever owns it) or disables the alternate stack; after
        // this no handler can run on `self._mapping`, so unmapping it is safe.
        unsafe { libc::sigaltstack(&restore, std::ptr::null_mut()) };
        // `self._mapping` is unmapped when the fields drop, after this.
    }
}

/// Unblocks `signal` in the calling thread's mask.
pub fn unblock(signal: libc::c_int) {
    // SAFETY: an all-zero sigset_t is valid storage for sigemptyset.
    let mut set: libc::sigset_t = unsafe { MaybeUninit::zeroed().assume_init() };
    // SAFETY: `set` is a valid sigset_t; the null old-set pointer is allowed.
    unsafe {
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, signal);
        libc::pthread_sigmask(libc::SIG_UNBLOCK, &set, std::ptr::null_mut());
    }
}

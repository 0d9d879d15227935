//! Async preemption: how sysmon's SIGURG stops a goroutine that has run for
//! a whole time slice, at (almost) any instruction.
//!
//! # The approach: Go's context rewrite into a trampoline
//!
//! The handler does not switch goroutines itself. It checks that the
//! interrupted instruction is a safe point (below), then rewrites the signal
//! context: it pushes the interrupted RIP below the 128-byte red zone of the
//! goroutine's stack and points RIP at `arch::preempt_trampoline`. When the
//! handler returns, `rt_sigreturn` restores the signal mask and resumes the
//! thread in the trampoline, on the goroutine's own stack, exactly as if the
//! interrupted code had called it. The trampoline saves RFLAGS, all sixteen
//! general-purpose registers and the full XSAVE state (x87, SSE, AVX,
//! AVX-512, MXCSR), parks the goroutine on the global run queue
//! ([`park_preempted`], which also keeps `errno`), and, once some M resumes
//! it, restores everything and returns to the interrupted instruction.
//!
//! Why this rather than switching away inside the handler: the handler's
//! frame lives on the M's alternate signal stack and `rt_sigreturn` restores
//! that thread's state (its signal mask, its `sigaltstack`), so a goroutine
//! suspended inside a handler could not resume on another M without patching
//! `uc_stack` and unblocking SIGURG by hand, and nested signal frames could
//! overrun the stack. The rewrite keeps no thread-specific state: the
//! goroutine resumes anywhere, and the handler does nothing but a few
//! checks. It costs about 230 ns more than a switch in the handler (DESIGN
//! §5), which is small next to the signal's 8–16 µs delivery.
//!
//! # Safe points
//!
//! The handler preempts only when all of these hold, and otherwise returns at
//! once (sysmon asks again later):
//!
//! 1. this M asked for it (`M::preempt_requested`): a SIGURG from elsewhere
//!    (TCP urgent data) goes to the handler installed before goro's, if any;
//! 2. the M's "locks" count is 0: no runtime code, no spin lock held, no
//!    [`crate::preempt::disable`] guard (`locks.rs`);
//! 3. the M runs a goroutine (`curg`), and RSP lies inside that goroutine's
//!    stack with room below it for the trampoline's frame (the XSAVE area
//!    plus 12 KiB, at least 16 KiB);
//! 4. the interrupted RIP lies in the executable segment of the object goro
//!    is linked into — not in libc, ld.so or the vDSO. A goroutine stopped
//!    inside glibc's `malloc` would hold an arena lock that the next
//!    goroutine on the same thread needs (DESIGN §5);
//! 5. the thread is not unwinding a panic (the panic count is per thread).
//!
//! If libc itself is linked into that object (a static glibc build), rule 4
//! cannot tell it apart, so async preemption is turned off with a warning.
//!
//! The handler is async-signal-safe: it reads the M through its
//! const-initialised thread-local and writes one word to the goroutine's
//! stack; it saves and restores `errno`. It is installed with `SA_RESTART`
//! (an interrupted `read` or `futex` restarts rather than failing with
//! EINTR) and `SA_ONSTACK` (it runs on the M's alternate stack).
//!
//! # What a goroutine sees
//!
//! Registers, flags, vector state and `errno` survive; the OS thread may not.
//! A thread-local read before the preemption and after it may be a different
//! thread's (see the crate docs); `goro::preempt::disable()` pins a goroutine
//! to its thread for a scope.

use std::ffi::c_void;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::OnceLock;

use super::locks;
use super::m::{current_m, Pending};
use super::schedule::switch_out_locked;
use crate::arch;
use crate::sys::signal;

/// The preemption signal (Go's choice: unused by other software, and its
/// default action is to be ignored).
pub(crate) const SIGNAL: libc::c_int = libc::SIGURG;

/// Stack the trampoline may use below the interrupted RSP, beyond its
/// register save area: its own frame plus the scheduler's switch path.
const TRAMPOLINE_FRAMES: usize = 12 * 1024;
/// The least headroom ever required (DESIGN §3).
const MIN_HEADROOM: usize = 16 * 1024;

/// The executable range of the object goro is linked into.
static TEXT_START: AtomicUsize = AtomicUsize::new(0);
static TEXT_END: AtomicUsize = AtomicUsize::new(0);
/// Headroom required below RSP; 0 while preemption is unavailable.
static HEADROOM: AtomicUsize = AtomicUsize::new(0);
/// The SIGURG action installed before goro's.
static PREVIOUS: OnceLock<libc::sigaction> = OnceLock::new();

/// Installs the SIGURG handler once per process. Returns whether async
/// preemption is available.
pub(crate) fn install() -> bool {
    static AVAILABLE: OnceLock<bool> = OnceLock::new();
    *AVAILABLE.get_or_init(|| {
        let Some((start, end)) = own_text_range() else {
            tracing::warn!("goro: cannot find its own code segment; async preemption is off");
            return false;
        };
        if (start..end).contains(&(libc::malloc as *const () as usize)) {
            tracing::warn!(
                "goro: libc is linked statically into this program, so a preemption could \
                 land inside malloc; async preemption is off"
            );
            return false;
        }
        TEXT_START.store(start, Ordering::Relaxed);
        TEXT_END.store(end, Ordering::Relaxed);
        let (mode, size) = xsave_layout();
        // SAFETY: no preemption signal has been sent yet (none is sent
        // before HEADROOM is set, below).
        unsafe { arch::set_xsave(mode, size as u64) };
        match signal::install(SIGNAL, on_signal, libc::SA_RESTART) {
            Ok(previous) => {
                let _ = PREVIOUS.set(previous);
            }
            Err(error) => {
                tracing::warn!(%error, "goro: cannot install the SIGURG handler; async preemption is off");
                return false;
            }
        }
        let headroom = (size + 256 + TRAMPOLINE_FRAMES).max(MIN_HEADROOM);
        HEADROOM.store(headroom, Ordering::Release);
        true
    })
}

/// Per-M setup, on the M's own thread: SIGURG must not be blocked there
/// (a thread inherits its creator's mask).
pub(crate) fn prepare_thread() {
    signal::unblock(SIGNAL);
}

/// The range of the executable `PT_LOAD` segment that holds this function.
fn own_text_range() -> Option<(usize, usize)> {
    struct Search {
        address: usize,
        found: Option<(usize, usize)>,
    }
    extern "C" fn visit(
        info: *mut libc::dl_phdr_info,
        _size: libc::size_t,
        data: *mut c_void,
    ) -> libc::c_int {
        // SAFETY: `data` is the `Search` passed below; `info` and its
        // program headers are valid during the callback.
        unsafe {
            let search = &mut *(data as *mut Search);
            let info = &*info;
            for index in 0..info.dlpi_phnum as usize {
                let header = &*info.dlpi_phdr.add(index);
                if header.p_type != libc::PT_LOAD || header.p_flags & libc::PF_X == 0 {
                    continue;
                }
                let start = info.dlpi_addr as usize + header.p_vaddr as usize;
                let end = start + header.p_memsz as usize;
                if (start..end).contains(&search.address) {
                    search.found = Some((start, end));
                    return 1;
                }
            }
        }
        0
    }
    let mut search = Search {
        address: own_text_range as *const () as usize,
        found: None,
    };
    // SAFETY: the callback only reads the headers and writes `search`.
    unsafe { libc::dl_iterate_phdr(Some(visit), (&mut search as *mut Search).cast()) };
    search.found
}

/// The trampoline's save instruction and area size, from CPUID and XCR0.
fn xsave_layout() -> (u64, usize) {
    use std::arch::x86_64::{__cpuid, __cpuid_count};
    #[allow(unused_unsafe)]
    // SAFETY: CPUID is available on every x86_64 CPU.
    let leaf1 = unsafe { __cpuid(1) };
    let osxsave = leaf1.ecx & (1 << 27) != 0;
    if !osxsave {
        // `fxsave64` writes 512 bytes, but the trampoline zeroes the XSAVE
        // header (bytes 512..576) whatever the mode: reserve those too, or
        // the zeroing lands on the saved registers above the area (r15
        // first) and every preemption corrupts them.
        return (0, 576);
    }
    // SAFETY: XGETBV(0) is valid once the OS enabled XSAVE (OSXSAVE set).
    let xcr0 = unsafe { xgetbv0() };
    #[allow(unused_unsafe)]
    // SAFETY: leaf 0xD exists when XSAVE is supported.
    let sub1 = unsafe { __cpuid_count(0xD, 1) };
    let mode = if sub1.eax & (1 << 1) != 0 { 2 } else { 1 };
    // The standard-format size of every enabled component but AMX's: an
    // upper bound for the compacted format too.
    let mut size = 576usize;
    for component in 2..63u32 {
        if xcr0 & (1 << component) == 0 || component == 17 || component == 18 {
            continue;
        }
        #[allow(unused_unsafe)]
        // SAFETY: as above.
        let leaf = unsafe { __cpuid_count(0xD, component) };
        size = size.max(leaf.ebx as usize + leaf.eax as usize);
    }
    (mode, size)
}

/// Reads XCR0.
///
/// # Safety
/// The OS must have enabled XSAVE (CPUID.1:ECX.OSXSAVE).
unsafe fn xgetbv0() -> u64 {
    let (low, high): (u32, u32);
    // SAFETY: per the caller; XGETBV with ECX = 0 only reads XCR0.
    unsafe {
        std::arch::asm!("xgetbv", in("ecx") 0, out("eax") low, out("edx") high,
            options(nomem, nostack, preserves_flags));
    }
    u64::from(high) << 32 | u64::from(low)
}

extern "C" fn on_signal(signum: libc::c_int, info: *mut libc::siginfo_t, context: *mut c_void) {
    // SAFETY: errno is this thread's; reading it has no preconditions.
    let errno = unsafe { *libc::__errno_location() };
    // SAFETY: a non-null current M is this thread's live M.
    match unsafe { current_m().as_ref() } {
        Some(m) if m.preempt_requested.swap(false, Ordering::AcqRel) => {
            // SAFETY: `context` is the kernel's ucontext for this signal.
            unsafe { try_preempt(m, context.cast()) };
        }
        _ => chain(signum, info, context),
    }
    // SAFETY: as above.
    unsafe { *libc::__errno_location() = errno };
}

/// Checks the safe-point rules (module doc) and, if they hold, redirects the
/// interrupted context into the trampoline.
///
/// # Safety
/// `context` is the signal's ucontext, and the caller is the handler running
/// on the interrupted thread, whose M is `m`.
unsafe fn try_preempt(m: &super::m::M, context: *mut libc::ucontext_t) -> bool {
    let headroom = HEADROOM.load(Ordering::Acquire);
    if headroom == 0 || locks::get() != 0 {
        return false;
    }
    let Some(g) = m.curg.get() else {
        return false;
    };
    // SAFETY: the caller passes the kernel's ucontext.
    let registers = unsafe { &mut (*context).uc_mcontext.gregs };
    let rip = registers[libc::REG_RIP as usize] as usize;
    let rsp = registers[libc::REG_RSP as usize] as usize;
    if !(TEXT_START.load(Ordering::Relaxed)..TEXT_END.load(Ordering::Relaxed)).contains(&rip) {
        return false;
    }
    // SAFETY: `g` is Running on this (interrupted) M, which owns it.
    let Some(stack) = (unsafe { g.stack() }) else {
        return false;
    };
    let low = stack.guard().1;
    let high = stack.top() as usize;
    if rsp > high || rsp < low + headroom || std::thread::panicking() {
        return false;
    }
    // Claimed: the trampoline's park carries this count (`locks.rs`).
    locks::acquire();
    let slot = rsp - 128 - 8;
    // SAFETY: `slot` lies in the goroutine's stack, below the interrupted
    // frame's red zone and above the guard by `headroom`; no one else uses
    // this part of the stack.
    unsafe { *(slot as *mut usize) = rip };
    registers[libc::REG_RSP as usize] = slot as i64;
    registers[libc::REG_RIP as usize] = arch::preempt_trampoline as *const () as usize as i64;
    true
}

/// Hands a SIGURG that was not a preemption request to the handler installed
/// before goro's; with none, it is ignored (SIGURG's default action).
fn chain(signum: libc::c_int, info: *mut libc::siginfo_t, context: *mut c_void) {
    let Some(previous) = PREVIOUS.get() else {
        return;
    };
    let handler = previous.sa_sigaction;
    if handler == libc::SIG_DFL || handler == libc::SIG_IGN {
        return;
    }
    if previous.sa_flags & libc::SA_SIGINFO != 0 {
        // SAFETY: installed with SA_SIGINFO, so it has this signature.
        let handler: signal::SigInfoHandler = unsafe { std::mem::transmute(handler) };
        handler(signum, info, context);
    } else {
        // SAFETY: without SA_SIGINFO the handler takes the signal number.
        let handler: extern "C" fn(libc::c_int) = unsafe { std::mem::transmute(handler) };
        handler(signum);
    }
}

/// Called by the trampoline, on the goroutine's stack, with the "locks"
/// count the handler raised: parks the goroutine on the global queue and
/// returns once it runs again (perhaps on another M).
pub(crate) extern "C" fn park_preempted() {
    let errno = errno();
    // SAFETY: the handler ran on an M, and the count keeps us on it.
    let m = unsafe { &*current_m() };
    if let Some(g) = m.curg.get() {
        super::stats::count_preempt_done(m.shared(), g.id());
    }
    switch_out_locked(m, Pending::Preempted);
    set_errno(errno);
}

/// This thread's errno. Not inlined, for the reason `current_m` is not: the
/// address of a thread-local must be computed afresh after a switch.
#[inline(never)]
fn errno() -> libc::c_int {
    // SAFETY: `__errno_location` returns this thread's errno.
    unsafe { *libc::__errno_location() }
}

/// Sets this thread's errno (see [`errno`]).
#[inline(never)]
fn set_errno(value: libc::c_int) {
    // SAFETY: `__errno_location` returns this thread's errno.
    unsafe { *libc::__errno_location() = value };
}

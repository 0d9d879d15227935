//! The x86_64 context switch.
//!
//! A suspended context is one saved stack pointer. Below it lie three words.
//! A fresh goroutine has no saved context at all: [`start`] enters it.
//!
//! ```text
//!  suspended goroutine stack            fresh stack, as `start` leaves it
//!  (higher addresses up)
//!
//!  | caller's frames ...  |             +----------------------+ <- top (16-aligned)
//!  | spilled live values  |             | 0                    |
//!  +----------------------+             | 0                    | <- rsp at `goroutine_start`
//!  | saved rbp            |             | return into          |
//!  | saved rbx            |             |   goroutine_start    |
//!  | resume address (2:)  | <- saved sp | entry's frames ...   |
//!  +----------------------+             +----------------------+
//! ```
//!
//! The switch pushes rbp and rbx (LLVM reserves both, so they cannot be named
//! as clobbers) and a resume address, stores rsp, loads the other context's
//! rsp, pops the three words and leaves with `jmp` to the popped address.
//! Leaving with `pop; jmp` rather than `ret` matters: `ret` would mispredict
//! on every switch (the return-stack buffer never matches), which DESIGN §5
//! measured at 2.5× slower. Every other register is declared clobbered, so
//! the compiler saves only what is live across the call site.

use core::arch::{asm, naked_asm};

/// Saves the current context into `*save` and resumes the one whose stack
/// pointer is `load`. Returns when some other switch loads `*save` again,
/// possibly on another thread.
///
/// # Safety
/// - `save` must be valid for a write and stay valid while suspended.
/// - `load` must be a stack pointer produced by a previous `switch` into a
///   save slot, whose stack is still mapped and which no
///   other thread is running or about to run.
#[inline(always)]
pub unsafe fn switch(save: *mut usize, load: usize) {
    // SAFETY: the caller guarantees `save` is writable and `load` is a
    // suspended context; the asm saves rbp/rbx itself and declares every other
    // register clobbered, so the compiler spills what is live.
    unsafe {
        asm!(
            "push rbp",              // rbp cannot be a clobber: save it by hand
            "push rbx",              // rbx is reserved by LLVM: save it by hand
            "lea rax, [rip + 2f]",   // where this context resumes
            "push rax",
            "mov [rdi], rsp",        // publish our stack pointer
            "mov rsp, rsi",          // adopt the other context's stack
            "pop rax",               // its resume address
            "pop rbx",
            "pop rbp",
            "jmp rax",               // pop; jmp, never ret (see module doc)
            "2:",
            in("rdi") save,
            in("rsi") load,
            out("r12") _, out("r13") _, out("r14") _, out("r15") _,
            clobber_abi("sysv64"),
        );
    }
}

/// Saves the current context into `*save` (as [`switch`] does) and starts a
/// fresh goroutine: `entry(argument)` runs on the stack whose upper end is
/// `top`, reached through `goroutine_start`.
///
/// Nothing is written to the new stack before this call, and the call only
/// *stores* to it (two zero words, then `call`'s return address): a stack
/// top that has gone cold in the cache costs a store-buffer entry, not the
/// load stall that popping a pre-built frame would cost. Measured on the
/// spawn+exit benchmark, where 73% of the switch's samples sat on that first
/// load (see `benches/sched.rs`).
///
/// # Safety
/// - `save` as for [`switch`].
/// - `top` is the 16-byte-aligned upper end of a writable stack of at least a
///   few KiB that no one is using.
/// - `entry` never returns.
#[inline(always)]
pub unsafe fn start(
    save: *mut usize,
    top: *mut u8,
    entry: extern "C" fn(usize) -> !,
    argument: usize,
) {
    // SAFETY: the caller guarantees `save` is writable and `top` is a free
    // stack; the saved context is resumable by `switch` exactly as if this
    // were a `switch`, and the new context never comes back here.
    unsafe {
        asm!(
            "push rbp",
            "push rbx",
            "lea rax, [rip + 2f]",
            "push rax",
            "mov [rdi], rsp",             // publish our stack pointer
            "mov qword ptr [rsi - 8], 0", // goroutine_start's "return address": 0
            "mov qword ptr [rsi - 16], 0",// and a zero above it: unwinders stop here
            "lea rsp, [rsi - 16]",        // 16-aligned: goroutine_start's call aligns entry
            "xor ebp, ebp",               // a zero frame pointer ends backtraces
            "mov rdi, rdx",               // entry's argument
            "jmp {start}",                // entry is in rcx
            "2:",
            start = sym goroutine_start,
            in("rdi") save,
            in("rsi") top,
            in("rdx") argument,
            in("rcx") entry,
            out("r12") _, out("r13") _, out("r14") _, out("r15") _,
            clobber_abi("sysv64"),
        );
    }
}

/// The first frame of every goroutine: calls `entry` (in rcx) with the
/// argument already in rdi. On entry rsp is 16-byte aligned, so after the
/// `call` the callee sees rsp ≡ 8 (mod 16) as the ABI requires. The entry
/// never returns; `ud2` marks the impossible.
#[unsafe(naked)]
unsafe extern "C" fn goroutine_start() -> ! {
    naked_asm!("call rcx", "ud2")
}

//! The x86_64 context switch.
//!
//! A suspended context is one saved stack pointer. Below it lie three words:
//!
//! ```text
//!  suspended goroutine stack            freshly initialised stack
//!  (higher addresses up)                (`init_stack`)
//!
//!  | caller's frames ...  |             +----------------------+ <- top (16-aligned)
//!  | spilled live values  |             | entry function       |
//!  +----------------------+             | 0 (padding)          | <- rsp when `goroutine_start` runs
//!  | saved rbp            |             | rbp = 0 (ends chain) |
//!  | saved rbx            |             | rbx = entry argument |
//!  | resume address (2:)  | <- saved sp | goroutine_start      | <- saved sp
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
///   save slot, or by [`init_stack`], whose stack is still mapped and which no
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

/// Lays out a fresh context at the top of a stack so that the first
/// [`switch`] into it calls `entry(argument)` on that stack. Returns the
/// stack pointer to pass to `switch`.
///
/// # Safety
/// `top` must be the 16-byte-aligned upper end of a writable stack with at
/// least 64 bytes below it, and nothing may be using that stack.
pub unsafe fn init_stack(top: *mut u8, entry: extern "C" fn(usize) -> !, argument: usize) -> usize {
    debug_assert_eq!(top as usize % 16, 0);
    let words = top.cast::<usize>();
    // SAFETY: the caller guarantees five words below `top` are writable.
    unsafe {
        words.sub(1).write(entry as *const () as usize); // read by goroutine_start at [rsp + 8]
        words.sub(2).write(0); // padding: rsp is 16-aligned when goroutine_start runs
        words.sub(3).write(0); // rbp: a zero frame pointer ends backtraces here
        words.sub(4).write(argument); // rbx, moved into rdi by goroutine_start
        words.sub(5).write(goroutine_start as *const () as usize); // popped and jumped to
    }
    words.wrapping_sub(5) as usize
}

/// The first instruction a goroutine runs. On entry rsp is `top - 16`
/// (16-byte aligned), rbx holds the argument, and `[rsp + 8]` the entry
/// function. The `call` keeps the ABI's alignment rule (rsp ≡ 8 mod 16 at the
/// callee's first instruction); the entry never returns, so `ud2` is
/// unreachable.
#[unsafe(naked)]
unsafe extern "C" fn goroutine_start() -> ! {
    naked_asm!(
        "mov rdi, rbx",        // the argument
        "mov rax, [rsp + 8]",  // the entry function, stored by init_stack
        "call rax",
        "ud2",
    )
}

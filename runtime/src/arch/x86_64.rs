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

/// Asks the CPU to bring the cache line holding `address` into L1. Only a
/// hint: it never faults and changes no architectural state, so any address
/// (unmapped, or memory another thread owns) is acceptable.
#[inline(always)]
pub fn prefetch(address: usize) {
    // SAFETY: PREFETCHT0 reads nothing architecturally and raises no fault
    // for any address (Intel SDM, "PREFETCHh"); it touches no register but
    // the one holding the address.
    unsafe {
        asm!("prefetcht0 [{0}]", in(reg) address, options(nostack, preserves_flags, readonly));
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

/// Bytes of the suspended frame above a saved stack pointer (module doc):
/// the resume address, rbx and rbp.
pub const SAVED_FRAME_BYTES: usize = 24;

/// The registers an unwinder needs to walk a suspended context.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SavedRegisters {
    /// Where the context resumes: the `2:` label of its `switch`.
    pub rip: u64,
    /// rsp once the switch has popped its three words: `sp + 24`.
    pub rsp: u64,
    /// The saved rbp.
    pub rbp: u64,
    /// The saved rbx.
    pub rbx: u64,
}

/// Decodes the suspended frame (module doc) from a copy of the stack that
/// starts at the saved stack pointer `sp`; `None` if the copy is too short.
///
/// This is the layout `switch` and `start` push; the goroutine dump
/// (`diag/backtrace.rs`) is its only reader.
pub fn saved_registers(sp: usize, stack: &[u8]) -> Option<SavedRegisters> {
    let word = |i: usize| -> Option<u64> {
        Some(u64::from_ne_bytes(
            stack.get(i * 8..i * 8 + 8)?.try_into().ok()?,
        ))
    };
    Some(SavedRegisters {
        rip: word(0)?,
        rbx: word(1)?,
        rbp: word(2)?,
        rsp: (sp + SAVED_FRAME_BYTES) as u64,
    })
}

/// The return address that the `call` in `goroutine_start` pushes: an
/// unwinder that reaches it has walked the whole goroutine.
pub fn entry_return_address() -> u64 {
    // `call rcx` is two bytes (ff d1).
    goroutine_start as *const () as usize as u64 + 2
}

/// The first frame of every goroutine: calls `entry` (in rcx) with the
/// argument already in rdi. On entry rsp is 16-byte aligned, so after the
/// `call` the callee sees rsp ≡ 8 (mod 16) as the ABI requires. The entry
/// never returns; `ud2` marks the impossible.
#[unsafe(naked)]
unsafe extern "C" fn goroutine_start() -> ! {
    naked_asm!("call rcx", "ud2")
}

/// How the preemption trampoline saves the extended register state:
/// 0 `fxsave64` (x87 and SSE only, no XSAVE), 1 `xsave64`, 2 `xsavec64`.
/// Set once by `preempt::install`, before any preemption signal is sent.
#[no_mangle]
static mut GORO_RUNTIME_XSAVE_MODE_V0: u64 = 0;
/// Bytes to reserve for the save area (a multiple of 64).
#[no_mangle]
static mut GORO_RUNTIME_XSAVE_SIZE_V0: u64 = 512;

/// Sets the trampoline's save mode and area size.
///
/// # Safety
/// Call before any preemption signal can be sent (once, at install).
pub unsafe fn set_xsave(mode: u64, size: u64) {
    // SAFETY: written once, before any reader (the trampoline) can run.
    unsafe {
        GORO_RUNTIME_XSAVE_MODE_V0 = mode;
        GORO_RUNTIME_XSAVE_SIZE_V0 = size.div_ceil(64) * 64;
    }
}

/// The async-preemption trampoline (Go's `asyncPreempt`). The SIGURG
/// handler points the interrupted RIP here, having pushed the old RIP below
/// the 128-byte red zone, so this runs as if the interrupted code had called
/// it, on the goroutine's stack. It saves RFLAGS, every general-purpose
/// register and the whole extended state (`xsavec64`/`xsave64`: x87, SSE,
/// AVX, AVX-512, MXCSR; AMX tile data excepted), calls `park` — which
/// switches the goroutine out and returns once it is resumed, perhaps on
/// another thread — then restores all of it and returns to the interrupted
/// instruction with `ret 128`, which also drops the red zone the handler
/// skipped, so RSP is exactly the interrupted one. Nothing here depends on the thread: migration is free.
///
/// # Safety
/// Entered only by the preemption handler's context rewrite.
#[unsafe(naked)]
pub unsafe extern "C" fn preempt_trampoline() {
    naked_asm!(
        // [rsp] = the interrupted RIP ("return address").
        "pushfq",
        "push rax", "push rcx", "push rdx", "push rbx", "push rbp",
        "push rsi", "push rdi", "push r8", "push r9", "push r10",
        "push r11", "push r12", "push r13", "push r14", "push r15",
        "mov rbp, rsp",
        "sub rsp, qword ptr [rip + GORO_RUNTIME_XSAVE_SIZE_V0]",
        "and rsp, -64",
        // The XSAVE header (bytes 512..576) must start zeroed.
        "xor eax, eax",
        "mov qword ptr [rsp + 512], rax",
        "mov qword ptr [rsp + 520], rax",
        "mov qword ptr [rsp + 528], rax",
        "mov qword ptr [rsp + 536], rax",
        "mov qword ptr [rsp + 544], rax",
        "mov qword ptr [rsp + 552], rax",
        "mov qword ptr [rsp + 560], rax",
        "mov qword ptr [rsp + 568], rax",
        // Requested-feature bitmap: everything but AMX (bits 17 and 18).
        "mov eax, 0xFFF9FFFF",
        "mov edx, 0xFFFFFFFF",
        "mov rcx, qword ptr [rip + GORO_RUNTIME_XSAVE_MODE_V0]",
        "cmp rcx, 2",
        "je 3f",
        "cmp rcx, 1",
        "je 2f",
        "fxsave64 [rsp]",
        "jmp 4f",
        "2:",
        "xsave64 [rsp]",
        "jmp 4f",
        "3:",
        "xsavec64 [rsp]",
        "4:",
        "call {park}",
        "mov eax, 0xFFF9FFFF",
        "mov edx, 0xFFFFFFFF",
        "cmp qword ptr [rip + GORO_RUNTIME_XSAVE_MODE_V0], 0",
        "jne 5f",
        "fxrstor64 [rsp]",
        "jmp 6f",
        "5:",
        "xrstor64 [rsp]",
        "6:",
        "mov rsp, rbp",
        "pop r15", "pop r14", "pop r13", "pop r12", "pop r11",
        "pop r10", "pop r9", "pop r8", "pop rdi", "pop rsi",
        "pop rbp", "pop rbx", "pop rdx", "pop rcx", "pop rax",
        "popfq",
        // Pop the interrupted RIP and skip the red zone the handler left
        // above it: RSP is exactly the interrupted one again.
        "ret 128",
        park = sym crate::sched::preempt::park_preempted,
    )
}

//! goro's context-switch assembly: the user-space switch, the first-run
//! trampoline of a goroutine, and the async-preemption trampoline
//! (`preempt_trampoline`; the handler that enters it is `sched/preempt.rs`).
//! The one other piece of assembly, the "locks" count's single-instruction
//! TLS increment, lives with its rules in `sched/locks.rs`.
//!
//! # Why inline `asm!` and not the `context` crate
//!
//! The project card named the `context` crate. Measured on this machine
//! (DESIGN §5), it lost on every count, so the switch is a clobber-based inline
//! `asm!` block, corosensei's technique:
//!
//! - `context` 3.0.0 (`jump_fcontext`) costs about 5.3 ns per switch; the
//!   clobber-based switch about 1.2 ns, because the compiler spills only the
//!   registers that are live at each call site instead of all callee-saved ones.
//! - A panic inside a `context::Context` aborts the process.
//! - `Context` is auto `Send + Sync` over a fake `&'static`.
//! - Its `assume_init` on uninitialised memory trips rustc's `invalid_value`
//!   lint (UB); fixed upstream, never released.
//! - It has no unwind info, so backtraces stop at the switch, and it needs a C
//!   compiler to build.
//!
//! goro's own measurement of the whole yield path (queue push, pop and one
//! switch) is `benches/sched.rs` → `yield_switch_1p`.
//!
//! # Floating-point control state
//!
//! The SysV ABI makes MXCSR and the x87 control word callee-saved. goro does
//! not save them on a switch (it would cost about 2 ns); like Go, it requires
//! that a goroutine which changes the rounding mode or exception masks restores
//! them before it can be switched out (before any yield, park, channel
//! operation or spawn). Async preemption (`sched/preempt.rs`) saves the full XSAVE
//! state, so preemption at an arbitrary instruction is not affected by this rule.
//!
//! # Nothing unwinds across a switch
//!
//! A goroutine's first frame is `goroutine_start`, which calls the
//! scheduler's `extern "C"` entry. That entry runs the user's closure inside
//! `catch_unwind`, so a panic stops there; an `extern "C"` function that did
//! unwind would abort rather than cross into another stack.

#[cfg(target_arch = "x86_64")]
mod x86_64;
#[cfg(target_arch = "x86_64")]
pub use x86_64::{
    entry_return_address, preempt_trampoline, prefetch, saved_registers, set_xsave, start, switch,
    SavedRegisters, SAVED_FRAME_BYTES,
};

#[cfg(not(target_arch = "x86_64"))]
compile_error!("goro supports x86_64 Linux only for now (aarch64 is planned)");

//! goro's runtime: Go's goroutines and GMP scheduler for Rust on Linux.
//!
//! Use it through the `goro` facade crate. A goroutine is a closure running on
//! its own guard-paged, lazily committed stack; Ms (threads) run goroutines
//! while holding one of `procs` Ps, stealing work from each other as Go's
//! scheduler does. See `sched` for the design, `runtime/HACKING.md` for how
//! code inside the runtime differs from ordinary code.
//!
//! ```
//! let total: u64 = goro_runtime::run(|| {
//!     let handles: Vec<_> = (0..100u64).map(|i| goro_runtime::go(move || i * i)).collect();
//!     handles.into_iter().map(|h| h.join().unwrap()).sum()
//! });
//! assert_eq!(total, 328_350);
//! ```
//!
//! # Thread-locals are per thread, not per goroutine
//!
//! A goroutine can resume on a different OS thread after any point where it
//! switches out: `yield_now`, a `join`, a `WaitGroup::wait`, spawning (which
//! may hand the P over), and — with async preemption — after *any*
//! instruction. So:
//!
//! - a `thread_local!` read before such a point and again after it may see two
//!   different threads' values; never keep a reference into a thread-local
//!   across one (`LocalKey::with` closures that switch inside are wrong);
//! - a `std::sync::MutexGuard` or `RefCell` borrow held across a switch may be
//!   released by another thread; use `goro::sync` types, which park the
//!   goroutine;
//! - thread identity (`std::thread::current().id()`, `gettid`) is not
//!   goroutine identity;
//! - with preemption, even a thread-local's *address* kept in a register
//!   between two instructions may belong to the previous thread (LLVM keeps
//!   `errno`'s address this way). The runtime carries errno's value to the
//!   new thread; `goro::preempt::disable()` pins a goroutine for a scope
//!   that needs its thread. std's stdout and stderr locks are reentrant per
//!   thread: a goroutine preempted in the middle of a `println!` leaves the
//!   lock held by its old thread, and another goroutine printing on that
//!   thread re-enters it and panics ("already borrowed"). Print through a
//!   `goro::sync::Mutex`, or under `preempt::disable()`, where goroutines
//!   that run for whole time slices also print.
//!
//! std's panic state is per thread too: while a goroutine unwinds a panic,
//! `std::thread::panicking()` is true for its thread. The runtime never
//! moves an unwinding goroutine on its own (no preemption, `yield_now` does
//! not switch, `blocking()` keeps it on its thread), but a `Drop` that
//! blocks during the unwind (a channel send, a lock wait, a `join`) parks
//! the goroutine, which may then finish unwinding on another thread: the
//! first thread reports `panicking()` until the goroutine's next panic, and
//! std `Mutex`es dropped there are poisoned meanwhile. Keep blocking out of
//! code that runs during unwinding, as std advises for `Drop` generally.
//!
//! The runtime itself never caches its thread-local across a switch (see
//! `sched::m`); tests check that a goroutine migrating mid-function keeps its
//! identity, in release mode.
//!
//! # Floating-point control state
//!
//! A goroutine that changes MXCSR (rounding mode, exception masks) or the x87
//! control word must restore it before it switches out; the switch does not
//! save them (see `arch`).

pub mod arch;
pub mod blocking;
pub mod chan;
mod config;
mod debug_flags;
mod diag;
pub mod net;
pub mod preempt;
pub mod runtime;
pub mod sched;
mod spawn;
pub mod stack;
pub mod sync;
pub mod sys;
pub mod time;
mod util;

pub use blocking::blocking;
pub use runtime::{run, Runtime, RuntimeBuilder};
pub use sched::yield_now;
pub use sched::{JoinHandle, ABANDONED};
pub use spawn::{go, Builder};

//! goro: Go's goroutine runtime, rebuilt in Rust for Linux.
//!
//! Plain blocking code, one goroutine per task, and a GMP scheduler
//! underneath: goroutines run on guard-paged mmap'd stacks, switch in user
//! space, and are spread across `procs` logical processors by work stealing.
//!
//! ```
//! let sum: u32 = goro::run(|| {
//!     let wg = std::sync::Arc::new(goro::sync::WaitGroup::new());
//!     wg.add(2);
//!     let a = { let wg = wg.clone(); goro::go(move || { wg.done(); 1 }) };
//!     let b = { let wg = wg.clone(); goro::go(move || { wg.done(); 2 }) };
//!     wg.wait();
//!     a.join().unwrap() + b.join().unwrap()
//! });
//! assert_eq!(sum, 3);
//! ```
//!
//! Read the `goro_runtime` crate docs for the thread-local hazard: a
//! goroutine may resume on another OS thread after it switches out.

pub use goro_runtime::{
    blocking, chan, go, net, preempt, run, select, sync, time, yield_now, Builder, JoinHandle,
    Runtime, RuntimeBuilder, ABANDONED,
};

/// Queries about the current runtime (Go's `runtime` package).
pub mod runtime {
    pub use goro_runtime::runtime::{
        dump, num_goroutines, procs, stats, GoroutineStats, NetpollStats, StackStats, Stats,
        ThreadStats,
    };
}

//! Synchronisation that parks the goroutine, not the thread: Go's `sync`
//! package (and `golang.org/x/sync/semaphore`) with Rust's interfaces.
//!
//! | type | Go | file |
//! |---|---|---|
//! | [`Mutex`] | `sync.Mutex` (normal + starvation mode) | `mutex.rs`, `raw_mutex.rs` |
//! | [`RwLock`] | `sync.RWMutex` (writer preference) | `rwlock.rs` |
//! | [`Once`] | `sync.Once` (a panicking initialiser counts as done) | `once.rs` |
//! | [`Condvar`] | `sync.Cond` (ticket-ordered `notifyList`) | `condvar.rs` |
//! | [`Semaphore`] | `golang.org/x/sync/semaphore.Weighted` (FIFO) | `semaphore.rs` |
//! | [`Barrier`] | std's `Barrier` (Go has none) | `barrier.rs` |
//! | [`WaitGroup`] | `sync.WaitGroup` | `wait_group.rs` |
//!
//! Internals: `sema.rs` is Go's runtime semaphore (a FIFO queue of parked
//! waiters per lock), `spin.rs` Go's rule for when a waiter may spin,
//! `caller.rs` a token per goroutine or thread (for `Once`'s re-entry check),
//! `fence.rs` the asymmetric (`membarrier`) fence that lets `Mutex` release
//! with a plain store.
//!
//! Every wait goes through the scheduler's waiter door (`sched::block`, or
//! `sched::prepare_wait` + `sched::wait_unlocking`), so a goroutine parks
//! (its M runs other goroutines) and a foreign thread blocks.
//!
//! # Guards, migration and preemption
//!
//! A goroutine may be switched out at any instruction and resume on another
//! OS thread. None of these locks has an owner thread, so `MutexGuard`,
//! `RwLockReadGuard` and `RwLockWriteGuard` are `Send` (given the usual
//! bounds on `T`) and unlocking on another thread is correct; a holder that
//! is switched out only makes waiters park (after a bounded spin), never
//! blocks an M. Semaphore permits are counts owned by nobody. Each type's
//! module doc says more.
//!
//! The internal spin locks below are another matter: a goroutine preempted
//! while holding one would make every other waiter spin and yield its thread
//! until it runs again. Their critical sections are a few dozen instructions
//! and make no calls that switch; once async preemption lands, they must
//! count as runtime code (preempt-off), as the channel's spin lock must.
//!
//! Internal locks (`util::SpinLock` around each wait queue) are leaves: held
//! for a few instructions, never while taking another lock or waking a
//! waiter, and released by `wait_unlocking` right after the waiter is off its
//! stack.

mod barrier;
mod caller;
mod condvar;
mod fence;
mod mutex;
mod once;
mod raw_mutex;
mod rwlock;
mod sema;
mod semaphore;
mod spin;
mod wait_group;

pub use barrier::{Barrier, BarrierWaitResult};
pub use condvar::Condvar;
pub use mutex::{Mutex, MutexGuard};
pub use once::Once;
pub use rwlock::{RwLock, RwLockReadGuard, RwLockWriteGuard};
pub use semaphore::Semaphore;
pub use wait_group::WaitGroup;

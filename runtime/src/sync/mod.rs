//! Synchronisation that parks the goroutine, not the thread.
//!
//! Every wait goes through `sched::block`, so a goroutine parks (its M runs
//! other goroutines) and a foreign thread blocks. `WaitGroup` is here now; the
//! rest of Go's `sync` (Mutex, RwLock, Once, Condvar, Semaphore, Barrier)
//! follows with the channels issue.

mod wait_group;

pub use wait_group::WaitGroup;

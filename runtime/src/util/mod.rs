//! Small building blocks with no knowledge of goroutines.

mod spin_lock;

pub(crate) use spin_lock::{RawSpinLock, SpinLock, SpinLockGuard};

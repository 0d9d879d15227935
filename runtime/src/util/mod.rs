//! Small building blocks with no knowledge of goroutines.

mod biased_lock;
mod spin_lock;

pub(crate) use biased_lock::{BiasedLock, BiasedLockGuard, RawBiasedLock};
pub(crate) use spin_lock::{RawSpinLock, SpinLock, SpinLockGuard};

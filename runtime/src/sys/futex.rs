//! Futex wait and wake on an `AtomicU32`: how an idle M sleeps.
//!
//! A private futex (`FUTEX_PRIVATE_FLAG`): every waiter and waker is in this
//! process, which lets the kernel skip the shared-mapping lookup.

use std::sync::atomic::AtomicU32;
use std::time::Duration;

/// Sleeps while `*word == expected`, or until `timeout` passes. Returns on a
/// wake, a timeout, a signal or a value mismatch; callers re-check their condition.
pub fn wait(word: &AtomicU32, expected: u32, timeout: Option<Duration>) {
    let spec;
    let spec_ptr = match timeout {
        Some(d) => {
            spec = libc::timespec {
                tv_sec: d.as_secs().min(i64::MAX as u64) as libc::time_t,
                tv_nsec: d.subsec_nanos() as libc::c_long,
            };
            &spec as *const libc::timespec
        }
        None => std::ptr::null(),
    };
    // SAFETY: `word` is a live AtomicU32 (same layout as u32) for the duration
    // of the call; FUTEX_WAIT only reads it. `spec_ptr` is null or points to a
    // timespec that outlives the call.
    unsafe {
        libc::syscall(
            libc::SYS_futex,
            word.as_ptr(),
            libc::FUTEX_WAIT | libc::FUTEX_PRIVATE_FLAG,
            expected,
            spec_ptr,
        );
    }
}

/// Wakes at most `count` threads sleeping on the futex word at `address`.
///
/// Takes a raw address: a private FUTEX_WAKE only uses the address as a key
/// and never touches the memory, so the word may already be freed (the woken
/// thread can exit as soon as it sees the value that precedes this call).
pub fn wake_raw(address: usize, count: i32) {
    // SAFETY: FUTEX_WAKE with FUTEX_PRIVATE_FLAG reads no memory; any
    // address is acceptable (an unmapped one at worst wakes nobody).
    unsafe {
        libc::syscall(
            libc::SYS_futex,
            address,
            libc::FUTEX_WAKE | libc::FUTEX_PRIVATE_FLAG,
            count,
        );
    }
}

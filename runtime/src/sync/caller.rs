//! Who is calling: a token that tells apart every live goroutine (of any
//! runtime) and every thread, for `Once`'s check that an initialiser does
//! not call its own `Once` again (which would wait for itself forever).
//!
//! A goroutine's token is its G's address: unique among live Gs of all
//! runtimes (a G is reused only after its goroutine has returned). A thread
//! without a goroutine gets a number from a counter, with the low bit set so
//! it never equals a G address (Gs are aligned). This reads the current M's
//! running G and changes nothing, like `spin.rs`.

use std::sync::atomic::{AtomicUsize, Ordering};

use crate::sched::m::current_m;

/// This goroutine's or thread's token; never 0.
pub(crate) fn token() -> usize {
    // The count keeps us on this M while we read its goroutine.
    let section = crate::sched::locks::Section::enter();
    // SAFETY: a non-null current M is this thread's live M.
    if let Some(g) = unsafe { current_m().as_ref() }.and_then(|m| m.curg.get()) {
        return g.as_ptr() as usize;
    }
    drop(section);
    static NEXT: AtomicUsize = AtomicUsize::new(1);
    thread_local! {
        static THREAD: usize = (NEXT.fetch_add(1, Ordering::Relaxed) << 1) | 1;
    }
    THREAD.with(|token| *token)
}

//! The netpoller's doors into the scheduler: [`ready_batch`] (Go's
//! `injectglist`) and [`current_poller`], the calling goroutine's runtime's
//! netpoller, started on first use (Go starts its netpoller lazily too, in
//! `netpollGenericInit`).
//!
//! The netpoller thread is foreign to every runtime, so each `Waiter::wake`
//! would take `ready`'s foreign path: pin the runtime, push one G on the
//! global queue, fence, and run `wakep` — per G. A poll batch readies
//! dozens of Gs at once; this file readies them with one pin and one
//! `wakep_global` per runtime and batch. One `wakep` is enough: the M it
//! wakes spins, takes a batch from the global queue
//! (`steal_batch_and_pop`), and, being the last spinner, wakes the next
//! (`reset_spinning`), as in Go where `injectglist` starts at most one M per
//! idle P. Waking one M per readied G would cost 15–30 µs each (DESIGN §5),
//! mostly for Ms that find the work already taken.
//!
//! The rules are `ready`'s (schedule.rs): exactly one party readies a parked
//! G (here: the netpoll handler, which took the waiter out of its poll
//! descriptor under that descriptor's lock), the G must be Waiting, and the
//! runtime is pinned from before the first push until after the `wakep`.

use std::io;
use std::ptr;
use std::sync::Arc;

use goro_netpoll::{Handler, Poller};

use super::g::Status;
use super::idle::wakep_global;
use super::m::current_m;
use super::shared::Shared;
use super::waiter::Waiter;

/// Wakes every waiter in `waiters` (draining it): goroutines go to their
/// runtime's global queue in one batch, threads are unparked one by one.
pub(crate) fn ready_batch(waiters: &mut Vec<Waiter>) {
    let mut pinned: Option<Arc<Shared>> = None;
    let mut readied = 0u64;
    for waiter in waiters.drain(..) {
        let g = match waiter {
            Waiter::Goroutine(g) => g,
            thread => {
                thread.wake();
                continue;
            }
        };
        if g.status() != Status::Waiting {
            crate::sys::write_stderr(
                b"fatal error: goro: netpoll readied a goroutine that is not parked\n",
            );
            crate::sys::abort();
        }
        g.set_status(Status::Runnable);
        tracing::trace!(target: "goro::netpoll", goroutine = g.id(), "ready (netpoll)");
        if pinned
            .as_ref()
            .is_none_or(|shared| !ptr::eq(Arc::as_ptr(shared), g.shared))
        {
            if let Some(previous) = pinned.take() {
                super::stats::count_netpoll_batch(&previous, std::mem::take(&mut readied));
                wakep_global(&previous);
            }
            // The matching decrement is the drop of `pinned`, after the last
            // push and `wakep`.
            // SAFETY: `g.shared` is the runtime's `Arc<Shared>` pointer, alive
            // while one of its Gs is Waiting (shutdown leaks it otherwise).
            pinned = Some(unsafe {
                Arc::increment_strong_count(g.shared);
                Arc::from_raw(g.shared)
            });
        }
        if let Some(shared) = &pinned {
            shared.injector.push(g);
            readied += 1;
        }
    }
    if let Some(shared) = pinned {
        super::stats::count_netpoll_batch(&shared, readied);
        wakep_global(&shared);
    }
}

/// The netpoller of the calling goroutine's runtime, started on first use
/// with `handler` (built only then). `None` outside a goroutine.
///
/// # Errors
/// The backend's setup error (a forced io_uring refused here, a memlock
/// limit), or `BrokenPipe` once the runtime is shutting down.
pub(crate) fn current_poller(handler: impl FnOnce() -> Handler) -> Option<io::Result<Arc<Poller>>> {
    // SAFETY: a non-null current M is this thread's live M.
    let m = unsafe { current_m().as_ref() }?;
    m.curg.get()?;
    // SAFETY: a runtime's Shared outlives its Ms; we use it during this call.
    let shared = unsafe { &*m.shared };
    if let Some(poller) = shared.netpoll.get() {
        return Some(Ok(poller.clone()));
    }
    let _start = shared
        .netpoll_start
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    if let Some(poller) = shared.netpoll.get() {
        return Some(Ok(poller.clone()));
    }
    if shared.is_stopping() {
        return Some(Err(io::Error::new(
            io::ErrorKind::BrokenPipe,
            "goro: the runtime is shutting down",
        )));
    }
    // Thread creation and ring setup happen under the start lock, once per
    // runtime; the lock is a leaf (nothing else is taken under it).
    Some(
        Poller::start(shared.config.netpoll, handler()).map(|poller| {
            let poller = Arc::new(poller);
            let _ = shared.netpoll.set(poller.clone());
            poller
        }),
    )
}

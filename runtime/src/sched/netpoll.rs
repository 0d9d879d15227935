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
//!
//! # Ms that poll (epoll: Go's `findRunnable` and `sysmon`)
//!
//! With the epoll backend no thread of the netpoller waits on the sockets:
//! the Ms reap readiness themselves, as Go's do, which saves the netpoller
//! thread's wake-up (and often an M's) per batch ("Who reaps readiness" in
//! the `goro_netpoll` crate doc has the measurements):
//!
//! 1. An M out of local and global work polls without blocking
//!    ([`poll_now`]) before it steals, and again before it gives up its P;
//!    it runs the first readied G itself and queues the rest globally.
//! 2. The first M to go idle with the netpoller started blocks in
//!    `epoll_wait` instead of its futex, until the earliest timer
//!    ([`poll_blocking`]). `last_poll == 0` marks that one M exists; the
//!    others sleep on their futexes. Woken by readiness, it takes an idle P
//!    and runs the first G; with no P left, it queues them all globally and
//!    sleeps as any idle M.
//! 3. sysmon polls when nobody has for 10 ms ([`sysmon_poll`]): all Ps busy
//!    with long goroutines must not starve the network (Go's rule).
//! 4. Shutdown rings the poller's doorbell (`Poller::interrupt`, Go's
//!    `netpollBreak`), so the blocked M sees `stopping`. Nothing else needs
//!    to wake it: work for an idle P wakes (or starts) a futex-sleeping M,
//!    and timers are served by the futex sleepers' deadlines, or by its own.

use std::cell::RefCell;
use std::io;
use std::ptr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use goro_netpoll::{Event, Handler, Poller};

use super::g::{GRef, Status};
use super::idle::wakep_global;
use super::m::{current_m, M};
use super::shared::Shared;
use super::timers::{self, NEVER};
use super::waiter::Waiter;

/// sysmon polls once nobody has for this long (Go's 10 ms).
const SYSMON_POLL_AFTER: u64 = 10_000_000;

thread_local! {
    /// Reaped events and released waiters, reused across polls.
    static SCRATCH: RefCell<(Vec<Event>, Vec<Waiter>)> =
        RefCell::new((Vec::with_capacity(128), Vec::with_capacity(128)));
}

/// The runtime's netpoller, if it is started and its Ms poll it.
fn direct(shared: &Shared) -> Option<&Arc<Poller>> {
    shared.netpoll.get().filter(|poller| poller.is_direct())
}

/// Polls `poller` for up to `timeout` and applies the events: the waiters
/// they release are left in `SCRATCH` for [`ready_reaped`].
fn reap(poller: &Poller, timeout: Option<Duration>) {
    SCRATCH.with(|scratch| {
        let mut scratch = scratch.borrow_mut();
        let (events, wakes) = &mut *scratch;
        if let Err(error) = poller.poll(timeout, events) {
            tracing::error!(%error, "netpoll: epoll_wait failed");
            if timeout != Some(Duration::ZERO) {
                std::thread::sleep(Duration::from_millis(1));
            }
        }
        if !events.is_empty() {
            crate::net::poll_desc::collect(events, wakes);
            events.clear();
        }
    });
}

/// Readies the waiters [`reap`] left: all of them with `ready_batch`
/// (global queue, one `wakep`), except that with `keep_first` the first
/// goroutine is returned, Runnable, for the caller to run.
fn ready_reaped(shared: &Shared, keep_first: bool) -> Option<GRef> {
    SCRATCH.with(|scratch| {
        let wakes = &mut scratch.borrow_mut().1;
        let mut first = None;
        if keep_first {
            // Only one of this runtime's goroutines may run here: a socket
            // registered by this runtime can have waiters of another
            // (`ready_batch` queues those on their own runtime).
            let ours = |waiter: &Waiter| {
                matches!(waiter, Waiter::Goroutine(g) if ptr::eq(g.shared, shared))
            };
            if let Some(at) = wakes.iter().position(ours) {
                let Waiter::Goroutine(g) = wakes.swap_remove(at) else {
                    unreachable!()
                };
                make_runnable(&g);
                super::stats::count_netpoll_batch(shared, 1);
                first = Some(g);
            }
        }
        if !wakes.is_empty() {
            ready_batch(wakes);
        }
        first
    })
}

/// Step 1 (module doc): a non-blocking poll by an M holding a P, unless an
/// M is blocked polling already (it gets the events). Returns a G to run.
pub(crate) fn poll_now(shared: &Shared) -> Option<GRef> {
    let poller = direct(shared)?;
    let last = shared.last_poll.load(Ordering::Relaxed);
    if last == 0 {
        return None;
    }
    let now = timers::now().max(1);
    if now > last {
        // Only moves forward, and never over a blocked poller's 0.
        let _ = shared
            .last_poll
            .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed);
    }
    reap(poller, Some(Duration::ZERO));
    ready_reaped(shared, true)
}

/// What [`poll_blocking`] did.
pub(crate) enum Blocked {
    /// Another M is the blocked poller, there is no direct netpoller, or
    /// no P was idle when it woke (what it reaped went to the global
    /// queue): sleep on the futex as usual.
    Sleep,
    /// It woke and took an idle P, now installed on the M: run the G, if
    /// any, or look for work.
    Run(Option<GRef>),
}

/// Step 2 (module doc): called by an M without a P that found nothing to
/// do. Blocks in the poller until readiness, the doorbell, or `deadline`
/// (the earliest timer, `NEVER` for none) if no other M does.
///
/// The P is taken *before* the reaped goroutines are readied: readying
/// first would `wakep` another M for the P this M is about to take, and
/// the two would trade it through a futex wake per poll. Measured on the
/// kv example at 1 P (`redis-benchmark -t get -c 50 -P 1`, `perf stat`):
/// futex calls per request 0.13 → 0.02, context switches 0.17 → 0.05.
pub(crate) fn poll_blocking(shared: &Shared, m: &M, deadline: u64) -> Blocked {
    let Some(poller) = direct(shared) else {
        return Blocked::Sleep;
    };
    if shared.last_poll.swap(0, Ordering::SeqCst) == 0 {
        return Blocked::Sleep;
    }
    // After the swap: shutdown sets `stopping` before it rings the doorbell,
    // and the doorbell stays rung until a blocking poll drains it.
    if !shared.is_stopping() {
        let timeout = (deadline != NEVER)
            .then(|| Duration::from_nanos(deadline.saturating_sub(timers::now())));
        tracing::trace!(deadline, "M blocks in netpoll");
        reap(poller, timeout);
    }
    shared
        .last_poll
        .store(timers::now().max(1), Ordering::SeqCst);
    match shared.idle.take_p(shared) {
        Some(p) => {
            m.install_p(p);
            Blocked::Run(ready_reaped(shared, true))
        }
        None => {
            ready_reaped(shared, false);
            Blocked::Sleep
        }
    }
}

/// Step 3 (module doc): sysmon's poll when nobody polled for 10 ms.
pub(crate) fn sysmon_poll(shared: &Shared, now: u64) {
    let Some(poller) = direct(shared) else {
        return;
    };
    let last = shared.last_poll.load(Ordering::Relaxed);
    if last == 0 || now < last + SYSMON_POLL_AFTER {
        return;
    }
    if shared
        .last_poll
        .compare_exchange(last, now.max(1), Ordering::Relaxed, Ordering::Relaxed)
        .is_ok()
    {
        reap(poller, Some(Duration::ZERO));
        ready_reaped(shared, false);
    }
}

/// Waiting → Runnable for a goroutine the netpoll handler released (the
/// one party allowed to ready it); anything else is a runtime bug.
fn make_runnable(g: &GRef) {
    if g.status() != Status::Waiting {
        crate::sys::write_stderr(
            b"fatal error: goro: netpoll readied a goroutine that is not parked\n",
        );
        crate::sys::abort();
    }
    g.set_status(Status::Runnable);
    tracing::trace!(target: "goro::netpoll", goroutine = g.id(), "ready (netpoll)");
}

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
        make_runnable(&g);
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
    let _start = super::locks::lock(&shared.netpoll_start);
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

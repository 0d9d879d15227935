//! [`Semaphore`]: a weighted semaphore with FIFO fairness, as
//! `golang.org/x/sync/semaphore.Weighted` (The Go Authors).
//!
//! # State and protocol
//!
//! Under one spin lock: `held` (permits acquired and not released) and a
//! FIFO queue of waiters, each asking for `permits`.
//!
//! - Acquire `n`: if `capacity - held >= n` *and nobody is queued*, take them
//!   and return. Otherwise queue `(n, waiter)` at the back and park
//!   (releasing the lock once off the stack). A waiter is woken only once
//!   its permits have been taken for it, so it just returns.
//! - Release `n`: `held -= n`; then, front first, grant each queued waiter
//!   whose request fits (`held += its n`) and dequeue it, stopping at the
//!   first that does not fit; wake the granted ones after unlocking.
//!
//! Fairness: strictly FIFO, as x/sync. A large request at the front blocks
//! smaller ones behind it even when they would fit, so a stream of small
//! acquirers cannot starve a large one (x/sync's
//! TestLargeAcquireDoesntStarve, ported).
//!
//! # Requests that can never succeed
//!
//! x/sync's `Acquire(ctx, n)` with `n > size` waits until `ctx` is done and
//! returns its error. goro has no contexts, so the wait would be forever:
//! `acquire` panics with a message saying so instead, and `try_acquire`
//! returns `false`. Releasing more than is held panics, as in x/sync.
//!
//! # Permits and preemption
//!
//! Permits are counts, not guards: they belong to no goroutine or thread, and
//! any goroutine may release them (the x/sync model), before or after a
//! switch to another OS thread.

use std::collections::VecDeque;
use std::fmt;

use crate::sched::{prepare_wait, wait_unlocking, WaitReason, Waiter};
use crate::util::SpinLock;

struct State {
    held: usize,
    queue: VecDeque<(usize, Waiter)>,
}

/// A semaphore of `capacity` permits, acquired and released in any amounts.
/// Waiting parks the goroutine (a foreign thread blocks); waiters are served
/// in arrival order.
pub struct Semaphore {
    capacity: usize,
    state: SpinLock<State>,
}

impl Semaphore {
    /// A semaphore with `capacity` permits, all available.
    pub const fn new(capacity: usize) -> Semaphore {
        Semaphore {
            capacity,
            state: SpinLock::new(State {
                held: 0,
                queue: VecDeque::new(),
            }),
        }
    }

    /// Acquires `permits`, parking until they are available and every
    /// earlier waiter has been served.
    ///
    /// # Panics
    /// If `permits` exceeds the capacity: it could never be satisfied.
    pub fn acquire(&self, permits: usize) {
        if permits > self.capacity {
            panic!(
                "sync: Semaphore::acquire({permits}) exceeds the semaphore's capacity of {} and would wait forever",
                self.capacity
            );
        }
        let mut state = self.state.lock();
        if self.capacity - state.held >= permits && state.queue.is_empty() {
            state.held += permits;
            return;
        }
        let (waiter, handle) = prepare_wait();
        state.queue.push_back((permits, waiter));
        // The releaser that wakes us has already added our permits to `held`.
        wait_unlocking(WaitReason::Semaphore, handle, state);
    }

    /// Acquires `permits` if that needs no waiting (and nobody is queued);
    /// `false` otherwise, including when `permits` exceeds the capacity.
    pub fn try_acquire(&self, permits: usize) -> bool {
        let mut state = self.state.lock();
        if self.capacity - state.held >= permits && state.queue.is_empty() {
            state.held += permits;
            return true;
        }
        false
    }

    /// Releases `permits` and serves queued waiters in order.
    ///
    /// # Panics
    /// If more permits would be released than are held.
    pub fn release(&self, permits: usize) {
        let mut state = self.state.lock();
        if permits > state.held {
            let held = state.held;
            drop(state);
            panic!("sync: Semaphore::release({permits}) with only {held} permits held");
        }
        state.held -= permits;
        if state.queue.is_empty() {
            return;
        }
        let mut granted = Vec::new();
        while let Some(&(wanted, _)) = state.queue.front() {
            if self.capacity - state.held < wanted {
                break; // FIFO: nobody overtakes the front waiter
            }
            state.held += wanted;
            if let Some((_, waiter)) = state.queue.pop_front() {
                granted.push(waiter);
            }
        }
        drop(state);
        for waiter in granted {
            waiter.wake();
        }
    }

    /// The number of permits the semaphore was created with.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Permits not held right now (a snapshot, for diagnostics and tests).
    pub fn available(&self) -> usize {
        self.capacity - self.state.lock().held
    }
}

impl fmt::Debug for Semaphore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = self.state.lock();
        let (held, waiting) = (state.held, state.queue.len());
        drop(state);
        f.debug_struct("Semaphore")
            .field("capacity", &self.capacity)
            .field("held", &held)
            .field("waiting", &waiting)
            .finish()
    }
}

// Its state stays consistent if a caller unwinds (no user data inside).
impl std::panic::UnwindSafe for Semaphore {}
impl std::panic::RefUnwindSafe for Semaphore {}

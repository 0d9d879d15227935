//! [`Condvar`]: wait for a condition under a goro [`Mutex`]. Go's
//! `sync.Cond` (`src/sync/cond.go`) on its ticket-based `notifyList`
//! (`src/runtime/sema.go`, The Go Authors).
//!
//! # Protocol
//!
//! Two counters, compared with wrap-around (`ticket_before`):
//! - `wait_ticket`: the next ticket to hand to a waiter (atomic, no lock).
//! - `notify_ticket`: the next ticket to be notified; written only under
//!   `queue`'s lock, read without it for the fast path.
//!
//! Wait (`guard` held):
//! 1. Take a ticket (`fetch_add` on `wait_ticket`) *while still holding
//!    the mutex*: a notify that comes after the unlock is then counted.
//! 2. Unlock the mutex.
//! 3. Lock `queue`; if the ticket is already notified (`ticket <
//!    notify_ticket`), return; else queue `(ticket, waiter)` and park,
//!    releasing `queue` only once off the stack.
//! 4. Re-lock the mutex and return its guard.
//!
//! Notify one: if `wait_ticket == notify_ticket` nobody waits: return
//! without locking. Else, under `queue`, advance `notify_ticket` by one and
//! remove the waiter holding the old value, if it has queued (if not, step
//! 3 will see its ticket notified). Wake it after unlocking.
//!
//! Notify all: under `queue`, set `notify_ticket = wait_ticket`, take every
//! queued waiter, and wake them after unlocking.
//!
//! So notifications go in ticket order (FIFO), no notification is lost
//! between a waiter's unlock and its park, and a notify never wakes a waiter
//! that arrived after it (Go's TestCondSignalStealing).
//!
//! Spurious wakeups do not happen, but as with every condition variable the
//! condition may have changed again before the woken waiter re-locks: use
//! [`Condvar::wait_while`] or a loop.
//!
//! A `Condvar` is meant for one mutex; waiting with two different mutexes
//! panics (std's rule: the ticket order means nothing across mutexes).

use std::collections::VecDeque;
use std::fmt;
use std::sync::atomic::{AtomicU32, AtomicUsize, Ordering};

use super::mutex::{Mutex, MutexGuard};
use crate::sched::{prepare_wait, wait_unlocking, WaitReason, Waiter};
use crate::util::SpinLock;

/// A condition variable for goro's [`Mutex`]. Waiting parks the goroutine.
pub struct Condvar {
    wait_ticket: AtomicU32,
    notify_ticket: AtomicU32,
    queue: SpinLock<VecDeque<(u32, Waiter)>>,
    /// The address of the mutex it is used with, or 0 before the first wait.
    mutex: AtomicUsize,
}

/// `a` comes before `b` in ticket order (wrapping, as Go's `less`).
fn ticket_before(a: u32, b: u32) -> bool {
    (a.wrapping_sub(b) as i32) < 0
}

impl Condvar {
    /// A condition variable with no waiters.
    pub const fn new() -> Condvar {
        Condvar {
            wait_ticket: AtomicU32::new(0),
            notify_ticket: AtomicU32::new(0),
            queue: SpinLock::new(VecDeque::new()),
            mutex: AtomicUsize::new(0),
        }
    }

    /// Unlocks `guard`'s mutex, parks until notified, and locks it again.
    ///
    /// # Panics
    /// If this condition variable was used with another mutex before.
    pub fn wait<'a, T: ?Sized>(&self, guard: MutexGuard<'a, T>) -> MutexGuard<'a, T> {
        let mutex: &'a Mutex<T> = guard.mutex();
        self.check_mutex(mutex as *const Mutex<T> as *const () as usize);
        // SeqCst: pairs with the notifiers' loads of `wait_ticket`.
        let ticket = self.wait_ticket.fetch_add(1, Ordering::SeqCst);
        drop(guard);
        self.wait_for(ticket);
        mutex.lock()
    }

    /// Waits while `condition` holds, re-checking it under the lock after
    /// each wakeup; returns the guard with the condition false.
    pub fn wait_while<'a, T: ?Sized, F>(
        &self,
        mut guard: MutexGuard<'a, T>,
        mut condition: F,
    ) -> MutexGuard<'a, T>
    where
        F: FnMut(&mut T) -> bool,
    {
        while condition(&mut *guard) {
            guard = self.wait(guard);
        }
        guard
    }

    /// Wakes the longest-waiting waiter, if any.
    pub fn notify_one(&self) {
        if self.nobody_waits() {
            return;
        }
        let mut queue = self.queue.lock();
        let ticket = self.notify_ticket.load(Ordering::Relaxed);
        if ticket == self.wait_ticket.load(Ordering::SeqCst) {
            return;
        }
        self.notify_ticket
            .store(ticket.wrapping_add(1), Ordering::SeqCst);
        let position = queue.iter().position(|(t, _)| *t == ticket);
        let waiter = position.and_then(|i| queue.remove(i));
        drop(queue);
        if let Some((_, waiter)) = waiter {
            waiter.wake();
        }
    }

    /// Wakes every waiter.
    pub fn notify_all(&self) {
        if self.nobody_waits() {
            return;
        }
        let mut queue = self.queue.lock();
        self.notify_ticket
            .store(self.wait_ticket.load(Ordering::SeqCst), Ordering::SeqCst);
        let waiters = std::mem::take(&mut *queue);
        drop(queue);
        for (_, waiter) in waiters {
            waiter.wake();
        }
    }

    fn nobody_waits(&self) -> bool {
        self.wait_ticket.load(Ordering::SeqCst) == self.notify_ticket.load(Ordering::SeqCst)
    }

    fn wait_for(&self, ticket: u32) {
        let mut queue = self.queue.lock();
        if ticket_before(ticket, self.notify_ticket.load(Ordering::Relaxed)) {
            return; // notified between our unlock and now
        }
        let (waiter, handle) = prepare_wait();
        queue.push_back((ticket, waiter));
        wait_unlocking(WaitReason::Cond, handle, queue);
    }

    fn check_mutex(&self, address: usize) {
        match self
            .mutex
            .compare_exchange(0, address, Ordering::Relaxed, Ordering::Relaxed)
        {
            Ok(_) => {}
            Err(current) if current == address => {}
            Err(_) => panic!("sync: Condvar used with two different mutexes"),
        }
    }
}

impl Default for Condvar {
    fn default() -> Condvar {
        Condvar::new()
    }
}

impl fmt::Debug for Condvar {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Condvar").finish_non_exhaustive()
    }
}

// Its state stays consistent if a caller unwinds (no user data inside).
impl std::panic::UnwindSafe for Condvar {}
impl std::panic::RefUnwindSafe for Condvar {}

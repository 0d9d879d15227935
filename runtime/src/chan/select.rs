//! `select!`: wait on several channel operations at once and complete one,
//! chosen uniformly at random among the ready ones (Go's `selectgo`).
//!
//! # Protocol (after Go's `runtime/select.go`)
//!
//! 1. **Orders.** A random permutation of the cases (the poll order, for
//!    fairness) and the cases sorted by channel address (the lock order, so
//!    two selects over the same channels cannot deadlock; a channel named by
//!    several cases is locked once).
//! 2. **Lock all, poll.** With every channel locked, the cases are tried in
//!    poll order; the first that can complete without waiting does, and the
//!    select returns it. With `default`, if none can, the select returns
//!    "default". Trying a case can wake a waiting peer; that wake happens
//!    after every lock is released.
//! 3. **Enqueue, park once.** Otherwise one entry per case goes onto its
//!    channel's wait queue, all pointing at one shared *select word* (which
//!    case won; `SELECT_WAITING` until one does) and at the same waiter. The
//!    goroutine parks once; the locks are released only after it is off its
//!    stack.
//! 4. **Claim.** A peer that dequeues one of these entries first claims the
//!    word with a compare-exchange, under its channel's lock (`pop_live`).
//!    The winner completes the operation on the case's slot and wakes the
//!    selector; a loser drops the stale entry and looks further down the
//!    queue. A deadline is one more claimant: a timer that swaps in
//!    `TIMED_OUT`.
//! 5. **Clean up.** Woken, the selector locks all channels again and removes
//!    its remaining entries, so nothing points at its word or slots once it
//!    returns.
//!
//! # Deadlines
//!
//! `default(duration)`, `recv_timeout` and `send_timeout` give the select a
//! deadline. A goroutine arms a timer (`sched::timers`) whose action claims
//! the word for `TIMED_OUT` and readies it; the word then lives inside the
//! timer's allocation, not on the stack, because a timer that lost the race
//! may still be running its action after the selector returned. The timer is
//! armed inside the park, *before* the channel locks are released: once they
//! are, the goroutine may run again, and the park's closure (on its stack)
//! must not be touched. A foreign thread needs no timer: it blocks with a
//! timeout and claims the word itself.
//!
//! # Semantics
//!
//! As Go: a receive from a closed channel is ready (and yields
//! `Err(RecvError)`); a send on a closed channel is ready (and, goro's rule,
//! yields `Err(SendError(value))` rather than panicking). Values of send
//! cases are evaluated before the select starts, as Go evaluates them; the
//! values of the cases not chosen are dropped. A select with no cases and no
//! default blocks forever.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use super::queue::{Channel, Entry, RecvNow, SendNow, Slot, CLOSED, DELIVERED, SELECT_WAITING};
use super::{Receiver, RecvError, SendError, Sender};
use crate::sched::timers::{self, Fire, TimerRef};
use crate::sched::{park, prepare_wait_for, WaitHandle, WaitReason, Waiter};
use crate::util::RawBiasedLock;

/// The select word's value when the deadline won.
const TIMED_OUT: usize = usize::MAX - 1;

/// How a select that finds no ready case ends.
#[doc(hidden)]
#[derive(Clone, Copy, Debug)]
pub enum Mode {
    /// Wait for a case.
    Block,
    /// Return at once (a `default` case).
    NonBlocking,
    /// Wait until this instant at most (`default(duration)`).
    Until(Instant),
}

impl Mode {
    /// `default(duration)`: wait at most `duration` from now (forever if
    /// that overflows `Instant`).
    pub fn until(duration: Duration) -> Mode {
        Instant::now()
            .checked_add(duration)
            .map_or(Mode::Block, Mode::Until)
    }
}

/// One case of a select, erased to what the protocol needs. Implemented by
/// [`RecvCase`] and [`SendCase`]. Its methods name crate-private types, so
/// no other crate can implement or call it: that is the seal (hence the
/// `private_interfaces` allowance).
#[doc(hidden)]
#[allow(private_interfaces)]
pub trait SelectCase {
    /// The channel's lock word (its address is the lock order).
    fn raw_lock(&self) -> &RawBiasedLock;

    /// Under the channel lock: completes now if it can. Returns `None` if
    /// it would wait, else the peer to wake once every lock is released.
    ///
    /// # Safety
    /// The caller holds this case's channel lock.
    unsafe fn try_now(&mut self) -> Option<Option<Waiter>>;

    /// Under the channel lock: queues an entry for this case.
    ///
    /// # Safety
    /// The caller holds the channel lock; `word` and `self` stay in place
    /// until `dequeue` has run under the lock again.
    unsafe fn enqueue(&mut self, word: *const AtomicUsize, index: usize, waiter: Waiter);

    /// Under the channel lock: removes every entry pointing at `word`.
    ///
    /// # Safety
    /// The caller holds the channel lock.
    unsafe fn dequeue(&mut self, word: *const AtomicUsize);

    /// After this case won while parked: reads the outcome from its slot.
    fn complete_parked(&mut self);
}

/// A `recv(r) -> result` case.
#[doc(hidden)]
pub struct RecvCase<'a, T> {
    channel: &'a Channel<T>,
    slot: Slot<T>,
    result: Option<Result<T, RecvError>>,
}

impl<'a, T> RecvCase<'a, T> {
    pub fn new(receiver: &'a Receiver<T>) -> RecvCase<'a, T> {
        RecvCase {
            channel: &receiver.channel,
            slot: Slot::new(None),
            result: None,
        }
    }

    /// Whether the select completed this case.
    pub fn is_selected(&self) -> bool {
        self.result.is_some()
    }

    /// The outcome, once this case was selected.
    ///
    /// # Panics
    /// If the case was not selected (a bug in the `select!` expansion).
    pub fn into_result(self) -> Result<T, RecvError> {
        self.result.expect("goro: select case without a result")
    }
}

#[allow(private_interfaces)]
impl<T> SelectCase for RecvCase<'_, T> {
    fn raw_lock(&self) -> &RawBiasedLock {
        self.channel.state.raw()
    }

    unsafe fn try_now(&mut self) -> Option<Option<Waiter>> {
        // SAFETY: the caller holds the channel lock and no guard exists.
        let state = unsafe { self.channel.state.value_unguarded() };
        match self.channel.recv_locked(state) {
            RecvNow::Received(value, waiter) => {
                self.result = Some(Ok(value));
                Some(waiter)
            }
            RecvNow::Closed => {
                self.result = Some(Err(RecvError));
                Some(None)
            }
            RecvNow::Wait => None,
        }
    }

    unsafe fn enqueue(&mut self, word: *const AtomicUsize, index: usize, waiter: Waiter) {
        // SAFETY: the caller holds the channel lock.
        let state = unsafe { self.channel.state.value_unguarded() };
        enqueue_on(&mut state.recvq, &self.slot, word, index, waiter);
    }

    unsafe fn dequeue(&mut self, word: *const AtomicUsize) {
        // SAFETY: the caller holds the channel lock.
        let state = unsafe { self.channel.state.value_unguarded() };
        dequeue_from(&mut state.recvq, word);
    }

    fn complete_parked(&mut self) {
        self.result = Some(match self.slot.state.load(Ordering::Acquire) {
            // SAFETY: marked and dequeued by the winner: the value is ours.
            DELIVERED => Ok(unsafe { (*self.slot.value.get()).take() }
                .expect("goro: delivered slot without a value")),
            _ => Err(RecvError),
        });
    }
}

/// A `send(s, value) -> result` case.
#[doc(hidden)]
pub struct SendCase<'a, T> {
    channel: &'a Channel<T>,
    slot: Slot<T>,
    result: Option<Result<(), SendError<T>>>,
}

impl<'a, T> SendCase<'a, T> {
    pub fn new(sender: &'a Sender<T>, value: T) -> SendCase<'a, T> {
        SendCase {
            channel: &sender.channel,
            slot: Slot::new(Some(value)),
            result: None,
        }
    }

    /// Whether the select completed this case.
    pub fn is_selected(&self) -> bool {
        self.result.is_some()
    }

    /// The outcome, once this case was selected.
    ///
    /// # Panics
    /// If the case was not selected (a bug in the `select!` expansion).
    pub fn into_result(self) -> Result<(), SendError<T>> {
        self.result.expect("goro: select case without a result")
    }

    /// The value back, when the case was not selected (a timeout).
    pub(super) fn into_value(mut self) -> T {
        self.take_value()
    }

    fn take_value(&mut self) -> T {
        self.slot
            .value
            .get_mut()
            .take()
            .expect("goro: send case without its value")
    }
}

#[allow(private_interfaces)]
impl<T> SelectCase for SendCase<'_, T> {
    fn raw_lock(&self) -> &RawBiasedLock {
        self.channel.state.raw()
    }

    unsafe fn try_now(&mut self) -> Option<Option<Waiter>> {
        // SAFETY: the caller holds the channel lock and no guard exists.
        let state = unsafe { self.channel.state.value_unguarded() };
        let value = self.take_value();
        match self.channel.send_locked(state, value) {
            SendNow::Sent(waiter) => {
                self.result = Some(Ok(()));
                Some(waiter)
            }
            SendNow::Closed(value) => {
                self.result = Some(Err(SendError(value)));
                Some(None)
            }
            SendNow::Wait(value) => {
                *self.slot.value.get_mut() = Some(value);
                None
            }
        }
    }

    unsafe fn enqueue(&mut self, word: *const AtomicUsize, index: usize, waiter: Waiter) {
        // SAFETY: the caller holds the channel lock.
        let state = unsafe { self.channel.state.value_unguarded() };
        enqueue_on(&mut state.sendq, &self.slot, word, index, waiter);
    }

    unsafe fn dequeue(&mut self, word: *const AtomicUsize) {
        // SAFETY: the caller holds the channel lock.
        let state = unsafe { self.channel.state.value_unguarded() };
        dequeue_from(&mut state.sendq, word);
    }

    fn complete_parked(&mut self) {
        self.result = Some(match self.slot.state.load(Ordering::Acquire) {
            DELIVERED => Ok(()),
            state => {
                debug_assert_eq!(state, CLOSED);
                Err(SendError(self.take_value()))
            }
        });
    }
}

/// Queues a select entry for `slot` on `queue` (under its channel's lock).
fn enqueue_on<T>(
    queue: &mut VecDeque<Entry<T>>,
    slot: &Slot<T>,
    word: *const AtomicUsize,
    index: usize,
    waiter: Waiter,
) {
    queue.push_back(Entry {
        slot,
        waiter,
        select: Some((word, index)),
    });
}

/// Removes every entry of the select owning `word` from `queue` (under its
/// channel's lock).
fn dequeue_from<T>(queue: &mut VecDeque<Entry<T>>, word: *const AtomicUsize) {
    queue.retain(|entry| entry.select.is_none_or(|(w, _)| !std::ptr::eq(w, word)));
}

/// A deadline's timer: claims the select word for `TIMED_OUT` and wakes the
/// selecting goroutine. The word lives here (module doc, "Deadlines").
struct Deadline {
    word: AtomicUsize,
    waiter: Waiter,
}

impl Fire for Deadline {
    fn fire(&self, _now: u64) -> bool {
        if self
            .word
            .compare_exchange(
                SELECT_WAITING,
                TIMED_OUT,
                Ordering::AcqRel,
                Ordering::Acquire,
            )
            .is_ok()
        {
            self.waiter.clone().wake();
        }
        false
    }
}

/// Channel locks in lock order, deduplicated.
struct Locks {
    locks: Vec<*const RawBiasedLock>,
}

impl Locks {
    fn new(cases: &[&mut dyn SelectCase]) -> Locks {
        let mut locks: Vec<*const RawBiasedLock> = cases
            .iter()
            .map(|case| case.raw_lock() as *const RawBiasedLock)
            .collect();
        locks.sort_unstable();
        locks.dedup();
        Locks { locks }
    }

    fn lock_all(&self) {
        for &lock in &self.locks {
            // SAFETY: every channel is borrowed by a case for the whole select.
            unsafe { &*lock }.lock();
        }
    }

    /// Releases every lock, reading nothing but the owned list.
    ///
    /// # Safety
    /// The caller holds every lock (taken by `lock_all`).
    unsafe fn unlock_all(&self) {
        for &lock in &self.locks {
            // SAFETY: the caller holds it; the channel outlives the select
            // (see `run`: a parked selector cannot return, and so cannot
            // drop its channels, while any of these locks is held).
            unsafe { (*lock).unlock() };
        }
    }
}

/// A small, fast random number (xorshift64*), per thread. The "locks"
/// count keeps the goroutine on its thread between reading the state and
/// writing it back: an async preemption there would move it, and it would
/// write the old thread's state while a goroutine there uses it.
fn random() -> u64 {
    use std::cell::Cell;
    use std::sync::atomic::AtomicU64;
    static SEED: AtomicU64 = AtomicU64::new(0x9E37_79B9_7F4A_7C15);
    thread_local! {
        static STATE: Cell<u64> = Cell::new(
            SEED.fetch_add(0x9E37_79B9_7F4A_7C15, Ordering::Relaxed) ^ timers::now() | 1
        );
    }
    let _section = crate::sched::locks::Section::enter();
    STATE.with(|state| {
        let mut x = state.get();
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        state.set(x);
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    })
}

/// Runs a select over `cases`: returns the index of the case that
/// completed (its result is stored in it), or `None` for default/timeout.
#[doc(hidden)]
pub fn run(cases: &mut [&mut dyn SelectCase], mode: Mode) -> Option<usize> {
    if let Mode::Until(deadline) = mode {
        if cases.is_empty() {
            crate::time::sleep_until(deadline);
            return None;
        }
    }
    // 1. Poll order: a uniformly random permutation (Fisher–Yates).
    let count = cases.len();
    let mut order: Vec<usize> = (0..count).collect();
    for i in (1..count).rev() {
        let j = (random() % (i as u64 + 1)) as usize;
        order.swap(i, j);
    }
    let locks = Locks::new(cases);
    // 2. Lock all, poll.
    locks.lock_all();
    for &index in &order {
        // SAFETY: every channel is locked.
        if let Some(peer) = unsafe { cases[index].try_now() } {
            // SAFETY: locked above.
            unsafe { locks.unlock_all() };
            if let Some(peer) = peer {
                peer.wake();
            }
            return Some(index);
        }
    }
    let deadline = match mode {
        Mode::NonBlocking => None,
        Mode::Until(deadline) if deadline <= Instant::now() => None,
        Mode::Until(deadline) => Some(Some(deadline)),
        Mode::Block => Some(None),
    };
    let Some(deadline) = deadline else {
        // SAFETY: locked above.
        unsafe { locks.unlock_all() };
        return None;
    };
    if count == 0 {
        // `select! {}`: block forever (a goroutine parks; a thread blocks,
        // counted as blocked for the deadlock check).
        // SAFETY: locked above (nothing).
        unsafe { locks.unlock_all() };
        let (waiter, handle) = prepare_wait_for(false);
        drop(waiter);
        match handle {
            WaitHandle::Goroutine => park(WaitReason::Select, |_| true),
            WaitHandle::Thread(thread) => thread.wait(),
        }
        unreachable!("goro: a select with no cases was woken");
    }
    // 3. Enqueue on every channel, park once.
    let (waiter, handle) = prepare_wait_for(deadline.is_some());
    let timer = match (&handle, deadline) {
        (WaitHandle::Goroutine, Some(_)) => Some(timers::Timer::new(Deadline {
            word: AtomicUsize::new(SELECT_WAITING),
            waiter: waiter.clone(),
        })),
        _ => None,
    };
    let stack_word = AtomicUsize::new(SELECT_WAITING);
    let word: &AtomicUsize = timer
        .as_ref()
        .map_or(&stack_word, |timer| &timer.action.word);
    for (index, case) in cases.iter_mut().enumerate() {
        // SAFETY: locked; `word` and the cases stay put until the clean-up
        // below has run under the locks.
        unsafe { case.enqueue(word, index, waiter.clone()) };
    }
    drop(waiter);
    match handle {
        WaitHandle::Goroutine => {
            let arm = timer.clone().zip(deadline);
            let locks = &locks;
            park(WaitReason::Select, move |_| {
                // Arm first: once a lock is released we may be readied and
                // run, and this closure's captures (on our stack) may change.
                if let Some((timer, deadline)) = arm {
                    let timer: TimerRef = timer;
                    timers::arm(&timer, timers::nanos(deadline));
                }
                // The lock list is ours (heap), read before any release, and
                // a woken selector cannot finish its clean-up (which needs
                // every lock) until the last release.
                // SAFETY: locked above, on this M; we are off our stack.
                unsafe { locks.unlock_all() };
                true
            });
        }
        WaitHandle::Thread(thread) => {
            // SAFETY: locked above.
            unsafe { locks.unlock_all() };
            let woken = match deadline {
                Some(deadline) => thread.wait_until(deadline),
                None => {
                    thread.wait();
                    true
                }
            };
            if !woken
                && word
                    .compare_exchange(
                        SELECT_WAITING,
                        TIMED_OUT,
                        Ordering::AcqRel,
                        Ordering::Acquire,
                    )
                    .is_err()
            {
                // A case won just as we timed out: its wake is coming, and
                // its slot is written before it.
                thread.wait();
            }
        }
    }
    // 5. Clean up: remove our remaining entries.
    let winner = word.load(Ordering::Acquire);
    locks.lock_all();
    for case in cases.iter_mut() {
        // SAFETY: every channel is locked.
        unsafe { case.dequeue(word) };
    }
    // SAFETY: locked just above.
    unsafe { locks.unlock_all() };
    if let Some(timer) = &timer {
        timers::stop(&**timer);
        // Not in the park's closure, which arms under the channel locks.
        timers::purge_own();
    }
    if winner == TIMED_OUT {
        return None;
    }
    cases[winner].complete_parked();
    Some(winner)
}

//! The channel itself: state, wait queues, and the `Sender`/`Receiver`
//! handles. See `chan/mod.rs` for the design and invariants.

use std::cell::UnsafeCell;
use std::collections::VecDeque;
use std::fmt;
use std::sync::atomic::{AtomicU8, AtomicUsize, Ordering};
use std::sync::Arc;

use std::time::Duration;

use super::select::{self, Mode, RecvCase, SendCase};
use crate::sched::{prepare_wait, wait_unlocking, WaitReason, Waiter};
use crate::util::{BiasedLock, BiasedLockGuard};

/// A value slot on a blocked sender's or receiver's stack.
pub(super) struct Slot<T> {
    pub(super) value: UnsafeCell<Option<T>>,
    pub(super) state: AtomicU8,
}

const WAITING: u8 = 0;
pub(super) const DELIVERED: u8 = 1;
pub(super) const CLOSED: u8 = 2;

impl<T> Slot<T> {
    pub(super) fn new(value: Option<T>) -> Slot<T> {
        Slot {
            value: UnsafeCell::new(value),
            state: AtomicU8::new(WAITING),
        }
    }
}

/// A queued waiter: its slot and how to wake it.
pub(super) struct Entry<T> {
    pub(super) slot: *const Slot<T>,
    pub(super) waiter: Waiter,
    /// For a goroutine or thread blocked in `select!` (or a timed
    /// operation): its shared "case won" word and this entry's case index.
    /// Whoever dequeues the entry must first claim the word with a
    /// compare-exchange (`pop_live`); if that fails, another case (or the
    /// deadline) already won and the entry is stale.
    pub(super) select: Option<(*const AtomicUsize, usize)>,
}

// SAFETY: the slot pointer is only dereferenced under the channel lock by the
// party that dequeued the entry, while the slot's owner is blocked waiting
// for exactly that (module doc); `T: Send` moves values between threads. The
// select word is only touched under the channel lock, and its owner removes
// every entry pointing at it (under the lock) before it returns.
unsafe impl<T: Send> Send for Entry<T> {}

impl<T> Entry<T> {
    /// Puts `value` into the waiting receiver's slot and marks it delivered.
    ///
    /// # Safety
    /// The entry was just removed from `recvq` under the channel lock.
    pub(super) unsafe fn deliver(self, value: T) -> Waiter {
        // SAFETY: the receiver is blocked until its slot is marked, and only
        // we (who dequeued it) may mark it.
        unsafe {
            *(*self.slot).value.get() = Some(value);
            (*self.slot).state.store(DELIVERED, Ordering::Release);
        }
        self.waiter
    }

    /// Takes the waiting sender's value and marks its slot delivered.
    ///
    /// # Safety
    /// The entry was just removed from `sendq` under the channel lock.
    pub(super) unsafe fn take(self) -> (T, Waiter) {
        // SAFETY: as for `deliver`.
        let value = unsafe {
            let value = (*(*self.slot).value.get()).take();
            (*self.slot).state.store(DELIVERED, Ordering::Release);
            value
        };
        (
            value.expect("goro: a blocked sender without a value"),
            self.waiter,
        )
    }

    /// Marks the slot closed (the sender keeps its value).
    ///
    /// # Safety
    /// The entry was just removed from a queue under the channel lock.
    unsafe fn close(self) -> Waiter {
        // SAFETY: as for `deliver`.
        unsafe { (*self.slot).state.store(CLOSED, Ordering::Release) };
        self.waiter
    }
}

pub(super) struct State<T> {
    buffer: VecDeque<T>,
    closed: bool,
    pub(super) recvq: VecDeque<Entry<T>>,
    pub(super) sendq: VecDeque<Entry<T>>,
}

/// Pops the first live entry of a wait queue: a plain waiter, or a select
/// whose word this call claims for the entry's case. Stale select entries
/// met on the way are dropped (their owner would remove them anyway).
pub(super) fn pop_live<T>(queue: &mut VecDeque<Entry<T>>) -> Option<Entry<T>> {
    while let Some(entry) = queue.pop_front() {
        let Some((word, case)) = entry.select else {
            return Some(entry);
        };
        // SAFETY: the word outlives every entry pointing at it (Entry's Send
        // comment), and we hold the channel lock.
        let word = unsafe { &*word };
        if word
            .compare_exchange(SELECT_WAITING, case, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
        {
            return Some(entry);
        }
    }
    None
}

/// The select word's value while no case has won yet.
pub(super) const SELECT_WAITING: usize = usize::MAX;

pub(super) struct Channel<T> {
    /// Buffer capacity; 0 for a rendezvous, `usize::MAX` for unbounded.
    capacity: usize,
    pub(super) state: BiasedLock<State<T>>,
    senders: AtomicUsize,
    receivers: AtomicUsize,
}

impl<T> Channel<T> {
    pub(super) fn lock(&self) -> BiasedLockGuard<'_, State<T>> {
        self.state.lock()
    }

    /// Closes the channel; wakes every waiter. Idempotent.
    fn close(&self) {
        let mut guard = self.lock();
        if guard.closed {
            return;
        }
        guard.closed = true;
        let mut waiters = Vec::new();
        let state = &mut *guard;
        for queue in [&mut state.recvq, &mut state.sendq] {
            while let Some(entry) = pop_live(queue) {
                // SAFETY: the entry was just removed under the lock.
                waiters.push(unsafe { entry.close() });
            }
        }
        drop(guard);
        for waiter in waiters {
            waiter.wake();
        }
    }

    /// One attempt to send without blocking.
    fn try_send(&self, value: T) -> Result<(), TrySendError<T>> {
        match self.send_now(self.lock(), value) {
            Ok(Ok(())) => Ok(()),
            Ok(Err(SendError(value))) => Err(TrySendError::Closed(value)),
            Err((_, value)) => Err(TrySendError::Full(value)),
        }
    }

    /// Sends without waiting, under `state`: `Ok` with the outcome, or `Err`
    /// handing back the lock and the value when the caller would have to wait.
    #[allow(clippy::type_complexity)]
    fn send_now<'a>(
        &'a self,
        mut state: BiasedLockGuard<'a, State<T>>,
        value: T,
    ) -> Result<Result<(), SendError<T>>, (BiasedLockGuard<'a, State<T>>, T)> {
        match self.send_locked(&mut state, value) {
            SendNow::Sent(waiter) => {
                drop(state);
                if let Some(waiter) = waiter {
                    waiter.wake();
                }
                Ok(Ok(()))
            }
            SendNow::Closed(value) => Ok(Err(SendError(value))),
            SendNow::Wait(value) => Err((state, value)),
        }
    }

    /// The body of a send that does not wait, on the locked state. A
    /// receiver handed the value directly must be woken by the caller once
    /// it has released the lock.
    pub(super) fn send_locked(&self, state: &mut State<T>, value: T) -> SendNow<T> {
        if state.closed {
            return SendNow::Closed(value);
        }
        if let Some(receiver) = pop_live(&mut state.recvq) {
            // SAFETY: taken out of recvq under the channel lock; the receiver
            // stays blocked until its slot is marked.
            let woken = unsafe { receiver.deliver(value) };
            return SendNow::Sent(Some(woken));
        }
        if state.buffer.len() < self.capacity {
            state.buffer.push_back(value);
            return SendNow::Sent(None);
        }
        SendNow::Wait(value)
    }

    /// The body of a receive that does not wait, on the locked state; the
    /// caller wakes the returned sender (if any) after unlocking.
    pub(super) fn recv_locked(&self, state: &mut State<T>) -> RecvNow<T> {
        if let Some(value) = state.buffer.pop_front() {
            // A sender blocked on the full buffer moves its value in.
            let mut woken = None;
            if let Some(sender) = pop_live(&mut state.sendq) {
                // SAFETY: removed from sendq under the lock.
                let (moved, waiter) = unsafe { sender.take() };
                state.buffer.push_back(moved);
                woken = Some(waiter);
            }
            return RecvNow::Received(value, woken);
        }
        if let Some(sender) = pop_live(&mut state.sendq) {
            // SAFETY: removed from sendq under the lock; the sender stays
            // blocked until its slot is marked.
            let (value, waiter) = unsafe { sender.take() };
            return RecvNow::Received(value, Some(waiter));
        }
        if state.closed {
            return RecvNow::Closed;
        }
        RecvNow::Wait
    }

    /// One attempt to receive without blocking.
    fn try_recv(&self) -> Result<T, TryRecvError> {
        match self.recv_now(self.lock()) {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(RecvError)) => Err(TryRecvError::Closed),
            Err(_) => Err(TryRecvError::Empty),
        }
    }

    /// Send, the common case inline: room in the buffer and no receiver
    /// waiting (module doc, "Fast paths").
    #[inline]
    fn send(&self, value: T) -> Result<(), SendError<T>> {
        let mut state = self.lock();
        if state.recvq.is_empty() && !state.closed && state.buffer.len() < self.capacity {
            state.buffer.push_back(value);
            return Ok(());
        }
        self.send_slow(state, value)
    }

    /// Every other send: a parked receiver to hand the value to, a closed
    /// channel, or a full buffer to wait on.
    #[inline(never)]
    fn send_slow<'a>(
        &'a self,
        state: BiasedLockGuard<'a, State<T>>,
        value: T,
    ) -> Result<(), SendError<T>> {
        let (state, value) = match self.send_now(state, value) {
            Ok(result) => return result,
            Err(wait) => wait,
        };
        // Full: queue our slot and wait.
        let slot = Slot::new(Some(value));
        match wait_in(state, |s| &mut s.sendq, &slot, WaitReason::ChanSend) {
            DELIVERED => Ok(()),
            _ => {
                // CLOSED: the value is still ours.
                // SAFETY: our slot, marked and dequeued: no one else uses it.
                let value = unsafe { (*slot.value.get()).take() };
                Err(SendError(
                    value.expect("goro: closed sender lost its value"),
                ))
            }
        }
    }

    /// Receive, the common case inline: a buffered value and no sender
    /// waiting (module doc, "Fast paths").
    #[inline]
    fn recv(&self) -> Result<T, RecvError> {
        let mut state = self.lock();
        if state.sendq.is_empty() {
            if let Some(value) = state.buffer.pop_front() {
                return Ok(value);
            }
        }
        self.recv_slow(state)
    }

    /// Every other receive: a parked sender to take from, a closed and
    /// drained channel, or an empty one to wait on.
    #[inline(never)]
    fn recv_slow<'a>(&'a self, state: BiasedLockGuard<'a, State<T>>) -> Result<T, RecvError> {
        let state = match self.recv_now(state) {
            Ok(result) => return result,
            Err(state) => state,
        };
        // Empty, no sender, open: queue our slot and wait.
        let slot: Slot<T> = Slot::new(None);
        match wait_in(state, |s| &mut s.recvq, &slot, WaitReason::ChanReceive) {
            DELIVERED => {
                // SAFETY: marked delivered and dequeued: the value is ours.
                let value = unsafe { (*slot.value.get()).take() };
                Ok(value.expect("goro: delivered slot without a value"))
            }
            _ => Err(RecvError),
        }
    }

    /// Receives without waiting, under `state`: `Ok` with the outcome, or
    /// `Err` handing the lock back when the caller would have to wait.
    #[allow(clippy::type_complexity)]
    fn recv_now<'a>(
        &'a self,
        mut state: BiasedLockGuard<'a, State<T>>,
    ) -> Result<Result<T, RecvError>, BiasedLockGuard<'a, State<T>>> {
        match self.recv_locked(&mut state) {
            RecvNow::Received(value, waiter) => {
                drop(state);
                if let Some(waiter) = waiter {
                    waiter.wake();
                }
                Ok(Ok(value))
            }
            RecvNow::Closed => Ok(Err(RecvError)),
            RecvNow::Wait => Err(state),
        }
    }

    fn len(&self) -> usize {
        self.lock().buffer.len()
    }
}

/// What a send that may not wait did.
pub(super) enum SendNow<T> {
    /// Sent; wake this receiver (handed the value directly) after unlocking.
    Sent(Option<Waiter>),
    /// The channel is closed; the value comes back.
    Closed(T),
    /// It would have to wait; the value comes back.
    Wait(T),
}

/// What a receive that may not wait did.
pub(super) enum RecvNow<T> {
    /// Received; wake this sender (if any) after unlocking.
    Received(T, Option<Waiter>),
    /// Closed and drained.
    Closed,
    /// It would have to wait.
    Wait,
}

/// Queues `slot` on the wait queue `queue` picks, parks (releasing `state`
/// only once off the stack: whoever dequeues us must take the lock first),
/// and returns the mark the slot was given: `DELIVERED` or `CLOSED`.
fn wait_in<'a, T>(
    mut state: BiasedLockGuard<'a, State<T>>,
    queue: impl FnOnce(&mut State<T>) -> &mut VecDeque<Entry<T>>,
    slot: &Slot<T>,
    reason: WaitReason,
) -> u8 {
    let (waiter, handle) = prepare_wait();
    queue(&mut state).push_back(Entry {
        slot,
        waiter,
        select: None,
    });
    wait_unlocking(reason, handle, state);
    slot.state.load(Ordering::Acquire)
}

fn new_channel<T>(capacity: usize) -> (Sender<T>, Receiver<T>) {
    let channel = Arc::new(Channel {
        capacity,
        state: BiasedLock::new(State {
            buffer: VecDeque::new(),
            closed: false,
            recvq: VecDeque::new(),
            sendq: VecDeque::new(),
        }),
        senders: AtomicUsize::new(1),
        receivers: AtomicUsize::new(1),
    });
    (
        Sender {
            channel: channel.clone(),
        },
        Receiver { channel },
    )
}

/// A channel with a buffer of `capacity` values; `bounded(0)` is Go's
/// unbuffered channel: every send waits for a receiver (a rendezvous).
pub fn bounded<T>(capacity: usize) -> (Sender<T>, Receiver<T>) {
    new_channel(capacity)
}

/// A channel whose sends never block.
pub fn unbounded<T>() -> (Sender<T>, Receiver<T>) {
    new_channel(usize::MAX)
}

/// The sending side. Clone it for more producers; dropping the last one
/// closes the channel.
pub struct Sender<T> {
    pub(super) channel: Arc<Channel<T>>,
}

/// The receiving side. Clone it for more consumers (each value goes to one).
pub struct Receiver<T> {
    pub(super) channel: Arc<Channel<T>>,
}

impl<T> Sender<T> {
    /// Sends `value`, waiting (parking the goroutine) while the channel is
    /// full, or until a receiver takes it on a rendezvous channel.
    ///
    /// # Errors
    /// The channel is closed; the value comes back in the error.
    pub fn send(&self, value: T) -> Result<(), SendError<T>> {
        self.channel.send(value)
    }

    /// Sends without waiting.
    ///
    /// # Errors
    /// `Full` if it would wait, `Closed` if the channel is closed; both
    /// return the value.
    pub fn try_send(&self, value: T) -> Result<(), TrySendError<T>> {
        self.channel.try_send(value)
    }

    /// Sends `value`, waiting at most `timeout` for room (or a receiver).
    ///
    /// # Errors
    /// `Timeout` if it could not send in time, `Closed` if the channel is
    /// closed; both return the value.
    pub fn send_timeout(&self, value: T, timeout: Duration) -> Result<(), SendTimeoutError<T>> {
        let value = match self.channel.try_send(value) {
            Ok(()) => return Ok(()),
            Err(TrySendError::Closed(value)) => return Err(SendTimeoutError::Closed(value)),
            Err(TrySendError::Full(value)) => value,
        };
        let mut case = SendCase::new(self, value);
        match select::run(&mut [&mut case], Mode::until(timeout)) {
            Some(_) => case
                .into_result()
                .map_err(|SendError(v)| SendTimeoutError::Closed(v)),
            None => Err(SendTimeoutError::Timeout(case.into_value())),
        }
    }

    /// Closes the channel (Go's `close(ch)`): receivers drain the buffer and
    /// then get `Err`; blocked and later senders get their values back.
    pub fn close(&self) {
        self.channel.close();
    }

    /// Values in the buffer.
    pub fn len(&self) -> usize {
        self.channel.len()
    }

    /// Whether the buffer is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The buffer's capacity (`None`: unbounded).
    pub fn capacity(&self) -> Option<usize> {
        (self.channel.capacity != usize::MAX).then_some(self.channel.capacity)
    }
}

impl<T> Receiver<T> {
    /// Receives a value, waiting while the channel is empty.
    ///
    /// # Errors
    /// The channel is closed and its buffer drained.
    pub fn recv(&self) -> Result<T, RecvError> {
        self.channel.recv()
    }

    /// Receives a value, waiting at most `timeout`.
    ///
    /// # Errors
    /// `Timeout` if nothing arrived in time; `Closed` if closed and drained.
    pub fn recv_timeout(&self, timeout: Duration) -> Result<T, RecvTimeoutError> {
        match self.channel.try_recv() {
            Ok(value) => return Ok(value),
            Err(TryRecvError::Closed) => return Err(RecvTimeoutError::Closed),
            Err(TryRecvError::Empty) => {}
        }
        let mut case = RecvCase::new(self);
        match select::run(&mut [&mut case], Mode::until(timeout)) {
            Some(_) => case
                .into_result()
                .map_err(|RecvError| RecvTimeoutError::Closed),
            None => Err(RecvTimeoutError::Timeout),
        }
    }

    /// Receives without waiting.
    ///
    /// # Errors
    /// `Empty` if it would wait; `Closed` if closed and drained.
    pub fn try_recv(&self) -> Result<T, TryRecvError> {
        self.channel.try_recv()
    }

    /// Iterates over received values until the channel is closed and drained
    /// (Go's `for v := range ch`).
    pub fn iter(&self) -> Iter<'_, T> {
        Iter { receiver: self }
    }

    /// Values in the buffer.
    pub fn len(&self) -> usize {
        self.channel.len()
    }

    /// Whether the buffer is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl<T> Clone for Sender<T> {
    fn clone(&self) -> Sender<T> {
        self.channel.senders.fetch_add(1, Ordering::Relaxed);
        Sender {
            channel: self.channel.clone(),
        }
    }
}

impl<T> Clone for Receiver<T> {
    fn clone(&self) -> Receiver<T> {
        self.channel.receivers.fetch_add(1, Ordering::Relaxed);
        Receiver {
            channel: self.channel.clone(),
        }
    }
}

impl<T> Drop for Sender<T> {
    fn drop(&mut self) {
        if self.channel.senders.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.channel.close();
        }
    }
}

impl<T> Drop for Receiver<T> {
    fn drop(&mut self) {
        if self.channel.receivers.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.channel.close();
        }
    }
}

/// Iterator over a receiver's values (see [`Receiver::iter`]).
pub struct Iter<'a, T> {
    receiver: &'a Receiver<T>,
}

impl<T> Iterator for Iter<'_, T> {
    type Item = T;
    fn next(&mut self) -> Option<T> {
        self.receiver.recv().ok()
    }
}

impl<'a, T> IntoIterator for &'a Receiver<T> {
    type Item = T;
    type IntoIter = Iter<'a, T>;
    fn into_iter(self) -> Iter<'a, T> {
        self.iter()
    }
}

/// A send on a closed channel; carries the value back.
#[derive(PartialEq, Eq, Clone, Copy)]
pub struct SendError<T>(pub T);

/// Why `try_send` did not send; carries the value back.
#[derive(PartialEq, Eq, Clone, Copy)]
pub enum TrySendError<T> {
    /// The buffer is full (or no receiver waits on a rendezvous channel).
    Full(T),
    /// The channel is closed.
    Closed(T),
}

/// Why `send_timeout` did not send; carries the value back.
#[derive(PartialEq, Eq, Clone, Copy)]
pub enum SendTimeoutError<T> {
    /// No room (or no receiver) before the timeout.
    Timeout(T),
    /// The channel is closed.
    Closed(T),
}

/// Why `recv_timeout` did not receive.
#[derive(PartialEq, Eq, Clone, Copy, Debug)]
pub enum RecvTimeoutError {
    /// Nothing arrived before the timeout.
    Timeout,
    /// Closed and drained.
    Closed,
}

impl<T> fmt::Debug for SendTimeoutError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SendTimeoutError::Timeout(_) => f.write_str("Timeout(..)"),
            SendTimeoutError::Closed(_) => f.write_str("Closed(..)"),
        }
    }
}

impl<T> fmt::Display for SendTimeoutError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SendTimeoutError::Timeout(_) => f.write_str("timed out sending on a channel"),
            SendTimeoutError::Closed(_) => f.write_str("sending on a closed channel"),
        }
    }
}

impl<T> std::error::Error for SendTimeoutError<T> {}

impl fmt::Display for RecvTimeoutError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RecvTimeoutError::Timeout => f.write_str("timed out receiving on a channel"),
            RecvTimeoutError::Closed => f.write_str("receiving on a closed and empty channel"),
        }
    }
}

impl std::error::Error for RecvTimeoutError {}

/// A receive on a closed, drained channel.
#[derive(PartialEq, Eq, Clone, Copy, Debug)]
pub struct RecvError;

/// Why `try_recv` did not receive.
#[derive(PartialEq, Eq, Clone, Copy, Debug)]
pub enum TryRecvError {
    /// Nothing to receive now.
    Empty,
    /// Closed and drained.
    Closed,
}

impl<T> fmt::Debug for SendError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SendError(..)")
    }
}

impl<T> fmt::Display for SendError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("sending on a closed channel")
    }
}

impl<T> std::error::Error for SendError<T> {}

impl<T> fmt::Debug for TrySendError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TrySendError::Full(_) => f.write_str("Full(..)"),
            TrySendError::Closed(_) => f.write_str("Closed(..)"),
        }
    }
}

impl<T> fmt::Display for TrySendError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TrySendError::Full(_) => f.write_str("sending on a full channel"),
            TrySendError::Closed(_) => f.write_str("sending on a closed channel"),
        }
    }
}

impl<T> std::error::Error for TrySendError<T> {}

impl fmt::Display for RecvError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("receiving on a closed and empty channel")
    }
}

impl std::error::Error for RecvError {}

impl fmt::Display for TryRecvError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TryRecvError::Empty => f.write_str("receiving on an empty channel"),
            TryRecvError::Closed => f.write_str("receiving on a closed and empty channel"),
        }
    }
}

impl std::error::Error for TryRecvError {}

impl<T> fmt::Debug for Sender<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sender")
            .field("capacity", &self.capacity())
            .finish()
    }
}

impl<T> fmt::Debug for Receiver<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Receiver").finish()
    }
}

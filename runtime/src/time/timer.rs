//! `Timer` and `Ticker`: a `sched::timers::Timer` whose action is a
//! non-blocking send of the current time on a channel with a buffer of one.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::chan::{bounded, Receiver, Sender, TrySendError};
use crate::sched::timers::{self, Fire, TimerRef};

/// The action of a channel timer: send `Instant::now()`, dropping the tick
/// if the buffer is full.
struct SendTime {
    sender: Sender<Instant>,
    /// Nanoseconds between ticks; 0 for a one-shot timer.
    period: AtomicU64,
}

impl Fire for SendTime {
    fn fire(&self, _now: u64) -> bool {
        // Closed: every receiver is gone, so a ticker may stop for good.
        !matches!(
            self.sender.try_send(Instant::now()),
            Err(TrySendError::Closed(_))
        )
    }

    fn period(&self) -> u64 {
        self.period.load(Ordering::Relaxed)
    }
}

type ChannelTimer = Arc<timers::Timer<SendTime>>;

/// Arms `timer` to fire after `duration`; returns whether it was armed.
fn arm(timer: &ChannelTimer, duration: Duration) -> bool {
    let erased: TimerRef = timer.clone();
    let was_armed = timers::arm(&erased, timers::deadline_after(duration));
    timers::purge_own();
    was_armed
}

/// Arms a new channel timer; returns it and its receiver.
fn start(first: Duration, period: u64) -> (ChannelTimer, Receiver<Instant>) {
    let (sender, receiver) = bounded(1);
    let timer = timers::Timer::new(SendTime {
        sender,
        period: AtomicU64::new(period),
    });
    arm(&timer, first);
    (timer, receiver)
}

fn period_nanos(period: Duration, what: &str) -> u64 {
    assert!(!period.is_zero(), "goro::time: {what} with a zero period");
    period.as_nanos().clamp(1, u64::MAX as u128 / 2) as u64
}

/// A single event, delivered on [`Timer::receiver`] after a duration (Go's
/// `time.Timer`). Dropping the `Timer` stops it.
pub struct Timer {
    timer: ChannelTimer,
    receiver: Receiver<Instant>,
}

impl Timer {
    /// A timer that fires once, after `duration`.
    ///
    /// # Panics
    /// Outside a goroutine.
    pub fn new(duration: Duration) -> Timer {
        let (timer, receiver) = start(duration, 0);
        Timer { timer, receiver }
    }

    /// `time.After`: the receiver alone; the heap entry keeps the sender.
    pub(super) fn after_once(duration: Duration) -> Receiver<Instant> {
        start(duration, 0).1
    }

    /// The channel the time is sent on when the timer fires.
    pub fn receiver(&self) -> &Receiver<Instant> {
        &self.receiver
    }

    /// Stops the timer. Returns `true` if that prevented it from firing,
    /// `false` if it had already fired or been stopped (Go's `Stop`). A
    /// value already sent stays in the channel.
    pub fn stop(&self) -> bool {
        timers::stop(&*self.timer)
    }

    /// Re-arms the timer to fire after `duration`; returns whether it was
    /// still armed (Go's `Reset`).
    ///
    /// # Panics
    /// Outside a goroutine.
    pub fn reset(&self, duration: Duration) -> bool {
        arm(&self.timer, duration)
    }
}

impl Drop for Timer {
    fn drop(&mut self) {
        timers::stop(&*self.timer);
    }
}

impl fmt::Debug for Timer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Timer")
            .field("armed", &self.timer.is_armed())
            .finish()
    }
}

/// Sends the time on [`Ticker::receiver`] every period (Go's
/// `time.Ticker`). Ticks keep to the original phase: a late tick does not
/// delay the next one, and ticks the receiver misses are dropped. Dropping
/// the `Ticker` stops it.
pub struct Ticker {
    timer: ChannelTimer,
    receiver: Receiver<Instant>,
}

impl Ticker {
    /// A ticker with the given period; the first tick comes one period from
    /// now.
    ///
    /// # Panics
    /// Outside a goroutine, or if `period` is zero.
    pub fn new(period: Duration) -> Ticker {
        let nanos = period_nanos(period, "Ticker::new");
        let (timer, receiver) = start(period, nanos);
        Ticker { timer, receiver }
    }

    /// `time.Tick`: ticks until the receiver is dropped.
    pub(super) fn detached(period: Duration) -> Receiver<Instant> {
        let nanos = period_nanos(period, "tick");
        start(period, nanos).1
    }

    /// The channel the ticks arrive on.
    pub fn receiver(&self) -> &Receiver<Instant> {
        &self.receiver
    }

    /// Stops the ticker: no more ticks are sent (one already sent stays,
    /// and so may one whose send was under way on another thread as `stop`
    /// ran, as with Go's tickers before 1.23; drain with `try_recv`).
    pub fn stop(&self) {
        timers::stop(&*self.timer);
    }

    /// Stops the ticker and restarts it with a new period, the next tick one
    /// `period` from now (Go's `Ticker.Reset`).
    ///
    /// # Panics
    /// Outside a goroutine, or if `period` is zero.
    pub fn reset(&self, period: Duration) {
        let nanos = period_nanos(period, "Ticker::reset");
        timers::stop(&*self.timer);
        self.timer.action.period.store(nanos, Ordering::Relaxed);
        arm(&self.timer, period);
    }
}

impl Drop for Ticker {
    fn drop(&mut self) {
        timers::stop(&*self.timer);
    }
}

impl fmt::Debug for Ticker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Ticker")
            .field("armed", &self.timer.is_armed())
            .finish()
    }
}

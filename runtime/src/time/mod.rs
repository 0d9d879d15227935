//! Go's `time` package for goroutines: [`sleep`], [`after`], [`tick`],
//! [`Timer`] and [`Ticker`].
//!
//! A sleeping goroutine costs no thread: it parks, and an entry in its P's
//! timer heap readies it when due (`sched::timers` holds the design: per-P
//! heaps run by the Ms as they schedule, and an idle M sleeps exactly until
//! the earliest deadline). `Timer`, `Ticker`, `after` and `tick` deliver on a
//! channel with a buffer of one, as Go's do: a tick that finds the buffer
//! full is dropped, so a slow receiver sees fewer ticks, never a backlog.
//!
//! Outside a goroutine, [`sleep`] blocks the thread; the channel-based
//! timers need a runtime and panic with a clear message without one.
//!
//! Deadlines on channel operations are `Receiver::recv_timeout`,
//! `Sender::send_timeout` and `select!`'s `default(duration)`.

mod timer;

use std::time::{Duration, Instant};

pub use timer::{Ticker, Timer};

use crate::chan::Receiver;
use crate::sched::{in_goroutine, timers};

/// Parks the calling goroutine for at least `duration` (Go's `time.Sleep`).
/// A zero duration returns at once. Outside a goroutine it sleeps the thread.
pub fn sleep(duration: Duration) {
    if duration.is_zero() {
        return;
    }
    if !in_goroutine() {
        std::thread::sleep(duration);
        return;
    }
    timers::sleep_until(timers::deadline_after(duration));
}

/// Parks the calling goroutine until `deadline` (returns at once if it has
/// passed). Outside a goroutine it sleeps the thread.
pub fn sleep_until(deadline: Instant) {
    let now = Instant::now();
    if deadline <= now {
        return;
    }
    if !in_goroutine() {
        std::thread::sleep(deadline - now);
        return;
    }
    timers::sleep_until(timers::nanos(deadline));
}

/// A channel that receives the time once, after `duration` (Go's
/// `time.After`). Once the value is delivered the channel is closed.
///
/// # Panics
/// Outside a goroutine.
pub fn after(duration: Duration) -> Receiver<Instant> {
    Timer::after_once(duration)
}

/// A channel that receives the time every `period` (Go's `time.Tick`). It
/// ticks until its receiver is dropped.
///
/// # Panics
/// Outside a goroutine, or if `period` is zero.
pub fn tick(period: Duration) -> Receiver<Instant> {
    Ticker::detached(period)
}
